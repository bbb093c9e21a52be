"""Recognisers for the common ``linalg.generic`` forms, so patterns can name them.

Frontends lower elementwise PyTorch/TOSA ops to ``linalg.generic``; a backend wants to
say "I run relu", not "I run a generic whose body is ``arith.maximumf(%in, 0.0)``". A
`Recogniser` is an op kind that is a predicate over a generic. The forms:

- ``ADD``/``SUB``/``MUL``: two same-shape inputs (identity maps), body one ``arith`` op;
- ``BIAS_ADD``: like ``ADD`` but one input is broadcast (a projected permutation with
  fewer results, e.g. ``(d0, d1) -> (d1)``); ``BROADCAST_SUB``/``BROADCAST_MUL`` the same
  for ``subf``/``mulf`` (per-channel normalisation, e.g. BatchNorm's ``(x - mean) * k``);
- ``RELU``: ``max(x, 0)``, either ``arith.maximumf`` or torch's ``cmpf ugt`` + ``select``;
- ``CLAMP``: ``min(max(x, lo), hi)`` in either order, bounds constant;
- ``GELU``: the erf form or the tanh approximation (one transcendental, its constant);
- ``SCALE``: ``x * c`` or ``x / c`` with a scalar constant ``c`` (average pooling's
  division by the window size, attention's ``1/sqrt(d)``);
- ``MAX_CONST``/``MIN_CONST``: ``max(x, c)``/``min(x, c)``, ``c`` a scalar constant or a
  rank-0 constant tensor input (torch's ``clamp_min``/``clamp_max``, ReLU6's halves), as
  ``arith.maximumf``/``minimumf`` or ``cmpf`` + ``select``;
- ``DIV``/``BROADCAST_DIV``: like ``SUB``/``BROADCAST_SUB`` for ``divf``; ``SHIFT``:
  ``x + c`` or ``x - c`` with a scalar constant; ``EXP``, ``RSQRT``: one ``math`` op;
  ``BROADCAST``: a copy of a broadcast input (LayerNorm's statistics, spread back);
- ``REDUCE_SUM``/``REDUCE_MAX``: a sum or max over reduction dims of an identity-read
  input into an output that drops them or keeps them as 1s (LayerNorm's and softmax's
  reductions). ``REDUCE_MAX`` also matches torch's ``max.dim`` (value and index outputs)
  when the index is never used.

All require parallel iterators and one identity-mapped output; dtype is not a
recogniser's business (backend checks decide that).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from iree.compiler import ir
from iree.compiler.dialects import arith, linalg

GENERIC = linalg.GenericOp.OPERATION_NAME
_CONSTANT = arith.ConstantOp.OPERATION_NAME
_PARALLEL = "#linalg.iterator_type<parallel>"


@dataclass
class GenericView:
    """The facts recognisers need about one ``linalg.generic``, read once."""

    op: ir.Operation
    n_inputs: int
    all_parallel: bool
    identity: tuple[bool, ...]  # per operand map: the identity
    broadcast: tuple[bool, ...]  # per operand map: a projected permutation dropping dims
    body: list[ir.Operation]  # without the terminator and scalar constants
    yielded: list[ir.Value]
    args: list[ir.Value]

    @staticmethod
    def of(op: ir.Operation) -> GenericView | None:
        op = op.operation
        attrs = op.attributes
        segs = attrs["operandSegmentSizes"]
        if segs[1] != 1:
            return None
        shape = _shape_facts(attrs["indexing_maps"], attrs["iterator_types"])
        block = op.regions[0].blocks[0]
        ops = [o.operation for o in block.operations]
        # Constants inside the body (as torch-mlir and tosa-to-linalg emit them) are
        # operands, not computation: recognisers read them through `_constant_value`.
        body = [o for o in ops[:-1] if o.name != _CONSTANT]
        return GenericView(
            op, segs[0], shape[0], shape[1], shape[2], body,
            list(ops[-1].operands), list(block.arguments),
        )  # fmt: skip

    def is_identity(self, i: int) -> bool:
        return self.identity[i]

    def is_broadcast(self, i: int) -> bool:
        return self.broadcast[i]

    def elementwise_shape_ok(self) -> bool:
        return self.all_parallel and self.identity[-1]


_ShapeFacts = tuple[bool, tuple[bool, ...], tuple[bool, ...]]
_SHAPE_CACHE: dict[tuple[ir.Attribute, ir.Attribute], _ShapeFacts] = {}


def _shape_facts(maps_attr: ir.Attribute, iters_attr: ir.Attribute) -> _ShapeFacts:
    """(all parallel, identity per map, broadcast per map); models repeat a few shapes."""
    key = (maps_attr, iters_attr)
    facts = _SHAPE_CACHE.get(key)
    if facts is None:
        maps = [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(maps_attr)]
        ctx = maps_attr.context
        facts = (
            all(str(it) == _PARALLEL for it in ir.ArrayAttr(iters_attr)),
            tuple(m == ir.AffineMap.get_identity(m.n_dims, context=ctx) for m in maps),
            tuple(m.is_projected_permutation and len(m.results) < m.n_dims for m in maps),
        )
        if len(_SHAPE_CACHE) > 4096:
            _SHAPE_CACHE.clear()
        _SHAPE_CACHE[key] = facts
    return facts


def _constant_value(v: ir.Value) -> float | None:
    """The float value of a scalar ``arith.constant`` (inside or outside the body)."""
    owner = v.owner
    if not isinstance(owner, ir.OpView) or owner.operation.name != _CONSTANT:
        return None
    attr = owner.operation.attributes["value"]
    if isinstance(attr, ir.FloatAttr):
        return ir.FloatAttr(attr).value
    if isinstance(attr, ir.IntegerAttr):
        return float(ir.IntegerAttr(attr).value)
    return None


class Recogniser:
    """An op kind defined by a predicate over ``linalg.generic``.

    Subclasses implement `match_view`. Instances are compared by identity, so a pattern
    or a support table can name ``RELU`` the way it names ``linalg.MatmulOp``.
    """

    name: str = ""
    commutative: bool = False

    def matches(self, op: ir.Operation) -> bool:
        if op.operation.name != GENERIC:
            return False
        view = GenericView.of(op)
        return view is not None and self.match_view(view)

    def match_view(self, view: GenericView) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"generic:{self.name}"


class _Binary(Recogniser):
    """Two inputs combined by one ``arith`` op into the output."""

    commutative = True

    def __init__(self, name: str, body_ops: tuple[str, ...], broadcast: bool, commutative: bool):
        self.name = name
        self.body_ops = body_ops
        self.broadcast = broadcast
        self.commutative = commutative

    def match_view(self, view: GenericView) -> bool:
        if view.n_inputs != 2 or not view.elementwise_shape_ok() or len(view.body) != 1:
            return False
        if self.broadcast:
            shapes_ok = (view.is_identity(0) and view.is_broadcast(1)) or (
                view.is_identity(1) and view.is_broadcast(0)
            )
        else:
            shapes_ok = view.is_identity(0) and view.is_identity(1)
        if not shapes_ok:
            return False
        body = view.body[0]
        if body.name not in self.body_ops or view.yielded[0] != body.results[0]:
            return False
        lhs, rhs = body.operands
        a, b = view.args[0], view.args[1]
        return (lhs == a and rhs == b) or (self.commutative and lhs == b and rhs == a)


_GREATER = (int(arith.CmpFPredicate.OGT), int(arith.CmpFPredicate.UGT))


class _Relu(Recogniser):
    name = "relu"

    def match_view(self, view: GenericView) -> bool:
        if view.n_inputs != 1 or not view.elementwise_shape_ok() or not view.is_identity(0):
            return False
        x = view.args[0]
        if len(view.body) == 1:
            (op,) = view.body
            return (
                op.name in ("arith.maximumf", "arith.maxnumf")
                and view.yielded[0] == op.results[0]
                and _is_max_with_zero(op, x)
            )
        if len(view.body) == 2:  # torch: select(cmpf ugt(x, 0), x, 0)
            cmp, sel = view.body
            if cmp.name != "arith.cmpf" or sel.name != "arith.select":
                return False
            if view.yielded[0] != sel.results[0] or sel.operands[0] != cmp.results[0]:
                return False
            pred = ir.IntegerAttr(cmp.attributes["predicate"]).value
            return (
                pred in _GREATER
                and cmp.operands[0] == x
                and _constant_value(cmp.operands[1]) == 0.0
                and sel.operands[1] == x
                and _constant_value(sel.operands[2]) == 0.0
            )
        return False


def _is_max_with_zero(op: ir.Operation, x: ir.Value) -> bool:
    a, b = op.operands
    return (a == x and _constant_value(b) == 0.0) or (b == x and _constant_value(a) == 0.0)


class _Clamp(Recogniser):
    name = "clamp"

    _MIN = ("arith.minimumf", "arith.minnumf")
    _MAX = ("arith.maximumf", "arith.maxnumf")

    def match_view(self, view: GenericView) -> bool:
        if view.n_inputs != 1 or not view.elementwise_shape_ok() or not view.is_identity(0):
            return False
        if len(view.body) != 2:
            return False
        first, second = view.body
        names = {first.name in self._MIN, second.name in self._MIN}
        if names != {True, False} or view.yielded[0] != second.results[0]:
            return False
        if first.name not in self._MIN + self._MAX or second.name not in self._MIN + self._MAX:
            return False
        return _unary_with_constant(first, view.args[0]) and _unary_with_constant(
            second, first.results[0]
        )


def _unary_with_constant(op: ir.Operation, x: ir.Value) -> bool:
    a, b = op.operands
    return (a == x and _constant_value(b) is not None) or (
        b == x and _constant_value(a) is not None
    )


class _Scale(Recogniser):
    name = "scale"

    def match_view(self, view: GenericView) -> bool:
        if view.n_inputs != 1 or not view.elementwise_shape_ok() or not view.is_identity(0):
            return False
        if len(view.body) != 1 or view.yielded[0] != view.body[0].results[0]:
            return False
        op = view.body[0]
        if op.name == "arith.mulf":
            return _unary_with_constant(op, view.args[0])
        if op.name != "arith.divf":
            return False
        a, b = op.operands
        return a == view.args[0] and _constant_value(b) is not None


def scale_factor(op: ir.Operation) -> float:
    """The factor a ``SCALE`` generic multiplies by (``1/c`` for a division)."""
    view = GenericView.of(op)
    assert view is not None
    body = view.body[0]
    a, b = body.operands
    c = _constant_value(b if a == view.args[0] else a)
    assert c is not None
    return 1.0 / c if body.name == "arith.divf" else c


_LESS = (int(arith.CmpFPredicate.OLT), int(arith.CmpFPredicate.ULT))
_GREATER_EQ = _GREATER + (int(arith.CmpFPredicate.OGE), int(arith.CmpFPredicate.UGE))
_LESS_EQ = _LESS + (int(arith.CmpFPredicate.OLE), int(arith.CmpFPredicate.ULE))


class _Bound(Recogniser):
    """``max(x, c)`` (``upper=False``) or ``min(x, c)`` with a constant ``c``."""

    def __init__(self, name: str, upper: bool):
        self.name = name
        self.upper = upper

    def match_view(self, view: GenericView) -> bool:
        return _bound(view, self.upper) is not None


def _rank0_constant(view: GenericView, arg: ir.Value) -> float | None:
    """The value of a block argument fed by a rank-0 constant tensor input."""
    if arg not in view.args[: view.n_inputs]:
        return None
    operand = view.op.operands[view.args.index(arg)]
    owner = operand.owner
    if not isinstance(owner, ir.OpView) or owner.operation.name != _CONSTANT:
        return None
    attr = owner.operation.attributes["value"]
    if not isinstance(attr, ir.DenseFPElementsAttr) or not attr.is_splat:
        return None
    return float(ir.DenseFPElementsAttr(attr).get_splat_value().value)


def _bound(view: GenericView, upper: bool) -> float | None:
    """``c`` when the generic computes min(x, c) (``upper``) or max(x, c), else None."""
    if not view.elementwise_shape_ok() or view.n_inputs not in (1, 2):
        return None
    full = [i for i in range(view.n_inputs) if view.is_identity(i)]
    if len(full) != 1:
        return None
    x = view.args[full[0]]

    def constant(v: ir.Value) -> float | None:
        c = _constant_value(v)
        return c if c is not None else _rank0_constant(view, v)

    c = _bound_body(view, x, upper, constant)
    if c == 0.0 and not upper and view.n_inputs == 1:
        return None  # max(x, 0) is RELU
    return c


def _bound_body(
    view: GenericView, x: ir.Value, upper: bool, constant: Callable[[ir.Value], float | None]
) -> float | None:
    names = ("arith.minimumf", "arith.minnumf") if upper else ("arith.maximumf", "arith.maxnumf")
    if len(view.body) == 1 and view.body[0].name in names:
        op = view.body[0]
        if view.yielded[0] != op.results[0]:
            return None
        a, b = op.operands
        return constant(b) if a == x else constant(a) if b == x else None
    if len(view.body) != 2:
        return None
    cmp, sel = view.body  # select(cmpf(pred, a, b), a, b)
    if cmp.name != "arith.cmpf" or sel.name != "arith.select":
        return None
    if view.yielded[0] != sel.results[0] or sel.operands[0] != cmp.results[0]:
        return None
    a, b = cmp.operands
    if list(sel.operands[1:]) != [a, b] or x not in (a, b):
        return None
    pred = ir.IntegerAttr(cmp.attributes["predicate"]).value
    picks_greater = pred in _GREATER_EQ
    if not picks_greater and pred not in _LESS_EQ:
        return None
    if picks_greater == upper:
        return None
    return constant(b if a == x else a)


def bound_value(op: ir.Operation) -> float:
    """``c`` of a ``MAX_CONST``/``MIN_CONST`` generic."""
    view = GenericView.of(op)
    assert view is not None
    c = _bound(view, True)
    c = c if c is not None else _bound(view, False)
    assert c is not None
    return c


class _Unary(Recogniser):
    """One ``math``/``arith`` op of the (identity-read) input."""

    def __init__(self, name: str, body_op: str):
        self.name = name
        self.body_op = body_op

    def match_view(self, view: GenericView) -> bool:
        if view.n_inputs != 1 or not view.elementwise_shape_ok() or not view.is_identity(0):
            return False
        if len(view.body) != 1 or view.body[0].name != self.body_op:
            return False
        op = view.body[0]
        return view.yielded[0] == op.results[0] and list(op.operands) == [view.args[0]]


class _Shift(Recogniser):
    name = "shift"

    def match_view(self, view: GenericView) -> bool:
        return _shift(view) is not None


def _shift(view: GenericView) -> float | None:
    if view.n_inputs != 1 or not view.elementwise_shape_ok() or not view.is_identity(0):
        return None
    if len(view.body) != 1 or view.yielded[0] != view.body[0].results[0]:
        return None
    op = view.body[0]
    a, b = op.operands if op.name in ("arith.addf", "arith.subf") else (None, None)
    x = view.args[0]
    if op.name == "arith.addf" and (a == x or b == x):
        return _constant_value(b if a == x else a)
    if op.name == "arith.subf" and a == x:
        c = _constant_value(b)
        return -c if c is not None else None
    return None


def shift_amount(op: ir.Operation) -> float:
    """``c`` of a ``SHIFT`` generic computing ``x + c`` (``-c`` for ``x - c``)."""
    view = GenericView.of(op)
    assert view is not None
    c = _shift(view)
    assert c is not None
    return c


class _Broadcast(Recogniser):
    name = "broadcast"

    def match_view(self, view: GenericView) -> bool:
        return (
            view.n_inputs == 1
            and view.elementwise_shape_ok()
            and view.is_broadcast(0)
            and not view.body
            and view.yielded[0] == view.args[0]
        )


@dataclass(frozen=True)
class Reduction:
    """A recognised reduction: the reduced loop dims, and whether the output keeps them
    as unit dims (a constant-0 map result) or drops them."""

    dims: tuple[int, ...]
    keepdims: bool


def reduction(op: ir.Operation) -> Reduction | None:
    """The shape of a ``REDUCE_SUM``/``REDUCE_MAX`` generic (identity input map, output
    map of the parallel dims in order, constant 0 in place of reduced ones or not)."""
    attrs = op.operation.attributes
    segs = attrs["operandSegmentSizes"]
    if segs[0] != 1:
        return None
    maps = [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(attrs["indexing_maps"])]
    iters = [str(it) for it in ir.ArrayAttr(attrs["iterator_types"])]
    n = len(iters)
    if maps[0] != ir.AffineMap.get_identity(n, context=maps[0].context):
        return None
    reduced = tuple(d for d, it in enumerate(iters) if it != _PARALLEL)
    parallel = [d for d in range(n) if d not in reduced]
    if not reduced or any(m != maps[1] for m in maps[2:]):
        return None
    results = list(maps[1].results)
    dims = [ir.AffineDimExpr(e).position for e in results if isinstance(e, ir.AffineDimExpr)]
    if dims != parallel:
        return None
    if len(results) == len(parallel):
        return Reduction(reduced, keepdims=False)
    keep = len(results) == n and all(
        isinstance(results[d], ir.AffineConstantExpr) and results[d].value == 0 for d in reduced
    )
    return Reduction(reduced, keepdims=True) if keep else None


class _Reduce(Recogniser):
    def __init__(self, name: str, body_ops: tuple[str, ...]):
        self.name = name
        self.body_ops = body_ops

    def matches(self, op: ir.Operation) -> bool:
        if op.operation.name != GENERIC:
            return False
        view = GenericView.of(op)
        if view is not None:
            return self.match_view(view)
        return self.name == "reduce_max" and _max_with_unused_index(op.operation)

    def match_view(self, view: GenericView) -> bool:
        if view.n_inputs != 1 or view.all_parallel or len(view.body) != 1:
            return False
        op = view.body[0]
        if op.name not in self.body_ops or view.yielded[0] != op.results[0]:
            return False
        if set(op.operands) != {view.args[0], view.args[1]}:
            return False
        return reduction(view.op) is not None


def _max_with_unused_index(op: ir.Operation) -> bool:
    """torch's ``max.dim``: running max and its index; matches when the index is unused."""
    segs = op.attributes["operandSegmentSizes"]
    if segs[0] != 1 or segs[1] != 2 or any(True for _ in op.results[1].uses):
        return False
    if reduction(op) is None:
        return False
    block = op.regions[0].blocks[0]
    ops = [o.operation for o in block.operations]
    x, acc = block.arguments[0], block.arguments[1]
    maxes = [o for o in ops if o.name in ("arith.maximumf", "arith.maxnumf")]
    if len(maxes) != 1 or set(maxes[0].operands) != {x, acc}:
        return False
    return list(ops[-1].operands)[0] == maxes[0].results[0]


class _Gelu(Recogniser):
    """GELU as frontends lower it: ``0.5*x*(1+erf(x/sqrt(2)))`` or the tanh approximation
    ``0.5*x*(1+tanh(sqrt(2/pi)*(x+0.044715*x^3)))``, in whatever op order.

    The body is evaluated on sample inputs and compared with both definitions, so any
    arrangement of the arithmetic matches and near misses (a missing ``x*``, a different
    constant) do not.
    """

    name = "gelu"
    _SAMPLES = (-3.0, -1.3, -0.4, 0.0, 0.25, 0.9, 2.2, 4.0)

    def match_view(self, view: GenericView) -> bool:
        if view.n_inputs != 1 or not view.elementwise_shape_ok() or not view.is_identity(0):
            return False
        # Both forms need at least x*k, erf/tanh, 1+..., 0.5*x and the final product.
        if len(view.body) < 4 or not any(o.name in ("math.erf", "math.tanh") for o in view.body):
            return False
        try:
            got = [_evaluate(view, x) for x in self._SAMPLES]
        except _NotEvaluable:
            return False
        for reference in (_gelu_erf, _gelu_tanh):
            if all(
                abs(g - reference(x)) <= 1e-4 * (1 + abs(x))
                for g, x in zip(got, self._SAMPLES, strict=True)
            ):
                return True
        return False


def _gelu_erf(x: float) -> float:
    return 0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0)))


def _gelu_tanh(x: float) -> float:
    return 0.5 * x * (1.0 + math.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


class _NotEvaluable(Exception):
    pass


_SCALAR_OPS: dict[str, Callable[..., float]] = {
    "arith.mulf": lambda a, b: a * b,
    "arith.addf": lambda a, b: a + b,
    "arith.subf": lambda a, b: a - b,
    "arith.divf": lambda a, b: a / b,
    "arith.negf": lambda a: -a,
    "math.erf": math.erf,
    "math.tanh": math.tanh,
    "math.sqrt": math.sqrt,
    "math.powf": lambda a, b: a**b,
    "math.fpowi": lambda a, b: a**b,
}


def _evaluate(view: GenericView, x: float) -> float:
    """Evaluates a one-input scalar body at ``x`` (raises _NotEvaluable on other ops)."""
    env: dict[ir.Value, float] = {view.args[0]: x}

    def value(v: ir.Value) -> float:
        if v in env:
            return env[v]
        c = _constant_value(v)
        if c is None:
            raise _NotEvaluable
        return c

    for op in view.body:
        fn = _SCALAR_OPS.get(op.name)
        if fn is None or len(op.results) != 1:
            raise _NotEvaluable
        try:
            env[op.results[0]] = fn(*(value(v) for v in op.operands))
        except (ArithmeticError, ValueError, TypeError):
            raise _NotEvaluable from None
    return value(view.yielded[0])


ADD = _Binary("add", ("arith.addf", "arith.addi"), broadcast=False, commutative=True)
SUB = _Binary("sub", ("arith.subf", "arith.subi"), broadcast=False, commutative=False)
MUL = _Binary("mul", ("arith.mulf", "arith.muli"), broadcast=False, commutative=True)
BIAS_ADD = _Binary("bias_add", ("arith.addf", "arith.addi"), broadcast=True, commutative=True)
BROADCAST_SUB = _Binary("broadcast_sub", ("arith.subf",), broadcast=True, commutative=False)
BROADCAST_MUL = _Binary("broadcast_mul", ("arith.mulf",), broadcast=True, commutative=True)
RELU = _Relu()
CLAMP = _Clamp()
GELU = _Gelu()
SCALE = _Scale()
MAX_CONST = _Bound("max_const", upper=False)
MIN_CONST = _Bound("min_const", upper=True)
DIV = _Binary("div", ("arith.divf",), broadcast=False, commutative=False)
BROADCAST_DIV = _Binary("broadcast_div", ("arith.divf",), broadcast=True, commutative=False)
SHIFT = _Shift()
EXP = _Unary("exp", "math.exp")
RSQRT = _Unary("rsqrt", "math.rsqrt")
BROADCAST = _Broadcast()
REDUCE_SUM = _Reduce("reduce_sum", ("arith.addf",))
REDUCE_MAX = _Reduce("reduce_max", ("arith.maximumf", "arith.maxnumf"))

# Tried in this order; the forms are disjoint, the order only saves time.
ALL: tuple[Recogniser, ...] = (
    BIAS_ADD, ADD, RELU, CLAMP, MUL, SUB, BROADCAST_SUB, BROADCAST_MUL, SCALE,
    MAX_CONST, MIN_CONST, DIV, BROADCAST_DIV, SHIFT, EXP, RSQRT, BROADCAST,
    REDUCE_SUM, REDUCE_MAX, GELU,
)  # fmt: skip


def recognise(op: ir.Operation) -> Recogniser | None:
    """The recognised form of a ``linalg.generic``, or None."""
    view = GenericView.of(op)
    if view is None:
        return REDUCE_MAX if _max_with_unused_index(op.operation) else None
    for rec in ALL:
        if rec.match_view(view):
            return rec
    return None


def describe_body(op: ir.Operation) -> str:
    """A short description of an unrecognised generic's body (for reject reasons)."""
    view = GenericView.of(op)
    if view is None:
        return "a generic with several outputs"
    names = sorted({o.name for o in view.body})
    return ", ".join(names) if names else "a copy"
