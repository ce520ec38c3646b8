"""The text tree: one line per node of the progress model, indented by depth."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from workflows4py.definition import WIO, Err, Ok, Workflow, error_name
from workflows4py.engine import (
    DynamicProgress,
    ForEachElementProgress,
    ForEachProgress,
    ForkBranchProgress,
    HandleErrorProgress,
    InterruptibleProgress,
    LoopIterationProgress,
    LoopProgress,
    PureProgress,
    RetryProgress,
    RunIOProgress,
    SignalProgress,
    StepProgress,
    TimerProgress,
    progress_of,
)

__all__ = ["duration_text", "text"]


def text(subject: StepProgress | WIO[Any, Any, Any] | type[Workflow[Any, Any]]) -> str:
    """A text tree of a progress, or of a definition (or a Workflow subclass's) with nothing
    run, for logs and terminals; ``docs/progress.md`` shows the format.

    One line per node, ``- [kind] name (details)  status``, children indented by two
    spaces: ``✓ #3`` a node completed third (a leaf, and the root, with its output), ``✗ #3
    Commit Not Found: CommitNotFound()`` one that failed, ``… waiting`` what the instance
    waits on now. A terminated or parked instance's mark comes first.
    """
    progress = subject if isinstance(subject, StepProgress) else progress_of(subject)
    lines: list[str] = []
    if progress.terminated is not None:
        mark = progress.terminated
        lines.append(f"terminated at {mark.terminated_at.isoformat()}: {mark.reason}")
    if progress.parked is not None:
        since = "" if progress.parked.at is None else f" since {progress.parked.at.isoformat()}"
        lines.append(f"parked{since}: {progress.parked.reason}")
    _node(progress, 0, "", lines)
    return "\n".join(lines)


def duration_text(value: timedelta) -> str:
    """A duration as ``2m``, ``1h 30m``, ``1d 2h``, ``0.5s``."""
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((value.days, "d"), (hours, "h"), (minutes, "m")) if n]
    if value.microseconds:
        parts.append(f"{seconds}.{value.microseconds:06d}".rstrip("0") + "s")
    elif seconds or not parts:
        parts.append(f"{seconds}s")
    return sign + " ".join(parts)


def _node(p: StepProgress, depth: int, role: str, lines: list[str]) -> None:
    label = f" {p.name}" if p.name is not None else ""
    details = _details(p)
    shown = f" ({', '.join(details)})" if details else ""
    about = f" — {p.description}" if p.description else ""
    lines.append(f"{'  ' * depth}- {role}[{p.kind}]{label}{shown}{about}{_status(p, depth)}")
    roles = _roles(p)
    for i, child in enumerate(p.children):
        _node(child, depth + 1, roles[i] if i < len(roles) else "", lines)


def _status(p: StepProgress, depth: int) -> str:
    if isinstance(p.result, Ok):
        shown = f" {p.result.value!r}" if depth == 0 or not p.children else ""
        return f"  ✓ #{p.index}{shown}"
    if isinstance(p.result, Err):
        error = p.result.error
        return f"  ✗ #{p.index} {error_name(type(error))}: {error!r}"
    if p.waiting and not any(c.waiting for c in p.children):
        return "  … waiting"
    return ""


def _roles(p: StepProgress) -> tuple[str, ...]:
    """How the children of ``p`` are labelled, in order ("" for none)."""
    if isinstance(p, HandleErrorProgress):
        return ("", "on error: ")
    if isinstance(p, DynamicProgress):
        return ("", "then: ")
    if isinstance(p, InterruptibleProgress):
        return ("", "interrupted by: ", "then: ")
    if isinstance(p, LoopIterationProgress):
        return ("", "on restart: ")
    if isinstance(p, ForEachProgress) and p.elements is None:
        return ("each: ",)
    return ()


def _instant(what: str, at: datetime | None) -> list[str]:
    return [] if at is None else [f"{what} {at.isoformat()}"]


def _details(p: StepProgress) -> list[str]:
    found: list[str] = ["draft"] if p.draft else []
    if isinstance(p, SignalProgress):
        signal = p.signal_id if p.signal_id is not None else repr(p.signal_name)
        types = "" if p.request is None else f": {p.request}"
        types += "" if p.response is None else f" -> {p.response}"
        found.append(f"signal {signal}{types}")
    elif isinstance(p, TimerProgress):
        found.append("dynamic" if p.duration is None else duration_text(p.duration))
        found += _instant("started", p.started_at) + _instant("due", p.resume_at)
        found += _instant("released", p.released_at)
    elif isinstance(p, ForkBranchProgress) and p.taken:
        found.append("taken")
    elif isinstance(p, LoopProgress):
        found.append(f"ends on {p.release}, repeats on {p.restart}")
        if p.restarts:
            found.append(f"went round {p.restarts} time{'' if p.restarts == 1 else 's'}")
    elif isinstance(p, LoopIterationProgress):
        found.append(f"round {p.number}")
        found += [] if p.outcome is None else [f"answered {p.outcome}"]
    elif isinstance(p, ForEachElementProgress):
        found.append(f"key {p.key!r}")
    elif isinstance(p, ForEachProgress) and p.elements is not None:
        found.append(f"{len(p.elements)} element{'' if len(p.elements) == 1 else 's'}")
    elif isinstance(p, HandleErrorProgress) and p.handled:
        found.append("handles " + ", ".join(p.handled))
    elif isinstance(p, InterruptibleProgress) and p.interrupted:
        found.append("interrupted")
    elif isinstance(p, DynamicProgress) and p.then is None:
        found.append("the next step comes from its output")
    elif isinstance(p, RetryProgress):
        found.append(p.policy)
        if p.failed_attempts:
            found.append(f"{p.failed_attempts} failed attempt{'s' * (p.failed_attempts > 1)}")
        found += _instant("next attempt not before", p.not_before)
    if isinstance(p, PureProgress | RunIOProgress | SignalProgress) and p.errors:
        found.append("may fail with " + ", ".join(p.errors))
    return found
