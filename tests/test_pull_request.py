"""The pull-request example: every outcome, with a replay check after every step."""

from __future__ import annotations

import asyncio
import contextlib
import io

import pytest

from workflows4py import InMemoryRuntime, Ok
from workflows4py.examples import pull_request as pr
from workflows4py.testing import ReplayCheckedInstance

RESULTS = "<Some tests results>"


@pytest.fixture
def runtime() -> InMemoryRuntime[pr.PRState, pr.PREvent]:
    return InMemoryRuntime(pr.PullRequest, initial_state=pr.Empty())


async def test_created_pr_runs_its_pipeline(
    runtime: InMemoryRuntime[pr.PRState, pr.PREvent],
) -> None:
    instance = await ReplayCheckedInstance.create(runtime, "pr-1")
    assert await instance.query_state() == pr.Empty()
    assert await instance.deliver_signal(pr.create_pr_signal, pr.CreateRequest("some-sha")) is None
    assert await instance.query_state() == pr.Checked("some-sha", RESULTS)
    assert [s.id for s in await instance.expected_signals()] == ["review-pr"]


async def test_rejected_review_closes_the_pr(
    runtime: InMemoryRuntime[pr.PRState, pr.PREvent],
) -> None:
    instance = await ReplayCheckedInstance.create(runtime, "pr-1")
    await instance.deliver_signal(pr.create_pr_signal, pr.CreateRequest("some-sha"))
    await instance.deliver_signal(pr.review_pr_signal, pr.ReviewRequest(approve=False))
    assert await instance.query_state() == pr.Closed(
        pr.Checked("some-sha", RESULTS), pr.ReviewRejected()
    )
    assert await instance.status() == "finished"
    steps = (await instance.get_progress()).executed_steps()
    assert [s.name for s in steps] == ["Create PR", "Run Pipeline", "Process Review", "Close PR"]


async def test_unknown_commit_closes_the_pr(
    runtime: InMemoryRuntime[pr.PRState, pr.PREvent],
) -> None:
    instance = await ReplayCheckedInstance.create(runtime, "pr-2")
    calls = pr.CI.calls
    await instance.deliver_signal(pr.create_pr_signal, pr.CreateRequest("0123456789"))
    assert await instance.query_state() == pr.Closed(pr.Empty(), pr.CommitNotFound())
    assert pr.CI.calls == calls  # the pipeline never ran


async def test_approved_pr_is_merged(runtime: InMemoryRuntime[pr.PRState, pr.PREvent]) -> None:
    instance = await ReplayCheckedInstance.create(runtime, "pr-3")
    await instance.deliver_signal(pr.create_pr_signal, pr.CreateRequest("a1b2c3"))
    await instance.deliver_signal(pr.review_pr_signal, pr.ReviewRequest(approve=True))
    assert await instance.query_state() == pr.Merged("a1b2c3", RESULTS)
    progress = await instance.get_progress()
    assert progress.result == Ok(pr.Merged("a1b2c3", RESULTS))
    assert [s.name for s in progress.executed_steps()][-1] == "Merge PR"


async def test_failed_pipeline_closes_the_pr(
    runtime: InMemoryRuntime[pr.PRState, pr.PREvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing(commit: str) -> str:
        return "1 error"

    monkeypatch.setattr(pr.CI, "run", failing)
    instance = await ReplayCheckedInstance.create(runtime, "pr-4")
    await instance.deliver_signal(pr.create_pr_signal, pr.CreateRequest("abc"))
    assert await instance.query_state() == pr.Closed(pr.Initiated("abc"), pr.PipelineFailed())


async def test_recovered_instance_does_not_rerun_the_pipeline(
    runtime: InMemoryRuntime[pr.PRState, pr.PREvent],
) -> None:
    live = await runtime.create_instance("pr-1")
    await live.deliver_signal(pr.create_pr_signal, pr.CreateRequest("some-sha"))
    calls = pr.CI.calls
    fresh = InMemoryRuntime(pr.PullRequest, initial_state=pr.Empty())
    recovered = await fresh.restore_instance("pr-1", await live.get_journal())
    assert await recovered.query_state() == pr.Checked("some-sha", RESULTS)
    assert pr.CI.calls == calls
    # the recovered instance carries on where the live one was
    await recovered.deliver_signal(pr.review_pr_signal, pr.ReviewRequest(approve=True))
    assert await recovered.query_state() == pr.Merged("some-sha", RESULTS)


def test_demo_prints_each_state_and_the_recovery() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        asyncio.run(pr.main())
    text = out.getvalue()
    assert (
        "after create-pr:  Checked(commit='some-sha', pipeline_results='<Some tests results>')"
        in text
    )
    assert "reason=ReviewRejected()" in text
    assert "Closed(state=Empty(), reason=CommitNotFound())" in text
    assert "Merged(commit='a1b2c3'" in text
    assert "same state: True; CI pipeline calls during recovery: 0" in text


STATES: list[pr.PRState] = [
    pr.Empty(),
    pr.Initiated("abc"),
    pr.Checked("abc", RESULTS),
    pr.Reviewed("abc", RESULTS, approved=True),
    pr.Merged("abc", RESULTS),
    pr.Closed(pr.Empty(), pr.CommitNotFound()),
    pr.Closed(pr.Initiated("abc"), pr.PipelineFailed()),
    pr.Closed(pr.Checked("abc", RESULTS), pr.ReviewRejected()),
]
EVENTS: list[pr.PREvent] = [
    pr.Created("abc"),
    pr.PipelineFinished(RESULTS),
    pr.ReviewSubmitted(False),
]


@pytest.mark.parametrize("state", STATES, ids=repr)
def test_every_state_round_trips_through_json(state: pr.PRState) -> None:
    codec = pr.PullRequest.codecs().state
    tag, data = codec.encode(state)
    assert codec.decode(tag, data) == state


@pytest.mark.parametrize("event", EVENTS, ids=repr)
def test_every_event_round_trips_through_json(event: pr.PREvent) -> None:
    codec = pr.PullRequest.codecs().events
    tag, data = codec.encode(event)
    assert tag == type(event).__name__
    assert codec.decode(tag, data) == event


@pytest.mark.parametrize(
    "request_value", [pr.CreateRequest("abc"), pr.ReviewRequest(approve=True)], ids=repr
)
def test_signal_requests_round_trip_through_json(
    request_value: pr.CreateRequest | pr.ReviewRequest,
) -> None:
    from workflows4py import JsonCodec

    codec: JsonCodec[object] = JsonCodec(type(request_value))
    assert codec.decode(*codec.encode(request_value)) == request_value
