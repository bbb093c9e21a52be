"""C emitters of the ``ccompiler`` backend: the loop nest of each kernel kind.

The generated C is the template a vendor copies, so it favours plain loops over
cleverness. Each kernel splits its outermost parallel loop into ``workgroup_count``
contiguous chunks. A matmul or convolution is computed in register tiles (`_Tiling`):
TILE_M x TILE_N output elements accumulate in a local array over the whole reduction,
then the composite's elementwise members run on each finished accumulator, in
registers, before the one store. The tile sizes are C macros chosen for the target's
vector registers (see the ``tiles`` helper of `byoc_mlir.codegen.ccompiler_writer`);
outputs smaller than one tile take a plain loop nest instead. ``linalg.generic`` bodies
are translated op by op, and operands are indexed through the generic's indexing maps,
so a bias broadcast along any dimension is read correctly without special cases.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass

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


ROWS_PER_WORKGROUP = 8
"""Matmul rows per workgroup at least (when there are enough): a workgroup's share is
whole tiles of TILE_M rows (<= 8), so more workgroups would sit idle."""

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


Epilogue = Sequence[tuple[ir.Operation, str]]


def _check_epilogue(out: Operand, epilogue: Epilogue) -> None:
    for op, _ in epilogue:
        check_elementwise(op, out.spec)


def _epilogue(
    w: KernelWriter,
    out: Operand,
    anchor: ir.Operation,
    epilogue: Epilogue,
    dims: Sequence[str],
    loops: Sequence[tuple[str, int]],
) -> None:
    """Loops over the finished outputs ``loops`` (while they are in cache), applies the
    epilogue members to each in registers and stores the result."""
    if not epilogue:
        return
    acc = out.at(*dims)
    w.comment(f"Epilogue: the fused generics, their dims (d0, ...) = ({', '.join(dims)}).")
    with ExitStack() as stack:
        for var, extent in loops:
            stack.enter_context(w.loop(var, extent))
        v = emit_members(w, epilogue, dims, {anchor.results[0]: acc})
        w.line(f"{acc} = {v};")


@dataclass(frozen=True)
class _Tiling:
    """A kernel seen as a matmul, for register tiling: ``out[dims(row, col)] =
    init[dims(row, col)] + sum over the reduction loops of a(row) * b(col)``.

    Rows run over ``[lo, hi)`` and columns over ``[0, cols)``; the column is the
    output's contiguous dimension, so the loops over columns vectorise. ``a`` and ``b``
    give the C expression of each operand at a row / column expression.
    """

    row: str
    lo: str
    hi: str
    col: str
    cols: int
    reduction: Sequence[tuple[str, int]]
    a: Callable[[str], str]
    b: Callable[[str], str]
    dims: Callable[[str, str], Sequence[str]]

    @property
    def fits(self) -> str:
        """The C condition that the rows and columns hold at least one tile."""
        rows = self.hi if self.lo == "0" else f"{self.hi} - {self.lo}"
        return f"{rows} >= TILE_M && {self.cols} >= TILE_N"


def _if_tiles_fit(w: KernelWriter, t: _Tiling) -> AbstractContextManager[None]:
    w.cfile.helper("tiles")
    return w.block(f"if ({t.fits})")


def _emit_tiles(
    w: KernelWriter,
    t: _Tiling,
    out: Operand,
    init: Operand,
    anchor: ir.Operation,
    epilogue: Epilogue,
) -> None:
    """The rows and columns of ``t`` in TILE_M x TILE_N register tiles (``t.fits``)."""
    row0, col0 = f"{t.row}0", f"{t.col}0"
    w.comment(f"Tiles of TILE_M {t.row} x TILE_N {t.col} (the last of each may overlap).")
    with w.loop(row0, t.hi, t.lo, step="TILE_M"):
        w.line(f"const size_t {t.row} = tile_start({row0}, TILE_M, {t.hi});")
        with w.loop(col0, t.cols, step="TILE_N"):
            w.line(f"const size_t {t.col} = tile_start({col0}, TILE_N, {t.cols});")
            r, c = f"{t.row} + ti", f"{t.col} + tj"
            dims = t.dims(r, c)
            w.line(f"float acc[TILE_M][TILE_N];  /* acc[ti][tj] is {out.at(*dims)} */")
            with w.loop("ti", "TILE_M"), w.loop("tj", "TILE_N"):
                w.line(f"acc[ti][tj] = {init.at(*dims)};")
            w.comment(
                "The reduction. Each step reads one value of each of the TILE_M rows, and "
                "each value multiplies TILE_N consecutive values of the other operand (the "
                "vectorised tj loop). Reading the row values first, into a[], keeps gcc's "
                "loop interchange from moving the ti loop outside the reduction."
            )
            with ExitStack() as stack:
                for var, extent in t.reduction:
                    stack.enter_context(w.loop(var, extent))
                w.line("float a[TILE_M];")
                with w.loop("ti", "TILE_M"):
                    w.line(f"a[ti] = {t.a(r)};")
                with w.loop("ti", "TILE_M"), w.loop("tj", "TILE_N"):
                    w.line(f"acc[ti][tj] += a[ti] * {t.b(c)};")
            if epilogue:
                w.comment(
                    f"Epilogue: the fused generics on each accumulator, their dims (d0, ...) "
                    f"= ({', '.join(dims)}), then the store."
                )
            else:
                w.comment("The store.")
            with w.loop("ti", "TILE_M"), w.loop("tj", "TILE_N"):
                v = "acc[ti][tj]"
                if epilogue:
                    v = emit_members(w, epilogue, dims, {anchor.results[0]: v})
                w.line(f"{out.at(*dims)} = {v};")


def emit_matmul(w: KernelWriter, op: ir.Operation, epilogue: Epilogue) -> int:
    """``out[i][j] = init[i][j] + sum_k lhs[i][k] * rhs[k][j]``, rows split; for
    batch_matmul, ``out[b][i][j]`` with ``lhs[b]`` and ``rhs[b]``, the rows of all
    batches split."""
    a_v, b_v, init_v = _contraction_operands(op)
    batched = op.name == linalg.BatchMatmulOp.OPERATION_NAME
    *_, m, k = _shape(a_v)
    n = _shape(b_v)[-1]
    batch = _shape(a_v)[0] if batched else 1
    lhs, rhs, init = w.operand(a_v, "lhs"), w.operand(b_v, "rhs"), w.operand(init_v, "init")
    out = w.output(TensorSpec.of(op.results[0].type))
    _check_epilogue(out, epilogue)
    lead = ["b"] if batched else []

    def rows(lo: str, hi: str) -> None:
        t = _Tiling(
            row="i",
            lo=lo,
            hi=hi,
            col="j",
            cols=n,
            reduction=[("k", k)],
            a=lambda r: lhs.at(*lead, r, "k"),
            b=lambda c: rhs.at(*lead, "k", c),
            dims=lambda r, c: [*lead, r, c],
        )
        with _if_tiles_fit(w, t):
            _emit_tiles(w, t, out, init, op, epilogue)
        with w.otherwise():
            w.comment("Smaller than a tile: a row at a time, i-k-j (the j loops vectorise).")
            o = [*lead, "i", "j"]
            with w.loop("i", hi, lo):
                with w.loop("j", n):
                    w.line(f"{out.at(*o)} = {init.at(*o)};")
                with w.loop("k", k):
                    w.line(f"const float a_ik = {lhs.at(*lead, 'i', 'k')};")
                    with w.loop("j", n):
                        w.line(f"{out.at(*o)} += a_ik * {rhs.at(*lead, 'k', 'j')};")
                _epilogue(w, out, op, epilogue, o, [("j", n)])

    w.cfile.helper("tiles")
    if not batched:
        w.chunk(m, "output rows, in whole tiles of TILE_M rows", tile="TILE_M")
        rows("begin", "end")
    else:
        what = f"output rows of all batches (b * {m} + i), in whole tiles of TILE_M rows"
        w.chunk(batch * m, what, tile="TILE_M")
        w.comment("The share may span batches: rows [i_begin, i_end) of each batch b.")
        with w.loop("b", f"(end + {m - 1}) / {m}", f"begin / {m}"):
            w.line(f"const size_t i_begin = b * {m} > begin ? 0 : begin - b * {m};")
            w.line(f"const size_t i_end = (b + 1) * {m} < end ? {m} : end - b * {m};")
            rows("i_begin", "i_end")
    return -(-batch * m // ROWS_PER_WORKGROUP)


def _pair(op: ir.Operation, name: str) -> tuple[int, int]:
    if name not in op.attributes:
        return 1, 1
    values = [int(x) for x in ir.DenseIntElementsAttr(op.attributes[name])]
    if len(values) != 2 or min(values) < 1:
        raise CodegenError(f"{op.location}: {name} must be two positive integers")
    return values[0], values[1]


def _term(var: str, scale: int) -> str:
    if scale == 1:
        return var
    return f"({var}) * {scale}" if " " in var else f"{var} * {scale}"


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


def emit_conv_nchw(w: KernelWriter, op: ir.Operation, epilogue: Epilogue) -> int:
    """``out[n][f][oh][ow] = init + sum_{kh,kw,c} input[n][c][oh*sh + kh*dh][ow*sw + kw*dw]
    * filter[f][c][kh][kw]``; the N*OH output rows are split. Tiles: filters x ow."""
    x_v, f_v, init_v = list(op.operands)
    (_, c, h, wd), (nf, _, kh, kw) = _shape(x_v), _shape(f_v)
    spec = TensorSpec.of(op.results[0].type)
    n, _, oh, ow = spec.shape
    sh, sw, dh, dw = _conv_facts(op, (h, wd), (kh, kw), (oh, ow))
    x, filt, init = w.operand(x_v, "input"), w.operand(f_v, "filter"), w.operand(init_v, "init")
    out = w.output(spec)
    _check_epilogue(out, epilogue)
    t = _Tiling(
        row="f",
        lo="0",
        hi=str(nf),
        col="ow",
        cols=ow,
        reduction=[("kh", kh), ("kw", kw), ("c", c)],  # taps outside: faster than c outside
        a=lambda r: filt.at(r, "c", "kh", "kw"),
        b=lambda col: x.at("n", "c", _window("oh", sh, "kh", dh), _window(col, sw, "kw", dw)),
        dims=lambda r, col: ["n", r, "oh", col],
    )
    w.chunk(n * oh, "output rows (n, oh)")
    split = f"const size_t n = p / {oh}, oh = p % {oh};"
    with _if_tiles_fit(w, t):
        with w.loop("p", "end", "begin"):
            w.line(split)
            _emit_tiles(w, t, out, init, op, epilogue)
    with w.otherwise():
        w.comment("Smaller than a tile: one filter tap at a time over the row (ow vectorises).")
        o = ("n", "f", "oh", "ow")
        with w.loop("p", "end", "begin"):
            w.line(split)
            with w.loop("f", nf):
                with w.loop("ow", ow):
                    w.line(f"{out.at(*o)} = {init.at(*o)};")
                with w.loop("kh", kh), w.loop("kw", kw), w.loop("c", c):
                    w.line(f"const float weight = {filt.at('f', 'c', 'kh', 'kw')};")
                    with w.loop("ow", ow):
                        src = x.at(
                            "n", "c", _window("oh", sh, "kh", dh), _window("ow", sw, "kw", dw)
                        )
                        w.line(f"{out.at(*o)} += {src} * weight;")
                _epilogue(w, out, op, epilogue, o, [("ow", ow)])
    return n * oh


def emit_conv_nhwc(w: KernelWriter, op: ir.Operation, epilogue: Epilogue) -> int:
    """``out[n][oh][ow][f] = init + sum_{kh,kw,c} input[n][oh*sh + kh*dh][ow*sw + kw*dw][c]
    * filter[kh][kw][c][f]``; the N*OH output rows are split. Tiles: ow x filters."""
    x_v, f_v, init_v = list(op.operands)
    (_, h, wd, c), (kh, kw, _, nf) = _shape(x_v), _shape(f_v)
    spec = TensorSpec.of(op.results[0].type)
    n, oh, ow, _ = spec.shape
    sh, sw, dh, dw = _conv_facts(op, (h, wd), (kh, kw), (oh, ow))
    x, filt, init = w.operand(x_v, "input"), w.operand(f_v, "filter"), w.operand(init_v, "init")
    out = w.output(spec)
    _check_epilogue(out, epilogue)
    t = _Tiling(
        row="ow",
        lo="0",
        hi=str(ow),
        col="f",
        cols=nf,
        reduction=[("kh", kh), ("kw", kw), ("c", c)],
        a=lambda r: x.at("n", _window("oh", sh, "kh", dh), _window(r, sw, "kw", dw), "c"),
        b=lambda col: filt.at("kh", "kw", "c", col),
        dims=lambda r, col: ["n", "oh", r, col],
    )
    w.chunk(n * oh, "output rows (n, oh)")
    split = f"const size_t n = p / {oh}, oh = p % {oh};"
    with _if_tiles_fit(w, t):
        with w.loop("p", "end", "begin"):
            w.line(split)
            _emit_tiles(w, t, out, init, op, epilogue)
    with w.otherwise():
        w.comment("Smaller than a tile: each input value scales a filter row (f vectorises).")
        o = ("n", "oh", "ow", "f")
        with w.loop("p", "end", "begin"):
            w.line(split)
            with w.loop("ow", ow):
                with w.loop("f", nf):
                    w.line(f"{out.at(*o)} = {init.at(*o)};")
                with w.loop("kh", kh), w.loop("kw", kw), w.loop("c", c):
                    src = x.at("n", _window("oh", sh, "kh", dh), _window("ow", sw, "kw", dw), "c")
                    w.line(f"const float in_val = {src};")
                    with w.loop("f", nf):
                        w.line(f"{out.at(*o)} += in_val * {filt.at('kh', 'kw', 'c', 'f')};")
                _epilogue(w, out, op, epilogue, o, [("f", nf)])
    return n * oh


Anchor = Callable[[KernelWriter, ir.Operation, Epilogue], int]
ANCHORS: dict[str, Anchor] = {
    linalg.MatmulOp.OPERATION_NAME: emit_matmul,
    linalg.BatchMatmulOp.OPERATION_NAME: emit_matmul,
    linalg.Conv2DNchwFchwOp.OPERATION_NAME: emit_conv_nchw,
    linalg.Conv2DNhwcHwcfOp.OPERATION_NAME: emit_conv_nhwc,
}
"""The kernel kinds that own a loop nest, by op name; elementwise members fuse after.
Each returns the extent its workgroups split (the kernel declares at most that many)."""
