"""Walking a definition: every node reachable without running anything, with its path."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from ._wio import WIO, Chain, FlatMap, HandleErrorWith, Transform
from ._wio_ops import (
    Checkpoint,
    Embedded,
    ForEach,
    Fork,
    Interruptible,
    Loop,
    Parallel,
    Retry,
    StatefulRetry,
)

__all__ = ["definition_children", "definition_nodes", "recorded_event_types", "walk_with_paths"]

Node = WIO[Any, Any, Any]


def definition_children(w: Node) -> Iterator[tuple[str, Node]]:
    """The direct children of a definition node, each with a label for paths.

    Labels: ``step[<n>]`` (sequence), ``base``, ``handler``, ``branch[<name>]``,
    ``body``, ``on_restart``, ``branch[<n>]`` (parallel), ``element``, ``inner``,
    ``interruption``. A ``flat_map``'s next step is only known at run time.
    """
    match w:
        case Chain(steps=steps):
            for i, step in enumerate(steps):
                yield f"step[{i}]", step
        case FlatMap(base=base) | Transform(base=base) | Checkpoint(base=base) | Retry(base=base):
            yield "base", base
        case HandleErrorWith(base=base, handler=handler):
            yield "base", base
            yield "handler", handler
        case Fork(branches=branches):
            for branch in branches:
                yield f"branch[{branch.name}]", branch.wio
        case Loop(body=body, on_restart=on_restart):
            yield "body", body
            if on_restart is not None:
                yield "on_restart", on_restart
        case Parallel(branches=parallel):
            for i, part in enumerate(parallel):
                yield f"branch[{i}]", part
        case ForEach(body=body):
            yield "element", body
        case Embedded(inner=inner):
            yield "inner", inner
        case Interruptible(base=base, flow=flow):
            yield "base", base
            yield "interruption", flow
        case _:
            extra = getattr(w, "draft_children", None)
            if callable(extra):  # a draft node: children that cannot run
                yield from cast("Iterator[tuple[str, Node]]", extra())


def definition_nodes(w: Node, *, into_subworkflows: bool = True) -> Iterator[Node]:
    """Every node of a definition reachable without running it, parents first.

    With ``into_subworkflows=False`` the walk stops at embedded workflows and for-each
    elements, whose events are wrapped into the parent's.
    """
    yield w
    if not into_subworkflows and isinstance(w, Embedded | ForEach):
        return
    for _, child in definition_children(w):
        yield from definition_nodes(child, into_subworkflows=into_subworkflows)


def recorded_event_types(w: Node) -> set[type[Any]]:
    """Event classes the steps of ``w`` (outside sub-workflows) can record."""
    from ._wio import HandleSignal, RunIO
    from ._wio_ops import Recovery

    found: set[type[Any]] = set()
    for node in definition_nodes(w, into_subworkflows=False):
        if isinstance(node, RunIO | HandleSignal | Recovery | Checkpoint):
            found.update(node.event_types)
        elif isinstance(node, Retry) and isinstance(node.policy, StatefulRetry):
            found.update(node.policy.event_types)
    return found


def walk_with_paths(
    w: Node, path: tuple[str, ...] = ("root",)
) -> Iterator[tuple[tuple[str, ...], Node]]:
    """Every node with its path from the root; named nodes contribute their name.

    A path reads ``root > Create PR > branch[Yes]``: sequences are transparent, named
    steps add their name, structural children add their label.
    """
    yield path, w
    for label, child in definition_children(w):
        child_path = path if label.startswith("step[") else (*path, label)
        name = child.display_name
        if name is not None:
            child_path = (*child_path, name)
        yield from walk_with_paths(child, child_path)
