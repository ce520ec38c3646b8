"""The application the crash, multi-worker and restart tests run in real subprocesses.

``python -m workflows4py worker tests.crash_app:app`` (with the repository root on
``PYTHONPATH``) drives :class:`Crashy` instances on the backend named by the environment:

- ``CRASH_BACKEND``: ``sqlite`` or ``postgres``; ``CRASH_DB``: the SQLite file or the DSN;
  ``CRASH_SCHEMA``: the PostgreSQL schema.
- ``CRASH_EFFECTS``: the effects log, one line per execution of a side effect.
- ``CRASH_LEASE_TTL``, ``CRASH_LEASE_WAIT``, ``CRASH_BACKOFF`` (seconds): runtime options;
  ``CRASH_CONNECT_TIMEOUT`` (seconds): how long a PostgreSQL call waits for a connection.
- ``CRASH_TIMER`` (seconds): the length of both timers; ``CRASH_EFFECT_PAUSE`` (seconds):
  how long each effect takes after logging itself.
- ``CRASH_INSTANCES``: when set to ``n``, the process is also the application's client: it
  creates instances ``i0`` .. ``i<n-1>`` and approves each one when it awaits approval, so a
  process killed and started again picks up where the killed one stopped.
  ``CRASH_RECOVER=0`` turns off its workaround of a stranded-instance bug (:func:`client`).

Each side effect appends ``<idempotency key> <step> <pid>`` to the effects log and fsyncs it
before returning, so a line in the log is an effect that ran, whatever happened next.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from workflows4py import (
    WIO,
    DurableRuntime,
    InMemoryRuntime,
    JournalEntry,
    PostgresRuntime,
    SignalDef,
    SqliteRuntime,
    Workflow,
    WorkflowError,
    current_step,
    type_tag,
)
from workflows4py.stores import InstanceKey, InstanceRecord, SearchQuery, Store

__all__ = [
    "EFFECT_EVENT_TYPES",
    "EVENT_TYPES",
    "RECOVER",
    "ROOT",
    "Approve",
    "Approved",
    "Crashy",
    "Journals",
    "Runtime",
    "St",
    "Stepped",
    "app",
    "approve",
    "approve_until_finished",
    "check_effects",
    "check_finished_journal",
    "check_grew",
    "check_replays",
    "client",
    "create_all",
    "describe",
    "effect_keys",
    "effect_pids",
    "instance_ids",
    "kill",
    "make_runtime",
    "read_effects",
    "read_journals",
    "reap",
    "record_effect",
    "spawn_worker",
    "statuses",
    "stop",
    "tail",
    "wait_exit",
    "wait_finished",
    "wait_logged",
]

_log = logging.getLogger("tests.crash_app")

T = TypeVar("T")

# -- the workflow -----------------------------------------------------------------------------


@dataclass(frozen=True)
class St:
    timer_s: float
    effects_log: str
    effect_pause: float = 0.0  # seconds each effect takes after it logged itself
    done: tuple[str, ...] = ()


@type_tag("crash.Stepped")
@dataclass(frozen=True)
class Stepped:
    step: str
    key: str


@type_tag("crash.Approved")
@dataclass(frozen=True)
class Approved:
    note: str
    key: str


@dataclass(frozen=True)
class Approve:
    note: str


approve = SignalDef("approve", request=Approve, response=str)

EVENT_TYPES = (
    "crash.Stepped",  # prepare
    "crash.Stepped",  # reserve
    "workflows4py.TimerStarted",
    "workflows4py.TimerReleased",
    "crash.Stepped",  # charge
    "crash.Approved",
    "workflows4py.TimerStarted",
    "workflows4py.TimerReleased",
    "crash.Stepped",  # ship
    "crash.Stepped",  # notify
)
"""The journal of a finished instance, by type tag."""

EFFECT_EVENT_TYPES = frozenset({"crash.Stepped", "crash.Approved"})
"""Events recorded by a side effect (each has an idempotency key in the effects log)."""


def record_effect(state: St, key: str, step: str) -> None:
    """Append one line to the effects log, on disk before this returns; then take
    ``state.effect_pause`` seconds (a slow downstream call: a kill lands there more often)."""
    path = state.effects_log
    line = f"{key} {step} {os.getpid()}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one write of a short line to an O_APPEND file: never interleaved
        os.fsync(fd)
    finally:
        os.close(fd)
    if state.effect_pause:
        time.sleep(state.effect_pause)


def read_effects(path: str) -> list[str]:
    """Idempotency keys of the effects that ran, one per execution, in order."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return []
    # a line is written by one write() call, so there is no torn line to skip
    return [line.split(" ", 1)[0] for line in text.splitlines() if line]


def _effect(step: str) -> Callable[[St], Stepped]:
    def run(state: St) -> Stepped:
        key = current_step().idempotency_key
        record_effect(state, key, step)
        return Stepped(step, key)

    run.__name__ = step
    return run


def _on_stepped(state: St, event: Stepped) -> St:
    return replace(state, done=(*state.done, event.step))


def _approve(state: St, request: Approve) -> Approved:
    key = current_step().idempotency_key
    record_effect(state, key, "approve")
    return Approved(request.note, key)


def _on_approved(state: St, event: Approved) -> St:
    return replace(state, done=(*state.done, "approve"))


def _timer(state: St) -> timedelta:
    return timedelta(seconds=state.timer_s)


class Crashy(Workflow[St, Stepped | Approved]):
    prepare = WIO.run_io(_effect("prepare")).handle_event(_on_stepped)
    reserve = WIO.run_io(_effect("reserve")).handle_event(_on_stepped)
    cool_down = WIO.timer(_timer, input=St, name="Cool Down")
    charge = WIO.run_io(_effect("charge")).handle_event(_on_stepped)
    approval = (
        WIO.handle_signal(approve, input=St)
        .with_side_effects(_approve)
        .handle_event(_on_approved)
        .produce_response(lambda state, event, request: event.key)
    )
    settle = WIO.timer(_timer, input=St, name="Settle")
    ship = WIO.run_io(_effect("ship")).handle_event(_on_stepped)
    notify = WIO.run_io(_effect("notify")).handle_event(_on_stepped)
    definition = prepare >> reserve >> cool_down >> charge >> approval >> settle >> ship >> notify


# -- runtimes ---------------------------------------------------------------------------------

Runtime = DurableRuntime[St, Stepped | Approved]


def make_runtime(
    backend: str,
    db: str,
    *,
    effects_log: str,
    schema: str = "workflows4py",
    timer_s: float = 0.05,
    effect_pause: float = 0.0,
    lease_ttl: float = 1.0,
    lease_wait: float = 10.0,
    failure_backoff: float = 0.2,
    max_connections: int = 4,
    connect_timeout: float | None = None,
) -> Runtime:
    """A durable runtime of :class:`Crashy` on ``backend`` (``sqlite`` or ``postgres``).

    ``connect_timeout`` bounds how long a PostgreSQL call waits for a connection (the
    store's default otherwise).
    """
    initial = St(timer_s, effects_log, effect_pause)
    options: dict[str, Any] = {
        "lease_ttl": lease_ttl,
        "lease_wait": lease_wait,
        "failure_backoff": timedelta(seconds=failure_backoff),
    }
    if backend == "sqlite":
        return SqliteRuntime(Crashy, db, initial_state=initial, **options)
    if backend == "postgres" and connect_timeout is not None:
        from workflows4py.stores import PostgresStore

        store = PostgresStore(
            db, schema=schema, max_size=max_connections, connect_timeout=connect_timeout
        )
        return DurableRuntime(Crashy, store, initial_state=initial, **options)
    if backend == "postgres":
        return PostgresRuntime(
            Crashy,
            db,
            initial_state=initial,
            schema=schema,
            max_connections=max_connections,
            **options,
        )
    raise ValueError(f"unknown backend {backend!r}")


def instance_ids(count: int) -> list[str]:
    return [f"i{n}" for n in range(count)]


# -- the worker's entry point -----------------------------------------------------------------

_clients: set[asyncio.Task[None]] = set()


async def app() -> Runtime:
    """The runtime named by the environment; with ``CRASH_INSTANCES``, also its client."""
    env = os.environ
    runtime = make_runtime(
        env["CRASH_BACKEND"],
        env["CRASH_DB"],
        effects_log=env["CRASH_EFFECTS"],
        schema=env.get("CRASH_SCHEMA", "workflows4py"),
        timer_s=float(env.get("CRASH_TIMER", "0.05")),
        effect_pause=float(env.get("CRASH_EFFECT_PAUSE", "0")),
        lease_ttl=float(env.get("CRASH_LEASE_TTL", "1.0")),
        lease_wait=float(env.get("CRASH_LEASE_WAIT", "10.0")),
        failure_backoff=float(env.get("CRASH_BACKOFF", "0.2")),
        connect_timeout=float(env["CRASH_CONNECT_TIMEOUT"])
        if env.get("CRASH_CONNECT_TIMEOUT")
        else None,
    )
    if env.get("CRASH_INSTANCES"):
        task = asyncio.get_running_loop().create_task(
            client(
                runtime,
                instance_ids(int(env["CRASH_INSTANCES"])),
                recover=env.get("CRASH_RECOVER", "1") == "1",
            ),
            name="crash client",
        )
        _clients.add(task)
        task.add_done_callback(_client_done)
    return runtime


def _client_done(task: asyncio.Task[None]) -> None:
    _clients.discard(task)
    if not task.cancelled() and (error := task.exception()) is not None:
        _log.error("client failed", exc_info=error)


async def client(runtime: Runtime, ids: list[str], *, recover: bool = True) -> None:
    """What an application does: create its instances, approve each one when asked to.

    Every call is retried: this process may start while a killed one still holds leases.

    With ``recover``, the client also wakes every instance up once after creating them.
    That works around a bug of ``DurableRuntime`` (``test_interrupted_signal_is_resumed`` in
    ``test_crash.py``): an instance whose process died right after recording a signal is
    left "awaiting" with no wakeup, and no worker ever resumes it. Without it, the crash
    test fails now and then.
    """
    await _retry(runtime.initialize)
    for instance_id in ids:
        await _retry(partial(runtime.create_instance, instance_id))
    if recover:
        for instance_id in ids:
            instance = await runtime.get_instance(instance_id)
            await _retry(instance.wakeup)
    pending = list(ids)
    while pending:
        for instance_id in list(pending):
            key = InstanceKey(Crashy.name, instance_id)
            record = await _retry(partial(runtime.store.get_record, key))
            if record is not None and record.status == "finished":
                pending.remove(instance_id)
                continue
            instance = await runtime.get_instance(instance_id)
            if approve in await _retry(instance.expected_signals):
                await _retry(partial(instance.deliver_signal, approve, Approve("ok")))
        await asyncio.sleep(0.02)
    _log.info("client: every instance finished")


async def _retry(call: Callable[[], Awaitable[T]]) -> T:
    while True:
        try:
            return await call()
        except asyncio.CancelledError:
            raise
        except WorkflowError as e:  # a lease held by a dead process, a database restarting
            _log.warning("client call failed (%s); retrying", e)
            await asyncio.sleep(0.05)


# -- the test harness (used by the tests, not by the worker) -----------------------------------

RECOVER = os.environ.get("WORKFLOWS4PY_CRASH_RECOVERY_WAKEUP") == "1"
"""Whether the application wakes its instances up itself (see :func:`client`). Off: the
runtime no longer strands an instance between a signal's event and the next write, so the
tests check that workers alone finish every instance. ``=1`` turns the old workaround on."""

ROOT = Path(__file__).resolve().parent.parent
"""The repository root: on the workers' PYTHONPATH so that ``tests.crash_app`` imports."""

Journals = dict[str, list[JournalEntry]]


def spawn_worker(
    settings: dict[str, str],
    log: Path,
    *,
    poll_interval: float = 0.05,
    batch: int = 50,
    log_level: str = "WARNING",
) -> subprocess.Popen[bytes]:
    """Start ``python -m workflows4py worker tests.crash_app:app`` with ``settings`` (the
    ``CRASH_*`` variables) added to the environment; its output goes to ``log``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.update(settings)
    command = [
        sys.executable,
        "-m",
        "workflows4py",
        "worker",
        "tests.crash_app:app",
        "--poll-interval",
        str(poll_interval),
        "--batch",
        str(batch),
        "--log-level",
        log_level,
    ]
    with log.open("ab") as out:
        return subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


async def wait_exit(process: subprocess.Popen[bytes], timeout: float) -> int | None:
    """The exit code of ``process``, or None if it still runs after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (code := process.poll()) is None:
        if asyncio.get_running_loop().time() >= deadline:
            return None
        await asyncio.sleep(0.01)
    return code


async def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``process`` and reap it."""
    process.kill()
    if await wait_exit(process, 10) is None:
        raise AssertionError(f"process {process.pid} survived SIGKILL for 10 s")


async def stop(process: subprocess.Popen[bytes], timeout: float = 15) -> int:
    """Stop a worker gracefully (SIGTERM) and return its exit code; SIGKILL it if it hangs."""
    if process.poll() is None:
        process.terminate()
    code = await wait_exit(process, timeout)
    if code is None:
        await kill(process)
        raise AssertionError(f"worker {process.pid} did not stop within {timeout} s of SIGTERM")
    return code


def reap(processes: list[subprocess.Popen[bytes]]) -> None:
    """Kill and reap every process still running (for ``finally`` blocks)."""
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait()


def tail(logs: list[Path], lines: int = 30) -> str:
    """The end of each worker's output, for failure messages."""
    parts: list[str] = []
    for path in logs:
        try:
            text = path.read_text(errors="replace")
        except FileNotFoundError:
            text = ""
        last = "\n".join(text.splitlines()[-lines:]) or "(nothing)"
        parts.append(f"--- {path.name} ---\n{last}")
    return "\n".join(parts)


async def wait_logged(path: Path, text: str, timeout: float) -> None:
    """Return once ``text`` appears in the file at ``path``; AssertionError after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (path.exists() and text in path.read_text(errors="replace")):
        if asyncio.get_running_loop().time() >= deadline:
            raise AssertionError(f"{path.name} did not log {text!r} within {timeout} s")
        await asyncio.sleep(0.02)


def effect_pids(path: Path) -> Counter[int]:
    """How many effects each process ran, from the effects log."""
    if not path.exists():
        return Counter()
    return Counter(int(line.rsplit(" ", 1)[1]) for line in path.read_text().splitlines() if line)


async def create_all(runtime: Runtime, ids: list[str], concurrency: int = 8) -> None:
    """Create the instances, a few at a time, each call retried until it succeeds."""
    gate = asyncio.Semaphore(concurrency)

    async def create(instance_id: str) -> None:
        async with gate:
            await _retry(partial(runtime.create_instance, instance_id))

    await asyncio.gather(*(create(i) for i in ids))


async def approve_until_finished(
    runtime: Runtime, ids: list[str], timeout: float, *, recover: bool, concurrency: int = 8
) -> int:
    """Approve every instance that asks (awaiting, no timer) until all of ``ids`` finish.

    A call that fails (a lease held by a dead worker, the database away) is tried again in
    the next round; returns how many calls failed. AssertionError after ``timeout`` seconds.

    With ``recover``, an instance still asking after it was approved is woken up: that
    works around the bugs pinned by ``test_interrupted_signal_is_resumed``
    (``test_crash.py``) and ``test_a_store_error_after_a_signal_*`` (``test_pg_restart.py``),
    where an instance is left awaiting with nothing scheduled.
    """
    gate = asyncio.Semaphore(concurrency)
    failed = 0
    approved: set[str] = set()

    async def deliver(instance_id: str) -> None:
        nonlocal failed
        async with gate:
            try:
                instance = await runtime.get_instance(instance_id)
                if recover and instance_id in approved:
                    await instance.wakeup()
                await instance.deliver_signal(approve, Approve("ok"))
                approved.add(instance_id)
            except WorkflowError:
                failed += 1

    rows: dict[str, InstanceRecord] = {}
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        try:
            page = await runtime.search(SearchQuery(limit=max(len(ids), 1)))
            if page.total > len(ids):
                raise AssertionError(f"{page.total} instances, expected {len(ids)}")
        except WorkflowError:
            failed += 1
            await asyncio.sleep(0.1)
            continue
        rows = {r.key.instance_id: r for r in page.records}
        if len(rows) == len(ids) and all(r.status == "finished" for r in rows.values()):
            return failed
        asking = [i for i, r in rows.items() if r.status == "awaiting" and r.next_wakeup is None]
        await asyncio.gather(*(deliver(i) for i in asking))
        await asyncio.sleep(0.05)
    late = [i for i in ids if i not in rows or rows[i].status != "finished"]
    described = [await describe(runtime.store, i) for i in late[:5]]
    raise AssertionError(
        f"{len(late)} instance(s) not finished after {timeout} s:\n" + "\n".join(described)
    )


async def read_journals(store: Store, ids: list[str]) -> Journals:
    """Every instance's journal, as stored."""
    return {i: await store.read(InstanceKey(Crashy.name, i)) for i in ids}


async def statuses(store: Store, ids: list[str]) -> dict[str, str | None]:
    """Every instance's registry status (None: not registered)."""
    result: dict[str, str | None] = {}
    for i in ids:
        record = await store.get_record(InstanceKey(Crashy.name, i))
        result[i] = None if record is None else record.status
    return result


async def wait_finished(store: Store, ids: list[str], timeout: float) -> None:
    """Return once every instance is finished; AssertionError after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        now = await statuses(store, ids)
        if all(s == "finished" for s in now.values()):
            return
        if asyncio.get_running_loop().time() >= deadline:
            late = [i for i, s in now.items() if s != "finished"]
            described = [await describe(store, i) for i in late[:5]]
            raise AssertionError(
                f"{len(late)} instance(s) not finished after {timeout} s:\n" + "\n".join(described)
            )
        await asyncio.sleep(0.02)


async def describe(store: Store, instance_id: str) -> str:
    """An instance's registry row and journal, in one line, for failure messages."""
    key = InstanceKey(Crashy.name, instance_id)
    record = await store.get_record(key)
    journal = await store.read(key)
    row = "unregistered" if record is None else f"{record.status}, wakeup {record.next_wakeup}"
    events = ", ".join(f"#{e.sequence} {e.type.rsplit('.', 1)[-1]}" for e in journal)
    return f"{instance_id}: {row}; journal: {events or 'empty'}"


def check_grew(before: Journals, after: Journals, what: str) -> None:
    """The journals only grew from ``before`` to ``after``: no persisted event was lost."""
    for i, old in before.items():
        new = after.get(i, [])
        if new[: len(old)] != old:
            pairs = enumerate(zip(old, new, strict=False), start=1)
            first = next((n for n, (a, b) in pairs if a != b), len(new) + 1)
            raise AssertionError(
                f"journal of {i} lost or changed events {what}: it had {len(old)} events, "
                f"now {len(new)}, differing from #{first}"
            )


def effect_keys(instance_id: str, journal: list[JournalEntry]) -> list[str]:
    """The idempotency keys of the journal's effect events (checked against their payload)."""
    keys: list[str] = []
    for entry in journal:
        if entry.type in EFFECT_EVENT_TYPES:
            key = f"{Crashy.name}:{instance_id}:{entry.sequence}"
            recorded = json.loads(entry.data)["key"]
            if recorded != key:
                raise AssertionError(
                    f"event #{entry.sequence} of {instance_id} was produced by the effect "
                    f"keyed {recorded!r}, not {key!r}: an effect ran against another history"
                )
            keys.append(key)
    return keys


def check_finished_journal(instance_id: str, journal: list[JournalEntry]) -> None:
    """A complete, contiguous, unforked journal that replays to a finished instance."""
    sequences = [e.sequence for e in journal]
    if sequences != list(range(1, len(journal) + 1)):
        raise AssertionError(f"journal of {instance_id} is not contiguous: {sequences}")
    types = tuple(e.type for e in journal)
    if types != EVENT_TYPES:
        raise AssertionError(f"journal of {instance_id} has events {types}, want {EVENT_TYPES}")
    steps = [
        json.loads(e.data).get("step", "approve") for e in journal if e.type in EFFECT_EVENT_TYPES
    ]
    if steps != ["prepare", "reserve", "charge", "approve", "ship", "notify"]:
        raise AssertionError(f"journal of {instance_id} ran steps {steps}")
    effect_keys(instance_id, journal)
    for started, released in ((journal[2], journal[3]), (journal[6], journal[7])):
        resume_at = datetime.fromisoformat(json.loads(started.data)["resume_at"])
        released_at = datetime.fromisoformat(json.loads(released.data)["released_at"])
        if released_at < resume_at:
            raise AssertionError(f"a timer of {instance_id} fired early: {started} {released}")


async def check_replays(journals: Journals) -> None:
    """Each journal replays, without running anything, to a finished instance."""
    runtime = InMemoryRuntime(Crashy, initial_state=St(0.0, os.devnull))
    for i, journal in journals.items():
        instance = await runtime.restore_instance(i, journal)
        if await instance.status() != "finished":
            raise AssertionError(f"journal of {i} replays to {await instance.status()}")
        state = await instance.query_state()
        if state.done != ("prepare", "reserve", "charge", "approve", "ship", "notify"):
            raise AssertionError(f"journal of {i} replays to state {state}")


def check_effects(journals: Journals, effects: list[str], *, exactly_once: bool) -> int:
    """Every effect of the journals ran at least once (exactly once if ``exactly_once``) and
    no effect ran outside them; returns how many executions were repeats."""
    ran = Counter(effects)
    recorded = {key for i, journal in journals.items() for key in effect_keys(i, journal)}
    missing = sorted(recorded - ran.keys())
    if missing:
        raise AssertionError(f"{len(missing)} recorded effect(s) never ran: {missing[:10]}")
    stray = sorted(ran.keys() - recorded)
    if stray:
        raise AssertionError(f"{len(stray)} effect(s) ran outside every journal: {stray[:10]}")
    repeats = {key: n for key, n in ran.items() if n > 1}
    if exactly_once and repeats:
        raise AssertionError(f"effects ran more than once without a crash: {repeats}")
    return sum(repeats.values()) - len(repeats)
