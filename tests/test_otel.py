"""OpenTelemetry from the user's side: the spans and metrics of a pull request, of failing
and parked instances and of rejected signals, read from the SDK's in-memory exporters, on
the memory store, SQLite and PostgreSQL; the span tree docs/opentelemetry.md shows."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from claims_common import Counted, Poke, St, poke, poked
from lifecycle_common import (
    FAILURES,
    T0,
    Close,
    Factory,
    Flaky,
    Order,
    Orders,
    Pay,
    Tickets,
    close,
    pay,
)
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from pg import fresh_schema, require_postgres

from workflows4py import WIO, InMemoryRuntime, InstanceClosed, Runtime, Worker, Workflow
from workflows4py.contrib.otel import OpenTelemetryObserver
from workflows4py.examples import pull_request as pr
from workflows4py.testing import TestClock

pytest_plugins = ("lifecycle_common",)  # the fixtures make and runtime

DOC = Path(__file__).resolve().parents[1] / "docs" / "opentelemetry.md"


class Telemetry:
    """An SDK tracer provider and meter provider over in-memory exporters."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.observer = OpenTelemetryObserver(self.tracer_provider, self.meter_provider)

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        """(attributes, value) of each point of metric ``name``: a sum's or gauge's value,
        a histogram's count."""
        data = self.reader.get_metrics_data()
        assert data is not None
        found: list[tuple[dict[str, Any], Any]] = []
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        for point in metric.data.data_points:
                            count = (
                                point.value
                                if isinstance(point, NumberDataPoint)
                                else point.count  # a histogram's point: how many values
                            )
                            found.append((dict(point.attributes or {}), count))
        return found


@pytest.fixture
def telemetry() -> Telemetry:
    return Telemetry()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def pr_runtime(
    store_kind: str, tmp_path: Path, telemetry: Telemetry
) -> AsyncIterator[Runtime]:
    options: dict[str, Any] = {
        "initial_states": {pr.PullRequest: pr.Empty()},
        "observers": [telemetry.observer],
        "clock": TestClock(T0),
    }
    if store_kind == "memory":
        async with Runtime.memory([pr.PullRequest], **options) as runtime:
            yield runtime
    elif store_kind == "sqlite":
        async with Runtime.sqlite(tmp_path / "otel.db", [pr.PullRequest], **options) as runtime:
            yield runtime
    else:
        conninfo = require_postgres()
        with fresh_schema(conninfo) as schema:
            async with Runtime.postgres(
                conninfo, [pr.PullRequest], schema=schema, **options
            ) as runtime:
                yield runtime


def span_tree(spans: list[ReadableSpan]) -> str:
    """The spans as an indented tree, children under their parent in start order, each with
    its outcome and sequence attributes."""
    children: dict[int | None, list[ReadableSpan]] = {}
    ids = {s.context.span_id for s in spans if s.context is not None}
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        parent = span.parent.span_id if span.parent is not None else None
        children.setdefault(parent if parent in ids else None, []).append(span)
    lines: list[str] = []

    def walk(parent: int | None, depth: int) -> None:
        for span in children.get(parent, []):
            a = span.attributes or {}
            shown = [f"outcome={a.get('workflows4py.outcome')}"]
            for key in ("sequence", "sequence.first", "sequence.last"):
                if f"workflows4py.{key}" in a:
                    shown.append(f"{key}={a[f'workflows4py.{key}']!r}")
            lines.append(f"{'  ' * depth}{span.name}  [{', '.join(shown)}]")
            assert span.context is not None
            walk(span.context.span_id, depth + 1)

    walk(None, 0)
    return "\n".join(lines)


async def run_pull_request(runtime: Runtime) -> None:
    """The pull request of docs/opentelemetry.md: created, checked by CI, approved."""
    instance = await runtime.start(pr.PullRequest, "pr-1")
    await instance.deliver_signal(pr.create_pr_signal, pr.CreateRequest("abc"))
    await instance.deliver_signal(pr.review_pr_signal, pr.ReviewRequest(True))


def documented_tree() -> str:
    found = re.search(r"<!-- span tree -->\n```text\n(.*?)```", DOC.read_text(), re.S)
    assert found, "docs/opentelemetry.md has no span tree"
    return found.group(1).rstrip("\n")


async def test_the_span_tree_of_a_pull_request(pr_runtime: Runtime, telemetry: Telemetry) -> None:
    await run_pull_request(pr_runtime)
    tree = span_tree(telemetry.finished())
    print(tree)  # the tree docs/opentelemetry.md shows
    assert tree == documented_tree()
    assert tree.splitlines()[0].startswith("workflows4py start PullRequest")


async def test_spans_carry_the_workflow_the_instance_and_the_step(
    pr_runtime: Runtime, telemetry: Telemetry
) -> None:
    await run_pull_request(pr_runtime)
    spans = {s.name: s for s in telemetry.finished()}
    effect = spans["workflows4py effect Run Pipeline"]
    assert effect.attributes is not None
    assert effect.attributes["workflows4py.workflow"] == "PullRequest"
    assert effect.attributes["workflows4py.instance_id"] == "pr-1"
    assert effect.attributes["workflows4py.step"] == "Run Pipeline"
    review = spans["workflows4py signal review-pr"]
    assert review.attributes is not None
    assert review.attributes["workflows4py.signal"] == "review-pr"
    events = [
        dict(e.attributes or {})
        for s in telemetry.finished()
        for e in s.events
        if e.name == "workflows4py.event"
    ]
    assert [(e["workflows4py.sequence"], e["workflows4py.event_type"]) for e in events] == [
        (2, "Created"),
        (3, "PipelineFinished"),
        (4, "ReviewSubmitted"),
    ]
    steps = {a["workflows4py.step"]: v for a, v in telemetry.points("workflows4py.steps")}
    assert steps["Run Pipeline"] == 1
    durations = telemetry.points("workflows4py.effect.duration")
    assert [(a["workflows4py.step"], a["outcome"], n) for a, n in durations] == [
        ("Run Pipeline", "ok", 1)
    ]


async def test_an_application_span_is_the_parent_of_the_operation(
    pr_runtime: Runtime, telemetry: Telemetry
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("my-app")
    with tracer.start_as_current_span("handle request") as outer:
        await pr_runtime.start(pr.PullRequest, "pr-9")
    spans = {s.name: s for s in telemetry.finished()}
    start = spans["workflows4py start PullRequest"]
    assert start.parent is not None
    assert start.parent.span_id == outer.get_span_context().span_id
    assert trace.get_current_span() is trace.INVALID_SPAN  # nothing left attached


async def test_failed_effects_and_parking_are_errors_and_counted(
    make: Factory, telemetry: Telemetry
) -> None:
    clock = TestClock(T0)
    FAILURES[:] = ["down", "still down"]
    async with make(clock, max_attempts=2, observers=[telemetry.observer]) as runtime:
        with pytest.raises(RuntimeError):
            await runtime.start(Flaky, "f-1")
        clock.advance(timedelta(hours=1))
        await Worker(runtime).run_once()
        await telemetry.observer.sample(runtime)
    spans = telemetry.finished()
    effects = [s for s in spans if s.name == "workflows4py effect Do Work"]
    assert [s.status.status_code for s in effects] == [StatusCode.ERROR, StatusCode.ERROR]
    assert [s.events[0].name for s in effects] == ["exception", "exception"]
    due = next(s for s in spans if s.name == "workflows4py due flaky")
    assert due.attributes is not None
    assert due.attributes["workflows4py.outcome"] == "parked"
    assert next(e.name for e in due.events) == "workflows4py.wakeup"
    failures = {
        a["kind"]: v
        for a, v in telemetry.points("workflows4py.failures")
        if a.get("workflows4py.workflow") == "flaky"
    }
    assert failures == {"effect": 2, "operation": 2, "parked": 1}
    parked = {
        a["workflows4py.workflow"]: v for a, v in telemetry.points("workflows4py.instances.parked")
    }
    assert parked == {"orders": 0, "tickets": 0, "flaky": 1}


async def test_due_wakeups_are_sampled_and_rejected_signals_have_a_span(
    make: Factory, telemetry: Telemetry
) -> None:
    clock = TestClock(T0)
    async with make(clock, observers=[telemetry.observer]) as runtime:
        order = await runtime.start(Orders, "o-1", initial_state=Order("pen", 1))
        await order.deliver_signal(pay, Pay(3))  # then the timer "Ship Later" waits a day
        await order.deliver_signal(pr.review_pr_signal, pr.ReviewRequest(True))
        await telemetry.observer.sample(runtime)
        before = {
            a["workflows4py.workflow"]: v for a, v in telemetry.points("workflows4py.wakeups.due")
        }
        clock.advance(timedelta(days=2))
        await telemetry.observer.sample(runtime)
        after = {
            a["workflows4py.workflow"]: v for a, v in telemetry.points("workflows4py.wakeups.due")
        }
    assert before["orders"] == 0
    assert after["orders"] == 1
    rejected = [s for s in telemetry.finished() if s.name == "workflows4py signal review-pr"]
    assert len(rejected) == 1
    assert rejected[0].attributes is not None
    assert rejected[0].attributes["workflows4py.outcome"] == "rejected"


def test_the_global_providers_are_used_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    original = trace.get_tracer

    def spy(*args: Any, **kwargs: Any) -> trace.Tracer:
        seen.append(repr(kwargs.get("tracer_provider")))
        return original(*args, **kwargs)

    monkeypatch.setattr(trace, "get_tracer", spy)
    OpenTelemetryObserver()
    assert seen == ["None"]  # the API's global provider, none installed by us
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)


def _outcomes(spans: list[ReadableSpan]) -> list[tuple[str, object]]:
    return [(s.name, (s.attributes or {}).get("workflows4py.outcome")) for s in spans]


async def test_outcomes_of_signals_and_operations(make: Factory, telemetry: Telemetry) -> None:
    async with make(TestClock(T0), observers=[telemetry.observer]) as runtime:
        ticket = await runtime.start(Tickets, "t-1")
        with pytest.raises(ValueError, match="a reason is needed"):
            await ticket.deliver_signal(close, Close(""))
        order = await runtime.start(Orders, "o-1", initial_state=Order("pen", 1))
        await order.deliver_signal(pay, Pay(3))
        await order.deliver_signal(pay, Pay(3))  # answered again from its recorded event
        await runtime.terminate(Orders, "o-1", "customer left")
    outcomes = _outcomes(telemetry.finished())
    assert ("workflows4py signal ticket.close", "error") in outcomes
    assert ("workflows4py signal tickets", "error") in outcomes
    assert [o for n, o in outcomes if n == "workflows4py signal order.pay"] == [
        "handled",
        "redelivered",
    ]
    assert ("workflows4py terminate orders", "terminated") in outcomes


async def test_a_domain_error_is_a_failed_instance(telemetry: Telemetry) -> None:
    class Refusing(Workflow[St, Counted]):
        definition = poked(lambda s: Counted(1)) >> WIO.fail("refused")

    runtime = InMemoryRuntime(Refusing, initial_state=St(), observers=[telemetry.observer])
    instance = await runtime.create_instance("r-1")
    await instance.deliver_signal(poke, Poke())
    assert await instance.status() == "failed"
    assert _outcomes(telemetry.finished())[-1] == ("workflows4py signal Refusing", "failed")
    failures = {a["kind"]: v for a, v in telemetry.points("workflows4py.failures")}
    assert failures == {"instance": 1}


async def test_a_span_opened_inside_an_effect_nests_under_it(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("my-app")
    original = pr.CI.run

    async def traced(commit: str) -> str:
        with tracer.start_as_current_span("call the CI server"):
            return await original(commit)

    monkeypatch.setattr(pr.CI, "run", traced)
    runtime = InMemoryRuntime(
        pr.PullRequest, initial_state=pr.Empty(), observers=[telemetry.observer]
    )
    instance = await runtime.create_instance("pr-5")
    await instance.deliver_signal(pr.create_pr_signal, pr.CreateRequest("abc"))
    spans = {s.name: s for s in telemetry.finished()}
    inner, effect = spans["call the CI server"], spans["workflows4py effect Run Pipeline"]
    assert inner.parent is not None
    assert effect.context is not None
    assert inner.parent.span_id == effect.context.span_id


@dataclass(frozen=True)
class Slow:
    done: bool = False


@dataclass(frozen=True)
class Slept:
    pass


async def sleep_a_while(state: Slow) -> Slept:
    await asyncio.sleep(0.3)
    return Slept()


class Sleeper(Workflow[Slow, Slept]):
    id = "sleeper"
    initial_state = Slow()
    definition = WIO.run_io(Slow, sleep_a_while).handle_event(lambda s, e: Slow(done=True))


async def test_an_operation_behind_another_records_its_lease_wait(telemetry: Telemetry) -> None:
    async with Runtime.memory([Sleeper], observers=[telemetry.observer]) as runtime:
        started = asyncio.ensure_future(runtime.start(Sleeper, "s-1"))
        await asyncio.sleep(0.05)  # the start holds the instance, its effect sleeping
        with pytest.raises(InstanceClosed, match="it is finished"):  # once it has the lease
            await runtime.terminate(Sleeper, "s-1", "too slow")
        await started
    data = telemetry.reader.get_metrics_data()
    assert data is not None
    waits = {
        point.attributes["workflows4py.operation"]: point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "workflows4py.lease.wait"
        for point in metric.data.data_points
        if isinstance(point, HistogramDataPoint) and point.attributes
    }
    assert set(waits) == {"start", "terminate"}
    assert waits["start"].max < 0.1  # it took the lease as it created the instance
    assert waits["terminate"].min >= 0.2  # it waited for the start's effect to end
