"""Snapshots of an execution, so loading an instance replays only the journal's tail.

An :class:`~workflows4py._engine.Execution` is the definition tree rewritten as it ran. A
snapshot stores only what the run added to the definition (completed nodes with their
results, inputs and events; a timer's instants; a fork's choice; a loop's iterations; ...)
as an *overlay* mirroring the tree, never the definition's functions. Decoding walks the
current definition and lays the overlay over it.

Values inside the overlay (states, inputs, events) are encoded with their class's import
path. Anything that cannot be encoded that way means "no snapshot" for that instance; a
snapshot that no longer decodes (a class moved, a field changed, the definition's shape
changed: its fingerprint differs) is ignored and the instance is rebuilt by full replay.
Snapshots are an optimisation only: the journal stays the source of truth.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import functools
import hashlib
import importlib
import json
import math
import uuid
import weakref
from typing import Any

from ._engine import Execution
from ._engine_core import Executed
from ._result import Err, Ok
from ._walk import definition_children
from ._wio import EMPTY_HISTORY, WIO, Chain, FlatMap, HandleErrorWith, Transform
from ._wio_ops import (
    _UNSET,
    Checkpoint,
    Embedded,
    ForEach,
    Fork,
    Interruptible,
    Loop,
    Parallel,
    Retry,
    Timer,
)

__all__ = ["SnapshotError", "decode_execution", "encode_execution", "fingerprint"]

FORMAT = 2  # 2: flat sequences, loops keep their last iterations only
Node = WIO[Any, Any, Any]


class SnapshotError(Exception):
    """A value or a node cannot go into a snapshot, or a snapshot does not fit."""


# -- values -----------------------------------------------------------------------------------


def _path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


@functools.lru_cache(maxsize=1024)
def _resolve(path: str) -> Any:
    module, _, qualname = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _enc(v: Any) -> Any:
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            raise SnapshotError("non-finite float")
        return v
    if v is _UNSET:
        return {"$unset": 1}
    if isinstance(v, enum.Enum):
        return {"$enum": _path(type(v)), "v": _enc(v.value)}
    if isinstance(v, dt.datetime):
        return {"$dt": v.isoformat()}
    if isinstance(v, dt.date):
        return {"$date": v.isoformat()}
    if isinstance(v, dt.timedelta):
        return {"$td": [v.days, v.seconds, v.microseconds]}
    if isinstance(v, decimal.Decimal):
        return {"$dec": str(v)}
    if isinstance(v, uuid.UUID):
        return {"$uuid": str(v)}
    if isinstance(v, list):
        return [_enc(x) for x in v]
    if isinstance(v, tuple):
        return {"$tuple": [_enc(x) for x in v]}
    if isinstance(v, frozenset | set):
        return {"$set": [_enc(x) for x in v], "frozen": isinstance(v, frozenset)}
    if isinstance(v, dict):
        return {"$dict": [[_enc(k), _enc(x)] for k, x in v.items()]}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        if "<locals>" in type(v).__qualname__:
            raise SnapshotError(f"{type(v).__qualname__} is not importable")
        fields = {f.name: _enc(getattr(v, f.name)) for f in dataclasses.fields(v)}
        return {"$dc": _path(type(v)), "f": fields}
    dump = getattr(v, "model_dump", None)
    if callable(dump):  # a pydantic model
        return {"$model": _path(type(v)), "v": dump(mode="json")}
    raise SnapshotError(f"cannot snapshot a value of type {type(v).__qualname__}")


@functools.lru_cache(maxsize=1024)
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls))


def _dec(v: Any) -> Any:
    if isinstance(v, list):
        return [_dec(x) for x in v]
    if not isinstance(v, dict):
        return v
    if "$dc" in v:
        cls = _resolve(v["$dc"])
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise SnapshotError(f"{v['$dc']} is no longer a dataclass")
        obj = object.__new__(cls)
        if set(v["f"]) != _field_names(cls):
            raise SnapshotError(f"fields of {v['$dc']} changed")
        for name, value in v["f"].items():
            object.__setattr__(obj, name, _dec(value))
        return obj
    if "$tuple" in v:
        return tuple(_dec(x) for x in v["$tuple"])
    if "$dict" in v:
        return {_dec(k): _dec(x) for k, x in v["$dict"]}
    if "$set" in v:
        items = [_dec(x) for x in v["$set"]]
        return frozenset(items) if v["frozen"] else set(items)
    if "$dt" in v:
        return dt.datetime.fromisoformat(v["$dt"])
    if "$date" in v:
        return dt.date.fromisoformat(v["$date"])
    if "$td" in v:
        days, seconds, micros = v["$td"]
        return dt.timedelta(days=days, seconds=seconds, microseconds=micros)
    if "$dec" in v:
        return decimal.Decimal(v["$dec"])
    if "$uuid" in v:
        return uuid.UUID(v["$uuid"])
    if "$enum" in v:
        return _resolve(v["$enum"])(_dec(v["v"]))
    if "$model" in v:
        return _resolve(v["$model"]).model_validate(v["v"])
    if "$unset" in v:
        return _UNSET
    raise SnapshotError(f"unknown value encoding {sorted(v)}")


# -- the tree overlay -------------------------------------------------------------------------


def _result(r: Any) -> Any:
    return {"ok": _enc(r.value)} if isinstance(r, Ok) else {"err": _enc(r.error)}


def _unresult(d: Any) -> Any:
    return Ok(_dec(d["ok"])) if "ok" in d else Err(_dec(d["err"]))


def _overlay(w: Node) -> Any:
    if isinstance(w, Executed):
        return {
            "x": _overlay(w.node),
            "r": _result(w.result),
            "i": _enc(w.input),
            "n": w.index,
            "e": _enc(w.event),
        }
    match w:
        case Chain():
            current = None if w.current is None else _overlay(w.current)
            return {"done": [_overlay(step) for step in w.done], "current": current}
        case FlatMap():
            return {"base": _overlay(w.base), "next": None if w.next is None else _overlay(w.next)}
        case Transform() | Checkpoint():
            return {"base": _overlay(w.base)}
        case HandleErrorWith():
            return {"base": _overlay(w.base), "handler": _overlay(w.handler)}
        case Timer():
            return {"t": [_enc(w.started_at), _enc(w.resume_at)]}
        case Fork():
            current = None if w.current is None else _overlay(w.current)
            return {"chosen": w.chosen, "in": _enc(w.chosen_input), "current": current}
        case Loop():
            return {
                "finished": w.finished,
                "history": [_overlay(h) for h in w.history],
                "current": None if w.current is None else _overlay(w.current),
                "phase": w.phase,
                "in": _enc(w.phase_input),
            }
        case Parallel():
            return {"branches": [_overlay(b) for b in w.branches]}
        case ForEach():
            if w.running is None:
                return {"running": None}
            return {"running": [[k, _enc(e), _overlay(sub)] for k, e, sub in w.running]}
        case Embedded():
            return {"inner": _overlay(w.inner)}
        case Interruptible():
            return {
                "base": _overlay(w.base),
                "flow": _overlay(w.flow),
                "interrupted": w.interrupted,
                "in": _enc(w.flow_input),
            }
        case Retry():
            return {"base": _overlay(w.base), "state": _enc(w.state), "nb": _enc(w.not_before)}
    return 0  # a leaf that has not run: the definition node itself


def _lay(d: Node, o: Any) -> Node:
    """The definition node ``d`` with the overlay ``o`` laid over it."""
    if isinstance(o, dict) and "x" in o:
        return Executed(
            node=_lay(d, o["x"]),
            result=_unresult(o["r"]),
            input=_dec(o["i"]),
            index=o["n"],
            event=_dec(o["e"]),
        )
    if o == 0:
        return d
    match d:
        case Chain():
            return _lay_chain(d, o)
        case FlatMap():
            base = _lay(d.base, o["base"])
            nxt = None
            if o["next"] is not None:
                if not (isinstance(base, Executed) and isinstance(base.result, Ok)):
                    raise SnapshotError("flat_map step without a completed base")
                nxt = _lay(d.fn(base.result.value), o["next"])
            return dataclasses.replace(d, base=base, next=nxt)
        case Transform() | Checkpoint():
            return dataclasses.replace(d, base=_lay(d.base, o["base"]))
        case HandleErrorWith():
            return dataclasses.replace(
                d, base=_lay(d.base, o["base"]), handler=_lay(d.handler, o["handler"])
            )
        case Timer():
            started, resume = (_dec(x) for x in o["t"])
            return dataclasses.replace(d, started_at=started, resume_at=resume)
        case Fork():
            chosen = o["chosen"]
            current = None
            if chosen is not None and o["current"] is not None:
                current = _lay(d.branches[chosen].wio, o["current"])
            return dataclasses.replace(
                d, chosen=chosen, chosen_input=_dec(o["in"]), current=current
            )
        case Loop():
            # the kept runs are the last ones; with on_restart, even runs are the body's
            finished = o["finished"]
            first = finished - len(o["history"])
            if first < 0:
                raise SnapshotError("loop keeps more runs than it counts")
            history = tuple(
                _lay(d.body if d.on_restart is None or (first + i) % 2 == 0 else _restart(d), h)
                for i, h in enumerate(o["history"])
            )
            current = None
            if o["current"] is not None:
                current = _lay(d.body if o["phase"] == "body" else _restart(d), o["current"])
            return dataclasses.replace(
                d,
                finished=finished,
                history=history,
                current=current,
                phase=o["phase"],
                phase_input=_dec(o["in"]),
            )
        case Parallel():
            if len(o["branches"]) != len(d.branches):
                raise SnapshotError("parallel branches changed")
            branches = tuple(_lay(b, bo) for b, bo in zip(d.branches, o["branches"], strict=True))
            return dataclasses.replace(d, branches=branches)
        case ForEach():
            if o["running"] is None:
                return d
            running = tuple((k, _dec(e), _lay(d.body, so)) for k, e, so in o["running"])
            return dataclasses.replace(d, running=running)
        case Embedded():
            return dataclasses.replace(d, inner=_lay(d.inner, o["inner"]))
        case Interruptible():
            return dataclasses.replace(
                d,
                base=_lay(d.base, o["base"]),
                flow=_lay(d.flow, o["flow"]),
                interrupted=o["interrupted"],
                flow_input=_dec(o["in"]),
            )
        case Retry():
            return dataclasses.replace(
                d, base=_lay(d.base, o["base"]), state=_dec(o["state"]), not_before=_dec(o["nb"])
            )
    raise SnapshotError(f"overlay does not fit a {d.kind} node")


def _lay_chain(d: Chain, o: Any) -> Chain:
    ran = o["done"]
    if len(ran) + (o["current"] is not None) > len(d.steps):
        raise SnapshotError("sequence has fewer steps")
    done = EMPTY_HISTORY
    for step, so in zip(d.steps, ran, strict=False):
        laid = _lay(step, so)
        if not isinstance(laid, Executed):
            raise SnapshotError("completed step of a sequence without a result")
        done = done.append(laid)
    current = None if o["current"] is None else _lay(d.steps[len(ran)], o["current"])
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


def encode_execution(execution: Execution, definition: Node) -> str:
    """The snapshot text of ``execution``; raises SnapshotError if something cannot be stored."""
    body = {
        "format": FORMAT,
        "definition": fingerprint(definition),
        "next_index": execution.next_index,
        "events": execution.events_applied,
        "initial": _enc(execution.initial_state),
        "tree": _overlay(execution.tree),
    }
    return json.dumps(body, separators=(",", ":"), allow_nan=False)


def decode_execution(data: str, definition: Node, initial_state: Any) -> Execution:
    """The execution a snapshot describes, laid over ``definition``; raises SnapshotError."""
    try:
        body = json.loads(data)
        if body.get("format") != FORMAT or body.get("definition") != fingerprint(definition):
            raise SnapshotError("snapshot of another definition or format")
        if _dec(body["initial"]) != initial_state:
            raise SnapshotError("snapshot of another initial state")
        tree = _lay(definition, body["tree"])
        return Execution(tree, initial_state, body["next_index"], body["events"])
    except SnapshotError:
        raise
    except Exception as e:  # anything else about an old snapshot: not usable
        raise SnapshotError(f"snapshot does not decode: {e!r}") from e
