"""``byoc-strip-asserts``: drop ``cf.assert`` ops (and the conditions only they used).

torch's lowering to linalg guards some computations with runtime assertions — one per
BatchNorm (``cf.assert %nonzero, "unimplemented: tensor with zero element"`` inside the
reciprocal generic). They are host-only checks: inside a generic they make the body
unrecognisable to every backend, and at function level they are a side effect no
region can cross. The driver runs this pass right after IREE's input phase, for every
build (host-only too, so the two stay comparable).

A condition computed by side-effect-free ``arith`` ops used by nothing else goes with
its assert, so a stripped generic body is exactly the computation it guarded.
"""

from __future__ import annotations

from dataclasses import dataclass

from iree.compiler import ir
from iree.compiler.dialects import cf

from byoc_mlir.dataflow import FunctionGraph
from byoc_mlir.passes.base import ModulePass

ASSERT = cf.AssertOp.OPERATION_NAME


@dataclass(frozen=True)
class StripAssertsPass(ModulePass):
    """No options."""

    NAME = "byoc-strip-asserts"

    def apply(self, module_op: ir.Operation) -> None:
        strip_asserts(module_op)

    def run(self, module_op: ir.Operation, graphs: list[FunctionGraph]) -> None:
        strip_asserts(module_op)


def strip_asserts(module_op: ir.Operation) -> int:
    """Erases every ``cf.assert`` (nested ones too); returns how many."""
    asserts: list[ir.Operation] = []

    def collect(op: ir.Operation) -> ir.WalkResult:
        if op.name == ASSERT:
            asserts.append(op)
        return ir.WalkResult.ADVANCE

    module_op.walk(collect)
    # Every op to erase is decided before the first erase: an erased op's handle (and its
    # operands') dangle, and one condition can feed several asserts or reach a producer
    # along two paths (``andi %c, %c``).
    doomed = _dead_conditions(asserts)
    for op in asserts:
        op.erase()
    for op in doomed:  # users before producers
        op.erase()
    return len(asserts)


def _dead_conditions(asserts: list[ir.Operation]) -> list[ir.Operation]:
    """The pure ``arith`` ops used only by ``asserts`` or by each other, users first."""
    dying: set[ir.Operation] = set(asserts)
    order: list[ir.Operation] = []
    work = [operand for op in asserts for operand in op.operands]
    while work:
        owner = work.pop().owner
        if not isinstance(owner, ir.Operation | ir.OpView):
            continue  # a block argument
        op = owner.operation
        if op in dying or not op.name.startswith("arith.") or op.regions:
            continue
        if not all(use.owner in dying for r in op.results for use in r.uses):
            continue  # still used; it may die later once its other users are known to
        dying.add(op)
        order.append(op)
        work.extend(op.operands)
    return order
