"""A model's signature survives: every element type and rank comes back as declared.

ONNX's backend tests found unsigned outputs returned as signed arrays, f64 models
silently demoted to f32, bf16/float8 models that compiled but could not be called, and
rank-0 inputs reshaped to ``(1,)`` and then refused. Each case here runs host-only and
with a backend, from `Compiled`, from plain ``iree.runtime`` and from ``byoc-run``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import iree.runtime as rt
import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper

from byoc_mlir import CompileOptions, compile

T = TensorProto


def one_op(op: str, inputs: list, outputs: list, **attrs: object) -> object:
    node = helper.make_node(op, [i[0] for i in inputs], [o[0] for o in outputs], **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info(*i) for i in inputs],
        [helper.make_tensor_value_info(*o) for o in outputs],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


OPTIONS = CompileOptions(cache_dir=None)

CASES = {
    # name: (model, inputs, expected output)
    "uint8_add": (
        one_op("Add", [("a", T.UINT8, [4]), ("b", T.UINT8, [4])], [("c", T.UINT8, [4])]),
        [np.array([250, 1, 2, 3], np.uint8), np.array([10, 1, 200, 3], np.uint8)],
        np.array([4, 2, 202, 6], np.uint8),  # wraps like onnxruntime
    ),
    "uint16_max": (
        one_op("Max", [("a", T.UINT16, [3]), ("b", T.UINT16, [3])], [("c", T.UINT16, [3])]),
        [np.array([65535, 1, 2], np.uint16), np.array([3, 40000, 1], np.uint16)],
        np.array([65535, 40000, 2], np.uint16),  # unsigned compare: a signed one picks 3
    ),
    "f64_add": (
        one_op("Add", [("a", T.DOUBLE, [2]), ("b", T.DOUBLE, [2])], [("c", T.DOUBLE, [2])]),
        [np.array([1e-300, 1.0], np.float64), np.array([1e-300, 1e-12], np.float64)],
        np.array([2e-300, 1.0 + 1e-12], np.float64),  # f32 gives 0 and 1.0
    ),
    "cast_to_double": (
        one_op("Cast", [("a", T.FLOAT, [2])], [("c", T.DOUBLE, [2])], to=T.DOUBLE),
        [np.array([0.1, -2.5], np.float32)],
        np.array([0.1, -2.5], np.float32).astype(np.float64),
    ),
    "bf16_mul": (
        one_op("Mul", [("a", T.BFLOAT16, [3]), ("b", T.BFLOAT16, [3])], [("c", T.BFLOAT16, [3])]),
        [np.array([1.5, -2, 3], ml_dtypes.bfloat16), np.array([2, 0.5, -1], ml_dtypes.bfloat16)],
        np.array([3, -1, -3], ml_dtypes.bfloat16),
    ),
    "scalar_add": (
        one_op("Add", [("a", T.FLOAT, []), ("b", T.FLOAT, [])], [("c", T.FLOAT, [])]),
        [np.array(1.25, np.float32), np.array(2.0, np.float32)],
        np.array(3.25, np.float32),
    ),
    "clip_scalar_bounds": (
        one_op(
            "Clip",
            [("x", T.FLOAT, [4]), ("lo", T.FLOAT, []), ("hi", T.FLOAT, [])],
            [("y", T.FLOAT, [4])],
        ),
        [
            np.array([-3, -0.5, 0.5, 3], np.float32),
            np.array(-1, np.float32),
            np.array(1, np.float32),
        ],
        np.array([-1, -0.5, 0.5, 1], np.float32),
    ),
}


@pytest.mark.parametrize("backend", ["none", "ccompiler"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_signature_round_trips(name: str, backend: str, tmp_path: Path) -> None:
    model, inputs, want = CASES[name]
    compiled = compile(model, [backend], out_dir=tmp_path / "b", options=OPTIONS)
    assert [s.numpy_dtype for s in compiled.inputs] == [a.dtype for a in inputs]
    assert [s.shape for s in compiled.inputs] == [a.shape for a in inputs]
    (got,) = compiled(*inputs)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got.astype(np.float64), want.astype(np.float64))
    compiled.close()


def test_plain_iree_runtime_takes_scalars_and_unsigned(tmp_path: Path) -> None:
    """The vmfb alone (no byoc_mlir at run time): rank 0 stays rank 0."""
    model, inputs, want = CASES["scalar_add"]
    bundle = tmp_path / "b"
    compile(model, [], out_dir=bundle, options=OPTIONS).close()
    config = rt.Config("local-task")
    ctx = rt.SystemContext(config=config)
    ctx.add_vm_module(rt.VmModule.copy_buffer(ctx.instance, (bundle / "module.vmfb").read_bytes()))
    got = np.asarray(ctx.modules.module["main"](*inputs))
    assert got.shape == () and got == want


def test_f64_demotion_is_asked_for_and_reported(tmp_path: Path) -> None:
    model, inputs, _ = CASES["f64_add"]
    compiled = compile(
        model, [], out_dir=tmp_path / "b", options=CompileOptions(cache_dir=None, demote_f64=True)
    )
    assert [s.dtype for s in compiled.inputs + compiled.outputs] == ["f32"] * 3
    assert any("f64 demoted to f32" in n for n in compiled.report["notes"])
    kept = compile(model, [], out_dir=tmp_path / "k", options=OPTIONS)
    assert "notes" not in kept.report


def test_byoc_run_checks_an_unsigned_bundle(tmp_path: Path) -> None:
    model, inputs, want = CASES["uint16_max"]
    bundle = tmp_path / "b"
    compile(model, ["ccompiler"], out_dir=bundle, options=OPTIONS).close()
    for k, a in enumerate(inputs):
        np.save(tmp_path / f"in{k}.npy", a)
    out = tmp_path / "out"
    args = ["--input", str(tmp_path / "in0.npy"), "--input", str(tmp_path / "in1.npy")]
    proc = subprocess.run(
        [sys.executable, "-m", "byoc_mlir.tools.byoc_run", str(bundle), *args, "--check"]
        + ["--output", str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    got = np.load(out / "output_0.npy")
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, want)
    assert all(r["ok"] for r in json.loads((out / "check.json").read_text()))


def test_compile_without_out_dir_leaves_no_directory() -> None:
    model, inputs, _ = CASES["scalar_add"]
    compiled = compile(model, ["ccompiler"], options=OPTIONS)
    bundle = compiled.bundle
    assert bundle.is_dir() and bundle.parent == Path(tempfile.gettempdir())
    compiled(*inputs)
    compiled.close()
    assert not bundle.exists()
    assert not list(bundle.parent.glob(f".{bundle.name}.*"))  # no staging directory either
