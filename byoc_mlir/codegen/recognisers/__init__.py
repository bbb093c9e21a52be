"""Recognisers for the common ``linalg.generic`` forms, so patterns can name them.

Frontends lower elementwise PyTorch/TOSA ops to ``linalg.generic``; a backend wants to
say "I run relu", not "I run a generic whose body is ``arith.maximumf(%in, 0.0)``". A
`Recogniser` is an op kind that is a predicate over a generic. The forms:

- ``ADD``/``SUB``/``MUL``: two same-shape inputs (identity maps), body one ``arith`` op;
- ``BIAS_ADD``: like ``ADD`` but one input is broadcast (a projected permutation with
  fewer results, e.g. ``(d0, d1) -> (d1)``); ``BROADCAST_SUB``/``BROADCAST_MUL`` the same
  for ``subf``/``mulf`` (per-channel normalisation, e.g. BatchNorm's ``(x - mean) * k``);
- ``RELU``: ``max(x, 0)``, either ``arith.maximumf`` or torch's ``cmpf ugt`` + ``select``;
- ``CLAMP``: ``min(max(x, lo), hi)`` in either order, bounds constant;
- ``GELU``: the erf form or the tanh approximation (one transcendental, its constant);
- ``SCALE``: ``x * c`` or ``x / c`` with a scalar constant ``c`` (average pooling's
  division by the window size, attention's ``1/sqrt(d)``);
- ``MAX_CONST``/``MIN_CONST``: ``max(x, c)``/``min(x, c)``, ``c`` a scalar constant or a
  rank-0 constant tensor input (torch's ``clamp_min``/``clamp_max``, ReLU6's halves), as
  ``arith.maximumf``/``minimumf`` or ``cmpf`` + ``select``;
- ``DIV``/``BROADCAST_DIV``: like ``SUB``/``BROADCAST_SUB`` for ``divf``; ``SHIFT``:
  ``x + c`` or ``x - c`` with a scalar constant; ``EXP``, ``RSQRT``: one ``math`` op;
  ``BROADCAST``: a copy of a broadcast input (LayerNorm's statistics, spread back);
- ``REDUCE_SUM``/``REDUCE_MAX``: a sum or max over reduction dims of an identity-read
  input into an output that drops them or keeps them as 1s (LayerNorm's and softmax's
  reductions). ``REDUCE_MAX`` also matches torch's ``max.dim`` (value and index outputs)
  when the index is never used; ``CONTRACTION``: ``C[b.., m, n] += A[b.., m, k] *
  B[b.., k, n]``, a (batch) matmul written as a generic (ONNX attention's products);
- ``QUANTIZE``/``DEQUANTIZE``: ONNX's QuantizeLinear / DequantizeLinear per tensor
  (`byoc_mlir.codegen.recognisers.quantization`), scale and zero point constant.

The elementwise forms require parallel iterators and one identity-mapped output; dtype is not a
recogniser's business (backend checks decide that).
"""

from __future__ import annotations

from iree.compiler import ir

from byoc_mlir.codegen.recognisers.elementwise import (
    Binary,
    Bound,
    Broadcast,
    Clamp,
    Gelu,
    Relu,
    Scale,
    Shift,
    Unary,
    bound_value,
    scale_factor,
    shift_amount,
)
from byoc_mlir.codegen.recognisers.generic_view import (
    CONSTANT,
    GENERIC,
    PARALLEL,
    GenericView,
    Recogniser,
    constant_value,
)
from byoc_mlir.codegen.recognisers.quantization import (
    Dequantize,
    Quantize,
    QuantParams,
    int8_weights,
    quant_params,
)
from byoc_mlir.codegen.recognisers.reductions import (
    Contraction,
    Reduce,
    Reduction,
    contraction_batch,
    max_with_unused_index,
    reduction,
)

__all__ = [
    "ADD",
    "SUB",
    "MUL",
    "BIAS_ADD",
    "BROADCAST_SUB",
    "BROADCAST_MUL",
    "RELU",
    "CLAMP",
    "GELU",
    "SCALE",
    "MAX_CONST",
    "MIN_CONST",
    "DIV",
    "BROADCAST_DIV",
    "SHIFT",
    "EXP",
    "RSQRT",
    "BROADCAST",
    "REDUCE_SUM",
    "REDUCE_MAX",
    "CONTRACTION",
    "contraction_batch",
    "QUANTIZE",
    "DEQUANTIZE",
    "QuantParams",
    "quant_params",
    "int8_weights",
    "ALL",
    "CONSTANT",
    "GENERIC",
    "PARALLEL",
    "GenericView",
    "Recogniser",
    "Reduction",
    "bound_value",
    "constant_value",
    "describe_body",
    "recognise",
    "reduction",
    "scale_factor",
    "shift_amount",
]

ADD = Binary("add", ("arith.addf", "arith.addi"), broadcast=False, commutative=True)
SUB = Binary("sub", ("arith.subf", "arith.subi"), broadcast=False, commutative=False)
MUL = Binary("mul", ("arith.mulf", "arith.muli"), broadcast=False, commutative=True)
BIAS_ADD = Binary("bias_add", ("arith.addf", "arith.addi"), broadcast=True, commutative=True)
BROADCAST_SUB = Binary("broadcast_sub", ("arith.subf",), broadcast=True, commutative=False)
BROADCAST_MUL = Binary("broadcast_mul", ("arith.mulf",), broadcast=True, commutative=True)
RELU = Relu()
CLAMP = Clamp()
GELU = Gelu()
SCALE = Scale()
MAX_CONST = Bound("max_const", upper=False)
MIN_CONST = Bound("min_const", upper=True)
DIV = Binary("div", ("arith.divf",), broadcast=False, commutative=False)
BROADCAST_DIV = Binary("broadcast_div", ("arith.divf",), broadcast=True, commutative=False)
SHIFT = Shift()
EXP = Unary("exp", "math.exp")
RSQRT = Unary("rsqrt", "math.rsqrt")
BROADCAST = Broadcast()
REDUCE_SUM = Reduce("reduce_sum", ("arith.addf",))
REDUCE_MAX = Reduce("reduce_max", ("arith.maximumf", "arith.maxnumf"))
CONTRACTION = Contraction()
QUANTIZE = Quantize()
DEQUANTIZE = Dequantize()

# Tried in this order; the forms are disjoint, the order only saves time.
ALL: tuple[Recogniser, ...] = (
    BIAS_ADD, ADD, RELU, CLAMP, MUL, SUB, BROADCAST_SUB, BROADCAST_MUL, SCALE,
    MAX_CONST, MIN_CONST, DIV, BROADCAST_DIV, SHIFT, EXP, RSQRT, BROADCAST,
    REDUCE_SUM, REDUCE_MAX, GELU, QUANTIZE, DEQUANTIZE, CONTRACTION,
)  # fmt: skip


def recognise(op: ir.Operation) -> Recogniser | None:
    """The recognised form of a ``linalg.generic``, or None."""
    view = GenericView.of(op)
    if view is None:
        return REDUCE_MAX if max_with_unused_index(op.operation) else None
    for rec in ALL:
        if rec.match_view(view):
            return rec
    return None


def describe_body(op: ir.Operation) -> str:
    """A short description of an unrecognised generic's body (for reject reasons)."""
    op = op.operation
    if op.attributes["operandSegmentSizes"][1] != 1:
        return "a generic with several outputs"
    names = {o.name for o in op.regions[0].blocks[0].operations}
    names -= {"linalg.yield", CONSTANT}
    return ", ".join(sorted(names)) if names else "a copy"
