"""Tests for the typed JSON codec (``workflows4py.serialization``)."""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import InitVar, dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, NewType, Optional, TypeVar, Union

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from workflows4py import DecodeError, DefinitionError, EncodeError, JsonCodec, type_tag
from workflows4py.serialization import decoder_for, encoder_for, tag_of

T = TypeVar("T")

# --------------------------------------------------------------------------- fixtures (types)


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Mood(enum.StrEnum):
    HAPPY = "happy"
    GRUMPY = "grumpy"


UserId = NewType("UserId", str)


@dataclass(frozen=True)
class Point:
    x: int
    y: int


@dataclass(frozen=True)
class Label:
    text: str


@dataclass(frozen=True)
class CommitNotFound:
    pass


@dataclass(frozen=True)
class PipelineFailed:
    pass


@dataclass(frozen=True)
class ReviewRejected:
    pass


@dataclass(frozen=True)
class Checked:
    commit: str
    reason: CommitNotFound | PipelineFailed | ReviewRejected


@dataclass(frozen=True)
class Empty:
    pass


@dataclass(frozen=True)
class Initiated:
    owner: str


@dataclass(frozen=True)
class Closed:
    state: State  # forward reference to the alias defined below


State = Empty | Initiated | Closed


@dataclass(frozen=True)
class Tree:
    name: str
    children: list[Tree] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class Created:
    order_id: uuid.UUID
    amount: Decimal
    note: str = ""
    lines: tuple[str, ...] = ()


@type_tag("payment.captured.v1")
@dataclass(frozen=True)
class Captured:
    order_id: uuid.UUID


@dataclass(frozen=True)
class CapturedAgain(Captured):
    """Subclass: must not inherit the parent's explicit tag."""


@dataclass
class WithInitFalse:
    a: int
    b: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.b = self.a * 2


@dataclass
class WithInitVar:
    a: int
    scale: InitVar[int] = 1

    def __post_init__(self, scale: int) -> None:
        self.a *= scale


@dataclass
class Validated:
    qty: int

    def __post_init__(self) -> None:
        if self.qty < 0:
            raise ValueError("qty must not be negative")


@dataclass
class Inner:
    a: int
    b: list[int]


@dataclass
class Outer:
    inner: Inner
    items: list[Inner] = field(default_factory=list)
    by_name: dict[str, Inner] = field(default_factory=dict)


@dataclass
class OptionalHolder:
    inner: Inner | None = None


class Item(BaseModel):
    sku: str
    qty: int = Field(ge=0)


class Basket(BaseModel):
    items: list[Item]
    at: datetime


@dataclass
class Order:
    basket: Basket
    note: str = ""


@dataclass
class Shipped:
    carrier: str


@dataclass
class Mixed:
    event: Item | Shipped


@dataclass
class Rich:
    count: int
    name: str
    ratio: float
    maybe: int | None
    tags: list[str]
    scores: dict[str, float]
    shape: Point | Label | None
    at: datetime
    delay: timedelta
    amount: Decimal
    ids: frozenset[int] = frozenset()


@dataclass
class NotSupported:
    pass


class Plain:
    """Not a dataclass: unsupported as a field type."""


@dataclass
class BadField:
    ok: int
    bad: Plain


@dataclass
class Box(Generic[T]):
    item: T


@dataclass
class BadCallable:
    fn: Callable[[int], int]


@dataclass
class BadAmbiguous:
    when: datetime | str


@type_tag("Point")
@dataclass
class FakePoint:
    x: int


@dataclass
class DuplicateTags:
    p: Point | FakePoint


@dataclass
class BadKey:
    m: dict[float, int]


@dataclass
class AnyHolder:
    payload: Any
    extra: object = None


@dataclass
class Narrowed:
    """After evolution from ``inner: Point | Label`` to ``inner: Point``."""

    inner: Point


# --------------------------------------------------------------------------- helpers


def roundtrip(tp: Any, value: Any) -> Any:
    encoded = encoder_for(tp)(value)
    text = json.dumps(encoded, allow_nan=False)
    return decoder_for(tp)(json.loads(text))


# --------------------------------------------------------------------------- scalars & containers

UID = uuid.UUID("12345678-1234-5678-1234-567812345678")
AWARE = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))

CASES: list[tuple[Any, Any, Any]] = [
    (int, 5, 5),
    (int, -(10**30), -(10**30)),
    (float, 1.5, 1.5),
    (float, -0.0, -0.0),
    (str, "héllo ✓", "héllo ✓"),
    (bool, True, True),
    (type(None), None, None),
    (None, None, None),
    (bytes, b"\x00\xffabc", "AP9hYmM="),
    (Decimal, Decimal("1.10"), "1.10"),
    (Decimal, Decimal("-1E+3"), "-1E+3"),
    (datetime, datetime(2024, 5, 6, 7, 8, 9), "2024-05-06T07:08:09"),
    (datetime, AWARE, "2024-05-06T07:08:09.123456+02:00"),
    (date, date(2024, 2, 29), "2024-02-29"),
    (time, time(23, 59, 58, 1), "23:59:58.000001"),
    (time, time(1, 2, tzinfo=UTC), "01:02:00+00:00"),
    (
        timedelta,
        timedelta(days=1, hours=2, minutes=3, seconds=4, microseconds=5),
        "P1DT2H3M4.000005S",
    ),
    (uuid.UUID, UID, str(UID)),
    (Color, Color.GREEN, "green"),
    (Priority, Priority.HIGH, 2),
    (Mood, Mood.GRUMPY, "grumpy"),
    (Literal["a", "b", 3], "b", "b"),
    (Literal["a", "b", 3], 3, 3),
    (Literal[Color.RED], Color.RED, "red"),
    (UserId, UserId("u-1"), "u-1"),
    (Annotated[int, "meta"], 7, 7),
    (Any, {"a": [1, 2.5, None, True, "x"]}, {"a": [1, 2.5, None, True, "x"]}),
    (object, [1, {"k": "v"}], [1, {"k": "v"}]),
    (list[int], [3, 1, 2], [3, 1, 2]),
    (list[list[str]], [["a"], []], [["a"], []]),
    (Sequence[str], ["x", "y"], ["x", "y"]),
    (tuple[int, ...], (1, 2, 3), [1, 2, 3]),
    (tuple[int, str], (1, "a"), [1, "a"]),
    (tuple[()], (), []),
    (set[int], {3, 1, 2}, [1, 2, 3]),
    (frozenset[str], frozenset({"b", "a"}), ["a", "b"]),
    (set[Color], {Color.RED, Color.GREEN}, ["green", "red"]),
    (dict[str, int], {"a": 1, "b": 2}, {"a": 1, "b": 2}),
    (dict[int, str], {1: "a", -20: "b"}, {"1": "a", "-20": "b"}),
    (dict[Color, int], {Color.RED: 1}, {"red": 1}),
    (dict[Priority, str], {Priority.LOW: "l"}, {"1": "l"}),
    (dict[uuid.UUID, int], {UID: 1}, {str(UID): 1}),
    (Mapping[str, list[int]], {"k": [1]}, {"k": [1]}),
    (Optional[int], None, None),  # noqa: UP045 - the typing spelling must work too
    (Optional[int], 4, 4),  # noqa: UP045
    (int | None, 4, 4),
    (Union[int, str], "s", "s"),  # noqa: UP007
    (int | float, 2, 2),
    (int | float, 2.5, 2.5),
    (int | str | None, "x", "x"),
    (list[int] | None, [1], [1]),
    (Literal["a"] | Literal["b"] | None, "b", "b"),
    (Point, Point(1, 2), {"x": 1, "y": 2}),
    (Point | None, Point(1, 2), {"x": 1, "y": 2}),
    (Point | Label, Label("t"), {"$type": "Label", "text": "t"}),
    (
        list[Point | Label],
        [Point(0, 0), Label("l")],
        [
            {"$type": "Point", "x": 0, "y": 0},
            {"$type": "Label", "text": "l"},
        ],
    ),
    (Point | Label | int | None, 5, 5),
    (dict[str, Point | Label], {"a": Label("t")}, {"a": {"$type": "Label", "text": "t"}}),
]


@pytest.mark.parametrize(("tp", "value", "expected"), CASES, ids=[repr(c[0]) for c in CASES])
def test_roundtrip(tp: Any, value: Any, expected: Any) -> None:
    encoded = encoder_for(tp)(value)
    assert encoded == expected
    assert type(encoded) is type(expected)
    decoded = roundtrip(tp, value)
    assert decoded == value
    assert type(decoded) is type(value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "PT0S"),
        (timedelta(seconds=-5), "-PT5S"),
        (timedelta(days=3), "P3D"),
        (timedelta(hours=1), "PT1H"),
        (timedelta(minutes=90), "PT1H30M"),
        (timedelta(seconds=1, microseconds=500000), "PT1.5S"),
        (timedelta(microseconds=-1), "-PT0.000001S"),
        (timedelta(days=-1, hours=2), "-PT22H"),
        (timedelta.max, "P999999999DT23H59M59.999999S"),
        (timedelta.min, "-P999999999D"),
    ],
)
def test_timedelta_is_exact_iso_duration(value: timedelta, text: str) -> None:
    assert encoder_for(timedelta)(value) == text
    assert decoder_for(timedelta)(text) == value


@pytest.mark.parametrize("text", ["P", "PT", "1D", "P1Y", "P1W", "PT1.1234567S", "P-1D", " PT1S"])
def test_timedelta_rejects_invalid_durations(text: str) -> None:
    with pytest.raises(DecodeError, match="duration"):
        decoder_for(timedelta)(text)


def test_datetime_keeps_naive_and_offset() -> None:
    naive = roundtrip(datetime, datetime(2020, 1, 1, 12))
    assert naive.tzinfo is None
    aware = roundtrip(datetime, AWARE)
    assert aware.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize("micros", [1, -7, 999999])
def test_subsecond_utc_offsets_survive(micros: int) -> None:
    tz = timezone(timedelta(microseconds=micros))
    for value in (datetime(2000, 1, 1, tzinfo=tz), time(1, 2, tzinfo=tz)):
        decoded = roundtrip(type(value), value)
        assert decoded.utcoffset() == value.utcoffset()
    assert roundtrip(datetime, datetime(2000, 1, 1, tzinfo=UTC)).tzinfo is UTC
    assert decoder_for(datetime)("2000-01-01T00:00:00Z").tzinfo is UTC


def test_float_accepts_json_integers_and_int_rejects_bools() -> None:
    decoded = decoder_for(float)(3)
    assert decoded == 3.0
    assert type(decoded) is float
    assert encoder_for(float)(3) == 3.0
    with pytest.raises(DecodeError, match="expected integer, got boolean"):
        decoder_for(int)(True)
    # pydantic's int serializer writes a bool as the integer it is (True == 1)
    assert encoder_for(int)(True) == 1
    with pytest.raises(EncodeError, match="expected bool, got int"):
        encoder_for(bool)(1)


def test_subclasses_of_scalars_encode_as_plain_values() -> None:
    assert type(encoder_for(str)(Mood.HAPPY)) is str
    assert encoder_for(int)(Priority.HIGH) == 2
    assert encoder_for(int | None)(Priority.LOW) == 1


def test_sets_of_unorderable_items_still_encode() -> None:
    encoded = encoder_for(frozenset[Point])(frozenset({Point(1, 2), Point(0, 0)}))
    assert sorted(json.dumps(e) for e in encoded) == [
        '{"x": 0, "y": 0}',
        '{"x": 1, "y": 2}',
    ]


# --------------------------------------------------------------------------- dataclass features


def test_empty_dataclass_union_roundtrips_to_the_right_class() -> None:
    codec = JsonCodec(Checked)
    for reason in (CommitNotFound(), PipelineFailed(), ReviewRejected()):
        tag, data = codec.encode(Checked("abc", reason))
        assert tag == "Checked"
        assert json.loads(data)["reason"] == {"$type": type(reason).__qualname__}
        decoded = codec.decode(tag, data)
        assert type(decoded.reason) is type(reason)


def test_recursive_union_through_forward_reference() -> None:
    codec: JsonCodec[State] = JsonCodec(State)
    assert set(codec.members) == {"Empty", "Initiated", "Closed"}
    value = Closed(Closed(Initiated("ann")))
    tag, data = codec.encode(value)
    assert tag == "Closed"
    assert json.loads(data) == {
        "state": {"$type": "Closed", "state": {"$type": "Initiated", "owner": "ann"}}
    }
    assert codec.decode(tag, data) == value


def test_recursive_dataclass() -> None:
    tree = Tree("root", [Tree("a"), Tree("b", [Tree("c")])])
    codec = JsonCodec(Tree)
    assert codec.decode(*codec.encode(tree)) == tree


def test_kw_only_slots_frozen_defaults() -> None:
    codec = JsonCodec(Created)
    value = Created(order_id=UID, amount=Decimal("9.99"), lines=("a", "b"))
    tag, data = codec.encode(value)
    assert data == (
        '{"order_id":"12345678-1234-5678-1234-567812345678","amount":"9.99","note":"",'
        '"lines":["a","b"]}'
    )
    assert codec.decode(tag, data) == value


def test_adding_a_field_with_a_default_is_a_safe_evolution() -> None:
    old_payload = '{"order_id":"12345678-1234-5678-1234-567812345678","amount":"1"}'
    decoded = JsonCodec(Created).decode("Created", old_payload)
    assert decoded.note == ""
    assert decoded.lines == ()


def test_init_false_fields_are_skipped() -> None:
    codec = JsonCodec(WithInitFalse)
    tag, data = codec.encode(WithInitFalse(3))
    assert data == '{"a":3}'
    assert codec.decode(tag, data).b == 6


def test_init_var_with_default_is_not_encoded() -> None:
    codec = JsonCodec(WithInitVar)
    tag, data = codec.encode(WithInitVar(2))
    assert data == '{"a":2}'
    assert codec.decode(tag, data) == WithInitVar(2)


def test_post_init_failure_becomes_decode_error() -> None:
    with pytest.raises(DecodeError, match=r"\$\.inner: cannot construct Validated") as info:
        decoder_for(dict[str, Validated])({"inner": {"qty": -1}})
    assert isinstance(info.value.__cause__, ValueError)


def test_narrowing_a_union_to_its_member_accepts_old_payloads() -> None:
    decoded = JsonCodec(Narrowed).decode("Narrowed", '{"inner":{"$type":"Point","x":1,"y":2}}')
    assert decoded == Narrowed(Point(1, 2))
    with pytest.raises(DecodeError, match=r"\$\.inner\[\"\$type\"\]: unknown field"):
        JsonCodec(Narrowed).decode("Narrowed", '{"inner":{"$type":"Label","x":1,"y":2}}')


def test_to_and_from_jsonable() -> None:
    codec = JsonCodec(Outer)
    value = Outer(Inner(1, [2]), [Inner(3, [])], {"k": Inner(4, [5])})
    tag, plain = codec.to_jsonable(value)
    assert plain == {
        "inner": {"a": 1, "b": [2]},
        "items": [{"a": 3, "b": []}],
        "by_name": {"k": {"a": 4, "b": [5]}},
    }
    assert codec.from_jsonable(tag, plain) == value


def test_any_fields_pass_native_json_through() -> None:
    codec = JsonCodec(AnyHolder)
    value = AnyHolder({"a": [1, {"b": None}]}, extra=[1.5])
    assert codec.decode(*codec.encode(value)) == value


def test_codec_validate_and_members() -> None:
    codec: JsonCodec[Point | Label] = JsonCodec(Point | Label)
    assert dict(codec.members) == {"Point": Point, "Label": Label}
    assert codec.validate(Point(1, 2))
    assert not codec.validate(Empty())
    assert not codec.validate("Point")


def test_encode_subclass_instance_uses_parent_member() -> None:
    codec = JsonCodec(Captured)
    tag, data = codec.encode(CapturedAgain(UID))
    assert tag == "payment.captured.v1"
    assert codec.decode(tag, data) == Captured(UID)
    assert codec.validate(CapturedAgain(UID))


# --------------------------------------------------------------------------- tags


def test_explicit_type_tag() -> None:
    assert tag_of(Captured) == "payment.captured.v1"
    codec = JsonCodec(Captured)
    assert dict(codec.members) == {"payment.captured.v1": Captured}
    tag, data = codec.encode(Captured(UID))
    assert tag == "payment.captured.v1"
    assert codec.decode("payment.captured.v1", data) == Captured(UID)


def test_subclass_does_not_inherit_explicit_tag() -> None:
    assert tag_of(CapturedAgain) == "CapturedAgain"
    assert tag_of(Point) == "Point"
    assert tag_of(Tree) == "Tree"


def test_type_tag_on_slots_dataclass_and_pydantic_model() -> None:
    @type_tag("slotted")
    @dataclass(slots=True)
    class Slotted:
        a: int

    @type_tag("model")
    class Model(BaseModel):
        a: int

    assert tag_of(Slotted) == "slotted"
    assert tag_of(Model) == "model"
    assert JsonCodec(Model).encode(Model(a=1)) == ("model", '{"a":1}')


@pytest.mark.parametrize("tag", ["", "has space", "tab\there", "x" * 201])
def test_invalid_type_tags(tag: str) -> None:
    with pytest.raises(DefinitionError, match="tag"):
        type_tag(tag)


def test_type_tag_accepts_200_chars() -> None:
    @type_tag("x" * 200)
    @dataclass
    class Long:
        pass

    assert tag_of(Long) == "x" * 200


# --------------------------------------------------------------------------- pydantic


def test_pydantic_model_member() -> None:
    codec = JsonCodec(Item)
    tag, data = codec.encode(Item(sku="A-1", qty=2))
    assert (tag, data) == ("Item", '{"sku":"A-1","qty":2}')
    assert codec.decode(tag, data) == Item(sku="A-1", qty=2)


def test_pydantic_model_nested_in_dataclass() -> None:
    codec = JsonCodec(Order)
    value = Order(Basket(items=[Item(sku="x", qty=1)], at=AWARE), note="n")
    tag, data = codec.encode(value)
    assert json.loads(data)["basket"]["at"] == "2024-05-06T07:08:09.123456+02:00"
    assert codec.decode(tag, data) == value


def test_pydantic_validation_error_becomes_decode_error_with_path() -> None:
    codec = JsonCodec(Order)
    bad = '{"basket":{"items":[{"sku":"x","qty":-1}],"at":"2024-01-01T00:00:00"}}'
    with pytest.raises(DecodeError, match=r"^\$\.basket\.items\[0\]\.qty: Basket: ") as info:
        codec.decode("Order", bad)
    assert info.value.path == "$.basket.items[0].qty"


def test_pydantic_model_in_tagged_union() -> None:
    codec = JsonCodec(Mixed)
    for value in (Mixed(Item(sku="s", qty=1)), Mixed(Shipped("dhl"))):
        tag, data = codec.encode(value)
        assert '"$type"' in data
        assert codec.decode(tag, data) == value


def test_plain_types_are_members_of_a_codec() -> None:
    codec: JsonCodec[Any] = JsonCodec(int | Point | tuple[int, str] | Literal["a", "b"])
    assert list(codec.members) == ["int", "Point", "tuple[int, str]", "Literal['a', 'b']"]
    for value in (5, Point(1, 2), (1, "x"), "b"):
        tag, data = codec.encode(value)
        assert codec.decode(tag, data) == value
    assert codec.encode(5) == ("int", "5")
    assert codec.encode((1, "x")) == ("tuple[int, str]", '[1,"x"]')
    with pytest.raises(EncodeError, match="cannot encode a float: expected one of int, Point"):
        codec.encode(1.5)


# --------------------------------------------------------------------------- decode errors


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        ('{"items":[]}', "$.inner", "missing required field 'inner'"),
        ('{"inner":{"a":1}}', "$.inner.b", "missing required field 'b'"),
        ('{"inner":{"a":1,"b":[],"c":0}}', "$.inner.c", "unknown field 'c'"),
        ('{"inner":{"a":1,"b":[]},"x y":0}', '$["x y"]', "unknown field 'x y'"),
        ('{"inner":{"a":"1","b":[]}}', "$.inner.a", "expected integer, got string"),
        ('{"inner":{"a":1,"b":[1,2,null]}}', "$.inner.b[2]", "expected integer, got null"),
        ('{"inner":{"a":1,"b":[]},"items":[{"a":1,"b":[]},{"a":1}]}', "$.items[1].b", "missing"),
        ('{"inner":{"a":1,"b":[]},"by_name":{"k":{"a":1.5,"b":[]}}}', "$.by_name.k.a", "integer"),
        ('{"inner":[]}', "$.inner", "expected object for Inner, got array"),
        ("[]", "$", "expected object for Outer, got array"),
    ],
)
def test_decode_error_paths(data: str, path: str, message: str) -> None:
    with pytest.raises(DecodeError) as info:
        JsonCodec(Outer).decode("Outer", data)
    assert info.value.path == path
    assert str(info.value).startswith(path + ": ")
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("tp", "data", "path", "message"),
    [
        (tuple[int, str], [1], "$", "expected an array of 2 items, got 1"),
        (tuple[int, str], [1, 2], "$[1]", "expected string"),
        (tuple[()], [1], "$", "expected an array of 0 items, got 1"),
        (dict[int, str], {"01": "a"}, '$["01"]', "invalid key '01'"),
        (dict[Color, int], {"blue": 1}, "$.blue", "invalid key 'blue'"),
        (Color, "blue", "$", "'blue' is not a valid Color"),
        (Literal["a", "b"], "c", "$", "'c' is not one of 'a', 'b'"),
        (bytes, "not base64!", "$", "invalid base64"),
        (Decimal, "abc", "$", "invalid decimal"),
        (Decimal, "NaN", "$", "not finite"),
        (uuid.UUID, "nope", "$", "invalid UUID"),
        (datetime, "yesterday", "$", "invalid ISO 8601 datetime"),
        (date, 20240101, "$", "expected an ISO 8601 date string, got integer"),
        (int | str, 1.5, "$", "expected int | str, got number"),
        (list[Point | Label], [{"x": 1, "y": 2}], "$[0]", 'missing "$type" key'),
        (list[Point | Label], [{"$type": "Circle"}], "$[0]", "unknown \"$type\" 'Circle'"),
        (list[Point | Label], [{"$type": 3}], "$[0]", "expected one of 'Point', 'Label'"),
        (Point | Label, {"$type": "Point", "x": 1}, "$.y", "missing required field 'y'"),
        (Point | None, {"x": "1", "y": 2}, "$.x", "expected integer"),
    ],
)
def test_decode_errors_of_types(tp: Any, data: Any, path: str, message: str) -> None:
    with pytest.raises(DecodeError) as info:
        decoder_for(tp)(data)
    assert info.value.path == path
    assert message in str(info.value)


def test_decode_unknown_tag_names_known_tags() -> None:
    codec: JsonCodec[State] = JsonCodec(State)
    with pytest.raises(DecodeError, match="unknown type tag 'Opened'") as info:
        codec.decode("Opened", "{}")
    assert "'Empty', 'Initiated', 'Closed'" in str(info.value)
    with pytest.raises(DecodeError, match="unknown type tag"):
        codec.from_jsonable("Opened", {})


@pytest.mark.parametrize("text", ["{", "", "not json", '{"owner": NaN}', '{"owner": Infinity}'])
def test_decode_invalid_json(text: str) -> None:
    with pytest.raises(DecodeError, match=r"^\$: invalid JSON"):
        JsonCodec(Initiated).decode("Initiated", text)


# --------------------------------------------------------------------------- encode errors


def test_encode_non_member_names_type_and_members() -> None:
    codec: JsonCodec[Point | Label] = JsonCodec(Point | Label)
    bad: Any = Empty()
    with pytest.raises(EncodeError, match="cannot encode a Empty: expected one of Point, Label"):
        codec.encode(bad)
    with pytest.raises(EncodeError, match="Empty"):
        codec.to_jsonable(bad)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_encode_non_finite_float(value: float) -> None:
    codec = JsonCodec(Rich)
    rich = Rich(1, "n", value, None, [], {}, None, AWARE, timedelta(0), Decimal(1))
    with pytest.raises(EncodeError, match=r"\$\.ratio: float .* cannot be stored in JSON"):
        codec.encode(rich)
    nested = Rich(1, "n", 0.0, None, [], {"k": value}, None, AWARE, timedelta(0), Decimal(1))
    with pytest.raises(EncodeError, match=r"\$\.scores\.k"):
        codec.encode(nested)


@pytest.mark.parametrize(
    ("tp", "value", "message"),
    [
        (Inner, Inner(1, [1, "2"]), r"\$\.b\[1\]: expected int, got str"),  # type: ignore[list-item]
        (int, "1", r"\$: expected int, got str"),
        (date, datetime(2020, 1, 1), "expected date, got datetime"),
        (Decimal, Decimal("NaN"), "only finite decimals"),
        (Any, {"a": (1, 2)}, r"\$\.a: a tuple is not JSON-native"),
        (Any, {1: "x"}, "object keys must be str"),
        (Any, [float("nan")], r"\$\[0\]: float nan"),
        (Point | Label, Empty(), "a Empty is not allowed here; expected Point | Label"),
        (Literal["a"], "b", "'b' is not one of 'a'"),
        (dict[int, str], {"1": "a"}, "invalid key '1': expected int, got str"),
        (tuple[int, int], (1,), "expected tuple"),
        (list[int], (1, 2), "expected list, got tuple"),
        (Color, "red", "expected Color, got str"),
    ],
)
def test_encode_errors(tp: Any, value: Any, message: str) -> None:
    with pytest.raises(EncodeError, match=message):
        encoder_for(tp)(value)


# --------------------------------------------------------------------------- definition errors


@pytest.mark.parametrize(
    ("tp", "message"),
    [
        (BadField, r"unsupported type Plain at BadField\.bad"),
        (Box, r"type variable ~T at Box\.item"),
        (BadCallable, r"at BadCallable\.fn"),
        (BadAmbiguous, r"ambiguous union datetime \| str at BadAmbiguous\.when"),
        (DuplicateTags, r"duplicate type tag 'Point' in union Point \| FakePoint at Dup"),
        (BadKey, r"unsupported mapping key type float at BadKey\.m"),
        (Plain, "unsupported type Plain at Plain: use a dataclass, a pydantic model"),
        (Point | FakePoint, "duplicate type tag 'Point'"),
    ],
)
def test_definition_errors_in_codec(tp: Any, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        JsonCodec(tp)


@pytest.mark.parametrize(
    ("tp", "message"),
    [
        (Plain, "unsupported type Plain"),
        (list[Plain], r"unsupported type Plain at list\[Plain\]\[\]"),
        (Box[int], "parametrized generic class"),
        (T, "type variable"),
        (Callable[[int], int], "unsupported type"),
        (int | Any, "Any cannot be combined"),
        (uuid.UUID | str, "ambiguous union"),
        (list[int] | tuple[int, ...], "ambiguous union"),
        (dict[str, int] | Point, "both decode from a JSON object"),
        (dict[bool, int], "unsupported mapping key type bool"),
        ("Point", "unresolved forward reference"),
        (Literal[1.5], "unsupported Literal value"),
    ],
)
def test_definition_errors_of_types(tp: Any, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        encoder_for(tp)


def test_failed_definition_is_not_cached() -> None:
    with pytest.raises(DefinitionError):
        JsonCodec(BadField)
    with pytest.raises(DefinitionError):
        JsonCodec(BadField)


def test_nested_definition_error_names_the_field_path() -> None:
    @dataclass
    class Wrapper:
        inner: list[BadField]

    with pytest.raises(DefinitionError, match=r"Plain at .*Wrapper\.inner\[\]\.bad"):
        JsonCodec(Wrapper)


# --------------------------------------------------------------------------- properties

offsets = st.timedeltas(
    min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)
)


def fixed_offset(offset: timedelta) -> timezone:
    return timezone(offset)


finite_floats = st.floats(allow_nan=False, allow_infinity=False)

rich_values = st.builds(
    Rich,
    count=st.integers(),
    name=st.text(),
    ratio=finite_floats,
    maybe=st.none() | st.integers(),
    tags=st.lists(st.text()),
    scores=st.dictionaries(st.text(), finite_floats),
    shape=st.none() | st.builds(Point, st.integers(), st.integers()) | st.builds(Label, st.text()),
    # naive or aware (hypothesis' overloads take bounds only with all-naive or all-aware zones)
    at=st.one_of(
        st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)),
        st.datetimes(
            min_value=datetime(2, 1, 1),
            max_value=datetime(9998, 12, 31),
            timezones=offsets.map(fixed_offset),
        ),
    ),
    delay=st.timedeltas(),
    amount=st.decimals(allow_nan=False, allow_infinity=False),
    ids=st.frozensets(st.integers()),
)


@settings(max_examples=300, deadline=None)
@given(rich_values)
def test_property_roundtrip(value: Rich) -> None:
    codec = JsonCodec(Rich)
    tag, data = codec.encode(value)
    decoded = codec.decode(tag, data)
    assert decoded == value
    assert decoded.at.utcoffset() == value.at.utcoffset()
    assert str(decoded.amount) == str(value.amount)
    assert codec.encode(decoded) == (tag, data)
