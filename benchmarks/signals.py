"""Signal round trip: ``deliver_signal`` to its response under a steady open-loop load,
against one raw append's latency in the same run.

A workflow waits for a signal in a loop: each ``bench.ping`` request becomes one event
(``Pinged``), the state counts it, and the response (``Pong``) names the request it
answers. ``--instances`` instances of it (200 by default) run in one ``Runtime.postgres``
(its defaults: a pool of 10 connections, snapshots every 100 events); the signals go to
them round-robin, so one instance's serial lease never limits the rate (each instance gets
rate / instances signals a second).

The load is open-loop: a thread of its own sleeps until each signal's absolute send time
(``t0 + i / rate``) and hands the signal to the event loop (``call_soon_threadsafe``, as a
request arriving on a socket would wake it), whether or not earlier signals have been
answered. A slow response therefore never slows the sender (no coordinated omission), and
each signal's latency runs from its *scheduled* send time to the moment its response is
back in the caller's hands: waiting for the event loop, for the instance, for a pooled
connection all count. A signal that raises, or whose response does not name its own
request, is an error; one still unanswered ``--drain`` seconds after the last send is too.

Baseline, in the same run on the same database, interleaved with the signal windows
(raw, signals, raw, signals, ...): one raw append, an ``INSERT`` of one row into the store's
own journal table and its ``COMMIT`` (autocommit), on a connection of its own, sent at the
same rate by the same kind of absolute schedule (the next insert waits only if the previous
one is still running), so its latency is measured the same way, from its scheduled time.

The runtime is warmed up first (every instance started and loaded in this process, then
``--warmup`` seconds of load that are not measured). Each repetition reports p50, p90,
p99, max, the achieved rate (answered signals / time from the first scheduled send to the
last answer) and the errors; the verdict is p50(signal) / p50(raw append) and p99 / p99,
computed per repetition (median of the repetitions). No threshold is set (issue 16, point 5
asks for the figures): the ratios are reported as measured, and a shortfall from the
target rate is said. When the runtime cannot keep up, its latency is mostly queueing, so
one more pair of windows runs at ``--light-rate`` (half the rate by default) to show the
round trip of a runtime that keeps up.

What a signal costs on the database is counted in a last window at the same rate, with
thin wrappers on the store (every call the runtime makes on it, by method) and, on
PostgreSQL, on the driver (every SQL statement sent, by the store's statement name, and the
round trips: a statement sent alone is one, a pipeline of a group commit is one whatever
it holds), divided by the signals answered; the measured windows run without them. This
process's CPU time per signal (every thread) is taken over the measured windows.

SQLite is the second database (``--backends postgres`` leaves it out): the same workflow in
a ``Runtime.sqlite`` file (WAL, synchronous=FULL, on ``--data-dir``), against raw
single-row appends into its journal table on a connection of their own.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import inspect
import math
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    text_table,
    write_section,
)

from workflows4py import WIO, SignalDef, Workflow
from workflows4py.runtime import Runtime

SCHEMA = "bench_signals"
RAW_WORKFLOW, RAW_INSTANCE = "raw", "append"

# -- the workflow ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Inbox:
    handled: int
    limit: int


@dataclass(frozen=True)
class Ping:
    seq: int


@dataclass(frozen=True)
class Pong:
    seq: int
    handled: int


@dataclass(frozen=True)
class Pinged:
    seq: int


ping = SignalDef("bench.ping", request=Ping, response=Pong)


def record_ping(state: Inbox, request: Ping) -> Pinged:
    return Pinged(request.seq)


def count_ping(state: Inbox, event: Pinged) -> Inbox:
    return Inbox(state.handled + 1, state.limit)


def answer(state: Inbox, event: Pinged, request: Ping) -> Pong:
    return Pong(event.seq, state.handled + 1)


def enough(state: Inbox) -> bool:
    return state.handled >= state.limit


class Pings(Workflow[Inbox, Pinged]):
    """Wait for ``bench.ping``, record it, answer it; again, until ``limit`` (never here)."""

    name = "bench-signals"
    definition = WIO.repeat(
        WIO.handle_signal(ping, input=Inbox)
        .purely(record_ping)
        .handle_event(count_ping)
        .produce_response(answer)
    ).until(enough)


INITIAL = Inbox(0, 10**12)

# -- counting what a signal costs ------------------------------------------------------------


STATEMENTS: collections.Counter[str] = collections.Counter()
# "alone": statements sent outside a pipeline (one round trip each); "pipelines": pipelines
# opened (one round trip for all the statements inside, and their BEGIN/COMMIT)
ROUND_TRIPS: collections.Counter[str] = collections.Counter()
STORE_CALLS: collections.Counter[str] = collections.Counter()


@contextlib.contextmanager
def counting(store: Any, schema: str | None = None) -> Iterator[None]:
    """Count, while inside, every coroutine call on ``store`` (the operations the runtime asks
    of its store, by method name) into STORE_CALLS and, given the PostgreSQL ``schema``,
    every SQL statement an async psycopg cursor sends into STATEMENTS, named after the
    store's public ``SQL`` table, and the round trips they take into ROUND_TRIPS (a
    statement outside a pipeline is one; a pipeline, whatever it holds, is one). Thin
    wrappers, put on the store instance and on psycopg's classes and taken off again on the
    way out, so the measured windows run without them."""
    wrapped: list[str] = []
    for name in dir(type(store)):
        if name.startswith("_") or not inspect.iscoroutinefunction(getattr(store, name)):
            continue
        method = getattr(store, name)

        def counted(method: Any = method, name: str = name) -> Any:
            @functools.wraps(method)
            async def call(*args: Any, **kwargs: Any) -> Any:
                STORE_CALLS[name] += 1
                return await method(*args, **kwargs)

            return call

        setattr(store, name, counted())
        wrapped.append(name)
    try:
        with contextlib.nullcontext() if schema is None else _counting_sql(schema):
            yield
    finally:
        for name in wrapped:
            delattr(store, name)


@contextlib.contextmanager
def _counting_sql(schema: str) -> Iterator[None]:
    """The statements and round trips part of :func:`counting`."""
    import psycopg
    from psycopg import sql

    from workflows4py.stores import PostgresStore

    ident = sql.Identifier(schema)
    names: dict[Any, str] = {}
    for name, text in PostgresStore.SQL.items():
        with contextlib.suppress(Exception):  # fragments of composed queries
            names[sql.SQL(text).format(s=ident).as_bytes(None)] = name

    def name_of(query: Any) -> str:
        found = names.get(query)
        if found is not None:
            return found
        text = query.decode() if isinstance(query, bytes) else str(query)
        return "other: " + " ".join(text.split()[:3])

    cursor, connection = psycopg.AsyncCursor, psycopg.AsyncConnection
    original, original_many = cursor.execute, cursor.executemany
    original_pipeline = connection.pipeline
    off = psycopg.pq.PipelineStatus.OFF

    async def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        STATEMENTS[name_of(query)] += 1
        if self.connection.info.pipeline_status == off:
            ROUND_TRIPS["alone"] += 1
        return await original(self, query, *args, **kwargs)

    async def executemany(self: Any, query: Any, params: Any, **kwargs: Any) -> Any:
        params = list(params)  # one statement per set of parameters, in one round trip
        STATEMENTS[name_of(query)] += len(params)
        if self.connection.info.pipeline_status == off:
            ROUND_TRIPS["alone"] += 1
        return await original_many(self, query, params, **kwargs)

    def pipeline(self: Any, *args: Any, **kwargs: Any) -> Any:
        ROUND_TRIPS["pipelines"] += 1
        return original_pipeline(self, *args, **kwargs)

    cursor.execute, cursor.executemany = execute, executemany  # type: ignore[method-assign]
    connection.pipeline = pipeline  # type: ignore[method-assign]
    try:
        yield
    finally:
        cursor.execute, cursor.executemany = original, original_many  # type: ignore[method-assign]
        connection.pipeline = original_pipeline  # type: ignore[method-assign]


# -- statistics -------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0 < q <= 100) of ``values``; nan if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Window:
    """One measured window of one kind of request."""

    planned: int  # requests scheduled
    rate: float  # the target rate
    latencies: list[float] = field(default_factory=list)  # s, answered ones, from schedule
    lags: list[float] = field(default_factory=list)  # s, scheduled -> handled by the loop
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    started: float = 0.0  # the first scheduled send (perf_counter)
    last: float = 0.0  # the last answer (perf_counter)
    store_calls: collections.Counter[str] = field(default_factory=collections.Counter)
    statements: collections.Counter[str] = field(default_factory=collections.Counter)
    round_trips: collections.Counter[str] = field(default_factory=collections.Counter)
    load: float = 0.0  # 1-minute load average at the end
    cpu: float = 0.0  # s of this process's CPU time (every thread) during the window

    @property
    def answered(self) -> int:
        return len(self.latencies)

    @property
    def achieved(self) -> float:
        span = self.last - self.started
        return self.answered / span if span > 0 else math.nan

    def p(self, q: float) -> float:
        return percentile(self.latencies, q)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def ms_stat(windows: Sequence[Window], q: float | None) -> Stat:
    return Stat(tuple(1e3 * (max(w.latencies) if q is None else w.p(q)) for w in windows))


# -- the open-loop sender --------------------------------------------------------------------


def schedule(count: int, rate: float, start: float, send: Callable[[int, float], None]) -> None:
    """Call ``send(i, at)`` at each absolute instant ``at = start + i / rate`` (perf_counter
    time), without waiting for anything but the clock; late calls go at once."""
    for i in range(count):
        at = start + i / rate
        delay = at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        send(i, at)


async def signal_window(
    runtime: Runtime,
    instance_ids: Sequence[str],
    *,
    rate: float,
    seconds: float,
    first_seq: int,
    drain: float,
) -> Window:
    """``rate`` x ``seconds`` signals, round-robin over the instances, open loop."""
    loop = asyncio.get_running_loop()
    handles = [await runtime.get(Pings, i) for i in instance_ids]
    window = Window(planned=round(rate * seconds), rate=rate)
    tasks: set[asyncio.Task[None]] = set()

    async def one(i: int, at: float) -> None:
        window.lags.append(time.perf_counter() - at)
        seq = first_seq + i
        try:
            response = await handles[i % len(handles)].deliver_signal(ping, Ping(seq))
        except Exception as e:
            window.errors[type(e).__name__] += 1
            return
        done = time.perf_counter()
        if not isinstance(response, Pong) or response.seq != seq:
            window.errors[f"wrong response {type(response).__name__}"] += 1
            return
        window.latencies.append(done - at)
        window.last = max(window.last, done)

    def start(i: int, at: float) -> None:
        task = loop.create_task(one(i, at))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def send(i: int, at: float) -> None:
        loop.call_soon_threadsafe(start, i, at)

    calls_before, statements_before = STORE_CALLS.copy(), STATEMENTS.copy()
    trips_before = ROUND_TRIPS.copy()
    window.started = time.perf_counter() + 0.02
    cpu = time.process_time()
    await asyncio.to_thread(schedule, window.planned, rate, window.started, send)
    await asyncio.sleep(0)  # the last start() calls run before this resumes
    if tasks:
        _, late = await asyncio.wait(set(tasks), timeout=drain)
        for task in late:
            task.cancel()
        if late:
            window.errors[f"unanswered {drain:.0f} s after the last send"] += len(late)
            await asyncio.gather(*late, return_exceptions=True)
    window.cpu = time.process_time() - cpu
    window.store_calls = STORE_CALLS - calls_before
    window.statements = STATEMENTS - statements_before
    window.round_trips = ROUND_TRIPS - trips_before
    window.load = os.getloadavg()[0]
    return window


# -- the raw baselines ------------------------------------------------------------------------


def raw_window(
    execute: Callable[[int], object], rate: float, seconds: float, first_seq: int
) -> Window:
    """``execute(seq)`` (one INSERT + COMMIT) at ``rate`` for ``seconds``, on one connection,
    each from its absolute scheduled time (a late one waits for the previous, no longer)."""
    window = Window(planned=round(rate * seconds), rate=rate)
    window.started = time.perf_counter() + 0.02
    cpu = time.process_time()

    def send(i: int, at: float) -> None:
        window.lags.append(time.perf_counter() - at)
        try:
            execute(first_seq + i)
        except Exception as e:
            window.errors[type(e).__name__] += 1
            return
        window.last = time.perf_counter()
        window.latencies.append(window.last - at)

    schedule(window.planned, rate, window.started, send)
    window.cpu = time.process_time() - cpu
    window.load = os.getloadavg()[0]
    return window


def event_payload(seq: int) -> tuple[str, str]:
    tag, data = Pings.codecs().events.encode(Pinged(seq))
    return tag, data


@contextlib.contextmanager
def postgres_appender(dsn: str, schema: str) -> Iterator[Callable[[int], object]]:
    import datetime as dt

    import psycopg
    from psycopg import sql

    insert = sql.SQL(
        "INSERT INTO {}.journal (workflow, instance_id, sequence, type, data, recorded_at) "
        "VALUES (%s, %s, %s, %s, %s, %s)"
    ).format(sql.Identifier(schema))
    with psycopg.connect(dsn, autocommit=True) as conn:

        def append(seq: int) -> object:
            row = (RAW_WORKFLOW, RAW_INSTANCE, seq, *event_payload(seq), dt.datetime.now(dt.UTC))
            return conn.execute(insert, row)

        yield append


@contextlib.contextmanager
def sqlite_appender(path: Path) -> Iterator[Callable[[int], object]]:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA busy_timeout = 30000")
    insert = (
        "INSERT INTO journal (workflow, instance_id, sequence, type, data, recorded_at) "
        "VALUES (?, ?, ?, ?, ?, ?)"
    )
    try:

        def append(seq: int) -> object:
            row = (RAW_WORKFLOW, RAW_INSTANCE, seq, *event_payload(seq), time.time_ns() // 1000)
            return conn.execute(insert, row)

        yield append
    finally:
        conn.close()


# -- one database -----------------------------------------------------------------------------


@dataclass
class Measured:
    title: str
    instances: int
    signals: list[Window]
    raws: list[Window]
    counted: Window | None  # the window run with the counting wrappers
    light_signals: list[Window]  # at --light-rate, after the repetitions (or none)
    light_raws: list[Window]


async def measure(
    title: str,
    make_store: Callable[[], Any],
    appender: Callable[[], contextlib.AbstractContextManager[Callable[[int], object]]],
    args: Any,
    schema: str | None = None,
) -> Measured:
    store = make_store()
    runtime = Runtime(store, [Pings], initial_states={Pings: INITIAL})
    ids = [f"i{n:05d}" for n in range(args.instances)]
    signals: list[Window] = []
    raws: list[Window] = []
    counted: Window | None = None
    light_signals: list[Window] = []
    light_raws: list[Window] = []
    async with runtime:
        sem = asyncio.Semaphore(8)

        async def begin(instance_id: str) -> None:
            async with sem:
                await runtime.start(Pings, instance_id)

        await asyncio.gather(*(begin(i) for i in ids))
        seq, raw_seq = 1, 51
        with appender() as append:
            for n in range(1, raw_seq):  # warm the baseline's connection and table
                append(n)
            if args.warmup > 0:
                print(f"  warm-up: {args.warmup:g} s at {args.rate:,.0f}/s", flush=True)
                warm = await signal_window(
                    runtime,
                    ids,
                    rate=args.rate,
                    seconds=args.warmup,
                    first_seq=seq,
                    drain=args.drain,
                )
                seq += warm.planned

            async def window_pair(rate: float) -> tuple[Any, Any]:
                """A raw-append window, then a signal window, at ``rate``."""
                nonlocal seq, raw_seq
                raw = await asyncio.to_thread(raw_window, append, rate, args.raw_seconds, raw_seq)
                raw_seq += raw.planned
                sig = await signal_window(
                    runtime, ids, rate=rate, seconds=args.seconds, first_seq=seq, drain=args.drain
                )
                seq += sig.planned
                return raw, sig

            for rep in range(1, args.reps + 1):
                raw, sig = await window_pair(args.rate)
                raws.append(raw)
                signals.append(sig)
                print(
                    f"  rep {rep}: raw append p50 {1e3 * raw.p(50):.2f} ms p99 "
                    f"{1e3 * raw.p(99):.2f} ms ({raw.achieved:,.0f}/s); signal p50 "
                    f"{1e3 * sig.p(50):.2f} ms p99 {1e3 * sig.p(99):.2f} ms "
                    f"({sig.achieved:,.0f}/s, {sig.error_count} errors); load {sig.load:.2f}",
                    flush=True,
                )
            if args.light_rate > 0:
                light_raw, light = await window_pair(args.light_rate)
                light_raws.append(light_raw)
                light_signals.append(light)
                print(
                    f"  at {args.light_rate:,.0f}/s: raw append p50 "
                    f"{1e3 * light_raw.p(50):.2f} ms; signal p50 {1e3 * light.p(50):.2f} ms "
                    f"p99 {1e3 * light.p(99):.2f} ms ({light.achieved:,.0f}/s)",
                    flush=True,
                )
            if args.count_seconds > 0:
                with counting(store, schema):
                    counted = await signal_window(
                        runtime,
                        ids,
                        rate=args.rate,
                        seconds=args.count_seconds,
                        first_seq=seq,
                        drain=args.drain,
                    )
    return Measured(title, args.instances, signals, raws, counted, light_signals, light_raws)


def store_options(args: Any) -> dict[str, Any]:
    """The store's defaults, but for ``--no-group-commit``."""
    return {"group_commit": False} if args.no_group_commit else {}


def postgres_store(dsn: str, max_connections: int, options: dict[str, Any]) -> Callable[[], Any]:
    from workflows4py.stores import PostgresStore

    def make() -> Any:
        drop_schema(dsn, SCHEMA)
        return PostgresStore(dsn, schema=SCHEMA, max_size=max_connections, **options)

    return make


def sqlite_store(path: Path, options: dict[str, Any]) -> Callable[[], Any]:
    from workflows4py.stores import SqliteStore

    def make() -> Any:
        remove_sqlite(path)
        return SqliteStore(path, synchronous="FULL", **options)

    return make


# -- the report -------------------------------------------------------------------------------


def _ms(stat: Stat) -> str:
    return stat.fmt(2) if stat.values else "n/a"


def groups(m: Measured) -> list[tuple[list[Window], list[Window]]]:
    """(signal windows, raw windows) at the target rate, then at the light rate."""
    found = [(m.signals, m.raws)]
    if m.light_signals and m.light_raws:
        found.append((m.light_signals, m.light_raws))
    return found


def latency_rows(m: Measured) -> list[list[str]]:
    rows = []
    pairs = [
        (label, windows)
        for signals, raws in groups(m)
        for label, windows in (
            ("baseline: raw append (INSERT + COMMIT, own connection)", raws),
            ("**signal round trip** (`deliver_signal` -> response)", signals),
        )
    ]
    for label, windows in pairs:
        errors = sum(w.error_count for w in windows)
        planned = sum(w.planned for w in windows)
        rows.append(
            [
                label,
                f"{windows[0].rate:,.0f}",
                Stat(tuple(w.achieved for w in windows)).fmt(),
                _ms(ms_stat(windows, 50)),
                _ms(ms_stat(windows, 90)),
                _ms(ms_stat(windows, 99)),
                _ms(ms_stat(windows, None)),
                f"{errors} of {planned:,}",
            ]
        )
    return rows


LATENCY_HEADER = [
    "request",
    "target /s",
    "achieved /s",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "max ms",
    "errors",
]


def ratios(signals: list[Window], raws: list[Window]) -> tuple[Stat, Stat]:
    p50 = ratio_stat([w.p(50) for w in signals], [w.p(50) for w in raws])
    p99 = ratio_stat([w.p(99) for w in signals], [w.p(99) for w in raws])
    return p50, p99


def verdict_rows(m: Measured) -> list[list[str]]:
    return [verdict_row(m.title, signals, raws) for signals, raws in groups(m)]


def verdict_row(title: str, signals: list[Window], raws: list[Window]) -> list[str]:
    p50, p99 = ratios(signals, raws)
    rate = Stat(tuple(w.achieved for w in signals))
    target = signals[0].rate
    errors = sum(w.error_count for w in signals)
    kept_up = rate.median >= 0.98 * target and errors == 0
    pace = (
        f"kept up ({rate.median:,.0f}/s)"
        if kept_up
        else f"**short of the target**: {rate.median:,.0f}/s of {target:,.0f}/s, {errors} errors"
    )
    return [f"{title}, {target:,.0f} signals/s", p50.fmt(1), p99.fmt(1), pace]


VERDICT_HEADER = [
    "database, rate",
    "p50 signal / p50 raw append",
    "p99 signal / p99 raw append",
    "signal rate",
]


def cost_rows(m: Measured) -> list[list[str]]:
    w = m.counted
    if w is None or not w.answered:
        return []
    answered, calls, statements = w.answered, w.store_calls, w.statements

    def per(counter: collections.Counter[str]) -> str:
        total = sum(counter.values()) / answered
        parts = ", ".join(f"{name} {n / answered:.2f}" for name, n in counter.most_common())
        return f"**{total:.2f}**: {parts}" if parts else "0"

    rows = [[m.title, "store calls per signal", per(calls)]]
    if statements:
        rows.append([m.title, "SQL statements per signal", per(statements)])
        rows.append([m.title, "round trips per signal", per(w.round_trips)])
    signal_cpu = Stat(tuple(1e3 * x.cpu / x.answered for x in m.signals if x.answered))
    raw_cpu = Stat(tuple(1e3 * x.cpu / x.answered for x in m.raws if x.answered))
    rows.append(
        [
            m.title,
            "this process's CPU time per request, ms (measured windows)",
            f"signal **{signal_cpu.fmt(2)}**; raw append {raw_cpu.fmt(3)}",
        ]
    )
    return rows


COST_HEADER = ["database", "counted", "per answered signal, by name"]


def lag_note(m: Measured) -> str:
    lags = [lag for w in m.signals for lag in w.lags]
    return (
        f"{m.title}: the event loop took up a signal p50 {1e3 * percentile(lags, 50):.2f} ms, "
        f"p99 {1e3 * percentile(lags, 99):.2f} ms after its scheduled send time (part of "
        "its latency)"
    )


def main() -> None:  # noqa: PLR0915 - one linear report
    parser = base_parser(__doc__)
    parser.add_argument("--rate", type=float, default=None, help="signals/s (1000; --quick 200)")
    parser.add_argument(
        "--seconds", type=float, default=None, help="per measured window (8; --quick 1)"
    )
    parser.add_argument(
        "--raw-seconds", type=float, default=None, help="per baseline window (3; --quick 0.5)"
    )
    parser.add_argument(
        "--light-rate",
        type=float,
        default=None,
        help="one more window at this rate, after the repetitions (rate / 2; 0: none)",
    )
    parser.add_argument("--warmup", type=float, default=None, help="seconds (3; --quick 0.5)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (3; --quick 1)")
    parser.add_argument("--instances", type=int, default=None, help="(200; --quick 20)")
    parser.add_argument(
        "--max-connections", type=int, default=10, help="the runtime's pool (%(default)s)"
    )
    parser.add_argument(
        "--count-seconds",
        type=float,
        default=None,
        help="a last window with the counting wrappers on (2; --quick 0.5; 0: none)",
    )
    parser.add_argument(
        "--drain", type=float, default=30.0, help="wait this long for the last answers"
    )
    parser.add_argument(
        "--no-group-commit",
        action="store_true",
        help="stores without group commit (default: the stores' default, on)",
    )
    parser.add_argument(
        "--backends",
        default="postgres,sqlite",
        help="postgres and/or sqlite (default: %(default)s)",
    )
    args = parser.parse_args()
    quick = args.quick
    args.rate = args.rate or (200.0 if quick else 1000.0)
    args.seconds = args.seconds or (1.0 if quick else 8.0)
    args.raw_seconds = args.raw_seconds or (0.5 if quick else 3.0)
    if args.light_rate is None:
        args.light_rate = args.rate / 2
    args.warmup = args.warmup if args.warmup is not None else (0.5 if quick else 3.0)
    args.reps = args.reps or (1 if quick else 3)
    args.instances = args.instances or (20 if quick else 200)
    if args.count_seconds is None:
        args.count_seconds = 0.5 if quick else 2.0
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    dsn = args.pg_dsn
    notes: list[str] = []
    results: list[Measured] = []
    load_before = os.getloadavg()

    if "postgres" in backends:
        if (why := pg_reachable(dsn, wait=90)) is not None:
            print(f"PostgreSQL skipped: {why}")
            notes.append(f"PostgreSQL skipped: unreachable at `{dsn}` ({why}).")
            backends.remove("postgres")
        else:
            print(
                f"PostgreSQL: {args.instances} instances, {args.rate:,.0f} signals/s, "
                f"{args.reps} x {args.seconds:g} s (baseline {args.raw_seconds:g} s each)",
                flush=True,
            )

            def pg_appender() -> contextlib.AbstractContextManager[Callable[[int], object]]:
                return postgres_appender(dsn, SCHEMA)

            try:
                results.append(
                    asyncio.run(
                        measure(
                            "PostgreSQL",
                            postgres_store(dsn, args.max_connections, store_options(args)),
                            pg_appender,
                            args,
                            SCHEMA,
                        )
                    )
                )
            finally:
                drop_schema(dsn, SCHEMA)

    if "sqlite" in backends:
        require_real_disk(args.data_dir, args.allow_tmpfs)
        db = args.data_dir / "signals.db"
        print(
            f"SQLite ({db}, synchronous=FULL): {args.instances} instances, "
            f"{args.rate:,.0f} signals/s, {args.reps} x {args.seconds:g} s",
            flush=True,
        )

        def lite_appender() -> contextlib.AbstractContextManager[Callable[[int], object]]:
            return sqlite_appender(db)

        try:
            results.append(
                asyncio.run(
                    measure(
                        "SQLite (WAL, synchronous=FULL)",
                        sqlite_store(db, store_options(args)),
                        lite_appender,
                        args,
                    )
                )
            )
        finally:
            remove_sqlite(db)

    if not results:
        raise SystemExit("nothing measured: " + " ".join(notes))
    load_after = os.getloadavg()

    print()
    verdicts = [row for m in results for row in verdict_rows(m)]
    print(text_table(VERDICT_HEADER, verdicts))
    sections = []
    for m in results:
        print(f"\n{m.title}")
        print(text_table(LATENCY_HEADER, latency_rows(m)))
        sections.append(f"### {m.title}\n\n{markdown_table(LATENCY_HEADER, latency_rows(m))}")
    costs = [row for m in results for row in cost_rows(m)]
    print()
    print(text_table(COST_HEADER, costs))
    lags = [lag_note(m) for m in results]
    for line in lags:
        print(line)
    load_line = (
        f"load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
        "per window: " + ", ".join(f"{w.load:.2f}" for m in results for w in (*m.raws, *m.signals))
    )
    print(load_line)
    if args.no_write:
        return
    body = "\n\n".join(
        [
            "## signals.py: signal round trip under a steady load",
            f"Run: {command_line()}; {args.instances} instances of a workflow that answers "
            f"`bench.ping` in a loop, {args.rate:,.0f} signals/s open loop (absolute send "
            f"times, round-robin over the instances), {args.reps} measured windows of "
            f"{args.seconds:g} s after {args.warmup:g} s of warm-up, each after a baseline "
            f"window of {args.raw_seconds:g} s at the same rate, then one pair at "
            f"{args.light_rate:,.0f}/s. Latency runs from each request's scheduled send time "
            "to its answer. The runtime's defaults: a pool of "
            f"{args.max_connections} connections, snapshots every 100 events, group commit "
            + ("**off** (`--no-group-commit`)." if args.no_group_commit else "on."),
            facts_table(
                machine_facts(
                    args.data_dir if any(m.title.startswith("SQLite") for m in results) else None,
                    dsn,
                )
            ),
            f"Load: {load_line}.",
            markdown_table(VERDICT_HEADER, verdicts),
            *sections,
            "### What a signal costs on the database",
            markdown_table(COST_HEADER, costs),
            "Counted in a last window of "
            f"{args.count_seconds:g} s at {args.rate:,.0f}/s with thin wrappers on (the "
            "measured windows run without them), divided by the signals it answered: store "
            "calls are the runtime's calls on its store, by method; SQL statements are those "
            "psycopg sent, by the store's statement name; round trips are the statements "
            "sent alone (autocommit: one commit each if it writes) plus the pipelines (a "
            "group commit's statements and their transaction in one). CPU time is this "
            "process's, every thread, over the measured windows. " + "; ".join(lags) + ".",
            *notes,
        ]
    )
    write_section("signals", body)


if __name__ == "__main__":
    main()
