"""``Resize`` as one linear map per axis, for the configurations IREE 3.13 cannot lower.

IREE's ONNX lowering has no antialias, ``exclude_outside``, ``keep_aspect_ratio_policy``,
``axes``, ``tf_crop_and_resize`` or ``floor`` + ``align_corners`` nearest, and it
computes linear and cubic ``align_corners`` wrongly (``onnx_guards``). With a static
input shape and constant ``roi``/``scales``/``sizes``, every Resize mode is separable:
along each resized axis the output is a fixed matrix times the input (plus
``extrapolation_value`` where ``tf_crop_and_resize`` leaves the input). So:

- the per-axis matrices are read off ONNX's reference implementation itself (a
  one-axis ``Resize`` of an identity matrix), never re-derived here;
- an axis whose rows each pick one input (``nearest``) becomes a ``Gather`` (exact, any
  element type); any other becomes ``Transpose → MatMul → Transpose`` (float only);
- out-of-range outputs (all-zero rows) get ``extrapolation_value`` added;
- the rewrite is checked against the reference on a random input before it is used;
  a node it cannot reproduce is left as it was (the caller then refuses it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from byoc_mlir.frontends.onnx_guards import attr, elem_type

if TYPE_CHECKING:
    from byoc_mlir.frontends.onnx_guards import Facts

PROBE_LIMIT = 1 << 22
"""The largest input (elements) whose rewrite is checked against the reference."""

_FLOATS = (np.float16, np.float32, np.float64)


def resize(node: Any, t: str, facts: Facts) -> tuple[list[Any], list[Any]] | None:
    """The nodes and initializers that compute a Resize ``node``, or None to leave it
    (an `onnx_decompose.Decomposition`; ``t`` prefixes the names it makes)."""
    from onnx import helper, numpy_helper

    consts, opset = facts.constants, facts.opset
    x = node.input[0]
    shape = facts.shapes.get(x)
    dtype = _elem_dtype(elem_type(facts.types, x))
    if shape is None or not shape or (x in consts and consts[x].data_location):
        return None
    operands = []
    for k in range(1, 4):
        name = node.input[k] if k < len(node.input) else ""
        if name and name not in consts:
            return None  # roi / scales / sizes computed at run time
        operands.append(numpy_helper.to_array(consts[name]) if name else None)
    roi, scales, sizes = operands
    if dtype is None:
        return None
    axis_plan = _per_axis(node, shape, roi, scales, sizes)
    if axis_plan is None:
        return None
    out, nodes, inits = x, [], []
    mask = np.zeros((), bool)
    for a, (scale, size, axis_roi) in axis_plan.items():
        try:
            matrix, outside = _axis_matrix(node, shape[a], scale, axis_roi, opset)
        except Exception:  # noqa: BLE001 - the reference refuses this configuration
            return None
        if matrix.shape != (size, shape[a]):
            return None  # the probe's output size is not the node's
        shaped = [1] * len(shape)
        shaped[a] = size
        mask = mask | outside.reshape(shaped)
        if _is_identity(matrix):
            continue
        y = f"{t}axis{a}"
        picks = matrix.argmax(axis=1)
        if np.array_equal(matrix, np.eye(shape[a])[picks]):  # every row picks one input
            inits.append(numpy_helper.from_array(picks.astype(np.int64), f"{t}idx{a}"))
            nodes.append(helper.make_node("Gather", [out, f"{t}idx{a}"], [y], axis=a))
        elif dtype not in _FLOATS:
            return None  # weights, or extrapolated rows, on integers
        else:
            inits.append(numpy_helper.from_array(matrix.T.astype(dtype), f"{t}w{a}"))
            if a == len(shape) - 1:
                nodes.append(helper.make_node("MatMul", [out, f"{t}w{a}"], [y]))
            else:  # the resized axis last, times the matrix, and back
                perm = [d for d in range(len(shape)) if d != a] + [a]
                back = [int(d) for d in np.argsort(perm)]
                nodes += [
                    helper.make_node("Transpose", [out], [f"{t}t{a}"], perm=perm),
                    helper.make_node("MatMul", [f"{t}t{a}", f"{t}w{a}"], [f"{t}m{a}"]),
                    helper.make_node("Transpose", [f"{t}m{a}"], [y], perm=back),
                ]
        out = y
    value = float(attr(node, "extrapolation_value", 0.0))
    if mask.any() and value != 0:
        # out-of-range rows are all-zero rows above: adding the value there is exact
        # (a float constant, not a bool mask: IREE's CPU codegen cannot pack i1)
        full = np.broadcast_to(mask * value, _out_shape(shape, axis_plan)).astype(dtype)
        inits.append(numpy_helper.from_array(full, f"{t}extrapolation"))
        nodes.append(helper.make_node("Add", [out, f"{t}extrapolation"], [f"{t}extrapolated"]))
        out = f"{t}extrapolated"
    nodes.append(helper.make_node("Identity", [out], [node.output[0]]))
    if not _reproduces(node, nodes, inits, shape, dtype, consts, opset):
        return None
    return nodes, inits


def _per_axis(
    node: Any,
    shape: tuple[int, ...],
    roi: np.ndarray | None,
    scales: np.ndarray | None,
    sizes: np.ndarray | None,
) -> dict[int, tuple[float, int, list[float] | None]] | None:
    """Resized axis -> (scale, output size, roi) by the Resize spec's own rules."""
    r = len(shape)
    axes = [int(a) % r for a in (attr(node, "axes") or range(r))]
    if scales is not None and scales.size:
        if len(scales) != len(axes):
            return None
        scale = {a: float(s) for a, s in zip(axes, scales, strict=True)}
        size = {a: int(np.floor(scale[a] * shape[a])) for a in axes}
    elif sizes is not None and sizes.size:
        if len(sizes) != len(axes):
            return None
        size = {a: int(s) for a, s in zip(axes, sizes, strict=True)}
        scale = {a: size[a] / shape[a] for a in axes}
        policy = attr(node, "keep_aspect_ratio_policy", "stretch")
        if policy != "stretch":
            pick = min if policy == "not_larger" else max
            common = pick(scale.values())
            scale = dict.fromkeys(axes, common)
            size = {a: int(common * shape[a] + 0.5) for a in axes}
    else:
        return None
    rois: dict[int, list[float] | None] = dict.fromkeys(axes)
    if attr(node, "coordinate_transformation_mode", "half_pixel") == "tf_crop_and_resize":
        if roi is None or len(roi) != 2 * len(axes):
            return None
        for k, a in enumerate(axes):
            rois[a] = [float(roi[k]), float(roi[len(axes) + k])]
    return {a: (scale[a], size[a], rois[a]) for a in axes}


def _axis_matrix(
    node: Any, n: int, scale: float, roi: list[float] | None, version: int
) -> tuple[np.ndarray, np.ndarray]:
    """(matrix, outside): the reference's Resize of ``eye(n)`` along one axis.

    ``matrix[i, j]`` weighs input ``j`` in output ``i``; ``outside[i]`` is true where
    output ``i`` is ``extrapolation_value`` (``tf_crop_and_resize`` out of range).
    """
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    keep = {"mode", "coordinate_transformation_mode", "cubic_coeff_a", "exclude_outside",
            "nearest_mode", "antialias"}  # fmt: skip
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute if a.name in keep}
    attrs = {k: v.decode() if isinstance(v, bytes) else v for k, v in attrs.items()}
    probe = helper.make_node(
        "Resize", ["x", "roi", "scales"], ["y"], axes=[1], extrapolation_value=0.0, **attrs
    )
    evaluator = ReferenceEvaluator(probe, opsets={"": max(version, 18)})
    feeds = {
        "roi": np.array(roi if roi is not None else [], np.float32),
        "scales": np.array([scale], np.float32),
    }
    (matrix,) = evaluator.run(None, {"x": np.eye(n), **feeds})
    probe_one = helper.make_node(
        "Resize", ["x", "roi", "scales"], ["y"], axes=[1], extrapolation_value=1.0, **attrs
    )
    evaluator = ReferenceEvaluator(probe_one, opsets={"": max(version, 18)})
    (edge,) = evaluator.run(None, {"x": np.zeros((1, n)), **feeds})
    return np.asarray(matrix, np.float64).T, np.asarray(edge[0]) == 1.0


def _is_identity(matrix: np.ndarray) -> bool:
    return matrix.shape[0] == matrix.shape[1] and np.array_equal(matrix, np.eye(len(matrix)))


def _out_shape(shape: tuple[int, ...], plan: dict) -> tuple[int, ...]:
    return tuple(plan[a][1] if a in plan else d for a, d in enumerate(shape))


def _elem_dtype(elem: int | None) -> Any:
    """The numpy scalar type of an ONNX element type, or None (none, or no numpy one)."""
    from onnx import helper

    try:
        return None if elem is None else helper.tensor_dtype_to_np_dtype(elem).type
    except KeyError:
        return None


def _reproduces(
    node: Any,
    nodes: list[Any],
    inits: list[Any],
    shape: tuple[int, ...],
    dtype: Any,
    consts: Mapping[str, Any],
    opset: int,
) -> bool:
    """True when ``nodes`` compute ``node``'s output on a random input, per the reference."""
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    if int(np.prod(shape)) > PROBE_LIMIT:
        return False
    rng = np.random.default_rng(0)
    if dtype in _FLOATS:
        x = rng.standard_normal(shape).astype(dtype)
    else:
        x = rng.integers(0, 100, shape).astype(dtype)
    feeds = {node.input[0]: x}
    tensor_type = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    inputs = [helper.make_tensor_value_info(node.input[0], tensor_type, list(shape))]
    outputs = [helper.make_tensor_value_info(node.output[0], tensor_type, None)]
    given = [consts[n] for n in node.input[1:] if n]
    imports = [helper.make_opsetid("", opset)]
    try:
        want, got = (
            np.asarray(
                ReferenceEvaluator(
                    helper.make_model(
                        helper.make_graph(body, "r", inputs, outputs, weights),
                        opset_imports=imports,
                    )
                ).run(None, feeds)[0]  # type: ignore[index]
            )
            for body, weights in (([node], given), (nodes, inits))
        )
    except Exception:  # noqa: BLE001
        return False
    if want.shape != got.shape:
        return False
    tol = 1e-5 if dtype == np.float64 else 1e-3
    return bool(np.allclose(got.astype(np.float64), want.astype(np.float64), rtol=tol, atol=tol))
