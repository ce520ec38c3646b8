"""Shared pieces of the benchmarks: the benchmark workflows, machine facts, statistics,
tables, and the RESULTS.md writer.

Run the scripts from the repository root, e.g. ``.venv/bin/python benchmarks/replay.py``;
this folder is then on ``sys.path`` and the scripts import this module as ``_common``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import os
import platform
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from workflows4py import WIO, Workflow

T = TypeVar("T")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "RESULTS.md"
DEFAULT_DATA_DIR = HERE / ".data"
DEFAULT_PG_DSN = os.environ.get("WORKFLOWS4PY_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")

# -- the benchmark workflow ---------------------------------------------------------------
#
# One trivial effect, repeated: the effect returns Stepped(n + 1), the handler makes it the
# new state. The loop stops when the counter reaches the target carried by the state, so
# one workflow class serves every length. Module-level classes, so snapshots can name them.


@dataclass(frozen=True)
class Counter:
    n: int
    target: int


@dataclass(frozen=True)
class Stepped:
    n: int


async def trivial_step(state: Counter) -> Stepped:
    return Stepped(state.n + 1)


def count(state: Counter, event: Stepped) -> Counter:
    return Counter(event.n, state.target)


def one_step() -> WIO[Counter, Any, Counter]:
    return WIO.run_io(Counter, trivial_step).handle_event(count)


def reached(state: Counter) -> bool:
    return state.n >= state.target


class LoopSteps(Workflow[Counter, Stepped]):
    """``repeat(step).until(n >= target)``: as many steps as the initial state's target."""

    name = "bench-loop"
    definition = WIO.repeat(one_step()).until(reached)


def chain_workflow(steps: int) -> type[Workflow[Counter, Stepped]]:
    """A workflow of ``steps`` copies of the step joined with ``>>`` (left-nested, as a
    loop ``d = d >> step`` or a literal ``a >> b >> c`` builds it)."""
    step = one_step()
    definition: WIO[Counter, Any, Counter] = step
    for _ in range(steps - 1):
        definition = definition >> step

    class ChainSteps(Workflow[Counter, Stepped]):
        name = f"bench-chain-{steps}"

    ChainSteps.definition = definition
    return ChainSteps


def payload(n: int) -> tuple[str, str]:
    """The journal payload (type tag, JSON) the runtime writes for step ``n``."""
    tag, data = LoopSteps.codecs().events.encode(Stepped(n))
    return tag, data


# -- arguments --------------------------------------------------------------------------------


def base_parser(description: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a short run (smoke test)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="where SQLite files go (must be a real disk, not tmpfs; default: %(default)s)",
    )
    parser.add_argument(
        "--allow-tmpfs", action="store_true", help="accept a --data-dir on tmpfs/ramfs"
    )
    parser.add_argument(
        "--pg-dsn", default=DEFAULT_PG_DSN, help="PostgreSQL (default: %(default)s)"
    )
    parser.add_argument(
        "--no-write", action="store_true", help="print only; leave RESULTS.md unchanged"
    )
    return parser


# -- machine facts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Mount:
    device: str
    mountpoint: str
    fstype: str
    options: str


def mount_of(path: Path) -> Mount | None:
    """The mount holding ``path`` (longest mount-point prefix in /proc/self/mounts)."""
    target = str(path.resolve())
    best: Mount | None = None
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) < 4:
            continue
        device, mountpoint, fstype, options = parts[:4]
        mountpoint = mountpoint.replace("\\040", " ")
        inside = target == mountpoint or target.startswith(mountpoint.rstrip("/") + "/")
        if inside and (best is None or len(mountpoint) >= len(best.mountpoint)):
            best = Mount(device, mountpoint, fstype, options)
    return best


def _rotational(device: str) -> str:
    name = Path(device).name
    for candidate in (name, re.sub(r"p?\d+$", "", name)):
        flag = Path(f"/sys/block/{candidate}/queue/rotational")
        if flag.exists():
            rotational = flag.read_text().strip() == "1"
            return "kernel flag: rotational" if rotational else "kernel flag: non-rotational"
    return "rotational: unknown"


def describe_disk(path: Path) -> str:
    m = mount_of(path)
    if m is None:
        return f"{path}: unknown filesystem"
    probe = path if path.exists() else m.mountpoint
    usage = shutil.disk_usage(probe)
    opts = ",".join(o for o in m.options.split(",") if o in ("relatime", "noatime", "sync", "ro"))
    return (
        f"`{path}` on {m.device} ({m.fstype}, {_rotational(m.device)}, mounted at "
        f"{m.mountpoint}{', ' + opts if opts else ''}; {usage.free / 2**30:.0f} GiB free)"
    )


def require_real_disk(path: Path, allow_tmpfs: bool) -> None:
    """Refuse a data directory on a RAM filesystem: fsync would cost nothing there."""
    path.mkdir(parents=True, exist_ok=True)
    m = mount_of(path)
    if m is not None and m.fstype in ("tmpfs", "ramfs") and not allow_tmpfs:
        raise SystemExit(
            f"{path} is on {m.fstype}; durable-write figures need a real disk "
            "(pass --data-dir on one, or --allow-tmpfs to measure anyway)"
        )


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _hypervisor() -> str:
    try:
        out = subprocess.run(
            ["lscpu"], check=False, capture_output=True, text=True, timeout=5
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    for line in out.splitlines():
        if line.startswith("Hypervisor vendor:"):
            return f", VM ({line.split(':', 1)[1].strip()})"
    return ""


def _source_revision() -> str:
    """The checked-out branch and commit (``git rev-parse``; in a worktree ``.git`` is a
    file, not a directory), with ``+changes`` when the tree differs from it (best effort)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True, timeout=10
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        branch = git("rev-parse", "--abbrev-ref", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    where = commit if branch in ("", "HEAD") else f"{branch} @ {commit}"
    return f"{where}{' +changes' if dirty else ''}"


def postgres_facts(dsn: str) -> list[tuple[str, str]]:
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict

    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:

            def show(name: str) -> str:
                row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
                return str(row[0]) if row else "?"

            version_row = conn.execute("SELECT version()").fetchone()
            version = str(version_row[0]).split(" on ")[0] if version_row else "?"
            settings = ", ".join(
                f"{name}={show(name)}"
                for name in (
                    "synchronous_commit",
                    "fsync",
                    "wal_sync_method",
                    "full_page_writes",
                    "shared_buffers",
                )
            )
            try:
                data_dir = show("data_directory")
            except psycopg.Error:
                data_dir = ""
    except psycopg.Error as e:
        return [("PostgreSQL", f"unreachable ({str(e).strip()})")]
    host = conninfo_to_dict(dsn).get("host", "")
    local = host in ("", "127.0.0.1", "localhost", "::1") or str(host).startswith("/")
    if data_dir and local and Path(data_dir).exists():
        disk = describe_disk(Path(data_dir))
    else:
        disk = f"data directory {data_dir or '?'} (not inspected: server not local)"
    return [
        ("PostgreSQL", f"{version}; {settings}"),
        ("PostgreSQL data", disk),
    ]


def machine_facts(data_dir: Path | None, pg_dsn: str | None) -> list[tuple[str, str]]:
    import workflows4py

    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f", {int(line.split()[1]) / 2**20:.0f} GiB RAM"
    facts = [
        ("Date", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("CPU", f"{cpu_model()}, {cores} cores ({usable} usable){mem}{_hypervisor()}"),
        ("OS", f"{platform.system()} {platform.release()}"),
        (
            "Python",
            f"{platform.python_implementation()} {platform.python_version()} "
            f"(workflows4py {getattr(workflows4py, '__version__', _dist_version())}, "
            f"source {_source_revision()})",
        ),
        ("SQLite", sqlite3.sqlite_version),
        ("Load", _load()),
    ]
    if data_dir is not None:
        facts.append(("SQLite files", describe_disk(data_dir)))
    if pg_dsn is not None:
        facts.extend(postgres_facts(pg_dsn))
    return facts


def _load() -> str:
    """Load average, and other processes using CPU: the machine may be shared."""
    one, five, _ = os.getloadavg()
    busy: list[str] = []
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["ps", "-eo", "pcpu=,pid=,args=", "--sort=-pcpu"],
            check=False,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout
        for line in out.splitlines()[:8]:
            parts = line.split(None, 2)
            if len(parts) == 3 and float(parts[0]) >= 20 and int(parts[1]) != os.getpid():
                busy.append(f"`{parts[2][:70]}` {float(parts[0]):.0f}%")
    others = f"; busy when the results were written: {', '.join(busy)}" if busy else ""
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min){others}"


def _dist_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("workflows4py")
    except PackageNotFoundError:
        return "?"


# -- statistics and tables --------------------------------------------------------------------


@dataclass(frozen=True)
class Stat:
    """Repeated measurements of one figure."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def quartiles(self) -> tuple[float, float]:
        if len(self.values) < 2:
            return self.median, self.median
        q1, _, q3 = statistics.quantiles(self.values, n=4, method="inclusive")
        return q1, q3

    @property
    def spread(self) -> float:
        """Half the interquartile range, relative to the median (0.05 = ±5%): robust to a
        repetition disturbed by another process, unlike the range."""
        if len(self.values) < 2 or self.median == 0:
            return 0.0
        q1, q3 = self.quartiles
        return (q3 - q1) / 2 / self.median

    def fmt(self, digits: int = 0, unit: str = "") -> str:
        if not self.values:
            return "n/a"
        med = f"{self.median:,.{digits}f}{unit}"
        if len(self.values) < 2:
            return med
        lo, hi = min(self.values), max(self.values)
        return f"{med} ±{self.spread * 100:.0f}% [{lo:,.{digits}f} to {hi:,.{digits}f}]"


def ratio_stat(num: Sequence[float], den: Sequence[float]) -> Stat:
    """Paired ratios (same repetition), so drift between repetitions cancels."""
    return Stat(tuple(a / b for a, b in zip(num, den, strict=True) if b))


def verdict(value: float, target: float) -> str:
    return "**met**" if value >= target else "**not met**"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines)


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def plain(s: str) -> str:
        return s.replace("**", "").replace("`", "")

    cells = [[plain(c) for c in header], *[[plain(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    out = []
    for n, r in enumerate(cells):
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def facts_table(facts: Sequence[tuple[str, str]]) -> str:
    return markdown_table(["", ""], [[f"**{k}**", v] for k, v in facts])


# -- RESULTS.md -------------------------------------------------------------------------------

_HEADER = """# Benchmark results

Written by the scripts in this folder (see README.md): each script replaces its own section
(between its BEGIN/END markers) and leaves the rest of this file alone. Every figure is a
ratio against a baseline measured in the same run on the same database. Figures are
medians of the repetitions, written `median ±s% [min to max]`, where s is half the
interquartile range relative to the median.
"""


SECTIONS = (
    "step_overhead",
    "vs_dbos",
    "replay",
    "throughput",
    "group_commit",
    "signals",
    "scale",
    "many_workflows",
    "analysis",
)


def write_section(name: str, body: str) -> None:
    """Replace the section ``name`` of RESULTS.md, or insert it in SECTIONS order."""
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    lock_path = HERE / ".results.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        text = RESULTS.read_text() if RESULTS.exists() else _HEADER
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
        later = SECTIONS[SECTIONS.index(name) + 1 :] if name in SECTIONS else ()
        following = [text.index(m) for n in later if (m := f"<!-- BEGIN {n} -->") in text]
        if pattern.search(text):
            text = pattern.sub(lambda _: block, text)
        elif following:
            at = min(following)
            text = text[:at] + block + "\n\n" + text[at:]
        else:
            text = text.rstrip() + "\n\n" + block + "\n"
        RESULTS.write_text(text if text.endswith("\n") else text + "\n")
    with contextlib.suppress(OSError):
        lock_path.unlink()
    print(f"\nwrote section {name!r} of {RESULTS.relative_to(ROOT)}")


def command_line() -> str:
    args = " ".join(sys.argv[1:])
    script = Path(sys.argv[0]).name
    return f"`python benchmarks/{script}{' ' + args if args else ''}`"


# -- files and schemas ------------------------------------------------------------------------


def remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            Path(str(path) + suffix).unlink()


@contextlib.contextmanager
def sqlite_file(data_dir: Path, name: str) -> Iterator[Path]:
    path = data_dir / name
    remove_sqlite(path)
    try:
        yield path
    finally:
        remove_sqlite(path)


def drop_schema(dsn: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def pg_reachable(dsn: str, wait: float = 0.0) -> str | None:
    """None if PostgreSQL answers at ``dsn`` (within ``wait`` seconds), else why not."""
    import time

    import psycopg

    deadline = time.monotonic() + wait
    while True:
        try:
            with psycopg.connect(dsn, connect_timeout=5) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as e:
            if time.monotonic() >= deadline:
                return str(e).strip()
            time.sleep(1)
        else:
            return None


def runtime_options(**wanted: Any) -> dict[str, Any]:
    """The subset of ``wanted`` that DurableRuntime accepts in this version of the source
    (e.g. ``snapshot_every`` only exists once snapshots do)."""
    import inspect

    from workflows4py import DurableRuntime

    accepted = inspect.signature(DurableRuntime.__init__).parameters
    return {k: v for k, v in wanted.items() if k in accepted}


# -- the throughput workflow ------------------------------------------------------------------
#
# A timer to an absolute instant shared by every instance (``BENCH_START_AT``, ISO 8601, read
# when the timer starts, i.e. only in the process creating the instances), then the loop of
# trivial steps. Created instances wait; at that instant every one of them is due at once and
# the workers run them: the creating process runs none of the steps.


def start_at(_: Counter) -> dt.datetime:
    return dt.datetime.fromisoformat(os.environ["BENCH_START_AT"])


class TimedSteps(Workflow[Counter, Stepped]):
    """Wait until ``BENCH_START_AT``, then ``repeat(step).until(n >= target)``."""

    name = "bench-timed"
    definition = WIO.timer(start_at, input=Counter) >> WIO.repeat(one_step()).until(reached)


def busy(ms: float) -> None:
    """Spend ``ms`` milliseconds of this process's CPU time (a step's own computation)."""
    import time

    until = time.thread_time() + ms / 1000
    while time.thread_time() < until:
        pass


async def busy_step(state: Counter) -> Stepped:
    busy(float(os.environ["BENCH_STEP_CPU_MS"]))
    return Stepped(state.n + 1)


class TimedBusySteps(Workflow[Counter, Stepped]):
    """``TimedSteps`` whose every step first computes for ``BENCH_STEP_CPU_MS`` ms of CPU
    (read by the process running the step): work that needs the worker's core, not the
    database."""

    name = "bench-timed-busy"
    definition = WIO.timer(start_at, input=Counter) >> WIO.repeat(
        WIO.run_io(Counter, busy_step).handle_event(count)
    ).until(reached)


# -- resilience -------------------------------------------------------------------------------
#
# The machine may be shared: another process may restart PostgreSQL or hold the disk busy
# while a benchmark runs. A measurement that fails is retried (a few times, after the
# database answers again), and the retries are reported with the results.

RETRIED: list[str] = []


def retrying(fn: Callable[[], T], label: str, dsn: str | None = None, attempts: int = 4) -> T:
    """``fn()``, retried after an error (waiting for PostgreSQL at ``dsn`` to answer)."""
    import time

    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as e:
            if attempt == attempts:
                raise
            why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            RETRIED.append(f"{label}: {type(e).__name__}: {why[:120]}")
            print(f"  {label} failed ({type(e).__name__}: {why[:120]}); retrying", flush=True)
            deadline = time.monotonic() + 60
            while dsn is not None and pg_reachable(dsn) is not None:
                if time.monotonic() > deadline:
                    break
                time.sleep(1)
            time.sleep(1)
    raise AssertionError("unreachable")


def retry_note() -> list[str]:
    if not RETRIED:
        return []
    shown = "; ".join(f"`{r}`" for r in RETRIED[:5])
    more = f" and {len(RETRIED) - 5} more" if len(RETRIED) > 5 else ""
    return [
        f"{len(RETRIED)} measurement(s) failed and were repeated (the database was restarted "
        f"or unavailable meanwhile): {shown}{more}."
    ]
