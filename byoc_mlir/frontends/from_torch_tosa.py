"""``torch.nn.Module`` + example inputs → TOSA, through torch-mlir.

    torch.export.export(module, inputs, strict=False).run_decompositions(`decompositions`)
      → torch-mlir's FxImporter (torch dialect, in torch-mlir's own MLIR context)
      → `TO_TOSA` (what ``torch_mlir.fx.export_and_import(..., output_type="tosa")`` runs)
      → bytecode → parsed into IREE's context → text, as the linalg route hands it over

torch-mlir bundles its own MLIR build, a different revision from IREE's: TOSA's custom
syntax does not parse across (``tosa.const_shape`` prints its attribute differently),
bytecode and the generic op form do. Note that ``get_asm(binary=True)`` returns *text*
as bytes; bytecode comes from ``write_bytecode``. The pipeline is run here rather than
through ``export_and_import`` so that a failure comes back as MLIR diagnostics with the
model's source location (``export_and_import`` loses them to the C++ stderr and writes a
reproducer into the temp directory).

TOSA has no f64 tensors (IREE rejects them: "not profile-aligned"), and torch-mlir
computes variance in f64, so the decomposition table is torch-mlir's default one except:

- ``native_layer_norm`` is kept: torch-mlir lowers it to TOSA directly, in f32;
- ``_safe_softmax`` becomes ``_softmax``: the safe variant compares with -inf in f64 to
  zero rows that are entirely masked; the two differ only there (NaN instead of 0);
- ``var_mean`` and ``var`` are computed in the input's type (GroupNorm, InstanceNorm).

torch-mlir is imported only when this route is taken (``torch_dialect="tosa"``).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from typing import Any

from iree.compiler import ir

from byoc_mlir import _compat
from byoc_mlir.errors import ByocError
from byoc_mlir.frontends import Source, first_line
from byoc_mlir.frontends.from_torch import (
    IMPORT_ERRORS,
    export_program,
    import_program,
    model_name,
)

TORCH_MLIR = "torch-mlir==20261001"
"""The torch-mlir build this route is tested with (it works beside torch 2.13)."""

TO_TOSA = (
    "builtin.module(func.func(torch-match-quantized-custom-ops),"
    "torchdynamo-export-to-torch-backend-pipeline,"
    "torch-backend-to-tosa-backend-pipeline)"
)
"""torch (FX import) → torch backend contract → TOSA, in torch-mlir's context."""

_OP_DUMP = re.compile(r": %[\w#]+ = .*$")
_OPERATOR_NAME = re.compile(r'name = "([\w.]+)"')


def load_torch_tosa(module: Any, example_inputs: Sequence[Any] | None) -> Source:
    """Exports ``module`` on ``example_inputs`` and lowers it to TOSA with torch-mlir.

    Args:
        module: a ``torch.nn.Module``.
        example_inputs: its positional inputs (torch tensors or numpy arrays); their
            shapes and dtypes become the compiled signature (as in the linalg route).

    Returns:
        The TOSA module as text of IREE's MLIR (``@main``, weights as ``dense_resource``).

    Raises:
        ByocError: torch-mlir is not installed, the export fails, or torch-mlir cannot
            express an op in TOSA; the message names the model and the op's source line.
    """
    import torch

    name = model_name(module)
    try:
        from torch_mlir import ir as tm_ir
        from torch_mlir import passmanager as tm_passmanager
        from torch_mlir.dialects import torch as torch_dialect
        from torch_mlir.extras.fx_importer import FxImporter
    except ImportError:
        raise ByocError(
            f"{name}: torch_dialect='tosa' lowers through torch-mlir, which is not "
            f"installed: pip install {TORCH_MLIR} (or use torch_dialect='linalg')"
        ) from None
    program = export_program(module, example_inputs, decompositions(torch))
    context = tm_ir.Context()
    torch_dialect.register_dialect(context)
    try:
        foreign = import_program(program, FxImporter, context)
        with context:
            tm_passmanager.PassManager.parse(TO_TOSA).run(foreign)
    except (tm_ir.MLIRError, *IMPORT_ERRORS) as err:
        raise ByocError(
            f"{name}: torch-mlir could not lower the exported program to TOSA: "
            f"{_reason(err)} "
            f"(torch_dialect='linalg' takes IREE's route instead)"
        ) from None
    module_op = _into_iree(foreign, name)
    return Source(module_op.get_asm(binary=True), name)


def _reason(err: BaseException) -> str:
    """The first diagnostic without the op's printout: name and source line say enough.

    ``failed to legalize operation 'torch.aten.fmod.Scalar' ...: %1 = <the op>``; an op
    torch-mlir has no definition for is a ``torch.operator`` whose name is in the printout.
    """
    line = first_line(err)
    dump = _OP_DUMP.search(line)
    if dump is None:
        return line
    operator = _OPERATOR_NAME.search(dump.group())
    line = line[: dump.start()]
    return line.replace("'torch.operator'", f"'{operator.group(1)}'") if operator else line


def _into_iree(foreign: Any, name: str) -> ir.Operation:
    """Moves a module from torch-mlir's MLIR into IREE's: bytecode, else generic form."""
    buffer = io.BytesIO()
    foreign.write_bytecode(buffer)
    context = _compat.new_context()
    errors = []
    for data in (buffer.getvalue(), foreign.get_asm(print_generic_op_form=True)):
        try:
            with context:
                return ir.Module.parse(data).operation
        except ir.MLIRError as err:
            errors.append(first_line(err))
    raise ByocError(
        f"{name}: IREE cannot read torch-mlir's TOSA (neither as bytecode nor in generic "
        f"form: {errors[-1]}); is torch-mlir the tested build? pip install {TORCH_MLIR}"
    )


def decompositions(torch: Any) -> dict[Any, Any]:
    """torch-mlir's default decomposition table, kept free of f64 (see the module doc)."""
    from torch_mlir.extras.fx_decomp_util import get_decomposition_table

    aten = torch.ops.aten
    table = dict(get_decomposition_table())
    table.pop(aten.native_layer_norm.default, None)
    table[aten._safe_softmax.default] = _softmax
    table[aten.var_mean.correction] = _var_mean
    table[aten.var.correction] = _var
    return table


def _softmax(x: Any, dim: int, dtype: Any = None) -> Any:
    import torch

    if dtype is not None:
        x = x.to(dtype)
    return torch.ops.aten._softmax.default(x, dim, False)


def _var_mean(
    x: Any,
    dim: Sequence[int] | None = None,
    *,
    correction: float | None = None,
    keepdim: bool = False,
) -> tuple[Any, Any]:
    # Two-pass variance in x's own type: torch-mlir's decomposition upcasts to f64.
    import torch

    dims = [d % max(x.dim(), 1) for d in dim] if dim else list(range(x.dim()))
    count = math.prod(x.shape[d] for d in dims)
    mean = torch.mean(x, dims, keepdim=True)
    centred = x - mean
    divisor = max(count - (1 if correction is None else correction), 0)
    var = torch.sum(centred * centred, dims, keepdim=keepdim) / divisor
    return var, (mean if keepdim else torch.squeeze(mean, dims))


def _var(
    x: Any,
    dim: Sequence[int] | None = None,
    *,
    correction: float | None = None,
    keepdim: bool = False,
) -> Any:
    return _var_mean(x, dim, correction=correction, keepdim=keepdim)[0]
