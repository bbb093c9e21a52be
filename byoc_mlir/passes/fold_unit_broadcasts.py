"""``byoc-fold-unit-broadcasts``: read per-channel vectors directly, not through unit dims.

torch lowers BatchNorm (and other per-channel arithmetic) as a ``tensor.expand_shape``
of a vector ``tensor<C>`` into ``tensor<Cx1x1>``, read by an elementwise generic through
a map with constant results, ``(d0, d1, d2, d3) -> (d1, 0, 0)``. No recogniser matches
that form, so the whole BatchNorm stayed on the host between offloaded convs. This pass
makes such a generic read the vector itself through ``(d0, d1, d2, d3) -> (d1)``: the
same values, now the plain broadcast form that ``BIAS_ADD``, ``BROADCAST_SUB`` and
``BROADCAST_MUL`` recognise. An ``expand_shape`` left without users is erased.
"""

from __future__ import annotations

from dataclasses import dataclass

from iree.compiler import ir
from iree.compiler.dialects import tensor

from byoc_mlir import _compat
from byoc_mlir.dataflow import FunctionGraph
from byoc_mlir.linalg_ops import linalg
from byoc_mlir.passes.base import ModulePass

_EXPAND = tensor.ExpandShapeOp.OPERATION_NAME
_GENERIC = linalg.GenericOp.OPERATION_NAME


@dataclass(frozen=True)
class FoldUnitBroadcastsPass(ModulePass):
    """No options."""

    NAME = "byoc-fold-unit-broadcasts"

    def run(self, module_op: ir.Operation, graphs: list[FunctionGraph]) -> None:
        with module_op.context:
            for graph in graphs:
                fold_unit_broadcasts(graph)


def _unit_positions(src: ir.Type, dst: ir.Type) -> list[int] | None:
    """Positions of ``dst``'s added unit dims when ``dst`` is ``src`` plus unit dims."""
    if not isinstance(src, ir.RankedTensorType) or not isinstance(dst, ir.RankedTensorType):
        return None
    if 1 in src.shape:  # (a dynamic dim matches only a dynamic one: dst's unit dims are static)
        return None
    kept = [i for i, d in enumerate(dst.shape) if d != 1]
    if [dst.shape[i] for i in kept] != list(src.shape):
        return None
    return [i for i, d in enumerate(dst.shape) if d == 1]


def _collapse_unit_reads(op: ir.Operation, i: int, amap: ir.AffineMap) -> ir.AffineMap | None:
    """For an operand read with constant-0 results on its unit dims (ONNX/torch keepdim
    forms: ``tensor<1x4x128x1>`` through ``(d0, d1, d2, d3) -> (d0, d1, d2, 0)``): inserts
    a ``tensor.collapse_shape`` dropping those dims and returns the map without them."""
    operand = op.operands[i]
    t = operand.type
    if not isinstance(t, ir.RankedTensorType):
        return None  # (kept dims may be dynamic: a collapse needs no sizes)
    results = list(amap.results)
    units = [
        k for k, e in enumerate(results) if isinstance(e, ir.AffineConstantExpr) and e.value == 0
    ]
    kept = [k for k in range(len(results)) if k not in units]
    if not units or not kept or any(t.shape[k] != 1 for k in units):
        return None
    if not all(isinstance(results[k], ir.AffineDimExpr) for k in kept):
        return None
    groups: list[list[int]] = []
    for k in range(len(results)):  # a unit dim joins the group of the kept dim before it
        if k in kept or not groups:
            groups.append([k])
        else:
            groups[-1].append(k)
    if groups[0][0] in units:  # leading unit dims: merge into the first kept dim's group
        first = groups.pop(0)
        groups[0] = first + groups[0]
    i64 = ir.IntegerType.get_signless(64)
    reassociation = ir.ArrayAttr.get(
        [ir.ArrayAttr.get([ir.IntegerAttr.get(i64, k) for k in g]) for g in groups]
    )
    shape = [t.shape[k] for k in kept]
    with ir.InsertionPoint(op), op.location:
        collapse = tensor.CollapseShapeOp(
            ir.RankedTensorType.get(shape, t.element_type), operand, reassociation
        )
    op.operands[i] = collapse.result
    return ir.AffineMap.get(amap.n_dims, amap.n_symbols, [results[k] for k in kept])


def fold_unit_broadcasts(graph: FunctionGraph) -> int:
    """Rewrites the generics of one function; returns how many operands were folded."""
    folded = 0
    expands: list[ir.Operation] = []
    for op in graph.ops:
        if op.name != _GENERIC:
            continue
        n_in = op.attributes["operandSegmentSizes"][0]
        maps = [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(op.attributes["indexing_maps"])]
        changed = False
        for i in range(n_in):
            producer = op.operands[i].owner
            expand = producer.operation if isinstance(producer, ir.OpView) else None
            units = None
            if expand is not None and expand.name == _EXPAND:
                src = expand.operands[0]
                units = _unit_positions(src.type, expand.results[0].type)
            results = list(maps[i].results)
            if (
                expand is None
                or units is None
                or not all(
                    isinstance(results[u], ir.AffineConstantExpr) and results[u].value == 0
                    for u in units
                )
            ):
                collapsed = _collapse_unit_reads(op, i, maps[i])
                if collapsed is not None:
                    maps[i] = collapsed
                    changed = True
                    folded += 1
                continue
            kept = [e for k, e in enumerate(results) if k not in units]
            maps[i] = ir.AffineMap.get(maps[i].n_dims, maps[i].n_symbols, kept)
            op.operands[i] = src
            expands.append(expand)
            changed = True
            folded += 1
        if changed:
            op.attributes["indexing_maps"] = ir.ArrayAttr.get(
                [ir.AffineMapAttr.get(m) for m in maps]
            )
    seen: set[int] = set()
    for expand in expands:
        key = _compat.op_key(expand)
        if key in seen or any(True for _ in expand.results[0].uses):
            continue
        seen.add(key)
        expand.erase()
    return folded
