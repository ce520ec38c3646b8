"""The pure engine, driven by hand: no runtime, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from workflows4py import WIO, Caught, DefinitionError, Err, Ok, Result, SignalDef, render
from workflows4py.engine import Execution, FreshSignal, Redelivery


@dataclass(frozen=True)
class Count:
    n: int


@dataclass(frozen=True)
class Added:
    amount: int


@dataclass(frozen=True)
class AddRequest:
    amount: int


@dataclass(frozen=True)
class TooBig:
    limit: int


add_signal = SignalDef("add", request=AddRequest, response=Count)


def add_effect(state: Count) -> Added:
    return Added(1)


def apply_add(state: Count, event: Added) -> Count:
    return Count(state.n + event.amount)


def apply_add_checked(state: Count, event: Added) -> Result[Count, TooBig]:
    if state.n + event.amount > 10:
        return Err(TooBig(10))
    return Ok(Count(state.n + event.amount))


def increment() -> WIO[Count, Any, Count]:
    return WIO.run_io(add_effect).handle_event(apply_add)


def add_from_signal() -> WIO[Count, TooBig, Count]:
    return (
        WIO.handle_signal(add_signal, input=Count)
        .purely(lambda state, req: Added(req.amount))
        .handle_event_with_error(apply_add_checked)
        .produce_response(lambda state, event, req: Count(state.n + event.amount))
    )


def run_all(ex: Execution) -> tuple[Execution, list[Any]]:
    """Run effects like a runtime would, returning the events recorded."""
    events = []
    while (eff := ex.next_effect()) is not None:
        event = eff.node.effect(eff.input)
        nxt = ex.apply_event(event)
        assert nxt is not None
        ex = nxt
        events.append(event)
    return ex, events


def replay(definition: WIO[Any, Any, Any], initial: Any, events: list[Any]) -> Execution:
    ex = Execution.start(definition, initial)
    for event in events:
        nxt = ex.apply_event(event)
        assert nxt is not None, f"replay rejected {event!r}"
        ex = nxt
    return ex


def assert_same(a: Execution, b: Execution) -> None:
    assert a.state == b.state
    assert a.status == b.status
    assert a.progress() == b.progress()
    assert a.expected_signals() == b.expected_signals()


def test_pure_steps_run_without_events() -> None:
    wf = WIO.pure(Count, lambda c: Count(c.n + 1)) >> WIO.pure(Count, lambda c: Count(c.n * 10))
    ex = Execution.start(wf, Count(1))
    assert ex.status == "finished"
    assert ex.state == Count(20)
    assert ex.result == Ok(Count(20))
    assert ex.next_effect() is None


def test_pure_error_fails_the_workflow_with_the_value() -> None:
    wf = WIO.pure(Count, lambda c: Count(5)) >> WIO.fail(TooBig(3))
    ex = Execution.start(wf, Count(0))
    assert ex.status == "failed"
    assert ex.result == Err(TooBig(3))
    assert ex.state == Count(5)  # the last state reached


def test_pure_with_error_checks_its_return_type() -> None:
    wf: WIO[Count, Any, Any] = WIO.pure_with_error(Count, lambda c: c)  # type: ignore[arg-type, return-value]
    with pytest.raises(DefinitionError, match="must return Ok"):
        Execution.start(wf, Count(0))


def test_run_io_waits_for_its_event_then_applies_it() -> None:
    wf = increment() >> increment()
    ex = Execution.start(wf, Count(0))
    eff = ex.next_effect()
    assert eff is not None
    assert eff.input == Count(0)
    assert ex.status == "awaiting"
    ex, events = run_all(ex)
    assert events == [Added(1), Added(1)]
    assert ex.state == Count(2)
    assert ex.status == "finished"
    assert_same(ex, replay(wf, Count(0), events))


def test_replay_equals_live_after_every_step() -> None:
    wf = increment() >> add_from_signal() >> increment()
    live = Execution.start(wf, Count(0))
    events: list[Any] = []
    live, evs = run_all(live)
    events += evs
    assert_same(live, replay(wf, Count(0), events))
    match = live.find_signal("add")
    assert isinstance(match, FreshSignal)
    event = match.node.handler(match.input, AddRequest(3))
    nxt = live.apply_event(event)
    assert nxt is not None
    live = nxt
    events.append(event)
    assert_same(live, replay(wf, Count(0), events))
    live, evs = run_all(live)
    events += evs
    assert live.state == Count(5)
    assert_same(live, replay(wf, Count(0), events))


def test_event_not_on_the_frontier_is_rejected() -> None:
    wf = add_from_signal() >> increment()
    ex = Execution.start(wf, Count(0))
    # the Added event fits the signal step (now) but never the later effect out of order
    assert ex.apply_event(Count(1)) is None
    assert ex.expected_events() == (Added,)


def test_future_step_never_takes_an_event() -> None:
    @dataclass(frozen=True)
    class Other:
        pass

    later = WIO.run_io(Count, lambda c: Other(), event=Other).handle_event(lambda c, e: c)
    wf = add_from_signal() >> later
    ex = Execution.start(wf, Count(0))
    assert ex.apply_event(Other()) is None


def test_signal_matching_fresh_then_redelivery() -> None:
    wf = add_from_signal() >> WIO.end()
    ex = Execution.start(wf, Count(1))
    assert [s.id for s in ex.expected_signals()] == ["add"]
    assert ex.find_signal("other") is None
    fresh = ex.find_signal("add")
    assert isinstance(fresh, FreshSignal)
    event = fresh.node.handler(fresh.input, AddRequest(2))
    assert fresh.respond(event, AddRequest(2)) == Count(3)
    after = ex.apply_event(event)
    assert after is not None
    assert after.expected_signals() == ()
    again = after.find_signal("add")
    assert isinstance(again, Redelivery)
    assert again.event == Added(2)
    assert again.respond(AddRequest(99)) == Count(3)


def test_error_handler_gets_last_state_and_error() -> None:
    def recover(c: Caught[Count, TooBig]) -> Count:
        return Count(-c.state.n - c.error.limit)

    wf = (WIO.pure(Count, lambda c: Count(7)) >> add_from_signal()).handle_error_with(
        WIO.pure(recover)
    )
    ex = Execution.start(wf, Count(0))
    fresh = ex.find_signal("add")
    assert isinstance(fresh, FreshSignal)
    ex2 = ex.apply_event(Added(5))  # 7 + 5 > 10
    assert ex2 is not None
    assert ex2.status == "finished"
    assert ex2.state == Count(-17)


def test_error_handler_not_run_on_success() -> None:
    calls: list[object] = []

    def handler(c: Caught[Count, TooBig]) -> Count:
        calls.append(c)
        return c.state

    wf = add_from_signal().handle_error_with(WIO.pure(handler))
    ex = Execution.start(wf, Count(0)).apply_event(Added(1))
    assert ex is not None
    assert ex.state == Count(1)
    assert calls == []


def test_flat_map_chooses_next_step_from_output_and_replays_it() -> None:
    def next_step(c: Count) -> WIO[Count, Any, Count]:
        return increment() if c.n < 2 else WIO.pure(Count, lambda x: Count(100))

    wf = add_from_signal().flat_map(next_step)
    live = Execution.start(wf, Count(0)).apply_event(Added(1))
    assert live is not None
    live, evs = run_all(live)
    assert live.state == Count(2)
    assert_same(live, replay(wf, Count(0), [Added(1), *evs]))
    big = Execution.start(wf, Count(0)).apply_event(Added(5))
    assert big is not None
    assert big.state == Count(100)
    assert big.progress().kind == "dynamic"


def test_flat_map_must_return_a_wio() -> None:
    wf: WIO[Count, Any, Any] = WIO.pure(Count, lambda c: c).flat_map(lambda c: 42)  # type: ignore[arg-type, return-value]
    with pytest.raises(DefinitionError, match="not a WIO"):
        Execution.start(wf, Count(0))


def test_map_and_transforms() -> None:
    wf = increment().map(lambda c: Count(c.n * 100))
    ex, _ = run_all(Execution.start(wf, Count(1)))
    assert ex.state == Count(200)

    def from_int(n: int) -> Count:
        return Count(n)

    def to_count(s: str) -> Count:
        return Count(len(s))

    def describe(s: str, c: Count) -> str:
        return f"{s}:{c.n}"

    inner = increment().map_input(from_int)
    ex2, _ = run_all(Execution.start(inner, 4))
    assert ex2.state == Count(5)

    both = increment().transform(to_count, describe)
    ex3, _ = run_all(Execution.start(both, "abc"))
    assert ex3.state == "abc:4"


def test_end_never_completes() -> None:
    wf = WIO.pure(Count, lambda c: Count(1)) >> WIO.end()
    ex = Execution.start(wf, Count(0))
    assert ex.status == "awaiting"
    assert ex.state == Count(1)
    assert ex.next_effect() is None
    assert ex.expected_signals() == ()
    assert Execution.start(WIO.noop(), Count(0)).status == "awaiting"


def test_progress_orders_executed_steps() -> None:
    wf = (
        increment().named("First")
        >> add_from_signal().named("Second")
        >> increment().named("Third")
    )
    ex, _ = run_all(Execution.start(wf, Count(0)))
    p = ex.progress()
    assert p.kind == "sequence"
    assert [c.name for c in p.children] == ["First", "Second", "Third"]
    assert [c.executed for c in p.children] == [True, False, False]
    ex2 = ex.apply_event(Added(2))
    assert ex2 is not None
    ex2, _ = run_all(ex2)
    steps = ex2.progress().executed_steps()
    assert [s.name for s in steps] == ["First", "Second", "Third"]
    assert [s.result for s in steps] == [Ok(Count(1)), Ok(Count(3)), Ok(Count(4))]
    assert steps[0].index is not None
    assert steps[0].index < steps[1].index < steps[2].index  # type: ignore[operator]
    assert "- [signal] Second (signal add: AddRequest -> Count" in render.text(ex2.progress())


def test_nested_sequences_flatten_in_progress() -> None:
    a, b, c = (WIO.pure(Count, lambda x: x).named(n) for n in "abc")
    left = Execution.start((a >> b) >> c, Count(0)).progress()
    right = Execution.start(a >> (b >> c), Count(0)).progress()
    assert [s.name for s in left.children] == ["a", "b", "c"]
    assert [s.name for s in right.children] == ["a", "b", "c"]


def test_a_node_type_without_semantics_cannot_run() -> None:
    @dataclass(frozen=True, kw_only=True, eq=False)
    class Unknown(WIO[Any, Any, Any]):
        pass

    for definition in (Unknown(), increment() >> Unknown()):
        with pytest.raises(DefinitionError, match="Unknown nodes cannot run"):
            run_all(Execution.start(definition, Count(0)))
