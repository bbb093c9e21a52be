"""What the driver does to every model between IREE's input phase and partitioning.

Frontends emit patterns no backend should have to know (torch's ``cf.assert`` per
BatchNorm, f64 ``eps`` casts, conv bias inits, ``Cx1x1`` per-channel reads, transposed
weights, BatchNorm after a conv); each pass here rewrites one of them into the plain
form the recognisers match. The same steps run for host-only builds, so a bundle and its
host-only reference stay comparable.

Every step must leave a module that verifies. The module is verified after each one;
a step that breaks it (a byoc_mlir bug) is skipped — the module is parsed again from
the input phase's text and the steps rerun without it — and the report's notes name
it with the verifier's message, so the model still compiles, as IREE alone would.
"""

from __future__ import annotations

from iree.compiler import ir

from byoc_mlir import _compat
from byoc_mlir.frontends import first_line
from byoc_mlir.passes.base import ModulePass
from byoc_mlir.passes.broadcast_extracts import FoldBroadcastExtractsPass
from byoc_mlir.passes.fold_batchnorm import FoldBatchnormPass
from byoc_mlir.passes.fold_constants import FoldConstantsPass
from byoc_mlir.passes.fold_scalar_casts import FoldScalarCastsPass
from byoc_mlir.passes.fold_unit_broadcasts import FoldUnitBroadcastsPass
from byoc_mlir.passes.split_bias_inits import SplitBiasInitsPass
from byoc_mlir.passes.split_shared_dequantize import SplitSharedDequantizePass
from byoc_mlir.passes.strip_asserts import StripAssertsPass


def steps(fold_batchnorm: bool = True) -> list[ModulePass]:
    """The normalisation passes in the order the driver runs them."""
    chosen: list[ModulePass] = [
        StripAssertsPass(),  # frontends' runtime checks (one per BatchNorm): host-only
        FoldScalarCastsPass(),  # torch's f64 eps truncated to f32 in generic bodies
        SplitBiasInitsPass(),  # conv/matmul bias inits -> bias adds
        FoldBroadcastExtractsPass(),  # dynamic ONNX broadcasts (extracts) -> indexing maps
        FoldUnitBroadcastsPass(),  # per-channel vectors read directly
        SplitSharedDequantizePass(),  # one dequantize per reader: QDQ units stay whole
        FoldConstantsPass(),  # Linear's weight transposes, BatchNorm's rsqrt
    ]
    if fold_batchnorm:
        chosen.append(FoldBatchnormPass())  # conv -> BatchNorm: scaled conv + bias
    return chosen


def normalise(
    text: str, context: ir.Context, filename: str, fold_batchnorm: bool, notes: list[str]
) -> ir.Module:
    """Parses the input phase's ``text`` and runs `steps` on it, each verified.

    A step whose result does not verify is left out (the run starts again from
    ``text``) and noted in ``notes``.
    """
    skipped: set[str] = set()
    while True:
        module = _compat.parse_module(text, context, filename)
        broken = _run(module.operation, steps(fold_batchnorm), skipped)
        if broken is None:
            return module
        name, message = broken
        skipped.add(name)
        notes.append(
            f"{name} skipped: it left invalid IR on this model (a byoc_mlir bug; please "
            f"report it): {message}"
        )


def _run(
    module_op: ir.Operation, passes: list[ModulePass], skipped: set[str]
) -> tuple[str, str] | None:
    with module_op.context:
        for p in passes:
            if p.NAME in skipped:
                continue
            p.apply(module_op)
            try:
                module_op.verify()
            except ir.MLIRError as err:
                return p.NAME, first_line(err)
    return None
