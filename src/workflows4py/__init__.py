"""workflows4py: durable business workflows as typed, drawable values, run by event sourcing."""

from ._blocking import BlockingInstance, BlockingRuntime
from ._clock import Clock, SystemClock
from ._codec import JsonCodec, type_tag
from ._context import StepContext, current_step
from ._engine import Execution
from ._errors import (
    CodecError,
    DecodeError,
    DefinitionError,
    EffectContractError,
    EncodeError,
    InstanceNotFound,
    InvalidInstanceId,
    InvalidSignalRequest,
    JournalError,
    UnexpectedEvent,
    WorkflowError,
)
from ._progress import StepProgress
from ._result import Err, Ok, Result
from ._runtime import (
    InMemoryRuntime,
    InstanceStatus,
    JournalEntry,
    UnexpectedSignal,
    WorkflowInstance,
)
from ._signals import SignalDef
from ._wio import WIO, Caught
from ._workflow import Workflow

__all__ = [
    "WIO",
    "BlockingInstance",
    "BlockingRuntime",
    "Caught",
    "Clock",
    "CodecError",
    "DecodeError",
    "DefinitionError",
    "EffectContractError",
    "EncodeError",
    "Err",
    "Execution",
    "InMemoryRuntime",
    "InstanceNotFound",
    "InstanceStatus",
    "InvalidInstanceId",
    "InvalidSignalRequest",
    "JournalEntry",
    "JournalError",
    "JsonCodec",
    "Ok",
    "Result",
    "SignalDef",
    "StepContext",
    "StepProgress",
    "SystemClock",
    "UnexpectedEvent",
    "UnexpectedSignal",
    "Workflow",
    "WorkflowError",
    "WorkflowInstance",
    "current_step",
    "type_tag",
]
