"""Group commit: many instances started at once, against the database's own limits.

On PostgreSQL, 500 workflows x 10 trivial steps are started at once in one process
(``runtime.start`` for each, all awaited together), so their appends and registry writes
can share transactions; the baseline is ``pgbench`` with 16 clients doing one-row INSERTs
into a table shaped like the journal, on the same database, in the same run. On SQLite the
same start is compared with the sequential figure: the same workflows started one after
another. Each shape runs with group commit on (the default) and off (``group_commit=False``
on the store), interleaved; and one instance alone, on and off, shows that a lone
instance's steps are not slowed down by it.

Targets (issue #16): PostgreSQL, steps/s of the start at once >= pgbench's tps; SQLite,
>= 3x the sequential figure; a lone instance with group commit >= 0.95 of without.
"""

from __future__ import annotations

import asyncio
import gc
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from _common import (
    Counter,
    LoopSteps,
    Stat,
    base_parser,
    command_line,
    drop_schema,
    facts_table,
    machine_facts,
    markdown_table,
    pg_reachable,
    ratio_stat,
    require_real_disk,
    retry_note,
    sqlite_file,
    text_table,
    verdict,
    write_section,
)

from workflows4py import DurableRuntime
from workflows4py.stores import PostgresStore, SqliteStore, Store

SCHEMA = "bench_group_commit"
PGBENCH_CLIENTS = 16


class GcClock:
    """Wall time spent in CPython's cyclic garbage collector while active (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._began

    def __enter__(self) -> GcClock:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


async def start_all(
    make: Callable[[], Store], workflows: int, steps: int, at_once: bool, freeze: bool = False
) -> tuple[float, float, float]:
    """Steps/s, client CPU ms per workflow and, of that, ms in the garbage collector, of
    ``workflows`` started at once (or one after another), each running ``steps`` steps
    inside its start. ``freeze``: ``gc.freeze()`` once the runtime is ready, as an
    application may after its start-up."""
    store = make()
    runtime = DurableRuntime(LoopSteps, store, initial_state=Counter(0, steps), snapshot_every=None)
    async with runtime:
        await runtime.initialize()
        ids = [f"w{n:05d}" for n in range(workflows)]
        if freeze:
            gc.collect()
            gc.freeze()
        try:
            with GcClock() as collecting:
                t0, cpu0 = time.perf_counter(), time.process_time()
                if at_once:
                    await asyncio.gather(*(runtime.start(i) for i in ids))
                else:
                    for i in ids:
                        await runtime.start(i)
                elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        finally:
            gc.unfreeze()
        last = await runtime.get_instance(ids[-1])
        assert (await last.query_state()).n == steps, "the benchmark workflow did not finish"
    per_workflow = 1000 / workflows
    return workflows * steps / elapsed, cpu * per_workflow, collecting.seconds * per_workflow


def pgbench(dsn: str, seconds: int) -> float:
    """tps of ``pgbench`` with 16 clients doing one-row INSERTs into a journal-shaped table."""
    exe = shutil.which("pgbench")
    if exe is None:
        raise SystemExit("pgbench not found (Debian: apt-get install postgresql-client)")
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA}_pgbench CASCADE")
        conn.execute(f"CREATE SCHEMA {SCHEMA}_pgbench")
        conn.execute(
            f"""CREATE TABLE {SCHEMA}_pgbench.journal (
                workflow text COLLATE "C" NOT NULL, instance_id text COLLATE "C" NOT NULL,
                sequence bigint NOT NULL, type text NOT NULL, data text NOT NULL,
                recorded_at timestamptz NOT NULL, PRIMARY KEY (workflow, instance_id, sequence))"""
        )
        conn.execute(f"CREATE SEQUENCE {SCHEMA}_pgbench.seq")
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(
            f"INSERT INTO {SCHEMA}_pgbench.journal VALUES ('bench', :client_id, "
            f"nextval('{SCHEMA}_pgbench.seq'), 'Stepped', '{{\"n\":1}}', now());\n"
        )
    try:
        command = [exe, "-n", "-c", str(PGBENCH_CLIENTS), "-j", "2", "-T", str(seconds)]
        out = subprocess.run(
            [*command, "-f", script.name, dsn],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
        drop_schema(dsn, f"{SCHEMA}_pgbench")
    found = re.search(r"tps = ([\d.]+)", out)
    if found is None:
        raise SystemExit(f"could not read pgbench's output:\n{out}")
    return float(found.group(1))


def main() -> None:  # noqa: PLR0915 - one linear report
    parser = base_parser(__doc__)
    parser.add_argument("--workflows", type=int, default=None, help="workflows at once (500)")
    parser.add_argument("--steps", type=int, default=10, help="steps per workflow (10)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (3; --quick: 1)")
    parser.add_argument("--backends", default="postgres,sqlite", help="postgres,sqlite")
    args = parser.parse_args()
    workflows = args.workflows or (60 if args.quick else 500)
    reps = args.reps or (1 if args.quick else 3)
    lone = 5 if args.quick else 40  # workflows of the lone-instance rows (one at a time)
    bench_seconds = 2 if args.quick else 10
    backends = args.backends.split(",")
    dsn = args.pg_dsn
    args.data_dir.mkdir(parents=True, exist_ok=True)
    require_real_disk(args.data_dir, args.allow_tmpfs)
    if "postgres" in backends and (why := pg_reachable(dsn, wait=30)) is not None:
        raise SystemExit(f"PostgreSQL unreachable at {dsn}: {why}")

    def postgres(on: bool) -> Callable[[], Store]:
        def make() -> Store:
            drop_schema(dsn, SCHEMA)
            return PostgresStore(dsn, schema=SCHEMA, group_commit=on)

        return make

    figures: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    in_gc: dict[str, list[float]] = {}

    def record(name: str, run: Awaitable[tuple[float, float, float]]) -> None:
        rate, ms, gc_ms = asyncio.run(_awaited(run))
        figures.setdefault(name, []).append(rate)
        cpu.setdefault(name, []).append(ms)
        in_gc.setdefault(name, []).append(gc_ms)
        print(
            f"  {name}: {rate:,.0f} steps/s, {ms:.2f} ms CPU/workflow ({gc_ms:.2f} in GC)",
            flush=True,
        )

    # a lone instance's rate swings by 15% from run to run (the disk): its on/off ratio is
    # the median of several pairs per repetition, each pair in alternating order
    pairs = 1 if args.quick else 3
    lone_off_by_rep: dict[str, list[float]] = {}

    def lone_pairs(prefix: str, make: Callable[[bool], Callable[[], Store]]) -> None:
        for pair in range(pairs):
            for on in (True, False) if pair % 2 == 0 else (False, True):
                name = f"{prefix} lone {'on' if on else 'off'}"
                record(name, start_all(make(on), lone, args.steps, False))
        offs = figures[f"{prefix} lone off"][-pairs:]
        lone_off_by_rep.setdefault(prefix, []).append(Stat(tuple(offs)).median)

    with sqlite_file(args.data_dir, "group_commit.db") as db:

        def sqlite(on: bool) -> Callable[[], Store]:
            def make() -> Store:
                for suffix in ("", "-wal", "-shm"):
                    Path(str(db) + suffix).unlink(missing_ok=True)
                return SqliteStore(db, group_commit=on)

            return make

        for rep in range(reps):
            print(f"rep {rep + 1} of {reps}", flush=True)
            if "postgres" in backends:
                figures.setdefault("pg pgbench", []).append(pgbench(dsn, bench_seconds))
                print(f"  pg pgbench: {figures['pg pgbench'][-1]:,.0f} tps", flush=True)
                for on in (True, False):
                    tag = "on" if on else "off"
                    record(
                        f"pg at once {tag}", start_all(postgres(on), workflows, args.steps, True)
                    )
                frozen = start_all(postgres(True), workflows, args.steps, True, freeze=True)
                record("pg at once frozen", frozen)
                lone_pairs("pg", postgres)
            if "sqlite" in backends:
                for on in (True, False):
                    tag = "on" if on else "off"
                    record(
                        f"sqlite at once {tag}", start_all(sqlite(on), workflows, args.steps, True)
                    )
                lone_pairs("sqlite", sqlite)
    if "postgres" in backends:
        drop_schema(dsn, SCHEMA)

    figures["sqlite lone off (rep)"] = lone_off_by_rep.get("sqlite", [])

    def stat(name: str) -> Stat:
        return Stat(tuple(figures[name]))

    def ms(name: str) -> str:
        return f"{Stat(tuple(cpu[name])).median:.2f} ({Stat(tuple(in_gc[name])).median:.2f})"

    def target(label: str, num: str, den: str, goal: float) -> list[str]:
        ratio = ratio_stat(figures[num], figures[den])
        return [label, ratio.fmt(2), f">= {goal:.2f}", verdict(ratio.median, goal)]

    def runs(db: str, prefix: str) -> list[list[str]]:
        return [
            [
                db,
                f"{label}, group commit {tag}",
                stat(f"{prefix} {key} {tag}").fmt(),
                ms(f"{prefix} {key} {tag}"),
            ]
            for key, label in (("at once", f"{workflows} at once"), ("lone", "one at a time"))
            for tag in ("on", "off")
        ]

    shape = f"{workflows} x {args.steps} started at once, steps/s"
    summary = []
    detail = []
    if "postgres" in backends:
        summary += [
            target(
                f"PostgreSQL: {shape} vs pgbench ({PGBENCH_CLIENTS} clients, one-row INSERTs) tps",
                "pg at once on",
                "pg pgbench",
                1.0,
            ),
            target(
                "PostgreSQL: one instance at a time, group commit on / off",
                "pg lone on",
                "pg lone off",
                0.95,
            ),
        ]
        bench = ["PostgreSQL", f"pgbench, {PGBENCH_CLIENTS} clients (tps)"]
        frozen_run = f"{workflows} at once, group commit on, gc.freeze() first"
        detail += [
            [*bench, stat("pg pgbench").fmt(), ""],
            *runs("PostgreSQL", "pg"),
            ["PostgreSQL", frozen_run, stat("pg at once frozen").fmt(), ms("pg at once frozen")],
        ]
    if "sqlite" in backends:
        summary += [
            target(
                f"SQLite (FULL): {shape} vs one at a time (without group commit)",
                "sqlite at once on",
                "sqlite lone off (rep)",
                3.0,
            ),
            target(
                "SQLite (FULL): one instance at a time, group commit on / off",
                "sqlite lone on",
                "sqlite lone off",
                0.95,
            ),
        ]
        detail += runs("SQLite", "sqlite")
    head = ["measure", "ratio", "target", "verdict"]
    detail_head = ["database", "run", "steps/s (or tps)", "client CPU ms/workflow (in GC)"]
    print()
    print(text_table(head, summary))
    print()
    print(text_table(detail_head, detail))
    if args.no_write:
        return
    body = "\n\n".join(
        [
            f"## group_commit.py: {workflows} workflows x {args.steps} steps started at once",
            f"Run: {command_line()}; {reps} repetitions, interleaved (pgbench first in each, "
            f"then at once on and off, then {pairs} pairs of one at a time, on and off in "
            "alternating order: the on/off ratio of a lone instance is over those pairs, "
            "and the SQLite batch is compared with the median lone run without group "
            "commit of its repetition).",
            facts_table(machine_facts(args.data_dir, dsn if "postgres" in backends else None)),
            markdown_table(head, summary),
            markdown_table(detail_head, detail),
            "Each run starts the workflows with `runtime.start` in one process (a "
            "`DurableRuntime` of the benchmark loop over a `PostgresStore` or `SqliteStore` "
            "with `group_commit=True` or `False`), all awaited together (`at once`) or one "
            f"after another (`one at a time`, {lone} workflows); every step is a durable "
            "commit before the next one runs. `pgbench` runs "
            f"{bench_seconds} s with {PGBENCH_CLIENTS} clients and 2 threads, each "
            "transaction one INSERT into a table with the journal's columns and primary "
            "key. `client CPU` is the benchmark process's CPU time per workflow (the "
            "database server's is not in it); `in GC`, the time of it spent in CPython's "
            "cyclic garbage collector (measured with `gc.callbacks`). The `gc.freeze()` "
            "row is for information, not a target: the same start, with every object "
            "made before it (modules, the runtime) moved out of the collector's sight, as "
            "an application may do once it has started; the verdict above is without it.",
            *retry_note(),
        ]
    )
    write_section("group_commit", body)


async def _awaited(run: Awaitable[tuple[float, float, float]]) -> tuple[float, float, float]:
    return await run


if __name__ == "__main__":
    main()
