"""The withdrawal workflow: money leaves a user's account once it passed every check.

A withdrawal is created by a signal and validated, its fee is computed, the funds are put
on hold, the checks engine (``workflows4py.examples.checks``, embedded with its own state and
events) decides, the payment is handed to an execution engine (retried every 2 minutes while that
engine is unreachable), and the engine's confirmation releases the funds. An operator may
cancel at any point before that; any rejection or cancellation cancels the funds lock.

Run it with ``python -m workflows4py.examples.withdrawal``: it walks through the scenarios
with a test clock, so waiting two minutes takes no time.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, fields, is_dataclass
from datetime import timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, Never, Protocol

from workflows4py import (
    WIO,
    Caught,
    Err,
    Ok,
    Result,
    SignalDef,
    SystemEvent,
    Workflow,
    WorkflowInstance,
)
from workflows4py.examples import checks
from workflows4py.runtime import Runtime
from workflows4py.testing import TestClock

EXECUTION_RETRY_DELAY = timedelta(minutes=2)
"""How long to wait before handing the payment to the execution engine again after a failure."""

# -- state ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Empty:
    pass


@dataclass(frozen=True)
class Initiated:
    tx_id: str
    amount: Decimal
    recipient: str

    def validated(self, fee: Decimal) -> Validated:
        return Validated(self.tx_id, self.amount, self.recipient, fee)


@dataclass(frozen=True)
class Validated:
    tx_id: str
    amount: Decimal
    recipient: str
    fee: Decimal

    def check_data(self) -> checks.CheckData:
        return checks.CheckData(self.tx_id, self.amount, self.recipient)

    def checking(self, check_results: checks.InProgress) -> Checking:
        return Checking(self.tx_id, self.amount, self.recipient, self.fee, check_results)

    def checked(self, check_results: checks.Decided) -> Checked:
        return Checked(self.tx_id, self.amount, self.recipient, self.fee, check_results)


@dataclass(frozen=True)
class Checking:
    """The checks engine is running; ``check_results`` is its state."""

    tx_id: str
    amount: Decimal
    recipient: str
    fee: Decimal
    check_results: checks.InProgress


@dataclass(frozen=True)
class Checked:
    tx_id: str
    amount: Decimal
    recipient: str
    fee: Decimal
    check_results: checks.Decided

    @property
    def net_amount(self) -> Decimal:
        return self.amount - self.fee

    def executed(self, external_transaction_id: str) -> Executed:
        return Executed(
            self.tx_id,
            self.amount,
            self.recipient,
            self.fee,
            self.check_results,
            external_transaction_id,
        )


@dataclass(frozen=True)
class Executed:
    """The execution engine accepted the payment; its confirmation is awaited."""

    tx_id: str
    amount: Decimal
    recipient: str
    fee: Decimal
    check_results: checks.Decided
    external_transaction_id: str


class Completed:
    """Where a withdrawal ends."""

    @dataclass(frozen=True)
    class Successfully:
        pass

    @dataclass(frozen=True)
    class Failed:
        error: str


WithdrawalState = (
    Empty
    | Initiated
    | Validated
    | Checking
    | Checked
    | Executed
    | Completed.Successfully
    | Completed.Failed
)

# -- domain errors (values, not exceptions) ---------------------------------------------------


@dataclass(frozen=True)
class InvalidInput:
    error: str


@dataclass(frozen=True)
class NotEnoughFunds:
    pass


@dataclass(frozen=True)
class RejectedInChecks:
    pass


@dataclass(frozen=True)
class RejectedByExecutionEngine:
    error: str


@dataclass(frozen=True)
class Cancelled:
    operator_id: str
    comment: str


WithdrawalRejection = (
    InvalidInput | NotEnoughFunds | RejectedInChecks | RejectedByExecutionEngine | Cancelled
)


class CancellationRefused(Exception):
    """Raised to the operator whose cancel request cannot be accepted; nothing is recorded."""


# -- the execution engine's answers -------------------------------------------------------------


class ExecutionResponse:
    """What the execution engine answers when a payment is handed to it."""

    @dataclass(frozen=True)
    class Accepted:
        external_id: str

    @dataclass(frozen=True)
    class Rejected:
        error: str


class ExecutionStatus(Enum):
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"

    def __repr__(self) -> str:
        return f"{type(self).__name__}.{self.name}"


# -- events (what the journal records) ------------------------------------------------------


@dataclass(frozen=True)
class WithdrawalAccepted:
    tx_id: str
    amount: Decimal
    recipient: str


@dataclass(frozen=True)
class WithdrawalRejected:
    error: str


@dataclass(frozen=True)
class FeeSet:
    fee: Decimal


class MoneyLocked:
    """What putting the funds on hold gave."""

    @dataclass(frozen=True)
    class Success:
        pass

    @dataclass(frozen=True)
    class NotEnoughFunds:
        pass


@dataclass(frozen=True)
class ChecksRun:
    """An event of the embedded checks engine (its timers' events included)."""

    inner: checks.ChecksEvent | SystemEvent


@dataclass(frozen=True)
class ExecutionInitiated:
    response: ExecutionResponse.Accepted | ExecutionResponse.Rejected


@dataclass(frozen=True)
class ExecutionCompleted:
    status: ExecutionStatus


@dataclass(frozen=True)
class MoneyReleased:
    pass


@dataclass(frozen=True)
class RejectionHandled:
    error: str


@dataclass(frozen=True)
class WithdrawalCancelledByOperator:
    operator_id: str
    comment: str


WithdrawalEvent = (
    WithdrawalAccepted
    | WithdrawalRejected
    | FeeSet
    | MoneyLocked.Success
    | MoneyLocked.NotEnoughFunds
    | ChecksRun
    | ExecutionInitiated
    | ExecutionCompleted
    | MoneyReleased
    | RejectionHandled
    | WithdrawalCancelledByOperator
)

# -- signals ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateWithdrawal:
    tx_id: str
    amount: Decimal
    recipient: str


@dataclass(frozen=True)
class ConfirmExecution:
    """The execution engine reports how the payment ended."""

    status: ExecutionStatus


@dataclass(frozen=True)
class CancelWithdrawal:
    operator_id: str
    comment: str
    accept_started_execution: bool = False


create_withdrawal_signal = SignalDef("withdrawal.create", request=CreateWithdrawal)
execution_completed_signal = SignalDef("withdrawal.execution-completed", request=ConfirmExecution)
cancel_signal = SignalDef("withdrawal.cancel", request=CancelWithdrawal)

# -- the services the steps call --------------------------------------------------------------


class WithdrawalService(Protocol):
    """The outside world of a withdrawal. It also is the checks engine's ChecksService."""

    async def calculate_fees(self, amount: Decimal) -> Decimal: ...

    async def put_money_on_hold(self, amount: Decimal) -> bool:
        """Hold ``amount`` on the user's account; False if the account lacks the funds."""
        ...

    async def initiate_execution(
        self, amount: Decimal, recipient: str
    ) -> ExecutionResponse.Accepted | ExecutionResponse.Rejected: ...

    async def release_funds(self, amount: Decimal) -> None:
        """The money on hold leaves the account."""
        ...

    async def cancel_funds_lock(self) -> None:
        """The money on hold is available to the user again."""
        ...

    def get_checks(self) -> Sequence[checks.Check]: ...


class FakeWithdrawalService:
    """An in-memory WithdrawalService: an account, a fixed fee, checks, an execution engine.

    ``execution_failures`` is how many times the execution engine is unreachable (raises)
    before it answers; ``execution_rejection`` makes it reject the payment with that error.
    ``calls`` counts the calls of each operation.
    """

    def __init__(
        self,
        *,
        funds: Decimal = Decimal(1000),
        fee: Decimal = Decimal(11),
        checks: Sequence[checks.Check] = (),
        execution_failures: int = 0,
        execution_rejection: str | None = None,
        external_id: str = "external-id-1",
    ) -> None:
        self.balance = funds
        self.on_hold = Decimal(0)
        self.fee = fee
        self.checks = tuple(checks)
        self.execution_failures = execution_failures
        self.execution_rejection = execution_rejection
        self.external_id = external_id
        self.calls: Counter[str] = Counter()

    async def calculate_fees(self, amount: Decimal) -> Decimal:
        self.calls["calculate_fees"] += 1
        return self.fee

    async def put_money_on_hold(self, amount: Decimal) -> bool:
        self.calls["put_money_on_hold"] += 1
        if amount > self.balance - self.on_hold:
            return False
        self.on_hold += amount
        return True

    async def initiate_execution(
        self, amount: Decimal, recipient: str
    ) -> ExecutionResponse.Accepted | ExecutionResponse.Rejected:
        self.calls["initiate_execution"] += 1
        if self.execution_failures > 0:
            self.execution_failures -= 1
            raise ConnectionError("the execution engine is unreachable")
        if self.execution_rejection is not None:
            return ExecutionResponse.Rejected(self.execution_rejection)
        return ExecutionResponse.Accepted(self.external_id)

    async def release_funds(self, amount: Decimal) -> None:
        self.calls["release_funds"] += 1
        self.on_hold -= amount
        self.balance -= amount

    async def cancel_funds_lock(self) -> None:
        self.calls["cancel_funds_lock"] += 1
        self.on_hold = Decimal(0)

    def get_checks(self) -> Sequence[checks.Check]:
        return self.checks


# -- steps that need no service ---------------------------------------------------------------


def accept_or_reject(
    state: Empty, request: CreateWithdrawal
) -> WithdrawalAccepted | WithdrawalRejected:
    if request.amount > 0:
        return WithdrawalAccepted(request.tx_id, request.amount, request.recipient)
    return WithdrawalRejected("Amount must be positive")


def check_input(
    state: Empty, event: WithdrawalAccepted | WithdrawalRejected
) -> Result[Initiated, InvalidInput]:
    match event:
        case WithdrawalAccepted(tx_id=tx_id, amount=amount, recipient=recipient):
            return Ok(Initiated(tx_id, amount, recipient))
        case WithdrawalRejected(error=error):
            return Err(InvalidInput(error))


def check_funds_locked(
    state: Validated, event: MoneyLocked.Success | MoneyLocked.NotEnoughFunds
) -> Result[Validated, NotEnoughFunds]:
    if isinstance(event, MoneyLocked.NotEnoughFunds):
        return Err(NotEnoughFunds())
    return Ok(state)


def checks_progress(state: Validated, inner: Any) -> WithdrawalState:
    """The withdrawal's state while the checks engine runs, from the engine's state."""
    if isinstance(inner, checks.Decided):
        return state.checked(inner)
    if isinstance(inner, checks.Empty | checks.Pending | checks.Executed):
        return state.checking(inner)
    return state  # the engine's input, before its first step ran


def unwrap_checks_event(event: Any) -> checks.ChecksEvent | SystemEvent | None:
    return event.inner if isinstance(event, ChecksRun) else None


def check_decision(state: Checked) -> Result[Checked, RejectedInChecks]:
    if state.check_results.decision.rejected:
        return Err(RejectedInChecks())
    return Ok(state)


def check_execution_response(
    state: Checked, event: ExecutionInitiated
) -> Result[Executed, RejectedByExecutionEngine]:
    match event.response:
        case ExecutionResponse.Accepted(external_id=external_id):
            return Ok(state.executed(external_id))
        case ExecutionResponse.Rejected(error=error):
            return Err(RejectedByExecutionEngine(error))


def check_execution_status(
    state: Executed, event: ExecutionCompleted
) -> Result[Executed, RejectedByExecutionEngine]:
    if event.status is ExecutionStatus.SUCCEEDED:
        return Ok(state)
    return Err(RejectedByExecutionEngine("Execution failed"))


def cancel(state: WithdrawalState, request: CancelWithdrawal) -> WithdrawalCancelledByOperator:
    if isinstance(state, Executed) and not request.accept_started_execution:
        raise CancellationRefused(
            "To cancel a withdrawal whose execution has already started, the request must "
            "accept that explicitly (accept_started_execution=True)."
        )
    if isinstance(state, Completed.Successfully | Completed.Failed):
        raise CancellationRefused(f"Unexpected state for cancellation: {state!r}")
    return WithdrawalCancelledByOperator(request.operator_id, request.comment)


def cancelled(
    state: WithdrawalState, event: WithdrawalCancelledByOperator
) -> Result[Never, Cancelled]:
    return Err(Cancelled(event.operator_id, event.comment))


# -- the workflow -----------------------------------------------------------------------------


def withdrawal_workflow(
    service: WithdrawalService,
) -> type[Workflow[WithdrawalState, WithdrawalEvent]]:
    """The withdrawal workflow, calling ``service`` (start it from ``Empty()``)."""

    async def calculate(state: Initiated) -> FeeSet:
        return FeeSet(await service.calculate_fees(state.amount))

    async def put_on_hold(state: Validated) -> MoneyLocked.Success | MoneyLocked.NotEnoughFunds:
        if await service.put_money_on_hold(state.amount):
            return MoneyLocked.Success()
        return MoneyLocked.NotEnoughFunds()

    def to_checks_input(state: Validated) -> checks.ChecksInput:
        return checks.checks_input(state.check_data(), service)

    async def initiate(state: Checked) -> ExecutionInitiated:
        return ExecutionInitiated(
            await service.initiate_execution(state.net_amount, state.recipient)
        )

    async def release(state: Executed) -> MoneyReleased:
        await service.release_funds(state.amount)
        return MoneyReleased()

    async def handle_rejection(
        failure: Caught[WithdrawalState, WithdrawalRejection],
    ) -> RejectionHandled:
        match failure.error:
            case InvalidInput(error=error):
                return RejectionHandled(error)
            case NotEnoughFunds():
                return RejectionHandled("Not enough funds on the user's account")
            case RejectedInChecks():
                await service.cancel_funds_lock()
                return RejectionHandled("Transaction rejected in checks")
            case RejectedByExecutionEngine(error=error):
                await service.cancel_funds_lock()
                return RejectionHandled(error)
            case Cancelled(operator_id=operator_id, comment=comment):
                await service.cancel_funds_lock()
                return RejectionHandled(f"Cancelled by {operator_id}. Comment: {comment}")

    class Withdrawal(Workflow[WithdrawalState, WithdrawalEvent]):
        validate = (
            WIO.handle_signal(create_withdrawal_signal, input=Empty)
            .purely(accept_or_reject)
            .handle_event_with_error(check_input)
            .void_response()
        )
        calculate_fees = WIO.run_io(Initiated, calculate).handle_event(
            lambda state, event: state.validated(event.fee)
        )
        put_funds_on_hold = WIO.run_io(Validated, put_on_hold).handle_event_with_error(
            check_funds_locked
        )
        run_checks = WIO.embed(
            checks.run_checks(service),
            input=to_checks_input,
            output=lambda state, decided: state.checked(decided),
            wrap=ChecksRun,
            unwrap=unwrap_checks_event,
            state=checks_progress,
            outer=Validated,
        )
        act_on_decision = WIO.pure_with_error(Checked, check_decision)
        initiate_execution = WIO.run_io(Checked, initiate).handle_event_with_error(
            check_execution_response
        )
        await_execution_completion = (
            WIO.handle_signal(execution_completed_signal, input=Executed)
            .purely(lambda state, request: ExecutionCompleted(request.status))
            .handle_event_with_error(check_execution_status)
            .void_response()
        )
        handle_cancellation = (
            WIO.handle_signal(cancel_signal)
            .purely(cancel)
            .handle_event_with_error(cancelled)
            .void_response()
        )
        release_funds = WIO.run_io(Executed, release).handle_event(
            lambda state, event: Completed.Successfully()
        )
        cancel_funds_if_needed = WIO.run_io(handle_rejection).handle_event(
            lambda failure, event: Completed.Failed(event.error)
        )

        # any exception while handing the payment over: try again 2 minutes later
        execute = initiate_execution.retry(EXECUTION_RETRY_DELAY) >> await_execution_completion
        definition = (
            (
                validate
                >> calculate_fees
                >> put_funds_on_hold
                >> run_checks
                >> act_on_decision
                >> execute
            ).interrupt_with(handle_cancellation)
            >> release_funds
        ).handle_error_with(cancel_funds_if_needed) >> WIO.noop()

    return Withdrawal


# -- the demo --------------------------------------------------------------------------------

IBAN = "DE89370400440532013000"


@dataclass(frozen=True)
class AmountLimitCheck:
    """Withdrawals above ``limit`` need a human look."""

    limit: Decimal
    key: str = "amount-limit"

    def run(self, data: checks.CheckData) -> checks.CheckResult:
        if data.amount > self.limit:
            return checks.CheckResult.REQUIRES_REVIEW
        return checks.CheckResult.APPROVED


@dataclass(frozen=True)
class BlockedRecipientCheck:
    """Withdrawals to a blocked account are rejected."""

    blocked: frozenset[str]
    key: str = "blocked-recipient"

    def run(self, data: checks.CheckData) -> checks.CheckResult:
        if data.recipient in self.blocked:
            return checks.CheckResult.REJECTED
        return checks.CheckResult.APPROVED


def render(value: object) -> str:
    """A state on one line, for the demo: amounts as numbers, the checks' input as its keys."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, checks.ChecksInput):  # its data repeats the withdrawal's fields
        return f"ChecksInput(checks={value.checks!r})"
    if is_dataclass(value) and not isinstance(value, type):
        shown = (f"{f.name}={render(getattr(value, f.name))}" for f in fields(value))
        return f"{type(value).__qualname__}({', '.join(shown)})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {render(v)}" for k, v in value.items()) + "}"
    return repr(value)


def show(label: str, value: object, width: int = 108) -> None:
    """Print ``label`` and ``value``, wrapping long values after a comma."""
    text = value if isinstance(value, str) else render(value)
    indent = " " * 26
    lines: list[str] = []
    line = f"  {label:<22}"
    for i, part in enumerate(text.split(", ")):
        if i == 0:
            line += part
        elif len(line) + 2 + len(part) > width:
            lines.append(line + ",")
            line = indent + part
        else:
            line += ", " + part
    print("\n".join([*lines, line]))


class Demo:
    """Starts instances (each with its own fake service, so in a runtime of its own) on one
    test clock."""

    def __init__(self) -> None:
        self.clock = TestClock()  # the demo moves time on instead of waiting
        self.count = 0

    def runtime(self, service: FakeWithdrawalService) -> Runtime:
        """An in-memory runtime of the withdrawal workflow calling ``service``."""
        return Runtime.memory([withdrawal_workflow(service)], clock=self.clock)

    async def start(
        self, service: FakeWithdrawalService, amount: int = 100, recipient: str = IBAN
    ) -> tuple[Runtime, WorkflowInstance[Any, Any]]:
        """A new instance, started from ``Empty()`` with the signal that creates a withdrawal."""
        runtime = self.runtime(service)
        (workflow,) = runtime.workflows
        self.count += 1
        request = CreateWithdrawal(f"tx-{self.count}", Decimal(amount), recipient)
        wd = await runtime.start(
            workflow,
            f"wd-{self.count}",
            initial_state=Empty(),
            signal=(create_withdrawal_signal, request),
        )
        return runtime, wd


async def happy_path(demo: Demo) -> None:
    print("== 1. Happy path: no checks, the execution engine confirms")
    service = FakeWithdrawalService()
    _, wd = await demo.start(service)
    show("after create:", await wd.query_state())
    await wd.deliver_signal(execution_completed_signal, ConfirmExecution(ExecutionStatus.SUCCEEDED))
    show("after confirmation:", await wd.query_state())
    show("balance:", f"{service.balance} (was 1000)")
    calls = service.calls.total()
    fresh = demo.runtime(service)
    (workflow,) = fresh.workflows
    recovered = await fresh.of(workflow).restore_instance(wd.id, await wd.get_journal())
    same = await recovered.query_state() == await wd.query_state()
    show(
        "rebuilt from journal:",
        f"same state: {same}; service calls: {service.calls.total() - calls}",
    )


async def rejections(demo: Demo) -> None:
    print("\n== 2. A negative amount")
    _, wd = await demo.start(FakeWithdrawalService(), amount=-100)
    show("state:", await wd.query_state())

    print("\n== 3. Not enough funds")
    _, wd = await demo.start(FakeWithdrawalService(funds=Decimal(50)))
    show("state:", await wd.query_state())

    print("\n== 4. A blocked recipient: rejected in checks, the funds lock is cancelled")
    service = FakeWithdrawalService(checks=[BlockedRecipientCheck(frozenset({IBAN}))])
    _, wd = await demo.start(service)
    show("state:", await wd.query_state())
    show("service calls:", dict(service.calls))


async def review(demo: Demo) -> None:
    print("\n== 5. A large amount needs a review; the operator approves")
    _, wd = await demo.start(FakeWithdrawalService(checks=[AmountLimitCheck(Decimal(500))]), 700)
    show("after create:", await wd.query_state())
    show("awaiting:", ", ".join(s.id for s in await wd.expected_signals()))
    await wd.deliver_signal(checks.review_signal, checks.ReviewDecision(approve=True))
    show("after review:", await wd.query_state())


async def execution_retry(demo: Demo) -> None:
    print("\n== 6. The execution engine is unreachable once: retried 2 minutes later")
    service = FakeWithdrawalService(execution_failures=1)
    runtime, wd = await demo.start(service)
    show("after create:", await wd.query_state())
    clock = demo.clock
    show("next attempt at:", f"{await wd.next_wakeup():%H:%M:%S} (now {clock.now():%H:%M:%S})")
    clock.advance(EXECUTION_RETRY_DELAY + timedelta(seconds=1))
    await runtime.run_due_wakeups()
    show("2m 1s later:", await wd.query_state())
    show("execution calls:", str(service.calls["initiate_execution"]))


async def cancellations(demo: Demo) -> None:
    print("\n== 7. A check stays pending; an operator cancels")
    service = FakeWithdrawalService(
        checks=[checks.StaticCheck("fraud", checks.CheckResult.PENDING)]
    )
    _, wd = await demo.start(service)
    show("after create:", await wd.query_state())
    await wd.deliver_signal(cancel_signal, CancelWithdrawal("operator-1", "cancelled"))
    show("after cancel:", await wd.query_state())
    show("service calls:", dict(service.calls))

    print("\n== 8. Cancelling once the execution started must be accepted explicitly")
    _, wd = await demo.start(FakeWithdrawalService())
    try:
        await wd.deliver_signal(cancel_signal, CancelWithdrawal("operator-1", "too late"))
    except CancellationRefused as refused:
        show("cancel refused:", str(refused))
    show("state:", f"still {type(await wd.query_state()).__name__}")
    accepted = CancelWithdrawal("operator-1", "too late", accept_started_execution=True)
    await wd.deliver_signal(cancel_signal, accepted)
    show("after accepting:", await wd.query_state())


async def checks_timeout(demo: Demo) -> None:
    print("\n== 9. A check never answers: timed out after 2 minutes, the operator rejects")
    service = FakeWithdrawalService(
        checks=[checks.StaticCheck("fraud", checks.CheckResult.PENDING)]
    )
    runtime, wd = await demo.start(service)
    demo.clock.advance(checks.TIMEOUT_THRESHOLD)
    await runtime.run_due_wakeups()  # the retry timer is due too: the timeout goes first
    show("2 min later:", await wd.query_state())
    await wd.deliver_signal(checks.review_signal, checks.ReviewDecision(approve=False))
    show("after review:", await wd.query_state())


async def main() -> None:
    demo = Demo()
    for scenario in (
        happy_path,
        rejections,
        review,
        execution_retry,
        cancellations,
        checks_timeout,
    ):
        await scenario(demo)


if __name__ == "__main__":
    logging.basicConfig(stream=sys.stdout, format="  (log) %(message)s")
    asyncio.run(main())
