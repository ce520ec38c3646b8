# ruff: noqa: S101  (a test suite: pytest reports its asserts)
"""The store conformance suites: the ``Store`` contract as pytest tests, one suite per capability.

A store of your own is checked by one subclass that overrides the ``new_store`` fixture: a
factory of *unopened* stores that all reach the same, fresh data (as several processes open
one database). The suite opens, initializes and closes them itself, so every store is held
to the same contract, errors included. Needs pytest and pytest-asyncio; the tests are
marked ``asyncio`` and the async fixtures are pytest-asyncio's, so they run in its strict
and auto modes alike.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest
import pytest_asyncio

from workflows4py.stores import (
    Claim,
    InstanceKey,
    JournalStore,
    LeaseLost,
    LeaseStore,
    LeaseTimeout,
    NewEvent,
    RegistryStatus,
    RegistryStore,
    RegistryUpdate,
    SearchQuery,
    SearchSort,
    SequenceConflict,
    Snapshot,
    SnapshotStore,
    Store,
    StoreError,
    StoreLifecycle,
    WakeupStore,
)

from ._store_data import KEY, OTHER, T0, at, event, settle

__all__ = [
    "JournalConformance",
    "LeaseConformance",
    "RegistryConformance",
    "RetentionConformance",
    "SnapshotConformance",
    "StoreConformance",
    "StoreFactory",
    "WakeupConformance",
    "at",
    "event",
    "settle",
]

StoreFactory = Callable[[], Store]
"""What ``new_store`` returns for the whole suite: a new, unopened handle on the same data."""

_S = TypeVar("_S", bound=StoreLifecycle)
_Open = Callable[[], Awaitable[_S]]
_C = TypeVar("_C", bound=type)


async def _woken_after(waiter: WakeupStore, change: Callable[[], Awaitable[object]]) -> float:
    """Seconds from the start of ``change`` (made by another handle while ``waiter`` is in
    ``wait_for_change(5)``) until that wait returns. An early return (a hint) is followed by
    another wait, so only a wake-up after the change counts."""
    changing = False

    async def wait() -> float:
        while True:
            await waiter.wait_for_change(5)
            if changing:
                return time.monotonic()

    async def make() -> float:
        nonlocal changing
        await asyncio.sleep(0.1)  # the waiter is waiting
        changing = True
        start = time.monotonic()
        await change()
        return start

    woken, started = await asyncio.gather(wait(), make())
    return woken - started


def _async_tests(cls: _C) -> _C:
    """Mark the class's own coroutine tests ``asyncio`` (pytest-asyncio's strict mode needs it;
    a class-wide mark would also reach a subclass's synchronous tests)."""
    for name, value in list(vars(cls).items()):
        if name.startswith("test_") and inspect.iscoroutinefunction(value):
            setattr(cls, name, pytest.mark.asyncio(value))
    return cls


class _Suite:
    """The fixtures every suite shares; a subclass overrides ``new_store``."""

    @pytest.fixture
    def new_store(self) -> Callable[[], StoreLifecycle]:
        """Unopened stores on one fresh backend; each call is a new handle on the same data."""
        raise NotImplementedError("the test class overrides the new_store fixture")

    @pytest_asyncio.fixture
    async def open_store(
        self, new_store: Callable[[], StoreLifecycle]
    ) -> AsyncIterator[_Open[StoreLifecycle]]:
        """Open (and initialize) a new handle; every handle opened is closed after the test."""
        opened: list[StoreLifecycle] = []

        async def open_() -> StoreLifecycle:
            store = new_store()
            opened.append(store)
            await store.initialize()
            return store

        yield open_
        for store in reversed(opened):
            await store.close()

    @pytest_asyncio.fixture
    async def store(self, open_store: _Open[StoreLifecycle]) -> StoreLifecycle:
        """One opened handle."""
        return await open_store()


@_async_tests
class JournalConformance(_Suite):
    """The ``JournalStore`` contract: ``read`` and ``append``, under concurrent writers.

    Subclass it and override the ``new_store`` fixture (see the module's docstring).
    """

    async def test_read_of_unknown_instance_is_empty(self, store: JournalStore) -> None:
        assert await store.read(KEY) == []

    async def test_append_then_read_in_order(self, store: JournalStore) -> None:
        await store.append(KEY, 0, [event(1, at(1)), event(2, at(2), "B"), event(3, at(3))])
        await store.append(KEY, 3, [event(4, at(4)), event(5, at(5))])
        entries = await store.read(KEY)
        assert [e.sequence for e in entries] == [1, 2, 3, 4, 5]
        assert [e.type for e in entries] == ["Ev", "B", "Ev", "Ev", "Ev"]
        assert [json.loads(e.data)["n"] for e in entries] == [1, 2, 3, 4, 5]
        assert [e.recorded_at for e in entries] == [at(i) for i in range(1, 6)]
        assert [e.sequence for e in await store.read(KEY, after=2)] == [3, 4, 5]
        assert await store.read(KEY, after=5) == []
        assert await store.read(OTHER) == []

    async def test_payloads_round_trip_byte_for_byte(self, store: JournalStore) -> None:
        data = '{"z": 1,  "a": [1.0, 1e3, "\\u00e9 é \\u0000 \\"q\\""], "a": null}'
        await store.append(KEY, 0, [NewEvent("Type.With:odd-chars", data, T0)])
        (entry,) = await store.read(KEY)
        assert (entry.type, entry.data) == ("Type.With:odd-chars", data)

    async def test_empty_append_is_a_no_op(self, store: JournalStore) -> None:
        await store.append(KEY, 0, [])
        await store.append(KEY, 7, [])
        assert await store.read(KEY) == []

    async def test_stale_expected_raises_sequence_conflict(self, store: JournalStore) -> None:
        await store.append(KEY, 0, [event(1), event(2)])
        for expected in (0, 1):
            with pytest.raises(SequenceConflict) as info:
                await store.append(KEY, expected, [event(9), event(10)])
            assert (info.value.key, info.value.expected, info.value.actual) == (KEY, expected, 2)
        assert [e.sequence for e in await store.read(KEY)] == [1, 2]
        assert isinstance(info.value, StoreError)

    async def test_expected_beyond_the_end_raises_sequence_conflict(
        self, store: JournalStore
    ) -> None:
        with pytest.raises(SequenceConflict) as info:
            await store.append(KEY, 3, [event(4)])
        assert info.value.actual == 0
        await store.append(KEY, 0, [event(1)])
        with pytest.raises(SequenceConflict):
            await store.append(KEY, 2, [event(3), event(4)])
        assert [e.sequence for e in await store.read(KEY)] == [1]

    async def test_concurrent_appends_exactly_one_wins(
        self, open_store: _Open[JournalStore]
    ) -> None:
        stores = [await open_store() for _ in range(3)]
        await stores[0].append(KEY, 0, [event(1), event(2)])
        attempts = [
            stores[n % len(stores)].append(KEY, 2, [event(100 + n), event(200 + n)])
            for n in range(12)
        ]
        results = await asyncio.gather(*attempts, return_exceptions=True)
        winners = [n for n, r in enumerate(results) if r is None]
        assert len(winners) == 1, results
        assert all(isinstance(r, SequenceConflict) for r in results if r is not None), results
        entries = await stores[1].read(KEY)
        assert [e.sequence for e in entries] == [1, 2, 3, 4]
        assert [json.loads(e.data)["n"] for e in entries[2:]] == [
            100 + winners[0],
            200 + winners[0],
        ]

    async def test_concurrent_first_appends_exactly_one_wins(
        self, open_store: _Open[JournalStore]
    ) -> None:
        stores = [await open_store() for _ in range(3)]
        results = await asyncio.gather(
            *(stores[n % 3].append(KEY, 0, [event(n)]) for n in range(9)), return_exceptions=True
        )
        assert sum(r is None for r in results) == 1, results
        assert all(isinstance(r, SequenceConflict) for r in results if r is not None), results
        assert [e.sequence for e in await stores[2].read(KEY)] == [1]

    async def test_a_closed_store_refuses_to_read_and_append(
        self, open_store: _Open[JournalStore]
    ) -> None:
        store = await open_store()
        await store.append(KEY, 0, [event(1)])
        await store.close()
        with pytest.raises(StoreError):
            await store.read(KEY)
        with pytest.raises(StoreError):
            await store.append(KEY, 1, [event(2)])
        other = await open_store()  # another handle still reaches the data
        assert [e.sequence for e in await other.read(KEY)] == [1]


@_async_tests
class SnapshotConformance(_Suite):
    """The ``SnapshotStore`` contract: the latest snapshot is kept, unless replaced.

    Subclass it and override the ``new_store`` fixture (see the module's docstring).
    """

    async def test_snapshots_keep_the_latest(self, store: SnapshotStore) -> None:
        assert await store.load_snapshot(KEY) is None
        await store.save_snapshot(KEY, Snapshot(3, '{"s": 3}'))
        assert await store.load_snapshot(KEY) == Snapshot(3, '{"s": 3}')
        await store.save_snapshot(KEY, Snapshot(5, '{"s": 5}'))
        assert await store.load_snapshot(KEY) == Snapshot(5, '{"s": 5}')
        await store.save_snapshot(KEY, Snapshot(5, '{"s": "5 again"}'))
        assert await store.load_snapshot(KEY) == Snapshot(5, '{"s": "5 again"}')
        await store.save_snapshot(KEY, Snapshot(4, '{"s": 4}'))  # older: ignored
        assert await store.load_snapshot(KEY) == Snapshot(5, '{"s": "5 again"}')
        assert await store.load_snapshot(OTHER) is None

    async def test_replace_keeps_an_older_snapshot(self, store: SnapshotStore) -> None:
        await store.save_snapshot(KEY, Snapshot(5, '{"s": 5}'))
        await store.save_snapshot(KEY, Snapshot(2, '{"s": 2}'), replace=True)
        assert await store.load_snapshot(KEY) == Snapshot(2, '{"s": 2}')
        await store.save_snapshot(KEY, Snapshot(1, '{"s": 1}'))  # older than the kept one
        assert await store.load_snapshot(KEY) == Snapshot(2, '{"s": 2}')
        await store.save_snapshot(KEY, Snapshot(3, '{"s": 3}'))
        assert await store.load_snapshot(KEY) == Snapshot(3, '{"s": 3}')


# Six rows whose creation and update orders differ, with ties on both instants broken by
# (workflow, instance_id) in code point order: (workflow, id, created, updated, tags).
_SORTED_ROWS: tuple[tuple[str, str, int, int, dict[str, str]], ...] = (
    ("w", "a", 30, 100, {"team": "x"}),
    ("w", "b", 10, 300, {}),
    ("v", "c", 20, 100, {}),
    ("w", "B", 20, 200, {"team": "x"}),
    ("w", "é", 20, 100, {"team": "x"}),
    ("w", "_", 40, 50, {"team": "x"}),
)
_BY_CREATION = ["b", "c", "B", "é", "a", "_"]
_BY_UPDATE = ["_", "c", "a", "é", "B", "b"]


@_async_tests
class RegistryConformance(_Suite):
    """The ``RegistryStore`` contract: rows, updates, failures, search; and the lifecycle
    (``initialize`` idempotent and concurrent, a closed store unusable).

    Subclass it and override the ``new_store`` fixture (see the module's docstring).
    """

    async def test_initialize_is_idempotent_and_concurrent(
        self, new_store: Callable[[], RegistryStore], open_store: _Open[RegistryStore]
    ) -> None:
        first = await open_store()
        await first.initialize()
        others = [await open_store() for _ in range(3)]
        await asyncio.gather(*(s.initialize() for s in [first, *others]))
        assert await first.create(KEY, T0)
        assert await others[-1].exists(KEY)

    async def test_concurrent_first_initialize(
        self, new_store: Callable[[], RegistryStore]
    ) -> None:
        stores = [new_store() for _ in range(4)]
        try:
            await asyncio.gather(*(s.initialize() for s in stores))
            assert await stores[0].create(KEY, T0)
            assert await stores[3].exists(KEY)
        finally:
            for s in stores:
                await s.close()

    async def test_closed_store_is_unusable(self, open_store: _Open[RegistryStore]) -> None:
        store = await open_store()
        await store.close()
        await store.close()  # closing twice is harmless
        with pytest.raises(StoreError):
            await store.exists(KEY)

    async def test_create_registers_awaiting_once(self, store: RegistryStore) -> None:
        assert not await store.exists(KEY)
        assert await store.get_record(KEY) is None
        assert await store.create(KEY, T0) is True
        assert await store.create(KEY, at(60)) is False
        assert await store.exists(KEY)
        assert not await store.exists(OTHER)
        record = await store.get_record(KEY)
        assert record is not None
        assert record.key == KEY
        assert record.status == "awaiting"
        assert record.created_at == T0
        assert record.updated_at == T0
        assert record.next_wakeup is None
        assert record.tags == {}

    async def test_keys_are_workflow_and_instance_id(self, store: RegistryStore) -> None:
        assert await store.create(InstanceKey("a", "x"), T0)
        assert await store.create(InstanceKey("b", "x"), T0)
        assert await store.create(InstanceKey("a", "y"), T0)
        assert not await store.exists(InstanceKey("b", "y"))

    async def test_update_sets_status_wakeup_tags(self, store: RegistryStore) -> None:
        await store.create(KEY, T0)
        await store.update(KEY, "running", at(100), {"customer": "c-1", "region": "eu"}, at(5))
        record = await store.get_record(KEY)
        assert record is not None
        assert (record.status, record.next_wakeup, record.tags) == (
            "running",
            at(100),
            {"customer": "c-1", "region": "eu"},
        )
        assert (record.created_at, record.updated_at) == (T0, at(5))
        await store.update(KEY, "finished", None, {"customer": "c-2"}, at(6))
        record = await store.get_record(KEY)
        assert record is not None
        assert (record.status, record.next_wakeup, record.tags) == (
            "finished",
            None,
            {"customer": "c-2"},
        )
        assert (record.created_at, record.updated_at) == (T0, at(6))

    async def test_errors_are_counted_until_an_update_without_one(
        self, store: RegistryStore
    ) -> None:
        await store.create(KEY, T0)
        record = await store.get_record(KEY)
        assert record is not None
        assert (record.failures, record.last_error) == (0, None)
        await store.update(KEY, "awaiting", at(60), {}, at(1), error="ConnectionError: down")
        await store.update(KEY, "awaiting", at(120), {}, at(2), error="TimeoutError: slow")
        record = await store.get_record(KEY)
        assert record is not None
        assert (record.failures, record.last_error) == (2, "TimeoutError: slow")
        assert [r.key for r in (await store.search(SearchQuery(failing=True))).records] == [KEY]
        assert (await store.search(SearchQuery(failing=False))).total == 0
        await store.update(KEY, "running", None, {}, at(3), keep_failures=True)
        record = await store.get_record(KEY)
        assert record is not None
        assert (record.status, record.failures, record.last_error) == (
            "running",
            2,
            "TimeoutError: slow",
        )
        await store.update(KEY, "finished", None, {}, at(3))
        record = await store.get_record(KEY)
        assert record is not None
        assert (record.failures, record.last_error) == (0, None)
        assert (await store.search(SearchQuery(failing=True))).total == 0
        assert [r.key for r in (await store.search(SearchQuery(failing=False))).records] == [KEY]

    async def test_a_parked_row_is_found_by_status_and_reset_by_an_update_without_error(
        self, store: RegistryStore
    ) -> None:
        await store.create(KEY, T0)
        await store.create(OTHER, T0)
        await store.update(KEY, "awaiting", at(60), {"k": "v"}, at(1), error="ValueError: 1")
        await store.update(KEY, "parked", None, {"k": "v"}, at(2), error="ValueError: 2")
        record = await store.get_record(KEY)
        assert record is not None
        assert (record.status, record.next_wakeup, record.tags) == ("parked", None, {"k": "v"})
        assert (record.failures, record.last_error) == (2, "ValueError: 2")
        assert record.updated_at == at(2)
        parked = await store.search(SearchQuery(status=["parked"]))
        assert [r.key for r in parked.records] == [KEY]
        assert (await store.search(SearchQuery(status=["awaiting", "running"]))).total == 1
        found = await store.search(SearchQuery(status=["parked"], failing=True, tags={"k": "v"}))
        assert [r.key for r in found.records] == [KEY]
        # resumed: an update without an error resets the count
        await store.update(KEY, "awaiting", at(3), {"k": "v"}, at(3))
        record = await store.get_record(KEY)
        assert record is not None
        assert (record.status, record.next_wakeup) == ("awaiting", at(3))
        assert (record.failures, record.last_error) == (0, None)
        assert (await store.search(SearchQuery(status=["parked"]))).total == 0

    async def test_update_of_unregistered_instance_fails(self, store: RegistryStore) -> None:
        with pytest.raises(StoreError):
            await store.update(KEY, "running", None, {}, T0)
        assert not await store.exists(KEY)

    async def test_naive_instants_are_refused(self, store: RegistryStore) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            await store.create(KEY, datetime(2030, 1, 1))

    async def _populate(self, store: RegistryStore) -> dict[str, InstanceKey]:
        """Five instances of two workflows; updated_at increases in table order."""
        rows: list[tuple[str, str, int, RegistryStatus, int | None, dict[str, str]]] = [
            # id, workflow, created, status, wakeup, tags
            ("a", "order", 0, "running", None, {"customer": "c1", "region": "eu"}),
            ("b", "order", 10, "awaiting", 100, {"customer": "c2", "region": "eu"}),
            ("c", "invoice", 20, "awaiting", 50, {"customer": "c1"}),
            ("d", "order", 30, "finished", None, {"customer": "c1", "region": "us"}),
            ("e", "invoice", 40, "failed", None, {}),
        ]
        keys = {}
        for n, (iid, wf, created, status, wakeup, tags) in enumerate(rows):
            key = keys[iid] = InstanceKey(wf, iid)
            await store.create(key, at(created))
            await store.update(
                key, status, None if wakeup is None else at(wakeup), tags, at(1000 + n)
            )
        return keys

    async def _ids(self, store: RegistryStore, **criteria: object) -> list[str]:
        page = await store.search(SearchQuery(**criteria))  # type: ignore[arg-type]
        assert page.total == len(page.records) or "limit" in criteria or "offset" in criteria
        return [r.key.instance_id for r in page.records]

    async def test_search_without_criteria_lists_everything_in_order(
        self, store: RegistryStore
    ) -> None:
        await self._populate(store)
        page = await store.search(SearchQuery())
        assert page.total == 5
        assert [r.key.instance_id for r in page.records] == ["a", "b", "c", "d", "e"]
        b = page.records[1]
        assert (b.key, b.status, b.created_at, b.updated_at, b.next_wakeup, b.tags) == (
            InstanceKey("order", "b"),
            "awaiting",
            at(10),
            at(1001),
            at(100),
            {"customer": "c2", "region": "eu"},
        )
        assert await self._ids(store, descending=True) == ["e", "d", "c", "b", "a"]

    async def test_search_by_workflow(self, store: RegistryStore) -> None:
        await self._populate(store)
        assert await self._ids(store, workflow="order") == ["a", "b", "d"]
        assert await self._ids(store, workflow="invoice") == ["c", "e"]
        assert await self._ids(store, workflow="nothing") == []

    async def test_search_by_status(self, store: RegistryStore) -> None:
        await self._populate(store)
        assert await self._ids(store, status=["awaiting"]) == ["b", "c"]
        assert await self._ids(store, status=("finished", "failed")) == ["d", "e"]
        assert await self._ids(store, status=[]) == []

    async def test_search_by_creation_time(self, store: RegistryStore) -> None:
        await self._populate(store)
        assert await self._ids(store, created_from=at(10)) == ["b", "c", "d", "e"]
        assert await self._ids(store, created_to=at(10)) == ["a"]
        assert await self._ids(store, created_from=at(10), created_to=at(30)) == ["b", "c"]

    async def test_search_by_update_time(self, store: RegistryStore) -> None:
        await self._populate(store)
        assert await self._ids(store, updated_from=at(1003)) == ["d", "e"]
        assert await self._ids(store, updated_to=at(1001)) == ["a"]
        assert await self._ids(store, updated_from=at(1001), updated_to=at(1003)) == ["b", "c"]

    async def test_search_by_wakeup(self, store: RegistryStore) -> None:
        await self._populate(store)
        assert await self._ids(store, wakeup_before=at(100)) == ["c"]
        assert await self._ids(store, wakeup_before=at(100.000001)) == ["b", "c"]
        assert await self._ids(store, wakeup_before=at(50)) == []

    async def test_search_by_tags(self, store: RegistryStore) -> None:
        await self._populate(store)
        assert await self._ids(store, tags={"customer": "c1"}) == ["a", "c", "d"]
        assert await self._ids(store, tags={"customer": "c1", "region": "eu"}) == ["a"]
        assert await self._ids(store, tags={"region": "e"}) == []
        assert await self._ids(store, tags={"missing": "c1"}) == []

    async def test_search_combines_criteria(self, store: RegistryStore) -> None:
        await self._populate(store)
        criteria = {
            "workflow": "order",
            "status": ["running", "finished", "awaiting"],
            "created_to": at(30.5),
            "tags": {"customer": "c1"},
            "descending": True,
        }
        assert await self._ids(store, **criteria) == ["d", "a"]
        assert await self._ids(store, **criteria, updated_to=at(1003)) == ["a"]

    async def test_search_pages_and_counts(self, store: RegistryStore) -> None:
        await self._populate(store)
        page = await store.search(SearchQuery(limit=2))
        assert ([r.key.instance_id for r in page.records], page.total) == (["a", "b"], 5)
        page = await store.search(SearchQuery(limit=2, offset=2))
        assert ([r.key.instance_id for r in page.records], page.total) == (["c", "d"], 5)
        page = await store.search(SearchQuery(limit=2, offset=4, descending=True))
        assert ([r.key.instance_id for r in page.records], page.total) == (["a"], 5)
        page = await store.search(SearchQuery(limit=10, offset=50))
        assert (page.records, page.total) == ([], 5)
        page = await store.search(SearchQuery(workflow="order", limit=0))
        assert (page.records, page.total) == ([], 3)
        page = await store.search(SearchQuery(workflow="nothing"))
        assert (page.records, page.total) == ([], 0)

    async def test_search_breaks_ties_by_key_in_code_point_order(
        self, store: RegistryStore
    ) -> None:
        ids = ["b", "B", "a", "_x", "é", "a-b", "aB", "Z9", "a b", "~"]
        for iid in ids:
            await store.create(InstanceKey("w", iid), T0)
        await store.create(InstanceKey("V", "z"), T0)
        page = await store.search(SearchQuery())
        expected = [("V", "z"), *(("w", iid) for iid in sorted(ids))]
        assert [(r.key.workflow, r.key.instance_id) for r in page.records] == expected
        page = await store.search(SearchQuery(descending=True))
        assert [(r.key.workflow, r.key.instance_id) for r in page.records] == expected[::-1]

    async def test_search_rejects_negative_paging(self, store: RegistryStore) -> None:
        with pytest.raises(ValueError, match="offset"):
            await store.search(SearchQuery(offset=-1))

    async def _populate_sorted(self, store: RegistryStore) -> None:
        for wf, iid, created, updated, tags in _SORTED_ROWS:
            key = InstanceKey(wf, iid)
            await store.create(key, at(created))
            status: RegistryStatus = "finished" if iid == "b" else "awaiting"
            await store.update(key, status, None, tags, at(updated))

    async def _walk(self, store: RegistryStore, query: SearchQuery) -> list[str]:
        """Every match of ``query``, page by page by keyset (``after`` = the cursor of the
        last record of the previous page); each page's total must be the number of matches."""
        full = await store.search(replace(query, limit=1000))
        ids: list[str] = []
        page = await store.search(query)
        while page.records:
            assert page.total == full.total
            assert len(page.records) <= query.limit
            ids += [r.key.instance_id for r in page.records]
            page = await store.search(replace(query, after=query.cursor(page.records[-1])))
        assert page.total == full.total
        assert ids == [r.key.instance_id for r in full.records]
        return ids

    async def test_search_sorts_by_update_or_creation(self, store: RegistryStore) -> None:
        await self._populate_sorted(store)
        by_update = await self._ids(store)
        assert by_update == await self._ids(store, sort="updated") == _BY_UPDATE
        assert await self._ids(store, sort="created") == _BY_CREATION
        assert await self._ids(store, sort="created", descending=True) == _BY_CREATION[::-1]
        assert await self._ids(store, sort="updated", descending=True) == _BY_UPDATE[::-1]
        assert await self._ids(store, sort="created", tags={"team": "x"}) == ["B", "é", "a", "_"]
        page = await store.search(SearchQuery(sort="created", limit=2, offset=1))
        assert ([r.key.instance_id for r in page.records], page.total) == (["c", "B"], 6)

    async def test_keyset_pages_walk_every_row_once_in_order(self, store: RegistryStore) -> None:
        await self._populate_sorted(store)
        orders: dict[SearchSort, list[str]] = {"created": _BY_CREATION, "updated": _BY_UPDATE}
        for sort, expected in orders.items():
            for descending in (False, True):
                for limit in (1, 2, 4):
                    query = SearchQuery(sort=sort, descending=descending, limit=limit)
                    walked = await self._walk(store, query)
                    assert walked == (expected[::-1] if descending else expected), query

    async def test_keyset_breaks_ties_on_the_instant_by_workflow_then_id(
        self, store: RegistryStore
    ) -> None:
        await self._populate_sorted(store)

        async def after(key: tuple[float, str, str], descending: bool = False) -> list[str]:
            cursor = (at(key[0]), key[1], key[2])
            query = SearchQuery(sort="created", after=cursor, descending=descending)
            return [r.key.instance_id for r in (await store.search(query)).records]

        # created at 20: (v, c), (w, B), (w, é); the cursor need not be a row's
        assert await after((20, "v", "c")) == ["B", "é", "a", "_"]
        assert await after((20, "v", "zzz")) == ["B", "é", "a", "_"]
        assert await after((20, "w", "C")) == ["é", "a", "_"]
        assert await after((20, "w", "é")) == ["a", "_"]
        assert await after((20, "w", "é"), descending=True) == ["B", "c", "b"]
        assert await after((20, "a", ""), descending=True) == ["b"]
        assert await after((19, "z", "z")) == ["c", "B", "é", "a", "_"]
        assert await after((40, "w", "_")) == []

    async def test_keyset_combines_with_criteria_offset_and_counts_every_match(
        self, store: RegistryStore
    ) -> None:
        await self._populate_sorted(store)
        team = SearchQuery(sort="created", tags={"team": "x"}, status=["awaiting"], limit=1)
        assert await self._walk(store, team) == ["B", "é", "a", "_"]
        assert await self._walk(store, replace(team, descending=True)) == ["_", "a", "é", "B"]
        assert await self._walk(store, replace(team, sort="updated")) == ["_", "a", "é", "B"]
        first = (await store.search(team)).records[0]
        page = await store.search(replace(team, after=team.cursor(first), offset=1, limit=5))
        assert ([r.key.instance_id for r in page.records], page.total) == (["a", "_"], 4)
        in_w = SearchQuery(workflow="w", sort="created", limit=2)
        assert await self._walk(store, in_w) == ["b", "B", "é", "a", "_"]
        page = await store.search(replace(in_w, after=(at(20), "v", "c"), limit=0))
        assert (page.records, page.total) == ([], 5)

    async def test_count_limit_caps_the_total_and_says_when_there_are_more(
        self, store: RegistryStore
    ) -> None:
        await self._populate_sorted(store)  # six rows, five awaiting

        async def counted(**criteria: Any) -> tuple[list[str], int, bool]:
            page = await store.search(SearchQuery(sort="created", limit=2, **criteria))
            return [r.key.instance_id for r in page.records], page.total, page.exact

        assert await counted() == (["b", "c"], 6, True)
        assert await counted(count_limit=6) == (["b", "c"], 6, True)
        assert await counted(count_limit=5) == (["b", "c"], 5, False)
        assert await counted(count_limit=0) == (["b", "c"], 0, False)
        assert await counted(status=["awaiting"], count_limit=5) == (["c", "B"], 5, True)
        assert await counted(status=["finished"], count_limit=0) == (["b"], 0, False)
        assert await counted(workflow="nobody", count_limit=0) == ([], 0, True)
        with pytest.raises(ValueError, match="count_limit"):
            await store.search(SearchQuery(count_limit=-1))

    async def test_cursor_is_the_sort_key_of_a_record(self, store: RegistryStore) -> None:
        await store.create(KEY, at(1))
        await store.update(KEY, "awaiting", None, {}, at(2))
        (record,) = (await store.search(SearchQuery())).records
        assert SearchQuery().cursor(record) == (at(2), KEY.workflow, KEY.instance_id)
        created = SearchQuery(sort="created", descending=True)
        assert created.cursor(record) == (at(1), KEY.workflow, KEY.instance_id)

    async def test_search_rejects_a_bad_sort_and_a_bad_after(self, store: RegistryStore) -> None:
        with pytest.raises(ValueError, match="sort"):
            await store.search(SearchQuery(sort="name"))  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="timezone-aware"):
            await store.search(SearchQuery(after=(datetime(2030, 1, 1), "w", "a")))
        with pytest.raises(ValueError, match="after"):
            await store.search(SearchQuery(after=(T0, "w")))  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="after"):
            await store.search(SearchQuery(after=("2030-01-01", "w", "a")))  # type: ignore[arg-type]


@_async_tests
class LeaseConformance(_Suite):
    """The ``LeaseStore`` contract: exclusive leases that lapse, renew and release, leased
    creation, stale instances. The store must be a ``RegistryStore`` too.

    Subclass it and override the ``new_store`` fixture (see the module's docstring).
    """

    async def test_create_leased_registers_running_and_takes_the_lease(
        self, store: LeaseStore
    ) -> None:
        assert await store.create_leased(KEY, "a", 10, T0)
        record = await store.get_record(KEY)
        assert record is not None
        assert (record.status, record.created_at, record.next_wakeup) == ("running", T0, None)
        with pytest.raises(LeaseTimeout):
            await store.acquire(KEY, "b", 10, 0, at(1))
        assert await store.stale(at(1), 10) == []
        # the process died: once the lease lapses, the instance is stale
        assert await store.stale(at(10), 10) == [KEY]
        assert not await store.create(KEY, at(11))

    async def test_create_leased_of_a_registered_instance_changes_nothing(
        self, store: LeaseStore
    ) -> None:
        await store.create(KEY, T0)
        assert not await store.create_leased(KEY, "a", 10, at(1))
        record = await store.get_record(KEY)
        assert record is not None
        assert (record.status, record.created_at) == ("awaiting", T0)
        await store.acquire(KEY, "b", 10, 0, at(2))  # a did not get the lease

    async def test_create_leased_refuses_a_lease_held_by_another(self, store: LeaseStore) -> None:
        await store.acquire(KEY, "b", 10, 0, T0)
        assert not await store.create_leased(KEY, "a", 10, at(1))
        assert not await store.exists(KEY)
        assert await store.create_leased(KEY, "a", 10, at(10))  # b's lease lapsed

    async def test_concurrent_create_leased_exactly_one_wins(
        self, open_store: _Open[LeaseStore]
    ) -> None:
        stores = [await open_store() for _ in range(3)]
        results = await asyncio.gather(
            *(stores[n % 3].create_leased(KEY, f"owner-{n}", 10, T0) for n in range(9))
        )
        assert sum(results) == 1
        winner = f"owner-{results.index(True)}"
        for n in range(9):
            if f"owner-{n}" != winner:
                with pytest.raises(LeaseTimeout):
                    await stores[0].acquire(KEY, f"owner-{n}", 10, 0, at(1))
        await stores[1].release(KEY, winner)
        await stores[2].acquire(KEY, "later", 10, 0, at(1))

    async def test_lease_is_exclusive(self, store: LeaseStore) -> None:
        await store.acquire(KEY, "a", 30, 0, T0)
        with pytest.raises(LeaseTimeout):
            await store.acquire(KEY, "b", 30, 0, at(1))
        await store.acquire(OTHER, "b", 30, 0, at(1))  # other instances are not affected

    async def test_acquire_waits_then_times_out(self, store: LeaseStore) -> None:
        await store.acquire(KEY, "a", 30, 0, T0)
        start = time.monotonic()
        with pytest.raises(LeaseTimeout):
            await store.acquire(KEY, "b", 30, 0.3, T0)
        assert 0.29 <= time.monotonic() - start < 3

    async def test_waiting_acquire_gets_a_released_lease(
        self, open_store: _Open[LeaseStore]
    ) -> None:
        one, two = await open_store(), await open_store()
        await one.acquire(KEY, "a", 30, 0, T0)

        async def release_soon() -> None:
            await asyncio.sleep(0.1)
            await one.release(KEY, "a")

        start = time.monotonic()
        await asyncio.gather(two.acquire(KEY, "b", 30, 10, T0), release_soon())
        assert time.monotonic() - start < 3
        with pytest.raises(LeaseTimeout):
            await one.acquire(KEY, "a", 30, 0, at(1))

    async def test_waiting_acquire_gets_a_lease_that_lapses(self, store: LeaseStore) -> None:
        await store.acquire(KEY, "a", 0.3, 0, T0)
        start = time.monotonic()
        await store.acquire(KEY, "b", 30, 10, T0)  # time while waiting is T0 + elapsed
        assert 0.25 <= time.monotonic() - start < 3

    async def test_lapsed_lease_goes_to_another_owner(self, store: LeaseStore) -> None:
        await store.acquire(KEY, "a", 10, 0, T0)
        with pytest.raises(LeaseTimeout):
            await store.acquire(KEY, "b", 10, 0, at(9.999))
        await store.acquire(KEY, "b", 10, 0, at(10))  # a lease lapses at its end instant
        with pytest.raises(LeaseLost):
            await store.renew(KEY, "a", 10, at(11))
        await store.release(KEY, "a")  # no longer a's: harmless, b keeps it
        with pytest.raises(LeaseTimeout):
            await store.acquire(KEY, "a", 10, 0, at(12))

    async def test_owner_reacquires_and_extends(self, store: LeaseStore) -> None:
        await store.acquire(KEY, "a", 10, 0, T0)
        await store.acquire(KEY, "a", 10, 0, at(5))
        with pytest.raises(LeaseTimeout):
            await store.acquire(KEY, "b", 10, 0, at(12))
        await store.acquire(KEY, "b", 10, 0, at(15))

    async def test_renew_extends_the_lease(self, store: LeaseStore) -> None:
        await store.acquire(KEY, "a", 10, 0, T0)
        await store.renew(KEY, "a", 10, at(8))
        with pytest.raises(LeaseTimeout):
            await store.acquire(KEY, "b", 10, 0, at(17))
        await store.acquire(KEY, "b", 10, 0, at(18))

    async def test_renew_without_the_lease_raises_lease_lost(self, store: LeaseStore) -> None:
        with pytest.raises(LeaseLost):
            await store.renew(KEY, "a", 10, T0)
        await store.acquire(KEY, "a", 10, 0, T0)
        with pytest.raises(LeaseLost):
            await store.renew(KEY, "b", 10, T0)
        await store.release(KEY, "a")
        with pytest.raises(LeaseLost) as info:
            await store.renew(KEY, "a", 10, T0)
        assert isinstance(info.value, StoreError)

    async def test_release_frees_the_lease(self, store: LeaseStore) -> None:
        await store.acquire(KEY, "a", 30, 0, T0)
        await store.release(KEY, "a")
        await store.acquire(KEY, "b", 30, 0, T0)

    async def test_release_by_non_owner_is_harmless(self, store: LeaseStore) -> None:
        await store.release(KEY, "nobody")  # never leased
        await store.acquire(KEY, "a", 30, 0, T0)
        await store.release(KEY, "b")
        with pytest.raises(LeaseTimeout):
            await store.acquire(KEY, "c", 30, 0, at(1))

    async def test_release_with_an_update_writes_the_row_and_frees_the_lease(
        self, store: LeaseStore
    ) -> None:
        await store.create(KEY, T0)
        await store.acquire(KEY, "a", 30, 0, T0)
        await store.release(KEY, "a", RegistryUpdate("awaiting", at(60), {"k": "v"}, at(2)))
        record = await store.get_record(KEY)
        assert record is not None
        assert (record.status, record.next_wakeup, record.tags) == ("awaiting", at(60), {"k": "v"})
        assert record.updated_at == at(2)
        await store.acquire(KEY, "b", 30, 0, at(3))
        # not (or no longer) the owner: the row is still written, the lease stays b's
        await store.release(KEY, "a", RegistryUpdate("finished", None, {}, at(4)))
        record = await store.get_record(KEY)
        assert record is not None
        assert (record.status, record.next_wakeup) == ("finished", None)
        with pytest.raises(LeaseTimeout):
            await store.acquire(KEY, "c", 30, 0, at(5))

    async def test_release_with_an_update_of_an_unregistered_instance_changes_nothing(
        self, store: LeaseStore
    ) -> None:
        await store.acquire(KEY, "a", 30, 0, T0)
        with pytest.raises(StoreError, match="not registered"):
            await store.release(KEY, "a", RegistryUpdate("finished", None, {}, at(1)))
        with pytest.raises(LeaseTimeout):  # still a's
            await store.acquire(KEY, "b", 30, 0, at(2))
        assert await store.get_record(KEY) is None

    async def test_a_release_with_an_update_wakes_waiters(
        self, open_store: _Open[LeaseStore]
    ) -> None:
        one, two = await open_store(), await open_store()
        await one.create(KEY, T0)
        await one.acquire(KEY, "a", 30, 0, T0)

        async def release_soon() -> None:
            await asyncio.sleep(0.1)
            await one.release(KEY, "a", RegistryUpdate("awaiting", None, {}, at(1)))

        start = time.monotonic()
        await asyncio.gather(two.acquire(KEY, "b", 30, 10, T0), release_soon())
        assert time.monotonic() - start < 3

    async def test_stale_finds_running_instances_without_a_live_lease(
        self, store: LeaseStore
    ) -> None:
        keys = {name: InstanceKey("w", name) for name in ("dead", "alive", "lapsed", "idle")}
        for n, key in enumerate(keys.values()):
            await store.create(key, T0)
            status: RegistryStatus = "awaiting" if key.instance_id == "idle" else "running"
            await store.update(key, status, None, {}, at(n))
        await store.acquire(keys["alive"], "w1", 60, 0, T0)
        await store.acquire(keys["lapsed"], "w2", 5, 0, T0)
        await store.acquire(keys["idle"], "w3", 5, 0, T0)
        assert await store.stale(at(1), 10) == [keys["dead"]]
        assert await store.stale(at(5), 10) == [keys["dead"], keys["lapsed"]]
        assert await store.stale(at(5), 1) == [keys["dead"]]
        assert await store.stale(at(60), 10) == [keys["dead"], keys["alive"], keys["lapsed"]]

    async def test_stale_never_returns_a_parked_instance(self, store: LeaseStore) -> None:
        await store.create_leased(KEY, "a", 10, T0)
        await store.create_leased(OTHER, "a", 10, T0)
        await store.release(KEY, "a", RegistryUpdate("parked", None, {}, at(1), error="E: x"))
        await store.update(OTHER, "parked", None, {}, at(1), error="E: y")  # lease left to lapse
        assert await store.stale(at(100), 10) == []
        await store.update(OTHER, "running", None, {}, at(2))  # running again, not leased
        assert await store.stale(at(100), 10) == [OTHER]

    async def test_release_with_an_update_counts_its_error(self, store: LeaseStore) -> None:
        await store.create(KEY, T0)
        await store.acquire(KEY, "a", 30, 0, T0)
        await store.update(KEY, "running", None, {}, at(1), error="ConnectionError: down")
        await store.release(
            KEY, "a", RegistryUpdate("awaiting", at(120), {}, at(2), error="TimeoutError: slow")
        )
        record = await store.get_record(KEY)
        assert record is not None
        assert (record.failures, record.last_error) == (2, "TimeoutError: slow")
        await store.acquire(KEY, "a", 30, 0, at(3))
        await store.release(KEY, "a", RegistryUpdate("finished", None, {}, at(4)))
        record = await store.get_record(KEY)
        assert record is not None
        assert (record.status, record.failures, record.last_error) == ("finished", 0, None)


@_async_tests
class WakeupConformance(_Suite):
    """The ``WakeupStore`` contract: the next wakeup, claims of due ones, waiting for work.
    The store must be a ``RegistryStore`` too (wakeups are set by ``create`` and ``update``).

    Subclass it and override the ``new_store`` fixture (see the module's docstring).
    """

    async def _with_wakeups(self, store: WakeupStore, wakeups: dict[str, datetime | None]) -> None:
        for iid, wakeup in wakeups.items():
            key = InstanceKey("timer", iid)
            await store.create(key, T0)
            await store.update(key, "awaiting", wakeup, {}, T0)

    async def test_next_wakeup_is_the_earliest_later_one(self, store: WakeupStore) -> None:
        assert await store.next_wakeup(T0) is None
        other_wf = InstanceKey("other-workflow", "x")
        for key, wakeup in ((KEY, at(50)), (OTHER, at(20)), (other_wf, at(10))):
            await store.create(key, T0)
            await store.update(key, "awaiting", wakeup, {}, T0)
        await store.create(InstanceKey(KEY.workflow, "no-wakeup"), T0)
        assert await store.next_wakeup(T0) == at(10)
        assert await store.next_wakeup(T0, [KEY.workflow]) == at(20)
        assert await store.next_wakeup(at(20), [KEY.workflow]) == at(50)  # strictly later
        assert await store.next_wakeup(at(50)) is None
        assert await store.next_wakeup(T0, []) is None

    async def test_claim_due_claims_due_wakeups_earliest_first(self, store: WakeupStore) -> None:
        await self._with_wakeups(
            store, {"late": at(1), "now": T0, "early": at(-5), "none": None, "also": at(-5)}
        )
        claims = await store.claim_due(T0, 10, 30)
        assert claims == [
            Claim(InstanceKey("timer", "also"), at(-5), at(30)),
            Claim(InstanceKey("timer", "early"), at(-5), at(30)),
            Claim(InstanceKey("timer", "now"), T0, at(30)),
        ]

    async def test_claimed_wakeups_are_skipped_until_the_claim_lapses(
        self, open_store: _Open[WakeupStore]
    ) -> None:
        one, two = await open_store(), await open_store()
        await self._with_wakeups(one, {"x": T0})
        assert [c.key.instance_id for c in await one.claim_due(T0, 10, 30)] == ["x"]
        assert await two.claim_due(at(29.999), 10, 30) == []
        assert await one.claim_due(at(29.999), 10, 30) == []
        (claim,) = await two.claim_due(at(30), 10, 30)
        assert claim == Claim(InstanceKey("timer", "x"), T0, at(60))

    async def test_update_clears_the_claim(self, store: WakeupStore) -> None:
        await self._with_wakeups(store, {"x": T0})
        assert len(await store.claim_due(T0, 10, 30)) == 1
        await store.update(InstanceKey("timer", "x"), "awaiting", at(5), {}, at(1))
        assert await store.claim_due(at(4), 10, 30) == []
        assert [c.wakeup_at for c in await store.claim_due(at(6), 10, 30)] == [at(5)]
        await store.update(InstanceKey("timer", "x"), "finished", None, {}, at(7))
        assert await store.claim_due(at(1000), 10, 30) == []

    async def test_an_update_that_keeps_the_wakeup_keeps_its_claim(
        self, store: WakeupStore
    ) -> None:
        # (a run marks its instance running before the wakeup moves: the claim must hold, or
        # another worker claims the instance and waits for its lease)
        await self._with_wakeups(store, {"x": T0})
        key = InstanceKey("timer", "x")
        (claim,) = await store.claim_due(T0, 10, 30)
        await store.update(key, "running", T0, {}, at(1), keep_failures=True)
        assert await store.claim_due(at(29), 10, 30) == []
        assert [c.key for c in await store.claim_due(claim.until, 10, 30)] == [key]
        # a changed wakeup is unclaimed at once
        await store.update(key, "awaiting", at(40), {}, at(31))
        assert [c.wakeup_at for c in await store.claim_due(at(40), 10, 30)] == [at(40)]

    async def test_claim_due_never_returns_a_parked_instance(self, store: WakeupStore) -> None:
        await self._with_wakeups(store, {"due": T0, "claimed": T0, "later": at(50)})
        (claimed,) = await store.claim_due(T0, 1, 30, ["timer"])
        for key in (InstanceKey("timer", iid) for iid in ("due", "claimed", "later")):
            await store.update(key, "parked", None, {}, at(1), error="RuntimeError: boom")
        assert await store.claim_due(at(1000), 10, 30) == []
        assert await store.next_wakeup(T0) is None
        # an update with a wakeup (the instance resumed) makes it due again
        await store.update(claimed.key, "awaiting", at(2), {}, at(2))
        assert [c.key for c in await store.claim_due(at(2), 10, 30)] == [claimed.key]

    async def test_claim_due_respects_the_limit(self, store: WakeupStore) -> None:
        await self._with_wakeups(store, {f"i{n}": at(-n) for n in range(5)})
        first = await store.claim_due(T0, 2, 30)
        assert [c.key.instance_id for c in first] == ["i4", "i3"]
        assert [c.key.instance_id for c in await store.claim_due(T0, 2, 30)] == ["i2", "i1"]
        assert [c.key.instance_id for c in await store.claim_due(T0, 2, 30)] == ["i0"]
        assert await store.claim_due(T0, 2, 30) == []
        assert await store.claim_due(at(100), 0, 30) == []

    async def test_concurrent_claimers_get_disjoint_claims(
        self, open_store: _Open[WakeupStore]
    ) -> None:
        stores = [await open_store() for _ in range(3)]
        await self._with_wakeups(stores[0], {f"i{n:02}": at(-n) for n in range(30)})
        batches = await asyncio.gather(*(stores[n % 3].claim_due(T0, 4, 30) for n in range(12)))
        claimed = [c.key.instance_id for batch in batches for c in batch]
        assert sorted(claimed) == [f"i{n:02}" for n in range(30)]

    async def test_wait_for_work_returns_after_the_timeout(self, store: WakeupStore) -> None:
        await settle(store)
        start = time.monotonic()
        await store.wait_for_work(0.3)
        assert time.monotonic() - start < 1.5

    async def test_wait_for_work_wakes_on_a_new_wakeup(
        self, open_store: _Open[WakeupStore]
    ) -> None:
        worker, other = await open_store(), await open_store()
        await other.create(KEY, T0)
        for writer in (other, worker):
            await settle(worker)

            async def set_wakeup(writer: WakeupStore = writer) -> None:
                await asyncio.sleep(0.05)
                await writer.update(KEY, "awaiting", at(5), {}, T0)

            start = time.monotonic()
            await asyncio.gather(worker.wait_for_work(10), set_wakeup())
            assert time.monotonic() - start < 3

    async def test_wait_for_change_returns_by_the_timeout(self, store: WakeupStore) -> None:
        for _ in range(3):  # (the first call may return at once: a hint)
            start = time.monotonic()
            await store.wait_for_change(0.3)
            assert time.monotonic() - start < 1.5
        start = time.monotonic()
        await store.wait_for_change(0)
        assert time.monotonic() - start < 1

    async def test_wait_for_change_wakes_on_a_wakeup_set_by_another_handle(
        self, open_store: _Open[WakeupStore]
    ) -> None:
        waiter, other = await open_store(), await open_store()
        await other.create(KEY, T0)
        assert await _woken_after(waiter, lambda: other.update(KEY, "awaiting", at(5), {}, T0)) < 2
        assert await _woken_after(waiter, lambda: other.create(OTHER, T0, next_wakeup=at(9))) < 2

    async def test_wait_for_change_of_a_closed_store_raises(
        self, open_store: _Open[WakeupStore]
    ) -> None:
        store = await open_store()
        await store.close()
        with pytest.raises(StoreError):
            await store.wait_for_change(0.1)


@_async_tests
class RetentionConformance(_Suite):
    """The ``RetentionStore`` contract: ``purge`` deletes old instances of the given statuses,
    oldest first, in batches, whole (registry row, wakeup, journal, snapshot, lease), and
    never one leased. The store must be a whole ``Store`` (what a purge deletes is written
    through the other capabilities).

    Subclass it and override the ``new_store`` fixture (see the module's docstring).
    """

    async def _instances(
        self, store: Store, rows: dict[str, tuple[RegistryStatus, float]], workflow: str = "w"
    ) -> dict[str, InstanceKey]:
        """Instances of ``workflow`` by id, each with (status, updated at), a journal of two
        events and a snapshot."""
        keys = {}
        for iid, (status, updated) in rows.items():
            key = keys[iid] = InstanceKey(workflow, iid)
            await store.create(key, T0)
            await store.append(key, 0, [event(1), event(2)])
            await store.save_snapshot(key, Snapshot(2, '{"s": 2}'))
            await store.update(key, status, None, {"id": iid}, at(updated))
        return keys

    async def _whole(self, store: Store, key: InstanceKey) -> bool:
        """Whether ``key`` still has its registry row, journal and snapshot (or none of them)."""
        there = (
            await store.exists(key),
            await store.get_record(key) is not None,
            [e.sequence for e in await store.read(key)] == [1, 2],
            await store.load_snapshot(key) == Snapshot(2, '{"s": 2}'),
        )
        assert there in ((True,) * 4, (False,) * 4), (key, there)
        if not there[0]:
            assert await store.read(key) == []
            assert await store.load_snapshot(key) is None
        return there[0]

    async def test_purge_deletes_old_instances_of_the_statuses_whole(self, store: Store) -> None:
        keys = await self._instances(
            store,
            {
                "done": ("finished", 10),
                "broke": ("failed", 5),
                "stopped": ("terminated", 20),
                "recent": ("finished", 100),  # updated at `before`: kept
                "busy": ("running", 1),
                "waiting": ("awaiting", 1),
                "parked": ("parked", 1),
            },
        )
        purged = await store.purge(["finished", "failed", "terminated"], at(100), at(200), 10)
        assert purged == [keys["broke"], keys["done"], keys["stopped"]]  # oldest update first
        for iid, key in keys.items():
            assert await self._whole(store, key) == (iid not in ("broke", "done", "stopped"))
        assert await store.purge(["finished", "failed", "terminated"], at(100), at(200), 10) == []
        assert await store.purge([], at(1000), at(1000), 10) == []
        page = await store.search(SearchQuery())
        assert sorted(r.key.instance_id for r in page.records) == [
            "busy",
            "parked",
            "recent",
            "waiting",
        ]

    async def test_purge_skips_instances_leased_at_now(self, store: Store) -> None:
        keys = await self._instances(
            store, {"held": ("finished", 1), "lapsed": ("finished", 2), "free": ("finished", 3)}
        )
        await store.acquire(keys["held"], "a", 100, 0, T0)  # until at(100)
        await store.acquire(keys["lapsed"], "b", 30, 0, T0)  # until at(30)
        assert await store.purge(["finished"], at(50), at(40), 10) == [
            keys["lapsed"],
            keys["free"],
        ]
        assert await self._whole(store, keys["held"])
        # the lapsed lease went with its instance: at an earlier instant it no longer holds
        await store.acquire(keys["lapsed"], "c", 10, 0, at(1))
        with pytest.raises(LeaseTimeout):  # the live one stays
            await store.acquire(keys["held"], "c", 10, 0, at(41))
        # once that lease lapses (or is released), the instance goes too
        assert await store.purge(["finished"], at(50), at(100), 10) == [keys["held"]]
        assert not await self._whole(store, keys["held"])

    async def test_purge_respects_the_limit_across_batches(self, store: Store) -> None:
        keys = await self._instances(store, {f"i{n}": ("finished", 10 - n) for n in range(5)})
        batches = [await store.purge(["finished"], at(100), at(100), 2) for _ in range(4)]
        assert batches == [
            [keys["i4"], keys["i3"]],
            [keys["i2"], keys["i1"]],
            [keys["i0"]],
            [],
        ]

    async def test_purge_breaks_ties_by_key(self, store: Store) -> None:
        w = await self._instances(store, dict.fromkeys(("b", "a", "c"), ("failed", 7)))
        v = await self._instances(store, {"a": ("failed", 7)}, workflow="v")
        purged = await store.purge(["failed"], at(100), at(100), 3)
        assert purged == [v["a"], w["a"], w["b"]]

    async def test_purge_of_some_workflows_leaves_the_others(self, store: Store) -> None:
        orders = await self._instances(store, {"o1": ("finished", 1), "o2": ("failed", 2)})
        invoices = await self._instances(
            store, {"i1": ("finished", 1), "i2": ("failed", 2)}, workflow="invoice"
        )
        statuses: list[RegistryStatus] = ["finished", "failed"]
        assert await store.purge(statuses, at(100), at(100), 10, ["w", "other"]) == [
            orders["o1"],
            orders["o2"],
        ]
        assert await store.purge(statuses, at(100), at(100), 10, []) == []
        for key in invoices.values():
            assert await self._whole(store, key)
        assert await store.purge(statuses, at(100), at(100), 10) == list(invoices.values())

    async def test_purge_drops_the_wakeup_and_its_claim(self, store: Store) -> None:
        await store.create(KEY, T0)
        await store.update(KEY, "awaiting", at(5), {}, T0)
        assert len(await store.claim_due(at(5), 10, 30)) == 1
        assert await store.purge(["awaiting"], at(1), at(6), 10) == [KEY]
        assert await store.next_wakeup(T0) is None
        assert await store.claim_due(at(60), 10, 30) == []

    async def test_purge_refuses_a_limit_below_one_and_naive_instants(self, store: Store) -> None:
        await self._instances(store, {"x": ("finished", 1)})
        for limit in (0, -1):
            with pytest.raises(ValueError, match="limit"):
                await store.purge(["finished"], at(100), at(100), limit)
        with pytest.raises(ValueError, match="timezone-aware"):
            await store.purge(["finished"], datetime(2031, 1, 1), at(100), 10)
        with pytest.raises(ValueError, match="timezone-aware"):
            await store.purge(["finished"], at(100), datetime(2031, 1, 1), 10)
        assert await store.exists(InstanceKey("w", "x"))

    async def test_concurrent_purges_delete_each_instance_once(
        self, open_store: _Open[Store]
    ) -> None:
        stores = [await open_store() for _ in range(3)]
        keys = await self._instances(stores[0], {f"i{n:02}": ("finished", n) for n in range(12)})
        batches = await asyncio.gather(
            *(stores[n % 3].purge(["finished"], at(100), at(100), 2) for n in range(9))
        )
        purged = [key for batch in batches for key in batch]
        assert len(purged) == len(set(purged))
        purged += await stores[1].purge(["finished"], at(100), at(100), 12)
        assert sorted(purged) == sorted(keys.values())
        assert (await stores[2].search(SearchQuery())).total == 0


@_async_tests
class StoreConformance(
    JournalConformance,
    SnapshotConformance,
    RegistryConformance,
    LeaseConformance,
    WakeupConformance,
    RetentionConformance,
):
    """The whole ``Store`` contract: every capability's suite, and how journal and registry
    meet (instants, an append needs no registry row and leaves it alone).

    Subclass it and override the ``new_store`` fixture, returning a ``StoreFactory``::

        class TestMyStore(StoreConformance):
            @pytest.fixture
            def new_store(self, tmp_path: Path) -> StoreFactory:
                return lambda: MyStore(tmp_path / "db")
    """

    async def test_instants_round_trip_exactly_as_utc(self, store: Store) -> None:
        ist = timezone(timedelta(hours=5, minutes=30))
        created = datetime(2031, 5, 6, 7, 8, 9, 123457, tzinfo=ist)
        wakeup = datetime(2299, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
        await store.create(KEY, created)
        await store.update(KEY, "awaiting", wakeup, {}, created)
        record = await store.get_record(KEY)
        assert record is not None
        assert record.created_at == created
        assert record.next_wakeup == wakeup
        for instant in (record.created_at, record.updated_at, record.next_wakeup):
            assert instant is not None
            assert instant.utcoffset() == timedelta(0)
        await store.append(KEY, 0, [event(1, created)])
        (entry,) = await store.read(KEY)
        assert entry.recorded_at == created
        assert entry.recorded_at.utcoffset() == timedelta(0)
        assert entry.recorded_at.microsecond == 123457

    async def test_append_leaves_the_registry_alone(self, store: Store) -> None:
        # updated_at is the last registry write (a runtime writes it as an operation starts
        # and ends), not the last event: appends stay one cheap insert
        await store.create(KEY, T0)
        await store.append(KEY, 0, [event(1, at(3)), event(2, at(7))])
        record = await store.get_record(KEY)
        assert record is not None
        assert (record.created_at, record.updated_at) == (T0, T0)
        await store.update(KEY, "awaiting", None, {}, at(8))
        record = await store.get_record(KEY)
        assert record is not None
        assert record.updated_at == at(8)

    async def test_append_needs_no_registry_row(self, store: Store) -> None:
        await store.append(KEY, 0, [event(1)])
        assert [e.sequence for e in await store.read(KEY)] == [1]
        assert not await store.exists(KEY)

    async def test_wait_for_change_wakes_on_a_release_by_another_handle(
        self, open_store: _Open[Store]
    ) -> None:
        waiter, other = await open_store(), await open_store()
        await other.create(KEY, T0)
        await other.acquire(KEY, "a", 30, 0, T0)
        assert await _woken_after(waiter, lambda: other.release(KEY, "a")) < 2
        await other.acquire(KEY, "a", 30, 0, at(1))
        update = RegistryUpdate("awaiting", None, {}, at(2))  # an operation ends: no wakeup
        assert await _woken_after(waiter, lambda: other.release(KEY, "a", update)) < 2

    async def test_create_leased_with_events_writes_them_as_the_first_entries(
        self, store: Store
    ) -> None:
        events = [event(1, at(1)), event(2, at(2), "B"), event(3, at(3))]
        assert await store.create_leased(KEY, "a", 10, T0, events)
        entries = await store.read(KEY)
        assert [e.sequence for e in entries] == [1, 2, 3]
        assert [(e.type, e.data, e.recorded_at) for e in entries] == [
            (e.type, e.data, e.recorded_at) for e in events
        ]
        record = await store.get_record(KEY)
        assert record is not None
        assert (record.status, record.created_at, record.updated_at) == ("running", T0, T0)
        with pytest.raises(LeaseTimeout):  # leased to a
            await store.acquire(KEY, "b", 10, 0, at(1))
        # registered: a no-op, whoever asks and whatever the events
        assert not await store.create_leased(KEY, "a", 10, at(2), [event(9)])
        assert not await store.create_leased(KEY, "b", 10, at(20), [event(9)])
        assert [e.sequence for e in await store.read(KEY)] == [1, 2, 3]
        assert [json.loads(e.data)["n"] for e in await store.read(KEY)] == [1, 2, 3]
        record = await store.get_record(KEY)
        assert record is not None
        assert (record.status, record.updated_at) == ("running", T0)

    async def test_create_leased_with_events_on_a_journal_with_entries_writes_nothing(
        self, store: Store
    ) -> None:
        await store.append(KEY, 0, [event(1), event(2)])  # stray entries, no registry row
        with pytest.raises(SequenceConflict) as info:
            await store.create_leased(KEY, "a", 10, T0, [event(7)])
        assert (info.value.key, info.value.expected, info.value.actual) == (KEY, 0, 2)
        assert not await store.exists(KEY)
        assert [json.loads(e.data)["n"] for e in await store.read(KEY)] == [1, 2]
        await store.acquire(KEY, "b", 10, 0, T0)  # a took no lease
        await store.release(KEY, "b")
        # without events there is nothing to conflict with: registered as before
        assert await store.create_leased(KEY, "a", 10, T0)
        assert [e.sequence for e in await store.read(KEY)] == [1, 2]

    async def test_create_leased_with_a_naive_instant_writes_nothing(self, store: Store) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            await store.create_leased(KEY, "a", 10, T0, [event(1, datetime(2030, 1, 1))])
        assert not await store.exists(KEY)
        assert await store.read(KEY) == []
        await store.acquire(KEY, "b", 10, 0, T0)  # a took no lease

    async def test_concurrent_create_leased_with_events_exactly_one_wins(
        self, open_store: _Open[Store]
    ) -> None:
        stores = [await open_store() for _ in range(3)]
        results = await asyncio.gather(
            *(
                stores[n % 3].create_leased(KEY, f"owner-{n}", 10, T0, [event(n), event(100 + n)])
                for n in range(9)
            ),
            return_exceptions=True,
        )
        assert results.count(True) == 1, results
        # a loser saw the row (False), or the winner's #1 (a SequenceConflict)
        assert all(r is False or isinstance(r, SequenceConflict) for r in results if r is not True)
        winner = results.index(True)
        entries = await stores[1].read(KEY)
        assert [json.loads(e.data)["n"] for e in entries] == [winner, 100 + winner]
        assert [e.sequence for e in entries] == [1, 2]
