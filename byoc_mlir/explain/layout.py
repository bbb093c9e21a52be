"""A layered (Sugiyama-style) layout with nested clusters, in pure Python.

Places the partition picture's nodes without Graphviz, so ``--graph FILE.svg`` needs
nothing but pip. Generic layered-layout packages on PyPI place nodes but not clusters,
and the picture's point is its clusters (one box per region, inside one per function),
so this layout keeps them in every phase (``bench/graph_layout.py`` measures it against
Graphviz and those packages):

1. layers: longest path from the sources (every edge points down), then a node with
   fewer producers than consumers moves down next to its first consumer;
2. an edge longer than one layer gets a dummy node per layer it crosses; a dummy
   belongs to the innermost cluster of the edge's source (target) while that cluster
   still (already) spans its layer, else to the common ancestor, so edges leave a box at
   its bottom and enter at its top; a cluster with a layer of its span holding nothing
   of its own gets an empty filler there, so it reserves its width;
3. order (`byoc_mlir.explain.ordering`): the items of each layer sorted cluster by
   cluster, crossings reduced;
4. x: separation constraints in every layer (node widths, cluster padding, a cluster's
   left and right sides as variables shared by all its layers) solved by block merging
   (Dwyer, Marriott and Stuckey's "satisfy" from VPSC) towards the mean of each node's
   neighbours, a few rounds; then each long edge's dummies line up where there is room;
5. y and boxes: each layer as high as its nodes, with room between layers for the boxes
   ending above and starting below; a cluster's box is its members' extent plus padding,
   with its label on top.

Deterministic (no randomness, no set iteration order): the same graph gives the same
layout. 400 nodes take well under a second; the tools collapse bigger graphs first.
"""

from __future__ import annotations

import heapq

from byoc_mlir.explain.drawing import Box, Graph, Layout
from byoc_mlir.explain.ordering import Ordering

NODE_SEP, DUMMY_SEP, CLUSTER_SEP, PAD, LAYER_SEP = 18.0, 8.0, 10.0, 8.0, 25.0
ROUNDS = 12


def place(graph: Graph) -> Layout:
    """Lays the graph out (see the module docstring)."""
    return _Layered(graph).run()


class _Layered(Ordering):
    """Items are the nodes (first, in the graph's order), then dummies and fillers."""

    def __init__(self, g: Graph) -> None:
        self.g, self.ids = g, list(g.sizes)
        used: set[str] = set()
        for o in g.owner.values():
            while o and o not in used:
                used.add(o)
                o = g.parent[o]
        self.cids = [c for c in g.parent if c in used]  # a box needs members
        index = {c: k for k, c in enumerate(self.cids)}
        self.cpath: list[list[int]] = []  # cluster -> its clusters, outermost first
        for c in self.cids:
            p = g.parent[c]
            self.cpath.append([*(self.cpath[index[p]] if p else []), index[c]])
        self.ipath = [self.cpath[index[o]] if (o := g.owner.get(i)) else [] for i in self.ids]
        self.width = [g.sizes[i][0] for i in self.ids]
        self.height = [g.sizes[i][1] for i in self.ids]
        self.kind = [0] * len(self.ids)  # 0 node, 1 dummy, 2 filler
        nodes = {n: k for k, n in enumerate(self.ids)}
        self.edges = [(nodes[u], nodes[v]) for u, v in g.edges if u != v]

    def run(self) -> Layout:
        self._layer()
        self._dummies()
        self._order()
        return self._geometry(self._x())

    def _layer(self) -> None:
        n = len(self.ids)
        succ: list[list[int]] = [[] for _ in range(n)]
        indeg = [0] * n
        for u, v in sorted(set(self.edges)):
            succ[u].append(v)
            indeg[v] += 1
        topo: list[int] = []
        ready, done = [u for u in range(n) if not indeg[u]], [False] * n
        while len(topo) < n:
            if not ready:  # a cycle (inconsistent input): the first node left breaks it
                ready.append(next(u for u in range(n) if not done[u]))
            u = heapq.heappop(ready)
            if not done[u]:
                done[u] = True
                topo.append(u)
                for v in succ[u]:
                    indeg[v] -= 1
                    if not indeg[v] and not done[v]:
                        heapq.heappush(ready, v)
        rank = {u: k for k, u in enumerate(topo)}
        self.flipped = {(u, v) for u, v in self.edges if rank[u] > rank[v]}
        self.dag = sorted({(u, v) if rank[u] < rank[v] else (v, u) for u, v in self.edges})
        succ, preds = [[] for _ in range(n)], [0] * n
        for u, v in self.dag:
            succ[u].append(v)
            preds[v] += 1
        self.layer = [0] * n
        for u in topo:
            for v in succ[u]:
                self.layer[v] = max(self.layer[v], self.layer[u] + 1)
        for u in reversed(topo):  # towards the consumers when that shortens edges
            if succ[u] and preds[u] < len(succ[u]):
                self.layer[u] = min(self.layer[v] for v in succ[u]) - 1

    def _add(self, layer: int, path: list[int], kind: int) -> int:
        self.layer.append(layer)
        self.ipath.append(path)
        self.kind.append(kind)
        self.width.append(0.0)
        self.height.append(0.0)
        return len(self.layer) - 1

    def _dummies(self) -> None:
        nc = len(self.cids)
        first, last = [1 << 30] * nc, [-1] * nc
        for i in range(len(self.ids)):
            for c in self.ipath[i]:
                first[c], last[c] = min(first[c], self.layer[i]), max(last[c], self.layer[i])
        self.first, self.last = first, last
        self.chains: list[list[int]] = []
        self.links: list[tuple[int, int, float]] = []
        for u, v in self.dag:
            pu, pv = self.ipath[u], self.ipath[v]
            common = 0
            while common < min(len(pu), len(pv)) and pu[common] == pv[common]:
                common += 1
            chain = [u]
            for layer in range(self.layer[u] + 1, self.layer[v]):
                own = next((k for k in range(len(pu), common, -1) if last[pu[k - 1]] >= layer), 0)
                path = pu[:own]
                if not own:
                    own = next(
                        (k for k in range(len(pv), common, -1) if first[pv[k - 1]] <= layer), 0
                    )
                    path = pv[:own] if own else pu[:common]
                chain.append(self._add(layer, path, 1))
            chain.append(v)
            self.chains.append(chain)
            for a, b in zip(chain, chain[1:], strict=False):
                self.links.append((a, b, (1.0, 2.0, 8.0)[(self.kind[a] > 0) + (self.kind[b] > 0)]))
        present = {(c, self.layer[i]) for i in range(len(self.layer)) for c in self.ipath[i]}
        for c in sorted(range(nc), key=lambda c: -len(self.cpath[c])):
            for layer in range(first[c], last[c] + 1):
                if (c, layer) not in present:
                    self._add(layer, self.cpath[c], 2)
                    present.update((a, layer) for a in self.cpath[c])

    # --- order -----------------------------------------------------------------------------

    # --- x -------------------------------------------------------------------------------

    def _constraints(self) -> list[list[tuple[int, float]]]:
        """Per variable, (variable on its left, least distance); the variables are the
        items, then each cluster's left and right side (``m + 2c``, ``m + 2c + 1``)."""
        m, gaps = len(self.layer), dict[tuple[int, int], float]()
        for items in self.layers:
            tokens: list[tuple[int, int]] = []  # (variable, 0 item | 1 open | 2 close)
            stack: list[int] = []
            for i in [*items, -1]:
                p, same = self.ipath[i] if i >= 0 else [], 0
                while same < min(len(stack), len(p)) and stack[same] == p[same]:
                    same += 1
                while len(stack) > same:
                    tokens.append((m + 2 * stack.pop() + 1, 2))
                for c in p[same:]:
                    stack.append(c)
                    tokens.append((m + 2 * c, 1))
                tokens += [(i, 0)] if i >= 0 else []
            for (a, ta), (b, tb) in zip(tokens, tokens[1:], strict=False):
                if ta == tb == 0:
                    gap = (NODE_SEP, (NODE_SEP + DUMMY_SEP) / 2, DUMMY_SEP)[
                        (self.kind[a] > 0) + (self.kind[b] > 0)
                    ]
                else:
                    gap = CLUSTER_SEP if (ta == 2 and tb != 2) or (ta == 0 and tb == 1) else PAD
                gap += (self.width[a] / 2 if ta == 0 else 0.0) + (
                    self.width[b] / 2 if tb == 0 else 0.0
                )
                gaps[(a, b)] = max(gaps.get((a, b), 0.0), gap)
        for c, cid in enumerate(self.cids):
            gaps[(m + 2 * c, m + 2 * c + 1)] = self.g.label_sizes[cid][0] + 2 * PAD
        into: list[list[tuple[int, float]]] = [[] for _ in range(m + 2 * len(self.cids))]
        for (a, b), gap in gaps.items():
            into[b].append((a, gap))
        return into

    def _x(self) -> list[float]:
        into, m = self._constraints(), len(self.layer)
        outdeg, out = [0] * len(into), [list[int]() for _ in into]
        for b, lefts in enumerate(into):
            for a, _ in lefts:
                out[a].append(b)
                outdeg[b] += 1
        topo = [v for v in range(len(into)) if not outdeg[v]]
        for v in topo:  # grows while it is read (Kahn); acyclic: sibling clusters keep order
            for b in out[v]:
                outdeg[b] -= 1
                topo += [b] if not outdeg[b] else []
        near: list[list[tuple[int, float]]] = [[] for _ in range(m)]
        for a, b, w in self.links:
            near[a].append((b, w))
            near[b].append((a, w))
        weight = [sum(w for _, w in ns) or 0.01 for ns in near] + [0.001] * (len(into) - m)
        xs = _satisfy(topo, into, [0.0] * len(into), weight)
        for _ in range(ROUNDS):
            want = [
                sum(xs[j] * w for j, w in near[i]) / weight[i] if near[i] else xs[i]
                for i in range(m)
            ]
            lo, hi = self._extents(xs)
            want += [x for c in range(len(self.cids)) for x in (lo[c] - PAD, hi[c] + PAD)]
            xs = _satisfy(topo, into, want, weight)
        self._straighten(xs, into, out)
        return xs

    def _extents(self, xs: list[float]) -> tuple[list[float], list[float]]:
        """Each cluster's leftmost and rightmost member edge (fillers left out)."""
        lo, hi = [1e18] * len(self.cids), [-1e18] * len(self.cids)
        for i in range(len(self.layer)):
            for c in self.ipath[i] if self.kind[i] != 2 else ():
                lo[c], hi[c] = (
                    min(lo[c], xs[i] - self.width[i] / 2),
                    max(hi[c], xs[i] + self.width[i] / 2),
                )
        return lo, hi

    def _straighten(
        self, xs: list[float], into: list[list[tuple[int, float]]], out: list[list[int]]
    ) -> None:
        """Lines up each long edge's dummies where their neighbours leave room: runs of
        them become vertical (at the source's or the target's x when that fits)."""
        gap = {(a, b): g for b, lefts in enumerate(into) for a, g in lefts}
        for chain in self.chains:
            dummies, k = chain[1:-1], 0
            while k < len(dummies):
                lo, hi, run = -1e18, 1e18, []
                for d in dummies[k:]:
                    dlo = min(xs[d], max((xs[a] + g for a, g in into[d]), default=-1e18))
                    dhi = max(xs[d], min((xs[b] - gap[(d, b)] for b in out[d]), default=1e18))
                    if max(lo, dlo) > min(hi, dhi):
                        break
                    lo, hi = max(lo, dlo), min(hi, dhi)
                    run.append(d)
                ends = [xs[chain[0]]] * (k == 0) + [xs[chain[-1]]] * (k + len(run) == len(dummies))
                middle = sorted(xs[d] for d in run)[len(run) // 2]
                x = next((e for e in ends if lo <= e <= hi), min(max(middle, lo), hi))
                for d in run:
                    xs[d] = x
                k += len(run)

    # --- y, boxes, edges -----------------------------------------------------------------

    def _geometry(self, xs: list[float]) -> Layout:
        m, nc, nl = len(self.layer), len(self.cids), len(self.layers)
        labels = [self.g.label_sizes[c] for c in self.cids]
        top, bottom = [PAD + h for _, h in labels], [PAD] * nc  # room above/below the layers
        deepest = sorted(range(nc), key=lambda c: -len(self.cpath[c]))
        for c in deepest:
            if len(self.cpath[c]) > 1:
                p = self.cpath[c][-2]
                if self.first[p] == self.first[c]:
                    top[p] = max(top[p], PAD + labels[p][1] + top[c])
                if self.last[p] == self.last[c]:
                    bottom[p] = max(bottom[p], PAD + bottom[c])
        above, below = [0.0] * nl, [0.0] * nl
        for c in range(nc):
            above[self.first[c]] = max(above[self.first[c]], top[c])
            below[self.last[c]] = max(below[self.last[c]], bottom[c])
        heights = [max((self.height[i] for i in items), default=0.0) for items in self.layers]
        ytop, y = [0.0] * nl, 0.0
        for k in range(nl):
            ytop[k] = y = y + above[k] + (LAYER_SEP + below[k - 1] if k else 0.0)
            y += heights[k]
        lo, hi = self._extents(xs)
        boxes: dict[int, Box] = {}
        for c in deepest:  # children first: a box grows around the boxes inside it
            full = labels[c][0] + 2 * PAD
            x0, x1 = lo[c] - PAD, hi[c] + PAD
            if x1 - x0 < full:  # as wide as its label, within its slot
                x0 = min(max(xs[m + 2 * c], (x0 + x1 - full) / 2), xs[m + 2 * c + 1] - full)
                x1 = x0 + full
            last = self.last[c]
            boxes[c] = Box(
                x0, ytop[self.first[c]] - top[c], x1, ytop[last] + heights[last] + bottom[c]
            )
            if len(self.cpath[c]) > 1:
                p = self.cpath[c][-2]
                lo[p], hi[p] = min(lo[p], x0), max(hi[p], x1)
        left = min(
            [xs[i] - self.width[i] / 2 for i in range(m)] + [b.x0 for b in boxes.values()],
            default=0.0,
        )
        right = max(
            [xs[i] + self.width[i] / 2 for i in range(m)] + [b.x1 for b in boxes.values()],
            default=0.0,
        )
        mid = [ytop[self.layer[i]] + heights[self.layer[i]] / 2 for i in range(m)]
        nodes = {
            name: Box(xs[i] - w / 2 - left, mid[i] - h / 2, xs[i] + w / 2 - left, mid[i] + h / 2)
            for i, (name, w, h) in enumerate(zip(self.ids, self.width, self.height, strict=False))
        }
        clusters = {
            self.cids[c]: Box(b.x0 - left, b.y0, b.x1 - left, b.y1)
            for c, b in sorted(boxes.items())
        }
        ports: dict[tuple[int, int], float] = {}  # edge ends spread along a side by direction
        for i in range(len(self.ids)):
            for near in (self.up[i], self.down[i]):
                step = min(8.0, 0.6 * self.width[i] / max(1, len(near) - 1))
                for k, j in enumerate(sorted(near, key=lambda j: (xs[j], j))):
                    ports[(i, j)] = (k - (len(near) - 1) / 2) * step
        edges = []
        for chain in self.chains:
            u, v = chain[0], chain[-1]
            pts = [(xs[u] + ports[(u, chain[1])] - left, mid[u] + self.height[u] / 2)]
            for d in chain[1:-1]:
                k = self.layer[d]
                pts += [(xs[d] - left, ytop[k])] + [(xs[d] - left, ytop[k] + heights[k])] * (
                    heights[k] > 0
                )
            pts.append((xs[v] + ports[(v, chain[-2])] - left, mid[v] - self.height[v] / 2))
            flip = (v, u) in self.flipped
            edges.append(
                (self.ids[v], self.ids[u], pts[::-1]) if flip else (self.ids[u], self.ids[v], pts)
            )
        order = {e: k for k, e in reversed(list(enumerate(self.g.edges)))}
        edges.sort(key=lambda e: order.get((e[0], e[1]), len(order)))
        layers = {name: self.layer[i] for i, name in enumerate(self.ids)}
        return Layout(nodes, clusters, edges, layers, right - left, y + (below[-1] if nl else 0.0))


def _satisfy(
    topo: list[int], into: list[list[tuple[int, float]]], want: list[float], weight: list[float]
) -> list[float]:
    """Positions near ``want`` (weighted least squares within blocks) that keep every
    ``x[b] >= x[a] + gap``: blocks of variables at fixed offsets, merged along their
    most violated constraint, variable by variable in topological order."""
    n = len(want)
    block, off, members = list(range(n)), [0.0] * n, [[v] for v in range(n)]
    wsum, wdes, pos = list(weight), [w * d for w, d in zip(weight, want, strict=True)], list(want)
    heaps: list[list[tuple[float, int, int, float]]] = [[] for _ in range(n)]
    for v in topo:
        b = v
        heap = heaps[b] = [(-(pos[block[a]] + off[a] + gap), a, v, gap) for a, gap in into[v]]
        heapq.heapify(heap)
        while heap:
            negk, a, r, gap = heap[0]
            bl = block[a]
            if bl == b:  # inside the block already
                heapq.heappop(heap)
                continue
            k = pos[bl] + off[a] + gap - off[r]  # the block position this constraint needs
            if abs(k + negk) > 1e-9:  # stale key: a block moved since it was pushed
                heapq.heapreplace(heap, (-k, a, r, gap))
                continue
            if k - pos[b] <= 1e-9:
                break
            heapq.heappop(heap)
            shift = off[r] - gap - off[a]  # bl's offsets in b's frame: a -> r tight
            if len(members[bl]) > len(members[b]):  # keep the bigger block's frame
                b, bl, shift = bl, b, -shift
            for u in members[bl]:
                block[u] = b
                off[u] += shift
            members[b] += members[bl]
            wsum[b] += wsum[bl]
            wdes[b] += wdes[bl] - shift * wsum[bl]
            pos[b] = wdes[b] / wsum[b]
            heap = heaps[b]
            for nk, a2, r2, g2 in heaps[bl]:
                heapq.heappush(heap, (nk + shift, a2, r2, g2))
    xs = [pos[block[v]] + off[v] for v in range(n)]
    for v in topo:  # exactly feasible whatever stale keys were left behind
        for a, gap in into[v]:
            xs[v] = max(xs[v], xs[a] + gap)
    return xs
