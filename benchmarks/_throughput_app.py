"""The runtime the throughput benchmark's worker processes drive:
``python -m workflows4py worker _throughput_app:runtime`` with this folder on PYTHONPATH and
``BENCH_PG_DSN``, ``BENCH_SCHEMA`` and ``BENCH_STEPS`` set by throughput.py."""

from __future__ import annotations

import os

from _common import Counter, Stepped, TimedSteps

from workflows4py import PostgresRuntime


def runtime() -> PostgresRuntime[Counter, Stepped]:
    return PostgresRuntime(
        TimedSteps,
        os.environ["BENCH_PG_DSN"],
        initial_state=Counter(0, int(os.environ["BENCH_STEPS"])),
        schema=os.environ["BENCH_SCHEMA"],
    )
