"""jsonrt's kernels: one numpy function per payload op (`kernel`), and the shape each
op computes from its inputs' shapes (`infer`, for payloads with dynamic dimensions)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from byoc_mlir.errors import ByocError

Kernel = Callable[..., np.ndarray]


class JsonrtError(ByocError, ValueError):
    """A payload jsonrt cannot serialise, load or run, or inputs that do not fit it."""


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


def kernel(node: Mapping[str, Any], shapes: list[tuple[int, ...]]) -> Kernel:
    """The numpy function computing one node from its inputs."""
    kind, attrs = node["op"], node.get("attrs", {})
    shape = tuple(node["shape"])
    if kind == "fill":
        value = np.float32(attrs["value"])
        if node["inputs"]:  # dynamically sized: the init it fills gives the shape
            return lambda init: np.full(init.shape, value, dtype=np.float32)
        return lambda: np.full(shape, value, dtype=np.float32)
    if kind == "empty":
        return lambda: np.zeros(shape, dtype=np.float32)
    if kind in CONTRACTIONS:
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


CONTRACTIONS = frozenset({"matmul", "batch_matmul", *_CONVS})
ARITY: dict[str, tuple[int, ...]] = {
    "fill": (0, 1), "empty": (0,), "relu": (1,), "clamp": (1,), "gelu": (1,),
    **{k: (2,) for k in _BINARY}, **{k: (3, 2) for k in CONTRACTIONS},
}  # fmt: skip


def infer(node: Mapping[str, Any], shapes: Sequence[tuple[int, ...]]) -> tuple[int, ...]:
    """The shape ``node`` computes from inputs of these shapes, checked against the
    payload's (where a ``null`` dimension is any size).

    Raises:
        JsonrtError: the inputs do not fit the node.
    """
    kind, attrs, declared = node["op"], node.get("attrs", {}), node["shape"]
    sizes: dict[int, int] = {}
    if kind == "fill" and shapes:
        out = shapes[0]
    elif kind in ("matmul", "batch_matmul") and len(shapes) == 3:
        out = shapes[2]
    elif kind in ("matmul", "batch_matmul"):
        for m, shape in zip(attrs["maps"][:2], shapes, strict=True):
            sizes.update(zip(m, shape, strict=True))
        out = tuple(sizes[d] for d in attrs["maps"][2])
    elif kind in _BINARY:
        for m, shape in zip(attrs["maps"], shapes, strict=True):
            for d, n in zip(m, shape, strict=True):
                sizes[d] = max(sizes.get(d, 1), n)
        out = tuple(sizes.get(d, 1) for d in range(len(declared)))
    elif kind in ("relu", "clamp", "gelu"):
        out = shapes[0]
    else:  # fill, empty and convolutions: static shapes only
        out = tuple(declared)
    if len(out) != len(declared) or any(
        d is not None and d != n for d, n in zip(declared, out, strict=True)
    ):
        raise JsonrtError(
            f"node {node.get('result')} ({kind}) computes {list(out)} from inputs "
            f"{[list(x) for x in shapes]}; the payload says {declared}"
        )
    return tuple(int(n) for n in out)
