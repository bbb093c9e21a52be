"""Random dataflow graphs for differential fuzzing, and numpy's answer for each.

A `Graph` is a list of values in program order: arguments, constants and op results.
Each op reads earlier values. The generator (`generate`, seeded) makes the shapes users
bring: chains, fan-out (one value read by several ops), shared weights (one constant or
argument read by several matmuls), residual adds (a value meets a later one), several
results, rank-0 values (scalar arguments and constants, reductions to a scalar) and
broadcasts; element types f32, f16 and i32. `evaluate` is the independent reference:
numpy, op by op, rounding to the element type after each op (f16 computed in f32).

Graphs are plain data (`to_json` / `from_json`) so a failing case can be saved, shrunk
and replayed; `byoc_mlir.fuzz.emit` writes one as linalg, TOSA or ONNX.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

DTYPES = {"f32": np.float32, "f16": np.float16, "i32": np.int32}
UNARY = ("relu", "tanh", "exp", "neg", "abs")
BINARY = ("add", "sub", "mul", "max")
FLOAT_ONLY = frozenset({"tanh", "exp", "conv"})
OPS = (*UNARY, *BINARY, "matmul", "bmm", "conv", "sum", "transpose")


@dataclass(frozen=True)
class Val:
    """One value: ``kind`` is ``arg``, ``const`` or an op name (`OPS`)."""

    kind: str
    shape: tuple[int, ...]
    inputs: tuple[int, ...] = ()
    attrs: tuple[int, ...] = ()  # conv: stride, pad, dilation; sum: axis; transpose: perm
    data: tuple[float, ...] = ()  # a constant's elements, flattened


@dataclass(frozen=True)
class Graph:
    """A random model: ``values`` in program order, ``outputs`` (indices) returned."""

    dtype: str
    values: tuple[Val, ...]
    outputs: tuple[int, ...]
    seed: int = 0
    notes: tuple[str, ...] = field(default=())

    @property
    def args(self) -> list[int]:
        return [i for i, v in enumerate(self.values) if v.kind == "arg"]

    @property
    def n_ops(self) -> int:
        return sum(v.kind not in ("arg", "const") for v in self.values)

    def const(self, i: int) -> np.ndarray:
        v = self.values[i]
        return np.array(v.data, dtype=DTYPES[self.dtype]).reshape(v.shape)

    def inputs(self, seed: int = 0) -> list[np.ndarray]:
        """Seeded arguments: floats in [-1, 1), integers in [-4, 4]."""
        rng = np.random.default_rng(seed)
        out = []
        for i in self.args:
            shape = self.values[i].shape
            if self.dtype == "i32":
                out.append(rng.integers(-4, 5, size=shape).astype(np.int32))
            else:
                out.append(rng.uniform(-1, 1, size=shape).astype(DTYPES[self.dtype]))
        return out

    def to_json(self) -> str:
        return json.dumps(
            {
                "dtype": self.dtype,
                "seed": self.seed,
                "outputs": list(self.outputs),
                "values": [
                    {
                        "kind": v.kind,
                        "shape": list(v.shape),
                        "inputs": list(v.inputs),
                        "attrs": list(v.attrs),
                        "data": list(v.data),
                    }
                    for v in self.values
                ],
            }
        )

    @staticmethod
    def from_json(text: str) -> Graph:
        d = json.loads(text)
        values = tuple(
            Val(
                v["kind"],
                tuple(v["shape"]),
                tuple(v["inputs"]),
                tuple(v["attrs"]),
                tuple(v["data"]),
            )
            for v in d["values"]
        )
        return Graph(d["dtype"], values, tuple(d["outputs"]), d.get("seed", 0))


def evaluate(g: Graph, args: list[np.ndarray]) -> list[np.ndarray]:
    """numpy's outputs of ``g`` on ``args`` (the independent reference)."""
    dt = DTYPES[g.dtype]
    work = np.float32 if g.dtype == "f16" else dt
    env: list[np.ndarray] = []
    feed = iter(args)
    with np.errstate(all="ignore"):
        for i, v in enumerate(g.values):
            if v.kind == "arg":
                env.append(np.asarray(next(feed)))
                continue
            if v.kind == "const":
                env.append(g.const(i))
                continue
            xs = [env[k].astype(work) for k in v.inputs]
            env.append(np.asarray(_apply(v, xs, work)).astype(dt).reshape(v.shape))
    return [env[k] for k in g.outputs]


def _apply(v: Val, xs: list[np.ndarray], work: Any) -> np.ndarray:
    k = v.kind
    if k in BINARY:
        a, b = xs
        return {"add": np.add, "sub": np.subtract, "mul": np.multiply, "max": np.maximum}[k](a, b)
    x = xs[0]
    if k == "relu":
        return np.maximum(x, work(0))
    if k in ("tanh", "exp"):
        return np.tanh(x) if k == "tanh" else np.exp(x)
    if k in ("neg", "abs"):
        return -x if k == "neg" else np.abs(x)
    if k in ("matmul", "bmm"):
        if work is np.int32:  # wrap like the compiled code, not numpy's object maths
            return np.matmul(x.astype(np.int64), xs[1].astype(np.int64)).astype(np.int32)
        return np.matmul(x, xs[1])
    if k == "sum":
        return np.sum(x, axis=v.attrs[0], dtype=work)
    if k == "transpose":
        return np.transpose(x, v.attrs)
    if k == "conv":
        return conv2d_nhwc(x, xs[1], *v.attrs)
    raise AssertionError(k)


def conv2d_nhwc(x: np.ndarray, w: np.ndarray, stride: int, pad: int, dil: int) -> np.ndarray:
    """NHWC input, HWCF weights, the same stride/padding/dilation on both axes."""
    n, h, wd, c = x.shape
    kh, kw, _, f = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    oh, ow = conv_out(h, kh, stride, pad, dil), conv_out(wd, kw, stride, pad, dil)
    out = np.zeros((n, oh, ow, f), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dil, i * dil + stride * (oh - 1) + 1, stride)
            cols = slice(j * dil, j * dil + stride * (ow - 1) + 1, stride)
            out += np.einsum("nhwc,cf->nhwf", xp[:, rows, cols, :], w[i, j])
    return out


def conv_out(size: int, k: int, stride: int, pad: int, dil: int) -> int:
    return (size + 2 * pad - dil * (k - 1) - 1) // stride + 1


class _Gen:
    def __init__(self, seed: int, dtype: str, family: str):
        self.r = random.Random(seed)
        self.np = np.random.default_rng(seed)
        self.dtype, self.family = dtype, family
        self.values: list[Val] = []
        self.shared: list[int] = []  # constants/args offered to several ops

    def add(self, v: Val) -> int:
        self.values.append(v)
        return len(self.values) - 1

    def leaf(self, shape: tuple[int, ...], share: bool = False) -> int:
        """A new argument or constant of ``shape`` (sometimes a shared one)."""
        same = [i for i in self.shared if self.values[i].shape == shape]
        if same and self.r.random() < 0.5:
            return self.r.choice(same)
        if self.r.random() < 0.5:
            i = self.add(Val("arg", shape))
        else:
            n = int(np.prod(shape, dtype=np.int64))
            if self.dtype == "i32":
                data = self.np.integers(-3, 4, size=n).astype(float)
            else:
                data = np.round(self.np.uniform(-1, 1, size=n), 3)
            i = self.add(Val("const", shape, data=tuple(float(x) for x in data)))
        if share or self.r.random() < 0.3:
            self.shared.append(i)
        return i

    def operand_like(self, shape: tuple[int, ...]) -> int:
        """A second operand broadcastable to ``shape``: same shape, trailing vector, scalar."""
        same = [
            i
            for i, v in enumerate(self.values)
            if v.shape == shape and v.kind not in ("arg", "const")
        ]
        roll = self.r.random()
        if same and roll < 0.35:
            return self.r.choice(same)  # a residual / diamond
        if shape and roll < 0.6:
            return self.leaf(shape[-1:])  # a bias-like vector
        if roll < 0.75:
            return self.leaf(())  # a rank-0 scalar
        return self.leaf(shape)

    def op(self, x: int) -> int | None:
        shape = self.values[x].shape
        kinds = [k for k in OPS if self.dtype != "i32" or k not in FLOAT_ONLY]
        if self.family == "tosa" and self.dtype == "i32":
            kinds = [k for k in kinds if k not in ("matmul", "bmm")]  # TOSA: no i32 matmul
        k = self.r.choice(kinds)
        if k in UNARY:
            return self.add(Val(k, shape, (x,)))
        if k in BINARY:
            y = self.operand_like(shape)
            if self.r.random() < 0.5:
                x, y = y, x
            out = np.broadcast_shapes(self.values[x].shape, self.values[y].shape)
            return self.add(Val(k, tuple(out), (x, y)))
        if k == "matmul" and len(shape) == 2:
            w = self.leaf((shape[1], self.r.choice((1, 3, 4, 8))), share=True)
            return self.add(Val(k, (shape[0], self.values[w].shape[1]), (x, w)))
        if k == "bmm" and len(shape) == 3:
            w = self.leaf((shape[0], shape[2], self.r.choice((2, 4, 5))), share=True)
            return self.add(Val(k, (*shape[:2], self.values[w].shape[2]), (x, w)))
        if k == "conv" and len(shape) == 4 and shape[3] <= 8:
            kk = self.r.choice((1, 2, 3))
            stride, pad, dil = self.r.choice((1, 2)), self.r.choice((0, 1)), self.r.choice((1, 2))
            if self.family == "tosa" and any(
                (s - 1 + 2 * pad - (kk - 1) * dil) % stride for s in shape[1:3]
            ):
                stride = 1  # TOSA wants the strided windows to tile the input exactly
            oh, ow = (conv_out(s, kk, stride, pad, dil) for s in shape[1:3])
            if oh < 1 or ow < 1:
                return None
            w = self.leaf((kk, kk, shape[3], self.r.choice((2, 3, 4))), share=True)
            f = self.values[w].shape[3]
            return self.add(Val(k, (shape[0], oh, ow, f), (x, w), (stride, pad, dil)))
        if k == "sum" and shape:
            axis = self.r.randrange(len(shape))
            return self.add(Val(k, shape[:axis] + shape[axis + 1 :], (x,), (axis,)))
        if k == "transpose" and len(shape) >= 2:
            perm = list(range(len(shape)))
            while perm == sorted(perm):
                self.r.shuffle(perm)
            return self.add(Val(k, tuple(shape[p] for p in perm), (x,), tuple(perm)))
        return None


def generate(seed: int, family: str = "linalg", min_ops: int = 3, max_ops: int = 25) -> Graph:
    """A random graph; the same seed and family give the same graph."""
    r = random.Random(seed)
    dtype = r.choices(("f32", "f16", "i32"), weights=(6, 2, 2))[0]
    gen = _Gen(seed, dtype, family)
    rank = r.choice((0, 1, 2, 2, 3, 3, 4, 4))
    shape = tuple(r.choice((1, 2, 3, 4, 5, 8)) for _ in range(rank))
    if rank == 4:
        shape = (shape[0] % 2 + 1, *shape[1:3], r.choice((1, 3, 4)))
    frontier = [gen.add(Val("arg", shape))]
    if r.random() < 0.4:
        frontier.append(gen.add(Val("arg", shape)))
    target = r.randint(min_ops, max_ops)
    tries = 0
    while sum(v.kind not in ("arg", "const") for v in gen.values) < target and tries < 20 * target:
        tries += 1
        # Mostly extend the newest value (chains); sometimes an older one (fan-out).
        produced = [i for i, v in enumerate(gen.values) if v.kind not in ("const",)]
        x = produced[-1] if r.random() < 0.6 else r.choice(produced)
        size = int(np.prod(gen.values[x].shape, dtype=np.int64))
        if size > 4096:
            continue
        gen.op(x)
    values = tuple(gen.values)
    used = {k for v in values for k in v.inputs}
    sinks = [i for i, v in enumerate(values) if i not in used and v.kind not in ("arg", "const")]
    extra = [
        i
        for i, v in enumerate(values)
        if v.kind not in ("arg", "const") and i not in sinks and r.random() < 0.1
    ]
    outputs = tuple(sorted(sinks + extra)) or (len(values) - 1,)
    return prune(Graph(dtype, values, outputs, seed))


def prune(g: Graph) -> Graph:
    """Drops values no output needs and renumbers (arguments kept only if read)."""
    live: set[int] = set()
    work = list(g.outputs)
    while work:
        i = work.pop()
        if i not in live:
            live.add(i)
            work.extend(g.values[i].inputs)
    order = sorted(live)
    index = {old: new for new, old in enumerate(order)}
    values = tuple(
        replace(g.values[i], inputs=tuple(index[k] for k in g.values[i].inputs)) for i in order
    )
    if not any(v.kind == "arg" for v in values):  # a model needs an input
        values = (Val("arg", (1,)), *values)
        index = {old: new + 1 for old, new in index.items()}
        values = (values[0],) + tuple(
            replace(v, inputs=tuple(k + 1 for k in v.inputs)) for v in values[1:]
        )
    outputs = tuple(dict.fromkeys(index[k] for k in g.outputs))
    return replace(g, values=values, outputs=outputs)
