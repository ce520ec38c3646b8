"""The PostgreSQL store: stateless workers on any number of machines share one database.

Design choices:

- **The primary key (workflow, instance_id, sequence) is the final fence.** Leases make
  one worker at a time run an instance, but a lease can lapse mid-step (a GC pause, a
  partition, a slow effect) and a second worker take over while the first still runs. Both
  may then append; each append inserts its events only if the event before the first one
  exists, and the key refuses a second row with the same number, so exactly one wins and
  the other gets SequenceConflict. No interleaving of leases can fork a history or leave a
  gap, and the check costs nothing beyond the index the table needs anyway.
- **A lease is a row** (owner, until) in ``leases``, written by one short statement, never
  a transaction or a session advisory lock held for the length of a step: it survives
  connection loss, is visible to every worker (``stale`` finds instances whose worker died),
  does not pin a pooled connection, and lapses by itself. It is independent of the registry,
  so an instance can be leased before it is registered.
- **Each operation is one statement** in autocommit (several changes at once are one
  statement with data-modifying CTEs), so each is atomic and costs one round trip. An
  append writes journal rows only: the registry row is written as an operation starts and
  ends, so a step costs one indexed insert.
- **The warmest connection first.** Connections come from a psycopg pool, but the store
  keeps the ones it used on a stack and takes the most recently used one back first: a
  single-threaded caller then talks to one server process that stays scheduled, instead of
  waking each of the pool's connections in turn (the pool hands them out oldest first),
  which costs more than the statement itself on a small machine. A connection that broke or
  was left in a transaction goes back to the pool, which discards or resets it.
- **Due wakeups** are claimed with ``FOR UPDATE SKIP LOCKED``: concurrent workers claim
  disjoint sets without waiting for each other. A claim is a timestamp, so the wakeup of a
  worker that dies comes back once the claim lapses.
- **LISTEN/NOTIFY cuts latency**: setting a wakeup and releasing a lease notify the
  schema's channel; one listening connection per store wakes ``wait_for_work``,
  ``wait_for_change`` and waiting ``acquire`` calls, whichever process made the change.
  Notifications are only a hint: waiters also poll, so a lost connection costs latency,
  never correctness. That connection is opened by the first wait, outside the pool (so a
  store uses up to ``max_size + 1`` connections); until it listens, changes go unheard, so
  the first ``wait_for_work`` and the first ``wait_for_change`` return at once.
- **Payloads are ``text``, not ``jsonb``**: ``jsonb`` reorders keys and drops duplicates,
  and the journal must give back exactly the bytes it was given. Tags are ``jsonb``, so tag
  search uses a GIN index (``tags @> ...``).
- Text keys use ``COLLATE "C"``: ordering is by code point, as in Python and SQLite, and
  index comparisons are cheaper.
- **Schema versions** are rows of ``<schema>.migrations``; ``initialize`` applies the missing
  ones in one transaction under an advisory lock, so any number of processes may call it
  at once.

Driver errors are translated: connection failures and pool timeouts become
:class:`StoreUnavailable` (``connect_timeout`` bounds how long a call waits for a
connection), a duplicate event number becomes :class:`SequenceConflict`, anything else
:class:`StoreError`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from datetime import UTC, datetime, timedelta
from itertools import groupby
from types import MappingProxyType
from typing import Any, ClassVar, LiteralString, TypedDict, TypeVar, Unpack

import psycopg
from psycopg import pq, sql
from psycopg.adapt import Transformer
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from workflows4py._errors import DecodeError

from ._common import (
    _Append,
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
    _key,
    _keys,
    _page,
    _record,
    _too_new,
)

__all__ = ["PostgresStore"]

_log = logging.getLogger("workflows4py")
_T = TypeVar("_T")

# Schema versions, oldest first. Never edit a released migration: append a new one.
# {s} is the schema; literal braces are doubled.
_MIGRATIONS: tuple[tuple[int, str, tuple[LiteralString, ...]], ...] = (
    (
        1,
        "journal, registry, leases, snapshots",
        (
            # The journal; the primary key is the fence against forked histories.
            """CREATE TABLE {s}.journal (
                workflow text COLLATE "C" NOT NULL,
                instance_id text COLLATE "C" NOT NULL,
                sequence bigint NOT NULL CHECK (sequence > 0),
                type text NOT NULL,
                data text NOT NULL,
                recorded_at timestamptz NOT NULL,
                PRIMARY KEY (workflow, instance_id, sequence)
            )""",
            # The registry: one row per instance, for search, wakeups and recovery.
            """CREATE TABLE {s}.instances (
                workflow text COLLATE "C" NOT NULL,
                instance_id text COLLATE "C" NOT NULL,
                status text NOT NULL
                    CHECK (status IN ('running', 'awaiting', 'finished', 'failed')),
                created_at timestamptz NOT NULL,
                updated_at timestamptz NOT NULL,
                next_wakeup timestamptz,
                claimed_until timestamptz,
                tags jsonb NOT NULL DEFAULT '{{}}',
                PRIMARY KEY (workflow, instance_id)
            )""",
            "CREATE INDEX ON {s}.instances (updated_at, workflow, instance_id)",
            "CREATE INDEX ON {s}.instances (created_at)",
            "CREATE INDEX ON {s}.instances (next_wakeup) WHERE next_wakeup IS NOT NULL",
            "CREATE INDEX ON {s}.instances (updated_at) WHERE status = 'running'",
            "CREATE INDEX ON {s}.instances USING gin (tags jsonb_path_ops)",
            # Leases: who may run an instance, until when.
            """CREATE TABLE {s}.leases (
                workflow text COLLATE "C" NOT NULL,
                instance_id text COLLATE "C" NOT NULL,
                owner text NOT NULL,
                until timestamptz NOT NULL,
                PRIMARY KEY (workflow, instance_id)
            )""",
            # The latest snapshot of each instance.
            """CREATE TABLE {s}.snapshots (
                workflow text COLLATE "C" NOT NULL,
                instance_id text COLLATE "C" NOT NULL,
                sequence bigint NOT NULL,
                data text NOT NULL,
                PRIMARY KEY (workflow, instance_id)
            )""",
        ),
    ),
    (
        2,
        "registry: failures in a row and the last error",
        (
            "ALTER TABLE {s}.instances ADD COLUMN failures integer NOT NULL DEFAULT 0",
            "ALTER TABLE {s}.instances ADD COLUMN last_error text",
            "CREATE INDEX ON {s}.instances (updated_at) WHERE failures > 0",
        ),
    ),
    (
        3,
        "registry: the terminated and parked statuses",
        (
            "ALTER TABLE {s}.instances DROP CONSTRAINT instances_status_check",
            """ALTER TABLE {s}.instances ADD CONSTRAINT instances_status_check CHECK (status IN
                ('running', 'awaiting', 'finished', 'failed', 'terminated', 'parked'))""",
        ),
    ),
    (
        4,
        "registry: indexes for search at scale",
        (
            # Pages sorted by creation (of all workflows, or of one: a runtime's instance ids),
            # and searches by status or workflow and status in update order: each served by
            # an index in the order of the result, at any depth (keyset paging, "after").
            # (created_at) alone, of migration 1, is a prefix of the first: dropped.
            "DROP INDEX IF EXISTS {s}.instances_created_at_idx",
            "CREATE INDEX instances_created ON {s}.instances (created_at, workflow, instance_id)",
            """CREATE INDEX instances_workflow_created
                ON {s}.instances (workflow, created_at, instance_id)""",
            """CREATE INDEX instances_status
                ON {s}.instances (status, updated_at, workflow, instance_id)""",
            """CREATE INDEX instances_workflow_status
                ON {s}.instances (workflow, status, updated_at, instance_id)""",
        ),
    ),
    (
        5,
        "registry: due wakeups indexed in claim order",
        (
            # claim_due takes the earliest due wakeups in (next_wakeup, workflow,
            # instance_id) order: an index in that order hands them over in it, and the
            # claim stops after its LIMIT. On (next_wakeup) alone, of migration 1, the rows
            # sharing an instant (a burst of timers due at once) were sorted whole at every
            # claim. Its prefix serves next_wakeup too.
            "DROP INDEX IF EXISTS {s}.instances_next_wakeup_idx",
            """CREATE INDEX instances_due ON {s}.instances (next_wakeup, workflow, instance_id)
                WHERE next_wakeup IS NOT NULL""",
        ),
    ),
)

# Set status, wakeup and tags (a changed wakeup is unclaimed, an unchanged one keeps its claim),
# count an error or reset the count: the data-modifying CTE ``updated`` of "update" and
# "update_release".
_UPDATED: LiteralString = """updated AS (
            UPDATE {s}.instances
            SET status = %(status)s, next_wakeup = %(wakeup)s,
                claimed_until = CASE WHEN next_wakeup IS NOT DISTINCT FROM %(wakeup)s
                    THEN claimed_until END,
                tags = %(tags)s, updated_at = %(now)s,
                last_error = CASE WHEN %(keep)s THEN last_error ELSE %(error)s::text END,
                failures = CASE WHEN %(keep)s THEN failures
                    WHEN %(error)s::text IS NULL THEN 0 ELSE failures + 1 END
            WHERE workflow = %(w)s AND instance_id = %(i)s
            RETURNING next_wakeup, claimed_until
        )"""


# After ``updated``: notify workers of the row's wakeup if they may claim it (not one whose
# claim the update kept).
_NOTIFY_WAKEUP: LiteralString = """(SELECT pg_notify(%(channel)s, 'wakeup') FROM updated
                WHERE next_wakeup IS NOT NULL
                    AND (claimed_until IS NULL OR claimed_until <= %(now)s))"""


def _with_updated(*rest: LiteralString) -> LiteralString:
    """A statement starting ``WITH`` the CTE ``updated``, then ``rest``."""
    return "".join(("WITH ", _UPDATED, *rest))


# _UPDATED for several rows: the CTEs ``input`` (the rows' parameters, numbered n from 1)
# and ``updated`` (n of each row updated, and its wakeup and claim after the update). The
# rows are locked first, in key order (``locked``), as the statements alone would lock
# them one after the other: in any other order, two transactions can deadlock.
_UPDATED_MANY: LiteralString = """input AS (
            SELECT * FROM unnest(%(ws)b::text[], %(is)b::text[], %(statuses)b::text[],
                    %(wakeups)b::timestamptz[], %(tagss)b::jsonb[], %(nows)b::timestamptz[],
                    %(errors)b::text[], %(keeps)b::boolean[], %(owners)b::text[])
                WITH ORDINALITY AS u (w, i, status, wakeup, tags, now, error, keep, owner, n)
        ), locked AS MATERIALIZED (
            SELECT u.n FROM {s}.instances AS t JOIN input AS u
                ON t.workflow = u.w AND t.instance_id = u.i
            ORDER BY t.workflow, t.instance_id
            FOR UPDATE OF t
        ), updated AS (
            UPDATE {s}.instances AS t
            SET status = u.status, next_wakeup = u.wakeup,
                claimed_until = CASE WHEN t.next_wakeup IS NOT DISTINCT FROM u.wakeup
                    THEN t.claimed_until END,
                tags = u.tags, updated_at = u.now,
                last_error = CASE WHEN u.keep THEN t.last_error ELSE u.error END,
                failures = CASE WHEN u.keep THEN t.failures
                    WHEN u.error IS NULL THEN 0 ELSE t.failures + 1 END
            FROM input AS u JOIN locked AS k ON k.n = u.n
            WHERE t.workflow = u.w AND t.instance_id = u.i
            RETURNING u.n, t.next_wakeup, t.claimed_until, u.now
        )"""

# _NOTIFY_WAKEUP for several rows: one notification if any of them may be claimed.
_NOTIFY_WAKEUP_MANY: LiteralString = """pg_notify(%(channel)s, 'wakeup') FROM updated
                WHERE next_wakeup IS NOT NULL AND (claimed_until IS NULL OR claimed_until <= now)
                LIMIT 1"""


def _with_updated_many(*rest: LiteralString) -> LiteralString:
    """A statement starting ``WITH`` the CTEs of _UPDATED_MANY, then ``rest``."""
    return "".join(("WITH ", _UPDATED_MANY, *rest))


# Every query of the store, by name. {s} is the schema.
_SQL: dict[str, LiteralString] = {
    # Serialise concurrent initialisers (released at commit).
    "migrations_lock": "SELECT pg_advisory_xact_lock(%s)",
    "migrations_schema": "CREATE SCHEMA IF NOT EXISTS {s}",
    # Schema bookkeeping: which migrations were applied.
    "migrations_table": """CREATE TABLE IF NOT EXISTS {s}.migrations (
        version integer PRIMARY KEY,
        description text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
    )""",
    "migrations_current": "SELECT coalesce(max(version), 0) FROM {s}.migrations",
    "migrations_record": "INSERT INTO {s}.migrations (version, description) VALUES (%s, %s)",
    # Journal entries of one instance after a sequence number, in order.
    "read": """SELECT sequence, type, data, recorded_at FROM {s}.journal
        WHERE workflow = %s AND instance_id = %s AND sequence > %s ORDER BY sequence""",
    # Append events as #expected+1.. if #expected exists (or expected = 0); the primary key
    # refuses numbers already taken (UniqueViolation). Returns how many events were
    # written: 0 means the journal ends before #expected. The registry is left alone.
    "append": """INSERT INTO {s}.journal (workflow, instance_id, sequence, type, data, recorded_at)
        SELECT %(w)s, %(i)s, %(expected)s::bigint + e.n, e.type, e.data, e.at
        FROM unnest(%(types)b::text[], %(datas)b::text[], %(ats)b::timestamptz[])
            WITH ORDINALITY AS e (type, data, at, n)
        WHERE %(expected)s::bigint = 0 OR EXISTS (
            SELECT 1 FROM {s}.journal
            WHERE workflow = %(w)s AND instance_id = %(i)s AND sequence = %(expected)s::bigint
        )""",
    # The same for the common case of one event, without the cost of arrays.
    "append_one": """INSERT INTO {s}.journal
            (workflow, instance_id, sequence, type, data, recorded_at)
        SELECT %(w)s, %(i)s, %(expected)s::bigint + 1, %(type)s, %(data)s, %(at)s
        WHERE %(expected)s::bigint = 0 OR EXISTS (
            SELECT 1 FROM {s}.journal
            WHERE workflow = %(w)s AND instance_id = %(i)s AND sequence = %(expected)s::bigint
        )""",
    # One event each for several instances, in one statement (a group commit): a row is
    # written if its predecessor is there and its place is free; returns the rows written.
    "append_many": """INSERT INTO {s}.journal
            (workflow, instance_id, sequence, type, data, recorded_at)
        SELECT e.w, e.i, e.expected + 1, e.type, e.data, e.at
        FROM unnest(%(ws)b::text[], %(is)b::text[], %(expecteds)b::bigint[],
                %(types)b::text[], %(datas)b::text[], %(ats)b::timestamptz[])
            AS e (w, i, expected, type, data, at)
        WHERE e.expected = 0 OR EXISTS (
            SELECT 1 FROM {s}.journal j
            WHERE j.workflow = e.w AND j.instance_id = e.i AND j.sequence = e.expected
        )
        ON CONFLICT DO NOTHING
        RETURNING workflow, instance_id""",
    # Where a journal ends (0 when empty); used to explain a SequenceConflict.
    "last_sequence": """SELECT coalesce(max(sequence), 0) FROM {s}.journal
        WHERE workflow = %s AND instance_id = %s""",
    # Register an instance unless it is already registered; notify workers of its wakeup.
    # Returns how many rows were created.
    "create": """WITH created AS (
            INSERT INTO {s}.instances
                (workflow, instance_id, status, created_at, updated_at, next_wakeup)
            VALUES (%(w)s, %(i)s, 'awaiting', %(now)s, %(now)s, %(wakeup)s)
            ON CONFLICT DO NOTHING
            RETURNING next_wakeup
        )
        SELECT (SELECT count(*) FROM created),
            (SELECT pg_notify(%(channel)s, 'wakeup') FROM created
                WHERE next_wakeup IS NOT NULL)""",
    # Lease an unregistered instance (a free or lapsed lease, or one already ours), then
    # register it as running and append the events as #1.. if the lease was taken; with
    # events, only if the journal is empty. Returns (leased, created, where the journal
    # ends, whether the instance is registered or leased to another): leased but not
    # created means a concurrent create came first (the caller gives the lease back); an
    # event appended meanwhile by another writer is a UniqueViolation (nothing written).
    "create_leased": """WITH journal_end AS (
            SELECT coalesce(max(sequence), 0) AS n FROM {s}.journal
            WHERE workflow = %(w)s AND instance_id = %(i)s
        ), leased AS (
            INSERT INTO {s}.leases AS l (workflow, instance_id, owner, until)
            SELECT %(w)s, %(i)s, %(owner)s, %(until)s
            WHERE NOT EXISTS (
                SELECT 1 FROM {s}.instances WHERE workflow = %(w)s AND instance_id = %(i)s
            ) AND (cardinality(%(types)b::text[]) = 0 OR (SELECT n FROM journal_end) = 0)
            ON CONFLICT (workflow, instance_id) DO UPDATE
            SET owner = excluded.owner, until = excluded.until
            WHERE l.owner = excluded.owner OR l.until <= %(at)s
            RETURNING 1
        ), created AS (
            INSERT INTO {s}.instances (workflow, instance_id, status, created_at, updated_at)
            SELECT %(w)s, %(i)s, 'running', %(at)s, %(at)s WHERE EXISTS (SELECT 1 FROM leased)
            ON CONFLICT DO NOTHING
            RETURNING 1
        ), appended AS (
            INSERT INTO {s}.journal (workflow, instance_id, sequence, type, data, recorded_at)
            SELECT %(w)s, %(i)s, e.n, e.type, e.data, e.at
            FROM unnest(%(types)b::text[], %(datas)b::text[], %(ats)b::timestamptz[])
                WITH ORDINALITY AS e (type, data, at, n)
            WHERE EXISTS (SELECT 1 FROM created)
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM leased), (SELECT count(*) FROM created),
            (SELECT n FROM journal_end),
            EXISTS (SELECT 1 FROM {s}.instances WHERE workflow = %(w)s AND instance_id = %(i)s)
            OR EXISTS (
                SELECT 1 FROM {s}.leases WHERE workflow = %(w)s AND instance_id = %(i)s
                    AND owner <> %(owner)s AND until > %(at)s
            )""",
    # Whether an instance is registered.
    "exists": "SELECT 1 FROM {s}.instances WHERE workflow = %s AND instance_id = %s",
    # One registry row.
    "record": """SELECT workflow, instance_id, status, created_at, updated_at, next_wakeup, tags,
            failures, last_error
        FROM {s}.instances WHERE workflow = %s AND instance_id = %s""",
    # _UPDATED; notify workers of a wakeup they may claim (not one whose claim it kept).
    # Returns how many rows were updated.
    "update": _with_updated(
        """
        SELECT (SELECT count(*) FROM updated),
            """,
        _NOTIFY_WAKEUP,
    ),
    # Take the lease if it is free, lapsed or already ours. Returns (taken, holder, until);
    # holder and until describe the lease that stopped us.
    "lease_take": """WITH taken AS (
            INSERT INTO {s}.leases AS l (workflow, instance_id, owner, until)
            VALUES (%(w)s, %(i)s, %(owner)s, %(until)s)
            ON CONFLICT (workflow, instance_id) DO UPDATE
            SET owner = excluded.owner, until = excluded.until
            WHERE l.owner = excluded.owner OR l.until <= %(at)s
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM taken), l.owner, l.until
        FROM (SELECT 1) AS one
        LEFT JOIN {s}.leases AS l ON l.workflow = %(w)s AND l.instance_id = %(i)s""",
    # Extend a lease, only if the owner still holds it.
    "lease_renew": """UPDATE {s}.leases SET until = %s
        WHERE workflow = %s AND instance_id = %s AND owner = %s RETURNING 1""",
    # Give a lease up, only if the owner still holds it; notify waiters if it was given up.
    "lease_release": """WITH released AS (
            DELETE FROM {s}.leases WHERE workflow = %(w)s AND instance_id = %(i)s
                AND owner = %(owner)s
            RETURNING 1
        )
        SELECT count(*) FROM (SELECT pg_notify(%(channel)s, 'lease') FROM released) AS n""",
    # "update", then "lease_release" if the row was there, in one statement. Returns
    # (rows updated, leases released).
    "update_release": _with_updated(
        """, released AS (
            DELETE FROM {s}.leases WHERE workflow = %(w)s AND instance_id = %(i)s
                AND owner = %(owner)s AND EXISTS (SELECT 1 FROM updated)
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM updated), (SELECT count(*) FROM released),
            """,
        _NOTIFY_WAKEUP,
        """,
            (SELECT pg_notify(%(channel)s, 'lease') FROM released)""",
    ),
    # The group-commit forms of "update", "update_release" and "create_leased": the
    # statements of several instances (one each) in one statement, their parameters as
    # arrays (row n of the input is the n-th statement); one result row per statement, its
    # number first, then the columns the statement alone returns. See _MANY.
    "update_many": _with_updated_many(
        """
        SELECT u.n, (d.n IS NOT NULL)::int, (SELECT """,
        _NOTIFY_WAKEUP_MANY,
        """)
        FROM input AS u LEFT JOIN updated AS d ON d.n = u.n
        ORDER BY u.n""",
    ),
    "update_release_many": _with_updated_many(
        """, held AS MATERIALIZED (
            SELECT u.n FROM {s}.leases AS l JOIN input AS u
                ON l.workflow = u.w AND l.instance_id = u.i AND l.owner = u.owner
            WHERE u.n IN (SELECT n FROM updated)
            ORDER BY l.workflow, l.instance_id
            FOR UPDATE OF l
        ), released AS (
            DELETE FROM {s}.leases AS l USING held AS h, input AS u
            WHERE h.n = u.n AND l.workflow = u.w AND l.instance_id = u.i
                AND l.owner = u.owner
            RETURNING u.n
        )
        SELECT u.n, (d.n IS NOT NULL)::int, (r.n IS NOT NULL)::int, (SELECT """,
        _NOTIFY_WAKEUP_MANY,
        """), (SELECT pg_notify(%(channel)s, 'lease') FROM released LIMIT 1)
        FROM input AS u LEFT JOIN updated AS d ON d.n = u.n
            LEFT JOIN released AS r ON r.n = u.n
        ORDER BY u.n""",
    ),
    # The events of all the instances in one set of arrays, each naming its instance.
    "create_leased_many": """WITH input AS (
            SELECT * FROM unnest(%(ws)b::text[], %(is)b::text[], %(owners)b::text[],
                    %(ats)b::timestamptz[], %(untils)b::timestamptz[], %(counts)b::bigint[])
                WITH ORDINALITY AS u (w, i, owner, at, until, events, n)
        ), journal_end AS (
            SELECT u.n, coalesce((SELECT max(j.sequence) FROM {s}.journal AS j
                WHERE j.workflow = u.w AND j.instance_id = u.i), 0) AS last
            FROM input AS u
        ), leased AS (
            INSERT INTO {s}.leases AS l (workflow, instance_id, owner, until)
            SELECT u.w, u.i, u.owner, u.until FROM input AS u JOIN journal_end AS e ON e.n = u.n
            WHERE NOT EXISTS (
                SELECT 1 FROM {s}.instances AS r WHERE r.workflow = u.w AND r.instance_id = u.i
            ) AND (u.events = 0 OR e.last = 0)
            ORDER BY u.w, u.i
            ON CONFLICT (workflow, instance_id) DO UPDATE
            SET owner = excluded.owner, until = excluded.until
            WHERE l.owner = excluded.owner OR l.until <= (
                SELECT u.at FROM input AS u
                WHERE u.w = excluded.workflow AND u.i = excluded.instance_id
            )
            RETURNING l.workflow, l.instance_id
        ), created AS (
            INSERT INTO {s}.instances (workflow, instance_id, status, created_at, updated_at)
            SELECT u.w, u.i, 'running', u.at, u.at
            FROM input AS u JOIN leased AS d ON d.workflow = u.w AND d.instance_id = u.i
            ORDER BY u.w, u.i
            ON CONFLICT DO NOTHING
            RETURNING workflow, instance_id
        ), appended AS (
            INSERT INTO {s}.journal (workflow, instance_id, sequence, type, data, recorded_at)
            SELECT e.w, e.i, e.sequence, e.type, e.data, e.at
            FROM unnest(%(event_ws)b::text[], %(event_is)b::text[], %(sequences)b::bigint[],
                    %(types)b::text[], %(datas)b::text[], %(event_ats)b::timestamptz[])
                AS e (w, i, sequence, type, data, at)
            JOIN created AS c ON c.workflow = e.w AND c.instance_id = e.i
            RETURNING 1
        )
        SELECT u.n, (d.workflow IS NOT NULL)::int, (c.workflow IS NOT NULL)::int, e.last,
            EXISTS (
                SELECT 1 FROM {s}.instances AS r WHERE r.workflow = u.w AND r.instance_id = u.i
            ) OR EXISTS (
                SELECT 1 FROM {s}.leases AS l WHERE l.workflow = u.w AND l.instance_id = u.i
                    AND l.owner <> u.owner AND l.until > u.at
            )
        FROM input AS u JOIN journal_end AS e ON e.n = u.n
            LEFT JOIN leased AS d ON d.workflow = u.w AND d.instance_id = u.i
            LEFT JOIN created AS c ON c.workflow = u.w AND c.instance_id = u.i
        ORDER BY u.n""",
    # Keep a snapshot unless a later one (higher sequence) is already kept.
    "snapshot_save": """INSERT INTO {s}.snapshots AS old (workflow, instance_id, sequence, data)
        VALUES (%s, %s, %s, %s)
        ON CONFLICT (workflow, instance_id) DO UPDATE
        SET sequence = excluded.sequence, data = excluded.data
        WHERE excluded.sequence >= old.sequence OR %s""",
    # The kept snapshot.
    "snapshot_load": """SELECT sequence, data FROM {s}.snapshots
        WHERE workflow = %s AND instance_id = %s""",
    # Claim due wakeups nobody holds a live claim on, earliest first; rows locked by a
    # concurrent claimer are skipped, not waited for.
    "claim_due": """WITH due AS (
            SELECT workflow, instance_id FROM {s}.instances
            WHERE next_wakeup <= %(now)s AND (claimed_until IS NULL OR claimed_until <= %(now)s)
                AND (%(workflows)s::text[] IS NULL OR workflow = ANY(%(workflows)s::text[]))
            ORDER BY next_wakeup, workflow, instance_id
            LIMIT %(limit)s
            FOR UPDATE SKIP LOCKED
        )
        UPDATE {s}.instances AS i SET claimed_until = %(until)s
        FROM due WHERE i.workflow = due.workflow AND i.instance_id = due.instance_id
        RETURNING i.workflow, i.instance_id, i.next_wakeup""",
    # The earliest wakeup after an instant.
    "next_wakeup": """SELECT next_wakeup FROM {s}.instances
        WHERE next_wakeup > %(after)s
            AND (%(workflows)s::text[] IS NULL OR workflow = ANY(%(workflows)s::text[]))
        ORDER BY next_wakeup LIMIT 1""",
    # Running instances without a live lease: their process died mid-step.
    "stale": """SELECT i.workflow, i.instance_id FROM {s}.instances AS i
        LEFT JOIN {s}.leases AS l ON l.workflow = i.workflow AND l.instance_id = i.instance_id
        WHERE i.status = 'running' AND (l.until IS NULL OR l.until <= %(now)s)
            AND (%(workflows)s::text[] IS NULL OR i.workflow = ANY(%(workflows)s::text[]))
        ORDER BY i.updated_at, i.workflow, i.instance_id LIMIT %(limit)s""",
    # Delete up to %(limit)s instances of the statuses, updated before %(before)s, without a
    # live lease at %(now)s, oldest update first: journal, snapshot, lease and registry row,
    # in one statement. Rows locked by a concurrent purge (or update) are skipped; a lease
    # committed after the statement began is not seen. Returns the keys in that order.
    "purge": """WITH doomed AS (
            SELECT i.workflow, i.instance_id FROM {s}.instances AS i
            WHERE i.status = ANY(%(statuses)s::text[]) AND i.updated_at < %(before)s
                AND (%(workflows)s::text[] IS NULL OR i.workflow = ANY(%(workflows)s::text[]))
                AND NOT EXISTS (
                    SELECT 1 FROM {s}.leases AS l
                    WHERE l.workflow = i.workflow AND l.instance_id = i.instance_id
                        AND l.until > %(now)s
                )
            ORDER BY i.updated_at, i.workflow, i.instance_id
            LIMIT %(limit)s
            FOR UPDATE SKIP LOCKED
        ), journal AS (
            DELETE FROM {s}.journal AS j USING doomed AS d
            WHERE j.workflow = d.workflow AND j.instance_id = d.instance_id
        ), snapshots AS (
            DELETE FROM {s}.snapshots AS n USING doomed AS d
            WHERE n.workflow = d.workflow AND n.instance_id = d.instance_id
        ), leases AS (
            DELETE FROM {s}.leases AS l USING doomed AS d
            WHERE l.workflow = d.workflow AND l.instance_id = d.instance_id
        ), purged AS (
            DELETE FROM {s}.instances AS i USING doomed AS d
            WHERE i.workflow = d.workflow AND i.instance_id = d.instance_id
            RETURNING i.workflow, i.instance_id, i.updated_at
        )
        SELECT workflow, instance_id FROM purged ORDER BY updated_at, workflow, instance_id""",
    # Search: the number of matches of {where} (built from _FILTERS, ANDed) and one page of
    # them, in one statement so both see the same snapshot. With no match on the page, one
    # row of NULLs still carries the total. The page is in ({sort}, workflow, instance_id)
    # order, {sort} a column of _SORT_COLUMNS, and {keyset} is empty or _KEYSET (the count
    # ignores it).
    "search": """SELECT c.total, p.workflow, p.instance_id, p.status, p.created_at,
            p.updated_at, p.next_wakeup, p.tags, p.failures, p.last_error
        FROM (SELECT count(*) AS total FROM (
            SELECT 1 FROM {s}.instances WHERE {where} LIMIT %(count_limit)s) AS m) AS c
        LEFT JOIN (
            SELECT * FROM {s}.instances WHERE {where}{keyset}
            ORDER BY {sort} {order}, workflow {order}, instance_id {order}
            LIMIT %(limit)s OFFSET %(offset)s
        ) AS p ON true
        ORDER BY p.{sort} {order}, p.workflow {order}, p.instance_id {order}""",
}

# The keyset of a search page ("after"): rows after (or, {cmp} being <, before) the last one
# seen, as a row comparison an index on ({sort}, workflow, instance_id) serves; compared in
# the "C" collation of the key columns, so in code point order, as Python compares strings.
_KEYSET: LiteralString = """ AND ({sort}, workflow, instance_id)
                {cmp} (%(after_at)s, %(after_workflow)s::text COLLATE "C",
                    %(after_id)s::text COLLATE "C")"""

# Search criteria as SQL conditions, by SearchQuery field.
_FILTERS: dict[str, LiteralString] = {
    "workflow": "workflow = %(workflow)s",
    "status": "status = ANY(%(status)s::text[])",
    "created_from": "created_at >= %(created_from)s",
    "created_to": "created_at < %(created_to)s",
    "updated_from": "updated_at >= %(updated_from)s",
    "updated_to": "updated_at < %(updated_to)s",
    "wakeup_before": "next_wakeup < %(wakeup_before)s",
    "tags": "tags @> %(tags)s",
    "failing": "failures > 0",
    "not_failing": "failures = 0",
}


_DEADLOCK_TRIES = 3
"""How often a statement PostgreSQL chose as a deadlock's victim is run (each statement is
its own transaction, rolled back whole by then, so running it again is safe)."""


def _deadlocked(error: StoreError) -> bool:
    return isinstance(error.__cause__, psycopg.errors.DeadlockDetected)


@contextmanager
def _translated() -> Iterator[None]:
    """Turn driver errors into StoreError subclasses."""
    try:
        yield
    # a deadlock's victim, a serialization failure: the database is there, and the
    # transaction may be tried again (a batch, item by item)
    except (psycopg.errors.DeadlockDetected, psycopg.errors.TransactionRollback) as e:
        raise StoreError(f"PostgreSQL rolled the transaction back: {e}") from e
    except psycopg.OperationalError as e:  # includes pool timeouts and lost connections
        raise StoreUnavailable(f"PostgreSQL unavailable: {e}") from e
    except psycopg.Error as e:
        raise StoreError(f"PostgreSQL error: {e}") from e


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    """Each pooled connection's session: instants come back in UTC (no conversion)."""
    await conn.execute("SET TIME ZONE 'UTC'")


def _event_arrays(events: Sequence[NewEvent]) -> dict[str, list[Any]]:
    """The parameters ``types``, ``datas`` and ``ats`` of a statement appending ``events``."""
    return {
        "types": [e.type for e in events],
        "datas": [e.data for e in events],
        "ats": [_utc(e.recorded_at) for e in events],
    }


# Group commit's transactions of one kind (appends, registry writes) under way at once.
_IN_FLIGHT = 2

_Statement = tuple[InstanceKey, str, dict[str, Any]]
"""A write statement about one instance: (its key, the statement's name, its parameters)."""


def _columns(params: Sequence[Mapping[str, Any]], **arrays: str) -> dict[str, Any]:
    """For each ``name=array``, the parameter ``name`` of each statement as ``array``."""
    return {array: [p.get(name) for p in params] for name, array in arrays.items()}


def _updates_many(params: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The parameters of "update_many" or "update_release_many" for these statements'."""
    arrays = _columns(params, w="ws", i="is", status="statuses", wakeup="wakeups", tags="tagss")
    arrays.update(_columns(params, now="nows", error="errors", keep="keeps", owner="owners"))
    arrays["channel"] = params[0]["channel"]  # the store's own, in every statement
    return arrays


def _creates_many(params: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The parameters of "create_leased_many" for these "create_leased" statements'."""
    arrays = _columns(params, w="ws", i="is", owner="owners", at="ats", until="untils")
    arrays["counts"] = [len(p["types"]) for p in params]
    for name in ("event_ws", "event_is", "sequences", "types", "datas", "event_ats"):
        arrays[name] = []
    for p in params:
        count = len(p["types"])
        arrays["event_ws"] += [p["w"]] * count
        arrays["event_is"] += [p["i"]] * count
        arrays["sequences"] += range(1, count + 1)
        arrays["types"] += p["types"]
        arrays["datas"] += p["datas"]
        arrays["event_ats"] += p["ats"]
    return arrays


# The statements that have a group-commit form: its name, and how it takes their parameters.
_MANY: dict[str, tuple[str, Callable[[Sequence[Mapping[str, Any]]], dict[str, Any]]]] = {
    "update": ("update_many", _updates_many),
    "update_release": ("update_release_many", _updates_many),
    "create_leased": ("create_leased_many", _creates_many),
}


def _aware(instant: datetime) -> datetime:
    return instant if instant.tzinfo is UTC else instant.astimezone(UTC)


# -- rows as stored --------------------------------------------------------------------------
#
# Rows are read defensively: whoever can write to the schema can put values there that the
# library never writes (an instant out of Python's range, tags that are not an object of
# strings, a column altered to another type or made nullable). Such a row becomes a
# DecodeError naming the instance, and the event for a journal row, never a driver error or
# a TypeError. The checks cost a type test per value; a value the driver cannot load at all
# (an instant past year 9999 or 'infinity', JSON nested deeper than Python parses) costs a
# second pass over the result already received, only on a read that meets one.

_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)
_LOAD_ERRORS = (psycopg.DataError, ValueError, RecursionError)


class _Unloadable:
    """A stored value the driver could not load, kept as its text to be reported."""

    __slots__ = ("text", "why")

    def __init__(self, text: str, why: str) -> None:
        self.text = text
        self.why = why


async def _rows(cur: psycopg.AsyncCursor[Any]) -> list[Any]:
    """The rows of ``cur``'s result; a value that does not load becomes an _Unloadable."""
    try:
        return await cur.fetchall()
    except _LOAD_ERRORS:
        pass
    result = cur.pgresult
    if result is None:  # pragma: no cover - no result, so nothing failed to load
        raise StoreError("PostgreSQL returned no result to read")
    tx = Transformer.from_context(cur)
    loaders = [
        tx.get_loader(result.ftype(c), pq.Format(result.fformat(c))) for c in range(result.nfields)
    ]
    rows = []
    for r in range(result.ntuples):
        values: list[Any] = []
        for c, loader in enumerate(loaders):
            raw = result.get_value(r, c)
            if raw is None:
                values.append(None)
                continue
            try:
                values.append(loader.load(raw))
            except _LOAD_ERRORS as e:
                why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                values.append(_Unloadable(bytes(raw).decode(errors="replace"), why))
        rows.append(tuple(values))
    return rows


def _shown(value: object) -> str:
    """A stored value, for a message: short, with its type."""
    if isinstance(value, _Unloadable):
        text = value.text if len(value.text) <= 60 else value.text[:59] + "…"
        return f"{text!r}, which does not load ({value.why})"
    if value is None:
        return "NULL"
    text = repr(value)
    text = text if len(text) <= 60 else text[:59] + "…"
    return f"{text} ({type(value).__name__})"


def _bad(
    key: InstanceKey | None,
    column: str,
    value: object,
    expected: str,
    sequence: int | None = None,
    *,
    where: str = "",
) -> DecodeError:
    """A stored row that does not decode: ``column`` is ``table.column``."""
    what = f"holds {_shown(value)}, expected {expected}"
    table = column.partition(".")[0]
    return _corrupt(table, what, path=column, key=key, sequence=sequence, where=where)


def _instant(key: InstanceKey, what: str, value: object, sequence: int | None = None) -> datetime:
    """A stored instant in UTC, or DecodeError."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value if value.tzinfo is UTC else value.astimezone(UTC)
    raise _bad(key, what, value, "an instant with a time zone", sequence)


def _entry(key: InstanceKey, row: Sequence[Any]) -> JournalEntry:
    """One journal row, checked value by value (the slow path of ``read``)."""
    seq, type_, data, at = row
    if seq.__class__ is not int or seq < 1:
        raise _bad(key, "journal.sequence", seq, "a positive integer")
    if type_.__class__ is not str:
        raise _bad(key, "journal.type", type_, "text", seq)
    if data.__class__ is not str:
        raise _bad(key, "journal.data", data, "text (JSON)", seq)
    return JournalEntry(seq, type_, data, _instant(key, "journal.recorded_at", at, seq))


def _due(at: Any) -> datetime:
    """A claimed wakeup: due, so earlier than now; if before year 1 (or '-infinity'), claimed
    all the same: the operation that runs it writes a new wakeup into the row."""
    return _aware(at) if isinstance(at, datetime) and at.tzinfo is not None else _EARLIEST


def _skip_due(row: Sequence[Any]) -> None:
    _log.warning("a due registry row has a key that is not text: %r, %r", row[0], row[1])


def _skip_key(row: Sequence[Any]) -> None:
    _log.warning("a registry row has a key that is not text: %r, %r", row[0], row[1])


def _converted_instant(value: Any) -> datetime:
    """A stored instant in UTC (TypeError if it has no time zone, or did not load)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value if value.tzinfo is UTC else value.astimezone(UTC)
    raise TypeError(value)


def _tags(value: Any) -> dict[str, str]:
    """Stored tags (TypeError unless a JSON object of strings)."""
    if isinstance(value, dict) and all(v.__class__ is str for v in value.values()):
        return value
    raise TypeError(value)


def _registry_record(row: Sequence[Any]) -> InstanceRecord:
    """A registry row, or DecodeError naming its instance."""
    record = _record(row, _converted_instant, _tags, _record_problem)
    if record.failures < 0:
        raise _record_problem(row)
    return record


def _record_problem(row: Sequence[Any]) -> DecodeError:
    """Why the registry ``row`` does not decode."""
    wf, iid, status, created, updated, wakeup, tags, failures, last_error = row
    key = _key(wf, iid)
    if key is None:
        what = f"has a key ({_shown(wf)}, {_shown(iid)}) that is not text"
        return _corrupt("instances", what, path="instances.instance_id", key=None)
    if status.__class__ is not str or status not in _STATUSES:
        return _bad(key, "instances.status", status, "one of " + ", ".join(sorted(_STATUSES)))
    if not (isinstance(tags, dict) and all(v.__class__ is str for v in tags.values())):
        return _bad(key, "instances.tags", tags, "a JSON object of strings")
    if failures.__class__ is not int or failures < 0:
        return _bad(key, "instances.failures", failures, "a count")
    if last_error is not None and last_error.__class__ is not str:
        return _bad(key, "instances.last_error", last_error, "text or NULL")
    instants = [("created_at", created), ("updated_at", updated)]
    if wakeup is not None:
        instants.append(("next_wakeup", wakeup))
    for column, value in instants:
        if not (isinstance(value, datetime) and value.tzinfo is not None):
            return _bad(key, f"instances.{column}", value, "an instant with a time zone")
    return _corrupt("instances", "does not decode", path="instances", key=key)  # pragma: no cover


class _Options(TypedDict, total=False):
    """The keyword arguments of :class:`PostgresStore` (for :meth:`PostgresStore.open`)."""

    schema: str
    min_size: int
    max_size: int
    connect_timeout: float
    group_commit: bool


class PostgresStore(_StoreBase):
    """A :class:`~workflows4py.stores.Store` in one PostgreSQL schema.

    ``connect_timeout`` bounds, in seconds, how long any call waits for a connection before
    raising StoreUnavailable.

    ``group_commit=True`` (the default): writes of different instances that arrive while
    another write is under way (one-event appends; the registry and lease writes that begin
    and end an operation) go together in the next transaction, sent in one round trip;
    each caller returns once that transaction has committed, and a write that conflicts
    fails alone. A lone write is sent at once. ``False`` commits each write by itself.
    """

    MIGRATIONS: ClassVar[tuple[tuple[int, str, tuple[LiteralString, ...]], ...]] = _MIGRATIONS
    """The schema's migrations, as data: ``(version, description, statements)``, oldest first."""
    SQL: ClassVar[Mapping[str, LiteralString]] = MappingProxyType(_SQL)
    """Every statement the store runs, by name (read-only)."""
    _LEASE_POLL = 0.25

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str = "workflows4py",
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 10.0,
        group_commit: bool = True,
    ) -> None:
        try:
            params = conninfo_to_dict(conninfo)
        except psycopg.Error as e:
            raise StoreError(f"invalid PostgreSQL connection string: {e}") from e
        if "connect_timeout" not in params:
            # libpq counts whole seconds and treats values below 2 as 2.
            conninfo = make_conninfo(conninfo, connect_timeout=max(2, math.ceil(connect_timeout)))
        self._conninfo = conninfo
        self._schema = schema
        self._min_size = min_size
        self._max_size = max_size
        self._timeout = connect_timeout
        ident = sql.Identifier(schema)
        self._q = {
            name: sql.SQL(q).format(s=ident).as_bytes(None)
            for name, q in _SQL.items()
            if name != "search"  # composed per query
        }
        self._migrations = [
            (v, d, [sql.SQL(q).format(s=ident).as_bytes(None) for q in qs])
            for v, d, qs in _MIGRATIONS
        ]
        self._ident = ident
        self._channel = f"workflows4py:{schema}".encode()[:63].decode(errors="ignore")
        digest = hashlib.blake2b(f"workflows4py:{schema}".encode(), digest_size=8).digest()
        self._lock_key = int.from_bytes(digest, "big", signed=True)
        self._pool: AsyncConnectionPool | None = None
        self._pool_lock = asyncio.Lock()
        # connections checked out of the pool and idle, most recently used last
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._getting = 0  # callers waiting for a connection from the pool
        self._closed = False
        self._released = _Pulse()
        self._work = _Pulse()
        self._work_seen = 0
        self._seen_now()
        self._listener: asyncio.Task[None] | None = None
        # one-event appends of different instances that are ready together commit together
        self._group: GroupCommit[_Append, None] | None = None
        # and so do the registry and lease writes of an operation's start and end
        self._writes: GroupCommit[_Statement, list[Any]] | None = None
        if group_commit:
            # up to _IN_FLIGHT transactions of each kind at once, on connections of their own
            self._group = GroupCommit(
                self._append_alone,
                self._append_together,
                _key_of,
                gather=False,
                max_in_flight=_IN_FLIGHT,
            )
            self._writes = GroupCommit(
                self._statement_alone,
                self._statements_together,
                _key_of,
                gather=False,
                max_in_flight=_IN_FLIGHT,
            )

    @classmethod
    async def open(cls, conninfo: str, **options: Unpack[_Options]) -> PostgresStore:
        """Construct the store (with the keyword arguments of the constructor) and
        :meth:`initialize` it."""
        store = cls(conninfo, **options)
        try:
            await store.initialize()
        except BaseException:
            await store.close()
            raise
        return store

    def __repr__(self) -> str:
        return f"PostgresStore(schema={self._schema!r})"

    async def _get_pool(self) -> AsyncConnectionPool:
        if self._closed:
            raise StoreError(f"{self!r} is closed")
        if self._pool is None:
            async with self._pool_lock:
                if self._pool is None:
                    pool = AsyncConnectionPool(
                        self._conninfo,
                        connection_class=psycopg.AsyncConnection,  # the default, typed
                        min_size=self._min_size,
                        max_size=self._max_size,
                        kwargs={"autocommit": True},
                        configure=_configure,
                        timeout=self._timeout,
                        name=f"workflows4py:{self._schema}",
                        open=False,
                    )
                    with _translated():
                        await pool.open(wait=False)
                    self._pool = pool
        return self._pool

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """An autocommit connection: the most recently used idle one, else one from the pool."""
        if self._idle:
            conn = self._idle.pop()
        else:
            pool = await self._get_pool()
            self._getting += 1
            try:
                with _translated():
                    conn = await pool.getconn()
            finally:
                self._getting -= 1
        try:
            with _translated():
                yield conn
        finally:
            owner = self._pool
            if (
                owner is not None
                and not self._closed
                and not self._getting  # a caller waits for the pool: give it this one
                and not conn.broken
                and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            ):
                self._idle.append(conn)
            elif owner is not None:
                await owner.putconn(conn)  # the pool discards a broken one, resets the others
            else:
                await conn.close()

    async def _fetch(self, name: str, params: Sequence[Any] | dict[str, Any]) -> list[Any]:
        """Run a statement; returns its rows."""
        return await self._retrying(self._fetch_once, name, params)

    async def _execute(self, name: str, params: Sequence[Any] | dict[str, Any]) -> int:
        """Run a statement; returns its row count."""
        return await self._retrying(self._execute_once, name, params)

    async def _write_fetch(self, key: InstanceKey, name: str, params: dict[str, Any]) -> list[Any]:
        """Run the write statement ``name`` about ``key`` (in a group commit, if on); its rows."""
        if self._writes is None:
            return await self._fetch(name, params)
        return await self._writes.submit((key, name, params))

    async def _statement_alone(self, statement: _Statement) -> list[Any]:
        _, name, params = statement
        return await self._fetch(name, params)

    async def _statements_together(self, statements: Sequence[_Statement]) -> list[list[Any]]:
        """Several write statements in one transaction, sent in one round trip (pipeline
        mode); each one's rows. In key order, so two such transactions lock rows in one
        order."""
        order = sorted(
            range(len(statements)),
            key=lambda n: (statements[n][0].workflow, statements[n][0].instance_id),
        )
        # Any other order can deadlock: a statement that finds a row another transaction
        # wrote waits for it, even one it will not change. A run of one statement in that
        # order goes as one statement of its group-commit form (_MANY), or else as one
        # executemany: psycopg then prepares the pipeline's messages once per run, not once
        # per statement (most of the client's CPU per statement).
        runs: list[tuple[psycopg.AsyncCursor[Any], list[int], bool]] = []
        async with self._connection() as conn:
            async with conn.pipeline(), conn.transaction():
                for name, run in groupby(order, key=lambda n: statements[n][1]):
                    members = list(run)
                    params = [statements[n][2] for n in members]
                    many = _MANY.get(name) if len(members) > 1 else None
                    if many is not None:
                        cur = await conn.execute(self._q[many[0]], many[1](params))
                    else:
                        cur = conn.cursor()
                        await cur.executemany(self._q[name], params, returning=True)
                    runs.append((cur, members, many is not None))
            rows: list[list[Any]] = [[] for _ in statements]
            for cur, members, together in runs:
                if together:  # one row per statement, numbered from 1
                    for row in await _rows(cur):
                        rows[members[row[0] - 1]] = [row[1:]]
                    continue
                for n in members:
                    rows[n] = await _rows(cur)
                    cur.nextset()
            return rows

    async def _fetch_once(self, name: str, params: Sequence[Any] | dict[str, Any]) -> list[Any]:
        async with self._connection() as conn:
            cur = await conn.execute(self._q[name], params)
            return await _rows(cur)

    async def _fetch_binary(self, name: str, params: Sequence[Any] | dict[str, Any]) -> list[Any]:
        """``_fetch_once`` with the results in binary: numbers and instants arrive as they are
        stored, not as text to parse (a third of a journal row's load time)."""
        async with self._connection() as conn:
            cur = await conn.execute(self._q[name], params, binary=True)
            return await _rows(cur)

    async def _execute_once(self, name: str, params: Sequence[Any] | dict[str, Any]) -> int:
        async with self._connection() as conn:
            cur = await conn.execute(self._q[name], params)
            return cur.rowcount

    async def _retrying(
        self,
        once: Callable[[str, Sequence[Any] | dict[str, Any]], Awaitable[_T]],
        name: str,
        params: Sequence[Any] | dict[str, Any],
    ) -> _T:
        """``once(name, params)``, run again if PostgreSQL chose it as a deadlock's victim."""
        for attempt in range(1, _DEADLOCK_TRIES):
            try:
                return await once(name, params)
            except StoreError as e:
                if not _deadlocked(e):
                    raise
                _log.info("statement %s was a deadlock's victim (try %d); again", name, attempt)
        return await once(name, params)

    async def _schema_version(self) -> int | None:
        """The schema's version, or None if it has no migrations table (yet)."""
        try:
            rows = await self._fetch("migrations_current", ())
        except StoreError as e:
            cause = e.__cause__
            if isinstance(cause, psycopg.errors.UndefinedTable | psycopg.errors.InvalidSchemaName):
                return None
            raise
        return int(rows[0][0])

    async def initialize(self) -> None:
        """A schema already at the latest version is only read, so a role without the CREATE
        privilege can run the application once the schema exists.
        """
        latest = self._migrations[-1][0]
        current = await self._schema_version()
        if current == latest:
            return
        if current is not None and current > latest:
            raise self._too_new(current, latest)
        pool = await self._get_pool()
        q = self._q
        with _translated():
            async with pool.connection() as conn, conn.transaction():
                await conn.execute(q["migrations_lock"], (self._lock_key,))
                await conn.execute(q["migrations_schema"])
                await conn.execute(q["migrations_table"])
                cur = await conn.execute(q["migrations_current"])
                row = await cur.fetchone()
                current = int(row[0]) if row else 0
                if current > latest:
                    raise self._too_new(current, latest)
                for version, description, statements in self._migrations:
                    if version > current:
                        for statement in statements:
                            await conn.execute(statement)
                        await conn.execute(q["migrations_record"], (version, description))

    async def check_schema(self) -> None:
        """:meth:`initialize` that only reads: StoreError if the schema is missing or not
        current; nothing is created or migrated."""
        latest = self._migrations[-1][0]
        current = await self._schema_version()
        if current is not None and current > latest:
            raise self._too_new(current, latest)
        if current != latest:
            raise no_schema(f"schema {self._schema!r}", current or 0, latest)

    def _too_new(self, current: int, latest: int) -> StoreError:
        return _too_new(f"schema {self._schema!r}", current, latest)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with suppress(asyncio.CancelledError):
                await listener
        idle, self._idle = self._idle, []
        pool, self._pool = self._pool, None
        if pool is not None:
            for conn in idle:
                await pool.putconn(conn)
            await pool.close()
        self._released.fire()
        self._work.fire()

    async def create(
        self, key: InstanceKey, now: datetime, next_wakeup: datetime | None = None
    ) -> bool:
        params = {
            "w": key.workflow,
            "i": key.instance_id,
            "now": _utc(now),
            "wakeup": None if next_wakeup is None else _utc(next_wakeup),
            "channel": self._channel,
        }
        created, _ = (await self._fetch("create", params))[0]
        if created and next_wakeup is not None:
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
        at = _utc(now)
        params = {
            "w": key.workflow,
            "i": key.instance_id,
            "owner": owner,
            "at": at,
            "until": at + timedelta(seconds=ttl),
            **_event_arrays(events),
        }
        try:
            leased, created, end, taken = (await self._write_fetch(key, "create_leased", params))[0]
        except StoreError as e:
            if not isinstance(e.__cause__, psycopg.errors.UniqueViolation):
                raise
            # another writer appended #1 meanwhile: the statement wrote nothing
            (end,) = (await self._fetch("last_sequence", (key.workflow, key.instance_id)))[0]
            raise SequenceConflict(key, 0, int(end)) from e.__cause__
        if leased and not created:  # lost a race with a concurrent create: no lease kept
            await self.release(key, owner)
        if events and not leased and not taken and end:
            raise SequenceConflict(key, 0, int(end))
        return bool(created)

    async def exists(self, key: InstanceKey) -> bool:
        return bool(await self._fetch("exists", (key.workflow, key.instance_id)))

    async def read(self, key: InstanceKey, after: int = 0) -> list[JournalEntry]:
        params = (key.workflow, key.instance_id, after)
        rows = await self._retrying(self._fetch_binary, "read", params)
        # the hot path: rows as the library writes them, checked with a type test per value
        entries = [
            _entry_of(seq, type_, data, at)
            for seq, type_, data, at in rows
            if seq.__class__ is int
            and type_.__class__ is str
            and data.__class__ is str
            and at.__class__ is datetime
            and at.tzinfo is UTC
        ]
        if len(entries) != len(rows):  # a row to convert, or to report as a DecodeError
            entries = [_entry(key, row) for row in rows]
        return entries

    async def append(self, key: InstanceKey, expected: int, events: Sequence[NewEvent]) -> None:
        if not events:
            return
        if self._group is not None and len(events) == 1:
            await self._group.submit((key, expected, events))
            return
        await self._append_alone((key, expected, events))

    async def _append_alone(self, append: _Append) -> None:
        key, expected, events = append
        params: dict[str, Any] = {"w": key.workflow, "i": key.instance_id, "expected": expected}
        if len(events) == 1:
            query = self._q["append_one"]
            (only,) = events
            params.update(type=only.type, data=only.data, at=_utc(only.recorded_at))
        else:
            query = self._q["append"]
            params.update(_event_arrays(events))
        async with self._connection() as conn:
            try:
                cur = await conn.execute(query, params)
                if cur.rowcount == len(events):
                    return
                conflict = None
            except psycopg.errors.UniqueViolation as e:
                conflict = e
            raise await self._conflict(conn, key, expected) from conflict

    async def _append_together(self, appends: Sequence[_Append]) -> list[SequenceConflict | None]:
        """One statement (one transaction) for the one-event appends of several instances;
        each one's outcome. Sorted by key, so two such statements lock rows in one order."""
        ordered = sorted(appends, key=lambda a: (a[0].workflow, a[0].instance_id))
        events = [only for _, _, (only,) in ordered]
        params = {
            "ws": [key.workflow for key, _, _ in ordered],
            "is": [key.instance_id for key, _, _ in ordered],
            "expecteds": [expected for _, expected, _ in ordered],
            **_event_arrays(events),
        }
        async with self._connection() as conn:
            cur = await conn.execute(self._q["append_many"], params)
            written = {(w, i) for w, i in await cur.fetchall()}
            outcomes: list[SequenceConflict | None] = []
            for key, expected, _ in appends:
                if (key.workflow, key.instance_id) in written:
                    outcomes.append(None)
                else:
                    outcomes.append(await self._conflict(conn, key, expected))
        return outcomes

    async def _conflict(
        self, conn: psycopg.AsyncConnection[Any], key: InstanceKey, expected: int
    ) -> SequenceConflict:
        cur = await conn.execute(self._q["last_sequence"], (key.workflow, key.instance_id))
        last = await cur.fetchone()
        return SequenceConflict(key, expected, int(last[0]) if last else None)

    async def _take_lease(
        self, key: InstanceKey, owner: str, ttl: float, at: datetime
    ) -> tuple[str, datetime] | None:
        params = {
            "w": key.workflow,
            "i": key.instance_id,
            "owner": owner,
            "until": at + timedelta(seconds=ttl),
            "at": at,
        }
        taken, holder, until = (await self._write_fetch(key, "lease_take", params))[0]
        if taken:
            return None
        self._listen()  # a release will be notified from now on
        if holder is None:  # released between the insert and the read: try again now
            return "", at
        if not isinstance(until, datetime) or until.tzinfo is None:
            # a lease that does not lapse before year 9999 (or 'infinity'): held
            until = _LATEST
        return str(holder), _aware(until)

    async def renew(self, key: InstanceKey, owner: str, ttl: float, now: datetime) -> None:
        until = _utc(now) + timedelta(seconds=ttl)
        if not await self._fetch("lease_renew", (until, key.workflow, key.instance_id, owner)):
            raise LeaseLost(f"{owner!r} does not hold the lease of {key}")

    def _lease_params(self, key: InstanceKey, owner: str) -> dict[str, Any]:
        return {"w": key.workflow, "i": key.instance_id, "owner": owner, "channel": self._channel}

    async def _release_lease(self, key: InstanceKey, owner: str) -> int:
        (released,) = (
            await self._write_fetch(key, "lease_release", self._lease_params(key, owner))
        )[0]
        return int(released)

    async def _release_updating(
        self, key: InstanceKey, owner: str, update: RegistryUpdate
    ) -> tuple[int, int]:
        params = self._lease_params(key, owner)
        params.update(self._update_params(update))
        updated, released, _, _ = (await self._write_fetch(key, "update_release", params))[0]
        return int(updated), int(released)

    @staticmethod
    def _update_params(update: RegistryUpdate) -> dict[str, Any]:
        wakeup = update.next_wakeup
        return {
            "status": update.status,
            "wakeup": None if wakeup is None else _utc(wakeup),
            "tags": Jsonb(update.tags),
            "now": _utc(update.now),
            "error": update.error,
            "keep": False,
        }

    async def save_snapshot(
        self, key: InstanceKey, snapshot: Snapshot, *, replace: bool = False
    ) -> None:
        params = (key.workflow, key.instance_id, snapshot.sequence, snapshot.data, replace)
        await self._execute("snapshot_save", params)

    async def load_snapshot(self, key: InstanceKey) -> Snapshot | None:
        rows = await self._fetch("snapshot_load", (key.workflow, key.instance_id))
        if not rows:
            return None
        sequence, data = rows[0]
        if sequence.__class__ is not int or sequence < 0:
            raise _bad(key, "snapshots.sequence", sequence, "a journal position")
        if data.__class__ is not str:
            raise _bad(key, "snapshots.data", data, "text", where=f" at #{sequence}")
        return Snapshot(sequence, data)

    async def _update_row(self, key: InstanceKey, update: RegistryUpdate, keep: bool) -> int:
        params: dict[str, Any] = {"w": key.workflow, "i": key.instance_id}
        params["channel"] = self._channel
        params.update(self._update_params(update))
        params["keep"] = keep
        updated, _ = (await self._write_fetch(key, "update", params))[0]
        return int(updated)

    async def claim_due(
        self, now: datetime, limit: int, lease: float, workflows: Sequence[str] | None = None
    ) -> list[Claim]:
        _check_limit("limit", limit)
        now = _utc(now)
        until = now + timedelta(seconds=lease)
        names = None if workflows is None else list(workflows)
        params = {"now": now, "until": until, "limit": limit, "workflows": names}
        rows = await self._fetch("claim_due", params)
        claims = _claims(rows, until, _due, _skip_due)
        claims.sort(key=lambda c: (c.wakeup_at, c.key))
        return claims

    async def next_wakeup(
        self, after: datetime, workflows: Sequence[str] | None = None
    ) -> datetime | None:
        names = None if workflows is None else list(workflows)
        rows = await self._fetch("next_wakeup", {"after": _utc(after), "workflows": names})
        if not rows:
            return None
        (at,) = rows[0]
        if not isinstance(at, datetime) or at.tzinfo is None:
            return _LATEST  # later than Python counts (or 'infinity'): no wakeup before it
        return _aware(at)

    async def get_record(self, key: InstanceKey) -> InstanceRecord | None:
        rows = await self._fetch("record", (key.workflow, key.instance_id))
        return _registry_record(rows[0]) if rows else None

    async def search(self, query: SearchQuery) -> Page:
        after = _check_page(query)
        params: dict[str, Any] = {"limit": query.limit, "offset": query.offset}
        params["count_limit"] = _counted(query)  # (LIMIT NULL: all of them)
        params.update(_criteria(query, _utc))
        if "tags" in params:
            params["tags"] = Jsonb(params["tags"])
        conditions = [sql.SQL(_FILTERS[name]) for name in _FILTERS if name in params]
        sort = sql.SQL(_SORT_COLUMNS[query.sort])
        keyset: sql.Composable = sql.SQL("")
        if after is not None:
            keyset = sql.SQL(_KEYSET).format(
                sort=sort, cmp=sql.SQL("<" if query.descending else ">")
            )
            params.update(after_at=after[0], after_workflow=after[1], after_id=after[2])
        statement = sql.SQL(_SQL["search"]).format(
            s=self._ident,
            where=sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("true"),
            keyset=keyset,
            sort=sort,
            order=sql.SQL("DESC" if query.descending else "ASC"),
        )
        async with self._connection() as conn:
            cur = await conn.execute(statement, params)
            rows = await _rows(cur)
        total = rows[0][0] if rows else 0
        # (skipping the row of NULLs carrying the total of an empty page)
        return _page(
            query, total, (row[1:] for row in rows if row[1] is not None), _registry_record
        )

    async def stale(
        self, now: datetime, limit: int, workflows: Sequence[str] | None = None
    ) -> list[InstanceKey]:
        _check_limit("limit", limit)
        names = None if workflows is None else list(workflows)
        rows = await self._fetch("stale", {"now": _utc(now), "limit": limit, "workflows": names})
        return [key for key, _ in _keys(rows, _skip_key)]

    async def purge(
        self,
        statuses: Sequence[RegistryStatus],
        before: datetime,
        now: datetime,
        limit: int,
        workflows: Sequence[str] | None = None,
    ) -> list[InstanceKey]:
        wanted, before, now = _purge_args(statuses, before, now, limit)
        params = {
            "statuses": wanted,
            "before": before,
            "now": now,
            "limit": limit,
            "workflows": None if workflows is None else list(workflows),
        }
        rows = await self._fetch("purge", params)
        return [key for key, _ in _keys(rows, _skip_key)]

    async def wait_for_work(self, timeout: float) -> None:
        self._listen(waiting=True)
        await self._work.wait(self._work_seen, timeout)
        self._work_seen = self._work.generation

    async def wait_for_change(self, timeout: float) -> None:
        """Woken by the schema's notifications ('lease': a release, 'wakeup'), so by the
        releases and wakeups of every process, and latched: one since the previous call
        returns at once. The first call starts listening, and returns at once (see the
        module's docstring)."""
        self._listen(waiting=True)
        await self._wait_for_change(timeout)

    def _listen(self, *, waiting: bool = False) -> None:
        """Start the listening connection unless it runs (``waiting``: for a caller that is
        about to wait, which a closed store refuses with StoreError)."""
        if waiting and self._closed:
            raise StoreError(f"{self!r} is closed")
        if self._listener is None and not self._closed:
            self._listener = asyncio.get_running_loop().create_task(
                self._listen_forever(), name=f"workflows4py listener {self._channel}"
            )

    async def _listen_forever(self) -> None:
        backoff = 0.1
        listen = sql.SQL("LISTEN {}").format(sql.Identifier(self._channel))
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
                async with conn:
                    await conn.execute(listen)
                    backoff = 0.1
                    # Anything may have happened while we were not listening.
                    self._released.fire()
                    self._work.fire()
                    async for notify in conn.notifies():
                        if notify.payload == "lease":  # for acquire, not new work
                            self._released.fire()
                        else:
                            self._work.fire()
            except Exception:  # the server went away, or was never there: retry
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
