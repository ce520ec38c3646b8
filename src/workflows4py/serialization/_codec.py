"""Typed JSON codecs for journal events, states, requests and responses, on pydantic.

Journals store values as JSON plus a *type tag*, never as pickle. A :class:`JsonCodec` is
built once for a type or a union of types and turns a value into ``(tag, payload)`` and
back. The per-type work (validation, datetimes, decimals, enums, UUIDs, nested unions) is
pydantic-core's, through a validator and a serializer compiled once per type
(:mod:`._compile` holds the rules); the library keeps its envelope: the tag stored next to
the payload (``cls.__qualname__``, or the explicit one of :func:`type_tag`), and
``"$type"`` naming the member of a union of two or more classes inside its object.

Decoding is strict: unknown fields, missing fields, a JSON value of the wrong kind (no
string-to-number coercion), NaN and infinities are a :class:`DecodeError` whose ``path``
locates the culprit (``$.lines[2].sku``). A value that does not fit its type is an
:class:`EncodeError` naming its path.
"""

from __future__ import annotations

import json
import threading
import types
import typing
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Generic, Literal, NoReturn, TypeVar, overload

from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import (
    PydanticSerializationError,
    SchemaSerializer,
    SchemaValidator,
    ValidationError,
)

from workflows4py._errors import DecodeError, DefinitionError, EncodeError

from ._common import type_name, value_type
from ._compile import SER_CONFIG, compile_type, is_typeddict
from ._nodes import Node, with_definitions
from ._report import decode_error, encode_error, parse_json
from ._tags import TYPE_KEY, tag_of, type_tag

__all__ = ["JsonCodec", "decoder_for", "encoder_for", "json_schema", "tag_of", "type_tag"]

T = TypeVar("T")

# pydantic warns when a value does not fit the serializer's type, and writes it anyway: the
# codec refuses such a value. (Asking pydantic for errors costs a microsecond per call; a
# warning filter for the serialization package's own calls costs nothing until it fires.)
warnings.filterwarnings(
    "error",
    message="Pydantic serializer warnings",
    category=UserWarning,
    module=r"workflows4py\.serialization\.",
)

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


class _Adapter:
    """The validator and serializer of one type, built once: pydantic's TypeAdapter for
    the library's schemas (which validate and serialize unions differently)."""

    __slots__ = ("_json_schema", "node", "numbers", "serializer", "validator")

    def __init__(self, node: Node) -> None:
        self.node = node
        self.validator = SchemaValidator(with_definitions(node.val), SER_CONFIG)
        self.serializer = SchemaSerializer(
            with_definitions(node.ser, serialization=True), SER_CONFIG
        )
        self.numbers = _has_numbers(node)  # a float or Decimal may be a NaN or infinite
        self._json_schema: dict[str, Any] | None = None

    def encode(self, value: Any) -> str:
        try:
            out = self.serializer.to_json(value).decode()  # a value that does not fit warns
        except (PydanticSerializationError, UserWarning, ValueError, TypeError) as exc:
            raise self._encode_error(value, exc) from None
        if self.numbers and ('NaN"' in out or 'Infinity"' in out):  # NaN written as "NaN"?
            error = encode_error(self.node, value)
            if error is not None:
                raise error
        return out

    def _encode_error(self, value: Any, exc: Exception) -> EncodeError:
        error = encode_error(self.node, value, exc)
        if error is not None:
            return error
        reason = str(exc).replace("\n", " ")
        encode = EncodeError(f"$: cannot encode a {value_type(value)}: {reason}")
        encode.__cause__ = exc
        return encode

    def decode(self, text: str | bytes, what: str = "") -> Any:
        """The value of JSON ``text``; ``what`` names it in the message of invalid JSON."""
        try:
            return self.validator.validate_json(text)
        except (ValidationError, TypeError) as exc:
            self.refuse(text, exc, what)

    def refuse(self, text: str | bytes, exc: ValidationError | TypeError, what: str) -> NoReturn:
        """Raise the DecodeError saying why the validator refused ``text`` (with ``exc``)."""
        if isinstance(exc, TypeError):  # raised by a class's own __post_init__
            raise DecodeError(f"cannot construct {self.node.label}: {exc}") from exc
        try:
            data = parse_json(text)
        except (ValueError, UnicodeDecodeError) as bad:
            raise DecodeError(f"invalid JSON{what}: {bad}") from None
        error = decode_error(self.node, exc, data)
        raise error from error.__cause__

    def decode_data(self, data: Any) -> Any:
        try:
            text = _dumps(data)
        except (ValueError, TypeError) as exc:
            raise DecodeError(f"not JSON data: {exc}") from None
        return self.decode(text)

    def json_schema(self) -> dict[str, Any]:
        if self._json_schema is None:
            self._json_schema = _JsonSchema().generate(with_definitions(self.node.val))
        return json.loads(json.dumps(self._json_schema))  # type: ignore[no-any-return]


class _JsonSchema(GenerateJsonSchema):
    """pydantic's JSON Schema, with ``"$type"`` where a union requires it (a constant,
    without a title) and nowhere else: outside a union, a class accepts its own tag only
    to read payloads written while it was a union's member, which no form should offer."""

    def field_is_present(self, field: Any) -> bool:
        if field.get("name") == TYPE_KEY and field["schema"].get("type") == "default":
            return False
        return super().field_is_present(field)

    def dataclass_args_schema(self, schema: Any) -> Any:
        result = super().dataclass_args_schema(schema)
        result.get("properties", {}).get(TYPE_KEY, {}).pop("title", None)
        return result


def _has_numbers(root: Node) -> bool:
    """Whether values of ``root`` may hold a float or a Decimal (or a pydantic model)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.kind == "model" or node.label in ("float", "Decimal"):
            return True
        stack.extend((*node.items, *node.fields.values(), *node.members))
    return False


_ADAPTERS: dict[Node, _Adapter] = {}
_LOCK = threading.Lock()


def _adapter(node: Node) -> _Adapter:
    adapter = _ADAPTERS.get(node)
    if adapter is None:
        with _LOCK:
            adapter = _ADAPTERS.get(node)
            if adapter is None:
                adapter = _ADAPTERS[node] = _Adapter(node)
    return adapter


# --------------------------------------------------------------------------- per type


def encoder_for(tp: Any) -> Callable[[Any], Any]:
    """A function turning values of ``tp`` into plain JSON-compatible Python values.

    Raises :class:`DefinitionError` now if ``tp`` is unsupported, :class:`EncodeError` later
    for values that do not fit.
    """
    adapter = _adapter(compile_type(tp))
    encode, loads = adapter.encode, json.loads

    def to_plain(value: Any) -> Any:
        return loads(encode(value))

    return to_plain


def decoder_for(tp: Any) -> Callable[[Any], Any]:
    """A function turning plain JSON-compatible Python values into values of ``tp``.

    Raises :class:`DefinitionError` now if ``tp`` is unsupported, :class:`DecodeError` (with
    ``path``) later for data that does not fit.
    """
    return _adapter(compile_type(tp)).decode_data


def json_schema(tp: Any) -> dict[str, Any]:
    """The JSON Schema of the JSON that :func:`encoder_for` writes for ``tp`` and
    :func:`decoder_for` reads (a new dictionary at each call)."""
    return _adapter(compile_type(tp)).json_schema()


# --------------------------------------------------------------------------- the codec


def _top_level_members(tp: Any) -> list[Any]:
    """The members of a union (itself, for another type); its Literals merge into one."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return [tp]
    found: list[Any] = []
    literals: list[Any] = []
    for arg in typing.get_args(tp):
        for member in _top_level_members(arg):
            if typing.get_origin(member) is not Literal:
                found.append(member)
                continue
            if not literals:
                found.append(Literal)  # where the merged Literal member stands
            literals.extend(typing.get_args(member))
    return [Literal[tuple(literals)] if m is Literal else m for m in found]


def _tag(member: Any) -> str:
    if member is None or member is type(None):
        return "None"
    if isinstance(member, type):
        return tag_of(member)
    return type_name(member)


class JsonCodec(Generic[T]):
    """Converts values of a type, or of a union of types, to ``(tag, JSON)`` and back.

    Each member of the union is stored under its tag: a class's (see :func:`type_tag`),
    or the name of another type (``"int"``, ``"tuple[int, str]"``). ``namespace`` resolves
    the string annotations of classes defined inside a function (the names they use).
    """

    __slots__ = ("_by_tag", "_by_type", "_classes", "_decoder", "_known", "_others", "members")

    members: Mapping[str, Any]

    @overload
    def __init__(self, tp: type[T], *, namespace: Mapping[str, Any] | None = None) -> None: ...

    @overload
    def __init__(self, tp: Any, *, namespace: Mapping[str, Any] | None = None) -> None: ...

    def __init__(self, tp: Any, *, namespace: Mapping[str, Any] | None = None) -> None:
        members: dict[str, Any] = {}
        self._by_type: dict[type, tuple[str, _Adapter]] = {}
        self._by_tag: dict[str, _Adapter] = {}
        classes: list[type] = []
        others: list[tuple[str, _Adapter]] = []
        for member in _top_level_members(tp):
            node = compile_type(member, namespace=namespace)
            tag = _tag(member)
            if tag in members:
                raise DefinitionError(
                    f"duplicate type tag {tag!r} in {type_name(tp)}: "
                    f"{type_name(members[tag])} and {type_name(member)}"
                )
            members[tag] = member
            adapter = _adapter(node)
            self._by_tag[tag] = adapter
            if isinstance(member, type) and not is_typeddict(member):
                self._by_type[member] = (tag, adapter)
                classes.append(member)
            else:  # a value of it is told by trying (a dict for a TypedDict, say)
                others.append((tag, adapter))
        self.members = types.MappingProxyType(members)
        self._classes = tuple(classes)
        self._others = tuple(others)
        self._known = ", ".join(repr(t) for t in members)
        self._decoder: Callable[[str, str | bytes], T] | None = None

    def _entry(self, value: object) -> tuple[str, _Adapter]:
        entry = self._by_type.get(value.__class__)
        if entry is not None:
            return entry
        for cls in self._classes:
            if isinstance(value, cls):
                return self._by_type[cls]
        for tag, adapter in self._others:
            if encode_error(adapter.node, value) is None:
                return tag, adapter
        allowed = ", ".join(type_name(m) for m in self.members.values())
        raise EncodeError(f"cannot encode a {value_type(value)}: expected one of {allowed}")

    def encode(self, value: T) -> tuple[str, str]:
        """``(tag, compact JSON text of the payload)``; the tag is not part of the payload."""
        tag, adapter = self._entry(value)
        return tag, adapter.encode(value)

    def decode(self, tag: str, data: str | bytes) -> T:
        """Inverse of :meth:`encode`."""
        return self._adapter_of(tag).decode(data, f" for {tag}")  # type: ignore[no-any-return]

    def decoder(self) -> Callable[[str, str | bytes], T]:
        """:meth:`decode` as one function, for decoding many payloads in a row (a journal):
        each payload goes straight to the validator of its tag, and one it refuses (or an
        unknown tag) raises the very DecodeError :meth:`decode` raises."""
        if self._decoder is None:
            find, slow = self._by_tag.get, self.decode

            def decode(tag: str, data: str | bytes) -> T:
                adapter = find(tag)
                if adapter is None:
                    return slow(tag, data)  # an unknown tag: decode's error
                try:
                    value: T = adapter.validator.validate_json(data)
                except (ValidationError, TypeError) as exc:
                    adapter.refuse(data, exc, f" for {tag}")
                return value

            self._decoder = decode
        return self._decoder

    def to_jsonable(self, value: T) -> tuple[str, Any]:
        """``(tag, payload as plain JSON-compatible Python)``."""
        tag, text = self.encode(value)
        return tag, json.loads(text)

    def from_jsonable(self, tag: str, data: Any) -> T:
        """Inverse of :meth:`to_jsonable`."""
        return self._adapter_of(tag).decode_data(data)  # type: ignore[no-any-return]

    def validate(self, value: object) -> bool:
        """Whether ``value`` is of one of the members."""
        if value.__class__ in self._by_type or isinstance(value, self._classes):
            return True
        return any(encode_error(adapter.node, value) is None for _, adapter in self._others)

    def json_schema(self, payload: str = "data") -> dict[str, Any]:
        """The JSON Schema of a tagged value ``{"type": <tag>, <payload>: <its JSON>}``: one
        alternative per member, told apart by ``"type"`` (the form of a journal's start
        entry, with ``payload="state"``, and of an exported journal's entries)."""
        inputs = [
            (tag, "validation", with_definitions(adapter.node.val))
            for tag, adapter in self._by_tag.items()
        ]
        schemas, defs = _JsonSchema().generate_definitions(inputs)  # type: ignore[arg-type]
        alternatives = [
            {
                "type": "object",
                "properties": {"type": {"const": tag}, payload: schemas[(tag, "validation")]},
                "required": ["type", payload],
                "additionalProperties": False,
            }
            for tag in self._by_tag
        ]
        result: dict[str, Any] = (
            {"oneOf": alternatives} if len(alternatives) > 1 else alternatives[0]
        )
        if len(alternatives) > 1:
            result["discriminator"] = {"propertyName": "type"}
        if defs:
            result["$defs"] = defs
        return json.loads(json.dumps(result))  # type: ignore[no-any-return]

    def _adapter_of(self, tag: str) -> _Adapter:
        adapter = self._by_tag.get(tag)
        if adapter is None:
            raise DecodeError(f"unknown type tag {tag!r}; known tags: {self._known}")
        return adapter

    def __repr__(self) -> str:
        return f"JsonCodec({' | '.join(type_name(m) for m in self.members.values())})"
