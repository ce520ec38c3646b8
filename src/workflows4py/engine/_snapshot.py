"""Snapshots of an execution, so loading an instance replays only the journal's tail.

An :class:`~workflows4py._engine.Execution` is the definition tree rewritten as it ran. A
snapshot stores only what the run added to the definition (completed nodes with their
results, inputs and events; a timer's instants; a fork's choice; a loop's iterations; ...)
as an *overlay* mirroring the tree, never the definition's functions. Decoding walks the
current definition and lays the overlay over it.

Nothing in a snapshot selects code, and its values are read by the workflow's own typed
codec. A value of a class is written ``{"$v": name, "d": payload}``: ``name`` is the class's
entry in the workflow's :class:`SnapshotTypes`, a closed table built from the workflow's own
declared types (state, events, signal requests and responses, and every class reachable
from the annotations of its steps' functions and of those classes' fields), and
``payload`` is what the journal's codec writes for that class (the same compiled codec).
Decoding looks the name up in that table and nowhere else (no import, no attribute of a
module named by the data), and the payload is validated by that codec, strictly, exactly
as an event of the journal: a field of the wrong type, an unknown field or an enum value
the enum does not have is refused. The initial state must be one of the workflow's
states. Only a generic dataclass (whose fields no codec can type, such as the library's
``Caught``) is written field by field, and built back through its constructor.

A snapshot is *sealed* (see :func:`seal`): an HMAC-SHA256, under the runtime's snapshot
key, over the instance, the journal position, the last event covered and the body. A
snapshot that is not sealed under the runtime's key, names a type outside the table, fails
validation or was written for another definition is refused (:class:`SnapshotRefused`)
and the instance is rebuilt from its journal: the journal stays the source of truth.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import enum
import hashlib
import hmac
import json
import math
import types
import typing
import uuid
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from workflows4py._errors import CodecError, DefinitionError
from workflows4py.definition import (
    EMPTY_HISTORY,
    UNSET,
    WIO,
    Caught,
    Chain,
    Checkpoint,
    Embedded,
    Err,
    FlatMap,
    ForEach,
    Fork,
    HandleErrorWith,
    Interruptible,
    Loop,
    Ok,
    Parallel,
    Retry,
    SignalDef,
    StatefulRetry,
    Terminated,
    Timer,
    TimerReleased,
    TimerStarted,
    Transform,
    definition_children,
    definition_nodes,
)
from workflows4py.serialization import decoder_for, encoder_for

from ._core import Executed
from ._execution import Execution

if TYPE_CHECKING:
    from workflows4py.definition import Workflow

__all__ = [
    "SnapshotError",
    "SnapshotRefused",
    "SnapshotTypes",
    "decode_execution",
    "decode_snapshot",
    "encode_execution",
    "event_digest",
    "fingerprint",
    "key_id",
    "seal",
    "snapshot_types",
    "unseal",
]

FORMAT = 4  # 4: every value of a class through the codec (3: enums and models apart)
_READ = (3, 4)  # snapshots of format 3 (release 0.1.0) still load
Node = WIO[Any, Any, Any]


class SnapshotError(Exception):
    """A value or a node cannot go into a snapshot, or a snapshot does not fit."""


class SnapshotRefused(SnapshotError):
    """A stored snapshot is not used. ``foreign``: it is sealed under another key (written
    by a process with a different snapshot key), which is not a sign of tampering."""

    def __init__(self, reason: str, *, foreign: bool = False) -> None:
        super().__init__(reason)
        self.foreign = foreign


# -- the closed table of types -----------------------------------------------------------------


def _is_model(cls: type) -> bool:
    return callable(getattr(cls, "model_validate", None)) and hasattr(cls, "model_fields")


def _field_hints(cls: type) -> Iterator[Any]:
    if dataclasses.is_dataclass(cls) or typing.is_typeddict(cls):
        try:
            yield from typing.get_type_hints(cls).values()
        except Exception:  # unresolvable annotations: the field values must be plain data
            return
    elif _is_model(cls):
        for info in getattr(cls, "model_fields", {}).values():
            yield getattr(info, "annotation", None)


def _function_hints(fn: Any) -> Iterator[Any]:
    target = fn
    while callable(getattr(target, "func", None)):  # functools.partial
        target = target.func
    if not (isinstance(target, types.FunctionType | types.MethodType)):
        target = getattr(type(target), "__call__", None)  # noqa: B004 - a callable object
    if target is None:
        return
    try:
        yield from typing.get_type_hints(target).values()
    except Exception:  # unresolvable annotations (say, a class local to a function)
        return


# the library's own classes go by names that do not move with its modules
_LIBRARY: dict[type, str] = {
    TimerStarted: "workflows4py.TimerStarted",
    Terminated: "workflows4py.Terminated",
    TimerReleased: "workflows4py.TimerReleased",
    Caught: "workflows4py.Caught",
    Ok: "workflows4py.Ok",
    Err: "workflows4py.Err",
}


class SnapshotTypes:
    """The classes a snapshot of one workflow may name, by name, and nothing else.

    Built from the workflow's declared types: its state and event types, the engine's own
    events, every signal's request and response, every class in the annotations of the
    definition's functions (which covers step inputs, outputs and domain errors), and,
    recursively, every class in the annotations of those classes' fields. Only
    dataclasses, pydantic models and enums are kept; a name two classes share is left out.
    A class is named ``module:qualname``; the library's own classes have fixed names. A
    name not in the table (the class's module was moved or renamed since the snapshot was
    written) is read as the one class of the table with its qualname and the last part of
    its module's name, else as the one class with its qualname; never as a class outside
    the table.
    """

    def __init__(self, workflow: type[Workflow[Any, Any]]) -> None:
        self._seen: set[int] = set()
        found: dict[str, type] = {}
        clashes: set[str] = set()
        for cls in self._classes_of(workflow):
            name = _LIBRARY.get(cls) or f"{cls.__module__}:{cls.__qualname__}"
            other = found.setdefault(name, cls)
            if other is not cls:
                clashes.add(name)
        for name in clashes:
            del found[name]
        self.by_name: dict[str, type] = found
        self.names: dict[type, str] = {cls: name for name, cls in found.items()}
        moved: dict[str, list[type]] = {}
        for cls in found.values():
            for short in (
                f"{cls.__module__.rpartition('.')[2]}:{cls.__qualname__}",
                cls.__qualname__,
            ):
                moved.setdefault(short, []).append(cls)
        self._moved = {short: c[0] for short, c in moved.items() if len(c) == 1}
        self._typed: dict[type, tuple[Callable[[Any], Any], Callable[[Any], Any]] | None] = {}

    def _classes_of(self, workflow: type[Workflow[Any, Any]]) -> Iterator[type]:
        roots: list[Any] = [
            workflow.state_type,
            workflow.event_type,
            TimerStarted,
            TimerReleased,
            Terminated,
            Caught,
            Ok,
            Err,
        ]
        for node in definition_nodes(workflow.definition):
            roots.extend(self._node_hints(node))
        for hint in roots:
            yield from self._walk(hint)

    def _node_hints(self, node: Node) -> Iterator[Any]:
        for field in dataclasses.fields(node):
            yield from self._value_hints(getattr(node, field.name), depth=0)

    def _value_hints(self, value: Any, depth: int) -> Iterator[Any]:
        if isinstance(value, WIO) or value is None:
            return
        if isinstance(value, type):
            yield value
        elif isinstance(value, SignalDef):
            yield value.request
            if value.response is not None:
                yield value.response
        elif isinstance(value, tuple):
            for item in value:
                yield from self._value_hints(item, depth)
        elif callable(value):
            yield from _function_hints(value)
        elif depth < 2 and dataclasses.is_dataclass(value):  # a policy, a fork's branch
            for field in dataclasses.fields(value):
                yield from self._value_hints(getattr(value, field.name), depth + 1)

    def _walk(self, hint: Any) -> Iterator[type]:
        if id(hint) in self._seen:
            return
        self._seen.add(id(hint))
        supertype = getattr(hint, "__supertype__", None)  # a NewType
        if supertype is not None:
            yield from self._walk(supertype)
            return
        origin = typing.get_origin(hint)
        if origin is typing.Literal:
            return
        if origin is not None:
            if isinstance(origin, type):
                yield from self._walk(origin)
            for arg in typing.get_args(hint):
                yield from self._walk(arg)
            return
        if not isinstance(hint, type):
            return
        if dataclasses.is_dataclass(hint) or _is_model(hint) or issubclass(hint, enum.Enum):
            yield hint
        if typing.is_typeddict(hint) or dataclasses.is_dataclass(hint) or _is_model(hint):
            for field_hint in _field_hints(hint):  # a TypedDict's values are plain dicts
                yield from self._walk(field_hint)

    def typed(self, cls: type) -> tuple[Callable[[Any], Any], Callable[[Any], Any]] | None:
        """The workflow codec's encoder and decoder for ``cls``; None for a generic
        dataclass, whose fields no codec can type (written field by field)."""
        if cls not in self._typed:
            try:
                pair: tuple[Callable[[Any], Any], Callable[[Any], Any]] | None = (
                    encoder_for(cls),
                    decoder_for(cls),
                )
            except DefinitionError:
                if not dataclasses.is_dataclass(cls):
                    raise
                pair = None
            self._typed[cls] = pair
        return self._typed[cls]

    def name_of(self, value: Any) -> str:
        name = self.names.get(type(value))
        if name is None:
            raise SnapshotError(
                f"{type(value).__qualname__} is not one of the workflow's declared types"
            )
        return name

    def lookup(self, name: Any, kind: str) -> type:
        cls = self.by_name.get(name) if isinstance(name, str) else None
        if cls is None and isinstance(name, str) and ":" in name:  # a moved module
            module, _, qualname = name.partition(":")
            short = f"{module.rpartition('.')[2]}:{qualname}"
            cls = self._moved.get(short) or self._moved.get(qualname)
        if cls is None:
            raise SnapshotRefused(f"names {name!r}, which is not one of the workflow's types")
        if kind == "dc" and not dataclasses.is_dataclass(cls):
            raise SnapshotRefused(f"{name} is not a dataclass")
        if kind == "enum" and not issubclass(cls, enum.Enum):
            raise SnapshotRefused(f"{name} is not an enum")
        if kind == "model" and not _is_model(cls):
            raise SnapshotRefused(f"{name} is not a pydantic model")
        return cls

    # -- values -------------------------------------------------------------------------

    def enc(self, v: Any) -> Any:
        if v is None or (isinstance(v, bool | int | str) and not isinstance(v, enum.Enum)):
            return v
        if isinstance(v, float):
            if not math.isfinite(v):
                raise SnapshotError("non-finite float")
            return v
        if v is UNSET:
            return {"$unset": 1}
        if isinstance(v, dt.datetime):
            return {"$dt": v.isoformat()}
        if isinstance(v, dt.date):
            return {"$date": v.isoformat()}
        if isinstance(v, dt.time):
            return {"$time": v.isoformat()}
        if isinstance(v, bytes):
            return {"$bytes": base64.b64encode(v).decode("ascii")}
        if isinstance(v, dt.timedelta):
            return {"$td": [v.days, v.seconds, v.microseconds]}
        if isinstance(v, decimal.Decimal):
            return {"$dec": str(v)}
        if isinstance(v, uuid.UUID):
            return {"$uuid": str(v)}
        if isinstance(v, list):
            return [self.enc(x) for x in v]
        if isinstance(v, tuple):
            return {"$tuple": [self.enc(x) for x in v]}
        if isinstance(v, frozenset | set):
            return {"$set": [self.enc(x) for x in v], "frozen": isinstance(v, frozenset)}
        if isinstance(v, dict):
            return {"$dict": [[self.enc(k), self.enc(x)] for k, x in v.items()]}
        if isinstance(v, enum.Enum) or _is_model(type(v)) or dataclasses.is_dataclass(v):
            return self._enc_class(v)
        raise SnapshotError(f"cannot snapshot a value of type {type(v).__qualname__}")

    def _enc_class(self, v: Any) -> Any:
        name = self.name_of(v)
        try:
            typed = self.typed(type(v))
        except DefinitionError as e:
            raise SnapshotError(f"{name}: {e}") from e
        if typed is None:  # a generic dataclass: its fields, each a value of its own
            init = (f.name for f in dataclasses.fields(v) if f.init)
            return {"$dc": name, "f": {field: self.enc(getattr(v, field)) for field in init}}
        try:
            return {"$v": name, "d": typed[0](v)}
        except CodecError as e:
            raise SnapshotError(f"{name}: {e}") from e

    def dec(self, v: Any) -> Any:
        if isinstance(v, list):
            return [self.dec(x) for x in v]
        if not isinstance(v, dict):
            if isinstance(v, float) and not math.isfinite(v):
                raise SnapshotRefused("non-finite float")
            return v
        if "$v" in v:
            return self._typed_value(v["$v"], v["d"])
        if "$dc" in v:
            return self._dataclass(v)
        if "$tuple" in v:
            return tuple(self.dec(x) for x in v["$tuple"])
        if "$dict" in v:
            return {self.dec(k): self.dec(x) for k, x in v["$dict"]}
        if "$set" in v:
            items = [self.dec(x) for x in v["$set"]]
            return frozenset(items) if v["frozen"] is True else set(items)
        if "$dt" in v:
            return dt.datetime.fromisoformat(v["$dt"])
        if "$date" in v:
            return dt.date.fromisoformat(v["$date"])
        if "$time" in v:
            return dt.time.fromisoformat(v["$time"])
        if "$bytes" in v:
            return base64.b64decode(v["$bytes"], validate=True)
        if "$td" in v:
            days, seconds, micros = v["$td"]
            return dt.timedelta(days=days, seconds=seconds, microseconds=micros)
        if "$dec" in v:
            return decimal.Decimal(v["$dec"])
        if "$uuid" in v:
            return uuid.UUID(v["$uuid"])
        if "$enum" in v:  # format 3: an enum by its value, now read by the enum's codec
            self.lookup(v["$enum"], "enum")
            return self._typed_value(v["$enum"], self.dec(v["v"]))
        if "$model" in v:  # format 3: a pydantic model, now read by its codec
            self.lookup(v["$model"], "model")
            return self._typed_value(v["$model"], v["v"])
        if "$unset" in v:
            return UNSET
        raise SnapshotRefused(f"unknown value encoding {sorted(v)[:5]}")

    def _typed_value(self, name: Any, payload: Any) -> Any:
        cls = self.lookup(name, "v")
        typed = self.typed(cls)
        if typed is None:
            raise SnapshotRefused(f"{name} has no codec")
        try:
            return typed[1](payload)
        except CodecError as e:
            raise SnapshotRefused(f"{name} does not validate: {e}") from e

    def _dataclass(self, v: dict[str, Any]) -> Any:
        """A generic dataclass, built back through its constructor (which checks it)."""
        cls = self.lookup(v["$dc"], "dc")
        if self.typed(cls) is not None:
            raise SnapshotRefused(f"{v['$dc']} written without its codec")
        fields = v["f"]
        every = _field_names(cls)
        init = frozenset(f.name for f in dataclasses.fields(cls) if f.init)
        # format 3 wrote every field, format 4 those of the constructor
        if not isinstance(fields, dict) or set(fields) not in (every, init):
            raise SnapshotRefused(f"fields of {v['$dc']} changed")
        try:
            return cls(**{name: self.dec(fields[name]) for name in init})
        except (TypeError, ValueError) as e:
            raise SnapshotRefused(f"{v['$dc']} does not validate: {e}") from e


_TYPES: weakref.WeakKeyDictionary[type, SnapshotTypes] = weakref.WeakKeyDictionary()


def snapshot_types(workflow: type[Workflow[Any, Any]]) -> SnapshotTypes:
    """The closed type table of ``workflow`` (built once)."""
    table = _TYPES.get(workflow)
    if table is None:
        table = _TYPES[workflow] = SnapshotTypes(workflow)
    return table


def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls))


# -- the tree overlay -------------------------------------------------------------------------


def _result(r: Any, t: SnapshotTypes) -> Any:
    return {"ok": t.enc(r.value)} if isinstance(r, Ok) else {"err": t.enc(r.error)}


def _unresult(d: Any, t: SnapshotTypes) -> Any:
    return Ok(t.dec(d["ok"])) if "ok" in d else Err(t.dec(d["err"]))


def _overlay(w: Node, t: SnapshotTypes) -> Any:
    if isinstance(w, Executed):
        return {
            "x": _overlay(w.node, t),
            "r": _result(w.result, t),
            "i": t.enc(w.input),
            "n": w.index,
            "e": t.enc(w.event),
        }
    match w:
        case Chain():
            current = None if w.current is None else _overlay(w.current, t)
            return {"done": [_overlay(step, t) for step in w.done], "current": current}
        case FlatMap():
            return {
                "base": _overlay(w.base, t),
                "next": None if w.next is None else _overlay(w.next, t),
            }
        case Transform() | Checkpoint():
            return {"base": _overlay(w.base, t)}
        case HandleErrorWith():
            return {"base": _overlay(w.base, t), "handler": _overlay(w.handler, t)}
        case Timer():
            return {"t": [t.enc(w.started_at), t.enc(w.resume_at)]}
        case Fork():
            current = None if w.current is None else _overlay(w.current, t)
            return {"chosen": w.chosen, "in": t.enc(w.chosen_input), "current": current}
        case Loop():
            return {
                "finished": w.finished,
                "history": [_overlay(h, t) for h in w.history],
                "current": None if w.current is None else _overlay(w.current, t),
                "phase": w.phase,
                "in": t.enc(w.phase_input),
            }
        case Parallel():
            return {"branches": [_overlay(b, t) for b in w.branches]}
        case ForEach():
            if w.running is None:
                return {"running": None}
            return {"running": [[k, t.enc(e), _overlay(sub, t)] for k, e, sub in w.running]}
        case Embedded():
            return {"inner": _overlay(w.inner, t)}
        case Interruptible():
            return {
                "base": _overlay(w.base, t),
                "flow": _overlay(w.flow, t),
                "interrupted": w.interrupted,
                "in": t.enc(w.flow_input),
            }
        case Retry():
            return {
                "base": _overlay(w.base, t),
                "state": t.enc(w.state),
                "nb": t.enc(w.not_before),
                "a": w.failed_attempts,
            }
    return 0  # a leaf that has not run: the definition node itself


def _lay(d: Node, o: Any, t: SnapshotTypes) -> Node:
    """The definition node ``d`` with the overlay ``o`` laid over it."""
    if isinstance(o, dict) and "x" in o:
        return Executed(
            node=_lay(d, o["x"], t),
            result=_unresult(o["r"], t),
            input=t.dec(o["i"]),
            index=o["n"],
            event=t.dec(o["e"]),
        )
    if o == 0:
        return d
    match d:
        case Chain():
            return _lay_chain(d, o, t)
        case FlatMap():
            base = _lay(d.base, o["base"], t)
            nxt = None
            if o["next"] is not None:
                if not (isinstance(base, Executed) and isinstance(base.result, Ok)):
                    raise SnapshotError("flat_map step without a completed base")
                nxt = _lay(d.fn(base.result.value), o["next"], t)
            return dataclasses.replace(d, base=base, next=nxt)
        case Transform() | Checkpoint():
            return dataclasses.replace(d, base=_lay(d.base, o["base"], t))
        case HandleErrorWith():
            return dataclasses.replace(
                d, base=_lay(d.base, o["base"], t), handler=_lay(d.handler, o["handler"], t)
            )
        case Timer():
            started, resume = (t.dec(x) for x in o["t"])
            return dataclasses.replace(d, started_at=started, resume_at=resume)
        case Fork():
            chosen = o["chosen"]
            current = None
            if chosen is not None and o["current"] is not None:
                current = _lay(d.branches[chosen].wio, o["current"], t)
            return dataclasses.replace(
                d, chosen=chosen, chosen_input=t.dec(o["in"]), current=current
            )
        case Loop():
            # the kept runs are the last ones; with on_restart, even runs are the body's
            finished = o["finished"]
            first = finished - len(o["history"])
            if first < 0:
                raise SnapshotError("loop keeps more runs than it counts")
            history = tuple(
                _lay(d.body if d.on_restart is None or (first + i) % 2 == 0 else _restart(d), h, t)
                for i, h in enumerate(o["history"])
            )
            current = None
            if o["current"] is not None:
                current = _lay(d.body if o["phase"] == "body" else _restart(d), o["current"], t)
            return dataclasses.replace(
                d,
                finished=finished,
                history=history,
                current=current,
                phase=o["phase"],
                phase_input=t.dec(o["in"]),
            )
        case Parallel():
            if len(o["branches"]) != len(d.branches):
                raise SnapshotError("parallel branches changed")
            branches = tuple(
                _lay(b, bo, t) for b, bo in zip(d.branches, o["branches"], strict=True)
            )
            return dataclasses.replace(d, branches=branches)
        case ForEach():
            if o["running"] is None:
                return d
            running = tuple((k, t.dec(e), _lay(d.body, so, t)) for k, e, so in o["running"])
            return dataclasses.replace(d, running=running)
        case Embedded():
            return dataclasses.replace(d, inner=_lay(d.inner, o["inner"], t))
        case Interruptible():
            return dataclasses.replace(
                d,
                base=_lay(d.base, o["base"], t),
                flow=_lay(d.flow, o["flow"], t),
                interrupted=o["interrupted"],
                flow_input=t.dec(o["in"]),
            )
        case Retry():
            # "a" (the failed attempts a stateful retry recorded) came after format 3 did;
            # a stateful retry's snapshot without it is rebuilt from the journal
            attempts = o.get("a")
            if attempts is None:
                if isinstance(d.policy, StatefulRetry):
                    raise SnapshotRefused("a stateful retry without its count of failed attempts")
                attempts = 0
            return dataclasses.replace(
                d,
                base=_lay(d.base, o["base"], t),
                state=t.dec(o["state"]),
                not_before=t.dec(o["nb"]),
                failed_attempts=attempts,
            )
    raise SnapshotError(f"overlay does not fit a {d.kind} node")


def _lay_chain(d: Chain, o: Any, t: SnapshotTypes) -> Chain:
    ran = o["done"]
    if len(ran) + (o["current"] is not None) > len(d.steps):
        raise SnapshotError("sequence has fewer steps")
    done = EMPTY_HISTORY
    for step, so in zip(d.steps, ran, strict=False):
        laid = _lay(step, so, t)
        if not isinstance(laid, Executed):
            raise SnapshotError("completed step of a sequence without a result")
        done = done.append(laid)
    current = None if o["current"] is None else _lay(d.steps[len(ran)], o["current"], t)
    return dataclasses.replace(d, done=done, current=current)


def _restart(loop: Loop) -> Node:
    if loop.on_restart is None:
        raise SnapshotError("loop restart path removed")
    return loop.on_restart


def _code(fn: Any, digest: Any, depth: int = 0) -> None:
    """Feed the logic of ``fn`` (its bytecode, constants and the functions it closes over)."""
    if depth > 4:
        return
    code = getattr(fn, "__code__", None)
    if code is None:
        inner = getattr(fn, "func", None) or getattr(type(fn), "__call__", None)  # noqa: B004
        if inner is not None and inner is not fn:
            _code(inner, digest, depth + 1)
        return
    _code_object(code, digest)
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            content = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if callable(content) and not isinstance(content, type):
            _code(content, digest, depth + 1)


def _code_object(code: Any, digest: Any) -> None:
    digest.update(code.co_code)
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            _code_object(const, digest)
        else:
            digest.update(repr(const).encode())


def fingerprint(definition: Node) -> str:
    """A hash of the definition: node kinds, names, structure and the code of its functions.

    Changing the logic of a step (an event handler, a pure function, a condition) changes
    the fingerprint, so snapshots taken before are not used: replay applies the new logic.
    """
    digest = hashlib.sha256()

    def walk(w: Node) -> None:
        digest.update(f"{w.kind}:{w.display_name}(".encode())
        for field in dataclasses.fields(w):
            value = getattr(w, field.name)
            if callable(value) and not isinstance(value, type | WIO):
                _code(value, digest)
            elif field.name == "branches" and isinstance(value, tuple):
                for branch in value:
                    if hasattr(branch, "select"):
                        _code(branch.select, digest)
        for label, child in definition_children(w):
            digest.update(label.encode())
            walk(child)
        digest.update(b")")

    cached = _FINGERPRINTS.get(definition)
    if cached is None:
        walk(definition)
        cached = _FINGERPRINTS[definition] = digest.hexdigest()[:16]
    return cached


_FINGERPRINTS: weakref.WeakKeyDictionary[Node, str] = weakref.WeakKeyDictionary()


def encode_execution(
    execution: Execution, workflow: type[Workflow[Any, Any]], *, own_initial: bool = False
) -> str:
    """The snapshot body of ``execution``; raises SnapshotError if something cannot be stored.

    ``own_initial`` says the initial state is the instance's own (stored in its journal),
    so that loading the snapshot takes it rather than checking it against a default.
    """
    t = snapshot_types(workflow)
    body = {
        "format": FORMAT,
        "definition": fingerprint(workflow.definition),
        "next_index": execution.next_index,
        "events": execution.events_applied,
        "initial": t.enc(execution.initial_state),
        "tree": _overlay(execution.tree, t),
    }
    if not workflow.codecs().state.validate(execution.initial_state):
        raise SnapshotError("the initial state is not one of the workflow's states")
    if execution.terminated is not None:
        body["terminated"] = t.enc(execution.terminated)
    if own_initial:
        body["own_initial"] = True
    return json.dumps(body, separators=(",", ":"), allow_nan=False)


def decode_execution(
    data: str, workflow: type[Workflow[Any, Any]], initial_state: Any
) -> Execution:
    """The execution a snapshot body describes, laid over the workflow's definition.

    Raises SnapshotRefused if it does not fit: another definition or format, a type
    outside the workflow's table, a value that does not validate, a malformed tree, or
    (unless the snapshot's initial state is the instance's own) an initial state other
    than ``initial_state``.
    """
    return decode_snapshot(data, workflow, initial_state)[0]


def decode_snapshot(
    data: str, workflow: type[Workflow[Any, Any]], default_initial: Any
) -> tuple[Execution, bool]:
    """:func:`decode_execution`, and whether the initial state is the instance's own."""
    definition = workflow.definition
    try:
        body = json.loads(data)
        if not isinstance(body, dict):
            raise SnapshotRefused("not a snapshot")
        if body.get("format") not in _READ or body.get("definition") != fingerprint(definition):
            raise SnapshotRefused("written for another definition or format")
        t = snapshot_types(workflow)
        own = body.get("own_initial", False)
        if own is not True and own is not False:
            raise SnapshotRefused("malformed own_initial")
        initial_state = t.dec(body["initial"])
        if not workflow.codecs().state.validate(initial_state):
            raise SnapshotRefused("its initial state is not one of the workflow's states")
        if not own and initial_state != default_initial:
            raise SnapshotRefused("written for another initial state")
        next_index, events = body["next_index"], body["events"]
        if type(next_index) is not int or type(events) is not int or min(next_index, events) < 0:
            raise SnapshotRefused("malformed counters")
        tree = _lay(definition, body["tree"], t)
        terminated = t.dec(body["terminated"]) if "terminated" in body else None
        if terminated is not None and not isinstance(terminated, Terminated):
            raise SnapshotRefused("malformed termination")
        return Execution(tree, initial_state, next_index, events, terminated), own
    except SnapshotRefused:
        raise
    except SnapshotError as e:
        raise SnapshotRefused(str(e)) from e
    except Exception as e:  # anything else about a stored snapshot: not usable
        raise SnapshotRefused(f"does not decode: {type(e).__name__}: {e}") from e


# -- the seal -----------------------------------------------------------------------------------

_SEAL = "w4p1"
_HEX = frozenset("0123456789abcdef")


def key_id(key: bytes) -> str:
    """A short public name of a snapshot key, so a snapshot of another key is told apart."""
    return hmac.new(key, b"workflows4py snapshot key id", hashlib.sha256).hexdigest()[:12]


def event_digest(event_type: str, data: str) -> str:
    """A digest of a journal event, binding a snapshot to the last event it covers."""
    return hashlib.sha256(f"{event_type}\x00{data}".encode()).hexdigest()[:32]


def _mac(key: bytes, instance: str, sequence: int, last: str, body: str) -> str:
    head = f"{_SEAL}\x00{instance}\x00{sequence}\x00{last}\x00".encode()
    return hmac.new(key, head + body.encode(), hashlib.sha256).hexdigest()


def seal(key: bytes, instance: str, sequence: int, last: str, body: str) -> str:
    """The stored text of a snapshot: ``body`` with an HMAC over everything it claims.

    ``instance`` names the instance (workflow and id), ``sequence`` is the journal position
    the snapshot was taken at and ``last`` the :func:`event_digest` of the event there ("" at
    position 0), so a snapshot cannot be moved to another instance or position, nor kept
    over a journal whose covered tail was changed.
    """
    return f"{_SEAL}:{key_id(key)}:{_mac(key, instance, sequence, last, body)}:{body}"


def unseal(key: bytes, instance: str, sequence: int, last: str, data: str) -> str:
    """The body of a sealed snapshot, if the seal holds; else SnapshotRefused."""
    parts = data.split(":", 3) if isinstance(data, str) else []
    if len(parts) != 4 or parts[0] != _SEAL:
        raise SnapshotRefused("not sealed")
    _, kid, mac, body = parts
    if len(kid) != 12 or len(mac) != 64 or not _HEX.issuperset(kid + mac):
        raise SnapshotRefused("its seal is malformed")
    if not hmac.compare_digest(kid, key_id(key)):
        raise SnapshotRefused("sealed under another snapshot key", foreign=True)
    if not hmac.compare_digest(mac, _mac(key, instance, sequence, last, body)):
        raise SnapshotRefused("its seal does not match (the row was changed)")
    return body
