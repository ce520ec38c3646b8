"""The runtime conformance suite: DurableRuntime held to one contract on every store.

A backend's test module subclasses :class:`RuntimeConformance` (and, for stores several OS
processes can open, :class:`ProcessConformance`) and overrides the ``new_store`` fixture: a
factory of *unopened* stores that all reach the same data, as several processes opening one
database would. Each call is an independent handle: a runtime built on a new handle has an
empty cache and must rebuild everything from the store. Opening and closing is done here.

The scenarios check the guarantees of ARCHITECTURE.md section 5 through the runtime: replay
equals the live run after every step, restarts lose nothing and re-run no effect, time only
through the injected clock, serialized operations with gapless journals, typed errors that
change nothing, and recovery of instances whose process died.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_asyncio

from workflows4py import (
    WIO,
    DecodeError,
    DurableRuntime,
    Err,
    InMemoryRuntime,
    InstanceNotFound,
    InvalidInstanceId,
    InvalidSignalRequest,
    JournalError,
    Ok,
    Result,
    SignalDef,
    StoreError,
    TimerReleased,
    TimerStarted,
    UnexpectedEvent,
    UnexpectedSignal,
    Worker,
    Workflow,
    WorkflowInstance,
    current_step,
)
from workflows4py.examples import pull_request as pr
from workflows4py.stores import InstanceKey, InstanceRecord, NewEvent, SearchQuery, Store
from workflows4py.testing import TestClock

__all__ = [
    "DEPOSITS",
    "T0",
    "OpenStore",
    "ProcessConformance",
    "RuntimeConformance",
    "StoreFactory",
    "StoreSpec",
    "deliver_in_process",
    "open_spec",
]

S = TypeVar("S")
Ev = TypeVar("Ev")

StoreFactory = Callable[[], Store]
OpenStore = Callable[[], Awaitable[Store]]
# How a child process opens the same data: ("sqlite", path) or ("postgres", dsn, schema).
StoreSpec = tuple[str, ...]

T0 = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
RESULTS = "<Some tests results>"

# -- counting side effects ---------------------------------------------------------------------


class Calls:
    """How often each named effect ran in this process, with injectable failures."""

    def __init__(self) -> None:
        self.count: dict[str, int] = {}
        self.failures: dict[str, int] = {}

    def reset(self) -> None:
        self.count.clear()
        self.failures.clear()

    def hit(self, name: str) -> None:
        self.count[name] = self.count.get(name, 0) + 1
        if self.failures.get(name, 0) > 0:
            self.failures[name] -= 1
            raise ConnectionError(f"{name} is down")


CALLS = Calls()

# -- small workflows: effects, a timer, retries ------------------------------------------------


@dataclass(frozen=True)
class St:
    value: int
    log: tuple[str, ...] = ()


@dataclass(frozen=True)
class Happened:
    what: str
    amount: int = 1


def record(state: St, event: Happened) -> St:
    return St(state.value + event.amount, (*state.log, event.what))


def effect(name: str) -> WIO[St, Any, St]:
    def run(state: St) -> Happened:
        CALLS.hit(name)
        return Happened(name)

    return WIO.run_io(St, run, event=Happened).handle_event(record).named(name)


def note(text: str) -> WIO[St, Any, St]:
    return WIO.pure(St, lambda s: St(s.value, (*s.log, text)))


class Timed(Workflow[St, Happened]):
    """An effect, a one-hour timer, another effect."""

    definition = (
        effect("a") >> WIO.timer(timedelta(hours=1), input=St, name="Cool Down") >> effect("b")
    )


class Reminder(Workflow[St, Happened]):
    """Another workflow with a timer, sharing a store with Timed."""

    definition = WIO.timer(timedelta(minutes=1), input=St, name="Wait") >> effect("remind")


class Flaky(Workflow[St, Happened]):
    """A stateless retry: a failed attempt persists nothing and is tried again 2 min later."""

    definition = effect("flaky").retry(timedelta(minutes=2)) >> note("done")


class Fragile(Workflow[St, Happened]):
    """An effect without a retry policy: the runtime's failure backoff brings it back."""

    definition = effect("fragile") >> effect("after")


# -- a ledger: many steps awaiting the same signal, for concurrent deliveries -----------------

DEPOSITS = 4  # deposit steps in a Ledger; every further deposit is a redelivery


@dataclass(frozen=True)
class Balance:
    total: int


@dataclass(frozen=True)
class Deposit:
    token: str
    amount: int = 1


@dataclass(frozen=True)
class Deposited:
    token: str
    amount: int


@dataclass(frozen=True)
class Receipt:
    token: str
    total: int


deposit_signal = SignalDef("deposit", request=Deposit, response=Receipt)


async def take_deposit(state: Balance, request: Deposit) -> Deposited:
    CALLS.hit(f"deposit:{current_step().instance_id}")
    # a handler that takes a moment: without exclusive operations, concurrent deliveries
    # (other tasks, other processes) would overlap here and fork the journal
    await asyncio.sleep(0.005)
    return Deposited(request.token, request.amount)


def on_deposit(state: Balance, event: Deposited) -> Balance:
    return Balance(state.total + event.amount)


def receipt(state: Balance, event: Deposited, request: Deposit) -> Receipt:
    # from the event, not the request: a redelivery names the deposit that was recorded
    return Receipt(event.token, state.total + event.amount)


def deposit_step(n: int) -> WIO[Balance, Any, Balance]:
    return (
        WIO.handle_signal(deposit_signal, input=Balance)
        .with_side_effects(take_deposit)
        .handle_event(on_deposit)
        .produce_response(receipt)
        .named(f"Deposit {n}")
    )


def _ledger() -> WIO[Balance, Any, Balance]:
    flow = deposit_step(1)
    for n in range(2, DEPOSITS + 1):
        flow = flow >> deposit_step(n)
    return flow


class Ledger(Workflow[Balance, Deposited]):
    definition = _ledger()


# -- a shop: registry statuses and tags ---------------------------------------------------------


@dataclass(frozen=True)
class Order:
    customer: str = ""
    stage: str = "new"


@dataclass(frozen=True)
class Placed:
    customer: str


@dataclass(frozen=True)
class Shipped:
    approved: bool


@dataclass(frozen=True)
class Place:
    customer: str


@dataclass(frozen=True)
class Ship:
    approve: bool


@dataclass(frozen=True)
class Refused:
    pass


place_signal = SignalDef("place", request=Place)
ship_signal = SignalDef("ship", request=Ship)


def placed(state: Order, request: Place) -> Placed:
    return Placed(request.customer)


def on_placed(state: Order, event: Placed) -> Order:
    return Order(event.customer, "placed")


def shipped(state: Order, request: Ship) -> Shipped:
    return Shipped(request.approve)


def on_shipped(state: Order, event: Shipped) -> Result[Order, Refused]:
    return Ok(Order(state.customer, "shipped")) if event.approved else Err(Refused())


class Shop(Workflow[Order, Placed | Shipped]):
    place = (
        WIO.handle_signal(place_signal, input=Order)
        .purely(placed)
        .handle_event(on_placed)
        .void_response()
    )
    ship = (
        WIO.handle_signal(ship_signal, input=Order)
        .purely(shipped)
        .handle_event_with_error(on_shipped)  # Refused is not handled: the instance fails
        .void_response()
    )
    definition = place >> ship


def order_tags(state: Order) -> dict[str, str]:
    return {"customer": state.customer, "stage": state.stage}


# -- helpers ------------------------------------------------------------------------------------


def pr_key(instance_id: str) -> InstanceKey:
    return InstanceKey(pr.PullRequest.name, instance_id)


def encode_pr(event: pr.PREvent) -> tuple[str, str]:
    return pr.PullRequest.codecs().events.encode(event)


async def durable(
    open_store: OpenStore, workflow: type[Workflow[S, Ev]], initial: S, **options: Any
) -> DurableRuntime[S, Ev]:
    """A runtime on a new handle of the backend's data (so with an empty cache)."""
    return DurableRuntime(workflow, await open_store(), initial_state=initial, **options)


async def views(instance: WorkflowInstance[S, Ev], *, wakeup: bool = True) -> dict[str, object]:
    """Everything an instance shows, for comparing two handles on it."""
    seen: dict[str, object] = {
        "state": await instance.query_state(),
        "status": await instance.status(),
        "result": await instance.result(),
        "progress": await instance.get_progress(),
        "events": await instance.get_events(),
        "journal": await instance.get_journal(),
        "expected signals": await instance.expected_signals(),
    }
    if wakeup:
        seen["next wakeup"] = await instance.next_wakeup()
    return seen


async def assert_replays(
    open_store: OpenStore,
    runtime: DurableRuntime[S, Ev],
    live: WorkflowInstance[S, Ev],
) -> None:
    """A NEW runtime on a second handle sees exactly what ``live`` shows; so does a pure
    in-memory replay of the stored journal; and the registry row agrees on the status."""
    expected = await views(live)
    assert runtime.initial_state is not None  # the conformance workflows have one
    other_runtime = await durable(
        open_store, runtime.workflow, runtime.initial_state, clock=runtime.clock, owner="checker"
    )
    try:
        other = await other_runtime.get_instance(live.id)
        seen = await views(other)
        for what, value in expected.items():
            assert seen[what] == value, f"a new runtime sees another {what} of {live.id!r}"
        row = await other_runtime.store.get_record(InstanceKey(runtime.workflow.name, live.id))
        assert row is not None
        assert (row.status, row.next_wakeup) == (expected["status"], expected["next wakeup"])
    finally:
        await other_runtime.close()
    memory = InMemoryRuntime(runtime.workflow, initial_state=runtime.initial_state)
    replayed = await memory.restore_instance(live.id, await live.get_journal())
    for what in ("state", "status", "result", "progress", "events", "expected signals"):
        value = (await views(replayed, wakeup=False))[what]
        assert value == expected[what], f"an in-memory replay gives another {what} of {live.id!r}"


async def wait_until(
    condition: Callable[[], Awaitable[bool]], timeout: float, what: str, step: float = 0.02
) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting until {what}")
        await asyncio.sleep(step)


Answer = tuple[str, str, str, str, int]  # instance id, token sent, kind, token answered, total


async def deliver_deposit(
    runtime: DurableRuntime[Balance, Deposited], instance_id: str, token: str
) -> Answer:
    instance = await runtime.get_instance(instance_id)
    answer = await instance.deliver_signal(deposit_signal, Deposit(token))
    if isinstance(answer, UnexpectedSignal):
        return (instance_id, token, "unexpected", "", 0)
    return (instance_id, token, "receipt", answer.token, answer.total)


async def check_ledger(store: Store, instance_id: str, answers: Sequence[Answer]) -> None:
    """Every deposit was answered once: the first DEPOSITS (in journal order) fresh, the rest
    exactly as the workflow answers a deposit after the last step; no gap, no duplicate."""
    key = InstanceKey(Ledger.name, instance_id)
    journal = await store.read(key)
    assert [e.sequence for e in journal] == list(range(1, DEPOSITS + 1))
    recorded = [json.loads(e.data)["token"] for e in journal]
    assert len(set(recorded)) == DEPOSITS, recorded
    mine = [a for a in answers if a[0] == instance_id]
    sent = [a[1] for a in mine]
    assert len(set(sent)) == len(sent)  # each delivery answered exactly once
    fresh = {token: (answered, total) for _, token, _, answered, total in mine if answered == token}
    assert set(fresh) == set(recorded), (fresh, recorded)
    for position, token in enumerate(recorded, start=1):
        assert fresh[token] == (token, position)
    # what the workflow answers once every deposit step is done, from a pure replay
    model = await InMemoryRuntime(Ledger, initial_state=Balance(0)).restore_instance(
        instance_id, journal
    )
    late = await model.deliver_signal(deposit_signal, Deposit("late"))
    expected = (
        ("unexpected", "", 0)
        if isinstance(late, UnexpectedSignal)
        else ("receipt", late.token, late.total)
    )
    for answer in mine:
        if answer[1] not in fresh:
            assert answer[2:] == expected, answer


# -- child processes -------------------------------------------------------------------------


def open_spec(spec: StoreSpec) -> Store:
    """A new, unopened store on the data ``spec`` names."""
    kind, *args = spec
    if kind == "sqlite":
        from workflows4py.stores import SqliteStore

        return SqliteStore(args[0])
    if kind == "postgres":
        from workflows4py.stores import PostgresStore

        return PostgresStore(args[0], schema=args[1], max_size=4)
    raise ValueError(f"unknown store spec {spec!r}")


def deliver_in_process(
    *, spec: StoreSpec, worker: int, ids: list[str], tokens: list[str], out: str, ready: Barrier
) -> None:
    """Child process: deliver every token to every instance at once, write the answers."""
    asyncio.run(
        _deliver_from_process(
            spec=spec, worker=worker, ids=ids, tokens=tokens, out=out, ready=ready
        )
    )


async def _deliver_from_process(
    *, spec: StoreSpec, worker: int, ids: list[str], tokens: list[str], out: str, ready: Barrier
) -> None:
    runtime = DurableRuntime(
        Ledger, open_spec(spec), initial_state=Balance(0), owner=f"process-{worker}"
    )
    await runtime.initialize()
    ready.wait(timeout=60)  # every process starts delivering at the same moment
    try:
        answers = await asyncio.gather(
            *(deliver_deposit(runtime, iid, token) for token in tokens for iid in ids)
        )
    finally:
        await runtime.close()
    Path(out).write_text(json.dumps(answers))


# -- the suite ------------------------------------------------------------------------------


class RuntimeConformance:
    """Every scenario of the durable runtime; subclasses provide ``new_store``."""

    @pytest.fixture
    def new_store(self) -> StoreFactory:
        """Unopened stores on one fresh backend; each call is a new handle on the same data."""
        raise NotImplementedError("a backend's test class overrides this fixture")

    @pytest.fixture(autouse=True)
    def fresh_calls(self) -> None:
        CALLS.reset()

    @pytest_asyncio.fixture
    async def open_store(self, new_store: StoreFactory) -> AsyncIterator[OpenStore]:
        opened: list[Store] = []

        async def open_() -> Store:
            store = new_store()
            opened.append(store)
            await store.initialize()
            return store

        yield open_
        for store in reversed(opened):
            await store.close()  # closing twice is harmless

    @pytest.fixture
    def clock(self) -> TestClock:
        return TestClock(T0)

    # -- the pull-request example, end to end -------------------------------------------------

    @pytest.mark.parametrize("outcome", ["merged", "rejected", "unknown-commit", "failed-pipeline"])
    async def test_pull_request_outcomes_with_a_replay_check_after_every_step(
        self,
        open_store: OpenStore,
        clock: TestClock,
        monkeypatch: pytest.MonkeyPatch,
        outcome: str,
    ) -> None:
        if outcome == "failed-pipeline":

            async def failing(commit: str) -> str:
                pr.CI.calls += 1
                return "1 error"

            monkeypatch.setattr(pr.CI, "run", failing)
        runtime = await durable(open_store, pr.PullRequest, pr.Empty(), clock=clock)
        calls = pr.CI.calls
        live = await runtime.create_instance("pr-1")
        assert await live.query_state() == pr.Empty()
        assert await live.status() == "awaiting"
        assert [s.id for s in await live.expected_signals()] == ["create-pr"]
        assert await live.get_journal() == []
        await assert_replays(open_store, runtime, live)

        commit = "0123456789" if outcome == "unknown-commit" else "abc"
        clock.advance(timedelta(minutes=1))
        assert await live.deliver_signal(pr.create_pr_signal, pr.CreateRequest(commit)) is None
        await assert_replays(open_store, runtime, live)
        if outcome == "unknown-commit":
            assert await live.query_state() == pr.Closed(pr.Empty(), pr.CommitNotFound())
            assert pr.CI.calls == calls  # the pipeline never ran
            assert await live.get_events() == [pr.Created(commit)]
        elif outcome == "failed-pipeline":
            assert await live.query_state() == pr.Closed(pr.Initiated("abc"), pr.PipelineFailed())
            assert pr.CI.calls == calls + 1
        else:
            assert await live.query_state() == pr.Checked("abc", RESULTS)
            assert await live.status() == "awaiting"
            assert [s.id for s in await live.expected_signals()] == ["review-pr"]
            assert pr.CI.calls == calls + 1
            await self.review(open_store, clock, runtime, live, approve=outcome == "merged")
            assert pr.CI.calls == calls + 1  # no step ran the pipeline again
        assert await live.status() == "finished"  # a closed PR is a handled error
        row = await runtime.store.get_record(pr_key("pr-1"))
        assert row is not None
        assert (row.status, row.next_wakeup, row.created_at) == ("finished", None, T0)
        journal = await live.get_journal()
        assert [e.sequence for e in journal] == list(range(1, len(journal) + 1))
        assert all(e.recorded_at.tzinfo is not None for e in journal)

    async def review(
        self,
        open_store: OpenStore,
        clock: TestClock,
        runtime: DurableRuntime[pr.PRState, pr.PREvent],
        live: WorkflowInstance[pr.PRState, pr.PREvent],
        *,
        approve: bool,
    ) -> None:
        """The review step of a checked PR, and what it leads to."""
        clock.advance(timedelta(minutes=1))
        answer = await live.deliver_signal(pr.review_pr_signal, pr.ReviewRequest(approve))
        assert answer is None
        await assert_replays(open_store, runtime, live)
        if approve:
            assert await live.query_state() == pr.Merged("abc", RESULTS)
            assert await live.result() == Ok(pr.Merged("abc", RESULTS))
            last_step = "Merge PR"
        else:
            closed = pr.Closed(pr.Checked("abc", RESULTS), pr.ReviewRejected())
            assert await live.query_state() == closed
            last_step = "Close PR"
        steps = (await live.get_progress()).executed_steps()
        assert [s.name for s in steps][-1] == last_step
        assert await live.get_events() == [
            pr.Created("abc"),
            pr.PipelineFinished(RESULTS),
            pr.ReviewSubmitted(approve),
        ]

    async def test_replay_on_a_new_runtime_runs_no_effect(
        self, open_store: OpenStore, clock: TestClock
    ) -> None:
        runtime = await durable(open_store, pr.PullRequest, pr.Empty(), clock=clock)
        live = await runtime.create_instance("pr-1")
        await live.deliver_signal(pr.create_pr_signal, pr.CreateRequest("abc"))
        calls = pr.CI.calls
        other = await durable(open_store, pr.PullRequest, pr.Empty(), clock=clock)
        copy = await other.get_instance("pr-1")
        assert await copy.query_state() == pr.Checked("abc", RESULTS)
        await copy.wakeup()  # nothing is due: replay alone, no effect
        assert pr.CI.calls == calls
        assert len(await copy.get_journal()) == 2

    # -- restart ----------------------------------------------------------------------------

    async def test_restart_continues_without_rerunning_effects(
        self, open_store: OpenStore, clock: TestClock
    ) -> None:
        first = await durable(open_store, pr.PullRequest, pr.Empty(), clock=clock, owner="a")
        calls = pr.CI.calls
        instance = await first.create_instance("pr-1")
        await instance.deliver_signal(pr.create_pr_signal, pr.CreateRequest("abc"))
        assert pr.CI.calls == calls + 1
        await first.close()
        with pytest.raises(StoreError):
            await instance.query_state()  # the first runtime's store is gone

        second = await durable(open_store, pr.PullRequest, pr.Empty(), clock=clock, owner="b")
        resumed = await second.get_instance("pr-1")
        assert await resumed.query_state() == pr.Checked("abc", RESULTS)
        assert pr.CI.calls == calls + 1  # loading replays, it does not run the pipeline
        # create-pr again is a redelivery: no handler, no event
        again = await resumed.deliver_signal(pr.create_pr_signal, pr.CreateRequest("zzz"))
        assert again is None
        assert len(await resumed.get_journal()) == 2
        await resumed.deliver_signal(pr.review_pr_signal, pr.ReviewRequest(approve=True))
        assert await resumed.query_state() == pr.Merged("abc", RESULTS)
        assert pr.CI.calls == calls + 1
        assert [e.sequence for e in await resumed.get_journal()] == [1, 2, 3]
        assert await (await second.create_instance("pr-1")).query_state() == pr.Merged(
            "abc", RESULTS
        )  # create of an existing instance is a no-op
        assert pr.CI.calls == calls + 1
        await assert_replays(open_store, second, resumed)

    # -- timers and retries -------------------------------------------------------------------

    async def test_timer_is_due_in_the_registry_and_runs_when_due(
        self, open_store: OpenStore, clock: TestClock
    ) -> None:
        creator = await durable(open_store, Timed, St(0), clock=clock, owner="creator")
        instance = await creator.create_instance("t-1")
        due = T0 + timedelta(hours=1)
        assert await instance.query_state() == St(1, ("a",))
        assert await instance.next_wakeup() == due
        row = await creator.store.get_record(InstanceKey(Timed.name, "t-1"))
        assert row is not None
        assert (row.status, row.next_wakeup) == ("awaiting", due)
        await assert_replays(open_store, creator, instance)

        worker = await durable(open_store, Timed, St(0), clock=clock, owner="worker")
        assert await worker.run_due_wakeups() == []
        clock.advance(timedelta(minutes=59, seconds=59))
        assert await worker.run_due_wakeups() == []
        await instance.wakeup()  # nothing early, even when asked
        assert CALLS.count.get("b") is None
        clock.advance(timedelta(seconds=1))
        assert await worker.run_due_wakeups() == ["t-1"]
        assert CALLS.count == {"a": 1, "b": 1}
        assert await worker.run_due_wakeups() == []
        # the creator's cached copy catches up from the journal
        assert await instance.query_state() == St(2, ("a", "b"))
        assert await instance.status() == "finished"
        assert await instance.next_wakeup() is None
        events = await instance.get_events()
        assert events[1:3] == [TimerStarted("Cool Down", T0, due), TimerReleased("Cool Down", due)]
        row = await creator.store.get_record(InstanceKey(Timed.name, "t-1"))
        assert row is not None
        assert (row.status, row.next_wakeup, row.updated_at) == ("finished", None, due)
        await assert_replays(open_store, creator, instance)

    async def test_a_claimed_wakeup_waits_for_its_claim_to_lapse(
        self, open_store: OpenStore, clock: TestClock
    ) -> None:
        runtime = await durable(open_store, Timed, St(0), clock=clock, lease_ttl=30)
        instance = await runtime.create_instance("t-1")
        clock.advance(timedelta(hours=1))
        other = await open_store()  # a worker that claims the wakeup, then dies
        (claim,) = await other.claim_due(clock.now(), 10, 30)
        assert claim.key == InstanceKey(Timed.name, "t-1")
        assert await runtime.run_due_wakeups() == []
        clock.advance(timedelta(seconds=30))
        assert await runtime.run_due_wakeups() == ["t-1"]
        assert await instance.status() == "finished"
        assert CALLS.count["b"] == 1

    async def test_stateless_retry_recovers_after_its_delay(
        self, open_store: OpenStore, clock: TestClock
    ) -> None:
        CALLS.failures["flaky"] = 1
        runtime = await durable(open_store, Flaky, St(0), clock=clock)
        instance = await runtime.create_instance("r-1")
        retry_at = T0 + timedelta(minutes=2)
        assert await instance.get_journal() == []  # the failed attempt persisted nothing
        assert await instance.next_wakeup() == retry_at
        row = await runtime.store.get_record(InstanceKey(Flaky.name, "r-1"))
        assert row is not None
        assert (row.status, row.next_wakeup) == ("awaiting", retry_at)
        clock.advance(timedelta(minutes=1))
        assert await runtime.run_due_wakeups() == []
        await instance.wakeup()  # the same runtime remembers the delay
        assert CALLS.count["flaky"] == 1
        clock.advance(timedelta(minutes=1))
        assert await runtime.run_due_wakeups() == ["r-1"]
        assert CALLS.count["flaky"] == 2
        assert await instance.query_state() == St(1, ("flaky", "done"))
        assert await instance.status() == "finished"
        row = await runtime.store.get_record(InstanceKey(Flaky.name, "r-1"))
        assert row is not None
        assert (row.status, row.next_wakeup) == ("finished", None)
        await assert_replays(open_store, runtime, instance)

    async def test_stateless_retry_is_run_by_another_worker(
        self, open_store: OpenStore, clock: TestClock
    ) -> None:
        CALLS.failures["flaky"] = 1
        creator = await durable(open_store, Flaky, St(0), clock=clock, owner="creator")
        instance = await creator.create_instance("r-1")
        worker = await durable(open_store, Flaky, St(0), clock=clock, owner="worker")
        clock.advance(timedelta(minutes=1, seconds=59))
        assert await worker.run_due_wakeups() == []
        clock.advance(timedelta(seconds=1))
        assert await worker.run_due_wakeups() == ["r-1"]
        assert CALLS.count["flaky"] == 2
        assert await instance.query_state() == St(1, ("flaky", "done"))

    async def test_a_failed_effect_comes_back_after_the_failure_backoff(
        self, open_store: OpenStore, clock: TestClock
    ) -> None:
        CALLS.failures["fragile"] = 2
        backoff = timedelta(seconds=90)
        runtime = await durable(open_store, Fragile, St(0), clock=clock, failure_backoff=backoff)
        with pytest.raises(ConnectionError):
            await runtime.create_instance("f-1")
        instance = await runtime.get_instance("f-1")
        assert await instance.get_journal() == []
        key = InstanceKey(Fragile.name, "f-1")
        row = await runtime.store.get_record(key)
        assert row is not None
        assert (row.status, row.next_wakeup) == ("awaiting", T0 + backoff)
        # the registry says it is failing, how often in a row, and why
        assert (row.failures, row.last_error) == (1, "ConnectionError: fragile is down")
        failing = await runtime.search(SearchQuery(failing=True))
        assert [r.key for r in failing.records] == [key]
        clock.advance(backoff - timedelta(seconds=1))
        assert await runtime.run_due_wakeups() == []
        assert CALLS.count["fragile"] == 1
        clock.advance(timedelta(seconds=1))
        assert await runtime.run_due_wakeups() == []  # failed again (logged)
        row = await runtime.store.get_record(key)
        assert row is not None
        # the second failure in a row waits twice as long
        assert (row.failures, row.next_wakeup) == (2, clock.now() + 2 * backoff)
        clock.advance(2 * backoff - timedelta(seconds=1))
        assert await runtime.run_due_wakeups() == []
        clock.advance(timedelta(seconds=1))
        assert await runtime.run_due_wakeups() == ["f-1"]
        assert CALLS.count == {"fragile": 3, "after": 1}
        assert await instance.query_state() == St(2, ("fragile", "after"))
        assert await instance.status() == "finished"
        row = await runtime.store.get_record(key)
        assert row is not None
        assert (row.failures, row.last_error) == (0, None)
        assert (await runtime.search(SearchQuery(failing=True))).total == 0

    # -- registry and search ---------------------------------------------------------------

    async def test_registry_statuses_tags_and_search(
        self, open_store: OpenStore, clock: TestClock
    ) -> None:
        runtime = await durable(open_store, Shop, Order(), clock=clock, tags=order_tags)
        ids = [f"o-{n}" for n in range(6)]
        customers = {iid: ("acme" if n % 2 == 0 else "beta") for n, iid in enumerate(ids)}
        instances: dict[str, WorkflowInstance[Order, Placed | Shipped]] = {}
        for n, iid in enumerate(ids):
            clock.set(T0 + timedelta(minutes=n))
            instances[iid] = await runtime.create_instance(iid)
        # another workflow in the same store never shows up in this runtime's searches
        others = DurableRuntime(Timed, runtime.store, initial_state=St(0), clock=clock)
        await others.create_instance("o-other")

        async def row(iid: str) -> InstanceRecord:
            found = await runtime.store.get_record(InstanceKey(Shop.name, iid))
            assert found is not None
            return found

        first = await row("o-0")
        assert (first.status, first.tags, first.created_at) == ("awaiting", order_tags(Order()), T0)
        clock.advance(timedelta(minutes=10))
        for iid in ids:
            await instances[iid].deliver_signal(place_signal, Place(customers[iid]))
            assert (await row(iid)).tags == {"customer": customers[iid], "stage": "placed"}
        clock.advance(timedelta(minutes=10))
        shipped_at = clock.now()
        await instances["o-0"].deliver_signal(ship_signal, Ship(approve=True))
        await instances["o-1"].deliver_signal(ship_signal, Ship(approve=True))
        await instances["o-2"].deliver_signal(ship_signal, Ship(approve=False))
        assert await instances["o-2"].status() == "failed"
        assert await instances["o-2"].result() == Err(Refused())
        done = await row("o-0")
        assert (done.status, done.tags, done.updated_at) == (
            "finished",
            {"customer": "acme", "stage": "shipped"},
            shipped_at,
        )
        assert (await row("o-2")).status == "failed"
        for iid in ids:
            assert (await row(iid)).tags == order_tags(await instances[iid].query_state())
            await assert_replays(open_store, runtime, instances[iid])

        async def search(**criteria: Any) -> tuple[list[str], int]:
            page = await runtime.search(SearchQuery(**criteria))
            return [r.key.instance_id for r in page.records], page.total

        assert await search(status=["finished"]) == (["o-0", "o-1"], 2)
        assert await search(status=["failed"]) == (["o-2"], 1)
        assert await search(status=["finished", "failed"], tags={"customer": "acme"}) == (
            ["o-0", "o-2"],
            2,
        )
        assert await search(status=["awaiting"]) == (["o-3", "o-4", "o-5"], 3)
        assert await search(created_from=T0 + timedelta(minutes=2)) == (
            ["o-3", "o-4", "o-5", "o-2"],
            4,
        )  # ordered by last update
        assert await search(tags={"customer": "beta", "stage": "placed"}) == (
            ["o-3", "o-5"],
            2,
        )
        assert await search(tags={"customer": "nobody"}) == ([], 0)
        query = {
            "status": ["awaiting", "finished"],
            "created_from": T0 + timedelta(minutes=1),
            "tags": {"customer": "beta"},
        }
        assert await search(**query) == (["o-3", "o-5", "o-1"], 3)
        assert await search(**query, limit=1, offset=1) == (["o-5"], 3)
        # paging: every row once, totals stable
        seen: list[str] = []
        for offset in range(0, 7, 2):
            page_ids, total = await search(limit=2, offset=offset)
            assert total == 6
            seen.extend(page_ids)
        assert sorted(seen) == ids
        assert len(seen) == len(set(seen))
        assert await search(limit=2, offset=6) == ([], 6)
        assert sorted(await runtime.instance_ids()) == ids
        assert await others.instance_ids() == ["o-other"]
        assert (await runtime.search()).total == 6

    # -- concurrency ----------------------------------------------------------------------

    async def test_concurrent_deliveries_from_two_runtimes_are_answered_once(
        self, open_store: OpenStore
    ) -> None:
        one = await durable(open_store, Ledger, Balance(0), owner="one")
        two = await durable(open_store, Ledger, Balance(0), owner="two")
        ids = [f"l-{n}" for n in range(3)]
        for iid in ids:
            await one.create_instance(iid)
        deliveries = 3 * DEPOSITS
        answers = await asyncio.wait_for(
            asyncio.gather(
                *(
                    deliver_deposit(one if n % 2 else two, iid, f"{iid}-t{n}")
                    for n in range(deliveries)
                    for iid in ids
                )
            ),
            timeout=60,
        )
        checker = await open_store()
        for iid in ids:
            await check_ledger(checker, iid, answers)
            assert CALLS.count[f"deposit:{iid}"] == DEPOSITS  # each handler ran exactly once
            for runtime in (one, two):
                instance = await runtime.get_instance(iid)
                assert await instance.query_state() == Balance(DEPOSITS)
                assert await instance.status() == "finished"
            await assert_replays(open_store, one, await one.get_instance(iid))

    # -- bad input ---------------------------------------------------------------------------

    @pytest.mark.parametrize(
        "bad",
        [
            "",
            "has space",
            "a/b",
            "x" * 201,
            "ünicode",
            "a\nb",
            42,
            None,
            pytest.param("ab\n", id="trailing-newline"),
        ],
    )
    async def test_malformed_ids_are_refused_and_nothing_is_registered(
        self, open_store: OpenStore, bad: Any
    ) -> None:
        runtime = await durable(open_store, pr.PullRequest, pr.Empty())
        with pytest.raises(InvalidInstanceId):
            await runtime.create_instance(bad)
        with pytest.raises(InvalidInstanceId):
            await runtime.get_instance(bad)
        with pytest.raises(InvalidInstanceId):
            await runtime.restore_instance(bad, [])
        assert (await runtime.search()).total == 0

    async def test_unknown_instance_is_not_found(self, open_store: OpenStore) -> None:
        runtime = await durable(open_store, pr.PullRequest, pr.Empty())
        with pytest.raises(InstanceNotFound) as info:
            await runtime.get_instance("missing")
        assert info.value.instance_id == "missing"
        await runtime.create_instance("present")
        other = DurableRuntime(Timed, runtime.store, initial_state=St(0))
        with pytest.raises(InstanceNotFound):
            await other.get_instance("present")  # same id, other workflow
        assert (await runtime.search()).total == 1

    async def test_wrong_request_type_is_refused_and_nothing_is_written(
        self, open_store: OpenStore, clock: TestClock
    ) -> None:
        runtime = await durable(open_store, pr.PullRequest, pr.Empty(), clock=clock)
        instance = await runtime.create_instance("pr-1")
        before = await runtime.store.get_record(pr_key("pr-1"))
        with pytest.raises(InvalidSignalRequest, match="CreateRequest"):
            await instance.deliver_signal(pr.create_pr_signal, pr.ReviewRequest(True))  # type: ignore[misc]
        impostor = SignalDef("create-pr", request=pr.ReviewRequest)  # same id, other type
        with pytest.raises(InvalidSignalRequest):
            await instance.deliver_signal(impostor, pr.ReviewRequest(True))
        assert await instance.get_journal() == []
        after = await runtime.store.get_record(pr_key("pr-1"))
        assert before is not None
        assert after is not None
        assert (after.status, after.next_wakeup, after.tags) == (
            before.status,
            before.next_wakeup,
            before.tags,
        )
        assert await instance.query_state() == pr.Empty()
        # the instance still works
        await instance.deliver_signal(pr.create_pr_signal, pr.CreateRequest("abc"))
        assert await instance.query_state() == pr.Checked("abc", RESULTS)

    async def test_unexpected_signal_is_a_value_and_nothing_is_written(
        self, open_store: OpenStore, clock: TestClock
    ) -> None:
        runtime = await durable(open_store, pr.PullRequest, pr.Empty(), clock=clock)
        instance = await runtime.create_instance("pr-1")
        answer = await instance.deliver_signal(pr.review_pr_signal, pr.ReviewRequest(True))
        assert isinstance(answer, UnexpectedSignal)
        assert (answer.signal_id, answer.instance_id, answer.expected) == (
            "review-pr",
            "pr-1",
            ("create-pr",),
        )
        nobody = SignalDef("nobody-handles-this", request=pr.ReviewRequest)
        assert isinstance(
            await instance.deliver_signal(nobody, pr.ReviewRequest(True)), UnexpectedSignal
        )
        assert await instance.get_journal() == []
        row = await runtime.store.get_record(pr_key("pr-1"))
        assert row is not None
        assert (row.status, row.next_wakeup) == ("awaiting", None)
        await assert_replays(open_store, runtime, instance)

    async def test_rejected_signals_leave_the_registry_row_untouched(
        self, open_store: OpenStore, clock: TestClock
    ) -> None:
        runtime = await durable(open_store, pr.PullRequest, pr.Empty(), clock=clock)
        instance = await runtime.create_instance("pr-1")
        before = await runtime.store.get_record(pr_key("pr-1"))
        clock.advance(timedelta(hours=1))
        answer = await instance.deliver_signal(pr.review_pr_signal, pr.ReviewRequest(True))
        assert isinstance(answer, UnexpectedSignal)
        impostor = SignalDef("create-pr", request=pr.ReviewRequest)
        with pytest.raises(InvalidSignalRequest):
            await instance.deliver_signal(impostor, pr.ReviewRequest(True))
        assert await runtime.store.get_record(pr_key("pr-1")) == before

    @pytest.mark.parametrize(
        ("tag", "data", "error"),
        [
            ("Nope", '{"commit":"abc"}', DecodeError),
            ("ReviewSubmitted", '{"approved": tru', DecodeError),
            ("ReviewSubmitted", '{"approved":"yes"}', DecodeError),
            ("Created", '{"commit":"abc"}', UnexpectedEvent),  # decodes, fits no waiting step
        ],
        ids=["unknown-tag", "bad-json", "bad-field", "does-not-fit"],
    )
    async def test_corrupt_journal_is_a_typed_error_and_nothing_is_written(
        self,
        open_store: OpenStore,
        clock: TestClock,
        tag: str,
        data: str,
        error: type[Exception],
    ) -> None:
        runtime = await durable(open_store, pr.PullRequest, pr.Empty(), clock=clock)
        instance = await runtime.create_instance("pr-1")
        await instance.deliver_signal(pr.create_pr_signal, pr.CreateRequest("abc"))
        assert await instance.query_state() == pr.Checked("abc", RESULTS)  # cached at #2
        clock.advance(timedelta(minutes=5))
        await runtime.store.append(pr_key("pr-1"), 2, [NewEvent(tag, data, clock.now())])
        journal = await runtime.store.read(pr_key("pr-1"))
        row = await runtime.store.get_record(pr_key("pr-1"))
        calls = pr.CI.calls
        clock.advance(timedelta(minutes=5))

        fresh = await durable(open_store, pr.PullRequest, pr.Empty(), clock=clock)
        fresh_instance = await fresh.get_instance("pr-1")
        for handle in (instance, fresh_instance):  # the cached copy does not hide it
            with pytest.raises(error) as info:
                await handle.query_state()
            if isinstance(info.value, JournalError):
                assert (info.value.instance_id, info.value.sequence) == ("pr-1", 3)
                assert "pr-1" in str(info.value)
                assert "#3" in str(info.value)
            with pytest.raises(error):
                await handle.deliver_signal(pr.review_pr_signal, pr.ReviewRequest(True))
            with pytest.raises(error):
                await handle.wakeup()
            with pytest.raises(error):
                await handle.get_progress()
        # the operations parked it: no wakeup, the error naming the event kept
        parked = await runtime.store.get_record(pr_key("pr-1"))
        assert parked is not None
        assert row is not None
        assert (parked.status, parked.next_wakeup, parked.tags) == ("parked", None, row.tags)
        assert parked.last_error is not None
        assert "#3" in parked.last_error
        assert await fresh_instance.status() == "parked"
        # a worker that finds it due (say, set due by hand) parks it again and goes on
        await runtime.store.update(pr_key("pr-1"), "awaiting", clock.now(), {}, clock.now())
        assert await fresh.run_due_wakeups() == []
        clock.advance(timedelta(minutes=5))
        assert await Worker([fresh]).run_once() == 0
        again = await fresh.store.get_record(pr_key("pr-1"))
        assert again is not None
        assert (again.status, again.next_wakeup) == ("parked", None)
        # no event was written and no effect ran
        assert await fresh.store.read(pr_key("pr-1")) == journal
        assert pr.CI.calls == calls

    @pytest.mark.parametrize(
        ("tag", "data"),
        [("Nope", '{"commit":"abc"}'), ("ReviewSubmitted", '{"approved": tru')],
        ids=["unknown-tag", "bad-json"],
    )
    async def test_undecodable_journal_event_names_instance_and_sequence(
        self, open_store: OpenStore, clock: TestClock, tag: str, data: str
    ) -> None:
        runtime = await durable(open_store, pr.PullRequest, pr.Empty(), clock=clock)
        instance = await runtime.create_instance("pr-1")
        await instance.deliver_signal(pr.create_pr_signal, pr.CreateRequest("abc"))
        await runtime.store.append(pr_key("pr-1"), 2, [NewEvent(tag, data, clock.now())])
        fresh = await durable(open_store, pr.PullRequest, pr.Empty(), clock=clock)
        with pytest.raises(DecodeError) as info:
            await (await fresh.get_instance("pr-1")).query_state()
        message = str(info.value)
        assert "'pr-1'" in message, message
        assert "#3" in message, message

    # -- crash recovery --------------------------------------------------------------------

    async def test_a_stale_running_instance_is_resumed(
        self, open_store: OpenStore, clock: TestClock
    ) -> None:
        creator = await durable(open_store, pr.PullRequest, pr.Empty(), clock=clock, owner="a")
        instance = await creator.create_instance("pr-1")
        # a process recorded create-pr, marked the instance running, started the pipeline
        # effect and died holding a 10 s lease
        key = pr_key("pr-1")
        store = await open_store()
        await store.acquire(key, "dead-owner", 10, 0, clock.now())
        await store.append(key, 0, [NewEvent(*encode_pr(pr.Created("abc")), clock.now())])
        await store.update(key, "running", None, {}, clock.now())
        calls = pr.CI.calls

        survivor = await durable(open_store, pr.PullRequest, pr.Empty(), clock=clock, owner="b")
        assert await survivor.resume_stale() == []  # the lease is live: maybe not dead
        clock.advance(timedelta(seconds=9))
        assert await survivor.resume_stale() == []
        assert pr.CI.calls == calls
        clock.advance(timedelta(seconds=1))
        assert await survivor.resume_stale() == ["pr-1"]
        assert pr.CI.calls == calls + 1  # the interrupted effect ran (again): at least once
        assert await survivor.resume_stale() == []
        row = await store.get_record(key)
        assert row is not None
        assert row.status == "awaiting"
        assert await instance.query_state() == pr.Checked("abc", RESULTS)
        assert await instance.get_events() == [pr.Created("abc"), pr.PipelineFinished(RESULTS)]
        await store.acquire(key, "someone", 10, 0, clock.now())  # the lease was released
        await store.release(key, "someone")
        await assert_replays(open_store, creator, instance)

    async def test_an_instance_whose_creator_died_before_its_first_step_completes(
        self, open_store: OpenStore, clock: TestClock
    ) -> None:
        # the creator registered the instance and scheduled its start, then died
        store = await open_store()
        await store.create(InstanceKey(Timed.name, "t-1"), clock.now())
        await store.update(InstanceKey(Timed.name, "t-1"), "awaiting", clock.now(), {}, clock.now())
        survivor = await durable(open_store, Timed, St(0), clock=clock)
        assert await Worker([survivor]).run_once() == 1
        instance = await survivor.get_instance("t-1")
        assert await instance.query_state() == St(1, ("a",))
        assert CALLS.count == {"a": 1}
        # died even earlier, right after registering it: creating it again starts it
        await store.create(InstanceKey(Timed.name, "t-2"), clock.now())
        again = await survivor.create_instance("t-2")
        assert await again.query_state() == St(1, ("a",))
        await survivor.create_instance("t-2")  # and once started, creating it is a no-op
        assert CALLS.count == {"a": 2}

    async def test_a_worker_starts_an_instance_whose_creator_died_right_after_registering(
        self, open_store: OpenStore, clock: TestClock
    ) -> None:
        store = await open_store()
        # what create_instance writes first, then the crash
        await store.create(InstanceKey(Timed.name, "t-1"), clock.now(), next_wakeup=clock.now())
        survivor = await durable(open_store, Timed, St(0), clock=clock)
        clock.advance(timedelta(minutes=10))
        await Worker([survivor]).run_once()
        assert CALLS.count == {"a": 1}

    # -- the worker ----------------------------------------------------------------------------

    async def test_worker_run_once_drives_due_wakeups_and_stale_instances(
        self, open_store: OpenStore, clock: TestClock
    ) -> None:
        runtime = await durable(open_store, Timed, St(0), clock=clock, lease_ttl=5)
        for iid in ("t-1", "t-2", "t-3"):
            await runtime.create_instance(iid)
        # t-3's process died mid-step: running, its wakeup not in the registry, lease lapsing
        stale_key = InstanceKey(Timed.name, "t-3")
        store = await open_store()
        await store.acquire(stale_key, "dead", 5, 0, clock.now())
        await store.update(stale_key, "running", None, {}, clock.now())
        worker = Worker([runtime], poll_interval=0.05)
        assert await worker.run_once() == 0
        clock.advance(timedelta(hours=1))
        assert await worker.run_once() == 3  # two due timers, one stale instance
        for iid in ("t-1", "t-2", "t-3"):
            assert await (await runtime.get_instance(iid)).status() == "finished"
        row = await store.get_record(stale_key)
        assert row is not None
        assert (row.status, row.next_wakeup) == ("finished", None)
        assert await worker.run_once() == 0
        assert CALLS.count == {"a": 3, "b": 3}

    async def test_worker_run_picks_up_work_and_stops_promptly(
        self, open_store: OpenStore, clock: TestClock
    ) -> None:
        runtime = await durable(open_store, Timed, St(0), clock=clock)
        instance = await runtime.create_instance("t-1")
        worker = Worker([runtime], poll_interval=0.05)
        task = asyncio.create_task(worker.run())
        try:
            await asyncio.sleep(0.2)
            assert not task.done()
            assert await instance.status() == "awaiting"
            clock.advance(timedelta(hours=1))

            async def finished() -> bool:
                return await instance.status() == "finished"

            await wait_until(finished, 10, "the worker ran the due timer")
        finally:
            worker.stop()
            await asyncio.wait_for(task, 5)
        # idle, with a long poll interval: stop() ends it at once
        idle = Worker([runtime], poll_interval=30)
        task = asyncio.create_task(idle.run())
        await asyncio.sleep(0.2)
        start = time.monotonic()
        idle.stop()
        await asyncio.wait_for(task, 5)
        assert time.monotonic() - start < 1
        assert task.exception() is None

    async def test_worker_drives_two_workflows_sharing_one_store(
        self, open_store: OpenStore, clock: TestClock
    ) -> None:
        store = await open_store()
        timed = DurableRuntime(Timed, store, initial_state=St(0), clock=clock)
        reminder = DurableRuntime(Reminder, store, initial_state=St(0), clock=clock)
        await timed.create_instance("t-1")
        remind = await reminder.create_instance("r-1")
        worker = Worker([timed, reminder])
        for _ in range(3):  # long enough for any claim to lapse, several rounds
            clock.advance(timedelta(hours=1))
            await worker.run_once()
        assert await remind.status() == "finished"

    @pytest.mark.parametrize("workers", ["one-worker-two-handles", "a-worker-per-workflow"])
    async def test_workers_on_separate_handles_do_not_starve_each_other(
        self, open_store: OpenStore, clock: TestClock, workers: str
    ) -> None:
        timed = await durable(open_store, Timed, St(0), clock=clock)
        reminder = await durable(open_store, Reminder, St(0), clock=clock)
        await timed.create_instance("t-1")
        remind = await reminder.create_instance("r-1")
        rounds = (
            [Worker([timed, reminder])]
            if workers == "one-worker-two-handles"
            else [Worker([timed]), Worker([reminder])]
        )
        for _ in range(3):  # long enough for any claim to lapse, several rounds
            clock.advance(timedelta(hours=1))
            for worker in rounds:
                await worker.run_once()
        assert await remind.status() == "finished"


class ProcessConformance:
    """Scenarios with several OS processes on one database; subclasses provide ``store_spec``
    (and inherit :class:`RuntimeConformance` for ``open_store``)."""

    @pytest.fixture
    def store_spec(self) -> StoreSpec:
        """How a child process opens the data ``new_store`` reaches."""
        raise NotImplementedError("a backend's test class overrides this fixture")

    async def test_processes_deliver_concurrently_exactly_once(
        self, store_spec: StoreSpec, open_store: OpenStore, tmp_path: Path
    ) -> None:
        runtime = DurableRuntime(Ledger, await open_store(), initial_state=Balance(0))
        ids = ["m-0", "m-1"]
        for iid in ids:
            await runtime.create_instance(iid)
        workers = 3
        ctx = multiprocessing.get_context("spawn")
        ready = ctx.Barrier(workers)
        outs = [tmp_path / f"answers-{w}.json" for w in range(workers)]
        procs = [
            ctx.Process(
                target=deliver_in_process,
                kwargs={
                    "spec": store_spec,
                    "worker": w,
                    "ids": ids,
                    "tokens": [f"p{w}-t{n}" for n in range(DEPOSITS)],
                    "out": str(outs[w]),
                    "ready": ready,
                },
            )
            for w in range(workers)
        ]
        for p in procs:
            p.start()
        loop = asyncio.get_running_loop()
        try:
            for p in procs:
                await loop.run_in_executor(None, p.join, 60)
            assert [p.exitcode for p in procs] == [0] * workers
        finally:
            for p in procs:  # never leave a stuck child behind
                if p.is_alive():
                    p.kill()
                    p.join(5)
        answers: list[Answer] = []
        for out in outs:
            answers.extend(tuple(a) for a in json.loads(out.read_text()))
        assert len(answers) == workers * DEPOSITS * len(ids)
        checker = await open_store()
        for iid in ids:
            await check_ledger(checker, iid, answers)
            instance = await runtime.get_instance(iid)
            assert await instance.query_state() == Balance(DEPOSITS)
            row = await checker.get_record(InstanceKey(Ledger.name, iid))
            assert row is not None
            assert row.status == "finished"
