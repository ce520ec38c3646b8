"""The demo run by ``./scripts/demo``.

1. The pull-request workflow on SQLite, the embedded default, surviving a process restart:
   a first process creates a PR (its CI pipeline runs) and exits; a second process opens
   the same database file, finds the PR where the first one left it, without running the
   pipeline again, and carries it on to the end.
2. The pull-request outcomes in memory (rejected, unknown commit, merged) and recovery from a
   journal.
3. The withdrawal workflow with its checks engine, scenario by scenario, on a test clock.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import os
import subprocess
import tempfile

from examples import pull_request as pr
from examples import withdrawal
from workflows4py import SqliteRuntime


def pr_runtime(db: str) -> SqliteRuntime[pr.PRState, pr.PREvent]:
    return SqliteRuntime(pr.PullRequest, db, initial_state=pr.Empty())


async def first_process(db: str) -> None:
    async with pr_runtime(db) as runtime:
        instance = await runtime.create_instance("pr-42")
        await instance.deliver_signal(pr.create_pr_signal, pr.CreateRequest(commit="some-sha"))
        print(f"  [pid {os.getpid()}] created pr-42: {await instance.query_state()}")
        print(f"  [pid {os.getpid()}] CI pipeline runs in this process: {pr.CI.calls}")


async def second_process(db: str) -> None:
    async with pr_runtime(db) as runtime:
        instance = await runtime.get_instance("pr-42")
        print(f"  [pid {os.getpid()}] reopened pr-42: {await instance.query_state()}")
        await instance.deliver_signal(pr.review_pr_signal, pr.ReviewRequest(approve=True))
        print(f"  [pid {os.getpid()}] after review: {await instance.query_state()}")
        print(f"  [pid {os.getpid()}] status: {await instance.status()}")
        print(f"  [pid {os.getpid()}] CI pipeline runs in this process: {pr.CI.calls}")
        print("  journal in the database file:")
        for entry in await instance.get_journal():
            print(f"    #{entry.sequence} {entry.type} {entry.data}")


async def sqlite_restart_demo(db: str) -> None:
    print(f"== 1. Pull request on SQLite ({db}), across a process restart")
    subprocess.run(
        [sys.executable, __file__, "--phase", "first", "--db", db],
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    print("  the first process has exited; a new one takes over:")
    await second_process(db)


async def main(db: str | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        await sqlite_restart_demo(db or os.path.join(tmp, "demo.db"))
    print("\n== 2. Pull-request outcomes, in memory\n")
    await pr.main()
    print("\n== 3. Withdrawals with a checks engine, on a test clock\n")
    await withdrawal.main()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", help="SQLite file for part 1 (default: a temporary file)")
    parser.add_argument("--phase", choices=["first"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "first":
        asyncio.run(first_process(args.db))
    else:
        asyncio.run(main(args.db))
