"""``byoc-fold-constants``: compute at compile time what only depends on weights.

Frontends leave arithmetic on weights in the graph: torch lowers ``nn.Linear`` as a
``linalg.transpose`` of its weight feeding the matmul, and BatchNorm's ``rsqrt(var +
eps)`` (or ``1 / sqrt(var + eps)``) as elementwise generics on constant vectors. No
backend pattern reads a weight through a transpose, and each such op is a host op that
splits regions, so the whole layer stayed on the host. This pass evaluates, with numpy,
every op whose tensor inputs are all constants and replaces it by one ``arith.constant``
holding the result; the matmul then reads its weight directly and BatchNorm becomes a
chain of per-channel ops on constants (which ``byoc-fold-batchnorm`` folds further).

Folded: ``linalg.transpose``, ``tensor.expand_shape``/``collapse_shape``, and elementwise
``linalg.generic`` (parallel iterators, identity output map, inputs read through
projections or broadcasts such as ``(d0, d1, d2, d3) -> (d0, d1, 0, 0)``) whose body only
uses the float arithmetic in `_UNARY`/`_BINARY`, the integer steps of a dequantize
(`_INTEGER`: sign or zero extension, integer add/sub/mul, int to float) and scalar
constants: a quantized model's per-channel dequantization of its int8 weights folds into
f32 weights, which backends prepack, instead of running on the host at every call.
Results are computed in the element type of the IR (float32 stays float32). Left alone: values that
cannot be read (an elided ``dense_resource``), results over ``max-elements``, and
broadcasts that would only make a weight bigger (a result larger than every input). Ops
left without users are erased.
"""

from __future__ import annotations

import math as pymath
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from iree.compiler import ir
from iree.compiler.dialects import arith, math, tensor

from byoc_mlir import _compat
from byoc_mlir.codegen.hook import constant_array
from byoc_mlir.dataflow import FunctionGraph, nested_operand_slots
from byoc_mlir.linalg_ops import linalg
from byoc_mlir.passes.base import ModulePass

_CONSTANT = arith.ConstantOp.OPERATION_NAME
_GENERIC = linalg.GenericOp.OPERATION_NAME
_TRANSPOSE = linalg.TransposeOp.OPERATION_NAME
_RESHAPES = frozenset((tensor.ExpandShapeOp.OPERATION_NAME, tensor.CollapseShapeOp.OPERATION_NAME))
_PARALLEL = "#linalg.iterator_type<parallel>"

DTYPES: dict[str, type[np.floating]] = {"f16": np.float16, "f32": np.float32, "f64": np.float64}
"""Float element types numpy computes in exactly (bf16 has no numpy type)."""

_UNARY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    arith.NegFOp.OPERATION_NAME: np.negative,
    math.AbsFOp.OPERATION_NAME: np.abs,
    math.SqrtOp.OPERATION_NAME: np.sqrt,
    math.RsqrtOp.OPERATION_NAME: lambda x: np.reciprocal(np.sqrt(x)),
    math.ExpOp.OPERATION_NAME: np.exp,
}
INT_DTYPES: dict[str, type[np.signedinteger]] = {
    "i8": np.int8, "i16": np.int16, "i32": np.int32, "i64": np.int64,
}  # fmt: skip
"""Signless integers as numpy holds them (signed); unsigned reads mask them (`_INTEGER`)."""


def _width(v: ir.Value) -> int:
    t = v.type
    element = ir.ShapedType(t).element_type if isinstance(t, ir.ShapedType) else t
    return ir.IntegerType(element).width


def _unsigned(a: np.ndarray, bits: int) -> np.ndarray:
    return a.astype(np.int64) & ((1 << bits) - 1)


def _wrapped(op: ir.Operation, x: np.ndarray) -> np.ndarray:
    """``x`` wrapped to the signed range of ``op``'s result width, as the op wraps."""
    bits = _width(op.results[0])
    half = 1 << (bits - 1)
    return ((x + half) % (1 << bits)) - half if bits < 64 else x


_INTEGER: dict[str, Callable[[ir.Operation, list[np.ndarray]], np.ndarray]] = {
    # integers are carried as int64 holding each value's signed form at its own width
    arith.ExtSIOp.OPERATION_NAME: lambda op, a: a[0].astype(np.int64),
    arith.ExtUIOp.OPERATION_NAME: lambda op, a: _unsigned(a[0], _width(op.operands[0])),
    arith.AddIOp.OPERATION_NAME: lambda op, a: _wrapped(op, a[0].astype(np.int64) + a[1]),
    arith.SubIOp.OPERATION_NAME: lambda op, a: _wrapped(op, a[0].astype(np.int64) - a[1]),
    arith.MulIOp.OPERATION_NAME: lambda op, a: _wrapped(op, a[0].astype(np.int64) * a[1]),
    arith.SIToFPOp.OPERATION_NAME: lambda op, a: a[0].astype(np.float64),
    arith.UIToFPOp.OPERATION_NAME: lambda op, a: _unsigned(a[0], _width(op.operands[0])).astype(
        np.float64
    ),
}

_BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    arith.AddFOp.OPERATION_NAME: np.add,
    arith.SubFOp.OPERATION_NAME: np.subtract,
    arith.MulFOp.OPERATION_NAME: np.multiply,
    arith.DivFOp.OPERATION_NAME: np.divide,
    arith.MaximumFOp.OPERATION_NAME: np.maximum,  # NaN-propagating, as numpy's
    arith.MinimumFOp.OPERATION_NAME: np.minimum,
    arith.MaxNumFOp.OPERATION_NAME: np.fmax,  # NaN-ignoring
    arith.MinNumFOp.OPERATION_NAME: np.fmin,
}


@dataclass(frozen=True)
class FoldConstantsPass(ModulePass):
    """Options: ``max-elements``, the largest result folded (bigger ones stay ops)."""

    NAME = "byoc-fold-constants"

    max_elements: int = 64 * 1024 * 1024

    def run(self, module_op: ir.Operation, graphs: list[FunctionGraph]) -> None:
        with module_op.context:
            for graph in graphs:
                fold_constants(graph, self.max_elements)


def fold_constants(graph: FunctionGraph, max_elements: int = 64 * 1024 * 1024) -> int:
    """Folds the constant ops of one function; returns how many were replaced."""
    folder = _Folder(graph, max_elements)
    for op in graph.ops:  # program order: a folded result feeds the next fold
        folder.fold(op)
    folder.erase_unused()
    return folder.count


class _Folder:
    def __init__(self, graph: FunctionGraph, max_elements: int):
        self.graph = graph
        self.max_elements = max_elements
        self.known: dict[ir.Value, np.ndarray | None] = {}
        self.maybe_dead: dict[int, ir.Operation] = {}
        self.count = 0

    def value(self, v: ir.Value) -> np.ndarray | None:
        """The array of a constant float tensor, or None (not a constant, or unreadable)."""
        if v not in self.known:
            op = self.graph.free.get(v)
            array = None
            if op is not None and (_dtype(v.type) is not None or _int_dtype(v.type)):
                array = constant_array(op)
            self.known[v] = array
        return self.known[v]

    def fold(self, op: ir.Operation) -> None:
        if len(op.results) != 1:
            return
        result_type = op.results[0].type
        dtype = _dtype(result_type)
        if dtype is None or not isinstance(result_type, ir.RankedTensorType):
            return
        if pymath.prod(result_type.shape) > self.max_elements:
            return
        if op.name == _TRANSPOSE:
            src = self.value(op.operands[0])
            perm = [int(p) for p in ir.DenseI64ArrayAttr(op.attributes["permutation"])]
            array = None if src is None else np.transpose(src, perm)
        elif op.name in _RESHAPES:
            src = self.value(op.operands[0])
            array = None if src is None else np.reshape(src, result_type.shape)
        elif op.name == _GENERIC:
            array = self._generic(op, result_type)
        else:
            return
        if array is not None:
            self._replace(op, array.astype(dtype, copy=False), result_type)

    def _generic(self, op: ir.Operation, out_type: ir.RankedTensorType) -> np.ndarray | None:
        n_in, n_out = (int(s) for s in op.attributes["operandSegmentSizes"])
        if n_in == 0 or n_out != 1:
            return None
        if not all(str(it) == _PARALLEL for it in ir.ArrayAttr(op.attributes["iterator_types"])):
            return None
        maps = [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(op.attributes["indexing_maps"])]
        if maps[-1] != ir.AffineMap.get_identity(maps[-1].n_dims):
            return None
        shape = list(out_type.shape)
        block = op.regions[0].blocks[0]
        env: dict[ir.Value, np.ndarray] = {}
        largest = 0
        for k in range(n_in):
            array = self.value(op.operands[k])
            read = None if array is None else read_through_map(array, maps[k], shape)
            if array is None or read is None:
                return None
            env[block.arguments[k]] = read
            largest = max(largest, array.size)
        # Broadcasting a weight into a larger tensor only makes the module bigger.
        if pymath.prod(shape) > largest:
            return None
        result = _evaluate(block, env)
        return None if result is None else np.broadcast_to(result, shape)

    def _replace(self, op: ir.Operation, array: np.ndarray, out_type: ir.RankedTensorType) -> None:
        array = np.asarray(array, order="C")  # keeps rank 0 (ascontiguousarray: 1-d)
        with op.location, ir.InsertionPoint(op):
            attr = ir.DenseElementsAttr.get(array, type=out_type.element_type)
            const = arith.ConstantOp(out_type, attr).operation
        self.known[const.results[0]] = array
        self.maybe_dead[_compat.op_key(const)] = const
        captured = [v for _, _, v in nested_operand_slots(op)]
        for v in [*op.operands, *captured]:
            owner = self.graph.free.get(v)
            if owner is not None:
                self.maybe_dead[_compat.op_key(owner)] = owner
        op.results[0].replace_all_uses_with(const.results[0])
        op.erase()
        self.count += 1

    def erase_unused(self) -> None:
        for op in self.maybe_dead.values():
            if not any(True for r in op.results for _ in r.uses):
                op.erase()


def _int_dtype(t: ir.Type) -> bool:
    """Whether ``t`` is a static tensor of integers numpy holds (i8..i64)."""
    return (
        isinstance(t, ir.RankedTensorType)
        and t.has_static_shape
        and str(t.element_type) in INT_DTYPES
    )


def _dtype(t: ir.Type) -> type[np.floating] | None:
    """The numpy dtype of a static float tensor type, or None."""
    if not isinstance(t, ir.RankedTensorType) or not t.has_static_shape:
        return None
    return DTYPES.get(str(t.element_type))


def read_through_map(
    array: np.ndarray, amap: ir.AffineMap, loop_shape: list[int]
) -> np.ndarray | None:
    """``array`` as a ``linalg.generic`` operand read through ``amap``: an array with one
    axis per loop dim, of the loop's size or 1 (broadcast), so numpy broadcasting does the
    rest. None for maps that are not projections with constant indices (``d0 + d1``, a
    dim read twice)."""
    results = list(amap.results)
    if amap.n_symbols or len(results) != array.ndim or amap.n_dims != len(loop_shape):
        return None
    index: list[int | slice] = []
    dims: list[int] = []
    for axis, expr in enumerate(results):
        if isinstance(expr, ir.AffineConstantExpr):
            if not 0 <= expr.value < array.shape[axis]:
                return None
            index.append(expr.value)
        elif isinstance(expr, ir.AffineDimExpr):
            if expr.position in dims or array.shape[axis] != loop_shape[expr.position]:
                return None
            index.append(slice(None))
            dims.append(expr.position)
        else:
            return None
    picked = array[tuple(index)].transpose(np.argsort(dims))
    return picked.reshape([loop_shape[d] if d in dims else 1 for d in range(len(loop_shape))])


def scalar_constant(v: ir.Value) -> np.ndarray | None:
    """The value of a scalar float ``arith.constant`` (0-d, in its own dtype), or None."""
    owner = v.owner
    if not isinstance(owner, ir.OpView) or owner.operation.name != _CONSTANT:
        return None
    attr = owner.operation.attributes["value"]
    if not isinstance(attr, ir.FloatAttr):
        return None
    dtype = DTYPES.get(str(attr.type))
    return None if dtype is None else np.array(attr.value, dtype=dtype)


def _scalar_integer(v: ir.Value) -> np.ndarray | None:
    """The value of a scalar integer ``arith.constant`` (as int64), or None."""
    owner = v.owner
    if not isinstance(owner, ir.OpView) or owner.operation.name != _CONSTANT:
        return None
    attr = owner.operation.attributes["value"]
    if isinstance(attr, ir.IntegerAttr) and str(attr.type) in INT_DTYPES:
        return np.array(ir.IntegerAttr(attr).value, dtype=np.int64)
    return None


def _evaluate(block: ir.Block, env: dict[ir.Value, np.ndarray]) -> np.ndarray | None:
    """Runs a generic body on whole arrays; None on an op outside `_UNARY`/`_BINARY`/
    `_INTEGER` or a read of the output (its init is not a constant)."""

    def read(v: ir.Value) -> np.ndarray | None:
        if v in env:
            return env[v]
        scalar = scalar_constant(v)
        return scalar if scalar is not None else _scalar_integer(v)

    ops = [o.operation for o in block.operations]
    with np.errstate(all="ignore"):  # inf/NaN fold as IEEE arithmetic makes them
        for inner in ops[:-1]:
            if inner.name == _CONSTANT:
                continue
            args = [a for a in (read(v) for v in inner.operands) if a is not None]
            if len(args) != len(inner.operands) or len(inner.results) != 1:
                return None
            if inner.name in _INTEGER:
                env[inner.results[0]] = _INTEGER[inner.name](inner, args)
            elif inner.name in _UNARY and len(args) == 1:
                env[inner.results[0]] = _UNARY[inner.name](*args)
            elif inner.name in _BINARY and len(args) == 2:
                env[inner.results[0]] = _BINARY[inner.name](*args)
            else:
                return None
    yielded = ops[-1].operands
    return read(yielded[0]) if len(yielded) == 1 else None
