"""The region program: what one dnnl region lowers to.

A `Program` holds the oneDNN values of a region (inputs, constants in the weights blob,
results of primitives) and its steps, one call to a ``dnnl_support.h`` helper each, in
program order; epilogues fold into a step as post-ops until the C is written
(`Program.source`). The op lowerings that fill it live in ``lower_*.py`` and are
dispatched by `byoc_mlir.backends.dnnl.lowering`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from iree.compiler import ir
from iree.compiler.dialects import tensor

from byoc_mlir.backends.dnnl.runtime import DnnlError
from byoc_mlir.codegen import symbolic
from byoc_mlir.codegen.hook import RegionView
from byoc_mlir.codegen.recognisers import QuantParams, constant_value
from byoc_mlir.codegen.symbolic import (  # noqa: F401 - re-exported
    MATMUL_MAPS,
    Dim,
    Shape,
    Sym,
    map_results,
    matmul_layout,
)
from byoc_mlir.linalg_ops import linalg

FILL = linalg.FillOp.OPERATION_NAME
PAD = tensor.PadOp.OPERATION_NAME
NCHW = linalg.Conv2DNchwFchwOp.OPERATION_NAME
NHWC = linalg.Conv2DNhwcHwcfOp.OPERATION_NAME
DEPTHWISE = linalg.DepthwiseConv2DNchwChwOp.OPERATION_NAME
MAXPOOL = linalg.PoolingNchwMaxOp.OPERATION_NAME
SUMPOOL = linalg.PoolingNchwSumOp.OPERATION_NAME
MATMUL = linalg.MatmulOp.OPERATION_NAME
BATCH_MATMUL = linalg.BatchMatmulOp.OPERATION_NAME
COLLAPSE = tensor.CollapseShapeOp.OPERATION_NAME
TRANSPOSE = linalg.TransposeOp.OPERATION_NAME
CONCAT = tensor.ConcatOp.OPERATION_NAME
EXPAND = tensor.ExpandShapeOp.OPERATION_NAME
PRECISIONS = {"f32": "dnnl_fpmath_mode_strict", "bf16": "dnnl_fpmath_mode_bf16"}
"""The ``precision`` backend option: oneDNN's floating-point math mode for every primitive."""

LAYOUT_TAGS = {"any": "dnnl_format_tag_any", "nhwc": "dnnl_nhwc", "blocked": "dnnl_nChw16c"}
"""The ``layout`` backend option: activation formats inside a region."""
NHWC_PERM = (0, 3, 1, 2)  # dnnl's logical (N, C, H, W) from linalg's NHWC dims
LOWEST = -3.0e38  # a max-pool pad value at or below this is "minus infinity"

# --- the region program ---


Post = tuple[str, float, float, int]  # (kind, alpha, beta, summed value id)
DNNL_TYPES = {"f32": "dnnl_f32", "u8": "dnnl_u8", "i8": "dnnl_s8", "s8": "dnnl_s8"}
"""oneDNN's type of a value: f32, or u8/s8 as its (de)quantize says (``i8`` is signless)."""


def c_q(params: QuantParams) -> str:
    """A ``bd_q`` initializer: scale and zero point."""
    return f"{{{c_float(params.scale)}, {params.zero_point}}}"


@dataclass
class Quant:
    """An int8 convolution or matmul: its source's quantization, its weights' scales
    (a constant value), and the destination's (None: an f32 result)."""

    src: QuantParams
    wscales: int
    dst: QuantParams | None = None

    def render(self) -> str:
        dst = self.dst
        if dst is None:
            return f"QUANT({c_q(self.src)}, {self.wscales}, dnnl_f32, {{1.0f, 0}})"
        dt = DNNL_TYPES[int_type(dst)]
        return f"QUANT({c_q(self.src)}, {self.wscales}, {dt}, {c_q(dst)})"


def int_type(params: QuantParams) -> str:
    """``u8`` or ``s8``: oneDNN's name of a quantized side's type."""
    return "s8" if params.signed else "u8"


@dataclass
class Step:
    """One helper call; post-ops and bias may still be added until the C is written."""

    fn: str
    dst: int
    args: list[str]
    posts: list[Post] | None = None  # None: the helper takes no post-ops
    bias: int = -1
    fusable: bool = True
    index: int = 0
    position: int = 0  # the op (program order) that created it
    quant: Quant | None = None  # an int8 convolution or matmul

    def render(self) -> str:
        args = [str(self.dst), *self.args]
        if self.fn in ("bd_conv", "bd_matmul"):
            args.insert(3 if self.fn == "bd_conv" else 4, str(self.bias))
        fn = self.fn
        if self.quant is not None:
            fn = self.fn.replace("bd_", "bd_q", 1)
            args.append(self.quant.render())
        posts = [p for p in self.posts or [] if not identity_post(p)]
        if self.posts is not None and posts:
            rendered = ", ".join(
                f"{{{k}, {c_float(a)}, {c_float(b)}, {v}}}" for k, a, b, v in posts
            )
            args += [f"POSTS({rendered})", str(len(posts))]
        elif self.posts is not None:
            args += ["NULL", "0"]
        return f"    {fn}(R, {', '.join(args)});"


@dataclass
class Value:
    dims: Shape  # oneDNN's logical dims (a `Sym` for a dynamic one)
    perm: tuple[int, ...]  # logical dim i is the tensor's dim perm[i]
    step: Step | None = None  # the step whose destination it is (for post-ops)
    defined: int = -1  # index of the step defining it (-1: input or constant)
    owned: bool = False  # its buffer is its own (not an input, constant or view)
    full: Shape | None = None  # a broadcast view: the logical dims it stands for
    dt: str = "f32"  # f32, u8 or s8 (DNNL_TYPES)


def c_dims(xs: Sequence[Dim]) -> str:
    return f"DIMS({', '.join(x.c() if isinstance(x, Sym) else str(int(x)) for x in xs)})"


def identity_post(post: Post) -> bool:
    """``1·x + 0`` (an average pool's window size times a division by it)."""
    kind, alpha, beta, _ = post
    return kind == "BD_LINEAR" and math.isclose(alpha, 1.0, rel_tol=1e-6) and beta == 0.0


def c_float(x: float) -> str:
    """A C float literal (``INFINITY`` for infinities)."""
    if math.isinf(x):
        return "INFINITY" if x > 0 else "-INFINITY"
    return f"{float(x)!r}f"


def format_tag(perm: Sequence[int]) -> str:
    """The oneDNN format tag of a tensor's row-major layout, given its perm."""
    return "dnnl_" + "".join(chr(ord("a") + list(perm).index(j)) for j in range(len(perm)))


def identity(n: int) -> tuple[int, ...]:
    return tuple(range(n))


def pair(op: ir.Operation, key: str) -> list[int]:
    if key not in op.attributes:
        return [1, 1]
    return [int(x) for x in ir.DenseIntElementsAttr(op.attributes[key])]


class Program:
    """Lowers a region to helper calls, in program order, fusing epilogues."""

    def __init__(self, region: RegionView, layout: str, precision: str = "f32"):
        self.region = region
        self.shapes = symbolic.infer(region)
        self.layout = layout
        self.precision = precision
        self.ids: dict[ir.Value, int] = {}
        self.values: list[Value] = []
        self.steps: list[Step] = []
        self.decls: list[str] = []  # inputs and constants, before the steps
        self.blob = bytearray()
        self.const_ids: dict[tuple[int, tuple[int, ...], Shape], int] = {}
        self.materialised: dict[int, int] = {}
        self.skip: set[int] = set()  # ops already lowered as part of a larger primitive
        self.kept: list[np.ndarray] = []
        self.fills: dict[ir.Value, float] = {}
        self.pads: dict[ir.Value, ir.Operation] = {}
        self.uses: dict[ir.Value, int] = {}
        self.read_at: dict[ir.Value, list[int]] = {}  # op positions reading each value
        self.position = 0
        self.args = {a: i for i, a in enumerate(region.args)}
        self.int_types: dict[ir.Value, str] = {}  # quantized inputs' u8/s8 (from their readers)
        self.notes: list[str] = []  # for the report: how quantized ops run, and why
        self.rounded: dict[ir.Value, tuple[int, QuantParams]] = {}  # see lower_quant
        # dequantized views (see lower_quant): the u8/s8 tensor (an IR value, or the value
        # id of an int8 result with no IR value of its own) and its quantization
        self.dequant: dict[ir.Value, tuple[ir.Value | int, QuantParams]] = {}
        for pos, rop in enumerate(region.ops):
            for v in rop.op.operands:
                self.uses[v] = self.uses.get(v, 0) + 1
                self.read_at.setdefault(v, []).append(pos)
        for v in region.results:
            self.uses[v] = self.uses.get(v, 0) + 1
            self.read_at.setdefault(v, []).append(len(region.ops))

    def new(self, dims: Sequence[Dim], perm: Sequence[int]) -> int:
        kept = tuple(d if isinstance(d, Sym) else int(d) for d in dims)
        self.values.append(Value(kept, tuple(perm)))
        return len(self.values) - 1

    def shape(self, v: ir.Value) -> Shape:
        """``v``'s dims, a dynamic one as a `Sym` of the region's input sizes."""
        return self.shapes.shape(v)

    def error(self, message: str, at: ir.Operation | None = None) -> DnnlError:
        where = str(at.location) if at is not None else ""
        return DnnlError(f"{self.region.name}: {message}", location=where)

    def ref(self, v: ir.Value, perm: Sequence[int] | None = None, at: Any = None) -> int:
        """The value id of ``v`` (an input or constant is declared on first use); a
        broadcast view is materialised (see `ref_view` for readers that broadcast)."""
        vid = self.ref_view(v, perm, at)
        full = self.values[vid].full
        if full is None:
            return vid
        materialised = self.materialised.get(vid)
        if materialised is None:  # 0 + the view: oneDNN's binary broadcasts it
            zeros = self.const(np.zeros(full, np.float32), identity(len(full)))
            materialised = self.materialised[vid] = self.new(full, identity(len(full)))
            args = [str(zeros), str(vid), "dnnl_binary_add"]
            self.emit(Step("bd_binary", materialised, args, posts=[], fusable=False))
        return materialised

    def ref_view(self, v: ir.Value, perm: Sequence[int] | None = None, at: Any = None) -> int:
        """Like `ref`, but a broadcast view stays a view (dims of 1 where it broadcasts)."""
        known = self.ids.get(v)
        if known is not None:
            if perm is not None and self.values[known].perm != tuple(perm):
                raise self.error("a tensor is read in two layouts (NCHW and NHWC)", at)
            return known
        shape = self.shape(v)
        perm = tuple(perm) if perm is not None else identity(len(shape))
        dims = [shape[p] for p in perm]
        if v in self.args:
            vid = self.ids[v] = self.new(dims, perm)
            dt = self.values[vid].dt = self.int_types.get(v, "f32")
            self.decls.append(
                f"    bd_input(R, {self.args[v]}, {vid}, {len(dims)}, {c_dims(dims)}, "
                f"{format_tag(perm)}, {DNNL_TYPES[dt]});"
            )
            return vid
        if v in self.dequant:  # a dequantized tensor read as f32: a reorder
            source, params = self.dequant[v]
            src = self.int8(source, perm, at)
            vid = self.ids[v] = self.new(self.values[src].dims, self.values[src].perm)
            args = [str(src), "dnnl_f32", f"&(const bd_q){c_q(params)}", "NULL"]
            self.emit(Step("bd_requant", vid, args, fusable=False))
            return vid
        if v in self.region.constants:
            vid = self.ids[v] = self.const(self.region.constants[v], perm)
            return vid
        if v in self.pads:
            return self.materialise_pad(v)
        if v in self.fills and all(isinstance(d, int) for d in shape):  # read as data
            array = np.full(shape, self.fills[v], dtype=np.float32)
            self.ids[v] = vid = self.const(array, perm)
            return vid
        if v in self.fills:  # of dynamic dims: filled at init, for each shape
            vid = self.ids[v] = self.new(shape, identity(len(shape)))
            fill = f"bd_fill(R, {vid}, {len(shape)}, {c_dims(shape)}, {c_float(self.fills[v])});"
            self.decls.append("    " + fill)
            return self.ref_view(v, perm, at)
        raise self.error(f"{v.type} is produced by an op the dnnl backend does not run", at)

    def int8(
        self, source: ir.Value | int, perm: Sequence[int] | None = None, at: Any = None
    ) -> int:
        """The value id of a dequantized view's integer tensor."""
        return source if isinstance(source, int) else self.ref(source, perm, at)

    def same_tensor(self, a: ir.Value, b: ir.Value) -> bool:
        """Whether ``a`` and ``b`` hold the same data: one value, or dequantizations of one
        tensor with the same parameters (one per reader: byoc-split-shared-dequantize)."""
        if a == b or (a in self.ids and self.ids.get(a) == self.ids.get(b)):
            return True
        da, db = self.dequant.get(a), self.dequant.get(b)
        return da is not None and da == db

    def const(
        self, array: np.ndarray, perm: Sequence[int], dims: Sequence[Dim] | None = None
    ) -> int:
        """A constant in the weights blob, read through ``perm`` (optionally reshaped)."""
        dt = {np.dtype(np.float32): "f32", np.dtype(np.int8): "s8"}.get(array.dtype)
        if dt is None:
            raise self.error(f"a constant of type {array.dtype} (valid: f32)")
        data = np.ascontiguousarray(array)
        shape = [data.shape[p] for p in perm] if dims is None else list(dims)
        tag = format_tag(perm) if dims is None else format_tag(identity(len(shape)))
        key = (id(array), tuple(perm), tuple(shape))
        if key in self.const_ids:
            return self.const_ids[key]
        self.kept.append(array)  # ids key the cache: the array must outlive the program
        offset = len(self.blob)
        self.blob += data.tobytes()
        self.blob += b"\0" * (-len(self.blob) % 64)
        vid = self.new(shape, perm if dims is None else identity(len(shape)))
        self.values[vid].dt = dt
        self.decls.append(
            f"    bd_const(R, {vid}, {len(shape)}, {c_dims(shape)}, {tag}, "
            f"{DNNL_TYPES[dt]}, {offset}L);"
        )
        self.const_ids[key] = vid
        return vid

    def emit(self, step: Step) -> int:
        step.index = len(self.steps)
        step.position = self.position
        self.steps.append(step)
        value = self.values[step.dst]
        value.step = step if step.fusable else None
        value.defined = step.index
        value.owned = step.fn != "bd_reshape"
        return step.dst

    def alias(self, result: ir.Value, vid: int) -> None:
        self.ids[result] = vid

    def fusable(self, v: ir.Value) -> Step | None:
        """The step ``v`` is the destination of, if an epilogue may fold into it."""
        vid = self.ids.get(v)
        if vid is None or self.uses.get(v, 0) != 1:
            return None
        return self.values[vid].step

    def pad_facts(self, v: ir.Value) -> tuple[ir.Value, list[int], list[int], float] | None:
        op = self.pads.get(v)
        if op is None:
            return None
        low = [int(x) for x in ir.DenseI64ArrayAttr(op.attributes["static_low"])]
        high = [int(x) for x in ir.DenseI64ArrayAttr(op.attributes["static_high"])]
        yielded = op.regions[0].blocks[0].operations[0].operation
        value = constant_value(yielded.operands[0]) if yielded.operands else None
        if value is None or any(x < 0 for x in low + high):
            raise self.error("tensor.pad with a computed value or negative padding", op)
        return op.operands[0], low, high, value

    def materialise_pad(self, v: ir.Value) -> int:
        facts = self.pad_facts(v)
        assert facts is not None
        source, low, _, value = facts
        src = self.ref(source)
        perm = self.values[src].perm
        if perm != identity(len(perm)):
            raise self.error("tensor.pad of an NHWC tensor read alone", self.pads[v])
        dims = self.shape(v)
        vid = self.ids[v] = self.new(dims, perm)
        args = [str(src), c_dims(dims), c_dims(low), c_float(value)]
        self.emit(Step("bd_pad", vid, args, fusable=False))
        return vid

    def source(self) -> str:
        """The region's C file (threads come at load, from the manifest)."""
        r = self.region
        outputs = []
        for o, (v, spec) in enumerate(zip(r.results, r.outputs, strict=True)):
            vid = self.ref(v)
            perm = self.values[vid].perm
            dims = self.values[vid].dims
            dt = DNNL_TYPES[self.values[vid].dt]
            outputs.append(
                f"    bd_output(R, {o}, {vid}, {len(dims)}, {c_dims(dims)}, {format_tag(perm)}, "
                f"{dt});  /* {spec.mlir} */"
            )
        tag = LAYOUT_TAGS[self.layout]
        ops = ", ".join(sorted({rop.kind_name for rop in r.ops}))
        lines = [
            f"/* @{r.name}: generated by byoc_mlir's dnnl backend (oneDNN C API). */",
            f"/* ops: {ops} */",
            '#include "dnnl_support.h"',
            "",
            "BD_EXPORT void *byoc_region_init(const void *weights, int threads,",
            "                                 const dnnl_dim_t *D, char *error, int error_size) {",
            "    (void)D; /* the inputs' sizes, which dynamic dims are expressions of */",
            f"    bd_region *R = bd_new({len(self.values)}, {len(r.inputs)}, {len(r.outputs)}, "
            f"weights, threads, {tag}, {PRECISIONS[self.precision]});",
            "    if (R == NULL) return NULL;",
            *self.decls,
            *(s.render() for s in self.steps),
            *outputs,
            "    if (R->error[0]) {",
            '        snprintf(error, (size_t)error_size, "%s", R->error);',
            "        bd_free(R);",
            "        return NULL;",
            "    }",
            "    return R;",
            "}",
            "",
            "BD_EXPORT void byoc_region_free(void *region) { bd_free((bd_region *)region); }",
            "",
            "BD_EXPORT int byoc_region_run(void *region, void *const *inputs,",
            "                              void *const *outputs, char *error, int error_size) {",
            "    bd_region *R = (bd_region *)region;",
            "    if (bd_run(R, inputs, outputs) == 0) return 0;",
            '    snprintf(error, (size_t)error_size, "%s", R->error);',
            "    return -1;",
            "}",
            "",
        ]
        return "\n".join(lines)
