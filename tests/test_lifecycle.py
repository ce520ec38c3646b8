"""One runtime for many workflows; start with input (idempotent, with a first signal);
terminate. From the user's side, over the memory store and SQLite."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from lifecycle_common import (
    T0,
    Close,
    Factory,
    Flaky,
    Order,
    Orders,
    Paid,
    Pay,
    Ticket,
    Tickets,
    close,
    pay,
)

from workflows4py import (
    WIO,
    DefinitionError,
    InstanceClosed,
    InstanceExists,
    Terminated,
    UnexpectedSignal,
    Workflow,
    WorkflowError,
)
from workflows4py.runtime import Runtime
from workflows4py.stores import SearchQuery
from workflows4py.testing import TestClock

pytest_plugins = ("lifecycle_common",)  # the fixtures make and runtime


async def test_one_runtime_runs_two_workflows_over_one_store(runtime: Runtime) -> None:
    order = await runtime.start(Orders, "o-1", initial_state=Order("book", 2))
    ticket = await runtime.start(Tickets, "o-1")  # same instance id, another workflow
    assert await order.query_state() == Order("book", 2)
    assert await ticket.query_state() == Ticket("(no text)")
    assert runtime.workflows == (Orders, Tickets, Flaky)
    assert {h.store for h in runtime.hosts} == {runtime.store}
    page = await runtime.search(SearchQuery())
    assert sorted((r.key.workflow, r.key.instance_id) for r in page.records) == [
        ("orders", "o-1"),
        ("tickets", "o-1"),
    ]


def test_two_workflows_with_one_id_are_a_definition_error() -> None:
    class Other(Workflow[Order, Paid]):
        id = "orders"
        definition = Orders.definition

    with pytest.raises(DefinitionError, match="share the id 'orders'"):
        Runtime.memory([Orders, Other])


async def test_start_is_idempotent_for_an_equal_initial_state(runtime: Runtime) -> None:
    first = await runtime.start(Orders, "o-1", initial_state=Order("book", 2))
    again = await runtime.start(Orders, "o-1", initial_state=Order("book", 2))
    assert again.id == first.id
    journal = await again.get_journal()
    assert [e.type for e in journal] == ["workflows4py.Started"]
    with pytest.raises(InstanceExists, match="another initial state"):
        await runtime.start(Orders, "o-1", initial_state=Order("pen", 1))


async def test_the_initial_state_is_read_back_from_the_journal(make: Factory) -> None:
    clock = TestClock(T0)
    async with make(clock) as rt:
        await rt.start(Orders, "o-7", initial_state=Order("lamp", 3))
    if isinstance(rt.store, type(Runtime.memory([Orders]).store)):
        return  # the memory store does not outlive its runtime
    async with make(clock) as fresh:
        again = await fresh.get(Orders, "o-7")
        assert await again.query_state() == Order("lamp", 3)
        assert await again.get_events() == []  # the start entry is no event


async def test_start_needs_an_initial_state_when_there_is_no_default(runtime: Runtime) -> None:
    with pytest.raises(WorkflowError, match="give initial_state"):
        await runtime.start(Orders, "o-2")


async def test_start_with_a_first_signal(runtime: Runtime) -> None:
    order = await runtime.start(
        Orders, "o-3", initial_state=Order("book", 1), signal=(pay, Pay(10))
    )
    assert await order.query_state() == Order("book", 1, paid=True)
    # a client retrying after a timeout: no second instance, no second payment
    again = await runtime.start(
        Orders, "o-3", initial_state=Order("book", 1), signal=(pay, Pay(10))
    )
    assert [type(e).__name__ for e in await again.get_events()] == ["Paid", "TimerStarted"]


async def test_terminate_records_stops_and_refuses_signals(make: Factory) -> None:
    clock = TestClock(T0)
    async with make(clock) as runtime:
        order = await runtime.start(
            Orders, "o-4", initial_state=Order("book", 1), signal=(pay, Pay(5))
        )
        assert await order.next_wakeup() == T0 + timedelta(days=1)
        assert await runtime.of(Orders).terminate("o-4", "customer cancelled") is True
        assert await order.status() == "terminated"
        assert await order.next_wakeup() is None
        events = await order.get_events()
        assert events[-1] == Terminated("customer cancelled", T0)
        answer = await order.deliver_signal(pay, Pay(5))
        assert isinstance(answer, UnexpectedSignal)
        assert answer.terminated == "customer cancelled"
        assert "terminated (customer cancelled)" in str(answer)
        clock.advance(timedelta(days=2))
        assert await runtime.run_due_wakeups() == []
        (record,) = (await runtime.search(SearchQuery(workflow="orders"))).records
        assert record.status == "terminated"
        assert record.next_wakeup is None
        assert await runtime.of(Orders).terminate("o-4", "again") is False


async def test_a_finished_instance_cannot_be_terminated(runtime: Runtime) -> None:
    ticket = await runtime.start(Tickets, "t-1", signal=(close, Close("done")))
    assert await ticket.status() == "finished"
    with pytest.raises(InstanceClosed, match="it is finished"):
        await runtime.of(Tickets).terminate("t-1", "too late")


async def test_wait_result_returns_the_final_state_or_raises(runtime: Runtime) -> None:
    import asyncio

    ticket = await runtime.start(Tickets, "t-2", initial_state=Ticket("printer"))
    with pytest.raises(TimeoutError):
        await ticket.wait_result(timeout=0.05)

    async def close_soon() -> None:
        await asyncio.sleep(0.05)
        await ticket.deliver_signal(close, Close("fixed"))

    closer = asyncio.create_task(close_soon())
    assert await ticket.wait_result(timeout=5) == Ticket("printer", closed=True)
    await closer
    order = await runtime.start(Orders, "o-9", initial_state=Order("book", 1))
    await runtime.of(Orders).terminate("o-9", "no stock")
    with pytest.raises(InstanceClosed, match="terminated"):
        await order.wait_result(timeout=1)


async def test_one_worker_serves_every_workflow_of_the_runtime(make: Factory) -> None:
    from workflows4py import Worker

    clock = TestClock(T0)
    async with make(clock) as runtime:
        await runtime.start(Orders, "o-1", initial_state=Order("a", 1), signal=(pay, Pay(1)))
        await runtime.start(Tickets, "t-1")
        worker = Worker(runtime)
        assert {r.workflow for r in worker.runtimes} == {Orders, Tickets, Flaky}
        clock.advance(timedelta(days=2))
        assert await worker.run_once() == 1
        order = await runtime.get(Orders, "o-1")
        assert await order.status() == "finished"


async def test_a_database_of_the_previous_schema_migrates_and_can_terminate(
    tmp_path: Path,
) -> None:
    import shutil

    from workflows4py.examples import pull_request as pr

    db = tmp_path / "old.db"
    shutil.copyfile(Path(__file__).parent / "fixtures" / "layout_v0.db", db)
    # the instances of that file started from the runtime's initial state of the time
    runtime = Runtime.sqlite(db, [pr.PullRequest], initial_states={pr.PullRequest: pr.Empty()})
    async with runtime:
        assert await runtime.of(pr.PullRequest).terminate("pr-1", "abandoned") is True
        (record,) = (await runtime.search(SearchQuery(status=["terminated"]))).records
        assert record.key.instance_id == "pr-1"
        assert (await runtime.get(pr.PullRequest, "pr-2")).id == "pr-2"


@dataclass(frozen=True)
class Step:
    n: int


@dataclass(frozen=True)
class Stepped:
    n: int


async def test_terminate_waits_for_an_operation_under_way(make: Factory) -> None:
    import asyncio

    release = asyncio.Event()
    entered = asyncio.Event()

    async def slow(s: Step) -> Stepped:
        entered.set()
        await release.wait()
        return Stepped(s.n + 1)

    class Slow(Workflow[Step, Stepped]):
        id = "slow"
        definition = WIO.run_io(slow).handle_event(lambda s, e: Step(e.n)) >> WIO.timer(
            timedelta(hours=1), input=Step, name="Pause"
        )

    async with (
        make(TestClock(T0)) as shared,
        Runtime(shared.store, [Slow], clock=TestClock(T0)) as runtime,
    ):
        starting = asyncio.create_task(runtime.start(Slow, "s-1", initial_state=Step(0)))
        await entered.wait()
        stopping = asyncio.create_task(runtime.of(Slow).terminate("s-1", "operator"))
        await asyncio.sleep(0.05)
        assert not stopping.done()  # it waits for the effect's operation
        release.set()
        instance = await starting
        assert await stopping is True
        events = await instance.get_events()
        assert [type(e).__name__ for e in events] == ["Stepped", "TimerStarted", "Terminated"]
        assert await instance.status() == "terminated"


def _kind(i: int) -> type[Workflow[Step, Stepped]]:
    class Kind(Workflow[Step, Stepped]):
        id = f"kind-{i}"
        definition = WIO.pure(Step, lambda s: s)

    return Kind


def test_one_store_and_so_one_pool_serves_twenty_workflow_types() -> None:
    runtime = Runtime.postgres("postgresql://unused@127.0.0.1/none", [_kind(i) for i in range(20)])
    assert len(runtime.hosts) == 20
    assert {id(host.store) for host in runtime.hosts} == {id(runtime.store)}


async def test_wait_result_polls_every_50_ms_then_less_often_up_to_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pauses: list[float] = []

    class Enough(Exception):
        pass

    async def recorded(delay: float) -> None:
        pauses.append(delay)
        if len(pauses) == 8:
            raise Enough

    async with Runtime.memory([Tickets]) as runtime:
        ticket = await runtime.start(Tickets, "t-9")
        # between two looks it waits for a change in the store, at most that long
        monkeypatch.setattr(runtime.store, "wait_for_change", recorded)
        with pytest.raises(Enough):
            await ticket.wait_result()
    assert pauses == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]


async def test_the_command_line_loads_a_runtime_as_all_its_workflows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys
    import types

    from workflows4py.cli import load_runtimes

    runtime = Runtime.memory([Orders, Tickets])
    app = types.ModuleType("lifecycle_app")
    setattr(app, "runtime", runtime)  # noqa: B010 - a module built in the test
    monkeypatch.setitem(sys.modules, "lifecycle_app", app)
    runtimes = await load_runtimes("lifecycle_app:runtime")
    assert [r.workflow for r in runtimes] == [Orders, Tickets]
    assert {id(r.store) for r in runtimes} == {id(runtime.store)}
