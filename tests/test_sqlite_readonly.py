"""Reading a SQLite database this process may not write: ``read_only=True``, or found out.

Reads (the store's, the runtime's, the CLI's ``instances`` and ``show``) work; writes raise
StoreReadOnly and write nothing; ``initialize`` only reads a schema that is current.

A process that cannot write the file is simulated honestly: when the tests run as root
(whom permission bits do not stop), the reader runs in a subprocess under ``setpriv`` with
the capabilities that bypass them dropped, so the kernel refuses its writes as it would
another user's.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from runtime_conformance import Order, Place, Shop, place_signal
from sqlite_schema import version_1
from store_conformance import KEY, T0, event
from worker_app import DB_ENV, make_runtime

from workflows4py import DurableRuntime, SqliteRuntime, StoreReadOnly, StoreUnavailable
from workflows4py.stores import InstanceKey, SearchQuery, Snapshot, SqliteStore

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"
OTHER = InstanceKey("order", "o-2")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def _populated(path: Path) -> None:
    store = SqliteStore(path)
    await store.initialize()
    await store.create(KEY, T0, next_wakeup=T0)
    await store.append(KEY, 0, [event(1), event(2)])
    await store.save_snapshot(KEY, Snapshot(2, "{}"))
    await store.update(KEY, "awaiting", T0, {"team": "ops"}, T0)
    await store.close()


# -- read_only=True ----------------------------------------------------------------------


@pytest.mark.parametrize("threaded", [False, True], ids=["inline", "threaded"])
async def test_read_only_store_reads_and_refuses_writes(tmp_path: Path, threaded: bool) -> None:
    path = tmp_path / "w.db"
    await _populated(path)
    digest = _digest(path)
    store = SqliteStore(path, read_only=True, threaded=threaded)
    assert "read_only=True" in repr(store)
    try:
        await store.initialize()
        assert [e.sequence for e in await store.read(KEY)] == [1, 2]
        assert await store.exists(KEY)
        record = await store.get_record(KEY)
        assert record is not None
        assert record.tags == {"team": "ops"}
        page = await store.search(SearchQuery())
        assert (page.total, page.errors) == (1, [])
        assert await store.load_snapshot(KEY) == Snapshot(2, "{}")
        assert await store.next_wakeup(T0.replace(year=2000)) == T0
        assert await store.stale(T0, 10) == []
        await store.wait_for_work(0)
        writes = [
            ("append", store.append(KEY, 2, [event(3)])),
            ("create", store.create(OTHER, T0)),
            ("create_leased", store.create_leased(OTHER, "me", 30, T0)),
            ("update", store.update(KEY, "finished", None, {}, T0)),
            ("save_snapshot", store.save_snapshot(KEY, Snapshot(2, "{}"))),
            ("acquire", store.acquire(KEY, "me", 30, 0, T0)),
            ("renew", store.renew(KEY, "me", 30, T0)),
            ("release", store.release(KEY, "me")),
            ("claim_due", store.claim_due(T0, 10, 30)),  # KEY is due: claiming writes
        ]
        for name, call in writes:
            with pytest.raises(StoreReadOnly) as info:
                await call
            assert str(info.value) == (
                f"SQLite database {path} is opened read-only (read_only=True): {name} "
                "refused; nothing was written"
            )
    finally:
        await store.close()
    assert _digest(path) == digest
    store = SqliteStore(path)  # writable again, and unchanged
    assert [e.sequence for e in await store.read(KEY)] == [1, 2]
    assert not await store.exists(OTHER)
    await store.close()


async def test_read_only_initialize_refuses_a_missing_or_old_schema(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()  # a database file without tables
    store = SqliteStore(empty, read_only=True)
    latest = SqliteStore.MIGRATIONS[-1][0]
    with pytest.raises(StoreReadOnly, match=f"schema is missing .* needs version {latest}"):
        await store.initialize()
    await store.close()

    old = tmp_path / "old.db"
    version_1(old).close()
    store = SqliteStore(old, read_only=True)
    with pytest.raises(StoreReadOnly) as info:
        await store.initialize()
    assert f"schema is at version 1 where this version of workflows4py needs version {latest}" in (
        str(info.value)
    )
    assert "nothing was written: open it once writable to migrate it" in str(info.value)
    await store.close()
    with sqlite3.connect(old) as conn:
        assert conn.execute("SELECT version FROM migrations").fetchall() == [(1,)]
    conn.close()


async def test_read_only_does_not_create_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    store = SqliteStore(path, read_only=True)
    with pytest.raises(StoreUnavailable, match=r"does not exist \(opened read-only, so it is not"):
        await store.initialize()
    await store.close()
    assert not path.exists()


async def test_initialize_of_a_current_schema_only_reads(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    await _populated(path)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        store = SqliteStore(path, busy_timeout=5)
        start = time.monotonic()
        await store.initialize()  # does not wait for the lock: it takes none
        assert time.monotonic() - start < 1
        await store.close()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


async def test_a_runtime_over_a_read_only_store(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    async with SqliteRuntime(Shop, path, initial_state=Order()) as runtime:
        order = await runtime.create_instance("o-1")
        await order.deliver_signal(place_signal, Place("acme"))
    digest = _digest(path)
    async with DurableRuntime(
        Shop, SqliteStore(path, read_only=True), initial_state=Order()
    ) as reader:
        order = await reader.get_instance("o-1")
        assert await order.query_state() == Order("acme", "placed")
        assert [e.type for e in await order.get_journal()] == ["Placed"]
        assert [r.key.instance_id for r in (await reader.search()).records] == ["o-1"]
        with pytest.raises(StoreReadOnly, match="nothing was written"):
            await reader.create_instance("o-2")
        with pytest.raises(StoreReadOnly, match="nothing was written"):
            await order.deliver_signal(place_signal, Place("bolt"))
        with pytest.raises(StoreReadOnly, match="nothing was written"):
            await order.wakeup()
    assert _digest(path) == digest


# -- a file this process cannot write: found out by the store ----------------------------

# Capabilities that let root ignore permission bits and immutable files.
_DROP = "-dac_override,-dac_read_search,-fowner,-linux_immutable"


def _unprivileged(*args: str, stdin: int | None = None) -> subprocess.Popen[str]:
    """Run ``python args`` as a process that permission bits apply to."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: cannot make a file unwritable")
        prefix = [setpriv, f"--bounding-set={_DROP}", "--inh-caps=-all"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)])}
    return subprocess.Popen(
        [*prefix, sys.executable, *args],
        env=env,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run_unprivileged(*args: str) -> subprocess.CompletedProcess[str]:
    proc = _unprivileged(*args)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


_READER = textwrap.dedent(
    """
    import asyncio, json, os, sys
    from store_conformance import KEY, T0, event
    from workflows4py import StoreReadOnly
    from workflows4py.stores import SearchQuery
    from workflows4py.stores import SqliteStore

    async def main(path, threaded):
        out = {"can_write": os.access(path, os.W_OK)}
        store = SqliteStore(path, threaded=threaded)
        await store.initialize()
        out["journal"] = [e.sequence for e in await store.read(KEY)]
        out["total"] = (await store.search(SearchQuery())).total
        out["status"] = (await store.get_record(KEY)).status
        try:
            await store.append(KEY, len(out["journal"]), [event(9)])
        except StoreReadOnly as e:
            out["append"] = str(e)
        if sys.argv[3:] == ["wait"]:  # then read again after the parent says so
            print(json.dumps(out), flush=True)
            sys.stdin.readline()
            try:
                out = {"journal": [e.sequence for e in await store.read(KEY)]}
            except Exception as e:
                out = {"error": type(e).__name__, "message": str(e)}
        await store.close()
        print(json.dumps(out), flush=True)

    asyncio.run(main(sys.argv[1], sys.argv[2] == "threaded"))
    """
)


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Path]:
    """A directory whose permissions are restored at the end (so it can be removed)."""
    folder = tmp_path / "data"
    folder.mkdir()
    yield folder
    folder.chmod(0o755)
    for file in folder.iterdir():
        file.chmod(0o644)


def _read_unprivileged(path: Path, threaded: bool = False) -> dict[str, object]:
    done = _run_unprivileged("-c", _READER, str(path), "threaded" if threaded else "inline")
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def _expect_read_only(
    result: dict[str, object], journal: list[int], *, file_writable: bool = False
) -> None:
    assert result["can_write"] is file_writable
    assert result["journal"] == journal
    assert (result["total"], result["status"]) == (1, "awaiting")
    message = str(result["append"])
    assert "is opened read-only (this process cannot write" in message
    assert message.endswith("append refused; nothing was written")


@pytest.mark.parametrize("threaded", [False, True], ids=["inline", "threaded"])
async def test_an_unwritable_file_is_opened_read_only(locked: Path, threaded: bool) -> None:
    path = locked / "w.db"
    await _populated(path)
    path.chmod(0o444)
    digest = _digest(path)
    _expect_read_only(_read_unprivileged(path, threaded), [1, 2])
    assert _digest(path) == digest


async def test_a_file_in_an_unwritable_directory_is_read_as_immutable(locked: Path) -> None:
    # No process has the WAL file open, so it has no -shm index, and none can be created:
    # SQLite reads it only as immutable. The store does, and watches for a writer.
    path = locked / "w.db"
    await _populated(path)
    assert not Path(f"{path}-wal").exists()
    locked.chmod(0o555)  # the file itself stays writable
    digest = _digest(path)
    _expect_read_only(_read_unprivileged(path), [1, 2], file_writable=True)
    assert _digest(path) == digest

    reader = _unprivileged("-c", _READER, str(path), "inline", "wait", stdin=subprocess.PIPE)
    assert reader.stdin is not None
    assert reader.stdout is not None
    try:
        first = json.loads(await asyncio.to_thread(reader.stdout.readline))
        assert first["journal"] == [1, 2]
        writer = SqliteStore(path)  # a process that may write the directory opens the file
        await writer.append(KEY, 2, [event(3)])
        reader.stdin.write("go\n")
        reader.stdin.flush()
        out, err = await asyncio.to_thread(reader.communicate, timeout=60)
        await writer.close()
    finally:
        if reader.poll() is None:
            reader.kill()
    assert reader.returncode == 0, err
    second = json.loads(out)
    assert second["error"] == "StoreUnavailable", second
    assert "another process has since opened it for writing" in second["message"]


async def test_an_unwritable_directory_with_a_writer_running(locked: Path) -> None:
    # The writer's -wal and -shm files exist: the reader shares them (read-only) and sees
    # what the writer committed, checkpointed or not.
    path = locked / "w.db"
    await _populated(path)
    writer = SqliteStore(path)
    try:
        await writer.append(KEY, 2, [event(3)])  # in the -wal only
        locked.chmod(0o555)
        path.chmod(0o444)
        _expect_read_only(_read_unprivileged(path), [1, 2, 3])
    finally:
        await writer.close()


async def test_an_unwritable_old_schema_raises_store_read_only(locked: Path) -> None:
    path = locked / "w.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE unrelated (x)")
    conn.close()
    path.chmod(0o444)
    script = textwrap.dedent(
        """
        import asyncio, sys
        from workflows4py.stores import SqliteStore
        async def main():
            store = SqliteStore(sys.argv[1])
            try:
                await store.initialize()
            except Exception as e:
                print(type(e).__name__, e)
            await store.close()
        asyncio.run(main())
        """
    )
    done = _run_unprivileged("-c", script, str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("StoreReadOnly SQLite database ")
    assert "this process cannot write the file" in done.stdout
    assert "its schema is missing (a new file)" in done.stdout


def test_the_cli_reads_an_unwritable_database(locked: Path) -> None:
    path = locked / "workflows.db"

    async def populate() -> None:
        async with make_runtime(path) as runtime:
            await runtime.create_instance("w-0")

    asyncio.run(populate())
    locked.chmod(0o555)
    path.chmod(0o444)
    digest = _digest(path)
    os.environ[DB_ENV] = str(path)  # inherited by the subprocesses
    try:
        listing = _run_unprivileged("-m", "workflows4py", "instances", "worker_app:runtimes")
        shown = _run_unprivileged("-m", "workflows4py", "show", "worker_app:runtimes", "w-0")
        as_json = _run_unprivileged(
            "-m", "workflows4py", "show", "worker_app:runtimes", "w-0", "--json"
        )
    finally:
        del os.environ[DB_ENV]
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.splitlines()[1].split()[1] == "w-0"
    assert listing.stdout.splitlines()[-1] == "1 shown of 1 matching"
    assert shown.returncode == 0, shown.stderr
    assert "w-0" in shown.stdout.splitlines()[0]
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["journal"][0]["type"] == "workflows4py.TimerStarted"
    assert _digest(path) == digest


async def test_a_read_only_sqlite_runtime_reads_and_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    async with SqliteRuntime(Shop, path, initial_state=Order()) as writer:
        order = await writer.create_instance("o-1")
        await order.deliver_signal(place_signal, Place("book"))
        state = await order.query_state()
        journal = await order.get_journal()
    before = _digest(path)
    async with SqliteRuntime(Shop, path, initial_state=Order(), read_only=True) as reader:
        assert "read_only=True" in repr(reader.store)
        order = await reader.get_instance("o-1")
        assert await order.query_state() == state
        assert await order.get_journal() == journal
        assert [r.key.instance_id for r in (await reader.search()).records] == ["o-1"]
        with pytest.raises(StoreReadOnly, match="nothing was written"):
            await order.deliver_signal(place_signal, Place("pen"))
        with pytest.raises(StoreReadOnly):
            await reader.create_instance("o-2")
    assert _digest(path) == before
