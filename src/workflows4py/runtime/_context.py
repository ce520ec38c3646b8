"""What a running step can know about itself: instance, position, idempotency key."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from workflows4py._errors import WorkflowError

__all__ = ["StepContext", "current_step"]


@dataclass(frozen=True, slots=True)
class StepContext:
    """Set while an effect or signal handler runs.

    ``idempotency_key`` (``"<workflow>:<instance>:<sequence>"``) is stable across retries of
    the same step, because the sequence is the one its event will take in the journal:
    pass it to downstream systems to deduplicate at-least-once effects.
    """

    workflow: str
    instance_id: str
    sequence: int
    step: str

    @property
    def idempotency_key(self) -> str:
        return f"{self.workflow}:{self.instance_id}:{self.sequence}"


# (workflow, instance id, sequence, step) of the step running: a tuple, built in C for every
# step; the StepContext only when asked for
_CURRENT: ContextVar[tuple[str, str, int, str] | None] = ContextVar(
    "workflows4py_step", default=None
)


def current_step() -> StepContext:
    """The context of the step being run; raises WorkflowError outside of a step."""
    ctx = _CURRENT.get()
    if ctx is None:
        raise WorkflowError("current_step() is only available while a workflow step runs")
    return StepContext(*ctx)
