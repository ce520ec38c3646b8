"""A SQLite file deleted, moved or replaced under an open store: writes are refused, not lost.

The store holds the file it opened; after an ``rm`` or a restore (a new file renamed over
the path) that file is no longer the one the path names, and a write to it would be
acknowledged and then lost. The store compares the path's (device, inode) with the file it
opened before each commit (and before each read) and raises StoreUnavailable instead.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from runtime_conformance import Order, Place, Shop, place_signal
from store_conformance import KEY, T0, event

from workflows4py import SqliteRuntime, StoreUnavailable
from workflows4py.stores import InstanceKey, Snapshot, SqliteStore

MODES = pytest.mark.parametrize("threaded", [False, True], ids=["inline", "threaded"])
OTHER = InstanceKey("wf", "other")


async def _store_with_one_event(path: Path, threaded: bool) -> SqliteStore:
    store = SqliteStore(path, threaded=threaded)
    await store.initialize()
    await store.create(KEY, T0)
    await store.append(KEY, 0, [event(1)])
    return store


async def _every_call_is_refused(store: SqliteStore, match: str, last: int = 1) -> None:
    """Writes and reads alike raise StoreUnavailable naming the problem."""
    writes = [
        store.append(KEY, last, [event(last + 1)]),
        store.append(KEY, last, [event(last + 1), event(last + 2)]),
        store.append(KEY, 0, [event(1)]),  # would be a SequenceConflict: the file says first
        store.create(OTHER, T0),
        store.create_leased(OTHER, "me", 30, T0),
        store.update(KEY, "awaiting", None, {}, T0),
        store.save_snapshot(KEY, Snapshot(1, "{}")),
        store.acquire(KEY, "me", 30, 0, T0),
        store.renew(KEY, "me", 30, T0),
        store.release(KEY, "me"),
    ]
    reads = [store.read(KEY), store.exists(KEY), store.get_record(KEY), store.initialize()]
    for call in [*writes, *reads]:
        with pytest.raises(StoreUnavailable, match=match) as info:
            await call
        call.close()
        message = str(info.value)
        assert str(store._file) in message
        assert "nothing was read from or written to it" in message
        assert "open it again (restart the process)" in message


@MODES
async def test_a_deleted_file_refuses_writes(tmp_path: Path, threaded: bool) -> None:
    path = tmp_path / "w.db"
    store = await _store_with_one_event(path, threaded)
    try:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        await _every_call_is_refused(store, "no longer exists: it was deleted or moved away")
    finally:
        await store.close()
    assert not path.exists()  # nothing recreated it either


@MODES
async def test_a_file_replaced_by_a_restore_refuses_writes(tmp_path: Path, threaded: bool) -> None:
    path = tmp_path / "w.db"
    store = await _store_with_one_event(path, threaded)
    backup = tmp_path / "backup.db"
    with sqlite3.connect(path) as source, sqlite3.connect(backup) as target:
        source.backup(target)  # the backup holds event #1
    source.close()
    target.close()
    await store.append(KEY, 1, [event(2)])  # written before the restore: in the old file only
    old = tmp_path / "old.db"
    os.link(path, old)  # keeps the old file reachable, to look into it afterwards
    os.replace(backup, path)  # the restore
    try:
        await _every_call_is_refused(store, "now names another file: it was replaced", last=2)
    finally:
        await store.close()

    # The old file's last commits are in its -wal, left beside the new file: SQLite would
    # apply it to whatever file the path names (the restore procedure of the docs removes
    # it), as a copy of the pair shows.
    copy = tmp_path / "copy.db"
    shutil.copyfile(path, copy)
    shutil.copyfile(f"{path}-wal", f"{copy}-wal")
    applied = SqliteStore(copy)
    assert [e.sequence for e in await applied.read(KEY)] == [1, 2]  # #2 is not the backup's
    await applied.close()
    # Given back to the old file, the -wal shows that none of the refused writes got there.
    os.replace(f"{path}-wal", f"{old}-wal")
    Path(f"{path}-shm").unlink()
    before = SqliteStore(old)
    assert [e.sequence for e in await before.read(KEY)] == [1, 2]
    assert not await before.exists(OTHER)
    await before.close()
    restored = SqliteStore(path)
    await restored.initialize()
    assert [e.sequence for e in await restored.read(KEY)] == [1]
    assert not await restored.exists(OTHER)
    await restored.append(KEY, 1, [event(2)])  # the restored file is usable at once
    await restored.close()


async def test_a_file_moved_away_and_back_is_usable_again(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    store = await _store_with_one_event(path, False)
    try:
        os.rename(path, tmp_path / "moved.db")
        with pytest.raises(StoreUnavailable, match="deleted or moved away"):
            await store.append(KEY, 1, [event(2)])
        os.rename(tmp_path / "moved.db", path)  # the path names the store's file again
        await store.append(KEY, 1, [event(2)])
        assert [e.sequence for e in await store.read(KEY)] == [1, 2]
    finally:
        await store.close()


async def test_a_relative_path_is_checked_where_it_was_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = SqliteStore("w.db")
    await store.initialize()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # neither the file used nor the one checked move
    try:
        await store.create(KEY, T0)
        assert await store.exists(KEY)
        assert not (tmp_path / "elsewhere" / "w.db").exists()
    finally:
        await store.close()


async def test_the_runtime_raises_store_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    async with SqliteRuntime(Shop, path, initial_state=Order()) as runtime:
        order = await runtime.create_instance("o-1")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        with pytest.raises(StoreUnavailable, match="deleted or moved away"):
            await runtime.create_instance("o-2")
        with pytest.raises(StoreUnavailable, match="deleted or moved away"):
            await order.deliver_signal(place_signal, Place("acme"))
    assert not path.exists()
