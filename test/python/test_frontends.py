"""Frontends: a torch.nn.Module (through linalg or TOSA) and an .onnx file compile, run and
match their framework; bad inputs get a ByocError naming the file and what was expected;
cf.assert is stripped; importing byoc_mlir imports neither torch, torch-mlir nor onnx."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from byoc_mlir import ByocError, Compiled, CompileOptions, compile, frontends
from byoc_mlir.frontends import from_torch_tosa

OPTIONS = CompileOptions(cache_dir=None)


class ConvBnNet(nn.Module):
    """conv → BatchNorm → relu → max-pool → linear: BatchNorm brings a cf.assert."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
        return self.fc(y.flatten(1))


@pytest.fixture(scope="module")
def net() -> ConvBnNet:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = ConvBnNet()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.5, 0.5)
        model.bn.running_var.uniform_(0.5, 1.5)
    return model.train()  # compile exports in eval mode and puts it back


def x_input(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((2, 3, 8, 8)).astype(np.float32)


@pytest.mark.parametrize("backend", ["ccompiler", "jsonrt"])
def test_torch_module_compiles_and_matches_torch(
    net: ConvBnNet, backend: str, tmp_path: Path
) -> None:
    x = x_input()
    c = compile(net, [backend], example_inputs=(torch.from_numpy(x),), out_dir=tmp_path / "b",
                options=OPTIONS)  # fmt: skip
    assert net.training, "the module's mode is restored after export"
    net.eval()
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    net.train()
    np.testing.assert_allclose(c(x)[0], want, rtol=1e-5, atol=1e-5)
    offloaded = [r for r in c.report["regions"] if r["status"] == "offloaded"]
    assert any("linalg.conv_2d_nchw_fchw" in r["ops"] for r in offloaded), c.report["regions"]
    assert any("linalg.matmul" in r["ops"] for r in offloaded), c.report["regions"]
    # The BatchNorm's runtime check is gone before partitioning: no host op names it.
    assert "cf.assert" in (c.bundle / "source.mlir").read_text()
    assert not [h for h in c.report["host_ops"] if "cf.assert" in h["reason"]]
    assert "cf.assert" not in (c.bundle / "host.mlir").read_text()


def test_torch_module_takes_numpy_example_inputs(net: ConvBnNet) -> None:
    source = frontends.load(net, [x_input()])
    assert isinstance(source.data, bytes) and source.name == "<torch ConvBnNet>"


def tiny_onnx(opset: int = 9) -> onnx.ModelProto:
    """conv → relu → max-pool (opset 9: needs the upgrade to lower) → flatten → gemm."""
    rng = np.random.default_rng(1)

    def init(name: str, *shape: int) -> TensorProto:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.3, name)

    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5])],
        [init("w", 8, 3, 3, 3), init("b", 8), init("fw", 5, 128), init("fb", 5)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 4
    return model


def onnxruntime_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]  # type: ignore[no-any-return]


def test_onnx_file_compiles_with_byoc_compile_and_matches_onnxruntime(tmp_path: Path) -> None:
    path = tmp_path / "tiny.onnx"
    onnx.save(tiny_onnx(opset=9), str(path))
    out = tmp_path / "bundle"
    run = subprocess.run(
        ["byoc-compile", str(path), "--backend", "ccompiler", "-o", str(out), "--no-cache"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    c = Compiled(out)
    x = x_input(3)
    np.testing.assert_allclose(c(x)[0], onnxruntime_outputs(path, x), rtol=1e-5, atol=1e-5)
    assert c.entry == "main"  # the importer names it after the graph ("tiny-net")
    report = json.loads((out / "report.json").read_text())
    assert [r["status"] for r in report["regions"]].count("offloaded") >= 2, report["regions"]
    c.close()


def test_externalized_onnx_weights_are_read_from_the_bundle_at_run_time(tmp_path: Path) -> None:
    """--externalize-params: big initializers go to the bundle's params.irpa (not into the
    MLIR or the vmfb), the bundle runs and checks from anywhere, and dnnl, which prepacks
    weights it can see, still takes the convolutions reading them (reordered per call)."""
    path = tmp_path / "tiny.onnx"
    onnx.save(tiny_onnx(opset=13), str(path))
    x = x_input(3)
    expected = onnxruntime_outputs(path, x)
    inline = compile(path, ["ccompiler"], out_dir=tmp_path / "inline", options=OPTIONS)
    external = tmp_path / "external"
    run = subprocess.run(
        ["byoc-compile", str(path), "--backend", "ccompiler", "-o", str(external),
         "--no-cache", "--quiet", "--externalize-params", "100"],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    manifest = json.loads((external / "bundle.json").read_text())
    assert manifest["parameters"] == {"file": "params.irpa", "scope": "model"}
    # w (216 elements) and fw (640) are externalised; b and fb (8, 5) stay inline
    assert (external / "params.irpa").stat().st_size > (216 + 640) * 4
    vmfb = (external / "module.vmfb").stat().st_size
    assert vmfb < (inline.bundle / "module.vmfb").stat().st_size
    assert "#stream.parameter.named" in (external / "source.mlir").read_text()
    moved = tmp_path / "moved"
    external.rename(moved)
    c = Compiled(moved)
    np.testing.assert_allclose(c(x)[0], expected, rtol=1e-5, atol=1e-5)
    check = subprocess.run(["byoc-run", str(moved), "--check"], capture_output=True, text=True)
    assert check.returncode == 0 and "ok at" in check.stdout, check.stdout + check.stderr
    options = CompileOptions(cache_dir=None, externalize_params=100)
    d = compile(path, ["dnnl"], out_dir=tmp_path / "dnnl", options=options)
    host = {h["op"] for h in d.report["host_ops"]}
    assert "linalg.conv_2d_nchw_fchw" not in host  # weights reordered per call instead
    np.testing.assert_allclose(d(x)[0], expected, rtol=1e-5, atol=1e-5)
    for bundle in (c, d, inline):
        bundle.close()


def test_externalize_params_needs_a_positive_count() -> None:
    with pytest.raises(ByocError, match="externalize_params=-1"):
        CompileOptions(externalize_params=-1)


def test_onnx_model_proto_compiles_from_python(tmp_path: Path) -> None:
    model = tiny_onnx(opset=13)
    c = compile(model, ["jsonrt"], out_dir=tmp_path / "b", options=OPTIONS)
    path = tmp_path / "tiny.onnx"
    onnx.save(model, str(path))
    x = x_input(4)
    np.testing.assert_allclose(c(x)[0], onnxruntime_outputs(path, x), rtol=1e-5, atol=1e-5)


def torch_dialect_file(origin: str, tmp_path: Path, net: ConvBnNet) -> tuple[Path, np.ndarray]:
    """A torch-dialect .mlir as ``iree-import-onnx`` or a bare FX import writes it."""
    x = x_input(5)
    if origin == "onnx":
        onnx.save(tiny_onnx(opset=9), str(tmp_path / "tiny.onnx"))
        path = tmp_path / "tiny_torch.mlir"
        subprocess.run(
            ["iree-import-onnx", str(tmp_path / "tiny.onnx"), "--opset-version", "17",
             "-o", str(path)],
            check=True,
        )  # fmt: skip
        return path, onnxruntime_outputs(tmp_path / "tiny.onnx", x)
    from iree.compiler import ir
    from iree.compiler.extras.fx_importer import FxImporter

    net.eval()
    program = torch.export.export(net, (torch.from_numpy(x),), strict=False)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    net.train()
    importer = FxImporter(context=ir.Context())
    importer.import_frozen_program(program, func_name="main")
    path = tmp_path / "net_torch.mlir"
    path.write_text(importer.module.operation.get_asm())
    return path, want


@pytest.mark.parametrize("origin", ["onnx", "fx"])
def test_torch_dialect_mlir_file_is_lowered_and_matches(
    origin: str, net: ConvBnNet, tmp_path: Path
) -> None:
    path, want = torch_dialect_file(origin, tmp_path, net)
    assert "!torch.vtensor" in path.read_text()
    c = compile(path, ["ccompiler"], out_dir=tmp_path / "b", options=OPTIONS)
    assert c.entry == "main" or origin == "onnx"
    np.testing.assert_allclose(c(x_input(5))[0], want, rtol=1e-5, atol=1e-5)
    assert any(r["status"] == "offloaded" for r in c.report["regions"])
    # Decisions point at lines of the user's file.
    assert all(h["location"].startswith(str(path)) for h in c.report["host_ops"])


def test_torch_module_without_example_inputs_is_an_error(net: ConvBnNet) -> None:
    with pytest.raises(ByocError, match=r"<torch ConvBnNet>: .*needs example inputs.*"
                       r"example_inputs=\(x,\)"):  # fmt: skip
        compile(net, ["ccompiler"])


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.onnx", None, r"cannot read .*missing\.onnx: no such file"),
        ("garbage.onnx", b"\x08\xff\xff\xff garbage", r"garbage\.onnx is not an ONNX model"),
        ("empty.onnx", b"", r"empty\.onnx: the ONNX model has no graph"),
        ("garbage.mlir", b"\xff\xfe\x00binary", r"garbage\.mlir is neither MLIR text nor"),
        ("model.pt", b"x", r"model\.pt: unsupported model file type '\.pt' \(valid: \.mlir"),
        ("missing.mlir", None, r"cannot read .*missing\.mlir"),
    ],
)
def test_bad_model_files_are_clear_errors(
    name: str, content: bytes | None, message: str, tmp_path: Path
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ByocError, match=message):
        compile(path, ["none"], out_dir=tmp_path / "b", options=OPTIONS)


def test_bad_onnx_file_on_the_command_line_has_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x08\xff\xff\xff not protobuf")
    run = subprocess.run(
        ["byoc-compile", str(path), "--backend", "none", "-o", str(tmp_path / "b")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1
    assert f"error: {path} is not an ONNX model" in run.stderr
    assert "Traceback" not in run.stderr


def test_example_inputs_only_for_torch_modules(tmp_path: Path) -> None:
    with pytest.raises(ByocError, match="example_inputs are only for torch.nn.Module models"):
        compile("model.mlir", ["none"], example_inputs=[x_input()])


def test_unsupported_python_object_is_a_clear_error() -> None:
    with pytest.raises(ByocError, match=r"cannot compile a builtins\.int: expected a model file"):
        frontends.load(42)


def test_importing_byoc_mlir_imports_neither_torch_nor_onnx() -> None:
    code = (
        "import sys, byoc_mlir, byoc_mlir.frontends, byoc_mlir.zoo, byoc_mlir.driver\n"
        "heavy = [m for m in ('torch', 'torch_mlir', 'onnx', 'onnxruntime', 'transformers') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- torch → TOSA (torch-mlir) ----------------------------------------------------------

TOSA = CompileOptions(cache_dir=None, torch_dialect="tosa")


class Mlp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


class TwoHeads(nn.Module):
    """Two inputs, two outputs: both routes must keep their order."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.tanh(self.fc(b)), self.fc(a).sum(-1)


def torch_model(kind: str, net: ConvBnNet) -> tuple[nn.Module, tuple[np.ndarray, ...]]:
    """A seeded model and example inputs: an MLP, the conv+BN+relu+pool+linear net, a
    TransformerEncoderLayer (LayerNorm and softmax: the f64 traps) or TwoHeads."""
    rng = np.random.default_rng(7)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        model: nn.Module
        if kind == "mlp":
            model, shapes = Mlp(), [(2, 16)]
        elif kind == "cnn":
            model, shapes = net, [(2, 3, 8, 8)]
        elif kind == "encoder":
            model = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0,
                                               batch_first=True)  # fmt: skip
            shapes = [(2, 5, 16)]
        else:
            model, shapes = TwoHeads(), [(3, 8), (2, 8)]
    return model, tuple(rng.standard_normal(s).astype(np.float32) for s in shapes)


def torch_outputs(model: nn.Module, inputs: tuple[np.ndarray, ...]) -> list[np.ndarray]:
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(*(torch.from_numpy(x) for x in inputs))
    model.train(was_training)
    return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]


@pytest.mark.parametrize("backend", ["none", "ccompiler", "jsonrt"])
@pytest.mark.parametrize("kind", ["mlp", "cnn", "encoder"])
def test_torch_module_through_tosa_matches_torch(
    kind: str, backend: str, net: ConvBnNet, tmp_path: Path
) -> None:
    model, inputs = torch_model(kind, net)
    c = compile(model, [backend], example_inputs=inputs, out_dir=tmp_path / "b", options=TOSA)
    np.testing.assert_allclose(c(*inputs)[0], torch_outputs(model, inputs)[0],
                               rtol=1e-5, atol=1e-5)  # fmt: skip
    # IREE's input phase turned TOSA's 3-D matmuls (the linalg route has 2-D ones) into
    # linalg; that is what was partitioned.
    assert "linalg.batch_matmul" in (c.bundle / "source.mlir").read_text()
    if backend != "none":
        offloaded = [r for r in c.report["regions"] if r["status"] == "offloaded"]
        assert any("linalg.batch_matmul" in r["ops"] for r in offloaded), c.report["regions"]


@pytest.mark.parametrize("kind", ["mlp", "cnn", "encoder", "two_heads"])
def test_tosa_and_linalg_routes_give_the_same_signature(kind: str, net: ConvBnNet) -> None:
    model, inputs = torch_model(kind, net)

    def signature(dialect: frontends.TorchDialect) -> str:
        text = frontends.to_mlir(model, inputs, torch_dialect=dialect)
        return next(line for line in text.splitlines() if "func.func @main" in line)

    assert signature("tosa") == signature("linalg")


def test_two_heads_through_tosa_keeps_input_and_output_order(
    net: ConvBnNet, tmp_path: Path
) -> None:
    model, inputs = torch_model("two_heads", net)
    c = compile(model, ["none"], example_inputs=inputs, out_dir=tmp_path / "b", options=TOSA)
    for got, want in zip(c(*inputs), torch_outputs(model, inputs), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


TOSA_PARTITION_CHECKS = """
TOSA-LABEL: func.func @main(%arg0: tensor<2x16xf32>) -> tensor<2x4xf32>
TOSA-NOT:   f64
TOSA:       tosa.matmul
TOSA-NEXT:  tosa.reshape
TOSA-NEXT:  tosa.add
TOSA-NEXT:  tosa.clamp
TOSA:       tosa.matmul
TOSA-NEXT:  tosa.reshape
TOSA-NEXT:  tosa.add
TOSA-NEXT:  return

CHECK-LABEL: func.func @main(
CHECK:       tosa.reshape {{.*}}byoc.reason = "rejected: testing: tosa.reshape is not supported"
CHECK-NEXT:  [[MM:%.+]] = call @testing.main_0(
CHECK-NEXT:  [[R:%.+]] = tosa.reshape [[MM]]
CHECK-NEXT:  call @testing.main_1([[R]],
CHECK-LABEL: func.func private @testing.main_0(
CHECK-SAME:  byoc.target = "testing"
CHECK-NEXT:    tosa.const
CHECK-NEXT:    tosa.matmul
CHECK-NEXT:    return
CHECK-LABEL: func.func private @testing.main_1(
CHECK-NEXT:    tosa.add
CHECK-NEXT:    tosa.clamp
CHECK-NEXT:    return
"""
"""An MLP's TOSA, and what ``byoc-opt --backend testing --partition`` makes of it: the
matmuls and the bias-add+relu are offloaded; the reshapes around TOSA's 3-D matmul stay
on the host and split what the linalg route keeps in one region."""


def test_byoc_opt_partitions_a_torch_modules_tosa(net: ConvBnNet, tmp_path: Path) -> None:
    model, inputs = torch_model("mlp", net)
    path = tmp_path / "mlp.tosa.mlir"
    path.write_text(frontends.to_mlir(model, inputs, torch_dialect="tosa"))
    checks = tmp_path / "checks.txt"
    checks.write_text(TOSA_PARTITION_CHECKS)
    filecheck = shutil.which("filecheck") or shutil.which("FileCheck")
    assert filecheck, "pip install filecheck"
    subprocess.run([filecheck, str(checks), "--check-prefix=TOSA", "--input-file", str(path)],
                   check=True)  # fmt: skip
    partitioned = subprocess.run(
        ["byoc-opt", str(path), "--backend", "testing", "--partition"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    subprocess.run([filecheck, str(checks)], input=partitioned.stdout, text=True, check=True)


@pytest.mark.parametrize("value", ["stablehlo", "TOSA", None])
def test_bad_torch_dialect_is_a_clear_error(value: object, net: ConvBnNet) -> None:
    message = r"torch_dialect .* is not supported \(valid: 'linalg', 'tosa'"
    with pytest.raises(ByocError, match=message):
        CompileOptions(torch_dialect=value)  # type: ignore[arg-type]
    with pytest.raises(ByocError, match=message):
        frontends.load(net, [x_input()], torch_dialect=value)  # type: ignore[arg-type]


def test_tosa_route_without_torch_mlir_says_how_to_install_it(
    net: ConvBnNet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch_mlir", None)  # import torch_mlir → ImportError
    with pytest.raises(ByocError, match=r"<torch ConvBnNet>: torch_dialect='tosa' lowers "
                       r"through torch-mlir, which is not installed: pip install "
                       r"torch-mlir==20261001"):  # fmt: skip
        frontends.load(net, [x_input()], torch_dialect="tosa")


class Fmod(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fmod(x, 0.7)


def test_op_tosa_cannot_express_is_a_clear_error() -> None:
    with pytest.raises(ByocError, match=r"<torch Fmod>: torch-mlir could not lower the "
                       r"exported program to TOSA: loc\(\".*test_frontends\.py\":\d+:\d+\)"
                       r": failed to legalize operation 'torch\.aten\.fmod\.Scalar' that was "
                       r"explicitly marked illegal \(torch_dialect='linalg' takes"):  # fmt: skip
        frontends.load(Fmod(), [x_input()], torch_dialect="tosa")


def test_tosa_route_needs_example_inputs(net: ConvBnNet) -> None:
    with pytest.raises(ByocError, match=r"<torch ConvBnNet>: .*needs example inputs"):
        compile(net, ["none"], options=TOSA)


class _Unreadable:
    """A module IREE cannot read in either form."""

    def write_bytecode(self, file: object) -> None:
        file.write(b"ML\xefR garbage")  # type: ignore[attr-defined]

    def get_asm(self, print_generic_op_form: bool = False) -> str:
        return '"tosa.no_such_op"() : () -> ()'


def test_tosa_ir_iree_cannot_read_is_a_clear_error() -> None:
    message = (
        r"<torch X>: IREE cannot read torch-mlir's TOSA \(neither as bytecode nor in "
        r"generic form: .*pip install torch-mlir"
    )
    with pytest.raises(ByocError, match=message):
        from_torch_tosa._into_iree(_Unreadable(), "<torch X>")
