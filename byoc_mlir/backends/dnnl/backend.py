"""The ``dnnl`` backend: oneDNN 3 from PyPI, the BYOC paper's own case study.

It runs f32 convolutions (NCHW/FCHW, NHWC/HWCF and depthwise NCHW; strided, dilated,
padded by a preceding ``tensor.pad``), max and average pooling, matmul and batch_matmul,
and the elementwise ops around them (bias add, residual add, ReLU, clamp, GELU, scaling,
per-channel sub/mul), plus reshapes, so whole networks form one region. Matmuls,
elementwise ops, fills, reductions, transposes and collapses also take dynamic
dimensions: the region is lowered once with each dynamic size an expression of its
inputs' sizes (`byoc_mlir.codegen.symbolic`), and the runtime creates its primitives per
set of input shapes (`byoc_mlir.backends.dnnl.runtime`).

Codegen, in the spirit of the paper's C-source codegen, writes one C file per region: a
list of calls to the helpers of ``dnnl_support.h`` (one per oneDNN primitive), built
with the system C compiler into a shared library linked to ``libdnnl.so.3``. oneDNN is
the ``onednn-cpu-gomp`` wheel (oneDNN 3.2, GNU OpenMP, no other dependency) and its
headers ``onednn-devel-cpu-gomp``, found through the installed distributions
(`byoc_mlir.backends.dnnl.runtime.library_path`): ``pip install`` is the whole setup. The
library creates its primitives once, at load, with weights reordered once into the layout
oneDNN prefers; each call binds the caller's buffers and executes them. Inside a
region, activations stay in oneDNN's chosen layout (blocked, or NHWC with the
``layout=nhwc`` backend option); reorders happen only at region boundaries. Bias adds,
activations and residual adds fold into the producing primitive as post-ops. The
payload (`RuntimeArtifact`, the runtime route) is a zip of the library, its source and
the weights; `byoc_mlir.backends.dnnl.runtime` serves it.

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
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from iree.compiler import ir
from iree.compiler.dialects import tensor

from byoc_mlir.backends.dnnl import lower_quant
from byoc_mlir.backends.dnnl.lowering import lower
from byoc_mlir.backends.dnnl.program import (
    FILL,
    LAYOUT_TAGS,
    LOWEST,
    MAXPOOL,
    PRECISIONS,
    Program,
    map_results,
    matmul_layout,
)
from byoc_mlir.backends.dnnl.runtime import (
    FORMAT,
    VERSION,
    DnnlError,
    include_dir,
    library_path,
    load,
)
from byoc_mlir.codegen import build
from byoc_mlir.codegen.backend import Backend, CheckContext, Reject
from byoc_mlir.codegen.checks import all_of, eight_bit_quantization, ins_outs, tensor_types
from byoc_mlir.codegen.hook import CodegenOptions, RegionView, RuntimeArtifact
from byoc_mlir.codegen.recognisers import (
    ADD,
    BIAS_ADD,
    BROADCAST,
    BROADCAST_DIV,
    BROADCAST_MUL,
    BROADCAST_SUB,
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
    GenericView,
    constant_value,
)
from byoc_mlir.codegen.symbolic import Dim, Shapes, Sym
from byoc_mlir.dataflow import GLOBAL_LOAD
from byoc_mlir.linalg_ops import linalg

__all__ = ["BACKEND", "DnnlError", "codegen", "load"]

HEADER = Path(__file__).with_name("dnnl_support.h")
SOURCES = sorted(Path(__file__).parent.glob("*.py")) + [HEADER]
"""What the generated code depends on: their hash keys the artifact cache."""


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
    if layout not in LAYOUT_TAGS:
        raise DnnlError(f"backend option layout={layout!r} (valid: {', '.join(LAYOUT_TAGS)})")
    precision = options.backend_options.get("precision", "f32")
    if precision not in PRECISIONS:
        raise DnnlError(f"backend option precision={precision!r} (valid: {', '.join(PRECISIONS)})")
    program = Program(region, layout, precision)
    lower(program)
    source = program.source()
    with tempfile.TemporaryDirectory(prefix="byoc_dnnl_") as tmp:
        library = compile_library(source, Path(tmp)).read_bytes()
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "name": region.name,
        "threads": options.threads,
        "inputs": [{"shape": list(s.shape), "dtype": s.dtype} for s in region.inputs],
        "outputs": [{"shape": list(s.shape), "dtype": s.dtype} for s in region.outputs],
        "library_sha256": hashlib.sha256(library).hexdigest(),
        "weights_bytes": len(program.blob),
    }
    shapes = program.shapes
    if shapes.dynamic:  # how output sizes follow from the input sizes, and what must agree
        for entry, v in zip(manifest["outputs"], region.results, strict=True):
            entry["sizes"] = [_json(d) for d in shapes.shape(v)]
        manifest["equal"] = [[_json(a), _json(b)] for a, b in shapes.equal]
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
    # compile time instead of failing the whole model at load. A dynamic region is
    # tried at one set of sizes: 1 for each dynamic one (sizes it takes at run time are
    # created then, and a refusal then is an error of that call).
    loaded = load(payload)
    try:
        if shapes.dynamic:
            loaded.prepare(_probe_sizes(region, shapes))
    finally:
        loaded.close()
    return RuntimeArtifact(payload, notes=lower_quant.summary(program))


def _json(d: Dim) -> int | list[int]:
    return d.to_json() if isinstance(d, Sym) else int(d)


def _probe_sizes(region: RegionView, shapes: Shapes) -> list[int]:
    """Input sizes to try the region at: each dynamic one at 1, or at the size the IR
    ties it to."""
    sizes = [1 if d is None else d for spec in region.inputs for d in spec.shape]
    for a, b in shapes.equal:
        (k,) = a.vars
        if isinstance(b, int):
            sizes[k] = b
    for a, b in shapes.equal:
        (k,) = a.vars
        if isinstance(b, Sym):
            sizes[k] = b.value(sizes)
    return sizes


# --- the backend -----------------------------------------------------------------------

BACKEND = Backend(
    "dnnl",
    "oneDNN 3 (PyPI wheel): convs, pooling, matmuls and their epilogues, runtime route",
    codegen=codegen,
    runtime=load,
    # codegen output changes with this file and the helpers: both key the artifact cache
    version="1+" + hashlib.sha256(b"".join(f.read_bytes() for f in SOURCES)).hexdigest()[:12],
    move_weights=True,
    in_process_safe=True,  # in-tree and tested: its hook runs in process by default
)

f32_static = tensor_types(("f32",), static=True)
f32 = tensor_types(("f32",))  # dynamic dimensions too: see symbolic.py
static = tensor_types(("f32", "i8", "ui8", "si8"), static=True)


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
    if ctx.op.name == MAXPOOL:
        return _fill_init(ctx, lambda v: v <= LOWEST, "-inf")
    return _fill_init(ctx, lambda v: v == 0.0, "0")


def _fill_init(ctx: CheckContext, ok: Callable[[float], bool], what: str) -> Reject | None:
    init = ins_outs(ctx.op)[1][0]
    owner = init.owner
    if isinstance(owner, ir.OpView) and owner.operation.name == FILL:
        value = constant_value(ins_outs(owner.operation)[0][0])
        if value is not None and ok(value):
            return None
    return Reject(f"the init is not a fill of {what} (oneDNN computes from scratch)")


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
    if not yielded.operands or constant_value(yielded.operands[0]) is None:
        return Reject("tensor.pad with a padding value computed at run time")
    return None


def _reduction_init(ctx: CheckContext) -> Reject | None:
    if ctx.kind is REDUCE_MAX:
        return _fill_init(ctx, lambda v: v <= LOWEST, "-inf")
    return _fill_init(ctx, lambda v: v == 0.0, "0")


def _f32_input_and_value(ctx: CheckContext) -> Reject | None:
    for v in (ctx.op.operands[0], ctx.op.results[0]):
        t = v.type
        if not isinstance(t, ir.RankedTensorType) or str(t.element_type) != "f32":
            return Reject(f"{t} (valid: f32 tensors)")
    return None


def full_first_operand(ctx: CheckContext) -> Reject | None:
    """A subtraction or division whose first operand broadcasts (``1 - mask``): oneDNN's
    binary broadcasts its second operand only (the lowering would fail the region)."""
    view = GenericView.of(ctx.op)
    if view is None or not view.body or len(view.body[0].operands) != 2:
        return None
    first = view.body[0].operands[0]
    if first not in view.args:
        return None
    maps = map_results(ctx.op)
    rank = len(maps[-1])
    if maps[view.args.index(first)] != list(range(rank)):
        return Reject("the first operand broadcasts (oneDNN's binary broadcasts the second only)")
    return None


def few_inputs(ctx: CheckContext) -> Reject | None:
    if len(ctx.op.operands) >= 15:
        return Reject(f"concat of {len(ctx.op.operands)} tensors (at most 14)")
    return None


def scalar_fill(ctx: CheckContext) -> Reject | None:
    if constant_value(ins_outs(ctx.op)[0][0]) is None:
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
# matmuls, elementwise ops, reductions, transposes and collapses take dynamic dims
# (primitives created per input shape at run time); the rest static shapes only
BACKEND.supports(*MATMULS, CONTRACTION, check=all_of(f32, zero_init, default_maps))
BACKEND.supports(*ELEMENTWISE, check=f32)
BACKEND.supports(SUB, DIV, BROADCAST_SUB, BROADCAST_DIV, check=full_first_operand)
BACKEND.supports(linalg.FillOp, check=all_of(f32, scalar_fill))
BACKEND.supports(REDUCE_SUM, check=all_of(f32, _reduction_init))
# torch's max.dim has an (unused) i64 index output: check the value side only
BACKEND.supports(REDUCE_MAX, check=all_of(_f32_input_and_value, _reduction_init))
BACKEND.supports(tensor.PadOp, check=all_of(f32_static, constant_pad))
BACKEND.supports(tensor.CollapseShapeOp, linalg.TransposeOp, check=f32)
# a dynamic expand takes its sizes as index values, which regions do not take
BACKEND.supports(tensor.ExpandShapeOp, check=f32_static)
BACKEND.supports(tensor.ConcatOp, check=all_of(f32_static, few_inputs))
# quantized tensors: u8/s8, per tensor; convolutions reading them run in int8
BACKEND.supports(QUANTIZE, DEQUANTIZE, check=all_of(static, eight_bit_quantization))
