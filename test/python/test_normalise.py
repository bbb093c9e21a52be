"""Normalising passes: ``byoc-fold-constants`` and ``byoc-fold-batchnorm`` keep a model's
numbers and leave the forms backends match.

- conv → BatchNorm → relu modules (NCHW, NHWC, depthwise; torch's vectors and ONNX's
  1xCx1x1 broadcasts) run with IREE before and after the passes and agree;
- a torch conv-BN-ReLU residual block with a Linear head compiles with folding on and
  off, both match torch; folded, no BatchNorm op and no weight transpose is left;
- an ONNX Conv + BatchNormalization (weights as ``dense_resource`` blobs) folds too.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from conftest import assert_same_numerics, body_ops, compute_ops, functions, parse, run_passes
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from byoc_mlir import Compiled, CompileOptions, compile
from byoc_mlir.passes import FoldBatchnormPass, FoldConstantsPass

PARALLEL4 = ", ".join(['"parallel"'] * 4)
ID4 = "affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>"
BN_OPS = ("arith.subf", "arith.mulf", "math.sqrt", "math.rsqrt")
"""What a BatchNorm lowers to (its divisions become constants; the mean pool divides)."""


def dense(array: np.ndarray) -> str:
    """An ``arith.constant`` literal in MLIR's hex form (exact float32 bits)."""
    shape = "x".join(str(d) for d in array.shape)
    hexed = np.ascontiguousarray(array, dtype="<f4").tobytes().hex().upper()
    return f'dense<"0x{hexed}"> : tensor<{shape}xf32>'


LAYOUTS = {
    # name: (op, input shape, weight shape, output shape, channel dim)
    "nchw": ("linalg.conv_2d_nchw_fchw", (2, 3, 6, 6), (4, 3, 3, 3), (2, 4, 4, 4), 1),
    "nhwc": ("linalg.conv_2d_nhwc_hwcf", (2, 6, 6, 3), (3, 3, 3, 4), (2, 4, 4, 4), 3),
    "depthwise": ("linalg.depthwise_conv_2d_nchw_chw", (2, 3, 6, 6), (3, 3, 3), (2, 3, 4, 4), 1),
}


def conv_bn_text(*cases: tuple[str, bool]) -> str:
    """``@main`` with one chain per (layout, onnx_style) case, each on its own input."""
    args, body, results, types = [], [], [], []
    for k, (layout, onnx_style) in enumerate(cases):
        x_type, lines, out = conv_bn_lines(layout, onnx_style, f"c{k}_")
        args.append(f"%c{k}_x: {x_type}")
        body += lines
        results.append(f"%c{k}_relu")
        types.append(out)
    text = "".join(f"  {line}\n" for line in body)
    return (
        f"func.func @main({', '.join(args)}) -> ({', '.join(types)}) {{\n{text}"
        f"  return {', '.join(results)} : {', '.join(types)}\n}}\n"
    )


def conv_bn_lines(layout: str, onnx_style: bool, p: str) -> tuple[str, list[str], str]:
    """(input type, ops, output type) of conv (zero fill) → bias add → BatchNorm → relu as
    frontends lower it: the scale ``1 / sqrt(var + eps)`` as generics on constants, then
    sub / mul / mul / add of per-channel constants (``tensor<C>`` through
    ``(d<channel>)``, or with ``onnx_style`` ``tensor<1xCx1x1>`` through
    ``(0, d1, 0, 0)``). SSA names start with ``p``; the input is ``%<p>x``."""
    op, x_shape, w_shape, out_shape, channel = LAYOUTS[layout]
    rng = np.random.default_rng(7)
    n = out_shape[channel]
    out = "tensor<" + "x".join(map(str, out_shape)) + "xf32>"
    x_type = "tensor<" + "x".join(map(str, x_shape)) + "xf32>"
    w_type = "tensor<" + "x".join(map(str, w_shape)) + "xf32>"
    if onnx_style:
        vec_shape, vec_map = (1, n, 1, 1), "affine_map<(d0, d1, d2, d3) -> (0, d1, 0, 0)>"
    else:
        vec_shape, vec_map = (n,), f"affine_map<(d0, d1, d2, d3) -> (d{channel})>"
    vec_type = "tensor<" + "x".join(map(str, vec_shape)) + "xf32>"

    def vec(low: float, high: float) -> str:
        return dense(rng.uniform(low, high, vec_shape).astype(np.float32))

    lines = [
        f"%{p}w = arith.constant {dense(rng.standard_normal(w_shape).astype(np.float32))}",
        f"%{p}bias = arith.constant {vec(-1, 1)}",
        f"%{p}mean = arith.constant {vec(-0.5, 0.5)}",
        f"%{p}var = arith.constant {vec(0.5, 1.5)}",
        f"%{p}gamma = arith.constant {vec(0.5, 1.5)}",
        f"%{p}beta = arith.constant {vec(-0.5, 0.5)}",
        f"%{p}eps = arith.constant 1.0e-05 : f32",
        f"%{p}one = arith.constant 1.0 : f32",
        f"%{p}zero = arith.constant 0.0 : f32",
        f"%{p}e = tensor.empty() : {out}",
        f"%{p}ev = tensor.empty() : {vec_type}",
        f"%{p}f = linalg.fill ins(%{p}zero : f32) outs(%{p}e : {out}) -> {out}",
        f"%{p}c = {op} {{dilations = dense<1> : vector<2xi64>, strides = dense<1> : "
        f"vector<2xi64>}} ins(%{p}x, %{p}w : {x_type}, {w_type}) outs(%{p}f : {out}) -> {out}",
    ]
    vec_id = "affine_map<(d0) -> (d0)>" if not onnx_style else ID4
    vec_iters = '"parallel"' if not onnx_style else PARALLEL4
    for name, src, body in (
        ("ve", "var", f"arith.addf %i, %{p}eps"),
        ("sd", "ve", "math.sqrt %i"),
        ("k", "sd", f"arith.divf %{p}one, %i"),
    ):
        lines.append(
            f"%{p}{name} = linalg.generic {{indexing_maps = [{vec_id}, {vec_id}], "
            f"iterator_types = [{vec_iters}]}} ins(%{p}{src} : {vec_type}) "
            f"outs(%{p}ev : {vec_type}) {{\n^bb0(%i: f32, %o: f32):\n  %r = {body} : f32\n"
            f"  linalg.yield %r : f32\n}} -> {vec_type}"
        )
    prev = f"%{p}c"
    chain = (("bias", "addf"), ("mean", "subf"), ("k", "mulf"), ("gamma", "mulf"), ("beta", "addf"))
    for k, (v, arith_op) in enumerate(chain):
        lines.append(
            f"%{p}y{k} = linalg.generic {{indexing_maps = [{ID4}, {vec_map}, {ID4}], "
            f"iterator_types = [{PARALLEL4}]}} ins({prev}, %{p}{v} : {out}, {vec_type}) "
            f"outs(%{p}e : {out}) {{\n^bb0(%i: f32, %v: f32, %o: f32):\n"
            f"  %r = arith.{arith_op} %i, %v : f32\n  linalg.yield %r : f32\n}} -> {out}"
        )
        prev = f"%{p}y{k}"
    lines.append(
        f"%{p}relu = linalg.generic {{indexing_maps = [{ID4}, {ID4}], iterator_types = "
        f"[{PARALLEL4}]}} ins({prev} : {out}) outs(%{p}e : {out}) {{\n^bb0(%i: f32, %o: f32):\n"
        f"  %r = arith.maximumf %i, %{p}zero : f32\n  linalg.yield %r : f32\n}} -> {out}"
    )
    return x_type, lines, out


CASES = [("nchw", False), ("nchw", True), ("nhwc", False), ("depthwise", False)]
"""(layout, onnx_style): torch's NCHW, ONNX's NCHW, NHWC, depthwise."""


@pytest.mark.parametrize(("layout", "onnx_style"), CASES, ids=["nchw", "onnx", "nhwc", "dw"])
def test_conv_batchnorm_folds_to_conv_bias_relu(layout: str, onnx_style: bool) -> None:
    folded = run_passes(
        conv_bn_text((layout, onnx_style)), [FoldConstantsPass(), FoldBatchnormPass()]
    )
    op = LAYOUTS[layout][0]
    assert compute_ops(folded) == Counter(
        {
            "linalg.fill": 1,
            op: 1,
            "linalg.generic[arith.addf]": 1,
            "linalg.generic[arith.maximumf]": 1,
        }
    )


def test_folded_conv_batchnorm_matches_the_unfolded_chain() -> None:
    # All layouts in one function: two IREE compiles instead of eight.
    text = conv_bn_text(*CASES)
    assert_same_numerics(text, str(run_passes(text, [FoldConstantsPass(), FoldBatchnormPass()])))


def test_fold_constants_alone_computes_the_batchnorm_scale() -> None:
    text = conv_bn_text(*CASES)
    folded = run_passes(text, [FoldConstantsPass()])
    ops = compute_ops(folded)
    assert not [k for k in ops if "math.sqrt" in k or "arith.divf" in k], ops
    assert ops["linalg.generic[arith.mulf]"] == 2 * len(CASES)  # left for fold-batchnorm
    assert_same_numerics(text, str(folded))


# --- through the driver: torch and ONNX models ----------------------------------------


class ResBlock(nn.Module):
    """conv-BN-ReLU, depthwise conv-BN + skip, ReLU, global average pool, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(y + self.bn2(self.conv2(y)))
        return self.fc(y.mean((2, 3)))


@pytest.fixture(scope="module")
def block() -> ResBlock:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = ResBlock()
        with torch.no_grad():
            for bn in (model.bn1, model.bn2):
                bn.running_mean.uniform_(-0.5, 0.5)
                bn.running_var.uniform_(0.5, 1.5)
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-0.5, 0.5)
    return model.eval()


X = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)


@pytest.fixture(scope="module")
def builds(block: ResBlock, tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Compiled]:
    """The block compiled host-only with BatchNorm folding on (True) and off (False)."""
    out = {}
    for fold in (True, False):
        options = CompileOptions(cache_dir=None, fold_batchnorm=fold)
        out[fold] = compile(
            block,
            ["none"],
            example_inputs=(torch.from_numpy(X),),
            out_dir=tmp_path_factory.mktemp(f"fold_{fold}"),
            options=options,
        )
    return out


def host_ops(c: Compiled) -> Counter[str]:
    return compute_ops(parse((c.bundle / "host.mlir").read_text()))


def bn_ops(counts: Counter[str]) -> list[str]:
    return [k for k in counts if any(op in k for op in BN_OPS)]


@pytest.mark.parametrize("fold", [True, False], ids=["folded", "unfolded"])
def test_torch_block_matches_torch(
    block: ResBlock, builds: dict[bool, Compiled], fold: bool
) -> None:
    with torch.no_grad():
        want = block(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(builds[fold](X)[0], want, rtol=1e-5, atol=1e-5)


def test_folded_torch_block_has_no_batchnorm_ops(builds: dict[bool, Compiled]) -> None:
    folded, unfolded = host_ops(builds[True]), host_ops(builds[False])
    assert bn_ops(unfolded), unfolded  # the chain is there without folding
    assert not bn_ops(folded), folded
    # One bias add per conv, the skip add, the mean's sum, the Linear's bias add.
    assert folded["linalg.generic[arith.addf]"] == 5, folded
    assert folded["linalg.conv_2d_nchw_fchw"] == folded["linalg.depthwise_conv_2d_nchw_chw"] == 1


def test_linear_reads_its_weight_as_a_constant(builds: dict[bool, Compiled]) -> None:
    module = parse((builds[True].bundle / "host.mlir").read_text())
    ops = [op for f in functions(module).values() for op in body_ops(f)]
    assert not [op for op in ops if op.name == "linalg.transpose"]
    (matmul,) = [op for op in ops if op.name == "linalg.matmul"]
    weight = matmul.operands[1].owner
    assert weight.name == "arith.constant", weight


def test_onnx_batchnorm_folds_and_matches_onnxruntime(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)

    def init(name: str, array: np.ndarray) -> TensorProto:
        return numpy_helper.from_array(array.astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "g", "beta", "m", "v"], ["n"]),
        helper.make_node("Relu", ["n"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "conv-bn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
        [
            init("w", rng.standard_normal((4, 3, 3, 3))),
            init("b", rng.uniform(-1, 1, 4)),
            init("g", rng.uniform(0.5, 1.5, 4)),
            init("beta", rng.uniform(-0.5, 0.5, 4)),
            init("m", rng.uniform(-0.5, 0.5, 4)),
            init("v", rng.uniform(0.5, 1.5, 4)),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    path = tmp_path / "conv_bn.onnx"
    onnx.save(model, str(path))
    c = compile(path, ["none"], out_dir=tmp_path / "b", options=CompileOptions(cache_dir=None))
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(c(x)[0], session.run(None, {"x": x})[0], rtol=1e-5, atol=1e-5)
    ops = host_ops(c)
    assert not bn_ops(ops), ops
    assert ops["linalg.generic[arith.addf]"] == 1, ops
