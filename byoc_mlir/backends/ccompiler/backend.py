"""The ``ccompiler`` reference backend: readable C for the linked route.

It runs f32 matmul, batch_matmul, conv2d (NCHW/FCHW and NHWC/HWCF, any strides and
dilations, no padding; static shapes), fill, and the add/sub/mul, bias-add, relu and
clamp generics, alone or fused: a matmul or convolution followed by bias-add, relu or
clamp is one composite, computed in one loop nest. Quantized units (dequantize ->
conv2d NCHW or matmul -> bias -> quantize, 8-bit) are reference int8 kernels with int32
sums (`byoc_mlir.backends.ccompiler.quantized`); their edges are the 8-bit tensors.
Its hook writes one C function per unit (`ccompiler_emit`); the toolkit builds the file
freestanding and links it into IREE's dispatches. The generated C is meant to be read
and copied by vendors: plain loops, with matmuls and convolutions in register tiles the
C compiler vectorises (the epilogue runs on the tile's accumulators before the one
store), and ``restrict`` on every pointer since results never alias arguments.

Dynamic dimensions (matmuls, fills, elementwise ops): each is a product of the region's
input sizes (`byoc_mlir.codegen.symbolic`); every kernel of such a region takes the
dynamic input sizes as ``size_t D<k>`` arguments, its loops and local array views
(pointers to variably sized arrays) use them, and the linked route passes them through
the dispatch's push constants.

TOSA is not listed: the driver runs IREE's input conversion first, so regions arrive as
linalg-on-tensors. The ``testing`` backend has the same support table.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from iree.compiler import ir
from iree.compiler.dialects import tensor

from byoc_mlir.backends.ccompiler import quantized
from byoc_mlir.backends.ccompiler.anchors import ANCHORS, has_default_maps
from byoc_mlir.backends.ccompiler.emit import (
    emit_elementwise,
    emit_fill,
    flat_ok,
)
from byoc_mlir.backends.ccompiler.writer import CDim, CFile, CodegenError, KernelWriter, Source
from byoc_mlir.codegen import symbolic
from byoc_mlir.codegen.backend import ANY, Backend, CheckContext, Reject, op, quantized_units
from byoc_mlir.codegen.checks import all_of, tensor_types
from byoc_mlir.codegen.hook import (
    CodegenOptions,
    Kernel,
    LinkedArtifact,
    RegionOp,
    RegionView,
    TensorSpec,
    ValueRef,
)
from byoc_mlir.codegen.recognisers import (
    ADD,
    BIAS_ADD,
    BROADCAST_MUL,
    BROADCAST_SUB,
    CLAMP,
    MUL,
    RELU,
    SUB,
)
from byoc_mlir.codegen.symbolic import Sym
from byoc_mlir.linalg_ops import linalg

__all__ = ["BACKEND", "CodegenError", "codegen"]

CONTRACTIONS = (linalg.MatmulOp, linalg.BatchMatmulOp)
CONVS = (linalg.Conv2DNchwFchwOp, linalg.Conv2DNhwcHwcfOp)
ELEMENTWISE = (ADD, SUB, MUL, BIAS_ADD, BROADCAST_SUB, BROADCAST_MUL, RELU, CLAMP)
_FILL = linalg.FillOp.OPERATION_NAME
_FLAT_GRAIN = 1024
"""Elements per workgroup at least, for flat loops (fills, elementwise kernels)."""


def plain_layout(ctx: CheckContext) -> Reject | None:
    """Refuses matmuls whose ``indexing_maps`` transpose or broadcast an operand."""
    for member, _ in ctx.each_member():
        if not has_default_maps(member):
            return Reject(f"{member.name} with transposed or broadcast operands is not supported")
    return None


def ranked(ctx: CheckContext) -> Reject | None:
    """Refuses rank-0 results: the kernels index rows of the last dimension, and a
    scalar computed in a dispatch of its own is only a boundary crossing."""
    for member, _ in ctx.each_member():
        for result in member.results:
            if isinstance(result.type, ir.RankedTensorType) and result.type.rank == 0:
                return Reject("rank-0 (scalar) results are not supported")
    return None


f32_static = all_of(tensor_types(("f32",), static=True), ranked)
f32 = all_of(tensor_types(("f32",)), ranked)  # dynamic dims too: sizes are kernel arguments
f32_plain = all_of(f32, plain_layout)


# --- the hook --------------------------------------------------------------------------


def codegen(region: RegionView, options: CodegenOptions) -> LinkedArtifact:
    """Writes one C function per unit of ``region`` (see the module docstring).

    Raises:
        CodegenError: the region holds an op kind or form ccompiler does not emit; the
            toolkit puts the region back on the host and reports the message.
    """
    return _RegionEmitter(region, options).run()


class _RegionEmitter:
    """Tracks where each tensor comes from while the region's kernels are written."""

    def __init__(self, region: RegionView, options: CodegenOptions):
        self.region = region
        self.options = options
        self.cfile = CFile(region.name)
        self.args = {v: i for i, v in enumerate(region.args)}
        # dynamic dims: each a product of input sizes D<k>, which kernels take as arguments
        self.shapes = symbolic.infer(region)
        self.inputs_dims = symbolic.input_dims(region)
        # (every dynamic input size: the dispatch sizes each binding by its own)
        inputs = region.inputs
        self.sizes = [k for k, (i, a) in enumerate(self.inputs_dims) if inputs[i].shape[a] is None]
        self.produced: dict[ir.Value, ValueRef] = {}
        self.sources: dict[ir.Value, Source] = {}
        self.splats: dict[ir.Value, float] = {}
        for rop in region.ops:  # fills of a constant scalar are splats, read for free
            if rop.kind == _FILL:
                value = region.constants.get(rop.op.operands[0])
                if value is not None and value.ndim == 0:
                    self.splats[rop.op.results[0]] = float(value)

    def dims(self, value: ir.Value) -> tuple[CDim, ...]:
        """``value``'s dims in the C: a dynamic one as an expression of sizes ``D<k>``."""
        shape = self.shapes.shape(value)
        return tuple(d.c("D{}") if isinstance(d, Sym) else d for d in shape)

    def _result_sizes(self, value: ir.Value) -> list[tuple[int, int] | None]:
        """Each dynamic dim of a kernel result as the (input, axis) whose size it has."""
        out: list[tuple[int, int] | None] = []
        for d in self.shapes.shape(value):
            if isinstance(d, Sym) and (d.coef != 1 or len(d.vars) != 1):
                raise CodegenError(
                    f"{self.region.name}: a result dimension {d.c()} (a product of input sizes)"
                )
            out.append(self.inputs_dims[d.vars[0]] if isinstance(d, Sym) else None)
        return out

    def resolve(self, value: ir.Value) -> Source:
        src = self.sources.get(value)
        if src is None:
            src = self._source(value)
            self.sources[value] = src
        return src

    def _source(self, value: ir.Value) -> Source:
        spec = TensorSpec.of(value.type)
        if value in self.splats:
            return Source(spec, splat=self.splats[value])
        if value in self.produced:
            return Source(spec, ref=self.produced[value])
        if value in self.args:
            return Source(spec, ref=ValueRef.arg(self.args[value]))
        array = self.region.constants.get(value)
        if array is not None:
            flat = array.reshape(-1)
            if flat.size and bool(np.all(flat == flat[0])):
                return Source(spec, splat=float(flat[0]))
            return Source(spec, constant=self.cfile.constant(array))
        owner = value.owner
        what = owner.operation.name if isinstance(owner, ir.OpView) else "a block argument"
        raise CodegenError(f"{self.region.name}: a kernel reads a tensor defined by {what}")

    def run(self) -> LinkedArtifact:
        kernels: list[Kernel] = []
        outputs = set(self.region.results)
        for unit in self._units_in_dependency_order():
            head = unit[0]
            if head.kind == _FILL and len(unit) == 1 and head.op.results[0] not in outputs:
                continue  # folded into its consumers as a splat
            symbol = f"{self.region.symbol}_k{len(kernels)}"
            result = unit[-1].op.results[0]
            kernels.append(self._kernel(unit, symbol, len(kernels)))
            self.produced[result] = ValueRef.kernel(len(kernels) - 1, 0)
        refs = []
        for value in self.region.results:
            if value in self.produced:
                refs.append(self.produced[value])
            elif value in self.args:
                refs.append(ValueRef.arg(self.args[value]))
            else:
                raise CodegenError(f"{self.region.name}: an output is not computed by a kernel")
        if not kernels:
            raise CodegenError(f"{self.region.name}: nothing to compute")
        return LinkedArtifact(kernels=kernels, outputs=refs, c_source=self.cfile.render())

    def _units_in_dependency_order(self) -> list[list[RegionOp]]:
        """Units ordered by their last member: only a unit's last result leaves it, so a
        unit reading another's result comes after it (members may interleave)."""
        position = {id(rop): i for i, rop in enumerate(self.region.ops)}
        units = self.region.units()
        used_by: dict[ir.Value, set[int]] = {}
        for u, unit in enumerate(units):
            for rop in unit:
                for v in rop.op.operands:
                    used_by.setdefault(v, set()).add(u)
        outputs = set(self.region.results)
        for u, unit in enumerate(units):
            for rop in unit[:-1]:
                for r in rop.op.results:
                    if r in outputs or used_by.get(r, {u}) != {u}:
                        raise CodegenError(
                            f"{rop.op.location}: {rop.kind_name} is fused, but its result "
                            "is used outside its composite"
                        )
        return sorted(units, key=lambda unit: position[id(unit[-1])])

    def _kernel(self, unit: list[RegionOp], symbol: str, k: int) -> Kernel:
        head = unit[0]
        rest = [(r.op, r.kind_name) for r in unit[1:]]
        spec = TensorSpec.of(unit[-1].op.results[0].type)
        names = " -> ".join(r.kind_name for r in unit)
        title = f"{head.composite.name} ({names})" if head.composite is not None else names
        if head.composite is not None and head.composite.name.startswith("q"):
            w = KernelWriter(self.cfile, symbol, self.resolve, **self._dynamic)
            extent = quantized.emit_unit(w, unit)
        elif head.kind == _FILL and not rest:
            w = KernelWriter(self.cfile, symbol, self.resolve, flat=True, **self._dynamic)
            value = self.splats.get(head.op.results[0])
            if value is None:
                raise CodegenError(f"{head.op.location}: fill value is not a constant scalar")
            extent = -(-emit_fill(w, head.op.results[0], value) // _FLAT_GRAIN)
        elif isinstance(head.kind, str) and head.kind in ANCHORS and _all_elementwise(unit[1:]):
            w = KernelWriter(self.cfile, symbol, self.resolve, **self._dynamic)
            extent = ANCHORS[head.kind](w, head.op, rest)
        elif _all_elementwise(unit):
            members = [(r.op, r.kind_name) for r in unit]
            flat = flat_ok([m for m, _ in members], self.resolve)
            w = KernelWriter(self.cfile, symbol, self.resolve, flat=flat, **self._dynamic)
            extent = emit_elementwise(w, members)
            extent = -(-extent // _FLAT_GRAIN) if flat else extent
        else:
            raise CodegenError(
                f"{head.op.location}: ccompiler cannot generate code for {names} "
                f"(it emits matmul, batch_matmul, conv2d, fill and "
                f"{'/'.join(e.name for e in ELEMENTWISE)} generics)"
            )
        if not spec.is_static:  # the extent is known at run time: a workgroup per quarter core
            extent = self.options.threads * 4
        workgroups = max(1, min(self.options.threads * 4, extent))
        doc = [
            f"Kernel {k}: {title} -> {spec.mlir}.",
            f"Declared with {workgroups} workgroups; any count works.",
        ]
        self.cfile.add_kernel(w.render(doc))
        result = unit[-1].op.results[0]
        sizes = [self.inputs_dims[d] for d in self.sizes]
        result_sizes = None if spec.is_static else [self._result_sizes(result)]
        return Kernel(symbol, list(w.params), [spec], workgroups, sizes, result_sizes)

    @property
    def _dynamic(self) -> dict[str, Any]:
        """The writer's arguments for dynamic dims (none when the region is static)."""
        if not self.shapes.dynamic:
            return {}
        return {"dims_of": self.dims, "sizes": self.sizes}


def _all_elementwise(unit: list[RegionOp]) -> bool:
    return all(r.kind in ELEMENTWISE for r in unit)


# --- the backend -----------------------------------------------------------------------

BACKEND = Backend(
    "ccompiler",
    "reference C codegen (linked route): f32 matmul, conv2d, fill, elementwise, fused",
    codegen=codegen,
    in_process_safe=True,  # in-tree and tested: its hook runs in process by default
)

BACKEND.supports(*CONTRACTIONS, check=f32_plain)
BACKEND.supports(linalg.FillOp, *ELEMENTWISE, check=f32)
BACKEND.supports(*CONVS, check=f32_static)

_EPILOGUES = {  # name: (pattern around the anchor, benefit)
    "bias_relu": (lambda a: op(RELU, op(BIAS_ADD, a, ANY)), 3),
    "bias_clamp": (lambda a: op(CLAMP, op(BIAS_ADD, a, ANY)), 3),
    "bias": (lambda a: op(BIAS_ADD, a, ANY), 2),
    "relu": (lambda a: op(RELU, a), 2),
    "clamp": (lambda a: op(CLAMP, a), 2),
}
for _epilogue, (_wrap, _benefit) in _EPILOGUES.items():
    for _conv in CONVS:
        _layout = _conv.OPERATION_NAME.removeprefix("linalg.conv_2d_")
        BACKEND.composite(
            f"conv2d_{_epilogue}_{_layout}",
            _wrap(op(_conv, name="conv")),
            benefit=_benefit,
            check=f32_static,
        )
    for _mm, _name in ((linalg.MatmulOp, "matmul"), (linalg.BatchMatmulOp, "batch_matmul")):
        BACKEND.composite(
            f"{_name}_{_epilogue}", _wrap(op(_mm, name="matmul")), benefit=_benefit, check=f32_plain
        )

# quantized units (dequantize -> [pad] -> conv / [collapse] -> matmul -> [bias] -> quantize):
# reference int8 kernels with int32 sums (see quantized.py)
quantized_units(
    BACKEND, linalg.Conv2DNchwFchwOp, "conv2d", quantized.int8_unit, through=[tensor.PadOp],
    suffix="_nchw_fchw", weights=True,
)  # fmt: skip
quantized_units(
    BACKEND, linalg.MatmulOp, "matmul", quantized.int8_unit, through=[tensor.CollapseShapeOp],
    weights=True,
)  # fmt: skip
