"""``byoc-split-bias-inits``: a bias broadcast into a conv's or matmul's init becomes a
bias add after it.

torch lowers ``Conv2d(bias=True)`` as ``linalg.broadcast`` of the bias into the conv's
``outs`` operand: the conv accumulates onto the bias. No backend pattern sees a bias
there, so the broadcast stayed on the host and conv→bias→relu composites never formed.
This pass rewrites ``op(ins) outs(broadcast(b))`` into ``op(ins) outs(fill 0.0)`` followed
by a ``BIAS_ADD`` generic reading ``b`` — the same sum (the bias is added last instead of
first; the difference is float rounding).
"""

from __future__ import annotations

from dataclasses import dataclass

from iree.compiler import ir
from iree.compiler.dialects import arith

from byoc_mlir.dataflow import FunctionGraph
from byoc_mlir.linalg_ops import linalg
from byoc_mlir.passes.base import ModulePass

_ACCUMULATING = frozenset(
    k.OPERATION_NAME
    for k in (
        linalg.MatmulOp,
        linalg.BatchMatmulOp,
        linalg.Conv2DNchwFchwOp,
        linalg.Conv2DNhwcHwcfOp,
        linalg.DepthwiseConv2DNchwChwOp,
        linalg.DepthwiseConv2DNhwcHwcOp,
    )
)
_BROADCAST = linalg.BroadcastOp.OPERATION_NAME


@dataclass(frozen=True)
class SplitBiasInitsPass(ModulePass):
    """No options."""

    NAME = "byoc-split-bias-inits"

    def run(self, module_op: ir.Operation, graphs: list[FunctionGraph]) -> None:
        with module_op.context:
            for graph in graphs:
                split_bias_inits(graph)


def split_bias_inits(graph: FunctionGraph) -> int:
    """Rewrites one function; returns how many inits were split."""
    count = 0
    for op in graph.ops:
        if op.name not in _ACCUMULATING or len(op.results) != 1:
            continue
        n_in = op.attributes["operandSegmentSizes"][0]
        init = op.operands[n_in]
        producer = init.owner
        if not isinstance(producer, ir.OpView) or producer.operation.name != _BROADCAST:
            continue
        bcast = producer.operation
        if sum(1 for _ in init.uses) != 1:
            continue
        out_type = ir.RankedTensorType(op.results[0].type)
        if not isinstance(out_type.element_type, ir.F32Type):
            continue
        _split(op, bcast, n_in, out_type)
        count += 1
    return count


def _split(op: ir.Operation, bcast: ir.Operation, n_in: int, out_type: ir.RankedTensorType) -> None:
    bias, empty = bcast.operands[0], bcast.operands[1]
    added = [int(d) for d in bcast.attributes["dimensions"]]
    rank = out_type.rank
    loc = op.location
    f32 = out_type.element_type
    with loc, ir.InsertionPoint(bcast):
        zero = arith.ConstantOp(f32, ir.FloatAttr.get(f32, 0.0)).result
        filled = linalg.fill(zero, outs=[empty])
    op.operands[n_in] = filled
    identity = ir.AffineMap.get_identity(rank)
    bias_map = ir.AffineMap.get(
        rank, 0, [ir.AffineDimExpr.get(d) for d in range(rank) if d not in added]
    )
    parallel = ir.Attribute.parse("#linalg.iterator_type<parallel>")
    with loc, ir.InsertionPoint.after(op):
        add = linalg.GenericOp(
            result_tensors=[out_type],
            inputs=[op.results[0], bias],
            outputs=[empty],
            indexing_maps=ir.ArrayAttr.get(
                [ir.AffineMapAttr.get(m) for m in (identity, bias_map, identity)]
            ),
            iterator_types=ir.ArrayAttr.get([parallel] * rank),
        )
        body = add.regions[0].blocks.append(f32, f32, f32)
        with ir.InsertionPoint(body):
            s = arith.AddFOp(body.arguments[0], body.arguments[1]).result
            linalg.YieldOp([s])
    op.results[0].replace_all_uses_except(add.results[0], add.operation)
    if not any(True for _ in bcast.results[0].uses):
        bcast.erase()
