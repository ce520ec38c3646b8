"""The pure engine: interprets a WIO tree. No I/O, no asyncio, no clock.

An :class:`Execution` is an immutable snapshot of one instance: the definition tree
rewritten as it runs (completed subtrees become :class:`Executed`). The runtime asks it
what to do next (:meth:`Execution.next_effect`, :meth:`Execution.find_signal`), performs
the I/O, and feeds the resulting event back with :meth:`Execution.apply_event`. Replaying a
journal is a fold of ``apply_event`` over its events, so live runs and recovery share every
line of this module.

Every event is offered only to the current *frontier* (the steps awaiting now), never to a
future step; an event nothing on the frontier accepts is reported, not skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

from ._errors import DefinitionError
from ._progress import StepProgress
from ._result import Err, Ok, Result
from ._signals import SignalDef
from ._wio import (
    WIO,
    AndThen,
    Caught,
    End,
    FlatMap,
    HandleErrorWith,
    HandleSignal,
    Pure,
    RunIO,
    Transform,
)

__all__ = [
    "Executed",
    "Execution",
    "FreshSignal",
    "Redelivery",
    "RunEffect",
    "Status",
]

Status = Literal["awaiting", "finished", "failed"]


@dataclass(frozen=True, kw_only=True, eq=False)
class Executed(WIO[Any, Any, Any]):
    """A completed subtree: the node as it completed, its result, input, order and event."""

    node: WIO[Any, Any, Any]
    result: Result[Any, Any]
    input: Any
    index: int
    event: Any = None
    kind: ClassVar[str] = "executed"


@dataclass(frozen=True, slots=True)
class RunEffect:
    """The runtime should run ``node.effect(input)`` and feed back the event it returns."""

    node: RunIO
    input: Any

    @property
    def name(self) -> str:
        return self.node.display_name or "run_io"


@dataclass(frozen=True, slots=True)
class FreshSignal:
    """A step awaiting the signal now: run ``node.handler(input, request)`` for the event."""

    node: HandleSignal
    input: Any

    def respond(self, event: Any, request: Any) -> Any:
        return self.node.respond(self.input, event, request)


@dataclass(frozen=True, slots=True)
class Redelivery:
    """The signal was already handled: the response is recomputed from the stored event."""

    node: HandleSignal
    input: Any
    event: Any

    def respond(self, request: Any) -> Any:
        return self.node.respond(self.input, self.event, request)


class _Counter:
    __slots__ = ("next",)

    def __init__(self, start: int) -> None:
        self.next = start

    def done(
        self, node: WIO[Any, Any, Any], result: Result[Any, Any], inp: Any, event: Any = None
    ) -> Executed:
        index = self.next
        self.next += 1
        return Executed(node=node, result=result, input=inp, index=index, event=event)


def _call_result(fn: Callable[..., Result[Any, Any]], *args: Any) -> Result[Any, Any]:
    return fn(*args)


# -- effectless progress ----------------------------------------------------------------------


def _advance(w: WIO[Any, Any, Any], inp: Any, state: Any, c: _Counter) -> WIO[Any, Any, Any]:
    """Make every step that needs no event: pure steps, completions, transitions."""
    match w:
        case Executed() | End() | RunIO() | HandleSignal():
            return w
        case Pure():
            return c.done(w, _call_result(w.fn, inp), inp)
        case AndThen(first=first, second=second):
            f = _advance(first, inp, state, c)
            if not isinstance(f, Executed):
                return w if f is first else replace(w, first=f)
            if not isinstance(f.result, Ok):
                return c.done(replace(w, first=f), f.result, inp)
            out = f.result.value
            s = _advance(second, out, out, c)
            seq = replace(w, first=f, second=s)
            return c.done(seq, s.result, inp) if isinstance(s, Executed) else seq
        case FlatMap(base=base, fn=fn, next=nxt):
            b = _advance(base, inp, state, c)
            if not isinstance(b, Executed):
                return w if b is base else replace(w, base=b)
            if not isinstance(b.result, Ok):
                return c.done(replace(w, base=b), b.result, inp)
            out = b.result.value
            if nxt is None:
                nxt = fn(out)
                if not isinstance(nxt, WIO):
                    raise DefinitionError(f"flat_map function returned {nxt!r}, not a WIO")
            n = _advance(nxt, out, out, c)
            dyn = replace(w, base=b, next=n)
            return c.done(dyn, n.result, inp) if isinstance(n, Executed) else dyn
        case Transform(base=base):
            b = _advance(base, _inner_input(w, inp), state, c)
            if not isinstance(b, Executed):
                return w if b is base else replace(w, base=b)
            result = b.result
            if isinstance(result, Ok) and w.out_fn is not None:
                result = Ok(w.out_fn(inp, result.value))
            return c.done(replace(w, base=b), result, inp)
        case HandleErrorWith(base=base, handler=handler):
            b = _advance(base, inp, state, c)
            if not isinstance(b, Executed):
                return w if b is base else replace(w, base=b)
            if isinstance(b.result, Ok):
                return c.done(replace(w, base=b), b.result, inp)
            caught = _caught(b, state)
            h = _advance(handler, caught, caught.state, c)
            handled = replace(w, base=b, handler=h)
            return c.done(handled, h.result, inp) if isinstance(h, Executed) else handled
    raise DefinitionError(f"unsupported node {type(w).__name__}")  # pragma: no cover


def _inner_input(w: Transform, inp: Any) -> Any:
    return w.in_fn(inp) if w.in_fn is not None else inp


def _caught(failed: Executed, state_before: Any) -> Caught[Any, Any]:
    assert isinstance(failed.result, Err)
    return Caught(last_state(failed, state_before), failed.result.error)


def last_state(w: WIO[Any, Any, Any], default: Any) -> Any:
    """The output of the most recently completed successful step within ``w``."""
    best_index = -1
    best = default
    for ex in _executed_nodes(w):
        if ex.index > best_index and isinstance(ex.result, Ok):
            best_index, best = ex.index, ex.result.value
    return best


def _children(w: WIO[Any, Any, Any]) -> Iterator[WIO[Any, Any, Any]]:
    match w:
        case Executed(node=node):
            yield node
        case AndThen(first=first, second=second):
            yield first
            yield second
        case FlatMap(base=base, next=nxt):
            yield base
            if nxt is not None:
                yield nxt
        case Transform(base=base):
            yield base
        case HandleErrorWith(base=base, handler=handler):
            yield base
            yield handler


def _executed_nodes(w: WIO[Any, Any, Any]) -> Iterator[Executed]:
    if isinstance(w, Executed):
        yield w
    for child in _children(w):
        yield from _executed_nodes(child)


# -- events -------------------------------------------------------------------------------------


def _apply(
    w: WIO[Any, Any, Any], inp: Any, state: Any, evt: Any, c: _Counter
) -> WIO[Any, Any, Any] | None:
    """Offer ``evt`` to the frontier of ``w``; the rewritten tree, or None if not accepted."""
    match w:
        case RunIO() | HandleSignal():
            if isinstance(evt, w.event_types):
                handler = w.handler if isinstance(w, RunIO) else w.event_handler
                return c.done(w, _call_result(handler, inp, evt), inp, evt)
            return None
        case AndThen(first=first, second=second):
            if not isinstance(first, Executed):
                f = _apply(first, inp, state, evt, c)
                return None if f is None else replace(w, first=f)
            if isinstance(first.result, Ok):
                out = first.result.value
                s = _apply(second, out, out, evt, c)
                return None if s is None else replace(w, second=s)
            return None
        case FlatMap(base=base, next=nxt):
            if not isinstance(base, Executed):
                b = _apply(base, inp, state, evt, c)
                return None if b is None else replace(w, base=b)
            if nxt is not None and isinstance(base.result, Ok):
                out = base.result.value
                n = _apply(nxt, out, out, evt, c)
                return None if n is None else replace(w, next=n)
            return None
        case Transform(base=base):
            b = _apply(base, _inner_input(w, inp), state, evt, c)
            return None if b is None else replace(w, base=b)
        case HandleErrorWith(base=base, handler=handler):
            if not isinstance(base, Executed):
                b = _apply(base, inp, state, evt, c)
                return None if b is None else replace(w, base=b)
            if isinstance(base.result, Err):
                caught = _caught(base, state)
                h = _apply(handler, caught, caught.state, evt, c)
                return None if h is None else replace(w, handler=h)
            return None
    return None  # Executed, End, Pure: accept nothing


# -- the frontier -------------------------------------------------------------------------------


def _frontier(
    w: WIO[Any, Any, Any], inp: Any, state: Any
) -> Iterator[tuple[WIO[Any, Any, Any], Any]]:
    """Leaf steps awaiting now, with their inputs, in definition order."""
    match w:
        case RunIO() | HandleSignal():
            yield w, inp
        case AndThen(first=first, second=second):
            if not isinstance(first, Executed):
                yield from _frontier(first, inp, state)
            elif isinstance(first.result, Ok):
                yield from _frontier(second, first.result.value, first.result.value)
        case FlatMap(base=base, next=nxt):
            if not isinstance(base, Executed):
                yield from _frontier(base, inp, state)
            elif nxt is not None and isinstance(base.result, Ok):
                yield from _frontier(nxt, base.result.value, base.result.value)
        case Transform(base=base):
            yield from _frontier(base, _inner_input(w, inp), state)
        case HandleErrorWith(base=base, handler=handler):
            if not isinstance(base, Executed):
                yield from _frontier(base, inp, state)
            elif isinstance(base.result, Err):
                caught = _caught(base, state)
                yield from _frontier(handler, caught, caught.state)


# -- the execution snapshot ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Execution:
    """Immutable state of one workflow instance as the engine sees it."""

    tree: WIO[Any, Any, Any]
    initial_state: Any
    next_index: int
    events_applied: int

    @classmethod
    def start(cls, definition: WIO[Any, Any, Any], initial_state: Any) -> Execution:
        """A new instance of ``definition``, advanced as far as it goes without events."""
        c = _Counter(0)
        tree = _advance(definition, initial_state, initial_state, c)
        return cls(tree=tree, initial_state=initial_state, next_index=c.next, events_applied=0)

    def apply_event(self, event: Any) -> Execution | None:
        """The execution after ``event``, or None if no step on the frontier accepts it."""
        c = _Counter(self.next_index)
        tree = _apply(self.tree, self.initial_state, self.initial_state, event, c)
        if tree is None:
            return None
        tree = _advance(tree, self.initial_state, self.initial_state, c)
        return Execution(
            tree=tree,
            initial_state=self.initial_state,
            next_index=c.next,
            events_applied=self.events_applied + 1,
        )

    def frontier(self) -> list[tuple[WIO[Any, Any, Any], Any]]:
        return list(_frontier(self.tree, self.initial_state, self.initial_state))

    def next_effect(self) -> RunEffect | None:
        """The first side effect waiting to run, if any."""
        for node, inp in self.frontier():
            if isinstance(node, RunIO):
                return RunEffect(node, inp)
        return None

    def find_signal(self, signal_id: str) -> FreshSignal | Redelivery | None:
        """Who handles a signal now: a waiting step first, else the latest step that handled it."""
        for node, inp in self.frontier():
            if isinstance(node, HandleSignal) and node.signal.id == signal_id:
                return FreshSignal(node, inp)
        handled = [
            ex
            for ex in _executed_nodes(self.tree)
            if isinstance(ex.node, HandleSignal)
            and ex.node.signal.id == signal_id
            and ex.event is not None
        ]
        if handled:
            latest = max(handled, key=lambda ex: ex.index)
            assert isinstance(latest.node, HandleSignal)
            return Redelivery(latest.node, latest.input, latest.event)
        return None

    def expected_signals(self) -> tuple[SignalDef[Any, Any], ...]:
        """Signals a step is waiting for now (deduplicated, in definition order)."""
        found: dict[str, SignalDef[Any, Any]] = {}
        for node, _ in self.frontier():
            if isinstance(node, HandleSignal):
                found.setdefault(node.signal.id, node.signal)
        return tuple(found.values())

    def expected_events(self) -> tuple[type[Any], ...]:
        """Event classes the frontier would accept now."""
        types: list[type[Any]] = []
        for node, _ in self.frontier():
            if isinstance(node, RunIO | HandleSignal):
                types.extend(node.event_types)
        return tuple(dict.fromkeys(types))

    @property
    def status(self) -> Status:
        if isinstance(self.tree, Executed):
            return "finished" if isinstance(self.tree.result, Ok) else "failed"
        return "awaiting"

    @property
    def result(self) -> Result[Any, Any] | None:
        """The workflow's outcome once it has finished or failed."""
        return self.tree.result if isinstance(self.tree, Executed) else None

    @property
    def state(self) -> Any:
        """The current workflow state: the output of the latest completed step."""
        return last_state(self.tree, self.initial_state)

    def progress(self) -> StepProgress:
        """What ran, with which result and in which order, and what is still ahead."""
        return _progress(self.tree)


# -- progress -----------------------------------------------------------------------------------


def _progress(w: WIO[Any, Any, Any]) -> StepProgress:
    if isinstance(w, Executed):
        inner = _progress(w.node)
        return replace(inner, result=w.result, index=w.index)
    name = w.display_name
    match w:
        case AndThen():
            steps: list[StepProgress] = []
            for part in (w.first, w.second):
                p = _progress(part)
                if p.kind == "sequence":  # a >> (b >> c) and (a >> b) >> c read the same
                    steps.extend(p.children)
                else:
                    steps.append(p)
            return StepProgress(kind="sequence", name=None, children=tuple(steps))
        case FlatMap(base=base, next=nxt):
            children = (_progress(base),) + ((_progress(nxt),) if nxt is not None else ())
            return StepProgress(kind="dynamic", name=None, children=children)
        case Transform(base=base):
            return _progress(base)
        case HandleErrorWith(base=base, handler=handler):
            return StepProgress(
                kind="handle_error", name=None, children=(_progress(base), _progress(handler))
            )
        case HandleSignal():
            return StepProgress(
                kind="signal",
                name=name or f"Handle {w.signal.name}",
                signal=w.signal.id,
                errors=w.errors,
            )
        case RunIO() | Pure():
            return StepProgress(kind=w.kind, name=name, errors=w.errors)
        case End():
            return StepProgress(kind="end", name=None)
    raise DefinitionError(f"unsupported node {type(w).__name__}")  # pragma: no cover
