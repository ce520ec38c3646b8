"""The OpenTelemetry observer: a span per operation, child spans per effect and signal, and
the runtime's metrics, all written through the application's providers."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Literal

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.trace import Span, Status, StatusCode, TracerProvider

from workflows4py.runtime import Observer, Operation, Runtime
from workflows4py.stores import SearchQuery

__all__ = [
    "ATTRIBUTE_EVENT_TYPE",
    "ATTRIBUTE_INSTANCE",
    "ATTRIBUTE_OPERATION",
    "ATTRIBUTE_OUTCOME",
    "ATTRIBUTE_SEQUENCE",
    "ATTRIBUTE_SEQUENCE_FIRST",
    "ATTRIBUTE_SEQUENCE_LAST",
    "ATTRIBUTE_SIGNAL",
    "ATTRIBUTE_STEP",
    "ATTRIBUTE_WORKFLOW",
    "OpenTelemetryObserver",
]

ATTRIBUTE_WORKFLOW = "workflows4py.workflow"
"""The workflow's id, on every span and metric point."""
ATTRIBUTE_INSTANCE = "workflows4py.instance_id"
"""The instance's id, on every span (never on metrics: it is unbounded)."""
ATTRIBUTE_OPERATION = "workflows4py.operation"
"""The operation's kind (``create``, ``start``, ``signal``, ``due``, ...)."""
ATTRIBUTE_STEP = "workflows4py.step"
"""The step an effect span, an event or a metric point is about."""
ATTRIBUTE_SIGNAL = "workflows4py.signal"
"""The signal's id, on a signal span."""
ATTRIBUTE_SEQUENCE = "workflows4py.sequence"
"""The journal position of the event a signal recorded, or of an event (span event)."""
ATTRIBUTE_SEQUENCE_FIRST = "workflows4py.sequence.first"
"""The first journal position an operation wrote."""
ATTRIBUTE_SEQUENCE_LAST = "workflows4py.sequence.last"
"""The last journal position an operation wrote."""
ATTRIBUTE_EVENT_TYPE = "workflows4py.event_type"
"""An event's type tag (span events ``workflows4py.event``)."""
ATTRIBUTE_OUTCOME = "workflows4py.outcome"
"""How a span's work went: see the table in docs/opentelemetry.md."""

_SPAN, _TOKEN, _EFFECT, _EFFECT_TOKEN, _SIGNAL, _OUTCOME, _FIRST, _LAST = (
    "otel.span",
    "otel.token",
    "otel.effect",
    "otel.effect_token",
    "otel.signal",
    "otel.outcome",
    "otel.first",
    "otel.last",
)


class OpenTelemetryObserver(Observer):
    """Traces and metrics of every operation of the runtimes it is given to.

    ``tracer_provider`` and ``meter_provider`` default to the application's global ones
    (``opentelemetry.trace.get_tracer_provider()``, ...); the observer never installs a
    provider of its own. An operation's span is a child of the span current where the
    operation was called, and is current itself while the operation runs (so is an
    effect's span while the effect runs), so spans your steps open nest under them.
    """

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self._tracer = trace.get_tracer("workflows4py", tracer_provider=tracer_provider)
        meter = metrics.get_meter("workflows4py", meter_provider=meter_provider)
        self._steps = meter.create_counter(
            "workflows4py.steps", unit="{step}", description="Steps completed (events recorded)"
        )
        self._effect_duration = meter.create_histogram(
            "workflows4py.effect.duration", unit="s", description="How long effects ran"
        )
        self._operation_duration = meter.create_histogram(
            "workflows4py.operation.duration",
            unit="s",
            description="How long operations took, the wait for the instance's lease included",
        )
        self._lease_wait = meter.create_histogram(
            "workflows4py.lease.wait",
            unit="s",
            description="How long operations waited for the instance's lease",
        )
        self._failures = meter.create_counter(
            "workflows4py.failures",
            unit="{failure}",
            description="Failed effects, failed operations, failed and parked instances",
        )
        self._sampled: dict[str, dict[str, int]] = {"parked": {}, "due": {}}
        meter.create_observable_gauge(
            "workflows4py.instances.parked",
            callbacks=[lambda options: self._observe("parked", options)],
            unit="{instance}",
            description="Parked instances, as the latest sample() counted them",
        )
        meter.create_observable_gauge(
            "workflows4py.wakeups.due",
            callbacks=[lambda options: self._observe("due", options)],
            unit="{instance}",
            description="Instances whose wakeup is due, as the latest sample() counted them",
        )

    # -- metrics read from the registry ------------------------------------------------------

    async def sample(self, runtime: Runtime) -> None:
        """Count ``runtime``'s parked instances and due wakeups, per workflow, for the two
        gauges (two counting queries per workflow; call it as often as the gauges should
        move, next to your worker loop for instance)."""
        now = runtime.hosts[0].clock.now()
        for workflow in runtime.workflows:
            parked = await runtime.search(
                SearchQuery(workflow=workflow.id, status=["parked"], limit=1)
            )
            due = await runtime.search(
                SearchQuery(
                    workflow=workflow.id,
                    status=["running", "awaiting"],
                    wakeup_before=now,
                    limit=1,
                )
            )
            self._sampled["parked"][workflow.id] = parked.total
            self._sampled["due"][workflow.id] = due.total

    def _observe(self, which: str, options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(count, {ATTRIBUTE_WORKFLOW: workflow})
            for workflow, count in self._sampled[which].items()
        ]

    # -- operations --------------------------------------------------------------------------

    def operation_started(self, op: Operation) -> None:
        span = self._tracer.start_span(
            f"workflows4py {op.kind} {op.workflow}",
            attributes={
                ATTRIBUTE_WORKFLOW: op.workflow,
                ATTRIBUTE_INSTANCE: op.instance_id,
                ATTRIBUTE_OPERATION: op.kind,
            },
        )
        op.scratch[_SPAN] = span
        op.scratch[_TOKEN] = otel_context.attach(trace.set_span_in_context(span))

    def operation_ended(self, op: Operation, error: BaseException | None) -> None:
        span = op.scratch.pop(_SPAN, None)
        if not isinstance(span, Span):
            return
        told = op.scratch.get(_OUTCOME)
        self._end_effect(op, "interrupted", error)
        self._end_signal(op, "error" if error is not None else "redelivered")
        _detach(op, _TOKEN)
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
            self._failures.add(1, {ATTRIBUTE_WORKFLOW: op.workflow, "kind": "operation"})
        outcome = str(told) if told is not None else "error" if error is not None else "ok"
        span.set_attribute(ATTRIBUTE_OUTCOME, outcome)
        written = ((_FIRST, ATTRIBUTE_SEQUENCE_FIRST), (_LAST, ATTRIBUTE_SEQUENCE_LAST))
        for key, attribute in written:
            value = op.scratch.get(key)
            if isinstance(value, int):
                span.set_attribute(attribute, value)
        span.end()
        self._operation_duration.record(
            time.perf_counter() - op.started,
            {ATTRIBUTE_WORKFLOW: op.workflow, ATTRIBUTE_OPERATION: op.kind, "outcome": outcome},
        )

    def lease_acquired(self, op: Operation, waited: float) -> None:
        self._lease_wait.record(
            waited, {ATTRIBUTE_WORKFLOW: op.workflow, ATTRIBUTE_OPERATION: op.kind}
        )

    # -- effects -----------------------------------------------------------------------------

    def effect_started(self, op: Operation, step: str) -> None:
        span = self._child(op, f"workflows4py effect {step}", {ATTRIBUTE_STEP: step})
        op.scratch[_EFFECT] = span
        op.scratch[_EFFECT_TOKEN] = otel_context.attach(trace.set_span_in_context(span))

    def effect_ended(self, op: Operation, step: str, seconds: float) -> None:
        self._end_effect(op, "ok", None)
        self._effect_duration.record(
            seconds, {ATTRIBUTE_WORKFLOW: op.workflow, ATTRIBUTE_STEP: step, "outcome": "ok"}
        )

    def effect_failed(self, op: Operation, step: str, error: Exception, seconds: float) -> None:
        self._end_effect(op, "failed", error)
        labels = {ATTRIBUTE_WORKFLOW: op.workflow, ATTRIBUTE_STEP: step}
        self._effect_duration.record(seconds, {**labels, "outcome": "failed"})
        self._failures.add(1, {**labels, "kind": "effect"})

    def _end_effect(self, op: Operation, outcome: str, error: BaseException | None) -> None:
        _detach(op, _EFFECT_TOKEN)
        span = op.scratch.pop(_EFFECT, None)
        if isinstance(span, Span):
            _finish(span, outcome, error)

    # -- signals and events ------------------------------------------------------------------

    def signal_delivered(self, op: Operation, signal_id: str) -> None:
        op.scratch[_SIGNAL] = self._child(
            op, f"workflows4py signal {signal_id}", {ATTRIBUTE_SIGNAL: signal_id}
        )

    def signal_rejected(self, op: Operation, signal_id: str, reason: str) -> None:
        span = self._child(op, f"workflows4py signal {signal_id}", {ATTRIBUTE_SIGNAL: signal_id})
        span.add_event("workflows4py.rejected", {"reason": reason})
        _finish(span, "rejected", None)

    def _end_signal(self, op: Operation, outcome: str, sequence: int | None = None) -> None:
        span = op.scratch.pop(_SIGNAL, None)
        if isinstance(span, Span):
            if sequence is not None:
                span.set_attribute(ATTRIBUTE_SEQUENCE, sequence)
            _finish(span, outcome, None)

    def event_recorded(self, op: Operation, sequence: int, event_type: str, step: str) -> None:
        op.scratch.setdefault(_FIRST, sequence)
        op.scratch[_LAST] = sequence
        span = op.scratch.get(_SPAN)
        if isinstance(span, Span):
            span.add_event(
                "workflows4py.event",
                {
                    ATTRIBUTE_SEQUENCE: sequence,
                    ATTRIBUTE_EVENT_TYPE: event_type,
                    ATTRIBUTE_STEP: step,
                },
            )
        self._end_signal(op, "handled", sequence)
        self._steps.add(1, {ATTRIBUTE_WORKFLOW: op.workflow, ATTRIBUTE_STEP: step})

    def wakeup_fired(self, op: Operation) -> None:
        span = op.scratch.get(_SPAN)
        if isinstance(span, Span):
            span.add_event("workflows4py.wakeup")

    # -- how the instance ended --------------------------------------------------------------

    def instance_finished(self, op: Operation, status: Literal["finished", "failed"]) -> None:
        op.scratch[_OUTCOME] = status
        if status == "failed":
            self._failures.add(1, {ATTRIBUTE_WORKFLOW: op.workflow, "kind": "instance"})

    def instance_parked(self, op: Operation, error: str) -> None:
        op.scratch[_OUTCOME] = "parked"
        self._failures.add(1, {ATTRIBUTE_WORKFLOW: op.workflow, "kind": "parked"})

    def instance_terminated(self, op: Operation, reason: str) -> None:
        op.scratch[_OUTCOME] = "terminated"

    def _child(self, op: Operation, name: str, attributes: dict[str, str]) -> Span:
        parent = op.scratch.get(_SPAN)
        where = trace.set_span_in_context(parent) if isinstance(parent, Span) else None
        return self._tracer.start_span(
            name,
            context=where,
            attributes={ATTRIBUTE_WORKFLOW: op.workflow, ATTRIBUTE_INSTANCE: op.instance_id}
            | attributes,
        )


def _finish(span: Span, outcome: str, error: BaseException | None) -> None:
    span.set_attribute(ATTRIBUTE_OUTCOME, outcome)
    if error is not None:
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
    span.end()


def _detach(op: Operation, key: str) -> None:
    token = op.scratch.pop(key, None)
    if token is not None:
        otel_context.detach(token)  # type: ignore[arg-type]
