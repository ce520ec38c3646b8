"""The app of ``tests/test_cli_lifecycle.py``, loaded by the real command::

    WORKFLOWS4PY_CLI_BACKEND=sqlite:/tmp/w.db python -m workflows4py start cli_app:runtime ...

One :class:`Runtime` (``sqlite:PATH``, or ``postgres:SCHEMA`` on the server named by
``WORKFLOWS4PY_PG_DSN``, which the tests set) for the
pull requests of examples/pull_request.py (they start from ``Empty()``) and ``flaky``, a
workflow whose one effect raises while the file named by ``WORKFLOWS4PY_CLI_OUTAGE``
exists: after one failed attempt the instance is parked (``max_attempts=1``), for
``resume`` to take it up again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workflows4py import WIO, Workflow
from workflows4py.examples.pull_request import Empty, PullRequest
from workflows4py.runtime import Runtime

__all__ = ["BACKEND_ENV", "OUTAGE_ENV", "Flaky", "Job", "runtime"]

BACKEND_ENV = "WORKFLOWS4PY_CLI_BACKEND"
OUTAGE_ENV = "WORKFLOWS4PY_CLI_OUTAGE"


@dataclass(frozen=True)
class Job:
    done: bool = False


@dataclass(frozen=True)
class Ran:
    pass


def call_the_service(job: Job) -> Ran:
    outage = os.environ.get(OUTAGE_ENV)
    if outage and Path(outage).exists():
        raise RuntimeError("the service is down")
    return Ran()


class Flaky(Workflow[Job, Ran]):
    id = "flaky"
    initial_state = Job()
    definition = WIO.run_io(Job, call_the_service).handle_event(lambda job, ran: Job(done=True))


def runtime() -> Runtime:
    """The runtime on the database named by WORKFLOWS4PY_CLI_BACKEND."""
    kind, _, where = os.environ[BACKEND_ENV].partition(":")
    workflows: list[type[Workflow[Any, Any]]] = [PullRequest, Flaky]
    initial: dict[type[Workflow[Any, Any]], Any] = {PullRequest: Empty()}
    if kind == "sqlite":
        return Runtime.sqlite(where, workflows, initial_states=initial, max_attempts=1)
    return Runtime.postgres(
        os.environ["WORKFLOWS4PY_PG_DSN"],
        workflows,
        schema=where,
        max_connections=2,
        initial_states=initial,
        max_attempts=1,
    )
