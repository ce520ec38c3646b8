"""Runtimes: what drives a workflow's instances, journals their events and wakes them up.

``InMemoryRuntime`` keeps everything in the process; ``DurableRuntime`` over a store
(``SqliteRuntime``, ``PostgresRuntime``) survives restarts and crashes; the ``Blocking*``
facades serve code without an event loop; ``Worker`` runs due wakeups and retries.
"""

from ._app import Runtime
from ._blocking import BlockingDurableRuntime, BlockingInstance, BlockingRuntime
from ._clock import Clock, SystemClock
from ._context import StepContext, current_step
from ._durable import DurableRuntime, PostgresRuntime, RuntimeOptions, SharedOptions, SqliteRuntime
from ._runtime import (
    InMemoryRuntime,
    InstanceStatus,
    UnexpectedSignal,
    WakeupScheduler,
    WakeupTable,
    WorkflowInstance,
)
from ._worker import Worker

__all__ = [
    "BlockingDurableRuntime",
    "BlockingInstance",
    "BlockingRuntime",
    "Clock",
    "DurableRuntime",
    "InMemoryRuntime",
    "InstanceStatus",
    "PostgresRuntime",
    "Runtime",
    "RuntimeOptions",
    "SharedOptions",
    "SqliteRuntime",
    "StepContext",
    "SystemClock",
    "UnexpectedSignal",
    "WakeupScheduler",
    "WakeupTable",
    "Worker",
    "WorkflowInstance",
    "current_step",
]
