"""A layered left-to-right layout for flow diagrams: nodes in columns, flows drawn with
right angles, expanded subprocesses sized from their content.

The steps, on each graph (a subprocess's content first, so that its size is known):

1. *Ranks*: each node's column is the length of the longest path reaching it from a node
   with no incoming flow; a flow marked ``back`` (a loop's way back) counts reversed, so
   the graph has no cycle.
2. *Dummies*: a flow that spans several columns passes through one dummy point per column
   it crosses; flows into the same node share their dummies, so they run as one lane.
3. *Order* within each column: a depth-first walk that follows flows in the order they were
   made (the main path first), then barycenter sweeps kept only while they remove crossings.
4. *Rows*: each node is aligned with its first free predecessor (the flow made first wins),
   as in Brandes and Köpf's method; an aligned chain is one straight line, placed as high
   as the chains above it allow, with room kept for labels above and below the shapes.
5. *Columns* get the width of their widest node plus a gap wide enough for the labels and
   the vertical segments of the flows that change rows there.
6. *Flows* leave a shape on its right and enter on its left; a gateway's flow to or from
   another row uses its top or bottom corner; a boundary event's flow leaves downwards.

Everything is deterministic: the same graph gives the same coordinates.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Literal

__all__ = ["BOUNDARY", "Box", "Edge", "Graph", "Layout", "Node", "Point", "Shape", "layout"]

Shape = Literal["event", "gateway", "activity"]
Point = tuple[float, float]

COLUMN_GAP = 50.0
"""The least horizontal room between two columns."""
ROW_GAP = 36.0
"""The least vertical room between two shapes of a column (beyond their labels)."""
LANE = 8.0
"""The room kept on each side of a lane (a flow passing through a column)."""
CHANNEL = 12.0
"""The distance between two vertical segments side by side in a gap."""
BOUNDARY = 36.0
"""The size of a boundary event."""
PADDING = (30.0, 40.0, 30.0, 30.0)
"""The room around a subprocess's content: left, top (its title), right, bottom."""


@dataclass(frozen=True, slots=True)
class Box:
    """A rectangle: its top left corner and its size."""

    x: float
    y: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.x + self.width

    @property
    def bottom(self) -> float:
        return self.y + self.height

    @property
    def cx(self) -> float:
        return self.x + self.width / 2

    @property
    def cy(self) -> float:
        return self.y + self.height / 2

    def moved(self, dx: float, dy: float) -> Box:
        return Box(self.x + dx, self.y + dy, self.width, self.height)


@dataclass(eq=False, slots=True)
class Node:
    """A shape to place. ``above``/``below``: room to keep free over and under it (its
    labels, annotations, boundary events); ``inner``: the content of an expanded subprocess
    (its size then comes from the content); ``attached``: the ids of the boundary events on
    its lower edge, in the order they were made; ``room``: the width its column needs at
    least (for an annotation wider than the shape); ``backward``: drawn on a way back, so
    that its flows come in on its right and leave on its left."""

    id: str
    shape: Shape
    width: float
    height: float
    above: float = 0.0
    below: float = 0.0
    inner: Graph | None = None
    attached: list[str] = field(default_factory=list)
    room: float = 0.0
    backward: bool = False


@dataclass(frozen=True, slots=True)
class Edge:
    """A flow from ``source`` to ``target`` (node ids, or a boundary event's id as the
    source); ``back`` for a flow drawn right to left; ``label``: the size of its label."""

    id: str
    source: str
    target: str
    back: bool = False
    label: tuple[float, float] | None = None


@dataclass(slots=True)
class Graph:
    """The nodes and flows of one process or subprocess, in the order they were made."""

    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)


@dataclass(slots=True)
class Layout:
    """Where everything went: boxes of nodes and boundary events, the points of each flow,
    the boxes of flow labels, and the box around it all (labels and room included)."""

    boxes: dict[str, Box] = field(default_factory=dict)
    waypoints: dict[str, list[Point]] = field(default_factory=dict)
    labels: dict[str, Box] = field(default_factory=dict)
    extent: Box = Box(0, 0, 0, 0)

    def moved(self, dx: float, dy: float) -> Layout:
        return Layout(
            {k: b.moved(dx, dy) for k, b in self.boxes.items()},
            {k: [(x + dx, y + dy) for x, y in ps] for k, ps in self.waypoints.items()},
            {k: b.moved(dx, dy) for k, b in self.labels.items()},
            self.extent.moved(dx, dy),
        )


def layout(graph: Graph, x: float = 0.0, y: float = 0.0) -> Layout:
    """Places ``graph`` (and the content of its subprocesses) with the top left corner of
    everything it draws at ``(x, y)``."""
    found = _Layered(graph).run()
    return found.moved(x - found.extent.x, y - found.extent.y)


# -- one graph ----------------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class _Item:
    """A node of the layered graph: a real node, or a dummy point of a long flow."""

    id: str
    width: float
    height: float
    above: float
    below: float
    node: Node | None
    rank: int = 0
    pos: int = 0
    y: float = 0.0
    x: float = 0.0  # the centre
    port: str | None = None  # a port: the id of its host

    @property
    def top(self) -> float:
        return self.y - self.height / 2 - self.above

    @property
    def low(self) -> float:
        return self.y + self.height / 2 + self.below


_NO_PORT = _Item("", 0.0, 0.0, 0.0, 0.0, None)


@dataclass(frozen=True, slots=True)
class _Link:
    """An edge of the layered graph, left to right, with the rank of the flow made first
    that runs along it."""

    left: str
    right: str
    priority: int


class _Layered:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.inner: dict[str, Layout] = {}
        self.items: dict[str, _Item] = {}
        self.hosts: dict[str, Node] = {}
        for node in graph.nodes:
            width, height = node.width, node.height
            if node.inner is not None:
                content = _Layered(node.inner).run()
                left, top, right, bottom = PADDING
                width = max(width, content.extent.width + left + right)
                height = max(height, content.extent.height + top + bottom)
                self.inner[node.id] = content.moved(left - content.extent.x, top - content.extent.y)
            self.items[node.id] = _Item(node.id, width, height, node.above, node.below, node)
            for boundary in node.attached:
                self.hosts[boundary] = node
        self.links: list[_Link] = []
        self.chains: dict[str, list[str]] = {}  # edge id -> item ids, left to right
        self.layers: list[list[_Item]] = []

    def run(self) -> Layout:
        if not self.items:
            return Layout()
        self._rank()
        self._order()
        self._rows()
        self._columns()
        return self._draw()

    # 1. ranks --------------------------------------------------------------------------------

    def _ends(self, edge: Edge) -> tuple[str, str]:
        """The edge's ends in the layered graph, left first."""
        source = self.hosts[edge.source].id if edge.source in self.hosts else edge.source
        return (edge.target, source) if edge.back else (source, edge.target)

    def _rank(self) -> None:
        succ: dict[str, list[str]] = {k: [] for k in self.items}
        indegree = dict.fromkeys(self.items, 0)
        for edge in self.graph.edges:
            left, right = self._ends(edge)
            succ[left].append(right)
            indegree[right] += 1
        ready = [k for k in self.items if indegree[k] == 0]
        done = 0
        while ready:
            current = ready.pop(0)
            done += 1
            for nxt in succ[current]:
                item = self.items[nxt]
                item.rank = max(item.rank, self.items[current].rank + 1)
                indegree[nxt] -= 1
                if indegree[nxt] == 0:
                    ready.append(nxt)
        if done != len(self.items):
            raise ValueError("the flows form a cycle that no flow marked back breaks")
        # 2. dummies: a long flow passes through one point per column, shared by the flows
        # that go to the same node in the same direction; a boundary event's flow starts at a
        # port, a point right under its host, shared by the host's flows to the same node
        for priority, edge in enumerate(self.graph.edges):
            left, right = self._ends(edge)
            chain = [left]
            if edge.source in self.hosts and not edge.back:
                rank = self.items[left].rank
                key = f"{right}|on|{rank}"
                if self.items.get(key, _NO_PORT).port not in (None, left):
                    key = f"{left}>{right}"
                port = self.items.setdefault(key, _Item(key, 0.0, 0.0, LANE, LANE, None, rank))
                port.port = left
                chain = [key]
            for rank in range(self.items[left].rank + 1, self.items[right].rank):
                key = f"{right}|{'back' if edge.back else 'on'}|{rank}"
                if key not in self.items:
                    self.items[key] = _Item(key, 0.0, 0.0, LANE, LANE, None, rank)
                chain.append(key)
            chain.append(right)
            self.chains[edge.id] = chain
            self.links.extend(_Link(a, b, priority) for a, b in pairwise(chain))
        self.links = _unique(self.links)

    # 3. order --------------------------------------------------------------------------------

    def _order(self) -> None:
        count = 1 + max(item.rank for item in self.items.values())
        succ: dict[str, list[_Link]] = {k: [] for k in self.items}
        for link in sorted(self.links, key=lambda link: link.priority):
            succ[link.left].append(link)
        has_pred = {link.right for link in self.links}
        layers: list[list[_Item]] = [[] for _ in range(count)]
        seen: set[str] = set()
        for start in [k for k in self.items if k not in has_pred] + list(self.items):
            stack = [start]
            while stack:
                current = stack.pop()
                if current in seen:
                    continue
                seen.add(current)
                layers[self.items[current].rank].append(self.items[current])
                stack.extend(link.right for link in reversed(succ[current]))
        self.layers = layers
        self._number()
        best = ([list(layer) for layer in layers], self._crossings())
        for _ in range(6):
            for down in (True, False):
                self._sweep(down)
                crossings = self._crossings()
                if crossings < best[1]:
                    best = ([list(layer) for layer in self.layers], crossings)
        self.layers = best[0]
        self._number()

    def _number(self, only: int | None = None) -> None:
        """Numbers the items of each layer (or of layer ``only``), a port found above its
        host moved right under it (a boundary event's flow leaves downwards)."""
        for i in range(len(self.layers)) if only is None else (only,):
            ordered: list[_Item] = []
            seen: set[str] = set()
            early: dict[str, list[_Item]] = {}
            for item in self.layers[i]:
                if item.port is not None and item.port not in seen:
                    early.setdefault(item.port, []).append(item)
                    continue
                ordered.append(item)
                seen.add(item.id)
                ordered.extend(early.pop(item.id, ()))
            ordered.extend(p for ports in early.values() for p in ports)  # (never: hosts share it)
            self.layers[i] = ordered
            for pos, item in enumerate(ordered):
                item.pos = pos

    def _sweep(self, down: bool) -> None:
        neighbours: dict[str, list[str]] = {k: [] for k in self.items}
        for link in self.links:
            if down:
                neighbours[link.right].append(link.left)
            else:
                neighbours[link.left].append(link.right)
        indexes = range(1, len(self.layers)) if down else range(len(self.layers) - 2, -1, -1)
        for i in indexes:

            def key(item: _Item) -> float:
                near = neighbours[item.id]
                if not near:
                    return float(item.pos)
                return sum(self.items[n].pos for n in near) / len(near)

            self.layers[i] = sorted(self.layers[i], key=key)
            self._number(i)

    def _crossings(self) -> int:
        by_rank: dict[int, list[tuple[int, int]]] = {}
        for link in self.links:
            left, right = self.items[link.left], self.items[link.right]
            by_rank.setdefault(left.rank, []).append((left.pos, right.pos))
        count = 0
        for pairs in by_rank.values():
            for i, (a1, b1) in enumerate(pairs):
                for a2, b2 in pairs[i + 1 :]:
                    if (a1 - a2) * (b1 - b2) < 0:
                        count += 1
        return count

    # 4. rows ---------------------------------------------------------------------------------

    def _rows(self) -> None:
        preds: dict[str, list[_Link]] = {k: [] for k in self.items}
        for link in sorted(self.links, key=lambda link: link.priority):
            preds[link.right].append(link)
        root = {k: k for k in self.items}
        taken: set[str] = set()
        for layer in self.layers[1:]:
            last = -1
            for item in layer:
                for link in preds[item.id]:
                    upper = self.items[link.left]
                    if link.left in taken or upper.pos <= last:
                        continue
                    root[item.id] = root[link.left]
                    taken.add(link.left)
                    last = upper.pos
                    break
        # a chain's row: as high as the chains above it (in each column) allow
        above: dict[str, dict[str, float]] = {r: {} for r in set(root.values())}
        for layer in self.layers:
            for upper, lower in pairwise(layer):
                gap = upper.height / 2 + upper.below + ROW_GAP + lower.above + lower.height / 2
                if upper.node is None or lower.node is None:
                    gap = upper.height / 2 + upper.below + lower.above + lower.height / 2
                    gap += 4 if upper.node is None and lower.node is None else ROW_GAP / 2
                a, b = root[upper.id], root[lower.id]
                if a != b:
                    above[b][a] = max(above[b].get(a, 0.0), gap)
        rows: dict[str, float] = {}
        pending = sorted(above, key=lambda r: (self.items[r].rank, self.items[r].pos))
        while pending:
            ready = [r for r in pending if all(a in rows for a in above[r])]
            if not ready:
                raise ValueError("the rows of the layout form a cycle")
            for r in ready:
                rows[r] = max((rows[a] + gap for a, gap in above[r].items()), default=0.0)
            pending = [r for r in pending if r not in rows]
        for item in self.items.values():
            item.y = rows[root[item.id]]
        self.root = root

    # 5. columns ------------------------------------------------------------------------------

    def _columns(self) -> None:
        widths = [
            max((max(i.width, i.node.room if i.node else 0.0) for i in layer), default=0.0)
            for layer in self.layers
        ]
        gaps = [COLUMN_GAP] * len(self.layers)
        edges = {edge.id: edge for edge in self.graph.edges}
        changes: dict[int, set[str]] = {}
        for edge_id, chain in self.chains.items():
            edge = edges[edge_id]
            for a, b in pairwise(chain):
                left, right = self.items[a], self.items[b]
                if left.y != right.y:
                    changes.setdefault(left.rank, set()).add(b)
            first = self.items[chain[0]]
            if edge.label is not None and self.items[chain[1]].y == first.y:
                gaps[first.rank] = max(gaps[first.rank], edge.label[0] + 30)
        for rank, targets in changes.items():
            gaps[rank] = max(gaps[rank], CHANNEL * (len(targets) + 1) + 20)
        x = 0.0
        self.column_x: list[float] = []
        self.gap_x: list[float] = []
        for layer, width, gap in zip(self.layers, widths, gaps, strict=True):
            self.column_x.append(x)
            for item in layer:
                item.x = x + width / 2
            self.gap_x.append(x + width)
            x += width + gap
        self.gaps = gaps

    # 6. drawing ------------------------------------------------------------------------------

    def _box(self, item: _Item) -> Box:
        return Box(item.x - item.width / 2, item.y - item.height / 2, item.width, item.height)

    def _draw(self) -> Layout:
        found = Layout()
        for key, item in self.items.items():
            if item.node is None:
                continue
            box = self._box(item)
            found.boxes[key] = box
            if key in self.inner:
                inner = self.inner[key].moved(box.x, box.y)
                found.boxes.update(inner.boxes)
                found.waypoints.update(inner.waypoints)
                found.labels.update(inner.labels)
        self._place_boundaries(found)
        channels = self._channels()
        for edge in self.graph.edges:
            points = self._route(edge, found, channels)
            found.waypoints[edge.id] = points
            if edge.label is not None:
                found.labels[edge.id] = _label_box(points, edge.label)
        found.extent = _extent(
            [
                *(
                    Box(item.x - w / 2, item.top, w, item.low - item.top)
                    for item in self.items.values()
                    if item.node is not None
                    for w in [max(item.width, item.node.room)]
                ),
                *found.labels.values(),
                *found.boxes.values(),
            ],
            [p for points in found.waypoints.values() for p in points],
        )
        return found

    def _first_row(self, edge: Edge) -> float:
        """The row a boundary event's flow goes to first: its port's."""
        return self.items[self.chains[edge.id][0]].y

    def _place_boundaries(self, found: Layout) -> None:
        first_row = {
            e.source: self._first_row(e) for e in self.graph.edges if e.source in self.hosts
        }
        for node in self.graph.nodes:
            if not node.attached:
                continue
            host = found.boxes[node.id]
            # the flow going lowest leaves leftmost, so that no flow crosses another
            ordered = sorted(node.attached, key=lambda b: -first_row.get(b, 0.0))
            step = host.width / (len(ordered) + 1)
            for i, boundary in enumerate(ordered):
                cx = host.x + step * (i + 1)
                found.boxes[boundary] = Box(
                    cx - BOUNDARY / 2, host.bottom - BOUNDARY / 2, BOUNDARY, BOUNDARY
                )

    def _channels(self) -> dict[tuple[int, str], float]:
        """The x of the vertical segment of each flow changing rows in a gap, by the gap's
        rank and the point it goes to: segments going to the same point share one."""
        wanted: dict[int, list[tuple[str, float, float]]] = {}
        for chain in self.chains.values():
            for a, b in pairwise(chain):
                left, right = self.items[a], self.items[b]
                if left.y != right.y:
                    low, high = sorted((left.y, right.y))
                    wanted.setdefault(left.rank, []).append((b, low, high))
        found: dict[tuple[int, str], float] = {}
        for rank, segments in wanted.items():
            spans: dict[str, tuple[float, float]] = {}
            for target, low, high in segments:
                old = spans.get(target, (low, high))
                spans[target] = (min(old[0], low), max(old[1], high))
            tracks: list[list[tuple[float, float]]] = []
            assigned: dict[str, int] = {}
            for target, (low, high) in sorted(spans.items(), key=lambda kv: kv[1]):
                for i, track in enumerate(tracks):
                    if all(high < a - 4 or low > b + 4 for a, b in track):
                        track.append((low, high))
                        assigned[target] = i
                        break
                else:
                    tracks.append([(low, high)])
                    assigned[target] = len(tracks) - 1
            start, width = self.gap_x[rank], self.gaps[rank]
            for target, i in assigned.items():
                found[(rank, target)] = start + width * (i + 1) / (len(tracks) + 1)
        return found

    def _free(self, item: _Item, y: float, port: _Item | None = None) -> bool:
        """Whether nothing else of ``item``'s column lies between its centre and row ``y``.

        For a port of ``item``: no node and no lane but those of ``item``'s ports (they start
        at their boundary events, the lower ones further left).
        """
        low, high = sorted((item.y, y))
        return all(
            other is item or other.low < low or other.top > high
            for other in self.layers[item.rank]
            if other.node is not None or (port is not None and other.port != item.id)
        )

    def _turned(self, item: _Item, back: bool) -> bool:
        """Whether a flow marked ``back`` meets ``item``, a gateway drawn left to right, on
        the wrong side: it must use the gateway's top or bottom corner."""
        node = item.node
        return back and node is not None and node.shape == "gateway" and not node.backward

    def _end(self, item: _Item, row: float, back: bool) -> Literal["side", "top", "bottom"]:
        """Where a flow to or from the item in ``row`` meets ``item``: its side facing the
        flow, or a gateway's corner facing ``row`` (when nothing stands in between)."""
        node = item.node
        if node is None or node.shape != "gateway":
            return "side"
        if self._turned(item, back) or (row != item.y and self._free(item, row)):
            return "bottom" if row >= item.y else "top"
        return "side"

    def _route(
        self, edge: Edge, found: Layout, channels: dict[tuple[int, str], float]
    ) -> list[Point]:
        """The points of ``edge``, computed left to right along its chain (then reversed for
        a flow drawn right to left): out of the left end, along the rows of its dummies
        (changing rows in the gaps between columns), into the right end."""
        chain = [self.items[k] for k in self.chains[edge.id]]
        first, last = chain[0], chain[-1]
        start = self._end(first, chain[1].y, edge.back)
        end = self._end(last, chain[-2].y, edge.back)
        if len(chain) == 2 and "side" not in (start, end):  # one corner is enough
            if not self._turned(first, edge.back):
                start = "side"
            elif not self._turned(last, edge.back):
                end = "side"
        left_box, right_box = self._box(first), self._box(last)
        points: list[Point] = []
        if first.port is not None:
            # down to the port's lane; when something stands in the way, out to the gap just
            # under the host's labels
            boundary = found.boxes[edge.source]
            host = self.items[first.port]
            points.append((boundary.cx, boundary.bottom))
            current = first.y if self._free(host, first.y, first) else host.low - 4
        elif start == "side":
            points.append((left_box.right, first.y))
            current = first.y
        else:
            down = start == "bottom"
            points.append((left_box.cx, left_box.bottom if down else left_box.y))
            current = chain[1].y
            if (len(chain) == 2 and end != "side") or current == first.y:  # around, by a new row
                edges = (left_box.bottom, right_box.bottom) if down else (left_box.y, right_box.y)
                current = max(edges) + ROW_GAP / 2 if down else min(edges) - ROW_GAP / 2
        points.append((points[0][0], current))
        for left, right in pairwise(chain):
            target_row = current if right is last and end != "side" else right.y
            if target_row != current:
                gx = channels.get((left.rank, right.id))
                if gx is None:
                    gx = self.gap_x[left.rank] + self.gaps[left.rank] / 2
                points.append((gx, current))
                points.append((gx, target_row))
                current = target_row
        if end == "side":
            points.append((right_box.x, current))
        else:
            points.append((right_box.cx, current))
            points.append((right_box.cx, right_box.bottom if current > last.y else right_box.y))
        points = _simplify(points)
        return points[::-1] if edge.back else points


def _unique(links: Iterable[_Link]) -> list[_Link]:
    found: dict[tuple[str, str], _Link] = {}
    for link in links:
        key = (link.left, link.right)
        if key not in found or link.priority < found[key].priority:
            found[key] = link
    return list(found.values())


def _simplify(points: list[Point]) -> list[Point]:
    """Without repeated points and without points in the middle of a straight segment."""
    kept: list[Point] = []
    for p in points:
        if kept and kept[-1] == p:
            continue
        if len(kept) >= 2:
            (x1, y1), (x2, y2) = kept[-2], kept[-1]
            if (x1 == x2 == p[0]) or (y1 == y2 == p[1]):
                kept[-1] = p
                continue
        kept.append(p)
    return kept


def _label_box(points: list[Point], size: tuple[float, float]) -> Box:
    """A flow label's box: above the flow's first horizontal segment (after the bend when
    the flow leaves downwards or upwards, so that flows leaving one corner of a gateway keep
    their labels apart), on the side it goes to."""
    width, height = size
    for (x1, y1), (x2, y2) in pairwise(points):
        if y1 == y2 and x1 != x2:
            x = x1 + 6 if x2 > x1 else x1 - 6 - width
            return Box(x, y1 - height - 3, width, height)
    (x1, y1), (_, y2) = points[0], points[1]
    y = y1 + 4 if y2 > y1 else y1 - 4 - height
    return Box(x1 + 5, y, width, height)


def _extent(boxes: Iterable[Box], points: Iterable[Point]) -> Box:
    xs: list[float] = []
    ys: list[float] = []
    for box in boxes:
        xs += [box.x, box.right]
        ys += [box.y, box.bottom]
    for x, y in points:
        xs.append(x)
        ys.append(y)
    if not xs:
        return Box(0, 0, 0, 0)
    return Box(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))
