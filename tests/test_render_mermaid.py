"""Mermaid flowcharts (``render.mermaid``): a golden file for every node kind, every draft
form, both examples and the progress of instances along their journals (the withdrawal's
among them: waiting, interrupted, failed), each text checked by Mermaid's own parser, and
one test per drawing convention.

The golden files are ``tests/golden/mermaid/<case>.mmd``. After a deliberate change to the
renderer, write them again with ``UPDATE_GOLDEN=1 .venv/bin/pytest
tests/test_render_mermaid.py`` and read the diff before committing it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from diagram_tools import check_mermaid

from workflows4py import (
    WIO,
    Caught,
    Err,
    Ok,
    Result,
    RetryAgain,
    RetryFailure,
    SignalDef,
    StepProgress,
    Workflow,
    WorkflowInstance,
    draft,
    progress_of,
    render,
)
from workflows4py.engine import ParkedMark
from workflows4py.examples import checks
from workflows4py.examples import pull_request as pr
from workflows4py.examples import withdrawal as wd
from workflows4py.runtime import Runtime
from workflows4py.testing import TestClock

GOLDEN = Path(__file__).parent / "golden" / "mermaid"
ROOT = Path(__file__).resolve().parent.parent
START = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

# -- a small world for the node kinds -----------------------------------------------------------


@dataclass(frozen=True)
class Order:
    items: tuple[str, ...] = ()
    approved_by: str | None = None

    def add(self, item: str) -> Order:
        return replace(self, items=(*self.items, item))


@dataclass(frozen=True)
class Packed:
    item: str


@dataclass(frozen=True)
class Shipped:
    item: str


@dataclass(frozen=True)
class Approved:
    by: str


@dataclass(frozen=True)
class Cancelled:
    by: str


@dataclass(frozen=True)
class Attempted:
    at: datetime


@dataclass(frozen=True)
class Saved:
    items: tuple[str, ...]


@dataclass(frozen=True)
class ItemDone:
    key: str
    event: Packed


@dataclass(frozen=True)
class OutOfStock:
    pass


@dataclass(frozen=True)
class NotApproved:
    by: str


@dataclass(frozen=True)
class Approve:
    by: str
    yes: bool = True


approve = SignalDef("order.approve", request=Approve)
cancel = SignalDef("order.cancel", request=Approve)


async def pack(order: Order) -> Packed:
    return Packed("box")


async def ship(order: Order) -> Shipped:
    return Shipped("box")


def packed(order: Order, event: Packed) -> Order:
    return order.add(event.item)


def shipped(order: Order, event: Shipped) -> Result[Order, OutOfStock]:
    return Err(OutOfStock()) if not order.items else Ok(order.add("shipped"))


def decided(order: Order, event: Approved) -> Result[Order, NotApproved]:
    return Ok(replace(order, approved_by=event.by))


def in_stock(order: Order) -> Result[Order, OutOfStock]:
    return Err(OutOfStock()) if "none" in order.items else Ok(order)


def refund(failure: Caught[Order, Any]) -> Order:
    return failure.state.add("refunded")


def approval(signal: SignalDef[Approve, None] = approve) -> WIO[Order, NotApproved, Order]:
    return (
        WIO.handle_signal(signal, input=Order)
        .purely(lambda order, request: Approved(request.by))
        .handle_event_with_error(decided)
        .void_response()
    )


pack_items = WIO.run_io(Order, pack).handle_event(packed).named("Pack Items")
ship_items = WIO.run_io(Order, ship).handle_event_with_error(shipped).named("Ship Items")
check_stock = WIO.pure_with_error(Order, in_stock).named("Check Stock")
wait_a_day = WIO.timer(timedelta(hours=24), input=Order, name="Wait A Day")
await_approval = approval().named("Await Approval")


def cancellation() -> WIO[Order, Any, Order]:
    return (
        WIO.handle_signal(cancel, input=Order)
        .purely(lambda order, request: Cancelled(request.by), event=Cancelled)
        .handle_event(lambda order, event: order.add(f"cancelled by {event.by}"))
        .void_response()
        .named("Cancel Order")
    )


def failed_attempt(failure: RetryFailure[Order, int]) -> Attempted:
    return Attempted(failure.now + timedelta(minutes=5))


def again(order: Order, event: Attempted, attempts: int) -> RetryAgain[int]:
    return RetryAgain(attempts + 1, event.at)


def to_saved(order: Order, out: Order) -> Saved:
    return Saved(out.items)


def from_saved(order: Order, event: Saved) -> Order:
    return Order(event.items)


def unwrap_item(event: Any) -> tuple[str, Any] | None:
    return (event.key, event.event) if isinstance(event, ItemDone) else None


async def pack_one(item: str) -> Packed:
    return Packed(item)


def items_of(order: Order) -> list[str]:
    return list(order.items)


def for_each_item() -> WIO[Order, Any, Order]:
    body = WIO.run_io(str, pack_one).handle_event(lambda item, event: Order((event.item,)))
    body = body.named("Pack Item")
    return WIO.for_each(items_of, body, input=Order, name="Pack Every Item").build(
        wrap=ItemDone,
        unwrap=unwrap_item,
        interim=lambda order, done: order,
        output=lambda order, done: order.add("all packed"),
    )


def parallel_packing() -> WIO[Order, Any, Order]:
    return (
        WIO.parallel(lambda order: order, input=Order)
        .branch(pack_items, incorporate=lambda interim, branch: interim)
        .branch(await_approval, incorporate=lambda interim, branch: interim)
        .output(lambda order, outputs: order.add("packed and approved"))
    )


def pick_next(order: Order) -> WIO[Order, Any, Order]:
    return ship_items if order.items else pack_items


def loop(on_restart: bool) -> WIO[Order, Any, Order]:
    body = pack_items
    if not on_restart:
        return WIO.repeat(body).until(lambda order: len(order.items) >= 3, name="Three Items?")
    return WIO.repeat(body).until(
        lambda order: len(order.items) >= 3,
        on_restart=approval().named("Approve Another"),
        name="Three Items?",
        release="Enough",
        restart="More",
    )


def collect_twelve() -> WIO[Order, Any, Order]:
    add = (
        WIO.handle_signal(approve, input=Order)
        .purely(lambda order, request: Approved(request.by), event=Approved)
        .handle_event(lambda order, event: order.add(event.by))
        .void_response()
        .named("Add Item")
    )
    return WIO.repeat(add).until(lambda order: len(order.items) >= 12, name="Twelve Items?")


def embedded() -> WIO[Order, Any, Order]:
    return WIO.embed(
        pack_items >> ship_items,
        input=lambda order: order,
        output=lambda order, inner: inner,
        wrap=lambda event: event,
        unwrap=lambda event: event,
        outer=Order,
        name="Packing",
    )


def recovered() -> WIO[Order, Any, Order]:
    return WIO.recover(from_saved, event=Saved) >> ship_items


KINDS: dict[str, WIO[Any, Any, Any]] = {
    "pure": WIO.pure(Order, lambda order: order.add("gift wrap")).named("Gift Wrap"),
    "pure-unnamed": WIO.pure(Order, lambda order: order) >> pack_items,
    "pure-error": check_stock,
    "run-io": pack_items,
    "run-io-error": ship_items,
    "and-then": pack_items >> ship_items >> wait_a_day,
    "handle-signal": await_approval,
    "handle-signal-unnamed": approval(),
    "handle-error-with": (check_stock >> ship_items).handle_error_with(
        WIO.pure(refund).named("Refund")
    ),
    "handle-error-bare-handler": check_stock.handle_error_with(WIO.pure(refund)) >> pack_items,
    "handle-error-bare-handler-last": check_stock.handle_error_with(WIO.pure(refund)),
    "timer": wait_a_day,
    "timer-dynamic": WIO.timer(lambda order: timedelta(minutes=len(order.items)), input=Order),
    "fork": WIO.choose(
        Order, lambda order: bool(order.items), ship_items, pack_items, name="Anything Packed?"
    ),
    "fork-otherwise": (
        WIO.fork(Order, name="How Big?")
        .when(lambda order: len(order.items) > 3, await_approval, name="Large")
        .when(lambda order: bool(order.items), ship_items, name="Small")
        .otherwise(WIO.pure(Order, lambda order: order), name="Empty")
    ),
    "loop": loop(on_restart=True),
    "simple-loop": loop(on_restart=False),
    "parallel": parallel_packing(),
    "for-each": for_each_item(),
    "embed": embedded(),
    "interruption-signal": (pack_items >> ship_items).interrupt_with(
        cancellation() >> WIO.pure(Order, lambda order: order.add("refund")).named("Refund")
    ),
    "interruption-timer": await_approval.interrupt_with(
        WIO.timer(timedelta(days=2), input=Order, name="Give Up") >> pack_items
    ),
    "flat-map": pack_items.flat_map(pick_next),
    "checkpoint": (pack_items >> ship_items).checkpointed(to_saved, from_saved),
    "recovery": recovered(),
    "retry": pack_items.retry(timedelta(minutes=1)),
    "retry-stateful": pack_items.retry_stateful(
        initial=0, on_error=failed_attempt, handle_event=again
    ),
    "end": pack_items >> WIO.end(),
}
TECHNICAL = {"checkpoint", "recovery"}


# -- every draft form ---------------------------------------------------------------------------


class PullRequestDraft:
    create_pr = draft.signal()
    run_pipeline = draft.step(error="Critical Issue")
    process_review = draft.signal(error="Rejected")
    merge_pr = draft.step()
    close_pr = draft.step(description="Tell the author why")
    definition = (create_pr >> run_pipeline >> process_review >> merge_pr).handle_error_with(
        close_pr
    )


DRAFTS: dict[str, WIO[Any, Any, Any]] = {
    "draft-step": draft.step("Send Invoice", error="No Address", description="By e-mail"),
    "draft-signal": draft.signal("Approval Required", description="From a manager"),
    "draft-timer": draft.timer("Wait For Review", timedelta(hours=24)),
    "draft-timer-dynamic": draft.timer("Wait For Payment"),
    "draft-choice": draft.choice(
        "Review Decision", {"Approved": draft.step("Approve"), "Rejected": draft.step("Reject")}
    ),
    "draft-for-each": draft.for_each(draft.step("Sub Workflow"), "For Each Draft"),
    "draft-loop": draft.repeat(
        draft.step("Process Item"),
        condition="Is processing complete?",
        on_restart=draft.timer("Wait before retry", timedelta(minutes=1)),
    ),
    "draft-parallel": draft.parallel(draft.step("Task A"), draft.step("Task B"), draft.step("C")),
    "draft-interruption": (
        draft.step("Validate Document")
        >> (
            draft.step("Extract Content").interrupt_with(
                draft.interruption_signal("Urgent Processing Request")
            )
        ).interrupt_with(draft.interruption_timeout("Processing Deadline", timedelta(hours=2)))
    ),
    "draft-retry": draft.retry(draft.step("Api Call")),
    "draft-checkpoint": draft.checkpoint(draft.step("Base")),
    "draft-recovery": draft.recovery(),
    "draft-error-handler": draft.step("My Step").handle_error_with(draft.step("Handle Error")),
    "pull-request-draft": PullRequestDraft.definition,
}
DRAFT_TECHNICAL = {"draft-checkpoint", "draft-recovery"}


# -- the examples -------------------------------------------------------------------------------


def withdrawal_definition(
    service: wd.FakeWithdrawalService | None = None,
) -> type[Workflow[Any, Any]]:
    return wd.withdrawal_workflow(service or wd.FakeWithdrawalService())


EXAMPLES: dict[str, Any] = {
    "pull-request": pr.PullRequest,
    "withdrawal": withdrawal_definition(),
    "withdrawal-technical": withdrawal_definition(),
    "checks-engine": checks.checks_workflow(checks.FixedChecks(()), checks.DATA),
}
EXAMPLE_TECHNICAL = {"withdrawal-technical"}


# -- instances along their journals -------------------------------------------------------------

OrderEvent = Packed | Shipped | Approved | Cancelled | Attempted | Saved | ItemDone
Script = Callable[[WorkflowInstance[Any, Any], Runtime, TestClock], Awaitable[None]]


def workflow(name: str, definition: WIO[Any, Any, Any]) -> type[Workflow[Any, Any]]:
    class Flow(Workflow[Order, OrderEvent]):
        pass

    Flow.id = name
    Flow.definition = definition
    return Flow


class Flaky:
    """An effect that raises its first ``failures`` times."""

    def __init__(self, failures: int) -> None:
        self.failures = failures

    async def __call__(self, order: Order) -> Packed:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("the packing robot is down")
        return Packed("box")


@dataclass(frozen=True)
class Journey:
    """An instance of ``workflow`` started from ``initial`` (with ``signal``), then
    ``script``; ``points`` names the progress after that many journal entries (``None``:
    the progress now)."""

    workflow: type[Workflow[Any, Any]]
    initial: Any
    points: dict[str, int | None]
    script: Script | None = None
    signal: tuple[SignalDef[Any, Any], Any] | None = None


async def travel(journey: Journey) -> dict[str, StepProgress]:
    clock = TestClock(START)
    flow = journey.workflow
    async with Runtime.memory([flow], clock=clock) as runtime:
        started = await runtime.start(
            flow, "i-1", initial_state=journey.initial, signal=journey.signal
        )
        if journey.script is not None:
            await journey.script(started, runtime, clock)
        instance = await runtime.get(flow, "i-1")
        found: dict[str, StepProgress] = {}
        for name, point in journey.points.items():
            if point is None:
                found[name] = await instance.get_progress()
            else:
                found[name] = await instance.progress_at(point)
        return found


def signal_script(*deliveries: tuple[SignalDef[Any, Any], Any]) -> Script:
    async def script(
        instance: WorkflowInstance[Any, Any], runtime: Runtime, clock: TestClock
    ) -> None:
        for signal, request in deliveries:
            await instance.deliver_signal(signal, request)

    return script


def wait_script(delay: timedelta, *then: tuple[SignalDef[Any, Any], Any]) -> Script:
    async def script(
        instance: WorkflowInstance[Any, Any], runtime: Runtime, clock: TestClock
    ) -> None:
        clock.advance(delay)
        await runtime.run_due_wakeups()
        await signal_script(*then)(instance, runtime, clock)

    return script


async def terminate(
    instance: WorkflowInstance[Any, Any], runtime: Runtime, clock: TestClock
) -> None:
    await runtime.terminate("stopped", instance.id, "ordered twice")


def withdrawal_journey(
    points: dict[str, int | None],
    script: Script | None = None,
    amount: int = 100,
    **service: Any,
) -> Journey:
    request = wd.CreateWithdrawal("tx-1", Decimal(amount), wd.IBAN)
    return Journey(
        withdrawal_definition(wd.FakeWithdrawalService(**service)),
        wd.Empty(),
        points,
        script,
        (wd.create_withdrawal_signal, request),
    )


PENDING = [checks.StaticCheck("fraud", checks.CheckResult.PENDING)]
REVIEW = [wd.AmountLimitCheck(Decimal(500))]
CONFIRM = (wd.execution_completed_signal, wd.ConfirmExecution(wd.ExecutionStatus.SUCCEEDED))
CANCEL = (wd.cancel_signal, wd.CancelWithdrawal("operator-1", "on request"))


def pr_journey(points: dict[str, int | None], commit: str, *reviews: bool) -> Journey:
    script = signal_script(*((pr.review_pr_signal, pr.ReviewRequest(r)) for r in reviews))
    create = (pr.create_pr_signal, pr.CreateRequest(commit))
    return Journey(pr.PullRequest, pr.Empty(), points, script, create)


JOURNEYS = [
    pr_journey({"pull-request-started": 1, "pull-request-created": 2}, "a1b2c3"),
    pr_journey({"pull-request-merged": None}, "a1b2c3", True),
    pr_journey({"pull-request-rejected": None}, "a1b2c3", False),
    pr_journey({"pull-request-unknown-commit": None}, "0123456789abcdef"),
    withdrawal_journey(
        {"withdrawal-awaiting-creation": 1, "withdrawal-awaiting-execution": None},
    ),
    withdrawal_journey({"withdrawal-completed": None}, signal_script(CONFIRM)),
    withdrawal_journey(
        {"withdrawal-checks-running": 5, "withdrawal-checks-waiting": None}, checks=PENDING
    ),
    withdrawal_journey(
        {"withdrawal-cancelled-in-checks": None}, signal_script(CANCEL), checks=PENDING
    ),
    withdrawal_journey(
        {"withdrawal-checks-timed-out": None}, wait_script(checks.TIMEOUT_THRESHOLD), checks=PENDING
    ),
    withdrawal_journey({"withdrawal-awaiting-review": None}, amount=700, checks=REVIEW),
    withdrawal_journey(
        {"withdrawal-reviewed": None},
        signal_script((checks.review_signal, checks.ReviewDecision(approve=True)), CONFIRM),
        amount=700,
        checks=REVIEW,
    ),
    withdrawal_journey({"withdrawal-rejected-by-engine": None}, execution_rejection="closed"),
    withdrawal_journey({"withdrawal-not-enough-funds": None}, funds=Decimal(50)),
    withdrawal_journey(
        {"withdrawal-execution-retried": None},
        wait_script(wd.EXECUTION_RETRY_DELAY + timedelta(seconds=1)),
        execution_failures=1,
    ),
    Journey(workflow("fork", KINDS["fork"]), Order(("a",)), {"progress-fork-taken": None}),
    Journey(
        workflow("loop", KINDS["loop"]),
        Order(),
        {"progress-loop-round-2": 3, "progress-loop-done": None},
        signal_script((approve, Approve("ann")), (approve, Approve("bob"))),
    ),
    Journey(
        workflow("twelve", collect_twelve()),
        Order(),
        {"progress-loop-earlier-rounds": None},
        signal_script(*[(approve, Approve(f"clerk {n}")) for n in range(1, 13)]),
    ),
    Journey(workflow("par", KINDS["parallel"]), Order(), {"progress-parallel-half": None}),
    Journey(workflow("each", KINDS["for-each"]), Order(("a", "b")), {"progress-for-each": None}),
    Journey(workflow("none", KINDS["for-each"]), Order(), {"progress-for-each-empty": None}),
    Journey(
        workflow("dyn", KINDS["flat-map"]), Order(("a",)), {"progress-flat-map-resolved": None}
    ),
    Journey(workflow("timer", KINDS["timer"]), Order(), {"progress-timer-waiting": None}),
    Journey(
        workflow("fails", KINDS["pure-error"]), Order(("none",)), {"progress-unhandled-error": None}
    ),
    Journey(
        workflow("timeout", KINDS["interruption-timer"]),
        Order(),
        {"progress-interrupted-by-timer": None},
        wait_script(timedelta(days=2)),
    ),
    Journey(
        workflow("stopped", await_approval >> pack_items),
        Order(),
        {"progress-terminated": None},
        terminate,
    ),
    Journey(
        workflow(
            "flaky",
            WIO.run_io(Order, Flaky(2))
            .handle_event(packed)
            .named("Pack Items")
            .retry_stateful(initial=0, on_error=failed_attempt, handle_event=again),
        ),
        Order(),
        {"progress-retry-failing": None},
    ),
]


# -- every case, rendered and parsed once -------------------------------------------------------


def definition_cases() -> dict[str, str]:
    found: dict[str, str] = {}
    for cases, technical in ((KINDS, TECHNICAL), (DRAFTS, DRAFT_TECHNICAL)):
        for name, definition in cases.items():
            found[name] = render.mermaid(definition, technical=name in technical)
    for name, subject in EXAMPLES.items():
        found[name] = render.mermaid(subject, technical=name in EXAMPLE_TECHNICAL)
    found["checkpoint-hidden"] = render.mermaid(KINDS["checkpoint"])
    found["recovery-hidden"] = render.mermaid(KINDS["recovery"])
    return found


def progress_cases() -> dict[str, StepProgress]:
    async def all_of() -> dict[str, StepProgress]:
        found: dict[str, StepProgress] = {}
        for journey in JOURNEYS:
            found.update(await travel(journey))
        return found

    return asyncio.run(all_of())


PROGRESS = progress_cases()
PROGRESS["progress-parked"] = replace(
    PROGRESS["progress-retry-failing"],
    parked=ParkedMark("the packing robot is down", START + timedelta(hours=1)),
)
CASES = {**definition_cases(), **{n: render.mermaid(p) for n, p in PROGRESS.items()}}


TRICKY = render.mermaid(
    draft.step('Say "hi" <b>#1</b> `now`') >> draft.signal("A {weird} [one] | pipe; end")
)


@pytest.fixture(scope="module")
def parsed() -> dict[str, str | None]:
    """Mermaid's parser on every text of this module, in one batch (node starts slowly)."""
    texts = {**CASES, "tricky labels": TRICKY}
    return dict(zip(texts, check_mermaid(list(texts.values())), strict=True))


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_golden_file(name: str) -> None:
    path = GOLDEN / f"{name}.mmd"
    if UPDATE:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        path.write_text(CASES[name], encoding="utf-8")
    assert path.read_text(encoding="utf-8") == CASES[name]


def test_every_golden_file_is_a_case() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.mmd")) == sorted(CASES)


@pytest.mark.parametrize("name", [*sorted(CASES), "tricky labels"])
def test_mermaid_parses_it(name: str, parsed: dict[str, str | None]) -> None:
    assert parsed[name] is None, parsed[name]


# -- the conventions, one by one ----------------------------------------------------------------


def shapes(text: str) -> dict[str, tuple[str | None, str]]:
    """Every node of a chart: id -> (shape, label); a plain box has no shape."""
    found: dict[str, tuple[str | None, str]] = {}
    for line in text.splitlines():
        shaped = re.fullmatch(r'(\w+)@\{ shape: ([\w-]+), label: "(.*)" \}', line)
        classic = re.fullmatch(r'(\w+)(\(\(|\(\[|\{\{|\[)"(.*)"(\)\)|\]\)|\}\}|\])', line)
        if shaped:
            found[shaped[1]] = (shaped[2], shaped[3])
        elif classic:
            shape = {"((": "circle", "([": "stadium", "{{": "hex", "[": None}[classic[2]]
            found[classic[1]] = (shape, classic[3])
    return found


def edges(text: str) -> list[tuple[str, str, str | None, str]]:
    """Every edge of a chart, in order: (from, arrow, label, to)."""
    found = []
    for line in text.splitlines():
        edge = re.fullmatch(r'(\w+) (-->|-\.->|-\.-|~~~)(?:\|"(.*)"\|)? (\w+)', line)
        if edge:
            found.append((edge[1], edge[2], edge[3], edge[4]))
    return found


def node(text: str, label: str) -> str:
    """The id of the one node labelled ``label``."""
    (found,) = [i for i, (_shape, lbl) in shapes(text).items() if lbl == label]
    return found


def classes(text: str) -> dict[str, set[str]]:
    """class name -> the ids given it."""
    found: dict[str, set[str]] = {}
    for line in text.splitlines():
        assigned = re.fullmatch(r"class ([\w,]+) ([\w-]+)", line)
        if assigned:
            found.setdefault(assigned[2], set()).update(assigned[1].split(","))
    return found


def taken(text: str) -> set[tuple[str, str]]:
    """(from, to) of the edges drawn as taken (green or red)."""
    every = edges(text)
    found: set[tuple[str, str]] = set()
    for line in text.splitlines():
        style = re.fullmatch(r"linkStyle ([\d,]+) .*", line)
        if style:
            found.update((every[int(i)][0], every[int(i)][3]) for i in style[1].split(","))
    return found


def test_a_chart_goes_from_a_start_circle_to_an_end_circle() -> None:
    text = CASES["run-io"]
    assert text.startswith("flowchart TD\n")
    assert text.endswith("\n")
    assert shapes(text)["w_start"] == ("circle", "Start")
    assert shapes(text)["w_end"] == ("circle", "End")
    assert [(e[0], e[3]) for e in edges(text)] == [("w_start", "s"), ("s", "w_end")]


def test_an_end_step_is_the_end_circle() -> None:
    text = CASES["end"]
    assert [label for _shape, label in shapes(text).values()].count("End") == 1
    assert shapes(text)["s_1"] == ("circle", "End")


def test_a_signal_is_a_stadium_with_an_envelope_then_the_step_handling_it() -> None:
    text = CASES["pull-request"]
    signal = node(text, "📨 Create Request")
    assert shapes(text)[signal][0] == "stadium"
    assert (signal, "-->", None, node(text, "Create PR")) in edges(text)
    unnamed = CASES["handle-signal-unnamed"]
    assert (node(unnamed, "📨 Approve"), "-->", None, node(unnamed, "Handle Approve")) in edges(
        unnamed
    )
    # a draft signal's step has the signal's name: "Handle <signal>" too
    assert "Handle Approval Required" in {
        label for _s, label in shapes(CASES["draft-signal"]).values()
    }


def test_a_timer_is_a_stadium_with_a_clock_and_its_duration() -> None:
    assert shapes(CASES["timer"])["s"] == ("stadium", "⏰ Wait A Day (1d)")
    assert shapes(CASES["timer-dynamic"])["s"] == ("stadium", "⏰ (dynamic)")
    assert shapes(CASES["draft-loop"])["s_0_1"] == ("stadium", "⏰ Wait before retry (1m)")


def test_a_fork_is_a_hexagon_with_its_branches_on_the_edges() -> None:
    text = CASES["fork-otherwise"]
    assert shapes(text)["s"] == ("hex", "How Big?")
    labelled = {(e[2], e[3]) for e in edges(text) if e[0] == "s"}
    # the empty branch (an unnamed pure step) leads straight on, still labelled
    assert labelled == {("Large", "s_0_0_signal"), ("Small", "s_1_0"), ("Empty", "w_end")}


def test_a_loop_is_its_body_a_condition_and_an_edge_back() -> None:
    text = CASES["loop"]
    body, condition = node(text, "Pack Items"), node(text, "Three Items?")
    assert shapes(text)[condition][0] == "hex"
    flow = edges(text)
    assert (body, "-->", None, condition) in flow
    assert (condition, "-->", "More", node(text, "📨 Approve")) in flow
    assert (node(text, "Approve Another"), "-->", None, body) in flow  # round again
    assert (condition, "-->", "Enough", "w_end") in flow
    simple = CASES["simple-loop"]
    assert ("s_0", "-->", "No", "s_0_0") in edges(simple)


def test_parallel_branches_run_between_a_split_and_a_join() -> None:
    text = CASES["parallel"]
    assert shapes(text)["s"] == shapes(text)["s_join"] == ("fork", "")
    flow = edges(text)
    assert {e[3] for e in flow if e[0] == "s"} == {"s_0", "s_1_signal"}
    assert {e[0] for e in flow if e[3] == "s_join"} == {"s_0", "s_1"}


def test_an_interruptible_part_is_a_box_its_trigger_leaves() -> None:
    text = CASES["interruption-signal"]
    assert 'subgraph s [" "]' in text
    inside = text[text.index('subgraph s [" "]') : text.index("\nend\n")]
    assert "Pack Items" in inside
    assert "Ship Items" in inside
    assert "Cancel Order" not in inside
    assert ("s", "-->", None, node(text, "📨 Approve")) in edges(text)
    assert ("s", "-->", None, node(CASES["interruption-timer"], "⏰ Give Up (2d)")) in edges(
        CASES["interruption-timer"]
    )


def test_a_for_each_is_a_box_of_its_own() -> None:
    text = CASES["for-each"]
    assert 'subgraph s ["≡ Pack Every Item"]' in text
    assert ("w_start", "-->", None, "s") in edges(text)
    assert ("s", "-->", None, "w_end") in edges(text)
    assert 'subgraph s ["≡ For Each Draft"]' in CASES["draft-for-each"]
    elements = CASES["progress-for-each"]
    assert 'subgraph s_0 ["a"]' in elements
    assert 'subgraph s_1 ["b"]' in elements
    assert ("s_0", "~~~", None, "s_1") in edges(elements)  # in their order
    assert shapes(CASES["progress-for-each-empty"])["s_none"] == ("text", "no elements")


def test_a_handled_error_is_a_dotted_edge_to_its_handler_named_like_a_step() -> None:
    text = CASES["pull-request"]
    close = node(text, "Close PR")
    bolts = {(e[0], e[2]) for e in edges(text) if e[1] == "-.->" and e[3] == close}
    assert bolts == {
        (node(text, "Create PR"), "⚡ Commit Not Found"),
        (node(text, "Run Pipeline"), "⚡ Pipeline Failed"),
        (node(text, "Process Review"), "⚡ Review Rejected"),
    }
    # a handler drawn as nothing: the error leads to the next step
    bare = CASES["handle-error-bare-handler"]
    assert ("s_0_0", "-.->", "⚡ Out Of Stock", "s_1") in edges(bare)
    last = CASES["handle-error-bare-handler-last"]
    assert ("s_0", "-.->", "⚡ Out Of Stock", "w_end") in edges(last)
    # a base with no declared error (a draft): a generic one
    assert ("s_0", "-.->", "⚡ error", "s_1") in edges(CASES["draft-error-handler"])


def test_an_unhandled_error_leads_to_a_failed_end() -> None:
    text = CASES["pure-error"]
    assert shapes(text)["w_failed"] == ("circle", "Failed")
    assert ("s", "-.->", "⚡ Out Of Stock", "w_failed") in edges(text)
    assert "w_failed" not in CASES["pull-request"]


def test_a_retried_step_is_marked() -> None:
    assert shapes(CASES["retry"])["s_0"] == (None, "🔁 Pack Items")
    assert shapes(CASES["draft-retry"])["s_0"] == (None, "🔁 Api Call")
    withdrawal = CASES["withdrawal"]
    assert node(withdrawal, "🔁 Initiate Execution")


def test_a_description_is_a_note() -> None:
    text = CASES["draft-step"]
    assert shapes(text)["s_note"] == ("braces", "By e-mail")
    assert ("s", "-.-", None, "s_note") in edges(text)
    signal = CASES["draft-signal"]
    assert ("s", "-.-", None, "s_note") in edges(signal)  # from the step handling the signal


def test_unnamed_pure_steps_are_not_drawn() -> None:
    text = CASES["pure-unnamed"]
    assert {i: label for i, (_s, label) in shapes(text).items()} == {
        "w_start": "Start",
        "s_1": "Pack Items",
        "w_end": "End",
    }


def test_technical_nodes_show_on_request_only() -> None:
    assert 'subgraph s ["Checkpoint"]' in CASES["checkpoint"]
    assert "class s checkpoint" in CASES["checkpoint"]
    assert "Checkpoint" not in CASES["checkpoint-hidden"]
    assert shapes(CASES["recovery"])["s_0"] == ("hex", "🔧 State Recovery")
    assert "Recovery" not in CASES["recovery-hidden"]
    assert ("w_start", "-->", None, "s_1") in edges(CASES["recovery-hidden"])
    assert "Checkpoint" in CASES["withdrawal-technical"]
    assert "Checkpoint" not in CASES["withdrawal"]


def test_a_draft_is_drawn_like_the_definition_it_sketches() -> None:
    real = pack_items >> ship_items.handle_error_with(WIO.pure(refund).named("Refund"))
    sketch = draft.step("Pack Items") >> draft.step(
        "Ship Items", error="Out Of Stock"
    ).handle_error_with(draft.step("Refund"))
    assert render.mermaid(sketch) == render.mermaid(real)
    sketched = draft.choice(
        "Anything Packed?", {"Yes": draft.step("Ship Items"), "No": draft.step("Pack Items")}
    )
    ship_quietly = WIO.run_io(Order, ship).handle_event(lambda order, event: order)
    ship_quietly = ship_quietly.named("Ship Items")
    choice = WIO.choose(
        Order, lambda order: bool(order.items), ship_quietly, pack_items, name="Anything Packed?"
    )
    assert render.mermaid(sketched) == render.mermaid(choice)


def test_a_workflow_its_definition_and_its_progress_draw_alike() -> None:
    text = render.mermaid(pr.PullRequest)
    assert text == render.mermaid(pr.PullRequest.definition) == CASES["pull-request"]
    assert text == render.mermaid(progress_of(pr.PullRequest))
    assert render.mermaid(pr.PullRequest) == text  # the same text every time


def test_ids_are_paths_in_the_progress_tree_shared_by_definition_and_progress() -> None:
    plan, merged = shapes(CASES["pull-request"]), shapes(CASES["pull-request-merged"])
    assert plan.keys() == merged.keys()
    progress = PROGRESS["withdrawal-awaiting-review"]
    text = CASES["withdrawal-awaiting-review"]
    expected = set()
    for path in progress.to_json()["frontier"]:
        at = "s" + "".join(f"_{i}" for i in path)
        expected.add(f"{at}_signal" if f"{at}_signal" in shapes(text) else at)
    assert classes(text)["waiting"] == expected
    assert {shapes(text)[i][1] for i in expected} == {"📨 Review Decision", "📨 Cancel Withdrawal"}


def test_progress_colours_what_ran_failed_and_was_skipped() -> None:
    text = CASES["pull-request-rejected"]
    found = classes(text)
    labels = {name: {shapes(text)[i][1] for i in ids} for name, ids in found.items()}
    assert labels["executed"] == {
        "Start",
        "📨 Create Request",
        "Create PR",
        "Run Pipeline",
        "📨 Review Request",
        "Close PR",
        "End",
    }
    assert labels["failed"] == {"Process Review"}
    assert labels["skipped"] == {"Merge PR"}
    assert "classDef executed " in text
    assert "classDef failed " in text
    assert "classDef waiting" not in text  # a class is defined only where used
    assert (node(text, "Process Review"), node(text, "Close PR")) in taken(text)
    assert (node(text, "Process Review"), node(text, "Merge PR")) not in taken(text)


def test_the_branch_taken_is_drawn_and_the_others_fade() -> None:
    text = CASES["progress-fork-taken"]
    assert taken(text) >= {("s", "s_0_0")}
    assert ("s", "s_1_0") not in taken(text)
    assert classes(text)["skipped"] >= {"s_1_0"}


def test_every_round_of_a_loop_is_drawn() -> None:
    text = CASES["progress-loop-done"]
    hexes = [i for i, (shape, _label) in shapes(text).items() if shape == "hex"]
    assert [shapes(text)[i][1] for i in hexes] == [
        "Three Items?<br>round 1",
        "Three Items?<br>round 2",
        "Three Items?<br>round 3",
    ]
    answers = [(e[0], e[2]) for e in edges(text) if e[0] in hexes]
    assert answers == [(hexes[0], "More"), (hexes[1], "More"), (hexes[2], "Enough")]
    assert {(e[0], e[3]) for e in edges(text) if e[0] in hexes} <= taken(text)
    running = CASES["progress-loop-round-2"]
    bodies = [i for i, (_s, label) in shapes(running).items() if label == "Pack Items"]
    again = [i for i, (_s, label) in shapes(running).items() if label == "Approve Another"]
    assert len(bodies) == 2
    assert classes(running)["waiting"] == {bodies[1]}
    assert (again[1], "-->", None, bodies[1]) in edges(running)  # the round under way loops back


def test_the_rounds_a_loop_no_longer_keeps_are_counted() -> None:
    text = CASES["progress-loop-earlier-rounds"]
    assert shapes(text)["s_earlier"] == (None, "⋯ 1 earlier round")
    hexes = [label for shape, label in shapes(text).values() if shape == "hex"]
    assert hexes == [f"Twelve Items?<br>round {n}" for n in range(2, 13)]
    assert ("w_start", "-->", None, "s_earlier") in edges(text)


def test_the_frontier_shows_the_signals_awaited_and_the_timers_with_their_instant() -> None:
    waiting = CASES["withdrawal-checks-waiting"]
    labels = {shapes(waiting)[i][1] for i in classes(waiting)["waiting"]}
    assert labels == {
        "⏰ Await Retry (20s)<br>until 2024-06-03 09:00:20 UTC",
        "⏰ Execution Timeout (2m)<br>until 2024-06-03 09:02:00 UTC",
        "📨 Cancel Withdrawal",
    }
    assert classes(CASES["withdrawal-completed"]).get("waiting") is None


def test_an_interruption_that_fired_is_drawn_taken_and_what_it_cut_short_fades() -> None:
    text = CASES["withdrawal-cancelled-in-checks"]
    cancel_signal = node(text, "📨 Cancel Withdrawal")
    assert ("s_0_0_0", cancel_signal) in taken(text)
    assert node(text, "Await Execution Completion") in classes(text)["skipped"]
    assert node(text, "Handle Cancellation") in classes(text)["failed"]  # it raises Cancelled
    waiting = CASES["withdrawal-awaiting-execution"]
    assert ("s_0_0_0", node(waiting, "📨 Cancel Withdrawal")) not in taken(waiting)


def test_a_failing_stateful_retry_shows_its_attempts_and_the_next_one() -> None:
    text = CASES["progress-retry-failing"]
    assert shapes(text)["s_0"][1] == (
        "🔁 Pack Items<br>1 failed attempt<br>next attempt not before 2024-06-03 09:05:00 UTC"
    )


def test_a_terminated_instance_is_marked() -> None:
    text = CASES["progress-terminated"]
    assert shapes(text)["w_terminated"] == ("circle", "Terminated")
    assert ("w_start", "-.->", None, "w_terminated") in edges(text)
    assert shapes(text)["w_terminated_note"] == (
        "braces",
        "ordered twice (2024-06-03 09:00:00 UTC)",
    )
    assert classes(text)["terminated"] == {"w_terminated"}
    assert "waiting" not in classes(text)


def test_a_parked_instance_is_marked_where_it_waits() -> None:
    text = CASES["progress-parked"]
    assert shapes(text)["w_parked"] == ("circle", "Parked")
    assert ("s_0", "-.->", None, "w_parked") in edges(text)
    note = "the packing robot is down (since 2024-06-03 10:00:00 UTC)"
    assert shapes(text)["w_parked_note"] == ("braces", note)
    assert classes(text)["parked"] == {"w_parked"}


def test_labels_are_escaped() -> None:
    assert shapes(TRICKY)["s_0"] == (
        None,
        "Say #quot;hi#quot; #lt;b#gt;#35;1#lt;/b#gt; #96;now#96;",
    )


def test_a_mermaid_live_link_holds_the_text() -> None:
    text = CASES["pull-request"]
    url = render.mermaid_live_url(text)
    prefix = "https://mermaid.live/edit#base64:"
    assert url.startswith(prefix)
    state = json.loads(base64.urlsafe_b64decode(url.removeprefix(prefix)))
    assert state == {"code": text}
    assert not set(url.removeprefix(prefix)) & {"+", "/"}  # base64url


# -- the diagrams of the documentation ----------------------------------------------------------


def mermaid_blocks(page: str) -> list[str]:
    text = (ROOT / page).read_text(encoding="utf-8")
    return [block + "\n" for block in re.findall(r"^```mermaid\n(.*?)\n```$", text, re.M | re.S)]


def test_the_diagrams_page_shows_what_render_mermaid_draws_now() -> None:
    drawn = {text: name for name, text in CASES.items()}
    shown = [
        drawn.get(block, "a diagram render.mermaid no longer draws")
        for block in mermaid_blocks("docs/diagrams.md")
    ]
    assert shown == [
        "pull-request",
        "withdrawal",
        "pull-request-rejected",
        "withdrawal-awaiting-review",
    ]


def test_the_readme_shows_the_pull_request() -> None:
    assert mermaid_blocks("README.md") == [CASES["pull-request"]]
