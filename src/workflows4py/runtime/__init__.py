"""Runtimes: what drives a workflow's instances, journals their events and wakes them up.

``Runtime`` runs every workflow of an application over one store (``Runtime.sqlite``,
``Runtime.postgres``, ``Runtime.memory``); ``DurableRuntime`` is its part for one workflow
(``SqliteRuntime``, ``PostgresRuntime`` and ``InMemoryRuntime`` are shortcuts to one over a
store of their own); the ``Blocking*`` facades serve code without an event loop; ``Worker``
runs due wakeups and retries.
"""

from ._app import Runtime
from ._blocking import BlockingDurableRuntime, BlockingInstance, BlockingRuntime
from ._clock import Clock, SystemClock
from ._context import StepContext, current_step
from ._durable import DurableRuntime, PostgresRuntime, RuntimeOptions, SharedOptions, SqliteRuntime
from ._gate import CheckReport, JournalBreak, WorkflowCheck, check_journal_files, check_journals
from ._hooks import LogContextFilter, Observer, Operation, OperationKind
from ._inmemory import InMemoryRuntime
from ._runtime import InstanceStatus, Origin, UnexpectedSignal, WorkflowInstance
from ._worker import Worker

__all__ = [
    "BlockingDurableRuntime",
    "BlockingInstance",
    "BlockingRuntime",
    "CheckReport",
    "Clock",
    "DurableRuntime",
    "InMemoryRuntime",
    "InstanceStatus",
    "JournalBreak",
    "LogContextFilter",
    "Observer",
    "Operation",
    "OperationKind",
    "Origin",
    "PostgresRuntime",
    "Runtime",
    "RuntimeOptions",
    "SharedOptions",
    "SqliteRuntime",
    "StepContext",
    "SystemClock",
    "UnexpectedSignal",
    "Worker",
    "WorkflowCheck",
    "WorkflowInstance",
    "check_journal_files",
    "check_journals",
    "current_step",
]
