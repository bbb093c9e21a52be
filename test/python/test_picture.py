"""``--graph``: the partition picture (DOT; SVG laid out in pure Python, no Graphviz; a
self-contained HTML page), its collapsing of large graphs, the layout's invariants on real
partitions and random graphs, its errors, and the two tools' flags."""

from __future__ import annotations

import importlib.util
import random
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from conftest import T44, VEC4, FuncBuilder, parse

from byoc_mlir import ByocError, partition
from byoc_mlir.explain.collapse import MAX_NODES, Model, collapse, label
from byoc_mlir.explain.decisions import OpRecord
from byoc_mlir.explain.drawing import Box, Graph, Layout
from byoc_mlir.explain.layout import place
from byoc_mlir.explain.picture import (
    FALLBACK,
    HOST,
    backend_colours,
    draw,
    svg_of,
    tint,
    to_dot,
    write_graph,
)
from byoc_mlir.explain.svg import graph_of

ROOT = Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"


def records(text: str, backends: tuple[str, ...] = ("testing",)) -> list[OpRecord]:
    module = parse(text)
    out: list[OpRecord] = []
    partition(module.operation, list(backends), records=out)
    return out


def small_model() -> str:
    """matmul+bias+relu (a testing composite) -> tanh (host) -> matmul (testing_matmul;
    its fill: testing) -> relu, add (testing)."""
    fb = FuncBuilder(T44, T44, VEC4)
    x, w, b = fb.args
    m = fb.matmul(fb.tanh(fb.relu(fb.bias_add(fb.matmul(x, w), b))), w)
    return fb.build(fb.add(fb.relu(m), m))


def clusters(dot: str) -> dict[str, str]:
    """Region cluster name -> its ``graph [...]`` attribute line."""
    found = re.findall(r'subgraph "cluster_([^"]+)" \{\n\s*graph (\[.*\]);', dot)
    return {name: attrs for name, attrs in found if not name.startswith("fn_")}


def nodes(dot: str) -> dict[str, str]:
    """Node id -> its attribute list."""
    return dict(re.findall(r"^\s*(u\d+) (\[.*\]);$", dot, flags=re.M))


def edges(dot: str) -> set[tuple[str, str]]:
    return set(re.findall(r"^\s*(u\d+) -> (u\d+);$", dot, flags=re.M))


# --- DOT -----------------------------------------------------------------------------------


def test_small_model_clusters_colours_host_nodes_and_edges() -> None:
    recs = records(small_model(), ("testing_matmul", "testing"))
    drawing = draw(recs, title="small")
    dot = drawing.dot
    regions = {r.region: r.backend for r in recs if r.region}
    colours = backend_colours(["testing", "testing_matmul"])
    assert colours["testing"] != colours["testing_matmul"]
    found = clusters(dot)
    assert set(found) == set(regions) and len(regions) == 4
    for name, attrs in found.items():
        assert f'fillcolor="{tint(colours[regions[name]])}"' in attrs
        assert f'label="{name}' in attrs
    assert 'label="testing.main_0\\nmatmul_bias_relu"' in found["testing.main_0"]
    host = [r for r in recs if r.region is None]
    assert len(host) == 1 and host[0].reason
    drawn = nodes(dot)
    node_of = drawing.node_of()
    host_node = drawn[node_of[recs.index(host[0])]]
    assert f'fillcolor="{HOST}"' in host_node and "math.tanh is not supported" in host_node
    for k, r in enumerate(recs):
        if r.backend:
            assert f'fillcolor="{colours[r.backend]}"' in drawn[node_of[k]]
    assert 'label="4 ops: fill → matmul → bias_add → relu"' in dot  # a chain in a region
    index = {r.id: k for k, r in enumerate(recs)}
    expected = {
        (node_of[index[p]], node_of[k])
        for k, r in enumerate(recs)
        for p in r.inputs
        if node_of[index[p]] != node_of[k]
    }
    assert edges(dot) == expected and len(expected) == 6
    assert "testing_matmul" in dot.split("legend", 1)[1].split("\n", 1)[0]  # the legend


def test_records_dicts_and_report_give_the_same_picture() -> None:
    recs = records(small_model())
    assert to_dot([asdict(r) for r in recs]) == to_dot(recs)


def test_colours_are_stable_and_distinct() -> None:
    alone = backend_colours(["ccompiler"])
    both = backend_colours(["ccompiler", "jsonrt", "dnnl", "testing"])
    assert alone["ccompiler"] == both["ccompiler"]
    assert len(set(both.values())) == 4 and HOST not in both.values()


def test_fallback_regions_are_drawn_grey_and_dashed() -> None:
    recs = records(small_model())
    region = next(r.region for r in recs if r.region)
    entry = {"name": region, "status": "fallback: codegen failed: boom", "composites": []}
    dot = to_dot(recs, [entry])
    attrs = clusters(dot)[region]
    assert "dashed" in attrs and "fell back" in attrs and "boom" in attrs
    assert f'fillcolor="{FALLBACK}"' in dot


# --- collapsing ----------------------------------------------------------------------------


def chain_text(n: int) -> str:
    """relu x n (one testing region), then tanh x n (host)."""
    fb = FuncBuilder(T44)
    x = fb.args[0]
    for _ in range(n):
        x = fb.relu(x)
    for _ in range(n):
        x = fb.tanh(x)
    return fb.build(x)


def test_chains_collapse_to_one_node_each() -> None:
    recs = records(chain_text(20))
    model = Model.of(recs)
    collapsed = collapse(model)
    assert len(recs) == 40 and len(collapsed.units) == 2 and collapsed.step == 1
    assert label(model, collapsed.units[0]).startswith("20 ops: relu → relu → … 16 more …")
    assert len(nodes(to_dot(recs))) == 2


def op(i: int, inputs: list[int], region: str | None = None, kind: str = "tanh") -> dict:
    return {
        "id": f"main#{i}", "function": "main", "op": "linalg.generic", "kind": kind,
        "location": f"m.mlir:{i}:1", "backend": region and region.split(".")[0],
        "region": region, "composite": None, "reason": None if region else "rejected: x: no",
        "flops": 1, "inputs": [f"main#{p}" for p in inputs],
    }  # fmt: skip


def acyclic(n: int, graph_edges: set[tuple[int, int]]) -> bool:
    indeg = [0] * n
    for _, v in graph_edges:
        indeg[v] += 1
    ready = [u for u in range(n) if not indeg[u]]
    seen = 0
    while ready:
        u = ready.pop()
        seen += 1
        for a, v in graph_edges:
            if a == u:
                indeg[v] -= 1
                if not indeg[v]:
                    ready.append(v)
    return seen == n


def test_parallel_host_ops_of_one_kind_merge() -> None:
    ops = [op(0, [], "t.r0", "matmul")]
    ops += [op(k, [0]) for k in range(1, 51)]
    ops.append(op(51, list(range(1, 51)), "t.r1", "add"))
    model = Model.of(ops)
    collapsed = collapse(model, max_nodes=10)
    assert collapsed.step == 2 and len(collapsed.units) == 3
    assert label(model, collapsed.units[1]) == "50 × tanh"


def test_any_graph_fits_the_node_budget_and_stays_acyclic() -> None:
    rng = random.Random(0)
    ops = []
    for k in range(1500):
        preds = sorted({rng.randrange(k) for _ in range(rng.randint(0, 3))} if k else set())
        ops.append(op(k, preds, f"t.r{k // 7}" if k // 7 % 2 else None))  # convex regions
    collapsed = collapse(Model.of(ops), max_nodes=60)
    assert len(collapsed.units) <= 60
    assert acyclic(len(collapsed.units), collapsed.edges)
    assert sorted(m for u in collapsed.units for m in u.members) == list(range(1500))


def alternating_records(n: int) -> list[OpRecord]:
    spec = importlib.util.spec_from_file_location(
        "partition_scaling", ROOT / "bench" / "partition_scaling.py"
    )
    assert spec and spec.loader
    bench: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return records(bench.build(n, True, False))


def test_large_alternating_model_renders_quickly_and_bounded(tmp_path: Path) -> None:
    recs = alternating_records(2000)
    start = time.perf_counter()
    out = write_graph(tmp_path / "big.svg", recs)
    seconds = time.perf_counter() - start
    svg = out.read_text()
    assert seconds < 15, seconds
    assert 1 <= svg.count('class="node"') <= MAX_NODES + 1  # + the legend
    assert "2000 × [testing region (fill → matmul → bias_add → relu) → host generic]" in svg


# --- files ---------------------------------------------------------------------------------


def test_svg_and_self_contained_html(tmp_path: Path) -> None:
    recs = records(small_model(), ("testing_matmul", "testing"))
    svg = write_graph(tmp_path / "g.svg", recs).read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "cluster_testing.main" in svg
    page = write_graph(tmp_path / "g.html", recs, title="small.mlir").read_text()
    assert re.search(r"https?://", page) is None, "the page must not load anything"
    assert "<script src" not in page and "<link" not in page
    assert '<table id="host-ops">' in page and '<input id="search"' in page
    assert "math.tanh is not supported" in page and "<svg" in page
    assert "<table id='backends'>" in page and "testing_matmul" in page
    dot = write_graph(tmp_path / "g.dot", recs).read_text()
    assert dot.startswith("digraph byoc {")
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_unknown_extension_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ByocError, match=r"'\.png': valid extensions are \.svg, \.html, \.dot"):
        write_graph(tmp_path / "g.png", records(small_model()))


def test_no_graphviz_needed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recs = records(small_model())
    monkeypatch.setattr(shutil, "which", lambda name: None)  # no `dot` on PATH

    def no_process(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"no subprocess expected: {args}")

    monkeypatch.setattr(subprocess, "run", no_process)
    monkeypatch.setattr(subprocess, "Popen", no_process)
    for name in ("g.svg", "g.html", "g.dot"):
        assert write_graph(tmp_path / name, recs).stat().st_size > 0


# --- layout --------------------------------------------------------------------------------


def overlap(a: Box, b: Box) -> bool:
    return a.x0 < b.x1 - 1e-6 and b.x0 < a.x1 - 1e-6 and a.y0 < b.y1 - 1e-6 and b.y0 < a.y1 - 1e-6


def contains(a: Box, b: Box) -> bool:
    eps = 1e-6
    return a.x0 <= b.x0 + eps and a.y0 <= b.y0 + eps and a.x1 >= b.x1 - eps and a.y1 >= b.y1 - eps


def check_layout(g: Graph, lay: Layout) -> None:
    """Every edge points down; nodes do not overlap; a cluster's box holds exactly its
    members' nodes (nested clusters' too); boxes nest or are apart; all in the drawing."""
    nodes = lay.nodes
    assert set(nodes) == set(g.sizes)
    for u, v in g.edges:
        assert nodes[v].cy > nodes[u].cy and lay.layers[v] > lay.layers[u], (u, v)
    assert sorted((u, v) for u, v, _ in lay.edges) == sorted(set(g.edges))
    for u, v, pts in lay.edges:  # down from the source's bottom to the target's top,
        assert abs(pts[0][1] - nodes[u].y1) < 1e-6 and abs(pts[-1][1] - nodes[v].y0) < 1e-6
        assert all(p[1] <= q[1] + 1e-6 for p, q in zip(pts, pts[1:], strict=False))
        for x, y in pts[1:-1]:  # bending between nodes, never inside one
            assert not any(b.x0 < x < b.x1 and b.y0 < y < b.y1 for b in nodes.values())
    for box in [*nodes.values(), *lay.clusters.values()]:
        assert -1e-6 <= box.x0 < box.x1 <= lay.width + 1e-6 and -1e-6 <= box.y0 < box.y1
        assert box.y1 <= lay.height + 1e-6
    for k, (w, h) in g.sizes.items():
        assert (
            abs(nodes[k].x1 - nodes[k].x0 - w) < 1e-6 and abs(nodes[k].y1 - nodes[k].y0 - h) < 1e-6
        )
    ids = sorted(nodes)
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            assert not overlap(nodes[a], nodes[b]), (a, b)
    members: dict[str, set[str]] = {c: set() for c in g.parent}
    for k, owner in g.owner.items():
        while owner:
            members[owner].add(k)
            owner = g.parent[owner]
    assert set(lay.clusters) == {c for c, ms in members.items() if ms}
    for c, box in lay.clusters.items():
        for k in ids:
            if k in members[c]:
                assert contains(box, nodes[k]), (c, k)
            else:
                assert not overlap(box, nodes[k]), (c, k)
        parent = g.parent[c]
        if parent:
            assert contains(lay.clusters[parent], box), (parent, c)
    boxes = sorted(lay.clusters)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            A, B = lay.clusters[a], lay.clusters[b]
            assert not overlap(A, B) or contains(A, B) or contains(B, A), (a, b)


def random_graph(seed: int, n: int | None = None) -> Graph:
    """A random DAG with random nested clusters (not convex), sizes and labels."""
    rng = random.Random(seed)
    n = n or rng.randint(1, 50)
    parent: dict[str, str | None] = {}
    for c in range(rng.randint(0, 8)):
        parent[f"c{c}"] = rng.choice([None, *parent])
    nodes = [f"n{k}" for k in range(n)]
    edges = sorted(
        {(f"n{rng.randrange(v)}", f"n{v}") for v in range(1, n) for _ in range(rng.randint(0, 3))}
    )
    return Graph(
        {k: (rng.uniform(20, 200), rng.choice([20.0, 31.0, 42.0])) for k in nodes},
        {k: rng.choice([None, *parent]) for k in nodes},
        parent,
        {c: (rng.uniform(10, 300), 16.0) for c in parent},
        edges,
    )


def test_layout_invariants_on_random_graphs() -> None:
    for seed in range(150):
        g = random_graph(seed)
        check_layout(g, place(g))


def two_function_ops(n: int = 120) -> list[dict[str, Any]]:
    """Ops in two functions, regions of 5 consecutive ops every other block, two or three
    producers each (so few chains collapse), one region that fell back."""
    rng = random.Random(7)
    ops = []
    for k in range(n):
        fn = "main" if k < n // 2 else "second"
        start = 0 if fn == "main" else n // 2
        preds = sorted({rng.randrange(max(start, k - 9), k) for _ in range(3)}) if k > start else []
        region = f"t.{fn}_{k // 5}" if k // 5 % 2 else None
        ops.append(op(k, preds, region, "add") | {"function": fn})
    return ops


def test_layout_invariants_on_partitions() -> None:
    recs = records(small_model(), ("testing_matmul", "testing"))
    models = [
        draw(recs),
        draw(records(chain_text(6))),
        draw(two_function_ops(), [{"name": "t.main_1", "status": "fallback: boom"}]),
        draw(alternating_records(30)),
    ]
    for drawing in models:
        assert drawing.scene is not None
        g = graph_of(drawing.scene)
        check_layout(g, place(g))
    kinds = {c.kind for c in models[2].scene.clusters}  # type: ignore[union-attr]
    assert kinds == {"function", "region"}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet50", "bert_mini"])
def test_layout_invariants_on_zoo_models(name: str, tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "graph_layout", ROOT / "bench" / "graph_layout.py"
    )
    assert spec and spec.loader
    bench: Any = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("graph_layout", bench)  # its dataclasses look their module up
    spec.loader.exec_module(bench)
    drawing = draw(bench.zoo_records(name, "testing", tmp_path))
    assert drawing.scene is not None and len(drawing.scene.clusters) > 10
    g = graph_of(drawing.scene)
    check_layout(g, place(g))


def test_layout_is_deterministic_and_fast() -> None:
    g = random_graph(1, n=400)
    start = time.perf_counter()
    first = place(g)
    seconds = time.perf_counter() - start
    assert seconds < 2.0, seconds
    assert place(random_graph(1, n=400)) == first
    ops = two_function_ops(400)
    assert svg_of(draw(ops)) == svg_of(draw([dict(o) for o in ops]))


def test_svg_structure_for_the_page() -> None:
    recs = records(small_model(), ("testing_matmul", "testing"))
    region = next(r.region for r in recs if r.backend == "testing")
    entry: dict[str, Any] = {
        "name": region,
        "status": "fallback: codegen failed: boom",
        "composites": [],
    }
    drawing = draw(recs, [entry], title="small <&> model")
    svg = svg_of(drawing)
    assert svg.startswith("<?xml")
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and len(root.get("viewBox", "").split()) == 4
    groups = {g.get("id"): g for g in root.iter(f"{SVG}g")}
    scene = drawing.scene
    assert scene is not None
    for node in scene.nodes:
        g = groups[node.id]
        assert g.get("class") == "node" and g[0].tag == f"{SVG}title"
        assert g[0].text == node.tooltip and g.find(f"{SVG}path") is not None
    for c in scene.clusters:
        assert groups[c.id].get("class") == "cluster" and groups[c.id][0].tag == f"{SVG}title"
    assert {c.id for c in scene.clusters} == {f"cluster_{r.region}" for r in recs if r.region}
    fallen = groups[f"cluster_{region}"].find(f"{SVG}path")
    assert fallen is not None and fallen.get("stroke-dasharray")
    edges = [g for g in root.iter(f"{SVG}g") if g.get("class") == "edge"]
    assert len(edges) == len(scene.edges) and all(
        e.find(f"{SVG}polygon") is not None for e in edges
    )
    texts = "".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "small <&> model" in texts and "fell back to the host" in texts


def test_mixed_nodes_are_striped() -> None:
    ops = [op(0, [], "t.r0", "matmul"), op(1, [0]), op(2, [1], "t.r1", "add")]
    ops += [op(k, [k - 1], f"t.r{k}" if k % 2 else None) for k in range(3, 40)]
    drawing = draw(ops, max_nodes=2)  # collapses into mixed slices
    svg = svg_of(drawing)
    root = ET.fromstring(svg)
    stops = [s.get("stop-color") for s in root.iter(f"{SVG}stop")]
    assert root.find(f".//{SVG}linearGradient") is not None and HOST in stops
    assert "url(#stripes_0)" in svg and 'fillcolor="' in drawing.dot and "striped" in drawing.dot


# --- tools ---------------------------------------------------------------------------------


def tool(name: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", f"byoc_mlir.tools.{name}", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_byoc_opt_graph(tmp_path: Path) -> None:
    model = tmp_path / "small.mlir"
    model.write_text(small_model())
    out = tmp_path / "g.html"
    done = tool("byoc_opt", model, "--backend", "testing", "--partition", "--graph", out)
    assert done.returncode == 0, done.stderr
    assert "func.func private @testing.main_0" in done.stdout
    assert "small.mlir" in out.read_text() and "math.tanh" in out.read_text()
    for args, message in [
        (["--backend", "testing", "--byoc-annotate"], "--graph draws the partition: it needs"),
        (["--backend", "testing", "--partition", "--split-input-file"], "--split-input-file"),
    ]:
        bad = tool("byoc_opt", model, *args, "--graph", tmp_path / "x.svg")
        assert bad.returncode == 1 and message in bad.stderr and "Traceback" not in bad.stderr
    bad = tool("byoc_opt", model, "--backend", "testing", "--partition", "--graph", "x.pdf")
    assert bad.returncode == 1 and "valid extensions are .svg, .html, .dot" in bad.stderr


def test_byoc_compile_graph(tmp_path: Path) -> None:
    model = tmp_path / "small.mlir"
    model.write_text(small_model())
    out = tmp_path / "g.svg"
    done = tool(
        "byoc_compile", model, "--backend", "jsonrt", "-o", tmp_path / "b", "--no-cache",
        "--quiet", "--graph", out,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    svg = out.read_text()
    assert "cluster_jsonrt.main_0" in svg and "small.mlir" in svg
    bad = tool("byoc_compile", model, "--backend", "jsonrt", "-o", tmp_path / "c", "--graph", "g.x")
    assert bad.returncode == 1 and "valid extensions" in bad.stderr
    assert not (tmp_path / "c").exists()  # checked before compiling
