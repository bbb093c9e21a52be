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
from typing import Any

from iree.compiler import ir
from iree.compiler.dialects import arith, tensor, tosa

from byoc_mlir import _compat
from byoc_mlir.dialects import byoc

GLOBAL_LOAD = "util.global.load"
"""A weight read from a global (an externalised parameter): free like a constant, but
always passed to regions as an argument (its value is not in the IR)."""
FREE_OPS = frozenset(
    {
        arith.ConstantOp.OPERATION_NAME,
        tensor.EmptyOp.OPERATION_NAME,
        tosa.ConstOp.OPERATION_NAME,
        GLOBAL_LOAD,
    }
)
ARG = -1
"""Producer index of function arguments and free ops in `FunctionGraph.producer`."""
RETURN = -2
"""User index of the function's terminator in `FunctionGraph.succs`."""


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
class Tags:
    """Per-node partitioning tags held in memory (None: not set by this pipeline yet)."""

    accept: list[tuple[str, ...]] | None = None
    reject: list[dict[str, str]] | None = None
    composite: list[byoc.CompositeTag | None] | None = None
    region: list[tuple[str, int] | None] | None = None


@dataclass
class FunctionGraph:
    func: ir.Operation
    flavor: _compat.FuncFlavor
    block: ir.Block
    ops: list[ir.Operation] = field(default_factory=list)
    """Nodes in program order (no free ops, no terminator)."""
    free: dict[ir.Value, ir.Operation] = field(default_factory=dict)
    """Results of free ops -> the op."""
    index: dict[int, int] = field(default_factory=dict)
    """`_compat.op_key` of each node -> its index."""
    producer: dict[ir.Value, int] = field(default_factory=dict)
    """Every top-level value -> index of its node, or `ARG` (argument / free op)."""
    preds: list[list[int]] = field(default_factory=list)
    """Per node: distinct producer node indices, in first-use order."""
    succs: list[list[int]] = field(default_factory=list)
    """Per node: distinct user node indices in program order (`RETURN`: the terminator),
    as built: passes that move ops (outlining) read uses from the IR instead."""
    operands: list[list[ir.Value]] = field(default_factory=list)
    """Per node: its own operands."""
    captures: list[list[tuple[ir.Operation, int, ir.Value]]] = field(default_factory=list)
    """Per node: (nested op, operand number, value) for nested uses of top-level values."""
    terminator: ir.Operation | None = None
    write_tags: bool = True
    """Whether passes write intermediate tags (accept, reject, composite, region) into the
    IR. A pipeline that keeps them in `tags` turns this off: only the final results
    (outlined functions, host reasons) are written, which halves the attribute traffic."""
    tags: Tags = field(default_factory=lambda: Tags())
    memo: dict[Any, Any] = field(default_factory=dict)
    """Per-graph caches for passes (keyed by the pass's own key)."""
    _kinds: list[Any] | None = None
    _input_producers: dict[int, list[int]] = field(default_factory=dict)

    # Tags: from memory when a pass of this pipeline set them, else from the IR.

    def accept_of(self, i: int) -> tuple[str, ...]:
        acc = self.tags.accept
        return acc[i] if acc is not None else byoc.get_accept(self.ops[i])

    def reject_of(self, i: int) -> dict[str, str]:
        rej = self.tags.reject
        return rej[i] if rej is not None else byoc.get_reject(self.ops[i])

    def composite_of(self, i: int) -> byoc.CompositeTag | None:
        comp = self.tags.composite
        return comp[i] if comp is not None else byoc.get_composite(self.ops[i])

    def region_of(self, i: int) -> tuple[str, int] | None:
        reg = self.tags.region
        return reg[i] if reg is not None else byoc.get_region(self.ops[i])

    def input_producers(self, i: int) -> list[int]:
        """Producer node (or `ARG`) of each data input of node ``i`` (see `data_input_count`)."""
        prods = self._input_producers.get(i)
        if prods is None:
            n = data_input_count(self.ops[i])
            producer = self.producer
            prods = [producer.get(v, ARG) for v in self.operands[i][:n]]
            self._input_producers[i] = prods
        return prods

    def kinds(self) -> list[Any]:
        """Each node's op kind (`byoc_mlir.codegen.backend.classify`), computed once."""
        if self._kinds is None:
            from byoc_mlir.codegen.backend import classify

            self._kinds = [classify(op) for op in self.ops]
        return self._kinds

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
            g.index[_compat.op_key(op)] = i
            preds: list[int] = []
            operands = list(op.operands)
            for v in operands:
                p = producer.get(v, ARG)
                if p != ARG and p not in preds:
                    preds.append(p)
            captures: list[tuple[ir.Operation, int, ir.Value]] = []
            if len(op.regions) and op.name not in _SELF_CONTAINED:
                for owner, k, v in nested_operand_slots(op):
                    q = producer.get(v)
                    if q is None:
                        continue
                    captures.append((owner, k, v))
                    if q != ARG and q not in preds:
                        preds.append(q)
            g.preds.append(preds)
            g.succs.append([])
            for p in preds:
                g.succs[p].append(i)
            g.operands.append(operands)
            g.captures.append(captures)
            for r in op.results:
                producer[r] = i
        if g.terminator is not None:
            for v in g.terminator.operands:
                p = producer.get(v, ARG)
                if p != ARG and g.succs[p][-1:] != [RETURN]:
                    g.succs[p].append(RETURN)
        return g

    def node_of(self, op: ir.Operation) -> int | None:
        """The node that is ``op`` or contains it; None for the terminator, free ops and
        ops outside this function."""
        op = op.operation
        n = self.index.get(_compat.op_key(op))
        while n is None:
            parent = op.parent
            if parent is None or parent == self.func:
                return None
            op = parent.operation
            n = self.index.get(_compat.op_key(op))
        return n


_SELF_CONTAINED = frozenset(
    "linalg." + name
    for name in (
        "matmul", "batch_matmul", "fill", "transpose", "broadcast", "copy",
        "conv_2d_nchw_fchw", "conv_2d_nhwc_hwcf", "depthwise_conv_2d_nchw_chw",
        "pooling_nchw_max", "pooling_nchw_sum", "pooling_nhwc_max", "pooling_nhwc_sum",
    )
)  # fmt: skip
"""Named linalg ops: their bodies come from the op's definition and read only their
block arguments, so they capture nothing (walking them costs ~1 µs per nested operand)."""


def nested_operand_slots(op: ir.Operation) -> Iterator[tuple[ir.Operation, int, ir.Value]]:
    """(owner, operand number, value) for every op nested inside ``op`` (not ``op`` itself)."""
    for region in op.regions:
        for block in region.blocks:
            for inner in block.operations:
                for k, v in enumerate(inner.operands):
                    yield inner, k, v
                if len(inner.regions):
                    yield from nested_operand_slots(inner)


def data_input_count(op: ir.Operation) -> int:
    """How many leading operands are data inputs: ``ins`` for linalg ops, else all."""
    if op.name.startswith("linalg."):
        attrs = op.attributes
        if "operandSegmentSizes" in attrs:
            return int(attrs["operandSegmentSizes"][0])
    return len(op.operands)


def function_graphs(module_op: ir.Operation) -> Iterator[FunctionGraph]:
    for func, flavor in partitionable_functions(module_op):
        yield FunctionGraph.build(func, flavor)
