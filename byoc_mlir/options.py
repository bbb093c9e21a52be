"""Options of a compile (`CompileOptions`) and IREE's best CPU flags, the baseline."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from byoc_mlir import frontends
from byoc_mlir.codegen.cache import default_root
from byoc_mlir.codegen.workers import (
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT,
)
from byoc_mlir.errors import ByocError
from byoc_mlir.pipeline import PartitionOptions

BEST_CPU_FLAGS = (
    "--iree-hal-target-device=local",
    "--iree-hal-local-target-device-backends=llvm-cpu",
    "--iree-llvmcpu-target-cpu=host",
    "--iree-opt-level=O3",
    "--iree-global-opt-use-im2col-for-convs",
    "--iree-opt-data-tiling",
)
"""IREE at its best on this CPU: the baseline every speed-up is measured against."""


HOST_ONLY = "none"


ISOLATION_MODES = ("auto", "process", "inline")


DEMOTE_F64 = "--iree-input-demote-f64-to-f32"


@dataclass(frozen=True)
class CompileOptions:
    """Options of `compile`.

    Attributes:
        partition: region size limits, sibling merging, weight handling.
        fallback: put a region whose codegen fails back on the host (else: error).
        cache_dir: artifact cache directory; None disables the cache.
        iree_flags: flags for both IREE phases (default: IREE's best CPU settings).
        threads: worker threads (sizes kernels' workgroup counts).
        backend_options: per backend, free-form ``key=value`` options for its hook.
        progress: show a progress bar on stderr when it is a terminal (the CLI's default).
        plan: a placement plan file (see `byoc_mlir.explain.plan`) to replay instead of choosing
            regions; the backends come from the plan.
        save_plan: write this build's placement plan there (as partitioned, before any
            codegen fallback; atomically, once the bundle is published).
        fold_batchnorm: fold inference BatchNorm into the convolution before it (scaled
            weights and one bias add; see `byoc_mlir.passes.fold_batchnorm`).
        torch_dialect: what a torch module is lowered to before IREE's input phase:
            ``"linalg"`` (IREE's FX importer) or ``"tosa"`` (torch-mlir; needs
            ``pip install torch-mlir``). Other models ignore it.
        externalize_params: for an ONNX model: initializers with at least this many
            elements go to the bundle's parameter file ``params.irpa``, read at run
            time, instead of inside the MLIR and the vmfb (0: keep them in). Backends
            that prepack weights (``dnnl``) cannot take convolutions reading them.
        parameters: a parameter file (``.irpa``, scope ``model``) that an ``.mlir`` model's
            ``#stream.parameter.named`` globals read; copied into the bundle.
        hook_isolation: where vendor hooks run (`byoc_mlir.codegen.workers`):
            ``"auto"`` (out of process unless the backend declares ``in_process_safe``,
            as the in-tree ones do), ``"process"`` (every installed backend's), or
            ``"inline"`` (all in process). A backend registered in Python runs in process.
        hook_timeout: seconds one region's hook may take out of process.
        hook_memory_mb: heap one region's hook may allocate out of process (None: no cap).
        jobs: hooks run out of process at once (0: one per core).
        dims: ranges of the model's dynamic dimensions by name (``{"batch": (1, 32)}``;
            ``d0``, ``d1``, ... for the unnamed ``?`` of an ``.mlir`` signature): the
            bundle accepts any size in range, recorded in the manifest and the report.
        dynamic_axes: for a torch module: which input dimensions stay dynamic, named as
            for ``torch.onnx.export`` (``{"x": {0: "batch"}}``: an input by its
            ``forward`` parameter name or position); ranges come from ``dims``.
        tune: measured placement: time every offloaded runtime-route region on the host
            and on its backend, here, and keep the faster (see `byoc_mlir.tune`); the
            times go to the report and the saved plan. Ignored when replaying a plan.
    """

    partition: PartitionOptions = field(default_factory=PartitionOptions)
    fallback: bool = True
    cache_dir: Path | None = field(default_factory=default_root)
    iree_flags: tuple[str, ...] = BEST_CPU_FLAGS
    threads: int = os.cpu_count() or 1
    backend_options: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    progress: bool = False
    plan: str | Path | None = None
    save_plan: str | Path | None = None
    fold_batchnorm: bool = True
    torch_dialect: frontends.TorchDialect = "linalg"
    externalize_params: int = 0
    parameters: str | Path | None = None
    demote_f64: bool = False
    bind_inputs: Mapping[str, Any] | None = None
    tune: bool = False
    hook_isolation: str = "auto"
    hook_timeout: float = DEFAULT_TIMEOUT
    hook_memory_mb: int | None = DEFAULT_MEMORY_MB
    jobs: int = 0
    dims: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    dynamic_axes: Mapping[int | str, Mapping[int, str]] | None = None

    @property
    def phase_flags(self) -> list[str]:
        """`iree_flags` for both IREE phases, with f64 demotion as `demote_f64` says
        (IREE demotes by default) unless the flags already decide it."""
        if any(f.startswith(DEMOTE_F64) for f in self.iree_flags):
            return list(self.iree_flags)
        return [*self.iree_flags, f"{DEMOTE_F64}={str(self.demote_f64).lower()}"]

    def __post_init__(self) -> None:
        frontends.check_torch_dialect(self.torch_dialect)
        if self.hook_isolation not in ISOLATION_MODES:
            raise ByocError(
                f"hook_isolation={self.hook_isolation!r} (valid: {', '.join(ISOLATION_MODES)})"
            )
        if self.hook_timeout <= 0 or (self.hook_memory_mb is not None and self.hook_memory_mb <= 0):
            raise ByocError("hook_timeout and hook_memory_mb must be positive")
        if self.jobs < 0:
            raise ByocError(f"jobs={self.jobs} (valid: 0 for one per core, or a positive count)")
        for name, span in self.dims.items():
            if len(span) != 2 or not 0 <= span[0] <= span[1]:
                raise ByocError(
                    f"dims[{name!r}] = {span} (valid: (low, high) with 0 <= low <= high)"
                )
        if self.externalize_params < 0:
            raise ByocError(
                f"externalize_params={self.externalize_params} (valid: 0 to keep weights "
                f"in the model, or a positive element count)"
            )
