"""A stored event that does not decode: a DecodeError naming the instance, the event and the
field, from replay and from get_events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from workflows4py import DecodeError, InMemoryRuntime, JournalEntry
from workflows4py.examples import pull_request as pr
from workflows4py.stores import InstanceKey, NewEvent

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
    good = await instance.get_journal()
    key = InstanceKey(pr.PullRequest.id, "pr-2")  # the same journal, #2 corrupted
    await runtime.store.create(key, NOW)
    bad = NewEvent(good[1].type, '{"results": []}', good[1].recorded_at)
    await runtime.store.append(key, 0, [NewEvent(good[0].type, good[0].data, NOW), bad])
    with pytest.raises(DecodeError) as caught:
        await (await runtime.get_instance("pr-2")).get_events()
    assert (caught.value.instance_id, caught.value.sequence) == ("pr-2", 2)
    assert caught.value.path == "$.results"
