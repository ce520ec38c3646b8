"""Control-flow and time nodes: timers, forks, loops, parallel branches, for-each,
interruptions, checkpoints, recovery, retries and embedded workflows.

Like :mod:`._wio`, nothing here runs anything; the fields after ``# -- progress`` in a node
are filled in by the engine as the node executes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Generic, Literal, Never, TypeVar, overload

from ._errors import DefinitionError
from ._introspect import event_types
from ._result import Result
from ._wio import WIO, Chain, HandleSignal

__all__ = [
    "KEPT_ITERATIONS",
    "NO_MATCH",
    "Checkpoint",
    "Embedded",
    "ForEach",
    "ForEachBuilder",
    "Fork",
    "ForkBranch",
    "ForkBuilder",
    "Interruptible",
    "Loop",
    "LoopBuilder",
    "Parallel",
    "ParallelBuilder",
    "Recovery",
    "Retry",
    "RetryAgain",
    "RetryFailure",
    "StatefulRetry",
    "StatelessRetry",
    "Timer",
    "first_leaf",
]

In = TypeVar("In")
In2 = TypeVar("In2")
Out = TypeVar("Out")
Out2 = TypeVar("Out2")
Er = TypeVar("Er")
Er2 = TypeVar("Er2")
Ev = TypeVar("Ev")
E = TypeVar("E")
R = TypeVar("R")
St = TypeVar("St")


class _NoMatch:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_MATCH"


NO_MATCH: Any = _NoMatch()
"""Returned by a fork branch's selector when the branch does not apply."""

_UNSET: Any = object()

KEPT_ITERATIONS = 10
"""How many finished iterations a loop keeps (for progress and diagrams); older ones are
only counted, so a loop's memory and snapshot do not grow with the iterations it ran."""

# -- time -------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, eq=False)
class Timer(WIO[Any, Never, Any]):
    """Waits until an instant computed when the timer starts; output = input."""

    until: Callable[[Any, datetime], datetime]
    static: timedelta | None
    name: str | None = None
    # -- progress
    started_at: datetime | None = None
    resume_at: datetime | None = None
    _nameable: ClassVar[bool] = True
    kind: ClassVar[str] = "timer"

    @property
    def timer_id(self) -> str:
        return self.display_name or "timer"


# -- choices and repetition -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ForkBranch:
    """A branch of a fork: ``select(input)`` gives the branch's input, or NO_MATCH."""

    name: str
    select: Callable[[Any], Any]
    wio: WIO[Any, Any, Any]


@dataclass(frozen=True, kw_only=True, eq=False)
class Fork(WIO[Any, Any, Any]):
    """Runs the first branch whose selector matches the input (recomputed on replay)."""

    branches: tuple[ForkBranch, ...]
    name: str | None = None
    # -- progress
    chosen: int | None = None
    chosen_input: Any = _UNSET
    current: WIO[Any, Any, Any] | None = None
    _nameable: ClassVar[bool] = True
    kind: ClassVar[str] = "fork"


@dataclass(frozen=True, kw_only=True, eq=False)
class Loop(WIO[Any, Any, Any]):
    """Repeats ``body`` until ``stop`` says done, optionally running ``on_restart`` between."""

    body: WIO[Any, Any, Any]
    stop: Callable[[Any], tuple[bool, Any]]
    on_restart: WIO[Any, Any, Any] | None
    name: str | None = None
    release_name: str = "Yes"
    restart_name: str = "No"
    keep: int = KEPT_ITERATIONS
    # -- progress: ``finished`` runs of the body or on_restart ended before ``current``;
    # ``history`` holds the last of them (``keep`` iterations: twice as many runs with
    # on_restart, whose runs alternate with the body's)
    finished: int = 0
    history: tuple[WIO[Any, Any, Any], ...] = ()
    current: WIO[Any, Any, Any] | None = None
    phase: Literal["body", "restart"] = "body"
    phase_input: Any = _UNSET
    _nameable: ClassVar[bool] = True
    kind: ClassVar[str] = "loop"


@dataclass(frozen=True, kw_only=True, eq=False)
class Parallel(WIO[Any, Any, Any]):
    """Branches that advance independently; output when all are done."""

    branches: tuple[WIO[Any, Any, Any], ...]
    incorporate: tuple[Callable[[Any, Any], Any], ...]
    interim: Callable[[Any], Any]
    output: Callable[[Any, list[Any]], Any]
    name: str | None = None
    _nameable: ClassVar[bool] = True
    kind: ClassVar[str] = "parallel"


@dataclass(frozen=True, kw_only=True, eq=False)
class ForEach(WIO[Any, Any, Any]):
    """One sub-workflow per element; its events are wrapped into the parent's events."""

    elements: Callable[[Any], Iterable[Any]]
    key: Callable[[Any], str]
    body: WIO[Any, Any, Any]
    wrap: Callable[[str, Any], Any]
    unwrap: Callable[[Any], tuple[str, Any] | None]
    interim: Callable[[Any, dict[str, Any]], Any]
    output: Callable[[Any, dict[str, Any]], Any]
    name: str | None = None
    # -- progress
    running: tuple[tuple[str, Any, WIO[Any, Any, Any]], ...] | None = None
    _nameable: ClassVar[bool] = True
    kind: ClassVar[str] = "for_each"


@dataclass(frozen=True, kw_only=True, eq=False)
class Embedded(WIO[Any, Any, Any]):
    """A workflow with its own state and event types inside another one."""

    inner: WIO[Any, Any, Any]
    wrap: Callable[[Any], Any]
    unwrap: Callable[[Any], Any]
    input_fn: Callable[[Any], Any]
    output_fn: Callable[[Any, Any], Any]
    state_fn: Callable[[Any, Any], Any] | None
    name: str | None = None
    _nameable: ClassVar[bool] = True
    kind: ClassVar[str] = "embedded"


# -- interruption, checkpoints, recovery ------------------------------------------------------


@dataclass(frozen=True, kw_only=True, eq=False)
class Interruptible(WIO[Any, Any, Any]):
    """``base``, unless ``flow``'s first step (a signal or a timer) fires first.

    ``flow`` gets the last state ``base`` reached; once it fires, ``base`` is discarded.
    """

    base: WIO[Any, Any, Any]
    flow: WIO[Any, Any, Any]
    # -- progress
    interrupted: bool = False
    flow_input: Any = _UNSET
    kind: ClassVar[str] = "interruptible"


@dataclass(frozen=True, kw_only=True, eq=False)
class Checkpoint(WIO[Any, Any, Any]):
    """After ``base`` succeeds, records an event that alone restores its output on replay."""

    base: WIO[Any, Any, Any]
    to_event: Callable[[Any, Any], Any]
    from_event: Callable[[Any, Any], Any]
    event_types: tuple[type[Any], ...]
    kind: ClassVar[str] = "checkpoint"


@dataclass(frozen=True, kw_only=True, eq=False)
class Recovery(WIO[Any, Any, Any]):
    """Never runs: completes only by consuming a checkpoint event from the journal."""

    from_event: Callable[[Any, Any], Any]
    event_types: tuple[type[Any], ...]
    discards: tuple[type[Any], ...] = ()
    name: str | None = None
    _nameable: ClassVar[bool] = True
    kind: ClassVar[str] = "recovery"


# -- retries ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryFailure(Generic[In, R]):
    """What a stateful retry policy sees when an attempt raised."""

    input: In
    error: Exception
    state: R
    now: datetime


@dataclass(frozen=True, slots=True)
class RetryAgain(Generic[R]):
    """Keep retrying with retry state ``state``, not before ``at``."""

    state: R
    at: datetime


@dataclass(frozen=True, slots=True)
class StatelessRetry:
    """Next attempt after ``delay(error)``; None rethrows. Nothing is persisted."""

    delay: Callable[[Exception], timedelta | None]


@dataclass(frozen=True, slots=True)
class StatefulRetry:
    """Failures become events (``on_error``) that move a persisted retry state."""

    initial: Any
    on_error: Callable[[RetryFailure[Any, Any]], Any]
    handle_event: Callable[[Any, Any, Any], RetryAgain[Any] | Result[Any, Any]]
    event_types: tuple[type[Any], ...]


@dataclass(frozen=True, kw_only=True, eq=False)
class Retry(WIO[Any, Any, Any]):
    """Retries technical failures (exceptions) of the effects inside ``base``."""

    base: WIO[Any, Any, Any]
    policy: StatelessRetry | StatefulRetry
    # -- progress (stateful only)
    state: Any = _UNSET
    not_before: datetime | None = None
    kind: ClassVar[str] = "retry"


def first_leaf(w: WIO[Any, Any, Any]) -> WIO[Any, Any, Any]:
    """The first step of a sequence (what an interruption flow is triggered by), as it
    stands: completed, running or not started."""
    while isinstance(w, Chain):
        if w.done:
            w = w.done.first
        elif w.current is not None:
            w = w.current
        else:
            w = w.steps[0]
    return w


# -- builders ---------------------------------------------------------------------------------


class ForkBuilder(Generic[In, Er, Out]):
    """Collects the branches of :meth:`WIO.fork`; the first matching branch runs."""

    __slots__ = ("_branches", "_name")

    def __init__(self, name: str | None, branches: tuple[ForkBranch, ...] = ()) -> None:
        self._name = name
        self._branches = branches

    def when(
        self, condition: Callable[[In], bool], then: WIO[In, Er2, Out2], *, name: str
    ) -> ForkBuilder[In, Er | Er2, Out | Out2]:
        """A branch taken when ``condition(input)`` holds; it gets the same input."""
        return self._add(name, lambda i: i if condition(i) else NO_MATCH, then)

    def when_some(
        self, select: Callable[[In], In2 | None], then: WIO[In2, Er2, Out2], *, name: str
    ) -> ForkBuilder[In, Er | Er2, Out | Out2]:
        """A branch taken when ``select(input)`` is not None; it gets that value as input."""

        def pick(i: Any) -> Any:
            value = select(i)
            return NO_MATCH if value is None else value

        return self._add(name, pick, then)

    def otherwise(
        self, then: WIO[In, Er2, Out2], *, name: str = "Otherwise"
    ) -> WIO[In, Er | Er2, Out | Out2]:
        """The last branch, taken when no other matched; completes the fork."""
        return self._add(name, lambda i: i, then).done()

    def done(self) -> WIO[In, Er, Out]:
        """The fork. If no branch matches at run time, the engine raises ExecutionError."""
        if not self._branches:
            raise DefinitionError("a fork needs at least one branch")
        return Fork(branches=self._branches, name=self._name)

    def _add(
        self, name: str, select: Callable[[Any], Any], then: WIO[Any, Any, Any]
    ) -> ForkBuilder[Any, Any, Any]:
        if not isinstance(then, WIO):
            raise DefinitionError(f"fork branch {name!r} must be a WIO, got {then!r}")
        if any(b.name == name for b in self._branches):
            raise DefinitionError(f"fork {self._name!r} has two branches named {name!r}")
        return ForkBuilder(self._name, (*self._branches, ForkBranch(name, select, then)))


class LoopBuilder(Generic[In, Er, Out]):
    """Second half of :meth:`WIO.repeat`: when to stop, and what to do before repeating."""

    __slots__ = ("_body",)

    def __init__(self, body: WIO[In, Er, Out]) -> None:
        self._body = body

    @overload
    def until(
        self: LoopBuilder[In, Er, In],
        condition: Callable[[In], bool],
        *,
        on_restart: None = None,
        name: str | None = None,
        release: str = "Yes",
        restart: str = "No",
    ) -> WIO[In, Er, In]: ...
    @overload
    def until(
        self,
        condition: Callable[[Out], bool],
        *,
        on_restart: WIO[Out, Er2, In],
        name: str | None = None,
        release: str = "Yes",
        restart: str = "No",
    ) -> WIO[In, Er | Er2, Out]: ...
    def until(
        self,
        condition: Callable[[Any], bool],
        *,
        on_restart: WIO[Any, Any, Any] | None = None,
        name: str | None = None,
        release: str = "Yes",
        restart: str = "No",
    ) -> WIO[Any, Any, Any]:
        """Stop when ``condition(output)`` holds; else run ``on_restart`` (if any), then repeat.

        ``name`` names the condition (e.g. "All checks completed?"); ``release`` and
        ``restart`` name its two outcomes in progress and diagrams.
        """
        return self._build(lambda o: (bool(condition(o)), o), on_restart, name, release, restart)

    @overload
    def until_some(
        self: LoopBuilder[In, Er, In],
        select: Callable[[In], Out2 | None],
        *,
        on_restart: None = None,
        name: str | None = None,
        release: str = "Yes",
        restart: str = "No",
    ) -> WIO[In, Er, Out2]: ...
    @overload
    def until_some(
        self,
        select: Callable[[Out], Out2 | None],
        *,
        on_restart: WIO[Out, Er2, In],
        name: str | None = None,
        release: str = "Yes",
        restart: str = "No",
    ) -> WIO[In, Er | Er2, Out2]: ...
    def until_some(
        self,
        select: Callable[[Any], Any],
        *,
        on_restart: WIO[Any, Any, Any] | None = None,
        name: str | None = None,
        release: str = "Yes",
        restart: str = "No",
    ) -> WIO[Any, Any, Any]:
        """Stop when ``select(output)`` is not None; the loop's output is that value."""

        def stop(o: Any) -> tuple[bool, Any]:
            value = select(o)
            return (False, o) if value is None else (True, value)

        return self._build(stop, on_restart, name, release, restart)

    def _build(
        self,
        stop: Callable[[Any], tuple[bool, Any]],
        on_restart: WIO[Any, Any, Any] | None,
        name: str | None,
        release: str,
        restart: str,
    ) -> WIO[Any, Any, Any]:
        if on_restart is not None and not isinstance(on_restart, WIO):
            raise DefinitionError(f"on_restart must be a WIO, got {on_restart!r}")
        return Loop(
            body=self._body,
            stop=stop,
            on_restart=on_restart,
            name=name,
            release_name=release,
            restart_name=restart,
            keep=KEPT_ITERATIONS,
        )


class ParallelBuilder(Generic[In, St, Er]):
    """Collects the branches of :meth:`WIO.parallel`."""

    __slots__ = ("_branches", "_incorporate", "_interim", "_name")

    def __init__(
        self,
        interim: Callable[[In], St],
        name: str | None,
        branches: tuple[WIO[Any, Any, Any], ...] = (),
        incorporate: tuple[Callable[[Any, Any], Any], ...] = (),
    ) -> None:
        self._interim = interim
        self._name = name
        self._branches = branches
        self._incorporate = incorporate

    def branch(
        self, wio: WIO[In, Er2, Out2], *, incorporate: Callable[[St, Any], St]
    ) -> ParallelBuilder[In, St, Er | Er2]:
        """Add a branch; ``incorporate(interim, branch_state)`` folds its progress in."""
        if not isinstance(wio, WIO):
            raise DefinitionError(f"parallel branch must be a WIO, got {wio!r}")
        return ParallelBuilder(
            self._interim, self._name, (*self._branches, wio), (*self._incorporate, incorporate)
        )

    def output(self, build: Callable[[In, list[Any]], Out]) -> WIO[In, Er, Out]:
        """The node's output once every branch is done, from the input and their outputs."""
        if len(self._branches) < 2:
            raise DefinitionError("a parallel node needs at least two branches")
        return Parallel(
            branches=self._branches,
            incorporate=self._incorporate,
            interim=self._interim,
            output=build,
            name=self._name,
        )


class ForEachBuilder(Generic[In, E, Er, Out]):
    """Second half of :meth:`WIO.for_each`: how inner events are wrapped and results combined."""

    __slots__ = ("_body", "_elements", "_key", "_name")

    def __init__(
        self,
        elements: Callable[[In], Iterable[E]],
        body: WIO[E, Er, Out],
        key: Callable[[E], str],
        name: str | None,
    ) -> None:
        self._elements = elements
        self._body = body
        self._key = key
        self._name = name

    def build(
        self,
        *,
        wrap: Callable[[str, Any], Any],
        unwrap: Callable[[Any], tuple[str, Any] | None],
        interim: Callable[[In, dict[str, Any]], Any],
        output: Callable[[In, dict[str, Out]], Out2],
    ) -> WIO[In, Er, Out2]:
        """``wrap(key, inner_event)`` makes a parent event, ``unwrap`` reverses it (None if
        not one of ours); ``interim`` is the state while elements run; ``output`` the result."""
        return ForEach(
            elements=self._elements,
            key=self._key,
            body=self._body,
            wrap=wrap,
            unwrap=unwrap,
            interim=interim,
            output=output,
            name=self._name,
        )


def make_timer(
    duration: timedelta | Callable[[Any], timedelta | datetime], name: str | None
) -> Timer:
    if isinstance(duration, timedelta):
        if duration < timedelta(0):
            raise DefinitionError(f"timer duration must not be negative, got {duration}")
        static = duration
        return Timer(until=lambda _i, now: now + static, static=static, name=name)
    if not callable(duration):
        raise DefinitionError(f"timer takes a timedelta or a function, got {duration!r}")

    def until(i: Any, now: datetime) -> datetime:
        value = duration(i)
        if isinstance(value, timedelta):
            return now + value
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise DefinitionError(f"timer {name!r}: instants must be timezone-aware")
            return value
        raise DefinitionError(f"timer {name!r}: expected timedelta or datetime, got {value!r}")

    return Timer(until=until, static=None, name=name)


def make_interruptible(base: WIO[Any, Any, Any], flow: WIO[Any, Any, Any]) -> Interruptible:
    trigger = first_leaf(flow)
    if not isinstance(trigger, HandleSignal | Timer):
        raise DefinitionError(
            "an interruption must start with a signal handler or a timer, "
            f"not a {trigger.kind} step"
        )
    return Interruptible(base=base, flow=flow)


def make_checkpoint(
    base: WIO[Any, Any, Any],
    to_event: Callable[[Any, Any], Any],
    from_event: Callable[[Any, Any], Any],
    event: type[Any] | None,
) -> Checkpoint:
    types = event_types(to_event, event, step="checkpoint")
    if not types:
        raise DefinitionError("checkpoint: annotate to_event's return type or pass event=")
    check_distinct_events(types, base, "checkpoint")
    return Checkpoint(base=base, to_event=to_event, from_event=from_event, event_types=types)


def check_distinct_events(
    types: tuple[type[Any], ...], base: WIO[Any, Any, Any], what: str
) -> None:
    """A checkpoint's or stateful retry's events are offered before the base's, so the base
    must not record the same classes (its own events would be taken away from it)."""
    from ._walk import recorded_event_types

    clash = sorted(
        {t.__qualname__ for t in types for r in recorded_event_types(base) if issubclass(r, t)}
    )
    if clash:
        raise DefinitionError(
            f"{what}: its event class(es) {', '.join(clash)} are also recorded by the steps it "
            "wraps; give it a class of its own"
        )
