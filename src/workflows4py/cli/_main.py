"""Where every command starts: the application it works on, ``APP`` (``module:attribute``,
imported by name: the one import by name of the library, of code the user names), and the
version of the library."""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib import metadata
from typing import Any

from workflows4py.definition import Workflow
from workflows4py.runtime import DurableRuntime, Runtime

__all__ = [
    "check_schema",
    "load_runtime",
    "load_runtimes",
    "opened",
    "opened_runtimes",
    "opened_stores",
    "resolve",
    "runtimes_of",
    "select",
    "state_json",
    "version",
    "workflow_of",
]


def version() -> str:
    """The installed distribution's version."""
    try:
        return metadata.version("workflows4py")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown (not installed)"


async def resolve(target: str) -> Any:
    """What ``module:attribute`` names, called (and awaited) if it is a factory (a class,
    a Workflow subclass say, is taken as it is)."""
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
    if callable(obj) and not isinstance(obj, type | DurableRuntime | Runtime):
        obj = obj()
        if inspect.isawaitable(obj):
            obj = await obj
    return obj


async def load_runtimes(target: str) -> list[DurableRuntime[Any, Any]]:
    """Import ``module:attribute``: a :class:`Runtime` (all its workflows), a durable
    runtime, a list of them, or a (possibly async) callable with no arguments returning
    one of those."""
    return runtimes_of(await resolve(target), target)


def runtimes_of(obj: Any, target: str) -> list[DurableRuntime[Any, Any]]:
    """The durable runtimes ``obj`` gives (a Runtime's, one, or a list of them); SystemExit
    naming ``target`` if it gives something else."""
    if isinstance(obj, Runtime):
        obj = obj.hosts
    if isinstance(obj, DurableRuntime):
        return [obj]
    runtimes = list(obj) if isinstance(obj, list | tuple) else [obj]
    for runtime in runtimes:
        if not isinstance(runtime, DurableRuntime):
            raise SystemExit(f"{target} must give durable runtimes, got {runtime!r}")
    return runtimes


async def load_runtime(target: str) -> Runtime:
    """Import ``module:attribute``: a :class:`Runtime`, or a (possibly async) callable with
    no arguments returning one."""
    obj = await resolve(target)
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


async def check_schema(store: object) -> None:
    """Open ``store`` for reading only: its ``check_schema`` (the stores of the library have
    one) raises StoreError if the schema is missing or older, and creates nothing. A store of
    another kind, without it, is used as it is: never initialized."""
    check = getattr(store, "check_schema", None)
    if check is not None:
        await check()


async def _open(store: Any, read_only: bool) -> None:
    if read_only:
        await check_schema(store)
    else:
        await store.initialize()


def state_json(workflow: type[Workflow[Any, Any]], state: Any) -> dict[str, Any]:
    """A state as ``--state`` takes it: ``{"type": TYPE_TAG, "state": {FIELDS}}``."""
    tag, data = workflow.codecs().state.encode(state)
    return {"type": tag, "state": json.loads(data)}


@asynccontextmanager
async def opened(runtime: Runtime, *, read_only: bool = False) -> AsyncIterator[Runtime]:
    """``runtime`` with its store initialized (only checked, if ``read_only``), closed at the
    end (even if opening failed)."""
    try:
        await _open(runtime.store, read_only)
        yield runtime
    finally:
        await runtime.close()


def select(
    runtimes: Sequence[DurableRuntime[Any, Any]], workflow: str | None, target: str
) -> list[DurableRuntime[Any, Any]]:
    """The runtimes of ``workflow`` (by id or name), all if None; SystemExit if none."""
    if workflow is None:
        return list(runtimes)
    chosen = [r for r in runtimes if workflow in (r.workflow.id, r.workflow.name)]
    if not chosen:
        raise SystemExit(f"{target} has no runtime for a workflow named {workflow!r}")
    return chosen


@asynccontextmanager
async def opened_runtimes(
    target: str, workflow: str | None, *, read_only: bool = False
) -> AsyncIterator[Sequence[DurableRuntime[Any, Any]]]:
    """The app's runtimes (only ``workflow``'s, by id or name, if given), their stores
    initialized (only checked, if ``read_only``), closed at the end."""
    runtimes = select(await load_runtimes(target), workflow, target)
    async with opened_stores(runtimes, read_only=read_only):
        yield runtimes


@asynccontextmanager
async def opened_stores(
    runtimes: Sequence[DurableRuntime[Any, Any]], *, read_only: bool = False
) -> AsyncIterator[None]:
    """The stores of ``runtimes`` initialized (only checked, if ``read_only``), closed at
    the end."""
    stores = {id(r.store): r.store for r in runtimes}
    try:
        for store in stores.values():
            await _open(store, read_only)
        yield
    finally:
        for store in stores.values():
            await store.close()
