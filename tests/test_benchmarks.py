"""The benchmark scripts still run: each one's ``--quick --no-write`` smoke run, in a real
subprocess, finishes in time and prints its summary. (The figures themselves are measured on
demand and recorded in benchmarks/RESULTS.md; here only that the scripts work is checked,
so that a change to the library cannot leave them broken or looping.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pg import require_postgres

ROOT = Path(__file__).resolve().parent.parent


def run_script(name: str, *extra: str, timeout: float = 240) -> str:
    dsn = require_postgres()
    env = {**os.environ, "WORKFLOWS4PY_PG_DSN": dsn}
    command = [sys.executable, f"benchmarks/{name}.py", "--quick", "--no-write", *extra]
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    return output


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("step_overhead", ["workflows4py / raw appends", "SQLite", "PostgreSQL"]),
        ("replay", ["engine: restore_instance", "load from a snapshot"]),
        (
            "throughput",
            ["trivial steps: 2 workers / 1", "steps computing 1 ms each: 2 workers / 1"],
        ),
        ("vs_dbos", ["workflows4py, SQLite", "workflows4py, PostgreSQL"]),
        ("many_workflows", ["20 types / 1 type", "pooled <= max_connections (10)"]),
        ("codec", ["nested tagged union: encode", "new / old"]),
        ("group_commit", ["steps/s vs pgbench", "one instance at a time, group commit on / off"]),
    ],
)
def test_benchmark_script_runs(script: str, expected: list[str]) -> None:
    output = run_script(script)
    for text in expected:
        assert text in output, output[-3000:]
