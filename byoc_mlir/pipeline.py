"""The partitioning pipeline: annotate, composites, merge-regions, outline.

`PartitionPass` (``byoc-opt --partition``) runs the four passes over one shared set of
function graphs: the first three only tag ops, so the graphs stay valid, and building
them once instead of four times is most of the pipeline's cost on large models.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from iree.compiler import ir

from byoc_mlir import _compat, flops
from byoc_mlir.codegen import registry
from byoc_mlir.codegen.backend import Backend, kind_name
from byoc_mlir.dataflow import FunctionGraph, function_graphs
from byoc_mlir.dialects import byoc
from byoc_mlir.errors import pretty_location
from byoc_mlir.explain.decisions import OpRecord
from byoc_mlir.explain.plan import load_plan, result_types
from byoc_mlir.passes import (
    AnnotatePass,
    ApplyPlanPass,
    CompositesPass,
    MergeRegionsPass,
    ModulePass,
    OutlinePass,
)


@dataclass(frozen=True)
class PartitionOptions:
    """Options of the whole pipeline (see each pass for their meaning)."""

    min_size: int = 1
    max_size: int = 0
    merge_siblings: bool = True
    move_weights: bool = False
    clone_limit: int = 16


def partition_passes(
    backends: Sequence[str | Backend],
    options: PartitionOptions | None = None,
    plan: str | Path | None = None,
) -> list[ModulePass]:
    """The four passes of ``--partition`` with the given backends (priority = order).

    With ``plan`` (a placement plan file), ``byoc-apply-plan`` replaces annotate,
    composites and merge-regions; the backends come from the plan.
    """
    o = options or PartitionOptions()
    if plan is not None:
        planned = load_plan(plan).backends
        outline = OutlinePass(o.move_weights, o.clone_limit, _weights_for(planned))
        return [ApplyPlanPass(str(plan)), outline]
    names = tuple(b if isinstance(b, str) else b.name for b in backends)
    chosen = tuple(backends)
    return [
        AnnotatePass(chosen),  # type: ignore[arg-type]
        CompositesPass(chosen),  # type: ignore[arg-type]
        MergeRegionsPass(names, o.min_size, o.max_size, o.merge_siblings),
        OutlinePass(o.move_weights, o.clone_limit, _weights_for(backends)),
    ]


def _weights_for(backends: Sequence[str | Backend]) -> tuple[str, ...]:
    """The backends that want their regions' weights moved in (`Backend.move_weights`),
    and ``backend.composite`` for the composites that want them (`CompositeRule.weights`)."""
    # unknown names resolve to None: byoc-apply-plan reports them, located
    resolved = [registry.find(b) if isinstance(b, str) else b for b in backends]
    wanted = [b.name for b in resolved if b is not None and b.move_weights]
    for b in resolved:
        if b is not None and not b.move_weights:
            wanted += [f"{b.name}.{rule.name}" for rule in b.composites if rule.weights]
    return tuple(wanted)


@dataclass(frozen=True)
class PartitionPass(ModulePass):
    """Options: as `PartitionOptions`, plus backends (``--backend`` fills this) and plan
    (a placement plan file to replay instead of choosing; see `byoc_mlir.explain.plan`).

    ``records`` (not an option): a list that receives every compute op's placement
    (`OpRecord`) on each run, for tools that report on the partition (``--report``).
    """

    NAME = "byoc-partition"
    backends: tuple[str, ...] = ()
    min_size: int = 1
    max_size: int = 0
    merge_siblings: bool = True
    move_weights: bool = False
    clone_limit: int = 16
    plan: str = ""
    records: list[OpRecord] | None = field(default=None, compare=False, metadata={"option": False})

    def run(self, module_op: ir.Operation, graphs: list[FunctionGraph]) -> None:
        options = PartitionOptions(
            self.min_size, self.max_size, self.merge_siblings, self.move_weights, self.clone_limit
        )
        if self.records is not None:
            self.records.clear()
        passes = partition_passes(self.backends, options, self.plan or None)
        _run_shared(module_op, graphs, passes, self.records)


@contextmanager
def pause_gc() -> Iterator[None]:
    """Pauses Python's cyclic garbage collector while partitioning.

    The pipeline allocates a few objects per op and frees none until it ends; every
    automatic collection rescans all of them, which made the pipeline grow faster than
    linearly with model size (time(10000)/time(1000) ~15 instead of ~10). Reference
    counting still frees everything; the collector resumes (if it was on) afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _run_shared(
    module_op: ir.Operation,
    graphs: list[FunctionGraph],
    passes: list[ModulePass],
    records: list[OpRecord] | None = None,
) -> None:
    """Runs passes over one set of graphs, tags kept in memory between them.

    With ``records``, each compute op's placement is captured before outlining (the
    last pass) moves ops away.
    """
    for graph in graphs:
        graph.write_tags = False
    with pause_gc():
        for p in passes:
            if records is not None and isinstance(p, OutlinePass):
                records.extend(capture(graphs))
            p.run(module_op, graphs)
        if records is not None:
            _name_regions(module_op, records)


def capture(graphs: list[FunctionGraph]) -> list[OpRecord]:
    """Every compute op's placement, from graphs tagged by merge-regions."""
    records: list[OpRecord] = []
    for graph in graphs:
        fname = _compat.symbol_name(graph.func)
        kinds = graph.kinds()
        ids = [f"{fname}#{i}" for i in range(len(graph.ops))]
        for i, op in enumerate(graph.ops):
            region = graph.region_of(i)
            composite = graph.composite_of(i)
            records.append(
                OpRecord(
                    id=ids[i],
                    function=fname,
                    op=op.name,
                    kind=kind_name(kinds[i]),
                    location=pretty_location(str(op.location)),
                    backend=region[0] if region else None,
                    region=f"{region[0]}:{region[1]}" if region else None,
                    composite=composite.name if composite and region else None,
                    reason=None if region else byoc.get_reason(op),
                    flops=flops.estimate(op),
                    inputs=[ids[p] for p in graph.preds[i]],
                    types=result_types(op),
                )
            )
    return records


def _name_regions(module_op: ir.Operation, records: list[OpRecord]) -> None:
    """Replaces ``backend:id`` region labels by the outlined functions' names."""
    callers: dict[str, str] = {}
    tags: dict[str, tuple[str, int]] = {}
    for op in _compat.module_body(module_op).operations:
        op = op.operation
        if op.name not in _compat.FLAVORS:
            continue
        tag = byoc.get_region(op)
        if tag is not None:
            tags[_compat.symbol_name(op)] = tag
            continue
        if not len(op.regions[0].blocks):
            continue
        caller = _compat.symbol_name(op)
        for inner in op.regions[0].blocks[0].operations:
            inner = inner.operation
            if inner.name in _compat.CALL_OPS:
                callers[_compat.callee_name(inner)] = caller
    names = {(callers.get(name, ""), f"{tag[0]}:{tag[1]}"): name for name, tag in tags.items()}
    for r in records:
        if r.region is not None:
            r.region = names.get((r.function, r.region), r.region)


def partition(
    module_op: ir.Operation,
    backends: Sequence[str | Backend],
    options: PartitionOptions | None = None,
    verify: bool = True,
    records: list[OpRecord] | None = None,
    plan: str | Path | None = None,
) -> None:
    """Runs the whole partitioning pipeline on a module in place.

    Args:
        module_op: the ``builtin.module`` operation (``module.operation``).
        backends: names or `Backend` values, priority = order.
        options: region size limits, sibling merging, weight handling.
        verify: verify the module afterwards (raises ``ir.MLIRError`` on a bug).
        records: if given, receives every compute op's placement (`OpRecord`).
        plan: a placement plan file (``--save-plan``) to replay instead of choosing
            regions; ``backends`` is then ignored (the plan names its own).

    Raises:
        ByocError: the plan is malformed or stale, a backend refuses an op the plan puts
            on it, or the plan's regions depend on each other in a cycle.
    """
    # The passes build attributes and affine maps; they must live in the module's own
    # context, whatever context the caller has entered (or none).
    with module_op.context:
        with pause_gc():
            graphs = list(function_graphs(module_op))
        _run_shared(module_op, graphs, partition_passes(backends, options, plan), records)
        if verify:
            module_op.verify()
