"""What the codec knows of one type: its pydantic-core schemas, and what unions need.

A :class:`Node` holds two core schemas of its type, one validating stored JSON and one
serializing values (they differ where a union of classes is read by its ``"$type"`` key but
written by the class of the value), the JSON kinds it decodes from (unions dispatch on
them), the Python classes it encodes, and a ``check`` that finds, with its path, the part
of a value that does not fit (run only once pydantic has refused a value, for the message).

Classes are *definitions*: their schemas are registered once under a ref and referenced
from every schema that holds them, so recursive types work and every class is compiled
once; :func:`with_definitions` gives a root schema the definitions it reaches.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from pydantic_core import CoreSchema

__all__ = ["Check", "Node", "define", "reference", "with_definitions"]

Check = Callable[[Any], None]


class Node:
    """The compiled form of one type (see the module docstring)."""

    __slots__ = (
        "check",
        "fields",
        "items",
        "key",
        "kind",
        "kinds",
        "label",
        "members",
        "model",
        "ser",
        "tag",
        "tser",
        "tval",
        "types",
        "val",
        "weak",
    )

    def __init__(
        self,
        label: str,
        kind: str,
        val: CoreSchema,
        ser: CoreSchema,
        check: Check,
        *,
        kinds: Iterable[type],
        types: tuple[type, ...],
        weak: Iterable[type] = (),
        items: tuple[Node, ...] = (),
        fields: Mapping[str, Node] | None = None,
        members: tuple[Node, ...] = (),
        key: Node | None = None,
    ) -> None:
        self.label = label
        # "scalar", "any", "literal", "enum", "list", "tuple", "set", "dict", "optional",
        # "union", "dataclass", "model", "typeddict"
        self.kind = kind
        self.val = val
        self.ser = ser
        self.check = check
        self.kinds = frozenset(kinds)  # JSON value classes the validator accepts
        self.weak = frozenset(weak)  # accepted too, but yield to a member claiming them
        self.types = types  # Python classes the serializer accepts
        self.items = items  # container items (one, or a fixed tuple's)
        self.fields: Mapping[str, Node] = fields or {}  # a class's fields
        self.members = members  # a union's members
        self.key = key  # a mapping's key
        self.model: type | None = None  # a dataclass or pydantic model (a union tags it)
        self.tag: str | None = None
        self.tval: CoreSchema | None = None  # the schemas of the class inside a union
        self.tser: CoreSchema | None = None

    def __repr__(self) -> str:
        return f"<Node {self.kind} {self.label}>"


# -- definitions ----------------------------------------------------------------------------

_VAL: dict[str, CoreSchema] = {}
_SER: dict[str, CoreSchema] = {}
_LOCK = threading.RLock()


def define(ref: str, val: CoreSchema | None, ser: CoreSchema) -> None:
    """Register the schemas of a class under ``ref`` (each schema carries that ref); a
    serialization of its own only (``val`` None) for a class written with ``"$type"``."""
    with _LOCK:
        if val is not None:
            _VAL[ref] = _with_ref(val, ref)
        _SER[ref] = _with_ref(ser, ref)


def _with_ref(schema: CoreSchema, ref: str) -> CoreSchema:
    named: Any = dict(schema)
    named["ref"] = ref
    return named  # type: ignore[no-any-return]


def reference(ref: str) -> CoreSchema:
    return {"type": "definition-ref", "schema_ref": ref}


def _refs(schema: Any) -> Iterator[str]:
    """The refs a schema points at (a walk over its dictionaries and lists)."""
    stack = [schema]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("type") == "definition-ref":
                yield item["schema_ref"]
            stack.extend(v for v in item.values() if isinstance(v, dict | list | tuple))
        elif isinstance(item, list | tuple):  # a union's choices may be (schema, label)
            stack.extend(v for v in item if isinstance(v, dict | list | tuple))


def with_definitions(schema: CoreSchema, *, serialization: bool = False) -> CoreSchema:
    """``schema`` wrapped with every registered definition it reaches, directly or not."""
    table = _SER if serialization else _VAL
    found: dict[str, CoreSchema] = {}
    pending = list(_refs(schema))
    while pending:
        ref = pending.pop()
        if ref in found or ref not in table:  # a pydantic model's own refs stay inside it
            continue
        found[ref] = table[ref]
        pending.extend(_refs(table[ref]))
    if not found:
        return schema
    return {"type": "definitions", "schema": schema, "definitions": list(found.values())}
