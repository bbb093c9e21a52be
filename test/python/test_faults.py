"""Fault injection: a vendor hook that fails in every way costs its region, not the build.

The ``fault`` backend (``byoc_fault_backend.py``) is installed as a plugin through the
``byoc_mlir.backends`` entry-point group, so its hook runs out of process
(`byoc_mlir.codegen.workers`). For each fault its first region goes back to the host with
the reason in ``report.json``, its second region is still offloaded, the model's numbers
are right, and neither the bundle nor the artifact cache keeps a half-written file. A
runtime that computes wrong numbers cannot be caught at build time: ``byoc-run --check
--per-region`` names its region (each region run in a child of its own).
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from byoc_fault_backend import FAULTS
from toys import expected, inputs, model

from byoc_mlir import CompileOptions, compile
from byoc_mlir.codegen import registry
from byoc_mlir.tools import byoc_run

REASONS = {
    "raise": "fallback: codegen failed: vendor compiler exploded",
    "garbage": "fallback: codegen failed: ",
    "bad_c": "fallback: codegen failed: ",
    "unresolved_symbol": "fallback: ",
    "wrong_signature": "fallback: codegen failed: its runtime returned outputs of "
    "shapes [(1, 8)] on a trial call, the region's signature says [(4, 8)]",
    "segfault": "fallback: codegen failed: vendor hook killed by SIGSEGV after ",
    "abort": "fallback: codegen failed: vendor hook killed by SIGABRT after ",
    "hang": "fallback: codegen failed: vendor hook timed out after 4 s",
    "allocate": "fallback: codegen failed: vendor hook ran out of memory (limit 512 MiB)",
    "runtime_crash": "fallback: codegen failed: vendor hook killed by SIGSEGV after ",
}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The fault backend installed as a plugin: a ``.dist-info`` with its entry point."""
    site = tmp_path_factory.mktemp("site")
    info = site / "byoc_fault_backend-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: byoc-fault-backend\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(
        "[byoc_mlir.backends]\nfault = byoc_fault_backend:BACKEND\n"
    )
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    registry.rediscover()
    yield
    sys.path.remove(str(site))
    registry.rediscover()


def build(tmp_path: Path, fault: str, out: str = "b", **options: Any) -> Any:
    path = tmp_path / "model.mlir"
    path.write_text(model())
    opts = CompileOptions(
        cache_dir=tmp_path / "cache",
        hook_timeout=4,
        hook_memory_mb=512,
        backend_options={"fault": {"fault": fault}},
    )
    return compile(path, ["fault"], out_dir=tmp_path / out, options=replace(opts, **options))


def leftovers(root: Path) -> list[str]:
    """Hidden or temporary entries (a half-written file or directory)."""
    return [
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.name.startswith(".") or "tmp" in p.name or "staging" in p.name
    ]


@pytest.mark.parametrize("fault", [f for f in FAULTS if f != "wrong_numbers"])
def test_a_failing_hook_costs_its_region_not_the_build(
    installed: None, tmp_path: Path, fault: str
) -> None:
    c = build(tmp_path, fault)
    first, second = c.report["regions"]
    assert first["status"].startswith(REASONS[fault]), first["status"]
    assert second["status"] == "offloaded"
    assert second["codegen"]["mode"] == "process"
    if fault != "unresolved_symbol":  # that one fails later, when IREE links it
        assert first["codegen"]["mode"] == "process"
    a, b = inputs()
    np.testing.assert_allclose(c(a, b)[0], expected(a, b), rtol=1e-5, atol=1e-5)
    assert leftovers(tmp_path / "b") == []
    assert leftovers(tmp_path / "cache") == []


def test_wrong_numbers_are_named_by_the_per_region_check(
    installed: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = build(tmp_path, "wrong_numbers")
    assert [r["status"] for r in c.report["regions"]] == ["offloaded", "offloaded"]
    c.close()
    assert byoc_run.run([str(tmp_path / "b"), "--check", "--per-region"]) == 1
    out = capsys.readouterr().out
    assert "first region that differs: fault.main_0 (fault, runtime route)" in out


def test_a_runtime_crash_is_named_by_the_per_region_check(
    installed: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Built in process (no trial call), the crashing runtime reaches the bundle. The
    # per-region check runs the bundle, then each region, in a child: byoc-run survives
    # and names the region that dies.
    c = build(tmp_path, "runtime_crash", hook_isolation="inline")
    assert [r["status"] for r in c.report["regions"]] == ["offloaded", "offloaded"]
    c.close()
    code = byoc_run.run(
        [str(tmp_path / "b"), "--check", "--per-region", "--output", str(tmp_path / "o")]
    )
    assert code == 1
    out = capsys.readouterr().out
    assert "the bundle died (killed by SIGSEGV)" in out
    assert "fault.main_0's runtime died (killed by SIGSEGV)" in out
    assert "first region that differs: fault.main_0 (fault, runtime route)" in out
    check = json.loads((tmp_path / "o" / "check.json").read_text())
    assert "killed by SIGSEGV" in check[0]["bundle"]
    regions = {r["name"]: r for r in check[1]["regions"]}
    assert not regions["fault.main_0"]["ok"] and regions["fault.main_1"]["ok"]


def test_parallel_codegen_gives_the_serial_bundle(installed: None, tmp_path: Path) -> None:
    serial = build(tmp_path, "", "s", jobs=1, cache_dir=None)
    parallel = build(tmp_path, "", "p", jobs=2, cache_dir=None)
    for c in (serial, parallel):
        assert [r["codegen"]["mode"] for r in c.report["regions"]] == ["process", "process"]
    s_root, p_root = tmp_path / "s", tmp_path / "p"
    names = sorted(str(f.relative_to(s_root)) for f in s_root.rglob("*") if f.is_file())
    assert names == sorted(str(f.relative_to(p_root)) for f in p_root.rglob("*") if f.is_file())
    for name in names:
        a, b = (s_root / name).read_bytes(), (p_root / name).read_bytes()
        if name == "host.mlir":  # names the bundle directory
            b = b.replace(str(p_root).encode(), str(s_root).encode())
        assert a == b, name
