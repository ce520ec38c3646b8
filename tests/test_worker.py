"""The worker on its own: runs several instances at once, backs off from failing ones,
validates its options. (The runtime conformance suite covers what it does on each store.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from workflows4py import (
    WIO,
    DecodeError,
    DurableRuntime,
    JournalEntry,
    StoreUnavailable,
    Worker,
    Workflow,
)
from workflows4py.stores import Claim, InstanceKey, MemoryStore, NewEvent
from workflows4py.testing import TestClock

T0 = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


@dataclass(frozen=True)
class Count:
    n: int = 0


@dataclass(frozen=True)
class Done:
    pass


class Gate:
    """The effect's probe: how many run at once, and a switch to make them fail."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.now = 0
        self.most = 0
        self.calls = 0
        self.failing = False
        self.release = asyncio.Event()


GATE = Gate()


async def slow(state: Count) -> Done:
    GATE.calls += 1
    if GATE.failing:
        raise ConnectionError("the service is down")
    GATE.now += 1
    GATE.most = max(GATE.most, GATE.now)
    try:
        await GATE.release.wait()
    finally:
        GATE.now -= 1
    return Done()


class Later(Workflow[Count, Done]):
    """Waits an hour, then runs one slow effect."""

    definition = WIO.timer(timedelta(hours=1), input=Count, name="Wait") >> WIO.run_io(
        Count, slow, event=Done
    ).handle_event(lambda s, e: Count(s.n + 1))


@pytest.fixture(autouse=True)
def fresh_gate() -> None:
    GATE.reset()


async def runtime(clock: TestClock) -> DurableRuntime[Count, Done]:
    rt = DurableRuntime(Later, MemoryStore(), initial_state=Count(), clock=clock)
    await rt.initialize()
    return rt


async def _due(count: int) -> tuple[TestClock, DurableRuntime[Count, Done]]:
    """A runtime (and its clock) with ``count`` instances whose timer is due."""
    clock = TestClock(T0)
    rt = await runtime(clock)
    for n in range(count):
        await rt.create_instance(f"i-{n}")
    clock.advance(timedelta(hours=2))
    return clock, rt


async def test_runs_up_to_concurrency_instances_at_once() -> None:
    _, rt = await _due(10)
    worker = Worker([rt], concurrency=3, poll_interval=0.05)
    task = asyncio.create_task(worker.run())
    try:
        for _ in range(200):
            if GATE.now == 3:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # room for a fourth, were the worker to start one
        assert (GATE.now, GATE.most) == (3, 3)
        GATE.release.set()
        for _ in range(500):
            page = await rt.search()
            if all(r.status == "finished" for r in page.records):
                break
            await asyncio.sleep(0.01)
        assert [r.status for r in (await rt.search()).records] == ["finished"] * 10
        assert GATE.calls == 10
        assert GATE.most == 3
    finally:
        worker.stop()
        await asyncio.wait_for(task, 5)


async def test_run_once_runs_its_batch_concurrently() -> None:
    clock = TestClock(T0)
    rt = await runtime(clock)
    for n in range(5):
        await rt.create_instance(f"i-{n}")
    clock.advance(timedelta(hours=2))
    GATE.release.set()
    assert await Worker([rt], concurrency=2, batch=4).run_once() == 4
    assert GATE.most <= 2
    assert await Worker([rt], concurrency=2, batch=4).run_once() == 1


async def test_stop_lets_operations_in_progress_finish() -> None:
    clock = TestClock(T0)
    rt = await runtime(clock)
    instance = await rt.create_instance("only")
    clock.advance(timedelta(hours=2))
    worker = Worker([rt], poll_interval=0.05)
    task = asyncio.create_task(worker.run())
    for _ in range(200):
        if GATE.now == 1:
            break
        await asyncio.sleep(0.01)
    worker.stop()
    await asyncio.sleep(0.1)
    assert not task.done()  # waits for the effect in progress
    GATE.release.set()
    await asyncio.wait_for(task, 5)
    assert await instance.status() == "finished"


async def test_a_failing_instance_is_not_retried_in_a_tight_loop() -> None:
    clock = TestClock(T0)
    rt = await runtime(clock)
    await rt.create_instance("bad")
    clock.advance(timedelta(hours=2))
    GATE.failing = True
    worker = Worker([rt], poll_interval=0.01)
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.5)  # 50 poll intervals
        assert GATE.calls == 1
        # the runtime's failure backoff has passed: it is tried again, and succeeds
        GATE.failing = False
        GATE.release.set()
        clock.advance(rt.failure_backoff)
        for _ in range(300):
            if GATE.calls == 2:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert GATE.calls == 2
        record = await rt.store.get_record(InstanceKey(Later.name, "bad"))
        assert record is not None
        assert record.status == "finished"
    finally:
        worker.stop()
        await asyncio.wait_for(task, 5)


@pytest.mark.parametrize(
    "options",
    [{"concurrency": 0}, {"batch": 0}, {"concurrency": 1.5}, {"poll_interval": 0}],
)
async def test_bad_options_are_refused(options: dict[str, float]) -> None:
    rt = await runtime(TestClock(T0))
    with pytest.raises(ValueError, match="must be a positive"):
        Worker([rt], **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("prefetch", [-1, 1.5, True])
async def test_a_bad_prefetch_is_refused(prefetch: object) -> None:
    rt = await runtime(TestClock(T0))
    with pytest.raises(ValueError, match="prefetch must be a non-negative integer"):
        Worker([rt], prefetch=prefetch)  # type: ignore[arg-type]


async def _until(check: object, tries: int = 300) -> None:
    for _ in range(tries):
        if callable(check) and check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


async def test_an_instance_a_worker_runs_is_claimed_by_no_other_worker() -> None:
    # the run marks the instance running before its effect, with its wakeup not yet moved:
    # that write keeps the worker's claim, so no other worker claims the instance and then
    # waits for its lease
    clock = TestClock(T0)
    rt = await runtime(clock)
    await rt.create_instance("busy")
    clock.advance(timedelta(hours=2))
    worker = Worker([rt], concurrency=1, prefetch=0, poll_interval=0.05)
    task = asyncio.create_task(worker.run())
    try:
        await _until(lambda: GATE.now == 1)
        record = await rt.store.get_record(InstanceKey(Later.name, "busy"))
        assert record is not None
        assert record.status == "running"
        assert await rt.store.claim_due(clock.now(), 10, 30) == []
        GATE.release.set()
        await _until(lambda: GATE.now == 0 and GATE.calls == 1)
    finally:
        worker.stop()
        await asyncio.wait_for(task, 5)
    assert await rt.store.claim_due(clock.now() + timedelta(days=1), 10, 30) == []


async def test_a_worker_claims_prefetch_instances_ahead_and_starts_them_as_slots_free() -> None:
    clock, rt = await _due(10)
    worker = Worker([rt], concurrency=2, prefetch=3, poll_interval=0.05)
    task = asyncio.create_task(worker.run())
    try:
        await _until(lambda: GATE.now == 2)
        await asyncio.sleep(0.05)
        # two running, three claimed ahead: another worker finds the other five
        others = await rt.store.claim_due(clock.now(), 10, 1)
        assert len(others) == 5
        assert GATE.most == 2
        GATE.release.set()
        await _until(lambda: GATE.calls == 5)
        await asyncio.sleep(0.05)
        assert GATE.calls == 5  # the five claimed elsewhere wait for that claim to lapse
        clock.advance(timedelta(seconds=2))
        await _until(lambda: GATE.calls == 10)
    finally:
        worker.stop()
        await asyncio.wait_for(task, 5)
    assert [r.status for r in (await rt.search()).records] == ["finished"] * 10
    assert GATE.most == 2


async def test_a_stopping_worker_leaves_what_it_claimed_ahead_to_lapse() -> None:
    clock, rt = await _due(4)
    worker = Worker([rt], concurrency=1, prefetch=2, poll_interval=0.05)
    task = asyncio.create_task(worker.run())
    await _until(lambda: GATE.now == 1)
    worker.stop()
    GATE.release.set()
    await asyncio.wait_for(task, 5)
    assert GATE.calls == 1  # the two claimed ahead did not start
    assert await Worker([rt]).run_once() == 1  # only the unclaimed one is due for others
    clock.advance(timedelta(seconds=rt.lease_ttl))
    assert await Worker([rt]).run_once() == 2  # then the lapsed claims
    assert [r.status for r in (await rt.search()).records] == ["finished"] * 4


async def test_an_instance_claimed_ahead_for_half_its_claim_is_not_started() -> None:
    clock, rt = await _due(2)
    worker = Worker([rt], concurrency=1, prefetch=1, poll_interval=0.05)
    task = asyncio.create_task(worker.run())
    try:
        await _until(lambda: GATE.now == 1)
        # the one running takes longer than half the claim of the one waiting for its slot
        clock.advance(timedelta(seconds=rt.lease_ttl / 2))
        GATE.release.set()
        await _until(lambda: GATE.now == 0)
        await asyncio.sleep(0.1)
        assert GATE.calls == 1  # left to its claim's lapse: another worker may take it
        clock.advance(timedelta(seconds=rt.lease_ttl / 2))
        await _until(lambda: GATE.calls == 2)
    finally:
        worker.stop()
        await asyncio.wait_for(task, 5)


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def read(self, key: InstanceKey, after: int = 0) -> list[JournalEntry]:
        self.reads += 1
        return await super().read(key, after)


async def test_a_stale_instance_that_cannot_load_is_parked_and_left_alone() -> None:
    # its journal no longer replays: the first attempt fails before anything is written and
    # parks it, so stale() and claim_due() stop offering it (no retry at every backoff)
    clock = TestClock(T0)
    store = CountingStore()
    rt = DurableRuntime(Later, store, initial_state=Count(), clock=clock)
    await rt.initialize()
    key = InstanceKey(Later.name, "corrupt")
    await store.create(key, T0)
    await store.append(key, 0, [NewEvent("NoSuchEvent", "{}", T0)])
    await store.update(key, "running", None, {}, T0)
    worker = Worker([rt], poll_interval=0.01)
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.5)  # 50 poll intervals
        assert store.reads == 1
        clock.advance(rt.failure_backoff * 10)
        await asyncio.sleep(0.3)
        assert store.reads == 1
        record = await store.get_record(key)
        assert record is not None
        assert record.status == "parked"
        assert record.last_error is not None
        assert "'NoSuchEvent'" in record.last_error
        # resume tries again at once (and, the journal still broken, parks it again)
        with pytest.raises(DecodeError):
            await rt.resume("corrupt")
        assert store.reads == 2
        again = await store.get_record(key)
        assert again is not None
        assert again.status == "parked"
    finally:
        worker.stop()
        await asyncio.wait_for(task, 5)


class FlakyClaims(MemoryStore):
    """A store whose database is away for the first few claims."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.claims = 0

    async def claim_due(
        self, now: datetime, limit: int, lease: float, workflows: Sequence[str] | None = None
    ) -> list[Claim]:
        self.claims += 1
        if self.failures > 0:
            self.failures -= 1
            raise StoreUnavailable("the database went away")
        return await super().claim_due(now, limit, lease, workflows)


async def test_a_failing_claim_is_retried_after_the_poll_interval() -> None:
    clock = TestClock(T0)
    store = FlakyClaims(failures=3)
    rt = DurableRuntime(Later, store, initial_state=Count(), clock=clock)
    await rt.initialize()
    instance = await rt.create_instance("later")
    clock.advance(timedelta(hours=2))
    GATE.release.set()
    worker = Worker([rt], poll_interval=0.1)
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.25)
        assert store.claims <= 3  # not a tight loop: one try per poll interval
        for _ in range(300):
            if await instance.status() == "finished":
                break
            await asyncio.sleep(0.01)
        assert await instance.status() == "finished"  # once the database is back
    finally:
        worker.stop()
        await asyncio.wait_for(task, 5)


class Soon(Workflow[Count, Done]):
    """Waits 0.3 s (a real clock), then one slow effect."""

    definition = WIO.timer(timedelta(seconds=0.3), input=Count, name="Brief") >> WIO.run_io(
        Count, slow, event=Done
    ).handle_event(lambda s, e: Count(s.n + 1))


async def test_a_timer_fires_on_time_not_a_poll_interval_late() -> None:
    rt = DurableRuntime(Soon, MemoryStore(), initial_state=Count())
    await rt.initialize()
    GATE.release.set()
    worker = Worker([rt], poll_interval=10)
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.1)  # the worker is idle, waiting
        start = time.monotonic()
        instance = await rt.create_instance("soon")
        while await instance.status() != "finished":
            assert time.monotonic() - start < 3, "the timer waited for the poll interval"
            await asyncio.sleep(0.01)
        assert time.monotonic() - start >= 0.25  # and not early
    finally:
        worker.stop()
        await asyncio.wait_for(task, 5)


async def test_after_run_is_told_of_each_instance_it_ran_and_whether_it_succeeded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = TestClock(T0)
    rt = await runtime(clock)
    for name in ("a", "b"):
        await rt.create_instance(name)
    clock.advance(timedelta(hours=2))
    told: list[tuple[str, bool]] = []

    def after_run(key: InstanceKey, ok: bool) -> None:
        told.append((key.instance_id, ok))
        raise RuntimeError("a bug in the callback")  # logged, the worker goes on

    GATE.failing = True
    worker = Worker([rt], after_run=after_run)
    assert await worker.run_once() == 0
    assert sorted(told) == [("a", False), ("b", False)]
    assert "after_run failed" in caplog.text
    GATE.failing = False
    GATE.release.set()
    clock.advance(rt.failure_backoff)
    told.clear()
    assert await worker.run_once() == 2
    assert sorted(told) == [("a", True), ("b", True)]


async def nap(state: Count) -> Done:
    GATE.calls += 1
    await asyncio.sleep(0.005)
    return Done()


class Napping(Workflow[Count, Done]):
    """Waits an hour, then runs one effect that takes 5 ms."""

    definition = WIO.timer(timedelta(hours=1), input=Count, name="Wait") >> WIO.run_io(
        Count, nap, event=Done
    ).handle_event(lambda s, e: Count(s.n + 1))


async def test_two_workers_run_each_due_instance_once() -> None:
    # two processes' runtimes over one store: each instance is run by one worker, once
    # (none claimed by the second while the first runs it, to find nothing left to do)
    clock = TestClock(T0)
    store = MemoryStore()
    runtimes = [DurableRuntime(Napping, store, initial_state=Count(), clock=clock) for _ in "ab"]
    for rt in runtimes:
        await rt.initialize()
    for n in range(30):
        await runtimes[0].create_instance(f"i-{n:02}")
    clock.advance(timedelta(hours=2))
    runs: list[InstanceKey] = []
    workers = [
        Worker([rt], concurrency=4, poll_interval=0.02, after_run=lambda key, ok: runs.append(key))
        for rt in runtimes
    ]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        await _until(lambda: len(runs) >= 30)
        await asyncio.sleep(0.1)  # room for a second run of any of them
    finally:
        for w in workers:
            w.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert sorted(k.instance_id for k in runs) == [f"i-{n:02}" for n in range(30)]
    assert GATE.calls == 30
