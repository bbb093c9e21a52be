"""ONNX's quantized operators rewritten as ONNX IREE 3.13 lowers correctly.

- ``QLinearMatMul`` on inputs of rank > 2: IREE's lowering multiplies batched operands
  wrongly (off by up to 27 steps in int8). The rewrite is ONNX's own definition, in
  integers: ``C = (a - a_zp) @ (b - b_zp)`` in int32, then
  ``y = saturate(round_half_even(C * (a_scale * b_scale / y_scale)) + y_zp)``, the
  multiplier computed in the scales' type as the reference does, the product in f32.
- onnxruntime's contrib operators (domain ``com.microsoft``) that its quantizer writes in
  QOperator format (``QLinearAdd``, ``QLinearMul``, ``QLinearConcat``,
  ``QLinearGlobalAveragePool``, ``QLinearAveragePool``, ``QLinearLeakyRelu``,
  ``QLinearSigmoid``, ``QLinearSoftmax``, ``QGemm``): each becomes the QDQ form that
  defines it (DequantizeLinear of every quantized input, the float op, QuantizeLinear of
  the result), which IREE lowers and the partitioner sees as a quantized unit. A contrib
  op not listed is refused by `onnx_guards` with its name.
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


MICROSOFT = "com.microsoft"


def _dq(t: str, x: str, scale: str, zp: str | None, axis: int | None = None) -> tuple[str, Any]:
    from onnx import helper

    inputs = [x, scale] + ([zp] if zp else [])
    if axis is None:
        return t, helper.make_node("DequantizeLinear", inputs, [t])
    return t, helper.make_node("DequantizeLinear", inputs, [t], axis=axis)


def _q(y: str, x: str, scale: str, zp: str | None) -> Any:
    from onnx import helper

    return helper.make_node("QuantizeLinear", [x, scale] + ([zp] if zp else []), [y])


def _attrs(node: Any, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute if a.name not in drop}


def _opt(node: Any, k: int) -> str | None:
    return node.input[k] if len(node.input) > k and node.input[k] else None


def _unary(op: str, drop: tuple[str, ...] = ()) -> Any:
    """``QLinear<op>(x, x_scale, x_zp, y_scale, y_zp)`` -> Q(op(DQ(x)))."""

    def rewrite(node: Any, t: str, facts: Facts) -> tuple[list[Any], list[Any]] | str | None:
        from onnx import helper

        if _attrs(node).get("channels_last", 0):
            return "channels_last=1 (valid: channels first)"
        x, dq = _dq(t + "x", node.input[0], node.input[1], _opt(node, 2))
        attrs = _attrs(node, ("channels_last", *drop))
        nodes = [dq, helper.make_node(op, [x], [t + "y"], **attrs)]
        return [*nodes, _q(node.output[0], t + "y", node.input[3], _opt(node, 4))], []

    return rewrite


def _binary(op: str) -> Any:
    """``QLinear<op>(a, a_scale, a_zp, b, b_scale, b_zp, c_scale, c_zp)``."""

    def rewrite(node: Any, t: str, facts: Facts) -> tuple[list[Any], list[Any]] | None:
        from onnx import helper

        a, dq_a = _dq(t + "a", node.input[0], node.input[1], _opt(node, 2))
        b, dq_b = _dq(t + "b", node.input[3], node.input[4], _opt(node, 5))
        nodes = [dq_a, dq_b, helper.make_node(op, [a, b], [t + "y"])]
        return [*nodes, _q(node.output[0], t + "y", node.input[6], _opt(node, 7))], []

    return rewrite


def qlinear_concat(node: Any, t: str, facts: Facts) -> tuple[list[Any], list[Any]] | None:
    """``QLinearConcat(y_scale, y_zp, x0, x0_scale, x0_zp, x1, ...)``."""
    from onnx import helper

    nodes, floats = [], []
    rest = list(node.input[2:])
    for k in range(0, len(rest), 3):
        x, dq = _dq(f"{t}x{k // 3}", rest[k], rest[k + 1], rest[k + 2] or None)
        nodes.append(dq)
        floats.append(x)
    nodes.append(helper.make_node("Concat", floats, [t + "y"], axis=_attrs(node)["axis"]))
    return [*nodes, _q(node.output[0], t + "y", node.input[0], node.input[1] or None)], []


def qlinear_softmax(node: Any, t: str, facts: Facts) -> tuple[list[Any], list[Any]] | str | None:
    """Softmax as the ``opset`` attribute says: before 13, over the input flattened to
    2-D at ``axis`` (then reshaped back)."""
    from onnx import helper

    attrs = _attrs(node)
    axis, opset = int(attrs.get("axis", -1)), int(attrs.get("opset", 13))
    x, dq = _dq(t + "x", node.input[0], node.input[1], _opt(node, 2))
    nodes = [dq]
    if opset >= 13:
        nodes.append(helper.make_node("Softmax", [x], [t + "y"], axis=axis))
    else:
        nodes += [
            helper.make_node("Shape", [x], [t + "shape"]),
            helper.make_node("Flatten", [x], [t + "flat"], axis=axis),
            helper.make_node("Softmax", [t + "flat"], [t + "soft"], axis=1),
            helper.make_node("Reshape", [t + "soft", t + "shape"], [t + "y"]),
        ]
    return [*nodes, _q(node.output[0], t + "y", node.input[3], _opt(node, 4))], []


def _per_channel(facts: Facts, scale: str) -> bool:
    """Whether a weight's scale has one entry per channel (else one for the tensor)."""
    shape = facts.shapes.get(scale, ())
    return bool(shape) and int(np.prod(shape)) > 1


def _int32_bias(t: str, bias: str, a_scale: str, b_scale: str) -> tuple[str, list[Any]]:
    """A QGemm / QLinearConv int32 bias dequantized: scale ``a_scale * b_scale``, no zero
    point. Returns the float bias's name and the nodes computing it."""
    from onnx import helper

    nodes = [
        helper.make_node("Mul", [a_scale, b_scale], [t + "bias_scale"]),
        helper.make_node("Cast", [bias], [t + "bias_f"], to=_FLOAT),
        helper.make_node("Mul", [t + "bias_f", t + "bias_scale"], [t + "bias"]),
    ]
    return t + "bias", nodes


def qgemm(node: Any, t: str, facts: Facts) -> tuple[list[Any], list[Any]] | None:
    """``QGemm(a, a_scale, a_zp, b, b_scale, b_zp, c, y_scale, y_zp)``: the int32 bias ``c``
    has scale ``a_scale * b_scale`` and no zero point; without ``y_scale`` the output is
    float."""
    from onnx import helper

    attrs = _attrs(node)
    trans_b = int(attrs.get("transB", 0))
    axis = (0 if trans_b else 1) if _per_channel(facts, node.input[4]) else None
    a, dq_a = _dq(t + "a", node.input[0], node.input[1], _opt(node, 2))
    b, dq_b = _dq(t + "b", node.input[3], node.input[4], _opt(node, 5), axis)
    nodes = [dq_a, dq_b]
    gemm_in = [a, b]
    c = _opt(node, 6)
    if c:
        c_f, c_nodes = _int32_bias(t, c, node.input[1], node.input[4])
        nodes += c_nodes
        gemm_in.append(c_f)
    y_scale = _opt(node, 7)
    gemm_out = t + "y" if y_scale else node.output[0]
    nodes.append(helper.make_node("Gemm", gemm_in, [gemm_out], **attrs))
    if y_scale:
        nodes.append(_q(node.output[0], t + "y", y_scale, _opt(node, 8)))
    return nodes, []


def qlinear_conv(node: Any, t: str, facts: Facts) -> tuple[list[Any], list[Any]] | None:
    """``QLinearConv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B)`` as its QDQ
    form: the int32 bias ``B`` has scale ``x_scale * w_scale`` and no zero point."""
    from onnx import helper

    axis = 0 if _per_channel(facts, node.input[4]) else None
    x, dq_x = _dq(t + "x", node.input[0], node.input[1], _opt(node, 2))
    w, dq_w = _dq(t + "w", node.input[3], node.input[4], _opt(node, 5), axis)
    nodes = [dq_x, dq_w]
    conv_in = [x, w]
    bias = _opt(node, 8)
    if bias:
        b_f, b_nodes = _int32_bias(t, bias, node.input[1], node.input[4])
        nodes += b_nodes
        conv_in.append(b_f)
    nodes.append(helper.make_node("Conv", conv_in, [t + "y"], **_attrs(node)))
    return [*nodes, _q(node.output[0], t + "y", node.input[6], _opt(node, 7))], []


CONTRIB: dict[str, Any] = {
    f"{MICROSOFT}.QLinearAdd": _binary("Add"),
    f"{MICROSOFT}.QLinearMul": _binary("Mul"),
    f"{MICROSOFT}.QLinearConcat": qlinear_concat,
    f"{MICROSOFT}.QLinearGlobalAveragePool": _unary("GlobalAveragePool"),
    f"{MICROSOFT}.QLinearAveragePool": _unary("AveragePool"),
    f"{MICROSOFT}.QLinearLeakyRelu": _unary("LeakyRelu"),
    f"{MICROSOFT}.QLinearSigmoid": _unary("Sigmoid"),
    f"{MICROSOFT}.QLinearSoftmax": qlinear_softmax,
    f"{MICROSOFT}.QGemm": qgemm,
}
"""onnxruntime's quantized contrib ops, by ``domain.op_type``: rewritten to QDQ."""


def refuse_contrib(model: Any, name: str) -> None:
    """Raises a `ByocError` at the first contrib node left (no rewrite covers it)."""
    from byoc_mlir.errors import ByocError

    for index, node in enumerate(model.graph.node):
        if node.domain == MICROSOFT:
            label = f"'{node.name}'" if node.name else f"#{index}"
            known = ", ".join(k.rsplit(".", 1)[1] for k in CONTRIB)
            raise ByocError(
                f"{name}: ONNX node {label} is onnxruntime's contrib op {MICROSOFT}."
                f"{node.op_type}, which IREE does not import; refused (rewritten to QDQ: "
                f"{known})"
            )
