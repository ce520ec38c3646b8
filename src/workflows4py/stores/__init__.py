"""Stores: where journals, snapshots, the instance registry, wakeups and leases are kept.

``Store`` is the protocol a runtime drives; ``MemoryStore``, ``SqliteStore`` and
``PostgresStore`` implement it. ``PostgresStore`` needs the ``postgres`` extra
(``pip install workflows4py[postgres]``); it is imported on first use, so the other stores
work without psycopg installed.
"""

import typing

from ._journal import JournalEntry
from ._memory import MemoryStore
from ._protocol import (
    Claim,
    InstanceKey,
    InstanceRecord,
    LeaseLost,
    LeaseTimeout,
    NewEvent,
    Page,
    RegistryStatus,
    RegistryUpdate,
    SearchQuery,
    SequenceConflict,
    Snapshot,
    Store,
    StoreError,
    StoreReadOnly,
    StoreUnavailable,
)
from ._sqlite import SqliteStore

if typing.TYPE_CHECKING:
    from ._postgres import PostgresStore

__all__ = [
    "Claim",
    "InstanceKey",
    "InstanceRecord",
    "JournalEntry",
    "LeaseLost",
    "LeaseTimeout",
    "MemoryStore",
    "NewEvent",
    "Page",
    "PostgresStore",
    "RegistryStatus",
    "RegistryUpdate",
    "SearchQuery",
    "SequenceConflict",
    "Snapshot",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoreReadOnly",
    "StoreUnavailable",
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
