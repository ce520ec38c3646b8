"""The blocking facade: the async API driven from plain threads through one event loop.

Each method is a one-line delegate to its async twin, run through an ``anyio`` blocking
portal on an event loop thread of the facade's own, so there is one implementation of
every operation. A test checks that the facade offers every public coroutine method of the
async classes.

The portal is ``anyio.from_thread.BlockingPortal`` (it carries each call to the loop and
its result or exception back), served in a daemon thread started here rather than by
``anyio.from_thread.start_blocking_portal()``: that one is a context manager, and a facade
left open without ``with`` would keep its generator alive until the interpreter's
teardown, whose ``finally`` then waits forever on a loop thread already frozen, so the
process would hang at exit instead of ending.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Future
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio
from anyio.from_thread import BlockingPortal

from workflows4py._errors import WorkflowError
from workflows4py.definition import Result, SignalDef, SystemEvent, Terminated
from workflows4py.engine import StepProgress

if TYPE_CHECKING:  # the facade wraps runtimes; it never imports them (no import circle)
    from workflows4py.stores import JournalEntry, Page, RegistryStatus, SearchQuery

    from ._durable import DurableRuntime
    from ._hooks import OperationKind
    from ._runtime import InstanceStatus, Origin, UnexpectedSignal, WorkflowInstance

__all__ = ["BlockingDurableRuntime", "BlockingInstance", "BlockingRuntime"]

S = TypeVar("S")
Ev = TypeVar("Ev")
R = TypeVar("R")
Req = TypeVar("Req")
Resp = TypeVar("Resp")


class _Portal:
    """An anyio blocking portal on an event loop in a daemon thread, started at first use."""

    def __init__(self) -> None:
        self._portal: BlockingPortal | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self._guard = threading.Lock()

    def _ensure(self) -> BlockingPortal:
        with self._guard:
            if self._closed:
                raise WorkflowError("this blocking facade is closed")
            if self._portal is None:
                started: Future[BlockingPortal] = Future()
                thread = threading.Thread(
                    target=_serve, args=(started,), name="workflows4py-portal", daemon=True
                )
                thread.start()
                self._portal, self._thread = started.result(), thread
            return self._portal

    def run(self, operation: Callable[[], Awaitable[R]]) -> R:
        """Run ``operation()`` on the portal's loop and wait for its result or exception."""
        self._check_caller()
        return self._ensure().call(operation)

    def _check_caller(self) -> None:
        """Refuse a caller that would wait on an event loop it is itself running on."""
        if threading.current_thread() is self._thread:
            raise WorkflowError("the blocking API cannot be called from inside a workflow step")
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # no loop here: the caller may block
        else:
            raise WorkflowError(
                "the blocking API cannot be called from a running event loop: await the"
                " async runtime's methods there instead (the facade's .runtime)"
            )

    def close(self, last: Callable[[], Awaitable[None]] | None = None) -> None:
        """Run ``last`` on the loop, let the calls under way finish, stop the loop and
        join its thread; a second close does nothing."""
        self._check_caller()
        try:
            if last is not None and not self._closed:
                self.run(last)
        finally:
            with self._guard:
                portal, thread = self._portal, self._thread
                self._portal, self._thread, self._closed = None, None, True
            if portal is not None and thread is not None:
                portal.call(portal.stop)
                thread.join()


def _serve(started: Future[BlockingPortal]) -> None:
    """The portal thread: an event loop serving a portal until it is stopped."""

    async def serve() -> None:
        async with BlockingPortal() as portal:
            started.set_result(portal)
            await portal.sleep_until_stopped()

    try:
        anyio.run(serve)
    except BaseException as error:  # pragma: no cover - the loop could not start
        if not started.done():
            started.set_exception(error)
        raise


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
        return self._portal.run(lambda: self._async.deliver_signal(signal, request, route=route))

    def result(self) -> Result[Any, Any] | None:
        return self._portal.run(self._async.result)

    def next_wakeup(self) -> datetime | None:
        return self._portal.run(self._async.next_wakeup)

    def wait_result(self, timeout: float | None = None, *, poll: float = 0.05) -> S:
        """Block until the instance ends (see :meth:`WorkflowInstance.wait_result`)."""
        return self._portal.run(lambda: self._async.wait_result(timeout, poll=poll))

    def wakeup(self) -> None:
        return self._portal.run(self._async.wakeup)

    def query_state(self) -> S:
        return self._portal.run(self._async.query_state)

    def status(self) -> InstanceStatus:
        return self._portal.run(self._async.status)

    def get_events(self) -> list[Ev | SystemEvent | Terminated]:
        return self._portal.run(self._async.get_events)

    def get_journal(self) -> list[JournalEntry]:
        return self._portal.run(self._async.get_journal)

    def get_progress(self) -> StepProgress:
        return self._portal.run(self._async.get_progress)

    def progress_at(self, sequence: int) -> StepProgress:
        return self._portal.run(lambda: self._async.progress_at(sequence))

    def state_at(self, sequence: int) -> S:
        return self._portal.run(lambda: self._async.state_at(sequence))

    def expected_signals(self) -> tuple[SignalDef[Any, Any], ...]:
        return self._portal.run(self._async.expected_signals)

    def origin(self) -> Origin | None:
        return self._portal.run(self._async.origin)

    def version(self) -> int:
        return self._portal.run(self._async.version)


class BlockingRuntime(Generic[S, Ev]):
    """Blocking twin of :class:`DurableRuntime` (and so of ``InMemoryRuntime``, which is
    one); ``BlockingDurableRuntime`` is this same class (an alias).

    Any number of threads may call it; its methods raise what their async twins raise, and
    ``WorkflowError`` when called from inside a workflow step or from a running event loop.
    Use a runtime either through this facade or from async code, not both. Entering it
    (``with runtime.blocking() as rt``) initializes the runtime's store; closing it (or
    leaving the ``with``) waits for the calls under way, closes the store and stops the
    event loop thread; the facade cannot be used after that.
    """

    def __init__(self, runtime: DurableRuntime[S, Ev]) -> None:
        self._async = runtime
        self._portal = _Portal()

    def __enter__(self) -> BlockingRuntime[S, Ev]:
        self.initialize()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def runtime(self) -> DurableRuntime[S, Ev]:
        """The async runtime behind this facade."""
        return self._async

    def close(self) -> None:
        """Close the runtime's store, then stop the event loop thread (idempotent)."""
        self._portal.close(self._async.close)

    def initialize(self) -> None:
        """Create or migrate the runtime's store schema."""
        return self._portal.run(self._async.initialize)

    def _wrap(self, instance: WorkflowInstance[S, Ev]) -> BlockingInstance[S, Ev]:
        return BlockingInstance(instance, self._portal)

    def create_instance(self, instance_id: str) -> BlockingInstance[S, Ev]:
        """The instance with this id, created (and run until it waits) if it is new."""
        return self._wrap(self._portal.run(lambda: self._async.create_instance(instance_id)))

    def start(
        self,
        instance_id: str,
        *,
        initial_state: S | None = None,
        signal: tuple[SignalDef[Any, Any], Any] | None = None,
    ) -> BlockingInstance[S, Ev]:
        """Start an instance, idempotently (see :meth:`DurableRuntime.start`)."""
        started = self._portal.run(
            lambda: self._async.start(instance_id, initial_state=initial_state, signal=signal)
        )
        return self._wrap(started)

    def terminate(self, instance_id: str, reason: str) -> bool:
        """Stop an instance for good (see :meth:`DurableRuntime.terminate`)."""
        return self._portal.run(lambda: self._async.terminate(instance_id, reason))

    def resume(self, instance_id: str) -> bool:
        """Take a parked instance up again (see :meth:`DurableRuntime.resume`)."""
        return self._portal.run(lambda: self._async.resume(instance_id))

    def fork(
        self, instance_id: str, new_id: str, *, after_sequence: int
    ) -> BlockingInstance[S, Ev]:
        """A new instance from a prefix of another's journal (see :meth:`DurableRuntime.fork`)."""
        forked = self._portal.run(
            lambda: self._async.fork(instance_id, new_id, after_sequence=after_sequence)
        )
        return self._wrap(forked)

    def purge(
        self,
        *,
        finished_before: datetime,
        statuses: Iterable[RegistryStatus] = ("finished", "failed", "terminated"),
        batch_size: int = 500,
        on_batch: Callable[[int], None] | None = None,
    ) -> int:
        """Delete ended instances (see :meth:`DurableRuntime.purge`)."""
        return self._portal.run(
            lambda: self._async.purge(
                finished_before=finished_before,
                statuses=statuses,
                batch_size=batch_size,
                on_batch=on_batch,
            )
        )

    def export_journal(self, instance_id: str) -> str:
        """The instance's journal as JSON lines (see :meth:`DurableRuntime.export_journal`)."""
        return self._portal.run(lambda: self._async.export_journal(instance_id))

    def get_instance(self, instance_id: str) -> BlockingInstance[S, Ev]:
        """The existing instance with this id (``InstanceNotFound`` otherwise)."""
        return self._wrap(self._portal.run(lambda: self._async.get_instance(instance_id)))

    def restore_instance(
        self, instance_id: str, journal: Iterable[JournalEntry]
    ) -> BlockingInstance[S, Ev]:
        """A new instance rebuilt from a journal."""
        restored = self._portal.run(lambda: self._async.restore_instance(instance_id, journal))
        return self._wrap(restored)

    def restore_from_events(
        self, instance_id: str, events: Iterable[Ev | SystemEvent | Terminated]
    ) -> BlockingInstance[S, Ev]:
        """A new instance rebuilt from event objects."""
        restored = self._portal.run(lambda: self._async.restore_from_events(instance_id, events))
        return self._wrap(restored)

    def instance_ids(self) -> list[str]:
        """The ids of the runtime's instances."""
        return self._portal.run(self._async.instance_ids)

    def search(self, query: SearchQuery | None = None) -> Page:
        """A page of the runtime's registry."""
        return self._portal.run(lambda: self._async.search(query))

    def run_due_wakeups(self, limit: int = 100) -> list[str]:
        """Run the instances whose wakeup is due (up to ``limit`` claims); their ids."""
        return self._portal.run(lambda: self._async.run_due_wakeups(limit))

    def resume_stale(self, limit: int = 100) -> list[str]:
        """Resume instances left running by a dead process."""
        return self._portal.run(lambda: self._async.resume_stale(limit))

    def run_claimed(self, instance_id: str, *, kind: OperationKind = "due") -> bool:
        """Run an instance a worker claimed; False if that failed."""
        return self._portal.run(lambda: self._async.run_claimed(instance_id, kind=kind))


BlockingDurableRuntime = BlockingRuntime
"""The blocking facade over a :class:`DurableRuntime`: the same class as
:class:`BlockingRuntime`."""
