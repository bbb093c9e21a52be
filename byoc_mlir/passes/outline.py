"""``byoc-outline``: each tagged region becomes ``@<backend>.<name>``, replaced by a call.

A thin pass over `byoc_mlir.outlining.outline` (the one generic mechanism).
"""

from __future__ import annotations

from dataclasses import dataclass

from iree.compiler import ir

from byoc_mlir.dataflow import FunctionGraph
from byoc_mlir.outlining.outline import OutlineOptions, outline_module
from byoc_mlir.passes.base import ModulePass


@dataclass(frozen=True)
class OutlinePass(ModulePass):
    """Options:
    move-weights: clone every constant a region reads into its function.
    clone-limit: constants with at most this many elements are cloned in.
    weights-for: backends whose regions get every constant moved in (``backend``), or
        only those holding a composite (``backend.composite``).
    """

    NAME = "byoc-outline"
    move_weights: bool = False
    clone_limit: int = 16
    weights_for: tuple[str, ...] = ()

    def run(self, module_op: ir.Operation, graphs: list[FunctionGraph]) -> None:
        options = OutlineOptions(self.move_weights, self.clone_limit, frozenset(self.weights_for))
        outline_module(module_op, options, graphs)
