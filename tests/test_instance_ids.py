"""``iter_instance_ids`` and ``instance_ids``: every instance of a runtime's workflow, oldest
created first, read from the registry by keyset pages."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from workflows4py import InMemoryRuntime, SqliteRuntime
from workflows4py.examples import pull_request as pr
from workflows4py.testing import TestClock

T0 = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)
IDS = ["pr-5", "pr-1", "pr-4", "pr-2", "pr-3"]  # created in this order, a second apart


async def collect(runtime: InMemoryRuntime[pr.PRState, pr.PREvent], page_size: int) -> list[str]:
    return [instance_id async for instance_id in runtime.iter_instance_ids(page_size)]


async def test_ids_come_in_creation_order_whatever_the_updates() -> None:
    clock = TestClock(T0)
    runtime = InMemoryRuntime(pr.PullRequest, initial_state=pr.Empty(), clock=clock)
    for instance_id in IDS:
        await runtime.create_instance(instance_id)
        clock.advance(timedelta(seconds=1))
    first = await runtime.get_instance("pr-5")
    await first.deliver_signal(pr.create_pr_signal, pr.CreateRequest("abc"))  # updated last
    assert [r.key.instance_id for r in (await runtime.search()).records][-1] == "pr-5"
    for page_size in (1, 2, 5, 6, 500):
        assert await collect(runtime, page_size) == IDS
    assert await runtime.instance_ids() == IDS


async def test_an_instance_created_during_the_walk_comes_at_its_end() -> None:
    clock = TestClock(T0)
    runtime = InMemoryRuntime(pr.PullRequest, initial_state=pr.Empty(), clock=clock)
    for instance_id in IDS:
        await runtime.create_instance(instance_id)
        clock.advance(timedelta(seconds=1))
    seen: list[str] = []
    async for instance_id in runtime.iter_instance_ids(page_size=2):
        seen.append(instance_id)
        if instance_id == "pr-1":
            await runtime.create_instance("pr-0")
    assert seen == [*IDS, "pr-0"]


async def test_unreadable_rows_are_skipped_and_the_others_come_once(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    clock = TestClock(T0)
    ids = [f"pr-{n}" for n in range(7)]
    async with SqliteRuntime(
        pr.PullRequest, path, initial_state=pr.Empty(), clock=clock
    ) as runtime:
        for instance_id in ids:
            await runtime.create_instance(instance_id)
            clock.advance(timedelta(seconds=1))
        with sqlite3.connect(path) as conn:  # three in a row, and the last one, unreadable
            conn.execute(
                "UPDATE instances SET tags = 'not json' WHERE instance_id IN (?, ?, ?, ?)",
                ("pr-2", "pr-3", "pr-4", "pr-6"),
            )
        conn.close()
        for page_size in (1, 2, 3, 4, 7, 8):
            got = [i async for i in runtime.iter_instance_ids(page_size)]
            assert got == ["pr-0", "pr-1", "pr-5"], page_size
        assert await runtime.instance_ids() == ["pr-0", "pr-1", "pr-5"]


async def test_a_page_size_below_one_is_refused() -> None:
    runtime = InMemoryRuntime(pr.PullRequest, initial_state=pr.Empty())
    with pytest.raises(ValueError, match="page_size"):
        await collect(runtime, 0)
