"""Estimated floating-point operations of an op, from its static shapes.

Good enough to say where the work is (a conv vs the bias add after it), not a cost
model: matmul-like ops count 2 per multiply-accumulate, pooling one per window element,
elementwise generics one per arithmetic body op per output element, data movement and
fills count 0.
"""

from __future__ import annotations

import math

from iree.compiler import ir

from byoc_mlir.linalg_ops import linalg

_CONTRACTIONS = {
    linalg.MatmulOp.OPERATION_NAME,
    linalg.BatchMatmulOp.OPERATION_NAME,
}
_CONVS = {
    linalg.Conv2DNchwFchwOp.OPERATION_NAME: ("nchw", "fchw"),
    linalg.Conv2DNhwcHwcfOp.OPERATION_NAME: ("nhwc", "hwcf"),
}


def _shape(v: ir.Value) -> list[int] | None:
    t = v.type
    if isinstance(t, ir.ShapedType) and t.has_static_shape:
        return list(t.shape)
    return None


def estimate(op: ir.Operation) -> int:
    """Estimated FLOPs of one op (0 when shapes are dynamic or the op moves data)."""
    name = op.name
    try:
        if name in _CONTRACTIONS:
            lhs, out = _shape(op.operands[0]), _shape(op.results[0])
            if lhs is None or out is None:
                return 0
            return 2 * math.prod(out) * lhs[-1]
        if name in _CONVS:
            w, out = _shape(op.operands[1]), _shape(op.results[0])
            if w is None or out is None:
                return 0
            layout = _CONVS[name][1]
            reduction = math.prod(d for d, c in zip(w, layout, strict=True) if c != "f")
            return 2 * math.prod(out) * reduction
        if name.startswith("linalg.pooling_"):  # one compare/add per window element
            window, out = _shape(op.operands[1]), _shape(op.results[0])
            if window is None or out is None:
                return 0
            return math.prod(out) * math.prod(window)
        if name == linalg.GenericOp.OPERATION_NAME:
            body = op.regions[0].blocks[0]
            arith_ops = sum(
                1
                for o in body.operations
                if o.operation.name.split(".")[0] in ("arith", "math")
                and o.operation.name != "arith.constant"
            )
            total = 0
            for r in op.results:
                shape = _shape(r)
                total += math.prod(shape) * arith_ops if shape is not None else 0
            return total
        if name.startswith("tosa."):
            out = _shape(op.results[0]) if len(op.results) else None
            return math.prod(out) if out is not None else 0
    except (IndexError, ValueError):
        return 0
    return 0
