"""Partitioning cost versus model size (issue: partition scaling).

Builds, as linalg-on-tensors, the chains

  alternating: [matmul + bias + relu, tanh] x N   (tanh unsupported -> N regions)
  fused:       [matmul + bias + relu] x N         (one region)

with weights either as function arguments ("args") or as dense constants ("consts"),
for N in 100, 1000, 3000, 10000, and prints per-stage seconds for the partitioning
pipeline with the ``testing`` backend as ``--partition`` runs it: building the function
graphs (shared by the stages), annotate, composites, merge-regions, outline.
Parse and print are shown apart: they are MLIR's cost, not the partitioner's.

    python bench/partition_scaling.py [--sizes 100,1000,3000] [--repeat 1]

Reference (issue #2): Apache TVM 0.27 FuseOpsByPattern + MergeCompositeFunctions takes
~3.7 s for N=3000 with weights as parameters and ~84 s with weights bound as constants on
this machine, growing ~N^2. Targets: N=3000 < 0.4 s (args) and < 1 s (consts) in total;
time(10000) / time(1000) <= 12.
"""

from __future__ import annotations

import argparse
import time

from byoc_mlir import _compat
from byoc_mlir.graph import function_graphs
from byoc_mlir.passes import AnnotatePass, CompositesPass, MergeRegionsPass, OutlinePass
from byoc_mlir.pipeline import pause_gc

D = 8  # feature width: small, so MLIR's parse/print do not swamp the partitioner


def build(n: int, with_tanh: bool, consts: bool) -> str:
    t = f"tensor<1x{D}xf32>"
    w = f"tensor<{D}x{D}xf32>"
    b = f"tensor<{D}xf32>"
    args = [f"%x: {t}"]
    if not consts:
        for i in range(n):
            args += [f"%w{i}: {w}", f"%b{i}: {b}"]
    lines = [f"func.func @main({', '.join(args)}) -> {t} {{"]
    lines.append("  %zero = arith.constant 0.0 : f32")
    lines.append(f"  %e = tensor.empty() : {t}")
    cur = "%x"
    for i in range(n):
        if consts:
            wv = ", ".join(f"{(i * 7 + k) % 13 / 13.0:.4f}" for k in range(D * D))
            bv = ", ".join(f"{(i + k) % 5 / 5.0:.4f}" for k in range(D))
            lines.append(f"  %w{i} = arith.constant dense<[{_rows(wv)}]> : {w}")
            lines.append(f"  %b{i} = arith.constant dense<[{bv}]> : {b}")
        lines += [
            f"  %f{i} = linalg.fill ins(%zero : f32) outs(%e : {t}) -> {t}",
            f"  %m{i} = linalg.matmul ins({cur}, %w{i} : {t}, {w}) outs(%f{i} : {t}) -> {t}",
            f"  %a{i} = linalg.generic {{indexing_maps = [#id, #row, #id], iterator_types = "
            f'["parallel", "parallel"]}} ins(%m{i}, %b{i} : {t}, {b}) outs(%e : {t}) {{',
            "  ^bb0(%p: f32, %q: f32, %o: f32):",
            "    %s = arith.addf %p, %q : f32",
            "    linalg.yield %s : f32",
            f"  }} -> {t}",
            f"  %r{i} = linalg.generic {{indexing_maps = [#id, #id], iterator_types = "
            f'["parallel", "parallel"]}} ins(%a{i} : {t}) outs(%e : {t}) {{',
            "  ^bb0(%p: f32, %o: f32):",
            "    %s = arith.maximumf %p, %zero : f32",
            "    linalg.yield %s : f32",
            f"  }} -> {t}",
        ]
        cur = f"%r{i}"
        if with_tanh:
            lines += [
                f"  %t{i} = linalg.generic {{indexing_maps = [#id, #id], iterator_types = "
                f'["parallel", "parallel"]}} ins({cur} : {t}) outs(%e : {t}) {{',
                "  ^bb0(%p: f32, %o: f32):",
                "    %s = math.tanh %p : f32",
                "    linalg.yield %s : f32",
                f"  }} -> {t}",
            ]
            cur = f"%t{i}"
    lines.append(f"  return {cur} : {t}")
    lines.append("}")
    header = "#id = affine_map<(d0, d1) -> (d0, d1)>\n#row = affine_map<(d0, d1) -> (d1)>\n"
    return header + "\n".join(lines) + "\n"


def _rows(flat: str) -> str:
    vals = flat.split(", ")
    return ", ".join("[" + ", ".join(vals[r * D : (r + 1) * D]) + "]" for r in range(D))


def run_once(text: str) -> dict[str, float]:
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    module = _compat.parse_module(text, _compat.new_context())
    times["parse"] = time.perf_counter() - t0
    backends = ("testing",)
    stages = [
        ("annotate", AnnotatePass(backends)),
        ("composites", CompositesPass(backends)),
        ("merge", MergeRegionsPass(backends)),
        ("outline", OutlinePass()),
    ]
    with module.context, pause_gc():
        t0 = time.perf_counter()
        graphs = list(function_graphs(module.operation))
        times["graph"] = time.perf_counter() - t0
        for name, p in stages:
            t0 = time.perf_counter()
            p.run(module.operation, graphs)
            times[name] = time.perf_counter() - t0
        module.operation.verify()  # not timed: proves the partitioned IR is valid
        t0 = time.perf_counter()
        text_out = _compat.print_module(module)
        times["print"] = time.perf_counter() - t0
    times["regions"] = text_out.count("call @testing.")
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,1000,3000,10000")
    ap.add_argument("--repeat", type=int, default=1, help="best of R runs per row")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    cols = ["graph", "annotate", "composites", "merge", "outline"]
    print(
        f"{'graph':<12}{'weights':<8}{'N':>6} | "
        + "".join(f"{c:>11}" for c in cols)
        + f"{'TOTAL':>9} |{'regions':>8} |{'parse':>7}{'print':>7}"
    )
    totals: dict[tuple[str, str, int], float] = {}
    for with_tanh in (True, False):
        for consts in (False, True):
            for n in sizes:
                text = build(n, with_tanh, consts)
                best: dict[str, float] | None = None
                for _ in range(args.repeat):
                    r = run_once(text)
                    if best is None or sum(r[c] for c in cols) < sum(best[c] for c in cols):
                        best = r
                assert best is not None
                total = sum(best[c] for c in cols)
                graph = "alternating" if with_tanh else "fused"
                weights = "consts" if consts else "args"
                totals[(graph, weights, n)] = total
                print(
                    f"{graph:<12}{weights:<8}{n:>6} | "
                    + "".join(f"{best[c]:>11.3f}" for c in cols)
                    + f"{total:>9.3f} |{int(best['regions']):>8} |"
                    + f"{best['parse']:>7.2f}{best['print']:>7.2f}"
                )
    if 1000 in sizes and 10000 in sizes:
        print("\nscaling time(10000)/time(1000) (target <= 12):")
        for graph in ("alternating", "fused"):
            for weights in ("args", "consts"):
                ratio = totals[(graph, weights, 10000)] / totals[(graph, weights, 1000)]
                print(f"  {graph:<12}{weights:<8}{ratio:6.1f}")


if __name__ == "__main__":
    main()
