"""The pure engine: it interprets a definition, with no I/O, no clock and no asyncio.

An ``Execution`` is an immutable snapshot of one instance; a runtime asks it what to do
next (``RunEffect``, ``Record``), performs the I/O and feeds the event back. The progress
model (``StepProgress``) and the sealed snapshots of executions are computed here too.
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
)
from ._progress import StepProgress
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
    "Drafts",
    "Executed",
    "Execution",
    "FreshSignal",
    "Record",
    "Redelivery",
    "RunEffect",
    "SnapshotError",
    "SnapshotRefused",
    "StepProgress",
    "decode_execution",
    "decode_snapshot",
    "draft",
    "encode_execution",
    "event_digest",
    "fingerprint",
    "seal",
    "snapshot_types",
    "unseal",
]
