"""``byoc-fold-batchnorm``: fold an inference BatchNorm into the convolution before it.

In inference BatchNorm is ``(x - mean) * gamma / sqrt(var + eps) + beta`` per output
channel. Frontends lower it as a chain of elementwise generics after the conv: torch as
``sub``, ``mul``, ``mul``, ``add`` of ``tensor<C>`` vectors read through ``(d1)``, ONNX
through IREE's importer the same on ``tensor<1xCx1x1>`` read through ``(d0, d1, 0, 0)``
(``byoc-fold-constants`` has already computed ``1 / sqrt(var + eps)``). Four host ops
with a full activation each sat between an offloaded conv and its ReLU, so
conv → bias → relu composites never formed. Every such chain is ``conv(x) * s + b`` for
per-channel vectors ``s``, ``b``: this pass scales the conv's weight by ``s`` along its
output-channel axis (a new constant) and replaces the chain by one ``BIAS_ADD`` generic
reading ``b`` through ``(d1)`` (``(d3)`` for NHWC), the form ``byoc-split-bias-inits``
writes.

Folded only when the conv's weight is a readable constant, its init a zero fill, and
every value of the chain has one user (the next op); the chain stops at the first op
that is not ``+ c``, ``- c``, ``c - x``, ``* c`` or ``/ c`` with ``c`` a per-channel or
scalar constant. ``s`` and ``b`` are accumulated in float64 and rounded once, so the
result matches the unfolded chain to float32 rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from iree.compiler import ir
from iree.compiler.dialects import arith

from byoc_mlir import _compat
from byoc_mlir.codegen import recognisers
from byoc_mlir.codegen.hook import constant_array
from byoc_mlir.dataflow import FunctionGraph
from byoc_mlir.linalg_ops import linalg
from byoc_mlir.passes.base import ModulePass
from byoc_mlir.passes.fold_constants import DTYPES, read_through_map, scalar_constant

_GENERIC = linalg.GenericOp.OPERATION_NAME
_FILL = linalg.FillOp.OPERATION_NAME
_CONSTANT = arith.ConstantOp.OPERATION_NAME
_PARALLEL = "#linalg.iterator_type<parallel>"
_ADD, _SUB, _MUL, _DIV = (
    k.OPERATION_NAME for k in (arith.AddFOp, arith.SubFOp, arith.MulFOp, arith.DivFOp)
)

_CONVS: dict[str, tuple[int, int]] = {
    linalg.Conv2DNchwFchwOp.OPERATION_NAME: (1, 0),
    linalg.Conv2DNhwcHwcfOp.OPERATION_NAME: (3, 3),
    linalg.Conv2DNhwcFhwcOp.OPERATION_NAME: (3, 0),
    linalg.DepthwiseConv2DNchwChwOp.OPERATION_NAME: (1, 0),
    linalg.DepthwiseConv2DNhwcHwcOp.OPERATION_NAME: (3, 2),
}
"""Conv op -> (output-channel dim of the result, output-channel axis of the weight)."""


@dataclass(frozen=True)
class FoldBatchnormPass(ModulePass):
    """No options."""

    NAME = "byoc-fold-batchnorm"

    def run(self, module_op: ir.Operation, graphs: list[FunctionGraph]) -> None:
        with module_op.context:
            for graph in graphs:
                fold_batchnorm(graph)


@dataclass
class _Chain:
    """``conv(x) * scale + shift`` computed by ``ops``, per output channel (float64)."""

    ops: list[ir.Operation]
    scale: np.ndarray
    shift: np.ndarray


def fold_batchnorm(graph: FunctionGraph) -> int:
    """Folds the chains after the convs of one function; returns how many were folded."""
    # Chain ops are erased as convs are folded: pick the convs (never erased) first.
    convs = [op for op in graph.ops if op.name in _CONVS and len(op.results) == 1]
    count = 0
    for conv in convs:
        channel, weight_axis = _CONVS[conv.name]
        if not _zero_init(conv):
            continue
        out_type = ir.RankedTensorType(conv.results[0].type)
        chain = _chain(conv, channel, out_type)
        if not chain.ops or (len(chain.ops) == 1 and recognisers.BIAS_ADD.matches(chain.ops[0])):
            continue  # nothing to fold, or already the canonical conv + bias add
        weight = _weight(graph, conv, weight_axis, out_type.shape[channel])
        if weight is None:
            continue
        _rewrite(graph, conv, weight, weight_axis, chain, channel, out_type)
        count += 1
    return count


def _weight(graph: FunctionGraph, conv: ir.Operation, axis: int, n: int) -> np.ndarray | None:
    """The conv's constant float weight, when readable and ``n`` long along ``axis``."""
    v = conv.operands[1]
    owner = graph.free.get(v)
    if owner is None or not isinstance(v.type, ir.RankedTensorType):
        return None
    result_type = ir.RankedTensorType(conv.results[0].type)
    if str(v.type.element_type) not in DTYPES or str(result_type.element_type) not in DTYPES:
        return None
    array = constant_array(owner)
    return array if array is not None and array.shape[axis] == n else None


def _zero_init(conv: ir.Operation) -> bool:
    """Whether the conv accumulates onto ``linalg.fill 0.0`` (else the init is scaled too)."""
    owner = conv.operands[2].owner
    if not isinstance(owner, ir.OpView) or owner.operation.name != _FILL:
        return False
    value = scalar_constant(owner.operation.operands[0])
    return value is not None and float(value) == 0.0


def _chain(conv: ir.Operation, channel: int, out_type: ir.RankedTensorType) -> _Chain:
    """The longest chain of per-channel affine ops after the conv, one user each."""
    n = out_type.shape[channel]
    chain = _Chain([], np.ones(n), np.zeros(n))
    value = conv.results[0]
    while True:
        uses = list(value.uses)
        if len(uses) != 1:
            break
        user = uses[0].owner.operation
        if user.name != _GENERIC or user.parent != conv.parent:
            break
        step = _affine_step(user, uses[0].operand_number, channel, out_type)
        if step is None:
            break
        body_op, c, x_first = step
        if body_op == _ADD:
            chain.shift = chain.shift + c
        elif body_op == _SUB and x_first:
            chain.shift = chain.shift - c
        elif body_op == _SUB:
            chain.scale, chain.shift = -chain.scale, c - chain.shift
        elif body_op == _MUL:
            chain.scale, chain.shift = chain.scale * c, chain.shift * c
        else:
            chain.scale, chain.shift = chain.scale / c, chain.shift / c
        chain.ops.append(user)
        value = user.results[0]
    return chain


def _affine_step(
    op: ir.Operation, k: int, channel: int, out_type: ir.RankedTensorType
) -> tuple[str, np.ndarray, bool] | None:
    """(body op, per-channel float64 constant, whether ``x`` is the left operand) when
    ``op`` computes ``x ∘ c`` or ``c ∘ x`` elementwise, ``x`` its operand ``k``; None
    otherwise."""
    n_in, n_out = (int(s) for s in op.attributes["operandSegmentSizes"])
    if n_out != 1 or n_in > 2 or k >= n_in or op.results[0].type != out_type:
        return None
    if not all(str(it) == _PARALLEL for it in ir.ArrayAttr(op.attributes["iterator_types"])):
        return None
    maps = [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(op.attributes["indexing_maps"])]
    identity = ir.AffineMap.get_identity(out_type.rank)
    if maps[k] != identity or maps[-1] != identity:
        return None
    block = op.regions[0].blocks[0]
    body = [o.operation for o in block.operations]
    compute = [o for o in body[:-1] if o.name != _CONSTANT]
    if len(compute) != 1 or compute[0].name not in (_ADD, _SUB, _MUL, _DIV):
        return None
    inner = compute[0]
    if list(body[-1].operands) != [inner.results[0]]:
        return None
    lhs, rhs = inner.operands
    arg = block.arguments[k]
    if (lhs == arg) == (rhs == arg):
        return None  # x on neither side, or on both (x * x)
    other = rhs if lhs == arg else lhs
    c = _per_channel(op, n_in, k, other, maps, channel, out_type)
    if c is None or not np.all(np.isfinite(c)):
        return None
    if inner.name == _DIV and (lhs != arg or not np.all(c != 0)):
        return None  # c / x is not affine in x
    return inner.name, c, lhs == arg


def _per_channel(
    op: ir.Operation,
    n_in: int,
    k: int,
    other: ir.Value,
    maps: list[ir.AffineMap],
    channel: int,
    out_type: ir.RankedTensorType,
) -> np.ndarray | None:
    """The other operand as a float64 vector over the channels: a scalar constant, or the
    other input when it is a constant that varies along ``channel`` only."""
    n = out_type.shape[channel]
    scalar = scalar_constant(other)
    if scalar is not None:
        return np.full(n, float(scalar))
    block = op.regions[0].blocks[0]
    j = 1 - k
    if n_in != 2 or other != block.arguments[j]:
        return None
    owner = op.operands[j].owner
    if not isinstance(owner, ir.OpView) or owner.operation.name != _CONSTANT:
        return None
    array = constant_array(owner.operation)
    if array is None:
        return None
    read = read_through_map(array, maps[j], list(out_type.shape))
    if read is None or any(d != 1 for i, d in enumerate(read.shape) if i != channel):
        return None
    return np.broadcast_to(read.reshape(-1).astype(np.float64), (n,))


def _rewrite(
    graph: FunctionGraph,
    conv: ir.Operation,
    weight: np.ndarray,
    weight_axis: int,
    chain: _Chain,
    channel: int,
    out_type: ir.RankedTensorType,
) -> None:
    old_weight = conv.operands[1]
    weight_type = ir.RankedTensorType(old_weight.type)
    shape = [1] * weight.ndim
    shape[weight_axis] = -1
    scaled = (weight.astype(np.float64) * chain.scale.reshape(shape)).astype(weight.dtype)
    with conv.location, ir.InsertionPoint(conv):
        attr = ir.DenseElementsAttr.get(scaled, type=weight_type.element_type)
        conv.operands[1] = arith.ConstantOp(weight_type, attr).result
    last = chain.ops[-1]
    result = conv.results[0]
    if np.any(chain.shift != 0):
        result = _bias_add(last, result, chain.shift, channel, out_type)
    last.results[0].replace_all_uses_with(result)
    dead = [graph.free[old_weight]] if old_weight in graph.free else []
    for op in reversed(chain.ops):
        dead += [graph.free[v] for v in op.operands if v in graph.free]
        op.erase()
    seen: set[int] = set()
    for op in dead:
        key = _compat.op_key(op)
        if key not in seen and not any(True for r in op.results for _ in r.uses):
            seen.add(key)
            op.erase()


def _bias_add(
    last: ir.Operation,
    x: ir.Value,
    shift: np.ndarray,
    channel: int,
    out_type: ir.RankedTensorType,
) -> ir.Value:
    """``x + shift`` as the ``BIAS_ADD`` generic, placed where the chain ended (its init
    is defined there)."""
    f = out_type.element_type
    rank = out_type.rank
    identity = ir.AffineMap.get_identity(rank)
    channel_map = ir.AffineMap.get(rank, 0, [ir.AffineDimExpr.get(channel)])
    parallel = ir.Attribute.parse(_PARALLEL)
    n_in = int(last.attributes["operandSegmentSizes"][0])
    with last.location, ir.InsertionPoint(last):
        bias_type = ir.RankedTensorType.get([out_type.shape[channel]], f)
        values = np.asarray(shift.astype(DTYPES[str(f)]), order="C")
        bias = arith.ConstantOp(bias_type, ir.DenseElementsAttr.get(values, type=f)).result
        add = linalg.GenericOp(
            result_tensors=[out_type],
            inputs=[x, bias],
            outputs=[last.operands[n_in]],
            indexing_maps=ir.ArrayAttr.get(
                [ir.AffineMapAttr.get(m) for m in (identity, channel_map, identity)]
            ),
            iterator_types=ir.ArrayAttr.get([parallel] * rank),
        )
        body = add.regions[0].blocks.append(f, f, f)
        with ir.InsertionPoint(body):
            linalg.YieldOp([arith.AddFOp(body.arguments[0], body.arguments[1]).result])
    return add.results[0]
