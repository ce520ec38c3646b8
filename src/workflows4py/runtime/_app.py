"""One runtime for all of an application's workflows, over one store."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Literal, TypeVar, Unpack, overload

from workflows4py._errors import DefinitionError
from workflows4py.definition import SignalDef, Workflow
from workflows4py.stores import Page, RegistryStatus, SearchQuery, Store

from ._durable import ENDED, DurableRuntime, SharedOptions, purge_instances
from ._runtime import WorkflowInstance

__all__ = ["Runtime"]

S = TypeVar("S")
Ev = TypeVar("Ev")
Req = TypeVar("Req")
Resp = TypeVar("Resp")


class Runtime:
    """Runs every workflow of an application over one store: one connection pool, one
    notification listener, one worker, whatever the number of workflows.

    Build it over a store, or with :meth:`sqlite`, :meth:`postgres` or :meth:`memory`, and
    open it with ``async with`` (or :meth:`initialize`). Workflows are told apart by their
    ``id``; two with the same id are a ``DefinitionError``. ``tags`` maps a workflow to the
    function deriving its instances' tags from their state; ``initial_states`` maps a
    workflow to the initial state ``start`` uses when given none (else the workflow's own
    ``initial_state``), which is also the state of instances whose journal does not begin
    with one (those created by ``create_instance``, or before initial states were
    stored). The other options are those of :class:`DurableRuntime`, shared by every
    workflow.
    """

    def __init__(
        self,
        store: Store,
        workflows: Iterable[type[Workflow[Any, Any]]],
        *,
        tags: Mapping[type[Workflow[Any, Any]], Callable[[Any], dict[str, str]]] | None = None,
        initial_states: Mapping[type[Workflow[Any, Any]], Any] | None = None,
        **options: Unpack[SharedOptions],
    ) -> None:
        self.store = store
        hosts: dict[str, DurableRuntime[Any, Any]] = {}
        for workflow in workflows:
            if not (isinstance(workflow, type) and issubclass(workflow, Workflow)):
                raise TypeError(f"Runtime expects Workflow subclasses, got {workflow!r}")
            other = hosts.get(workflow.id)
            if other is not None:
                raise DefinitionError(
                    f"workflows {other.workflow.__qualname__} and {workflow.__qualname__} "
                    f"share the id {workflow.id!r}; give one an explicit id"
                )
            hosts[workflow.id] = DurableRuntime(
                workflow,
                store,
                initial_state=(initial_states or {}).get(workflow),
                tags=(tags or {}).get(workflow),
                **options,
            )
        if not hosts:
            raise ValueError("a runtime needs at least one workflow")
        for what, given in (("tags", tags), ("initial_states", initial_states)):
            unknown = [
                w for w in given or {} if hosts.get(w.id) is None or hosts[w.id].workflow is not w
            ]
            if unknown:
                raise ValueError(f"{what} given for workflows not in the runtime: {unknown!r}")
        self._hosts = hosts

    # -- shortcuts ------------------------------------------------------------------------------

    @classmethod
    def sqlite(
        cls,
        path: str | os.PathLike[str],
        workflows: Iterable[type[Workflow[Any, Any]]],
        *,
        synchronous: Literal["FULL", "NORMAL", "OFF"] = "FULL",
        busy_timeout: float = 30.0,
        threaded: bool = False,
        read_only: bool = False,
        group_commit: bool = True,
        tags: Mapping[type[Workflow[Any, Any]], Callable[[Any], dict[str, str]]] | None = None,
        initial_states: Mapping[type[Workflow[Any, Any]], Any] | None = None,
        **options: Unpack[SharedOptions],
    ) -> Runtime:
        """A runtime over one SQLite file (the embedded default; see :class:`SqliteStore`)."""
        from workflows4py.stores import SqliteStore

        store = SqliteStore(
            path,
            synchronous=synchronous,
            busy_timeout=busy_timeout,
            threaded=threaded,
            read_only=read_only,
            group_commit=group_commit,
        )
        return cls(store, workflows, tags=tags, initial_states=initial_states, **options)

    @classmethod
    def postgres(
        cls,
        conninfo: str,
        workflows: Iterable[type[Workflow[Any, Any]]],
        *,
        schema: str = "workflows4py",
        min_connections: int = 1,
        max_connections: int = 10,
        connect_timeout: float = 10.0,
        group_commit: bool = True,
        tags: Mapping[type[Workflow[Any, Any]], Callable[[Any], dict[str, str]]] | None = None,
        initial_states: Mapping[type[Workflow[Any, Any]], Any] | None = None,
        **options: Unpack[SharedOptions],
    ) -> Runtime:
        """A runtime over one PostgreSQL schema: one pool for every workflow."""
        from workflows4py.stores import PostgresStore

        store = PostgresStore(
            conninfo,
            schema=schema,
            min_size=min_connections,
            max_size=max_connections,
            connect_timeout=connect_timeout,
            group_commit=group_commit,
        )
        return cls(store, workflows, tags=tags, initial_states=initial_states, **options)

    @classmethod
    def memory(
        cls,
        workflows: Iterable[type[Workflow[Any, Any]]],
        *,
        tags: Mapping[type[Workflow[Any, Any]], Callable[[Any], dict[str, str]]] | None = None,
        initial_states: Mapping[type[Workflow[Any, Any]], Any] | None = None,
        **options: Unpack[SharedOptions],
    ) -> Runtime:
        """A runtime keeping everything in this process (tests, scripts)."""
        from workflows4py.stores import MemoryStore

        return cls(MemoryStore(), workflows, tags=tags, initial_states=initial_states, **options)

    # -- lifecycle ------------------------------------------------------------------------------

    async def initialize(self) -> None:
        """Create or migrate the store's schema (safe from many processes at once)."""
        await self.store.initialize()

    async def close(self) -> None:
        """Close the store (its connections, its listener), and forget the instances held
        in memory."""
        for host in self._hosts.values():
            host._forget_all()
        await self.store.close()

    async def __aenter__(self) -> Runtime:
        await self.initialize()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- workflows ------------------------------------------------------------------------------

    @property
    def workflows(self) -> tuple[type[Workflow[Any, Any]], ...]:
        """The workflows of this runtime, in the order given."""
        return tuple(host.workflow for host in self._hosts.values())

    @property
    def hosts(self) -> tuple[DurableRuntime[Any, Any], ...]:
        """One :class:`DurableRuntime` per workflow, all over this runtime's store."""
        return tuple(self._hosts.values())

    @overload
    def of(self, workflow: type[Workflow[S, Ev]]) -> DurableRuntime[S, Ev]: ...
    @overload
    def of(self, workflow: str) -> DurableRuntime[Any, Any]: ...
    def of(self, workflow: type[Workflow[Any, Any]] | str) -> DurableRuntime[Any, Any]:
        """The part of this runtime that runs ``workflow`` (the class or its id);
        ValueError if it is not one of this runtime's."""
        key = workflow if isinstance(workflow, str) else getattr(workflow, "id", None)
        host = self._hosts.get(key) if isinstance(key, str) else None
        if host is None or not (isinstance(workflow, str) or host.workflow is workflow):
            known = ", ".join(repr(i) for i in self._hosts)
            raise ValueError(f"{workflow!r} is not a workflow of this runtime ({known})")
        return host

    # -- instances ------------------------------------------------------------------------------

    @overload
    async def start(
        self,
        workflow: type[Workflow[S, Ev]],
        instance_id: str,
        *,
        initial_state: S | None = None,
        signal: tuple[SignalDef[Req, Resp], Req] | None = None,
    ) -> WorkflowInstance[S, Ev]: ...
    @overload
    async def start(
        self,
        workflow: str,
        instance_id: str,
        *,
        initial_state: Any = None,
        signal: tuple[SignalDef[Req, Resp], Req] | None = None,
    ) -> WorkflowInstance[Any, Any]: ...
    async def start(
        self,
        workflow: type[Workflow[Any, Any]] | str,
        instance_id: str,
        *,
        initial_state: Any = None,
        signal: tuple[SignalDef[Req, Resp], Req] | None = None,
    ) -> WorkflowInstance[Any, Any]:
        """Start an instance, idempotently (see :meth:`DurableRuntime.start`)."""
        return await self.of(workflow).start(
            instance_id, initial_state=initial_state, signal=signal
        )

    async def terminate(
        self, workflow: type[Workflow[Any, Any]] | str, instance_id: str, reason: str
    ) -> bool:
        """Stop an instance for good (see :meth:`DurableRuntime.terminate`)."""
        return await self.of(workflow).terminate(instance_id, reason)

    async def resume(self, workflow: type[Workflow[Any, Any]] | str, instance_id: str) -> bool:
        """Take a parked instance up again (see :meth:`DurableRuntime.resume`)."""
        return await self.of(workflow).resume(instance_id)

    @overload
    async def fork(
        self, workflow: type[Workflow[S, Ev]], instance_id: str, new_id: str, *, after_sequence: int
    ) -> WorkflowInstance[S, Ev]: ...
    @overload
    async def fork(
        self, workflow: str, instance_id: str, new_id: str, *, after_sequence: int
    ) -> WorkflowInstance[Any, Any]: ...
    async def fork(
        self,
        workflow: type[Workflow[Any, Any]] | str,
        instance_id: str,
        new_id: str,
        *,
        after_sequence: int,
    ) -> WorkflowInstance[Any, Any]:
        """A new instance from a prefix of another's journal (see :meth:`DurableRuntime.fork`)."""
        return await self.of(workflow).fork(instance_id, new_id, after_sequence=after_sequence)

    async def purge(
        self,
        *,
        finished_before: datetime,
        statuses: Iterable[RegistryStatus] = ENDED,
        workflows: Iterable[type[Workflow[Any, Any]] | str] | None = None,
        batch_size: int = 500,
        on_batch: Callable[[int], None] | None = None,
    ) -> int:
        """Delete the ended instances (``finished``, ``failed``, ``terminated``; not one
        under way) of ``workflows`` (default: every workflow of this runtime) last updated
        before ``finished_before``, in batches; see :meth:`DurableRuntime.purge`."""
        hosts = self.hosts if workflows is None else [self.of(w) for w in workflows]
        first = next(iter(self._hosts.values()))
        return await purge_instances(
            self.store,
            hosts,
            finished_before=finished_before,
            statuses=statuses,
            batch_size=batch_size,
            on_batch=on_batch,
            now=first.clock.now(),
        )

    async def export_journal(
        self, workflow: type[Workflow[Any, Any]] | str, instance_id: str
    ) -> str:
        """An instance's journal as JSON lines (see :meth:`DurableRuntime.export_journal`)."""
        return await self.of(workflow).export_journal(instance_id)

    @overload
    async def get(
        self, workflow: type[Workflow[S, Ev]], instance_id: str
    ) -> WorkflowInstance[S, Ev]: ...
    @overload
    async def get(self, workflow: str, instance_id: str) -> WorkflowInstance[Any, Any]: ...
    async def get(
        self, workflow: type[Workflow[Any, Any]] | str, instance_id: str
    ) -> WorkflowInstance[Any, Any]:
        """An existing instance of ``workflow``; raises InstanceNotFound."""
        return await self.of(workflow).get_instance(instance_id)

    async def search(self, query: SearchQuery | None = None) -> Page:
        """Registry rows of every workflow of this runtime matching ``query``."""
        query = query or SearchQuery()
        if query.workflow is not None and query.workflow not in self._hosts:
            raise ValueError(f"no workflow with the id {query.workflow!r} in this runtime")
        return await self.store.search(query)

    async def run_due_wakeups(self, limit: int = 100) -> list[tuple[str, str]]:
        """Run the instances whose wakeup is due, of every workflow; returns their
        ``(workflow id, instance id)``."""
        woken: list[tuple[str, str]] = []
        for workflow_id, host in self._hosts.items():
            woken += [(workflow_id, i) for i in await host.run_due_wakeups(limit)]
        return woken
