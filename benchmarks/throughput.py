"""Throughput: N workflows x k steps on PostgreSQL, run by 1, 2 and 4 worker processes.

Each workflow (``TimedSteps``) first waits on a timer to one instant shared by all, then runs
k trivial steps. A second shape (``TimedBusySteps``, ``--step-cpu-ms``) has steps that each
compute for a while in the worker, run by up to as many workers as there are cores: there
the workers' CPU is the work, not the database's commits. For each worker count and
repetition, on a fresh schema:

1. start the workers: ``python -m workflows4py worker _throughput_app:runtime`` (the real
   CLI, with ``--poll-interval 0.02`` so that noticing the start instant costs at most
   20 ms; other options at their defaults, e.g. ``--batch 50``), and wait until each one
   listens for notifications;
2. create the N instances from this process (each records its TimerStarted and waits);
3. at the start instant every instance becomes due; the workers claim and run them.

Workflows/s = N / (last instance's finish - start instant), the finish read from the
registry's ``updated_at``. The baseline is the 1-worker figure of the same run; the
scaling ratio is workflows/s over it. The machine's cores are shared by the workers and the
PostgreSQL server (they are listed in RESULTS.md).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from _common import (
    HERE,
    ROOT,
    Counter,
    Stat,
    Stepped,
    TimedBusySteps,
    TimedSteps,
    base_parser,
    command_line,
    drop_schema,
    facts_table,
    machine_facts,
    markdown_table,
    pg_reachable,
    ratio_stat,
    retry_note,
    retrying,
    text_table,
    verdict,
    write_section,
)
from psycopg import sql

from workflows4py import PostgresRuntime, Workflow

SCHEMA = "bench_throughput"


def start_workers(
    count: int, dsn: str, steps: int, log_dir: Path, concurrency: int | None = None
) -> list[subprocess.Popen[Any]]:
    env = {
        **os.environ,
        "PYTHONPATH": str(HERE),
        "BENCH_PG_DSN": dsn,
        "BENCH_SCHEMA": SCHEMA,
        "BENCH_STEPS": str(steps),
    }
    command = [
        sys.executable,
        "-m",
        "workflows4py",
        "worker",
        "_throughput_app:runtime",
        "--poll-interval",
        "0.02",
        "--log-level",
        "WARNING",
        *(["--concurrency", str(concurrency)] if concurrency else []),
    ]
    log_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    for n in range(count):
        log = open(log_dir / f"worker-{n}.log", "w")  # noqa: SIM115 - closed with the process
        procs.append(
            subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        )
    return procs


def stop_workers(procs: list[subprocess.Popen[Any]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def wait_listening(dsn: str, count: int, procs: list[subprocess.Popen[Any]]) -> None:
    """Until ``count`` connections listen on the schema's channel (each worker has one)."""
    deadline = time.monotonic() + 60
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s",
                (f'LISTEN "workflows4py:{SCHEMA}"%',),
            ).fetchone()
            if row is not None and row[0] >= count:
                return
            if any(p.poll() is not None for p in procs):
                raise RuntimeError("a worker exited at start; see its log in the data dir")
            time.sleep(0.05)
    raise RuntimeError("the workers did not start listening within 60 s")


def _workflow() -> type[Workflow[Counter, Stepped]]:
    """The workflow of this run: with computing steps when ``BENCH_STEP_CPU_MS`` > 0."""
    return TimedBusySteps if float(os.environ.get("BENCH_STEP_CPU_MS", "0")) > 0 else TimedSteps


async def create_instances(dsn: str, workflows: int, steps: int) -> None:
    runtime = PostgresRuntime(_workflow(), dsn, initial_state=Counter(0, steps), schema=SCHEMA)
    await runtime.initialize()
    gate = asyncio.Semaphore(8)

    async def create(n: int) -> None:
        async with gate:
            await runtime.create_instance(f"wf-{n}")

    try:
        await asyncio.gather(*(create(n) for n in range(workflows)))
    finally:
        await runtime.close()


async def init_schema(dsn: str, steps: int) -> None:
    runtime = PostgresRuntime(_workflow(), dsn, initial_state=Counter(0, steps), schema=SCHEMA)
    await runtime.initialize()
    await runtime.close()


def wait_finished(dsn: str, workflows: int, timeout: float) -> dt.datetime:
    """The instant the last instance finished (registry ``updated_at``)."""
    s = sql.Identifier(SCHEMA)
    count = sql.SQL("SELECT count(*) FROM {}.instances WHERE status = 'finished'").format(s)
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            row = conn.execute(count).fetchone()
            if row is not None and row[0] >= workflows:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {row[0] if row else 0} of {workflows} finished")
            time.sleep(0.05)
        last = conn.execute(sql.SQL("SELECT max(updated_at) FROM {}.instances").format(s))
        end = last.fetchone()
        events = conn.execute(sql.SQL("SELECT count(*) FROM {}.journal").format(s)).fetchone()
    expected = workflows * (steps_of_run + 2)
    if events is None or events[0] != expected:
        raise RuntimeError(f"{events[0] if events else 0} events written, expected {expected}")
    assert end is not None
    value: dt.datetime = end[0]
    return value


steps_of_run = 10


def machine_cpu() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return sum(ticks) - idle, sum(ticks)


def process_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) used so far by these processes."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


CREATION: list[float] = []  # seconds each run took to create its instances


@dataclass(frozen=True)
class Run:
    rate: float  # workflows/s
    busy: float  # share of the machine's CPU time busy during the run (all processes)
    worker_ms: float  # worker CPU milliseconds per workflow


def one_run(
    dsn: str,
    workers: int,
    *,
    workflows: int,
    steps: int,
    margin: float,
    logs: Path,
    concurrency: int | None = None,
) -> Run:
    """One run; raises TimeoutError if creating took longer than ``margin``."""
    drop_schema(dsn, SCHEMA)
    asyncio.run(init_schema(dsn, steps))
    procs = start_workers(workers, dsn, steps, logs, concurrency)
    pids = [p.pid for p in procs]
    try:
        wait_listening(dsn, workers, procs)
        began = dt.datetime.now(dt.UTC)
        start_at = began + dt.timedelta(seconds=margin)
        os.environ["BENCH_START_AT"] = start_at.isoformat()
        asyncio.run(create_instances(dsn, workflows, steps))
        now = dt.datetime.now(dt.UTC)
        CREATION.append((now - began).total_seconds())
        if now - start_at > -dt.timedelta(seconds=0.1):
            raise TimeoutError(f"creating {workflows} instances took longer than {margin:.1f} s")
        time.sleep(max(0.0, (start_at - dt.datetime.now(dt.UTC)).total_seconds()))
        busy0, total0 = machine_cpu()
        cpu0 = process_cpu(pids)
        end = wait_finished(dsn, workflows, timeout=600)
        busy1, total1 = machine_cpu()
        cpu1 = process_cpu(pids)
    finally:
        stop_workers(procs)
        drop_schema(dsn, SCHEMA)
    return Run(
        workflows / (end - start_at).total_seconds(),
        (busy1 - busy0) / max(1, total1 - total0),
        (cpu1 - cpu0) * 1000 / workflows,
    )


@dataclass(frozen=True)
class Shape:
    """One kind of workload: how long each step computes, and how many workflows a run has."""

    cpu_ms: float
    workflows: int
    counts: list[int]

    @property
    def label(self) -> str:
        if self.cpu_ms == 0:
            return "trivial steps"
        return f"steps computing {self.cpu_ms:g} ms each"


def measure(args: Any, shape: Shape, reps: int) -> dict[int, list[Run]]:
    """``reps`` runs of ``shape`` per worker count, interleaved."""
    dsn = args.pg_dsn
    os.environ["BENCH_STEP_CPU_MS"] = str(shape.cpu_ms)
    logs = args.data_dir / "throughput-logs"
    margin = 1.0 + shape.workflows / 400
    results: dict[int, list[Run]] = {c: [] for c in shape.counts}
    print(
        f"{shape.label}: {shape.workflows} workflows x {args.steps} steps, workers {shape.counts}"
    )
    for rep in range(reps):
        for workers in shape.counts:

            def attempt(workers: int = workers) -> Run:
                nonlocal margin
                while True:
                    try:
                        return one_run(
                            dsn,
                            workers,
                            workflows=shape.workflows,
                            steps=args.steps,
                            margin=margin,
                            logs=logs,
                            concurrency=args.concurrency,
                        )
                    except TimeoutError as e:
                        margin = 1.5 * CREATION[-1] + 1
                        print(f"  {e}; again with {margin:.1f} s", flush=True)

            run = retrying(attempt, f"rep {rep + 1}, {workers} worker(s)", dsn, attempts=3)
            margin = 1.5 * max(CREATION[-3:]) + 1  # the creation rate varies with the load
            results[workers].append(run)
            print(
                f"  rep {rep + 1}, {workers} worker(s): {run.rate:,.0f} workflows/s, "
                f"CPU busy {run.busy:.0%}, worker CPU {run.worker_ms:.1f} ms/workflow",
                flush=True,
            )
    return results


def table(shape: Shape, steps: int, results: dict[int, list[Run]]) -> list[list[str]]:
    base = results[shape.counts[0]]
    rows = []
    for workers in shape.counts:
        runs = results[workers]
        stat = Stat(tuple(r.rate for r in runs))
        rows.append(
            [
                shape.label,
                str(workers),
                stat.fmt(),
                f"{stat.median * steps:,.0f}",
                ratio_stat([r.rate for r in runs], [r.rate for r in base]).fmt(2),
                f"{Stat(tuple(r.busy for r in runs)).median:.0%}",
                f"{Stat(tuple(r.worker_ms for r in runs)).median:.1f}",
            ]
        )
    return rows


def verdicts(shape: Shape, results: dict[int, list[Run]]) -> list[list[str]]:
    """The targets of issue #16 for ``shape``: never below 1 worker; with computing steps,
    >= 1.6x at 2 workers and the CPU per workflow flat (within 15%)."""
    one = results[shape.counts[0]]
    rows = []
    for workers in shape.counts[1:]:
        runs = results[workers]
        speed = ratio_stat([r.rate for r in runs], [r.rate for r in one])
        target = 1.6 if shape.cpu_ms > 0 and workers == 2 else 1.0
        rows.append(
            [
                f"{shape.label}: {workers} workers / 1, workflows/s",
                speed.fmt(2),
                f">= {target:.2f}",
                verdict(speed.median, target),
            ]
        )
        if shape.cpu_ms > 0:
            cpu = ratio_stat([r.worker_ms for r in runs], [r.worker_ms for r in one])
            rows.append(
                [
                    f"{shape.label}: {workers} workers / 1, worker CPU per workflow",
                    cpu.fmt(2),
                    "<= 1.15",
                    verdict(1.15, cpu.median),
                ]
            )
    return rows


def main() -> None:
    global steps_of_run  # noqa: PLW0603 - read by wait_finished's check
    parser = base_parser(__doc__)
    parser.add_argument("--workflows", type=int, default=None, help="workflows per run (1000)")
    parser.add_argument("--steps", type=int, default=10, help="steps per workflow (10)")
    parser.add_argument("--workers", default="1,2,4", help="worker counts (1,2,4)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (2; --quick: 1)")
    parser.add_argument(
        "--step-cpu-ms",
        type=float,
        default=None,
        help="the computing steps' CPU time per step, 0 for none (5; --quick: 1)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="the workers' --concurrency (default: the worker command's default)",
    )
    args = parser.parse_args()
    workflows = args.workflows or (200 if args.quick else 1000)
    reps = args.reps or (1 if args.quick else 2)
    counts = [int(c) for c in args.workers.split(",")]
    cpu_ms = args.step_cpu_ms if args.step_cpu_ms is not None else (1.0 if args.quick else 5.0)
    steps_of_run = args.steps
    dsn = args.pg_dsn
    if (why := pg_reachable(dsn, wait=90)) is not None:
        raise SystemExit(f"PostgreSQL unreachable at {dsn}: {why}")
    shapes = [Shape(0, workflows, counts)]
    if cpu_ms > 0:  # fewer workflows: each costs the worker 10 x cpu_ms of CPU
        busy_counts = [c for c in counts if c <= (os.cpu_count() or 2)]
        shapes.append(Shape(cpu_ms, max(50, workflows // 4), busy_counts))
    measured = [(shape, measure(args, shape, reps)) for shape in shapes]

    header = [
        "steps",
        "workers",
        "workflows/s",
        "steps/s",
        "vs 1 worker",
        "machine CPU busy",
        "worker CPU ms/workflow",
    ]
    rows = [row for shape, results in measured for row in table(shape, args.steps, results)]
    summary_head = ["measure", "ratio", "target", "verdict"]
    summary = [row for shape, results in measured for row in verdicts(shape, results)]
    print()
    print(text_table(summary_head, summary))
    print()
    print(text_table(header, rows))
    if args.no_write:
        return
    sizes = ", ".join(f"{shape.workflows:,} workflows of {shape.label}" for shape in shapes)
    body = "\n\n".join(
        [
            f"## throughput.py: workflows x {args.steps} steps on PostgreSQL, 1 to "
            f"{max(counts)} worker processes",
            f"Run: {command_line()}; {sizes}; {reps} repetitions per worker count, interleaved.",
            facts_table(machine_facts(None, dsn)),
            markdown_table(summary_head, summary),
            markdown_table(header, rows),
            "Workers are `python -m workflows4py worker` processes (`--poll-interval 0.02`, "
            "default `--batch 50`, `--concurrency 32` and `--prefetch 8`); the time runs from "
            "the instant all workflows become due to the registry's last finish. With "
            "trivial steps the database's commits are most of the work, and the machine's "
            "cores (see above) are shared by the workers and the PostgreSQL server: one "
            "worker leaves them idle while it waits on round trips, more workers fill them "
            "until they are busy. With computing steps (each step spends its CPU time in "
            "the worker, as a step that parses or renders would) the workers' cores are the "
            "work, which "
            f"is where more processes help, up to the cores there are ({os.cpu_count()} "
            "here, so the computing rows stop there). `machine CPU busy` is the share of all "
            "cores' time not idle during the run, whoever used it (the workers, PostgreSQL, "
            "other processes); `worker CPU` is the workers' own CPU time per workflow.",
            *retry_note(),
        ]
    )
    write_section("throughput", body)


if __name__ == "__main__":
    main()
