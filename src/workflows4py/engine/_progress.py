"""The progress model: a definition tree annotated with what has run, how it ended, and when."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from workflows4py.definition import Err, Ok, Result, error_name

__all__ = ["StepProgress"]


@dataclass(frozen=True, slots=True)
class StepProgress:
    """One node of an instance's progress.

    ``kind`` is one of ``sequence``, ``pure``, ``run_io``, ``signal``, ``dynamic``
    (flat_map), ``handle_error``, ``end``, ``timer``, ``fork``, ``loop``, ``parallel``,
    ``for_each``, ``embedded``, ``interruptible``, ``checkpoint``, ``recovery`` and
    ``retry``. ``result`` is None until the node has run; ``index`` orders completed nodes
    (a parent completes after its children). ``errors`` names the domain errors the step
    declares, each its class name split into words (``CommitNotFound`` reads "Commit Not
    Found"). ``meta`` holds kind-specific details (a timer's duration and instants, a
    fork's branch names and choice, a loop's outcome names, ...).
    """

    kind: str
    name: str | None
    result: Result[Any, Any] | None = None
    index: int | None = None
    children: tuple[StepProgress, ...] = ()
    signal: str | None = None
    errors: tuple[str, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def executed(self) -> bool:
        return self.result is not None

    def walk(self) -> Iterator[StepProgress]:
        """This node and all below it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()

    def executed_steps(self) -> list[StepProgress]:
        """Completed leaf steps (signals, effects, named pure steps) in execution order."""
        leaves = [
            p
            for p in self.walk()
            if p.executed and not p.children and (p.kind != "pure" or p.name is not None)
        ]
        return sorted(leaves, key=lambda p: p.index if p.index is not None else -1)

    def describe(self, indent: int = 0) -> str:
        """A readable text tree, for logs and terminals.

        A completed node shows its index and output (``✓``) or its error, named as in
        ``errors`` (``✗ #3 Commit Not Found: CommitNotFound()``); a started timer that has
        not fired shows the instant it waits for (``⏲ until ...``).
        """
        label = self.name or f"<{self.kind}>"
        status = ""
        if isinstance(self.result, Ok):
            status = f"  ✓ #{self.index} {self.result.value!r}"
        elif isinstance(self.result, Err):
            error = self.result.error
            status = f"  ✗ #{self.index} {error_name(type(error))}: {error!r}"
        elif self.kind == "timer" and self.meta.get("resume_at") is not None:
            status = f"  ⏲ until {self.meta['resume_at'].isoformat()}"
        lines = [f"{'  ' * indent}- [{self.kind}] {label}{status}"]
        lines.extend(child.describe(indent + 1) for child in self.children)
        return "\n".join(lines)
