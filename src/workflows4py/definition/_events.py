"""Events the library records on its own behalf: a timer's start and its release.

They carry their instants, so replay never reads the clock. They are part of every
workflow's event codec under stable tags.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from workflows4py.serialization import type_tag

__all__ = ["SystemEvent", "TimerReleased", "TimerStarted"]


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


SystemEvent = TimerStarted | TimerReleased
