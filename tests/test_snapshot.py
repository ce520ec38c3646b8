"""Snapshots: an execution restored from a snapshot continues exactly like a full replay."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from workflows4py import WIO, InMemoryRuntime, JournalEntry, SqliteRuntime, Workflow
from workflows4py.engine import (
    Execution,
    SnapshotError,
    decode_execution,
    encode_execution,
    fingerprint,
)
from workflows4py.examples import pull_request as pr
from workflows4py.examples import withdrawal as wd
from workflows4py.stores import InstanceKey, Snapshot
from workflows4py.testing import TestClock


def replay(
    workflow: type[Workflow[Any, Any]], initial: Any, entries: list[JournalEntry]
) -> Execution:
    codec = workflow.codecs().events
    ex = Execution.start(workflow.definition, initial)
    for entry in entries:
        nxt = ex.apply_event(codec.decode(entry.type, entry.data))
        assert nxt is not None
        ex = nxt
    return ex


def assert_snapshots_continue_like_replay(
    workflow: type[Workflow[Any, Any]], initial: Any, journal: list[JournalEntry]
) -> None:
    """Snapshot after every prefix of the journal, decode, apply the rest: same as replay."""
    codec = workflow.codecs().events
    full = replay(workflow, initial, journal)
    for k in range(len(journal) + 1):
        prefix = replay(workflow, initial, journal[:k])
        restored = decode_execution(encode_execution(prefix, workflow), workflow, initial)
        assert restored.state == prefix.state
        assert restored.progress() == prefix.progress()
        for entry in journal[k:]:
            nxt = restored.apply_event(codec.decode(entry.type, entry.data))
            assert nxt is not None, f"event #{entry.sequence} refused after a snapshot at #{k}"
            restored = nxt
        assert restored.state == full.state
        assert restored.progress() == full.progress()
        assert restored.expected_signals() == full.expected_signals()
        assert restored.wakeup_at() == full.wakeup_at()
        assert restored.status == full.status


async def test_pull_request_snapshots() -> None:
    runtime = InMemoryRuntime(pr.PullRequest, initial_state=pr.Empty())
    instance = await runtime.create_instance("pr-1")
    await instance.deliver_signal(pr.create_pr_signal, pr.CreateRequest("abc"))
    await instance.deliver_signal(pr.review_pr_signal, pr.ReviewRequest(approve=False))
    assert_snapshots_continue_like_replay(pr.PullRequest, pr.Empty(), await instance.get_journal())


async def test_withdrawal_snapshots_cover_loops_timers_embedding_and_interruptions() -> None:
    clock = TestClock()
    service = wd.FakeWithdrawalService(execution_failures=1)
    workflow = wd.withdrawal_workflow(service)
    runtime = InMemoryRuntime(workflow, initial_state=wd.Empty(), clock=clock)
    instance = await runtime.create_instance("wd-1")
    await instance.deliver_signal(
        wd.create_withdrawal_signal,
        wd.CreateWithdrawal("tx-1", Decimal(100), "DE89370400440532013000"),
    )
    clock.advance(timedelta(minutes=2, seconds=1))
    await runtime.run_due_wakeups()
    journal = await instance.get_journal()
    assert len(journal) >= 5
    assert_snapshots_continue_like_replay(workflow, wd.Empty(), journal)


def test_snapshot_of_another_definition_is_refused() -> None:
    ex = Execution.start(pr.PullRequest.definition, pr.Empty())
    data = encode_execution(ex, pr.PullRequest)

    class Other(Workflow[pr.PRState, pr.PREvent]):
        definition = pr.PullRequest.create_pr >> pr.PullRequest.run_pipeline

    assert fingerprint(Other.definition) != fingerprint(pr.PullRequest.definition)
    with pytest.raises(SnapshotError, match="another definition"):
        decode_execution(data, Other, pr.Empty())
    with pytest.raises(SnapshotError):
        decode_execution("{not json", pr.PullRequest, pr.Empty())


async def test_durable_runtime_loads_from_its_snapshot_and_reads_only_the_tail(
    tmp_path: Path,
) -> None:
    db = tmp_path / "snap.db"
    key = "a test key of 32 bytes, not real"
    async with SqliteRuntime(
        pr.PullRequest, db, initial_state=pr.Empty(), snapshot_every=2, snapshot_key=key
    ) as runtime:
        instance = await runtime.create_instance("pr-1")
        await instance.deliver_signal(pr.create_pr_signal, pr.CreateRequest("abc"))
        snapshot = await runtime.store.load_snapshot(InstanceKey(pr.PullRequest.name, "pr-1"))
        assert snapshot is not None
        assert snapshot.sequence == 2
    reads: list[int] = []
    async with SqliteRuntime(
        pr.PullRequest, db, initial_state=pr.Empty(), snapshot_every=2, snapshot_key=key
    ) as fresh:
        original_read = fresh.store.read

        async def spy(k: InstanceKey, after: int = 0) -> list[JournalEntry]:
            reads.append(after)
            return await original_read(k, after)

        fresh.store.read = spy  # type: ignore[method-assign, assignment]
        again = await fresh.get_instance("pr-1")
        assert await again.query_state() == pr.Checked("abc", "<Some tests results>")
        # the journal from the snapshot's last event on (to check it is still there)
        assert reads == [1]
        await again.deliver_signal(pr.review_pr_signal, pr.ReviewRequest(approve=True))
        assert await again.query_state() == pr.Merged("abc", "<Some tests results>")


async def test_a_snapshot_that_no_longer_decodes_falls_back_to_full_replay(
    tmp_path: Path,
) -> None:
    db = tmp_path / "snap.db"
    async with SqliteRuntime(pr.PullRequest, db, initial_state=pr.Empty()) as runtime:
        instance = await runtime.create_instance("pr-1")
        await instance.deliver_signal(pr.create_pr_signal, pr.CreateRequest("abc"))
        key = InstanceKey(pr.PullRequest.name, "pr-1")
        await runtime.store.save_snapshot(key, Snapshot(2, '{"format": 1, "garbage": true}'))
    async with SqliteRuntime(pr.PullRequest, db, initial_state=pr.Empty()) as fresh:
        again = await fresh.get_instance("pr-1")
        assert await again.query_state() == pr.Checked("abc", "<Some tests results>")


def test_changed_step_logic_invalidates_snapshots() -> None:
    def build(factor: int) -> Any:
        # the same shape and names, different logic in the event handler
        if factor == 1:
            return pr.PullRequest.create_pr >> WIO.pure(pr.Initiated, lambda s: s)
        return pr.PullRequest.create_pr >> WIO.pure(pr.Initiated, lambda s: pr.Initiated("x"))

    assert fingerprint(build(1)) != fingerprint(build(2))
    assert fingerprint(build(1)) == fingerprint(build(1))
