"""The progress model: a definition tree annotated with what has run, how it ended, and what
the instance waits for now.

One frozen dataclass per node kind, all subclasses of :class:`StepProgress`, each with its
own typed fields; the nodes below a node are its ``children`` (every one a real node: a
fork's branches, a loop's iterations, an interruption's trigger and handler, ...). The
renderers (``workflows4py.render``), the command line and the JSON document of
:meth:`StepProgress.to_json` read this model only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

from workflows4py._errors import DefinitionError
from workflows4py.definition import Err, Ok, Result, Terminated, error_name
from workflows4py.serialization import encoder_for

__all__ = [
    "PROGRESS_JSON_VERSION",
    "CheckpointProgress",
    "DynamicProgress",
    "EmbeddedProgress",
    "EndProgress",
    "ForEachElementProgress",
    "ForEachProgress",
    "ForkBranchProgress",
    "ForkProgress",
    "HandleErrorProgress",
    "InterruptibleProgress",
    "LoopIterationProgress",
    "LoopProgress",
    "ParallelProgress",
    "ParkedMark",
    "ProgressStatus",
    "PureProgress",
    "RecoveryProgress",
    "RetryProgress",
    "RunIOProgress",
    "SequenceProgress",
    "SignalProgress",
    "StepProgress",
    "TimerProgress",
    "declared_errors",
    "waits",
]

PROGRESS_JSON_VERSION = 1
"""The version of the document :meth:`StepProgress.to_json` produces."""

ProgressStatus = Literal["pending", "waiting", "done", "failed"]
"""``done`` (ended with ``Ok``), ``failed`` (ended with ``Err``), ``waiting`` (the instance
waits on it, or on a node inside it, now) or ``pending`` (not reached)."""


@dataclass(frozen=True, slots=True)
class ParkedMark:
    """The runtime stopped retrying the instance (it is ``parked``): why, and since when.

    The engine never sets it (it knows nothing of workers); a runtime may put it on the
    root of an instance's progress.
    """

    reason: str
    at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StepProgress:
    """One node of a progress tree; the base of one class per node kind.

    ``name`` is the step's name (None for compositions and unnamed pure steps), ``result``
    None until the node completed, then ``Ok(output)`` or ``Err(error)``, ``index`` the
    order of completion (a parent completes after its children, so indexes have gaps).
    ``waiting`` tells the instance waits on this node (or on one inside it) now.
    ``description`` is the one a draft step was given; ``draft`` marks a draft part (a draft
    step, or a choice, loop, ... whose code is not written yet). ``terminated`` (the
    :class:`Terminated` event) and ``parked`` are marks of the instance, set on the root only.
    ``kind`` names the node kind in the JSON document.
    """

    kind: ClassVar[str] = "step"
    name: str | None = None
    result: Result[Any, Any] | None = None
    index: int | None = None
    waiting: bool = False
    description: str | None = None
    draft: bool = False
    terminated: Terminated | None = None
    parked: ParkedMark | None = None

    @property
    def children(self) -> tuple[StepProgress, ...]:
        """The nodes directly below this one, in definition order."""
        return ()

    @property
    def executed(self) -> bool:
        """Whether the node completed (with ``Ok`` or ``Err``)."""
        return self.result is not None

    @property
    def status(self) -> ProgressStatus:
        """``done``, ``failed``, ``waiting`` or ``pending`` (see :data:`ProgressStatus`)."""
        if isinstance(self.result, Ok):
            return "done"
        if self.result is not None:
            return "failed"
        return "waiting" if self.waiting else "pending"

    def walk(self) -> Iterator[StepProgress]:
        """This node and all below it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()

    def executed_steps(self) -> list[StepProgress]:
        """Completed leaf steps (signals, effects, timers, named pure steps) in execution
        order."""
        leaves = [
            p
            for p in self.walk()
            if p.executed
            and not p.children
            and (not isinstance(p, PureProgress) or p.name is not None)
        ]
        return sorted(leaves, key=lambda p: p.index if p.index is not None else -1)

    def frontier(self) -> tuple[StepProgress, ...]:
        """The nodes the instance waits on now, in definition order: signal steps, timers,
        effects due to run, a checkpoint to record, a recovery awaiting its event, an end
        step reached."""
        return tuple(p for p in self.walk() if p.waiting and not waits(p.children))

    def to_json(self) -> dict[str, Any]:
        """The versioned JSON document of this tree (see ``docs/progress.md``): the version,
        the instance's marks, the paths of the nodes waited on, and the root node."""
        paths: list[list[int]] = []
        root = _node_json(self, [], paths)
        return {
            "version": PROGRESS_JSON_VERSION,
            "status": self.status,
            "terminated": None
            if self.terminated is None
            else {"reason": self.terminated.reason, "at": _instant(self.terminated.terminated_at)},
            "parked": None
            if self.parked is None
            else {"reason": self.parked.reason, "at": _instant(self.parked.at)},
            "frontier": paths,
            "root": root,
        }

    def _fields(self) -> dict[str, Any]:
        """The JSON of this kind's own fields (its children aside)."""
        return {}


def waits(nodes: tuple[StepProgress, ...]) -> bool:
    """Whether the instance waits on any of ``nodes``."""
    return any(n.waiting for n in nodes)


def declared_errors(node: StepProgress) -> tuple[str, ...]:
    """The names of the domain errors ``node`` may end with: those its steps declare, less
    those an error handler inside it handles (a handler's own errors count)."""
    if isinstance(node, PureProgress | RunIOProgress | SignalProgress):
        return node.errors
    parts: tuple[StepProgress, ...]
    if isinstance(node, HandleErrorProgress):
        parts = (node.handler,)
    elif isinstance(node, ForEachProgress):
        parts = (node.body,)
    else:
        parts = node.children
    names: dict[str, None] = {}
    for part in parts:
        names.update(dict.fromkeys(declared_errors(part)))
    return tuple(names)


# -- leaves -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PureProgress(StepProgress):
    """A pure step (``WIO.pure``): it runs when reached and records no event. ``errors``
    names the domain errors it declares (``CommitNotFound`` reads "Commit Not Found")."""

    kind: ClassVar[str] = "pure"
    errors: tuple[str, ...] = ()

    def _fields(self) -> dict[str, Any]:
        return {"errors": list(self.errors)}


@dataclass(frozen=True, slots=True, kw_only=True)
class RunIOProgress(StepProgress):
    """A step with a side effect (``WIO.run_io``); ``errors`` as for :class:`PureProgress`."""

    kind: ClassVar[str] = "run_io"
    errors: tuple[str, ...] = ()

    def _fields(self) -> dict[str, Any]:
        return {"errors": list(self.errors)}


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalProgress(StepProgress):
    """A step handling a signal: the signal's id and name, its request and response type
    names (``response`` None for a signal without one), the errors the step declares.

    A draft signal has no id and no types yet (None); its ``signal_name`` is the one
    written.
    """

    kind: ClassVar[str] = "signal"
    signal_id: str | None
    signal_name: str
    request: str | None = None
    response: str | None = None
    errors: tuple[str, ...] = ()

    def _fields(self) -> dict[str, Any]:
        return {
            "signal_id": self.signal_id,
            "signal_name": self.signal_name,
            "request": self.request,
            "response": self.response,
            "errors": list(self.errors),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerProgress(StepProgress):
    """A timer: how long it waits (None when computed at run time), when it started, when
    it is due and when it was released.

    Once started, ``duration`` is the wait its ``TimerStarted`` event recorded
    (``resume_at - started_at``, zero when that instant had already passed), whatever the
    definition says now.
    """

    kind: ClassVar[str] = "timer"
    duration: timedelta | None = None
    started_at: datetime | None = None
    resume_at: datetime | None = None
    released_at: datetime | None = None

    def _fields(self) -> dict[str, Any]:
        return {
            "duration": None if self.duration is None else _encode_duration(self.duration),
            "started_at": _instant(self.started_at),
            "resume_at": _instant(self.resume_at),
            "released_at": _instant(self.released_at),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class EndProgress(StepProgress):
    """``WIO.end()``: a step that never completes; an instance that reached it stays open
    (it is ``waiting`` there)."""

    kind: ClassVar[str] = "end"


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryProgress(StepProgress):
    """Where a removed, checkpointed step is recovered from its checkpoint event."""

    kind: ClassVar[str] = "recovery"


# -- compositions -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SequenceProgress(StepProgress):
    """Steps run one after the other (``>>``); nested sequences are flattened into one."""

    kind: ClassVar[str] = "sequence"
    steps: tuple[StepProgress, ...]

    @property
    def children(self) -> tuple[StepProgress, ...]:
        return self.steps


@dataclass(frozen=True, slots=True, kw_only=True)
class DynamicProgress(StepProgress):
    """``flat_map``: ``base``, then the step computed from its output (``then``, None until
    it is known)."""

    kind: ClassVar[str] = "dynamic"
    base: StepProgress
    then: StepProgress | None = None

    @property
    def children(self) -> tuple[StepProgress, ...]:
        return (self.base,) if self.then is None else (self.base, self.then)


@dataclass(frozen=True, slots=True, kw_only=True)
class HandleErrorProgress(StepProgress):
    """``base.handle_error_with(handler)``: ``handled`` names the domain errors of the base
    that go to the handler (as in :class:`PureProgress`)."""

    kind: ClassVar[str] = "handle_error"
    base: StepProgress
    handler: StepProgress
    handled: tuple[str, ...] = ()

    @property
    def children(self) -> tuple[StepProgress, ...]:
        return (self.base, self.handler)

    def _fields(self) -> dict[str, Any]:
        return {"handled": list(self.handled)}


@dataclass(frozen=True, slots=True, kw_only=True)
class ForkBranchProgress(StepProgress):
    """One branch of a fork: its name (the answer, "Yes"), whether it was taken, its step."""

    kind: ClassVar[str] = "branch"
    taken: bool = False
    body: StepProgress

    @property
    def children(self) -> tuple[StepProgress, ...]:
        return (self.body,)

    def _fields(self) -> dict[str, Any]:
        return {"taken": self.taken}


@dataclass(frozen=True, slots=True, kw_only=True)
class ForkProgress(StepProgress):
    """A fork (``WIO.fork``, ``draft.choice``): its name is the question, ``branches`` its
    branches in definition order, ``chosen`` the index of the one taken (None before)."""

    kind: ClassVar[str] = "fork"
    branches: tuple[ForkBranchProgress, ...]
    chosen: int | None = None

    @property
    def children(self) -> tuple[StepProgress, ...]:
        return self.branches

    @property
    def taken(self) -> ForkBranchProgress | None:
        """The branch taken, once the fork has chosen."""
        return None if self.chosen is None else self.branches[self.chosen]

    def _fields(self) -> dict[str, Any]:
        return {"chosen": self.chosen}


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopIterationProgress(StepProgress):
    """One round of a loop: its ``number`` (from 1), the body's run, then the restart
    step's (``on_restart``: run, running, or ahead while the condition is not answered;
    None when the loop has none or it will not run), and ``outcome``: the name of the
    condition's answer (the loop's ``release`` or ``restart``), None before it is known."""

    kind: ClassVar[str] = "iteration"
    number: int
    outcome: str | None = None
    body: StepProgress
    on_restart: StepProgress | None = None

    @property
    def children(self) -> tuple[StepProgress, ...]:
        return (self.body,) if self.on_restart is None else (self.body, self.on_restart)

    def _fields(self) -> dict[str, Any]:
        return {"number": self.number, "outcome": self.outcome}


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopProgress(StepProgress):
    """A loop: its name is the condition, ``release``/``restart`` the names of its answers,
    ``restarts`` how many times it went round, ``iterations`` its rounds (before it starts,
    the first one, ahead).

    A loop keeps its last runs only (see ``keep``): earlier rounds are left out, and
    ``iterations[0].number`` tells where the kept ones start.
    """

    kind: ClassVar[str] = "loop"
    release: str
    restart: str
    restarts: int = 0
    iterations: tuple[LoopIterationProgress, ...]

    @property
    def children(self) -> tuple[StepProgress, ...]:
        return self.iterations

    def _fields(self) -> dict[str, Any]:
        return {"release": self.release, "restart": self.restart, "restarts": self.restarts}


@dataclass(frozen=True, slots=True, kw_only=True)
class ParallelProgress(StepProgress):
    """Branches advancing independently (``WIO.parallel``), all of which must finish."""

    kind: ClassVar[str] = "parallel"
    branches: tuple[StepProgress, ...]

    @property
    def children(self) -> tuple[StepProgress, ...]:
        return self.branches


@dataclass(frozen=True, slots=True, kw_only=True)
class ForEachElementProgress(StepProgress):
    """The run of a for-each's body for one element, by the element's key."""

    kind: ClassVar[str] = "element"
    key: str
    body: StepProgress

    @property
    def children(self) -> tuple[StepProgress, ...]:
        return (self.body,)

    def _fields(self) -> dict[str, Any]:
        return {"key": self.key}


@dataclass(frozen=True, slots=True, kw_only=True)
class ForEachProgress(StepProgress):
    """A for-each: ``body`` as defined, and once the elements are known (``elements`` not
    None) the run of the body for each. Its children are the elements, or the body before
    they are known."""

    kind: ClassVar[str] = "for_each"
    body: StepProgress
    elements: tuple[ForEachElementProgress, ...] | None = None

    @property
    def children(self) -> tuple[StepProgress, ...]:
        return (self.body,) if self.elements is None else self.elements

    def _fields(self) -> dict[str, Any]:
        keys = None if self.elements is None else [e.key for e in self.elements]
        return {"keys": keys}


@dataclass(frozen=True, slots=True, kw_only=True)
class EmbeddedProgress(StepProgress):
    """Another workflow's definition run inside this one (``WIO.embed``)."""

    kind: ClassVar[str] = "embedded"
    inner: StepProgress

    @property
    def children(self) -> tuple[StepProgress, ...]:
        return (self.inner,)


@dataclass(frozen=True, slots=True, kw_only=True)
class InterruptibleProgress(StepProgress):
    """``base.interrupt_with(flow)``: the base, the trigger (the flow's first step, a signal
    or a timer) and the rest of the flow (``handler``, None when the trigger is all of it).
    ``interrupted`` tells the trigger fired and cut the base short."""

    kind: ClassVar[str] = "interruptible"
    base: StepProgress
    trigger: StepProgress
    handler: StepProgress | None = None
    interrupted: bool = False

    @property
    def children(self) -> tuple[StepProgress, ...]:
        parts = (self.base, self.trigger)
        return parts if self.handler is None else (*parts, self.handler)

    def _fields(self) -> dict[str, Any]:
        return {"interrupted": self.interrupted}


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckpointProgress(StepProgress):
    """``base`` followed by a checkpoint event that alone restores its output on replay;
    ``waiting`` on the checkpoint itself once the base is done and the event is to record."""

    kind: ClassVar[str] = "checkpoint"
    base: StepProgress

    @property
    def children(self) -> tuple[StepProgress, ...]:
        return (self.base,)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryProgress(StepProgress):
    """``base`` retried on technical failures: the policy (``stateless``: a delay, nothing
    persisted; ``stateful``: failures recorded as events), and for a stateful one the
    failed attempts recorded so far, its retry state and the instant before which the next
    attempt does not run (``failed_attempts`` None for a stateless policy, which counts
    nothing)."""

    kind: ClassVar[str] = "retry"
    base: StepProgress
    policy: Literal["stateless", "stateful"]
    failed_attempts: int | None = None
    state: Any = None
    not_before: datetime | None = None

    @property
    def children(self) -> tuple[StepProgress, ...]:
        return (self.base,)

    def _fields(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "failed_attempts": self.failed_attempts,
            "state": _value(self.state),
            "not_before": _instant(self.not_before),
        }


# -- JSON -------------------------------------------------------------------------------------

_ENCODERS: dict[type[Any], Callable[[Any], Any] | None] = {}


def _value(value: Any) -> Any:
    """The codec's JSON of ``value`` when its type encodes, else its ``repr``."""
    cls = type(value)
    if cls not in _ENCODERS:
        try:
            _ENCODERS[cls] = encoder_for(cls)
        except DefinitionError:
            _ENCODERS[cls] = None
    encode = _ENCODERS[cls]
    if encode is None:
        return repr(value)
    try:
        return encode(value)
    except Exception:  # a value that does not fit its type's codec: shown as its repr
        return repr(value)


def _instant(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


_encode_duration = encoder_for(timedelta)


def _result_json(result: Result[Any, Any] | None) -> dict[str, Any] | None:
    if isinstance(result, Ok):
        return {"ok": _value(result.value), "type": type(result.value).__qualname__}
    if isinstance(result, Err):
        error = type(result.error)
        return {"err": _value(result.error), "type": error.__qualname__, "error": error_name(error)}
    return None


def _node_json(node: StepProgress, path: list[int], frontier: list[list[int]]) -> dict[str, Any]:
    if node.waiting and not waits(node.children):
        frontier.append(path)
    return {
        "kind": node.kind,
        "name": node.name,
        "status": node.status,
        "index": node.index,
        "result": _result_json(node.result),
        "description": node.description,
        "draft": node.draft,
        **node._fields(),
        "children": [
            _node_json(child, [*path, i], frontier) for i, child in enumerate(node.children)
        ],
    }
