"""A worker app for ``tests/test_worker_cli.py``, loaded by the real command::

    WORKFLOWS4PY_TEST_DB=/tmp/w.db python -m workflows4py worker tests.worker_app:runtimes

A reminder waits one (real) second, then sends itself: the effect records the id of the
process that ran it, so the test can tell the worker did it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from workflows4py import WIO, DurableRuntime, SqliteRuntime, Workflow

__all__ = ["DB_ENV", "Note", "Sent", "Wakeup", "make_runtime", "runtimes"]

DB_ENV = "WORKFLOWS4PY_TEST_DB"


@dataclass(frozen=True)
class Note:
    sent_by: int = 0


@dataclass(frozen=True)
class Sent:
    pid: int


def send(note: Note) -> Sent:
    return Sent(os.getpid())


def on_sent(note: Note, event: Sent) -> Note:
    return Note(event.pid)


class Wakeup(Workflow[Note, Sent]):
    definition = WIO.timer(timedelta(seconds=1), input=Note, name="Wait A Second") >> (
        WIO.run_io(Note, send).handle_event(on_sent).named("Send")
    )


def make_runtime(path: str | os.PathLike[str]) -> SqliteRuntime[Note, Sent]:
    return SqliteRuntime(Wakeup, Path(path), initial_state=Note())


def runtimes() -> list[DurableRuntime[Any, Any]]:
    """What the worker command drives: the runtime on the file named by WORKFLOWS4PY_TEST_DB."""
    return [make_runtime(os.environ[DB_ENV])]
