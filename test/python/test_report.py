"""The offload summary (`byoc_mlir.explain.report`), ``--report`` and progress bars: models whose
decisions are known, one for every host reason (rejected, dropped: cycle, dropped:
region too small, codegen fallback), exact op and FLOP counts, source locations, the
text table, and the CLI flags."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import T44, FuncBuilder
from toys import Toy, expected, inputs

from byoc_mlir import CompileOptions, DecisionLog, PartitionOptions, _compat, compile, partition
from byoc_mlir.codegen import registry
from byoc_mlir.codegen.hook import RegionView, RuntimeArtifact
from byoc_mlir.errors import ByocError
from byoc_mlir.explain.decisions import OpRecord
from byoc_mlir.explain.report import WIDTH, format_flops, reason_category, summarize, summary
from byoc_mlir.pipeline import PartitionPass

LOCATION = re.compile(r"^.+\.mlir:\d+:\d+$")


def every_partition_reason() -> str:
    """``d = tanh(a@b) + relu(a@b)`` and ``e = exp(tanh(x) + tanh(x))`` on 4x4.

    With ``testing`` and min-size 2: {fill, matmul, relu} is the one region; ``d`` cannot
    join it (cycle through the host tanh) and alone is too small: ``dropped: cycle``; the
    second add touches no region and is alone: ``dropped: region too small``; the tanhs
    and the exp are rejected.
    """
    fb = FuncBuilder(T44, T44, T44)
    a, b, x = fb.args
    m = fb.matmul(a, b)
    d = fb.add(fb.tanh(m), fb.relu(m))
    t = fb.tanh(x)
    return fb.build(d, fb.exp(fb.add(t, t)))


def op_line(text: str, marker: str, nth: int = 0) -> int:
    """1-based line of the op whose body holds the ``nth`` line containing ``marker``."""
    lines = text.splitlines()
    hits = [k for k, line in enumerate(lines) if marker in line]
    k = hits[nth]
    while "= linalg." not in lines[k]:
        k -= 1
    return k + 1


def decision_log(
    path: Path, backends: list[str], options: PartitionOptions | None = None
) -> dict[str, object]:
    context = _compat.new_context()
    module = _compat.parse_file(path, context)
    records: list[OpRecord] = []
    with context:
        partition(module.operation, backends, options, records=records)
        log = DecisionLog.from_module(module.operation)
    log.ops = records
    return log.to_json()


@pytest.fixture
def reasons_file(tmp_path: Path) -> Path:
    path = tmp_path / "reasons.mlir"
    path.write_text(every_partition_reason())
    return path


def test_every_partition_reason_counted_and_located(reasons_file: Path) -> None:
    text = reasons_file.read_text()
    data = decision_log(reasons_file, ["testing", "ccompiler"], PartitionOptions(min_size=2))
    s = data["summary"]
    assert s == summarize(data)  # the stored section is the function's output
    assert s["ops"] == 8  # fill, matmul, tanh, relu, add, tanh, add, exp
    # matmul 2*M*N*K = 128; each 4x4 elementwise op 16; fill 0
    assert s["flops"] == 128 + 6 * 16
    (testing,) = s["backends"]
    assert testing["backend"] == "testing"
    assert testing["regions"] == {
        "total": 1, "offloaded": 0, "fallback": 0, "iree": 0, "partitioned": 1
    }  # fmt: skip
    assert testing["ops_offloaded"] == 3
    assert testing["flops_offloaded"] == 128 + 16
    assert testing["flops_share"] == pytest.approx(144 / 224)
    assert s["host"] == {"ops": 5, "flops": 80, "flops_share": pytest.approx(80 / 224)}

    rows = [(r["kind"], r["category"], r["count"]) for r in s["host_table"]]
    assert rows == [
        ("linalg.generic", "rejected", 2),
        ("generic:exp", "rejected", 1),
        ("generic:add", "dropped: cycle", 1),
        ("generic:add", "dropped: region too small", 1),
    ]
    rejected, exp, cycle, small = s["host_table"]
    assert rejected["reasons"] == [  # two tanhs: deduplicated
        "testing: linalg.generic computing math.tanh is not supported; "
        "ccompiler: linalg.generic computing math.tanh is not supported",
    ]
    assert exp["reasons"] == [
        "testing: generic:exp is not supported; ccompiler: generic:exp is not supported"
    ]
    assert cycle["reasons"] == [
        "merging into a neighbouring testing region would create a cycle; "
        "alone it has 1 op(s) < min-size 2"
    ]
    assert small["reasons"] == ["1 op(s) < min-size 2"]
    # Each row points at the first such op in the source, file:line:col.
    assert rejected["location"].startswith(f"{reasons_file}:{op_line(text, 'math.tanh')}:")
    assert cycle["location"].startswith(f"{reasons_file}:{op_line(text, 'arith.addf')}:")
    assert small["location"].startswith(f"{reasons_file}:{op_line(text, 'arith.addf', 1)}:")
    for entry in [*data["host_ops"], *s["host_table"]]:  # type: ignore[list-item]
        assert LOCATION.match(entry["location"]), entry


def test_matmul_flops_are_2mnk(tmp_path: Path) -> None:
    fb = FuncBuilder("tensor<4x8xf32>", "tensor<8x16xf32>")
    path = tmp_path / "mm.mlir"
    path.write_text(fb.build(fb.tanh(fb.matmul(*fb.args))))
    s = decision_log(path, ["testing"])["summary"]
    assert s["backends"][0]["flops_offloaded"] == 2 * 4 * 16 * 8
    assert s["host"]["flops"] == 4 * 16  # one tanh per output element
    assert s["backends"][0]["ops_offloaded"] == 2 and s["ops"] == 3


def test_text_summary(reasons_file: Path) -> None:
    data = decision_log(reasons_file, ["testing", "ccompiler"], PartitionOptions(min_size=2))
    text = summary(data)
    assert text == summary(json.loads(json.dumps(data)))  # works on loaded report.json data
    lines = text.splitlines()
    assert lines[0] == "Offload summary: 8 compute op(s), 224 FLOP estimated"
    assert lines[2].split() == ["backend", "regions", "ops", "offloaded", "FLOPs", "offloaded"]
    assert lines[3].split() == "testing 1 partitioned 3 / 8 (37.5%) 144 FLOP (64.3%)".split()
    assert lines[4].split() == "(host) - 5 / 8 (62.5%) 80 FLOP (35.7%)".split()
    assert lines[6] == "Left on the host: 5 op(s) of 3 kind(s)"
    table = "\n".join(lines[7:])
    assert re.search(r"linalg\.generic\s+2\s+rejected\s+\S+reasons\.mlir:\d+:\d+", table)
    assert "      testing: linalg.generic computing math.tanh is not supported" in lines
    assert "      ccompiler: generic:exp is not supported" in lines
    assert re.search(r"generic:add\s+1\s+dropped: cycle\s+\S+:\d+:\d+", table)
    assert re.search(r"generic:add\s+1\s+dropped: region too small\s+\S+:\d+:\d+", table)
    assert max(len(line) for line in lines) <= WIDTH


def test_text_fits_100_columns_and_is_deterministic() -> None:
    long_path = "/very/" + "deep/" * 30 + "model.mlir:123:45"
    report = {
        "version": 1,
        "regions": [],
        "host_ops": [
            {"op": "linalg.generic", "function": "main", "location": long_path,
             "reason": "rejected: npu: " + "a very long reason " * 20},
            {"op": "linalg.pooling_nchw_max", "function": "main", "location": "unknown",
             "reason": "fallback: codegen failed: boom"},
        ] + [
            {"op": "linalg.generic", "function": "main", "location": "m.mlir:1:1",
             "reason": f"rejected: npu: reason {k}"} for k in range(5)
        ],
    }  # fmt: skip
    text = summary(report)
    assert text == summary(report)
    assert all(len(line) <= WIDTH for line in text.splitlines()), text
    # A long path is cut from the left: its file:line:col end survives.
    assert "/deep/model.mlir:123:45\n" in text and "  .../deep/" in text
    assert "(no location)" in text
    assert "(+3 more distinct reason(s) in report.json)" in text
    assert "FLOPs unknown (no op records)" in text  # no `ops`: counts from host_ops only
    assert summarize(report)["flops"] is None


def test_reason_categories_and_flop_units() -> None:
    assert reason_category("rejected: a: x; rejected: b: y") == ("rejected", "a: x; b: y")
    assert reason_category("dropped: cycle (why)") == ("dropped: cycle", "why")
    assert reason_category("dropped: region too small (1 op(s) < min-size 2)") == (
        "dropped: region too small",
        "1 op(s) < min-size 2",
    )
    assert reason_category("fallback: codegen failed: e") == ("fallback", "codegen failed: e")
    assert reason_category("placed: by plan") == ("placed", "by plan")
    assert [format_flops(n) for n in (0, 999, 1000, 2_730_000, 4 * 10**12, None)] == [
        "0 FLOP", "999 FLOP", "1 kFLOP", "2.73 MFLOP", "4 TFLOP", "n/a"
    ]  # fmt: skip


def test_host_only_report_has_an_empty_summary() -> None:
    empty = {"version": 1, "regions": [], "host_ops": []}
    assert summarize(empty)["ops"] == 0
    assert "no partitioned compute ops" in summary(empty)


def test_records_are_not_a_pass_option() -> None:
    assert "records" not in PartitionPass.options()
    assert PartitionPass.from_options("min-size=2", backends=("testing",)).min_size == 2
    with pytest.raises(ByocError, match="has no option 'records'"):
        PartitionPass.from_options("records=x")


# --- codegen fallback -------------------------------------------------------------------


class FirstFails:
    """A runtime-route backend for generic adds whose hook fails for region ``..._0``."""

    def __init__(self) -> None:
        self.backend = Toy("toy_first_fails_rt", "runtime").backend
        self.backend.codegen = self.hook

    def hook(self, view: RegionView, options: object) -> RuntimeArtifact:
        if view.name.endswith("_0"):
            raise RuntimeError("vendor compiler exploded")
        return RuntimeArtifact(b"add")


@pytest.fixture
def first_fails() -> Iterator[FirstFails]:
    f = FirstFails()
    registry.register(f.backend)
    yield f
    registry.unregister(f.backend.name)


def test_fallback_region_ops_are_host_ops(
    first_fails: FirstFails, model_file: Path, tmp_path: Path
) -> None:
    name = first_fails.backend.name
    c = compile(model_file, [name], out_dir=tmp_path / "b", options=CompileOptions(cache_dir=None))
    a, b = inputs()
    assert abs(c(a, b)[0] - expected(a, b)).max() < 1e-5
    data = json.loads((tmp_path / "b" / "report.json").read_text())
    assert data["version"] == 1 and data == c.report
    reason = "fallback: codegen failed: vendor compiler exploded"
    assert [r["status"] for r in data["regions"]] == [reason, "offloaded"]
    # The fallen-back region's op is a host op in `ops` too, with the same reason.
    first, tanh, second = data["ops"]
    assert (first["backend"], first["region"], first["reason"]) == (None, None, reason)
    assert (second["backend"], second["region"]) == (name, f"{name}.main_1")
    assert tanh["backend"] is None and tanh["reason"].startswith("rejected: ")
    s = data["summary"]
    (backend,) = s["backends"]
    assert backend["regions"] == {
        "total": 2, "offloaded": 1, "fallback": 1, "iree": 0, "partitioned": 0
    }  # fmt: skip
    assert (backend["ops_offloaded"], s["ops"]) == (1, 3)
    assert (backend["flops_offloaded"], s["flops"]) == (32, 96)  # three 4x8 elementwise ops
    assert s["host"]["ops"] == len(data["host_ops"]) == 2
    fallback = next(r for r in s["host_table"] if r["category"] == "fallback")
    assert (fallback["kind"], fallback["count"]) == ("generic:add", 1)
    assert fallback["reasons"] == ["codegen failed: vendor compiler exploded"]
    assert LOCATION.match(fallback["location"])
    text = summary(data)
    assert "1 offloaded, 1 fell back" in text
    assert re.search(r"generic:add\s+1\s+fallback\s+\S+model\.mlir:\d+:\d+", text)
    c.close()


@pytest.mark.parametrize("toy", ["wrong_symbol"], indirect=True)
def test_link_failure_fallback_updates_records(toy: Toy, model_file: Path, tmp_path: Path) -> None:
    c = compile(
        model_file,
        [toy.backend.name],
        out_dir=tmp_path / "b",
        options=CompileOptions(cache_dir=None),
    )
    ops = c.report["ops"]
    assert all(o["backend"] is None for o in ops)
    assert sum("IREE could not link" in (o["reason"] or "") for o in ops) == 2
    assert c.report["summary"]["backends"][0]["regions"]["fallback"] == 2
    c.close()


# --- command line -----------------------------------------------------------------------


def test_byoc_compile_report(reasons_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "b"
    run = subprocess.run(
        ["byoc-compile", str(reasons_file), "--backend", "testing", "--min-size", "2",
         "-o", str(out), "--no-cache", "--report"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "Offload summary: 8 compute op(s), 224 FLOP estimated" in run.stdout
    assert re.search(r"testing\s+1 by IREE\s+3 / 8 \(37\.5%\)", run.stdout)
    assert re.search(r"dropped: cycle\s+\S+reasons\.mlir:\d+:\d+", run.stdout)
    assert run.stderr == ""  # not a terminal: no progress bar
    data = json.loads((out / "report.json").read_text())
    assert summary(data) in run.stdout
    assert data["summary"]["backends"][0]["regions"]["iree"] == 1


def test_byoc_opt_report(reasons_file: Path) -> None:
    run = subprocess.run(
        ["byoc-opt", str(reasons_file), "--backend", "testing", "--partition", "--report"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "func.func @main" in run.stdout and "Offload" not in run.stdout
    assert "Offload summary: 8 compute op(s), 224 FLOP estimated" in run.stderr
    assert re.search(r"testing\s+3 partitioned\s+5 / 8", run.stderr)  # min-size 1: adds alone
    # Single passes: no op records, so counts come from the regions and host ops.
    single = subprocess.run(
        ["byoc-opt", str(reasons_file), "--backend", "testing", "--byoc-annotate",
         "--byoc-composites", "--byoc-merge-regions=min-size=2", "--byoc-outline", "--report"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert single.returncode == 0, single.stderr
    assert "Offload summary: 8 compute op(s), FLOPs unknown (no op records)" in single.stderr
    assert re.search(r"linalg\.generic\s+1\s+dropped: region too small", single.stderr)
    assert re.search(r"linalg\.generic\s+3\s+rejected\s+\S+reasons\.mlir:\d+:\d+", single.stderr)


def _stderr_on_a_terminal(args: list[str]) -> tuple[int, str]:
    """Runs ``args`` with stderr on a pseudo-terminal; returns (exit code, what it wrote)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 24x100
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                data = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=60), b"".join(chunks).decode(errors="replace")


def test_progress_on_a_terminal_only(model_file: Path, tmp_path: Path) -> None:
    base = ["byoc-compile", str(model_file), "--backend", "jsonrt", "--no-cache"]
    code, shown = _stderr_on_a_terminal([*base, "-o", str(tmp_path / "a")])
    assert code == 0, shown
    for step in ("import", "partition", "codegen jsonrt.main_0", "codegen jsonrt.main_1"):
        assert step in shown, shown
    assert "IREE compile" in shown and "byoc-compile:" in shown
    code, shown = _stderr_on_a_terminal([*base, "-o", str(tmp_path / "b"), "--quiet"])
    assert code == 0 and shown == "", shown
