"""``byoc-fold-scalar-casts``: a float cast of a scalar constant becomes a constant.

torch lowers BatchNorm's ``eps`` (and other Python floats) as an ``f64`` constant that
each generic body truncates to ``f32`` (``arith.truncf %eps : f64 to f32``). IREE's
input phase used to hide this by demoting every ``f64`` to ``f32``; the bundle now keeps
``f64`` (an f64 model must stay f64), so the casts survive and make the bodies
unrecognisable (a BatchNorm would no longer fold into its conv). This pass replaces each
``arith.truncf``/``arith.extf`` of a scalar ``arith.constant`` by a constant of the
result type, placed beside the original (rounded to nearest even, as ``truncf``), and
erases originals left unused. The driver runs it right after IREE's input phase.
"""

from __future__ import annotations

from dataclasses import dataclass

from iree.compiler import ir
from iree.compiler.dialects import arith

from byoc_mlir.dataflow import FunctionGraph
from byoc_mlir.passes.base import ModulePass

CASTS = frozenset((arith.TruncFOp.OPERATION_NAME, arith.ExtFOp.OPERATION_NAME))
_CONSTANT = arith.ConstantOp.OPERATION_NAME


@dataclass(frozen=True)
class FoldScalarCastsPass(ModulePass):
    """No options."""

    NAME = "byoc-fold-scalar-casts"

    def apply(self, module_op: ir.Operation) -> None:
        fold_scalar_casts(module_op)

    def run(self, module_op: ir.Operation, graphs: list[FunctionGraph]) -> None:
        fold_scalar_casts(module_op)


def fold_scalar_casts(module_op: ir.Operation) -> int:
    """Folds every float cast of a scalar float constant; returns how many."""
    casts: list[ir.Operation] = []

    def collect(op: ir.Operation) -> ir.WalkResult:
        if op.name in CASTS:
            casts.append(op)
        return ir.WalkResult.ADVANCE

    module_op.walk(collect)
    made: dict[tuple[ir.Operation, str], ir.Value] = {}
    sources: list[ir.Operation] = []
    for op in casts:  # collected first; each cast is erased once, after its last read
        owner = op.operands[0].owner
        if not isinstance(owner, ir.Operation | ir.OpView):
            continue
        src = owner.operation
        if src.name != _CONSTANT or not isinstance(src.attributes["value"], ir.FloatAttr):
            continue
        result_type = op.results[0].type
        key = (src, str(result_type))
        if key not in made:
            value = ir.FloatAttr(src.attributes["value"]).value
            with ir.InsertionPoint(src), src.location:
                made[key] = arith.ConstantOp(
                    result_type, ir.FloatAttr.get(result_type, value)
                ).result
            sources.append(src)
        op.results[0].replace_all_uses_with(made[key])
        op.erase()
    for src in dict.fromkeys(sources):
        if not any(True for _ in src.results[0].uses):
            src.erase()
    return len(made)
