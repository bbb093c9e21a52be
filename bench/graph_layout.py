"""The partition picture's layout, ours against Graphviz and PyPI packages.

    python bench/graph_layout.py                        # ResNet-50, BERT-mini, synthetic
    python bench/graph_layout.py --models resnet50 --backend dnnl
    python bench/graph_layout.py --records-dir /tmp/recs  # keep/reuse the op records

Each model is partitioned as ``byoc-compile`` does it (the zoo model through its frontend
and IREE's input phase, then `byoc_mlir.partition` with ``--backend``; default
``testing``, whose regions are many and small, the hardest case for clusters; ``dnnl``
puts nearly every op of these two in one region), collapsed as ``--graph`` does, and laid
out by each engine from the same scene and node sizes (Graphviz gets the ``.dot`` text,
so its own font metrics):

  ours        `byoc_mlir.explain.layout` (pure Python, clusters)
  dot         Graphviz ``dot -Tjson`` when ``dot`` is on PATH (clusters), else n/a
  grandalf    grandalf's SugiyamaLayout (pure Python; no clusters), if installed
  igraph      python-igraph's layout_sugiyama (C; points: x scaled by the mean node
              width; no clusters), if installed
  graphlay    graphlay (Rust; compound nodes stand for the clusters), if installed
  pyelk       pyelk's port of ELK layered (pure Python; no clusters), if installed

The synthetic model is ``random`` of ``bench/partition_scaling.py`` at 2000 blocks
(collapsed below 400 nodes as the tools draw it); ``--synthetic-clusters`` adds a seeded
random DAG of 400 ops in 3 functions with convex regions, drawn uncollapsed.

Per engine: nodes and edges drawn, edge crossings (intersections of the drawn curves,
sampled, between edges without a common end), edges pointing up, node overlaps,
cluster violations (a node inside a box it does not belong to + pairs of boxes that
overlap without nesting; packages without clusters get their members' bounding box plus
8 pt), total edge length, drawing width x height (pt, without heading and legend), and
the layout's seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from byoc_mlir.explain.drawing import Graph, build_scene
from byoc_mlir.explain.layout import PAD, place
from byoc_mlir.explain.picture import draw
from byoc_mlir.explain.svg import graph_of

ROOT = Path(__file__).resolve().parents[1]
Point = tuple[float, float]
Rect = tuple[float, float, float, float]


@dataclass
class Geometry:
    nodes: dict[str, Rect]
    clusters: dict[str, Rect]
    edges: list[tuple[str, str, list[Point]]]
    seconds: float


# --- inputs ------------------------------------------------------------------------------


def zoo_records(name: str, backend: str, work: Path) -> list[Any]:
    """The op records of a zoo model partitioned for ``backend``, as byoc-compile gets them."""
    from iree.compiler import ir

    from byoc_mlir import _compat, frontends, partition, zoo
    from byoc_mlir.host_compile import iree
    from byoc_mlir.normalise import normalise

    inst = zoo.get(name).build(work / name)
    source = frontends.load(inst.model, inst.example_inputs)
    text = iree(source.data, ["--compile-to=input"], f"import {name}").decode()
    context = _compat.new_context()
    module = normalise(text, context, name, True, [])
    records: list[Any] = []
    with context, ir.Location.unknown():
        partition(module.operation, [backend], records=records)
    return records


def synthetic_records(blocks: int) -> list[Any]:
    """partition_scaling's seeded ``random`` family of ``blocks`` steps, partitioned."""
    from iree.compiler import ir

    from byoc_mlir import _compat, partition

    sys.path.insert(0, str(ROOT / "bench"))
    import partition_scaling

    text = partition_scaling.build_family("random", blocks, False)
    context = _compat.new_context()
    module = _compat.parse_module(text, context)
    records: list[Any] = []
    with context, ir.Location.unknown():
        partition(module.operation, ["testing"], records=records)
    return records


def clustered_records(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """A random DAG of ``n`` ops (two or three producers each) in 3 functions, with
    convex regions of 6 consecutive ops every other block."""
    rng = random.Random(seed)
    ops = []
    for k in range(n):
        fn, start = k * 3 // n, (k * 3 // n) * n // 3
        preds = (
            sorted({rng.randrange(max(start, k - 12), k) for _ in range(3)}) if k > start else []
        )
        region = f"testing.f{fn}_{k // 6}" if k // 6 % 2 else None
        ops.append({
            "id": f"f{fn}#{k}", "function": f"f{fn}", "op": "linalg.generic", "kind": "add",
            "location": "", "backend": "testing" if region else None, "region": region,
            "composite": None, "reason": None if region else "rejected: no", "flops": 1,
            "inputs": [f"f{fn}#{p}" for p in preds],
        })  # fmt: skip
    return ops


# --- engines -----------------------------------------------------------------------------


def ours(dot_text: str, g: Graph) -> Geometry:
    start = time.perf_counter()
    lay = place(g)
    seconds = time.perf_counter() - start
    rect: Callable[[Any], Rect] = lambda b: (b.x0, b.y0, b.x1, b.y1)  # noqa: E731
    edges = [(u, v, _sample_vertical(pts)) for u, v, pts in lay.edges]
    return Geometry(
        {k: rect(b) for k, b in lay.nodes.items()},
        {k: rect(b) for k, b in lay.clusters.items()},
        edges,
        seconds,
    )


def graphviz(dot_text: str, g: Graph) -> Geometry:
    exe = shutil.which("dot")
    assert exe
    start = time.perf_counter()
    done = subprocess.run(
        [exe, "-Tjson"], input=dot_text, capture_output=True, text=True, check=True
    )
    seconds = time.perf_counter() - start
    data = json.loads(done.stdout)
    flip = float(data["bb"].split(",")[3])
    nodes, clusters, names = {}, {}, {}
    for obj in data.get("objects", []):
        names[obj["_gvid"]] = obj["name"]
        if "bb" in obj and obj["name"].startswith("cluster_"):
            x0, y0, x1, y1 = map(float, obj["bb"].split(","))
            clusters[obj["id"] if "id" in obj else obj["name"]] = (x0, flip - y1, x1, flip - y0)
        elif "pos" in obj and obj["name"] in g.sizes:
            x, y = map(float, obj["pos"].split(","))
            w, h = float(obj["width"]) * 72, float(obj["height"]) * 72
            nodes[obj["name"]] = (x - w / 2, flip - y - h / 2, x + w / 2, flip - y + h / 2)
    edges = []
    for e in data.get("edges", []):
        parts = e["pos"].split()
        end = [p for p in parts if p.startswith("e,")]
        ctrl = [tuple(map(float, p.split(","))) for p in parts if p[:2] not in ("e,", "s,")]
        pts = _sample_bezier([(x, flip - y) for x, y in ctrl])
        if end:
            x, y = map(float, end[0][2:].split(","))
            pts.append((x, flip - y))
        edges.append((names[e["tail"]], names[e["head"]], pts))
    return Geometry(nodes, clusters, edges, seconds)


def grandalf(dot_text: str, g: Graph) -> Geometry:
    from grandalf.graphs import Edge, Vertex
    from grandalf.graphs import Graph as GGraph
    from grandalf.layouts import SugiyamaLayout

    class View:
        def __init__(self, w: float = 0, h: float = 0) -> None:
            self.w, self.h, self.xy = w, h, (0.0, 0.0)

        def setpath(self, pts: list[Point]) -> None:
            self.pts = pts

    vs = {k: Vertex(k) for k in g.sizes}
    for k, v in vs.items():
        v.view = View(*g.sizes[k])
    es = [Edge(vs[u], vs[v]) for u, v in g.edges]
    for e in es:
        e.view = View()
    start = time.perf_counter()
    graph = GGraph(list(vs.values()), es)
    shift = 0.0
    for comp in graph.C:
        sug = SugiyamaLayout(comp)
        sug.xspace, sug.yspace = 18, 25
        sug.init_all()
        sug.draw()
        lo = min(v.view.xy[0] - v.view.w / 2 for v in comp.sV)
        hi = max(v.view.xy[0] + v.view.w / 2 for v in comp.sV)
        for v in comp.sV:
            v.view.xy = (v.view.xy[0] - lo + shift, v.view.xy[1])
        for e in comp.sE:
            e.view.pts = [(x - lo + shift, y) for x, y in getattr(e.view, "pts", [])]
        shift += hi - lo + 18
    seconds = time.perf_counter() - start
    nodes = {k: _rect(v.view.xy, v.view.w, v.view.h) for k, v in vs.items()}
    edges = [(e.v[0].data, e.v[1].data, list(getattr(e.view, "pts", []))) for e in es]
    return Geometry(nodes, _member_boxes(g, nodes), edges, seconds)


def igraph(dot_text: str, g: Graph) -> Geometry:
    import igraph as ig

    ids = list(g.sizes)
    index = {k: i for i, k in enumerate(ids)}
    start = time.perf_counter()
    graph = ig.Graph(n=len(ids), edges=[(index[u], index[v]) for u, v in g.edges], directed=True)
    lay = graph.layout_sugiyama(hgap=1, vgap=1)
    seconds = time.perf_counter() - start
    sx = sum(w for w, _ in g.sizes.values()) / len(ids) + 18
    sy = max(h for _, h in g.sizes.values()) + 25
    coords = [(x * sx, y * sy) for x, y in lay.coords[: len(ids)]]
    nodes = {k: _rect(coords[i], *g.sizes[k]) for i, k in enumerate(ids)}
    edges = [(u, v, [_mid(nodes[u]), _mid(nodes[v])]) for u, v in g.edges]
    return Geometry(nodes, _member_boxes(g, nodes), edges, seconds)


def graphlay(dot_text: str, g: Graph) -> Geometry:
    import graphlay as gl

    graph = gl.Graph()
    index: dict[str, int] = {}
    for c, parent in g.parent.items():
        w, h = g.label_sizes[c]
        fields: dict[str, Any] = {"parent": index[parent]} if parent else {}
        index[c] = graph.node(c, width=w + 16, height=h, **fields)
    for k, (w, h) in g.sizes.items():
        owner = g.owner.get(k)
        fields = {"parent": index[owner]} if owner else {}
        index[k] = graph.node(k, width=w, height=h, **fields)
    for u, v in g.edges:
        graph.edge(u, v)
    start = time.perf_counter()
    options = {"direction": "topbottom", "routing": {"style": "diagonal"}}
    lay = gl.layout(graph, preset="layered", options=options).to_dict()
    seconds = time.perf_counter() - start
    boxes: dict[str, Rect] = {}
    for name, at in index.items():
        n = lay["nodes"][at]
        boxes[name] = _rect(
            (n["center"]["x"], n["center"]["y"]), n["size"]["width"], n["size"]["height"]
        )
    edges = [
        (u, v, [(p["x"], p["y"]) for p in e["points"]])
        for (u, v), e in zip(g.edges, lay["edges"], strict=True)
    ]
    nodes = {k: boxes[k] for k in g.sizes}
    return Geometry(nodes, {c: boxes[c] for c in g.parent}, edges, seconds)


def pyelk(dot_text: str, g: Graph) -> Geometry:
    import pyelk as elk

    graph = {
        "id": "root",
        "layoutOptions": {"elk.algorithm": "layered", "elk.direction": "DOWN"},
        "children": [{"id": k, "width": w, "height": h} for k, (w, h) in g.sizes.items()],
        "edges": [
            {"id": f"e{i}", "sources": [u], "targets": [v]} for i, (u, v) in enumerate(g.edges)
        ],
    }
    start = time.perf_counter()
    out = elk.ELK().layout(graph)
    seconds = time.perf_counter() - start
    nodes = {
        n["id"]: (n["x"], n["y"], n["x"] + n["width"], n["y"] + n["height"])
        for n in out["children"]
    }
    edges = []
    for (u, v), e in zip(g.edges, out["edges"], strict=True):
        pts: list[Point] = []
        for sec in e.get("sections", []):
            for p in [sec["startPoint"], *sec.get("bendPoints", []), sec["endPoint"]]:
                pts.append((p["x"], p["y"]))
        edges.append((u, v, pts or [_mid(nodes[u]), _mid(nodes[v])]))
    return Geometry(nodes, _member_boxes(g, nodes), edges, seconds)


ENGINES: dict[str, Callable[[str, Graph], Geometry]] = {
    "ours": ours,
    "dot": graphviz,
    "grandalf": grandalf,
    "igraph": igraph,
    "graphlay": graphlay,
    "pyelk": pyelk,
}


def available(name: str) -> bool:
    if name == "ours":
        return True
    if name == "dot":
        return shutil.which("dot") is not None
    try:
        __import__(name)
    except ImportError:
        return False
    return True


# --- geometry helpers and metrics --------------------------------------------------------


def _rect(centre: Point, w: float, h: float) -> Rect:
    return (centre[0] - w / 2, centre[1] - h / 2, centre[0] + w / 2, centre[1] + h / 2)


def _mid(r: Rect) -> Point:
    return ((r[0] + r[2]) / 2, (r[1] + r[3]) / 2)


def _member_boxes(g: Graph, nodes: dict[str, Rect]) -> dict[str, Rect]:
    """For engines without clusters: each cluster's members' bounding box plus padding."""
    depth = {c: 0 for c in g.parent}
    for c in g.parent:
        p = g.parent[c]
        while p:
            depth[c] += 1
            p = g.parent[p]
    inside: dict[str, list[Rect]] = {c: [] for c in g.parent}
    for k, owner in g.owner.items():
        while owner:
            inside[owner].append(nodes[k])
            owner = g.parent[owner]
    boxes: dict[str, Rect] = {}
    for c in sorted(g.parent, key=lambda c: -depth[c]):
        rs = inside[c] + [boxes[d] for d in g.parent if g.parent[d] == c and d in boxes]
        if rs:
            boxes[c] = (min(r[0] for r in rs) - PAD, min(r[1] for r in rs) - PAD,
                        max(r[2] for r in rs) + PAD, max(r[3] for r in rs) + PAD)  # fmt: skip
    return boxes


def _sample_bezier(ctrl: list[Point], steps: int = 8) -> list[Point]:
    """Graphviz's piecewise cubic Bézier (3n+1 control points) as a polyline."""
    out = [ctrl[0]]
    for k in range(0, len(ctrl) - 3, 3):
        p0, p1, p2, p3 = ctrl[k : k + 4]
        for s in range(1, steps + 1):
            t = s / steps
            a, b, c, d = (1 - t) ** 3, 3 * t * (1 - t) ** 2, 3 * t * t * (1 - t), t**3
            out.append((a * p0[0] + b * p1[0] + c * p2[0] + d * p3[0],
                        a * p0[1] + b * p1[1] + c * p2[1] + d * p3[1]))  # fmt: skip
    return out


def _sample_vertical(points: list[Point]) -> list[Point]:
    """Our edges as drawn: cubic pieces with vertical tangents through the points."""
    ctrl = [points[0]]
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        mid = (y0 + y1) / 2
        ctrl += [(x0, mid), (x1, mid), (x1, y1)]
    return _sample_bezier(ctrl)


def _cross(p: Point, q: Point, r: Point, s: Point) -> bool:
    def orient(a: Point, b: Point, c: Point) -> float:
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    d1, d2, d3, d4 = orient(r, s, p), orient(r, s, q), orient(p, q, r), orient(p, q, s)
    return d1 * d2 < 0 and d3 * d4 < 0


def crossings(edges: list[tuple[str, str, list[Point]]], cell: float = 40.0) -> int:
    """Intersection points between edges that share no end (grid-bucketed segments)."""
    grid: dict[tuple[int, int], list[tuple[int, Point, Point]]] = {}
    for k, (_, _, pts) in enumerate(edges):
        for p, q in zip(pts, pts[1:], strict=False):
            pieces = max(1, math.ceil(math.dist(p, q) / (cell / 2)))
            cells = set()
            for t in range(pieces + 1):
                x, y = p[0] + (q[0] - p[0]) * t / pieces, p[1] + (q[1] - p[1]) * t / pieces
                cells.add((int(x // cell), int(y // cell)))
            for c in cells:
                grid.setdefault(c, []).append((k, p, q))
    found: set[tuple[int, int, Point, Point, Point, Point]] = set()  # one per segment pair
    for segs in grid.values():
        for i, (a, p, q) in enumerate(segs):
            for b, r, s in segs[i + 1 :]:
                if a == b or set(edges[a][:2]) & set(edges[b][:2]):
                    continue
                if _cross(p, q, r, s):
                    found.add((a, b, p, q, r, s) if a < b else (b, a, r, s, p, q))
    return len(found)


def _overlap(a: Rect, b: Rect, eps: float = 0.5) -> bool:
    return a[0] < b[2] - eps and b[0] < a[2] - eps and a[1] < b[3] - eps and b[1] < a[3] - eps


def _contains(a: Rect, b: Rect, eps: float = 0.5) -> bool:
    return a[0] <= b[0] + eps and a[1] <= b[1] + eps and a[2] >= b[2] - eps and a[3] >= b[3] - eps


def metrics(g: Graph, geo: Geometry) -> dict[str, Any]:
    nodes, boxes = geo.nodes, geo.clusters
    up = sum(1 for u, v in g.edges if _mid(nodes[v])[1] <= _mid(nodes[u])[1])
    ids = list(nodes)
    overlaps = sum(
        1 for i, a in enumerate(ids) for b in ids[i + 1 :] if _overlap(nodes[a], nodes[b])
    )
    within: dict[str, set[str]] = {c: set() for c in boxes}
    for k, owner in g.owner.items():
        c = owner
        while c:
            if c in within:
                within[c].add(k)
            c = g.parent.get(c)
    foreign = sum(
        1 for c, box in boxes.items() for k in ids if k not in within[c] and _overlap(box, nodes[k])
    )
    cs = list(boxes)
    tangled = sum(
        1
        for i, a in enumerate(cs)
        for b in cs[i + 1 :]
        if _overlap(boxes[a], boxes[b])
        and not (_contains(boxes[a], boxes[b]) or _contains(boxes[b], boxes[a]))
    )
    rects = list(nodes.values()) + list(boxes.values())
    length = sum(
        math.dist(p, q) for _, _, pts in geo.edges for p, q in zip(pts, pts[1:], strict=False)
    )
    return {
        "nodes": len(nodes),
        "edges": len(geo.edges),
        "crossings": crossings(geo.edges),
        "up": up,
        "overlaps": overlaps,
        "violations": f"{foreign}+{tangled}",
        "length": round(length),
        "size": f"{max(r[2] for r in rects) - min(r[0] for r in rects):.0f}x"
        f"{max(r[3] for r in rects) - min(r[1] for r in rects):.0f}",
        "seconds": geo.seconds,
    }


COLUMNS = (
    "nodes",
    "edges",
    "crossings",
    "up",
    "overlaps",
    "violations",
    "length",
    "size",
    "seconds",
)


def table(title: str, ops: list[Any], engines: list[str]) -> None:
    drawing = draw(ops, title=title)
    g = graph_of(drawing.scene or build_scene(drawing))
    print(f"\n{title}: {len(ops)} ops, {len(g.sizes)} nodes, {len(g.parent)} clusters")
    header = f"{'engine':<10}" + "".join(f"{c:>12}" for c in COLUMNS)
    print(header)
    print("-" * len(header))
    for name in engines:
        if not available(name):
            print(f"{name:<10}" + f"{'n/a':>12}" * len(COLUMNS))
            continue
        row = metrics(g, ENGINES[name](drawing.dot, g))
        cells = [f"{row[c]:.3f}" if c == "seconds" else str(row[c]) for c in COLUMNS]
        print(f"{name:<10}" + "".join(f"{c:>12}" for c in cells), flush=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="resnet50,bert_mini", help="zoo entries")
    p.add_argument("--backend", default="testing")
    p.add_argument("--synthetic", type=int, default=2000, help="random-family blocks (0: none)")
    p.add_argument("--synthetic-clusters", type=int, default=400, help="ops (0: none)")
    p.add_argument("--engines", default=",".join(ENGINES))
    p.add_argument("--records-dir", type=Path, help="cache the models' op records here")
    args = p.parse_args(argv)
    engines = args.engines.split(",")
    with tempfile.TemporaryDirectory(prefix="byoc_layout_") as tmp:
        for name in [m for m in args.models.split(",") if m]:
            cached = args.records_dir and args.records_dir / f"{name}-{args.backend}.json"
            if cached and cached.exists():
                ops = json.loads(cached.read_text())
            else:
                ops = [asdict(r) for r in zoo_records(name, args.backend, Path(tmp))]
                if cached:
                    cached.parent.mkdir(parents=True, exist_ok=True)
                    cached.write_text(json.dumps(ops))
            table(f"{name} ({args.backend})", ops, engines)
    if args.synthetic:
        ops = [asdict(r) for r in synthetic_records(args.synthetic)]
        table(f"random-{args.synthetic} (testing)", ops, engines)
    if args.synthetic_clusters:
        table(
            f"clustered-{args.synthetic_clusters}",
            clustered_records(args.synthetic_clusters),
            engines,
        )


if __name__ == "__main__":
    main()
