"""The storage protocol: what a runtime needs from a database, and nothing more.

A store keeps, per instance of a workflow: the journal (events with their sequence number),
a lease giving one process at a time the right to run the instance, an optional snapshot,
a wakeup instant, and a registry row (status, times, tags) for search. The memory, SQLite
and PostgreSQL stores implement it, and one conformance suite checks all of them.

Every method is a coroutine; stores translate driver errors into :class:`StoreError`
subclasses (``raise ... from e``), so callers never see a driver's own exceptions.
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
    "LeaseLost",
    "LeaseTimeout",
    "NewEvent",
    "Page",
    "RegistryStatus",
    "RegistryUpdate",
    "SearchQuery",
    "SequenceConflict",
    "Snapshot",
    "Store",
    "StoreError",
    "StoreReadOnly",
    "StoreUnavailable",
]

RegistryStatus = Literal["running", "awaiting", "finished", "failed"]


class StoreError(WorkflowError):
    """A storage operation failed."""


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


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """Registry search: every given criterion must hold; results ordered by (updated_at, key)."""

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


class Store(Protocol):
    """Persistence for workflow instances. Each method is atomic."""

    async def initialize(self) -> None:
        """Create or migrate the schema; safe to call from many processes at once."""
        ...

    async def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...

    async def create(
        self, key: InstanceKey, now: datetime, next_wakeup: datetime | None = None
    ) -> bool:
        """Register the instance (awaiting, with ``next_wakeup``) if absent; True if created."""
        ...

    async def create_leased(self, key: InstanceKey, owner: str, ttl: float, now: datetime) -> bool:
        """Register as running, leased to ``owner``, if unregistered and unleased; else no-op."""
        ...

    async def exists(self, key: InstanceKey) -> bool:
        """Whether the instance is registered."""
        ...

    async def read(self, key: InstanceKey, after: int = 0) -> list[JournalEntry]:
        """Journal entries with sequence > ``after``, in order."""
        ...

    async def append(self, key: InstanceKey, expected: int, events: Sequence[NewEvent]) -> None:
        """Append ``events`` as #expected+1.. atomically, or raise SequenceConflict."""
        ...

    async def acquire(
        self, key: InstanceKey, owner: str, ttl: float, wait: float, now: datetime
    ) -> None:
        """Lease to ``owner`` for ``ttl`` seconds, waiting up to ``wait`` (else LeaseTimeout)."""
        ...

    async def renew(self, key: InstanceKey, owner: str, ttl: float, now: datetime) -> None:
        """Extend ``owner``'s lease, or raise LeaseLost if it no longer holds it."""
        ...

    async def release(
        self, key: InstanceKey, owner: str, update: RegistryUpdate | None = None
    ) -> None:
        """Give up ``owner``'s lease (no error if lost), with ``update`` written atomically."""
        ...

    async def save_snapshot(
        self, key: InstanceKey, snapshot: Snapshot, *, replace: bool = False
    ) -> None:
        """Keep ``snapshot`` unless a later one is kept; ``replace``: keep it in any case."""
        ...

    async def load_snapshot(self, key: InstanceKey) -> Snapshot | None:
        """The latest snapshot, if any."""
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
        """Set status, wakeup (None clears it), tags; count ``error``, else reset (or keep)."""
        ...

    async def claim_due(
        self, now: datetime, limit: int, lease: float, workflows: Sequence[str] | None = None
    ) -> list[Claim]:
        """Claim up to ``limit`` due, unclaimed wakeups (of ``workflows`` only, if given)."""
        ...

    async def next_wakeup(
        self, after: datetime, workflows: Sequence[str] | None = None
    ) -> datetime | None:
        """The earliest wakeup later than ``after`` (of ``workflows`` only, if given)."""
        ...

    async def get_record(self, key: InstanceKey) -> InstanceRecord | None:
        """The registry row of one instance."""
        ...

    async def search(self, query: SearchQuery) -> Page:
        """Registry rows matching ``query``."""
        ...

    async def stale(
        self, now: datetime, limit: int, workflows: Sequence[str] | None = None
    ) -> list[InstanceKey]:
        """Running instances whose lease lapsed (process died mid-step), of ``workflows``."""
        ...

    async def wait_for_work(self, timeout: float) -> None:
        """Return when a wakeup may have become due (or early: a hint), or after timeout."""
        ...
