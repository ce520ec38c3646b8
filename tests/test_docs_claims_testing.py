"""Claims of docs/testing.md, checked through the public API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from claims_common import Counted, Poke, St, on_count, poke, poked

from workflows4py import WIO, InMemoryRuntime, Workflow
from workflows4py.testing import ReplayCheckedInstance, TestClock, assert_replay_matches


def test_the_test_clock_starts_at_2024_and_moves_only_when_told() -> None:
    clock = TestClock()
    assert clock.now() == datetime(2024, 1, 1, tzinfo=UTC)
    assert clock.now() == clock.now()
    assert clock.advance(timedelta(days=7)) == datetime(2024, 1, 8, tzinfo=UTC)
    clock.set(datetime(2024, 2, 1, tzinfo=UTC))
    assert clock.now() == datetime(2024, 2, 1, tzinfo=UTC)


def test_the_test_clock_never_goes_backwards() -> None:
    clock = TestClock(datetime(2024, 3, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="cannot go back"):
        clock.set(datetime(2024, 2, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="non-negative"):
        clock.advance(timedelta(seconds=-1))
    assert clock.now() == datetime(2024, 3, 1, tzinfo=UTC)


def test_the_test_clock_takes_an_aware_start_only() -> None:
    paris = timezone(timedelta(hours=1))
    assert TestClock(datetime(2024, 3, 1, 10, 0, tzinfo=paris)).now() == datetime(
        2024, 3, 1, 9, 0, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        TestClock(datetime(2024, 3, 1))


class Unstable(Workflow[St, Counted]):
    """A "pure" step reading a global: replay computes another state."""

    definition = WIO.pure(St, lambda s: St(COUNTER.pop())) >> poked(lambda s: Counted(s.n))


COUNTER: list[int] = []


async def test_replay_checked_instance_checks_right_after_creation() -> None:
    COUNTER[:] = [2, 1]
    runtime = InMemoryRuntime(Unstable, initial_state=St())
    with pytest.raises(AssertionError, match="differs in state"):
        await ReplayCheckedInstance.create(runtime, "u-1")


async def test_replay_checked_instance_checks_after_each_signal() -> None:
    calls: list[int] = []

    def effect(s: St) -> Counted:
        calls.append(s.n)
        return Counted(s.n + 1)

    class Flow(Workflow[St, Counted]):
        definition = WIO.run_io(effect).handle_event(on_count) >> poked()

    runtime = InMemoryRuntime(Flow, initial_state=St())
    checked = await ReplayCheckedInstance.create(runtime, "c-1")
    assert checked.runtime is runtime
    assert await checked.deliver_signal(poke, Poke()) is None
    await checked.wakeup()
    assert calls == [0]  # the replays ran no effect
    assert await checked.status() == "finished"
    assert await checked.get_events() == [Counted(1), Counted(2)]
    assert await checked.expected_signals() == ()
    assert (await checked.get_progress()).result is not None


async def test_assert_replay_matches_names_the_instance_and_the_difference() -> None:
    COUNTER[:] = [2, 1]
    runtime = InMemoryRuntime(Unstable, initial_state=St())
    instance = await runtime.create_instance("u-2")
    with pytest.raises(AssertionError) as info:
        await assert_replay_matches(runtime, instance)
    message = str(info.value)
    assert "'u-2'" in message
    assert "differs in state" in message
    assert await runtime.instance_ids() == ["u-2"]  # the rebuild used a fresh runtime
