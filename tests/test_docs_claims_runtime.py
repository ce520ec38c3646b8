"""Claims of docs/runtime.md, checked through the public API."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from claims_common import Counted, St, counting, on_count, poked

from workflows4py import WIO, DefinitionError, InMemoryRuntime, Workflow, WorkflowError
from workflows4py.testing import TestClock

START = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


class Timed(Workflow[St, Counted]):
    wait = WIO.timer(timedelta(hours=3), input=St)
    bump = counting()
    definition = wait >> bump


async def test_the_wakeup_is_kept_in_the_registry_and_run_when_due() -> None:
    clock = TestClock(START)
    runtime = InMemoryRuntime(Timed, initial_state=St(), clock=clock)
    instance = await runtime.create_instance("t-1")
    due = START + timedelta(hours=3)
    assert await instance.next_wakeup() == due
    (row,) = (await runtime.search()).records
    assert row.next_wakeup == due
    assert await runtime.run_due_wakeups() == []  # not due yet
    clock.set(due)
    assert await runtime.run_due_wakeups() == ["t-1"]
    assert await instance.next_wakeup() is None
    assert (await runtime.search()).records[0].next_wakeup is None


async def test_a_restored_timer_is_scheduled_from_the_journal_and_nothing_runs() -> None:
    clock = TestClock(START)
    live = InMemoryRuntime(Timed, initial_state=St(), clock=clock)
    instance = await live.create_instance("t-2")
    journal = await instance.get_journal()
    clock.advance(timedelta(hours=1))  # the restore happens later: the journal's instants count
    restarted = InMemoryRuntime(Timed, initial_state=St(), clock=clock)
    copy = await restarted.restore_instance("t-2", journal)
    assert (await restarted.search()).records[0].next_wakeup == START + timedelta(hours=3)
    assert await copy.next_wakeup() == START + timedelta(hours=3)
    clock.advance(timedelta(hours=2))
    assert await restarted.run_due_wakeups() == ["t-2"]
    assert await copy.query_state() == St(1)


async def test_restoring_runs_no_pending_effect_until_wakeup() -> None:
    calls: list[int] = []

    def second(s: St) -> Counted:
        calls.append(s.n)
        return Counted(s.n + 10)

    class Flow(Workflow[St, Counted]):
        definition = poked(lambda s: Counted(1)) >> WIO.run_io(second).handle_event(on_count)

    runtime = InMemoryRuntime(Flow, initial_state=St())
    copy = await runtime.restore_from_events("w-1", [Counted(1)])
    assert calls == []
    assert await copy.query_state() == St(1)
    assert await copy.status() == "awaiting"
    await copy.wakeup()
    assert calls == [1]
    assert await copy.query_state() == St(11)
    assert await copy.result() is not None


async def test_instance_ids_are_in_creation_order() -> None:
    runtime = InMemoryRuntime(Timed, initial_state=St())
    for instance_id in ["c", "a", "b"]:
        await runtime.create_instance(instance_id)
    await runtime.restore_instance("0", [])
    assert await runtime.instance_ids() == ["c", "a", "b", "0"]


def test_creating_a_runtime_builds_the_codecs() -> None:
    @dataclass(frozen=True)
    class Weird:
        handle: object = None
        lock: asyncio.Lock | None = None

    class Flow(Workflow[St, Weird]):
        definition = WIO.run_io(St, lambda s: Weird(), event=Weird).handle_event(lambda s, e: s)

    with pytest.raises(DefinitionError):
        InMemoryRuntime(Flow, initial_state=St())


def test_a_blocking_call_from_inside_a_step_is_a_workflow_error() -> None:
    seen: list[BaseException] = []
    facade = None

    def peek(s: St) -> Counted:
        assert facade is not None
        try:
            facade.instance_ids()
        except WorkflowError as error:
            seen.append(error)
        return Counted(1)

    class Flow(Workflow[St, Counted]):
        definition = WIO.run_io(peek).handle_event(on_count)

    with InMemoryRuntime(Flow, initial_state=St()).blocking() as runtime:
        facade = runtime
        instance = runtime.create_instance("b-1")
        assert instance.query_state() == St(1)
    assert len(seen) == 1
    assert "inside a workflow step" in str(seen[0])


def test_the_blocking_facade_offers_the_runtime_and_instance_operations() -> None:
    clock = TestClock(START)
    with InMemoryRuntime(Timed, initial_state=St(), clock=clock).blocking() as runtime:
        instance = runtime.create_instance("b-2")
        assert runtime.get_instance("b-2").id == "b-2"
        assert instance.next_wakeup() == START + timedelta(hours=3)
        clock.advance(timedelta(hours=3))
        assert runtime.run_due_wakeups() == ["b-2"]
        assert instance.status() == "finished"
        assert instance.result() is not None
        assert runtime.instance_ids() == ["b-2"]
        copy = runtime.restore_instance("b-3", instance.get_journal())
        assert copy.get_progress() == instance.get_progress()
        assert copy.get_events() == instance.get_events()
        assert copy.expected_signals() == ()
