"""Workflow definitions: WIO, an immutable, typed tree of operations, and its traversal.

``WIO[In, Err, Out]`` is a step (or a composition of steps) that takes an input of type
``In`` and ends with an output ``Out`` (the new workflow state) or a domain error ``Err``.
Nothing in this module runs anything: the engine interprets the tree, the runtime does I/O.

The module holds every node type (the basic steps and compositions; timers, forks, loops,
parallel branches, for-each, interruptions, checkpoints, recovery, retries and embedded
workflows), the builders that make them, and the walks over a definition. They are one
module because each needs the others: ``WIO``'s builder methods make the control-flow
nodes, which are ``WIO`` subclasses, and building a checkpoint walks the tree. The fields
after ``# -- progress`` in a node are filled in by the engine as the node executes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import (
    Any,
    ClassVar,
    Generic,
    Literal,
    Never,
    Self,
    TypeVar,
    cast,
    overload,
)

from workflows4py._errors import DefinitionError

from ._introspect import error_names, event_types, is_async_callable, resolve_event_types
from ._naming import error_name, pretty_name
from ._result import Err, Ok, Result
from ._signals import SignalDef

__all__ = [
    "EMPTY_HISTORY",
    "KEPT_ITERATIONS",
    "NO_MATCH",
    "WIO",
    "Caught",
    "Chain",
    "Checkpoint",
    "Embedded",
    "End",
    "FlatMap",
    "ForEach",
    "ForEachBuilder",
    "Fork",
    "ForkBranch",
    "ForkBuilder",
    "FromHandler",
    "HandleErrorWith",
    "HandleSignal",
    "History",
    "Interruptible",
    "Loop",
    "LoopBuilder",
    "NameLabel",
    "Parallel",
    "ParallelBuilder",
    "Pure",
    "Recovery",
    "Retry",
    "RetryAgain",
    "RetryFailure",
    "RunIO",
    "RunIOBuilder",
    "SignalBuilder",
    "SignalEventBuilder",
    "SignalResponseBuilder",
    "StatefulRetry",
    "StatelessRetry",
    "Timer",
    "Transform",
    "check_distinct_events",
    "definition_children",
    "definition_nodes",
    "first_leaf",
    "make_checkpoint",
    "make_interruptible",
    "make_timer",
    "recorded_event_types",
    "walk_with_paths",
]

_I_contra = TypeVar("_I_contra", contravariant=True)
_E_co = TypeVar("_E_co", covariant=True)
_O_co = TypeVar("_O_co", covariant=True)

In = TypeVar("In")
In2 = TypeVar("In2")
Ev = TypeVar("Ev")
Out = TypeVar("Out")
Out2 = TypeVar("Out2")
Er = TypeVar("Er")
Er2 = TypeVar("Er2")
Req = TypeVar("Req")
Resp = TypeVar("Resp")
S = TypeVar("S")
R = TypeVar("R")
El = TypeVar("El")


class NameLabel:
    """Write-once holder of a name derived from the attribute a node is assigned to.

    Shared (by reference) between a node and its rewritten copies, so a name given by
    ``__set_name__`` after the node was already composed into a definition still shows.
    """

    __slots__ = ("auto",)

    def __init__(self) -> None:
        self.auto: str | None = None


@dataclass(frozen=True, slots=True)
class Caught(Generic[S, Er]):
    """Input of an error handler: the last state reached before the failure, and the error."""

    state: S
    error: Er


@dataclass(frozen=True, kw_only=True, eq=False)
class WIO(Generic[_I_contra, _E_co, _O_co]):
    """A workflow step or composition: input ``In``, domain error ``Err``, output ``Out``.

    Build nodes with the static constructors (:meth:`pure`, :meth:`run_io`,
    :meth:`handle_signal`, ...) and compose them with ``>>``, :meth:`flat_map`,
    :meth:`map` and :meth:`handle_error_with`.
    """

    _label: NameLabel = field(default_factory=NameLabel, repr=False)
    _nameable: ClassVar[bool] = False
    kind: ClassVar[str] = "wio"

    # -- naming -------------------------------------------------------------------------

    def __set_name__(self, owner: type, name: str) -> None:
        if name == "definition":  # the whole workflow, not a step of it
            return
        if self._nameable:
            if self._label.auto is None:
                self._label.auto = pretty_name(name)
            return
        # a wrapper (retry, checkpoint, map, interruption) passes the name to the step it wraps
        base = getattr(self, "base", None)
        if isinstance(base, WIO):
            base.__set_name__(owner, name)

    @property
    def display_name(self) -> str | None:
        """The explicit name, else the name derived from the attribute it is assigned to."""
        explicit: str | None = getattr(self, "name", None)
        return explicit if explicit is not None else self._label.auto

    def named(self, name: str) -> Self:
        """A copy of this step carrying ``name`` (shown in progress and diagrams)."""
        if not self._nameable:
            raise DefinitionError(f"a {self.kind} node has no name of its own; name its steps")
        if not isinstance(name, str) or not name.strip():
            raise DefinitionError(f"step name must be a non-empty string, got {name!r}")
        # a fresh label: the copy is another step, it must not share the original's auto name
        return replace(self, name=name, _label=NameLabel())  # type: ignore[call-arg]

    # -- composition ----------------------------------------------------------------------

    def __rshift__(self: WIO[In, Er, Out], other: WIO[Out, Er2, Out2]) -> WIO[In, Er | Er2, Out2]:
        """Run ``other`` after this step, feeding it this step's output."""
        if not isinstance(other, WIO):
            return NotImplemented
        # flat: a chain on either side is spliced in, so a long sequence is one node
        left = self.steps if isinstance(self, Chain) else (self,)
        right = other.steps if isinstance(other, Chain) else (other,)
        return Chain(steps=(*left, *right))

    def and_then(self: WIO[In, Er, Out], other: WIO[Out, Er2, Out2]) -> WIO[In, Er | Er2, Out2]:
        """Same as ``self >> other``."""
        return self >> other

    def flat_map(
        self: WIO[In, Er, Out], fn: Callable[[Out], WIO[Out, Er2, Out2]]
    ) -> WIO[In, Er | Er2, Out2]:
        """Choose the next step from this step's output (computed again on replay)."""
        return FlatMap(base=self, fn=fn)

    def map(self: WIO[In, Er, Out], fn: Callable[[Out], Out2]) -> WIO[In, Er, Out2]:
        """Transform this step's output."""
        return Transform(base=self, in_fn=None, out_fn=lambda _i, o: fn(o))

    def map_input(self: WIO[In, Er, Out], fn: Callable[[In2], In]) -> WIO[In2, Er, Out]:
        """Adapt this step to another input type."""
        return Transform(base=self, in_fn=fn, out_fn=None)

    def transform(
        self: WIO[In, Er, Out],
        input: Callable[[In2], In],
        output: Callable[[In2, Out], Out2],
    ) -> WIO[In2, Er, Out2]:
        """Adapt both sides: ``input`` maps the outer input in, ``output(outer_input, out)`` out."""
        return Transform(base=self, in_fn=input, out_fn=output)

    def handle_error_with(
        self: WIO[In, Er, Out], handler: WIO[Caught[Any, Er], Er2, Out2]
    ) -> WIO[In, Er2, Out | Out2]:
        """On a domain error, continue with ``handler`` given ``Caught(last_state, error)``."""
        if not isinstance(handler, WIO):
            raise DefinitionError(f"handle_error_with expects a WIO handler, got {handler!r}")
        return HandleErrorWith(base=self, handler=handler)

    def interrupt_with(
        self: WIO[In, Er, Out], flow: WIO[Any, Er2, Out2]
    ) -> WIO[In, Er | Er2, Out | Out2]:
        """Let ``flow`` interrupt this step while it runs.

        ``flow`` starts with a signal handler or a timer; when that fires, this step is
        discarded and ``flow`` continues from the last state this step reached. Once this
        step has completed, it can no longer be interrupted.
        """

        return make_interruptible(self, flow)

    def checkpointed(
        self: WIO[In, Er, Out],
        to_event: Callable[[In, Out], Ev],
        from_event: Callable[[In, Ev], Out2],
        *,
        event: type[Ev] | None = None,
    ) -> WIO[In, Er, Out | Out2]:
        """After this step succeeds, record ``to_event(input, output)``.

        On replay that event alone restores the output (``from_event``), which lets a
        later definition replace this step by :meth:`WIO.recover`.
        """

        return make_checkpoint(self, to_event, from_event, event)

    def retry(
        self: WIO[In, Er, Out], delay: timedelta | Callable[[Exception], timedelta | None]
    ) -> WIO[In, Er, Out]:
        """Retry technical failures (exceptions) of this step's effects after ``delay``.

        ``delay`` may depend on the exception; returning None re-raises it. Nothing is
        persisted between attempts; domain errors are never retried.
        """

        if isinstance(delay, timedelta):
            fixed = delay

            def pick(_e: Exception) -> timedelta | None:
                return fixed

            return Retry(base=self, policy=StatelessRetry(pick))
        if not callable(delay):
            raise DefinitionError(f"retry takes a timedelta or a function, got {delay!r}")
        return Retry(base=self, policy=StatelessRetry(delay))

    def retry_stateful(
        self: WIO[In, Er, Out],
        *,
        initial: R,
        on_error: Callable[[RetryFailure[In, R]], Ev | None],
        handle_event: Callable[[In, Ev, R], RetryAgain[R] | Result[Out2, Er2]],
        event: type[Ev] | None = None,
    ) -> WIO[In, Er | Er2, Out | Out2]:
        """Retry with a retry state persisted in events.

        When an effect raises, ``on_error`` (a plain function, not a coroutine) returns an
        event to record, or None to re-raise; its event class comes from its return
        annotation (``Failed | None`` gives ``Failed``) or ``event=``.
        ``handle_event(input, event, state)`` then says: retry later (:class:`RetryAgain`
        with the new state and the instant), give up with ``Err``, or recover with ``Ok``.
        """

        if not callable(on_error) or is_async_callable(on_error):
            raise DefinitionError(
                "retry_stateful: on_error must be a plain function (it runs while the failed "
                f"attempt is handled, and its event is recorded at once), got {on_error!r}"
            )
        types = event_types(on_error, event, step="retry_stateful")
        if not types:
            raise DefinitionError("retry_stateful: annotate on_error's return type or pass event=")
        check_distinct_events(types, self, "retry_stateful")
        policy = StatefulRetry(initial, on_error, handle_event, types)
        return Retry(base=self, policy=policy, state=initial)

    # -- constructors ---------------------------------------------------------------------

    @overload
    @staticmethod
    def timer(
        duration: timedelta | Callable[[Any], timedelta | datetime], /, *, name: str | None = None
    ) -> WIO[Any, Never, Any]: ...
    @overload
    @staticmethod
    def timer(
        duration: timedelta | Callable[[In], timedelta | datetime],
        /,
        *,
        input: type[In],
        name: str | None = None,
    ) -> WIO[In, Never, In]: ...
    @staticmethod
    def timer(
        duration: timedelta | Callable[[Any], timedelta | datetime],
        /,
        *,
        input: type[Any] | None = None,
        name: str | None = None,
    ) -> WIO[Any, Never, Any]:
        """Wait for ``duration``, or until the instant (or delay) computed from the input.

        The start and the release are recorded as events carrying their instants; the
        output is the input.
        """

        return make_timer(duration, name)

    @overload
    @staticmethod
    def fork(*, name: str | None = None) -> ForkBuilder[Any, Never, Never]: ...
    @overload
    @staticmethod
    def fork(input: type[In], /, *, name: str | None = None) -> ForkBuilder[In, Never, Never]: ...
    @staticmethod
    def fork(
        input: type[Any] | None = None, /, *, name: str | None = None
    ) -> ForkBuilder[Any, Never, Never]:
        """Choose one of several branches by a condition on the input."""

        return ForkBuilder(name)

    @staticmethod
    def choose(
        input: type[In],
        condition: Callable[[In], bool],
        if_true: WIO[In, Er, Out],
        if_false: WIO[In, Er2, Out2],
        /,
        *,
        name: str | None = None,
    ) -> WIO[In, Er | Er2, Out | Out2]:
        """A yes/no fork: branch "Yes" when ``condition(input)`` holds, else "No"."""

        start: ForkBuilder[In, Never, Never] = ForkBuilder(name)
        return start.when(condition, if_true, name="Yes").otherwise(if_false, name="No")

    @staticmethod
    def repeat(body: WIO[In, Er, Out], /) -> LoopBuilder[In, Er, Out]:
        """Repeat ``body``: finish with ``.until(...)`` or ``.until_some(...)``."""

        return LoopBuilder(body)

    @staticmethod
    def parallel(
        interim: Callable[[In], S],
        /,
        *,
        input: type[In] | None = None,
        name: str | None = None,
    ) -> ParallelBuilder[In, S, Never]:
        """Branches advancing independently; ``interim(input)`` seeds the state shown meanwhile."""

        return ParallelBuilder(interim, name)

    @staticmethod
    def for_each(
        elements: Callable[[In], Iterable[El]],
        body: WIO[El, Er, Out],
        /,
        *,
        key: Callable[[El], str] = str,
        input: type[In] | None = None,
        name: str | None = None,
    ) -> ForEachBuilder[In, El, Er, Out]:
        """Run ``body`` once per element of ``elements(input)``, each element its own
        sub-workflow (keyed by ``key(element)``, which routes signals to it)."""

        return ForEachBuilder(elements, body, key, name)

    @staticmethod
    def embed(
        inner: WIO[In2, Er, Out],
        /,
        *,
        input: Callable[[In], In2],
        output: Callable[[In, Out], Out2],
        wrap: Callable[[Any], Any],
        unwrap: Callable[[Any], Any],
        state: Callable[[In, Any], Any] | None = None,
        outer: type[In] | None = None,
        name: str | None = None,
    ) -> WIO[In, Er, Out2]:
        """Embed a workflow with its own state and events.

        ``wrap`` turns an inner event into an outer one and ``unwrap`` back (None if the
        outer event is not one of the inner workflow's); ``input``/``output`` convert the
        state in and out; ``state(outer_input, inner_state)`` is the outer state meanwhile.
        ``outer`` names the outer input type when ``input`` is a lambda.
        """

        if not isinstance(inner, WIO):
            raise DefinitionError(f"embed expects a WIO, got {inner!r}")
        return Embedded(
            inner=inner,
            wrap=wrap,
            unwrap=unwrap,
            input_fn=input,
            output_fn=output,
            state_fn=state,
            name=name,
        )

    @staticmethod
    def recover(
        from_event: Callable[[In, Ev], Out],
        /,
        *,
        event: type[Ev] | None = None,
        discards: tuple[type[Any], ...] = (),
    ) -> WIO[In, Never, Out]:
        """A step that never runs: it completes by consuming a checkpoint event on replay.

        Put it where a checkpointed step was removed from the definition. ``discards``
        lists the removed step's event types, consumed without effect before the
        checkpoint event (an explicit, not a silent, skip).
        """
        from ._introspect import resolve_event_types

        types = resolve_event_types(
            (event,) if event is not None else None, from_event, from_event, step="recover"
        )
        return Recovery(from_event=from_event, event_types=types, discards=tuple(discards))

    @overload
    @staticmethod
    def pure(fn: Callable[[In], Out], /) -> WIO[In, Never, Out]: ...
    @overload
    @staticmethod
    def pure(input: type[In], fn: Callable[[In], Out], /) -> WIO[In, Never, Out]: ...
    @staticmethod
    def pure(*args: Any) -> WIO[Any, Never, Any]:
        """A deterministic step computing its output from its input; records no event."""
        fn = _fn_arg("pure", args)
        return Pure(fn=lambda i: Ok(fn(i)), errors=())

    @overload
    @staticmethod
    def pure_with_error(fn: Callable[[In], Result[Out, Er]], /) -> WIO[In, Er, Out]: ...
    @overload
    @staticmethod
    def pure_with_error(
        input: type[In], fn: Callable[[In], Result[Out, Er]], /
    ) -> WIO[In, Er, Out]: ...
    @staticmethod
    def pure_with_error(*args: Any) -> WIO[Any, Any, Any]:
        """A deterministic step returning ``Ok(output)`` or ``Err(domain_error)``."""
        fn = _fn_arg("pure_with_error", args)
        return Pure(fn=_checked_result(fn, "pure_with_error"), errors=error_names(fn))

    @staticmethod
    def value(value: Out) -> WIO[object, Never, Out]:
        """A step whose output is ``value``."""
        return Pure(fn=lambda _i: Ok(value), errors=())

    @staticmethod
    def fail(error: Er) -> WIO[object, Er, Never]:
        """A step that fails with the domain error ``error``."""
        return Pure(fn=lambda _i: Err(error), errors=(error_name(type(error)),))

    # The plain-function overloads also accept "sync or async" (a union of both callables):
    # with a bare ``Callable[[In], Ev]`` pyright matches such a union with
    # ``Ev = X | Awaitable[X]`` before trying the union's members one by one.
    @overload
    @staticmethod
    def run_io(
        effect: Callable[[In], Awaitable[Ev]], /, *, event: type[Ev] | None = None
    ) -> RunIOBuilder[In, Ev]: ...
    @overload
    @staticmethod
    def run_io(
        effect: Callable[[In], Awaitable[Ev]] | Callable[[In], Ev],
        /,
        *,
        event: type[Ev] | None = None,
    ) -> RunIOBuilder[In, Ev]: ...
    @overload
    @staticmethod
    def run_io(
        input: type[In],
        effect: Callable[[In], Awaitable[Ev]],
        /,
        *,
        event: type[Ev] | None = None,
    ) -> RunIOBuilder[In, Ev]: ...
    @overload
    @staticmethod
    def run_io(
        input: type[In],
        effect: Callable[[In], Awaitable[Ev]] | Callable[[In], Ev],
        /,
        *,
        event: type[Ev] | None = None,
    ) -> RunIOBuilder[In, Ev]: ...
    @staticmethod
    def run_io(*args: Any, event: type[Any] | None = None) -> RunIOBuilder[Any, Any]:
        """A side effect (plain function or coroutine) whose result is recorded as an event.

        On replay the effect is not run again: the recorded event is used instead.
        """
        effect = _fn_arg("run_io", args)
        return RunIOBuilder(effect, event_types(effect, event, step="run_io"))

    @overload
    @staticmethod
    def handle_signal(signal: SignalDef[Req, Resp], /) -> SignalBuilder[FromHandler, Req, Resp]: ...
    @overload
    @staticmethod
    def handle_signal(
        signal: SignalDef[Req, Resp], /, *, input: type[In]
    ) -> SignalBuilder[In, Req, Resp]: ...
    @staticmethod
    def handle_signal(
        signal: SignalDef[Any, Any], /, *, input: type[Any] | None = None
    ) -> SignalBuilder[Any, Any, Any]:
        """Wait for ``signal``; its handler turns (input, request) into an event.

        Pass ``input=`` when the handler is a lambda; otherwise the input type is taken
        from the handler's annotation.
        """
        if not isinstance(signal, SignalDef):
            raise DefinitionError(f"handle_signal expects a SignalDef, got {signal!r}")
        return SignalBuilder(signal)

    @staticmethod
    def end() -> WIO[object, Never, Never]:
        """A step that never completes: the instance stays open (e.g. to keep answering queries)."""
        return End()

    @staticmethod
    def noop() -> WIO[object, Never, Never]:
        """Same as :meth:`end`."""
        return End()


def _fn_arg(builder: str, args: tuple[Any, ...]) -> Callable[..., Any]:
    if len(args) == 2:  # (input_type, fn): the type only guides the type checker
        args = args[1:]
    if len(args) != 1 or not callable(args[0]):
        raise DefinitionError(f"WIO.{builder} expects ([input_type,] function), got {args!r}")
    fn: Callable[..., Any] = args[0]
    return fn


def _checked_result(fn: Callable[..., Any], where: str) -> Callable[..., Result[Any, Any]]:
    def call(*args: Any) -> Result[Any, Any]:
        res = fn(*args)
        if not isinstance(res, Result):
            raise DefinitionError(
                f"{where}: {getattr(fn, '__qualname__', fn)!r} must return Ok(...) or Err(...), "
                f"got {type(res).__qualname__}"
            )
        return res

    return call


def _ok(fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Result[Any, Any]]:
    """An event handler (input, event) -> output made to return ``Ok(output)``."""
    return lambda i, e: Ok(fn(i, e))


# -- nodes ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, eq=False)
class Pure(WIO[Any, Any, Any]):
    """Deterministic computation from the input; no event, recomputed on replay."""

    fn: Callable[[Any], Result[Any, Any]]
    errors: tuple[str, ...]
    name: str | None = None
    _nameable: ClassVar[bool] = True
    kind: ClassVar[str] = "pure"


@dataclass(frozen=True, kw_only=True, eq=False)
class RunIO(WIO[Any, Any, Any]):
    """A side effect whose result is recorded as an event, then turned into the output."""

    effect: Callable[[Any], Any]
    is_async: bool
    event_types: tuple[type[Any], ...]
    handler: Callable[[Any, Any], Result[Any, Any]]
    errors: tuple[str, ...]
    name: str | None = None
    _nameable: ClassVar[bool] = True
    kind: ClassVar[str] = "run_io"


@dataclass(frozen=True, kw_only=True, eq=False)
class HandleSignal(WIO[Any, Any, Any]):
    """Waits for a signal; records the handler's event; answers with a response."""

    signal: SignalDef[Any, Any]
    handler: Callable[[Any, Any], Any]
    is_async: bool
    side_effects: bool
    event_types: tuple[type[Any], ...]
    event_handler: Callable[[Any, Any], Result[Any, Any]]
    respond: Callable[[Any, Any, Any], Any]
    errors: tuple[str, ...]
    name: str | None = None
    _nameable: ClassVar[bool] = True
    kind: ClassVar[str] = "signal"


class History(Sequence[Any]):
    """An immutable list appended to in O(1): the completed steps of a running chain.

    Each append shares the list it extends, so a chain of thousands of steps never copies
    what already ran. The first, last and next-to-last items are read in O(1).
    """

    __slots__ = ("_first", "_last", "_len", "_prev")

    def __init__(
        self, last: Any = None, prev: History | None = None, length: int = 0, first: Any = None
    ) -> None:
        self._last = last
        self._prev = prev
        self._len = length
        self._first = first

    def append(self, item: Any) -> History:
        """This history with ``item`` added at the end."""
        return History(item, self, self._len + 1, self._first if self._len else item)

    @property
    def first(self) -> Any:
        """The first item; IndexError when empty."""
        if not self._len:
            raise IndexError("empty history")
        return self._first

    @property
    def last(self) -> Any:
        """The last item; IndexError when empty."""
        if not self._len:
            raise IndexError("empty history")
        return self._last

    @property
    def before_last(self) -> History:
        """This history without its last item; IndexError when empty."""
        if self._prev is None:
            raise IndexError("empty history")
        return self._prev

    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return self._len > 0

    def __iter__(self) -> Iterator[Any]:
        items: list[Any] = []
        node: History | None = self
        while node is not None and node._len:
            items.append(node._last)
            node = node._prev
        items.reverse()
        return iter(items)

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if index == -1 and self._len:
            return self._last
        return list(self)[index]

    def __repr__(self) -> str:
        return f"History({list(self)!r})"


EMPTY_HISTORY = History()


@dataclass(frozen=True, kw_only=True, eq=False)
class Chain(WIO[Any, Any, Any]):
    """``a >> b >> c``: ``steps`` run one after another, each fed the previous one's output.

    Flat: ``>>`` splices chains on either side into one node, however the expression nests.
    While it runs, ``done`` holds the completed steps in order (the last one may have
    failed, which ends the chain) and ``current`` the running step ``steps[len(done)]``;
    both stay empty until the chain starts, and ``current`` is None again once it ended.
    """

    steps: tuple[WIO[Any, Any, Any], ...]
    # -- progress
    done: History = EMPTY_HISTORY
    current: WIO[Any, Any, Any] | None = None
    kind: ClassVar[str] = "sequence"


@dataclass(frozen=True, kw_only=True, eq=False)
class FlatMap(WIO[Any, Any, Any]):
    """``base`` then the step ``fn(output)``; ``next`` holds it once computed."""

    base: WIO[Any, Any, Any]
    fn: Callable[[Any], WIO[Any, Any, Any]]
    next: WIO[Any, Any, Any] | None = None
    kind: ClassVar[str] = "flat_map"


@dataclass(frozen=True, kw_only=True, eq=False)
class Transform(WIO[Any, Any, Any]):
    """Adapts the input going into ``base`` and/or the output coming out."""

    base: WIO[Any, Any, Any]
    in_fn: Callable[[Any], Any] | None
    out_fn: Callable[[Any, Any], Any] | None
    kind: ClassVar[str] = "transform"


@dataclass(frozen=True, kw_only=True, eq=False)
class HandleErrorWith(WIO[Any, Any, Any]):
    """Runs ``handler`` with ``Caught(last_state, error)`` when ``base`` fails."""

    base: WIO[Any, Any, Any]
    handler: WIO[Any, Any, Any]
    kind: ClassVar[str] = "handle_error"


@dataclass(frozen=True, kw_only=True, eq=False)
class End(WIO[Any, Any, Any]):
    """Never completes."""

    kind: ClassVar[str] = "end"


# -- builders -------------------------------------------------------------------------------


class RunIOBuilder(Generic[In, Ev]):
    """Second half of :meth:`WIO.run_io`: how the recorded event becomes the output."""

    __slots__ = ("_effect", "_events")

    def __init__(self, effect: Callable[[In], Any], events: tuple[type[Any], ...] | None) -> None:
        self._effect = effect
        self._events = events

    def handle_event(self, fn: Callable[[In, Ev], Out]) -> WIO[In, Never, Out]:
        """The event handler: (input, event) -> output."""
        return self._build(fn, _ok(fn), ())

    def handle_event_with_error(self, fn: Callable[[In, Ev], Result[Out, Er]]) -> WIO[In, Er, Out]:
        """The event handler: (input, event) -> ``Ok(output)`` or ``Err(domain_error)``."""
        return self._build(fn, _checked_result(fn, "handle_event_with_error"), error_names(fn))

    def _build(
        self,
        raw: Callable[..., Any],
        handler: Callable[[Any, Any], Result[Any, Any]],
        errors: tuple[str, ...],
    ) -> WIO[Any, Any, Any]:
        return RunIO(
            effect=self._effect,
            is_async=is_async_callable(self._effect),
            event_types=resolve_event_types(self._events, self._effect, raw, step="run_io"),
            handler=handler,
            errors=errors,
        )


class FromHandler:
    """The input type of a :class:`SignalBuilder` made without ``input=``: the handler's
    first parameter's annotation gives it."""

    __slots__ = ()


class SignalBuilder(Generic[In, Req, Resp]):
    """First step of :meth:`WIO.handle_signal`: how a request becomes an event.

    With ``input=`` the builder is a ``SignalBuilder[In, ...]`` and the handler takes an
    ``In``; without, it is a ``SignalBuilder[FromHandler, ...]`` and the handler's annotation
    gives the input type.
    """

    __slots__ = ("_signal",)

    def __init__(self, signal: SignalDef[Req, Resp]) -> None:
        self._signal = signal

    @overload
    def purely(
        self: SignalBuilder[FromHandler, Req, Resp],
        fn: Callable[[In2, Req], Ev],
        *,
        event: type[Ev] | None = None,
    ) -> SignalEventBuilder[In2, Req, Resp, Ev]: ...
    @overload
    def purely(
        self, fn: Callable[[In, Req], Ev], *, event: type[Ev] | None = None
    ) -> SignalEventBuilder[In, Req, Resp, Ev]: ...
    def purely(
        self, fn: Callable[[Any, Req], Any], *, event: type[Any] | None = None
    ) -> SignalEventBuilder[Any, Req, Resp, Any]:
        """Handle the request without side effects: (input, request) -> event."""
        if is_async_callable(fn):
            raise DefinitionError(
                f"signal {self._signal.id!r}: purely() takes a plain function; "
                "use with_side_effects() for a coroutine"
            )
        return self._next(fn, event, side_effects=False)

    @overload
    def with_side_effects(
        self: SignalBuilder[FromHandler, Req, Resp],
        fn: Callable[[In2, Req], Awaitable[Ev]],
        *,
        event: type[Ev] | None = None,
    ) -> SignalEventBuilder[In2, Req, Resp, Ev]: ...
    @overload
    def with_side_effects(
        self: SignalBuilder[FromHandler, Req, Resp],
        fn: Callable[[In2, Req], Awaitable[Ev]] | Callable[[In2, Req], Ev],
        *,
        event: type[Ev] | None = None,
    ) -> SignalEventBuilder[In2, Req, Resp, Ev]: ...
    @overload
    def with_side_effects(
        self, fn: Callable[[In, Req], Awaitable[Ev]], *, event: type[Ev] | None = None
    ) -> SignalEventBuilder[In, Req, Resp, Ev]: ...
    @overload
    def with_side_effects(
        self,
        fn: Callable[[In, Req], Awaitable[Ev]] | Callable[[In, Req], Ev],
        *,
        event: type[Ev] | None = None,
    ) -> SignalEventBuilder[In, Req, Resp, Ev]: ...
    def with_side_effects(
        self, fn: Callable[[Any, Req], Any], *, event: type[Any] | None = None
    ) -> SignalEventBuilder[Any, Req, Resp, Any]:
        """Handle the request with side effects (plain function or coroutine) -> event."""
        return self._next(fn, event, side_effects=True)

    def _next(
        self, fn: Callable[[Any, Req], Any], event: type[Any] | None, *, side_effects: bool
    ) -> SignalEventBuilder[Any, Req, Resp, Any]:
        step = f"signal {self._signal.id!r}"
        return SignalEventBuilder(
            self._signal, fn, event_types(fn, event, step=step), side_effects=side_effects
        )


class SignalEventBuilder(Generic[In, Req, Resp, Ev]):
    """Second step of :meth:`WIO.handle_signal`: how the event becomes the output."""

    __slots__ = ("_events", "_handler", "_side_effects", "_signal")

    def __init__(
        self,
        signal: SignalDef[Req, Resp],
        handler: Callable[[In, Req], Any],
        events: tuple[type[Any], ...] | None,
        *,
        side_effects: bool,
    ) -> None:
        self._signal = signal
        self._handler = handler
        self._events = events
        self._side_effects = side_effects

    def handle_event(
        self, fn: Callable[[In, Ev], Out]
    ) -> SignalResponseBuilder[In, Req, Resp, Ev, Never, Out]:
        """The event handler: (input, event) -> output."""
        return SignalResponseBuilder(self, fn, _ok(fn), ())

    def handle_event_with_error(
        self, fn: Callable[[In, Ev], Result[Out, Er]]
    ) -> SignalResponseBuilder[In, Req, Resp, Ev, Er, Out]:
        """The event handler: (input, event) -> ``Ok(output)`` or ``Err(domain_error)``."""
        return SignalResponseBuilder(
            self, fn, _checked_result(fn, "handle_event_with_error"), error_names(fn)
        )


class SignalResponseBuilder(Generic[In, Req, Resp, Ev, Er, Out]):
    """Last step of :meth:`WIO.handle_signal`: the response sent back to the caller."""

    __slots__ = ("_errors", "_event_handler", "_head", "_raw")

    def __init__(
        self,
        head: SignalEventBuilder[In, Req, Resp, Ev],
        raw: Callable[..., Any],
        event_handler: Callable[[Any, Any], Result[Any, Any]],
        errors: tuple[str, ...],
    ) -> None:
        self._head = head
        self._raw = raw
        self._event_handler = event_handler
        self._errors = errors

    def produce_response(self, fn: Callable[[In, Ev, Req], Resp]) -> WIO[In, Er, Out]:
        """The response: (input, event, request) -> response. Recomputed on redelivery."""
        return self._build(fn)

    def void_response(self: SignalResponseBuilder[In, Req, None, Ev, Er, Out]) -> WIO[In, Er, Out]:
        """Answer with ``None`` (for signals declared with ``response=None``)."""
        signal = self._head._signal
        if signal.response is not None:
            raise DefinitionError(
                f"signal {signal.id!r} declares response {signal.response.__qualname__}; "
                "use produce_response()"
            )
        return self._build(lambda _i, _e, _r: None)

    def _build(self, respond: Callable[[Any, Any, Any], Any]) -> WIO[Any, Any, Any]:
        head = self._head
        return HandleSignal(
            signal=head._signal,
            handler=head._handler,
            is_async=is_async_callable(head._handler),
            side_effects=head._side_effects,
            event_types=resolve_event_types(
                head._events, head._handler, self._raw, step=f"signal {head._signal.id!r}"
            ),
            event_handler=self._event_handler,
            respond=respond,
            errors=self._errors,
        )


# -- control flow and time ----------------------------------------------------------------------

E = TypeVar("E")
St = TypeVar("St")


class _NoMatch:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_MATCH"


NO_MATCH: Any = _NoMatch()
"""Returned by a fork branch's selector when the branch does not apply."""

UNSET: Any = object()

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
    chosen_input: Any = UNSET
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
    phase_input: Any = UNSET
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
    flow_input: Any = UNSET
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
    state: Any = UNSET
    not_before: datetime | None = None
    failed_attempts: int = 0  # the retry events taken
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

    clash = sorted(
        {t.__qualname__ for t in types for r in recorded_event_types(base) if issubclass(r, t)}
    )
    if clash:
        raise DefinitionError(
            f"{what}: its event class(es) {', '.join(clash)} are also recorded by the steps it "
            "wraps; give it a class of its own"
        )


# -- walking a definition ----------------------------------------------------------------------

Node = WIO[Any, Any, Any]


def definition_children(w: Node) -> Iterator[tuple[str, Node]]:
    """The direct children of a definition node, each with a label for paths.

    Labels: ``step[<n>]`` (sequence), ``base``, ``handler``, ``branch[<name>]``,
    ``body``, ``on_restart``, ``branch[<n>]`` (parallel), ``element``, ``inner``,
    ``interruption``. A ``flat_map``'s next step is only known at run time.
    """
    match w:
        case Chain(steps=steps):
            for i, step in enumerate(steps):
                yield f"step[{i}]", step
        case FlatMap(base=base) | Transform(base=base) | Checkpoint(base=base) | Retry(base=base):
            yield "base", base
        case HandleErrorWith(base=base, handler=handler):
            yield "base", base
            yield "handler", handler
        case Fork(branches=branches):
            for branch in branches:
                yield f"branch[{branch.name}]", branch.wio
        case Loop(body=body, on_restart=on_restart):
            yield "body", body
            if on_restart is not None:
                yield "on_restart", on_restart
        case Parallel(branches=parallel):
            for i, part in enumerate(parallel):
                yield f"branch[{i}]", part
        case ForEach(body=body):
            yield "element", body
        case Embedded(inner=inner):
            yield "inner", inner
        case Interruptible(base=base, flow=flow):
            yield "base", base
            yield "interruption", flow
        case _:
            extra = getattr(w, "draft_children", None)
            if callable(extra):  # a draft node: children that cannot run
                yield from cast("Iterator[tuple[str, Node]]", extra())


def definition_nodes(w: Node, *, into_subworkflows: bool = True) -> Iterator[Node]:
    """Every node of a definition reachable without running it, parents first.

    With ``into_subworkflows=False`` the walk stops at embedded workflows and for-each
    elements, whose events are wrapped into the parent's.
    """
    yield w
    if not into_subworkflows and isinstance(w, Embedded | ForEach):
        return
    for _, child in definition_children(w):
        yield from definition_nodes(child, into_subworkflows=into_subworkflows)


def recorded_event_types(w: Node) -> set[type[Any]]:
    """Event classes the steps of ``w`` (outside sub-workflows) can record."""

    found: set[type[Any]] = set()
    for node in definition_nodes(w, into_subworkflows=False):
        if isinstance(node, RunIO | HandleSignal | Recovery | Checkpoint):
            found.update(node.event_types)
        elif isinstance(node, Retry) and isinstance(node.policy, StatefulRetry):
            found.update(node.policy.event_types)
    return found


def walk_with_paths(
    w: Node, path: tuple[str, ...] = ("root",)
) -> Iterator[tuple[tuple[str, ...], Node]]:
    """Every node with its path from the root; named nodes contribute their name.

    A path reads ``root > Create PR > branch[Yes]``: sequences are transparent, named
    steps add their name, structural children add their label.
    """
    yield path, w
    for label, child in definition_children(w):
        child_path = path if label.startswith("step[") else (*path, label)
        name = child.display_name
        if name is not None:
            child_path = (*child_path, name)
        yield from walk_with_paths(child, child_path)
