"""The ``workflows4py`` command.

- ``workflows4py worker APP``: run due wakeups and resume interrupted instances;
- ``workflows4py instances APP``: list instances from the registry (status, failing, tags);
- ``workflows4py show APP ID``: one instance: registry row, state, progress and journal.

``APP`` is ``module:attribute`` giving a durable runtime, a list of them, or a (possibly
async) callable returning either.

A command that fails on a stored row that does not decode (:class:`DecodeError`), or on the
store (:class:`StoreError`), or on any other :class:`WorkflowError`, prints one line naming
the instance and the event to stderr and exits with status 1. ``instances`` lists the rows
that decode and reports each one that does not on stderr, then exits with status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import logging
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from workflows4py._errors import InstanceNotFound, WorkflowError
from workflows4py.runtime import DurableRuntime, Runtime, Worker
from workflows4py.stores import InstanceKey, InstanceRecord, SearchQuery

__all__ = ["load_runtimes", "main"]


async def load_runtimes(target: str) -> list[DurableRuntime[Any, Any]]:
    """Import ``module:attribute``: a :class:`Runtime` (all its workflows), a durable
    runtime, a list of them, or a (possibly async) callable with no arguments returning
    one of those."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise SystemExit(f"expected MODULE:ATTRIBUTE, got {target!r}")
    obj: Any = getattr(importlib.import_module(module_name), attribute)
    if callable(obj) and not isinstance(obj, DurableRuntime | Runtime):
        obj = obj()
        if inspect.isawaitable(obj):
            obj = await obj
    if isinstance(obj, Runtime):
        obj = obj.hosts
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


@asynccontextmanager
async def _opened(args: argparse.Namespace) -> AsyncIterator[list[DurableRuntime[Any, Any]]]:
    """The app's runtimes (only ``--workflow``'s, if given), their stores initialized."""
    runtimes = await load_runtimes(args.app)
    if args.workflow is not None:
        runtimes = [r for r in runtimes if args.workflow in (r.workflow.id, r.workflow.name)]
        if not runtimes:
            raise SystemExit(f"{args.app} has no runtime for a workflow named {args.workflow!r}")
    stores = {id(r.store): r.store for r in runtimes}
    try:
        for store in stores.values():
            await store.initialize()
        yield runtimes
    finally:
        for store in stores.values():
            await store.close()


def _instant(at: datetime | None, timespec: str = "seconds") -> str | None:
    return None if at is None else at.isoformat(timespec=timespec)


def _row(record: InstanceRecord, timespec: str = "seconds") -> dict[str, Any]:
    return {
        "workflow": record.key.workflow,
        "instance": record.key.instance_id,
        "status": record.status,
        "created": _instant(record.created_at, timespec),
        "updated": _instant(record.updated_at, timespec),
        "next_wakeup": _instant(record.next_wakeup, timespec),
        "failures": record.failures,
        "last_error": record.last_error,
        "tags": record.tags,
    }


def _table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [[str(row[c]) if row[c] not in (None, {}) else "-" for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def _tags(pairs: Sequence[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--tag expects KEY=VALUE, got {pair!r}")
        tags[key] = value
    return tags


def _one_line(error: BaseException) -> str:
    """``Type: message`` of an error, on one line."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _report(command: str, error: BaseException, about: str = "") -> None:
    print(f"workflows4py {command}: {about}{_one_line(error)}", file=sys.stderr)


async def _instances(args: argparse.Namespace) -> int:
    query = SearchQuery(
        status=args.status or None,
        failing=True if args.failing else None,
        tags=_tags(args.tag),
        limit=args.limit,
        offset=args.offset,
        descending=args.recent,
    )
    rows: list[dict[str, Any]] = []
    total = 0
    unreadable = 0
    async with _opened(args) as runtimes:
        for runtime in runtimes:
            page = await runtime.search(query)
            rows.extend(_row(r, "microseconds" if args.json else "seconds") for r in page.records)
            total += page.total
            for error in page.errors:  # rows that do not decode: on stderr, the rest listed
                _report("instances", error)
            unreadable += len(page.errors)
    status = 1 if unreadable else 0
    if args.json:
        for row in rows:
            print(json.dumps(row, sort_keys=True))
        return status
    columns = ["workflow", "instance", "status", "updated", "next_wakeup", "failures"]
    columns += ["last_error", "tags"]
    for row in rows:
        error = row["last_error"]
        if error is not None and len(error) > 60:
            row["last_error"] = error[:59] + "…"
    print(_table(rows, columns) if rows else "no instance matches")
    bad = f"; {unreadable} unreadable (reported on stderr)" if unreadable else ""
    print(f"{len(rows)} shown of {total} matching{bad}")
    return status


async def _show(args: argparse.Namespace) -> int:
    found = False
    async with _opened(args) as runtimes:
        for runtime in runtimes:
            try:
                instance = await runtime.get_instance(args.instance)
            except InstanceNotFound:
                continue
            found = True
            record = await runtime.store.get_record(InstanceKey(runtime.workflow.id, args.instance))
            journal = await instance.get_journal()
            signals = await instance.expected_signals()
            progress = await instance.get_progress()
            state = await instance.query_state()
            if args.json:
                print(
                    json.dumps(
                        {
                            "registry": None if record is None else _row(record, "microseconds"),
                            "state": repr(state),
                            "expected_signals": [s.id for s in signals],
                            "journal": [
                                {
                                    "sequence": e.sequence,
                                    "type": e.type,
                                    "data": json.loads(e.data),
                                    "recorded_at": _instant(e.recorded_at, "microseconds"),
                                }
                                for e in journal
                            ],
                        },
                        sort_keys=True,
                    )
                )
                continue
            print(f"{runtime.workflow.name} / {args.instance}")
            if record is not None:
                print(f"  status:       {record.status}")
                print(f"  created:      {_instant(record.created_at)}")
                print(f"  updated:      {_instant(record.updated_at)}")
                print(f"  next wakeup:  {_instant(record.next_wakeup) or '-'}")
                if record.failures:
                    print(f"  failures:     {record.failures} in a row: {record.last_error}")
                if record.tags:
                    print(f"  tags:         {json.dumps(record.tags, sort_keys=True)}")
            print(f"  state:        {state!r}")
            waiting = ", ".join(s.id for s in signals) or "-"
            print(f"  waits for:    {waiting}")
            print("progress:")
            print("\n".join("  " + line for line in progress.describe().splitlines()))
            print(f"journal ({len(journal)} events):")
            for e in journal:
                print(f"  #{e.sequence} {_instant(e.recorded_at)} {e.type} {e.data}")
    if not found:
        print(f"no instance {args.instance!r} in {args.app}", file=sys.stderr)
        return 1
    return 0


def _version() -> str:
    """The installed distribution's version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("workflows4py")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown (not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``workflows4py`` command."""
    parser = argparse.ArgumentParser(prog="workflows4py", description=__doc__)
    parser.add_argument("--version", action="version", version=f"workflows4py {_version()}")
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

    listing = sub.add_parser("instances", help="list instances from the registry")
    listing.add_argument("app", help="MODULE:ATTRIBUTE giving the durable runtime(s)")
    listing.add_argument("--workflow", help="only this workflow's instances")
    listing.add_argument(
        "--status",
        action="append",
        choices=["running", "awaiting", "finished", "failed"],
        help="only instances with this status (repeatable)",
    )
    listing.add_argument(
        "--failing", action="store_true", help="only instances whose last operation failed"
    )
    listing.add_argument(
        "--tag", action="append", default=[], metavar="KEY=VALUE", help="a tag to match"
    )
    listing.add_argument("--limit", type=int, default=50, help="rows per workflow (default 50)")
    listing.add_argument("--offset", type=int, default=0, help="rows to skip per workflow")
    listing.add_argument("--recent", action="store_true", help="most recently updated first")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.add_argument("--log-level", default="WARNING")

    show = sub.add_parser("show", help="one instance: registry row, state, progress, journal")
    show.add_argument("app", help="MODULE:ATTRIBUTE giving the durable runtime(s)")
    show.add_argument("instance", help="the instance id")
    show.add_argument("--workflow", help="only this workflow (when several share ids)")
    show.add_argument("--json", action="store_true", help="one JSON object")
    show.add_argument("--log-level", default="WARNING")

    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(message)s")
    if args.command == "worker":
        asyncio.run(_worker(args))
        return 0
    try:
        if args.command == "instances":
            return asyncio.run(_instances(args))
        return asyncio.run(_show(args))
    except WorkflowError as e:  # a stored row that does not decode, the store, ...: one line
        about = ""
        if args.command == "show" and getattr(e, "instance_id", None) is None:
            about = f"instance {args.instance!r}: "
        _report(args.command, e, about)
        return 1


if __name__ == "__main__":
    sys.exit(main())
