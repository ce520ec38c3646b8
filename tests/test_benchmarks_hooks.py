"""benchmarks/hooks.py still runs: its ``--quick --no-write`` smoke run measures every
variant (before hooks, the hooks' commit, today without and with observers) and prints the
ratios."""

from __future__ import annotations

from test_benchmarks import run_script


def test_the_hooks_benchmark_runs() -> None:
    output = run_script("hooks")
    for text in (
        "hooks' commit / before hooks (no observer)",
        "Observer() / no observer (today)",
        "OpenTelemetryObserver / no observer (today)",
        "no observer vs before hooks:",
    ):
        assert text in output, output[-3000:]
