"""The ``dnnl`` backend: oneDNN 3 from PyPI, the BYOC paper's own case study.

It runs f32 convolutions (NCHW/FCHW, NHWC/HWCF and depthwise NCHW; strided, dilated,
padded by a preceding ``tensor.pad``), max and average pooling, matmul and batch_matmul,
and the elementwise ops around them (bias add, residual add, ReLU, clamp, GELU, scaling,
per-channel sub/mul), plus reshapes, so whole networks form one region.

Codegen, in the spirit of the paper's C-source codegen, writes one C file per region: a
list of calls to the helpers of ``dnnl_support.h`` (one per oneDNN primitive), built
with the system C compiler into a shared library linked to ``libdnnl.so.3``. oneDNN is
the ``onednn-cpu-gomp`` wheel (oneDNN 3.2, GNU OpenMP, no other dependency) and its
headers ``onednn-devel-cpu-gomp``, found through the installed distributions
(`byoc_mlir.codegen.dnnl_runtime.library_path`): ``pip install`` is the whole setup. The
library creates its primitives once, at load, with weights reordered once into the layout
oneDNN prefers; each call binds the caller's buffers and executes them. Inside a
region, activations stay in oneDNN's chosen layout (blocked, or NHWC with the
``layout=nhwc`` backend option); reorders happen only at region boundaries. Bias adds,
activations and residual adds fold into the producing primitive as post-ops. The
payload (`RuntimeArtifact`, the runtime route) is a zip of the library, its source and
the weights; `byoc_mlir.codegen.dnnl_runtime` serves it.

Weights must be constants (the backend sets ``move_weights``, so they are outlined into
the region); BatchNorm is expected to be folded into the convolution weights already
(``byoc-fold-batchnorm``, which the driver runs).

Backend options: ``layout`` (``any``, the default: oneDNN picks; or ``nhwc``);
``precision`` (``f32``, the default; or ``bf16``: oneDNN's bf16 fpmath mode, so f32
convolutions and matmuls may compute in bf16 on AVX-512/AMX; opt-in, with the error
against the f32 reference printed by ``byoc-run --check``).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from iree.compiler import ir
from iree.compiler.dialects import linalg, tensor

from byoc_mlir import _compat
from byoc_mlir.codegen import build
from byoc_mlir.codegen.backend import Backend, CheckContext, KindKey, Reject, classify
from byoc_mlir.codegen.checks import all_of, ins_outs, tensor_types
from byoc_mlir.codegen.dnnl_runtime import (
    FORMAT,
    VERSION,
    DnnlError,
    include_dir,
    library_path,
    load,
)
from byoc_mlir.codegen.hook import CodegenOptions, RegionView, RuntimeArtifact, TensorSpec
from byoc_mlir.codegen.recognisers import (
    ADD,
    BIAS_ADD,
    BROADCAST,
    BROADCAST_DIV,
    BROADCAST_MUL,
    BROADCAST_SUB,
    CLAMP,
    DIV,
    EXP,
    GELU,
    MAX_CONST,
    MIN_CONST,
    MUL,
    REDUCE_MAX,
    REDUCE_SUM,
    RELU,
    RSQRT,
    SCALE,
    SHIFT,
    SUB,
    GenericView,
    _constant_value,
    bound_value,
    reduction,
    scale_factor,
    shift_amount,
)
from byoc_mlir.dataflow import GLOBAL_LOAD

__all__ = ["BACKEND", "DnnlError", "codegen", "load"]

HEADER = Path(__file__).with_name("dnnl_support.h")
_FILL = linalg.FillOp.OPERATION_NAME
_PAD = tensor.PadOp.OPERATION_NAME
_NCHW = linalg.Conv2DNchwFchwOp.OPERATION_NAME
_NHWC = linalg.Conv2DNhwcHwcfOp.OPERATION_NAME
_DEPTHWISE = linalg.DepthwiseConv2DNchwChwOp.OPERATION_NAME
_MAXPOOL = linalg.PoolingNchwMaxOp.OPERATION_NAME
_SUMPOOL = linalg.PoolingNchwSumOp.OPERATION_NAME
_MATMUL = linalg.MatmulOp.OPERATION_NAME
_BATCH_MATMUL = linalg.BatchMatmulOp.OPERATION_NAME
_COLLAPSE = tensor.CollapseShapeOp.OPERATION_NAME
_TRANSPOSE = linalg.TransposeOp.OPERATION_NAME
_CONCAT = tensor.ConcatOp.OPERATION_NAME
_EXPAND = tensor.ExpandShapeOp.OPERATION_NAME
_PRECISIONS = {"f32": "dnnl_fpmath_mode_strict", "bf16": "dnnl_fpmath_mode_bf16"}
"""The ``precision`` backend option: oneDNN's floating-point math mode for every primitive."""

_LAYOUT_TAGS = {"any": "dnnl_format_tag_any", "nhwc": "dnnl_nhwc", "blocked": "dnnl_nChw16c"}
"""The ``layout`` backend option: activation formats inside a region."""
_NHWC_PERM = (0, 3, 1, 2)  # dnnl's logical (N, C, H, W) from linalg's NHWC dims
_LOWEST = -3.0e38  # a max-pool pad value at or below this is "minus infinity"

# --- the region program --------------------------------------------------------------


Post = tuple[str, float, float, int]  # (kind, alpha, beta, summed value id)


@dataclass
class _Step:
    """One helper call; post-ops and bias may still be added until the C is written."""

    fn: str
    dst: int
    args: list[str]
    posts: list[Post] | None = None  # None: the helper takes no post-ops
    bias: int = -1
    fusable: bool = True
    index: int = 0
    position: int = 0  # the op (program order) that created it

    def render(self) -> str:
        args = [str(self.dst), *self.args]
        if self.fn in ("bd_conv", "bd_matmul"):
            args.insert(3 if self.fn == "bd_conv" else 4, str(self.bias))
        posts = [p for p in self.posts or [] if not _identity_post(p)]
        if self.posts is not None and posts:
            rendered = ", ".join(f"{{{k}, {_float(a)}, {_float(b)}, {v}}}" for k, a, b, v in posts)
            args += [f"POSTS({rendered})", str(len(posts))]
        elif self.posts is not None:
            args += ["NULL", "0"]
        return f"    {self.fn}(R, {', '.join(args)});"


@dataclass
class _Value:
    dims: tuple[int, ...]  # oneDNN's logical dims
    perm: tuple[int, ...]  # logical dim i is the tensor's dim perm[i]
    step: _Step | None = None  # the step whose destination it is (for post-ops)
    defined: int = -1  # index of the step defining it (-1: input or constant)
    owned: bool = False  # its buffer is its own (not an input, constant or view)
    full: tuple[int, ...] | None = None  # a broadcast view: the logical dims it stands for


def _dims(xs: Sequence[int]) -> str:
    return f"DIMS({', '.join(str(int(x)) for x in xs)})"


def _identity_post(post: Post) -> bool:
    """``1·x + 0`` (an average pool's window size times a division by it)."""
    kind, alpha, beta, _ = post
    return kind == "BD_LINEAR" and math.isclose(alpha, 1.0, rel_tol=1e-6) and beta == 0.0


def _float(x: float) -> str:
    """A C float literal (``INFINITY`` for infinities)."""
    if math.isinf(x):
        return "INFINITY" if x > 0 else "-INFINITY"
    return f"{float(x)!r}f"


def _tag(perm: Sequence[int]) -> str:
    """The oneDNN format tag of a tensor's row-major layout, given its perm."""
    return "dnnl_" + "".join(chr(ord("a") + list(perm).index(j)) for j in range(len(perm)))


def _identity(n: int) -> tuple[int, ...]:
    return tuple(range(n))


def _shape(v: ir.Value) -> tuple[int, ...]:
    return TensorSpec.of(v.type).shape


def _pair(op: ir.Operation, key: str) -> list[int]:
    if key not in op.attributes:
        return [1, 1]
    return [int(x) for x in ir.DenseIntElementsAttr(op.attributes[key])]


def _map_results(op: ir.Operation) -> list[list[int | None]]:
    """Each indexing map's results as loop dims (None for a constant result)."""
    out = []
    for m in ir.ArrayAttr(op.attributes["indexing_maps"]):
        amap = ir.AffineMapAttr(m).value
        row: list[int | None] = []
        for e in amap.results:
            row.append(ir.AffineDimExpr(e).position if isinstance(e, ir.AffineDimExpr) else None)
        out.append(row)
    return out


class _Program:
    """Lowers a region to helper calls, in program order, fusing epilogues."""

    def __init__(self, region: RegionView, layout: str, precision: str = "f32"):
        self.region = region
        self.layout = layout
        self.precision = precision
        self.ids: dict[ir.Value, int] = {}
        self.values: list[_Value] = []
        self.steps: list[_Step] = []
        self.decls: list[str] = []  # inputs and constants, before the steps
        self.blob = bytearray()
        self.const_ids: dict[tuple[int, tuple[int, ...], tuple[int, ...]], int] = {}
        self.materialised: dict[int, int] = {}
        self.skip: set[int] = set()  # ops already lowered as part of a larger primitive
        self.kept: list[np.ndarray] = []
        self.fills: dict[ir.Value, float] = {}
        self.pads: dict[ir.Value, ir.Operation] = {}
        self.uses: dict[ir.Value, int] = {}
        self.read_at: dict[ir.Value, list[int]] = {}  # op positions reading each value
        self.position = 0
        self.args = {a: i for i, a in enumerate(region.args)}
        for pos, rop in enumerate(region.ops):
            for v in rop.op.operands:
                self.uses[v] = self.uses.get(v, 0) + 1
                self.read_at.setdefault(v, []).append(pos)
        for v in region.results:
            self.uses[v] = self.uses.get(v, 0) + 1
            self.read_at.setdefault(v, []).append(len(region.ops))

    # --- values ----------------------------------------------------------------------

    def _new(self, dims: Sequence[int], perm: Sequence[int]) -> int:
        self.values.append(_Value(tuple(int(d) for d in dims), tuple(perm)))
        return len(self.values) - 1

    def _error(self, message: str, at: ir.Operation | None = None) -> DnnlError:
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
            zeros = self.const(np.zeros(full, np.float32), _identity(len(full)))
            materialised = self.materialised[vid] = self._new(full, _identity(len(full)))
            args = [str(zeros), str(vid), "dnnl_binary_add"]
            self._emit(_Step("bd_binary", materialised, args, posts=[], fusable=False))
        return materialised

    def ref_view(self, v: ir.Value, perm: Sequence[int] | None = None, at: Any = None) -> int:
        """Like `ref`, but a broadcast view stays a view (dims of 1 where it broadcasts)."""
        known = self.ids.get(v)
        if known is not None:
            if perm is not None and self.values[known].perm != tuple(perm):
                raise self._error("a tensor is read in two layouts (NCHW and NHWC)", at)
            return known
        shape = _shape(v)
        perm = tuple(perm) if perm is not None else _identity(len(shape))
        dims = [shape[p] for p in perm]
        if v in self.args:
            vid = self.ids[v] = self._new(dims, perm)
            self.decls.append(
                f"    bd_input(R, {self.args[v]}, {vid}, {len(dims)}, {_dims(dims)}, {_tag(perm)});"
            )
            return vid
        if v in self.region.constants:
            vid = self.ids[v] = self.const(self.region.constants[v], perm)
            return vid
        if v in self.pads:
            return self._materialise_pad(v)
        if v in self.fills:  # a fill read as data: a constant
            array = np.full(shape, self.fills[v], dtype=np.float32)
            self.ids[v] = vid = self.const(array, perm)
            return vid
        raise self._error(f"{v.type} is produced by an op the dnnl backend does not run", at)

    def const(
        self, array: np.ndarray, perm: Sequence[int], dims: Sequence[int] | None = None
    ) -> int:
        """A constant in the weights blob, read through ``perm`` (optionally reshaped)."""
        if array.dtype != np.float32:
            raise self._error(f"a constant of type {array.dtype} (valid: f32)")
        data = np.ascontiguousarray(array)
        shape = [data.shape[p] for p in perm] if dims is None else list(dims)
        tag = _tag(perm) if dims is None else _tag(_identity(len(shape)))
        key = (id(array), tuple(perm), tuple(shape))
        if key in self.const_ids:
            return self.const_ids[key]
        self.kept.append(array)  # ids key the cache: the array must outlive the program
        offset = len(self.blob)
        self.blob += data.tobytes()
        self.blob += b"\0" * (-len(self.blob) % 64)
        vid = self._new(shape, perm if dims is None else _identity(len(shape)))
        self.decls.append(
            f"    bd_const(R, {vid}, {len(shape)}, {_dims(shape)}, {tag}, {offset}L);"
        )
        self.const_ids[key] = vid
        return vid

    def _emit(self, step: _Step) -> int:
        step.index = len(self.steps)
        step.position = self.position
        self.steps.append(step)
        value = self.values[step.dst]
        value.step = step if step.fusable else None
        value.defined = step.index
        value.owned = step.fn != "bd_reshape"
        return step.dst

    def _alias(self, result: ir.Value, vid: int) -> None:
        self.ids[result] = vid

    def _fusable(self, v: ir.Value) -> _Step | None:
        """The step ``v`` is the destination of, if an epilogue may fold into it."""
        vid = self.ids.get(v)
        if vid is None or self.uses.get(v, 0) != 1:
            return None
        return self.values[vid].step

    # --- ops ---------------------------------------------------------------------------

    def lower(self) -> None:
        for position, rop in enumerate(self.region.ops):
            self.position = position
            if self.skip and _compat.op_key(rop.op) in self.skip:
                continue  # folded into an earlier oneDNN primitive (softmax)
            handler = _HANDLERS.get(rop.kind)
            if handler is None:
                raise self._error(f"cannot lower {rop.kind_name}", rop.op)
            handler(self, rop.op)

    def fill(self, op: ir.Operation) -> None:
        value = _constant_value(ins_outs(op)[0][0])
        if value is None:
            raise self._error("linalg.fill of a value computed at run time", op)
        self.fills[op.results[0]] = value

    def pad(self, op: ir.Operation) -> None:
        self.pads[op.results[0]] = op

    def _pad_facts(self, v: ir.Value) -> tuple[ir.Value, list[int], list[int], float] | None:
        op = self.pads.get(v)
        if op is None:
            return None
        low = [int(x) for x in ir.DenseI64ArrayAttr(op.attributes["static_low"])]
        high = [int(x) for x in ir.DenseI64ArrayAttr(op.attributes["static_high"])]
        yielded = op.regions[0].blocks[0].operations[0].operation
        value = _constant_value(yielded.operands[0]) if yielded.operands else None
        if value is None or any(x < 0 for x in low + high):
            raise self._error("tensor.pad with a computed value or negative padding", op)
        return op.operands[0], low, high, value

    def _materialise_pad(self, v: ir.Value) -> int:
        facts = self._pad_facts(v)
        assert facts is not None
        source, low, _, value = facts
        src = self.ref(source)
        perm = self.values[src].perm
        if perm != _identity(len(perm)):
            raise self._error("tensor.pad of an NHWC tensor read alone", self.pads[v])
        dims = _shape(v)
        vid = self.ids[v] = self._new(dims, perm)
        args = [str(src), _dims(dims), _dims(low), _float(value)]
        self._emit(_Step("bd_pad", vid, args, fusable=False))
        return vid

    def _init_is(self, op: ir.Operation, init: ir.Value, ok: Callable[[float], bool]) -> None:
        value = self.fills.get(init)
        if value is None or not ok(value):
            raise self._error(f"{op.name} must start from a constant fill of its neutral value", op)

    def _accumulate(self, op: ir.Operation, init: ir.Value, perm: Sequence[int]) -> list[Post]:
        """The post-ops for a conv/matmul init: none for a zero fill, else a sum of it
        (an init computed elsewhere, e.g. a zero fill the host kept, is added)."""
        if self.fills.get(init) == 0.0:
            return []
        if init in self.fills:
            raise self._error(f"{op.name} accumulating into a non-zero fill", op)
        return [("BD_SUM", 0.0, 0.0, self.ref(init, perm, op))]

    def conv(self, op: ir.Operation) -> None:
        (x, w), (init,) = ins_outs(op)
        perm = _NHWC_PERM if op.name == _NHWC else _identity(4)
        posts = self._accumulate(op, init, perm)
        spatial = (1, 2) if op.name == _NHWC else (2, 3)
        pad_l, pad_r = [0, 0], [0, 0]
        facts = self._pad_facts(x)
        if facts is not None and facts[3] == 0.0:
            source, low, high, _ = facts
            if all(low[i] == 0 and high[i] == 0 for i in range(4) if i not in spatial):
                x = source
                pad_l, pad_r = [low[i] for i in spatial], [high[i] for i in spatial]
        src = self.ref(x, perm, op)
        weights = self.region.constants.get(w)
        if weights is None and op.name == _DEPTHWISE:
            raise self._error("depthwise convolution weights must be constants", op)
        if weights is None:  # weights at run time: reordered per call (see bd_weights)
            wid = self.ref(w, _identity(4) if op.name == _NCHW else (3, 2, 0, 1), op)
        elif op.name == _NCHW:
            wid = self.const(weights, _identity(4))
        elif op.name == _NHWC:
            wid = self.const(weights, (3, 2, 0, 1))  # HWCF -> logical OIHW
        else:  # depthwise CHW -> grouped G, O/G=1, I/G=1, KH, KW
            c, kh, kw = weights.shape
            wid = self.const(weights, _identity(3), dims=(c, 1, 1, kh, kw))
        out = op.results[0]
        dims = [_shape(out)[p] for p in perm]
        dst = self._new(dims, perm)
        args = [
            str(src),
            str(wid),
            "1",
            _dims(dims),
            _dims(_pair(op, "strides")),
            _dims(_pair(op, "dilations")),
            _dims(pad_l),
            _dims(pad_r),
        ]
        self._alias(out, self._emit(_Step("bd_conv", dst, args, posts=posts)))

    def pool(self, op: ir.Operation) -> None:
        (x, window), (init,) = ins_outs(op)
        is_max = op.name == _MAXPOOL
        self._init_is(op, init, (lambda v: v <= _LOWEST) if is_max else (lambda v: v == 0.0))
        kernel = list(_shape(window))
        pad_l, pad_r = [0, 0], [0, 0]
        facts = self._pad_facts(x)
        if facts is not None:
            source, low, high, value = facts
            neutral = value <= _LOWEST if is_max else value == 0.0
            if neutral and low[:2] == [0, 0] and high[:2] == [0, 0]:
                x, pad_l, pad_r = source, low[2:], high[2:]
        src = self.ref(x, _identity(4), op)
        dims = _shape(op.results[0])
        dst = self._new(dims, _identity(4))
        alg = "dnnl_pooling_max" if is_max else "dnnl_pooling_avg_include_padding"
        args = [
            str(src),
            alg,
            _dims(dims),
            _dims(kernel),
            _dims(_pair(op, "strides")),
            _dims(_pair(op, "dilations")),
            _dims(pad_l),
            _dims(pad_r),
        ]
        posts: list[Post] = [] if is_max else [("BD_LINEAR", float(math.prod(kernel)), 0.0, -1)]
        self._alias(op.results[0], self._emit(_Step("bd_pool", dst, args, posts=posts)))

    def matmul(self, op: ir.Operation) -> None:
        layout = matmul_layout(op)
        if layout is None:
            raise self._error(f"{op.name} with indexing maps oneDNN does not run", op)
        (a, b), (init,) = ins_outs(op)
        posts = self._accumulate(op, init, _identity(len(_shape(init))))
        aid = self.ref(a, None, op)
        weights = self.region.constants.get(b)
        if weights is not None:
            if layout == "transposed_b":  # prepacked anyway: transpose the constant now
                weights = np.ascontiguousarray(np.swapaxes(weights, -1, -2))
            bid = self.const(weights, _identity(weights.ndim))
        elif layout == "transposed_b":
            raise self._error(f"{op.name} reading a computed right operand transposed", op)
        else:
            bid = self.ref(b, None, op)
        dims = _shape(op.results[0])
        dst = self._new(dims, _identity(len(dims)))
        args = [str(aid), str(bid), "1" if weights is not None else "0", _dims(dims)]
        self._alias(op.results[0], self._emit(_Step("bd_matmul", dst, args, posts=posts)))

    def _broadcast_operand(self, v: ir.Value, results: list[int | None], full: _Value) -> int:
        """``v`` read through a projected map ``results`` as a tensor of ``full``'s logical
        rank (dims of 1 where it broadcasts)."""
        if any(r is None for r in results):
            raise self._error("a broadcast read through constant map results")
        positions = [full.perm.index(r) for r in results if r is not None]
        if positions != sorted(positions):
            raise self._error("a broadcast operand read transposed")
        dims = [1] * len(full.dims)
        for p in positions:
            dims[p] = full.dims[p]
        array = self.region.constants.get(v)
        if array is not None:
            return self.const(array, _identity(array.ndim), dims=dims)
        src = self.ref(v)
        self.values[src].owned = False
        vid = self._new(dims, _identity(len(dims)))
        self._emit(_Step("bd_reshape", vid, [str(src), str(len(dims)), _dims(dims)], fusable=False))
        return vid

    def binary(self, op: ir.Operation, alg: str, commutative: bool) -> None:
        view = GenericView.of(op)
        assert view is not None
        ins, _ = ins_outs(op)
        order = [view.args.index(v) for v in view.body[0].operands]
        ins = [ins[i] for i in order]
        maps = [_map_results(op)[i] for i in order]
        out_rank = len(_shape(op.results[0]))
        full = [len(m) == out_rank and m == list(range(out_rank)) for m in maps]
        if not full[0]:
            if not (commutative and full[1]):
                raise self._error("a broadcast first operand of a non-commutative op", op)
            ins, maps, full = ins[::-1], maps[::-1], full[::-1]
        view0 = self.ids.get(ins[0])
        if full[1] and commutative and view0 is not None and self.values[view0].full is not None:
            ins, maps = ins[::-1], maps[::-1]  # the broadcast view goes second
        a = self.ref(ins[0], None, op)
        va = self.values[a]
        if alg == "dnnl_binary_add" and self._fold_add(op, ins, maps, full):
            return
        if full[1]:
            b = self.ref_view(ins[1], va.perm, op)
            if self.values[b].full is not None and va.perm != _identity(len(va.perm)):
                b = self.ref(ins[1], va.perm, op)
        else:
            b = self._broadcast_operand(ins[1], maps[1], va)
        if alg == "dnnl_binary_div" and self.values[b].dims != va.dims:
            # oneDNN (2.6, where this was found) has no JIT kernel for a broadcast divide
            # (softmax's row sums): multiply by the reciprocal of the small operand instead
            inverse = self._new(self.values[b].dims, self.values[b].perm)
            args = [str(b), "dnnl_eltwise_pow", "1.0f", "-1.0f"]
            b = self._emit(_Step("bd_eltwise", inverse, args, fusable=False))
            alg = "dnnl_binary_mul"
        vb = self.values[b]
        if len(va.dims) > 3 and vb.dims == va.dims[:-1] + (1,) and va.perm == vb.perm:
            # A per-row broadcast of rank > 3 (softmax over heads) has no JIT kernel in
            # oneDNN 2.6, rank 3 has: run it on rank-3 views of both operands (kept for 3.2).
            rows = math.prod(va.dims[:-2])
            a = self._view(a, (rows, *va.dims[-2:]))
            b = self._view(b, (rows, va.dims[-2], 1))
            flat = self._new(self.values[a].dims, self.values[a].perm)
            self._emit(_Step("bd_binary", flat, [str(a), str(b), alg], posts=[], fusable=False))
            self._alias(op.results[0], self._view(flat, va.dims))
            return
        dst = self._new(va.dims, va.perm)
        self._alias(
            op.results[0], self._emit(_Step("bd_binary", dst, [str(a), str(b), alg], posts=[]))
        )

    def _view(self, src: int, dims: Sequence[int]) -> int:
        """``src`` (made plain) viewed with other dims of the same size."""
        self.values[src].owned = False
        vid = self._new(dims, _identity(len(dims)))
        self._emit(_Step("bd_reshape", vid, [str(src), str(len(dims)), _dims(dims)], fusable=False))
        self.values[vid].owned = False
        return vid

    def _fold_add(
        self, op: ir.Operation, ins: list[ir.Value], maps: list[list[int | None]], full: list[bool]
    ) -> bool:
        """Folds an add into the producer of one operand: a per-channel constant as the
        conv/matmul bias, or a same-shape tensor as a sum post-op. False if it cannot."""
        out = op.results[0]
        if not full[1]:
            step = self._fusable(ins[0])
            vector = self.region.constants.get(ins[1])
            if step is None or vector is None or step.bias >= 0 or step.posts:
                return False
            if step.fn not in ("bd_conv", "bd_matmul"):
                return False
            dst = self.values[step.dst]
            channel = 1 if step.fn == "bd_conv" else len(dst.dims) - 1  # oneDNN's dim
            if maps[1] != [dst.perm[channel]] or vector.size != dst.dims[channel]:
                return False
            flat = vector.reshape(-1)
            if step.fn == "bd_conv":
                step.bias = self.const(flat, (0,))
            else:  # a matmul's bias has the destination's rank
                rank = len(self.values[step.dst].dims)
                step.bias = self.const(flat, (0,), dims=[1] * (rank - 1) + [flat.size])
            self._alias(out, step.dst)
            return True
        for mine, other in ((ins[0], ins[1]), (ins[1], ins[0])):
            step = self._fusable(mine)
            if step is None or step.posts or step.fn not in ("bd_conv", "bd_matmul", "bd_binary"):
                continue
            oid = self.ids.get(other)
            if oid is None and (other in self.args or other in self.region.constants):
                oid = self.ref(other, self.values[step.dst].perm, op)
            if oid is None or self.values[oid].defined >= step.index:
                continue
            mine_v, other_v = self.values[step.dst], self.values[oid]
            if other_v.dims != mine_v.dims or other_v.perm != mine_v.perm:
                continue  # same logical dims read in another layout: a plain binary
            # In place when the summed tensor dies here: nothing reads it after the
            # producer (which must not read it either) and its buffer is its own.
            reads = [p for p in self.read_at.get(other, []) if p != self.position]
            dead = self.values[oid].owned and all(p < step.position for p in reads)
            step.posts = [("BD_SUM", 1.0 if dead else 0.0, 0.0, oid)]
            self._alias(out, step.dst)
            return True
        return False

    def eltwise(self, op: ir.Operation, post: Post, alg: str, alpha: float, beta: float) -> None:
        view = GenericView.of(op)
        assert view is not None
        x = next(v for i, v in enumerate(ins_outs(op)[0]) if view.is_identity(i))
        step = self._fusable(x)
        if step is not None and step.posts is not None:
            last = step.posts[-1] if step.posts else None
            if post[0] == "BD_LINEAR" and last is not None and last[0] == "BD_LINEAR":
                # a2 * (a1 * x + b1) + b2
                step.posts[-1] = ("BD_LINEAR", last[1] * post[1], last[2] * post[1] + post[2], -1)
            elif (
                post[0] == "BD_CLIP"
                and last is not None
                and last[0] == "BD_CLIP"
                and max(last[1], post[1]) <= min(last[2], post[2])
            ):  # clip(clip(x, a, b), c, d) on overlapping ranges
                step.posts[-1] = ("BD_CLIP", max(last[1], post[1]), min(last[2], post[2]), -1)
            else:
                step.posts.append(post)
            self._alias(op.results[0], step.dst)
            return
        src = self.ref(x, None, op)
        v = self.values[src]
        dst = self._new(v.dims, v.perm)
        args = [str(src), alg, _float(alpha), _float(beta)]
        self._alias(op.results[0], self._emit(_Step("bd_eltwise", dst, args, fusable=False)))

    def broadcast(self, op: ir.Operation) -> None:
        """A broadcast copy becomes a view: the source with 1s on the new dims, which
        binary ops read broadcasting (no copy); other readers materialise it."""
        (x,) = ins_outs(op)[0]
        (results,) = _map_results(op)[:1]
        out = _shape(op.results[0])
        if any(r is None for r in results) or results != sorted(results):  # type: ignore[type-var]
            raise self._error("a broadcast that transposes or reads constant indices", op)
        dims = [out[d] if d in results else 1 for d in range(len(out))]
        src = self.ref(x, None, op)
        self.values[src].owned = False
        vid = self._new(dims, _identity(len(dims)))
        self.values[vid].full = tuple(out)
        self._emit(_Step("bd_reshape", vid, [str(src), str(len(dims)), _dims(dims)], fusable=False))
        self.values[vid].owned = False
        self._alias(op.results[0], vid)

    def _single_user(self, v: ir.Value) -> ir.Operation | None:
        users = [u.owner for u in v.uses]
        if len(users) != 1:
            return None
        user = users[0]
        return user.operation if isinstance(user, ir.OpView) else user

    def _through_reshapes(self, v: ir.Value, hops: list[ir.Operation]) -> ir.Value:
        """``v`` followed through single-use reshapes (collected in ``hops``)."""
        while True:
            user = self._single_user(v)
            if user is None or user.name not in (_EXPAND, _COLLAPSE):
                return v
            hops.append(user)
            v = user.results[0]

    def _softmax(self, op: ir.Operation) -> bool:
        """At softmax's max reduction: if the decomposed chain follows (x - max(x), exp,
        its sum, the division; reshapes between), emits one oneDNN softmax for it."""
        x = op.operands[0]
        shape = reduction(op)
        rank = len(_shape(x))
        if shape is None or shape.dims != (rank - 1,):
            return False
        hops: list[ir.Operation] = []
        m = self._through_reshapes(op.results[0], hops)
        sub = self._single_user(m)
        if sub is None or classify(sub) is not BROADCAST_SUB or list(sub.operands[:2]) != [x, m]:
            return False
        exp = self._single_user(sub.results[0])
        if exp is None or classify(exp) is not EXP:
            return False
        users = [u.owner.operation for u in exp.results[0].uses]
        total = next((u for u in users if classify(u) is REDUCE_SUM), None)
        div = next((u for u in users if classify(u) is BROADCAST_DIV), None)
        if len(users) != 2 or total is None or div is None:
            return False
        total_shape = reduction(total)
        if total_shape is None or total_shape.dims != (rank - 1,):
            return False
        s = self._through_reshapes(total.results[0], hops)
        if list(div.operands[:2]) != [exp.results[0], s]:
            return False
        src = self.ref(x, None, op)
        if self.values[src].perm != _identity(rank):
            return False
        dst = self._new(self.values[src].dims, self.values[src].perm)
        self._emit(_Step("bd_softmax", dst, [str(src), str(rank - 1)], fusable=False))
        self._alias(div.results[0], dst)
        self.skip.update(_compat.op_key(o) for o in (sub, exp, total, div, *hops))
        return True

    def _user_of_kind(self, v: ir.Value, kind: KindKey) -> ir.Operation | None:
        user = self._single_user(v)
        return user if user is not None and classify(user) is kind else None

    def _mean_of(self, op: ir.Operation, n: int, hops: list[ir.Operation]) -> ir.Operation | None:
        """``sum / n`` spread back to full shape: the BROADCAST after the SCALE after ``op``
        (a last-dim REDUCE_SUM), reshapes between; None if the chain differs."""
        scale = self._user_of_kind(op.results[0], SCALE)
        if scale is None or not math.isclose(scale_factor(scale) * n, 1.0, rel_tol=1e-5):
            return None
        hops.append(scale)
        return self._user_of_kind(self._through_reshapes(scale.results[0], hops), BROADCAST)

    def _layernorm(self, op: ir.Operation) -> bool:
        """At LayerNorm's first sum: if the decomposed chain follows (mean, centre, the
        variance's square/sum/scale, + eps, rsqrt, normalise; then optionally a constant
        per-channel scale and shift), emits one oneDNN layer normalisation for it."""
        x = op.operands[0]
        rank = len(_shape(x))
        n = _shape(x)[-1]
        shape = reduction(op)
        if shape is None or shape.dims != (rank - 1,):
            return False
        hops: list[ir.Operation] = []
        mean = self._mean_of(op, n, hops)
        if mean is None:
            return False
        centre = self._user_of_kind(mean.results[0], SUB)
        if centre is None or list(centre.operands[:2]) != [x, mean.results[0]]:
            return False
        d = centre.results[0]
        users = list({_compat.op_key(o): o for o in (u.owner.operation for u in d.uses)}.values())
        square = next((u for u in users if list(u.operands[:2]) == [d, d]), None)
        norm = next((u for u in users if u is not square), None)
        if len(users) != 2 or square is None or classify(square) is not MUL:
            return False
        total = self._user_of_kind(square.results[0], REDUCE_SUM)
        if total is None or reduction(total) != shape:
            return False
        scale = self._user_of_kind(total.results[0], SCALE)
        if scale is None or not math.isclose(scale_factor(scale) * n, 1.0, rel_tol=1e-5):
            return False
        shift = self._user_of_kind(scale.results[0], SHIFT)
        rsqrt = self._user_of_kind(shift.results[0], RSQRT) if shift is not None else None
        if shift is None or rsqrt is None or shift_amount(shift) <= 0:
            return False
        eps = shift_amount(shift)
        hops += [scale, shift]
        spread = self._user_of_kind(self._through_reshapes(rsqrt.results[0], hops), BROADCAST)
        if spread is None or norm is None or classify(norm) is not MUL:
            return False
        if set(norm.operands[:2]) != {d, spread.results[0]}:
            return False
        src = self.ref(x, None, op)
        if self.values[src].perm != _identity(rank):
            return False
        chain = [op, mean, centre, square, total, rsqrt, spread, norm, *hops]
        out = norm.results[0]
        vectors = {}
        for kind, key in ((BROADCAST_MUL, "scale"), (BIAS_ADD, "shift")):
            user = self._user_of_kind(out, kind)
            vector = self.region.constants.get(user.operands[1]) if user is not None else None
            if user is None or vector is None or vector.shape != (n,):
                break
            if user.operands[0] != out or _map_results(user)[1] != [rank - 1]:
                break
            vectors[key] = self.const(np.ascontiguousarray(vector), (0,))
            chain.append(user)
            out = user.results[0]
        dst = self._new(self.values[src].dims, self.values[src].perm)
        args = [str(src), _float(eps)]
        args += [str(vectors.get("scale", -1)), str(vectors.get("shift", -1))]
        self._emit(_Step("bd_layernorm", dst, args, fusable=False))
        self._alias(out, dst)
        self.skip.update(_compat.op_key(o) for o in chain if o is not op)
        return True

    def reduce(self, op: ir.Operation, alg: str, neutral: Callable[[float], bool]) -> None:
        shape = reduction(op)
        assert shape is not None
        if alg == "dnnl_reduction_max" and self._softmax(op):
            return
        if alg == "dnnl_reduction_sum" and self._layernorm(op):
            return
        (x,) = ins_outs(op)[0]
        init = ins_outs(op)[1][0]
        if alg == "dnnl_reduction_max" and self.fills.get(init) == -math.inf:
            # oneDNN starts a max from the lowest finite float: a row of -inf (a fully
            # masked attention row) gives -3.4e38 where MLIR gives -inf.
            raise self._error(f"{op.name} max reduction from -inf (oneDNN's starts finite)", op)
        combine = None
        if not neutral(self.fills.get(init, math.nan)):
            if init in self.fills:
                raise self._error(f"{op.name} reduction from a non-neutral fill", op)
            # an init computed elsewhere: reduce, then combine with it (exact)
            combine = "dnnl_binary_add" if alg == "dnnl_reduction_sum" else "dnnl_binary_max"
        src = self.ref(x, None, op)
        full = self.values[src].dims
        dims = [1 if d in shape.dims else n for d, n in enumerate(full)]
        vid = self._new(dims, _identity(len(dims)))
        self._emit(_Step("bd_reduce", vid, [str(src), alg, _dims(dims)], fusable=False))
        out = _shape(op.results[0])
        if tuple(out) != tuple(dims):  # the output drops the reduced dims: a view
            view = self._new(out, _identity(len(out)))
            self.values[vid].owned = False
            self._emit(
                _Step("bd_reshape", view, [str(vid), str(len(out)), _dims(out)], fusable=False)
            )
            vid = view
        if combine is not None:
            acc = self.ref(init, None, op)
            total = self._new(self.values[acc].dims, self.values[acc].perm)
            self._emit(_Step("bd_binary", total, [str(acc), str(vid), combine], posts=[]))
            vid = total
        self._alias(op.results[0], vid)

    def concat(self, op: ir.Operation) -> None:
        dim = ir.IntegerAttr(op.attributes["dim"]).value
        srcs = [self.ref(v, None, op) for v in op.operands]
        perm = self.values[srcs[0]].perm
        if any(self.values[s].perm != perm for s in srcs):
            raise self._error("a concat of tensors in different layouts", op)
        shape = _shape(op.results[0])
        dst = self._new([shape[p] for p in perm], perm)
        ids = ", ".join(str(s) for s in srcs)
        args = [str(list(perm).index(dim)), str(len(srcs)), f"(const int[]){{{ids}}}"]
        self._alias(op.results[0], self._emit(_Step("bd_concat", dst, args, fusable=False)))

    def transpose(self, op: ir.Operation) -> None:
        perm = [int(x) for x in ir.DenseI64ArrayAttr(op.attributes["permutation"])]
        src = self.ref(op.operands[0], None, op)  # (input, init): no operand segments
        if self.values[src].perm != _identity(len(perm)):
            raise self._error("a transpose of an NHWC tensor", op)
        dims = _shape(op.results[0])
        dst = self._new(dims, _identity(len(dims)))
        args = [str(src), f"(const int[]){{{', '.join(str(p) for p in perm)}}}"]
        self._alias(op.results[0], self._emit(_Step("bd_transpose", dst, args, fusable=False)))

    def reshape(self, op: ir.Operation) -> None:
        src = self.ref(op.operands[0], None, op)
        self.values[src].owned = False
        if self.values[src].perm != _identity(len(self.values[src].perm)):
            raise self._error("a reshape of an NHWC tensor", op)
        dims = _shape(op.results[0])
        dst = self._new(dims, _identity(len(dims)))
        args = [str(src), str(len(dims)), _dims(dims)]
        self._alias(op.results[0], self._emit(_Step("bd_reshape", dst, args, fusable=False)))

    # --- C -------------------------------------------------------------------------------

    def source(self) -> str:
        """The region's C file (threads come at load, from the manifest)."""
        r = self.region
        outputs = []
        for o, (v, spec) in enumerate(zip(r.results, r.outputs, strict=True)):
            vid = self.ref(v)
            perm = self.values[vid].perm
            dims = self.values[vid].dims
            outputs.append(
                f"    bd_output(R, {o}, {vid}, {len(dims)}, {_dims(dims)}, {_tag(perm)});"
                f"  /* {spec.mlir} */"
            )
        tag = _LAYOUT_TAGS[self.layout]
        ops = ", ".join(sorted({rop.kind_name for rop in r.ops}))
        lines = [
            f"/* @{r.name}: generated by byoc_mlir's dnnl backend (oneDNN C API). */",
            f"/* ops: {ops} */",
            '#include "dnnl_support.h"',
            "",
            "BD_EXPORT void *byoc_region_init(const void *weights, int threads, char *error,",
            "                                 int error_size) {",
            f"    bd_region *R = bd_new({len(self.values)}, {len(r.inputs)}, {len(r.outputs)}, "
            f"weights, threads, {tag}, {_PRECISIONS[self.precision]});",
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


def _binary(alg: str, commutative: bool) -> Callable[[_Program, ir.Operation], None]:
    return lambda p, op: p.binary(op, alg, commutative)


def _clamp(p: _Program, op: ir.Operation) -> None:
    view = GenericView.of(op)
    assert view is not None
    first, second = view.body
    bounds = []
    for body_op, x in ((first, view.args[0]), (second, first.results[0])):
        a, b = body_op.operands
        bounds.append(_constant_value(b if a == x else a))
    lo, hi = (bounds[0], bounds[1]) if "max" in first.name else (bounds[1], bounds[0])
    assert lo is not None and hi is not None
    p.eltwise(op, ("BD_CLIP", lo, hi, -1), "dnnl_eltwise_clip_v2", lo, hi)


def _bound(upper: bool) -> Callable[[_Program, ir.Operation], None]:
    def lower(p: _Program, op: ir.Operation) -> None:
        c = bound_value(op)
        lo, hi = (-math.inf, c) if upper else (c, math.inf)
        p.eltwise(op, ("BD_CLIP", lo, hi, -1), "dnnl_eltwise_clip_v2", lo, hi)

    return lower


def _shift(p: _Program, op: ir.Operation) -> None:
    c = shift_amount(op)
    p.eltwise(op, ("BD_LINEAR", 1.0, c, -1), "dnnl_eltwise_linear", 1.0, c)


def _gelu(p: _Program, op: ir.Operation) -> None:
    view = GenericView.of(op)
    assert view is not None
    erf = any(o.name == "math.erf" for o in view.body)
    kind, alg = (
        ("BD_GELU_ERF", "dnnl_eltwise_gelu_erf")
        if erf
        else ("BD_GELU_TANH", "dnnl_eltwise_gelu_tanh")
    )
    p.eltwise(op, (kind, 0.0, 0.0, -1), alg, 0.0, 0.0)


def _scale(p: _Program, op: ir.Operation) -> None:
    k = scale_factor(op)
    p.eltwise(op, ("BD_LINEAR", k, 0.0, -1), "dnnl_eltwise_linear", k, 0.0)


_HANDLERS: dict[KindKey, Callable[[_Program, ir.Operation], None]] = {
    _FILL: _Program.fill,
    _PAD: _Program.pad,
    _NCHW: _Program.conv,
    _NHWC: _Program.conv,
    _DEPTHWISE: _Program.conv,
    _MAXPOOL: _Program.pool,
    _SUMPOOL: _Program.pool,
    _MATMUL: _Program.matmul,
    _BATCH_MATMUL: _Program.matmul,
    _COLLAPSE: _Program.reshape,
    _TRANSPOSE: _Program.transpose,
    _CONCAT: _Program.concat,
    _EXPAND: _Program.reshape,
    ADD: _binary("dnnl_binary_add", True),
    BIAS_ADD: _binary("dnnl_binary_add", True),
    SUB: _binary("dnnl_binary_sub", False),
    BROADCAST_SUB: _binary("dnnl_binary_sub", False),
    MUL: _binary("dnnl_binary_mul", True),
    BROADCAST_MUL: _binary("dnnl_binary_mul", True),
    RELU: lambda p, op: p.eltwise(op, ("BD_RELU", 0.0, 0.0, -1), "dnnl_eltwise_relu", 0.0, 0.0),
    CLAMP: _clamp,
    GELU: _gelu,
    SCALE: _scale,
    MAX_CONST: _bound(False),
    MIN_CONST: _bound(True),
    DIV: _binary("dnnl_binary_div", False),
    BROADCAST_DIV: _binary("dnnl_binary_div", False),
    SHIFT: _shift,
    EXP: lambda p, op: p.eltwise(op, ("BD_EXP", 0.0, 0.0, -1), "dnnl_eltwise_exp", 0.0, 0.0),
    RSQRT: lambda p, op: p.eltwise(op, ("BD_POW", 1.0, -0.5, -1), "dnnl_eltwise_pow", 1.0, -0.5),
    BROADCAST: _Program.broadcast,
    REDUCE_SUM: lambda p, op: p.reduce(op, "dnnl_reduction_sum", lambda v: v == 0.0),
    REDUCE_MAX: lambda p, op: p.reduce(op, "dnnl_reduction_max", lambda v: v <= _LOWEST),
}


# --- codegen ---------------------------------------------------------------------------


def compile_library(source: str, out_dir: Path) -> Path:
    """Builds ``region.c`` into a shared library linked to the wheel's ``libdnnl.so.3``.

    No run path is recorded (the payload must not depend on where the venv is): the
    runtime loads the wheel's library before the region's.

    Raises:
        DnnlError: no C compiler, oneDNN 3's wheels not installed, or the compiler's
            first error.
    """
    cc = build.c_compiler()
    library, include = library_path(), include_dir()
    (out_dir / "region.c").write_text(source)
    shutil.copyfile(HEADER, out_dir / HEADER.name)
    lib = out_dir / "region.so"
    cmd = [cc, "-O2", "-shared", "-fPIC", "-fopenmp", "-fvisibility=hidden", "-I", str(out_dir)]
    cmd += ["-isystem", str(include), str(out_dir / "region.c"), "-o", str(lib), str(library)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if "error" in ln] or proc.stderr.splitlines()
        raise DnnlError(f"the C compiler failed on the generated code: {' '.join(lines[:2])}")
    return lib


def _zip(files: dict[str, bytes]) -> bytes:
    """A deterministic zip (fixed timestamps, sorted names, stored, not compressed)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as z:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            z.writestr(info, files[name])
    return buffer.getvalue()


def codegen(region: RegionView, options: CodegenOptions) -> RuntimeArtifact:
    """The hook: the region as a oneDNN C library plus its weights.

    Raises:
        DnnlError: an op or value the backend cannot lower, or the build failed (the
            region stays on the host).
    """
    layout = options.backend_options.get("layout", "any")
    if layout not in _LAYOUT_TAGS:
        raise DnnlError(f"backend option layout={layout!r} (valid: {', '.join(_LAYOUT_TAGS)})")
    precision = options.backend_options.get("precision", "f32")
    if precision not in _PRECISIONS:
        raise DnnlError(f"backend option precision={precision!r} (valid: {', '.join(_PRECISIONS)})")
    program = _Program(region, layout, precision)
    program.lower()
    source = program.source()
    with tempfile.TemporaryDirectory(prefix="byoc_dnnl_") as tmp:
        library = compile_library(source, Path(tmp)).read_bytes()
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "name": region.name,
        "threads": options.threads,
        "inputs": [{"shape": list(s.shape), "dtype": s.dtype} for s in region.inputs],
        "outputs": [{"shape": list(s.shape), "dtype": s.dtype} for s in region.outputs],
        "library_sha256": hashlib.sha256(library).hexdigest(),
        "weights_bytes": len(program.blob),
    }
    files = {
        "manifest.json": json.dumps(manifest, indent=1, sort_keys=True).encode(),
        "region.c": source.encode(),
        "dnnl_support.h": HEADER.read_bytes(),
        "region.so": library,
        "weights.bin": bytes(program.blob),
    }
    payload = _zip(files)
    # Load it once now: what oneDNN refuses (no implementation for a shape, a post-op
    # combination) then fails this region's codegen, so it falls back to the host at
    # compile time instead of failing the whole model at load.
    load(payload).close()
    return RuntimeArtifact(payload)


# --- the backend -----------------------------------------------------------------------

BACKEND = Backend(
    "dnnl",
    "oneDNN 3 (PyPI wheel): convs, pooling, matmuls and their epilogues, runtime route",
    codegen=codegen,
    runtime=load,
    # codegen output changes with this file and the helpers: both key the artifact cache
    version="1+"
    + hashlib.sha256(HEADER.read_bytes() + Path(__file__).read_bytes()).hexdigest()[:12],
    move_weights=True,
    in_process_safe=True,  # in-tree and tested: its hook runs in process by default
)

f32_static = tensor_types(("f32",), static=True)


def _constant_operand(index: int, what: str) -> Callable[[CheckContext], Reject | None]:
    def check(ctx: CheckContext) -> Reject | None:
        v = ctx.op.operands[index]
        if _is_constant(v):
            return None
        owner = v.owner
        if isinstance(owner, ir.OpView) and owner.operation.name == GLOBAL_LOAD:
            return Reject(
                f"{what} read from a parameter file at run time (oneDNN prepacks weights "
                f"at compile time: keep them in the model, no --externalize-params)"
            )
        return Reject(f"{what} computed at run time (oneDNN prepacks constant weights)")

    check.__name__ = f"constant_{what.replace(' ', '_')}"
    return check


def zero_init(ctx: CheckContext) -> Reject | None:
    """Convolutions and matmuls accumulate into their init: it must be a fill of 0."""
    return _fill_init(ctx, lambda v: v == 0.0, "0")


def neutral_pool_init(ctx: CheckContext) -> Reject | None:
    if ctx.op.name == _MAXPOOL:
        return _fill_init(ctx, lambda v: v <= _LOWEST, "-inf")
    return _fill_init(ctx, lambda v: v == 0.0, "0")


def _fill_init(ctx: CheckContext, ok: Callable[[float], bool], what: str) -> Reject | None:
    init = ins_outs(ctx.op)[1][0]
    owner = init.owner
    if isinstance(owner, ir.OpView) and owner.operation.name == _FILL:
        value = _constant_value(ins_outs(owner.operation)[0][0])
        if value is not None and ok(value):
            return None
    return Reject(f"the init is not a fill of {what} (oneDNN computes from scratch)")


_MATMUL_MAPS = {
    _MATMUL: {"plain": [[0, 2], [2, 1], [0, 1]], "transposed_b": [[0, 2], [1, 2], [0, 1]]},
    _BATCH_MATMUL: {
        "plain": [[0, 1, 3], [0, 3, 2], [0, 1, 2]],
        "transposed_b": [[0, 1, 3], [0, 2, 3], [0, 1, 2]],
    },
}


def matmul_layout(op: ir.Operation) -> str | None:
    """``plain`` or ``transposed_b`` (``A @ B^T``) from a matmul's indexing maps."""
    maps = _map_results(op) if "indexing_maps" in op.attributes else None
    known = _MATMUL_MAPS[op.name]
    if maps is None:
        return "plain"
    return next((name for name, m in known.items() if m == maps), None)


def default_maps(ctx: CheckContext) -> Reject | None:
    if matmul_layout(ctx.op) is None:
        return Reject("matmul with indexing maps other than A@B and A@B^T (broadcasts)")
    if matmul_layout(ctx.op) == "transposed_b" and not _is_constant(ctx.op.operands[1]):
        return Reject("matmul reading a computed right operand transposed")
    return None


def _is_constant(v: ir.Value) -> bool:
    owner = v.owner
    return isinstance(owner, ir.OpView) and owner.operation.name == "arith.constant"


def constant_pad(ctx: CheckContext) -> Reject | None:
    op = ctx.op
    if not isinstance(op.results[0].type, ir.RankedTensorType):
        return Reject("tensor.pad of an unranked tensor")
    for key in ("static_low", "static_high"):
        if any(int(x) < 0 for x in ir.DenseI64ArrayAttr(op.attributes[key])):
            return Reject("tensor.pad with dynamic or negative padding")
    yielded = op.regions[0].blocks[0].operations[0].operation
    if not yielded.operands or _constant_value(yielded.operands[0]) is None:
        return Reject("tensor.pad with a padding value computed at run time")
    return None


def _reduction_init(ctx: CheckContext) -> Reject | None:
    if ctx.kind is REDUCE_MAX:
        return _fill_init(ctx, lambda v: v <= _LOWEST, "-inf")
    return _fill_init(ctx, lambda v: v == 0.0, "0")


def _f32_input_and_value(ctx: CheckContext) -> Reject | None:
    for v in (ctx.op.operands[0], ctx.op.results[0]):
        t = v.type
        if (
            not (isinstance(t, ir.RankedTensorType) and t.has_static_shape)
            or str(t.element_type) != "f32"
        ):
            return Reject(f"{t} (valid: statically shaped f32 tensors)")
    return None


def few_inputs(ctx: CheckContext) -> Reject | None:
    if len(ctx.op.operands) >= 15:
        return Reject(f"concat of {len(ctx.op.operands)} tensors (at most 14)")
    return None


def scalar_fill(ctx: CheckContext) -> Reject | None:
    if _constant_value(ins_outs(ctx.op)[0][0]) is None:
        return Reject("linalg.fill of a value computed at run time")
    return None


CONVS: Sequence[Any] = (
    linalg.Conv2DNchwFchwOp,
    linalg.Conv2DNhwcHwcfOp,
    linalg.DepthwiseConv2DNchwChwOp,
)
POOLS: Sequence[Any] = (linalg.PoolingNchwMaxOp, linalg.PoolingNchwSumOp)
MATMULS: Sequence[Any] = (linalg.MatmulOp, linalg.BatchMatmulOp)
ELEMENTWISE = (
    ADD, SUB, MUL, BIAS_ADD, BROADCAST_SUB, BROADCAST_MUL, RELU, CLAMP, GELU, SCALE,
    MAX_CONST, MIN_CONST, DIV, BROADCAST_DIV, SHIFT, EXP, RSQRT, BROADCAST,
)  # fmt: skip

BACKEND.supports(*CONVS, check=all_of(f32_static, zero_init))
BACKEND.supports(linalg.DepthwiseConv2DNchwChwOp, check=_constant_operand(1, "weights"))
BACKEND.supports(*POOLS, check=all_of(f32_static, neutral_pool_init))
BACKEND.supports(*MATMULS, check=all_of(f32_static, zero_init, default_maps))
BACKEND.supports(*ELEMENTWISE, check=f32_static)
BACKEND.supports(linalg.FillOp, check=all_of(f32_static, scalar_fill))
BACKEND.supports(REDUCE_SUM, check=all_of(f32_static, _reduction_init))
# torch's max.dim has an (unused) i64 index output: check the value side only
BACKEND.supports(REDUCE_MAX, check=all_of(_f32_input_and_value, _reduction_init))
BACKEND.supports(tensor.PadOp, check=all_of(f32_static, constant_pad))
BACKEND.supports(tensor.CollapseShapeOp, tensor.ExpandShapeOp, linalg.TransposeOp, check=f32_static)
BACKEND.supports(tensor.ConcatOp, check=all_of(f32_static, few_inputs))
