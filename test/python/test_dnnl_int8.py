"""dnnl on quantized models: int8 convolutions (u8/s8 sources, s8 weights recovered from
the folded f32 weights), quantize/dequantize as oneDNN reorders, residual adds as int8
sum post-ops, max pooling on the integers; checked against IREE alone on the same model
and against onnxruntime's int8 kernels."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import byoc_mlir
from byoc_mlir.codegen.recognisers import int8_weights

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from test_dnnl import only, payload_files, region_calls  # noqa: E402
from test_quantized import Calibration, quantize, quantized  # noqa: E402

SHAPE = (1, 8, 12, 12)


def test_int8_weights_are_recovered_exactly_or_refused() -> None:
    rng = np.random.default_rng(0)
    q = rng.integers(-127, 128, (6, 4, 3, 3)).astype(np.int8)
    q[:, 0, 0, 0] = 127  # a symmetric quantizer maps each channel's largest weight to 127
    q[1, 0, 0, 0] = -128  # or to -128 (pt2e's [-128, 127]), channel by channel
    scales = rng.uniform(1e-3, 1e-1, 6).astype(np.float32)
    w = q.astype(np.float32) * scales[:, None, None, None]
    got = int8_weights(w, 0)
    assert got is not None
    np.testing.assert_array_equal(got[0], q)
    np.testing.assert_allclose(got[1], scales, rtol=1e-6)
    # the same along another axis (HWCF weights), and per tensor (one scale)
    hwcf = np.ascontiguousarray(np.transpose(w, (2, 3, 1, 0)))
    again = int8_weights(hwcf, 3)
    assert again is not None
    np.testing.assert_array_equal(again[0], np.transpose(q, (2, 3, 1, 0)))
    q[:, 0, 0, 0] = 5  # per tensor: only one channel holds the largest weight
    q[2, 0, 0, 0] = -128
    tensor_wide = q.astype(np.float32) * np.float32(0.01)
    per_tensor = int8_weights(tensor_wide, 0)
    assert per_tensor is not None and np.all(per_tensor[1] == per_tensor[1][0])
    np.testing.assert_array_equal(per_tensor[0], q)
    # float weights that are not such a product are refused (they stay f32)
    assert int8_weights(rng.standard_normal((6, 4, 3, 3)).astype(np.float32), 0) is None
    assert int8_weights(np.full((2, 2), np.nan, np.float32), 0) is None


def _w(rng: np.random.Generator, name: str, *shape: int, scale: float = 0.2) -> Any:
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def residual_cnn() -> Any:
    """conv+relu, max pool, a residual block (two convs added to the pool's output),
    ReLU, a 1x1 conv: what ResNet is made of."""
    rng = np.random.default_rng(5)
    c = SHAPE[1]
    inits = [
        _w(rng, "w0", c, c, 3, 3), _w(rng, "b0", c, scale=0.1),
        _w(rng, "w1", c, c, 3, 3), _w(rng, "b1", c, scale=0.1),
        _w(rng, "w2", c, c, 1, 1), _w(rng, "b2", c, scale=0.1),
        _w(rng, "w3", 4, c, 1, 1), _w(rng, "b3", 4, scale=0.1),
    ]  # fmt: skip
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c0"], ["r0"]),
        helper.make_node("MaxPool", ["r0"], ["p0"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p0", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"]),
        helper.make_node("Add", ["c2", "p0"], ["sum"]),
        helper.make_node("Relu", ["sum"], ["r2"]),
        helper.make_node("Conv", ["r2", "w3", "b3"], ["y"]),
    ]
    out = [1, 4, SHAPE[2] // 2, SHAPE[3] // 2]
    graph = helper.make_graph(
        nodes,
        "residual",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(SHAPE))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def qdq_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("int8")
    src, out = tmp / "float.onnx", tmp / "qdq.onnx"
    onnx.save(residual_cnn(), src)
    return quantize(src, out, Calibration(SHAPE))


def assert_within_steps(
    compiled: Any, path: Path, inputs: list[np.ndarray], host: int, ort_steps: int | None = None
) -> None:
    """The bundle's output is within ``host`` quantization steps of IREE alone on the
    same model (the exact QDQ arithmetic) and, given ``ort_steps``, within that many of
    onnxruntime's int8 kernels."""
    (y,) = compiled(*inputs)
    (exact,) = byoc_mlir.compile(path, backends=[])(*inputs)
    step = _output_step(path)
    assert np.abs(y - exact).max() <= host * step + 1e-6
    if ort_steps is not None:
        session = ort.InferenceSession(str(path))
        feeds = {i.name: x for i, x in zip(session.get_inputs(), inputs, strict=True)}
        (expected,) = session.run(None, feeds)
        assert np.abs(y - expected).max() <= ort_steps * step + 1e-6


def _output_step(model: Path) -> float:
    """The scale of the quantize that feeds the model's last dequantize."""
    m = onnx.load(str(model))
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    last = [n for n in m.graph.node if n.op_type == "DequantizeLinear"][-1]
    return float(inits[last.input[1]])


def test_qdq_network_is_one_int8_region(qdq_model: Path) -> None:
    compiled = byoc_mlir.compile(qdq_model, backends=["dnnl"])
    assert {r["name"]: r["status"] for r in compiled.report["regions"]} == {
        "dnnl.main_0": "offloaded"
    }
    calls = region_calls(compiled)
    # every convolution runs in int8, none in f32
    assert len(only(calls, "bd_qconv")) == 4 and not only(calls, "bd_conv")
    # the residual add is the sum post-op of the block's last convolution, in place (the
    # ReLU after it is the quantize's saturation at zero: onnxruntime drops it)
    sums = [c for c in only(calls, "bd_qconv") if c.post_kinds]
    assert [c.post_kinds for c in sums] == [["BD_QSUM_IN_PLACE"]]
    assert not only(calls, "bd_binary")
    # the max pool reads the integers: no dequantizing reorder feeds it
    (pool,) = only(calls, "bd_pool")
    producers = {c.head[0]: c for c in calls if c.head}
    assert producers[pool.head[1]].fn == "bd_qconv"
    # the input is quantized once; only the last convolution's output is dequantized
    requants = only(calls, "bd_requant")
    assert [c.head[2] for c in requants] == ["dnnl_u8", "dnnl_f32"]
    (region,) = compiled.report["regions"]
    assert region["codegen"]["notes"] == [
        "int8: 4 convolution(s), 0 matmul(s); 2 quantize/dequantize reorder(s)"
    ]
    x = np.random.default_rng(3).standard_normal(SHAPE).astype(np.float32)
    # 2 steps from IREE alone: the fused residual skips one intermediate rounding
    assert_within_steps(compiled, qdq_model, [x], host=2, ort_steps=2)
    compiled.close()


def test_float_weights_keep_the_convolution_in_f32(tmp_path: Path) -> None:
    """Activations quantized but weights not (a float weight tensor): the convolution
    reads an f32 copy of the dequantized input, and the result is still right."""
    rng = np.random.default_rng(2)
    c = SHAPE[1]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["dq"]),
        helper.make_node("Conv", ["dq", "w"], ["y"], pads=[1, 1, 1, 1]),
    ]
    inits = [
        numpy_helper.from_array(np.array(0.05, np.float32), "s"),
        numpy_helper.from_array(np.array(128, np.uint8), "z"),
        _w(rng, "w", c, c, 3, 3),
    ]
    graph = helper.make_graph(
        nodes,
        "fq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(SHAPE))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(SHAPE))],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "fq.onnx"
    onnx.save(model, path)
    compiled = byoc_mlir.compile(path, backends=["dnnl"])
    calls = region_calls(compiled)
    assert len(only(calls, "bd_conv")) == 1 and not only(calls, "bd_qconv")
    (region,) = compiled.report["regions"]
    head, why = region["codegen"]["notes"]
    assert head.startswith("int8: 0 convolution(s), 0 matmul(s)")
    assert why.endswith(
        "linalg.conv_2d_nchw_fchw runs in f32 on the dequantized input: its weights are "
        "not int8 values times per-channel scales"
    )
    x = rng.standard_normal(SHAPE).astype(np.float32)
    (y,) = compiled(x)
    (host,) = byoc_mlir.compile(path, backends=[])(x)
    np.testing.assert_allclose(y, host, rtol=1e-4, atol=1e-4)
    compiled.close()


def test_pt2e_module_convolutions_run_in_int8() -> None:
    """pt2e's weights are symmetric per channel with the range [-128, 127]: a channel's
    largest weight is 127 or -128 steps; both are recovered."""
    torch = pytest.importorskip("torch")
    pt2e = pytest.importorskip("torchao.quantization.pt2e.quantize_pt2e")
    xiq = pytest.importorskip("torchao.quantization.pt2e.quantizer.x86_inductor_quantizer")

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1)

        def forward(self, x: Any) -> Any:
            y = torch.relu(self.conv(x))
            return torch.relu(self.conv2(y) + y)

    torch.manual_seed(0)
    x = torch.randn(1, 3, 8, 8)
    quantizer = xiq.X86InductorQuantizer()
    quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
    prepared = pt2e.prepare_pt2e(torch.export.export(Net().eval(), (x,)).module(), quantizer)
    prepared(x)
    converted = pt2e.convert_pt2e(prepared)
    compiled = byoc_mlir.compile(converted, example_inputs=(x,), backends=["dnnl"])
    calls = region_calls(compiled)
    assert len(only(calls, "bd_qconv")) == 2 and not only(calls, "bd_conv")
    np.testing.assert_allclose(compiled(x.numpy())[0], converted(x).detach().numpy(), atol=1e-5)
    compiled.close()


def test_gemms_run_in_int8(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    nodes = [
        helper.make_node("Gemm", ["x", "w0", "b0"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Gemm", ["r", "w1", "b1"], ["y"]),
    ]
    inits = [_w(rng, "w0", 32, 64), _w(rng, "b0", 32), _w(rng, "w1", 32, 10), _w(rng, "b1", 10)]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 10])],
        inits,
    )
    src, path = tmp_path / "mlp.onnx", tmp_path / "mlp_qdq.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), src)
    quantize(src, path, Calibration((2, 64), count=4))
    compiled = byoc_mlir.compile(path, backends=["dnnl"])
    calls = region_calls(compiled)
    assert len(only(calls, "bd_qmatmul")) == 2 and not only(calls, "bd_matmul")
    x = rng.standard_normal((2, 64)).astype(np.float32)
    assert_within_steps(compiled, path, [x], host=1, ort_steps=2)
    compiled.close()


def test_ccompiler_int8_kernels(qdq_model: Path) -> None:
    """ccompiler's reference int8 kernels: one per quantized unit (the pads' zeros are the
    input's zero point), int32 sums, requantized in C; within a step of IREE alone."""
    compiled = byoc_mlir.compile(qdq_model, backends=["ccompiler"])
    regions = compiled.report["regions"]
    assert regions and all(r["status"] == "offloaded" for r in regions), regions
    composites = sorted(c for r in regions for c in r["composites"])
    assert composites.count("qconv2d_bias_pad_nchw_fchw") == 2, composites
    assert composites.count("qconv2d_bias_nchw_fchw") == 2, composites
    sources = [p.read_text() for p in (compiled.bundle / "artifacts").glob("*.c")]
    assert any("int acc = 0;" in s and "static const signed char" in s for s in sources)
    x = np.random.default_rng(3).standard_normal(SHAPE).astype(np.float32)
    assert_within_steps(compiled, qdq_model, [x], host=1, ort_steps=2)
    compiled.close()


def test_concat_of_quantized_branches_stays_int8(tmp_path: Path) -> None:
    """Two branches quantized with their own scales, concatenated, quantized again (an
    Inception module): each branch is requantized to the result's scale and the concat
    runs on the integers; as exact as dequantize, concat, quantize."""
    path = quantized(tmp_path, "qdq")
    compiled = byoc_mlir.compile(path, backends=["dnnl"])
    calls = region_calls(compiled)
    assert len(only(calls, "bd_concat")) == 1
    source = payload_files(compiled, "dnnl.main_0")["region.c"].decode()
    listed = re.search(r"bd_concat\(R, \d+, \d+, 2, \(const int\[\]\)\{(\d+), (\d+)\}\)", source)
    assert listed is not None, source
    produced = {c.head[0]: c for c in calls if c.head}
    for s in listed.groups():  # requantized branches, none dequantized to f32
        assert produced[s].fn in ("bd_qconv", "bd_requant"), produced[s]
        assert produced[s].fn != "bd_requant" or produced[s].head[2] == "dnnl_u8"
    x = np.random.default_rng(5).standard_normal((1, 3, 16, 16)).astype(np.float32)
    (y,) = compiled(x)
    (host,) = byoc_mlir.compile(path, backends=[])(x)
    np.testing.assert_array_equal(y, host)
    compiled.close()


def test_quantize_dequantize_between_float_ops_becomes_post_ops(tmp_path: Path) -> None:
    """A quantize whose result is only dequantized and read by float ops (onnxruntime
    wraps BERT's elementwise ops so): no int8 tensor, the producer rounds and clamps its
    own result as post-ops (scale, round, clip, scale back)."""
    nodes = [
        helper.make_node("Mul", ["x", "y"], ["m"]),
        helper.make_node("QuantizeLinear", ["m", "s", "z"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["dq"]),
        helper.make_node("Add", ["dq", "x"], ["out"]),
    ]
    inits = [
        numpy_helper.from_array(np.array(0.05, np.float32), "s"),
        numpy_helper.from_array(np.array(100, np.uint8), "z"),
    ]
    spec = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [8, 16]) for n in ("x", "y")]
    graph = helper.make_graph(
        nodes, "fq", spec, [helper.make_tensor_value_info("out", TensorProto.FLOAT, [8, 16])],
        inits,
    )  # fmt: skip
    path = tmp_path / "fq.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    compiled = byoc_mlir.compile(path, backends=["dnnl"])
    calls = region_calls(compiled)
    assert not only(calls, "bd_requant")
    (mul, _) = only(calls, "bd_binary")
    assert mul.post_kinds == ["BD_LINEAR", "BD_ROUND", "BD_CLIP", "BD_LINEAR"]
    rng = np.random.default_rng(8)
    x, y = (rng.standard_normal((8, 16)).astype(np.float32) * 3 for _ in range(2))
    (got,) = compiled(x, y)
    (host,) = byoc_mlir.compile(path, backends=[])(x, y)
    # the same roundings but for y * (1 / s) against y / s in the last bit: a tie may
    # round the other way (one step)
    diff = np.abs(got - host)
    assert diff.max() <= 0.05 + 1e-6
    assert np.mean(diff <= 1e-6) > 0.99, np.sort(diff.reshape(-1))[-8:]
    compiled.close()


def test_residual_add_read_as_float_is_not_an_int8_sum(tmp_path: Path) -> None:
    """The residual network ending in a global average pool: the last quantize is only
    read by float ops, so it becomes post-ops of the add, and the add cannot be the
    convolution's int8 sum (whose destination would then be f32)."""
    model = residual_cnn()
    graph = model.graph
    graph.node.remove(graph.node[-1])
    graph.node.append(helper.make_node("GlobalAveragePool", ["r2"], ["y"]))
    for k, d in enumerate((1, SHAPE[1], 1, 1)):
        graph.output[0].type.tensor_type.shape.dim[k].dim_value = d
    src, path = tmp_path / "float.onnx", tmp_path / "qdq.onnx"
    onnx.save(model, src)
    quantize(src, path, Calibration(SHAPE))
    compiled = byoc_mlir.compile(path, backends=["dnnl"])
    calls = region_calls(compiled)
    assert all(not c.post_kinds for c in only(calls, "bd_qconv"))
    (add,) = only(calls, "bd_binary")
    assert add.post_kinds == ["BD_LINEAR", "BD_ROUND", "BD_CLIP", "BD_LINEAR"]
    x = np.random.default_rng(3).standard_normal(SHAPE).astype(np.float32)
    assert_within_steps(compiled, path, [x], host=1)
    compiled.close()


def test_batchnorm_left_between_quantized_ops_folds_into_the_convolution(
    tmp_path: Path,
) -> None:
    """A model quantized without onnxruntime's pre-processing keeps its BatchNorm as
    float ops between the convolution's quantize/dequantize and the next quantize: the
    quantize → dequantize becomes post-ops, and BatchNorm's per-channel subtract/multiply/
    add become binary post-ops of the same int8 convolution (no separate primitives)."""
    rng = np.random.default_rng(9)
    c = SHAPE[1]
    vectors = {
        "scale": rng.uniform(0.5, 1.5, c), "bias": rng.standard_normal(c) * 0.1,
        "mean": rng.standard_normal(c) * 0.1, "var": rng.uniform(0.5, 1.5, c),
    }  # fmt: skip
    inits = [_w(rng, "w0", c, c, 3, 3), _w(rng, "w1", c, c, 1, 1)]
    inits += [numpy_helper.from_array(v.astype(np.float32), k) for k, v in vectors.items()]
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c0", "scale", "bias", "mean", "var"], ["bn"]),
        helper.make_node("Relu", ["bn"], ["r"]),
        helper.make_node("Conv", ["r", "w1"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "bn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(SHAPE))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(SHAPE))], inits,
    )  # fmt: skip
    src = tmp_path / "float.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), src)
    path = quantize(src, tmp_path / "qdq.onnx", Calibration(SHAPE))
    compiled = byoc_mlir.compile(path, backends=["dnnl"])
    calls = region_calls(compiled)
    first = only(calls, "bd_qconv")[0]
    assert "BD_ROUND" in first.post_kinds, first.post_kinds
    assert any(k.startswith("BD_BIN_") for k in first.post_kinds), first.post_kinds
    assert not only(calls, "bd_binary")
    x = rng.standard_normal(SHAPE).astype(np.float32)
    assert_within_steps(compiled, path, [x], host=1)
    compiled.close()
