"""``byoc-compile``: compile a model into a self-contained bundle directory.

    byoc-compile model.mlir --backend ccompiler -o out/
    byoc-compile model.onnx --backend ccompiler -o out/
    byoc-compile model.mlir --backend jsonrt --backend ccompiler -o out/   # priority = order
    byoc-compile model.mlir --backend none -o out/                          # host only
    byoc-compile model.mlir --backend ccompiler --save-plan plan.json -o out/
    byoc-compile model.mlir --plan plan.json -o out/          # replay an (edited) plan
    byoc-compile model.onnx --backend dnnl --tune -o out/     # keep each region where faster

The bundle holds ``module.vmfb``, the vendor artifacts it needs, ``report.json`` (the
decision log) and ``bundle.json``; ``byoc-run out/`` runs it from anywhere.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from byoc_mlir.codegen.cache import default_root
from byoc_mlir.codegen.workers import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT
from byoc_mlir.driver import compile
from byoc_mlir.errors import ByocError
from byoc_mlir.explain import picture, report
from byoc_mlir.options import BEST_CPU_FLAGS, ISOLATION_MODES, CompileOptions
from byoc_mlir.pipeline import PartitionOptions
from byoc_mlir.tools.common import parse_dims, run_tool


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="byoc-compile", description=__doc__.splitlines()[0])
    p.add_argument(
        "model", help="model file: .mlir / .mlirbc (linalg, tosa or torch dialect) or .onnx"
    )
    p.add_argument(
        "--backend",
        action="append",
        default=[],
        metavar="NAME",
        help="backend (repeat for several; priority = order); 'none' = host only; "
        "not needed with --plan",
    )
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="bundle directory")
    p.add_argument(
        "--save-plan",
        metavar="FILE",
        help="write the placement plan (which op goes where; JSON, editable) to FILE",
    )
    p.add_argument(
        "--plan",
        metavar="FILE",
        help="replay a placement plan (from --save-plan, maybe edited) instead of partitioning",
    )
    p.add_argument(
        "--tune",
        action="store_true",
        help="time each offloaded region on the host and on its backend, here, and keep the "
        "faster (times in the report and the saved plan)",
    )
    p.add_argument(
        "--hook-isolation",
        choices=ISOLATION_MODES,
        default="auto",
        help="where vendor hooks run: auto (out of process unless the backend declares itself "
        "safe, as the in-tree ones do), process, or inline",
    )
    p.add_argument(
        "--hook-timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help="seconds one region's hook may take out of process (then it goes to the host)",
    )
    p.add_argument(
        "--hook-memory",
        type=int,
        default=DEFAULT_MEMORY_MB,
        metavar="MB",
        help="MiB of heap one region's hook may allocate out of process (0: no cap)",
    )
    p.add_argument(
        "--jobs", type=int, default=0, help="hooks run out of process at once (0: one per core)"
    )
    p.add_argument("--min-size", type=int, default=1, help="smallest region kept (ops)")
    p.add_argument("--max-size", type=int, default=0, help="largest region (ops; 0 = no limit)")
    p.add_argument("--no-merge-siblings", action="store_true", help="do not merge siblings")
    p.add_argument("--move-weights", action="store_true", help="clone weights into regions")
    p.add_argument(
        "--no-fold-batchnorm",
        action="store_true",
        help="keep BatchNorm as its own ops (default: folded into the conv before it)",
    )
    p.add_argument(
        "--externalize-params",
        type=int,
        default=0,
        metavar="N",
        help="ONNX: weights with at least N elements go to the bundle's params.irpa, read "
        "at run time (default 0: weights stay inside the module)",
    )
    p.add_argument(
        "--parameters",
        type=Path,
        metavar="FILE",
        help="the .irpa parameter file (scope 'model') an .mlir model's weights are read from",
    )
    p.add_argument(
        "--no-fallback",
        action="store_true",
        help="a region whose codegen fails is an error, not a host fallback (for CI)",
    )
    p.add_argument(
        "--demote-f64",
        action="store_true",
        help="compute f64 in f32 (the signature becomes f32; the report notes it)",
    )
    p.add_argument("--no-cache", action="store_true", help="do not use the artifact cache")
    p.add_argument("--cache-dir", type=Path, default=None, help=f"default: {default_root()}")
    p.add_argument(
        "--backend-option",
        action="append",
        default=[],
        metavar="BACKEND:KEY=VALUE",
        help="an option for one backend's codegen hook",
    )
    p.add_argument(
        "--iree-flag",
        action="append",
        default=[],
        metavar="FLAG",
        help="extra flag for both IREE phases (added to IREE's best CPU settings)",
    )
    p.add_argument(
        "--dim",
        action="append",
        default=[],
        metavar="NAME=LO..HI",
        help="range of a dynamic dimension of the model's inputs (ONNX dim_param names; "
        "d0, d1, ... for the ?s of an .mlir signature); the bundle runs any size in range",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar; print nothing on success")
    p.add_argument(
        "--report",
        action="store_true",
        help="print the offload summary (per backend, ops left on the host and why)",
    )
    p.add_argument(
        "--graph",
        metavar="FILE",
        help="draw the dataflow, regions coloured by backend, host ops grey (.svg, .html, .dot)",
    )
    return p


def _backend_options(items: Sequence[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for item in items:
        backend, sep, rest = item.partition(":")
        key, eq, value = rest.partition("=")
        if not sep or not eq or not backend or not key:
            raise ByocError(f"--backend-option '{item}' must look like BACKEND:KEY=VALUE")
        out.setdefault(backend, {})[key] = value
    return out


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.backend and not args.plan:
        raise ByocError("byoc-compile needs --backend NAME (or --plan FILE)")
    if args.graph:
        picture.check_output(args.graph)  # before the compile, not after it
    cache = None if args.no_cache else (args.cache_dir or default_root())
    options = CompileOptions(
        partition=PartitionOptions(
            min_size=args.min_size,
            max_size=args.max_size,
            merge_siblings=not args.no_merge_siblings,
            move_weights=args.move_weights,
        ),
        fallback=not args.no_fallback,
        cache_dir=cache,
        iree_flags=BEST_CPU_FLAGS + tuple(args.iree_flag),
        backend_options=_backend_options(args.backend_option),
        progress=not args.quiet,
        plan=args.plan,
        save_plan=args.save_plan,
        fold_batchnorm=not args.no_fold_batchnorm,
        externalize_params=args.externalize_params,
        parameters=args.parameters,
        demote_f64=args.demote_f64,
        tune=args.tune,
        hook_isolation=args.hook_isolation,
        hook_timeout=args.hook_timeout,
        hook_memory_mb=args.hook_memory or None,
        jobs=args.jobs,
        dims=parse_dims(args.dim, ranges=True),
    )
    start = time.perf_counter()
    compiled = compile(args.model, args.backend, out_dir=args.output, options=options)
    if not args.quiet:
        regions = compiled.report.get("regions", [])
        offloaded = [r for r in regions if r["status"] == "offloaded"]
        fallbacks = [r for r in regions if r["status"].startswith("fallback")]
        print(
            f"{args.output}: {len(offloaded)} region(s) offloaded, {len(fallbacks)} fell back, "
            f"{len(compiled.report.get('host_ops', []))} op(s) on the host "
            f"({time.perf_counter() - start:.2f} s)"
        )
        for r in fallbacks:
            print(f"  {r['name']}: {r['status']}", file=sys.stderr)
        if args.save_plan:
            print(f"placement plan written to {args.save_plan}")
    if args.report:
        print(report.summary(compiled.report), end="")
    if args.graph:
        picture.graph_of_report(args.graph, compiled.report, title=Path(args.model).name)
    compiled.close()
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    run_tool(run, argv)


if __name__ == "__main__":
    main()
