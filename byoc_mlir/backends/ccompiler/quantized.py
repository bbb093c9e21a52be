"""The ``ccompiler`` backend's reference int8 kernels: one per quantized unit.

A unit is ``dequantize -> [pad | collapse] -> conv2d (NCHW/FCHW) or matmul -> [bias] ->
quantize`` (`byoc_mlir.codegen.backend.quantized_units`). Its kernel reads the 8-bit
input as it is, multiplies by the int8 weights (recovered from the folded f32 weights,
`int8_weights`) and accumulates in 32-bit integers, then requantizes as ONNX specifies::

    acc = sum((x - x_zero_point) * w)                     int32
    y   = acc * (x_scale * w_scale[channel]) + bias        f32
    q   = saturate(round_half_to_even(y / y_scale) + y_zero_point)

Padding is the input's zero point (a real 0). The result differs from the dequantized
float computation only in float rounding: at most one quantization step, on ties.
"""

from __future__ import annotations

import numpy as np
from iree.compiler import ir
from iree.compiler.dialects import tensor

from byoc_mlir.backends.ccompiler.emit import indexing_maps, map_dims
from byoc_mlir.backends.ccompiler.writer import CodegenError, KernelWriter, Operand, c_float
from byoc_mlir.codegen.backend import CheckContext, Reject
from byoc_mlir.codegen.checks import eight_bit_quantization
from byoc_mlir.codegen.hook import RegionOp, TensorSpec, constant_array
from byoc_mlir.codegen.recognisers import (
    BIAS_ADD,
    DEQUANTIZE,
    QUANTIZE,
    QuantParams,
    constant_value,
    int8_weights,
    quant_params,
)
from byoc_mlir.linalg_ops import linalg

CONV = linalg.Conv2DNchwFchwOp.OPERATION_NAME
MATMUL = linalg.MatmulOp.OPERATION_NAME
PAD = tensor.PadOp.OPERATION_NAME
_PLAIN, _TRANSPOSED_B = [[0, 2], [2, 1], [0, 1]], [[0, 2], [1, 2], [0, 1]]

_HELPER = """\
/* Round half to even (what the FPU does by default): adding and subtracting 2^23 leaves
 * the nearest integer of |x| < 2^23; larger floats are integers already. */
static inline float round_even_f32(float x) {
  const float big = 8388608.0f;
  const float a = x < 0 ? -x : x;
  if (!(a < big)) return x;
  const float r = (a + big) - big;
  return x < 0 ? -r : r;
}"""


def _weights(op: ir.Operation) -> np.ndarray | None:
    owner = op.operands[1].owner
    return constant_array(owner.operation) if isinstance(owner, ir.OpView) else None


def int8_unit(ctx: CheckContext) -> Reject | None:
    """A quantized unit ccompiler emits: 8-bit ends, constant int8 weights (symmetric,
    per channel), a pad of zeros, a plain or B-transposed matmul."""
    verdict = eight_bit_quantization(ctx)
    if verdict is not None:
        return verdict
    anchor = ctx.matches.get("conv2d") or ctx.matches.get("matmul")
    assert anchor is not None
    weights = _weights(anchor)
    if weights is None or weights.dtype != np.float32:
        return Reject("weights computed at run time (int8 kernels take constant weights)")
    axis = -1 if anchor.name == MATMUL and _layout(anchor) == "plain" else 0  # out channel
    if int8_weights(np.moveaxis(weights, axis, 0), 0) is None:
        return Reject("float weights that are not int8 values times per-channel scales")
    pad = ctx.matches.get("pad")
    if pad is not None:
        yielded = pad.regions[0].blocks[0].operations[0].operation
        if not yielded.operands or constant_value(yielded.operands[0]) != 0.0:
            return Reject("a pad of something else than zero")
    if anchor.name == MATMUL and _layout(anchor) is None:
        return Reject("matmul with broadcast operands")
    return None


def _layout(op: ir.Operation) -> str | None:
    if "indexing_maps" not in op.attributes:
        return "plain"
    maps = [map_dims(m) for m in indexing_maps(op)]
    return {str(_PLAIN): "plain", str(_TRANSPOSED_B): "transposed_b"}.get(str(maps))


def _q_helper(w: KernelWriter, params: QuantParams) -> str:
    """The name of a helper quantizing one float to ``params`` (added to the file)."""
    w.cfile.define("round_even_f32", _HELPER)
    lo, hi = params.saturation or (0, 255)
    name = f"quantize_{params.dtype}_{lo}_{hi}".replace("-", "m")
    ctype = "signed char" if params.signed else "unsigned char"
    return w.cfile.define(
        name,
        f"""\
/* QuantizeLinear to {params.dtype}: saturate(round_half_to_even(y / scale) + zero_point),
 * saturating to [{lo}, {hi}]. */
static inline signed char {name}(float y, float scale, float zero_point) {{
  float r = round_even_f32(y / scale) + zero_point;
  r = r < {lo}.0f ? {lo}.0f : (r > {hi}.0f ? {hi}.0f : r);
  return (signed char)({ctype})(int)r;
}}""",
    )


def _read(x: Operand, params: QuantParams, *index: str) -> str:
    """An 8-bit input element as an int, as its quantization reads it (u8 or s8)."""
    cast = "(int)" if params.signed else "(int)(unsigned char)"
    return f"({cast}{x.at(*index)} - {params.zero_point})"


def emit_unit(w: KernelWriter, unit: list[RegionOp]) -> int:
    """Writes the int8 kernel of one quantized unit; returns the extent it splits."""
    ops = {
        "dq": next(r.op for r in unit if r.kind is DEQUANTIZE),
        "q": next(r.op for r in unit if r.kind is QUANTIZE),
    }
    anchor = next(r.op for r in unit if r.kind in (CONV, MATMUL))
    pad = next((r.op for r in unit if r.kind == PAD), None)
    bias_op = next((r.op for r in unit if r.kind is BIAS_ADD), None)
    src, dst = quant_params(ops["dq"]), quant_params(ops["q"])
    weights = _weights(anchor)
    if weights is None:
        raise CodegenError(f"{anchor.location}: int8 kernels take constant weights")
    if anchor.name == MATMUL:  # weights as N x K rows, whatever the layout
        weights = weights if _layout(anchor) == "transposed_b" else weights.T
    channels = int(weights.shape[0])
    recovered = int8_weights(np.ascontiguousarray(weights), 0)
    if recovered is None:
        raise CodegenError(f"{anchor.location}: the weights are not int8 per channel")
    wq, w_scales = recovered
    bias = np.zeros(channels, np.float32)
    if bias_op is not None:
        vector = next((constant_array(v.owner.operation) for v in bias_op.operands[:2]
                       if isinstance(v.owner, ir.OpView) and v.owner.operation != anchor
                       and constant_array(v.owner.operation) is not None), None)  # fmt: skip
        if vector is None or vector.size != channels:
            raise CodegenError(f"{bias_op.location}: the bias is not a constant vector")
        bias = vector.reshape(-1).astype(np.float32)
    multiplier = (np.float32(src.scale) * w_scales).astype(np.float32)
    x = w.operand(ops["dq"].operands[0], "input", ("i8",), flat=anchor.name == MATMUL)
    out_spec = TensorSpec.of(ops["q"].results[0].type)
    out = w.output(out_spec, ("i8",))
    wt, mt, bt = w.table(wq, "weights"), w.table(multiplier, "multiplier"), w.table(bias, "bias")
    quantize = _q_helper(w, dst)
    w.comment(
        f"int8 {'convolution' if anchor.name == CONV else 'matmul'}: "
        f"{src.dtype} input (zero point {src.zero_point}), s8 weights, int32 sums, "
        f"requantized to {dst.dtype} (scale {dst.scale:.6g}, zero point {dst.zero_point})."
    )
    if anchor.name == CONV:
        return _conv(w, anchor, pad, x, src, (wt, mt, bt), out, out_spec, quantize, dst)
    return _matmul(w, anchor, x, src, (wt, mt, bt), out, out_spec, quantize, dst)


def _finish(w: KernelWriter, target: str, channel: str, tables: tuple[Operand, ...],
            quantize: str, dst: QuantParams) -> None:  # fmt: skip
    _, mt, bt = tables
    w.line(f"const float y = (float)acc * {mt.at(channel)} + {bt.at(channel)};")
    w.line(f"{target} = {quantize}(y, {c_float(dst.scale)}, {c_float(dst.zero_point)});")


def _conv(w: KernelWriter, op: ir.Operation, pad: ir.Operation | None, x: Operand,
          src: QuantParams, tables: tuple[Operand, ...], out: Operand, spec: TensorSpec,
          quantize: str, dst: QuantParams) -> int:  # fmt: skip
    n, nf, oh, ow = spec.static_shape
    _, c, h, wd = x.spec.static_shape
    kh, kw = tables[0].spec.static_shape[2:]
    strides = _pair(op, "strides")
    dilations = _pair(op, "dilations")
    top = left = 0
    if pad is not None:
        low = [int(v) for v in ir.DenseI64ArrayAttr(pad.attributes["static_low"])]
        high = [int(v) for v in ir.DenseI64ArrayAttr(pad.attributes["static_high"])]
        if low[:2] != [0, 0] or high[:2] != [0, 0]:
            raise CodegenError(f"{pad.location}: int8 kernels pad the spatial dims only")
        top, left = low[2], low[3]
    wt = tables[0]
    w.chunk(n * nf, "(image, filter) pairs")
    with w.loop("p", "end", "begin"):
        w.line(f"const size_t n = p / {nf}, f = p % {nf};")
        with w.loop("oh", oh), w.loop("ow", ow):
            w.line("int acc = 0;")
            with w.loop("c", c), w.loop("kh", kh), w.loop("kw", kw):
                w.line(f"const long ih = (long)(oh * {strides[0]} + kh * {dilations[0]}) - {top};")
                w.line(f"const long iw = (long)(ow * {strides[1]} + kw * {dilations[1]}) - {left};")
                w.comment("outside the input: the zero point, which adds nothing")
                with w.block(f"if (ih >= 0 && ih < {h} && iw >= 0 && iw < {wd})"):
                    value = _read(x, src, "n", "c", "ih", "iw")
                    w.line(f"acc += {value} * (int){wt.at('f', 'c', 'kh', 'kw')};")
            _finish(w, out.at("n", "f", "oh", "ow"), "f", tables, quantize, dst)
    return n * nf


def _matmul(w: KernelWriter, op: ir.Operation, x: Operand, src: QuantParams,
            tables: tuple[Operand, ...], out: Operand, spec: TensorSpec, quantize: str,
            dst: QuantParams) -> int:  # fmt: skip
    m, nn = spec.static_shape
    k = tables[0].spec.static_shape[1]
    if int(np.prod(x.spec.static_shape)) != m * k:
        raise CodegenError(f"{op.location}: the input does not hold {m} rows of {k}")
    wt = tables[0]
    w.chunk(m, "rows")
    with w.loop("i", "end", "begin"), w.loop("j", nn):
        w.line("int acc = 0;")
        with w.loop("kk", k):
            value = _read(x, src, f"i * {k} + kk")
            w.line(f"acc += {value} * (int){wt.at('j', 'kk')};")
        _finish(w, out.at("i", "j"), "j", tables, quantize, dst)
    return m


def _pair(op: ir.Operation, name: str) -> tuple[int, int]:
    if name not in op.attributes:
        return 1, 1
    a, b = (int(v) for v in ir.DenseIntElementsAttr(op.attributes[name]))
    return a, b
