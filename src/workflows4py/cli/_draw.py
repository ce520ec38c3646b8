"""``render`` and ``lint``: a workflow drawn (its definition, or an instance's progress) and
checked. ``TARGET`` gives a Workflow subclass, a definition (a draft too), or runtimes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from workflows4py.definition import WIO, LintIssue, Workflow, lint, lint_workflow
from workflows4py.engine import StepProgress
from workflows4py.render import bpmn, mermaid, mermaid_live_url, text
from workflows4py.runtime import DurableRuntime

from ._inspect import json_option, log_level_option
from ._main import opened_stores, resolve, runtimes_of, select
from ._output import Output, Refused, run

__all__ = ["lint_command", "render"]

TARGET_HELP = (
    "TARGET is MODULE:ATTRIBUTE giving a Workflow subclass, a definition (WIO, a draft too), "
    "or a Runtime (durable runtimes, a list of them, or a callable returning one of those)."
)
_FORMATS = ("text", "mermaid", "bpmn")


@dataclass(frozen=True)
class _Target:
    """What TARGET gives: a definition (``runtimes`` empty), or runtimes."""

    definition: WIO[Any, Any, Any] | type[Workflow[Any, Any]] | None
    runtimes: list[DurableRuntime[Any, Any]]


def _is_workflow(obj: object) -> bool:
    return isinstance(obj, type) and issubclass(obj, Workflow)


async def _target(target: str, workflow: str | None) -> _Target:
    obj = await resolve(target)
    if _is_workflow(obj) or isinstance(obj, WIO):
        if workflow is not None:
            raise Refused(f"--workflow needs runtimes, and {target} gives a definition")
        return _Target(obj, [])
    return _Target(None, select(runtimes_of(obj, target), workflow, target))


def _one(target: str, runtimes: list[DurableRuntime[Any, Any]]) -> DurableRuntime[Any, Any]:
    if len(runtimes) == 1:
        return runtimes[0]
    known = ", ".join(repr(r.workflow.id) for r in runtimes)
    raise Refused(f"{target} has several workflows ({known}): choose one with --workflow")


# -- render ------------------------------------------------------------------------------------


def _drawn(
    subject: StepProgress | WIO[Any, Any, Any] | type[Workflow[Any, Any]],
    form: str,
    technical: bool,
    name: str | None,
) -> str:
    if form == "mermaid":
        return mermaid(subject, technical=technical)
    if form == "bpmn":
        return bpmn(subject, technical=technical, name=name)
    drawn = text(subject)
    return drawn if drawn.endswith("\n") else drawn + "\n"


@click.command(
    short_help="Draw a workflow, or an instance's progress.",
    help="Draw a workflow's definition, or an instance's progress (--progress), as a text "
    "tree, Mermaid or BPMN 2.0.\n\n" + TARGET_HELP,
)
@click.argument("target")
@click.option(
    "--format",
    "form",
    type=click.Choice(_FORMATS),
    help="what to draw  [default: text; mermaid with --live-url]",
)
@click.option("--workflow", help="the workflow to draw, when TARGET has several (id or name)")
@click.option("--progress", "instance_id", metavar="ID", help="draw this instance's progress")
@click.option(
    "--at",
    type=click.IntRange(min=0),
    metavar="N",
    help="with --progress: as it was after journal entry N",
)
@click.option("--technical", is_flag=True, help="draw checkpoints and recoveries (mermaid, bpmn)")
@click.option("--live-url", is_flag=True, help="print the mermaid.live link instead of Mermaid")
@click.option(
    "-o",
    "--output",
    "file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="write the drawing to this file",
)
@json_option(
    'print one JSON object: {"format", "workflow", "instance", "at", "diagram", "file", "live_url"}'
)
@log_level_option("WARNING")
def render(
    *,
    target: str,
    form: str | None,
    workflow: str | None,
    instance_id: str | None,
    at: int | None,
    technical: bool,
    live_url: bool,
    file: Path | None,
    as_json: bool,
    log_level: str,
) -> int:
    if at is not None and instance_id is None:
        raise click.UsageError("--at goes with --progress")
    if live_url and form not in (None, "mermaid"):
        raise click.UsageError("--live-url draws Mermaid: leave --format out or give mermaid")
    chosen = form or ("mermaid" if live_url else "text")

    async def work(out: Output) -> int:
        found = await _target(target, workflow)
        subject: StepProgress | WIO[Any, Any, Any] | type[Workflow[Any, Any]]
        name = None
        workflow_id = None
        if found.definition is not None:
            if instance_id is not None:
                raise Refused(f"--progress needs a runtime, and {target} gives a definition")
            subject = found.definition
            if _is_workflow(subject):
                workflow_id = subject.id  # type: ignore[union-attr]  # a Workflow subclass
        else:
            host = _one(target, found.runtimes)
            workflow_id = host.workflow.id
            if instance_id is None:
                subject = host.workflow
            else:
                async with opened_stores([host], read_only=True):
                    instance = await host.get_instance(instance_id)
                    if at is None:
                        subject = await instance.get_progress()
                    else:
                        subject = await instance.progress_at(at)
                name = f"{host.workflow.name} {instance_id}"
        drawn = _drawn(subject, chosen, technical, name)
        link = mermaid_live_url(drawn) if chosen == "mermaid" else None
        if file is not None:
            file.write_text(drawn, encoding="utf-8")
        if out.json:
            out.document(
                {
                    "format": chosen,
                    "workflow": workflow_id,
                    "instance": instance_id,
                    "at": at,
                    "diagram": None if file is not None else drawn,
                    "file": None if file is None else str(file),
                    "live_url": link,
                }
            )
        elif live_url:
            out.line(str(link))
        elif file is not None:
            what = workflow_id or target
            shown = f"{what} / {instance_id}" if instance_id is not None else what
            out.line(f"wrote the {chosen} drawing of {shown} to {file}")
        else:
            click.echo(drawn, nl=False)
        return 0

    return run("render", work, log_level=log_level, as_json=as_json)


# -- lint --------------------------------------------------------------------------------------


def _issue(workflow: str | None, issue: LintIssue) -> dict[str, Any]:
    return {
        "workflow": workflow,
        "rule": issue.rule,
        "path": list(issue.path),
        "message": issue.message,
    }


@click.command(
    "lint",
    short_help="Check workflows with the linter.",
    help="Check a definition, a workflow, or every workflow of runtimes with the linter "
    "(docs/lint.md): the issues found, status 1 if any.\n\n" + TARGET_HELP,
)
@click.argument("target")
@click.option("--workflow", help="only this workflow of the runtimes (id or name)")
@json_option('print one JSON object: {"issues", "count", "workflows"}')
@log_level_option("WARNING")
def lint_command(*, target: str, workflow: str | None, as_json: bool, log_level: str) -> int:
    async def work(out: Output) -> int:
        found = await _target(target, workflow)
        checked: list[tuple[str | None, list[LintIssue]]] = []
        if isinstance(found.definition, WIO):
            checked.append((None, lint(found.definition)))
        elif found.definition is not None:
            checked.append((found.definition.id, lint_workflow(found.definition)))
        for host in found.runtimes:
            checked.append((host.workflow.id, lint_workflow(host.workflow)))
        issues = [_issue(w, i) for w, found_issues in checked for i in found_issues]
        workflows = [w for w, _ in checked]
        if out.json:
            out.document({"issues": issues, "count": len(issues), "workflows": workflows})
            return 1 if issues else 0
        for w, found_issues in checked:
            for issue in found_issues:
                out.line(f"{w}: {issue}" if w is not None else str(issue))
        names = ", ".join(w for w in workflows if w is not None) or target
        if issues:
            out.line(f"{len(issues)} issue(s) in {names}", "red")
            return 1
        out.line(f"no issues in {names}", "green")
        return 0

    return run("lint", work, log_level=log_level, as_json=as_json)
