"""Integrations with other libraries, each an optional extra (``workflows4py[otel]``).

Nothing here is imported by the rest of the library: import the integration you use,
``workflows4py.contrib.otel`` for OpenTelemetry.
"""

__all__: list[str] = []
