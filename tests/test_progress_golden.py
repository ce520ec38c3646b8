"""Golden files of the progress model: for every node kind and every draft form, the text tree
(``render.text``) and the JSON document (``to_json``) of its definition and of runs of it,
and of the withdrawal example at every point of its journal (an approved, an interrupted
and a failed run).

The files are under ``tests/golden/progress/``. After a deliberate change of the model or
of its renderings, regenerate them with ``UPDATE_GOLDEN=1 .venv/bin/python -m pytest
tests/test_progress_golden.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from workflows4py import (
    WIO,
    Caught,
    Err,
    Ok,
    Result,
    RetryAgain,
    RetryFailure,
    SignalDef,
    StepProgress,
    Terminated,
    draft,
    progress_of,
    render,
)
from workflows4py.engine import Execution, Record
from workflows4py.examples import checks
from workflows4py.examples import withdrawal as wd
from workflows4py.runtime import Runtime
from workflows4py.testing import TestClock

GOLDEN = Path(__file__).parent / "golden" / "progress"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def check_golden(name: str, text: str) -> None:
    """``text`` is the content of ``tests/golden/progress/<name>`` (written when updating)."""
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with UPDATE_GOLDEN=1 to write it"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


def as_json(progress: StepProgress) -> str:
    return json.dumps(progress.to_json(), indent=2, ensure_ascii=False) + "\n"


# -- a small domain -----------------------------------------------------------------------------


@dataclass(frozen=True)
class St:
    value: int
    log: tuple[str, ...] = ()


@dataclass(frozen=True)
class Done:
    what: str
    amount: int = 1


@dataclass(frozen=True)
class Poked:
    what: str
    amount: int = 1


@dataclass(frozen=True)
class Stopped:
    what: str
    amount: int = 0


@dataclass(frozen=True)
class Keyed:
    key: str
    event: Done | Poked


@dataclass(frozen=True)
class Snap:
    value: int


@dataclass(frozen=True)
class Failed:
    attempt: int
    retry_at: datetime


@dataclass(frozen=True)
class Poke:
    amount: int


@dataclass(frozen=True)
class TooBig:
    limit: int


@dataclass(frozen=True)
class GaveUp:
    attempts: int


poke = SignalDef("poke", request=Poke)
ask = SignalDef("ask", request=Poke, response=St)
cancel = SignalDef("cancel", request=Poke)


def record(s: St, e: Done | Poked | Stopped) -> St:
    return St(s.value + e.amount, (*s.log, e.what))


def step(name: str) -> WIO[St, Any, St]:
    return WIO.run_io(St, lambda s: Done(name), event=Done).handle_event(record).named(name)


def checked(s: St, e: Done) -> Result[St, TooBig]:
    return Err(TooBig(10)) if s.value + e.amount > 10 else Ok(record(s, e))


def limited(name: str) -> WIO[St, TooBig, St]:
    return (
        WIO.run_io(St, lambda s: Done(name), event=Done)
        .handle_event_with_error(checked)
        .named(name)
    )


def signal(name: str) -> WIO[St, Any, St]:
    return (
        WIO.handle_signal(poke, input=St)
        .purely(lambda s, r: Poked(name, r.amount), event=Poked)
        .handle_event(record)
        .void_response()
        .named(name)
    )


def stop(name: str) -> WIO[St, Any, St]:
    return (
        WIO.handle_signal(cancel, input=St)
        .purely(lambda s, r: Stopped(name, r.amount), event=Stopped)
        .handle_event(record)
        .void_response()
        .named(name)
    )


def note(what: str) -> WIO[St, Any, St]:
    return WIO.pure(St, lambda s: St(s.value, (*s.log, what))).named(what.title())


def run(definition: WIO[Any, Any, Any], *events: Any, initial: Any = None) -> Execution:
    """``definition`` started from ``St(0)`` (or ``initial``) after ``events``; an instant
    among them records what the engine has due then (a timer's start or release, a
    checkpoint)."""
    ex = Execution.start(definition, St(0) if initial is None else initial)
    for item in events:
        event = item
        if isinstance(item, datetime):
            action = ex.next_action(item)
            assert isinstance(action, Record), action
            event = action.event
        nxt = ex.apply_event(event)
        assert nxt is not None, f"{event!r} refused"
        ex = nxt
    return ex


# -- one case per node kind: the definition, then runs of it ------------------------------------


def sequence_cases() -> dict[str, StepProgress]:
    flow = note("start") >> step("First") >> (signal("Second") >> step("Third"))
    return {
        "definition": progress_of(flow),
        "started": run(flow).progress(),
        "waiting for a signal": run(flow, Done("First")).progress(),
        "finished": run(flow, Done("First"), Poked("Second", 5), Done("Third")).progress(),
    }


def pure_cases() -> dict[str, StepProgress]:
    refuse = WIO.pure_with_error(St, lambda s: Err(TooBig(s.value)) if s.value else Ok(s))
    flow = WIO.pure(St, lambda s: s) >> refuse.named("Refuse Big") >> WIO.fail(TooBig(0))
    return {"definition": progress_of(flow), "failed": run(flow).progress()}


def run_io_cases() -> dict[str, StepProgress]:
    flow = limited("Charge")
    return {
        "definition": progress_of(flow),
        "due": run(flow).progress(),
        "done": run(flow, Done("Charge", 3)).progress(),
        "failed": run(flow, Done("Charge", 30)).progress(),
    }


def signal_cases() -> dict[str, StepProgress]:
    answered = (
        WIO.handle_signal(ask, input=St)
        .purely(lambda s, r: Poked("asked", r.amount), event=Poked)
        .handle_event(record)
        .produce_response(lambda s, e, r: record(s, e))
    )
    flow = answered >> stop("Cancelled")
    return {
        "definition": progress_of(flow),
        "waiting": run(flow).progress(),
        "second": run(flow, Poked("asked", 2)).progress(),
        "both": run(flow, Poked("asked", 2), Stopped("Cancelled")).progress(),
    }


def dynamic_cases() -> dict[str, StepProgress]:
    flow = step("Measure").flat_map(lambda s: step("Big") if s.value > 1 else step("Small"))
    return {
        "definition": progress_of(flow),
        "before the choice": run(flow).progress(),
        "chosen": run(flow, Done("Measure", 1)).progress(),
        "finished": run(flow, Done("Measure", 1), Done("Small")).progress(),
    }


def handle_error_cases() -> dict[str, StepProgress]:
    def give_up(c: Caught[St, TooBig]) -> St:
        return St(-c.error.limit, (*c.state.log, "gave up"))

    flow = (step("Prepare") >> limited("Charge")).handle_error_with(
        WIO.pure(give_up).named("Give Up")
    )
    return {
        "definition": progress_of(flow),
        "ok": run(flow, Done("Prepare"), Done("Charge")).progress(),
        "handled": run(flow, Done("Prepare"), Done("Charge", 30)).progress(),
    }


def end_cases() -> dict[str, StepProgress]:
    flow = step("Open") >> WIO.end()
    return {"definition": progress_of(flow), "reached": run(flow, Done("Open")).progress()}


def timer_cases() -> dict[str, StepProgress]:
    flow = WIO.timer(timedelta(hours=24), input=St, name="Cool Off") >> WIO.timer(
        lambda s: T0 + timedelta(days=2), input=St
    )
    return {
        "definition": progress_of(flow),
        "to start": run(flow).progress(),
        "started": run(flow, T0).progress(),
        "released": run(flow, T0, T0 + timedelta(hours=25)).progress(),
    }


def fork_cases() -> dict[str, StepProgress]:
    flow = (
        WIO.fork(St, name="How big?")
        .when(lambda s: s.value > 10, step("Board"), name="Big")
        .when_some(lambda s: St(s.value * 2) if s.value else None, signal("Manager"), name="Some")
        .otherwise(note("auto"), name="Small")
    )
    return {
        "definition": progress_of(flow),
        "small": run(flow).progress(),
        "some": run(flow, initial=St(3)).progress(),
        "big": run(flow, Done("Board"), initial=St(20)).progress(),
        "some answered": run(flow, Poked("Manager"), initial=St(3)).progress(),
    }


def loop_cases() -> dict[str, StepProgress]:
    flow = WIO.repeat(signal("Quote")).until(
        lambda s: s.value >= 3,
        name="Three quotes?",
        restart="Not yet",
        on_restart=step("Remind"),
    )
    plain = WIO.repeat(step("Count")).until(lambda s: s.value >= 2, name="Two?")
    return {
        "definition": progress_of(flow),
        "first round": run(flow).progress(),
        "restarting": run(flow, Poked("Quote")).progress(),
        "second round": run(flow, Poked("Quote"), Done("Remind")).progress(),
        "ended": run(flow, Poked("Quote"), Done("Remind"), Poked("Quote", 2)).progress(),
        "without restart step": run(plain, Done("Count")).progress(),
    }


def parallel_cases() -> dict[str, StepProgress]:
    flow = (
        WIO.parallel(lambda s: s, input=St, name="Both")
        .branch(signal("Left"), incorporate=lambda i, b: b)
        .branch(step("Right") >> stop("Late"), incorporate=lambda i, b: b)
        .output(lambda s, outs: St(sum(o.value for o in outs)))
    )
    return {
        "definition": progress_of(flow),
        "running": run(flow, Done("Right")).progress(),
        "joined": run(flow, Done("Right"), Stopped("Late"), Poked("Left")).progress(),
    }


def unwrap(e: Any) -> tuple[str, Any] | None:
    return (e.key, e.event) if isinstance(e, Keyed) else None


def for_each_cases() -> dict[str, StepProgress]:
    body = step("Prepare") >> signal("Approve")
    flow = WIO.for_each(
        lambda s: ["a", "b"], body.map_input(lambda k: St(0, (k,))), input=St, name="Items"
    ).build(
        wrap=Keyed,
        unwrap=unwrap,
        interim=lambda s, states: s,
        output=lambda s, outs: St(len(outs)),
    )
    started = (Keyed("a", Done("Prepare")), Keyed("b", Done("Prepare")))
    return {
        "definition": progress_of(flow),
        "running": run(flow, *started, Keyed("b", Poked("Approve"))).progress(),
        "done": run(
            flow, *started, Keyed("b", Poked("Approve")), Keyed("a", Poked("Approve"))
        ).progress(),
    }


def embedded_cases() -> dict[str, StepProgress]:
    inner = step("Inner") >> signal("Confirm")
    flow = step("Outer") >> WIO.embed(
        inner,
        input=lambda s: St(0),
        output=lambda s, i: St(s.value + i.value, s.log),
        wrap=lambda e: Keyed("inner", e),
        unwrap=lambda e: e.event if isinstance(e, Keyed) else None,
        outer=St,
        name="Sub Process",
    )
    return {
        "definition": progress_of(flow),
        "inside": run(flow, Done("Outer"), Keyed("inner", Done("Inner"))).progress(),
    }


def interruptible_cases() -> dict[str, StepProgress]:
    flow = (step("Work") >> signal("Review")).interrupt_with(
        stop("Cancel") >> note("undo") >> step("Notify")
    )
    timeout = signal("Answer").interrupt_with(
        WIO.timer(timedelta(minutes=2), input=St, name="Too Late")
    )
    return {
        "definition": progress_of(flow),
        "running": run(flow, Done("Work")).progress(),
        "interrupted": run(flow, Done("Work"), Stopped("Cancel")).progress(),
        "handled": run(flow, Done("Work"), Stopped("Cancel"), Done("Notify")).progress(),
        "completed": run(flow, Done("Work"), Poked("Review")).progress(),
        "timeout started": run(timeout, T0).progress(),
        "timed out": run(timeout, T0, T0 + timedelta(minutes=3)).progress(),
    }


def checkpoint_cases() -> dict[str, StepProgress]:
    flow = (step("Heavy") >> step("Heavier")).checkpointed(
        lambda s, out: Snap(out.value), lambda s, e: St(e.value), event=Snap
    ) >> signal("Next")
    recover: WIO[St, Any, St] = WIO.recover(lambda s, e: St(e.value), event=Snap, discards=(Done,))
    recovered = recover >> signal("Next")
    return {
        "definition": progress_of(flow),
        "to record": run(flow, Done("Heavy"), Done("Heavier")).progress(),
        "recorded": run(flow, Done("Heavy"), Done("Heavier"), T0).progress(),
        "recovery definition": progress_of(recovered),
        "recovery waiting": run(recovered).progress(),
        "recovered": run(recovered, Done("Heavy"), Snap(7)).progress(),
    }


def on_error(failure: RetryFailure[St, int]) -> Failed:
    return Failed(failure.state + 1, failure.now + timedelta(minutes=1))


def on_failed(s: St, e: Failed, attempts: int) -> RetryAgain[int] | Result[St, GaveUp]:
    return Err(GaveUp(e.attempt)) if e.attempt >= 3 else RetryAgain(e.attempt, e.retry_at)


def retry_cases() -> dict[str, StepProgress]:
    stateless = step("Call Bank").retry(timedelta(minutes=2))
    stateful = step("Charge").retry_stateful(initial=0, on_error=on_error, handle_event=on_failed)
    later = T0 + timedelta(minutes=1)
    return {
        "stateless definition": progress_of(stateless),
        "stateful definition": progress_of(stateful),
        "stateful after a failure": run(stateful, Failed(1, later)).progress(),
        "stateful gave up": run(
            stateful, Failed(1, later), Failed(2, later), Failed(3, later)
        ).progress(),
        "stateful recovered": run(stateful, Failed(1, later), Done("Charge")).progress(),
    }


def terminated_cases() -> dict[str, StepProgress]:
    flow = step("First") >> signal("Second")
    return {"terminated": run(flow, Done("First"), Terminated("duplicate", T0)).progress()}


KINDS: dict[str, Callable[[], dict[str, StepProgress]]] = {
    "sequence": sequence_cases,
    "pure": pure_cases,
    "run_io": run_io_cases,
    "signal": signal_cases,
    "dynamic": dynamic_cases,
    "handle_error": handle_error_cases,
    "end": end_cases,
    "timer": timer_cases,
    "fork": fork_cases,
    "loop": loop_cases,
    "parallel": parallel_cases,
    "for_each": for_each_cases,
    "embedded": embedded_cases,
    "interruptible": interruptible_cases,
    "checkpoint": checkpoint_cases,
    "retry": retry_cases,
    "terminated": terminated_cases,
}


# -- every draft form ---------------------------------------------------------------------------


class PullRequestDraft:
    create_pr = draft.signal()
    run_pipeline = draft.step(error="Critical Issue")
    process_review = draft.signal(error="Rejected", description="Two approvals needed")
    merge_pr = draft.step()
    close_pr = draft.step()
    definition = (create_pr >> run_pipeline >> process_review >> merge_pr).handle_error_with(
        close_pr
    )


DRAFTS: dict[str, WIO[Any, Any, Any]] = {
    "step": draft.step("Charge", error="Card Declined", description="Charge the card"),
    "signal": draft.signal("Approve", error="Denied"),
    "timer": draft.timer("Cool Off", timedelta(hours=24)) >> draft.timer("Until Due"),
    "choice": draft.choice("Approved?", {"Yes": draft.step("Pay"), "No": draft.step("Refuse")}),
    "for_each": draft.for_each(draft.signal("Review"), "Reviews"),
    "repeat": draft.repeat(
        draft.step("Run Checks"),
        condition="All done?",
        release="Done",
        restart="Again",
        on_restart=draft.timer("Await Retry", timedelta(seconds=20)),
    ),
    "parallel": draft.parallel(draft.step("Left"), draft.signal("Right"), name="Both"),
    "interruption_signal": draft.step("Work").interrupt_with(
        draft.interruption_signal("Cancel Request", "Stop", error="Cancelled") >> draft.step("Undo")
    ),
    "interruption_timeout": draft.step("Run").interrupt_with(
        draft.interruption_timeout("Execution Timeout", timedelta(minutes=2))
    ),
    "retry": draft.retry(draft.step("Call Bank")),
    "checkpoint": draft.checkpoint(draft.step("Heavy")),
    "recovery": draft.recovery("Restore"),
    "pull_request": PullRequestDraft.definition,
}


def render_cases(cases: dict[str, StepProgress]) -> tuple[str, str]:
    """The text file (each case under a heading) and the JSON file (an object by case)."""
    text = "".join(f"## {name}\n{render.text(p)}\n\n" for name, p in cases.items())
    doc = {name: p.to_json() for name, p in cases.items()}
    return text, json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("kind", KINDS)
def test_every_node_kind_renders_as_its_golden_files(kind: str) -> None:
    text, doc = render_cases(KINDS[kind]())
    check_golden(f"kind_{kind}.txt", text)
    check_golden(f"kind_{kind}.json", doc)


@pytest.mark.parametrize("form", DRAFTS)
def test_every_draft_form_renders_as_its_golden_files(form: str) -> None:
    p = progress_of(DRAFTS[form])
    assert p == draft.progress(DRAFTS[form])
    check_golden(f"draft_{form}.txt", render.text(p) + "\n")
    check_golden(f"draft_{form}.json", as_json(p))


# -- the withdrawal example, at every point of its journal --------------------------------------


async def withdrawal_history(
    name: str, service: wd.FakeWithdrawalService, *steps: Any
) -> tuple[str, str]:
    """The text tree after each journal entry of a withdrawal started with ``steps``: signal
    pairs to deliver, or a timedelta to let pass (then the due wakeups run)."""
    clock = TestClock(T0)
    workflow = wd.withdrawal_workflow(service)
    async with Runtime.memory([workflow], clock=clock) as runtime:
        request = wd.CreateWithdrawal("tx-1", Decimal(100), wd.IBAN)
        instance = await runtime.start(
            workflow,
            name,
            initial_state=wd.Empty(),
            signal=(wd.create_withdrawal_signal, request),
        )
        for item in steps:
            if isinstance(item, timedelta):
                clock.advance(item)
                await runtime.run_due_wakeups()
            else:
                await instance.deliver_signal(*item)
        journal = await instance.get_journal()
        parts = [f"# {name}\n"]
        for n in range(len(journal) + 1):
            entry = "the start" if n == 0 else f"#{n} {journal[n - 1].type}"
            progress = await instance.progress_at(n)
            parts.append(f"## after {entry}\n{render.text(progress)}\n")
        final = await instance.get_progress()
        assert final == await instance.progress_at(len(journal))
        return "\n".join(parts), as_json(final)


confirm = (wd.execution_completed_signal, wd.ConfirmExecution(wd.ExecutionStatus.SUCCEEDED))
cancel_it = (wd.cancel_signal, wd.CancelWithdrawal("operator-1", "on request"))
review = (checks.review_signal, checks.ReviewDecision(approve=True))
SCENARIOS: dict[str, tuple[wd.FakeWithdrawalService, tuple[Any, ...]]] = {
    "reviewed": (
        wd.FakeWithdrawalService(checks=[wd.AmountLimitCheck(Decimal(50))], execution_failures=1),
        (review, timedelta(minutes=3), confirm),
    ),
    "interrupted": (
        wd.FakeWithdrawalService(checks=[checks.StaticCheck("fraud", checks.CheckResult.PENDING)]),
        (cancel_it,),
    ),
    "failed": (wd.FakeWithdrawalService(execution_rejection="account closed"), ()),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_the_withdrawal_at_every_point_of_its_journal(scenario: str) -> None:
    service, steps = SCENARIOS[scenario]
    text, doc = await withdrawal_history(f"wd-{scenario}", service, *steps)
    check_golden(f"withdrawal_{scenario}.txt", text)
    check_golden(f"withdrawal_{scenario}.json", doc)
