"""Durable runtimes: the engine driven over a :class:`~workflows4py._store.Store`.

An operation on an instance (a signal, a wakeup) is: take the instance's lease in the store
(waiting up to ``lease_wait`` seconds for another process to finish) → load it (the cached
execution plus the journal tail written since, or a full replay) → run the engine, writing
each event to the store *before* it takes effect → update the registry row (status, next
wakeup, tags) → release the lease. The lease is renewed while a long effect runs. If the
lease lapsed anyway and another process wrote meanwhile, the store's (instance, sequence)
key refuses the second writer (:class:`SequenceConflict`): a history never forks.

Effects run at least once: a process that dies after an effect but before its event is
written leaves the instance "running" with a lapsed lease, and a worker resumes it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import secrets
import socket
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, Literal, TypedDict, Unpack

from workflows4py._errors import (
    CodecError,
    DecodeError,
    InstanceExists,
    InstanceNotFound,
    JournalError,
    UnexpectedEvent,
    WorkflowError,
)
from workflows4py.definition import SignalDef, SystemEvent, Terminated, Workflow
from workflows4py.engine import (
    Execution,
    FreshSignal,
    ParkedMark,
    SnapshotError,
    SnapshotRefused,
    decode_snapshot,
    encode_execution,
    event_digest,
    seal,
    unseal,
)
from workflows4py.serialization import decoder_for
from workflows4py.stores import (
    InstanceKey,
    InstanceRecord,
    JournalEntry,
    NewEvent,
    Page,
    RegistryStatus,
    RegistryUpdate,
    SearchQuery,
    SequenceConflict,
    Snapshot,
    Store,
)

from ._clock import Clock, SystemClock
from ._hooks import Observer, Operation, OperationKind, combine, current_operation, operating
from ._runtime import (
    DEFAULT_MAX_EVENT_BYTES,
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_MAX_SNAPSHOT_BYTES,
    NO_STATE,
    STARTED,
    Ev,
    InstanceStatus,
    Origin,
    R,
    Req,
    Resp,
    S,
    WorkflowInstance,
    _Instance,
    check_instance_id,
    check_journal_sizes,
    check_limit,
    check_signal,
    check_size,
    encoded_size,
    unstarted,
    versioned,
)

if TYPE_CHECKING:
    from ._blocking import BlockingRuntime

__all__ = [
    "ENDED",
    "DurableRuntime",
    "PostgresRuntime",
    "RuntimeOptions",
    "SharedOptions",
    "SqliteRuntime",
    "default_owner",
    "purge_instances",
]

_log = logging.getLogger("workflows4py")


ENDED: tuple[RegistryStatus, ...] = ("finished", "failed", "terminated")
"""The statuses of instances that ended: the only ones ``purge`` deletes."""


def default_owner() -> str:
    """A lease owner name unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class _Renewer:
    """Renews a lease while an operation runs: ``renew()`` (a task) starts once the first
    renewal is due, ``every`` s after the lease was taken. Until then it is only a timer,
    since most operations end long before (a task made and cancelled per operation costs
    more than the rest of a short one's bookkeeping)."""

    __slots__ = ("_renew", "_task", "_timer")

    def __init__(self, every: float, renew: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._renew = renew
        self._task: asyncio.Task[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(every, self._begin)

    def _begin(self) -> None:
        self._task = asyncio.ensure_future(self._renew())

    def cancel(self) -> None:
        self._timer.cancel()
        if self._task is not None:
            self._task.cancel()


_ENDED: frozenset[str] = frozenset({"finished", "terminated"})
"""The statuses after which an instance runs nothing more."""


class DurableRuntime(Generic[S, Ev]):
    """Runs instances of one workflow on a store, safely from many processes at once.

    Use :class:`SqliteRuntime` (one file, the embedded default) or
    :class:`PostgresRuntime` (many workers on many machines), or pass any store.
    Call :meth:`initialize` (or use ``async with``) before the first operation.

    Snapshots are sealed with ``snapshot_key`` (at least 16 bytes; default: the
    environment variable ``WORKFLOWS4PY_SNAPSHOT_KEY``, else a random key of this runtime
    only): give every process of the application the same key so that each uses the
    snapshots the others wrote. ``max_request_bytes``, ``max_event_bytes`` and
    ``max_snapshot_bytes`` bound what is accepted and stored (see docs/security.md).
    """

    def __init__(
        self,
        workflow: type[Workflow[S, Ev]],
        store: Store,
        *,
        initial_state: S | None = None,
        clock: Clock | None = None,
        owner: str | None = None,
        lease_ttl: float = 30.0,
        lease_wait: float = 30.0,
        failure_backoff: timedelta = timedelta(seconds=60),
        max_failure_backoff: timedelta = timedelta(hours=1),
        tags: Callable[[S], dict[str, str]] | None = None,
        snapshot_every: int | None = 100,
        snapshot_key: str | bytes | None = None,
        cache_size: int = 10_000,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        max_snapshot_bytes: int = DEFAULT_MAX_SNAPSHOT_BYTES,
        max_attempts: int | None = None,
        observers: Iterable[Observer] | None = None,
    ) -> None:
        if not (isinstance(workflow, type) and issubclass(workflow, Workflow)):
            raise TypeError(f"{type(self).__name__} expects a Workflow subclass, got {workflow!r}")
        from workflows4py.definition import ensure_runnable

        ensure_runnable(workflow)
        workflow.codecs()
        self.workflow = workflow
        self.store = store
        if initial_state is None:
            initial_state = getattr(workflow, "initial_state", None)
        self.initial_state: S | None = initial_state
        self._default: Any = NO_STATE if initial_state is None else initial_state
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.owner: str = owner or default_owner()
        self.lease_ttl = lease_ttl
        self.lease_wait = lease_wait
        if failure_backoff <= timedelta(0) or max_failure_backoff < failure_backoff:
            raise ValueError(
                "failure_backoff must be positive and max_failure_backoff at least as long"
            )
        self.failure_backoff = failure_backoff
        self.max_failure_backoff = max_failure_backoff
        self._tags = tags
        if snapshot_every is not None and snapshot_every < 1:
            raise ValueError("snapshot_every must be a positive number of events, or None")
        self.snapshot_every = snapshot_every
        self._snapshot_key, shared = _snapshot_key(snapshot_key)
        self.snapshot_key_shared: bool = shared
        self.max_request_bytes: int = check_limit("max_request_bytes", max_request_bytes)
        self.max_event_bytes: int = check_limit("max_event_bytes", max_event_bytes)
        self.max_snapshot_bytes: int = check_limit("max_snapshot_bytes", max_snapshot_bytes)
        if max_attempts is not None and (type(max_attempts) is not int or max_attempts < 1):
            raise ValueError(
                f"max_attempts must be a positive number or None, got {max_attempts!r}"
            )
        self.max_attempts = max_attempts
        self._observer: Observer | None = combine(observers)
        # recently used instances stay loaded (checked against the journal tail each time)
        self._cache: OrderedDict[str, _Instance[S, Ev]] = OrderedDict()
        self._cache_size = cache_size
        # of them, the ended ones (finished, terminated), fewer: nothing more runs in them,
        # and every full collection of the heap walks what the cache holds
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._ended_size = max(1, cache_size // 10)
        self._locks: dict[str, asyncio.Lock] = {}

    # -- lifecycle --------------------------------------------------------------------------

    async def initialize(self) -> None:
        """Create or migrate the store's schema (safe from many processes at once)."""
        await self.store.initialize()

    async def close(self) -> None:
        """Close the store, and forget the instances held in memory."""
        self._forget_all()
        await self.store.close()

    def _forget_all(self) -> None:
        """Drop the instances held in memory: freed now (they refer to the runtime, so
        otherwise only at the next full collection of the heap)."""
        self._cache.clear()
        self._ended.clear()

    def blocking(self) -> BlockingRuntime[S, Ev]:
        """A blocking facade over this runtime, for code without an event loop; use it as
        a context manager (it initializes the store, and closes it at the end)."""
        from ._blocking import BlockingRuntime

        return BlockingRuntime(self)

    async def __aenter__(self) -> DurableRuntime[S, Ev]:
        await self.initialize()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- instances --------------------------------------------------------------------------

    def _key(self, instance_id: str) -> InstanceKey:
        return InstanceKey(self.workflow.id, instance_id)

    def _handle(self, instance_id: str) -> WorkflowInstance[S, Ev]:
        return WorkflowInstance(self, instance_id, self.workflow.id)

    async def create_instance(self, instance_id: str) -> WorkflowInstance[S, Ev]:
        """The instance with this id, created (and run until it waits) if it does not exist."""
        check_instance_id(instance_id)
        key = self._key(instance_id)
        now = self.clock.now()
        if instance_id in self._cache:  # it exists (instances are never deleted)
            await self._operate(instance_id, _proceed, kind="create", write_registry=True)
        elif await self.store.create_leased(key, self.owner, self.lease_ttl, now):
            # registered as running with our lease, in one write: if this process dies
            # before the first steps are done, the lease lapses and a worker resumes it
            await self._operate(
                instance_id,
                _proceed,
                kind="create",
                write_registry=True,
                created=self._new(instance_id),
            )
        else:
            # it exists (perhaps created by a process that died before running it): run what
            # is due; or, in the odd case of a lease on an unregistered id, register it due now
            await self.store.create(key, now, next_wakeup=now)
            await self._operate(instance_id, _proceed, kind="create", write_registry=True)
        return self._handle(instance_id)

    async def start(
        self,
        instance_id: str,
        *,
        initial_state: S | None = None,
        signal: tuple[SignalDef[Req, Resp], Req] | None = None,
    ) -> WorkflowInstance[S, Ev]:
        """Start an instance from ``initial_state`` (default: the runtime's, else the
        workflow's ``initial_state``), run it until it waits, and return it.

        The initial state is recorded as the journal's first entry. Idempotent: starting
        an id that exists returns that instance when it started from an equal state, and
        raises InstanceExists otherwise. ``signal=(signal_def, request)`` delivers a first
        signal: when the workflow awaits it from the start, the instance's registration,
        its initial state and the signal's event are written in one transaction (so a
        crash leaves either nothing or all three); delivering it again, as a retried start
        does, records nothing new (the response is recomputed from the recorded event).
        """
        check_instance_id(instance_id)
        state: Any = self._default if initial_state is None else initial_state
        if state is NO_STATE:
            raise WorkflowError(
                f"start {self.workflow.id}:{instance_id}: give initial_state (the runtime "
                "has no default and the workflow declares none)"
            )
        if signal is not None:
            check_signal(signal[0], signal[1], self.max_request_bytes)
        key = self._key(instance_id)
        inner = self._new(instance_id)
        first = inner.started_entry(state)
        check_size(first.data, self.max_event_bytes, "initial state", "max_event_bytes")
        inner.begin_from(first)
        pending = [first]
        delivered = False
        if signal is not None and self._awaits_first(inner, signal[0]):
            # signal with start: its event is written with the registration, in one go

            async def hold(entry: JournalEntry) -> None:
                pending.append(entry)

            inner.persist = hold
            await inner.deliver(signal[0], signal[1], None, then_proceed=False)
            delivered = True
        events = [NewEvent(e.type, e.data, e.recorded_at) for e in pending]
        now = self.clock.now()
        if await self.store.create_leased(key, self.owner, self.lease_ttl, now, events):
            await self._operate(
                instance_id, _proceed, kind="start", write_registry=True, created=inner
            )
            handle = self._handle(instance_id)
            if signal is not None and not delivered:
                await handle.deliver_signal(signal[0], signal[1])
            return handle
        await self._check_started_from(key, state)

        async def begin(inner: _Instance[S, Ev]) -> None:
            if inner.sequence == 0 and inner.execution.initial_state is NO_STATE:
                await inner.begin(state)  # registered by create_instance, never begun
            else:  # begun already (by a start of this id that won)
                await inner.proceed()

        await self._operate(instance_id, begin, kind="start", write_registry=True, settle=False)
        handle = self._handle(instance_id)
        if signal is not None:
            await handle.deliver_signal(signal[0], signal[1])
        return handle

    def _awaits_first(self, inner: _Instance[S, Ev], signal: SignalDef[Any, Any]) -> bool:
        """Whether ``inner``, just begun, awaits ``signal`` with nothing to run before it."""
        execution = inner.execution
        if execution.next_action(self.clock.now(), inner.retry_at) is not None:
            return False
        return isinstance(execution.find_signal(signal.id, None), FreshSignal)

    async def _check_started_from(self, key: InstanceKey, state: Any) -> None:
        """Raise InstanceExists unless the existing instance started from ``state``."""
        first = await self.store.read(key)
        probe = self._new(key.instance_id)
        if not first:
            return  # registered, not begun yet (its starter died): begun now, from ``state``
        if first[0].type == STARTED and first[0].sequence == 1:
            stored = probe.initial_of(first[0])
        elif self._default is NO_STATE:
            raise InstanceExists(key.workflow, key.instance_id, "started before states were stored")
        else:
            stored = self._default
        if stored != state:
            raise InstanceExists(key.workflow, key.instance_id, f"it started from {stored!r}")

    async def terminate(self, instance_id: str, reason: str) -> bool:
        """Stop an instance for good: records ``Terminated(reason)`` in its journal, drops
        its wakeup, and from then on no effect runs and every signal is unexpected.

        Waits for an operation under way (the lease). Returns False if the instance was
        terminated already; raises InstanceClosed if it has finished or failed, and
        InstanceNotFound if there is none.
        """
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError("terminate needs a reason (a non-empty string)")

        async def stop(inner: _Instance[S, Ev]) -> bool:
            return await inner.terminate(reason)

        return await self._operate(instance_id, stop, kind="terminate", write_registry=True)

    async def resume(self, instance_id: str) -> bool:
        """Take a parked instance up again now (after a fix is deployed): its failure count
        is reset and whatever is due runs at once. Returns False, doing nothing, if the
        instance is not parked; InstanceNotFound if there is none. If it fails again, the
        error propagates and the instance is parked again or retried after a backoff, as
        for any failure."""
        key = self._key(check_instance_id(instance_id))
        record = await self._record_of(key)
        if record.status != "parked":
            return False
        now = self.clock.now()
        await self.store.update(key, "running", now, record.tags, now)  # failures reset
        self._cache.pop(instance_id, None)  # replay against the definition deployed now
        await self._operate(instance_id, _proceed, kind="resume", write_registry=True)
        return True

    async def fork(
        self, instance_id: str, new_id: str, *, after_sequence: int
    ) -> WorkflowInstance[S, Ev]:
        """A new instance ``new_id`` from the first ``after_sequence`` entries of the journal
        of ``instance_id`` (the start entry, #1, always included), run on from there: the
        steps recorded after that run again, against the definition deployed now. The
        original is left as it was; the new one records where it came from (see
        :meth:`WorkflowInstance.origin`). The prefix is replayed before anything is written
        (UnexpectedEvent if it no longer fits the definition); InstanceExists if
        ``new_id`` is taken, InstanceNotFound if ``instance_id`` is not."""
        check_instance_id(new_id)
        source = self._key(check_instance_id(instance_id))
        entries = await self.store.read(source)
        if not entries and not await self.store.exists(source):
            raise InstanceNotFound(instance_id)
        legacy = not entries or entries[0].type != STARTED
        lowest = 0 if legacy else 1
        if type(after_sequence) is not int or not lowest <= after_sequence <= len(entries):
            raise ValueError(
                f"after_sequence must be between {lowest} and {len(entries)} (the journal of "
                f"{instance_id!r} has {len(entries)} entries), got {after_sequence!r}"
            )
        probe = self._new(new_id)
        origin = Origin(self.workflow.id, instance_id, after_sequence)
        if legacy:  # no start entry of its own: the fork gets one, from the default state
            probe.settle_initial()
            prefix = entries[:after_sequence]
            start_state = probe.execution.initial_state
        else:
            prefix = entries[1:after_sequence]
            start_state = probe.initial_of(entries[0])
        first = probe.started_entry(start_state, origin)
        probe.begin_from(first)
        renumbered = [first] + [
            JournalEntry(i, e.type, e.data, e.recorded_at) for i, e in enumerate(prefix, start=2)
        ]
        probe.replay(renumbered[1:])
        events = [NewEvent(e.type, e.data, e.recorded_at) for e in renumbered]
        key = self._key(new_id)
        if not await self.store.create_leased(
            key, self.owner, self.lease_ttl, self.clock.now(), events
        ):
            raise InstanceExists(self.workflow.id, new_id, "cannot fork onto an existing id")
        await self._operate(new_id, _proceed, kind="fork", write_registry=True, created=probe)
        return self._handle(new_id)

    async def purge(
        self,
        *,
        finished_before: datetime,
        statuses: Iterable[RegistryStatus] = ENDED,
        batch_size: int = 500,
        on_batch: Callable[[int], None] | None = None,
    ) -> int:
        """Delete the instances of this workflow that ended (``finished``, ``failed``,
        ``terminated``) before ``finished_before``: journal, snapshot and registry row, in
        batches of ``batch_size`` (one transaction each); ``on_batch(deleted so far)`` is
        called after each. Returns how many were deleted. Instances under way are never
        touched; archive first with :meth:`export_journal` if the history matters."""
        return await purge_instances(
            self.store,
            [self],
            finished_before=finished_before,
            statuses=statuses,
            batch_size=batch_size,
            on_batch=on_batch,
            now=self.clock.now(),
        )

    async def export_journal(self, instance_id: str) -> str:
        """The instance's journal as JSON lines, one entry per line, oldest first:
        ``{"workflow", "instance_id", "sequence", "type", "data", "recorded_at"}`` with
        ``data`` the entry's JSON payload and ``recorded_at`` an ISO 8601 instant in UTC."""
        check_instance_id(instance_id)
        entries = await self._journal(instance_id)
        return "".join(
            json.dumps(
                {
                    "workflow": self.workflow.id,
                    "instance_id": instance_id,
                    "sequence": e.sequence,
                    "type": e.type,
                    "data": json.loads(e.data),
                    "recorded_at": e.recorded_at.isoformat(),
                },
                ensure_ascii=False,
                separators=(",", ":"),
            )
            + "\n"
            for e in entries
        )

    def decode_state(self, text: str) -> S:
        """A state of this workflow from JSON ``{"type": <state type tag>, "state": {...}}``
        (the form a journal's start entry stores); DecodeError if it does not fit."""
        try:
            body = json.loads(text)
        except ValueError as e:
            raise DecodeError(f"not JSON: {e}", path="") from e
        return self._new("decode").state_of(body)

    def signal_def(self, signal_id: str) -> SignalDef[Any, Any]:
        """The signal of this workflow with id ``signal_id``; ValueError naming the known ones."""
        signals = {
            s.id: s for v in reversed(self.workflow.versions().values()) for s in v.signals()
        }
        if signal_id in signals:  # the newest version's, if several have it
            return signals[signal_id]
        known = ", ".join(repr(s) for s in signals) or "none"
        raise ValueError(f"{self.workflow.id} has no signal {signal_id!r} (it has {known})")

    def decode_request(self, signal: SignalDef[Req, Any], text: str) -> Req:
        """A request of ``signal`` from its JSON; DecodeError if it does not fit."""
        try:
            value = json.loads(text)
        except ValueError as e:
            raise DecodeError(f"not JSON: {e}", path="") from e
        request: Req = decoder_for(signal.request)(value)
        return request

    async def _record_of(self, key: InstanceKey) -> InstanceRecord:
        record = await self.store.get_record(key)
        if record is None:
            raise InstanceNotFound(key.instance_id)
        return record

    async def _park(self, key: InstanceKey, error: Exception) -> None:
        """Mark the instance parked (no more attempts until resumed), keeping ``error``."""
        try:
            record = await self._record_of(key)
            now = self.clock.now()
            await self.store.update(key, "parked", None, record.tags, now, error=_describe(error))
        except Exception:  # the error itself is what the caller must see
            _log.warning("could not park %s", key, exc_info=True)
            return
        _log.error("%s parked: %s", key, error)
        self._told_parked(_describe(error))

    def _told_parked(self, error: str) -> None:
        op = current_operation()
        if self._observer is not None and op is not None:
            self._observer.instance_parked(op, error)

    async def get_instance(self, instance_id: str) -> WorkflowInstance[S, Ev]:
        """An existing instance; raises InstanceNotFound."""
        check_instance_id(instance_id)
        if not await self.store.exists(self._key(instance_id)):
            raise InstanceNotFound(instance_id)
        return self._handle(instance_id)

    async def restore_instance(
        self, instance_id: str, journal: Iterable[JournalEntry]
    ) -> WorkflowInstance[S, Ev]:
        """Import ``journal`` as a new instance (checked by replaying it first); no effect runs."""
        check_instance_id(instance_id)
        key = self._key(instance_id)
        entries = list(journal)
        check_journal_sizes(entries, self.max_event_bytes)
        probe = self._new(instance_id)
        probe.replay(entries)  # refuses a journal that does not fit, before anything is written
        probe.settle_initial()
        if not await self.store.create(key, self.clock.now()):
            raise WorkflowError(f"instance {instance_id!r} already exists")
        events = [NewEvent(e.type, e.data, e.recorded_at) for e in entries]
        await self.store.append(key, 0, events)
        await self._write_registry(key, probe)
        self._remember(probe)
        return self._handle(instance_id)

    async def restore_from_events(
        self, instance_id: str, events: Iterable[Ev | SystemEvent | Terminated]
    ) -> WorkflowInstance[S, Ev]:
        """Like :meth:`restore_instance`, from event objects (encoded through the codec). A
        versioned workflow restores them on the newest of its versions they replay on: on a
        version above 1 the journal starts with an entry recording it (and the runtime's
        initial state), on version 1 it holds the events alone, as before versions."""
        events = list(events)
        now = self.clock.now()
        refusals: list[CodecError | UnexpectedEvent] = []
        for version, workflow in self.workflow.versions().items():  # newest first
            probe = self._new(instance_id)
            entries: list[JournalEntry] = []
            if version != 1 and self._default is not NO_STATE:
                probe.pin(version)
                entries.append(probe.started_entry(self._default))
            elif version != 1:
                continue  # no initial state to start it from (version 1 says so, below)
            try:
                codec = workflow.codecs().events
                entries += [
                    JournalEntry(i, *codec.encode(e), now)
                    for i, e in enumerate(events, start=len(entries) + 1)
                ]
                probe.replay(entries)
            except (CodecError, UnexpectedEvent) as e:
                refusals.append(e)
                continue
            return await self.restore_instance(instance_id, entries)
        raise refusals[0]  # the newest version's reason (version 1 is always tried)

    async def instance_ids(self) -> list[str]:
        """Ids of every instance of this workflow, oldest created first (see
        :meth:`iter_instance_ids`)."""
        return [instance_id async for instance_id in self.iter_instance_ids()]

    async def iter_instance_ids(self, page_size: int = 500) -> AsyncIterator[str]:
        """Ids of every instance of this workflow, oldest created first (then by id), read
        from the registry ``page_size`` rows at a time by keyset (``SearchQuery.after``), so
        a page costs the same at any depth (and counts nothing). Each id comes once, and an
        instance created during the walk (later than the last one read) comes at its end. A
        registry row that does not decode is skipped."""
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size}")
        query = SearchQuery(sort="created", limit=page_size, count_limit=0)  # no total needed
        offset = 0  # rows skipped after query.after: unreadable ones, whose keys are unknown
        while True:
            page = await self.search(dataclasses.replace(query, offset=offset))
            for record in page.records:
                yield record.key.instance_id
            if len(page.records) + len(page.errors) < page_size:
                return
            if page.records:
                query = dataclasses.replace(query, after=query.cursor(page.records[-1]))
                offset = 0
            else:  # a page of unreadable rows only: step over them
                offset += len(page.errors)

    async def search(self, query: SearchQuery | None = None) -> Page:
        """Registry rows of this workflow matching ``query`` (status, times, tags, paging)."""
        query = query or SearchQuery()
        if query.workflow is None:
            query = dataclasses.replace(query, workflow=self.workflow.id)
        return await self.store.search(query)

    # -- background work --------------------------------------------------------------------

    async def run_due_wakeups(
        self, limit: int = 100, *, stop: asyncio.Event | None = None
    ) -> list[str]:
        """Claim and run instances whose wakeup (timer, retry) is due; returns their ids.

        If ``stop`` is set meanwhile, the remaining claims are left to lapse (another
        worker takes them over after ``lease_ttl``).
        """
        claims = await self.store.claim_due(
            self.clock.now(), limit, self.lease_ttl, workflows=[self.workflow.id]
        )
        woken: list[str] = []
        for claim in claims:
            if stop is not None and stop.is_set():
                break
            if claim.key.workflow != self.workflow.id:
                continue
            if await self._background(claim.key.instance_id, "due"):
                woken.append(claim.key.instance_id)
        return woken

    async def resume_stale(
        self, limit: int = 100, *, stop: asyncio.Event | None = None
    ) -> list[str]:
        """Resume instances left "running" by a process that died mid-step."""
        keys = await self.store.stale(self.clock.now(), limit, workflows=[self.workflow.id])
        resumed: list[str] = []
        for key in keys:
            if stop is not None and stop.is_set():
                break
            if key.workflow == self.workflow.id and await self._background(
                key.instance_id, "recover"
            ):
                resumed.append(key.instance_id)
        return resumed

    async def run_claimed(self, instance_id: str, *, kind: OperationKind = "due") -> bool:
        """Run an instance a worker claimed for this runtime (a due wakeup, or ``kind=
        "recover"`` for one a dead process left running); False if that failed (logged)."""
        return await self._background(instance_id, kind)

    async def _background(self, instance_id: str, kind: OperationKind) -> bool:
        try:
            # a claimed wakeup is cleared by the registry write, even if nothing was due
            await self._operate(instance_id, _proceed, kind=kind, write_registry=True)
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("background wakeup of %s:%s failed", self.workflow.id, instance_id)
            return False
        return True

    # -- the host protocol used by WorkflowInstance ----------------------------------------

    def _new(self, instance_id: str) -> _Instance[S, Ev]:
        return _Instance(
            self.workflow,
            instance_id,
            unstarted(self.workflow),
            self.clock,
            max_event_bytes=self.max_event_bytes,
            default_initial=self._default,
        )

    async def _load(
        self, instance_id: str, *, created: _Instance[S, Ev] | None = None, settle: bool = True
    ) -> _Instance[S, Ev]:
        key = self._key(instance_id)
        inner = self._cache.get(instance_id)
        tail: list[JournalEntry] = []
        refused = False
        if created is not None:
            # just registered under our lease, with the journal ``created`` holds already
            inner = created
        elif inner is None:
            inner = self._new(instance_id)
            if self.snapshot_every is not None:
                tail, refused = await self._from_snapshot(key, inner)
            else:
                tail = await self.store.read(key)
        else:
            tail = await self.store.read(key, after=inner.sequence)
        try:
            if tail:
                inner.replay(tail)
            if settle and created is None:
                inner.settle_initial()
        except BaseException:
            self._cache.pop(instance_id, None)
            raise
        if refused:
            await self._save_snapshot(key, inner, replace=True)
        self._remember(inner)
        self._note_if_ended(instance_id)
        return inner

    def _remember(self, inner: _Instance[S, Ev]) -> None:
        """Keep ``inner`` loaded (the most recently used), evicting the least used."""
        self._cache[inner.id] = inner
        self._cache.move_to_end(inner.id)
        while len(self._cache) > self._cache_size:
            evicted, _ = self._cache.popitem(last=False)
            self._forget(evicted)

    def _note_if_ended(self, instance_id: str) -> None:
        """If the instance held in memory has ended, count it among the ended ones kept,
        dropping the least recently used ended ones beyond ``cache_size // 10``."""
        inner = self._cache.get(instance_id)
        if inner is None or inner.execution.status not in _ENDED:
            return
        self._ended[instance_id] = None
        self._ended.move_to_end(instance_id)
        while len(self._ended) > self._ended_size:
            oldest, _ = self._ended.popitem(last=False)
            held = self._cache.get(oldest)
            if held is not None and held.execution.status in _ENDED:
                self._forget(oldest)

    def _forget(self, instance_id: str) -> None:
        """Drop what this process keeps of an instance (deleted, say)."""
        self._cache.pop(instance_id, None)
        self._ended.pop(instance_id, None)
        lock = self._locks.get(instance_id)
        if lock is not None and not lock.locked():
            del self._locks[instance_id]

    def _lock(self, instance_id: str) -> asyncio.Lock:
        lock = self._locks.get(instance_id)
        if lock is None:
            lock = self._locks[instance_id] = asyncio.Lock()
        return lock

    async def _operate(
        self,
        instance_id: str,
        fn: Callable[[_Instance[S, Ev]], Awaitable[R]],
        *,
        kind: OperationKind,
        write_registry: bool = False,
        created: _Instance[S, Ev] | None = None,
        settle: bool = True,
    ) -> R:
        """Run ``fn`` on the instance under its lease, as an operation of ``kind`` (told to
        the observers). ``created``: the instance was just registered with
        ``create_leased`` (so the lease is ours), and this is it."""
        op = Operation(self.workflow.id, instance_id, kind)
        with operating(op):
            observer = self._observer
            if observer is None:
                result = await self._leased(op, fn, write_registry, created, settle)
            else:
                observer.operation_started(op)
                if kind == "due":
                    observer.wakeup_fired(op)
                try:
                    result = await self._leased(op, fn, write_registry, created, settle)
                except BaseException as error:
                    observer.operation_ended(op, error)
                    raise
                observer.operation_ended(op, None)
        self._note_if_ended(instance_id)
        return result

    async def _leased(
        self,
        op: Operation,
        fn: Callable[[_Instance[S, Ev]], Awaitable[R]],
        write_registry: bool,
        created: _Instance[S, Ev] | None,
        settle: bool,
    ) -> R:
        instance_id = op.instance_id
        key = self._key(instance_id)
        async with self._lock(instance_id):
            # one in the cache exists (or was purged, having ended: then nothing is due); one
            # created with create_leased is ours already
            if created is None:
                if instance_id not in self._cache and not await self.store.exists(key):
                    raise InstanceNotFound(instance_id)
                await self.store.acquire(
                    key, self.owner, self.lease_ttl, self.lease_wait, self.clock.now()
                )
            if self._observer is not None:
                self._observer.lease_acquired(op, time.perf_counter() - op.started)
            renewer = _Renewer(self.lease_ttl / 3, lambda: self._renew(key))
            released = False
            try:
                inner = await self._ready(key, created, settle)
                before = self._registry_view(inner)
                was = _outcome(inner) if self._observer is not None else None
                inner.observer, inner.operation = self._observer, op
                try:
                    result = await fn(inner)
                except SequenceConflict:
                    self._cache.pop(instance_id, None)  # someone else wrote: reload next time
                    raise
                except BaseException as e:
                    if self._registry_view(inner) != before or inner.before_effects is None:
                        # the instance's own failure (an effect raised, say), not a caller's
                        # mistake such as a wrong signal: counted in the registry
                        error = _describe(e) if isinstance(e, Exception) else None
                        await self._write_registry(key, inner, failed=True, error=error)
                    raise
                finally:
                    inner.observer = inner.operation = None
                if self._observer is not None and _outcome(inner) != was:
                    _announce(self._observer, op, inner)
                await self._maybe_snapshot(key, inner)
                update = None
                if (
                    write_registry
                    or inner.before_effects is None
                    or self._registry_view(inner) != before
                ):
                    # something happened (a rejected or redelivered signal writes nothing):
                    # the registry row is written with the release, in one transaction
                    update = self._registry_update(inner)
                renewer.cancel()
                await self.store.release(key, self.owner, update)
                released = True
                return result
            finally:
                renewer.cancel()
                if not released:
                    try:
                        await self.store.release(key, self.owner)
                    except Exception:  # the lease lapses by itself; keep the first error
                        _log.warning("could not release the lease of %s", key, exc_info=True)

    async def _ready(
        self, key: InstanceKey, created: _Instance[S, Ev] | None, settle: bool
    ) -> _Instance[S, Ev]:
        """The instance, loaded under our lease and set to write through to the store."""
        try:
            inner = await self._load(key.instance_id, created=created, settle=settle)
        except (UnexpectedEvent, JournalError, DecodeError) as e:
            await self._park(key, e)  # the journal no longer replays: stop trying
            raise
        inner.persist = lambda entry: self._append(key, entry)
        # a created instance is registered as running already
        if created is None:
            inner.before_effects = lambda: self._mark_running(key, inner)
        return inner

    async def _observe(self, instance_id: str) -> _Instance[S, Ev]:
        key = self._key(instance_id)
        lock = self._lock(instance_id)
        cached = self._cache.get(instance_id)
        if cached is not None and lock.locked():
            # an operation of this process runs it (so no other process writes to it):
            # answer as of its latest recorded event, like the in-memory runtime
            return cached
        async with lock:
            if instance_id not in self._cache and not await self.store.exists(key):
                raise InstanceNotFound(instance_id)
            return await self._load(instance_id)

    async def _wait_for_change(self, timeout: float) -> None:
        await self.store.wait_for_change(timeout)

    async def _status(self, instance_id: str) -> InstanceStatus:
        record = await self.store.get_record(self._key(instance_id))
        if record is not None and record.status == "parked":
            return "parked"
        return (await self._observe(instance_id)).status

    async def _parked(self, instance_id: str) -> ParkedMark | None:
        record = await self.store.get_record(self._key(instance_id))
        if record is None or record.status != "parked":
            return None
        return ParkedMark(record.last_error or "parked", record.updated_at)

    async def _journal(self, instance_id: str) -> list[JournalEntry]:
        key = self._key(instance_id)
        if not await self.store.exists(key):
            raise InstanceNotFound(instance_id)
        return await self.store.read(key)

    # -- snapshots --------------------------------------------------------------------------

    async def _from_snapshot(
        self, key: InstanceKey, inner: _Instance[S, Ev]
    ) -> tuple[list[JournalEntry], bool]:
        """Lay the stored snapshot (if it holds) over ``inner``; returns the journal entries
        still to replay and whether a stored snapshot was refused (to be rewritten)."""
        position: int | None = None
        try:
            try:
                snapshot = await self.store.load_snapshot(key)
            except DecodeError as e:  # a corrupt snapshot row
                raise SnapshotRefused(str(e)) from e
            if snapshot is None:
                return await self.store.read(key), False
            if type(snapshot.sequence) is not int or snapshot.sequence < 0:
                raise SnapshotRefused(f"malformed position {snapshot.sequence!r}")
            position = covered = snapshot.sequence
            entries = await self.store.read(key, after=max(covered - 1, 0))
            if covered == 0:
                last = ""
            elif not entries or entries[0].sequence != covered:
                raise SnapshotRefused(f"the journal has no event #{covered}")
            else:
                last = event_digest(entries[0].type, entries[0].data)
                inner.last_entry, entries = entries[0], entries[1:]
            if encoded_size(snapshot.data, self.max_snapshot_bytes) > self.max_snapshot_bytes:
                raise SnapshotRefused("larger than max_snapshot_bytes")
            body = unseal(self._snapshot_key, str(key), covered, last, snapshot.data)
            execution, own_initial = self._decode_snapshot(body, inner)
        except SnapshotRefused as why:  # a cache only: rebuild from the journal instead
            at = "" if position is None else f" at #{position}"
            _log.log(
                logging.INFO if why.foreign else logging.WARNING,
                "snapshot of %s%s %s: %s; rebuilt from the journal and rewritten",
                key,
                at,
                "not used" if why.foreign else "ignored",
                why,
            )
            inner.last_entry = None
            return await self.store.read(key), True
        inner.execution = execution
        inner.own_initial = own_initial
        inner.sequence = inner.snapshot_sequence = covered
        return entries, False

    def _decode_snapshot(self, body: str, inner: _Instance[S, Ev]) -> tuple[Execution, bool]:
        """The execution in a snapshot ``body``, laid over the version of the workflow it was
        written for (each version's definition has its own fingerprint), which ``inner`` is
        then pinned to; SnapshotRefused (the newest's reason) if it fits none."""
        refused: list[SnapshotRefused] = []
        for version, workflow in self.workflow.versions().items():
            try:
                decoded = decode_snapshot(body, workflow, self._default)
            except SnapshotRefused as why:
                refused.append(why)
                continue
            inner.pin(version)
            return decoded
        raise refused[0]

    async def _maybe_snapshot(self, key: InstanceKey, inner: _Instance[S, Ev]) -> None:
        every = self.snapshot_every
        if every is None or inner.sequence - inner.snapshot_sequence < every:
            return
        await self._save_snapshot(key, inner)

    async def _save_snapshot(
        self, key: InstanceKey, inner: _Instance[S, Ev], *, replace: bool = False
    ) -> None:
        """Store a sealed snapshot of ``inner`` (best effort: a snapshot is a cache)."""
        sequence = inner.sequence
        try:
            body = encode_execution(inner.execution, inner.workflow, own_initial=inner.own_initial)
            if encoded_size(body, self.max_snapshot_bytes) > self.max_snapshot_bytes:
                raise SnapshotError(f"larger than max_snapshot_bytes ({self.max_snapshot_bytes})")
        except SnapshotError as e:
            _log.debug("no snapshot for %s: %s", key, e)
            inner.snapshot_sequence = sequence  # do not retry at every event
            return
        last = ""
        if sequence > 0:
            last_entry = inner.last_entry
            if last_entry is None or last_entry.sequence != sequence:
                return  # the instance was loaded from a snapshot and did not move since
            last = event_digest(last_entry.type, last_entry.data)
        data = seal(self._snapshot_key, str(key), sequence, last, body)
        try:
            await self.store.save_snapshot(key, Snapshot(sequence, data), replace=replace)
        except Exception:  # an optimisation only: the operation itself succeeded
            _log.log(
                logging.DEBUG if replace else logging.WARNING,
                "could not save a snapshot of %s",
                key,
                exc_info=True,
            )
            return
        inner.snapshot_sequence = sequence

    # -- store writes -----------------------------------------------------------------------

    async def _append(self, key: InstanceKey, entry: JournalEntry) -> None:
        event = NewEvent(entry.type, entry.data, entry.recorded_at)
        await self.store.append(key, entry.sequence - 1, [event])

    async def _renew(self, key: InstanceKey) -> None:
        """Renew the lease of ``key`` now, then every third of its time to live."""
        while True:
            try:
                await self.store.renew(key, self.owner, self.lease_ttl, self.clock.now())
            except Exception:  # the append fence still protects the journal
                _log.warning("could not renew the lease of %s", key, exc_info=True)
            await asyncio.sleep(self.lease_ttl / 3)

    async def _mark_running(self, key: InstanceKey, inner: _Instance[S, Ev]) -> None:
        await self.store.update(
            key,
            "running",
            inner.next_wakeup(),
            self._tags_of(inner),
            self.clock.now(),
            keep_failures=True,  # whether this attempt fails is told when it ends
        )

    def _registry_view(self, inner: _Instance[S, Ev]) -> tuple[Any, ...]:
        if inner.execution.initial_state is NO_STATE:
            return (inner.sequence, None, None, None)  # not begun: nothing to evaluate yet
        return (inner.sequence, inner.execution.status, inner.next_wakeup(), self._tags_of(inner))

    def _tags_of(self, inner: _Instance[S, Ev]) -> dict[str, str]:
        if self._tags is None or inner.execution.initial_state is NO_STATE:
            return {}  # no tags before the instance has a state
        return self._tags(inner.execution.state)

    def backoff_after(self, failures: int) -> timedelta:
        """How long to wait after the ``failures``-th failure in a row (1, 2, ...):
        ``failure_backoff`` doubled at each further failure, up to ``max_failure_backoff``."""
        if failures <= 1:
            return self.failure_backoff
        doublings = min(failures - 1, 62)
        ratio = self.max_failure_backoff / self.failure_backoff
        if 2**doublings >= ratio:
            return self.max_failure_backoff
        return self.failure_backoff * float(2**doublings)

    def _registry_update(
        self,
        inner: _Instance[S, Ev],
        *,
        failed: bool = False,
        error: str | None = None,
        backoff: timedelta | None = None,
    ) -> RegistryUpdate:
        now = self.clock.now()
        wakeup = inner.next_wakeup()
        if inner.execution.next_action(now, inner.retry_at) is not None:
            # something is due but did not run (it raised, or this operation only answered
            # a signal): a worker must come back, now, or after a backoff if it failed
            due = now + (backoff or self.failure_backoff) if failed else now
            wakeup = due if wakeup is None else min(wakeup, due)
        return RegistryUpdate(inner.execution.status, wakeup, self._tags_of(inner), now, error)

    async def _write_registry(
        self,
        key: InstanceKey,
        inner: _Instance[S, Ev],
        *,
        failed: bool = False,
        error: str | None = None,
    ) -> None:
        try:
            backoff = None
            failures = 0
            if failed and error is not None:
                # the failures in a row so far, this one included, set the backoff
                record = await self.store.get_record(key)
                failures = (record.failures if record else 0) + 1
                backoff = self.backoff_after(failures)
            u = self._registry_update(inner, failed=failed, error=error, backoff=backoff)
            limit = self.max_attempts
            if limit is not None and failures >= limit and u.status not in ENDED:
                step = inner.failed_step or "an operation"
                why = f"parked after {failures} failed attempts of {step!r}: {error}"
                u = RegistryUpdate("parked", None, u.tags, u.now, why)
                _log.error("%s %s", key, why)
                self._told_parked(why)
            await self.store.update(key, u.status, u.next_wakeup, u.tags, u.now, error=u.error)
        except Exception:
            if not failed:
                raise
            _log.warning("could not update the registry row of %s", key, exc_info=True)


async def purge_instances(
    store: Store,
    hosts: Iterable[DurableRuntime[Any, Any]],
    *,
    finished_before: datetime,
    statuses: Iterable[RegistryStatus],
    batch_size: int,
    on_batch: Callable[[int], None] | None,
    now: datetime,
) -> int:
    """Delete ended instances of ``hosts``' workflows in batches; returns how many."""
    wanted = tuple(dict.fromkeys(statuses))
    if not wanted or not set(wanted) <= set(ENDED):
        raise ValueError(
            f"purge deletes ended instances only: statuses must be among {ENDED}, got {wanted}"
        )
    if finished_before.tzinfo is None:
        raise ValueError("finished_before must be timezone-aware")
    if type(batch_size) is not int or batch_size < 1:
        raise ValueError(f"batch_size must be a positive number, got {batch_size!r}")
    by_id = {host.workflow.id: host for host in hosts}
    deleted = 0
    while True:
        keys = await store.purge(wanted, finished_before, now, batch_size, list(by_id))
        for key in keys:
            by_id[key.workflow]._forget(key.instance_id)
        deleted += len(keys)
        if keys and on_batch is not None:
            on_batch(deleted)
        if len(keys) < batch_size:
            return deleted


def _snapshot_key(key: str | bytes | None) -> tuple[bytes, bool]:
    """The key snapshots are sealed with, and whether it is shared (given, not random)."""
    if key is None:
        key = os.environ.get("WORKFLOWS4PY_SNAPSHOT_KEY") or None
    if key is None:
        return secrets.token_bytes(32), False
    raw = key.encode() if isinstance(key, str) else key
    if not isinstance(raw, bytes) or len(raw) < 16:
        raise ValueError("snapshot_key must be at least 16 bytes (a secret shared by the app)")
    return raw, True


def _describe(error: Exception, limit: int = 2000) -> str:
    """``Type: message`` of an exception, for the registry's last_error."""
    text = f"{type(error).__qualname__}: {error}" if str(error) else type(error).__qualname__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _outcome(inner: _Instance[Any, Any]) -> str | None:
    """The instance's status where it matters to observers (None before it began)."""
    if inner.execution.initial_state is NO_STATE:
        return None
    return inner.execution.status


def _announce(observer: Observer, op: Operation, inner: _Instance[Any, Any]) -> None:
    """Tell ``observer`` the instance ended or was terminated in ``op``."""
    status = inner.execution.status
    if status in ("finished", "failed"):
        observer.instance_finished(op, status)
    elif status == "terminated" and inner.execution.terminated is not None:
        observer.instance_terminated(op, inner.execution.terminated.reason)


async def _proceed(inner: _Instance[Any, Any]) -> None:
    fresh = inner.sequence == 0 and inner.execution.initial_state is NO_STATE
    if fresh and versioned(inner.workflow) and inner.default_initial is not NO_STATE:
        # a new instance of create_instance of a workflow with versions: a start entry
        # records the (newest) version it starts on
        await inner.begin(inner.default_initial)
        return
    inner.settle_initial()  # a new instance of create_instance starts from the default
    await inner.proceed()


class SharedOptions(TypedDict, total=False):
    """The options every workflow of a :class:`Runtime` shares (see :class:`DurableRuntime`)."""

    clock: Clock | None
    owner: str | None
    lease_ttl: float
    lease_wait: float
    failure_backoff: timedelta
    max_failure_backoff: timedelta
    snapshot_every: int | None
    snapshot_key: str | bytes | None
    cache_size: int
    max_request_bytes: int
    max_event_bytes: int
    max_snapshot_bytes: int
    max_attempts: int | None
    observers: Iterable[Observer] | None


class RuntimeOptions(SharedOptions, Generic[S], total=False):
    """The options every durable runtime takes (see :class:`DurableRuntime`)."""

    tags: Callable[[S], dict[str, str]] | None


class SqliteRuntime(DurableRuntime[S, Ev]):
    """The embedded default: every instance in one SQLite file (WAL, synchronous=FULL).

    ``synchronous="NORMAL"`` trades the durability of the last transactions on power loss
    (not on a process crash) for speed. The store runs its statements on the event loop's
    thread (waiting for another process's write lock asynchronously); ``threaded=True``
    runs them on a thread of its own instead, which keeps the loop free during commits at
    the cost of a thread hop per call. ``read_only=True`` opens the file read-only (a file
    this process cannot write is opened so anyway): reads work, writes raise StoreReadOnly.
    The other options are those of DurableRuntime.
    """

    def __init__(
        self,
        workflow: type[Workflow[S, Ev]],
        path: str | os.PathLike[str] = "workflows.db",
        *,
        initial_state: S,
        synchronous: Literal["FULL", "NORMAL", "OFF"] = "FULL",
        busy_timeout: float = 30.0,
        threaded: bool = False,
        read_only: bool = False,
        **options: Unpack[RuntimeOptions[S]],
    ) -> None:
        from workflows4py.stores import SqliteStore

        store = SqliteStore(
            path,
            synchronous=synchronous,
            busy_timeout=busy_timeout,
            threaded=threaded,
            read_only=read_only,
        )
        super().__init__(workflow, store, initial_state=initial_state, **options)


class PostgresRuntime(DurableRuntime[S, Ev]):
    """PostgreSQL: stateless workers on any number of machines share one database."""

    def __init__(
        self,
        workflow: type[Workflow[S, Ev]],
        conninfo: str,
        *,
        initial_state: S,
        schema: str = "workflows4py",
        min_connections: int = 1,
        max_connections: int = 10,
        connect_timeout: float = 10.0,
        **options: Unpack[RuntimeOptions[S]],
    ) -> None:
        from workflows4py.stores import PostgresStore

        store = PostgresStore(
            conninfo,
            schema=schema,
            connect_timeout=connect_timeout,
            min_size=min_connections,
            max_size=max_connections,
        )
        super().__init__(workflow, store, initial_state=initial_state, **options)
