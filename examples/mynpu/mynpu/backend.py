"""mynpu: the README's "Adding a backend" example, as a real installable package.

The "NPU" is numpy: codegen turns each outlined region into a small program (one step
per op, JSON) and the runtime route serves it. What a vendor writes is all here: which
ops and composites the hardware takes (with a reason when it refuses one), the codegen
hook, and the runtime factory. Installed as a plugin, its hook runs out of process with
a time and memory limit (byoc_mlir.codegen.workers); nothing here declares it safe.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from iree.compiler.dialects import linalg, tosa

from byoc_mlir import ANY, Backend, Reject, op
from byoc_mlir.codegen.checks import tensor_types
from byoc_mlir.codegen.hook import CodegenOptions, RegionView, RuntimeArtifact
from byoc_mlir.codegen.recognisers import BIAS_ADD, RELU

BACKEND = Backend("mynpu", "my NPU: f32 matmul with fused bias and relu")
f32 = tensor_types(("f32",), static=True)

BACKEND.supports(linalg.MatmulOp, linalg.FillOp, RELU, BIAS_ADD, check=f32)


@BACKEND.supports(tosa.MatMulOp)
def small_enough(ctx: Any) -> Reject | None:  # ctx: op, kind, matches, members, options
    if ctx.op.results[0].type.shape[-1] > 4096:
        return Reject("matmul wider than 4096 columns does not fit the NPU's SRAM")
    return None


BACKEND.composite(  # higher benefit wins among overlapping matches
    "matmul_bias_relu",
    op(RELU, op(BIAS_ADD, op(linalg.MatmulOp, name="mm"), ANY)),
    benefit=3,
    check=f32,
)

_STEPS = {
    "linalg.fill": "fill",
    "linalg.matmul": "matmul",
    "generic:bias_add": "add",
    "generic:relu": "relu",
}


def codegen(region: RegionView, options: CodegenOptions) -> RuntimeArtifact:
    """The region as a program: values are numbered (arguments first), steps in order."""
    ids: dict[Any, int] = {v: k for k, v in enumerate(region.args)}
    weights: dict[int, Any] = {}

    def ref(v: Any) -> int:
        if v not in ids:
            if v not in region.constants:
                raise ValueError(f"{v.type} is computed by an op the NPU does not run")
            ids[v] = len(ids)
            weights[ids[v]] = np.asarray(region.constants[v], np.float32).tolist()
        return ids[v]

    steps = []
    for rop in region.ops:
        kind = _STEPS.get(rop.op.name) or _STEPS.get(rop.kind_name)
        if kind is None:
            raise ValueError(f"the NPU has no instruction for {rop.kind_name}")
        # the inputs each instruction reads (a fill's init only gives its shape; a matmul
        # accumulates into its init)
        count = {"relu": 1, "fill": 1, "matmul": 3}.get(kind, 2)
        operands = [ref(v) for v in rop.op.operands[:count]]
        ids[rop.op.results[0]] = out = len(ids)
        shape = list(rop.op.results[0].type.shape)
        steps.append({"op": kind, "in": operands, "out": out, "shape": shape})
    program = {
        "inputs": len(region.args),
        "outputs": [ids[v] for v in region.results],
        "weights": {str(k): w for k, w in weights.items()},
        "steps": steps,
    }
    return RuntimeArtifact(json.dumps(program).encode())


def runtime(payload: bytes) -> Any:
    """Loads a program once; the callable runs it on numpy arrays."""
    program = json.loads(payload)
    weights = {int(k): np.asarray(w, np.float32) for k, w in program["weights"].items()}

    def run(*arrays: np.ndarray) -> list[np.ndarray]:
        values: dict[int, np.ndarray] = dict(enumerate(arrays)) | weights
        for s in program["steps"]:
            a = values[s["in"][0]]
            if s["op"] == "fill":
                out = np.full(s["shape"], a, np.float32)
            elif s["op"] == "matmul":
                out = values[s["in"][2]] + a @ values[s["in"][1]]
            elif s["op"] == "add":
                out = a + values[s["in"][1]]
            else:
                out = np.maximum(a, 0)
            values[s["out"]] = out.astype(np.float32)
        return [values[k] for k in program["outputs"]]

    return run


BACKEND.codegen, BACKEND.runtime = codegen, runtime
