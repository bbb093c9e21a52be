"""Lowerings of elementwise ops: binaries with broadcasts, eltwise activations, and
the folding of both into the producing primitive as post-ops.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from iree.compiler import ir

from byoc_mlir.backends.dnnl import lower_quant
from byoc_mlir.backends.dnnl.program import (
    Post,
    Program,
    Step,
    Value,
    c_dims,
    c_float,
    identity,
    map_results,
)
from byoc_mlir.codegen.checks import ins_outs
from byoc_mlir.codegen.recognisers import (
    GenericView,
)
from byoc_mlir.codegen.symbolic import Dim


def _broadcast_operand(p: Program, v: ir.Value, results: list[int | None], full: Value) -> int:
    """``v`` read through a projected map ``results`` as a tensor of ``full``'s logical
    rank (dims of 1 where it broadcasts)."""
    if any(r is None for r in results):
        raise p.error("a broadcast read through constant map results")
    positions = [full.perm.index(r) for r in results if r is not None]
    if positions != sorted(positions):
        raise p.error("a broadcast operand read transposed")
    dims: list[Dim] = [1] * len(full.dims)
    for k in positions:
        dims[k] = full.dims[k]
    array = p.region.constants.get(v)
    if array is not None:
        return p.const(array, identity(array.ndim), dims=dims)
    src = p.ref(v)
    p.values[src].owned = False
    vid = p.new(dims, identity(len(dims)))
    p.emit(Step("bd_reshape", vid, [str(src), str(len(dims)), c_dims(dims)], fusable=False))
    return vid


def binary(p: Program, op: ir.Operation, alg: str, commutative: bool) -> None:
    view = GenericView.of(op)
    assert view is not None
    ins, _ = ins_outs(op)
    order = [view.args.index(v) for v in view.body[0].operands]
    ins = [ins[i] for i in order]
    maps = [map_results(op)[i] for i in order]
    out_rank = len(p.shape(op.results[0]))
    full = [len(m) == out_rank and m == list(range(out_rank)) for m in maps]
    if not full[0]:
        if not (commutative and full[1]):
            raise p.error("a broadcast first operand of a non-commutative op", op)
        ins, maps, full = ins[::-1], maps[::-1], full[::-1]
    if alg == "dnnl_binary_add" and all(full) and lower_quant.residual_add(p, op, ins):
        return
    view0 = p.ids.get(ins[0])
    if full[1] and commutative and view0 is not None and p.values[view0].full is not None:
        ins, maps = ins[::-1], maps[::-1]  # the broadcast view goes second
    a = p.ref(ins[0], None, op)
    va = p.values[a]
    if alg == "dnnl_binary_add" and _fold_add(p, op, ins, maps, full):
        return
    if full[1]:
        b = p.ref_view(ins[1], va.perm, op)
        if p.values[b].full is not None and va.perm != identity(len(va.perm)):
            b = p.ref(ins[1], va.perm, op)
    else:
        b = _broadcast_operand(p, ins[1], maps[1], va)
    if _fold_binary(p, ins[0], op, alg, b):
        return
    if alg == "dnnl_binary_div" and p.values[b].dims != va.dims:
        # oneDNN (2.6, where this was found) has no JIT kernel for a broadcast divide
        # (softmax's row sums): multiply by the reciprocal of the small operand instead
        inverse = p.new(p.values[b].dims, p.values[b].perm)
        args = [str(b), "dnnl_eltwise_pow", "1.0f", "-1.0f"]
        b = p.emit(Step("bd_eltwise", inverse, args, fusable=False))
        alg = "dnnl_binary_mul"
    vb = p.values[b]
    if len(va.dims) > 3 and vb.dims == va.dims[:-1] + (1,) and va.perm == vb.perm:
        # A per-row broadcast of rank > 3 (softmax over heads) has no JIT kernel in
        # oneDNN 2.6, rank 3 has: run it on rank-3 views of both operands (kept for 3.2).
        rows = math.prod(va.dims[:-2])
        a = _view(p, a, (rows, *va.dims[-2:]))
        b = _view(p, b, (rows, va.dims[-2], 1))
        flat = p.new(p.values[a].dims, p.values[a].perm)
        p.emit(Step("bd_binary", flat, [str(a), str(b), alg], posts=[], fusable=False))
        p.alias(op.results[0], _view(p, flat, va.dims))
        return
    dst = p.new(va.dims, va.perm)
    p.alias(op.results[0], p.emit(Step("bd_binary", dst, [str(a), str(b), alg], posts=[])))


def _view(p: Program, src: int, dims: Sequence[Dim]) -> int:
    """``src`` (made plain) viewed with other dims of the same size."""
    p.values[src].owned = False
    vid = p.new(dims, identity(len(dims)))
    p.emit(Step("bd_reshape", vid, [str(src), str(len(dims)), c_dims(dims)], fusable=False))
    p.values[vid].owned = False
    return vid


def _fold_add(
    p, op: ir.Operation, ins: list[ir.Value], maps: list[list[int | None]], full: list[bool]
) -> bool:
    """Folds an add into the producer of one operand: a per-channel constant as the
    conv/matmul bias, or a same-shape tensor as a sum post-op. False if it cannot."""
    out = op.results[0]
    if not full[1]:
        step = p.fusable(ins[0])
        vector = p.region.constants.get(ins[1])
        if step is None or vector is None or step.bias >= 0 or step.posts:
            return False
        if step.fn not in ("bd_conv", "bd_matmul"):
            return False
        dst = p.values[step.dst]
        channel = 1 if step.fn == "bd_conv" else len(dst.dims) - 1  # oneDNN's dim
        if maps[1] != [dst.perm[channel]] or vector.size != dst.dims[channel]:
            return False
        flat = vector.reshape(-1)
        if step.fn == "bd_conv":
            step.bias = p.const(flat, (0,))
        else:  # a matmul's bias has the destination's rank
            rank = len(p.values[step.dst].dims)
            step.bias = p.const(flat, (0,), dims=[1] * (rank - 1) + [flat.size])
        p.alias(out, step.dst)
        return True
    for mine, other in ((ins[0], ins[1]), (ins[1], ins[0])):
        step = p.fusable(mine)
        if step is None or step.posts or step.fn not in ("bd_conv", "bd_matmul", "bd_binary"):
            continue
        oid = p.ids.get(other)
        if oid is None and (other in p.args or other in p.region.constants):
            oid = p.ref(other, p.values[step.dst].perm, op)
        if oid is None or p.values[oid].defined >= step.index:
            continue
        mine_v, other_v = p.values[step.dst], p.values[oid]
        if other_v.dims != mine_v.dims or other_v.perm != mine_v.perm:
            continue  # same logical dims read in another layout: a plain binary
        # In place when the summed tensor dies here: nothing reads it after the
        # producer (which must not read it either) and its buffer is its own.
        reads = [k for k in p.read_at.get(other, []) if k != p.position]
        dead = p.values[oid].owned and all(k < step.position for k in reads)
        step.posts = [("BD_SUM", 1.0 if dead else 0.0, 0.0, oid)]
        p.alias(out, step.dst)
        return True
    return False


_BINARY_POSTS = {
    "dnnl_binary_add": "BD_BIN_ADD",
    "dnnl_binary_sub": "BD_BIN_SUB",
    "dnnl_binary_mul": "BD_BIN_MUL",
}


def _fold_binary(p: Program, a: ir.Value, op: ir.Operation, alg: str, b: int) -> bool:
    """``a alg b`` with ``b`` a broadcast constant (a per-channel scale or shift, an
    unfolded BatchNorm): a binary post-op of ``a``'s producer. False if it cannot."""
    step = p.fusable(a)
    kind = _BINARY_POSTS.get(alg)
    vb = p.values[b]
    if step is None or step.posts is None or kind is None or len(step.posts) >= 15:
        return False
    if step.fn not in ("bd_conv", "bd_matmul"):
        return False  # oneDNN's binary and pooling kernels take few binary post-ops fast
    if vb.defined >= 0 or vb.full is not None or vb.dims == p.values[step.dst].dims:
        return False  # a constant (defined by no step) that broadcasts
    # per channel (N, C, H, W: dim 1) or per column (the last dim), whose post-ops oneDNN
    # has fast kernels for; other broadcasts would fall to its reference kernels
    channel = 1 if len(vb.dims) == 4 else len(vb.dims) - 1
    if any(d != 1 for k, d in enumerate(vb.dims) if k != channel):
        return False
    step.posts.append((kind, 0.0, 0.0, b))
    p.alias(op.results[0], step.dst)
    return True


def eltwise(p: Program, op: ir.Operation, post: Post, alg: str, alpha: float, beta: float) -> None:
    view = GenericView.of(op)
    assert view is not None
    x = next(v for i, v in enumerate(ins_outs(op)[0]) if view.is_identity(i))
    step = p.fusable(x)
    if step is not None and step.posts is not None:
        last = step.posts[-1] if step.posts else None
        if post[0] == "BD_LINEAR" and last is not None and last[0] == "BD_LINEAR":
            # a2 * (a1 * x + b1) + b2
            step.posts[-1] = ("BD_LINEAR", last[1] * post[1], last[2] * post[1] + post[2], -1)
        elif (
            post[0] == "BD_CLIP"
            and last is not None
            and last[0] == "BD_CLIP"
            and max(last[1], post[1]) <= min(last[2], post[2])
        ):  # clip(clip(x, a, b), c, d) on overlapping ranges
            step.posts[-1] = ("BD_CLIP", max(last[1], post[1]), min(last[2], post[2]), -1)
        else:
            step.posts.append(post)
        p.alias(op.results[0], step.dst)
        return
    src = p.ref(x, None, op)
    v = p.values[src]
    dst = p.new(v.dims, v.perm)
    args = [str(src), alg, c_float(alpha), c_float(beta)]
    p.alias(op.results[0], p.emit(Step("bd_eltwise", dst, args, fusable=False)))


def broadcast(p: Program, op: ir.Operation) -> None:
    """A broadcast copy becomes a view: the source with 1s on the new dims, which
    binary ops read broadcasting (no copy); other readers materialise it."""
    (x,) = ins_outs(op)[0]
    (results,) = map_results(op)[:1]
    out = p.shape(op.results[0])
    if any(r is None for r in results) or results != sorted(results):  # type: ignore[type-var]
        raise p.error("a broadcast that transposes or reads constant indices", op)
    dims = [out[d] if d in results else 1 for d in range(len(out))]
    src = p.ref(x, None, op)
    p.values[src].owned = False
    vid = p.new(dims, identity(len(dims)))
    p.values[vid].full = tuple(out)
    p.emit(Step("bd_reshape", vid, [str(src), str(len(dims)), c_dims(dims)], fusable=False))
    p.values[vid].owned = False
    p.alias(op.results[0], vid)
