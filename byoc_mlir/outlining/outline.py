"""Outline every tagged region into ``@<backend>.<name>``, replaced by a call.

The one generic mechanism (vendors never touch it). For each function, the ops tagged
``byoc.target``/``byoc.region`` by merge-regions move into a new private function of the
same flavor (``func.func`` or IREE's ``util.func``), dotted so IREE can import it as
``module.function``. Values the region reads become arguments, values used outside
become results. Free ops (constants, ``tensor.empty``) are cloned in when small (splats,
scalars, ``tensor.empty``, few elements); large weights are passed as arguments unless
``move_weights`` is set (for vendors that want weights at compile time).

Tags are trusted only as far as they are consistent: regions that depend on each other
circularly are reported as an error, never outlined into invalid IR.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable
from dataclasses import dataclass

from iree.compiler import ir

from byoc_mlir import _compat
from byoc_mlir.dataflow import ARG, GLOBAL_LOAD, FunctionGraph, function_graphs
from byoc_mlir.dialects import byoc
from byoc_mlir.errors import ByocError


@dataclass(frozen=True)
class OutlineOptions:
    move_weights: bool = False
    """Clone every constant a region reads into it, however large."""
    clone_limit: int = 16
    """Non-splat constants with at most this many elements are cloned, larger ones passed."""
    move_weights_for: frozenset[str] = frozenset()
    """Backends whose regions get every constant moved in (`Backend.move_weights`), and
    ``backend.composite``: regions holding that composite (`CompositeRule.weights`)."""


_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
_FILL = "linalg.fill"
_EMPTY = "tensor.empty"


def sanitize(name: str) -> str:
    """A symbol fragment safe as a C identifier and a file name."""
    clean = _UNSAFE.sub("_", name).strip("_") or "fn"
    return clean if not clean[0].isdigit() else f"_{clean}"


def outline_module(
    module_op: ir.Operation,
    options: OutlineOptions | None = None,
    graphs: list[FunctionGraph] | None = None,
) -> list[ir.Operation]:
    """Outlines all tagged regions of every function; returns the new functions.

    ``graphs`` (prebuilt by a pipeline) must describe the module as it is now.
    """
    options = options or OutlineOptions()
    symbols = {
        _compat.symbol_name(op.operation)
        for op in _compat.module_body(module_op).operations
        if "sym_name" in op.operation.attributes
    }
    made: list[ir.Operation] = []
    with module_op.context:  # new attributes belong to the module's context
        for graph in graphs if graphs is not None else list(function_graphs(module_op)):
            made.extend(_outline_function(module_op, graph, options, symbols))
    return made


@dataclass
class _Region:
    backend: str
    id: int
    nodes: list[int]


def _regions(graph: FunctionGraph) -> list[_Region]:
    regions: dict[tuple[str, int], _Region] = {}
    for i in range(len(graph.ops)):
        tag = graph.region_of(i)
        if tag is not None:
            regions.setdefault(tag, _Region(tag[0], tag[1], [])).nodes.append(i)
    return sorted(regions.values(), key=lambda r: r.nodes[0])


def _schedule(graph: FunctionGraph, regions: list[_Region]) -> list[int] | None:
    """A topological order of the contracted graph as block ids, or None if unchanged.

    Blocks ``0..len(regions)-1`` are the regions; block ``len(regions) + i`` is host node i.
    Returns None when placing each region's call at its last member already works.
    Raises ByocError when the tagged regions form a cycle.
    """
    nreg = len(regions)
    block_of = [nreg + i for i in range(len(graph.ops))]
    for r, region in enumerate(regions):
        for n in region.nodes:
            block_of[n] = r
    nblocks = nreg + len(graph.ops)
    succs: list[set[int]] = [set() for _ in range(nblocks)]
    indeg = [0] * nblocks
    for n, preds in enumerate(graph.preds):
        b = block_of[n]
        for p in preds:
            pb = block_of[p]
            if pb != b and b not in succs[pb]:
                succs[pb].add(b)
                indeg[b] += 1
    anchor = [0] * nblocks  # the position a block's op/call takes when nothing moves
    for r, region in enumerate(regions):
        anchor[r] = region.nodes[-1]
    for i in range(len(graph.ops)):
        anchor[nreg + i] = i
    used = {block_of[n] for n in range(len(graph.ops))}
    heap = [(anchor[b], b) for b in used if indeg[b] == 0]
    heapq.heapify(heap)
    order: list[int] = []
    while heap:
        _, b = heapq.heappop(heap)
        order.append(b)
        for s in succs[b]:
            indeg[s] -= 1
            if indeg[s] == 0:
                heapq.heappush(heap, (anchor[s], s))
    if len(order) != len(used):
        stuck = sorted(r for r in range(nreg) if indeg[r] > 0)
        names = ", ".join(f"{regions[r].backend} region {regions[r].id}" for r in stuck)
        first = graph.ops[regions[stuck[0]].nodes[0]] if stuck else graph.ops[0]
        raise ByocError(
            f"tagged regions depend on each other in a cycle ({names}); re-run "
            f"byoc-merge-regions to form valid regions (from a placement plan: give the "
            f"ops region labels such that no region feeds one that feeds it back)",
            str(first.location),
        )
    anchors = [anchor[b] for b in order]
    if all(x < y for x, y in zip(anchors, anchors[1:], strict=False)):
        return None
    return order


def _outline_function(
    module_op: ir.Operation, graph: FunctionGraph, options: OutlineOptions, symbols: set[str]
) -> list[ir.Operation]:
    regions = _regions(graph)
    if not regions:
        return []
    order = _schedule(graph, regions)
    base = sanitize(_compat.symbol_name(graph.func))
    made: list[ir.Operation] = []
    calls: list[ir.Operation] = []
    # Outputs of regions already outlined -> the call results that now carry them; a
    # later region reading one must take the call result as its operand.
    replaced: dict[ir.Value, ir.Value] = {}
    copies: list[ir.Operation] = []
    module_ip = ir.InsertionPoint(_compat.module_body(module_op))
    for region in regions:
        name = _unique(f"{region.backend}.{base}_{region.id}", symbols)
        func, call = _outline_region(module_ip, graph, region, name, options, replaced, copies)
        made.append(func)
        calls.append(call)
    if graph.write_tags:
        in_region = {n for region in regions for n in region.nodes}
        for n, op in enumerate(graph.ops):
            if n not in in_region:  # host ops keep only their reason
                byoc.clear(op, (byoc.ACCEPT, byoc.REJECT, byoc.COMPOSITE))
    if order is not None and graph.terminator is not None:
        nreg = len(regions)
        for b in order:
            op = calls[b] if b < nreg else graph.ops[b - nreg]
            op.move_before(graph.terminator)
        _before_first_user(graph, copies)
    return made


def _before_first_user(graph: FunctionGraph, copies: list[ir.Operation]) -> None:
    """Moves each host copy (`_refillable`) just before its first reader: the schedule
    moved the ops around it, and a copy's sizes (host ``tensor.dim``) may have moved
    after it. They still precede every reader: the reader follows the region the copy
    came from, which reads the same sizes."""
    if not copies:
        return
    position = {
        _compat.op_key(o): k for k, o in enumerate(o.operation for o in graph.block.operations)
    }
    for copy in copies:
        readers = []
        for result in copy.results:
            for use in result.uses:
                owner = use.owner.operation
                while _compat.op_key(owner) not in position:  # nested: its top-level op
                    owner = owner.parent.operation
                readers.append(owner)
        if readers:
            copy.move_before(min(readers, key=lambda o: position[_compat.op_key(o)]))


def _refillable(op: ir.Operation, graph: FunctionGraph, inside: set[int]) -> bool:
    """A ``linalg.fill`` of a free value (constant) into a free init (``tensor.empty``),
    or a dynamically sized ``tensor.empty`` whose sizes come from outside the region."""
    if op.name == _EMPTY:
        return all(graph.producer.get(v, ARG) not in inside for v in op.operands)
    if op.name != _FILL:
        return False
    return all(graph.free.get(v) is not None for v in op.operands)


def _unique(name: str, symbols: set[str]) -> str:
    candidate, k = name, 1
    while candidate in symbols:
        candidate = f"{name}_{k}"
        k += 1
    symbols.add(candidate)
    return candidate


def _clonable(op: ir.Operation, options: OutlineOptions) -> bool:
    if op.name == GLOBAL_LOAD:
        return False  # a parameter: its value is not in the IR, the region receives it
    if options.move_weights or op.name != "arith.constant" and op.name != "tosa.const":
        return True
    attr = op.attributes["value" if "value" in op.attributes else "values"]
    if isinstance(attr, ir.DenseElementsAttr):
        dense = ir.DenseElementsAttr(attr)
        return dense.is_splat or len(dense) <= options.clone_limit
    if isinstance(op.results[0].type, ir.ShapedType):
        shaped = ir.ShapedType(op.results[0].type)
        return shaped.has_static_shape and shaped.rank == 0
    return True  # scalars


def graph_clonable(
    graph: FunctionGraph, options: OutlineOptions
) -> Callable[[ir.Value, ir.Operation], bool]:
    """`_clonable` memoised per free value of the graph (constants are read once)."""
    memo = graph.memo.setdefault(("clonable", options), {})

    def clonable(v: ir.Value, free: ir.Operation) -> bool:
        known = memo.get(v)
        if known is None:
            known = memo[v] = _clonable(free, options)
        return known

    return clonable


def _wants_weights(graph: FunctionGraph, region: _Region, wanted: frozenset[str]) -> bool:
    if not wanted:
        return False
    if region.backend in wanted:
        return True
    for n in region.nodes:
        tag = graph.composite_of(n)
        if tag is not None and f"{region.backend}.{tag.name}" in wanted:
            return True
    return False


def _outline_region(
    module_ip: ir.InsertionPoint,
    graph: FunctionGraph,
    region: _Region,
    name: str,
    options: OutlineOptions,
    replaced: dict[ir.Value, ir.Value],
    copies: list[ir.Operation],
) -> tuple[ir.Operation, ir.Operation]:
    members = [graph.ops[n] for n in region.nodes]
    inside = set(region.nodes)
    if not options.move_weights and _wants_weights(graph, region, options.move_weights_for):
        options = OutlineOptions(True, options.clone_limit)
    clonable = graph_clonable(graph, options)
    inputs: list[ir.Value] = []
    input_index: dict[ir.Value, int] = {}
    clones: dict[ir.Value, ir.Operation] = {}
    rewrites: list[tuple[ir.Operation, int, ir.Value]] = []
    for n, member in zip(region.nodes, members, strict=True):
        slots = [(member, k, v) for k, v in enumerate(graph.operands[n])] + graph.captures[n]
        for owner, idx, v in slots:
            p = graph.producer.get(v)
            if p is None or (p != ARG and p in inside):
                continue
            rewrites.append((owner, idx, v))
            free = graph.free.get(v) if p == ARG else None
            if free is not None and clonable(v, free):
                clones[v] = free
            elif v not in input_index:
                input_index[v] = len(inputs)
                inputs.append(v)
    outputs: list[ir.Value] = []
    external_uses: list[tuple[ir.Operation, int, int]] = []
    for n, member in zip(region.nodes, members, strict=True):
        if all(u in inside for u in graph.succs[n]):
            continue  # read only inside (the graph's users are a superset of the IR's)
        host_copy: ir.Operation | None = None
        for result in member.results:
            k = -1
            for use in list(result.uses):
                user = graph.node_of(use.owner)
                if user is not None and user in inside:
                    continue
                if _refillable(member, graph, inside) and (
                    user is None or graph.region_of(user) is None
                ):
                    # A fill of a constant is recomputed on the host rather than returned:
                    # a crossing buys nothing, and IREE cannot compile some consumers
                    # (pooling, batch_matmul) whose init arrives from outside a dispatch.
                    if host_copy is None:
                        host_copy = member.clone(ip=ir.InsertionPoint(member))
                        byoc.clear_member(host_copy)
                        byoc.clear(host_copy)
                        copies.append(host_copy)
                    use.owner.operands[use.operand_number] = host_copy.results[0]
                    continue
                if k < 0:
                    k = len(outputs)
                    outputs.append(result)
                external_uses.append((use.owner, use.operand_number, k))

    composites: list[str] = []
    units: dict[byoc.CompositeTag, list[ir.Operation]] = {}
    for n, member in zip(region.nodes, members, strict=True):
        tag = graph.composite_of(n)
        if tag is not None:
            units.setdefault(tag, []).append(member)
            if tag.name not in composites:
                composites.append(tag.name)
    last = members[-1]
    loc = last.location
    func, block = _compat.create_function(
        graph.flavor,
        name,
        [v.type for v in inputs],
        [v.type for v in outputs],
        module_ip,
        loc,
        byoc.outlined_attributes(region.backend, region.id, composites, loc.context),
    )
    call = _compat.create_call(
        graph.flavor,
        name,
        [replaced.get(v, v) for v in inputs],
        [v.type for v in outputs],
        ir.InsertionPoint(last),
        loc,
    )
    mapping: dict[ir.Value, ir.Value] = {v: block.arguments[i] for v, i in input_index.items()}
    body_ip = ir.InsertionPoint(block)
    for v, free in clones.items():
        if v not in mapping:
            mapping[v] = free.clone(ip=body_ip).results[0]  # free ops have one result
    for member in members:
        block.append(member)
        if graph.write_tags:
            byoc.clear_member(member)
    if not graph.write_tags:
        # Tags kept in memory never reached the IR; codegen reads the fused units there.
        for tag, unit in units.items():
            byoc.set_composite(unit, tag)
    for owner, idx, v in rewrites:
        owner.operands[idx] = mapping[v]
    _compat.create_return(graph.flavor, outputs, body_ip, loc)
    for owner, idx, k in external_uses:
        owner.operands[idx] = call.results[k]
    replaced.update(zip(outputs, call.results, strict=True))
    return func, call
