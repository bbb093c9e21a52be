"""``byoc-run``: run a bundle made by byoc-compile.

byoc-run out/                              # seeded random inputs from the signature
byoc-run out/ --input x.npy --input w.npy  # inputs from .npy files, in order
byoc-run out/ --check                      # also run the host-only build and compare

With --check, an output where the bundle and the host-only build disagree is run a third
time, by a conservative IREE build of the same source (IREE's default optimisations: no
data tiling, no im2col, -O0), and the verdict says which side is wrong: the bundle (it
disagrees with both IREE builds: exit 1), the host reference (the bundle agrees with the
conservative build: reported, exit 0), or undecided (exit 1).
byoc-run out/ --output results/            # save outputs as .npy
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from byoc_mlir import dtypes
from byoc_mlir.codegen.hook import TensorSpec
from byoc_mlir.codegen.workers import call_in_child
from byoc_mlir.errors import ByocError
from byoc_mlir.explain.bisect import REGION_TIMEOUT, scale_of
from byoc_mlir.runtime import MANIFEST, Compiled, default_sizes, seeded_inputs, spec_from_json
from byoc_mlir.tools.common import parse_dims, run_tool


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="byoc-run", description=__doc__.splitlines()[0])
    p.add_argument("bundle", type=Path, help="bundle directory from byoc-compile")
    p.add_argument("--input", action="append", default=[], type=Path, metavar="FILE.npy")
    p.add_argument("--seed", type=int, default=0, help="seed for random inputs")
    p.add_argument(
        "--dim",
        action="append",
        default=[],
        metavar="NAME=N",
        help="size of a dynamic dimension for random inputs (default: the low end of its "
        "compiled range, else 1); the same bundle runs at every size",
    )
    p.add_argument("--check", action="store_true", help="compare with the host-only build")
    p.add_argument("--output", type=Path, metavar="DIR", help="save outputs as DIR/output_K.npy")
    p.add_argument(
        "--per-region",
        action="store_true",
        help="with --check: run each offloaded region alone on its real inputs against its "
        "host version and name the first one that differs",
    )
    p.add_argument(
        "--rtol",
        type=float,
        help=f"--check: relative tolerance (default {F32_TOL}; {REDUCED_TOL} for a bundle built "
        "with reduced precision, e.g. dnnl:precision=bf16)",
    )
    p.add_argument(
        "--atol",
        type=float,
        help=f"--check: absolute tolerance (default {F32_TOL}; for reduced precision "
        f"{REDUCED_TOL} x the largest reference magnitude of each output)",
    )
    return p


F32_TOL = 1e-4
REDUCED_TOL = 0.03
"""--check's bound for bf16 regions: 3% of the output's scale, relative and absolute (bf16
keeps 8 significant bits, 0.4% per rounding; a network accumulates a few of those)."""


def _signature(bundle: Path) -> tuple[str, list[TensorSpec], dict[str, list[int] | None]]:
    """The bundle's entry, input specs and the ranges of its dynamic dimensions, from
    its manifest (nothing loaded)."""
    try:
        manifest = json.loads((bundle / MANIFEST).read_text())
    except (OSError, ValueError) as err:
        raise ByocError(f"{bundle} is not a byoc_mlir bundle ({MANIFEST}: {err})") from None
    return (
        manifest["entry"],
        [spec_from_json(s) for s in manifest["inputs"]],
        manifest.get("dims", {}),
    )


def _outputs(bundle: str, inputs: list[np.ndarray], path: list[str]) -> list[np.ndarray]:
    """In a child: the bundle's outputs on ``inputs``."""
    sys.path[:] = path
    compiled = Compiled(bundle)
    try:
        return [np.array(o) for o in compiled(*inputs)]
    finally:
        compiled.close()


def _tolerances(compiled: Compiled, args: argparse.Namespace) -> None:
    _tolerances_from(compiled.manifest, args)


def _tolerances_from(manifest: dict, args: argparse.Namespace) -> None:
    """Fills in --rtol/--atol (and ``args.scaled``: atol relative to each output's scale)."""
    reduced = manifest.get("precision") or {}
    args.scaled = bool(reduced) and args.atol is None
    default = REDUCED_TOL if reduced else F32_TOL
    args.rtol = default if args.rtol is None else args.rtol
    args.atol = default if args.atol is None else args.atol
    args.bound = (
        f"rtol={args.rtol}, atol={args.atol} x max|reference| "
        f"({', '.join(f'{b}: {p}' for b, p in sorted(reduced.items()))})"
        if args.scaled
        else f"rtol={args.rtol}, atol={args.atol}"
    )


def _load_inputs(
    entry: str,
    specs: Sequence[TensorSpec],
    files: Sequence[Path],
    seed: int,
    dims: dict[str, int],
) -> list[np.ndarray]:
    if not files:
        return seeded_inputs(specs, seed, dims)
    if len(files) != len(specs):
        raise ByocError(f"{entry} takes {len(specs)} inputs, {len(files)} --input given")
    arrays = []
    for path, spec in zip(files, specs, strict=True):
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise ByocError(f"cannot read {path} as .npy: {err}") from None
        if not spec.fits(arr.shape):
            raise ByocError(f"{path}: shape {arr.shape}, expected {spec.mlir}")
        arrays.append(arr.astype(spec.numpy_dtype, copy=False))  # 0-d stays 0-d
    return arrays


CONSERVATIVE_DROPS = ("--iree-opt-data-tiling", "--iree-global-opt-use-im2col-for-convs")


def _sizes(given: dict[str, int], ranges: Mapping[str, Sequence[int] | None]) -> dict[str, int]:
    """The size of every dynamic dimension: ``--dim``'s, else the default."""
    unknown = sorted(set(given) - set(ranges))
    if unknown:
        valid = ", ".join(ranges) or "none: the bundle's signature is static"
        raise ByocError(f"--dim {', '.join(unknown)}: no such dynamic dimension (valid: {valid})")
    return {**default_sizes(ranges), **given}


def host_reference(compiled: Compiled, conservative: bool = False) -> Compiled:
    """Compiles the bundle's source host-only with the same IREE flags (``conservative``:
    without the optimisations that have miscompiled before, at ``-O0``)."""
    from byoc_mlir.driver import CompileOptions, compile

    manifest = compiled.manifest
    source = compiled.bundle / manifest["source"]
    parameters = manifest.get("parameters")
    flags = tuple(manifest["iree_flags"])
    if conservative:
        flags = tuple(
            f for f in flags if not f.startswith(CONSERVATIVE_DROPS) and "opt-level" not in f
        ) + ("--iree-opt-level=O0",)
    options = CompileOptions(
        cache_dir=None,
        iree_flags=flags,
        parameters=compiled.bundle / parameters["file"] if parameters else None,
    )
    # No output directory: the reference owns a temporary bundle, deleted when closed.
    reference = compile(source.read_bytes(), ["none"], options=options)
    # source.mlir is after import, where unsigned integers are signless (``i8``): read the
    # reference's arrays as the bundle declares them (``ui8``), so the two compare.
    if [dtypes.storage(s.dtype) for s in compiled.inputs + compiled.outputs] == [
        s.dtype for s in reference.inputs + reference.outputs
    ]:
        reference.inputs, reference.outputs = compiled.inputs, compiled.outputs
    return reference


def _errors(got: np.ndarray, want: np.ndarray) -> tuple[float, float]:
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    max_abs = float(diff.max()) if diff.size else 0.0
    scale = np.maximum(np.abs(want.astype(np.float64)), 1e-30)
    max_rel = float((diff / scale).max()) if diff.size else 0.0
    return max_abs, max_rel


def _check(
    compiled: Compiled,
    inputs: list[np.ndarray],
    outputs: list[np.ndarray],
    args: argparse.Namespace,
) -> tuple[int, list[dict]]:
    """Compares with the host-only build; a disagreement gets a third opinion."""
    host = host_reference(compiled)
    try:
        reference = host(*inputs)
    finally:
        host.close()  # deletes its temporary bundle
    third: list[np.ndarray] | None = None
    code, report = 0, []

    def close(a: np.ndarray, b: np.ndarray) -> bool:
        atol = args.atol * scale_of(b) if args.scaled else args.atol
        return bool(np.allclose(a, b, rtol=args.rtol, atol=atol, equal_nan=True))

    for k, (got, want) in enumerate(zip(outputs, reference, strict=True)):
        if got.dtype != want.dtype or got.shape != want.shape:
            changed = f"{got.dtype}{list(got.shape)} where the host build gives "
            changed += f"{want.dtype}{list(want.shape)}"
            report.append({"output": k, "ok": False, "changed": changed})
            print(f"check output {k}: MISMATCH: the bundle returns {changed}")
            code = 1
            continue
        max_abs, max_rel = _errors(got, want)
        ok = close(got, want)
        entry: dict = {"output": k, "max_abs": max_abs, "max_rel": max_rel, "ok": ok}
        steps = ""
        if np.issubdtype(want.dtype, np.integer):  # a quantized output: error in steps
            entry["max_steps"] = int(max_abs)
            steps = f" ({int(max_abs)} quantization step{'s' if int(max_abs) != 1 else ''})"
        note = ""
        if not ok:
            if third is None:
                conservative = host_reference(compiled, conservative=True)
                try:
                    third = conservative(*inputs)
                finally:
                    conservative.close()
            bundle_right, host_right = close(got, third[k]), close(want, third[k])
            if bundle_right and not host_right:
                entry["verdict"], entry["ok"] = "host reference wrong", True
                note = "; the host reference is wrong: a conservative IREE build agrees with "
                note += "the bundle"
            elif host_right and not bundle_right:
                entry["verdict"] = "bundle wrong"
                note = "; the bundle is wrong: a conservative IREE build agrees with the host"
            else:
                entry["verdict"] = "undecided"
                note = "; undecided: a conservative IREE build agrees with neither"
        if not entry["ok"]:
            code = 1
        report.append(entry)
        print(
            f"check output {k}: max abs error {max_abs:.3g}{steps}, max rel error "
            f"{max_rel:.3g} ({'ok' if ok else 'MISMATCH'} at {args.bound}){note}"
        )
    return code, report


def _per_region(args: argparse.Namespace, inputs: list[np.ndarray], report: list) -> int:
    from byoc_mlir.explain.bisect import check_regions, first_bad

    checks = check_regions(args.bundle, inputs, rtol=args.rtol, atol=args.atol, scaled=args.scaled)
    print(f"{'region':<32}{'backend':<12}{'route':<9}{'max abs':>11}{'max rel':>11}  result")
    for c in checks:
        verdict = "ok" if c.ok else "MISMATCH"
        errors = f"{c.max_abs:>11.3g}{c.max_rel:>11.3g}"
        note = f" ({c.note})" if c.note else ""
        print(f"{c.name:<32}{c.backend:<12}{c.route:<9}{errors}  {verdict}{note}")
    # JSON has no infinity: a region without a result has no errors (null), and a note
    report.append(
        {
            "regions": [
                {k: None if v == math.inf else v for k, v in c.__dict__.items()} for c in checks
            ]
        }
    )
    bad = first_bad(checks)
    if bad is None:
        print(f"all {len(checks)} offloaded region(s) match their host version")
        return 0
    print(f"first region that differs: {bad.name} ({bad.backend}, {bad.route} route)")
    return 1


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.per_region and not args.check:
        raise ByocError("--per-region needs --check")
    given = {name: span[0] for name, span in parse_dims(args.dim, ranges=False).items()}
    if args.per_region:  # the bundle in a child first: a region that crashes is named
        entry, specs, ranges = _signature(args.bundle)
        inputs = _load_inputs(entry, specs, args.input, args.seed, _sizes(given, ranges))
        status, result = call_in_child(
            _outputs, (str(args.bundle), inputs, list(sys.path)), "the bundle", REGION_TIMEOUT
        )
        if status != "ok":
            print(f"{result}; each offloaded region alone:")
            _tolerances_from(json.loads((args.bundle / MANIFEST).read_text()), args)
            report: list = [{"bundle": result}]
            code = max(1, _per_region(args, inputs, report))
            if args.output is not None:
                args.output.mkdir(parents=True, exist_ok=True)
                (args.output / "check.json").write_text(json.dumps(report, indent=1))
            return code
    compiled = Compiled(args.bundle)
    sizes = _sizes(given, compiled.dims)
    inputs = _load_inputs(compiled.entry, compiled.inputs, args.input, args.seed, sizes)
    outputs = compiled(*inputs)
    for k, out in enumerate(outputs):
        flat = out.reshape(-1)
        preview = np.array2string(flat[:6], precision=5, separator=", ")
        print(
            f"output {k}: {out.dtype}{list(out.shape)} {preview}{' ...' if flat.size > 6 else ''}"
        )
    if args.output is not None:
        args.output.mkdir(parents=True, exist_ok=True)
        for k, out in enumerate(outputs):
            tmp = args.output / f".output_{k}.npy.{os.getpid()}"
            with open(tmp, "wb") as f:
                np.save(f, out)
            os.replace(tmp, args.output / f"output_{k}.npy")
    code = 0
    if args.check:
        _tolerances(compiled, args)
        code, report = _check(compiled, inputs, outputs, args)
        if args.per_region:
            code = max(code, _per_region(args, inputs, report))
        if args.output is not None:
            (args.output / "check.json").write_text(json.dumps(report, indent=1))
    compiled.close()
    return code


def main(argv: Sequence[str] | None = None) -> None:
    run_tool(run, argv)


if __name__ == "__main__":
    main()
