"""The in-memory runtime: operations, journal, replay, errors, serialization of operations."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from dataclasses import dataclass

import pytest

from workflows4py import (
    WIO,
    DecodeError,
    EffectContractError,
    InMemoryRuntime,
    InstanceNotFound,
    InvalidInstanceId,
    InvalidSignalRequest,
    JournalEntry,
    SignalDef,
    StepContext,
    UnexpectedEvent,
    UnexpectedSignal,
    Workflow,
    WorkflowError,
    current_step,
)
from workflows4py.testing import ReplayCheckedInstance, TestClock, assert_replay_matches


@dataclass(frozen=True)
class Tally:
    total: int
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Deposited:
    amount: int


@dataclass(frozen=True)
class Noted:
    text: str
    key: str


@dataclass(frozen=True)
class Deposit:
    amount: int


@dataclass(frozen=True)
class Receipt:
    total: int


deposit_signal = SignalDef("deposit", request=Deposit, response=Receipt)
close_signal = SignalDef("close", request=Deposit)


class Services:
    """Side effects the workflow calls, with call counts and injectable failures."""

    def __init__(self) -> None:
        self.note_calls = 0
        self.deposit_calls = 0
        self.fail_notes = 0
        self.contexts: list[StepContext] = []
        self.gate: asyncio.Event | None = None


SERVICES = Services()


@pytest.fixture(autouse=True)
def fresh_services() -> None:
    global SERVICES  # noqa: PLW0603 - the workflow below reads the module-level services
    SERVICES = Services()


async def write_note(state: Tally) -> Noted:
    SERVICES.note_calls += 1
    SERVICES.contexts.append(current_step())
    if SERVICES.gate is not None:
        await SERVICES.gate.wait()
    if SERVICES.fail_notes > 0:
        SERVICES.fail_notes -= 1
        raise ConnectionError("note service down")
    return Noted(f"total={state.total}", current_step().idempotency_key)


def on_noted(state: Tally, event: Noted) -> Tally:
    return Tally(state.total, (*state.notes, event.text))


def take_deposit(state: Tally, request: Deposit) -> Deposited:
    SERVICES.deposit_calls += 1
    return Deposited(request.amount)


def on_deposit(state: Tally, event: Deposited) -> Tally:
    return Tally(state.total + event.amount, state.notes)


class Account(Workflow[Tally, Deposited | Noted]):
    first_deposit = (
        WIO.handle_signal(deposit_signal, input=Tally)
        .with_side_effects(take_deposit)
        .handle_event(on_deposit)
        .produce_response(lambda state, event, request: Receipt(state.total + event.amount))
    )
    note = WIO.run_io(write_note).handle_event(on_noted)
    second_deposit = first_deposit.named("Second Deposit")
    closing = (
        WIO.handle_signal(close_signal, input=Tally)
        .purely(lambda state, request: Deposited(request.amount))
        .handle_event(on_deposit)
        .void_response()
    )
    definition = first_deposit >> note >> second_deposit >> closing >> WIO.end()


def new_runtime() -> InMemoryRuntime[Tally, Deposited | Noted]:
    return InMemoryRuntime(Account, initial_state=Tally(0), clock=TestClock())


async def test_scenario_with_replay_check_after_every_step() -> None:
    runtime = new_runtime()
    acc = await ReplayCheckedInstance.create(runtime, "acc-1")
    assert await acc.query_state() == Tally(0)
    assert [s.id for s in await acc.expected_signals()] == ["deposit"]
    assert await acc.deliver_signal(deposit_signal, Deposit(5)) == Receipt(5)
    assert await acc.query_state() == Tally(5, ("total=5",))  # the note ran right after
    assert await acc.deliver_signal(deposit_signal, Deposit(7)) == Receipt(12)
    assert await acc.deliver_signal(close_signal, Deposit(1)) is None
    assert await acc.query_state() == Tally(13, ("total=5",))
    assert await acc.status() == "awaiting"  # ends in WIO.end()
    assert await acc.get_events() == [
        Deposited(5),
        Noted("total=5", "Account:acc-1:2"),
        Deposited(7),
        Deposited(1),
    ]
    assert SERVICES.note_calls == 1
    assert SERVICES.deposit_calls == 2
    steps = (await acc.get_progress()).executed_steps()
    assert [s.name for s in steps] == ["First Deposit", "Note", "Second Deposit", "Closing"]


async def test_journal_entries_have_sequence_tag_json_and_time() -> None:
    clock = TestClock()
    runtime = InMemoryRuntime(Account, initial_state=Tally(0), clock=clock)
    acc = await runtime.create_instance("acc-1")
    await acc.deliver_signal(deposit_signal, Deposit(5))
    journal = await acc.get_journal()
    assert [(e.sequence, e.type, e.data) for e in journal] == [
        (1, "Deposited", '{"amount":5}'),
        (2, "Noted", '{"text":"total=5","key":"Account:acc-1:2"}'),
    ]
    assert all(e.recorded_at == clock.now() for e in journal)


async def test_effect_context_gives_a_stable_idempotency_key() -> None:
    runtime = new_runtime()
    SERVICES.fail_notes = 1
    acc = await runtime.create_instance("acc-1")
    with pytest.raises(ConnectionError):
        await acc.deliver_signal(deposit_signal, Deposit(5))
    await acc.wakeup()
    keys = [c.idempotency_key for c in SERVICES.contexts]
    assert keys == ["Account:acc-1:2", "Account:acc-1:2"]  # the retry reuses the key
    assert SERVICES.contexts[0].step == "Note"
    with pytest.raises(WorkflowError, match="only available while a workflow step runs"):
        current_step()


async def test_effect_failure_propagates_and_persists_nothing() -> None:
    runtime = new_runtime()
    SERVICES.fail_notes = 2
    acc = await runtime.create_instance("acc-1")
    with pytest.raises(ConnectionError):
        await acc.deliver_signal(deposit_signal, Deposit(5))
    # the signal itself is recorded; the failed effect is not
    assert await acc.get_events() == [Deposited(5)]
    assert await acc.query_state() == Tally(5)
    with pytest.raises(ConnectionError):
        await acc.wakeup()
    assert len(await acc.get_journal()) == 1
    await acc.wakeup()
    assert await acc.query_state() == Tally(5, ("total=5",))
    assert SERVICES.note_calls == 3
    await assert_replay_matches(runtime, acc)


async def test_redelivery_recomputes_response_without_side_effects() -> None:
    runtime = new_runtime()
    acc = await runtime.create_instance("acc-1")
    await acc.deliver_signal(deposit_signal, Deposit(5))
    await acc.deliver_signal(deposit_signal, Deposit(7))
    before = await acc.get_journal()
    # both deposit steps handled "deposit": the latest one answers
    assert await acc.deliver_signal(deposit_signal, Deposit(1)) == Receipt(12)
    assert await acc.get_journal() == before
    assert SERVICES.deposit_calls == 2


async def test_unexpected_signal_is_a_value_and_changes_nothing() -> None:
    runtime = new_runtime()
    acc = await runtime.create_instance("acc-1")
    result = await acc.deliver_signal(close_signal, Deposit(1))
    assert isinstance(result, UnexpectedSignal)
    assert result.signal_id == "close"
    assert result.expected == ("deposit",)
    assert "does not expect signal 'close'" in str(result)
    assert await acc.get_journal() == []
    unknown = SignalDef("nobody-handles-this", request=Deposit)
    assert isinstance(await acc.deliver_signal(unknown, Deposit(1)), UnexpectedSignal)


async def test_wrong_request_shape_is_rejected_before_any_handler() -> None:
    runtime = new_runtime()
    acc = await runtime.create_instance("acc-1")
    with pytest.raises(InvalidSignalRequest, match="expects a request of type Deposit"):
        await acc.deliver_signal(deposit_signal, Receipt(3))  # type: ignore[misc]
    impostor = SignalDef("deposit", request=Receipt)  # same id, other request type
    with pytest.raises(InvalidSignalRequest):
        await acc.deliver_signal(impostor, Receipt(3))
    assert SERVICES.deposit_calls == 0
    assert await acc.get_journal() == []


async def test_effect_returning_a_wrong_event_records_nothing() -> None:
    def bad_effect(state: Tally) -> Noted:
        return Deposited(1)  # type: ignore[return-value]

    class Broken(Workflow[Tally, Deposited | Noted]):
        definition = WIO.run_io(bad_effect).handle_event(on_noted)

    runtime = InMemoryRuntime(Broken, initial_state=Tally(0))
    with pytest.raises(EffectContractError, match="returned Deposited, expected Noted"):
        await runtime.create_instance("b-1")
    instance = await runtime.get_instance("b-1")
    assert await instance.get_journal() == []


async def test_create_is_idempotent_and_get_requires_existence() -> None:
    runtime = new_runtime()
    a = await runtime.create_instance("acc-1")
    await a.deliver_signal(deposit_signal, Deposit(5))
    b = await runtime.create_instance("acc-1")
    assert await b.query_state() == await a.query_state()
    assert (await runtime.get_instance("acc-1")).id == "acc-1"
    with pytest.raises(InstanceNotFound):
        await runtime.get_instance("missing")
    assert await runtime.instance_ids() == ["acc-1"]


@pytest.mark.parametrize("bad", ["", "has space", "a/b", "x" * 201, "ünicode", 42])
async def test_malformed_ids_are_rejected(bad: object) -> None:
    runtime = new_runtime()
    with pytest.raises(InvalidInstanceId):
        await runtime.create_instance(bad)  # type: ignore[arg-type]
    assert await runtime.instance_ids() == []


async def test_restore_into_a_fresh_runtime_runs_no_effects() -> None:
    runtime = new_runtime()
    acc = await runtime.create_instance("acc-1")
    await acc.deliver_signal(deposit_signal, Deposit(5))
    await acc.deliver_signal(deposit_signal, Deposit(7))
    calls = (SERVICES.note_calls, SERVICES.deposit_calls)
    fresh = new_runtime()
    copy = await fresh.restore_instance("acc-1", await acc.get_journal())
    assert await copy.query_state() == await acc.query_state()
    assert await copy.get_progress() == await acc.get_progress()
    assert (SERVICES.note_calls, SERVICES.deposit_calls) == calls
    from_events = await new_runtime().restore_from_events("acc-1", await acc.get_events())
    assert await from_events.query_state() == await acc.query_state()
    with pytest.raises(WorkflowError, match="already exists"):
        await fresh.restore_instance("acc-1", [])


async def test_journal_that_does_not_fit_names_sequence_and_type() -> None:
    runtime = new_runtime()
    acc = await runtime.create_instance("acc-1")
    await acc.deliver_signal(deposit_signal, Deposit(5))
    journal = await acc.get_journal()
    swapped = [
        dataclasses.replace(journal[1], sequence=1),
        dataclasses.replace(journal[0], sequence=2),
    ]
    fresh = new_runtime()
    with pytest.raises(UnexpectedEvent) as info:
        await fresh.restore_instance("acc-1", swapped)
    assert info.value.sequence == 1
    assert info.value.event_type == "Noted"
    assert info.value.instance_id == "acc-1"
    assert "Deposited" in str(info.value)  # what was expected instead
    assert await fresh.instance_ids() == []  # nothing was created


@pytest.mark.parametrize(
    ("tag", "data", "error"),
    [
        ("Deposited", '{"amount":"five"}', DecodeError),
        ("Deposited", "{not json", DecodeError),
        ("Withdrawn", '{"amount":1}', DecodeError),
        ("Deposited", '{"amount":1,"extra":true}', DecodeError),
    ],
)
async def test_corrupt_journal_entries_are_typed_errors(
    tag: str, data: str, error: type[Exception]
) -> None:
    entry = JournalEntry(1, tag, data, TestClock().now())
    fresh = new_runtime()
    with pytest.raises(error):
        await fresh.restore_instance("acc-1", [entry])
    assert await fresh.instance_ids() == []


async def test_operations_on_one_instance_are_serialized() -> None:
    runtime = new_runtime()
    acc = await runtime.create_instance("acc-1")
    SERVICES.gate = asyncio.Event()
    first = asyncio.create_task(acc.deliver_signal(deposit_signal, Deposit(5)))
    await asyncio.sleep(0.01)
    assert await acc.status() == "running"  # the note effect is blocked on the gate
    second = asyncio.create_task(acc.deliver_signal(deposit_signal, Deposit(7)))
    await asyncio.sleep(0.01)
    assert not second.done()  # waits for the first operation, not racing it
    SERVICES.gate.set()
    assert await first == Receipt(5)
    assert await second == Receipt(12)
    assert [e.sequence for e in await acc.get_journal()] == [1, 2, 3]
    await assert_replay_matches(runtime, acc)


def test_blocking_facade_drives_the_same_runtime_from_threads() -> None:
    with new_runtime().blocking() as runtime:
        acc = runtime.create_instance("acc-1")
        assert acc.deliver_signal(deposit_signal, Deposit(5)) == Receipt(5)
        results: list[object] = []

        def deliver() -> None:
            results.append(acc.deliver_signal(deposit_signal, Deposit(1)))

        threads = [threading.Thread(target=deliver) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # exactly one thread got the fresh second deposit, the others a redelivery of it
        assert sorted(r.total for r in results if isinstance(r, Receipt)) == [6, 6, 6, 6]
        assert [e.sequence for e in acc.get_journal()] == [1, 2, 3]
        assert acc.query_state() == Tally(6, ("total=5",))
        assert acc.status() == "awaiting"
        assert [s.id for s in acc.expected_signals()] == ["close"]
        assert len(acc.get_events()) == 3
        assert acc.get_progress().executed_steps()[-1].name == "Second Deposit"
        acc.wakeup()
        assert runtime.get_instance("acc-1").id == "acc-1"
        assert runtime.instance_ids() == ["acc-1"]
        copy = new_runtime().blocking()
        try:
            assert copy.restore_instance("acc-1", acc.get_journal()).query_state() == Tally(
                6, ("total=5",)
            )
            assert copy.restore_from_events("acc-2", acc.get_events()).id == "acc-2"
        finally:
            copy.close()


def test_blocking_facade_mirrors_every_async_operation() -> None:
    from workflows4py import (
        BlockingDurableRuntime,
        BlockingInstance,
        BlockingRuntime,
        DurableRuntime,
        WorkflowInstance,
    )

    def coroutine_methods(cls: type) -> set[str]:
        return {
            name
            for name, member in vars(cls).items()
            if not name.startswith("_") and asyncio.iscoroutinefunction(member)
        }

    assert coroutine_methods(WorkflowInstance) <= set(vars(BlockingInstance))
    assert coroutine_methods(InMemoryRuntime) <= set(vars(BlockingRuntime))
    assert coroutine_methods(DurableRuntime) <= set(vars(BlockingDurableRuntime))
    assert coroutine_methods(WorkflowInstance)  # the check is not vacuous


async def test_replay_check_catches_nondeterminism() -> None:
    counter = iter(range(100))

    class Flaky(Workflow[Tally, Deposited | Noted]):
        # a "pure" step that is not: it reads a global iterator
        definition = (
            WIO.pure(Tally, lambda t: Tally(next(counter)))
            >> WIO.handle_signal(close_signal, input=Tally)
            .purely(lambda state, request: Deposited(request.amount))
            .handle_event(on_deposit)
            .void_response()
        )

    runtime = InMemoryRuntime(Flaky, initial_state=Tally(0))
    instance = await runtime.create_instance("f-1")
    with pytest.raises(AssertionError, match="differs in state"):
        await assert_replay_matches(runtime, instance)
