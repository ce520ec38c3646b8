"""Property tests: every kind of type the codec supports round-trips through the journal's
codec (the same text again on re-encoding) and through a snapshot (the initial state, step
inputs and outputs, and values a step returns bare)."""

from __future__ import annotations

import enum
import json
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal, NotRequired, TypedDict

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field
from test_codec import Label, Mood, Point
from test_codec import Priority as Level

from workflows4py import WIO, JsonCodec, Workflow
from workflows4py.engine import Execution, decode_execution, encode_execution, snapshot_types


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclass(frozen=True)
class Tree:
    name: str
    children: tuple[Tree, ...] = ()


class Address(TypedDict):
    street: str
    number: int
    floor: NotRequired[int]


class Item(BaseModel):
    sku: str
    qty: int = Field(ge=0)
    at: datetime | None = None


@dataclass(frozen=True)
class Everything:
    """One field of every kind the codec supports."""

    uid: uuid.UUID
    raw: bytes
    count: int
    ratio: float
    text: str
    nothing: None
    flag: bool
    when: datetime
    amount: Decimal
    at: time
    day: date
    delay: timedelta
    colour: Colour
    level: Level
    mood: Mood
    mode: Literal["a", "b"]
    mixed: Literal[0, 1, True, "x"]
    items: list[int]
    pair: tuple[str, int]
    rest: tuple[float, ...]
    tags: frozenset[str]
    ids: set[int]
    scores: dict[str, float]
    by_id: dict[int, str]
    by_colour: dict[Colour, Level]
    shape: Point | Label | None
    maybe: int | None
    either: int | str
    loose: Any
    address: Address
    item: Item
    tree: Tree
    shapes: list[Point | Label] = field(default_factory=list)


class Holder(Workflow[Everything, Point]):
    """A workflow whose state holds every kind: its snapshots encode them all."""

    definition = WIO.pure(Everything, lambda s: s) >> WIO.pure(Everything, lambda s: s)


finite = st.floats(allow_nan=False, allow_infinity=False)
offsets = st.timedeltas(
    min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)
).map(lambda d: timezone(timedelta(minutes=int(d.total_seconds() // 60))))
instants = st.one_of(
    st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)),
    st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=offsets),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
points = st.builds(Point, st.integers(), st.integers())
labels = st.builds(Label, st.text())
trees = st.recursive(
    st.builds(Tree, st.text(max_size=3)),
    lambda inner: st.builds(Tree, st.text(max_size=3), st.tuples(inner) | st.tuples(inner, inner)),
    max_leaves=5,
)
addresses = st.builds(
    lambda street, number, floor: (
        Address(street=street, number=number)
        if floor is None
        else Address(street=street, number=number, floor=floor)
    ),
    st.text(),
    st.integers(),
    st.none() | st.integers(),
)
everything = st.builds(
    Everything,
    count=st.integers(),
    text=st.text(),
    ratio=finite,
    flag=st.booleans(),
    nothing=st.none(),
    amount=st.decimals(allow_nan=False, allow_infinity=False),
    when=instants,
    day=st.dates(),
    at=st.times() | st.times(timezones=offsets),
    delay=st.timedeltas(),
    uid=st.uuids(),
    raw=st.binary(),
    colour=st.sampled_from(Colour),
    level=st.sampled_from(Level),
    mood=st.sampled_from(Mood),
    mode=st.sampled_from(["a", "b"]),
    mixed=st.sampled_from([0, 1, True, "x"]),
    items=st.lists(st.integers()),
    pair=st.tuples(st.text(), st.integers()),
    rest=st.lists(finite).map(tuple),
    tags=st.frozensets(st.text()),
    ids=st.sets(st.integers()),
    scores=st.dictionaries(st.text(), finite),
    by_id=st.dictionaries(st.integers(), st.text()),
    by_colour=st.dictionaries(st.sampled_from(Colour), st.sampled_from(Level)),
    shape=st.none() | points | labels,
    maybe=st.none() | st.integers(),
    either=st.integers() | st.text(),
    loose=json_values,
    address=addresses,
    item=st.builds(Item, sku=st.text(), qty=st.integers(min_value=0), at=st.none() | instants),
    tree=trees,
    shapes=st.lists(points | labels, max_size=3),
)


def same(a: Any, b: Any) -> None:
    """Equal, and of the same classes and offsets all the way down."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, datetime | time):
        assert a.utcoffset() == b.utcoffset()
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            same(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            same(x, y)
    elif isinstance(a, Everything | Tree | Point | Label):
        for name in a.__dataclass_fields__:
            same(getattr(a, name), getattr(b, name))
    elif isinstance(a, Decimal):
        assert str(a) == str(b)
    else:
        assert a == b


CODEC: JsonCodec[Everything] = JsonCodec(Everything)


@settings(max_examples=200, deadline=None)
@given(everything)
def test_every_kind_round_trips_through_the_journal_codec(value: Everything) -> None:
    tag, text = CODEC.encode(value)
    decoded = CODEC.decode(tag, text)
    same(decoded, value)
    assert CODEC.encode(decoded) == (tag, text)
    assert CODEC.from_jsonable(*CODEC.to_jsonable(value)) == value


@settings(max_examples=100, deadline=None)
@given(everything)
def test_every_kind_round_trips_through_a_snapshot(value: Everything) -> None:
    execution = Execution.start(Holder.definition, value)
    restored = decode_execution(encode_execution(execution, Holder), Holder, value)
    same(restored.initial_state, value)
    same(restored.state, execution.state)
    assert restored.progress() == execution.progress()


bare = st.one_of(
    st.integers(),
    st.text(),
    finite,
    st.booleans(),
    st.none(),
    st.decimals(allow_nan=False, allow_infinity=False),
    instants,
    st.dates(),
    st.times(),
    st.timedeltas(),
    st.uuids(),
    st.binary(),
    st.sampled_from(Colour),
    st.sampled_from(Level),
    st.sampled_from(Mood),
    points,
    labels,
    trees,
    st.lists(st.integers()).map(tuple),
    st.frozensets(st.integers()),
    st.dictionaries(st.integers(), st.text()),
)


@settings(max_examples=300, deadline=None)
@given(bare)
def test_a_value_a_step_returns_bare_round_trips_through_a_snapshot(value: Any) -> None:
    """A step's input or output of no declared type: written by its own class."""
    table = snapshot_types(Holder)
    decoded = table.dec(json.loads(json.dumps(table.enc(value))))
    same(decoded, value)


plain_states = st.one_of(
    st.integers(), st.tuples(st.integers(), st.text()), st.sampled_from(["a", "b"]), points
)
PLAIN: JsonCodec[Any] = JsonCodec(int | tuple[int, str] | Literal["a", "b"] | Point)


@settings(max_examples=200, deadline=None)
@given(plain_states)
def test_a_plain_type_round_trips_as_a_member_of_a_codec(value: Any) -> None:
    tag, text = PLAIN.encode(value)
    same(PLAIN.decode(tag, text), value)
