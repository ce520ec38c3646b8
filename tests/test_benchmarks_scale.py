"""``benchmarks/scale.py`` still runs: its ``--quick --no-write`` smoke run (small sizes), in
a real subprocess, finishes in time and prints a row for each case on both databases. (The
figures at a million instances are measured on demand and recorded in
benchmarks/RESULTS.md.)"""

from __future__ import annotations

from test_benchmarks import run_script


def test_scale_script_runs_each_case_on_both_databases() -> None:
    output = run_script("scale", timeout=300)
    for case in (
        "drain: rate at 2,000 due / at 100 due",
        "create: rate with 2,000 stored / empty",
        "search at 2,000: slowest page (count_limit=0)",
        "list ids: iter_instance_ids over 2,000",
        "status = awaiting (10%), first page",
        "tag tenant = t042 (1%), first page",
        "updated in one day",
        "created in one day",
        "all, by creation, after the 1,000th",
        "status = awaiting, after the 100th match",
        "all, by creation, offset 1,000 (for contrast)",
    ):
        for database in ("SQLite", "PostgreSQL"):
            assert any(case in line and database in line for line in output.splitlines()), (
                f"{case} on {database}:\n{output[-3000:]}"
            )
