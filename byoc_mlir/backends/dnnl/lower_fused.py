"""Lowerings of reductions, with the softmax and layer-norm chains they start
recognised as one oneDNN primitive each, and of data movement (concat, transpose,
reshapes).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from iree.compiler import ir

from byoc_mlir import _compat
from byoc_mlir.backends.dnnl import lower_quant
from byoc_mlir.backends.dnnl.program import (
    COLLAPSE,
    EXPAND,
    Program,
    Step,
    c_dims,
    c_float,
    identity,
    map_results,
)
from byoc_mlir.codegen.backend import KindKey, classify
from byoc_mlir.codegen.checks import ins_outs
from byoc_mlir.codegen.recognisers import (
    BIAS_ADD,
    BROADCAST,
    BROADCAST_DIV,
    BROADCAST_MUL,
    BROADCAST_SUB,
    EXP,
    MUL,
    REDUCE_SUM,
    RSQRT,
    SCALE,
    SHIFT,
    SUB,
    reduction,
    scale_factor,
    shift_amount,
)


def _single_user(p: Program, v: ir.Value) -> ir.Operation | None:
    users = [u.owner for u in v.uses]
    if len(users) != 1:
        return None
    user = users[0]
    return user.operation if isinstance(user, ir.OpView) else user


def _through_reshapes(p: Program, v: ir.Value, hops: list[ir.Operation]) -> ir.Value:
    """``v`` followed through single-use reshapes (collected in ``hops``)."""
    while True:
        user = _single_user(p, v)
        if user is None or user.name not in (EXPAND, COLLAPSE):
            return v
        hops.append(user)
        v = user.results[0]


def _softmax(p: Program, op: ir.Operation) -> bool:
    """At softmax's max reduction: if the decomposed chain follows (x - max(x), exp,
    its sum, the division; reshapes between), emits one oneDNN softmax for it."""
    x = op.operands[0]
    shape = reduction(op)
    rank = len(p.shape(x))
    if shape is None or shape.dims != (rank - 1,):
        return False
    hops: list[ir.Operation] = []
    m = _through_reshapes(p, op.results[0], hops)
    sub = _single_user(p, m)
    if sub is None or classify(sub) is not BROADCAST_SUB or sub.operands[1] != m:
        return False
    if not p.same_tensor(sub.operands[0], x):
        return False
    exp = _single_user(p, sub.results[0])
    if exp is None or classify(exp) is not EXP:
        return False
    users = [u.owner.operation for u in exp.results[0].uses]
    total = next((u for u in users if classify(u) is REDUCE_SUM), None)
    div = next((u for u in users if classify(u) is BROADCAST_DIV), None)
    if len(users) != 2 or total is None or div is None:
        return False
    total_shape = reduction(total)
    if total_shape is None or total_shape.dims != (rank - 1,):
        return False
    s = _through_reshapes(p, total.results[0], hops)
    if list(div.operands[:2]) != [exp.results[0], s]:
        return False
    src = p.ref(x, None, op)
    if p.values[src].perm != identity(rank):
        return False
    dst = p.new(p.values[src].dims, p.values[src].perm)
    p.emit(Step("bd_softmax", dst, [str(src), str(rank - 1)], fusable=False))
    p.alias(div.results[0], dst)
    p.skip.update(_compat.op_key(o) for o in (sub, exp, total, div, *hops))
    return True


def _user_of_kind(p: Program, v: ir.Value, kind: KindKey) -> ir.Operation | None:
    user = _single_user(p, v)
    return user if user is not None and classify(user) is kind else None


def _mean_of(p: Program, op: ir.Operation, n: int, hops: list[ir.Operation]) -> ir.Operation | None:
    """``sum / n`` spread back to full shape: the BROADCAST after the SCALE after ``op``
    (a last-dim REDUCE_SUM), reshapes between; None if the chain differs."""
    scale = _user_of_kind(p, op.results[0], SCALE)
    if scale is None or not math.isclose(scale_factor(scale) * n, 1.0, rel_tol=1e-5):
        return None
    hops.append(scale)
    return _user_of_kind(p, _through_reshapes(p, scale.results[0], hops), BROADCAST)


def _layernorm(p: Program, op: ir.Operation) -> bool:
    """At LayerNorm's first sum: if the decomposed chain follows (mean, centre, the
    variance's square/sum/scale, + eps, rsqrt, normalise; then optionally a constant
    per-channel scale and shift), emits one oneDNN layer normalisation for it."""
    x = op.operands[0]
    rank = len(p.shape(x))
    n = p.shape(x)[-1]
    shape = reduction(op)
    if shape is None or shape.dims != (rank - 1,) or not isinstance(n, int):
        return False
    hops: list[ir.Operation] = []
    mean = _mean_of(p, op, n, hops)
    if mean is None:
        return False
    centre = _user_of_kind(p, mean.results[0], SUB)
    if centre is None or list(centre.operands[:2]) != [x, mean.results[0]]:
        return False
    d = centre.results[0]
    users = list({_compat.op_key(o): o for o in (u.owner.operation for u in d.uses)}.values())
    square = next((u for u in users if list(u.operands[:2]) == [d, d]), None)
    norm = next((u for u in users if u is not square), None)
    if len(users) != 2 or square is None or classify(square) is not MUL:
        return False
    total = _user_of_kind(p, square.results[0], REDUCE_SUM)
    if total is None or reduction(total) != shape:
        return False
    scale = _user_of_kind(p, total.results[0], SCALE)
    if scale is None or not math.isclose(scale_factor(scale) * n, 1.0, rel_tol=1e-5):
        return False
    shift = _user_of_kind(p, scale.results[0], SHIFT)
    rsqrt = _user_of_kind(p, shift.results[0], RSQRT) if shift is not None else None
    if shift is None or rsqrt is None or shift_amount(shift) <= 0:
        return False
    eps = shift_amount(shift)
    hops += [scale, shift]
    spread = _user_of_kind(p, _through_reshapes(p, rsqrt.results[0], hops), BROADCAST)
    if spread is None or norm is None or classify(norm) is not MUL:
        return False
    if set(norm.operands[:2]) != {d, spread.results[0]}:
        return False
    src = p.ref(x, None, op)
    if p.values[src].perm != identity(rank):
        return False
    chain = [op, mean, centre, square, total, rsqrt, spread, norm, *hops]
    out = norm.results[0]
    vectors = {}
    for kind, key in ((BROADCAST_MUL, "scale"), (BIAS_ADD, "shift")):
        user = _user_of_kind(p, out, kind)
        vector = p.region.constants.get(user.operands[1]) if user is not None else None
        if user is None or vector is None or vector.shape != (n,):
            break
        if user.operands[0] != out or map_results(user)[1] != [rank - 1]:
            break
        vectors[key] = p.const(np.ascontiguousarray(vector), (0,))
        chain.append(user)
        out = user.results[0]
    dst = p.new(p.values[src].dims, p.values[src].perm)
    args = [str(src), c_float(eps)]
    args += [str(vectors.get("scale", -1)), str(vectors.get("shift", -1))]
    p.emit(Step("bd_layernorm", dst, args, fusable=False))
    p.alias(out, dst)
    p.skip.update(_compat.op_key(o) for o in chain if o is not op)
    return True


def reduce(p: Program, op: ir.Operation, alg: str, neutral: Callable[[float], bool]) -> None:
    shape = reduction(op)
    assert shape is not None
    if alg == "dnnl_reduction_max" and _softmax(p, op):
        return
    if alg == "dnnl_reduction_sum" and _layernorm(p, op):
        return
    (x,) = ins_outs(op)[0]
    init = ins_outs(op)[1][0]
    if alg == "dnnl_reduction_max" and p.fills.get(init) == -math.inf:
        # oneDNN starts a max from the lowest finite float: a row of -inf (a fully
        # masked attention row) gives -3.4e38 where MLIR gives -inf.
        raise p.error(f"{op.name} max reduction from -inf (oneDNN's starts finite)", op)
    combine = None
    if not neutral(p.fills.get(init, math.nan)):
        if init in p.fills:
            raise p.error(f"{op.name} reduction from a non-neutral fill", op)
        # an init computed elsewhere: reduce, then combine with it (exact)
        combine = "dnnl_binary_add" if alg == "dnnl_reduction_sum" else "dnnl_binary_max"
    src = p.ref(x, None, op)
    full = p.values[src].dims
    dims = [1 if d in shape.dims else n for d, n in enumerate(full)]
    vid = p.new(dims, identity(len(dims)))
    p.emit(Step("bd_reduce", vid, [str(src), alg, c_dims(dims)], fusable=False))
    out = p.shape(op.results[0])
    if tuple(out) != tuple(dims):  # the output drops the reduced dims: a view
        view = p.new(out, identity(len(out)))
        p.values[vid].owned = False
        p.emit(Step("bd_reshape", view, [str(vid), str(len(out)), c_dims(out)], fusable=False))
        vid = view
    if combine is not None:
        acc = p.ref(init, None, op)
        total = p.new(p.values[acc].dims, p.values[acc].perm)
        p.emit(Step("bd_binary", total, [str(acc), str(vid), combine], posts=[]))
        vid = total
    p.alias(op.results[0], vid)


def concat(p: Program, op: ir.Operation) -> None:
    dim = ir.IntegerAttr(op.attributes["dim"]).value
    quantized = lower_quant.int8_concat(p, op)  # dequantized tensors, quantized after
    srcs = [p.ref(v, None, op) for v in op.operands] if quantized is None else quantized[0]
    perm = p.values[srcs[0]].perm
    if any(p.values[s].perm != perm for s in srcs):
        raise p.error("a concat of tensors in different layouts", op)
    shape = p.shape(op.results[0])
    dst = p.new([shape[k] for k in perm], perm)
    ids = ", ".join(str(s) for s in srcs)
    args = [str(list(perm).index(dim)), str(len(srcs)), f"(const int[]){{{ids}}}"]
    p.emit(Step("bd_concat", dst, args, fusable=False))
    if quantized is None:
        p.alias(op.results[0], dst)
    else:  # the integers, already in the quantization of the quantize after it
        p.values[dst].dt = p.values[srcs[0]].dt
        p.dequant[op.results[0]] = (dst, quantized[1])


def transpose(p: Program, op: ir.Operation) -> None:
    perm = [int(x) for x in ir.DenseI64ArrayAttr(op.attributes["permutation"])]
    src = p.ref(op.operands[0], None, op)  # (input, init): no operand segments
    if p.values[src].perm != identity(len(perm)):
        raise p.error("a transpose of an NHWC tensor", op)
    dims = p.shape(op.results[0])
    dst = p.new(dims, identity(len(dims)))
    args = [str(src), f"(const int[]){{{', '.join(str(k) for k in perm)}}}"]
    p.alias(op.results[0], p.emit(Step("bd_transpose", dst, args, fusable=False)))


def reshape(p: Program, op: ir.Operation) -> None:
    x = op.operands[0]
    view = p.dequant.get(x)  # a dequantized tensor: reshape the integers, still a view
    src = p.ref(x, None, op) if view is None else p.int8(view[0], None, op)
    p.values[src].owned = False
    if p.values[src].perm != identity(len(p.values[src].perm)):
        raise p.error("a reshape of an NHWC tensor", op)
    dims = p.shape(op.results[0])
    dst = p.new(dims, identity(len(dims)))
    p.values[dst].dt = p.values[src].dt
    args = [str(src), str(len(dims)), c_dims(dims)]
    p.emit(Step("bd_reshape", dst, args, fusable=False))
    if view is None:
        p.alias(op.results[0], dst)
    else:
        p.dequant[op.results[0]] = (dst, view[1])
