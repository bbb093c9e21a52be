"""Python-defined passes, one per file; ``NAME`` == file name == lit test name."""

from byoc_mlir.passes.annotate import AnnotatePass
from byoc_mlir.passes.base import ModulePass
from byoc_mlir.passes.composites import CompositesPass
from byoc_mlir.passes.merge_regions import MergeRegionsPass
from byoc_mlir.passes.outline import OutlinePass

PASSES: dict[str, type[ModulePass]] = {
    p.NAME: p for p in (AnnotatePass, CompositesPass, MergeRegionsPass, OutlinePass)
}
"""Every byoc pass by its command-line name."""

__all__ = [
    "PASSES",
    "AnnotatePass",
    "CompositesPass",
    "MergeRegionsPass",
    "ModulePass",
    "OutlinePass",
]
