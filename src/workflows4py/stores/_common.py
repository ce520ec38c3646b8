"""What the stores share: instants in UTC, limits, the change pulse and lease waiting.

Private to the stores (memory, SQLite, PostgreSQL); nothing here knows a database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from ._protocol import InstanceKey, LeaseTimeout

__all__ = ["_Pulse", "_acquire_loop", "_check_limit", "_utc"]


def _utc(instant: datetime) -> datetime:
    """``instant`` in UTC; naive instants are refused (their meaning depends on the host)."""
    if instant.tzinfo is None:
        raise ValueError(f"instants must be timezone-aware, got naive {instant}")
    return instant.astimezone(UTC)


def _check_limit(name: str, value: int) -> None:
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


class _Pulse:
    """Wakes tasks waiting for "something changed"; a generation counter avoids lost wake-ups.

    A waiter reads :attr:`generation` *before* looking at the database, then waits for it
    to move: a change that happened in between returns at once instead of being missed.
    Waiters may sit on other event loops (a blocking facade runs its own), so they are
    woken thread-safely.
    """

    def __init__(self) -> None:
        self.generation = 0
        self._waiters: set[asyncio.Future[None]] = set()

    def fire(self) -> None:
        self.generation += 1
        for fut in list(self._waiters):
            try:
                fut.get_loop().call_soon_threadsafe(_resolve, fut)
            except RuntimeError:  # that loop is closed; nobody is waiting there any more
                self._waiters.discard(fut)

    async def wait(self, since: int, timeout: float) -> None:
        """Return once :attr:`generation` differs from ``since``, or after ``timeout`` s."""
        if self.generation != since or timeout <= 0:
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(timeout, _resolve, fut)
        self._waiters.add(fut)
        try:
            await fut
        finally:
            timer.cancel()
            self._waiters.discard(fut)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def _acquire_loop(
    key: InstanceKey,
    owner: str,
    *,
    wait: float,
    now: datetime,
    attempt: Callable[[datetime], Awaitable[tuple[str, datetime] | None]],
    released: _Pulse,
    poll: float,
) -> None:
    """Shared waiting logic of ``acquire``.

    ``attempt(t)`` tries to take the lease at instant ``t`` and returns None on success, or
    the current holder and the end of its lease. While waiting, time is ``now`` plus the real
    seconds elapsed, so a lease that lapses while we wait is taken as soon as it lapses.
    Between attempts we sleep until a release is signalled, the holder's lease lapses, the
    wait is over, or ``poll`` seconds pass (other processes' releases are not signalled to
    every store); ``poll`` doubles from a small start so short waits stay short.
    """
    start = time.monotonic()
    interval = min(0.005, poll)
    elapsed = 0.0  # the first attempt is at exactly ``now``
    while True:
        since = released.generation
        held = await attempt(now + timedelta(seconds=elapsed))
        if held is None:
            return
        holder, until = held
        elapsed = time.monotonic() - start
        remaining = wait - elapsed
        if remaining <= 0:
            raise LeaseTimeout(
                f"{key} is leased by {holder!r} until {until.isoformat()}; "
                f"{owner!r} gave up after waiting {wait:g}s"
            )
        lapses_in = (until - now).total_seconds() - elapsed
        await released.wait(since, max(0.0, min(remaining, lapses_in, interval)))
        interval = min(interval * 2, poll)
        elapsed = time.monotonic() - start
