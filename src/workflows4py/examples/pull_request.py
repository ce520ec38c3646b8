"""The pull-request workflow: create, run the CI pipeline, review, then merge or close.

Run it with ``./scripts/demo``. It walks through the four outcomes and then shows that a
fresh instance rebuilt from the journal reaches the same state without running the CI
pipeline again. Instances start from ``Empty()``, recorded as the first entry of their
journal, so the journal alone is enough to rebuild them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from workflows4py import (
    WIO,
    Caught,
    Err,
    Ok,
    Result,
    SignalDef,
    Workflow,
    render,
)
from workflows4py.runtime import Runtime

# -- state -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Empty:
    pass


@dataclass(frozen=True)
class Initiated:
    commit: str


@dataclass(frozen=True)
class Checked:
    commit: str
    pipeline_results: str


@dataclass(frozen=True)
class Reviewed:
    commit: str
    pipeline_results: str
    approved: bool


@dataclass(frozen=True)
class Merged:
    commit: str
    pipeline_results: str


@dataclass(frozen=True)
class Closed:
    state: PRState
    reason: PRError


PRState = Empty | Initiated | Checked | Reviewed | Merged | Closed

# -- domain errors (values, not exceptions) ---------------------------------------------------


@dataclass(frozen=True)
class CommitNotFound:
    pass


@dataclass(frozen=True)
class PipelineFailed:
    pass


@dataclass(frozen=True)
class ReviewRejected:
    pass


PRError = CommitNotFound | PipelineFailed | ReviewRejected

# -- events (what the journal records) ------------------------------------------------------


@dataclass(frozen=True)
class Created:
    commit: str


@dataclass(frozen=True)
class PipelineFinished:
    results: str


@dataclass(frozen=True)
class ReviewSubmitted:
    approved: bool


PREvent = Created | PipelineFinished | ReviewSubmitted

# -- signals ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateRequest:
    commit: str


@dataclass(frozen=True)
class ReviewRequest:
    approve: bool


create_pr_signal = SignalDef("create-pr", request=CreateRequest)
review_pr_signal = SignalDef("review-pr", request=ReviewRequest)

# -- the CI service the pipeline step calls -------------------------------------------------


class FakeCI:
    """Stands in for a real CI system; counts how often the pipeline actually ran."""

    def __init__(self) -> None:
        self.calls = 0

    async def run(self, commit: str) -> str:
        self.calls += 1
        return "<Some tests results>"


CI = FakeCI()

# -- steps -----------------------------------------------------------------------------------


def check_commit(state: Empty, event: Created) -> Result[Initiated, CommitNotFound]:
    if len(event.commit) > 8:
        return Err(CommitNotFound())
    return Ok(Initiated(event.commit))


async def run_ci(state: Initiated) -> PipelineFinished:
    return PipelineFinished(await CI.run(state.commit))


def check_results(state: Initiated, event: PipelineFinished) -> Result[Checked, PipelineFailed]:
    if "error" in event.results:
        return Err(PipelineFailed())
    return Ok(Checked(state.commit, event.results))


def check_review(state: Checked, event: ReviewSubmitted) -> Result[Reviewed, ReviewRejected]:
    if not event.approved:
        return Err(ReviewRejected())
    return Ok(Reviewed(state.commit, state.pipeline_results, approved=True))


def close(failure: Caught[PRState, PRError]) -> Closed:
    return Closed(failure.state, failure.error)


class PullRequest(Workflow[PRState, PREvent]):
    create_pr = (
        WIO.handle_signal(create_pr_signal, input=Empty)
        .purely(lambda state, request: Created(request.commit))
        .handle_event_with_error(check_commit)
        .void_response()
    )
    run_pipeline = WIO.run_io(Initiated, run_ci).handle_event_with_error(check_results)
    process_review = (
        WIO.handle_signal(review_pr_signal, input=Checked)
        .purely(lambda state, request: ReviewSubmitted(request.approve))
        .handle_event_with_error(check_review)
        .void_response()
    )
    merge_pr = WIO.pure(Reviewed, lambda r: Merged(r.commit, r.pipeline_results))
    close_pr = WIO.pure(close)

    definition = (create_pr >> run_pipeline >> process_review >> merge_pr).handle_error_with(
        close_pr
    )


# -- the demo --------------------------------------------------------------------------------


async def main() -> None:
    async with Runtime.memory([PullRequest]) as runtime:
        await outcomes(runtime)


async def outcomes(runtime: Runtime) -> None:
    print("== A PR whose review is rejected")
    pr = await runtime.start(PullRequest, "pr-1", initial_state=Empty())
    print("created:         ", await pr.query_state())
    await pr.deliver_signal(create_pr_signal, CreateRequest(commit="some-sha"))
    print("after create-pr: ", await pr.query_state())
    await pr.deliver_signal(review_pr_signal, ReviewRequest(approve=False))
    print("after review-pr: ", await pr.query_state())

    print("\n== Recovery: a fresh runtime rebuilds pr-1 from its journal")
    journal = await pr.get_journal()
    for entry in journal:  # the first entry is the state pr-1 started from
        print(f"  #{entry.sequence} {entry.type} {entry.data}")
    calls_before = CI.calls
    async with Runtime.memory([PullRequest]) as fresh:
        recovered = await fresh.of(PullRequest).restore_instance("pr-1", journal)
        same = await recovered.query_state() == await pr.query_state()
        print("recovered state: ", await recovered.query_state())
    print(f"same state: {same}; CI pipeline calls during recovery: {CI.calls - calls_before}")

    print("\n== A commit id longer than 8 characters")
    request = CreateRequest(commit="0123456789abcdef")
    pr2 = await runtime.start(
        PullRequest, "pr-2", initial_state=Empty(), signal=(create_pr_signal, request)
    )
    print("state:           ", await pr2.query_state())

    print("\n== An approved PR")
    request = CreateRequest(commit="a1b2c3")
    pr3 = await runtime.start(
        PullRequest, "pr-3", initial_state=Empty(), signal=(create_pr_signal, request)
    )
    await pr3.deliver_signal(review_pr_signal, ReviewRequest(approve=True))
    print("state:           ", await pr3.query_state())
    print("\nProgress of pr-3:")
    print(render.text(await pr3.get_progress()))


if __name__ == "__main__":
    asyncio.run(main())
