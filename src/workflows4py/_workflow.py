"""A workflow: a definition plus the state and event types its journal holds."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from ._codec import JsonCodec
from ._errors import DefinitionError
from ._events import SystemEvent, TimerReleased, TimerStarted
from ._signals import SignalDef
from ._walk import definition_nodes
from ._wio import WIO, HandleSignal, RunIO
from ._wio_ops import Checkpoint, Recovery, Retry, StatefulRetry

__all__ = ["Workflow", "WorkflowCodecs"]

S = TypeVar("S")
Ev = TypeVar("Ev")


@dataclass(frozen=True, slots=True)
class WorkflowCodecs(Generic[S, Ev]):
    """JSON codecs for a workflow's state and events."""

    state: JsonCodec[S]
    events: JsonCodec[Ev | SystemEvent]


class Workflow(Generic[S, Ev]):
    """Base class of workflow declarations.

    Subclass it with the state and event types (a class or a union of classes each) and
    assign the whole definition to ``definition``; steps assigned to other class attributes
    are named after them (``create_pr`` becomes "Create PR")::

        class PullRequest(Workflow[PRState, PREvent]):
            create_pr = ...
            definition = create_pr >> run_pipeline
    """

    definition: ClassVar[WIO[Any, Any, Any]]
    name: ClassVar[str]
    state_type: ClassVar[Any]
    event_type: ClassVar[Any]
    _codecs: ClassVar[WorkflowCodecs[Any, Any] | None]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in getattr(cls, "__orig_bases__", ()):
            if typing.get_origin(base) is Workflow:
                cls.state_type, cls.event_type = typing.get_args(base)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__
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

    @classmethod
    def codecs(cls) -> WorkflowCodecs[S, Ev]:
        """The JSON codecs of this workflow's state and event types (built once)."""
        if cls._codecs is None:
            events: Any = typing.Union[cls.event_type, SystemEvent]  # noqa: UP007 - runtime union of a type variable's value
            codecs: WorkflowCodecs[S, Ev] = WorkflowCodecs(
                state=JsonCodec(cls.state_type), events=JsonCodec(events)
            )
            _check_events(cls, codecs.events)
            cls._codecs = codecs
        return cls._codecs

    @classmethod
    def signals(cls) -> tuple[SignalDef[Any, Any], ...]:
        """Every signal the definition can handle (dynamic flat_map parts excluded)."""
        found: dict[str, SignalDef[Any, Any]] = {}
        for node in definition_nodes(cls.definition):
            if isinstance(node, HandleSignal):
                found.setdefault(node.signal.id, node.signal)
        return tuple(found.values())


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


def _check_events(cls: type[Workflow[Any, Any]], codec: JsonCodec[Any]) -> None:
    members = tuple(m for m in codec.members.values() if m not in (TimerStarted, TimerReleased))
    for node in definition_nodes(cls.definition, into_subworkflows=False):
        recorded: tuple[type[Any], ...] = ()
        if isinstance(node, RunIO | HandleSignal | Checkpoint | Recovery):
            recorded = node.event_types
        elif isinstance(node, Retry) and isinstance(node.policy, StatefulRetry):
            recorded = node.policy.event_types
        if recorded:
            for event_type in recorded:
                if not issubclass(event_type, members):
                    step = node.display_name or node.kind
                    raise DefinitionError(
                        f"{cls.__name__}: step {step!r} records {event_type.__qualname__}, "
                        f"which is not one of the workflow's event types "
                        f"({', '.join(m.__qualname__ for m in members)})"
                    )
