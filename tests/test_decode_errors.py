"""A stored event that does not decode: a DecodeError naming the instance, the event and the
field, from replay and from get_events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from examples import pull_request as pr
from workflows4py import DecodeError, InMemoryRuntime, JournalEntry

NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def test_restoring_a_journal_with_a_bad_field_names_instance_event_and_path() -> None:
    runtime = InMemoryRuntime(pr.PullRequest, initial_state=pr.Empty())
    journal = [JournalEntry(1, "Created", '{"commit": 12}', NOW)]
    with pytest.raises(DecodeError) as caught:
        await runtime.restore_instance("pr-9", journal)
    error = caught.value
    assert (error.workflow, error.instance_id, error.sequence) == ("PullRequest", "pr-9", 1)
    assert error.path == "$.commit"
    assert "instance 'pr-9' of PullRequest, event #1" in str(error)
    assert "'Created'" in str(error)


async def test_get_events_names_the_event_that_does_not_decode() -> None:
    runtime = InMemoryRuntime(pr.PullRequest, initial_state=pr.Empty())
    instance = await runtime.create_instance("pr-1")
    await instance.deliver_signal(pr.create_pr_signal, pr.CreateRequest("abc"))
    inner = runtime._instances["pr-1"]
    assert inner.journal is not None
    good = inner.journal[1]
    inner.journal[1] = JournalEntry(2, good.type, '{"results": []}', good.recorded_at)
    with pytest.raises(DecodeError) as caught:
        await instance.get_events()
    assert (caught.value.instance_id, caught.value.sequence) == ("pr-1", 2)
    assert caught.value.path == "$.results"
