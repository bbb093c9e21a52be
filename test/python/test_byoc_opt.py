"""``byoc-opt`` as users run it: a subprocess, exit codes, stderr diagnostics, files."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import T44, FuncBuilder, body_ops, calls, functions, mlp_text, outlined, parse

from byoc_mlir.dialects import byoc

MALFORMED = f"""func.func @main(%a: {T44}) -> {T44} {{
  %0 = linalg.bogus %a : {T44}
  return %0 : {T44}
}}
"""


def byoc_opt(*args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "byoc_mlir.tools.byoc_opt", *map(str, args)],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=120,
    )


def _mixed() -> tuple[str, str]:
    """matmul -> tanh -> relu; returns (text, the tanh's SSA name)."""
    fb = FuncBuilder(T44, T44)
    tanh = fb.tanh(fb.matmul(*fb.args))
    return fb.build(fb.relu(tanh)), tanh


TANH = _mixed()[1]


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "model.mlir"
    path.write_text(_mixed()[0])
    return path


@pytest.fixture
def malformed(tmp_path: Path) -> Path:
    path = tmp_path / "bad.mlir"
    path.write_text(MALFORMED)
    return path


def _assert_clean_failure(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_malformed_input_gives_a_located_diagnostic(malformed: Path) -> None:
    result = byoc_opt(malformed, "--backend", "testing", "--partition")
    _assert_clean_failure(result)
    first = result.stderr.splitlines()[0]
    assert re.match(rf"^{re.escape(str(malformed))}:2:\d+: error: ", first), result.stderr


def test_malformed_stdin_gives_a_located_diagnostic() -> None:
    result = byoc_opt("--backend", "testing", "--partition", stdin=MALFORMED)
    _assert_clean_failure(result)
    assert re.match(r"^[^\s:]+:2:\d+: error: ", result.stderr), result.stderr


def test_missing_input_file(tmp_path: Path) -> None:
    result = byoc_opt(tmp_path / "absent.mlir", "--backend", "testing", "--partition")
    _assert_clean_failure(result)
    assert "error: cannot read" in result.stderr and "absent.mlir" in result.stderr


def test_unknown_backend_lists_known_ones(model: Path) -> None:
    result = byoc_opt(model, "--backend", "no_such_npu", "--partition")
    _assert_clean_failure(result)
    assert "error: unknown backend 'no_such_npu'" in result.stderr
    assert "testing" in result.stderr and "testing_matmul" in result.stderr


def test_partition_needs_a_backend(model: Path) -> None:
    result = byoc_opt(model, "--partition")
    _assert_clean_failure(result)
    assert "--partition needs at least one --backend" in result.stderr


def test_unknown_pass_option(model: Path) -> None:
    result = byoc_opt(model, "--backend", "testing", "--byoc-merge-regions=bogus=1")
    _assert_clean_failure(result)
    assert "has no option 'bogus'" in result.stderr


def test_partition_to_stdout(model: Path) -> None:
    result = byoc_opt(model, "--backend", "testing", "--partition")
    assert result.returncode == 0, result.stderr
    module = parse(result.stdout)
    assert sorted(outlined(module)) == ["testing.main_0", "testing.main_1"]
    assert calls(functions(module)["main"]) == ["testing.main_0", "testing.main_1"]


def test_output_file_is_written(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "out.mlir"
    result = byoc_opt(model, "--backend", "testing", "--partition", "-o", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert list(outlined(parse(out.read_text()))) == ["testing.main_0", "testing.main_1"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["out.mlir"]


@pytest.mark.parametrize("failure", ["malformed", "unknown_backend"])
def test_failed_run_leaves_existing_output_untouched(
    failure: str, model: Path, malformed: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.mlir"
    out.write_text("// previous result\n")
    if failure == "malformed":
        result = byoc_opt(malformed, "--backend", "testing", "--partition", "-o", out)
    else:
        result = byoc_opt(model, "--backend", "nope", "--partition", "-o", out)
    _assert_clean_failure(result)
    assert out.read_text() == "// previous result\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["out.mlir", "model.mlir", "bad.mlir"]
    )


@pytest.mark.parametrize("explicit_dash", [False, True])
def test_stdin_input(explicit_dash: bool) -> None:
    args = ["-"] if explicit_dash else []
    result = byoc_opt(*args, "--backend", "testing", "--partition", stdin=mlp_text(layers=2))
    assert result.returncode == 0, result.stderr
    module = parse(result.stdout)
    assert list(outlined(module)) == ["testing.main_0"]


def test_decision_log_is_written_as_json(model: Path, tmp_path: Path) -> None:
    log_path = tmp_path / "logs" / "report.json"
    result = byoc_opt(model, "--backend", "testing", "--partition", "--decision-log", log_path)
    assert result.returncode == 0, result.stderr
    log = json.loads(log_path.read_text())
    assert log["version"] == 1
    assert [r["name"] for r in log["regions"]] == ["testing.main_0", "testing.main_1"]
    assert [r["ops"] for r in log["regions"]] == [
        ["linalg.fill", "linalg.matmul"],
        ["linalg.generic"],
    ]
    (host,) = log["host_ops"]
    assert (
        host["reason"] == "rejected: testing: linalg.generic computing math.tanh is not supported"
    )
    # Locations name the user's file, so the entry leads back to the source line.
    path, line, _col = host["location"].rsplit(":", 2)
    assert path == str(model)
    source_line = model.read_text().splitlines()[int(line) - 1]
    assert source_line.lstrip().startswith(f"{TANH} = linalg.generic")


def test_decision_log_of_split_input_is_a_json_list(tmp_path: Path) -> None:
    source = tmp_path / "split.mlir"
    source.write_text(mlp_text(layers=1) + "// -----\n" + _mixed()[0])
    log_path = tmp_path / "report.json"
    result = byoc_opt(
        source, "--split-input-file", "--backend", "testing", "--partition",
        "--decision-log", log_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    logs = json.loads(log_path.read_text())
    assert [len(log["regions"]) for log in logs] == [1, 2]
    assert [log["version"] for log in logs] == [1, 1]


def test_decision_log_not_written_on_failure(malformed: Path, tmp_path: Path) -> None:
    log_path = tmp_path / "report.json"
    result = byoc_opt(malformed, "--backend", "testing", "--partition", "--decision-log", log_path)
    _assert_clean_failure(result)
    assert not log_path.exists()


def test_single_pass_then_mlir_pass(model: Path) -> None:
    result = byoc_opt(model, "--backend", "testing", "--byoc-annotate", "--canonicalize")
    assert result.returncode == 0, result.stderr
    module = parse(result.stdout)
    assert outlined(module) == {}
    ops = [o for o in body_ops(functions(module)["main"]) if o.name.startswith("linalg.")]
    # fill, matmul, tanh, relu
    assert [byoc.get_accept(o) for o in ops] == [("testing",), ("testing",), (), ("testing",)]


def test_list_backends() -> None:
    result = byoc_opt("--list-backends")
    assert result.returncode == 0, result.stderr
    names = [line.split("\t")[0] for line in result.stdout.splitlines()]
    assert {"testing", "testing_matmul"} <= set(names)


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).with_name("byoc-opt")
    if not script.exists():
        pytest.skip("byoc-opt is not installed next to this interpreter")
    result = subprocess.run(
        [str(script), "--list-backends"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and "testing" in result.stdout


SPLIT = f"""func.func @good(%a: {T44}) -> {T44} {{
  return %a : {T44}
}}
// -----
func.func @bad() {{
  bogus.op
}}
"""


def test_split_input_file_partial_failure_keeps_output_file(tmp_path: Path) -> None:
    source = tmp_path / "split.mlir"
    source.write_text(SPLIT)
    out = tmp_path / "out.mlir"
    out.write_text("// previous result\n")
    log_path = tmp_path / "report.json"
    log_path.write_text("{}")
    result = byoc_opt(
        source, "--split-input-file", "--backend", "testing", "--partition", "-o", out,
        "--decision-log", log_path,
    )  # fmt: skip
    assert result.returncode == 1
    assert re.match(rf"^{re.escape(str(source))}:6:3: error: ", result.stderr), result.stderr
    assert out.read_text() == "// previous result\n"
    assert log_path.read_text() == "{}"


def test_split_input_file_partial_failure_prints_good_chunks(tmp_path: Path) -> None:
    source = tmp_path / "split.mlir"
    source.write_text(SPLIT)
    result = byoc_opt(source, "--split-input-file")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert list(functions(parse(result.stdout))) == ["good"]


def test_cyclic_tags_are_a_located_error(tmp_path: Path) -> None:
    """Hand-written tags that put matmul and add in one region around a host tanh."""
    fb = FuncBuilder(T44, T44)
    m = fb.matmul(*fb.args)
    module = parse(fb.build(fb.add(fb.tanh(m), m)))
    fill, matmul, _tanh, add = [
        o for o in body_ops(functions(module)["main"]) if o.name.startswith("linalg.")
    ]
    with module.context:
        for op in (fill, matmul, add):
            byoc.set_region(op, "testing", 0)
    source = tmp_path / "cyclic.mlir"
    source.write_text(str(module))
    result = byoc_opt(source, "--byoc-outline")
    _assert_clean_failure(result)
    where = re.escape(str(source))
    assert re.match(rf"^{where}:\d+:\d+: error: tagged regions depend on each other", result.stderr)
