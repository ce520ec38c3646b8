"""Issue 9: an optional retry event, the interim state of a failed parallel node, and the
event classes of for-each and embedded workflows checked against the journal's."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Optional

import pytest

from workflows4py import (
    WIO,
    Caught,
    DefinitionError,
    EncodeError,
    Err,
    InMemoryRuntime,
    Ok,
    Result,
    RetryAgain,
    RetryFailure,
    SignalDef,
    SystemEvent,
    Workflow,
)
from workflows4py.testing import ReplayCheckedInstance, TestClock

START = datetime.fromisoformat("2024-03-01T09:00:00+00:00")


@dataclass(frozen=True)
class St:
    value: int
    log: tuple[str, ...] = ()


@dataclass(frozen=True)
class Done:
    what: str


@dataclass(frozen=True)
class Failed:
    attempt: int
    retry_at: datetime


@dataclass(frozen=True)
class GaveUp:
    attempts: int


class Flaky:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls = 0

    def run(self, s: St) -> Done:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return Done("ran")


def on_failed(s: St, event: Failed, attempts: int) -> RetryAgain[int] | Result[St, GaveUp]:
    if event.attempt >= 2:
        return Err(GaveUp(event.attempt))
    return RetryAgain(event.attempt, event.retry_at)


def workflow_of(definition: WIO[Any, Any, Any], events: Any) -> type[Workflow[St, Any]]:
    class Flow(Workflow[St, Any]):
        pass

    Flow.event_type = events
    Flow.definition = definition
    return Flow


def assert_refused(definition: WIO[Any, Any, Any], events: Any, match: str) -> None:
    """A workflow of ``definition`` and ``events`` is a definition error saying ``match``."""
    with pytest.raises(DefinitionError, match=match):
        workflow_of(definition, events).codecs()


# -- 1. a stateful retry whose on_error may return None ------------------------------------


def retry_only_connection_errors(failure: RetryFailure[St, int]) -> Failed | None:
    if not isinstance(failure.error, ConnectionError):
        return None  # let the exception through
    return Failed(failure.state + 1, failure.now + timedelta(minutes=1))


def optional_spelling(failure: RetryFailure[St, int]) -> Optional[Failed]:  # noqa: UP045 - the spelling under test
    return retry_only_connection_errors(failure)


def wider_union(failure: RetryFailure[St, int]) -> Failed | GaveUpEvent | None:
    return retry_only_connection_errors(failure)


@dataclass(frozen=True)
class GaveUpEvent:
    attempts: int


def retried(flaky: Flaky, on_error: Any) -> WIO[St, Any, St]:
    step = WIO.run_io(St, flaky.run).handle_event(lambda s, e: St(s.value + 1, (*s.log, e.what)))
    return step.retry_stateful(initial=0, on_error=on_error, handle_event=on_failed)


@pytest.mark.parametrize(
    ("on_error", "events"),
    [
        (retry_only_connection_errors, Done | Failed),
        (optional_spelling, Done | Failed),
        (wider_union, Done | Failed | GaveUpEvent),
    ],
)
async def test_a_retry_whose_on_error_may_return_none_builds_and_runs(
    on_error: Any, events: Any
) -> None:
    flaky = Flaky([ConnectionError("down"), ValueError("bad input")])
    wf = workflow_of(retried(flaky, on_error), events)
    wf.codecs()  # used to fail: "step 'retry' records NoneType"
    clock = TestClock(START)
    runtime = InMemoryRuntime(wf, initial_state=St(0), clock=clock)
    inst = await ReplayCheckedInstance.create(runtime, "r-1")
    assert await inst.get_events() == [Failed(1, START + timedelta(minutes=1))]
    clock.advance(timedelta(minutes=1))
    with pytest.raises(ValueError, match="bad input"):  # on_error returned None
        await inst.wakeup()
    assert await inst.get_events() == [Failed(1, START + timedelta(minutes=1))]
    await inst.wakeup()
    assert await inst.query_state() == St(1, ("ran",))


def test_the_optional_event_is_read_through_awaitable_annotations_too() -> None:
    from workflows4py.definition import event_types

    def awaited(failure: Any) -> Awaitable[Failed | None]:
        raise NotImplementedError

    assert event_types(awaited, None, step="x") == (Failed,)
    assert event_types(optional_spelling, None, step="x") == (Failed,)


def test_an_on_error_that_can_only_return_none_is_refused() -> None:
    def never(failure: RetryFailure[St, int]) -> None:
        return None

    with pytest.raises(DefinitionError, match="never returns an event"):
        retried(Flaky([]), never)


def test_a_coroutine_on_error_is_refused_when_built() -> None:
    async def later(failure: RetryFailure[St, int]) -> Failed:
        return Failed(1, failure.now)

    with pytest.raises(DefinitionError, match="on_error must be a plain function"):
        retried(Flaky([]), later)


def test_an_effect_annotated_to_return_none_is_refused() -> None:
    def nothing(s: St) -> None:
        return None

    with pytest.raises(DefinitionError, match="never returns an event"):
        WIO.run_io(St, nothing).handle_event(lambda s, e: s)


# -- 2. the last state of a parallel node that failed ---------------------------------------


@dataclass(frozen=True)
class Rejected:
    by: str


@dataclass(frozen=True)
class Decision:
    by: str
    ok: bool = True


legal = SignalDef("legal", request=Decision)
finance = SignalDef("finance", request=Decision)
audit = SignalDef("audit", request=Decision)


def review(signal: SignalDef[Decision, None], event: type[Any]) -> WIO[St, Rejected, St]:
    def on_event(s: St, e: Any) -> Result[St, Rejected]:
        if e.by.startswith("no:"):
            return Err(Rejected(e.by))
        return Ok(St(s.value + 1, (*s.log, e.by)))

    step: WIO[St, Rejected, St] = (
        WIO.handle_signal(signal, input=St)
        .purely(lambda s, r: event(r.by if r.ok else f"no:{r.by}"), event=event)
        .handle_event_with_error(on_event)
        .void_response()
    )
    return step


@dataclass(frozen=True)
class LegalChecked:
    by: str


@dataclass(frozen=True)
class FinanceChecked:
    by: str


@dataclass(frozen=True)
class AuditChecked:
    by: str


def count_branch(interim: St, branch: St) -> St:
    return St(interim.value + 1, (*interim.log, *branch.log))


def reviews(second_branch: WIO[St, Rejected, St]) -> WIO[St, Any, St]:
    node = (
        WIO.parallel(lambda s: St(0, ()), input=St)
        .branch(review(legal, LegalChecked), incorporate=count_branch)
        .branch(second_branch, incorporate=count_branch)
        .output(lambda s, outs: s)
    )

    def record(caught: Caught[St, Rejected]) -> St:
        return St(caught.state.value, (*caught.state.log, f"failed: {caught.error.by}"))

    return node.handle_error_with(WIO.pure(record))


ParallelEvents = LegalChecked | FinanceChecked | AuditChecked


async def test_a_branch_failing_on_its_first_step_is_not_folded_into_the_last_state() -> None:
    wf = workflow_of(reviews(review(finance, FinanceChecked)), ParallelEvents)
    inst = await ReplayCheckedInstance.create(InMemoryRuntime(wf, initial_state=St(0)), "p-1")
    await inst.deliver_signal(legal, Decision("counsel"))
    await inst.deliver_signal(finance, Decision("cfo", ok=False))
    # one branch advanced (counted once), the failed one never did: value 1, not 2
    assert await inst.query_state() == St(1, ("counsel", "failed: no:cfo"))


async def test_a_failed_branch_that_had_advanced_is_folded_in_with_its_last_state() -> None:
    second = review(finance, FinanceChecked) >> review(audit, AuditChecked)
    wf = workflow_of(reviews(second), ParallelEvents)
    inst = await ReplayCheckedInstance.create(InMemoryRuntime(wf, initial_state=St(0)), "p-2")
    await inst.deliver_signal(finance, Decision("cfo"))
    await inst.deliver_signal(audit, Decision("auditor", ok=False))
    # legal never advanced; the second branch did (its state after "cfo")
    assert await inst.query_state() == St(1, ("cfo", "failed: no:auditor"))


# -- 3. the event classes of for-each and embedded workflows --------------------------------


@dataclass(frozen=True)
class Reserved:
    sku: str


@dataclass(frozen=True)
class Received:
    quantity: int


@dataclass(frozen=True)
class LineEvent:  # what the journal records for a line: the key and the line's own event
    key: str
    event: Reserved | Received


@dataclass(frozen=True)
class ReservedOnly:
    key: str
    event: Reserved


@dataclass(frozen=True)
class TimedLineEvent:
    key: str
    event: Reserved | SystemEvent


@dataclass(frozen=True)
class Delivery:
    quantity: int


goods = SignalDef("goods", request=Delivery)


def reserve(s: St) -> Reserved:
    return Reserved(f"sku-{s.value}")


def unwrap_line(event: object) -> tuple[str, object] | None:
    return (event.key, event.event) if isinstance(event, LineEvent | ReservedOnly) else None


def unwrap_timed(event: object) -> tuple[str, object] | None:
    return (event.key, event.event) if isinstance(event, TimedLineEvent) else None


reserve_line = WIO.run_io(reserve).handle_event(lambda s, e: St(s.value, (*s.log, e.sku)))
receive_line = (
    WIO.handle_signal(goods, input=St)
    .purely(lambda s, r: Received(r.quantity), event=Received)
    .handle_event(lambda s, e: St(s.value + e.quantity, s.log))
    .void_response()
)


def lines(body: WIO[St, Any, St], wrap: Any, unwrap: Any = unwrap_line) -> WIO[St, Any, St]:
    return WIO.for_each(
        lambda s: [St(1), St(2)], body, key=lambda e: str(e.value), input=St, name="Lines"
    ).build(
        wrap=wrap,
        unwrap=unwrap,
        interim=lambda s, states: s,
        output=lambda s, outs: St(sum(o.value for o in outs.values()), ("done",)),
    )


async def test_a_for_each_journal_holds_the_wrapper_class_only() -> None:
    # the union needs the wrapper; the lines' own classes travel inside it
    wf = workflow_of(lines(reserve_line >> receive_line, LineEvent), LineEvent)
    inst = await ReplayCheckedInstance.create(InMemoryRuntime(wf, initial_state=St(0)), "l-1")
    journal = await inst.instance.get_journal()
    assert [entry.type for entry in journal] == ["LineEvent", "LineEvent"]
    await inst.deliver_signal(goods, Delivery(5), route="1")
    await inst.deliver_signal(goods, Delivery(7), route="2")
    assert await inst.query_state() == St(1 + 5 + 2 + 7, ("done",))


def test_a_for_each_whose_wrapper_is_not_in_the_union_is_refused() -> None:
    # used to pass, and the first event failed with EncodeError
    assert_refused(
        lines(reserve_line >> receive_line, LineEvent),
        Reserved | Received,
        r"for-each 'Lines' records its steps' events wrapped as LineEvent "
        r"\(what wrap returns\), which is not one of the workflow's event types "
        r"\(Reserved, Received\)",
    )


def test_a_for_each_step_whose_event_the_wrapper_does_not_take_is_refused() -> None:
    # used to pass, and the signal's event failed with EncodeError
    assert_refused(
        lines(reserve_line >> receive_line, ReservedOnly),
        ReservedOnly,
        r"step 'Handle Delivery' inside for-each 'Lines' records Received, which is not "
        r"a class its wrap function takes \(ReservedOnly's 'event' is typed Reserved\)",
    )


def test_a_timer_inside_a_for_each_needs_a_wrapper_taking_the_timer_events() -> None:
    wait = WIO.timer(timedelta(hours=1), input=St, name="Cool Down")
    assert_refused(
        lines(reserve_line >> wait, ReservedOnly),
        ReservedOnly,
        r"timer 'Cool Down' inside for-each 'Lines' records TimerStarted and "
        r"TimerReleased, which are not a class its wrap function takes .*; add SystemEvent",
    )
    ok = workflow_of(lines(reserve_line >> wait, TimedLineEvent, unwrap_timed), TimedLineEvent)
    ok.codecs()


def test_a_wrap_function_is_checked_through_its_annotations() -> None:
    def wrap(key: str, event: Reserved) -> ReservedOnly:
        return ReservedOnly(key, event)

    assert_refused(
        lines(reserve_line >> receive_line, wrap),
        ReservedOnly,
        r"\(wrap's 'event' is typed Reserved\)",
    )
    assert_refused(lines(reserve_line, wrap), LineEvent, "wrapped as ReservedOnly")


def test_a_wrap_lambda_says_nothing_so_it_is_not_checked() -> None:
    def wrap(key, event):  # type: ignore[no-untyped-def]  # unannotated on purpose
        return LineEvent(key, event)

    wf = workflow_of(lines(reserve_line, wrap), Reserved)
    wf.codecs()  # not known at build time: the first event would fail to encode


@dataclass(frozen=True)
class Inner:
    count: int


@dataclass(frozen=True)
class Counted:
    amount: int


@dataclass(frozen=True)
class InnerEvent:
    event: Counted | SystemEvent


def count(i: Inner) -> Counted:
    return Counted(1)


def embedded(inner: WIO[Inner, Any, Inner], wrap: Any = InnerEvent) -> WIO[St, Any, St]:
    return WIO.embed(
        inner,
        input=lambda s: Inner(s.value),
        output=lambda s, i: St(i.count, s.log),
        wrap=wrap,
        unwrap=lambda e: e.event if isinstance(e, InnerEvent) else None,
        outer=St,
        name="Counting",
    )


counting = WIO.run_io(count).handle_event(lambda i, e: Inner(i.count + e.amount))


async def test_an_embedded_workflow_with_a_timer_records_the_wrapper_only() -> None:
    wait = WIO.timer(timedelta(minutes=5), input=Inner, name="Pause")
    wf = workflow_of(embedded(counting >> wait >> counting), InnerEvent)
    clock = TestClock(START)
    runtime = InMemoryRuntime(wf, initial_state=St(0), clock=clock)
    inst = await ReplayCheckedInstance.create(runtime, "e-1")
    clock.advance(timedelta(minutes=5))
    await inst.run_due_wakeups()
    assert await inst.query_state() == St(2)
    assert {entry.type for entry in await inst.instance.get_journal()} == {"InnerEvent"}


def test_an_embed_whose_wrapper_is_not_in_the_union_is_refused() -> None:
    assert_refused(embedded(counting), Counted, "embed 'Counting' records its steps' events")


def test_a_for_each_inside_an_embed_is_checked_against_the_embed_wrapper() -> None:
    @dataclass(frozen=True)
    class Outer:
        event: Reserved  # takes neither LineEvent nor the lines' events

    def to_st(i: Inner) -> St:
        return St(i.count)

    def to_inner(s: St) -> Inner:
        return Inner(s.value)

    inner = lines(reserve_line, LineEvent).map_input(to_st).map(to_inner)
    assert_refused(
        embedded(inner, wrap=Outer),
        Outer,
        r"for-each 'Lines' inside embed 'Counting' records its steps' events wrapped "
        r"as LineEvent",
    )


@dataclass(frozen=True)
class Snapshot:
    value: int


def test_a_checkpoint_inside_a_for_each_is_checked_against_the_wrapper() -> None:
    def snapshot(s: St, out: St) -> Snapshot:
        return Snapshot(out.value)

    body = reserve_line.checkpointed(snapshot, lambda s, e: St(e.value))
    assert_refused(lines(body, LineEvent), LineEvent, "inside for-each 'Lines' records Snapshot")


@dataclass(frozen=True)
class AnyLineEvent:
    key: str
    event: Any


async def test_a_wrap_that_says_nothing_fails_when_the_event_is_recorded() -> None:
    def wrap(key: str, event: object) -> LineEvent:
        return LineEvent(key, event)  # type: ignore[arg-type]

    wait = WIO.timer(timedelta(hours=1), input=St, name="Cool Down")
    for says_nothing in (wrap, AnyLineEvent):
        events = LineEvent if says_nothing is wrap else AnyLineEvent
        wf = workflow_of(lines(reserve_line >> wait, says_nothing), events)
        wf.codecs()  # an event parameter typed object or Any is not checked
    wf = workflow_of(lines(reserve_line >> wait, wrap), LineEvent)
    runtime = InMemoryRuntime(wf, initial_state=St(0))
    with pytest.raises(EncodeError):
        await runtime.create_instance("l-2")  # LineEvent.event does not admit TimerStarted
    journal = await (await runtime.get_instance("l-2")).get_journal()
    assert [entry.type for entry in journal] == ["LineEvent"]  # the timer's start was not
