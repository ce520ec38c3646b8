"""Mermaid flowcharts of a definition or of an instance's progress.

The chart is built from the progress model alone, in one walk: each node kind adds its
shapes and joins them to the loose ends of what came before (``_Chart.ends``). Domain
errors raised by a step wait in ``_Chart.errors`` until an error handler around it takes
them; an id is the node's path in the progress tree, so a shape can be traced back to its
node (and to the JSON document's ``frontier`` paths).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from workflows4py.definition import WIO, Err, Ok, Workflow, error_name
from workflows4py.engine import (
    CheckpointProgress,
    DynamicProgress,
    EmbeddedProgress,
    EndProgress,
    ForEachProgress,
    ForkProgress,
    HandleErrorProgress,
    InterruptibleProgress,
    LoopIterationProgress,
    LoopProgress,
    ParallelProgress,
    PureProgress,
    RecoveryProgress,
    RetryProgress,
    RunIOProgress,
    SignalProgress,
    StepProgress,
    TimerProgress,
    progress_of,
)

from ._text import duration_text

__all__ = ["mermaid", "mermaid_live_url"]

Status = Literal["done", "failed", "waiting", "pending", "skipped"]
EdgeKind = Literal["flow", "error", "note", "mark", "order"]

# the classDef of each class a chart may use (a chart defines those it uses)
_STYLES: dict[str, str] = {
    "executed": "fill:#c8e6c9,stroke:#2e7d32,color:#1b1b1b",
    "failed": "fill:#ffcdd2,stroke:#c62828,color:#1b1b1b",
    "waiting": "fill:#fff59d,stroke:#f57f17,stroke-width:3px,color:#1b1b1b",
    "skipped": "fill:#f5f5f5,stroke:#bdbdbd,color:#9e9e9e",
    "terminated": "fill:#e0e0e0,stroke:#424242,stroke-width:3px,color:#1b1b1b",
    "parked": "fill:#ffe0b2,stroke:#e65100,stroke-width:3px,color:#1b1b1b",
    "checkpoint": "fill:transparent,stroke-dasharray:5 5,stroke:#616161",
    "checkpoint-executed": "fill:transparent,stroke-dasharray:5 5,stroke:#2e7d32",
}
_TAKEN_STYLES = {
    "flow": "stroke:#2e7d32,stroke-width:3px",
    "error": "stroke:#c62828,stroke-width:3px",
}
_CLASS_OF: dict[Status, str | None] = {
    "done": "executed",
    "failed": "failed",
    "waiting": "waiting",
    "skipped": "skipped",
    "pending": None,
}
_REACHED = ("done", "failed", "waiting")
# the shapes every Mermaid version draws, in the classic syntax; others in Mermaid 11's
_BRACKETS = {None: ("[", "]"), "circle": ("((", "))"), "stadium": ("([", "])"), "hex": ("{{", "}}")}
_ARROWS = {"flow": "-->", "error": "-.->", "note": "-.-", "mark": "-.->", "order": "~~~"}
# Unicode icons: Font Awesome's ``fa:`` icons show only where its font is loaded (not on GitHub)
_ENVELOPE, _CLOCK, _BOLT, _REDO, _WRENCH = "📨", "⏰", "⚡", "🔁", "🔧"
_LIVE_EDITOR = "https://mermaid.live/edit#base64:"


def mermaid(
    subject: StepProgress | WIO[Any, Any, Any] | type[Workflow[Any, Any]],
    *,
    technical: bool = False,
) -> str:
    """A Mermaid flowchart of a progress, or of a definition (or a Workflow subclass's)
    with nothing run; ``docs/diagrams.md`` shows the conventions.

    Steps are boxes between a Start and an End circle; a signal is a stadium with an
    envelope followed by the step handling it, a timer a stadium with a clock and its
    duration, fork and loop conditions hexagons with their answers on the edges, parallel
    branches run between two bars, an interruptible part is a box its trigger leaves, a
    for-each a box of its own, and a handled domain error a dotted edge to its handler
    labelled with the error's name. With ``technical`` the checkpoints and recovery points
    show too. A progress colours what ran, what failed, what was skipped, and the frontier
    (what the instance waits on now), and unrolls the rounds of loops. The text ends with a
    newline; the same input always gives the same text.
    """
    progress = subject if isinstance(subject, StepProgress) else progress_of(subject)
    return _Chart(progress, technical).render()


def mermaid_live_url(text: str) -> str:
    """A link that opens ``text`` (a Mermaid diagram) in the Mermaid Live Editor: the
    ``#base64:`` form of the editor's state ``{"code": text}``."""
    state = json.dumps({"code": text}, separators=(",", ":")).encode("utf-8")
    return _LIVE_EDITOR + base64.urlsafe_b64encode(state).decode("ascii")


# -- the chart's elements -----------------------------------------------------------------------


@dataclass
class _Shape:
    id: str
    label: str
    shape: str | None = None  # None: a plain box
    status: Status = "pending"
    css: str | None = None  # a class of its own, else the status's

    def line(self) -> str:
        if self.shape in _BRACKETS:
            opening, closing = _BRACKETS[self.shape]
            return f'{self.id}{opening}"{self.label}"{closing}'
        return f'{self.id}@{{ shape: {self.shape}, label: "{self.label}" }}'


@dataclass
class _Edge:
    source: str
    target: str
    label: str | None = None
    kind: EdgeKind = "flow"
    taken: bool = False

    def line(self) -> str:
        arrow = _ARROWS[self.kind]
        label = "" if self.label is None else f'|"{self.label}"|'
        return f"{self.source} {arrow}{label} {self.target}"


@dataclass
class _Box:
    """A subgraph."""

    id: str
    title: str
    css: str | None = None
    parts: list[_Shape | _Edge | _Box] = field(default_factory=list)


@dataclass(frozen=True)
class _End:
    """A loose end: where the next shape's incoming edge starts, and its label.

    ``strict``: the edge counts as taken only if the next step completed (an interruption's
    trigger waits all along the interrupted part, taken or not). ``answer``: whether a
    condition gave the answer this edge stands for (None: not a condition's edge).
    """

    source: str
    label: str | None = None
    strict: bool = False
    answer: bool | None = None


@dataclass(frozen=True)
class _Raised:
    """Domain errors a drawn step may end with, waiting for a handler."""

    source: str
    names: tuple[str, ...]


def _escape(text: str) -> str:
    """``text`` as a quoted Mermaid label shows it (entity codes for what the label syntax
    reads)."""
    for char, code in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(char, code)
    return text.replace("`", "#96;").replace("\n", " ")


def _lines(*parts: str) -> str:
    return "<br>".join(_escape(part) for part in parts)


def _instant(at: datetime) -> str:
    if at.utcoffset() == timedelta(0):
        return f"{at:%Y-%m-%d %H:%M:%S} UTC"
    return at.isoformat(sep=" ", timespec="seconds")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _status(p: StepProgress, dead: bool) -> Status:
    if isinstance(p.result, Ok):
        return "done"
    if p.result is not None:
        return "failed"
    if p.waiting:
        return "waiting"
    return "skipped" if dead else "pending"


def _started(root: StepProgress) -> bool:
    marked = root.terminated is not None or root.parked is not None
    return marked or any(p.waiting or p.executed for p in root.walk())


# -- the walk ---------------------------------------------------------------------------------


class _Chart:
    def __init__(self, root: StepProgress, technical: bool) -> None:
        self.root = root
        self.technical = technical
        self.top = _Box("", "")
        self.boxes: list[_Box] = [self.top]
        self.box_of: dict[str, _Box] = {}
        self.scope: dict[str, tuple[str, ...]] = {}  # shape or box id -> the boxes it is in
        self.status: dict[str, Status] = {}
        self.ends: list[_End] = []
        self.errors: list[_Raised] = []  # raised, not yet handled
        self.routed: list[_Raised] = []  # handled, to link to the next step drawn
        self.steps: list[str] = []  # ids of the steps drawn, in order
        self.completed: dict[str, int] = {}  # step id -> its index of completion
        self.retry: RetryProgress | None = None
        self.retry_told = False

    # -- building blocks

    def _where(self) -> tuple[str, ...]:
        return tuple(box.id for box in self.boxes[1:])

    def shape(self, shape: _Shape, p: StepProgress | None = None) -> str:
        """Adds ``shape`` in the current box (not linked)."""
        self.boxes[-1].parts.append(shape)
        self.scope[shape.id] = self._where()
        self.status[shape.id] = shape.status
        if p is not None and p.executed and p.index is not None and not p.children:
            self.completed[shape.id] = p.index
        return shape.id

    def link(self, edge: _Edge, strict: bool = False, answer: bool | None = None) -> None:
        """Adds ``edge`` in the innermost box holding both its ends (an edge written in a
        box pulls a shape defined outside into it)."""
        source, target = self.scope[edge.source], self.scope[edge.target]
        common = 0
        while common < min(len(source), len(target)) and source[common] == target[common]:
            common += 1
        home = self.top if common == 0 else self.box_of[source[common - 1]]
        passed = "failed" if edge.kind == "error" else "done"
        reached = ("done", "failed") if strict else _REACHED
        left = self.status[edge.source] == passed if answer is None else answer
        if edge.kind in ("flow", "error"):
            edge.taken = left and self.status[edge.target] in reached
        home.parts.append(edge)

    def step(self, shape: _Shape, p: StepProgress | None = None) -> str:
        """Adds ``shape`` as the next step: the loose ends and the routed errors lead to it,
        and it is the only loose end."""
        node = self.shape(shape, p)
        self.steps.append(node)
        self.join(node)
        for raised in self.routed:
            self.link(_Edge(raised.source, node, _bolt(raised.names), "error"))
        self.routed = []
        self.ends = [_End(node)]
        return node

    def join(self, target: str) -> None:
        """Links the loose ends to ``target``."""
        for end in self.ends:
            self.link(_Edge(end.source, target, end.label), end.strict, end.answer)
        self.ends = []

    def note(self, target: str, text: str) -> None:
        node = self.shape(_Shape(f"{target}_note", _lines(text), "braces"))
        self.link(_Edge(target, node, kind="note"))

    def raises(self, source: str, p: StepProgress, names: tuple[str, ...]) -> None:
        if isinstance(p.result, Err):
            failed = error_name(type(p.result.error))
            names = names if failed in names else (*names, failed)
        if names:
            self.errors.append(_Raised(source, names))

    def open(self, box_id: str, title: str, css: str | None = None) -> _Box:
        box = _Box(box_id, _lines(title), css)
        self.boxes[-1].parts.append(box)
        self.box_of[box_id] = box
        self.scope[box_id] = self._where()
        self.boxes.append(box)
        return box

    def close(self) -> None:
        self.boxes.pop()

    def entry(self, mark: int) -> str | None:
        """The first step drawn since ``len(self.steps)`` was ``mark``."""
        return self.steps[mark] if len(self.steps) > mark else None

    # -- the chart

    def render(self) -> str:
        root = self.root
        started = _started(root)
        self.step(_Shape("w_start", "Start", "circle", "done" if started else "pending"))
        self.node(root, "s", root.terminated is not None)
        finished = isinstance(root.result, Ok)
        stopped = root.terminated is not None or root.result is not None
        if self.ends or self.routed:
            status: Status = "done" if finished else "skipped" if stopped else "pending"
            self.step(_Shape("w_end", "End", "circle", status))
        if self.errors:
            failed = isinstance(root.result, Err)
            status = "failed" if failed else "skipped" if stopped else "pending"
            node = self.shape(_Shape("w_failed", "Failed", "circle", status))
            for raised in self.errors:
                self.link(_Edge(raised.source, node, _bolt(raised.names), "error"))
        self.marks()
        return _write(self.top)

    def marks(self) -> None:
        root = self.root
        last = max(self.completed, key=self.completed.__getitem__, default="w_start")
        if root.terminated is not None:
            mark = root.terminated
            self.mark("w_terminated", "Terminated", "terminated", [last])
            self.note("w_terminated", f"{mark.reason} ({_instant(mark.terminated_at)})")
        if root.parked is not None:
            waiting = [i for i, s in self.status.items() if s == "waiting"]
            self.mark("w_parked", "Parked", "parked", waiting or [last])
            since = "" if root.parked.at is None else f" (since {_instant(root.parked.at)})"
            self.note("w_parked", root.parked.reason + since)

    def mark(self, node: str, label: str, css: str, sources: list[str]) -> None:
        self.shape(_Shape(node, label, "circle", css=css))
        for source in sources:
            self.link(_Edge(source, node, kind="mark"))

    # -- the node kinds

    def node(self, p: StepProgress, at: str, dead: bool) -> None:
        """Draws ``p`` (its id ``at``); ``dead``: what did not run there never will."""
        mark = len(self.steps)
        if isinstance(p, SignalProgress):
            self.signal(p, at, dead)
        elif isinstance(p, TimerProgress):
            self.timer(p, at, dead)
        elif isinstance(p, PureProgress | RunIOProgress):
            if isinstance(p, RunIOProgress) or p.name or p.errors or p.description:
                self.task(p, at, dead, p.name or "@computation", errors=p.errors)
            elif isinstance(p.result, Err):
                self.task(p, at, dead, "@computation")
        elif isinstance(p, EndProgress):
            status: Status = "done" if p.waiting else _status(p, dead)
            self.step(_Shape(at, "End", "circle", status), p)
            self.ends = []  # nothing follows an end
        elif isinstance(p, RecoveryProgress):
            if self.technical:
                label = _lines(f"{_WRENCH} {p.name or 'State Recovery'}")
                self.step(_Shape(at, label, "hex", _status(p, dead)), p)
        else:
            self.composite(p, at, dead or p.result is not None)
        # a note goes to the node's own shape (a signal's: the step handling it), else to
        # the first step drawn for it
        target = at if at in self.status else self.entry(mark)
        if p.description and target is not None:
            self.note(target, p.description)

    def composite(self, p: StepProgress, at: str, dead: bool) -> None:
        if isinstance(p, HandleErrorProgress):
            self.handle_error(p, at, dead)
        elif isinstance(p, ForkProgress):
            self.fork(p, at, dead)
        elif isinstance(p, LoopProgress):
            self.loop(p, at, dead)
        elif isinstance(p, ParallelProgress):
            self.parallel(p, at, dead)
        elif isinstance(p, InterruptibleProgress):
            self.interruptible(p, at, dead)
        elif isinstance(p, ForEachProgress):
            self.for_each(p, at, dead)
        elif isinstance(p, RetryProgress):
            self.retried(p, at, dead)
        elif isinstance(p, CheckpointProgress) and self.technical:
            css = "checkpoint-executed" if p.executed else "checkpoint"
            self.boxed(p.base, at, "Checkpoint", dead, css)
        elif isinstance(p, EmbeddedProgress) and p.name:
            self.boxed(p.inner, at, p.name, dead)
        elif isinstance(p, DynamicProgress) and p.then is None:
            self.node(p.base, f"{at}_0", dead)
            self.task(p, f"{at}_next", dead, "@dynamic")
        else:  # a sequence, a checkpoint or an embedding drawn as what they hold
            for i, child in enumerate(p.children):
                self.node(child, f"{at}_{i}", dead)

    def label(self, text: str, p: StepProgress) -> str:
        """A box's label: the retry icon on a retried step, the retry's state on the first."""
        if self.retry is None:
            return _lines(text)
        parts = [f"{_REDO} {text}"]
        retry = self.retry
        if not self.retry_told:
            self.retry_told = True
            if retry.failed_attempts:
                parts.append(_plural(retry.failed_attempts, "failed attempt"))
            if retry.not_before is not None and not retry.executed:
                parts.append(f"next attempt not before {_instant(retry.not_before)}")
        return _lines(*parts)

    def task(
        self,
        p: StepProgress,
        at: str,
        dead: bool,
        name: str,
        *,
        errors: tuple[str, ...] = (),
        status: Status | None = None,
    ) -> None:
        status = _status(p, dead) if status is None else status
        node = self.step(_Shape(at, self.label(name, p), None, status), p)
        self.raises(node, p, errors)

    def signal(self, p: SignalProgress, at: str, dead: bool) -> None:
        status = _status(p, dead)
        arrived: Status = "done" if status in ("done", "failed") else status
        label = _lines(f"{_ENVELOPE} {p.signal_name}")
        self.step(_Shape(f"{at}_signal", label, "stadium", arrived))
        # the signal is what is waited for, not its handling
        handling: Status = "pending" if status == "waiting" else status
        named = p.name if p.name and p.name != p.signal_name else f"Handle {p.signal_name}"
        self.task(p, at, dead, named, errors=p.errors, status=handling)

    def timer(self, p: TimerProgress, at: str, dead: bool) -> None:
        length = "dynamic" if p.duration is None else duration_text(p.duration)
        title = f"{_CLOCK} {p.name} ({length})" if p.name else f"{_CLOCK} ({length})"
        parts = [title]
        if p.waiting and p.resume_at is not None:
            parts.append(f"until {_instant(p.resume_at)}")
        self.step(_Shape(at, _lines(*parts), "stadium", _status(p, dead)), p)

    def handle_error(self, p: HandleErrorProgress, at: str, dead: bool) -> None:
        mark = len(self.errors)
        self.node(p.base, f"{at}_0", dead)
        caught = self.errors[mark:] or [_Raised(end.source, ("error",)) for end in self.ends]
        del self.errors[mark:]
        passed, self.ends = self.ends, []
        self.routed = [*self.routed, *caught]
        self.node(p.handler, f"{at}_1", dead)
        self.ends = [*passed, *self.ends]

    def fork(self, p: ForkProgress, at: str, dead: bool) -> None:
        answered: Status = "done" if p.chosen is not None else "skipped" if dead else "pending"
        condition = self.step(_Shape(at, _lines(p.name or " "), "hex", answered), p)
        ends: list[_End] = []
        for i, branch in enumerate(p.branches):
            label = _lines(branch.name) if branch.name else None
            self.ends = [_End(condition, label, answer=p.chosen == i)]
            not_taken = p.chosen is not None and i != p.chosen
            self.node(branch.body, f"{at}_{i}_0", dead or not_taken)
            ends += self.ends
        self.ends = ends

    def loop(self, p: LoopProgress, at: str, dead: bool) -> None:
        rounds = p.iterations
        started = p.restarts > 0 or any(r.waiting or r.executed for r in rounds)
        if rounds and rounds[0].number > 1:
            earlier = _plural(rounds[0].number - 1, "earlier round")
            self.step(_Shape(f"{at}_earlier", _lines(f"⋯ {earlier}"), None, "done"))
        for i, round_ in enumerate(rounds):
            last = i == len(rounds) - 1
            self.round(p, round_, f"{at}_{i}", dead, started=started, last=last, first=i == 0)

    def round(
        self,
        p: LoopProgress,
        r: LoopIterationProgress,
        at: str,
        dead: bool,
        *,
        started: bool,
        last: bool,
        first: bool,
    ) -> None:
        """One round; the last one also draws the way back to the body (the rounds ahead),
        and so does a round released with no round before it (the restart answer and step
        not taken, drawn nowhere else)."""
        mark = len(self.steps)
        self.node(r.body, f"{at}_0", dead)
        name = p.name or " "
        title = _lines(name, f"round {r.number}") if started else _lines(name)
        answered: Status = "done" if r.outcome is not None else "skipped" if dead else "pending"
        condition = self.step(_Shape(at, title, "hex", answered), r)
        release = _End(condition, _lines(p.release), answer=r.outcome == p.release)
        if r.outcome == p.release and not first:
            self.ends = [release]
            return
        self.ends = [_End(condition, _lines(p.restart), answer=r.outcome == p.restart)]
        if r.on_restart is not None:
            self.node(r.on_restart, f"{at}_1", dead)
        if last:  # the next rounds are ahead: drawn as the loop's edge back
            self.join(self.entry(mark) or condition)
            self.ends = [release]

    def parallel(self, p: ParallelProgress, at: str, dead: bool) -> None:
        begun = any(b.waiting or b.executed for b in p.branches)
        split = self.step(_Shape(at, "", "fork", "done" if begun else _status(p, dead)))
        ends: list[_End] = []
        for i, branch in enumerate(p.branches):
            self.ends = [_End(split)]
            self.node(branch, f"{at}_{i}", dead)
            ends += self.ends
        self.ends = ends
        joined: Status = "done" if p.executed else "skipped" if dead else "pending"
        self.step(_Shape(f"{at}_join", "", "fork", joined))

    def interruptible(self, p: InterruptibleProgress, at: str, dead: bool) -> None:
        self.open(at, " ")
        self.status[at] = "done" if _status(p, dead) in _REACHED else "pending"
        self.node(p.base, f"{at}_0", dead or p.interrupted)
        self.close()
        passed, self.ends = self.ends, [_End(at, strict=True)]
        self.node(p.trigger, f"{at}_1", dead)
        if p.handler is not None:
            self.node(p.handler, f"{at}_2", dead)
        self.ends = [*self.ends, *passed]

    def boxed(
        self, inner: StepProgress, at: str, title: str, dead: bool, css: str | None = None
    ) -> None:
        self.open(at, title, css)
        self.node(inner, f"{at}_0", dead)
        self.close()

    def for_each(self, p: ForEachProgress, at: str, dead: bool) -> None:
        before, self.ends = self.ends, []
        self.open(at, f"≡ {p.name or 'For Each'}")
        self.status[at] = _status(p, dead)
        self.steps.append(at)
        if p.elements is None:
            self.node(p.body, f"{at}_0", dead)
        elif not p.elements:
            self.shape(_Shape(f"{at}_none", "no elements", "text"))
        for i, element in enumerate(p.elements or ()):
            self.open(f"{at}_{i}", element.key)
            self.status[f"{at}_{i}"] = _status(element, dead)
            self.ends = []
            self.node(element.body, f"{at}_{i}_0", dead)
            self.close()
            if i:  # an invisible edge keeps the elements in their order
                self.link(_Edge(f"{at}_{i - 1}", f"{at}_{i}", kind="order"))
        self.close()
        self.ends = before
        self.join(at)
        self.ends = [_End(at)]

    def retried(self, p: RetryProgress, at: str, dead: bool) -> None:
        outer = self.retry, self.retry_told
        self.retry, self.retry_told = p, False
        self.node(p.base, f"{at}_0", dead)
        self.retry, self.retry_told = outer


def _bolt(names: tuple[str, ...]) -> str:
    return _lines(f"{_BOLT} {', '.join(names)}")


def _write(top: _Box) -> str:
    lines = ["flowchart TD"]
    edges: list[_Edge] = []
    classes: dict[str, list[str]] = {}

    def write(box: _Box) -> None:
        for part in box.parts:
            if isinstance(part, _Box):
                lines.append(f'subgraph {part.id} ["{part.title}"]')
                write(part)
                lines.append("end")
                css = part.css
            elif isinstance(part, _Edge):
                lines.append(part.line())
                edges.append(part)
                continue
            else:
                lines.append(part.line())
                css = part.css or _CLASS_OF[part.status]
            if css is not None:
                classes.setdefault(css, []).append(part.id)

    write(top)
    used = [css for css in _STYLES if css in classes]
    lines += [f"classDef {css} {_STYLES[css]}" for css in used]
    lines += [f"class {','.join(classes[css])} {css}" for css in used]
    for kind, style in _TAKEN_STYLES.items():
        taken = [str(i) for i, edge in enumerate(edges) if edge.taken and edge.kind == kind]
        if taken:
            lines.append(f"linkStyle {','.join(taken)} {style}")
    return "\n".join(lines) + "\n"
