"""Quantized models in: ONNX QDQ and QOperator models from onnxruntime's own quantizer
(its contrib ops rewritten to QDQ), and pt2e-quantized torch modules, compiled and run
against onnxruntime / torch with the integers they declare."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import byoc_mlir
from byoc_mlir import ByocError
from byoc_mlir.frontends import onnx_decompose

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnxruntime.quantization import (  # noqa: E402
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_static,
)

SHAPE = (1, 3, 16, 16)


def float_cnn() -> Any:
    """conv+bias+relu twice in two branches, concat, average pool, gemm, softmax: the ops
    onnxruntime's QOperator format turns into QLinearConv and contrib ops."""
    rng = np.random.default_rng(0)

    def w(name: str, *shape: int, scale: float = 0.3) -> Any:
        return numpy_helper.from_array(
            (rng.standard_normal(shape) * scale).astype(np.float32), name
        )

    inits = [
        w("w0", 8, 3, 3, 3), w("b0", 8, scale=0.1), w("w1", 4, 8, 1, 1), w("b1", 4, scale=0.1),
        w("w2", 4, 8, 3, 3), w("b2", 4, scale=0.1), w("fc", 8, 10), w("fcb", 10, scale=0.1),
    ]  # fmt: skip
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c0"], ["r0"]),
        helper.make_node("Conv", ["r0", "w1", "b1"], ["c1"]),
        helper.make_node("Conv", ["r0", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("Concat", ["r1", "r2"], ["cat"], axis=1),
        helper.make_node("GlobalAveragePool", ["cat"], ["pool"]),
        helper.make_node("Flatten", ["pool"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc", "fcb"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["y"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(SHAPE))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


class Calibration(CalibrationDataReader):
    """``count`` seeded standard-normal inputs ``x`` of ``shape``."""

    def __init__(self, shape: tuple[int, ...] = SHAPE, count: int = 8) -> None:
        rng = np.random.default_rng(1)
        self.data = iter(
            [{"x": rng.standard_normal(shape).astype(np.float32)} for _ in range(count)]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.data, None)


def quantize(src: Path, out: Path, reader: CalibrationDataReader, fmt: str = "qdq") -> Path:
    """onnxruntime's static quantization (QDQ or QOperator): per-channel s8 weights, u8
    activations."""
    quantize_static(
        str(src),
        str(out),
        reader,
        quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    return out


def quantized(tmp: Path, fmt: str) -> Path:
    src = tmp / "float.onnx"
    onnx.save(float_cnn(), src)
    return quantize(src, tmp / f"{fmt}.onnx", Calibration(), fmt)


def ort_run(model: Any, x: np.ndarray) -> np.ndarray:
    data = model.SerializeToString() if not isinstance(model, str | Path) else str(model)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("quantized")
    return {fmt: quantized(tmp, fmt) for fmt in ("qdq", "qop")}


def test_qoperator_model_has_contrib_ops(models: dict[str, Path]) -> None:
    """The fixture is what onnxruntime's quantizer writes: QLinearConv and contrib ops."""
    ops = {(n.domain, n.op_type) for n in onnx.load(models["qop"]).graph.node}
    assert ("", "QLinearConv") in ops
    assert {("com.microsoft", "QLinearConcat"), ("com.microsoft", "QGemm")} <= ops


def test_contrib_rewrites_compute_what_onnxruntime_computes(models: dict[str, Path]) -> None:
    """The QDQ forms the rewrites produce, run by onnxruntime itself, give its answers."""
    model = onnx.load(models["qop"])
    rewritten, ops = onnx_decompose.rewrite(model, onnx_decompose.BEFORE)
    assert "com.microsoft.QLinearConcat" in ops and "QLinearConv" in ops
    assert not any(n.domain == "com.microsoft" for n in rewritten.graph.node)
    x = np.random.default_rng(2).standard_normal(SHAPE).astype(np.float32)
    np.testing.assert_array_equal(ort_run(rewritten, x), ort_run(model, x))


@pytest.mark.parametrize("fmt", ["qdq", "qop"])
@pytest.mark.parametrize("backends", [[], ["ccompiler"], ["dnnl"]], ids=["host", "cc", "dnnl"])
def test_quantized_onnx_runs_like_onnxruntime(
    models: dict[str, Path], fmt: str, backends: list[str]
) -> None:
    compiled = byoc_mlir.compile(models[fmt], backends=backends)
    x = np.random.default_rng(3).standard_normal(SHAPE).astype(np.float32)
    (y,) = compiled(x)
    expected = ort_run(models[fmt], x)
    assert y.dtype == expected.dtype and y.shape == expected.shape
    # the softmax output is requantized with scale 1/256: within 2 steps of onnxruntime's
    # integer kernels, and the same class
    assert np.abs(y - expected).max() <= 2 / 256 + 1e-6
    assert y.argmax() == expected.argmax()


def test_unknown_contrib_op_is_refused_by_name(tmp_path: Path) -> None:
    node = helper.make_node("QLinearWhere", ["c", "x", "s", "z"], ["y"], domain="com.microsoft")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info(n, TensorProto.UINT8, [4]) for n in ("c", "x", "s", "z")],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [4])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    with pytest.raises(ByocError, match=r"contrib op com\.microsoft\.QLinearWhere.*QLinearConcat"):
        byoc_mlir.compile(model, backends=[])


def test_pt2e_quantized_module_and_exported_program() -> None:
    torch = pytest.importorskip("torch")
    pt2e = pytest.importorskip("torchao.quantization.pt2e.quantize_pt2e")
    xiq = pytest.importorskip("torchao.quantization.pt2e.quantizer.x86_inductor_quantizer")

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.fc = torch.nn.Linear(8 * 8 * 8, 10)

        def forward(self, x: Any) -> Any:
            return self.fc(torch.relu(self.conv(x)).flatten(1))

    torch.manual_seed(0)
    net = Net().eval()
    x = torch.randn(1, 3, 8, 8)
    quantizer = xiq.X86InductorQuantizer()
    quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
    prepared = pt2e.prepare_pt2e(torch.export.export(net, (x,)).module(), quantizer)
    prepared(x)
    converted = pt2e.convert_pt2e(prepared)
    # the converted module refuses .eval(); it used to end the compile with that error
    with pytest.raises(NotImplementedError):
        converted.eval()
    compiled = byoc_mlir.compile(converted, example_inputs=(x,), backends=["dnnl"])
    np.testing.assert_allclose(compiled(x.numpy())[0], converted(x).detach().numpy(), atol=1e-5)
    program = torch.export.export(net, (x,))
    compiled = byoc_mlir.compile(program, backends=[])
    np.testing.assert_allclose(compiled(x.numpy())[0], net(x).detach().numpy(), atol=1e-5)


def test_check_reports_integer_outputs_in_steps_and_dtype_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from byoc_mlir.tools import byoc_run

    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])]
    inits = [
        numpy_helper.from_array(np.array(0.05, np.float32), "s"),
        numpy_helper.from_array(np.array(128, np.uint8), "z"),
    ]
    graph = helper.make_graph(
        nodes,
        "q",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [4, 8])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    byoc_mlir.compile(model, backends=[], out_dir=tmp_path / "b").close()
    assert byoc_run.run([str(tmp_path / "b"), "--check"]) == 0
    out = capsys.readouterr().out
    assert "output 0: uint8[4, 8]" in out and "(0 quantization steps)" in out
    # an output whose dtype changed (uint8 read back as int8) fails the check, named
    args = byoc_run.build_parser().parse_args([str(tmp_path / "b"), "--check"])
    compiled = byoc_mlir.Compiled(tmp_path / "b")
    x = np.linspace(-3, 3, 32, dtype=np.float32).reshape(4, 8)
    (y,) = compiled(x)
    byoc_run._tolerances(compiled, args)
    code, report = byoc_run._check(compiled, [x], [y.view(np.int8)], args)
    compiled.close()
    assert code == 1 and report[0]["changed"] == "int8[4, 8] where the host build gives uint8[4, 8]"
    assert "MISMATCH: the bundle returns int8[4, 8]" in capsys.readouterr().out


def test_qdq_units_are_partitioned_with_int8_edges(models: dict[str, Path]) -> None:
    """Every conv and the Gemm become dequantize → op → bias → quantize units of the
    testing backend; the regions they form read and write the quantized tensors."""
    compiled = byoc_mlir.compile(models["qdq"], backends=["testing"])
    regions = compiled.report["regions"]
    composites = [c for r in regions for c in r["composites"]]
    assert {"qconv2d_bias_pad_nchw_fchw", "qconv2d_bias_nchw_fchw", "qmatmul_bias"} <= set(
        composites
    )
    for r in regions:
        assert r["inputs"][0].endswith("xi8>"), r  # the activation, still quantized
        assert r["outputs"] and all(o.endswith("xi8>") for o in r["outputs"]), r
    convs = [o for o in compiled.report["ops"] if o["op"] == "linalg.conv_2d_nchw_fchw"]
    assert len(convs) == 3 and all(o["region"] for o in convs)
    # the shared squeeze output was dequantized once per reader, each copy in its unit
    dequantize = [o for o in compiled.report["ops"] if o["kind"] == "generic:dequantize"]
    assert sum(1 for o in dequantize if o["region"]) == 4
    x = np.random.default_rng(4).standard_normal(SHAPE).astype(np.float32)
    np.testing.assert_array_equal(compiled(x)[0], byoc_mlir.compile(models["qdq"], [])(x)[0])
