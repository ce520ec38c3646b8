"""Workers: processes that run due wakeups and resume interrupted instances.

Any number of workers may run at once, on one machine (SQLite) or many (PostgreSQL): the
store hands each due wakeup to one worker (a claim), and each instance to one process at a
time (a lease). Within a worker, up to ``concurrency`` instances run at once, so that one
instance waiting on the database or on a slow effect does not hold the others up. A worker
claims its free slots' worth of work and a few instances more (``prefetch``), so that a slot
that frees up starts its next instance at once, and one claim serves several slots. A
worker stops gracefully: the operations in progress finish, nothing new starts, then it
returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from workflows4py.stores import InstanceKey, Store

from ._app import Runtime
from ._durable import DurableRuntime
from ._hooks import OperationKind

__all__ = ["Worker"]

_log = logging.getLogger("workflows4py.worker")

_Job = tuple[DurableRuntime[Any, Any], InstanceKey, OperationKind]
# a job claimed ahead of a free slot, and the instant past which it is no longer started (its
# claim is half over: another worker may soon claim it)
_Ahead = tuple[_Job, datetime | None]


class Worker:
    """Drives the background work of a :class:`Runtime` (every workflow of it), or of one
    or more durable runtimes.

    It claims due wakeups and resumes stale instances of every runtime, running up to
    ``concurrency`` of them at once, and otherwise waits for the store to signal new work
    (LISTEN/NOTIFY on PostgreSQL) or ``poll_interval`` seconds. ``batch`` bounds how many
    instances one claim takes. ``prefetch`` more instances than there are free slots are
    claimed (and started as slots free up), so that a freed slot need not wait for a
    claim; one claimed ahead but not started within half its claim is left to the claim's
    lapse, as are those a stopping worker did not start. ``after_run``, if given, is
    called with the key of each instance the worker ran and whether the run succeeded,
    when it ends (on the event loop: keep it quick; an exception it raises is logged and
    ignored). ``concurrency`` may exceed a PostgreSQL runtime's ``max_connections``: an
    operation holds a connection only while a statement of its own runs, and group commit
    writes many operations' statements through one connection.
    """

    def __init__(
        self,
        runtimes: Runtime | Sequence[DurableRuntime[Any, Any]],
        *,
        poll_interval: float = 1.0,
        batch: int = 50,
        concurrency: int = 32,
        prefetch: int = 8,
        after_run: Callable[[InstanceKey, bool], object] | None = None,
    ) -> None:
        if isinstance(runtimes, Runtime):
            runtimes = runtimes.hosts  # every workflow of the application's runtime
        if not runtimes:
            raise ValueError("a worker needs at least one runtime")
        for name, value in (("batch", batch), ("concurrency", concurrency)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0:
            raise ValueError(f"prefetch must be a non-negative integer, got {prefetch!r}")
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be a positive number, got {poll_interval!r}")
        self.runtimes: list[DurableRuntime[Any, Any]] = list(runtimes)
        self.poll_interval = poll_interval
        self.batch = batch
        self.concurrency = concurrency
        self.prefetch = prefetch
        self.after_run = after_run
        self._stop = asyncio.Event()
        self._running: dict[InstanceKey, asyncio.Task[bool]] = {}
        self._ahead: dict[InstanceKey, _Ahead] = {}  # claimed, not started yet (oldest first)
        # instances whose last run here failed, and until when (by their runtime's clock)
        # to leave them be, as the registry does with their wakeup: one that keeps failing
        # (a journal that no longer replays, a database error) is not retried in a tight loop
        self._backoff: dict[InstanceKey, datetime] = {}

    def stop(self) -> None:
        """Ask the worker to stop: operations in progress finish, nothing new starts."""
        self._stop.set()

    # -- claiming -------------------------------------------------------------------------------

    def _groups(self) -> list[tuple[Store, dict[str, DurableRuntime[Any, Any]]]]:
        """The runtimes by store (claimed together), then by workflow name."""
        groups: dict[int, tuple[Store, dict[str, DurableRuntime[Any, Any]]]] = {}
        for runtime in self.runtimes:
            _, by_name = groups.setdefault(id(runtime.store), (runtime.store, {}))
            by_name[runtime.workflow.id] = runtime
        return list(groups.values())

    async def _claim(self, limit: int, *, stale: bool = True) -> list[_Ahead]:
        """Up to ``limit`` instances to run: due wakeups first, then stale instances, taken
        once per store for all its workflows, so that workflows sharing a store do not
        starve each other. Instances this worker already runs, or that failed here
        recently, are left out. Each comes with the instant past which it should not be
        started any more (None for a stale instance, which has no claim)."""
        jobs: list[_Ahead] = []
        for store, by_name in self._groups():
            room = limit - len(jobs)
            if room <= 0:
                break
            first = next(iter(by_name.values()))
            now = first.clock.now()
            for key, until in list(self._backoff.items()):
                if key.workflow in by_name and until <= now:
                    del self._backoff[key]
            names = list(by_name)
            claims = await store.claim_due(now, room, first.lease_ttl, names)
            half = timedelta(seconds=first.lease_ttl / 2)
            keys: list[tuple[InstanceKey, OperationKind, datetime | None]] = []
            keys.extend((c.key, "due", c.until - half) for c in claims)
            if stale and len(keys) < room:
                lapsed = await store.stale(now, room - len(keys), names)
                keys.extend((k, "recover", None) for k in lapsed)
            seen: set[InstanceKey] = set()
            for key, kind, start_by in keys:
                runtime = by_name.get(key.workflow)
                taken = key in seen or key in self._running or key in self._ahead
                if runtime is None or taken or key in self._backoff:
                    continue
                seen.add(key)
                jobs.append(((runtime, key, kind), start_by))
        return jobs

    def _start(self, job: _Job) -> asyncio.Task[bool]:
        runtime, key, kind = job
        task = asyncio.ensure_future(runtime.run_claimed(key.instance_id, kind=kind))
        self._running[key] = task

        def finished(task: asyncio.Task[bool]) -> None:
            self._running.pop(key, None)
            ok = not task.cancelled() and task.exception() is None and task.result()
            if not ok:
                self._backoff[key] = runtime.clock.now() + runtime.failure_backoff
            if self.after_run is not None:
                try:
                    self.after_run(key, ok)
                except Exception:  # a caller's bug must not stop the worker
                    _log.warning("after_run failed for %s", key, exc_info=True)

        task.add_done_callback(finished)
        return task

    # -- one round ------------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Claim up to ``batch`` instances, run them (``concurrency`` at a time) and return
        how many ran successfully."""
        jobs = [job for job, _ in await self._claim(self.batch)]
        gate = asyncio.Semaphore(self.concurrency)

        async def one(job: _Job) -> bool:
            async with gate:
                if self._stop.is_set():
                    return False  # its claim lapses; another worker takes it over
                return await self._start(job)

        results = await asyncio.gather(*(one(job) for job in jobs))
        return sum(results)

    # -- running until stopped ------------------------------------------------------------------

    async def run(self) -> None:
        """Run until :meth:`stop` is called: claim work whenever a slot is free."""
        _log.info(
            "worker started for %s (up to %d at once)",
            ", ".join(r.workflow.id for r in self.runtimes),
            self.concurrency,
        )
        loop = asyncio.get_running_loop()
        next_stale_look = loop.time()
        ahead = self._ahead
        try:
            while not self._stop.is_set():
                while ahead and len(self._running) < self.concurrency:
                    job, start_by = ahead.pop(next(iter(ahead)))
                    if start_by is None or job[0].clock.now() < start_by:
                        self._start(job)
                free = self.concurrency - len(self._running)
                more = False  # whether more work may be waiting than was claimed
                if free > 0:
                    # instances go stale only when a process dies, and only once its leases
                    # lapse: looking once per poll interval is enough, and keeps busy workers
                    # from asking at every claim
                    look_for_stale = loop.time() >= next_stale_look
                    if look_for_stale:
                        next_stale_look = loop.time() + self.poll_interval
                    want = min(free + self.prefetch, self.batch)
                    try:
                        jobs = await self._claim(want, stale=look_for_stale)
                    except asyncio.CancelledError:
                        raise
                    except Exception:  # a database that went away: log, wait, try again
                        _log.exception(
                            "claiming work failed; retrying in %.1fs", self.poll_interval
                        )
                        await self._pause()
                        continue
                    for job, _ in jobs[:free]:
                        self._start(job)
                    ahead.update((job[1], (job, start_by)) for job, start_by in jobs[free:])
                    more = len(jobs) == want
                    if more and not ahead:
                        continue  # every slot taken and maybe more work waiting: claim again
                if free == 0 or ahead or more:
                    await self._wait(full=True, timeout=self.poll_interval)
                else:  # nothing more is due: sleep until the next wakeup, at most a poll
                    await self._wait(full=False, timeout=await self._until_next_wakeup())
            if ahead:
                _log.info("worker stopping: %d claim(s) not started are left to lapse", len(ahead))
                ahead.clear()
            if self._running:
                _log.info("worker stopping: %d operation(s) finishing", len(self._running))
                await asyncio.gather(*self._running.values(), return_exceptions=True)
        finally:
            for task in list(self._running.values()):
                task.cancel()
        _log.info("worker stopped")

    async def _until_next_wakeup(self) -> float:
        """Seconds until the earliest future wakeup of any runtime (at most a poll interval),
        so that a timer fires on time rather than up to a poll interval late."""
        wait = self.poll_interval
        for store, by_name in self._groups():
            first = next(iter(by_name.values()))
            now = first.clock.now()
            try:
                at = await store.next_wakeup(now, list(by_name))
            except Exception:  # only an optimisation; claiming reports a database that is away
                _log.debug("could not read the next wakeup", exc_info=True)
                continue
            if at is not None:  # (a millisecond at least: no spinning on a clock that stands)
                wait = min(wait, max((at - now).total_seconds(), 0.001))
        return wait

    async def _wait(self, *, full: bool, timeout: float) -> None:
        """Until an operation ends (a slot frees up, and what it wrote may have made more
        work due), or the store signals new work (when there was room but not enough work
        was due), or :meth:`stop`, or ``timeout`` seconds."""
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._stop.wait())]
        if not full:
            for store, _ in self._groups():
                waiters.append(asyncio.ensure_future(store.wait_for_work(timeout)))
        running: list[asyncio.Future[Any]] = list(self._running.values())
        try:
            done, _ = await asyncio.wait(
                [*waiters, *running],
                timeout=timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
            failed = [f for f in done if f in waiters and not f.cancelled() and f.exception()]
        finally:
            for fut in waiters:
                fut.cancel()
        if failed:
            _log.warning("waiting for work failed", exc_info=failed[0].exception())
            await self._pause()

    async def _pause(self) -> None:
        """Until :meth:`stop` or the poll interval."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), self.poll_interval)
