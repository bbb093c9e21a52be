"""``.onnx`` models through IREE's bundled ONNX importer, lowered to linalg.

What ``iree-import-onnx --opset-version 17`` does, in process: load (with external data
from the model's directory), upgrade older opsets to `OPSET` (opset-9 MaxPool and
friends do not lower otherwise), check, infer shapes with data propagation, import into
a fresh MLIR context, verify, lower to linalg there (`TO_LINALG`) and hand over as
text. Lowering here rather than in IREE's input phase keeps the entry a plain
``@main`` on tensors: IREE's torch input conversion would wrap it in its buffer-view ABI
(``@graph$async`` with fences), which is not a partitionable signature.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from iree.compiler import ir, passmanager

from byoc_mlir import _compat, isolate
from byoc_mlir.errors import ByocError
from byoc_mlir.frontends import (
    Source,
    first_line,
    onnx_decompose,
    onnx_guards,
    onnx_quant,
    onnx_rewrite,
    torch_signature,
)

OPSET = 17
"""Models with an older default-domain opset are upgraded to this one before import."""

TO_LINALG = (
    "builtin.module(torch-onnx-to-torch-backend-pipeline,"
    "torch-backend-to-linalg-on-tensors-backend-pipeline)"
)
"""``torch.operator "onnx.*"`` → torch backend contract → linalg-on-tensors."""

TO_LINALG_WITH_GLOBALS = (
    "builtin.module(torch-onnx-to-torch-backend-pipeline,"
    "func.func(torch-restructure-non-constant-axes,torch-fuse-quantized-ops,"
    "convert-torch-to-tmtensor,canonicalize,convert-torch-to-linalg,canonicalize,"
    "convert-torch-to-scf,convert-torch-to-arith,convert-torch-to-tensor),"
    "convert-torch-conversion-to-mlprogram,"
    "func.func(memref-expand,canonicalize,resolve-shaped-type-result-dims,cse),"
    "torch-func-backend-type-conversion,"
    "func.func(canonicalize,torch-finalizing-backend-type-conversion))"
)
"""`TO_LINALG` without its last step, the linalg-on-tensors contract check, which
refuses the ``util.global`` weights of an externalised model (IREE compiles them)."""

PARAMS_SCOPE = "model"
"""The scope of externalised ONNX weights in the parameter file (``model::name``)."""


def load_onnx(
    path: Path,
    opset: int = OPSET,
    params: tuple[int, Path] | None = None,
    bind: Mapping[str, Any] | None = None,
) -> Source:
    """Loads an ``.onnx`` file (external data files are looked up beside it)."""
    onnx = _onnx()
    if not path.is_file():
        raise ByocError(f"cannot read {path}: no such file")
    try:
        model = onnx.load(str(path))
    except Exception as err:  # noqa: BLE001 - protobuf/onnx raise many unrelated types
        raise ByocError(
            f"{path} is not an ONNX model (expected a serialised onnx.ModelProto): "
            f"{first_line(err)}"
        ) from None
    return load_onnx_proto(model, str(path), opset, params, data_dir=path.parent, bind=bind)


def load_onnx_proto(
    model: Any,
    name: str,
    opset: int = OPSET,
    params: tuple[int, Path] | None = None,
    data_dir: Path | None = None,
    bind: Mapping[str, Any] | None = None,
) -> Source:
    """Imports an in-memory ``onnx.ModelProto``; ``name`` appears in errors.

    ``bind`` fixes graph inputs by name (they become initializers and leave the
    signature), for inputs the lowering needs constant (axes, shapes).

    With ``params`` (element threshold, file), initializers of at least that many
    elements are written to the ``.irpa`` parameter file and become ``util.global``s
    read from it at run time (scope `PARAMS_SCOPE`), as ``iree-import-onnx
    --externalize-params`` does.
    """
    onnx = _onnx()
    if not model.HasField("graph") or not len(model.graph.node):
        raise ByocError(f"{name}: the ONNX model has no graph (expected at least one node)")
    current = _default_opset(model)
    if current is not None and current < opset:
        try:
            model = onnx.version_converter.convert_version(model, opset)
        except Exception as err:  # noqa: BLE001
            raise ByocError(
                f"{name}: cannot upgrade the ONNX model from opset {current} to {opset}: "
                f"{first_line(err)}"
            ) from None
        # The converter keeps the old IR version, under which every initializer must
        # also be a graph input; the initializers it adds (Pad's pads...) are not.
        model.ir_version = max(
            model.ir_version,
            onnx.helper.find_min_ir_version_for(list(model.opset_import), ignore_unknown=True),
        )
    if bind:
        model = onnx_rewrite.bind_inputs(model, bind, name)
    tried: list[str] = []
    notes: list[str] = []
    while True:
        model = _checked(model, name)
        # configurations IREE would compute wrongly: rewritten as ONNX it computes right
        model, rewritten = onnx_decompose.rewrite(model, onnx_decompose.BEFORE, name)
        if rewritten:
            model = _checked(model, name)
            notes += [f"ONNX {op} rewritten as ONNX ops IREE computes right" for op in rewritten]
        onnx_guards.check(model, name)  # and those no rewrite covers: refused
        onnx_quant.refuse_contrib(model, name)
        try:
            # IREE's importer and its torch lowering run in process through the bindings,
            # and some inputs crash them (SIGFPE, SIGSEGV): run them where a crash is an
            # error.
            source: Source = isolate.run(
                functools.partial(_import, model, name, params, data_dir),
                f"{name}: IREE's ONNX import and lowering to linalg",
            )
        except ByocError as err:
            op = onnx_rewrite.missing_op(err.message, model)
            if op is None or op in tried:
                raise
            tried.append(op)
            model, how = _without(model, op)
            if not how:
                raise
            notes.append(f"ONNX {op} {how} (IREE's lowering lacks it)")
            continue
        return dataclasses.replace(source, notes=tuple(notes), dims=_dim_names(model))


def _dim_names(model: Any) -> tuple[tuple[str | None, ...], ...] | None:
    """Each graph input's ``dim_param`` names (initializers are not inputs), or None."""
    weights = {t.name for t in model.graph.initializer}
    names = tuple(
        tuple(
            d.dim_param if d.HasField("dim_param") and d.dim_param else None
            for d in i.type.tensor_type.shape.dim
        )
        for i in model.graph.input
        if i.name not in weights
    )
    return names if any(n for dims in names for n in dims) else None


def _without(model: Any, op: str) -> tuple[Any, str]:
    """``model`` with the ``op`` nodes IREE could not lower rewritten, and how ("" if not).

    ONNX's own definition first (the op's function body), else a decomposition of ours.
    """
    if op in onnx_decompose.ON_FAILURE:
        model, rewritten = onnx_decompose.rewrite(model, {op: onnx_decompose.ON_FAILURE[op]})
        return model, "rewritten as ONNX ops IREE lowers" if rewritten else ""
    if onnx_rewrite.has_function(model, op):
        return onnx_rewrite.expand_op(model, op), "expanded to its ONNX function body"
    return model, ""


def _checked(model: Any, name: str) -> Any:
    """Checks the model, infers shapes and folds its small constant subgraphs."""
    onnx = _onnx()
    try:
        onnx.checker.check_model(model)
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
        folded = onnx_rewrite.fold_constants(model)
        if folded is not model:
            model = onnx.shape_inference.infer_shapes(folded, data_prop=True)
    except ByocError:
        raise
    except Exception as err:  # noqa: BLE001
        raise ByocError(f"{name}: invalid ONNX model: {first_line(err)}") from None
    return model


def _import(
    model: Any, name: str, params: tuple[int, Path] | None, data_dir: Path | None
) -> Source:
    """Imports a checked, shape-inferred model and lowers it to linalg (in the child)."""
    from iree.compiler.extras import onnx_importer

    context = _compat.new_context(multithreaded=False)  # in a forked child
    try:
        info = onnx_importer.ModelInfo(model)
        module_op = info.create_module(context=context).operation
        if params is None:
            onnx_importer.NodeImporter.define_function(info.main_graph, module_op).import_all()
        else:
            importer = _externalizing_importer(info, module_op, params, data_dir)
            importer.import_all()
            importer.save_params()
        module_op.verify()
        signature = torch_signature(module_op)
    except (onnx_importer.OnnxImportError, ir.MLIRError, ValueError) as err:
        raise ByocError(f"{name}: IREE's ONNX importer failed: {first_line(err)}") from None
    try:
        with context:
            pipeline = TO_LINALG if params is None else TO_LINALG_WITH_GLOBALS
            passmanager.PassManager.parse(pipeline).run(module_op)
    except ir.MLIRError as err:
        raise ByocError(
            f"{name}: lowering the imported ONNX model to linalg failed: {first_line(err)}"
        ) from None
    _name_entry_main(module_op)
    parameters = params[1] if params else None
    return Source(module_op.get_asm(binary=True), name, parameters, signature=signature)


def _externalizing_importer(
    info: Any, module_op: ir.Operation, params: tuple[int, Path], data_dir: Path | None
) -> Any:
    from iree.compiler.tools.import_onnx.importer_externalization_overrides import (
        IREENodeImporter,
        ParamData,
    )

    threshold, path = params
    data = ParamData(
        param_bit_threshold=None,
        num_elements_threshold=threshold,
        params_scope=PARAMS_SCOPE,
        data_dir=str(data_dir or Path.cwd()),
        param_path=str(path),
        input_index_threshold=None,
    )
    return IREENodeImporter.define_function(info.main_graph, module_op, data)


def _name_entry_main(module_op: ir.Operation) -> None:
    """The importer names the function after the ONNX graph; the driver's entry is @main."""
    with module_op.context:
        for op in module_op.regions[0].blocks[0].operations:
            op = op.operation
            if op.name == "func.func" and "sym_visibility" not in op.attributes:
                op.attributes["sym_name"] = ir.StringAttr.get("main")
                return


def _default_opset(model: Any) -> int | None:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return None


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ByocError("loading .onnx models needs the onnx package: pip install onnx") from None
    return onnx
