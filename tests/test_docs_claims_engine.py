"""Claims of docs/engine.md, checked through the public API."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from claims_common import Counted, Poke, St, counting, on_count, poke, poked

from workflows4py import (
    WIO,
    InMemoryRuntime,
    JournalError,
    Ok,
    RetryAgain,
    RetryFailure,
    Workflow,
    WorkflowError,
    current_step,
    type_tag,
)
from workflows4py.engine import Execution, Record, RunEffect
from workflows4py.testing import TestClock


@type_tag("claims.Tagged")
@dataclass(frozen=True)
class Tagged:
    n: int


class Outer:
    @dataclass(frozen=True)
    class Nested:
        n: int


@dataclass(frozen=True)
class Failed:
    at: datetime


async def test_journal_entries_sequence_tag_and_clock() -> None:
    class Flow(Workflow[St, Counted | Tagged | Outer.Nested]):
        definition = (
            counting()
            >> WIO.run_io(St, lambda s: Tagged(s.n), event=Tagged).handle_event(lambda s, e: s)
            >> WIO.run_io(St, lambda s: Outer.Nested(s.n), event=Outer.Nested).handle_event(
                lambda s, e: s
            )
            >> WIO.timer(timedelta(hours=1), input=St, name="Wait")
        )

    clock = TestClock(datetime(2024, 6, 1, 12, 0, tzinfo=UTC))
    runtime = InMemoryRuntime(Flow, initial_state=St(), clock=clock)
    instance = await runtime.create_instance("j-1")
    clock.advance(timedelta(hours=1))
    await runtime.run_due_wakeups()
    journal = await instance.get_journal()
    assert [e.sequence for e in journal] == [1, 2, 3, 4, 5]
    assert [e.type for e in journal] == [
        "Counted",
        "claims.Tagged",
        "Outer.Nested",
        "workflows4py.TimerStarted",
        "workflows4py.TimerReleased",
    ]
    assert journal[0].data == '{"n":1}'
    start = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    assert [e.recorded_at for e in journal] == [start] * 4 + [start + timedelta(hours=1)]


async def test_only_effects_signals_timers_checkpoints_and_stateful_retries_record() -> None:
    calls: list[int] = []

    def flaky(s: St) -> Counted:
        calls.append(s.n)
        if len(calls) == 1:
            raise ConnectionError("once")
        return Counted(s.n + 1)

    class Flow(Workflow[St, Counted | Tagged]):
        definition = (
            WIO.pure(St, lambda s: St(s.n + 1))
            >> WIO.value(St(5)).map(lambda s: St(s.n * 2)).map_input(lambda s: s)
            >> WIO.pure(St, lambda s: s).flat_map(lambda s: WIO.pure(St, lambda t: t))
            >> WIO.choose(St, lambda s: s.n > 0, WIO.pure(St, lambda s: s), WIO.end())
            >> WIO.repeat(WIO.pure(St, lambda s: St(s.n + 1))).until(lambda s: s.n >= 12)
            >> WIO.run_io(flaky).handle_event(on_count).retry(timedelta(0))
            >> WIO.pure(St, lambda s: s).checkpointed(
                lambda i, o: Tagged(o.n), lambda i, e: St(e.n), event=Tagged
            )
        )

    runtime = InMemoryRuntime(Flow, initial_state=St())
    instance = await runtime.create_instance("r-1")
    await runtime.run_due_wakeups()  # the stateless retry's next attempt, due at once
    assert await instance.query_state() == St(13)
    assert [e.type for e in await instance.get_journal()] == ["Counted", "claims.Tagged"]


async def test_the_live_run_applies_the_decoded_event() -> None:
    returned: list[Counted] = []
    received: list[Counted] = []

    def produce(s: St) -> Counted:
        returned.append(Counted(7))
        return returned[-1]

    def handle(s: St, e: Counted) -> St:
        received.append(e)
        return St(e.n)

    class Flow(Workflow[St, Counted]):
        definition = WIO.run_io(produce).handle_event(handle)

    await InMemoryRuntime(Flow, initial_state=St()).create_instance("d-1")
    assert received == returned
    assert received[0] is not returned[0]  # a copy, decoded from the journal's JSON


async def test_a_journal_with_a_gap_is_a_journal_error() -> None:
    class Flow(Workflow[St, Counted]):
        definition = counting() >> poked()

    runtime = InMemoryRuntime(Flow, initial_state=St())
    instance = await runtime.create_instance("g-1")
    await instance.deliver_signal(poke, Poke())
    journal = await instance.get_journal()
    fresh = InMemoryRuntime(Flow, initial_state=St())
    for broken, first_wrong in [
        ([journal[0], replace(journal[1], sequence=3)], 3),
        ([replace(journal[0], sequence=0), journal[1]], 0),
        ([journal[0], replace(journal[1], sequence=1)], 1),
    ]:
        with pytest.raises(JournalError) as info:
            await fresh.restore_instance("g-1", broken)
        assert (info.value.instance_id, info.value.sequence) == ("g-1", first_wrong)
    assert await fresh.instance_ids() == []


async def test_an_effect_that_raised_runs_again_with_the_same_idempotency_key() -> None:
    keys: list[str] = []

    def reserve(s: St) -> Counted:
        keys.append(current_step().idempotency_key)
        if len(keys) == 1:
            raise ConnectionError("warehouse down")
        return Counted(1)

    class Reservation(Workflow[St, Counted]):
        definition = counting() >> WIO.run_io(reserve).handle_event(on_count)

    runtime = InMemoryRuntime(Reservation, initial_state=St())
    with pytest.raises(ConnectionError):
        await runtime.create_instance("k-1")
    await (await runtime.get_instance("k-1")).wakeup()
    assert keys == ["Reservation:k-1:2", "Reservation:k-1:2"]  # default name: the class name


def test_current_step_outside_a_step_is_a_workflow_error() -> None:
    with pytest.raises(WorkflowError):
        current_step()


async def test_progress_fields_and_executed_steps() -> None:
    class Flow(Workflow[St, Counted]):
        unnamed = WIO.pure(St, lambda s: s).named("Prepared")
        definition = WIO.pure(St, lambda s: s) >> unnamed >> counting().named("Count")

    instance = await InMemoryRuntime(Flow, initial_state=St()).create_instance("p-1")
    progress = await instance.get_progress()
    assert progress.kind == "sequence"
    assert progress.name is None
    assert [p.kind for p in progress.children] == ["pure", "pure", "run_io"]
    # the unnamed pure step is left out; completion order is kept
    assert [p.name for p in progress.executed_steps()] == ["Prepared", "Count"]
    indexes = [p.index for p in progress.children if p.index is not None]
    assert len(indexes) == 3
    assert indexes == sorted(indexes)
    assert progress.index is not None
    assert progress.index > max(indexes)  # the parent completes after its children
    assert progress.result == Ok(St(1))


def test_next_action_honours_a_retry_delay_that_next_effect_ignores() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    later = now + timedelta(minutes=5)

    def on_error(failure: RetryFailure[St, int]) -> Failed:
        return Failed(failure.now + timedelta(minutes=5))

    def decide(s: St, event: Failed, attempts: int) -> RetryAgain[int]:
        return RetryAgain(attempts + 1, event.at)

    step: WIO[St, Any, St] = counting().retry_stateful(
        initial=0, on_error=on_error, handle_event=decide
    )
    execution = Execution.start(step, St())
    assert isinstance(execution.next_action(now), RunEffect)
    waiting = execution.apply_event(Failed(later))
    assert waiting is not None
    assert waiting.next_action(now) is None
    assert waiting.next_effect() is not None  # ignores the delay
    assert waiting.wakeup_at() == later
    assert isinstance(waiting.next_action(later), RunEffect)


def test_next_action_records_a_checkpoint_computed_by_the_engine() -> None:
    step = WIO.pure(St, lambda s: St(s.n + 1)).checkpointed(
        lambda i, o: Counted(o.n), lambda i, e: St(e.n), event=Counted
    )
    execution = Execution.start(step, St())
    action = execution.next_action(datetime(2024, 1, 1, tzinfo=UTC))
    assert isinstance(action, Record)
    assert action.event == Counted(1)
    done = execution.apply_event(action.event)
    assert done is not None
    assert done.status == "finished"
    assert done.state == St(1)


def test_after_a_failure_the_error_handler_awaits() -> None:
    handler: WIO[Any, Any, St] = (
        WIO.handle_signal(poke, input=object)
        .purely(lambda c, r: Counted(9), event=Counted)
        .handle_event(lambda c, e: St(e.n))
        .void_response()
    )
    flow = WIO.fail("nope").handle_error_with(handler)
    execution = Execution.start(flow, St())
    assert [s.id for s in execution.expected_signals()] == ["claims.poke"]
    assert execution.expected_events() == (Counted,)
    done = execution.apply_event(Counted(9))
    assert done is not None
    assert done.state == St(9)
