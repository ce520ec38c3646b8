"""A loop keeps its iteration count and only its last iterations: its memory, progress and
snapshot stay the same size however long it runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from test_snapshot import assert_snapshots_continue_like_replay

from workflows4py import WIO, InMemoryRuntime, LoopProgress, Ok, SignalDef, Workflow
from workflows4py.definition import KEPT_ITERATIONS, Loop
from workflows4py.engine import Executed, Execution, decode_execution, encode_execution
from workflows4py.testing import ReplayCheckedInstance


@dataclass(frozen=True)
class Level:
    n: int
    restarts: int = 0


@dataclass(frozen=True)
class Raised:
    by: int


@dataclass(frozen=True)
class Restarted:
    note: str


@dataclass(frozen=True)
class Nudge:
    by: int


nudge = SignalDef("loops.nudge", request=Nudge)
restart = SignalDef("loops.restart", request=Nudge)

raise_level = (
    WIO.handle_signal(nudge, input=Level)
    .purely(lambda s, r: Raised(r.by), event=Raised)
    .handle_event(lambda s, e: Level(s.n + e.by, s.restarts))
    .void_response()
    .named("Raise")
)
count_restart = (
    WIO.handle_signal(restart, input=Level)
    .purely(lambda s, r: Restarted("again"), event=Restarted)
    .handle_event(lambda s, e: Level(s.n, s.restarts + 1))
    .void_response()
    .named("Restart")
)


def until(target: int) -> WIO[Level, Any, Level]:
    return WIO.repeat(raise_level).until(lambda s: s.n >= target, name="High enough?")


def until_with_restart(target: int) -> WIO[Level, Any, Level]:
    return WIO.repeat(raise_level).until(
        lambda s: s.n >= target, on_restart=count_restart, name="High enough?"
    )


def workflow(definition: WIO[Any, Any, Any]) -> type[Workflow[Level, Any]]:
    class Looping(Workflow[Level, Raised | Restarted]):
        pass

    Looping.definition = definition
    return Looping


def run(definition: WIO[Any, Any, Any], events: list[Any]) -> Execution:
    ex = Execution.start(definition, Level(0))
    for event in events:
        nxt = ex.apply_event(event)
        assert nxt is not None, f"{event!r} refused"
        ex = nxt
    return ex


def executed(nodes: tuple[Any, ...]) -> list[Executed]:
    assert all(isinstance(n, Executed) for n in nodes)
    return list(nodes)


def the_loop(ex: Execution) -> Loop:
    tree = ex.tree.node if isinstance(ex.tree, Executed) else ex.tree
    assert isinstance(tree, Loop)
    return tree


def test_a_long_loop_counts_every_iteration_and_keeps_the_last_ones() -> None:
    assert KEPT_ITERATIONS == 10
    ex = run(until(1000), [Raised(1)] * 500)
    loop = the_loop(ex)
    assert ex.state == Level(500)
    assert loop.finished == 500
    assert len(loop.history) == KEPT_ITERATIONS
    kept = [h.result for h in executed(loop.history)]
    assert kept == [Ok(Level(n)) for n in range(491, 501)]  # the last ten, in order
    p = ex.progress()
    assert isinstance(p, LoopProgress)
    assert p.restarts == 500
    assert len(p.children) == KEPT_ITERATIONS + 1  # the kept iterations and the running one
    assert [i.number for i in p.iterations] == list(range(491, 502))
    assert [c.executed for c in p.children] == [True] * KEPT_ITERATIONS + [False]
    assert [i.outcome for i in p.iterations] == ["No"] * KEPT_ITERATIONS + [None]
    assert p.iterations[0].body.children == ()
    assert p.iterations[0].body.name == "Raise"
    assert p.iterations[-1].status == "waiting"


def test_the_bound_counts_iterations_with_on_restart_too() -> None:
    events: list[Any] = []
    for _ in range(30):
        events += [Raised(1), Restarted("again")]
    ex = run(until_with_restart(100), [*events, Raised(1)])
    loop = the_loop(ex)
    assert loop.finished == 61  # 31 body runs and 30 restarts
    assert len(loop.history) == 2 * KEPT_ITERATIONS
    names = [h.node.display_name for h in executed(loop.history)]
    assert names == ["Restart", "Raise"] * KEPT_ITERATIONS  # the oldest kept is a restart
    p = ex.progress()
    assert isinstance(p, LoopProgress)
    assert p.restarts == 31
    # the oldest kept run, a restart whose body was dropped, makes no round of its own
    assert [i.number for i in p.iterations] == list(range(22, 32))
    assert [i.outcome for i in p.iterations] == ["No"] * 10
    last = p.iterations[-1]  # its body went round, its restart step awaits
    assert (last.body.status, last.status) == ("done", "waiting")
    assert last.on_restart is not None
    assert (last.on_restart.name, last.on_restart.status) == ("Restart", "waiting")
    assert ex.state == Level(31, 30)


def test_a_snapshot_keeps_the_count_and_the_last_iterations_only() -> None:
    definition = until(100_000)
    wf = workflow(definition)
    small = encode_execution(run(definition, [Raised(1)] * 20), wf)
    large = encode_execution(run(definition, [Raised(1)] * 2000), wf)
    assert abs(len(large) - len(small)) < 100  # a few more digits, not 100x the iterations
    restored = decode_execution(large, wf, Level(0))
    original = run(definition, [Raised(1)] * 2000)
    assert restored.state == original.state == Level(2000)
    assert restored.progress() == original.progress()
    assert the_loop(restored).finished == 2000
    nxt = restored.apply_event(Raised(5))
    assert nxt is not None
    assert nxt.state == Level(2005)


@pytest.mark.parametrize("build", [until, until_with_restart], ids=["plain", "on_restart"])
async def test_snapshots_of_a_long_loop_continue_like_replay(build: Any) -> None:
    wf = workflow(build(30))
    runtime = InMemoryRuntime(wf, initial_state=Level(0))
    instance = await ReplayCheckedInstance.create(runtime, "long")
    while await instance.status() == "awaiting":
        signals = {s.id for s in await instance.expected_signals()}
        if nudge.id in signals:
            await instance.deliver_signal(nudge, Nudge(1))
        else:
            await instance.deliver_signal(restart, Nudge(0))
    assert await instance.query_state() == Level(30, 29 if build is until_with_restart else 0)
    journal = await instance.get_journal()
    assert len(journal) > 2 * KEPT_ITERATIONS
    assert_snapshots_continue_like_replay(wf, Level(0), journal)


async def test_a_signal_of_a_kept_iteration_is_still_answered_as_a_redelivery() -> None:
    wf = workflow(until_with_restart(100))
    runtime = InMemoryRuntime(wf, initial_state=Level(0))
    instance = await runtime.create_instance("redelivery")
    for _ in range(25):
        await instance.deliver_signal(nudge, Nudge(1))
        await instance.deliver_signal(restart, Nudge(0))
    await instance.deliver_signal(nudge, Nudge(1))  # the body's signal, now awaiting restart
    before = await instance.get_journal()
    assert await instance.deliver_signal(nudge, Nudge(1)) is None  # answered from its event
    assert await instance.get_journal() == before
    assert await instance.query_state() == Level(26, 25)
