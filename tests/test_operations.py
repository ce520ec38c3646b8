"""Each operation, run live in the in-memory runtime, with a replay check after every step."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from workflows4py import (
    WIO,
    Caught,
    Err,
    InMemoryRuntime,
    Ok,
    Result,
    SignalDef,
    Workflow,
)
from workflows4py.testing import ReplayCheckedInstance


@dataclass(frozen=True)
class St:
    value: int
    log: tuple[str, ...] = ()


@dataclass(frozen=True)
class Happened:
    what: str
    amount: int = 0


@dataclass(frozen=True)
class Poke:
    amount: int


@dataclass(frozen=True)
class Answer:
    text: str


@dataclass(frozen=True)
class Negative:
    value: int


poke = SignalDef("poke", request=Poke, response=Answer)
nudge = SignalDef("nudge", request=Poke)


def record(s: St, e: Happened) -> St:
    return St(s.value + e.amount, (*s.log, e.what))


def record_checked(s: St, e: Happened) -> Result[St, Negative]:
    total = s.value + e.amount
    return Err(Negative(total)) if total < 0 else Ok(St(total, (*s.log, e.what)))


def sync_effect(s: St) -> Happened:
    return Happened("sync", 1)


async def async_effect(s: St) -> Happened:
    return Happened("async", 10)


def effect_step(
    fn: Callable[[St], Happened] | Callable[[St], Awaitable[Happened]],
) -> WIO[St, Any, St]:
    return WIO.run_io(St, fn, event=Happened).handle_event(record)


def poke_step() -> WIO[St, Negative, St]:
    return (
        WIO.handle_signal(poke, input=St)
        .purely(lambda s, r: Happened("poke", r.amount))
        .handle_event_with_error(record_checked)
        .produce_response(lambda s, e, r: Answer(f"{s.value}+{e.amount}"))
    )


async def noted(s: St, r: Poke) -> Happened:
    return Happened("nudge", r.amount)


def nudge_step() -> WIO[St, Any, St]:
    return (
        WIO.handle_signal(nudge, input=St)
        .with_side_effects(noted)
        .handle_event(record)
        .void_response()
    )


def recover(c: Caught[St, Negative]) -> St:
    return St(0, (*c.state.log, f"recovered from {c.error.value}"))


def double(s: St) -> St:
    return St(s.value * 2, s.log)


def choose(s: St) -> WIO[St, Any, St]:
    return effect_step(sync_effect) if s.value % 2 else effect_step(async_effect)


def to_int(s: St) -> int:
    return s.value


def keep_inner(outer: St, inner: St) -> St:
    return inner


def from_int(n: int) -> St:
    return St(n, ("from int",))


def workflow_of(definition: WIO[Any, Any, Any]) -> type[Workflow[St, Happened]]:
    class Flow(Workflow[St, Happened]):
        pass

    Flow.definition = definition
    return Flow


Step = tuple[str, Any]  # ("signal", (signal, request, expected response)) | ("wakeup", None)

CASES: dict[str, tuple[WIO[Any, Any, Any], list[Step], St, str]] = {
    "pure": (WIO.pure(St, double), [], St(2), "finished"),
    "pure error": (
        WIO.pure(St, double) >> WIO.fail(Negative(-1)),
        [],
        St(2),
        "failed",
    ),
    "run_io sync and async": (
        effect_step(sync_effect) >> effect_step(async_effect),
        [],
        St(12, ("sync", "async")),
        "finished",
    ),
    "signal purely with response": (
        poke_step(),
        [("signal", (poke, Poke(3), Answer("1+3")))],
        St(4, ("poke",)),
        "finished",
    ),
    "signal with side effects, void response": (
        nudge_step() >> poke_step(),
        [("signal", (nudge, Poke(2), None)), ("signal", (poke, Poke(1), Answer("3+1")))],
        St(4, ("nudge", "poke")),
        "finished",
    ),
    "sequence with effects between signals": (
        poke_step() >> effect_step(sync_effect) >> nudge_step() >> effect_step(async_effect),
        [("signal", (poke, Poke(1), Answer("1+1"))), ("signal", (nudge, Poke(5), None))],
        St(18, ("poke", "sync", "nudge", "async")),
        "finished",
    ),
    "flat_map": (
        poke_step().flat_map(choose),
        [("signal", (poke, Poke(2), Answer("1+2")))],
        St(4, ("poke", "sync")),
        "finished",
    ),
    "map": (
        poke_step().map(double),
        [("signal", (poke, Poke(1), Answer("1+1")))],
        St(4, ("poke",)),
        "finished",
    ),
    "map_input and transform": (
        WIO.pure(St, double) >> poke_step().map_input(from_int).transform(to_int, keep_inner),
        [("signal", (poke, Poke(1), Answer("2+1")))],
        St(3, ("from int", "poke")),
        "finished",
    ),
    "handle_error_with": (
        (effect_step(sync_effect) >> poke_step() >> nudge_step()).handle_error_with(
            WIO.pure(recover) >> nudge_step()
        ),
        [("signal", (poke, Poke(-10), Answer("2+-10"))), ("signal", (nudge, Poke(7), None))],
        St(7, ("sync", "recovered from -8", "nudge")),
        "finished",
    ),
    "handle_error_with not needed": (
        poke_step().handle_error_with(WIO.pure(recover)),
        [("signal", (poke, Poke(1), Answer("1+1")))],
        St(2, ("poke",)),
        "finished",
    ),
    "end": (
        effect_step(sync_effect) >> WIO.end(),
        [("wakeup", None)],
        St(2, ("sync",)),
        "awaiting",
    ),
    "noop": (WIO.noop(), [], St(1), "awaiting"),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_operation_live_and_replayed_after_every_step(case: str) -> None:
    definition, steps, final, status = CASES[case]
    runtime = InMemoryRuntime(workflow_of(definition), initial_state=St(1))
    instance = await ReplayCheckedInstance.create(runtime, "i-1")
    for kind, payload in steps:
        if kind == "wakeup":
            await instance.wakeup()
            continue
        signal, request, expected = payload
        assert await instance.deliver_signal(signal, request) == expected
        # delivered again: same answer from the journal, nothing new recorded
        events = await instance.get_events()
        assert await instance.deliver_signal(signal, request) == expected
        assert await instance.get_events() == events
    assert await instance.query_state() == final
    assert await instance.status() == status
