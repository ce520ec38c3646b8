"""The checks engine on its own: every path, with a replay check after every step."""

from __future__ import annotations

import asyncio
import contextlib
import io
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from workflows4py import (
    InMemoryRuntime,
    LoopProgress,
    TimerReleased,
    TimerStarted,
    UnexpectedSignal,
)
from workflows4py.examples import checks
from workflows4py.examples.checks import CheckResult, Decision, StaticCheck
from workflows4py.testing import ReplayCheckedInstance, TestClock

DATA = checks.CheckData("tx-1", Decimal("100.00"), "DE89370400440532013000")
APPROVED, REJECTED, PENDING = CheckResult.APPROVED, CheckResult.REJECTED, CheckResult.PENDING
REQUIRES_REVIEW, TIMED_OUT = CheckResult.REQUIRES_REVIEW, CheckResult.TIMED_OUT

Instance = ReplayCheckedInstance[checks.ChecksState, checks.ChecksEvent]


class ScriptedCheck:
    """Answers ``answers`` in turn (the last one from then on); counts its runs."""

    def __init__(self, key: str, *answers: CheckResult) -> None:
        self.key = key
        self.answers = answers
        self.runs = 0

    def run(self, data: checks.CheckData) -> CheckResult:
        self.runs += 1
        return self.answers[min(self.runs, len(self.answers)) - 1]


class BrokenCheck:
    key = "broken"

    def __init__(self) -> None:
        self.runs = 0

    def run(self, data: checks.CheckData) -> CheckResult:
        self.runs += 1
        raise ConnectionError("the sanctions list is unreachable")


class AsyncCheck:
    key = "async"

    async def run(self, data: checks.CheckData) -> CheckResult:
        await asyncio.sleep(0)
        return APPROVED if data.amount < 1000 else REJECTED


@pytest.fixture
def clock() -> TestClock:
    return TestClock()


async def start(clock: TestClock, *all_checks: checks.Check) -> Instance:
    workflow = checks.checks_workflow(checks.FixedChecks(all_checks), DATA)
    runtime = InMemoryRuntime(workflow, initial_state=checks.Empty(), clock=clock)
    return await ReplayCheckedInstance.create(runtime, "checks-1")


def pending_results(state: Any) -> dict[str, CheckResult]:
    assert isinstance(state, checks.Pending), state
    return state.results


# -- the system decides -----------------------------------------------------------------------


async def test_all_checks_approve_so_the_system_approves(clock: TestClock) -> None:
    first, second = StaticCheck("sanctions", APPROVED), StaticCheck("fraud", APPROVED)
    instance = await start(clock, first, second)
    results = {"sanctions": APPROVED, "fraud": APPROVED}
    assert await instance.query_state() == checks.Decided(results, Decision.APPROVED_BY_SYSTEM)
    assert await instance.status() == "finished"
    assert (first.runs, second.runs) == (1, 1)
    events = await instance.get_events()
    # the timeout starts first, then the checks run, then the checkpoint records the outcome
    assert events == [
        TimerStarted("Execution Timeout", clock.now(), clock.now() + checks.TIMEOUT_THRESHOLD),
        checks.ChecksRun(results),
        checks.CheckCompleted(results, Decision.APPROVED_BY_SYSTEM),
    ]
    assert await instance.instance.next_wakeup() is None  # the timeout is gone with the loop
    steps = (await instance.get_progress()).executed_steps()
    assert [s.name for s in steps] == ["Run Pending Checks", "System Decision"]


async def test_any_rejection_rejects_even_with_checks_to_review(clock: TestClock) -> None:
    instance = await start(
        clock,
        StaticCheck("a", APPROVED),
        StaticCheck("b", REJECTED),
        StaticCheck("c", REQUIRES_REVIEW),
    )
    assert await instance.query_state() == checks.Decided(
        {"a": APPROVED, "b": REJECTED, "c": REQUIRES_REVIEW}, Decision.REJECTED_BY_SYSTEM
    )
    assert await instance.expected_signals() == ()


async def test_no_checks_means_approval(clock: TestClock) -> None:
    instance = await start(clock)
    assert await instance.query_state() == checks.Decided({}, Decision.APPROVED_BY_SYSTEM)


# -- an operator decides ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("approve", "decision"),
    [(True, Decision.APPROVED_BY_OPERATOR), (False, Decision.REJECTED_BY_OPERATOR)],
)
async def test_a_check_requiring_review_waits_for_the_operator(
    clock: TestClock, approve: bool, decision: Decision
) -> None:
    instance = await start(clock, StaticCheck("a", APPROVED), StaticCheck("b", REQUIRES_REVIEW))
    results = {"a": APPROVED, "b": REQUIRES_REVIEW}
    assert await instance.query_state() == checks.Executed(results)
    assert await instance.expected_signals() == (checks.review_signal,)
    assert await instance.status() == "awaiting"
    await instance.deliver_signal(checks.review_signal, checks.ReviewDecision(approve=approve))
    assert await instance.query_state() == checks.Decided(results, decision)
    assert (await instance.get_events())[-2:] == [
        checks.ReviewDecisionTaken(approve),
        checks.CheckCompleted(results, decision),
    ]
    steps = (await instance.get_progress()).executed_steps()
    assert [s.name for s in steps] == ["Run Pending Checks", "Handle Review Decision"]


async def test_a_failing_check_goes_to_review(clock: TestClock) -> None:
    broken = BrokenCheck()
    instance = await start(clock, broken, AsyncCheck())
    assert await instance.query_state() == checks.Executed(
        {"broken": REQUIRES_REVIEW, "async": APPROVED}
    )
    assert broken.runs == 1  # not retried: the failure is a final answer
    await instance.deliver_signal(checks.review_signal, checks.ReviewDecision(approve=True))
    assert await instance.status() == "finished"


class ChangingChecks:
    def __init__(self, *offered: checks.Check) -> None:
        self.offered = list(offered)

    def get_checks(self) -> list[checks.Check]:
        return self.offered


async def test_a_check_missing_from_the_service_goes_to_review(clock: TestClock) -> None:
    service = ChangingChecks(StaticCheck("gone", APPROVED))
    workflow = checks.checks_workflow(service, DATA)  # the input asks for "gone"
    service.offered.clear()  # ...which the service no longer offers when the checks run
    runtime = InMemoryRuntime(workflow, initial_state=checks.Empty(), clock=clock)
    instance = await ReplayCheckedInstance.create(runtime, "checks-1")
    assert await instance.query_state() == checks.Executed({"gone": REQUIRES_REVIEW})


# -- pending checks: retries and the timeout --------------------------------------------------


async def test_pending_checks_run_again_every_20_seconds_until_complete(clock: TestClock) -> None:
    slow = ScriptedCheck("slow", PENDING, PENDING, APPROVED)
    quick = StaticCheck("quick", APPROVED)
    instance = await start(clock, slow, quick)
    assert pending_results(await instance.query_state()) == {"slow": PENDING, "quick": APPROVED}
    assert await instance.instance.next_wakeup() == clock.now() + checks.RETRY_BACKOFF

    clock.advance(checks.RETRY_BACKOFF - timedelta(seconds=1))
    assert await instance.run_due_wakeups() == []
    assert slow.runs == 1

    clock.advance(timedelta(seconds=1))
    assert await instance.run_due_wakeups() == ["checks-1"]
    assert slow.runs == 2
    assert pending_results(await instance.query_state()) == {"slow": PENDING, "quick": APPROVED}

    clock.advance(checks.RETRY_BACKOFF)
    await instance.run_due_wakeups()
    assert await instance.query_state() == checks.Decided(
        {"slow": APPROVED, "quick": APPROVED}, Decision.APPROVED_BY_SYSTEM
    )
    assert (slow.runs, quick.runs) == (3, 1)  # finished checks are not run again
    runs = [e for e in await instance.get_events() if isinstance(e, checks.ChecksRun)]
    assert runs == [
        checks.ChecksRun({"slow": PENDING, "quick": APPROVED}),
        checks.ChecksRun({"slow": PENDING}),
        checks.ChecksRun({"slow": APPROVED}),
    ]
    loop = next(p for p in (await instance.get_progress()).walk() if isinstance(p, LoopProgress))
    assert loop.name == "All checks completed?"
    assert loop.restarts == 2
    assert (loop.release, loop.restart) == ("Yes", "No")
    assert [i.outcome for i in loop.iterations] == ["No", "No", "Yes"]


@pytest.mark.parametrize(
    ("approve", "decision"),
    [(True, Decision.APPROVED_BY_OPERATOR), (False, Decision.REJECTED_BY_OPERATOR)],
)
async def test_checks_still_pending_after_2_minutes_time_out_into_review(
    clock: TestClock, approve: bool, decision: Decision
) -> None:
    stuck = StaticCheck("stuck", PENDING)
    instance = await start(clock, stuck, StaticCheck("fine", APPROVED))
    started = clock.now()
    for _ in range(5):  # retried at 20, 40, 60, 80 and 100 seconds
        clock.advance(checks.RETRY_BACKOFF)
        await instance.run_due_wakeups()
    assert stuck.runs == 6
    assert isinstance(await instance.query_state(), checks.Pending)

    clock.advance(checks.RETRY_BACKOFF)  # 2 minutes: the retry timer is due too, the timeout wins
    await instance.run_due_wakeups()
    assert stuck.runs == 6
    results = {"stuck": TIMED_OUT, "fine": APPROVED}
    assert await instance.query_state() == checks.Executed(results)
    assert TimerReleased("Execution Timeout", started + checks.TIMEOUT_THRESHOLD) in (
        await instance.get_events()
    )
    assert await instance.instance.next_wakeup() is None
    assert await instance.expected_signals() == (checks.review_signal,)
    progress = await instance.get_progress()
    assert "Put In Review" in [s.name for s in progress.executed_steps()]

    await instance.deliver_signal(checks.review_signal, checks.ReviewDecision(approve=approve))
    assert await instance.query_state() == checks.Decided(results, decision)


async def test_a_timeout_with_a_rejection_is_rejected_without_review(clock: TestClock) -> None:
    instance = await start(clock, StaticCheck("stuck", PENDING), StaticCheck("no", REJECTED))
    clock.advance(checks.TIMEOUT_THRESHOLD)
    await instance.run_due_wakeups()
    assert await instance.query_state() == checks.Decided(
        {"stuck": TIMED_OUT, "no": REJECTED}, Decision.REJECTED_BY_SYSTEM
    )


async def test_review_is_unexpected_when_the_system_decided(clock: TestClock) -> None:
    instance = await start(clock, StaticCheck("a", APPROVED))
    response = await instance.deliver_signal(checks.review_signal, checks.ReviewDecision(True))
    assert isinstance(response, UnexpectedSignal)


# -- the checkpoint -----------------------------------------------------------------------------


async def test_the_checkpoint_alone_restores_the_decision(clock: TestClock) -> None:
    check = StaticCheck("a", APPROVED)
    workflow = checks.checks_workflow(checks.FixedChecks([check]), DATA)
    runtime = InMemoryRuntime(workflow, initial_state=checks.Empty(), clock=clock)
    decided = checks.Decided({"a": REJECTED}, Decision.REJECTED_BY_OPERATOR)
    restored = await runtime.restore_from_events(
        "checks-1", [checks.CheckCompleted(decided.results, decided.decision)]
    )
    assert await restored.query_state() == decided
    assert await restored.status() == "finished"
    assert check.runs == 0


# -- serialization and the demo -----------------------------------------------------------------

PENDING_STATE = checks.Pending(checks.ChecksInput(DATA, ("a", "b")), {"a": PENDING})
STATES: list[checks.ChecksState] = [
    checks.Empty(),
    PENDING_STATE,
    checks.Executed({"a": TIMED_OUT, "b": REQUIRES_REVIEW}),
    checks.Decided({"a": APPROVED}, Decision.APPROVED_BY_OPERATOR),
]
EVENTS: list[checks.ChecksEvent] = [
    checks.ChecksRun({"a": PENDING, "b": REJECTED}),
    checks.ReviewDecisionTaken(approve=False),
    checks.CheckCompleted({"a": APPROVED}, Decision.REJECTED_BY_SYSTEM),
]


@pytest.mark.parametrize("state", STATES, ids=repr)
def test_every_state_round_trips_through_json(state: checks.ChecksState) -> None:
    codec = checks.checks_workflow(checks.FixedChecks([]), DATA).codecs().state
    assert codec.decode(*codec.encode(state)) == state


@pytest.mark.parametrize("event", EVENTS, ids=repr)
def test_every_event_round_trips_through_json_under_a_stable_tag(
    event: checks.ChecksEvent,
) -> None:
    codec = checks.checks_workflow(checks.FixedChecks([]), DATA).codecs().events
    tag, data = codec.encode(event)
    assert tag == f"checks.{type(event).__name__}"
    assert codec.decode(tag, data) == event


def test_demo_prints_each_outcome() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        asyncio.run(checks.main())
    text = out.getvalue()
    assert "decision=Decision.APPROVED_BY_SYSTEM" in text
    assert "after 2 min (6 runs of the fraud check): Executed(" in text
    assert "'fraud': CheckResult.TIMED_OUT}, decision=Decision.REJECTED_BY_OPERATOR)" in text
