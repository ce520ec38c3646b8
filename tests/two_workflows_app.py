"""One runtime, two workflow types: the app of ``tests/test_worker_two_workflows.py``,
loaded by the real command::

    WORKFLOWS4PY_TEST_DB=/tmp/w.db python -m workflows4py worker tests.two_workflows_app:runtime

(or ``WORKFLOWS4PY_TEST_PG_DSN`` and ``WORKFLOWS4PY_TEST_PG_SCHEMA`` for PostgreSQL).

- A ``Reminder`` waits one (real) second, a timer, then sends itself.
- A ``Delivery`` hands its parcel to a carrier that refuses the process that started the
  instance (the test), so the effect fails there and is retried one second later: by
  whichever process then runs it, the worker.

Both effects record the id of the process that ran them, so the test can tell the worker
ran them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

from workflows4py import WIO, Workflow
from workflows4py.runtime import Runtime

__all__ = [
    "DB_ENV",
    "MAX_CONNECTIONS",
    "PG_DSN_ENV",
    "PG_SCHEMA_ENV",
    "Delivery",
    "Handed",
    "Note",
    "Parcel",
    "Reminder",
    "Sent",
    "make_runtime",
    "runtime",
]

DB_ENV = "WORKFLOWS4PY_TEST_DB"
PG_DSN_ENV = "WORKFLOWS4PY_TEST_PG_DSN"
PG_SCHEMA_ENV = "WORKFLOWS4PY_TEST_PG_SCHEMA"
MAX_CONNECTIONS = 3
"""The size of the PostgreSQL pool (the worker runs at most this many instances at once)."""


@dataclass(frozen=True)
class Note:
    sent_by: int = 0


@dataclass(frozen=True)
class Sent:
    pid: int


def send(note: Note) -> Sent:
    return Sent(os.getpid())


class Reminder(Workflow[Note, Sent]):
    id = "reminder"
    definition = WIO.timer(timedelta(seconds=1), input=Note, name="Wait A Second") >> (
        WIO.run_io(Note, send).handle_event(lambda n, e: Note(e.pid)).named("Send")
    )


@dataclass(frozen=True)
class Parcel:
    started_by: int
    handed_by: int = 0


@dataclass(frozen=True)
class Handed:
    pid: int


def hand_over(parcel: Parcel) -> Handed:
    if os.getpid() == parcel.started_by:
        raise ConnectionError("the carrier does not answer the process that started the parcel")
    return Handed(os.getpid())


class Delivery(Workflow[Parcel, Handed]):
    id = "delivery"
    definition = (
        WIO.run_io(Parcel, hand_over)
        .handle_event(lambda p, e: Parcel(p.started_by, e.pid))
        .named("Hand Over")
        .retry(timedelta(seconds=1))
    )


def make_runtime(
    *, db: str | None = None, dsn: str | None = None, schema: str | None = None
) -> Runtime:
    """Both workflows over one store: the SQLite file ``db``, or PostgreSQL's ``schema``."""
    if db is not None:
        return Runtime.sqlite(db, [Reminder, Delivery], initial_states={Reminder: Note()})
    if dsn is None or schema is None:
        raise ValueError("give db, or dsn and schema")
    return Runtime.postgres(
        dsn,
        [Reminder, Delivery],
        schema=schema,
        max_connections=MAX_CONNECTIONS,
        initial_states={Reminder: Note()},
    )


def runtime() -> Runtime:
    """What the worker command drives: the store named by the environment."""
    return make_runtime(
        db=os.environ.get(DB_ENV),
        dsn=os.environ.get(PG_DSN_ENV),
        schema=os.environ.get(PG_SCHEMA_ENV),
    )
