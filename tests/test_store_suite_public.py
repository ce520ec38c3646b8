"""The store conformance suites from a user's side: only public names, one subclass per store.

A store written here (a wrapper delegating to ``MemoryStore``) passes ``StoreConformance``
with one subclass; a deliberately broken one fails the test of the contract it breaks; and
the suites run in a pytest of their own (pytest-asyncio's strict mode, no conftest of this
repository), docs/stores.md's samples included.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_docs import python_blocks

from workflows4py.stores import (
    Claim,
    InstanceKey,
    InstanceRecord,
    JournalEntry,
    MemoryStore,
    NewEvent,
    Page,
    RegistryStatus,
    RegistryUpdate,
    SearchQuery,
    Snapshot,
    Store,
)
from workflows4py.testing import JournalConformance, StoreConformance, StoreFactory

ROOT = Path(__file__).resolve().parent.parent
KEY = InstanceKey("order", "o-1")
T0 = datetime(2030, 1, 2, tzinfo=UTC)


class Delegating:
    """A store of one's own: every method delegates to another store (here a MemoryStore)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    async def initialize(self) -> None:
        await self.inner.initialize()

    async def close(self) -> None:
        await self.inner.close()

    async def read(self, key: InstanceKey, after: int = 0) -> list[JournalEntry]:
        return await self.inner.read(key, after)

    async def append(self, key: InstanceKey, expected: int, events: Sequence[NewEvent]) -> None:
        await self.inner.append(key, expected, events)

    async def save_snapshot(
        self, key: InstanceKey, snapshot: Snapshot, *, replace: bool = False
    ) -> None:
        await self.inner.save_snapshot(key, snapshot, replace=replace)

    async def load_snapshot(self, key: InstanceKey) -> Snapshot | None:
        return await self.inner.load_snapshot(key)

    async def create(
        self, key: InstanceKey, now: datetime, next_wakeup: datetime | None = None
    ) -> bool:
        return await self.inner.create(key, now, next_wakeup)

    async def exists(self, key: InstanceKey) -> bool:
        return await self.inner.exists(key)

    async def get_record(self, key: InstanceKey) -> InstanceRecord | None:
        return await self.inner.get_record(key)

    async def update(
        self,
        key: InstanceKey,
        status: RegistryStatus,
        next_wakeup: datetime | None,
        tags: dict[str, str],
        now: datetime,
        *,
        error: str | None = None,
        keep_failures: bool = False,
    ) -> None:
        await self.inner.update(
            key, status, next_wakeup, tags, now, error=error, keep_failures=keep_failures
        )

    async def search(self, query: SearchQuery) -> Page:
        return await self.inner.search(query)

    async def acquire(
        self, key: InstanceKey, owner: str, ttl: float, wait: float, now: datetime
    ) -> None:
        await self.inner.acquire(key, owner, ttl, wait, now)

    async def renew(self, key: InstanceKey, owner: str, ttl: float, now: datetime) -> None:
        await self.inner.renew(key, owner, ttl, now)

    async def release(
        self, key: InstanceKey, owner: str, update: RegistryUpdate | None = None
    ) -> None:
        await self.inner.release(key, owner, update)

    async def create_leased(
        self,
        key: InstanceKey,
        owner: str,
        ttl: float,
        now: datetime,
        events: Sequence[NewEvent] = (),
    ) -> bool:
        return await self.inner.create_leased(key, owner, ttl, now, events)

    async def stale(
        self, now: datetime, limit: int, workflows: Sequence[str] | None = None
    ) -> list[InstanceKey]:
        return await self.inner.stale(now, limit, workflows)

    async def claim_due(
        self, now: datetime, limit: int, lease: float, workflows: Sequence[str] | None = None
    ) -> list[Claim]:
        return await self.inner.claim_due(now, limit, lease, workflows)

    async def next_wakeup(
        self, after: datetime, workflows: Sequence[str] | None = None
    ) -> datetime | None:
        return await self.inner.next_wakeup(after, workflows)

    async def wait_for_work(self, timeout: float) -> None:
        await self.inner.wait_for_work(timeout)

    async def wait_for_change(self, timeout: float) -> None:
        await self.inner.wait_for_change(timeout)

    async def purge(
        self,
        statuses: Sequence[RegistryStatus],
        before: datetime,
        now: datetime,
        limit: int,
        workflows: Sequence[str] | None = None,
    ) -> list[InstanceKey]:
        return await self.inner.purge(statuses, before, now, limit, workflows)


class IgnoresExpected(Delegating):
    """Broken: appends at the journal's end whatever ``expected`` says (no conflict, ever)."""

    async def append(self, key: InstanceKey, expected: int, events: Sequence[NewEvent]) -> None:
        await self.inner.append(key, len(await self.inner.read(key)), events)


def sharing(cls: Callable[[Store], Store]) -> StoreFactory:
    """Handles of ``cls`` over one MemoryStore's data."""
    memory = MemoryStore()
    return lambda: cls(memory.share())


class TestDelegatingStore(StoreConformance):
    @pytest.fixture
    def new_store(self) -> StoreFactory:
        return sharing(Delegating)


def test_the_suite_is_complete_and_split_by_capability() -> None:
    tests = {n for n in dir(StoreConformance) if n.startswith("test_")}
    assert len(tests) >= 61
    assert {n for n in dir(JournalConformance) if n.startswith("test_")} < tests
    assert "test_stale_expected_raises_sequence_conflict" in dir(JournalConformance)


async def test_a_store_that_ignores_expected_fails_the_conflict_test() -> None:
    suite = StoreConformance()
    store = IgnoresExpected(MemoryStore())
    await store.initialize()
    with pytest.raises(pytest.fail.Exception, match="DID NOT RAISE"):
        await suite.test_stale_expected_raises_sequence_conflict(store)
    fine = Delegating(MemoryStore())
    await fine.initialize()
    await suite.test_stale_expected_raises_sequence_conflict(fine)


def _pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest in ``folder``, configured by its own pytest.ini only (strict asyncio mode)."""
    (folder / "pytest.ini").write_text("[pytest]\nasyncio_mode = strict\n")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rf", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


_USER_TESTS = '''
from __future__ import annotations

import pytest

from workflows4py.stores import MemoryStore
from workflows4py.testing import JournalConformance, StoreFactory


class Broken(MemoryStore):
    """Appends at the end, whatever ``expected`` says."""

    async def append(self, key, expected, events):
        await super().append(key, len(await self.read(key)), events)


class TestBroken(JournalConformance):
    @pytest.fixture
    def new_store(self) -> StoreFactory:
        store = Broken()
        return lambda: store
'''


def test_a_broken_store_fails_in_a_pytest_of_its_own(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        'import pytest\n\npytest.register_assert_rewrite("workflows4py.testing")\n'
    )
    (tmp_path / "test_mine.py").write_text(_USER_TESTS)
    done = _pytest(tmp_path)
    failed = {
        line.split("::")[-1].split(" ")[0]
        for line in done.stdout.splitlines()
        if line.startswith("FAILED")
    }
    assert {
        "test_stale_expected_raises_sequence_conflict",
        "test_expected_beyond_the_end_raises_sequence_conflict",
        "test_concurrent_appends_exactly_one_wins",
        "test_concurrent_first_appends_exactly_one_wins",
    } <= failed, done.stdout + done.stderr
    assert "test_append_then_read_in_order" not in failed
    # the conftest made pytest rewrite the suite's asserts: the failure explains itself
    assert "where 12 = len(" in done.stdout, done.stdout


def test_without_the_conftest_the_asserts_are_plain(tmp_path: Path) -> None:
    (tmp_path / "test_mine.py").write_text(_USER_TESTS)
    done = _pytest(tmp_path, "-k", "test_concurrent_appends_exactly_one_wins")
    assert "1 failed" in done.stdout, done.stdout + done.stderr
    assert "where 12 = len(" not in done.stdout


def test_the_samples_of_docs_stores_md_pass_their_suites(tmp_path: Path) -> None:
    source = "".join(
        textwrap.dedent(block.code) + "\n" for block in python_blocks(ROOT / "docs" / "stores.md")
    )
    (tmp_path / "test_stores_md.py").write_text(source)
    done = _pytest(tmp_path)
    journal = sum(n.startswith("test_") for n in dir(JournalConformance))
    store = sum(n.startswith("test_") for n in dir(StoreConformance))
    assert f"{journal + store} passed" in done.stdout, done.stdout + done.stderr
    assert done.returncode == 0


def test_the_other_helpers_work_without_pytest() -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["pytest"] = None  # as if pytest were not installed
        from workflows4py.testing import TestClock
        TestClock()
        try:
            from workflows4py.testing import StoreConformance
        except ImportError as error:
            print(error)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert "pip install pytest pytest-asyncio" in done.stdout, done.stdout + done.stderr
