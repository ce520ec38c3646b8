"""Semantics of the basic nodes: steps, signals, sequencing, transforms, error handling."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from workflows4py._errors import DefinitionError
from workflows4py.definition import (
    WIO,
    Caught,
    Chain,
    End,
    FlatMap,
    HandleErrorWith,
    HandleSignal,
    History,
    Ok,
    Pure,
    Result,
    RunIO,
    TimerReleased,
    Transform,
)

from ._core import (
    Ctx,
    Executed,
    Frame,
    Leaf,
    OneChild,
    Semantics,
    advance,
    apply,
    apply_current,
    frontier,
    leaf,
    progress,
    register,
    replace,
    replay_run,
    settled,
    state_of,
)
from ._progress import (
    DynamicProgress,
    EndProgress,
    HandleErrorProgress,
    PureProgress,
    RunIOProgress,
    SequenceProgress,
    SignalProgress,
    StepProgress,
    TimerProgress,
    declared_errors,
    waits,
)

__all__ = ["caught"]

Node = WIO[Any, Any, Any]


@register(Executed)
class _Executed(Semantics[Executed]):
    def state(self, w: Executed, f: Frame) -> Any:
        return w.result.value if isinstance(w.result, Ok) else state_of(w.node, f)

    def children(self, w: Executed, f: Frame) -> Iterator[tuple[Node, Frame]]:
        yield w.node, f

    def progress(self, w: Executed, active: bool) -> StepProgress:
        done = replace(progress(w.node, False), result=w.result, index=w.index)
        if isinstance(done, TimerProgress) and isinstance(w.event, TimerReleased):
            return replace(done, released_at=w.event.released_at)
        return done


@register(Pure)
class _Pure(Semantics[Pure]):
    def advance(self, w: Pure, f: Frame, c: Ctx) -> Node:
        return c.done(w, w.fn(f.input), f.input)

    def progress(self, w: Pure, active: bool) -> StepProgress:
        return PureProgress(name=w.display_name, errors=w.errors)


@register(RunIO)
class _RunIO(Semantics[RunIO]):
    def apply(self, w: RunIO, f: Frame, event: Any, c: Ctx) -> Node | None:
        if isinstance(event, w.event_types):
            return c.done(w, w.handler(f.input, event), f.input, event)
        return None

    def taker(
        self, w: RunIO
    ) -> tuple[tuple[type[Any], ...], Callable[[Any, Any], Result[Any, Any]]]:
        return w.event_types, w.handler

    def frontier(self, w: RunIO, f: Frame) -> Iterator[Leaf]:
        yield leaf(w, f)

    def progress(self, w: RunIO, active: bool) -> StepProgress:
        return RunIOProgress(name=w.display_name, errors=w.errors, waiting=active)


@register(HandleSignal)
class _HandleSignal(Semantics[HandleSignal]):
    def apply(self, w: HandleSignal, f: Frame, event: Any, c: Ctx) -> Node | None:
        if isinstance(event, w.event_types):
            return c.done(w, w.event_handler(f.input, event), f.input, event)
        return None

    def taker(
        self, w: HandleSignal
    ) -> tuple[tuple[type[Any], ...], Callable[[Any, Any], Result[Any, Any]]]:
        return w.event_types, w.event_handler

    def frontier(self, w: HandleSignal, f: Frame) -> Iterator[Leaf]:
        yield leaf(w, f)

    def progress(self, w: HandleSignal, active: bool) -> StepProgress:
        signal = w.signal
        return SignalProgress(
            name=w.display_name or f"Handle {signal.name}",
            signal_id=signal.id,
            signal_name=signal.name,
            request=signal.request.__qualname__,
            response=None if signal.response is None else signal.response.__qualname__,
            errors=w.errors,
            waiting=active,
        )


def _after(done: History, f: Frame) -> Frame:
    """The frame of the step after the completed steps ``done`` of a chain (all succeeded)."""
    return f.same_state(done.last.result.value) if done else f


@register(Chain)
class _Chain(Semantics[Chain]):
    """Only the running step is visited, so a step costs the same at any chain length."""

    def advance(self, w: Chain, f: Frame, c: Ctx) -> Node:
        current = w.current
        if current is None:
            if w.done:
                return w  # ended (it then sits inside an Executed)
            current = w.steps[0]
        while True:
            if not isinstance(current, Executed):
                if not settled(current):
                    current = advance(current, _after(w.done, f), c)
                if not isinstance(current, Executed):
                    return w if current is w.current else replace(w, current=current)
            nxt = self._ended(w, current, f, c)
            if isinstance(nxt, Executed):
                return nxt
            w, current = nxt, nxt.steps[len(nxt.done)]  # the step _ended made current

    def _ended(self, w: Chain, step: Executed, f: Frame, c: Ctx) -> Executed | Chain:
        """After the running ``step`` ended: the completed chain (the last step done, or a
        failure), or the chain about to start its next step."""
        done = w.done.append(step)
        if not isinstance(step.result, Ok) or len(done) == len(w.steps):
            return c.done(replace(w, done=done, current=None), step.result, f.input)
        return replace(w, done=done, current=w.steps[len(done)])

    def apply(self, w: Chain, f: Frame, event: Any, c: Ctx) -> Node | None:
        current = w.current
        if current is None:
            if w.done:
                return None
            current = w.steps[0]  # not started (an interruption's flow): its first step
        return apply_current(
            w, current, _after(w.done, f), event, c, ended=lambda step: self._ended(w, step, f, c)
        )

    def replay(self, w: Chain, f: Frame, events: Sequence[Any], i: int, c: Ctx) -> tuple[Node, int]:
        """The running step takes its run of events; when it ends, the next one starts
        (as ``advance`` does) and takes the events after."""
        node: Node = w
        while i < len(events):
            current = w.current
            if current is None:  # not started (an interruption's flow): event by event
                return super().replay(w, f, events, i, c)
            step, j = replay_run(current, _after(w.done, f), events, i, c)
            if j == i:
                break
            i = j
            if not isinstance(step, Executed):  # it refused the next event, or none is left
                return (w if step is current else replace(w, current=step)), i
            nxt = self._ended(w, step, f, c)
            if isinstance(nxt, Executed):
                return nxt, i
            node = self.advance(nxt, f, c)
            if not isinstance(node, Chain):  # it ended
                return node, i
            w = node
        return node, i

    def frontier(self, w: Chain, f: Frame) -> Iterator[Leaf]:
        if w.current is not None:
            return frontier(w.current, _after(w.done, f))
        if not w.done:
            return frontier(w.steps[0], f)
        return iter(())

    def state(self, w: Chain, f: Frame) -> Any:
        if w.current is not None:
            return state_of(w.current, _after(w.done, f))
        if not w.done:
            return state_of(w.steps[0], f)
        return state_of(w.done.last, _after(w.done.before_last, f))

    def children(self, w: Chain, f: Frame) -> Iterator[tuple[Node, Frame]]:
        if w.current is None and not w.done:
            yield w.steps[0], f
            return
        frame = f
        for step in w.done:
            yield step, frame
            if isinstance(step.result, Ok):
                frame = f.same_state(step.result.value)
        if w.current is not None:
            yield w.current, frame

    def progress(self, w: Chain, active: bool) -> StepProgress:
        parts: list[tuple[Node, bool]] = [(step, False) for step in w.done]
        if w.current is not None:
            parts.append((w.current, active))
        elif not w.done:  # not started (an interruption's flow): its first step awaits
            parts.append((w.steps[0], active))
        parts.extend((step, False) for step in w.steps[len(parts) :])
        steps: list[StepProgress] = []
        for part, part_active in parts:
            p = progress(part, part_active)
            if isinstance(p, SequenceProgress):  # a sequence in a map or a transform: flat
                steps.extend(p.steps)
            else:
                steps.append(p)
        return SequenceProgress(steps=tuple(steps), waiting=waits(tuple(steps)))


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

    def progress(self, w: FlatMap, active: bool) -> StepProgress:
        base = progress(w.base, active)
        then = None if w.next is None else progress(w.next, active)
        node = DynamicProgress(base=base, then=then)
        return replace(node, waiting=waits(node.children))


@register(Transform)
class _Transform(OneChild[Transform]):
    def inner(self, w: Transform, f: Frame) -> Frame:
        return f.down(w.in_fn(f.input), f.state) if w.in_fn is not None else f

    def advance(self, w: Transform, f: Frame, c: Ctx) -> Node:
        base = advance(w.base, self.inner(w, f), c)
        if not isinstance(base, Executed):
            return w if base is w.base else replace(w, base=base)
        result = base.result
        if isinstance(result, Ok) and w.out_fn is not None:
            result = Ok(w.out_fn(f.input, result.value))
        return c.done(replace(w, base=base), result, f.input)

    def replay(
        self, w: Transform, f: Frame, events: Sequence[Any], i: int, c: Ctx
    ) -> tuple[Node, int]:
        base, j = replay_run(w.base, self.inner(w, f), events, i, c)
        if j == i:
            return w, i
        node = replace(w, base=base)
        return (self.advance(node, f, c) if isinstance(base, Executed) else node), j

    def progress(self, w: Transform, active: bool) -> StepProgress:
        return progress(w.base, active)


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
        handed = caught(base, f)
        handler = advance(w.handler, f.down(handed, handed.state), c)
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

    def progress(self, w: HandleErrorWith, active: bool) -> StepProgress:
        base = progress(w.base, active)
        failed = isinstance(w.base, Executed) and not isinstance(w.base.result, Ok)
        handler = progress(w.handler, active and failed)
        return HandleErrorProgress(
            base=base,
            handler=handler,
            handled=declared_errors(base),
            waiting=waits((base, handler)),
        )


@register(End)
class _End(Semantics[End]):
    def progress(self, w: End, active: bool) -> StepProgress:
        return EndProgress(waiting=active)
