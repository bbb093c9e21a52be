"""`Blocks`: union-find over the units of one function, with a topological order of the
merged blocks kept up to date as they merge (see `byoc_mlir.passes.merge_regions`)."""

from __future__ import annotations

_GAP = 1 << 32
"""Spacing of fresh order labels: blocks moved between two neighbours take labels in the
gap; when a gap runs out, the whole order is relabelled (rare: 32 halvings)."""


class Blocks:
    """Union-find over units with a maintained topological order of the blocks: a linked
    list of the live blocks with increasing integer labels (order maintenance)."""

    def __init__(self, sizes: list[int], backends: list[str | None], max_size: int):
        n = len(sizes)
        self.parent = list(range(n))
        self.label = [i * _GAP for i in range(n)]
        self.prev = list(range(-1, n - 1))
        self.next = [*range(1, n), -1][:n]
        self.head, self.tail = (0, n - 1) if n else (-1, -1)
        self.out: list[set[int]] = [set() for _ in range(n)]
        self.ins: list[set[int]] = [set() for _ in range(n)]
        self.members: list[list[int]] = [[u] for u in range(n)]
        self.size = list(sizes)
        self.backend = list(backends)
        self.cycle_refused = [False] * n
        self.max_size = max_size

    def find(self, u: int) -> int:
        parent = self.parent
        root = u
        while parent[root] != root:
            root = parent[root]
        while parent[u] != root:
            parent[u], u = root, parent[u]
        return root

    def add_edge(self, src: int, dst: int) -> None:
        self.out[self.find(src)].add(dst)
        self.ins[dst].add(src)

    def try_merge(self, a: int, b: int, budget: int = 0) -> bool:
        """Merges blocks ``a`` and ``b`` if the contracted graph stays acyclic.

        Two searches inside the window between them run in turn, one block each: back
        from the later block (blocks that reach it) and forward from the earlier (blocks
        it reaches). A block found by both would close a cycle; the first search to
        finish proves there is none, and only its blocks move: those reaching the later
        block go just before the merged block (which takes the earlier one's place), or
        those reached from the earlier one go just after it (in the later one's place).
        So a merge costs what the smaller side costs, whatever lies in between.

        With ``budget``, gives up (False) once the searches have looked at that many
        edges: for optional merges, whose cost must not grow with the graph.
        """
        label = self.label
        if label[a] > label[b]:
            a, b = b, a
        if self.max_size and self.size[a] + self.size[b] > self.max_size:
            return False
        lo, hi = label[a], label[b]
        find, ins, out = self.find, self.ins, self.out
        left = budget or float("inf")
        backward: list[int] = []  # blocks in the window that reach b
        forward: list[int] = []  # blocks in the window that a reaches
        back_stack, fwd_stack = [b], [a]
        back_seen, fwd_seen = {a, b}, {a, b}
        while back_stack and fwd_stack:
            x = back_stack.pop()
            left -= len(ins[x])
            for p in ins[x]:
                p = find(p)
                if p == a:
                    if x != b:
                        self.cycle_refused[a] = self.cycle_refused[b] = True
                        return False
                elif p not in back_seen and label[p] > lo:
                    back_seen.add(p)
                    backward.append(p)
                    back_stack.append(p)
            if not back_stack:
                break
            x = fwd_stack.pop()
            left -= len(out[x])
            for t in out[x]:
                t = find(t)
                if t == b:
                    if x != a:
                        self.cycle_refused[a] = self.cycle_refused[b] = True
                        return False
                elif t not in fwd_seen and label[t] < hi:
                    fwd_seen.add(t)
                    forward.append(t)
                    fwd_stack.append(t)
            if left < 0:
                return False
        if not back_stack:  # nothing else reaches b: the merged block stands where a was
            backward.sort(key=label.__getitem__)
            moved = {a, b, *backward}
            after = self.next[a]
            while after in moved:  # the blocks just after a may be moving too
                after = self.next[after]
            root = self._union(a, b)
            self._move(moved, [*backward, root], after)
        else:  # nothing else is reached from a: the merged block stands where b was
            forward.sort(key=label.__getitem__)
            after = self.next[b]
            root = self._union(a, b)
            self._move({a, b, *forward}, [root, *forward], after)
        return True

    def _move(self, out: set[int], seq: list[int], before: int) -> None:
        """Unlinks ``out``, then links ``seq`` in order just before block ``before``
        (-1: at the end), with labels in the gap there. ``before`` is not in ``out``."""
        prev, next_, label = self.prev, self.next, self.label
        for x in out:
            p, q = prev[x], next_[x]
            if p >= 0:
                next_[p] = q
            else:
                self.head = q
            if q >= 0:
                prev[q] = p
            else:
                self.tail = p
        p = prev[before] if before >= 0 else self.tail
        for x in seq:
            prev[x], next_[x] = p, before
            if p >= 0:
                next_[p] = x
            else:
                self.head = x
            p = x
        if before >= 0:
            prev[before] = p
        else:
            self.tail = p
        first, k = prev[seq[0]], len(seq)
        if first < 0 and before < 0:
            low, high = 0, (k + 1) * _GAP
        elif first < 0:
            high = label[before]
            low = high - (k + 1) * _GAP
        elif before < 0:
            low = label[first]
            high = low + (k + 1) * _GAP
        else:
            low, high = label[first], label[before]
        if high - low <= k:
            self._relabel()
            return
        step = (high - low) // (k + 1)
        for i, x in enumerate(seq, 1):
            label[x] = low + i * step

    def _relabel(self) -> None:
        x, k = self.head, 0
        while x >= 0:
            self.label[x] = k * _GAP
            k += 1
            x = self.next[x]

    def _union(self, a: int, b: int) -> int:
        if len(self.members[a]) < len(self.members[b]):
            a, b = b, a
        self.parent[b] = a
        self.members[a].extend(self.members[b])
        self.size[a] += self.size[b]
        self.cycle_refused[a] = self.cycle_refused[a] or self.cycle_refused[b]
        for edges in (self.out, self.ins):
            big, small = edges[a], edges[b]
            big.update(small)
            edges[b] = set()
            for m in self.members[b]:
                big.discard(m)
            for s in small:
                if self.find(s) == a:
                    big.discard(s)
        return a
