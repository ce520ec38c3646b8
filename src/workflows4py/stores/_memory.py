"""The in-memory store: the reference semantics of :class:`~workflows4py._store.Store`.

Tests and the in-memory runtime use it, so it must fail the way the databases fail: a stale
``expected`` raises :class:`SequenceConflict`, a lease is held until it lapses (by the
caller's clock), a claimed wakeup stays invisible to other workers until its claim lapses,
and search orders, filters, pages and counts exactly like SQL does. The conformance suite
(:mod:`workflows4py.testing`) runs unchanged against this store and the SQL ones.

Every method runs without awaiting in between its reads and writes, so each is atomic with
respect to other tasks of the event loop; that is the memory analogue of a transaction.
The store is not thread-safe: use it from one event loop.

:meth:`MemoryStore.share` returns a second handle on the same data, as a second process
opening the same database would get: closing one handle leaves the other usable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ._common import _check_limit, _check_page, _Pulse, _purge_args, _StoreBase, _utc
from ._journal import JournalEntry
from ._protocol import (
    Claim,
    InstanceKey,
    InstanceRecord,
    LeaseLost,
    NewEvent,
    Page,
    RegistryStatus,
    RegistryUpdate,
    SearchQuery,
    SequenceConflict,
    Snapshot,
    StoreError,
)
from ._rows import _total

__all__ = ["MemoryStore"]


@dataclass(slots=True)
class _Row:
    status: RegistryStatus
    created_at: datetime
    updated_at: datetime
    next_wakeup: datetime | None = None
    claimed_until: datetime | None = None
    tags: dict[str, str] = field(default_factory=dict)
    failures: int = 0
    last_error: str | None = None

    def record(self, key: InstanceKey) -> InstanceRecord:
        return InstanceRecord(
            key,
            self.status,
            self.created_at,
            self.updated_at,
            self.next_wakeup,
            dict(self.tags),
            self.failures,
            self.last_error,
        )


class _Data:
    """What a database would hold; shared by every handle from :meth:`MemoryStore.share`."""

    def __init__(self) -> None:
        self.journals: dict[InstanceKey, list[JournalEntry]] = {}
        self.rows: dict[InstanceKey, _Row] = {}
        self.leases: dict[InstanceKey, tuple[str, datetime]] = {}
        self.snapshots: dict[InstanceKey, Snapshot] = {}
        self.released = _Pulse()  # a lease was released
        self.work = _Pulse()  # a wakeup was set


class MemoryStore(_StoreBase):
    """A :class:`~workflows4py.stores.Store` in process memory; nothing survives the process."""

    _LEASE_POLL = 3600.0  # every release is signalled

    def __init__(self) -> None:
        self._use(_Data())
        self._closed = False

    def _use(self, data: _Data) -> None:
        self._data = data
        self._released = data.released
        self._work = data.work
        self._work_seen = data.work.generation
        self._seen_now()

    def share(self) -> MemoryStore:
        """Another handle on the same data, like a second process opening the same database."""
        other = MemoryStore()
        other._use(self._data)
        return other

    def _db(self) -> _Data:
        if self._closed:
            raise StoreError("the store is closed")
        return self._data

    async def initialize(self) -> None:
        self._db()

    async def check_schema(self) -> None:
        """Like :meth:`initialize`: memory has no schema to check."""
        self._db()

    async def close(self) -> None:
        self._closed = True
        self._released.fire()  # waiters on this handle notice the close
        self._work.fire()

    async def create(
        self, key: InstanceKey, now: datetime, next_wakeup: datetime | None = None
    ) -> bool:
        db = self._db()
        if key in db.rows:
            return False
        now = _utc(now)
        wakeup = None if next_wakeup is None else _utc(next_wakeup)
        db.rows[key] = _Row("awaiting", now, now, next_wakeup=wakeup)
        if wakeup is not None:
            db.work.fire()
        return True

    async def create_leased(
        self,
        key: InstanceKey,
        owner: str,
        ttl: float,
        now: datetime,
        events: Sequence[NewEvent] = (),
    ) -> bool:
        db = self._db()
        now = _utc(now)
        entries = _entries(0, events)
        held = db.leases.get(key)
        if key in db.rows or (held is not None and held[0] != owner and held[1] > now):
            return False
        journal = db.journals.get(key, [])
        if entries and journal:
            raise SequenceConflict(key, 0, len(journal))
        db.rows[key] = _Row("running", now, now)
        db.leases[key] = (owner, now + timedelta(seconds=ttl))
        if entries:
            db.journals[key] = entries
        return True

    async def exists(self, key: InstanceKey) -> bool:
        return key in self._db().rows

    async def read(self, key: InstanceKey, after: int = 0) -> list[JournalEntry]:
        journal = self._db().journals.get(key, [])
        return journal[max(after, 0) :]

    async def append(self, key: InstanceKey, expected: int, events: Sequence[NewEvent]) -> None:
        db = self._db()
        if not events:
            return
        entries = _entries(expected, events)
        journal = db.journals.setdefault(key, [])
        if len(journal) != expected:
            raise SequenceConflict(key, expected, len(journal))
        journal.extend(entries)

    async def _take_lease(
        self, key: InstanceKey, owner: str, ttl: float, at: datetime
    ) -> tuple[str, datetime] | None:
        leases = self._db().leases
        held = leases.get(key)
        if held is not None and held[0] != owner and held[1] > at:
            return held
        leases[key] = (owner, at + timedelta(seconds=ttl))
        return None

    async def renew(self, key: InstanceKey, owner: str, ttl: float, now: datetime) -> None:
        leases = self._db().leases
        held = leases.get(key)
        if held is None or held[0] != owner:
            raise LeaseLost(f"{owner!r} does not hold the lease of {key}")
        leases[key] = (owner, _utc(now) + timedelta(seconds=ttl))

    async def _release_lease(self, key: InstanceKey, owner: str) -> int:
        leases = self._db().leases
        held = leases.get(key)
        if held is None or held[0] != owner:
            return 0
        del leases[key]
        return 1

    async def _release_updating(
        self, key: InstanceKey, owner: str, update: RegistryUpdate
    ) -> tuple[int, int]:
        if not await self._update_row(key, update, False):
            return 0, 0
        return 1, await self._release_lease(key, owner)

    async def save_snapshot(
        self, key: InstanceKey, snapshot: Snapshot, *, replace: bool = False
    ) -> None:
        snapshots = self._db().snapshots
        old = snapshots.get(key)
        if replace or old is None or old.sequence <= snapshot.sequence:
            snapshots[key] = snapshot

    async def load_snapshot(self, key: InstanceKey) -> Snapshot | None:
        return self._db().snapshots.get(key)

    async def _update_row(self, key: InstanceKey, update: RegistryUpdate, keep: bool) -> int:
        row = self._db().rows.get(key)
        if row is None:
            return 0
        row.status = update.status
        wakeup = None if update.next_wakeup is None else _utc(update.next_wakeup)
        if wakeup != row.next_wakeup:  # a changed wakeup is unclaimed
            row.claimed_until = None
        row.next_wakeup = wakeup
        row.tags = dict(update.tags)
        row.updated_at = _utc(update.now)
        if not keep:
            row.failures = 0 if update.error is None else row.failures + 1
            row.last_error = update.error
        return 1

    async def claim_due(
        self, now: datetime, limit: int, lease: float, workflows: Sequence[str] | None = None
    ) -> list[Claim]:
        _check_limit("limit", limit)
        db = self._db()
        now = _utc(now)
        until = now + timedelta(seconds=lease)
        due = sorted(
            (row.next_wakeup, key)
            for key, row in db.rows.items()
            if row.next_wakeup is not None
            and row.next_wakeup <= now
            and (row.claimed_until is None or row.claimed_until <= now)
            and (workflows is None or key.workflow in workflows)
        )[:limit]
        for _, key in due:
            db.rows[key].claimed_until = until
        return [Claim(key, wakeup, until) for wakeup, key in due]

    async def next_wakeup(
        self, after: datetime, workflows: Sequence[str] | None = None
    ) -> datetime | None:
        after = _utc(after)
        later = [
            row.next_wakeup
            for key, row in self._db().rows.items()
            if row.next_wakeup is not None
            and row.next_wakeup > after
            and (workflows is None or key.workflow in workflows)
        ]
        return min(later, default=None)

    async def get_record(self, key: InstanceKey) -> InstanceRecord | None:
        row = self._db().rows.get(key)
        return None if row is None else row.record(key)

    async def search(self, query: SearchQuery) -> Page:
        after = _check_page(query)
        q = query
        statuses = None if q.status is None else set(q.status)
        cf, ct = _opt_utc(q.created_from), _opt_utc(q.created_to)
        uf, ut = _opt_utc(q.updated_from), _opt_utc(q.updated_to)
        wb = _opt_utc(q.wakeup_before)

        def matches(key: InstanceKey, row: _Row) -> bool:
            return (
                (q.workflow is None or key.workflow == q.workflow)
                and (statuses is None or row.status in statuses)
                and (cf is None or row.created_at >= cf)
                and (ct is None or row.created_at < ct)
                and (uf is None or row.updated_at >= uf)
                and (ut is None or row.updated_at < ut)
                and (wb is None or (row.next_wakeup is not None and row.next_wakeup < wb))
                and all(row.tags.get(k) == v for k, v in q.tags.items())
                and (q.failing is None or (row.failures > 0) == q.failing)
            )

        created = q.sort == "created"
        found = sorted(
            (
                (
                    (row.created_at if created else row.updated_at, key.workflow, key.instance_id),
                    key,
                    row,
                )
                for key, row in self._db().rows.items()
                if matches(key, row)
            ),
            key=lambda t: t[0],
            reverse=q.descending,
        )
        total = len(found)
        if after is not None:
            found = [t for t in found if (t[0] < after if q.descending else t[0] > after)]
        page = found[q.offset : q.offset + q.limit]
        total, exact = _total(q, total)
        return Page([row.record(key) for _, key, row in page], total, exact=exact)

    async def stale(
        self, now: datetime, limit: int, workflows: Sequence[str] | None = None
    ) -> list[InstanceKey]:
        _check_limit("limit", limit)
        db = self._db()
        now = _utc(now)

        def lapsed(key: InstanceKey) -> bool:
            held = db.leases.get(key)
            return held is None or held[1] <= now

        found = sorted(
            (row.updated_at, key)
            for key, row in db.rows.items()
            if row.status == "running"
            and lapsed(key)
            and (workflows is None or key.workflow in workflows)
        )
        return [key for _, key in found[:limit]]

    async def purge(
        self,
        statuses: Sequence[RegistryStatus],
        before: datetime,
        now: datetime,
        limit: int,
        workflows: Sequence[str] | None = None,
    ) -> list[InstanceKey]:
        wanted, before, now = _purge_args(statuses, before, now, limit)
        db = self._db()

        def leased(key: InstanceKey) -> bool:
            held = db.leases.get(key)
            return held is not None and held[1] > now

        found = sorted(
            (row.updated_at, key)
            for key, row in db.rows.items()
            if row.status in wanted
            and row.updated_at < before
            and (workflows is None or key.workflow in workflows)
            and not leased(key)
        )
        keys = [key for _, key in found[:limit]]
        for key in keys:
            del db.rows[key]
            db.journals.pop(key, None)
            db.snapshots.pop(key, None)
            db.leases.pop(key, None)
        return keys

    async def wait_for_work(self, timeout: float) -> None:
        work = self._db().work
        await work.wait(self._work_seen, timeout)
        self._work_seen = work.generation

    async def wait_for_change(self, timeout: float) -> None:
        """Every handle of the data signals its releases and wakeups to all of them: this
        waits for either signal (latched: one given since the previous call returns at
        once)."""
        self._db()
        await self._wait_for_change(timeout)


def _entries(expected: int, events: Sequence[NewEvent]) -> list[JournalEntry]:
    """``events`` as the journal entries #expected+1, ... (ValueError for a naive instant)."""
    return [
        JournalEntry(expected + i, e.type, e.data, _utc(e.recorded_at))
        for i, e in enumerate(events, start=1)
    ]


def _opt_utc(instant: datetime | None) -> datetime | None:
    return None if instant is None else _utc(instant)
