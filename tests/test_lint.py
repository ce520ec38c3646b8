"""The linter: each rule reports what it should, where it should, and nothing else."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from workflows4py import (
    LINT_RULES,
    WIO,
    Caught,
    DefinitionError,
    Err,
    LintError,
    LintIssue,
    Ok,
    Result,
    RetryAgain,
    RetryFailure,
    SignalDef,
    Workflow,
    WorkflowError,
    assert_clean,
    draft,
    lint,
    lint_workflow,
)
from workflows4py.examples.pull_request import PullRequest


@dataclass(frozen=True)
class St:
    value: int = 0


@dataclass(frozen=True)
class Happened:
    what: str


@dataclass(frozen=True)
class Urgent(Happened):
    pass


@dataclass(frozen=True)
class Cancelled:
    what: str


@dataclass(frozen=True)
class Attempt:
    number: int


@dataclass(frozen=True)
class Item:
    key: str
    event: Happened


@dataclass(frozen=True)
class Poke:
    amount: int


@dataclass(frozen=True)
class Refused:
    reason: str


poke = SignalDef("poke", request=Poke)
cancel = SignalDef("cancel", request=Poke)


def record(s: St, e: object) -> St:
    return St(s.value + 1)


def effect(name: str, event: type[Happened | Cancelled] = Happened) -> WIO[St, Any, St]:
    def run(s: St) -> Happened | Cancelled:
        return event(name)

    return WIO.run_io(St, run, event=event).handle_event(record).named(name)


def on_signal(
    name: str, signal: SignalDef[Poke, None] = poke, event: type[Happened | Cancelled] = Happened
) -> WIO[St, Any, St]:
    step: WIO[St, Any, St] = (
        WIO.handle_signal(signal, input=St)
        .purely(lambda s, r: event(name), event=event)
        .handle_event(record)
        .void_response()
        .named(name)
    )
    return step


def note(name: str) -> WIO[St, Any, St]:
    return WIO.pure(St, lambda s: s).named(name)


def restore(c: Caught[St, Any]) -> St:
    return c.state


def both(*branches: WIO[St, Any, St], name: str | None = None) -> WIO[St, Any, St]:
    builder = WIO.parallel(lambda s: s, input=St, name=name)
    for branch in branches:
        builder = builder.branch(branch, incorporate=lambda i, b: i)
    return builder.output(lambda s, outs: s)


def issues(definition: WIO[Any, Any, Any], rule: str) -> list[str]:
    found = lint(definition)
    assert {i.rule for i in found} <= {rule}, [str(i) for i in found]
    return [str(i) for i in found]


# -- issues and errors --------------------------------------------------------------------------


def test_an_issue_reads_rule_path_and_message() -> None:
    issue = LintIssue("busy-loop", "it spins", ("root", "first", "branch[Yes]"))
    assert str(issue) == "[busy-loop] root > first > branch[Yes]: it spins"
    assert LINT_RULES == (
        "busy-loop",
        "clashing-signals",
        "clashing-events",
        "unnecessary-error-handler",
    )


def test_the_pull_request_example_is_clean() -> None:
    assert lint(PullRequest.definition) == []
    assert lint_workflow(PullRequest) == []
    assert_clean(PullRequest)


def test_assert_clean_lists_the_issues() -> None:
    wf = (
        WIO.repeat(note("Spin"))
        .until(lambda s: False, name="Again?")
        .handle_error_with(WIO.pure(restore))
    )
    with pytest.raises(LintError) as raised:
        assert_clean(wf)
    error = raised.value
    assert isinstance(error, WorkflowError)
    assert [(i.rule, i.path) for i in error.issues] == [
        ("unnecessary-error-handler", ("root",)),
        ("busy-loop", ("root", "base", "Again?")),
    ]
    assert str(error).splitlines() == [
        "the definition has 2 lint issues:",
        *(f"  {issue}" for issue in error.issues),
    ]
    assert_clean(wf, ignore=("busy-loop", "unnecessary-error-handler"))
    assert lint(wf, ignore=["busy-loop"]) == list(error.issues[:1])


def test_assert_clean_names_the_workflow() -> None:
    class Spinning(Workflow[St, Happened]):
        definition = WIO.repeat(note("Spin")).until(lambda s: False, name="Again?")

    with pytest.raises(LintError, match=r"^workflow Spinning has 1 lint issue:\n  \[busy-loop\]"):
        assert_clean(Spinning)


def test_bad_arguments_are_definition_errors() -> None:
    with pytest.raises(DefinitionError, match="unknown lint rule"):
        lint(note("x"), ignore=("busy-loops",))
    with pytest.raises(DefinitionError, match="expects a WIO"):
        lint(PullRequest)  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="expects a Workflow subclass"):
        lint_workflow(PullRequest.definition)  # type: ignore[arg-type]


# -- busy-loop ----------------------------------------------------------------------------------

BUSY = (
    "never waits: neither its body nor its on_restart has a signal, timer, effect, recovery or "
    "checkpoint, so it would repeat forever without recording anything"
)


def test_busy_loop_is_reported_where_it_is() -> None:
    busy = WIO.repeat(note("Spin")).until(lambda s: False, name="Done?")
    fork = WIO.choose(St, lambda s: s.value > 0, busy, note("Skip"), name="Big?")
    assert issues(effect("Start") >> fork, "busy-loop") == [
        f"[busy-loop] root > Big? > branch[Yes] > Done?: loop 'Done?' {BUSY}"
    ]


def test_an_interruption_does_not_make_a_loop_wait() -> None:
    # the interruption can only fire while its base waits, and this base never does
    body = note("Spin").interrupt_with(on_signal("Stop", cancel))
    loop = WIO.repeat(body).until(lambda s: False)
    assert issues(loop, "busy-loop") == [f"[busy-loop] root: loop (unnamed) {BUSY}"]


@pytest.mark.parametrize(
    "body",
    [
        on_signal("Poked"),
        note("Check") >> effect("Fetch"),
        note("Check").checkpointed(lambda s, o: Happened("x"), lambda s, e: s, event=Happened),
        note("Check").flat_map(lambda s: note("Next")),  # unknown: given the benefit of doubt
        WIO.choose(St, lambda s: s.value > 0, note("a"), on_signal("b"), name="Wait?"),
    ],
)
def test_a_loop_that_can_wait_or_record_is_not_busy(body: WIO[St, Any, St]) -> None:
    assert lint(WIO.repeat(body).until(lambda s: s.value > 3, name="Done?")) == []


def test_a_waiting_on_restart_is_enough() -> None:
    wait = WIO.timer(timedelta(seconds=20), input=St, name="Await Retry")
    assert lint(WIO.repeat(note("Check")).until(lambda s: False, on_restart=wait)) == []


def test_a_busy_draft_loop_is_reported() -> None:
    loop = draft.step("Start") >> draft.repeat(note("Spin"), condition="Again?")
    assert issues(loop, "busy-loop") == [f"[busy-loop] root > Again?: loop 'Again?' {BUSY}"]
    assert lint(draft.repeat(draft.step("Work"), condition="Again?")) == []


# -- clashing-signals ---------------------------------------------------------------------------


def test_a_signal_awaited_by_an_interruption_and_later_in_its_base() -> None:
    base = on_signal("First") >> on_signal("Second", cancel)
    wf = effect("Start") >> base.interrupt_with(on_signal("Cancel", cancel, Cancelled))
    assert issues(wf, "clashing-signals") == [
        "[clashing-signals] root: signal 'cancel' can be awaited at once by the interruption's "
        "trigger 'Cancel' and by 'Second' in its base; the interruption would always take it"
    ]


def test_a_signal_awaited_in_two_parallel_branches() -> None:
    left = on_signal("Left")
    right = effect("Prepare", Cancelled) >> on_signal("Right", poke, Cancelled)
    # the root's own name is not part of paths: "root" stands for the whole definition
    wf = WIO.choose(St, lambda s: True, both(left, right, name="Reviews"), note("No"), name="Go?")
    assert issues(wf, "clashing-signals") == [
        "[clashing-signals] root > branch[Yes] > Reviews: signal 'poke' can be awaited at "
        "once in parallel branches 0 ('Left') and 1 ('Right'); branch 0 would always take it"
    ]


def test_draft_signals_clash_by_name() -> None:
    wf = draft.parallel(draft.signal("Approve"), draft.step("x") >> draft.signal("Approve"))
    assert issues(wf, "clashing-signals") == [
        "[clashing-signals] root: signal 'Approve' can be awaited at once in parallel branches "
        "0 ('Approve') and 1 ('Approve'); branch 0 would always take it"
    ]


def element(key: str) -> St:
    return St()


def unwrap(e: Any) -> tuple[str, Any] | None:
    return (e.key, e.event) if isinstance(e, Item) else None


def test_signals_that_never_await_at_once_do_not_clash() -> None:
    cancellable = (on_signal("First") >> on_signal("Second")).interrupt_with(
        on_signal("Cancel", cancel, Cancelled)
    )
    after = cancellable >> on_signal("Tail", cancel, Cancelled)  # only once the base is done
    each = WIO.for_each(
        lambda s: ["a", "b"], on_signal("Per Item").map_input(element), input=St
    ).build(wrap=Item, unwrap=unwrap, interim=lambda s, states: s, output=lambda s, outs: s)
    routed = both(each, on_signal("Outside", poke, Cancelled))  # an element's signals are routed
    handled = on_signal("Try").handle_error_with(on_signal("Again").map_input(restore))
    for wf in (cancellable, after, routed, handled):
        assert [i for i in lint(wf) if i.rule == "clashing-signals"] == []


# -- clashing-events ----------------------------------------------------------------------------


def test_an_event_taken_by_an_interruption_and_by_its_base() -> None:
    wf = (effect("Work") >> on_signal("Second")).interrupt_with(on_signal("Cancel", cancel))
    assert issues(wf, "clashing-events") == [
        "[clashing-events] root: events of class Happened can be taken at once by the "
        "interruption's trigger 'Cancel' and by 'Work', 'Second' in its base; the interruption "
        "is offered them first"
    ]


def test_an_event_taken_in_two_parallel_branches_or_by_a_subclass() -> None:
    wf = both(effect("Left"), effect("Right", Cancelled) >> effect("Late", Urgent))
    assert issues(wf, "clashing-events") == [
        "[clashing-events] root: events of class Happened/Urgent can be taken at once in "
        "parallel branches 0 ('Left') and 1 ('Late'); branch 0 is offered them first"
    ]


def test_a_checkpoint_event_also_taken_by_its_base_is_refused_when_built() -> None:
    # stronger than a lint issue: such a definition cannot be built at all
    with pytest.raises(DefinitionError, match="Happened are also recorded by the steps it wraps"):
        (effect("A") >> effect("B", Cancelled)).checkpointed(
            lambda s, o: Happened("snap"), lambda s, e: s, event=Happened
        )


def on_error(failure: RetryFailure[St, int]) -> Happened:
    return Happened("retry")


def on_attempt(s: St, e: Happened, attempts: int) -> RetryAgain[int] | Result[St, Refused]:
    return Err(Refused("gave up"))


def on_attempt_event(s: St, e: Attempt, attempts: int) -> RetryAgain[int] | Result[St, Refused]:
    return Err(Refused("gave up"))


def test_stateful_retry_events_also_taken_by_its_base_are_refused_when_built() -> None:
    with pytest.raises(DefinitionError, match="retry_stateful: its event class"):
        effect("Flaky").retry_stateful(initial=0, on_error=on_error, handle_event=on_attempt)


def attempt(failure: RetryFailure[St, int]) -> Attempt:
    return Attempt(failure.state + 1)


def test_events_that_never_clash() -> None:
    cancellable = (effect("Work") >> on_signal("Second")).interrupt_with(
        on_signal("Cancel", cancel, Cancelled)
    )
    retried = effect("Flaky").retry_stateful(
        initial=0, on_error=attempt, handle_event=on_attempt_event
    )
    each = WIO.for_each(lambda s: ["a"], effect("Per Item").map_input(element), input=St).build(
        wrap=Item, unwrap=unwrap, interim=lambda s, states: s, output=lambda s, outs: s
    )
    wrapped = both(each, effect("Outside"))  # an element's events are wrapped
    timers = both(WIO.timer(timedelta(1), input=St), WIO.timer(timedelta(2), input=St))
    sequential = effect("One") >> effect("Two")
    for wf in (cancellable, retried, wrapped, timers, sequential):
        assert [i for i in lint(wf) if i.rule == "clashing-events"] == [], wf


# -- unnecessary-error-handler ------------------------------------------------------------------

UNNECESSARY = (
    "the error handler never runs: no step of its base can fail (none declares a domain "
    "error); remove handle_error_with or declare the errors"
)


def test_a_handler_around_steps_that_cannot_fail() -> None:
    inner = (effect("A") >> on_signal("B") >> note("C")).handle_error_with(WIO.pure(restore))
    wf = on_signal("Start") >> WIO.choose(St, lambda s: True, inner, note("No"), name="Go?")
    assert issues(wf, "unnecessary-error-handler") == [
        f"[unnecessary-error-handler] root > Go? > branch[Yes]: {UNNECESSARY}"
    ]
    # a draft step without an error name cannot fail either
    assert issues(draft.step("x").handle_error_with(draft.step("y")), UNNECESSARY_RULE) == [
        f"[unnecessary-error-handler] root: {UNNECESSARY}"
    ]


UNNECESSARY_RULE = "unnecessary-error-handler"


def check(s: St, e: Happened) -> Result[St, Refused]:
    return Err(Refused(e.what))


def pure_check(s: St) -> Result[St, Refused]:
    return Ok(s)


@pytest.mark.parametrize(
    "base",
    [
        WIO.run_io(St, lambda s: Happened("x"), event=Happened).handle_event_with_error(check),
        effect("A") >> WIO.pure_with_error(pure_check),
        effect("A") >> WIO.fail(Refused("no")),
        # no annotation: the errors are unknown, so the handler may well be needed
        WIO.run_io(St, lambda s: Happened("x"), event=Happened).handle_event_with_error(
            lambda s, e: Err(Refused(e.what))
        ),
        WIO.pure_with_error(St, lambda s: Ok(St(s.value + 1))),
        note("A").flat_map(lambda s: note("B")),
        draft.step("Pay", error="Declined"),
    ],
)
def test_a_handler_around_a_step_that_can_fail_is_needed(base: WIO[St, Any, St]) -> None:
    assert lint(base.handle_error_with(WIO.pure(restore))) == []


def test_a_handled_base_fails_only_if_its_handler_can() -> None:
    inner = WIO.fail(Refused("no")).handle_error_with(WIO.pure(restore))
    outer = (effect("A") >> inner).handle_error_with(WIO.pure(restore))
    assert issues(outer, UNNECESSARY_RULE) == [f"[unnecessary-error-handler] root: {UNNECESSARY}"]
    rethrow = WIO.fail(Refused("no")).handle_error_with(WIO.fail(Refused("still no")))
    assert lint((effect("A") >> rethrow).handle_error_with(WIO.pure(restore))) == []
