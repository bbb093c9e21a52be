"""C emitters of the ``ccompiler`` backend: generic bodies, elementwise kernels, fills.

The generated C is the template a vendor copies, so it favours plain loops over
cleverness. Each kernel splits its outermost parallel loop into ``workgroup_count``
contiguous chunks. ``linalg.generic`` bodies are translated op by op, and operands are
indexed through the generic's indexing maps, so a bias broadcast along any dimension is
read correctly without special cases. Matmuls and convolutions are in `anchors`.
"""

from __future__ import annotations

from collections.abc import Sequence

from iree.compiler import ir
from iree.compiler.dialects import arith

from byoc_mlir.backends.ccompiler.writer import (
    CDim,
    CodegenError,
    KernelWriter,
    Resolver,
    c_float,
    c_product,
)
from byoc_mlir.codegen.hook import TensorSpec, constant_array
from byoc_mlir.linalg_ops import linalg

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


def indexing_maps(op: ir.Operation) -> list[ir.AffineMap]:
    return [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(op.attributes["indexing_maps"])]


def map_dims(m: ir.AffineMap) -> list[int]:
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
    return m.n_dims == rank and map_dims(m) == list(range(rank))


def check_elementwise(op: ir.Operation, spec: TensorSpec) -> None:
    """Guards what the loop emitters rely on: parallel, identity output, shape ``spec``."""
    iters = [str(it) for it in ir.ArrayAttr(op.attributes["iterator_types"])]
    if any("parallel" not in it for it in iters):
        raise CodegenError(f"{op.location}: a fused generic must be all-parallel")
    if len(op.results) != 1 or TensorSpec.of(op.results[0].type) != spec:
        raise CodegenError(f"{op.location}: a fused generic must produce {spec.mlir}")
    if not is_identity(indexing_maps(op)[-1], len(spec.shape)):
        raise CodegenError(f"{op.location}: the generic's output map must be the identity")


def flat_ok(members: Sequence[ir.Operation], resolve: Resolver) -> bool:
    """Whether every tensor the members read from outside is read at the output index
    (so a flat loop over elements works): identity maps, or a splat."""
    inside = {r for m in members for r in m.results}
    for m in members:
        maps = indexing_maps(m)
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
        maps = indexing_maps(op)
        rank = len(maps[-1].results)
        inputs = []
        for i, v in enumerate(list(op.operands)[: _n_inputs(op)]):
            if v in known:
                if not is_identity(maps[i], rank):
                    raise CodegenError(f"{op.location}: a fused value must be read in place")
                inputs.append(known[v])
                continue
            positions = map_dims(maps[i])
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
    result = members[-1][0].results[0]
    spec = TensorSpec.of(result.type)
    for op, _ in members:
        check_elementwise(op, spec)
    shape = w.dims(result)
    out = w.output(spec, shape=shape)
    size = c_product(shape)
    if w.flat:
        w.chunk(size, "elements (all operands are read at the output's index)")
        with w.loop("e", "end", "begin"):
            v = emit_members(w, members, ["e"], {})
            w.line(f"{out.at('e')} = {v};")
        return size if isinstance(size, int) else 0
    rank = len(shape)
    rows = c_product(shape[:-1])
    w.chunk(rows, "rows (all dims but the last)")
    dims = [f"d{i}" for i in range(rank)]
    with w.loop("row", "end", "begin"):
        parts: list[str] = []
        stride: CDim = 1
        for i in reversed(range(rank - 1)):  # row = ((d0 * D1) + d1) * D2 + d2 ...
            div = f"row / {stride}" if isinstance(stride, str) or stride > 1 else "row"
            parts.append(f"{dims[i]} = {div} % {shape[i]}" if i else f"{dims[i]} = {div}")
            stride = c_product([stride, shape[i]])
        if parts:
            w.line("const size_t " + ", ".join(reversed(parts)) + ";")
        with w.loop(dims[-1], shape[-1]):
            v = emit_members(w, members, dims, {})
            w.line(f"{out.at(*dims)} = {v};")
    return rows if isinstance(rows, int) else 0


def emit_fill(w: KernelWriter, result: ir.Value, value: float) -> int:
    """``result`` filled with ``value``; returns the extent the workgroups split (0 when
    dynamic)."""
    shape = w.dims(result)
    out = w.output(TensorSpec.of(result.type), shape=shape)
    size = c_product(shape)
    w.chunk(size, "elements")
    with w.loop("e", "end", "begin"):
        w.line(f"{out.at('e')} = {c_float(value)};")
    return size if isinstance(size, int) else 0
