"""Building blocks of the ``ccompiler`` backend's C: the file, one kernel, its operands.

`CFile` collects the helpers used, the constant tables and the kernels into one
freestanding C99 file (``<stddef.h>`` only, no libc calls, no allocation, no mutable
static state: IREE links it into embedded ELF executables). `KernelWriter` builds one
kernel in the toolkit's calling convention: its parameters, a local C array view of
each tensor at its static shape (``lhs[i][k]`` rather than index arithmetic, so the
code reads like the math), and the loop nest, which `byoc_mlir.backends.ccompiler.emit`
writes. Every pointer is ``restrict``: a result never aliases an argument (the hook's
contract), and telling the C compiler so lets it vectorise without runtime checks.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

import numpy as np
from iree.compiler import ir

from byoc_mlir.codegen.hook import TensorSpec, ValueRef


class CodegenError(Exception):
    """The region holds something ccompiler cannot emit; the region falls back to the host."""


@dataclass(frozen=True)
class Source:
    """Where a tensor that a kernel reads comes from: exactly one of the three."""

    spec: TensorSpec
    ref: ValueRef | None = None
    """A kernel parameter: a region argument or an earlier kernel's result."""
    constant: str | None = None
    """A ``static const float`` table of the C file."""
    splat: float | None = None
    """Every element has this value (a folded ``linalg.fill`` or a splat constant)."""


Resolver = Callable[[ir.Value], Source]
CDim = int | str
"""A dimension in the C: a static size, or a dynamic one as a C expression of the
kernel's size parameters (``D0``, ``(4 * D0 * D2)``)."""


def c_product(dims: Sequence[CDim]) -> CDim:
    """The product of ``dims``: an int when all are static, else a C expression."""
    static = 1
    terms = []
    for d in dims:
        if isinstance(d, int):
            static *= d
        else:
            terms.append(d)
    if not terms:
        return static
    if static != 1:
        terms.insert(0, str(static))
    return terms[0] if len(terms) == 1 else "(" + " * ".join(terms) + ")"


C_TYPES = {"f32": "float", "i8": "signed char"}
"""The C element type of each tensor element type a kernel may read or write (an ``i8``
is signless: the quantized kernels read it as signed or unsigned, as its quantization
says)."""

_HELPERS = {
    "tiles": """\
/* Register tiles. The matmul and convolution kernels compute their output in tiles of
 * TILE_M rows x TILE_N columns, held in a local array `acc` for the whole reduction:
 * each scalar read from the row operand feeds TILE_N multiply-adds, each vector read
 * from the column operand TILE_M. The compiler vectorises the loops over the TILE_N
 * columns and keeps acc in registers, so TILE_M x TILE_N / 8 vectors must fit: 24 of
 * the 32 AVX-512 registers, 12 of the 16 of AVX2 (gcc uses 8-float vectors for both).
 * Keep TILE_N >= 24: gcc fully unrolls a 16-column loop before vectorising it, then
 * leaves acc in scalars. Override with -DTILE_M=.. -DTILE_N=.. (any sizes >= 1 work). */
#if !defined(TILE_M) || !defined(TILE_N)
#if defined(__AVX512F__)
#define TILE_M 6
#define TILE_N 32
#else
#define TILE_M 4
#define TILE_N 24
#endif
#endif

/* Where the tile of `size` items meant to start at i0 starts, for tiles that must end
 * by `end`: a last tile that would cross end moves back to end exactly there. It then
 * overlaps the tile before it, and computes and stores the shared items again (the same
 * values, in the same workgroup). */
static inline size_t tile_start(size_t i0, size_t size, size_t end) {
  return i0 + size <= end ? i0 : end - size;
}""",
    "chunk": """\
/* Workgroup `id` of `count` takes the contiguous range [*begin, *end) of [0, total):
 * the first total % count workgroups take one item more than the others. */
static inline void chunk(size_t total, size_t id, size_t count, size_t* begin, size_t* end) {
  const size_t base = total / count, extra = total % count;
  *begin = id * base + (id < extra ? id : extra);
  *end = *begin + base + (id < extra ? 1 : 0);
}""",
    "chunk_tiles": """\
/* chunk() in whole tiles of `tile` items: only the share that ends at total may end
 * with a partial tile. */
static inline void chunk_tiles(size_t total, size_t tile, size_t id, size_t count,
                               size_t* begin, size_t* end) {
  chunk((total + tile - 1) / tile, id, count, begin, end);
  *begin = *begin * tile < total ? *begin * tile : total;
  *end = *end * tile < total ? *end * tile : total;
}""",
    "max_f32": """\
/* arith.maximumf: NaN if either operand is NaN. */
static inline float max_f32(float a, float b) { return (a != a || a > b) ? a : b; }""",
    "min_f32": """\
/* arith.minimumf: NaN if either operand is NaN. */
static inline float min_f32(float a, float b) { return (a != a || a < b) ? a : b; }""",
    "maxnum_f32": """\
/* arith.maxnumf: the other operand if one is NaN. */
static inline float maxnum_f32(float a, float b) { return (b != b || a > b) ? a : b; }""",
    "minnum_f32": """\
/* arith.minnumf: the other operand if one is NaN. */
static inline float minnum_f32(float a, float b) { return (b != b || a < b) ? a : b; }""",
}


def c_float(x: float) -> str:
    """A C float literal that reads back as exactly the f32 value of ``x``."""
    f = np.float32(x)
    if np.isnan(f):
        return '__builtin_nanf("")'
    if np.isinf(f):
        return "__builtin_inff()" if f > 0 else "(-__builtin_inff())"
    text = str(f)  # numpy prints the shortest decimal that round-trips as f32
    if "." not in text and "e" not in text:
        text += ".0"
    return text + "f"


class CFile:
    """One C source file: header, the helpers used, constant tables, kernels."""

    def __init__(self, region_name: str):
        self.region_name = region_name
        self._helpers: set[str] = set()
        self._defined: dict[str, str] = {}  # helpers written by the emitters, in order
        self._constants: list[str] = []
        self._kernels: list[str] = []

    def helper(self, name: str) -> str:
        self._helpers.add(name)
        return name

    def define(self, name: str, text: str) -> str:
        """Adds helper ``name`` (its C text) once, after those defined before it."""
        self._defined.setdefault(name, text)
        return name

    def constant(self, array: np.ndarray) -> str:
        """Adds a ``static const float`` table (flat, row-major; ``signed char`` for int8
        arrays); returns its name."""
        name = f"cst{len(self._constants)}"
        if array.dtype == np.int8:
            ctype, flat = "signed char", array.reshape(-1)
            items = [str(int(v)) for v in flat]
        else:
            ctype, flat = "float", np.asarray(array, dtype=np.float32).reshape(-1)
            items = [c_float(float(v)) for v in flat]
        per_row = 16 if ctype != "float" else 8
        rows = [", ".join(items[i : i + per_row]) for i in range(0, len(items), per_row)]
        shape = "x".join(str(d) for d in array.shape) or "scalar"
        body = ",\n".join(f"    {r}" for r in rows)
        self._constants.append(
            f"/* {shape}, row-major */\nstatic const {ctype} {name}[{flat.size}] = {{\n{body}\n}};"
        )
        return name

    def add_kernel(self, text: str) -> None:
        self._kernels.append(text)

    def render(self) -> str:
        head = f"""\
/* Generated by byoc_mlir's ccompiler backend for region {self.region_name}.
 *
 * One function per kernel; IREE runs them in order, one flow.dispatch each:
 *   void kernel(const float* restrict arg0, size_t arg0_offset, ...,   inputs
 *               float* restrict res0, size_t res0_offset,               the result
 *               size_t D0, ...,                dynamic sizes (if any; see below)
 *               size_t workgroup_id, size_t workgroup_count);
 * Offsets count elements; buffers are dense and row-major, and the result never
 * aliases an input (hence restrict). A call computes chunk workgroup_id of
 * workgroup_count of the kernel's outermost parallel loop, so calls with different ids
 * may run in parallel. A dynamic dimension is a size parameter D<k>: the size of
 * dimension k of the region's inputs, counted over all of them in order.
 * Freestanding C: no libc, no allocation, no mutable static state. */
#include <stddef.h>
"""
        parts = [head]
        parts += [text for name, text in _HELPERS.items() if name in self._helpers]
        parts += list(self._defined.values())
        parts += self._constants + self._kernels
        return "\n\n".join(parts) + "\n"


@dataclass(frozen=True)
class Operand:
    """A tensor as a kernel reads it: a local C view (``name[i][j]``, or ``name[e]`` when
    flat), or a literal when every element has one value."""

    name: str
    spec: TensorSpec
    flat: bool
    literal: str | None = None

    def at(self, *index: str) -> str:
        if self.literal is not None:
            return self.literal
        if self.flat:
            (e,) = index
            return f"{self.name}[{e}]"
        if not index:
            return f"{self.name}[0]"
        return self.name + "".join(f"[{i}]" for i in index)


def _view_decl(
    name: str,
    spec: TensorSpec,
    base: str,
    flat: bool,
    const: bool,
    ctype: str = "float",
    shape: Sequence[CDim] | None = None,
) -> str:
    """``const float (*restrict name)[D1][D2] = (const float (*)[D1][D2])(base);`` and
    friends (``shape``: the C dims, when dynamic: a pointer to a variably sized array)."""
    qual = f"const {ctype}" if const else ctype
    shape = spec.shape if shape is None else shape  # type: ignore[assignment]
    assert shape is not None
    dims = "x".join(str(d) for d in shape) or "scalar"
    if flat or len(shape) <= 1:
        return f"{qual}* restrict {name} = {base};  /* {dims} */"
    tail = "".join(f"[{d}]" for d in shape[1:])
    return f"{qual} (*restrict {name}){tail} = ({qual} (*){tail})({base});  /* {dims} */"


class KernelWriter:
    """Builds one kernel: its parameters, local array views and loop nest.

    Args:
        cfile: the file the kernel goes to (helpers are registered there).
        symbol: the C symbol.
        resolve: where each tensor the kernel reads comes from.
        flat: view tensors as flat arrays (``x[e]``) rather than by their shape.
        dims_of: each tensor's C dims (dynamic ones as expressions of ``sizes``); None:
            all static.
        sizes: the dynamic input sizes the kernel takes, ``size_t D<k>`` parameters
            (``D[k]`` of `byoc_mlir.codegen.symbolic`).
    """

    def __init__(
        self,
        cfile: CFile,
        symbol: str,
        resolve: Resolver,
        flat: bool = False,
        dims_of: Callable[[ir.Value], tuple[CDim, ...]] | None = None,
        sizes: Sequence[int] = (),
    ):
        self.cfile = cfile
        self.symbol = symbol
        self.resolve = resolve
        self.flat = flat
        self.dims_of = dims_of
        self.sizes = list(sizes)
        self.params: list[ValueRef] = []
        self.param_types: list[str] = []  # each parameter's C element type
        self.result_type = "float"
        self._decls: list[str] = []
        self._operands: dict[ir.Value, Operand] = {}
        self._names: set[str] = set()
        self._lines: list[str] = []
        self._depth = 1
        self._vars = 0

    # --- names and operands ----------------------------------------------------------

    def _name(self, role: str) -> str:
        name, n = role, 1
        while name in self._names:
            name, n = f"{role}{n}", n + 1
        self._names.add(name)
        return name

    def dims(self, value: ir.Value) -> tuple[CDim, ...]:
        """``value``'s dims in the C (dynamic ones as expressions of the sizes)."""
        if self.dims_of is not None:
            return self.dims_of(value)
        return TensorSpec.of(value.type).static_shape

    def var(self, prefix: str = "v") -> str:
        name = f"{prefix}{self._vars}"
        self._vars += 1
        return name

    def operand(
        self, value: ir.Value, role: str, dtypes: Sequence[str] = ("f32",), *, flat: bool = False
    ) -> Operand:
        """The view of a tensor the kernel reads (element types ``dtypes``; ``flat``: one
        flat array whatever the writer's mode); a parameter the first time it is seen."""
        known = self._operands.get(value)
        if known is not None:
            return known
        src = self.resolve(value)
        if src.spec.dtype not in dtypes:
            raise CodegenError(
                f"this kernel reads {'/'.join(dtypes)} tensors, got a {src.spec.mlir} operand"
            )
        ctype = C_TYPES[src.spec.dtype]
        flat = flat or self.flat
        shape = None if src.spec.is_static else self.dims(value)
        if src.splat is not None:
            operand = Operand("", src.spec, flat, literal=c_float(src.splat))
        elif src.constant is not None:
            name = self._name(role)
            self._decls.append(_view_decl(name, src.spec, src.constant, flat, True, ctype))
            operand = Operand(name, src.spec, flat)
        elif src.ref is not None:
            p = len(self.params)
            self.params.append(src.ref)
            self.param_types.append(ctype)
            name = self._name(role)
            base = f"arg{p} + arg{p}_offset"
            self._decls.append(_view_decl(name, src.spec, base, flat, True, ctype, shape))
            operand = Operand(name, src.spec, flat)
        else:  # pragma: no cover - Source is built with one field set
            raise CodegenError(f"no source for {value}")
        self._operands[value] = operand
        return operand

    def output(
        self,
        spec: TensorSpec,
        dtypes: Sequence[str] = ("f32",),
        shape: Sequence[CDim] | None = None,
    ) -> Operand:
        """The result's view (``shape``: its C dims, needed when dynamic)."""
        if spec.dtype not in dtypes:
            raise CodegenError(
                f"this kernel writes {'/'.join(dtypes)} tensors, got a {spec.mlir} result"
            )
        self.result_type = C_TYPES[spec.dtype]
        name = self._name("out")
        base = "res0 + res0_offset"
        decl = _view_decl(name, spec, base, self.flat, False, self.result_type, shape)
        self._decls.append(decl)
        return Operand(name, spec, self.flat)

    def table(self, array: np.ndarray, role: str) -> Operand:
        """A constant table of the file (float or int8), viewed at its shape."""
        spec = TensorSpec(tuple(array.shape), "i8" if array.dtype == np.int8 else "f32")
        name = self._name(role)
        ctype = C_TYPES[spec.dtype]
        table = self.cfile.constant(array)
        self._decls.append(_view_decl(name, spec, table, False, True, ctype))
        return Operand(name, spec, False)

    # --- statements ------------------------------------------------------------------

    def line(self, text: str) -> None:
        self._lines.append("  " * self._depth + text)

    def comment(self, text: str) -> None:
        """A ``/* ... */`` comment, wrapped to 88 columns."""
        width = max(40, 88 - 2 * self._depth - 3)
        lines = textwrap.wrap(text, width) or [""]
        if len(lines) == 1:
            self.line(f"/* {text} */")
            return
        self.line(f"/* {lines[0]}")
        for more in lines[1:-1]:
            self.line(f" * {more}")
        self.line(f" * {lines[-1]} */")

    def annotate(self, text: str) -> None:
        """Appends a comment to the last line written."""
        self._lines[-1] += f"  /* {text} */"

    @contextmanager
    def block(self, header: str) -> Iterator[None]:
        self.line(header + " {")
        self._depth += 1
        yield
        self._depth -= 1
        self.line("}")

    @contextmanager
    def otherwise(self) -> Iterator[None]:
        """The ``else`` of the ``if`` block just closed."""
        assert self._lines[-1].strip() == "}", "otherwise() must follow a block"
        self._lines[-1] += " else {"
        self._depth += 1
        yield
        self._depth -= 1
        self.line("}")

    def loop(
        self, var: str, end: int | str, begin: int | str = 0, step: int | str = 1
    ) -> AbstractContextManager[None]:
        inc = f"++{var}" if step == 1 else f"{var} += {step}"
        return self.block(f"for (size_t {var} = {begin}; {var} < {end}; {inc})")

    def chunk(self, total: CDim, what: str, tile: str | None = None) -> None:
        """Declares ``begin``/``end``: this workgroup's part of ``total`` items, in whole
        tiles of ``tile`` items (a C expression) if given."""
        self.cfile.helper("chunk")
        self.comment(f"This workgroup's contiguous share of the {total} {what}.")
        self.line("size_t begin, end;")
        if tile is None:
            self.line(f"chunk({total}, workgroup_id, workgroup_count, &begin, &end);")
        else:
            self.cfile.helper("chunk_tiles")
            self.line(f"chunk_tiles({total}, {tile}, workgroup_id, workgroup_count, &begin, &end);")

    def render(self, doc: Sequence[str]) -> str:
        params = [
            f"const {t}* restrict arg{p}, size_t arg{p}_offset"
            for p, t in enumerate(self.param_types)
        ]
        params += [f"{self.result_type}* restrict res0, size_t res0_offset"]
        params += [f"size_t D{k}" for k in self.sizes]
        params += ["size_t workgroup_id, size_t workgroup_count"]
        indent = " " * (len(self.symbol) + 6)
        signature = f"void {self.symbol}(" + f",\n{indent}".join(params) + ") {"
        comment = "/* " + "\n * ".join(doc) + " */"
        body = ["  " + d for d in self._decls] + self._lines
        return "\n".join([comment, signature, *body, "}"])
