"""The cost of the observer hooks: step throughput (steps per CPU second) of one in-memory
instance running N trivial ``run_io`` steps (``LoopSteps``), with and without observers, as
ratios measured in the same run.

Each figure is measured in a fresh subprocess (so that every variant imports its own copy
of the library), the variants interleaved repetition by repetition, and each ratio paired
within a repetition:

- **before hooks**: the library as of the commit before the hooks landed (5c3adab), and
  **at the hooks' commit** (9a68c4d), both exported with ``git archive``: between the two,
  only the hooks changed, so their ratio is the hooks' cost with no observer attached;
- **today**: the working tree with no observer, with a do-nothing ``Observer()`` (the cost
  of calling every hook), and with ``OpenTelemetryObserver`` over the SDK's providers
  (an in-memory span exporter behind a ``SimpleSpanProcessor``, an in-memory metric
  reader).

Target: no observer within 3% of before hooks (ratio >= 0.97).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import (
    HERE,
    ROOT,
    Stat,
    base_parser,
    command_line,
    facts_table,
    machine_facts,
    markdown_table,
    ratio_stat,
    text_table,
    verdict,
    write_section,
)

BEFORE_HOOKS = "5c3adab"
HOOKS = "9a68c4d"
TARGET = 0.97

# Run in a subprocess: prints the steps per CPU second of the best of ``runs`` runs after a
# warm-up (the least disturbed one, as timeit takes the minimum). CPU time, the process's own
# and not the wall clock: one instance in memory never waits, so its CPU time is its cost,
# and other work on the machine barely moves it.
MEASURE = """
import asyncio, json, sys, time
src, bench, variant = sys.argv[1], sys.argv[2], sys.argv[4]
steps, runs = int(sys.argv[3]), int(sys.argv[5])
sys.path[:0] = [src, bench]
from _common import Counter, LoopSteps
from workflows4py import InMemoryRuntime

def observers():
    if variant == "none":
        return {}
    from workflows4py import Observer
    if variant == "null":
        return {"observers": [Observer()]}
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from workflows4py.contrib.otel import OpenTelemetryObserver
    tracer = TracerProvider()
    tracer.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    meter = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return {"observers": [OpenTelemetryObserver(tracer, meter)]}

async def once(n):
    runtime = InMemoryRuntime(LoopSteps, initial_state=Counter(0, n), **observers())
    began = time.process_time()
    await runtime.create_instance("a")
    return n / (time.process_time() - began)

asyncio.run(once(min(steps, 200)))
print(json.dumps(max(asyncio.run(once(steps)) for _ in range(runs))))
"""

# label, source tree (None: the working tree), variant
VARIANTS: list[tuple[str, str | None, str]] = [
    ("before hooks", BEFORE_HOOKS, "none"),
    ("hooks' commit, no observer", HOOKS, "none"),
    ("today, no observer", None, "none"),
    ("today, Observer() (every hook a no-op)", None, "null"),
    ("today, OpenTelemetryObserver", None, "otel"),
]


def export_tree(commit: str, into: Path) -> Path | None:
    """``src`` and ``benchmarks`` of ``commit`` under ``into``; None without git."""
    target = into / commit
    target.mkdir()
    try:
        archive = subprocess.run(
            ["git", "archive", commit, "src", "benchmarks"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"  ({commit} not measured: {e})")
        return None
    return target


def measure(tree: Path, steps: int, variant: str, runs: int) -> float:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            MEASURE,
            str(tree / "src"),
            str(tree / "benchmarks"),
            str(steps),
            variant,
            str(runs),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{variant} in {tree}: {done.stderr[-2000:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--steps", type=int, default=2000, help="steps per instance")
    parser.add_argument("--repeat", type=int, default=7, help="repetitions")
    args = parser.parse_args()
    steps, repeat, runs = (200, 2, 1) if args.quick else (args.steps, args.repeat, 5)
    rates: dict[str, list[float]] = {label: [] for label, _, _ in VARIANTS}
    with tempfile.TemporaryDirectory(dir=HERE) as scratch:
        trees: dict[str | None, Path | None] = {None: ROOT}
        for exported in {c for _, c, _ in VARIANTS if c is not None}:
            trees[exported] = export_tree(exported, Path(scratch))
        for rep in range(repeat):
            for label, commit, variant in VARIANTS:
                tree = trees[commit]
                if tree is not None:
                    rates[label].append(measure(tree, steps, variant, runs))
            print(f"  repetition {rep + 1}/{repeat} done")
    baseline = "today, no observer"
    rows = [
        [label, Stat(tuple(values)).fmt(0, " steps/CPU-s")]
        for label, values in rates.items()
        if values
    ]
    pairs = [
        (
            "hooks' commit / before hooks (no observer)",
            "hooks' commit, no observer",
            "before hooks",
        ),
        ("Observer() / no observer (today)", "today, Observer() (every hook a no-op)", baseline),
        ("OpenTelemetryObserver / no observer (today)", "today, OpenTelemetryObserver", baseline),
    ]
    ratio_rows = [
        [
            name,
            f"{ratio_stat(rates[a], rates[b]).median:.3f}",
            f"{ratio_stat(rates[a], rates[b]).spread * 100:.0f}%",
        ]
        for name, a, b in pairs
        if rates[a] and rates[b]
    ]
    hooks_ratio = (
        ratio_stat(rates[pairs[0][1]], rates[pairs[0][2]]) if rates["before hooks"] else None
    )
    print()
    print(text_table(["variant", "throughput (median ±half IQR [min to max])"], rows))
    print()
    print(text_table(["ratio", "median", "±half IQR"], ratio_rows))
    if hooks_ratio is not None:
        print(f"\nno observer vs before hooks: {hooks_ratio.median:.3f} (target >= {TARGET})")
    if args.no_write:
        return
    target_line = (
        f"Target: the hooks with no observer within 3% of before hooks (ratio >= {TARGET}): "
        f"{hooks_ratio.median:.3f}, {verdict(hooks_ratio.median, TARGET)}."
        if hooks_ratio is not None
        else "Before hooks: not measured (no git)."
    )
    body = "\n\n".join(
        [
            "## Observer hooks: step throughput with and without observers",
            f"Measured with {command_line()}: one in-memory instance running {steps} trivial "
            f"steps, {repeat} repetitions, each figure the best of {runs} runs in a fresh "
            "subprocess, in steps per second of the process's CPU time (the instance never "
            "waits, so that is its cost, and other work on the machine barely moves it); "
            "the variants interleaved, ratios paired per repetition. Before "
            f"hooks is the library at {BEFORE_HOOKS}, the hooks' commit {HOOKS} (only the "
            "hooks differ between them); today is the working tree.",
            markdown_table(["variant", "throughput (median ±half IQR [min to max])"], rows),
            markdown_table(["ratio", "median", "±half IQR"], ratio_rows),
            target_line,
            facts_table(machine_facts(None, None)),
        ]
    )
    write_section("hooks", body)


if __name__ == "__main__":
    main()
