"""The ``linalg.generic`` recognisers: each form matches, and its near misses do not.

Each case builds one generic with `FuncBuilder` and asks `recognise` which form it is
(``None`` when none) and the recogniser under test whether it matches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from conftest import (
    ID2,
    ROW2,
    T44,
    VEC4,
    FuncBuilder,
    body_ops,
    functions,
    parse,
    tensor_shape,
)
from iree.compiler import ir

from byoc_mlir.codegen.recognisers import (
    ADD,
    ALL,
    BIAS_ADD,
    BROADCAST,
    CLAMP,
    CONTRACTION,
    DEQUANTIZE,
    DIV,
    EXP,
    GELU,
    MAX_CONST,
    MIN_CONST,
    MUL,
    QUANTIZE,
    REDUCE_MAX,
    REDUCE_SUM,
    RELU,
    RSQRT,
    SCALE,
    SHIFT,
    SUB,
    quant_params,
    recognise,
)

Build = Callable[[FuncBuilder, str, str, str], str]
"""(builder, a: 4x4, b: 4x4, bias: 4) -> the generic's SSA name."""

TRANSPOSE = "affine_map<(d0, d1) -> (d1, d0)>"
COL2 = "affine_map<(d0, d1) -> (d0)>"
YIELD = "linalg.yield %r : f32"


def _generic(build: Build) -> tuple[ir.Module, ir.Operation]:
    fb = FuncBuilder(T44, T44, VEC4)
    result = build(fb, *fb.args)
    module = parse(fb.build(result))
    generics = [o for o in body_ops(functions(module)["main"]) if o.name == "linalg.generic"]
    return module, generics[-1]


def _classify(build: Build) -> tuple[object, dict[object, bool]]:
    """(recognised form, {recogniser: matches}) of the generic ``build`` makes."""
    module, generic = _generic(build)
    with module.context:
        return recognise(generic), {r: r.matches(generic) for r in ALL}


def _body(*lines: str) -> list[str]:
    return [*lines, YIELD]


def _relu_torch(fb: FuncBuilder, x: str, predicate: str, swap: bool = False) -> str:
    """``select(cmpf <predicate>(x, 0), x, 0)``; ``swap`` selects ``(0, x)`` instead."""
    z = fb.constant(0.0)
    picked = f"{z}, %i0" if swap else f"%i0, {z}"
    return fb.generic(
        [x],
        _body(
            f"%p = arith.cmpf {predicate}, %i0, {z} : f32", f"%r = arith.select %p, {picked} : f32"
        ),
    )


# --- forms that match ------------------------------------------------------------------------

POSITIVE: dict[str, tuple[Build, object]] = {
    "add": (lambda fb, a, b, v: fb.add(a, b), ADD),
    "add_swapped_operands": (lambda fb, a, b, v: fb.binary("addf", a, b, swap=True), ADD),
    "add_same_input_twice": (lambda fb, a, b, v: fb.add(a, a), ADD),
    "sub": (lambda fb, a, b, v: fb.sub(a, b), SUB),
    "mul": (lambda fb, a, b, v: fb.mul(a, b), MUL),
    "mul_swapped_operands": (lambda fb, a, b, v: fb.binary("mulf", a, b, swap=True), MUL),
    "bias_add_rows": (lambda fb, a, b, v: fb.bias_add(a, v), BIAS_ADD),
    "bias_add_bias_first": (
        lambda fb, a, b, v: fb.generic(
            [v, a], _body("%r = arith.addf %i0, %i1 : f32"), maps=[ROW2, ID2, ID2], out_type=T44
        ),
        BIAS_ADD,
    ),
    "bias_add_columns": (
        lambda fb, a, b, v: fb.generic(
            [a, v], _body("%r = arith.addf %i1, %i0 : f32"), maps=[ID2, COL2, ID2]
        ),
        BIAS_ADD,
    ),
    "relu_maximumf": (lambda fb, a, b, v: fb.relu(a), RELU),
    "relu_zero_first": (
        lambda fb, a, b, v: fb.generic(
            [a], _body(f"%r = arith.maximumf {fb.constant(0.0)}, %i0 : f32")
        ),
        RELU,
    ),
    "relu_maxnumf": (
        lambda fb, a, b, v: fb.generic(
            [a], _body(f"%r = arith.maxnumf %i0, {fb.constant(0.0)} : f32")
        ),
        RELU,
    ),
    "relu_torch_ugt_select": (lambda fb, a, b, v: fb.relu(a, form="torch"), RELU),
    "relu_torch_ogt_select": (lambda fb, a, b, v: _relu_torch(fb, a, "ogt"), RELU),
    "relu_negative_zero": (lambda fb, a, b, v: fb.relu(a, zero=-0.0), RELU),
    "clamp_max_then_min": (lambda fb, a, b, v: fb.clamp(a, -1.0, 6.0, max_first=True), CLAMP),
    "clamp_min_then_max": (lambda fb, a, b, v: fb.clamp(a, -1.0, 6.0, max_first=False), CLAMP),
    "clamp_bound_first": (
        lambda fb, a, b, v: fb.generic(
            [a],
            _body(
                f"%t = arith.maximumf {fb.constant(-1.0)}, %i0 : f32",
                f"%r = arith.minimumf {fb.constant(6.0)}, %t : f32",
            ),
        ),
        CLAMP,
    ),
}


# --- constants inside the body (as torch-mlir and tosa-to-linalg emit them) ---

INNER_CONSTANT: dict[str, tuple[Build, object]] = {
    "relu_maximumf_inner_zero": (lambda fb, a, b, v: fb.relu(a, outer_const=False), RELU),
    "relu_torch_inner_zero": (
        lambda fb, a, b, v: fb.relu(a, form="torch", outer_const=False),
        RELU,
    ),
    "clamp_inner_bounds": (
        lambda fb, a, b, v: fb.clamp(a, 0.0, 6.0, outer_const=False),
        CLAMP,
    ),
}


def _scalar_op(fb: FuncBuilder, x: str, body: list[str]) -> str:
    """A one-input generic whose body lines use ``%i0`` and a function-level ``%c``."""
    element = tensor_shape(fb.types[x])[1]
    c = fb.constant(8.0, element)
    lines = [line.replace("%c", c) for line in body]
    return fb.generic([x], [*lines, f"linalg.yield %r : {element}"])


def _bound_rank0(fb: FuncBuilder, x: str, pred: str, c: float) -> str:
    """torch's clamp_min/clamp_max: ``select(cmpf(pred, x, c), x, c)``, ``c`` a rank-0
    constant tensor input read through ``(d0, d1) -> ()``."""
    k = fb._emit(fb._fresh("c"), "tensor<f32>", f"arith.constant dense<{c!r}> : tensor<f32>")
    return fb.generic(
        [x, k],
        [
            "%p = arith.cmpf " + pred + ", %i0, %i1 : f32",
            "%r = arith.select %p, %i0, %i1 : f32",
            "linalg.yield %r : f32",
        ],
        maps=[ID2, "affine_map<(d0, d1) -> ()>", ID2],
    )


BOUNDS_AND_SCALES: dict[str, tuple[Build, object]] = {
    "scale_mul": (lambda fb, a, b, v: _scalar_op(fb, a, ["%r = arith.mulf %i0, %c : f32"]), SCALE),
    "scale_div": (lambda fb, a, b, v: _scalar_op(fb, a, ["%r = arith.divf %i0, %c : f32"]), SCALE),
    "max_const_maximumf": (
        lambda fb, a, b, v: _scalar_op(fb, a, ["%r = arith.maximumf %c, %i0 : f32"]),
        MAX_CONST,
    ),
    "min_const_minimumf": (
        lambda fb, a, b, v: _scalar_op(fb, a, ["%r = arith.minimumf %i0, %c : f32"]),
        MIN_CONST,
    ),
    "max_const_torch_rank0": (lambda fb, a, b, v: _bound_rank0(fb, a, "ogt", 0.0), MAX_CONST),
    "min_const_torch_rank0": (lambda fb, a, b, v: _bound_rank0(fb, a, "olt", 6.0), MIN_CONST),
}


def _reduce(fb: FuncBuilder, x: str, op: str, init: float, keepdims: bool) -> str:
    """A row reduction of a 4x4 tensor: ``op`` of the input and the accumulator."""
    out = "tensor<4x1xf32>" if keepdims else "tensor<4xf32>"
    out_map = "affine_map<(d0, d1) -> (d0, 0)>" if keepdims else "affine_map<(d0, d1) -> (d0)>"
    c = fb.constant(init)
    acc = fb._emit(fb._fresh(), out, f"tensor.empty() : {out}")
    filled = fb._emit(fb._fresh(), out, f"linalg.fill ins({c} : f32) outs({acc} : {out}) -> {out}")
    iters = '"parallel", "reduction"'
    return fb._emit(
        fb._fresh(),
        out,
        f"linalg.generic {{indexing_maps = [{ID2}, {out_map}], iterator_types = [{iters}]}}"
        f" ins({x} : {fb.types[x]}) outs({filled} : {out}) {{\n"
        f"  ^bb0(%i: f32, %o: f32):\n    %r = arith.{op} %i, %o : f32\n"
        f"    linalg.yield %r : f32\n  }} -> {out}",
    )


def _contraction(fb: FuncBuilder, a: str, b: str, b_map: str = "(d2, d1)") -> str:
    """``a @ b`` as a generic: loops (m, n, k), ``k`` the reduction (ONNX attention's
    products have two batch loops before them)."""
    out = "tensor<4x4xf32>"
    acc = fb._emit(fb._fresh(), out, f"tensor.empty() : {out}")
    zero = fb.constant(0.0)
    filled = fb._emit(
        fb._fresh(), out, f"linalg.fill ins({zero} : f32) outs({acc} : {out}) -> {out}"
    )
    maps = ", ".join(f"affine_map<(d0, d1, d2) -> {m}>" for m in ("(d0, d2)", b_map, "(d0, d1)"))
    iters = '"parallel", "parallel", "reduction"'
    return fb._emit(
        fb._fresh(),
        out,
        f"linalg.generic {{indexing_maps = [{maps}], iterator_types = [{iters}]}}"
        f" ins({a}, {b} : {fb.types[a]}, {fb.types[b]}) outs({filled} : {out}) {{\n"
        f"  ^bb0(%x: f32, %y: f32, %o: f32):\n    %p = arith.mulf %x, %y : f32\n"
        f"    %r = arith.addf %o, %p : f32\n    linalg.yield %r : f32\n  }} -> {out}",
    )


SOFTMAX_AND_NORM: dict[str, tuple[Build, object]] = {
    "div": (lambda fb, a, b, v: fb.binary("divf", a, b), DIV),
    "shift_add": (lambda fb, a, b, v: _scalar_op(fb, a, ["%r = arith.addf %i0, %c : f32"]), SHIFT),
    "shift_sub": (lambda fb, a, b, v: _scalar_op(fb, a, ["%r = arith.subf %i0, %c : f32"]), SHIFT),
    "exp": (lambda fb, a, b, v: fb.exp(a), EXP),
    "rsqrt": (lambda fb, a, b, v: fb.unary("math.rsqrt", a), RSQRT),
    "broadcast_copy": (
        lambda fb, a, b, v: fb.generic(
            [v], ["linalg.yield %i0 : f32"], maps=[ROW2, ID2], out_type=T44
        ),
        BROADCAST,
    ),
    "reduce_sum": (lambda fb, a, b, v: _reduce(fb, a, "addf", 0.0, False), REDUCE_SUM),
    "reduce_sum_keepdims": (lambda fb, a, b, v: _reduce(fb, a, "addf", 0.0, True), REDUCE_SUM),
    "reduce_max": (lambda fb, a, b, v: _reduce(fb, a, "maximumf", -1000.5, False), REDUCE_MAX),
    "contraction": (lambda fb, a, b, v: _contraction(fb, a, b), CONTRACTION),
}

POSITIVE.update(INNER_CONSTANT)  # same checks as the outer-constant forms
POSITIVE.update(SOFTMAX_AND_NORM)
POSITIVE.update(BOUNDS_AND_SCALES)


@pytest.mark.parametrize("case", sorted(POSITIVE))
def test_form_is_recognised(case: str) -> None:
    build, expected = POSITIVE[case]
    form, matches = _classify(build)
    assert form is expected
    # The forms are disjoint: exactly the expected recogniser matches.
    assert [r for r, m in matches.items() if m] == [expected]


# --- near misses -----------------------------------------------------------------------------

NEAR_MISSES: dict[str, tuple[Build, object, object]] = {
    # wrong body op
    "add_with_divf": (lambda fb, a, b, v: fb.binary("divf", a, b), ADD, DIV),
    "mul_with_addf_is_add": (lambda fb, a, b, v: fb.add(a, b), MUL, ADD),
    "add_with_extra_op": (
        lambda fb, a, b, v: fb.generic(
            [a, b], _body("%s = arith.addf %i0, %i1 : f32", "%r = arith.negf %s : f32")
        ),
        ADD,
        None,
    ),
    "add_yielding_input": (
        lambda fb, a, b, v: fb.generic(
            [a, b], ["%s = arith.addf %i0, %i1 : f32", "linalg.yield %i0 : f32"]
        ),
        ADD,
        None,
    ),
    "add_of_input_and_output": (
        lambda fb, a, b, v: fb.generic([a, b], _body("%r = arith.addf %i0, %o : f32")),
        ADD,
        None,
    ),
    "sub_swapped_operands": (lambda fb, a, b, v: fb.binary("subf", a, b, swap=True), SUB, None),
    # non-parallel iterators
    "add_with_reduction_iterator": (
        lambda fb, a, b, v: fb.generic(
            [a, b], _body("%r = arith.addf %i0, %i1 : f32"), iterators=["parallel", "reduction"]
        ),
        ADD,
        None,
    ),
    "relu_with_reduction_iterator": (
        lambda fb, a, b, v: fb.generic(
            [a],
            _body(f"%r = arith.maximumf %i0, {fb.constant(0.0)} : f32"),
            iterators=["reduction", "parallel"],
        ),
        RELU,
        None,
    ),
    # broadcast where identity is expected, and identity where broadcast is expected
    "add_with_broadcast_is_bias_add": (lambda fb, a, b, v: fb.bias_add(a, v), ADD, BIAS_ADD),
    "bias_add_without_broadcast_is_add": (lambda fb, a, b, v: fb.add(a, b), BIAS_ADD, ADD),
    "add_with_transposed_input": (
        lambda fb, a, b, v: fb.generic(
            [a, b], _body("%r = arith.addf %i0, %i1 : f32"), maps=[ID2, TRANSPOSE, ID2]
        ),
        ADD,
        None,
    ),
    "relu_with_transposed_output": (
        lambda fb, a, b, v: fb.generic(
            [a], _body(f"%r = arith.maximumf %i0, {fb.constant(0.0)} : f32"), maps=[ID2, TRANSPOSE]
        ),
        RELU,
        None,
    ),
    "relu_with_broadcast_input": (
        lambda fb, a, b, v: fb.generic(
            [v],
            _body(f"%r = arith.maximumf %i0, {fb.constant(0.0)} : f32"),
            maps=[ROW2, ID2],
            out_type=T44,
        ),
        RELU,
        None,
    ),
    # relu with a nonzero constant, or the wrong comparison
    # max with a nonzero constant is not relu, but the general bound form
    "relu_max_with_one": (lambda fb, a, b, v: fb.relu(a, zero=1.0), RELU, MAX_CONST),
    "scale_by_tensor": (lambda fb, a, b, v: fb.binary("divf", a, b), SCALE, DIV),
    "relu_torch_with_one": (
        lambda fb, a, b, v: fb.relu(a, form="torch", zero=1.0),
        RELU,
        MAX_CONST,
    ),
    "relu_torch_olt": (lambda fb, a, b, v: _relu_torch(fb, a, "olt"), RELU, MIN_CONST),
    "relu_minimumf": (
        lambda fb, a, b, v: fb.generic(
            [a], _body(f"%r = arith.minimumf %i0, {fb.constant(0.0)} : f32")
        ),
        RELU,
        MIN_CONST,
    ),
    "relu_select_swapped": (lambda fb, a, b, v: _relu_torch(fb, a, "ugt", swap=True), RELU, None),
    # clamp near misses
    "clamp_two_max": (
        lambda fb, a, b, v: fb.generic(
            [a],
            _body(
                f"%t = arith.maximumf %i0, {fb.constant(-1.0)} : f32",
                f"%r = arith.maximumf %t, {fb.constant(6.0)} : f32",
            ),
        ),
        CLAMP,
        None,
    ),
    "clamp_bound_from_output": (
        lambda fb, a, b, v: fb.generic(
            [a],
            _body(
                f"%t = arith.maximumf %i0, {fb.constant(-1.0)} : f32",
                "%r = arith.minimumf %t, %o : f32",
            ),
        ),
        CLAMP,
        None,
    ),
    "clamp_not_chained": (
        lambda fb, a, b, v: fb.generic(
            [a],
            _body(
                f"%t = arith.maximumf %i0, {fb.constant(-1.0)} : f32",
                f"%r = arith.minimumf %i0, {fb.constant(6.0)} : f32",
            ),
        ),
        CLAMP,
        None,
    ),
    "transcendental": (lambda fb, a, b, v: fb.tanh(a), RELU, None),
    # a B read transposed ((n, k), not (k, n)): another contraction, not this form
    "contraction_transposed_b": (
        lambda fb, a, b, v: _contraction(fb, a, b, "(d1, d2)"),
        CONTRACTION,
        None,
    ),
}


@pytest.mark.parametrize("case", sorted(NEAR_MISSES))
def test_near_miss_is_not_recognised(case: str) -> None:
    build, refused, actual = NEAR_MISSES[case]
    form, matches = _classify(build)
    assert not matches[refused]
    assert form is actual


# --- GELU -------------------------------------------------------------------------------------


def _gelu_erf(fb: FuncBuilder, x: str) -> str:
    """``0.5 * x * (1 + erf(x / sqrt(2)))``, as torch-mlir lowers ``gelu``."""
    return fb.generic(
        [x],
        _body(
            "%h = arith.constant 0.5 : f32",
            "%one = arith.constant 1.0 : f32",
            "%s = arith.constant 0.70710678 : f32",
            "%a = arith.mulf %i0, %s : f32",
            "%e = math.erf %a : f32",
            "%b = arith.addf %e, %one : f32",
            "%m = arith.mulf %i0, %b : f32",
            "%r = arith.mulf %m, %h : f32",
        ),
    )


def _gelu_tanh(fb: FuncBuilder, x: str, *, drop_x: bool = False) -> str:
    """``0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))``; ``drop_x`` leaves out
    the outer ``x *`` (no longer GELU)."""
    tail = (
        ["%r = arith.mulf %t3, %h : f32"]
        if drop_x
        else ["%t4 = arith.mulf %i0, %t3 : f32", "%r = arith.mulf %t4, %h : f32"]
    )
    return fb.generic(
        [x],
        _body(
            "%h = arith.constant 0.5 : f32",
            "%one = arith.constant 1.0 : f32",
            "%k = arith.constant 0.7978845608 : f32",
            "%c = arith.constant 0.044715 : f32",
            "%x2 = arith.mulf %i0, %i0 : f32",
            "%x3 = arith.mulf %x2, %i0 : f32",
            "%t0 = arith.mulf %x3, %c : f32",
            "%t1 = arith.addf %i0, %t0 : f32",
            "%t2 = arith.mulf %t1, %k : f32",
            "%th = math.tanh %t2 : f32",
            "%t3 = arith.addf %th, %one : f32",
            *tail,
        ),
    )


@pytest.mark.parametrize("build", [_gelu_erf, _gelu_tanh], ids=["erf", "tanh"])
def test_gelu_forms_are_recognised(build: Callable[[FuncBuilder, str], str]) -> None:
    form, matches = _classify(lambda fb, a, b, v: build(fb, a))
    assert form is GELU
    assert [r for r, m in matches.items() if m] == [GELU]


def test_gelu_near_misses_without_its_signature() -> None:
    exp_form = _classify(
        lambda fb, a, b, v: fb.generic(
            [a],
            _body(
                "%h = arith.constant 0.5 : f32",
                "%s = arith.constant 0.70710678 : f32",
                "%a = arith.mulf %i0, %s : f32",
                "%e = math.exp %a : f32",
                "%r = arith.mulf %e, %h : f32",
            ),
        )
    )
    assert exp_form[0] is None
    assert _classify(lambda fb, a, b, v: fb.tanh(a))[0] is None


GELU_LOOKALIKES: dict[str, Build] = {
    "tanh_gelu_without_x_factor": lambda fb, a, b, v: _gelu_tanh(fb, a, drop_x=True),
    "half_tanh_of_scaled_x": lambda fb, a, b, v: fb.generic(
        [a],
        _body(
            "%h = arith.constant 0.5 : f32",
            "%c = arith.constant 0.044715 : f32",
            "%a = arith.mulf %i0, %c : f32",
            "%t = math.tanh %a : f32",
            "%r = arith.mulf %t, %h : f32",
        ),
    ),
    "half_erf_of_scaled_x": lambda fb, a, b, v: fb.generic(
        [a],
        _body(
            "%h = arith.constant 0.5 : f32",
            "%s = arith.constant 0.70710678 : f32",
            "%a = arith.mulf %i0, %s : f32",
            "%e = math.erf %a : f32",
            "%r = arith.mulf %e, %h : f32",
        ),
    ),
}


@pytest.mark.parametrize("case", sorted(GELU_LOOKALIKES))
def test_gelu_lookalikes_are_not_gelu(case: str) -> None:
    form, _ = _classify(GELU_LOOKALIKES[case])
    assert form is not GELU


def test_generic_with_two_outputs_is_not_recognised() -> None:
    text = f"""
    func.func @main(%a: {T44}, %b: {T44}) -> ({T44}, {T44}) {{
      %e = tensor.empty() : {T44}
      %r:2 = linalg.generic {{indexing_maps = [{ID2}, {ID2}, {ID2}, {ID2}],
                              iterator_types = ["parallel", "parallel"]}}
          ins(%a, %b : {T44}, {T44}) outs(%e, %e : {T44}, {T44}) {{
      ^bb0(%x: f32, %y: f32, %o1: f32, %o2: f32):
        %s = arith.addf %x, %y : f32
        linalg.yield %s, %s : f32, f32
      }} -> ({T44}, {T44})
      return %r#0, %r#1 : {T44}, {T44}
    }}
    """
    module = parse(text)
    generic = next(o for o in body_ops(functions(module)["main"]) if o.name == "linalg.generic")
    with module.context:
        assert recognise(generic) is None
        assert not any(r.matches(generic) for r in ALL)


def test_named_ops_are_not_generics() -> None:
    fb = FuncBuilder(T44, T44)
    module = parse(fb.build(fb.matmul(*fb.args)))
    mm = next(o for o in body_ops(functions(module)["main"]) if o.name == "linalg.matmul")
    with module.context:
        assert not any(r.matches(mm) for r in ALL)


def test_recognisers_have_distinct_names() -> None:
    assert len({repr(r) for r in ALL}) == len(ALL)
    assert repr(RELU) == "generic:relu"


def test_recognise_needs_no_ambient_context() -> None:
    fb = FuncBuilder(T44, T44)
    module = parse(fb.build(fb.add(*fb.args)))
    generic = next(o for o in body_ops(functions(module)["main"]) if o.name == "linalg.generic")
    assert recognise(generic) is ADD


# --- quantization ------------------------------------------------------------------------

QUANTIZE_U8 = """
^bb0(%in: f32, %out: i8):
  %0 = arith.divf %in, %s : f32
  %1 = math.roundeven %0 : f32
  %2 = arith.addf %1, %zp : f32
  %3 = arith.maximumf %2, %lo : f32
  %4 = arith.minimumf %3, %hi : f32
  %5 = arith.fptoui %4 : f32 to i8
  linalg.yield %5 : i8
"""
DEQUANTIZE_U8 = """
^bb0(%in: i8, %out: f32):
  %0 = arith.uitofp %in : i8 to f32
  %1 = arith.subf %0, %zp : f32
  %2 = arith.mulf %1, %s : f32
  linalg.yield %2 : f32
"""
DEQUANTIZE_INT_ZP = """
^bb0(%in: i8, %out: f32):
  %0 = arith.extui %in : i8 to i32
  %1 = arith.subi %0, %izp : i32
  %2 = arith.sitofp %1 : i32 to f32
  %3 = arith.mulf %2, %s : f32
  linalg.yield %3 : f32
"""


def _quant_generic(body: str, src: str, dst: str) -> tuple[ir.Module, ir.Operation]:
    text = f"""
func.func @main(%x: tensor<8x{src}>) -> tensor<8x{dst}> {{
  %s = arith.constant 0.25 : f32
  %zp = arith.constant 128.0 : f32
  %izp = arith.constant 128 : i32
  %lo = arith.constant 0.0 : f32
  %hi = arith.constant 255.0 : f32
  %lo7 = arith.constant 127.0 : f32
  %e = tensor.empty() : tensor<8x{dst}>
  %r = linalg.generic {{indexing_maps = [affine_map<(d0) -> (d0)>,
      affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]}}
      ins(%x : tensor<8x{src}>) outs(%e : tensor<8x{dst}>) {{{body}}} -> tensor<8x{dst}>
  return %r : tensor<8x{dst}>
}}"""
    module = parse(text)
    generics = [o for o in body_ops(functions(module)["main"]) if o.name == "linalg.generic"]
    return module, generics[0]


@pytest.mark.parametrize(
    "body, src, dst, kind",
    [
        (QUANTIZE_U8, "f32", "i8", QUANTIZE),
        (DEQUANTIZE_U8, "i8", "f32", DEQUANTIZE),
        (DEQUANTIZE_INT_ZP, "i8", "f32", DEQUANTIZE),
    ],
    ids=["quantize", "dequantize", "dequantize_integer_zero_point"],
)
def test_quantization_forms_and_their_parameters(body: str, src: str, dst: str, kind: Any) -> None:
    _, op = _quant_generic(body, src, dst)
    assert recognise(op) is kind
    params = quant_params(op)
    assert (params.scale, params.zero_point, params.dtype) == (0.25, 128, "u8")
    assert not params.symmetric and params.full_range
    assert params.saturation == ((0, 255) if kind is QUANTIZE else None)


def test_quantize_to_a_reduced_range_is_told_apart() -> None:
    """onnxruntime's reduce_range saturates u8 to [0, 127]: same form, not the full range."""
    _, op = _quant_generic(QUANTIZE_U8.replace("%hi", "%lo7"), "f32", "i8")
    assert recognise(op) is QUANTIZE
    params = quant_params(op)
    assert params.saturation == (0, 127) and not params.full_range


@pytest.mark.parametrize(
    "edit",
    [
        ("math.roundeven %0", "math.round %0"),  # ONNX rounds half to even
        ("%4 = arith.minimumf %3, %hi", "%4 = arith.minimumf %3, %in"),  # not a constant
        ("%0 = arith.divf %in, %s", "%0 = arith.divf %s, %in"),  # s / x
    ],
    ids=["round_half_away", "computed_bound", "reciprocal"],
)
def test_quantize_near_misses(edit: tuple[str, str]) -> None:
    _, op = _quant_generic(QUANTIZE_U8.replace(*edit), "f32", "i8")
    assert recognise(op) is not QUANTIZE
    with pytest.raises(ValueError, match="not a quantize or dequantize"):
        quant_params(op)


def test_dequantize_near_miss_without_scale() -> None:
    body = DEQUANTIZE_U8.replace("%2 = arith.mulf %1, %s", "%2 = arith.mulf %1, %1")
    _, op = _quant_generic(body, "i8", "f32")
    assert recognise(op) is not DEQUANTIZE


def test_quantization_recognisers_read_any_body_without_raising() -> None:
    """A body that starts with an op without operands (``linalg.index``, as ONNX's
    SoftmaxCrossEntropyLoss lowers) is no quantization form; it used to raise."""
    body = """
^bb0(%in: i8, %out: f32):
  %i = linalg.index 0 : index
  %c = arith.index_cast %i : index to i32
  %f = arith.sitofp %c : i32 to f32
  %m = arith.mulf %f, %s : f32
  linalg.yield %m : f32
"""
    _, op = _quant_generic(body, "i8", "f32")
    assert recognise(op) is None
