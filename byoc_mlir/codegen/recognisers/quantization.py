"""The quantization forms: ONNX's QuantizeLinear and DequantizeLinear (and pt2e's
quantize/dequantize_per_tensor) as IREE's importers lower them, per tensor.

- ``QUANTIZE``: f32 -> i8/u8 (or i16/u16), ``saturate(round_half_even(x / s) + zp)``:
  ``divf`` (or ``mulf`` by ``1/s``), ``math.roundeven``, an optional ``addf`` of the zero
  point, a clamp to the integer range (``maximumf``/``minimumf``, either order), then
  ``fptosi``/``fptoui``;
- ``DEQUANTIZE``: i8/u8 -> f32, ``(x - zp) * s``: ``sitofp``/``uitofp``, an optional
  ``subf`` of the zero point, then ``mulf`` by the scale; or the zero point subtracted in
  integers (``extui``/``extsi``, ``subi``, ``sitofp``, ``mulf``).

Scale and zero point are scalar constants (per-tensor quantization; per-channel
dequantization of weights is folded into constant f32 weights before partitioning).
`quant_params` reads them back, so backend checks can ask for symmetry or a dtype;
`int8_weights` recovers folded weights' int8 values and per-channel scales.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from iree.compiler import ir

from byoc_mlir.codegen.recognisers.generic_view import GenericView, Recogniser, constant_value

_TO_INT = ("arith.fptosi", "arith.fptoui")
_TO_FLOAT = ("arith.sitofp", "arith.uitofp")
_EXTEND = ("arith.extsi", "arith.extui")
_CLAMPS = ("arith.maximumf", "arith.minimumf", "arith.maxnumf", "arith.minnumf")


@dataclass(frozen=True)
class QuantParams:
    """One per-tensor quantization: ``real = (q - zero_point) * scale``."""

    scale: float
    zero_point: int
    signed: bool
    bits: int
    saturation: tuple[int, int] | None = None
    """A quantize's clamp (``(0, 255)`` for u8); None for a dequantize."""

    @property
    def dtype(self) -> str:
        """``i8``, ``u8``, ``i16``, ...: the integer type of the quantized side."""
        return f"{'i' if self.signed else 'u'}{self.bits}"

    @property
    def symmetric(self) -> bool:
        return self.zero_point == 0

    @property
    def full_range(self) -> bool:
        """Whether a quantize saturates to its type's whole range (not a reduced one)."""
        if self.saturation is None:
            return True
        low = -(1 << (self.bits - 1)) if self.signed else 0
        return self.saturation == (low, low + (1 << self.bits) - 1)


def _int_bits(t: ir.Type) -> int | None:
    element = ir.ShapedType(t).element_type if isinstance(t, ir.ShapedType) else t
    return ir.IntegerType(element).width if isinstance(element, ir.IntegerType) else None


def _operand_constant(op: ir.Operation, x: ir.Value) -> float | None:
    """The scalar constant ``op`` combines with ``x`` (None if it is not one)."""
    if len(op.operands) != 2:
        return None
    a, b = op.operands
    if a == x:
        return constant_value(b)
    if b == x and op.name != "arith.divf" and op.name != "arith.subf":
        return constant_value(a)
    return None


def _quantize(view: GenericView) -> QuantParams | None:
    if view.n_inputs != 1 or not view.elementwise_shape_ok() or not view.is_identity(0):
        return None
    bits = _int_bits(view.op.results[0].type)
    if bits is None or len(view.body) < 4 or view.body[-1].name not in _TO_INT:
        return None
    ops = view.body
    x = view.args[0]
    first = ops[0]
    c = _operand_constant(first, x)
    if c is None or c == 0.0 or first.name not in ("arith.divf", "arith.mulf"):
        return None
    scale = c if first.name == "arith.divf" else 1.0 / c
    if ops[1].name != "math.roundeven" or ops[1].operands[0] != first.results[0]:
        return None
    v, rest, zero_point = ops[1].results[0], ops[2:-1], 0.0
    if rest and rest[0].name == "arith.addf":
        zp = _operand_constant(rest[0], v)
        if zp is None:
            return None
        zero_point, v, rest = zp, rest[0].results[0], rest[1:]
    bounds: list[float] = []
    for clamp in rest:  # the saturation to the integer range
        bound = _operand_constant(clamp, v) if clamp.name in _CLAMPS else None
        if bound is None or bound != int(bound):
            return None
        bounds.append(bound)
        v = clamp.results[0]
    if len(rest) != 2 or ops[-1].operands[0] != v or view.yielded[0] != ops[-1].results[0]:
        return None
    if zero_point != int(zero_point):
        return None
    low, high = sorted(int(b) for b in bounds)
    signed = ops[-1].name == "arith.fptosi"
    return QuantParams(scale, int(zero_point), signed, bits, (low, high))


def _dequantize(view: GenericView) -> QuantParams | None:
    if view.n_inputs != 1 or not view.elementwise_shape_ok() or not view.is_identity(0):
        return None
    bits = _int_bits(view.op.operands[0].type)
    ops = view.body
    if bits is None or not ops or list(ops[0].operands) != [view.args[0]]:
        return None
    if len(ops) == 4 and ops[0].name in _EXTEND and ops[1].name == "arith.subi":
        # the zero point subtracted in integers: extend, subi, sitofp, mulf
        zp = _operand_constant(ops[1], ops[0].results[0])
        if zp is None or ops[2].name not in _TO_FLOAT or ops[2].operands[0] != ops[1].results[0]:
            return None
        scale = (
            _operand_constant(ops[3], ops[2].results[0]) if ops[3].name == "arith.mulf" else None
        )
        if scale is None or view.yielded[0] != ops[3].results[0]:
            return None
        return QuantParams(scale, int(zp), ops[0].name == "arith.extsi", bits)
    if not 2 <= len(ops) <= 3 or ops[0].name not in _TO_FLOAT:
        return None
    v, zero_point = ops[0].results[0], 0.0
    if len(ops) == 3:
        if ops[1].name != "arith.subf":
            return None
        zp = _operand_constant(ops[1], v)
        if zp is None or zp != int(zp):
            return None
        zero_point, v = zp, ops[1].results[0]
    scale = _operand_constant(ops[-1], v) if ops[-1].name == "arith.mulf" else None
    if scale is None or view.yielded[0] != ops[-1].results[0]:
        return None
    return QuantParams(scale, int(zero_point), ops[0].name == "arith.sitofp", bits)


class Quantize(Recogniser):
    name = "quantize"

    def match_view(self, view: GenericView) -> bool:
        return _quantize(view) is not None


class Dequantize(Recogniser):
    name = "dequantize"

    def match_view(self, view: GenericView) -> bool:
        return _dequantize(view) is not None


def quant_params(op: ir.Operation) -> QuantParams:
    """Scale, zero point and integer type of a ``QUANTIZE`` or ``DEQUANTIZE`` generic.

    Raises:
        ValueError: the op is neither.
    """
    view = GenericView.of(op)
    params = None if view is None else _quantize(view) or _dequantize(view)
    if params is None:
        raise ValueError(f"{op.operation.name} is not a quantize or dequantize generic")
    return params


_TOLERANCE = 1e-3
"""How far from an integer ``w / scale`` may be (in quantization steps) for ``w`` to count
as ``q * scale``: a real int8 weight is off by about 1e-5 (f32 rounding of the product)."""


def int8_weights(weights: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``(q, scales)`` with ``weights == q * scales`` along ``axis`` (q int8 in [-128, 127],
    scales f32 per index of ``axis``), or None when the weights are not such a product.

    The scale is the largest magnitude over 127 (or 128), per tensor or per channel: a
    symmetric quantizer maps the largest weight to ±127 (onnxruntime, pt2e) or -128.
    The answer is checked, so any float weights that pass are represented exactly.
    """
    if weights.dtype != np.float32 or weights.size == 0 or not np.isfinite(weights).all():
        return None
    rows = np.moveaxis(weights, axis, 0).reshape(weights.shape[axis], -1).astype(np.float64)
    peak = np.abs(rows).max(axis=1)
    for level in (np.full_like(peak, peak.max()), peak):
        # each channel's largest weight is ±127 or -128 steps: try both, per channel
        scales = np.ones(len(rows), np.float32)
        found = np.zeros(len(rows), bool)
        for qmax in (127.0, 128.0):
            trial = np.where(level > 0, level / qmax, 1.0).astype(np.float32)
            q = rows / trial.astype(np.float64)[:, None]
            r = np.rint(q)
            fits = (np.abs(q - r).max(axis=1) <= _TOLERANCE) & (r.min(axis=1) >= -128)
            fits &= r.max(axis=1) <= 127
            scales = np.where(fits & ~found, trial, scales)
            found |= fits
        if found.all():
            r = np.rint(rows / scales.astype(np.float64)[:, None])
            back = np.moveaxis(r.reshape(np.moveaxis(weights, axis, 0).shape), 0, axis)
            return back.astype(np.int8), scales
    return None
