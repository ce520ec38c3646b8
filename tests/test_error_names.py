"""Error names read like step and signal names: the class name split into words."""

from __future__ import annotations

from dataclasses import dataclass

from workflows4py import (
    WIO,
    Err,
    Ok,
    PureProgress,
    Result,
    RunIOProgress,
    SignalDef,
    SignalProgress,
    StepProgress,
    draft,
    render,
)
from workflows4py.engine import Execution


@dataclass(frozen=True)
class S:
    commit: str


@dataclass(frozen=True)
class CommitNotFound:
    pass


@dataclass(frozen=True)
class PRRejected:
    by: str


class Limits:
    @dataclass(frozen=True)
    class OverDailyLimit:
        amount: int


@dataclass(frozen=True)
class Fetched:
    found: bool


@dataclass(frozen=True)
class Review:
    by: str
    approve: bool


review = SignalDef("review", request=Review)


def on_fetched(s: S, e: Fetched) -> Result[S, CommitNotFound]:
    return Ok(s) if e.found else Err(CommitNotFound())


def check(s: S) -> Result[S, CommitNotFound | PRRejected]:
    return Ok(s)


def limit(s: S) -> Ok[S] | Err[Limits.OverDailyLimit]:
    return Ok(s)


def on_review(s: S, e: Review) -> Result[S, PRRejected]:
    return Ok(s) if e.approve else Err(PRRejected(e.by))


fetch = WIO.run_io(S, lambda s: Fetched(s.commit != "nope"), event=Fetched)
review_step = (
    WIO.handle_signal(review, input=S)
    .purely(lambda s, r: r, event=Review)
    .handle_event_with_error(on_review)
    .void_response()
)


def errors(step: StepProgress) -> tuple[str, ...]:
    assert isinstance(step, PureProgress | RunIOProgress | SignalProgress)
    return step.errors


def test_progress_names_declared_errors_in_words() -> None:
    definition = (
        fetch.handle_event_with_error(on_fetched).named("Fetch Commit")
        >> WIO.pure_with_error(check)
        >> WIO.pure_with_error(limit)
        >> review_step
        >> WIO.fail(CommitNotFound())
    )
    steps = Execution.start(definition, S("abc")).progress().children
    assert [errors(step) for step in steps] == [
        ("Commit Not Found",),
        ("Commit Not Found", "PR Rejected"),
        ("Over Daily Limit",),
        ("PR Rejected",),
        ("Commit Not Found",),
    ]
    # the step's own name is still its own: .named() or the attribute it is assigned to
    assert steps[0].name == "Fetch Commit"


def test_draft_error_names_are_used_as_written() -> None:
    sketch = draft.progress(draft.step("Fetch", error="commitNotFound") >> draft.signal("Review"))
    assert errors(sketch.children[0]) == ("commitNotFound",)


def test_the_text_tree_names_the_error_a_step_failed_with() -> None:
    definition = fetch.handle_event_with_error(on_fetched).named("Fetch Commit")
    execution = Execution.start(definition, S("nope")).apply_event(Fetched(False))
    assert execution is not None
    assert execution.status == "failed"
    assert render.text(execution.progress()) == (
        "- [run_io] Fetch Commit (may fail with Commit Not Found)  "
        "✗ #0 Commit Not Found: CommitNotFound()"
    )
