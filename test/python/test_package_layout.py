"""The package's layout rules (README "Where things are"), checked from the source: the vendor
contract does not depend on any backend, no import cycle, modules stay small, and the
in-tree backends are declared like any plugin."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from byoc_mlir.codegen import registry

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "byoc_mlir"
MAX_LINES = 420  # "about 400"
LONGER = {
    # C, not Python: the one header every generated dnnl region includes (one helper per
    # oneDNN primitive); it travels inside each payload, so it stays one file.
    "byoc_mlir/backends/dnnl/dnnl_support.h",
}


def modules() -> dict[str, Path]:
    out = {}
    for f in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(f.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = f
    return out


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The package modules ``path`` imports at module level (TYPE_CHECKING ones too:
    a cycle through type hints is still a cycle in the design)."""
    out: set[str] = set()
    tree = ast.parse(path.read_text())
    nodes = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    for n in tree.body:
        if isinstance(n, ast.If):
            nodes += [m for m in n.body if isinstance(m, (ast.Import, ast.ImportFrom))]
    for n in nodes:
        if isinstance(n, ast.ImportFrom) and n.module:
            for a in n.names:
                full = f"{n.module}.{a.name}"
                out.add(full if full in known else n.module)
        elif isinstance(n, ast.Import):
            out.update(a.name for a in n.names)
    return {m for m in out if m in known}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_no_import_cycle() -> None:
    known = modules()
    graph = {name: imports(path, known) - {name} for name, path in known.items()}
    assert cycles(graph) == []
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_contract_does_not_depend_on_backends() -> None:
    known = modules()
    for name, path in known.items():
        if name.startswith("byoc_mlir.codegen"):
            bad = {m for m in imports(path, known) if m.startswith("byoc_mlir.backends")}
            assert not bad, f"{name} imports {bad}: the vendor contract must stand alone"


def test_modules_are_small() -> None:
    long = {
        str(f.relative_to(ROOT)): n
        for f in PACKAGE.rglob("*")
        if f.suffix in (".py", ".h") and (n := len(f.read_text().splitlines())) > MAX_LINES
    }
    assert set(long) <= LONGER, f"over {MAX_LINES} lines: {long}"


def test_in_tree_backends_are_plugins() -> None:
    """Each backend package is declared in pyproject's entry points, and the fallback
    used from an uninstalled source tree says the same."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = project["project"]["entry-points"][registry.GROUP]
    assert declared == registry._BUILTIN
    packages = {p.name for p in (PACKAGE / "backends").iterdir() if (p / "backend.py").exists()}
    assert {v.split(".")[2] for v in declared.values()} == packages
    for name in declared:
        assert registry.get(name).name == name


PARTITION_ONLY = """
import sys
from byoc_mlir import _compat, partition
text = '''func.func @f(%a: tensor<2x2xf32>, %b: tensor<2x2xf32>) -> tensor<2x2xf32> {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<2x2xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<2x2xf32>) -> tensor<2x2xf32>
  %m = linalg.matmul ins(%a, %b : tensor<2x2xf32>, tensor<2x2xf32>)
                     outs(%f : tensor<2x2xf32>) -> tensor<2x2xf32>
  return %m : tensor<2x2xf32>
}'''
module = _compat.parse_module(text, _compat.new_context())
partition(module.operation, ["testing"])
heavy = sorted(
    name for name in sys.modules
    if "opdsl" in name or name in ("byoc_mlir.driver", "byoc_mlir.runtime")
    or name.startswith("byoc_mlir.backends.") and ".testing" not in name
)
print("heavy:", heavy)
from iree.compiler.dialects import linalg  # the full module still loads when asked for
with module.context:
    ops = list(module.body.operations[1].regions[0].blocks[0].operations)
    print("matmul view:", any(isinstance(op, linalg.MatmulOp) for op in ops), callable(linalg.fill))
"""


def test_partitioning_imports_only_what_it_uses() -> None:
    """Start-up: a partition on ``testing`` loads neither linalg's OpDSL (70 ms), nor
    another backend's module, nor the codegen/runtime stacks; linalg still works."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", PARTITION_ONLY], capture_output=True, text=True, check=True
    ).stdout
    assert "heavy: []" in out, out
    assert "matmul view: True True" in out, out
