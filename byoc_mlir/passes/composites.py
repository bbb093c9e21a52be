"""``byoc-composites``: fuse matched DAG patterns into composite units.

Every backend's composite patterns are matched at every op (the pattern root is the
last op of the match). Among overlapping matches, the higher ``benefit`` wins; ties go
to the backend listed first, then to the earlier root (the rule stated in
`byoc_mlir.codegen.backend`). A match is refused when an intermediate value (any result
but the root's) is used outside the match, or when its check rejects it. Accepted
matches tag each member with ``byoc.composite``; merge-regions treats them as one unit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from iree.compiler import ir
from iree.compiler.dialects import tosa

from byoc_mlir.codegen import registry
from byoc_mlir.codegen.backend import (
    Backend,
    CheckContext,
    CompositeRule,
    KindKey,
    Pattern,
    Recogniser,
    kind_key,
)
from byoc_mlir.dataflow import ARG, FunctionGraph
from byoc_mlir.dialects import byoc
from byoc_mlir.errors import ByocError
from byoc_mlir.passes.base import ModulePass

_COMMUTATIVE: frozenset[KindKey] = frozenset(kind_key(k) for k in (tosa.AddOp, tosa.MulOp))


def _commutative(kind: KindKey) -> bool:
    return kind.commutative if isinstance(kind, Recogniser) else kind in _COMMUTATIVE


@dataclass
class Match:
    members: list[int]  # node indices, program order; root last
    named: dict[str, int]


class _Matcher:
    """Matches patterns on node indices, using the graph's precomputed kinds and producers."""

    def __init__(self, graph: FunctionGraph, kinds: list[KindKey]):
        self.graph = graph
        self.kinds = kinds

    def match(self, pattern: Pattern, i: int) -> Match | None:
        found = self._match(pattern, i)
        if found is None:
            return None
        members, named = found
        return Match(sorted(members), named)

    def _match(self, p: Pattern, i: int) -> tuple[list[int], dict[str, int]] | None:
        if self.kinds[i] != p.kind:
            return None
        members = [i]
        named = {p.name: i} if p.name else {}
        if not p.inputs:
            return members, named
        prods = self.graph.input_producers(i)
        if len(prods) < len(p.inputs):
            return None
        kinds = self.kinds
        for q in p.inputs:  # cheap reject before any recursion: a producer of each kind
            if isinstance(q, Pattern) and not any(j != ARG and kinds[j] == q.kind for j in prods):
                return None
        orders = [prods]
        if _commutative(p.kind) and len(prods) >= 2:
            orders.append([prods[1], prods[0], *prods[2:]])
        for order in orders:
            sub = self._match_inputs(p.inputs, order)
            if sub is not None and i not in sub[0]:
                members += sub[0]
                named.update(sub[1])
                return members, named
        return None

    def _match_inputs(
        self, inputs: tuple[object, ...], producers: list[int]
    ) -> tuple[list[int], dict[str, int]] | None:
        members: list[int] = []
        named: dict[str, int] = {}
        for q, j in zip(inputs, producers, strict=False):
            if not isinstance(q, Pattern):
                continue
            if j == ARG:
                return None
            found = self._match(q, j)
            if found is None or set(found[0]).intersection(members):
                return None
            members += found[0]
            named.update(found[1])
        return members, named


def _leaks(graph: FunctionGraph, match: Match) -> bool:
    """Whether any non-root member's result is used outside the match."""
    inside = set(match.members)
    succs = graph.succs
    return any(u not in inside for i in match.members[:-1] for u in succs[i])


@dataclass(frozen=True)
class CompositesPass(ModulePass):
    """Options:
    backends: backend names in priority order (``--backend`` fills this).
    """

    NAME = "byoc-composites"
    backends: tuple[str, ...] = ()

    def run(self, module_op: ir.Operation, graphs: list[FunctionGraph]) -> None:
        if not self.backends:
            raise ByocError(f"{self.NAME} needs at least one backend (--backend NAME)")
        backends = registry.resolve(self.backends)
        for graph in graphs:
            # Tags from an earlier run are kept and never re-claimed.
            tags = [graph.composite_of(i) for i in range(len(graph.ops))]
            match_composites(graph, backends, tags)
            graph.tags.composite = tags


def match_composites(
    graph: FunctionGraph,
    backends: Sequence[Backend],
    tags: list[byoc.CompositeTag | None],
    allow: Callable[[str, str, list[int]], bool] | None = None,
) -> None:
    """Claims the winning matches of one function (see the module docstring).

    Args:
        graph: the function.
        backends: in priority order.
        tags: per node, its composite so far (None: free); updated in place. Written to
            the IR too when the graph writes tags.
        allow: ``(backend, composite name, members) -> bool``: whether a match may be
            claimed at all (placement plans allow only what the plan names).
    """
    next_id = 0
    kinds = graph.kinds()
    matcher = _Matcher(graph, kinds)
    claimed: set[int] = set()
    for i, tag in enumerate(tags):
        if tag is not None:
            claimed.add(i)
            next_id = max(next_id, tag.id + 1)
    candidates: list[tuple[int, int, int, CompositeRule, Match]] = []
    present = set(kinds)
    for priority, backend in enumerate(backends):
        by_root: dict[KindKey, list[CompositeRule]] = {}
        for rule in backend.composites:
            # A pattern naming a kind this function lacks cannot match anywhere.
            if all(p.kind in present for p in rule.pattern.walk()):
                by_root.setdefault(rule.pattern.kind, []).append(rule)
        for i, kind in enumerate(kinds):
            for rule in by_root.get(kind, ()):
                m = matcher.match(rule.pattern, i)
                if m is not None:
                    candidates.append((-rule.benefit, priority, i, rule, m))
    candidates.sort(key=lambda c: (c[0], c[1], c[2]))
    for _neg_benefit, priority, root, rule, m in candidates:
        backend = backends[priority]
        if claimed.intersection(m.members):
            continue
        if allow is not None and not allow(backend.name, rule.name, m.members):
            continue
        if _leaks(graph, m):
            continue
        if rule.check is not None:
            ctx = CheckContext(
                graph.ops[root],
                kinds[root],
                backend,
                matches={k: graph.ops[v] for k, v in m.named.items()},
                members=tuple(graph.ops[i] for i in m.members),
                member_operands=tuple(graph.operands[i] for i in m.members),
            )
            if rule.check(ctx) is not None:
                continue
        claimed.update(m.members)
        tag = byoc.CompositeTag(backend.name, rule.name, next_id, rule.benefit)
        next_id += 1
        for i in m.members:
            tags[i] = tag
        if graph.write_tags:
            byoc.set_composite([graph.ops[i] for i in m.members], tag)
