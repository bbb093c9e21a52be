"""The partitioning pipeline: annotate, composites, merge-regions, outline.

`PartitionPass` (``byoc-opt --partition``) runs the four passes over one shared set of
function graphs: the first three only tag ops, so the graphs stay valid, and building
them once instead of four times is most of the pipeline's cost on large models.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from iree.compiler import ir

from byoc_mlir.codegen.backend import Backend
from byoc_mlir.graph import FunctionGraph, function_graphs
from byoc_mlir.passes import AnnotatePass, CompositesPass, MergeRegionsPass, ModulePass, OutlinePass


@dataclass(frozen=True)
class PartitionOptions:
    """Options of the whole pipeline (see each pass for their meaning)."""

    min_size: int = 1
    max_size: int = 0
    merge_siblings: bool = True
    move_weights: bool = False
    clone_limit: int = 16


def partition_passes(
    backends: Sequence[str | Backend], options: PartitionOptions | None = None
) -> list[ModulePass]:
    """The four passes of ``--partition`` with the given backends (priority = order)."""
    o = options or PartitionOptions()
    names = tuple(b if isinstance(b, str) else b.name for b in backends)
    chosen = tuple(backends)
    return [
        AnnotatePass(chosen),  # type: ignore[arg-type]
        CompositesPass(chosen),  # type: ignore[arg-type]
        MergeRegionsPass(names, o.min_size, o.max_size, o.merge_siblings),
        OutlinePass(o.move_weights, o.clone_limit),
    ]


@dataclass(frozen=True)
class PartitionPass(ModulePass):
    """Options: as `PartitionOptions`, plus backends (``--backend`` fills this)."""

    NAME = "byoc-partition"
    backends: tuple[str, ...] = ()
    min_size: int = 1
    max_size: int = 0
    merge_siblings: bool = True
    move_weights: bool = False
    clone_limit: int = 16

    def run(self, module_op: ir.Operation, graphs: list[FunctionGraph]) -> None:
        options = PartitionOptions(
            self.min_size, self.max_size, self.merge_siblings, self.move_weights, self.clone_limit
        )
        _run_shared(module_op, graphs, partition_passes(self.backends, options))


@contextmanager
def pause_gc() -> Iterator[None]:
    """Pauses Python's cyclic garbage collector while partitioning.

    The pipeline allocates a few objects per op and frees none until it ends; every
    automatic collection rescans all of them, which made the pipeline grow faster than
    linearly with model size (time(10000)/time(1000) ~15 instead of ~10). Reference
    counting still frees everything; the collector resumes (if it was on) afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _run_shared(
    module_op: ir.Operation, graphs: list[FunctionGraph], passes: list[ModulePass]
) -> None:
    """Runs passes over one set of graphs, tags kept in memory between them."""
    for graph in graphs:
        graph.write_tags = False
    with pause_gc():
        for p in passes:
            p.run(module_op, graphs)


def partition(
    module_op: ir.Operation,
    backends: Sequence[str | Backend],
    options: PartitionOptions | None = None,
    verify: bool = True,
) -> None:
    """Runs the whole partitioning pipeline on a module in place.

    Args:
        module_op: the ``builtin.module`` operation (``module.operation``).
        backends: names or `Backend` values, priority = order.
        options: region size limits, sibling merging, weight handling.
        verify: verify the module afterwards (raises ``ir.MLIRError`` on a bug).
    """
    # The passes build attributes and affine maps; they must live in the module's own
    # context, whatever context the caller has entered (or none).
    with module_op.context:
        graphs = list(function_graphs(module_op))
        for p in partition_passes(backends, options):
            p.run(module_op, graphs)
        if verify:
            module_op.verify()
