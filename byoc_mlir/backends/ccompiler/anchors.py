"""C emitters of the ``ccompiler`` backend's anchors: matmuls and convolutions.

A matmul or convolution is computed in register tiles (`_Tiling`): TILE_M x TILE_N
output elements accumulate in a local array over the whole reduction, then the
composite's elementwise members (its epilogue) run on each finished accumulator, in
registers, before the one store. The tile sizes are C macros chosen for the target's
vector registers (see the ``tiles`` helper of `byoc_mlir.backends.ccompiler.writer`);
outputs smaller than one tile take a plain loop nest instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass

from iree.compiler import ir

from byoc_mlir.backends.ccompiler.emit import (
    check_elementwise,
    emit_members,
    indexing_maps,
    map_dims,
)
from byoc_mlir.backends.ccompiler.writer import (
    CDim,
    CodegenError,
    KernelWriter,
    Operand,
    c_product,
)
from byoc_mlir.codegen.hook import TensorSpec
from byoc_mlir.codegen.symbolic import MATMUL_MAPS
from byoc_mlir.linalg_ops import linalg

ROWS_PER_WORKGROUP = 8
"""Matmul rows per workgroup at least (when there are enough): a workgroup's share is
whole tiles of TILE_M rows (<= 8), so more workgroups would sit idle."""

_DEFAULT_MAPS = {name: layouts["plain"] for name, layouts in MATMUL_MAPS.items()}


def has_default_maps(op: ir.Operation) -> bool:
    """Whether a (batch_)matmul has its plain operand layout: no transposed or broadcast
    operand given through ``indexing_maps``."""
    expected = _DEFAULT_MAPS.get(op.name)
    if expected is None or "indexing_maps" not in op.attributes:
        return True
    try:
        return [map_dims(m) for m in indexing_maps(op)] == expected
    except CodegenError:
        return False


def _contraction_operands(op: ir.Operation) -> list[ir.Value]:
    if not has_default_maps(op):
        raise CodegenError(f"{op.location}: {op.name} with custom indexing_maps is not supported")
    return list(op.operands)


def _shape(v: ir.Value) -> tuple[int, ...]:
    return TensorSpec.of(v.type).static_shape


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
    loops: Sequence[tuple[str, CDim]],
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
    cols: CDim
    reduction: Sequence[tuple[str, CDim]]
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
    *_, m, k = w.dims(a_v)
    n = w.dims(b_v)[-1]
    batch = w.dims(a_v)[0] if batched else 1
    lhs, rhs, init = w.operand(a_v, "lhs"), w.operand(b_v, "rhs"), w.operand(init_v, "init")
    out = w.output(TensorSpec.of(op.results[0].type), shape=w.dims(op.results[0]))
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
        w.chunk(c_product([batch, m]), what, tile="TILE_M")
        w.comment("The share may span batches: rows [i_begin, i_end) of each batch b.")
        last = m - 1 if isinstance(m, int) else f"{m} - 1"
        with w.loop("b", f"(end + {last}) / {m}", f"begin / {m}"):
            w.line(f"const size_t i_begin = b * {m} > begin ? 0 : begin - b * {m};")
            w.line(f"const size_t i_end = (b + 1) * {m} < end ? {m} : end - b * {m};")
            rows("i_begin", "i_end")
    total = c_product([batch, m])
    return -(-total // ROWS_PER_WORKGROUP) if isinstance(total, int) else 0


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
    n, _, oh, ow = spec.static_shape
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
    n, oh, ow, _ = spec.static_shape
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
