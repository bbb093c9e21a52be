"""Python-defined passes, one per file; ``NAME`` == file name == lit test name."""

from byoc_mlir.passes.annotate import AnnotatePass
from byoc_mlir.passes.apply_plan import ApplyPlanPass
from byoc_mlir.passes.base import ModulePass
from byoc_mlir.passes.broadcast_extracts import FoldBroadcastExtractsPass
from byoc_mlir.passes.composites import CompositesPass
from byoc_mlir.passes.fold_batchnorm import FoldBatchnormPass
from byoc_mlir.passes.fold_constants import FoldConstantsPass
from byoc_mlir.passes.fold_scalar_casts import FoldScalarCastsPass
from byoc_mlir.passes.fold_unit_broadcasts import FoldUnitBroadcastsPass
from byoc_mlir.passes.guard_data_tiling import GuardDataTilingPass
from byoc_mlir.passes.merge_regions import MergeRegionsPass
from byoc_mlir.passes.outline import OutlinePass
from byoc_mlir.passes.split_bias_inits import SplitBiasInitsPass
from byoc_mlir.passes.split_shared_dequantize import SplitSharedDequantizePass
from byoc_mlir.passes.strip_asserts import StripAssertsPass
from byoc_mlir.passes.trim_conv_inputs import TrimConvInputsPass

PASSES: dict[str, type[ModulePass]] = {
    p.NAME: p
    for p in (
        AnnotatePass,
        CompositesPass,
        MergeRegionsPass,
        OutlinePass,
        ApplyPlanPass,
        StripAssertsPass,
        FoldScalarCastsPass,
        FoldUnitBroadcastsPass,
        FoldBroadcastExtractsPass,
        SplitBiasInitsPass,
        SplitSharedDequantizePass,
        FoldConstantsPass,
        FoldBatchnormPass,
        GuardDataTilingPass,
        TrimConvInputsPass,
    )
}
"""Every byoc pass by its command-line name."""

__all__ = [
    "PASSES",
    "AnnotatePass",
    "ApplyPlanPass",
    "CompositesPass",
    "FoldBatchnormPass",
    "FoldConstantsPass",
    "FoldScalarCastsPass",
    "FoldUnitBroadcastsPass",
    "FoldBroadcastExtractsPass",
    "GuardDataTilingPass",
    "MergeRegionsPass",
    "ModulePass",
    "OutlinePass",
    "SplitBiasInitsPass",
    "SplitSharedDequantizePass",
    "StripAssertsPass",
    "TrimConvInputsPass",
]
