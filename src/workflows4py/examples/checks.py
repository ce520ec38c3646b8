"""The checks engine: runs a set of checks on a transaction and decides whether it may go on.

Checks that answer "pending" are run again every 20 seconds; after 2 minutes the ones still
unfinished count as timed out. A rejection rejects the transaction; a check that needs a
review (or timed out) waits for an operator's decision; otherwise the system approves.

It is a workflow of its own, with its own state and events: the withdrawal workflow
(``workflows4py.examples.withdrawal``) embeds it, and :func:`checks_workflow` runs it
alone. Run this module (``python -m workflows4py.examples.checks``) for a short demo.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from enum import Enum
from typing import Never, Protocol

from workflows4py import WIO, SignalDef, Workflow, WorkflowInstance, type_tag
from workflows4py.runtime import Runtime
from workflows4py.testing import TestClock

_log = logging.getLogger(__name__)

RETRY_BACKOFF = timedelta(seconds=20)
"""How long the engine waits before running the pending checks again."""

TIMEOUT_THRESHOLD = timedelta(minutes=2)
"""How long checks may stay pending before the engine stops waiting for them."""

# -- check results and decisions ---------------------------------------------------------------


class CheckResult(Enum):
    """What a check answers. Every result but PENDING is final for that check."""

    PENDING = "Pending"
    APPROVED = "Approved"
    REJECTED = "Rejected"
    REQUIRES_REVIEW = "RequiresReview"
    TIMED_OUT = "TimedOut"

    @property
    def finished(self) -> bool:
        return self is not CheckResult.PENDING

    def __repr__(self) -> str:
        return f"{type(self).__name__}.{self.name}"


class Decision(Enum):
    """The outcome of the checks, and who took it."""

    APPROVED_BY_SYSTEM = "ApprovedBySystem"
    REJECTED_BY_SYSTEM = "RejectedBySystem"
    APPROVED_BY_OPERATOR = "ApprovedByOperator"
    REJECTED_BY_OPERATOR = "RejectedByOperator"

    @property
    def rejected(self) -> bool:
        return self in (Decision.REJECTED_BY_SYSTEM, Decision.REJECTED_BY_OPERATOR)

    def __repr__(self) -> str:
        return f"{type(self).__name__}.{self.name}"


# -- what is checked, and the checks ----------------------------------------------------------


@dataclass(frozen=True)
class CheckData:
    """What the checks look at."""

    transaction_id: str
    amount: Decimal
    recipient: str


class Check(Protocol):
    """A pluggable check: ``run`` returns a result (plain or awaitable) or raises.

    An exception does not fail the workflow: the check's result becomes REQUIRES_REVIEW.
    """

    @property
    def key(self) -> str: ...

    def run(self, data: CheckData) -> CheckResult | Awaitable[CheckResult]: ...


class ChecksService(Protocol):
    """Where the engine finds the checks to run (the withdrawal service is one)."""

    def get_checks(self) -> Sequence[Check]: ...


class FixedChecks:
    """A ChecksService with a fixed list of checks."""

    def __init__(self, checks: Sequence[Check]) -> None:
        self._checks = tuple(checks)

    def get_checks(self) -> Sequence[Check]:
        return self._checks


class StaticCheck:
    """A check that always answers ``result``; counts how often it ran."""

    def __init__(self, key: str, result: CheckResult) -> None:
        self.key = key
        self.result = result
        self.runs = 0

    def run(self, data: CheckData) -> CheckResult:
        self.runs += 1
        return self.result


@dataclass(frozen=True)
class ChecksInput:
    """The data to check and the keys of the checks to run on it."""

    data: CheckData
    checks: tuple[str, ...]


def checks_input(data: CheckData, service: ChecksService) -> ChecksInput:
    """The input that runs every check ``service`` offers on ``data``."""
    return ChecksInput(data, tuple(check.key for check in service.get_checks()))


# -- state --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Empty:
    """Nothing has run yet."""


@dataclass(frozen=True)
class Pending:
    """Checks are running; ``results`` holds the latest answer of each check that ran."""

    input: ChecksInput
    results: dict[str, CheckResult]

    @property
    def pending_checks(self) -> tuple[str, ...]:
        """Keys of the checks without a final result, in input order."""
        return tuple(
            key
            for key in self.input.checks
            if key not in self.results or not self.results[key].finished
        )

    def add_results(self, results: dict[str, CheckResult]) -> Pending:
        return Pending(self.input, {**self.results, **results})

    def as_executed(self) -> Executed | None:
        """Executed once every check has a final result, else None."""
        if self.pending_checks:
            return None
        return Executed({key: self.results[key] for key in self.input.checks})

    def timed_out(self) -> Executed:
        """Executed with every unfinished check (including any never run) timed out."""
        results: dict[str, CheckResult] = {}
        for key in self.input.checks:
            result = self.results.get(key, CheckResult.PENDING)
            results[key] = result if result.finished else CheckResult.TIMED_OUT
        return Executed(results)


@dataclass(frozen=True)
class Executed:
    """Every check has a final result; the decision is still to be taken."""

    results: dict[str, CheckResult]

    @property
    def rejected(self) -> bool:
        return CheckResult.REJECTED in self.results.values()

    @property
    def requires_review(self) -> bool:
        """No check rejected, and some check needs a human look (or gave no answer in time)."""
        return not self.rejected and any(
            r in (CheckResult.REQUIRES_REVIEW, CheckResult.TIMED_OUT) for r in self.results.values()
        )

    def decided(self, decision: Decision) -> Decided:
        return Decided(self.results, decision)


@dataclass(frozen=True)
class Decided:
    """The checks are over: their results and the decision taken on them."""

    results: dict[str, CheckResult]
    decision: Decision


InProgress = Empty | Pending | Executed
ChecksState = Empty | Pending | Executed | Decided

# -- events (tagged, so they keep their names when embedded in another workflow's journal) -----


@type_tag("checks.ChecksRun")
@dataclass(frozen=True)
class ChecksRun:
    """The pending checks ran and answered ``results``."""

    results: dict[str, CheckResult]


@type_tag("checks.ReviewDecisionTaken")
@dataclass(frozen=True)
class ReviewDecisionTaken:
    approve: bool


@type_tag("checks.CheckCompleted")
@dataclass(frozen=True)
class CheckCompleted:
    """Checkpoint: the results and the decision, enough to restore the outcome on replay."""

    results: dict[str, CheckResult]
    decision: Decision


ChecksEvent = ChecksRun | ReviewDecisionTaken | CheckCompleted

# -- the operator's review ----------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewDecision:
    approve: bool


review_signal = SignalDef("checks.review", request=ReviewDecision)

# -- steps --------------------------------------------------------------------------------------


async def _run_check(check: Check | None, key: str, data: CheckData) -> CheckResult:
    try:
        if check is None:
            raise LookupError(f"no check is registered under the key {key!r}")
        outcome = check.run(data)
        result = await outcome if inspect.isawaitable(outcome) else outcome
        if not isinstance(result, CheckResult):
            raise TypeError(f"check {key!r} returned {result!r}, not a CheckResult")
    except Exception as error:
        _log.warning("check %r failed (%r); its result needs a review", key, error)
        return CheckResult.REQUIRES_REVIEW
    return result


def _operator_decision(state: Executed, event: ReviewDecisionTaken) -> Decided:
    return state.decided(
        Decision.APPROVED_BY_OPERATOR if event.approve else Decision.REJECTED_BY_OPERATOR
    )


def _system_decision(state: Executed) -> Decided:
    return state.decided(
        Decision.REJECTED_BY_SYSTEM if state.rejected else Decision.APPROVED_BY_SYSTEM
    )


def _to_checkpoint(_input: ChecksInput, decided: Decided) -> CheckCompleted:
    return CheckCompleted(decided.results, decided.decision)


def _from_checkpoint(_input: ChecksInput, event: CheckCompleted) -> Decided:
    return Decided(event.results, event.decision)


def run_checks(service: ChecksService) -> WIO[ChecksInput, Never, Decided]:
    """The checks engine, running the checks ``service`` offers."""

    async def run_pending_checks(state: Pending) -> ChecksRun:
        available = {check.key: check for check in service.get_checks()}
        data = state.input.data
        return ChecksRun(
            {key: await _run_check(available.get(key), key, data) for key in state.pending_checks}
        )

    initialize = WIO.pure(ChecksInput, lambda i: Pending(i, {}))
    run_pending = (
        WIO.run_io(Pending, run_pending_checks)
        .handle_event(lambda state, event: state.add_results(event.results))
        .named("Run Pending Checks")
    )
    await_retry = WIO.timer(RETRY_BACKOFF, input=Pending, name="Await Retry")
    until_all_completed = WIO.repeat(run_pending).until_some(
        Pending.as_executed,
        on_restart=await_retry,
        name="All checks completed?",
        release="Yes",
        restart="No",
    )
    execution_timeout = WIO.timer(TIMEOUT_THRESHOLD, input=Pending, name="Execution Timeout")
    put_in_review = WIO.pure(Pending, Pending.timed_out).named("Put In Review")

    handle_review = (
        WIO.handle_signal(review_signal, input=Executed)
        .purely(lambda state, request: ReviewDecisionTaken(request.approve))
        .handle_event(_operator_decision)
        .void_response()
    )
    system_decision = WIO.pure(Executed, _system_decision).named("System Decision")
    decide = WIO.choose(
        Executed,
        lambda executed: executed.requires_review,
        handle_review,
        system_decision,
        name="Requires review?",
    )

    checks = initialize >> until_all_completed.interrupt_with(execution_timeout >> put_in_review)
    return (checks >> decide).checkpointed(_to_checkpoint, _from_checkpoint)


def checks_workflow(
    service: ChecksService, data: CheckData
) -> type[Workflow[ChecksState, ChecksEvent]]:
    """The engine as a workflow of its own, checking ``data`` (start it from ``Empty()``)."""
    start = checks_input(data, service)

    def provide_input(_state: ChecksState) -> ChecksInput:
        return start

    class ChecksEngine(Workflow[ChecksState, ChecksEvent]):
        definition = run_checks(service).map_input(provide_input)

    return ChecksEngine


# -- the demo ---------------------------------------------------------------------------------

DATA = CheckData("tx-1", Decimal("100.00"), "DE89 3704 0044 0532 0130 00")


async def start(
    service: ChecksService, instance_id: str, clock: TestClock
) -> tuple[Runtime, WorkflowInstance[ChecksState, ChecksEvent]]:
    """An instance of the engine alone, calling ``service``, in a runtime of its own."""
    workflow = checks_workflow(service, DATA)
    runtime = Runtime.memory([workflow], clock=clock)
    return runtime, await runtime.start(workflow, instance_id, initial_state=Empty())


async def main() -> None:
    clock = TestClock()  # the demo moves time on instead of waiting

    print("== All checks approve: the system decides")
    service = FixedChecks([StaticCheck("sanctions", CheckResult.APPROVED)])
    _, instance = await start(service, "checks-1", clock)
    print("state:", await instance.query_state())

    print("\n== A check stays pending: retried every 20 s, timed out after 2 min, reviewed")
    slow = StaticCheck("fraud", CheckResult.PENDING)
    service = FixedChecks([StaticCheck("sanctions", CheckResult.APPROVED), slow])
    runtime, instance = await start(service, "checks-2", clock)
    print("state:", await instance.query_state())
    for _ in range(6):
        clock.advance(RETRY_BACKOFF)
        await runtime.run_due_wakeups()
    print(f"after 2 min ({slow.runs} runs of the fraud check):", await instance.query_state())
    await instance.deliver_signal(review_signal, ReviewDecision(approve=False))
    print("after the review:", await instance.query_state())


if __name__ == "__main__":
    asyncio.run(main())
