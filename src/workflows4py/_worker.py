"""Workers: processes that run due wakeups and resume interrupted instances.

Any number of workers may run at once, on one machine (SQLite) or many (PostgreSQL): the
store hands each due wakeup to one worker (a claim), and each instance to one process at a
time (a lease). A worker stops gracefully: the current operation finishes, then it exits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from ._durable import DurableRuntime

__all__ = ["Worker"]

_log = logging.getLogger("workflows4py.worker")


class Worker:
    """Drives the background work of one or more durable runtimes.

    Each round claims due wakeups and resumes stale instances of every runtime, then waits
    for the store to signal new work (LISTEN/NOTIFY on PostgreSQL) or ``poll_interval``.
    """

    def __init__(
        self,
        runtimes: Sequence[DurableRuntime[Any, Any]],
        *,
        poll_interval: float = 1.0,
        batch: int = 50,
    ) -> None:
        if not runtimes:
            raise ValueError("a worker needs at least one runtime")
        self.runtimes = list(runtimes)
        self.poll_interval = poll_interval
        self.batch = batch
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Ask the worker to stop after the operation in progress."""
        self._stop.set()

    async def run_once(self) -> int:
        """One round over every store; returns how many instances it woke up.

        Due wakeups and stale instances are claimed once per store and handed to the
        runtime of their workflow, so workflows sharing a store do not starve each other.
        """
        done = 0
        for store, by_name in self._groups().items():
            first = next(iter(by_name.values()))
            now = first.clock.now()
            names = list(by_name)
            claims = await first.store.claim_due(now, self.batch, first.lease_ttl, names)
            stale = await first.store.stale(now, self.batch, names)
            for key in [c.key for c in claims] + stale:
                if self._stop.is_set():
                    return done
                runtime = by_name.get(key.workflow)
                if runtime is not None and await runtime.run_claimed(key.instance_id):
                    done += 1
            del store
        return done

    def _groups(self) -> dict[int, dict[str, DurableRuntime[Any, Any]]]:
        groups: dict[int, dict[str, DurableRuntime[Any, Any]]] = {}
        for runtime in self.runtimes:
            groups.setdefault(id(runtime.store), {})[runtime.workflow.name] = runtime
        return groups

    async def run(self) -> None:
        """Run rounds until :meth:`stop` is called."""
        _log.info("worker started for %s", ", ".join(r.workflow.name for r in self.runtimes))
        store = self.runtimes[0].store
        while not self._stop.is_set():
            try:
                busy = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a database that went away: log, wait, try again
                _log.exception("worker round failed; retrying in %.1fs", self.poll_interval)
                busy = 0
            if busy == 0 and not self._stop.is_set():
                waiter = asyncio.ensure_future(store.wait_for_work(self.poll_interval))
                stopper = asyncio.ensure_future(self._stop.wait())
                try:
                    await asyncio.wait(
                        {waiter, stopper},
                        timeout=self.poll_interval,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                except Exception:
                    _log.warning("waiting for work failed", exc_info=True)
                finally:
                    for task in (waiter, stopper):
                        task.cancel()
        _log.info("worker stopped")
