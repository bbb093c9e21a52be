"""Per-region numeric check: a backend that computes something slightly off in one region
is found, on both routes, and correct regions are reported as matching."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from toys import ADD_C, Toy, inputs, model

from byoc_mlir import ByocError, CompileOptions, compile, host_compile
from byoc_mlir.codegen import registry
from byoc_mlir.codegen.hook import Kernel, LinkedArtifact, RegionView, RuntimeArtifact, ValueRef
from byoc_mlir.explain.bisect import check_regions, first_bad
from byoc_mlir.tools import byoc_run

OFF = 1e-2  # the error the faulty backend makes in its second region


class OffByALittle(Toy):
    """Like the toy add backend, but its second region adds OFF to every element."""

    def hook(self, view: RegionView, options: object) -> object:
        self.calls += 1
        wrong = view.name.endswith("_1")
        if self.behaviour == "runtime":
            return RuntimeArtifact(b"off" if wrong else b"add")
        source = ADD_C.format(sym=f"{view.symbol}_k0", n=view.outputs[0].size)
        if wrong:
            source = source.replace("a[i] + b[i]", f"a[i] + b[i] + {OFF}f")
        return LinkedArtifact(
            [Kernel(f"{view.symbol}_k0", [ValueRef.arg(0), ValueRef.arg(1)], [view.outputs[0]])],
            [ValueRef.kernel(0)],
            c_source=source,
        )

    def runtime(self, payload: bytes) -> object:
        extra = OFF if payload == b"off" else 0.0
        return lambda a, b: [a + b + np.float32(extra)]


@pytest.fixture(params=["linked", "runtime"])
def faulty(request: pytest.FixtureRequest) -> Iterator[OffByALittle]:
    t = OffByALittle(f"off_{request.param}", request.param)
    registry.register(t.backend)
    yield t
    registry.unregister(t.backend.name)


def test_first_differing_region_is_named(faulty: OffByALittle, tmp_path: Path) -> None:
    path = tmp_path / "m.mlir"
    path.write_text(model())
    out = tmp_path / "b"
    compile(
        path, [faulty.backend.name], out_dir=out, options=CompileOptions(cache_dir=None)
    ).close()
    checks = check_regions(out, list(inputs()))
    assert [c.name for c in checks] == [
        f"{faulty.backend.name}.main_0",
        f"{faulty.backend.name}.main_1",
    ]
    assert checks[0].ok and checks[0].max_abs < 1e-6
    assert not checks[1].ok and abs(checks[1].max_abs - OFF) < 1e-4
    bad = first_bad(checks)
    assert bad is not None and bad.name.endswith("main_1") and bad.route == faulty.behaviour


def test_cli_per_region(tmp_path: Path) -> None:
    t = OffByALittle("off_cli", "linked")  # linked: byoc-run needs no backend at run time
    registry.register(t.backend)
    try:
        path = tmp_path / "m.mlir"
        path.write_text(model())
        out = tmp_path / "b"
        compile(path, ["off_cli"], out_dir=out, options=CompileOptions(cache_dir=None)).close()
    finally:
        registry.unregister("off_cli")
    run = subprocess.run(
        ["byoc-run", str(out), "--check", "--per-region"], capture_output=True, text=True
    )
    assert run.returncode == 1, run.stderr
    assert "MISMATCH" in run.stdout
    assert "the bundle is wrong: a conservative IREE build agrees with the host" in run.stdout
    assert "first region that differs: off_cli.main_1 (off_cli, linked route)" in run.stdout
    lone = subprocess.run(["byoc-run", str(out), "--per-region"], capture_output=True, text=True)
    assert lone.returncode == 1 and "--per-region needs --check" in lone.stderr


def test_host_only_bundle_has_no_regions_to_check(tmp_path: Path) -> None:
    path = tmp_path / "m.mlir"
    path.write_text(model())
    out = tmp_path / "h"
    compile(path, ["none"], out_dir=out, options=CompileOptions(cache_dir=None)).close()
    with pytest.raises(ByocError, match="partitioned.mlir"):
        check_regions(out, list(inputs()))


def test_check_says_when_the_host_reference_is_the_wrong_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # IREE's data tiling miscompiles this host-only (12 of 24 outputs) unless guarded;
    # ccompiler runs the whole model, so the bundle is right. With the guard off, the
    # host reference is wrong, and the conservative third build says so.
    lit = Path(__file__).parents[1] / "lit/passes/byoc-guard-data-tiling.mlir"
    path = tmp_path / "m.mlir"
    path.write_text(lit.read_text().split("// -----")[0])
    out = tmp_path / "b"
    c = compile(path, ["ccompiler"], out_dir=out, options=CompileOptions(cache_dir=None))
    assert "linalg.batch_matmul" not in (out / "host.mlir").read_text()
    c.close()
    monkeypatch.setattr(host_compile, "guard_data_tiling", lambda module_op: 0)
    assert byoc_run.run([str(out), "--check", "--output", str(tmp_path / "res")]) == 0
    printed = capsys.readouterr().out
    assert "MISMATCH at rtol" in printed
    assert (
        "the host reference is wrong: a conservative IREE build agrees with the bundle" in printed
    )
    check = json.loads((tmp_path / "res" / "check.json").read_text())
    assert check[0]["verdict"] == "host reference wrong" and check[0]["ok"]
