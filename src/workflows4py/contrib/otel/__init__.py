"""OpenTelemetry traces and metrics of a runtime's work (``pip install workflows4py[otel]``).

``OpenTelemetryObserver`` is an :class:`~workflows4py.runtime.Observer`: give it to a
runtime with ``observers=[OpenTelemetryObserver()]``. It writes through the application's
tracer and meter providers (the global ones unless given), and never installs its own.
"""

from ._observer import (
    ATTRIBUTE_EVENT_TYPE,
    ATTRIBUTE_INSTANCE,
    ATTRIBUTE_OPERATION,
    ATTRIBUTE_OUTCOME,
    ATTRIBUTE_SEQUENCE,
    ATTRIBUTE_SEQUENCE_FIRST,
    ATTRIBUTE_SEQUENCE_LAST,
    ATTRIBUTE_SIGNAL,
    ATTRIBUTE_STEP,
    ATTRIBUTE_WORKFLOW,
    OpenTelemetryObserver,
)

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
