"""Observers: what the runtime tells about its work, for logs, traces and metrics.

An :class:`Observer` is told when an instance operation starts, holds the instance's lease
and ends, when an effect runs, a signal is delivered or refused, an event is recorded, a
wakeup fires, and when an instance finishes, is parked or terminated. Every method of the
base class does nothing: override the ones you need. A runtime without observers pays one
``is None`` test per call site and nothing else.

Every log record the library writes during an operation carries ``workflow``,
``instance_id``, ``operation`` and ``step`` attributes; :class:`LogContextFilter` adds the
same attributes to any record (your own, written inside a step, included), so a formatter
can print them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "LogContextFilter",
    "Observer",
    "Operation",
    "OperationKind",
    "combine",
    "current_operation",
    "operating",
]

OperationKind = Literal[
    "create", "start", "signal", "wakeup", "due", "recover", "terminate", "resume", "fork"
]
"""What an operation does: ``create`` (``create_instance``), ``start``, ``signal``,
``wakeup`` (``instance.wakeup()``), ``due`` (a worker runs a due wakeup), ``recover`` (a
worker resumes an instance a dead process left running), ``terminate``, ``resume``,
``fork``."""


@dataclass(slots=True, eq=False)
class Operation:
    """One operation on one instance, as observers see it (the same object from its start
    to its end, so an observer may keep its own data per operation in ``scratch``)."""

    workflow: str
    instance_id: str
    kind: OperationKind
    started: float = field(default_factory=time.perf_counter)
    """When it started, by ``time.perf_counter()``."""
    step: str | None = None
    """The step running now (an effect or a signal handler), if any."""
    scratch: dict[str, object] = field(default_factory=dict)
    """Free for observers (an OpenTelemetry span, a timer, ...)."""


class Observer:
    """Told about the runtime's work; every method does nothing unless overridden.

    Methods are called on the event loop, inside the operation: keep them quick, and do not
    raise (an exception an observer raises is logged and ignored).
    """

    def operation_started(self, op: Operation) -> None:
        """An operation on an instance begins (before it waits for the instance's lease)."""

    def operation_ended(self, op: Operation, error: BaseException | None) -> None:
        """The operation ended, with ``error`` if it raised."""

    def lease_acquired(self, op: Operation, waited: float) -> None:
        """The operation holds the instance's lease, ``waited`` seconds after it began: the
        wait for another process's lease on the instance, and for another operation of this
        process on it, included. (Operations that register the instance take the lease as
        they create it: they tell a wait of about zero.)"""

    def effect_started(self, op: Operation, step: str) -> None:
        """The effect of ``step`` is about to run."""

    def effect_ended(self, op: Operation, step: str, seconds: float) -> None:
        """The effect of ``step`` returned after ``seconds``."""

    def effect_failed(self, op: Operation, step: str, error: Exception, seconds: float) -> None:
        """The effect of ``step`` raised ``error`` after ``seconds``."""

    def event_recorded(self, op: Operation, sequence: int, event_type: str, step: str) -> None:
        """Event ``sequence`` (type tag ``event_type``) was written, by ``step``."""

    def signal_delivered(self, op: Operation, signal_id: str) -> None:
        """A signal was handled (or answered again from its recorded event)."""

    def signal_rejected(self, op: Operation, signal_id: str, reason: str) -> None:
        """A signal no step awaits was refused (``UnexpectedSignal``); nothing changed."""

    def wakeup_fired(self, op: Operation) -> None:
        """A worker claimed the instance's due wakeup and runs it (``op.kind`` is
        ``due``)."""

    def instance_finished(self, op: Operation, status: Literal["finished", "failed"]) -> None:
        """The instance ended: with a final state (``finished``) or a domain error."""

    def instance_parked(self, op: Operation, error: str) -> None:
        """The instance was parked: the worker stops trying until it is resumed."""

    def instance_terminated(self, op: Operation, reason: str) -> None:
        """The instance was terminated."""


class _Fanout(Observer):
    """Several observers as one; an observer that raises does not stop the others. Each
    hook is built once, over the observers' bound methods (an instance attribute, found
    before the base class's no-op)."""

    def __init__(self, observers: tuple[Observer, ...]) -> None:
        self.observers = observers
        for name in _HOOKS:
            setattr(self, name, _fan(name, [(o, getattr(o, name)) for o in observers]))


def _fan(name: str, methods: list[tuple[Observer, Callable[..., object]]]) -> Callable[..., None]:
    def call(*args: object) -> None:
        for observer, method in methods:
            try:
                method(*args)
            except Exception:  # an observer's bug must not break the operation
                _log.warning("observer %r failed in %s", observer, name, exc_info=True)

    return call


_HOOKS = tuple(name for name, value in vars(Observer).items() if callable(value) and name[0] != "_")

_log = logging.getLogger("workflows4py")


def combine(observers: Iterable[Observer] | None) -> Observer | None:
    """One observer telling all of ``observers``, or None when there are none."""
    found = tuple(observers or ())
    for observer in found:
        if not isinstance(observer, Observer):
            raise TypeError(f"observers must be Observer instances, got {observer!r}")
    return _Fanout(found) if found else None


_OPERATION: ContextVar[Operation | None] = ContextVar("workflows4py_operation", default=None)


def current_operation() -> Operation | None:
    """The operation under way in this task, if any."""
    return _OPERATION.get()


@contextmanager
def operating(op: Operation) -> Iterator[Operation]:
    """Make ``op`` the current operation (for the log filter) while the block runs."""
    token = _OPERATION.set(op)
    try:
        yield op
    finally:
        _OPERATION.reset(token)


class LogContextFilter(logging.Filter):
    """Adds ``workflow``, ``instance_id``, ``operation`` and ``step`` to every record (None
    outside an operation), for formatters such as
    ``"%(levelname)s %(workflow)s:%(instance_id)s %(step)s %(message)s"``.

    Attach it to a handler (``handler.addFilter(LogContextFilter())``): it then marks the
    library's records and yours alike, those written inside a step included.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        op = _OPERATION.get()
        for name, value in (
            ("workflow", None if op is None else op.workflow),
            ("instance_id", None if op is None else op.instance_id),
            ("operation", None if op is None else op.kind),
            ("step", None if op is None else op.step),
        ):
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


# The library's records carry the operation's attributes whatever the handler; and nothing is
# printed unless the application configures logging (the library only adds a NullHandler).
for _name in ("workflows4py", "workflows4py.worker"):
    logging.getLogger(_name).addFilter(LogContextFilter())
logging.getLogger("workflows4py").addHandler(logging.NullHandler())
