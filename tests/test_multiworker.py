"""Four worker processes on PostgreSQL drive 500 instances while one of them is SIGKILLed.

The test process is the application: it creates the instances (each then waits on a short
real timer) and approves each one when it asks (then another timer); the workers
(``python -m workflows4py worker tests.crash_app:app``) fire the timers and run the steps
that follow. Once the workers have done a good part of the work, one of them is killed
with SIGKILL; the other three must take over its claims and its interrupted instances.

Checked: every instance finishes; every journal is contiguous, complete and unforked (each
effect's event carries the idempotency key of its own position, the steps come once each in
order, and the journal replays); every recorded effect ran at least once and nothing ran
outside the journals.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from crash_app import (
    RECOVER,
    approve_until_finished,
    check_effects,
    check_finished_journal,
    check_replays,
    create_all,
    effect_pids,
    instance_ids,
    kill,
    make_runtime,
    read_journals,
    reap,
    spawn_worker,
    stop,
    tail,
    wait_logged,
)
from pg import fresh_schema, require_postgres

INSTANCES = 500
WORKERS = 4
TIMER = 0.3  # both timers of every instance
EFFECT_PAUSE = 0.01  # each effect run by a worker takes this long: the kill may land in one
LEASE_TTL = 2.0  # how soon the survivors take over the killed worker's instances
KILL_AFTER = 0.3  # kill once the workers ran this share of their effects
FINISH_WITHIN = 75.0


@pytest.fixture
def schema() -> Iterator[tuple[str, str]]:
    dsn = require_postgres()
    with fresh_schema(dsn) as name:
        yield dsn, name


async def test_four_workers_one_killed_drive_500_instances(
    schema: tuple[str, str], tmp_path: Path
) -> None:
    dsn, name = schema
    effects = tmp_path / "effects.log"
    settings = {
        "CRASH_BACKEND": "postgres",
        "CRASH_DB": dsn,
        "CRASH_SCHEMA": name,
        "CRASH_EFFECTS": str(effects),
        "CRASH_TIMER": str(TIMER),
        "CRASH_EFFECT_PAUSE": str(EFFECT_PAUSE),
        "CRASH_LEASE_TTL": str(LEASE_TTL),
        "CRASH_LEASE_WAIT": "10",
    }
    ids = instance_ids(INSTANCES)
    runtime = make_runtime(
        "postgres",
        dsn,
        schema=name,
        effects_log=str(effects),
        timer_s=TIMER,
        lease_ttl=LEASE_TTL,
        max_connections=8,
    )
    await runtime.initialize()
    logs = [tmp_path / f"worker-{n}.log" for n in range(WORKERS)]
    workers: list[subprocess.Popen[bytes]] = []
    start = time.monotonic()
    try:
        for log in logs:
            workers.append(spawn_worker(settings, log, batch=20, log_level="INFO"))
        for log in logs:
            await wait_logged(log, "worker started", 15)
        victim = workers[0]
        deadline = start + FINISH_WITHIN

        async def kill_midway() -> int:
            """SIGKILL the first worker once the workers ran KILL_AFTER of their effects."""
            # the workers run 3 of each instance's 6 effects (charge, ship and notify; the
            # test process runs prepare and reserve when it creates it, approve when it asks)
            target = KILL_AFTER * 3 * INSTANCES
            while time.monotonic() < deadline:
                ran = effect_pids(effects)
                by_workers = sum(ran[w.pid] for w in workers)
                if by_workers >= target and ran[victim.pid] > 0:
                    await kill(victim)
                    return ran[victim.pid]
                await asyncio.sleep(0.01)
            raise AssertionError(f"the workers never ran {target} effects")

        killer = asyncio.ensure_future(kill_midway())
        try:
            await create_all(runtime, ids)
            refused = await approve_until_finished(
                runtime, ids, deadline - time.monotonic(), recover=RECOVER
            )
        finally:
            if not killer.done():
                killer.cancel()
        assert not killer.cancelled(), "every instance finished before the kill"
        victim_effects = await killer
        elapsed = time.monotonic() - start
        for worker in workers[1:]:
            assert await stop(worker) == 0, tail(logs)

        journals = await read_journals(runtime.store, ids)
        for i, journal in journals.items():
            check_finished_journal(i, journal)
        await check_replays(journals)
        ran = effect_pids(effects)
        repeats = check_effects(
            journals,
            [line.split(" ", 1)[0] for line in effects.read_text().splitlines()],
            exactly_once=False,
        )
        survivors = {w.pid: ran[w.pid] for w in workers[1:]}
        print(
            f"{INSTANCES} instances finished in {elapsed:.1f} s; the killed worker ran "
            f"{victim_effects} effects, the others {survivors}; {repeats} effects repeated; "
            f"{refused} approvals refused (retried)"
        )
        assert all(n > 0 for n in survivors.values()), survivors
    except Exception as e:
        raise AssertionError(f"{e}\n{tail(logs)}") from e
    finally:
        reap(workers)
        await runtime.close()
