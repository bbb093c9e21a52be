"""Dynamic dimensions of a region, as expressions of its inputs' sizes.

For backends that take ``?`` dimensions: a region is lowered once, with each dynamic size
a `Sym`: a product of the inputs' sizes ``D[k]`` (``k`` counts the dimensions of all
inputs, in signature order: `input_dim` turns it back into (input, axis)) times a
constant. dnnl's generated C reads ``D`` when its runtime creates the region's
primitives for one set of input shapes; ccompiler's kernels take the sizes they use as
arguments, which the linked route passes through the dispatch's push constants.

`infer` finds the expressions: every linalg op ties the operand dimensions that share
a loop dimension, a result has its init's shape, a transpose permutes, a collapse
multiplies; dimensions tied to a static size are that size. Inputs whose sizes the IR
ties (a batch read by two inputs) must agree at run time: `infer` returns those
equalities for the runtime to check before oneDNN sees the shapes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from iree.compiler import ir
from iree.compiler.dialects import tensor

from byoc_mlir.codegen.hook import RegionView
from byoc_mlir.codegen.recognisers import GENERIC, contraction_batch
from byoc_mlir.errors import ByocError
from byoc_mlir.linalg_ops import linalg

COLLAPSE = tensor.CollapseShapeOp.OPERATION_NAME
TRANSPOSE = linalg.TransposeOp.OPERATION_NAME
MATMUL_MAPS = {
    linalg.MatmulOp.OPERATION_NAME: {
        "plain": [[0, 2], [2, 1], [0, 1]],
        "transposed_b": [[0, 2], [1, 2], [0, 1]],
    },
    linalg.BatchMatmulOp.OPERATION_NAME: {
        "plain": [[0, 1, 3], [0, 3, 2], [0, 1, 2]],
        "transposed_b": [[0, 1, 3], [0, 2, 3], [0, 1, 2]],
    },
}


def map_results(op: ir.Operation) -> list[list[int | None]]:
    """Each indexing map's results as loop dims (None for a constant result)."""
    out = []
    for m in ir.ArrayAttr(op.attributes["indexing_maps"]):
        amap = ir.AffineMapAttr(m).value
        row: list[int | None] = []
        for e in amap.results:
            row.append(ir.AffineDimExpr(e).position if isinstance(e, ir.AffineDimExpr) else None)
        out.append(row)
    return out


def matmul_layout(op: ir.Operation) -> str | None:
    """``plain`` or ``transposed_b`` (``A @ B^T``) from a matmul's indexing maps (a
    ``CONTRACTION`` generic is ``plain``)."""
    if op.name == GENERIC:
        return "plain" if contraction_batch(op) is not None else None
    maps = map_results(op) if "indexing_maps" in op.attributes else None
    known = MATMUL_MAPS[op.name]
    if maps is None:
        return "plain"
    return next((name for name, m in known.items() if m == maps), None)


class SymbolicError(ByocError, ValueError):
    """A dynamic dimension a region's inputs do not determine, or one used as static."""


@dataclass(frozen=True)
class Sym:
    """``coef * D[k1] * D[k2] ...``: a dimension known when the region is called."""

    coef: int
    vars: tuple[int, ...]

    def __mul__(self, other: object) -> Sym:
        if isinstance(other, Sym):
            return Sym(self.coef * other.coef, tuple(sorted(self.vars + other.vars)))
        if isinstance(other, int):
            return Sym(self.coef * other, self.vars)
        return NotImplemented

    __rmul__ = __mul__

    def __int__(self) -> int:
        raise SymbolicError(f"a dynamic dimension ({self.c()}) where a static one is needed")

    __index__ = __int__

    def c(self, size: str = "D[{}]") -> str:
        """The C expression, each input size named by ``size`` (``D[k]`` by default)."""
        terms = [size.format(k) for k in self.vars]
        if self.coef != 1 or not terms:
            terms.insert(0, str(self.coef))
        return terms[0] if len(terms) == 1 else "(" + " * ".join(terms) + ")"

    def value(self, sizes: Sequence[int]) -> int:
        return self.coef * math.prod(sizes[k] for k in self.vars)

    def to_json(self) -> list[int]:
        return [self.coef, *self.vars]


Dim = int | Sym
Shape = tuple[Dim, ...]
_Node = tuple[ir.Value, int]  # one dimension of one value


class _Dims:
    """Union-find over value dimensions, with what fixes a class: an input size, a
    static size, or a product of other classes (a collapse)."""

    def __init__(self) -> None:
        self.parent: dict[_Node, _Node] = {}
        self.inputs: dict[_Node, list[int]] = {}  # root -> input sizes D[k] in the class
        self.static: dict[_Node, int] = {}
        self.products: dict[_Node, tuple[int, list[_Node]]] = {}

    def find(self, n: _Node) -> _Node:
        root = n
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while n != root:
            self.parent[n], n = root, self.parent.get(n, n)
        return root

    def tie(self, a: _Node, b: _Node) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        self.parent[rb] = ra
        self.inputs.setdefault(ra, []).extend(self.inputs.pop(rb, []))
        if rb in self.static:
            self.static.setdefault(ra, self.static.pop(rb))
        if rb in self.products:
            self.products.setdefault(ra, self.products.pop(rb))


def _size(v: ir.Value, axis: int) -> int | None:
    t = ir.RankedTensorType(v.type)
    return None if ir.ShapedType(t).is_dynamic_dim(axis) else int(t.shape[axis])


def _rank(v: ir.Value) -> int:
    t = v.type
    return ir.RankedTensorType(t).rank if isinstance(t, ir.RankedTensorType) else 0


def _maps(op: ir.Operation) -> list[list[int | None]] | None:
    if "indexing_maps" in op.attributes:
        return map_results(op)
    known = MATMUL_MAPS.get(op.name)
    return [list(r) for r in known["plain"]] if known is not None else None


def _tie_op(dims: _Dims, op: ir.Operation) -> None:
    operands = [v for v in op.operands if isinstance(v.type, ir.RankedTensorType)]
    maps = _maps(op)
    if maps is not None and len(maps) == len(op.operands):  # (scalar operands: map ())
        loops: dict[int, _Node] = {}
        for v, row in zip(op.operands, maps, strict=True):
            if not isinstance(v.type, ir.RankedTensorType):
                continue
            for axis, loop in enumerate(row):
                if loop is None:
                    continue
                node = (v, axis)
                if loop in loops:
                    dims.tie(loops[loop], node)
                else:
                    loops[loop] = node
    if op.name == TRANSPOSE:
        perm = [int(x) for x in ir.DenseI64ArrayAttr(op.attributes["permutation"])]
        for axis, src in enumerate(perm):
            dims.tie((op.results[0], axis), (op.operands[0], src))
    if op.name == COLLAPSE:
        groups = [[int(ir.IntegerAttr(i).value) for i in g] for g in op.attributes["reassociation"]]
        src = op.operands[0]
        for axis, group in enumerate(groups):
            coef, factors = 1, []
            for k in group:
                n = _size(src, k)
                if n is None:
                    factors.append((src, k))
                else:
                    coef *= n
            if factors:
                dims.products[dims.find((op.results[0], axis))] = (coef, factors)
    # a destination-passing op's results have its inits' shapes
    n_res = len(op.results)
    inits = operands[len(operands) - n_res :]
    if op.name.startswith("linalg.") and n_res and len(inits) == n_res:
        for result, init in zip(op.results, inits, strict=True):
            for axis in range(_rank(result)):
                dims.tie((result, axis), (init, axis))


@dataclass
class Shapes:
    """Each value's dims (ints and `Sym`), and the input sizes that must agree."""

    of: dict[ir.Value, Shape]
    equal: list[tuple[Sym, Dim]]
    dynamic: bool

    def shape(self, v: ir.Value) -> Shape:
        known = self.of.get(v)
        if known is not None:
            return known
        t = ir.RankedTensorType(v.type)
        if not t.has_static_shape:
            raise SymbolicError(f"{t}: a dynamic value the region does not compute")
        return tuple(int(d) for d in t.shape)


def input_dims(region: RegionView) -> list[tuple[int, int]]:
    """(input, axis) of each ``D[k]``: the region inputs' dimensions, flat, in order."""
    return [(i, axis) for i, spec in enumerate(region.inputs) for axis in range(len(spec.shape))]


def infer(region: RegionView) -> Shapes:
    """The shapes of ``region``'s values with their dynamic dimensions as `Sym` of the
    input sizes.

    Raises:
        SymbolicError: a dynamic dimension the region's inputs do not determine.
    """
    dynamic = not all(s.is_static for s in region.inputs + region.outputs)
    if not dynamic:
        return Shapes({}, [], False)
    dims = _Dims()
    values: list[ir.Value] = []
    flat = 0
    for arg in region.args:
        for axis in range(_rank(arg)):
            n = _size(arg, axis)
            if n is None:
                dims.inputs[dims.find((arg, axis))] = [flat]
            flat += 1
        values.append(arg)
    for rop in region.ops:
        _tie_op(dims, rop.op)
        values.extend(rop.op.results)
    for v in values:  # static sizes fix their class
        for axis in range(_rank(v)):
            n = _size(v, axis)
            if n is not None:
                dims.static.setdefault(dims.find((v, axis)), n)
    resolved: dict[_Node, Dim | None] = {}

    def resolve(node: _Node, depth: int = 0) -> Dim | None:
        root = dims.find(node)
        if root in resolved:
            return resolved[root]
        resolved[root] = None  # a cycle resolves to nothing
        value: Dim | None = None
        if root in dims.static:
            value = dims.static[root]
        elif dims.inputs.get(root):
            value = Sym(1, (min(dims.inputs[root]),))
        elif root in dims.products and depth < 64:
            coef, factors = dims.products[root]
            product: Dim = coef
            for f in factors:
                part = resolve(f, depth + 1)
                if part is None:
                    break
                product = part * product  # type: ignore[operator]
            else:
                value = product
        resolved[root] = value
        return value

    shapes: dict[ir.Value, Shape] = {}
    for v in values:
        shape = []
        for axis in range(_rank(v)):
            d = resolve((v, axis))
            if d is None:
                where = v.owner.location if isinstance(v.owner, ir.OpView) else "an input"
                raise SymbolicError(
                    f"{region.name}: dimension {axis} of {v.type} is not derived "
                    f"from the region's input sizes",
                    location=str(where),
                )
            shape.append(d)
        shapes[v] = tuple(shape)
    equal: list[tuple[Sym, Dim]] = []
    for root, members in dims.inputs.items():
        if dims.find(root) != root:
            continue
        value = resolve(root)
        for k in members:
            if Sym(1, (k,)) != value and value is not None:
                equal.append((Sym(1, (k,)), value))
    return Shapes(shapes, equal, True)
