"""The lifecycle operations from the user's side, over memory, SQLite and PostgreSQL:
signal with start in one write, parked instances and resume, fork, purge, export."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from lifecycle_common import (
    FAILURES,
    T0,
    Close,
    Factory,
    Flaky,
    Job,
    Order,
    Orders,
    Paid,
    Pay,
    Ticket,
    Tickets,
    close,
    pay,
)

from workflows4py import (
    DecodeError,
    InstanceExists,
    InstanceNotFound,
    Origin,
    StoreUnavailable,
    TimerStarted,
    UnexpectedEvent,
    render,
)
from workflows4py.runtime import Runtime
from workflows4py.stores import InstanceKey, NewEvent, SearchQuery
from workflows4py.testing import TestClock

pytest_plugins = ("lifecycle_common",)  # the fixtures make and runtime

STARTED = "workflows4py.Started"


# -- signal with start ------------------------------------------------------------------------


async def test_signal_with_start_writes_registration_state_and_signal_at_once(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[tuple[str, int]] = []
    store = runtime.store
    create_leased, append = store.create_leased, store.append

    async def counted_create(*args: object, **kwargs: object) -> bool:
        events = args[4] if len(args) > 4 else kwargs.get("events", ())
        writes.append(("create_leased", len(events)))  # type: ignore[arg-type]
        return await create_leased(*args, **kwargs)  # type: ignore[arg-type]

    async def counted_append(*args: object, **kwargs: object) -> None:
        writes.append(("append", len(args[2])))  # type: ignore[arg-type]
        await append(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "create_leased", counted_create)
    monkeypatch.setattr(store, "append", counted_append)
    order = await runtime.start(Orders, "o-1", initial_state=Order("pen", 1), signal=(pay, Pay(3)))
    # the start entry and the signal's event come with the registration; the timer after
    assert writes == [("create_leased", 2), ("append", 1)]
    journal = await order.get_journal()
    assert [e.type for e in journal][:2] == [STARTED, "Paid"]
    assert await order.query_state() == Order("pen", 1, paid=True)
    # a retried start (say, after a timeout) delivers nothing twice
    again = await runtime.start(Orders, "o-1", initial_state=Order("pen", 1), signal=(pay, Pay(3)))
    assert await again.get_journal() == journal
    assert await again.deliver_signal(pay, Pay(3)) == "paid 3"  # the recorded response


async def test_a_signal_with_start_that_fails_to_write_leaves_nothing(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(*args: object, **kwargs: object) -> bool:
        raise StoreUnavailable("the database went away")

    original = runtime.store.create_leased
    monkeypatch.setattr(runtime.store, "create_leased", down)
    with pytest.raises(StoreUnavailable):
        await runtime.start(Orders, "o-2", initial_state=Order("ink", 2), signal=(pay, Pay(7)))
    monkeypatch.setattr(runtime.store, "create_leased", original)
    assert (await runtime.search()).total == 0
    with pytest.raises(InstanceNotFound):
        await runtime.get(Orders, "o-2")
    # the client retries: one instance, one payment
    order = await runtime.start(Orders, "o-2", initial_state=Order("ink", 2), signal=(pay, Pay(7)))
    assert [type(e) for e in await order.get_events()] == [Paid, TimerStarted]


async def test_a_handler_that_raises_in_a_signal_with_start_writes_nothing(
    runtime: Runtime,
) -> None:
    with pytest.raises(ValueError, match="a reason is needed"):
        await runtime.start(Tickets, "t-1", signal=(close, Close("")))
    assert (await runtime.search()).total == 0


async def test_two_starts_of_one_id_at_once_make_one_instance_and_one_signal(
    make: Factory,
) -> None:
    clock = TestClock(T0)
    async with make(clock) as first, make(clock, like=first) as second:
        starts = [
            rt.start(Orders, "o-3", initial_state=Order("cup", 1), signal=(pay, Pay(2)))
            for rt in (first, second, first, second)
        ]
        handles = await asyncio.gather(*starts)
        assert (await first.search()).total == 1
        for handle in handles:
            assert [type(e) for e in await handle.get_events()] == [Paid, TimerStarted]
        with pytest.raises(InstanceExists):
            await second.start(Orders, "o-3", initial_state=Order("cup", 9))


# -- parked and resume ---------------------------------------------------------------------------


async def test_an_effect_failing_max_attempts_times_parks_until_resumed(make: Factory) -> None:
    clock = TestClock(T0)
    FAILURES[:] = ["first", "second", "third"]
    async with make(clock, max_attempts=2) as runtime:
        with pytest.raises(RuntimeError, match="first"):
            await runtime.start(Flaky, "f-1")
        job = await runtime.get(Flaky, "f-1")
        assert await job.status() == "awaiting"  # retried after the backoff
        clock.advance(timedelta(hours=2))
        assert await runtime.run_due_wakeups() == []  # it failed again: the second attempt
        assert await job.status() == "parked"
        (row,) = (await runtime.search(SearchQuery(status=["parked"]))).records
        assert row.next_wakeup is None
        assert row.failures == 2
        assert row.last_error is not None
        assert "2 failed attempts of 'Do Work'" in row.last_error
        assert "second" in row.last_error
        # the progress says so on its root: the error, and since when
        mark = (await job.get_progress()).parked
        assert mark is not None
        assert mark.at is not None
        assert (mark.reason, mark.at) == (row.last_error, row.updated_at)
        assert render.text(await job.get_progress()).startswith(
            f"parked since {mark.at.isoformat()}: "
        )
        clock.advance(timedelta(days=30))
        assert await runtime.run_due_wakeups() == []  # nobody tries any more
        assert FAILURES == ["third"]
        # a fix is deployed; resume tries at once (it fails once more here, then works)
        with pytest.raises(RuntimeError, match="third"):
            await runtime.resume(Flaky, "f-1")
        assert await job.status() == "awaiting"  # the count started again: 1 of 2
        assert (await job.get_progress()).parked is None
        clock.advance(timedelta(hours=2))
        assert await runtime.run_due_wakeups() == [("flaky", "f-1")]
        assert await job.query_state() == Job(1)
        assert await job.status() == "finished"
        assert await runtime.resume(Flaky, "f-1") is False  # not parked: nothing to do


async def test_max_attempts_must_be_positive(make: Factory) -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        make(TestClock(T0), max_attempts=0)


async def test_resume_of_an_unknown_instance_is_instance_not_found(runtime: Runtime) -> None:
    with pytest.raises(InstanceNotFound):
        await runtime.resume(Flaky, "nobody")


# -- fork -----------------------------------------------------------------------------------------


async def test_fork_copies_a_prefix_records_its_origin_and_runs_on(runtime: Runtime) -> None:
    order = await runtime.start(Orders, "o-1", initial_state=Order("pen", 1), signal=(pay, Pay(3)))
    original = await order.get_journal()
    assert [e.type for e in original] == [STARTED, "Paid", "workflows4py.TimerStarted"]
    fork = await runtime.fork(Orders, "o-1", "o-1-again", after_sequence=2)
    journal = await fork.get_journal()
    assert [(e.sequence, e.type) for e in journal] == [
        (1, STARTED),
        (2, "Paid"),
        (3, "workflows4py.TimerStarted"),  # run again, after the copied prefix
    ]
    assert journal[1] == original[1]
    assert await fork.origin() == Origin("orders", "o-1", 2)
    assert await order.origin() is None
    assert await order.get_journal() == original  # the original is left as it was
    assert await fork.query_state() == Order("pen", 1, paid=True)
    # from the start entry only: the signal is awaited again
    fresh = await runtime.fork("orders", "o-1", "o-1-fresh", after_sequence=1)
    assert [s.id for s in await fresh.expected_signals()] == ["order.pay"]


async def test_fork_refuses_bad_positions_taken_ids_and_unknown_instances(
    runtime: Runtime,
) -> None:
    await runtime.start(Orders, "o-1", initial_state=Order("pen", 1))
    for bad in (0, 2, -1):
        with pytest.raises(ValueError, match="after_sequence must be between 1 and 1"):
            await runtime.fork(Orders, "o-1", "o-x", after_sequence=bad)
    await runtime.start(Orders, "o-2", initial_state=Order("pen", 1))
    with pytest.raises(InstanceExists):
        await runtime.fork(Orders, "o-1", "o-2", after_sequence=1)
    with pytest.raises(InstanceNotFound):
        await runtime.fork(Orders, "nobody", "o-3", after_sequence=1)
    assert (await runtime.search()).total == 2  # nothing was written


# -- purge and export --------------------------------------------------------------------------


async def test_purge_deletes_ended_instances_in_batches_and_nothing_under_way(
    make: Factory,
) -> None:
    clock = TestClock(T0)
    async with make(clock) as runtime:
        for i in range(5):
            await runtime.start(Tickets, f"t-{i}", signal=(close, Close("done")))
        await runtime.start(Tickets, "t-open")
        await runtime.start(Orders, "o-stopped", initial_state=Order("a", 1))
        await runtime.terminate(Orders, "o-stopped", "customer left")
        await runtime.start(Orders, "o-open", initial_state=Order("b", 1))
        clock.advance(timedelta(days=1))
        assert await runtime.purge(finished_before=T0) == 0  # none ended before T0
        batches: list[int] = []
        deleted = await runtime.purge(
            finished_before=clock.now(), batch_size=2, on_batch=batches.append
        )
        assert (deleted, batches) == (6, [2, 4, 6])
        left = sorted(r.key.instance_id for r in (await runtime.search()).records)
        assert left == ["o-open", "t-open"]
        with pytest.raises(InstanceNotFound):
            await runtime.get(Tickets, "t-0")
        with pytest.raises(ValueError, match="ended instances only"):
            await runtime.purge(finished_before=clock.now(), statuses=["awaiting"])


async def test_purge_of_some_workflows_and_statuses_only(runtime: Runtime) -> None:
    await runtime.start(Tickets, "t-1", signal=(close, Close("done")))
    await runtime.start(Orders, "o-1", initial_state=Order("a", 1))
    await runtime.terminate(Orders, "o-1", "test")
    later = T0 + timedelta(seconds=1)
    assert await runtime.purge(finished_before=later, statuses=["terminated"]) == 1
    assert await runtime.purge(finished_before=later, workflows=[Orders]) == 0
    assert await runtime.purge(finished_before=later, workflows=["tickets"]) == 1


async def test_export_journal_gives_json_lines(runtime: Runtime) -> None:
    await runtime.start(Orders, "o-1", initial_state=Order("pen", 1), signal=(pay, Pay(3)))
    text = await runtime.export_journal(Orders, "o-1")
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["sequence"] for line in lines] == [1, 2, 3]
    assert lines[0]["type"] == STARTED
    assert lines[0]["data"] == {"type": "Order", "state": {"sku": "pen", "qty": 1, "paid": False}}
    assert lines[1] == {
        "workflow": "orders",
        "instance_id": "o-1",
        "sequence": 2,
        "type": "Paid",
        "data": {"amount": 3},
        "recorded_at": T0.isoformat(),
    }
    with pytest.raises(InstanceNotFound):
        await runtime.export_journal(Orders, "nobody")


# -- by workflow id, and decoding input ------------------------------------------------------


async def test_workflows_by_id_and_input_decoded_from_json(runtime: Runtime) -> None:
    orders = runtime.of("orders")
    assert orders is runtime.of(Orders)
    with pytest.raises(ValueError, match="not a workflow of this runtime"):
        runtime.of("nope")
    state = orders.decode_state('{"type": "Order", "state": {"sku": "x", "qty": 2}}')
    assert state == Order("x", 2)
    for bad in ("{", '{"sku": "x"}', '{"type": "Order", "state": {"sku": 1, "qty": 2}}'):
        with pytest.raises(DecodeError):
            orders.decode_state(bad)
    signal = orders.signal_def("order.pay")
    assert signal is pay
    with pytest.raises(ValueError, match=r"has no signal .order.refund.*.order.pay."):
        orders.signal_def("order.refund")
    assert orders.decode_request(signal, '{"amount": 4}') == Pay(4)
    with pytest.raises(DecodeError):
        orders.decode_request(signal, '{"amount": "four"}')
    started = await runtime.start("orders", "o-9", initial_state=state, signal=(signal, Pay(4)))
    assert await (await runtime.get("orders", "o-9")).query_state() == Order("x", 2, paid=True)
    assert started.id == "o-9"
    assert await runtime.start(Tickets, "t-1") is not None
    assert await (await runtime.get(Tickets, "t-1")).query_state() == Ticket("(no text)")


async def test_a_parked_instance_takes_signals_and_is_unparked_when_one_succeeds(
    runtime: Runtime,
) -> None:
    order = await runtime.start(Orders, "o-1", initial_state=Order("pen", 1))
    key = InstanceKey("orders", "o-1")
    await runtime.store.update(key, "parked", None, {}, T0, error="parked by hand")
    assert await order.status() == "parked"
    assert await runtime.run_due_wakeups() == []
    assert await order.deliver_signal(pay, Pay(2)) == "paid 2"
    assert await order.status() == "awaiting"
    record = await runtime.store.get_record(key)
    assert record is not None
    assert (record.status, record.failures, record.last_error) == ("awaiting", 0, None)


async def test_fork_of_a_prefix_that_no_longer_replays_writes_nothing(runtime: Runtime) -> None:
    await runtime.start(Orders, "o-1", initial_state=Order("pen", 1), signal=(pay, Pay(3)))
    key = InstanceKey("orders", "o-bad")  # a journal the definition refuses at #3
    journal = await (await runtime.get(Orders, "o-1")).get_journal()
    await runtime.store.create(key, T0)
    rows = [NewEvent(e.type, e.data, e.recorded_at) for e in journal[:2]]
    await runtime.store.append(key, 0, [*rows, rows[1]])
    with pytest.raises(UnexpectedEvent) as caught:
        await runtime.fork(Orders, "o-bad", "o-new", after_sequence=3)
    assert caught.value.sequence == 3
    assert await runtime.store.get_record(InstanceKey("orders", "o-new")) is None
    assert await runtime.fork(Orders, "o-bad", "o-new", after_sequence=2) is not None


async def test_purge_never_takes_parked_instances(runtime: Runtime) -> None:
    with pytest.raises(ValueError, match="ended instances only"):
        await runtime.purge(finished_before=T0, statuses=["parked"])
