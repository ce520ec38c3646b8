# The codec of release 0.1.0 (hand-written, before pydantic), kept for benchmarks/codec.py
# only: nothing in the library imports it; the benchmark measures the new codec against it on
# the same values in the same run. It is the baseline: do not edit it.
# ruff: noqa: RUF100
"""Typed JSON codec for journal events and workflow state.

Journals store values as JSON plus a *type tag*, never as pickle. A :class:`JsonCodec`
is built once for a class or a union of classes (dataclasses or pydantic v2 models) and
turns a value into ``(tag, payload)`` and back:

* **Tag.** The tag of a class is ``cls.__qualname__`` unless the class is decorated with
  :func:`type_tag`. The tag is stored next to the payload, not inside it; the payload of a
  top-level value is the JSON object of its fields.
* **Fields.** Dataclasses are encoded as a JSON object with one key per ``init=True``
  field, converted according to the field's type hint (see below). Pydantic models are
  encoded with ``model_dump(mode="json")`` and decoded with ``model_validate``.
* **Nested unions** that contain two or more classes write the member's tag into the
  member's object under the extra key ``"$type"``, e.g. ``{"$type": "Rejected", "by": "bob"}``;
  decoding selects the class by that key, so even field-less dataclasses round-trip to the
  right class. A union with a single class (``Inner | None``) writes no ``"$type"``.
  Other union members are selected by the kind of the JSON value (null, boolean, integer,
  number, string, array, object); two members that decode from the same kind
  (``datetime | str``, ``UUID | str``, ``list[int] | tuple[int, ...]``, a mapping next to a
  class) are rejected with :class:`DefinitionError` when the codec is built. The one
  resolved overlap: JSON integers go to an ``int`` member if there is one, else to the first
  ``float`` or ``Decimal`` member.
* **Scalars.** ``bytes`` as base64 text, ``Decimal`` as a string (finite only), ``datetime``,
  ``date`` and ``time`` as ISO 8601 (a naive datetime stays naive, an aware one keeps its
  offset), ``timedelta`` as an exact ISO 8601 duration (``"P1DT2H3M4.000005S"``,
  ``"-PT5S"``), ``UUID`` as its canonical string, enums by value, ``Literal`` values as
  themselves, ``NewType`` as the underlying type. ``Any``/``object`` values must already be
  JSON-native (checked deeply on encode). Sets are written as arrays, sorted when their
  encoded items are comparable, so the output is deterministic. Mapping keys must encode to
  strings or integers (integers are written as decimal strings).
* **Strictness.** Decoding rejects unknown keys in a dataclass object (a journal must not
  silently lose data), missing required fields, wrong JSON kinds, ``NaN``/``Infinity``;
  errors are :class:`DecodeError` with a JSONPath-like ``path`` such as ``$.lines[2].sku``.

Evolution notes: adding a dataclass field *with a default* is safe (old payloads decode
with the default); removing a field breaks old payloads (strict keys); renaming a class
changes its default tag, so keep the old tag with ``@type_tag("OldName")``. Turning a field
``A`` into ``A | None`` is safe; turning ``A`` into ``A | B`` (two classes) is not, because
old payloads lack ``"$type"``; the reverse (``A | B`` into ``A``) is accepted.

Encoders and decoders are compiled once per type into closures (dataclass converters are
generated code) and cached; recursive types through classes are supported.
"""

from __future__ import annotations

import binascii
import contextlib
import dataclasses
import decimal
import enum
import json
import math
import re
import sys
import threading
import types
import typing
import uuid
from collections import abc
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any, Generic, Literal, TypeVar, overload

from workflows4py import DecodeError, DefinitionError, EncodeError

__all__ = ["JsonCodec", "decoder_for", "encoder_for", "tag_of", "type_tag"]

T = TypeVar("T")
_D = TypeVar("_D", datetime, time)

_Fn = Callable[[Any], Any]
_NoneType = type(None)
_TAG_ATTR = "__workflows4py_type_tag__"
_TYPE_KEY = "$type"
_MAX_TAG_LENGTH = 200

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_loads = json.JSONDecoder(parse_constant=_reject_constant).decode


# --------------------------------------------------------------------------- tags


def type_tag(tag: str) -> Callable[[type[T]], type[T]]:
    """Class decorator giving ``cls`` a stable journal tag (default: ``cls.__qualname__``).

    Subclasses do not inherit an explicit tag.
    """
    if not isinstance(tag, str) or not tag:
        raise DefinitionError(f"a type tag must be a non-empty string, got {tag!r}")
    if len(tag) > _MAX_TAG_LENGTH:
        raise DefinitionError(f"type tag {tag[:40]!r}... is longer than {_MAX_TAG_LENGTH}")
    if any(ch.isspace() for ch in tag):
        raise DefinitionError(f"type tag {tag!r} contains whitespace")

    def apply(cls: type[T]) -> type[T]:
        if not isinstance(cls, type):
            raise DefinitionError(f"@type_tag({tag!r}) must decorate a class, got {cls!r}")
        setattr(cls, _TAG_ATTR, tag)
        return cls

    return apply


def tag_of(cls: type) -> str:
    """The tag stored in journals for ``cls``."""
    tag = cls.__dict__.get(_TAG_ATTR)
    return tag if isinstance(tag, str) else cls.__qualname__


# --------------------------------------------------------------------------- failures


class _Fail(Exception):
    """Internal failure; ``segments`` is the path in reverse, built while unwinding."""

    def __init__(
        self, message: str, segment: str | None = None, cause: BaseException | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.segments: list[str] = [] if segment is None else [segment]
        self.cause = cause  # kept apart from __cause__, which re-raising `from None` clears

    def path(self) -> str:
        return "$" + "".join(reversed(self.segments))


def _decode_error(exc: _Fail) -> DecodeError:
    return DecodeError(exc.message, path=exc.path())


def _encode_error(exc: _Fail) -> EncodeError:
    return EncodeError(f"{exc.path()}: {exc.message}")


def _seg(key: object) -> str:
    if isinstance(key, str) and key.isidentifier():
        return "." + key
    if isinstance(key, str):
        return "[" + json.dumps(key, ensure_ascii=False) + "]"
    return f"[{key!r}]"


_KIND_NAMES: dict[type, str] = {
    _NoneType: "null",
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


def _kind(value: object) -> str:
    return _KIND_NAMES.get(value.__class__) or f"a Python {type(value).__qualname__}"


def _tname(value: object) -> str:
    return type(value).__qualname__


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is None:
        if tp is None or tp is _NoneType:
            return "None"
        if tp is Ellipsis:
            return "..."
        if isinstance(tp, list):
            return "[" + ", ".join(_type_name(a) for a in tp) + "]"
        if isinstance(tp, type):
            return tp.__qualname__
        return repr(tp).replace("typing.", "")
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        return " | ".join(_type_name(a) for a in args)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is Literal:
        return f"Literal[{', '.join(repr(a) for a in args)}]"
    name = origin.__qualname__ if isinstance(origin, type) else _type_name(origin)
    return f"{name}[{', '.join(_type_name(a) for a in args)}]" if args else name


# --------------------------------------------------------------------------- nodes


class _Node:
    """Compiled converters for one type plus what a union needs to dispatch on it."""

    __slots__ = ("dec", "enc", "kinds", "label", "model", "passthrough", "tenc", "types", "weak")

    def __init__(
        self,
        label: str,
        enc: _Fn,
        dec: _Fn,
        kinds: Iterable[type],
        types_: tuple[type, ...],
        *,
        weak: Iterable[type] = (),
        model: type | None = None,
        tenc: _Fn | None = None,
        passthrough: type | None = None,
    ) -> None:
        self.label = label
        self.enc = enc
        self.dec = dec
        self.kinds = frozenset(kinds)  # JSON value classes the decoder accepts
        self.weak = frozenset(weak)  # accepted too, but yield to a member claiming them
        self.types = types_  # Python classes the encoder accepts (union dispatch)
        self.model = model  # dataclass / pydantic class
        self.tenc = tenc or enc  # encoder writing "$type" (models only)
        self.passthrough = passthrough  # exact class for which enc and dec are identity


def _scalar(
    label: str,
    enc: _Fn,
    dec: _Fn,
    kinds: Iterable[type],
    types_: tuple[type, ...],
    *,
    weak: Iterable[type] = (),
    passthrough: type | None = None,
) -> _Node:
    return _Node(label, enc, dec, kinds, types_, weak=weak, passthrough=passthrough)


def _enc_none(v: Any) -> None:
    if v is None:
        return None
    raise _Fail(f"expected None, got {_tname(v)}")


def _dec_none(d: Any) -> None:
    if d is None:
        return None
    raise _Fail(f"expected null, got {_kind(d)}")


def _enc_bool(v: Any) -> bool:
    if v is True or v is False:
        return v
    raise _Fail(f"expected bool, got {_tname(v)}")


def _dec_bool(d: Any) -> bool:
    if d is True or d is False:
        return d
    raise _Fail(f"expected boolean, got {_kind(d)}")


def _enc_int(v: Any) -> int:
    if v.__class__ is int:
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return int(v)
    raise _Fail(f"expected int, got {_tname(v)}")


def _dec_int(d: Any) -> int:
    if d.__class__ is int:
        return d
    raise _Fail(f"expected integer, got {_kind(d)}")


_isfinite = math.isfinite


def _enc_float(v: Any) -> float:
    if v.__class__ is not float:
        if not isinstance(v, int | float) or isinstance(v, bool):
            raise _Fail(f"expected float, got {_tname(v)}")
        try:
            v = float(v)
        except OverflowError:
            raise _Fail(f"int {v} is too large for a float") from None
    if _isfinite(v):
        return v  # type: ignore[no-any-return]
    raise _Fail(f"float {v!r} cannot be stored in JSON")


def _dec_float(d: Any) -> float:
    if d.__class__ is float:
        return d
    if d.__class__ is int:
        try:
            return float(d)
        except OverflowError:
            raise _Fail(f"integer {d} is too large for a float") from None
    raise _Fail(f"expected number, got {_kind(d)}")


def _enc_str(v: Any) -> str:
    if v.__class__ is str:
        return v
    if isinstance(v, str):
        return str.__str__(v)
    raise _Fail(f"expected str, got {_tname(v)}")


def _dec_str(d: Any) -> str:
    if d.__class__ is str:
        return d
    raise _Fail(f"expected string, got {_kind(d)}")


def _enc_bytes(v: Any) -> str:
    if isinstance(v, bytes | bytearray):
        return binascii.b2a_base64(v, newline=False).decode("ascii")
    raise _Fail(f"expected bytes, got {_tname(v)}")


def _dec_bytes(d: Any) -> bytes:
    if d.__class__ is not str:
        raise _Fail(f"expected a base64 string, got {_kind(d)}")
    try:
        return binascii.a2b_base64(d, strict_mode=True)
    except (binascii.Error, ValueError):
        raise _Fail("invalid base64 string") from None


def _enc_decimal(v: Any) -> str:
    if not isinstance(v, decimal.Decimal):
        raise _Fail(f"expected Decimal, got {_tname(v)}")
    if not v.is_finite():
        raise _Fail(f"Decimal {v} cannot be stored (only finite decimals are supported)")
    return str(v)


def _dec_decimal(d: Any) -> decimal.Decimal:
    if d.__class__ is int:
        return decimal.Decimal(d)
    if d.__class__ is not str:
        raise _Fail(f"expected a decimal string, got {_kind(d)}")
    try:
        value = decimal.Decimal(d)
    except decimal.InvalidOperation:
        raise _Fail(f"invalid decimal {d!r}") from None
    if not value.is_finite():
        raise _Fail(f"decimal {d!r} is not finite")
    return value


_UTC = UTC
_SUBSECOND_OFFSET = re.compile(r"([+-])00:00:00\.(\d{6})", re.ASCII)


def _subsecond_offset(value: _D, text: str) -> _D:
    """CPython 3.11 parses a UTC offset below one second (``+00:00:00.000001``) as UTC."""
    m = _SUBSECOND_OFFSET.search(text, len(text) - 16)
    if m is None or m.end() != len(text):
        return value
    micros = int(m[2]) * (-1 if m[1] == "-" else 1)
    return value.replace(tzinfo=timezone(timedelta(microseconds=micros)))


def _iso_codec(cls: type[date] | type[time]) -> tuple[_Fn, _Fn]:
    name = cls.__name__
    parse = cls.fromisoformat
    has_tz = cls is time

    def enc(v: Any) -> str:
        # datetime is a date subclass: writing it into a date field would lose the time
        if v.__class__ is cls or (isinstance(v, cls) and not isinstance(v, datetime)):
            return v.isoformat()
        raise _Fail(f"expected {name}, got {_tname(v)}")

    def dec(d: Any) -> Any:
        if d.__class__ is not str:
            raise _Fail(f"expected an ISO 8601 {name} string, got {_kind(d)}")
        try:
            value: Any = parse(d)
        except ValueError:
            raise _Fail(f"invalid ISO 8601 {name} {d!r}") from None
        if has_tz and value.tzinfo is _UTC and d[-6:] != "+00:00":
            return _subsecond_offset(value, d)
        return value

    return enc, dec


def _enc_datetime(v: Any) -> str:
    if isinstance(v, datetime):
        return v.isoformat()
    raise _Fail(f"expected datetime, got {_tname(v)}")


def _dec_datetime(d: Any) -> datetime:
    if d.__class__ is not str:
        raise _Fail(f"expected an ISO 8601 datetime string, got {_kind(d)}")
    try:
        value = datetime.fromisoformat(d)
    except ValueError:
        raise _Fail(f"invalid ISO 8601 datetime {d!r}") from None
    if value.tzinfo is _UTC and d[-6:] != "+00:00":
        return _subsecond_offset(value, d)
    return value


def _enc_timedelta(v: Any) -> str:
    if not isinstance(v, timedelta):
        raise _Fail(f"expected timedelta, got {_tname(v)}")
    sign = ""
    if v.days < 0:
        sign, v = "-", -v
    days, seconds, micros = v.days, v.seconds, v.microseconds
    parts = [sign, "P"]
    if days:
        parts.append(f"{days}D")
    if seconds or micros or not days:
        parts.append("T")
        hours, rest = divmod(seconds, 3600)
        minutes, seconds = divmod(rest, 60)
        if hours:
            parts.append(f"{hours}H")
        if minutes:
            parts.append(f"{minutes}M")
        if seconds or micros or not (hours or minutes):
            fraction = f".{micros:06d}".rstrip("0") if micros else ""
            parts.append(f"{seconds}{fraction}S")
    return "".join(parts)


_DURATION = re.compile(
    r"(-)?P(?:(\d+)D)?(?:(T)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:\.(\d{1,6}))?S)?)?", re.ASCII
)


def _dec_timedelta(d: Any) -> timedelta:
    if d.__class__ is not str:
        raise _Fail(f"expected an ISO 8601 duration string, got {_kind(d)}")
    m = _DURATION.fullmatch(d)
    if m is None or (m[2] is None and m[3] is None) or (m[3] and m[4] is m[5] is m[6] is None):
        raise _Fail(f"invalid ISO 8601 duration {d!r} (expected e.g. 'P1DT2H3M4.5S')")
    try:
        value = timedelta(
            days=int(m[2] or 0),
            hours=int(m[4] or 0),
            minutes=int(m[5] or 0),
            seconds=int(m[6] or 0),
            microseconds=int((m[7] or "").ljust(6, "0")),
        )
    except OverflowError:
        raise _Fail(f"duration {d!r} is out of range") from None
    return -value if m[1] else value


def _enc_uuid(v: Any) -> str:
    if isinstance(v, uuid.UUID):
        return str(v)
    raise _Fail(f"expected UUID, got {_tname(v)}")


def _dec_uuid(d: Any) -> uuid.UUID:
    if d.__class__ is not str:
        raise _Fail(f"expected a UUID string, got {_kind(d)}")
    try:
        return uuid.UUID(d)
    except ValueError:
        raise _Fail(f"invalid UUID {d!r}") from None


def _check_json(v: Any) -> None:
    cls = v.__class__
    if cls is str or cls is int or cls is bool or v is None:
        return
    if cls is float:
        if not _isfinite(v):
            raise _Fail(f"float {v!r} cannot be stored in JSON")
    elif cls is list:
        for i, item in enumerate(v):
            try:
                _check_json(item)
            except _Fail as exc:
                exc.segments.append(f"[{i}]")
                raise
    elif cls is dict:
        for key, item in v.items():
            if key.__class__ is not str:
                raise _Fail(f"object keys must be str, got {_tname(key)}")
            try:
                _check_json(item)
            except _Fail as exc:
                exc.segments.append(_seg(key))
                raise
    else:
        raise _Fail(
            f"a {_tname(v)} is not JSON-native (allowed under Any: dict with str keys, "
            "list, str, int, float, bool, None)"
        )


def _enc_any(v: Any) -> Any:
    _check_json(v)
    return v


def _identity(d: Any) -> Any:
    return d


_JSON_KINDS = (_NoneType, bool, int, float, str, list, dict)
_ANY = _scalar("Any", _enc_any, _identity, _JSON_KINDS, (object,))
_NONE = _scalar("None", _enc_none, _dec_none, (_NoneType,), (_NoneType,), passthrough=_NoneType)
_DATE = _scalar("date", *_iso_codec(date), (str,), (date,))
_TIME = _scalar("time", *_iso_codec(time), (str,), (time,))

_SCALARS: dict[Any, _Node] = {
    Any: _ANY,
    object: _ANY,
    None: _NONE,
    _NoneType: _NONE,
    bool: _scalar("bool", _enc_bool, _dec_bool, (bool,), (bool,), passthrough=bool),
    int: _scalar("int", _enc_int, _dec_int, (int,), (int,), passthrough=int),
    float: _scalar("float", _enc_float, _dec_float, (float,), (float, int), weak=(int,)),
    str: _scalar("str", _enc_str, _dec_str, (str,), (str,), passthrough=str),
    bytes: _scalar("bytes", _enc_bytes, _dec_bytes, (str,), (bytes, bytearray)),
    decimal.Decimal: _scalar(
        "Decimal", _enc_decimal, _dec_decimal, (str,), (decimal.Decimal,), weak=(int,)
    ),
    datetime: _scalar("datetime", _enc_datetime, _dec_datetime, (str,), (datetime,)),
    date: _DATE,
    time: _TIME,
    timedelta: _scalar("timedelta", _enc_timedelta, _dec_timedelta, (str,), (timedelta,)),
    uuid.UUID: _scalar("UUID", _enc_uuid, _dec_uuid, (str,), (uuid.UUID,)),
}

_LIST_ORIGINS: dict[Any, type] = {list: list, abc.Sequence: list, abc.MutableSequence: list}
_SET_ORIGINS: dict[Any, type] = {
    set: set,
    frozenset: frozenset,
    abc.Set: frozenset,
    abc.MutableSet: set,
}
_MAP_ORIGINS = (dict, abc.Mapping, abc.MutableMapping)
_BARE_GENERICS = (list, tuple, set, frozenset, dict, *_LIST_ORIGINS, *_SET_ORIGINS, *_MAP_ORIGINS)


# --------------------------------------------------------------------------- locating failures
# Containers convert items in a comprehension (fast) and only on failure convert the items
# again one by one to learn where it happened; converters are pure, so this is safe.


def _locate_items(exc: _Fail, fn: _Fn, items: Iterable[Any]) -> _Fail:
    for i, item in enumerate(items):
        try:
            fn(item)
        except _Fail as found:
            found.segments.append(f"[{i}]")
            return found
    return exc


def _locate_entries(exc: _Fail, key_fn: _Fn, value_fn: _Fn, entries: Mapping[Any, Any]) -> _Fail:
    for key, value in entries.items():
        try:
            key_fn(key)
        except _Fail as found:
            found.message = f"invalid key {key!r}: {found.message}"
            found.segments.append(_seg(key))
            return found
        try:
            value_fn(value)
        except _Fail as found:
            found.segments.append(_seg(key))
            return found
    return exc


def _locate_fields(exc: _Fail, obj: Any, fields: list[tuple[str, _Fn]]) -> _Fail:
    for name, fn in fields:
        try:
            fn(getattr(obj, name))
        except _Fail as found:
            found.segments.append("." + name)
            return found
    return exc


# --------------------------------------------------------------------------- compiler

_CACHE: dict[Any, _Node] = {}
_LOCK = threading.RLock()


def _hashable(tp: Any) -> bool:
    try:
        hash(tp)
    except TypeError:
        return False
    return True


def _is_model(tp: Any) -> bool:
    pydantic = sys.modules.get("pydantic")  # no pydantic imported: no BaseModel can exist
    return pydantic is not None and isinstance(tp, type) and issubclass(tp, pydantic.BaseModel)


def _is_class_member(tp: Any) -> bool:
    return isinstance(tp, type) and (dataclasses.is_dataclass(tp) or _is_model(tp))


def _compile(tp: Any, where: str | None = None) -> _Node:
    if _hashable(tp):
        node = _CACHE.get(tp)
        if node is not None:
            return node
    with _LOCK:
        compiler = _Compiler()
        node = compiler.node(tp, where or _type_name(tp))
        _CACHE.update(compiler.new)  # only complete, successful compilations are cached
    return node


class _Compiler:
    def __init__(self) -> None:
        self.new: dict[Any, _Node] = {}
        self.active: set[Any] = set()

    def node(self, tp: Any, where: str) -> _Node:
        if not _hashable(tp):
            return self._build(tp, where)
        node = _CACHE.get(tp) or self.new.get(tp)
        if node is not None:
            return node
        if tp in self.active:
            raise DefinitionError(
                f"recursive type {_type_name(tp)} at {where}: recursion must go through a "
                "dataclass or model"
            )
        self.active.add(tp)
        try:
            node = self._build(tp, where)
        finally:
            self.active.discard(tp)
        self.new[tp] = node
        return node

    def _build(self, tp: Any, where: str) -> _Node:
        if _hashable(tp) and tp in _SCALARS:
            return _SCALARS[tp]
        if isinstance(tp, typing.NewType):
            return self.node(tp.__supertype__, where)
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is typing.Annotated or origin is typing.Final:
            return self.node(args[0], where)
        if origin is typing.Union or origin is types.UnionType:
            return self._union(args, where)
        if origin is Literal:
            return self._literal(args, where)
        if origin is not None:
            return self._generic(origin, args, tp, where)
        if isinstance(tp, type):
            if issubclass(tp, enum.Enum):
                return self._enum(tp, where)
            if dataclasses.is_dataclass(tp):
                return self._dataclass(tp, where)
            if _is_model(tp):
                return self._model(tp, where)
            if tp in _BARE_GENERICS:
                return self._generic(tp, (), tp, where)
        if isinstance(tp, TypeVar):
            raise DefinitionError(
                f"type variable {tp!r} at {where} cannot be encoded "
                "(generic dataclasses and models with free type variables are not supported)"
            )
        if isinstance(tp, str | typing.ForwardRef):
            raise DefinitionError(f"unresolved forward reference {tp!r} at {where}")
        raise DefinitionError(
            f"unsupported type {_type_name(tp)} at {where}: use a dataclass, a pydantic model, "
            "a JSON scalar, a supported standard type or a container of those"
        )

    # ----------------------------------------------------------------- containers

    def _generic(self, origin: Any, args: tuple[Any, ...], tp: Any, where: str) -> _Node:
        if origin in _LIST_ORIGINS:
            return self._list(origin is list, args[0] if args else Any, where)
        if origin is tuple:
            if tp == tuple[()]:  # get_args() of the empty tuple type is () as for a bare tuple
                return self._fixed_tuple((), where)
            if not args:
                return self._var_tuple(Any, where)
            if len(args) == 2 and args[1] is Ellipsis:
                return self._var_tuple(args[0], where)
            return self._fixed_tuple(args, where)
        if origin in _SET_ORIGINS:
            return self._set(_SET_ORIGINS[origin], args[0] if args else Any, where)
        if origin in _MAP_ORIGINS:
            key, value = args if args else (str, Any)
            return self._mapping(origin is dict, key, value, where)
        if _is_class_member(origin):
            raise DefinitionError(
                f"parametrized generic class {_type_name(tp)} at {where} is not supported"
            )
        raise DefinitionError(f"unsupported type {_type_name(tp)} at {where}")

    def _list(self, exact: bool, item_tp: Any, where: str) -> _Node:
        item = self.node(item_tp, where + "[]")
        ienc, idec = item.enc, item.dec

        def enc(v: Any) -> list[Any]:
            if v.__class__ is not list and (
                exact or not isinstance(v, abc.Sequence) or isinstance(v, str | bytes | bytearray)
            ):
                raise _Fail(f"expected {'list' if exact else 'a sequence'}, got {_tname(v)}")
            try:
                return [ienc(x) for x in v]
            except _Fail as exc:
                raise _locate_items(exc, ienc, v) from None

        def dec(d: Any) -> list[Any]:
            if d.__class__ is not list:
                raise _Fail(f"expected array, got {_kind(d)}")
            try:
                return [idec(x) for x in d]
            except _Fail as exc:
                raise _locate_items(exc, idec, d) from None

        label = f"list[{item.label}]"
        return _Node(label, enc, dec, (list,), (list,) if exact else (list, tuple, abc.Sequence))

    def _var_tuple(self, item_tp: Any, where: str) -> _Node:
        item = self.node(item_tp, where + "[]")
        ienc, idec = item.enc, item.dec

        def enc(v: Any) -> list[Any]:
            if not isinstance(v, tuple):
                raise _Fail(f"expected tuple, got {_tname(v)}")
            try:
                return [ienc(x) for x in v]
            except _Fail as exc:
                raise _locate_items(exc, ienc, v) from None

        def dec(d: Any) -> tuple[Any, ...]:
            if d.__class__ is not list:
                raise _Fail(f"expected array, got {_kind(d)}")
            try:
                return tuple([idec(x) for x in d])
            except _Fail as exc:
                raise _locate_items(exc, idec, d) from None

        return _Node(f"tuple[{item.label}, ...]", enc, dec, (list,), (tuple,))

    def _fixed_tuple(self, item_tps: tuple[Any, ...], where: str) -> _Node:
        items = [self.node(t, f"{where}[{i}]") for i, t in enumerate(item_tps)]
        encs = [n.enc for n in items]
        decs = [n.dec for n in items]
        size = len(items)
        label = f"tuple[{', '.join(n.label for n in items)}]"

        def enc(v: Any) -> list[Any]:
            if not isinstance(v, tuple) or len(v) != size:
                raise _Fail(f"expected {label}, got {_tname(v)} {v!r}")
            out = []
            for i, (fn, x) in enumerate(zip(encs, v, strict=True)):
                try:
                    out.append(fn(x))
                except _Fail as exc:
                    exc.segments.append(f"[{i}]")
                    raise
            return out

        def dec(d: Any) -> tuple[Any, ...]:
            if d.__class__ is not list:
                raise _Fail(f"expected array, got {_kind(d)}")
            if len(d) != size:
                raise _Fail(f"expected an array of {size} items, got {len(d)}")
            out = []
            for i, (fn, x) in enumerate(zip(decs, d, strict=True)):
                try:
                    out.append(fn(x))
                except _Fail as exc:
                    exc.segments.append(f"[{i}]")
                    raise
            return tuple(out)

        return _Node(label, enc, dec, (list,), (tuple,))

    def _set(self, result: type, item_tp: Any, where: str) -> _Node:
        item = self.node(item_tp, where + "[]")
        ienc, idec = item.enc, item.dec

        def enc(v: Any) -> list[Any]:
            if not isinstance(v, abc.Set):
                raise _Fail(f"expected a set, got {_tname(v)}")
            try:
                out = [ienc(x) for x in v]
            except _Fail as exc:
                raise _locate_items(exc, ienc, v) from None
            with contextlib.suppress(TypeError):  # unordered items keep iteration order
                out.sort()
            return out

        def dec(d: Any) -> Any:
            if d.__class__ is not list:
                raise _Fail(f"expected array, got {_kind(d)}")
            try:
                return result([idec(x) for x in d])
            except _Fail as exc:
                raise _locate_items(exc, idec, d) from None
            except TypeError as exc:
                raise _Fail(f"set items must be hashable: {exc}") from None

        label = f"{result.__name__}[{item.label}]"
        return _Node(label, enc, dec, (list,), (set, frozenset, abc.Set))

    def _mapping(self, exact: bool, key_tp: Any, value_tp: Any, where: str) -> _Node:
        key = self.node(key_tp, where + "{key}")
        value = self.node(value_tp, where + "{}")
        venc, vdec = value.enc, value.dec
        kenc: _Fn
        kdec: _Fn
        if key.kinds == {str} and not key.weak:
            kenc, kdec = key.enc, key.dec
        elif key.kinds == {int} and not key.weak:
            inner_enc, inner_dec = key.enc, key.dec

            def int_key_enc(k: Any) -> str:
                return str(inner_enc(k))

            def int_key_dec(k: Any) -> Any:
                try:
                    n = int(k)
                except (TypeError, ValueError):
                    n = None
                if n is None or str(n) != k:
                    raise _Fail(f"expected an integer key, got {k!r}")
                return inner_dec(n)

            kenc, kdec = int_key_enc, int_key_dec
        else:
            raise DefinitionError(
                f"unsupported mapping key type {key.label} at {where}: keys must encode to "
                "JSON strings or integers (str, int, Enum, UUID, Literal, ...)"
            )

        def enc(v: Any) -> dict[Any, Any]:
            if v.__class__ is not dict and not isinstance(v, abc.Mapping):
                raise _Fail(f"expected a mapping, got {_tname(v)}")
            try:
                return {kenc(k): venc(x) for k, x in v.items()}
            except _Fail as exc:
                raise _locate_entries(exc, kenc, venc, v) from None

        def dec(d: Any) -> dict[Any, Any]:
            if d.__class__ is not dict:
                raise _Fail(f"expected object, got {_kind(d)}")
            try:
                return {kdec(k): vdec(x) for k, x in d.items()}
            except _Fail as exc:
                raise _locate_entries(exc, kdec, vdec, d) from None

        label = f"dict[{key.label}, {value.label}]"
        return _Node(label, enc, dec, (dict,), (dict,) if exact else (dict, abc.Mapping))

    # ----------------------------------------------------------------- enums and literals

    def _enum(self, cls: type[enum.Enum], where: str) -> _Node:
        by_value: dict[tuple[type, Any], enum.Enum] = {}
        for member in cls.__members__.values():
            value = member.value
            if value.__class__ not in (str, int, float, bool, _NoneType):
                raise DefinitionError(
                    f"enum {cls.__qualname__} at {where} has a non-JSON value {value!r}"
                )
            by_value[(value.__class__, value)] = member
        kinds = {k for k, _ in by_value}
        label = cls.__qualname__

        def enc(v: Any) -> Any:
            if isinstance(v, cls):
                return v.value
            raise _Fail(f"expected {label}, got {_tname(v)}")

        def dec(d: Any) -> Any:
            try:
                return by_value[(d.__class__, d)]
            except (KeyError, TypeError):
                pass
            if d.__class__ in kinds:
                try:
                    return cls(d)  # composite flags and _missing_ hooks
                except ValueError:
                    pass
            raise _Fail(f"{d!r} is not a valid {label}")

        return _Node(label, enc, dec, kinds, (cls,))

    def _literal(self, values: Iterable[Any], where: str) -> _Node:
        to_json: dict[tuple[type, Any], Any] = {}
        from_json: dict[tuple[type, Any], Any] = {}
        for value in values:
            raw = value.value if isinstance(value, enum.Enum) else value
            if raw.__class__ not in (str, int, bool, _NoneType):
                raise DefinitionError(f"unsupported Literal value {value!r} at {where}")
            jkey = (raw.__class__, raw)
            if jkey in from_json and from_json[jkey] is not value:
                raise DefinitionError(
                    f"Literal values {from_json[jkey]!r} and {value!r} at {where} "
                    "encode to the same JSON"
                )
            to_json[(value.__class__, value)] = raw
            from_json[jkey] = value
        allowed = ", ".join(repr(v) for v in from_json.values())
        label = f"Literal[{allowed}]"

        def enc(v: Any) -> Any:
            try:
                return to_json[(v.__class__, v)]
            except (KeyError, TypeError):
                raise _Fail(f"{v!r} is not one of {allowed}") from None

        def dec(d: Any) -> Any:
            try:
                return from_json[(d.__class__, d)]
            except (KeyError, TypeError):
                raise _Fail(f"{d!r} is not one of {allowed}") from None

        kinds = {k for k, _ in from_json}
        return _Node(label, enc, dec, kinds, tuple({k for k, _ in to_json}))

    # ----------------------------------------------------------------- unions

    def _union(self, args: tuple[Any, ...], where: str) -> _Node:
        flat: list[Any] = []
        literal_values: list[Any] = []
        _flatten_union(args, flat, literal_values)
        nodes = [
            self._literal(literal_values, where) if arg is Literal else self.node(arg, where)
            for arg in flat
        ]
        if _ANY in nodes:
            if all(n is _ANY or n is _NONE for n in nodes):
                return _ANY
            raise DefinitionError(f"Any cannot be combined with other types in a union at {where}")
        label = " | ".join(n.label for n in nodes)
        if len(nodes) == 2 and _NONE in nodes:
            return self._optional(nodes[0] if nodes[1] is _NONE else nodes[1], label)
        models = [n for n in nodes if n.model is not None]
        tagged = len(models) >= 2
        by_kind = _kind_dispatch(nodes, label, where)
        if models:
            by_kind[dict] = self._tag_dispatch(models, label, where) if tagged else models[0].dec

        def dec(d: Any) -> Any:
            fn = by_kind.get(d.__class__)
            if fn is None:
                raise _Fail(f"expected {label}, got {_kind(d)}")
            return fn(d)

        enc = _type_dispatch(nodes, tagged, label)
        all_types = tuple(t for n in nodes for t in n.types)
        return _Node(label, enc, dec, by_kind, all_types)

    @staticmethod
    def _optional(inner: _Node, label: str) -> _Node:
        ienc, idec = inner.enc, inner.dec

        def enc(v: Any) -> Any:
            return None if v is None else ienc(v)

        def dec(d: Any) -> Any:
            return None if d is None else idec(d)

        return _Node(
            label, enc, dec, inner.kinds | {_NoneType}, (*inner.types, _NoneType), weak=inner.weak
        )

    @staticmethod
    def _tag_dispatch(models: list[_Node], label: str, where: str) -> _Fn:
        by_tag: dict[str, _Fn] = {}
        for n in models:
            assert n.model is not None  # noqa: S101 - narrows the type: models have a class
            tag = tag_of(n.model)
            if tag in by_tag:
                raise DefinitionError(f"duplicate type tag {tag!r} in union {label} at {where}")
            by_tag[tag] = n.dec
        known = ", ".join(repr(t) for t in by_tag)

        def dec(d: Any) -> Any:
            tag = d.get(_TYPE_KEY)
            fn = by_tag.get(tag) if tag.__class__ is str else None
            if fn is None:
                if _TYPE_KEY not in d:
                    raise _Fail(f'missing "$type" key; expected one of {known}')
                raise _Fail(f'unknown "$type" {tag!r}; expected one of {known}')
            return fn(d)

        return dec

    # ----------------------------------------------------------------- classes

    def _dataclass(self, cls: type, where: str) -> _Node:
        label = cls.__qualname__
        box: dict[str, _Fn] = {}

        def enc_later(v: Any) -> Any:
            return box["enc"](v)

        def tenc_later(v: Any) -> Any:
            return box["tenc"](v)

        def dec_later(d: Any) -> Any:
            return box["dec"](d)

        node = _Node(label, enc_later, dec_later, (dict,), (cls,), model=cls, tenc=tenc_later)
        self.new[cls] = node  # recursive references see this node while fields compile
        try:
            hints = typing.get_type_hints(cls, include_extras=True)
        except Exception as exc:
            raise DefinitionError(
                f"cannot resolve the type hints of {label} at {where}: {exc}"
            ) from exc
        specs: list[tuple[str, _Node, Any, Any]] = []
        for f in dataclasses.fields(cls):
            if f.init:
                fnode = self.node(hints.get(f.name, f.type), f"{where}.{f.name}")
                specs.append((f.name, fnode, f.default, f.default_factory))
        all_fields: dict[str, dataclasses.Field[Any]] = getattr(cls, "__dataclass_fields__", {})
        for name, hint in hints.items():
            if isinstance(hint, dataclasses.InitVar) and (
                name not in all_fields or all_fields[name].default is dataclasses.MISSING
            ):
                raise DefinitionError(
                    f"init-only field {label}.{name} at {where} needs a default to be decodable"
                )
        enc, tenc, dec = _generate_dataclass(cls, label, tag_of(cls), specs)
        box.update(enc=enc, tenc=tenc, dec=dec)
        node.enc, node.tenc, node.dec = enc, tenc, dec
        return node

    def _model(self, cls: Any, where: str) -> _Node:
        from pydantic import ValidationError

        label = cls.__qualname__
        fields: Mapping[str, Any] = getattr(cls, "model_fields", {})
        for name, info in fields.items():
            if _TYPE_KEY in (name, getattr(info, "alias", None)):
                raise DefinitionError(f"model {label} at {where} has a field named '$type'")
        tag = tag_of(cls)
        validate = cls.model_validate

        def enc(v: Any) -> Any:
            if not isinstance(v, cls):
                raise _Fail(f"expected {label}, got {_tname(v)}")
            try:
                return v.model_dump(mode="json")
            except (TypeError, ValueError) as exc:
                raise _Fail(f"cannot serialize {label}: {exc}", cause=exc) from None

        def tenc(v: Any) -> Any:
            dumped = enc(v)
            if dumped.__class__ is not dict:
                raise _Fail(f"{label} does not serialize to a JSON object")
            out = {_TYPE_KEY: tag}
            out.update(dumped)
            return out

        def dec(d: Any) -> Any:
            if d.__class__ is not dict:
                raise _Fail(f"expected object, got {_kind(d)}")
            if _TYPE_KEY in d and d[_TYPE_KEY] == tag:
                d = {k: v for k, v in d.items() if k != _TYPE_KEY}
            try:
                return validate(d)
            except ValidationError as exc:
                errors = exc.errors()
                first = errors[0] if errors else {"loc": (), "msg": str(exc)}
                more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
                fail = _Fail(f"{label}: {first['msg']}{more}", cause=exc)
                fail.segments.extend(
                    f"[{p}]" if isinstance(p, int) else _seg(p) for p in reversed(first["loc"])
                )
                raise fail from None

        return _Node(label, enc, dec, (dict,), (cls,), model=cls, tenc=tenc)


def _flatten_union(args: Iterable[Any], flat: list[Any], literal_values: list[Any]) -> None:
    """Union members without Annotated wrappers; all Literal members merge into one."""
    for member in args:
        arg = member
        while typing.get_origin(arg) is typing.Annotated:
            arg = typing.get_args(arg)[0]
        origin = typing.get_origin(arg)
        if origin is Literal:
            if not literal_values:
                flat.append(Literal)  # position of the merged Literal member
            literal_values.extend(typing.get_args(arg))
        elif origin is typing.Union or origin is types.UnionType:
            _flatten_union(typing.get_args(arg), flat, literal_values)
        else:
            flat.append(arg)


def _kind_dispatch(nodes: list[_Node], label: str, where: str) -> dict[type, _Fn]:
    """Decoder per JSON value class for the non-class members of a union."""
    by_kind: dict[type, _Fn] = {}
    owner: dict[type, _Node] = {}
    for n in nodes:
        if n.model is not None:
            continue
        for k in n.kinds:
            if k in owner:
                raise DefinitionError(
                    f"ambiguous union {label} at {where}: {owner[k].label} and {n.label} "
                    f"both decode from a JSON {_KIND_NAMES[k]}"
                )
            owner[k] = n
            by_kind[k] = n.dec
    for n in nodes:
        for k in n.weak:
            by_kind.setdefault(k, n.dec)
    if dict in owner and any(n.model is not None for n in nodes):
        raise DefinitionError(
            f"ambiguous union {label} at {where}: {owner[dict].label} and a class "
            "both decode from a JSON object"
        )
    return by_kind


def _type_dispatch(nodes: list[_Node], tagged: bool, label: str) -> _Fn:
    """Encoder choosing the member by the value's exact class, then by isinstance in order."""
    table: dict[type, _Fn] = {}
    fallback: list[tuple[tuple[type, ...], _Fn]] = []
    for n in nodes:
        fn = n.tenc if tagged and n.model is not None else n.enc
        fallback.append((n.types, fn))
        for t in n.types:
            table.setdefault(t, fn)

    def enc(v: Any) -> Any:
        fn = table.get(v.__class__)
        if fn is None:
            for types_, candidate in fallback:
                if isinstance(v, types_):
                    fn = table[v.__class__] = candidate
                    break
            else:
                raise _Fail(f"a {_tname(v)} is not allowed here; expected {label}")
        return fn(v)

    return enc


_MISSING = dataclasses.MISSING


def _dataclass_helpers(label: str, tag: str, known: frozenset[str]) -> dict[str, Any]:
    """Error helpers called from generated dataclass code (kept out of the generated text)."""
    known_list = ", ".join(sorted(known)) or "none"

    def wrong_instance(v: Any) -> _Fail:
        return _Fail(f"expected {label}, got {_tname(v)}")

    def not_object(d: Any) -> _Fail:
        return _Fail(f"expected object for {label}, got {_kind(d)}")

    def missing(name: str) -> _Fail:
        return _Fail(f"missing required field {name!r} of {label}", "." + name)

    def unknown(d: dict[str, Any], n: int) -> None:
        if len(d) == n + 1 and d.get(_TYPE_KEY) == tag:
            return  # written while this class was a member of a tagged union
        for key in d:
            if key not in known:
                raise _Fail(f"unknown field {key!r} for {label} (fields: {known_list})", _seg(key))

    def construct_failed(exc: Exception) -> _Fail:
        return _Fail(f"cannot construct {label}: {exc}", cause=exc)

    return {
        "_Fail": _Fail,
        "_MISSING": _MISSING,
        "_locate_fields": _locate_fields,
        "_wrong_instance": wrong_instance,
        "_not_object": not_object,
        "_missing": missing,
        "_unknown": unknown,
        "_construct_failed": construct_failed,
    }


def _field_decode_lines(i: int, name: str, node: _Node, default: Any, factory: Any) -> list[str]:
    """Decoder statements for one field, reading ``d`` into local ``f{i}``; counts into ``n``."""
    key = repr(name)
    convert = [
        "try:",
        f"    f{i} = _d{i}(f{i})",
        "except _Fail as exc:",
        f"    exc.segments.append('.{name}')",
        "    raise",
    ]
    if node.passthrough is not None:  # skip the call when the JSON value is already right
        convert = [f"if f{i}.__class__ is not _t{i}:", *("    " + line for line in convert)]
    lines = [f"f{i} = d.get({key}, _MISSING)"]
    if default is _MISSING and factory is _MISSING:
        missing = [f"if f{i} is _MISSING:", f"    raise _missing({key})"]
        if node.passthrough is not None:  # the missing check moves behind the type check
            return [*lines, convert[0], *("    " + line for line in missing), *convert[1:]]
        return [*lines, *missing, *convert]
    fill = f"_default{i}" if default is not _MISSING else f"_factory{i}()"
    return [
        *lines,
        f"if f{i} is _MISSING:",
        f"    f{i} = {fill}",
        "else:",
        "    n += 1",
        *("    " + line for line in convert),
    ]


def _generate_dataclass(
    cls: type, label: str, tag: str, specs: list[tuple[str, _Node, Any, Any]]
) -> tuple[_Fn, _Fn, _Fn]:
    """Generate straight-line encoder/decoder code: no per-field loop, direct attribute access."""
    ns = _dataclass_helpers(label, tag, frozenset(name for name, _, _, _ in specs))
    ns.update(_cls=cls, _tag=tag, _fields=[(name, node.enc) for name, node, _, _ in specs])
    items: list[str] = []
    body: list[str] = []
    required = 0
    for i, (name, node, default, factory) in enumerate(specs):
        ns.update({f"_e{i}": node.enc, f"_d{i}": node.dec, f"_t{i}": node.passthrough})
        ns.update({f"_default{i}": default, f"_factory{i}": factory})
        if node.passthrough is not None:
            items.append(f"{name!r}: x if (x := v.{name}).__class__ is _t{i} else _e{i}(x)")
        else:
            items.append(f"{name!r}: _e{i}(v.{name})")
        required += default is _MISSING and factory is _MISSING
        body += ("    " + line for line in _field_decode_lines(i, name, node, default, factory))
    kwargs = ", ".join(f"{name}=f{i}" for i, (name, _, _, _) in enumerate(specs))
    plain = ", ".join(items)
    check = [
        "    if v.__class__ is not _cls and not isinstance(v, _cls):",
        "        raise _wrong_instance(v)",
        "    try:",
    ]
    locate = ["    except _Fail as exc:", "        raise _locate_fields(exc, v, _fields) from None"]
    src = "\n".join(
        [
            "def encode(v):",
            *check,
            f"        return {{{plain}}}",
            *locate,
            "def encode_tagged(v):",
            *check,
            f"        return {{'$type': _tag, {plain}}}",
            *locate,
            "def decode(d):",
            "    if d.__class__ is not dict:",
            "        raise _not_object(d)",
            f"    n = {required}",
            *body,
            "    if len(d) != n:",
            "        _unknown(d, n)",
            "    try:",
            f"        return _cls({kwargs})",
            "    except (TypeError, ValueError) as exc:",
            "        raise _construct_failed(exc) from None",
            "",
        ]
    )
    # S102: the source is generated from the dataclass's own field names and types (code of
    # the application, known when the codec is built), never from stored data
    exec(compile(src, f"<workflows4py codec for {label}>", "exec"), ns)  # noqa: S102
    return ns["encode"], ns["encode_tagged"], ns["decode"]


# --------------------------------------------------------------------------- public API


def encoder_for(tp: Any) -> Callable[[Any], Any]:
    """A function turning values of ``tp`` into plain JSON-compatible Python values.

    Raises :class:`DefinitionError` now if ``tp`` is unsupported, :class:`EncodeError` later
    for values that do not fit.
    """
    enc = _compile(tp).enc

    def encode(value: Any) -> Any:
        try:
            return enc(value)
        except _Fail as exc:
            raise _encode_error(exc) from exc.cause

    return encode


def decoder_for(tp: Any) -> Callable[[Any], Any]:
    """A function turning plain JSON-compatible Python values into values of ``tp``.

    Raises :class:`DefinitionError` now if ``tp`` is unsupported, :class:`DecodeError` (with
    ``path``) later for data that does not fit.
    """
    dec = _compile(tp).dec

    def decode(data: Any) -> Any:
        try:
            return dec(data)
        except _Fail as exc:
            raise _decode_error(exc) from exc.cause

    return decode


def _top_level_members(tp: Any) -> list[Any]:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(tp) for m in _top_level_members(arg)]
    return [tp]


class JsonCodec(Generic[T]):
    """Converts values of a class, or a union of classes, to ``(tag, JSON)`` and back."""

    __slots__ = ("_by_tag", "_by_type", "_classes", "_known", "members")

    members: Mapping[str, type]

    @overload
    def __init__(self, tp: type[T]) -> None: ...

    @overload
    def __init__(self, tp: Any) -> None: ...

    def __init__(self, tp: Any) -> None:
        classes = _top_level_members(tp)
        for cls in classes:
            if not _is_class_member(cls):
                raise DefinitionError(
                    f"JsonCodec members must be dataclasses or pydantic models, "
                    f"got {_type_name(cls)} (in {_type_name(tp)})"
                )
        members: dict[str, type] = {}
        self._by_type: dict[type, tuple[str, _Fn]] = {}
        self._by_tag: dict[str, _Fn] = {}
        for cls in classes:
            node = _compile(cls)
            tag = tag_of(cls)
            if tag in members:
                raise DefinitionError(
                    f"duplicate type tag {tag!r} in {_type_name(tp)}: "
                    f"{members[tag].__qualname__} and {cls.__qualname__}"
                )
            members[tag] = cls
            self._by_type[cls] = (tag, node.enc)
            self._by_tag[tag] = node.dec
        self.members = types.MappingProxyType(members)
        self._classes = tuple(classes)
        self._known = ", ".join(repr(t) for t in members)

    def _entry(self, value: object) -> tuple[str, _Fn]:
        entry = self._by_type.get(value.__class__)
        if entry is not None:
            return entry
        for cls in self._classes:
            if isinstance(value, cls):
                return self._by_type[cls]
        allowed = ", ".join(c.__qualname__ for c in self._classes)
        raise EncodeError(f"cannot encode a {_tname(value)}: expected one of {allowed}")

    def encode(self, value: T) -> tuple[str, str]:
        """``(tag, compact JSON text of the payload)``; the tag is not part of the payload."""
        tag, enc = self._entry(value)
        try:
            return tag, _dumps(enc(value))
        except _Fail as exc:
            raise _encode_error(exc) from exc.cause
        except ValueError as exc:  # e.g. a NaN produced by a pydantic serializer
            raise EncodeError(f"cannot encode {tag}: {exc}") from None

    def decode(self, tag: str, data: str | bytes) -> T:
        """Inverse of :meth:`encode`."""
        dec = self._decoder(tag)
        try:
            obj = _loads(data if isinstance(data, str) else data.decode("utf-8"))
        except (ValueError, TypeError) as exc:
            raise DecodeError(f"invalid JSON for {tag}: {exc}") from None
        try:
            return dec(obj)  # type: ignore[no-any-return]
        except _Fail as exc:
            raise _decode_error(exc) from exc.cause

    def to_jsonable(self, value: T) -> tuple[str, Any]:
        """``(tag, payload as plain JSON-compatible Python)``."""
        tag, enc = self._entry(value)
        try:
            return tag, enc(value)
        except _Fail as exc:
            raise _encode_error(exc) from exc.cause

    def from_jsonable(self, tag: str, data: Any) -> T:
        """Inverse of :meth:`to_jsonable`."""
        dec = self._decoder(tag)
        try:
            return dec(data)  # type: ignore[no-any-return]
        except _Fail as exc:
            raise _decode_error(exc) from exc.cause

    def validate(self, value: object) -> bool:
        """Whether ``value`` is an instance of one of the members."""
        return value.__class__ in self._by_type or isinstance(value, self._classes)

    def _decoder(self, tag: str) -> _Fn:
        dec = self._by_tag.get(tag)
        if dec is None:
            raise DecodeError(f"unknown type tag {tag!r}; known tags: {self._known}")
        return dec

    def __repr__(self) -> str:
        return f"JsonCodec({' | '.join(c.__qualname__ for c in self._classes)})"
