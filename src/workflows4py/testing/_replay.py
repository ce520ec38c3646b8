"""Replay checks, the heart of testing an event-sourced workflow.

The replay check is the heart of testing an event-sourced workflow: after every step of a
scenario, a *fresh* instance rebuilt from the journal alone must reach exactly the state,
progress and expectations of the live one, without running any effect.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from workflows4py.definition import Result, SignalDef, SystemEvent, Terminated
from workflows4py.engine import StepProgress
from workflows4py.render import text
from workflows4py.runtime import InMemoryRuntime, InstanceStatus, UnexpectedSignal, WorkflowInstance
from workflows4py.stores import JournalEntry

__all__ = ["ReplayCheckedInstance", "assert_replay_matches"]

S = TypeVar("S")
Ev = TypeVar("Ev")
Req = TypeVar("Req")
Resp = TypeVar("Resp")


async def assert_replay_matches(
    runtime: InMemoryRuntime[S, Ev], instance: WorkflowInstance[S, Ev]
) -> None:
    """Rebuild ``instance`` from its journal in a fresh runtime and compare everything.

    Raises AssertionError naming what differs (state, status, progress, expected signals
    or events). Effects are not run during the rebuild: a fresh runtime replays the
    journal only.
    """
    fresh_runtime = InMemoryRuntime(
        runtime.workflow, initial_state=runtime.initial_state, clock=runtime.clock
    )
    journal = await instance.get_journal()
    fresh = await fresh_runtime.restore_instance(instance.id, journal)
    pairs: list[tuple[str, Any, Any]] = [
        ("state", await instance.query_state(), await fresh.query_state()),
        ("status", await instance.status(), await fresh.status()),
        ("expected signals", await instance.expected_signals(), await fresh.expected_signals()),
        ("events", await instance.get_events(), await fresh.get_events()),
        ("progress", await instance.get_progress(), await fresh.get_progress()),
    ]
    for what, live, replayed in pairs:
        if live != replayed:
            detail = ""
            if isinstance(live, StepProgress) and isinstance(replayed, StepProgress):
                detail = f"\nlive:\n{text(live)}\nreplayed:\n{text(replayed)}"
            raise AssertionError(
                f"replay of {instance.id!r} after {len(journal)} events differs in {what}: "
                f"live {live!r} != replayed {replayed!r}{detail}"
            )


class ReplayCheckedInstance(Generic[S, Ev]):
    """Wraps an instance so that every operation is followed by :func:`assert_replay_matches`.

    Use it to drive a scenario: each signal and wakeup is checked against a rebuild from
    the journal as it stands right after that step.
    """

    def __init__(self, runtime: InMemoryRuntime[S, Ev], instance: WorkflowInstance[S, Ev]) -> None:
        self.runtime = runtime
        self.instance = instance

    @classmethod
    async def create(
        cls, runtime: InMemoryRuntime[S, Ev], instance_id: str
    ) -> ReplayCheckedInstance[S, Ev]:
        """Create the instance and check its replay right away."""
        checked = cls(runtime, await runtime.create_instance(instance_id))
        await checked.check()
        return checked

    async def check(self) -> None:
        await assert_replay_matches(self.runtime, self.instance)

    async def deliver_signal(
        self, signal: SignalDef[Req, Resp], request: Req, *, route: str | None = None
    ) -> Resp | UnexpectedSignal:
        response = await self.instance.deliver_signal(signal, request, route=route)
        await self.check()
        return response

    async def wakeup(self) -> None:
        await self.instance.wakeup()
        await self.check()

    @property
    def id(self) -> str:
        return self.instance.id

    async def query_state(self) -> S:
        return await self.instance.query_state()

    async def get_journal(self) -> list[JournalEntry]:
        return await self.instance.get_journal()

    async def result(self) -> Result[Any, Any] | None:
        return await self.instance.result()

    async def run_due_wakeups(self) -> list[str]:
        """Run the runtime's due wakeups, then check replay."""
        woken = await self.runtime.run_due_wakeups()
        await self.check()
        return woken

    async def status(self) -> InstanceStatus:
        return await self.instance.status()

    async def get_events(self) -> list[Ev | SystemEvent | Terminated]:
        return await self.instance.get_events()

    async def get_progress(self) -> StepProgress:
        return await self.instance.get_progress()

    async def expected_signals(self) -> tuple[SignalDef[Any, Any], ...]:
        return await self.instance.expected_signals()
