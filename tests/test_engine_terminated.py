"""The engine's side of terminating an instance: a ``Terminated`` event stops everything."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from workflows4py import WIO, SignalDef, Terminated, Workflow
from workflows4py.engine import Execution, Record, decode_execution, encode_execution

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class St:
    n: int


@dataclass(frozen=True)
class Poked:
    n: int


@dataclass(frozen=True)
class Poke:
    n: int


poke = SignalDef("poke", request=Poke)
wait_for_poke = (
    WIO.handle_signal(poke, input=St)
    .purely(lambda s, r: Poked(r.n), event=Poked)
    .handle_event(lambda s, e: St(e.n))
    .void_response()
)
cool_down = WIO.timer(timedelta(hours=1), input=St, name="Cool Down")


class Poking(Workflow[St, Poked]):
    definition = wait_for_poke >> cool_down >> wait_for_poke


def test_a_terminated_execution_awaits_nothing_and_takes_no_event() -> None:
    ex = Execution.start(Poking.definition, St(0))
    assert [s.id for s in ex.expected_signals()] == ["poke"]
    stop = Terminated("customer left", T0)
    done = ex.apply_event(stop)
    assert done is not None
    assert done.status == "terminated"
    assert done.terminated == stop
    assert done.events_applied == 1
    assert done.frontier() == []
    assert done.expected_signals() == ()
    assert done.find_signal("poke") is None
    assert done.next_action(T0 + timedelta(days=1)) is None
    assert done.wakeup_at() is None
    assert done.apply_event(Poked(1)) is None
    assert done.apply_event(Terminated("again", T0)) is None
    assert done.state == St(0)
    assert done.result is None


def test_termination_stops_a_started_timer_and_hides_past_signals() -> None:
    poked = Execution.start(Poking.definition, St(0)).apply_event(Poked(1))
    assert poked is not None
    started = poked.next_action(T0)
    assert isinstance(started, Record)
    ex = poked.apply_event(started.event)
    assert ex is not None
    assert ex.wakeup_at() == T0 + timedelta(hours=1)
    assert ex.find_signal("poke") is not None  # a redelivery of the first poke
    stopped = ex.apply_event(Terminated("stop", T0))
    assert stopped is not None
    assert stopped.wakeup_at() is None
    assert stopped.find_signal("poke") is None
    assert stopped.state == St(1)
    assert stopped.progress().terminated == Terminated("stop", T0)
    assert stopped.progress().frontier() == ()  # nothing is waited on any more
    assert ex.progress().terminated is None
    assert [p.kind for p in ex.progress().frontier()] == ["timer"]


def test_a_finished_execution_cannot_be_terminated() -> None:
    class Quick(Workflow[St, Poked]):
        definition = WIO.pure(St, lambda s: St(s.n + 1))

    ex = Execution.start(Quick.definition, St(0))
    assert ex.status == "finished"
    assert ex.apply_event(Terminated("late", T0)) is None


def test_a_terminated_execution_survives_a_snapshot() -> None:
    ex = Execution.start(Poking.definition, St(0)).apply_event(Terminated("stop", T0))
    assert ex is not None
    back = decode_execution(encode_execution(ex, Poking), Poking, St(0))
    assert back.status == "terminated"
    assert back.terminated == Terminated("stop", T0)
    live = Execution.start(Poking.definition, St(0))
    assert decode_execution(encode_execution(live, Poking), Poking, St(0)).terminated is None


def test_terminated_is_in_every_workflows_event_codec() -> None:
    codec = Poking.codecs().events
    stop = Terminated("stop", T0)
    assert codec.decode(*codec.encode(stop)) == stop
