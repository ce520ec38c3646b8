"""Claims of docs/errors.md, checked through the public API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from claims_common import Counted, Poke, St, Still, poke, poked

import workflows4py
from workflows4py import (
    WIO,
    CodecError,
    DecodeError,
    DefinitionError,
    EffectContractError,
    EncodeError,
    ExecutionError,
    InMemoryRuntime,
    InstanceNotFound,
    InvalidInstanceId,
    InvalidSignalRequest,
    JournalError,
    LintError,
    SignalDef,
    StoreError,
    UnexpectedEvent,
    UnexpectedSignal,
    Workflow,
    WorkflowError,
)
from workflows4py.testing import TestClock


@pytest.mark.parametrize(
    ("error", "parents"),
    [
        (WorkflowError, (Exception,)),
        (DefinitionError, (WorkflowError,)),
        (CodecError, (WorkflowError,)),
        (EncodeError, (CodecError,)),
        (DecodeError, (CodecError,)),
        (InvalidInstanceId, (WorkflowError, ValueError)),
        (InstanceNotFound, (WorkflowError, LookupError)),
        (InvalidSignalRequest, (WorkflowError, TypeError)),
        (EffectContractError, (WorkflowError, TypeError)),
        (ExecutionError, (WorkflowError,)),
        (JournalError, (WorkflowError,)),
        (UnexpectedEvent, (JournalError,)),
        (LintError, (WorkflowError,)),
        (StoreError, (WorkflowError,)),
    ],
)
def test_the_exception_tree(error: type[Exception], parents: tuple[type[Exception], ...]) -> None:
    assert all(issubclass(error, parent) for parent in parents)


def test_unexpected_signal_is_a_value_not_an_exception() -> None:
    assert not issubclass(UnexpectedSignal, BaseException)
    assert "UnexpectedSignal" in workflows4py.__all__


async def test_arguments_of_the_wrong_kind_raise_plain_type_and_value_errors() -> None:
    bad: Any = 42
    with pytest.raises(TypeError) as wrong_type:
        InMemoryRuntime(bad, initial_state=St())
    assert not isinstance(wrong_type.value, WorkflowError)
    with pytest.raises(ValueError, match="non-negative") as wrong_value:
        TestClock().advance(timedelta(seconds=-1))
    assert not isinstance(wrong_value.value, WorkflowError)

    instance = await InMemoryRuntime(Still, initial_state=St()).create_instance("x")
    with pytest.raises(TypeError) as not_a_signal:
        await instance.deliver_signal(bad, Poke())
    assert not isinstance(not_a_signal.value, WorkflowError)


@pytest.mark.parametrize("bad", ["", "x" * 201, "a b", "a/b", "é"])
async def test_invalid_instance_ids(bad: str) -> None:
    with pytest.raises(InvalidInstanceId):
        await InMemoryRuntime(Still, initial_state=St()).create_instance(bad)


async def test_valid_instance_ids() -> None:
    runtime = InMemoryRuntime(Still, initial_state=St())
    for good in ["x" * 200, "A-z_0.9:@"]:
        assert (await runtime.create_instance(good)).id == good


async def test_restoring_an_existing_id_raises_workflow_error() -> None:
    runtime = InMemoryRuntime(Still, initial_state=St())
    await runtime.create_instance("dup")
    with pytest.raises(WorkflowError, match="already exists"):
        await runtime.restore_instance("dup", [])


async def test_events_recorded_earlier_in_the_operation_stay_recorded() -> None:
    failures = ["boom"]

    def second(s: St) -> Counted:
        if failures:
            raise RuntimeError(failures.pop())
        return Counted(s.n + 10)

    class Flow(Workflow[St, Counted]):
        first = WIO.run_io(St, lambda s: Counted(1), event=Counted).handle_event(
            lambda s, e: St(e.n)
        )
        then = WIO.run_io(second).handle_event(lambda s, e: St(e.n))
        definition = first >> then

    runtime = InMemoryRuntime(Flow, initial_state=St())
    with pytest.raises(RuntimeError, match="boom"):  # propagates unchanged
        await runtime.create_instance("e-1")
    instance = await runtime.get_instance("e-1")
    assert [e.data for e in await instance.get_journal()] == ['{"n":1}']
    assert await instance.query_state() == St(1)
    assert await instance.status() == "awaiting"  # the failed step still awaits
    await instance.wakeup()
    assert await instance.query_state() == St(11)


async def test_a_raising_event_handler_records_nothing() -> None:
    class Flow(Workflow[St, Counted]):
        definition = WIO.run_io(St, lambda s: Counted(1), event=Counted).handle_event(
            lambda s, e: 1 // 0
        )

    runtime = InMemoryRuntime(Flow, initial_state=St())
    with pytest.raises(ZeroDivisionError):
        await runtime.create_instance("e-2")
    instance = await runtime.get_instance("e-2")
    assert await instance.get_journal() == []


async def test_a_raising_signal_handler_records_nothing_and_can_be_delivered_again() -> None:
    failures = ["down"]

    def handler(s: St, r: Poke) -> Counted:
        if failures:
            raise ConnectionError(failures.pop())
        return Counted(5)

    class Flow(Workflow[St, Counted]):
        definition = (
            WIO.handle_signal(poke, input=St)
            .with_side_effects(handler)
            .handle_event(lambda s, e: St(e.n))
            .void_response()
        )

    instance = await InMemoryRuntime(Flow, initial_state=St()).create_instance("e-3")
    with pytest.raises(ConnectionError):
        await instance.deliver_signal(poke, Poke())
    assert await instance.get_journal() == []
    assert [s.id for s in await instance.expected_signals()] == ["claims.poke"]
    assert await instance.deliver_signal(poke, Poke()) is None
    assert await instance.query_state() == St(5)


async def test_a_failed_instance_answers_redeliveries_and_refuses_new_signals() -> None:
    other = SignalDef("claims.other", request=Poke)

    class Flow(Workflow[St, Counted]):
        definition = poked(lambda s: Counted(1)) >> WIO.fail("refused")

    runtime = InMemoryRuntime(Flow, initial_state=St())
    instance = await runtime.create_instance("e-4")
    assert await instance.deliver_signal(poke, Poke()) is None
    assert await instance.status() == "failed"
    assert (await instance.get_progress()).result == workflows4py.Err("refused")
    assert await instance.deliver_signal(poke, Poke()) is None  # a redelivery
    assert isinstance(await instance.deliver_signal(other, Poke()), UnexpectedSignal)
    again = await InMemoryRuntime(Flow, initial_state=St()).restore_instance(
        "e-4", await instance.get_journal()
    )
    assert await again.status() == "failed"


async def test_an_effect_returning_an_undeclared_class_records_nothing() -> None:
    def wrong(s: St) -> Any:
        return "not an event"

    class Flow(Workflow[St, Counted]):
        definition = WIO.run_io(wrong, event=Counted).handle_event(lambda s, e: St(e.n))

    runtime = InMemoryRuntime(Flow, initial_state=St())
    with pytest.raises(EffectContractError):
        await runtime.create_instance("e-5")
    assert await (await runtime.get_instance("e-5")).get_journal() == []


async def test_a_fork_without_a_matching_branch_is_an_execution_error() -> None:
    fork = WIO.fork(St).when(lambda s: s.n > 0, WIO.pure(St, lambda s: s), name="Positive").done()

    class Flow(Workflow[St, Counted]):
        definition = fork

    with pytest.raises(ExecutionError):
        await InMemoryRuntime(Flow, initial_state=St()).create_instance("e-6")
