"""Group commit: appends and registry writes of instances that are ready together commit in
one transaction, on SQLite and PostgreSQL, with no weaker guarantee than one at a time.

Store-level tests (both databases) and the batcher's own rules with fake writers. The crash
between a batch's commit and its acknowledgements is in ``test_group_commit_crash.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from group_commit_app import Count, Counted, registry_group
from pg import fresh_schema, require_postgres
from psycopg import sql
from psycopg.conninfo import make_conninfo

from workflows4py import WIO, SequenceConflict, StoreError, StoreUnavailable, Workflow
from workflows4py.runtime import Runtime
from workflows4py.stores import (
    GroupCommit,
    InstanceKey,
    NewEvent,
    PostgresStore,
    Snapshot,
    SqliteStore,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
Store = SqliteStore | PostgresStore


def ev(n: int, data: str = '{"n":1}') -> NewEvent:
    return NewEvent(f"e{n}", data, T0)


def key(n: int) -> InstanceKey:
    return InstanceKey("wf", f"i{n:03d}")


@pytest.fixture(params=["sqlite", "postgres"])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[list[Store]]:
    """Two stores over one database (two processes' worth), both initialized."""
    made: list[Store] = []
    if request.param == "sqlite":
        made = [SqliteStore(tmp_path / "gc.db"), SqliteStore(tmp_path / "gc.db")]
        for store in made:
            await store.initialize()
        yield made
    else:
        dsn = require_postgres()
        with fresh_schema(dsn) as schema:
            made = [PostgresStore(dsn, schema=schema), PostgresStore(dsn, schema=schema)]
            for store in made:
                await store.initialize()
            yield made
            for store in made:
                await store.close()
        return
    for store in made:
        await store.close()


@asynccontextmanager
async def postgres_store(conninfo: str | None = None) -> AsyncIterator[tuple[PostgresStore, str]]:
    """A PostgresStore (on ``conninfo``, default the tests' server) over a fresh schema,
    initialized, and the schema's name."""
    dsn = require_postgres()
    with fresh_schema(dsn) as schema:
        store = PostgresStore(conninfo or dsn, schema=schema)
        try:
            await store.initialize()
            yield store, schema
        finally:
            await store.close()


def batches(store: Store) -> int:
    group = store._group
    assert group is not None
    return group.batches


async def test_appends_ready_together_commit_together(stores: list[Store]) -> None:
    store = stores[0]
    keys = [key(n) for n in range(40)]
    for step in range(3):
        await asyncio.gather(*(store.append(k, step, [ev(step + 1)]) for k in keys))
    assert batches(store) >= 3  # the appends of one round went in (far) fewer transactions
    for k in keys:
        entries = await store.read(k)
        assert [(e.sequence, e.type) for e in entries] == [(1, "e1"), (2, "e2"), (3, "e3")]


async def test_a_lone_append_is_written_alone_at_once(stores: list[Store]) -> None:
    store = stores[0]
    for step in range(5):
        await store.append(key(0), step, [ev(step + 1)])
    assert batches(store) == 0
    assert len(await store.read(key(0))) == 5


async def test_a_conflicting_append_fails_only_itself(stores: list[Store]) -> None:
    store = stores[0]
    await store.append(key(7), 0, [ev(1)])
    # key 7 is already at #1, key 8 has a gap (expects #4 to exist): both conflict
    calls = [store.append(key(n), 0, [ev(1)]) for n in range(6)]
    calls += [store.append(key(7), 0, [ev(1)]), store.append(key(8), 3, [ev(4)])]
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert outcomes[:6] == [None] * 6
    assert isinstance(outcomes[6], SequenceConflict)
    assert (outcomes[6].expected, outcomes[6].actual) == (0, 1)
    assert isinstance(outcomes[7], SequenceConflict)
    assert (outcomes[7].expected, outcomes[7].actual) == (3, 0)
    for n in range(6):
        assert [e.sequence for e in await store.read(key(n))] == [1]
    assert await store.read(key(8)) == []


async def test_a_failing_batch_writes_each_alone(stores: list[Store]) -> None:
    """An event the database refuses fails the batch's transaction; the others are then
    written one by one and succeed, and only the bad one fails."""
    store = stores[0]
    # PostgreSQL text cannot hold NUL; SQLite cannot encode a lone surrogate as UTF-8
    bad = '{"s":"\x00"}' if isinstance(store, PostgresStore) else '{"s":"\ud800"}'
    calls = [store.append(key(n), 0, [ev(1)]) for n in range(5)]
    calls.insert(2, store.append(key(99), 0, [ev(1, bad)]))
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert [o for n, o in enumerate(outcomes) if n != 2] == [None] * 5
    assert isinstance(outcomes[2], Exception)
    assert not isinstance(outcomes[2], SequenceConflict)
    for n in range(5):
        assert [e.sequence for e in await store.read(key(n))] == [1]
    assert await store.read(key(99)) == []


async def test_two_stores_racing_for_the_same_journals_never_fork_them(
    stores: list[Store],
) -> None:
    """Two writers (each batching) append every event of the same 30 journals at the same
    positions at once: each position is won exactly once, the loser is told, and every
    journal ends contiguous, its events all from the winners."""
    keys = [key(n) for n in range(30)]
    won: dict[InstanceKey, list[int]] = {k: [] for k in keys}
    for seq in range(1, 6):
        calls = []
        for k in keys:
            for writer, store in enumerate(stores):
                calls.append((k, writer, store.append(k, seq - 1, [ev(seq, f'{{"w":{writer}}}')])))
        outcomes = await asyncio.gather(*(c for _, _, c in calls), return_exceptions=True)
        by_key: dict[InstanceKey, list[int]] = {k: [] for k in keys}
        for (k, writer, _), outcome in zip(calls, outcomes, strict=True):
            if outcome is None:
                by_key[k].append(writer)
            else:
                assert isinstance(outcome, SequenceConflict), outcome
                assert outcome.actual == seq
        for k in keys:
            assert len(by_key[k]) == 1, (k, seq, by_key[k])
            won[k].append(by_key[k][0])
    for k in keys:
        entries = await stores[1].read(k)
        assert [e.sequence for e in entries] == [1, 2, 3, 4, 5]
        assert [e.data for e in entries] == [f'{{"w":{w}}}' for w in won[k]]


def registry_batches(store: Store) -> int:
    """How many batches of registry writes the store has committed."""
    return registry_group(store).batches


async def test_registry_writes_of_many_instances_commit_together(stores: list[Store]) -> None:
    """create, take, update and release of many instances at once: each gets its own answer,
    and they went together."""
    store = stores[0]
    keys = [key(n) for n in range(25)]
    created = await asyncio.gather(*(store.create_leased(k, "me", 30.0, T0, [ev(1)]) for k in keys))
    assert created == [True] * 25
    assert registry_batches(store) >= 1
    again = await asyncio.gather(*(store.create_leased(k, "you", 30.0, T0) for k in keys))
    assert again == [False] * 25
    await asyncio.gather(*(store.release(k, "me") for k in keys))
    for k in keys:
        record = await store.get_record(k)
        assert record is not None
        assert record.status == "running"
        assert [e.type for e in await store.read(k)] == ["e1"]
    # every lease is free again: another owner takes them all at once
    await asyncio.gather(*(store.acquire(k, "you", 30.0, 0.0, T0) for k in keys))


async def test_a_create_that_finds_its_lease_taken_undoes_only_itself(stores: list[Store]) -> None:
    """In one batch, instances whose lease another owner already holds are not created (their
    rows undone), and the others beside them are."""
    store = stores[0]
    taken = [key(n) for n in range(0, 20, 2)]
    for k in taken:  # leased before the instance exists
        await store.acquire(k, "other", 30.0, 0.0, T0)
    before = registry_batches(store)
    created = await asyncio.gather(
        *(store.create_leased(key(n), "me", 30.0, T0, [ev(1)]) for n in range(20))
    )
    assert registry_batches(store) > before
    assert created == [n % 2 == 1 for n in range(20)]
    for n in range(20):
        record = await store.get_record(key(n))
        if n % 2:
            assert record is not None
            assert [e.type for e in await store.read(key(n))] == ["e1"]
        else:
            assert record is None
            assert await store.read(key(n)) == []


async def test_postgres_sends_a_second_batch_beside_the_one_under_way() -> None:
    """With the journal locked, the first append waits in its transaction; once 128 more wait,
    a second transaction is sent beside it, and no third: two under way at most."""
    dsn = require_postgres()
    async with postgres_store() as (store, schema):
        keys = [key(n) for n in range(300)]
        table = sql.SQL("{}.journal").format(sql.Identifier(schema))
        with psycopg.connect(dsn) as locker:
            locker.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(table))
            first = asyncio.ensure_future(store.append(keys[0], 0, [ev(1)]))
            await asyncio.sleep(0.2)  # sent: it waits for the lock
            rest = [asyncio.ensure_future(store.append(k, 0, [ev(1)])) for k in keys[1:]]
            waiting = 0
            for _ in range(50):
                await asyncio.sleep(0.05)
                waiting = _waiting_for(locker, schema)
                if waiting >= 2:
                    break
            await asyncio.sleep(0.3)  # time for a third, if one were sent
            assert _waiting_for(locker, schema) == 2
            locker.rollback()  # the lock goes
        await asyncio.gather(first, *rest)
        for k in keys:
            assert [e.sequence for e in await store.read(k)] == [1]


def _waiting_for(conn: psycopg.Connection[Any], schema: str) -> int:
    """How many backends wait for a lock on the schema's journal."""
    row = conn.execute(
        """SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT l.granted AND c.relname = 'journal' AND n.nspname = %s""",
        (schema,),
    ).fetchone()
    return int(row[0]) if row else 0


async def test_a_batch_chosen_as_a_deadlock_victim_is_written_item_by_item(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A batch that PostgreSQL rolls back to break a deadlock is not a database gone away:
    each of its writes is tried again alone, and each succeeds once the other side ends."""
    dsn = require_postgres()
    # the store's transactions look for deadlocks after 0.5 s, the other side's after 10 s
    quick_to_detect = make_conninfo(dsn, options="-c deadlock_timeout=500ms")
    async with postgres_store(quick_to_detect) as (store, schema):
        other = await psycopg.AsyncConnection.connect(dsn)
        try:
            a, b, c = InstanceKey("wf", "a"), InstanceKey("wf", "b"), InstanceKey("wf", "c")
            await store.create(b, T0)
            await store.create(c, T0)
            s = sql.Identifier(schema)
            await other.execute("SET deadlock_timeout = '10s'")
            await other.execute(
                sql.SQL("SELECT 1 FROM {}.instances WHERE instance_id = 'b' FOR UPDATE").format(s)
            )
            with caplog.at_level(logging.INFO, logger="workflows4py.stores"):
                lead = asyncio.ensure_future(store.update(c, "running", None, {}, T0))
                # written together once c's write ends: a's creation, then b's update waits
                created = asyncio.ensure_future(store.create_leased(a, "me", 30.0, T0))
                updated = asyncio.ensure_future(store.update(b, "running", None, {}, T0))
                await lead
                await _until_waiting(dsn, 1)
                # the other side now waits for the batch's lease of a: a deadlock, which the
                # batch (waiting longer) is chosen to end
                await other.execute(
                    sql.SQL(
                        "INSERT INTO {}.leases VALUES ('wf', 'a', 'other', now() + interval '1h')"
                    ).format(s)
                )
                await asyncio.sleep(0.3)  # the writes, each alone, wait for the other side now
                await other.rollback()
                assert await created is True
                await updated
            assert any("writing each alone" in r.message for r in caplog.records)
            record = await store.get_record(b)
            assert record is not None
            assert record.status == "running"
            assert await store.read(a) == []
        finally:
            await other.close()


async def _until_waiting(dsn: str, count: int) -> None:
    """Wait until ``count`` backends wait for a lock."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        for _ in range(100):
            cur = await conn.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
            row = await cur.fetchone()
            if row is not None and row[0] >= count:
                return
            await asyncio.sleep(0.02)
    raise AssertionError("nobody waits for a lock")


# -- the batcher's rules, with fake writers -----------------------------------------------


class Fake:
    """Writers that record each transaction (a tuple of items) and can be made to fail."""

    def __init__(self, *, fail_with: Exception | None = None, pause: float = 0.0) -> None:
        self.transactions: list[tuple[str, ...]] = []
        self.fail_with = fail_with
        self.pause = pause
        self.group = GroupCommit(self.one, self.many, lambda item: item[0], gather=False)

    async def one(self, item: str) -> str:
        await asyncio.sleep(self.pause)
        if item.endswith("!"):
            raise ValueError(f"bad {item}")
        self.transactions.append((item,))
        return item.upper()

    async def many(self, items: Sequence[str]) -> list[str | BaseException]:
        await asyncio.sleep(self.pause)
        if self.fail_with is not None:
            raise self.fail_with
        if any(item.endswith("!") for item in items):
            raise ValueError("the whole transaction failed")
        self.transactions.append(tuple(items))
        return [item.upper() for item in items]


async def test_whatever_arrives_during_a_write_goes_in_the_next_one() -> None:
    fake = Fake(pause=0.01)
    results = await asyncio.gather(*(fake.group.submit(f"{c}1") for c in "abcdef"))
    assert results == ["A1", "B1", "C1", "D1", "E1", "F1"]
    # the first is written at once, alone; the five that arrived meanwhile go together
    assert fake.transactions == [("a1",), ("b1", "c1", "d1", "e1", "f1")]


async def test_two_writes_of_one_key_never_share_a_transaction() -> None:
    fake = Fake(pause=0.01)
    await asyncio.gather(*(fake.group.submit(s) for s in ["a1", "b1", "b2", "c1", "b3"]))
    assert fake.transactions == [("a1",), ("b1", "c1"), ("b2",), ("b3",)]


async def test_a_failed_transaction_is_retried_item_by_item() -> None:
    fake = Fake(pause=0.01)
    outcomes = await asyncio.gather(
        *(fake.group.submit(s) for s in ["a1", "b1", "c!", "d1"]), return_exceptions=True
    )
    assert outcomes[:2] == ["A1", "B1"]
    assert outcomes[3] == "D1"
    assert isinstance(outcomes[2], ValueError)
    assert str(outcomes[2]) == "bad c!"
    assert fake.transactions == [("a1",), ("b1",), ("d1",)]


async def test_an_unavailable_database_fails_the_batch_at_once() -> None:
    fake = Fake(pause=0.01, fail_with=StoreUnavailable("down"))
    outcomes = await asyncio.gather(
        *(fake.group.submit(s) for s in ["a1", "b1", "c1"]), return_exceptions=True
    )
    assert outcomes[0] == "A1"  # written alone, before the database went away
    assert all(isinstance(o, StoreUnavailable) for o in outcomes[1:])
    assert fake.transactions == [("a1",)]  # not retried one by one


async def test_a_caller_cancelled_before_its_write_writes_nothing() -> None:
    fake = Fake(pause=0.02)
    first = asyncio.ensure_future(fake.group.submit("a1"))
    await asyncio.sleep(0)
    waiting = asyncio.ensure_future(fake.group.submit("b1"))
    other = asyncio.ensure_future(fake.group.submit("c1"))
    await asyncio.sleep(0)
    waiting.cancel()
    assert await first == "A1"
    assert await other == "C1"
    assert fake.transactions == [("a1",), ("c1",)]


async def test_a_cancelled_leader_tells_the_others_of_its_batch() -> None:
    fake = Fake(pause=0.05)
    gather = GroupCommit(fake.one, fake.many, lambda item: item[0], gather=True)
    leader = asyncio.ensure_future(gather.submit("a1"))
    joined = asyncio.ensure_future(gather.submit("b1"))  # ready in the same turn: joins
    await asyncio.sleep(0.01)
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    with pytest.raises(StoreError, match="may or may not have committed"):
        await joined
    # the batcher is free again
    assert await gather.submit("c1") == "C1"


class Overlapping(Fake):
    """Fake writers that also record how many transactions were under way at once."""

    def __init__(self, *, pause: float, max_in_flight: int, split: int) -> None:
        super().__init__(pause=pause)
        self.group = GroupCommit(
            self.one,
            self.many,
            lambda item: item[0],
            gather=False,
            max_in_flight=max_in_flight,
            split=split,
        )
        self.active = 0
        self.most = 0
        self.events: list[str] = []  # "+items" as a transaction starts, "-items" as it ends

    async def _timed(self, items: Sequence[str], write: Any) -> Any:
        self.active += 1
        self.most = max(self.most, self.active)
        self.events.append("+" + ",".join(items))
        try:
            return await write
        finally:
            self.active -= 1
            self.events.append("-" + ",".join(items))

    async def one(self, item: str) -> str:
        result: str = await self._timed([item], super().one(item))
        return result

    async def many(self, items: Sequence[str]) -> list[str | BaseException]:
        result: list[str | BaseException] = await self._timed(items, super().many(items))
        return result


async def test_enough_waiting_writes_go_beside_the_one_under_way() -> None:
    fake = Overlapping(pause=0.02, max_in_flight=2, split=3)
    results = await asyncio.gather(*(fake.group.submit(f"{c}1") for c in "abcd"))
    assert results == ["A1", "B1", "C1", "D1"]
    # a1 is written at once; the third one waiting sends b1, c1 and d1 before a1 ends
    assert fake.events == ["+a1", "+b1,c1,d1", "-a1", "-b1,c1,d1"]
    assert fake.most == 2


async def test_fewer_waiting_writes_than_split_wait_for_the_one_under_way() -> None:
    fake = Overlapping(pause=0.02, max_in_flight=2, split=4)
    await asyncio.gather(*(fake.group.submit(f"{c}1") for c in "abcd"))
    assert fake.events == ["+a1", "-a1", "+b1,c1,d1", "-b1,c1,d1"]


async def test_transactions_under_way_never_exceed_max_in_flight() -> None:
    fake = Overlapping(pause=0.01, max_in_flight=2, split=2)
    letters = "abcdefghijklmnopqrstuvwxyz"
    results = await asyncio.gather(*(fake.group.submit(f"{c}1") for c in letters))
    assert results == [f"{c.upper()}1" for c in letters]
    assert fake.most == 2
    assert sorted(item for t in fake.transactions for item in t) == [f"{c}1" for c in letters]


async def test_a_key_under_way_is_not_written_beside_itself() -> None:
    fake = Overlapping(pause=0.02, max_in_flight=3, split=2)
    results = await asyncio.gather(*(fake.group.submit(s) for s in ["a1", "b1", "a2", "c1"]))
    assert results == ["A1", "B1", "A2", "C1"]
    # a2 waits for a1's transaction to end, though there is room for another one
    assert fake.events.index("+a2") > fake.events.index("-a1")
    for event in fake.events:
        if event.startswith("+") and "a2" in event:
            assert "a1" not in event


def test_max_in_flight_and_split_are_at_least_one() -> None:
    fake = Fake()
    with pytest.raises(ValueError, match="at least 1"):
        GroupCommit(fake.one, fake.many, lambda item: item[0], gather=False, max_in_flight=0)
    with pytest.raises(ValueError, match="at least 1"):
        GroupCommit(fake.one, fake.many, lambda item: item[0], gather=False, split=0)


# -- through a runtime ----------------------------------------------------------------------


async def _count(state: Count) -> Counted:
    return Counted(state.n + 1)


class Counting(Workflow[Count, Counted]):
    name = "gc-runtime"
    definition = WIO.repeat(WIO.run_io(Count, _count).handle_event(lambda s, e: Count(e.n))).until(
        lambda s: s.n >= 4
    )


@pytest.mark.parametrize("group_commit", [True, False])
async def test_runtime_sqlite_starts_many_at_once_in_shared_commits(
    tmp_path: Path, group_commit: bool
) -> None:
    runtime = Runtime.sqlite(
        tmp_path / "app.db",
        [Counting],
        initial_states={Counting: Count(0)},
        group_commit=group_commit,
    )
    async with runtime:
        await asyncio.gather(*(runtime.start(Counting, f"i{n}") for n in range(20)))
        for n in range(20):
            assert (await (await runtime.get(Counting, f"i{n}")).query_state()).n == 4
        store = runtime.store
        assert isinstance(store, SqliteStore)
        if group_commit:
            assert store._group is not None
            assert store._group.batches >= 4  # the steps of the 20 went together
        else:
            assert store._group is None


async def test_appends_of_several_events_are_written_alone(stores: list[Store]) -> None:
    store = stores[0]
    await asyncio.gather(*(store.append(key(n), 0, [ev(1), ev(2)]) for n in range(10)))
    assert batches(store) == 0
    for n in range(10):
        assert [e.sequence for e in await store.read(key(n))] == [1, 2]


async def test_sqlite_batches_lease_renewals_and_snapshots_too(tmp_path: Path) -> None:
    """On SQLite (docs/performance.md, "What is batched") the renewals and the snapshots of
    instances ready together share commits as well; each still writes its own row."""
    store = SqliteStore(tmp_path / "s.db")
    await store.initialize()
    try:
        keys = [key(n) for n in range(12)]
        assert all(
            await asyncio.gather(*(store.create_leased(k, "me", 30.0, T0, [ev(1)]) for k in keys))
        )
        before = batches(store)
        await asyncio.gather(*(store.renew(k, "me", 60.0, T0) for k in keys))
        assert batches(store) > before
        before = batches(store)
        await asyncio.gather(
            *(store.save_snapshot(k, Snapshot(1, f'{{"k":{n}}}')) for n, k in enumerate(keys))
        )
        assert batches(store) > before
        for n, k in enumerate(keys):
            assert await store.load_snapshot(k) == Snapshot(1, f'{{"k":{n}}}')
            with pytest.raises(StoreError):  # renewed to T0 + 60 s: still held at T0 + 45 s
                await store.acquire(k, "other", 30.0, 0.0, T0.replace(second=45))
    finally:
        await store.close()
