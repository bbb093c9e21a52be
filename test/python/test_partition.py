"""The Python API end to end: `byoc_mlir.partition`, the decision log, inlining back.

Numeric checks compile the original and the partitioned module with IREE (the outlined
functions are private functions IREE inlines) and compare outputs on seeded inputs.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import (
    CALL_OPS,
    FREE_OPS,
    T44,
    TERMINATORS,
    VEC4,
    FuncBuilder,
    assert_same_numerics,
    body_ops,
    calls,
    compute_ops,
    contract_regions,
    diamond_text,
    functions,
    mlp_text,
    outlined,
    parse,
    partitioned,
    random_inputs,
    run_passes,
    run_with_iree,
)
from iree.compiler import ir

import byoc_mlir
from byoc_mlir import ByocError, DecisionLog, PartitionOptions
from byoc_mlir.dialects import byoc
from byoc_mlir.outlining import inline_region
from byoc_mlir.pipeline import partition_passes

TANH_REASON = "rejected: testing: linalg.generic computing math.tanh is not supported"


def alternating_text(breaks: int) -> str:
    """relu, tanh, relu, tanh, ..., relu: ``breaks`` unsupported ops between supported ones."""
    fb = FuncBuilder(T44)
    x = fb.relu(fb.args[0])
    for _ in range(breaks):
        x = fb.relu(fb.tanh(x))
    return fb.build(x)


def mixed_text() -> tuple[str, str]:
    """An MLP layer, a tanh, a diamond after it; returns (text, the tanh's SSA name)."""
    fb = FuncBuilder(T44, T44, VEC4, T44)
    x, w, b, w2 = fb.args
    h = fb.relu(fb.bias_add(fb.matmul(x, w), b))
    t = fb.tanh(h)
    m = fb.matmul(t, w2)
    y = fb.add(fb.exp(m), fb.relu(m))
    return fb.build(y, h), t


def _host_compute(module: ir.Module, func: str = "main") -> list[ir.Operation]:
    skip = FREE_OPS | CALL_OPS | TERMINATORS
    return [o for o in body_ops(functions(module)[func]) if o.name not in skip]


# --- regions ------------------------------------------------------------------------------------


def test_mlp_chain_is_one_region() -> None:
    text = mlp_text(layers=3)
    module = partitioned(text)
    assert list(outlined(module)) == ["testing.main_0"]
    assert calls(functions(module)["main"]) == ["testing.main_0"]
    assert _host_compute(module) == []
    func = outlined(module)["testing.main_0"]
    assert byoc.get_target(func) == "testing"
    assert byoc.get_composites(func) == ["matmul_bias_relu"]
    # Every op of every layer moved, each composite kept its own id.
    assert compute_ops(module) == compute_ops(parse(text))
    ids = {byoc.get_composite(o).id for o in body_ops(func) if byoc.get_composite(o)}
    assert len(ids) == 3


def test_mlp_with_torch_relu_is_one_region() -> None:
    module = partitioned(mlp_text(layers=2, relu_form="torch"))
    assert list(outlined(module)) == ["testing.main_0"]
    assert byoc.get_composites(outlined(module)["testing.main_0"]) == ["matmul_bias_relu"]


@pytest.mark.parametrize("breaks", [1, 2, 4])
def test_alternating_ops_give_one_region_per_run(breaks: int) -> None:
    module = partitioned(alternating_text(breaks))
    names = [f"testing.main_{k}" for k in range(breaks + 1)]
    assert sorted(outlined(module)) == names
    assert calls(functions(module)["main"]) == names
    host = _host_compute(module)
    assert len(host) == breaks
    assert all(byoc.get_reason(o) == TANH_REASON for o in host)
    for func in outlined(module).values():
        assert [o.name for o in body_ops(func) if o.name == "linalg.generic"] == ["linalg.generic"]


def test_diamond_is_split_to_avoid_a_cycle() -> None:
    module = partitioned(diamond_text())
    # matmul and relu may share a region; the add needs tanh(matmul), so it cannot join them.
    main = functions(module)["main"]
    assert len(calls(main)) == 2
    assert [byoc.get_reason(o) for o in _host_compute(module)] == [TANH_REASON]
    tagged = run_passes(diamond_text(), partition_passes(["testing"])[:3])
    succs, order = contract_regions(functions(tagged)["main"])
    assert len(order) == len(succs)


def test_graph_users_are_the_ir_uses() -> None:
    """`FunctionGraph.succs` (built once, read instead of the IR by composites and
    outlining) lists exactly the nodes using each node, the terminator as `RETURN`."""
    from byoc_mlir.dataflow import RETURN, function_graphs

    for text in (diamond_text(), mlp_text(3), mlp_text(2, relu_form="torch")):
        module = parse(text)
        with module.context:
            for graph in function_graphs(module.operation):
                for i, op in enumerate(graph.ops):
                    users = {graph.node_of(use.owner) for r in op.results for use in r.uses}
                    expected = {RETURN if u is None else u for u in users}
                    assert sorted(graph.succs[i]) == sorted(expected), op.name
                    assert len(graph.succs[i]) == len(set(graph.succs[i]))


def test_partition_needs_a_backend() -> None:
    with pytest.raises(ByocError, match="at least one backend"):
        partitioned(mlp_text(layers=1), [])


def test_partition_accepts_backend_values() -> None:
    text = mlp_text(layers=1)
    by_value = partitioned(text, [byoc_mlir.codegen.registry.get("testing")])
    assert str(by_value) == str(partitioned(text))


def test_partition_needs_no_ambient_context() -> None:
    module = parse(mlp_text(layers=1))
    byoc_mlir.partition(module.operation, ["testing"])
    assert list(outlined(module)) == ["testing.main_0"]


def test_partition_ignores_an_unrelated_ambient_context() -> None:
    """Attributes must be made in the module's context, not in whatever context is entered."""
    module = parse(mlp_text(layers=1))
    with ir.Context():
        byoc_mlir.partition(module.operation, ["testing"])
    assert module.operation.verify()
    assert list(outlined(module)) == ["testing.main_0"]
    assert byoc.get_composites(outlined(module)["testing.main_0"]) == ["matmul_bias_relu"]


def test_tag_helpers_use_the_ops_context() -> None:
    module = parse(mlp_text(layers=1))
    fill = next(o for o in body_ops(functions(module)["main"]) if o.name == "linalg.fill")
    with ir.Context():
        byoc.set_reason(fill, "dropped: region too small (1 op(s) < min-size 2)")
    assert module.operation.verify()


def test_priority_order_decides_the_backend() -> None:
    fb = FuncBuilder(T44, T44)
    text = fb.build(fb.relu(fb.matmul(*fb.args)))
    module = partitioned(text, ["testing_matmul", "testing"])
    # fill -> matmul -> relu: the matmul goes to testing_matmul (listed first); fill and relu
    # stay apart, as joining them around the matmul's region would form a cycle.
    by_target = {byoc.get_target(f): [] for f in outlined(module).values()}
    for f in outlined(module).values():
        by_target[byoc.get_target(f)].append([o.name for o in body_ops(f)[:-1]])
    assert by_target["testing_matmul"] == [["linalg.matmul"]]
    assert sorted(ops[-1] for ops in by_target["testing"]) == ["linalg.fill", "linalg.generic"]
    assert_same_numerics(text, str(module))
    module = partitioned(text, ["testing", "testing_matmul"])
    assert [byoc.get_target(f) for f in outlined(module).values()] == ["testing"]


def test_util_func_module_is_partitioned_with_util_ops() -> None:
    """``iree-compile --compile-to=input`` gives ``util.func``; outlining keeps that flavor."""
    text = mlp_text(layers=2, flavor="util")
    module = partitioned(text)
    main = functions(module)["main"]
    assert main.name == "util.func"
    (func,) = outlined(module).values()
    assert func.name == "util.func"
    assert [o.name for o in body_ops(main) if o.name in CALL_OPS] == ["util.call"]
    assert body_ops(func)[-1].name == "util.return"
    assert_same_numerics(text, str(module))
    inline_region(module.operation, "testing.main_0", "fallback: codegen failed: x")
    assert outlined(module) == {} and module.operation.verify()
    assert compute_ops(module) == compute_ops(parse(text))


def test_every_function_is_partitioned_with_unique_names() -> None:
    first = FuncBuilder(T44, name="main")
    second = FuncBuilder(T44, name="other")
    third = FuncBuilder(T44, name="testing.main_0")  # takes the name outlining would pick
    text = "".join(
        fb.build(fb.relu(fb.tanh(fb.relu(fb.args[0])))) for fb in (first, second)
    ) + third.build(third.tanh(third.args[0]))
    module = partitioned(text)
    assert sorted(outlined(module)) == [
        "testing.main_0_1",
        "testing.main_1",
        "testing.other_0",
        "testing.other_1",
    ]
    assert calls(functions(module)["main"]) == ["testing.main_0_1", "testing.main_1"]
    assert calls(functions(module)["other"]) == ["testing.other_0", "testing.other_1"]
    # The function that merely has a dotted name is not an outlined region: it is partitioned too.
    (tanh,) = _host_compute(module, "testing.main_0")
    assert byoc.get_reason(tanh) == TANH_REASON
    log = DecisionLog.from_module(module.operation)
    assert {r.name: r.function for r in log.regions} == {
        "testing.main_0_1": "main",
        "testing.main_1": "main",
        "testing.other_0": "other",
        "testing.other_1": "other",
    }


@pytest.mark.parametrize(
    ("symbol", "fragment"),
    [('"my-model.forward"', "my_model_forward"), ('"0day"', "_0day"), ('"@@"', "fn")],
)
def test_outlined_names_are_sanitised(symbol: str, fragment: str) -> None:
    fb = FuncBuilder(T44, name=symbol)
    module = partitioned(fb.build(fb.relu(fb.args[0])))
    assert list(outlined(module)) == [f"testing.{fragment}_0"]
    assert re.fullmatch(r"testing\.[A-Za-z_][A-Za-z0-9_]*", next(iter(outlined(module))))


@pytest.mark.parametrize(
    ("options", "inputs"),
    [
        (PartitionOptions(), [T44]),
        (PartitionOptions(clone_limit=4), [T44, T44]),
        (PartitionOptions(clone_limit=4, move_weights=True), [T44]),
    ],
)
def test_weights_are_cloned_or_passed(options: PartitionOptions, inputs: list[str]) -> None:
    fb = FuncBuilder(T44)
    module = partitioned(fb.build(fb.relu(fb.add(fb.args[0], fb.weights(T44)))), options=options)
    (entry,) = DecisionLog.from_module(module.operation).to_json()["regions"]
    assert entry["inputs"] == inputs
    assert module.operation.verify()


# --- the decision log ---------------------------------------------------------------------------


def test_decision_log_schema() -> None:
    text, tanh = mixed_text()
    module = partitioned(text)
    log = DecisionLog.from_module(module.operation).to_json()
    assert log["version"] == 1
    assert set(log) == {"version", "regions", "host_ops", "summary"}  # `ops`: only with records
    assert len(log["regions"]) == len(outlined(module)) >= 2
    for entry in log["regions"]:
        assert {"name", "backend", "composites", "ops", "inputs", "outputs", "status"} <= set(entry)
        assert entry["name"] in outlined(module)
        assert entry["backend"] == "testing"
        assert entry["status"] == "partitioned"
        assert entry["function"] == "main"
        assert all(isinstance(t, str) and t.startswith("tensor<") for t in entry["inputs"])
        assert entry["outputs"] and all(t.startswith("tensor<") for t in entry["outputs"])
        assert entry["ops"] and "func.return" not in entry["ops"]
    first = log["regions"][0]
    assert first["composites"] == ["matmul_bias_relu"]
    assert first["ops"] == ["linalg.fill", "linalg.matmul", "linalg.generic", "linalg.generic"]
    assert first["inputs"] == [T44, T44, VEC4]

    hosts = log["host_ops"]
    assert {h["op"] for h in hosts} == {"linalg.generic"}
    for h in hosts:
        assert set(h) >= {"op", "location", "reason"}
        assert re.fullmatch(
            r"rejected: testing: (linalg\.generic computing math\.tanh|generic:exp) is not "
            r"supported",
            h["reason"],
        )
    # The location points at the op's own line of the input.
    tanh_entry = next(h for h in hosts if "tanh" in h["reason"])
    line = int(re.fullmatch(r".+:(\d+):\d+", tanh_entry["location"]).group(1))
    assert text.splitlines()[line - 1].lstrip().startswith(f"{tanh} = linalg.generic")
    # to_json is JSON as is, and dumps is the same document.
    assert json.loads(DecisionLog.from_module(module.operation).dumps()) == log


def test_decision_log_of_unpartitioned_module_is_empty() -> None:
    log = DecisionLog.from_module(parse(mlp_text(layers=1)).operation).to_json()
    assert log == {"version": 1, "regions": [], "host_ops": [], "summary": log["summary"]}
    assert log["summary"]["ops"] == 0


def test_partition_is_deterministic() -> None:
    text, _ = mixed_text()
    runs = []
    for _ in range(2):
        module = partitioned(text, ["testing_matmul", "testing"])
        runs.append((str(module), DecisionLog.from_module(module.operation).dumps()))
    assert runs[0] == runs[1]
    assert "testing_matmul." in runs[0][0]


def test_min_size_drops_small_regions_with_a_reason() -> None:
    fb = FuncBuilder(T44, T44, VEC4)
    x, w, b = fb.args
    small = fb.relu(x)
    big = fb.relu(fb.bias_add(fb.matmul(fb.tanh(small), w), b))
    text = fb.build(big)
    module = partitioned(text, options=PartitionOptions(min_size=2))
    assert len(outlined(module)) == 1
    hosts = DecisionLog.from_module(module.operation).host_ops
    assert [(h.op, h.reason) for h in hosts] == [
        ("linalg.generic", "dropped: region too small (1 op(s) < min-size 2)"),
        ("linalg.generic", TANH_REASON),
    ]
    assert compute_ops(module) == compute_ops(parse(text))
    # min-size counts ops, not composites: the composite region (4 ops) stays at min-size 4.
    module = partitioned(text, options=PartitionOptions(min_size=4))
    assert len(outlined(module)) == 1
    module = partitioned(text, options=PartitionOptions(min_size=5))
    assert outlined(module) == {}
    reasons = [h.reason for h in DecisionLog.from_module(module.operation).host_ops]
    assert reasons.count("dropped: region too small (4 op(s) < min-size 5)") == 4


def test_max_size_bounds_regions() -> None:
    fb = FuncBuilder(T44)
    x = fb.args[0]
    for _ in range(5):
        x = fb.relu(x)
    module = partitioned(fb.build(x), options=PartitionOptions(max_size=2))
    sizes = [
        sum(o.name == "linalg.generic" for o in body_ops(f)) for f in outlined(module).values()
    ]
    assert sizes == [2, 2, 1]


# --- inlining back --------------------------------------------------------------------------------


def test_inline_region_unknown_function_raises() -> None:
    module = partitioned(mlp_text(layers=1))
    with pytest.raises(ByocError, match="no outlined function named @testing.nope"):
        inline_region(module.operation, "testing.nope", "fallback: codegen failed: x")
    with pytest.raises(ByocError, match="no outlined function named @main"):
        inline_region(module.operation, "main", "fallback: codegen failed: x")


def test_inline_region_round_trip_runs_with_the_same_numbers() -> None:
    text = mlp_text(layers=2)
    module = partitioned(text)
    reason = "fallback: codegen failed: test error"
    assert inline_region(module.operation, "testing.main_0", reason) == 1
    assert module.operation.verify()
    assert outlined(module) == {}
    main = functions(module)["main"]
    assert calls(main) == []
    host = _host_compute(module)
    assert compute_ops(module) == compute_ops(parse(text))
    assert host and all(byoc.get_reason(o) == reason for o in host)
    log = DecisionLog.from_module(module.operation)
    assert log.regions == []
    assert {h.reason for h in log.host_ops} == {reason}
    assert_same_numerics(text, str(module))


def test_inline_one_of_several_regions() -> None:
    text = alternating_text(2)
    module = partitioned(text)
    inline_region(module.operation, "testing.main_1", "fallback: codegen failed: x")
    assert sorted(outlined(module)) == ["testing.main_0", "testing.main_2"]
    assert calls(functions(module)["main"]) == ["testing.main_0", "testing.main_2"]
    assert compute_ops(module) == compute_ops(parse(text))
    assert module.operation.verify()


# --- numerics with IREE ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", [mlp_text(layers=2), diamond_text(), mixed_text()[0]], ids=["mlp", "diamond", "mixed"]
)
def test_partitioned_module_computes_the_same_values(text: str) -> None:
    module = partitioned(text)
    assert outlined(module)
    assert_same_numerics(text, str(module), seed=1)


def test_numeric_check_can_fail() -> None:
    """Guards the harness: a genuinely different module must not compare equal."""
    text = mlp_text(layers=2)
    other = text.replace("arith.addf", "arith.subf")
    with pytest.raises(AssertionError, match="Not equal to tolerance"):
        assert_same_numerics(text, other, seed=1)


def test_outputs_stay_valid_after_later_runs() -> None:
    """Guards the harness: results must not alias device memory a later run reuses."""
    text = mlp_text(layers=2)
    inputs = random_inputs(text, seed=3)
    first = run_with_iree(text, inputs)[0]
    snapshot = first.copy()
    for seed in range(3):
        run_with_iree(text, random_inputs(text, seed=seed + 10))
    np.testing.assert_array_equal(first, snapshot)
