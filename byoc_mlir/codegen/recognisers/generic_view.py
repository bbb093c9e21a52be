"""`GenericView`: a ``linalg.generic`` read as maps, iterators and a body, and the
`Recogniser` base class the forms are made of."""

from __future__ import annotations

from dataclasses import dataclass

from iree.compiler import ir
from iree.compiler.dialects import arith

from byoc_mlir.linalg_ops import linalg

GENERIC = linalg.GenericOp.OPERATION_NAME
CONSTANT = arith.ConstantOp.OPERATION_NAME
PARALLEL = "#linalg.iterator_type<parallel>"


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
        # operands, not computation: recognisers read them through `constant_value`.
        body = [o for o in ops[:-1] if o.name != CONSTANT]
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
            all(str(it) == PARALLEL for it in ir.ArrayAttr(iters_attr)),
            tuple(m == ir.AffineMap.get_identity(m.n_dims, context=ctx) for m in maps),
            tuple(m.is_projected_permutation and len(m.results) < m.n_dims for m in maps),
        )
        if len(_SHAPE_CACHE) > 4096:
            _SHAPE_CACHE.clear()
        _SHAPE_CACHE[key] = facts
    return facts


def constant_value(v: ir.Value) -> float | None:
    """The float value of a scalar ``arith.constant`` (inside or outside the body)."""
    owner = v.owner
    if not isinstance(owner, ir.OpView) or owner.operation.name != CONSTANT:
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
