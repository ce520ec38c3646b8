"""Timers, forks, loops, parallel, for-each, interruptions, checkpoints, retries, embedding:
each run live with a test clock, with a replay check after every step."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from workflows4py import (
    WIO,
    Caught,
    Err,
    ExecutionError,
    ForkProgress,
    InMemoryRuntime,
    InterruptibleProgress,
    LoopProgress,
    Ok,
    Result,
    RetryAgain,
    RetryFailure,
    SignalDef,
    TimerProgress,
    TimerReleased,
    TimerStarted,
    UnexpectedSignal,
    Workflow,
)
from workflows4py.testing import ReplayCheckedInstance, TestClock


@dataclass(frozen=True)
class St:
    value: int
    log: tuple[str, ...] = ()


@dataclass(frozen=True)
class Happened:
    what: str
    amount: int = 0


@dataclass(frozen=True)
class Cancelled:
    what: str
    amount: int = 0


@dataclass(frozen=True)
class Snap:
    value: int
    log: tuple[str, ...]


@dataclass(frozen=True)
class Attempt:
    number: int
    retry_at: datetime | None


@dataclass(frozen=True)
class ItemEvent:
    key: str
    event: Happened


@dataclass(frozen=True)
class Poke:
    amount: int


@dataclass(frozen=True)
class TooMany:
    attempts: int


Event = Happened | Cancelled | Snap | Attempt | ItemEvent

poke = SignalDef("poke", request=Poke)
cancel = SignalDef("cancel", request=Poke)


class Calls:
    def __init__(self) -> None:
        self.count: dict[str, int] = {}
        self.failures: dict[str, int] = {}

    def hit(self, name: str) -> None:
        self.count[name] = self.count.get(name, 0) + 1
        if self.failures.get(name, 0) > 0:
            self.failures[name] -= 1
            raise ConnectionError(f"{name} is down")


CALLS = Calls()


@pytest.fixture(autouse=True)
def reset_calls() -> None:
    global CALLS  # noqa: PLW0603 - steps below read the module-level counter
    CALLS = Calls()


def record(s: St, e: Happened | Cancelled) -> St:
    return St(s.value + e.amount, (*s.log, e.what))


def effect(name: str, amount: int = 1) -> WIO[St, Any, St]:
    def run(s: St) -> Happened:
        CALLS.hit(name)
        return Happened(name, amount)

    return WIO.run_io(St, run, event=Happened).handle_event(record).named(name)


def on_signal(
    name: str, signal: SignalDef[Poke, None] = poke, event: type[Happened | Cancelled] = Happened
) -> WIO[St, Any, St]:
    # steps that may await at the same time record different event classes (events are
    # matched to steps by class; the linter's clashing-events rule reports overlaps)
    def handle(s: St, r: Poke) -> Happened | Cancelled:
        return event(name, r.amount)

    step: WIO[St, Any, St] = (
        WIO.handle_signal(signal, input=St)
        .purely(handle, event=event)
        .handle_event(record)  # type: ignore[arg-type]  # Ev is the class picked at run time
        .void_response()
        .named(name)
    )
    return step


def note(text: str) -> WIO[St, Any, St]:
    return WIO.pure(St, lambda s: St(s.value, (*s.log, text)))


def flow(definition: WIO[Any, Any, Any]) -> type[Workflow[St, Event]]:
    class Flow(Workflow[St, Event]):
        pass

    Flow.definition = definition
    return Flow


async def start(
    definition: WIO[Any, Any, Any], clock: TestClock | None = None
) -> tuple[ReplayCheckedInstance[St, Event], TestClock]:
    clock = clock or TestClock()
    runtime = InMemoryRuntime(flow(definition), initial_state=St(0), clock=clock)
    return await ReplayCheckedInstance.create(runtime, "i-1"), clock


# -- timers -----------------------------------------------------------------------------------


async def test_timer_waits_then_releases_on_due_wakeup() -> None:
    wf = effect("a") >> WIO.timer(timedelta(hours=1), input=St, name="Cool Down") >> effect("b")
    inst, clock = await start(wf)
    t0 = clock.now()
    assert await inst.query_state() == St(1, ("a",))
    assert await inst.instance.next_wakeup() == t0 + timedelta(hours=1)
    assert await inst.run_due_wakeups() == []
    clock.advance(timedelta(minutes=59))
    await inst.wakeup()
    assert CALLS.count.get("b") is None
    clock.advance(timedelta(minutes=1))
    assert await inst.run_due_wakeups() == ["i-1"]
    assert await inst.query_state() == St(2, ("a", "b"))
    events = await inst.get_events()
    assert events[1] == TimerStarted("Cool Down", t0, t0 + timedelta(hours=1))
    assert events[2] == TimerReleased("Cool Down", t0 + timedelta(hours=1))
    assert await inst.instance.next_wakeup() is None
    assert await inst.status() == "finished"


async def test_timer_duration_or_instant_from_input() -> None:
    def delay(s: St) -> timedelta:
        return timedelta(minutes=s.value)

    def at(s: St) -> datetime:
        return datetime(2030, 1, 1, tzinfo=clock.now().tzinfo)

    clock = TestClock()
    wf = effect("a", 5) >> WIO.timer(delay, input=St) >> WIO.timer(at, input=St, name="New Year")
    inst, _ = await start(wf, clock)
    assert await inst.instance.next_wakeup() == clock.now() + timedelta(minutes=5)
    clock.advance(timedelta(minutes=5))
    await inst.run_due_wakeups()
    assert await inst.instance.next_wakeup() == datetime(2030, 1, 1, tzinfo=clock.now().tzinfo)
    clock.set(datetime(2030, 1, 1, tzinfo=clock.now().tzinfo))
    await inst.run_due_wakeups()
    assert await inst.status() == "finished"


async def test_replay_never_reads_the_clock() -> None:
    wf = WIO.timer(timedelta(hours=1), input=St) >> effect("b")
    inst, clock = await start(wf)
    clock.advance(timedelta(days=30))  # long after the timer: replay must still reproduce it
    await inst.check()
    timer = (await inst.get_progress()).children[0]
    assert isinstance(timer, TimerProgress)
    assert timer.resume_at == (await inst.get_events())[0].resume_at  # type: ignore[union-attr]


# -- forks --------------------------------------------------------------------------------------


async def test_fork_takes_first_matching_branch() -> None:
    fork = (
        WIO.fork(St, name="Size?")
        .when(lambda s: s.value > 10, note("big"), name="Big")
        .when_some(
            lambda s: St(s.value * 100) if s.value > 1 else None, note("medium"), name="Medium"
        )
        .otherwise(note("small"), name="Small")
    )
    for amount, expected in [
        (20, St(20, ("a", "big"))),
        (5, St(500, ("medium",))),
        (1, St(1, ("a", "small"))),
    ]:
        inst, _ = await start(effect("a", amount) >> fork)
        assert await inst.query_state() == expected
        chosen = (await inst.get_progress()).children[1]
        assert isinstance(chosen, ForkProgress)
        assert [b.name for b in chosen.branches] == ["Big", "Medium", "Small"]
        assert chosen.taken is not None
        assert chosen.taken.body.result == Ok(expected)


async def test_choose_is_a_yes_no_fork() -> None:
    wf = effect("a", 3) >> WIO.choose(
        St, lambda s: s.value > 2, note("yes"), note("no"), name="Big?"
    )
    inst, _ = await start(wf)
    assert (await inst.query_state()).log == ("a", "yes")
    progress = (await inst.get_progress()).children[1]
    assert isinstance(progress, ForkProgress)
    assert [(b.name, b.taken) for b in progress.branches] == [("Yes", True), ("No", False)]
    assert progress.chosen == 0


async def test_fork_without_matching_branch_is_a_clear_error() -> None:
    fork = (
        WIO.fork(St, name="Only Big").when(lambda s: s.value > 10, note("big"), name="Big").done()
    )
    runtime = InMemoryRuntime(flow(on_signal("p") >> fork), initial_state=St(0))
    inst = await runtime.create_instance("i-1")
    with pytest.raises(ExecutionError, match="fork 'Only Big': no branch \\(Big\\) matches"):
        await inst.deliver_signal(poke, Poke(1))
    assert await inst.get_events() == []  # the signal that led there was not recorded


# -- loops --------------------------------------------------------------------------------------


async def test_loop_repeats_body_until_condition() -> None:
    loop = WIO.repeat(on_signal("p")).until(lambda s: s.value >= 5, name="Enough?")
    inst, _ = await start(loop >> note("done"))
    for amount in (2, 2):
        await inst.deliver_signal(poke, Poke(amount))
        assert await inst.status() == "awaiting"
    await inst.deliver_signal(poke, Poke(3))
    assert await inst.query_state() == St(7, ("p", "p", "p", "done"))
    lp = (await inst.get_progress()).children[0]
    assert isinstance(lp, LoopProgress)
    assert lp.restarts == 2
    assert len(lp.children) == 3  # two earlier iterations and the last one
    assert [(i.number, i.outcome) for i in lp.iterations] == [(1, "No"), (2, "No"), (3, "Yes")]


async def test_loop_with_restart_path_and_until_some() -> None:
    restart = WIO.timer(timedelta(seconds=20), input=St, name="Await Retry")
    loop = WIO.repeat(effect("check")).until_some(
        lambda s: St(s.value * 10, s.log) if s.value >= 3 else None, on_restart=restart
    )
    inst, clock = await start(loop)
    for _ in range(2):
        assert await inst.status() == "awaiting"
        clock.advance(timedelta(seconds=20))
        await inst.run_due_wakeups()
    assert await inst.query_state() == St(30, ("check", "check", "check"))
    assert CALLS.count["check"] == 3


async def test_busy_loop_is_stopped() -> None:
    loop = WIO.repeat(note("spin")).until(lambda s: False)
    runtime = InMemoryRuntime(flow(loop), initial_state=St(0))
    with pytest.raises(ExecutionError, match="busy loop"):
        await runtime.create_instance("i-1")
    # registered before it ran (as on every store), and marked failing
    (row,) = (await runtime.search()).records
    assert row.failures == 1
    assert row.last_error is not None
    assert "busy loop" in row.last_error


# -- parallel -----------------------------------------------------------------------------------


async def test_parallel_branches_advance_independently() -> None:
    par = (
        WIO.parallel(lambda s: St(s.value, ("interim",)), input=St)
        .branch(
            on_signal("left", poke, Cancelled),
            incorporate=lambda i, b: St(i.value + b.value, i.log + b.log),
        )
        .branch(
            effect("right") >> on_signal("late", cancel),
            incorporate=lambda i, b: St(i.value + b.value, i.log + b.log),
        )
        .output(lambda s, outs: St(sum(o.value for o in outs), ("joined",)))
    )
    inst, _ = await start(par)
    assert await inst.query_state() == St(1, ("interim", "right"))
    assert {s.id for s in await inst.expected_signals()} == {"poke", "cancel"}
    await inst.deliver_signal(cancel, Poke(10))
    assert await inst.status() == "awaiting"
    await inst.deliver_signal(poke, Poke(5))
    assert await inst.query_state() == St(16, ("joined",))


async def test_parallel_fails_on_first_domain_error() -> None:
    failing = WIO.pure_with_error(St, lambda s: Err(TooMany(s.value)))
    par = (
        WIO.parallel(lambda s: s, input=St)
        .branch(on_signal("left", poke, Cancelled), incorporate=lambda i, b: i)
        .branch(effect("right") >> failing, incorporate=lambda i, b: i)
        .output(lambda s, outs: s)
    )
    inst, _ = await start(par)
    assert await inst.status() == "failed"
    assert await inst.result() == Err(TooMany(1))


# -- for-each -----------------------------------------------------------------------------------


def unwrap_item(e: Any) -> tuple[str, Any] | None:
    return (e.key, e.event) if isinstance(e, ItemEvent) else None


async def test_for_each_runs_one_sub_workflow_per_element_with_routed_signals() -> None:
    body = effect("prepare") >> on_signal("approve")

    def element_state(key: str) -> St:
        return St(0, (key,))

    each = WIO.for_each(
        lambda s: ["a", "b", "c"], body.map_input(element_state), key=str, input=St
    ).build(
        wrap=ItemEvent,
        unwrap=unwrap_item,
        interim=lambda s, states: St(sum(x.value for x in states.values()), tuple(sorted(states))),
        output=lambda s, outs: St(sum(o.value for o in outs.values()), ("all done",)),
    )
    inst, _ = await start(each)
    assert CALLS.count["prepare"] == 3
    assert await inst.query_state() == St(3, ("a", "b", "c"))
    assert isinstance(await inst.deliver_signal(poke, Poke(1)), UnexpectedSignal)  # no route
    await inst.deliver_signal(poke, Poke(10), route="b")
    await inst.deliver_signal(poke, Poke(20), route="a")
    assert await inst.status() == "awaiting"
    await inst.deliver_signal(poke, Poke(30), route="c")
    assert await inst.query_state() == St(63, ("all done",))
    events = await inst.get_events()
    assert ItemEvent("b", Happened("approve", 10)) in events


async def test_for_each_over_no_elements_completes_at_once() -> None:
    def element_state(key: str) -> St:
        return St(0)

    each = WIO.for_each(lambda s: [], note("x").map_input(element_state), input=St).build(
        wrap=ItemEvent,
        unwrap=unwrap_item,
        interim=lambda s, states: s,
        output=lambda s, outs: St(len(outs)),
    )
    inst, _ = await start(each)
    assert await inst.query_state() == St(0)
    assert await inst.status() == "finished"


# -- interruptions ------------------------------------------------------------------------------


def cancellable() -> WIO[St, Any, St]:
    base = on_signal("first") >> on_signal("second")
    return base.interrupt_with(on_signal("cancelled", cancel, Cancelled) >> note("after cancel"))


async def test_signal_interrupts_running_base() -> None:
    inst, _ = await start(cancellable())
    await inst.deliver_signal(poke, Poke(1))
    assert {s.id for s in await inst.expected_signals()} == {"poke", "cancel"}
    await inst.deliver_signal(cancel, Poke(100))
    assert await inst.query_state() == St(101, ("first", "cancelled", "after cancel"))
    assert await inst.expected_signals() == ()
    events = await inst.get_events()
    await inst.deliver_signal(poke, Poke(1))  # a redelivery of "first": nothing new
    assert await inst.get_events() == events
    interruptible = await inst.get_progress()
    assert isinstance(interruptible, InterruptibleProgress)
    assert interruptible.interrupted
    assert interruptible.base.result is None  # cut short
    assert interruptible.trigger.result is not None
    assert interruptible.handler is not None
    assert interruptible.handler.result is not None


async def test_interruption_impossible_once_base_completed() -> None:
    inst, _ = await start(cancellable() >> on_signal("tail", cancel, Cancelled))
    await inst.deliver_signal(poke, Poke(1))
    await inst.deliver_signal(poke, Poke(2))
    await inst.deliver_signal(cancel, Poke(5))  # reaches "tail", not the interruption
    assert await inst.query_state() == St(8, ("first", "second", "tail"))


async def test_timeout_interrupts_base() -> None:
    base = on_signal("answer")
    wf = base.interrupt_with(
        WIO.timer(timedelta(minutes=2), input=St, name="Timeout") >> note("timed out")
    )
    inst, clock = await start(wf)
    assert await inst.instance.next_wakeup() == clock.now() + timedelta(minutes=2)
    clock.advance(timedelta(minutes=2))
    await inst.run_due_wakeups()
    assert await inst.query_state() == St(0, ("timed out",))
    assert isinstance(await inst.deliver_signal(poke, Poke(1)), UnexpectedSignal)


async def test_base_finishing_first_cancels_the_timeout() -> None:
    wf = on_signal("answer").interrupt_with(
        WIO.timer(timedelta(minutes=2), input=St) >> note("timed out")
    )
    inst, clock = await start(wf)
    await inst.deliver_signal(poke, Poke(1))
    assert await inst.instance.next_wakeup() is None
    clock.advance(timedelta(minutes=5))
    assert await inst.run_due_wakeups() == []
    assert await inst.query_state() == St(1, ("answer",))


# -- checkpoints and recovery -------------------------------------------------------------------


def to_snap(s: St, out: St) -> Snap:
    return Snap(out.value, out.log)


def from_snap(s: St, e: Snap) -> St:
    return St(e.value, e.log)


async def test_checkpoint_records_state_and_recovery_replaces_the_step() -> None:
    heavy = (effect("a") >> effect("b")).checkpointed(to_snap, from_snap)
    inst, _ = await start(heavy >> on_signal("next"))
    events = await inst.get_events()
    assert events == [Happened("a", 1), Happened("b", 1), Snap(2, ("a", "b"))]
    # a new version of the definition drops the heavy step and recovers from its checkpoint
    evolved = WIO.recover(from_snap, discards=(Happened,)) >> on_signal("next")
    runtime = InMemoryRuntime(flow(evolved), initial_state=St(0))
    restored = await runtime.restore_instance("i-1", await inst.get_journal())
    assert await restored.query_state() == St(2, ("a", "b"))
    await restored.deliver_signal(poke, Poke(1))
    assert await restored.query_state() == St(3, ("a", "b", "next"))


async def test_checkpoint_is_skipped_when_base_fails() -> None:
    failing = effect("a") >> WIO.pure_with_error(St, lambda s: Err(TooMany(0)))
    inst, _ = await start(failing.checkpointed(to_snap, from_snap))
    assert await inst.get_events() == [Happened("a", 1)]
    assert await inst.status() == "failed"


# -- retries ------------------------------------------------------------------------------------


async def test_stateless_retry_waits_then_succeeds() -> None:
    CALLS.failures["flaky"] = 1
    inst, clock = await start(effect("flaky").retry(timedelta(minutes=2)) >> note("done"))
    assert await inst.get_events() == []  # the failure persisted nothing
    assert await inst.instance.next_wakeup() == clock.now() + timedelta(minutes=2)
    await inst.wakeup()  # too early: the next attempt waits for its delay
    assert CALLS.count["flaky"] == 1
    clock.advance(timedelta(minutes=2))
    await inst.run_due_wakeups()
    assert CALLS.count["flaky"] == 2
    assert await inst.query_state() == St(1, ("flaky", "done"))


async def test_stateless_retry_can_refuse_an_exception() -> None:
    CALLS.failures["flaky"] = 1

    def delay(error: Exception) -> timedelta | None:
        return None if isinstance(error, ConnectionError) else timedelta(seconds=1)

    runtime = InMemoryRuntime(flow(effect("flaky").retry(delay)), initial_state=St(0))
    with pytest.raises(ConnectionError):
        await runtime.create_instance("i-1")


def on_attempt_error(failure: RetryFailure[St, int]) -> Attempt:
    return Attempt(failure.state + 1, failure.now + timedelta(minutes=1))


def on_attempt(s: St, e: Attempt, attempts: int) -> RetryAgain[int] | Result[St, TooMany]:
    if e.number >= 3:
        return Err(TooMany(e.number))
    assert e.retry_at is not None
    return RetryAgain(e.number, e.retry_at)


def stateful(base: WIO[St, Any, St]) -> WIO[St, Any, St]:
    return base.retry_stateful(initial=0, on_error=on_attempt_error, handle_event=on_attempt)


async def test_stateful_retry_keeps_matching_the_base_events() -> None:
    # upstream bug: under a stateful retry only retry events were matched on replay
    CALLS.failures["second"] = 1
    inst, clock = await start(stateful(effect("first") >> effect("second")))
    events = await inst.get_events()
    assert events[0] == Happened("first", 1)
    assert isinstance(events[1], Attempt)
    clock.advance(timedelta(minutes=1))
    await inst.run_due_wakeups()
    assert await inst.query_state() == St(2, ("first", "second"))


async def test_stateful_retry_does_not_rerun_before_its_instant() -> None:
    # upstream bug: a scheduled retry ran the step again at once in the same wakeup
    CALLS.failures["flaky"] = 1
    inst, clock = await start(stateful(effect("flaky")))
    assert CALLS.count["flaky"] == 1
    await inst.wakeup()
    assert CALLS.count["flaky"] == 1
    assert await inst.instance.next_wakeup() == clock.now() + timedelta(minutes=1)
    clock.advance(timedelta(minutes=1))
    await inst.run_due_wakeups()
    assert CALLS.count["flaky"] == 2
    assert await inst.status() == "finished"


async def test_stateful_retry_gives_up_into_a_domain_error() -> None:
    CALLS.failures["flaky"] = 10

    def give_up(c: Caught[St, TooMany]) -> St:
        return St(-c.error.attempts, (*c.state.log, "gave up"))

    inst, clock = await start(stateful(effect("flaky")).handle_error_with(WIO.pure(give_up)))
    for _ in range(2):
        clock.advance(timedelta(minutes=1))
        await inst.run_due_wakeups()
    assert CALLS.count["flaky"] == 3
    assert await inst.query_state() == St(-3, ("gave up",))
    assert [e.number for e in await inst.get_events() if isinstance(e, Attempt)] == [1, 2, 3]


async def test_stateful_retry_can_recover_with_an_event() -> None:
    CALLS.failures["flaky"] = 1

    def recover(s: St, e: Attempt, attempts: int) -> RetryAgain[int] | Result[St, TooMany]:
        return Ok(St(99, ("recovered",)))

    wf = effect("flaky").retry_stateful(initial=0, on_error=on_attempt_error, handle_event=recover)
    inst, _ = await start(wf)
    assert await inst.query_state() == St(99, ("recovered",))


# -- embedding ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inner:
    count: int


def bump(i: Inner, e: Happened) -> Inner:
    return Inner(i.count + e.amount)


async def test_embedded_workflow_has_its_own_state_and_wrapped_events() -> None:
    inner = (
        WIO.run_io(Inner, lambda i: Happened("inner", 5), event=Happened).handle_event(bump)
        >> WIO.handle_signal(poke, input=Inner)
        .purely(lambda i, r: Happened("sig", r.amount))
        .handle_event(bump)
        .void_response()
    )
    embedded = WIO.embed(
        inner,
        input=lambda s: Inner(s.value),
        output=lambda s, i: St(i.count, (*s.log, "embedded")),
        wrap=lambda e: ItemEvent("inner", e),
        unwrap=lambda e: e.event if isinstance(e, ItemEvent) and e.key == "inner" else None,
        state=lambda s, i: St(i.count, s.log),
        outer=St,
    )
    inst, _ = await start(effect("outer") >> embedded)
    assert await inst.query_state() == St(6, ("outer",))
    await inst.deliver_signal(poke, Poke(4))
    assert await inst.query_state() == St(10, ("outer", "embedded"))
    assert (await inst.get_events())[1] == ItemEvent("inner", Happened("inner", 5))
