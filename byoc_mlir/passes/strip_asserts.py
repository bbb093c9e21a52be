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

from byoc_mlir.graph import FunctionGraph
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
    for op in asserts:  # collected first: erased ops' handles dangle
        condition = op.operands[0]
        op.erase()
        _erase_if_dead(condition)
    return len(asserts)


def _erase_if_dead(value: ir.Value) -> None:
    """Erases the pure ``arith`` op defining ``value`` if nothing uses it, transitively."""
    owner = value.owner
    if not isinstance(owner, ir.Operation | ir.OpView):
        return  # a block argument
    op = owner.operation
    if not op.name.startswith("arith.") or op.regions:
        return
    if any(True for r in op.results for _ in r.uses):
        return
    operands = list(op.operands)
    op.erase()
    for operand in operands:
        _erase_if_dead(operand)
