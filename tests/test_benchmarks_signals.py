"""benchmarks/signals.py still runs: its ``--quick --no-write`` smoke run answers every signal
on PostgreSQL and SQLite (at 200/s and at 100/s), prints the latency table against the raw
append baseline, the ratios, and what a signal costs in store calls and SQL statements. Its
open-loop sender and its percentiles are checked in-process."""

from __future__ import annotations

import importlib.util
import re
import sys
import time
from pathlib import Path
from typing import Any

from test_benchmarks import run_script

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

ROW = re.compile(
    r"^(?P<label>baseline: raw append|signal round trip)[^\n]*?\s{2,}"
    r"(?P<target>[\d,]+)\s{2,}(?P<achieved>[\d,.]+)\s{2,}(?P<p50>[\d,.]+)\s{2,}"
    r"(?P<p90>[\d,.]+)\s{2,}(?P<p99>[\d,.]+)\s{2,}(?P<max>[\d,.]+)\s{2,}"
    r"(?P<errors>\d+) of (?P<planned>[\d,]+)$",
    re.M,
)
COST = re.compile(r"^(?P<db>PostgreSQL|SQLite)[^\n]*?store calls per signal\s+(?P<n>[\d.]+):", re.M)
STATEMENTS = re.compile(r"^PostgreSQL\s+SQL statements per signal\s+(?P<n>[\d.]+):", re.M)
TRIPS = re.compile(r"^PostgreSQL\s+round trips per signal\s+(?P<n>[\d.]+):", re.M)


def number(text: str) -> float:
    return float(text.replace(",", ""))


def load_script() -> Any:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("bench_signals", BENCHMARKS / "signals.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_signals"] = module
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_the_signals_benchmark_runs() -> None:
    output = run_script("signals")
    for text in (
        "p50 signal / p50 raw append",
        "p99 signal / p99 raw append",
        "PostgreSQL",
        "SQLite (WAL, synchronous=FULL)",
        "after its scheduled send time",
    ):
        assert text in output, output[-3000:]
    rows = list(ROW.finditer(output))
    # each database: the target rate, then the light rate, each a baseline and the signals
    assert [r["label"] for r in rows] == ["baseline: raw append", "signal round trip"] * 4, output
    assert [number(r["target"]) for r in rows[::2]] == [200, 100, 200, 100], output
    for row in rows:
        assert int(row["errors"]) == 0, row.group(0)
        assert number(row["planned"]) > 0
        p50, p90, p99, top = (number(row[k]) for k in ("p50", "p90", "p99", "max"))
        assert 0 < p50 <= p90 <= p99 <= top, row.group(0)
        assert number(row["achieved"]) > 0
    # a signal takes the lease, writes its event and gives the lease back: >= 3 store calls
    costs = {m["db"]: float(m["n"]) for m in COST.finditer(output)}
    assert set(costs) == {"PostgreSQL", "SQLite"}, output[-3000:]
    assert all(n >= 3 for n in costs.values()), costs
    statements = STATEMENTS.search(output)
    assert statements is not None, output[-3000:]
    assert float(statements["n"]) >= 3
    trips = TRIPS.search(output)
    assert trips is not None, output[-3000:]
    # at most one round trip per statement (a pipeline carries several); both are divided by
    # the signals answered in the window, so an operation cut by the window's edge can tip
    # one over the other by a hundredth
    assert 0 < float(trips["n"]) <= float(statements["n"]) + 0.02


def test_the_sender_keeps_its_schedule_when_a_send_is_slow() -> None:
    """Open loop: each send goes at its own absolute time; one slow send delays the ones due
    meanwhile (they go at once after it), never the schedule after them."""
    bench = load_script()
    sent: list[tuple[int, float, float]] = []

    def send(i: int, at: float) -> None:
        sent.append((i, at, time.perf_counter()))
        if i == 1:
            time.sleep(0.05)  # spans the next five send times

    start = time.perf_counter() + 0.01
    bench.schedule(20, 100.0, start, send)
    assert [i for i, _, _ in sent] == list(range(20))
    assert all(abs(at - (start + i / 100)) < 1e-9 for i, at, _ in sent)
    assert all(actual >= at - 1e-4 for _, at, actual in sent)
    # the sends due during the slow one went right after it, not 10 ms apart
    after = [actual for i, _, actual in sent if 2 <= i <= 6]
    assert after[-1] - after[0] < 0.02
    # and later ones were back on their own times
    _, at, actual = sent[-1]
    assert actual - at < 0.03


def test_percentile_is_nearest_rank() -> None:
    bench = load_script()
    values = [float(v) for v in range(1, 101)]
    assert bench.percentile(values, 50) == 50
    assert bench.percentile(values, 99) == 99
    assert bench.percentile(values, 100) == 100
    assert bench.percentile([3.0], 99) == 3.0
