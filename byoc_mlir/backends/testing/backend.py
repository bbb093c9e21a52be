"""The in-tree ``testing`` backend: partitioning without codegen.

It accepts matmul, batch_matmul, conv2d (NCHW/FCHW and NHWC/HWCF), fill, elementwise
add/mul/sub, relu/clamp and bias-add generics, and their TOSA equivalents, all f32,
with static or dynamic dimensions (IREE compiles its regions; a dynamic
``tensor.empty`` joins them and takes its sizes as index values), and the quantized
units of its convs and matmuls (dequantize → op [→ bias] → quantize, 8-bit per-tensor,
possibly a pad or flatten after the dequantize), whose edges are int8/uint8 tensors.
It refuses everything else — transcendental generics such as tanh/exp, f64/i64/f16
tensors, a quantize or dequantize alone — with a reason. Lit tests and the property tests use it
to exercise the passes before any real codegen exists.
"""

from __future__ import annotations

from iree.compiler.dialects import tensor, tosa

from byoc_mlir.codegen.backend import (
    ANY,
    Backend,
    bias_epilogues,
    op,
    quantized_units,
)
from byoc_mlir.codegen.checks import eight_bit_quantization, tensor_types
from byoc_mlir.codegen.recognisers import ADD, BIAS_ADD, CLAMP, MUL, RELU, SUB
from byoc_mlir.linalg_ops import linalg

BACKEND = Backend("testing", "reference partition-only backend for tests")

f32_static = tensor_types(("f32",), static=True)
f32_any = tensor_types(("f32",))  # dynamic dimensions too: IREE compiles these regions

CONVS = (linalg.Conv2DNchwFchwOp, linalg.Conv2DNhwcHwcfOp)
BACKEND.supports(
    linalg.MatmulOp,
    linalg.BatchMatmulOp,
    *CONVS,
    linalg.FillOp,
    ADD,
    MUL,
    SUB,
    RELU,
    CLAMP,
    BIAS_ADD,
    tosa.MatMulOp,
    tosa.Conv2DOp,
    tosa.AddOp,
    tosa.MulOp,
    tosa.SubOp,
    tosa.ClampOp,
    check=f32_any,
)
# A tensor.empty with dynamic sizes is an op (a static one is free and cloned): the
# region takes its sizes (computed on the host by tensor.dim) as index values.
BACKEND.supports(tensor.EmptyOp)

for conv in CONVS:
    suffix = conv.OPERATION_NAME.removeprefix("linalg.conv_2d_")
    bias_epilogues(
        BACKEND, conv, "conv2d", [(RELU, "relu")], f32_static, match="conv", suffix=f"_{suffix}"
    )
bias_epilogues(BACKEND, linalg.MatmulOp, "matmul", [(RELU, "relu")], f32_static)
BACKEND.composite(
    "tosa_conv2d_clamp",
    op(tosa.ClampOp, op(tosa.Conv2DOp, name="conv")),
    benefit=2,
    check=f32_static,
)
BACKEND.composite(
    "tosa_matmul_add",
    op(tosa.AddOp, op(tosa.MatMulOp, name="matmul"), ANY),
    benefit=2,
    check=f32_static,
)


for conv in CONVS:
    suffix = conv.OPERATION_NAME.removeprefix("linalg.conv_2d_")
    quantized_units(
        BACKEND, conv, "conv2d", eight_bit_quantization, through=[tensor.PadOp], suffix=f"_{suffix}"
    )
quantized_units(
    BACKEND, linalg.MatmulOp, "matmul", eight_bit_quantization, through=[tensor.CollapseShapeOp]
)

MATMUL_ONLY = Backend(
    "testing_matmul", "partition-only backend that runs f32 matmuls; tests backend priority"
)
MATMUL_ONLY.supports(linalg.MatmulOp, linalg.BatchMatmulOp, tosa.MatMulOp, check=f32_static)
