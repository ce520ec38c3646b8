"""Driving the engine: running effects, recording events, answering signals.

An instance operation is: take the instance's lock, ask the engine what to do, run the
effect, encode its event, apply the *decoded* event (so the live state is exactly what a
replay will compute), append it to the journal, and repeat until the workflow waits.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Generic, Literal, Protocol, TypeVar

from workflows4py._errors import (
    CodecError,
    DecodeError,
    DefinitionError,
    EffectContractError,
    InstanceClosed,
    InvalidInstanceId,
    JournalError,
    PayloadTooLarge,
    UnexpectedEvent,
    WorkflowError,
    WorkflowFailed,
)
from workflows4py.definition import (
    Err,
    Ok,
    Result,
    RetryFailure,
    SignalDef,
    StatelessRetry,
    SystemEvent,
    Terminated,
    Workflow,
    WorkflowCodecs,
)
from workflows4py.engine import (
    Execution,
    FreshSignal,
    ParkedMark,
    Record,
    RunEffect,
    StepProgress,
)
from workflows4py.serialization import encoder_for
from workflows4py.stores import JournalEntry

from ._clock import Clock
from ._context import _CURRENT
from ._hooks import Observer, Operation, OperationKind

_log = logging.getLogger("workflows4py")

__all__ = [
    "NO_STATE",
    "STARTED",
    "InstanceStatus",
    "JournalEntry",
    "Origin",
    "UnexpectedSignal",
    "WorkflowInstance",
    "check_instance_id",
    "check_journal_sizes",
    "check_limit",
    "check_request_size",
    "check_signal",
    "check_size",
    "encoded_size",
    "unstarted",
    "versioned",
]

# the type variables of the runtime package (its other modules import them from here)
S = TypeVar("S")
Ev = TypeVar("Ev")
R = TypeVar("R")
Req = TypeVar("Req")
Resp = TypeVar("Resp")

InstanceStatus = Literal["running", "awaiting", "finished", "failed", "terminated", "parked"]

STARTED = "workflows4py.Started"
"""The type of a journal's first entry when the instance was started with its own initial
state: the state, encoded by the workflow's state codec (``{"type": tag, "state": ...}``)."""

_REPLAY_RUN = 256  # entries decoded ahead of the engine: a run's events die young (fewer GC passes)


def unstarted(workflow: type[Workflow[Any, Any]]) -> Execution:
    """An execution of ``workflow`` whose initial state is still to be read from the
    journal's first entry; nothing has run (the tree is not advanced)."""
    return Execution(workflow.definition, NO_STATE, 0, 0)


class _NoState:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<initial state not known yet>"


NO_STATE: Any = _NoState()
"""Stands for an initial state not known yet (to be read from the journal)."""

_START_KEYS = {"type", "state", "origin", "version"}

_INSTANCE_ID = re.compile(r"[A-Za-z0-9._:@-]{1,200}")

MiB = 1024 * 1024
DEFAULT_MAX_REQUEST_BYTES = 4 * MiB
DEFAULT_MAX_EVENT_BYTES = 4 * MiB
DEFAULT_MAX_SNAPSHOT_BYTES = 8 * MiB


def check_limit(name: str, value: int) -> int:
    """``value`` if it is a positive number of bytes, else ValueError naming the option."""
    if type(value) is not int or value < 1:
        raise ValueError(f"{name} must be a positive number of bytes, got {value!r}")
    return value


def encoded_size(text: str, limit: int) -> int:
    """The UTF-8 size of ``text``, computed exactly only when it could pass ``limit``."""
    n = len(text)
    if n > limit or n * 4 <= limit:  # a character takes 1 to 4 bytes
        return n
    return len(text.encode())


def check_size(text: str, limit: int, what: str, option: str, detail: str = "") -> None:
    """Raise PayloadTooLarge if ``text`` encodes to more than ``limit`` bytes."""
    size = encoded_size(text, limit)
    if size > limit:
        raise PayloadTooLarge(what, len(text.encode()), limit, option, detail)


def check_journal_sizes(entries: Iterable[JournalEntry], limit: int) -> None:
    """Raise PayloadTooLarge if an entry of an imported journal is past ``limit`` bytes."""
    for entry in entries:
        check_size(
            entry.data, limit, "event", "max_event_bytes", f"#{entry.sequence} {entry.type!r}"
        )


_REQUEST_ENCODERS: dict[type[Any], Callable[[Any], Any] | None] = {}


def check_request_size(signal: SignalDef[Any, Any], request: Any, limit: int) -> None:
    """Raise PayloadTooLarge if the request of ``signal`` encodes past ``limit`` bytes.

    A request type the codec cannot encode is not measured (its event still is).
    """
    cls = signal.request
    if cls not in _REQUEST_ENCODERS:
        try:
            _REQUEST_ENCODERS[cls] = encoder_for(cls)
        except DefinitionError:
            _REQUEST_ENCODERS[cls] = None
    encode = _REQUEST_ENCODERS[cls]
    if encode is None:
        return
    try:
        text = json.dumps(encode(request), separators=(",", ":"), ensure_ascii=False)
    except (CodecError, TypeError, ValueError):
        return
    check_size(text, limit, "signal request", "max_request_bytes", f"of {signal.id!r}")


def check_signal(signal: SignalDef[Any, Any], request: Any, limit: int) -> None:
    """Refuse a request before anything runs: a TypeError if ``signal`` is no SignalDef,
    InvalidSignalRequest if the request is not of its type, PayloadTooLarge past ``limit``."""
    if not isinstance(signal, SignalDef):
        raise TypeError(f"deliver_signal expects a SignalDef, got {signal!r}")
    signal.check_request(request)
    check_request_size(signal, request, limit)


def check_instance_id(instance_id: object) -> str:
    """Return ``instance_id`` if it is a valid id, else raise InvalidInstanceId."""
    if not isinstance(instance_id, str) or not _INSTANCE_ID.fullmatch(instance_id):
        raise InvalidInstanceId(
            f"instance id {instance_id!r} is not valid: use 1-200 characters from [A-Za-z0-9._:@-]"
        )
    return instance_id


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a forked instance came from: the first ``after_sequence`` journal entries of
    ``instance_id`` (of workflow ``workflow``)."""

    workflow: str
    instance_id: str
    after_sequence: int


@dataclass(frozen=True, slots=True)
class UnexpectedSignal:
    """Returned (not raised) when a signal arrives that no step awaits; nothing changed."""

    signal_id: str
    instance_id: str
    expected: tuple[str, ...]
    terminated: str | None = None
    """The reason the instance was terminated for, if it was."""

    def __str__(self) -> str:
        if self.terminated is not None:
            return (
                f"instance {self.instance_id!r} does not expect signal {self.signal_id!r}: "
                f"it was terminated ({self.terminated})"
            )
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
        *,
        persist: Callable[[JournalEntry], Awaitable[None]] | None = None,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        default_initial: Any = NO_STATE,
    ) -> None:
        self.workflow = workflow
        # the runtime's workflow (its newest version); ``workflow`` is the version the
        # instance is on, once its journal's first entry is read
        self.latest = workflow
        # the runtime's initial state, for journals that do not start with one of their own
        self.default_initial = default_initial
        self.max_event_bytes = max_event_bytes
        self.codecs: WorkflowCodecs[S, Ev] = workflow.codecs()
        self.id = instance_id
        self.execution = execution
        self.clock = clock
        # the durable runtimes write each event to their store before it takes effect
        self.persist = persist
        # called once per operation before the first effect runs or the first event is
        # written (a durable runtime marks the instance "running", so that another worker
        # resumes it if this process dies before the operation ends)
        self.before_effects: Callable[[], Awaitable[None]] | None = None
        self.sequence = 0
        # whether the initial state is the instance's own (the journal's first entry) rather
        # than the runtime's default
        self.own_initial = False
        self.snapshot_sequence = 0  # the journal position of the latest stored snapshot
        self.last_entry: JournalEntry | None = None  # the latest event recorded or replayed
        self.running = False
        # a stateless retry keeps its next attempt in memory only, per (step, route): nothing
        # is persisted, and the delay vanishes with the step (e.g. when it is interrupted)
        self.retry_at: dict[tuple[Any, tuple[str, ...]], datetime] = {}
        self.last_failure: BaseException | None = None
        self.failed_step: str | None = None  # the step whose effect raised, unhandled
        # told about effects, events and signals of the operation under way, if anyone listens
        self.observer: Observer | None = None
        self.operation: Operation | None = None

    def replay(self, entries: Iterable[JournalEntry]) -> None:
        """Apply stored ``entries`` (the journal after ``self.sequence``), checking each one
        in order: contiguous, decodable, and the event the definition expects there
        (JournalError, DecodeError, UnexpectedEvent, raised at the first that is not).

        The hot loop of loading an instance: the entries are decoded in runs (up to the
        first that does not decode or is out of place) and each run goes to the engine at
        once (``Execution.apply_events``); what has been applied before an error is kept,
        as when the events went one by one.
        """
        entries = entries if isinstance(entries, list) else list(entries)
        at, n = 0, len(entries)
        while at < n:
            entry = entries[at]
            if entry.type == STARTED and entry.sequence == 1 and self.sequence == 0:
                self.begin_from(entry)
                at += 1
                continue
            if self.execution.initial_state is NO_STATE and entry.sequence == self.sequence + 1:
                self.settle_initial()
            at = self._replay_run(entries, at, min(n, at + _REPLAY_RUN))

    def _replay_run(self, entries: list[JournalEntry], at: int, end: int) -> int:
        """Decode ``entries[at:end]`` up to the first that cannot be applied, apply them,
        then raise about that one if there is one; the index of the entry that follows."""
        decode = self.codecs.events.decoder()
        events: list[Any] = []
        add = events.append
        expected = self.sequence + 1
        problem: Exception | None = None
        stop = at
        for stop in range(at, end):
            entry = entries[stop]
            if entry.sequence != expected:
                problem = JournalError(
                    f"journal is not contiguous: expected event #{expected}",
                    instance_id=self.id,
                    sequence=entry.sequence,
                )
                break
            try:
                add(decode(entry.type, entry.data))
            except DecodeError as e:
                problem = self.undecodable(entry, e)
                problem.__cause__ = e
                break
            expected += 1
        else:
            stop = end
        execution, taken = self.execution.apply_events(events)
        if taken:
            self.execution = execution
            self.sequence += taken
            self.last_entry = entries[at + taken - 1]
        if taken < len(events):
            refused = entries[at + taken]
            raise UnexpectedEvent(
                instance_id=self.id,
                sequence=refused.sequence,
                event_type=refused.type,
                expected=_names(self.execution.expected_events()),
                steps=self.execution.awaiting_steps(),
            )
        if problem is not None:
            raise problem
        return stop

    def settle_initial(self) -> None:
        """A journal without a start entry of its own starts from the runtime's default."""
        if self.execution.initial_state is not NO_STATE:
            return
        self.pin(1)  # a journal without a start entry was written before versions
        if self.default_initial is NO_STATE:
            raise WorkflowError(
                f"instance {self.id!r} of {self.workflow.id} has no initial state: its journal "
                "does not start with one and the runtime has none; give the runtime the "
                "initial_state such instances started from"
            )
        self.execution = Execution.start(self.workflow.definition, self.default_initial)

    def started_entry(self, state: S, origin: Origin | None = None) -> JournalEntry:
        """The journal's first entry for an instance started from ``state`` (forked from
        ``origin``, if given)."""
        tag, data = self.codecs.state.encode(state)
        body = '{"type":' + json.dumps(tag) + ',"state":' + data
        if versioned(self.workflow):  # else left out: journals stay as before versions
            body += ',"version":' + str(self.workflow.version)
        if origin is not None:
            where = {
                "workflow": origin.workflow,
                "instance_id": origin.instance_id,
                "after_sequence": origin.after_sequence,
            }
            body += ',"origin":' + json.dumps(where, separators=(",", ":"))
        return JournalEntry(1, STARTED, body + "}", self.clock.now())

    def state_of(self, body: object) -> S:
        """The state in a start entry's body ``{"type": tag, "state": {...}}``."""
        if not isinstance(body, dict) or not {"type", "state"} <= set(body) <= _START_KEYS:
            raise DecodeError('expected {"type": <state type tag>, "state": {...}}', path="")
        if not isinstance(body["type"], str):
            raise DecodeError("the state's type tag must be a string", path="type")
        state: S = self.codecs.state.decode(body["type"], json.dumps(body["state"]))
        return state

    def initial_of(self, entry: JournalEntry) -> S:
        """The initial state a start entry holds (read on the version it records: see
        :meth:`pin`); DecodeError names the instance."""
        body = self.body_of(entry)
        # the version it records (1 if none: written before versions)
        self.pin(body.get("version", 1) if isinstance(body, dict) else 1)
        try:
            return self.state_of(body)
        except (DecodeError, ValueError, TypeError) as e:
            error = e if isinstance(e, DecodeError) else DecodeError(str(e), path="")
            raise self.undecodable(entry, error) from e

    def origin_of(self, entry: JournalEntry) -> Origin | None:
        """Where the instance was forked from, if its start entry says so."""
        if entry.type != STARTED or entry.sequence != 1:
            return None
        where = json.loads(entry.data).get("origin")
        if not isinstance(where, dict):
            return None
        return Origin(where["workflow"], where["instance_id"], where["after_sequence"])

    def pin(self, version: object) -> None:
        """Run on ``version`` of the runtime's workflow (the one the instance started on);
        JournalError (at the journal's first entry) if the workflow has no such version
        any more."""
        versions = self.latest.versions()
        found = versions.get(version) if type(version) is int else None
        if found is None:
            known = ", ".join(str(v) for v in sorted(versions))
            raise JournalError(
                f"it started on version {version!r} of workflow {self.latest.id}, which the "
                f"workflow no longer has (its versions: {known}); keep that version's "
                "definition in previous_versions while instances are on it",
                instance_id=self.id,
                sequence=1,
            )
        if found is not self.workflow:
            self.workflow = found
            self.codecs = found.codecs()
            self.execution = unstarted(found)

    def body_of(self, entry: JournalEntry) -> Any:
        """The JSON of a start entry; DecodeError names the instance if it is not JSON."""
        try:
            return json.loads(entry.data)
        except ValueError as e:
            raise self.undecodable(entry, DecodeError(str(e), path="")) from e

    def begin_from(self, entry: JournalEntry) -> None:
        """Restart from the initial state in ``entry`` (the journal's first), on the
        version it records."""
        initial = self.initial_of(entry)  # pins the version first
        self.execution = Execution.start(self.workflow.definition, initial)
        self.own_initial = True
        self.sequence = 1
        self.last_entry = entry

    async def begin(self, state: S) -> None:
        """Start from ``state``: record it as the journal's first entry, then run."""
        entry = self.started_entry(state)
        check_size(entry.data, self.max_event_bytes, "initial state", "max_event_bytes")
        execution = Execution.start(self.workflow.definition, state)
        if self.persist is not None:
            await self.persist(entry)
        self.execution = execution
        self.own_initial = True
        self.sequence = 1
        self.last_entry = entry
        await self.proceed()

    def undecodable(self, entry: JournalEntry, error: DecodeError) -> DecodeError:
        """``error`` (the codec's, about one stored event) naming the instance and event;
        its ``path`` is kept."""
        named = DecodeError(
            f"event of type {entry.type!r} does not decode: {error}",
            path="",
            workflow=self.workflow.id,
            instance_id=self.id,
            sequence=entry.sequence,
        )
        named.path = error.path
        return named

    def decode_all(self, entries: Iterable[JournalEntry]) -> list[Any]:
        """The events of stored ``entries``; DecodeError names the first that fails."""
        decode = self.codecs.events.decode
        events: list[Any] = []
        for entry in entries:
            if entry.type == STARTED and entry.sequence == 1:
                continue  # the initial state, not an event
            try:
                events.append(decode(entry.type, entry.data))
            except DecodeError as e:
                raise self.undecodable(entry, e) from e
        return events

    def _check_taker(self, event: Any, producer: Any, route: tuple[str, ...], step: str) -> None:
        """Replay hands an event to the first awaiting step that accepts its class; make sure
        that is the step that produced it, or the journal would replay differently."""
        taker = self.execution.first_taker(event, route)
        if taker is not producer:
            other = getattr(taker, "display_name", None) or getattr(taker, "kind", "another step")
            raise EffectContractError(
                f"step {step!r} of instance {self.id!r} recorded {type(event).__qualname__}, "
                f"but on replay step {other!r}, awaiting at the same time, would take it; give "
                "the steps different event classes (the linter reports this as clashing-events)"
            )

    async def _record(
        self,
        event: Any,
        accepted: tuple[type[Any], ...],
        step: str,
        wrap: Callable[[Any], Any] | None = None,
    ) -> Any:
        """Persist ``event`` (wrapped for the root) and apply it; returns the applied event."""
        if not isinstance(event, accepted):
            raise EffectContractError(
                f"step {step!r} of instance {self.id!r} returned {type(event).__qualname__}, "
                f"expected {_names(accepted)}; nothing was recorded"
            )
        outer = wrap(event) if wrap is not None else event
        tag, data = self.codecs.events.encode(outer)
        check_size(data, self.max_event_bytes, "event", "max_event_bytes", f"{tag!r} of {step!r}")
        decoded = self.codecs.events.decode(tag, data)
        nxt = self.execution.apply_event(decoded)
        if nxt is None:
            raise EffectContractError(
                f"event {tag!r} of step {step!r} was not accepted by the workflow "
                "(check the wrap/unwrap functions of embedded or for-each steps)"
            )
        entry = JournalEntry(self.sequence + 1, tag, data, self.clock.now())
        if self.before_effects is not None:  # the first write of this operation
            hook, self.before_effects = self.before_effects, None
            await hook()
        if self.persist is not None:
            await self.persist(entry)
        self.sequence = entry.sequence
        self.last_entry = entry
        self.execution = nxt
        if self.observer is not None and self.operation is not None:
            self.observer.event_recorded(self.operation, entry.sequence, tag, step)
        return decoded

    async def _run(self, step: str, fn: Callable[..., Any], *args: Any) -> Any:
        token = _CURRENT.set((self.workflow.id, self.id, self.sequence + 1, step))
        self.running = True
        op = self.operation
        if op is not None:
            op.step = step
        try:
            result = fn(*args)
            if inspect.isawaitable(result):
                result = await result
            return result
        finally:
            _CURRENT.reset(token)
            self.running = False
            if op is not None:
                op.step = None

    async def _effect(self, action: RunEffect, name: str) -> Any:
        """Run the effect of ``action`` (the step ``name``), telling the observer (if any)
        how it went."""
        observer, op = self.observer, self.operation
        if observer is None or op is None:
            return await self._run(name, action.node.effect, action.frame.input)
        observer.effect_started(op, name)
        began = time.perf_counter()
        try:
            event = await self._run(name, action.node.effect, action.frame.input)
        except Exception as error:
            observer.effect_failed(op, name, error, time.perf_counter() - began)
            raise
        observer.effect_ended(op, name, time.perf_counter() - began)
        return event

    async def proceed(self) -> None:
        """Run whatever is due now (effects, timers, checkpoints) until the workflow waits."""
        try:
            while True:
                now = self.clock.now()
                action = self.execution.next_action(now, self.retry_at)
                if action is None:
                    return
                if isinstance(action, Record):
                    await self._record(action.event, (object,), action.name)
                    continue
                if self.before_effects is not None:
                    hook, self.before_effects = self.before_effects, None
                    await hook()
                node, name = action.node, action.name
                try:
                    event = await self._effect(action, name)
                except Exception as error:
                    if not await self._retry(action, error, now):
                        self.failed_step = name
                        raise
                    continue
                if self.retry_at:
                    self.retry_at.pop((node, action.frame.route), None)
                self.last_failure = None
                if isinstance(event, node.event_types):
                    self._check_taker(event, node, action.frame.route, name)
                wrap = action.wrap_event if action.frame.wrap else None  # None: nothing to wrap
                await self._record(event, node.event_types, name, wrap)
        finally:
            self.prune_retries()

    async def _retry(self, action: RunEffect, error: Exception, now: datetime) -> bool:
        """Apply the retry policy around a failed effect; False means re-raise."""
        retry = action.retry
        if retry is None:
            return False
        policy = retry.policy
        if isinstance(policy, StatelessRetry):
            delay = policy.delay(error)
            if delay is None:
                return False
            at = self.retry_at[(action.node, action.frame.route)] = now + delay
            self.last_failure = error
            _log.warning(
                "step %r of %s:%s failed (%r); next attempt at %s",
                action.name,
                self.workflow.id,
                self.id,
                error,
                at,
            )
            return True
        failure = RetryFailure(action.retry_input, error, retry.state, now)
        event = policy.on_error(failure)
        if event is None:
            return False
        self.last_failure = error
        await self._record(
            event, policy.event_types, f"{action.name} (retry)", action.wrap_retry_event
        )
        return True

    def prune_retries(self) -> None:
        """Forget the stateless retries of steps no longer awaited (completed elsewhere,
        interrupted)."""
        if not self.retry_at:
            return
        awaiting = {(leaf.node, leaf.frame.route) for leaf in self.execution.frontier()}
        for key in [k for k in self.retry_at if k not in awaiting]:
            del self.retry_at[key]

    def next_wakeup(self) -> datetime | None:
        """The earliest due instant: a timer, a stateful or a stateless retry."""
        self.prune_retries()
        candidates = list(self.retry_at.values())
        if (at := self.execution.wakeup_at()) is not None:
            candidates.append(at)
        return min(candidates) if candidates else None

    async def deliver(
        self,
        signal: SignalDef[Any, Any],
        request: Any,
        route: str | tuple[str, ...] | None,
        *,
        then_proceed: bool = True,
    ) -> Any:
        """Handle ``signal``; then run what follows it, unless ``then_proceed`` is False."""
        match = self.execution.find_signal(signal.id, route)
        observer, op = self.observer, self.operation
        if match is None:
            stop = self.execution.terminated
            unexpected = UnexpectedSignal(
                signal.id,
                self.id,
                tuple(s.id for s in self.execution.expected_signals()),
                None if stop is None else stop.reason,
            )
            if observer is not None and op is not None:
                observer.signal_rejected(op, signal.id, str(unexpected))
            return unexpected
        if observer is not None and op is not None:
            observer.signal_delivered(op, signal.id)
        match.node.signal.check_request(request)
        if not isinstance(match, FreshSignal):
            return match.respond(request)
        step = match.node.display_name or f"Handle {match.node.signal.name}"
        event = await self._run(step, match.node.handler, match.input, request)
        if isinstance(event, match.node.event_types):
            self._check_taker(event, match.node, match.frame.route, step)
        await self._record(event, match.node.event_types, step, match.wrap_event)
        response = match.respond(event, request)
        if then_proceed:
            await self.proceed()
        return response

    async def terminate(self, reason: str) -> bool:
        """Record the instance's termination; False if it was terminated already."""
        status = self.execution.status
        if status == "terminated":
            return False
        if status != "awaiting":
            raise InstanceClosed(self.id, status, "terminate")
        self.retry_at.clear()
        await self._record(Terminated(reason, self.clock.now()), (Terminated,), "terminate")
        return True

    @property
    def status(self) -> InstanceStatus:
        return "running" if self.running else self.execution.status


def versioned(workflow: type[Workflow[Any, Any]]) -> bool:
    """Whether ``workflow`` has versions (a version other than 1, or previous ones): its
    start entries record the version."""
    return workflow.version != 1 or bool(workflow.previous_versions)


def _names(types: Sequence[type[Any]]) -> str:
    return ", ".join(t.__qualname__ for t in types) or "nothing"


class _Host(Protocol[S, Ev]):
    """What a runtime offers its instance handles."""

    max_request_bytes: int

    async def _operate(
        self,
        instance_id: str,
        fn: Callable[[_Instance[S, Ev]], Awaitable[R]],
        *,
        kind: OperationKind,
    ) -> R:
        """Run ``fn`` on the up-to-date instance, exclusively (lock or lease)."""
        ...

    async def _observe(self, instance_id: str) -> _Instance[S, Ev]:
        """The up-to-date instance, for reading only."""
        ...

    async def _journal(self, instance_id: str) -> list[JournalEntry]:
        """The instance's journal as stored."""
        ...

    async def _status(self, instance_id: str) -> InstanceStatus:
        """The instance's status (``parked`` is told by the registry)."""
        ...

    async def _parked(self, instance_id: str) -> ParkedMark | None:
        """Why and since when the instance is parked (from the registry); None if it is not."""
        ...

    async def _wait_for_change(self, timeout: float) -> None:
        """Return soon after an operation on any instance ends (in any process, where
        the store can tell), or after ``timeout`` seconds."""
        ...


class WorkflowInstance(Generic[S, Ev]):
    """Handle on one workflow instance. Operations on an instance are serialized."""

    __slots__ = ("_host", "_id", "_workflow")

    def __init__(self, host: _Host[S, Ev], instance_id: str, workflow: str) -> None:
        self._host = host
        self._id = instance_id
        self._workflow = workflow

    @property
    def id(self) -> str:
        return self._id

    def __repr__(self) -> str:
        return f"<WorkflowInstance {self._workflow}:{self._id}>"

    async def deliver_signal(
        self, signal: SignalDef[Req, Resp], request: Req, *, route: str | None = None
    ) -> Resp | UnexpectedSignal:
        """Deliver a signal; returns its response, or UnexpectedSignal if no step awaits it.

        The request is checked against the signal's type before anything runs. A signal
        delivered again after it was handled gets the response recomputed from the
        recorded event, with no side effect and no new event. Steps that follow the
        signal run before this returns; an exception they raise propagates (the signal
        stays recorded; :meth:`wakeup` retries them). ``route`` is the key of the for-each
        element the signal is meant for.
        """
        check_signal(signal, request, self._host.max_request_bytes)

        async def deliver(inner: _Instance[S, Ev]) -> Resp | UnexpectedSignal:
            result: Resp | UnexpectedSignal = await inner.deliver(signal, request, route)
            return result

        return await self._host._operate(self._id, deliver, kind="signal")

    async def wakeup(self) -> None:
        """Run whatever is due now (effects, timers, retries) until the workflow waits."""

        async def proceed(inner: _Instance[S, Ev]) -> None:
            await inner.proceed()

        await self._host._operate(self._id, proceed, kind="wakeup")

    async def query_state(self) -> S:
        """The current state: the output of the latest completed step."""
        state: S = (await self._host._observe(self._id)).execution.state
        return state

    async def status(self) -> InstanceStatus:
        """``running`` (an effect is executing), ``awaiting``, ``finished``, ``failed``,
        ``terminated``, or ``parked`` (the worker stopped trying: see ``resume``)."""
        return await self._host._status(self._id)

    async def origin(self) -> Origin | None:
        """Where this instance was forked from (see ``fork``), None if it was not."""
        journal = await self._host._journal(self._id)
        if not journal:
            return None
        return (await self._host._observe(self._id)).origin_of(journal[0])

    async def result(self) -> Result[Any, Any] | None:
        """``Ok(final state)`` or ``Err(domain error)`` once finished or failed, else None."""
        return (await self._host._observe(self._id)).execution.result

    async def wait_result(self, timeout: float | None = None, *, poll: float = 0.05) -> S:
        """Wait until the instance ends; its final state if it finished.

        Raises WorkflowFailed (with the domain error) if it failed, InstanceClosed if it
        was terminated, TimeoutError after ``timeout`` seconds. It works across processes:
        the instance is read back from the store whenever an operation ends (the store's
        ``wait_for_change``: a notification on PostgreSQL, a cheap poll on SQLite, at once
        in memory), and in any case every ``poll`` seconds at first, then less often (up
        to once a second) while nothing changes.
        """
        if timeout is not None and timeout < 0:
            raise ValueError(f"timeout must be >= 0 seconds, got {timeout!r}")
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        pause = poll
        while True:
            execution = (await self._host._observe(self._id)).execution
            outcome = execution.result
            if isinstance(outcome, Ok):
                state: S = outcome.value
                return state
            if isinstance(outcome, Err):
                raise WorkflowFailed(self._workflow, self._id, outcome.error)
            if execution.terminated is not None:
                raise InstanceClosed(self._id, "terminated", "wait for the result of")
            if deadline is not None and loop.time() >= deadline:
                raise TimeoutError(f"instance {self._id!r} of {self._workflow} did not end in time")
            wait = pause if deadline is None else min(pause, max(deadline - loop.time(), 0))
            await self._host._wait_for_change(wait)
            pause = min(pause * 2, 1.0)

    async def next_wakeup(self) -> datetime | None:
        """When the instance next needs waking up (a timer or a retry), if ever."""
        return (await self._host._observe(self._id)).next_wakeup()

    async def get_events(self) -> list[Ev | SystemEvent | Terminated]:
        """The journal decoded into the workflow's events, oldest first (a termination
        included; the initial state is no event, and left out)."""
        inner = await self._host._observe(self._id)
        events: list[Ev | SystemEvent | Terminated] = inner.decode_all(
            await self._host._journal(self._id)
        )
        return events

    async def get_journal(self) -> list[JournalEntry]:
        """The journal as stored: sequence, type tag, JSON payload, timestamp."""
        return await self._host._journal(self._id)

    async def get_progress(self) -> StepProgress:
        """Which steps ran, with what result and in which order; a parked instance's root
        carries a :class:`ParkedMark` (the last error, and when it was parked)."""
        progress = (await self._host._observe(self._id)).execution.progress()
        parked = await self._host._parked(self._id)
        return progress if parked is None else replace(progress, parked=parked)

    async def progress_at(self, sequence: int) -> StepProgress:
        """The progress as it was after the first ``sequence`` entries of the journal
        (0 to its length; ValueError otherwise), replayed from the start without running
        anything. A start entry holds the initial state and no event: after it, the
        progress is the one after none."""
        return (await self._replayed(sequence)).progress()

    async def state_at(self, sequence: int) -> S:
        """The state as it was after the first ``sequence`` entries of the journal (as
        :meth:`progress_at`)."""
        state: S = (await self._replayed(sequence)).state
        return state

    async def _replayed(self, sequence: int) -> Execution:
        journal = await self._host._journal(self._id)
        if type(sequence) is not int or not 0 <= sequence <= len(journal):
            raise ValueError(
                f"sequence must be between 0 and {len(journal)} (the journal of instance "
                f"{self._id!r}), got {sequence!r}"
            )
        inner = await self._host._observe(self._id)
        events = inner.decode_all(journal[:sequence])
        return Execution.replay(
            inner.workflow.definition,
            inner.execution.initial_state,
            events,
            instance_id=self._id,
        )

    async def version(self) -> int:
        """The version of its workflow the instance runs on: the one it started on (1 for
        an instance started before its workflow had versions)."""
        return (await self._host._observe(self._id)).workflow.version

    async def expected_signals(self) -> tuple[SignalDef[Any, Any], ...]:
        """Signals a step awaits now."""
        return (await self._host._observe(self._id)).execution.expected_signals()
