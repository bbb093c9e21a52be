"""The run-time half of ``jsonrt``: a JSON graph executed with numpy.

`jsonrt` is byoc_mlir's analogue of TVM's JSON runtime (the "runtime route"): codegen
writes the region as a small graph (`byoc_mlir.backends.jsonrt.backend`), and at run time `load`
turns that payload into a callable over numpy arrays, served to the compiled module as
a VM import. This module needs numpy only — not the compiler — so a deployment can run
payloads without ``iree.compiler``.

**Payload format** (``format`` = ``byoc_mlir.jsonrt``, ``version`` = 1): one UTF-8 JSON
document with sorted keys (the same region always gives the same bytes) and one input,
output, constant or node per line (readable, diffable)::

    {"format": "byoc_mlir.jsonrt", "version": 1, "name": "jsonrt.main_0",
     "inputs":  [{"id": "arg0", "shape": [4, 8], "dtype": "f32"}, ...],
     "outputs": [{"id": "v3", "shape": [4, 16], "dtype": "f32"}, ...],
     "constants": {"const0": {"shape": [16], "dtype": "f32", "data": "<base64>"},
                   "const1": {"shape": [4, 4], "dtype": "f32", "splat": 0.5}},
     "nodes": [{"op": "matmul", "inputs": ["arg0", "arg1", "v0"], "result": "v1",
                "shape": [4, 16], "attrs": {"maps": [[0, 2], [2, 1], [0, 1]]},
                "composite": "matmul_bias_relu"}, ...]}

Value ids are ``arg<i>`` (region inputs, in order), ``const<i>`` (weights) and ``v<i>``
(node results). Constant ``data`` is the base64 of the raw little-endian bytes in C
order; constants whose elements are all equal are stored as ``splat``. (Weights arrive
as region arguments unless small or ``move_weights`` is set, so payloads stay small.)
Nodes run in list order; ``composite`` (optional) names the composite the op belonged
to. The ops:

=================================  =============  =======================================
op                                 inputs         attrs / meaning
=================================  =============  =======================================
``fill``                           —              ``value``: every element
``empty``                          —              undefined contents (jsonrt: zeros)
``matmul``, ``batch_matmul``       a, b, init     ``maps``: result dims of the three
                                                  indexing maps; ``init + a·b``
``conv2d_nchw_fchw``,              x, w, init     ``strides``, ``dilations`` (2 each);
``conv2d_nhwc_hwcf``                              no padding; ``init + conv(x, w)``
``add``, ``sub``, ``mul``,         a, b           ``maps``: result dims of each input's
``bias_add``                                      map (the output map is the identity)
``relu``                           x              ``max(x, 0)``
``clamp``                          x              ``min``, ``max``, ``max_first``
``gelu``                           x              ``approximation``: ``erf`` or ``tanh``
=================================  =============  =======================================
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from byoc_mlir.errors import ByocError

FORMAT = "byoc_mlir.jsonrt"
VERSION = 1
_F32 = np.dtype("<f4")

Kernel = Callable[..., np.ndarray]


class JsonrtError(ByocError, ValueError):
    """A payload jsonrt cannot serialise, load or run, or inputs that do not fit it."""


# --- reading the payload -------------------------------------------------------------


def decode_constant(name: str, entry: Mapping[str, Any]) -> np.ndarray:
    shape = tuple(int(d) for d in entry["shape"])
    if entry.get("dtype") != "f32":
        raise JsonrtError(f"constant {name}: dtype {entry.get('dtype')!r} (valid: f32)")
    if "splat" in entry:
        return np.broadcast_to(np.float32(entry["splat"]), shape)  # read-only, no memory
    else:
        raw = base64.b64decode(entry["data"])
        count = math.prod(shape)
        if len(raw) != 4 * count:
            raise JsonrtError(f"constant {name}: {len(raw)} bytes for shape {list(shape)}")
        array = np.frombuffer(raw, dtype=_F32).astype(np.float32).reshape(shape)
    array.flags.writeable = False
    return array


# --- kernels ---------------------------------------------------------------------------

_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_DEFAULT_MAPS = {
    2: [[0, 2], [2, 1], [0, 1]],  # matmul: (m, n, k)
    3: [[0, 1, 3], [0, 3, 2], [0, 1, 2]],  # batch_matmul: (b, m, n, k)
}


def _contraction(maps: list[list[int]]) -> Kernel:
    out_rank = len(maps[2])
    if _DEFAULT_MAPS.get(out_rank) == maps:
        return np.matmul
    a, b, c = ("".join(_LETTERS[d] for d in m) for m in maps)
    spec = f"{a},{b}->{c}"
    return lambda x, y: np.einsum(spec, x, y)


def _conv(layout: str, strides: Sequence[int], dilations: Sequence[int]) -> Kernel:
    """Convolution without padding as windows · filter (im2col by numpy's tensordot)."""
    (sh, sw), (dh, dw) = strides, dilations

    def conv(x: np.ndarray, w: np.ndarray) -> np.ndarray:
        if layout == "nchw_fchw":
            kh, kw = w.shape[2], w.shape[3]
            win = np.lib.stride_tricks.sliding_window_view(
                x, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3)
            )[:, :, ::sh, ::sw, ::dh, ::dw]  # (n, c, oh, ow, kh, kw)
            return np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
        kh, kw = w.shape[0], w.shape[1]
        win = np.lib.stride_tricks.sliding_window_view(
            x, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(1, 2)
        )[:, ::sh, ::sw, :, ::dh, ::dw]  # (n, oh, ow, c, kh, kw)
        return np.tensordot(win, w, axes=([3, 4, 5], [2, 0, 1]))

    return conv


def _accumulating(kernel: Kernel) -> Kernel:
    """``init + kernel(a, b)``: linalg contractions accumulate into their init operand."""

    def run(a: np.ndarray, b: np.ndarray, init: np.ndarray) -> np.ndarray:
        out = kernel(a, b)  # a fresh array (two-operand products never alias)
        np.add(out, init, out=out)
        return out

    return run


def _erfc(z: np.ndarray) -> np.ndarray:
    """erfc with relative error < 1.2e-7 everywhere (Numerical Recipes' ``erfcc``); numpy
    has no erf and byoc_mlir does not depend on scipy."""
    a = np.abs(z)
    t = 1.0 / (1.0 + 0.5 * a)
    coeffs = (0.17087277, -0.82215223, 1.48851587, -1.13520398, 0.27886807,
              -0.18628806, 0.09678418, 0.37409196, 1.00002368)  # fmt: skip
    poly = np.zeros_like(t)
    for c in coeffs:
        poly = t * (poly + c)
    r = t * np.exp(-a * a - 1.26551223 + poly)
    return np.where(z >= 0, r, 2.0 - r)


def _gelu(approximation: str) -> Kernel:
    if approximation == "erf":
        # 0.5·x·(1 + erf(x/√2)) = 0.5·x·erfc(-x/√2): no cancellation for negative x.
        return lambda x: (0.5 * x * _erfc(-x.astype(np.float64) / math.sqrt(2.0))).astype(
            np.float32
        )
    if approximation == "tanh":
        k = math.sqrt(2.0 / math.pi)

        def gelu_tanh(x: np.ndarray) -> np.ndarray:
            x64 = x.astype(np.float64)
            return (0.5 * x64 * (1.0 + np.tanh(k * (x64 + 0.044715 * x64**3)))).astype(np.float32)

        return gelu_tanh
    raise JsonrtError(f"gelu approximation {approximation!r} (valid: erf, tanh)")


def _clamp(lo: float, hi: float, max_first: bool) -> Kernel:
    lo32, hi32 = np.float32(lo), np.float32(hi)
    if max_first:
        return lambda x: np.minimum(np.maximum(x, lo32), hi32)
    return lambda x: np.maximum(np.minimum(x, hi32), lo32)


def _aligner(m: list[int], shape: tuple[int, ...], out_rank: int) -> Callable[..., np.ndarray]:
    """Brings an operand read through a projected-permutation map to the output's rank,
    so numpy broadcasting does what the indexing map says."""
    if len(m) != len(shape):
        raise JsonrtError(f"indexing map {m} reads a rank-{len(shape)} operand")
    if m == list(range(out_rank)):
        return lambda x: x
    if len(set(m)) != len(m) or any(not 0 <= d < out_rank for d in m):
        raise JsonrtError(f"indexing map {m} is not a projected permutation of {out_rank} dims")
    order = sorted(range(len(m)), key=lambda i: m[i])
    present = {d: shape[i] for i, d in enumerate(m)}
    target = tuple(present.get(d, 1) for d in range(out_rank))
    if order == list(range(len(m))):
        return lambda x: x.reshape(target)
    return lambda x: x.transpose(order).reshape(target)


_BINARY = {"add": np.add, "bias_add": np.add, "sub": np.subtract, "mul": np.multiply}
_CONVS = {"conv2d_nchw_fchw": "nchw_fchw", "conv2d_nhwc_hwcf": "nhwc_hwcf"}


def _kernel(node: Mapping[str, Any], shapes: list[tuple[int, ...]]) -> Kernel:
    """The numpy function computing one node from its inputs."""
    kind, attrs = node["op"], node.get("attrs", {})
    shape = tuple(node["shape"])
    if kind == "fill":
        value = np.float32(attrs["value"])
        return lambda: np.full(shape, value, dtype=np.float32)
    if kind == "empty":
        return lambda: np.zeros(shape, dtype=np.float32)
    if kind in _CONTRACTIONS:
        if kind in _CONVS:
            product = _conv(_CONVS[kind], attrs["strides"], attrs["dilations"])
        else:
            product = _contraction([list(m) for m in attrs["maps"]])
        # Without an init operand (see `_drop_zero_inits`) the product is the result.
        return product if len(node["inputs"]) == 2 else _accumulating(product)
    if kind in _BINARY:
        fn = _BINARY[kind]
        a, b = (
            _aligner(list(m), s, len(shape)) for m, s in zip(attrs["maps"], shapes, strict=True)
        )
        return lambda x, y: fn(a(x), b(y))
    if kind == "relu":
        return lambda x: np.maximum(x, np.float32(0.0))
    if kind == "clamp":
        return _clamp(attrs["min"], attrs["max"], attrs["max_first"])
    if kind == "gelu":
        return _gelu(attrs["approximation"])
    raise JsonrtError(f"unknown op {kind!r} in node {node.get('result')}")


_CONTRACTIONS = frozenset({"matmul", "batch_matmul", *_CONVS})
_ARITY: dict[str, tuple[int, ...]] = {
    "fill": (0,), "empty": (0,), "relu": (1,), "clamp": (1,), "gelu": (1,),
    **{k: (2,) for k in _BINARY}, **{k: (3, 2) for k in _CONTRACTIONS},
}  # fmt: skip


# --- the program -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Step:
    op: str
    kernel: Kernel
    inputs: tuple[str, ...]
    result: str
    shape: tuple[int, ...]
    release: tuple[str, ...] = ()  # values not needed after this step


@dataclass(frozen=True)
class _Spec:
    id: str
    shape: tuple[int, ...]


class Program:
    """A loaded payload: ``program(*arrays)`` runs the region and returns its outputs.

    Holds the weights and the steps; no state survives a call (the inputs are zero-copy
    views of device buffers and must not be kept).
    """

    def __init__(self, document: Mapping[str, Any]):
        if document.get("format") != FORMAT or document.get("version") != VERSION:
            raise JsonrtError(
                f"not a jsonrt payload (format {document.get('format')!r}, version "
                f"{document.get('version')!r}; expected {FORMAT!r}, version {VERSION})"
            )
        self.name = str(document.get("name", "jsonrt"))
        self.inputs = [_Spec(s["id"], _shape(s)) for s in document["inputs"]]
        self.outputs = [_Spec(s["id"], _shape(s)) for s in document["outputs"]]
        self.constants = {
            k: decode_constant(k, v) for k, v in sorted(document.get("constants", {}).items())
        }
        shapes: dict[str, tuple[int, ...]] = {s.id: s.shape for s in self.inputs}
        shapes.update((k, v.shape) for k, v in self.constants.items())
        nodes = _drop_zero_inits(list(document["nodes"]), [s.id for s in self.outputs])
        steps = []
        for node in nodes:
            ins = tuple(node["inputs"])
            missing = [v for v in ins if v not in shapes]
            if missing:
                raise JsonrtError(f"{self.name}: node {node['result']} reads undefined {missing}")
            if len(ins) not in _ARITY.get(node["op"], (len(ins),)):
                raise JsonrtError(
                    f"{self.name}: node {node['result']} ({node['op']}) has {len(ins)} inputs"
                )
            kernel = _kernel(node, [shapes[v] for v in ins])
            steps.append(_Step(node["op"], kernel, ins, node["result"], tuple(node["shape"])))
            shapes[node["result"]] = tuple(node["shape"])
        for out in self.outputs:
            if shapes.get(out.id) != out.shape:
                raise JsonrtError(f"{self.name}: output {out.id} is not computed as {out.shape}")
        self._steps = _with_releases(steps, {s.id for s in self.outputs})

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        if len(arrays) != len(self.inputs):
            raise JsonrtError(
                f"{self.name} takes {len(self.inputs)} inputs "
                f"({', '.join(_mlir(s.shape) for s in self.inputs)}), got {len(arrays)}"
            )
        env: dict[str, np.ndarray] = dict(self.constants)
        given = []
        try:
            for i, (spec, array) in enumerate(zip(self.inputs, arrays, strict=True)):
                a = np.asarray(array)
                if a.dtype != np.float32 or a.shape != spec.shape:
                    raise JsonrtError(
                        f"{self.name}: input {i} must be {_mlir(spec.shape)} (float32), got "
                        f"{a.dtype} of shape {list(a.shape)}"
                    )
                env[spec.id] = a
                given.append(a)
            for step in self._steps:
                try:
                    value = step.kernel(*(env[v] for v in step.inputs))
                except (ValueError, TypeError, IndexError) as e:  # numpy's shape errors
                    raise JsonrtError(
                        f"{self.name}: node {step.result} ({step.op}) failed: {e}"
                    ) from None
                if value.shape != step.shape:
                    raise JsonrtError(
                        f"{self.name}: node {step.result} computed shape {list(value.shape)}, "
                        f"the payload says {list(step.shape)}"
                    )
                env[step.result] = value
                for v in step.release:
                    del env[v]
            return [self._own(env[out.id], given) for out in self.outputs]
        finally:
            env.clear()
            given.clear()

    def _own(self, value: np.ndarray, given: list[np.ndarray]) -> np.ndarray:
        """A float32 C-contiguous array sharing memory with no input and no weight."""
        borrowed = any(np.may_share_memory(value, a) for a in given) or any(
            np.may_share_memory(value, c) for c in self.constants.values()
        )
        if borrowed:
            return np.array(value, dtype=np.float32, order="C", copy=True)
        return np.asarray(value, dtype=np.float32, order="C")


def _shape(spec: Mapping[str, Any]) -> tuple[int, ...]:
    if spec.get("dtype") != "f32":
        raise JsonrtError(f"value {spec.get('id')}: dtype {spec.get('dtype')!r} (valid: f32)")
    return tuple(int(d) for d in spec["shape"])


def _mlir(shape: tuple[int, ...]) -> str:
    return "tensor<" + "".join(f"{d}x" for d in shape) + "f32>"


def _drop_zero_inits(nodes: list[dict[str, Any]], outputs: list[str]) -> list[dict[str, Any]]:
    """Contractions whose init is zero skip the addition; the zero fill then goes if
    nothing else reads it (frontends always emit ``fill 0 → matmul``)."""
    zero = {
        n["result"]
        for n in nodes
        if n["op"] == "empty" or (n["op"] == "fill" and n["attrs"]["value"] == 0.0)
    }
    out = []
    for n in nodes:
        ins = n["inputs"]
        if n["op"] in _CONTRACTIONS and len(ins) == 3 and ins[2] in zero:
            n = {**n, "inputs": ins[:2]}
        out.append(n)
    used = set(outputs).union(*(n["inputs"] for n in out))
    return [n for n in out if n["result"] in used]


def _with_releases(steps: list[_Step], keep: set[str]) -> list[_Step]:
    """Adds to each step the intermediate values whose last reader it is."""
    last: dict[str, int] = {}
    for k, step in enumerate(steps):
        for v in step.inputs:
            last[v] = k
    produced = {s.result for s in steps}
    release: dict[int, list[str]] = {}
    for v, k in last.items():
        if v in produced and v not in keep:
            release.setdefault(k, []).append(v)
    return [
        _Step(s.op, s.kernel, s.inputs, s.result, s.shape, tuple(sorted(release.get(k, ()))))
        for k, s in enumerate(steps)
    ]


def load(payload: bytes) -> Program:
    """Parses a jsonrt payload once; the result runs the region on numpy arrays.

    Args:
        payload: the bytes `byoc_mlir.backends.jsonrt.backend.codegen` produced.

    Returns:
        ``program(*arrays) -> list[np.ndarray]``: float32, C-contiguous, one per region
        output; it keeps no reference to its inputs.

    Raises:
        JsonrtError: the payload is not valid jsonrt JSON.
    """
    try:
        document = json.loads(bytes(payload).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise JsonrtError(f"jsonrt payload is not JSON: {e}") from None
    if not isinstance(document, dict):
        raise JsonrtError("jsonrt payload is not a JSON object")
    try:
        return Program(document)
    except (KeyError, TypeError, IndexError) as e:
        raise JsonrtError(f"malformed jsonrt payload: {type(e).__name__}: {e}") from None
