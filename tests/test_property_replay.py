"""Property: for random workflows driven by random signals and clock moves, rebuilding a
fresh instance from the journal always gives exactly the live state and progress."""

from __future__ import annotations

import itertools
import os
import typing
from dataclasses import dataclass, field, make_dataclass, replace
from datetime import timedelta
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_snapshot import assert_snapshots_continue_like_replay

from workflows4py import WIO, InMemoryRuntime, Ok, SignalDef, UnexpectedSignal, Workflow
from workflows4py.testing import TestClock, assert_replay_matches


@dataclass(frozen=True)
class V:
    n: int
    # iterations per loop (by loop number); only the loop's own counting step changes it
    loops: dict[int, int] = field(default_factory=dict)


def add(s: V, k: int) -> V:
    return replace(s, n=s.n + k)


Node = WIO[V, Any, V]

# Each leaf records its own event class and awaits its own signal, so no two steps awaiting
# at once can take each other's events (the runtime refuses that, the linter reports it).
EVENTS: list[type[Any]] = [
    make_dataclass(f"Ev{i}", [("amount", int)], frozen=True) for i in range(40)
]
for _event in EVENTS:  # importable by name, as snapshots need
    _event.__module__ = __name__
    globals()[_event.__name__] = _event
EVENT_UNION: Any = typing.Union[tuple(EVENTS)]  # noqa: UP007 - built at run time
SIGNALS = [SignalDef(f"sig-{i}", request=V) for i in range(40)]


class Leaves:
    """Hands out event classes and signals, one per generated leaf."""

    def __init__(self) -> None:
        self.counter = itertools.count()

    def next(self) -> int:
        n = next(self.counter)
        if n >= len(EVENTS):
            raise OverflowError
        return n


def effect(leaves: Leaves, amount: int) -> Node:
    event = EVENTS[leaves.next()]
    return WIO.run_io(V, lambda s: event(amount), event=event).handle_event(
        lambda s, e: add(s, e.amount)
    )


def signal(leaves: Leaves) -> Node:
    n = leaves.next()
    event = EVENTS[n]
    return (
        WIO.handle_signal(SIGNALS[n], input=V)
        .purely(lambda s, r: event(r.n), event=event)
        .handle_event(lambda s, e: add(s, e.amount))
        .void_response()
    )


def build(spec: Any, leaves: Leaves) -> Node:
    kind = spec[0]
    if kind == "pure":
        k = spec[1]
        return WIO.pure(V, lambda s: add(s, k))
    if kind == "effect":
        return effect(leaves, spec[1])
    if kind == "signal":
        return signal(leaves)
    if kind == "timer":
        return WIO.timer(timedelta(minutes=spec[1]), input=V, name=f"t{leaves.next()}")
    if kind == "seq":
        return build(spec[1], leaves) >> build(spec[2], leaves)
    if kind == "fork":
        return WIO.choose(V, lambda s: s.n % 2 == 0, build(spec[1], leaves), build(spec[2], leaves))
    if kind == "loop":
        # ends after three rounds of its own, whatever the body (nested loops included) does
        number = leaves.next()
        count = WIO.pure(
            V, lambda s: replace(s, loops={**s.loops, number: s.loops.get(number, 0) + 1})
        )
        body = effect(leaves, 1) >> build(spec[1], leaves) >> count
        return WIO.repeat(body).until(lambda s: s.loops[number] % 3 == 0)
    if kind == "parallel":
        return (
            WIO.parallel(lambda s: s, input=V)
            .branch(build(spec[1], leaves), incorporate=lambda i, b: add(i, b.n))
            .branch(build(spec[2], leaves), incorporate=lambda i, b: add(i, b.n))
            .output(lambda s, outs: replace(s, n=sum(o.n for o in outs)))
        )
    if kind == "interrupt":
        return build(spec[1], leaves).interrupt_with(
            signal(leaves) >> WIO.pure(V, lambda s: replace(s, n=-s.n))
        )
    if kind == "timeout":
        trigger = WIO.timer(timedelta(minutes=spec[2]), input=V, name=f"t{leaves.next()}")
        return build(spec[1], leaves).interrupt_with(
            trigger >> WIO.pure(V, lambda s: replace(s, n=s.n * 10))
        )
    if kind == "fail":
        return (build(spec[1], leaves) >> WIO.fail("boom")).handle_error_with(
            WIO.pure(lambda c: add(c.state, 1000))
        )
    if kind == "checkpoint":
        event = EVENTS[leaves.next()]
        return build(spec[1], leaves).checkpointed(
            lambda i, o: event(o.n), lambda i, e: replace(i, n=e.amount), event=event
        )
    raise AssertionError(kind)


leaf = st.one_of(
    st.tuples(st.just("pure"), st.integers(-3, 3)),
    st.tuples(st.just("effect"), st.integers(-3, 3)),
    st.tuples(st.just("signal")),
    st.tuples(st.just("timer"), st.integers(1, 90)),
)
specs = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.tuples(st.just("seq"), inner, inner),
        st.tuples(st.just("fork"), inner, inner),
        st.tuples(st.just("loop"), inner),
        st.tuples(st.just("parallel"), inner, inner),
        st.tuples(st.just("interrupt"), inner),
        st.tuples(st.just("timeout"), inner, st.integers(1, 90)),
        st.tuples(st.just("fail"), inner),
        st.tuples(st.just("checkpoint"), inner),
    ),
    max_leaves=12,
)
moves = st.lists(
    st.one_of(
        st.tuples(st.just("signal"), st.integers(0, 39), st.integers(-5, 5)),
        st.tuples(st.just("expected"), st.integers(0, 10), st.integers(-5, 5)),
        st.tuples(st.just("expected"), st.integers(0, 10), st.integers(-5, 5)),
        st.tuples(st.just("clock"), st.integers(0, 120)),
    ),
    max_size=20,
)


@settings(
    max_examples=int(os.environ.get("WORKFLOWS4PY_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(spec=specs, script=moves)
async def test_replay_equals_live_run(spec: Any, script: list[Any]) -> None:
    await check_replay_equals_live_run(spec, script)


@settings(
    max_examples=max(1, int(os.environ.get("WORKFLOWS4PY_EXAMPLES", "200")) // 2),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(spec=specs, script=moves)
async def test_replay_equals_live_run_when_loops_keep_one_iteration(
    spec: Any, script: list[Any]
) -> None:
    # loops here go round three times: a bound of one iteration drops some of them
    with mock.patch("workflows4py.definition._wio.KEPT_ITERATIONS", 1):
        await check_replay_equals_live_run(spec, script)


async def check_replay_equals_live_run(spec: Any, script: list[Any]) -> None:
    leaves = Leaves()
    try:
        definition = build(spec, leaves)
    except OverflowError:
        return

    class Random(Workflow[V, Any]):
        pass

    Random.definition = definition
    Random.event_type = EVENT_UNION
    clock = TestClock()
    runtime = InMemoryRuntime(Random, initial_state=V(0), clock=clock)
    instance = await runtime.create_instance("p-1")
    await assert_replay_matches(runtime, instance)
    for move in script:
        if move[0] == "clock":
            clock.advance(timedelta(minutes=move[1]))
            await runtime.run_due_wakeups()
        else:
            if move[0] == "signal":
                sig = SIGNALS[move[1]]
            else:
                expected = await instance.expected_signals()
                if not expected:
                    continue
                sig = expected[move[1] % len(expected)]
            before = await instance.get_journal()
            response = await instance.deliver_signal(sig, V(move[2]))
            if isinstance(response, UnexpectedSignal):
                assert await instance.get_journal() == before
        await assert_replay_matches(runtime, instance)
    if await instance.status() == "finished":
        assert await instance.result() == Ok(await instance.query_state())
    assert_snapshots_continue_like_replay(Random, V(0), await instance.get_journal())
