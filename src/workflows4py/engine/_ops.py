"""Semantics of control-flow and time nodes (see :mod:`._wio` for what each one means)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

from workflows4py._errors import ExecutionError
from workflows4py.definition import (
    NO_MATCH,
    UNSET,
    WIO,
    Checkpoint,
    Embedded,
    Err,
    ForEach,
    Fork,
    Interruptible,
    Loop,
    Ok,
    Parallel,
    Recovery,
    Result,
    Retry,
    RetryAgain,
    StatefulRetry,
    Timer,
    TimerReleased,
    TimerStarted,
    first_leaf,
    is_draft_part,
)

from ._core import (
    Ctx,
    Executed,
    Frame,
    Leaf,
    OneChild,
    RetryScope,
    Semantics,
    advance,
    apply,
    executed,
    executed_nodes,
    frontier,
    leaf,
    progress,
    register,
    replace,
    semantics_of,
    settled,
    state_of,
)
from ._progress import (
    CheckpointProgress,
    EmbeddedProgress,
    ForEachElementProgress,
    ForEachProgress,
    ForkBranchProgress,
    ForkProgress,
    InterruptibleProgress,
    LoopIterationProgress,
    LoopProgress,
    ParallelProgress,
    RecoveryProgress,
    RetryProgress,
    SequenceProgress,
    StepProgress,
    TimerProgress,
    waits,
)

__all__: list[str] = []

Node = WIO[Any, Any, Any]

# A loop that goes round this often within one step, never waiting for anything, is a bug.
MAX_ITERATIONS_WITHOUT_EVENT = 10_000


def _advanced(w: Node, f: Frame) -> bool:
    """Whether a step inside ``w`` completed successfully (a failed one is no progress)."""
    return any(isinstance(ex.result, Ok) for ex, _ in executed_nodes(w, f))


def _first_error(nodes: list[Executed]) -> Executed | None:
    failed = [n for n in nodes if not isinstance(n.result, Ok)]
    return min(failed, key=lambda n: n.index) if failed else None


@register(Timer)
class _Timer(Semantics[Timer]):
    def apply(self, w: Timer, f: Frame, event: Any, c: Ctx) -> Node | None:
        if isinstance(event, TimerStarted) and event.timer == w.timer_id and w.started_at is None:
            return replace(w, started_at=event.started_at, resume_at=event.resume_at)
        if (
            isinstance(event, TimerReleased)
            and event.timer == w.timer_id
            and w.resume_at is not None
            and event.released_at >= w.resume_at
        ):
            return c.done(w, Ok(f.input), f.input, event)
        return None

    def frontier(self, w: Timer, f: Frame) -> Iterator[Leaf]:
        yield leaf(w, f)

    def progress(self, w: Timer, active: bool) -> StepProgress:
        # once started, the instants of its TimerStarted event are what holds, whatever
        # the duration in the definition now (a deploy may have changed it)
        if w.started_at is not None and w.resume_at is not None:
            return TimerProgress(
                name=w.display_name,
                duration=max(w.resume_at - w.started_at, timedelta(0)),
                started_at=w.started_at,
                resume_at=w.resume_at,
                waiting=active,
            )
        return TimerProgress(name=w.display_name, duration=w.static, waiting=active)


@register(Fork)
class _Fork(Semantics[Fork]):
    def _frame(self, w: Fork, f: Frame) -> Frame:
        return f.down(w.chosen_input, f.state)

    def _choose(self, w: Fork, f: Frame) -> tuple[Fork, Node]:
        """The fork with its first matching branch chosen, and that branch's step."""
        for i, branch in enumerate(w.branches):
            value = branch.select(f.input)
            if value is not NO_MATCH:
                return replace(w, chosen=i, chosen_input=value, current=branch.wio), branch.wio
        names = ", ".join(b.name for b in w.branches)
        raise ExecutionError(
            f"fork {w.display_name or '<unnamed>'!r}: no branch ({names}) matches "
            f"the input {f.input!r}; add a branch for it or an otherwise() branch"
        )

    def advance(self, w: Fork, f: Frame, c: Ctx) -> Node:
        current = w.current  # set once a branch is chosen
        if current is None:
            w, current = self._choose(w, f)
        current = advance(current, self._frame(w, f), c)
        node = replace(w, current=current)
        return c.done(node, current.result, f.input) if isinstance(current, Executed) else node

    def apply(self, w: Fork, f: Frame, event: Any, c: Ctx) -> Node | None:
        if w.current is None:
            return None
        current = apply(w.current, self._frame(w, f), event, c)
        return None if current is None else replace(w, current=current)

    def frontier(self, w: Fork, f: Frame) -> Iterator[Leaf]:
        if w.current is not None:
            yield from frontier(w.current, self._frame(w, f))

    def state(self, w: Fork, f: Frame) -> Any:
        return state_of(w.current, self._frame(w, f)) if w.current is not None else f.state

    def children(self, w: Fork, f: Frame) -> Iterator[tuple[Node, Frame]]:
        if w.current is not None:
            yield w.current, self._frame(w, f)

    def progress(self, w: Fork, active: bool) -> StepProgress:
        branches: list[ForkBranchProgress] = []
        for i, b in enumerate(w.branches):
            taken = i == w.chosen
            body = progress(w.current, active) if taken and w.current is not None else None
            if body is None:
                body = progress(b.wio, False)
            branches.append(
                ForkBranchProgress(
                    name=b.name,
                    taken=taken,
                    body=body,
                    result=body.result,
                    index=body.index,
                    waiting=body.waiting,
                )
            )
        return ForkProgress(
            name=w.display_name,
            branches=tuple(branches),
            chosen=w.chosen,
            waiting=waits(tuple(branches)),
            draft=is_draft_part(w),
        )


def _ran(w: Loop, run: Node, current: Node, phase: str, phase_input: Any) -> Loop:
    """``w`` with ``run`` (a finished body or on_restart run) counted and kept among the last
    runs, the oldest one dropped beyond the loop's bound (O(1) per iteration), and
    ``current`` as the next run."""
    limit = max(1, w.keep) * (1 if w.on_restart is None else 2)
    kept = w.history
    if len(kept) >= limit:
        kept = kept[len(kept) - limit + 1 :]
    return replace(
        w,
        finished=w.finished + 1,
        history=(*kept, run),
        current=current,
        phase=phase,
        phase_input=phase_input,
    )


def _replay_locals(w: Loop, f: Frame) -> tuple[deque[Any], Any, dict[Node, bool]]:
    """What the fast replay of ``w`` keeps in locals: the kept runs (a deque that drops the
    oldest as ``_ran`` does), the state the current run starts from (as ``_frame``), and
    whether each run that may come next is settled."""
    limit = max(1, w.keep) * (1 if w.on_restart is None else 2)
    kept = deque(w.history, maxlen=limit)
    last = kept[-1] if kept else None
    state = (
        last.result.value if isinstance(last, Executed) and isinstance(last.result, Ok) else f.state
    )
    next_settled = {w.body: settled(w.body)}
    if w.on_restart is not None:
        next_settled[w.on_restart] = settled(w.on_restart)
    return kept, state, next_settled


def _completed(run: Any) -> Executed:
    """A run the loop's replay took: completed already, or its completed node made now."""
    return run if isinstance(run, Executed) else executed(*run)


def _looped(  # noqa: PLR0917 - the loop's fields, in their order
    w: Loop, current: Node, finished: int, kept: deque[Any], phase: str, phase_input: Any
) -> Loop:
    """``w`` with the fields its fast replay kept in locals (the kept runs completed)."""
    return replace(
        w,
        finished=finished,
        history=tuple(_completed(run) for run in kept),
        current=current,
        phase=phase,
        phase_input=phase_input,
    )


def _busy(w: Loop) -> ExecutionError:
    return ExecutionError(
        f"loop {w.display_name or '<unnamed>'!r} ran {MAX_ITERATIONS_WITHOUT_EVENT} "
        "iterations without waiting for a signal, timer or effect (a busy loop)"
    )


@register(Loop)
class _Loop(Semantics[Loop]):
    def _frame(self, w: Loop, f: Frame) -> Frame:
        """The current run's frame: its input, and the state the last kept run ended with."""
        if w.history:
            last = w.history[-1]  # kept runs all succeeded (a failed one ends the loop)
            if isinstance(last, Executed) and isinstance(last.result, Ok):
                return f.down(w.phase_input, last.result.value)
        return f.down(w.phase_input, f.state)

    def advance(self, w: Loop, f: Frame, c: Ctx) -> Node:
        current = w.current
        if current is None:
            current = w.body
            w = replace(w, current=current, phase="body", phase_input=f.input)
        while True:
            if not isinstance(current, Executed):
                if not settled(current):
                    current = advance(current, self._frame(w, f), c)
                if not isinstance(current, Executed):
                    return w if current is w.current else replace(w, current=current)
            nxt = self._ended(w, current, f, c)
            if isinstance(nxt, Executed):
                return nxt
            if nxt.current is None:  # _ended starts the next run whenever it goes on
                raise ExecutionError(f"loop {w.display_name!r}: no run to go on with")
            w, current = nxt, nxt.current

    def _ended(self, w: Loop, run: Executed, f: Frame, c: Ctx) -> Executed | Loop:
        """After ``run`` (the running body or on_restart run) ended: the completed loop, or
        the loop about to start its next run."""
        if not isinstance(run.result, Ok):
            return c.done(replace(w, current=run), run.result, f.input)
        c.loop_guard += 1
        if c.loop_guard > MAX_ITERATIONS_WITHOUT_EVENT:
            raise _busy(w)
        out = run.result.value
        if w.phase == "body":
            done, value = w.stop(out)
            if done:
                return c.done(replace(w, current=run), Ok(value), f.input)
            if w.on_restart is not None:
                return _ran(w, run, w.on_restart, "restart", value)
            return _ran(w, run, w.body, "body", value)
        return _ran(w, run, w.body, "body", out)

    def apply(self, w: Loop, f: Frame, event: Any, c: Ctx) -> Node | None:
        current = w.current
        if current is None:
            return None
        step = apply(current, self._frame(w, f), event, c)
        if step is None:
            return None
        if isinstance(step, Executed):
            return self._ended(w, step, f, c)
        return replace(w, current=step)

    def replay(  # noqa: PLR0915 - the hot loop of replay: a call per event costs more
        self, w: Loop, f: Frame, events: Sequence[Any], i: int, c: Ctx
    ) -> tuple[Node, int]:
        """The iterations of a run of events without a loop node per event: what ``apply``
        then ``advance`` do, event after event, on the loop's fields held in locals (the
        kept runs in a bounded deque), and one loop node at the end. A run that is one step
        (``Semantics.taker``) is taken here, and completed only if it is kept."""
        current = w.current
        end = len(events)
        if current is None or i >= end:
            return w, i
        start = i
        finished, phase, phase_input = w.finished, w.phase, w.phase_input
        kept, state, next_settled = _replay_locals(w, f)
        body, on_restart, stop = w.body, w.on_restart, w.stop
        seen = current  # the run whose semantics (and taker) are at hand
        semantics = semantics_of(current)
        taker = semantics.taker(current)
        while i < end:
            if current is not seen:
                seen, semantics = current, semantics_of(current)
                taker = semantics.taker(current)
            run: Any  # the run that ended: completed, or (node, result, input, index, event)
            if taker is not None:  # one step: its event, if it is one of its types, ends it
                event = events[i]
                if not isinstance(event, taker[0]):
                    break
                c.loop_guard = 0
                result = taker[1](phase_input, event)
                run = (current, result, phase_input, c.next_index, event)
                c.next_index += 1
                i += 1
            else:
                frame = f.down(phase_input, state)
                if semantics.settled:  # a step only an event moves: apply is all it does
                    c.loop_guard = 0
                    step = semantics.apply(current, frame, events[i], c)
                    if step is None:
                        break
                    i += 1
                    if step.__class__ is not seen.__class__ and not isinstance(step, Executed):
                        step = advance(step, frame, c)
                else:  # a body of its own: it takes its run of events itself
                    step, j = semantics.replay(current, frame, events, i, c)
                    if j == i:
                        break
                    i = j
                if not isinstance(step, Executed):
                    current = step
                    continue
                run, result = step, step.result
            # what advance does after a run ended: end the loop, or start the next run
            while True:
                if not isinstance(result, Ok):
                    loop = _looped(w, _completed(run), finished, kept, phase, phase_input)
                    return c.done(loop, result, f.input), i
                c.loop_guard += 1
                if c.loop_guard > MAX_ITERATIONS_WITHOUT_EVENT:
                    raise _busy(w)
                out = result.value
                if phase == "body":
                    done, value = stop(out)
                    if done:
                        loop = _looped(w, _completed(run), finished, kept, phase, phase_input)
                        return c.done(loop, Ok(value), f.input), i
                    nxt = body if on_restart is None else on_restart
                    phase = "body" if on_restart is None else "restart"
                else:
                    nxt, phase, value = body, "body", out
                finished += 1
                kept.append(run)
                state, phase_input = out, value
                step = nxt if next_settled[nxt] else advance(nxt, f.down(phase_input, state), c)
                if not isinstance(step, Executed):
                    break
                run, result = step, step.result
            current = step
        if i > start:
            w = _looped(w, current, finished, kept, phase, phase_input)
        return w, i

    def frontier(self, w: Loop, f: Frame) -> Iterator[Leaf]:
        if w.current is not None:
            yield from frontier(w.current, self._frame(w, f))

    def state(self, w: Loop, f: Frame) -> Any:
        if w.current is None:
            return f.state
        return state_of(w.current, self._frame(w, f))

    def children(self, w: Loop, f: Frame) -> Iterator[tuple[Node, Frame]]:
        # only the kept runs; executed ones carry their own input, the frame only matters
        # for routes and wraps
        for past in w.history:
            yield past, f.down(getattr(past, "input", f.input), f.state)
        if w.current is not None:
            yield w.current, self._frame(w, f)

    def progress(self, w: Loop, active: bool) -> StepProgress:
        iterations = tuple(_iterations(w, active))
        return LoopProgress(
            name=w.display_name,
            release=w.release_name,
            restart=w.restart_name,
            restarts=w.finished if w.on_restart is None else (w.finished + 1) // 2,
            iterations=iterations,
            waiting=waits(iterations),
            draft=is_draft_part(w),
        )


@register(Parallel)
class _Parallel(Semantics[Parallel]):
    def advance(self, w: Parallel, f: Frame, c: Ctx) -> Node:
        branches = tuple(advance(b, f, c) for b in w.branches)
        node = replace(w, branches=branches)
        done = [b for b in branches if isinstance(b, Executed)]
        failed = _first_error(done)
        if failed is not None:
            return c.done(node, failed.result, f.input)
        if len(done) == len(branches):
            outs = [b.result.value for b in done if isinstance(b.result, Ok)]
            return c.done(node, Ok(w.output(f.input, outs)), f.input)
        return node

    def apply(self, w: Parallel, f: Frame, event: Any, c: Ctx) -> Node | None:
        for i, branch in enumerate(w.branches):
            taken = apply(branch, f, event, c)
            if taken is not None:
                return replace(w, branches=(*w.branches[:i], taken, *w.branches[i + 1 :]))
        return None

    def frontier(self, w: Parallel, f: Frame) -> Iterator[Leaf]:
        for branch in w.branches:
            yield from frontier(branch, f)

    def state(self, w: Parallel, f: Frame) -> Any:
        # only branches that completed a step are folded in: one whose first step failed
        # never advanced, its state would be the node's input counted as progress
        interim = w.interim(f.input)
        for branch, incorporate in zip(w.branches, w.incorporate, strict=True):
            if _advanced(branch, f):
                interim = incorporate(interim, state_of(branch, f))
        return interim

    def children(self, w: Parallel, f: Frame) -> Iterator[tuple[Node, Frame]]:
        for branch in w.branches:
            yield branch, f

    def progress(self, w: Parallel, active: bool) -> StepProgress:
        branches = tuple(progress(b, active) for b in w.branches)
        return ParallelProgress(
            name=w.display_name,
            branches=branches,
            waiting=waits(branches),
            draft=is_draft_part(w),
        )


@register(ForEach)
class _ForEach(Semantics[ForEach]):
    def _frame(self, w: ForEach, f: Frame, key: str, element: Any) -> Frame:
        def wrap(inner: Any) -> Any:
            return w.wrap(key, inner)

        return Frame(element, element, (*f.wrap, wrap), (*f.route, key), f.retry)

    def advance(self, w: ForEach, f: Frame, c: Ctx) -> Node:
        started = w.running
        if started is None:
            elements = list(w.elements(f.input))
            keys = [w.key(e) for e in elements]
            if len(set(keys)) != len(keys):
                name = w.display_name or "<unnamed>"
                raise ExecutionError(f"for-each {name!r}: elements have duplicate keys {keys}")
            started = tuple((k, e, w.body) for k, e in zip(keys, elements, strict=True))
            w = replace(w, running=started)
        running = tuple((k, e, advance(sub, self._frame(w, f, k, e), c)) for k, e, sub in started)
        node = replace(w, running=running)
        done = [sub for _, _, sub in running if isinstance(sub, Executed)]
        failed = _first_error(done)
        if failed is not None:
            return c.done(node, failed.result, f.input)
        if len(done) == len(running):
            outs = {
                k: sub.result.value
                for k, _, sub in running
                if isinstance(sub, Executed) and isinstance(sub.result, Ok)
            }
            return c.done(node, Ok(w.output(f.input, outs)), f.input)
        return node

    def apply(self, w: ForEach, f: Frame, event: Any, c: Ctx) -> Node | None:
        if w.running is None:
            return None
        unwrapped = w.unwrap(event)
        if unwrapped is None:
            return None
        key, inner = unwrapped
        for i, (k, e, sub) in enumerate(w.running):
            if k == key:
                taken = apply(sub, self._frame(w, f, k, e), inner, c)
                if taken is None:
                    return None
                running = (*w.running[:i], (k, e, taken), *w.running[i + 1 :])
                return replace(w, running=running)
        return None

    def frontier(self, w: ForEach, f: Frame) -> Iterator[Leaf]:
        for k, e, sub in w.running or ():
            yield from frontier(sub, self._frame(w, f, k, e))

    def state(self, w: ForEach, f: Frame) -> Any:
        states = {k: state_of(sub, self._frame(w, f, k, e)) for k, e, sub in w.running or ()}
        return w.interim(f.input, states)

    def children(self, w: ForEach, f: Frame) -> Iterator[tuple[Node, Frame]]:
        for k, e, sub in w.running or ():
            yield sub, self._frame(w, f, k, e)

    def progress(self, w: ForEach, active: bool) -> StepProgress:
        elements = None
        if w.running is not None:
            elements = tuple(_element(k, progress(sub, active)) for k, _, sub in w.running)
        return ForEachProgress(
            name=w.display_name,
            body=progress(w.body, False),
            elements=elements,
            waiting=waits(elements or ()),
            draft=is_draft_part(w),
        )


@register(Embedded)
class _Embedded(Semantics[Embedded]):
    def _frame(self, w: Embedded, f: Frame) -> Frame:
        inner = w.input_fn(f.input)
        return Frame(inner, inner, (*f.wrap, w.wrap), f.route, f.retry)

    def advance(self, w: Embedded, f: Frame, c: Ctx) -> Node:
        inner = advance(w.inner, self._frame(w, f), c)
        node = replace(w, inner=inner)
        if not isinstance(inner, Executed):
            return node
        result = inner.result
        if isinstance(result, Ok):
            result = Ok(w.output_fn(f.input, result.value))
        return c.done(node, result, f.input)

    def apply(self, w: Embedded, f: Frame, event: Any, c: Ctx) -> Node | None:
        inner_event = w.unwrap(event)
        if inner_event is None:
            return None
        inner = apply(w.inner, self._frame(w, f), inner_event, c)
        return None if inner is None else replace(w, inner=inner)

    def frontier(self, w: Embedded, f: Frame) -> Iterator[Leaf]:
        return frontier(w.inner, self._frame(w, f))

    def state(self, w: Embedded, f: Frame) -> Any:
        if w.state_fn is None:
            return f.state
        return w.state_fn(f.input, state_of(w.inner, self._frame(w, f)))

    def children(self, w: Embedded, f: Frame) -> Iterator[tuple[Node, Frame]]:
        yield w.inner, self._frame(w, f)

    def progress(self, w: Embedded, active: bool) -> StepProgress:
        inner = progress(w.inner, active)
        return EmbeddedProgress(name=w.display_name, inner=inner, waiting=inner.waiting)


@register(Interruptible)
class _Interruptible(Semantics[Interruptible]):
    def _flow_frame(self, w: Interruptible, f: Frame) -> Frame:
        start = w.flow_input if w.interrupted else state_of(w.base, f)
        return f.down(start, start)

    def advance(self, w: Interruptible, f: Frame, c: Ctx) -> Node:
        if w.interrupted:
            flow = advance(w.flow, self._flow_frame(w, f), c)
            node = replace(w, flow=flow)
            return c.done(node, flow.result, f.input) if isinstance(flow, Executed) else node
        base = advance(w.base, f, c)
        node = replace(w, base=base)
        return c.done(node, base.result, f.input) if isinstance(base, Executed) else node

    def apply(self, w: Interruptible, f: Frame, event: Any, c: Ctx) -> Node | None:
        ff = self._flow_frame(w, f)
        flow = apply(w.flow, ff, event, c)  # the interruption is tried before the base
        if flow is not None:
            if not w.interrupted and isinstance(first_leaf(flow), Executed):
                return replace(w, flow=flow, interrupted=True, flow_input=ff.input)
            return replace(w, flow=flow)
        if w.interrupted:
            return None
        base = apply(w.base, f, event, c)
        return None if base is None else replace(w, base=base)

    def frontier(self, w: Interruptible, f: Frame) -> Iterator[Leaf]:
        yield from frontier(w.flow, self._flow_frame(w, f))
        if not w.interrupted:
            yield from frontier(w.base, f)

    def state(self, w: Interruptible, f: Frame) -> Any:
        return state_of(w.flow, self._flow_frame(w, f)) if w.interrupted else state_of(w.base, f)

    def children(self, w: Interruptible, f: Frame) -> Iterator[tuple[Node, Frame]]:
        yield w.base, f
        yield w.flow, self._flow_frame(w, f)

    def progress(self, w: Interruptible, active: bool) -> StepProgress:
        base = progress(w.base, active and not w.interrupted)
        trigger, handler = _split_flow(progress(w.flow, active))
        parts = (base, trigger) if handler is None else (base, trigger, handler)
        return InterruptibleProgress(
            base=base,
            trigger=trigger,
            handler=handler,
            interrupted=w.interrupted,
            waiting=waits(parts),
        )


@register(Checkpoint)
class _Checkpoint(Semantics[Checkpoint]):
    def advance(self, w: Checkpoint, f: Frame, c: Ctx) -> Node:
        base = advance(w.base, f, c)
        if isinstance(base, Executed) and not isinstance(base.result, Ok):
            return c.done(replace(w, base=base), base.result, f.input)  # no checkpoint for errors
        return w if base is w.base else replace(w, base=base)

    def apply(self, w: Checkpoint, f: Frame, event: Any, c: Ctx) -> Node | None:
        if isinstance(event, w.event_types):  # the checkpoint before the base
            return c.done(w, Ok(w.from_event(f.input, event)), f.input, event)
        if isinstance(w.base, Executed):
            return None
        base = apply(w.base, f, event, c)
        return None if base is None else replace(w, base=base)

    def frontier(self, w: Checkpoint, f: Frame) -> Iterator[Leaf]:
        if isinstance(w.base, Executed):
            yield leaf(w, f)  # ready: the runtime records the checkpoint event
        else:
            yield from frontier(w.base, f)

    def state(self, w: Checkpoint, f: Frame) -> Any:
        return state_of(w.base, f)

    def children(self, w: Checkpoint, f: Frame) -> Iterator[tuple[Node, Frame]]:
        yield w.base, f

    def progress(self, w: Checkpoint, active: bool) -> StepProgress:
        base = progress(w.base, active)
        ready = active and isinstance(w.base, Executed)  # the checkpoint event is to record
        return CheckpointProgress(base=base, waiting=ready or base.waiting, draft=is_draft_part(w))


@register(Recovery)
class _Recovery(Semantics[Recovery]):
    def apply(self, w: Recovery, f: Frame, event: Any, c: Ctx) -> Node | None:
        if isinstance(event, w.event_types):
            return c.done(w, Ok(w.from_event(f.input, event)), f.input, event)
        if w.discards and isinstance(event, w.discards):
            return w  # an event of the step this recovery replaced: consumed, explicitly
        return None

    def frontier(self, w: Recovery, f: Frame) -> Iterator[Leaf]:
        yield leaf(w, f)

    def progress(self, w: Recovery, active: bool) -> StepProgress:
        return RecoveryProgress(name=w.display_name, waiting=active)


@register(Retry)
class _Retry(OneChild[Retry]):
    def inner(self, w: Retry, f: Frame) -> Frame:
        return Frame(f.input, f.state, f.wrap, f.route, RetryScope(w, f))

    def advance(self, w: Retry, f: Frame, c: Ctx) -> Node:
        base = advance(w.base, self.inner(w, f), c)
        node = replace(w, base=base)
        return c.done(node, base.result, f.input) if isinstance(base, Executed) else node

    def apply(self, w: Retry, f: Frame, event: Any, c: Ctx) -> Node | None:
        policy = w.policy
        # retry events first, but the base's own events must still reach the base
        if isinstance(policy, StatefulRetry) and isinstance(event, policy.event_types):
            decision: RetryAgain[Any] | Result[Any, Any] = policy.handle_event(
                f.input, event, w.state
            )
            failed = w.failed_attempts + 1
            if isinstance(decision, RetryAgain):
                return replace(
                    w, state=decision.state, not_before=decision.at, failed_attempts=failed
                )
            if isinstance(decision, Ok | Err):
                return c.done(replace(w, failed_attempts=failed), decision, f.input, event)
            raise ExecutionError(
                f"retry handle_event returned {decision!r}; expected RetryAgain, Ok or Err"
            )
        return super().apply(w, f, event, c)

    def progress(self, w: Retry, active: bool) -> StepProgress:
        base = progress(w.base, active)
        if not isinstance(w.policy, StatefulRetry):
            return RetryProgress(
                base=base, policy="stateless", waiting=base.waiting, draft=is_draft_part(w)
            )
        return RetryProgress(
            base=base,
            policy="stateful",
            failed_attempts=w.failed_attempts,
            state=None if w.state is UNSET else w.state,
            not_before=w.not_before,
            waiting=base.waiting,
        )


def _element(key: str, body: StepProgress) -> ForEachElementProgress:
    return ForEachElementProgress(
        key=key, body=body, result=body.result, index=body.index, waiting=body.waiting
    )


def _split_flow(flow: StepProgress) -> tuple[StepProgress, StepProgress | None]:
    """An interruption's flow as its trigger (its first step) and the rest, if any."""
    if not isinstance(flow, SequenceProgress):
        return flow, None
    trigger, *rest = flow.steps
    if not rest:
        return trigger, None
    if len(rest) == 1:
        return trigger, rest[0]
    ended = any(step.executed for step in rest)
    handler = SequenceProgress(
        steps=tuple(rest),
        result=flow.result if ended else None,
        index=flow.index if ended else None,
        waiting=waits(tuple(rest)),
    )
    return trigger, handler


def _iterations(w: Loop, active: bool) -> list[LoopIterationProgress]:
    """The kept rounds of a loop: each body run, then its restart run (or the restart step
    not run: ahead, or never once the loop ended); a round whose body was dropped is left out."""
    two = w.on_restart is not None
    if w.current is None:  # not started: the first round, ahead
        restart = None if w.on_restart is None else progress(w.on_restart, False)
        return [LoopIterationProgress(number=1, body=progress(w.body, False), on_restart=restart)]
    first = w.finished - len(w.history)
    runs = [*w.history, w.current]
    rounds: dict[int, list[StepProgress]] = {}
    for i, run in enumerate(runs):
        number = first + i  # the run's number among all runs of the loop
        p = progress(run, active and run is w.current)
        if not two:
            rounds[number + 1] = [p]
        elif number % 2 == 0:
            rounds[number // 2 + 1] = [p]
        elif number // 2 + 1 in rounds:
            rounds[number // 2 + 1].append(p)
    last = max(rounds)
    found: list[LoopIterationProgress] = []
    for number, parts in rounds.items():
        body, restart = parts[0], parts[1] if len(parts) > 1 else None
        went_on = number != last or restart is not None
        outcome: str | None = None
        if isinstance(body.result, Ok):
            outcome = w.restart_name if went_on else w.release_name
        if restart is None and w.on_restart is not None:  # ahead, or never run (the loop ended)
            restart = progress(w.on_restart, False)
        end = restart if two and outcome == w.restart_name else body
        found.append(
            LoopIterationProgress(
                number=number,
                outcome=outcome,
                body=body,
                on_restart=restart,
                result=None if end is None else end.result,
                index=None if end is None else end.index,
                waiting=waits(tuple(x for x in (body, restart) if x is not None)),
            )
        )
    return found
