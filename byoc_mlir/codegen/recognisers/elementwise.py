"""The elementwise forms: binaries, ReLU, clamp, scale, bounds, shift, unary math ops,
broadcast copies and GELU (checked by evaluating its body at a few points)."""

from __future__ import annotations

import math
from collections.abc import Callable

from iree.compiler import ir
from iree.compiler.dialects import arith

from byoc_mlir.codegen.recognisers.generic_view import (
    CONSTANT,
    GenericView,
    Recogniser,
    constant_value,
)


class Binary(Recogniser):
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


class Relu(Recogniser):
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
                and constant_value(cmp.operands[1]) == 0.0
                and sel.operands[1] == x
                and constant_value(sel.operands[2]) == 0.0
            )
        return False


def _is_max_with_zero(op: ir.Operation, x: ir.Value) -> bool:
    a, b = op.operands
    return (a == x and constant_value(b) == 0.0) or (b == x and constant_value(a) == 0.0)


class Clamp(Recogniser):
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
    return (a == x and constant_value(b) is not None) or (b == x and constant_value(a) is not None)


class Scale(Recogniser):
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
        return a == view.args[0] and constant_value(b) is not None


def scale_factor(op: ir.Operation) -> float:
    """The factor a ``SCALE`` generic multiplies by (``1/c`` for a division)."""
    view = GenericView.of(op)
    assert view is not None
    body = view.body[0]
    a, b = body.operands
    c = constant_value(b if a == view.args[0] else a)
    assert c is not None
    return 1.0 / c if body.name == "arith.divf" else c


_LESS = (int(arith.CmpFPredicate.OLT), int(arith.CmpFPredicate.ULT))
_GREATER_EQ = _GREATER + (int(arith.CmpFPredicate.OGE), int(arith.CmpFPredicate.UGE))
_LESS_EQ = _LESS + (int(arith.CmpFPredicate.OLE), int(arith.CmpFPredicate.ULE))


class Bound(Recogniser):
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
    if not isinstance(owner, ir.OpView) or owner.operation.name != CONSTANT:
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
        c = constant_value(v)
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


class Unary(Recogniser):
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


class Shift(Recogniser):
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
        return constant_value(b if a == x else a)
    if op.name == "arith.subf" and a == x:
        c = constant_value(b)
        return -c if c is not None else None
    return None


def shift_amount(op: ir.Operation) -> float:
    """``c`` of a ``SHIFT`` generic computing ``x + c`` (``-c`` for ``x - c``)."""
    view = GenericView.of(op)
    assert view is not None
    c = _shift(view)
    assert c is not None
    return c


class Broadcast(Recogniser):
    name = "broadcast"

    def match_view(self, view: GenericView) -> bool:
        return (
            view.n_inputs == 1
            and view.elementwise_shape_ok()
            and view.is_broadcast(0)
            and not view.body
            and view.yielded[0] == view.args[0]
        )


class Gelu(Recogniser):
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
        c = constant_value(v)
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
