"""Semantics of the basic nodes: steps, signals, sequencing, transforms, error handling."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ._engine_core import (
    Ctx,
    Executed,
    Frame,
    Leaf,
    Semantics,
    advance,
    apply,
    frontier,
    progress,
    register,
    replace,
    state_of,
)
from ._errors import DefinitionError
from ._progress import StepProgress
from ._result import Ok
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

__all__ = ["caught"]

Node = WIO[Any, Any, Any]


@register(Executed)
class _Executed(Semantics[Executed]):
    def state(self, w: Executed, f: Frame) -> Any:
        return w.result.value if isinstance(w.result, Ok) else state_of(w.node, f)

    def children(self, w: Executed, f: Frame) -> Iterator[tuple[Node, Frame]]:
        yield w.node, f

    def progress(self, w: Executed) -> StepProgress:
        return replace(progress(w.node), result=w.result, index=w.index)


@register(Pure)
class _Pure(Semantics[Pure]):
    def advance(self, w: Pure, f: Frame, c: Ctx) -> Node:
        return c.done(w, w.fn(f.input), f.input)

    def progress(self, w: Pure) -> StepProgress:
        return StepProgress(kind="pure", name=w.display_name, errors=w.errors)


@register(RunIO)
class _RunIO(Semantics[RunIO]):
    def apply(self, w: RunIO, f: Frame, event: Any, c: Ctx) -> Node | None:
        if isinstance(event, w.event_types):
            return c.done(w, w.handler(f.input, event), f.input, event)
        return None

    def frontier(self, w: RunIO, f: Frame) -> Iterator[Leaf]:
        yield Leaf(w, f)

    def progress(self, w: RunIO) -> StepProgress:
        return StepProgress(kind="run_io", name=w.display_name, errors=w.errors)


@register(HandleSignal)
class _HandleSignal(Semantics[HandleSignal]):
    def apply(self, w: HandleSignal, f: Frame, event: Any, c: Ctx) -> Node | None:
        if isinstance(event, w.event_types):
            return c.done(w, w.event_handler(f.input, event), f.input, event)
        return None

    def frontier(self, w: HandleSignal, f: Frame) -> Iterator[Leaf]:
        yield Leaf(w, f)

    def progress(self, w: HandleSignal) -> StepProgress:
        return StepProgress(
            kind="signal",
            name=w.display_name or f"Handle {w.signal.name}",
            signal=w.signal.id,
            errors=w.errors,
        )


@register(AndThen)
class _AndThen(Semantics[AndThen]):
    def advance(self, w: AndThen, f: Frame, c: Ctx) -> Node:
        first = advance(w.first, f, c)
        if not isinstance(first, Executed):
            return w if first is w.first else replace(w, first=first)
        if not isinstance(first.result, Ok):
            return c.done(replace(w, first=first), first.result, f.input)
        second = advance(w.second, f.same_state(first.result.value), c)
        node = replace(w, first=first, second=second)
        return c.done(node, second.result, f.input) if isinstance(second, Executed) else node

    def apply(self, w: AndThen, f: Frame, event: Any, c: Ctx) -> Node | None:
        if not isinstance(w.first, Executed):
            first = apply(w.first, f, event, c)
            return None if first is None else replace(w, first=first)
        if isinstance(w.first.result, Ok):
            second = apply(w.second, f.same_state(w.first.result.value), event, c)
            return None if second is None else replace(w, second=second)
        return None

    def frontier(self, w: AndThen, f: Frame) -> Iterator[Leaf]:
        if not isinstance(w.first, Executed):
            yield from frontier(w.first, f)
        elif isinstance(w.first.result, Ok):
            yield from frontier(w.second, f.same_state(w.first.result.value))

    def state(self, w: AndThen, f: Frame) -> Any:
        if isinstance(w.first, Executed) and isinstance(w.first.result, Ok):
            return state_of(w.second, f.same_state(w.first.result.value))
        return state_of(w.first, f)

    def children(self, w: AndThen, f: Frame) -> Iterator[tuple[Node, Frame]]:
        yield w.first, f
        if isinstance(w.first, Executed) and isinstance(w.first.result, Ok):
            yield w.second, f.same_state(w.first.result.value)

    def progress(self, w: AndThen) -> StepProgress:
        steps: list[StepProgress] = []
        for part in (w.first, w.second):
            p = progress(part)
            if p.kind == "sequence":  # a >> (b >> c) and (a >> b) >> c read the same
                steps.extend(p.children)
            else:
                steps.append(p)
        return StepProgress(kind="sequence", name=None, children=tuple(steps))


@register(FlatMap)
class _FlatMap(Semantics[FlatMap]):
    def advance(self, w: FlatMap, f: Frame, c: Ctx) -> Node:
        base = advance(w.base, f, c)
        if not isinstance(base, Executed):
            return w if base is w.base else replace(w, base=base)
        if not isinstance(base.result, Ok):
            return c.done(replace(w, base=base), base.result, f.input)
        out = base.result.value
        nxt = w.next
        if nxt is None:
            nxt = w.fn(out)
            if not isinstance(nxt, WIO):
                raise DefinitionError(f"flat_map function returned {nxt!r}, not a WIO")
        nxt = advance(nxt, f.same_state(out), c)
        node = replace(w, base=base, next=nxt)
        return c.done(node, nxt.result, f.input) if isinstance(nxt, Executed) else node

    def apply(self, w: FlatMap, f: Frame, event: Any, c: Ctx) -> Node | None:
        if not isinstance(w.base, Executed):
            base = apply(w.base, f, event, c)
            return None if base is None else replace(w, base=base)
        if w.next is not None and isinstance(w.base.result, Ok):
            nxt = apply(w.next, f.same_state(w.base.result.value), event, c)
            return None if nxt is None else replace(w, next=nxt)
        return None

    def frontier(self, w: FlatMap, f: Frame) -> Iterator[Leaf]:
        if not isinstance(w.base, Executed):
            yield from frontier(w.base, f)
        elif w.next is not None and isinstance(w.base.result, Ok):
            yield from frontier(w.next, f.same_state(w.base.result.value))

    def state(self, w: FlatMap, f: Frame) -> Any:
        if w.next is not None and isinstance(w.base, Executed) and isinstance(w.base.result, Ok):
            return state_of(w.next, f.same_state(w.base.result.value))
        return state_of(w.base, f)

    def children(self, w: FlatMap, f: Frame) -> Iterator[tuple[Node, Frame]]:
        yield w.base, f
        if w.next is not None and isinstance(w.base, Executed) and isinstance(w.base.result, Ok):
            yield w.next, f.same_state(w.base.result.value)

    def progress(self, w: FlatMap) -> StepProgress:
        parts = (progress(w.base),) + ((progress(w.next),) if w.next is not None else ())
        return StepProgress(kind="dynamic", name=None, children=parts)


@register(Transform)
class _Transform(Semantics[Transform]):
    def _inner(self, w: Transform, f: Frame) -> Frame:
        return f.down(w.in_fn(f.input), f.state) if w.in_fn is not None else f

    def advance(self, w: Transform, f: Frame, c: Ctx) -> Node:
        base = advance(w.base, self._inner(w, f), c)
        if not isinstance(base, Executed):
            return w if base is w.base else replace(w, base=base)
        result = base.result
        if isinstance(result, Ok) and w.out_fn is not None:
            result = Ok(w.out_fn(f.input, result.value))
        return c.done(replace(w, base=base), result, f.input)

    def apply(self, w: Transform, f: Frame, event: Any, c: Ctx) -> Node | None:
        base = apply(w.base, self._inner(w, f), event, c)
        return None if base is None else replace(w, base=base)

    def frontier(self, w: Transform, f: Frame) -> Iterator[Leaf]:
        return frontier(w.base, self._inner(w, f))

    def state(self, w: Transform, f: Frame) -> Any:
        return state_of(w.base, self._inner(w, f))

    def children(self, w: Transform, f: Frame) -> Iterator[tuple[Node, Frame]]:
        yield w.base, self._inner(w, f)

    def progress(self, w: Transform) -> StepProgress:
        return progress(w.base)


def caught(failed: Executed, f: Frame) -> Caught[Any, Any]:
    """The input of an error handler: last state reached inside ``failed`` and its error."""
    error = getattr(failed.result, "error", None)
    return Caught(state_of(failed, f), error)


@register(HandleErrorWith)
class _HandleErrorWith(Semantics[HandleErrorWith]):
    def _handler_frame(self, w: HandleErrorWith, f: Frame) -> Frame | None:
        if isinstance(w.base, Executed) and not isinstance(w.base.result, Ok):
            c = caught(w.base, f)
            return f.down(c, c.state)
        return None

    def advance(self, w: HandleErrorWith, f: Frame, c: Ctx) -> Node:
        base = advance(w.base, f, c)
        if not isinstance(base, Executed):
            return w if base is w.base else replace(w, base=base)
        if isinstance(base.result, Ok):
            return c.done(replace(w, base=base), base.result, f.input)
        node = replace(w, base=base)
        hf = self._handler_frame(node, f)
        assert hf is not None
        handler = advance(w.handler, hf, c)
        node = replace(node, handler=handler)
        return c.done(node, handler.result, f.input) if isinstance(handler, Executed) else node

    def apply(self, w: HandleErrorWith, f: Frame, event: Any, c: Ctx) -> Node | None:
        if not isinstance(w.base, Executed):
            base = apply(w.base, f, event, c)
            return None if base is None else replace(w, base=base)
        hf = self._handler_frame(w, f)
        if hf is None:
            return None
        handler = apply(w.handler, hf, event, c)
        return None if handler is None else replace(w, handler=handler)

    def frontier(self, w: HandleErrorWith, f: Frame) -> Iterator[Leaf]:
        if not isinstance(w.base, Executed):
            yield from frontier(w.base, f)
        elif (hf := self._handler_frame(w, f)) is not None:
            yield from frontier(w.handler, hf)

    def state(self, w: HandleErrorWith, f: Frame) -> Any:
        hf = self._handler_frame(w, f)
        return state_of(w.handler, hf) if hf is not None else state_of(w.base, f)

    def children(self, w: HandleErrorWith, f: Frame) -> Iterator[tuple[Node, Frame]]:
        yield w.base, f
        if (hf := self._handler_frame(w, f)) is not None:
            yield w.handler, hf

    def progress(self, w: HandleErrorWith) -> StepProgress:
        return StepProgress(
            kind="handle_error", name=None, children=(progress(w.base), progress(w.handler))
        )


@register(End)
class _End(Semantics[End]):
    def progress(self, w: End) -> StepProgress:
        return StepProgress(kind="end", name=None)
