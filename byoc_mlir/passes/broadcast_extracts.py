"""``byoc-fold-broadcast-extracts``: dynamic broadcasts as indexing maps, not extracts.

When ONNX broadcasting meets sizes it cannot prove equal (a dynamic batch or sequence),
IREE's ONNX lowering reads the smaller operand element by element, choosing index 0
where that operand's size is 1 at run time::

    %r = linalg.generic {maps = [(d0, d1, d2) -> (d0, d1, d2)]} outs(%e : tensor<?x?x256xf32>) {
      %i = linalg.index 0 : index
      %c = arith.cmpi eq, %n, %c1 : index
      %s = arith.select %c, %c0, %i : index
      %x = tensor.extract %mean[%s, %j, %c0] : tensor<?x?x1xf32>
      linalg.yield %x : f32
    }

No recogniser matches that form, so every LayerNorm of a dynamically shaped BERT left
its broadcasts on the host and its regions cut in pieces. When the size compared with 1
(``%n``) is the output's own size on that dimension, the select always equals the loop
index (a size of 1 has only index 0), so the read is a plain broadcast: this pass makes
the generic read ``%mean`` through ``(d0, d1, d2) -> (d0, d1, 0)`` and yield it, which
``byoc-fold-unit-broadcasts`` then turns into the ``BROADCAST`` form. Generics whose
indices are anything else are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from iree.compiler import ir
from iree.compiler.dialects import tensor

from byoc_mlir.codegen.recognisers import constant_value
from byoc_mlir.dataflow import FunctionGraph
from byoc_mlir.linalg_ops import linalg
from byoc_mlir.passes.base import ModulePass

_GENERIC = linalg.GenericOp.OPERATION_NAME
_EMPTY = tensor.EmptyOp.OPERATION_NAME
_EXTRACT = tensor.ExtractOp.OPERATION_NAME
_INDEX = "linalg.index"


@dataclass(frozen=True)
class FoldBroadcastExtractsPass(ModulePass):
    """No options."""

    NAME = "byoc-fold-broadcast-extracts"

    def run(self, module_op: ir.Operation, graphs: list[FunctionGraph]) -> None:
        with module_op.context:
            for graph in graphs:
                fold_broadcast_extracts(graph)


def _sizes(out: ir.Value) -> list[ir.Value | int]:
    """Each dimension's size of a generic's init: a static int, or the SSA operand of the
    ``tensor.empty`` that made it (an unknown dynamic size: the init itself)."""
    t = ir.RankedTensorType(out.type)
    owner = out.owner
    dynamic = (
        list(owner.operation.operands)
        if isinstance(owner, ir.OpView) and owner.operation.name == _EMPTY
        else []
    )
    sizes: list[ir.Value | int] = []
    for k in range(t.rank):
        if not ir.ShapedType(t).is_dynamic_dim(k):
            sizes.append(int(t.shape[k]))
        elif dynamic:
            sizes.append(dynamic.pop(0))
        else:
            sizes.append(out)  # matches no compared size
    return sizes


def _loop_dim(v: ir.Value, inside: dict[ir.Value, ir.Operation], sizes: list) -> int | None:
    """The loop dim ``k`` that index ``v`` always equals: ``linalg.index k``, or
    ``select(size_k == 1, 0, linalg.index k)`` with ``size_k`` the output's size."""
    op = inside.get(v)
    if op is None:
        return None
    if op.name == _INDEX:
        return int(ir.IntegerAttr(op.attributes["dim"]).value)
    if op.name != "arith.select" or constant_value(op.operands[1]) != 0:
        return None
    cmp, chosen = inside.get(op.operands[0]), op.operands[2]
    k = _loop_dim(chosen, inside, sizes) if chosen in inside else None
    if cmp is None or cmp.name != "arith.cmpi" or k is None:
        return None
    if ir.IntegerAttr(cmp.attributes["predicate"]).value != 0:  # eq
        return None
    size, one = cmp.operands
    if (
        constant_value(one) != 1
        or inside.get(size) is not None
        or not isinstance(sizes[k], ir.Value)
    ):
        return None
    return k if _same(size, sizes[k]) else None


_PURE = {"arith.index_cast", "arith.muli", "arith.divsi", "arith.addi", "arith.select",
         "arith.constant", "arith.cmpi", "tensor.dim", "affine.apply"}  # fmt: skip


def _same(a: ir.Value, b: ir.Value, depth: int = 8) -> bool:
    """Whether two index values are one computation (an ONNX import repeats the
    ``index_cast`` of one size for each ``tensor.empty`` it feeds): the same value, or
    the same pure op on the same operands."""
    if a == b:
        return True
    oa, ob = a.owner, b.owner
    if depth == 0 or not isinstance(oa, ir.OpView) or not isinstance(ob, ir.OpView):
        return False
    x, y = oa.operation, ob.operation
    if x.name != y.name or x.name not in _PURE or len(x.operands) != len(y.operands):
        return False
    if {n.name: str(n.attr) for n in x.attributes} != {n.name: str(n.attr) for n in y.attributes}:
        return False
    pairs = zip(x.operands, y.operands, strict=True)
    return all(_same(u, v, depth - 1) for u, v in pairs)


def _broadcast_map(op: ir.Operation) -> tuple[ir.Value, ir.AffineMap] | None:
    """(the tensor read, its indexing map) when ``op`` is a broadcast by extract."""
    if len(op.operands) != 1 or len(op.results) != 1:  # outs only
        return None
    out = op.operands[0]
    maps = [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(op.attributes["indexing_maps"])]
    rank = ir.RankedTensorType(out.type).rank
    if maps[0] != ir.AffineMap.get_identity(rank):
        return None
    if any("parallel" not in str(it) for it in ir.ArrayAttr(op.attributes["iterator_types"])):
        return None
    body = [o.operation for o in op.regions[0].blocks[0].operations]
    inside = {r: o for o in body for r in o.results}
    extract, yielded = body[-2:] if len(body) >= 2 else (None, None)
    if extract is None or yielded is None or extract.name != _EXTRACT:
        return None
    if list(yielded.operands) != [extract.results[0]]:
        return None
    source = extract.operands[0]
    if source in inside or any(o.name not in _ALLOWED for o in body):
        return None
    sizes = _sizes(out)
    src_type = ir.RankedTensorType(source.type)
    exprs = []
    for axis, index in enumerate(list(extract.operands)[1:]):
        k = _loop_dim(index, inside, sizes)
        if k is not None:
            exprs.append(ir.AffineDimExpr.get(k))
        elif constant_value(index) == 0 and src_type.shape[axis] == 1:
            exprs.append(ir.AffineConstantExpr.get(0))
        else:
            return None
    return source, ir.AffineMap.get(rank, 0, exprs)


_ALLOWED = {_INDEX, "arith.cmpi", "arith.select", "arith.constant", _EXTRACT, "linalg.yield"}


def fold_broadcast_extracts(graph: FunctionGraph) -> int:
    """Rewrites one function's broadcasts by extract; returns how many."""
    folded = 0
    parallel = ir.Attribute.parse("#linalg.iterator_type<parallel>")
    for op in graph.ops:
        if op.name != _GENERIC:
            continue
        found = _broadcast_map(op)
        if found is None:
            continue
        source, amap = found
        out = op.operands[0]
        out_type = op.results[0].type
        rank = ir.RankedTensorType(out_type).rank
        identity = ir.AffineMap.get_identity(rank)
        element = ir.RankedTensorType(out_type).element_type
        with op.location, ir.InsertionPoint(op):
            new = linalg.GenericOp(
                result_tensors=[out_type],
                inputs=[source],
                outputs=[out],
                indexing_maps=ir.ArrayAttr.get([ir.AffineMapAttr.get(m) for m in (amap, identity)]),
                iterator_types=ir.ArrayAttr.get([parallel] * rank),
            )
            body = new.regions[0].blocks.append(element, element)
            with ir.InsertionPoint(body):
                linalg.YieldOp([body.arguments[0]])
        op.results[0].replace_all_uses_with(new.results[0])
        op.erase()
        folded += 1
    return folded
