"""PostgreSQL stopped and started again in the middle of a run.

Two workers (``python -m workflows4py worker tests.crash_app:app``) and the test process (the
application: it creates instances and approves them) share one database. Once the workers
are busy, the test stops the local cluster with ``pg_ctlcluster``; while it is down a direct
call raises :class:`StoreUnavailable` (a :class:`WorkflowError`) within the connect timeout,
and the workers keep retrying. Once it is started again, more instances are created and every
instance finishes, each effect having run at least once.

The cluster is the one serving the test DSN's port (``pg_lsclusters``); the test needs
``pg_ctlcluster`` and a local server, and is skipped without them (failed when
``WORKFLOWS4PY_CI=1``). Whatever happens, the cluster is running again when the test ends.
Other users of that server see it go away for a few seconds.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from crash_app import (
    RECOVER,
    Approve,
    Crashy,
    St,
    approve,
    approve_until_finished,
    check_effects,
    check_finished_journal,
    check_replays,
    create_all,
    describe,
    effect_pids,
    instance_ids,
    make_runtime,
    read_effects,
    read_journals,
    reap,
    spawn_worker,
    stop,
    tail,
    wait_logged,
)
from pg import fresh_schema, require_postgres
from psycopg.conninfo import conninfo_to_dict

from workflows4py import DurableRuntime, StoreUnavailable, Worker, WorkflowError
from workflows4py.stores import SqliteStore, Store

INSTANCES = 40
LATE = 10  # of which created once the database is back
WORKERS = 2
TIMER = 0.3
CONNECT_TIMEOUT = 2.0  # seconds a call waits for a connection before StoreUnavailable
DOWN_FOR = 2.0  # seconds the database stays down after the direct calls failed
READY_WITHIN = 60.0


@dataclass(frozen=True)
class Cluster:
    version: str
    name: str
    host: str
    port: str

    def ctl(self, action: str) -> subprocess.CompletedProcess[str]:
        command = ["pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.name, action]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    def ready(self) -> bool:
        command = ["pg_isready", "-q", "-h", self.host, "-p", self.port, "-t", "1"]
        return subprocess.run(command, check=False, timeout=30).returncode == 0

    def stop(self) -> None:
        done = self.ctl("stop")
        if done.returncode != 0:
            raise AssertionError(f"pg_ctlcluster stop failed: {done.stdout}{done.stderr}")

    def ensure_running(self) -> None:
        """Start the cluster unless it runs, and wait until it accepts connections."""
        deadline = time.monotonic() + READY_WITHIN
        if not self.ready():
            self.ctl("start")  # exits with 2 if it was running after all
        while not self.ready():
            if time.monotonic() > deadline:
                raise AssertionError(f"PostgreSQL {self} not ready after {READY_WITHIN} s")
            time.sleep(0.1)


def unusable(why: str) -> None:
    if os.environ.get("WORKFLOWS4PY_CI") == "1":
        pytest.fail(why, pytrace=False)
    pytest.skip(why)


def local_cluster(dsn: str) -> Cluster:
    """The cluster of this machine serving ``dsn``'s port; skip (or fail in CI) if none."""
    params = conninfo_to_dict(dsn)
    host = str(params.get("host") or "localhost")
    port = str(params.get("port") or "5432")
    if host not in ("localhost", "127.0.0.1", "::1") and not host.startswith("/"):
        unusable(f"PostgreSQL at {host} is not on this machine: it cannot be restarted")
    for tool in ("pg_ctlcluster", "pg_lsclusters", "pg_isready"):
        if shutil.which(tool) is None:
            unusable(f"{tool} not found: cannot restart PostgreSQL")
    listed = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=False
    )
    for line in listed.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == port:
            return Cluster(fields[0], fields[1], host, port)
    unusable(f"no local PostgreSQL cluster on port {port} (pg_lsclusters: {listed.stdout!r})")
    raise AssertionError("unreachable")


@pytest.fixture
def cluster() -> Iterator[tuple[Cluster, str]]:
    dsn = require_postgres()
    found = local_cluster(dsn)
    try:
        yield found, dsn
    finally:
        found.ensure_running()


async def test_workers_ride_out_a_postgres_restart(
    cluster: tuple[Cluster, str], tmp_path: Path
) -> None:
    server, dsn = cluster
    with fresh_schema(dsn) as schema:
        try:
            await run(server, dsn, schema, tmp_path)
        finally:
            # before the schema is dropped, and whatever happened
            await asyncio.to_thread(server.ensure_running)


async def run(server: Cluster, dsn: str, schema: str, tmp_path: Path) -> None:
    effects = tmp_path / "effects.log"
    settings = {
        "CRASH_BACKEND": "postgres",
        "CRASH_DB": dsn,
        "CRASH_SCHEMA": schema,
        "CRASH_EFFECTS": str(effects),
        "CRASH_TIMER": str(TIMER),
        "CRASH_EFFECT_PAUSE": "0.01",
        "CRASH_LEASE_TTL": "2",
        "CRASH_LEASE_WAIT": "10",
        "CRASH_BACKOFF": "0.2",
        "CRASH_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
    }
    ids = instance_ids(INSTANCES)
    runtime = make_runtime(
        "postgres",
        dsn,
        schema=schema,
        effects_log=str(effects),
        timer_s=TIMER,
        lease_ttl=2,
        connect_timeout=CONNECT_TIMEOUT,
    )
    await runtime.initialize()
    logs = [tmp_path / f"worker-{n}.log" for n in range(WORKERS)]
    workers: list[subprocess.Popen[bytes]] = []
    try:
        for log in logs:
            workers.append(spawn_worker(settings, log, log_level="INFO"))
        for log in logs:
            await wait_logged(log, "worker started", 15)
        await create_all(runtime, ids[: INSTANCES - LATE])
        approver = asyncio.ensure_future(approve_until_finished(runtime, ids, 90, recover=RECOVER))
        try:
            # the workers are busy: they fired timers and run effects
            while sum(effect_pids(effects)[w.pid] for w in workers) < 10:
                assert not approver.done(), approver
                await asyncio.sleep(0.01)

            await asyncio.to_thread(server.stop)
            # a direct call reports the outage as a typed error, within the connect timeout
            started = time.monotonic()
            with pytest.raises(StoreUnavailable) as outage:
                await runtime.create_instance(ids[-1])
            assert isinstance(outage.value, WorkflowError)
            with pytest.raises(StoreUnavailable):
                await runtime.get_instance(ids[0])
            assert time.monotonic() - started < 2 * CONNECT_TIMEOUT + 5
            await asyncio.sleep(DOWN_FOR)  # the workers' rounds fail meanwhile

            await asyncio.to_thread(server.ensure_running)
            back = time.monotonic()
            await create_all(runtime, ids[INSTANCES - LATE :])  # retried until it works
            recreated_in = time.monotonic() - back
            refused = await approver
        finally:
            if not approver.done():
                approver.cancel()

        for worker in workers:
            assert await stop(worker) == 0
        # StoreUnavailable in a worker's log: a round or an operation failed and was retried
        noticed = {log.name: log.read_text().count("StoreUnavailable:") for log in logs}
        journals = await read_journals(runtime.store, ids)
        for i, journal in journals.items():
            check_finished_journal(i, journal)
        await check_replays(journals)
        repeats = check_effects(journals, read_effects(str(effects)), exactly_once=False)
        print(
            f"StoreUnavailable errors logged by the workers: {noticed}; the late instances "
            f"were created {recreated_in:.1f} s after the restart; {refused} application "
            f"calls failed and were retried; {repeats} effects repeated"
        )
        assert any(noticed.values()), "no worker noticed the outage"
    except Exception as e:
        raise AssertionError(f"{e}\n{tail(logs)}") from e
    finally:
        reap(workers)
        await runtime.close()


# -- a store error between a signal's event and the next one ----------------------------------
#
# The run above hits this now and then (the database goes away between two appends of one
# operation). Here it is hit exactly, on SQLite (it is about the runtime, not a store): one
# append fails, as it would with the database away, and nothing else.


class FlakyStore:
    """A store whose first call for which ``fails`` holds raises StoreUnavailable, unrun."""

    def __init__(self, store: Store, fails: Callable[[str, tuple[Any, ...]], bool]) -> None:
        self.store = store
        self.fails = fails
        self.failed = False

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.store, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            if not self.failed and self.fails(name, args):
                self.failed = True
                raise StoreUnavailable("the database went away (simulated)")
            return await method(*args, **kwargs)

        return call


async def test_a_store_error_after_a_signal_does_not_strand_the_instance(tmp_path: Path) -> None:
    def timer_after_approval(name: str, args: tuple[Any, ...]) -> bool:
        # the Settle timer's start, recorded right after the approval's event (#6)
        return name == "append" and args[1] == 6

    log = str(tmp_path / "effects.log")
    store = FlakyStore(SqliteStore(tmp_path / "workflows.db"), timer_after_approval)
    runtime = DurableRuntime(
        Crashy,
        cast(Store, store),
        initial_state=St(TIMER, log),
        lease_ttl=1.0,
        lease_wait=5.0,
        failure_backoff=timedelta(seconds=0.2),
    )
    await runtime.initialize()
    worker = Worker([runtime], poll_interval=0.05)
    try:
        instance = await runtime.create_instance("i0")
        while approve not in await instance.expected_signals():
            await worker.run_once()
            await asyncio.sleep(0.02)
        with pytest.raises(StoreUnavailable):
            await instance.deliver_signal(approve, Approve("ok"))
        # the application retries its call: the signal was handled, its response comes back
        assert await instance.deliver_signal(approve, Approve("ok")) == "Crashy:i0:6"
        deadline = time.monotonic() + 2.0
        while await instance.status() != "finished" and time.monotonic() < deadline:
            await worker.run_once()
            await asyncio.sleep(0.05)
        assert await instance.status() == "finished", await describe(runtime.store, "i0")
    finally:
        await runtime.close()
