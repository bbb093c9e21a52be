"""The dataflow graph of one function body, as the passes see it.

Nodes are the body's top-level ops except the terminator and *free* ops: constants and
static ``tensor.empty`` (ops without operands or regions that any region may clone).
Edges run from an op to every op using one of its results, including uses captured
inside nested regions (a generic body reading an outer scalar). Program order is a
topological order of this graph; passes rely on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from iree.compiler import ir
from iree.compiler.dialects import arith, tensor, tosa

from byoc_mlir import _compat
from byoc_mlir.dialects import byoc

FREE_OPS = frozenset(
    {arith.ConstantOp.OPERATION_NAME, tensor.EmptyOp.OPERATION_NAME, tosa.ConstOp.OPERATION_NAME}
)
ARG = -1
"""Producer index of function arguments and free ops in `FunctionGraph.producer`."""


def is_free(op: ir.Operation) -> bool:
    return op.name in FREE_OPS and len(op.operands) == 0 and len(op.regions) == 0


def partitionable_functions(
    module_op: ir.Operation,
) -> Iterator[tuple[ir.Operation, _compat.FuncFlavor]]:
    """Functions with a body that are not themselves outlined regions."""
    for op in list(_compat.module_body(module_op).operations):
        op = op.operation
        flavor = _compat.FLAVORS.get(op.name)
        if flavor is None or byoc.get_target(op) is not None:
            continue
        if len(op.regions[0].blocks) == 0:
            continue
        yield op, flavor


@dataclass
class FunctionGraph:
    func: ir.Operation
    flavor: _compat.FuncFlavor
    block: ir.Block
    ops: list[ir.Operation] = field(default_factory=list)
    """Nodes in program order (no free ops, no terminator)."""
    free: dict[ir.Value, ir.Operation] = field(default_factory=dict)
    """Results of free ops -> the op."""
    index: dict[ir.Operation, int] = field(default_factory=dict)
    producer: dict[ir.Value, int] = field(default_factory=dict)
    """Every top-level value -> index of its node, or `ARG` (argument / free op)."""
    preds: list[list[int]] = field(default_factory=list)
    """Per node: distinct producer node indices, in first-use order."""
    terminator: ir.Operation | None = None

    @staticmethod
    def build(func: ir.Operation, flavor: _compat.FuncFlavor) -> FunctionGraph:
        block = func.regions[0].blocks[0]
        g = FunctionGraph(func, flavor, block)
        producer = g.producer
        for arg in block.arguments:
            producer[arg] = ARG
        all_ops = [o.operation for o in block.operations]
        g.terminator = all_ops[-1] if all_ops else None
        for op in all_ops[:-1]:
            if is_free(op):
                for r in op.results:
                    producer[r] = ARG
                    g.free[r] = op
                continue
            i = len(g.ops)
            g.ops.append(op)
            g.index[op] = i
            preds: list[int] = []
            seen: set[int] = set()
            for v in _operands_deep(op):
                p = producer.get(v, ARG)
                if p != ARG and p not in seen:
                    seen.add(p)
                    preds.append(p)
            g.preds.append(preds)
            for r in op.results:
                producer[r] = i
        return g

    def top_level(self, op: ir.Operation) -> ir.Operation | None:
        """The top-level op of this body that is ``op`` or contains it (None if outside)."""
        op = op.operation
        while op is not None:
            if op in self.index or (self.terminator is not None and op == self.terminator):
                return op
            parent = op.parent
            if parent is None or parent == self.func:
                return op if parent == self.func else None
            op = parent.operation
        return None


def _operands_deep(op: ir.Operation) -> Iterator[ir.Value]:
    """Operands of ``op`` and of every op nested in it."""
    yield from op.operands
    for region in op.regions:
        for block in region.blocks:
            for inner in block.operations:
                yield from _operands_deep(inner.operation)


def data_inputs(op: ir.Operation) -> list[ir.Value]:
    """The operands patterns match against: ``ins`` for destination-style ops, else all."""
    attrs = op.attributes
    if "operandSegmentSizes" in attrs and op.name.startswith("linalg."):
        n_in = ir.DenseI32ArrayAttr(attrs["operandSegmentSizes"])[0]
        return list(op.operands)[:n_in]
    return list(op.operands)


def function_graphs(module_op: ir.Operation) -> Iterator[FunctionGraph]:
    for func, flavor in partitionable_functions(module_op):
        yield FunctionGraph.build(func, flavor)
