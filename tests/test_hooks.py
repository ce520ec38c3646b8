"""Observers and log context, from the user's side: the hook sequence of a whole pull
request, effects that fail, rejected signals, parking, termination, wakeups run by a
worker, and log records naming the instance and the step."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest
from lifecycle_common import FAILURES, T0, Factory, Flaky, Order, Orders, Pay, pay

from workflows4py import (
    InMemoryRuntime,
    LogContextFilter,
    Observer,
    Operation,
    StepContext,
    Worker,
    current_step,
)
from workflows4py.examples import pull_request as pr
from workflows4py.testing import TestClock

pytest_plugins = ("lifecycle_common",)  # the fixtures make and runtime


class Recorder(Observer):
    """Writes down every call, as ``(hook, operation kind, detail)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, object]] = []

    def _note(self, hook: str, op: Operation, detail: object = None) -> None:
        self.calls.append((hook, op.kind, detail))

    def operation_started(self, op: Operation) -> None:
        self._note("operation_started", op, op.instance_id)

    def lease_acquired(self, op: Operation, waited: float) -> None:
        assert 0 <= waited < 5
        self._note("lease_acquired", op)

    def operation_ended(self, op: Operation, error: BaseException | None) -> None:
        self._note("operation_ended", op, None if error is None else type(error).__name__)

    def effect_started(self, op: Operation, step: str) -> None:
        self._note("effect_started", op, step)

    def effect_ended(self, op: Operation, step: str, seconds: float) -> None:
        assert seconds >= 0
        self._note("effect_ended", op, step)

    def effect_failed(self, op: Operation, step: str, error: Exception, seconds: float) -> None:
        self._note("effect_failed", op, (step, str(error)))

    def event_recorded(self, op: Operation, sequence: int, event_type: str, step: str) -> None:
        self._note("event_recorded", op, (sequence, event_type))

    def signal_delivered(self, op: Operation, signal_id: str) -> None:
        self._note("signal_delivered", op, signal_id)

    def signal_rejected(self, op: Operation, signal_id: str, reason: str) -> None:
        self._note("signal_rejected", op, signal_id)

    def wakeup_fired(self, op: Operation) -> None:
        self._note("wakeup_fired", op, op.instance_id)

    def instance_finished(self, op: Operation, status: Literal["finished", "failed"]) -> None:
        self._note("instance_finished", op, status)

    def instance_parked(self, op: Operation, error: str) -> None:
        self._note("instance_parked", op, "2 failed attempts" in error)

    def instance_terminated(self, op: Operation, reason: str) -> None:
        self._note("instance_terminated", op, reason)


async def test_the_hooks_of_a_whole_pull_request() -> None:
    recorder = Recorder()
    runtime = InMemoryRuntime(pr.PullRequest, initial_state=pr.Empty(), observers=[recorder])
    instance = await runtime.create_instance("pr-1")
    await instance.deliver_signal(pr.create_pr_signal, pr.CreateRequest("abc"))
    # delivered again: answered from the recorded event, nothing recorded
    await instance.deliver_signal(pr.create_pr_signal, pr.CreateRequest("abc"))
    await instance.deliver_signal(pr.review_pr_signal, pr.ReviewRequest(True))
    assert recorder.calls == [
        ("operation_started", "create", "pr-1"),
        ("lease_acquired", "create", None),
        ("operation_ended", "create", None),
        ("operation_started", "signal", "pr-1"),
        ("lease_acquired", "signal", None),
        ("signal_delivered", "signal", "create-pr"),
        ("event_recorded", "signal", (1, "Created")),
        ("effect_started", "signal", "Run Pipeline"),
        ("effect_ended", "signal", "Run Pipeline"),
        ("event_recorded", "signal", (2, "PipelineFinished")),
        ("operation_ended", "signal", None),
        ("operation_started", "signal", "pr-1"),
        ("lease_acquired", "signal", None),
        ("signal_delivered", "signal", "create-pr"),
        ("operation_ended", "signal", None),
        ("operation_started", "signal", "pr-1"),
        ("lease_acquired", "signal", None),
        ("signal_delivered", "signal", "review-pr"),
        ("event_recorded", "signal", (3, "ReviewSubmitted")),
        ("instance_finished", "signal", "finished"),
        ("operation_ended", "signal", None),
    ]


async def test_failures_parking_and_wakeups_are_told(make: Factory) -> None:
    recorder = Recorder()
    clock = TestClock(T0)
    FAILURES[:] = ["down", "still down"]
    async with make(clock, max_attempts=2, observers=[recorder]) as runtime:
        with pytest.raises(RuntimeError):
            await runtime.start(Flaky, "f-1")
        clock.advance(timedelta(hours=1))
        await Worker(runtime).run_once()
    assert [c for c in recorder.calls if c[0] != "event_recorded"] == [
        ("operation_started", "start", "f-1"),
        ("lease_acquired", "start", None),
        ("effect_started", "start", "Do Work"),
        ("effect_failed", "start", ("Do Work", "down")),
        ("operation_ended", "start", "RuntimeError"),
        ("operation_started", "due", "f-1"),
        ("wakeup_fired", "due", "f-1"),
        ("lease_acquired", "due", None),
        ("effect_started", "due", "Do Work"),
        ("effect_failed", "due", ("Do Work", "still down")),
        ("instance_parked", "due", True),
        ("operation_ended", "due", "RuntimeError"),
    ]


async def test_termination_is_told(make: Factory) -> None:
    recorder = Recorder()
    async with make(TestClock(T0), observers=[recorder]) as runtime:
        order = await runtime.start(Orders, "o-1", initial_state=Order("pen", 1))
        recorder.calls.clear()
        await runtime.terminate(Orders, "o-1", "customer left")
        await order.deliver_signal(pay, Pay(1))
    assert ("instance_terminated", "terminate", "customer left") in recorder.calls
    assert ("signal_rejected", "signal", "order.pay") in recorder.calls


class Broken(Observer):
    def operation_started(self, op: Operation) -> None:
        raise RuntimeError("observer bug")


async def test_an_observer_that_raises_breaks_nothing(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder()
    runtime = InMemoryRuntime(
        pr.PullRequest, initial_state=pr.Empty(), observers=[Broken(), recorder]
    )
    instance = await runtime.create_instance("pr-1")
    assert await instance.status() == "awaiting"
    assert recorder.calls[0] == ("operation_started", "create", "pr-1")
    assert "observer bug" in caplog.text or "failed in operation_started" in caplog.text


def test_observers_must_be_observers() -> None:
    with pytest.raises(TypeError, match="Observer instances"):
        InMemoryRuntime(pr.PullRequest, initial_state=pr.Empty(), observers=[object()])  # type: ignore[list-item]


async def test_log_records_name_the_workflow_the_instance_and_the_step() -> None:
    seen: list[tuple[object, ...]] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            names = ("workflow", "instance_id", "operation", "step")
            seen.append((record.getMessage(), *(getattr(record, n) for n in names)))

    handler = Keep()
    handler.addFilter(LogContextFilter())
    app = logging.getLogger("my_app")
    app.addHandler(handler)
    app.setLevel(logging.INFO)
    library = logging.getLogger("workflows4py")
    library.addHandler(handler)
    contexts: list[StepContext] = []
    original = pr.CI.run

    async def noisy(commit: str) -> str:
        contexts.append(current_step())
        app.info("running CI for %s", commit)
        return await original(commit)

    pr.CI.run = noisy  # type: ignore[method-assign]
    try:
        runtime = InMemoryRuntime(pr.PullRequest, initial_state=pr.Empty())
        instance = await runtime.create_instance("pr-7")
        await instance.deliver_signal(pr.create_pr_signal, pr.CreateRequest("abc"))
        app.info("outside")
    finally:
        pr.CI.run = original  # type: ignore[method-assign]
        app.removeHandler(handler)
        library.removeHandler(handler)
    assert ("running CI for abc", "PullRequest", "pr-7", "signal", "Run Pipeline") in seen
    assert ("outside", None, None, None, None) in seen
    assert contexts[0].step == "Run Pipeline"


async def test_the_library_prints_nothing_unless_logging_is_configured(
    capsys: pytest.CaptureFixture[str],
) -> None:
    FAILURES[:] = ["down"]
    runtime = InMemoryRuntime(Flaky, clock=TestClock(datetime(2024, 1, 1, tzinfo=UTC)))
    with pytest.raises(RuntimeError):
        await runtime.start("f-2")
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "")
    assert any(
        isinstance(h, logging.NullHandler) for h in logging.getLogger("workflows4py").handlers
    )
