"""A clock for tests: time moves only when the test says so."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

__all__ = ["TestClock"]


class TestClock:
    """A clock that moves only when told to: ``set(instant)`` or ``advance(timedelta)``."""

    __test__ = False  # not a pytest test class

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._now = _aware(start) if start is not None else datetime(2024, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, instant: datetime) -> None:
        """Jump to ``instant`` (it may not go backwards: journals record instants in order)."""
        instant = _aware(instant)
        with self._lock:
            if instant < self._now:
                raise ValueError(f"TestClock cannot go back from {self._now} to {instant}")
            self._now = instant

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta``; returns the new instant."""
        if delta < timedelta(0):
            raise ValueError("TestClock.advance takes a non-negative timedelta")
        with self._lock:
            self._now += delta
            return self._now


def _aware(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise ValueError(f"instants must be timezone-aware, got naive {instant}")
    return instant.astimezone(UTC)
