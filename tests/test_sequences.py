"""Sequences (``>>``) are one flat node: any nesting reads and runs the same, and a chain of
thousands of steps runs, replays and snapshots at the cost per step of a short one."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from test_snapshot import assert_snapshots_continue_like_replay, replay

from workflows4py import WIO, Err, InMemoryRuntime, Ok, SignalDef, Workflow
from workflows4py.definition import Chain, definition_children, walk_with_paths
from workflows4py.engine import Execution, decode_execution, encode_execution
from workflows4py.testing import assert_replay_matches


@dataclass(frozen=True)
class Tally:
    n: int
    log: tuple[str, ...] = ()


@dataclass(frozen=True)
class Counted:
    n: int


@dataclass(frozen=True)
class Poked:
    name: str


@dataclass(frozen=True)
class Poke:
    pass


@dataclass(frozen=True)
class Refused:
    at: int


poke = SignalDef("seq.poke", request=Poke)


def count(state: Tally) -> Counted:
    return Counted(state.n + 1)


def counted(state: Tally, event: Counted) -> Tally:
    return Tally(event.n, state.log)


def step() -> WIO[Tally, Any, Tally]:
    return WIO.run_io(count).handle_event(counted)


def on_poke(name: str) -> WIO[Tally, Any, Tally]:
    return (
        WIO.handle_signal(poke, input=Tally)
        .purely(lambda s, r: Poked(name), event=Poked)
        .handle_event(lambda s, e: Tally(s.n, (*s.log, e.name)))
        .void_response()
        .named(name)
    )


def note(text: str) -> WIO[Tally, Any, Tally]:
    return WIO.pure(Tally, lambda s: Tally(s.n, (*s.log, text))).named(text)


def chain_of(n: int) -> WIO[Tally, Any, Tally]:
    """``step >> step >> ...`` built the way a loop over ``>>`` builds it (left-nested)."""
    one = step()
    definition = one
    for _ in range(n - 1):
        definition = definition >> one
    return definition


def workflow(definition: WIO[Any, Any, Any]) -> type[Workflow[Tally, Any]]:
    class Sequenced(Workflow[Tally, Counted | Poked]):
        pass

    Sequenced.definition = definition
    return Sequenced


@pytest.fixture
def default_recursion_limit() -> Iterator[None]:
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


# -- shape ----------------------------------------------------------------------------------


def test_nesting_is_flattened_into_one_node() -> None:
    a, b, c, d = (note(x) for x in "abcd")
    for built in (
        a >> b >> c >> d,
        a >> (b >> (c >> d)),
        (a >> b) >> (c >> d),
        a.and_then(b >> c) >> d,
    ):
        assert isinstance(built, Chain)
        assert built.steps == (a, b, c, d)


def test_a_chain_extended_twice_keeps_both_extensions_apart() -> None:
    a, b, c, d = (note(x) for x in "abcd")
    base = a >> b
    left, right = base >> c, base >> d
    assert isinstance(base, Chain)
    assert base.steps == (a, b)
    assert isinstance(left, Chain)
    assert left.steps == (a, b, c)
    assert isinstance(right, Chain)
    assert right.steps == (a, b, d)


def test_walk_paths_see_through_sequences() -> None:
    inner = WIO.choose(Tally, lambda s: True, note("x"), note("y"), name="Pick")
    definition = note("a") >> (inner >> note("b"))
    assert [label for label, _ in definition_children(definition)] == [
        "step[0]",
        "step[1]",
        "step[2]",
    ]
    paths = [p for p, _ in walk_with_paths(definition)]
    assert ("root", "Pick", "branch[Yes]", "x") in paths
    assert ("root", "b") in paths


# -- running --------------------------------------------------------------------------------


async def test_nested_and_flat_sequences_run_alike() -> None:
    def parts() -> list[WIO[Tally, Any, Tally]]:
        return [note("a"), on_poke("p1"), step(), on_poke("p2"), note("b")]

    a, p1, s, p2, b = parts()
    nested = a >> ((p1 >> s).map(lambda t: Tally(t.n * 10, t.log)) >> (p2 >> b))
    a, p1, s, p2, b = parts()
    flat = a >> (p1 >> s).map(lambda t: Tally(t.n * 10, t.log)) >> p2 >> b
    outcomes = []
    for definition in (nested, flat):
        runtime = InMemoryRuntime(workflow(definition), initial_state=Tally(0))
        instance = await runtime.create_instance("i")
        await instance.deliver_signal(poke, Poke())
        middle = (await instance.query_state(), await instance.get_progress())
        await instance.deliver_signal(poke, Poke())
        await assert_replay_matches(runtime, instance)
        outcomes.append(
            (
                middle,
                await instance.query_state(),
                await instance.get_progress(),
                await instance.get_events(),
            )
        )
        assert_snapshots_continue_like_replay(
            workflow(definition), Tally(0), await instance.get_journal()
        )
    assert outcomes[0] == outcomes[1]
    _, state, progress, events = outcomes[0]
    assert state == Tally(10, ("a", "p1", "p2", "b"))
    assert [c.name for c in progress.children] == ["a", "p1", None, "p2", "b"]
    assert events == [Poked("p1"), Counted(1), Poked("p2")]


def test_an_error_ends_the_chain_and_keeps_the_state_reached() -> None:
    fail = WIO.pure_with_error(Tally, lambda s: Err(Refused(s.n)) if s.n >= 2 else Ok(s))
    definition = step() >> step() >> fail >> step()
    ex = Execution.start(definition, Tally(0))
    for _ in range(2):
        effect = ex.next_effect()
        assert effect is not None
        nxt = ex.apply_event(effect.node.effect(effect.input))
        assert nxt is not None
        ex = nxt
    assert ex.status == "failed"
    assert ex.result == Err(Refused(2))
    assert ex.state == Tally(2)
    children = ex.progress().children
    assert [c.executed for c in children] == [True, True, True, False]
    handled = definition.handle_error_with(WIO.pure(lambda c: Tally(c.state.n + 100)))
    recovered = Execution.start(handled, Tally(0))
    for event in (Counted(1), Counted(2)):
        nxt = recovered.apply_event(event)
        assert nxt is not None
        recovered = nxt
    assert recovered.state == Tally(102)
    assert recovered.apply_event(Counted(3)) is None  # the step after the failure never runs


def test_an_interruption_flow_may_be_a_chain() -> None:
    stop = SignalDef("seq.stop", request=Poke)
    trigger = (
        WIO.handle_signal(stop, input=Tally)
        .purely(lambda s, r: Refused(s.n), event=Refused)
        .handle_event(lambda s, e: Tally(-e.at, s.log))
        .void_response()
    )
    guarded = (on_poke("p1") >> on_poke("p2")).interrupt_with(trigger >> note("stopped"))
    ex = Execution.start(guarded >> note("after"), Tally(3))
    first = ex.apply_event(Poked("p1"))
    assert first is not None
    assert first.state == Tally(3, ("p1",))
    stopped = first.apply_event(Refused(3))
    assert stopped is not None
    assert stopped.status == "finished"
    assert stopped.state == Tally(-3, ("p1", "stopped", "after"))
    assert stopped.apply_event(Poked("p2")) is None


# -- long chains ----------------------------------------------------------------------------


@pytest.mark.usefixtures("default_recursion_limit")
async def test_a_5000_step_chain_runs_replays_and_snapshots() -> None:
    n = 5000
    definition = chain_of(n)
    assert isinstance(definition, Chain)
    assert len(definition.steps) == n
    wf = workflow(definition)
    runtime = InMemoryRuntime(wf, initial_state=Tally(0))
    instance = await runtime.create_instance("long")
    assert await instance.query_state() == Tally(n)
    assert await instance.status() == "finished"
    journal = await instance.get_journal()
    assert len(journal) == n
    await assert_replay_matches(runtime, instance)
    progress = await instance.get_progress()
    assert len(progress.children) == n
    assert len(progress.executed_steps()) == n

    full = replay(wf, Tally(0), journal)
    for k in (0, 1, n // 2, n - 1, n):
        prefix = replay(wf, Tally(0), journal[:k])
        restored = decode_execution(encode_execution(prefix, wf), wf, Tally(0))
        assert restored.state == prefix.state == Tally(k)
        assert restored.progress() == prefix.progress()
        assert restored.next_index == prefix.next_index
        for entry in journal[k:]:
            nxt = restored.apply_event(wf.codecs().events.decode(entry.type, entry.data))
            assert nxt is not None
            restored = nxt
        assert restored.state == full.state
        assert restored.progress() == full.progress()


@pytest.mark.usefixtures("default_recursion_limit")
def test_a_10000_step_chain_runs_under_the_default_recursion_limit() -> None:
    n = 10_000
    ex = Execution.start(chain_of(n), Tally(0))
    events = []
    while (effect := ex.next_effect()) is not None:
        event = effect.node.effect(effect.input)
        nxt = ex.apply_event(event)
        assert nxt is not None
        ex = nxt
        events.append(event)
    assert ex.state == Tally(n)
    assert ex.status == "finished"
    replayed = Execution.start(chain_of(n), Tally(0))
    for event in events:
        nxt = replayed.apply_event(event)
        assert nxt is not None
        replayed = nxt
    assert replayed.state == Tally(n)
