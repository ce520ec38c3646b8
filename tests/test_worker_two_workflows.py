"""One ``workflows4py worker`` process, run for real, serves two workflow types from one
``Runtime`` (tests/two_workflows_app.py), on SQLite and on PostgreSQL: instances of both,
due later (a timer; an effect that failed and waits for its retry), are run to completion
by the worker. On PostgreSQL the worker holds one pool: at most its size of connections
plus one listening connection, whatever the number of workflows."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from pg import fresh_schema, require_postgres
from psycopg.conninfo import make_conninfo
from two_workflows_app import (
    DB_ENV,
    MAX_CONNECTIONS,
    PG_DSN_ENV,
    PG_SCHEMA_ENV,
    Delivery,
    Note,
    Parcel,
    Reminder,
    make_runtime,
)

from workflows4py.runtime import Runtime
from workflows4py.stores import SearchQuery

ROOT = Path(__file__).resolve().parent.parent
EACH = 3  # instances of each workflow


@dataclass(frozen=True)
class Backend:
    """Where the worker's runtime and the test's runtime meet."""

    env: dict[str, str]  # what the worker process is given
    own: dict[str, str]  # the test's own runtime (PostgreSQL: without the worker's name)
    application_name: str | None = None  # the worker's connections, in pg_stat_activity

    def runtime(self) -> Runtime:
        return make_runtime(
            db=self.own.get(DB_ENV),
            dsn=self.own.get(PG_DSN_ENV),
            schema=self.own.get(PG_SCHEMA_ENV),
        )


@contextmanager
def backend_for(kind: str, tmp_path: Path) -> Iterator[Backend]:
    if kind == "sqlite":
        env = {DB_ENV: str(tmp_path / "workflows.db")}
        yield Backend(env, env)
        return
    dsn = require_postgres()
    with fresh_schema(dsn) as schema:
        name = f"w4p-two-workflows-{uuid.uuid4().hex[:8]}"
        worker_dsn = make_conninfo(dsn, application_name=name)
        yield Backend(
            {PG_DSN_ENV: worker_dsn, PG_SCHEMA_ENV: schema},
            {PG_DSN_ENV: dsn, PG_SCHEMA_ENV: schema},
            name,
        )


@asynccontextmanager
async def worker_process(backend: Backend, log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m workflows4py worker tests.two_workflows_app:runtime``; killed if the test
    leaves it running."""
    env = {
        **os.environ,
        **backend.env,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")]),
    }
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "workflows4py",
            "worker",
            "tests.two_workflows_app:runtime",
            "--poll-interval",
            "0.1",
            "--concurrency",
            str(MAX_CONNECTIONS),
            "--prefetch",
            "3",
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=out,
        )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def start_due_later(runtime: Runtime) -> None:
    """Instances of both workflows, each waiting for time: the reminders for their timer,
    the deliveries for the retry of an effect that failed in this process."""
    for n in range(1, EACH + 1):
        reminder = await runtime.start(Reminder, f"r-{n}")
        delivery = await runtime.start(Delivery, f"d-{n}", initial_state=Parcel(os.getpid()))
        for instance in (reminder, delivery):
            assert await instance.status() == "awaiting"
            assert await instance.next_wakeup() is not None
        assert await delivery.query_state() == Parcel(os.getpid())  # not handed over here


async def wait_until_finished(
    runtime: Runtime, proc: asyncio.subprocess.Process, log: Path, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while (await runtime.search(SearchQuery(status=["finished"]))).total < 2 * EACH:
        assert proc.returncode is None, log.read_text()
        assert time.monotonic() < deadline, f"not all finished; log:\n{log.read_text()}"
        await asyncio.sleep(0.1)


async def worker_connections(dsn: str, application_name: str) -> tuple[int, int]:
    """The worker's server connections, ``(pooled, listening)``, once its listening
    connection (opened by its first wait for work) has sent its LISTEN."""
    deadline = time.monotonic() + 10
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        while True:
            cursor = await conn.execute(
                "SELECT query FROM pg_stat_activity WHERE application_name = %s",
                (application_name,),
            )
            queries = [str(query) for (query,) in await cursor.fetchall()]
            listening = sum(1 for query in queries if query.startswith("LISTEN"))
            if listening or time.monotonic() > deadline:
                return len(queries) - listening, listening
            await asyncio.sleep(0.1)


async def stop(proc: asyncio.subprocess.Process, log: Path) -> str:
    """SIGTERM, then the worker exits cleanly; its log."""
    proc.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(proc.wait(), timeout=10)
    text = log.read_text()
    assert code == 0, text
    return text


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_one_worker_runs_two_workflow_types_of_one_runtime(kind: str, tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    with backend_for(kind, tmp_path) as backend:
        async with backend.runtime() as runtime:
            await start_due_later(runtime)
            async with worker_process(backend, log) as proc:
                await wait_until_finished(runtime, proc, log)
                for n in range(1, EACH + 1):
                    reminder = await runtime.get(Reminder, f"r-{n}")
                    assert await reminder.query_state() == Note(proc.pid)  # sent by the worker
                    delivery = await runtime.get(Delivery, f"d-{n}")
                    assert await delivery.query_state() == Parcel(os.getpid(), proc.pid)
                if backend.application_name is not None:
                    pooled, listening = await worker_connections(
                        backend.own[PG_DSN_ENV], backend.application_name
                    )
                    assert listening == 1  # one store, so one listener, for both workflows
                    assert 1 <= pooled <= MAX_CONNECTIONS  # one pool, of the runtime's size
                text = await stop(proc, log)
    assert "worker started for reminder, delivery" in text
    assert "worker stopped" in text
    assert "Traceback" not in text, text
