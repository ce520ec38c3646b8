"""workflows4py: durable business workflows as typed, drawable values, run by event sourcing."""

from ._blocking import BlockingDurableRuntime, BlockingInstance, BlockingRuntime
from ._clock import Clock, SystemClock
from ._codec import JsonCodec, type_tag
from ._context import StepContext, current_step
from ._draft import draft, ensure_runnable, is_draft
from ._durable import DurableRuntime, PostgresRuntime, SqliteRuntime
from ._engine import Execution, FreshSignal, Record, Redelivery, RunEffect
from ._errors import (
    CodecError,
    DecodeError,
    DefinitionError,
    EffectContractError,
    EncodeError,
    ExecutionError,
    InstanceNotFound,
    InvalidInstanceId,
    InvalidSignalRequest,
    JournalError,
    PayloadTooLarge,
    UnexpectedEvent,
    WorkflowError,
)
from ._events import SystemEvent, TimerReleased, TimerStarted
from ._lint import LINT_RULES, LintError, LintIssue, assert_clean, lint, lint_workflow
from ._progress import StepProgress
from ._result import Err, Ok, Result
from ._runtime import (
    InMemoryRuntime,
    InstanceStatus,
    JournalEntry,
    UnexpectedSignal,
    WakeupScheduler,
    WakeupTable,
    WorkflowInstance,
)
from ._signals import SignalDef
from ._store import (
    InstanceKey,
    InstanceRecord,
    LeaseLost,
    LeaseTimeout,
    Page,
    SearchQuery,
    SequenceConflict,
    StoreError,
    StoreReadOnly,
    StoreUnavailable,
)
from ._wio import WIO, Caught, RetryAgain, RetryFailure
from ._worker import Worker
from ._workflow import Workflow

__all__ = [
    "LINT_RULES",
    "WIO",
    "BlockingDurableRuntime",
    "BlockingInstance",
    "BlockingRuntime",
    "Caught",
    "Clock",
    "CodecError",
    "DecodeError",
    "DefinitionError",
    "DurableRuntime",
    "EffectContractError",
    "EncodeError",
    "Err",
    "Execution",
    "ExecutionError",
    "FreshSignal",
    "InMemoryRuntime",
    "InstanceKey",
    "InstanceNotFound",
    "InstanceRecord",
    "InstanceStatus",
    "InvalidInstanceId",
    "InvalidSignalRequest",
    "JournalEntry",
    "JournalError",
    "JsonCodec",
    "LeaseLost",
    "LeaseTimeout",
    "LintError",
    "LintIssue",
    "Ok",
    "Page",
    "PayloadTooLarge",
    "PostgresRuntime",
    "Record",
    "Redelivery",
    "Result",
    "RetryAgain",
    "RetryFailure",
    "RunEffect",
    "SearchQuery",
    "SequenceConflict",
    "SignalDef",
    "SqliteRuntime",
    "StepContext",
    "StepProgress",
    "StoreError",
    "StoreReadOnly",
    "StoreUnavailable",
    "SystemClock",
    "SystemEvent",
    "TimerReleased",
    "TimerStarted",
    "UnexpectedEvent",
    "UnexpectedSignal",
    "WakeupScheduler",
    "WakeupTable",
    "Worker",
    "Workflow",
    "WorkflowError",
    "WorkflowInstance",
    "assert_clean",
    "current_step",
    "draft",
    "ensure_runnable",
    "is_draft",
    "lint",
    "lint_workflow",
    "type_tag",
]
