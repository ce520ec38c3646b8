"""Timers: the release instant is fixed when a timer starts; progress shows that instant;
timers inside for-each elements and embedded workflows (examples/timers_inside.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from example_script import run_example

from workflows4py import WIO, InMemoryRuntime, TimerProgress, TimerStarted, Workflow, render
from workflows4py.testing import TestClock

START = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Case:
    number: str


@dataclass(frozen=True)
class Closed:
    number: str


def close(case: Case) -> Closed:
    return Closed(case.number)


def waiting(days: int) -> type[Workflow[Case, Closed]]:
    class Waiting(Workflow[Case, Closed]):
        name = "waiting"
        cooling_off = WIO.timer(timedelta(days=days), input=Case, name="Cooling Off")
        close_case = WIO.run_io(close).handle_event(lambda c, e: c)
        definition = cooling_off >> close_case

    return Waiting


async def test_a_started_timer_keeps_its_instant_when_the_duration_changes() -> None:
    clock = TestClock(START)
    old = InMemoryRuntime(waiting(7), initial_state=Case("c-1"), clock=clock)
    case = await old.create_instance("c-1")
    journal = await case.get_journal()
    due = START + timedelta(days=7)

    clock.advance(timedelta(days=1))  # the deploy: the cooling-off period is now 14 days
    new = InMemoryRuntime(waiting(14), initial_state=Case("c-1"), clock=clock)
    restored = await new.restore_instance("c-1", journal)
    assert await restored.next_wakeup() == due  # the instant recorded in TimerStarted
    timer = (await restored.get_progress()).children[0]
    assert timer == TimerProgress(
        name="Cooling Off",
        duration=timedelta(days=7),
        started_at=START,
        resume_at=due,
        waiting=True,
    )
    assert (
        f"[timer] Cooling Off (7d, started {START.isoformat()}, due {due.isoformat()})  … waiting"
        in render.text(await restored.get_progress())
    )

    clock.set(due)
    assert await new.run_due_wakeups() == ["c-1"]
    assert await restored.status() == "finished"

    fresh = await new.create_instance("c-2")  # started after the deploy: the new duration
    assert await fresh.next_wakeup() == due + timedelta(days=14)


def test_a_timer_not_started_shows_the_duration_of_the_definition() -> None:
    from workflows4py.engine import Execution

    progress = Execution.start(waiting(7).definition, Case("c-3")).progress()
    timer = progress.children[0]
    assert isinstance(timer, TimerProgress)
    assert (timer.duration, timer.started_at, timer.resume_at) == (timedelta(days=7), None, None)
    dynamic = WIO.timer(lambda c: START, input=Case, name="Until")
    unknown = Execution.start(dynamic, Case("c-4")).progress()
    assert isinstance(unknown, TimerProgress)
    assert unknown.duration is None


async def test_a_timer_whose_instant_had_passed_shows_no_negative_wait() -> None:
    class Late(Workflow[Case, Closed]):
        until = WIO.timer(lambda c: START - timedelta(hours=1), input=Case, name="Until")
        definition = until >> WIO.run_io(close).handle_event(lambda c, e: c)

    runtime = InMemoryRuntime(Late, initial_state=Case("c-5"), clock=TestClock(START))
    case = await runtime.create_instance("c-5")
    assert (await case.get_events())[0] == TimerStarted("Until", START, START - timedelta(hours=1))
    timer = (await case.get_progress()).children[0]
    assert isinstance(timer, TimerProgress)
    assert timer.duration == timedelta(0)


def test_the_timers_inside_example_runs() -> None:
    from workflows4py.examples import timers_inside

    asyncio.run(timers_inside.main())


def test_the_timers_inside_example_runs_as_a_script() -> None:
    done = run_example("timers_inside.py")
    assert done.returncode == 0, done.stderr
    assert "ParcelEvent(key='P-1', event=TimerStarted(timer='Delivery Window'" in done.stdout
    assert "CoolingOffEvent(event=TimerReleased(timer='Cooling Off'" in done.stdout
    assert "finished: Order(" in done.stdout
