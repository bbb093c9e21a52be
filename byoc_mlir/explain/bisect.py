"""Per-region numeric check: which offloaded region computes something different?

``byoc-run --check`` says the model's outputs differ; this says where. From the bundle's
``partitioned.mlir`` (regions outlined, still host code) it builds a *tap* module whose
entry function also returns every offloaded region call's inputs and outputs, compiles
it host-only and runs it on the real inputs: that gives each region's real input values
and its host (reference) outputs. Then each offloaded region runs alone on those same
inputs — the linked route as a small module made of its rewritten function and
executable (from ``host.mlir``), the runtime route through its backend's runtime and the
stored payload — and is compared with the reference. The first region (in call order)
beyond tolerance is named.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from iree.compiler import CompilerToolError, compile_str, ir

from byoc_mlir import _compat
from byoc_mlir.codegen import registry
from byoc_mlir.codegen.hook import c_identifier
from byoc_mlir.codegen.workers import call_in_child
from byoc_mlir.errors import ByocError
from byoc_mlir.runtime import MANIFEST


@dataclass
class RegionCheck:
    """One offloaded region run alone on its real inputs, against its host version."""

    name: str
    backend: str
    route: str
    max_abs: float
    max_rel: float
    ok: bool
    note: str = ""  # why there is no result (the region's runtime crashed or hung)


def _load(bundle: Path) -> tuple[dict, dict, str, str]:
    manifest = json.loads((bundle / MANIFEST).read_text())
    report = json.loads((bundle / "report.json").read_text())
    try:
        partitioned = (bundle / "partitioned.mlir").read_text()
        host = (bundle / "host.mlir").read_text()
    except OSError as err:
        raise ByocError(
            f"{bundle}: {err.filename} missing; --per-region needs a bundle compiled with "
            f"at least one backend by this version of byoc-compile"
        ) from None
    return manifest, report, partitioned, host


def _tap_module(
    partitioned: str, entry: str, names: Sequence[str]
) -> tuple[str, list[tuple[str, int, int]]]:
    """The entry function also returns each region call's operands then results.

    Returns the module text and, per tapped call in order: (callee, #inputs, #outputs).
    """
    context = _compat.new_context()
    module = _compat.parse_module(partitioned, context)
    wanted = set(names)
    taps: list[tuple[str, int, int]] = []
    with context, ir.Location.unknown():
        func = next(
            op.operation
            for op in module.body.operations
            if op.operation.name in _compat.FLAVORS and _compat.symbol_name(op.operation) == entry
        )
        block = func.regions[0].blocks[0]
        ops = [o.operation for o in block.operations]
        extra: list[ir.Value] = []
        for op in ops[:-1]:
            if op.name in _compat.CALL_OPS and _compat.callee_name(op) in wanted:
                taps.append((_compat.callee_name(op), len(op.operands), len(op.results)))
                extra += list(op.operands) + list(op.results)
        ret = ops[-1]
        values = list(ret.operands) + extra
        _compat.create_return(
            _compat.FLAVORS[func.name], values, ir.InsertionPoint(ret), ret.location
        )
        ret.erase()
        ftype = _compat.function_type(func)
        func.attributes["function_type"] = ir.TypeAttr.get(
            ir.FunctionType.get(list(ftype.inputs), [v.type for v in values])
        )
        if "tied_operands" in func.attributes:
            del func.attributes["tied_operands"]
        return module.operation.get_asm(assume_verified=True), taps


def _region_module(host: str, name: str) -> str:
    """The rewritten region function (made public) and its executable, from host.mlir."""
    context = _compat.new_context()
    module = _compat.parse_module(host, context)
    keep = {name, f"{c_identifier(name)}_exe"}
    parts = []
    for op in module.body.operations:
        op = op.operation
        if "sym_name" in op.attributes and _compat.symbol_name(op) in keep:
            text = op.get_asm()
            if op.name in _compat.FLAVORS:
                text = text.replace(" private @", " public @", 1)
            parts.append(text)
    aliases = [line for line in host.splitlines() if line.startswith("#")]
    return "\n".join(aliases) + "\nmodule {\n" + "\n".join(parts) + "\n}\n"


def _run(
    text: str, function: str, inputs: Sequence[np.ndarray], flags: Sequence[str]
) -> list[np.ndarray]:
    import iree.runtime as rt

    try:
        vmfb = compile_str(text, extra_args=["--compile-from=input", *flags])
    except CompilerToolError as err:
        raise ByocError(
            f"cannot compile the per-region probe for @{function}: {str(err)[:300]}"
        ) from None
    config = rt.Config("local-task")
    context = rt.SystemContext(config=config)
    context.add_vm_module(rt.VmModule.copy_buffer(context.instance, vmfb))
    result = context.modules.module[function](*inputs)
    results = result if isinstance(result, tuple | list) else [result]
    out = [np.asarray(r).copy() for r in results]
    del context
    return out


def scale_of(reference: np.ndarray) -> float:
    """The largest magnitude in ``reference`` (1.0 for an empty or all-zero one)."""
    if not reference.size:
        return 1.0
    top = float(np.nanmax(np.abs(reference.astype(np.float64))))
    return top if top > 0 else 1.0


REGION_TIMEOUT = 600.0
"""Seconds one region may run in the per-region check before it counts as hung."""


def _serve_once(
    backend_name: str, payload: bytes, inputs: list[np.ndarray], path: list[str] | None = None
) -> list[np.ndarray]:
    """Loads a runtime-route payload and calls it once (in a child, with its sys.path)."""
    if path is not None:
        sys.path[:] = path
        registry.rediscover()
    backend = registry.get(backend_name)
    return [np.asarray(a) for a in backend.runtime(payload)(*inputs)]  # type: ignore[misc]


def check_regions(
    bundle: str | Path,
    inputs: Sequence[np.ndarray],
    rtol: float = 1e-4,
    atol: float = 1e-4,
    scaled: bool = False,
) -> list[RegionCheck]:
    """Runs every offloaded region of ``bundle`` alone against its host version.

    ``scaled``: ``atol`` is relative to each output's largest reference magnitude (the
    bound for regions computing in reduced precision)."""
    bundle = Path(bundle)
    manifest, report, partitioned, host = _load(bundle)
    flags = manifest["iree_flags"]
    offloaded = {
        r["name"]: r
        for r in report["regions"]
        if r["status"] == "offloaded" and r["route"] != "iree"
    }
    tap_text, taps = _tap_module(partitioned, manifest["entry"], list(offloaded))
    n_out = len(manifest["outputs"])
    tapped = _run(tap_text, manifest["entry"], inputs, flags)[n_out:]
    served = {f"{s['backend']}.{s['function']}": s for s in manifest.get("served", [])}
    checks: list[RegionCheck] = []
    pos = 0
    for name, n_in, n_res in taps:
        region_inputs = tapped[pos : pos + n_in]
        reference = tapped[pos + n_in : pos + n_in + n_res]
        pos += n_in + n_res
        region = offloaded[name]
        if region["route"] == "runtime":
            serve = served[name]
            payload = (bundle / serve["payload"]).read_bytes()
            if registry.installed(serve["backend"]):  # alone in a child: a crash is named
                status, value = call_in_child(
                    _serve_once,
                    (serve["backend"], payload, list(region_inputs), list(sys.path)),
                    f"{name}'s runtime",
                    REGION_TIMEOUT,
                )
                if status != "ok":
                    checks.append(
                        RegionCheck(
                            name, region["backend"], "runtime", math.inf, math.inf, False, value
                        )
                    )
                    continue
                got = value
            else:  # registered in this process only: a child cannot find it
                got = _serve_once(serve["backend"], payload, list(region_inputs))
        else:
            got = _run(_region_module(host, name), name, region_inputs, flags)
        max_abs, max_rel, ok = 0.0, 0.0, True
        for g, want in zip(got, reference, strict=True):
            diff = np.abs(g.astype(np.float64) - want.astype(np.float64))
            if diff.size:
                max_abs = max(max_abs, float(diff.max()))
                scale = np.maximum(np.abs(want.astype(np.float64)), 1e-30)
                max_rel = max(max_rel, float((diff / scale).max()))
            bound = atol * scale_of(want) if scaled else atol
            ok = ok and bool(np.allclose(g, want, rtol=rtol, atol=bound))
        checks.append(RegionCheck(name, region["backend"], region["route"], max_abs, max_rel, ok))
    return checks


def first_bad(checks: Sequence[RegionCheck]) -> RegionCheck | None:
    return next((c for c in checks if not c.ok), None)
