"""End to end with the reference backends: compile, run, compare with the host-only
IREE build and with numpy, on an MLP, a small CNN (pooling on the host), an alternating
graph, two backends at once, and an injected codegen failure."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from byoc_mlir import Compiled, CompileOptions, compile
from byoc_mlir.codegen import registry

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ["ccompiler", "jsonrt"]
OPTIONS = CompileOptions(cache_dir=None)
ID = "affine_map<(d0, d1) -> (d0, d1)>"
ROW = "affine_map<(d0, d1) -> (d1)>"


@pytest.fixture(scope="module")
def host_builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Compiled]:
    return {}


def host(name: str, source: str | Path, cache: dict[str, Compiled], tmp: Path) -> Compiled:
    if name not in cache:
        cache[name] = compile(source, ["none"], out_dir=tmp / f"host_{name}", options=OPTIONS)
    return cache[name]


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


def conv_nchw(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    out = np.zeros((n, f, h - kh + 1, wd - kw + 1), np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i : i + out.shape[2], j : j + out.shape[3]]
            out += np.einsum("nchw,fc->nfhw", patch, w[:, :, i, j])
    return out


def mlp_ref(x, w0, b0, w1, b1):  # type: ignore[no-untyped-def]
    return np.tanh(relu(relu(x @ w0 + b0) @ w1 + b1))


def cnn_ref(x, w0, b0, w1, b1):  # type: ignore[no-untyped-def]
    a = relu(conv_nchw(x, w0) + b0[None, :, None, None])
    pooled = a.reshape(1, 16, 16, 2, 16, 2).max(axis=(3, 5))
    return relu(conv_nchw(pooled, w1) + b1[None, :, None, None])


def alternating(n: int = 4) -> str:
    """[matmul + bias + relu, tanh] x n on 8x8: n offloaded regions between host tanhs."""
    t, w, b = "tensor<8x8xf32>", "tensor<8x8xf32>", "tensor<8xf32>"
    args = ["%x: " + t] + [f"%w{i}: {w}, %b{i}: {b}" for i in range(n)]
    lines = [f"func.func @main({', '.join(args)}) -> {t} {{", "  %z = arith.constant 0.0 : f32"]
    lines.append(f"  %e = tensor.empty() : {t}")
    cur = "%x"
    for i in range(n):
        lines += [
            f"  %f{i} = linalg.fill ins(%z : f32) outs(%e : {t}) -> {t}",
            f"  %m{i} = linalg.matmul ins({cur}, %w{i} : {t}, {w}) outs(%f{i} : {t}) -> {t}",
            f"  %a{i} = linalg.generic {{indexing_maps = [{ID}, {ROW}, {ID}], iterator_types = "
            f'["parallel", "parallel"]}} ins(%m{i}, %b{i} : {t}, {b}) outs(%e : {t}) {{',
            "  ^bb0(%p: f32, %q: f32, %o: f32):",
            "    %s = arith.addf %p, %q : f32",
            "    linalg.yield %s : f32",
            f"  }} -> {t}",
            f"  %r{i} = linalg.generic {{indexing_maps = [{ID}, {ID}], iterator_types = "
            f'["parallel", "parallel"]}} ins(%a{i} : {t}) outs(%e : {t}) {{',
            "  ^bb0(%p: f32, %o: f32):",
            "    %s = arith.maximumf %p, %z : f32",
            "    linalg.yield %s : f32",
            f"  }} -> {t}",
            f"  %t{i} = linalg.generic {{indexing_maps = [{ID}, {ID}], iterator_types = "
            f'["parallel", "parallel"]}} ins(%r{i} : {t}) outs(%e : {t}) {{',
            "  ^bb0(%p: f32, %o: f32):",
            "    %s = math.tanh %p : f32",
            "    linalg.yield %s : f32",
            f"  }} -> {t}",
        ]
        cur = f"%t{i}"
    lines += [f"  return {cur} : {t}", "}"]
    return "\n".join(lines) + "\n"


def alternating_ref(x, *wb):  # type: ignore[no-untyped-def]
    for w, b in zip(wb[0::2], wb[1::2], strict=True):
        x = np.tanh(relu(x @ w + b))
    return x


CASES = {
    "mlp": (ROOT / "examples" / "mlp.mlir", mlp_ref, 1, 1e-4),
    "cnn": (ROOT / "examples" / "cnn.mlir", cnn_ref, 2, 1e-3),
    "alternating": (alternating(), alternating_ref, 4, 1e-4),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_offloaded_build_matches_host_and_numpy(
    case: str, backend: str, host_builds: dict[str, Compiled], tmp_path: Path
) -> None:
    source, reference, n_regions, tol = CASES[case]
    c = compile(source, [backend], out_dir=tmp_path / "b", options=OPTIONS)
    offloaded = [r for r in c.report["regions"] if r["status"] == "offloaded"]
    assert len(offloaded) >= n_regions, c.report["regions"]
    assert all(r["backend"] == backend for r in offloaded)
    if case == "cnn":  # pooling is nobody's: it stays on the host, with its reason
        pooling = [h for h in c.report["host_ops"] if h["op"] == "linalg.pooling_nchw_max"]
        assert pooling and pooling[0]["reason"].startswith(f"rejected: {backend}: ")
    inputs = [a * 0.5 for a in c.random_inputs(7)]
    got = c(*inputs)[0]
    want_host = host(case, source, host_builds, tmp_path)(*inputs)[0]
    np.testing.assert_allclose(got, want_host, rtol=tol, atol=tol)
    np.testing.assert_allclose(
        got, reference(*[a.astype(np.float64) for a in inputs]), rtol=tol, atol=tol
    )


GELU_MODEL = f"""
func.func @main(%x: tensor<4x8xf32>, %w0: tensor<8x8xf32>, %b0: tensor<8xf32>,
                %w1: tensor<8x8xf32>) -> tensor<4x8xf32> {{
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x8xf32>
  %f0 = linalg.fill ins(%z : f32) outs(%e : tensor<4x8xf32>) -> tensor<4x8xf32>
  %m0 = linalg.matmul ins(%x, %w0 : tensor<4x8xf32>, tensor<8x8xf32>)
      outs(%f0 : tensor<4x8xf32>) -> tensor<4x8xf32>
  %a0 = linalg.generic {{indexing_maps = [{ID}, {ROW}, {ID}],
      iterator_types = ["parallel", "parallel"]}}
      ins(%m0, %b0 : tensor<4x8xf32>, tensor<8xf32>) outs(%e : tensor<4x8xf32>) {{
  ^bb0(%p: f32, %q: f32, %o: f32):
    %s = arith.addf %p, %q : f32
    linalg.yield %s : f32
  }} -> tensor<4x8xf32>
  %g = linalg.generic {{indexing_maps = [{ID}, {ID}], iterator_types = ["parallel", "parallel"]}}
      ins(%a0 : tensor<4x8xf32>) outs(%e : tensor<4x8xf32>) {{
  ^bb0(%p: f32, %o: f32):
    %half = arith.constant 0.5 : f32
    %one = arith.constant 1.0 : f32
    %k = arith.constant 0.70710678 : f32
    %t0 = arith.mulf %p, %k : f32
    %t1 = math.erf %t0 : f32
    %t2 = arith.addf %t1, %one : f32
    %t3 = arith.mulf %p, %half : f32
    %t4 = arith.mulf %t3, %t2 : f32
    linalg.yield %t4 : f32
  }} -> tensor<4x8xf32>
  %f1 = linalg.fill ins(%z : f32) outs(%e : tensor<4x8xf32>) -> tensor<4x8xf32>
  %m1 = linalg.matmul ins(%g, %w1 : tensor<4x8xf32>, tensor<8x8xf32>)
      outs(%f1 : tensor<4x8xf32>) -> tensor<4x8xf32>
  return %m1 : tensor<4x8xf32>
}}
"""


def gelu_ref(x, w0, b0, w1):  # type: ignore[no-untyped-def]
    from math import erf

    a = x @ w0 + b0
    g = 0.5 * a * (1 + np.vectorize(erf)(a / np.sqrt(2)))
    return g @ w1


def test_two_backends_at_once(host_builds: dict[str, Compiled], tmp_path: Path) -> None:
    # ccompiler refuses gelu, jsonrt runs it: one build uses both backends.
    c = compile(GELU_MODEL, ["ccompiler", "jsonrt"], out_dir=tmp_path / "b", options=OPTIONS)
    offloaded = [r for r in c.report["regions"] if r["status"] == "offloaded"]
    assert {r["backend"] for r in offloaded} == {"ccompiler", "jsonrt"}, c.report["regions"]
    assert {r["route"] for r in offloaded} == {"linked", "runtime"}
    inputs = c.random_inputs(3)
    want = host("gelu", GELU_MODEL, host_builds, tmp_path)(*inputs)[0]
    np.testing.assert_allclose(c(*inputs)[0], want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        c(*inputs)[0], gelu_ref(*[a.astype(np.float64) for a in inputs]), rtol=1e-4, atol=1e-4
    )


@pytest.fixture
def failing_first_region(request: pytest.FixtureRequest) -> Iterator[str]:
    backend = registry.get(request.param)
    original = backend.codegen
    calls = {"n": 0}

    def flaky(view, options):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("injected failure")
        return original(view, options)  # type: ignore[misc]

    backend.codegen = flaky
    yield request.param
    backend.codegen = original


@pytest.mark.parametrize("failing_first_region", BACKENDS, indirect=True)
def test_injected_failure_falls_back_one_region(
    failing_first_region: str, host_builds: dict[str, Compiled], tmp_path: Path
) -> None:
    source = CASES["alternating"][0]
    c = compile(source, [failing_first_region], out_dir=tmp_path / "b", options=OPTIONS)
    statuses = [r["status"] for r in c.report["regions"]]
    assert statuses[0] == "fallback: codegen failed: injected failure"
    assert statuses[1:] == ["offloaded"] * (len(statuses) - 1)
    inputs = c.random_inputs(5)
    want = host("alternating", source, host_builds, tmp_path)(*inputs)[0]
    np.testing.assert_allclose(c(*inputs)[0], want, rtol=1e-4, atol=1e-4)
