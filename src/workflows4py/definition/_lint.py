"""The linter: mistakes found in a definition before it runs.

Rules (ids are stable, for ``ignore=``):

``busy-loop``
    A loop whose body and ``on_restart`` contain nothing that waits or records (no signal,
    timer, effect, recovery or checkpoint): it would spin without end. The engine stops
    such a loop only when it runs.
``clashing-signals``
    One signal can be awaited at once by two steps, so one of them can never receive it.
``clashing-events``
    One event class can be taken at once by two steps, so an event recorded for one could be
    handed to the other on replay. The runtime refuses such an event when it happens live;
    the linter finds the possibility up front.
``unnecessary-error-handler``
    ``handle_error_with`` around steps none of which can fail.

"At once" means both steps can be on the frontier together. Two kinds of node put steps
there together: a :class:`~workflows4py._wio.Parallel` (every step of one branch can
await while any step of another does) and an interruption (its trigger awaits as long as
any step of its base does); a checkpoint and a stateful retry also take their own events
while any step inside them awaits. Steps in a sequence, a fork, a loop or an error handler
never await together. The analysis assumes every step can be reached (it does not evaluate
conditions) and cannot see the step a ``flat_map`` computes at run time. A for-each
element is a scope of its own: its signals are routed by key and its events are wrapped,
so they never clash with steps outside it; an embedded workflow's events are wrapped too,
but its signals are not. Whether a wrapper event class clashes with an outer step is
beyond the linter. Timers never clash: they take only their own start and release events,
matched by timer name and instant, and the runtime records those in the order replay
offers them.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from workflows4py._errors import DefinitionError, WorkflowError

from ._draft import DraftSignal
from ._wio import (
    WIO,
    Checkpoint,
    Embedded,
    End,
    FlatMap,
    ForEach,
    HandleErrorWith,
    HandleSignal,
    Interruptible,
    Loop,
    Parallel,
    Pure,
    Recovery,
    Retry,
    RunIO,
    StatefulRetry,
    Timer,
    _checked_result,
    definition_children,
    first_leaf,
    walk_with_paths,
)
from ._workflow import Workflow

__all__ = [
    "LINT_RULES",
    "LintError",
    "LintIssue",
    "assert_clean",
    "lint",
    "lint_workflow",
]

Node = WIO[Any, Any, Any]

LINT_RULES = ("busy-loop", "clashing-signals", "clashing-events", "unnecessary-error-handler")
"""The ids of the linter's rules."""


@dataclass(frozen=True, slots=True)
class LintIssue:
    """A problem the linter found: its rule id, a message, and where (a walk path)."""

    rule: str
    message: str
    path: tuple[str, ...]

    def __str__(self) -> str:
        return f"[{self.rule}] {' > '.join(self.path)}: {self.message}"


class LintError(WorkflowError):
    """A definition has lint issues; ``issues`` lists them, one per line of the message."""

    def __init__(self, issues: Sequence[LintIssue], subject: str = "the definition") -> None:
        self.issues: tuple[LintIssue, ...] = tuple(issues)
        count = f"{len(self.issues)} lint issue{'s' if len(self.issues) != 1 else ''}"
        lines = "".join(f"\n  {issue}" for issue in self.issues)
        super().__init__(f"{subject} has {count}:{lines}")


# -- names for messages -----------------------------------------------------------------------


_NOUNS = {"run_io": "effect", "signal": "signal step", "pure": "pure step"}


def _step(w: Node) -> str:
    name = w.step_name if isinstance(w, DraftSignal) else w.display_name
    if name is None and isinstance(w, HandleSignal):
        name = f"Handle {w.signal.name}"
    return repr(name) if name else f"an unnamed {_NOUNS.get(w.kind, w.kind + ' step')}"


def _steps(nodes: Iterable[Node]) -> str:
    return ", ".join(dict.fromkeys(_step(n) for n in nodes))


# -- busy-loop --------------------------------------------------------------------------------


def _can_wait(w: Node) -> bool:
    """Whether running ``w`` can stop for something (a signal, time, an effect, an event).

    Unknown parts (a flat_map's next step, node types the linter does not know) count as
    waiting: the rule reports only loops it is sure about.
    """
    if isinstance(w, HandleSignal | Timer | RunIO | Recovery | Checkpoint | End | FlatMap):
        return True
    if isinstance(w, Pure):
        return False
    if isinstance(w, Interruptible):
        return _can_wait(w.base)  # the interruption can only fire while the base waits
    children = list(definition_children(w))
    if not children:
        return True  # a node type this rule does not know
    return any(_can_wait(child) for _, child in children)


def _busy_loop(w: Node) -> Iterator[str]:
    if isinstance(w, Loop):
        waits = _can_wait(w.body) or (w.on_restart is not None and _can_wait(w.on_restart))
        if not waits:
            name = repr(w.display_name) if w.display_name else "(unnamed)"
            yield (
                f"loop {name} never waits: neither its body nor its on_restart has a signal, "
                "timer, effect, recovery or checkpoint, so it would repeat forever without "
                "recording anything"
            )


# -- clashing-signals -------------------------------------------------------------------------


def _signal_steps(w: Node) -> Iterator[HandleSignal]:
    """Signal steps inside ``w`` that receive signals on ``w``'s route."""
    if isinstance(w, HandleSignal):
        yield w
        return
    if isinstance(w, ForEach):
        return  # signals to an element are routed by its key
    for _, child in definition_children(w):
        yield from _signal_steps(child)


def _signal_key(w: HandleSignal) -> tuple[str, str]:
    if isinstance(w, DraftSignal):  # draft signals share one SignalDef: use their names
        return ("draft", w.awaited)
    return ("id", w.signal.id)


def _by_signal(steps: Iterable[HandleSignal]) -> dict[tuple[str, str], list[HandleSignal]]:
    found: dict[tuple[str, str], list[HandleSignal]] = {}
    for s in steps:
        found.setdefault(_signal_key(s), []).append(s)
    return found


def _clashing_signals(w: Node) -> Iterator[str]:
    if isinstance(w, Interruptible):
        trigger = first_leaf(w.flow)
        if isinstance(trigger, HandleSignal):
            key = _signal_key(trigger)
            base = _by_signal(_signal_steps(w.base)).get(key)
            if base:
                yield (
                    f"signal {key[1]!r} can be awaited at once by the interruption's trigger "
                    f"{_step(trigger)} and by {_steps(base)} in its base; the interruption "
                    "would always take it"
                )
    elif isinstance(w, Parallel):
        sides = [_by_signal(_signal_steps(b)) for b in w.branches]
        for i, left in enumerate(sides):
            for j in range(i + 1, len(sides)):
                for key, steps in left.items():
                    if key in sides[j]:
                        yield (
                            f"signal {key[1]!r} can be awaited at once in parallel branches "
                            f"{i} ({_steps(steps)}) and {j} ({_steps(sides[j][key])}); "
                            f"branch {i} would always take it"
                        )


# -- clashing-events --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Taker:
    """A step (or a checkpoint, a stateful retry) that takes events of class ``event``."""

    event: type[Any]
    step: str


def _takers(w: Node) -> Iterator[_Taker]:
    """What can take an event while ``w`` runs, in ``w``'s event scope.

    Timers are left out: they take only their own start and release (matched by timer name
    and instant), which the runtime records for the first due timer in the order replay
    offers them, so even two timers of the same name never take each other's events.
    """
    if isinstance(w, RunIO | HandleSignal):
        for t in w.event_types:
            yield _Taker(t, _step(w))
    elif isinstance(w, Recovery):
        for t in (*w.event_types, *w.discards):
            yield _Taker(t, _step(w))
    elif isinstance(w, ForEach | Embedded):
        return  # their events are wrapped into events of the outer workflow
    else:
        if isinstance(w, Checkpoint | Retry):
            yield from _own_takers(w)
        for _, child in definition_children(w):
            yield from _takers(child)


def _overlap(a: _Taker, b: _Taker) -> bool:
    return issubclass(a.event, b.event) or issubclass(b.event, a.event)


def _events(a: _Taker, b: _Taker) -> str:
    name = a.event.__qualname__
    if a.event is not b.event:
        name += f"/{b.event.__qualname__}"
    return f"events of class {name}"


def _event_clashes(left: list[_Taker], right: list[_Taker]) -> list[tuple[str, str, str]]:
    """``(events, left steps, right steps)`` for each kind of event both sides can take."""
    groups: dict[str, tuple[list[str], list[str]]] = {}
    for a in left:
        for b in right:
            if _overlap(a, b):
                lefts, rights = groups.setdefault(_events(a, b), ([], []))
                lefts.append(a.step)
                rights.append(b.step)
    return [
        (name, ", ".join(dict.fromkeys(ls)), ", ".join(dict.fromkeys(rs)))
        for name, (ls, rs) in groups.items()
    ]


def _own_takers(w: Checkpoint | Retry) -> list[_Taker]:
    if isinstance(w, Checkpoint):
        return [_Taker(t, "the checkpoint") for t in w.event_types]
    if isinstance(w.policy, StatefulRetry):
        return [_Taker(t, "the stateful retry") for t in w.policy.event_types]
    return []


def _clashing_events(w: Node) -> Iterator[str]:
    if isinstance(w, Interruptible):
        trigger = list(_takers(first_leaf(w.flow)))
        for events, lefts, rights in _event_clashes(trigger, list(_takers(w.base))):
            yield (
                f"{events} can be taken at once by the interruption's trigger {lefts} and by "
                f"{rights} in its base; the interruption is offered them first"
            )
    elif isinstance(w, Parallel):
        sides = [list(_takers(b)) for b in w.branches]
        for i, left in enumerate(sides):
            for j in range(i + 1, len(sides)):
                for events, lefts, rights in _event_clashes(left, sides[j]):
                    yield (
                        f"{events} can be taken at once in parallel branches {i} ({lefts}) "
                        f"and {j} ({rights}); branch {i} is offered them first"
                    )
    elif isinstance(w, Checkpoint | Retry):
        what = "checkpoint" if isinstance(w, Checkpoint) else "stateful retry"
        for events, _, rights in _event_clashes(_own_takers(w), list(_takers(w.base))):
            yield (
                f"{events} can be taken both by the {what} and by {rights} in its base; the "
                f"{what} is offered them first, so such an event would end the {what}"
            )


# -- unnecessary-error-handler ----------------------------------------------------------------

# Handlers built by handle_event_with_error / pure_with_error share this code object. One of
# them whose function has no Result annotation has `errors == ()` yet can fail: unknown.
_RESULT_CHECKING = _checked_result(len, "lint").__code__


def _leaf_may_fail(errors: tuple[str, ...], handler: object) -> bool:
    return bool(errors) or getattr(handler, "__code__", None) is _RESULT_CHECKING


def _may_fail(w: Node) -> bool:
    """Whether ``w`` can end with a domain error; True when that is not known."""
    if isinstance(w, Pure):
        return _leaf_may_fail(w.errors, w.fn)
    if isinstance(w, RunIO):
        return _leaf_may_fail(w.errors, w.handler)
    if isinstance(w, HandleSignal):
        return _leaf_may_fail(w.errors, w.event_handler)
    if isinstance(w, Timer | Recovery | End):
        return False
    if isinstance(w, FlatMap):
        return True  # the next step is only known at run time
    if isinstance(w, HandleErrorWith):
        return _may_fail(w.base) and _may_fail(w.handler)
    if isinstance(w, Retry) and isinstance(w.policy, StatefulRetry):
        return True  # its handle_event may give up with an error
    children = list(definition_children(w))
    if not children:
        return True  # a node type this rule does not know
    return any(_may_fail(child) for _, child in children)


def _unnecessary_error_handler(w: Node) -> Iterator[str]:
    if isinstance(w, HandleErrorWith) and not _may_fail(w.base):
        yield (
            "the error handler never runs: no step of its base can fail (none declares a "
            "domain error); remove handle_error_with or declare the errors"
        )


# -- entry points -----------------------------------------------------------------------------

_CHECKS = {
    "busy-loop": _busy_loop,
    "clashing-signals": _clashing_signals,
    "clashing-events": _clashing_events,
    "unnecessary-error-handler": _unnecessary_error_handler,
}


def _rules(ignore: Iterable[str]) -> list[str]:
    ignored = set(ignore) if not isinstance(ignore, str) else {ignore}
    unknown = ignored - set(LINT_RULES)
    if unknown:
        raise DefinitionError(
            f"unknown lint rule(s) {sorted(unknown)}; the rules are {', '.join(LINT_RULES)}"
        )
    return [r for r in LINT_RULES if r not in ignored]


def lint(definition: WIO[Any, Any, Any], *, ignore: Iterable[str] = ()) -> list[LintIssue]:
    """The issues the rules find in ``definition``, in definition order.

    ``ignore`` names rules to skip. Each issue's path is the node's walk path
    (``root > Create PR > branch[Yes]``).
    """
    if not isinstance(definition, WIO):
        raise DefinitionError(f"lint expects a WIO, got {definition!r}")
    rules = _rules(ignore)
    issues: list[LintIssue] = []
    for path, node in walk_with_paths(definition):
        for rule in rules:
            issues.extend(LintIssue(rule, m, path) for m in _CHECKS[rule](node))
    return issues


def lint_workflow(
    workflow: type[Workflow[Any, Any]], *, ignore: Iterable[str] = ()
) -> list[LintIssue]:
    """The issues in a Workflow subclass's definition."""
    if not (inspect.isclass(workflow) and issubclass(workflow, Workflow)):
        raise DefinitionError(f"lint_workflow expects a Workflow subclass, got {workflow!r}")
    if "definition" not in dir(workflow):
        raise DefinitionError(f"{workflow.__name__} has no definition")
    return lint(workflow.definition, ignore=ignore)


def assert_clean(
    definition: WIO[Any, Any, Any] | type[Workflow[Any, Any]], *, ignore: Iterable[str] = ()
) -> None:
    """Raise LintError listing the issues of a definition or Workflow subclass, if any."""
    if isinstance(definition, WIO):
        issues, subject = lint(definition, ignore=ignore), "the definition"
    else:
        issues = lint_workflow(definition, ignore=ignore)
        subject = f"workflow {definition.__name__}"
    if issues:
        raise LintError(issues, subject)
