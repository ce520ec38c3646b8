"""Journal entries: the stored form of a workflow's events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["JournalEntry"]


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One recorded event: its position, type tag, JSON payload and when it was recorded."""

    sequence: int
    type: str
    data: str
    recorded_at: datetime
