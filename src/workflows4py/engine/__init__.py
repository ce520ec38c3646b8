"""The pure engine: it interprets a definition, with no I/O, no clock and no asyncio.

An ``Execution`` is an immutable snapshot of one instance; a runtime asks it what to do
next (``RunEffect``, ``Record``), performs the I/O and feeds the event back. The progress
model (``StepProgress`` and its one subclass per node kind; ``progress_of`` a definition,
``progress_at`` an event of a journal) and the sealed snapshots of executions are computed
here too.
Importing this package registers every node's semantics, drafts' included (``draft``).
"""

from ._core import Executed
from ._draft import (
    Drafts,
    draft,
)
from ._execution import (
    Execution,
    FreshSignal,
    Record,
    Redelivery,
    RunEffect,
    progress_at,
    progress_of,
)
from ._progress import (
    PROGRESS_JSON_VERSION,
    CheckpointProgress,
    DynamicProgress,
    EmbeddedProgress,
    EndProgress,
    ForEachElementProgress,
    ForEachProgress,
    ForkBranchProgress,
    ForkProgress,
    HandleErrorProgress,
    InterruptibleProgress,
    LoopIterationProgress,
    LoopProgress,
    ParallelProgress,
    ParkedMark,
    ProgressStatus,
    PureProgress,
    RecoveryProgress,
    RetryProgress,
    RunIOProgress,
    SequenceProgress,
    SignalProgress,
    StepProgress,
    TimerProgress,
)
from ._snapshot import (
    SnapshotError,
    SnapshotRefused,
    decode_execution,
    decode_snapshot,
    encode_execution,
    event_digest,
    fingerprint,
    seal,
    snapshot_types,
    unseal,
)

__all__ = [
    "PROGRESS_JSON_VERSION",
    "CheckpointProgress",
    "Drafts",
    "DynamicProgress",
    "EmbeddedProgress",
    "EndProgress",
    "Executed",
    "Execution",
    "ForEachElementProgress",
    "ForEachProgress",
    "ForkBranchProgress",
    "ForkProgress",
    "FreshSignal",
    "HandleErrorProgress",
    "InterruptibleProgress",
    "LoopIterationProgress",
    "LoopProgress",
    "ParallelProgress",
    "ParkedMark",
    "ProgressStatus",
    "PureProgress",
    "Record",
    "RecoveryProgress",
    "Redelivery",
    "RetryProgress",
    "RunEffect",
    "RunIOProgress",
    "SequenceProgress",
    "SignalProgress",
    "SnapshotError",
    "SnapshotRefused",
    "StepProgress",
    "TimerProgress",
    "decode_execution",
    "decode_snapshot",
    "draft",
    "encode_execution",
    "event_digest",
    "fingerprint",
    "progress_at",
    "progress_of",
    "seal",
    "snapshot_types",
    "unseal",
]
