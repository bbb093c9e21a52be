"""ONNX's quantized operators rewritten as ONNX IREE 3.13 lowers correctly.

- ``QLinearMatMul`` on inputs of rank > 2: IREE's lowering multiplies batched operands
  wrongly (off by up to 27 steps in int8). The rewrite is ONNX's own definition, in
  integers: ``C = (a - a_zp) @ (b - b_zp)`` in int32, then
  ``y = saturate(round_half_even(C * (a_scale * b_scale / y_scale)) + y_zp)``, the
  multiplier computed in the scales' type as the reference does, the product in f32.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from byoc_mlir.frontends.onnx_guards import Facts, elem_type

_INT32, _FLOAT = 6, 1  # onnx.TensorProto.INT32, FLOAT


def _rank(facts: Facts, name: str) -> int | None:
    shape = facts.shapes.get(name)
    return None if shape is None else len(shape)


def qlinear_matmul(node: Any, t: str, facts: Facts) -> tuple[list[Any], list[Any]] | None:
    """A batched ``QLinearMatMul`` as integer MatMul + requantization (2-D ones stay:
    IREE lowers those right)."""
    from onnx import helper, numpy_helper

    a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp = node.input
    ranks = [_rank(facts, a), _rank(facts, b)]
    if all(r is not None and r <= 2 for r in ranks):
        return None
    out = elem_type(facts.types, y_zp)
    if out is None:
        return None
    info = np.iinfo(helper.tensor_dtype_to_np_dtype(out))
    inits = [
        numpy_helper.from_array(np.array(info.min, np.float32), t + "qmin"),
        numpy_helper.from_array(np.array(info.max, np.float32), t + "qmax"),
    ]
    nodes = [
        helper.make_node("Cast", [a], [t + "a32"], to=_INT32),
        helper.make_node("Cast", [a_zp], [t + "a_zp32"], to=_INT32),
        helper.make_node("Sub", [t + "a32", t + "a_zp32"], [t + "a_int"]),
        helper.make_node("Cast", [b], [t + "b32"], to=_INT32),
        helper.make_node("Cast", [b_zp], [t + "b_zp32"], to=_INT32),
        helper.make_node("Sub", [t + "b32", t + "b_zp32"], [t + "b_int"]),
        helper.make_node("MatMul", [t + "a_int", t + "b_int"], [t + "acc"]),
        helper.make_node("Cast", [t + "acc"], [t + "acc_f"], to=_FLOAT),
        helper.make_node("Mul", [a_scale, b_scale], [t + "ab_scale"]),
        helper.make_node("Div", [t + "ab_scale", y_scale], [t + "multiplier"]),
        helper.make_node("Cast", [t + "multiplier"], [t + "multiplier_f"], to=_FLOAT),
        helper.make_node("Mul", [t + "acc_f", t + "multiplier_f"], [t + "scaled"]),
        helper.make_node("Cast", [y_zp], [t + "y_zp_f"], to=_FLOAT),
        helper.make_node("Add", [t + "scaled", t + "y_zp_f"], [t + "shifted"]),
        helper.make_node("Round", [t + "shifted"], [t + "rounded"]),
        helper.make_node("Clip", [t + "rounded", t + "qmin", t + "qmax"], [t + "clipped"]),
        helper.make_node("Cast", [t + "clipped"], [node.output[0]], to=out),
    ]
    return nodes, inits
