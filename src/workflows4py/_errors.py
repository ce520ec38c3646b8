"""The exception tree of workflows4py.

Every error about a definition, an instance or stored data derives from
:class:`WorkflowError` (an argument of the wrong kind, such as ``InMemoryRuntime(42)``,
raises a plain ``TypeError`` or ``ValueError``)::

    WorkflowError
    ├── DefinitionError          a workflow definition is malformed (found when built or loaded)
    ├── CodecError               a value cannot cross the JSON boundary
    │   ├── EncodeError          a value has no encoding (unsupported type, unknown union member)
    │   └── DecodeError          stored data does not decode (names the instance and event)
    ├── InvalidInstanceId        an instance id is empty, too long or has forbidden characters
    ├── InstanceNotFound         no instance with that id exists in the runtime
    ├── InvalidSignalRequest     a signal request is not of the type its SignalDef declares
    ├── PayloadTooLarge          a request, event or snapshot encodes past the runtime's limit
    ├── EffectContractError      an effect or signal handler returned an event of the wrong type
    ├── ExecutionError           a definition cannot go on (no fork branch matched, a busy loop)
    ├── LintError                assert_clean() found issues in a definition
    ├── StoreError               a storage operation failed (see workflows4py._store)
    │   ├── StoreUnavailable     the database cannot be reached, or is not the file it was
    │   ├── StoreReadOnly        the store was opened read-only; nothing was written
    │   ├── SequenceConflict     another writer appended first; nothing was written
    │   ├── LeaseTimeout         the instance stayed leased by another owner too long
    │   └── LeaseLost            a lease the caller held has lapsed
    └── JournalError             a journal does not fit the workflow definition
        └── UnexpectedEvent      nothing on the current frontier accepts an event

Domain errors of a workflow are *values* (see :class:`~workflows4py.Err`), never exceptions.
Exceptions raised by user effects are technical failures: they propagate to the caller
unchanged and nothing is persisted for the failed step.
"""

from __future__ import annotations

__all__ = [
    "CodecError",
    "DecodeError",
    "DefinitionError",
    "EffectContractError",
    "EncodeError",
    "ExecutionError",
    "InstanceClosed",
    "InstanceExists",
    "InstanceNotFound",
    "InvalidInstanceId",
    "InvalidSignalRequest",
    "JournalError",
    "PayloadTooLarge",
    "UnexpectedEvent",
    "WorkflowError",
    "WorkflowFailed",
]


class WorkflowError(Exception):
    """Root of every exception raised by workflows4py."""


class DefinitionError(WorkflowError):
    """A workflow definition is malformed; the message names the step and the fix."""


class CodecError(WorkflowError):
    """A value cannot be converted to or from JSON."""


class EncodeError(CodecError):
    """A value cannot be encoded (unsupported type, or not a member of the declared union)."""


class DecodeError(CodecError):
    """Stored data does not decode into the declared type; ``path`` points at the culprit.

    Raised for a row read from a store, it names the row: ``workflow`` and ``instance_id``
    of the instance, and ``sequence``, the journal position of the event (None for a row
    that is not an event, such as a registry row).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str = "$",
        workflow: str | None = None,
        instance_id: str | None = None,
        sequence: int | None = None,
    ) -> None:
        text = f"{path}: {message}" if path else message
        if instance_id is not None:
            where = f"instance {instance_id!r}"
            if workflow is not None:
                where += f" of {workflow}"
            if sequence is not None:
                where += f", event #{sequence}"
            text = f"{where}: {text}"
        super().__init__(text)
        self.path = path
        self.workflow = workflow
        self.instance_id = instance_id
        self.sequence = sequence


class InvalidInstanceId(WorkflowError, ValueError):
    """An instance id is empty, too long, or contains characters outside ``[A-Za-z0-9._:@-]``."""


class InstanceNotFound(WorkflowError, LookupError):
    """No instance with the given id exists."""

    def __init__(self, instance_id: str) -> None:
        super().__init__(f"workflow instance {instance_id!r} does not exist")
        self.instance_id = instance_id


class InstanceExists(WorkflowError):
    """An instance with this id exists already, started from another initial state."""

    def __init__(self, workflow: str, instance_id: str, detail: str = "") -> None:
        super().__init__(
            f"instance {instance_id!r} of {workflow} exists already with another initial state"
            + (f": {detail}" if detail else "")
        )
        self.workflow = workflow
        self.instance_id = instance_id


class InstanceClosed(WorkflowError):
    """The operation needs an instance still under way; this one has finished, failed or
    been terminated (``status`` says which)."""

    def __init__(self, instance_id: str, status: str, operation: str) -> None:
        super().__init__(f"cannot {operation} instance {instance_id!r}: it is {status}")
        self.instance_id = instance_id
        self.status = status


class WorkflowFailed(WorkflowError):
    """The instance ended with a domain error (``error``), not with a final state."""

    def __init__(self, workflow: str, instance_id: str, error: object) -> None:
        super().__init__(f"instance {instance_id!r} of {workflow} failed with {error!r}")
        self.workflow = workflow
        self.instance_id = instance_id
        self.error = error


class InvalidSignalRequest(WorkflowError, TypeError):
    """A signal request does not match the request type of its SignalDef; no handler ran."""


class PayloadTooLarge(WorkflowError, ValueError):
    """A signal request or an event encodes to more bytes than the runtime accepts.

    ``what`` says which ("signal request", "event"), ``size`` and ``limit`` are in bytes
    of UTF-8 JSON, ``option`` names the runtime option that sets the limit. Nothing was
    journaled.
    """

    def __init__(self, what: str, size: int, limit: int, option: str, detail: str = "") -> None:
        about = f" {detail}" if detail else ""
        super().__init__(
            f"{what}{about} encodes to {size:,} bytes, more than the limit of {limit:,} "
            f"bytes ({option}); nothing was journaled"
        )
        self.what = what
        self.size = size
        self.limit = limit
        self.option = option


class EffectContractError(WorkflowError, TypeError):
    """An effect or signal handler broke its contract, e.g. returned an event of the wrong type.

    Nothing was persisted for the step; fix the step's code.
    """


class ExecutionError(WorkflowError):
    """The definition cannot go on from here: no fork branch matched the input, a loop spun
    without ever waiting, for-each elements with duplicate keys. Nothing was recorded."""


class JournalError(WorkflowError):
    """A journal does not fit the workflow definition (an evolved definition, or corrupt data)."""

    def __init__(self, message: str, *, instance_id: str, sequence: int) -> None:
        super().__init__(f"instance {instance_id!r}, event #{sequence}: {message}")
        self.instance_id = instance_id
        self.sequence = sequence


class UnexpectedEvent(JournalError):
    """No step on the current frontier of the workflow accepts this journal event."""

    def __init__(
        self,
        *,
        instance_id: str,
        sequence: int,
        event_type: str,
        expected: str,
        steps: tuple[str, ...] = (),
    ) -> None:
        waiting = f"steps awaiting: {', '.join(steps)}; " if steps else ""
        super().__init__(
            f"event of type {event_type!r} is not accepted by any step awaiting now "
            f"({waiting}events they accept: {expected}); the journal no longer fits "
            "this definition",
            instance_id=instance_id,
            sequence=sequence,
        )
        self.event_type = event_type
        self.expected = expected
        self.steps = steps
