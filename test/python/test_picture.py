"""``--graph``: the partition picture (DOT, SVG via Graphviz, a self-contained HTML page),
its collapsing of large graphs, its errors, and the two tools' flags."""

from __future__ import annotations

import importlib.util
import random
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from conftest import T44, VEC4, FuncBuilder, parse

from byoc_mlir import ByocError, partition
from byoc_mlir.explain.collapse import MAX_NODES, Model, collapse, label
from byoc_mlir.explain.decisions import OpRecord
from byoc_mlir.explain.picture import (
    FALLBACK,
    HOST,
    backend_colours,
    draw,
    tint,
    to_dot,
    write_graph,
)

ROOT = Path(__file__).resolve().parents[2]
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot missing")


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


@needs_dot
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


@needs_dot
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


def test_missing_dot_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recs = records(small_model())
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ByocError) as err:
        write_graph(tmp_path / "g.svg", recs)
    assert "Graphviz's `dot`" in err.value.message and "apt-get install graphviz" in err.value.hint
    assert not (tmp_path / "g.svg").exists()
    write_graph(tmp_path / "g.dot", recs)  # DOT text needs no Graphviz


# --- tools ---------------------------------------------------------------------------------


def tool(name: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", f"byoc_mlir.tools.{name}", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@needs_dot
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


@needs_dot
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
