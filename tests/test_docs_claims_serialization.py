"""Claims of docs/serialization.md, checked through the public API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, Literal, TypedDict
from uuid import UUID

import pytest
from claims_common import Counted, St
from pydantic import BaseModel, ConfigDict

from workflows4py import (
    WIO,
    DecodeError,
    DefinitionError,
    EncodeError,
    InMemoryRuntime,
    JsonCodec,
    Workflow,
    type_tag,
)


@dataclass(frozen=True)
class Foreign:
    n: int


class Colour(Enum):
    RED = "red"


@dataclass(frozen=True)
class Everything:
    text: str
    number: float
    flag: bool
    nothing: None
    amount: Decimal
    when: datetime
    day: date
    at: time
    delay: timedelta
    uid: UUID
    raw: bytes
    colour: Colour
    mode: Literal["a", "b"]
    items: list[int]
    pair: tuple[str, int]
    tags: frozenset[str]
    by_id: dict[int, str]
    loose: Any


def test_the_field_table() -> None:
    codec: JsonCodec[Everything] = JsonCodec(Everything)
    value = Everything(
        text="t",
        number=1.5,
        flag=True,
        nothing=None,
        amount=Decimal("12.50"),
        when=datetime(2024, 5, 1, 9, 30),  # naive stays naive
        day=date(2024, 5, 1),
        at=time(9, 30),
        delay=timedelta(days=1, hours=2, minutes=3, seconds=4.5),
        uid=UUID("12345678-1234-5678-1234-567812345678"),
        raw=b"\x00\x01",
        colour=Colour.RED,
        mode="b",
        items=[1, 2],
        pair=("x", 1),
        tags=frozenset({"b", "a"}),
        by_id={1: "one"},
        loose={"any": [1, "json"]},
    )
    tag, text = codec.encode(value)
    assert tag == "Everything"
    assert text == (
        '{"text":"t","number":1.5,"flag":true,"nothing":null,"amount":"12.50",'
        '"when":"2024-05-01T09:30:00","day":"2024-05-01","at":"09:30:00",'
        '"delay":"P1DT2H3M4.5S","uid":"12345678-1234-5678-1234-567812345678",'
        '"raw":"AAE=","colour":"red","mode":"b","items":[1,2],"pair":["x",1],'
        '"tags":["a","b"],"by_id":{"1":"one"},"loose":{"any":[1,"json"]}}'
    )
    assert codec.decode(tag, text) == value


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_floats_are_refused(bad: float) -> None:
    @dataclass(frozen=True)
    class Measure:
        x: float

    with pytest.raises(EncodeError):
        JsonCodec(Measure).encode(Measure(bad))


def test_any_must_already_be_json_native() -> None:
    @dataclass(frozen=True)
    class Loose:
        x: Any

    with pytest.raises(EncodeError):
        JsonCodec(Loose).encode(Loose({"when": datetime(2024, 1, 1)}))


def test_ambiguous_unions_and_duplicate_tags_are_definition_errors() -> None:
    @dataclass(frozen=True)
    class Ambiguous:
        x: datetime | str

    with pytest.raises(DefinitionError):
        JsonCodec(Ambiguous)

    @type_tag("same")
    @dataclass(frozen=True)
    class One:
        pass

    @type_tag("same")
    @dataclass(frozen=True)
    class Two:
        pass

    with pytest.raises(DefinitionError):
        JsonCodec(One | Two)


def test_the_default_tag_is_the_qualified_name_and_not_inherited_when_explicit() -> None:
    class Holder:
        @dataclass(frozen=True)
        class Inner:
            pass

    @type_tag("stable.Parent")
    @dataclass(frozen=True)
    class Parent:
        pass

    @dataclass(frozen=True)
    class Child(Parent):
        pass

    codec: JsonCodec[Any] = JsonCodec(Holder.Inner | Parent | Child)
    assert set(codec.members) == {
        "test_the_default_tag_is_the_qualified_name_and_not_inherited_when_explicit.<locals>"
        ".Holder.Inner",
        "stable.Parent",
        "test_the_default_tag_is_the_qualified_name_and_not_inherited_when_explicit.<locals>.Child",
    }


@dataclass(frozen=True)
class Person:
    name: str


@dataclass(frozen=True)
class Holder:
    person: Person | None


def test_a_single_class_union_writes_no_type_key() -> None:
    codec: JsonCodec[Holder] = JsonCodec(Holder)
    assert codec.encode(Holder(Person("ann")))[1] == '{"person":{"name":"ann"}}'
    assert codec.decode("Holder", '{"person":null}') == Holder(None)


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ('{"n":"2"}', "$.n"),  # the wrong kind of value
        ("{}", "$"),  # a missing required field
        ('{"n":1,"m":2}', "$.m"),  # an unknown field
        ('{"n":NaN}', "$"),
        ("{not json", "$"),
    ],
)
def test_strict_decoding(data: str, path: str) -> None:
    with pytest.raises(DecodeError) as info:
        JsonCodec(Counted).decode("Counted", data)
    assert info.value.path.startswith(path)


def test_an_unknown_tag_does_not_decode() -> None:
    with pytest.raises(DecodeError, match="unknown type tag"):
        JsonCodec(Counted).decode("Nope", '{"n":1}')


@dataclass(frozen=True)
class A:
    x: int


@dataclass(frozen=True)
class B:
    y: int


@dataclass(frozen=True)
class Before:
    a: A


@type_tag("Before")
@dataclass(frozen=True)
class Optional:
    a: A | None


@type_tag("Before")
@dataclass(frozen=True)
class TwoClasses:
    a: A | B


def test_widening_a_field_to_optional_is_safe_but_to_two_classes_is_not() -> None:
    old = JsonCodec(Before).encode(Before(A(1)))
    assert JsonCodec(Optional).decode(*old) == Optional(A(1))
    with pytest.raises(DecodeError):
        JsonCodec(TwoClasses).decode(*old)


async def test_an_unsupported_state_type_fails_when_the_runtime_is_created() -> None:
    @dataclass(frozen=True)
    class Unstorable:
        handle: complex

    class Flow(Workflow[Unstorable, Counted]):
        definition = WIO.pure(Unstorable, lambda s: s)

    with pytest.raises(DefinitionError):
        InMemoryRuntime(Flow, initial_state=Unstorable(1j))


async def test_a_flat_map_step_recording_a_foreign_event_is_an_encode_error() -> None:
    def record(s: St) -> Foreign:
        return Foreign(1)

    class Flow(Workflow[St, Counted]):
        definition = WIO.pure(St, lambda s: s).flat_map(
            lambda s: WIO.run_io(record).handle_event(lambda s, e: St(e.n))
        )

    runtime = InMemoryRuntime(Flow, initial_state=St())  # the step does not exist yet
    with pytest.raises(EncodeError):
        await runtime.create_instance("f-1")
    assert await (await runtime.get_instance("f-1")).get_journal() == []


# -- the codec on pydantic -------------------------------------------------------------------


def test_scalars_as_the_field_table_says() -> None:
    from types import MappingProxyType

    from workflows4py.serialization import decoder_for, encoder_for

    assert encoder_for(int)(True) == 1
    assert decoder_for(Decimal)(12) == Decimal(12)
    utc = datetime(2024, 5, 1, tzinfo=UTC)
    assert encoder_for(datetime)(utc) == "2024-05-01T00:00:00+00:00"
    assert decoder_for(datetime)("2024-05-01T00:00:00Z") == utc
    assert encoder_for(bytes)(b"\xfb\xff") == "+/8="  # standard base64, not URL-safe
    assert encoder_for(Mapping[str, int])({"a": 1}) == {"a": 1}
    with pytest.raises(EncodeError):
        encoder_for(Mapping[str, int])(MappingProxyType({"a": 1}))


class Address(TypedDict):
    street: str
    number: int


def test_a_typeddict_is_an_object_refusing_unknown_keys() -> None:
    codec: JsonCodec[Address] = JsonCodec(Address)
    assert codec.encode(Address(street="Main", number=1)) == (
        "Address",
        '{"street":"Main","number":1}',
    )
    with pytest.raises(DecodeError, match="unknown field 'floor'"):
        codec.decode("Address", '{"street":"Main","number":1,"floor":2}')


class Lax(BaseModel):
    qty: int


class Strict(BaseModel):
    model_config = ConfigDict(strict=True)
    qty: int


class Extra(BaseModel):
    model_config = ConfigDict(extra="ignore")
    qty: int


def test_a_pydantic_model_decides_about_coercion_but_not_about_unknown_fields() -> None:
    assert JsonCodec(Lax).decode("Lax", '{"qty":"2"}') == Lax(qty=2)
    with pytest.raises(DecodeError):
        JsonCodec(Strict).decode("Strict", '{"qty":"2"}')
    with pytest.raises(DecodeError, match=r"^\$\.more: unknown field 'more' for Lax"):
        JsonCodec(Lax).decode("Lax", '{"qty":2,"more":1}')
    assert JsonCodec(Extra).decode("Extra", '{"qty":2,"more":1}') == Extra(qty=2)


@dataclass(frozen=True)
class Measured:
    value: complex


def test_a_step_recording_what_cannot_be_stored_is_named_as_the_page_shows() -> None:
    def measure(s: St) -> Measured:
        return Measured(1j)

    class Flow(Workflow[St, Measured]):
        record = WIO.run_io(measure, event=Measured).handle_event(lambda s, e: s)
        definition = record

    with pytest.raises(DefinitionError) as caught:
        Flow.codecs()
    assert str(caught.value) == (
        "Flow: step 'Record' records Measured, which cannot be stored: unsupported type "
        "complex at Measured.value: use a dataclass, a pydantic model, a TypedDict, a JSON "
        "scalar, a supported standard type or a container of those"
    )


def test_a_codec_describes_its_tagged_values() -> None:
    schema = JsonCodec(Foreign | Counted).json_schema("state")
    assert [alt["required"] for alt in schema["oneOf"]] == [["type", "state"]] * 2
    assert schema["discriminator"] == {"propertyName": "type"}
