"""Reading types off user functions: the event a step records, the errors it can return."""

from __future__ import annotations

import collections.abc
import functools
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

from workflows4py._errors import DefinitionError

from ._naming import error_name
from ._result import Err, Ok, Result

__all__ = [
    "error_names",
    "event_types",
    "is_async_callable",
    "parameter_classes",
    "resolve_event_types",
    "wrapper_classes",
]


def is_async_callable(fn: Callable[..., Any]) -> bool:
    """True for coroutine functions, including callable objects and partials wrapping one."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - looking for an async __call__
    )


def _return_hint(fn: Callable[..., Any]) -> Any:
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable annotations: behave as if there were none
        return None
    return hints.get("return")


def _classes_of(hint: Any) -> tuple[type, ...] | None:
    """The classes an annotation admits, None when it is not made of classes.

    ``None`` in an annotation is not a class of values to record: ``X | None`` and
    ``Optional[X]`` give ``(X,)``, and ``None`` alone gives ``()``. An awaitable gives the
    classes of what it resolves to.
    """
    if hint is None or hint is types.NoneType:
        return ()
    if hint is Any:  # says nothing about the classes
        return None
    if isinstance(hint, type) and not typing.get_args(hint):
        return (hint,)
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        found: list[type] = []
        for arg in typing.get_args(hint):
            sub = _classes_of(arg)
            if sub is None:
                return None
            found.extend(sub)
        return tuple(dict.fromkeys(found))
    if origin in (collections.abc.Awaitable, collections.abc.Coroutine):
        return _classes_of(typing.get_args(hint)[-1])
    if isinstance(origin, type) and origin is not type:
        return (origin,)
    return None


def event_types(
    fn: Callable[..., Any], explicit: type[Any] | None, *, step: str
) -> tuple[type[Any], ...] | None:
    """The event classes a step's function produces: ``explicit`` or its return annotation.

    ``None`` in the annotation is left out (a retry's ``on_error`` returns None to let the
    exception through); a function annotated to return only None raises DefinitionError.
    """
    if explicit is not None:
        if not isinstance(explicit, type) or explicit is types.NoneType:
            raise DefinitionError(f"{step}: event= must be an event class, got {explicit!r}")
        return (explicit,)
    hint = _return_hint(fn)
    if hint is None:
        return None
    classes = _classes_of(hint)
    if classes == ():
        name = getattr(fn, "__qualname__", repr(fn))
        raise DefinitionError(
            f"{step}: {name} is annotated to return None, so it never returns an event; "
            "annotate the event class it returns"
        )
    return classes


def wrapper_classes(wrap: Callable[..., Any]) -> tuple[type[Any], ...] | None:
    """The classes a for-each's or an embed's ``wrap`` returns: ``wrap`` itself when it is
    a class, else its return annotation; None when that is not known."""
    if isinstance(wrap, type):
        return (wrap,)
    hint = _return_hint(wrap)
    return (_classes_of(hint) or None) if hint is not None else None


def parameter_classes(
    fn: Callable[..., Any], index: int
) -> tuple[str, tuple[type[Any], ...]] | None:
    """The name of ``fn``'s parameter number ``index`` and the classes its annotation admits.

    For a class, the parameter is its constructor's (a dataclass's field). None when the
    parameter is missing or its annotation is absent, unresolvable, or admits anything.
    """
    try:
        params = list(inspect.signature(fn).parameters.values())
        hints = typing.get_type_hints(fn)  # for a class: its fields' annotations
    except Exception:  # no signature, unresolvable annotations: nothing to learn here
        return None
    if len(params) <= index or params[index].kind is inspect.Parameter.VAR_POSITIONAL:
        return None
    name = params[index].name
    hint = hints.get(name)
    if hint is None and isinstance(fn, type):
        try:
            init = getattr(fn, "__init__")  # noqa: B009 - mypy refuses cls.__init__
            hint = typing.get_type_hints(init).get(name)
        except Exception:
            hint = None
    if hint is None:
        return None
    classes = _classes_of(hint)
    if not classes or object in classes:
        return None
    return name, classes


def resolve_event_types(
    produced: tuple[type[Any], ...] | None,
    producer: Callable[..., Any],
    handler: Callable[..., Any],
    *,
    step: str,
) -> tuple[type[Any], ...]:
    """The event classes of a step: from its producer, else the event handler's 2nd parameter.

    The journal matches events to steps by class, so this must be known when the
    definition is built, not guessed when the first event arrives.
    """
    if produced:
        return produced
    try:
        hints = typing.get_type_hints(handler)
        names = list(inspect.signature(handler).parameters)
    except Exception:  # unresolvable annotations or no signature: nothing to learn here
        hints, names = {}, []
    if len(names) >= 2 and names[1] in hints:
        classes = _classes_of(hints[names[1]])
        if classes:
            return classes
    name = getattr(producer, "__qualname__", repr(producer))
    raise DefinitionError(
        f"{step}: cannot tell which event {name} returns; annotate its return type, "
        "annotate the event handler's event parameter, or pass event=<EventClass>"
    )


def error_names(fn: Callable[..., Any]) -> tuple[str, ...]:
    """Names of the domain errors a function returning ``Result[Out, Err]`` can produce."""
    hint = _return_hint(fn)
    if hint is None:
        return ()
    errors: list[Any] = []
    candidates = (
        typing.get_args(hint)
        if typing.get_origin(hint) in (types.UnionType, typing.Union)
        else (hint,)
    )
    for cand in candidates:
        origin = typing.get_origin(cand)
        args = typing.get_args(cand)
        if origin is Result and len(args) == 2:
            errors.append(args[1])
        elif origin is Err and args:
            errors.append(args[0])
        elif origin is Ok or cand is Ok:
            continue
    names: list[str] = []
    for err in errors:
        members = (
            typing.get_args(err)
            if typing.get_origin(err) in (types.UnionType, typing.Union)
            else (err,)
        )
        names.extend(error_name(m) for m in members)
    return tuple(dict.fromkeys(names))
