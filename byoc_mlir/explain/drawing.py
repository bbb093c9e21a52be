"""What the partition picture shows, independent of any output format.

`Drawing` is one picture's data (the model, its collapsed graph, the backend colours,
the title); `Drawing.scene` describes it as a `Scene`: nodes (label, fill colours in
proportion to their ops, dashed when they fell back, hover text), clusters (one per
region, filled with a tint of its backend's colour; an outer dashed one per function when
the model has several), edges, the legend and the heading. The emitters read only the
scene: `byoc_mlir.explain.dot` writes it as DOT, `byoc_mlir.explain.layout` places it and
`byoc_mlir.explain.svg` draws it; `byoc_mlir.explain.page` wraps the SVG in a page. The
geometry types live here too: the layout takes a `Graph` (sizes, cluster tree, edges)
and returns a `Layout` (boxes and edge routes) that the SVG emitter reads.
Keeping the description here, apart from the emitters, is what lets the picture have
several formats without the modules importing one another in a cycle.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from byoc_mlir.explain.collapse import Collapsed, Model, Unit, label, plural, tooltip
from byoc_mlir.explain.decisions import OpRecord

PALETTE = (
    "#66c2a5", "#fc8d62", "#8da0cb", "#e78ac3", "#a6d854", "#ffd92f",
    "#e5c494", "#80b1d3", "#fdb462", "#bc80bd", "#7fc97f", "#fb8072",
)  # fmt: skip
"""ColorBrewer Set2, Set3 and Accent: light enough under black text, none of them grey."""
HOST = "#d9d9d9"
"""Host ops."""
FALLBACK = "#bdbdbd"
"""Ops of a region whose codegen failed (drawn dashed)."""
STEPS = {
    1: "chains of ops collapsed",
    2: "regions shown whole, like siblings merged",
    3: "regions shown whole, chains of regions and host ops collapsed",
    4: "slices of the graph collapsed",
}


def backend_colours(backends: Iterable[str]) -> dict[str, str]:
    """A colour per backend, stable across models: a hash of the name picks the palette
    slot; a taken slot moves on to the next free one (names sorted: deterministic)."""
    taken: set[int] = set()
    out: dict[str, str] = {}
    for name in sorted(set(backends)):
        slot = zlib.crc32(name.encode()) % len(PALETTE)
        free = [s for s in range(len(PALETTE)) if (slot + s) % len(PALETTE) not in taken]
        slot = (slot + free[0]) % len(PALETTE) if free else slot  # past 12: colours repeat
        taken.add(slot)
        out[name] = PALETTE[slot]
    return out


def tint(colour: str, amount: float = 0.72) -> str:
    """The colour mixed with white: a region's background under its nodes."""
    return _mix(colour, 255, amount)


def shade(colour: str, amount: float = 0.35) -> str:
    """The colour mixed with black: a region's border."""
    return _mix(colour, 0, amount)


def _mix(colour: str, towards: int, amount: float) -> str:
    rgb = [int(colour[k : k + 2], 16) for k in (1, 3, 5)]
    return "#" + "".join(f"{round(c + (towards - c) * amount):02x}" for c in rgb)


# --- the scene and its geometry ----------------------------------------------------------


@dataclass
class Node:
    """A drawn node (a `Unit`): ``fills`` are (colour, ops of that colour), most first."""

    id: str
    label: str
    tooltip: str
    fills: list[tuple[str, int]]
    dashed: bool
    cluster: str | None
    """The innermost cluster holding it (its id), or None."""


@dataclass
class Cluster:
    """A box around nodes: a region (``kind`` "region") or a function ("function")."""

    id: str
    kind: str
    label: str
    tooltip: str
    parent: str | None
    fill: str | None
    border: str
    dashed: bool


@dataclass
class Scene:
    """The picture: ``clusters`` list parents before children, ``edges`` are node ids."""

    heading: list[str]
    nodes: list[Node]
    clusters: list[Cluster]
    edges: list[tuple[str, str]]
    legend: list[tuple[str, str]]
    """(colour, what it means) rows."""


@dataclass
class Graph:
    """What the layout needs: node sizes, the cluster tree, edges (ids in drawing order)."""

    sizes: dict[str, tuple[float, float]]
    owner: dict[str, str | None]
    """Node -> its innermost cluster."""
    parent: dict[str, str | None]
    """Cluster -> its enclosing cluster (parents listed before children)."""
    label_sizes: dict[str, tuple[float, float]]
    edges: list[tuple[str, str]]


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2


@dataclass
class Layout:
    nodes: dict[str, Box]
    clusters: dict[str, Box]
    """Boxes of the clusters that have members."""
    edges: list[tuple[str, str, list[tuple[float, float]]]]
    """(source, target, points from the source's border to the target's)."""
    layers: dict[str, int]
    width: float
    height: float


@dataclass
class Drawing:
    """What one picture shows: the model, its collapsed graph, colours, title; its scene
    (`build_scene`) and DOT text once drawn."""

    model: Model
    collapsed: Collapsed
    colours: dict[str, str]
    title: str
    dot: str = ""
    tips: dict[str, str] = field(default_factory=dict)
    """SVG element id -> hover text (nodes and region clusters)."""
    scene: Scene | None = None

    def node_of(self) -> dict[int, str]:
        """OpRecord index -> the id of the node drawing it."""
        return {m: f"u{k}" for k, u in enumerate(self.collapsed.units) for m in u.members}

    def colour(self, op: OpRecord) -> str:
        if op.region is not None and op.region in self.model.fallbacks:
            return FALLBACK
        if op.backend is None or self.model.on_host(op):
            return HOST
        return self.colours[op.backend]

    def summary(self) -> str:
        ops = self.model.ops
        host = sum(1 for o in ops if self.model.on_host(o))
        regions = {o.region for o in ops if o.region and not self.model.on_host(o)}
        text = f"{len(ops)} ops: {len(ops) - host} in {len(regions)} regions, {host} on the host"
        return text + f" ({STEPS[self.collapsed.step]})" if self.collapsed.step > 1 else text

    def legend(self) -> list[tuple[str, str]]:
        """(colour, meaning): each backend, the host, and "fell back" when a region did."""
        rows = [(c, b) for b, c in sorted(self.colours.items())]
        rows.append((HOST, "host (IREE)"))
        if self.model.fallbacks:
            rows.append((FALLBACK, "fell back to the host"))
        return rows


def build_scene(drawing: Drawing) -> Scene:
    """The drawing's scene (also fills ``drawing.tips`` and sets ``drawing.scene``).

    Nodes keep the collapsed graph's order; a region is a cluster only while regions are
    not collapsed into single nodes (step 1); a function is a cluster when the model has
    several and the node's ops all belong to it.
    """
    model, collapsed = drawing.model, drawing.collapsed
    functions = list(dict.fromkeys(o.function for o in model.ops))
    nodes: list[Node] = []
    clusters: dict[str, Cluster] = {}
    members: dict[str, list[int]] = {}
    places: dict[tuple[str | None, str], str] = {}  # (function cluster, region) -> id
    for k, unit in enumerate(collapsed.units):
        names = {model.ops[m].function for m in unit.members}
        function = names.pop() if len(names) == 1 and len(functions) > 1 else None
        outer = None
        if function is not None:
            outer = f"cluster_fn_{functions.index(function)}"
            if outer not in clusters:
                clusters[outer] = Cluster(
                    outer, "function", f"@{function}", f"@{function}", None, None, "#555555", True
                )
        region = unit.group if collapsed.step == 1 else None
        inner = outer
        if region is not None:  # (a region spanning functions would be one box per function)
            seen = sum(1 for _, r in places if r == region)
            inner = places.setdefault(
                (outer, region), f"cluster_{region}" + f"#{seen + 1}" * bool(seen)
            )
            if inner not in clusters:
                clusters[inner] = Cluster(inner, "region", region, "", outer, None, "", False)
            members.setdefault(inner, []).append(k)
        drawing.tips[f"u{k}"] = tooltip(model, unit)
        fills, dashed = _fills(drawing, unit)
        nodes.append(Node(f"u{k}", label(model, unit), drawing.tips[f"u{k}"], fills, dashed, inner))
    for inner, ks in members.items():
        _fill_region(drawing, clusters[inner], ks)
    ordered = [c for c in clusters.values() if c.kind == "function"]
    ordered += [c for c in clusters.values() if c.kind == "region"]
    heading = [x for x in (drawing.title, drawing.summary()) if x]
    edges = [(f"u{u}", f"u{v}") for u, v in sorted(collapsed.edges)]
    drawing.scene = Scene(heading, nodes, ordered, edges, drawing.legend())
    return drawing.scene


def _fills(drawing: Drawing, unit: Unit) -> tuple[list[tuple[str, int]], bool]:
    """The unit's colours with their op counts (most first); dashed if mostly fell back."""
    counts = Counter(drawing.colour(drawing.model.ops[m]) for m in unit.members).most_common()
    return counts, counts[0][0] == FALLBACK


def _fill_region(drawing: Drawing, cluster: Cluster, ks: list[int]) -> None:
    model, region = drawing.model, cluster.label
    ops = [model.ops[m] for k in ks for m in drawing.collapsed.units[k].members]
    composites = model.composites.get(region) or list(
        dict.fromkeys(o.composite for o in ops if o.composite)
    )
    colour = drawing.colour(ops[0])
    status = model.fallbacks.get(region)
    text = "\n".join([region, *([", ".join(composites)] if composites else [])])
    tip = f"{region}: {ops[0].backend}, {plural(len(ops), 'op')}, {sum(o.flops for o in ops)} FLOPs"
    drawing.tips[cluster.id] = tip + (f"\n{status}" if status else "")
    cluster.label = text + (" (fell back)" if status else "")
    cluster.tooltip = drawing.tips[cluster.id]
    cluster.fill, cluster.border, cluster.dashed = tint(colour), shade(colour), bool(status)
