"""The partitioning pipeline: annotate, composites, merge-regions, outline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from iree.compiler import ir

from byoc_mlir.codegen.backend import Backend
from byoc_mlir.passes import AnnotatePass, CompositesPass, MergeRegionsPass, ModulePass, OutlinePass


@dataclass(frozen=True)
class PartitionOptions:
    min_size: int = 1
    max_size: int = 0
    merge_siblings: bool = True
    move_weights: bool = False
    clone_limit: int = 16
    extra: dict[str, object] = field(default_factory=dict)


def partition_passes(
    backends: Sequence[str | Backend], options: PartitionOptions | None = None
) -> list[ModulePass]:
    """The four passes of ``--partition`` with the given backends (priority = order)."""
    o = options or PartitionOptions()
    names = tuple(b if isinstance(b, str) else b.name for b in backends)
    return [
        AnnotatePass(tuple(backends)),  # type: ignore[arg-type]
        CompositesPass(tuple(backends)),  # type: ignore[arg-type]
        MergeRegionsPass(names, o.min_size, o.max_size, o.merge_siblings),
        OutlinePass(o.move_weights, o.clone_limit),
    ]


def partition(
    module_op: ir.Operation,
    backends: Sequence[str | Backend],
    options: PartitionOptions | None = None,
    verify: bool = True,
) -> None:
    """Runs the whole partitioning pipeline on a module in place."""
    for p in partition_passes(backends, options):
        p.apply(module_op)
    if verify:
        module_op.verify()
