"""Many workflow types, one runtime: 20 workflow types in one ``Runtime.postgres``, against
the same run with one type.

An application has several workflows and runs them from one ``Runtime``: one PostgreSQL
pool, one listening connection, one worker, whatever their number. This measures what
serving 20 types costs against serving one. Each repetition, on a fresh schema each time,
interleaved:

- ``start``: N instances of k trivial steps, ``runtime.start`` 8 at a time from this
  process (each start runs its k steps before it returns), spread round-robin over 20
  generated workflow types (distinct ids ``bench-many-00`` ... ``bench-many-19``), then the
  same N over one type;
- ``worker``: N instances that first wait on a one-minute timer (started on a test clock,
  so they record their ``TimerStarted`` and wait), then the k steps; the clock moves on a
  minute and a ``Worker`` over the runtime (the one ``workflows4py worker`` runs, default
  concurrency 8) claims and runs them all, over 20 types and over one.

Steps/s = N x k / the time until the last instance finished (for ``worker``, from the
instant the clock moved); the ratio 20 types / 1 type is computed per repetition. At the
end of each run the runtime's connections are counted in ``pg_stat_activity`` (its
connection string carries an ``application_name`` of its own): pooled connections, at most
the runtime's ``max_connections`` when one pool serves every type, and the one listening
connection outside the pool.

Targets: 20 types >= 0.9 x one type; connections of the pool <= max_connections.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from _common import (
    Counter,
    Stat,
    Stepped,
    base_parser,
    command_line,
    drop_schema,
    facts_table,
    machine_facts,
    markdown_table,
    one_step,
    pg_reachable,
    ratio_stat,
    reached,
    retry_note,
    retrying,
    text_table,
    verdict,
    write_section,
)
from psycopg import sql
from psycopg.conninfo import make_conninfo

from workflows4py import WIO, Worker, Workflow
from workflows4py.runtime import Runtime
from workflows4py.stores import SearchQuery
from workflows4py.testing import TestClock

TYPES = 20
TARGET = 0.9
MAX_CONNECTIONS = 10  # the runtime's pool size (the default of Runtime.postgres)
CONCURRENCY = 8  # starts at once, and the worker's concurrency (its default)
SCHEMA = "bench_many"
WAIT = dt.timedelta(minutes=1)

Types = list[type[Workflow[Counter, Stepped]]]


def workflow_types(count: int, *, timed: bool) -> Types:
    """``count`` workflow types with distinct ids, each ``repeat(step).until(n >= target)``,
    after a one-minute timer when ``timed``."""
    steps = WIO.repeat(one_step()).until(reached)
    definition = WIO.timer(WAIT, input=Counter, name="Start") >> steps if timed else steps
    kind = "timed" if timed else "steps"
    types: Types = []
    for n in range(count):

        class Generated(Workflow[Counter, Stepped]):
            id = f"bench-many-{kind}-{n:02d}"

        Generated.definition = definition
        types.append(Generated)
    return types


@dataclass(frozen=True)
class Run:
    steps_per_second: float
    pooled: int  # the runtime's pooled server connections at the end of the run
    listening: int  # its listening connections (outside the pool)


async def connections(dsn: str, application_name: str) -> tuple[int, int]:
    """``(pooled, listening)`` server connections named ``application_name``."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT query FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        )
        queries = [str(q) for (q,) in await cursor.fetchall()]
    listening = sum(1 for q in queries if q.startswith("LISTEN"))
    return len(queries) - listening, listening


async def started(runtime: Runtime, types: Types, instances: int, steps: int) -> None:
    """Start ``instances`` instances spread over ``types``, ``CONCURRENCY`` at a time."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def start(n: int) -> None:
        async with gate:
            await runtime.start(types[n % len(types)], f"i-{n}", initial_state=Counter(0, steps))

    await asyncio.gather(*(start(n) for n in range(instances)))


async def finished(dsn: str, instances: int) -> None:
    """Until ``instances`` instances of the schema are finished (checked every 10 ms, on a
    connection of its own)."""
    query = sql.SQL("SELECT count(*) FROM {}.instances WHERE status = 'finished'").format(
        sql.Identifier(SCHEMA)
    )
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        deadline = time.monotonic() + 600
        while True:
            row = await (await conn.execute(query)).fetchone()
            if row is not None and row[0] >= instances:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {row[0] if row else 0} of {instances} finished")
            await asyncio.sleep(0.01)


async def start_run(runtime: Runtime, types: Types, instances: int, steps: int) -> float:
    """Seconds for the instances to run their steps inside ``start``."""
    began = time.perf_counter()
    await started(runtime, types, instances, steps)
    return time.perf_counter() - began


async def worker_run(
    runtime: Runtime, types: Types, instances: int, steps: int, *, clock: TestClock, dsn: str
) -> float:
    """Seconds for a worker to run the instances, once their timers are due."""
    await started(runtime, types, instances, steps)  # each records its timer and waits
    worker = Worker(runtime, poll_interval=0.02, concurrency=CONCURRENCY)
    clock.advance(WAIT)
    began = time.perf_counter()
    task = asyncio.create_task(worker.run())
    try:
        await finished(dsn, instances)
        elapsed = time.perf_counter() - began
    finally:
        worker.stop()
        await task
    return elapsed


async def one_run(dsn: str, types: Types, instances: int, steps: int, *, timed: bool) -> Run:
    drop_schema(dsn, SCHEMA)
    name = f"w4p-bench-many-{uuid.uuid4().hex[:8]}"
    clock = TestClock(dt.datetime.now(dt.UTC))
    runtime = Runtime.postgres(
        make_conninfo(dsn, application_name=name),
        types,
        schema=SCHEMA,
        max_connections=MAX_CONNECTIONS,
        clock=clock,
    )
    try:
        async with runtime:
            if timed:
                elapsed = await worker_run(runtime, types, instances, steps, clock=clock, dsn=dsn)
            else:
                elapsed = await start_run(runtime, types, instances, steps)
            page = await runtime.search(SearchQuery(status=["finished"], limit=1))
            if page.total != instances:
                raise AssertionError(f"{page.total} of {instances} instances finished")
            pooled, listening = await connections(dsn, name)
    finally:
        drop_schema(dsn, SCHEMA)
    return Run(instances * steps / elapsed, pooled, listening)


MODES = {"start": False, "worker": True}
DESCRIPTIONS = {
    "start": "`runtime.start`, 8 at a time, steps run inside start",
    "worker": "a `Worker` (concurrency 8) runs due instances",
}


def measure(dsn: str, instances: int, steps: int, reps: int) -> dict[tuple[str, int], list[Run]]:
    """Each mode with 20 types and with one, interleaved, after a warm-up round."""
    types = {
        (mode, count): workflow_types(count, timed=timed)
        for mode, timed in MODES.items()
        for count in (TYPES, 1)
    }
    runs: dict[tuple[str, int], list[Run]] = {key: [] for key in types}

    def job(key: tuple[str, int]) -> Callable[[], Run]:
        mode, _ = key
        return lambda: asyncio.run(one_run(dsn, types[key], instances, steps, timed=MODES[mode]))

    for key in types:
        retrying(job(key), f"warm-up {key[0]} x {key[1]}", dsn)
    for rep in range(reps):
        line = []
        for key in types:
            run = retrying(job(key), f"rep {rep + 1} {key[0]} x {key[1]}", dsn)
            runs[key].append(run)
            line.append(f"{key[0]} x {key[1]}: {run.steps_per_second:,.0f}/s")
        print(f"  rep {rep + 1}/{reps}: " + ", ".join(line), flush=True)
    return runs


def server_max_connections(dsn: str) -> str:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SHOW max_connections").fetchone()
    return str(row[0]) if row else "?"


def main() -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--instances", type=int, default=None, help="per run (200; --quick 40)")
    parser.add_argument("--steps", type=int, default=None, help="per instance (10; --quick 5)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (5; --quick: 1)")
    args = parser.parse_args()
    instances = args.instances or (40 if args.quick else 200)
    steps = args.steps or (5 if args.quick else 10)
    reps = args.reps or (1 if args.quick else 5)
    dsn = args.pg_dsn
    if (why := pg_reachable(dsn, wait=90)) is not None:
        raise SystemExit(f"PostgreSQL unreachable at {dsn}: {why}")
    print(f"{instances} instances x {steps} steps, {TYPES} types vs 1, {reps} reps")
    runs = measure(dsn, instances, steps, reps)

    summary_header = ["driven by", f"{TYPES} types / 1 type, steps/s", "target", "verdict"]
    header = ["driven by", "workflow types", "steps/s", "pooled connections", "listening"]
    summary, rows = [], []
    for mode in MODES:
        many, one = runs[(mode, TYPES)], runs[(mode, 1)]
        ratio = ratio_stat([r.steps_per_second for r in many], [r.steps_per_second for r in one])
        summary.append(
            [DESCRIPTIONS[mode], ratio.fmt(2), f">= {TARGET:.2f}", verdict(ratio.median, TARGET)]
        )
        for count, measured in ((TYPES, many), (1, one)):
            rows.append(
                [
                    DESCRIPTIONS[mode],
                    str(count),
                    Stat(tuple(r.steps_per_second for r in measured)).fmt(),
                    f"max {max(r.pooled for r in measured)}",
                    f"max {max(r.listening for r in measured)}",
                ]
            )
    pooled = max(r.pooled for measured in runs.values() for r in measured)
    listening = max(r.listening for measured in runs.values() for r in measured)
    pool_verdict = "**met**" if pooled <= MAX_CONNECTIONS and listening <= 1 else "**not met**"
    summary.append(
        [
            "PostgreSQL connections of the runtime, any run",
            f"{pooled} pooled + {listening} listening",
            f"pooled <= max_connections ({MAX_CONNECTIONS}), one listener",
            pool_verdict,
        ]
    )
    print(f"\n{text_table(summary_header, summary)}\n\n{text_table(header, rows)}")
    if args.no_write:
        return
    body = "\n\n".join(
        [
            f"## many_workflows.py: {TYPES} workflow types in one Runtime.postgres",
            f"Run: {command_line()}; {instances} instances x {steps} trivial steps per run, "
            f"{reps} repetitions, each mode with {TYPES} types and with 1, interleaved, a "
            "fresh schema each run.",
            facts_table(machine_facts(None, dsn)),
            markdown_table(summary_header, summary),
            markdown_table(header, rows),
            f"Instances are spread round-robin over the {TYPES} generated types (distinct "
            f"ids), {instances // TYPES} of each. Steps/s runs to the last instance's finish; "
            "for the worker, from the instant its instances' timers became due (a test "
            "clock moved on). The ratio is computed per repetition. Connections are counted "
            "in `pg_stat_activity` by the runtime's own `application_name` at the end of "
            f"each run: the pool (`max_connections={MAX_CONNECTIONS}`, the default; the "
            f"server allows {server_max_connections(dsn)}) and the listening connection the "
            "store opens outside it at its first wait for work (the `start` runs never "
            "wait for work, so they have none).",
            *retry_note(),
        ]
    )
    write_section("many_workflows", body)


if __name__ == "__main__":
    main()
