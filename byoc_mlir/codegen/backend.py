"""The `Backend` value: what a vendor declares.

A backend says which op kinds it runs alone (`Backend.supports`) and which op DAGs it
runs fused (`Backend.composite`). Each declaration carries checks: functions of one
`CheckContext` that return ``None`` to accept or ``Reject(reason)`` to refuse. The
reasons are data; they end up in the decision log next to the op they refused.

Op kinds are op classes (``linalg.MatmulOp``, ``tosa.Conv2DOp``) or recognised generic
forms (`recognisers.RELU`); patterns and support tables name kinds, never strings.

**Benefit rule (the only one):** when composite matches overlap, the match with the
higher integer ``benefit`` wins; equal benefits go to the backend listed first, then to
the match whose root comes first in the function.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from iree.compiler import ir

from byoc_mlir.codegen import recognisers
from byoc_mlir.codegen.recognisers import Recogniser

KindKey: TypeAlias = "str | Recogniser"
"""An op kind as stored: the op name taken from its class, or a recogniser."""


def kind_key(kind: object) -> KindKey:
    """Normalises an op class or recogniser to its key; strings are refused on purpose."""
    if isinstance(kind, Recogniser):
        return kind
    name = getattr(kind, "OPERATION_NAME", None)
    if isinstance(kind, type) and isinstance(name, str):
        return name
    raise TypeError(
        f"op kinds are op classes (e.g. linalg.MatmulOp) or recognisers (e.g. RELU), not {kind!r}"
    )


def classify(op: ir.Operation) -> KindKey:
    """The kind of an op: its name, or for ``linalg.generic`` the recognised form."""
    name = op.name
    if name == recognisers.GENERIC:
        rec = recognisers.recognise(op)
        if rec is not None:
            return rec
    return name


def kind_name(key: KindKey) -> str:
    return repr(key) if isinstance(key, Recogniser) else key


@dataclass(frozen=True)
class Reject:
    """A refusal, with the reason shown to the user (``element type f64 ...``)."""

    reason: str


@dataclass(frozen=True)
class CheckContext:
    """Everything a check may look at. New fields may be added; checks read what they need.

    Attributes:
        op: the op being checked (for a composite: the root, i.e. the last op).
        kind: the op's kind.
        backend: the backend asking.
        matches: for a composite, the named sub-matches (``{"conv": op, ...}``).
        members: for a composite, every matched op in program order; else ``(op,)``.
        options: backend options given by the user.
    """

    op: ir.Operation
    kind: KindKey
    backend: Backend
    matches: Mapping[str, ir.Operation] = field(default_factory=dict)
    members: tuple[ir.Operation, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    member_operands: tuple[Sequence[ir.Value], ...] = ()
    """Operands of each member, when the caller already has them (saves binding calls)."""

    def each_member(self) -> list[tuple[ir.Operation, Sequence[ir.Value]]]:
        """(op, its operands) for every member (just the op when not a composite)."""
        members = self.members or (self.op,)
        if len(self.member_operands) == len(members):
            return list(zip(members, self.member_operands, strict=True))
        return [(m, list(m.operands)) for m in members]


Check: TypeAlias = Callable[[CheckContext], "Reject | None"]


class _Wildcard:
    def __repr__(self) -> str:
        return "ANY"


ANY = _Wildcard()
"""Pattern input that matches any value (argument, constant, any producer)."""


@dataclass(frozen=True)
class Pattern:
    """A DAG pattern rooted at its last op; inputs match the op's data inputs in order."""

    kind: KindKey
    inputs: tuple[Pattern | _Wildcard, ...]
    name: str | None

    def walk(self) -> list[Pattern]:
        out = [self]
        for p in self.inputs:
            if isinstance(p, Pattern):
                out.extend(p.walk())
        return out


def op(kind: object, *inputs: Pattern | _Wildcard, name: str | None = None) -> Pattern:
    """Builds a pattern node: ``op(RELU, op(BIAS_ADD, op(linalg.MatmulOp)))``.

    Args:
        kind: an op class or a recogniser.
        inputs: patterns for the op's data inputs, in order (fewer than the op has is
            fine; the rest match anything). Commutative recognisers try both orders.
        name: a name for the matched op, available to checks as ``ctx.matches[name]``.

    Raises:
        TypeError: an input is not a pattern (a bare kind would silently match anything).
    """
    for i, p in enumerate(inputs):
        if not isinstance(p, Pattern | _Wildcard):
            raise TypeError(
                f"pattern input {i} of {kind_name(kind_key(kind))} is {p!r}; inputs are "
                f"op(...) or ANY, e.g. op(linalg.MatmulOp) rather than linalg.MatmulOp"
            )
    return Pattern(kind_key(kind), tuple(inputs), name)


@dataclass(frozen=True)
class CompositeRule:
    name: str
    pattern: Pattern
    benefit: int
    check: Check | None
    weights: bool = False
    """Its code is made from its constants (e.g. int8 weights): a region holding it gets
    every constant moved in, like `Backend.move_weights` but for that region only."""


_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class Backend:
    """One accelerator or library: what it runs, and (later) how to emit code for it.

    Args:
        name: the name users pass to ``--backend``; lower-case identifier.
        description: one line for listings.
        codegen: the vendor hook ``(RegionView, CodegenOptions) -> artifact`` (see
            `byoc_mlir.codegen.hook`); ``None`` for a partition-only backend.
        runtime: for the runtime route, ``payload -> callable(*arrays) -> arrays``; the
            callable serves one region at run time.
        version: part of the artifact cache key: bump it when codegen output changes.
        move_weights: outline every constant its regions read into them, however large,
            so codegen sees the weights (to prepack or fold them at compile time) instead
            of receiving them as arguments.
        in_process_safe: the hook (and what it calls) is trusted not to crash, hang or
            exhaust memory, so by default it runs in the compiling process (faster). Left
            False, an installed backend's hook runs in a worker process with a time and
            memory limit (`byoc_mlir.codegen.workers`).
    """

    def __init__(
        self,
        name: str,
        description: str = "",
        codegen: Callable[..., Any] | None = None,
        runtime: Callable[[bytes], Callable[..., Any]] | None = None,
        version: str = "1",
        move_weights: bool = False,
        in_process_safe: bool = False,
    ):
        if not _NAME.match(name):
            raise ValueError(f"backend name {name!r} must match {_NAME.pattern}")
        self.name = name
        self.description = description
        self.codegen = codegen
        self.runtime = runtime
        self.version = version
        self.move_weights = move_weights
        self.in_process_safe = in_process_safe
        self._support: dict[KindKey, list[Check]] = {}
        self._unsupported: dict[KindKey, Reject] = {}  # one refusal per kind, reused
        self.composites: list[CompositeRule] = []

    def __repr__(self) -> str:
        return f"Backend({self.name!r})"

    # --- declaring -------------------------------------------------------------------

    def supports(self, *kinds: object, check: Check | None = None) -> Callable[[Check], Check]:
        """Declares that the backend runs ops of these kinds alone.

        Use directly (``b.supports(linalg.MatmulOp, check=f32_only)``) or as a decorator
        whose function is the check; the decorator returns the function unchanged.
        """
        keys = [kind_key(k) for k in kinds]
        if not keys:
            raise ValueError("supports() needs at least one op kind")

        def register(fn: Check | None) -> Any:
            for key in keys:
                checks = self._support.setdefault(key, [])
                if fn is not None:
                    checks.append(fn)
            return fn

        if check is not None:
            register(check)
            return lambda fn: fn
        for key in keys:
            self._support.setdefault(key, [])
        return register

    def composite(
        self,
        name: str,
        pattern: Pattern,
        *,
        benefit: int,
        check: Check | None = None,
        weights: bool = False,
    ) -> CompositeRule:
        """Declares a fused pattern. See the module docstring for the benefit rule;
        ``weights``: see `CompositeRule.weights`."""
        if not _NAME.match(name):
            raise ValueError(f"composite name {name!r} must match {_NAME.pattern}")
        if any(c.name == name for c in self.composites):
            raise ValueError(f"backend {self.name}: composite {name!r} declared twice")
        if not isinstance(benefit, int) or isinstance(benefit, bool):
            raise TypeError(f"composite {name!r}: benefit must be an int")
        if not isinstance(pattern, Pattern):
            raise TypeError(f"composite {name!r}: the pattern must be built with op(...)")
        rule = CompositeRule(name, pattern, benefit, check, weights)
        self.composites.append(rule)
        return rule

    # --- asking ----------------------------------------------------------------------

    @property
    def kinds(self) -> Sequence[KindKey]:
        return list(self._support)

    def check_op(
        self,
        op: ir.Operation,
        kind: KindKey,
        options: Mapping[str, Any] | None = None,
        operands: Sequence[ir.Value] | None = None,
    ) -> Reject | None:
        """Whether the backend runs ``op`` alone: None, or the first refusal."""
        checks = self._support.get(kind)
        if checks is None:
            if kind == recognisers.GENERIC:  # its description reads the body
                return Reject(f"{_describe(op, kind)} is not supported")
            refusal = self._unsupported.get(kind)
            if refusal is None:
                refusal = self._unsupported[kind] = Reject(f"{kind_name(kind)} is not supported")
            return refusal
        if not checks:
            return None
        ctx = CheckContext(
            op,
            kind,
            self,
            members=(op,),
            options=options or {},
            member_operands=(operands,) if operands is not None else (),
        )
        for check in checks:
            verdict = check(ctx)
            if verdict is not None:
                return verdict
        return None


def _describe(op: ir.Operation, kind: KindKey) -> str:
    if isinstance(kind, str) and kind == recognisers.GENERIC:
        return f"linalg.generic computing {recognisers.describe_body(op)}"
    return kind_name(kind)


def bias_epilogues(
    backend: Backend,
    kind: object,
    prefix: str,
    activations: Sequence[tuple[object, str]] = (),
    check: Check | None = None,
    *,
    match: str | None = None,
    suffix: str = "",
) -> None:
    """Declares the usual epilogue composites of ``kind`` (a conv or matmul):
    ``{prefix}_bias{suffix}`` = ``BIAS_ADD(kind, ANY)`` (benefit 2) and, per (activation
    kind, name), ``{prefix}_bias_{name}{suffix}`` = ``act(BIAS_ADD(kind, ANY))`` (benefit
    3). Checks find the ``kind`` op as ``ctx.matches[match]`` (default: ``prefix``)."""
    bias = recognisers.BIAS_ADD
    match = match or prefix
    for act, act_name in activations:
        backend.composite(
            f"{prefix}_bias_{act_name}{suffix}",
            op(act, op(bias, op(kind, name=match), ANY)),
            benefit=3,
            check=check,
        )
    backend.composite(
        f"{prefix}_bias{suffix}", op(bias, op(kind, name=match), ANY), benefit=2, check=check
    )


def quantized_units(
    backend: Backend,
    kind: object,
    prefix: str,
    check: Check | None = None,
    *,
    through: Sequence[object] = (),
    suffix: str = "",
    weights: bool = False,
) -> None:
    """Declares the QDQ units of ``kind`` (a conv or matmul), each one partitioning unit
    whose edges are the quantized tensors: ``q{prefix}_bias{suffix}`` =
    ``QUANTIZE(BIAS_ADD(kind(DEQUANTIZE), ANY))`` (benefit 5) and ``q{prefix}{suffix}`` =
    ``QUANTIZE(kind(DEQUANTIZE))`` (benefit 4); per op kind in ``through`` (a
    ``tensor.pad`` or a reshape between the dequantize and ``kind``), the same with it
    (``..._{name}``, benefit one more). Checks find the ops as ``ctx.matches["q"]``,
    ``["dq"]`` and ``[prefix]``. ``weights``: the units' regions get their constants
    (`CompositeRule.weights`)."""
    q, dq, bias = recognisers.QUANTIZE, recognisers.DEQUANTIZE, recognisers.BIAS_ADD
    feeds: list[tuple[str, Pattern, int]] = [("", op(dq, name="dq"), 0)]
    for between in through:
        label = _kind_label(between)
        feeds.append((f"_{label}", op(between, op(dq, name="dq"), name=label), 1))
    for feed_name, feed, extra in feeds:
        anchor = op(kind, feed, name=prefix)
        backend.composite(
            f"q{prefix}_bias{feed_name}{suffix}",
            op(q, op(bias, anchor, ANY), name="q"),
            benefit=5 + extra,
            check=check,
            weights=weights,
        )
        backend.composite(
            f"q{prefix}{feed_name}{suffix}",
            op(q, anchor, name="q"),
            benefit=4 + extra,
            check=check,
            weights=weights,
        )


def _kind_label(kind: object) -> str:
    """``tensor.pad`` -> ``pad``, ``tensor.collapse_shape`` -> ``collapse_shape``."""
    key = kind_key(kind)
    return key.name if isinstance(key, Recogniser) else key.rsplit(".", 1)[-1]
