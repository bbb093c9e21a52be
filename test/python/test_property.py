"""Property tests: partitioning random DAGs keeps the module valid, complete and acyclic.

A random DAG mixes ops the ``testing`` backend runs (elementwise add/mul, relu in both
forms, bias-add, matmul with fill) with ops it refuses (tanh, exp); every node reads one
or two earlier values or function arguments; all tensors are 4x4 f32. For each DAG:

(a) the partitioned module verifies (SSA dominance: no call reads a later value);
(b) every original compute op appears exactly once, on the host or in one outlined
    function, and only supported ops are outlined;
(c) after merge-regions (tags only), contracting each (byoc.target, byoc.region) to one
    node leaves the dataflow graph acyclic — checked by an independent topological sort
    (`conftest.contract_regions`), not byoc_mlir's own graph code;
(d) on a few graphs, IREE computes the same outputs for the original and partitioned module.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from conftest import (
    CALL_OPS,
    FREE_OPS,
    T44,
    VEC4,
    FuncBuilder,
    assert_same_numerics,
    body_ops,
    calls,
    compute_ops,
    compute_signature,
    contract_regions,
    functions,
    outlined,
    parse,
    partitioned,
    run_passes,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from byoc_mlir import DecisionLog, PartitionOptions
from byoc_mlir.dialects import byoc
from byoc_mlir.pipeline import partition_passes

# kind -> number of tensor inputs drawn from earlier values
ARITY = {
    "add": 2,
    "mul": 2,
    "matmul": 2,
    "relu": 1,
    "relu_torch": 1,
    "bias_add": 1,  # plus the function's bias argument
    "tanh": 1,
    "exp": 1,
}
UNSUPPORTED = ("tanh", "exp")
KINDS = tuple(ARITY)
N_TENSOR_ARGS = 2  # %arg0, %arg1: 4x4; %arg2: the 4-element bias


@dataclass(frozen=True)
class Dag:
    """Nodes in program order: (kind, indices of inputs); index < 2 is a function argument,
    index k >= 2 is node k - 2. ``extra_outputs`` are returned besides the sinks."""

    nodes: tuple[tuple[str, tuple[int, ...]], ...]
    extra_outputs: frozenset[int]

    def text(self) -> str:
        fb = FuncBuilder(T44, T44, VEC4)
        values = fb.args[:N_TENSOR_ARGS]
        bias = fb.args[N_TENSOR_ARGS]
        used: set[int] = set()
        for kind, inputs in self.nodes:
            xs = [values[i] for i in inputs]
            used.update(inputs)
            if kind == "matmul":
                v = fb.matmul(*xs)
            elif kind == "bias_add":
                v = fb.bias_add(xs[0], bias)
            elif kind == "relu_torch":
                v = fb.relu(xs[0], form="torch")
            else:
                v = getattr(fb, kind)(*xs)
            values.append(v)
        n = len(self.nodes)
        outputs = [k for k in range(n) if k + N_TENSOR_ARGS not in used or k in self.extra_outputs]
        return fb.build(*(values[k + N_TENSOR_ARGS] for k in outputs))


@st.composite
def dags(draw: st.DrawFn, min_nodes: int = 3, max_nodes: int = 25) -> Dag:
    n = draw(st.integers(min_nodes, max_nodes))
    nodes = []
    for k in range(n):
        kind = draw(st.sampled_from(KINDS))
        pool = N_TENSOR_ARGS + k
        # Prefer recent values so chains (and thus real regions) are common.
        inputs = tuple(
            draw(st.integers(max(0, pool - 4), pool - 1) | st.integers(0, pool - 1))
            for _ in range(ARITY[kind])
        )
        nodes.append((kind, inputs))
    extra = draw(st.frozensets(st.integers(0, n - 1), max_size=2))
    return Dag(tuple(nodes), extra)


OPTIONS = st.builds(
    PartitionOptions,
    min_size=st.sampled_from([1, 1, 2, 3]),
    max_size=st.sampled_from([0, 0, 0, 2, 4]),
    merge_siblings=st.booleans(),
)


def _check_contracted_acyclic(text: str, options: PartitionOptions) -> None:
    tagged = run_passes(text, partition_passes(["testing"], options)[:3])
    succs, order = contract_regions(functions(tagged)["main"])
    assert len(order) == len(succs), "contracting the regions leaves a cycle"


@settings(max_examples=60)
@given(dag=dags(), options=OPTIONS)
def test_partition_invariants(dag: Dag, options: PartitionOptions) -> None:
    text = dag.text()
    original = compute_ops(parse(text))
    _check_contracted_acyclic(text, options)

    module = partitioned(text, options=options)
    # (a) valid IR (partition verifies too; this keeps the property explicit)
    assert module.operation.verify()
    # (b) every compute op exactly once, overall
    assert compute_ops(module) == original
    main = functions(module)["main"]
    funcs = outlined(module)
    assert Counter(calls(main)) == Counter({name: 1 for name in funcs})
    for name, func in funcs.items():
        kinds = [compute_signature(o) for o in body_ops(func)]
        assert not any("math." in k for k in kinds), (name, kinds)
        members = [o for o in body_ops(func)[:-1] if o.name not in FREE_OPS]
        assert len(members) >= options.min_size
        # A composite is never split, so only composite-free regions obey max-size exactly.
        if options.max_size and not byoc.get_composites(func):
            assert len(members) <= options.max_size
    # Every compute op left on the host says why.
    for op in body_ops(main)[:-1]:
        if op.name in FREE_OPS | CALL_OPS:
            continue
        reason = byoc.get_reason(op)
        assert reason is not None, op
        if "math." in compute_signature(op):
            assert reason.startswith("rejected: testing: ")
        else:
            assert reason.startswith("dropped: ")
    log = DecisionLog.from_module(module.operation)
    assert sorted(r.name for r in log.regions) == sorted(funcs)


def _direct_region_edges_must_close_a_cycle(text: str) -> None:
    """Maximality: two regions of one backend joined by an edge stay apart only when a path
    through a third node links them (merging would form a cycle)."""
    tagged = run_passes(
        text, partition_passes(["testing"], PartitionOptions(merge_siblings=False))[:3]
    )
    succs, _ = contract_regions(functions(tagged)["main"])
    for a, targets in succs.items():
        for b in targets:
            if a[0] != "region" or b[0] != "region" or a[1] != b[1]:
                continue
            # Is b reachable from a without the direct edge?
            stack = [s for s in targets if s != b]
            seen = set(stack)
            while stack:
                x = stack.pop()
                if x == b:
                    break
                for s in succs[x]:
                    if s not in seen:
                        seen.add(s)
                        stack.append(s)
            assert b in seen, f"regions {a} and {b} are connected and could merge"


@settings(max_examples=60)
@given(dag=dags())
def test_connected_regions_are_merged_unless_that_makes_a_cycle(dag: Dag) -> None:
    _direct_region_edges_must_close_a_cycle(dag.text())


def test_checker_detects_a_cycle() -> None:
    """Guards the independent checker: a hand-tagged cyclic pair of regions is caught."""
    fb = FuncBuilder(T44, T44)
    m = fb.matmul(*fb.args)
    text = fb.build(fb.add(fb.tanh(m), fb.relu(m)))
    module = parse(text)
    with module.context:
        ops = [o for o in body_ops(functions(module)["main"]) if o.name.startswith("linalg.")]
        fill, matmul, _tanh, _relu, add = ops
        # One region around the host tanh: matmul -> tanh -> add closes a cycle.
        for op in (fill, matmul, add):
            byoc.set_region(op, "testing", 0)
    succs, order = contract_regions(functions(module)["main"])
    assert len(order) < len(succs)


@settings(max_examples=8)
@given(dag=dags(min_nodes=3, max_nodes=10), options=OPTIONS)
def test_partitioned_random_graph_computes_the_same_values(
    dag: Dag, options: PartitionOptions
) -> None:
    text = dag.text()
    module = partitioned(text, options=options)
    assert_same_numerics(text, str(module), seed=len(dag.nodes))


def test_dag_strategy_makes_mixed_graphs() -> None:
    """The generator must produce graphs with both region kinds, or the properties are vacuous."""
    examples: list[Dag] = []

    @settings(max_examples=30)
    @given(dag=dags())
    def collect(dag: Dag) -> None:
        examples.append(dag)

    collect()
    with_regions = [d for d in examples if outlined(partitioned(d.text()))]
    several = [d for d in examples if len(outlined(partitioned(d.text()))) >= 2]
    assert len(with_regions) >= 20 and len(several) >= 5
    assert any(kind in UNSUPPORTED for d in examples for kind, _ in d.nodes)
