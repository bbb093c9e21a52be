"""Dynamic shapes (``?`` dimensions): one bundle runs at several sizes.

The signature keeps its dynamic dimensions (named ``d0``, ``d1``, ... for an ``.mlir``
model, the model's own names for ONNX), a build may bound them (``--dim NAME=LO..HI``),
and the partitioner hands host-computed sizes to the regions that need them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from byoc_mlir import ByocError, CompileOptions, compile
from byoc_mlir.codegen.hook import TensorSpec

MLP = """
#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d1)>
func.func @main(%x: tensor<?x8xf32>, %w: tensor<8x16xf32>, %b: tensor<16xf32>)
    -> tensor<?x16xf32> {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %n = tensor.dim %x, %c0 : tensor<?x8xf32>
  %e = tensor.empty(%n) : tensor<?x16xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<?x16xf32>) -> tensor<?x16xf32>
  %m = linalg.matmul ins(%x, %w : tensor<?x8xf32>, tensor<8x16xf32>)
                     outs(%f : tensor<?x16xf32>) -> tensor<?x16xf32>
  %y = linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel"]}
      ins(%m, %b : tensor<?x16xf32>, tensor<16xf32>) outs(%e : tensor<?x16xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %s = arith.addf %p, %q : f32
    linalg.yield %s : f32
  } -> tensor<?x16xf32>
  %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%y : tensor<?x16xf32>) outs(%e : tensor<?x16xf32>) {
  ^bb0(%p: f32, %o: f32):
    %s = arith.maximumf %p, %zero : f32
    linalg.yield %s : f32
  } -> tensor<?x16xf32>
  %t = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%r : tensor<?x16xf32>) outs(%e : tensor<?x16xf32>) {
  ^bb0(%p: f32, %o: f32):
    %s = math.tanh %p : f32
    linalg.yield %s : f32
  } -> tensor<?x16xf32>
  return %t : tensor<?x16xf32>
}
"""


def reference(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.tanh(np.maximum(x @ w + b, 0.0))


def assert_mlp_runs(c: object, sizes: tuple[int, ...], seed: int) -> tuple[np.ndarray, ...]:
    """The MLP bundle ``c`` at each batch size against numpy; returns (w, b)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((8, 16)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    for n in sizes:
        x = rng.standard_normal((n, 8)).astype(np.float32)
        (y,) = c(x, w, b)  # type: ignore[operator]
        assert y.shape == (n, 16)
        np.testing.assert_allclose(y, reference(x, w, b), rtol=1e-5, atol=1e-5)
    return w, b


@pytest.fixture(scope="module")
def mlp_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dynamic")
    (root / "mlp.mlir").write_text(MLP)
    options = CompileOptions(cache_dir=None, dims={"d0": (1, 64)})
    compile(root / "mlp.mlir", ["testing"], out_dir=root / "b", options=options).close()
    return root / "b"


def test_spec_keeps_dynamic_dims() -> None:
    spec = TensorSpec((None, 8), "f32", ("batch", None))
    assert spec.mlir == "tensor<?x8xf32>" and not spec.is_static
    assert spec.bind({"batch": 5}) == (5, 8)
    with pytest.raises(ValueError, match="dynamic"):
        _ = spec.size
    assert TensorSpec((2, 3), "f32").size == 6


def test_region_takes_host_sizes_and_one_bundle_runs_every_size(mlp_bundle: Path) -> None:
    from byoc_mlir import Compiled

    partitioned = (mlp_bundle / "partitioned.mlir").read_text()
    # The matmul, bias and relu form one region; it takes the batch size computed on the
    # host (tensor.dim) as an index, and the host recomputes the empty init tanh writes.
    assert "func private @testing.main_0(%arg0: index, %arg1: tensor<?x8xf32>" in partitioned
    assert partitioned.count("tensor.empty(%dim)") == 1
    report = json.loads((mlp_bundle / "report.json").read_text())
    reasons = {h["op"]: h["reason"] for h in report["host_ops"]}
    assert reasons["tensor.dim"].startswith("host: a dynamic size, read where it is needed")
    assert report["dims"] == {"d0": [1, 64]}
    from byoc_mlir.explain import report as text

    assert "Dynamic dimensions: d0 in 1..64" in text.summary(report)
    manifest = json.loads((mlp_bundle / "bundle.json").read_text())
    assert manifest["inputs"][0] == {"shape": [None, 8], "dtype": "f32", "dims": ["d0", None]}
    assert manifest["dims"] == {"d0": [1, 64]}
    c = Compiled(mlp_bundle)
    w, b = assert_mlp_runs(c, (1, 7, 64), seed=0)
    with pytest.raises(ByocError, match="dimension d0 = 65 is outside its compiled range 1..64"):
        c(np.zeros((65, 8), np.float32), w, b)
    with pytest.raises(ByocError, match=r"has shape \(3, 9\), expected tensor<\?x8xf32>"):
        c(np.zeros((3, 9), np.float32), w, b)
    assert [a.shape for a in c.random_inputs(dims={"d0": 5})][0] == (5, 8)
    assert [a.shape for a in c.random_inputs()][0] == (1, 8)  # the range's low end
    c.close()


def test_byoc_run_checks_one_bundle_at_several_sizes(mlp_bundle: Path) -> None:
    exe = [sys.executable, "-m", "byoc_mlir.tools.byoc_run", str(mlp_bundle)]
    for n in (1, 33):
        done = subprocess.run([*exe, "--check", "--dim", f"d0={n}"], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert f"output 0: float32[{n}, 16]" in done.stdout and "ok at" in done.stdout
    bad = subprocess.run([*exe, "--dim", "d0=65"], capture_output=True, text=True)
    assert bad.returncode == 1 and "outside its compiled range 1..64" in bad.stderr
    assert "Traceback" not in bad.stderr
    bad = subprocess.run([*exe, "--dim", "batch=2"], capture_output=True, text=True)
    assert bad.returncode == 1 and "no such dynamic dimension (valid: d0)" in bad.stderr


def test_a_range_must_name_a_dynamic_dim(tmp_path: Path) -> None:
    (tmp_path / "mlp.mlir").write_text(MLP)
    with pytest.raises(ByocError, match=r"no dynamic dimension named batch \(valid: d0\)"):
        compile(
            tmp_path / "mlp.mlir",
            ["testing"],
            out_dir=tmp_path / "b",
            options=CompileOptions(cache_dir=None, dims={"batch": (1, 4)}),
        )
    assert not (tmp_path / "b").exists()
    with pytest.raises(ByocError, match="0 <= low <= high"):
        CompileOptions(dims={"d0": (4, 1)})


def dynamic_onnx(module: object, example: tuple, path: Path, axes: dict) -> Path:
    """A torch module as ONNX with named dynamic axes (TorchScript exporter, opset 17)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter
        torch.onnx.export(
            module, example, str(path), dynamo=False, opset_version=17,
            input_names=list(axes), dynamic_axes=axes,
        )  # fmt: skip
    return path


def run_at_shapes(bundle: object, onnx_path: Path, feeds: list[dict[str, np.ndarray]]) -> None:
    """The one bundle against onnxruntime at every shape in ``feeds``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    for feed in feeds:
        got = bundle(*feed.values())  # type: ignore[operator]
        want = session.run(None, feed)
        for g, w in zip(got, want, strict=True):
            assert g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend", ["jsonrt", "dnnl", "ccompiler"])
def test_onnx_bert_runs_every_sequence_length_from_one_bundle(tmp_path: Path, backend: str) -> None:
    """BERT (2 layers, hidden 128) exported with a dynamic batch and sequence: one bundle,
    its regions taking sizes at call time (jsonrt's plans, dnnl's primitives per shape,
    ccompiler's kernels with sizes as arguments), runs batch 1/2 at sequence 8, 64 and
    128 like onnxruntime."""
    from byoc_mlir import zoo

    inst = zoo.get("bert_tiny").build(tmp_path)
    path = dynamic_onnx(
        inst.model,
        tuple(inst.example_inputs),
        tmp_path / "bert.onnx",
        {"ids": {0: "batch", 1: "seq"}, "mask": {0: "batch", 1: "seq"}},
    )
    options = CompileOptions(cache_dir=None, dims={"batch": (1, 4), "seq": (1, 128)})
    c = compile(path, [backend], out_dir=tmp_path / "b", options=options)
    assert [s.dims for s in c.inputs] == [("batch", "seq")] * 2
    regions = c.report["regions"]
    offloaded = [r for r in regions if r["status"] == "offloaded"]
    # the encoder's matmuls and elementwise ops (dnnl: LayerNorms whole, in few regions)
    assert sum(len(r["ops"]) for r in offloaded) > 40, [len(r["ops"]) for r in offloaded]
    assert {r["route"] for r in offloaded} == {"linked" if backend == "ccompiler" else "runtime"}
    ops = {op for r in offloaded for op in r["ops"]}
    assert {"linalg.batch_matmul", "linalg.generic", "linalg.fill"} <= ops
    for r in regions:  # dnnl refuses a max reduction alone from -inf (as when static)
        assert r in offloaded or "reduction from -inf" in r["status"], r
    assert any("compiled with --iree-opt-level=O1" in n for n in c.report["notes"])
    rng = np.random.default_rng(0)
    feeds = []
    for batch, seq in ((1, 8), (2, 64), (1, 128)):
        mask = np.ones((batch, seq), np.int64)
        mask[:, seq * 3 // 4 :] = 0
        ids = rng.integers(0, 1000, size=(batch, seq)).astype(np.int64)
        feeds.append({"ids": ids, "mask": mask})
    run_at_shapes(c, path, feeds)
    with pytest.raises(ByocError, match="dimension seq is 8 in an earlier input"):
        c(feeds[0]["ids"], np.ones((1, 9), np.int64))
    c.close()


def test_dnnl_creates_primitives_per_input_shape(tmp_path: Path) -> None:
    """The MLP's matmul, bias and relu on dnnl: the payload says how the output's size
    follows from the inputs' and which input sizes must agree; the loaded region
    creates its oneDNN primitives once per set of input shapes, keeping the last few."""
    import io
    import zipfile

    from byoc_mlir import Compiled
    from byoc_mlir.backends.dnnl.runtime import SHAPES, DnnlError, load

    (tmp_path / "mlp.mlir").write_text(MLP)
    options = CompileOptions(cache_dir=None)
    compile(tmp_path / "mlp.mlir", ["dnnl"], out_dir=tmp_path / "b", options=options).close()
    c = Compiled(tmp_path / "b")
    (region,) = c.report["regions"]
    assert (region["route"], region["status"]) == ("runtime", "offloaded")
    assert region["inputs"][:2] == ["tensor<?x16xf32>", "tensor<?x8xf32>"]
    w, b = assert_mlp_runs(c, (1, 9, 64), seed=4)
    c.close()
    payload = (tmp_path / "b" / "payloads" / "dnnl_main_0.bin").read_bytes()
    with zipfile.ZipFile(io.BytesIO(payload)) as z:
        manifest = json.loads(z.read("manifest.json"))
        source = z.read("region.c").decode()
    # inputs' dims, flat: (?, 16), (?, 8), ...: the batch is D[0], and D[2] must equal it
    assert manifest["outputs"][0]["sizes"] == [[1, 0], 16]
    assert manifest["equal"] == [[[1, 2], [1, 0]]]
    assert "DIMS(D[0], 16)" in source
    region_fn = load(payload)
    rng = np.random.default_rng(5)
    for n in range(1, SHAPES + 3):
        x = rng.standard_normal((n, 8)).astype(np.float32)
        (y,) = region_fn(np.empty((n, 16), np.float32), x, w, b)
        np.testing.assert_allclose(y, np.maximum(x @ w + b, 0), rtol=1e-5, atol=1e-5)
    assert len(region_fn._handles) == SHAPES  # bounded: the oldest shapes were freed
    damaged = io.BytesIO()  # a size naming an input dim that does not exist
    with zipfile.ZipFile(io.BytesIO(payload)) as z, zipfile.ZipFile(damaged, "w") as out:
        for name in z.namelist():
            data = z.read(name)
            if name == "manifest.json":
                bad = dict(manifest, outputs=[dict(manifest["outputs"][0], sizes=[[1, 99], 16])])
                data = json.dumps(bad).encode()
            out.writestr(name, data)
    with pytest.raises(DnnlError, match="the manifest's dynamic sizes are damaged"):
        load(damaged.getvalue())
    with pytest.raises(DnnlError, match="disagree on a dimension"):
        region_fn(np.empty((3, 16), np.float32), np.zeros((2, 8), np.float32), w, b)
    with pytest.raises(DnnlError, match=r"input 2 has shape \(16,\), expected \(8, 16\)"):
        region_fn(np.empty((2, 16), np.float32), np.zeros((2, 8), np.float32), b, b)
    region_fn.close()


def test_ccompiler_kernels_take_sizes_through_the_dispatch(tmp_path: Path) -> None:
    """The MLP on ccompiler (linked route): its kernel takes the dynamic sizes as
    ``size_t`` arguments (views of a dynamic row count), the host reads them with
    ``tensor.dim`` and passes them to the dispatch (push constants)."""
    (tmp_path / "mlp.mlir").write_text(MLP)
    options = CompileOptions(cache_dir=None, dims={"d0": (1, 64)})
    c = compile(tmp_path / "mlp.mlir", ["ccompiler"], out_dir=tmp_path / "b", options=options)
    (region,) = c.report["regions"]
    assert (region["route"], region["status"]) == ("linked", "offloaded")
    assert_mlp_runs(c, (1, 7, 64), seed=7)
    c.close()
    source = (tmp_path / "b" / "artifacts" / "ccompiler_main_0.c").read_text()
    # inputs (?, 16), (?, 8), ...: sizes D0 and D2, one value; the kernel reads D0
    assert "size_t D0,\n" in source and "size_t D2,\n" in source
    assert "chunk_tiles(D0, TILE_M, workgroup_id" in source
    host = (tmp_path / "b" / "host.mlir").read_text()
    dispatch = (
        r"flow.dispatch @\S+\(%arg1, %arg2, %arg3, %\w+, %\w+\) : \(tensor<\?x8xf32>\{%\w+\}, "
        r"tensor<8x16xf32>, tensor<16xf32>, index, index\) -> tensor<\?x16xf32>\{%\w+\}"
    )
    assert re.search(dispatch, host), host


ATTENTION = """
#a = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3)>
#b = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d3, d4)>
#c = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d4)>
func.func @main(%q: tensor<Qxf32>, %k: tensor<Kxf32>) -> tensor<Oxf32> {
  %c0 = arith.constant 0 : index
  %c2 = arith.constant 2 : index
  %c3 = arith.constant 3 : index
  %zero = arith.constant 0.0 : f32
  %n = tensor.dim %q, %c0 : tensor<Qxf32>
  %m = tensor.dim %q, %c2 : tensor<Qxf32>
  %s = tensor.dim %k, %c3 : tensor<Kxf32>
  %e = tensor.empty(SIZES) : tensor<Oxf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<Oxf32>) -> tensor<Oxf32>
  %r = linalg.generic {indexing_maps = [#a, #b, #c], iterator_types =
                       ["parallel", "parallel", "parallel", "reduction", "parallel"]}
      ins(%q, %k : tensor<Qxf32>, tensor<Kxf32>) outs(%f : tensor<Oxf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %p = arith.mulf %x, %y : f32
    %t = arith.addf %o, %p : f32
    linalg.yield %t : f32
  } -> tensor<Oxf32>
  return %r : tensor<Oxf32>
}
"""


@pytest.mark.parametrize("dynamic", [True, False], ids=["dynamic", "static"])
def test_dnnl_runs_attention_products_written_as_generics(tmp_path: Path, dynamic: bool) -> None:
    """ONNX attention's ``Q @ K`` arrives as a 5-loop generic (two batch dims), not a
    named matmul: dnnl runs it (``generic:contraction``) as one oneDNN matmul, with
    dynamic batch and sequence sizes or static ones."""
    dims = ("?x2x?x8", "?x2x8x?", "?x2x?x?", "%n, %m, %s") if dynamic else (
        "3x2x5x8", "3x2x8x4", "3x2x5x4", ""
    )  # fmt: skip
    text = ATTENTION
    for key, value in zip(("Q", "K", "O", "SIZES"), dims, strict=True):
        text = text.replace(key, value)
    (tmp_path / "att.mlir").write_text(text)
    c = compile(
        tmp_path / "att.mlir",
        ["dnnl"],
        out_dir=tmp_path / "b",
        options=CompileOptions(cache_dir=None),
    )
    (region,) = c.report["regions"]
    assert region["status"] == "offloaded" and "linalg.generic" in region["ops"]
    rng = np.random.default_rng(8)
    for n, m, s in ((1, 3, 5), (2, 7, 4)) if dynamic else ((3, 5, 4),):
        q = rng.standard_normal((n, 2, m, 8)).astype(np.float32)
        k = rng.standard_normal((n, 2, 8, s)).astype(np.float32)
        (got,) = c(q, k)
        np.testing.assert_allclose(got, q @ k, rtol=1e-5, atol=1e-5)
    c.close()


def test_a_linked_kernel_must_take_the_sizes_it_reads() -> None:
    """The hook contract: a kernel reading or writing a dynamic dimension must take its
    size (``Kernel.sizes``), and a dynamic result says which size it has."""
    from iree.compiler import ir

    from byoc_mlir.codegen.hook import (
        ArtifactError,
        Kernel,
        LinkedArtifact,
        RegionView,
        ValueRef,
        validate,
    )

    text = """
    func.func private @npu.f(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
      return %x : tensor<?x8xf32>
    }"""
    with ir.Context() as ctx:
        ctx.allow_unregistered_dialects = True
        module = ir.Module.parse(text)
        view = RegionView.of(module.body.operations[0].operation)
        out = TensorSpec((None, 8), "f32")

        def artifact(kernel: Kernel) -> LinkedArtifact:
            return LinkedArtifact([kernel], [ValueRef.kernel(0, 0)], c_source="")

        good = Kernel("k", [ValueRef.arg(0)], [out], 1, [(0, 0)], [[(0, 0), None]])
        assert validate(artifact(good), view)
        round_trip = LinkedArtifact.from_json(artifact(good).to_json()).kernels[0]
        assert (round_trip.sizes, round_trip.result_sizes) == ([(0, 0)], [[(0, 0), None]])
        bad = Kernel("k", [ValueRef.arg(0)], [out], 1, [], [[(0, 0), None]])
        with pytest.raises(ArtifactError, match="dynamic dim 0 of result 0 is not one of"):
            validate(artifact(bad), view)
        bad = Kernel("k", [ValueRef.arg(0)], [out], 1, [(0, 0)])
        with pytest.raises(ArtifactError, match="dynamic results need result_sizes"):
            validate(artifact(bad), view)
        bad = Kernel("k", [ValueRef.arg(0)], [out], 1, [(0, 1)], [[(0, 1), None]])
        with pytest.raises(ArtifactError, match="dynamic dim 0 of .*arg.* is not one of"):
            validate(artifact(bad), view)


def test_onnx_cnn_runs_batch_1_and_8_from_one_bundle(tmp_path: Path) -> None:
    """A CNN with a dynamic batch (conv-BN-ReLU-pool x2, average pool, Linear)."""
    from byoc_mlir import zoo

    inst = zoo.get("cnn").build(tmp_path)
    path = dynamic_onnx(
        inst.model, tuple(inst.example_inputs), tmp_path / "cnn.onnx", {"x": {0: "N"}}
    )
    c = compile(path, ["testing"], out_dir=tmp_path / "b", options=CompileOptions(cache_dir=None))
    assert c.dims == {"N": None}
    shape = inst.inputs[0].shape
    rng = np.random.default_rng(1)
    feeds = [{"x": rng.standard_normal((n, *shape[1:])).astype(np.float32)} for n in (1, 8)]
    run_at_shapes(c, path, feeds)
    c.close()


def test_jsonrt_serves_a_dynamic_region_at_each_size(tmp_path: Path) -> None:
    """The MLP's matmul, bias and relu on jsonrt: the payload keeps ``null`` dimensions,
    its fill reads the (host-allocated) init for the shape, and the loaded program
    builds one plan per input shape, keeping the last few."""
    from byoc_mlir import Compiled
    from byoc_mlir.backends.jsonrt.runtime import PLANS, JsonrtError, load

    (tmp_path / "mlp.mlir").write_text(MLP)
    options = CompileOptions(cache_dir=None)
    compile(tmp_path / "mlp.mlir", ["jsonrt"], out_dir=tmp_path / "b", options=options).close()
    c = Compiled(tmp_path / "b")
    (region,) = c.report["regions"]
    assert (region["route"], region["status"]) == ("runtime", "offloaded")
    payload = (tmp_path / "b" / "payloads" / "jsonrt_main_0.bin").read_bytes()
    document = json.loads(payload)
    assert document["outputs"][0]["shape"] == [None, 16]
    fill = next(n for n in document["nodes"] if n["op"] == "fill")
    assert fill["inputs"] == ["arg0"] and fill["shape"] == [None, 16]
    w, b = assert_mlp_runs(c, (1, 9, 64), seed=2)
    c.close()
    rng = np.random.default_rng(3)
    program = load(payload)
    for n in range(1, PLANS + 3):
        init = np.zeros((n, 16), np.float32)
        x = rng.standard_normal((n, 8)).astype(np.float32)
        (y,) = program(init, x, w, b)
        np.testing.assert_allclose(y, np.maximum(x @ w + b, 0), rtol=1e-5, atol=1e-5)
    assert len(program._plans) == PLANS  # bounded: the oldest shapes went
    with pytest.raises(JsonrtError, match=r"input 2 must be tensor<8x16xf32>"):
        program(np.zeros((2, 16), np.float32), np.zeros((2, 8), np.float32), b, b)


def test_torch_program_keeps_its_dynamic_batch_and_range(tmp_path: Path) -> None:
    """A ``torch.export`` program with ``Dim("batch", min=1, max=32)``: the bundle takes
    any batch in that range (the range comes from the program's constraints)."""
    import torch

    model = torch.nn.Sequential(
        torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4), torch.nn.Tanh()
    ).eval()
    batch = torch.export.Dim("batch", min=1, max=32)
    program = torch.export.export(
        model, (torch.randn(2, 8),), dynamic_shapes=({0: batch},), strict=False
    )
    options = CompileOptions(cache_dir=None)
    c = compile(program, ["testing"], out_dir=tmp_path / "b", options=options)
    assert c.dims == {"d0": (1, 32)}
    rng = np.random.default_rng(4)
    for n in (1, 5, 32):
        x = rng.standard_normal((n, 8)).astype(np.float32)
        (y,) = c(x)
        want = model(torch.from_numpy(x)).detach().numpy()
        np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ByocError, match="d0 = 33 is outside its compiled range 1..32"):
        c(np.zeros((33, 8), np.float32))
    c.close()


def test_torch_module_with_dynamic_axes_keeps_their_names(tmp_path: Path) -> None:
    """``compile(module, example_inputs=..., dynamic_axes=...)``: the named dimensions stay
    dynamic (one name, one size, across inputs), with ranges from ``dims``; the
    module's matmuls run on dnnl with primitives per shape."""
    import torch

    class Pair(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = torch.nn.Linear(8, 8)

        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.proj(x) + y)

    model = Pair().eval()
    example = (torch.randn(2, 3, 8), torch.randn(2, 3, 8))
    options = CompileOptions(
        cache_dir=None,
        dims={"batch": (1, 16), "seq": (2, 64)},
        dynamic_axes={"x": {0: "batch", 1: "seq"}, 1: {0: "batch", 1: "seq"}},
    )
    c = compile(model, ["dnnl"], out_dir=tmp_path / "b", example_inputs=example, options=options)
    assert c.dims == {"batch": (1, 16), "seq": (2, 64)}
    assert [s.dims for s in c.inputs] == [("batch", "seq", None)] * 2
    assert any(r["status"] == "offloaded" for r in c.report["regions"])
    rng = np.random.default_rng(6)
    for shape in ((1, 2, 8), (5, 64, 8), (16, 7, 8)):
        x, y = (rng.standard_normal(shape).astype(np.float32) for _ in range(2))
        (got,) = c(x, y)
        want = model(torch.from_numpy(x), torch.from_numpy(y)).detach().numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ByocError, match="seq = 65 is outside its compiled range 2..64"):
        c(np.zeros((1, 65, 8), np.float32), np.zeros((1, 65, 8), np.float32))
    c.close()
    for axes, message in (
        ({"z": {0: "batch"}}, r"dynamic_axes names input 'z' \(valid: x, y, 0, 1\)"),
        ({"x": {3: "batch"}}, r"names dimension 3 of a rank-3 input"),
    ):
        bad = CompileOptions(cache_dir=None, dynamic_axes=axes)
        with pytest.raises(ByocError, match=message):
            compile(model, ["testing"], example_inputs=example, options=bad)
    with pytest.raises(ByocError, match="dynamic_axes are for torch modules"):
        bad = CompileOptions(cache_dir=None, dynamic_axes={0: {0: "n"}})
        compile(tmp_path / "nothing.mlir", ["testing"], options=bad)


def test_a_hook_region_taking_sizes_falls_back_with_the_reason(tmp_path: Path) -> None:
    """A vendor backend that takes a dynamically sized ``tensor.empty`` gets a region whose
    signature carries the host's size as an ``index``: hooks take regions of tensors, so
    that region goes back to the host, with the reason, and the bundle still runs."""
    from iree.compiler.dialects import tensor

    from byoc_mlir import Backend, Compiled
    from byoc_mlir.codegen import registry
    from byoc_mlir.codegen.hook import RuntimeArtifact
    from byoc_mlir.linalg_ops import linalg

    toy = Backend(
        "dyn_toy",
        codegen=lambda region, options: RuntimeArtifact(b""),
        runtime=lambda payload: lambda *arrays: [],
        in_process_safe=True,
    )
    toy.supports(linalg.MatmulOp, linalg.FillOp, tensor.EmptyOp)
    registry.register(toy)
    try:
        (tmp_path / "mlp.mlir").write_text(MLP)
        options = CompileOptions(cache_dir=None)
        compile(tmp_path / "mlp.mlir", ["dyn_toy"], out_dir=tmp_path / "b", options=options)
    finally:
        registry.unregister("dyn_toy")
    c = Compiled(tmp_path / "b")
    (region,) = c.report["regions"]
    assert region["status"].startswith("fallback: codegen failed: expected a ranked tensor")
    assert "a hook takes regions of tensors" in region["status"]
    assert_mlp_runs(c, (3,), seed=5)
    c.close()
