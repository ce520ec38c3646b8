"""Replay: rebuilding an instance from its journal, for 1k, 10k and 100k events.

The journal of the benchmark loop workflow (one ``Stepped`` event per iteration) is written
straight into the store, then the instance is rebuilt:

- baseline: reading the same rows with the database driver alone (rows/s);
- decode: the workflow's JSON codec over the stored entries, nothing else (its
  ``decoder()``, as replay uses it);
- engine: ``InMemoryRuntime.restore_instance`` (decode + apply every event, no I/O);
- durable, full replay: a fresh runtime loads the instance (``get_instance`` +
  ``query_state``: read the journal, decode, apply) with no snapshot;
- durable, from a snapshot (when the runtime has snapshots): the same after the runtime
  saved a snapshot at the last event.

Events/s = events / seconds to have the state. Target: >= 100,000 events/s at 10k events,
a cost per event that does not grow with the journal (events/s flat across sizes), and a
load time from a snapshot that does not grow with it either (a loop keeps its last
iterations only, so the snapshot of 100k events is as small as the one of 1k). Issue 16's
target for a fresh runtime's full replay at 10k events: >= 250,000 events/s, on each
database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import (
    Counter,
    LoopSteps,
    Stat,
    Stepped,
    base_parser,
    command_line,
    drop_schema,
    facts_table,
    machine_facts,
    markdown_table,
    pg_reachable,
    remove_sqlite,
    require_real_disk,
    retry_note,
    retrying,
    runtime_options,
    text_table,
    verdict,
    write_section,
)

from workflows4py import (
    DurableRuntime,
    InMemoryRuntime,
    JournalEntry,
    PostgresRuntime,
    SqliteRuntime,
)
from workflows4py.stores import InstanceKey, NewEvent

TARGET = 100_000
TARGET_FULL = 250_000  # issue 16: a fresh runtime's full replay
TARGET_SIZE = 10_000
INSTANCE = "replayed"


def journal(n: int) -> list[JournalEntry]:
    codec = LoopSteps.codecs().events
    now = dt.datetime.now(dt.UTC)
    return [JournalEntry(i, *codec.encode(Stepped(i)), now) for i in range(1, n + 1)]


def decode_rate(entries: list[JournalEntry]) -> float:
    decode = LoopSteps.codecs().events.decoder()
    start = time.perf_counter()
    for e in entries:
        decode(e.type, e.data)
    return len(entries) / (time.perf_counter() - start)


async def engine_rate(entries: list[JournalEntry]) -> float:
    n = len(entries)
    runtime = InMemoryRuntime(LoopSteps, initial_state=Counter(0, n))
    start = time.perf_counter()
    instance = await runtime.restore_instance(INSTANCE, entries)
    elapsed = time.perf_counter() - start
    assert await instance.query_state() == Counter(n, n)
    return n / elapsed


# -- durable ----------------------------------------------------------------------------------

MakeRuntime = Callable[[int, dict[str, Any]], DurableRuntime[Counter, Stepped]]


async def write_journal(runtime: DurableRuntime[Counter, Stepped], n: int) -> None:
    """The instance's journal written straight to the store, 10,000 events a transaction."""
    try:
        await runtime.initialize()
        key = InstanceKey(LoopSteps.name, INSTANCE)
        now = dt.datetime.now(dt.UTC)
        await runtime.store.create(key, now)
        entries = journal(n)
        for first in range(0, n, 10_000):
            chunk = entries[first : first + 10_000]
            await runtime.store.append(
                key, first, [NewEvent(e.type, e.data, e.recorded_at) for e in chunk]
            )
    finally:
        await runtime.close()


async def timed_load(
    runtime: DurableRuntime[Counter, Stepped], n: int, *, then_snapshot: bool = False
) -> float:
    """Seconds for a fresh runtime to have the state (journal read, decode, apply). With
    ``then_snapshot``, an (empty) operation follows, untimed: the runtime then saves a
    snapshot at the last event (it snapshots at the end of operations)."""
    try:
        await runtime.initialize()
        start = time.perf_counter()
        instance = await runtime.get_instance(INSTANCE)
        state = await instance.query_state()
        elapsed = time.perf_counter() - start
        if then_snapshot:
            await instance.wakeup()
    finally:
        await runtime.close()
    assert state == Counter(n, n), state
    return elapsed


def durable_rates(make: MakeRuntime, n: int, reps: int) -> tuple[list[float], list[float]]:
    """Events/s of full replays and of loads from a snapshot (empty without snapshots).

    The last full replay runs with snapshots on (none exists yet, so it replays everything)
    and saves the snapshot the following loads start from.
    """
    no_snapshot = runtime_options(snapshot_every=None)
    # one key for every runtime of the run: each load is a fresh runtime (a restart)
    every_event = runtime_options(snapshot_every=1, snapshot_key="replay benchmark snapshot key")
    full = [n / asyncio.run(timed_load(make(n, no_snapshot), n)) for _ in range(reps - 1)]
    last = timed_load(make(n, every_event), n, then_snapshot=bool(every_event))
    full.append(n / asyncio.run(last))
    snap: list[float] = []
    if every_event:
        snap = [n / asyncio.run(timed_load(make(n, every_event), n)) for _ in range(reps)]
    return full, snap


def raw_read_sqlite(path: Path, n: int) -> float:
    conn = sqlite3.connect(path)
    start = time.perf_counter()
    rows = conn.execute(
        "SELECT sequence, type, data, recorded_at FROM journal "
        "WHERE workflow = ? AND instance_id = ? AND sequence > 0 ORDER BY sequence",
        (LoopSteps.name, INSTANCE),
    ).fetchall()
    elapsed = time.perf_counter() - start
    conn.close()
    assert len(rows) == n
    return n / elapsed


def raw_read_postgres(dsn: str, schema: str, n: int) -> float:
    import psycopg
    from psycopg import sql

    query = sql.SQL(
        "SELECT sequence, type, data, recorded_at FROM {}.journal "
        "WHERE workflow = %s AND instance_id = %s AND sequence > 0 ORDER BY sequence"
    ).format(sql.Identifier(schema))
    with psycopg.connect(dsn) as conn:
        start = time.perf_counter()
        rows = conn.execute(query, (LoopSteps.name, INSTANCE)).fetchall()
        elapsed = time.perf_counter() - start
    assert len(rows) == n
    return n / elapsed


def durable_rows(
    backend: str, n: int, reps: int, *, data_dir: Path, dsn: str
) -> list[tuple[str, list[float], float]]:
    """Write a journal of ``n`` events to ``backend``, then time raw reads and loads:
    (label, events/s, raw read rate) rows."""
    path = data_dir / "replay.db"
    schema = "bench_replay"

    def make(steps: int, options: dict[str, Any]) -> DurableRuntime[Counter, Stepped]:
        if backend == "sqlite":
            return SqliteRuntime(LoopSteps, path, initial_state=Counter(0, steps), **options)
        return PostgresRuntime(
            LoopSteps, dsn, initial_state=Counter(0, steps), schema=schema, **options
        )

    def clean() -> None:
        if backend == "sqlite":
            remove_sqlite(path)
        else:
            drop_schema(dsn, schema)

    clean()
    try:
        asyncio.run(write_journal(make(n, {}), n))
        if backend == "sqlite":
            raw = Stat(tuple(raw_read_sqlite(path, n) for _ in range(reps))).median
        else:
            raw = Stat(tuple(raw_read_postgres(dsn, schema, n) for _ in range(reps))).median
        name = "SQLite" if backend == "sqlite" else "PostgreSQL"
        full, snap = durable_rates(make, n, reps)
    finally:
        clean()
    return [
        (f"{name}: raw read (baseline)", [raw], raw),
        (f"{name}: fresh runtime, full replay", full, raw),
        (f"{name}: fresh runtime, from snapshot", snap, raw),
    ]


# -- main -------------------------------------------------------------------------------------


def fmt_rate(values: list[float]) -> str:
    return Stat(tuple(values)).fmt() if values else "n/a"


def snapshot_flatness(
    load_ms: dict[str, dict[int, float]], smallest: int
) -> tuple[list[str], list[list[str]]]:
    """How the load time from a snapshot grows from the smallest journal to the largest."""
    header = [
        "load from a snapshot",
        f"time at {smallest:,} events",
        "time at the largest size",
        "largest / smallest",
        "target",
        "verdict",
    ]
    rows = [
        [
            label,
            f"{times[smallest]:,.2f} ms",
            f"{times[largest]:,.2f} ms ({largest:,} events)",
            f"{times[largest] / times[smallest]:.2f}",
            "<= 2 (flat)",
            verdict(2 * times[smallest], times[largest]),
        ]
        for label, times in load_ms.items()
        if smallest in times and (largest := max(times)) > smallest
    ]
    return header, rows


def main() -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--sizes", default=None, help="journal lengths (1000,10000,100000)")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument(
        "--pg-max",
        type=int,
        default=10_000,
        help="largest journal replayed on PostgreSQL (10000; the engine and SQLite show 100k)",
    )
    args = parser.parse_args()
    default_sizes = "1000,10000" if args.quick else "1000,10000,100000"
    sizes = [int(s) for s in (args.sizes or default_sizes).split(",")]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    require_real_disk(args.data_dir, args.allow_tmpfs)
    dsn = args.pg_dsn
    notes: list[str] = []
    if "postgres" in backends and (why := pg_reachable(dsn, wait=90)) is not None:
        notes.append(f"PostgreSQL skipped: unreachable at `{dsn}` ({why}).")
        backends.remove("postgres")

    def reps_for(n: int) -> int:
        if n >= 50_000 or args.quick:
            return 1
        return 5 if n == TARGET_SIZE else 3  # the targets' size: a steadier median

    header = [
        "events",
        "what",
        "events/s",
        "time to state",
        f"vs {sizes[0]:,} events",
        "vs raw read",
    ]
    rows: list[list[str]] = []
    at_target: dict[str, float] = {}
    first: dict[str, float] = {}
    load_ms: dict[str, dict[int, float]] = {}  # from a snapshot: label -> size -> ms

    def add(n: int, label: str, values: list[float], raw: float | None) -> None:
        if not values:
            return
        median = Stat(tuple(values)).median
        first.setdefault(label, median)
        rows.append(
            [
                f"{n:,}",
                label,
                fmt_rate(values),
                f"{n / median * 1000:,.1f} ms",
                f"{median / first[label]:.2f}",
                f"{median / raw:.2f}" if raw else "",
            ]
        )
        print(f"{n:>9,}  {label:<42} {rows[-1][2]}", flush=True)
        if n == TARGET_SIZE:
            at_target[label] = median
        if "from snapshot" in label:
            load_ms.setdefault(label, {})[n] = n / median * 1000

    for n in sizes:
        reps = reps_for(n)
        entries = journal(n)
        add(n, "decode only (codec)", [decode_rate(entries) for _ in range(reps)], None)
        add(
            n,
            "engine: restore_instance",
            [asyncio.run(engine_rate(entries)) for _ in range(reps)],
            None,
        )
        for backend in backends:
            if backend == "postgres" and n > args.pg_max:
                continue
            job = functools.partial(durable_rows, backend, n, reps, data_dir=args.data_dir, dsn=dsn)
            measured = retrying(job, f"{backend} {n:,} events", dsn)
            for label, values, raw in measured:
                add(n, label, values, raw)

    summary_header = [f"at {TARGET_SIZE:,} events", "events/s", "target", "verdict"]
    summary = [
        [label, f"{value:,.0f}", f">= {TARGET:,}", verdict(value, TARGET)]
        for label, value in at_target.items()
        if "raw read" not in label and "decode only" not in label
    ]
    summary += [
        [f"{label} at 10k", f"{value:,.0f}", f">= {TARGET_FULL:,}", verdict(value, TARGET_FULL)]
        for label, value in at_target.items()
        if "full replay" in label
    ]
    flat_header, flat = snapshot_flatness(load_ms, sizes[0])
    for table in [text_table(summary_header, summary)] + (
        [text_table(flat_header, flat)] if flat else []
    ):
        print(f"\n{table}")
    if not runtime_options(snapshot_every=1):
        notes.append(
            "Snapshots are not implemented in this version: the figure 'load time does not "
            "grow with history length' is pending."
        )
    if args.no_write:
        return
    body = "\n\n".join(
        [
            "## replay.py: rebuilding an instance from its journal",
            f"Run: {command_line()}; medians of 3 repetitions (5 at 10k events, 1 at 100k).",
            facts_table(machine_facts(args.data_dir, dsn if "postgres" in backends else None)),
            markdown_table(summary_header, summary),
            *([markdown_table(flat_header, flat)] if flat else []),
            markdown_table(header, rows),
            f"`vs {sizes[0]:,} events` is events/s relative to the same row at the smallest "
            "size: 1.00 means "
            "a constant cost per event (linear total), less means the cost per event grows "
            "with the journal. `vs raw read` is relative to reading the same rows with the "
            "driver alone. From a snapshot, events/s is the journal length over the load time "
            "(no event is replayed: it shows how load time grows with history).",
            *notes,
            *retry_note(),
        ]
    )
    write_section("replay", body)


if __name__ == "__main__":
    main()
