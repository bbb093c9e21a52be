"""``torch.nn.Module`` + example inputs → linalg, without leaving IREE's MLIR.

    torch.export.export(module, inputs, strict=False).run_decompositions(DECOMPOSITIONS)
      → iree.compiler.extras.fx_importer.FxImporter (torch dialect, weights frozen in as
        dense_resource constants)
      → torch-backend-to-linalg-on-tensors pipeline (linalg, arith, tensor, math)
      → printed (the importer's context is its own; ``get_asm(binary=True)`` is text)

The module is exported in eval mode (inference: BatchNorm uses its running statistics,
dropout is off) and put back in the mode it was in. The decomposition table is
torch-mlir's default one: it lowers what the linalg conversion lacks (BatchNorm,
LayerNorm, addmm, SDPA...) and keeps what it converts well (convolution, pooling).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from iree.compiler import ir, passmanager

from byoc_mlir import _compat
from byoc_mlir.errors import ByocError
from byoc_mlir.frontends import Source, first_line, torch_signature

TO_LINALG = (
    "builtin.module(func.func(torch-match-quantized-custom-ops),"
    "torchdynamo-export-to-torch-backend-pipeline,"
    "torch-backend-to-linalg-on-tensors-backend-pipeline)"
)
"""torch (FX import) → linalg-on-tensors, the pipeline IREE's torch input uses."""

DECOMPOSITIONS = (
    "embedding_dense_backward",
    "native_layer_norm_backward",
    "slice_backward",
    "select_backward",
    "norm.ScalarOpt_dim",
    "native_group_norm",
    "upsample_bilinear2d.vec",
    "native_layer_norm",
    "masked_fill.Tensor",
    "masked_fill.Scalar",
    "t",
    "addmm",
    "_native_batch_norm_legit_functional",
    "_native_batch_norm_legit_no_training",
    "_native_batch_norm_legit",
    "_native_batch_norm_legit.no_stats",
    "squeeze.dims",
    "im2col",
    "index_copy",
    "log_sigmoid_forward",
    "unsafe_split.Tensor",
    "dot",
    "_adaptive_avg_pool2d",
    "_prelu_kernel",
    "full",
    "logsumexp",
    "_log_softmax",
    "_to_copy",
    "lift_fresh_copy.default",
    "_unsafe_index.Tensor",
    "linspace.default",
    "nan_to_num.default",
    "unbind",
    "diag",
    "xlogy",
    "_scaled_dot_product_flash_attention_for_cpu",
    "scaled_dot_product_attention",
)
"""aten ops decomposed before import (torch-mlir's default table; absent ones skipped)."""


def load_torch(
    module: Any,
    example_inputs: Sequence[Any] | None,
    dynamic_axes: DynamicAxes | None = None,
    ranges: Mapping[str, tuple[int, int]] | None = None,
) -> Source:
    """Exports ``module`` on ``example_inputs`` and lowers it to linalg (as MLIR text).

    Args:
        module: a ``torch.nn.Module``.
        example_inputs: its positional inputs (torch tensors or numpy arrays; one tensor
            alone is fine); their shapes and dtypes become the compiled signature.
        dynamic_axes: dimensions that stay dynamic, named, as for ``torch.onnx.export``:
            ``{"x": {0: "batch"}}`` (an input by its ``forward`` parameter name or its
            position); one name is one size. Exported as ``torch.export.Dim`` s.
        ranges: a range per dimension name (``Dim(min=, max=)``).
    """
    import torch

    name = model_name(module)
    dims = None
    dynamic_shapes = None
    if dynamic_axes:
        dims, dynamic_shapes = _dynamic_shapes(torch, module, example_inputs, dynamic_axes, ranges)
    program = export_program(module, example_inputs, _decomposition_table(torch), dynamic_shapes)
    from iree.compiler.extras.fx_importer import FxImporter

    try:
        module_op = import_program(program, FxImporter, _compat.new_context())
        signature = torch_signature(module_op)
        with module_op.context:
            passmanager.PassManager.parse(TO_LINALG).run(module_op)
    except (ir.MLIRError, *IMPORT_ERRORS) as err:
        raise ByocError(
            f"{name}: lowering the exported program to linalg failed: {first_line(err)}"
        ) from None
    return Source(
        module_op.get_asm(binary=True),
        name,
        signature=signature,
        dims=dims,
        ranges=_ranges(program),
    )


DynamicAxes = Mapping[int | str, Mapping[int, str]]


def _dynamic_shapes(
    torch: Any,
    module: Any,
    example_inputs: Sequence[Any] | None,
    axes: DynamicAxes,
    ranges: Mapping[str, tuple[int, int]] | None,
) -> tuple[tuple[tuple[str | None, ...], ...], tuple[dict[int, Any], ...]]:
    """(names per input dimension, ``torch.export``'s ``dynamic_shapes``) for ``axes``.

    Raises:
        ByocError: an input or dimension ``axes`` names that the module does not take.
    """
    name = model_name(module)
    if isinstance(module, torch.export.ExportedProgram):
        raise ByocError(f"{name}: dynamic_axes are for a torch.nn.Module (a program has its own)")
    items = example_inputs if isinstance(example_inputs, list | tuple) else (example_inputs,)
    try:
        params = list(inspect.signature(module.forward).parameters)[: len(items)]
    except (TypeError, ValueError):
        params = []
    shapes = [tuple(getattr(x, "shape", ())) for x in items]
    named: list[list[str | None]] = [[None] * len(s) for s in shapes]
    dim_of: dict[str, Any] = {}
    for key, per_axis in axes.items():
        index = key if isinstance(key, int) else (params.index(key) if key in params else -1)
        if not 0 <= index < len(shapes):
            valid = ", ".join([*params, *(str(i) for i in range(len(shapes)))])
            raise ByocError(f"{name}: dynamic_axes names input {key!r} (valid: {valid})")
        for axis, dim in per_axis.items():
            if not 0 <= axis < len(shapes[index]):
                raise ByocError(
                    f"{name}: dynamic_axes[{key!r}] names dimension {axis} of a rank-"
                    f"{len(shapes[index])} input"
                )
            named[index][axis] = dim
            if dim not in dim_of:
                lo, hi = (ranges or {}).get(dim, (None, None))
                dim_of[dim] = torch.export.Dim(dim, min=lo, max=hi)
    dynamic = tuple(
        {axis: dim_of[d] for axis, d in enumerate(row) if d is not None} or None for row in named
    )
    return tuple(tuple(row) for row in named), dynamic  # type: ignore[return-value]


def _ranges(program: Any) -> tuple[tuple[tuple[int, int] | None, ...], ...] | None:
    """Each user input's dimension ranges from ``torch.export``'s range constraints
    (``Dim("batch", min=1, max=32)``); None for a static or unbounded dimension."""
    import torch

    users = set(program.graph_signature.user_inputs)
    out = []
    for node in program.graph.nodes:
        if node.op != "placeholder" or node.name not in users:
            continue
        val = node.meta.get("val")
        dims: list[tuple[int, int] | None] = []
        for d in getattr(val, "shape", ()):
            span = None
            if isinstance(d, torch.SymInt):
                vr = program.range_constraints.get(d.node.expr)
                if vr is not None and vr.upper.is_finite and vr.lower.is_finite:
                    span = (int(vr.lower), int(vr.upper))
            dims.append(span)
        out.append(tuple(dims))
    return tuple(out) if any(r for dims in out for r in dims) else None


def model_name(module: Any) -> str:
    """How errors and locations name a torch module: ``<torch Net>``."""
    return f"<torch {type(module).__name__}>"


IMPORT_ERRORS = (NotImplementedError, ValueError, KeyError, AssertionError)
"""What the FX importers raise on a program they cannot import besides MLIR errors: they
reject some with assert (e.g. LSTM's heterogeneous weight lists), some with exceptions."""


def import_program(program: Any, importer_class: Any, context: Any) -> Any:
    """``program`` (an exported program) imported as ``@main`` into ``context`` by an FX
    importer (IREE's or torch-mlir's: each lives in its own MLIR bindings)."""
    importer = importer_class(context=context)
    importer.import_frozen_program(program, func_name="main")
    return importer.module.operation


def export_program(
    module: Any,
    example_inputs: Sequence[Any] | None,
    decompositions: dict[Any, Any],
    dynamic_shapes: Any = None,
) -> Any:
    """``torch.export`` in eval mode (the module's mode is restored), then decomposed; an
    ``ExportedProgram`` is only decomposed.

    Returns:
        The decomposed ``torch.export.ExportedProgram``.

    Raises:
        ByocError: no example inputs, an input that is not a tensor, or a failed export.
    """
    import torch

    name = model_name(module)
    if isinstance(module, torch.export.ExportedProgram):
        try:
            return module.run_decompositions(decompositions)
        except Exception as err:  # noqa: BLE001 - as for export below
            raise ByocError(f"{name}: decomposing the program failed: {first_line(err)}") from None
    if example_inputs is None:
        raise ByocError(
            f"{name}: a torch.nn.Module needs example inputs to be exported: "
            f"byoc_mlir.compile(model, backends, example_inputs=(x,))"
        )
    args = _as_tensors(torch, example_inputs, name)
    was_training = module.training
    switched = _set_training(module, False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch-internal deprecations
            program = torch.export.export(module, args, dynamic_shapes=dynamic_shapes, strict=False)
            return program.run_decompositions(decompositions)
    except Exception as err:  # noqa: BLE001 - export fails in many ways; all are the model's
        raise ByocError(f"{name}: torch.export failed: {first_line(err)}") from None
    finally:
        if switched:
            module.train(was_training)


def _set_training(module: Any, training: bool) -> bool:
    """``module.train(training)``; False where the module refuses: a module that is
    already an exported graph (pt2e's ``convert_pt2e`` output) keeps the mode it was
    exported in, and its ``eval()`` raises ``NotImplementedError``."""
    try:
        module.train(training)
    except NotImplementedError:
        return False
    return True


def _as_tensors(torch: Any, inputs: Any, name: str) -> tuple[Any, ...]:
    items = (inputs,) if not isinstance(inputs, list | tuple) else tuple(inputs)
    out = []
    for i, x in enumerate(items):
        if isinstance(x, torch.Tensor):
            out.append(x)
            continue
        try:
            out.append(torch.as_tensor(x))
        except (TypeError, RuntimeError, ValueError):
            raise ByocError(
                f"{name}: example input {i} is a {type(x).__name__}; expected a torch "
                f"tensor or a numpy array"
            ) from None
    return tuple(out)


def _decomposition_table(torch: Any) -> dict[Any, Any]:
    from torch._decomp import get_decompositions

    ops = []
    for spelled in DECOMPOSITIONS:
        packet, _, overload = spelled.partition(".")
        op = getattr(torch.ops.aten, packet, None)
        if op is not None and overload:
            op = getattr(op, overload, None)
        if op is not None:
            ops.append(op)
    return get_decompositions(ops)  # type: ignore[no-any-return]
