"""workflows4py against DBOS Transact on the same databases, same workflow shapes.

Shapes (both engines record one database row per step, durably, before the next step):

- A: one workflow of N trivial steps (default 1,000);
- B: W workflows of k trivial steps each, run one after another (default 100 x 10);
- C: C workflows of k trivial steps each, all started at once and awaited together
  (default 500 x 10): workflows4py's ``start`` of each, gathered; DBOS's ``start_workflow``
  of each (its thread pool; ``start_workflow_async`` for the async API), then every result.

Each engine runs in its own fresh process (DBOS is a process-wide singleton), on a fresh
database: a new SQLite file on the real disk, or a new schema of the same PostgreSQL
database. After one warm-up run, each process times R runs and reports steps/s.

DBOS is configured with its defaults: ``DBOS(config={"name", "system_database_url"})``
(on PostgreSQL also ``dbos_system_schema``, only to drop its tables afterwards). Its
default SQLite file uses SQLite's default rollback journal (``journal_mode=delete``) with
synchronous=FULL; because workflows4py uses WAL, DBOS is also run on a file switched to WAL
beforehand (same synchronous=FULL), the fairest like-for-like. Both DBOS APIs are run:
sync (``def`` workflow and steps) and async (``async def``). The ratio uses the fastest DBOS
variant. The raw append rate of each database (as in step_overhead.py) is the baseline both
are measured against.

Target: workflows4py >= 5x DBOS steps/s, DBOS as its users get it (its default
configuration; the faster of its two APIs). The summary also gives the ratio to the fastest
DBOS variant, including the WAL file we prepare for it, and the ceiling of that ratio: the
raw append rate over that DBOS variant's rate, i.e. what workflows4py would reach if a step
cost nothing but its one durable insert. Where the ceiling is below 5x, no engine that
commits each step before running the next could reach 5x against that variant.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    remove_sqlite,
    require_real_disk,
    retry_note,
    retrying,
    text_table,
    verdict,
    write_section,
)

from workflows4py import DurableRuntime, PostgresRuntime, SqliteRuntime

TARGET = 5.0
DBOS_SCHEMA = "bench_dbos"
W4P_SCHEMA = "bench_vs_dbos"

# -- children: one engine, one database, R timed runs -----------------------------------------


def timed_runs(run: Callable[[], int], reps: int, warm_up: Callable[[], int]) -> list[float]:
    """Steps/s of ``reps`` calls of ``run`` (which returns how many steps it ran), after one
    call of ``warm_up`` (imports, caches, the database's files and prepared statements)."""
    warm_up()
    rates = []
    for _ in range(reps):
        start = time.perf_counter()
        steps = run()
        rates.append(steps / (time.perf_counter() - start))
    return rates


def child_workflows4py(spec: dict[str, Any]) -> dict[str, list[float]]:
    steps, reps, workflows, k = spec["steps"], spec["reps"], spec["workflows"], spec["k"]

    def runtime(initial: Counter) -> DurableRuntime[Counter, Any]:
        if spec["db"] == "sqlite":
            return SqliteRuntime(LoopSteps, spec["path"], initial_state=initial)
        return PostgresRuntime(LoopSteps, spec["dsn"], initial_state=initial, schema=W4P_SCHEMA)

    async def at_once(initial: Counter, count: int) -> int:
        rt = runtime(initial)
        await rt.initialize()
        try:
            ids = [uuid.uuid4().hex for _ in range(count)]
            await asyncio.gather(*(rt.start(i) for i in ids))
            for i in ids:
                if await (await rt.get_instance(i)).status() != "finished":
                    raise AssertionError("the workflow did not finish")
        finally:
            await rt.close()
        return count * initial.target

    async def shape(initial: Counter, count: int) -> int:
        rt = runtime(initial)
        await rt.initialize()
        try:
            for _ in range(count):
                instance = await rt.create_instance(uuid.uuid4().hex)
                if await instance.status() != "finished":
                    raise AssertionError("the workflow did not finish")
        finally:
            await rt.close()
        return count * initial.target

    # the runtime is created inside each timed run; so is DBOS's workflow call state
    warm = lambda: asyncio.run(shape(Counter(0, k), 5))  # noqa: E731
    return {
        "A": timed_runs(lambda: asyncio.run(shape(Counter(0, steps), 1)), reps, warm),
        "B": timed_runs(lambda: asyncio.run(shape(Counter(0, k), workflows)), reps, warm),
        "C": timed_runs(lambda: asyncio.run(at_once(Counter(0, k), spec["at_once"])), reps, warm),
    }


def child_dbos(spec: dict[str, Any]) -> dict[str, list[float]]:
    from dbos import DBOS, DBOSConfig  # type: ignore[import-not-found, unused-ignore]

    config: DBOSConfig = {"name": "workflows4py-bench", "system_database_url": spec["url"]}
    if spec["db"] == "postgres":
        config["dbos_system_schema"] = DBOS_SCHEMA
    DBOS(config=config)

    @DBOS.step()
    def sync_step(n: int) -> int:
        return n + 1

    @DBOS.workflow()
    def sync_workflow(count: int) -> int:
        n = 0
        for _ in range(count):
            n = sync_step(n)
        return n

    @DBOS.step()
    async def async_step(n: int) -> int:
        return n + 1

    @DBOS.workflow()
    async def async_workflow(count: int) -> int:
        n = 0
        for _ in range(count):
            n = await async_step(n)
        return n

    def run_sync(count: int, times: int) -> int:
        for _ in range(times):
            if sync_workflow(count) != count:
                raise AssertionError("wrong result")
        return count * times

    def start_sync(count: int, times: int) -> int:
        handles = [DBOS.start_workflow(sync_workflow, count) for _ in range(times)]
        if any(h.get_result() != count for h in handles):
            raise AssertionError("wrong result")
        return count * times

    async def start_async(count: int, times: int) -> int:
        handles = [await DBOS.start_workflow_async(async_workflow, count) for _ in range(times)]
        results = await asyncio.gather(*(h.get_result() for h in handles))
        if any(r != count for r in results):
            raise AssertionError("wrong result")
        return count * times

    async def run_async(count: int, times: int) -> int:
        for _ in range(times):
            if await async_workflow(count) != count:
                raise AssertionError("wrong result")
        return count * times

    steps, reps, workflows, k = spec["steps"], spec["reps"], spec["workflows"], spec["k"]
    DBOS.launch()
    loop = asyncio.new_event_loop()
    try:
        if spec["api"] == "sync":
            warm = lambda: run_sync(k, 5)  # noqa: E731
            return {
                "A": timed_runs(lambda: run_sync(steps, 1), reps, warm),
                "B": timed_runs(lambda: run_sync(k, workflows), reps, warm),
                "C": timed_runs(lambda: start_sync(k, spec["at_once"]), reps, warm),
            }
        warm = lambda: loop.run_until_complete(run_async(k, 5))  # noqa: E731
        return {
            "A": timed_runs(lambda: loop.run_until_complete(run_async(steps, 1)), reps, warm),
            "B": timed_runs(lambda: loop.run_until_complete(run_async(k, workflows)), reps, warm),
            "C": timed_runs(
                lambda: loop.run_until_complete(start_async(k, spec["at_once"])), reps, warm
            ),
        }
    finally:
        loop.close()
        DBOS.destroy()


def child(spec: dict[str, Any]) -> None:
    result = child_dbos(spec) if spec["engine"] == "dbos" else child_workflows4py(spec)
    sys.stdout.flush()
    print("RESULT " + json.dumps(result), flush=True)


# -- parent -----------------------------------------------------------------------------------


def run_child(spec: dict[str, Any]) -> dict[str, list[float]]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            result: dict[str, list[float]] = json.loads(line[7:])
            return result
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
    raise RuntimeError(f"{spec['label']} failed (exit {proc.returncode}):\n{tail}")


def dbos_available() -> str | None:
    """None if DBOS can be imported, else why not."""
    try:
        import dbos  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
    except ImportError as e:
        return (
            f"`import dbos` failed ({e}); install it with `.venv/bin/pip install -e '.[bench]'` "
            "(PyPI package `dbos`)"
        )
    return None


def dbos_version() -> str:
    from importlib.metadata import version

    return version("dbos")


def prepare(spec: dict[str, Any], data_dir: Path, dsn: str) -> None:
    """A fresh database for this child."""
    if spec["db"] == "sqlite":
        path = data_dir / f"vs_dbos_{spec['engine']}.sqlite"
        remove_sqlite(path)
        spec["path"] = str(path)
        spec["url"] = f"sqlite:///{path}"
        if spec.get("wal"):
            conn = sqlite3.connect(path)
            conn.execute("PRAGMA journal_mode = WAL")  # persistent: stored in the file
            conn.close()
    else:
        drop_schema(dsn, DBOS_SCHEMA if spec["engine"] == "dbos" else W4P_SCHEMA)
        spec["dsn"] = dsn
        spec["url"] = _sqlalchemy_url(dsn)


def cleanup(spec: dict[str, Any], dsn: str) -> None:
    if spec["db"] == "sqlite":
        remove_sqlite(Path(spec["path"]))
    else:
        drop_schema(dsn, DBOS_SCHEMA if spec["engine"] == "dbos" else W4P_SCHEMA)


def _sqlalchemy_url(dsn: str) -> str:
    """A postgresql:// URL (DBOS wants one) for a libpq DSN or URL."""
    if dsn.startswith(("postgresql://", "postgres://")):
        return "postgresql://" + dsn.split("://", 1)[1]
    from psycopg.conninfo import conninfo_to_dict

    p = conninfo_to_dict(dsn)
    auth = str(p.get("user", "postgres")) + (f":{p['password']}" if p.get("password") else "")
    return f"postgresql://{auth}@{p.get('host', 'localhost')}:{p.get('port', 5432)}/{p['dbname']}"


def variants(backends: list[str], have_dbos: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for db in backends:
        name = "SQLite" if db == "sqlite" else "PostgreSQL"
        out.append({"engine": "w4p", "db": db, "label": f"workflows4py, {name}"})
        if not have_dbos:
            continue
        for api in ("sync", "async"):
            out.append(
                {"engine": "dbos", "db": db, "api": api, "label": f"DBOS {api}, {name} default"}
            )
            if db == "sqlite":
                out.append(
                    {
                        "engine": "dbos",
                        "db": db,
                        "api": api,
                        "wal": True,
                        "label": f"DBOS {api}, SQLite in WAL mode",
                    }
                )
    return out


def main() -> None:  # noqa: PLR0915 - one linear report
    parser = base_parser(__doc__)
    parser.add_argument("--child", help=argparse_hidden())
    parser.add_argument("--steps", type=int, default=None, help="shape A steps (1000)")
    parser.add_argument("--workflows", type=int, default=None, help="shape B workflows (100)")
    parser.add_argument("--k", type=int, default=10, help="shape B and C steps per workflow (10)")
    parser.add_argument("--at-once", type=int, default=None, help="shape C workflows (500)")
    parser.add_argument("--reps", type=int, default=None, help="timed runs per engine (3)")
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    steps = args.steps or (200 if args.quick else 1000)
    workflows = args.workflows or (20 if args.quick else 100)
    at_once = args.at_once or (40 if args.quick else 500)
    reps = args.reps or (1 if args.quick else 3)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    require_real_disk(args.data_dir, args.allow_tmpfs)
    dsn = args.pg_dsn
    notes: list[str] = []
    if "postgres" in backends and (why := pg_reachable(dsn, wait=90)) is not None:
        notes.append(f"PostgreSQL skipped: unreachable at `{dsn}` ({why}).")
        backends.remove("postgres")
    missing = dbos_available()
    if missing is not None:
        notes.append(f"DBOS not measured: {missing}.")
    else:
        notes.append(f"DBOS Transact {dbos_version()} (PyPI `dbos`), no network used.")

    from step_overhead import raw_postgres, raw_sqlite

    raw_db = args.data_dir / "vs_dbos_raw.db"
    results: dict[str, dict[str, list[float]]] = {}
    raw: dict[str, float] = {}  # per variant: the database's raw append rate just before
    raw_all: dict[str, list[float]] = {}
    for spec in variants(backends, missing is None):
        spec.update(steps=steps, reps=reps, workflows=workflows, k=args.k, at_once=at_once)
        if spec["db"] == "sqlite":
            rates = [
                retrying(lambda: raw_sqlite(raw_db, steps, "FULL"), "raw SQLite") for _ in "123"
            ]
        else:
            rates = [
                retrying(lambda: raw_postgres(dsn, "bench_raw", steps), "raw PostgreSQL", dsn)
                for _ in "123"
            ]
        raw[spec["label"]] = Stat(tuple(rates)).median
        raw_all.setdefault(spec["db"], []).extend(rates)
        print(f"raw appends, {spec['db']}: {raw[spec['label']]:,.0f}/s", flush=True)

        def attempt(spec: dict[str, Any] = spec) -> dict[str, list[float]]:
            prepare(spec, args.data_dir, dsn)
            try:
                return run_child(spec)
            finally:
                cleanup(spec, dsn)

        try:
            results[spec["label"]] = retrying(attempt, spec["label"], dsn, attempts=3)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            print(f"{spec['label']}: {e}", flush=True)
            notes.append(f"{spec['label']} failed: `{str(e).splitlines()[0]}`")
            continue
        a, b, c = (Stat(tuple(results[spec["label"]][s])) for s in ("A", "B", "C"))
        print(f"{spec['label']}: A {a.fmt()}, B {b.fmt()}, C {c.fmt()} steps/s", flush=True)

    header = [
        "engine, database",
        f"A: 1 x {steps:,} steps, steps/s",
        "A vs raw appends",
        f"B: {workflows} x {args.k} steps, steps/s",
        "B vs raw appends",
        f"C: {at_once} x {args.k} steps at once, steps/s",
        "C vs raw appends",
    ]
    rows = []
    for label, res in results.items():
        a, b, c = Stat(tuple(res["A"])), Stat(tuple(res["B"])), Stat(tuple(res["C"]))
        rows.append(
            [
                f"**{label}**" if label.startswith("workflows4py") else label,
                a.fmt(),
                f"{a.median / raw[label]:.2f}",
                b.fmt(),
                f"{b.median / raw[label]:.2f}",
                c.fmt(),
                f"{c.median / raw[label]:.2f}",
            ]
        )
    summary_header = [
        "database",
        "shape",
        "workflows4py / DBOS as configured by default",
        "verdict",
        "workflows4py / fastest DBOS variant",
        "ceiling: raw appends / fastest DBOS",
    ]
    summary = []
    for db in backends:
        name = "SQLite" if db == "sqlite" else "PostgreSQL"
        ours = results.get(f"workflows4py, {name}")
        theirs = {k: v for k, v in results.items() if k.startswith("DBOS") and name in k}
        if ours is None or not theirs:
            continue
        for shape in ("A", "B", "C"):
            medians = {k: Stat(tuple(v[shape])).median for k, v in theirs.items()}
            default = {k: m for k, m in medians.items() if "default" in k}
            best_default = max(default, key=default.__getitem__)
            fastest = max(medians, key=medians.__getitem__)
            mine = Stat(tuple(ours[shape])).median
            ratio = mine / default[best_default]
            summary.append(
                [
                    name,
                    shape,
                    f"{ratio:.1f}x ({best_default.removeprefix('DBOS ')})",
                    f"{verdict(ratio, TARGET)} (>= {TARGET:.0f}x)",
                    f"{mine / medians[fastest]:.1f}x ({fastest.removeprefix('DBOS ')})",
                    f"{raw[fastest] / medians[fastest]:.1f}x",
                ]
            )
    print()
    print(text_table(header, rows))
    print()
    print(text_table(summary_header, summary))
    for line in notes:
        print(line)
    if args.no_write:
        return
    raw_line = (
        "`vs raw appends`: relative to the database's raw append rate (one INSERT + COMMIT "
        "per row, as in step_overhead.py), measured 3 times just before each engine ran. "
        "Raw appends over the whole run: "
        + ", ".join(
            f"{'SQLite' if db == 'sqlite' else 'PostgreSQL'} {Stat(tuple(v)).fmt()}/s"
            for db, v in raw_all.items()
        )
        + "."
    )
    body = "\n\n".join(
        [
            "## vs_dbos.py: workflows4py against DBOS Transact",
            f"Run: {command_line()}; {reps} timed runs per engine after a warm-up, each engine "
            "in a fresh process on a fresh database.",
            facts_table(machine_facts(args.data_dir, dsn if "postgres" in backends else None)),
            markdown_table(summary_header, summary) if summary else "No ratio: see notes.",
            markdown_table(header, rows),
            raw_line,
            *notes,
            *retry_note(),
        ]
    )
    write_section("vs_dbos", body)


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
