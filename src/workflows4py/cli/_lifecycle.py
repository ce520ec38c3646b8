"""An instance's life from the command line: ``start``, ``terminate``, ``resume``, ``fork``,
``purge`` and ``export``, over a :class:`Runtime` given as ``module:attribute``."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click

from workflows4py._errors import WorkflowError
from workflows4py.definition import Workflow
from workflows4py.runtime import Runtime, UnexpectedSignal, WorkflowInstance
from workflows4py.stores import RegistryStatus, SearchQuery

from ._inspect import json_option, log_level_option
from ._main import load_runtime, opened, state_json, workflow_of
from ._output import Output, Refused, instant, plain, run

__all__ = ["decoded", "export", "fork", "purge", "resume", "start", "terminate"]

T = TypeVar("T")

ENDED = ("finished", "failed", "terminated")


def _instance_command(
    short: str, help: str, json_help: str
) -> Callable[[Callable[..., Any]], click.Command]:
    """A command taking ``APP WORKFLOW ID``, ``--json`` and ``--log-level``; ``short`` is
    its line in the list of commands, ``help`` the rest of its help."""

    def decorate(f: Callable[..., Any]) -> click.Command:
        for option in (
            log_level_option("WARNING"),
            json_option(f"print one JSON object: {json_help}"),
            click.argument("instance_id", metavar="ID"),
            click.argument("workflow"),
            click.argument("app"),
        ):
            f = option(f)
        command = click.command(help=f"{short}\n\n{help}", short_help=short)(f)
        command.params.sort(key=lambda p: p.name in ("as_json", "log_level"))  # listed last
        return command

    return decorate


async def _app(app: str, workflow: str) -> tuple[Runtime, type[Workflow[Any, Any]]]:
    """The app's runtime and its workflow with this id (ValueError naming the known ids)."""
    runtime = await load_runtime(app)
    return runtime, workflow_of(runtime, workflow)


@asynccontextmanager
async def _opened_workflow(
    app: str, workflow: str, *, read_only: bool = False
) -> AsyncIterator[tuple[Runtime, type[Workflow[Any, Any]]]]:
    """:func:`_app`, the runtime opened (its schema only checked, if ``read_only``)."""
    runtime, cls = await _app(app, workflow)
    async with opened(runtime, read_only=read_only):
        yield runtime, cls


def decoded(option: str, text: str, decode: Callable[[str], T]) -> T:
    """``decode(text)``; a refusal naming ``option`` if it is not JSON or does not decode."""
    try:
        json.loads(text)
    except ValueError as e:
        raise Refused(f"{option} is not JSON: {e}") from e
    try:
        return decode(text)
    except (WorkflowError, ValueError, TypeError) as e:  # DecodeError, InvalidSignalRequest
        raise Refused(f"{option} does not decode: {type(e).__name__}: {e}") from e


async def _view(
    out: Output, workflow: type[Workflow[Any, Any]], instance: WorkflowInstance[Any, Any]
) -> dict[str, Any]:
    """The instance's id, status and state (encoded as ``--state`` takes it); printed for
    people unless ``--json``."""
    status = await instance.status()
    state = await instance.query_state()
    if not out.json:
        out.field("status", status)
        out.field("state", repr(state))
    return {
        "workflow": workflow.id,
        "instance": instance.id,
        "status": status,
        "state": state_json(workflow, state),
    }


# -- start -------------------------------------------------------------------------------------


@_instance_command(
    "Start an instance, idempotently, and print it.",
    "Start instance ID of WORKFLOW (idempotently: an instance started from an equal state is "
    "left as it is), run it until it waits, and print its status and state.",
    '{"workflow", "instance", "status", "state", "signal", "response"}',
)
@click.option(
    "--state", metavar="JSON", help='the initial state: {"type": TYPE_TAG, "state": {FIELDS}}'
)
@click.option("--signal", "signal_id", metavar="SIGNAL_ID", help="a first signal to deliver")
@click.option("--request", metavar="JSON", help="the request of --signal, as JSON")
def start(
    *,
    app: str,
    workflow: str,
    instance_id: str,
    state: str | None,
    signal_id: str | None,
    request: str | None,
    as_json: bool,
    log_level: str,
) -> int:
    if (signal_id is None) != (request is None):
        raise click.UsageError("--signal and --request go together")

    async def work(out: Output) -> int:
        runtime, cls = await _app(app, workflow)
        host = runtime.of(cls)
        initial = None if state is None else decoded("--state", state, host.decode_state)
        first = None
        if signal_id is not None and request is not None:
            signal = host.signal_def(signal_id)
            first = (
                signal,
                decoded("--request", request, lambda t: host.decode_request(signal, t)),
            )
        async with opened(runtime):
            instance = await runtime.start(cls, instance_id, initial_state=initial, signal=first)
            response = None
            if first is not None:  # delivered by start: answered again from the recorded event
                response = await instance.deliver_signal(*first)
                if isinstance(response, UnexpectedSignal):
                    raise Refused(
                        f"started {instance_id!r}, but the signal was refused: {response}"
                    )
            if not out.json:
                out.title(f"{cls.id} / {instance_id}")
            view = await _view(out, cls, instance)
        if out.json:
            out.document({**view, "signal": signal_id, "response": plain(response)})
        elif first is not None:
            out.field("response", repr(response))
        return 0

    return run("start", work, log_level=log_level, as_json=as_json)


# -- terminate, resume, fork -------------------------------------------------------------------


@_instance_command(
    "Stop an instance for good.",
    "Terminated(REASON) is recorded in its journal; no effect or timer of it runs any more.",
    '{"workflow", "instance", "terminated", "reason", "status"}',
)
@click.option("--reason", required=True, help="why (recorded in the journal)")
def terminate(
    *, app: str, workflow: str, instance_id: str, reason: str, as_json: bool, log_level: str
) -> int:
    async def work(out: Output) -> int:
        async with _opened_workflow(app, workflow) as (runtime, cls):
            done = await runtime.terminate(cls, instance_id, reason)
            status = await (await runtime.get(cls, instance_id)).status()
        if out.json:
            out.document(
                {
                    "workflow": cls.id,
                    "instance": instance_id,
                    "terminated": done,
                    "reason": reason,
                    "status": status,
                }
            )
        elif done:
            out.line(f"terminated {cls.id} / {instance_id}: {reason}")
        else:
            out.line(f"{cls.id} / {instance_id} was terminated already: nothing done")
        return 0

    return run("terminate", work, log_level=log_level, as_json=as_json)


@_instance_command(
    "Take a parked instance up again.",
    "Once the fix of what made it fail is deployed: its failures reset, what is due runs now.",
    '{"workflow", "instance", "resumed", "status"}',
)
def resume(*, app: str, workflow: str, instance_id: str, as_json: bool, log_level: str) -> int:
    async def work(out: Output) -> int:
        async with _opened_workflow(app, workflow) as (runtime, cls):
            done = await runtime.resume(cls, instance_id)
            status = await (await runtime.get(cls, instance_id)).status()
        if out.json:
            view = {"workflow": cls.id, "instance": instance_id, "resumed": done}
            out.document({**view, "status": status})
        elif done:
            out.line(f"resumed {cls.id} / {instance_id}: it is {status}")
        else:
            out.line(f"{cls.id} / {instance_id} is not parked (it is {status}): nothing done")
        return 0

    return run("resume", work, log_level=log_level, as_json=as_json)


@_instance_command(
    "Start a new instance from the start of another's journal.",
    "Start NEW_ID from the first N entries of the journal of ID, and run it on from there.",
    '{"workflow", "instance", "forked_from", "after_sequence", "status", "state"}',
)
@click.argument("new_id")
@click.option(
    "--after-sequence",
    type=click.IntRange(min=0),
    required=True,
    metavar="N",
    help="how many entries of ID's journal the fork keeps",
)
def fork(
    *,
    app: str,
    workflow: str,
    instance_id: str,
    new_id: str,
    after_sequence: int,
    as_json: bool,
    log_level: str,
) -> int:
    async def work(out: Output) -> int:
        async with _opened_workflow(app, workflow) as (runtime, cls):
            forked = await runtime.fork(cls, instance_id, new_id, after_sequence=after_sequence)
            if not out.json:
                out.title(f"{cls.id} / {new_id}, forked from {instance_id} after #{after_sequence}")
            view = await _view(out, cls, forked)
        if out.json:
            origin = {"forked_from": instance_id, "after_sequence": after_sequence}
            out.document({**view, **origin})
        return 0

    return run("fork", work, log_level=log_level, as_json=as_json)


# -- purge -------------------------------------------------------------------------------------

_DURATION = re.compile(r"(\d+)([wdhms])")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def _before(ctx: click.Context, param: click.Parameter, value: str) -> datetime:
    """``--finished-before``: an ISO 8601 instant with its offset, or a duration (``30d``,
    ``12h``, ``1d12h``: weeks, days, hours, minutes, seconds) meaning that long before now."""
    text = value.strip()
    if text and _DURATION.sub("", text) == "":
        span = timedelta()
        for amount, unit in _DURATION.findall(text):
            span += timedelta(**{_UNITS[unit]: int(amount)})
        return datetime.now(UTC) - span
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is neither an ISO datetime nor a duration like 30d or 12h"
        ) from None
    if at.tzinfo is None:
        raise click.BadParameter(f"{value!r} has no offset: add one, like +00:00 or Z")
    return at


def _statuses(ctx: click.Context, param: click.Parameter, value: str) -> list[str]:
    """``--status``: a comma-separated list of ended statuses."""
    statuses = [s.strip() for s in value.split(",") if s.strip()]
    if not statuses or any(s not in ENDED for s in statuses):
        raise click.BadParameter(f"{value!r}: give statuses among {', '.join(ENDED)}")
    return statuses


async def _matching(
    runtime: Runtime,
    before: datetime,
    statuses: Sequence[RegistryStatus],
    workflows: Sequence[str | None],
) -> int:
    """How many instances a purge with these criteria deletes (a search, no deletion)."""
    total = 0
    for workflow in list(workflows) if workflows else [None]:
        query = SearchQuery(workflow=workflow, status=statuses, updated_to=before, limit=1)
        total += (await runtime.search(query)).total
    return total


@click.command(
    short_help="Delete the instances that ended before a moment.",
    help="Delete the instances that ended before a moment: journal, snapshot, registry row.",
)
@click.argument("app")
@click.option(
    "--finished-before",
    "before",
    metavar="ISO_DATETIME|DURATION",
    callback=_before,
    required=True,
    help="an ISO datetime with its offset, or a duration like 30d or 12h (before now)",
)
@click.option(
    "--status",
    "statuses",
    metavar="STATUS[,STATUS...]",
    callback=_statuses,
    default=",".join(ENDED),
    show_default=True,
    help="which ended instances",
)
@click.option("--workflow", "workflows", multiple=True, metavar="ID", help="only this workflow")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    help="instances deleted per transaction",
)
@click.option("--dry-run", is_flag=True, help="count them, delete nothing")
@json_option(
    'print one JSON object: {"dry_run", "count", "finished_before", "statuses", "workflows"}'
)
@log_level_option("WARNING")
def purge(
    *,
    app: str,
    before: datetime,
    statuses: list[RegistryStatus],
    workflows: tuple[str, ...],
    batch_size: int,
    dry_run: bool,
    as_json: bool,
    log_level: str,
) -> int:
    async def work(out: Output) -> int:
        runtime = await load_runtime(app)
        for workflow in workflows:
            workflow_of(runtime, workflow)
        async with opened(runtime):
            if dry_run:
                count = await _matching(runtime, before, statuses, workflows)
            else:
                total = None
                if out.shows_progress:  # counted first, for the bar's length
                    total = await _matching(runtime, before, statuses, workflows)
                with out.progress("purging", total) as advance:
                    count = await runtime.purge(
                        finished_before=before,
                        statuses=statuses,
                        workflows=list(workflows) or None,
                        batch_size=batch_size,
                        on_batch=advance,
                    )
        if out.json:
            out.document(
                {
                    "dry_run": dry_run,
                    "count": count,
                    "finished_before": instant(before, "microseconds"),
                    "statuses": statuses,
                    "workflows": list(workflows) or None,
                }
            )
            return 0
        which = f"{'/'.join(statuses)} before {instant(before)}"
        if dry_run:
            out.line(f"would delete {count} instance(s) {which} (dry run: nothing deleted)")
        else:
            out.line(f"deleted {count} instance(s) {which}")
        return 0

    return run("purge", work, log_level=log_level, as_json=as_json)


# -- export ------------------------------------------------------------------------------------


@_instance_command(
    "Print an instance's journal as JSON lines.",
    "One entry per line, oldest first; -o FILE writes them to FILE instead.",
    '{"workflow", "instance", "entries", "file", "journal"}',
)
@click.option(
    "-o",
    "--output",
    "file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="write the JSON lines to this file instead",
)
def export(
    *, app: str, workflow: str, instance_id: str, file: Path | None, as_json: bool, log_level: str
) -> int:
    async def work(out: Output) -> int:
        async with _opened_workflow(app, workflow, read_only=True) as (runtime, cls):
            text = await runtime.export_journal(cls, instance_id)
        entries = text.splitlines()
        if file is not None:
            file.write_text(text, encoding="utf-8")
        if out.json:
            journal = None if file is not None else [json.loads(e) for e in entries]
            where = {"file": None if file is None else str(file), "journal": journal}
            out.document(
                {"workflow": cls.id, "instance": instance_id, "entries": len(entries)} | where
            )
        elif file is not None:
            out.line(f"wrote {len(entries)} entries of {cls.id} / {instance_id} to {file}")
        else:
            click.echo(text, nl=False)
        return 0

    return run("export", work, log_level=log_level, as_json=as_json)
