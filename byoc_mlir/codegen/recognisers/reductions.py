"""The reduction forms: a sum or a max over some dims (LayerNorm's and softmax's), and
torch's ``max.dim`` whose index output is never used."""

from __future__ import annotations

from dataclasses import dataclass

from iree.compiler import ir

from byoc_mlir.codegen.recognisers.generic_view import (
    GENERIC,
    PARALLEL,
    GenericView,
    Recogniser,
)


@dataclass(frozen=True)
class Reduction:
    """A recognised reduction: the reduced loop dims, and whether the output keeps them
    as unit dims (a constant-0 map result) or drops them."""

    dims: tuple[int, ...]
    keepdims: bool


def reduction(op: ir.Operation) -> Reduction | None:
    """The shape of a ``REDUCE_SUM``/``REDUCE_MAX`` generic (identity input map, output
    map of the parallel dims in order, constant 0 in place of reduced ones or not)."""
    attrs = op.operation.attributes
    segs = attrs["operandSegmentSizes"]
    if segs[0] != 1:
        return None
    maps = [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(attrs["indexing_maps"])]
    iters = [str(it) for it in ir.ArrayAttr(attrs["iterator_types"])]
    n = len(iters)
    if maps[0] != ir.AffineMap.get_identity(n, context=maps[0].context):
        return None
    reduced = tuple(d for d, it in enumerate(iters) if it != PARALLEL)
    parallel = [d for d in range(n) if d not in reduced]
    if not reduced or any(m != maps[1] for m in maps[2:]):
        return None
    results = list(maps[1].results)
    dims = [ir.AffineDimExpr(e).position for e in results if isinstance(e, ir.AffineDimExpr)]
    if dims != parallel:
        return None
    if len(results) == len(parallel):
        return Reduction(reduced, keepdims=False)
    keep = len(results) == n and all(
        isinstance(results[d], ir.AffineConstantExpr) and results[d].value == 0 for d in reduced
    )
    return Reduction(reduced, keepdims=True) if keep else None


class Reduce(Recogniser):
    def __init__(self, name: str, body_ops: tuple[str, ...]):
        self.name = name
        self.body_ops = body_ops

    def matches(self, op: ir.Operation) -> bool:
        if op.operation.name != GENERIC:
            return False
        view = GenericView.of(op)
        if view is not None:
            return self.match_view(view)
        return self.name == "reduce_max" and max_with_unused_index(op.operation)

    def match_view(self, view: GenericView) -> bool:
        if view.n_inputs != 1 or view.all_parallel or len(view.body) != 1:
            return False
        op = view.body[0]
        if op.name not in self.body_ops or view.yielded[0] != op.results[0]:
            return False
        if set(op.operands) != {view.args[0], view.args[1]}:
            return False
        return reduction(view.op) is not None


def max_with_unused_index(op: ir.Operation) -> bool:
    """torch's ``max.dim``: running max and its index; matches when the index is unused."""
    segs = op.attributes["operandSegmentSizes"]
    if segs[0] != 1 or segs[1] != 2 or any(True for _ in op.results[1].uses):
        return False
    if reduction(op) is None:
        return False
    block = op.regions[0].blocks[0]
    ops = [o.operation for o in block.operations]
    x, acc = block.arguments[0], block.arguments[1]
    maxes = [o for o in ops if o.name in ("arith.maximumf", "arith.maxnumf")]
    if len(maxes) != 1 or set(maxes[0].operands) != {x, acc}:
        return False
    return list(ops[-1].operands)[0] == maxes[0].results[0]


def contraction_batch(op: ir.Operation) -> int | None:
    """The number of batch dims of a ``CONTRACTION`` generic (``A[b.., m, k] *
    B[b.., k, n]`` summed over ``k`` into ``C[b.., m, n]``, in that loop order), or None."""
    attrs = op.operation.attributes
    if attrs["operandSegmentSizes"][0] != 2:
        return None
    iters = [str(it) for it in ir.ArrayAttr(attrs["iterator_types"])]
    n = len(iters)
    reduced = [d for d, it in enumerate(iters) if it != PARALLEL]
    if n < 3 or len(reduced) != 1:
        return None
    k = reduced[0]
    rest = [d for d in range(n) if d != k]
    *batch, m, col = rest
    maps = [ir.AffineMapAttr(a).value for a in ir.ArrayAttr(attrs["indexing_maps"])]
    expected = [[*batch, m, k], [*batch, k, col], [*batch, m, col]]
    for amap, dims in zip(maps, expected, strict=True):
        results = list(amap.results)
        if len(results) != len(dims) or not all(isinstance(e, ir.AffineDimExpr) for e in results):
            return None
        if [ir.AffineDimExpr(e).position for e in results] != dims:
            return None
    return len(batch)


class Contraction(Recogniser):
    """``C += A @ B`` over trailing dims with leading batch dims: a (batch) matmul
    written as a generic (the attention products of an ONNX transformer)."""

    name = "contraction"

    def match_view(self, view: GenericView) -> bool:
        if view.n_inputs != 2 or view.all_parallel or len(view.body) != 2:
            return False
        mul, add = view.body
        a, b, out = view.args
        if mul.name != "arith.mulf" or add.name != "arith.addf":
            return False
        if set(mul.operands) != {a, b} or set(add.operands) != {out, mul.results[0]}:
            return False
        return view.yielded == [add.results[0]] and contraction_batch(view.op) is not None
