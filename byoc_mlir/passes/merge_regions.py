"""``byoc-merge-regions``: form maximal, cycle-free regions per backend.

Units (single ops, or whole composites) are visited in program order. Each unit goes to
the first backend in priority order that accepts it; a unit joins the region of every
producer with the same backend unless that would create a cycle. Optionally, regions of
one backend that consume the same value (siblings) merge too, removing a boundary
crossing. Regions smaller than ``min-size`` ops, and regions of nothing but
``linalg.fill`` that only host ops read, go back to the host.

**The region rule.** Contracting every region (and every host op) to one node must
leave the dataflow graph acyclic. "No path leaves a region and re-enters it" is weaker:
two regions can each need the other's output. The pass keeps a topological order of the
contracted graph at all times (order labels on a linked list of blocks): merging blocks
A and B (A before B) is legal iff no path ``A -> X -> ... -> B`` exists through a third
block; only blocks ordered between A and B can lie on such a path. Two searches inside
that window run in turn, backward from B and forward from A (the balanced search of
Haeupler et al.'s incremental topological ordering); a block found by both closes a
cycle, and the first search to finish proves there is none. Only that search's blocks
move (just before the merged block, which takes A's place, or just after it, in B's
place), so a merge costs what its smaller side costs: a fan-out of independent siblings
merges at constant cost each, and a long skip edge does not walk everything it spans.

**Siblings.** Regions of one backend that read one value are tried in order, each against
the latest block of the group; when a path orders two of them (tied weights: every
layer reads one weight, each layer after the last), later siblings are tried against the
later one, never against every earlier one again. Each sibling attempt examines at most
`SIBLING_BUDGET` edges. So the pass is linear on chains, fan-outs, residual blocks and
shared weights alike (``bench/partition_scaling.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from iree.compiler import ir
from iree.compiler.dialects import tensor

from byoc_mlir.dataflow import FunctionGraph
from byoc_mlir.dialects import byoc
from byoc_mlir.linalg_ops import linalg
from byoc_mlir.passes.base import ModulePass
from byoc_mlir.passes.block_order import Blocks

_FILL = linalg.FillOp.OPERATION_NAME
_MOVES = frozenset(
    {
        _FILL,
        tensor.ExpandShapeOp.OPERATION_NAME,
        tensor.CollapseShapeOp.OPERATION_NAME,
        tensor.PadOp.OPERATION_NAME,
        linalg.TransposeOp.OPERATION_NAME,
    }
)
FILL_ONLY = "dropped: region only fills a tensor the host reads (the host fills it in place)"
MOVE_ONLY = (
    "dropped: region only reshapes, pads or fills tensors the host reads (no compute "
    "worth a boundary crossing)"
)
"""Why a region of nothing but ``linalg.fill`` that only host ops read stays on the host:
offloading it buys a boundary crossing and nothing else, and a filled init arriving from
outside a dispatch can stop IREE from distributing its consumer (seen with a max-pooling
init on llvm-cpu: "write affecting operations on global resources...")."""


SIBLING_BUDGET = 4096
"""Edges one sibling merge may examine before it is given up: sibling merging is an
optimisation (one boundary crossing fewer), so its cost per attempt is bounded, and a
group of siblings grows while the merged block's neighbourhood stays under it."""


@dataclass
class RegionPlan:
    """The outcome for one function: regions (backend, node indices) and host reasons."""

    regions: list[tuple[str, list[int]]] = field(default_factory=list)
    host: dict[int, str] = field(default_factory=dict)


@dataclass
class _Unit:
    nodes: list[int]
    backend: str | None
    preds: list[int]


def _units(graph: FunctionGraph, priority: tuple[str, ...]) -> tuple[list[_Unit], list[int]]:
    """Groups nodes into units (composites become one unit), in topological order."""
    ops = graph.ops
    allowed = set(priority)
    composite_of: dict[int, tuple[str, int]] = {}
    last_member: dict[int, int] = {}
    for i in range(len(ops)):
        tag = graph.composite_of(i)
        if tag is not None and (not allowed or tag.backend in allowed):
            composite_of[i] = (tag.backend, tag.id)
            last_member[tag.id] = i
    units: list[_Unit] = []
    unit_of = [-1] * len(ops)
    pending: dict[int, list[int]] = {}
    for i in range(len(ops)):
        comp = composite_of.get(i)
        if comp is not None:
            group = pending.setdefault(comp[1], [])
            group.append(i)
            if last_member[comp[1]] != i:
                continue
            nodes: list[int] = group
            backend: str | None = comp[0]
        else:
            nodes, backend = [i], _choose_backend(graph.accept_of(i), priority)
        u = len(units)
        for n in nodes:
            unit_of[n] = u
        preds: list[int] = []
        for n in nodes:
            for p in graph.preds[n]:
                pu = unit_of[p]
                if pu != u and pu not in preds:
                    preds.append(pu)
        units.append(_Unit(nodes, backend, preds))
    return units, unit_of


def _choose_backend(accepted: tuple[str, ...], priority: tuple[str, ...]) -> str | None:
    if not priority:
        return accepted[0] if accepted else None
    for name in priority:
        if name in accepted:
            return name
    return None


DIM_ON_HOST = "host: a dynamic size, read where it is needed (regions take it as an index)"


def host_reason(graph: FunctionGraph, i: int, priority: tuple[str, ...]) -> str:
    """Why node ``i``, which no region took, stays on the host."""
    if graph.ops[i].name == tensor.DimOp.OPERATION_NAME and not graph.accept_of(i):
        return DIM_ON_HOST
    rejected = graph.reject_of(i)
    parts = [
        f"rejected: {b}: {why}" for b, why in rejected.items() if not priority or b in priority
    ]
    if parts:
        return "; ".join(parts)
    if graph.accept_of(i):
        return "rejected: accepted only by backends not chosen for this run"
    return "rejected: not annotated (run byoc-annotate first)"


def plan_regions(
    graph: FunctionGraph,
    priority: tuple[str, ...] = (),
    min_size: int = 1,
    max_size: int = 0,
    merge_siblings: bool = True,
) -> RegionPlan:
    units, unit_of = _units(graph, priority)
    blocks = Blocks([len(u.nodes) for u in units], [u.backend for u in units], max_size)
    for u, unit in enumerate(units):
        for p in unit.preds:
            blocks.add_edge(p, u)
        if unit.backend is None:
            continue
        candidates = {blocks.find(p) for p in unit.preds}
        for c in sorted(candidates, key=blocks.label.__getitem__, reverse=True):
            c, me = blocks.find(c), blocks.find(u)
            if c != me and blocks.backend[c] == unit.backend:
                blocks.try_merge(c, me)
    if merge_siblings:
        _merge_siblings(graph, units, unit_of, blocks)

    plan = RegionPlan()
    roots: dict[int, list[int]] = {}
    for u in range(len(units)):
        roots.setdefault(blocks.find(u), []).extend(units[u].nodes)
    for root, nodes in sorted(roots.items(), key=lambda kv: min(kv[1])):
        nodes.sort()
        backend = blocks.backend[root]
        if backend is None:
            for n in nodes:
                plan.host[n] = host_reason(graph, n, priority)
        elif len(nodes) < min_size:
            if blocks.cycle_refused[root]:
                why = (
                    f"dropped: cycle (merging into a neighbouring {backend} region would "
                    f"create a cycle; alone it has {len(nodes)} op(s) < min-size {min_size})"
                )
            else:
                why = f"dropped: region too small ({len(nodes)} op(s) < min-size {min_size})"
            for n in nodes:
                plan.host[n] = why
        else:
            plan.regions.append((backend, nodes))
    _drop_fills_for_the_host(graph, plan)
    return plan


def _drop_fills_for_the_host(graph: FunctionGraph, plan: RegionPlan) -> None:
    """Puts regions of nothing but data movement (``linalg.fill``, reshapes, pads,
    transposes) read only by host ops back on the host."""
    fill_only = [
        k
        for k, (_, nodes) in enumerate(plan.regions)
        if all(graph.ops[n].name in _MOVES for n in nodes)
    ]
    if not fill_only:
        return
    placed = {n for _, nodes in plan.regions for n in nodes}
    for k in reversed(fill_only):
        nodes = plan.regions[k][1]
        if any(c in placed and c not in nodes for n in nodes for c in graph.succs[n]):
            continue  # it feeds another region: the crossing happens either way
        del plan.regions[k]
        fills = all(graph.ops[n].name == _FILL for n in nodes)
        for n in nodes:
            plan.host[n] = FILL_ONLY if fills else MOVE_ONLY


def _merge_siblings(
    graph: FunctionGraph, units: list[_Unit], unit_of: list[int], blocks: Blocks
) -> None:
    """Merges same-backend regions that consume one value (a shared boundary crossing)."""
    consumers: list[list[int]] = [[] for _ in units]
    for u, unit in enumerate(units):
        for p in unit.preds:
            consumers[p].append(u)
    for arg in graph.block.arguments:
        readers: dict[int, None] = {}  # an ordered set: one weight can feed every layer
        for use in arg.uses:
            n = graph.node_of(use.owner)
            if n is not None:
                readers[unit_of[n]] = None
        consumers.append(list(readers))
    for users in consumers:
        if len(users) < 2:
            continue
        by_backend: dict[str, dict[int, None]] = {}  # ordered sets of roots
        for u in users:
            root = blocks.find(u)
            backend = blocks.backend[root]
            if backend is not None:
                by_backend.setdefault(backend, {})[root] = None
        for group in by_backend.values():
            if len(group) < 2:
                continue
            roots = sorted(group, key=blocks.label.__getitem__)
            acc = roots[0]
            for other in roots[1:]:
                acc = blocks.find(acc)
                other = blocks.find(other)
                if acc == other:
                    continue
                if blocks.try_merge(acc, other, SIBLING_BUDGET):
                    acc = blocks.find(acc)
                else:
                    # A path orders them (or they are too far apart to tell cheaply):
                    # later siblings try the later one. Trying each against the first
                    # would walk the whole path again per sibling (quadratic when one
                    # weight feeds every layer).
                    acc = other


@dataclass(frozen=True)
class MergeRegionsPass(ModulePass):
    """Options:
    backends: priority order; empty keeps the order byoc-annotate recorded.
    min-size: regions with fewer ops go back to the host (reason recorded).
    max-size: largest region in ops (0: unbounded). A composite is never split, so one
        composite larger than max-size still forms its own region.
    merge-siblings: also merge same-backend regions that share an input.
    """

    NAME = "byoc-merge-regions"
    backends: tuple[str, ...] = ()
    min_size: int = 1
    max_size: int = 0
    merge_siblings: bool = True

    def run(self, module_op: ir.Operation, graphs: list[FunctionGraph]) -> None:
        priority = tuple(b if isinstance(b, str) else b.name for b in self.backends)
        for graph in graphs:
            plan = plan_regions(graph, priority, self.min_size, self.max_size, self.merge_siblings)
            regions: list[tuple[str, int] | None] = [None] * len(graph.ops)
            for region_id, (backend, nodes) in enumerate(plan.regions):
                for n in nodes:
                    regions[n] = (backend, region_id)
                    if graph.write_tags:
                        op = graph.ops[n]
                        byoc.set_region(op, backend, region_id)
                        if byoc.REASON in op.attributes:
                            byoc.clear(op, (byoc.REASON,))
            for n, why in plan.host.items():
                op = graph.ops[n]
                byoc.set_reason(op, why)  # final: written even when tags stay in memory
                if byoc.REGION in op.attributes:
                    byoc.clear_region(op)
            graph.tags.region = regions
