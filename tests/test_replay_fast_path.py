"""The replay fast path (``Execution.apply_events``) against the fold of ``apply_event`` it
replaces: same tree (its snapshot body), state, progress, counters and frontier, after any
run of events, cut anywhere, with an unexpected event anywhere; same errors."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_property_replay import EVENT_UNION, SIGNALS, Leaves, V, build, moves, specs

from workflows4py import (
    WIO,
    ExecutionError,
    InMemoryRuntime,
    JournalEntry,
    SignalDef,
    Terminated,
    UnexpectedEvent,
    UnexpectedSignal,
    Workflow,
)
from workflows4py.engine import Execution, encode_execution
from workflows4py.stores import InstanceKey, NewEvent, SqliteStore
from workflows4py.testing import TestClock


@dataclass(frozen=True)
class Stray:
    """An event no step of any definition here takes."""

    n: int


def one_by_one(definition: Any, initial: Any, events: list[Any]) -> tuple[Execution, int]:
    execution = Execution.start(definition, initial)
    for i, event in enumerate(events):
        nxt = execution.apply_event(event)
        if nxt is None:
            return execution, i
        execution = nxt
    return execution, len(events)


def assert_same(fast: Execution, slow: Execution, workflow: type[Workflow[Any, Any]]) -> None:
    assert encode_execution(fast, workflow) == encode_execution(slow, workflow)
    assert fast.state == slow.state
    assert fast.status == slow.status
    assert fast.result == slow.result
    assert fast.terminated == slow.terminated
    assert (fast.next_index, fast.events_applied) == (slow.next_index, slow.events_applied)
    assert fast.progress() == slow.progress()
    assert fast.expected_events() == slow.expected_events()
    assert fast.awaiting_steps() == slow.awaiting_steps()
    assert fast.expected_signals() == slow.expected_signals()
    assert fast.wakeup_at() == slow.wakeup_at()
    assert [leaf.frame.route for leaf in fast.frontier()] == [
        leaf.frame.route for leaf in slow.frontier()
    ]


async def live_events(workflow: type[Workflow[V, Any]], script: list[Any]) -> list[Any]:
    """The events of a live run of ``workflow`` driven by ``script`` (as the property test)."""
    clock = TestClock()
    runtime = InMemoryRuntime(workflow, initial_state=V(0), clock=clock)
    instance = await runtime.create_instance("p-1")
    for move in script:
        if move[0] == "clock":
            clock.advance(timedelta(minutes=move[1]))
            await runtime.run_due_wakeups()
            continue
        if move[0] == "signal":
            sig = SIGNALS[move[1]]
        else:
            expected = await instance.expected_signals()
            if not expected:
                continue
            sig = expected[move[1] % len(expected)]
        response = await instance.deliver_signal(sig, V(move[2]))
        assert not isinstance(response, UnexpectedSignal) or move[0] == "signal"
    return list(await instance.get_events())


@settings(
    max_examples=int(os.environ.get("WORKFLOWS4PY_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(spec=specs, script=moves, cut=st.integers(0, 60), stray=st.integers(0, 60))
async def test_apply_events_is_the_fold_of_apply_event(
    spec: Any, script: list[Any], cut: int, stray: int
) -> None:
    try:
        definition = build(spec, Leaves())
    except OverflowError:
        return

    class Random(Workflow[V, Any]):
        pass

    Random.definition = definition
    Random.event_type = EVENT_UNION
    events = await live_events(Random, script)
    start = Execution.start(definition, V(0))

    # the whole run at once, and cut in two
    slow, taken = one_by_one(definition, V(0), events)
    assert taken == len(events)
    fast, taken = start.apply_events(events)
    assert taken == len(events)
    assert_same(fast, slow, Random)
    cut = min(cut, len(events))
    first, taken = start.apply_events(events[:cut])
    assert taken == cut
    assert_same(first, one_by_one(definition, V(0), events[:cut])[0], Random)
    second, taken = first.apply_events(events[cut:])
    assert taken == len(events) - cut
    assert_same(second, slow, Random)

    # an event nothing awaits stops the run where it stands, with the events before applied
    at = min(stray, len(events))
    wrong = [*events[:at], Stray(at), *events[at:]]
    fast, taken = start.apply_events(wrong)
    slow, expected_taken = one_by_one(definition, V(0), wrong)
    assert taken == expected_taken == at
    assert_same(fast, slow, Random)

    # a termination anywhere: taken while the instance awaits, nothing after it
    ended = [*events[:at], Terminated("stop", datetime(2026, 1, 1, tzinfo=UTC)), *events[at:]]
    fast, taken = start.apply_events(ended)
    slow, expected_taken = one_by_one(definition, V(0), ended)
    assert taken == expected_taken
    assert_same(fast, slow, Random)


# -- long loops, in the places the fast path reaches ------------------------------------------


@dataclass(frozen=True)
class Tick:
    n: int


@dataclass(frozen=True)
class Tock:
    n: int


@dataclass(frozen=True)
class Count:
    n: int = 0
    restarts: int = 0


def tick() -> WIO[Count, Any, Count]:
    return WIO.run_io(Count, lambda s: Tick(s.n + 1), event=Tick).handle_event(
        lambda s, e: Count(e.n, s.restarts)
    )


def tock() -> WIO[Count, Any, Count]:
    return WIO.run_io(Count, lambda s: Tock(s.n), event=Tock).handle_event(
        lambda s, e: Count(s.n, s.restarts + 1)
    )


LOOP = WIO.repeat(tick()).until(lambda s: s.n >= 300)
RESTARTING = WIO.repeat(tick()).until(lambda s: s.n >= 300, on_restart=tock())
BODY_CHAIN = WIO.repeat(tick() >> WIO.pure(Count, lambda s: s) >> tick()).until(
    lambda s: s.n >= 300
)
NESTED = WIO.repeat(WIO.repeat(tick()).until(lambda s: s.n % 7 == 0)).until(lambda s: s.n >= 300)
IN_A_CHAIN = tick() >> LOOP >> tick() >> RESTARTING


def inward(s: Count) -> Count:
    return Count(s.n, s.restarts + 1)


def outward(outer: Count, out: Count) -> Count:
    return Count(out.n + 1, outer.restarts)


IN_A_TRANSFORM = tick() >> LOOP.transform(inward, outward) >> tick().map(lambda s: s)
TICKS = [Tick(i) for i in range(1, 303)]

DEFINITIONS: dict[str, tuple[WIO[Count, Any, Count], list[Any]]] = {
    "loop": (LOOP, TICKS[:300]),
    "on_restart": (
        RESTARTING,
        [e for i in range(1, 301) for e in ((Tick(i), Tock(i)) if i < 300 else (Tick(i),))],
    ),
    "body_chain": (BODY_CHAIN, TICKS[:300]),
    "nested": (NESTED, TICKS[:300]),
    "in_a_chain": (IN_A_CHAIN, TICKS),
    "in_a_transform": (IN_A_TRANSFORM, [*TICKS[:300], Tick(302)]),
    "too_many": (LOOP, [*TICKS[:300], Tick(301)]),
}


def workflow_of(definition: WIO[Count, Any, Count]) -> type[Workflow[Count, Any]]:
    class Long(Workflow[Count, Tick | Tock]):
        pass

    Long.definition = definition
    return Long


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
@pytest.mark.parametrize("keep", [1, 10])
def test_long_loops_replay_like_the_fold(
    name: str, keep: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    definition, events = DEFINITIONS[name]
    workflow = workflow_of(definition)
    slow, slow_taken = one_by_one(definition, Count(), events)
    fast, taken = Execution.start(definition, Count()).apply_events(events)
    assert taken == slow_taken
    assert_same(fast, slow, workflow)
    # in pieces of every size the runtime may hand over
    for size in (1, 2, 7, 64):
        execution = Execution.start(definition, Count())
        for first in range(0, len(events), size):
            execution, got = execution.apply_events(events[first : first + size])
            assert got == len(events[first : first + size]) or first + got == slow_taken
        assert_same(execution, slow, workflow)


def test_a_stray_event_in_a_long_loop_is_reported_where_it_stands() -> None:
    events: list[Any] = [Tick(i) for i in range(1, 301)]
    events.insert(150, Tock(0))
    with pytest.raises(UnexpectedEvent) as caught:
        Execution.replay(LOOP, Count(), events, instance_id="i-1")
    assert caught.value.sequence == 151
    assert caught.value.event_type == "Tock"
    execution, taken = Execution.start(LOOP, Count()).apply_events(events)
    assert taken == 150
    assert execution.state == Count(150)


def test_an_error_of_the_definitions_code_propagates_from_a_long_replay() -> None:
    def handler(s: Count, e: Tick) -> Count:
        if e.n == 200:
            raise ValueError("no 200")
        return Count(e.n)

    loop = WIO.repeat(WIO.run_io(Count, lambda s: Tick(s.n + 1), event=Tick).handle_event(handler))
    definition = loop.until(lambda s: s.n >= 300)
    events = [Tick(i) for i in range(1, 301)]
    with pytest.raises(ValueError, match="no 200"):
        one_by_one(definition, Count(), events)
    with pytest.raises(ValueError, match="no 200"):
        Execution.start(definition, Count()).apply_events(events)


def test_a_busy_loop_is_refused_by_the_fast_path_as_event_by_event() -> None:
    # after its first event the body never waits again: the loop spins
    body = WIO.choose(Count, lambda s: s.n == 0, tick(), WIO.pure(Count, lambda s: s))
    definition = WIO.repeat(body).until(lambda s: False)
    with pytest.raises(ExecutionError, match="busy loop") as slow:
        one_by_one(definition, Count(), [Tick(1)])
    with pytest.raises(ExecutionError, match="busy loop") as fast:
        Execution.start(definition, Count()).apply_events([Tick(1)])
    assert str(fast.value) == str(slow.value)


def test_signals_in_a_loop_replay_like_the_fold() -> None:
    ping = SignalDef("ping", request=Count)
    step = (
        WIO.handle_signal(ping, input=Count)
        .purely(lambda s, r: Tick(s.n + r.n), event=Tick)
        .handle_event(lambda s, e: Count(e.n))
        .void_response()
    )
    definition = WIO.repeat(step).until(lambda s: s.n >= 100)
    events = [Tick(i) for i in range(1, 101)]
    slow, _ = one_by_one(definition, Count(), events)
    fast, taken = Execution.start(definition, Count()).apply_events(events)
    assert taken == 100
    assert_same(fast, slow, workflow_of(definition))


# -- reading: the codec's decoder, the stores' conversion of rows --------------------------------


@dataclass(frozen=True)
class Positive:
    n: int

    def __post_init__(self) -> None:
        if self.n < 0:
            raise TypeError("n must not be negative")


@pytest.mark.parametrize(
    ("tag", "data"),
    [
        ("Positive", '{"n": 3}'),
        ("Positive", '{"n": -1}'),  # refused by the class itself
        ("Positive", '{"n": "3"}'),  # no coercion
        ("Positive", '{"n": 3, "m": 4}'),  # no unknown field
        ("Positive", "{"),  # not JSON
        ("Positive", b'{"n": 3}'),
        ("Tick", '{"n": 3}'),  # a tag the codec does not know
    ],
)
def test_the_codecs_decoder_decodes_and_refuses_as_decode(tag: str, data: str | bytes) -> None:
    from workflows4py.serialization import JsonCodec

    codec: JsonCodec[Any] = JsonCodec(Positive | Tock)
    decode = codec.decoder()
    assert codec.decoder() is decode  # built once
    assert outcome(codec.decode, tag, data) == outcome(decode, tag, data)


def outcome(decode: Any, tag: str, data: str | bytes) -> tuple[Any, ...]:
    """What ``decode`` returns, or what it raises (class, message, path, class of cause)."""
    try:
        return ("value", decode(tag, data))
    except Exception as e:
        return (type(e), str(e), getattr(e, "path", None), type(e.__cause__))


async def _stored_and_read(tmp_path: Path, instants: list[datetime]) -> list[JournalEntry]:
    """``instants`` appended as events' instants through a SqliteStore, and read back."""
    store = SqliteStore(tmp_path / "instants.db")
    key = InstanceKey("w", "i")
    try:
        await store.initialize()
        await store.append(key, 0, [NewEvent("T", "{}", at) for at in instants])
        return await store.read(key)
    finally:
        await store.close()


@pytest.mark.parametrize(
    "us",
    [
        0,
        1,
        999_999,
        1_764_800_000_123_456,
        2**53,
        3_999_999_999_999_999,
        4_000_000_000_000_000,  # past the float way's range: the exact way
        253_402_300_799_999_999,  # 9999-12-31 23:59:59.999999
        -1,
        -62_135_596_800_000_000,  # year 1
    ],
)
async def test_sqlite_rows_hold_the_instant_stored(us: int, tmp_path: Path) -> None:
    at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
    (got,) = await _stored_and_read(tmp_path, [at])
    assert got.recorded_at == at
    assert got.recorded_at.tzinfo is UTC
    assert got == JournalEntry(1, "T", "{}", at)


async def test_sqlite_rows_hold_the_instants_stored_at_random(tmp_path: Path) -> None:
    import random

    rng = random.Random(16)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    instants = [
        epoch + timedelta(microseconds=rng.randrange(0, 4_000_000_000_000_000))
        for _ in range(20_000)
    ]
    got = await _stored_and_read(tmp_path, instants)
    assert [e.recorded_at for e in got] == instants


# -- the runtime's replay: decoded in runs, the same errors at the same entry ----------------


LONGER = WIO.repeat(tick()).until(lambda s: s.n >= 1000)


def _journal(n: int) -> list[JournalEntry]:
    codec = workflow_of(LONGER).codecs().events
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return [JournalEntry(i, *codec.encode(Tick(i)), at) for i in range(1, n + 1)]


def _broken(entries: list[JournalEntry], k: int, how: str) -> list[JournalEntry]:
    """``entries`` with entry #k undecodable, out of place or an event nobody awaits."""
    old = entries[k - 1]
    bad = {
        "undecodable": JournalEntry(k, "Tick", '{"n": "x"}', old.recorded_at),
        "gap": JournalEntry(k + 1, old.type, old.data, old.recorded_at),
        "unexpected": JournalEntry(k, "Tock", '{"n": 0}', old.recorded_at),
    }[how]
    return [*entries[: k - 1], bad, *entries[k:]]


def _replayed(entries: list[JournalEntry], *, one_at_a_time: bool = False) -> tuple[Any, int, Any]:
    """What replaying ``entries`` into a fresh instance raises (all at once, or handed over
    one entry at a time), with the instance's position and state then."""
    runtime = InMemoryRuntime(workflow_of(LONGER), initial_state=Count())
    probe = runtime._new("i-1")
    try:
        for run in [[e] for e in entries] if one_at_a_time else [entries]:
            probe.replay(run)
    except Exception as e:
        return (type(e), str(e), getattr(e, "sequence", None)), probe.sequence, probe.execution
    return None, probe.sequence, probe.execution


@pytest.mark.parametrize("k", [1, 2, 255, 256, 257, 290, 512, 513])
@pytest.mark.parametrize(
    "how",
    ["undecodable", "gap", "unexpected", "unexpected then undecodable", "undecodable then gap"],
)
def test_the_runtimes_replay_fails_at_the_entry_it_failed_at_event_by_event(
    k: int, how: str
) -> None:
    first, _, then = how.partition(" then ")
    entries = _broken(_journal(600), k, first)
    if then:
        entries = _broken(entries, k + 1, then)
    error, sequence, execution = _replayed(entries)
    assert error is not None
    assert error[2] == (k + 1 if first == "gap" else k)  # a gap names the entry found there
    assert sequence == k - 1  # every entry before it applied, and kept
    if (k, first) != (1, "gap"):  # a first entry out of place: nothing started, as before
        assert execution.state == Count(k - 1)
    # as when each entry went alone to the engine, and when the journal ends there
    alone, alone_sequence, alone_execution = _replayed(entries, one_at_a_time=True)
    assert (alone, alone_sequence, alone_execution.state) == (error, sequence, execution.state)
    assert _replayed(entries[:k])[0] == error


def test_the_runtimes_replay_of_a_long_journal_is_the_fold() -> None:
    entries = _journal(300)
    error, sequence, execution = _replayed(entries)
    assert error is None
    assert sequence == 300
    slow, _ = one_by_one(LONGER, Count(), [Tick(i) for i in range(1, 301)])
    assert_same(execution, slow, workflow_of(LONGER))
