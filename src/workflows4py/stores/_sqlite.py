"""The SQLite store: every instance in one database file, safe across processes on one host.

Design choices:

- **WAL mode, short write transactions.** Readers never block the writer and vice versa;
  writers queue on SQLite's single write lock, waiting up to ``busy_timeout`` seconds.
  Multi-statement writes run in ``BEGIN IMMEDIATE`` transactions, which take the write lock
  up front: a deferred transaction that reads first and writes later can fail at once with
  SQLITE_BUSY when another process commits in between. A single-statement write takes the
  lock at its start as well. No transaction ever spans an ``await``.
- **A lease is a row, never a held transaction.** Holding a transaction open for the length
  of a step would block every other writer of the file (all instances, all processes) and
  would die with the process without a trace. A row with an owner and an expiry instant
  costs one short write, lets other instances proceed, and says who holds what.
- **The primary key (workflow, instance_id, sequence) is the final fence.** A lease can
  lapse mid-step (a long pause, a clock jump); the next owner and the old one may then both
  append. Each event is inserted only if its predecessor exists, and the key refuses a second
  event with the same number, so one append wins and the other gets SequenceConflict: a
  history can never fork or have a gap, whatever happened to the leases.
- **synchronous=FULL by default.** With WAL, FULL makes every commit fsync the WAL, so a
  committed event survives power loss; that fsync is most of the cost of a commit (about
  0.1 ms on a server SSD, several ms on consumer disks). NORMAL skips it (commits survive a
  crash of the process but the last ones may be lost on power loss); OFF also skips the
  checkpoint syncs and can corrupt the file on power loss.
- **One connection, used inline by default.** A call runs on the event loop's thread, with
  SQLite's busy timeout at zero: when another connection holds the write lock, the call
  fails at once and is retried after an ``asyncio.sleep`` (backing off from 0.5 ms to
  50 ms, up to ``busy_timeout`` seconds in all), so waiting for another process never
  blocks the loop. What does block it is the statement itself, the commit's fsync included
  (about 0.1 ms on a server SSD, more on consumer disks, and an occasional WAL checkpoint).
  A hand-off to a thread costs as much as that fsync on a small machine, hence the default.
  ``threaded=True`` gives the store a worker thread holding its connection instead:
  coroutines hand it jobs and await the result, so the loop stays free during commits, at
  the price of a thread hop per call (and the thread waits on the busy timeout itself).
- **Instants are integers**: microseconds since the Unix epoch, UTC. Exact round-trip,
  cheap comparisons and indexes.
- **Schema versions** are rows of the ``migrations`` table; ``initialize`` reads the version
  first and, only if it is behind, applies the missing ones in one ``BEGIN IMMEDIATE``
  transaction, so concurrent initialisers serialise and a current schema is never written.
  The file belongs to the store: keep other tables elsewhere.
- **The path must name the file the store holds.** A file deleted, moved away or replaced
  (a restore renaming a new file over the path) is still the one an open connection reads
  and writes, and writes to it would be acknowledged and lost. The store remembers the
  (device, inode) of the file it opened and compares it with ``stat(path)`` before each
  read and before each commit: a mismatch raises StoreUnavailable. One stat, a few µs.
- **Read-only use.** ``read_only=True``, or a file (or directory) this process cannot write
  (asked of the kernel with access(2)), opens the file with ``mode=ro``; writes raise
  StoreReadOnly before touching it. A WAL file that no process has open has no ``-shm``
  index; if the directory cannot be written none can be created, and SQLite reads the file
  only as ``immutable``, which the store does while no ``-wal`` file appears beside it.
- **Rows are checked as they are read.** SQLite does not enforce column types; a row that
  does not hold what the schema says raises DecodeError naming the instance (and the event
  or snapshot's sequence number), and a search reports it in ``Page.errors``.

Changes are signalled to waiters (``acquire``, ``wait_for_work``, ``wait_for_change``) of
every store on the same file *in this process*; changes made by other processes are noticed
by polling (every 0.1 s): ``acquire`` retries, ``wait_for_work`` watches ``PRAGMA
data_version`` (so any commit by another process wakes it: it is a hint, as the contract
allows), and ``wait_for_change`` returns after 0.05 s at most, for its caller to look again.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import queue
import sqlite3
import threading
import time
import urllib.parse
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, ClassVar, Literal, TypeVar, cast, get_args

from workflows4py._errors import DecodeError

from ._common import (
    _check_limit,
    _check_page,
    _key_of,
    _Pulse,
    _purge_args,
    _StoreBase,
    _utc,
)
from ._group import GroupCommit
from ._journal import JournalEntry
from ._journal import entry as _entry_of
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
    StoreReadOnly,
    StoreUnavailable,
    no_schema,
)
from ._rows import (
    _SORT_COLUMNS,
    _STATUSES,
    _claims,
    _corrupt,
    _counted,
    _criteria,
    _keys,
    _page,
    _record,
    _too_new,
)

_log = logging.getLogger("workflows4py")

__all__ = ["SqliteStore"]

T = TypeVar("T")

# Seconds between looks for other processes' changes while waiting (acquire, wait_for_work).
_POLL = 0.1
# The longest wait_for_change waits: SQLite tells no process of another's commits.
_CHANGE_POLL = 0.05
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Below this many microseconds after the epoch (year 2096), ``datetime.fromtimestamp(us / 1e6)``
# is exactly ``_EPOCH + timedelta(microseconds=us)``, in half the time: the quotient is off
# by less than 2**-53 of 4e9 s (under 0.5 microseconds), and fromtimestamp rounds to the
# nearest microsecond.
_FAST_US = 4_000_000_000_000_000
_at = datetime.fromtimestamp
_MICROSECOND = timedelta(microseconds=1)


# The text-valued tags of the row NEW into instance_tags, for the triggers (tags that are
# not a JSON object have none; migration 4 does the same for the rows already there).
_INSERT_NEW_TAGS = """INSERT OR IGNORE INTO instance_tags
    SELECT NEW.workflow, NEW.instance_id, t.key, t.value
    FROM json_each(CASE WHEN NOT json_valid(NEW.tags) THEN '{}'
        WHEN json_type(NEW.tags) = 'object' THEN NEW.tags ELSE '{}' END) AS t
    WHERE t.type = 'text'"""

# The same with the row's instants (migration 5: instance_tags carries them, for the order).
_INSERT_NEW_TIMED_TAGS = """INSERT OR IGNORE INTO instance_tags
        (workflow, instance_id, key, value, updated_at, created_at)
    SELECT NEW.workflow, NEW.instance_id, t.key, t.value, NEW.updated_at, NEW.created_at
    FROM json_each(CASE WHEN NOT json_valid(NEW.tags) THEN '{}'
        WHEN json_type(NEW.tags) = 'object' THEN NEW.tags ELSE '{}' END) AS t
    WHERE t.type = 'text'"""

# The instance_tags rows of one instance, deleted (in a trigger, of the OLD row).
_DROP_OLD_TAGS = """DELETE FROM instance_tags
    WHERE workflow = OLD.workflow AND instance_id = OLD.instance_id"""

# Schema versions, oldest first. Never edit a released migration: append a new one.
_MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "journal, registry, leases, snapshots",
        (
            # The journal; the primary key is the fence against forked histories.
            """CREATE TABLE journal (
                workflow TEXT NOT NULL,
                instance_id TEXT NOT NULL,
                sequence INTEGER NOT NULL CHECK (sequence > 0),
                type TEXT NOT NULL,
                data TEXT NOT NULL,
                recorded_at INTEGER NOT NULL,
                PRIMARY KEY (workflow, instance_id, sequence)
            )""",
            # The registry: one row per instance, for search, wakeups and recovery.
            """CREATE TABLE instances (
                workflow TEXT NOT NULL,
                instance_id TEXT NOT NULL,
                status TEXT NOT NULL
                    CHECK (status IN ('running', 'awaiting', 'finished', 'failed')),
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                next_wakeup INTEGER,
                claimed_until INTEGER,
                tags TEXT NOT NULL DEFAULT '{}',
                PRIMARY KEY (workflow, instance_id)
            ) WITHOUT ROWID""",
            "CREATE INDEX instances_updated ON instances (updated_at, workflow, instance_id)",
            "CREATE INDEX instances_created ON instances (created_at)",
            "CREATE INDEX instances_due ON instances (next_wakeup) WHERE next_wakeup IS NOT NULL",
            "CREATE INDEX instances_running ON instances (updated_at) WHERE status = 'running'",
            # Leases: who may run an instance, until when. Independent of the registry, so an
            # instance can be leased before it is registered.
            """CREATE TABLE leases (
                workflow TEXT NOT NULL,
                instance_id TEXT NOT NULL,
                owner TEXT NOT NULL,
                until INTEGER NOT NULL,
                PRIMARY KEY (workflow, instance_id)
            ) WITHOUT ROWID""",
            # The latest snapshot of each instance.
            """CREATE TABLE snapshots (
                workflow TEXT NOT NULL,
                instance_id TEXT NOT NULL,
                sequence INTEGER NOT NULL,
                data TEXT NOT NULL,
                PRIMARY KEY (workflow, instance_id)
            )""",
        ),
    ),
    (
        2,
        "registry: failures in a row and the last error",
        (
            "ALTER TABLE instances ADD COLUMN failures INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE instances ADD COLUMN last_error TEXT",
            "CREATE INDEX instances_failing ON instances (updated_at) WHERE failures > 0",
        ),
    ),
    (
        3,
        "registry: the terminated and parked statuses",
        (
            # SQLite cannot alter a CHECK constraint: the table is rebuilt, rows kept.
            """CREATE TABLE instances_v3 (
                workflow TEXT NOT NULL,
                instance_id TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN
                    ('running', 'awaiting', 'finished', 'failed', 'terminated', 'parked')),
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                next_wakeup INTEGER,
                claimed_until INTEGER,
                tags TEXT NOT NULL DEFAULT '{}',
                failures INTEGER NOT NULL DEFAULT 0,
                last_error TEXT,
                PRIMARY KEY (workflow, instance_id)
            ) WITHOUT ROWID""",
            """INSERT INTO instances_v3 (workflow, instance_id, status, created_at, updated_at,
                next_wakeup, claimed_until, tags, failures, last_error)
            SELECT workflow, instance_id, status, created_at, updated_at, next_wakeup,
                claimed_until, tags, failures, last_error FROM instances""",
            "DROP TABLE instances",
            "ALTER TABLE instances_v3 RENAME TO instances",
            "CREATE INDEX instances_updated ON instances (updated_at, workflow, instance_id)",
            "CREATE INDEX instances_created ON instances (created_at)",
            "CREATE INDEX instances_due ON instances (next_wakeup) WHERE next_wakeup IS NOT NULL",
            "CREATE INDEX instances_running ON instances (updated_at) WHERE status = 'running'",
            "CREATE INDEX instances_failing ON instances (updated_at) WHERE failures > 0",
        ),
    ),
    (
        4,
        "registry: indexes for search at scale, tags in an indexed table",
        (
            # Pages sorted by creation, and searches by status or workflow and status, in
            # the order of the result: served by an index at any depth (keyset paging).
            "DROP INDEX instances_created",
            "CREATE INDEX instances_created ON instances (created_at, workflow, instance_id)",
            # (a runtime's own instances by creation: instance_ids)
            """CREATE INDEX instances_workflow_created
                ON instances (workflow, created_at, instance_id)""",
            """CREATE INDEX instances_status
                ON instances (status, updated_at, workflow, instance_id)""",
            """CREATE INDEX instances_workflow_status
                ON instances (workflow, status, updated_at, instance_id)""",
            # The text-valued tags of each row, one row per tag, kept by the triggers below
            # (a row whose tags are not a JSON object has none): a tag search is a lookup.
            """CREATE TABLE instance_tags (
                workflow TEXT NOT NULL,
                instance_id TEXT NOT NULL,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (workflow, instance_id, key, value)
            ) WITHOUT ROWID""",
            "CREATE INDEX instance_tags_value ON instance_tags (key, value)",
            f"""CREATE TRIGGER instance_tags_insert AFTER INSERT ON instances BEGIN
                {_INSERT_NEW_TAGS}; END""",
            # (a change of key too: rows altered by hand keep their tags searchable)
            """CREATE TRIGGER instance_tags_update AFTER UPDATE OF tags, workflow, instance_id
                ON instances WHEN NEW.tags IS NOT OLD.tags OR NEW.workflow IS NOT OLD.workflow
                    OR NEW.instance_id IS NOT OLD.instance_id BEGIN """
            f"{_DROP_OLD_TAGS}; {_INSERT_NEW_TAGS}; END",
            "CREATE TRIGGER instance_tags_delete AFTER DELETE ON instances BEGIN "
            f"{_DROP_OLD_TAGS}; END",
            # The rows already there.
            """INSERT OR IGNORE INTO instance_tags SELECT i.workflow, i.instance_id, t.key, t.value
                FROM instances AS i, json_each(CASE WHEN NOT json_valid(i.tags) THEN '{}'
                    WHEN json_type(i.tags) = 'object' THEN i.tags ELSE '{}' END) AS t
                WHERE t.type = 'text'""",
        ),
    ),
    (
        5,
        "registry: tags carry their instance's instants, indexed in search order",
        (
            # A search by tag sorted by update (or creation) reads the tag's rows in that
            # order from one index and stops after its page, instead of looking up every
            # instance with the tag to sort them all: each tag row carries the instants of
            # its instance, kept equal to them by the triggers below.
            "ALTER TABLE instance_tags ADD COLUMN updated_at INTEGER",
            "ALTER TABLE instance_tags ADD COLUMN created_at INTEGER",
            """UPDATE instance_tags SET (updated_at, created_at) = (
                SELECT i.updated_at, i.created_at FROM instances AS i
                WHERE i.workflow = instance_tags.workflow
                    AND i.instance_id = instance_tags.instance_id)""",
            # (key, value) of migration 4 is a prefix of both
            "DROP INDEX instance_tags_value",
            """CREATE INDEX instance_tags_updated
                ON instance_tags (key, value, updated_at, workflow, instance_id)""",
            """CREATE INDEX instance_tags_created
                ON instance_tags (key, value, created_at, workflow, instance_id)""",
            "DROP TRIGGER instance_tags_insert",
            "DROP TRIGGER instance_tags_update",
            f"""CREATE TRIGGER instance_tags_insert AFTER INSERT ON instances BEGIN
                {_INSERT_NEW_TIMED_TAGS}; END""",
            """CREATE TRIGGER instance_tags_update AFTER UPDATE OF tags, workflow, instance_id
                ON instances WHEN NEW.tags IS NOT OLD.tags OR NEW.workflow IS NOT OLD.workflow
                    OR NEW.instance_id IS NOT OLD.instance_id BEGIN """
            f"{_DROP_OLD_TAGS}; {_INSERT_NEW_TIMED_TAGS}; END",
            # the same tags, new instants (every registry update sets updated_at)
            """CREATE TRIGGER instance_tags_instants AFTER UPDATE OF updated_at, created_at
                ON instances WHEN NEW.tags IS OLD.tags AND NEW.workflow IS OLD.workflow
                    AND NEW.instance_id IS OLD.instance_id
                    AND (NEW.updated_at IS NOT OLD.updated_at
                        OR NEW.created_at IS NOT OLD.created_at) BEGIN
                UPDATE instance_tags SET updated_at = NEW.updated_at, created_at = NEW.created_at
                WHERE workflow = NEW.workflow AND instance_id = NEW.instance_id; END""",
        ),
    ),
)

# Every query of the store, by name. Instants are microseconds since the epoch (UTC).
_SQL: dict[str, str] = {
    # Schema bookkeeping: which migrations were applied.
    "migrations_table": """CREATE TABLE IF NOT EXISTS migrations (
        version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at INTEGER NOT NULL
    )""",
    "migrations_current": "SELECT coalesce(max(version), 0) FROM migrations",
    # Whether the migrations table exists (a read: initialize writes only when it must).
    "migrations_exists": """SELECT 1 FROM sqlite_master
        WHERE type = 'table' AND name = 'migrations'""",
    "migrations_record": "INSERT INTO migrations VALUES (?, ?, ?)",
    # Journal entries of one instance after a sequence number, in order.
    "read": """SELECT sequence, type, data, recorded_at FROM journal
        WHERE workflow = ? AND instance_id = ? AND sequence > ? ORDER BY sequence""",
    # One event (executemany'd), written only if its predecessor exists (or it is #1): with
    # the primary key this keeps every journal gapless and unforked.
    "append": """INSERT INTO journal (workflow, instance_id, sequence, type, data, recorded_at)
        SELECT ?1, ?2, ?3, ?4, ?5, ?6
        WHERE ?3 = 1 OR EXISTS (
            SELECT 1 FROM journal WHERE workflow = ?1 AND instance_id = ?2 AND sequence = ?3 - 1
        )""",
    # Where a journal ends (0 when empty); used to explain a SequenceConflict.
    "last_sequence": """SELECT coalesce(max(sequence), 0) FROM journal
        WHERE workflow = ? AND instance_id = ?""",
    # Register an instance unless it is already registered.
    "create": """INSERT INTO instances
            (workflow, instance_id, status, created_at, updated_at, next_wakeup)
        VALUES (?, ?, 'awaiting', ?, ?, ?) ON CONFLICT DO NOTHING""",
    # Register an instance as running (inside the transaction that also takes its lease).
    "create_running": """INSERT INTO instances
            (workflow, instance_id, status, created_at, updated_at)
        VALUES (?, ?, 'running', ?, ?) ON CONFLICT DO NOTHING""",
    # Whether an instance is registered.
    "exists": "SELECT 1 FROM instances WHERE workflow = ? AND instance_id = ?",
    # One registry row.
    "record": """SELECT workflow, instance_id, status, created_at, updated_at, next_wakeup, tags,
            failures, last_error
        FROM instances WHERE workflow = ? AND instance_id = ?""",
    # Set status, wakeup and tags; a changed wakeup is unclaimed (an unchanged one keeps its
    # claim); an error is counted, no error resets the count.
    "update": """UPDATE instances
        SET status = ?1, next_wakeup = ?2, tags = ?3, updated_at = ?4,
            claimed_until = CASE WHEN next_wakeup IS ?2 THEN claimed_until END,
            failures = CASE WHEN ?8 THEN failures WHEN ?5 IS NULL THEN 0 ELSE failures + 1 END,
            last_error = CASE WHEN ?8 THEN last_error ELSE ?5 END
        WHERE workflow = ?6 AND instance_id = ?7""",
    # Take the lease if it is free, lapsed (until <= ?5) or already ours; changes() says if.
    "lease_take": """INSERT INTO leases (workflow, instance_id, owner, until)
        VALUES (?1, ?2, ?3, ?4)
        ON CONFLICT (workflow, instance_id) DO UPDATE
        SET owner = excluded.owner, until = excluded.until
        WHERE leases.owner = excluded.owner OR leases.until <= ?5""",
    # Who holds a lease, until when.
    "lease_holder": "SELECT owner, until FROM leases WHERE workflow = ? AND instance_id = ?",
    # Extend a lease, only if the owner still holds it.
    "lease_renew": """UPDATE leases SET until = ?
        WHERE workflow = ? AND instance_id = ? AND owner = ?""",
    # Give a lease up, only if the owner still holds it.
    "lease_release": "DELETE FROM leases WHERE workflow = ? AND instance_id = ? AND owner = ?",
    # Keep a snapshot unless a later one (higher sequence) is already kept.
    "snapshot_save": """INSERT INTO snapshots (workflow, instance_id, sequence, data)
        VALUES (?, ?, ?, ?)
        ON CONFLICT (workflow, instance_id) DO UPDATE
        SET sequence = excluded.sequence, data = excluded.data
        WHERE excluded.sequence >= snapshots.sequence OR ?""",
    # The kept snapshot.
    "snapshot_load": "SELECT sequence, data FROM snapshots WHERE workflow = ? AND instance_id = ?",
    # Due wakeups nobody holds a live claim on, earliest first.
    # (?3: a JSON list of workflow names, or NULL for all)
    "due": """SELECT workflow, instance_id, next_wakeup FROM instances
        WHERE next_wakeup <= ?1 AND (claimed_until IS NULL OR claimed_until <= ?1)
            AND (?3 IS NULL OR workflow IN (SELECT value FROM json_each(?3)))
        ORDER BY next_wakeup, workflow, instance_id LIMIT ?2""",
    # The earliest wakeup after an instant (?2: as for "due").
    "next_wakeup": """SELECT next_wakeup, workflow, instance_id FROM instances
        WHERE next_wakeup > ?1 AND (?2 IS NULL OR workflow IN (SELECT value FROM json_each(?2)))
        ORDER BY next_wakeup LIMIT 1""",
    # Claim one due wakeup until an instant.
    "claim": "UPDATE instances SET claimed_until = ? WHERE workflow = ? AND instance_id = ?",
    # Running instances without a live lease: their process died mid-step.
    "stale": """SELECT i.workflow, i.instance_id FROM instances AS i
        LEFT JOIN leases AS l ON l.workflow = i.workflow AND l.instance_id = i.instance_id
        WHERE i.status = 'running' AND (l.until IS NULL OR l.until <= ?1)
            AND (?3 IS NULL OR i.workflow IN (SELECT value FROM json_each(?3)))
        ORDER BY i.updated_at, i.workflow, i.instance_id LIMIT ?2""",
    # Instances to purge: of the statuses (?1: a JSON list), updated before ?2, without a
    # live lease at ?3, of the workflows (?5: as for "due"); oldest update first.
    "purge_select": """SELECT i.workflow, i.instance_id FROM instances AS i
        LEFT JOIN leases AS l ON l.workflow = i.workflow AND l.instance_id = i.instance_id
        WHERE i.status IN (SELECT value FROM json_each(?1)) AND i.updated_at < ?2
            AND (l.until IS NULL OR l.until <= ?3)
            AND (?5 IS NULL OR i.workflow IN (SELECT value FROM json_each(?5)))
        ORDER BY i.updated_at, i.workflow, i.instance_id LIMIT ?4""",
    # Purge one instance (executemany'd, in the transaction of "purge_select"): its journal,
    # snapshot, lease and registry row.
    "purge_journal": "DELETE FROM journal WHERE workflow = ? AND instance_id = ?",
    "purge_snapshot": "DELETE FROM snapshots WHERE workflow = ? AND instance_id = ?",
    "purge_lease": "DELETE FROM leases WHERE workflow = ? AND instance_id = ?",
    "purge_instance": "DELETE FROM instances WHERE workflow = ? AND instance_id = ?",
    # Search: how many rows match {where} (built from _FILTERS, ANDed).
    "search_count": """SELECT count(*) FROM (
            SELECT 1 FROM instances WHERE {where} LIMIT :count_limit)""",
    # The same for a search by tag, from its first tag's rows (as "search_page_tagged";
    # {where} leaves the first tag out): no list of all its instances is built first.
    "search_count_tagged": """SELECT count(*) FROM (
            SELECT 1 FROM (SELECT workflow AS tag_workflow, instance_id AS tag_instance_id
                FROM instance_tags WHERE key = :tag_key0 AND value = :tag_value0) AS t0
            CROSS JOIN instances
                ON workflow = t0.tag_workflow AND instance_id = t0.tag_instance_id
            WHERE {where} LIMIT :count_limit)""",
    # Search: one page of the matches, in ({sort}, workflow, instance_id) order, {sort} being
    # a column of _SORT_COLUMNS; {where} may add the keyset condition (_FILTERS["after"]).
    "search_page": """SELECT workflow, instance_id, status, created_at, updated_at, next_wakeup,
            tags, failures, last_error
        FROM instances WHERE {where}
        ORDER BY {sort} {order}, workflow {order}, instance_id {order}
        LIMIT :limit OFFSET :offset""",
    # The same for a search by tag: the rows of its first tag (:tag_key0 = :tag_value0) in
    # ({sort}, workflow, instance_id) order, read from the index of instance_tags on that
    # order (their columns renamed, so {where} names the instance's), each joined to its
    # instance (CROSS JOIN: in that order); {where} leaves the first tag out and may add
    # the keyset condition (_FILTERS["tag_after"]).
    "search_page_tagged": """SELECT workflow, instance_id, status, created_at, updated_at,
            next_wakeup, tags, failures, last_error
        FROM (SELECT workflow AS tag_workflow, instance_id AS tag_instance_id,
                updated_at AS tag_updated_at, created_at AS tag_created_at
            FROM instance_tags WHERE key = :tag_key0 AND value = :tag_value0) AS t0
        CROSS JOIN instances ON workflow = t0.tag_workflow AND instance_id = t0.tag_instance_id
        WHERE {where}
        ORDER BY t0.tag_{sort} {order}, t0.tag_workflow {order}, t0.tag_instance_id {order}
        LIMIT :limit OFFSET :offset""",
}

# Search criteria as SQL conditions, by SearchQuery field.
_FILTERS: dict[str, str] = {
    "workflow": "workflow = :workflow",
    "created_from": "created_at >= :created_from",
    "created_to": "created_at < :created_to",
    "updated_from": "updated_at >= :updated_from",
    "updated_to": "updated_at < :updated_to",
    "wakeup_before": "next_wakeup < :wakeup_before",
    "failing": "failures > 0",
    "not_failing": "failures = 0",
    # {n} numbers the status placeholders / the tag.
    "status": "status = :status{n}",
    # (instance_tags holds the text-valued tags of each row, kept by triggers: indexed.)
    "tag": """(workflow, instance_id) IN (SELECT workflow, instance_id FROM instance_tags
        WHERE key = :tag_key{n} AND value = :tag_value{n})""",
    # The keyset of a page ("after"): rows after (or, {cmp} being <, before) the last one
    # seen, {sort} being a column of _SORT_COLUMNS.
    "after": "({sort}, workflow, instance_id) {cmp} (:after_at, :after_workflow, :after_id)",
    # The same on the columns of "search_page_tagged"'s first tag.
    "tag_after": """(t0.tag_{sort}, t0.tag_workflow, t0.tag_instance_id)
        {cmp} (:after_at, :after_workflow, :after_id)""",
}


def _or_all(limit: int | None) -> int:
    """A LIMIT for SQLite: -1 stands for none."""
    return -1 if limit is None else limit


# SQLite primary result codes meaning "the database cannot be used right now".
_UNAVAILABLE_CODES = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
    }
)

# SQLITE_READONLY_DIRECTORY (not in the sqlite3 module of every Python version).
_SQLITE_READONLY_DIRECTORY = sqlite3.SQLITE_READONLY | (6 << 8)

# A job for the worker thread: what to run, and where to send the result.
_Job = tuple[Callable[["_Connection"], Any], asyncio.AbstractEventLoop, asyncio.Future[Any]]


def _us(instant: datetime) -> int:
    return (_utc(instant) - _EPOCH) // _MICROSECOND


def _opt_us(instant: datetime | None) -> int | None:
    return None if instant is None else _us(instant)


def _dt(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _journal_rows(
    key: InstanceKey, expected: int, events: Sequence[NewEvent]
) -> list[tuple[Any, ...]]:
    """The parameters of the ``append`` statement for ``events`` as #expected+1, ..."""
    wf, iid = key.workflow, key.instance_id
    return [
        (wf, iid, seq, e.type, e.data, _us(e.recorded_at))
        for seq, e in enumerate(events, start=expected + 1)
    ]


def _update_params(key: InstanceKey, u: RegistryUpdate, keep: bool = False) -> tuple[Any, ...]:
    """The parameters of the ``update`` statement."""
    tags = json.dumps(u.tags, separators=(",", ":"), sort_keys=True)
    wakeup = _opt_us(u.next_wakeup)
    return (u.status, wakeup, tags, _us(u.now), u.error, key.workflow, key.instance_id, keep)


# -- rows read back: a row that does not hold what the schema says is a DecodeError ----------
#
# SQLite does not enforce column types (a TEXT can sit in an INTEGER column), so every row is
# checked as it is converted: a fast path of type() tests, and only for a bad row a slow one
# that finds the culprit column and says what it holds.

_INSTANT = "an INTEGER (microseconds since the Unix epoch, UTC)"
_NONE = type(None)

# (column, accepted Python types, what it must hold) per kind of row, in SELECT order.
_Columns = tuple[tuple[str, tuple[type, ...], str], ...]
_JOURNAL_COLUMNS: _Columns = (
    ("sequence", (int,), "an INTEGER"),
    ("type", (str,), "TEXT"),
    ("data", (str,), "TEXT (JSON)"),
    ("recorded_at", (int,), _INSTANT),
)
_RECORD_COLUMNS: _Columns = (
    ("workflow", (str,), "TEXT"),
    ("instance_id", (str,), "TEXT"),
    ("status", (str,), "one of " + ", ".join(repr(s) for s in get_args(RegistryStatus))),
    ("created_at", (int,), _INSTANT),
    ("updated_at", (int,), _INSTANT),
    ("next_wakeup", (int, _NONE), f"{_INSTANT} or NULL"),
    ("tags", (str,), "TEXT: a JSON object of strings"),
    ("failures", (int,), "an INTEGER"),
    ("last_error", (str, _NONE), "TEXT or NULL"),
)
_SNAPSHOT_COLUMNS: _Columns = (("sequence", (int,), "an INTEGER"), ("data", (str,), "TEXT (JSON)"))
_LEASE_COLUMNS: _Columns = (("owner", (str,), "TEXT"), ("until", (int,), _INSTANT))
_DUE_COLUMNS: _Columns = (
    ("workflow", (str,), "TEXT"),
    ("instance_id", (str,), "TEXT"),
    ("next_wakeup", (int,), _INSTANT),
)
_NEXT_WAKEUP_COLUMNS: _Columns = (
    ("next_wakeup", (int,), _INSTANT),
    ("workflow", (str,), "TEXT"),
    ("instance_id", (str,), "TEXT"),
)
_STALE_COLUMNS: _Columns = (("workflow", (str,), "TEXT"), ("instance_id", (str,), "TEXT"))
_SQL_TYPES = {int: "INTEGER", float: "REAL", str: "TEXT", bytes: "BLOB", _NONE: "NULL"}


def _shown(value: object) -> str:
    kind = _SQL_TYPES.get(type(value), type(value).__name__)
    if value is None:
        return kind
    text = repr(value)
    return f"{kind} {text[:60]}{'...' if len(text) > 60 else ''}"


def _column_problem(row: Sequence[Any], columns: _Columns) -> tuple[str, str] | None:
    """The first column of ``row`` that does not hold what it must: (name, what is wrong)."""
    for value, (name, types, expected) in zip(row, columns, strict=True):
        if type(value) not in types:
            return name, f"holds {_shown(value)}, expected {expected}"
        if expected.startswith(_INSTANT) and type(value) is int:
            try:
                _dt(value)
            except OverflowError:
                return name, f"holds {value}, too far from 1970 to be an instant"
        if name == "status" and value not in _STATUSES:
            return name, f"holds {_shown(value)}, expected {expected}"
    return None


def _row_error(
    table: str,
    row: Sequence[Any],
    columns: _Columns,
    key: InstanceKey | None,
    *,
    sequence: int | None = None,
    problem: tuple[str, str] | None = None,
    where: str = "",
) -> DecodeError:
    """A DecodeError naming the instance (and event) of a stored row that does not decode."""
    if problem is None:
        problem = _column_problem(row, columns) or ("", "does not decode")
    column, what = problem
    if key is None:  # the key comes from the row itself
        names = [c[0] for c in columns]
        wf, iid = row[names.index("workflow")], row[names.index("instance_id")]
        key = InstanceKey(
            wf if type(wf) is str else repr(wf), iid if type(iid) is str else repr(iid)
        )
    path = f"{table}.{column}" if column else table
    return _corrupt(table, what, path=path, key=key, sequence=sequence, where=where)


def _entries(key: InstanceKey, rows: list[Any], after: int) -> list[JournalEntry]:
    """Journal rows as entries."""
    entries: list[JournalEntry] = []
    add = entries.append
    try:
        for seq, type_, data, at in rows:
            if type(seq) is int and type(type_) is str and type(data) is str and type(at) is int:
                # an instant of 1970 to 2096 by the float way, exact there (see _FAST_US)
                when = _at(at / 1e6, UTC) if 0 <= at < _FAST_US else _EPOCH + timedelta(0, 0, at)
                add(_entry_of(seq, type_, data, when))
            else:
                break
        else:
            return entries
    except OverflowError:
        pass
    bad = rows[len(entries)]
    seq = bad[0] if type(bad[0]) is int else None
    previous = entries[-1].sequence if entries else after
    where = "" if seq is not None else f" after event #{previous}"
    raise _row_error("journal", bad, _JOURNAL_COLUMNS, key, sequence=seq, where=where)


def _instant(value: Any) -> datetime:
    """A stored instant (TypeError if it is not an INTEGER, OverflowError if out of range)."""
    if type(value) is not int:
        raise TypeError(value)
    return _dt(value)


def _tags(value: Any) -> dict[str, str]:
    """Stored tags (TypeError, or ValueError: not JSON, unless a JSON object of strings)."""
    decoded = json.loads(value) if type(value) is str else None
    if type(decoded) is dict and all(type(v) is str for v in decoded.values()):
        return decoded
    raise TypeError(value)


def _registry_record(row: Sequence[Any]) -> InstanceRecord:
    return _record(row, _instant, _tags, _record_problem)


def _record_problem(row: Sequence[Any]) -> DecodeError:
    """Why the registry ``row`` does not decode."""
    tags = row[6]
    problem = _column_problem(row, _RECORD_COLUMNS)
    if problem is None:
        try:
            json.loads(tags)
        except ValueError as e:
            problem = ("tags", f"holds {_shown(tags)}, which is not JSON ({e})")
        else:
            problem = ("tags", f"holds {_shown(tags)}, expected a JSON object of strings")
    return _row_error("instances", row, _RECORD_COLUMNS, None, problem=problem)


def _translate(e: sqlite3.Error) -> StoreError:
    code = getattr(e, "sqlite_errorcode", None)
    if isinstance(code, int) and (code & 0xFF) in _UNAVAILABLE_CODES:
        return StoreUnavailable(f"SQLite database unavailable: {e}")
    if isinstance(code, int) and (code & 0xFF) == sqlite3.SQLITE_READONLY:
        return StoreReadOnly(
            f"SQLite database cannot be written ({e}, {getattr(e, 'sqlite_errorname', '')}): "
            "this process may read it but not write it; nothing was written"
        )
    return StoreError(f"SQLite error: {e}")


def _is_busy(e: sqlite3.Error) -> bool:
    """Whether ``e`` says another connection holds a lock (worth retrying shortly)."""
    code = getattr(e, "sqlite_errorcode", None)
    if isinstance(code, int):
        return (code & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(e) or "busy" in str(e)


def _set_result(fut: asyncio.Future[Any], result: Any) -> None:
    if not fut.done():
        fut.set_result(result)


def _set_exception(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)


class _Signals:
    """Wake-up pulses shared by every store on one file in this process."""

    def __init__(self) -> None:
        self.released = _Pulse()
        self.work = _Pulse()


_SIGNALS: weakref.WeakValueDictionary[str, _Signals] = weakref.WeakValueDictionary()
_SIGNALS_LOCK = threading.Lock()


def _signals_for(path: str) -> _Signals:
    with _SIGNALS_LOCK:
        signals = _SIGNALS.get(path)
        if signals is None:
            signals = _SIGNALS[path] = _Signals()
        return signals


class _Connection(sqlite3.Connection):
    """A connection that knows which file it opened, and whether it may write it."""

    path: str  # absolute
    identity: tuple[int, int] | None  # (st_dev, st_ino) of the file opened; None: not a file
    read_only: str | None  # why this connection may not write, or None
    immutable: bool  # opened with immutable=1: watch for a writer's -wal file

    def check(self) -> None:
        """Raise StoreUnavailable unless the path still names the file this connection holds.

        A file deleted, moved away or replaced (a restore renaming a new file over the path)
        under an open connection is still the one the connection reads and writes: its
        writes would be acknowledged and lost. One stat() of the path tells.
        """
        if self.identity is None:
            return
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            problem = "no longer exists: it was deleted or moved away"
        except OSError as e:
            problem = f"cannot be checked ({e})"
        else:
            if (st.st_dev, st.st_ino) == self.identity:
                if not self.immutable or not os.path.exists(self.path + "-wal"):
                    return
                problem = (
                    "was opened as an immutable file (read-only, in a directory this process "
                    "cannot write, with no -wal file), and another process has since opened "
                    "it for writing"
                )
            else:
                problem = "now names another file: it was replaced (by a restore, say)"
        raise StoreUnavailable(
            f"SQLite database {self.path} {problem} since this store opened it; the store "
            "still holds the file it opened, so nothing was read from or written to it: "
            "close the store and open it again (restart the process) to use the file the "
            "path names now"
        )


def _cannot_write(path: str) -> str | None:
    """Why this process cannot write the file at ``path`` (None if it can, or it is absent).

    The kernel's answer (access(2)), so permission bits, a read-only mount and an immutable
    file all count, as do the capabilities of a root process. (Not by opening the file: a
    process that closes any descriptor of a SQLite file drops the POSIX locks its other
    connections hold on it.)
    """
    if not os.path.exists(path):
        return None
    if os.access(path, os.W_OK, effective_ids=os.access in os.supports_effective_ids):
        return None
    return (
        "this process cannot write the file (its permissions, a read-only mount or an "
        "immutable file)"
    )


def _is_read_only_error(e: sqlite3.Error) -> bool:
    code = getattr(e, "sqlite_errorcode", None)
    return isinstance(code, int) and (code & 0xFF) == sqlite3.SQLITE_READONLY


def _open(uri: str, busy_timeout: float) -> _Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves. The timeout is the busy
    # timeout: how long a writer waits for another connection's write lock.
    return sqlite3.connect(
        uri, timeout=busy_timeout, isolation_level=None, uri=True, factory=_Connection
    )


def _connect(
    path: str, synchronous: str, busy_timeout: float, read_only: bool = False
) -> _Connection:
    """Open ``path`` (absolute): writable in WAL mode, or read-only if asked or it must be."""
    memory = path in ("", ":memory:")
    base = "file::memory:" if memory else "file:" + urllib.parse.quote(path)
    reason = "read_only=True" if read_only else None
    if reason is None and not memory:
        reason = _cannot_write(path)
    conn: _Connection | None = None
    immutable = False
    if reason is None:
        conn, reason = _open_writable(base, synchronous, busy_timeout)
    if conn is None:
        conn, immutable = _open_read_only(path, base, busy_timeout)
    conn.path = path
    conn.read_only = reason
    conn.immutable = immutable
    conn.identity = None
    if not memory:
        try:
            st = os.stat(path)
        except OSError as e:
            conn.close()
            raise StoreUnavailable(f"SQLite database {path} cannot be opened: {e}") from e
        conn.identity = (st.st_dev, st.st_ino)
    return conn


def _open_writable(
    base: str, synchronous: str, busy_timeout: float
) -> tuple[_Connection | None, str | None]:
    """A writable connection in WAL mode, or (None, why) if the file cannot be written."""
    conn = _open(base, busy_timeout)
    try:
        # Switching a new file to WAL needs an exclusive lock and, unlike other statements,
        # does not wait on the busy handler: processes opening the file at once retry here.
        deadline = time.monotonic() + busy_timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        conn.execute(f"PRAGMA synchronous = {synchronous}")
    except sqlite3.Error as e:
        conn.close()
        if not _is_read_only_error(e):
            raise
        if getattr(e, "sqlite_errorcode", None) == _SQLITE_READONLY_DIRECTORY:
            return None, (
                "this process cannot write its directory, where SQLite keeps the -wal and "
                "-shm files"
            )
        return None, f"this process cannot write it: {e}"
    except BaseException:
        conn.close()
        raise
    return conn, None


def _open_read_only(path: str, base: str, busy_timeout: float) -> tuple[_Connection, bool]:
    """A read-only connection (``mode=ro``), and whether it had to be ``immutable``."""
    if not os.path.exists(path):
        raise StoreUnavailable(
            f"SQLite database {path} does not exist (opened read-only, so it is not created)"
        )
    conn = _open(base + "?mode=ro", busy_timeout)
    try:
        conn.execute("PRAGMA schema_version").fetchone()  # opens the file (and WAL index)
    except sqlite3.Error as e:
        conn.close()
        # A WAL file read-only needs its -shm index; with no process holding the file open
        # there is none, and none can be created in a directory this process cannot write.
        # Then nobody is writing the file either: read it as immutable, and watch for a
        # writer's -wal file at every call (see _Connection.check).
        if not _is_read_only_error(e) or os.path.exists(path + "-wal"):
            raise
        return _open(base + "?mode=ro&immutable=1", busy_timeout), True
    return conn, False


class _Stop:
    """Tells the worker thread to close its connection and end; ``done`` learns when."""

    __slots__ = ("done",)

    def __init__(self, done: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None):
        self.done = done


class _Worker:
    """A thread owning one connection (opened by its first job), running jobs in order."""

    def __init__(self, connect: Callable[[], _Connection], name: str) -> None:
        self._connect = connect
        self._jobs: queue.SimpleQueue[_Job | _Stop] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[_Connection], T]) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._jobs.put((job, loop, fut))
        return fut

    def stop(self) -> asyncio.Future[None]:
        """Close the connection after the jobs already submitted, and end the thread."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._jobs.put(_Stop((loop, fut)))
        return fut

    def abandon(self) -> None:
        """Like :meth:`stop`, for when nobody awaits the end."""
        self._jobs.put(_Stop(None))

    def _run(self) -> None:
        conn: _Connection | None = None
        while not isinstance(item := self._jobs.get(), _Stop):
            job, loop, fut = item
            try:
                if conn is None:
                    conn = self._connect()
                result = job(conn)
            except BaseException as e:
                loop.call_soon_threadsafe(_set_exception, fut, e)
            else:
                loop.call_soon_threadsafe(_set_result, fut, result)
        try:
            if conn is not None:
                conn.close()
        finally:
            if item.done is not None and not item.done[0].is_closed():
                item.done[0].call_soon_threadsafe(_set_result, item.done[1], None)


def _refuse_read_only(conn: _Connection, what: str) -> None:
    if conn.read_only is not None:
        raise StoreReadOnly(
            f"SQLite database {conn.path} is opened read-only ({conn.read_only}): {what} "
            "refused; nothing was written"
        )


class _Undo(Exception):
    """Raised by a write job that found it must write nothing after all: what it wrote is
    rolled back (its transaction, or its savepoint in a batch) and ``result`` is its answer."""

    def __init__(self, result: object) -> None:
        super().__init__(result)
        self.result = result


_Write = tuple[InstanceKey, str, Callable[["_Connection"], Any], bool]
"""A write of one instance, for a group commit: its key, what it is (for errors), the job,
and whether it is one statement (which undoes only itself if it fails, SQLite's ABORT)."""


def _writes_together(conn: _Connection, writes: Sequence[_Write]) -> list[Any]:
    """The jobs of several instances in the open transaction: each one's answer. A job of
    several statements runs in a savepoint of its own, so that what it undoes (``_Undo``)
    or what fails in it with a typed error of its own is only its part; any other error
    fails the whole transaction (the group commit then writes each job alone)."""
    results: list[Any] = []
    for _, _, job, one_statement in writes:
        if one_statement:
            results.append(job(conn))
            continue
        conn.execute("SAVEPOINT job")
        try:
            result = job(conn)
        except _Undo as undo:
            conn.execute("ROLLBACK TO job")
            result = undo.result
        except StoreError as e:
            conn.execute("ROLLBACK TO job")
            result = e
        conn.execute("RELEASE job")
        results.append(result)
    return results


def _write_tx(conn: _Connection, job: Callable[[_Connection], T], what: str) -> T:
    """Run ``job`` in a ``BEGIN IMMEDIATE`` transaction; commit (or, if ``job`` raised
    ``_Undo``, roll back and return its answer), or roll back on error.

    Every write of the store goes through here or ``_write_now``. A read-only connection
    refuses it before anything happens. Before COMMIT, with the file's write lock held, the
    path must still name the file the connection holds (``check``), so a write is not
    acknowledged once the file was deleted or replaced, which would lose it. (Only a swap
    in the instant between that check and the commit's end can escape it: a write
    concurrent with the swap, as likely to land before it as after.)
    """
    _refuse_read_only(conn, what)
    conn.execute("BEGIN IMMEDIATE")
    try:
        try:
            result = job(conn)
        except _Undo as undo:
            conn.rollback()
            result = cast(T, undo.result)  # the job's answer
        except Exception as e:
            # An answer read from a file the path no longer names (a SequenceConflict, say)
            # would mislead: say what happened to the file instead.
            try:
                conn.check()
            except StoreUnavailable as lost:
                raise lost from e
            raise
        conn.check()  # also when the job was undone: its answer came from this file
        if conn.in_transaction:
            conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
    return result


def _write_now(conn: _Connection, job: Callable[[_Connection], T], what: str) -> T:
    """Run the one-statement ``job`` in autocommit, right after the path's check.

    For connections with a busy timeout of zero only (the inline ones): their statement
    never waits for another connection's lock, so it commits as soon after the check as it
    would in ``_write_tx``, and the CPU of a BEGIN and a COMMIT (about a fifth of an append's)
    is saved. A busy statement fails at once and is retried, check included.
    """
    _refuse_read_only(conn, what)
    conn.check()
    return job(conn)


def _checked_read(conn: _Connection, job: Callable[[_Connection], T]) -> T:
    """Run the read ``job`` once the path is known to still name the connection's file."""
    conn.check()
    return job(conn)


class SqliteStore(_StoreBase):
    """A :class:`~workflows4py.stores.Store` in one SQLite file (WAL mode).

    ``read_only=True`` opens the file read-only (``mode=ro``): reads work, every write
    raises StoreReadOnly, and ``initialize`` only checks that the schema is current. A file
    this process cannot write is opened that way by itself.

    ``group_commit=True`` (the default): the writes of different instances that are ready at
    the same time (tasks of this event loop) commit in one ``BEGIN IMMEDIATE`` transaction:
    one-event appends, creations, lease and registry writes, snapshots; each caller returns
    once that transaction has committed, and a write that conflicts fails alone. ``False``
    commits each write by itself.
    """

    MIGRATIONS: ClassVar[tuple[tuple[int, str, tuple[str, ...]], ...]] = _MIGRATIONS
    """The schema's migrations, as data: ``(version, description, statements)``, oldest first."""
    SQL: ClassVar[Mapping[str, str]] = MappingProxyType(_SQL)
    """Every statement the store runs, by name (read-only)."""
    _LEASE_POLL = _POLL

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Literal["FULL", "NORMAL", "OFF"] = "FULL",
        busy_timeout: float = 30.0,
        threaded: bool = False,
        read_only: bool = False,
        group_commit: bool = True,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL", "OFF"):
            raise ValueError(f"synchronous must be FULL, NORMAL or OFF, got {synchronous!r}")
        if not busy_timeout >= 0:
            raise ValueError(f"busy_timeout must be a number of seconds >= 0, got {busy_timeout!r}")
        self._path = os.fspath(path)
        # Absolute, so that a later chdir changes neither the file opened nor the one checked.
        self._file = self._path if self._path in ("", ":memory:") else os.path.abspath(self._path)
        self._synchronous = synchronous
        self._busy_timeout = busy_timeout
        self._threaded = threaded
        self._read_only = bool(read_only)
        self._conn: _Connection | None = None  # inline mode
        self._worker: _Worker | None = None  # threaded mode
        self._finalizer: weakref.finalize[[], SqliteStore] | None = None
        self._closed = False
        # held: the pulses every store on this file in this process shares
        self._signals = _signals_for(os.path.realpath(self._path))
        self._released = self._signals.released
        self._work = self._signals.work
        self._work_seen = self._work.generation
        self._seen_version: int | None = None
        self._seen_now()
        # the writes of different instances that are ready together commit together
        self._group: GroupCommit[_Write, Any] | None = None
        if group_commit:
            self._group = GroupCommit(
                self._write_alone, self._writes_together, _key_of, gather=not threaded
            )

    def __repr__(self) -> str:
        threaded = ", threaded=True" if self._threaded else ""
        read_only = ", read_only=True" if self._read_only else ""
        return (
            f"SqliteStore({self._path!r}, synchronous={self._synchronous!r}{threaded}{read_only})"
        )

    async def _run(self, job: Callable[[_Connection], T]) -> T:
        if self._closed:
            raise StoreError(f"{self!r} is closed")
        if not self._threaded:
            return await self._run_inline(job)
        if self._worker is None:
            connect = functools.partial(
                _connect, self._file, self._synchronous, self._busy_timeout, self._read_only
            )
            worker = _Worker(connect, f"workflows4py-sqlite:{self._path}")
            # A store dropped without close() still ends its thread and connection.
            self._finalizer = weakref.finalize(self, worker.abandon)
            self._worker = worker
        try:
            return await self._worker.submit(job)
        except sqlite3.Error as e:
            raise _translate(e) from e

    async def _run_inline(self, job: Callable[[_Connection], T]) -> T:
        """Run ``job`` on this thread; retry it asynchronously while the database is busy."""
        deadline: float | None = None
        pause = 0.0005
        while True:
            try:
                conn = self._conn
                if conn is None:
                    conn = self._conn = _connect(self._file, self._synchronous, 0, self._read_only)
                return job(conn)
            except sqlite3.Error as e:
                if self._conn is not None and self._conn.in_transaction:
                    self._conn.rollback()
                if not _is_busy(e):
                    raise _translate(e) from e
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self._busy_timeout
                if now >= deadline:
                    raise _translate(e) from e
                await asyncio.sleep(min(pause, deadline - now))
                pause = min(pause * 2, 0.05)

    def _read(self, job: Callable[[_Connection], T]) -> Awaitable[T]:
        """Run the read-only ``job``, once the path is known to name the file still."""
        return self._run(functools.partial(_checked_read, job=job))

    def _write(
        self, job: Callable[[_Connection], T], what: str, *, one_statement: bool = False
    ) -> Awaitable[T]:
        """Run ``job`` in one write transaction (see ``_write_tx`` and ``_write_now``)."""
        write = _write_now if one_statement and not self._threaded else _write_tx
        return self._run(functools.partial(write, job=job, what=what))

    async def _write_of(
        self,
        key: InstanceKey,
        job: Callable[[_Connection], T],
        what: str,
        *,
        one_statement: bool = False,
    ) -> T:
        """``_write`` for a write of instance ``key`` alone: with group commit on, in one
        transaction with the writes of other instances that are ready too."""
        if self._group is None:
            return await self._write(job, what, one_statement=one_statement)
        result: T = await self._group.submit((key, what, job, one_statement))
        return result

    def _write_alone(self, item: _Write) -> Awaitable[Any]:
        _, what, job, one_statement = item
        return self._write(job, what, one_statement=one_statement)

    def _writes_together(self, items: Sequence[_Write]) -> Awaitable[list[Any]]:
        return self._write(functools.partial(_writes_together, writes=items), "write")

    async def initialize(self) -> None:
        """A schema already current is only read, never written: so a read-only database with a
        current schema initializes, and one without raises StoreReadOnly.
        """

        def job(conn: _Connection) -> None:
            current = _schema_version(conn)
            if current == _MIGRATIONS[-1][0]:
                return
            if conn.read_only is not None and current < _MIGRATIONS[-1][0]:
                has = f"at version {current}" if current else "missing (a new file)"
                raise StoreReadOnly(
                    f"SQLite database {conn.path} is opened read-only ({conn.read_only}), and "
                    f"its schema is {has} where this version of workflows4py needs version "
                    f"{_MIGRATIONS[-1][0]}; it cannot be created or migrated, nothing was "
                    "written: open it once writable to migrate it"
                )
            _write_tx(conn, _migrate, "creating or migrating the schema")

        await self._read(job)

    async def check_schema(self) -> None:
        """:meth:`initialize` that only reads: StoreError if the file is missing or its schema
        is not current; nothing is written, not even the file created (it is read through a
        read-only connection of its own)."""
        latest = _MIGRATIONS[-1][0]
        if self._closed:
            raise StoreError(f"{self!r} is closed")
        if self._file in ("", ":memory:"):
            raise no_schema(f"SQLite database {self._path!r} (in memory)", 0, latest)
        if not os.path.exists(self._file):
            raise no_schema(f"SQLite database {self._file} (which does not exist)", 0, latest)

        def check() -> int:
            conn = _connect(self._file, self._synchronous, self._busy_timeout, read_only=True)
            try:
                return _schema_version(conn)
            finally:
                conn.close()

        try:
            current = await asyncio.to_thread(check)
        except sqlite3.Error as e:
            raise _translate(e) from e
        if current < latest:
            raise no_schema(f"SQLite database {self._file}", current, latest)

    async def close(self) -> None:
        if self._closed:
            return
        worker, self._worker = self._worker, None
        conn, self._conn = self._conn, None
        self._closed = True
        if conn is not None:
            conn.close()
        if self._finalizer is not None:
            self._finalizer.detach()
        if worker is not None:
            await asyncio.shield(worker.stop())
        self._released.fire()
        self._work.fire()

    async def create(
        self, key: InstanceKey, now: datetime, next_wakeup: datetime | None = None
    ) -> bool:
        at = _us(now)
        wakeup = None if next_wakeup is None else _us(next_wakeup)
        params = (key.workflow, key.instance_id, at, at, wakeup)
        created = await self._write_of(
            key,
            lambda conn: conn.execute(_SQL["create"], params).rowcount == 1,
            "create",
            one_statement=True,
        )
        if created and wakeup is not None:
            self._work.fire()
        return bool(created)

    async def create_leased(
        self,
        key: InstanceKey,
        owner: str,
        ttl: float,
        now: datetime,
        events: Sequence[NewEvent] = (),
    ) -> bool:
        wf, iid = key.workflow, key.instance_id
        at, until = _us(now), _us(now + timedelta(seconds=ttl))
        rows = _journal_rows(key, 0, events)

        def job(conn: _Connection) -> bool:
            if not conn.execute(_SQL["create_running"], (wf, iid, at, at)).rowcount:
                return False
            if not conn.execute(_SQL["lease_take"], (wf, iid, owner, until, at)).rowcount:
                raise _Undo(False)  # leased to another owner: undo the row
            if rows:
                last = _last_sequence(conn, key)
                if last:  # (the write lock is held: nobody appends meanwhile)
                    raise SequenceConflict(key, 0, last)  # rolled back: nothing written
                conn.executemany(_SQL["append"], rows)
            return True

        return await self._write_of(key, job, "create_leased")

    async def exists(self, key: InstanceKey) -> bool:
        params = (key.workflow, key.instance_id)
        row = await self._read(lambda conn: conn.execute(_SQL["exists"], params).fetchone())
        return row is not None

    async def read(self, key: InstanceKey, after: int = 0) -> list[JournalEntry]:
        params = (key.workflow, key.instance_id, after)
        rows = await self._read(lambda conn: conn.execute(_SQL["read"], params).fetchall())
        return _entries(key, rows, after)

    async def append(self, key: InstanceKey, expected: int, events: Sequence[NewEvent]) -> None:
        if not events:
            return
        rows = _journal_rows(key, expected, events)
        if len(rows) == 1:  # one INSERT, which undoes only itself if it fails
            row = rows[0]
            conflict = await self._write_of(
                key,
                lambda conn: _append_rows(conn, key, expected, [row], rollback=False),
                "append",
                one_statement=True,
            )
        else:  # several: alone, so that a conflict can roll back the transaction
            conflict = await self._write(
                lambda conn: _append_rows(conn, key, expected, rows, rollback=True), "append"
            )
        if conflict is not None:
            raise conflict

    def _take_lease(
        self, key: InstanceKey, owner: str, ttl: float, at: datetime
    ) -> Awaitable[tuple[str, datetime] | None]:
        params = (key.workflow, key.instance_id, owner, _us(at + timedelta(seconds=ttl)), _us(at))

        def take(conn: _Connection) -> tuple[str, datetime] | None:
            if conn.execute(_SQL["lease_take"], params).rowcount == 1:
                return None
            row = conn.execute(_SQL["lease_holder"], params[:2]).fetchone()
            holder, held_until = row
            if type(holder) is not str or type(held_until) is not int:
                raise _row_error("leases", row, _LEASE_COLUMNS, key)
            try:
                return holder, _dt(held_until)
            except OverflowError:
                raise _row_error("leases", row, _LEASE_COLUMNS, key) from None

        return self._write_of(key, take, "acquire")

    async def renew(self, key: InstanceKey, owner: str, ttl: float, now: datetime) -> None:
        params = (_us(now + timedelta(seconds=ttl)), key.workflow, key.instance_id, owner)
        renewed = await self._write_of(
            key,
            lambda conn: conn.execute(_SQL["lease_renew"], params).rowcount,
            "renew",
            one_statement=True,
        )
        if not renewed:
            raise LeaseLost(f"{owner!r} does not hold the lease of {key}")

    def _release_lease(self, key: InstanceKey, owner: str) -> Awaitable[int]:
        params = (key.workflow, key.instance_id, owner)
        return self._write_of(
            key,
            lambda conn: conn.execute(_SQL["lease_release"], params).rowcount,
            "release",
            one_statement=True,
        )

    def _release_updating(
        self, key: InstanceKey, owner: str, update: RegistryUpdate
    ) -> Awaitable[tuple[int, int]]:
        params = (key.workflow, key.instance_id, owner)
        row = _update_params(key, update)

        def job(conn: _Connection) -> tuple[int, int]:
            if not conn.execute(_SQL["update"], row).rowcount:
                return 0, 0  # not registered: nothing written
            return 1, conn.execute(_SQL["lease_release"], params).rowcount

        # one transaction, one commit (one fsync) for both
        return self._write_of(key, job, "release")

    async def save_snapshot(
        self, key: InstanceKey, snapshot: Snapshot, *, replace: bool = False
    ) -> None:
        params = (key.workflow, key.instance_id, snapshot.sequence, snapshot.data, replace)
        await self._write_of(
            key,
            lambda conn: conn.execute(_SQL["snapshot_save"], params),
            "save_snapshot",
            one_statement=True,
        )

    async def load_snapshot(self, key: InstanceKey) -> Snapshot | None:
        params = (key.workflow, key.instance_id)
        row = await self._read(lambda conn: conn.execute(_SQL["snapshot_load"], params).fetchone())
        if row is None:
            return None
        sequence, data = row
        if type(sequence) is not int or type(data) is not str:
            seq = sequence if type(sequence) is int else None
            raise _row_error("snapshots", row, _SNAPSHOT_COLUMNS, key, sequence=seq)
        return Snapshot(sequence, data)

    def _update_row(self, key: InstanceKey, update: RegistryUpdate, keep: bool) -> Awaitable[int]:
        params = _update_params(key, update, keep)
        return self._write_of(
            key,
            lambda conn: conn.execute(_SQL["update"], params).rowcount,
            "update",
            one_statement=True,
        )

    async def claim_due(
        self, now: datetime, limit: int, lease: float, workflows: Sequence[str] | None = None
    ) -> list[Claim]:
        _check_limit("limit", limit)
        at, until = _us(now), _us(now + timedelta(seconds=lease))
        end = _dt(until)
        names = None if workflows is None else json.dumps(list(workflows))

        def due(wakeup: Any) -> datetime:
            try:  # a wakeup of the wrong type is claimed as due now
                return _dt(wakeup) if type(wakeup) is int else now
            except OverflowError:
                return now

        def claim(conn: _Connection) -> list[Claim]:
            rows = conn.execute(_SQL["due"], (at, limit, names)).fetchall()
            claims = _claims(rows, end, due, _skip_due)
            conn.executemany(
                _SQL["claim"], [(until, c.key.workflow, c.key.instance_id) for c in claims]
            )
            return claims

        def claim_if_any(conn: _Connection) -> list[Claim]:
            # an idle worker's look costs a read, not the file's write lock
            if not _checked_read(conn, lambda c: c.execute(_SQL["due"], (at, 1, names)).fetchone()):
                return []
            return _write_tx(conn, claim, "claim_due")

        return await self._run(claim_if_any)

    async def next_wakeup(
        self, after: datetime, workflows: Sequence[str] | None = None
    ) -> datetime | None:
        names = None if workflows is None else json.dumps(list(workflows))
        params = (_us(after), names)
        row = await self._read(lambda conn: conn.execute(_SQL["next_wakeup"], params).fetchone())
        if row is None:
            return None
        if type(row[0]) is int:
            try:
                return _dt(row[0])
            except OverflowError:
                pass
        raise _row_error("instances", row, _NEXT_WAKEUP_COLUMNS, None)

    async def get_record(self, key: InstanceKey) -> InstanceRecord | None:
        params = (key.workflow, key.instance_id)
        row = await self._read(lambda conn: conn.execute(_SQL["record"], params).fetchone())
        return None if row is None else _registry_record(row)

    async def search(self, query: SearchQuery) -> Page:
        after = _check_page(query)
        where, params = _where(query)
        count_sql = _SQL["search_count"].format(where=where)
        order = "DESC" if query.descending else "ASC"
        sort = _SORT_COLUMNS[query.sort]
        page_params = {**params, "limit": query.limit, "offset": query.offset}
        tagged = bool(query.tags)  # the page is read in order from its first tag's rows
        if tagged:
            where, _ = _where(query, first_tag=False)
            count_sql = _SQL["search_count_tagged"].format(where=where)
        if after is not None:  # the keyset narrows the page, not the count
            keyset = _FILTERS["tag_after" if tagged else "after"].format(
                sort=sort, cmp="<" if query.descending else ">"
            )
            where = f"{where} AND {keyset}"
            at, workflow, instance_id = after
            page_params.update(after_at=_us(at), after_workflow=workflow, after_id=instance_id)
        page_sql = _SQL["search_page_tagged" if tagged else "search_page"].format(
            where=where, order=order, sort=sort
        )

        def search(conn: _Connection) -> tuple[int, list[Any]]:
            # One read transaction: the count and the page see the same snapshot.
            conn.execute("BEGIN")
            try:
                counted = {**params, "count_limit": _or_all(_counted(query))}
                total: int = conn.execute(count_sql, counted).fetchone()[0]
                rows = conn.execute(page_sql, page_params).fetchall()
            finally:
                conn.execute("COMMIT")
            return total, rows

        total, rows = await self._read(search)
        return _page(query, total, rows, _registry_record)

    async def stale(
        self, now: datetime, limit: int, workflows: Sequence[str] | None = None
    ) -> list[InstanceKey]:
        _check_limit("limit", limit)
        params = (_us(now), limit, None if workflows is None else json.dumps(list(workflows)))
        rows = await self._read(lambda conn: conn.execute(_SQL["stale"], params).fetchall())
        return [key for key, _ in _keys(rows, _refuse_stale)]

    async def purge(
        self,
        statuses: Sequence[RegistryStatus],
        before: datetime,
        now: datetime,
        limit: int,
        workflows: Sequence[str] | None = None,
    ) -> list[InstanceKey]:
        """A row whose key does not decode is purged like the others, and logged, not
        returned. With nothing to purge, the file's write lock is not taken."""
        wanted, before, now = _purge_args(statuses, before, now, limit)
        names = None if workflows is None else json.dumps(list(workflows))
        params = [json.dumps(wanted), _us(before), _us(now), limit, names]

        def purge(conn: _Connection) -> list[InstanceKey]:
            rows = conn.execute(_SQL["purge_select"], params).fetchall()
            keys = [tuple(row) for row in rows]
            for table in ("journal", "snapshot", "lease", "instance"):
                conn.executemany(_SQL[f"purge_{table}"], keys)
            return [key for key, _ in _keys(rows, _skip_purged)]

        def purge_if_any(conn: _Connection) -> list[InstanceKey]:
            one = [*params[:3], 1, names]
            if not _checked_read(conn, lambda c: c.execute(_SQL["purge_select"], one).fetchone()):
                return []
            return _write_tx(conn, purge, "purge")

        return await self._run(purge_if_any)

    async def wait_for_work(self, timeout: float) -> None:
        """Changes by this process are signalled; other processes' commits are seen by
        polling PRAGMA data_version, which moves when another connection commits. Both are
        latched: a change since the previous call returns at once.
        """
        work = self._work
        deadline = time.monotonic() + timeout
        while True:
            version = await self._read(_data_version)
            if self._seen_version is None:
                self._seen_version = version
            remaining = deadline - time.monotonic()
            if version != self._seen_version or work.generation != self._work_seen:
                break
            if remaining <= 0:
                break
            await work.wait(self._work_seen, min(remaining, _POLL))
        self._seen_version = version
        self._work_seen = work.generation

    async def wait_for_change(self, timeout: float) -> None:
        """A cheap poll: returns after ``min(timeout, 0.05)`` seconds at most, sooner when a
        store on the same file in this process releases a lease or sets a wakeup (latched:
        one since the previous call returns at once). SQLite tells no process of another's
        commits, so the caller looks at the database again after each return.
        """
        if self._closed:
            raise StoreError(f"{self!r} is closed")
        await self._wait_for_change(min(timeout, _CHANGE_POLL))


def _skip_due(row: Sequence[Any]) -> None:
    _log.warning("due wakeup skipped: %s", _row_error("instances", row, _DUE_COLUMNS, None))


def _skip_purged(row: Sequence[Any]) -> None:
    _log.warning("purged: %s", _row_error("instances", row, _STALE_COLUMNS, None))


def _refuse_stale(row: Sequence[Any]) -> None:
    raise _row_error("instances", row, _STALE_COLUMNS, None)


def _data_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


def _schema_version(conn: sqlite3.Connection) -> int:
    """The schema version of the file (0: no schema yet), by reading only."""
    if conn.execute(_SQL["migrations_exists"]).fetchone() is None:
        return 0
    current = conn.execute(_SQL["migrations_current"]).fetchone()[0]
    latest = _MIGRATIONS[-1][0]
    if type(current) is not int:
        raise StoreError(
            f"the migrations table holds a version that is not an integer: {current!r}"
        )
    if current > latest:
        raise _too_new("the database schema", current, latest)
    return current


def _migrate(conn: sqlite3.Connection) -> None:
    conn.execute(_SQL["migrations_table"])
    current = _schema_version(conn)  # again, now with the write lock held
    for version, description, statements in _MIGRATIONS:
        if version > current:
            for statement in statements:
                conn.execute(statement)
            conn.execute(_SQL["migrations_record"], (version, description, _us(datetime.now(UTC))))


def _append_rows(
    conn: _Connection,
    key: InstanceKey,
    expected: int,
    rows: list[tuple[Any, ...]],
    *,
    rollback: bool,
) -> SequenceConflict | None:
    """Insert the journal ``rows`` of ``key`` after #``expected`` in the open write; the
    SequenceConflict if another writer got there first (then nothing of them is written:
    ``rollback`` the transaction, or, for one row, nothing was)."""
    try:
        if len(rows) == 1:
            written = conn.execute(_SQL["append"], rows[0]).rowcount
        else:
            written = conn.executemany(_SQL["append"], rows).rowcount
    except sqlite3.IntegrityError as e:
        if rollback and conn.in_transaction:
            conn.rollback()
        conflict = SequenceConflict(key, expected, _last_sequence(conn, key))
        conflict.__cause__ = e
        return conflict
    if written != len(rows):  # the first one's predecessor is missing (so none was written)
        return SequenceConflict(key, expected, _last_sequence(conn, key))
    return None


def _last_sequence(conn: sqlite3.Connection, key: InstanceKey) -> int:
    row = conn.execute(_SQL["last_sequence"], (key.workflow, key.instance_id)).fetchone()
    return int(row[0])


def _where(query: SearchQuery, *, first_tag: bool = True) -> tuple[str, dict[str, Any]]:
    """The ANDed conditions of ``query`` and their parameters (without the condition on the
    first tag, in key order, unless ``first_tag``; its parameters are there still)."""
    conditions: list[str] = []
    params: dict[str, Any] = {}
    for name, value in _criteria(query, _us).items():
        if name == "status":
            alternatives = [_FILTERS["status"].format(n=n) for n in range(len(value))]
            conditions.append(f"({' OR '.join(alternatives)})" if alternatives else "0")
            params.update({f"status{n}": s for n, s in enumerate(value)})
        elif name == "tags":
            for n, (k, v) in enumerate(sorted(value.items())):
                if n or first_tag:
                    conditions.append(_FILTERS["tag"].format(n=n))
                params[f"tag_key{n}"] = k
                params[f"tag_value{n}"] = v
        else:
            conditions.append(_FILTERS[name])
            params[name] = value
    return " AND ".join(conditions) or "1", params
