"""BPMN 2.0 export (``render.bpmn``): golden files for every node kind, every draft form, both
examples and progress exports, every one checked with bpmn.io's tools, and the examples drawn
by bpmn-js in Chromium.

The files are under ``tests/golden/bpmn/``. After a deliberate change of the renderer, write
them again with ``UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_render_bpmn.py``,
look at the diff, and look at the diagrams (``screenshot_bpmn`` in ``tests/diagram_tools.py``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from diagram_tools import LINT_CONFIG, BpmnReport, check_bpmn, render_bpmn

from workflows4py import (
    WIO,
    Caught,
    Err,
    Ok,
    Result,
    RetryAgain,
    RetryFailure,
    RunIOProgress,
    SignalDef,
    StepProgress,
    Workflow,
    draft,
    progress_of,
)
from workflows4py.engine import Execution, Record
from workflows4py.examples import checks
from workflows4py.examples import pull_request as pr
from workflows4py.examples import withdrawal as wd
from workflows4py.render import bpmn
from workflows4py.runtime import Runtime
from workflows4py.testing import TestClock

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "bpmn"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
T0 = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)

NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "bioc": "http://bpmn.io/schema/bpmn/biocolor/1.0",
    "color": "http://www.omg.org/spec/BPMN/non-normative/color/1.0",
}
FLOW_NODES = (
    "startEvent",
    "endEvent",
    "intermediateCatchEvent",
    "intermediateThrowEvent",
    "boundaryEvent",
    "task",
    "serviceTask",
    "scriptTask",
    "subProcess",
    "exclusiveGateway",
    "parallelGateway",
)

# -- an order domain ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Order:
    total: int
    notes: tuple[str, ...] = ()

    def noted(self, note: str, amount: int = 0) -> Order:
        return Order(self.total + amount, (*self.notes, note))


@dataclass(frozen=True)
class Charged:
    step: str
    amount: int = 1


@dataclass(frozen=True)
class Answered:
    step: str
    amount: int = 1


@dataclass(frozen=True)
class Withdrawn:
    step: str


@dataclass(frozen=True)
class PerLine:
    line: str
    event: Charged | Answered


@dataclass(frozen=True)
class Totalled:
    total: int


@dataclass(frozen=True)
class Bounced:
    attempt: int
    retry_at: datetime


@dataclass(frozen=True)
class Answer:
    amount: int


@dataclass(frozen=True)
class Declined:
    limit: int


@dataclass(frozen=True)
class OutOfStock:
    pass


@dataclass(frozen=True)
class TooManyAttempts:
    attempts: int


answer = SignalDef("order.answer", request=Answer)
withdraw = SignalDef("order.withdraw", request=Answer)


def apply(order: Order, event: Charged | Answered | Withdrawn) -> Order:
    return order.noted(event.step, getattr(event, "amount", 0))


def effect(name: str) -> WIO[Order, Any, Order]:
    return WIO.run_io(Order, lambda o: Charged(name), event=Charged).handle_event(apply).named(name)


def within_limit(order: Order, event: Charged) -> Result[Order, Declined]:
    return Err(Declined(10)) if order.total + event.amount > 10 else Ok(apply(order, event))


def risky(name: str) -> WIO[Order, Declined, Order]:
    charge = WIO.run_io(Order, lambda o: Charged(name, 5), event=Charged)
    return charge.handle_event_with_error(within_limit).named(name)


def waits_for(name: str, signal: SignalDef[Answer, None] = answer) -> WIO[Order, Any, Order]:
    event: type[Answered | Withdrawn] = Withdrawn if signal is withdraw else Answered

    def handle(order: Order, request: Answer) -> Answered | Withdrawn:
        return Withdrawn(name) if event is Withdrawn else Answered(name, request.amount)

    step: WIO[Order, Any, Order] = (
        WIO.handle_signal(signal, input=Order)
        .purely(handle, event=event)
        .handle_event(apply)  # type: ignore[arg-type]  # the event class is picked above
        .void_response()
        .named(name)
    )
    return step


def compute(name: str) -> WIO[Order, Any, Order]:
    return WIO.pure(Order, lambda o: o.noted(name.lower())).named(name)


def in_stock(order: Order) -> Result[Order, OutOfStock]:
    return Err(OutOfStock()) if order.total < 0 else Ok(order)


def refund(failure: Caught[Order, Declined | OutOfStock]) -> Order:
    return failure.state.noted("refunded")


def per_line(body: WIO[Order, Any, Order], name: str) -> WIO[Order, Any, Order]:
    return WIO.for_each(
        lambda o: ["x", "y"], body.map_input(lambda line: Order(0, (line,))), input=Order, name=name
    ).build(
        wrap=PerLine,
        unwrap=lambda e: (e.line, e.event) if isinstance(e, PerLine) else None,
        interim=lambda o, lines: o,
        output=lambda o, outs: Order(sum(x.total for x in outs.values()), o.notes),
    )


def bounced(failure: RetryFailure[Order, int]) -> Bounced:
    return Bounced(failure.state + 1, failure.now + timedelta(minutes=5))


def after_bounce(order: Order, e: Bounced, attempts: int) -> RetryAgain[int] | Result[Order, Any]:
    return Err(TooManyAttempts(e.attempt)) if e.attempt >= 3 else RetryAgain(e.attempt, e.retry_at)


# -- one definition per node kind ---------------------------------------------------------------


def kinds() -> dict[str, WIO[Any, Any, Any]]:
    handled = (risky("Charge") >> waits_for("Confirm")).handle_error_with(
        WIO.pure(refund).named("Refund")
    )
    nested = (
        (
            per_line(risky("Pay"), "Pay Each")
            >> WIO.pure_with_error(Order, in_stock).named("Check Stock")
        )
        .interrupt_with(waits_for("Withdraw", withdraw))
        .handle_error_with(WIO.pure(refund).named("Refund"))
    )
    return {
        "sequence": compute("Prepare") >> effect("Pack") >> waits_for("Confirm") >> effect("Ship"),
        "pure": WIO.pure(Order, lambda o: o)
        >> WIO.pure_with_error(Order, in_stock).named("Check Stock"),
        "run_io": effect("Ship"),
        "signal": waits_for("Confirm"),
        "timer": WIO.timer(timedelta(hours=24), input=Order, name="Cool Off")
        >> WIO.timer(lambda o: T0 + timedelta(days=o.total), input=Order),
        "end": effect("Open") >> WIO.end(),
        "fork": WIO.fork(Order, name="How big?")
        .when(lambda o: o.total > 100, waits_for("Board"), name="Big")
        .when(lambda o: o.total > 10, effect("Manager") >> compute("Log"), name="Medium")
        .otherwise(WIO.pure(Order, lambda o: o), name="Small"),
        "loop": WIO.repeat(waits_for("Quote")).until(
            lambda o: o.total >= 3,
            name="Three quotes?",
            restart="Not yet",
            on_restart=effect("Remind"),
        ),
        "loop_choosing_its_way_back": WIO.repeat(effect("Poll")).until(
            lambda o: o.total > 2,
            name="Done?",
            on_restart=WIO.choose(Order, lambda o: o.total > 1, effect("Wait"), effect("Nudge")),
        ),
        "loop_without_restart_step": WIO.repeat(effect("Poll") >> compute("Count")).until(
            lambda o: o.total >= 2, name="Enough?"
        ),
        "parallel": WIO.parallel(lambda o: o, input=Order, name="Checks")
        .branch(waits_for("Legal"), incorporate=lambda i, b: b)
        .branch(effect("Credit") >> waits_for("Finance"), incorporate=lambda i, b: b)
        .branch(effect("Fraud"), incorporate=lambda i, b: b)
        .output(lambda o, outs: o),
        "for_each": per_line(effect("Reserve") >> waits_for("Received"), "Every Line"),
        "embedded": effect("Open")
        >> WIO.embed(
            effect("Inner") >> waits_for("Inner Answer"),
            input=lambda o: Order(0),
            output=lambda o, inner: o,
            wrap=lambda e: PerLine("inner", e),
            unwrap=lambda e: e.event if isinstance(e, PerLine) else None,
            outer=Order,
            name="Sub Order",
        ),
        "interruptible": (effect("Work") >> waits_for("Review")).interrupt_with(
            waits_for("Withdraw", withdraw) >> compute("Undo") >> effect("Notify")
        ),
        "timeout": effect("Ship").interrupt_with(
            WIO.timer(timedelta(hours=2), input=Order, name="Too Slow") >> effect("Escalate")
        ),
        "handle_error": handled,
        "handle_error_nested": nested,
        "handle_error_undeclared": (effect("Try") >> effect("Again")).handle_error_with(
            WIO.pure(refund).named("Refund")
        ),
        "dynamic": effect("Measure").flat_map(
            lambda o: effect("Big") if o.total > 1 else effect("Small")
        ),
        "checkpoint": (effect("Heavy") >> effect("Heavier")).checkpointed(
            lambda o, out: Totalled(out.total), lambda o, e: Order(e.total), event=Totalled
        ),
        "recovery": WIO.recover(lambda o, e: Order(e.total), event=Totalled, discards=(Charged,))
        >> waits_for("Next"),
        "retry": effect("Call Bank").retry(timedelta(minutes=2))
        >> (waits_for("Ack") >> effect("Book")).retry(timedelta(minutes=1)),
        "retry_stateful": effect("Charge").retry_stateful(
            initial=0, on_error=bounced, handle_event=after_bounce
        ),
    }


TECHNICAL = {"checkpoint", "recovery"}
"""Kinds drawn with the technical nodes too (their files ``*-technical.bpmn``), and draft
forms drawn with them only."""


# -- every draft form ---------------------------------------------------------------------------


class ReleaseDraft:
    """A draft written like a real workflow: named by attributes, errors handled."""

    build = draft.signal()
    test = draft.step(error="Tests Failed")
    approve = draft.signal(error="Vetoed", description="Someone from the release team")
    publish = draft.step()
    roll_back = draft.step(description="Revert the tag and tell the team")
    definition = (build >> test >> approve >> publish).handle_error_with(roll_back)


DRAFTS: dict[str, WIO[Any, Any, Any]] = {
    "step": draft.step("Pack", error="Damaged", description="Wrap it twice"),
    "signal": draft.signal("Accept", error="Refused"),
    "timer": draft.timer("Grace Period", timedelta(days=3)) >> draft.timer("Until Due"),
    "choice": draft.choice(
        "In stock?",
        {"Yes": draft.step("Ship"), "No": draft.step("Order More") >> draft.step("Ship Later")},
    ),
    "for_each": draft.for_each(draft.step("Pick") >> draft.signal("Scanned"), "Each Item"),
    "repeat": draft.repeat(
        draft.step("Poll Carrier"),
        condition="Delivered?",
        release="Delivered",
        restart="In transit",
        on_restart=draft.timer("Wait", timedelta(hours=1)),
    ),
    "parallel": draft.parallel(draft.step("Invoice"), draft.signal("Signature"), name="Paperwork"),
    "interruption_signal": (draft.step("Assemble") >> draft.signal("Inspect")).interrupt_with(
        draft.interruption_signal("Stop Order", "Stop", error="Stopped") >> draft.step("Scrap")
    ),
    "interruption_timeout": draft.step("Deliver").interrupt_with(
        draft.interruption_timeout("Deadline", timedelta(days=2)) >> draft.step("Complain")
    ),
    "retry": draft.retry(draft.step("Notify Carrier")),
    "checkpoint": draft.checkpoint(draft.step("Export")),
    "recovery": draft.recovery("Reimport") >> draft.step("Resume"),
    "release": ReleaseDraft.definition,
}


# -- runs ---------------------------------------------------------------------------------------


def after(definition: WIO[Any, Any, Any], *events: Any, start: Any = None) -> StepProgress:
    """The progress of ``definition`` run from ``Order(0)`` (or ``start``) on ``events``; an
    instant among them records what the engine has due then (a timer, a checkpoint)."""
    ex = Execution.start(definition, Order(0) if start is None else start)
    for item in events:
        event = item
        if isinstance(item, datetime):
            action = ex.next_action(item)
            assert isinstance(action, Record), action
            event = action.event
        nxt = ex.apply_event(event)
        assert nxt is not None, f"{event!r} refused"
        ex = nxt
    return ex.progress()


def kind_runs() -> dict[str, StepProgress]:
    """Runs of the node kinds, to colour: what ran, what failed, what is waited on."""
    k = kinds()
    return {
        "sequence-waiting": after(k["sequence"], Charged("Pack")),
        "timer-started": after(k["timer"], T0),
        "fork-medium": after(k["fork"], Charged("Manager"), start=Order(20)),
        "loop-second-round": after(k["loop"], Answered("Quote"), Charged("Remind")),
        "loop-ended": after(k["loop"], Answered("Quote"), Charged("Remind"), Answered("Quote", 2)),
        "parallel-running": after(k["parallel"], Charged("Credit"), Answered("Legal")),
        "for_each-running": after(
            k["for_each"], PerLine("x", Charged("Reserve")), PerLine("y", Charged("Reserve"))
        ),
        "interruptible-interrupted": after(
            k["interruptible"], Charged("Work"), Withdrawn("Withdraw")
        ),
        "timeout-fired": after(k["timeout"], T0, T0 + timedelta(hours=3)),
        "handle_error-handled": after(k["handle_error"], Charged("Charge", 5), start=Order(8)),
        "dynamic-chosen": after(k["dynamic"], Charged("Measure")),
        "retry_stateful-bounced": after(k["retry_stateful"], Bounced(1, T0)),
        "end-reached": after(k["end"], Charged("Open")),
    }


async def example_runs() -> dict[str, StepProgress]:
    """Both examples' instances at points of their lives."""
    found: dict[str, StepProgress] = {}
    async with Runtime.memory([pr.PullRequest]) as runtime:
        merged = await runtime.start(
            pr.PullRequest,
            "pr-1",
            initial_state=pr.Empty(),
            signal=(pr.create_pr_signal, pr.CreateRequest("a1b2c3")),
        )
        found["pull_request-review"] = await merged.get_progress()
        await merged.deliver_signal(pr.review_pr_signal, pr.ReviewRequest(approve=True))
        found["pull_request-merged"] = await merged.get_progress()
        rejected = await runtime.start(
            pr.PullRequest,
            "pr-2",
            initial_state=pr.Empty(),
            signal=(pr.create_pr_signal, pr.CreateRequest("d4e5f6")),
        )
        await rejected.deliver_signal(pr.review_pr_signal, pr.ReviewRequest(approve=False))
        found["pull_request-rejected"] = await rejected.get_progress()
    demo = wd.Demo()
    demo.clock = TestClock(T0)
    _, paid = await demo.start(wd.FakeWithdrawalService())
    found["withdrawal-executing"] = await paid.get_progress()
    await paid.deliver_signal(
        wd.execution_completed_signal, wd.ConfirmExecution(wd.ExecutionStatus.SUCCEEDED)
    )
    found["withdrawal-completed"] = await paid.get_progress()
    pending = [checks.StaticCheck("fraud", checks.CheckResult.PENDING)]
    _, cancelled = await demo.start(wd.FakeWithdrawalService(checks=pending))
    found["withdrawal-checks-pending"] = await cancelled.get_progress()
    await cancelled.deliver_signal(wd.cancel_signal, wd.CancelWithdrawal("operator-1", "fraud"))
    found["withdrawal-cancelled"] = await cancelled.get_progress()
    _, poor = await demo.start(wd.FakeWithdrawalService(funds=Decimal(50)))
    found["withdrawal-not-enough-funds"] = await poor.get_progress()
    _, retried = await demo.start(wd.FakeWithdrawalService(execution_failures=1))
    found["withdrawal-retrying"] = await retried.get_progress()
    return found


def withdrawal() -> type[Workflow[Any, Any]]:
    return wd.withdrawal_workflow(wd.FakeWithdrawalService())


def generate() -> dict[str, str]:
    """Every file, by golden file name."""
    files: dict[str, str] = {}
    for name, definition in kinds().items():
        files[f"kind-{name}"] = bpmn(definition)
        if name in TECHNICAL:
            files[f"kind-{name}-technical"] = bpmn(definition, technical=True)
    for name, definition in DRAFTS.items():
        files[f"draft-{name}"] = bpmn(definition, technical=name in TECHNICAL)
    files["example-pull_request"] = bpmn(pr.PullRequest)
    files["example-withdrawal"] = bpmn(withdrawal())
    files["example-checks"] = bpmn(checks.checks_workflow(checks.FixedChecks([]), checks.DATA))
    for name, progress in kind_runs().items():
        files[f"progress-{name}"] = bpmn(progress)
    for name, progress in asyncio.run(example_runs()).items():
        files[f"progress-{name}"] = bpmn(
            progress, name=name.split("-")[0].replace("_", " ").title()
        )
    return files


@pytest.fixture(scope="module")
def files() -> dict[str, str]:
    return generate()


@pytest.fixture(scope="module")
def reports(files: dict[str, str]) -> dict[str, BpmnReport]:
    """bpmn-moddle, bpmnlint and the diagram checks of every file, in one batch."""
    return dict(zip(files, check_bpmn(list(files.values()), lint_config=LINT_CONFIG), strict=True))


class Doc:
    """A BPMN file read back, to ask about its elements."""

    def __init__(self, xml: str) -> None:
        self.root = ET.fromstring(xml)

    def all(self, tag: str, ns: str = "bpmn") -> list[ET.Element]:
        return list(self.root.iter(f"{{{NS[ns]}}}{tag}"))

    def names(self, tag: str) -> list[str]:
        return [e.get("name", "") for e in self.all(tag)]

    def by_id(self, *tags: str) -> dict[str, ET.Element]:
        return {e.get("id", ""): e for tag in tags for e in self.all(tag)}

    def flow_nodes(self) -> dict[str, ET.Element]:
        return self.by_id(*FLOW_NODES)

    def flows(self, source: str | None = None, target: str | None = None) -> list[ET.Element]:
        return [
            f
            for f in self.all("sequenceFlow")
            if source in (None, f.get("sourceRef")) and target in (None, f.get("targetRef"))
        ]

    def only(self, tag: str, name: str | None = None) -> ET.Element:
        [found] = [e for e in self.all(tag) if name in (None, e.get("name"))]
        return found

    def has(self, element: ET.Element, path: str) -> bool:
        return element.find(path, NS) is not None

    def text(self, element: ET.Element, path: str) -> str | None:
        return element.findtext(path, namespaces=NS)

    def declared(self, event: ET.Element) -> str | None:
        """The name of the signal or error the event's definition refers to (None: any)."""
        for kind in ("signal", "error"):
            definition = event.find(f"bpmn:{kind}EventDefinition", NS)
            if definition is not None:
                ref = definition.get(f"{kind}Ref")
                return None if ref is None else self.by_id(kind)[ref].get("name")
        raise AssertionError(f"{event.get('id')} has no signal or error definition")


# -- the files ----------------------------------------------------------------------------------


def test_every_file_is_its_golden_file(files: dict[str, str]) -> None:
    if UPDATE:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for old in GOLDEN.glob("*.bpmn"):
            if old.stem not in files:
                old.unlink()
        for name, xml in files.items():
            (GOLDEN / f"{name}.bpmn").write_text(xml, encoding="utf-8")
    on_disk = sorted(p.stem for p in GOLDEN.glob("*.bpmn"))
    assert on_disk == sorted(files), "run with UPDATE_GOLDEN=1 to write the golden files"
    differ = [n for n, xml in files.items() if (GOLDEN / f"{n}.bpmn").read_text("utf-8") != xml]
    assert not differ, f"differ from their golden files: {differ}"


def test_every_file_passes_the_bpmn_io_checks(reports: dict[str, BpmnReport]) -> None:
    # tests/js/.bpmnlintrc is bpmnlint's recommended set with no rule turned off: every
    # warning counts too
    failing = {name: r.summary() for name, r in reports.items() if not r.ok}
    assert not failing, json.dumps(failing, indent=2)


def test_every_node_kind_and_draft_form_is_drawn() -> None:
    trees = [progress_of(d) for d in (*kinds().values(), *DRAFTS.values())]
    drawn = {node.kind for tree in (*trees, *kind_runs().values()) for node in tree.walk()}
    every = {cls.kind for cls in StepProgress.__subclasses__()}
    assert drawn == every
    forms = "step signal timer choice for_each repeat parallel interruption_signal"
    forms += " interruption_timeout retry checkpoint recovery"
    assert set(DRAFTS) == {*forms.split(), "release"}


@pytest.mark.parametrize("name", ["example-pull_request", "example-withdrawal"])
def test_bpmn_js_draws_every_flow_node_of_the_examples(files: dict[str, str], name: str) -> None:
    report = render_bpmn(files[name])
    assert (report.error, report.warnings) == (None, ())
    doc = Doc(files[name])
    assert sorted(report.flow_nodes) == sorted(doc.flow_nodes())
    assert sorted(report.sequence_flows) == sorted(doc.by_id("sequenceFlow"))


def test_the_same_input_gives_the_same_text_in_another_process(files: dict[str, str]) -> None:
    # another hash seed: nothing may depend on the order of a set of strings
    code = (
        "from workflows4py.examples.withdrawal import withdrawal_workflow, FakeWithdrawalService\n"
        "from workflows4py.render import bpmn\n"
        "import sys; sys.stdout.write(bpmn(withdrawal_workflow(FakeWithdrawalService())))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True
    )
    assert done.stdout == files["example-withdrawal"]
    assert bpmn(withdrawal()) == files["example-withdrawal"]


def test_a_workflow_its_definition_and_its_progress_draw_alike() -> None:
    drawn = bpmn(pr.PullRequest)
    assert bpmn(pr.PullRequest.definition, name="Pull Request") == drawn
    assert bpmn(progress_of(pr.PullRequest), name="Pull Request") == drawn
    [process] = Doc(drawn).all("process")
    assert (process.get("id"), process.get("name")) == ("Process_Pull_Request", "Pull Request")
    assert Doc(bpmn(pr.PullRequest.definition)).names("process") == ["Workflow"]


def test_names_are_escaped_and_kept() -> None:
    xml = bpmn(effect("Say \"<hi>\" & 'bye'\x00\x1b") >> waits_for("a]]>b"), name="<process>")
    doc = Doc(xml)
    assert doc.names("serviceTask") == ["Say \"<hi>\" & 'bye'", "a]]>b"]
    assert doc.names("process") == ["<process>"]
    [report] = check_bpmn([xml])
    assert report.ok, report.summary()


# -- what docs/bpmn.md says ---------------------------------------------------------------------


def test_steps_are_service_and_script_tasks(files: dict[str, str]) -> None:
    doc = Doc(files["example-pull_request"])
    assert doc.names("serviceTask") == ["Create PR", "Run Pipeline", "Process Review"]
    assert doc.names("scriptTask") == ["Merge PR", "Close PR"]
    # an unnamed pure step is glue between steps and is not drawn; a named one is
    assert Doc(files["kind-pure"]).names("scriptTask") == ["Check Stock"]


def test_a_signal_is_a_catch_event_then_the_task_handling_it(files: dict[str, str]) -> None:
    doc = Doc(files["example-pull_request"])
    assert doc.names("signal") == ["Create Request", "Review Request"]
    tasks = doc.by_id("serviceTask")
    followed = []
    for event in doc.all("intermediateCatchEvent"):
        assert event.get("name") == doc.declared(event)
        [flow] = doc.flows(source=event.get("id"))
        followed.append((event.get("name"), tasks[flow.get("targetRef", "")].get("name")))
    assert followed == [("Create Request", "Create PR"), ("Review Request", "Process Review")]


def test_a_timer_is_a_catch_event_with_its_duration(files: dict[str, str]) -> None:
    doc = Doc(files["kind-timer"])
    fixed, computed = doc.all("intermediateCatchEvent")
    assert (fixed.get("name"), computed.get("name")) == ("Cool Off (1d)", "dynamic")
    assert doc.text(fixed, "bpmn:timerEventDefinition/bpmn:timeDuration") == "P1D"
    assert doc.has(computed, "bpmn:timerEventDefinition")
    assert not doc.has(computed, "bpmn:timerEventDefinition/bpmn:timeDuration")


def test_forks_and_loops_are_exclusive_gateways_with_a_merge(files: dict[str, str]) -> None:
    doc = Doc(files["kind-fork"])
    split, merge = doc.all("exclusiveGateway")
    assert (split.get("name"), merge.get("name")) == ("How big?", None)
    out = doc.flows(source=split.get("id"))
    assert [f.get("name") for f in out] == ["Big", "Medium", "Small"]
    assert all(doc.has(f, "bpmn:conditionExpression") for f in out)
    assert len(doc.flows(target=merge.get("id"))) == 3
    loop = Doc(files["kind-loop"])
    again, condition = loop.all("exclusiveGateway")
    assert condition.get("name") == "Three quotes?"
    answers = loop.flows(source=condition.get("id"))
    assert [f.get("name") for f in answers] == ["Not yet", "Yes"]
    assert len(loop.flows(target=again.get("id"))) == 2  # from the start, and the way back


def test_parallel_branches_split_and_join_at_parallel_gateways(files: dict[str, str]) -> None:
    doc = Doc(files["kind-parallel"])
    split, join = doc.all("parallelGateway")
    assert len(doc.flows(source=split.get("id"))) == 3
    assert len(doc.flows(target=join.get("id"))) == 3


def test_handled_errors_are_error_boundary_events_named_after_them(files: dict[str, str]) -> None:
    doc = Doc(files["example-pull_request"])
    assert doc.names("error") == ["Commit Not Found", "Pipeline Failed", "Review Rejected"]
    tasks = doc.by_id("serviceTask")
    found = []
    for boundary in doc.all("boundaryEvent"):
        assert boundary.get("name") == doc.declared(boundary)
        found.append((tasks[boundary.get("attachedToRef", "")].get("name"), boundary.get("name")))
    assert found == [
        ("Create PR", "Commit Not Found"),
        ("Run Pipeline", "Pipeline Failed"),
        ("Process Review", "Review Rejected"),
    ]
    [gateway] = [g for g in doc.all("exclusiveGateway") if len(doc.flows(target=g.get("id"))) == 3]
    assert [f.get("targetRef") for f in doc.flows(source=gateway.get("id"))] == [
        doc.only("scriptTask", "Close PR").get("id")
    ]
    # raised inside a subprocess, handled outside it: the event sits on the subprocess
    nested = Doc(files["kind-handle_error_nested"])
    outer = nested.all("subProcess")[0].get("id")
    on_it = [b.get("name") for b in nested.all("boundaryEvent") if b.get("attachedToRef") == outer]
    assert on_it == ["Answer", "Declined", "Out Of Stock"]  # the interruption, the errors


def test_an_error_no_step_declares_is_caught_on_a_subprocess(files: dict[str, str]) -> None:
    doc = Doc(files["kind-handle_error_undeclared"])
    boundary = doc.only("boundaryEvent")
    assert boundary.get("attachedToRef") == doc.only("subProcess").get("id")
    assert doc.declared(boundary) is None  # any error


def test_interruptions_are_boundary_events_on_a_subprocess_or_on_the_one_task(
    files: dict[str, str],
) -> None:
    doc = Doc(files["kind-interruptible"])
    boundary = doc.only("boundaryEvent")
    assert boundary.get("attachedToRef") == doc.only("subProcess").get("id")
    assert boundary.get("cancelActivity") is None  # interrupting, BPMN's default
    assert doc.has(boundary, "bpmn:signalEventDefinition")
    [handling] = doc.flows(source=boundary.get("id"))
    assert doc.by_id("serviceTask")[handling.get("targetRef", "")].get("name") == "Withdraw"
    timeout = Doc(files["kind-timeout"])
    timer = timeout.only("boundaryEvent")
    assert timer.get("attachedToRef") == timeout.only("serviceTask", "Ship").get("id")
    assert timeout.text(timer, "bpmn:timerEventDefinition/bpmn:timeDuration") == "PT2H"
    assert timeout.all("subProcess") == []


def test_subprocesses_hold_embedded_workflows(files: dict[str, str]) -> None:
    doc = Doc(files["kind-embedded"])
    sub = doc.only("subProcess")
    assert sub.get("name") == "Sub Order"
    inner = [e.get("name") for e in sub if e.get("name")]
    assert inner == ["Start", "Inner", "Answer", "Inner Answer", "End"]


def test_for_each_is_a_multi_instance_subprocess(files: dict[str, str]) -> None:
    doc = Doc(files["kind-for_each"])
    sub = doc.only("subProcess", "Every Line")
    marker = sub.find("bpmn:multiInstanceLoopCharacteristics", NS)
    assert marker is not None
    assert marker.get("isSequential") is None  # the elements run side by side


def test_retried_steps_are_kept_with_a_loop_marker(files: dict[str, str]) -> None:
    doc = Doc(files["kind-retry"])
    assert doc.has(doc.only("serviceTask", "Call Bank"), "bpmn:standardLoopCharacteristics")
    assert doc.has(doc.only("subProcess"), "bpmn:standardLoopCharacteristics")
    assert doc.names("serviceTask") == ["Call Bank", "Ack", "Book"]
    withdrawal = Doc(files["example-withdrawal"])
    initiate = withdrawal.only("serviceTask", "Initiate Execution")
    assert withdrawal.has(initiate, "bpmn:standardLoopCharacteristics")
    bounced = Doc(files["progress-retry_stateful-bounced"])
    assert bounced.text(bounced.only("textAnnotation"), "bpmn:text") == (
        "1 failed attempt, the next not before 2025-03-03 08:00:00+00:00"
    )


def test_checkpoints_and_recoveries_are_drawn_on_request(files: dict[str, str]) -> None:
    assert Doc(files["kind-checkpoint"]).names("intermediateThrowEvent") == []
    assert Doc(files["kind-checkpoint-technical"]).names("intermediateThrowEvent") == ["Checkpoint"]
    assert Doc(files["kind-recovery"]).names("task") == []
    assert Doc(files["kind-recovery-technical"]).names("task") == ["State Recovery"]


def test_an_end_step_is_an_end_event(files: dict[str, str]) -> None:
    doc = Doc(files["kind-end"])
    assert doc.names("endEvent") == ["End"]
    assert doc.flows(source=doc.only("endEvent").get("id")) == []


def test_descriptions_are_text_annotations(files: dict[str, str]) -> None:
    doc = Doc(files["draft-release"])
    notes = {k: doc.text(n, "bpmn:text") for k, n in doc.by_id("textAnnotation").items()}
    tasks = doc.by_id("serviceTask")
    links = [
        (tasks[a.get("sourceRef", "")].get("name"), notes[a.get("targetRef", "")])
        for a in doc.all("association")
    ]
    assert links == [
        ("Approve", "Someone from the release team"),
        ("Roll Back", "Revert the tag and tell the team"),
    ]


def test_a_draft_draws_like_the_definition_it_sketches() -> None:
    def kinds_of(definition: WIO[Any, Any, Any]) -> list[str]:
        process = Doc(bpmn(definition)).all("process")[0]
        return [e.tag.split("}")[1] for e in process]

    drafted = draft.signal("Create PR") >> draft.step("Run Pipeline", error="Pipeline Failed")
    real = pr.PullRequest.create_pr >> pr.PullRequest.run_pipeline
    assert kinds_of(drafted) == kinds_of(real)


def test_progress_colours_what_ran_and_what_is_waited_on(files: dict[str, str]) -> None:
    def fills(name: str) -> dict[str, str]:
        doc = Doc(files[name])
        nodes = doc.flow_nodes()
        found = {}
        for shape in doc.all("BPMNShape", "bpmndi"):
            fill = shape.get(f"{{{NS['bioc']}}}fill")
            node = nodes.get(shape.get("bpmnElement", ""))
            if fill is not None and node is not None:
                assert shape.get(f"{{{NS['color']}}}background-color") == fill
                found[node.get("name", "")] = fill
        return found

    green, red, orange = "#c8e6c9", "#ffcdd2", "#ffe0b2"
    review = fills("progress-pull_request-review")
    assert review == {
        "Start": green,
        "Create Request": green,
        "Create PR": green,
        "Run Pipeline": green,
        "Review Request": orange,  # waited on; the task handling it is not reached yet
    }
    rejected = fills("progress-pull_request-rejected")
    assert (rejected["Process Review"], rejected["Review Rejected"]) == (red, green)
    assert (rejected["Close PR"], rejected["End"]) == (green, green)
    assert "Merge PR" not in rejected
    assert "Commit Not Found" not in rejected
    assert fills("example-pull_request") == {}
    merged = Doc(files["progress-pull_request-merged"])
    taken = [e for e in merged.all("BPMNEdge", "bpmndi") if e.get(f"{{{NS['bioc']}}}stroke")]
    assert len(taken) == 8  # the whole way from the start to the end, through the join


def test_flat_map_is_its_step_then_the_step_it_leads_to(files: dict[str, str]) -> None:
    assert Doc(files["kind-dynamic"]).names("task") == ["Dynamic Step"]
    chosen = Doc(files["progress-dynamic-chosen"])
    assert chosen.names("serviceTask") == ["Measure", "Small"]
    assert chosen.names("task") == []


def test_the_ways_of_a_handler_and_of_an_interruption_meet_at_a_gateway(
    files: dict[str, str],
) -> None:
    doc = Doc(files["example-pull_request"])
    [join] = doc.flows(source=doc.only("scriptTask", "Close PR").get("id"))
    [merged] = doc.flows(source=doc.only("scriptTask", "Merge PR").get("id"))
    assert join.get("targetRef") == merged.get("targetRef")
    assert doc.by_id("exclusiveGateway").get(join.get("targetRef", "")) is not None
    interrupted = Doc(files["kind-interruptible"])
    [after] = interrupted.flows(source=interrupted.only("serviceTask", "Notify").get("id"))
    [normal] = interrupted.flows(source=interrupted.only("subProcess").get("id"))
    assert after.get("targetRef") == normal.get("targetRef")
    assert interrupted.by_id("exclusiveGateway").get(after.get("targetRef", "")) is not None


def test_errors_nothing_handles_are_not_drawn(files: dict[str, str]) -> None:
    step = progress_of(DRAFTS["step"])
    assert isinstance(step, RunIOProgress)
    assert step.errors == ("Damaged",)
    assert Doc(files["draft-step"]).all("boundaryEvent") == []
    assert Doc(files["draft-step"]).all("error") == []


def test_a_subprocess_holding_what_is_waited_on_has_an_orange_stroke(
    files: dict[str, str],
) -> None:
    doc = Doc(files["progress-withdrawal-executing"])
    outer = doc.all("subProcess")[0].get("id")
    [shape] = [s for s in doc.all("BPMNShape", "bpmndi") if s.get("bpmnElement") == outer]
    assert shape.get(f"{{{NS['bioc']}}}stroke") == "#fb8c00"
    assert shape.get(f"{{{NS['bioc']}}}fill") is None


def test_a_loop_is_drawn_once_coloured_as_its_rounds_ran(files: dict[str, str]) -> None:
    doc = Doc(files["progress-loop-second-round"])
    assert doc.names("serviceTask") == ["Quote", "Remind"]
    fills = {
        doc.flow_nodes()[s.get("bpmnElement", "")].get("name"): s.get(f"{{{NS['bioc']}}}fill")
        for s in doc.all("BPMNShape", "bpmndi")
        if s.get(f"{{{NS['bioc']}}}fill") and s.get("bpmnElement") in doc.flow_nodes()
    }
    # round 1 ran the quote and the reminder; round 2 waits for the next quote
    assert (fills["Quote"], fills["Remind"], fills["Answer"]) == ("#c8e6c9", "#c8e6c9", "#ffe0b2")


def test_the_docs_images_are_drawn_from_todays_files() -> None:
    spec = importlib.util.spec_from_file_location(
        "bpmn_images", ROOT / "scripts" / "bpmn_images.py"
    )
    assert spec is not None
    assert spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    page = (ROOT / "docs" / "bpmn.md").read_text(encoding="utf-8")
    for name, xml in script.diagrams().items():
        drawn = ROOT / "docs" / "images" / f"{name}.bpmn"
        assert drawn.read_text(encoding="utf-8") == xml, "run scripts/bpmn_images.py"
        assert (ROOT / "docs" / "images" / f"{name}.png").read_bytes().startswith(b"\x89PNG")
        assert f"(images/{name}.png)" in page
