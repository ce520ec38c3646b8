"""Workers killed with SIGKILL at random points, on SQLite and PostgreSQL (real subprocesses).

Each trial: a fresh database; ``python -m workflows4py worker tests.crash_app:app``, which is
also the application's client (it creates three :class:`Crashy` instances and approves
them), killed after a random delay, once or twice, then started again and left to finish.
Checked: the journals read through the store before and after each kill only grow; every
instance finishes after the restart with a complete, contiguous journal that replays; every
effect recorded in a journal ran (its idempotency key is in the effects log) and nothing ran
outside the journals; in trials without a kill, every effect ran exactly once.

``WORKFLOWS4PY_CRASH_TRIALS`` sets the number of trials per backend (default 50),
``WORKFLOWS4PY_CRASH_SEED`` replays a run's random choices (the seed is printed; trials run
a few at a time, so timings still differ).
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from crash_app import (
    RECOVER,
    Approve,
    Crashy,
    Journals,
    Runtime,
    St,
    approve,
    check_effects,
    check_finished_journal,
    check_grew,
    check_replays,
    describe,
    instance_ids,
    kill,
    make_runtime,
    read_effects,
    read_journals,
    reap,
    spawn_worker,
    stop,
    tail,
    wait_finished,
    wait_logged,
)
from pg import fresh_schema, require_postgres

from workflows4py import DurableRuntime, Worker
from workflows4py.stores import InstanceKey, PostgresStore, SqliteStore, Store

TRIALS = int(os.environ.get("WORKFLOWS4PY_CRASH_TRIALS", "50"))
INSTANCES = 3
PARALLEL = 4  # trials at once: most of a trial is waiting (process start, lease expiry)
LEASE_TTL = 1.0
TIMER = 0.05
EFFECT_PAUSE = 0.005  # widens the window between an effect and its event, where kills matter
FIRST_KILL_BY = 0.9  # seconds: a run without a kill takes 0.4-1 s (process start included)
FINISH_WITHIN = 30.0


@dataclass
class Trial:
    number: int
    seed: str
    kills: list[float] = field(default_factory=list)  # delay before each kill
    repeats: int = 0  # effect executions beyond the first
    last_run: float = 0.0  # seconds from the start of the last worker to every instance finished

    def __str__(self) -> str:
        delays = ", ".join(f"{d:.3f}s" for d in self.kills) or "none"
        return f"trial {self.number} (seed {self.seed!r}, kills after {delays})"


@dataclass(frozen=True)
class Backend:
    name: str
    settings: dict[str, str]  # CRASH_* variables naming the database
    store: Store  # the test's own view of that database


def crash_seed() -> int:
    seed = int(os.environ.get("WORKFLOWS4PY_CRASH_SEED") or random.randrange(2**32))
    print(f"crash test seed: {seed} (rerun with WORKFLOWS4PY_CRASH_SEED={seed})")
    return seed


async def run_trial(trial: Trial, backend: Backend, workdir: Path) -> None:
    """One trial: start, kill (0, 1 or 2 times), restart, finish; then check everything."""
    rng = random.Random(trial.seed)
    kills = 0 if trial.number % 10 == 0 else rng.choice((1, 1, 1, 2))
    ids = instance_ids(INSTANCES)
    effects = workdir / "effects.log"
    logs: list[Path] = []
    settings = {
        **backend.settings,
        "CRASH_EFFECTS": str(effects),
        "CRASH_INSTANCES": str(INSTANCES),
        "CRASH_TIMER": str(TIMER),
        "CRASH_EFFECT_PAUSE": str(EFFECT_PAUSE),
        "CRASH_LEASE_TTL": str(LEASE_TTL),
        "CRASH_LEASE_WAIT": "10",
        "CRASH_RECOVER": "1" if RECOVER else "0",
    }
    store = backend.store
    await store.initialize()
    processes: list[subprocess.Popen[bytes]] = []
    persisted: Journals = {i: [] for i in ids}
    try:
        for n in range(kills):
            logs.append(workdir / f"worker-{n}.log")
            process = spawn_worker(settings, logs[-1])
            processes.append(process)
            # the first kill lands anywhere in a normal run; a second one anywhere in the
            # recovery, which starts by waiting for the dead process's leases to lapse
            delay = rng.uniform(0, FIRST_KILL_BY if n == 0 else LEASE_TTL + FIRST_KILL_BY)
            trial.kills.append(delay)
            await asyncio.sleep(delay)
            before = await read_journals(store, ids)
            check_grew(persisted, before, f"before kill {n + 1}")
            await kill(process)
            after = await read_journals(store, ids)
            check_grew(before, after, f"across kill {n + 1}")
            persisted = after
        logs.append(workdir / f"worker-{kills}.log")
        process = spawn_worker(settings, logs[-1], log_level="INFO")
        processes.append(process)
        started = time.monotonic()
        await wait_finished(store, ids, FINISH_WITHIN)
        trial.last_run = time.monotonic() - started
        final = await read_journals(store, ids)
        check_grew(persisted, final, "after the restart")
        # stop it only once it runs (before that, SIGTERM kills a process still importing)
        await wait_logged(logs[-1], "client: every instance finished", FINISH_WITHIN)
        code = await stop(process)
        assert code == 0, f"the last worker exited with {code} on SIGTERM"
        for i, journal in final.items():
            check_finished_journal(i, journal)
        await check_replays(final)
        trial.repeats = check_effects(final, read_effects(str(effects)), exactly_once=kills == 0)
    except Exception as e:
        raise AssertionError(f"{trial} failed: {e}\n{tail(logs)}") from e
    finally:
        reap(processes)


NewBackend = Callable[[Path], AbstractContextManager[Backend]]
"""A fresh database for one trial, dropped on exit."""


async def run_trials(name: str, new_backend: NewBackend, tmp_path: Path) -> None:
    seed = crash_seed()
    trials = [Trial(n, f"{seed}:{name}:{n}") for n in range(TRIALS)]
    gate = asyncio.Semaphore(PARALLEL)

    async def one(trial: Trial) -> None:
        async with gate:
            workdir = tmp_path / f"trial-{trial.number}"
            workdir.mkdir()
            with new_backend(workdir) as backend:
                try:
                    await run_trial(trial, backend, workdir)
                finally:
                    await backend.store.close()

    outcomes = await asyncio.gather(*(one(t) for t in trials), return_exceptions=True)
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    kills = sum(len(t.kills) for t in trials)
    repeats = sum(t.repeats for t in trials)
    clean = [t.last_run for t in trials if not t.kills]
    print(
        f"{name}: {len(trials)} trials, {len(clean)} without a kill "
        f"(run in {sum(clean) / max(len(clean), 1):.2f} s on average), {kills} kills, "
        f"{repeats} effect executions repeated after a kill"
    )
    if failures:
        report = "\n\n".join(str(f) for f in failures[:3])
        raise AssertionError(f"{len(failures)} of {len(trials)} trials failed:\n{report}")


@contextmanager
def sqlite_backend(workdir: Path) -> Iterator[Backend]:
    path = workdir / "workflows.db"
    yield Backend("sqlite", {"CRASH_BACKEND": "sqlite", "CRASH_DB": str(path)}, SqliteStore(path))


def postgres_backends(dsn: str) -> NewBackend:
    @contextmanager
    def new(workdir: Path) -> Iterator[Backend]:
        with fresh_schema(dsn) as schema:
            settings = {"CRASH_BACKEND": "postgres", "CRASH_DB": dsn, "CRASH_SCHEMA": schema}
            yield Backend("postgres", settings, PostgresStore(dsn, schema=schema, max_size=2))

    return new


async def test_sqlite_workers_killed_at_random_points(tmp_path: Path) -> None:
    await run_trials("sqlite", sqlite_backend, tmp_path)


async def test_postgres_workers_killed_at_random_points(tmp_path: Path) -> None:
    await run_trials("postgres", postgres_backends(require_postgres()), tmp_path)


# -- interruptions in the narrow windows -------------------------------------------------------
#
# Each window is hit exactly: the runtime runs on a store that "dies" right after a chosen
# call (every later call raises, so nothing more is written, as after SIGKILL), then a new
# runtime on the same file takes over. The random trials hit the signal window now and then
# (a few trials in 50 per backend); workers alone must then finish the instance.

RECOVERY = 1.5  # seconds the new process gets to move the instance on


class Killed(BaseException):
    """The process died here (a BaseException: no ``except Exception`` writes anything)."""


class DyingStore:
    """A store that dies right after the first call for which ``dies_after`` is true."""

    def __init__(self, store: Store, dies_after: Callable[[str, tuple[Any, ...]], bool]) -> None:
        self.store = store
        self.dies_after = dies_after
        self.dead = False

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.store, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.dead:
                raise Killed
            result = await method(*args, **kwargs)
            if self.dies_after(name, args):
                self.dead = True
                raise Killed
            return result

        return call


def dying_runtime(db: str, log: str, dies_after: Callable[[str, tuple[Any, ...]], bool]) -> Runtime:
    store = DyingStore(SqliteStore(db), dies_after)
    return DurableRuntime(Crashy, cast(Store, store), initial_state=St(TIMER, log), lease_ttl=0.3)


async def take_over(
    runtime: Runtime, retry: Callable[[], Awaitable[object]], done: Callable[[], Awaitable[bool]]
) -> None:
    """A new process: the application retries its call, a worker runs until ``done``."""
    await runtime.initialize()
    await retry()
    worker = Worker([runtime], poll_interval=0.05)
    deadline = time.monotonic() + RECOVERY
    while not await done() and time.monotonic() < deadline:
        await worker.run_once()
        await asyncio.sleep(0.05)


async def _no_retry() -> None:
    pass


@pytest.mark.parametrize(
    ("dies_after", "application_retries"),
    [
        pytest.param("create_leased", True, id="registered-then-retried"),
        pytest.param("create_leased", False, id="registered-then-left-to-workers"),
        pytest.param("append", False, id="first-event-then-left-to-workers"),
    ],
)
async def test_interrupted_creation_is_resumed(
    tmp_path: Path, dies_after: str, application_retries: bool
) -> None:
    """The creator dies after registering the instance (the application calls
    create_instance again, or no one does: the workers must start it once its lease lapses),
    or after writing its first event (the workers must go on)."""
    db, log = str(tmp_path / "workflows.db"), str(tmp_path / "effects.log")
    dead = dying_runtime(db, log, lambda name, args: name == dies_after)
    await dead.initialize()
    with pytest.raises(Killed):
        await dead.create_instance("i0")
    await cast(DyingStore, dead.store).store.close()

    runtime = make_runtime("sqlite", db, effects_log=log, timer_s=TIMER)

    async def awaits_approval() -> bool:
        return approve in await (await runtime.get_instance("i0")).expected_signals()

    async def create_again() -> None:
        await runtime.create_instance("i0")

    try:
        await take_over(
            runtime, create_again if application_retries else _no_retry, awaits_approval
        )
        assert await awaits_approval(), await describe(runtime.store, "i0")
    finally:
        await runtime.close()


async def test_interrupted_signal_is_resumed(tmp_path: Path) -> None:
    db, log = str(tmp_path / "workflows.db"), str(tmp_path / "effects.log")

    def after_approval(name: str, args: tuple[Any, ...]) -> bool:
        return name == "append" and any(e.type == "crash.Approved" for e in args[2])

    dead = dying_runtime(db, log, after_approval)
    await dead.initialize()
    instance = await dead.create_instance("i0")
    worker = Worker([dead], poll_interval=0.05)
    while approve not in await instance.expected_signals():
        await worker.run_once()
        await asyncio.sleep(0.02)
    with pytest.raises(Killed):
        await instance.deliver_signal(approve, Approve("ok"))
    await cast(DyingStore, dead.store).store.close()

    runtime = make_runtime("sqlite", db, effects_log=log, timer_s=TIMER)
    key = InstanceKey(Crashy.name, "i0")
    instance = runtime._handle("i0")

    async def redeliver() -> None:
        # the signal was handled: its response is recomputed from the recorded event
        assert await instance.deliver_signal(approve, Approve("ok")) == f"{key}:6"

    async def finished() -> bool:
        return await instance.status() == "finished"

    try:
        await take_over(runtime, redeliver, finished)
        assert await finished(), await runtime.store.get_record(key)
    finally:
        await runtime.close()
