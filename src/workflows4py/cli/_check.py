"""``workflows4py check``: the deploy gate. Replays the stored journals of live instances
against the definitions of the app being deployed, read-only, and exits 1 when any would
break."""

from __future__ import annotations

from typing import Any

import click

from workflows4py.runtime import CheckReport, check_journals

from ._inspect import APP_HELP, STATUSES, json_option, log_level_option
from ._main import opened_runtimes
from ._output import Output, run

__all__ = ["check"]

_DEFAULT_STATUSES = "running,awaiting,parked"


def _statuses(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    chosen = tuple(s.strip() for s in value.split(",") if s.strip())
    unknown = [s for s in chosen if s not in STATUSES]
    if unknown or not chosen:
        raise click.BadParameter(
            f"expected statuses among {', '.join(STATUSES)}, separated by commas; got {value!r}"
        )
    return chosen


@click.command(
    help="Replay the stored journals against today's definitions (a deploy gate).\n\n"
    "Reads the journals of the instances in the given statuses and replays each through "
    "the definitions APP gives, without writing anything; prints per workflow how many "
    "replay (and how many are on each version, once it has versions) and, for each that "
    "does not, where it stopped matching and what to do. Exits "
    "with 1 when any instance would break.",
    short_help="Check that stored journals replay against today's definitions.",
)
@click.argument("app", metavar="APP")
@click.option(
    "--sample",
    type=click.IntRange(min=1),
    default=None,
    help="check at most N instances per workflow, the most recently updated",
)
@click.option(
    "--status",
    "statuses",
    default=_DEFAULT_STATUSES,
    show_default=True,
    callback=_statuses,
    help="the statuses of the instances to check, separated by commas",
)
@json_option(
    'one JSON object: {"ok", "workflows": [{"workflow", "checked", "replayed", '
    '"versions": {version: instances}, "broken": [{"instance", "sequence", '
    '"event_type", "steps", "error", "suggestion"}]}]}'
)
@log_level_option("WARNING")
def check(
    *, app: str, sample: int | None, statuses: tuple[str, ...], as_json: bool, log_level: str
) -> int:
    async def work(out: Output) -> int:
        async with opened_runtimes(app, None, read_only=True) as runtimes:
            with out.progress("replaying journals", None) as advance:
                report = await check_journals(
                    runtimes,
                    statuses=statuses,  # type: ignore[arg-type]  # checked by _statuses
                    sample=sample,
                    progress=lambda done, total: advance(done),
                )
        if out.json:
            out.document(report.to_json())
        else:
            _show(out, report)
        return 0 if report.ok else 1

    return run("check", work, log_level=log_level, as_json=as_json)


check.help = (check.help or "").replace("APP gives", f"APP ({APP_HELP}) gives")


def _show(out: Output, report: CheckReport) -> None:
    rows: list[dict[str, Any]] = []
    for workflow in report.workflows:
        style = "green" if not workflow.broken else "red"
        on = ", ".join(f"{n} on version {v}" for v, n in workflow.versions.items())
        on = f" ({on})" if set(workflow.versions) - {1} else ""  # once it has versions
        out.line(
            f"{workflow.workflow}: {workflow.replayed} of {workflow.checked} replay{on}", style
        )
        rows.extend(
            {
                "instance": b.instance_id,
                "event": "-" if b.sequence is None else f"#{b.sequence} {b.event_type}",
                "awaiting": ", ".join(b.steps) or "-",
                "suggestion": b.suggestion,
            }
            for b in workflow.broken
        )
    if rows:
        out.table(rows, ["instance", "event", "awaiting", "suggestion"])
    broken = len(report.broken)
    if broken:
        out.line(f"{broken} instance(s) would break: do not deploy as it is", "bold red")
    else:
        out.line("every checked journal replays", "bold green")
