"""The storage protocol: what a runtime needs from a database, and nothing more.

A store keeps, per instance of a workflow: the journal (events with their sequence number),
a lease giving one process at a time the right to run the instance, an optional snapshot,
a wakeup instant, and a registry row (status, times, tags) for search. ``Store`` is the
whole of it; it combines one small protocol per capability, each a few methods:

- ``StoreLifecycle``: ``initialize``, ``close``;
- ``JournalStore``: ``read``, ``append`` (the events, the one source of truth);
- ``SnapshotStore``: ``save_snapshot``, ``load_snapshot`` (a cache of engine state);
- ``RegistryStore``: ``create``, ``exists``, ``get_record``, ``update``, ``search``;
- ``LeaseStore`` (on a registry): ``acquire``, ``renew``, ``release``, ``create_leased``,
  ``stale``;
- ``WakeupStore`` (on a registry): ``claim_due``, ``next_wakeup``, ``wait_for_work``,
  ``wait_for_change``;
- ``RetentionStore`` (on a registry): ``purge`` (instances that ended long ago, journal and
  all).

The memory, SQLite and PostgreSQL stores implement all of them, and one conformance suite
(``workflows4py.testing.StoreConformance``, one mixin per capability) checks every store.
They also have ``check_schema``: ``initialize`` that only reads, for tools that must never
create or migrate a schema.

Every method is a coroutine and atomic; stores translate driver errors into
:class:`StoreError` subclasses (``raise ... from e``), so callers never see a driver's own
exceptions. Every instant a store is given must be timezone-aware (a naive one raises
``ValueError``), and every instant it returns is in UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from workflows4py._errors import DecodeError, WorkflowError

from ._journal import JournalEntry

__all__ = [
    "Claim",
    "InstanceKey",
    "InstanceRecord",
    "JournalStore",
    "LeaseLost",
    "LeaseStore",
    "LeaseTimeout",
    "NewEvent",
    "Page",
    "RegistryStatus",
    "RegistryStore",
    "RegistryUpdate",
    "RetentionStore",
    "SearchQuery",
    "SearchSort",
    "SequenceConflict",
    "Snapshot",
    "SnapshotStore",
    "Store",
    "StoreError",
    "StoreLifecycle",
    "StoreReadOnly",
    "StoreUnavailable",
    "WakeupStore",
    "no_schema",
]

RegistryStatus = Literal["running", "awaiting", "finished", "failed", "terminated", "parked"]


class StoreError(WorkflowError):
    """A storage operation failed."""


def no_schema(where: str, current: int, latest: int) -> StoreError:
    """The error of ``check_schema`` on a database whose schema is missing or older."""
    has = f"an older one (version {current})" if current else "none"
    return StoreError(
        f"the database has no workflows4py schema (or an older one): {where} has {has}, "
        f"this version needs version {latest}; nothing was created or migrated: run a "
        "command that writes, e.g. `workflows4py worker`, to create/migrate it"
    )


class StoreUnavailable(StoreError):
    """The database cannot be reached (or went away mid-operation); nothing was written.

    Retrying later is safe.
    """


class StoreReadOnly(StoreError):
    """The store was opened read-only (the database cannot be written by this process):
    reads work, a write is refused and nothing was written."""


class SequenceConflict(StoreError):
    """An append expected the journal to end at one sequence number, but it ends elsewhere.

    Another writer got there first; the appended events were not written.
    """

    def __init__(self, key: InstanceKey, expected: int, actual: int | None = None) -> None:
        got = f", it ends at #{actual}" if actual is not None else ""
        super().__init__(
            f"journal of {key} was expected to end at #{expected}{got}; nothing was written"
        )
        self.key = key
        self.expected = expected
        self.actual = actual


class LeaseTimeout(StoreError):
    """The instance stayed leased by another owner for longer than the caller would wait."""


class LeaseLost(StoreError):
    """A lease the caller held has expired and was taken, or was never held."""


@dataclass(frozen=True, slots=True, order=True)
class InstanceKey:
    """Identifies an instance: the workflow's name and the instance id."""

    workflow: str
    instance_id: str

    def __str__(self) -> str:
        return f"{self.workflow}:{self.instance_id}"


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append: type tag, JSON payload, when it was recorded."""

    type: str
    data: str
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Opaque engine state after ``sequence`` events, written by the runtime."""

    sequence: int
    data: str


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """A registry row."""

    key: InstanceKey
    status: RegistryStatus
    created_at: datetime
    updated_at: datetime
    next_wakeup: datetime | None
    tags: dict[str, str] = field(default_factory=dict)
    failures: int = 0  # operations in a row that failed with an exception
    last_error: str | None = None  # the latest one's exception, while failures > 0


@dataclass(frozen=True, slots=True)
class RegistryUpdate:
    """New values for a registry row, written as an operation ends (see Store.release)."""

    status: RegistryStatus
    next_wakeup: datetime | None
    tags: dict[str, str]
    now: datetime
    error: str | None = None  # the operation failed: count it, keep this description


@dataclass(frozen=True, slots=True)
class Claim:
    """A due wakeup claimed by one worker until ``until`` (then others may claim it again)."""

    key: InstanceKey
    wakeup_at: datetime
    until: datetime


SearchSort = Literal["updated", "created"]


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """Registry search: every given criterion must hold; results ordered by ``sort``,
    (updated_at, workflow, instance_id) or (created_at, workflow, instance_id), latest first
    if ``descending``.

    ``after`` pages by keyset: only rows whose sort key (instant, workflow, instance id)
    comes after it in the result order (before it, if ``descending``) are returned, which
    the SQL stores find in an index at any depth; :meth:`cursor` of the last record of a
    page is the ``after`` of the next one. ``offset`` still skips rows (after ``after``),
    and ``Page.total`` counts every match of the criteria, whatever ``after`` and
    ``offset`` are.
    """

    workflow: str | None = None
    status: Sequence[RegistryStatus] | None = None
    created_from: datetime | None = None  # inclusive
    created_to: datetime | None = None  # exclusive
    updated_from: datetime | None = None
    updated_to: datetime | None = None
    wakeup_before: datetime | None = None  # next_wakeup < this
    tags: dict[str, str] = field(default_factory=dict)  # each key must have exactly this value
    failing: bool | None = None  # True: failures > 0; False: failures == 0
    limit: int = 50
    offset: int = 0
    descending: bool = False
    sort: SearchSort = "updated"
    after: tuple[datetime, str, str] | None = None  # (instant, workflow, instance_id)
    count_limit: int | None = None
    """Count at most this many matches (``None``: all of them). A count walks every match,
    which at millions of rows costs more than the page; with a limit, ``Page.total`` is at
    most ``count_limit`` and ``Page.exact`` False when there are more (0: no count)."""

    def cursor(self, record: InstanceRecord) -> tuple[datetime, str, str]:
        """The sort key of ``record`` under this query: the ``after`` of the next page."""
        instant = record.created_at if self.sort == "created" else record.updated_at
        return (instant, record.key.workflow, record.key.instance_id)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of search results and the total number of matches.

    A registry row of the page that does not decode (a corrupt row) is left out of
    ``records`` and reported in ``errors`` instead, one DecodeError naming its instance;
    ``total`` still counts it.
    """

    records: list[InstanceRecord]
    total: int
    errors: list[DecodeError] = field(default_factory=list)
    exact: bool = True
    """False when the query's ``count_limit`` cut the count short: there are more than
    ``total`` matches."""


class StoreLifecycle(Protocol):
    """Opening and closing a store: the two methods every capability needs."""

    async def initialize(self) -> None:
        """Create or migrate the schema; idempotent, and safe from many processes at once."""
        ...

    async def close(self) -> None:
        """Release connections; idempotent; the store is unusable after (StoreError)."""
        ...


class JournalStore(StoreLifecycle, Protocol):
    """The journals: per instance, events numbered 1, 2, ... with no gap (the truth)."""

    async def read(self, key: InstanceKey, after: int = 0) -> list[JournalEntry]:
        """Entries with sequence > ``after``, in order; [] for an unknown instance."""
        ...

    async def append(self, key: InstanceKey, expected: int, events: Sequence[NewEvent]) -> None:
        """Write ``events`` as #expected+1.. all or none; SequenceConflict if the journal
        does not end at #expected (nothing written); needs no registry row; [] is a no-op."""
        ...


class SnapshotStore(StoreLifecycle, Protocol):
    """Snapshots: per instance, the latest engine state the runtime chose to keep."""

    async def save_snapshot(
        self, key: InstanceKey, snapshot: Snapshot, *, replace: bool = False
    ) -> None:
        """Keep ``snapshot`` unless one of a later sequence is kept; ``replace``: keep it."""
        ...

    async def load_snapshot(self, key: InstanceKey) -> Snapshot | None:
        """The snapshot kept for the instance, None if there is none."""
        ...


class RegistryStore(StoreLifecycle, Protocol):
    """The registry: one row per instance (status, times, wakeup, tags, failures)."""

    async def create(
        self, key: InstanceKey, now: datetime, next_wakeup: datetime | None = None
    ) -> bool:
        """Register the instance as awaiting (with ``next_wakeup``) if absent; True if created."""
        ...

    async def exists(self, key: InstanceKey) -> bool:
        """Whether the instance is registered."""
        ...

    async def get_record(self, key: InstanceKey) -> InstanceRecord | None:
        """The instance's registry row, None if it is not registered."""
        ...

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
        """Set status, wakeup (None clears it; a changed wakeup drops its claim, an unchanged
        one keeps it), tags, updated_at; count ``error``, else reset failures (or keep
        them); StoreError if unregistered."""
        ...

    async def search(self, query: SearchQuery) -> Page:
        """Rows matching ``query``, ordered by its ``sort`` instant then key, after its ``after``;
        ValueError on negative paging, an unknown sort or a bad ``after``."""
        ...


class LeaseStore(RegistryStore, Protocol):
    """Leases: one owner at a time may run an instance, until its lease lapses."""

    async def acquire(
        self, key: InstanceKey, owner: str, ttl: float, wait: float, now: datetime
    ) -> None:
        """Lease to ``owner`` (or extend its lease) for ``ttl`` s; LeaseTimeout after ``wait`` s."""
        ...

    async def renew(self, key: InstanceKey, owner: str, ttl: float, now: datetime) -> None:
        """Extend ``owner``'s lease to now + ``ttl``; LeaseLost if ``owner`` does not hold it."""
        ...

    async def release(
        self, key: InstanceKey, owner: str, update: RegistryUpdate | None = None
    ) -> None:
        """Free ``owner``'s lease (harmless if not held), writing ``update`` atomically first
        (StoreError, and the lease kept, if the instance is unregistered)."""
        ...

    async def create_leased(
        self,
        key: InstanceKey,
        owner: str,
        ttl: float,
        now: datetime,
        events: Sequence[NewEvent] = (),
    ) -> bool:
        """Register as running, leased to ``owner``, and append ``events`` as #1, #2, ..., all
        in one transaction, if unregistered and unleased (True); else a no-op (False). Given
        ``events``, a journal already holding entries is a SequenceConflict: nothing written."""
        ...

    async def stale(
        self, now: datetime, limit: int, workflows: Sequence[str] | None = None
    ) -> list[InstanceKey]:
        """Running instances whose lease lapsed (a process died mid-step), oldest update first."""
        ...


class WakeupStore(RegistryStore, Protocol):
    """Wakeups: the registry's ``next_wakeup`` instants, claimed by workers when due."""

    async def claim_due(
        self, now: datetime, limit: int, lease: float, workflows: Sequence[str] | None = None
    ) -> list[Claim]:
        """Claim for ``lease`` s up to ``limit`` due, unclaimed wakeups, earliest first."""
        ...

    async def next_wakeup(
        self, after: datetime, workflows: Sequence[str] | None = None
    ) -> datetime | None:
        """The earliest wakeup strictly later than ``after`` (of ``workflows`` only, if given)."""
        ...

    async def wait_for_work(self, timeout: float) -> None:
        """Return soon after any handle sets a wakeup (or early: a hint), else after timeout s."""
        ...

    async def wait_for_change(self, timeout: float) -> None:
        """Return soon after any handle of this database ends an operation (releases a lease)
        or sets a wakeup, or after ``timeout`` seconds; a hint (it may return early)."""
        ...


class RetentionStore(RegistryStore, Protocol):
    """Retention: instances that ended long ago are deleted, journal and all."""

    async def purge(
        self,
        statuses: Sequence[RegistryStatus],
        before: datetime,
        now: datetime,
        limit: int,
        workflows: Sequence[str] | None = None,
    ) -> list[InstanceKey]:
        """Delete in one transaction up to ``limit`` (ValueError if < 1) instances whose status
        is in ``statuses``, updated before ``before``, of ``workflows`` if given, and that
        nobody holds an unexpired lease on at ``now``: registry row (wakeup, claim), journal,
        snapshot, lease. Oldest update first (then key); returns the keys, in that order."""
        ...


class Store(JournalStore, SnapshotStore, LeaseStore, WakeupStore, RetentionStore, Protocol):
    """Persistence for workflow instances: every capability a durable runtime drives.

    Each method is atomic. The capabilities are separate protocols (``JournalStore``,
    ``SnapshotStore``, ``RegistryStore``, ``LeaseStore``, ``WakeupStore``,
    ``RetentionStore``, all opened and closed as a ``StoreLifecycle``);
    ``workflows4py.testing`` has a conformance suite for each of them and
    ``StoreConformance`` for the whole.
    """
