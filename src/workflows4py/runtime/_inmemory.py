"""The in-memory runtime: the durable runtime over a :class:`~workflows4py.stores.MemoryStore`."""

from __future__ import annotations

from typing import Unpack

from workflows4py.definition import Workflow

from ._durable import DurableRuntime, RuntimeOptions
from ._runtime import Ev, S

__all__ = ["InMemoryRuntime"]


class InMemoryRuntime(DurableRuntime[S, Ev]):
    """Runs instances of one workflow in this process, for tests, scripts and demos.

    It is a :class:`DurableRuntime` over a fresh :class:`~workflows4py.stores.MemoryStore`
    (one implementation, the same behaviour, nothing to initialize): events still go
    through the workflow's JSON codecs, so a workflow that works here serializes the same
    way on SQLite or PostgreSQL. Nothing survives the process. ``snapshot_every`` defaults
    to None here (the loaded instances stay in memory anyway); the other options are
    those of DurableRuntime. For several workflows over one memory store, use
    ``Runtime.memory``.
    """

    def __init__(
        self,
        workflow: type[Workflow[S, Ev]],
        *,
        initial_state: S | None = None,
        **options: Unpack[RuntimeOptions[S]],
    ) -> None:
        from workflows4py.stores import MemoryStore

        options.setdefault("snapshot_every", None)
        super().__init__(workflow, MemoryStore(), initial_state=initial_state, **options)
