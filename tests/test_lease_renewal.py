"""An operation renews its instance's lease every third of ``lease_ttl`` while it runs, so
another process cannot take over a long step; a short operation never renews at all."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from workflows4py import WIO, DurableRuntime, Workflow
from workflows4py.stores import InstanceKey, LeaseTimeout, MemoryStore


@dataclass(frozen=True)
class Nap:
    seconds: float


@dataclass(frozen=True)
class Napped:
    """The nap is over (nothing else to record)."""


async def nap(state: Nap) -> Napped:
    await asyncio.sleep(state.seconds)
    return Napped()


class Napping(Workflow[Nap, Napped]):
    name = "napping"
    definition = WIO.run_io(Nap, nap).handle_event(lambda s, e: s)


def counting_renewals(store: MemoryStore) -> list[datetime]:
    """Record each renewal ``store`` makes (the instant it was asked for)."""
    renewals: list[datetime] = []
    renew = store.renew

    async def counted(key: InstanceKey, owner: str, ttl: float, now: datetime) -> None:
        renewals.append(now)
        await renew(key, owner, ttl, now)

    store.renew = counted  # type: ignore[method-assign]
    return renewals


async def test_a_long_step_keeps_its_lease() -> None:
    data = MemoryStore()
    mine, other = data.share(), data.share()
    renewals = counting_renewals(mine)
    runtime = DurableRuntime(Napping, mine, initial_state=Nap(0.6), lease_ttl=0.3)
    started = asyncio.ensure_future(runtime.start("long"))
    await asyncio.sleep(0.45)  # past the first lease's end: held only if it was renewed
    key = InstanceKey(Napping.name, "long")
    with pytest.raises(LeaseTimeout):
        await other.acquire(key, "other", 1.0, 0.0, datetime.now(UTC))
    await started
    assert len(renewals) >= 3  # at about 0.1, 0.2, 0.3, 0.4 and 0.5 s
    # once the operation ended, the lease is given back
    await other.acquire(key, "other", 1.0, 0.0, datetime.now(UTC))


async def test_a_short_operation_does_not_renew() -> None:
    store = MemoryStore()
    renewals = counting_renewals(store)
    runtime = DurableRuntime(Napping, store, initial_state=Nap(0.0), lease_ttl=3.0)
    for n in range(20):
        await runtime.start(f"short-{n}")
    await asyncio.sleep(1.2)  # the renewals that would have been due by now, had any begun
    assert renewals == []
    pending: list[Any] = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert pending == []  # nothing left behind by the operations
