"""Reusable checks for `Backend.supports` and `Backend.composite`.

Guard-first: each check tests one thing and returns one reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from iree.compiler import ir

from byoc_mlir.codegen.backend import Check, CheckContext, Reject
from byoc_mlir.codegen.recognisers import quant_params


def data_operands(op: ir.Operation, operands: Sequence[ir.Value] | None = None) -> list[ir.Value]:
    """The operands that carry data: ``ins`` for linalg ops, float operands otherwise.

    Non-linalg ops (TOSA) mix data with integer control operands (``tosa.mul``'s shift),
    so only float-typed operands count there; results are always checked too.
    """
    operands = list(op.operands) if operands is None else operands
    attrs = op.attributes
    if "operandSegmentSizes" in attrs:
        return list(operands[: attrs["operandSegmentSizes"][0]])
    return [v for v in operands if _facts(v.type)[2]]


def ins_outs(op: ir.Operation) -> tuple[list[ir.Value], list[ir.Value]]:
    """(``ins``, ``outs``) of a linalg op with operand segments (not ``linalg.transpose``)."""
    n_ins = op.attributes["operandSegmentSizes"][0]
    operands = list(op.operands)
    return operands[:n_ins], operands[n_ins:]


_TypeFacts = tuple[str, bool, bool]  # element type, static shape, float element
_TYPE_CACHE: dict[ir.Type, _TypeFacts] = {}


def _facts(t: ir.Type) -> _TypeFacts:
    """Element type name, static-ness and float-ness of a type; types repeat, so cached."""
    facts = _TYPE_CACHE.get(t)
    if facts is None:
        if isinstance(t, ir.ShapedType):
            et, static = t.element_type, t.has_static_shape
        else:
            et, static = t, True
        facts = (str(et), static, isinstance(et, ir.FloatType))
        if len(_TYPE_CACHE) > 4096:
            _TYPE_CACHE.clear()
        _TYPE_CACHE[t] = facts
    return facts


def tensor_types(element_types: tuple[str, ...], static: bool = False) -> Check:
    """Accepts ops whose data operands and results have these element types (and, with
    ``static``, static shapes). One pass over the values: the check every op pays."""
    allowed_set = frozenset(element_types)
    valid = ", ".join(sorted(allowed_set))

    def check(ctx: CheckContext) -> Reject | None:
        for member, operands in ctx.each_member():
            for v in _values(member, operands):
                et, is_static, _ = _facts(v.type)
                if et not in allowed_set:
                    return Reject(f"element type {et} is not supported (valid: {valid})")
                if static and not is_static:
                    return Reject(f"dynamic shape {v.type} is not supported (static shapes only)")
        return None

    return check


def element_types(*allowed: str) -> Check:
    """Accepts ops whose data operands and results all have these element types."""
    allowed_set = frozenset(allowed)
    valid = ", ".join(sorted(allowed_set))

    def check(ctx: CheckContext) -> Reject | None:
        for member, operands in ctx.each_member():
            for v in _values(member, operands):
                et = _facts(v.type)[0]
                if et not in allowed_set:
                    return Reject(f"element type {et} is not supported (valid: {valid})")
        return None

    return check


def static_shapes() -> Check:
    """Accepts ops whose tensors all have static shapes."""

    def check(ctx: CheckContext) -> Reject | None:
        for member, operands in ctx.each_member():
            for v in _values(member, operands):
                if not _facts(v.type)[1]:
                    return Reject(f"dynamic shape {v.type} is not supported (static shapes only)")
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


def eight_bit_quantization(ctx: CheckContext) -> Reject | None:
    """Accepts a ``QUANTIZE`` or ``DEQUANTIZE`` (or, in a composite, the members named
    ``q`` and ``dq``) that is 8-bit, per tensor, saturating to its type's whole range."""
    ends = [ctx.matches[k] for k in ("dq", "q") if k in ctx.matches] or [ctx.op]
    for end in ends:
        params = quant_params(end)
        if params.bits != 8:
            return Reject(f"{params.dtype} quantization (valid: i8, u8)")
        if not params.full_range:
            return Reject(
                f"{params.dtype} saturating to {params.saturation} (valid: the full range)"
            )
    return None


def _values(op: ir.Operation, operands: Sequence[ir.Value]) -> Iterable[ir.Value]:
    yield from data_operands(op, operands)
    yield from op.results
