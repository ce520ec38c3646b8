"""The PostgreSQL store against the conformance suite, each test in a fresh schema.

Skipped when no server is reachable (see ``tests/pg.py``), failed instead under
``WORKFLOWS4PY_CI=1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, LiteralString, Protocol

import psycopg
import pytest
from pg import fresh_schema, require_postgres
from psycopg import sql
from store_conformance import KEY, OTHER, T0, at, found_ids

from workflows4py import DecodeError, LeaseTimeout, SequenceConflict, StoreUnavailable
from workflows4py.stores import InstanceKey, NewEvent, PostgresStore, SearchQuery, Snapshot
from workflows4py.testing import StoreConformance, StoreFactory


@pytest.fixture
def pg_dsn() -> str:
    return require_postgres()


@pytest.fixture
def pg_schema(pg_dsn: str) -> Iterator[str]:
    with fresh_schema(pg_dsn) as schema:
        yield schema


class TestPostgresStore(StoreConformance):
    @pytest.fixture
    def new_store(self, pg_dsn: str, pg_schema: str) -> StoreFactory:
        return lambda: PostgresStore(pg_dsn, schema=pg_schema, max_size=4)


async def test_open_initializes(pg_dsn: str, pg_schema: str) -> None:
    store = await PostgresStore.open(pg_dsn, schema=pg_schema)
    try:
        assert await store.create(KEY, T0)
    finally:
        await store.close()


async def test_unreachable_server_raises_store_unavailable() -> None:
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/test", connect_timeout=1)
    start = time.monotonic()
    try:
        with pytest.raises(StoreUnavailable):
            await store.initialize()
        with pytest.raises(StoreUnavailable):
            await store.exists(KEY)
    finally:
        await store.close()
    assert time.monotonic() - start < 10


async def test_more_callers_than_connections_all_get_one(pg_dsn: str, pg_schema: str) -> None:
    # the store keeps the connections it used for itself; callers waiting for the pool must
    # still get them back
    store = await PostgresStore.open(pg_dsn, schema=pg_schema, max_size=2, connect_timeout=5)
    try:
        keys = [InstanceKey("wf", f"i{n}") for n in range(40)]
        created = await asyncio.gather(*(store.create(k, T0) for k in keys))
        assert all(created)
        assert all(await asyncio.gather(*(store.exists(k) for k in keys)))
    finally:
        await store.close()


async def test_a_connection_killed_by_the_server_is_replaced(pg_dsn: str, pg_schema: str) -> None:
    store = await PostgresStore.open(pg_dsn, schema=pg_schema, max_size=2)
    try:
        await store.create(KEY, T0)
        async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as admin:
            cur = await admin.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND datname = current_database() "
                "AND query LIKE %s",
                (f"%{pg_schema.split(chr(34))[1]}%instances%",),
            )
            row = await cur.fetchone()
            assert row is not None
            assert row[0] >= 1
        # the warm connection died with its server process: one call may fail, typed...
        with contextlib.suppress(StoreUnavailable):
            await store.exists(KEY)
        # ...and the next ones get a working connection
        assert await store.exists(KEY)
    finally:
        await store.close()


async def test_create_leased_racing_an_append_of_event_1_writes_nothing(
    pg_dsn: str, pg_schema: str
) -> None:
    # event #1 is written, uncommitted, by another transaction when create_leased starts: its
    # snapshot sees an empty journal, its insert of #1 waits, then meets the committed one
    store = await PostgresStore.open(pg_dsn, schema=pg_schema)
    ident = sql.Identifier(pg_schema)
    try:
        async with await psycopg.AsyncConnection.connect(pg_dsn) as other:
            await other.execute(
                sql.SQL(
                    "INSERT INTO {s}.journal (workflow, instance_id, sequence, type, data, "
                    "recorded_at) VALUES (%s, %s, 1, 'Ev', '{{}}', %s)"
                ).format(s=ident),
                (KEY.workflow, KEY.instance_id, T0),
            )
            racing = asyncio.ensure_future(
                store.create_leased(KEY, "a", 10, T0, [NewEvent("Ev", '{"n": 1}', T0)])
            )
            await asyncio.sleep(0.3)
            assert not racing.done()  # waiting for the other transaction
            await other.commit()
            with pytest.raises(SequenceConflict) as info:
                await racing
        assert (info.value.expected, info.value.actual) == (0, 1)
        assert not await store.exists(KEY)
        assert [e.data for e in await store.read(KEY)] == ["{}"]
        await store.acquire(KEY, "b", 10, 0, T0)  # a took no lease
    finally:
        await store.close()


_RELEASE_IN_ANOTHER_PROCESS = """
import asyncio, sys
from datetime import datetime, timezone
from workflows4py.stores import InstanceKey, PostgresStore

async def main() -> None:
    store = await PostgresStore.open(sys.argv[1], schema=sys.argv[2])
    key = InstanceKey("order", "o-1")
    await store.acquire(key, "them", 30, 0, datetime(2030, 1, 1, tzinfo=timezone.utc))
    print("acquired", flush=True)
    sys.stdin.readline()  # until told to release
    await store.release(key, "them")
    await store.close()

asyncio.run(main())
"""


async def test_wait_for_change_wakes_on_a_release_by_another_process(
    pg_dsn: str, pg_schema: str
) -> None:
    store = await PostgresStore.open(pg_dsn, schema=pg_schema)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _RELEASE_IN_ANOTHER_PROCESS,
        pg_dsn,
        pg_schema,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdin is not None
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 60) == b"acquired\n"
        for _ in range(20):  # the first wait starts listening and returns at once
            start = time.monotonic()
            await store.wait_for_change(0.2)
            if time.monotonic() - start >= 0.15:
                break
        start = time.monotonic()
        proc.stdin.write(b"release\n")
        await proc.stdin.drain()
        await store.wait_for_change(5)
        assert time.monotonic() - start < 2
        assert await asyncio.wait_for(proc.wait(), 60) == 0
        await store.acquire(KEY, "us", 30, 0, T0)  # released indeed
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await store.close()


async def _schema_at(pg_dsn: str, pg_schema: str, version: int) -> psycopg.AsyncConnection[Any]:
    """Creates ``pg_schema`` with the migrations up to ``version`` only, recorded as applied;
    returns an open (autocommit) connection, which the caller closes."""
    ident = sql.Identifier(pg_schema)
    conn = await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True)
    await conn.execute(sql.SQL(PostgresStore.SQL["migrations_schema"]).format(s=ident))
    await conn.execute(sql.SQL(PostgresStore.SQL["migrations_table"]).format(s=ident))
    for number, description, statements in PostgresStore.MIGRATIONS:
        if number <= version:
            for statement in statements:
                await conn.execute(sql.SQL(statement).format(s=ident))
            await conn.execute(
                sql.SQL(PostgresStore.SQL["migrations_record"]).format(s=ident),
                (number, description),
            )
    return conn


async def test_a_version_1_schema_is_migrated_and_keeps_its_data(
    pg_dsn: str, pg_schema: str
) -> None:
    ident = sql.Identifier(pg_schema)
    async with await _schema_at(pg_dsn, pg_schema, 1) as conn:
        await conn.execute(
            sql.SQL(
                "INSERT INTO {s}.instances (workflow, instance_id, status, created_at, "
                "updated_at, tags) VALUES (%s, %s, 'awaiting', %s, %s, '{{\"k\": \"v\"}}')"
            ).format(s=ident),
            (KEY.workflow, KEY.instance_id, T0, T0),
        )
    store = await PostgresStore.open(pg_dsn, schema=pg_schema)
    try:
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


async def test_a_version_3_schema_migrates_to_4_and_its_tags_are_searchable(
    pg_dsn: str, pg_schema: str
) -> None:
    ident = sql.Identifier(pg_schema)
    rows = [  # (workflow, id, created, updated, tags)
        ("w", "a", 3, 10, '{"team": "x", "n": "1"}'),
        ("w", "b", 1, 30, '{"team": "y"}'),
        ("v", "c", 2, 20, '{"team": "x"}'),
    ]
    async with await _schema_at(pg_dsn, pg_schema, 3) as conn, conn.cursor() as cur:
        await cur.executemany(
            sql.SQL(
                "INSERT INTO {s}.instances (workflow, instance_id, status, created_at, "
                "updated_at, tags) VALUES (%s, %s, 'awaiting', %s, %s, %s::jsonb)"
            ).format(s=ident),
            [(wf, iid, at(c), at(u), tags) for wf, iid, c, u, tags in rows],
        )
    store = await PostgresStore.open(pg_dsn, schema=pg_schema)
    try:
        ids = functools.partial(found_ids, store)

        assert await ids(tags={"team": "x"}) == ["a", "c"]
        assert await ids(tags={"team": "x"}, sort="created") == ["c", "a"]
        assert await ids(sort="created", after=(at(1), "w", "b")) == ["c", "a"]
        assert await ids(tags={"team": "y"}, workflow="w") == ["b"]
    finally:
        await store.close()
    async with await psycopg.AsyncConnection.connect(pg_dsn) as conn:
        await _assert_versions(conn, ident, [1, 2, 3, 4, 5])
        cur = await conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND indexname LIKE %s",
            (pg_schema, "instances_created%"),
        )
        assert [name for (name,) in await cur.fetchall()] == ["instances_created"]


async def _assert_versions(
    conn: psycopg.AsyncConnection[Any], ident: sql.Identifier, versions: list[int]
) -> None:
    cur = await conn.execute(
        sql.SQL("SELECT version FROM {s}.migrations ORDER BY version").format(s=ident)
    )
    assert [v for (v,) in await cur.fetchall()] == versions


async def test_a_version_4_schema_migrates_to_5_and_claims_due_wakeups_in_index_order(
    pg_dsn: str, pg_schema: str
) -> None:
    ident = sql.Identifier(pg_schema)
    due = at(5)  # one instant for all: the order is (wakeup, workflow, instance id)
    rows = [("w", "b", due), ("w", "a", due), ("v", "z", due), ("v", "y", at(9)), ("u", "x", None)]
    async with await _schema_at(pg_dsn, pg_schema, 4) as conn, conn.cursor() as cur:
        await cur.executemany(
            sql.SQL(
                "INSERT INTO {s}.instances (workflow, instance_id, status, created_at, "
                "updated_at, next_wakeup) VALUES (%s, %s, 'awaiting', %s, %s, %s)"
            ).format(s=ident),
            [(wf, iid, at(0), at(0), wakeup) for wf, iid, wakeup in rows],
        )
    store = await PostgresStore.open(pg_dsn, schema=pg_schema)
    try:
        claims = await store.claim_due(at(10), 2, 30)
        assert [(c.key.workflow, c.key.instance_id) for c in claims] == [("v", "z"), ("w", "a")]
        claims = await store.claim_due(at(10), 10, 30)
        assert [(c.key.workflow, c.key.instance_id) for c in claims] == [("w", "b"), ("v", "y")]
        assert await store.next_wakeup(at(6)) == at(9)
    finally:
        await store.close()
    async with await psycopg.AsyncConnection.connect(pg_dsn) as conn:
        await _assert_versions(conn, ident, [1, 2, 3, 4, 5])
        cur = await conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s AND indexdef LIKE %s",
            (pg_schema, "%(next_wakeup%"),
        )
        (name, definition), *others = await cur.fetchall()
        assert (name, others) == ("instances_due", [])  # the one of migration 1 is gone
        assert "(next_wakeup, workflow, instance_id) WHERE (next_wakeup IS NOT NULL)" in definition


async def test_a_role_without_create_privilege_uses_an_existing_schema(
    pg_dsn: str, pg_schema: str
) -> None:
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    owner = await PostgresStore.open(pg_dsn, schema=pg_schema)
    await owner.close()
    role = f"w4p_app_{uuid.uuid4().hex[:8]}"
    ident = sql.Identifier(pg_schema)
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as admin:
        await admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        try:
            await admin.execute(
                sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(ident, sql.Identifier(role))
            )
            await admin.execute(
                sql.SQL(
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {}"
                ).format(ident, sql.Identifier(role))
            )
            app = await PostgresStore.open(make_conninfo(pg_dsn, user=role), schema=pg_schema)
            try:
                assert await app.create(KEY, T0)
                assert await app.exists(KEY)
            finally:
                await app.close()
        finally:
            await admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            await admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


# -- rows written by someone else: out-of-range values, altered columns ------------------------
#
# Whoever can write to the schema can store values the library never writes. Without any DDL:
# instants past year 9999, before year 1 or 'infinity' (psycopg cannot load them), tags that
# are not an object of strings or are nested deeper than Python parses, negative counts,
# snapshot sequences below 1. With DDL (the schema's owner): columns made nullable, CHECKs
# dropped, types altered. Each becomes a DecodeError naming the row, never a driver error.


@pytest.fixture
async def raw_store(pg_dsn: str, pg_schema: str) -> AsyncIterator[tuple[PostgresStore, Raw]]:
    store = await PostgresStore.open(pg_dsn, schema=pg_schema)
    ident = sql.Identifier(pg_schema)

    async def raw(statement: LiteralString, params: Sequence[Any] = ()) -> None:
        async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
            await conn.execute(sql.SQL(statement).format(s=ident), params)

    try:
        yield store, raw
    finally:
        await store.close()


class Raw(Protocol):
    """Runs one statement (``{s}`` is the schema) on a connection of its own, as the owner."""

    def __call__(self, statement: LiteralString, params: Sequence[Any] = ()) -> Awaitable[None]: ...


WHERE = "WHERE workflow = 'order' AND instance_id = 'o-1'"


async def _with_journal(store: PostgresStore) -> None:
    for key in (KEY, OTHER):
        await store.create(key, T0)
        await store.append(key, 0, [NewEvent("Ev", '{"n": 1}', T0), NewEvent("Ev", "{}", T0)])


@pytest.mark.parametrize(
    "corruption",
    [
        f"UPDATE {{s}}.journal SET recorded_at = 'infinity' {WHERE} AND sequence = 2",
        f"UPDATE {{s}}.journal SET recorded_at = '10000-01-01' {WHERE} AND sequence = 2",
        f"UPDATE {{s}}.journal SET recorded_at = '0001-01-01 BC' {WHERE} AND sequence = 2",
        "ALTER TABLE {s}.journal ALTER COLUMN data DROP NOT NULL; "
        f"UPDATE {{s}}.journal SET data = NULL {WHERE} AND sequence = 2",
        "ALTER TABLE {s}.journal ALTER COLUMN data TYPE bytea USING data::bytea",
        "ALTER TABLE {s}.journal ALTER COLUMN recorded_at TYPE text",
        "ALTER TABLE {s}.journal ALTER COLUMN recorded_at TYPE timestamp",
    ],
    ids=["infinity", "year-10000", "bc", "null-data", "bytea-data", "text-instant", "naive"],
)
async def test_a_journal_row_that_does_not_load_is_a_decode_error_naming_it(
    raw_store: tuple[PostgresStore, Raw], corruption: LiteralString
) -> None:
    store, raw = raw_store
    await _with_journal(store)
    await raw(corruption)
    with pytest.raises(DecodeError) as info:
        await store.read(KEY)
    error = info.value
    assert (error.workflow, error.instance_id) == ("order", "o-1")
    assert error.sequence in (1, 2)  # a DDL change spoils every row: the first one is named
    assert "instance 'o-1' of order, event #" in str(error)
    assert ": journal." in str(error)
    if "ALTER" not in corruption:
        assert error.sequence == 2
        assert [e.sequence for e in await store.read(KEY, after=2)] == []
        assert len(await store.read(OTHER)) == 2  # other instances read as before


@pytest.mark.parametrize(
    ("corruption", "column"),
    [
        (f"UPDATE {{s}}.instances SET tags = '[1, 2]' {WHERE}", "tags"),
        (f"UPDATE {{s}}.instances SET tags = '{{{{\"a\": 1}}}}' {WHERE}", "tags"),
        (f"UPDATE {{s}}.instances SET tags = 'null' {WHERE}", "tags"),
        (f"UPDATE {{s}}.instances SET tags = %s::jsonb {WHERE}", "tags"),  # nested too deep
        (f"UPDATE {{s}}.instances SET updated_at = 'infinity' {WHERE}", "updated_at"),
        (f"UPDATE {{s}}.instances SET created_at = '-infinity' {WHERE}", "created_at"),
        (f"UPDATE {{s}}.instances SET next_wakeup = '20000-01-01' {WHERE}", "next_wakeup"),
        (f"UPDATE {{s}}.instances SET failures = -3 {WHERE}", "failures"),
        (
            "ALTER TABLE {s}.instances DROP CONSTRAINT instances_status_check; "
            f"UPDATE {{s}}.instances SET status = 'zombie' {WHERE}",
            "status",
        ),
        (
            "ALTER TABLE {s}.instances ALTER COLUMN tags DROP NOT NULL; "
            f"UPDATE {{s}}.instances SET tags = NULL {WHERE}",
            "tags",
        ),
    ],
    ids=[
        "tags-array",
        "tags-number",
        "tags-null",
        "tags-deep",
        "updated-infinity",
        "created-minus-infinity",
        "wakeup-year-20000",
        "negative-failures",
        "unknown-status",
        "null-tags",
    ],
)
async def test_a_registry_row_that_does_not_decode_is_reported_and_the_page_goes_on(
    raw_store: tuple[PostgresStore, Raw], corruption: LiteralString, column: str
) -> None:
    store, raw = raw_store
    third = InstanceKey("order", "o-3")
    for n, key in enumerate((KEY, OTHER, third)):
        await store.create(key, T0 + timedelta(seconds=n))
        await store.update(key, "awaiting", None, {"n": str(n)}, T0 + timedelta(seconds=n))
    deep = "[" * 5000 + "]" * 5000
    await raw(corruption, (deep,) if "%s" in corruption else ())
    with pytest.raises(DecodeError) as info:
        await store.get_record(KEY)
    assert (info.value.workflow, info.value.instance_id, info.value.sequence) == (
        "order",
        "o-1",
        None,
    )
    assert f": instances.{column}: the stored instances row holds" in str(info.value)
    for descending in (False, True):
        page = await store.search(SearchQuery(workflow="order", descending=descending))
        shown = [r.key for r in page.records]
        assert shown == ([third, OTHER] if descending else [OTHER, third])
        assert page.total == 3
        (error,) = page.errors
        assert (error.instance_id, error.sequence) == ("o-1", None)
        assert "'o-1'" in str(error)
    assert await store.get_record(OTHER) is not None
    # the next registry write makes the row whole again
    if column != "created_at":  # written once, when the instance is created
        await store.update(KEY, "awaiting", None, {}, T0)
        record = await store.get_record(KEY)
        assert record is not None
        assert record.tags == {}


async def test_instants_out_of_range_in_wakeups_and_leases_do_not_stop_the_others(
    raw_store: tuple[PostgresStore, Raw],
) -> None:
    store, raw = raw_store
    for key in (KEY, OTHER):
        await store.create(key, T0, next_wakeup=T0)
    await raw(f"UPDATE {{s}}.instances SET next_wakeup = '-infinity' {WHERE}")
    claims = await store.claim_due(T0, 10, 30)
    # due before year 1: claimed first, as due (the operation running it writes a new wakeup)
    assert [(c.key, c.wakeup_at) for c in claims] == [
        (KEY, datetime.min.replace(tzinfo=UTC)),
        (OTHER, T0),
    ]
    await raw(f"UPDATE {{s}}.instances SET next_wakeup = 'infinity' {WHERE}")
    await store.update(OTHER, "awaiting", None, {}, T0)
    assert await store.next_wakeup(T0) == datetime.max.replace(tzinfo=UTC)
    # a lease that never lapses: the instance is held, a typed LeaseTimeout after the wait
    await store.acquire(KEY, "someone", 10, 0, T0)
    await raw(f"UPDATE {{s}}.leases SET until = 'infinity' {WHERE}")
    with pytest.raises(LeaseTimeout, match="'someone'"):
        await store.acquire(KEY, "me", 10, 0.05, T0)
    await store.acquire(OTHER, "me", 10, 0, T0)
    await raw(f"UPDATE {{s}}.instances SET status = 'running' {WHERE}")
    assert await store.stale(T0 + timedelta(hours=1), 10) == []  # leased: not stale


@pytest.mark.parametrize(
    "corruption",
    [
        f"UPDATE {{s}}.snapshots SET sequence = -7 {WHERE}",
        "ALTER TABLE {s}.snapshots ALTER COLUMN data TYPE bytea USING data::bytea",
        "ALTER TABLE {s}.snapshots ALTER COLUMN sequence TYPE numeric",
    ],
    ids=["negative-sequence", "bytea-data", "numeric-sequence"],
)
async def test_a_snapshot_row_that_does_not_load_is_a_decode_error(
    raw_store: tuple[PostgresStore, Raw], corruption: LiteralString
) -> None:
    store, raw = raw_store
    await store.save_snapshot(KEY, Snapshot(2, "{}"))
    await raw(corruption)
    with pytest.raises(DecodeError) as info:
        await store.load_snapshot(KEY)
    assert (info.value.instance_id, info.value.sequence) == ("o-1", None)
    assert ": snapshots." in str(info.value)


async def test_a_statement_chosen_as_a_deadlock_victim_runs_again(
    pg_dsn: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each operation is one statement in its own transaction, rolled back whole when
    PostgreSQL breaks a deadlock: the store runs it again (up to three times in all)."""
    from workflows4py import StoreError

    store = PostgresStore(pg_dsn, schema=pg_schema)
    await store.initialize()
    once = store._fetch_once  # the driver call, made to fail
    failures = [2]

    async def deadlocking(name: str, params: Any) -> list[Any]:
        if failures[0] > 0:
            failures[0] -= 1
            try:
                raise psycopg.errors.DeadlockDetected("deadlock detected")
            except psycopg.Error as e:
                raise StoreError(f"PostgreSQL error: {e}") from e
        rows: list[Any] = await once(name, params)
        return rows

    monkeypatch.setattr(store, "_fetch_once", deadlocking)
    try:
        assert await store.create_leased(KEY, "me", 30, T0) is True
        assert failures == [0]
        failures[0] = 3  # one more than it tries: the error reaches the caller
        with pytest.raises(StoreError, match="deadlock"):
            await store.create_leased(OTHER, "me", 30, T0)
    finally:
        await store.close()


async def test_only_a_wakeup_nobody_has_claimed_wakes_idle_workers(
    pg_dsn: str, pg_schema: str
) -> None:
    # (a run marks its instance running with the claimed wakeup still set: telling idle
    # workers of it would send them all to claim nothing)
    store = PostgresStore(pg_dsn, schema=pg_schema)
    await store.initialize()
    listener = await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True)
    channel = f"workflows4py:{pg_schema}"

    async def heard() -> list[str]:
        got = [n.payload async for n in listener.notifies(timeout=0.5)]
        return [p for p in got if p == "wakeup"]

    try:
        await listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        assert await store.create(KEY, T0, next_wakeup=T0)
        assert await heard() == ["wakeup"]
        (claim,) = await store.claim_due(T0, 10, 30)
        await store.update(KEY, "running", T0, {}, at(1), keep_failures=True)
        assert await heard() == []  # still claimed: nobody else may take it
        await store.update(KEY, "awaiting", at(5), {}, at(2))
        assert await heard() == ["wakeup"]  # a new wakeup, unclaimed
        assert claim.until > at(5)
    finally:
        await listener.close()
        await store.close()
