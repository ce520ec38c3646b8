"""Names and failures shared by the compiler, the scalar types and the error reports."""

from __future__ import annotations

import json
import types
import typing
from typing import Any, Literal

__all__ = ["Fail", "json_kind", "kind_name", "segment", "type_name", "value_type"]

_NoneType = type(None)

_KIND_NAMES: dict[type, str] = {
    _NoneType: "null",
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


class Fail(Exception):
    """A value that does not fit its type; ``segments`` is its path in reverse, built while
    unwinding from where it was found."""

    def __init__(
        self, message: str, segment: str | None = None, cause: BaseException | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.segments: list[str] = [] if segment is None else [segment]
        self.cause = cause

    def path(self) -> str:
        return "$" + "".join(reversed(self.segments))


def kind_name(cls: type) -> str:
    """The JSON kind a Python class of parsed JSON stands for ("integer", "object", ...)."""
    return _KIND_NAMES[cls]


def json_kind(value: object) -> str:
    """The JSON kind of a parsed JSON value, for messages ("got integer")."""
    return _KIND_NAMES.get(value.__class__) or f"a Python {type(value).__qualname__}"


def value_type(value: object) -> str:
    """The Python class of a value, for messages ("got str")."""
    return type(value).__qualname__


def segment(key: object) -> str:
    """A JSONPath segment: ``.name``, ``["a key"]`` or ``[3]``."""
    if isinstance(key, str) and key.isidentifier():
        return "." + key
    if isinstance(key, str):
        return "[" + json.dumps(key, ensure_ascii=False) + "]"
    return f"[{key!r}]"


def type_name(tp: Any) -> str:
    """A short, readable name of a type annotation (``list[Point] | None``)."""
    origin = typing.get_origin(tp)
    if origin is None:
        if tp is None or tp is _NoneType:
            return "None"
        if tp is Ellipsis:
            return "..."
        if isinstance(tp, list):
            return "[" + ", ".join(type_name(a) for a in tp) + "]"
        if isinstance(tp, type):
            return tp.__qualname__
        return repr(tp).replace("typing.", "")
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        return " | ".join(type_name(a) for a in args)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is Literal:
        return f"Literal[{', '.join(repr(a) for a in args)}]"
    name = origin.__qualname__ if isinstance(origin, type) else type_name(origin)
    return f"{name}[{', '.join(type_name(a) for a in args)}]" if args else name
