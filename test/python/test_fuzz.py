"""The differential fuzzer: its generator, its three writers, its verdicts, and a quick
fixed-seed profile (one graph per family through every backend set, each build in its own
process) that must come out all PASS. The long profile is ``bench/fuzz.py``."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from byoc_mlir import _compat
from byoc_mlir.fuzz import graphs
from byoc_mlir.fuzz.emit import FAMILIES, emit
from byoc_mlir.fuzz.run import (
    BACKEND_SETS,
    HOST,
    Build,
    Target,
    agree,
    build_and_run,
    classify,
    onnxruntime_outputs,
    run_case,
    save,
    shrink,
)

SEEDS = range(60)


def test_same_seed_same_graph_and_the_features_users_bring() -> None:
    assert graphs.generate(7, "tosa").to_json() == graphs.generate(7, "tosa").to_json()
    g = graphs.generate(7)
    assert graphs.Graph.from_json(g.to_json()) == g
    kinds: Counter[str] = Counter()
    features: Counter[str] = Counter()
    for seed in SEEDS:
        g = graphs.generate(seed)
        assert 1 <= g.n_ops <= 25
        readers = Counter(k for v in g.values for k in v.inputs)
        kinds.update(v.kind for v in g.values)
        features[g.dtype] += 1
        features["fan-out"] += any(n > 1 for i, n in readers.items())
        features["shared weight"] += any(
            readers[i] > 1 for i, v in enumerate(g.values) if v.kind in ("arg", "const")
        )
        features["residual"] += any(
            v.kind in graphs.BINARY and all(g.values[k].kind not in ("arg", "const")
                                            for k in v.inputs)
            for v in g.values
        )  # fmt: skip
        features["rank 0"] += any(v.shape == () for v in g.values)
        features["several results"] += len(g.outputs) > 1
    assert set(kinds) == {"arg", "const", *graphs.OPS}, kinds
    for feature in ("f32", "f16", "i32", "fan-out", "shared weight", "residual", "rank 0"):
        assert features[feature] >= 3, features
    assert features["several results"] >= 20, features


@pytest.mark.parametrize("family", ["linalg", "tosa"])
def test_written_mlir_parses_and_verifies(family: str) -> None:
    context = _compat.new_context()
    for seed in SEEDS:
        text = emit(graphs.generate(seed, family), family)
        module = _compat.parse_module(text, context, f"seed{seed}.mlir")
        assert module.operation.verify(), seed


def test_onnxruntime_agrees_with_numpy_on_the_onnx_writer() -> None:
    ran = 0
    for seed in range(20):
        g = graphs.generate(seed, "onnx")
        got = onnxruntime_outputs(g)
        if got is None:
            continue  # onnxruntime lacks a kernel (f16 Tanh and the like)
        ran += 1
        assert agree(got, graphs.evaluate(g, g.inputs()), g.dtype) is None, seed
    assert ran >= 12


def test_verdicts() -> None:
    f = np.array([1.0, 2.0], np.float32)
    assert agree([f], [f + 5e-4], "f32") is None
    assert "max abs error" in str(agree([f], [f + 0.1], "f32"))
    assert "int32" in str(agree([f.astype(np.int32)], [f], "f32"))
    assert "inf/nan" in str(
        agree([np.array([np.inf], np.float32)], [np.ones(1, np.float32)], "f32")
    )
    i = np.array([3, 4], np.int32)
    assert agree([i], [i + 1], "i32") is not None  # integers are exact
    g = graphs.generate(0)
    ref = graphs.evaluate(g, g.inputs())
    ok, failed = Build("ok", outputs=ref), Build("byoc", "refused")
    assert classify(g, failed, ok, ref) == "LOST"  # host-only runs it: the backend lost it
    assert classify(g, failed, failed, ref) == "REFUSED"
    assert classify(g, Build("crash", "SIGSEGV"), ok, ref) == "CRASH"
    assert classify(g, Build("ok", outputs=ref, leftovers=["byoc_x"]), ok, ref) == "TEMP"
    wrong = [np.asarray(r) + np.asarray(1, r.dtype) for r in ref]
    assert classify(g, Build("ok", outputs=wrong), ok, ref) == "WRONG"


def test_a_failed_build_leaves_no_file_and_shrinks(tmp_path: Path) -> None:
    # An IREE flag that does not exist fails every build early, after the bundle's
    # staging directory exists: nothing may be left, and the shrinker ends at one op.
    broken = Target("broken", ("ccompiler",), ("--iree-no-such-flag",))
    g = graphs.generate(3)
    build = build_and_run(g, "linalg", broken)
    assert build.status == "byoc" and build.leftovers == []
    small = shrink(g, "linalg", broken, "REFUSED", budget=8)
    assert small.n_ops < g.n_ops
    saved = save("linalg", broken.label, small, tmp_path)
    assert graphs.Graph.from_json(saved.read_text()) == small
    assert saved.with_suffix(".mlir").read_text().startswith("func.func @main(")


@pytest.mark.parametrize("family, seed", [("linalg", 29), ("tosa", 47), ("onnx", 19), ("onnx", 0)])
def test_quick_profile_every_backend_set_passes(family: str, seed: int) -> None:
    result = run_case(graphs.generate(seed, family), family, BACKEND_SETS)
    assert result.classes == {t.label: "PASS" for t in BACKEND_SETS}, result.details
    assert HOST.label in result.classes
    if family == "onnx":
        assert result.ort in ("agrees", "n/a")


def test_every_family_is_written() -> None:
    assert FAMILIES == ("linalg", "tosa", "onnx")
    with pytest.raises(ValueError, match="valid: linalg, tosa, onnx"):
        emit(graphs.generate(0), "stablehlo")


@pytest.mark.parametrize(
    "family, seed, repair",
    [
        ("onnx", 106, "without --iree-global-opt-use-im2col-for-convs"),  # f16 Conv
        ("linalg", 142, "(byoc-trim-conv-inputs)"),  # stride 2 over 3 columns
        ("linalg", 266, "without --iree-opt-level=O3"),  # i32, rank-0 reductions
    ],
)
def test_seeds_host_only_refused_before_now_pass(family: str, seed: int, repair: str) -> None:
    from byoc_mlir.driver import CompileOptions, compile

    g = graphs.generate(seed, family)
    compiled = compile(emit(g, family), ["none"], options=CompileOptions(cache_dir=None))
    outputs = compiled(*g.inputs())
    assert agree(outputs, graphs.evaluate(g, g.inputs()), g.dtype) is None
    assert any(repair in n for n in compiled.report["notes"]), compiled.report.get("notes")
    compiled.close()
