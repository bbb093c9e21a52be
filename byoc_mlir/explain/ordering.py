"""Crossing reduction for `byoc_mlir.explain.layout`: the order of the items in each layer.

Median sweeps down and up from three starts (depth-first from the sources, the drawing's
order, depth-first from the sinks) sort each layer cluster by cluster, so a cluster's
members stay contiguous (nested clusters too) and sibling clusters take one order for
all layers (their boxes cannot interleave); adjacent swaps then remove crossings; the
order with the fewest crossings wins. A mixin of the layout's state (declared here).
"""

from __future__ import annotations

from bisect import bisect_right, insort

SWEEPS, STALL, SWAPS = 12, 4, 4


class Ordering:
    """Orders ``layers``; the layout fills the attributes below before `_order` runs."""

    cids: list[str]
    ipath: list[list[int]]  # item -> its clusters, outermost first
    kind: list[int]  # 0 node, 1 dummy, 2 filler
    layer: list[int]
    chains: list[list[int]]  # each long edge's items, source to target
    links: list[tuple[int, int, float]]  # (upper item, lower item, weight)
    layers: list[list[int]]
    up: list[list[int]]
    down: list[list[int]]
    pos: list[int]
    rank: list[float]

    def _order(self) -> None:
        m = len(self.layer)
        self.up: list[list[int]] = [[] for _ in range(m)]
        self.down: list[list[int]] = [[] for _ in range(m)]
        for a, b, _ in self.links:
            self.down[a].append(b)
            self.up[b].append(a)
        drawing = [float(i) for i in range(m)]
        for chain in self.chains:
            for d in chain[1:-1]:
                drawing[d] = chain[0] + 0.5
        self.pos = [0] * m
        starts = (self._search(self.up, self.down), drawing, self._search(self.down, self.up))
        best = min((self._sweeps(key) for key in starts), key=lambda r: r[0])
        self.layers = best[1]
        self._positions()

    def _search(self, back: list[list[int]], ahead: list[list[int]]) -> list[float]:
        """Initial keys: the visit order of a depth-first search from the items without
        ``back`` neighbours (sources going down, sinks going up)."""
        key, seen, count = [0.0] * len(back), [False] * len(back), 0
        for root in range(len(back)) if back is self.up else reversed(range(len(back))):
            stack = [] if back[root] else [root]
            while stack:
                i = stack.pop()
                if not seen[i]:
                    seen[i], key[i], count = True, float(count), count + 1
                    stack += reversed(ahead[i])
        return key

    def _sweeps(self, key: list[float]) -> tuple[int, list[list[int]]]:
        """Median sweeps from the initial ``key``: (crossings, layers) of the best order."""
        self._ranks(key)
        for i, path in enumerate(self.ipath):
            if self.kind[i] == 2:
                key[i] = self.rank[path[-1]]
        self.layers = [[] for _ in range(max(self.layer, default=-1) + 1)]
        for i in range(len(self.layer)):
            self.layers[self.layer[i]].append(i)
        self.layers = [self._arrange(items, key) for items in self.layers]
        self._positions()
        best, kept, stall = self._crossings(), [list(x) for x in self.layers], 0
        for sweep in range(SWEEPS):
            if best == 0 or stall >= STALL:
                break
            down = sweep % 2 == 0
            for k in range(1, len(self.layers)) if down else range(len(self.layers) - 2, -1, -1):
                for i in self.layers[k]:  # sibling clusters may change places here...
                    near = sorted(self.pos[j] for j in (self.up[i] if down else self.down[i]))
                    key[i] = _median(near) if near else self.pos[i]
                self.layers[k] = self._arrange(self.layers[k], key, free=True)
                self._positions(k)
            at = [
                self.pos[i] / max(1, len(self.layers[self.layer[i]]) - 1)
                for i in range(len(self.pos))
            ]
            self._ranks(at)  # ...and take one order, the same in every layer, here
            self.layers = [self._arrange(items, at) for items in self.layers]
            self._positions()
            self._transpose()
            found = self._crossings()
            best, kept, stall = (
                (found, [list(x) for x in self.layers], 0)
                if found < best
                else (best, kept, stall + 1)
            )
        return best, kept

    def _positions(self, k: int | None = None) -> None:
        for items in self.layers if k is None else [self.layers[k]]:
            for p, i in enumerate(items):
                self.pos[i] = p

    def _ranks(self, value: list[float]) -> None:
        """A cluster's rank among its siblings: its members' mean ``value``."""
        total, count = [0.0] * len(self.cids), [0] * len(self.cids)
        for i, path in enumerate(self.ipath):
            for c in path if self.kind[i] != 2 else ():
                total[c] += value[i]
                count[c] += 1
        self.rank = [t / max(1, n) for t, n in zip(total, count, strict=True)]

    def _arrange(self, items: list[int], key: list[float], free: bool = False) -> list[int]:
        """Sorts a layer by ``key`` cluster by cluster (a cluster by its members' mean);
        sibling clusters in rank order unless ``free``."""
        pos, ipath = self.pos, self.ipath

        def arrange(group: list[int], depth: int) -> list[int]:
            if all(len(ipath[i]) <= depth for i in group):  # no cluster left: plain sort
                return sorted(group, key=lambda i: (key[i], pos[i], i))
            entries: dict[int, list[int]] = {}
            for i in group:
                entries.setdefault(ipath[i][depth] if len(ipath[i]) > depth else -1 - i, []).append(
                    i
                )
            scored = sorted(
                (sum(key[i] for i in its) / len(its), min(pos[i] for i in its), e)
                for e, its in entries.items()
            )
            order = [e for _, _, e in scored]
            slots = [] if free else [k for k, e in enumerate(order) if e >= 0]
            ranked = sorted((order[k] for k in slots), key=lambda c: (self.rank[c], c))
            for k, c in zip(slots, ranked, strict=True):
                order[k] = c
            return [
                i for e in order for i in (arrange(entries[e], depth + 1) if e >= 0 else entries[e])
            ]

        return arrange(items, 0)

    def _transpose(self) -> None:
        """Swaps neighbours of one cluster (nodes, dummies) while that removes crossings."""
        pos, up, down = self.pos, self.up, self.down

        def gain(a: int, b: int) -> int:  # crossings a-b minus crossings b-a
            d = 0
            for near in (up, down):
                xs, ys = near[a], near[b]
                if len(xs) == 1 and len(ys) == 1:  # dummies: the common case
                    px, py = pos[xs[0]], pos[ys[0]]
                    d += (px > py) - (px < py)
                    continue
                for x in xs:
                    px = pos[x]
                    for y in ys:
                        d += (px > pos[y]) - (px < pos[y])
            return d

        dirty = [True] * len(self.layers)
        for _ in range(SWAPS):
            changed = [False] * len(self.layers)
            for k, items in enumerate(self.layers):
                for p in range(len(items) - 1) if dirty[k] else ():
                    a, b = items[p], items[p + 1]
                    if self.ipath[a] == self.ipath[b] and gain(a, b) > 0:
                        items[p], items[p + 1], pos[a], pos[b] = b, a, p + 1, p
                        changed[k] = True
            dirty = [any(changed[max(0, k - 1) : k + 2]) for k in range(len(self.layers))]
            if not any(dirty):
                break

    def _crossings(self) -> int:
        """Crossings between adjacent layers: inversions of their edges' lower ends."""
        total = 0
        for items in self.layers[:-1]:
            seen: list[int] = []
            for _, b in sorted((self.pos[a], self.pos[b]) for a in items for b in self.down[a]):
                total += len(seen) - bisect_right(seen, b)
                insort(seen, b)
        return total


def _median(ps: list[int]) -> float:
    """The median position; for an even count, weighted towards the denser side."""
    n = len(ps)
    if n % 2:
        return float(ps[n // 2])
    left, right = ps[n // 2 - 1] - ps[0], ps[-1] - ps[n // 2]
    if n == 2 or left + right == 0:
        return (ps[n // 2 - 1] + ps[n // 2]) / 2
    return (ps[n // 2 - 1] * right + ps[n // 2] * left) / (left + right)
