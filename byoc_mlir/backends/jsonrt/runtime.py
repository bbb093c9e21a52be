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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from byoc_mlir.backends.jsonrt.kernels import (
    ARITY,
    CONTRACTIONS,
    JsonrtError,
    Kernel,
    infer,
    kernel,
)

FORMAT = "byoc_mlir.jsonrt"
VERSION = 1
PLANS = 8
"""Plans a payload with dynamic dimensions keeps (one per input shape seen, oldest out)."""
_F32 = np.dtype("<f4")

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
    shape: tuple[int | None, ...]  # None: a dynamic dimension


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
        self._nodes = _drop_zero_inits(list(document["nodes"]), [s.id for s in self.outputs])
        self._plans: dict[tuple[tuple[int, ...], ...], list[_Step]] = {}
        if not any(None in s.shape for s in self.inputs):  # static: planned (and checked) now
            self._plan(tuple(s.shape for s in self.inputs))  # type: ignore[misc]

    def _plan(self, in_shapes: tuple[tuple[int, ...], ...]) -> list[_Step]:
        """The steps for inputs of these shapes: built once per shape (a static payload
        has one; a dynamic one keeps the last `PLANS`)."""
        steps = self._plans.get(in_shapes)
        if steps is not None:
            return steps
        shapes = {s.id: n for s, n in zip(self.inputs, in_shapes, strict=True)}
        shapes.update((k, v.shape) for k, v in self.constants.items())
        steps = []
        for node in self._nodes:
            ins = tuple(node["inputs"])
            missing = [v for v in ins if v not in shapes]
            if missing:
                raise JsonrtError(f"{self.name}: node {node['result']} reads undefined {missing}")
            if len(ins) not in ARITY.get(node["op"], (len(ins),)):
                raise JsonrtError(
                    f"{self.name}: node {node['result']} ({node['op']}) has {len(ins)} inputs"
                )
            try:
                shape = infer(node, [shapes[v] for v in ins])
            except (KeyError, ValueError) as e:
                raise JsonrtError(f"{self.name}: {e}") from None
            fn = kernel({**node, "shape": list(shape)}, [shapes[v] for v in ins])
            steps.append(_Step(node["op"], fn, ins, node["result"], shape))
            shapes[node["result"]] = shape
        for out in self.outputs:
            if not _fits(shapes.get(out.id), out.shape):
                raise JsonrtError(f"{self.name}: output {out.id} is not computed as {out.shape}")
        steps = _with_releases(steps, {s.id for s in self.outputs})
        if len(self._plans) >= PLANS:
            self._plans.pop(next(iter(self._plans)))
        self._plans[in_shapes] = steps
        return steps

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
                if a.dtype != np.float32 or not _fits(a.shape, spec.shape):
                    raise JsonrtError(
                        f"{self.name}: input {i} must be {_mlir(spec.shape)} (float32), got "
                        f"{a.dtype} of shape {list(a.shape)}"
                    )
                env[spec.id] = a
                given.append(a)
            for step in self._plan(tuple(a.shape for a in given)):
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


def _shape(spec: Mapping[str, Any]) -> tuple[int | None, ...]:
    if spec.get("dtype") != "f32":
        raise JsonrtError(f"value {spec.get('id')}: dtype {spec.get('dtype')!r} (valid: f32)")
    return tuple(None if d is None else int(d) for d in spec["shape"])


def _fits(shape: tuple[int, ...] | None, spec: tuple[int | None, ...]) -> bool:
    """Whether a concrete shape is one a spec (``None``: any size) describes."""
    if shape is None or len(shape) != len(spec):
        return False
    return all(d is None or d == n for n, d in zip(shape, spec, strict=True))


def _mlir(shape: tuple[int | None, ...]) -> str:
    return "tensor<" + "".join("?x" if d is None else f"{d}x" for d in shape) + "f32>"


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
        if n["op"] in CONTRACTIONS and len(ins) == 3 and ins[2] in zero:
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
