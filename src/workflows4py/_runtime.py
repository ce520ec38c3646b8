"""Driving the engine: running effects, recording events, answering signals.

An instance operation is: take the instance's lock, ask the engine what to do, run the
effect, encode its event, apply the *decoded* event (so the live state is exactly what a
replay will compute), append it to the journal, and repeat until the workflow waits.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from ._clock import Clock, SystemClock
from ._context import _CURRENT, StepContext
from ._engine import Execution, FreshSignal
from ._errors import (
    EffectContractError,
    InstanceNotFound,
    InvalidInstanceId,
    UnexpectedEvent,
    WorkflowError,
)
from ._journal import JournalEntry
from ._progress import StepProgress
from ._signals import SignalDef
from ._workflow import Workflow, WorkflowCodecs

if TYPE_CHECKING:
    from ._blocking import BlockingRuntime

__all__ = [
    "InMemoryRuntime",
    "InstanceStatus",
    "JournalEntry",
    "UnexpectedSignal",
    "WorkflowInstance",
    "check_instance_id",
]

S = TypeVar("S")
Ev = TypeVar("Ev")
Req = TypeVar("Req")
Resp = TypeVar("Resp")

InstanceStatus = Literal["running", "awaiting", "finished", "failed"]

_INSTANCE_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,200}$")


def check_instance_id(instance_id: object) -> str:
    """Return ``instance_id`` if it is a valid id, else raise InvalidInstanceId."""
    if not isinstance(instance_id, str) or not _INSTANCE_ID.match(instance_id):
        raise InvalidInstanceId(
            f"instance id {instance_id!r} is not valid: use 1-200 characters from [A-Za-z0-9._:@-]"
        )
    return instance_id


@dataclass(frozen=True, slots=True)
class UnexpectedSignal:
    """Returned (not raised) when a signal arrives that no step awaits; nothing changed."""

    signal_id: str
    instance_id: str
    expected: tuple[str, ...]

    def __str__(self) -> str:
        waiting = ", ".join(self.expected) or "no signal"
        return (
            f"instance {self.instance_id!r} does not expect signal {self.signal_id!r} now "
            f"(it awaits {waiting})"
        )


class _Instance(Generic[S, Ev]):
    """In-process state of one instance, driven under its lock."""

    def __init__(
        self,
        workflow: type[Workflow[S, Ev]],
        instance_id: str,
        execution: Execution,
        clock: Clock,
    ) -> None:
        self.workflow = workflow
        self.codecs: WorkflowCodecs[S, Ev] = workflow.codecs()
        self.id = instance_id
        self.execution = execution
        self.clock = clock
        self.journal: list[JournalEntry] = []
        self.lock = asyncio.Lock()
        self.running = False

    def replay(self, entries: Iterable[JournalEntry]) -> None:
        for entry in entries:
            event = self.codecs.events.decode(entry.type, entry.data)
            nxt = self.execution.apply_event(event)
            if nxt is None:
                raise UnexpectedEvent(
                    instance_id=self.id,
                    sequence=entry.sequence,
                    event_type=entry.type,
                    expected=_names(self.execution.expected_events()),
                )
            self.execution = nxt
            self.journal.append(entry)

    def _context(self, step: str) -> StepContext:
        return StepContext(
            workflow=self.workflow.name,
            instance_id=self.id,
            sequence=len(self.journal) + 1,
            step=step,
        )

    def _record(self, event: Any, accepted: tuple[type[Any], ...], step: str) -> Any:
        """Persist ``event`` and apply it; returns the decoded event that was applied."""
        if not isinstance(event, accepted):
            raise EffectContractError(
                f"step {step!r} of instance {self.id!r} returned {type(event).__qualname__}, "
                f"expected {_names(accepted)}; nothing was recorded"
            )
        tag, data = self.codecs.events.encode(event)
        decoded = self.codecs.events.decode(tag, data)
        nxt = self.execution.apply_event(decoded)
        if nxt is None:  # pragma: no cover - the frontier offered this step a moment ago
            raise EffectContractError(f"event {tag!r} of step {step!r} was not accepted")
        sequence = len(self.journal) + 1
        self.journal.append(JournalEntry(sequence, tag, data, self.clock.now()))
        self.execution = nxt
        return decoded

    async def run_effects(self) -> None:
        """Run side effects until the workflow waits for a signal (or finishes)."""
        while (effect := self.execution.next_effect()) is not None:
            token = _CURRENT.set(self._context(effect.name))
            self.running = True
            try:
                event = effect.node.effect(effect.input)
                if inspect.isawaitable(event):
                    event = await event
            finally:
                _CURRENT.reset(token)
                self.running = False
            self._record(event, effect.node.event_types, effect.name)

    async def deliver(self, signal: SignalDef[Any, Any], request: Any) -> Any:
        match = self.execution.find_signal(signal.id)
        if match is None:
            return UnexpectedSignal(
                signal.id, self.id, tuple(s.id for s in self.execution.expected_signals())
            )
        match.node.signal.check_request(request)
        if not isinstance(match, FreshSignal):
            return match.respond(request)
        step = match.node.display_name or f"Handle {match.node.signal.name}"
        token = _CURRENT.set(self._context(step))
        try:
            event = match.node.handler(match.input, request)
            if inspect.isawaitable(event):
                event = await event
        finally:
            _CURRENT.reset(token)
        decoded = self._record(event, match.node.event_types, step)
        response = match.respond(decoded, request)
        await self.run_effects()
        return response

    @property
    def status(self) -> InstanceStatus:
        return "running" if self.running else self.execution.status


def _names(types: Sequence[type[Any]]) -> str:
    return ", ".join(t.__qualname__ for t in types) or "nothing"


class WorkflowInstance(Generic[S, Ev]):
    """Handle on one workflow instance. Operations on an instance are serialized."""

    __slots__ = ("_inner",)

    def __init__(self, inner: _Instance[S, Ev]) -> None:
        self._inner = inner

    @property
    def id(self) -> str:
        return self._inner.id

    def __repr__(self) -> str:
        return f"<WorkflowInstance {self._inner.workflow.name}:{self.id}>"

    async def deliver_signal(
        self, signal: SignalDef[Req, Resp], request: Req
    ) -> Resp | UnexpectedSignal:
        """Deliver a signal; returns its response, or UnexpectedSignal if no step awaits it.

        The request is checked against the signal's type before anything runs. A signal
        delivered again after it was handled gets the response recomputed from the
        recorded event, with no side effect and no new event. Steps that follow the
        signal run before this returns; an exception they raise propagates (the signal
        stays recorded; :meth:`wakeup` retries them).
        """
        if not isinstance(signal, SignalDef):
            raise TypeError(f"deliver_signal expects a SignalDef, got {signal!r}")
        signal.check_request(request)
        inner = self._inner
        async with inner.lock:
            result: Resp | UnexpectedSignal = await inner.deliver(signal, request)
            return result

    async def wakeup(self) -> None:
        """Run whatever can run now (pending side effects) until the workflow waits."""
        async with self._inner.lock:
            await self._inner.run_effects()

    async def query_state(self) -> S:
        """The current state: the output of the latest completed step."""
        state: S = self._inner.execution.state
        return state

    async def status(self) -> InstanceStatus:
        """running (an effect is executing), awaiting, finished or failed."""
        return self._inner.status

    async def get_events(self) -> list[Ev]:
        """The journal decoded into the workflow's events, oldest first."""
        decode = self._inner.codecs.events.decode
        return [decode(e.type, e.data) for e in self._inner.journal]

    async def get_journal(self) -> list[JournalEntry]:
        """The journal as stored: sequence, type tag, JSON payload, timestamp."""
        return list(self._inner.journal)

    async def get_progress(self) -> StepProgress:
        """Which steps ran, with what result and in which order."""
        return self._inner.execution.progress()

    async def expected_signals(self) -> tuple[SignalDef[Any, Any], ...]:
        """Signals a step awaits now."""
        return self._inner.execution.expected_signals()


class InMemoryRuntime(Generic[S, Ev]):
    """Runs instances of one workflow in memory, for tests and demos.

    Events still go through the workflow's JSON codecs, so a workflow that works here
    serializes the same way on a durable runtime.
    """

    def __init__(
        self,
        workflow: type[Workflow[S, Ev]],
        *,
        initial_state: S,
        clock: Clock | None = None,
    ) -> None:
        if not (isinstance(workflow, type) and issubclass(workflow, Workflow)):
            raise TypeError(f"InMemoryRuntime expects a Workflow subclass, got {workflow!r}")
        if "definition" not in dir(workflow):
            raise WorkflowError(f"{workflow.__name__} has no definition")
        workflow.codecs()  # fail now, not on the first event, if a type cannot be encoded
        self.workflow = workflow
        self.initial_state = initial_state
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._instances: dict[str, _Instance[S, Ev]] = {}
        self._creation = asyncio.Lock()

    def _new(self, instance_id: str) -> _Instance[S, Ev]:
        execution = Execution.start(self.workflow.definition, self.initial_state)
        return _Instance(self.workflow, instance_id, execution, self.clock)

    async def create_instance(self, instance_id: str) -> WorkflowInstance[S, Ev]:
        """The instance with this id, created (and run until it waits) if it does not exist."""
        check_instance_id(instance_id)
        async with self._creation:
            inner = self._instances.get(instance_id)
            created = inner is None
            if inner is None:
                inner = self._instances[instance_id] = self._new(instance_id)
        if created:
            async with inner.lock:
                await inner.run_effects()
        return WorkflowInstance(inner)

    async def get_instance(self, instance_id: str) -> WorkflowInstance[S, Ev]:
        """An existing instance; raises InstanceNotFound."""
        check_instance_id(instance_id)
        inner = self._instances.get(instance_id)
        if inner is None:
            raise InstanceNotFound(instance_id)
        return WorkflowInstance(inner)

    async def restore_instance(
        self, instance_id: str, journal: Iterable[JournalEntry]
    ) -> WorkflowInstance[S, Ev]:
        """A fresh instance rebuilt by replaying ``journal``; no effect runs.

        Raises UnexpectedEvent (naming the sequence number and event type) if the journal
        does not fit the definition; the runtime is then left unchanged.
        """
        check_instance_id(instance_id)
        async with self._creation:
            if instance_id in self._instances:
                raise WorkflowError(f"instance {instance_id!r} already exists")
            inner = self._new(instance_id)
            inner.replay(journal)
            self._instances[instance_id] = inner
        return WorkflowInstance(inner)

    async def restore_from_events(
        self, instance_id: str, events: Iterable[Ev]
    ) -> WorkflowInstance[S, Ev]:
        """Like :meth:`restore_instance`, from event objects (encoded through the codec)."""
        codec = self.workflow.codecs().events
        now = self.clock.now()
        entries = [
            JournalEntry(i, *codec.encode(event), now) for i, event in enumerate(events, start=1)
        ]
        return await self.restore_instance(instance_id, entries)

    def blocking(self) -> BlockingRuntime[S, Ev]:
        """A blocking facade over this runtime, for code without an event loop."""
        from ._blocking import BlockingRuntime

        return BlockingRuntime(self)

    async def instance_ids(self) -> list[str]:
        """Ids of every instance, in creation order."""
        return list(self._instances)
