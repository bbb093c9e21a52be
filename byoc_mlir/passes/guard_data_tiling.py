"""``byoc-guard-data-tiling``: keep IREE's data tiling away from a case it miscompiles.

IREE 3.13 with ``--iree-opt-data-tiling`` (one of the default host flags: ResNet-50
runs 1.9x slower without it) computes wrong numbers when the left operand of a
*batched* matmul is produced by an elementwise op that broadcasts one of its inputs,
even through further elementwise ops or reshapes: the producer is fused into the
operand's packing dispatch and, when the row count is not a multiple of the tile
(``2x3x8`` minus an ``8``-vector times ``2x8x4``: 12 of 24 outputs wrong; ``2x12x64``
minus a row vector: 768 of 1536), later batches read the wrong rows. Without the flag,
or with the operand materialised first, the result is right; a transpose between the
producer and the matmul (attention's operands) also keeps it right, so transposes are
not looked through. Found by differential fuzzing (``bench/fuzz.py``).

The pass puts a ``util.optimization_barrier`` on such an operand, so the producer
stays its own dispatch and the packing reads a plain tensor. A barrier costs a dispatch
(attention's probabilities, LayerNorm's output: BERT-tiny 0.33 -> 0.7 ms if every one is
guarded), so a named batch matmul whose row count is a multiple of 8 is left alone:
over rows 1-20 (``2xMx8`` times ``2x8x4``) exactly 3 and 9-15 came out wrong, and 16,
32 and 128 rows at larger sizes were right. It runs on the host
module just before IREE compiles it (host-only builds too), only when data tiling is
on; everything else is untouched. Batched contractions are the named batch matmuls and
``linalg.generic`` contractions with a dimension shared by both inputs and the output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from iree.compiler import ir

from byoc_mlir.dataflow import FunctionGraph
from byoc_mlir.passes.base import ModulePass

BATCH_MATMULS = frozenset(
    {
        "linalg.batch_matmul",
        "linalg.batch_matmul_transpose_a",
        "linalg.batch_matmul_transpose_b",
        "linalg.batch_reduce_matmul",
    }
)
RESHAPES = frozenset({"tensor.expand_shape", "tensor.collapse_shape", "tensor.reshape"})
BARRIER = "util.optimization_barrier"
FLAG = "--iree-opt-data-tiling"
DEPTH = 8  # producers looked through, per operand
ROW_TILE = 8


@dataclass(frozen=True)
class GuardDataTilingPass(ModulePass):
    """No options."""

    NAME = "byoc-guard-data-tiling"

    def apply(self, module_op: ir.Operation) -> None:
        guard_data_tiling(module_op)

    def run(self, module_op: ir.Operation, graphs: list[FunctionGraph]) -> None:
        guard_data_tiling(module_op)


def data_tiling_on(flags: Sequence[str]) -> bool:
    """Whether these IREE flags turn data tiling on (the last mention wins)."""
    on = False
    for flag in flags:
        if flag == FLAG or flag == f"{FLAG}=true":
            on = True
        elif flag == f"{FLAG}=false":
            on = False
    return on


def guard_data_tiling(module_op: ir.Operation) -> int:
    """Puts a barrier on every operand the miscompile needs; returns how many."""
    targets: list[ir.Operation] = []

    def collect(op: ir.Operation) -> ir.WalkResult:
        if op.name in BATCH_MATMULS or (op.name == "linalg.generic" and _batched_contraction(op)):
            targets.append(op)
        return ir.WalkResult.ADVANCE

    module_op.walk(collect)
    guarded = 0
    for op in targets:
        lhs = op.operands[0]
        if _rows_tile_evenly(op) or not _reads_a_broadcast(lhs):
            continue
        with ir.InsertionPoint(op), op.location:
            barrier = ir.Operation.create(BARRIER, results=[lhs.type], operands=[lhs])
        op.operands[0] = barrier.results[0]
        guarded += 1
    return guarded


def _rows_tile_evenly(op: ir.Operation) -> bool:
    """Whether a named batch matmul's row count is a static multiple of 8 (never wrong
    in any case tried: rows 1-20 wrong exactly at 3 and 9-15). Unknown: False."""
    if op.name not in BATCH_MATMULS:
        return False
    shape = ir.RankedTensorType(op.operands[0].type).shape
    rows = shape[-1] if op.name.endswith("transpose_a") else shape[-2]
    return rows > 0 and rows % ROW_TILE == 0


def _maps(op: ir.Operation) -> list[ir.AffineMap]:
    return [ir.AffineMapAttr(a).value for a in ir.ArrayAttr(op.attributes["indexing_maps"])]


def _dims(m: ir.AffineMap) -> set[int]:
    return {ir.AffineDimExpr(e).position for e in m.results if isinstance(e, ir.AffineDimExpr)}


def _batched_contraction(op: ir.Operation) -> bool:
    iterators = str(op.attributes["iterator_types"])
    if "reduction" not in iterators or len(op.operands) != 3:
        return False
    lhs, rhs, out = _maps(op)
    return bool(_dims(lhs) & _dims(rhs) & _dims(out))


def _reads_a_broadcast(value: ir.Value) -> bool:
    """Whether ``value`` comes through elementwise ops and reshapes from a broadcast.

    A transpose on the way (a permuted indexing map) is not looked through: IREE does
    not fuse it into the packing, and the result is right (BERT's attention operands).
    """
    work = [(value, 0)]
    while work:
        current, depth = work.pop()
        owner = current.owner
        if not isinstance(owner, ir.Operation | ir.OpView) or depth >= DEPTH:
            continue
        op = owner.operation
        if op.name == "linalg.broadcast":
            return True
        if op.name in RESHAPES:
            work.append((op.operands[0], depth + 1))
        elif op.name == "linalg.generic" and "reduction" not in str(
            op.attributes["iterator_types"]
        ):
            maps = _maps(op)
            n_inputs = len(maps) - len(op.results)
            orders = [_order(m) for m in maps]
            if any(order is None for order in orders):
                continue  # a permutation (or a non-dim expression): not the fused case
            loops = maps[-1].n_dims
            if any(len(order) < loops for order in orders[:n_inputs]):  # type: ignore[arg-type]
                return True
            work.extend((v, depth + 1) for v in list(op.operands)[:n_inputs])
    return False


def _order(m: ir.AffineMap) -> list[int] | None:
    """The dims a map reads, if it reads them in increasing order (identity or broadcast)."""
    dims = []
    for e in m.results:
        if not isinstance(e, ir.AffineDimExpr):
            return None
        dims.append(ir.AffineDimExpr(e).position)
    return dims if dims == sorted(set(dims)) else None
