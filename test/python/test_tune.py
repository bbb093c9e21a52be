"""Measured placement (``CompileOptions(tune=True)`` / ``byoc-compile --tune``).

Each decision is made on real timings (the real IREE compiler and runtime, real
backends); the tests use backends whose outcome does not depend on the machine: a toy
runtime that sleeps 5 ms per call (the host is faster by three orders of magnitude), one
that is fast when timed alone and slow inside the model (regions that win alone and lose
together), and ``dnnl``, for which they check only what holds whoever wins.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from toys import Toy, expected, inputs, no_cache

from byoc_mlir import compile, driver, tune
from byoc_mlir.explain.plan import load_plan


def tuned(**options: Any) -> Any:
    return replace(no_cache(), tune=True, **options)


def statuses(c: Any) -> dict[str, str]:
    return {r["name"]: r["status"] for r in c.report["regions"]}


@pytest.mark.parametrize("toy", ["slow"], indirect=True)
def test_a_region_slower_than_the_host_goes_back_with_both_times(
    toy: Toy, model_file: Path, tmp_path: Path
) -> None:
    plan_file = tmp_path / "plan.json"
    c = compile(
        model_file, ["toy_slow"], out_dir=tmp_path / "b", options=tuned(save_plan=plan_file)
    )
    for region in c.report["regions"]:
        timing = region["timing"]
        assert timing["kept"] == "host" and timing["backend"] == "toy_slow"
        assert timing["backend_ms"] >= 5.0 > timing["host_ms"] > 0
        assert region["status"] == (
            f"fallback: tuned: host {timing['host_ms']:.3f} ms < toy_slow "
            f"{timing['backend_ms']:.3f} ms"
        )
    assert len(c.report["regions"]) == 2
    manifest = json.loads((tmp_path / "b" / "bundle.json").read_text())
    assert manifest["served"] == [] and not list((tmp_path / "b" / "payloads").glob("*"))
    a, b = inputs()
    np.testing.assert_allclose(c(a, b)[0], expected(a, b), rtol=1e-5, atol=1e-5)
    # The tuned plan places both regions on the host and keeps the times; replayed,
    # nothing is timed (no region, no timing) and the notes carry what was measured.
    plan = load_plan(plan_file)
    assert {o.backend for o in plan.ops} == {None}
    assert set(plan.tuned) == {"toy_slow.main_0", "toy_slow.main_1"}
    assert all(t["kept"] == "host" for t in plan.tuned.values())
    replayed = compile(model_file, out_dir=tmp_path / "r", options=tuned(plan=plan_file))
    assert replayed.report["regions"] == []
    notes = replayed.report["notes"]
    assert len(notes) == 2 and all("kept on host" in n for n in notes)
    np.testing.assert_allclose(replayed(a, b)[0], expected(a, b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("toy", ["slow"], indirect=True)
def test_regions_that_win_alone_but_lose_together_leave_a_host_only_bundle(
    toy: Toy, model_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Timed alone (tune_regions) the toy answers at once; loaded into the model it
    # sleeps 5 ms per call: only the whole-model check can see it.
    def alone(*args: Any, **kwargs: Any) -> Any:
        toy.fast = True
        try:
            return tune.tune_regions(*args, **kwargs)
        finally:
            toy.fast = False

    monkeypatch.setattr(driver, "tune_regions", alone)
    monkeypatch.setattr(tune, "_CROSSING_MS", 0.0)
    c = compile(model_file, ["toy_slow"], out_dir=tmp_path / "b", options=tuned())
    for region in c.report["regions"]:
        timing = region["timing"]
        assert timing["kept"] == "host"
        assert timing["whole_model_ms"] >= 10.0 > timing["host_only_ms"]
        assert region["status"].startswith(
            "fallback: tuned: the whole model runs faster host-only ("
        )
    manifest = json.loads((tmp_path / "b" / "bundle.json").read_text())
    assert manifest["served"] == []
    assert "call @toy_slow" not in (tmp_path / "b" / "host.mlir").read_text()
    a, b = inputs()
    np.testing.assert_allclose(c(a, b)[0], expected(a, b), rtol=1e-5, atol=1e-5)


def test_dnnl_regions_are_timed_and_placed_where_measured(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Conv2d(16, 8, 3), nn.Tanh()).eval()
    x = torch.randn(1, 3, 24, 24)
    c = compile(model, ["dnnl"], out_dir=tmp_path / "b", options=tuned(), example_inputs=[x])
    (region, *_) = c.report["regions"]
    timing = region["timing"]
    assert timing["backend_ms"] > 0 and timing["host_ms"] > 0
    assert timing["kept"] in ("dnnl", "host")
    if timing["kept"] == "host":
        assert region["status"].startswith("fallback: tuned: ")
    else:
        assert region["status"] == "offloaded"
        assert timing["whole_model_ms"] > 0 and timing["host_only_ms"] > 0
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(c(x.numpy())[0], want, rtol=1e-4, atol=1e-5)
