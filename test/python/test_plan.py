"""Placement plans: save -> replay gives the same partition; edits change it (an op forced
to the host, a region moved to another backend) and still compute the same numbers; a
stale, malformed, refused or cyclic plan is a clear, located error."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import T44, VEC4, FuncBuilder, parse

from byoc_mlir import ByocError, Compiled, CompileOptions, DecisionLog, compile, partition
from byoc_mlir.errors import pretty_location
from byoc_mlir.explain.plan import VERSION, Plan, load_plan, save_plan
from byoc_mlir.tools import byoc_compile

OPTIONS = CompileOptions(cache_dir=None)


def model(variant: str = "") -> tuple[str, dict[str, str]]:
    """Three regions for ccompiler/testing, two with a matmul_bias_relu composite:

    main#0-3 fill, matmul, bias, relu | main#4 tanh (host) | main#5-8 fill, matmul, bias,
    relu | main#9 exp (host) | main#10 mul. Returns (text, SSA names of some ops).
    ``variant`` changes the model the way a stale plan would meet it.
    """
    fb = FuncBuilder(T44, T44, VEC4, T44, VEC4)
    x, w0, b0, w1, b1 = fb.args
    bias0 = fb.bias_add(fb.matmul(x, w0), b0)
    h = fb.relu(bias0)
    t = fb.tanh(h)
    if variant == "added":
        t = fb.tanh(t)  # a new main#5; the old main#5 (a fill) moves to main#6
    y = fb.relu(fb.bias_add(fb.matmul(t, w1), b1))
    e = y if variant == "removed" else fb.exp(y)  # without the exp, main#9 is the mul
    z = fb.sub(e, y) if variant == "changed" else fb.mul(e, y)
    if variant == "appended":
        z = fb.add(z, y)
    names = {"bias0": bias0, "tanh": t, "exp": e, "last": z}
    return fb.build(z), names


def line_of(text: str, ssa: str) -> int:
    """1-based line where ``ssa`` is defined."""
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith(f"{ssa} = "):
            return n
    raise AssertionError(ssa)


def partitioned(
    text: str, backends: list[str] | None = None, plan: Path | None = None
) -> tuple[str, DecisionLog]:
    """Partitions (or replays ``plan``); returns the printed module and its decision log."""
    module = parse(text)
    records: list[Any] = []
    partition(module.operation, backends or [], records=records, plan=plan)
    log = DecisionLog.from_module(module.operation)
    log.ops = records
    return str(module), log


def saved(tmp_path: Path, backends: list[str], text: str | None = None) -> Path:
    text = text or model()[0]
    module = parse(text)
    records: list[Any] = []
    partition(module.operation, backends, records=records)
    path = tmp_path / "plan.json"
    save_plan(records, backends, path)
    return path


def edit(path: Path, name: str, change: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of the plan at ``path`` with ``change`` applied to its JSON."""
    data = json.loads(path.read_text())
    change(data)
    out = path.with_name(name)
    out.write_text(json.dumps(data, indent=1))
    return out


def set_ops(**fields_by_id: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        for op in data["ops"]:
            op.update(fields_by_id.get(op["id"].replace("#", "_"), {}))

    return change


# --- round trip ------------------------------------------------------------------------


@pytest.mark.parametrize("backends", [["testing"], ["ccompiler", "jsonrt"]])
def test_replay_gives_the_identical_partition(tmp_path: Path, backends: list[str]) -> None:
    text = model()[0]
    original, log = partitioned(text, backends)
    assert len(log.regions) == 3
    assert [r.composites for r in log.regions] == [["matmul_bias_relu"]] * 2 + [[]]
    path = tmp_path / "plan.json"
    plan = save_plan(log.ops, backends, path)
    assert load_plan(path).ops == plan.ops
    replayed, replay_log = partitioned(text, plan=path)
    assert replayed == original
    assert [asdict(r) for r in replay_log.regions] == [asdict(r) for r in log.regions]
    assert replay_log.host_ops == log.host_ops
    assert Plan.from_records(replay_log.ops, backends).dumps() == plan.dumps()


def test_plan_file_format(tmp_path: Path) -> None:
    path = saved(tmp_path, ["testing"])
    lines = path.read_text().splitlines()
    data = json.loads(path.read_text())
    assert data["version"] == VERSION and data["backends"] == ["testing"]
    assert data["fingerprint"].startswith("sha256:")
    assert len(data["ops"]) == 11 and len(lines) == 8 + 11  # one op per line
    first = data["ops"][1]
    assert first == {
        "id": "main#1",
        "backend": "testing",
        "region": "testing.main_0",
        "composite": "matmul_bias_relu",
        "op": "linalg.matmul",
        "kind": "linalg.matmul",
        "types": "tensor<4x4xf32>",
        "location": first["location"],
    }
    assert data["ops"][4]["backend"] is None and data["ops"][4]["region"] is None


def test_byoc_compile_save_then_replay(tmp_path: Path) -> None:
    src = tmp_path / "model.mlir"
    src.write_text(model()[0])
    plan = tmp_path / "plan.json"
    common = ["--quiet", "--no-cache"]
    byoc_compile.run(
        [
            str(src),
            "--backend",
            "ccompiler",
            "--save-plan",
            str(plan),
            "-o",
            str(tmp_path / "a"),
            *common,
        ]
    )
    byoc_compile.run([str(src), "--plan", str(plan), "-o", str(tmp_path / "b"), *common])
    a, b = (json.loads((tmp_path / d / "report.json").read_text()) for d in "ab")
    assert [r["status"] for r in a["regions"]] == ["offloaded"] * 3
    assert b["regions"] == a["regions"]
    assert load_plan(plan).backends == ["ccompiler"]


# --- edited plans ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def host_build(tmp_path_factory: pytest.TempPathFactory) -> Compiled:
    out = tmp_path_factory.mktemp("host") / "b"
    return compile(model()[0], ["none"], out_dir=out, options=OPTIONS)


def assert_matches_host(c: Compiled, host: Compiled) -> None:
    inputs = c.random_inputs(5)
    np.testing.assert_allclose(c(*inputs)[0], host(*inputs)[0], rtol=1e-4, atol=1e-4)


def test_op_forced_to_the_host(tmp_path: Path, host_build: Compiled) -> None:
    # main#2 is the first block's bias-add, inside matmul_bias_relu: the composite goes,
    # and the region splits around the host op (fill + matmul before it, relu after).
    plan = edit(saved(tmp_path, ["ccompiler"]), "host.json", set_ops(main_2={"backend": None}))
    options = CompileOptions(cache_dir=None, plan=plan)
    c = compile(model()[0], out_dir=tmp_path / "b", options=options)
    regions = c.report["regions"]
    assert [(r["name"], r["ops"], r["composites"]) for r in regions[:2]] == [
        ("ccompiler.main_0", ["linalg.fill", "linalg.matmul"], []),
        ("ccompiler.main_1", ["linalg.generic"], []),
    ]
    assert len(regions) == 4 and all(r["status"] == "offloaded" for r in regions)
    reasons = [h["reason"] for h in c.report["host_ops"]]
    assert reasons[0] == f"placed on the host by plan {plan}"
    assert reasons[1].startswith("rejected: ccompiler: ")  # the tanh keeps its reason
    bias = next(o for o in c.report["ops"] if o["id"] == "main#2")
    assert bias["backend"] is None and bias["reason"] == f"placed on the host by plan {plan}"
    assert_matches_host(c, host_build)


def test_region_moved_to_another_backend(tmp_path: Path, host_build: Compiled) -> None:
    def move(data: dict[str, Any]) -> None:
        data["backends"].append("jsonrt")
        for op in data["ops"]:
            if op["region"] == "ccompiler.main_1":
                op["backend"] = "jsonrt"

    plan = edit(saved(tmp_path, ["ccompiler"]), "moved.json", move)
    c = compile(
        model()[0], out_dir=tmp_path / "b", options=CompileOptions(cache_dir=None, plan=plan)
    )
    routes = {r["name"]: (r["route"], r["composites"]) for r in c.report["regions"]}
    assert routes == {
        "ccompiler.main_0": ("linked", ["matmul_bias_relu"]),
        "jsonrt.main_1": ("runtime", ["matmul_bias_relu"]),  # jsonrt's pattern of that name
        "ccompiler.main_2": ("linked", []),
    }
    assert_matches_host(c, host_build)


def test_composite_dropped_by_the_plan(tmp_path: Path) -> None:
    plan = edit(
        saved(tmp_path, ["testing"]),
        "nocomp.json",
        set_ops(main_1={"composite": None}, main_2={"composite": None}, main_3={"composite": None}),
    )
    _, log = partitioned(model()[0], plan=plan)
    assert [r.composites for r in log.regions] == [[], ["matmul_bias_relu"], []]
    assert [len(r.ops) for r in log.regions] == [4, 4, 1]


def test_ops_joined_and_split_by_labels(tmp_path: Path) -> None:
    # The second block's fill joins the first region; the first block's fill gets its own.
    plan = edit(
        saved(tmp_path, ["testing"]),
        "labels.json",
        set_ops(main_5={"region": "testing.main_0"}, main_0={"region": "mine"}),
    )
    _, log = partitioned(model()[0], plan=plan)
    assert [len(r.ops) for r in log.regions] == [1, 4, 3, 1]
    assert [r.composites for r in log.regions] == [[], *[["matmul_bias_relu"]] * 2, []]


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "op_id", "ssa", "detail"),
    [
        (
            "added",
            "main#5",
            "tanh",
            "is linalg.fill -> tensor<4x4xf32> in the plan but "
            "linalg.generic -> tensor<4x4xf32> in the model",
        ),
        (
            "removed",
            "main#9",
            "last",
            "is linalg.generic (generic:exp) -> tensor<4x4xf32> in the plan but "
            "linalg.generic (generic:mul) -> tensor<4x4xf32> in the model",
        ),
        (
            "changed",
            "main#10",
            "last",
            "is linalg.generic (generic:mul) -> tensor<4x4xf32> in the plan but "
            "linalg.generic (generic:sub) -> tensor<4x4xf32> in the model",
        ),
        (
            "appended",
            "main#11",
            "last",
            "linalg.generic (generic:add) -> tensor<4x4xf32>, is not in the plan",
        ),
    ],
    ids=["added", "removed", "changed", "appended"],
)
def test_stale_plan_names_the_first_differing_op(
    tmp_path: Path, variant: str, op_id: str, ssa: str, detail: str
) -> None:
    plan = saved(tmp_path, ["testing"])
    text, names = model(variant)
    with pytest.raises(ByocError) as err:
        partitioned(text, plan=plan)
    message = err.value.message
    assert message.startswith(f"placement plan {plan} is stale (it does not match this model): ")
    assert op_id in message and detail in message, message
    assert pretty_location(err.value.location).startswith(f"-:{line_of(text, names[ssa])}:")
    assert "--save-plan" in err.value.hint


def test_plan_listing_ops_the_model_lacks(tmp_path: Path) -> None:
    plan = saved(tmp_path, ["testing"], model("appended")[0])
    with pytest.raises(
        ByocError,
        match=r"lists main#11, linalg.generic \(generic:add\).*"
        r"which the model does not have \(@main has 11 compute op\(s\)\)",
    ):
        partitioned(model()[0], plan=plan)


def _fingerprint(data: dict[str, Any]) -> None:
    data["fingerprint"] = "sha256:0"


def _version(data: dict[str, Any]) -> None:
    data["version"] = 2


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("{not json", r"not valid JSON \(line 1, column 2: Expecting property name"),
        ("[1, 2]", r"not a byoc_mlir placement plan \(a JSON object with \"version\""),
        (_version, r"placement plan version 2 is not supported \(valid: 1\)"),
        (lambda d: d.pop("backends"), r'the plan has no "backends" field \(a list of backend'),
        (lambda d: d["ops"][3].pop("region"), r'ops\[3\] has no "region" field \(a string or null'),
        (
            lambda d: d["ops"][3].update(backend=1),
            r'ops\[3\]: "backend" must be a string or null, not 1',
        ),
        (
            lambda d: d["ops"][3].update(backnd=None),
            r"ops\[3\] has an unknown field 'backnd' "
            r"\(fields: backend, composite, id, kind, location, op, region, types\)",
        ),
        (lambda d: d["ops"][3].update(id="main#2"), r"ops\[3\]: op id 'main#2' appears twice"),
        (
            lambda d: d["ops"][3].update(backend="jsonrt"),
            r"ops\[3\] \(main#3\) is placed on 'jsonrt', which is not in the plan's "
            r"\"backends\" \(testing\); add it there",
        ),
        (lambda d: d["backends"].append("nope"), r"unknown backend 'nope'; known backends: "),
        (_fingerprint, r"fingerprint does not match the model although every op does"),
    ],
    ids=[
        "json",
        "not-a-plan",
        "version",
        "no-backends",
        "no-region",
        "mistyped",
        "unknown-field",
        "duplicate-id",
        "unlisted-backend",
        "unknown-backend",
        "fingerprint",
    ],
)
def test_malformed_plan(tmp_path: Path, change: Any, expected: str) -> None:
    good = saved(tmp_path, ["testing"])
    if isinstance(change, str):
        bad = tmp_path / "bad.json"
        bad.write_text(change)
    else:
        bad = edit(good, "bad.json", change)
    with pytest.raises(ByocError, match=expected) as err:
        partitioned(model()[0], plan=bad)
    assert str(bad) in err.value.format()


def test_backend_refusing_a_planned_op(tmp_path: Path) -> None:
    text, names = model()
    plan = edit(
        saved(tmp_path, ["testing"]), "refused.json", set_ops(main_4={"backend": "testing"})
    )
    with pytest.raises(ByocError) as err:
        partitioned(text, plan=plan)
    assert err.value.message == (
        f"placement plan {plan} puts main#4 (linalg.generic) on testing, which refuses it: "
        "linalg.generic computing math.tanh is not supported"
    )
    assert pretty_location(err.value.location).startswith(f"-:{line_of(text, names['tanh'])}:")


def test_region_label_mixing_backends(tmp_path: Path) -> None:
    plan = edit(
        saved(tmp_path, ["testing", "testing_matmul"]),
        "mixed.json",
        set_ops(main_1={"backend": "testing_matmul"}),
    )
    with pytest.raises(
        ByocError,
        match="region 'testing.main_0' mixes backends: main#0 is on "
        "testing, main#1 on testing_matmul",
    ):
        partitioned(model()[0], plan=plan)


def cycle_model() -> str:
    """p = a+b; r = a*b; q = p+r; s = p*r. Regions {p, s} and {r, q} feed each other."""
    fb = FuncBuilder(T44, T44)
    a, b = fb.args
    p, r = fb.add(a, b), fb.mul(a, b)
    return fb.build(fb.add(p, r), fb.mul(p, r))


def test_plan_regions_in_a_cycle_are_a_located_error(tmp_path: Path) -> None:
    text = cycle_model()
    (tmp_path / "model.mlir").write_text(text)
    labels = {"main#0": "A", "main#1": "B", "main#2": "B", "main#3": "A"}
    plan = edit(
        saved(tmp_path, ["testing"], text),
        "cycle.json",
        lambda d: [op.update(region=labels[op["id"]]) for op in d["ops"]],
    )
    with pytest.raises(
        ByocError,
        match=r"tagged regions depend on each other in a cycle "
        r"\(testing region 0, testing region 1\)",
    ) as err:
        partitioned(text, plan=plan)
    assert pretty_location(err.value.location).startswith("-:")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "byoc_mlir.tools.byoc_opt",
            str(tmp_path / "model.mlir"),
            "--plan",
            str(plan),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and result.stdout == ""
    assert "Traceback" not in result.stderr
    assert f"{tmp_path / 'model.mlir'}:" in result.stderr and "in a cycle" in result.stderr


def test_failed_compile_leaves_the_saved_plan_alone(tmp_path: Path) -> None:
    plan = saved(tmp_path, ["testing"])
    before = plan.read_text()
    options = CompileOptions(cache_dir=None, plan=plan, save_plan=plan)
    with pytest.raises(ByocError, match="is stale"):
        compile(model("changed")[0], out_dir=tmp_path / "b", options=options)
    assert plan.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"]


def test_backends_must_agree_with_the_plan(tmp_path: Path) -> None:
    plan = saved(tmp_path, ["testing"])
    with pytest.raises(ByocError, match=r"is for backends testing \(priority order\), not jsonrt"):
        compile(model()[0], ["jsonrt"], options=CompileOptions(cache_dir=None, plan=plan))
    with pytest.raises(ByocError, match="byoc-compile needs --backend NAME \\(or --plan FILE\\)"):
        byoc_compile.run([str(tmp_path / "m.mlir"), "-o", str(tmp_path / "b")])
    with pytest.raises(ByocError, match="saving a placement plan needs a backend"):
        compile(model()[0], ["none"], options=CompileOptions(cache_dir=None, save_plan=plan))
