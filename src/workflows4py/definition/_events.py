"""Events the library records on its own behalf: a timer's start and its release, and an
instance's termination.

They carry their instants, so replay never reads the clock. They are part of every
workflow's event codec under stable tags. Timer events may be recorded inside a for-each
or an embedded workflow (``SystemEvent`` is their union, for wrapper types); a termination
is recorded only in the instance's own journal, never wrapped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from workflows4py.serialization import type_tag

__all__ = ["SystemEvent", "Terminated", "TimerReleased", "TimerStarted"]


@type_tag("workflows4py.TimerStarted")
@dataclass(frozen=True, slots=True)
class TimerStarted:
    """A timer named ``timer`` started at ``started_at`` and fires at ``resume_at``."""

    timer: str
    started_at: datetime
    resume_at: datetime


@type_tag("workflows4py.TimerReleased")
@dataclass(frozen=True, slots=True)
class TimerReleased:
    """The timer named ``timer`` fired at ``released_at``."""

    timer: str
    released_at: datetime


@type_tag("workflows4py.Terminated")
@dataclass(frozen=True, slots=True)
class Terminated:
    """The instance was stopped for good at ``terminated_at``, for ``reason``.

    Recorded by a runtime's ``terminate``; once applied, nothing of the definition runs
    again: no effect, no timer, and every signal is unexpected.
    """

    reason: str
    terminated_at: datetime


SystemEvent = TimerStarted | TimerReleased
