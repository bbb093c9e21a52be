"""Shared helpers for the pytest suite: build linalg IR, partition it, run it with IREE.

Everything a test file needs to make IR or check it lives here, once:

- `FuncBuilder` writes a ``func.func @main`` of linalg-on-tensors as MLIR text (matmul
  with fill, bias-add/relu/clamp/tanh/exp/add/mul/sub generics, or any raw generic for
  recogniser near misses);
- `parse`, `partitioned`, `run_passes` make modules, each in a fresh context;
- `functions`, `body_ops`, `compute_signature` inspect them;
- `contract_regions` is an independent cycle checker (it does not use byoc_mlir.dataflow);
- `run_with_iree` compiles (cached per text) and runs a module on numpy inputs;
- fixtures `toy` (a registered `toys.Toy` backend, behaviour = the parameter) and
  `model_file` (the toys' add -> tanh -> add model on disk).

Hypothesis runs derandomized with no example database, so CI is deterministic (it still
keeps a cache of source constants in the gitignored ``.hypothesis/``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from iree.compiler import ir
from toys import Toy, model

from byoc_mlir import PartitionOptions, partition
from byoc_mlir.codegen import registry
from byoc_mlir.dialects import byoc
from byoc_mlir.passes import ModulePass

settings.register_profile(
    "byoc-ci",
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("byoc-ci")

T44 = "tensor<4x4xf32>"
VEC4 = "tensor<4xf32>"
ID2 = "affine_map<(d0, d1) -> (d0, d1)>"
ROW2 = "affine_map<(d0, d1) -> (d1)>"

FREE_OPS = frozenset({"arith.constant", "tensor.empty"})
FUNC_OPS = frozenset({"func.func", "util.func"})
CALL_OPS = frozenset({"func.call", "util.call"})
TERMINATORS = frozenset({"func.return", "util.return"})

_TENSOR = re.compile(r"^tensor<((?:\d+x)*)(\w+)>$")


def tensor_shape(type_text: str) -> tuple[tuple[int, ...], str]:
    """``tensor<4x8xf32>`` -> ((4, 8), "f32")."""
    m = _TENSOR.match(type_text)
    if m is None:
        raise ValueError(f"not a static tensor type: {type_text}")
    dims = tuple(int(d) for d in m.group(1).split("x") if d)
    return dims, m.group(2)


def tensor_type(shape: Sequence[int], element: str = "f32") -> str:
    return "tensor<" + "".join(f"{d}x" for d in shape) + element + ">"


class FuncBuilder:
    """Writes one function of linalg-on-tensors as MLIR text, op by op.

    Each method appends ops and returns the SSA name of the new value. Generic bodies use
    block arguments ``%i0, %i1, ...`` (inputs) and ``%o`` (output), names never used at
    function level, so sibling generics and the function body cannot clash.

    Args:
        arg_types: the function's argument types, e.g. ``"tensor<4x4xf32>"``.
        name: the function's symbol.
        flavor: ``"func"`` (``func.func``) or ``"util"`` (IREE's ``util.func``, what
            ``iree-compile --compile-to=input`` produces).
    """

    def __init__(self, *arg_types: str, name: str = "main", flavor: str = "func"):
        if flavor not in ("func", "util"):
            raise ValueError(flavor)
        self.name = name
        self.flavor = flavor
        self.args = [f"%arg{i}" for i in range(len(arg_types))]
        self.types: dict[str, str] = dict(zip(self.args, arg_types, strict=True))
        self.lines: list[str] = []
        self._count = 0

    # --- plumbing ----------------------------------------------------------------------

    def _fresh(self, prefix: str = "v") -> str:
        self._count += 1
        return f"%{prefix}{self._count}"

    def _emit(self, result: str, type_text: str, line: str) -> str:
        self.lines.append(f"{result} = {line}")
        self.types[result] = type_text
        return result

    def constant(self, value: float, element: str = "f32") -> str:
        """A scalar ``arith.constant`` at function level."""
        return self._emit(self._fresh("c"), element, f"arith.constant {value!r} : {element}")

    def weights(self, type_text: str) -> str:
        """A non-splat dense ``arith.constant`` (0, 1, 2, ... row-major), like model weights."""
        shape, element = tensor_shape(type_text)
        values = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
        literal = np.array2string(values, separator=", ", threshold=10**9).replace("\n", "")
        return self._emit(
            self._fresh("w"), type_text, f"arith.constant dense<{literal}> : {type_text}"
        )

    def empty(self, type_text: str) -> str:
        return self._emit(self._fresh("e"), type_text, f"tensor.empty() : {type_text}")

    # --- named ops ---------------------------------------------------------------------

    def fill(self, value: float, type_text: str) -> str:
        _, element = tensor_shape(type_text)
        c = self.constant(value, element)
        e = self.empty(type_text)
        return self._emit(
            self._fresh(),
            type_text,
            f"linalg.fill ins({c} : {element}) outs({e} : {type_text}) -> {type_text}",
        )

    def matmul(self, a: str, b: str) -> str:
        """``linalg.matmul`` into a zero ``linalg.fill`` (what frontends emit)."""
        (m, _k), element = tensor_shape(self.types[a])
        (_k2, n), _ = tensor_shape(self.types[b])
        out_type = tensor_type((m, n), element)
        acc = self.fill(0.0, out_type)
        ta, tb = self.types[a], self.types[b]
        return self._emit(
            self._fresh(),
            out_type,
            f"linalg.matmul ins({a}, {b} : {ta}, {tb}) outs({acc} : {out_type}) -> {out_type}",
        )

    # --- generics ----------------------------------------------------------------------

    def generic(
        self,
        ins: Sequence[str],
        body: Sequence[str],
        *,
        maps: Sequence[str] | None = None,
        iterators: Sequence[str] | None = None,
        out_type: str | None = None,
    ) -> str:
        """A raw ``linalg.generic``; ``body`` lines end with ``linalg.yield``.

        Defaults: identity maps, all-parallel iterators, the first input's type as output.
        """
        out_type = out_type or self.types[ins[0]]
        shape, element = tensor_shape(out_type)
        rank = len(shape)
        dims = ", ".join(f"d{i}" for i in range(rank))
        identity = f"affine_map<({dims}) -> ({dims})>"
        maps = list(maps) if maps is not None else [identity] * (len(ins) + 1)
        iterators = list(iterators) if iterators is not None else ["parallel"] * rank
        out = self.empty(out_type)
        in_types = ", ".join(self.types[v] for v in ins)
        block_args = [f"%i{k}: {tensor_shape(self.types[v])[1]}" for k, v in enumerate(ins)]
        block_args.append(f"%o: {element}")
        iters = ", ".join(f'"{it}"' for it in iterators)
        text = (
            f"linalg.generic {{indexing_maps = [{', '.join(maps)}], iterator_types = [{iters}]}}"
            f" ins({', '.join(ins)} : {in_types}) outs({out} : {out_type}) {{\n"
            f"  ^bb0({', '.join(block_args)}):\n"
            + "".join(f"    {line}\n" for line in body)
            + f"  }} -> {out_type}"
        )
        return self._emit(self._fresh(), out_type, text)

    def binary(self, arith_op: str, a: str, b: str, *, swap: bool = False) -> str:
        """Elementwise ``arith.<arith_op>`` of two same-shape tensors (identity maps)."""
        element = tensor_shape(self.types[a])[1]
        lhs, rhs = ("%i1", "%i0") if swap else ("%i0", "%i1")
        return self.generic(
            [a, b],
            [f"%r = arith.{arith_op} {lhs}, {rhs} : {element}", f"linalg.yield %r : {element}"],
        )

    def add(self, a: str, b: str) -> str:
        return self.binary("addf", a, b)

    def sub(self, a: str, b: str) -> str:
        return self.binary("subf", a, b)

    def mul(self, a: str, b: str) -> str:
        return self.binary("mulf", a, b)

    def bias_add(self, x: str, bias: str) -> str:
        """``x + bias`` with the 1-D bias broadcast along rows: ``(d0, d1) -> (d1)``."""
        element = tensor_shape(self.types[x])[1]
        return self.generic(
            [x, bias],
            [f"%r = arith.addf %i0, %i1 : {element}", f"linalg.yield %r : {element}"],
            maps=[ID2, ROW2, ID2],
        )

    def unary(self, scalar_op: str, x: str) -> str:
        """Elementwise ``<scalar_op> %x`` (``math.tanh``, ``math.exp``: unsupported by testing)."""
        element = tensor_shape(self.types[x])[1]
        return self.generic(
            [x], [f"%r = {scalar_op} %i0 : {element}", f"linalg.yield %r : {element}"]
        )

    def tanh(self, x: str) -> str:
        return self.unary("math.tanh", x)

    def exp(self, x: str) -> str:
        return self.unary("math.exp", x)

    def relu(
        self, x: str, *, form: str = "max", zero: float = 0.0, outer_const: bool = True
    ) -> str:
        """``max(x, 0)``: ``form="max"`` (arith.maximumf) or ``"torch"`` (cmpf ugt + select).

        ``zero`` replaces the constant (a near miss when nonzero); ``outer_const`` puts the
        constant at function level, captured by the body, as torch-mlir does.
        """
        element = tensor_shape(self.types[x])[1]
        if outer_const:
            z, body = self.constant(zero, element), []
        else:
            z, body = "%z", [f"%z = arith.constant {zero!r} : {element}"]
        if form == "max":
            body += [f"%r = arith.maximumf %i0, {z} : {element}"]
        elif form == "torch":
            body += [
                f"%p = arith.cmpf ugt, %i0, {z} : {element}",
                f"%r = arith.select %p, %i0, {z} : {element}",
            ]
        else:
            raise ValueError(form)
        return self.generic([x], [*body, f"linalg.yield %r : {element}"])

    def clamp(
        self, x: str, lo: float, hi: float, *, max_first: bool = True, outer_const: bool = True
    ) -> str:
        """``min(max(x, lo), hi)`` (``max_first``) or ``max(min(x, hi), lo)``.

        ``outer_const`` puts the bounds at function level (else inside the body).
        """
        element = tensor_shape(self.types[x])[1]
        first, second = ("maximumf", "minimumf") if max_first else ("minimumf", "maximumf")
        b1, b2 = (lo, hi) if max_first else (hi, lo)
        if outer_const:
            c1, c2, body = self.constant(b1, element), self.constant(b2, element), []
        else:
            c1, c2 = "%b1", "%b2"
            body = [
                f"%b1 = arith.constant {b1!r} : {element}",
                f"%b2 = arith.constant {b2!r} : {element}",
            ]
        body += [
            f"%t = arith.{first} %i0, {c1} : {element}",
            f"%r = arith.{second} %t, {c2} : {element}",
        ]
        return self.generic([x], [*body, f"linalg.yield %r : {element}"])

    # --- finishing ---------------------------------------------------------------------

    def build(self, *results: str) -> str:
        """The function's text (a module of one function) returning ``results``."""
        args = ", ".join(f"{a}: {self.types[a]}" for a in self.args)
        rtypes = ", ".join(self.types[r] for r in results)
        body = "".join(f"  {line}\n" for line in self.lines)
        head, ret = (
            ("func.func", "return")
            if self.flavor == "func"
            else ("util.func public", "util.return")
        )
        ret_line = f"  {ret} {', '.join(results)} : {rtypes}\n" if results else f"  {ret}\n"
        return f"{head} @{self.name}({args}) -> ({rtypes}) {{\n{body}{ret_line}}}\n"


def mlp_text(layers: int = 2, *, relu_form: str = "max", flavor: str = "func") -> str:
    """A matmul -> bias-add -> relu MLP on 4x4 tensors (one region for `testing`)."""
    fb = FuncBuilder(T44, *([T44, VEC4] * layers), flavor=flavor)
    x = fb.args[0]
    for k in range(layers):
        w, b = fb.args[1 + 2 * k], fb.args[2 + 2 * k]
        x = fb.relu(fb.bias_add(fb.matmul(x, w), b), form=relu_form)
    return fb.build(x)


def diamond_text() -> str:
    """``m = a@b; y = add(tanh(m), relu(m))``: merging m, relu, add would form a cycle."""
    fb = FuncBuilder(T44, T44)
    m = fb.matmul(*fb.args)
    return fb.build(fb.add(fb.tanh(m), fb.relu(m)))


# --- modules -----------------------------------------------------------------------------


def parse(text: str) -> ir.Module:
    """Parses ``text`` in a fresh context (IREE registers every dialect we use)."""
    return ir.Module.parse(text, context=ir.Context())


def partitioned(
    text: str,
    backends: Sequence[object] = ("testing",),
    options: PartitionOptions | None = None,
) -> ir.Module:
    """Parses ``text`` and runs `byoc_mlir.partition` on it (without an ambient context)."""
    module = parse(text)
    partition(module.operation, list(backends), options)  # type: ignore[arg-type]
    return module


def run_passes(text: str, passes: Iterable[ModulePass]) -> ir.Module:
    """Parses ``text`` and applies ``passes`` in order."""
    module = parse(text)
    with module.context:
        for p in passes:
            p.apply(module.operation)
    return module


def functions(module: ir.Module) -> dict[str, ir.Operation]:
    """Top-level function-like ops by symbol name."""
    out = {}
    for op in module.body.operations:
        op = op.operation
        if op.name in FUNC_OPS:
            out[ir.StringAttr(op.attributes["sym_name"]).value] = op
    return out


def outlined(module: ir.Module) -> dict[str, ir.Operation]:
    """The outlined functions (those tagged ``byoc.target``) by name."""
    return {n: f for n, f in functions(module).items() if byoc.get_target(f) is not None}


def body_ops(func: ir.Operation) -> list[ir.Operation]:
    """Top-level ops of a function body, terminator included."""
    return [o.operation for o in func.regions[0].blocks[0].operations]


def callee(call: ir.Operation) -> str:
    return ir.FlatSymbolRefAttr(call.attributes["callee"]).value


def calls(func: ir.Operation) -> list[str]:
    """Callees of the function's top-level calls, in order."""
    return [callee(o) for o in body_ops(func) if o.name in CALL_OPS]


def compute_signature(op: ir.Operation) -> str:
    """An op's kind for counting: its name, plus the body's op names for a generic."""
    if op.name != "linalg.generic":
        return op.name
    inner = [o.operation.name for o in op.regions[0].blocks[0].operations]
    return "linalg.generic[" + ",".join(inner[:-1]) + "]"


def compute_ops(module: ir.Module) -> Counter[str]:
    """Compute ops (not free ops, calls or terminators) of every function, by kind."""
    counts: Counter[str] = Counter()
    skip = FREE_OPS | CALL_OPS | TERMINATORS
    for func in functions(module).values():
        for op in body_ops(func):
            if op.name not in skip:
                counts[compute_signature(op)] += 1
    return counts


def contract_regions(func: ir.Operation) -> tuple[dict[object, set[object]], list[object]]:
    """The dataflow graph of ``func`` with each (byoc.target, byoc.region) contracted.

    Independent of byoc_mlir.dataflow: nodes are top-level ops (region members become one
    node ``("region", backend, id)``), edges run from each value's producer to every op
    whose body (nested regions included) reads it. Returns (successors, topological order
    or the partial order when a cycle stops it).
    """
    ops = body_ops(func)[:-1]
    node_of: dict[ir.Operation, object] = {}
    for k, op in enumerate(ops):
        tag = byoc.get_region(op)
        node_of[op] = ("region", *tag) if tag is not None else ("op", k)
    producer: dict[ir.Value, object] = {}
    for op in ops:
        for r in op.results:
            producer[r] = node_of[op]

    def operands_deep(op: ir.Operation) -> Iterable[ir.Value]:
        yield from op.operands
        for region in op.regions:
            for block in region.blocks:
                for inner in block.operations:
                    yield from operands_deep(inner.operation)

    succs: dict[object, set[object]] = {n: set() for n in node_of.values()}
    for op in ops:
        me = node_of[op]
        for v in operands_deep(op):
            p = producer.get(v)
            if p is not None and p != me:
                succs[p].add(me)
    indeg = {n: 0 for n in succs}
    for ss in succs.values():
        for s in ss:
            indeg[s] += 1
    ready = [n for n, d in indeg.items() if d == 0]
    order: list[object] = []
    while ready:
        n = ready.pop()
        order.append(n)
        for s in succs[n]:
            indeg[s] -= 1
            if indeg[s] == 0:
                ready.append(s)
    return succs, order


# --- running with IREE ---------------------------------------------------------------------


@lru_cache(maxsize=64)
def compile_vmfb(text: str) -> bytes:
    """Compiles MLIR text for llvm-cpu (host CPU); cached because each compile costs ~0.35 s."""
    from iree.compiler import compile_str

    return compile_str(
        text, target_backends=["llvm-cpu"], extra_args=["--iree-llvmcpu-target-cpu=host"]
    )


def run_with_iree(text: str, inputs: Sequence[np.ndarray], entry: str = "main") -> list[np.ndarray]:
    """Compiles ``text`` and calls ``@entry`` on ``inputs``; returns the outputs as arrays."""
    import iree.runtime as rt

    ctx = rt.SystemContext(config=rt.Config("local-sync"))
    ctx.add_vm_module(rt.VmModule.copy_buffer(ctx.instance, compile_vmfb(text)))
    out = ctx.modules.module[entry](*inputs)
    outs = out if isinstance(out, list | tuple) else [out]
    # np.asarray views the device buffer without keeping it alive: once ``ctx`` is gone
    # the memory is reused (seen as garbage in the next run). Copy while it is valid.
    return [np.asarray(o).copy() for o in outs]


def random_inputs(text: str, seed: int = 0, entry: str = "main") -> list[np.ndarray]:
    """Seeded inputs in [-1, 1) for ``@entry``'s tensor arguments."""
    module = parse(text)
    func = functions(module)[entry]
    ftype = ir.FunctionType(ir.TypeAttr(func.attributes["function_type"]).value)
    rng = np.random.default_rng(seed)
    dtypes = {"f32": np.float32, "f64": np.float64}
    out = []
    for t in ftype.inputs:
        shape, element = tensor_shape(str(t))
        out.append(rng.uniform(-1.0, 1.0, size=shape).astype(dtypes[element]))
    return out


def assert_same_numerics(original: str, partitioned_text: str, seed: int = 0) -> None:
    """Runs both modules with IREE on the same seeded inputs; outputs must agree."""
    inputs = random_inputs(original, seed)
    expected = run_with_iree(original, inputs)
    actual = run_with_iree(partitioned_text, inputs)
    assert len(actual) == len(expected)
    for e, a in zip(expected, actual, strict=True):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5)


@pytest.fixture
def toy(request: pytest.FixtureRequest) -> Iterator[Toy]:
    t = Toy(f"toy_{request.param}", request.param)
    registry.register(t.backend)
    yield t
    registry.unregister(t.backend.name)


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.mlir"
    path.write_text(model())
    return path
