"""The ``dnnl`` backend (oneDNN 3.2 from PyPI) end to end: models compiled with ``["dnnl"]``, run
through the runtime route, and compared with torch, numpy or the host-only build.

Besides numerics, each payload's generated ``region.c`` is read back (`region_calls`) to
check what the backend promises: bias adds, activations and residual adds fold into the
producing convolution or matmul as post-ops (no standalone ``bd_eltwise``/``bd_binary``),
and a ``tensor.pad`` folds into the convolution's or pooling's padding (no ``bd_pad``).
Also covered: the ``layout`` backend option, per-region fallback (a bad option, an
injected build failure), host-op reasons, the run-time profile, deterministic payloads,
damaged payloads, and the ``cnn`` and ``transformer`` zoo models.

Every build disables the artifact cache (``cache_dir=None``), so codegen really runs.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import FREE_OPS, FuncBuilder, body_ops, compute_signature, functions, run_passes
from torch import nn

from byoc_mlir import ByocError, Compiled, CompileOptions, compile, zoo
from byoc_mlir.backends.dnnl import backend as dnnl
from byoc_mlir.backends.dnnl import runtime as dnnl_runtime
from byoc_mlir.backends.dnnl.runtime import DnnlError
from byoc_mlir.dialects import byoc
from byoc_mlir.passes import AnnotatePass

OPTIONS = CompileOptions(cache_dir=None)
TOL: dict[str, Any] = {"rtol": 1e-5, "atol": 1e-5}  # f32 against torch / numpy on the same inputs


# --- building and reading bundles ------------------------------------------------------------


def build(
    model: Any, *inputs: Any, out_dir: Path, backends: tuple[str, ...] = ("dnnl",), **options: Any
) -> Compiled:
    """`byoc_mlir.compile` without the cache; ``options`` override `CompileOptions` fields."""
    example = inputs or None  # only torch models take example inputs
    return compile(
        model,
        list(backends),
        out_dir=out_dir,
        options=replace(OPTIONS, **options),
        example_inputs=example,
    )


def reference(model: nn.Module, *inputs: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model(*inputs).numpy()


def run(compiled: Compiled, *inputs: torch.Tensor) -> np.ndarray:
    (out,) = compiled(*(x.numpy() for x in inputs))
    return out


def regions(compiled: Compiled) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in compiled.report["regions"]}


def statuses(compiled: Compiled) -> dict[str, str]:
    return {name: r["status"] for name, r in regions(compiled).items()}


def payload_files(compiled: Compiled, region: str) -> dict[str, bytes]:
    """The files in one region's payload zip (``payloads/dnnl_main_0.bin``)."""
    artifact = regions(compiled)[region]["artifact"]
    with zipfile.ZipFile(compiled.bundle / artifact) as z:
        return {name: z.read(name) for name in z.namelist()}


@dataclass
class Call:
    """One helper call of a generated ``byoc_region_init``, e.g. ``bd_conv(R, 2, 0, ...)``.

    ``head`` holds the plain arguments before the first ``DIMS``/``POSTS``/``NULL``
    (for bd_conv: dst, src, weights, bias, groups), ``dims`` every ``DIMS(...)`` in
    order, ``posts`` the post-ops as (kind, alpha, beta, summed value), ``last`` the
    final argument but a data type (a format tag for bd_input/bd_output), ``dtype`` that
    data type (``dnnl_f32``, ``dnnl_u8``, ...; empty if the call takes none).
    """

    fn: str
    head: list[str]
    dims: list[tuple[int, ...]]
    posts: list[tuple[str, str, str, int]]
    last: str
    dtype: str = ""

    @property
    def post_kinds(self) -> list[str]:
        return [p[0] for p in self.posts]


_CALL = re.compile(r"^\s*(bd_\w+)\(R, (.*)\);")
_DIMS = re.compile(r"DIMS\(([^)]*)\)")
_DTYPES = ("dnnl_f32", "dnnl_u8", "dnnl_s8")
_POST = re.compile(r"\{(BD_\w+), ([^,]+), ([^,]+), (-?\d+)\}")


def region_calls(compiled: Compiled, region: str = "dnnl.main_0") -> list[Call]:
    """The helper calls of a region's ``region.c``, in order (bd_new and bd_free excluded)."""
    source = payload_files(compiled, region)["region.c"].decode()
    calls = []
    for line in source.splitlines():
        m = _CALL.match(line)
        if m is None or m.group(1) == "bd_free":
            continue
        args = m.group(2)
        head = re.split(r"DIMS\(|POSTS\(|NULL", args)[0]
        tail = [a.strip() for a in args.rsplit(",", 2)[-2:]]
        dtype = tail[-1] if tail[-1] in _DTYPES else ""
        calls.append(
            Call(
                m.group(1),
                [a.strip() for a in head.split(",") if a.strip()],
                [tuple(int(d) for d in g.split(",")) for g in _DIMS.findall(args)],
                [(k, a, b, int(v)) for k, a, b, v in _POST.findall(args)],
                tail[0] if dtype else tail[-1],
                dtype,
            )
        )
    return calls


def only(calls: list[Call], fn: str) -> list[Call]:
    return [c for c in calls if c.fn == fn]


def activation_tag(compiled: Compiled, region: str = "dnnl.main_0") -> str:
    """The activation format a region asks oneDNN for (``bd_new``'s 6th argument)."""
    source = payload_files(compiled, region)["region.c"].decode()
    m = re.search(r"bd_new\(.*, (\w+), \w+\);", source)
    assert m is not None, source
    return m.group(1)


def fns(calls: list[Call]) -> set[str]:
    return {c.fn for c in calls}


def batchnorm(channels: int, seed: int) -> nn.BatchNorm2d:
    """An eval-mode BatchNorm with randomised running statistics and affine parameters."""
    g = torch.Generator().manual_seed(seed)
    bn = nn.BatchNorm2d(channels)
    assert bn.running_mean is not None and bn.running_var is not None
    with torch.no_grad():
        bn.running_mean.uniform_(-0.5, 0.5, generator=g)
        bn.running_var.uniform_(0.5, 2.0, generator=g)
        bn.weight.uniform_(0.5, 1.5, generator=g)
        bn.bias.uniform_(-0.5, 0.5, generator=g)
    return bn.eval()


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def seeded(module: nn.Module, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return module


# --- convolutions and pooling ----------------------------------------------------------------


def test_conv_pool_chain_is_one_region_with_fused_epilogues(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.Conv2d(8, 8, 3, dilation=2),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
    ).eval()
    x = randn(1, 3, 32, 32)
    c = build(model, x, out_dir=tmp_path / "b")
    assert statuses(c) == {"dnnl.main_0": "offloaded"}
    assert c.report["host_ops"] == []
    calls = region_calls(c)
    assert fns(calls) == {"bd_input", "bd_const", "bd_conv", "bd_pool", "bd_output"}
    strided, dilated = only(calls, "bd_conv")
    for conv in (strided, dilated):
        assert conv.post_kinds == ["BD_RELU"]
        assert conv.head[3] != "-1"  # the bias is the primitive's, not a bd_binary
    # dims: dst, strides, dilations, pad low, pad high
    assert strided.dims[1:] == [(2, 2), (1, 1), (1, 1), (1, 1)]
    assert dilated.dims[1:] == [(1, 1), (2, 2), (0, 0), (0, 0)]
    maxpool, avgpool = only(calls, "bd_pool")
    assert maxpool.head[2] == "dnnl_pooling_max"
    # dims: dst, kernel, strides, dilations, pad low, pad high
    assert maxpool.dims[1:] == [(3, 3), (2, 2), (1, 1), (1, 1), (1, 1)]
    assert avgpool.head[2] == "dnnl_pooling_avg_include_padding"
    assert avgpool.dims[0] == (1, 8, 1, 1) and avgpool.posts == []  # sum / 16 cancelled
    np.testing.assert_allclose(run(c, x), reference(model, x), **TOL)


class ResidualBlock(nn.Module):
    """ResNet's basic block: conv-BN-ReLU-conv-BN, identity add, ReLU."""

    def __init__(self, channels: int = 8):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = batchnorm(channels, seed=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = batchnorm(channels, seed=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + x)


def test_residual_block_fuses_batchnorm_sum_and_relu(tmp_path: Path) -> None:
    model = seeded(ResidualBlock()).eval()
    x = randn(1, 8, 12, 12)
    c = build(model, x, out_dir=tmp_path / "b")
    assert statuses(c) == {"dnnl.main_0": "offloaded"}
    calls = region_calls(c)
    assert fns(calls) == {"bd_input", "bd_const", "bd_conv", "bd_output"}
    (x_in,) = only(calls, "bd_input")
    first, second = only(calls, "bd_conv")
    assert first.post_kinds == ["BD_RELU"]
    assert second.post_kinds == ["BD_SUM", "BD_RELU"]
    assert second.posts[0][3] == int(x_in.head[1])  # the sum reads the block's input
    assert first.head[3] != "-1" and second.head[3] != "-1"  # BatchNorm: folded biases
    assert first.dims[3:] == second.dims[3:] == [(1, 1), (1, 1)]  # padding=1 absorbed
    np.testing.assert_allclose(run(c, x), reference(model, x), **TOL)


def test_mobilenet_block_depthwise_and_relu6(tmp_path: Path) -> None:
    """MobileNetV2's inverted residual (stride 2): expand, depthwise, project, each with
    BatchNorm (convs without bias), ReLU6 after the first two."""
    model = seeded(
        nn.Sequential(
            nn.Conv2d(4, 16, 1, bias=False),
            batchnorm(16, seed=1),
            nn.ReLU6(),
            nn.Conv2d(16, 16, 3, stride=2, padding=1, groups=16, bias=False),
            batchnorm(16, seed=2),
            nn.ReLU6(),
            nn.Conv2d(16, 8, 1, bias=False),
            batchnorm(8, seed=3),
        )
    ).eval()
    x = randn(1, 4, 12, 12) * 3  # wide enough that ReLU6 clips on both sides
    c = build(model, x, out_dir=tmp_path / "b")
    assert statuses(c) == {"dnnl.main_0": "offloaded"}
    assert c.report["host_ops"] == []
    calls = region_calls(c)
    assert fns(calls) == {"bd_input", "bd_const", "bd_conv", "bd_output"}
    expand, depthwise, project = only(calls, "bd_conv")
    weights = {k.head[0]: k.dims[0] for k in only(calls, "bd_const")}
    assert weights[depthwise.head[2]] == (16, 1, 1, 3, 3)  # grouped: G, O/G, I/G, KH, KW
    assert depthwise.dims[1:] == [(2, 2), (1, 1), (1, 1), (1, 1)]
    for conv in (expand, depthwise):
        *_, (kind, _, hi, _) = conv.posts
        assert kind == "BD_CLIP" and float(hi.rstrip("f")) == 6.0
        assert set(conv.post_kinds) <= {"BD_RELU", "BD_CLIP"}
    assert project.posts == []
    np.testing.assert_allclose(run(c, x), reference(model, x), **TOL)


def test_depthwise_conv_with_bias_is_offloaded(tmp_path: Path) -> None:
    """torch's depthwise bias arrives as a ``linalg.broadcast`` into the conv's init;
    ``byoc-split-bias-inits`` turns it into a bias add, which folds into the conv."""
    model = seeded(nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU())).eval()
    x = randn(1, 8, 10, 10)
    c = build(model, x, out_dir=tmp_path / "b")
    assert c.report["host_ops"] == []
    np.testing.assert_allclose(run(c, x), reference(model, x), **TOL)


def _hex_dense(array: np.ndarray) -> str:
    """An exact ``dense<"0x...">`` literal of an f32 array (little-endian bytes)."""
    return f'dense<"0x{np.ascontiguousarray(array, "<f4").tobytes().hex().upper()}">'


def _conv_nhwc(x: np.ndarray, w: np.ndarray, stride: int) -> np.ndarray:
    """Direct NHWC x HWCF convolution in float64, one kernel tap at a time."""
    kh, kw, _, f = w.shape
    n, h, wd, _ = x.shape
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    out = np.zeros((n, oh, ow, f))
    for i in range(kh):
        for j in range(kw):
            patch = x[
                :, i : i + stride * (oh - 1) + 1 : stride, j : j + stride * (ow - 1) + 1 : stride
            ]
            out += np.einsum("nhwc,cf->nhwf", patch, w[i, j])
    return out


def test_nhwc_conv_from_linalg_text(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    w = rng.uniform(-1, 1, (3, 3, 3, 8)).astype(np.float32)
    b = rng.uniform(-1, 1, (8,)).astype(np.float32)
    text = textwrap.dedent(f"""\
        #id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
        #ch = affine_map<(d0, d1, d2, d3) -> (d3)>
        func.func @main(%x: tensor<1x11x11x3xf32>) -> tensor<1x5x5x8xf32> {{
          %w = arith.constant {_hex_dense(w)} : tensor<3x3x3x8xf32>
          %b = arith.constant {_hex_dense(b)} : tensor<8xf32>
          %zero = arith.constant 0.0 : f32
          %e = tensor.empty() : tensor<1x5x5x8xf32>
          %f = linalg.fill ins(%zero : f32) outs(%e : tensor<1x5x5x8xf32>) -> tensor<1x5x5x8xf32>
          %c = linalg.conv_2d_nhwc_hwcf {{dilations = dense<1> : tensor<2xi64>,
                                         strides = dense<2> : tensor<2xi64>}}
              ins(%x, %w : tensor<1x11x11x3xf32>, tensor<3x3x3x8xf32>)
              outs(%f : tensor<1x5x5x8xf32>) -> tensor<1x5x5x8xf32>
          %a = linalg.generic {{indexing_maps = [#id, #ch, #id],
                               iterator_types = ["parallel", "parallel", "parallel", "parallel"]}}
              ins(%c, %b : tensor<1x5x5x8xf32>, tensor<8xf32>) outs(%e : tensor<1x5x5x8xf32>) {{
          ^bb0(%p: f32, %q: f32, %o: f32):
            %s = arith.addf %p, %q : f32
            linalg.yield %s : f32
          }} -> tensor<1x5x5x8xf32>
          %r = linalg.generic {{indexing_maps = [#id, #id],
                               iterator_types = ["parallel", "parallel", "parallel", "parallel"]}}
              ins(%a : tensor<1x5x5x8xf32>) outs(%e : tensor<1x5x5x8xf32>) {{
          ^bb0(%p: f32, %o: f32):
            %s = arith.maximumf %p, %zero : f32
            linalg.yield %s : f32
          }} -> tensor<1x5x5x8xf32>
          return %r : tensor<1x5x5x8xf32>
        }}
        """)  # fmt: skip
    path = tmp_path / "nhwc.mlir"
    path.write_text(text)
    c = build(path, out_dir=tmp_path / "b")
    assert statuses(c) == {"dnnl.main_0": "offloaded"}
    calls = region_calls(c)
    (x_in,) = only(calls, "bd_input")
    assert x_in.dims == [(1, 3, 11, 11)] and x_in.last == "dnnl_acdb"  # NHWC, in place
    (conv,) = only(calls, "bd_conv")
    assert conv.post_kinds == ["BD_RELU"] and conv.head[3] != "-1"
    (out,) = only(calls, "bd_output")
    assert out.last == "dnnl_acdb"
    x = np.random.default_rng(1).uniform(-1, 1, (1, 11, 11, 3)).astype(np.float32)
    (got,) = c(x)
    np.testing.assert_allclose(got, np.maximum(_conv_nhwc(x, w, 2) + b, 0), **TOL)


def test_residual_add_across_layouts(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    w_nchw = rng.uniform(-1, 1, (8, 8, 1, 1)).astype(np.float32)
    w_nhwc = rng.uniform(-1, 1, (1, 1, 8, 8)).astype(np.float32)
    t = "tensor<1x8x8x8xf32>"  # a cube: NCHW and NHWC logical dims coincide
    attrs = "{dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}"
    text = textwrap.dedent(f"""\
        #id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
        func.func @main(%x: {t}, %y: {t}) -> ({t}, {t}) {{
          %w1 = arith.constant {_hex_dense(w_nchw)} : tensor<8x8x1x1xf32>
          %w2 = arith.constant {_hex_dense(w_nhwc)} : tensor<1x1x8x8xf32>
          %zero = arith.constant 0.0 : f32
          %e = tensor.empty() : {t}
          %f = linalg.fill ins(%zero : f32) outs(%e : {t}) -> {t}
          %a = linalg.conv_2d_nchw_fchw {attrs}
              ins(%y, %w1 : {t}, tensor<8x8x1x1xf32>) outs(%f : {t}) -> {t}
          %b = linalg.conv_2d_nhwc_hwcf {attrs}
              ins(%x, %w2 : {t}, tensor<1x1x8x8xf32>) outs(%f : {t}) -> {t}
          %s = linalg.generic {{indexing_maps = [#id, #id, #id],
                               iterator_types = ["parallel", "parallel", "parallel", "parallel"]}}
              ins(%b, %y : {t}, {t}) outs(%e : {t}) {{
          ^bb0(%p: f32, %q: f32, %o: f32):
            %r = arith.addf %p, %q : f32
            linalg.yield %r : f32
          }} -> {t}
          return %a, %s : {t}, {t}
        }}
        """)
    c = build(text, out_dir=tmp_path / "b")
    x, y = np.random.default_rng(1).uniform(-1, 1, (2, 1, 8, 8, 8)).astype(np.float32)
    got_a, got_s = c(x, y)
    np.testing.assert_allclose(got_a, np.einsum("nchw,fc->nfhw", y, w_nchw[:, :, 0, 0]), **TOL)
    np.testing.assert_allclose(got_s, np.einsum("nhwc,cf->nhwf", x, w_nhwc[0, 0]) + y, **TOL)


# --- matmuls ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("approximate", "kind"), [("none", "BD_GELU_ERF"), ("tanh", "BD_GELU_TANH")]
)
def test_mlp_linear_relu_and_gelu(tmp_path: Path, approximate: str, kind: str) -> None:
    model = seeded(
        nn.Sequential(
            nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8), nn.GELU(approximate=approximate)
        )
    ).eval()
    x = randn(4, 16) * 2
    c = build(model, x, out_dir=tmp_path / "b")
    assert statuses(c) == {"dnnl.main_0": "offloaded"}
    calls = region_calls(c)
    assert fns(calls) == {"bd_input", "bd_const", "bd_matmul", "bd_output"}
    first, second = only(calls, "bd_matmul")
    assert first.post_kinds == ["BD_RELU"] and second.post_kinds == [kind]
    # head: dst, a, b, b is a constant (prepacked), bias
    assert first.head[3] == "1" and first.head[4] != "-1"
    assert second.head[1] == first.head[0]  # the activation never leaves the region
    np.testing.assert_allclose(run(c, x), reference(model, x), **TOL)


class Bmm(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.bmm(a, b)


def test_batch_matmul_of_two_activations(tmp_path: Path) -> None:
    a, b = randn(3, 5, 7, seed=1), randn(3, 7, 4, seed=2)
    c = build(Bmm(), a, b, out_dir=tmp_path / "b")
    assert statuses(c) == {"dnnl.main_0": "offloaded"}
    calls = region_calls(c)
    a_in, b_in = only(calls, "bd_input")
    (mm,) = only(calls, "bd_matmul")
    assert mm.head == [mm.head[0], a_in.head[1], b_in.head[1], "0", "-1"]  # b read per call
    assert mm.dims == [(3, 5, 4)]
    (got,) = c(a.numpy(), b.numpy())
    np.testing.assert_allclose(got, reference(Bmm(), a, b), **TOL)


# --- the layout option ----------------------------------------------------------------------


def test_layout_nhwc_gives_the_same_numerics(tmp_path: Path) -> None:
    model = seeded(ResidualBlock()).eval()
    x = randn(1, 8, 12, 12)
    default = build(model, x, out_dir=tmp_path / "any")
    nhwc = build(model, x, out_dir=tmp_path / "nhwc", backend_options={"dnnl": {"layout": "nhwc"}})
    assert statuses(nhwc) == {"dnnl.main_0": "offloaded"}
    assert activation_tag(default) == "dnnl_format_tag_any"
    assert activation_tag(nhwc) == "dnnl_nhwc"
    got = run(nhwc, x)
    np.testing.assert_allclose(got, run(default, x), **TOL)
    np.testing.assert_allclose(got, reference(model, x), **TOL)


def test_unknown_layout_falls_back_and_still_runs(tmp_path: Path) -> None:
    model = seeded(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())).eval()
    x = randn(1, 3, 10, 10)
    c = build(model, x, out_dir=tmp_path / "b", backend_options={"dnnl": {"layout": "bogus"}})
    (region,) = c.report["regions"]
    reason = "fallback: codegen failed: backend option layout='bogus' (valid: any, nhwc, blocked)"
    assert region["status"] == reason
    assert region["route"] is None and region["artifact"] is None
    assert {h["reason"] for h in c.report["host_ops"]} == {reason}
    assert not list((c.bundle / "payloads").glob("*.bin"))
    np.testing.assert_allclose(run(c, x), reference(model, x), **TOL)


def test_unknown_layout_without_fallback_is_an_error(tmp_path: Path) -> None:
    model = seeded(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())).eval()
    with pytest.raises(ByocError, match=r"dnnl.main_0 \(dnnl\): backend option layout='bogus'"):
        build(
            model, randn(1, 3, 10, 10), out_dir=tmp_path / "b", fallback=False,
            backend_options={"dnnl": {"layout": "bogus"}},
        )  # fmt: skip


# --- several regions: fallback, host reasons, profile ------------------------------------------


class ThreeStacks(nn.Module):
    """conv-ReLU, sin, conv-ReLU, sin, conv-ReLU: three dnnl regions between host sins."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(4, 4, 3, padding=1) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for k, conv in enumerate(self.convs):
            x = torch.relu(conv(torch.sin(x) if k else x))
        return x


@pytest.fixture(scope="module")
def three_stacks(tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Module, Compiled]:
    model = seeded(ThreeStacks()).eval()
    return model, build(model, randn(1, 4, 8, 8), out_dir=tmp_path_factory.mktemp("three"))


def test_three_stacks_match_the_host_only_build(
    three_stacks: tuple[nn.Module, Compiled], tmp_path: Path
) -> None:
    model, c = three_stacks
    x = randn(1, 4, 8, 8, seed=3)
    host = build(model, x, out_dir=tmp_path / "host", backends=("none",))
    assert host.report["regions"] == []
    np.testing.assert_allclose(run(c, x), run(host, x), **TOL)


def test_refused_ops_stay_on_the_host_with_reasons(
    three_stacks: tuple[nn.Module, Compiled],
) -> None:
    model, c = three_stacks
    assert statuses(c) == {f"dnnl.main_{k}": "offloaded" for k in range(3)}
    assert [(h["op"], h["reason"]) for h in c.report["host_ops"]] == [
        ("linalg.generic", "rejected: dnnl: linalg.generic computing math.sin is not supported")
    ] * 2
    x = randn(1, 4, 8, 8, seed=3)
    np.testing.assert_allclose(run(c, x), reference(model, x), **TOL)


def test_f64_is_refused_with_its_reason() -> None:
    # Checked on the annotated module: byoc-compile never shows f64 to a backend, since
    # IREE's input phase demotes f64 to f32 first (--iree-input-demote-f64-to-f32).
    t = "tensor<4x4xf64>"
    fb = FuncBuilder(t, t)
    module = run_passes(fb.build(fb.relu(fb.matmul(*fb.args))), [AnnotatePass(("dnnl",))])
    reason = "element type f64 is not supported (valid: f32)"
    rejects = {
        compute_signature(op): byoc.get_reject(op)
        for op in body_ops(functions(module)["main"])
        if op.name not in FREE_OPS | {"func.return"}
    }
    assert rejects == {
        "linalg.fill": {"dnnl": reason},
        "linalg.matmul": {"dnnl": reason},
        "linalg.generic[arith.maximumf]": {"dnnl": reason},
    }


def test_profile_counts_calls_per_region(three_stacks: tuple[nn.Module, Compiled]) -> None:
    _, c = three_stacks
    dnnl_runtime.reset_profile()
    x = randn(1, 4, 8, 8)
    for _ in range(3):
        run(c, x)
    profile = dnnl_runtime.profile()
    assert {name: calls for name, (calls, _) in profile.items()} == {
        f"dnnl.main_{k}": 3 for k in range(3)
    }
    assert all(seconds > 0 for _, seconds in profile.values())
    dnnl_runtime.reset_profile()
    assert dnnl_runtime.profile() == {}


def test_injected_build_failure_falls_back_one_region(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = dnnl.compile_library

    def failing(source: str, out_dir: Path) -> Path:
        if source.startswith("/* @dnnl.main_1:"):
            raise DnnlError("injected: the vendor compiler crashed")
        return real(source, out_dir)

    monkeypatch.setattr(dnnl, "compile_library", failing)
    model = seeded(ThreeStacks()).eval()
    x = randn(1, 4, 8, 8)
    c = build(model, x, out_dir=tmp_path / "b")
    reason = "fallback: codegen failed: injected: the vendor compiler crashed"
    assert statuses(c) == {
        "dnnl.main_0": "offloaded",
        "dnnl.main_1": reason,
        "dnnl.main_2": "offloaded",
    }
    assert sorted(p.name for p in (c.bundle / "payloads").iterdir()) == [
        "dnnl_main_0.bin",
        "dnnl_main_2.bin",
    ]
    assert sum(h["reason"] == reason for h in c.report["host_ops"]) >= 2  # conv, bias, relu
    np.testing.assert_allclose(run(c, x), reference(model, x), **TOL)


def test_weights_given_at_run_time_are_reordered_per_call(tmp_path: Path) -> None:
    """examples/cnn.mlir takes its conv weights as arguments: dnnl cannot prepack them
    at load, so it reorders them at each call (bd_weights) and still runs every op."""
    example = Path(__file__).parents[2] / "examples" / "cnn.mlir"
    options = CompileOptions(cache_dir=None, fallback=False)
    c = compile(example, ["dnnl"], out_dir=tmp_path / "dnnl", options=options)
    host = compile(example, ["none"], out_dir=tmp_path / "host", options=options)
    assert c.report["host_ops"] == []
    convs = only(region_calls(c), "bd_conv")
    inputs = {call.head[1] for call in only(region_calls(c), "bd_input")}  # value ids
    assert len(convs) == 2 and all(conv.head[2] in inputs for conv in convs)
    args = c.random_inputs(seed=3)
    np.testing.assert_allclose(c(*args)[0], host(*args)[0], rtol=1e-4, atol=1e-4)


class Fire(nn.Module):
    """SqueezeNet's fire module: squeeze, then two expand convs concatenated."""

    def __init__(self) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(8, 4, 1)
        self.e1 = nn.Conv2d(4, 8, 1)
        self.e3 = nn.Conv2d(4, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.relu(self.squeeze(x))
        return torch.cat([torch.relu(self.e1(s)), torch.relu(self.e3(s))], dim=1)


def test_concat_keeps_a_fire_module_in_one_region(tmp_path: Path) -> None:
    model = seeded(Fire()).eval()
    x = randn(1, 8, 10, 10)
    c = build(model, x, out_dir=tmp_path / "b")
    assert list(regions(c)) == ["dnnl.main_0"] and c.report["host_ops"] == []
    (concat,) = only(region_calls(c), "bd_concat")
    assert concat.head[1:3] == ["1", "2"]  # channel axis, two inputs
    np.testing.assert_allclose(run(c, x), reference(model, x), **TOL)


class NormAttention(nn.Module):
    """LayerNorm, then softmax attention scores over 2 heads (rank-4 rows)."""

    def __init__(self) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(32)
        self.q = nn.Linear(32, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.q(self.ln(x)).reshape(1, 16, 2, 16).transpose(1, 2)
        return torch.softmax(h @ h.transpose(-1, -2) / 4.0, dim=-1)


def test_layernorm_and_softmax_run_in_the_region(tmp_path: Path) -> None:
    """Decomposed LayerNorm and softmax (reductions, exp, rsqrt, broadcasts) are
    recognised as oneDNN's layer normalisation and softmax, in one dnnl region: nothing
    but the frontend's integer bookkeeping is left on the host."""
    model = seeded(NormAttention()).eval()
    x = randn(1, 16, 32)
    c = build(model, x, out_dir=tmp_path / "b")
    assert list(regions(c)) == ["dnnl.main_0"]
    assert {h["op"] for h in c.report["host_ops"]} <= {"linalg.fill"}  # i64 index init
    calls = region_calls(c)
    (norm,) = only(calls, "bd_layernorm")  # the decomposed LayerNorm, as one primitive
    assert norm.head[3] != "-1" and norm.head[4] != "-1"  # with its weight and bias
    (softmax,) = only(calls, "bd_softmax")  # the decomposed softmax, as one primitive
    assert softmax.head[2] == "3"  # over the last dim of (1, heads, rows, cols)
    assert "bd_reduce" not in fns(calls)
    np.testing.assert_allclose(run(c, x), reference(model, x), **TOL)


# --- the payload ------------------------------------------------------------------------------


def test_payload_is_deterministic(tmp_path: Path) -> None:
    model = seeded(ResidualBlock()).eval()
    x = randn(1, 8, 12, 12)
    first = build(model, x, out_dir=tmp_path / "first")
    second = build(model, x, out_dir=tmp_path / "second")
    names = sorted(p.name for p in (first.bundle / "payloads").iterdir())
    assert names == sorted(p.name for p in (second.bundle / "payloads").iterdir()) != []
    for name in names:
        one = (first.bundle / "payloads" / name).read_bytes()
        assert one == (second.bundle / "payloads" / name).read_bytes(), name
    files = payload_files(first, "dnnl.main_0")
    assert sorted(files) == [
        "dnnl_support.h",
        "manifest.json",
        "region.c",
        "region.so",
        "weights.bin",
    ]
    manifest = json.loads(files["manifest.json"])
    assert (manifest["format"], manifest["version"], manifest["name"]) == (
        "byoc_mlir.dnnl", dnnl_runtime.VERSION, "dnnl.main_0",
    )  # fmt: skip


def _rezip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buffer.getvalue()


def _damage(files: dict[str, bytes], how: str) -> bytes:
    if how == "junk":
        return b"junk, not a zip"
    if how == "library":
        return _rezip({**files, "region.so": b"\x7fELF junk"})
    manifest = json.loads(files["manifest.json"])
    manifest["version"] = 99
    return _rezip({**files, "manifest.json": json.dumps(manifest).encode()})


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    """A one-region bundle (closed) and its payload's files, to damage copies of."""
    model = seeded(nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU())).eval()
    c = build(model, randn(1, 3, 8, 8), out_dir=tmp_path_factory.mktemp("small") / "b")
    files = payload_files(c, "dnnl.main_0")
    c.close()
    return c.bundle, files


def _damaged_copy(bundle: Path, payload: bytes, tmp_path: Path) -> Path:
    copy = tmp_path / "damaged"
    shutil.copytree(bundle, copy)
    (path,) = (copy / "payloads").glob("*.bin")
    path.write_bytes(payload)
    return copy


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("junk", r"not a dnnl payload: File is not a zip file"),
        ("library", r"dnnl.main_0: region.so does not match its manifest"),
        (
            "version",
            r"payload format byoc_mlir.dnnl v99 \(expected byoc_mlir.dnnl v"
            + str(dnnl_runtime.VERSION)
            + r"\); recompile",
        ),
    ],
)
def test_damaged_payload_is_a_clear_error_at_load(
    small_bundle: tuple[Path, dict[str, bytes]], tmp_path: Path, how: str, message: str
) -> None:
    bundle, files = small_bundle
    copy = _damaged_copy(bundle, _damage(files, how), tmp_path)
    with pytest.raises(ByocError, match=message) as err:
        Compiled(copy)
    assert "payloads/" in str(err.value)  # names the damaged file


def test_truncated_weights_are_a_clear_error_at_load(
    small_bundle: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    bundle, files = small_bundle
    truncated = _rezip({**files, "weights.bin": files["weights.bin"][:64]})
    copy = _damaged_copy(bundle, truncated, tmp_path)
    # In a child process: reading past the weights would crash the interpreter.
    script = (
        "import sys, numpy as np\n"
        "from byoc_mlir.runtime import Compiled\n"
        "from byoc_mlir.errors import ByocError\n"
        "try:\n"
        "    c = Compiled(sys.argv[1])\n"
        "except ByocError as err:\n"
        "    print('ByocError:', err)\n"
        "    sys.exit(3)\n"
        "(y,) = c(np.ones((1, 3, 8, 8), np.float32))\n"
        "print('loaded; finite output:', bool(np.isfinite(y).all()))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(copy)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 3, (proc.returncode, proc.stdout, proc.stderr[-2000:])
    assert "weights" in proc.stdout


# --- zoo ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cnn", "transformer"])
def test_zoo_model_matches_its_reference(name: str, tmp_path: Path) -> None:
    entry = zoo.get(name)
    inst = entry.build(tmp_path / "model")
    c = inst.compile(["dnnl"], out_dir=tmp_path / "bundle", options=OPTIONS)
    status = set(statuses(c).values())
    assert status == {"offloaded"}, statuses(c)
    if name == "cnn":  # conv-BN-ReLU-pool x2, global pool, Linear: all of it
        assert len(c.report["regions"]) == 1 and c.report["host_ops"] == []
    else:  # every matmul of attention and the feed-forward block runs in oneDNN
        host = {h["op"] for h in c.report["host_ops"]}
        assert not host & {"linalg.matmul", "linalg.batch_matmul"}, host
    entry.check(c(*inst.inputs), inst.expected)
    c.close()


def test_a_region_with_resource_weights_goes_back_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # torch weights are dense_resource blobs: a dnnl region (weights moved in) that the
    # host module cannot take goes back with its weights' data, not renamed empty blobs.
    from byoc_mlir import host_compile

    real = host_compile.iree

    def iree(source: str | bytes, args: list[str], what: str) -> bytes:
        text = source if isinstance(source, str) else source.decode()
        if "--compile-from=input" in args and "call @dnnl.main_0" in text:
            raise ByocError(f"IREE failed to {what}: error: injected fault")
        return real(source, args, what)

    monkeypatch.setattr(host_compile, "iree", iree)
    model = seeded(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 1))).eval()
    x = randn(1, 3, 10, 10)
    c = build(model, x, out_dir=tmp_path / "b")
    (region,) = c.report["regions"]
    assert region["status"].startswith("fallback: the host module does not compile")
    np.testing.assert_allclose(run(c, x), reference(model, x), **TOL)


def test_bf16_precision_computes_in_bf16_within_the_check_bound(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from byoc_mlir.tools import byoc_run

    model = seeded(
        nn.Sequential(
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 8, 1)
        )
    ).eval()
    x = randn(1, 16, 12, 12)
    want = reference(model, x)
    scale = float(np.abs(want).max())
    f32 = build(model, x, out_dir=tmp_path / "f32")
    bf16 = build(
        model, x, out_dir=tmp_path / "bf16", backend_options={"dnnl": {"precision": "bf16"}}
    )
    assert statuses(bf16) == {"dnnl.main_0": "offloaded"}
    assert "dnnl_fpmath_mode_bf16" in payload_files(bf16, "dnnl.main_0")["region.c"].decode()
    err_f32 = float(np.abs(run(f32, x) - want).max())
    err_bf16 = float(np.abs(run(bf16, x) - want).max())
    assert err_f32 < 1e-5 * scale
    assert 1e-4 * scale < err_bf16 < 0.03 * scale  # really bf16, and within the bound
    manifest = json.loads((tmp_path / "bf16" / "bundle.json").read_text())
    assert manifest["precision"] == {"dnnl": "bf16"} and "precision" not in json.loads(
        (tmp_path / "f32" / "bundle.json").read_text()
    )
    # byoc-run --check bounds a bf16 bundle's error by the output's scale (and says so);
    # an f32 tolerance given explicitly still fails it, per region too.
    bundle = str(tmp_path / "bf16")
    assert byoc_run.run([bundle, "--check", "--per-region"]) == 0
    assert "x max|reference| (dnnl: bf16)" in capsys.readouterr().out
    assert (
        byoc_run.run([bundle, "--check", "--per-region", "--atol", "1e-6", "--rtol", "1e-6"]) == 1
    )
    assert "first region that differs: dnnl.main_0" in capsys.readouterr().out


def test_dnnl_out_of_process_reads_resource_weights(tmp_path: Path) -> None:
    # torch weights are dense_resource blobs: the worker must see their values (the
    # region's text carries them), so the region is offloaded, not sent back.
    model = seeded(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 1))).eval()
    x = randn(1, 3, 10, 10)
    c = build(model, x, out_dir=tmp_path / "b", hook_isolation="process")
    (region,) = c.report["regions"]
    assert region["status"] == "offloaded" and region["codegen"] == {"mode": "process"}
    np.testing.assert_allclose(run(c, x), reference(model, x), **TOL)


def test_broadcast_first_operand_of_a_subtraction_stays_on_host(tmp_path: Path) -> None:
    """``1 - mask`` (BERT's attention mask): oneDNN broadcasts a binary's second operand
    only, so the check refuses the op (it used to fail the whole region at codegen)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Sub", ["row", "r"], ["d"]),
        helper.make_node("Mul", ["d", "r"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "sub",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4])],
        [numpy_helper.from_array(np.arange(4, dtype=np.float32).reshape(1, 4), "row")],
    )
    path = tmp_path / "sub.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    compiled = compile(path, backends=["dnnl"])
    reasons = [o["reason"] for o in compiled.report["ops"] if o["kind"] == "generic:broadcast_sub"]
    assert reasons == ["rejected: dnnl: the first operand broadcasts (oneDNN's binary "
                       "broadcasts the second only)"]  # fmt: skip
    assert all(r["status"] == "offloaded" for r in compiled.report["regions"])
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    r = np.maximum(x, 0)
    np.testing.assert_allclose(compiled(x)[0], (np.arange(4) - r) * r, rtol=1e-6)
    compiled.close()


def test_binary_post_ops_only_on_convolutions_and_matmuls(tmp_path: Path) -> None:
    """A per-column scale and shift after a row-broadcast multiply (LayerNorm's tail):
    oneDNN runs a binary with binary post-ops only in its reference kernel (20 ms on
    BERT-mini), so they stay binaries; after a matmul they are post-ops."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    consts = {
        "w": rng.standard_normal((16, 16)), "gamma": rng.standard_normal(16),
        "beta": rng.standard_normal(16),
    }  # fmt: skip
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("Mul", ["m", "gamma"], ["g"]),  # per column, after a matmul
        helper.make_node("Mul", ["g", "r"], ["n"]),  # per row
        helper.make_node("Mul", ["n", "gamma"], ["s"]),  # per column, after a binary
        helper.make_node("Add", ["s", "beta"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "ln", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 16]),
                      helper.make_tensor_value_info("r", TensorProto.FLOAT, [8, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8, 16])],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in consts.items()],
    )  # fmt: skip
    path = tmp_path / "ln.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    compiled = compile(path, backends=["dnnl"])
    calls = region_calls(compiled)
    (mm,) = only(calls, "bd_matmul")
    assert mm.post_kinds == ["BD_BIN_MUL"]
    assert all(not c.post_kinds for c in only(calls, "bd_binary"))
    x = rng.standard_normal((8, 16)).astype(np.float32)
    r = rng.standard_normal((8, 1)).astype(np.float32)
    expected = (x @ consts["w"] * consts["gamma"] * r) * consts["gamma"] + consts["beta"]
    np.testing.assert_allclose(compiled(x, r)[0], expected, rtol=1e-4, atol=1e-4)
    compiled.close()
