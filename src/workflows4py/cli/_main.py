"""Where every command starts: the application it works on, ``APP`` (``module:attribute``,
imported by name: the one import by name of the library, of code the user names), and the
version of the library."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib import metadata
from typing import Any

from workflows4py.definition import Workflow
from workflows4py.runtime import DurableRuntime, Runtime

__all__ = [
    "load_runtime",
    "load_runtimes",
    "opened",
    "opened_runtimes",
    "version",
    "workflow_of",
]


def version() -> str:
    """The installed distribution's version."""
    try:
        return metadata.version("workflows4py")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown (not installed)"


async def _resolve(target: str) -> Any:
    """What ``module:attribute`` names, called (and awaited) if it is a factory."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise SystemExit(f"expected MODULE:ATTRIBUTE, got {target!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise SystemExit(f"cannot import {module_name!r} (of {target}): {e}") from e
    try:
        obj: Any = getattr(module, attribute)
    except AttributeError:
        raise SystemExit(f"module {module_name!r} has no attribute {attribute!r}") from None
    if callable(obj) and not isinstance(obj, DurableRuntime | Runtime):
        obj = obj()
        if inspect.isawaitable(obj):
            obj = await obj
    return obj


async def load_runtimes(target: str) -> list[DurableRuntime[Any, Any]]:
    """Import ``module:attribute``: a :class:`Runtime` (all its workflows), a durable
    runtime, a list of them, or a (possibly async) callable with no arguments returning
    one of those."""
    obj = await _resolve(target)
    if isinstance(obj, Runtime):
        obj = obj.hosts
    runtimes = [obj] if isinstance(obj, DurableRuntime) else list(obj)
    for runtime in runtimes:
        if not isinstance(runtime, DurableRuntime):
            raise SystemExit(f"{target} must give durable runtimes, got {runtime!r}")
    return runtimes


async def load_runtime(target: str) -> Runtime:
    """Import ``module:attribute``: a :class:`Runtime`, or a (possibly async) callable with
    no arguments returning one."""
    obj = await _resolve(target)
    if not isinstance(obj, Runtime):
        raise SystemExit(f"{target} must give a workflows4py.Runtime, got {obj!r}")
    return obj


def workflow_of(runtime: Runtime, workflow_id: str) -> type[Workflow[Any, Any]]:
    """The workflow of ``runtime`` with this id; ValueError naming the known ids."""
    for workflow in runtime.workflows:
        if workflow.id == workflow_id:
            return workflow
    known = ", ".join(repr(w.id) for w in runtime.workflows)
    raise ValueError(f"no workflow with the id {workflow_id!r} in the runtime (it has {known})")


@asynccontextmanager
async def opened(runtime: Runtime) -> AsyncIterator[Runtime]:
    """``runtime`` with its store initialized, closed at the end (even if opening failed)."""
    try:
        await runtime.initialize()
        yield runtime
    finally:
        await runtime.close()


@asynccontextmanager
async def opened_runtimes(
    target: str, workflow: str | None
) -> AsyncIterator[Sequence[DurableRuntime[Any, Any]]]:
    """The app's runtimes (only ``workflow``'s, by id or name, if given), their stores
    initialized, closed at the end."""
    runtimes = await load_runtimes(target)
    if workflow is not None:
        runtimes = [r for r in runtimes if workflow in (r.workflow.id, r.workflow.name)]
        if not runtimes:
            raise SystemExit(f"{target} has no runtime for a workflow named {workflow!r}")
    stores = {id(r.store): r.store for r in runtimes}
    try:
        for store in stores.values():
            await store.initialize()
        yield runtimes
    finally:
        for store in stores.values():
            await store.close()
