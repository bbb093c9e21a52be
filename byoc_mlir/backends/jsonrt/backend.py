"""The ``jsonrt`` reference backend: the runtime route, like TVM's JSON runtime example.

Codegen writes each outlined region as a small JSON graph (inputs, outputs, nodes in
program order, weights); at run time `jsonrt_runtime.load` parses it once and runs it
with numpy, served to the compiled module as a VM import. The payload format is
documented in `byoc_mlir.backends.jsonrt.runtime`.

It runs f32 matmul, batch_matmul, fill, and the add/sub/mul/bias-add/relu/clamp/gelu
generics, with static or dynamic dimensions (the runtime sees the real shapes at each
call; a fill of a dynamic size reads its init for the shape), and statically shaped
conv2d (NCHW/FCHW and NHWC/HWCF, any strides and dilations, no padding). numpy has
transcendental functions, so unlike ``testing`` it accepts GELU.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from iree.compiler import ir
from iree.compiler.dialects import arith, tensor
from iree.compiler.dialects import math as math_d

from byoc_mlir.backends.jsonrt.runtime import FORMAT, VERSION, JsonrtError, load
from byoc_mlir.codegen.backend import (
    Backend,
    CheckContext,
    KindKey,
    Reject,
    bias_epilogues,
)
from byoc_mlir.codegen.checks import all_of, ins_outs, tensor_types
from byoc_mlir.codegen.hook import CodegenOptions, RegionView, RuntimeArtifact, TensorSpec
from byoc_mlir.codegen.recognisers import (
    ADD,
    BIAS_ADD,
    BROADCAST_MUL,
    BROADCAST_SUB,
    CLAMP,
    GELU,
    MUL,
    RELU,
    SUB,
    GenericView,
)
from byoc_mlir.linalg_ops import linalg

__all__ = ["BACKEND", "JsonrtError", "codegen", "load"]

_CONSTANT = arith.ConstantOp.OPERATION_NAME
_EMPTY = tensor.EmptyOp.OPERATION_NAME
_MAX = (arith.MaximumFOp.OPERATION_NAME, arith.MaxNumFOp.OPERATION_NAME)
_DEFAULT_MAPS = {  # the maps of a matmul / batch_matmul without ``indexing_maps``
    linalg.MatmulOp.OPERATION_NAME: [[0, 2], [2, 1], [0, 1]],
    linalg.BatchMatmulOp.OPERATION_NAME: [[0, 1, 3], [0, 3, 2], [0, 1, 2]],
}

# --- serialising a region -----------------------------------------------------------------


def encode_constant(array: np.ndarray) -> dict[str, Any]:
    """A weight as JSON: ``splat`` when all elements are equal, else base64 raw bytes."""
    data = np.asarray(array, dtype="<f4", order="C")  # rank 0 stays rank 0
    entry: dict[str, Any] = {"shape": list(data.shape), "dtype": "f32"}
    flat = data.reshape(-1)
    if flat.size and bool(np.all(flat == flat[0])) and not math.isnan(float(flat[0])):
        entry["splat"] = float(flat[0])
    else:
        entry["data"] = base64.b64encode(data.tobytes()).decode("ascii")
    return entry


def dumps(document: Mapping[str, Any]) -> bytes:
    """The canonical bytes of a payload document: sorted keys (deterministic), one
    input/output/constant/node per line (readable in a diff)."""

    def one(value: Any) -> str:
        return json.dumps(value, sort_keys=True)

    lines = []
    for key in sorted(document):
        value = document[key]
        if isinstance(value, list) and value:
            body = ",\n".join(f"  {one(v)}" for v in value)
            lines.append(f" {one(key)}: [\n{body}\n ]")
        elif isinstance(value, dict) and value:
            body = ",\n".join(f"  {one(k)}: {one(value[k])}" for k in sorted(value))
            lines.append(f" {one(key)}: {{\n{body}\n }}")
        else:
            lines.append(f" {one(key)}: {one(value)}")
    return ("{\n" + ",\n".join(lines) + "\n}\n").encode("utf-8")


Node = tuple[str, list[ir.Value], dict[str, Any]]  # (op, data inputs, attrs)


def codegen(region: RegionView, options: CodegenOptions) -> RuntimeArtifact:
    """The hook: the region as a jsonrt payload.

    Raises:
        JsonrtError: an op or value jsonrt cannot serialise (the region stays on the host).
    """
    return RuntimeArtifact(dumps(_Graph(region).document()))


class _Graph:
    """Gives every value an id while walking the region once, in program order."""

    def __init__(self, region: RegionView):
        self.region = region
        self.ids: dict[ir.Value, str] = {}
        self.constants: dict[str, dict[str, Any]] = {}
        self.nodes: list[dict[str, Any]] = []
        for i, (arg, spec) in enumerate(zip(region.args, region.inputs, strict=True)):
            self.ids[arg] = f"arg{i}"
            _require_f32(spec, f"{region.name}: input {i}")

    def document(self) -> dict[str, Any]:
        for rop in self.region.ops:
            serialise = _SERIALISERS.get(rop.kind)
            if serialise is None:
                raise JsonrtError(
                    f"{self.region.name}: jsonrt cannot serialise {rop.kind_name} "
                    f"(valid: {', '.join(sorted(_describe(k) for k in _SERIALISERS))})",
                    location=str(rop.op.location),
                )
            name, inputs, attrs = serialise(rop.op)
            node: dict[str, Any] = {"op": name, "inputs": [self._ref(v, rop.op) for v in inputs]}
            if attrs:
                node["attrs"] = attrs
            if rop.composite is not None:
                node["composite"] = rop.composite.name
            self._add(node, rop.op.results[0], rop.op)
        outputs = [
            {"id": self._ref(v, self.region.func), "shape": list(s.shape), "dtype": s.dtype}
            for v, s in zip(self.region.results, self.region.outputs, strict=True)
        ]
        return {
            "format": FORMAT,
            "version": VERSION,
            "name": self.region.name,
            "inputs": [
                {"id": f"arg{i}", "shape": list(s.shape), "dtype": s.dtype}
                for i, s in enumerate(self.region.inputs)
            ],
            "outputs": outputs,
            "constants": self.constants,
            "nodes": self.nodes,
        }

    def _add(self, node: dict[str, Any], result: ir.Value, at: ir.Operation) -> str:
        spec = TensorSpec.of(result.type)
        _require_f32(spec, f"{self.region.name}: result of {at.name}", at)
        node["result"] = self.ids[result] = f"v{len(self.nodes)}"
        node["shape"] = list(spec.shape)
        self.nodes.append(node)
        return node["result"]

    def _ref(self, v: ir.Value, user: ir.Operation) -> str:
        """The id of ``v``; weights and ``tensor.empty`` get theirs when first read."""
        ref = self.ids.get(v)
        if ref is not None:
            return ref
        array = self.region.constants.get(v)
        if array is not None:
            if array.dtype != np.float32:
                raise JsonrtError(
                    f"{self.region.name}: constant of type {v.type} read by {user.name} "
                    f"(valid: f32 tensors)",
                    location=str(user.location),
                )
            ref = self.ids[v] = f"const{len(self.constants)}"
            self.constants[ref] = encode_constant(array)
            return ref
        owner = v.owner
        if isinstance(owner, ir.OpView) and owner.operation.name == _EMPTY:
            return self._add({"op": "empty", "inputs": []}, v, owner.operation)
        raise JsonrtError(
            f"{self.region.name}: {user.name} reads {v.type} produced outside the ops jsonrt "
            f"serialises",
            location=str(user.location),
        )


def _require_f32(spec: TensorSpec, what: str, at: ir.Operation | None = None) -> None:
    if spec.dtype != "f32":
        raise JsonrtError(
            f"{what} is {spec.mlir}; jsonrt runs f32 only",
            location=str(at.location) if at is not None else "",
        )


def _map_dims(op: ir.Operation) -> list[list[int]] | None:
    """Each indexing map's results as loop dimensions; None if one is not a dimension."""
    maps = [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(op.attributes["indexing_maps"])]
    dims = []
    for m in maps:
        if not all(isinstance(e, ir.AffineDimExpr) for e in m.results):
            return None
        dims.append([ir.AffineDimExpr(e).position for e in m.results])
    return dims


def _einsum_ready(op: ir.Operation) -> list[list[int]] | None:
    """The maps of a contraction if numpy's einsum can run them (every map result is a
    loop dimension and every output dimension is read), else None."""
    dims = _map_dims(op) if "indexing_maps" in op.attributes else _DEFAULT_MAPS[op.name]
    if dims is None or not set(dims[-1]) <= set(dims[0]) | set(dims[1]):
        return None
    return dims


def _scalar(v: ir.Value, user: ir.Operation) -> float:
    owner = v.owner
    if isinstance(owner, ir.OpView) and owner.operation.name == _CONSTANT:
        attr = owner.operation.attributes["value"]
        if isinstance(attr, ir.FloatAttr):
            return float(ir.FloatAttr(attr).value)
    raise JsonrtError(f"{user.name}: {v} is not a float constant", location=str(user.location))


def _contraction(kind: str) -> Callable[[ir.Operation], Node]:
    def serialise(op: ir.Operation) -> Node:
        ins, outs = ins_outs(op)
        maps = _einsum_ready(op)
        if maps is None:
            raise JsonrtError(f"{op.name}: unsupported indexing maps", location=str(op.location))
        return kind, [*ins, outs[0]], {"maps": maps}

    return serialise


def _conv(kind: str) -> Callable[[ir.Operation], Node]:
    def serialise(op: ir.Operation) -> Node:
        ins, outs = ins_outs(op)
        attrs = {
            key: [int(x) for x in ir.DenseIntElementsAttr(op.attributes[key])]
            if key in op.attributes
            else [1, 1]
            for key in ("strides", "dilations")
        }
        return kind, [*ins, outs[0]], attrs

    return serialise


def _fill(op: ir.Operation) -> Node:
    ins, outs = ins_outs(op)
    # A dynamically sized fill reads its init for the shape (known at call time).
    reads = [] if ir.ShapedType(outs[0].type).has_static_shape else [outs[0]]
    return "fill", reads, {"value": _scalar(ins[0], op)}


def _elementwise(op: ir.Operation) -> tuple[GenericView, list[ir.Value], list[list[int]]]:
    view = GenericView.of(op)
    dims = _map_dims(op)
    if view is None or dims is None or dims[-1] != list(range(len(dims[-1]))):
        raise JsonrtError(f"{op.name}: not an elementwise generic", location=str(op.location))
    ins, _ = ins_outs(op)
    return view, ins, dims[:-1]


def _binary(kind: str) -> Callable[[ir.Operation], Node]:
    def serialise(op: ir.Operation) -> Node:
        view, ins, maps = _elementwise(op)
        # The body may combine the block arguments in either order (``addf %in1, %in0``).
        order = [view.args.index(v) for v in view.body[0].operands]
        return kind, [ins[i] for i in order], {"maps": [maps[i] for i in order]}

    return serialise


def _relu(op: ir.Operation) -> Node:
    _, ins, _ = _elementwise(op)
    return "relu", ins, {}


def _clamp(op: ir.Operation) -> Node:
    view, ins, _ = _elementwise(op)
    first, second = view.body
    b1 = _scalar(_other(first, view.args[0]), op)
    b2 = _scalar(_other(second, first.results[0]), op)
    max_first = first.name in _MAX
    lo, hi = (b1, b2) if max_first else (b2, b1)
    return "clamp", ins, {"min": lo, "max": hi, "max_first": max_first}


def _other(binary: ir.Operation, x: ir.Value) -> ir.Value:
    a, b = binary.operands
    return b if a == x else a


def _gelu(op: ir.Operation) -> Node:
    view, ins, _ = _elementwise(op)
    names = {o.name for o in view.body}
    approximation = "erf" if math_d.ErfOp.OPERATION_NAME in names else "tanh"
    return "gelu", ins, {"approximation": approximation}


_SERIALISERS: dict[KindKey, Callable[[ir.Operation], Node]] = {
    linalg.MatmulOp.OPERATION_NAME: _contraction("matmul"),
    linalg.BatchMatmulOp.OPERATION_NAME: _contraction("batch_matmul"),
    linalg.Conv2DNchwFchwOp.OPERATION_NAME: _conv("conv2d_nchw_fchw"),
    linalg.Conv2DNhwcHwcfOp.OPERATION_NAME: _conv("conv2d_nhwc_hwcf"),
    linalg.FillOp.OPERATION_NAME: _fill,
    ADD: _binary("add"),
    SUB: _binary("sub"),
    MUL: _binary("mul"),
    BIAS_ADD: _binary("bias_add"),
    BROADCAST_SUB: _binary("sub"),
    BROADCAST_MUL: _binary("mul"),
    RELU: _relu,
    CLAMP: _clamp,
    GELU: _gelu,
}


def _describe(kind: KindKey) -> str:
    return kind if isinstance(kind, str) else repr(kind)


# --- the backend -----------------------------------------------------------------------

BACKEND = Backend(
    "jsonrt",
    "reference runtime route: regions as JSON graphs run by numpy at run time",
    codegen=codegen,
    runtime=load,
    in_process_safe=True,  # in-tree and tested: its hook runs in process by default
)

f32_static = tensor_types(("f32",), static=True)
f32_any = tensor_types(("f32",))  # dynamic dimensions too: the runtime sees real shapes


def einsum_maps(ctx: CheckContext) -> Reject | None:
    """Matmuls whose indexing maps numpy's einsum can run (no constant/broadcast-only dims)."""
    for member, _ in ctx.each_member():
        if member.name in _DEFAULT_MAPS and _einsum_ready(member) is None:
            return Reject(
                f"{member.name} with indexing maps that are not loop-dimension projections "
                f"covering the output is not supported"
            )
    return None


def constant_fill_value(ctx: CheckContext) -> Reject | None:
    """A fill's value must be a constant: it is stored in the payload."""
    value = ins_outs(ctx.op)[0][0]
    owner = value.owner
    if not (isinstance(owner, ir.OpView) and owner.operation.name == _CONSTANT):
        return Reject("linalg.fill of a value computed at run time is not supported")
    return None


CONVS: Sequence[Any] = (linalg.Conv2DNchwFchwOp, linalg.Conv2DNhwcHwcfOp)
BACKEND.supports(*CONVS, check=f32_static)
BACKEND.supports(
    linalg.MatmulOp,
    linalg.BatchMatmulOp,
    linalg.FillOp,
    ADD,
    SUB,
    MUL,
    BIAS_ADD,
    BROADCAST_SUB,
    BROADCAST_MUL,
    RELU,
    CLAMP,
    GELU,
    check=f32_any,
)
BACKEND.supports(linalg.MatmulOp, linalg.BatchMatmulOp, check=einsum_maps)
BACKEND.supports(linalg.FillOp, check=constant_fill_value)

for conv in CONVS:
    suffix = conv.OPERATION_NAME.removeprefix("linalg.conv_2d_")
    bias_epilogues(
        BACKEND, conv, "conv2d", [(RELU, "relu")], f32_static, match="conv", suffix=f"_{suffix}"
    )
f32_matmul = all_of(f32_any, einsum_maps)
bias_epilogues(BACKEND, linalg.MatmulOp, "matmul", [(RELU, "relu"), (GELU, "gelu")], f32_matmul)
