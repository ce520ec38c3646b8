"""Journals and snapshots written by the flat layout (before the subpackages) still load and
replay: ``tests/fixtures/layout_v0.db`` was made by ``tests/fixtures/make_layout_v0.py``
with the code of that layout, and is read here with the code of today."""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from workflows4py import JournalEntry, SqliteRuntime, TimerReleased, TimerStarted
from workflows4py.examples import pull_request as pr
from workflows4py.examples import timers_inside as ti
from workflows4py.stores import InstanceKey
from workflows4py.testing import TestClock

FIXTURE = Path(__file__).parent / "fixtures" / "layout_v0.db"
KEY = "layout-v0 fixture key, not a secret"  # the key the fixture's snapshots are sealed with
ORDER = ti.Order("ORD-7", (ti.Parcel("P-1", days=2), ti.Parcel("P-2", days=5)))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    copy = tmp_path / "layout_v0.db"
    shutil.copyfile(FIXTURE, copy)
    return copy


def spy_reads(runtime: SqliteRuntime[object, object]) -> list[int]:
    reads: list[int] = []
    original = runtime.store.read

    async def read(key: InstanceKey, after: int = 0) -> list[JournalEntry]:
        reads.append(after)
        return await original(key, after)

    runtime.store.read = read  # type: ignore[method-assign]
    return reads


async def test_the_pull_requests_load_from_their_snapshots_and_go_on(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="workflows4py")
    async with SqliteRuntime(
        pr.PullRequest, db, initial_state=pr.Empty(), snapshot_every=2, snapshot_key=KEY
    ) as runtime:
        reads = spy_reads(runtime)  # type: ignore[arg-type]
        waiting = await runtime.get_instance("pr-1")
        assert await waiting.query_state() == pr.Checked("abc", "<Some tests results>")
        assert reads == [1]  # the snapshot at event 2 was used: only the tail was read
        merged = await runtime.get_instance("pr-2")
        assert await merged.query_state() == pr.Merged("def", "<Some tests results>")
        await waiting.deliver_signal(pr.review_pr_signal, pr.ReviewRequest(approve=False))
        assert isinstance(await waiting.query_state(), pr.Closed)
        assert [type(e).__name__ for e in await merged.get_events()] == [
            "Created",
            "PipelineFinished",
            "ReviewSubmitted",
        ]
    assert not [r for r in caplog.records if "snapshot" in r.getMessage().lower()]


async def test_the_order_loads_its_timers_from_the_snapshot_and_closes(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="workflows4py")
    clock = TestClock(ti.START + timedelta(days=2))
    async with SqliteRuntime(
        ti.Shipping, db, initial_state=ORDER, snapshot_every=2, snapshot_key=KEY, clock=clock
    ) as runtime:
        reads = spy_reads(runtime)  # type: ignore[arg-type]
        order = await runtime.get_instance("ord-7")
        assert (await order.query_state()).delivered == ("P-1",)
        assert reads == [5]  # the snapshot at event 6
        assert await order.next_wakeup() == datetime(2024, 3, 6, 9, 0, tzinfo=UTC)
        events = await order.get_events()
        assert sum(isinstance(e.event, TimerStarted) for e in events) == 2  # type: ignore[union-attr]
        assert sum(isinstance(e.event, TimerReleased) for e in events) == 1  # type: ignore[union-attr]
        clock.advance(timedelta(days=3))
        await runtime.run_due_wakeups()
        clock.advance(timedelta(days=14))
        await runtime.run_due_wakeups()
        final = await order.query_state()
        assert final.delivered == ("P-1", "P-2")
        assert final.closed
    assert not [r for r in caplog.records if "snapshot" in r.getMessage().lower()]


async def test_without_the_key_the_same_states_come_from_the_journals(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="workflows4py")
    async with SqliteRuntime(
        pr.PullRequest, db, initial_state=pr.Empty(), snapshot_key="another key entirely"
    ) as runtime:
        reads = spy_reads(runtime)  # type: ignore[arg-type]
        waiting = await runtime.get_instance("pr-1")
        assert await waiting.query_state() == pr.Checked("abc", "<Some tests results>")
        assert reads[-1] == 0  # then the whole journal
    assert any("pr-1" in r.getMessage() for r in caplog.records)
    async with SqliteRuntime(ti.Shipping, db, initial_state=ORDER) as shipping:
        order = await shipping.get_instance("ord-7")
        assert (await order.query_state()).delivered == ("P-1",)
