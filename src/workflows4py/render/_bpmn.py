"""BPMN 2.0 XML with diagram interchange, drawn from the progress model.

The tree of progress nodes becomes flow nodes and sequence flows (``docs/bpmn.md`` gives the
mapping), laid out by ``_layout``; a progress of an instance colours what ran with the
bpmn.io colour extension. The XML is built with ``xml.etree.ElementTree``, which escapes
every name.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any, Literal, TypeVar

from workflows4py.definition import WIO, Err, Ok, Workflow, error_name, pretty_name
from workflows4py.engine import (
    CheckpointProgress,
    DynamicProgress,
    EmbeddedProgress,
    EndProgress,
    ForEachProgress,
    ForkBranchProgress,
    ForkProgress,
    HandleErrorProgress,
    InterruptibleProgress,
    LoopProgress,
    ParallelProgress,
    PureProgress,
    RecoveryProgress,
    RetryProgress,
    RunIOProgress,
    SequenceProgress,
    SignalProgress,
    StepProgress,
    TimerProgress,
    progress_of,
)
from workflows4py.serialization import encoder_for

from ._layout import BOUNDARY, Box, Edge, Graph, Layout, Node, Shape, layout
from ._text import duration_text

__all__ = ["COLOURS", "bpmn"]

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
DI = "http://www.omg.org/spec/DD/20100524/DI"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
BIOC = "http://bpmn.io/schema/bpmn/biocolor/1.0"
COLOR = "http://www.omg.org/spec/BPMN/non-normative/color/1.0"
_PREFIXES = {
    "bpmn": BPMN,
    "bpmndi": BPMNDI,
    "dc": DC,
    "di": DI,
    "xsi": XSI,
    "bioc": BIOC,
    "color": COLOR,
}
for _prefix, _uri in _PREFIXES.items():
    ET.register_namespace(_prefix, _uri)

Mark = Literal["done", "failed", "frontier", "active"]
"""How a drawn element ran: ended with ``Ok`` (``done``) or ``Err`` (``failed``), waited on now
(``frontier``), or holding what is waited on now (``active``, a subprocess)."""

COLOURS: dict[Mark, tuple[str, str | None]] = {
    "done": ("#43a047", "#c8e6c9"),
    "failed": ("#e53935", "#ffcdd2"),
    "frontier": ("#fb8c00", "#ffe0b2"),
    "active": ("#fb8c00", None),
}
"""The stroke and fill colours of each mark (an ``active`` subprocess keeps its fill)."""
_TAKEN = COLOURS["done"][0]

TASK = (100.0, 80.0)
EVENT = (36.0, 36.0)
GATEWAY = (50.0, 50.0)
LABEL_WIDTH = 90.0
"""The width bpmn.io wraps an event's or a gateway's label to."""
_LABEL_LETTER = 5.6  # the average letter of a label (11px), of a task or an annotation (12px)
_TEXT_LETTER = 6.6
_LINE = 14.0
_TEXT_LINE = 16.0
_ANNOTATION_GAP = 20.0
_ORIGIN = (150.0, 80.0)

_encode_duration = encoder_for(timedelta)

S = TypeVar("S", bound=StepProgress)


# -- the model drawn ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Exit:
    """A flow still to draw from ``source`` to whatever comes next: ``taken`` when the
    instance went along it, ``label`` the condition's name for a flow out of a choice."""

    source: str
    taken: bool = False
    label: str | None = None


@dataclass(eq=False, slots=True)
class _Element:
    id: str
    tag: str
    name: str | None
    mark: Mark | None
    scope: _Scope
    node: Node | None = None
    attrs: dict[str, str] = field(default_factory=dict)
    details: list[ET.Element] = field(default_factory=list)
    inner: _Scope | None = None
    incoming: list[str] = field(default_factory=list)
    outgoing: list[str] = field(default_factory=list)
    label: tuple[float, float] | None = None
    label_side: Literal["below", "above", "boundary"] = "below"


@dataclass(eq=False, slots=True)
class _Flow:
    id: str
    source: str
    target: str
    label: str | None
    taken: bool


@dataclass(eq=False, slots=True)
class _Annotation:
    id: str
    association: str
    text: str
    host: str
    size: tuple[float, float]


@dataclass(eq=False, slots=True)
class _Scope:
    """A process or an expanded subprocess: what it holds, and its layout graph."""

    id: str
    parent: _Scope | None
    graph: Graph = field(default_factory=Graph)
    elements: list[_Element] = field(default_factory=list)
    flows: list[_Flow] = field(default_factory=list)
    annotations: list[_Annotation] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class _Catch:
    """An error handler being drawn: the errors it handles, the scope of its handler, and
    the (activity, error) pairs found so far, each with the steps that raise it there."""

    handled: frozenset[str]
    scope: _Scope
    raised: dict[tuple[str, str], list[tuple[StepProgress, ...]]] = field(default_factory=dict)


# -- the public function ------------------------------------------------------------------------


def bpmn(
    subject: StepProgress | WIO[Any, Any, Any] | type[Workflow[Any, Any]],
    *,
    name: str | None = None,
    technical: bool = False,
) -> str:
    """BPMN 2.0 XML of a definition (or a Workflow subclass's), or of an instance's progress,
    with diagram interchange: every flow node has a shape and every flow an edge, laid out
    left to right, so that bpmn.io and Camunda Modeler open it as drawn.

    ``docs/bpmn.md`` gives the mapping. A progress of an instance colours what ran with the
    bpmn.io colour extension: green what completed, red what failed, orange what the
    instance waits on now. ``name`` names the process (by default the workflow's name, split
    into words); ``technical`` draws checkpoints and recoveries too. The same input always
    gives the same text.
    """
    progress = subject if isinstance(subject, StepProgress) else progress_of(subject)
    if name is None and isinstance(subject, type) and issubclass(subject, Workflow):
        name = pretty_name(subject.name)
    drawing = _Drawing(technical)
    return drawing.xml(drawing.process(progress), name or "Workflow")


# -- drawing ------------------------------------------------------------------------------------


def _mark(group: tuple[StepProgress, ...]) -> Mark | None:
    """How the steps drawn as one element ran, taken together (a loop's rounds, a for-each's
    elements): waited on wins, then failed, then done."""
    if _waits(group):
        leaf = any(p.waiting and not _waits(p.children) for p in group)
        return "frontier" if leaf else "active"
    return _ended(group)


def _same(group: tuple[StepProgress, ...], kind: type[S]) -> tuple[S, ...]:
    return tuple(p for p in group if isinstance(p, kind))


def _parts(found: Iterable[StepProgress | None], like: StepProgress) -> tuple[StepProgress, ...]:
    """``like`` (the part drawn) and the same part of the other occurrences."""
    others = (p for p in found if p is not None and p is not like and type(p) is type(like))
    return (like, *others)


def _raised(group: tuple[StepProgress, ...], error: str) -> bool:
    return any(
        isinstance(p.result, Err) and error_name(type(p.result.error)) == error for p in group
    )


def _ended(group: tuple[StepProgress, ...]) -> Mark | None:
    """How the steps drawn as one element ended, waiting aside: failed wins, then done."""
    if any(isinstance(p.result, Err) for p in group):
        return "failed"
    return "done" if any(isinstance(p.result, Ok) for p in group) else None


def _caught(group: tuple[StepProgress, ...]) -> Mark | None:
    """The mark of the event a signal step waits on: waited on, or caught once it ran."""
    if _waits(group):
        return "frontier"
    return "done" if any(p.result is not None for p in group) else None


def _waits(group: tuple[StepProgress, ...]) -> bool:
    return any(p.waiting for p in group)


def _node(element: _Element) -> Node:
    if element.node is None:
        raise TypeError(f"{element.id} is a boundary event: it has no node of its own")
    return element.node


def _started(group: tuple[StepProgress, ...]) -> bool:
    return any(p.waiting or p.result is not None or _started(p.children) for p in group)


class _Drawing:
    """Turns a progress tree into scopes of elements and flows, then into the XML."""

    def __init__(self, technical: bool) -> None:
        self.technical = technical
        self.counters: dict[str, int] = {}
        self.elements: dict[str, _Element] = {}
        self.signals: dict[str, tuple[str, str]] = {}  # by signal id: the element's id, name
        self.errors: dict[str, str] = {}
        self.catching: list[_Catch] = []
        self.reverse = False  # drawing a loop's way back: its flows go right to left

    # elements and flows -------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        self.counters[prefix] = self.counters.get(prefix, 0) + 1
        return f"{prefix}_{self.counters[prefix]}"

    def _element(
        self,
        scope: _Scope,
        tag: str,
        name: str | None,
        mark: Mark | None,
        *,
        prefix: str,
        size: tuple[float, float] | None,
    ) -> _Element:
        """An element of ``scope``, with a node to place unless ``size`` is None (a boundary
        event sits on its host)."""
        element = _Element(self._id(prefix), tag, _clean(name), mark, scope)
        scope.elements.append(element)
        self.elements[element.id] = element
        if size is None:
            return element
        shape: Shape = "event" if size == EVENT else "gateway" if size == GATEWAY else "activity"
        width, height = _task_size(element.name) if shape == "activity" else size
        element.node = Node(element.id, shape, width, height, backward=self.reverse)
        scope.graph.nodes.append(element.node)
        if shape != "activity" and element.name:
            element.label = _text_size(element.name, LABEL_WIDTH, _LABEL_LETTER, _LINE)
            if shape == "gateway":
                element.label_side = "above"
                element.node.above = element.label[1] + 6
            else:
                element.node.below = element.label[1] + 6
        return element

    def _flow(self, scope: _Scope, exit: _Exit, target: _Element) -> None:
        taken = exit.taken and target.mark is not None
        flow = _Flow(self._id("Flow"), exit.source, target.id, _clean(exit.label), taken)
        scope.flows.append(flow)
        self.elements[exit.source].outgoing.append(flow.id)
        target.incoming.append(flow.id)
        label = None
        if flow.label is not None:
            label = _text_size(flow.label, LABEL_WIDTH, _LABEL_LETTER, _LINE)
        scope.graph.edges.append(Edge(flow.id, flow.source, flow.target, self.reverse, label))

    def _gateway(
        self, scope: _Scope, name: str | None, passed: bool, tag: str = "exclusiveGateway"
    ) -> _Element:
        """A gateway, marked done once the instance ``passed`` it."""
        mark: Mark | None = "done" if passed else None
        return self._element(scope, tag, name, mark, prefix="Gateway", size=GATEWAY)

    def _join(
        self, scope: _Scope, exits: list[_Exit], tag: str = "exclusiveGateway"
    ) -> list[_Exit]:
        """One exit for ``exits``: through a joining gateway when there are several."""
        if len(exits) <= 1:
            return exits
        taken = any(e.taken for e in exits)
        gateway = self._gateway(scope, None, taken, tag)
        for e in exits:
            self._flow(scope, e, gateway)
        return [_Exit(gateway.id, taken)]

    def _split(
        self, scope: _Scope, exits: list[_Exit], name: str | None, passed: bool, tag: str
    ) -> _Element:
        """A gateway splitting the flow after ``exits`` (joined first: no gateway both
        joins and splits)."""
        gateway = self._gateway(scope, name, passed, tag)
        for e in self._join(scope, exits):
            self._flow(scope, e, gateway)
        return gateway

    def _step(
        self,
        scope: _Scope,
        exits: list[_Exit],
        tag: str,
        name: str | None,
        mark: Mark | None,
        *,
        prefix: str = "Task",
        size: tuple[float, float] = TASK,
        description: str | None = None,
    ) -> _Element:
        """A flow node after ``exits`` (joined first when there are several)."""
        element = self._element(scope, tag, name, mark, prefix=prefix, size=size)
        for e in self._join(scope, exits):
            self._flow(scope, e, element)
        if description:
            self._annotate(scope, element, description)
        return element

    def _task(
        self,
        scope: _Scope,
        exits: list[_Exit],
        group: tuple[StepProgress, ...],
        *,
        tag: str,
        name: str,
        errors: tuple[str, ...] = (),
        ended: bool = False,
    ) -> list[_Exit]:
        """A task for the step ``group[0]``, marked as it ran (``ended``: only once it ran,
        for the task handling a signal, as the signal's event is what is waited on); the
        errors it may end with go to their handlers."""
        mark = _ended(group) if ended else _mark(group)
        task = self._step(scope, exits, tag, name, mark, description=group[0].description)
        self._raises(scope, task.id, errors, group)
        return [_Exit(task.id, mark == "done")]

    def _annotate(self, scope: _Scope, element: _Element, text: str) -> None:
        """A text annotation above ``element``, as wide as it (or as its longest word)."""
        node = _node(element)
        longest = max((_text_width(w, _TEXT_LETTER) for w in text.split()), default=0.0)
        width = min(max(node.width, TASK[0], longest + 24), 2 * TASK[0])
        size = (width, _text_size(text, width - 14, _TEXT_LETTER, _TEXT_LINE)[1] + 12)
        node.room = max(node.room, width)
        note = _Annotation(self._id("Annotation"), self._id("Association"), text, element.id, size)
        scope.annotations.append(note)
        node.above += size[1] + _ANNOTATION_GAP

    def _definition(self, tag: str, owner: str, **attrs: str) -> ET.Element:
        return ET.Element(f"{{{BPMN}}}{tag}", {"id": f"{owner}_ed", **attrs})

    def _signal_definition(self, owner: str, signal: SignalProgress) -> ET.Element:
        """A reference to the signal of ``signal`` (one per signal id, or per name for a
        draft), declared once; a name two signals share gets their ids too."""
        key = signal.signal_id or signal.signal_name
        if key not in self.signals:
            taken = {name for _, name in self.signals.values()}
            name = signal.signal_name
            if name in taken:
                name = f"{name} ({signal.signal_id or len(self.signals) + 1})"
            self.signals[key] = (f"Signal_{len(self.signals) + 1}", name)
        return self._definition("signalEventDefinition", owner, signalRef=self.signals[key][0])

    def _error_definition(self, owner: str, error: str | None = None) -> ET.Element:
        if error is None:  # any error
            return self._definition("errorEventDefinition", owner)
        if error not in self.errors:
            self.errors[error] = f"Error_{len(self.errors) + 1}"
        return self._definition("errorEventDefinition", owner, errorRef=self.errors[error])

    def _timer_definition(self, owner: str, timer: TimerProgress) -> ET.Element:
        definition = self._definition("timerEventDefinition", owner)
        if timer.duration is not None:
            duration = ET.SubElement(
                definition, f"{{{BPMN}}}timeDuration", {f"{{{XSI}}}type": "bpmn:tFormalExpression"}
            )
            duration.text = str(_encode_duration(timer.duration))
        return definition

    def _boundary(
        self,
        host: str,
        name: str,
        mark: Mark | None,
        definition: Callable[[str], ET.Element],
    ) -> _Element:
        """A boundary event on ``host``; ``definition`` makes its event definition from the
        event's id."""
        owner = self.elements[host]
        element = self._element(
            owner.scope, "boundaryEvent", name, mark, prefix="Boundary", size=None
        )
        element.attrs["attachedToRef"] = host
        element.details.append(definition(element.id))
        element.label = _text_size(name, LABEL_WIDTH - 20, _LABEL_LETTER, _LINE)
        element.label_side = "boundary"
        node = _node(owner)
        node.attached.append(element.id)
        node.below = max(node.below, BOUNDARY / 2 + element.label[1] + 10)
        if len(node.attached) > 1:  # room for each event and its label
            node.width = max(node.width, len(node.attached) * (LABEL_WIDTH + 10))
        return element

    # errors -------------------------------------------------------------------------------

    def _raises(
        self, scope: _Scope, host: str, errors: tuple[str, ...], group: tuple[StepProgress, ...]
    ) -> None:
        """Records that ``host`` (drawn in ``scope``) may end with ``errors``: each goes to the
        innermost handler of it, from the activity of the handler's scope that holds ``host``."""
        for error in errors:
            for catch in reversed(self.catching):
                if error in catch.handled:
                    at, here = host, scope
                    while here is not catch.scope and here.parent is not None:
                        at, here = here.id, here.parent
                    catch.raised.setdefault((at, error), []).append(group)
                    break

    # scopes -------------------------------------------------------------------------------

    def process(self, root: StepProgress) -> _Scope:
        """The process of ``root``: its content between a start and an end event."""
        scope = _Scope("Process", None)
        self._content(scope, (root,), lambda inner, exits: self._draw((root,), inner, exits))
        return scope

    def _content(
        self,
        scope: _Scope,
        group: tuple[StepProgress, ...],
        draw: Callable[[_Scope, list[_Exit]], list[_Exit]],
    ) -> None:
        """A start event, what ``draw`` draws, and an end event if the flow goes on."""
        started = _started(group)
        start = self._element(
            scope, "startEvent", "Start", "done" if started else None, prefix="Start", size=EVENT
        )
        reverse, self.reverse = self.reverse, False
        exits = draw(scope, [_Exit(start.id, started)])
        if exits:
            done = any(isinstance(p.result, Ok) for p in group)
            self._step(
                scope, exits, "endEvent", "End", "done" if done else None, prefix="End", size=EVENT
            )
        self.reverse = reverse

    def _subprocess(
        self,
        scope: _Scope,
        exits: list[_Exit],
        group: tuple[StepProgress, ...],
        *,
        name: str | None,
        draw: Callable[[_Scope, list[_Exit]], list[_Exit]],
        marker: str | None = None,
    ) -> _Element:
        """An expanded subprocess after ``exits``, holding what ``draw`` draws; ``marker``
        names its loop characteristics."""
        element = self._step(scope, exits, "subProcess", name, _mark(group), prefix="SubProcess")
        if marker is not None:
            element.details.append(ET.Element(f"{{{BPMN}}}{marker}"))
        element.inner = _Scope(element.id, scope)
        _node(element).inner = element.inner.graph
        self._content(element.inner, group, draw)
        return element

    def _drawer(
        self, group: tuple[StepProgress, ...]
    ) -> Callable[[_Scope, list[_Exit]], list[_Exit]]:
        return lambda scope, exits: self._draw(group, scope, exits)

    # the node kinds -----------------------------------------------------------------------

    def _draw(
        self, group: tuple[StepProgress, ...], scope: _Scope, exits: list[_Exit]
    ) -> list[_Exit]:
        """Draws the step ``group[0]`` after ``exits``; the exits after it. The other steps
        of ``group`` are its other runs (a loop's rounds, a for-each's elements), coloured
        together with it."""
        p = group[0]
        if isinstance(p, PureProgress):
            if p.name is None and not p.errors and not p.description:
                return exits  # glue between steps: nothing to draw
            return self._task(
                scope, exits, group, tag="scriptTask", name=p.name or "Pure Step", errors=p.errors
            )
        if isinstance(p, RunIOProgress):
            return self._task(
                scope, exits, group, tag="serviceTask", name=p.name or "Effect", errors=p.errors
            )
        if isinstance(p, SignalProgress):
            return self._signal(_same(group, SignalProgress), scope, exits)
        if isinstance(p, TimerProgress):
            event = self._step(
                scope,
                exits,
                "intermediateCatchEvent",
                _timer_name(p),
                _mark(group),
                prefix="Event",
                size=EVENT,
            )
            event.details.append(self._timer_definition(event.id, p))
            return [_Exit(event.id, event.mark == "done")]
        if isinstance(p, EndProgress):
            self._step(
                scope, exits, "endEvent", p.name or "End", _mark(group), prefix="End", size=EVENT
            )
            return []
        if isinstance(p, RecoveryProgress):
            if not self.technical:
                return exits
            return self._task(scope, exits, group, tag="task", name=p.name or "State Recovery")
        drawers: dict[type[StepProgress], Callable[..., list[_Exit]]] = {
            SequenceProgress: self._sequence,
            CheckpointProgress: self._checkpoint,
            DynamicProgress: self._dynamic,
            HandleErrorProgress: self._handle_error,
            ForkProgress: self._fork,
            LoopProgress: self._loop,
            ParallelProgress: self._parallel,
            ForEachProgress: self._for_each,
            EmbeddedProgress: self._embedded,
            InterruptibleProgress: self._interruptible,
            RetryProgress: self._retry,
        }
        drawer = drawers.get(type(p))
        if drawer is None:
            raise TypeError(f"no BPMN drawing for a {type(p).__name__}")
        return drawer(_same(group, type(p)), scope, exits)

    def _sequence(
        self, group: tuple[SequenceProgress, ...], scope: _Scope, exits: list[_Exit]
    ) -> list[_Exit]:
        for i, step in enumerate(group[0].steps):
            found = (o.steps[i] if len(o.steps) > i else None for o in group)
            exits = self._draw(_parts(found, step), scope, exits)
        return exits

    def _signal(
        self, group: tuple[SignalProgress, ...], scope: _Scope, exits: list[_Exit]
    ) -> list[_Exit]:
        """The signal's catch event (waited on while the step waits), then the task that
        handles it (marked once it ran)."""
        p = group[0]
        event = self._step(
            scope,
            exits,
            "intermediateCatchEvent",
            p.signal_name,
            _caught(group),
            prefix="Event",
            size=EVENT,
        )
        event.details.append(self._signal_definition(event.id, p))
        return self._task(
            scope,
            [_Exit(event.id, event.mark == "done")],
            group,
            tag="serviceTask",
            name=p.name or f"Handle {p.signal_name}",
            errors=p.errors,
            ended=True,
        )

    def _checkpoint(
        self, group: tuple[CheckpointProgress, ...], scope: _Scope, exits: list[_Exit]
    ) -> list[_Exit]:
        """The base; with the technical nodes, then an event for the checkpoint recorded."""
        exits = self._draw(_parts((o.base for o in group), group[0].base), scope, exits)
        if not self.technical:
            return exits
        mark = _mark(group)
        mark = mark if mark in ("frontier", "done") else None
        event = self._step(
            scope, exits, "intermediateThrowEvent", "Checkpoint", mark, prefix="Event", size=EVENT
        )
        return [_Exit(event.id, mark == "done")]

    def _dynamic(
        self, group: tuple[DynamicProgress, ...], scope: _Scope, exits: list[_Exit]
    ) -> list[_Exit]:
        """The base, then the step it led to once known, else a task standing for it."""
        p = group[0]
        exits = self._draw(_parts((o.base for o in group), p.base), scope, exits)
        then = next((o.then for o in reversed(group) if o.then is not None), None)
        if then is None:
            task = self._step(scope, exits, "task", p.name or "Dynamic Step", None)
            return [_Exit(task.id)]
        return self._draw(_parts((o.then for o in group), then), scope, exits)

    def _handle_error(
        self, group: tuple[HandleErrorProgress, ...], scope: _Scope, exits: list[_Exit]
    ) -> list[_Exit]:
        """The base drawn here; an error boundary event for each (activity, handled error)
        the base may end with, all going to the handler; then the two ways joined."""
        p = group[0]
        base = _parts((o.base for o in group), p.base)
        catch = _Catch(frozenset(p.handled), scope)
        self.catching.append(catch)
        try:
            done = self._draw(base, scope, exits) if p.handled else []
        finally:
            self.catching.pop()
        errors: list[_Exit] = []
        for (host, error), raising in catch.raised.items():
            taken = any(_raised(g, error) for g in raising)
            boundary = self._boundary(
                host, error, "done" if taken else None, partial(self._error_definition, error=error)
            )
            errors.append(_Exit(boundary.id, taken))
        if not errors:  # no step declares an error it handles: any error of the base goes there
            failed = any(isinstance(o.base.result, Err) for o in group)
            sub = self._subprocess(scope, exits, base, name=None, draw=self._drawer(base))
            done = [_Exit(sub.id, sub.mark == "done")]
            boundary = self._boundary(
                sub.id, "Error", "done" if failed else None, self._error_definition
            )
            errors.append(_Exit(boundary.id, failed))
        handler = self._draw(_parts((o.handler for o in group), p.handler), scope, errors)
        return self._join(scope, done + handler)

    def _fork(
        self, group: tuple[ForkProgress, ...], scope: _Scope, exits: list[_Exit]
    ) -> list[_Exit]:
        """An exclusive gateway asking the fork's question, a conditional flow per branch,
        and a gateway merging the branches."""
        p = group[0]
        chosen = any(o.chosen is not None for o in group)
        split = self._split(scope, exits, p.name or "Choice", chosen, "exclusiveGateway")
        ends: list[_Exit] = []
        for i, branch in enumerate(p.branches):
            branches = _same(
                _parts((o.branches[i] if len(o.branches) > i else None for o in group), branch),
                ForkBranchProgress,
            )
            body = _parts((b.body for b in branches), branch.body)
            taken = any(b.taken for b in branches)
            label = branch.name or f"Branch {i + 1}"
            ends += self._draw(body, scope, [_Exit(split.id, taken, label)])
        return self._join(scope, ends)

    def _loop(
        self, group: tuple[LoopProgress, ...], scope: _Scope, exits: list[_Exit]
    ) -> list[_Exit]:
        """A merging gateway, the body, an exclusive gateway asking the condition: its
        release answer goes on, its restart answer goes back (through the restart step)
        to the merging gateway."""
        p = group[0]
        rounds = [it for o in group for it in o.iterations]
        started = any(it.body.status != "pending" for it in rounds)
        merge = self._gateway(scope, None, started)
        for e in exits:
            self._flow(scope, e, merge)
        body = _parts((it.body for it in rounds), p.iterations[-1].body)
        ends = self._draw(body, scope, [_Exit(merge.id, started)])
        answered = any(it.outcome is not None for it in rounds)
        condition = self._split(scope, ends, p.name or "Repeat?", answered, "exclusiveGateway")
        back = [_Exit(condition.id, any(it.outcome == p.restart for it in rounds), p.restart)]
        restart = next((it.on_restart for it in reversed(rounds) if it.on_restart), None)
        reverse, self.reverse = self.reverse, not self.reverse
        if restart is not None:
            back = self._draw(_parts((it.on_restart for it in rounds), restart), scope, back)
        for e in back:
            self._flow(scope, e, merge)
        self.reverse = reverse
        return [_Exit(condition.id, any(it.outcome == p.release for it in rounds), p.release)]

    def _parallel(
        self, group: tuple[ParallelProgress, ...], scope: _Scope, exits: list[_Exit]
    ) -> list[_Exit]:
        """A parallel gateway splitting into the branches, and one joining them."""
        p = group[0]
        started = _started(group)
        split = self._split(scope, exits, p.name, started, "parallelGateway")
        ends: list[_Exit] = []
        for i, branch in enumerate(p.branches):
            found = (o.branches[i] if len(o.branches) > i else None for o in group)
            ends += self._join(
                scope, self._draw(_parts(found, branch), scope, [_Exit(split.id, started)])
            )
        return self._join(scope, ends, "parallelGateway")

    def _for_each(
        self, group: tuple[ForEachProgress, ...], scope: _Scope, exits: list[_Exit]
    ) -> list[_Exit]:
        """A parallel multi-instance subprocess holding the body (coloured as every
        element's run of it)."""
        p = group[0]
        runs = (b for o in group for b in (o.body, *(e.body for e in o.elements or ())))
        sub = self._subprocess(
            scope,
            exits,
            group,
            name=p.name or "For Each",
            draw=self._drawer(_parts(runs, p.body)),
            marker="multiInstanceLoopCharacteristics",
        )
        return [_Exit(sub.id, sub.mark == "done")]

    def _embedded(
        self, group: tuple[EmbeddedProgress, ...], scope: _Scope, exits: list[_Exit]
    ) -> list[_Exit]:
        """A subprocess holding the embedded workflow."""
        p = group[0]
        inner = _parts((o.inner for o in group), p.inner)
        sub = self._subprocess(
            scope, exits, group, name=p.name or "Embedded Workflow", draw=self._drawer(inner)
        )
        return [_Exit(sub.id, sub.mark == "done")]

    def _interruptible(
        self, group: tuple[InterruptibleProgress, ...], scope: _Scope, exits: list[_Exit]
    ) -> list[_Exit]:
        """The base as one activity (a subprocess unless it is one already) with the
        trigger's signal or timer as an interrupting boundary event, the handling of the
        interruption after it, and the two ways joined."""
        p = group[0]
        base = _parts((o.base for o in group), p.base)
        if self._single(p.base):  # a timeout of one activity: the event sits on it
            done = self._draw(base, scope, exits)
            host = done[0].source
        else:
            sub = self._subprocess(scope, exits, base, name=None, draw=self._drawer(base))
            done, host = [_Exit(sub.id, sub.mark == "done")], sub.id
        trigger = _parts((o.trigger for o in group), p.trigger)
        fired = any(o.interrupted for o in group) or any(t.result is not None for t in trigger)
        mark: Mark | None = "done" if fired else "frontier" if _waits(trigger) else None
        flow: list[_Exit]
        if isinstance(p.trigger, SignalProgress):
            signal = p.trigger.signal_name
            event = self._boundary(
                host, signal, mark, partial(self._signal_definition, signal=p.trigger)
            )
            flow = self._task(
                scope,
                [_Exit(event.id, fired)],
                trigger,
                tag="serviceTask",
                name=p.trigger.name or f"Handle {signal}",
                errors=p.trigger.errors,
                ended=True,
            )
        elif isinstance(p.trigger, TimerProgress):
            timer = partial(self._timer_definition, timer=p.trigger)
            event = self._boundary(host, _timer_name(p.trigger), mark, timer)
            flow = [_Exit(event.id, fired)]
        else:
            raise TypeError(
                f"an interruption starts with a signal or a timer, not {p.trigger.kind}"
            )
        if p.handler is not None:
            flow = self._draw(_parts((o.handler for o in group), p.handler), scope, flow)
        return self._join(scope, done + flow)

    def _retry(
        self, group: tuple[RetryProgress, ...], scope: _Scope, exits: list[_Exit]
    ) -> list[_Exit]:
        """The retried step with a standard loop marker: on its task, or on a subprocess
        holding it; the failed attempts recorded, as an annotation."""
        p = group[0]
        base = _parts((o.base for o in group), p.base)
        if isinstance(p.base, RunIOProgress | PureProgress | RecoveryProgress) and self._single(
            p.base
        ):
            exits = self._draw(base, scope, exits)
            element = self.elements[exits[0].source]
            element.details.append(ET.Element(f"{{{BPMN}}}standardLoopCharacteristics"))
        else:
            element = self._subprocess(
                scope,
                exits,
                group,
                name=p.name,
                draw=self._drawer(base),
                marker="standardLoopCharacteristics",
            )
            exits = [_Exit(element.id, element.mark == "done")]
        failing = [o for o in group if o.failed_attempts]
        if failing:
            last = failing[-1]
            count = last.failed_attempts or 0
            text = f"{count} failed attempt{'s' if count > 1 else ''}"
            if last.not_before is not None:
                text += f", the next not before {last.not_before.isoformat(sep=' ')}"
            self._annotate(scope, element, text)
        return exits

    def _single(self, p: StepProgress) -> bool:
        """Whether ``p`` is drawn as one activity and nothing else."""
        if isinstance(p, RunIOProgress | RetryProgress | EmbeddedProgress | ForEachProgress):
            return True
        if isinstance(p, PureProgress):
            return p.name is not None or bool(p.errors) or bool(p.description)
        if isinstance(p, RecoveryProgress):
            return self.technical
        if isinstance(p, CheckpointProgress):
            return not self.technical and self._single(p.base)
        return False

    # XML ----------------------------------------------------------------------------------

    def xml(self, process: _Scope, name: str) -> str:
        """The whole document: the process (its id made of ``name``), its signals and
        errors, and its diagram."""
        placed = layout(process.graph, *_ORIGIN)
        process_id = "Process_" + re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        definitions = ET.Element(
            f"{{{BPMN}}}definitions",
            {
                "id": "Definitions_1",
                "targetNamespace": "urn:workflows4py:bpmn",
                "exporter": "workflows4py",
            },
        )
        container = ET.SubElement(
            definitions,
            f"{{{BPMN}}}process",
            {"id": process_id, "name": _clean(name) or "Workflow", "isExecutable": "false"},
        )
        self._write(process, container)
        for signal_id, signal in self.signals.values():
            ET.SubElement(definitions, f"{{{BPMN}}}signal", {"id": signal_id, "name": signal})
        for error, error_id in self.errors.items():
            ET.SubElement(definitions, f"{{{BPMN}}}error", {"id": error_id, "name": error})
        diagram = ET.SubElement(definitions, f"{{{BPMNDI}}}BPMNDiagram", {"id": "BPMNDiagram_1"})
        plane = ET.SubElement(
            diagram, f"{{{BPMNDI}}}BPMNPlane", {"id": "BPMNPlane_1", "bpmnElement": process_id}
        )
        self._plane(process, plane, placed)
        ET.indent(definitions, "  ")
        text = ET.tostring(definitions, encoding="unicode", xml_declaration=False)
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n"

    def _write(self, scope: _Scope, container: ET.Element) -> None:
        for element in scope.elements:
            attrs = {"id": element.id}
            if element.name:
                attrs["name"] = element.name
            attrs.update(element.attrs)
            xml = ET.SubElement(container, f"{{{BPMN}}}{element.tag}", attrs)
            for tag, refs in (("incoming", element.incoming), ("outgoing", element.outgoing)):
                for ref in refs:
                    ET.SubElement(xml, f"{{{BPMN}}}{tag}").text = ref
            xml.extend(element.details)
            if element.inner is not None:
                self._write(element.inner, xml)
        for flow in scope.flows:
            attrs = {"id": flow.id}
            if flow.label:
                attrs["name"] = flow.label
            attrs |= {"sourceRef": flow.source, "targetRef": flow.target}
            xml = ET.SubElement(container, f"{{{BPMN}}}sequenceFlow", attrs)
            if flow.label:
                condition = ET.SubElement(
                    xml,
                    f"{{{BPMN}}}conditionExpression",
                    {f"{{{XSI}}}type": "bpmn:tFormalExpression"},
                )
                condition.text = flow.label
        for note in scope.annotations:
            xml = ET.SubElement(container, f"{{{BPMN}}}textAnnotation", {"id": note.id})
            ET.SubElement(xml, f"{{{BPMN}}}text").text = _clean(note.text)
            ET.SubElement(
                container,
                f"{{{BPMN}}}association",
                {
                    "id": note.association,
                    "associationDirection": "None",
                    "sourceRef": note.host,
                    "targetRef": note.id,
                },
            )

    def _plane(self, scope: _Scope, plane: ET.Element, placed: Layout) -> None:
        for element in scope.elements:
            box = placed.boxes[element.id]
            attrs = {"id": f"{element.id}_di", "bpmnElement": element.id}
            if element.tag == "subProcess":
                attrs["isExpanded"] = "true"
            if element.tag == "exclusiveGateway":
                attrs["isMarkerVisible"] = "true"
            shape = ET.SubElement(plane, f"{{{BPMNDI}}}BPMNShape", attrs)
            _colour(shape, element.mark)
            _bounds(shape, box)
            if element.label is not None and element.name:
                _label(shape, _label_box(box, element.label, element.label_side), element.mark)
        for flow in scope.flows:
            edge = ET.SubElement(
                plane, f"{{{BPMNDI}}}BPMNEdge", {"id": f"{flow.id}_di", "bpmnElement": flow.id}
            )
            if flow.taken:
                edge.set(f"{{{BIOC}}}stroke", _TAKEN)
                edge.set(f"{{{COLOR}}}border-color", _TAKEN)
            for x, y in placed.waypoints[flow.id]:
                ET.SubElement(edge, f"{{{DI}}}waypoint", {"x": _n(x), "y": _n(y)})
            if flow.id in placed.labels:
                _label(edge, placed.labels[flow.id], "done" if flow.taken else None)
        for note in scope.annotations:
            host = placed.boxes[note.host]
            width, height = note.size
            box = Box(host.cx - width / 2, host.y - _ANNOTATION_GAP - height, width, height)
            shape = ET.SubElement(
                plane, f"{{{BPMNDI}}}BPMNShape", {"id": f"{note.id}_di", "bpmnElement": note.id}
            )
            _bounds(shape, box)
            edge = ET.SubElement(
                plane,
                f"{{{BPMNDI}}}BPMNEdge",
                {"id": f"{note.association}_di", "bpmnElement": note.association},
            )
            for x, y in ((host.cx, host.y), (host.cx, box.bottom)):
                ET.SubElement(edge, f"{{{DI}}}waypoint", {"x": _n(x), "y": _n(y)})
        for element in scope.elements:
            if element.inner is not None:
                self._plane(element.inner, plane, placed)


# -- helpers ------------------------------------------------------------------------------------


def _timer_name(timer: TimerProgress) -> str:
    duration = "dynamic" if timer.duration is None else duration_text(timer.duration)
    return f"{timer.name} ({duration})" if timer.name else duration


_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str | None) -> str | None:
    """``text`` without the characters XML 1.0 cannot hold."""
    return None if text is None else _INVALID.sub("", text)


def _n(value: float) -> str:
    return str(round(value))


def _bounds(parent: ET.Element, box: Box) -> None:
    ET.SubElement(
        parent,
        f"{{{DC}}}Bounds",
        {"x": _n(box.x), "y": _n(box.y), "width": _n(box.width), "height": _n(box.height)},
    )


def _colour(shape: ET.Element, mark: Mark | None) -> None:
    if mark is None:
        return
    stroke, fill = COLOURS[mark]
    shape.set(f"{{{BIOC}}}stroke", stroke)
    if fill is not None:
        shape.set(f"{{{BIOC}}}fill", fill)
        shape.set(f"{{{COLOR}}}background-color", fill)
    shape.set(f"{{{COLOR}}}border-color", stroke)


def _label(parent: ET.Element, box: Box, mark: Mark | None) -> None:
    label = ET.SubElement(parent, f"{{{BPMNDI}}}BPMNLabel")
    if mark is not None:
        label.set(f"{{{COLOR}}}color", COLOURS[mark][0])
    _bounds(label, box)


def _label_box(box: Box, size: tuple[float, float], side: str) -> Box:
    width, height = size
    if side == "above":
        return Box(box.cx - width / 2, box.y - 4 - height, width, height)
    if side == "boundary":
        return Box(box.cx + 6, box.bottom + 3, width, height)
    return Box(box.cx - width / 2, box.bottom + 4, width, height)


_NARROW = set("iljtfrI.,;:'!|() ")
_WIDE = set("mwMW@")


def _text_width(text: str, average: float) -> float:
    """An estimate of ``text``'s width in a sans-serif font whose average letter is
    ``average`` wide."""
    width = 0.0
    for char in text:
        if char in _NARROW:
            width += average * 0.55
        elif char in _WIDE:
            width += average * 1.5
        elif char.isupper() or char.isdigit():
            width += average * 1.2
        else:
            width += average
    return width


def _wrap(text: str, width: float, average: float) -> list[str]:
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if line and _text_width(candidate, average) > width:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines


def _text_size(text: str, width: float, average: float, line: float) -> tuple[float, float]:
    """The box ``text`` needs when wrapped at ``width``."""
    lines = _wrap(text, width, average)
    widest = max(_text_width(line_text, average) for line_text in lines)
    return (
        min(width, max(widest * 1.15 + 10, 20.0)) if len(lines) == 1 else width,
        line * len(lines),
    )


def _task_size(name: str | None) -> tuple[float, float]:
    """A task's size: the usual 100 by 80, wider when its name needs more than four lines."""
    width = TASK[0]
    while len(_wrap(name or "", width - 12, _TEXT_LETTER)) > 4 and width < 240:
        width += 20
    return (width, TASK[1])
