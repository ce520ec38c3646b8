"""From a type annotation to a :class:`Node`: the codec's rules, as pydantic-core schemas.

The rules are the library's (see ``docs/serialization.md``): dataclasses, pydantic models
and TypedDicts are JSON objects with unknown keys refused; a union of two or more classes
is told apart by ``"$type"`` inside the member's object; other union members by the kind
of JSON value, and two members reading the same kind are a DefinitionError; mapping keys
encode to strings or integers. Each type is compiled once (cached); a failure is not cached.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import sys
import threading
import types
import typing
from collections import abc
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeVar

from pydantic_core import CoreSchema, PydanticCustomError
from pydantic_core import core_schema as cs

from workflows4py._errors import DefinitionError

from ._common import Fail, kind_name, segment, type_name, value_type
from ._nodes import Node, define, reference
from ._report import UNION_CLASSES
from ._scalars import ANY, NONE, SCALARS, invalid
from ._tags import TYPE_KEY, tag_of

__all__ = ["SER_CONFIG", "compile_type", "is_class", "is_model", "is_typeddict"]

_NoneType = type(None)
_LIST_ORIGINS: dict[Any, bool] = {list: True, abc.Sequence: False, abc.MutableSequence: False}
_SET_ORIGINS: dict[Any, type] = {
    set: set,
    frozenset: frozenset,
    abc.Set: frozenset,
    abc.MutableSet: set,
}
_MAP_ORIGINS = (dict, abc.Mapping, abc.MutableMapping)
_BARE_GENERICS = (list, tuple, set, frozenset, dict, *_LIST_ORIGINS, *_SET_ORIGINS, *_MAP_ORIGINS)
_INT_KEY = r"^-?(?:0|[1-9][0-9]*)$"
_ENUM_KINDS: dict[frozenset[type], Literal["str", "int", "float"]] = {
    frozenset({str}): "str",
    frozenset({int}): "int",
    frozenset({float}): "float",
}
# a NaN or an infinity is written as a string, which the codec looks for and refuses
SER_CONFIG: cs.CoreConfig = {"ser_json_inf_nan": "strings"}
_CLASS_CONFIG: cs.CoreConfig = {**SER_CONFIG, "extra_fields_behavior": "forbid"}

_CACHE: dict[Any, Node] = {}
_LOCK = threading.RLock()


def is_model(tp: Any) -> bool:
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(tp, type) and issubclass(tp, pydantic.BaseModel)


def is_typeddict(tp: Any) -> bool:
    return typing.is_typeddict(tp)


def is_class(tp: Any) -> bool:
    """A dataclass or a pydantic model: a class whose instances a union tells apart."""
    return isinstance(tp, type) and (dataclasses.is_dataclass(tp) or is_model(tp))


def _hashable(tp: Any) -> bool:
    try:
        hash(tp)
    except TypeError:
        return False
    return True


def compile_type(
    tp: Any, where: str | None = None, namespace: Mapping[str, Any] | None = None
) -> Node:
    """The node of ``tp`` (built once); DefinitionError, naming where, if it is unsupported.

    ``namespace`` resolves the string annotations of classes defined inside a function.
    """
    if _hashable(tp):
        node = _CACHE.get(tp)
        if node is not None:
            return node
    with _LOCK:
        compiler = _Compiler(namespace)
        node = compiler.node(tp, where or type_name(tp))
        _CACHE.update(compiler.new)  # only complete, successful compilations are cached
    return node


def _ref(cls: type, variant: str = "") -> str:
    """The ref of a class's schema; a JSON Schema names its definition after the class
    (``Point``, and ``Point_tagged`` for the variant in a union, which requires "$type")."""
    return f"{cls.__module__}.{cls.__qualname__}{variant}:{id(cls)}"


def _tagging(tag: str) -> Any:
    """A serializer function writing ``"$type"`` first, then the class's own fields."""

    def write(value: Any, handler: Any) -> Any:
        out = {TYPE_KEY: tag}
        out.update(handler(value))
        return out

    return write


def _untagging(tag: str) -> Any:
    """A validator function dropping the ``"$type"`` of the class itself (a union's member,
    or a class that was one when the payload was written)."""

    def strip(d: Any) -> Any:
        if d.__class__ is dict and d.get(TYPE_KEY) == tag:
            return {k: v for k, v in d.items() if k != TYPE_KEY}
        return d

    return strip


class _Compiler:
    def __init__(self, namespace: Mapping[str, Any] | None) -> None:
        self.namespace = dict(namespace or {})
        self.new: dict[Any, Node] = {}
        self.active: set[Any] = set()

    def node(self, tp: Any, where: str) -> Node:
        if not _hashable(tp):
            return self._build(tp, where)
        node = _CACHE.get(tp) or self.new.get(tp)
        if node is not None:
            return node
        if tp in self.active:
            raise DefinitionError(
                f"recursive type {type_name(tp)} at {where}: recursion must go through a "
                "dataclass or model"
            )
        self.active.add(tp)
        try:
            node = self._build(tp, where)
        finally:
            self.active.discard(tp)
        self.new[tp] = node
        return node

    def _build(self, tp: Any, where: str) -> Node:
        if _hashable(tp) and tp in SCALARS:
            return SCALARS[tp]
        if isinstance(tp, typing.NewType):
            return self.node(tp.__supertype__, where)
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in (typing.Annotated, typing.Final, typing.Required, typing.NotRequired):
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
            if is_model(tp):
                return self._model(tp, where)
            if is_typeddict(tp):
                return self._typeddict(tp, where)
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
            f"unsupported type {type_name(tp)} at {where}: use a dataclass, a pydantic model, "
            "a TypedDict, a JSON scalar, a supported standard type or a container of those"
        )

    # ----------------------------------------------------------------- containers

    def _generic(self, origin: Any, args: tuple[Any, ...], tp: Any, where: str) -> Node:
        if origin in _LIST_ORIGINS:
            return self._list(_LIST_ORIGINS[origin], args[0] if args else Any, where)
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
        if is_class(origin):
            raise DefinitionError(
                f"parametrized generic class {type_name(tp)} at {where} is not supported"
            )
        raise DefinitionError(f"unsupported type {type_name(tp)} at {where}")

    def _list(self, exact: bool, item_tp: Any, where: str) -> Node:
        item = self.node(item_tp, where + "[]")
        wanted = "list" if exact else "a sequence"

        def check(v: Any) -> None:
            if v.__class__ is not list and (
                exact or not isinstance(v, abc.Sequence) or isinstance(v, str | bytes | bytearray)
            ):
                raise Fail(f"expected {wanted}, got {value_type(v)}")
            _check_items(item, v)

        ser: CoreSchema = cs.list_schema(item.ser)
        if not exact:
            ser = cs.union_schema([ser, cs.tuple_schema([item.ser], variadic_item_index=0)])
        val = cs.list_schema(item.val, strict=True)
        classes = (list,) if exact else (list, tuple, abc.Sequence)
        label = f"list[{item.label}]"
        return Node(label, "list", val, ser, check, kinds=(list,), types=classes, items=(item,))

    def _var_tuple(self, item_tp: Any, where: str) -> Node:
        item = self.node(item_tp, where + "[]")

        def check(v: Any) -> None:
            if not isinstance(v, tuple):
                raise Fail(f"expected tuple, got {value_type(v)}")
            _check_items(item, v)

        val = cs.tuple_schema([item.val], variadic_item_index=0, strict=True)
        ser = cs.tuple_schema([item.ser], variadic_item_index=0)
        label = f"tuple[{item.label}, ...]"
        return Node(label, "list", val, ser, check, kinds=(list,), types=(tuple,), items=(item,))

    def _fixed_tuple(self, item_tps: tuple[Any, ...], where: str) -> Node:
        items = tuple(self.node(t, f"{where}[{i}]") for i, t in enumerate(item_tps))
        size = len(items)
        label = f"tuple[{', '.join(n.label for n in items)}]"

        def check(v: Any) -> None:
            if not isinstance(v, tuple) or len(v) != size:
                raise Fail(f"expected {label}, got {value_type(v)} {v!r}")
            for i, (node, x) in enumerate(zip(items, v, strict=True)):
                _check_at(node, x, f"[{i}]")

        val = cs.tuple_schema([n.val for n in items], strict=True)
        ser = cs.tuple_schema([n.ser for n in items])
        return Node(label, "tuple", val, ser, check, kinds=(list,), types=(tuple,), items=items)

    def _set(self, result: type, item_tp: Any, where: str) -> Node:
        item = self.node(item_tp, where + "[]")

        def check(v: Any) -> None:
            if not isinstance(v, abc.Set):
                raise Fail(f"expected a set, got {value_type(v)}")
            _check_items(item, v)

        make = cs.frozenset_schema if result is frozenset else cs.set_schema
        val = make(item.val, strict=True)
        inner = cs.list_schema(item.ser)  # written as an array, sorted when it can be
        ser = cs.any_schema(
            serialization=cs.wrap_serializer_function_ser_schema(_sorted, schema=inner)
        )
        label = f"{result.__name__}[{item.label}]"
        classes = (set, frozenset, abc.Set)
        return Node(label, "list", val, ser, check, kinds=(list,), types=classes, items=(item,))

    def _mapping(self, exact: bool, key_tp: Any, value_tp: Any, where: str) -> Node:
        key = self.node(key_tp, where + "{key}")
        value = self.node(value_tp, where + "{}")
        if key.kinds == {str} and not key.weak:
            key_val = key.val
        elif key.kinds == {int} and not key.weak and key.kind in ("scalar", "enum", "literal"):
            # JSON keys are strings: an integer key is written in decimal, read back only
            # from its canonical text ("1", never "01" or "1.0")
            key_val = cs.chain_schema([cs.str_schema(strict=True, pattern=_INT_KEY), _int_key(key)])
        else:
            raise DefinitionError(
                f"unsupported mapping key type {key.label} at {where}: keys must encode to "
                "JSON strings or integers (str, int, Enum, UUID, Literal, ...)"
            )

        def check(v: Any) -> None:
            if v.__class__ is not dict and not isinstance(v, abc.Mapping):
                raise Fail(f"expected a mapping, got {value_type(v)}")
            for k, x in v.items():
                try:
                    key.check(k)
                except Fail as exc:
                    exc.message = f"invalid key {k!r}: {exc.message}"
                    exc.segments.append(segment(k))
                    raise
                _check_at(value, x, segment(k))

        val = cs.dict_schema(key_val, value.val, strict=True)
        ser = cs.dict_schema(key.ser, value.ser)
        classes = (dict,) if exact else (dict, abc.Mapping)
        label = f"dict[{key.label}, {value.label}]"
        return Node(
            label, "dict", val, ser, check, kinds=(dict,), types=classes, items=(value,), key=key
        )

    # ----------------------------------------------------------------- enums and literals

    def _enum(self, cls: type[enum.Enum], where: str) -> Node:
        members = list(cls.__members__.values())
        for member in members:
            if member.value.__class__ not in (str, int, float, bool, _NoneType):
                raise DefinitionError(
                    f"enum {cls.__qualname__} at {where} has a non-JSON value {member.value!r}"
                )
        kinds = {m.value.__class__ for m in members}
        label = cls.__qualname__
        canonical = list(cls)
        kind = _ENUM_KINDS.get(frozenset(kinds))

        def check(v: Any) -> None:
            if not isinstance(v, cls):
                raise Fail(f"expected {label}, got {value_type(v)}")

        val: CoreSchema
        ser: CoreSchema
        if kind is None:  # values of several JSON kinds: compared with their kind, by the library
            val, ser = _python_enum(cls, members, kinds, label), _any_ser(check, _value)
        else:
            options: dict[str, Any] = {}
            if any("_missing_" in vars(k) for k in cls.__mro__ if k is not enum.Enum):
                options["missing"] = cls._missing_  # composite flags, the class's own lookup
            val = cs.enum_schema(cls, canonical, sub_type=kind, strict=True, **options)
            ser = cs.enum_schema(cls, canonical, sub_type=kind)
        return Node(label, "enum", val, ser, check, kinds=kinds, types=(cls,))

    def _literal(self, values: Iterable[Any], where: str) -> Node:
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

        def check(v: Any) -> None:
            try:
                to_json[(v.__class__, v)]
            except (KeyError, TypeError):
                raise Fail(f"{v!r} is not one of {allowed}") from None

        def decode(d: Any) -> Any:
            try:
                return from_json[(d.__class__, d)]
            except (KeyError, TypeError):
                raise invalid(f"{d!r} is not one of {allowed}") from None

        raws = [raw for _, raw in from_json]
        val: CoreSchema
        if all(v.__class__ is str for v in from_json.values()):
            val = cs.literal_schema(raws)  # plain strings: pydantic compares them exactly
        else:  # pydantic takes a JSON true for 1: the library compares value and kind
            val = cs.no_info_plain_validator_function(
                decode, json_schema_input_schema=cs.literal_schema(raws)
            )

        def encode(v: Any) -> Any:
            return to_json[(v.__class__, v)]

        ser = _any_ser(check, encode)
        kinds = {k for k, _ in from_json}
        return Node(
            label, "literal", val, ser, check, kinds=kinds, types=tuple({k for k, _ in to_json})
        )

    # ----------------------------------------------------------------- unions

    def _union(self, args: tuple[Any, ...], where: str) -> Node:
        flat: list[Any] = []
        literal_values: list[Any] = []
        _flatten_union(args, flat, literal_values)
        nodes = [
            self._literal(literal_values, where) if arg is Literal else self.node(arg, where)
            for arg in flat
        ]
        if ANY in nodes:
            if all(n is ANY or n is NONE for n in nodes):
                return ANY
            raise DefinitionError(f"Any cannot be combined with other types in a union at {where}")
        label = " | ".join(n.label for n in nodes)
        if len(nodes) == 2 and NONE in nodes:
            return _optional(nodes[0] if nodes[1] is NONE else nodes[1], label)
        classes = [n for n in nodes if n.model is not None]
        others = [n for n in nodes if n.model is None]
        by_kind = _kind_owners(others, label, where)
        if dict in by_kind and classes:
            raise DefinitionError(
                f"ambiguous union {label} at {where}: {by_kind[dict].label} and a class "
                "both decode from a JSON object"
            )
        choices: list[tuple[CoreSchema, str]] = []
        if len(classes) >= 2:
            choices.append((_tagged_union(classes, label, where), UNION_CLASSES))
        elif classes:
            choices.append((classes[0].val, UNION_CLASSES))
        # members claiming a kind before those only taking it (a JSON integer goes to int)
        ordered = sorted(others, key=lambda n: bool(n.weak))
        choices.extend((n.val, n.label) for n in ordered)
        union = cs.union_schema(choices, mode="left_to_right")  # type: ignore[arg-type]
        val = choices[0][0] if len(choices) == 1 else union
        sers = [_tagged_union_ser(classes)] if len(classes) >= 2 else [n.ser for n in classes]
        sers += [n.ser for n in others]
        ser: CoreSchema = sers[0] if len(sers) == 1 else cs.union_schema(list(sers))
        all_types = tuple(t for n in nodes for t in n.types)
        kinds = set(by_kind) | ({dict} if classes else set())
        weak = {k for n in others for k in n.weak}
        members = tuple(nodes)

        def check(v: Any) -> None:
            _member_of(members, v, label).check(v)

        return Node(
            label,
            "union",
            val,
            ser,
            check,
            kinds=kinds,
            types=all_types,
            weak=weak,
            members=members,
        )

    # ----------------------------------------------------------------- classes

    def _class_node(self, cls: type, kind: str, *, tagged: bool = False) -> Node:
        """The node of a class, registered before its fields compile (recursion sees it).

        ``tagged``: a union reads it by a variant of its own, where "$type" is required."""
        ref = _ref(cls)
        label = cls.__qualname__
        box: dict[str, Node] = {}

        def check(v: Any) -> None:
            if not isinstance(v, cls):
                raise Fail(f"expected {label}, got {value_type(v)}")
            for name, field in box["node"].fields.items():
                _check_at(field, getattr(v, name), "." + name)

        node = Node(label, kind, reference(ref), reference(ref), check, kinds=(dict,), types=(cls,))
        node.model = cls
        node.tag = tag_of(cls)
        node.tval = reference(_ref(cls, ":tagged") if tagged else ref)
        node.tser = reference(_ref(cls, ":tagged"))
        box["node"] = node
        self.new[cls] = node
        return node

    def _hints(self, cls: type, where: str) -> dict[str, Any]:
        try:
            return typing.get_type_hints(cls, include_extras=True)
        except NameError:
            pass
        except Exception as exc:
            raise DefinitionError(
                f"cannot resolve the type hints of {cls.__qualname__} at {where}: {exc}"
            ) from exc
        names = {c.__name__: c for c in self.new if isinstance(c, type)}
        names.update(self.namespace)
        try:
            return typing.get_type_hints(cls, localns=names, include_extras=True)
        except Exception as exc:
            raise DefinitionError(_unresolved(cls, where, exc)) from exc

    def _dataclass(self, cls: type, where: str) -> Node:
        post_init = callable(getattr(cls, "__post_init__", None))
        node = self._class_node(cls, "dataclass", tagged=not post_init)
        label, tag, ref = node.label, node.tag, _ref(cls)
        assert tag is not None  # noqa: S101 - narrows the type: a class node has a tag
        hints = self._hints(cls, where)
        declared: dict[str, dataclasses.Field[Any]] = getattr(cls, "__dataclass_fields__", {})
        fields: dict[str, Node] = {}
        val_fields: list[cs.DataclassField] = []
        ser_fields: list[cs.DataclassField] = []
        for name, f in declared.items():
            hint = hints.get(name, f.type)
            if hint is typing.ClassVar or typing.get_origin(hint) is typing.ClassVar:
                continue
            if isinstance(hint, dataclasses.InitVar) or hint is dataclasses.InitVar:
                if f.default is dataclasses.MISSING:
                    raise DefinitionError(
                        f"init-only field {label}.{name} at {where} needs a default to be decodable"
                    )
                val_fields.append(
                    cs.dataclass_field(
                        name,
                        cs.with_default_schema(cs.any_schema(), default=f.default),
                        init_only=True,
                    )
                )
                continue
            fnode = self.node(hint, f"{where}.{name}")
            default: dict[str, Any] = {}
            if f.default is not dataclasses.MISSING:
                default["default"] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default["default_factory"] = f.default_factory
            if not f.init:  # set by the class itself (a default, or __post_init__)
                if default:
                    schema = cs.with_default_schema(cs.any_schema(), **default)
                    val_fields.append(cs.dataclass_field(name, schema, init=False))
                continue
            fields[name] = fnode
            vschema = cs.with_default_schema(fnode.val, **default) if default else fnode.val
            val_fields.append(cs.dataclass_field(name, vschema))
            ser_fields.append(cs.dataclass_field(name, fnode.ser))
        node.fields = fields
        names = [f.name for f in dataclasses.fields(cls)]
        frozen = bool(getattr(getattr(cls, "__dataclass_params__", None), "frozen", False))
        slots = "__slots__" in cls.__dict__
        options: dict[str, Any] = {
            "frozen": frozen,
            "slots": slots,
            "post_init": post_init,
            "config": _CLASS_CONFIG,  # a class's fields are built with its own configuration
        }

        def build(type_field: cs.DataclassField | None) -> CoreSchema:
            extra = [] if type_field is None else [type_field]
            args = cs.dataclass_args_schema(
                label,
                [*extra, *val_fields],
                collect_init_only=post_init or type_field is not None,
                extra_behavior="forbid",
            )
            return cs.dataclass_schema(cls, args, names, **options)

        ser_args = cs.dataclass_args_schema(label, ser_fields)
        ser = cs.dataclass_schema(cls, ser_args, names, **options)
        if post_init:
            # __post_init__ receives the init-only values: "$type" cannot be one of them
            define(ref, cs.no_info_before_validator_function(_untagging(tag), build(None)), ser)
            define(_ref(cls, ":tagged"), None, _tagged_ser(cls, tag, ref))
            return node
        optional_tag = cs.with_default_schema(cs.literal_schema([tag]), default=tag)
        define(ref, build(cs.dataclass_field(TYPE_KEY, optional_tag, init_only=True)), ser)
        required_tag = cs.dataclass_field(TYPE_KEY, cs.literal_schema([tag]), init_only=True)
        define(_ref(cls, ":tagged"), build(required_tag), _tagged_ser(cls, tag, ref))
        return node

    def _model(self, cls: Any, where: str) -> Node:
        node = self._class_node(cls, "model")
        tag, ref = node.tag, _ref(cls)
        assert tag is not None  # noqa: S101 - narrows the type: a class node has a tag
        for name, info in cls.model_fields.items():
            if TYPE_KEY in (name, getattr(info, "alias", None)):
                raise DefinitionError(f"model {node.label} at {where} has a field named '$type'")
        # pydantic validates a model with the validator it built for the class (its own
        # configuration decides about coercion); the library refuses unknown fields first
        schema = cs.chain_schema([cls.__pydantic_core_schema__])
        define(ref, cs.no_info_before_validator_function(_model_keys(cls, tag), schema), schema)
        define(_ref(cls, ":tagged"), None, _tagged_ser(cls, tag, ref))

        def check(v: Any) -> None:
            if not isinstance(v, cls):
                raise Fail(f"expected {node.label}, got {value_type(v)}")
            try:
                v.model_dump(mode="json")
            except (TypeError, ValueError) as exc:
                raise Fail(f"cannot serialize {node.label}: {exc}", cause=exc) from None

        node.check = check
        return node

    def _typeddict(self, cls: Any, where: str) -> Node:
        label = cls.__qualname__
        hints = self._hints(cls, where)
        total = getattr(cls, "__total__", True)
        required = frozenset(
            name
            for name, hint in hints.items()
            if typing.get_origin(hint) is typing.Required
            or (total and typing.get_origin(hint) is not typing.NotRequired)
        )
        fields = {name: self.node(hint, f"{where}.{name}") for name, hint in hints.items()}
        val = cs.typed_dict_schema(
            {
                name: cs.typed_dict_field(n.val, required=name in required)
                for name, n in fields.items()
            },
            cls=cls,
            extra_behavior="forbid",
            strict=True,
            config=_CLASS_CONFIG,
        )
        ser = cs.typed_dict_schema(
            {
                name: cs.typed_dict_field(n.ser, required=name in required)
                for name, n in fields.items()
            },
            cls=cls,
            config=SER_CONFIG,
        )

        def check(v: Any) -> None:
            if not isinstance(v, dict):
                raise Fail(f"expected {label} (a dict), got {value_type(v)}")
            for name in v:
                if name not in fields:
                    raise Fail(f"unknown key {name!r} for {label}", segment(name))
            for name, n in fields.items():
                if name in v:
                    _check_at(n, v[name], segment(name))
                elif name in required:
                    raise Fail(f"missing required key {name!r} of {label}", segment(name))

        return Node(
            label, "typeddict", val, ser, check, kinds=(dict,), types=(dict,), fields=fields
        )


# -- helpers ------------------------------------------------------------------------------------


def _check_at(node: Node, value: Any, seg: str) -> None:
    try:
        node.check(value)
    except Fail as exc:
        exc.segments.append(seg)
        raise


def _check_items(item: Node, values: Iterable[Any]) -> None:
    for i, x in enumerate(values):
        _check_at(item, x, f"[{i}]")


def _sorted(value: Any, handler: Any) -> Any:
    items = handler(list(value))
    with contextlib.suppress(TypeError):  # unorderable items keep their iteration order
        items.sort()
    return items


def _value(v: Any) -> Any:
    return v.value


def _any_ser(check: Any, encode: Any) -> CoreSchema:
    """A serialization by a Python function (after a check of the value)."""

    def write(v: Any) -> Any:
        check(v)
        return encode(v)

    return cs.any_schema(serialization=cs.plain_serializer_function_ser_schema(write))


def _python_enum(
    cls: type[enum.Enum], members: list[enum.Enum], kinds: set[type], label: str
) -> CoreSchema:
    by_value = {(m.value.__class__, m.value): m for m in members}

    def decode(d: Any) -> Any:
        try:
            return by_value[(d.__class__, d)]
        except (KeyError, TypeError):
            pass
        if d.__class__ in kinds:
            try:
                return cls(d)  # composite flags and _missing_ hooks
            except ValueError:
                pass
        raise invalid(f"{d!r} is not a valid {label}")

    raws = [m.value for m in members]
    return cs.no_info_plain_validator_function(
        decode, json_schema_input_schema=cs.literal_schema(raws)
    )


def _int_key(key: Node) -> CoreSchema:
    """After the canonical digits of a JSON key: the key's own type, from a Python int."""
    if key.kind == "enum":
        assert key.types  # noqa: S101 - an enum node names its class
        cls = key.types[0]
        return cs.no_info_plain_validator_function(_enum_from_int(cls, key.label))
    if key.kind == "literal":
        return cs.chain_schema([cs.int_schema(strict=False), key.val])
    return cs.int_schema(strict=False)


def _enum_from_int(cls: Any, label: str) -> Any:
    def decode(d: Any) -> Any:
        try:
            return cls(int(d))
        except ValueError:
            raise invalid(f"{d!r} is not a valid {label}") from None

    return decode


def _optional(inner: Node, label: str) -> Node:
    def check(v: Any) -> None:
        if v is not None:
            inner.check(v)

    return Node(
        label,
        "optional",
        cs.nullable_schema(inner.val),
        cs.nullable_schema(inner.ser),
        check,
        kinds=inner.kinds | {_NoneType},
        types=(*inner.types, _NoneType),
        weak=inner.weak,
        members=(inner,),
    )


def _kind_owners(nodes: list[Node], label: str, where: str) -> dict[type, Node]:
    """Which member reads each JSON kind (a member only taking a kind yields to another)."""
    owner: dict[type, Node] = {}
    for n in nodes:
        for k in n.kinds - n.weak:
            if k in owner:
                raise DefinitionError(
                    f"ambiguous union {label} at {where}: {owner[k].label} and {n.label} "
                    f"both decode from a JSON {kind_name(k)}"
                )
            owner[k] = n
    for n in nodes:
        for k in n.weak:
            owner.setdefault(k, n)
    return owner


def _tagged_union(classes: list[Node], label: str, where: str) -> CoreSchema:
    choices: dict[str, CoreSchema] = {}
    for n in classes:
        if n.tag is None or n.tval is None:  # pragma: no cover - class nodes have both
            raise DefinitionError(f"{n.label} at {where} is not a class")
        if n.tag in choices:
            raise DefinitionError(f"duplicate type tag {n.tag!r} in union {label} at {where}")
        choices[n.tag] = n.tval
    return cs.tagged_union_schema(choices, TYPE_KEY)


def _tagged_union_ser(classes: list[Node]) -> CoreSchema:
    """The serialization of a union of classes: the member is chosen by the value's class
    (a subclass by its nearest member), and writes its tag first."""
    by_class: dict[type, str] = {}
    for n in classes:
        assert n.model is not None and n.tag is not None  # noqa: PT018, S101 - class nodes
        by_class[n.model] = n.tag
    nearest_first = sorted(by_class, key=lambda c: -len(c.__mro__))

    def tag_of_value(value: Any) -> str | None:
        tag = by_class.get(value.__class__)
        if tag is None:
            for cls in nearest_first:
                if isinstance(value, cls):
                    tag = by_class[value.__class__] = by_class[cls]
                    break
        return tag

    choices: dict[Any, CoreSchema] = {}
    for n in classes:
        assert n.tag is not None and n.tser is not None  # noqa: PT018, S101 - class nodes
        choices[n.tag] = n.tser
    return cs.tagged_union_schema(choices, tag_of_value)


def _tagged_ser(cls: type, tag: str, ref: str) -> CoreSchema:
    """The serialization of a class inside a union: chosen by the value's class, written
    with ``"$type"`` first."""
    write = cs.wrap_serializer_function_ser_schema(_tagging(tag), schema=reference(ref))
    return cs.is_instance_schema(cls, serialization=write)


def _member_of(members: tuple[Node, ...], value: Any, label: str) -> Node:
    for n in members:
        if value.__class__ in n.types:
            return n
    for n in members:
        if isinstance(value, n.types):
            return n
    raise Fail(f"a {value_type(value)} is not allowed here; expected {label}")


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


def _model_keys(cls: Any, tag: str) -> Any:
    """A validator function checking a model's object before the model does: its own
    ``"$type"`` is dropped, and a key that is not one of its fields (by name or alias) is
    refused, unless the model's configuration sets ``extra`` itself."""
    known: set[str] = set()
    for name, info in cls.model_fields.items():
        known.add(name)
        for alias in (info.alias, info.validation_alias):
            if isinstance(alias, str):
                known.add(alias)
    check = "extra" not in cls.model_config
    listed = ", ".join(sorted(cls.model_fields)) or "none"
    untag = _untagging(tag)

    def validate(d: Any) -> Any:
        d = untag(d)
        if check and d.__class__ is dict:
            for key in d:
                if key not in known:
                    message = f"unknown field {key!r} for {cls.__qualname__} (fields: {listed})"
                    context = {"key": key, "message": message}
                    raise PydanticCustomError("workflows4py_unknown", "{message}", context)
        return d

    return validate


def _unresolved(cls: type, where: str, exc: Exception) -> str:
    message = f"cannot resolve the type hints of {cls.__qualname__} at {where}: {exc}"
    if "<locals>" in cls.__qualname__:
        return message + (
            f" ({cls.__qualname__} is defined inside a function and its annotations name "
            "something only that function sees: define these classes at module level, or "
            "declare the workflow in that function after them, where its types are looked up)"
        )
    return message + " (its annotations must name types importable from its module)"
