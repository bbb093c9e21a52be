"""The ``ccompiler`` backend: its support table, and its C, built and run with ctypes.

Each test partitions a small linalg function for ``ccompiler``, calls the codegen hook on
every outlined function, compiles the C into a shared library and runs the partitioned
``@main`` with the kernels standing in for the calls (the calling convention of
`byoc_mlir.codegen.hook`). Every kernel runs three ways — its declared workgroups, one
workgroup, and more workgroups than it has rows — with its buffers at nonzero offsets,
and the C is built with several register tile sizes (`TILES`: the default, AVX-512's,
and small odd ones that make tile edges overlap even on small shapes); all must agree
with a numpy reference. Every source is also built with the freestanding flags of the
linked route and must leave no symbol undefined.
"""

from __future__ import annotations

import ctypes
import re
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    CALL_OPS,
    FREE_OPS,
    TERMINATORS,
    FuncBuilder,
    body_ops,
    callee,
    functions,
    mlp_text,
    outlined,
    partitioned,
    run_passes,
    tensor_shape,
    tensor_type,
)
from iree.compiler import ir

from byoc_mlir.backends.ccompiler.backend import BACKEND, CodegenError
from byoc_mlir.codegen import registry
from byoc_mlir.codegen.hook import (
    CodegenOptions,
    LinkedArtifact,
    RegionView,
    ValueRef,
    validate,
)
from byoc_mlir.dialects import byoc
from byoc_mlir.passes import AnnotatePass

FREESTANDING = [
    "-O3", "-ffreestanding", "-fPIC", "-fvisibility=hidden", "-fno-plt",
    "-fno-stack-protector", "-fno-builtin", "-fno-tree-loop-distribute-patterns",
    "-fno-asynchronous-unwind-tables",
]  # fmt: skip
OFFSET = 3
"""Every buffer is passed at this element offset, so ignoring offsets shows up."""
TILES: list[tuple[str, ...]] = [
    (),  # the source's defaults for the build machine (no -march here: 4 x 24)
    ("-DTILE_M=6", "-DTILE_N=32"),  # the AVX-512 tile
    ("-DTILE_M=3", "-DTILE_N=5"),  # odd sizes: tile edges overlap on small shapes
]
"""Register tile sizes every kernel is built and run with (``-D`` flags)."""


# --- building IR ----------------------------------------------------------------------------


class Builder(FuncBuilder):
    """`FuncBuilder` plus the named ops and broadcasts these tests need."""

    def named(self, text: str, ins: Sequence[str], init: str, out_type: str) -> str:
        types = ", ".join(self.types[v] for v in ins)
        line = f"{text} ins({', '.join(ins)} : {types}) outs({init} : {out_type}) -> {out_type}"
        return self._emit(self._fresh(), out_type, line)

    def matmul_into(self, a: str, b: str, init: str) -> str:
        return self.named("linalg.matmul", [a, b], init, self.types[init])

    def batch_matmul(self, a: str, b: str) -> str:
        (batch, m, _), _ = tensor_shape(self.types[a])
        n = tensor_shape(self.types[b])[0][2]
        out = tensor_type((batch, m, n))
        return self.named("linalg.batch_matmul", [a, b], self.fill(0.0, out), out)

    def conv(
        self, layout: str, x: str, w: str, strides: tuple[int, int], dilations: tuple[int, int]
    ) -> str:
        xs, ws = tensor_shape(self.types[x])[0], tensor_shape(self.types[w])[0]
        if layout == "nchw_fchw":
            (n, _, h, wd), (f, _, kh, kw) = xs, ws
        else:
            (n, h, wd, _), (kh, kw, _, f) = xs, ws
        oh = (h - dilations[0] * (kh - 1) - 1) // strides[0] + 1
        ow = (wd - dilations[1] * (kw - 1) - 1) // strides[1] + 1
        out = tensor_type((n, f, oh, ow) if layout == "nchw_fchw" else (n, oh, ow, f))
        attrs = (
            f"{{dilations = dense<[{dilations[0]}, {dilations[1]}]> : tensor<2xi64>, "
            f"strides = dense<[{strides[0]}, {strides[1]}]> : tensor<2xi64>}}"
        )
        return self.named(f"linalg.conv_2d_{layout} {attrs}", [x, w], self.fill(0.0, out), out)

    def broadcast_add(self, x: str, bias: str, dim: int) -> str:
        """``x + bias`` with the 1-D bias along dimension ``dim`` of x."""
        rank = len(tensor_shape(self.types[x])[0])
        dims = ", ".join(f"d{i}" for i in range(rank))
        identity = f"affine_map<({dims}) -> ({dims})>"
        along = f"affine_map<({dims}) -> (d{dim})>"
        return self.generic(
            [x, bias],
            ["%r = arith.addf %i0, %i1 : f32", "linalg.yield %r : f32"],
            maps=[identity, along, identity],
        )

    def splat(self, value: float, type_text: str) -> str:
        return self._emit(
            self._fresh("s"), type_text, f"arith.constant dense<{value!r}> : {type_text}"
        )


# --- running C ------------------------------------------------------------------------------


class CRunner:
    """Builds generated C (cached per source) and runs artifacts with ctypes."""

    def __init__(self, root: Path):
        self.root = root
        self._libs: dict[tuple[str, tuple[str, ...]], ctypes.CDLL] = {}

    def library(self, source: str, defines: tuple[str, ...] = ()) -> ctypes.CDLL:
        lib = self._libs.get((source, defines))
        if lib is None:
            stem = self.root / f"region{len(self._libs)}"
            c_file = stem.with_suffix(".c")
            c_file.write_text(source)
            so = str(stem.with_suffix(".so"))
            _gcc(["-O2", "-shared", "-fPIC", *defines, "-o", so, str(c_file)])
            self._check_freestanding(c_file, defines)
            lib = self._libs[source, defines] = ctypes.CDLL(so)
        return lib

    def _check_freestanding(self, c_file: Path, defines: tuple[str, ...]) -> None:
        obj = c_file.with_suffix(".o")
        flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", *defines]
        _gcc([*FREESTANDING, *flags, "-c", "-o", str(obj), str(c_file)])
        undefined = subprocess.run(["nm", "-u", str(obj)], capture_output=True, text=True)
        assert undefined.stdout.strip() == "", f"{c_file}: undefined {undefined.stdout}"

    def run(
        self,
        artifact: LinkedArtifact,
        inputs: Sequence[np.ndarray],
        count: Callable[[int], int],
        defines: tuple[str, ...] = (),
    ) -> list[np.ndarray]:
        """Runs the kernels in order; kernel k gets ``count(declared workgroups)`` calls.
        The source is built with ``defines`` (tile sizes)."""
        assert artifact.c_source is not None
        lib = self.library(artifact.c_source, defines)
        results: list[list[np.ndarray]] = []

        def read(ref: ValueRef) -> np.ndarray:
            return inputs[ref.index] if ref.source == "arg" else results[ref.index][ref.result]

        for kernel in artifact.kernels:
            args = [_padded(read(ref)) for ref in kernel.args]
            outs = [_padded(np.full(r.shape, np.nan, np.float32)) for r in kernel.results]
            fn = lib[kernel.symbol]
            n_ptr = len(args) + len(outs)
            fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t] * n_ptr + [ctypes.c_size_t] * 2
            fn.restype = None
            pointers = [x for buf in args + outs for x in (buf.ctypes.data, OFFSET)]
            total = count(kernel.workgroups)
            for wg in range(total):
                fn(*pointers, wg, total)
            results.append(
                [_unpadded(o, r.shape) for o, r in zip(outs, kernel.results, strict=True)]
            )
        return [read(ref) for ref in artifact.outputs]


def _gcc(args: list[str]) -> None:
    done = subprocess.run(["gcc", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _padded(a: np.ndarray) -> np.ndarray:
    buf = np.full(a.size + OFFSET, np.nan, np.float32)
    buf[OFFSET:] = np.asarray(a, np.float32).reshape(-1)
    return buf


def _unpadded(buf: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return buf[OFFSET:].reshape(shape).copy()


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> CRunner:
    return CRunner(tmp_path_factory.mktemp("ccompiler"))


class Offloaded:
    """A partitioned module with an artifact per outlined function."""

    def __init__(self, text: str, threads: int = 2):
        self.module = partitioned(text, ["ccompiler"])
        self.views: dict[str, RegionView] = {}
        self.artifacts: dict[str, LinkedArtifact] = {}
        with self.module.context:
            for name, func in outlined(self.module).items():
                view = RegionView.of(func)
                artifact = BACKEND.codegen(view, CodegenOptions(threads=threads))
                validate(artifact, view)
                assert isinstance(artifact, LinkedArtifact)
                self.views[name], self.artifacts[name] = view, artifact

    @property
    def only(self) -> LinkedArtifact:
        (artifact,) = self.artifacts.values()
        return artifact

    def run(self, runner: CRunner, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Runs ``@main`` with each call executed by its kernels (three workgroup counts
        and every `TILES` size, compared)."""
        main = functions(self.module)["main"]
        env: dict[ir.Value, np.ndarray] = dict(
            zip(main.regions[0].blocks[0].arguments, inputs, strict=True)
        )
        for op in body_ops(main):
            if op.name in FREE_OPS:
                continue
            if op.name in TERMINATORS:
                return [env[v] for v in op.operands]
            assert op.name in CALL_OPS, f"{op.name} stayed on the host"
            artifact = self.artifacts[callee(op)]
            args = [env[v] for v in op.operands]
            got = runner.run(artifact, args, lambda declared: declared)
            for count in (lambda _: 1, lambda declared: declared * 2 + 3):
                again = runner.run(artifact, args, count)
                for a, b in zip(got, again, strict=True):
                    np.testing.assert_array_equal(a, b)
            for tiles in TILES[1:]:  # tiles and plain loops sum in the same order
                for count in (lambda declared: declared, lambda declared: declared * 2 + 3):
                    again = runner.run(artifact, args, count, tiles)
                    for a, b in zip(got, again, strict=True):
                        np.testing.assert_array_equal(a, b)
            env.update(zip(op.results, got, strict=True))
        raise AssertionError("no terminator")


def _inputs(*shapes: Sequence[int], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1.0, 1.0, size=s).astype(np.float32) for s in shapes]


def _close(got: np.ndarray, want: np.ndarray) -> None:
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def _conv_ref(layout: str, x: np.ndarray, w: np.ndarray, strides, dilations) -> np.ndarray:
    (sh, sw), (dh, dw) = strides, dilations
    x, w = x.astype(np.float64), w.astype(np.float64)
    if layout == "nchw_fchw":
        x = x.transpose(0, 2, 3, 1)  # compute in NHWC / HWCF, transpose back
        w = w.transpose(2, 3, 1, 0)
    n, h, wd, _ = x.shape
    kh, kw, _, f = w.shape
    oh, ow = (h - dh * (kh - 1) - 1) // sh + 1, (wd - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, oh, ow, f))
    for i in range(kh):
        for j in range(kw):
            patch = x[
                :,
                i * dh : i * dh + sh * (oh - 1) + 1 : sh,
                j * dw : j * dw + sw * (ow - 1) + 1 : sw,
            ]
            out += np.einsum("nhwc,cf->nhwf", patch, w[i, j])
    return out.transpose(0, 3, 1, 2) if layout == "nchw_fchw" else out


# --- kernels, run -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("m", "k", "n"),
    # smaller than any tile; rows but not columns for a tile; both, with overlapping
    # edge tiles of rows and of columns; exact 6 x 32 tiles; more rows than 8 workgroups
    [(4, 4, 4), (7, 13, 5), (33, 17, 19), (33, 17, 37), (12, 9, 64), (70, 5, 50)],
)
def test_matmul_bias_relu_folds_the_fill(runner: CRunner, m: int, k: int, n: int) -> None:
    fb = Builder(tensor_type((m, k)), tensor_type((k, n)), tensor_type((n,)))
    a, b, bias = fb.args
    text = fb.build(fb.relu(fb.bias_add(fb.matmul(a, b), bias), form="torch"))
    off = Offloaded(text)
    (kernel,) = off.only.kernels  # no kernel for the fill: the accumulator starts at 0
    assert kernel.args == [ValueRef.arg(0), ValueRef.arg(1), ValueRef.arg(2)]
    assert kernel.workgroups == min(8, -(-m // 8))  # >= 8 rows each: whole tiles
    x, y, z = _inputs((m, k), (k, n), (n,))
    (got,) = off.run(runner, [x, y, z])
    _close(got, np.maximum(x.astype(np.float64) @ y + z, 0))


@pytest.mark.parametrize(("m", "k", "n"), [(5, 3, 6), (14, 3, 27)])
def test_matmul_reads_a_non_fill_init(runner: CRunner, m: int, k: int, n: int) -> None:
    fb = Builder(tensor_type((m, k)), tensor_type((k, n)), tensor_type((m, n)))
    text = fb.build(fb.matmul_into(*fb.args))
    off = Offloaded(text)
    (kernel,) = off.only.kernels
    assert len(kernel.args) == 3
    x, y, init = _inputs((m, k), (k, n), (m, n))
    (got,) = off.run(runner, [x, y, init])
    _close(got, init + x.astype(np.float64) @ y)


@pytest.mark.parametrize(
    ("batch", "m", "k", "n"),
    # tiny; workgroup shares (7-8 rows) that start and end inside batches of 13 rows
    [(3, 5, 4, 6), (3, 13, 4, 29)],
)
def test_batch_matmul_bias_relu(runner: CRunner, batch: int, m: int, k: int, n: int) -> None:
    fb = Builder(tensor_type((batch, m, k)), tensor_type((batch, k, n)), tensor_type((n,)))
    a, b, bias = fb.args
    text = fb.build(fb.relu(fb.broadcast_add(fb.batch_matmul(a, b), bias, dim=2)))
    off = Offloaded(text)
    assert len(off.only.kernels) == 1
    assert off.views["ccompiler.main_0"].composites == ["batch_matmul_bias_relu"]
    x, y, z = _inputs((batch, m, k), (batch, k, n), (n,))
    (got,) = off.run(runner, [x, y, z])
    _close(got, np.maximum(np.matmul(x.astype(np.float64), y) + z, 0))


CONVS = [
    # layout, input shape, filter shape, strides, dilations
    ("nchw_fchw", (2, 3, 11, 12), (4, 3, 3, 2), (2, 2), (2, 2)),
    ("nchw_fchw", (1, 2, 9, 10), (3, 2, 2, 3), (2, 1), (1, 2)),
    ("nhwc_hwcf", (2, 11, 12, 3), (3, 2, 3, 4), (2, 2), (2, 2)),
    ("nhwc_hwcf", (1, 9, 10, 2), (2, 3, 2, 3), (2, 1), (1, 2)),
    # Large enough for tiles, with channel and width counts no tile size divides: the
    # edge tiles of filters and of pixels overlap.
    ("nchw_fchw", (1, 5, 6, 40), (7, 5, 3, 3), (1, 1), (1, 1)),
    ("nchw_fchw", (2, 3, 7, 60), (9, 3, 2, 3), (1, 2), (2, 1)),
    ("nhwc_hwcf", (1, 5, 30, 6), (3, 3, 6, 29), (1, 1), (1, 1)),
    ("nhwc_hwcf", (2, 7, 61, 3), (2, 3, 3, 37), (2, 2), (1, 2)),
]


@pytest.mark.parametrize(("layout", "xs", "ws", "strides", "dilations"), CONVS)
def test_conv_bias_relu(runner: CRunner, layout, xs, ws, strides, dilations) -> None:
    f = ws[0] if layout == "nchw_fchw" else ws[3]
    fb = Builder(tensor_type(xs), tensor_type(ws), tensor_type((f,)))
    x, w, bias = fb.args
    conv = fb.conv(layout, x, w, strides, dilations)
    text = fb.build(fb.relu(fb.broadcast_add(conv, bias, dim=1 if layout == "nchw_fchw" else 3)))
    off = Offloaded(text)
    assert off.views["ccompiler.main_0"].composites == [f"conv2d_bias_relu_{layout}"]
    assert len(off.only.kernels) == 1
    inputs = _inputs(xs, ws, (f,))
    (got,) = off.run(runner, inputs)
    bias_shape = (1, f, 1, 1) if layout == "nchw_fchw" else (f,)
    want = _conv_ref(layout, inputs[0], inputs[1], strides, dilations) + inputs[2].reshape(
        bias_shape
    )
    _close(got, np.maximum(want, 0))


def test_conv_clamp_without_bias(runner: CRunner) -> None:
    fb = Builder(tensor_type((1, 7, 7, 2)), tensor_type((3, 3, 2, 5)))
    text = fb.build(fb.clamp(fb.conv("nhwc_hwcf", *fb.args, (1, 1), (1, 1)), -0.3, 0.4))
    off = Offloaded(text)
    assert off.views["ccompiler.main_0"].composites == ["conv2d_clamp_nhwc_hwcf"]
    x, w = _inputs((1, 7, 7, 2), (3, 3, 2, 5))
    (got,) = off.run(runner, [x, w])
    _close(got, np.clip(_conv_ref("nhwc_hwcf", x, w, (1, 1), (1, 1)), -0.3, 0.4))


def test_standalone_elementwise_kernels(runner: CRunner) -> None:
    shape = (3, 5, 7)
    t = tensor_type(shape)
    fb = Builder(t, tensor_type((5,)), t, t)
    x, bias, y, z = fb.args
    v = fb.broadcast_add(x, bias, dim=1)  # (d0, d1, d2) -> (d1): a row-wise kernel
    v = fb.clamp(fb.relu(v), -0.5, 0.5, max_first=False, outer_const=False)
    v = fb.mul(fb.sub(fb.add(v, y), z), x)
    off = Offloaded(fb.build(v))
    assert len(off.only.kernels) == 6
    assert off.only.kernels[5].args == [ValueRef.kernel(4), ValueRef.arg(0)]
    inputs = _inputs(shape, (5,), shape, shape)
    (got,) = off.run(runner, inputs)
    xv, bv, yv, zv = (a.astype(np.float64) for a in inputs)
    want = (np.clip(np.maximum(xv + bv[:, None], 0), -0.5, 0.5) + yv - zv) * xv
    _close(got, want)


def test_two_chained_units(runner: CRunner) -> None:
    fb = Builder(tensor_type((6, 4)), tensor_type((4, 5)), tensor_type((5,)), tensor_type((5, 3)))
    a, w1, b1, w2 = fb.args
    text = fb.build(fb.matmul(fb.relu(fb.bias_add(fb.matmul(a, w1), b1)), w2))
    off = Offloaded(text)
    first, second = off.only.kernels
    assert second.args == [ValueRef.kernel(0), ValueRef.arg(3)]
    assert off.only.outputs == [ValueRef.kernel(1)]
    inputs = _inputs((6, 4), (4, 5), (5,), (5, 3))
    (got,) = off.run(runner, inputs)
    x, y, z, u = (i.astype(np.float64) for i in inputs)
    _close(got, np.maximum(x @ y + z, 0) @ u)


def test_units_run_in_dependency_order(runner: CRunner) -> None:
    # The bias is computed between the matmul and its bias-add: the composite's kernel
    # must come after the add's, although the matmul comes first in program order.
    fb = Builder(tensor_type((4, 3)), tensor_type((3, 5)), tensor_type((5,)), tensor_type((5,)))
    a, b, c, d = fb.args
    mm = fb.matmul(a, b)
    text = fb.build(fb.relu(fb.bias_add(mm, fb.add(c, d))))
    off = Offloaded(text)
    add, fused = off.only.kernels
    assert fused.args[-1] == ValueRef.kernel(0)
    inputs = _inputs((4, 3), (3, 5), (5,), (5,))
    (got,) = off.run(runner, inputs)
    _close(got, np.maximum(inputs[0].astype(np.float64) @ inputs[1] + inputs[2] + inputs[3], 0))


def test_small_dense_constants_become_tables(runner: CRunner) -> None:
    fb = Builder(tensor_type((3, 4)))
    text = fb.build(fb.bias_add(fb.matmul(fb.args[0], fb.weights("tensor<4x4xf32>")),
                                fb.weights("tensor<4xf32>")))  # fmt: skip
    off = Offloaded(text)
    source = off.only.c_source or ""
    assert re.findall(r"static const float (\w+)\[(\d+)\]", source) == [
        ("cst0", "16"),
        ("cst1", "4"),
    ]
    (kernel,) = off.only.kernels
    assert kernel.args == [ValueRef.arg(0)]
    (x,) = _inputs((3, 4))
    (got,) = off.run(runner, [x])
    w = np.arange(16, dtype=np.float64).reshape(4, 4)
    _close(got, x @ w + np.arange(4))


def test_splat_constant_is_a_literal(runner: CRunner) -> None:
    t = tensor_type((4, 6))
    fb = Builder(t)
    text = fb.build(fb.mul(fb.args[0], fb.splat(2.5, t)))
    off = Offloaded(text)
    (kernel,) = off.only.kernels
    assert kernel.args == [ValueRef.arg(0)]
    assert "* 2.5f" in (off.only.c_source or "")
    (x,) = _inputs((4, 6))
    (got,) = off.run(runner, [x])
    _close(got, x * 2.5)


def test_fill_returned_from_the_region_is_recomputed_on_the_host() -> None:
    """A fill of a constant that the host also reads is not returned from the region:
    the host fills its own copy (a crossing buys nothing), the region keeps its fill."""
    t = tensor_type((5, 3))
    fb = Builder(t)
    filled = fb.fill(1.5, t)
    text = fb.build(filled, fb.add(fb.args[0], filled))
    off = Offloaded(text)
    (add,) = off.only.kernels  # the add reads the splat; no kernel writes the fill out
    assert add.args == [ValueRef.arg(0)]
    (view,) = off.views.values()
    assert len(view.outputs) == 1  # only the add's result crosses back
    names = [op.name for op in body_ops(functions(off.module)["main"])]
    assert names.count("linalg.fill") == 1 and names.count("func.call") == 1


def test_util_func_regions(runner: CRunner) -> None:
    off = Offloaded(mlp_text(2, flavor="util"))
    assert [k.symbol for k in off.only.kernels] == ["ccompiler_main_0_k0", "ccompiler_main_0_k1"]
    inputs = _inputs((4, 4), (4, 4), (4,), (4, 4), (4,))
    (got,) = off.run(runner, inputs)
    x, w1, b1, w2, b2 = (i.astype(np.float64) for i in inputs)
    _close(got, np.maximum(np.maximum(x @ w1 + b1, 0) @ w2 + b2, 0))


# --- the generated source ---------------------------------------------------------------------


def test_source_is_freestanding_and_names_its_kernels() -> None:
    off = Offloaded(mlp_text(2), threads=1)
    source = off.only.c_source or ""
    assert re.findall(r"#include\s*<([^>]+)>", source) == ["stddef.h"]
    assert not re.search(r"\b(memset|memcpy|malloc|free)\s*\(", source)
    assert [k.workgroups for k in off.only.kernels] == [1, 1]  # 4 rows: one workgroup
    for kernel in off.only.kernels:
        assert f"void {kernel.symbol}(" in source
    # every pointer is restrict: results never alias arguments (the hook's contract)
    pointers = re.findall(r"float\s*(?:\*|\(\*)\s*(\w+)", source)
    assert pointers and set(pointers) == {"restrict"}
    assert "float acc[TILE_M][TILE_N];" in source


# --- refusals ---------------------------------------------------------------------------------


def _transposed_matmul() -> str:
    t = "tensor<4x4xf32>"
    return (
        f"func.func @main(%a: {t}, %b: {t}, %c: {t}) -> {t} {{\n"
        "  %0 = linalg.matmul indexing_maps = [affine_map<(d0, d1, d2) -> (d2, d0)>,"
        " affine_map<(d0, d1, d2) -> (d2, d1)>, affine_map<(d0, d1, d2) -> (d0, d1)>]"
        f" ins(%a, %b : {t}, {t}) outs(%c : {t}) -> {t}\n"
        f"  return %0 : {t}\n}}\n"
    )


def _dynamic_conv() -> str:
    """A convolution with a dynamic batch (ccompiler's convolutions take static shapes;
    its matmuls and elementwise ops take dynamic ones)."""
    x, w, y = "tensor<?x3x8x8xf32>", "tensor<4x3x3x3xf32>", "tensor<?x4x6x6xf32>"
    return (
        f"func.func @main(%a: {x}, %b: {w}, %c: {y}) -> {y} {{\n"
        f"  %0 = linalg.conv_2d_nchw_fchw ins(%a, %b : {x}, {w}) outs(%c : {y}) -> {y}\n"
        f"  return %0 : {y}\n}}\n"
    )


def _f64_matmul() -> str:
    fb = Builder("tensor<4x4xf64>", "tensor<4x4xf64>")
    return fb.build(fb.matmul(*fb.args))


def _tanh() -> str:
    fb = Builder("tensor<4x4xf32>")
    return fb.build(fb.tanh(fb.args[0]))


@pytest.mark.parametrize(
    ("text", "op_name", "reason"),
    [
        (_f64_matmul(), "linalg.matmul", "element type f64 is not supported (valid: f32)"),
        (
            _dynamic_conv(),
            "linalg.conv_2d_nchw_fchw",
            "dynamic shape tensor<?x3x8x8xf32> is not supported (static shapes only)",
        ),
        (_tanh(), "linalg.generic", "linalg.generic computing math.tanh is not supported"),
        (
            _transposed_matmul(),
            "linalg.matmul",
            "linalg.matmul with transposed or broadcast operands is not supported",
        ),
    ],
    ids=["f64", "dynamic", "tanh", "transposed"],
)
def test_refusals_are_annotated(text: str, op_name: str, reason: str) -> None:
    module = run_passes(text, [AnnotatePass(("ccompiler",))])
    (op,) = [o for o in body_ops(functions(module)["main"]) if o.name == op_name]
    assert byoc.get_reject(op) == {"ccompiler": reason}


def _testing_region(text: str) -> tuple[ir.Module, RegionView]:
    module = partitioned(text, ["testing"])
    (func,) = outlined(module).values()
    return module, RegionView.of(func)


def test_hook_refuses_an_op_it_does_not_emit() -> None:
    t = "tensor<4xf32>"
    text = (
        f"func.func @main(%a: {t}, %b: {t}) -> {t} {{\n"
        f"  %0 = tosa.add %a, %b : ({t}, {t}) -> {t}\n  return %0 : {t}\n}}\n"
    )
    module, view = _testing_region(text)
    with module.context, pytest.raises(CodegenError, match="cannot generate code for tosa.add"):
        BACKEND.codegen(view, CodegenOptions())


def test_hook_refuses_a_transposed_matmul() -> None:
    module, view = _testing_region(_transposed_matmul())
    with module.context, pytest.raises(CodegenError, match="custom indexing_maps"):
        BACKEND.codegen(view, CodegenOptions())


def test_is_discovered() -> None:
    assert registry.get("ccompiler") is BACKEND
    names = {c.name for c in BACKEND.composites}
    assert {"matmul_bias_relu", "conv2d_bias_nchw_fchw", "matmul_clamp"} <= names
