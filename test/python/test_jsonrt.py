"""The ``jsonrt`` backend: codegen hook + numpy runtime, without the IREE VM wiring.

Each test partitions a small linalg module for ``jsonrt``, turns every outlined function
into a payload (`BACKEND.codegen`), loads it (`BACKEND.runtime`) and compares the result
with a numpy reference; the MLP, GELU and conv cases are also compared with IREE running
the original, unpartitioned module.
"""

from __future__ import annotations

import gc
import json
import math
import weakref
from collections.abc import Callable, Sequence

import numpy as np
import pytest
from conftest import (
    CALL_OPS,
    FREE_OPS,
    ID2,
    T44,
    VEC4,
    FuncBuilder,
    body_ops,
    callee,
    functions,
    mlp_text,
    outlined,
    parse,
    random_inputs,
    run_with_iree,
    tensor_shape,
    tensor_type,
)
from iree.compiler import ir
from iree.compiler.dialects import linalg

from byoc_mlir import Backend, CompileOptions, PartitionOptions, compile, partition
from byoc_mlir.backends.jsonrt.backend import BACKEND, JsonrtError
from byoc_mlir.backends.jsonrt.runtime import load
from byoc_mlir.backends.testing import backend as testing_backend
from byoc_mlir.codegen import registry
from byoc_mlir.codegen.hook import CodegenOptions, RegionView, constant_array
from byoc_mlir.codegen.recognisers import GELU
from byoc_mlir.dialects import byoc

TOL = {"rtol": 1e-5, "atol": 1e-5}
COL2 = "affine_map<(d0, d1) -> (d0)>"


# --- building IR ---------------------------------------------------------------------------


class Builder(FuncBuilder):
    """`FuncBuilder` plus the ops only these tests need (batch_matmul, conv2d, gelu)."""

    def splat(self, value: float, type_text: str) -> str:
        """A splat dense ``arith.constant`` (always cloned into regions)."""
        return self._emit(
            self._fresh("w"), type_text, f"arith.constant dense<{value!r}> : {type_text}"
        )

    def batch_matmul(self, a: str, b: str) -> str:
        (nb, m, _k), element = tensor_shape(self.types[a])
        (_, _, n), _ = tensor_shape(self.types[b])
        out = tensor_type((nb, m, n), element)
        acc = self.fill(0.0, out)
        ta, tb = self.types[a], self.types[b]
        return self._emit(
            self._fresh(),
            out,
            f"linalg.batch_matmul ins({a}, {b} : {ta}, {tb}) outs({acc} : {out}) -> {out}",
        )

    def conv(self, x: str, w: str, layout: str, stride: int = 1, dilation: int = 1) -> str:
        """``linalg.conv_2d_<layout>`` (``nchw_fchw`` or ``nhwc_hwcf``) into a zero fill."""
        xs, element = tensor_shape(self.types[x])
        ws, _ = tensor_shape(self.types[w])
        if layout == "nchw_fchw":
            (n, _c, h, wd), (f, _, kh, kw) = xs, ws
        else:
            (n, h, wd, _c), (kh, kw, _, f) = xs, ws
        oh = (h - dilation * (kh - 1) - 1) // stride + 1
        ow = (wd - dilation * (kw - 1) - 1) // stride + 1
        out = tensor_type((n, f, oh, ow) if layout == "nchw_fchw" else (n, oh, ow, f), element)
        acc = self.fill(0.0, out)
        attrs = (
            f"{{dilations = dense<{dilation}> : tensor<2xi64>, "
            f"strides = dense<{stride}> : tensor<2xi64>}}"
        )
        tx, tw = self.types[x], self.types[w]
        return self._emit(
            self._fresh(),
            out,
            f"linalg.conv_2d_{layout} {attrs} ins({x}, {w} : {tx}, {tw}) outs({acc} : {out})"
            f" -> {out}",
        )

    def channel_bias(self, y: str, bias: str, layout: str) -> str:
        """``y + bias`` with the bias broadcast along the channel dimension."""
        channel = "d1" if layout == "nchw_fchw" else "d3"
        id4 = "affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>"
        ch = f"affine_map<(d0, d1, d2, d3) -> ({channel})>"
        return self.generic(
            [y, bias],
            ["%r = arith.addf %i0, %i1 : f32", "linalg.yield %r : f32"],
            maps=[id4, ch, id4],
        )

    def gelu(self, x: str, form: str = "erf") -> str:
        """GELU as torch-mlir lowers it (``erf``) or its tanh approximation (``tanh``)."""
        if form == "erf":
            body = [
                "%s = arith.constant 0.70710678 : f32",
                "%a = arith.mulf %i0, %s : f32",
                "%e = math.erf %a : f32",
            ]
        else:
            body = [
                "%k = arith.constant 0.7978845608 : f32",
                "%c = arith.constant 0.044715 : f32",
                "%x2 = arith.mulf %i0, %i0 : f32",
                "%x3 = arith.mulf %x2, %i0 : f32",
                "%cx3 = arith.mulf %x3, %c : f32",
                "%inner = arith.addf %i0, %cx3 : f32",
                "%kin = arith.mulf %inner, %k : f32",
                "%e = math.tanh %kin : f32",
            ]
        body += [
            "%h = arith.constant 0.5 : f32",
            "%one = arith.constant 1.0 : f32",
            "%b = arith.addf %e, %one : f32",
            "%m = arith.mulf %i0, %b : f32",
            "%r = arith.mulf %m, %h : f32",
            "linalg.yield %r : f32",
        ]
        return self.generic([x], body)


# --- offloading and running ----------------------------------------------------------------

RuntimeFn = Callable[..., Sequence[np.ndarray]]


class Offloaded:
    """A module partitioned for jsonrt, with every region's view, payload and callable."""

    def __init__(self, text: str, options: PartitionOptions | None = None):
        self.text = text
        self.module = parse(text)
        self.views: dict[str, RegionView] = {}
        self.payloads: dict[str, bytes] = {}
        self.fns: dict[str, RuntimeFn] = {}
        with self.module.context:
            partition(self.module.operation, ["jsonrt"], options)
            for name, func in outlined(self.module).items():
                assert byoc.get_target(func) == "jsonrt"
                view = RegionView.of(func)
                artifact = BACKEND.codegen(view, CodegenOptions())
                self.views[name] = view
                self.payloads[name] = artifact.payload
                assert BACKEND.runtime is not None
                self.fns[name] = BACKEND.runtime(artifact.payload)

    @property
    def only(self) -> tuple[RegionView, bytes, RuntimeFn]:
        (name,) = self.views
        return self.views[name], self.payloads[name], self.fns[name]

    def document(self) -> dict:
        return json.loads(self.only[1])

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Runs ``@main``: calls go to the jsonrt callables; any host compute op fails."""
        main = functions(self.module)["main"]
        ops = body_ops(main)
        env: dict[ir.Value, np.ndarray] = dict(
            zip(main.regions[0].blocks[0].arguments, inputs, strict=True)
        )

        def value(v: ir.Value) -> np.ndarray:
            if v in env:
                return env[v]
            array = constant_array(v.owner.operation)
            assert array is not None, f"{v} is computed on the host"
            return array

        for op in ops[:-1]:
            if op.name in CALL_OPS:
                outs = self.fns[callee(op)](*(value(v) for v in op.operands))
                env.update(zip(op.results, outs, strict=True))
            else:
                assert op.name in FREE_OPS, f"{op.name} stayed on the host"
        return [value(v) for v in ops[-1].operands]


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=shape).astype(np.float32)


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


def gelu_erf(x: np.ndarray) -> np.ndarray:
    erf = np.vectorize(math.erf)
    return (0.5 * x * (1.0 + erf(x.astype(np.float64) / math.sqrt(2.0)))).astype(np.float32)


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    k = math.sqrt(2.0 / math.pi)
    return (0.5 * x * (1.0 + np.tanh(k * (x + 0.044715 * x**3)))).astype(np.float32)


def conv_reference(
    x: np.ndarray, w: np.ndarray, layout: str, stride: int, dilation: int
) -> np.ndarray:
    """Direct convolution, one kernel tap at a time (independent of jsonrt's windows)."""
    if layout == "nhwc_hwcf":
        x, w = x.transpose(0, 3, 1, 2), w.transpose(3, 2, 0, 1)
    n, _c, h, wd = x.shape
    f, _, kh, kw = w.shape
    oh = (h - dilation * (kh - 1) - 1) // stride + 1
    ow = (wd - dilation * (kw - 1) - 1) // stride + 1
    out = np.zeros((n, f, oh, ow), np.float64)
    for i in range(kh):
        for j in range(kw):
            r, c = i * dilation, j * dilation
            patch = x[
                :, :, r : r + stride * (oh - 1) + 1 : stride, c : c + stride * (ow - 1) + 1 : stride
            ]
            out += np.einsum("nchw,fc->nfhw", patch, w[:, :, i, j])
    out = out.astype(np.float32)
    return out.transpose(0, 2, 3, 1) if layout == "nhwc_hwcf" else out


# --- registration and support ----------------------------------------------------------------


def test_backend_is_discoverable() -> None:
    backend = registry.get("jsonrt")
    assert backend is BACKEND
    assert backend.codegen is not None and backend.runtime is not None


def test_gelu_is_accepted_where_testing_refuses_it() -> None:
    fb = Builder(T44, flavor="util")
    text = fb.build(fb.gelu(fb.args[0]))
    module = parse(text)
    gelu = next(op for op in body_ops(functions(module)["main"]) if op.name == "linalg.generic")
    assert BACKEND.check_op(gelu, GELU) is None
    verdict = testing_backend.BACKEND.check_op(gelu, GELU)
    assert verdict is not None and "not supported" in verdict.reason


def test_f64_and_runtime_fill_values_are_refused_with_reasons() -> None:
    f64 = "tensor<4x4xf64>"
    fb = FuncBuilder(f64, f64)
    module = parse(fb.build(fb.matmul(*fb.args)))
    matmul = next(op for op in body_ops(functions(module)["main"]) if op.name == "linalg.matmul")
    verdict = BACKEND.check_op(matmul, linalg.MatmulOp.OPERATION_NAME)
    assert verdict is not None and verdict.reason.startswith("element type f64")

    text = (
        "func.func @main(%s: tensor<f32>) -> tensor<4xf32> {\n"
        "  %v = tensor.extract %s[] : tensor<f32>\n"
        "  %e = tensor.empty() : tensor<4xf32>\n"
        "  %f = linalg.fill ins(%v : f32) outs(%e : tensor<4xf32>) -> tensor<4xf32>\n"
        "  return %f : tensor<4xf32>\n}\n"
    )
    module = parse(text)
    fill = next(op for op in body_ops(functions(module)["main"]) if op.name == "linalg.fill")
    verdict = BACKEND.check_op(fill, linalg.FillOp.OPERATION_NAME)
    assert verdict is not None and "computed at run time" in verdict.reason


def test_broadcast_matmul_maps_are_refused() -> None:
    text = (
        "func.func @main(%a: tensor<3xf32>, %b: tensor<3x5xf32>, %c: tensor<4x5xf32>)"
        " -> tensor<4x5xf32> {\n"
        "  %r = linalg.matmul indexing_maps = [affine_map<(d0, d1, d2) -> (d2)>,"
        " affine_map<(d0, d1, d2) -> (d2, d1)>, affine_map<(d0, d1, d2) -> (d0, d1)>]"
        " ins(%a, %b : tensor<3xf32>, tensor<3x5xf32>) outs(%c : tensor<4x5xf32>)"
        " -> tensor<4x5xf32>\n"
        "  return %r : tensor<4x5xf32>\n}\n"
    )
    module = parse(text)
    matmul = next(op for op in body_ops(functions(module)["main"]) if op.name == "linalg.matmul")
    verdict = BACKEND.check_op(matmul, linalg.MatmulOp.OPERATION_NAME)
    assert verdict is not None and "indexing maps" in verdict.reason


# --- numerics --------------------------------------------------------------------------------


@pytest.mark.parametrize("relu_form", ["max", "torch"])
def test_mlp_matches_numpy_and_iree(relu_form: str) -> None:
    text = mlp_text(2, relu_form=relu_form, flavor="util")
    off = Offloaded(text)
    view, _, fn = off.only
    assert view.composites == ["matmul_bias_relu"]
    nodes = off.document()["nodes"]
    assert [n["op"] for n in nodes] == ["fill", "matmul", "bias_add", "relu"] * 2
    assert {n.get("composite") for n in nodes if n["op"] != "fill"} == {"matmul_bias_relu"}

    x, w1, b1, w2, b2 = inputs = random_inputs(text)
    expected = relu(relu(x @ w1 + b1) @ w2 + b2)
    (got,) = fn(*inputs)
    np.testing.assert_allclose(got, expected, **TOL)
    (iree,) = run_with_iree(text, inputs)
    np.testing.assert_allclose(got, iree, **TOL)
    np.testing.assert_allclose(off.run(inputs)[0], iree, **TOL)


@pytest.mark.parametrize("form", ["erf", "tanh"])
def test_matmul_bias_gelu_composite(form: str) -> None:
    fb = Builder("tensor<8x16xf32>", "tensor<16x32xf32>", "tensor<32xf32>", flavor="util")
    x, w, b = fb.args
    text = fb.build(fb.gelu(fb.bias_add(fb.matmul(x, w), b), form))
    off = Offloaded(text)
    view, _, fn = off.only
    assert view.composites == ["matmul_bias_gelu"]
    gelu_node = off.document()["nodes"][-1]
    assert gelu_node["op"] == "gelu" and gelu_node["attrs"] == {"approximation": form}

    inputs = [rand(8, 16, seed=1) * 3, rand(16, 32, seed=2), rand(32, seed=3)]
    reference = gelu_erf if form == "erf" else gelu_tanh
    (got,) = fn(*inputs)
    np.testing.assert_allclose(got, reference(inputs[0] @ inputs[1] + inputs[2]), **TOL)
    if form == "erf":
        np.testing.assert_allclose(got, run_with_iree(text, inputs)[0], **TOL)


def test_gelu_covers_the_tails() -> None:
    fb = Builder("tensor<2001xf32>", flavor="util")
    _, _, fn = Offloaded(fb.build(fb.gelu(fb.args[0]))).only
    x = np.linspace(-12.0, 12.0, 2001, dtype=np.float32)
    np.testing.assert_allclose(fn(x)[0], gelu_erf(x), rtol=1e-6, atol=1e-7)


def test_batch_matmul() -> None:
    fb = Builder("tensor<2x3x5xf32>", "tensor<2x5x4xf32>", flavor="util")
    text = fb.build(fb.batch_matmul(*fb.args))
    off = Offloaded(text)
    _, _, fn = off.only
    assert [n["op"] for n in off.document()["nodes"]] == ["fill", "batch_matmul"]
    a, b = rand(2, 3, 5, seed=1), rand(2, 5, 4, seed=2)
    np.testing.assert_allclose(fn(a, b)[0], a @ b, **TOL)


def test_matmul_accumulates_into_its_init_and_reads_transposed_maps() -> None:
    text = (
        "util.func public @main(%a: tensor<4x3xf32>, %b: tensor<5x3xf32>, %c: tensor<4x5xf32>,"
        " %d: tensor<3x5xf32>) -> (tensor<4x5xf32>, tensor<4x5xf32>) {\n"
        "  %r = linalg.matmul indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>,"
        " affine_map<(d0, d1, d2) -> (d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>]"
        " ins(%a, %b : tensor<4x3xf32>, tensor<5x3xf32>) outs(%c : tensor<4x5xf32>)"
        " -> tensor<4x5xf32>\n"
        "  %e = tensor.empty() : tensor<4x5xf32>\n"
        "  %s = linalg.matmul ins(%a, %d : tensor<4x3xf32>, tensor<3x5xf32>)"
        " outs(%e : tensor<4x5xf32>) -> tensor<4x5xf32>\n"
        "  util.return %r, %s : tensor<4x5xf32>, tensor<4x5xf32>\n}\n"
    )
    off = Offloaded(text)
    nodes = off.document()["nodes"]
    assert nodes[0]["attrs"]["maps"] == [[0, 2], [1, 2], [0, 1]]
    assert [n["op"] for n in nodes] == ["matmul", "empty", "matmul"]
    inputs = [rand(4, 3, seed=1), rand(5, 3, seed=2), rand(4, 5, seed=3), rand(3, 5, seed=4)]
    got_r, got_s = off.run(inputs)
    a, b, c, d = inputs
    np.testing.assert_allclose(got_r, c + a @ b.T, **TOL)
    np.testing.assert_allclose(got_s, a @ d, **TOL)


CONV_CASES = [
    pytest.param(layout, stride, dilation, id=f"{layout}-s{stride}-d{dilation}")
    for layout in ("nchw_fchw", "nhwc_hwcf")
    for stride, dilation in ((1, 1), (2, 1), (1, 2), (2, 2))
]


@pytest.mark.parametrize(("layout", "stride", "dilation"), CONV_CASES)
def test_conv(layout: str, stride: int, dilation: int) -> None:
    x_shape, w_shape = ((1, 3, 9, 10), (4, 3, 3, 2))
    if layout == "nhwc_hwcf":
        x_shape, w_shape = (1, 9, 10, 3), (3, 2, 3, 4)
    fb = Builder(tensor_type(x_shape), tensor_type(w_shape), flavor="util")
    text = fb.build(fb.conv(*fb.args, layout, stride, dilation))
    off = Offloaded(text)
    _, _, fn = off.only
    node = off.document()["nodes"][-1]
    assert node["op"] == f"conv2d_{layout}"
    assert node["attrs"] == {"strides": [stride] * 2, "dilations": [dilation] * 2}
    x, w = rand(*x_shape, seed=1), rand(*w_shape, seed=2)
    (got,) = fn(x, w)
    assert got.flags.c_contiguous and got.dtype == np.float32
    np.testing.assert_allclose(got, conv_reference(x, w, layout, stride, dilation), **TOL)


@pytest.mark.parametrize("layout", ["nchw_fchw", "nhwc_hwcf"])
def test_conv_bias_relu_composite_matches_iree(layout: str) -> None:
    if layout == "nchw_fchw":
        x_shape, w_shape = (2, 3, 11, 11), (8, 3, 3, 3)
    else:
        x_shape, w_shape = (2, 11, 11, 3), (3, 3, 3, 8)
    fb = Builder(tensor_type(x_shape), tensor_type(w_shape), "tensor<8xf32>", flavor="util")
    x, w, b = fb.args
    text = fb.build(fb.relu(fb.channel_bias(fb.conv(x, w, layout, 2, 2), b, layout)))
    off = Offloaded(text)
    view, _, fn = off.only
    assert view.composites == [f"conv2d_bias_relu_{layout}"]
    inputs = random_inputs(text, seed=3)
    (got,) = fn(*inputs)
    conv = conv_reference(inputs[0], inputs[1], layout, 2, 2)
    channel = inputs[2].reshape((1, 8, 1, 1) if layout == "nchw_fchw" else (1, 1, 1, 8))
    np.testing.assert_allclose(got, relu(conv + channel), **TOL)
    np.testing.assert_allclose(got, run_with_iree(text, inputs)[0], **TOL)


def _elementwise_cases() -> dict[
    str, tuple[Callable[[FuncBuilder], str], Callable[..., np.ndarray]]
]:
    def clamp_lo_hi(max_first: bool, outer: bool) -> Callable[[FuncBuilder], str]:
        return lambda fb: fb.clamp(fb.args[0], -0.25, 0.5, max_first=max_first, outer_const=outer)

    return {
        "add": (lambda fb: fb.add(fb.args[0], fb.args[1]), lambda a, b, v: a + b),
        "add_swapped": (
            lambda fb: fb.binary("addf", *fb.args[:2], swap=True),
            lambda a, b, v: a + b,
        ),
        "sub": (lambda fb: fb.sub(fb.args[0], fb.args[1]), lambda a, b, v: a - b),
        "mul": (lambda fb: fb.mul(fb.args[0], fb.args[1]), lambda a, b, v: a * b),
        "bias_add_row": (lambda fb: fb.bias_add(fb.args[0], fb.args[2]), lambda a, b, v: a + v),
        "bias_add_column": (
            lambda fb: fb.generic(
                [fb.args[0], fb.args[2]],
                ["%r = arith.addf %i0, %i1 : f32", "linalg.yield %r : f32"],
                maps=[ID2, COL2, ID2],
            ),
            lambda a, b, v: a + v[:, None],
        ),
        "bias_add_first": (
            lambda fb: fb.generic(
                [fb.args[2], fb.args[0]],
                ["%r = arith.addf %i0, %i1 : f32", "linalg.yield %r : f32"],
                maps=["affine_map<(d0, d1) -> (d1)>", ID2, ID2],
                out_type=T44,
            ),
            lambda a, b, v: v + a,
        ),
        "relu_max": (lambda fb: fb.relu(fb.args[0]), lambda a, b, v: relu(a)),
        "relu_torch": (lambda fb: fb.relu(fb.args[0], form="torch"), lambda a, b, v: relu(a)),
        "relu_inner_zero": (
            lambda fb: fb.relu(fb.args[0], outer_const=False),
            lambda a, b, v: relu(a),
        ),
        "clamp_max_first": (clamp_lo_hi(True, True), lambda a, b, v: np.clip(a, -0.25, 0.5)),
        "clamp_min_first": (clamp_lo_hi(False, True), lambda a, b, v: np.clip(a, -0.25, 0.5)),
        "clamp_inner_bounds": (clamp_lo_hi(True, False), lambda a, b, v: np.clip(a, -0.25, 0.5)),
    }


ELEMENTWISE = _elementwise_cases()


@pytest.mark.parametrize("case", list(ELEMENTWISE))
def test_elementwise_forms(case: str) -> None:
    build, reference = ELEMENTWISE[case]
    fb = FuncBuilder(T44, T44, VEC4, flavor="util")
    text = fb.build(build(fb))
    off = Offloaded(text)
    kind = "bias_add" if case.startswith("bias_add") else case.split("_")[0]
    assert [n["op"] for n in off.document()["nodes"]] == [kind]
    inputs = random_inputs(text, seed=5)
    (got,) = off.run(inputs)
    np.testing.assert_allclose(got, reference(*inputs), **TOL)


def test_clamp_with_crossed_bounds_keeps_the_op_order() -> None:
    for max_first, expected in ((True, 0.25), (False, 0.5)):
        fb = FuncBuilder(T44, flavor="util")
        text = fb.build(fb.clamp(fb.args[0], 0.5, 0.25, max_first=max_first))
        (got,) = Offloaded(text).run([rand(4, 4)])
        np.testing.assert_array_equal(got, np.full((4, 4), expected, np.float32))


def test_chained_units_in_one_region() -> None:
    fb = FuncBuilder(T44, T44, VEC4, T44, flavor="util")
    x, w, b, y = fb.args
    h = fb.relu(fb.bias_add(fb.matmul(x, w), b))
    z = fb.clamp(fb.mul(fb.sub(fb.add(h, y), x), y), -0.5, 0.5)
    text = fb.build(z, h)
    off = Offloaded(text)
    view, _, fn = off.only
    assert len(view.units()) > 3
    assert len(view.outputs) == 2
    inputs = random_inputs(text, seed=7)
    got_z, got_h = off.run(inputs)
    x, w, b, y = inputs
    h_ref = relu(x @ w + b)
    np.testing.assert_allclose(got_h, h_ref, **TOL)
    np.testing.assert_allclose(got_z, np.clip((h_ref + y - x) * y, -0.5, 0.5), **TOL)


def test_small_constants_travel_in_the_payload() -> None:
    fb = Builder(T44, T44, flavor="util")
    x, w = fb.args
    bias = fb.weights(VEC4)  # dense<[0, 1, 2, 3]>: cloned into the region
    ones = fb.splat(1.5, T44)
    text = fb.build(fb.mul(fb.bias_add(fb.matmul(x, w), bias), ones))
    off = Offloaded(text)
    view, _, fn = off.only
    assert len(view.inputs) == 2
    constants = off.document()["constants"]
    assert sorted(constants) == ["const0", "const1"]
    assert {"data" in c for c in constants.values()} == {True, False}
    assert {c.get("splat") for c in constants.values()} == {None, 1.5}
    x_in, w_in = rand(4, 4, seed=1), rand(4, 4, seed=2)
    expected = (x_in @ w_in + np.arange(4, dtype=np.float32)) * 1.5
    np.testing.assert_allclose(fn(x_in, w_in)[0], expected, **TOL)


def test_large_weights_arrive_as_arguments() -> None:
    fb = FuncBuilder(T44, flavor="util")
    text = fb.build(fb.relu(fb.matmul(fb.args[0], fb.weights(T44))))
    off = Offloaded(text, PartitionOptions(clone_limit=4))
    view, _, _ = off.only
    assert len(view.inputs) == 2 and off.document()["constants"] == {}
    x = rand(4, 4)
    w = np.arange(16, dtype=np.float32).reshape(4, 4)
    np.testing.assert_allclose(off.run([x])[0], relu(x @ w), **TOL)


# --- the payload ---------------------------------------------------------------------------


def test_payload_is_deterministic() -> None:
    fb = FuncBuilder(T44, T44, flavor="util")
    text = fb.build(fb.relu(fb.bias_add(fb.matmul(*fb.args), fb.weights(VEC4))))
    first, second = Offloaded(text), Offloaded(text)
    payload = first.only[1]
    assert payload == second.only[1]
    view = first.only[0]
    assert BACKEND.codegen(view, CodegenOptions()).payload == payload
    document = json.loads(payload)
    assert (document["format"], document["version"]) == ("byoc_mlir.jsonrt", 1)
    assert document["name"] == view.name


def test_outputs_are_fresh_float32_arrays() -> None:
    fb = FuncBuilder(T44, T44, flavor="util")
    text = fb.build(fb.add(*fb.args))
    _, _, fn = Offloaded(text).only
    a, b = rand(4, 4, seed=1), rand(4, 4, seed=2)
    (out,) = fn(a, b)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    assert not np.shares_memory(out, a) and not np.shares_memory(out, b)
    before = out.copy()
    a[:] = 7.0
    np.testing.assert_array_equal(out, before)


def test_no_reference_to_the_inputs_survives_a_call() -> None:
    # The VM hands over zero-copy views of device buffers that are reused after the call.
    _, _, fn = Offloaded(mlp_text(1, flavor="util")).only
    inputs = [rand(4, 4, seed=1), rand(4, 4, seed=2), rand(4, seed=3)]
    refs = [weakref.ref(a) for a in inputs]
    fn(*inputs)
    del inputs
    gc.collect()
    assert [r() for r in refs] == [None, None, None]


# --- errors ----------------------------------------------------------------------------------


def test_wrong_inputs_raise_clear_errors() -> None:
    _, _, fn = Offloaded(mlp_text(1, flavor="util")).only
    x, w, b = rand(4, 4), rand(4, 4), rand(4)
    with pytest.raises(JsonrtError, match=r"takes 3 inputs .*got 2"):
        fn(x, w)
    with pytest.raises(
        JsonrtError,
        match=r"input 2 must be tensor<4xf32> \(float32\), got "
        r"float32 of shape \[4, 1\]",
    ):
        fn(x, w, b.reshape(4, 1))
    with pytest.raises(JsonrtError, match=r"input 0 must be tensor<4x4xf32>.*float64"):
        fn(x.astype(np.float64), w, b)


def test_unserialisable_op_raises_with_its_name_and_location() -> None:
    anything = Backend("anything", "accepts every generic (tanh included)")
    anything.supports(linalg.GenericOp)
    fb = FuncBuilder(T44, flavor="util")
    module = parse(fb.build(fb.tanh(fb.args[0])))
    with module.context:
        partition(module.operation, [anything])
        (func,) = outlined(module).values()
        view = RegionView.of(func)
        with pytest.raises(JsonrtError, match="jsonrt cannot serialise linalg.generic") as err:
            BACKEND.codegen(view, CodegenOptions())
    assert err.value.location.startswith("loc(")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\xff not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"format": "other", "version": 1}', "not a jsonrt payload"),
        (b'{"format": "byoc_mlir.jsonrt", "version": 1}', "malformed"),
    ],
)
def test_malformed_payloads_are_refused_at_load(payload: bytes, message: str) -> None:
    with pytest.raises(JsonrtError, match=message):
        load(payload)


def test_payload_with_a_wrong_shape_fails_with_the_node() -> None:
    _, payload, _ = Offloaded(mlp_text(1, flavor="util")).only
    document = json.loads(payload)
    document["nodes"][-1]["shape"] = document["outputs"][0]["shape"] = [2, 8]
    # Found when the payload loads (each node's shape follows from its inputs').
    with pytest.raises(JsonrtError, match=r"node v3 \(relu\) computes \[4, 4\] from inputs"):
        load(json.dumps(document).encode())


def test_payload_naming_an_unknown_op_is_refused_at_load() -> None:
    _, payload, _ = Offloaded(mlp_text(1, flavor="util")).only
    document = json.loads(payload)
    document["nodes"][-1]["op"] = "softmax"
    with pytest.raises(JsonrtError, match="unknown op 'softmax'"):
        load(json.dumps(document).encode())


def test_a_rank0_constant_read_through_an_empty_map_builds_and_runs() -> None:
    # Found by the fuzzer: the constant was stored with shape [1] and the payload then
    # failed to load ("indexing map [] reads a rank-1 operand"), losing the whole build.
    text = (
        "func.func @main(%x: tensor<8x2xf32>) -> tensor<8x2xf32> {\n"
        "  %c = arith.constant dense<-0.15> : tensor<f32>\n"
        "  %e = tensor.empty() : tensor<8x2xf32>\n"
        "  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>,"
        " affine_map<(d0, d1) -> ()>, affine_map<(d0, d1) -> (d0, d1)>],"
        ' iterator_types = ["parallel", "parallel"]}'
        " ins(%x, %c : tensor<8x2xf32>, tensor<f32>) outs(%e : tensor<8x2xf32>) {\n"
        "  ^bb0(%a: f32, %b: f32, %o: f32):\n"
        "    %m = arith.mulf %a, %b : f32\n"
        "    linalg.yield %m : f32\n"
        "  } -> tensor<8x2xf32>\n"
        "  return %r : tensor<8x2xf32>\n}\n"
    )
    compiled = compile(text, ["jsonrt"], options=CompileOptions(cache_dir=None))
    assert [r["status"] for r in compiled.report["regions"]] == ["offloaded"]
    assert compiled.report["regions"][0]["route"] == "runtime"
    x = np.arange(16, dtype=np.float32).reshape(8, 2)
    np.testing.assert_allclose(compiled(x)[0], x * np.float32(-0.15), rtol=1e-6)
    compiled.close()
