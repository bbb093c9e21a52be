"""``byoc-apply-plan``: replay a placement plan in place of annotate, composites, merge.

The plan (`byoc_mlir.explain.plan`, written by ``--save-plan``, maybe edited by hand) says per
compute op which backend runs it (or the host), which ops form one region, and which
composites they form. The pass

1. checks the plan against the model: every op, by id, must have the plan's op name,
   kind and result types, and the fingerprint must match; otherwise the plan is stale
   and the error names the first op that differs;
2. annotates every op for the plan's backends (as ``byoc-annotate``), so host ops keep
   their rejection reasons;
3. groups the placed ops into regions by label (a label whose ops would feed themselves
   through an op outside it is split into its connected parts);
4. forms the composites the plan names, where they still match inside one region on the
   composite's backend (a region moved to another backend takes that backend's
   composite of the same name, if it has one);
5. checks that each backend accepts every op placed on it (alone or inside one of its
   composites), else raises with the backend's reason;
6. tags regions (``byoc.target``/``byoc.region``, ids per function in program order) and
   host ops (``byoc.reason``: ``placed on the host by plan <file>``, or the rejection
   reasons when every backend refuses the op).

Outlining then proceeds as usual; it refuses regions that depend on each other in a
cycle with a located error.
"""

from __future__ import annotations

from dataclasses import dataclass

from iree.compiler import ir

from byoc_mlir import _compat
from byoc_mlir.codegen import registry
from byoc_mlir.codegen.backend import Backend, kind_name
from byoc_mlir.dataflow import FunctionGraph
from byoc_mlir.dialects import byoc
from byoc_mlir.errors import ByocError
from byoc_mlir.explain.plan import Plan, PlanOp, fingerprint, load_plan, result_types, signature
from byoc_mlir.passes.annotate import AnnotatePass
from byoc_mlir.passes.base import ModulePass
from byoc_mlir.passes.composites import match_composites
from byoc_mlir.passes.merge_regions import host_reason


@dataclass(frozen=True)
class ApplyPlanPass(ModulePass):
    """Options:
    plan: path of the placement plan to replay (JSON; see `byoc_mlir.explain.plan`).
    """

    NAME = "byoc-apply-plan"
    plan: str = ""

    def run(self, module_op: ir.Operation, graphs: list[FunctionGraph]) -> None:
        if not self.plan:
            raise ByocError(f'{self.NAME} needs a plan file: --{self.NAME}="plan=FILE"')
        plan = load_plan(self.plan)
        entries = match_model(plan, graphs)
        try:
            backends = registry.resolve(plan.backends)
        except ByocError as err:
            raise ByocError(f"placement plan: {err.message}", plan.source) from None
        if backends:
            AnnotatePass(tuple(plan.backends)).run(module_op, graphs)
        else:
            for graph in graphs:
                graph.tags.accept = [()] * len(graph.ops)
                graph.tags.reject = [{} for _ in graph.ops]
        for graph, ops in zip(graphs, entries, strict=True):
            _apply(graph, ops, backends, plan)


def _describe(op: str, kind: str, types: str) -> str:
    what = op if kind == op else f"{op} ({kind})"
    return f"{what} -> {types}" if types else what


def _stale(plan: Plan, detail: str, location: str) -> ByocError:
    return ByocError(
        f"placement plan {plan.source} is stale (it does not match this model): {detail}",
        location,
        hint="save a new plan for this model with --save-plan, then edit that one",
    )


def match_model(plan: Plan, graphs: list[FunctionGraph]) -> list[list[PlanOp]]:
    """Each function's plan entries, in program order.

    Raises:
        ByocError: the plan is stale: names the first op (by id) that differs, what the
            plan says, what the model has, and where the op is.
    """
    by_id = {o.id: o for o in plan.ops}
    counts: dict[str, int] = {}
    lines: list[str] = []
    out: list[list[PlanOp]] = []
    for graph in graphs:
        fname = _compat.symbol_name(graph.func)
        counts[fname] = len(graph.ops)
        kinds = graph.kinds()
        row: list[PlanOp] = []
        for i, op in enumerate(graph.ops):
            oid = f"{fname}#{i}"
            kind, types = kind_name(kinds[i]), result_types(op)
            entry = by_id.pop(oid, None)
            if entry is None:
                raise _stale(
                    plan,
                    f"the model's {oid}, {_describe(op.name, kind, types)}, is not in the plan",
                    str(op.location),
                )
            if (entry.op, entry.kind, entry.types) != (op.name, kind, types):
                raise _stale(
                    plan,
                    f"{oid} is {_describe(entry.op, entry.kind, entry.types)} in the plan but "
                    f"{_describe(op.name, kind, types)} in the model",
                    str(op.location),
                )
            row.append(entry)
            lines.append(signature(oid, op.name, kind, types))
        out.append(row)
    if by_id:
        extra = next(iter(by_id.values()))
        fname = extra.id.rpartition("#")[0]
        has = (
            f"@{fname} has {counts[fname]} compute op(s)"
            if fname in counts
            else f"the model has no function @{fname}"
        )
        raise _stale(
            plan,
            f"the plan lists {extra.id}, {_describe(extra.op, extra.kind, extra.types)}, "
            f"which the model does not have ({has})",
            extra.location,
        )
    if fingerprint(lines) != plan.fingerprint:
        raise ByocError(
            f"placement plan {plan.source}: its fingerprint does not match the model although "
            f"every op does; the fingerprint was edited (the model's is {fingerprint(lines)})",
            plan.source,
        )
    return out


def _apply(
    graph: FunctionGraph, entries: list[PlanOp], backends: list[Backend], plan: Plan
) -> None:
    n = len(graph.ops)
    place = [e.backend for e in entries]
    groups: dict[object, list[int]] = {}
    for i, e in enumerate(entries):
        if e.backend is None:
            continue
        group = groups.setdefault(e.region if e.region is not None else ("alone", i), [])
        if group and place[group[0]] != e.backend:
            first = entries[group[0]]
            raise ByocError(
                f"placement plan {plan.source}: region '{e.region}' mixes backends: "
                f"{first.id} is on {first.backend}, {e.id} on {e.backend}; one region runs "
                f"on one backend (give the ops another label, or the same backend)",
                str(graph.ops[i].location),
            )
        group.append(i)
    parts = _split_self_feeding(graph, list(groups.values()))
    parts.sort(key=lambda nodes: nodes[0])
    part_of = [-1] * n
    for k, nodes in enumerate(parts):
        for i in nodes:
            part_of[i] = k

    def allow(backend: str, name: str, members: list[int]) -> bool:
        k = part_of[members[0]]
        return k >= 0 and all(
            part_of[m] == k and place[m] == backend and entries[m].composite == name
            for m in members
        )

    tags: list[byoc.CompositeTag | None] = [None] * n
    if graph.write_tags:
        for op in graph.ops:
            if byoc.COMPOSITE in op.attributes:
                byoc.clear(op, (byoc.COMPOSITE,))
    match_composites(graph, backends, tags, allow)
    graph.tags.composite = tags

    for i, backend in enumerate(place):
        if backend is None or backend in graph.accept_of(i):
            continue
        tag = tags[i]
        if tag is not None and tag.backend == backend:
            continue
        why = graph.reject_of(i).get(backend, "not accepted")
        composite = entries[i].composite
        inside = f" (not inside a {composite} composite)" if composite else ""
        raise ByocError(
            f"placement plan {plan.source} puts {entries[i].id} ({entries[i].op}) on "
            f"{backend}, which refuses it{inside}: {why}",
            str(graph.ops[i].location),
            hint=f'set its "backend" to null (the host) or to a backend that accepts it '
            f"(plan backends: {', '.join(plan.backends)})",
        )

    priority = tuple(plan.backends)
    placed = f"placed on the host by plan {plan.source}"
    regions: list[tuple[str, int] | None] = [None] * n
    for k, nodes in enumerate(parts):
        for i in nodes:
            regions[i] = (entries[i].backend or "", k)  # parts hold placed ops only
    for i, op in enumerate(graph.ops):
        region = regions[i]
        if region is not None:
            if graph.write_tags:
                byoc.set_region(op, *region)
                if byoc.REASON in op.attributes:
                    byoc.clear(op, (byoc.REASON,))
            continue
        refused = backends and not graph.accept_of(i) and graph.reject_of(i)
        byoc.set_reason(op, host_reason(graph, i, priority) if refused else placed)
        if byoc.REGION in op.attributes:
            byoc.clear_region(op)
    graph.tags.region = regions


def _split_self_feeding(graph: FunctionGraph, groups: list[list[int]]) -> list[list[int]]:
    """Splits each group whose ops feed themselves through an op outside it (a host op
    forced into the middle of a chain) into its connected parts; keeps the others."""
    succs: list[list[int]] | None = None
    out: list[list[int]] = []
    for nodes in groups:
        if len(nodes) < 2:
            out.append(nodes)
            continue
        if succs is None:
            succs = [[] for _ in graph.ops]
            for i, preds in enumerate(graph.preds):
                for p in preds:
                    succs[p].append(i)
        if _feeds_itself(succs, nodes):
            out.extend(_connected_parts(graph, nodes))
        else:
            out.append(nodes)
    return out


def _feeds_itself(succs: list[list[int]], nodes: list[int]) -> bool:
    """Whether a path leaves ``nodes`` and comes back. Program order is topological, so
    only ops before the group's last op can lie on such a path."""
    members = set(nodes)
    last = nodes[-1]
    stack = [s for i in nodes for s in succs[i] if s not in members and s < last]
    seen = set(stack)
    while stack:
        x = stack.pop()
        for s in succs[x]:
            if s in members:
                return True
            if s < last and s not in seen:
                seen.add(s)
                stack.append(s)
    return False


def _connected_parts(graph: FunctionGraph, nodes: list[int]) -> list[list[int]]:
    members = set(nodes)
    parent = {i: i for i in nodes}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in nodes:
        for p in graph.preds[i]:
            if p in members:
                parent[find(p)] = find(i)
    parts: dict[int, list[int]] = {}
    for i in nodes:
        parts.setdefault(find(i), []).append(i)
    return list(parts.values())
