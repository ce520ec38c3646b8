"""The progress model beyond its renderings: an instance's progress and state after any entry
of its journal (over the memory store, SQLite and PostgreSQL), the engine's pure replay, the
frontier, the JSON document's invariants, drafts drawn like real definitions, and the
failed attempts a stateful retry counts (kept by snapshots)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from lifecycle_common import T0, Order, Orders, Paid, Pay, Ticket, Tickets, pay
from test_progress_golden import DRAFTS, KINDS, PullRequestDraft, run

from workflows4py import (
    WIO,
    Caught,
    Err,
    Ok,
    ParkedMark,
    RetryAgain,
    RetryFailure,
    RetryProgress,
    RunIOProgress,
    SequenceProgress,
    SignalDef,
    SignalProgress,
    SqliteRuntime,
    StepProgress,
    Terminated,
    TimerProgress,
    UnexpectedEvent,
    Workflow,
    draft,
    progress_of,
    render,
)
from workflows4py.engine import (
    PROGRESS_JSON_VERSION,
    Execution,
    decode_execution,
    encode_execution,
    progress_at,
)
from workflows4py.runtime import Runtime

pytest_plugins = ("lifecycle_common",)  # the fixtures make and runtime


# -- an instance at any point of its journal ----------------------------------------------------


async def test_progress_and_state_at_every_entry_of_the_journal(runtime: Runtime) -> None:
    order = await runtime.start(Orders, "o-1", initial_state=Order("book", 2))
    await order.deliver_signal(pay, Pay(30))
    journal = await order.get_journal()
    assert [e.type for e in journal][:2] == ["workflows4py.Started", "Paid"]
    assert len(journal) == 3  # and the timer's start

    before = await order.progress_at(0)
    assert before == await order.progress_at(1)  # the start entry holds no event
    assert [p.name for p in before.frontier()] == ["Take Payment"]
    assert await order.state_at(0) == await order.state_at(1) == Order("book", 2)

    paid = await order.progress_at(2)
    (timer,) = paid.frontier()
    assert isinstance(timer, TimerProgress)
    assert (timer.name, timer.started_at) == ("Ship Later", None)  # its start is entry 3
    assert await order.state_at(2) == Order("book", 2, paid=True)

    now = await order.progress_at(3)
    assert now == await order.get_progress()
    assert isinstance(now.frontier()[0], TimerProgress)
    assert now.frontier()[0] == TimerProgress(
        name="Ship Later",
        duration=timedelta(days=1),
        started_at=T0,
        resume_at=T0 + timedelta(days=1),
        waiting=True,
    )
    assert await order.state_at(3) == await order.query_state()


async def test_a_sequence_outside_the_journal_is_a_value_error(runtime: Runtime) -> None:
    ticket = await runtime.start(Tickets, "t-1")
    length = len(await ticket.get_journal())
    for wrong in (-1, length + 1):
        with pytest.raises(ValueError, match=f"between 0 and {length}"):
            await ticket.progress_at(wrong)
        with pytest.raises(ValueError, match=f"between 0 and {length}"):
            await ticket.state_at(wrong)
    with pytest.raises(ValueError, match="between"):
        await ticket.progress_at(True)


async def test_a_terminated_instance_shows_its_mark_from_that_entry_on(runtime: Runtime) -> None:
    await runtime.start(Orders, "o-2", initial_state=Order("pen", 1))
    assert await runtime.terminate(Orders, "o-2", "duplicate order")
    order = await runtime.get(Orders, "o-2")
    journal = await order.get_journal()
    last = len(journal)
    assert journal[-1].type == "workflows4py.Terminated"
    stopped = await order.progress_at(last)
    assert stopped.terminated is not None
    assert stopped.terminated.reason == "duplicate order"
    assert stopped.frontier() == ()
    assert (await order.progress_at(last - 1)).terminated is None
    assert render.text(stopped).startswith("terminated at ")


def test_the_blocking_facade_steps_through_the_journal_too(tmp_path: Path) -> None:
    with SqliteRuntime(Orders, tmp_path / "app.db", initial_state=Order("cup", 1)).blocking() as rt:
        order = rt.create_instance("o-3")
        order.deliver_signal(pay, Pay(2))
        assert order.state_at(0) == Order("cup", 1)
        assert order.state_at(1) == Order("cup", 1, paid=True)
        assert order.progress_at(2) == order.get_progress()


# -- the engine's pure replay -------------------------------------------------------------------


def test_progress_at_replays_the_first_events_of_a_journal() -> None:
    events = [Paid(5)]
    start = progress_at(Orders, Order("a", 1), events, 0)
    assert [p.name for p in start.frontier()] == ["Take Payment"]
    paid = progress_at(Orders, Order("a", 1), events, 1)
    assert paid == Execution.replay(Orders.definition, Order("a", 1), events).progress()
    for wrong in (-1, 2):
        with pytest.raises(ValueError, match="between 0 and 1"):
            progress_at(Orders, Order("a", 1), events, wrong)


def test_replay_refuses_an_event_nothing_awaits() -> None:
    with pytest.raises(UnexpectedEvent) as refused:
        Execution.replay(Orders.definition, Order("a", 1), [Paid(1), Paid(2)], instance_id="x")
    assert refused.value.sequence == 2
    assert refused.value.instance_id == "x"
    assert "Ship Later" in str(refused.value)


def test_progress_of_takes_a_definition_or_a_workflow_and_nothing_else() -> None:
    assert progress_of(Orders) == progress_of(Orders.definition)
    assert {p.status for p in progress_of(Orders).walk()} == {"pending"}
    with pytest.raises(Exception, match="expected a definition or a Workflow subclass"):
        progress_of("orders")  # type: ignore[arg-type]


# -- invariants over every golden case ----------------------------------------------------------

CASES = [
    (f"{kind}: {name}", progress)
    for kind, build in KINDS.items()
    for name, progress in build().items()
]


def _paths(node: dict[str, Any], path: list[int]) -> list[list[int]]:
    """The paths of the JSON nodes waiting with no waiting child."""
    waiting = [c for c in node["children"] if c["status"] == "waiting"]
    found = [path] if node["status"] == "waiting" and not waiting else []
    for i, child in enumerate(node["children"]):
        found += _paths(child, [*path, i])
    return found


@pytest.mark.parametrize(("name", "progress"), CASES, ids=[n for n, _ in CASES])
def test_the_json_document_mirrors_the_tree(name: str, progress: StepProgress) -> None:
    doc = progress.to_json()
    assert doc["version"] == PROGRESS_JSON_VERSION == 1
    assert json.loads(json.dumps(doc)) == doc  # plain JSON
    assert doc["frontier"] == _paths(doc["root"], [])
    assert len(doc["frontier"]) == len(progress.frontier())

    def same(p: StepProgress, node: dict[str, Any]) -> None:
        assert (node["kind"], node["name"], node["status"], node["index"]) == (
            p.kind,
            p.name,
            p.status,
            p.index,
        )
        assert len(node["children"]) == len(p.children)
        for child, child_node in zip(p.children, node["children"], strict=True):
            same(child, child_node)

    same(progress, doc["root"])


def _keys(node: dict[str, Any], found: dict[str, set[frozenset[str]]]) -> None:
    found.setdefault(node["kind"], set()).add(frozenset(node))
    for child in node["children"]:
        _keys(child, found)


def test_the_keys_of_a_kind_are_always_the_same() -> None:
    found: dict[str, set[frozenset[str]]] = {}
    for _, progress in CASES:
        _keys(progress.to_json()["root"], found)
    for form in DRAFTS.values():
        _keys(progress_of(form).to_json()["root"], found)
    assert {kind for kind, shapes in found.items() if len(shapes) != 1} == set()
    assert len(found) == 20  # every kind of node, the labelled children included


def test_the_frontier_is_what_the_engine_awaits() -> None:
    parallel = (
        WIO.parallel(lambda s: s, input=Order)
        .branch(Orders.take_payment, incorporate=lambda i, b: b)
        .branch(Tickets.definition.map_input(lambda o: Ticket("x")), incorporate=lambda i, b: i)
        .output(lambda o, outs: o)
    )
    ex = Execution.start(parallel, Order("a", 1))
    signals = {p.signal_id for p in ex.progress().frontier() if isinstance(p, SignalProgress)}
    assert signals == {s.id for s in ex.expected_signals()} == {"order.pay", "ticket.close"}


class Opaque:
    def __repr__(self) -> str:
        return "<opaque>"


def test_a_result_that_does_not_encode_is_shown_as_its_repr() -> None:
    done = run(WIO.pure(lambda s: Opaque()).named("Make"))
    assert done.progress().to_json()["root"]["result"] == {"ok": "<opaque>", "type": "Opaque"}


def test_a_failure_names_its_error_in_json() -> None:
    failed = KINDS["run_io"]()["failed"]
    assert failed.to_json()["root"]["result"] == {
        "err": {"limit": 10},
        "type": "TooBig",
        "error": "Too Big",
    }


def test_a_parked_mark_goes_to_the_document_and_the_text() -> None:
    parked = ParkedMark("ConnectionError: down", T0)
    p = SequenceProgress(steps=(RunIOProgress(name="Call", waiting=True),), parked=parked)
    doc = p.to_json()
    assert doc["parked"] == {"reason": "ConnectionError: down", "at": T0.isoformat()}
    assert doc["terminated"] is None
    assert render.text(p).splitlines()[0] == f"parked since {T0.isoformat()}: ConnectionError: down"


# -- drafts are drawn like the real definitions they sketch --------------------------------------


@dataclass(frozen=True)
class PR:
    commit: str


@dataclass(frozen=True)
class Happened:
    what: str


@dataclass(frozen=True)
class Ask:
    commit: str


create = SignalDef("pr.create", request=Ask)
review = SignalDef("pr.review", request=Ask)


def _signal(sig: SignalDef[Ask, None]) -> WIO[PR, Any, PR]:
    return (
        WIO.handle_signal(sig, input=PR)
        .purely(lambda s, r: Happened("x"), event=Happened)
        .handle_event(lambda s, e: s)
        .void_response()
    )


def _step() -> WIO[PR, Any, PR]:
    return WIO.run_io(PR, lambda s: Happened("x"), event=Happened).handle_event(lambda s, e: s)


class RealPullRequest(Workflow[PR, Happened]):
    create_pr = _signal(create)
    run_pipeline = _step()
    process_review = _signal(review)
    merge_pr = _step()
    close_pr = WIO.run_io(Caught[PR, Any], lambda c: Happened("x"), event=Happened).handle_event(
        lambda c, e: c.state
    )
    definition = (create_pr >> run_pipeline >> process_review >> merge_pr).handle_error_with(
        close_pr
    )


def test_a_draft_has_the_kinds_and_names_of_its_real_definition() -> None:
    def shape(p: StepProgress) -> list[tuple[type[StepProgress], str | None]]:
        return [(type(node), node.name) for node in p.walk()]

    sketch = progress_of(PullRequestDraft.definition)
    real = progress_of(RealPullRequest)
    assert shape(sketch) == shape(real)
    assert all(node.draft for node in sketch.walk() if not node.children)
    assert not any(node.draft for node in real.walk())
    assert draft.progress(PullRequestDraft.definition) == sketch


# -- a stateful retry counts its failed attempts -----------------------------------------------


@dataclass(frozen=True)
class Count:
    n: int


@dataclass(frozen=True)
class Tried:
    attempt: int


@dataclass(frozen=True)
class Worked:
    pass


def on_error(failure: RetryFailure[Count, int]) -> Tried:
    return Tried(failure.state + 1)


def on_tried(c: Count, e: Tried, state: int) -> RetryAgain[int] | Ok[Count] | Err[str]:
    return Err("gave up") if e.attempt >= 3 else RetryAgain(e.attempt, T0)


class Charging(Workflow[Count, Tried | Worked]):
    charge = WIO.run_io(Count, lambda c: Worked(), event=Worked).handle_event(lambda c, e: c)
    definition = charge.retry_stateful(initial=0, on_error=on_error, handle_event=on_tried)


def test_a_stateful_retry_counts_its_failed_attempts_and_a_snapshot_keeps_them() -> None:
    ex = run(Charging.definition, Tried(1), Tried(2), initial=Count(0))
    p = ex.progress()
    assert isinstance(p, RetryProgress)
    assert (p.policy, p.failed_attempts, p.state, p.not_before) == ("stateful", 2, 2, T0)
    restored = decode_execution(encode_execution(ex, Charging), Charging, Count(0))
    assert restored.progress() == p
    gave_up = ex.apply_event(Tried(3))
    assert gave_up is not None
    final = gave_up.progress()
    assert isinstance(final, RetryProgress)
    assert (final.failed_attempts, final.result) == (3, Err("gave up"))


def test_a_snapshot_of_a_stateful_retry_without_its_count_is_not_used() -> None:
    from workflows4py.engine import SnapshotRefused

    ex = run(Charging.definition, Tried(1), initial=Count(0))
    body = json.loads(encode_execution(ex, Charging))
    del body["tree"]["a"]  # as written before retries counted their attempts
    with pytest.raises(SnapshotRefused, match="failed attempts"):
        decode_execution(json.dumps(body), Charging, Count(0))


def test_a_stateless_retry_counts_nothing() -> None:
    p = progress_of(
        WIO.run_io(Count, lambda c: Worked(), event=Worked)
        .handle_event(lambda c, e: c)
        .retry(timedelta(1))
    )
    assert isinstance(p, RetryProgress)
    assert (p.policy, p.failed_attempts, p.state) == ("stateless", None, None)


def test_termination_in_the_engine_empties_the_frontier() -> None:
    ex = run(Orders.definition, initial=Order("a", 1))
    stopped = ex.apply_event(Terminated("stop", T0))
    assert stopped is not None
    assert stopped.progress().frontier() == ()
    assert [p.name for p in ex.progress().frontier()] == ["Take Payment"]
