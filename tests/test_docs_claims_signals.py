"""Claims of docs/signals.md, checked through the public API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from workflows4py import (
    WIO,
    Caught,
    DefinitionError,
    Err,
    InMemoryRuntime,
    InvalidSignalRequest,
    Ok,
    Result,
    SignalDef,
    UnexpectedSignal,
    Workflow,
)


@dataclass(frozen=True)
class St:
    log: tuple[str, ...] = ()


@dataclass(frozen=True)
class QuoteRequest:
    amount: int


@dataclass(frozen=True)
class Asked:
    amount: int


@dataclass(frozen=True)
class Noted:
    text: str


@dataclass(frozen=True)
class TooMuch:
    amount: int


ask = SignalDef("claims.ask", request=QuoteRequest, response=int)
other = SignalDef("claims.other", request=QuoteRequest)


def on_asked(s: St, e: Asked) -> St:
    return St((*s.log, f"asked {e.amount}"))


def asking() -> WIO[St, Any, St]:
    return (
        WIO.handle_signal(ask, input=St)
        .purely(lambda s, r: Asked(r.amount), event=Asked)
        .handle_event(on_asked)
        .produce_response(lambda s, e, r: e.amount * 2)
    )


@pytest.mark.parametrize(
    "bad",
    ["", "-starts-with-dash", "has space", "x" * 201, "é", "a?b"],
)
def test_invalid_signal_ids_are_definition_errors(bad: str) -> None:
    with pytest.raises(DefinitionError):
        SignalDef(bad, request=QuoteRequest)


def test_valid_signal_ids() -> None:
    for good in ["a", "9", "sales.request-quote", "a:b/c_d", "x" * 200]:
        assert SignalDef(good, request=QuoteRequest).id == good


async def test_the_default_label_comes_from_the_request_class() -> None:
    assert ask.name == "Quote Request"
    assert SignalDef("claims.named", request=QuoteRequest, name="Ask").name == "Ask"

    class Flow(Workflow[St, Asked]):
        definition = asking()  # "definition" gives no name: the step has none of its own

    instance = await InMemoryRuntime(Flow, initial_state=St()).create_instance("q-1")
    progress = await instance.get_progress()
    assert [p.name for p in progress.walk() if p.kind == "signal"] == ["Handle Quote Request"]
    assert await instance.deliver_signal(ask, QuoteRequest(2)) == 4
    assert [p.name for p in (await instance.get_progress()).executed_steps()] == [
        "Handle Quote Request"
    ]


def test_a_signal_without_response_answers_none_by_default() -> None:
    assert other.response is None


def test_purely_refuses_a_coroutine_function() -> None:
    async def handler(s: St, r: QuoteRequest) -> Asked:
        return Asked(r.amount)

    with pytest.raises(DefinitionError, match="purely"):
        WIO.handle_signal(ask, input=St).purely(handler)
    step = (
        WIO.handle_signal(ask, input=St)
        .with_side_effects(handler)
        .handle_event(on_asked)
        .produce_response(lambda s, e, r: 0)
    )
    assert step.kind == "signal"


async def test_the_request_type_is_checked_before_anything_else() -> None:
    class Flow(Workflow[St, Asked]):
        definition = asking()

    instance = await InMemoryRuntime(Flow, initial_state=St()).create_instance("q-2")
    untyped: Any = Noted("not a request")
    # even for a signal no step awaits, the request type is checked first
    with pytest.raises(InvalidSignalRequest):
        await instance.deliver_signal(other, untyped)
    unexpected = await instance.deliver_signal(other, QuoteRequest(1))
    assert isinstance(unexpected, UnexpectedSignal)
    assert (unexpected.signal_id, unexpected.instance_id) == ("claims.other", "q-2")
    assert unexpected.expected == ("claims.ask",)
    assert await instance.get_journal() == []


async def test_redelivery_runs_no_handler_and_no_follow_up_step() -> None:
    calls: list[str] = []

    def handler(s: St, r: QuoteRequest) -> Asked:
        calls.append("handler")
        return Asked(r.amount)

    def follow_up(s: St) -> Noted:
        calls.append("follow-up")
        return Noted("after")

    class Flow(Workflow[St, Asked | Noted]):
        handle = (
            WIO.handle_signal(ask, input=St)
            .with_side_effects(handler)
            .handle_event(on_asked)
            .produce_response(lambda s, e, r: e.amount + r.amount)
        )
        after = WIO.run_io(follow_up).handle_event(lambda s, e: St((*s.log, e.text)))
        definition = handle >> after >> WIO.end()

    instance = await InMemoryRuntime(Flow, initial_state=St()).create_instance("q-3")
    assert await instance.deliver_signal(ask, QuoteRequest(1)) == 2
    assert calls == ["handler", "follow-up"]  # the follow-up ran before the call returned
    assert await instance.query_state() == St(("asked 1", "after"))
    # a redelivery: the response function gets the recorded event and the *new* request
    assert await instance.deliver_signal(ask, QuoteRequest(10)) == 11
    assert calls == ["handler", "follow-up"]
    assert len(await instance.get_journal()) == 2


async def test_a_failing_follow_up_keeps_the_signal_and_is_retried_by_wakeup() -> None:
    failures = ["down"]

    def follow_up(s: St) -> Noted:
        if failures:
            raise ConnectionError(failures.pop())
        return Noted("after")

    class Flow(Workflow[St, Asked | Noted]):
        handle = asking()
        after = WIO.run_io(follow_up).handle_event(lambda s, e: St((*s.log, e.text)))
        definition = handle >> after

    instance = await InMemoryRuntime(Flow, initial_state=St()).create_instance("q-4")
    with pytest.raises(ConnectionError):
        await instance.deliver_signal(ask, QuoteRequest(3))
    assert [e.type for e in await instance.get_journal()] == ["Asked"]
    assert await instance.deliver_signal(ask, QuoteRequest(3)) == 6  # a redelivery
    assert [e.type for e in await instance.get_journal()] == ["Asked"]  # nothing retried
    await instance.wakeup()
    assert await instance.query_state() == St(("asked 3", "after"))


async def test_an_err_from_the_event_handler_still_answers() -> None:
    def judge(s: St, e: Asked) -> Result[St, TooMuch]:
        return Err(TooMuch(e.amount)) if e.amount > 5 else Ok(on_asked(s, e))

    def rejected(c: Caught[St, TooMuch]) -> St:
        return St((*c.state.log, f"too much: {c.error.amount}"))

    class Flow(Workflow[St, Asked]):
        handle = (
            WIO.handle_signal(ask, input=St)
            .purely(lambda s, r: Asked(r.amount), event=Asked)
            .handle_event_with_error(judge)
            .produce_response(lambda s, e, r: -e.amount)
        )
        definition = handle.handle_error_with(WIO.pure(rejected))

    instance = await InMemoryRuntime(Flow, initial_state=St()).create_instance("q-5")
    assert await instance.deliver_signal(ask, QuoteRequest(9)) == -9
    assert await instance.query_state() == St(("too much: 9",))
    assert await instance.status() == "finished"


async def test_routed_deliveries_reach_only_their_element() -> None:
    @dataclass(frozen=True)
    class Line:
        key: str

    @dataclass(frozen=True)
    class LineEvent:
        key: str
        inner: Asked

    element = (
        WIO.handle_signal(ask, input=Line)
        .purely(lambda line, r: Asked(r.amount), event=Asked)
        .handle_event(lambda line, e: line)
        .produce_response(lambda line, e, r: e.amount)
    )
    lines = WIO.for_each(
        lambda s: [Line("a"), Line("b")], element, key=lambda line: line.key, input=St
    ).build(
        wrap=LineEvent,
        unwrap=lambda e: (e.key, e.inner) if isinstance(e, LineEvent) else None,
        interim=lambda s, states: s,
        output=lambda s, outputs: St(tuple(sorted(outputs))),
    )

    class Flow(Workflow[St, LineEvent]):
        definition = lines

    instance = await InMemoryRuntime(Flow, initial_state=St()).create_instance("q-6")
    assert isinstance(await instance.deliver_signal(ask, QuoteRequest(1)), UnexpectedSignal)
    assert await instance.deliver_signal(ask, QuoteRequest(1), route="a") == 1
    assert await instance.deliver_signal(ask, QuoteRequest(7), route="a") == 1  # redelivery
    assert isinstance(
        await instance.deliver_signal(ask, QuoteRequest(1), route="zzz"), UnexpectedSignal
    )
    assert await instance.deliver_signal(ask, QuoteRequest(2), route="b") == 2
    assert await instance.status() == "finished"
