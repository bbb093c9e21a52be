"""Reusable checks for `Backend.supports` and `Backend.composite`.

Guard-first: each check tests one thing and returns one reason.
"""

from __future__ import annotations

from collections.abc import Iterable

from iree.compiler import ir

from byoc_mlir.codegen.backend import Check, CheckContext, Reject


def data_operands(op: ir.Operation) -> list[ir.Value]:
    """The operands that carry data: ``ins`` for linalg ops, float operands otherwise.

    Non-linalg ops (TOSA) mix data with integer control operands (``tosa.mul``'s shift),
    so only float-typed operands count there; results are always checked too.
    """
    attrs = op.attributes
    if "operandSegmentSizes" in attrs:
        n_in = ir.DenseI32ArrayAttr(attrs["operandSegmentSizes"])[0]
        return list(op.operands)[:n_in]
    return [v for v in op.operands if isinstance(_element_type(v.type), ir.FloatType)]


def _element_type(t: ir.Type) -> ir.Type:
    if isinstance(t, ir.ShapedType):
        return ir.ShapedType(t).element_type
    return t


def element_types(*allowed: str) -> Check:
    """Accepts ops whose data operands and results all have these element types."""
    allowed_set = frozenset(allowed)
    valid = ", ".join(sorted(allowed_set))

    def check(ctx: CheckContext) -> Reject | None:
        for member in ctx.members or (ctx.op,):
            for v in _values(member):
                et = str(_element_type(v.type))
                if et not in allowed_set:
                    return Reject(f"element type {et} is not supported (valid: {valid})")
        return None

    return check


def static_shapes() -> Check:
    """Accepts ops whose tensors all have static shapes."""

    def check(ctx: CheckContext) -> Reject | None:
        for member in ctx.members or (ctx.op,):
            for v in _values(member):
                t = v.type
                if isinstance(t, ir.ShapedType) and not ir.ShapedType(t).has_static_shape:
                    return Reject(f"dynamic shape {t} is not supported (static shapes only)")
        return None

    return check


def all_of(*checks: Check) -> Check:
    """The first refusal among ``checks``, or None."""

    def check(ctx: CheckContext) -> Reject | None:
        for c in checks:
            verdict = c(ctx)
            if verdict is not None:
                return verdict
        return None

    return check


def _values(op: ir.Operation) -> Iterable[ir.Value]:
    yield from data_operands(op)
    yield from op.results
