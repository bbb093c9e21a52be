"""Each ONNX rewrite of ours computes what the node it replaces computes, per ONNX's
reference implementation, over edge-case inputs (no IREE: the rewrite's own semantics).

The conformance tests (`test_onnx_conformance.py`) show the rewritten models compile and
pass through IREE; these show the rewrites are right beyond the backend tests' inputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from byoc_mlir.frontends import onnx_decompose


def _model(node: Any, inputs: dict[str, np.ndarray], opset: int, consts: dict | None = None):
    infos = [
        helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
        for k, v in inputs.items()
    ]
    outputs = [helper.make_tensor_value_info(node.output[0], TensorProto.UNDEFINED, None)]
    inits = [numpy_helper.from_array(v, k) for k, v in (consts or {}).items()]
    graph = helper.make_graph([node], "g", infos, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return onnx.shape_inference.infer_shapes(model)


def _same(model: Any, rewritten: Any, feeds: dict[str, np.ndarray]) -> None:
    (want,) = ReferenceEvaluator(model).run(None, feeds)
    (got,) = ReferenceEvaluator(rewritten).run(None, feeds)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64])
def test_signed_bit_shift_matches_the_reference(direction: str, dtype: Any) -> None:
    info = np.iinfo(dtype)
    width = 8 * np.dtype(dtype).itemsize
    values = np.array([info.min, info.min + 1, -8, -1, 0, 1, 7, info.max - 1, info.max], dtype)
    shifts = np.array([-width - 3, -1, 0, 1, 2, width - 2, width - 1, width, width + 5], dtype)
    x = np.repeat(values, len(shifts))
    s = np.tile(shifts, len(values))
    node = helper.make_node("BitShift", ["x", "s"], ["y"], direction=direction)
    model = _model(node, {"x": x, "s": s}, 28)
    rewritten, ops = onnx_decompose.rewrite(model, onnx_decompose.BEFORE)
    assert ops == ["BitShift"]
    assert "BitShift" not in {n.op_type for n in rewritten.graph.node}
    _same(model, rewritten, {"x": x, "s": s})


@pytest.mark.parametrize("exclusive", [0, 1])
@pytest.mark.parametrize("reverse", [0, 1])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_cum_prod_matches_the_reference(exclusive: int, reverse: int, axis: int) -> None:
    rng = np.random.default_rng(axis + 3)
    x = rng.uniform(-2, 2, (3, 5, 2)).astype(np.float32)
    x[1, 2, 0] = 0.0
    node = helper.make_node("CumProd", ["x", "axis"], ["y"], exclusive=exclusive, reverse=reverse)
    model = _model(node, {"x": x}, 26, {"axis": np.array(axis, np.int64)})
    rewritten, ops = onnx_decompose.rewrite(model, onnx_decompose.BEFORE)
    assert ops == ["CumProd"]
    assert not [i for i in rewritten.graph.initializer if i.name == "axis"]  # pruned
    _same(model, rewritten, {"x": x})


@pytest.mark.parametrize(
    "attrs",
    [
        {"kernel_shape": [2, 2], "p": 2, "dilations": [2, 2]},
        {"kernel_shape": [3, 3], "p": 3, "pads": [1, 1, 1, 1], "strides": [2, 2]},
        {"kernel_shape": [2, 3], "p": 1, "auto_pad": "SAME_UPPER"},
    ],
)
def test_lp_pool_matches_the_reference(attrs: dict) -> None:
    x = np.random.default_rng(1).standard_normal((1, 3, 7, 6)).astype(np.float32)
    node = helper.make_node("LpPool", ["x"], ["y"], **attrs)
    model = _model(node, {"x": x}, 22)
    rewritten, ops = onnx_decompose.rewrite(model, onnx_decompose.ON_FAILURE)
    assert ops == ["LpPool"]
    _same(model, rewritten, {"x": x})


@pytest.mark.parametrize("shapes", [((4,), (2, 3, 4, 5)), ((2, 3, 4, 5), (5,))])
def test_vector_matmul_matches_the_reference(shapes: tuple) -> None:
    rng = np.random.default_rng(2)
    a, b = (rng.standard_normal(s).astype(np.float32) for s in shapes)
    node = helper.make_node("MatMul", ["a", "b"], ["y"])
    model = _model(node, {"a": a, "b": b}, 13)
    rewritten, ops = onnx_decompose.rewrite(model, onnx_decompose.BEFORE)
    assert ops == ["MatMul"]
    _same(model, rewritten, {"a": a, "b": b})


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the reference's own 0/0
def test_lp_normalization_of_a_zero_row_is_zero() -> None:
    x = np.array([[0.0, 0.0, 0.0], [3.0, 4.0, 0.0]], np.float32)
    node = helper.make_node("LpNormalization", ["x"], ["y"], axis=1, p=2)
    model = _model(node, {"x": x}, 17)
    rewritten, _ = onnx_decompose.rewrite(model, onnx_decompose.BEFORE)
    _same(model, rewritten, {"x": x})


@pytest.mark.parametrize(
    "attrs",
    [
        {"mode": "cubic", "coordinate_transformation_mode": "align_corners"},
        {"mode": "linear", "antialias": 1},
        {"mode": "cubic", "exclude_outside": 1, "cubic_coeff_a": -0.5},
        {"mode": "nearest", "nearest_mode": "floor",
         "coordinate_transformation_mode": "align_corners"},
        {"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize",
         "extrapolation_value": 7.0},
    ],
)  # fmt: skip
@pytest.mark.parametrize("scales", [[1.0, 1.0, 0.6, 1.7], [1.0, 1.0, 2.0, 0.5]])
def test_resize_rewrite_matches_the_reference(attrs: dict, scales: list[float]) -> None:
    x = np.random.default_rng(3).standard_normal((1, 2, 5, 6)).astype(np.float32)
    roi = np.array([0, 0, 0.1, -0.2, 1, 1, 0.8, 1.3], np.float32)
    node = helper.make_node("Resize", ["x", "roi", "scales"], ["y"], **attrs)
    consts = {"roi": roi, "scales": np.array(scales, np.float32)}
    model = _model(node, {"x": x}, 19, consts)
    rewritten, ops = onnx_decompose.rewrite(model, onnx_decompose.ON_FAILURE)
    assert ops == ["Resize"]
    assert "Resize" not in {n.op_type for n in rewritten.graph.node}
    _same(model, rewritten, {"x": x})
