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

    Items go in the order they arrive; an item whose ``key`` is in the batch already waits
    for the next one (never two writes of one instance in one transaction).
    """

    def __init__(
        self,
        write_one: Callable[[_I], Awaitable[_R]],
        write_many: Callable[[Sequence[_I]], Awaitable[Sequence[_R | BaseException]]],
        key: Callable[[_I], object],
        *,
        gather: bool,
        max_batch: int = 1000,
    ) -> None:
        self._write_one = write_one
        self._write_many = write_many
        self._key = key
        self._gather = gather
        self._max_batch = max_batch
        self._queue: list[tuple[_I, asyncio.Future[_R]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop of the write under way
        self._drainer: asyncio.Task[None] | None = None
        self.batches: int = 0
        """Transactions of more than one item so far."""

    async def submit(self, item: _I) -> _R:
        """Commit ``item``, with whatever else is ready; returns once it is committed."""
        loop = asyncio.get_running_loop()
        if self._loop is not None:
            if self._loop is not loop:  # used from another event loop meanwhile: alone
                return await self._write_one(item)
            fut: asyncio.Future[_R] = loop.create_future()
            self._queue.append((item, fut))
            return await fut  # written by the batch after the one under way
        # nothing under way: this call leads (a lone caller pays nothing for batching), and
        # whatever arrives meanwhile gathers behind it
        self._loop = loop
        try:
            if self._gather and _others_ready(loop):
                await asyncio.sleep(0)  # the tasks ready now join this batch
            if not self._queue:
                return await self._write_one(item)
            batch = self._take(self._key(item))
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
            if self._queue:
                self._drainer = loop.create_task(self._drain())
            else:
                self._loop = self._drainer = None

    async def _drain(self) -> None:
        batch: list[tuple[_I, asyncio.Future[_R]]] = []
        try:
            while self._queue:
                batch = self._take()
                outcomes: Sequence[_R | BaseException]
                if len(batch) == 1:
                    outcomes = [await self._alone(batch[0][0])]
                else:
                    outcomes = await self._together([item for item, _ in batch])
                _tell(batch, outcomes)
                batch = []
        except BaseException as e:  # cancelled (the loop is closing): fail who still waits
            _fail(batch + self._queue, e)
            self._queue.clear()
            raise
        finally:
            self._loop = self._drainer = None

    def _take(self, leader: object = None) -> list[tuple[_I, asyncio.Future[_R]]]:
        """The next batch out of the queue (after ``leader``'s key, if it leads one)."""
        batch: list[tuple[_I, asyncio.Future[_R]]] = []
        rest: list[tuple[_I, asyncio.Future[_R]]] = []
        keys: set[object] = set() if leader is None else {leader}
        room = self._max_batch - len(keys)
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
