"""A workflow: a definition plus the state and event types its journal holds."""

from __future__ import annotations

import sys
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any, ClassVar, Generic, TypeVar

from workflows4py._errors import DefinitionError
from workflows4py.serialization import JsonCodec, decoder_for, encoder_for, json_schema

from ._events import SystemEvent, Terminated, TimerReleased, TimerStarted
from ._introspect import parameter_classes, wrapper_classes
from ._signals import SignalDef, check_id
from ._wio import (
    WIO,
    Checkpoint,
    Embedded,
    ForEach,
    HandleSignal,
    Recovery,
    Retry,
    RunIO,
    StatefulRetry,
    Timer,
    definition_nodes,
)

__all__ = ["Workflow", "WorkflowCodecs"]

S = TypeVar("S")
Ev = TypeVar("Ev")


@dataclass(frozen=True, slots=True)
class WorkflowCodecs(Generic[S, Ev]):
    """JSON codecs for a workflow's state and events."""

    state: JsonCodec[S]
    events: JsonCodec[Ev | SystemEvent | Terminated]


class Workflow(Generic[S, Ev]):
    """Base class of workflow declarations.

    Subclass it with the state and event types (a class or a union of classes each) and
    assign the whole definition to ``definition``; steps assigned to other class attributes
    are named after them (``create_pr`` becomes "Create PR")::

        class PullRequest(Workflow[PRState, PREvent]):
            id = "pull-request"
            create_pr = ...
            definition = create_pr >> run_pipeline

    ``id`` is the workflow's stable identifier, stored with every instance: 1-200
    characters from ``[A-Za-z0-9._:/-]``, starting with a letter or digit, like a signal
    id. Left out, it is ``name``, which is the class name unless set (so instances stored
    before ``id`` existed keep theirs); set it explicitly before renaming the class.

    ``initial_state``, when the class body sets it, is the state a runtime's ``start``
    uses when it is given none.

    A workflow declared inside a function resolves the annotations of its types with the
    names that function had defined when the class statement ran.

    ``version`` (default 1) and ``previous_versions`` keep old definitions for the
    instances that started on them: each old definition is another Workflow class with the
    same ``id`` and a lower ``version``, listed in the newest's ``previous_versions``. New
    instances start on the newest; a stored instance replays on the version it started on
    (see docs/evolution.md, "Keeping an old version").
    """

    version: ClassVar[int] = 1
    previous_versions: ClassVar[tuple[type[Workflow[Any, Any]], ...]] = ()

    definition: ClassVar[WIO[Any, Any, Any]]
    id: ClassVar[str]
    name: ClassVar[str]
    state_type: ClassVar[Any]
    event_type: ClassVar[Any]
    _codecs: ClassVar[WorkflowCodecs[Any, Any] | None]
    _namespace: ClassVar[Mapping[str, Any]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._namespace = _declaring_namespace()
        for base in getattr(cls, "__orig_bases__", ()):
            if typing.get_origin(base) is Workflow:
                cls.state_type, cls.event_type = typing.get_args(base)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__
        what = f"workflow {cls.__name__}: id"
        if "id" not in cls.__dict__:
            cls.id = cls.name
            what = f"workflow {cls.__name__}: id (its name, unless id is set)"
        check_id(cls.id, what)
        cls._codecs = None
        if "definition" in cls.__dict__:
            if not isinstance(cls.definition, WIO):
                raise DefinitionError(
                    f"{cls.__name__}.definition must be a WIO, got {type(cls.definition).__name__}"
                )
            if not hasattr(cls, "state_type"):
                raise DefinitionError(
                    f"{cls.__name__} must subclass Workflow[StateType, EventType]"
                )
            _check_signals(cls)
            _check_versions(cls)

    @classmethod
    def versions(cls) -> dict[int, type[Workflow[Any, Any]]]:
        """This workflow's definitions by version: this class's ``version`` and each of its
        ``previous_versions``, newest first."""
        found: dict[int, type[Workflow[Any, Any]]] = {cls.version: cls}
        for old in sorted(cls.previous_versions, key=lambda w: -w.version):
            found[old.version] = old
        return found

    @classmethod
    def codecs(cls) -> WorkflowCodecs[S, Ev]:
        """The JSON codecs of this workflow's state and event types (built once).

        A DefinitionError names what cannot be stored: the state type, the step
        recording an event class the codec cannot handle, or the step handling a signal
        whose request or response type the codec cannot handle, with the type and the
        reason.
        """
        if cls._codecs is None:
            _check_recorded_types(cls)
            _check_signal_types(cls)
            events: Any = typing.Union[cls.event_type, SystemEvent, Terminated]  # noqa: UP007 - runtime union of a type variable's value
            try:
                state: JsonCodec[S] = JsonCodec(cls.state_type, namespace=cls._namespace)
            except DefinitionError as e:
                raise DefinitionError(
                    f"{cls.__name__}: its state type cannot be stored: {e}"
                ) from e
            try:
                event_codec: JsonCodec[Any] = JsonCodec(events, namespace=cls._namespace)
            except DefinitionError as e:
                raise DefinitionError(
                    f"{cls.__name__}: its event type cannot be stored: {e}"
                ) from e
            codecs: WorkflowCodecs[S, Ev] = WorkflowCodecs(state=state, events=event_codec)
            _check_events(cls, codecs.events)
            cls._codecs = codecs
        return cls._codecs

    @classmethod
    def schema(cls) -> dict[str, Any]:
        """JSON Schemas of what this workflow stores and receives, for forms and API specs.

        ``{"workflow": id, "state": ..., "events": ..., "signals": {id: {"request": ...,
        "response": ...}}}``: ``state`` describes a state as a journal's start entry holds
        it (``{"type": <tag>, "state": <its JSON>}``), ``events`` an event as an exported
        journal shows it (``{"type": <tag>, "data": <its JSON>}``, the library's own events
        included), and each signal its request's and its response's JSON (``None``: the
        signal has no response). A signal type the codec cannot handle is a
        DefinitionError naming the signal.
        """
        codecs = cls.codecs()
        signals: dict[str, dict[str, Any]] = {}
        for signal in cls.signals():
            schemas: dict[str, Any] = {}
            for part, tp in (("request", signal.request), ("response", signal.response)):
                try:
                    schemas[part] = None if tp is None else json_schema(tp)
                except DefinitionError as e:
                    raise DefinitionError(
                        f"{cls.__name__}: the {part} of signal {signal.id!r} cannot be encoded: {e}"
                    ) from e
            signals[signal.id] = schemas
        return {
            "workflow": cls.id,
            "state": codecs.state.json_schema("state"),
            "events": codecs.events.json_schema("data"),
            "signals": signals,
        }

    @classmethod
    def signals(cls) -> tuple[SignalDef[Any, Any], ...]:
        """Every signal the definition can handle (dynamic flat_map parts excluded)."""
        found: dict[str, SignalDef[Any, Any]] = {}
        for node in definition_nodes(cls.definition):
            if isinstance(node, HandleSignal):
                found.setdefault(node.signal.id, node.signal)
        return tuple(found.values())


def _declaring_namespace() -> Mapping[str, Any]:
    """The names of the function whose body declares the workflow class being created
    (none at module level: the module's own names resolve annotations already)."""
    frame: FrameType | None = sys._getframe(2)  # skip this and Workflow.__init_subclass__
    while frame is not None and frame.f_code.co_name == "__init_subclass__":
        frame = frame.f_back  # a subclass's own __init_subclass__ calling super()
    if frame is None or frame.f_locals is frame.f_globals:
        return {}
    return dict(frame.f_locals)


def _step_name(node: WIO[Any, Any, Any]) -> str:
    return node.display_name or (
        f"Handle {node.signal.name}" if isinstance(node, HandleSignal) else node.kind
    )


def _check_recorded_types(cls: type[Workflow[Any, Any]]) -> None:
    """Every event class a step records can be stored: else a DefinitionError naming the
    step, the class and why."""
    for node in definition_nodes(cls.definition):
        for event_type in _recorded(node):
            try:
                JsonCodec(event_type, namespace=cls._namespace)
            except DefinitionError as e:
                raise DefinitionError(
                    f"{cls.__name__}: step {_step_name(node)!r} records "
                    f"{getattr(event_type, '__qualname__', event_type)}, which cannot be "
                    f"stored: {e}"
                ) from e


def _check_signal_types(cls: type[Workflow[Any, Any]]) -> None:
    """Every signal's request and response type has a codec (a request arrives as JSON from
    the command line or HTTP, a response leaves as JSON): else a DefinitionError naming the
    step handling the signal, the part, the type and why."""
    for node in definition_nodes(cls.definition):
        if not isinstance(node, HandleSignal):
            continue
        signal = node.signal
        for part, tp in (("request", signal.request), ("response", signal.response)):
            if tp is None:
                continue
            try:
                decoder_for(tp)
                encoder_for(tp)
            except DefinitionError as e:
                raise DefinitionError(
                    f"{cls.__name__}: step {_step_name(node)!r} handles signal {signal.id!r}, "
                    f"whose {part} type {getattr(tp, '__qualname__', tp)} cannot be encoded: {e}"
                ) from e


def _check_versions(cls: type[Workflow[Any, Any]]) -> None:
    """``version`` is a positive int; ``previous_versions`` a tuple of workflows with a
    definition, this one's id and distinct versions below this one's."""
    name = cls.__name__
    if type(cls.version) is not int or cls.version < 1:
        raise DefinitionError(f"{name}.version must be a positive int, got {cls.version!r}")
    olds = cls.previous_versions
    if not isinstance(olds, tuple):
        raise DefinitionError(
            f"{name}.previous_versions must be a tuple of Workflow classes, got "
            f"{type(olds).__name__}"
        )
    seen: dict[int, str] = {}
    for old in olds:
        if not (isinstance(old, type) and issubclass(old, Workflow)) or old is cls:
            raise DefinitionError(
                f"{name}.previous_versions holds {old!r}: give the Workflow classes of its "
                "older versions"
            )
        where = f"{name}.previous_versions: {old.__name__}"
        if "definition" not in old.__dict__:
            raise DefinitionError(f"{where} has no definition of its own")
        if old.id != cls.id:
            raise DefinitionError(f"{where} has the id {old.id!r}, not {cls.id!r}")
        if old.version >= cls.version:
            raise DefinitionError(
                f"{where} is version {old.version}, not below {name}'s version {cls.version}; "
                f"give {name} a higher version"
            )
        if old.version in seen:
            raise DefinitionError(f"{where} and {seen[old.version]} are both version {old.version}")
        seen[old.version] = old.__name__


def _check_signals(cls: type[Workflow[Any, Any]]) -> None:
    seen: dict[str, SignalDef[Any, Any]] = {}
    for node in definition_nodes(cls.definition):
        if isinstance(node, HandleSignal):
            other = seen.setdefault(node.signal.id, node.signal)
            if (
                other.request is not node.signal.request
                or other.response is not node.signal.response
            ):
                raise DefinitionError(
                    f"{cls.__name__}: two different SignalDefs share the id {node.signal.id!r}"
                )


@dataclass(frozen=True, slots=True)
class _Scope:
    """Where events are recorded: the workflow's journal, or a for-each's or embed's wrap.

    ``accepts`` are the classes an event recorded there may have (None: not known, so not
    checked); ``timers`` whether the library's timer events are among them.
    """

    accepts: tuple[type[Any], ...] | None
    timers: bool
    described: str
    inside: str = ""


def _names(classes: tuple[type[Any], ...]) -> str:
    return ", ".join(c.__qualname__ for c in classes)


def _check_events(cls: type[Workflow[Any, Any]], codec: JsonCodec[Any]) -> None:
    """Every class a step records must reach the journal: a member of the event union at
    the top, a class the wrap function takes inside a for-each or an embed, whose wrapped
    event must in turn be one the enclosing scope records."""
    library = (TimerStarted, TimerReleased, Terminated)
    members = tuple(m for m in codec.members.values() if isinstance(m, type) and m not in library)
    top = _Scope(members, True, f"one of the workflow's event types ({_names(members)})")
    _check_scope(cls.__name__, cls.definition, top)


def _recorded(node: WIO[Any, Any, Any]) -> tuple[type[Any], ...]:
    if isinstance(node, RunIO | HandleSignal | Checkpoint | Recovery):
        return node.event_types
    if isinstance(node, Retry) and isinstance(node.policy, StatefulRetry):
        return node.policy.event_types
    return ()


def _accepted(event_type: type[Any], scope: _Scope) -> bool:
    return scope.accepts is None or issubclass(event_type, scope.accepts)


def _check_scope(workflow: str, root: WIO[Any, Any, Any], scope: _Scope) -> None:
    for node in definition_nodes(root, into_subworkflows=False):
        step = _step_name(node)
        for event_type in _recorded(node):
            if not _accepted(event_type, scope):
                raise DefinitionError(
                    f"{workflow}: step {step!r}{scope.inside} records "
                    f"{event_type.__qualname__}, which is not {scope.described}"
                )
        if isinstance(node, Timer) and not scope.timers and scope.accepts is not None:
            raise DefinitionError(
                f"{workflow}: timer {node.timer_id!r}{scope.inside} records TimerStarted and "
                f"TimerReleased, which are not {scope.described}; add SystemEvent to it"
            )
        if isinstance(node, ForEach | Embedded):
            _check_wrapped(workflow, node, scope)


def _check_wrapped(workflow: str, node: ForEach | Embedded, scope: _Scope) -> None:
    what = "for-each" if isinstance(node, ForEach) else "embed"
    label = f"{what} {node.display_name!r}" if node.display_name else f"an unnamed {what}"
    wrapped = wrapper_classes(node.wrap)
    for outer in wrapped or ():
        if not _accepted(outer, scope):
            raise DefinitionError(
                f"{workflow}: {label}{scope.inside} records its steps' events wrapped as "
                f"{outer.__qualname__} (what wrap returns), which is not {scope.described}"
            )
    param = parameter_classes(node.wrap, 1 if isinstance(node, ForEach) else 0)
    wrap_name = getattr(node.wrap, "__name__", "wrap")
    if param is None:
        inner = _Scope(None, True, "", f" inside {label}")
    else:
        name, classes = param
        accepts = tuple(c for c in classes if c not in (TimerStarted, TimerReleased))
        inner = _Scope(
            accepts,
            issubclass(TimerStarted, classes) and issubclass(TimerReleased, classes),
            f"a class its wrap function takes ({wrap_name}'s {name!r} is typed {_names(classes)})",
            f" inside {label}",
        )
    body = node.body if isinstance(node, ForEach) else node.inner
    _check_scope(workflow, body, inner)
