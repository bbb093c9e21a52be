"""``byoc-composites``: fuse matched DAG patterns into composite units.

Every backend's composite patterns are matched at every op (the pattern root is the
last op of the match). Among overlapping matches, the higher ``benefit`` wins; ties go
to the backend listed first, then to the earlier root (the rule stated in
`byoc_mlir.codegen.backend`). A match is refused when an intermediate value (any result
but the root's) is used outside the match, or when its check rejects it. Accepted
matches tag each member with ``byoc.composite``; merge-regions treats them as one unit.
"""

from __future__ import annotations

from dataclasses import dataclass

from iree.compiler import ir
from iree.compiler.dialects import tosa

from byoc_mlir.codegen import registry
from byoc_mlir.codegen.backend import (
    CheckContext,
    CompositeRule,
    KindKey,
    Pattern,
    Recogniser,
    classify,
    kind_key,
)
from byoc_mlir.dialects import byoc
from byoc_mlir.graph import ARG, FunctionGraph, data_inputs, function_graphs
from byoc_mlir.passes.base import ModulePass

_COMMUTATIVE: frozenset[KindKey] = frozenset(kind_key(k) for k in (tosa.AddOp, tosa.MulOp))


def _commutative(kind: KindKey) -> bool:
    return kind.commutative if isinstance(kind, Recogniser) else kind in _COMMUTATIVE


@dataclass
class Match:
    members: list[int]  # node indices, program order; root last
    named: dict[str, int]


class _Matcher:
    def __init__(self, graph: FunctionGraph, kinds: list[KindKey]):
        self.graph = graph
        self.kinds = kinds

    def match(self, pattern: Pattern, i: int) -> Match | None:
        members: set[int] = set()
        named: dict[str, int] = {}
        if not self._match(pattern, i, members, named):
            return None
        return Match(sorted(members), named)

    def _match(self, p: Pattern, i: int, members: set[int], named: dict[str, int]) -> bool:
        if self.kinds[i] != p.kind or i in members:
            return False
        sub = [q for q in p.inputs]
        if sub:
            inputs = data_inputs(self.graph.ops[i])
            if len(inputs) < len(sub):
                return False
            orders = [inputs]
            if _commutative(p.kind) and len(inputs) >= 2:
                orders.append([inputs[1], inputs[0], *inputs[2:]])
            for values in orders:
                trial_members, trial_named = set(members), dict(named)
                trial_members.add(i)
                if all(
                    self._match_input(q, v, trial_members, trial_named)
                    for q, v in zip(sub, values, strict=False)
                ):
                    members |= trial_members
                    named.update(trial_named)
                    break
            else:
                return False
        members.add(i)
        if p.name:
            named[p.name] = i
        return True

    def _match_input(
        self, q: object, v: ir.Value, members: set[int], named: dict[str, int]
    ) -> bool:
        if not isinstance(q, Pattern):
            return True
        j = self.graph.producer.get(v, ARG)
        return j != ARG and self._match(q, j, members, named)


def _leaks(graph: FunctionGraph, match: Match) -> bool:
    """Whether any non-root member's result is used outside the match."""
    inside = {graph.ops[i] for i in match.members}
    for i in match.members[:-1]:
        for result in graph.ops[i].results:
            for use in result.uses:
                owner = graph.top_level(use.owner)
                if owner is None or owner not in inside:
                    return True
    return False


@dataclass(frozen=True)
class CompositesPass(ModulePass):
    """Options:
    backends: backend names in priority order (``--backend`` fills this).
    """

    NAME = "byoc-composites"
    backends: tuple[str, ...] = ()

    def apply(self, module_op: ir.Operation) -> None:
        backends = registry.resolve(self.backends)
        next_id = 0
        for graph in function_graphs(module_op):
            kinds = [classify(op) for op in graph.ops]
            matcher = _Matcher(graph, kinds)
            claimed: set[int] = set()
            for i, op in enumerate(graph.ops):
                tag = byoc.get_composite(op)
                if tag is not None:  # from an earlier run: keep, never re-claim
                    claimed.add(i)
                    next_id = max(next_id, tag.id + 1)
            candidates: list[tuple[int, int, int, CompositeRule, Match]] = []
            for priority, backend in enumerate(backends):
                by_root: dict[KindKey, list[CompositeRule]] = {}
                for rule in backend.composites:
                    by_root.setdefault(rule.pattern.kind, []).append(rule)
                for i, kind in enumerate(kinds):
                    for rule in by_root.get(kind, ()):
                        m = matcher.match(rule.pattern, i)
                        if m is not None:
                            candidates.append((-rule.benefit, priority, i, rule, m))
            candidates.sort(key=lambda c: (c[0], c[1], c[2]))
            for _neg_benefit, priority, root, rule, m in candidates:
                if claimed.intersection(m.members) or _leaks(graph, m):
                    continue
                backend = backends[priority]
                if rule.check is not None:
                    ctx = CheckContext(
                        graph.ops[root],
                        kinds[root],
                        backend,
                        matches={k: graph.ops[v] for k, v in m.named.items()},
                        members=tuple(graph.ops[i] for i in m.members),
                    )
                    if rule.check(ctx) is not None:
                        continue
                claimed.update(m.members)
                tag = byoc.CompositeTag(backend.name, rule.name, next_id, rule.benefit)
                next_id += 1
                for i in m.members:
                    byoc.set_composite(graph.ops[i], tag)
