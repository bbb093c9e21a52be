"""The ``byoc`` vocabulary.

IREE's bundled bindings ship no IRDL, so the vocabulary is a set of discardable
attributes. This module is the only place their names are spelled; everything else
uses the typed helpers below.

=====================  =========================  =============================================
attribute              on                         meaning
=====================  =========================  =============================================
``byoc.accept``        op (after annotate)        backends that accept the op alone, priority
                                                  order: ``["testing"]``
``byoc.reject``        op (after annotate)        why each other backend refused it:
                                                  ``{testing = "element type f64 ..."}``
``byoc.composite``     op (after composites)      the composite the op belongs to:
                                                  ``{backend, name, id, benefit}``; all members
                                                  of one match share ``id``
``byoc.target``        op (after merge-regions)   the backend that runs the op's region
                       func (after outline)       the backend that runs the function
``byoc.region``        op (after merge-regions)   region id (per function, program order)
                       func (after outline)       the same id, kept for the report
``byoc.composites``    func (after outline)       names of the composites inside, in order
``byoc.reason``        op left on the host        why: ``rejected: <backend>: <why>``,
                                                  ``dropped: cycle``, ``dropped: region too
                                                  small``, ``fallback: codegen failed: <error>``
=====================  =========================  =============================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache

from iree.compiler import ir

ACCEPT = "byoc.accept"
REJECT = "byoc.reject"
COMPOSITE = "byoc.composite"
TARGET = "byoc.target"
REGION = "byoc.region"
COMPOSITES = "byoc.composites"
REASON = "byoc.reason"

ALL = (ACCEPT, REJECT, COMPOSITE, TARGET, REGION, COMPOSITES, REASON)
# What partitioning leaves on ops that moved into an outlined function: the function
# carries target/region; the composite tag stays so codegen sees the fused units.
_MEMBER_TRANSIENT = (ACCEPT, REJECT, TARGET, REGION, REASON)


def _has(op: ir.Operation, name: str) -> bool:
    return name in op.attributes


def _str(attr: ir.Attribute) -> str:
    return ir.StringAttr(attr).value


# --- accept / reject ---------------------------------------------------------------


@cache
def _str_array(names: tuple[str, ...], _ctx: ir.Context) -> ir.Attribute:
    return ir.ArrayAttr.get([ir.StringAttr.get(n, context=_ctx) for n in names], context=_ctx)


def set_accept(op: ir.Operation, backends: tuple[str, ...]) -> None:
    op.attributes[ACCEPT] = _str_array(backends, op.context)


def get_accept(op: ir.Operation) -> tuple[str, ...]:
    if not _has(op, ACCEPT):
        return ()
    return tuple(_str(a) for a in ir.ArrayAttr(op.attributes[ACCEPT]))


def set_reject(op: ir.Operation, reasons: Mapping[str, str]) -> None:
    op.attributes[REJECT] = _reject_attr(tuple(reasons.items()), op.context)


@lru_cache(maxsize=4096)
def _reject_attr(items: tuple[tuple[str, str], ...], _ctx: ir.Context) -> ir.Attribute:
    return ir.DictAttr.get({b: ir.StringAttr.get(r, context=_ctx) for b, r in items}, context=_ctx)


def get_reject(op: ir.Operation) -> dict[str, str]:
    if not _has(op, REJECT):
        return {}
    d = ir.DictAttr(op.attributes[REJECT])
    return {d[i].name: _str(d[i].attr) for i in range(len(d))}


# --- composite ---------------------------------------------------------------------


@dataclass(frozen=True)
class CompositeTag:
    """Membership of an op in one composite match."""

    backend: str
    name: str
    id: int
    benefit: int


def set_composite(ops: Iterable[ir.Operation], tag: CompositeTag) -> None:
    """Tags every member of one match (one attribute, shared)."""
    i64 = ir.IntegerType.get_signless(64)
    attr = ir.DictAttr.get(
        {
            "backend": ir.StringAttr.get(tag.backend),
            "name": ir.StringAttr.get(tag.name),
            "id": ir.IntegerAttr.get(i64, tag.id),
            "benefit": ir.IntegerAttr.get(i64, tag.benefit),
        }
    )
    for op in ops:
        op.attributes[COMPOSITE] = attr


def get_composite(op: ir.Operation) -> CompositeTag | None:
    attrs = op.attributes
    if COMPOSITE not in attrs:
        return None
    return _composite_tag(attrs[COMPOSITE])


@lru_cache(maxsize=4096)
def _composite_tag(attr: ir.Attribute) -> CompositeTag:
    # Every member of a match carries the same attribute: parse it once.
    d = ir.DictAttr(attr)
    return CompositeTag(
        _str(d["backend"]),
        _str(d["name"]),
        ir.IntegerAttr(d["id"]).value,
        ir.IntegerAttr(d["benefit"]).value,
    )


# --- region membership -------------------------------------------------------------


def set_region(op: ir.Operation, backend: str, region: int) -> None:
    attrs = op.attributes
    attrs[TARGET] = _string_attr(backend, op.context)
    attrs[REGION] = _i64_attr(region, op.context)


def get_region(op: ir.Operation) -> tuple[str, int] | None:
    """(backend, region id) of an op tagged by merge-regions, else None."""
    if not _has(op, REGION) or not _has(op, TARGET):
        return None
    return _str(op.attributes[TARGET]), ir.IntegerAttr(op.attributes[REGION]).value


def get_target(op: ir.Operation) -> str | None:
    return _str(op.attributes[TARGET]) if _has(op, TARGET) else None


def outlined_attributes(
    backend: str, region: int, composites: Iterable[str], ctx: ir.Context
) -> dict[str, ir.Attribute]:
    """The tags of an outlined function (its backend, region id and composites), to
    create it with: set one by one, each rebuilds the op's attribute dictionary."""
    return {
        TARGET: _string_attr(backend, ctx),
        REGION: _i64_attr(region, ctx),
        COMPOSITES: _str_array(tuple(composites), ctx),
    }


def _i64_attr(value: int, ctx: ir.Context) -> ir.Attribute:
    return ir.IntegerAttr.get(ir.IntegerType.get_signless(64, context=ctx), value)


def get_composites(func_op: ir.Operation) -> list[str]:
    if not _has(func_op, COMPOSITES):
        return []
    return [_str(a) for a in ir.ArrayAttr(func_op.attributes[COMPOSITES])]


# --- host reasons ------------------------------------------------------------------


def set_reason(op: ir.Operation, reason: str) -> None:
    op.attributes[REASON] = _string_attr(reason, op.context)


@lru_cache(maxsize=4096)
def _string_attr(text: str, _ctx: ir.Context) -> ir.Attribute:
    return ir.StringAttr.get(text, context=_ctx)


def get_reason(op: ir.Operation) -> str | None:
    return _str(op.attributes[REASON]) if _has(op, REASON) else None


# --- cleanup -----------------------------------------------------------------------


def clear(op: ir.Operation, names: Iterable[str] = ALL) -> None:
    attrs = op.attributes
    for name in names:
        if name in attrs:
            del attrs[name]


def clear_member(op: ir.Operation) -> None:
    """Drops host-side partitioning state from an op that moved into an outlined function."""
    clear(op, _MEMBER_TRANSIENT)


def clear_region(op: ir.Operation) -> None:
    clear(op, (TARGET, REGION))
