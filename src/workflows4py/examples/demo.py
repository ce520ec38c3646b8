"""The demo run by ``./scripts/demo``.

1. Two workflows, the pull request and the withdrawal, in one runtime on one SQLite file
   (the embedded default), surviving a process restart: a first process starts a PR (its CI
   pipeline runs) and a withdrawal (its fee is computed, the funds are put on hold, the
   payment is handed over) and exits; a second process opens the same file, lists the
   instances of both workflows it finds there, and carries each on to the end without
   running any of their steps again.
2. The pull-request outcomes in memory (rejected, unknown commit, merged) and recovery from a
   journal.
3. The withdrawal workflow with its checks engine, scenario by scenario, on a test clock.

With ``--serve`` it does none of that: it fills a SQLite file with instances of both
workflows in different states (awaiting a review, merged, rejected, an unknown commit,
terminated; a withdrawal awaiting the execution engine, one completed, one cancelled) and
serves the HTTP API and web UI over it (``workflows4py[web]``) at http://127.0.0.1:8000/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
from decimal import Decimal
from typing import Any

from workflows4py import WorkflowInstance
from workflows4py.examples import pull_request as pr
from workflows4py.examples import withdrawal
from workflows4py.runtime import Runtime
from workflows4py.stores import SearchQuery

SERVICE = withdrawal.FakeWithdrawalService()
"""The withdrawal's outside world in this process (a new one in each process)."""

Withdrawal = withdrawal.withdrawal_workflow(SERVICE)


def app_runtime(db: str) -> Runtime:
    """The application's runtime: both workflows over the one database file."""
    return Runtime.sqlite(db, [pr.PullRequest, Withdrawal])


def say(text: str) -> None:
    print(f"  [pid {os.getpid()}] {text}")


async def list_instances(runtime: Runtime, when: str) -> None:
    """The registry rows of every workflow in the file, from one search."""
    say(f"instances in the database file {when}:")
    for record in (await runtime.search(SearchQuery())).records:
        print(f"    {record.key.workflow:<12} {record.key.instance_id:<6} {record.status}")


async def first_process(db: str) -> None:
    async with app_runtime(db) as runtime:
        request = pr.CreateRequest(commit="some-sha")
        pull = await runtime.start(
            pr.PullRequest, "pr-42", initial_state=pr.Empty(), signal=(pr.create_pr_signal, request)
        )
        say(f"started pr-42: {await pull.query_state()}")
        say(f"CI pipeline runs in this process: {pr.CI.calls}")
        create = withdrawal.CreateWithdrawal("tx-1", Decimal(100), withdrawal.IBAN)
        wd = await runtime.start(
            Withdrawal,
            "wd-1",
            initial_state=withdrawal.Empty(),
            signal=(withdrawal.create_withdrawal_signal, create),
        )
        state = await wd.query_state()
        say(f"started wd-1, now {type(state).__name__}: the payment is handed over")
        say(f"withdrawal service calls in this process: {dict(SERVICE.calls)}")


async def second_process(db: str) -> None:
    async with app_runtime(db) as runtime:
        await list_instances(runtime, "as the first process left them")
        pull = await runtime.get(pr.PullRequest, "pr-42")
        say(f"reopened pr-42: {await pull.query_state()}")
        await pull.deliver_signal(pr.review_pr_signal, pr.ReviewRequest(approve=True))
        say(f"after review: {await pull.query_state()}")
        say(f"CI pipeline runs in this process: {pr.CI.calls}")
        wd = await runtime.get(Withdrawal, "wd-1")
        confirmed = withdrawal.ConfirmExecution(withdrawal.ExecutionStatus.SUCCEEDED)
        await wd.deliver_signal(withdrawal.execution_completed_signal, confirmed)
        say(f"wd-1 after the execution engine confirmed: {await wd.query_state()}")
        say(f"withdrawal service calls in this process: {dict(SERVICE.calls)}")
        await list_instances(runtime, "now")
        print("    (a completed withdrawal stays awaiting: its definition ends with WIO.noop())")
        print("  journal of pr-42 in the database file:")
        for entry in await pull.get_journal():
            print(f"    #{entry.sequence} {entry.type} {entry.data}")


async def sqlite_restart_demo(db: str) -> None:
    print(f"== 1. Two workflows in one runtime on SQLite ({db}), across a process restart")
    subprocess.run(
        [sys.executable, "-m", "workflows4py.examples.demo", "--phase", "first", "--db", db],
        check=True,
    )
    print("  the first process has exited; a new one takes over:")
    await second_process(db)


async def seed(runtime: Runtime) -> list[str]:
    """Instances of both workflows in different states, for the web UI; their ids."""
    review, create = pr.review_pr_signal, pr.create_pr_signal

    async def pull(instance_id: str, commit: str, *reviews: bool) -> WorkflowInstance[Any, Any]:
        request = pr.CreateRequest(commit=commit)
        start = (create, request)
        instance = await runtime.start(
            pr.PullRequest, instance_id, initial_state=pr.Empty(), signal=start
        )
        for approve in reviews:
            await instance.deliver_signal(review, pr.ReviewRequest(approve=approve))
        return instance

    await pull("pr-review", "c0ffee")
    await pull("pr-merged", "beef01", True)
    await pull("pr-rejected", "f00d02", False)
    await pull("pr-unknown-commit", "not-a-commit-sha")
    await pull("pr-stopped", "cafe03")
    await runtime.terminate(pr.PullRequest, "pr-stopped", "opened by mistake")

    async def payout(instance_id: str, amount: int) -> WorkflowInstance[Any, Any]:
        create_wd = withdrawal.CreateWithdrawal(instance_id, Decimal(amount), withdrawal.IBAN)
        start = (withdrawal.create_withdrawal_signal, create_wd)
        return await runtime.start(
            Withdrawal, instance_id, initial_state=withdrawal.Empty(), signal=start
        )

    await payout("wd-pending", 100)
    done = await payout("wd-paid", 250)
    ok = withdrawal.ConfirmExecution(withdrawal.ExecutionStatus.SUCCEEDED)
    await done.deliver_signal(withdrawal.execution_completed_signal, ok)
    cancelled = await payout("wd-cancelled", 75)
    stop = withdrawal.CancelWithdrawal(
        "operator-7", "customer asked", accept_started_execution=True
    )
    await cancelled.deliver_signal(withdrawal.cancel_signal, stop)
    return [r.key.instance_id for r in (await runtime.search(SearchQuery(limit=100))).records]


async def serve(db: str, host: str, port: int) -> None:
    """Fill ``db`` with :func:`seed` (unless it holds instances already), then serve the
    HTTP API and web UI over it until interrupted."""
    try:
        import uvicorn

        from workflows4py.web import create_app
    except ImportError as e:
        raise SystemExit(
            f"--serve needs the web extra: pip install 'workflows4py[web]' ({e})"
        ) from e
    async with app_runtime(db) as runtime:
        if not (await runtime.search(SearchQuery(limit=1))).records:
            ids = await seed(runtime)
            print(f"  {len(ids)} instances in {db}: {', '.join(sorted(ids))}")
    app = create_app(app_runtime(db))
    config = uvicorn.Config(app, host=host, port=port, log_level="warning")
    print(f"  serving the web UI at http://{host}:{port}/ (Ctrl-C stops it)", flush=True)
    await uvicorn.Server(config).serve()


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
    parser.add_argument(
        "--serve", action="store_true", help="serve the web UI over instances in many states"
    )
    parser.add_argument("--host", default="127.0.0.1", help="with --serve (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="with --serve (8000)")
    args = parser.parse_args()
    if args.phase == "first":
        asyncio.run(first_process(args.db))
    elif args.serve:
        with tempfile.TemporaryDirectory() as tmp, contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(args.db or os.path.join(tmp, "demo.db"), args.host, args.port))
    else:
        asyncio.run(main(args.db))
