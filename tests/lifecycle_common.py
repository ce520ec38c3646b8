"""Workflows and fixtures shared by the lifecycle tests: every test runs over the memory
store, SQLite and PostgreSQL (a fresh schema each)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pg import fresh_schema, require_postgres

from workflows4py import WIO, SignalDef, Workflow
from workflows4py.runtime import Runtime
from workflows4py.stores import MemoryStore
from workflows4py.testing import TestClock

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Order:
    sku: str
    qty: int
    paid: bool = False


@dataclass(frozen=True)
class Paid:
    amount: int


@dataclass(frozen=True)
class Pay:
    amount: int


pay = SignalDef("order.pay", request=Pay, response=str)


class Orders(Workflow[Order, Paid]):
    id = "orders"
    take_payment = (
        WIO.handle_signal(pay, input=Order)
        .purely(lambda o, r: Paid(r.amount), event=Paid)
        .handle_event(lambda o, e: Order(o.sku, o.qty, paid=True))
        .produce_response(lambda o, e, r: f"paid {e.amount}")
    )
    ship_later = WIO.timer(timedelta(days=1), input=Order, name="Ship Later")
    definition = take_payment >> ship_later


@dataclass(frozen=True)
class Ticket:
    text: str
    closed: bool = False


@dataclass(frozen=True)
class Closed:
    why: str


@dataclass(frozen=True)
class Close:
    why: str


close = SignalDef("ticket.close", request=Close)


def closing(ticket: Ticket, request: Close) -> Closed:
    if not request.why:
        raise ValueError("a reason is needed")
    return Closed(request.why)


class Tickets(Workflow[Ticket, Closed]):
    id = "tickets"
    initial_state = Ticket("(no text)")
    definition = (
        WIO.handle_signal(close, input=Ticket)
        .purely(closing, event=Closed)
        .handle_event(lambda t, e: Ticket(t.text, closed=True))
        .void_response()
    )


@dataclass(frozen=True)
class Job:
    tries: int = 0


@dataclass(frozen=True)
class Worked:
    attempt: int


FAILURES: list[str] = []
"""Failures the Flaky step raises next, one per attempt (a test fills it)."""


def attempt(job: Job) -> Worked:
    if FAILURES:
        raise RuntimeError(FAILURES.pop(0))
    return Worked(job.tries + 1)


class Flaky(Workflow[Job, Worked]):
    id = "flaky"
    initial_state = Job()
    do_work = WIO.run_io(attempt).handle_event(lambda j, e: Job(e.attempt))
    definition = do_work


Factory = Callable[..., Runtime]

STORES = ["memory", "sqlite", "postgres"]


@contextmanager
def deployments(kind: str, tmp_path: Path) -> Iterator[Factory]:
    """``deploy(workflows, clock, *, memory=None, **options)``: a runtime of ``workflows`` over
    the test's database of ``kind`` (one of STORES; a fresh PostgreSQL schema); each call is
    another deployment over the same data (on ``memory``: the data of that store, else a new
    one's)."""

    def deploy(
        workflows: Sequence[type[Workflow[Any, Any]]],
        clock: TestClock,
        *,
        memory: MemoryStore | None = None,
        **options: Any,
    ) -> Runtime:
        if kind == "memory":
            store = MemoryStore() if memory is None else memory.share()
            return Runtime(store, workflows, clock=clock, **options)
        if kind == "sqlite":
            return Runtime.sqlite(tmp_path / "app.db", workflows, clock=clock, **options)
        return Runtime.postgres(conninfo, workflows, schema=schema, clock=clock, **options)

    if kind != "postgres":
        yield deploy
        return
    conninfo = require_postgres()
    with fresh_schema(conninfo) as schema:
        yield deploy


@pytest.fixture(params=STORES)
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    with deployments(request.param, tmp_path) as deploy:

        def build(clock: TestClock, *, like: Runtime | None = None, **options: Any) -> Runtime:
            """A runtime over the test's database; ``like``: another one over the same data,
            as a second process would open it."""
            memory = None
            if like is not None and isinstance(like.store, MemoryStore):
                memory = like.store
            return deploy([Orders, Tickets, Flaky], clock, memory=memory, **options)

        yield build


@pytest.fixture
async def runtime(make: Factory) -> AsyncIterator[Runtime]:
    async with make(TestClock(T0)) as rt:
        yield rt
