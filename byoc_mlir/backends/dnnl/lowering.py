"""Which lowering runs for which op: the table from op kinds to the ``lower_*``
functions, and `lower`, which walks a region through it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from iree.compiler import ir

from byoc_mlir import _compat
from byoc_mlir.backends.dnnl import lower_compute, lower_elementwise, lower_fused, lower_quant
from byoc_mlir.backends.dnnl.lower_elementwise import eltwise
from byoc_mlir.backends.dnnl.lower_fused import reduce
from byoc_mlir.backends.dnnl.program import (
    BATCH_MATMUL,
    COLLAPSE,
    CONCAT,
    DEPTHWISE,
    EXPAND,
    FILL,
    LOWEST,
    MATMUL,
    MAXPOOL,
    NCHW,
    NHWC,
    PAD,
    SUMPOOL,
    TRANSPOSE,
    Program,
)
from byoc_mlir.codegen.backend import KindKey
from byoc_mlir.codegen.recognisers import (
    ADD,
    BIAS_ADD,
    BROADCAST,
    BROADCAST_DIV,
    BROADCAST_MUL,
    BROADCAST_SUB,
    CLAMP,
    CONTRACTION,
    DEQUANTIZE,
    DIV,
    EXP,
    GELU,
    MAX_CONST,
    MIN_CONST,
    MUL,
    QUANTIZE,
    REDUCE_MAX,
    REDUCE_SUM,
    RELU,
    RSQRT,
    SCALE,
    SHIFT,
    SUB,
    GenericView,
    bound_value,
    constant_value,
    scale_factor,
    shift_amount,
)


def _binary(alg: str, commutative: bool) -> Callable[[Program, ir.Operation], None]:
    return lambda p, op: lower_elementwise.binary(p, op, alg, commutative)


def _clamp(p: Program, op: ir.Operation) -> None:
    view = GenericView.of(op)
    assert view is not None
    first, second = view.body
    bounds = []
    for body_op, x in ((first, view.args[0]), (second, first.results[0])):
        a, b = body_op.operands
        bounds.append(constant_value(b if a == x else a))
    lo, hi = (bounds[0], bounds[1]) if "max" in first.name else (bounds[1], bounds[0])
    assert lo is not None and hi is not None
    lower_elementwise.eltwise(p, op, ("BD_CLIP", lo, hi, -1), "dnnl_eltwise_clip_v2", lo, hi)


def _bound(upper: bool) -> Callable[[Program, ir.Operation], None]:
    def lower(p: Program, op: ir.Operation) -> None:
        c = bound_value(op)
        lo, hi = (-math.inf, c) if upper else (c, math.inf)
        lower_elementwise.eltwise(p, op, ("BD_CLIP", lo, hi, -1), "dnnl_eltwise_clip_v2", lo, hi)

    return lower


def _shift(p: Program, op: ir.Operation) -> None:
    c = shift_amount(op)
    lower_elementwise.eltwise(p, op, ("BD_LINEAR", 1.0, c, -1), "dnnl_eltwise_linear", 1.0, c)


def _gelu(p: Program, op: ir.Operation) -> None:
    view = GenericView.of(op)
    assert view is not None
    erf = any(o.name == "math.erf" for o in view.body)
    kind, alg = (
        ("BD_GELU_ERF", "dnnl_eltwise_gelu_erf")
        if erf
        else ("BD_GELU_TANH", "dnnl_eltwise_gelu_tanh")
    )
    lower_elementwise.eltwise(p, op, (kind, 0.0, 0.0, -1), alg, 0.0, 0.0)


def _scale(p: Program, op: ir.Operation) -> None:
    k = scale_factor(op)
    lower_elementwise.eltwise(p, op, ("BD_LINEAR", k, 0.0, -1), "dnnl_eltwise_linear", k, 0.0)


_HANDLERS: dict[KindKey, Callable[[Program, ir.Operation], None]] = {
    FILL: lower_compute.fill,
    PAD: lower_compute.pad,
    NCHW: lower_compute.conv,
    NHWC: lower_compute.conv,
    DEPTHWISE: lower_compute.conv,
    MAXPOOL: lower_compute.pool,
    SUMPOOL: lower_compute.pool,
    MATMUL: lower_compute.matmul,
    BATCH_MATMUL: lower_compute.matmul,
    CONTRACTION: lower_compute.matmul,  # a (batch) matmul written as a generic
    COLLAPSE: lower_fused.reshape,
    TRANSPOSE: lower_fused.transpose,
    CONCAT: lower_fused.concat,
    EXPAND: lower_fused.reshape,
    ADD: _binary("dnnl_binary_add", True),
    BIAS_ADD: _binary("dnnl_binary_add", True),
    SUB: _binary("dnnl_binary_sub", False),
    BROADCAST_SUB: _binary("dnnl_binary_sub", False),
    MUL: _binary("dnnl_binary_mul", True),
    BROADCAST_MUL: _binary("dnnl_binary_mul", True),
    RELU: lambda p, op: eltwise(p, op, ("BD_RELU", 0.0, 0.0, -1), "dnnl_eltwise_relu", 0.0, 0.0),
    CLAMP: _clamp,
    GELU: _gelu,
    SCALE: _scale,
    MAX_CONST: _bound(False),
    MIN_CONST: _bound(True),
    DIV: _binary("dnnl_binary_div", False),
    BROADCAST_DIV: _binary("dnnl_binary_div", False),
    SHIFT: _shift,
    EXP: lambda p, op: eltwise(p, op, ("BD_EXP", 0.0, 0.0, -1), "dnnl_eltwise_exp", 0.0, 0.0),
    RSQRT: lambda p, op: eltwise(p, op, ("BD_POW", 1.0, -0.5, -1), "dnnl_eltwise_pow", 1.0, -0.5),
    BROADCAST: lower_elementwise.broadcast,
    REDUCE_SUM: lambda p, op: reduce(p, op, "dnnl_reduction_sum", lambda v: v == 0.0),
    REDUCE_MAX: lambda p, op: reduce(p, op, "dnnl_reduction_max", lambda v: v <= LOWEST),
    QUANTIZE: lower_quant.quantize,
    DEQUANTIZE: lower_quant.dequantize,
}


def lower(p: Program) -> None:
    """Lowers every op of the region into ``p``, in program order."""
    for position, rop in enumerate(p.region.ops):
        p.position = position
        if p.skip and _compat.op_key(rop.op) in p.skip:
            continue  # folded into an earlier oneDNN primitive (softmax)
        handler = _HANDLERS.get(rop.kind)
        if handler is None:
            raise p.error(f"cannot lower {rop.kind_name}", rop.op)
        handler(p, rop.op)
