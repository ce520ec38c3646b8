"""The ``workflows4py`` command: ``workflows4py worker module:attribute``."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

from ._durable import DurableRuntime
from ._worker import Worker

__all__ = ["load_runtimes", "main"]


async def load_runtimes(target: str) -> list[DurableRuntime[Any, Any]]:
    """Import ``module:attribute``: a durable runtime, a list of them, or a (possibly async)
    callable with no arguments returning either."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise SystemExit(f"expected MODULE:ATTRIBUTE, got {target!r}")
    obj: Any = getattr(importlib.import_module(module_name), attribute)
    if callable(obj) and not isinstance(obj, DurableRuntime):
        obj = obj()
        if inspect.isawaitable(obj):
            obj = await obj
    runtimes = [obj] if isinstance(obj, DurableRuntime) else list(obj)
    for runtime in runtimes:
        if not isinstance(runtime, DurableRuntime):
            raise SystemExit(f"{target} must give durable runtimes, got {runtime!r}")
    return runtimes


async def _worker(args: argparse.Namespace) -> None:
    runtimes = await load_runtimes(args.app)
    stores = {id(r.store): r.store for r in runtimes}
    for store in stores.values():
        await store.initialize()
    worker = Worker(
        runtimes,
        poll_interval=args.poll_interval,
        batch=args.batch,
        concurrency=args.concurrency,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    try:
        await worker.run()
    finally:
        for store in stores.values():
            await store.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``workflows4py`` command."""
    parser = argparse.ArgumentParser(prog="workflows4py", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker", help="run due wakeups and resume interrupted instances")
    worker.add_argument("app", help="MODULE:ATTRIBUTE giving the durable runtime(s) to drive")
    worker.add_argument(
        "--poll-interval",
        type=float,
        default=1.0,
        help="seconds between looks for work when no notification comes (default 1.0)",
    )
    worker.add_argument(
        "--batch", type=int, default=50, help="most instances claimed at once (default 50)"
    )
    worker.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="most instances run at once (default 8; on PostgreSQL, at most max_connections)",
    )
    worker.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(message)s")
    if args.command == "worker":
        asyncio.run(_worker(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
