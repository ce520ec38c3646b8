"""What the codec says when pydantic refuses data or a value: the library's errors.

A :class:`DecodeError` has a JSONPath-like ``path`` and the library's wording (``"expected
integer, got string"``, ``"unknown field 'x' for Point (fields: x, y)"``), whatever pydantic
calls the error. The path is found by walking the error's location over the type's nodes
and the data itself: inside a union, only the member that reads the data's JSON kind is
reported (pydantic tries them all). An :class:`EncodeError` comes from the node's own
check, run once pydantic has refused a value, which finds the culprit and its path.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic_core import ValidationError

from workflows4py._errors import DecodeError, EncodeError

from ._common import Fail, json_kind, segment, value_type
from ._nodes import Node

__all__ = ["UNION_CLASSES", "decode_error", "encode_error", "parse_json"]

UNION_CLASSES = "$type"  # the label of the choice reading the classes of a union

_EXPECTED = {
    "int_type": "integer",
    "float_type": "number",
    "string_type": "string",
    "bool_type": "boolean",
    "none_required": "null",
    "list_type": "array",
    "tuple_type": "array",
    "set_type": "array",
    "frozen_set_type": "array",
    "dict_type": "object",
}
_NOT_AN_OBJECT = ("dataclass_type", "dataclass_args_type", "model_type", "typed_dict_type")
_INVALID = {
    "date_parsing": "ISO 8601 date",
    "date_from_datetime_parsing": "ISO 8601 date",
    "date_from_datetime_inexact": "ISO 8601 date",
    "uuid_parsing": "UUID",
    "uuid_version": "UUID",
    "decimal_parsing": "decimal",
    "decimal_type": "decimal",
}
_MISSING = object()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_loads = json.JSONDecoder(parse_constant=_reject_constant).decode


def parse_json(text: str | bytes) -> Any:
    """The data of JSON ``text``, parsed strictly (NaN and infinities are not JSON)."""
    return _loads(text if isinstance(text, str) else text.decode("utf-8"))


def encode_error(node: Node, value: Any, cause: BaseException | None = None) -> EncodeError | None:
    """The error for ``value``, from the node's check; None if the check finds nothing."""
    try:
        node.check(value)
    except Fail as exc:
        error = EncodeError(f"{exc.path()}: {exc.message}")
        error.__cause__ = exc.cause or cause
        return error
    return None


def decode_error(node: Node, exc: ValidationError, data: Any) -> DecodeError:
    """The library's error for pydantic's first relevant error about ``data`` (parsed)."""
    errors = exc.errors(include_url=False)
    for error in errors:
        found = _describe(node, error, data)
        if found is not None:
            return found
    return DecodeError(errors[0]["msg"] if errors else str(exc))


class _Walk:
    """A position in the type (``node``) and in the data (``value``) along an error's loc."""

    def __init__(self, node: Node, value: Any) -> None:
        self.node = node
        self.value = value
        self.segments: list[str] = []
        self.parent: Node | None = None
        self.parent_value: Any = _MISSING
        self.last: Any = None

    def path(self) -> str:
        return "$" + "".join(self.segments)

    def step(self, node: Node, key: Any, seg: str | None) -> None:
        self.parent, self.parent_value = self.node, self.value
        self.node = node
        self.last = key
        if seg is not None:
            self.segments.append(seg)
        self.value = _item(self.value, key)


def _item(value: Any, key: Any) -> Any:
    try:
        return value[key]
    except (KeyError, IndexError, TypeError):
        return _MISSING


def _describe(root: Node, error: Any, data: Any) -> DecodeError | None:
    walk = _Walk(root, data)
    loc: Sequence[Any] = error["loc"]
    i = 0
    while i < len(loc):
        seg = loc[i]
        node = walk.node
        while node.kind == "optional":
            node = walk.node = node.members[0]
        if node.kind == "model":  # pydantic's own error, inside the model
            walk.segments.extend(segment(s) if isinstance(s, str) else f"[{s}]" for s in loc[i:])
            return _error(walk, f"{node.label}: {error['msg']}", error)
        if node.kind == "union":
            owner = _owner(node, walk.value)
            if owner is None:
                return _error(walk, f"expected {node.label}, got {json_kind(walk.value)}", error)
            member = _union_member(node, seg, owner)
            if member is None:
                return None  # an error of a member that does not read this kind of data
            walk.node = member
            i += 1
            continue
        if node.kind in ("dataclass", "typeddict"):
            child = node.fields.get(seg) if isinstance(seg, str) else None
            if child is None:
                walk.segments.append(segment(seg))
                return _unknown_field(walk, node, seg, error)
            walk.step(child, seg, "." + seg if seg.isidentifier() else segment(seg))
        elif node.kind == "dict":
            if i + 1 < len(loc) and loc[i + 1] == "[key]":
                assert node.key is not None  # noqa: S101 - a dict node has a key node
                walk.segments.append(segment(seg))
                walk.node, walk.value = node.key, seg
                message = _message(walk, error)
                return _error(walk, f"invalid key {seg!r}: {message}", error)
            walk.step(node.items[0], seg, segment(seg))
        elif node.kind in ("list", "tuple") and isinstance(seg, int):
            if node.kind == "tuple" and seg >= len(node.items):
                break
            item = node.items[seg] if node.kind == "tuple" else node.items[0]
            walk.step(item, seg, f"[{seg}]")
        else:
            break
        i += 1
    return _error(walk, _message(walk, error), error)


def _union_member(node: Node, seg: Any, owner: Node) -> Node | None:
    """The member a union error's loc segment leads to, if it is ``owner`` (the member
    reading the data's kind); None for an error of another member."""
    classes = tuple(m for m in node.members if m.model is not None)
    by_tag = {m.tag: m for m in classes}
    if seg in by_tag and len(classes) >= 2 and len(classes) == len(node.members):
        return by_tag[seg]  # a tag: the union holds classes only
    if seg == UNION_CLASSES:
        if owner.model is None:
            return None
        if len(classes) == 1:
            return owner
        return Node(
            node.label,
            "union",
            node.val,
            node.ser,
            node.check,
            kinds=(dict,),
            types=(),
            members=classes,
        )
    for m in node.members:
        if m.label == seg:
            return m if m is owner else None
    return None


def _owner(node: Node, value: Any) -> Node | None:
    """The member of a union reading the JSON kind of ``value``."""
    kind = value.__class__
    for m in node.members:
        if kind in m.kinds:
            return m
    for m in node.members:
        if kind in m.weak:
            return m
    return None


def _error(walk: _Walk, message: str, error: Any) -> DecodeError:
    decoded = DecodeError(message, path=walk.path())
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, BaseException):
        decoded.__cause__ = cause
    return decoded


def _unknown_field(walk: _Walk, node: Node, key: Any, error: Any) -> DecodeError:
    known = ", ".join(sorted(node.fields)) or "none"
    return _error(walk, f"unknown field {key!r} for {node.label} (fields: {known})", error)


def _message(walk: _Walk, error: Any) -> str:
    kind, node, given = error["type"], walk.node, error["input"]
    ctx = error.get("ctx") or {}
    if kind == "workflows4py":
        return str(ctx["message"])
    if kind == "workflows4py_unknown":  # raised about one key of the object
        walk.segments.append(segment(ctx["key"]))
        return str(ctx["message"])
    if kind == "missing":
        parent = walk.parent
        if parent is not None and parent.kind == "tuple":
            walk.segments.pop()
            size = len(walk.parent_value) if isinstance(walk.parent_value, list) else "fewer"
            return f"expected an array of {len(parent.items)} items, got {size}"
        owner = parent.label if parent is not None else node.label
        return f"missing required field {walk.last!r} of {owner}"
    if kind == "too_long":
        return f"expected an array of {len(node.items)} items, got {ctx.get('actual_length')}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {json_kind(given)}"
    if kind in _NOT_AN_OBJECT:
        return f"expected object for {node.label}, got {json_kind(given)}"
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        tags = ", ".join(repr(m.tag) for m in node.members if m.tag is not None)
        if not isinstance(walk.value, dict) or "$type" not in walk.value:
            return f'missing "$type" key; expected one of {tags}'
        return f'unknown "$type" {walk.value["$type"]!r}; expected one of {tags}'
    return _scalar_message(kind, node, given, error["msg"])


def _scalar_message(kind: str, node: Node, given: Any, fallback: str) -> str:
    if kind == "date_type":
        return f"expected an ISO 8601 date string, got {json_kind(given)}"
    if kind == "uuid_type":
        return f"expected a UUID string, got {json_kind(given)}"
    if kind == "workflows4py_decimal":
        return f"expected a decimal string, got {json_kind(given)}"
    if kind in _INVALID:
        return f"invalid {_INVALID[kind]} {given!r}"
    if kind == "finite_number":
        return f"{node.label.lower()} {given!r} is not finite"
    if kind == "enum":
        return f"{given!r} is not a valid {node.label}"
    if kind == "literal_error":
        return f"{given!r} is not one of {node.label.removeprefix('Literal[')[:-1]}"
    if kind == "string_pattern_mismatch":
        return f"expected an integer key, got {given!r}"
    if kind in ("value_error", "assertion_error"):
        return f"cannot construct {node.label}: {fallback.split(', ', 1)[-1]}"
    if kind.startswith("workflows4py"):
        return fallback
    return f"{fallback} (got {json_kind(given) if given is not None else value_type(given)})"
