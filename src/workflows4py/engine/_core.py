"""The engine's vocabulary and dispatch: frames, leaves, completed nodes, per-node semantics.

Each node type registers a :class:`Semantics` that knows six things about it: how to make
progress without events (``advance``), how to take an event (``apply``), which leaf steps
await now (``frontier``), what the workflow state is inside it (``state``), which
children it has (``children``, for walks over executed steps), and its progress model
(``progress``). Everything is pure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

from workflows4py._errors import DefinitionError
from workflows4py.definition import WIO, NameLabel, Result

from ._progress import StepProgress

__all__ = [
    "Ctx",
    "Executed",
    "Frame",
    "Leaf",
    "OneChild",
    "RetryScope",
    "Semantics",
    "advance",
    "apply",
    "apply_current",
    "children",
    "executed",
    "executed_nodes",
    "frontier",
    "leaf",
    "progress",
    "register",
    "replace",
    "replay_run",
    "semantics_of",
    "settled",
    "slot_setter",
    "state_of",
]

N = TypeVar("N", bound=WIO[Any, Any, Any])
T = TypeVar("T")


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
class RetryScope:
    """The innermost retry around a leaf, with the frame the retry node runs in."""

    node: WIO[Any, Any, Any]
    frame: Frame


class Frame(NamedTuple):
    """What a node sees from above: its input, the state before it, how its events are
    wrapped into the root's events, the for-each keys it runs under, its retry scope.

    A named tuple: the engine makes a few frames per event, and a tuple is built in C.
    """

    input: Any
    state: Any
    wrap: tuple[Callable[[Any], Any], ...] = ()
    route: tuple[str, ...] = ()
    retry: RetryScope | None = None

    @staticmethod
    def root(state: Any) -> Frame:
        """The frame of a workflow's root: the initial state is its input and state."""
        return _new_tuple(Frame, (state, state, (), (), None))

    def down(self, input: Any, state: Any) -> Frame:
        return _new_tuple(Frame, (input, state, self[2], self[3], self[4]))

    def same_state(self, input: Any) -> Frame:
        return _new_tuple(Frame, (input, input, self[2], self[3], self[4]))

    def wrap_event(self, event: Any) -> Any:
        for wrap in reversed(self.wrap):
            event = wrap(event)
        return event


_new_tuple: Callable[[type[Frame], tuple[Any, ...]], Frame] = tuple.__new__


@dataclass(frozen=True, slots=True)
class Leaf:
    """A step on the frontier (awaiting now) and the frame it runs in."""

    node: WIO[Any, Any, Any]
    frame: Frame


def slot_setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    """The setter of the slot ``name`` of ``cls``, which a frozen dataclass's own
    __setattr__ refuses. For the values the engine makes at every event (leaves,
    executions, effects to run): its __init__ sets each field through
    object.__setattr__, the slots' own setters do the same in half the time."""
    setter: Callable[[Any, Any], None] = vars(cls)[name].__set__
    return setter


_set_leaf_node = slot_setter(Leaf, "node")
_set_leaf_frame = slot_setter(Leaf, "frame")


def leaf(node: WIO[Any, Any, Any], frame: Frame) -> Leaf:
    """``Leaf(node, frame)``, made faster (see slot_setter): the engine makes a leaf for
    every step awaiting, at every event."""
    made: Leaf = object.__new__(Leaf)
    _set_leaf_node(made, node)
    _set_leaf_frame(made, frame)
    return made


@dataclass(slots=True)
class Ctx:
    """Mutable per-call context: the execution counter that orders completed nodes."""

    next_index: int
    loop_guard: int = field(default=0)

    def done(
        self, node: WIO[Any, Any, Any], result: Result[Any, Any], inp: Any, event: Any = None
    ) -> Executed:
        index = self.next_index
        self.next_index += 1
        return executed(node, result, inp, index, event)


def executed(
    node: WIO[Any, Any, Any], result: Result[Any, Any], inp: Any, index: int, event: Any
) -> Executed:
    """The completed ``node`` (what :meth:`Ctx.done` makes, numbered ``index``)."""
    made = object.__new__(Executed)
    made.__dict__.update(
        _label=_EXECUTED_LABEL, node=node, result=result, input=inp, index=index, event=event
    )
    return made


def replace(obj: T, /, **changes: Any) -> T:
    """``dataclasses.replace`` for engine nodes, without re-running ``__init__``.

    The engine rewrites a few nodes per event; the generic replace costs microseconds
    each, which dominated replay. Nodes are frozen dataclasses with plain ``__dict__``s and
    no ``__post_init__``, so copying the dict is exact.
    """
    fields = getattr(obj, "__dict__", None)
    if fields is None:  # slotted values (progress): the generic way
        return dataclasses.replace(obj, **changes)  # type: ignore[type-var]
    new = object.__new__(type(obj))
    attrs = new.__dict__
    attrs.update(fields)
    attrs.update(changes)
    return new


class Semantics(Generic[N]):
    """How the engine treats one node type. Leaves override only what applies."""

    # set by register(): True when advance is left as is (a leaf only an event moves)
    settled: bool = False

    def advance(self, w: N, f: Frame, c: Ctx) -> WIO[Any, Any, Any]:
        return w

    def apply(self, w: N, f: Frame, event: Any, c: Ctx) -> WIO[Any, Any, Any] | None:
        return None

    def frontier(self, w: N, f: Frame) -> Iterator[Leaf]:
        return iter(())

    def state(self, w: N, f: Frame) -> Any:
        return f.state

    def children(self, w: N, f: Frame) -> Iterator[tuple[WIO[Any, Any, Any], Frame]]:
        return iter(())

    def progress(self, w: N, active: bool) -> StepProgress:
        """The progress of ``w``; ``active`` when the instance runs it now (its steps
        not completed may be waited on), False for a part not reached or a definition."""
        raise NotImplementedError

    def taker(
        self, w: N
    ) -> tuple[tuple[type[Any], ...], Callable[[Any, Any], Result[Any, Any]]] | None:
        """``(event_types, handler)`` for a step whose ``apply`` is all of: an event of one of
        ``event_types`` ends it (``c.done(w, handler(input, event), input, event)``), any
        other is refused; None for any other node. A loop's replay takes such a step's
        events itself, and makes the completed nodes only of the runs it keeps."""
        return None

    def replay(
        self, w: N, f: Frame, events: Sequence[Any], i: int, c: Ctx
    ) -> tuple[WIO[Any, Any, Any], int]:
        """Take ``events[i]``, ``events[i + 1]``, ... one after the other, as ``apply`` then
        ``advance`` of ``w`` in ``f`` would, while ``w`` accepts them and has not ended:
        ``w`` as it is then, and the index of the first event not taken.

        The replay fast path: a node whose events all go to one child (``current``,
        ``base``) overrides it to hand the whole run to the child and rebuild itself once,
        not once per event; this default takes the events one by one. It is only called
        where the parent would hand the child every one of these events, and its result
        is the parent's to rebuild itself with, exactly as after the same ``apply`` and
        ``advance`` calls event by event (``advance`` of an advanced node changes nothing).
        """
        end = len(events)
        node: WIO[Any, Any, Any] = w
        while i < end:
            c.loop_guard = 0  # per event, as a fresh Ctx per apply_event
            nxt = _SEMANTICS[type(node)].apply(node, f, events[i], c)
            if nxt is None:
                break
            i += 1
            node = advance(nxt, f, c)
            if isinstance(node, Executed):
                break
        return node, i


class _Registry(dict[type[Any], Semantics[Any]]):
    """The semantics of each node type; a type without any cannot run."""

    def __missing__(self, node_type: type[Any]) -> Semantics[Any]:
        raise DefinitionError(
            f"{node_type.__name__} nodes cannot run (is this a draft definition?)"
        )


_SEMANTICS = _Registry()
_EXECUTED_LABEL = NameLabel()  # completed nodes are never named through an attribute


def register(node_type: type[N]) -> Callable[[type[Semantics[N]]], type[Semantics[N]]]:
    def add(cls: type[Semantics[N]]) -> type[Semantics[N]]:
        semantics = cls()
        semantics.settled = cls.advance is Semantics.advance
        _SEMANTICS[node_type] = semantics
        return cls

    return add


# The dispatchers look the semantics up inline: they run for every node an event passes.


def advance(w: WIO[Any, Any, Any], f: Frame, c: Ctx) -> WIO[Any, Any, Any]:
    """Make all progress possible without an event."""
    return _SEMANTICS[type(w)].advance(w, f, c)


def semantics_of(w: WIO[Any, Any, Any]) -> Semantics[Any]:
    """The semantics of ``w``'s node type (for loops that call them many times)."""
    return _SEMANTICS[type(w)]


def settled(w: WIO[Any, Any, Any]) -> bool:
    """Whether ``advance(w, ...)`` returns ``w`` whatever the frame (a step awaiting an event,
    a completed node): callers skip building a frame for it."""
    return _SEMANTICS[type(w)].settled


def apply(w: WIO[Any, Any, Any], f: Frame, event: Any, c: Ctx) -> WIO[Any, Any, Any] | None:
    """Offer ``event`` to the frontier; the rewritten tree, or None if nothing took it."""
    return _SEMANTICS[type(w)].apply(w, f, event, c)


def replay_run(
    w: WIO[Any, Any, Any], f: Frame, events: Sequence[Any], i: int, c: Ctx
) -> tuple[WIO[Any, Any, Any], int]:
    """``w`` after taking as many of ``events[i:]`` as it accepts, one by one and each
    followed by ``advance`` (see :meth:`Semantics.replay`), and the index of the first
    event it did not take."""
    return _SEMANTICS[type(w)].replay(w, f, events, i, c)


def frontier(w: WIO[Any, Any, Any], f: Frame) -> Iterator[Leaf]:
    """The leaf steps awaiting now, in definition order."""
    return _SEMANTICS[type(w)].frontier(w, f)


def state_of(w: WIO[Any, Any, Any], f: Frame) -> Any:
    """The workflow state after what has run inside ``w``."""
    return _SEMANTICS[type(w)].state(w, f)


def children(w: WIO[Any, Any, Any], f: Frame) -> Iterator[tuple[WIO[Any, Any, Any], Frame]]:
    return _SEMANTICS[type(w)].children(w, f)


def progress(w: WIO[Any, Any, Any], active: bool) -> StepProgress:
    """The progress model of ``w`` (see :meth:`Semantics.progress`)."""
    return _SEMANTICS[type(w)].progress(w, active)


def apply_current(
    w: WIO[Any, Any, Any],
    current: WIO[Any, Any, Any],
    f: Frame,
    event: Any,
    c: Ctx,
    *,
    ended: Callable[[Executed], WIO[Any, Any, Any]],
) -> WIO[Any, Any, Any] | None:
    """Offer ``event`` to ``w``'s running child ``current``: None if it did not take it,
    ``ended(child)`` if the child ended (one rewrite of ``w``, not two), else ``w`` with the
    child rewritten."""
    step = apply(current, f, event, c)
    if step is None:
        return None
    if isinstance(step, Executed):
        return ended(step)
    return replace(w, current=step)


class OneChild(Semantics[N]):
    """A node that runs one child, ``w.base``, in a frame it derives (``inner``): events,
    the frontier, the state and the children are the child's."""

    def inner(self, w: N, f: Frame) -> Frame:
        raise NotImplementedError

    def apply(self, w: N, f: Frame, event: Any, c: Ctx) -> WIO[Any, Any, Any] | None:
        base = apply(_base(w), self.inner(w, f), event, c)
        return None if base is None else replace(w, base=base)

    def frontier(self, w: N, f: Frame) -> Iterator[Leaf]:
        return frontier(_base(w), self.inner(w, f))

    def state(self, w: N, f: Frame) -> Any:
        return state_of(_base(w), self.inner(w, f))

    def children(self, w: N, f: Frame) -> Iterator[tuple[WIO[Any, Any, Any], Frame]]:
        yield _base(w), self.inner(w, f)


def _base(w: WIO[Any, Any, Any]) -> WIO[Any, Any, Any]:
    base: WIO[Any, Any, Any] = getattr(w, "base")  # noqa: B009 - every OneChild node has one
    return base


def executed_nodes(w: WIO[Any, Any, Any], f: Frame) -> Iterator[tuple[Executed, Frame]]:
    """Every completed node inside ``w`` with its frame, parents before children."""
    if isinstance(w, Executed):
        yield w, f
    for child, cf in children(w, f):
        yield from executed_nodes(child, cf)
