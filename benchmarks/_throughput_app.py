"""The runtime the throughput benchmark's worker processes drive:
``python -m workflows4py worker _throughput_app:runtime`` with this folder on PYTHONPATH and
``BENCH_PG_DSN``, ``BENCH_SCHEMA`` and ``BENCH_STEPS`` set by throughput.py; with
``BENCH_STEP_CPU_MS`` above 0, each step also computes for that long (``TimedBusySteps``)."""

from __future__ import annotations

import os

from _common import Counter, Stepped, TimedBusySteps, TimedSteps

from workflows4py import PostgresRuntime


def runtime() -> PostgresRuntime[Counter, Stepped]:
    busy = float(os.environ.get("BENCH_STEP_CPU_MS", "0")) > 0
    return PostgresRuntime(
        TimedBusySteps if busy else TimedSteps,
        os.environ["BENCH_PG_DSN"],
        initial_state=Counter(0, int(os.environ["BENCH_STEPS"])),
        schema=os.environ["BENCH_SCHEMA"],
    )
