"""ONNX node configurations IREE 3.13 lowers to wrong answers: refused before import.

A wrong answer is worse than a refusal: the user cannot tell. ONNX's backend tests
found these configurations where IREE's ONNX lowering compiles and runs but computes
something else than the ONNX reference (and onnxruntime). Each guard names the node,
what is wrong and what is valid, so the user can change the model; the guards are
checked on the shape-inferred model, after the function expansions of `onnx_rewrite`.

Guards are data: ``op type -> check(node, types) -> reason or None``. Remove one when
the lowering is fixed (the conformance runner shows it: the case turns from refused to
PASS, not to WRONG).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from byoc_mlir.errors import ByocError

Types = Mapping[str, Any]
"""Value name -> ``onnx.TypeProto`` (graph inputs, value_info, outputs, initializers)."""


def attr(node: Any, name: str, default: Any = None) -> Any:
    """A node attribute's value (strings decoded), or ``default``."""
    import onnx

    for a in node.attribute:
        if a.name == name:
            value = onnx.helper.get_attribute_value(a)
            return value.decode() if isinstance(value, bytes) else value
    return default


def _rank(types: Types, name: str) -> int | None:
    t = types.get(name)
    if t is None or not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
        return None
    return len(t.tensor_type.shape.dim)


def elem_type(types: Types, name: str) -> int | None:
    """The ONNX element type (``TensorProto.FLOAT``...) of a tensor value, or None."""
    t = types.get(name)
    return t.tensor_type.elem_type if t is not None and t.HasField("tensor_type") else None


def _average_pool(node: Any, types: Types) -> str | None:
    if attr(node, "ceil_mode", 0) and attr(node, "count_include_pad", 0):
        return (
            "ceil_mode=1 with count_include_pad=1 averages the partial last window over the "
            "wrong count (valid: ceil_mode=0, or count_include_pad=0)"
        )
    return None


def _space_to_depth(node: Any, types: Types) -> str | None:
    mode = attr(node, "mode", "DCR")
    if mode != "DCR":
        return f"mode={mode} is lowered as DCR (valid: mode=DCR)"
    return None


def _qlinear_matmul(node: Any, types: Types) -> str | None:
    ranks = [_rank(types, node.input[0]), _rank(types, node.input[3])]
    if any(r is None or r > 2 for r in ranks):
        return f"inputs of rank {ranks[0]} and {ranks[1]} are multiplied wrongly (valid: 2-D)"
    return None


def _lstm(node: Any, types: Types) -> str | None:
    if len(node.input) > 7 and node.input[7]:
        return "the peephole weights (input P) are ignored (valid: an LSTM without P)"
    return None


def _grid_sample(node: Any, types: Types) -> str | None:
    if attr(node, "mode", "linear") == "nearest":
        return "mode=nearest rounds halfway points differently (valid: linear, cubic)"
    return None


def resize_is_wrong(node: Any) -> bool:
    """A Resize configuration IREE 3.13 lowers, but computes wrongly."""
    mode = attr(node, "mode", "nearest")
    return attr(node, "coordinate_transformation_mode", "half_pixel") == "align_corners" and (
        mode in ("linear", "cubic")
    )


def _resize(node: Any, types: Types) -> str | None:
    mode = attr(node, "mode", "nearest")
    if resize_is_wrong(node):
        return (
            f"{mode} mode with coordinate_transformation_mode=align_corners disagrees with "
            f"the ONNX reference (valid: another coordinate_transformation_mode)"
        )
    return None


GUARDS: dict[str, Callable[[Any, Types], str | None]] = {
    "AveragePool": _average_pool,
    "SpaceToDepth": _space_to_depth,
    "QLinearMatMul": _qlinear_matmul,
    "LSTM": _lstm,
    "GridSample": _grid_sample,
    "Resize": _resize,
}


def check(model: Any, name: str) -> None:
    """Raises a `ByocError` at the first node IREE 3.13 would compute wrongly."""
    types = value_types(model)
    for index, node in enumerate(model.graph.node):
        guard = GUARDS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        reason = guard(node, types) if guard else None
        if reason:
            label = f"'{node.name}'" if node.name else f"#{index}"
            raise ByocError(
                f"{name}: ONNX {node.op_type} node {label}: {reason}; refused, because IREE "
                f"3.13's ONNX lowering computes it wrongly"
            )


def value_types(model: Any) -> dict[str, Any]:
    """Value name -> ``TypeProto`` over the graph's inputs, value_info, outputs, weights."""
    import onnx

    types = {}
    for info in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        types[info.name] = info.type
    for init in model.graph.initializer:
        types[init.name] = onnx.helper.make_tensor_type_proto(init.data_type, list(init.dims))
    return types


@dataclass(frozen=True)
class Facts:
    """What a decomposition may read of the model around one node."""

    types: Mapping[str, Any]  # value -> TypeProto
    shapes: Mapping[str, tuple[int, ...]]  # value -> static shape
    opset: int
    constants: Mapping[str, Any]  # initializer name -> TensorProto
