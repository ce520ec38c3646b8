"""The instants, keys and events the store conformance suites use, for a store's own tests
as well (they need no pytest)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

from workflows4py.stores import InstanceKey, NewEvent, WakeupStore

__all__ = ["KEY", "OTHER", "T0", "at", "event", "settle"]

T0 = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
KEY = InstanceKey("order", "o-1")
OTHER = InstanceKey("order", "o-2")


def at(seconds: float) -> datetime:
    """T0 plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


def event(n: int, when: datetime = T0, type_: str = "Ev") -> NewEvent:
    """A small event numbered ``n``."""
    return NewEvent(type_, json.dumps({"n": n}), when)


async def settle(store: WakeupStore) -> None:
    """Consume pending "work" signals, so the next ``wait_for_work`` really waits."""
    for _ in range(20):
        start = time.monotonic()
        await store.wait_for_work(0.2)
        if time.monotonic() - start >= 0.15:
            return
    raise AssertionError("wait_for_work keeps returning at once with nothing happening")
