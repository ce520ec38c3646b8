"""The pure engine: interprets a WIO tree. No I/O, no asyncio, no clock of its own.

An :class:`Execution` is an immutable snapshot of one instance: the definition tree
rewritten as it runs (completed subtrees become ``Executed``). The runtime asks it what to
do next (:meth:`Execution.next_action` given the current instant,
:meth:`Execution.find_signal`), performs the I/O, and feeds the resulting event back with
:meth:`Execution.apply_event`. Replaying a journal is a fold of ``apply_event`` over its
events, so live runs and recovery share every line of the engine.

Every event is offered only to the current *frontier* (the steps awaiting now), never to a
future step; an event nothing on the frontier accepts is reported, not skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from workflows4py._errors import DefinitionError, UnexpectedEvent
from workflows4py.definition import (
    WIO,
    Checkpoint,
    HandleSignal,
    Ok,
    Recovery,
    Result,
    Retry,
    RunIO,
    SignalDef,
    StatefulRetry,
    Terminated,
    Timer,
    TimerReleased,
    TimerStarted,
    Workflow,
)

from . import _basic, _ops  # noqa: F401 - they register the node semantics
from ._core import (
    Ctx,
    Executed,
    Frame,
    Leaf,
    advance,
    apply,
    executed_nodes,
    frontier,
    progress,
    replay_run,
    slot_setter,
)
from ._progress import StepProgress

__all__ = [
    "Action",
    "Execution",
    "FreshSignal",
    "Record",
    "Redelivery",
    "RunEffect",
    "Status",
    "progress_at",
    "progress_of",
]

Status = Literal["awaiting", "finished", "failed", "terminated"]
Route = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RunEffect:
    """Run ``node.effect(input)``, then record ``wrap_event(its event)``.

    ``retry`` is the innermost retry around the step: the runtime consults it when the
    effect raises.
    """

    node: RunIO
    frame: Frame

    @property
    def input(self) -> Any:
        return self.frame.input

    @property
    def name(self) -> str:
        return self.node.display_name or "run_io"

    @property
    def retry(self) -> Retry | None:
        scope = self.frame.retry
        return scope.node if scope is not None and isinstance(scope.node, Retry) else None

    @property
    def retry_input(self) -> Any:
        return self.frame.retry.frame.input if self.frame.retry is not None else None

    def wrap_event(self, event: Any) -> Any:
        return self.frame.wrap_event(event)

    def wrap_retry_event(self, event: Any) -> Any:
        scope = self.frame.retry
        return scope.frame.wrap_event(event) if scope is not None else event


@dataclass(frozen=True, slots=True)
class Record:
    """Record ``event`` (computed by the engine: a timer, a checkpoint); no effect to run."""

    event: Any
    name: str


Action = RunEffect | Record


@dataclass(frozen=True, slots=True)
class FreshSignal:
    """A step awaiting the signal now: run ``node.handler(input, request)`` for the event."""

    node: HandleSignal
    frame: Frame

    @property
    def input(self) -> Any:
        return self.frame.input

    def wrap_event(self, event: Any) -> Any:
        return self.frame.wrap_event(event)

    def respond(self, event: Any, request: Any) -> Any:
        return self.node.respond(self.frame.input, event, request)


@dataclass(frozen=True, slots=True)
class Redelivery:
    """The signal was already handled: the response is recomputed from the stored event."""

    node: HandleSignal
    input: Any
    event: Any

    def respond(self, request: Any) -> Any:
        return self.node.respond(self.input, self.event, request)


def _route(route: str | Route | None) -> Route:
    if route is None:
        return ()
    return (route,) if isinstance(route, str) else tuple(route)


def _not_before(leaf: Leaf) -> datetime | None:
    scope = leaf.frame.retry
    if scope is not None and isinstance(scope.node, Retry):
        return scope.node.not_before
    return None


@dataclass(frozen=True, slots=True)
class Execution:
    """Immutable state of one workflow instance as the engine sees it.

    ``terminated`` is set once a :class:`Terminated` event is applied: from then on the
    frontier is empty (no effect, timer or signal step awaits) and the status is
    ``"terminated"``.
    """

    tree: Any
    initial_state: Any
    next_index: int
    events_applied: int
    terminated: Terminated | None = None
    # the frontier, computed once (an execution never changes; a step asks for it several
    # times: its next action, the step an event goes to, the next wakeup)
    _leaves: tuple[Leaf, ...] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def _root(self) -> Frame:
        return Frame.root(self.initial_state)

    @classmethod
    def replay(
        cls, definition: Any, initial_state: Any, events: Iterable[Any], *, instance_id: str = ""
    ) -> Execution:
        """The instance started from ``initial_state`` after ``events``, applied in order.

        Pure, as the runtimes' own replay: an event that no step awaiting accepts raises
        UnexpectedEvent, numbered from 1 (``instance_id`` names the instance in it).
        """
        events = events if isinstance(events, Sequence) else list(events)
        execution, taken = cls.start(definition, initial_state).apply_events(events)
        if taken < len(events):
            raise UnexpectedEvent(
                instance_id=instance_id,
                sequence=taken + 1,
                event_type=type(events[taken]).__qualname__,
                expected=", ".join(t.__qualname__ for t in execution.expected_events())
                or "nothing",
                steps=execution.awaiting_steps(),
            )
        return execution

    @classmethod
    def start(cls, definition: Any, initial_state: Any) -> Execution:
        """A new instance of ``definition``, advanced as far as it goes without events."""
        c = Ctx(0)
        tree = advance(definition, Frame.root(initial_state), c)
        return cls(
            tree=tree, initial_state=initial_state, next_index=c.next_index, events_applied=0
        )

    def apply_event(self, event: Any) -> Execution | None:
        """The execution after ``event``, or None if no step on the frontier accepts it.

        A :class:`Terminated` event is taken while the instance awaits (not once it has
        finished, failed or been terminated); after it, no event is.
        """
        if self.terminated is not None:
            return None
        if isinstance(event, Terminated):
            if isinstance(self.tree, Executed):
                return None
            return replace(self, terminated=event, events_applied=self.events_applied + 1)
        c = Ctx(self.next_index)
        root = self._root
        tree = apply(self.tree, root, event, c)
        if tree is None:
            return None
        tree = advance(tree, root, c)
        return _execution(tree, self.initial_state, c.next_index, self.events_applied + 1)

    def apply_events(self, events: Sequence[Any]) -> tuple[Execution, int]:
        """The execution after the longest prefix of ``events`` it accepts, applied in
        order, and that prefix's length: ``apply_event`` event after event, with the same
        result and the same errors, but without rebuilding the whole tree (nor an
        ``Execution``) for each event.

        A node whose events all go to one running child (a loop, a chain, a transform)
        hands the child the whole run of events and rebuilds itself once (see
        ``Semantics.replay``); a loop takes its iterations without a new loop node for each.
        The caller reports ``events[taken]``, if any, as unexpected; an error raised by the
        definition's own code propagates.
        """
        execution = self
        i, n = 0, len(events)
        while i < n:
            if execution.terminated is not None or isinstance(events[i], Terminated):
                nxt = execution.apply_event(events[i])
                if nxt is None:
                    break
                execution, i = nxt, i + 1
                continue
            end = i + 1  # a termination is the execution's own: the tree never sees it
            while end < n and not isinstance(events[end], Terminated):
                end += 1
            run = events if i == 0 and end == n else events[i:end]
            c = Ctx(execution.next_index)
            tree, taken = replay_run(execution.tree, execution._root, run, 0, c)
            if taken:
                execution = Execution(
                    tree, execution.initial_state, c.next_index, execution.events_applied + taken
                )
            i += taken
            if taken < len(run):
                break
        return execution, i

    def frontier(self) -> list[Leaf]:
        """The steps awaiting now, in definition order (none once terminated)."""
        return list(self._awaiting())

    def _awaiting(self) -> tuple[Leaf, ...]:
        leaves = self._leaves
        if leaves is None:
            leaves = () if self.terminated is not None else tuple(frontier(self.tree, self._root))
            object.__setattr__(self, "_leaves", leaves)
        return leaves

    def next_action(
        self, now: datetime, delayed: Mapping[tuple[Any, Route], datetime] | None = None
    ) -> Action | None:
        """What the runtime should do at ``now``: run an effect, record an event, or nothing.

        ``delayed`` holds the runtime's own not-before instants of effects, keyed by
        ``(step, route)`` (a stateless retry keeps its next attempt there, unpersisted).
        """
        for leaf in self._awaiting():
            node = leaf.node
            if isinstance(node, RunIO):
                not_before = _not_before(leaf)
                if delayed:
                    extra = delayed.get((node, leaf.frame.route))
                    if extra is not None and (not_before is None or extra > not_before):
                        not_before = extra
                if not_before is None or now >= not_before:
                    return _run_effect(node, leaf.frame)
            elif isinstance(node, Timer):
                if node.started_at is None:
                    resume_at = node.until(leaf.frame.input, now)
                    event = TimerStarted(node.timer_id, now, resume_at)
                    return Record(leaf.frame.wrap_event(event), node.timer_id)
                if node.resume_at is not None and now >= node.resume_at:
                    return Record(
                        leaf.frame.wrap_event(TimerReleased(node.timer_id, now)), node.timer_id
                    )
            elif isinstance(node, Checkpoint) and isinstance(node.base, Executed):
                out = node.base.result.value if isinstance(node.base.result, Ok) else None
                event = node.to_event(leaf.frame.input, out)
                return Record(leaf.frame.wrap_event(event), "checkpoint")
        return None

    def next_effect(self) -> RunEffect | None:
        """The first side effect waiting to run (ignoring retry delays), if any."""
        for leaf in self._awaiting():
            if isinstance(leaf.node, RunIO):
                return RunEffect(leaf.node, leaf.frame)
        return None

    def wakeup_at(self) -> datetime | None:
        """The earliest instant at which something is due: a timer, a delayed retry."""
        instants: list[datetime] = []
        for leaf in self._awaiting():
            if isinstance(leaf.node, Timer) and leaf.node.resume_at is not None:
                instants.append(leaf.node.resume_at)
            elif isinstance(leaf.node, RunIO) and (nb := _not_before(leaf)) is not None:
                instants.append(nb)
        return min(instants) if instants else None

    def find_signal(
        self, signal_id: str, route: str | Route | None = None
    ) -> FreshSignal | Redelivery | None:
        """Who handles a signal now: a waiting step first, else the latest step that handled it.

        ``route`` picks the for-each element (by key) a signal is meant for. Nothing handles
        a signal once the instance is terminated.
        """
        if self.terminated is not None:
            return None
        wanted = _route(route)
        for leaf in self._awaiting():
            node = leaf.node
            if (
                isinstance(node, HandleSignal)
                and node.signal.id == signal_id
                and leaf.frame.route == wanted
            ):
                return FreshSignal(node, leaf.frame)
        latest: tuple[Executed, HandleSignal] | None = None
        for ex, f in executed_nodes(self.tree, self._root):
            handler = ex.node
            if (
                isinstance(handler, HandleSignal)
                and handler.signal.id == signal_id
                and ex.event is not None
                and f.route == wanted
                and (latest is None or ex.index > latest[0].index)
            ):
                latest = (ex, handler)
        if latest is not None:
            ex, handler = latest
            return Redelivery(handler, ex.input, ex.event)
        return None

    def first_taker(self, event: Any, route: Route) -> Any:
        """The step on the frontier that replay would hand ``event`` (an unwrapped event of a
        step running under ``route``) to: the first effect or signal step accepting its class."""
        for leaf in self._awaiting():
            node = leaf.node
            if (
                isinstance(node, RunIO | HandleSignal)
                and leaf.frame.route == route
                and isinstance(event, node.event_types)
            ):
                return node
        return None

    def expected_signals(self) -> tuple[SignalDef[Any, Any], ...]:
        """Signals a step is waiting for now (deduplicated, in definition order)."""
        found: dict[str, SignalDef[Any, Any]] = {}
        for leaf in self._awaiting():
            if isinstance(leaf.node, HandleSignal):
                found.setdefault(leaf.node.signal.id, leaf.node.signal)
        return tuple(found.values())

    def signal_routes(self, signal_id: str) -> tuple[Route, ...]:
        """The routes (for-each keys) under which a step awaits ``signal_id`` now."""
        return tuple(
            leaf.frame.route
            for leaf in self._awaiting()
            if isinstance(leaf.node, HandleSignal) and leaf.node.signal.id == signal_id
        )

    def expected_events(self) -> tuple[type[Any], ...]:
        """Event classes (as the steps see them, before wrapping) the frontier would accept."""
        types: list[type[Any]] = []
        for leaf in self._awaiting():
            node = leaf.node
            if isinstance(node, RunIO | HandleSignal | Recovery):
                types.extend(node.event_types)
            elif isinstance(node, Timer):
                types.append(TimerReleased if node.started_at is not None else TimerStarted)
            scope = leaf.frame.retry
            if scope is not None and isinstance(getattr(scope.node, "policy", None), StatefulRetry):
                types.extend(scope.node.policy.event_types)  # type: ignore[attr-defined]
        return tuple(dict.fromkeys(types))

    def awaiting_steps(self) -> tuple[str, ...]:
        """Names of the steps awaiting now (for error messages)."""
        names: list[str] = []
        for leaf in self._awaiting():
            node = leaf.node
            name = node.display_name
            if name is None and isinstance(node, HandleSignal):
                name = f"Handle {node.signal.name}"
            names.append(name or f"<{node.kind}>")
        return tuple(dict.fromkeys(names))

    @property
    def status(self) -> Status:
        if self.terminated is not None:
            return "terminated"
        if isinstance(self.tree, Executed):
            return "finished" if isinstance(self.tree.result, Ok) else "failed"
        return "awaiting"

    @property
    def result(self) -> Result[Any, Any] | None:
        """The workflow's outcome once it has finished or failed."""
        return self.tree.result if isinstance(self.tree, Executed) else None

    @property
    def state(self) -> Any:
        """The current workflow state."""
        from ._core import state_of

        return state_of(self.tree, self._root)

    def progress(self) -> StepProgress:
        """What ran, with which result and in which order, what the instance waits on now
        and what is still ahead.

        Once terminated, the root carries the :class:`Terminated` event (``terminated``)
        and nothing is waited on.
        """
        root = progress(self.tree, self.terminated is None)
        if self.terminated is None:
            return root
        return replace(root, terminated=self.terminated)


def _definition(definition: WIO[Any, Any, Any] | type[Workflow[Any, Any]]) -> WIO[Any, Any, Any]:
    if isinstance(definition, type) and issubclass(definition, Workflow):
        return definition.definition
    if not isinstance(definition, WIO):
        raise DefinitionError(f"expected a definition or a Workflow subclass, got {definition!r}")
    return definition


def progress_of(definition: WIO[Any, Any, Any] | type[Workflow[Any, Any]]) -> StepProgress:
    """The progress model of a definition (or a Workflow subclass's) with nothing run:
    every node pending. Drafts have one too (their draft parts marked ``draft``)."""
    return progress(_definition(definition), False)


def progress_at(
    definition: WIO[Any, Any, Any] | type[Workflow[Any, Any]],
    initial_state: Any,
    events: Sequence[Any],
    count: int,
) -> StepProgress:
    """The progress of an instance started from ``initial_state`` as it was after the first
    ``count`` of its ``events`` (decoded, oldest first): a pure replay from the start.

    ValueError unless ``0 <= count <= len(events)``; UnexpectedEvent as
    :meth:`Execution.replay`.
    """
    if type(count) is not int or not 0 <= count <= len(events):
        raise ValueError(f"count must be between 0 and {len(events)}, got {count!r}")
    return Execution.replay(_definition(definition), initial_state, events[:count]).progress()


# Fast constructors of the two values the engine makes at every step (see slot_setter).
_new = object.__new__

_set_tree = slot_setter(Execution, "tree")
_set_initial_state = slot_setter(Execution, "initial_state")
_set_next_index = slot_setter(Execution, "next_index")
_set_events_applied = slot_setter(Execution, "events_applied")
_set_terminated = slot_setter(Execution, "terminated")
_set_leaves = slot_setter(Execution, "_leaves")
_set_node = slot_setter(RunEffect, "node")
_set_frame = slot_setter(RunEffect, "frame")


def _execution(tree: Any, initial_state: Any, next_index: int, events_applied: int) -> Execution:
    """``Execution(tree, initial_state, next_index, events_applied)``, made faster."""
    made: Execution = _new(Execution)
    _set_tree(made, tree)
    _set_initial_state(made, initial_state)
    _set_next_index(made, next_index)
    _set_events_applied(made, events_applied)
    _set_terminated(made, None)
    _set_leaves(made, None)
    return made


def _run_effect(node: RunIO, frame: Frame) -> RunEffect:
    """``RunEffect(node, frame)``, made faster."""
    made: RunEffect = _new(RunEffect)
    _set_node(made, node)
    _set_frame(made, frame)
    return made
