"""Stores: where journals, snapshots, the instance registry, wakeups and leases are kept.

``Store`` is the protocol a runtime drives; ``MemoryStore``, ``SqliteStore`` and
``PostgresStore`` implement it. It combines one small protocol per capability:
``StoreLifecycle`` (initialize, close), ``JournalStore``, ``SnapshotStore``,
``RegistryStore``, and on a registry ``LeaseStore``, ``WakeupStore`` and ``RetentionStore``;
a store of your own is checked with the conformance suites of ``workflows4py.testing``,
and can batch its writes with ``GroupCommit``.

``PostgresStore`` needs the ``postgres`` extra (``pip install workflows4py[postgres]``); it
is imported on first use, so the other stores work without psycopg installed.
"""

import typing

from ._group import GroupCommit
from ._journal import JournalEntry
from ._memory import MemoryStore
from ._protocol import (
    Claim,
    InstanceKey,
    InstanceRecord,
    JournalStore,
    LeaseLost,
    LeaseStore,
    LeaseTimeout,
    NewEvent,
    Page,
    RegistryStatus,
    RegistryStore,
    RegistryUpdate,
    RetentionStore,
    SearchQuery,
    SearchSort,
    SequenceConflict,
    Snapshot,
    SnapshotStore,
    Store,
    StoreError,
    StoreLifecycle,
    StoreReadOnly,
    StoreUnavailable,
    WakeupStore,
)
from ._sqlite import SqliteStore

if typing.TYPE_CHECKING:
    from ._postgres import PostgresStore

__all__ = [
    "Claim",
    "GroupCommit",
    "InstanceKey",
    "InstanceRecord",
    "JournalEntry",
    "JournalStore",
    "LeaseLost",
    "LeaseStore",
    "LeaseTimeout",
    "MemoryStore",
    "NewEvent",
    "Page",
    "PostgresStore",
    "RegistryStatus",
    "RegistryStore",
    "RegistryUpdate",
    "RetentionStore",
    "SearchQuery",
    "SearchSort",
    "SequenceConflict",
    "Snapshot",
    "SnapshotStore",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoreLifecycle",
    "StoreReadOnly",
    "StoreUnavailable",
    "WakeupStore",
]


_LAZY = ("PostgresStore",)  # imported on first use: it needs psycopg


def __getattr__(name: str) -> typing.Any:
    if name == "PostgresStore":
        try:
            from ._postgres import PostgresStore
        except ImportError as error:  # psycopg missing
            raise ImportError(
                "PostgresStore needs psycopg: pip install 'workflows4py[postgres]'"
            ) from error
        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
