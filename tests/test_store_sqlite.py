"""The SQLite store against the conformance suite, plus what only a file can show."""

from __future__ import annotations

import asyncio
import functools
import json
import multiprocessing
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest
from sqlite_schema import at_version, version_1
from store_conformance import KEY, T0, at, event, found_ids, settle

from workflows4py import SequenceConflict, StoreError, StoreReadOnly, StoreUnavailable
from workflows4py.stores import InstanceKey, NewEvent, SearchQuery, SqliteStore
from workflows4py.testing import StoreConformance, StoreFactory


class TestSqliteStore(StoreConformance):
    @pytest.fixture
    def new_store(self, tmp_path: Path) -> StoreFactory:
        path = tmp_path / "store.db"
        return lambda: SqliteStore(path)


class TestSqliteStoreThreaded(StoreConformance):
    @pytest.fixture
    def new_store(self, tmp_path: Path) -> StoreFactory:
        path = tmp_path / "store.db"
        return lambda: SqliteStore(path, threaded=True)


async def test_data_survives_reopening(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "w.db")
    await store.initialize()
    await store.create(KEY, T0)
    await store.append(KEY, 0, [event(1), event(2)])
    await store.close()
    store = SqliteStore(str(tmp_path / "w.db"))
    await store.initialize()
    assert [e.sequence for e in await store.read(KEY)] == [1, 2]
    assert await store.exists(KEY)
    await store.close()


async def test_settings_are_applied(tmp_path: Path) -> None:
    for setting, value in (("FULL", 2), ("NORMAL", 1), ("OFF", 0)):
        store = SqliteStore(tmp_path / "w.db", synchronous=setting)  # type: ignore[arg-type]
        await store.initialize()
        pragmas = await store._run(
            lambda conn: (
                conn.execute("PRAGMA journal_mode").fetchone()[0],
                conn.execute("PRAGMA synchronous").fetchone()[0],
            )
        )
        assert pragmas == ("wal", value)
        await store.close()
    with pytest.raises(ValueError, match="synchronous"):
        SqliteStore(tmp_path / "w.db", synchronous="EXTRA")  # type: ignore[arg-type]


async def test_schema_versions_are_recorded(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    store = SqliteStore(path)
    await store.initialize()
    await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM migrations").fetchall() == [
            (v,) for v, _, _ in SqliteStore.MIGRATIONS
        ]
        conn.execute("INSERT INTO migrations VALUES (999, 'from the future', 0)")
    conn.close()
    store = SqliteStore(path)
    with pytest.raises(StoreError, match="upgrade workflows4py"):
        await store.initialize()
    await store.close()


async def test_a_version_1_file_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    conn = version_1(path)
    conn.execute(
        "INSERT INTO instances (workflow, instance_id, status, created_at, updated_at, tags) "
        "VALUES (?, ?, 'awaiting', 0, 0, '{\"k\":\"v\"}')",
        (KEY.workflow, KEY.instance_id),
    )
    conn.close()
    store = SqliteStore(path)
    try:
        await store.initialize()
        record = await store.get_record(KEY)
        assert record is not None
        assert (record.status, record.tags, record.failures, record.last_error) == (
            "awaiting",
            {"k": "v"},
            0,
            None,
        )
        await store.update(KEY, "awaiting", None, {}, T0, error="boom")
        record = await store.get_record(KEY)
        assert record is not None
        assert (record.failures, record.last_error) == (1, "boom")
    finally:
        await store.close()


async def test_a_version_3_file_migrates_to_4_and_its_tags_are_searchable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "w.db"
    conn = at_version(path, 3)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    rows = [  # (workflow, id, created, updated, tags as stored)
        ("w", "a", 3, 10, '{"team":"x","n":"1"}'),
        ("w", "b", 1, 30, '{"team":"y"}'),
        ("v", "c", 2, 20, '{"team":"x"}'),
        ("v", "d", 0, 0, "[1]"),  # not an object (a corrupt row): no tags, and no error
        ("v", "e", 0, 0, "not json"),
    ]
    conn.executemany(
        "INSERT INTO instances (workflow, instance_id, status, created_at, updated_at, tags) "
        "VALUES (?, ?, 'awaiting', ?, ?, ?)",
        [
            (
                wf,
                iid,
                (at(c) - epoch) // timedelta(microseconds=1),
                (at(u) - epoch) // timedelta(microseconds=1),
                tags,
            )
            for wf, iid, c, u, tags in rows
        ],
    )
    conn.close()
    store = SqliteStore(path)
    try:
        await store.initialize()
        ids = functools.partial(found_ids, store)

        assert await ids(tags={"team": "x"}) == ["a", "c"]
        assert await ids(tags={"team": "x"}, sort="created") == ["c", "a"]
        assert await ids(tags={"team": "x", "n": "1"}) == ["a"]
        assert await ids(tags={"team": "y"}, workflow="w") == ["b"]
        # the triggers keep the tags of rows written after the migration
        await store.update(InstanceKey("w", "b"), "finished", None, {"team": "x"}, at(40))
        await store.create(InstanceKey("w", "f"), at(50))
        await store.update(InstanceKey("w", "f"), "awaiting", None, {"team": "x"}, at(50))
        assert await ids(tags={"team": "x"}) == ["a", "c", "b", "f"]
        assert await ids(tags={"team": "y"}) == []
        await store.purge(["finished"], at(100), at(100), 10)
        assert await ids(tags={"team": "x"}) == ["a", "c", "f"]
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        assert [v for (v,) in conn.execute("SELECT version FROM migrations")] == [1, 2, 3, 4, 5]
        tagged = conn.execute(
            "SELECT workflow, instance_id, key, value FROM instance_tags ORDER BY 1, 2, 3"
        ).fetchall()
    conn.close()
    assert tagged == [
        ("v", "c", "team", "x"),
        ("w", "a", "n", "1"),
        ("w", "a", "team", "x"),
        ("w", "f", "team", "x"),
    ]


async def test_a_version_4_file_migrates_to_5_and_its_tag_searches_keep_their_order(
    tmp_path: Path,
) -> None:
    path = tmp_path / "w.db"
    conn = at_version(path, 4)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)

    def us(seconds: int) -> int:
        return (at(seconds) - epoch) // timedelta(microseconds=1)

    rows = [  # (workflow, id, created, updated, tags as stored)
        ("w", "a", 3, 10, '{"team":"x","n":"1"}'),
        ("w", "b", 1, 30, '{"team":"y"}'),
        ("v", "c", 2, 20, '{"team":"x"}'),
        ("v", "d", 0, 0, "[1]"),  # not an object: no tags
    ]
    conn.executemany(
        "INSERT INTO instances (workflow, instance_id, status, created_at, updated_at, tags) "
        "VALUES (?, ?, 'awaiting', ?, ?, ?)",
        [(wf, iid, us(c), us(u), tags) for wf, iid, c, u, tags in rows],
    )
    conn.close()
    store = SqliteStore(path)
    try:
        await store.initialize()
        ids = functools.partial(found_ids, store)

        assert await ids(tags={"team": "x"}) == ["a", "c"]
        assert await ids(tags={"team": "x"}, descending=True) == ["c", "a"]
        assert await ids(tags={"team": "x"}, sort="created") == ["c", "a"]
        assert await ids(tags={"team": "x", "n": "1"}) == ["a"]
        assert await ids(tags={"team": "x"}, workflow="v") == ["c"]
        assert await ids(tags={"team": "x"}, after=(at(10), "w", "a")) == ["c"]
        assert await ids(tags={"team": "x"}, sort="created", after=(at(2), "v", "c")) == ["a"]
        # the triggers keep the instants of the tag rows equal to their instance's
        await store.update(InstanceKey("w", "a"), "awaiting", None, {"team": "x"}, at(40))
        assert await ids(tags={"team": "x"}) == ["c", "a"]
        await store.update(InstanceKey("w", "b"), "finished", None, {"team": "x"}, at(35))
        assert await ids(tags={"team": "x"}) == ["c", "b", "a"]
        await store.create(InstanceKey("w", "f"), at(50))
        await store.update(InstanceKey("w", "f"), "awaiting", None, {"team": "x"}, at(50))
        assert await ids(tags={"team": "x"}, descending=True) == ["f", "a", "b", "c"]
        await store.purge(["finished"], at(100), at(100), 10)
        assert await ids(tags={"team": "x"}) == ["c", "a", "f"]
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        assert [v for (v,) in conn.execute("SELECT version FROM migrations")] == [1, 2, 3, 4, 5]
        stale = conn.execute(
            "SELECT count(*) FROM instance_tags AS t JOIN instances AS i USING "
            "(workflow, instance_id) WHERE t.updated_at IS NOT i.updated_at "
            "OR t.created_at IS NOT i.created_at"
        ).fetchone()[0]
        tagged = conn.execute("SELECT count(*) FROM instance_tags").fetchone()[0]
    conn.close()
    assert (stale, tagged) == (0, 3)  # c, a (its update dropped "n"), f


async def test_unopenable_file_raises_store_unavailable(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "missing-dir" / "w.db")
    with pytest.raises(StoreUnavailable) as info:
        await store.initialize()
    assert isinstance(info.value.__cause__, sqlite3.Error)
    await store.close()


async def test_a_file_that_is_not_a_database_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    path.write_bytes(b"this is not a database" * 100)
    store = SqliteStore(path)
    with pytest.raises(StoreError):
        await store.initialize()
    await store.close()


@pytest.mark.parametrize("threaded", [False, True], ids=["inline", "threaded"])
async def test_a_write_lock_held_too_long_raises_store_unavailable(
    tmp_path: Path, threaded: bool
) -> None:
    path = tmp_path / "w.db"
    store = SqliteStore(path, busy_timeout=0.2, threaded=threaded)
    await store.initialize()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        start = time.monotonic()
        with pytest.raises(StoreUnavailable, match="locked"):
            await store.append(KEY, 0, [event(1), event(2)])
        with pytest.raises(StoreUnavailable, match="locked"):
            await store.append(KEY, 0, [event(1)])
        assert time.monotonic() - start >= 0.35  # each waited for the busy timeout
        assert await store.read(KEY) == []  # readers are not blocked by a writer (WAL)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    await store.append(KEY, 0, [event(1)])
    await store.close()


async def test_inline_waiting_for_a_lock_does_not_block_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    store = SqliteStore(path)
    await store.initialize()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def unblock_soon() -> None:
        await asyncio.sleep(0.3)
        blocker.execute("ROLLBACK")

    ticking = asyncio.create_task(ticker())
    try:
        await asyncio.gather(store.append(KEY, 0, [event(1)]), unblock_soon())
        assert ticks >= 10  # the loop ran other tasks while the append waited for the lock
        assert [e.sequence for e in await store.read(KEY)] == [1]
    finally:
        ticking.cancel()
        blocker.close()
        await store.close()


async def test_wait_for_work_notices_other_processes(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    store = SqliteStore(path)
    await store.initialize()
    await store.create(KEY, T0)
    await settle(store)
    other = sqlite3.connect(path, isolation_level=None)  # as another process would write
    try:

        async def set_wakeup() -> None:
            await asyncio.sleep(0.05)
            other.execute("UPDATE instances SET next_wakeup = 0")

        start = time.monotonic()
        await asyncio.gather(store.wait_for_work(10), set_wakeup())
        assert time.monotonic() - start < 2
        other.execute("UPDATE instances SET next_wakeup = 1")  # between two waits: latched
        start = time.monotonic()
        await store.wait_for_work(10)
        assert time.monotonic() - start < 2
    finally:
        other.close()
        await store.close()


async def test_wait_for_change_is_a_poll_of_at_most_50_ms(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "w.db")
    await store.initialize()
    try:
        for _ in range(3):
            start = time.monotonic()
            await store.wait_for_change(5)  # other processes' commits are not signalled
            assert time.monotonic() - start < 1
    finally:
        await store.close()


# -- several processes, one file ---------------------------------------------------------

SHARED = InstanceKey("mp", "shared")


def _append_in_process(path: str, worker: int, count: int, ready: Barrier) -> None:
    asyncio.run(_append_many(path, worker, count, ready))


async def _append_many(path: str, worker: int, count: int, ready: Barrier) -> None:
    store = SqliteStore(path, threaded=worker % 2 == 1)  # both modes side by side
    ready.wait(timeout=60)
    await store.initialize()  # every process initializes the new file at once
    ready.wait(timeout=60)
    last = 0
    n = 0
    while n < count:
        last += len(await store.read(SHARED, after=last))
        size = 1 + (n + worker) % 2  # appends of one and of two events
        batch = [
            NewEvent("Ev", json.dumps({"worker": worker, "n": m}), datetime.now(UTC))
            for m in range(n, min(n + size, count))
        ]
        try:
            await store.append(SHARED, last, batch)
        except SequenceConflict:
            continue
        n += len(batch)
        last += len(batch)
    await store.close()


async def test_processes_appending_to_one_instance_never_fork_it(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    workers, count = 4, 40
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Barrier(workers)
    procs = [
        ctx.Process(target=_append_in_process, args=(path, w, count, ready)) for w in range(workers)
    ]
    for p in procs:
        p.start()
    loop = asyncio.get_running_loop()
    try:
        for p in procs:
            await loop.run_in_executor(None, p.join, 90)
        assert [p.exitcode for p in procs] == [0] * workers
    finally:
        for p in procs:  # never leave a stuck child behind (the interpreter would wait on it)
            if p.is_alive():
                p.kill()
    store = SqliteStore(path)
    await store.initialize()
    entries = await store.read(SHARED)
    await store.close()
    assert [e.sequence for e in entries] == list(range(1, workers * count + 1))
    written = [(d["worker"], d["n"]) for d in (json.loads(e.data) for e in entries)]
    assert sorted(written) == [(w, n) for w in range(workers) for n in range(count)]
    for w in range(workers):  # each process's events are in its own order
        assert [n for ww, n in written if ww == w] == list(range(count))


@pytest.mark.parametrize("threaded", [False, True], ids=["inline", "threaded"])
async def test_an_idle_claim_does_not_wait_for_the_write_lock(
    tmp_path: Path, threaded: bool
) -> None:
    path = tmp_path / "w.db"
    store = SqliteStore(path, busy_timeout=5, threaded=threaded)
    await store.initialize()
    await store.create(KEY, T0, next_wakeup=T0 + timedelta(hours=1))
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process is writing
    try:
        start = time.monotonic()
        assert await store.claim_due(T0, 10, 30) == []  # nothing due: a read suffices
        assert time.monotonic() - start < 1
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        await store.close()


@pytest.mark.parametrize("threaded", [False, True], ids=["inline", "threaded"])
async def test_an_idle_purge_does_not_wait_for_the_write_lock(
    tmp_path: Path, threaded: bool
) -> None:
    path = tmp_path / "w.db"
    store = SqliteStore(path, busy_timeout=5, threaded=threaded)
    await store.initialize()
    await store.create(KEY, T0)  # awaiting: nothing to purge
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process is writing
    try:
        start = time.monotonic()
        assert await store.purge(["finished"], T0 + timedelta(days=1), T0, 10) == []
        assert time.monotonic() - start < 1
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        await store.close()


async def test_purge_of_a_read_only_file_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    writer = SqliteStore(path)
    await writer.initialize()
    await writer.create(KEY, T0)
    await writer.append(KEY, 0, [event(1)])
    await writer.update(KEY, "finished", None, {}, T0)
    await writer.close()
    store = SqliteStore(path, read_only=True)
    try:
        later = T0 + timedelta(days=1)
        assert await store.purge(["failed"], later, later, 10) == []  # nothing to purge: a read
        with pytest.raises(StoreReadOnly, match="purge refused; nothing was written"):
            await store.purge(["finished"], later, later, 10)
        assert await store.exists(KEY)
        assert [e.sequence for e in await store.read(KEY)] == [1]
    finally:
        await store.close()


async def test_purge_deletes_a_row_whose_key_does_not_decode_and_logs_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "w.db"
    store = SqliteStore(path)
    await store.initialize()
    try:
        await store.create(KEY, T0)
        await store.update(KEY, "finished", None, {}, T0 + timedelta(seconds=1))
        with sqlite3.connect(path) as conn:  # a BLOB key: TEXT affinity keeps it a BLOB
            conn.execute(
                "INSERT INTO instances (workflow, instance_id, status, created_at, updated_at) "
                "VALUES (?, X'00ff', 'finished', 0, 0)",
                (KEY.workflow,),
            )
        conn.close()
        later = T0 + timedelta(days=1)
        with caplog.at_level("WARNING", logger="workflows4py"):
            assert await store.purge(["finished"], later, later, 10) == [KEY]
        assert "instances.instance_id" in caplog.text
        assert (await store.search(SearchQuery())).total == 0
    finally:
        await store.close()
