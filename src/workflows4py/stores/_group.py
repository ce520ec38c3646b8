"""Group commit: the writes of many callers that are ready together, in one transaction.

Public as :class:`workflows4py.stores.GroupCommit`, for stores of your own; the SQLite and
PostgreSQL stores use it (``group_commit=True``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from ._protocol import StoreError, StoreUnavailable

__all__ = ["GroupCommit"]

_I = TypeVar("_I")
_R = TypeVar("_R")

_log = logging.getLogger("workflows4py.stores")


class GroupCommit(Generic[_I, _R]):
    """Group commit, for a store of your own: writes that arrive while one is being
    committed go together, in one transaction, as soon as it ends.

    ``write_one(item)`` commits one item and returns its result (or raises its error);
    ``write_many(items)`` commits several in one transaction and returns each one's outcome:
    its result, or the exception of that item alone, which then wrote nothing. A batch is
    never waited for: it closes as soon as the write before it ends (or, with ``gather``,
    after one turn of the event loop, so that the tasks already ready join it: for a store
    whose writes block the loop, nothing could join otherwise). A caller returns only once
    the transaction holding its item has committed. If ``write_many`` raises, the
    transaction failed as a whole and wrote nothing: each of its items is then written
    alone (so one bad item fails only itself), except when the database is unavailable,
    which fails them all at once.

    With ``max_in_flight`` above 1 (for a store whose writes do not block the loop, on
    connections of their own), up to that many transactions are under way at once: once
    ``split`` writes wait, the call that makes them ``split`` sends them at once rather than
    after the write under way, so that the database commits some while the application
    computes the next. Many instances ready together (say, all answered by one commit)
    then flow through in several transactions instead of moving in lockstep.

    Items go in the order they arrive; an item whose ``key`` is in a transaction under way
    waits for a later one (never two writes of one instance at once).
    """

    def __init__(
        self,
        write_one: Callable[[_I], Awaitable[_R]],
        write_many: Callable[[Sequence[_I]], Awaitable[Sequence[_R | BaseException]]],
        key: Callable[[_I], object],
        *,
        gather: bool,
        max_batch: int = 1000,
        max_in_flight: int = 1,
        split: int = 128,
    ) -> None:
        if max_in_flight < 1 or split < 1:
            raise ValueError("max_in_flight and split must be at least 1")
        self._write_one = write_one
        self._write_many = write_many
        self._key = key
        self._gather = gather
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._split = split
        self._queue: list[tuple[_I, asyncio.Future[_R]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop of the writes under way
        self._drainer: asyncio.Task[None] | None = None
        self._flying = 0  # transactions under way
        self._keys: set[object] = set()  # the keys of their items
        self.batches: int = 0
        """Transactions of more than one item so far."""

    async def submit(self, item: _I) -> _R:
        """Commit ``item``, with whatever else is ready; returns once it is committed."""
        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop is not loop:
            return await self._write_one(item)  # used from another event loop meanwhile
        self._loop = loop
        if not self._flying and self._drainer is None and not self._queue:
            return await self._lead(loop, item)
        fut: asyncio.Future[_R] = loop.create_future()
        self._queue.append((item, fut))
        if self._flying < self._max_in_flight and len(self._queue) >= self._split:
            batch = self._take()  # enough wait: send them now, beside the write under way
            if batch:
                await self._write(batch)
        return await fut  # written by this call's batch, or by a later one

    async def _lead(self, loop: asyncio.AbstractEventLoop, item: _I) -> _R:
        """Write ``item``, nothing being under way (a lone caller pays nothing for
        batching), with what arrives meanwhile if the batch gathers."""
        key = self._key(item)
        self._flying += 1
        self._keys.add(key)
        try:
            if self._gather and _others_ready(loop):
                await asyncio.sleep(0)  # the tasks ready now join this batch
            if not self._queue:
                return await self._write_one(item)
            batch = self._take(leading=True)
            try:
                outcomes = await self._together([item, *(queued for queued, _ in batch)])
            except BaseException as e:  # cancelled: the others must still hear something
                _fail(batch, e)
                raise
            _tell(batch, outcomes[1:])
            mine = outcomes[0]
            if isinstance(mine, BaseException):
                raise mine
            return mine
        finally:
            self._landed([key])

    async def _write(self, batch: list[tuple[_I, asyncio.Future[_R]]]) -> None:
        """Write ``batch`` (taken from the queue) and tell its callers."""
        keys = [self._key(item) for item, _ in batch]
        self._flying += 1
        self._keys.update(keys)
        try:
            if len(batch) == 1:
                outcomes: Sequence[_R | BaseException] = [await self._alone(batch[0][0])]
            else:
                outcomes = await self._together([item for item, _ in batch])
        except BaseException as e:
            _fail(batch, e)
            raise
        finally:
            self._landed(keys)
        _tell(batch, outcomes)

    def _landed(self, keys: Sequence[object]) -> None:
        """A transaction ended: what waits goes next (by the drainer), or all is idle."""
        self._flying -= 1
        self._keys.difference_update(keys)
        if self._drainer is not None:
            return
        if self._queue and self._loop is not None:
            self._drainer = self._loop.create_task(self._drain())
        elif not self._flying:
            self._loop = None

    async def _drain(self) -> None:
        try:
            while self._queue and self._flying < self._max_in_flight:
                batch = self._take()
                if not batch:  # all their keys are under way: the end of those resumes
                    break
                await self._write(batch)
        except BaseException as e:  # cancelled (the loop is closing): fail who still waits
            _fail(self._queue, e)
            self._queue.clear()
            raise
        finally:
            self._drainer = None
            if not self._flying and not self._queue:
                self._loop = None

    def _take(self, *, leading: bool = False) -> list[tuple[_I, asyncio.Future[_R]]]:
        """The next batch out of the queue (beside the leader's item, if ``leading``): none
        of the keys under way, one item per key."""
        batch: list[tuple[_I, asyncio.Future[_R]]] = []
        rest: list[tuple[_I, asyncio.Future[_R]]] = []
        keys = set(self._keys)
        room = self._max_batch - 1 if leading else self._max_batch
        for queued in self._queue:
            if queued[1].done():  # its caller was cancelled before it was written: drop it
                continue
            key = self._key(queued[0])
            if key in keys or len(batch) >= room:
                rest.append(queued)
                continue
            keys.add(key)
            batch.append(queued)
        self._queue = rest
        return batch

    async def _alone(self, item: _I) -> _R | BaseException:
        """``item`` written alone: its result, or its error."""
        try:
            return await self._write_one(item)
        except Exception as e:
            return e

    async def _together(self, items: Sequence[_I]) -> Sequence[_R | BaseException]:
        try:
            outcomes = await self._write_many(items)
        except StoreUnavailable as e:
            return [e] * len(items)
        except Exception:
            _log.info("a group commit of %d writes failed; writing each alone", len(items))
            return [await self._alone(item) for item in items]
        self.batches += 1
        return outcomes


def _others_ready(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether other callbacks wait to run on ``loop`` (so one turn of it may bring more
    writes): read from CPython's event loop, whose queue of ready callbacks is not public;
    on another loop, assumed. Saves a lone caller a turn of the loop (a system call) per
    write."""
    ready = getattr(loop, "_ready", None)
    return ready is None or len(ready) > 0


def _tell(
    waiting: Sequence[tuple[object, asyncio.Future[Any]]], outcomes: Sequence[object]
) -> None:
    """Tell each caller in ``waiting`` its outcome (one whose caller was cancelled: nobody)."""
    for (_, fut), outcome in zip(waiting, outcomes, strict=True):
        if fut.done():
            continue
        if isinstance(outcome, BaseException):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome)


def _fail(waiting: Sequence[tuple[object, asyncio.Future[Any]]], error: BaseException) -> None:
    for _, fut in waiting:
        if not fut.done():
            fut.set_exception(
                StoreError(
                    f"the write was interrupted ({error!r}); it may or may not have committed"
                )
            )
