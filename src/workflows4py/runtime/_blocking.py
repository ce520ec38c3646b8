"""The blocking facade: the async API driven from plain threads through one event loop.

Each method is a one-line delegate to its async twin run on a private event loop thread
(the "portal"), so there is one implementation of every operation. A test checks that the
facade offers every public coroutine method of the async classes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from workflows4py._errors import WorkflowError
from workflows4py.definition import Result, SignalDef, SystemEvent
from workflows4py.engine import StepProgress

if TYPE_CHECKING:  # the facade wraps runtimes; it never imports them (no import circle)
    from workflows4py.stores import JournalEntry, Page, SearchQuery

    from ._durable import DurableRuntime
    from ._runtime import InMemoryRuntime, InstanceStatus, UnexpectedSignal, WorkflowInstance

__all__ = ["BlockingDurableRuntime", "BlockingInstance", "BlockingRuntime"]

S = TypeVar("S")
Ev = TypeVar("Ev")
R = TypeVar("R")
Req = TypeVar("Req")
Resp = TypeVar("Resp")


class _Portal:
    """An event loop running in a daemon thread, shared by one blocking runtime."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._guard:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="workflows4py-portal", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def run(self, coro: Coroutine[Any, Any, R]) -> R:
        if threading.current_thread() is self._thread:
            coro.close()
            raise WorkflowError("the blocking API cannot be called from inside a workflow step")
        loop = self._ensure()
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    def close(self) -> None:
        with self._guard:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()


class BlockingInstance(Generic[S, Ev]):
    """Blocking twin of :class:`WorkflowInstance`; see it for each method's contract."""

    __slots__ = ("_async", "_portal")

    def __init__(self, instance: WorkflowInstance[S, Ev], portal: _Portal) -> None:
        self._async = instance
        self._portal = portal

    @property
    def id(self) -> str:
        return self._async.id

    def __repr__(self) -> str:
        return repr(self._async).replace("WorkflowInstance", "BlockingInstance")

    def deliver_signal(
        self, signal: SignalDef[Req, Resp], request: Req, *, route: str | None = None
    ) -> Resp | UnexpectedSignal:
        pending = self._async.deliver_signal(signal, request, route=route)
        return self._portal.run(pending)

    def result(self) -> Result[Any, Any] | None:
        return self._portal.run(self._async.result())

    def next_wakeup(self) -> datetime | None:
        return self._portal.run(self._async.next_wakeup())

    def wakeup(self) -> None:
        return self._portal.run(self._async.wakeup())

    def query_state(self) -> S:
        return self._portal.run(self._async.query_state())

    def status(self) -> InstanceStatus:
        return self._portal.run(self._async.status())

    def get_events(self) -> list[Ev | SystemEvent]:
        return self._portal.run(self._async.get_events())

    def get_journal(self) -> list[JournalEntry]:
        return self._portal.run(self._async.get_journal())

    def get_progress(self) -> StepProgress:
        return self._portal.run(self._async.get_progress())

    def expected_signals(self) -> tuple[SignalDef[Any, Any], ...]:
        return self._portal.run(self._async.expected_signals())


class BlockingRuntime(Generic[S, Ev]):
    """Blocking twin of :class:`InMemoryRuntime`. Use a runtime either async or blocking.

    Close it (or use it as a context manager) to stop its event loop thread.
    """

    def __init__(self, runtime: InMemoryRuntime[S, Ev]) -> None:
        self._async = runtime
        self._portal = _Portal()

    def __enter__(self) -> BlockingRuntime[S, Ev]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the event loop thread behind this facade."""
        self._portal.close()

    @property
    def runtime(self) -> InMemoryRuntime[S, Ev]:
        """The async runtime behind this facade."""
        return self._async

    def _wrap(self, instance: WorkflowInstance[S, Ev]) -> BlockingInstance[S, Ev]:
        return BlockingInstance(instance, self._portal)

    def create_instance(self, instance_id: str) -> BlockingInstance[S, Ev]:
        return self._wrap(self._portal.run(self._async.create_instance(instance_id)))

    def get_instance(self, instance_id: str) -> BlockingInstance[S, Ev]:
        return self._wrap(self._portal.run(self._async.get_instance(instance_id)))

    def restore_instance(
        self, instance_id: str, journal: Iterable[JournalEntry]
    ) -> BlockingInstance[S, Ev]:
        return self._wrap(self._portal.run(self._async.restore_instance(instance_id, journal)))

    def restore_from_events(
        self, instance_id: str, events: Iterable[Ev | SystemEvent]
    ) -> BlockingInstance[S, Ev]:
        return self._wrap(self._portal.run(self._async.restore_from_events(instance_id, events)))

    def instance_ids(self) -> list[str]:
        return self._portal.run(self._async.instance_ids())

    def run_due_wakeups(self) -> list[str]:
        return self._portal.run(self._async.run_due_wakeups())


class BlockingDurableRuntime(Generic[S, Ev]):
    """Blocking twin of :class:`DurableRuntime` (SQLite, PostgreSQL, any store).

    Entering it (``with runtime.blocking() as rt``) initializes the store; closing it closes
    the store and stops the event loop thread that owns the store's connections. Use the
    runtime through this facade only, not also from async code.
    """

    def __init__(self, runtime: DurableRuntime[S, Ev]) -> None:
        self._async = runtime
        self._portal = _Portal()

    def __enter__(self) -> BlockingDurableRuntime[S, Ev]:
        self.initialize()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def runtime(self) -> DurableRuntime[S, Ev]:
        """The async runtime behind this facade."""
        return self._async

    def initialize(self) -> None:
        return self._portal.run(self._async.initialize())

    def close(self) -> None:
        """Close the store, then stop the event loop thread behind this facade."""
        try:
            self._portal.run(self._async.close())
        finally:
            self._portal.close()

    def _wrap(self, instance: WorkflowInstance[S, Ev]) -> BlockingInstance[S, Ev]:
        return BlockingInstance(instance, self._portal)

    def create_instance(self, instance_id: str) -> BlockingInstance[S, Ev]:
        return self._wrap(self._portal.run(self._async.create_instance(instance_id)))

    def get_instance(self, instance_id: str) -> BlockingInstance[S, Ev]:
        return self._wrap(self._portal.run(self._async.get_instance(instance_id)))

    def restore_instance(
        self, instance_id: str, journal: Iterable[JournalEntry]
    ) -> BlockingInstance[S, Ev]:
        return self._wrap(self._portal.run(self._async.restore_instance(instance_id, journal)))

    def instance_ids(self) -> list[str]:
        return self._portal.run(self._async.instance_ids())

    def search(self, query: SearchQuery | None = None) -> Page:
        return self._portal.run(self._async.search(query))

    def run_due_wakeups(self, limit: int = 100) -> list[str]:
        return self._portal.run(self._async.run_due_wakeups(limit))

    def resume_stale(self, limit: int = 100) -> list[str]:
        return self._portal.run(self._async.resume_stale(limit))

    def run_claimed(self, instance_id: str) -> bool:
        return self._portal.run(self._async.run_claimed(instance_id))
