"""Lowerings of the compute ops: convolutions, pooling and matmuls (with their
fill and pad producers), each one oneDNN primitive with its accumulation as a post-op.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from iree.compiler import ir

from byoc_mlir.backends.dnnl import lower_quant
from byoc_mlir.backends.dnnl.program import (
    DEPTHWISE,
    LOWEST,
    MAXPOOL,
    NCHW,
    NHWC,
    NHWC_PERM,
    Post,
    Program,
    Quant,
    Step,
    c_dims,
    identity,
    matmul_layout,
    pair,
)
from byoc_mlir.codegen.checks import ins_outs
from byoc_mlir.codegen.recognisers import (
    constant_value,
)


def fill(p: Program, op: ir.Operation) -> None:
    value = constant_value(ins_outs(op)[0][0])
    if value is None:
        raise p.error("linalg.fill of a value computed at run time", op)
    p.fills[op.results[0]] = value


def pad(p: Program, op: ir.Operation) -> None:
    p.pads[op.results[0]] = op


def _init_is(p: Program, op: ir.Operation, init: ir.Value, ok: Callable[[float], bool]) -> None:
    value = p.fills.get(init)
    if value is None or not ok(value):
        raise p.error(f"{op.name} must start from a constant fill of its neutral value", op)


def _accumulate(p: Program, op: ir.Operation, init: ir.Value, perm: Sequence[int]) -> list[Post]:
    """The post-ops for a conv/matmul init: none for a zero fill, else a sum of it
    (an init computed elsewhere, e.g. a zero fill the host kept, is added)."""
    if p.fills.get(init) == 0.0:
        return []
    if init in p.fills:
        raise p.error(f"{op.name} accumulating into a non-zero fill", op)
    return [("BD_SUM", 0.0, 0.0, p.ref(init, perm, op))]


def conv(p: Program, op: ir.Operation) -> None:
    (x, w), (init,) = ins_outs(op)
    perm = NHWC_PERM if op.name == NHWC else identity(4)
    posts = _accumulate(p, op, init, perm)
    spatial = (1, 2) if op.name == NHWC else (2, 3)
    pad_l, pad_r = [0, 0], [0, 0]
    facts = p.pad_facts(x)
    if facts is not None and facts[3] == 0.0:
        source, low, high, _ = facts
        if all(low[i] == 0 and high[i] == 0 for i in range(4) if i not in spatial):
            x = source
            pad_l, pad_r = [low[i] for i in spatial], [high[i] for i in spatial]
    weights = p.region.constants.get(w)
    if weights is None and op.name == DEPTHWISE:
        raise p.error("depthwise convolution weights must be constants", op)
    quant = lower_quant.int8_conv(p, op, x, weights)
    if quant is not None:  # u8/s8 source, s8 weights: see lower_quant
        src, weights, params, scales = quant
        quantized = Quant(params, p.const(scales, (0,)))
    else:
        src, quantized = p.ref(x, perm, op), None
    if weights is None:  # weights at run time: reordered per call (see bd_weights)
        wid = p.ref(w, identity(4) if op.name == NCHW else (3, 2, 0, 1), op)
    elif op.name == NCHW:
        wid = p.const(weights, identity(4))
    elif op.name == NHWC:
        wid = p.const(weights, (3, 2, 0, 1))  # HWCF -> logical OIHW
    else:  # depthwise CHW -> grouped G, O/G=1, I/G=1, KH, KW
        c, kh, kw = weights.shape
        wid = p.const(weights, identity(3), dims=(c, 1, 1, kh, kw))
    out = op.results[0]
    dims = [p.shape(out)[k] for k in perm]
    dst = p.new(dims, perm)
    args = [
        str(src),
        str(wid),
        "1",
        c_dims(dims),
        c_dims(pair(op, "strides")),
        c_dims(pair(op, "dilations")),
        c_dims(pad_l),
        c_dims(pad_r),
    ]
    p.alias(out, p.emit(Step("bd_conv", dst, args, posts=posts, quant=quantized)))


def pool(p: Program, op: ir.Operation) -> None:
    (x, window), (init,) = ins_outs(op)
    is_max = op.name == MAXPOOL
    _init_is(p, op, init, (lambda v: v <= LOWEST) if is_max else (lambda v: v == 0.0))
    kernel = list(p.shape(window))
    pad_l, pad_r = [0, 0], [0, 0]
    facts = p.pad_facts(x)
    if facts is not None:
        source, low, high, value = facts
        neutral = value <= LOWEST if is_max else value == 0.0
        if neutral and low[:2] == [0, 0] and high[:2] == [0, 0]:
            x, pad_l, pad_r = source, low[2:], high[2:]
    quantized = lower_quant.int8_max_pool(p, op, x) if is_max else None
    src = p.ref(x, identity(4), op) if quantized is None else quantized
    dims = p.shape(op.results[0])
    dst = p.new(dims, identity(4))
    if quantized is not None:  # u8/s8 in and out, a view with x's quantization
        p.values[dst].dt = p.values[src].dt
        p.dequant[op.results[0]] = (dst, p.dequant[x][1])
    alg = "dnnl_pooling_max" if is_max else "dnnl_pooling_avg_include_padding"
    args = [
        str(src),
        alg,
        c_dims(dims),
        c_dims(kernel),
        c_dims(pair(op, "strides")),
        c_dims(pair(op, "dilations")),
        c_dims(pad_l),
        c_dims(pad_r),
    ]
    posts: list[Post] = [] if is_max else [("BD_LINEAR", float(math.prod(kernel)), 0.0, -1)]
    step = p.emit(Step("bd_pool", dst, args, posts=posts, fusable=quantized is None))
    if quantized is None:
        p.alias(op.results[0], step)


def matmul(p: Program, op: ir.Operation) -> None:
    layout = matmul_layout(op)
    if layout is None:
        raise p.error(f"{op.name} with indexing maps oneDNN does not run", op)
    (a, b), (init,) = ins_outs(op)
    posts = _accumulate(p, op, init, identity(len(p.shape(init))))
    weights = p.region.constants.get(b)
    if weights is not None and layout == "transposed_b":  # prepacked: transpose it now
        weights = np.ascontiguousarray(np.swapaxes(weights, -1, -2))
    quant = lower_quant.int8_matmul(p, op, a, weights)
    quantized = None
    if quant is not None:  # u8/s8 left operand, s8 weights: see lower_quant
        aid, weights, params, scales = quant
        quantized = Quant(params, p.const(scales, (0,)))
    else:
        aid = p.ref(a, None, op)
    if weights is not None:
        bid = p.const(weights, identity(weights.ndim))
    elif layout == "transposed_b":
        raise p.error(f"{op.name} reading a computed right operand transposed", op)
    else:  # a view broadcasting batches only is read as is (oneDNN broadcasts them)
        bid = p.ref_view(b, None, op)
        full = p.values[bid].full
        if full is not None and p.values[bid].dims[-2:] != full[-2:]:
            bid = p.ref(b, None, op)
    dims = p.shape(op.results[0])
    dst = p.new(dims, identity(len(dims)))
    args = [str(aid), str(bid), "1" if weights is not None else "0", c_dims(dims)]
    p.alias(op.results[0], p.emit(Step("bd_matmul", dst, args, posts=posts, quant=quantized)))
