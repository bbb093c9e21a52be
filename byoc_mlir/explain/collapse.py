"""Collapsing a partitioned model's dataflow graph until a picture of it stays legible.

The graph's nodes are compute ops (`OpRecord`s, or the ``ops`` list of ``report.json``),
its edges run from each op's producers. `collapse` contracts it in steps until at most
``max_nodes`` nodes are left; every step contracts only sets whose contraction keeps the
graph acyclic (a chain, a whole region — the region rule —, like siblings, or a slice of
a topological order), so the picture never shows a cycle the model does not have:

1. always: single-producer/single-consumer chains inside one region, or of host ops,
   become one node, and so does a producer-less op with its only consumer
   (``4 ops: fill → matmul → bias_add → relu``);
2. each region becomes one node; nodes of the same kind with the same producers and
   consumers merge (``12 × tanh``);
3. chains of nodes become one node, a repeating pattern named
   (``2000 × [testing region (…) → host generic]``);
4. slices of a topological order become one node each (this always fits the budget).

`byoc_mlir.explain.picture` draws the result.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from byoc_mlir.errors import ByocError
from byoc_mlir.explain.decisions import OpRecord

MAX_NODES = 400
"""Above this many nodes after chain collapsing, whole regions become single nodes."""


def short(op: OpRecord) -> str:
    """``generic:relu`` -> ``relu``; ``linalg.matmul`` -> ``matmul``."""
    return op.kind.removeprefix("generic:").removeprefix("linalg.")


@dataclass
class Model:
    """The ops to draw, with the regions that fell back to the host (name -> reason)."""

    ops: list[OpRecord]
    fallbacks: dict[str, str] = field(default_factory=dict)
    composites: dict[str, list[str]] = field(default_factory=dict)

    @staticmethod
    def of(ops: Iterable[Any], regions: Iterable[Any] = ()) -> Model:
        """From `OpRecord`s (or dicts) and, optionally, region entries (or dicts)."""
        model = Model([OpRecord.of(r) for r in ops])
        for entry in regions:
            get = entry.get if isinstance(entry, Mapping) else lambda k, e=entry: getattr(e, k)
            status = str(get("status") or "")
            if status.startswith("fallback"):
                model.fallbacks[str(get("name"))] = status
            model.composites[str(get("name"))] = list(get("composites") or ())
        return model

    def on_host(self, op: OpRecord) -> bool:
        return op.region is None or op.region in self.fallbacks

    def host_reason(self, op: OpRecord) -> str:
        if op.region is not None and op.region in self.fallbacks:
            return self.fallbacks[op.region]
        return op.reason or "no backend accepts it"


# --- collapsing --------------------------------------------------------------------------


@dataclass
class Unit:
    """A node of the drawn graph: one op, a chain, a region, or a bigger aggregate.

    ``form`` is ``ops`` (ops of one region, or host ops, in a chain), ``region`` (a whole
    region), ``siblings`` (like nodes with the same producers and consumers), ``chain``
    or ``band`` (mixed); ``parts`` are the units it was made of.
    """

    form: str
    members: list[int]
    group: str | None = None
    parts: list[Unit] = field(default_factory=list)


@dataclass
class Collapsed:
    units: list[Unit]
    edges: set[tuple[int, int]]
    step: int
    """The last collapsing step applied (1-4, see the module docstring)."""


class _Graph:
    def __init__(self, units: list[Unit], edges: Iterable[tuple[int, int]]):
        self.units = units
        self.preds: list[set[int]] = [set() for _ in units]
        self.succs: list[set[int]] = [set() for _ in units]
        for u, v in edges:
            if u != v:
                self.succs[u].add(v)
                self.preds[v].add(u)

    def edges(self) -> set[tuple[int, int]]:
        return {(u, v) for u, ss in enumerate(self.succs) for v in ss}

    def contract(self, assign: list[int], make: Callable[[list[Unit]], Unit]) -> _Graph:
        """Merges units with the same ``assign`` value; the result is topologically sorted
        (ties broken by program order, so the drawing is deterministic)."""
        groups: dict[int, list[int]] = {}
        for u, g in enumerate(assign):
            groups.setdefault(g, []).append(u)
        merged = [
            make([self.units[u] for u in us]) if len(us) > 1 else self.units[us[0]]
            for us in groups.values()
        ]
        index = {g: k for k, g in enumerate(groups)}
        edges = {(index[assign[u]], index[assign[v]]) for u, v in self.edges()}
        draft = _Graph(merged, edges)
        order = draft.topological()
        where = {old: new for new, old in enumerate(order)}
        return _Graph([merged[k] for k in order], {(where[u], where[v]) for u, v in edges})

    def topological(self) -> list[int]:
        indeg = [len(p) for p in self.preds]
        ready = [(self.units[u].members[0], u) for u in range(len(self.units)) if not indeg[u]]
        heapq.heapify(ready)
        order: list[int] = []
        while ready:
            _, u = heapq.heappop(ready)
            order.append(u)
            for v in self.succs[u]:
                indeg[v] -= 1
                if not indeg[v]:
                    heapq.heappush(ready, (self.units[v].members[0], v))
        if len(order) != len(self.units):  # a cycle: inconsistent input records
            raise ByocError("the op records' inputs form a cycle; cannot draw them")
        return order

    def chains(self, joinable: Callable[[Unit, Unit], bool]) -> list[int]:
        """Chain ids: ``u -> v`` joins when it is u's only consumer and v's only producer."""
        assign = [0] * len(self.units)
        fresh = 0
        for v in range(len(self.units)):  # topological order
            if len(self.preds[v]) == 1:
                (u,) = self.preds[v]
                if len(self.succs[u]) == 1 and joinable(self.units[u], self.units[v]):
                    assign[v] = assign[u]
                    continue
            assign[v] = fresh
            fresh += 1
        return assign

    def sources(self, joinable: Callable[[Unit, Unit], bool]) -> list[int]:
        """Joins a unit without producers to its only consumer (a fill to its matmul):
        nothing reaches the source, so no cycle can form; and it is not drawn at the top."""
        assign = list(range(len(self.units)))
        for u in range(len(self.units)):
            if not self.preds[u] and len(self.succs[u]) == 1:
                (v,) = self.succs[u]
                if joinable(self.units[u], self.units[v]):
                    assign[u] = v
        return assign


def _merged(form: str) -> Callable[[list[Unit]], Unit]:
    def make(parts: list[Unit]) -> Unit:
        members = [m for p in parts for m in p.members]
        group = parts[0].group if form in ("ops", "region", "siblings") else None
        return Unit(form, members, group, [] if form in ("ops", "region") else parts)

    return make


def signature(model: Model, unit: Unit) -> tuple[str, ...]:
    """What a unit is, for merging like siblings and naming repeats."""
    ops = [model.ops[m] for m in unit.members]
    where = str(ops[0].backend) if unit.group and not model.on_host(ops[0]) else "host"
    return (unit.form, where, *(short(o) for o in ops))


def collapse(model: Model, max_nodes: int = MAX_NODES) -> Collapsed:
    """Contracts the op graph, step by step, until at most ``max_nodes`` nodes are left."""
    index = {op.id: k for k, op in enumerate(model.ops)}
    units = [Unit("ops", [k], op.region) for k, op in enumerate(model.ops)]
    edges = {(index[i], k) for k, op in enumerate(model.ops) for i in op.inputs if i in index}
    graph = _Graph(units, edges)
    graph = graph.contract(list(range(len(units))), lambda parts: parts[0])  # sorts
    same_group: Callable[[Unit, Unit], bool] = lambda u, v: u.group == v.group  # noqa: E731
    graph = graph.contract(graph.chains(same_group), _merged("ops"))
    graph = graph.contract(graph.sources(same_group), _merged("ops"))
    step = 1
    if len(graph.units) > max_nodes:
        step = 2
        graph.units = [Unit("region", u.members, u.group) if u.group else u for u in graph.units]
        regions: dict[str, int] = {}
        assign = [
            regions.setdefault(u.group, k) if u.group else k for k, u in enumerate(graph.units)
        ]
        graph = graph.contract(assign, _merged("region"))
        graph = graph.contract(_siblings(model, graph), _merged("siblings"))
    if len(graph.units) > max_nodes:
        step = 3
        graph = graph.contract(graph.chains(lambda u, v: True), _merged("chain"))
    if len(graph.units) > max_nodes:
        step = 4
        per_band = -(-len(graph.units) // max(1, max_nodes // 2))
        graph = graph.contract([k // per_band for k in range(len(graph.units))], _merged("band"))
    return Collapsed(graph.units, graph.edges(), step)


def _siblings(model: Model, graph: _Graph) -> list[int]:
    keys: dict[tuple[Any, ...], int] = {}
    return [
        keys.setdefault(
            (frozenset(graph.preds[k]), frozenset(graph.succs[k]), signature(model, u)), k
        )
        for k, u in enumerate(graph.units)
    ]


# --- labels ------------------------------------------------------------------------------


def _arrows(names: list[str], keep: int = 5) -> str:
    if len(names) > max(keep, 4):
        names = [*names[:2], f"… {len(names) - 4} more …", *names[-2:]]
    return " → ".join(names)


def _tally(names: Iterable[str], keep: int = 4) -> str:
    counts = Counter(names).most_common()
    text = ", ".join(f"{n}×{c}" if c > 1 else n for n, c in counts[:keep])
    return text + (", …" if len(counts) > keep else "")


def _composition(model: Model, members: list[int]) -> str:
    """``12 testing ops in 3 regions, 4 host ops``."""
    per: dict[str, set[str]] = {}
    counts: Counter[str] = Counter()
    for m in members:
        op = model.ops[m]
        where = "host" if model.on_host(op) else str(op.backend)
        counts[where] += 1
        if op.region and where != "host":
            per.setdefault(where, set()).add(op.region)
    parts = [f"{counts[b]} {b} ops in {plural(len(per[b]), 'region')}" for b in sorted(per)] + (
        [f"{counts['host']} host ops"] if counts["host"] else []
    )
    return ", ".join(parts)


def plural(count: int, noun: str) -> str:
    """``1 region``, ``3 regions``."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


def label(model: Model, unit: Unit) -> str:
    """The node's text: short, one to three lines."""
    ops = [model.ops[m] for m in unit.members]
    if unit.form == "ops":
        if len(ops) == 1:
            return short(ops[0])
        return f"{len(ops)} ops: " + _arrows([short(o) for o in ops])
    if unit.form == "region":
        composites = ", ".join(model.composites.get(str(unit.group), ())) or _composites(ops)
        return "\n".join(
            x
            for x in (
                str(unit.group),
                composites,
                f"{len(ops)} ops: {_tally(short(o) for o in ops)}",
            )
            if x
        )
    if unit.form == "siblings":
        return f"{len(unit.parts)} × " + label(model, unit.parts[0])
    if unit.form == "chain":
        repeat = _repeat(model, unit.parts)
        if repeat:
            return repeat
    first, last = ops[0].id, ops[-1].id
    return f"{len(ops)} ops ({first} … {last})\n" + _composition(model, unit.members)


def _composites(ops: list[OpRecord]) -> str:
    return ", ".join(dict.fromkeys(o.composite for o in ops if o.composite))


def _repeat(model: Model, parts: list[Unit]) -> str | None:
    """``2000 × [testing region → host generic]`` when the chain is periodic."""
    sigs = [signature(model, p) for p in parts]
    for period in range(1, min(8, len(sigs) // 2) + 1):
        if all(sigs[k] == sigs[k % period] for k in range(len(sigs))):
            reps, rest = divmod(len(sigs), period)
            steps = [_step_text(model, p) for p in parts[:period]]
            more = f" + {rest} more" if rest else ""
            return f"{reps} × [{' → '.join(steps)}]{more}\n" + _composition(
                model, [m for p in parts for m in p.members]
            )
    return None


def _step_text(model: Model, unit: Unit) -> str:
    ops = [model.ops[m] for m in unit.members]
    names = _arrows([short(o) for o in ops], keep=3)
    if model.on_host(ops[0]):
        return f"host {names}"
    return (
        f"{ops[0].backend} region ({names})"
        if unit.form == "region"
        else f"{ops[0].backend} {names}"
    )


def tooltip(model: Model, unit: Unit, limit: int = 12) -> str:
    """Hover text: each op with its location, and the reason for each host op."""
    lines = []
    ops = [model.ops[m] for m in unit.members]
    for op in ops[:limit]:
        where = f" @ {op.location}" if op.location else ""
        if model.on_host(op):
            lines.append(f"{op.id} {op.kind}{where}: {model.host_reason(op)}")
        else:
            lines.append(f"{op.id} {op.kind}{where} → {op.region}")
    if len(ops) > limit:
        lines.append(f"… {len(ops) - limit} more ops")
    return "\n".join(lines)
