"""``worker``, ``instances`` and ``show``: run the background work, list the registry, look
at one instance. ``APP`` gives a Runtime, a durable runtime or a list of them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, get_args

import click

from workflows4py._errors import InstanceNotFound
from workflows4py.engine import SignalProgress, StepProgress, TimerProgress
from workflows4py.render import text as text_tree
from workflows4py.runtime import DurableRuntime, Worker
from workflows4py.stores import InstanceKey, InstanceRecord, JournalEntry, SearchQuery, SearchSort

from ._main import opened_runtimes, state_json
from ._output import Output, Refused, instant, report, run

__all__ = ["instances", "journal_json", "json_option", "log_level_option", "show", "worker"]

F = TypeVar("F", bound=Callable[..., Any])

STATUSES = ("running", "awaiting", "finished", "failed", "terminated", "parked")
_LEVELS = click.Choice(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], case_sensitive=False)


def json_option(help: str) -> Callable[[F], F]:
    return click.option("--json", "as_json", is_flag=True, help=help)


def log_level_option(default: str) -> Callable[[F], F]:
    return click.option(
        "--log-level", default=default, show_default=True, type=_LEVELS, help="logging level"
    )


APP_HELP = "MODULE:ATTRIBUTE giving the durable runtime(s)"


def _count_option(name: str, default: int, least: int, help: str) -> Callable[[F], F]:
    """An integer option of at least ``least``, its default shown in ``--help``."""
    return click.option(
        name, type=click.IntRange(min=least), default=default, show_default=True, help=help
    )


# -- worker ------------------------------------------------------------------------------------


@click.command(
    short_help="Run due wakeups and resume interrupted instances.",
    help="Run due wakeups and resume interrupted instances, until SIGTERM or SIGINT.",
)
@click.argument("app")
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="seconds between looks for work when no notification comes",
)
@_count_option("--batch", 50, 1, "most instances claimed at once")
@_count_option("--concurrency", 32, 1, "most instances run at once")
@_count_option("--prefetch", 8, 0, "instances claimed beyond the free slots, started as slots free")
@json_option("log records as JSON lines on stderr; at the end, one JSON object on stdout")
@log_level_option("INFO")
def worker(
    *,
    app: str,
    poll_interval: float,
    batch: int,
    concurrency: int,
    prefetch: int,
    as_json: bool,
    log_level: str,
) -> int:
    async def work(out: Output) -> int:
        async with opened_runtimes(app, None) as runtimes:
            with contextlib.ExitStack() as bar:
                # on a terminal, a bar of the instances due when it starts, until it ran as many
                due = await _due_now(runtimes) if out.shows_progress else 0
                show = bar.enter_context(out.progress("due at start", due)) if due else None
                done = 0

                def ran(key: InstanceKey, ok: bool) -> None:
                    nonlocal done
                    done += 1
                    if show is not None:
                        show(min(done, due))
                    if done == due:
                        bar.close()  # the bar goes; the worker goes on

                running = Worker(
                    list(runtimes),
                    poll_interval=poll_interval,
                    batch=batch,
                    concurrency=concurrency,
                    prefetch=prefetch,
                    after_run=ran if show is not None else None,
                )
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(sig, running.stop)
                await running.run()
        if out.json:
            out.document({"stopped": True, "workflows": [r.workflow.id for r in runtimes]})
        return 0

    return run("worker", work, log_level=log_level, as_json=as_json)


async def _due_now(runtimes: Sequence[DurableRuntime[Any, Any]]) -> int:
    """How many running or awaiting instances of ``runtimes`` have a wakeup due now."""
    due = 0
    for runtime in runtimes:
        query = SearchQuery(
            workflow=runtime.workflow.id,
            status=["running", "awaiting"],
            wakeup_before=runtime.clock.now(),
            limit=0,
        )
        due += (await runtime.store.search(query)).total
    return due


# -- instances ---------------------------------------------------------------------------------


def _row(record: InstanceRecord, timespec: str = "seconds") -> dict[str, Any]:
    return {
        "workflow": record.key.workflow,
        "instance": record.key.instance_id,
        "status": record.status,
        "created": instant(record.created_at, timespec),
        "updated": instant(record.updated_at, timespec),
        "next_wakeup": instant(record.next_wakeup, timespec),
        "failures": record.failures,
        "last_error": record.last_error,
        "tags": record.tags,
    }


def _tags(pairs: Sequence[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--tag expects KEY=VALUE, got {pair!r}")
        tags[key] = value
    return tags


_COLUMNS = ["workflow", "instance", "status", "updated", "next_wakeup", "failures"]
_COLUMNS += ["last_error", "tags"]
_CREATED_COLUMNS = ["workflow", "instance", "status", "created", *_COLUMNS[3:]]
COUNT_LIMIT = 10_000  # matches counted past --offset, by default


@click.command(help="List instances from the registry.")
@click.argument("app")
@click.option("--workflow", help="only this workflow's instances (its id or name)")
@click.option(
    "--status",
    type=click.Choice(STATUSES),
    multiple=True,
    help="only instances with this status (repeatable)",
)
@click.option("--failing", is_flag=True, help="only instances whose last operation failed")
@click.option("--tag", multiple=True, metavar="KEY=VALUE", help="a tag to match (repeatable)")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="rows per workflow",
)
@click.option(
    "--offset",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="rows to skip per workflow",
)
@click.option(
    "--sort",
    type=click.Choice(get_args(SearchSort)),
    default="updated",
    show_default=True,
    help="order by the instant of the last update or of creation (then workflow, id)",
)
@click.option("--recent", is_flag=True, help="latest first (by the instant of --sort)")
@click.option(
    "--count-limit",
    type=click.IntRange(min=0),
    default=COUNT_LIMIT,
    show_default=True,
    help="count at most this many matches past --offset, per workflow ('N+' when more)",
)
@json_option('one JSON object: {"items": [ROW, ...], "total": N, "exact": BOOL}')
@log_level_option("WARNING")
def instances(
    *,
    app: str,
    workflow: str | None,
    status: tuple[str, ...],
    failing: bool,
    tag: tuple[str, ...],
    limit: int,
    offset: int,
    sort: SearchSort,
    recent: bool,
    count_limit: int,
    as_json: bool,
    log_level: str,
) -> int:
    async def work(out: Output) -> int:
        query = SearchQuery(
            # a count walks every match: at millions of rows it costs more than the page
            count_limit=offset + count_limit,
            status=list(status) or None,  # type: ignore[arg-type]  # click.Choice checked them
            failing=True if failing else None,
            tags=_tags(tag),
            limit=limit,
            offset=offset,
            descending=recent,
            sort=sort,
        )
        rows: list[dict[str, Any]] = []
        total = unreadable = 0
        exact = True
        async with opened_runtimes(app, workflow, read_only=True) as runtimes:
            for runtime in runtimes:
                page = await runtime.search(query)
                timespec = "microseconds" if as_json else "seconds"
                rows.extend(_row(r, timespec) for r in page.records)
                total += page.total
                exact = exact and page.exact
                for error in page.errors:  # rows that do not decode: on stderr, the rest listed
                    report("instances", error)
                unreadable += len(page.errors)
        outcome = 1 if unreadable else 0
        if out.json:
            out.document({"items": rows, "total": total, "exact": exact})
            return outcome
        for row in rows:
            error = row["last_error"]
            if error is not None and len(error) > 60:
                row["last_error"] = error[:59] + "…"
        if rows:  # sorted by creation: with the column of that instant
            out.table(rows, _CREATED_COLUMNS if sort == "created" else _COLUMNS)
        else:
            out.line("no instance matches")
        bad = f"; {unreadable} unreadable (reported on stderr)" if unreadable else ""
        out.line(f"{len(rows)} shown of {total}{'' if exact else '+'} matching{bad}")
        return outcome

    return run("instances", work, log_level=log_level, as_json=as_json)


# -- show --------------------------------------------------------------------------------------


def _waits_for(progress: StepProgress) -> list[str]:
    """What the instance waits on now: ``signal ID`` and ``timer NAME until INSTANT``, in
    definition order (effects due and the like as ``KIND NAME``)."""
    waits: list[str] = []
    for node in progress.frontier():
        if isinstance(node, SignalProgress):
            waits.append(f"signal {node.signal_id or node.signal_name}")
        elif isinstance(node, TimerProgress) and node.resume_at is not None:
            waits.append(f"timer {node.name} until {instant(node.resume_at)}")
        else:
            waits.append(f"{node.kind} {node.name or ''}".rstrip())
    return waits


def journal_json(journal: Sequence[JournalEntry]) -> list[dict[str, Any]]:
    """Journal entries as ``{"sequence", "type", "data", "recorded_at"}`` objects."""
    return [
        {
            "sequence": e.sequence,
            "type": e.type,
            "data": json.loads(e.data),
            "recorded_at": instant(e.recorded_at, "microseconds"),
        }
        for e in journal
    ]


async def _show_one(out: Output, runtime: DurableRuntime[Any, Any], instance_id: str) -> bool:
    """Print one instance of ``runtime``; False if it has none with this id."""
    try:
        instance = await runtime.get_instance(instance_id)
    except InstanceNotFound:
        return False
    record = await runtime.store.get_record(InstanceKey(runtime.workflow.id, instance_id))
    journal = await instance.get_journal()
    signals = await instance.expected_signals()
    progress = await instance.get_progress()
    state = state_json(runtime.workflow, await instance.query_state())
    wakeup = await instance.next_wakeup()
    if out.json:
        out.document(
            {
                "registry": None if record is None else _row(record, "microseconds"),
                "state": state,
                "expected_signals": [s.id for s in signals],
                "waits_for": _waits_for(progress),
                "next_wakeup": instant(wakeup, "microseconds"),
                "progress": progress.to_json(),
                "journal": journal_json(journal),
            }
        )
        return True
    out.title(f"{runtime.workflow.id} / {instance_id}")
    if record is not None:
        out.field("status", record.status)
        out.field("created", instant(record.created_at))
        out.field("updated", instant(record.updated_at))
        if record.failures:
            out.field("failures", f"{record.failures} in a row: {record.last_error}")
        if record.tags:
            out.field("tags", json.dumps(record.tags, sort_keys=True))
    out.field("next wakeup", instant(wakeup))
    out.field("state", json.dumps(state, sort_keys=True, ensure_ascii=False))
    out.field("waits for", ", ".join(_waits_for(progress)) or None)
    out.line("progress:")
    for line in text_tree(progress).splitlines():
        out.line("  " + line)
    out.line(f"journal ({len(journal)} events):")
    for e in journal:
        out.line(f"  #{e.sequence} {instant(e.recorded_at)} {e.type} {e.data}")
    return True


@click.command(help="One instance: registry row, state, progress and journal.")
@click.argument("app")
@click.argument("instance")
@click.option("--workflow", help="only this workflow (when several share ids)")
@json_option("one JSON object (per workflow having an instance with this id)")
@log_level_option("WARNING")
def show(*, app: str, instance: str, workflow: str | None, as_json: bool, log_level: str) -> int:
    async def work(out: Output) -> int:
        found = False
        async with opened_runtimes(app, workflow, read_only=True) as runtimes:
            for runtime in runtimes:
                found = await _show_one(out, runtime, instance) or found
        if not found:
            report("show", Refused(f"no instance {instance!r} in {app}"))
            return 1
        return 0

    def about(error: Exception) -> str:
        named = getattr(error, "instance_id", None) is not None or isinstance(error, Refused)
        return "" if named else f"instance {instance!r}: "

    return run("show", work, log_level=log_level, as_json=as_json, about=about)
