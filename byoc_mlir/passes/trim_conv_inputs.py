"""``byoc-trim-conv-inputs``: a strided window that leaves input rows unread reads a slice.

A convolution or pooling whose last window stops short of the input's end (kernel 2,
stride 2 over 3 columns reads columns 0-1) is valid linalg and valid ONNX, but IREE 3.13
cannot compile it with any flags: once generalised, "'linalg.generic' op inferred
input/output operand #1 has shape's dimension #2 to be 3, but found 2" (found by the
fuzzer; host-only refused the model). This pass gives such an op a
``tensor.extract_slice`` of exactly the rows and columns it reads, which computes the
same values and compiles. The driver runs it on the host module only when IREE has
refused the module without it (`byoc_mlir.host_compile`): ResNet's strided convolutions
also leave a row unread and compile fine, and a slice in front of an offloaded
convolution would split its region.
"""

from __future__ import annotations

from dataclasses import dataclass

from iree.compiler import ir
from iree.compiler.dialects import tensor

from byoc_mlir.dataflow import FunctionGraph
from byoc_mlir.passes.base import ModulePass

# op name -> (spatial dims of the input, spatial dims of the filter / window operand)
LAYOUTS = {
    "linalg.conv_2d_nhwc_hwcf": ((1, 2), (0, 1)),
    "linalg.conv_2d_nhwc_fhwc": ((1, 2), (1, 2)),
    "linalg.conv_2d_nchw_fchw": ((2, 3), (2, 3)),
    "linalg.depthwise_conv_2d_nhwc_hwc": ((1, 2), (0, 1)),
    "linalg.depthwise_conv_2d_nhwc_hwcm": ((1, 2), (0, 1)),
    "linalg.depthwise_conv_2d_nchw_chw": ((2, 3), (1, 2)),
    "linalg.pooling_nhwc_sum": ((1, 2), (0, 1)),
    "linalg.pooling_nhwc_max": ((1, 2), (0, 1)),
    "linalg.pooling_nhwc_min": ((1, 2), (0, 1)),
    "linalg.pooling_nchw_sum": ((2, 3), (0, 1)),
    "linalg.pooling_nchw_max": ((2, 3), (0, 1)),
}


@dataclass(frozen=True)
class TrimConvInputsPass(ModulePass):
    """No options."""

    NAME = "byoc-trim-conv-inputs"

    def apply(self, module_op: ir.Operation) -> None:
        trim_conv_inputs(module_op)

    def run(self, module_op: ir.Operation, graphs: list[FunctionGraph]) -> None:
        trim_conv_inputs(module_op)


def trim_conv_inputs(module_op: ir.Operation) -> int:
    """Slices the input of every window op that leaves input rows unread; returns how many."""
    ops: list[ir.Operation] = []

    def collect(op: ir.Operation) -> ir.WalkResult:
        if op.name in LAYOUTS:
            ops.append(op)
        return ir.WalkResult.ADVANCE

    module_op.walk(collect)
    trimmed = 0
    for op in ops:
        needed = _needed_shape(op)
        if needed is None:
            continue
        source = op.operands[0]
        with ir.InsertionPoint(op), op.location:
            sliced = ir.RankedTensorType.get(needed, source.type.element_type)
            view = tensor.ExtractSliceOp(
                sliced, source, [], [], [], [0] * len(needed), needed, [1] * len(needed)
            )
        op.operands[0] = view.result
        trimmed += 1
    return trimmed


def _needed_shape(op: ir.Operation) -> list[int] | None:
    """The input shape the op reads, if smaller than the input (static shapes only)."""
    in_dims, k_dims = LAYOUTS[op.name]
    types = [v.type for v in (op.operands[0], op.operands[1], op.results[0])]
    if not all(isinstance(t, ir.RankedTensorType) and t.has_static_shape for t in types):
        return None
    source, window, out = (ir.RankedTensorType(t).shape for t in types)
    strides = _pair(op, "strides")
    dilations = _pair(op, "dilations")
    needed = list(source)
    for axis, (d, k) in enumerate(zip(in_dims, k_dims, strict=True)):
        needed[d] = (out[d] - 1) * strides[axis] + (window[k] - 1) * dilations[axis] + 1
    if needed == list(source) or any(n > s or n < 1 for n, s in zip(needed, source, strict=True)):
        return None
    return needed


def _pair(op: ir.Operation, name: str) -> list[int]:
    if name not in op.attributes:
        return [1, 1]
    attr = op.attributes[name]
    return [int(x) for x in ir.DenseIntElementsAttr(attr)]
