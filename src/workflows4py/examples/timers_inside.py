"""Timers inside a for-each and inside an embedded workflow.

An order ships its parcels, each one a for-each element that is dispatched, waits for its
delivery window (a timer) and is confirmed delivered; then a reusable cooling-off
procedure, embedded with its own state and events, notifies the customer and waits 14 days
(another timer) before the order closes.

A timer records the library's own events, ``TimerStarted`` and ``TimerReleased``. Inside a
for-each or an embed they go through the node's ``wrap`` like every other inner event, so
the wrapper's event field admits ``SystemEvent`` (their union) besides the inner events,
and ``unwrap`` hands them back unchanged. Run it: ``python -m workflows4py.examples.timers_inside``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from workflows4py import WIO, SystemEvent, Workflow
from workflows4py.runtime import Runtime
from workflows4py.testing import TestClock

START = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)

# -- state ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parcel:
    id: str
    days: int  # the delivery window


@dataclass(frozen=True)
class ParcelState:
    id: str
    tracking: str
    window: timedelta
    delivered: bool = False


@dataclass(frozen=True)
class Order:
    number: str
    parcels: tuple[Parcel, ...]
    delivered: tuple[str, ...] = ()
    closed: bool = False


@dataclass(frozen=True)
class CoolingOff:  # the embedded procedure's own state
    customer: str
    notified: bool = False
    over: bool = False


# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParcelDispatched:
    tracking: str


@dataclass(frozen=True)
class ParcelDelivered:
    tracking: str


@dataclass(frozen=True)
class ParcelEvent:
    """A parcel's event in the order's journal: its key, and the parcel's own event or the
    event of its delivery-window timer."""

    key: str
    event: ParcelDispatched | ParcelDelivered | SystemEvent


@dataclass(frozen=True)
class CustomerNotified:
    customer: str


@dataclass(frozen=True)
class CoolingOffEvent:
    """An event of the embedded cooling-off procedure, its timer's included."""

    event: CustomerNotified | SystemEvent


# -- one parcel -----------------------------------------------------------------------------


def dispatch(parcel: Parcel) -> ParcelDispatched:
    return ParcelDispatched(f"TRK-{parcel.id}")  # stands for a call to the carrier


def confirm(state: ParcelState) -> ParcelDelivered:
    return ParcelDelivered(state.tracking)  # stands for asking the carrier


def on_dispatched(parcel: Parcel, event: ParcelDispatched) -> ParcelState:
    return ParcelState(parcel.id, event.tracking, timedelta(days=parcel.days))


dispatched = WIO.run_io(dispatch).handle_event(on_dispatched)
window = WIO.timer(lambda s: s.window, input=ParcelState, name="Delivery Window")
delivered = WIO.run_io(confirm).handle_event(lambda s, e: replace(s, delivered=True))
one_parcel = dispatched >> window >> delivered


def delivered_keys(parcels: dict[str, Parcel | ParcelState]) -> tuple[str, ...]:
    # a parcel not dispatched yet is still in its input state, a Parcel
    return tuple(k for k, s in parcels.items() if isinstance(s, ParcelState) and s.delivered)


def unwrap_parcel(event: object) -> tuple[str, object] | None:
    return (event.key, event.event) if isinstance(event, ParcelEvent) else None


ship_parcels = WIO.for_each(
    lambda o: o.parcels, one_parcel, key=lambda p: p.id, input=Order, name="Ship Parcels"
).build(
    wrap=ParcelEvent,  # wrap("P-1", TimerStarted(...)) == ParcelEvent("P-1", TimerStarted(...))
    unwrap=unwrap_parcel,
    interim=lambda o, parcels: replace(o, delivered=delivered_keys(parcels)),
    output=lambda o, parcels: replace(o, delivered=tuple(sorted(parcels))),
)

# -- the embedded cooling-off procedure -----------------------------------------------------


def notify(c: CoolingOff) -> CustomerNotified:
    return CustomerNotified(c.customer)  # stands for an e-mail


cooling_off_procedure = (
    WIO.run_io(notify).handle_event(lambda c, e: replace(c, notified=True))
    >> WIO.timer(timedelta(days=14), input=CoolingOff, name="Cooling Off")
    >> WIO.pure(CoolingOff, lambda c: replace(c, over=True))
)


def unwrap_cooling_off(event: object) -> object | None:
    return event.event if isinstance(event, CoolingOffEvent) else None


cooling_off = WIO.embed(
    cooling_off_procedure,
    input=lambda o: CoolingOff(f"customer of {o.number}"),
    output=lambda o, c: replace(o, closed=c.over),
    wrap=CoolingOffEvent,  # wrap(TimerReleased(...)) == CoolingOffEvent(TimerReleased(...))
    unwrap=unwrap_cooling_off,
    outer=Order,
    name="Cooling Off Period",
)


class Shipping(Workflow[Order, ParcelEvent | CoolingOffEvent]):
    definition = ship_parcels >> cooling_off


async def main() -> None:
    clock = TestClock(START)
    order = Order("ORD-7", (Parcel("P-1", days=2), Parcel("P-2", days=5)))
    runtime = Runtime.memory([Shipping], clock=clock)
    instance = await runtime.start(Shipping, "ord-7", initial_state=order)
    print("journal after the parcels were dispatched:")
    for event in await instance.get_events():
        print(f"  {event}")
    print(f"next wakeup: {await instance.next_wakeup()}")  # the earlier window: P-1's

    for days in (2, 3, 14):
        clock.advance(timedelta(days=days))
        await runtime.run_due_wakeups()
        print(f"day {(clock.now() - START).days}: {await instance.query_state()}")

    print("journal at the end:")
    for event in (await instance.get_events())[4:]:
        print(f"  {event}")
    # the journal begins with the order the instance started from: enough to rebuild it
    fresh = Runtime.memory([Shipping])
    restored = await fresh.of(Shipping).restore_instance("ord-7", await instance.get_journal())
    assert await restored.query_state() == await instance.query_state()
    print(f"{await instance.status()}: {await instance.query_state()}")


if __name__ == "__main__":
    asyncio.run(main())
