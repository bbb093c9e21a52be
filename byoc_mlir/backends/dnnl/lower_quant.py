"""Lowerings of quantized tensors: ``DEQUANTIZE``, ``QUANTIZE`` and int8 convolutions.

A dequantize emits nothing: its result is a *view* of the u8/s8 tensor with its scale and
zero point (`Program.dequant`). An int8 convolution reads the integer tensor itself; any
other reader gets an f32 copy (one reorder, made by `Program.ref_view`). A quantize then
folds into the int8 convolution producing its input (the primitive requantizes its
destination), costs nothing when its input is a view with the same quantization, or is
one reorder (f32 -> u8/s8, or int8 -> int8 with new parameters).

A convolution or matmul runs in int8 when its input is a dequantized view and its weights
are constants whose int8 values can be recovered exactly (`int8_weights`): the importers
fold the weights' dequantize into f32 constants, ``q * scale`` per output channel.
"""

from __future__ import annotations

import numpy as np
from iree.compiler import ir

from byoc_mlir.backends.dnnl.program import (
    BATCH_MATMUL,
    COLLAPSE,
    CONCAT,
    DEPTHWISE,
    DNNL_TYPES,
    EXPAND,
    MATMUL,
    MAXPOOL,
    NHWC,
    NHWC_PERM,
    PAD,
    Program,
    Step,
    c_q,
    identity,
    int_type,
)
from byoc_mlir.backends.dnnl.program import (
    NCHW as CONV_NCHW,
)
from byoc_mlir.backends.dnnl.program import (
    NHWC as CONV_NHWC,
)
from byoc_mlir.codegen.backend import classify
from byoc_mlir.codegen.checks import ins_outs
from byoc_mlir.codegen.recognisers import (
    ADD,
    CLAMP,
    DEQUANTIZE,
    MAX_CONST,
    MIN_CONST,
    QUANTIZE,
    RELU,
    QuantParams,
    int8_weights,
    quant_params,
)
from byoc_mlir.errors import pretty_location


def _recover(
    p: Program, op: ir.Operation, params: QuantParams, weights: np.ndarray | None, axis: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """``int8_weights`` for an op reading a dequantized tensor; a note says why not."""
    recovered = None
    if weights is None:
        why = "its weights are computed at run time"
    elif params.bits != 8:
        why = f"its input is {params.dtype}"
    else:
        recovered = int8_weights(np.ascontiguousarray(weights), axis)
        why = "its weights are not int8 values times per-channel scales"
    if recovered is None:
        where = pretty_location(str(op.location))
        p.notes.append(f"{where}: {op.name} runs in f32 on the dequantized input: {why}")
    return recovered


def summary(p: Program) -> list[str]:
    """The notes of a region: what ran in int8 (if anything was quantized), then why
    some op did not."""
    kinds = [s.fn for s in p.steps if s.quant is not None]
    reorders = sum(1 for s in p.steps if s.fn == "bd_requant")
    if not kinds and not reorders:
        return p.notes
    head = (
        f"int8: {kinds.count('bd_conv')} convolution(s), {kinds.count('bd_matmul')} "
        f"matmul(s); {reorders} quantize/dequantize reorder(s)"
    )
    return [head, *p.notes]


def same_quantization(a: QuantParams, b: QuantParams) -> bool:
    return (a.scale, a.zero_point, a.signed, a.bits) == (b.scale, b.zero_point, b.signed, b.bits)


def _int8_source(p: Program, v: ir.Value, perm: tuple[int, ...], at: ir.Operation) -> int:
    """The integer tensor a dequantized view reads, in ``perm``."""
    source, _ = p.dequant[v]
    return p.int8(source, perm, at)


def dequantize(p: Program, op: ir.Operation) -> None:
    ((x,), _) = ins_outs(op)
    params = quant_params(op)
    rounded = p.rounded.get(x)
    if rounded is not None and same_quantization(rounded[1], params):
        p.alias(op.results[0], rounded[0])  # the float result, rounded by its post-ops
        return
    if x in p.args:  # MLIR's i8 is signless: the dequantize says u8 or s8
        known = p.int_types.setdefault(x, int_type(params))
        if known != int_type(params):
            raise p.error(f"an input read as both {known} and {int_type(params)}", op)
    p.dequant[op.results[0]] = (x, params)


def quantize(p: Program, op: ir.Operation) -> None:
    ((x,), _) = ins_outs(op)
    params = quant_params(op)
    out, dt = op.results[0], int_type(params)
    view = p.dequant.get(x)
    if view is not None and same_quantization(view[1], params):
        p.alias(out, p.int8(view[0], None, op))  # dequantize -> quantize: the same tensor
        return
    step = p.fusable(x) if view is None else None
    summed = step is not None and any(post[0].startswith("BD_QSUM") for post in step.posts or [])
    if (
        view is None
        and step is not None
        and step.posts is not None
        and not summed
        and _only_f32_readers(out)
    ):
        # quantize -> dequantize between float ops: the rounding as post-ops, no int8
        # tensor: (clamp(round(y / s) + zp, lo, hi) - zp) * s
        lo, hi = params.saturation or (0, 0)
        zp, s = params.zero_point, params.scale
        step.posts += [
            ("BD_LINEAR", 1.0 / s, 0.0, -1), ("BD_ROUND", 0.0, 0.0, -1),
            ("BD_CLIP", float(lo - zp), float(hi - zp), -1), ("BD_LINEAR", s, 0.0, -1),
        ]  # fmt: skip
        p.rounded[out] = (step.dst, params)
        return
    if (
        step is not None
        and step.quant is not None
        and step.quant.dst is None
        and not any(post[0] == "BD_SUM" for post in step.posts or [])
    ):  # requantized by the int8 convolution itself
        step.quant.dst = params
        p.values[step.dst].dt = dt
        p.alias(out, step.dst)
        return
    if view is not None:  # int8 -> int8 with other parameters
        src = p.int8(view[0], None, op)
        src_q = f"&(const bd_q){c_q(view[1])}"
    else:
        src, src_q = p.ref(x, None, op), "NULL"
    vid = p.new(p.values[src].dims, p.values[src].perm)
    p.values[vid].dt = dt
    args = [str(src), DNNL_TYPES[dt], src_q, f"&(const bd_q){c_q(params)}"]
    p.alias(out, p.emit(Step("bd_requant", vid, args, fusable=False)))


def int8_conv(
    p: Program, op: ir.Operation, x: ir.Value, weights: np.ndarray | None
) -> tuple[int, np.ndarray, QuantParams, np.ndarray] | None:
    """For a convolution reading ``x`` with constant ``weights``: ``(source, int8
    weights, source quantization, weight scales)`` when it can run in int8, else None."""
    view = p.dequant.get(x)
    if view is None:
        return None
    axis = 3 if op.name == NHWC else 0  # HWCF, else FCHW / depthwise CHW
    recovered = _recover(p, op, view[1], weights, axis)
    if recovered is None:
        return None
    perm = NHWC_PERM if op.name == NHWC else identity(4)
    q, scales = recovered
    return _int8_source(p, x, perm, op), q, view[1], scales


def _quantize_after(
    op: ir.Operation, through: tuple[object, ...] = (RELU, CLAMP, MAX_CONST, MIN_CONST)
) -> ir.Operation | None:
    """The quantize ``op``'s result reaches through a chain of single readers of the
    ``through`` kinds (ReLUs and clamps), or None."""
    v = op.results[0]
    while True:
        uses = list(v.uses)
        if len(uses) != 1:
            return None
        user = uses[0].owner.operation
        kind = classify(user)
        if kind is QUANTIZE:
            return user
        if kind not in through:
            return None
        v = user.results[0]


def residual_add(p: Program, op: ir.Operation, ins: list[ir.Value]) -> bool:
    """``DQ(conv) + DQ(b)``, quantized after (ResNet's residual add): the int8 convolution
    adds ``b`` (still u8/s8) as a sum post-op and requantizes once, instead of dequantizing
    both, adding and quantizing. Skips the rounding of the convolution's own quantize
    (half a step of its scale: more precise than the model, not less). False if the add
    is not of that form."""
    views = [p.dequant.get(v) for v in ins]
    q = _quantize_after(op)
    # the sum lands in the convolution's 8-bit destination: the quantize after it must
    # make an integer tensor (not be folded into float post-ops, see quantize)
    if q is None or views[0] is None or views[1] is None or _only_f32_readers(q.results[0]):
        return False
    target = quant_params(q)
    for mine, other in ((0, 1), (1, 0)):
        (source, params), (summand, summand_params) = views[mine], views[other]  # type: ignore[misc]
        step = p.fusable(source)
        if step is None or step.quant is None or step.posts or step.quant.dst is None:
            continue
        if not same_quantization(step.quant.dst, params):
            continue
        if p.uses.get(ins[mine], 0) != 1:
            continue
        b = p.int8(summand, None, op)
        vb, vd = p.values[b], p.values[step.dst]
        if vb.dt != int_type(target) or vb.dims != vd.dims or vb.defined >= step.index:
            continue
        step.quant.dst = None  # the quantize after the add sets it
        vd.dt = "f32"
        # in place when nothing reads the summand after the convolution
        dead = vb.owned and all(k < step.position for k in _reads(p, summand))
        kind = "BD_QSUM_IN_PLACE" if dead else "BD_QSUM"
        step.posts = [(kind, summand_params.scale, float(summand_params.zero_point), b)]
        p.alias(op.results[0], step.dst)
        return True
    return False


_INT8_READERS = (CONV_NCHW, CONV_NHWC, DEPTHWISE, MATMUL, BATCH_MATMUL, MAXPOOL, CONCAT)
_THROUGH = (PAD, COLLAPSE, EXPAND)


def _only_f32_readers(q: ir.Value) -> bool:
    """Whether a quantize's result is only dequantized (with its parameters) and then
    read by ops that compute in f32 anyway: no reader could use the integers."""
    params = None
    for use in q.uses:
        dq = use.owner.operation
        if classify(dq) is not DEQUANTIZE:
            return False
        params = params or quant_params(dq)
        if not same_quantization(params, quant_params(dq)):
            return False
        readers = [u.owner.operation for u in dq.results[0].uses]
        while readers:
            reader = readers.pop()
            name = reader.name
            if name in _INT8_READERS:
                return False
            if classify(reader) is ADD and _quantize_after(reader) is not None:
                return False  # a residual add: the int8 sum post-op wants the integers
            if name in _THROUGH:
                readers += [u.owner.operation for u in reader.results[0].uses]
            elif name in ("func.return", "util.return"):
                return False
    return params is not None


def _reads(p: Program, v: ir.Value | int) -> list[int]:
    """Positions of the ops reading ``v``'s data through its dequantizes, but the current
    op; any other reader of ``v`` (the region's return), or a ``v`` with no IR value (its
    readers unknown), counts as reading it last."""
    if isinstance(v, int):
        return [len(p.region.ops)]
    positions = []
    for use in v.uses:
        reader = use.owner.operation
        if classify(reader) is not DEQUANTIZE:
            return [len(p.region.ops)]
        positions += [k for k in p.read_at.get(reader.results[0], []) if k != p.position]
    return positions


def int8_max_pool(p: Program, op: ir.Operation, x: ir.Value) -> int | None:
    """A max pool of a dequantized view runs on the u8/s8 tensor (dequantizing is
    monotonic): its result is a view with the same quantization. Returns the source's
    value id, or None when ``x`` is not a view."""
    view = p.dequant.get(x)
    if view is None:
        return None
    src = p.int8(view[0], identity(4), op)
    return src if p.values[src].perm == identity(4) else None


def int8_matmul(
    p: Program, op: ir.Operation, a: ir.Value, weights: np.ndarray | None
) -> tuple[int, np.ndarray, QuantParams, np.ndarray] | None:
    """For a matmul of ``a`` by constant ``weights`` (K x N, or B x K x N, already
    untransposed): ``(left operand, int8 weights, its quantization, per-column scales)``
    when it can run in int8, else None. One set of column scales for all batches."""
    view = p.dequant.get(a)
    if view is None:
        return None
    columns = None if weights is None else np.moveaxis(weights, -1, 0)
    recovered = _recover(p, op, view[1], columns, 0)
    if recovered is None or weights is None:
        return None
    q, scales = recovered
    q = np.moveaxis(q.reshape(weights.shape[-1], *weights.shape[:-1]), 0, -1)
    return p.int8(view[0], None, op), np.ascontiguousarray(q), view[1], scales


def int8_concat(p: Program, op: ir.Operation) -> tuple[list[int], QuantParams] | None:
    """A concat of dequantized tensors whose result is quantized (Inception's modules):
    each input requantized to the result's quantization (nothing when it has it
    already), concatenated as integers; the result is a view in that quantization, so
    the quantize after it costs nothing. Exact: the same roundings as dequantizing,
    concatenating and quantizing. ``(inputs, quantization)``, or None."""
    q = _quantize_after(op, through=())
    views = [p.dequant.get(v) for v in op.operands]
    if q is None or any(v is None for v in views):
        return None
    target = quant_params(q)
    inputs = [(p.int8(source, None, op), params) for source, params in views]  # type: ignore[misc]
    if target.bits != 8 or any(
        p.values[s].perm != identity(len(p.values[s].perm)) for s, _ in inputs
    ):
        return None
    dt, srcs = int_type(target), []
    for src, params in inputs:
        if not same_quantization(params, target):
            vid = p.new(p.values[src].dims, p.values[src].perm)
            p.values[vid].dt = dt
            args = [str(src), DNNL_TYPES[dt], f"&(const bd_q){c_q(params)}"]
            args.append(f"&(const bd_q){c_q(target)}")
            src = p.emit(Step("bd_requant", vid, args, fusable=False))
        srcs.append(src)
    return srcs, target
