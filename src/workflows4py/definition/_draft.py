"""Draft definitions: steps known only by their names, to sketch a process and draw it
before writing its code.

A draft is built from the ``draft`` namespace (``draft.step()``, ``draft.signal()``, ...)
and composed like any definition: ``>>``, ``handle_error_with``, ``interrupt_with``, and
real steps mixed in. Structure reuses the real nodes (a draft choice is a :class:`Fork`
whose conditions are not written yet); only the leaves have draft classes, which subclass
the real leaf they stand for, so every structural rule (an interruption starts with a
signal or a timer, the linter's rules) treats them as what they will become. The engine
dispatches on the exact node type, so drafts get the semantics below: they report their
progress (what diagrams draw) and refuse to run.

Why ``draft`` and not ``WIO.draft``: WIO's constructors are the steps that run; drafts are
a sketching tool on top of them, kept in their own namespace (``from workflows4py import
draft``) so that the definition layer knows nothing about them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn, TypeVar

from workflows4py._errors import DefinitionError

from ._signals import SignalDef
from ._wio import (
    WIO,
    Checkpoint,
    ForEach,
    Fork,
    ForkBranch,
    HandleSignal,
    Loop,
    Parallel,
    Recovery,
    Retry,
    RunIO,
    StatelessRetry,
    Timer,
    definition_nodes,
)
from ._workflow import Workflow

__all__ = [
    "DraftBuilders",
    "DraftRecovery",
    "DraftSignal",
    "DraftStep",
    "DraftTimer",
    "draft_refusal",
    "ensure_runnable",
    "is_draft",
    "is_draft_part",
]

Node = WIO[Any, Any, Any]
N = TypeVar("N", bound=WIO[Any, Any, Any])


def _refusal(parts: list[str], subject: str = "this definition") -> str:
    if len(parts) == 1:
        fix = f"replace draft step {parts[0]} with a real one"
    else:
        fix = f"replace draft steps {', '.join(parts)} with real ones"
    return f"{subject} is a draft: it can be inspected and linted, not run; {fix}"


class _Unwritten:
    """Stands for code a draft does not have yet (a condition, an effect, an output).

    Calling it refuses to run the draft; :func:`is_draft` recognises it.
    """

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __call__(self, *args: Any) -> NoReturn:
        raise DefinitionError(_refusal([self.what]))

    def __repr__(self) -> str:
        return f"<unwritten {self.what}>"


class _DraftRequest:
    """The request type of draft signals: a draft receives no signal."""


# Every draft signal shares this definition; drafts are told apart by their names.
_DRAFT_SIGNAL = SignalDef("workflows4py.draft", request=_DraftRequest, name="Draft")


def _q(name: str | None) -> str:
    return repr(name) if name else "(unnamed)"


# -- draft leaves -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, eq=False)
class DraftStep(RunIO):
    """A draft effect: a name, the errors it may end with, a description; no code."""

    description: str | None = None


@dataclass(frozen=True, kw_only=True, eq=False)
class DraftSignal(HandleSignal):
    """A draft signal handler: the signal's name, the step's name, errors, a description.

    ``signal_name`` is the name of the signal awaited; when not given, the step's own name
    is used (``draft.signal("Create PR")`` awaits the signal "Create PR").
    """

    signal_name: str | None = None
    description: str | None = None

    @property
    def awaited(self) -> str:
        """The name of the signal this step awaits."""
        return self.signal_name or self.display_name or "Signal"

    @property
    def step_name(self) -> str | None:
        """The step's name: its own, else "Handle <signal>" when only the signal is named."""
        if self.display_name is not None:
            return self.display_name
        return f"Handle {self.signal_name}" if self.signal_name else None


@dataclass(frozen=True, kw_only=True, eq=False)
class DraftTimer(Timer):
    """A draft timer: a name and, if already known, a duration."""

    description: str | None = None


@dataclass(frozen=True, kw_only=True, eq=False)
class DraftRecovery(Recovery):
    """A draft recovery: where a checkpointed step will be recovered from its event."""

    description: str | None = None


def draft_refusal(w: Node) -> DefinitionError:
    """The error a draft leaf raises when it is asked to run, to take an event or to wait."""
    return DefinitionError(_refusal([_leaf_label(w)]))


def _leaf_label(w: Node) -> str:
    if isinstance(w, DraftSignal):
        return f"signal {_q(w.step_name)}"
    noun = {DraftStep: "step", DraftTimer: "timer", DraftRecovery: "recovery"}.get(type(w))
    return f"{noun or w.kind} {_q(w.display_name)}"


# -- the namespace ----------------------------------------------------------------------------


def _name(value: object, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise DefinitionError(f"draft: {what} must be a non-empty string or None, got {value!r}")
    return value


def _label(value: object, what: str) -> str:
    name = _name(value, what)
    if name is None:
        raise DefinitionError(f"draft: {what} must be a non-empty string, got None")
    return name


def _errors(error: object) -> tuple[str, ...]:
    name = _name(error, "error")
    return () if name is None else (name,)


def _wio(value: object, what: str) -> Node:
    if not isinstance(value, WIO):
        raise DefinitionError(f"draft: {what} must be a WIO, got {value!r}")
    return value


def _duration(value: object) -> timedelta | None:
    if value is None:
        return None
    if not isinstance(value, timedelta) or value < timedelta(0):
        raise DefinitionError(f"draft timer: duration must be a timedelta >= 0, got {value!r}")
    return value


def _signal(
    name: str | None,
    signal_name: str | None,
    error: str | None,
    description: str | None,
) -> DraftSignal:
    unwritten = _Unwritten("signal handler")
    return DraftSignal(
        signal=_DRAFT_SIGNAL,
        handler=unwritten,
        is_async=False,
        side_effects=False,
        event_types=(),
        event_handler=unwritten,
        respond=unwritten,
        errors=_errors(error),
        name=_name(name, "name"),
        signal_name=_name(signal_name, "signal name"),
        description=_name(description, "description"),
    )


def _timer(name: str | None, duration: timedelta | None) -> DraftTimer:
    return DraftTimer(
        until=_Unwritten("timer"), static=_duration(duration), name=_name(name, "name")
    )


class DraftBuilders:
    """Builders of draft steps, reached through ``draft`` (``draft.step()``, ...), which adds
    ``draft.progress`` from the engine.

    Every ``name`` may be left out when the draft is assigned to a class attribute: the
    attribute names it (``create_pr = draft.signal()`` is the signal "Create PR"). Drafts
    compose with ``>>``, ``handle_error_with`` and ``interrupt_with`` like real steps.
    """

    __slots__ = ()

    @staticmethod
    def step(
        name: str | None = None, *, error: str | None = None, description: str | None = None
    ) -> WIO[Any, Any, Any]:
        """A step with a side effect, to be written; ``error`` names the error it may end with."""
        unwritten = _Unwritten("step")
        return DraftStep(
            effect=unwritten,
            is_async=False,
            event_types=(),
            handler=unwritten,
            errors=_errors(error),
            name=_name(name, "name"),
            description=_name(description, "description"),
        )

    @staticmethod
    def signal(
        name: str | None = None, *, error: str | None = None, description: str | None = None
    ) -> WIO[Any, Any, Any]:
        """A step awaiting the signal ``name``; ``error`` names the error it may end with."""
        return _signal(name, None, error, description)

    @staticmethod
    def timer(name: str | None = None, duration: timedelta | None = None) -> WIO[Any, Any, Any]:
        """A timer; without ``duration`` its progress shows it as computed at run time."""
        return _timer(name, duration)

    @staticmethod
    def choice(name: str | None, branches: Mapping[str, WIO[Any, Any, Any]]) -> WIO[Any, Any, Any]:
        """A choice between named branches (``{"Yes": ..., "No": ...}``); ``name`` is the
        question asked."""
        if not isinstance(branches, Mapping) or not branches:
            raise DefinitionError("draft choice: give the branches as a non-empty dict")
        select = _Unwritten("choice")
        parts = tuple(
            ForkBranch(_label(label, "branch name"), select, _wio(wio, f"branch {label!r}"))
            for label, wio in branches.items()
        )
        return Fork(branches=parts, name=_name(name, "name"))

    @staticmethod
    def for_each(body: WIO[Any, Any, Any], name: str | None = None) -> WIO[Any, Any, Any]:
        """``body`` run once per element of a collection, as its own sub-workflow."""
        unwritten = _Unwritten("for-each")
        return ForEach(
            elements=unwritten,
            key=str,
            body=_wio(body, "for_each body"),
            wrap=unwritten,
            unwrap=unwritten,
            interim=unwritten,
            output=unwritten,
            name=_name(name, "name"),
        )

    @staticmethod
    def repeat(
        body: WIO[Any, Any, Any],
        *,
        condition: str | None,
        release: str = "Yes",
        restart: str = "No",
        on_restart: WIO[Any, Any, Any] | None = None,
    ) -> WIO[Any, Any, Any]:
        """``body`` repeated until ``condition`` (a question) is answered ``release``; on
        ``restart``, ``on_restart`` runs before the next round."""
        return Loop(
            body=_wio(body, "repeat body"),
            stop=_Unwritten("loop condition"),
            on_restart=None if on_restart is None else _wio(on_restart, "on_restart"),
            name=_name(condition, "condition"),
            release_name=_label(release, "release"),
            restart_name=_label(restart, "restart"),
        )

    @staticmethod
    def parallel(*branches: WIO[Any, Any, Any], name: str | None = None) -> WIO[Any, Any, Any]:
        """Branches advancing independently, all of which must finish."""
        if len(branches) < 2:
            raise DefinitionError("draft parallel: give at least two branches")
        unwritten = _Unwritten("parallel")
        return Parallel(
            branches=tuple(_wio(b, "parallel branch") for b in branches),
            incorporate=tuple(unwritten for _ in branches),
            interim=unwritten,
            output=unwritten,
            name=_name(name, "name"),
        )

    @staticmethod
    def interruption_signal(
        signal_name: str | None = None,
        operation_name: str | None = None,
        *,
        error: str | None = None,
        description: str | None = None,
    ) -> WIO[Any, Any, Any]:
        """A signal that interrupts a running step: ``base.interrupt_with(this)`` or
        ``base.interrupt_with(this >> more)``. The step is named ``operation_name``, else
        "Handle <signal_name>"."""
        return _signal(operation_name, signal_name, error, description)

    @staticmethod
    def interruption_timeout(
        timer_name: str | None = None, duration: timedelta | None = None
    ) -> WIO[Any, Any, Any]:
        """A timeout that interrupts a running step: ``base.interrupt_with(this)``."""
        return _timer(timer_name, duration)

    @staticmethod
    def retry(wio: WIO[Any, Any, Any]) -> WIO[Any, Any, Any]:
        """``wio`` retried on technical failures, with a policy still to write."""
        return Retry(base=_wio(wio, "retried step"), policy=StatelessRetry(_Unwritten("retry")))

    @staticmethod
    def checkpoint(wio: WIO[Any, Any, Any]) -> WIO[Any, Any, Any]:
        """``wio`` followed by a checkpoint event, still to write."""
        unwritten = _Unwritten("checkpoint")
        return Checkpoint(
            base=_wio(wio, "checkpointed step"),
            to_event=unwritten,
            from_event=unwritten,
            event_types=(),
        )

    @staticmethod
    def recovery(name: str | None = None) -> WIO[Any, Any, Any]:
        """Where a removed, checkpointed step is recovered from its checkpoint event."""
        return DraftRecovery(
            from_event=_Unwritten("recovery"), event_types=(), name=_name(name, "name")
        )


# -- refusing to run a draft ------------------------------------------------------------------


def _part_label(w: Node) -> str | None:
    """How a draft part of a definition is named in errors; None for a runnable node."""
    if isinstance(w, DraftStep | DraftSignal | DraftTimer | DraftRecovery):
        return _leaf_label(w)
    if isinstance(w, Fork) and any(isinstance(b.select, _Unwritten) for b in w.branches):
        return f"choice {_q(w.display_name)}"
    if isinstance(w, Loop) and isinstance(w.stop, _Unwritten):
        return f"loop {_q(w.display_name)}"
    if isinstance(w, ForEach) and isinstance(w.elements, _Unwritten):
        return f"for-each {_q(w.display_name)}"
    if isinstance(w, Parallel) and isinstance(w.output, _Unwritten):
        return "parallel" + (f" {w.display_name!r}" if w.display_name else "")
    if (
        isinstance(w, Retry)
        and isinstance(w.policy, StatelessRetry)
        and isinstance(w.policy.delay, _Unwritten)
    ):
        return "retry"
    if isinstance(w, Checkpoint) and isinstance(w.to_event, _Unwritten):
        return "checkpoint"
    return None


def _draft_parts(definition: Node) -> list[str]:
    return [label for n in definition_nodes(definition) if (label := _part_label(n)) is not None]


def is_draft_part(node: WIO[Any, Any, Any]) -> bool:
    """True when ``node`` itself (not what is below it) is a draft: a draft leaf, or a
    choice, loop, for-each, parallel, retry or checkpoint whose code is not written yet."""
    return _part_label(node) is not None


def is_draft(definition: WIO[Any, Any, Any]) -> bool:
    """True when any part of ``definition`` is a draft (a dynamic flat_map step aside)."""
    return bool(_draft_parts(definition))


def ensure_runnable(definition: WIO[Any, Any, Any] | type[Workflow[Any, Any]]) -> None:
    """Raise DefinitionError, naming every draft part, if ``definition`` is a draft.

    Accepts a definition or a Workflow subclass; runtimes call it when they are built.
    """
    subject = "this definition"
    if isinstance(definition, type) and issubclass(definition, Workflow):
        subject = f"workflow {definition.__name__}"
        if "definition" not in dir(definition):
            raise DefinitionError(f"{definition.__name__} has no definition")
        definition = definition.definition
    parts = _draft_parts(_wio(definition, "definition"))
    if parts:
        raise DefinitionError(_refusal(parts, subject))
