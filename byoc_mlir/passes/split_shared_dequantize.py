"""``byoc-split-shared-dequantize``: a dequantize read by several ops is duplicated, one
copy per reader.

In a QDQ model a quantized tensor is dequantized once and the float value read by every
consumer (SqueezeNet's expand 1x1 and 3x3 convolutions read one squeeze output). A
quantized unit (dequantize → op → quantize) is one partitioning unit, and a unit cannot
take a value another unit also reads without splitting: so each reader gets its own
``DEQUANTIZE`` generic (onnxruntime's QDQ propagation does the same to its graphs). The
copies are elementwise and cheap; IREE fuses each into its consumer on the host.
"""

from __future__ import annotations

from dataclasses import dataclass

from iree.compiler import ir

from byoc_mlir.codegen.recognisers import DEQUANTIZE
from byoc_mlir.dataflow import FunctionGraph
from byoc_mlir.passes.base import ModulePass


@dataclass(frozen=True)
class SplitSharedDequantizePass(ModulePass):
    """No options."""

    NAME = "byoc-split-shared-dequantize"

    def run(self, module_op: ir.Operation, graphs: list[FunctionGraph]) -> None:
        with module_op.context:
            for graph in graphs:
                split_shared_dequantize(graph)


def split_shared_dequantize(graph: FunctionGraph) -> int:
    """Rewrites one function; returns how many copies were made."""
    copies = 0
    for op in list(graph.ops):
        if len(op.results) != 1 or not DEQUANTIZE.matches(op):
            continue
        uses = [(u.owner, u.operand_number) for u in op.results[0].uses]
        for owner, index in uses[1:]:  # the first reader keeps the original
            copy = op.clone(ir.InsertionPoint(op))
            owner.operands[index] = copy.results[0]
            copies += 1
    return copies
