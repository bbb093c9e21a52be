"""ONNX nodes IREE 3.13 lowers wrongly or not at all, rewritten as ONNX it lowers.

Each decomposition is ``(node, index, model facts) -> (nodes, initializers)`` or None
(leave the node), and computes what ONNX's spec says the node computes:

- ``LpNormalization``: ``x / where(norm == 0, 1, norm)`` (IREE divides by a zero norm:
  NaN where ONNX gives 0);
- signed ``BitShift`` (opset 28): IREE shifts signed operands as unsigned ones; here a
  left shift is a wrapping multiplication by ``2**s``, a right shift is arithmetic
  (``~(~x / 2**s)`` for negative ``x``), and shift counts outside ``[0, width)`` give 0
  (left) or the sign (right);
- ``MatMul`` of a vector and a stack of matrices (rank 1 with rank >= 3): torch-mlir's
  ``aten.matmul`` lowering has no such case; the vector becomes a 1-row (1-column)
  matrix;
- ``CumProd``: the product over a triangular mask, ``ReduceProd(Where(mask, x, 1))``;
- ``LpPool``: ``(depthwise Conv of |x|^p with ones)^(1/p)``, the same window, strides,
  pads and dilations;
- ``Resize``: per-axis linear maps (`onnx_resize`);
- quantized operators IREE lowers wrongly (`onnx_quant`).

`BEFORE` runs on every model (IREE would compute those wrongly); `ON_FAILURE` runs only
when IREE's lowering names the op, so a configuration IREE lowers keeps its lowering.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from byoc_mlir.errors import ByocError
from byoc_mlir.frontends import onnx_quant, onnx_resize
from byoc_mlir.frontends.onnx_guards import Facts, attr, elem_type, resize_is_wrong, value_types

Decomposition = Callable[[Any, str, Facts], "tuple[list[Any], list[Any]] | str | None"]
"""``(node, name prefix, facts)`` -> the nodes and initializers replacing it, None (keep
the node) or a reason to refuse the model (the node's configuration is not covered)."""


def op_key(node: Any) -> str:
    """``op_type`` for ONNX's own ops, ``domain.op_type`` for others (``com.microsoft.QGemm``)."""
    return node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"


def rewrite(
    model: Any, table: Mapping[str, Decomposition], name: str = "the model"
) -> tuple[Any, list[str]]:
    """A copy of ``model`` with the nodes ``table`` rewrites, and the op types rewritten.

    Raises:
        ByocError: a decomposition refused its node.
    """
    from byoc_mlir.frontends.onnx_rewrite import _copy, _opset, _static_shapes, prune_initializers

    if not any(op_key(n) in table for n in model.graph.node):
        return model, []
    constants = {i.name: i for i in model.graph.initializer}
    facts = Facts(value_types(model), _static_shapes(model), _opset(model), constants)
    plans: dict[int, tuple[list[Any], list[Any]]] = {}
    for index, node in enumerate(model.graph.node):
        decompose = table.get(op_key(node))
        plan = decompose(node, f"{node.op_type.lower()}{index}_", facts) if decompose else None
        if isinstance(plan, str):
            label = f"'{node.name}'" if node.name else f"#{index}"
            raise ByocError(f"{name}: ONNX {op_key(node)} node {label}: {plan}; refused")
        if plan is not None:
            plans[index] = plan
    if not plans:
        return model, []
    model = _copy(model)
    nodes = list(model.graph.node)
    model.graph.ClearField("node")
    for index, node in enumerate(nodes):
        new_nodes, inits = plans.get(index, ([node], []))
        model.graph.node.extend(new_nodes)
        model.graph.initializer.extend(inits)
    prune_initializers(model)
    return model, sorted({op_key(nodes[k]) for k in plans})


def _elem(facts: Facts, name: str) -> int | None:
    return elem_type(facts.types, name)


def _np(elem: int) -> Any:
    from onnx import helper

    return helper.tensor_dtype_to_np_dtype(elem)


def _const(name: str, value: Any, dtype: Any) -> Any:
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(value, dtype), name)


def lp_normalization(node: Any, t: str, facts: Facts) -> tuple[list[Any], list[Any]] | None:
    from onnx import helper

    axis, p = int(attr(node, "axis", -1)), int(attr(node, "p", 2))
    x, (y,) = node.input[0], node.output
    reduce = "ReduceL2" if p == 2 else "ReduceL1"
    inits = []
    if facts.opset >= 18:
        inits.append(_const(t + "axes", [axis], np.int64))
        norm = helper.make_node(reduce, [x, t + "axes"], [t + "norm"], keepdims=1)
    else:
        norm = helper.make_node(reduce, [x], [t + "norm"], axes=[axis], keepdims=1)
    nodes = [
        norm,
        helper.make_node("Constant", [], [t + "zero_f"], value_float=0.0),
        helper.make_node("Constant", [], [t + "one_f"], value_float=1.0),
        helper.make_node("CastLike", [t + "zero_f", x], [t + "zero"]),
        helper.make_node("CastLike", [t + "one_f", x], [t + "one"]),
        helper.make_node("Equal", [t + "norm", t + "zero"], [t + "is_zero"]),
        helper.make_node("Where", [t + "is_zero", t + "one", t + "norm"], [t + "safe"]),
        helper.make_node("Div", [x, t + "safe"], [y]),
    ]  # fmt: skip
    return nodes, inits


_SIGNED = {3, 5, 6, 7}  # INT8, INT16, INT32, INT64


def signed_bit_shift(node: Any, t: str, facts: Facts) -> tuple[list[Any], list[Any]] | None:
    """Shifts as multiplications and divisions by ``2**count`` (wrapping, as shifts do)."""
    from onnx import helper

    elem = _elem(facts, node.input[0])
    if elem not in _SIGNED or _elem(facts, node.input[1]) != elem:
        return None
    dtype = _np(elem)
    width = 8 * np.dtype(dtype).itemsize
    powers = (np.uint64(1) << np.arange(width, dtype=np.uint64)).astype(dtype)  # 2**(w-1) wraps
    x, s, (y,) = node.input[0], node.input[1], node.output
    inits = [_const(t + "zero", 0, dtype), _const(t + "width", width, dtype),
             _const(t + "top", width - 1, dtype), _const(t + "powers", powers, dtype)]  # fmt: skip
    nodes = [
        helper.make_node("Less", [s, t + "zero"], [t + "neg_shift"]),
        helper.make_node("GreaterOrEqual", [s, t + "width"], [t + "wide_shift"]),
        helper.make_node("Or", [t + "neg_shift", t + "wide_shift"], [t + "outside"]),
        helper.make_node("Where", [t + "outside", t + "top", s], [t + "count"]),
        helper.make_node("Gather", [t + "powers", t + "count"], [t + "power"]),
    ]
    if attr(node, "direction", "") == "LEFT":
        nodes += [
            helper.make_node("Mul", [x, t + "power"], [t + "shifted"]),
            helper.make_node("Where", [t + "outside", t + "zero", t + "shifted"], [y]),
        ]
        return nodes, inits
    # right: arithmetic, ~(~x >> s) for negative x; shifting the non-negative ~x or x
    # by width-1 (or more) leaves 0, which ~ turns into the sign
    inits.append(_const(t + "one", 1, dtype))
    nodes += [
        helper.make_node("Equal", [t + "count", t + "top"], [t + "all_out"]),
        helper.make_node("Where", [t + "all_out", t + "one", t + "power"], [t + "divisor"]),
        helper.make_node("Less", [x, t + "zero"], [t + "negative"]),
        helper.make_node("BitwiseNot", [x], [t + "not_x"]),
        helper.make_node("Where", [t + "negative", t + "not_x", x], [t + "folded"]),
        helper.make_node("Div", [t + "folded", t + "divisor"], [t + "quotient"]),
        helper.make_node("Where", [t + "all_out", t + "zero", t + "quotient"], [t + "shifted"]),
        helper.make_node("BitwiseNot", [t + "shifted"], [t + "not_shifted"]),
        helper.make_node("Where", [t + "negative", t + "not_shifted", t + "shifted"], [y]),
    ]
    return nodes, inits


def vector_matmul(node: Any, t: str, facts: Facts) -> tuple[list[Any], list[Any]] | None:
    from onnx import helper

    a, b = node.input
    ranks = len(facts.shapes.get(a, ())), len(facts.shapes.get(b, ()))
    if ranks[0] == 1 and ranks[1] >= 3:  # the vector as one row
        axis, a, b, matrix = -2, t + "matrix", b, (a, t + "matrix")
    elif ranks[1] == 1 and ranks[0] >= 3:  # the vector as one column
        axis, a, b, matrix = -1, a, t + "matrix", (b, t + "matrix")
    else:
        return None
    inits = [_const(t + "axis", [axis], np.int64)]
    nodes = [
        helper.make_node("Unsqueeze", [matrix[0], t + "axis"], [matrix[1]]),
        helper.make_node("MatMul", [a, b], [t + "product"]),
        helper.make_node("Squeeze", [t + "product", t + "axis"], [node.output[0]]),
    ]
    return nodes, inits


def cum_prod(node: Any, t: str, facts: Facts) -> tuple[list[Any], list[Any]] | None:
    from onnx import helper, numpy_helper

    x, axis_name = node.input
    shape, elem = facts.shapes.get(x), _elem(facts, x)
    axis = _constant_scalar(facts, axis_name)
    if shape is None or elem is None or axis is None or not shape:
        return None
    axis %= len(shape)
    n = shape[axis]
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    exclusive, reverse = bool(attr(node, "exclusive", 0)), bool(attr(node, "reverse", 0))
    if reverse:
        mask = j > i if exclusive else j >= i
    else:
        mask = j < i if exclusive else j <= i
    mask = mask.reshape((n, n) + (1,) * (len(shape) - axis - 1))
    inits = [
        numpy_helper.from_array(mask, t + "mask"),
        _const(t + "one", 1, _np(elem)),
        _const(t + "at", [axis], np.int64),
        _const(t + "over", [axis + 1], np.int64),
    ]
    nodes = [
        helper.make_node("Unsqueeze", [x, t + "at"], [t + "rows"]),  # ..., 1(i), n(j), ...
        helper.make_node("Where", [t + "mask", t + "rows", t + "one"], [t + "masked"]),
        helper.make_node(
            "ReduceProd", [t + "masked", t + "over"], [node.output[0]], keepdims=0
        ),  # fmt: skip
    ]
    return nodes, inits


def _constant_scalar(facts: Facts, name: str) -> int | None:
    """The value of a one-element integer initializer, or None."""
    from onnx import numpy_helper

    tensor = facts.constants.get(name)
    if tensor is None or tensor.data_location or int(np.prod(tensor.dims)) != 1:
        return None
    return int(numpy_helper.to_array(tensor).reshape(-1)[0])


def lp_pool(node: Any, t: str, facts: Facts) -> tuple[list[Any], list[Any]] | None:
    from onnx import helper, numpy_helper

    x = node.input[0]
    shape, elem = facts.shapes.get(x), _elem(facts, x)
    kernel = attr(node, "kernel_shape")
    if shape is None or elem is None or kernel is None or attr(node, "ceil_mode", 0):
        return None
    dtype = _np(elem)
    p = float(attr(node, "p", 2))
    weights = np.ones((shape[1], 1, *kernel), dtype)
    conv: dict[str, Any] = {"group": shape[1], "kernel_shape": list(kernel)}
    for name in ("strides", "pads", "dilations", "auto_pad"):
        value = attr(node, name)
        if value is not None:
            conv[name] = value
    inits = [
        numpy_helper.from_array(weights, t + "ones"),
        _const(t + "p", p, dtype),
        _const(t + "inv_p", 1.0 / p, dtype),
    ]
    nodes = [
        helper.make_node("Abs", [x], [t + "abs"]),
        helper.make_node("Pow", [t + "abs", t + "p"], [t + "powered"]),
        helper.make_node("Conv", [t + "powered", t + "ones"], [t + "summed"], **conv),
        helper.make_node("Pow", [t + "summed", t + "inv_p"], [node.output[0]]),
    ]
    return nodes, inits


def wrong_resize(node: Any, t: str, facts: Facts) -> tuple[list[Any], list[Any]] | None:
    """`onnx_resize.resize` for the configurations IREE lowers but computes wrongly."""
    return onnx_resize.resize(node, t, facts) if resize_is_wrong(node) else None


BEFORE: dict[str, Decomposition] = {
    "LpNormalization": lp_normalization,
    "BitShift": signed_bit_shift,
    "MatMul": vector_matmul,
    "CumProd": cum_prod,  # IREE 3.13 has no lowering of it at all
    "Resize": wrong_resize,
    "QLinearMatMul": onnx_quant.qlinear_matmul,  # batched: IREE multiplies them wrongly
    "QLinearConv": onnx_quant.qlinear_conv,
    **onnx_quant.CONTRIB,  # onnxruntime's quantized contrib ops, as QDQ
}
"""Rewritten in every model: IREE 3.13 computes these configurations wrongly or not."""

ON_FAILURE: dict[str, Decomposition] = {"LpPool": lp_pool, "Resize": onnx_resize.resize}
"""Rewritten when IREE's lowering names the op (it lacks the op or the configuration)."""
