"""Inline an outlined region back into its caller: the inverse of outlining.

Used for per-region fallback: when a vendor's codegen fails, its region goes back to the
host with a recorded reason and the rest of the model still offloads.
"""

from __future__ import annotations

from iree.compiler import ir

from byoc_mlir import _compat
from byoc_mlir.dataflow import is_free
from byoc_mlir.dialects import byoc
from byoc_mlir.errors import ByocError


def inline_region(module_op: ir.Operation, func_name: str, reason: str) -> int:
    """Inlines every call of the outlined function ``func_name`` and erases it.

    Each inlined op gets ``byoc.reason = reason``. Returns the number of calls inlined.
    """
    body = _compat.module_body(module_op)
    callee = None
    calls: list[ir.Operation] = []
    for op in body.operations:
        op = op.operation
        if op.name in _compat.FLAVORS and "sym_name" in op.attributes:
            if _compat.symbol_name(op) == func_name:
                callee = op
                continue
            for block in op.regions[0].blocks:
                for inner in block.operations:
                    inner = inner.operation
                    if inner.name in _compat.CALL_OPS and _compat.callee_name(inner) == func_name:
                        calls.append(inner)
    if callee is None or byoc.get_target(callee) is None:
        raise ByocError(f"no outlined function named @{func_name}")
    with module_op.context:  # the reason attribute belongs to the module's context
        for call in calls:
            _inline_one(callee, call, reason, body)
    callee.erase()
    return len(calls)


def _inline_one(callee: ir.Operation, call: ir.Operation, reason: str, body: ir.Block) -> None:
    # Work on a copy so several calls (or none) of one callee all inline cleanly.
    copy = callee.clone(ip=ir.InsertionPoint(body))
    block = copy.regions[0].blocks[0]
    for arg, operand in zip(block.arguments, call.operands, strict=True):
        arg.replace_all_uses_with(operand)
    ops = [o.operation for o in block.operations]
    ret = ops[-1]
    for op in ops[:-1]:
        op.move_before(call)
        if not is_free(op):
            byoc.set_reason(op, reason)
    for result, value in zip(call.results, ret.operands, strict=True):
        result.replace_all_uses_with(value)
    call.erase()
    copy.erase()
