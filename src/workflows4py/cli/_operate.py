"""``signal``, ``wakeup`` and ``demo``: an instance acted on by its id (``APP`` gives a
Runtime, durable runtimes or a list of them), and the packaged demo."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import click

from workflows4py._errors import InstanceNotFound
from workflows4py.runtime import DurableRuntime, UnexpectedSignal, WorkflowInstance

from ._inspect import json_option, log_level_option
from ._lifecycle import decoded
from ._main import opened_runtimes
from ._output import Output, Refused, instant, plain, report, run

__all__ = ["UNEXPECTED", "demo", "signal", "wakeup"]

UNEXPECTED = 3
"""The exit status of ``signal`` when the instance does not expect the signal now."""


async def _find(
    runtimes: Sequence[DurableRuntime[Any, Any]], instance_id: str, app: str
) -> tuple[DurableRuntime[Any, Any], WorkflowInstance[Any, Any]]:
    """The one runtime having instance ``instance_id``, and the instance."""
    found: list[tuple[DurableRuntime[Any, Any], WorkflowInstance[Any, Any]]] = []
    for runtime in runtimes:
        try:
            found.append((runtime, await runtime.get_instance(instance_id)))
        except InstanceNotFound:
            continue
    if not found:
        raise InstanceNotFound(instance_id)
    if len(found) > 1:
        named = ", ".join(repr(r.workflow.id) for r, _ in found)
        raise Refused(
            f"several workflows of {app} have an instance {instance_id!r} ({named}): "
            "choose one with --workflow"
        )
    return found[0]


def _instance_arguments(f: Any) -> Any:
    for option in (
        click.option("--workflow", help="the instance's workflow (id or name), if ids are shared"),
        click.argument("instance_id", metavar="ID"),
        click.argument("app"),
    ):
        f = option(f)
    return f


# -- signal ------------------------------------------------------------------------------------


@click.command(
    short_help="Deliver a signal to an instance; print its response.",
    help="Deliver signal SIGNAL_ID to instance ID, its request given as JSON by --json "
    "('-' reads it from stdin), and print one JSON object: "
    '{"workflow", "instance", "signal", "response", "status"}. '
    f"Exit status {UNEXPECTED} if the instance does not expect the signal now.",
)
@_instance_arguments
@click.argument("signal_id")
@click.option(
    "--json",
    "payload",
    required=True,
    metavar="JSON",
    help="the signal's request as JSON ('-': read it from stdin)",
)
@log_level_option("WARNING")
def signal(
    *,
    app: str,
    instance_id: str,
    signal_id: str,
    workflow: str | None,
    payload: str,
    log_level: str,
) -> int:
    text = sys.stdin.read() if payload == "-" else payload

    async def work(out: Output) -> int:
        async with opened_runtimes(app, workflow) as runtimes:
            runtime, instance = await _find(runtimes, instance_id, app)
            definition = runtime.signal_def(signal_id)  # ValueError naming the known ones
            request = decoded("--json", text, lambda t: runtime.decode_request(definition, t))
            response = await instance.deliver_signal(definition, request)
            if isinstance(response, UnexpectedSignal):
                report("signal", Refused(f"UnexpectedSignal: {response}"))
                return UNEXPECTED
            status = await instance.status()
        out.document(
            {
                "workflow": runtime.workflow.id,
                "instance": instance_id,
                "signal": signal_id,
                "response": plain(response),
                "status": status,
            }
        )
        return 0

    return run("signal", work, log_level=log_level, as_json=True)


# -- wakeup ------------------------------------------------------------------------------------


@click.command(
    short_help="Run what is due of an instance now.",
    help="Run instance ID now: its due timers and retries, until it waits; print its status.",
)
@_instance_arguments
@json_option('print one JSON object: {"workflow", "instance", "status", "next_wakeup"}')
@log_level_option("WARNING")
def wakeup(
    *, app: str, instance_id: str, workflow: str | None, as_json: bool, log_level: str
) -> int:
    async def work(out: Output) -> int:
        async with opened_runtimes(app, workflow) as runtimes:
            runtime, instance = await _find(runtimes, instance_id, app)
            await instance.wakeup()
            status = await instance.status()
            next_wakeup = await instance.next_wakeup()
        if out.json:
            out.document(
                {
                    "workflow": runtime.workflow.id,
                    "instance": instance_id,
                    "status": status,
                    "next_wakeup": instant(next_wakeup, "microseconds"),
                }
            )
            return 0
        out.title(f"{runtime.workflow.id} / {instance_id}")
        out.field("status", status)
        out.field("next wakeup", instant(next_wakeup))
        return 0

    return run("wakeup", work, log_level=log_level, as_json=as_json)


# -- demo --------------------------------------------------------------------------------------


@click.command(
    short_help="Run the demo (the packaged examples).",
    help="Run the demo of workflows4py.examples.demo, as ./scripts/demo does: workflows on "
    "SQLite across a process restart, then the examples in memory. Its options are passed "
    "on (--db FILE: the SQLite file of part 1).",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def demo(*, args: tuple[str, ...]) -> int:
    # a process of its own, as the script runs it (the demo starts a second one itself)
    command = [sys.executable, "-m", "workflows4py.examples.demo", *args]
    done = subprocess.run(command, check=False)  # noqa: S603 - this interpreter, our module
    return done.returncode
