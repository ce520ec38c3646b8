"""The leaves: JSON scalars and the standard types the codec writes as one JSON value.

Most are pydantic-core's own schemas, strict (no string-to-number coercion). A few keep
the library's canonical form with a small Python function, because pydantic's differs:
``datetime`` and ``time`` are written by ``isoformat()`` (UTC as ``+00:00``, never ``Z``)
and read by ``fromisoformat`` (so the offset comes back as a ``datetime.timezone``);
``timedelta`` as an exact ISO 8601 duration in days, hours, minutes and seconds (pydantic
counts years); ``bytes`` as standard base64 (pydantic writes the URL-safe alphabet);
``Any`` must already be JSON-native, checked deeply. Each ``check_*`` finds why a value
does not fit, for the message of an :class:`EncodeError`.
"""

from __future__ import annotations

import binascii
import decimal
import math
import re
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any, TypeVar

from pydantic_core import CoreSchema, PydanticCustomError
from pydantic_core import core_schema as cs

from ._common import Fail, json_kind, segment, value_type
from ._nodes import Node

__all__ = [
    "ANY",
    "NONE",
    "SCALARS",
    "check_json",
    "decode_timedelta",
    "encode_timedelta",
    "invalid",
]

_NoneType = type(None)
_D = TypeVar("_D", datetime, time)
JSON_KINDS = (_NoneType, bool, int, float, str, list, dict)


def invalid(message: str) -> PydanticCustomError:
    """The error a Python validator raises: its message is what the DecodeError says."""
    return PydanticCustomError("workflows4py", "{message}", {"message": message})


def _is(cls: type, name: str) -> Callable[[Any], None]:
    def check(v: Any) -> None:
        if v.__class__ is not cls and not (isinstance(v, cls) and not isinstance(v, bool)):
            raise Fail(f"expected {name}, got {value_type(v)}")

    return check


def _check_none(v: Any) -> None:
    if v is not None:
        raise Fail(f"expected None, got {value_type(v)}")


def _check_bool(v: Any) -> None:
    if v is not True and v is not False:
        raise Fail(f"expected bool, got {value_type(v)}")


def _check_float(v: Any) -> None:
    if not isinstance(v, int | float) or isinstance(v, bool):
        raise Fail(f"expected float, got {value_type(v)}")
    if isinstance(v, float) and not math.isfinite(v):
        raise Fail(f"float {v!r} cannot be stored in JSON")


def _check_decimal(v: Any) -> None:
    if not isinstance(v, decimal.Decimal):
        raise Fail(f"expected Decimal, got {value_type(v)}")
    if not v.is_finite():
        raise Fail(f"Decimal {v} cannot be stored (only finite decimals are supported)")


def _check_date(v: Any) -> None:
    # a datetime is a date: written into a date field it would lose its time
    if not isinstance(v, date) or isinstance(v, datetime):
        raise Fail(f"expected date, got {value_type(v)}")


# -- datetime and time: isoformat / fromisoformat -----------------------------------------

_SUBSECOND_OFFSET = re.compile(r"([+-])00:00:00\.(\d{6})", re.ASCII)


def _subsecond_offset(value: _D, text: str) -> _D:
    """CPython 3.11 parses a UTC offset below one second (``+00:00:00.000001``) as UTC."""
    m = _SUBSECOND_OFFSET.search(text, len(text) - 16)
    if m is None or m.end() != len(text):
        return value
    micros = int(m[2]) * (-1 if m[1] == "-" else 1)
    return value.replace(tzinfo=timezone(timedelta(microseconds=micros)))


def _iso(cls: type[datetime] | type[time]) -> tuple[Callable[[Any], Any], Callable[[Any], str]]:
    name = cls.__name__
    parse = cls.fromisoformat

    def decode(d: Any) -> Any:
        if d.__class__ is not str:
            raise invalid(f"expected an ISO 8601 {name} string, got {json_kind(d)}")
        try:
            value: Any = parse(d)
        except ValueError:
            raise invalid(f"invalid ISO 8601 {name} {d!r}") from None
        if value.tzinfo is UTC and d[-6:] != "+00:00":
            return _subsecond_offset(value, d)
        return value

    def encode(v: Any) -> str:
        if v.__class__ is not cls and not isinstance(v, cls):
            raise TypeError(f"expected {name}, got {value_type(v)}")
        return v.isoformat()

    return decode, encode


def _iso_node(cls: type[datetime] | type[time], json_schema: CoreSchema) -> Node:
    decode, encode = _iso(cls)
    name = cls.__name__
    val = cs.no_info_plain_validator_function(decode, json_schema_input_schema=json_schema)
    ser = cs.is_instance_schema(
        cls, serialization=cs.plain_serializer_function_ser_schema(encode, return_schema=_STR)
    )
    return Node(name, "scalar", val, ser, _is(cls, name), kinds=(str,), types=(cls,))


# -- timedelta: an exact ISO 8601 duration ------------------------------------------------

_DURATION = re.compile(
    r"(-)?P(?:(\d+)D)?(?:(T)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:\.(\d{1,6}))?S)?)?", re.ASCII
)


def encode_timedelta(v: timedelta) -> str:
    """``"P1DT2H3M4.5S"``, ``"-PT5S"``: days, hours, minutes and seconds, exactly."""
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


def decode_timedelta(d: Any) -> timedelta:
    if d.__class__ is not str:
        raise invalid(f"expected an ISO 8601 duration string, got {json_kind(d)}")
    m = _DURATION.fullmatch(d)
    if m is None or (m[2] is None and m[3] is None) or (m[3] and m[4] is m[5] is m[6] is None):
        raise invalid(f"invalid ISO 8601 duration {d!r} (expected e.g. 'P1DT2H3M4.5S')")
    try:
        value = timedelta(
            days=int(m[2] or 0),
            hours=int(m[4] or 0),
            minutes=int(m[5] or 0),
            seconds=int(m[6] or 0),
            microseconds=int((m[7] or "").ljust(6, "0")),
        )
    except OverflowError:
        raise invalid(f"duration {d!r} is out of range") from None
    return -value if m[1] else value


# -- bytes: standard base64 -----------------------------------------------------------------


def _encode_bytes(v: Any) -> str:
    return binascii.b2a_base64(v, newline=False).decode("ascii")


def _decode_bytes(d: Any) -> bytes:
    if d.__class__ is not str:
        raise invalid(f"expected a base64 string, got {json_kind(d)}")
    try:
        return binascii.a2b_base64(d, strict_mode=True)
    except (binascii.Error, ValueError):
        raise invalid("invalid base64 string") from None


def _check_bytes(v: Any) -> None:
    if not isinstance(v, bytes | bytearray):
        raise Fail(f"expected bytes, got {value_type(v)}")


# -- Any: JSON-native values only -------------------------------------------------------------


def check_json(v: Any) -> None:
    """Refuse (a Fail with its path) what is not a JSON-native value, deeply."""
    cls = v.__class__
    if cls is str or cls is int or cls is bool or v is None:
        return
    if cls is float:
        if not math.isfinite(v):
            raise Fail(f"float {v!r} cannot be stored in JSON")
    elif cls is list:
        for i, item in enumerate(v):
            try:
                check_json(item)
            except Fail as exc:
                exc.segments.append(f"[{i}]")
                raise
    elif cls is dict:
        for key, item in v.items():
            if key.__class__ is not str:
                raise Fail(f"object keys must be str, got {value_type(key)}")
            try:
                check_json(item)
            except Fail as exc:
                exc.segments.append(segment(key))
                raise
    else:
        raise Fail(
            f"a {value_type(v)} is not JSON-native (allowed under Any: dict with str keys, "
            "list, str, int, float, bool, None)"
        )


def _decode_any(d: Any) -> Any:
    try:
        check_json(d)  # parsed JSON: only NaN and infinities can be refused here
    except Fail as exc:
        raise invalid(f"{exc.path()}: {exc.message}") from None
    return d


def _encode_any(v: Any) -> Any:
    check_json(v)
    return v


# -- the table --------------------------------------------------------------------------------

_STR = cs.str_schema()


def _simple(  # noqa: PLR0917 - the table below reads better positionally
    label: str,
    val: CoreSchema,
    ser: CoreSchema,
    check: Callable[[Any], None],
    kinds: tuple[type, ...],
    types: tuple[type, ...],
    weak: tuple[type, ...] = (),
) -> Node:
    return Node(label, "scalar", val, ser, check, kinds=kinds, types=types, weak=weak)


def _decimal() -> Node:
    # a JSON string or integer, then pydantic's decimal parsing (finite values only)
    kind = cs.union_schema(
        [cs.str_schema(strict=True), cs.int_schema(strict=True)],
        custom_error_type="workflows4py_decimal",
        custom_error_message="expected a decimal string",
    )
    val = cs.chain_schema([kind, cs.decimal_schema(strict=False, allow_inf_nan=False)])
    return _simple(
        "Decimal", val, cs.decimal_schema(), _check_decimal, (str,), (decimal.Decimal,), (int,)
    )


def _any() -> Node:
    val = cs.no_info_plain_validator_function(_decode_any, json_schema_input_schema=cs.any_schema())
    ser = cs.any_schema(serialization=cs.plain_serializer_function_ser_schema(_encode_any))
    return Node("Any", "any", val, ser, check_json, kinds=JSON_KINDS, types=(object,))


def _bytes() -> Node:
    val = cs.no_info_plain_validator_function(
        _decode_bytes, json_schema_input_schema=cs.str_schema()
    )
    ser = cs.bytes_schema(
        serialization=cs.plain_serializer_function_ser_schema(_encode_bytes, return_schema=_STR)
    )
    return _simple("bytes", val, ser, _check_bytes, (str,), (bytes, bytearray))


def _timedelta() -> Node:
    val = cs.no_info_plain_validator_function(
        decode_timedelta, json_schema_input_schema=cs.timedelta_schema()
    )
    ser = cs.timedelta_schema(
        serialization=cs.plain_serializer_function_ser_schema(encode_timedelta, return_schema=_STR)
    )
    return _simple("timedelta", val, ser, _is(timedelta, "timedelta"), (str,), (timedelta,))


ANY = _any()
NONE = _simple("None", cs.none_schema(), cs.none_schema(), _check_none, (_NoneType,), (_NoneType,))

SCALARS: dict[Any, Node] = {
    Any: ANY,
    object: ANY,
    None: NONE,
    _NoneType: NONE,
    bool: _simple(
        "bool", cs.bool_schema(strict=True), cs.bool_schema(), _check_bool, (bool,), (bool,)
    ),
    int: _simple(
        "int", cs.int_schema(strict=True), cs.int_schema(), _is(int, "int"), (int,), (int,)
    ),
    float: _simple(
        "float",
        cs.float_schema(strict=True, allow_inf_nan=False),
        cs.float_schema(),
        _check_float,
        (float,),
        (float, int),
        (int,),
    ),
    str: _simple(
        "str", cs.str_schema(strict=True), cs.str_schema(), _is(str, "str"), (str,), (str,)
    ),
    bytes: _bytes(),
    decimal.Decimal: _decimal(),
    datetime: _iso_node(datetime, cs.datetime_schema()),
    date: _simple(
        "date", cs.date_schema(strict=True), cs.date_schema(), _check_date, (str,), (date,)
    ),
    time: _iso_node(time, cs.time_schema()),
    timedelta: _timedelta(),
    uuid.UUID: _simple(
        "UUID",
        cs.uuid_schema(strict=True),
        cs.uuid_schema(),
        _is(uuid.UUID, "UUID"),
        (str,),
        (uuid.UUID,),
    ),
}
