"""The compile driver end to end with small in-test backends: both routes, per-region
fallback (every failure kind), strict mode, the artifact cache, sanitising, bundles."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from toys import Toy, expected, inputs, model, no_cache

from byoc_mlir import ByocError, Compiled, CompileOptions, compile, host_compile
from byoc_mlir.codegen.hook import c_identifier
from byoc_mlir.fuzz.emit import emit
from byoc_mlir.fuzz.graphs import Graph, Val, evaluate
from byoc_mlir.host_compile import culprits


@pytest.mark.parametrize("toy", ["linked", "runtime"], indirect=True)
def test_both_routes_offload_and_match(toy: Toy, model_file: Path, tmp_path: Path) -> None:
    c = compile(model_file, [toy.backend.name], out_dir=tmp_path / "b", options=no_cache())
    regions = c.report["regions"]
    assert [r["status"] for r in regions] == ["offloaded", "offloaded"]
    assert {r["route"] for r in regions} == {toy.behaviour}
    a, b = inputs()
    np.testing.assert_allclose(c(a, b)[0], expected(a, b), rtol=1e-5, atol=1e-5)
    host = (tmp_path / "b" / "host.mlir").read_text()
    if toy.behaviour == "linked":
        assert "flow.dispatch" in host and "hal.executable.objects" in host
    else:
        assert "flow.dispatch" not in host
        assert len(json.loads((tmp_path / "b" / "bundle.json").read_text())["served"]) == 2


@pytest.mark.parametrize(
    "toy, why",
    [
        ("raise", "vendor compiler exploded"),
        ("garbage", "expected LinkedArtifact or RuntimeArtifact"),
        ("bad_c", "C compiler failed"),
        ("libc", "freestanding"),
        ("wrong_symbol", "IREE could not link"),
    ],
    indirect=["toy"],
)
def test_codegen_failure_falls_back_per_region(
    toy: Toy, why: str, model_file: Path, tmp_path: Path
) -> None:
    c = compile(model_file, [toy.backend.name], out_dir=tmp_path / "b", options=no_cache())
    statuses = [r["status"] for r in c.report["regions"]]
    assert all(s.startswith("fallback: codegen failed: ") and why in s for s in statuses), statuses
    reasons = [h["reason"] for h in c.report["host_ops"]]
    assert sum(r.startswith("fallback: codegen failed:") for r in reasons) == 2
    a, b = inputs()
    np.testing.assert_allclose(c(a, b)[0], expected(a, b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("toy", ["first_fails"], indirect=True)
def test_one_failure_degrades_only_its_region(toy: Toy, model_file: Path, tmp_path: Path) -> None:
    c = compile(model_file, [toy.backend.name], out_dir=tmp_path / "b", options=no_cache())
    statuses = [r["status"] for r in c.report["regions"]]
    assert statuses[0].startswith("fallback: codegen failed: only the first region fails")
    assert statuses[1] == "offloaded"
    a, b = inputs()
    np.testing.assert_allclose(c(a, b)[0], expected(a, b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("toy", ["raise"], indirect=True)
def test_strict_mode_turns_fallback_into_an_error(
    toy: Toy, model_file: Path, tmp_path: Path
) -> None:
    options = CompileOptions(cache_dir=None, fallback=False)
    with pytest.raises(ByocError, match="codegen failed for @toy_raise.main_0"):
        compile(model_file, [toy.backend.name], out_dir=tmp_path / "b", options=options)
    assert not (tmp_path / "b").exists()  # no half-written bundle
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".b.")]


@pytest.mark.parametrize("toy", ["linked"], indirect=True)
def test_cache_rebuilds_nothing_for_an_unchanged_model(
    toy: Toy, model_file: Path, tmp_path: Path
) -> None:
    options = CompileOptions(cache_dir=tmp_path / "cache")
    compile(model_file, [toy.backend.name], out_dir=tmp_path / "b1", options=options).close()
    assert toy.calls == 2
    c = compile(model_file, [toy.backend.name], out_dir=tmp_path / "b2", options=options)
    assert toy.calls == 2  # both regions served from the cache
    a, b = inputs()
    np.testing.assert_allclose(c(a, b)[0], expected(a, b), rtol=1e-5, atol=1e-5)
    # A damaged entry is never served: it is rebuilt.
    entry = next(p for p in (tmp_path / "cache").iterdir() if not p.name.startswith("."))
    (entry / "object").write_bytes(b"garbage")
    compile(model_file, [toy.backend.name], out_dir=tmp_path / "b3", options=options).close()
    assert toy.calls == 3
    # A changed region (different model) is a different key.
    other = tmp_path / "other.mlir"
    other.write_text(model().replace("4x8", "2x16"))
    compile(other, [toy.backend.name], out_dir=tmp_path / "b4", options=options).close()
    assert toy.calls == 5


def _compile_in_subprocess(model_file: Path, out: Path, cache: Path) -> subprocess.CompletedProcess:
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from toys import Toy\n"
        "from byoc_mlir import compile, CompileOptions\n"
        "from byoc_mlir.codegen import registry\n"
        "t = Toy('toy_linked', 'linked'); registry.register(t.backend)\n"
        f"opts = CompileOptions(cache_dir={str(cache)!r})\n"
        f"c = compile({str(model_file)!r}, ['toy_linked'], out_dir={str(out)!r}, options=opts)\n"
        "assert [r['status'] for r in c.report['regions']] == ['offloaded'] * 2, c.report\n"
        "print(t.calls)\n"
    )
    return subprocess.Popen(  # type: ignore[return-value]
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_cache_is_safe_between_processes(model_file: Path, tmp_path: Path) -> None:
    procs = [
        _compile_in_subprocess(model_file, tmp_path / f"b{i}", tmp_path / "c") for i in range(3)
    ]
    for p in procs:
        out, err = p.communicate(timeout=120)  # type: ignore[attr-defined]
        assert p.returncode == 0, err  # type: ignore[attr-defined]
    entries = [p for p in (tmp_path / "c").iterdir()]
    assert len(entries) == 2 and not any(p.name.startswith(".") for p in entries)
    for i in range(3):
        c = Compiled(tmp_path / f"b{i}")
        a, b = inputs()
        np.testing.assert_allclose(c(a, b)[0], expected(a, b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("toy", ["linked"], indirect=True)
@pytest.mark.parametrize("evil", ["../../x", 'a;system("rm -rf /")', "päth/with spaces"])
def test_model_symbols_are_sanitised(toy: Toy, evil: str, tmp_path: Path) -> None:
    path = tmp_path / "evil.mlir"
    path.write_text(model(evil.replace('"', '\\"')))
    out = tmp_path / "bundle"
    c = compile(path, [toy.backend.name], out_dir=out, options=no_cache())
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files and all(p.resolve().is_relative_to(out.resolve()) for p in files)
    for p in (out / "artifacts").iterdir():
        assert p.name.replace(".", "_").replace("_", "").isalnum(), p.name
    source = next((out / "artifacts").glob("*.c")).read_text()
    symbol = source.split("void", 1)[1].split("(", 1)[0].strip()
    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", symbol), symbol  # no quote, paren or ';'
    assert "system(" not in source
    a, b = inputs()
    np.testing.assert_allclose(c(a, b)[0], expected(a, b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("toy", ["runtime"], indirect=True)
def test_bundle_runs_after_being_moved(toy: Toy, model_file: Path, tmp_path: Path) -> None:
    compile(model_file, [toy.backend.name], out_dir=tmp_path / "b", options=no_cache()).close()
    moved = tmp_path / "elsewhere" / "bundle"
    shutil.copytree(tmp_path / "b", moved)
    shutil.rmtree(tmp_path / "b")
    cwd = os.getcwd()
    os.chdir(tmp_path / "elsewhere")
    try:
        c = Compiled("bundle")
        a, b = inputs()
        np.testing.assert_allclose(c(a, b)[0], expected(a, b), rtol=1e-5, atol=1e-5)
    finally:
        os.chdir(cwd)


def test_host_only_and_refusing_to_clobber(model_file: Path, tmp_path: Path) -> None:
    c = compile(model_file, ["none"], out_dir=tmp_path / "h", options=no_cache())
    assert c.report["regions"] == [] and c.report["host_ops"] == []
    a, b = inputs()
    np.testing.assert_allclose(c(a, b)[0], expected(a, b), rtol=1e-5, atol=1e-5)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("do not lose me")
    with pytest.raises(ByocError, match="not a byoc_mlir bundle"):
        compile(model_file, ["none"], out_dir=precious, options=no_cache())
    assert (precious / "thesis.txt").read_text() == "do not lose me"


def test_cli_compile_run_check(model_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "b"
    subprocess.run(
        ["byoc-compile", str(model_file), "--backend", "testing", "-o", str(out), "--no-cache"],
        check=True,
        capture_output=True,
    )
    a, b = inputs()
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    run = subprocess.run(
        ["byoc-run", str(out), "--input", str(tmp_path / "a.npy"), "--input",
         str(tmp_path / "b.npy"), "--check", "--output", str(tmp_path / "res")],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "max abs error 0" in run.stdout
    np.testing.assert_allclose(
        np.load(tmp_path / "res" / "output_0.npy"), expected(a, b), rtol=1e-5
    )
    bad = subprocess.run(
        ["byoc-run", str(out), "--input", str(tmp_path / "a.npy")], capture_output=True, text=True
    )
    assert bad.returncode == 1 and "takes 2 inputs" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize("toy", ["bad_payload"], indirect=True)
def test_a_payload_its_runtime_cannot_load_sends_only_its_region_back(
    toy: Toy, model_file: Path, tmp_path: Path
) -> None:
    c = compile(model_file, [toy.backend.name], out_dir=tmp_path / "b", options=no_cache())
    first, second = c.report["regions"]
    assert first["status"] == "offloaded" and first["route"] == "runtime"
    assert second["status"].startswith("fallback: codegen failed: ")
    assert "cannot load its payload: not a toy payload" in second["status"]
    manifest = json.loads((tmp_path / "b" / "bundle.json").read_text())
    assert [s["function"] for s in manifest["served"]] == ["main_0"]
    assert sorted(p.name for p in (tmp_path / "b" / "payloads").iterdir()) == [
        f"{c_identifier(first['name'])}.bin"
    ]
    a, b = inputs()
    np.testing.assert_allclose(c(a, b)[0], expected(a, b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "names, bad, back",
    [
        ("abcdefgh", {"e"}, ["e"]),
        ("abcdefgh", {"a", "h"}, ["a", "h"]),
        ("abcdefgh", {"b", "c", "g"}, ["b", "c", "g"]),
        ("a", {"a"}, ["a"]),
        ("abcdefgh", set(), []),
    ],
)
def test_bisection_finds_every_region_the_host_module_cannot_take(
    names: str, bad: set[str], back: list[str]
) -> None:
    probes: list[frozenset[str]] = []

    def compiles(kept: frozenset[str]) -> bool:
        probes.append(kept)
        return not (kept & bad)

    assert culprits(list(names), compiles) == back
    assert len(probes) <= 1 + (len(back) + 1) * (1 + math.ceil(math.log2(len(names))))


def test_bisection_breaks_a_failing_pair_and_gives_up_on_a_broken_host() -> None:
    # Only the two together break the module: the later one goes back, the first stays.
    assert culprits(list("abcd"), lambda kept: not {"b", "d"} <= kept) == ["d"]
    assert culprits(list("abcd"), lambda kept: False) is None


@pytest.mark.parametrize("toy", ["runtime", "linked"], indirect=True)
def test_a_region_that_breaks_the_host_module_goes_back_and_only_it(
    toy: Toy, model_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fault injection: the real IREE compiles every module, except that one holding the
    # second region offloaded fails as IREE does on a boundary it cannot lower.
    real = host_compile.iree
    culprit = f"@{toy.backend.name}.main_1"

    def iree(source: str | bytes, args: list[str], what: str) -> bytes:
        text = source if isinstance(source, str) else source.decode()
        if "--compile-from=input" in args and f"call {culprit}" in text:
            raise ByocError(f"IREE failed to {what}: error: injected fault at {culprit}")
        return real(source, args, what)

    monkeypatch.setattr(host_compile, "iree", iree)
    c = compile(model_file, [toy.backend.name], out_dir=tmp_path / "b", options=no_cache())
    first, second = c.report["regions"]
    assert first["status"] == "offloaded"
    assert second["status"].startswith(
        "fallback: the host module does not compile with it offloaded: IREE failed to "
        "compile the host module: error: injected fault"
    )
    manifest = json.loads((tmp_path / "b" / "bundle.json").read_text())
    assert len(manifest["served"]) == (1 if toy.behaviour == "runtime" else 0)
    assert f"call {culprit}" not in (tmp_path / "b" / "host.mlir").read_text()
    a, b = inputs()
    np.testing.assert_allclose(c(a, b)[0], expected(a, b), rtol=1e-5, atol=1e-5)


def test_host_build_is_right_where_iree_data_tiling_miscompiles(tmp_path: Path) -> None:
    # IREE 3.13 with --iree-opt-data-tiling (a default host flag) computes 12 of these 24
    # outputs wrong; byoc-guard-data-tiling materialises the operand first.
    path = tmp_path / "m.mlir"
    path.write_text(
        Path(__file__).parents[1].joinpath("lit/passes/byoc-guard-data-tiling.mlir")
        .read_text().split("// -----")[0]
    )  # fmt: skip
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 3, 8)).astype(np.float32)
    v = rng.standard_normal(8).astype(np.float32)
    w = rng.standard_normal((2, 8, 4)).astype(np.float32)
    c = compile(path, ["none"], options=no_cache())
    np.testing.assert_allclose(c(a, v, w)[0], np.matmul(a - v, w), rtol=1e-5, atol=1e-5)
    assert any("byoc-guard-data-tiling" in n for n in c.report["notes"])
    assert "util.optimization_barrier" in (c.bundle / "host.mlir").read_text()
    c.close()


def _one_conv(
    dtype: str,
    x: tuple[int, ...],
    w: tuple[int, ...],
    out: tuple[int, ...],
    stride_pad_dilation: tuple[int, int, int],
    seed: int,
) -> Graph:
    """A fuzz graph of one NHWC convolution of an argument by seeded constant weights."""
    rng = np.random.default_rng(seed)
    weights = tuple(float(v) for v in np.round(rng.uniform(-1, 1, int(np.prod(w))), 3))
    values = (
        Val("arg", x),
        Val("const", w, data=weights),
        Val("conv", out, (0, 1), stride_pad_dilation),
    )
    return Graph(dtype, values, (2,))


def test_an_f16_convolution_builds_without_the_im2col_flag_iree_breaks_on() -> None:
    # ONNX f16 Conv: IREE 3.13's im2col (a default host flag) fails on its f32
    # accumulator ("'arith.addf' op requires the same type"); the host module is
    # compiled again without that flag and the report says so.
    g = _one_conv("f16", (2, 5, 5, 1), (2, 2, 1, 3), (2, 6, 6, 3), (1, 1, 1), seed=1)
    c = compile(emit(g, "onnx"), ["none"], options=no_cache())
    (got,) = c(*g.inputs())
    (want,) = evaluate(g, g.inputs())
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), atol=2e-2)
    assert any("compiled without --iree-global-opt-use-im2col-for-convs" in n
               for n in c.report["notes"])  # fmt: skip
    c.close()


@pytest.mark.parametrize("family", ["linalg", "onnx"])
def test_a_strided_window_that_leaves_input_columns_unread_builds(family: str) -> None:
    # Kernel 2, stride 2 over 3 columns: IREE 3.13 cannot compile it with any flags;
    # byoc-trim-conv-inputs slices the input to what the windows read.
    g = _one_conv("f32", (1, 4, 3, 3), (2, 2, 3, 3), (1, 2, 1, 3), (2, 0, 1), seed=2)
    c = compile(emit(g, family), ["none"], options=no_cache())
    np.testing.assert_allclose(c(*g.inputs())[0], evaluate(g, g.inputs())[0], atol=1e-5)
    assert any("(byoc-trim-conv-inputs)" in n for n in c.report["notes"])
    c.close()
