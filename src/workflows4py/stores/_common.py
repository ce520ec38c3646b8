"""What the stores share: instants in UTC, limits, the change pulse, lease waiting, the
checks of ``purge``, and the methods whose logic is the same in every store
(:class:`_StoreBase`).

Private to the stores (memory, SQLite, PostgreSQL); nothing here knows a database.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, get_args

from ._protocol import (
    InstanceKey,
    LeaseTimeout,
    NewEvent,
    RegistryStatus,
    RegistryUpdate,
    SearchQuery,
    SearchSort,
    StoreError,
)

__all__ = [
    "_Append",
    "_Pulse",
    "_StoreBase",
    "_acquire_loop",
    "_check_limit",
    "_check_page",
    "_key_of",
    "_purge_args",
    "_utc",
]


def _utc(instant: datetime) -> datetime:
    """``instant`` in UTC; naive instants are refused (their meaning depends on the host)."""
    if instant.tzinfo is None:
        raise ValueError(f"instants must be timezone-aware, got naive {instant}")
    return instant.astimezone(UTC)


def _check_limit(name: str, value: int, minimum: int = 0) -> None:
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def _check_page(query: SearchQuery) -> tuple[datetime, str, str] | None:
    """Check the paging of ``query``: ValueError for a negative limit or offset, an unknown
    sort, or an ``after`` that is not (aware instant, workflow, instance id). Its ``after``,
    the instant in UTC."""
    _check_limit("limit", query.limit)
    _check_limit("offset", query.offset)
    if query.count_limit is not None:
        _check_limit("count_limit", query.count_limit)
    if query.sort not in get_args(SearchSort):
        raise ValueError(f"sort must be 'updated' or 'created', got {query.sort!r}")
    if query.after is None:
        return None
    after = query.after
    if not (
        isinstance(after, tuple)
        and len(after) == 3
        and isinstance(after[0], datetime)
        and isinstance(after[1], str)
        and isinstance(after[2], str)
    ):
        raise ValueError(
            f"after must be (instant, workflow, instance id), as SearchQuery.cursor gives, "
            f"got {after!r}"
        )
    return (_utc(after[0]), after[1], after[2])


def _purge_args(
    statuses: Sequence[RegistryStatus], before: datetime, now: datetime, limit: int
) -> tuple[list[RegistryStatus], datetime, datetime]:
    """The checked arguments of ``purge``: the statuses as a list, ``before`` and ``now`` in
    UTC (ValueError if naive, or if ``limit`` < 1)."""
    _check_limit("limit", limit, minimum=1)
    return list(statuses), _utc(before), _utc(now)


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
        await _Pulse.wait_any(((self, since),), timeout)

    @staticmethod
    async def wait_any(pulses: Sequence[tuple[_Pulse, int]], timeout: float) -> None:
        """Return once the generation of any of ``pulses`` differs from the one paired with
        it, or after ``timeout`` s."""
        if timeout <= 0 or any(pulse.generation != since for pulse, since in pulses):
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(timeout, _resolve, fut)
        for pulse, _ in pulses:
            pulse._waiters.add(fut)
        try:
            await fut
        finally:
            timer.cancel()
            for pulse, _ in pulses:
                pulse._waiters.discard(fut)


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


_Append = tuple[InstanceKey, int, Sequence[NewEvent]]
"""An ``append`` call's arguments: (key, expected, events)."""


def _key_of(item: tuple[Any, ...]) -> object:
    """The key a group commit keeps apart: the instance key an item starts with."""
    return item[0]


class _StoreBase:
    """``acquire``, ``update`` and ``release`` of every store, written once over its hooks.

    A store sets the two pulses (``_released``: a lease was given up; ``_work``: a wakeup was
    set), then calls :meth:`_seen_now`, and defines the hooks, which only read and write:
    the signalling, the checks and the waiting are here.
    """

    _released: _Pulse
    _work: _Pulse
    _change_seen: tuple[int, int]  # the pulses' generations wait_for_change last saw
    _LEASE_POLL: ClassVar[float]  # seconds between looks at a lease held elsewhere

    def _take_lease(
        self, key: InstanceKey, owner: str, ttl: float, at: datetime
    ) -> Awaitable[tuple[str, datetime] | None]:
        """Lease to ``owner`` at ``at``: None if taken, else (holder, until) of the lease."""
        raise NotImplementedError

    def _update_row(self, key: InstanceKey, update: RegistryUpdate, keep: bool) -> Awaitable[int]:
        """Write ``update`` (``keep``: the failure count too); how many rows it changed."""
        raise NotImplementedError

    def _release_lease(self, key: InstanceKey, owner: str) -> Awaitable[int]:
        """Give up ``owner``'s lease; how many leases that gave up."""
        raise NotImplementedError

    def _release_updating(
        self, key: InstanceKey, owner: str, update: RegistryUpdate
    ) -> Awaitable[tuple[int, int]]:
        """Write ``update`` and, if the row is there, give up the lease, atomically: how many
        rows were updated and leases given up."""
        raise NotImplementedError

    def _seen_now(self) -> None:
        """Take the pulses' current generations as seen by ``wait_for_change``."""
        self._change_seen = (self._released.generation, self._work.generation)

    async def _wait_for_change(self, timeout: float) -> None:
        """Wait until either pulse moves from the generations last seen (by the previous call,
        or :meth:`_seen_now`), or ``timeout`` s: latched, so a change made between two calls
        returns the second at once."""
        released, work = self._change_seen
        await _Pulse.wait_any(((self._released, released), (self._work, work)), timeout)
        self._seen_now()

    async def acquire(
        self, key: InstanceKey, owner: str, ttl: float, wait: float, now: datetime
    ) -> None:
        await _acquire_loop(
            key,
            owner,
            wait=wait,
            now=_utc(now),
            attempt=functools.partial(self._take_lease, key, owner, ttl),
            released=self._released,
            poll=self._LEASE_POLL,
        )

    async def update(
        self,
        key: InstanceKey,
        status: RegistryStatus,
        next_wakeup: datetime | None,
        tags: dict[str, str],
        now: datetime,
        *,
        error: str | None = None,
        keep_failures: bool = False,
    ) -> None:
        update = RegistryUpdate(status, next_wakeup, tags, now, error)
        if not await self._update_row(key, update, keep_failures):
            raise _not_registered(key)
        if next_wakeup is not None:
            self._work.fire()

    async def release(
        self, key: InstanceKey, owner: str, update: RegistryUpdate | None = None
    ) -> None:
        if update is None:
            released = await self._release_lease(key, owner)
        else:
            updated, released = await self._release_updating(key, owner, update)
            if not updated:
                raise _not_registered(key)
            if update.next_wakeup is not None:
                self._work.fire()
        if released:
            self._released.fire()


def _not_registered(key: InstanceKey) -> StoreError:
    return StoreError(f"{key} is not registered; create it before updating it")
