"""Drafts: definitions with only names, drawn (as a progress model) but never run."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import pytest

from workflows4py import (
    WIO,
    Caught,
    DefinitionError,
    ForEachProgress,
    ForkProgress,
    HandleErrorProgress,
    InMemoryRuntime,
    InterruptibleProgress,
    LoopProgress,
    PureProgress,
    RunIOProgress,
    SequenceProgress,
    SignalDef,
    SignalProgress,
    StepProgress,
    TimerProgress,
    Workflow,
    draft,
    ensure_runnable,
    is_draft,
    lint,
    progress_of,
)
from workflows4py.engine import Execution

REFUSED = "is a draft: it can be inspected and linted, not run; replace draft step"


@dataclass(frozen=True)
class St:
    value: int = 0


@dataclass(frozen=True)
class Happened:
    amount: int


@dataclass(frozen=True)
class Poke:
    amount: int


poke = SignalDef("poke", request=Poke)


def add(s: St, e: Happened) -> St:
    return St(s.value + e.amount)


def signal_step() -> WIO[St, Any, St]:
    return (
        WIO.handle_signal(poke, input=St)
        .purely(lambda s, r: Happened(r.amount))
        .handle_event(add)
        .void_response()
        .named("Poked")
    )


# the upstream pull-request draft, named by its class attributes
class PullRequestDraft(Workflow[St, Happened]):
    create_pr = draft.signal()
    run_pipeline = draft.step(error="Critical Issue")
    process_review = draft.signal(error="Rejected")
    merge_pr = draft.step()
    close_pr = draft.step()

    definition = (create_pr >> run_pipeline >> process_review >> merge_pr).handle_error_with(
        close_pr
    )


def leaf(kind: str, name: str, errors: tuple[str, ...] = ()) -> tuple[str, str | None, Any]:
    return (kind, name, errors)


def shape(p: StepProgress) -> tuple[str, str | None, Any]:
    assert isinstance(p, PureProgress | RunIOProgress | SignalProgress | TimerProgress)
    return (p.kind, p.name, getattr(p, "errors", ()))


def test_the_pull_request_draft_draws_with_names_kinds_and_errors() -> None:
    p = draft.progress(PullRequestDraft.definition)
    assert p == progress_of(PullRequestDraft.definition) == progress_of(PullRequestDraft)
    assert isinstance(p, HandleErrorProgress)
    base, handler = p.children
    assert isinstance(base, SequenceProgress)
    assert [shape(c) for c in base.children] == [
        leaf("signal", "Create PR"),
        leaf("run_io", "Run Pipeline", ("Critical Issue",)),
        leaf("signal", "Process Review", ("Rejected",)),
        leaf("run_io", "Merge PR"),
    ]
    assert shape(handler) == leaf("run_io", "Close PR")
    assert [getattr(c, "signal_name", None) for c in base.children] == [
        "Create PR",
        None,
        "Process Review",
        None,
    ]
    assert p.handled == ("Critical Issue", "Rejected")
    for step in (*base.children, handler):
        assert (step.draft, step.description, step.status) == (True, None, "pending")
        assert not step.executed


def test_the_pull_request_draft_is_a_draft_and_lints_clean() -> None:
    assert is_draft(PullRequestDraft.definition)
    assert lint(PullRequestDraft.definition) == []


def test_ensure_runnable_names_every_draft_step() -> None:
    message = (
        "workflow PullRequestDraft is a draft: it can be inspected and linted, not run; "
        "replace draft steps signal 'Create PR', step 'Run Pipeline', signal 'Process Review', "
        "step 'Merge PR', step 'Close PR' with real ones"
    )
    with pytest.raises(DefinitionError) as refused:
        ensure_runnable(PullRequestDraft)
    assert str(refused.value) == message
    with pytest.raises(DefinitionError, match=r"^this definition is a draft"):
        ensure_runnable(PullRequestDraft.definition)


async def test_a_runtime_refuses_to_run_a_draft() -> None:
    async def run() -> None:
        runtime = InMemoryRuntime(PullRequestDraft, initial_state=St())
        await runtime.create_instance("pr-1")

    # refused when the runtime is built (once it calls ensure_runnable), at the latest when
    # the first instance starts
    with pytest.raises(DefinitionError, match=REFUSED):
        await run()


def test_the_engine_refuses_to_start_a_draft() -> None:
    with pytest.raises(DefinitionError, match=REFUSED + " signal 'Create PR' with a real one"):
        Execution.start(PullRequestDraft.definition, St())


def test_a_draft_step_after_real_ones_is_refused_when_reached() -> None:
    execution = Execution.start(signal_step() >> draft.step("Charge"), St())
    assert [leaf.node.display_name for leaf in execution.frontier()] == ["Poked"]
    with pytest.raises(DefinitionError, match=REFUSED + " step 'Charge'"):
        execution.apply_event(Happened(1))


def test_a_draft_interruption_is_refused_when_awaited() -> None:
    wf = signal_step().interrupt_with(draft.interruption_timeout("Too Late", timedelta(hours=1)))
    execution = Execution.start(wf, St())  # only the base is advanced
    with pytest.raises(DefinitionError, match=REFUSED + " timer 'Too Late'"):
        execution.frontier()


def test_explicit_names_win_and_none_takes_the_attribute_name() -> None:
    class Steps:
        charge = draft.step(None, description="Charge the card")
        notify = draft.step("Send Email")
        renamed = draft.step().named("Renamed")

    assert Steps.charge.display_name == "Charge"
    assert Steps.notify.display_name == "Send Email"
    assert Steps.renamed.display_name == "Renamed"
    charge = draft.progress(Steps.charge)
    assert (charge.draft, charge.description) == (True, "Charge the card")
    assert draft.progress(draft.step()).name is None  # not assigned to anything


def test_signal_and_timer_drafts() -> None:
    sig = draft.signal("Approve", error="Denied", description="A manager approves")
    p = draft.progress(sig)
    assert isinstance(p, SignalProgress)
    assert (p.name, p.signal_name, p.errors) == ("Approve", "Approve", ("Denied",))
    assert (p.signal_id, p.request, p.response) == (None, None, None)  # no code yet
    assert p.description == "A manager approves"
    timed = draft.progress(draft.timer("Cool Down", timedelta(hours=24)))
    assert isinstance(timed, TimerProgress)
    assert (timed.name, timed.duration) == ("Cool Down", timedelta(hours=24))
    assert draft.progress(draft.timer("Until Due")) == TimerProgress(name="Until Due", draft=True)


def test_choice_and_loop_drafts() -> None:
    choice = draft.choice("Approved?", {"Yes": draft.step("Pay"), "No": draft.step("Refuse")})
    p = draft.progress(choice)
    assert isinstance(p, ForkProgress)
    assert (p.name, p.draft, p.chosen) == ("Approved?", True, None)
    assert [(b.name, b.body.name) for b in p.branches] == [("Yes", "Pay"), ("No", "Refuse")]

    loop = draft.repeat(
        draft.step("Run Checks"),
        condition="All done?",
        release="Done",
        restart="Again",
        on_restart=draft.timer("Await Retry", timedelta(seconds=20)),
    )
    lp = draft.progress(loop)
    assert isinstance(lp, LoopProgress)
    assert (lp.name, lp.release, lp.restart, lp.draft) == ("All done?", "Done", "Again", True)
    (first,) = lp.iterations  # the first round, ahead
    assert first.body.name == "Run Checks"
    assert first.on_restart is not None
    assert first.on_restart.name == "Await Retry"


def test_parallel_and_for_each_drafts() -> None:
    par = draft.progress(draft.parallel(draft.step("Left"), draft.signal("Right"), name="Both"))
    assert (par.kind, par.name, [c.name for c in par.children]) == (
        "parallel",
        "Both",
        ["Left", "Right"],
    )
    each = draft.progress(draft.for_each(draft.signal("Review"), "Reviews"))
    assert isinstance(each, ForEachProgress)
    assert (each.name, each.body.name, each.elements) == ("Reviews", "Review", None)
    assert each.children == (each.body,)


def test_interruption_drafts() -> None:
    class Flow:
        cancel = draft.interruption_signal()
        work = draft.step()

    by_signal = Flow.work.interrupt_with(Flow.cancel >> draft.step("Undo"))
    p = draft.progress(by_signal)
    assert isinstance(p, InterruptibleProgress)
    assert shape(p.base) == leaf("run_io", "Work")
    assert isinstance(p.trigger, SignalProgress)
    assert (p.trigger.name, p.trigger.signal_name) == ("Cancel", "Cancel")
    assert p.handler is not None
    assert p.handler.name == "Undo"

    named = draft.progress(draft.interruption_signal("Cancel Request", error="Cancelled"))
    assert isinstance(named, SignalProgress)
    assert (named.name, named.signal_name) == ("Handle Cancel Request", "Cancel Request")
    assert named.errors == ("Cancelled",)
    operation = draft.progress(draft.interruption_signal("Cancel Request", "Stop"))
    assert isinstance(operation, SignalProgress)
    assert (operation.name, operation.signal_name) == ("Stop", "Cancel Request")

    timeout = draft.interruption_timeout("Execution Timeout", timedelta(minutes=2))
    tp = draft.progress(draft.step("Run").interrupt_with(timeout))
    assert isinstance(tp, InterruptibleProgress)
    assert shape(tp.trigger) == leaf("timer", "Execution Timeout")
    assert isinstance(tp.trigger, TimerProgress)
    assert (tp.trigger.duration, tp.handler) == (timedelta(minutes=2), None)


def test_retry_checkpoint_and_recovery_drafts() -> None:
    retried = draft.progress(draft.retry(draft.step("Call Bank")))
    assert (retried.kind, retried.children[0].name, retried.draft) == ("retry", "Call Bank", True)
    checkpointed = draft.progress(draft.checkpoint(draft.step("Heavy")))
    assert (checkpointed.kind, checkpointed.children[0].name) == ("checkpoint", "Heavy")
    assert checkpointed.draft
    restore = draft.progress(draft.recovery("Restore"))
    assert (restore.kind, restore.name, restore.draft) == ("recovery", "Restore", True)


def test_drafts_compose_with_real_nodes() -> None:
    real = signal_step() >> WIO.pure(St, lambda s: St(s.value + 1)).named("Bump")
    assert not is_draft(real)
    ensure_runnable(real)  # nothing to refuse

    def give_up(c: Caught[St, Any]) -> St:
        return St(-1)

    mixed = (real >> draft.step("Ship", error="Lost")).handle_error_with(
        WIO.pure(give_up).named("Give Up")
    )
    assert is_draft(mixed)
    p = draft.progress(mixed)
    assert [shape(c) for c in p.children[0].children] == [
        ("signal", "Poked", ()),
        ("pure", "Bump", ()),
        leaf("run_io", "Ship", ("Lost",)),
    ]
    assert p.children[0].children[2].draft is True
    assert p.children[0].children[0].draft is False
    assert shape(p.children[1]) == ("pure", "Give Up", ())


@pytest.mark.parametrize(
    ("definition", "part"),
    [
        (draft.choice("Big?", {"Yes": WIO.value(St()), "No": WIO.value(St())}), "choice 'Big?'"),
        (draft.repeat(signal_step(), condition="Enough?"), "loop 'Enough?'"),
        (draft.for_each(signal_step(), "Items"), "for-each 'Items'"),
        (draft.parallel(signal_step(), signal_step()), "parallel"),
        (draft.retry(signal_step()), "retry"),
        (draft.checkpoint(signal_step()), "checkpoint"),
    ],
)
def test_structure_around_real_steps_is_still_a_draft(
    definition: WIO[Any, Any, Any], part: str
) -> None:
    assert is_draft(definition)
    with pytest.raises(DefinitionError, match=re.escape(f"{REFUSED} {part} with a real one")):
        ensure_runnable(definition)


def test_a_draft_choice_refuses_to_choose() -> None:
    choice = draft.choice("Big?", {"Yes": WIO.value(St(1)), "No": WIO.value(St(2))})
    with pytest.raises(DefinitionError, match=REFUSED + " choice with a real one"):
        Execution.start(choice, St())


@pytest.mark.parametrize(
    "build",
    [
        lambda: draft.step(""),
        lambda: draft.signal("Ok", error=""),
        lambda: draft.timer("Wait", timedelta(seconds=-1)),
        lambda: draft.choice("Empty?", {}),
        lambda: draft.choice("Bad?", {"Yes": cast(Any, "not a step")}),
        lambda: draft.parallel(draft.step("Alone")),
        lambda: draft.repeat(draft.step("x"), condition="Done?", release=""),
        lambda: draft.retry(cast(Any, "not a step")),
    ],
)
def test_malformed_drafts_are_definition_errors(build: Any) -> None:
    with pytest.raises(DefinitionError, match="draft"):
        build()
