"""At scale: due-timer backlogs, and a registry of a million instances, on SQLite and PostgreSQL.

Cases, each on both databases:

- **drain**: instances whose timer is due, run by a ``Worker`` (concurrency 8, its default)
  over a ``Runtime``: the time it takes to run 1,000 of them when 1,000 are due, and when
  100,000 are due (the first 1,000 of the backlog, in claim order). All the timers fall on
  one instant, as when a burst of instances started together. Rate = 1,000 / seconds to the
  1,000th finished run; ratio 100k / 1k per repetition, the two interleaved.
  Target: >= 0.9.
- **create**: ``runtime.start`` of new instances (each records its start and a timer, then
  waits), one after the other, in a store holding 1,000,000 instances and in an empty one,
  batches of 200 interleaved; ratio = rate with 1M stored / rate when empty, per
  repetition. Target: >= 0.8 (within 20%).
- **search**: ``Runtime.search`` at 1,000,000 instances, page size 50, ms per page: by
  status, by tag, by a range of update and of creation instants, and keyset pages deep in
  the results (``SearchQuery.after``); an ``offset`` page as deep, for contrast. Each with
  ``count_limit=0`` (no count: what the target is read against) and ``count_limit=1000``
  (a small cap). Target: < 10 ms per page.
- **list ids**: ``iter_instance_ids()`` over the 1,000,000 (an async iterator over keyset
  pages of 500): seconds, ids/s, and the peak of memory Python allocated meanwhile
  (``tracemalloc``, a second walk), against the size of a list of all the ids.

The fixture. Rows are bulk-loaded with ``INSERT ... SELECT`` over a series of numbers,
straight into the store's own tables, copying what the store wrote for real template
instances of the benchmark workflow (created by the runtime in the same store just
before): each copy gets its own instance id (a hash of its number, so ids are scattered as
random ids are), tenant tag (100 tenants) and, for the million, its own instants (one
every 2 s over 23 days; the instants inside its journal payloads follow). The million:
80% finished (4 journal rows each), 10% awaiting a timer a year away (2 rows), 10%
terminated (3 rows). The rows are then checked with the store's own reads (counts by
status, instances rebuilt from their journal). On SQLite the tag rows come from the
store's own triggers; on PostgreSQL the load is followed by ``VACUUM ANALYZE``, what
autovacuum does after it. Stores written only by the runtime (the empty one) get neither.

The query plans (EXPLAIN QUERY PLAN on SQLite, EXPLAIN ANALYZE on PostgreSQL) of the
statements the stores ran, captured as they ran, are printed with ``--plans`` and written
to RESULTS.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import sqlite3
import sys
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
from _common import (
    Stat,
    base_parser,
    command_line,
    drop_schema,
    facts_table,
    machine_facts,
    markdown_table,
    pg_reachable,
    ratio_stat,
    remove_sqlite,
    require_real_disk,
    retry_note,
    text_table,
    write_section,
)
from psycopg import sql

from workflows4py import WIO, Worker, Workflow
from workflows4py.runtime import Runtime
from workflows4py.stores import InstanceKey, SearchQuery, SqliteStore
from workflows4py.testing import TestClock

UTC = dt.UTC
T0 = dt.datetime(2030, 1, 1, tzinfo=UTC)  # when the templates start
FAR = dt.datetime(2031, 1, 1, tzinfo=UTC)  # the timer of the awaiting instances
DUE = T0 + dt.timedelta(minutes=1)  # the timer of the due instances
STEP_S = 2  # seconds between the creations of two instances of the million
PLACEHOLDER = "@@"  # the templates' tenant, replaced by each copy's
TENANTS = 100
PAGE = 50
CAP = 1000  # the small count_limit
CONCURRENCY = 8
DRAIN_TARGET, CREATE_TARGET, SEARCH_TARGET_MS = 0.9, 0.8, 10.0
WORKFLOW_ID = "bench-scale"
TEMPLATES = "templates"  # the store of the template instances


# -- the workflow -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    tenant: str
    until: dt.datetime
    n: int = 0


@dataclass(frozen=True)
class Worked:
    n: int


async def work(state: Item) -> Worked:
    return Worked(state.n + 1)


def worked(state: Item, event: Worked) -> Item:
    return Item(state.tenant, state.until, event.n)


def until(state: Item) -> dt.datetime:
    return state.until


class Scaled(Workflow[Item, Worked]):
    """Wait until the state's instant, then one step."""

    id = WORKFLOW_ID
    definition = WIO.timer(until, input=Item, name="Wait") >> WIO.run_io(Item, work).handle_event(
        worked
    )


def tenant_tags(state: Item) -> dict[str, str]:
    return {"tenant": state.tenant}


def tenant_of(x: int) -> str:
    return f"t{(x // 7) % TENANTS:03d}"


def id_of(x: int) -> str:
    """The instance id of copy ``x``: a bijective hash, so ids are scattered."""
    return f"b{(x * 2654435761) % 2**32:08x}"


def iso(instant: dt.datetime) -> str:
    return instant.isoformat()  # as the codec writes a whole-second instant


# Kinds of copies in the million: (status, template, which copies x: in SQL, in Python).
MILLION_KINDS: tuple[tuple[str, str, str, Callable[[int], bool]], ...] = (
    ("awaiting", "template-awaiting", "x % 10 = 0", lambda x: x % 10 == 0),
    ("terminated", "template-terminated", "x % 10 = 1", lambda x: x % 10 == 1),
    ("finished", "template-finished", "x % 10 > 1", lambda x: x % 10 > 1),
)


def expected_counts(n: int) -> dict[str, int]:
    awaiting = (n + 9) // 10
    terminated = (n + 8) // 10
    return {"awaiting": awaiting, "terminated": terminated, "finished": n - awaiting - terminated}


async def make_templates(runtime: Runtime) -> None:
    """The real instances the copies are made of, written by the runtime at T0 (in a store
    of their own: the measured stores hold copies only)."""
    await runtime.start(Scaled, "template-awaiting", initial_state=Item(PLACEHOLDER, FAR))
    await runtime.start(Scaled, "template-terminated", initial_state=Item(PLACEHOLDER, FAR))
    await runtime.terminate(Scaled, "template-terminated", "bench")
    # a timer due at once: started, released and the step run, inside start
    await runtime.start(Scaled, "template-finished", initial_state=Item(PLACEHOLDER, T0))
    await runtime.start(Scaled, "template-due", initial_state=Item(PLACEHOLDER, DUE))


# -- the databases ----------------------------------------------------------------------------


@dataclass
class Captured:
    """Statements a store ran, with their parameters (to EXPLAIN them)."""

    statements: list[tuple[Any, Any]] = field(default_factory=list)


class Backend:
    label = ""
    key = ""

    def runtime(self, name: str, clock: TestClock) -> Runtime:
        raise NotImplementedError

    def drop(self, name: str) -> None:
        raise NotImplementedError

    def copy(
        self, name: str, template: str, lo: int, hi: int, condition: str, *, spread: bool
    ) -> None:
        """Copies ``lo`` .. ``hi - 1`` of the template's rows (those meeting ``condition``)."""
        raise NotImplementedError

    def vacuum(self, name: str) -> None:
        """What autovacuum would do after a bulk load (nothing on SQLite)."""

    @contextlib.contextmanager
    def capture(self) -> Iterator[Captured]:
        raise NotImplementedError

    def explain(self, name: str, statement: Any, params: Any) -> str:
        raise NotImplementedError


class Sqlite(Backend):
    label, key = "SQLite", "sqlite"

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def path(self, name: str) -> Path:
        return self.data_dir / f"bench_scale_{name}.db"

    def runtime(self, name: str, clock: TestClock) -> Runtime:
        return Runtime.sqlite(self.path(name), [Scaled], tags={Scaled: tenant_tags}, clock=clock)

    def drop(self, name: str) -> None:
        remove_sqlite(self.path(name))

    def copy(
        self, name: str, template: str, lo: int, hi: int, condition: str, *, spread: bool
    ) -> None:
        ident = "printf('b%08x', (x * 2654435761) % 4294967296)"
        tenant = f"printf('t%03d', (x / 7) % {TENANTS})"
        t0_us = _us(T0)
        base = _base_s(hi)
        shift = f"(({base} + x * {STEP_S}) * 1000000 - {t0_us})" if spread else "0"
        at = (
            f"strftime('%Y-%m-%dT%H:%M:%S', {base} + x * {STEP_S}, 'unixepoch') || '+00:00'"
            if spread
            else ":t0"
        )
        series = (
            "WITH RECURSIVE n(x) AS (SELECT :lo UNION ALL SELECT x + 1 FROM n WHERE x + 1 < :hi)"
        )
        journal = f"""{series}
            INSERT INTO journal (workflow, instance_id, sequence, type, data, recorded_at)
            SELECT j.workflow, {ident}, j.sequence, j.type,
                replace(replace(j.data, :placeholder, {tenant}), :t0, {at}),
                j.recorded_at + {shift}
            FROM n JOIN templates.journal AS j
                ON j.workflow = :wf AND j.instance_id = :template
            WHERE {condition}"""
        instances = f"""{series}
            INSERT INTO instances (workflow, instance_id, status, created_at, updated_at,
                next_wakeup, claimed_until, tags, failures, last_error)
            SELECT i.workflow, {ident}, i.status, i.created_at + {shift}, i.updated_at + {shift},
                i.next_wakeup, NULL, replace(i.tags, :placeholder, {tenant}), i.failures,
                i.last_error
            FROM n JOIN templates.instances AS i
                ON i.workflow = :wf AND i.instance_id = :template
            WHERE {condition}"""
        params = {
            "lo": lo,
            "hi": hi,
            "wf": WORKFLOW_ID,
            "template": template,
            "placeholder": PLACEHOLDER,
            "t0": iso(T0),
        }
        conn = sqlite3.connect(self.path(name), isolation_level=None, timeout=60)
        try:
            conn.execute("PRAGMA cache_size = -1000000")  # this connection only
            conn.execute("ATTACH ? AS templates", (str(self.path(TEMPLATES)),))
            conn.execute("BEGIN IMMEDIATE")
            for table in ("snapshots", "leases"):  # the templates have none to copy
                query = f"SELECT count(*) FROM templates.{table} WHERE instance_id = ?"
                if conn.execute(query, (template,)).fetchone()[0]:
                    raise AssertionError(f"template {template} has rows in {table}")
            conn.execute(journal, params)
            conn.execute(instances, params)
            conn.execute("COMMIT")
        finally:
            conn.close()

    @contextlib.contextmanager
    def capture(self) -> Iterator[Captured]:
        captured = Captured()
        connection = _store_connection_class()
        original = connection.execute

        def spy(conn: sqlite3.Connection, statement: str, params: Any = ()) -> sqlite3.Cursor:
            captured.statements.append((statement, params))
            return original(conn, statement, params)

        connection.execute = spy  # type: ignore[assignment,method-assign]
        try:
            yield captured
        finally:
            connection.execute = original  # type: ignore[method-assign]

    def explain(self, name: str, statement: Any, params: Any) -> str:
        conn = sqlite3.connect(self.path(name))
        try:
            rows = conn.execute(f"EXPLAIN QUERY PLAN {statement}", params).fetchall()
        finally:
            conn.close()
        depth: dict[int, int] = {0: -1}
        lines = []
        for node, parent, _, detail in rows:
            depth[node] = depth.get(parent, -1) + 1
            lines.append("  " * depth[node] + detail)
        return "\n".join(lines)


def _store_connection_class() -> type[sqlite3.Connection]:
    """The connection class ``SqliteStore`` opens, whose statements ``capture`` records to
    explain them: found among ``sqlite3.Connection``'s subclasses (it is not public)."""
    for cls in sqlite3.Connection.__subclasses__():
        if cls.__module__ == SqliteStore.__module__:
            return cls
    raise RuntimeError("SqliteStore's connection class not found")


class Postgres(Backend):
    label, key = "PostgreSQL", "postgres"

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def schema(self, name: str) -> str:
        return f"bench_scale_{name}"

    def runtime(self, name: str, clock: TestClock) -> Runtime:
        return Runtime.postgres(
            self.dsn,
            [Scaled],
            tags={Scaled: tenant_tags},
            clock=clock,
            schema=self.schema(name),
        )

    def drop(self, name: str) -> None:
        drop_schema(self.dsn, self.schema(name))

    def copy(
        self, name: str, template: str, lo: int, hi: int, condition: str, *, spread: bool
    ) -> None:
        ident = "'b' || lpad(to_hex((x * 2654435761) %% 4294967296), 8, '0')"
        tenant = f"'t' || lpad(((x / 7) %% {TENANTS})::text, 3, '0')"
        condition = condition.replace("%", "%%")  # (a placeholder's sign otherwise)
        base = _base_s(hi)
        at = f"to_timestamp({base} + x * {STEP_S})"
        shift = f"({at} - %(t0_at)s::timestamptz)" if spread else "interval '0'"
        text = (
            f"""to_char({at} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || '+00:00'"""
            if spread
            else "%(t0)s"
        )
        series = "generate_series(%(lo)s::bigint, %(hi)s::bigint - 1) AS n(x)"
        journal = f"""INSERT INTO {{s}}.journal
                (workflow, instance_id, sequence, type, data, recorded_at)
            SELECT j.workflow, {ident}, j.sequence, j.type,
                replace(replace(j.data, %(placeholder)s, {tenant}), %(t0)s, {text}),
                j.recorded_at + {shift}
            FROM {series} JOIN {{t}}.journal AS j
                ON j.workflow = %(wf)s AND j.instance_id = %(template)s
            WHERE {condition}"""
        instances = f"""INSERT INTO {{s}}.instances (workflow, instance_id, status, created_at,
                updated_at, next_wakeup, claimed_until, tags, failures, last_error)
            SELECT i.workflow, {ident}, i.status, i.created_at + {shift},
                i.updated_at + {shift}, i.next_wakeup, NULL,
                replace(i.tags::text, %(placeholder)s, {tenant})::jsonb, i.failures,
                i.last_error
            FROM {series} JOIN {{t}}.instances AS i
                ON i.workflow = %(wf)s AND i.instance_id = %(template)s
            WHERE {condition}"""
        params = {
            "lo": lo,
            "hi": hi,
            "wf": WORKFLOW_ID,
            "template": template,
            "placeholder": PLACEHOLDER,
            "t0": iso(T0),
            "t0_at": T0,
        }
        s = sql.Identifier(self.schema(name))
        t = sql.Identifier(self.schema(TEMPLATES))
        with psycopg.connect(self.dsn) as conn:  # one transaction
            conn.execute("SET TIME ZONE 'UTC'")
            for table in ("snapshots", "leases"):
                query = sql.SQL("SELECT count(*) FROM {t}.{table} WHERE instance_id = %s").format(
                    t=t, table=sql.Identifier(table)
                )
                row = conn.execute(query, (template,)).fetchone()
                if row and row[0]:
                    raise AssertionError(f"template {template} has rows in {table}")
            for statement in (journal, instances):
                conn.execute(sql.SQL(statement).format(s=s, t=t), params)  # type: ignore[arg-type]

    def vacuum(self, name: str) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            for table in ("instances", "journal"):
                conn.execute(
                    sql.SQL("VACUUM ANALYZE {}.{}").format(
                        sql.Identifier(self.schema(name)), sql.Identifier(table)
                    )
                )

    @contextlib.contextmanager
    def capture(self) -> Iterator[Captured]:
        captured = Captured()
        original = psycopg.AsyncConnection.execute

        async def spy(
            conn: psycopg.AsyncConnection[Any], query: Any, params: Any = None, **kw: Any
        ) -> Any:
            if isinstance(query, sql.Composable):
                text = query.as_string(conn)
            else:
                text = query.decode() if isinstance(query, bytes) else str(query)
            captured.statements.append((text, params))
            return await original(conn, query, params, **kw)  # pyright: ignore[reportArgumentType]

        psycopg.AsyncConnection.execute = spy  # type: ignore[method-assign]
        try:
            yield captured
        finally:
            psycopg.AsyncConnection.execute = original  # type: ignore[method-assign]

    def explain(self, name: str, statement: Any, params: Any) -> str:
        with psycopg.connect(self.dsn) as conn:  # rolled back: a claim's UPDATE claims nothing
            conn.execute("SET TIME ZONE 'UTC'")
            explain = f"EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) {statement}"
            cur = conn.execute(explain, params)  # pyright: ignore[reportArgumentType]
            lines = [str(row[0]) for row in cur.fetchall()]
            conn.rollback()
        return "\n".join(lines)


def _us(instant: dt.datetime) -> int:
    return (instant - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(microseconds=1)


def _base_s(count: int) -> int:
    """The creation instant (epoch seconds) of copy 0: the copies end a day before T0."""
    return int(T0.timestamp()) - 86_400 - count * STEP_S


# -- helpers ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def opened(backend: Backend, name: str, clock: TestClock) -> AsyncIterator[Runtime]:
    runtime = backend.runtime(name, clock)
    async with runtime:
        yield runtime


async def fresh(backend: Backend, name: str) -> None:
    """A new, empty store ``name`` (its schema created by the runtime)."""
    backend.drop(name)
    async with opened(backend, name, TestClock(T0)) as runtime:
        await runtime.initialize()


async def templates(backend: Backend) -> None:
    backend.drop(TEMPLATES)
    async with opened(backend, TEMPLATES, TestClock(T0)) as runtime:
        await make_templates(runtime)


def timed(fn: Callable[[], Any]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


# -- drain ------------------------------------------------------------------------------------


async def drain(runtime: Runtime, count: int) -> float:
    """Seconds for a Worker to finish ``count`` due instances."""
    done = asyncio.Event()
    finished = 0

    def ran(key: InstanceKey, ok: bool) -> None:
        nonlocal finished
        if not ok:
            raise SystemExit(f"the run of {key} failed")
        finished += 1
        if finished == count:
            done.set()

    worker = Worker(runtime, concurrency=CONCURRENCY, poll_interval=0.05, after_run=ran)
    began = time.perf_counter()
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(done.wait(), 900)
        elapsed = time.perf_counter() - began
    finally:
        worker.stop()
        await task
    return elapsed


@dataclass
class DrainResult:
    small: list[float] = field(default_factory=list)  # rates, small backlog
    big: list[float] = field(default_factory=list)
    plan: str = ""


async def measure_drain(
    backend: Backend, small: int, big: int, count: int, reps: int
) -> DrainResult:
    result = DrainResult()
    await fresh(backend, "due_small")
    await fresh(backend, "due_big")
    backend.copy("due_big", "template-due", 0, big, "1 = 1", spread=False)
    backend.vacuum("due_big")
    clock = TestClock(DUE + dt.timedelta(minutes=1))
    async with (
        opened(backend, "due_small", clock) as small_rt,
        opened(backend, "due_big", clock) as big_rt,
    ):
        for rep in range(reps + 1):  # the first round warms up
            backend.copy(
                "due_small", "template-due", rep * small, (rep + 1) * small, "1 = 1", spread=False
            )
            order = [(small_rt, result.small), (big_rt, result.big)]
            if rep % 2:
                order.reverse()
            rates = []
            for runtime, into in order:
                rate = count / await drain(runtime, count)
                rates.append(rate)
                if rep:
                    into.append(rate)
            print(
                f"  drain {'warm-up' if not rep else f'rep {rep}/{reps}'}: "
                f"{rates[0]:,.0f}/s, {rates[1]:,.0f}/s"
                f"{' (small first)' if rep % 2 == 0 else ' (big first)'}",
                flush=True,
            )
        # the claim's plan, with the backlog still due (the claim the plan is captured from
        # holds its rows: the test clock does not move)
        with backend.capture() as captured:
            await big_rt.store.claim_due(clock.now(), CONCURRENCY, 30, [WORKFLOW_ID])
        claim = next(s for s in captured.statements if "next_wakeup <=" in str(s[0]))
        result.plan = backend.explain("due_big", *claim)
    return result


# -- the million ------------------------------------------------------------------------------


async def load_million(backend: Backend, n: int) -> float:
    """Seconds to bulk-load ``n`` instances (after the templates), checked."""
    await fresh(backend, "million")
    began = time.perf_counter()
    for _, template, condition, _ in MILLION_KINDS:
        backend.copy("million", template, 0, n, condition, spread=True)
    backend.vacuum("million")
    elapsed = time.perf_counter() - began
    await check_million(backend, n)
    return elapsed


async def check_million(backend: Backend, n: int) -> None:
    """The loaded rows, read back with the store's own reads."""
    async with opened(backend, "million", TestClock(T0)) as runtime:
        for status, count in expected_counts(n).items():
            page = await runtime.search(SearchQuery(status=[status], limit=0))  # type: ignore[list-item]
            if page.total != count:
                raise AssertionError(f"{page.total} {status} rows, expected {count}")
        host = runtime.of(Scaled)
        for x in (0, 1, 2, n // 2, n - 1):
            instance = await host.get_instance(id_of(x))
            state = await instance.query_state()
            status = next(s for s, _, _, kind in MILLION_KINDS if kind(x))
            record = await runtime.store.get_record(InstanceKey(WORKFLOW_ID, id_of(x)))
            if record is None or record.status != status or state.tenant != tenant_of(x):
                raise AssertionError(f"copy {x}: {record}, {state}")
            if record.tags != {"tenant": tenant_of(x)}:
                raise AssertionError(f"copy {x}: tags {record.tags}")
            created = dt.datetime.fromtimestamp(_base_s(n) + x * STEP_S, UTC)
            if record.created_at != created:
                raise AssertionError(f"copy {x}: created {record.created_at}, not {created}")
        page = await runtime.search(SearchQuery(tags={"tenant": "t042"}, limit=0))
        tagged = sum(1 for x in range(n) if (x // 7) % TENANTS == 42)
        if page.total != tagged:
            raise AssertionError(f"{page.total} rows of tenant t042, expected {tagged}")


@dataclass
class CreateResult:
    empty: list[float] = field(default_factory=list)
    full: list[float] = field(default_factory=list)


async def create_batch(runtime: Runtime, count: int) -> float:
    began = time.perf_counter()
    for n in range(count):
        await runtime.start(Scaled, uuid.uuid4().hex, initial_state=Item(tenant_of(n), FAR))
    return count / (time.perf_counter() - began)


async def measure_create(backend: Backend, batch: int, reps: int) -> CreateResult:
    result = CreateResult()
    backend.drop("empty")
    clock = TestClock(T0 + dt.timedelta(hours=1))
    async with opened(backend, "empty", clock) as empty, opened(backend, "million", clock) as full:
        for rep in range(reps + 1):  # the first round warms up
            order = [(empty, result.empty), (full, result.full)]
            if rep % 2:
                order.reverse()
            line = []
            for runtime, into in order:
                rate = await create_batch(runtime, batch)
                line.append(f"{rate:,.0f}/s")
                if rep:
                    into.append(rate)
            first = "empty first" if rep % 2 == 0 else "1M first"
            label = "warm-up" if not rep else f"rep {rep}/{reps}"
            print(f"  create {label}: {', '.join(line)} ({first})", flush=True)
    backend.drop("empty")
    return result


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    query: SearchQuery
    target: bool = True


async def search_cases(runtime: Runtime, n: int) -> list[Case]:
    """The searches, their keyset cursors found with the store's own reads."""
    base = _base_s(n)
    day_from = dt.datetime.fromtimestamp(base + n * STEP_S // 2, UTC)
    day_to = day_from + dt.timedelta(days=1)

    async def cursor(query: SearchQuery, depth: int) -> tuple[dt.datetime, str, str]:
        page = await runtime.search(replace(query, offset=depth - 1, limit=1, count_limit=0))
        return query.cursor(page.records[0])

    deep, status_deep = n // 2, max(n // 20, 1)
    created = SearchQuery(sort="created", limit=PAGE)
    awaiting = SearchQuery(status=["awaiting"], limit=PAGE)
    return [
        Case("status", "status = awaiting (10%), first page", awaiting),
        Case(
            "tag",
            f"tag tenant = t042 ({100 // TENANTS}%), first page",
            SearchQuery(tags={"tenant": "t042"}, limit=PAGE),
        ),
        Case(
            "updated range",
            "updated in one day (~3.7%), by update",
            SearchQuery(updated_from=day_from, updated_to=day_to, limit=PAGE),
        ),
        Case(
            "created range",
            "created in one day (~3.7%), by creation",
            SearchQuery(created_from=day_from, created_to=day_to, sort="created", limit=PAGE),
        ),
        Case(
            f"keyset @{deep:,}",
            f"all, by creation, `after` the {deep:,}th",
            replace(created, after=await cursor(created, deep)),
        ),
        Case(
            f"status keyset @{status_deep:,}",
            f"status = awaiting, `after` the {status_deep:,}th match",
            replace(awaiting, after=await cursor(awaiting, status_deep)),
        ),
        Case(
            f"offset {deep:,}",
            f"all, by creation, `offset` {deep:,} (for contrast)",
            replace(created, offset=deep),
            target=False,
        ),
    ]


@dataclass
class SearchResult:
    ms: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    cases: list[Case] = field(default_factory=list)
    totals: dict[tuple[str, int], str] = field(default_factory=dict)
    plans: dict[str, str] = field(default_factory=dict)


async def measure_search(backend: Backend, n: int, reps: int) -> SearchResult:
    result = SearchResult()
    async with opened(backend, "million", TestClock(T0 + dt.timedelta(hours=1))) as runtime:
        result.cases = await search_cases(runtime, n)
        for case in result.cases:  # the plans, at count_limit=0
            with backend.capture() as captured:
                await runtime.search(replace(case.query, count_limit=0))
            statements = [s for s in captured.statements if "FROM" in str(s[0])]
            result.plans[case.name] = "\n\n".join(
                backend.explain("million", *s) for s in statements if "instances" in str(s[0])
            )
        for _ in range(reps):
            for case in result.cases:
                for cap in (0, CAP):
                    query = replace(case.query, count_limit=cap)
                    began = time.perf_counter()
                    page = await runtime.search(query)
                    ms = (time.perf_counter() - began) * 1000
                    if not page.records:
                        raise AssertionError(f"{case.name}: no records")
                    result.ms.setdefault((case.name, cap), []).append(ms)
                    result.totals[(case.name, cap)] = (
                        f"{page.total:,}{'' if page.exact else '+'}" if cap else "-"
                    )
    return result


@dataclass
class ListResult:
    seconds: float = 0.0
    ids: int = 0
    peak_bytes: int = 0
    list_bytes: int = 0


async def measure_list(backend: Backend, n: int) -> ListResult:
    result = ListResult()
    async with opened(backend, "million", TestClock(T0 + dt.timedelta(hours=1))) as runtime:
        host = runtime.of(Scaled)
        began = time.perf_counter()
        count = 0
        async for _ in host.iter_instance_ids():
            count += 1
        result.seconds = time.perf_counter() - began
        result.ids = count
        gc.collect()
        tracemalloc.start()
        try:
            async for _ in host.iter_instance_ids():
                pass
            _, result.peak_bytes = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    ids = [id_of(x) for x in range(n)]
    result.list_bytes = sys.getsizeof(ids) + sum(sys.getsizeof(i) for i in ids)
    return result


# -- report -----------------------------------------------------------------------------------


@dataclass
class BackendResult:
    backend: Backend
    drain: DrainResult
    load_s: float
    create: CreateResult
    search: SearchResult
    listing: ListResult
    stored: int  # instances in the store of the million at the end (with those created)


def mark(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def report(results: list[BackendResult], sizes: dict[str, int]) -> tuple[list[str], list[str]]:
    """(markdown blocks, text blocks)."""
    big, small, n = sizes["big"], sizes["small"], sizes["million"]
    summary_header = ["case", "database", "measured", "target", "verdict"]
    summary: list[list[str]] = []
    detail_header = ["case", "database", "figure"]
    detail: list[list[str]] = []
    search_header = [
        "search (page of 50)",
        "database",
        "ms, count_limit=0",
        f"ms, count_limit={CAP}",
        f"total at {CAP}",
        "target (count_limit=0)",
    ]
    searches: list[list[str]] = []
    for r in results:
        db = r.backend.label
        ratio = ratio_stat(r.drain.big, r.drain.small)
        summary.append(
            [
                f"drain: rate at {big:,} due / at {small:,} due",
                db,
                ratio.fmt(2),
                f">= {DRAIN_TARGET}",
                mark(ratio.median >= DRAIN_TARGET),
            ]
        )
        detail.append([f"drain, {small:,} due", db, Stat(tuple(r.drain.small)).fmt(0, "/s")])
        detail.append([f"drain, {big:,} due", db, Stat(tuple(r.drain.big)).fmt(0, "/s")])
        ratio = ratio_stat(r.create.full, r.create.empty)
        summary.append(
            [
                f"create: rate with {n:,} stored / empty",
                db,
                ratio.fmt(2),
                f">= {CREATE_TARGET}",
                mark(ratio.median >= CREATE_TARGET),
            ]
        )
        detail.append(["create, empty store", db, Stat(tuple(r.create.empty)).fmt(0, "/s")])
        detail.append([f"create, {n:,} stored", db, Stat(tuple(r.create.full)).fmt(0, "/s")])
        worst = 0.0
        for case in r.search.cases:
            zero = Stat(tuple(r.search.ms[(case.name, 0)]))
            capped = Stat(tuple(r.search.ms[(case.name, CAP)]))
            if case.target:
                worst = max(worst, zero.median)
            searches.append(
                [
                    case.description,
                    db,
                    zero.fmt(1),
                    capped.fmt(1),
                    r.search.totals[(case.name, CAP)],
                    (mark(zero.median < SEARCH_TARGET_MS) if case.target else "(no target)"),
                ]
            )
        summary.append(
            [
                f"search at {n:,}: slowest page (count_limit=0)",
                db,
                f"{worst:.1f} ms",
                f"< {SEARCH_TARGET_MS:.0f} ms",
                mark(worst < SEARCH_TARGET_MS),
            ]
        )
        listing = r.listing
        summary.append(
            [
                f"list ids: iter_instance_ids over {n:,}",
                db,
                f"{listing.seconds:.1f} s ({listing.ids / listing.seconds:,.0f} ids/s), "
                f"peak {listing.peak_bytes / 2**20:.1f} MiB",
                f"streams (peak << {listing.list_bytes / 2**20:.0f} MiB, a list of the ids)",
                mark(listing.ids == r.stored and listing.peak_bytes < listing.list_bytes / 4),
            ]
        )
        detail.append([f"bulk load of {n:,} (fixture)", db, f"{r.load_s:.1f} s"])
    md = [
        markdown_table(summary_header, summary),
        markdown_table(search_header, searches),
        markdown_table(detail_header, detail),
    ]
    txt = [
        text_table(summary_header, summary),
        text_table(search_header, searches),
        text_table(detail_header, detail),
    ]
    return md, txt


def plans_markdown(results: list[BackendResult], sizes: dict[str, int]) -> str:
    blocks = []
    for r in results:
        blocks.append(
            f"**{r.backend.label}**, claim of due wakeups with {sizes['big']:,} due:\n\n"
            f"```text\n{r.drain.plan}\n```"
        )
        for name, plan in r.search.plans.items():
            blocks.append(
                f"**{r.backend.label}**, search {name} at {sizes['million']:,}:\n\n"
                f"```text\n{plan}\n```"
            )
    return "\n\n".join(blocks)


def chosen(names: str, data_dir: Path, dsn: str, notes: list[str]) -> list[Backend]:
    backends: list[Backend] = []
    for key in [b.strip() for b in names.split(",") if b.strip()]:
        if key == "sqlite":
            backends.append(Sqlite(data_dir))
        elif key == "postgres":
            if (why := pg_reachable(dsn, wait=90)) is not None:
                notes.append(f"PostgreSQL skipped: unreachable at `{dsn}` ({why}).")
            else:
                backends.append(Postgres(dsn))
    return backends


def main() -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--million", type=int, default=None, help="1000000; --quick 2000")
    parser.add_argument("--due", type=int, default=None, help="the big backlog (100000; 2000)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (5; --quick 1)")
    parser.add_argument("--plans", action="store_true", help="print the query plans")
    parser.add_argument("--keep", action="store_true", help="keep the databases at the end")
    args = parser.parse_args()
    quick = args.quick
    sizes = {
        "million": args.million or (2_000 if quick else 1_000_000),
        "big": args.due or (2_000 if quick else 100_000),
        "small": 100 if quick else 1_000,
        "count": 100 if quick else 1_000,
        "batch": 50 if quick else 200,
    }
    reps = args.reps or (1 if quick else 5)
    search_reps = 3 if quick else 15
    require_real_disk(args.data_dir, args.allow_tmpfs)
    dsn = args.pg_dsn
    notes: list[str] = []
    backends = chosen(args.backends, args.data_dir, dsn, notes)
    print(
        f"drain {sizes['count']:,} of {sizes['small']:,} / {sizes['big']:,} due; "
        f"{sizes['million']:,} instances; {reps} reps",
        flush=True,
    )
    results = []
    started = time.monotonic()
    for backend in backends:
        print(f"{backend.label}:", flush=True)
        try:
            asyncio.run(templates(backend))
            drained = asyncio.run(
                measure_drain(backend, sizes["small"], sizes["big"], sizes["count"], reps)
            )
            load_s = asyncio.run(load_million(backend, sizes["million"]))
            print(f"  loaded {sizes['million']:,} in {load_s:.1f} s", flush=True)
            created = asyncio.run(measure_create(backend, sizes["batch"], reps))
            searched = asyncio.run(measure_search(backend, sizes["million"], search_reps))
            listed = asyncio.run(measure_list(backend, sizes["million"]))
            print(f"  listed {listed.ids:,} ids in {listed.seconds:.1f} s", flush=True)
        finally:
            if not args.keep:
                for name in (TEMPLATES, "due_small", "due_big", "million", "empty"):
                    backend.drop(name)
        stored = sizes["million"] + (reps + 1) * sizes["batch"]
        results.append(BackendResult(backend, drained, load_s, created, searched, listed, stored))
    elapsed = time.monotonic() - started
    md, txt = report(results, sizes)
    print("\n" + "\n\n".join(txt))
    if args.plans:
        print("\n" + plans_markdown(results, sizes))
    for note in notes:
        print(note)
    if args.no_write:
        return
    body = "\n\n".join(
        [
            "## scale.py: due-timer backlogs and a million instances",
            f"Run: {command_line()}, {elapsed / 60:.0f} min; {reps} repetitions (after a "
            "warm-up round) of each drain and creation pair, interleaved, the order swapped "
            f"every repetition; {search_reps} of each search.",
            facts_table(
                machine_facts(
                    args.data_dir, dsn if any(isinstance(b, Postgres) for b in backends) else None
                )
            ),
            *md,
            "Drain: a `Worker` (concurrency 8) over a `Runtime` of the store, every timer due "
            f"at one instant; rate = {sizes['count']:,} runs / seconds to the "
            f"{sizes['count']:,}th finished. Create: `runtime.start` one after the other, "
            f"batches of {sizes['batch']} alternating between the store of "
            f"{sizes['million']:,} and an empty one. Search: `Runtime.search` (every "
            "workflow), ms per call including the decoding of its 50 records; "
            f"`count_limit={CAP}` counts up to {CAP + 1} matches. The fixture: see the "
            "docstring of `benchmarks/scale.py`.",
            "Query plans of the statements the stores ran (captured as they ran):",
            plans_markdown(results, sizes),
            *notes,
            *retry_note(),
        ]
    )
    write_section("scale", body)


if __name__ == "__main__":
    main()
