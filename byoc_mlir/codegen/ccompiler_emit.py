"""C emitters of the ``ccompiler`` backend: the loop nest of each kernel kind.

The generated C is the template a vendor copies, so it favours plain loops over
cleverness. Each kernel splits its outermost parallel loop into ``workgroup_count``
contiguous chunks; a matmul or convolution accumulates into its output and then runs
the composite's elementwise members on each finished element, in registers, while the
row or plane is still in cache. ``linalg.generic`` bodies are translated op by op, and
operands are indexed through the generic's indexing maps, so a bias broadcast along any
dimension is read correctly without special cases.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack

from iree.compiler import ir
from iree.compiler.dialects import arith, linalg

from byoc_mlir.codegen.ccompiler_writer import (
    CodegenError,
    KernelWriter,
    Operand,
    Resolver,
    c_float,
)
from byoc_mlir.codegen.hook import TensorSpec, constant_array

# --- generic bodies --------------------------------------------------------------------

_BINARY = {"arith.addf": "+", "arith.subf": "-", "arith.mulf": "*", "arith.divf": "/"}
_CALLS = {
    "arith.maximumf": "max_f32",
    "arith.minimumf": "min_f32",
    "arith.maxnumf": "maxnum_f32",
    "arith.minnumf": "minnum_f32",
}
_P = arith.CmpFPredicate
# Ordered predicates are false on NaN, as C's comparisons; unordered ones are the
# negated opposite comparison, which is true on NaN.
_CMPF = {
    int(_P.OEQ): "{a} == {b}",
    int(_P.OGT): "{a} > {b}",
    int(_P.OGE): "{a} >= {b}",
    int(_P.OLT): "{a} < {b}",
    int(_P.OLE): "{a} <= {b}",
    int(_P.UGT): "!({a} <= {b})",
    int(_P.UGE): "!({a} < {b})",
    int(_P.ULT): "!({a} >= {b})",
    int(_P.ULE): "!({a} > {b})",
    int(_P.UNE): "{a} != {b}",
}


def _scalar_constant(v: ir.Value) -> str | None:
    owner = v.owner
    if not isinstance(owner, ir.OpView) or owner.operation.name != "arith.constant":
        return None
    array = constant_array(owner.operation)
    return None if array is None or array.ndim != 0 else c_float(float(array))


def emit_body(w: KernelWriter, op: ir.Operation, inputs: Sequence[str], what: str) -> str:
    """Writes a ``linalg.generic`` body as C statements on the input scalars ``inputs``;
    returns the variable holding the yielded value."""
    block = op.regions[0].blocks[0]
    args = list(block.arguments)
    env: dict[ir.Value, str] = dict(zip(args, inputs, strict=False))
    made: list[str] = []

    def value(v: ir.Value) -> str:
        if v in env:
            return env[v]
        literal = _scalar_constant(v)
        if literal is None:
            read = "its output (init) operand" if v in args else f"the outer value {v}"
            raise CodegenError(f"{op.location}: the generic body reads {read}")
        return literal

    for inner in block.operations:
        inner = inner.operation
        name = inner.name
        if name == linalg.YieldOp.OPERATION_NAME:
            result = value(inner.operands[0])
            if result not in made:  # yields an input or a constant: name it anyway
                var = w.var()
                w.line(f"const float {var} = {result};")
                result = var
            w.annotate(what)
            return result
        if name == arith.ConstantOp.OPERATION_NAME:
            env[inner.results[0]] = value(inner.results[0])
            continue
        ops = [value(v) for v in inner.operands]
        ctype = "float"
        if name in _BINARY:
            expr = f"{ops[0]} {_BINARY[name]} {ops[1]}"
        elif name in _CALLS:
            expr = f"{w.cfile.helper(_CALLS[name])}({ops[0]}, {ops[1]})"
        elif name == "arith.negf":
            expr = f"-{ops[0]}"
        elif name == "arith.cmpf" and ir.IntegerAttr(inner.attributes["predicate"]).value in _CMPF:
            pred = ir.IntegerAttr(inner.attributes["predicate"]).value
            expr, ctype = _CMPF[pred].format(a=ops[0], b=ops[1]), "int"
        elif name == "arith.select":
            expr = f"{ops[0]} ? {ops[1]} : {ops[2]}"
        else:
            raise CodegenError(f"{inner.location}: ccompiler cannot emit {name} in a generic body")
        var = w.var("p" if ctype == "int" else "v")
        w.line(f"const {ctype} {var} = {expr};")
        env[inner.results[0]] = var
        made.append(var)
    raise CodegenError(f"{op.location}: generic body without linalg.yield")  # pragma: no cover


# --- elementwise members ---------------------------------------------------------------


def _maps(op: ir.Operation) -> list[ir.AffineMap]:
    return [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(op.attributes["indexing_maps"])]


def _dims(m: ir.AffineMap) -> list[int]:
    """The dim positions of a projected permutation (``(d0, d1) -> (d1)`` gives [1])."""
    out = []
    for r in m.results:
        if not isinstance(r, ir.AffineDimExpr):
            raise CodegenError(f"indexing map {m} is not a projected permutation")
        out.append(r.position)
    return out


def _n_inputs(op: ir.Operation) -> int:
    return int(op.attributes["operandSegmentSizes"][0])


def is_identity(m: ir.AffineMap, rank: int) -> bool:
    return m.n_dims == rank and _dims(m) == list(range(rank))


def check_elementwise(op: ir.Operation, spec: TensorSpec) -> None:
    """Guards what the loop emitters rely on: parallel, identity output, shape ``spec``."""
    iters = [str(it) for it in ir.ArrayAttr(op.attributes["iterator_types"])]
    if any("parallel" not in it for it in iters):
        raise CodegenError(f"{op.location}: a fused generic must be all-parallel")
    if len(op.results) != 1 or TensorSpec.of(op.results[0].type) != spec:
        raise CodegenError(f"{op.location}: a fused generic must produce {spec.mlir}")
    if not is_identity(_maps(op)[-1], len(spec.shape)):
        raise CodegenError(f"{op.location}: the generic's output map must be the identity")


def flat_ok(members: Sequence[ir.Operation], resolve: Resolver) -> bool:
    """Whether every tensor the members read from outside is read at the output index
    (so a flat loop over elements works): identity maps, or a splat."""
    inside = {r for m in members for r in m.results}
    for m in members:
        maps = _maps(m)
        for i, v in enumerate(list(m.operands)[: _n_inputs(m)]):
            if v in inside or resolve(v).splat is not None:
                continue
            if not is_identity(maps[i], len(maps[-1].results)):
                return False
    return True


def emit_members(
    w: KernelWriter,
    members: Sequence[tuple[ir.Operation, str]],
    dims: Sequence[str],
    known: dict[ir.Value, str],
) -> str:
    """Writes each elementwise member on the scalars of one output element.

    ``dims`` are the C expressions of the output index (the generic's d0, d1, ...);
    ``known`` maps values already in registers (the anchor's result) to variables.
    Other operands are read at the element their indexing map selects: ``(d0, d1) ->
    (d1)`` reads ``bias[j]`` when dims are ``(i, j)``. Returns the last member's variable.
    """
    result = ""
    for op, what in members:
        maps = _maps(op)
        rank = len(maps[-1].results)
        inputs = []
        for i, v in enumerate(list(op.operands)[: _n_inputs(op)]):
            if v in known:
                if not is_identity(maps[i], rank):
                    raise CodegenError(f"{op.location}: a fused value must be read in place")
                inputs.append(known[v])
                continue
            positions = _dims(maps[i])
            role = "bias" if len(positions) < rank else "other" if known else "x"
            operand = w.operand(v, role)
            index = dims if w.flat else [dims[p] for p in positions]
            inputs.append(operand.at(*index))
        result = emit_body(w, op, inputs, what)
        known[op.results[0]] = result
    return result


def emit_elementwise(w: KernelWriter, members: Sequence[tuple[ir.Operation, str]]) -> int:
    """A unit of elementwise generics: one loop over the output, members in registers.
    Returns the extent the workgroups split."""
    spec = TensorSpec.of(members[-1][0].results[0].type)
    for op, _ in members:
        check_elementwise(op, spec)
    out = w.output(spec)
    if w.flat:
        w.chunk(spec.size, "elements (all operands are read at the output's index)")
        with w.loop("e", "end", "begin"):
            v = emit_members(w, members, ["e"], {})
            w.line(f"{out.at('e')} = {v};")
        return spec.size
    rank = len(spec.shape)
    rows = spec.size // spec.shape[-1] if spec.shape[-1] else 0
    w.chunk(rows, "rows (all dims but the last)")
    dims = [f"d{i}" for i in range(rank)]
    with w.loop("row", "end", "begin"):
        parts, stride = [], 1
        for i in reversed(range(rank - 1)):  # row = ((d0 * D1) + d1) * D2 + d2 ...
            div = f"row / {stride}" if stride > 1 else "row"
            parts.append(f"{dims[i]} = {div} % {spec.shape[i]}" if i else f"{dims[i]} = {div}")
            stride *= spec.shape[i]
        if parts:
            w.line("const size_t " + ", ".join(reversed(parts)) + ";")
        with w.loop(dims[-1], spec.shape[-1]):
            v = emit_members(w, members, dims, {})
            w.line(f"{out.at(*dims)} = {v};")
    return rows


def emit_fill(w: KernelWriter, spec: TensorSpec, value: float) -> int:
    out = w.output(spec)
    w.chunk(spec.size, "elements")
    with w.loop("e", "end", "begin"):
        w.line(f"{out.at('e')} = {c_float(value)};")
    return spec.size


# --- anchors: contractions and convolutions --------------------------------------------


_DEFAULT_MAPS = {
    linalg.MatmulOp.OPERATION_NAME: [[0, 2], [2, 1], [0, 1]],
    linalg.BatchMatmulOp.OPERATION_NAME: [[0, 1, 3], [0, 3, 2], [0, 1, 2]],
}


def has_default_maps(op: ir.Operation) -> bool:
    """Whether a (batch_)matmul has its plain operand layout: no transposed or broadcast
    operand given through ``indexing_maps``."""
    expected = _DEFAULT_MAPS.get(op.name)
    if expected is None or "indexing_maps" not in op.attributes:
        return True
    try:
        return [_dims(m) for m in _maps(op)] == expected
    except CodegenError:
        return False


def _contraction_operands(op: ir.Operation) -> list[ir.Value]:
    if not has_default_maps(op):
        raise CodegenError(f"{op.location}: {op.name} with custom indexing_maps is not supported")
    return list(op.operands)


def _shape(v: ir.Value) -> tuple[int, ...]:
    return TensorSpec.of(v.type).shape


def _epilogue(
    w: KernelWriter,
    out: Operand,
    anchor: ir.Operation,
    epilogue: Sequence[tuple[ir.Operation, str]],
    dims: Sequence[str],
    loops: Sequence[tuple[str, int]],
) -> None:
    """Loops over the finished accumulators ``loops`` (while they are in cache), applies
    the epilogue members to each in registers and stores the result."""
    if not epilogue:
        return
    for op, _ in epilogue:
        check_elementwise(op, out.spec)
    acc = out.at(*dims)
    w.comment(f"Epilogue: the fused generics, their dims (d0, ...) = ({', '.join(dims)}).")
    with ExitStack() as stack:
        for var, extent in loops:
            stack.enter_context(w.loop(var, extent))
        v = emit_members(w, epilogue, dims, {anchor.results[0]: acc})
        w.line(f"{acc} = {v};")


def emit_matmul(
    w: KernelWriter, op: ir.Operation, epilogue: Sequence[tuple[ir.Operation, str]]
) -> int:
    """``out[i][j] = init[i][j] + sum_k lhs[i][k] * rhs[k][j]``, rows split."""
    a_v, b_v, init_v = _contraction_operands(op)
    (m, k), (_, n) = _shape(a_v), _shape(b_v)
    lhs, rhs, init = w.operand(a_v, "lhs"), w.operand(b_v, "rhs"), w.operand(init_v, "init")
    out = w.output(TensorSpec.of(op.results[0].type))
    w.chunk(m, "output rows")
    with w.loop("i", "end", "begin"):
        w.comment("i-k-j order: the inner j loop walks rhs and out contiguously (vectorises).")
        with w.loop("j", n):
            w.line(f"{out.at('i', 'j')} = {init.at('i', 'j')};")
        with w.loop("k", k):
            w.line(f"const float a_ik = {lhs.at('i', 'k')};")
            with w.loop("j", n):
                w.line(f"{out.at('i', 'j')} += a_ik * {rhs.at('k', 'j')};")
        _epilogue(w, out, op, epilogue, ["i", "j"], [("j", n)])
    return m


def emit_batch_matmul(
    w: KernelWriter, op: ir.Operation, epilogue: Sequence[tuple[ir.Operation, str]]
) -> int:
    """``out[b][i][j] = init[b][i][j] + sum_k lhs[b][i][k] * rhs[b][k][j]``; the B*M rows
    are split."""
    a_v, b_v, init_v = _contraction_operands(op)
    (batch, m, k), (_, _, n) = _shape(a_v), _shape(b_v)
    lhs, rhs, init = w.operand(a_v, "lhs"), w.operand(b_v, "rhs"), w.operand(init_v, "init")
    out = w.output(TensorSpec.of(op.results[0].type))
    w.chunk(batch * m, "output rows of all batches")
    with w.loop("r", "end", "begin"):
        w.line(f"const size_t b = r / {m}, i = r % {m};")
        with w.loop("j", n):
            w.line(f"{out.at('b', 'i', 'j')} = {init.at('b', 'i', 'j')};")
        with w.loop("k", k):
            w.line(f"const float a_ik = {lhs.at('b', 'i', 'k')};")
            with w.loop("j", n):
                w.line(f"{out.at('b', 'i', 'j')} += a_ik * {rhs.at('b', 'k', 'j')};")
        _epilogue(w, out, op, epilogue, ["b", "i", "j"], [("j", n)])
    return batch * m


def _pair(op: ir.Operation, name: str) -> tuple[int, int]:
    if name not in op.attributes:
        return 1, 1
    values = [int(x) for x in ir.DenseIntElementsAttr(op.attributes[name])]
    if len(values) != 2 or min(values) < 1:
        raise CodegenError(f"{op.location}: {name} must be two positive integers")
    return values[0], values[1]


def _term(var: str, scale: int) -> str:
    return var if scale == 1 else f"{var} * {scale}"


def _window(out_var: str, stride: int, k_var: str, dilation: int) -> str:
    """The input coordinate of output ``out_var`` and kernel tap ``k_var``."""
    return f"{_term(out_var, stride)} + {_term(k_var, dilation)}"


def _conv_facts(
    op: ir.Operation, in_hw: tuple[int, int], k_hw: tuple[int, int], out_hw: tuple[int, int]
) -> tuple[int, int, int, int]:
    (sh, sw), (dh, dw) = _pair(op, "strides"), _pair(op, "dilations")
    for size, k, o, s, d in zip(in_hw, k_hw, out_hw, (sh, sw), (dh, dw), strict=True):
        if o > 0 and (o - 1) * s + (k - 1) * d >= size:
            raise CodegenError(f"{op.location}: the convolution window reads past the input")
    return sh, sw, dh, dw


def emit_conv_nchw(
    w: KernelWriter, op: ir.Operation, epilogue: Sequence[tuple[ir.Operation, str]]
) -> int:
    """``out[n][f][oh][ow] = init + sum_{c,kh,kw} input[n][c][oh*sh + kh*dh][ow*sw + kw*dw]
    * filter[f][c][kh][kw]``; the N*F output planes are split."""
    x_v, f_v, init_v = list(op.operands)
    (_, c, h, wd), (nf, _, kh, kw) = _shape(x_v), _shape(f_v)
    spec = TensorSpec.of(op.results[0].type)
    n, _, oh, ow = spec.shape
    sh, sw, dh, dw = _conv_facts(op, (h, wd), (kh, kw), (oh, ow))
    x, filt, init = w.operand(x_v, "input"), w.operand(f_v, "filter"), w.operand(init_v, "init")
    out = w.output(spec)
    w.chunk(n * nf, "output planes (n, f)")
    o = ("n", "f", "oh", "ow")
    with w.loop("nf", "end", "begin"):
        w.line(f"const size_t n = nf / {nf}, f = nf % {nf};")
        with w.loop("oh", oh), w.loop("ow", ow):
            w.line(f"{out.at(*o)} = {init.at(*o)};")
        w.comment("One filter tap at a time over the whole plane: ow is the inner loop.")
        with w.loop("c", c), w.loop("kh", kh), w.loop("kw", kw):
            w.line(f"const float weight = {filt.at('f', 'c', 'kh', 'kw')};")
            with w.loop("oh", oh), w.loop("ow", ow):
                src = x.at("n", "c", _window("oh", sh, "kh", dh), _window("ow", sw, "kw", dw))
                w.line(f"{out.at(*o)} += {src} * weight;")
        _epilogue(w, out, op, epilogue, o, [("oh", oh), ("ow", ow)])
    return n * nf


def emit_conv_nhwc(
    w: KernelWriter, op: ir.Operation, epilogue: Sequence[tuple[ir.Operation, str]]
) -> int:
    """``out[n][oh][ow][f] = init + sum_{kh,kw,c} input[n][oh*sh + kh*dh][ow*sw + kw*dw][c]
    * filter[kh][kw][c][f]``; the N*OH*OW output pixels are split."""
    x_v, f_v, init_v = list(op.operands)
    (_, h, wd, c), (kh, kw, _, nf) = _shape(x_v), _shape(f_v)
    spec = TensorSpec.of(op.results[0].type)
    n, oh, ow, _ = spec.shape
    sh, sw, dh, dw = _conv_facts(op, (h, wd), (kh, kw), (oh, ow))
    x, filt, init = w.operand(x_v, "input"), w.operand(f_v, "filter"), w.operand(init_v, "init")
    out = w.output(spec)
    w.chunk(n * oh * ow, "output pixels (n, oh, ow)")
    o = ("n", "oh", "ow", "f")
    with w.loop("p", "end", "begin"):
        w.line(f"const size_t n = p / {oh * ow}, oh = p / {ow} % {oh}, ow = p % {ow};")
        with w.loop("f", nf):
            w.line(f"{out.at(*o)} = {init.at(*o)};")
        w.comment("Each input value scales a contiguous filter row: f is the inner loop.")
        with w.loop("kh", kh), w.loop("kw", kw), w.loop("c", c):
            src = x.at("n", _window("oh", sh, "kh", dh), _window("ow", sw, "kw", dw), "c")
            w.line(f"const float in_val = {src};")
            with w.loop("f", nf):
                w.line(f"{out.at(*o)} += in_val * {filt.at('kh', 'kw', 'c', 'f')};")
        _epilogue(w, out, op, epilogue, o, [("f", nf)])
    return n * oh * ow


Anchor = Callable[[KernelWriter, ir.Operation, Sequence[tuple[ir.Operation, str]]], int]
ANCHORS: dict[str, Anchor] = {
    linalg.MatmulOp.OPERATION_NAME: emit_matmul,
    linalg.BatchMatmulOp.OPERATION_NAME: emit_batch_matmul,
    linalg.Conv2DNchwFchwOp.OPERATION_NAME: emit_conv_nchw,
    linalg.Conv2DNhwcHwcfOp.OPERATION_NAME: emit_conv_nhwc,
}
"""The kernel kinds that own a loop nest, by op name; elementwise members fuse after."""
