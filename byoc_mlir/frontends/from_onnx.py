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

from pathlib import Path
from typing import Any

from iree.compiler import ir, passmanager

from byoc_mlir import _compat
from byoc_mlir.errors import ByocError
from byoc_mlir.frontends import Source, first_line

OPSET = 17
"""Models with an older default-domain opset are upgraded to this one before import."""

TO_LINALG = (
    "builtin.module(torch-onnx-to-torch-backend-pipeline,"
    "torch-backend-to-linalg-on-tensors-backend-pipeline)"
)
"""``torch.operator "onnx.*"`` → torch backend contract → linalg-on-tensors."""


def load_onnx(path: Path, opset: int = OPSET) -> Source:
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
    return load_onnx_proto(model, str(path), opset)


def load_onnx_proto(model: Any, name: str, opset: int = OPSET) -> Source:
    """Imports an in-memory ``onnx.ModelProto``; ``name`` appears in errors."""
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
    try:
        onnx.checker.check_model(model)
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as err:  # noqa: BLE001
        raise ByocError(f"{name}: invalid ONNX model: {first_line(err)}") from None
    from iree.compiler.extras import onnx_importer

    context = _compat.new_context()
    try:
        info = onnx_importer.ModelInfo(model)
        module_op = info.create_module(context=context).operation
        onnx_importer.NodeImporter.define_function(info.main_graph, module_op).import_all()
        module_op.verify()
    except (onnx_importer.OnnxImportError, ir.MLIRError, ValueError) as err:
        raise ByocError(f"{name}: IREE's ONNX importer failed: {first_line(err)}") from None
    try:
        with context:
            passmanager.PassManager.parse(TO_LINALG).run(module_op)
    except ir.MLIRError as err:
        raise ByocError(
            f"{name}: lowering the imported ONNX model to linalg failed: {first_line(err)}"
        ) from None
    _name_entry_main(module_op)
    return Source(module_op.get_asm(binary=True), name)


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
