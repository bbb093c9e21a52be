"""The vendor-facing API: declaring a `Backend`, its checks and patterns, and discovery."""

from __future__ import annotations

import pytest
from conftest import T44, FuncBuilder, body_ops, functions, mlp_text, parse, partitioned
from iree.compiler import ir
from iree.compiler.dialects import linalg, tosa

from byoc_mlir import ANY, Backend, ByocError, CheckContext, DecisionLog, Reject, op
from byoc_mlir.codegen import recognisers, registry
from byoc_mlir.codegen.backend import Pattern, kind_key
from byoc_mlir.codegen.recognisers import BIAS_ADD, RELU, Recogniser
from byoc_mlir.dialects import byoc
from byoc_mlir.passes import AnnotatePass


def _matmul_module() -> ir.Module:
    fb = FuncBuilder(T44, T44)
    return parse(fb.build(fb.matmul(*fb.args)))


def _first(module: ir.Module, name: str) -> ir.Operation:
    return next(o for o in body_ops(functions(module)["main"]) if o.name == name)


# --- declaring -------------------------------------------------------------------------


def test_supports_with_check_runs_the_check() -> None:
    seen: list[CheckContext] = []

    def record(ctx: CheckContext) -> Reject | None:
        seen.append(ctx)
        return None

    b = Backend("vendor", "test")
    b.supports(linalg.MatmulOp, check=record)
    module = _matmul_module()
    mm = _first(module, "linalg.matmul")
    assert b.check_op(mm, kind_key(linalg.MatmulOp)) is None
    (ctx,) = seen
    assert ctx.op == mm and ctx.kind == "linalg.matmul" and ctx.backend is b
    assert ctx.members == (mm,)
    # An undeclared kind is refused with a reason naming it, without running the check.
    fill = _first(module, "linalg.fill")
    assert b.check_op(fill, kind_key(linalg.FillOp)) == Reject("linalg.fill is not supported")
    assert len(seen) == 1


def test_first_refusal_wins() -> None:
    b = Backend("vendor")
    b.supports(linalg.MatmulOp, check=lambda ctx: Reject("first"))
    b.supports(linalg.MatmulOp, check=lambda ctx: Reject("second"))
    mm = _first(_matmul_module(), "linalg.matmul")
    assert b.check_op(mm, kind_key(linalg.MatmulOp)) == Reject("first")


def test_supports_as_decorator_returns_the_function() -> None:
    b = Backend("vendor", "test")

    @b.supports(linalg.MatmulOp)
    def refuse(ctx: CheckContext) -> Reject | None:
        return Reject("the array is busy")

    assert callable(refuse) and refuse.__name__ == "refuse"
    mm = _first(_matmul_module(), "linalg.matmul")
    assert b.check_op(mm, kind_key(linalg.MatmulOp)) == Reject("the array is busy")


def test_supports_with_check_used_as_decorator_keeps_the_function() -> None:
    b = Backend("vendor", "test")

    def f32_only(ctx: CheckContext) -> Reject | None:
        return None

    decorator = b.supports(linalg.MatmulOp, check=f32_only)

    def other(ctx: CheckContext) -> Reject | None:
        return None

    assert decorator(other) is other


def test_supports_needs_a_kind() -> None:
    with pytest.raises(ValueError, match="at least one op kind"):
        Backend("vendor").supports()


def test_supports_without_check_accepts() -> None:
    b = Backend("vendor", "test")
    b.supports(linalg.MatmulOp)
    mm = _first(_matmul_module(), "linalg.matmul")
    assert b.check_op(mm, kind_key(linalg.MatmulOp)) is None
    assert list(b.kinds) == ["linalg.matmul"]


@pytest.mark.parametrize("benefit", [1.5, "2", True, None])
def test_composite_benefit_must_be_int(benefit: object) -> None:
    b = Backend("vendor")
    with pytest.raises(TypeError, match="benefit must be an int"):
        b.composite("mm", op(linalg.MatmulOp), benefit=benefit)  # type: ignore[arg-type]
    assert b.composites == []


def test_composite_records_the_rule() -> None:
    b = Backend("vendor")
    rule = b.composite("mm_relu", op(RELU, op(linalg.MatmulOp, name="mm")), benefit=3)
    assert b.composites == [rule]
    assert rule.benefit == 3 and rule.pattern.kind is RELU
    assert [p.name for p in rule.pattern.walk()] == [None, "mm"]


def test_duplicate_composite_name_raises() -> None:
    b = Backend("vendor")
    b.composite("mm", op(linalg.MatmulOp), benefit=1)
    with pytest.raises(ValueError, match="declared twice"):
        b.composite("mm", op(linalg.BatchMatmulOp), benefit=2)
    assert len(b.composites) == 1


@pytest.mark.parametrize("name", ["Vendor", "my-npu", "1npu", "", "npu.x", "npu "])
def test_bad_backend_name_raises(name: str) -> None:
    with pytest.raises(ValueError, match="must match"):
        Backend(name)


@pytest.mark.parametrize("name", ["Bad", "a-b", "1x"])
def test_bad_composite_name_raises(name: str) -> None:
    with pytest.raises(ValueError, match="must match"):
        Backend("vendor").composite(name, op(linalg.MatmulOp), benefit=1)


@pytest.mark.parametrize("kind", ["linalg.matmul", "relu", 3, None, int, linalg])
def test_kind_key_refuses_non_kinds(kind: object) -> None:
    with pytest.raises(TypeError, match="op classes"):
        kind_key(kind)


def test_strings_are_refused_everywhere_a_kind_is_named() -> None:
    b = Backend("vendor")
    with pytest.raises(TypeError):
        b.supports("linalg.matmul")
    with pytest.raises(TypeError):
        op("linalg.matmul")
    assert b.kinds == []


@pytest.mark.parametrize("bad_input", [linalg.MatmulOp, RELU, "linalg.matmul", None])
def test_pattern_inputs_must_be_patterns(bad_input: object) -> None:
    """A bare kind as an input (``op(RELU, linalg.MatmulOp)``) would silently match anything."""
    with pytest.raises(TypeError, match=r"op\(\.\.\.\) or ANY"):
        op(RELU, bad_input)  # type: ignore[arg-type]


def test_composite_pattern_must_be_a_pattern() -> None:
    b = Backend("vendor")
    with pytest.raises(TypeError, match="pattern"):
        b.composite("mm", linalg.MatmulOp, benefit=1)  # type: ignore[arg-type]
    assert b.composites == []


def test_kind_key_of_classes_and_recognisers() -> None:
    assert kind_key(linalg.MatmulOp) == "linalg.matmul"
    assert kind_key(tosa.Conv2DOp) == "tosa.conv2d"
    assert kind_key(RELU) is RELU


# --- Reject reasons reach the IR ----------------------------------------------------------


def _vendor() -> Backend:
    vendor = Backend("vendor", "test vendor: matmuls of at least 8 rows")

    @vendor.supports(linalg.MatmulOp)
    def big_enough(ctx: CheckContext) -> Reject | None:
        rows = ir.RankedTensorType(ctx.op.results[0].type).shape[0]
        if rows < 8:
            return Reject(f"{rows} rows do not fill the 8-row array")
        return None

    return vendor


def test_reject_reason_is_annotated_on_the_op() -> None:
    fb = FuncBuilder(T44, T44)
    module = parse(fb.build(fb.matmul(*fb.args)))
    with module.context:
        AnnotatePass((_vendor(), "testing")).apply(module.operation)  # type: ignore[arg-type]
    mm = _first(module, "linalg.matmul")
    assert byoc.get_accept(mm) == ("testing",)
    assert byoc.get_reject(mm) == {"vendor": "4 rows do not fill the 8-row array"}
    fill = _first(module, "linalg.fill")
    assert byoc.get_reject(fill) == {"vendor": "linalg.fill is not supported"}


def test_reject_reason_reaches_the_decision_log() -> None:
    fb = FuncBuilder(T44, T44)
    module = partitioned(fb.build(fb.matmul(*fb.args)), [_vendor()])
    reasons = {h.op: h.reason for h in DecisionLog.from_module(module.operation).host_ops}
    assert reasons == {
        "linalg.matmul": "rejected: vendor: 4 rows do not fill the 8-row array",
        "linalg.fill": "rejected: vendor: linalg.fill is not supported",
    }
    main = functions(module)["main"]
    mm = next(o for o in body_ops(main) if o.name == "linalg.matmul")
    assert byoc.get_reason(mm) == "rejected: vendor: 4 rows do not fill the 8-row array"


def test_testing_backend_rejects_f64_with_the_element_type() -> None:
    t64 = "tensor<4x4xf64>"
    fb = FuncBuilder(t64, t64)
    module = partitioned(fb.build(fb.add(*fb.args)))
    (host,) = DecisionLog.from_module(module.operation).host_ops
    assert host.reason == "rejected: testing: element type f64 is not supported (valid: f32)"


# --- registry ----------------------------------------------------------------------------


def test_unknown_backend_lists_the_known_ones() -> None:
    with pytest.raises(ByocError) as info:
        registry.get("no_such_npu")
    message = info.value.message
    assert "unknown backend 'no_such_npu'" in message
    for name in registry.available():
        assert name in message


def test_resolve_refuses_duplicates() -> None:
    with pytest.raises(ByocError, match="given twice"):
        registry.resolve(["testing", "testing"])
    with pytest.raises(ByocError, match="given twice"):
        registry.resolve([registry.get("testing"), "testing"])


def test_resolve_keeps_priority_order() -> None:
    custom = Backend("custom")
    got = registry.resolve(["testing_matmul", custom, "testing"])
    assert [b.name for b in got] == ["testing_matmul", "custom", "testing"]
    assert got[1] is custom


def test_unknown_backend_fails_partition() -> None:
    fb = FuncBuilder(T44, T44)
    with pytest.raises(ByocError, match="unknown backend 'nope'"):
        partitioned(fb.build(fb.add(*fb.args)), ["nope"])


def test_entry_point_must_name_a_backend() -> None:
    with pytest.raises(ByocError, match="is not a byoc_mlir Backend"):
        registry._load("x", "byoc_mlir.backends.testing.backend:f32_static")
    with pytest.raises(ByocError, match="names a backend called 'testing'"):
        registry._load("other", "byoc_mlir.backends.testing.backend:BACKEND")


# --- contract tests: every discovered backend ------------------------------------------------

BACKENDS = registry.available()


def _valid_kind(kind: object) -> bool:
    if isinstance(kind, Recogniser):
        return kind in recognisers.ALL
    return isinstance(kind, str) and ir.Context().is_registered_operation(kind)


def test_reference_backends_are_discovered() -> None:
    assert {"testing", "testing_matmul"} <= set(BACKENDS)


@pytest.mark.parametrize("name", sorted(BACKENDS))
class TestBackendContract:
    def test_name_matches(self, name: str) -> None:
        backend = BACKENDS[name]
        assert isinstance(backend, Backend)
        assert backend.name == name
        assert registry.get(name) is backend

    def test_description_is_not_empty(self, name: str) -> None:
        assert BACKENDS[name].description.strip()

    def test_declares_something(self, name: str) -> None:
        backend = BACKENDS[name]
        assert backend.kinds or backend.composites

    def test_supported_kinds_are_valid(self, name: str) -> None:
        bad = [k for k in BACKENDS[name].kinds if not _valid_kind(k)]
        assert bad == []

    def test_composite_patterns_are_valid(self, name: str) -> None:
        names = [c.name for c in BACKENDS[name].composites]
        assert len(names) == len(set(names))
        for rule in BACKENDS[name].composites:
            assert isinstance(rule.benefit, int) and not isinstance(rule.benefit, bool)
            assert _valid_kind(rule.pattern.kind), (rule.name, rule.pattern.kind)
            for node in rule.pattern.walk():
                assert _valid_kind(node.kind), (rule.name, node.kind)
                for child in node.inputs:
                    assert child is ANY or isinstance(child, Pattern)


# --- the benefit rule ----------------------------------------------------------------------


def _fused_backend(name: str, benefits: dict[str, int], refuse: str = "") -> Backend:
    """A backend running matmul/bias-add/relu alone and fused; ``refuse`` names a composite
    whose check always refuses."""
    b = Backend(name, "benefit rule test")
    b.supports(linalg.MatmulOp, linalg.FillOp, BIAS_ADD, RELU)
    patterns = {
        "mm_bias": op(BIAS_ADD, op(linalg.MatmulOp), ANY),
        "mm_bias_relu": op(RELU, op(BIAS_ADD, op(linalg.MatmulOp), ANY)),
    }
    for rule, benefit in benefits.items():
        check = (lambda ctx: Reject("no")) if rule == refuse else None
        b.composite(rule, patterns[rule], benefit=benefit, check=check)
    return b


def _composites_of(backends: list[Backend]) -> list[tuple[str, str]]:
    """(backend, composite) of each region, for one MLP layer."""
    module = partitioned(mlp_text(layers=1), backends)
    return [
        (r.backend, c)
        for r in DecisionLog.from_module(module.operation).regions
        for c in r.composites
    ]


@pytest.mark.parametrize(
    ("benefits", "refuse", "expected"),
    [
        ({"mm_bias": 2, "mm_bias_relu": 5}, "", [("v", "mm_bias_relu")]),
        ({"mm_bias": 5, "mm_bias_relu": 2}, "", [("v", "mm_bias")]),
        ({"mm_bias": 2, "mm_bias_relu": 5}, "mm_bias_relu", [("v", "mm_bias")]),
    ],
)
def test_higher_benefit_wins(
    benefits: dict[str, int], refuse: str, expected: list[tuple[str, str]]
) -> None:
    assert _composites_of([_fused_backend("v", benefits, refuse)]) == expected


def test_equal_benefit_goes_to_the_backend_listed_first() -> None:
    a = _fused_backend("a", {"mm_bias_relu": 3})
    b = _fused_backend("b", {"mm_bias_relu": 3})
    assert _composites_of([a, b]) == [("a", "mm_bias_relu")]
    assert _composites_of([b, a]) == [("b", "mm_bias_relu")]
    # A higher benefit beats priority.
    c = _fused_backend("c", {"mm_bias_relu": 4})
    assert _composites_of([a, c]) == [("c", "mm_bias_relu")]
