"""The run-time half of ``dnnl``: loads a region's oneDNN library and calls it.

The payload (written by `byoc_mlir.backends.dnnl.backend`) is a zip holding ``region.so`` (the
generated C built against oneDNN 3), ``region.c`` and ``dnnl_support.h`` (its source, for
reading), ``weights.bin`` (the constants, read in place or prepacked at load) and
``manifest.json`` (format, version, signature). `load` writes the library to a private
temporary directory, opens it with ctypes and runs ``byoc_region_init`` once: oneDNN
primitives are created and weights reordered then, not per call. The returned callable
takes numpy arrays (read in place: no copy) and returns new arrays.

A region with dynamic dimensions is initialised per set of input shapes instead, on
the first call with them: ``byoc_region_init`` takes the inputs' sizes, the manifest
says which input sizes must agree and how the outputs' sizes follow from them
(`byoc_mlir.codegen.symbolic`), and the last `SHAPES` initialisations are kept
(primitives cached per shape; older ones are freed).

This module needs numpy and oneDNN 3's library only, not the compiler. oneDNN comes from
PyPI (``onednn-cpu-gomp``, oneDNN 3.2 built with GNU OpenMP; ``onednn-devel-cpu-gomp``
adds the headers the code generator needs), found through the installed distribution:
`library_path` and `include_dir`. The region libraries name ``libdnnl.so.3`` without a
path; `_load_library` loads the wheel's copy first, globally, so they bind to it.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.metadata
import io
import json
import math
import os
import tempfile
import threading
import time
import zipfile
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from byoc_mlir.dtypes import numpy_dtype
from byoc_mlir.errors import ByocError

FORMAT = "byoc_mlir.dnnl"
VERSION = 4  # 4: byoc_region_init takes the input sizes (dynamic dimensions)
_ERROR_SIZE = 512
SHAPES = 8
"""Initialisations a dynamic region keeps (one per set of input shapes, the last used)."""


class DnnlError(ByocError, ValueError):
    """A region the dnnl backend cannot lower, build, load or run."""


ONEDNN = "onednn-cpu-gomp"
ONEDNN_DEVEL = "onednn-devel-cpu-gomp"
ONEDNN_VERSION = "2023.2.0"
INSTALL_HINT = f"pip install {ONEDNN}=={ONEDNN_VERSION} {ONEDNN_DEVEL}=={ONEDNN_VERSION}"


def _distribution_file(distribution: str, suffix: str) -> Path | None:
    """The installed file of ``distribution`` whose path ends with ``suffix``, if any."""
    try:
        files = importlib.metadata.files(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if str(f).replace("\\", "/").endswith(suffix):
            path = Path(str(f.locate())).resolve()
            if path.exists():
                return path
    return None


def _override(variable: str) -> Path | None:
    """The path in environment variable ``variable``, checked to exist, or None if unset."""
    value = os.environ.get(variable)
    if not value:
        return None
    path = Path(value)
    if not path.exists():
        raise DnnlError(f"{variable}={value}: no such file or directory")
    return path


def library_path() -> Path:
    """oneDNN 3's shared library from the ``onednn-cpu-gomp`` wheel.

    ``BYOC_ONEDNN_LIBRARY`` (a ``libdnnl.so.3``) overrides it, e.g. for another oneDNN 3
    build; its headers then come from ``BYOC_ONEDNN_INCLUDE``.

    Raises:
        DnnlError: the wheel is not installed (the message says how to install it).
    """
    path = _override("BYOC_ONEDNN_LIBRARY") or _distribution_file(ONEDNN, "/libdnnl.so.3")
    if path is None:
        raise DnnlError(f"oneDNN 3 is not installed in this Python environment ({INSTALL_HINT})")
    return path


def include_dir() -> Path:
    """The directory holding ``oneapi/dnnl/dnnl.h`` from ``onednn-devel-cpu-gomp``
    (or ``BYOC_ONEDNN_INCLUDE``).

    Raises:
        DnnlError: the headers are not installed.
    """
    directory = _override("BYOC_ONEDNN_INCLUDE")
    if directory is not None:
        return directory
    header = _distribution_file(ONEDNN_DEVEL, "include/oneapi/dnnl/dnnl.h")
    if header is None:
        raise DnnlError(f"oneDNN 3's headers are not installed ({INSTALL_HINT})")
    return header.parents[2]


_ONEDNN: ctypes.CDLL | None = None


def _load_onednn() -> None:
    """Loads the wheel's ``libdnnl.so.3`` once, globally, before any region library."""
    global _ONEDNN
    if _ONEDNN is None:
        _ONEDNN = ctypes.CDLL(str(library_path()), mode=ctypes.RTLD_GLOBAL)


_PROFILE: dict[str, list[float]] = {}
_LOCK = threading.Lock()


def profile() -> dict[str, tuple[int, float]]:
    """Per region served since the last `reset_profile`: (calls, seconds in oneDNN)."""
    with _LOCK:
        return {name: (int(c), s) for name, (c, s) in _PROFILE.items()}


def reset_profile() -> None:
    with _LOCK:
        _PROFILE.clear()


_LIBRARIES: dict[str, ctypes.CDLL] = {}


def _load_library(library: bytes, digest: str) -> ctypes.CDLL:
    """dlopens ``library`` once per process (regions keep their state in handles).

    The file exists only between its write and the dlopen: the loaded mapping keeps the
    contents, so nothing is left on disk however the process ends afterwards. The name
    carries the digest, because the dynamic loader matches an already loaded library by
    its file name (a reused name would give back another region's code).
    """
    if digest not in _LIBRARIES:
        _load_onednn()
        fd, path = tempfile.mkstemp(prefix=f"byoc_dnnl_{os.getpid()}_{digest[:32]}_", suffix=".so")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(library)
            _LIBRARIES[digest] = ctypes.CDLL(path)
        finally:
            os.unlink(path)
    return _LIBRARIES[digest]


def _size(entry: Any, sizes: Sequence[int]) -> int:
    """A manifest size: an int, or ``[coef, k...]``: coef times the input sizes k."""
    if isinstance(entry, int):
        return entry
    return int(entry[0]) * math.prod(sizes[int(k)] for k in entry[1:])


class Region:
    """One loaded region: call it with numpy arrays, get its outputs."""

    def __init__(self, payload: bytes):
        try:
            with zipfile.ZipFile(io.BytesIO(payload)) as z:
                manifest = json.loads(z.read("manifest.json"))
                library = z.read("region.so")
                weights = z.read("weights.bin")
        except (zipfile.BadZipFile, KeyError, ValueError) as err:
            raise DnnlError(f"not a dnnl payload: {err}") from None
        if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
            raise DnnlError(
                f"payload format {manifest.get('format')} v{manifest.get('version')} "
                f"(expected {FORMAT} v{VERSION}); recompile"
            )
        self.name: str = manifest["name"]
        self.inputs = [(tuple(s["shape"]), s["dtype"]) for s in manifest["inputs"]]
        self.outputs = [(tuple(s["shape"]), s["dtype"]) for s in manifest["outputs"]]
        self._sizes = [s.get("sizes", s["shape"]) for s in manifest["outputs"]]
        self._equal = manifest.get("equal", [])
        self.dynamic = any(d is None for shape, _ in self.inputs + self.outputs for d in shape)
        if self.dynamic:
            self._check_sizes()
        digest = hashlib.sha256(library).hexdigest()
        # The library reads constants at fixed offsets of weights.bin: a damaged payload
        # must be refused here, not crash the process later.
        if digest != manifest.get("library_sha256"):
            raise DnnlError(f"{self.name}: region.so does not match its manifest (damaged)")
        if len(weights) != manifest.get("weights_bytes"):
            raise DnnlError(
                f"{self.name}: weights.bin has {len(weights)} bytes, the manifest says "
                f"{manifest.get('weights_bytes')} (damaged)"
            )
        try:
            self._lib = _load_library(library, digest)
        except OSError as err:
            raise DnnlError(f"{self.name}: cannot load its oneDNN library: {err}") from None
        self._lib.byoc_region_init.restype = ctypes.c_void_p
        self._lib.byoc_region_init.argtypes = [
            ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
        ]  # fmt: skip
        self._lib.byoc_region_free.restype = None
        self._lib.byoc_region_free.argtypes = [ctypes.c_void_p]
        self._lib.byoc_region_run.restype = ctypes.c_int
        self._lib.byoc_region_run.argtypes = [
            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
        ]  # fmt: skip
        # The weights stay alive (and in place) as long as the region: constants that
        # are not prepacked are read from this buffer at every call.
        self._weights = np.frombuffer(bytearray(weights) or bytearray(64), dtype=np.uint8)
        self._threads = int(manifest.get("threads", 0))
        self._error = ctypes.create_string_buffer(_ERROR_SIZE)
        # one initialisation per set of input sizes (a static region: the only one, now)
        self._handles: OrderedDict[tuple[int, ...], int] = OrderedDict()
        self._open = True
        if not self.dynamic:
            self._handle_for(())
        n_in, n_out = len(self.inputs), len(self.outputs)
        self._in_ptrs = (ctypes.c_void_p * max(n_in, 1))()
        self._out_ptrs = (ctypes.c_void_p * max(n_out, 1))()

    def _check_sizes(self) -> None:
        """The manifest's size expressions name input dims that exist (a damaged one is
        refused at load, not met as an IndexError at a call)."""
        n_dims = sum(len(shape) for shape, _ in self.inputs)

        def ok(entry: Any) -> bool:
            if isinstance(entry, int):
                return True
            return (
                isinstance(entry, list)
                and len(entry) > 0
                and all(isinstance(k, int) for k in entry)
                and all(0 <= k < n_dims for k in entry[1:])
            )

        ranks = [len(shape) for shape, _ in self.outputs]
        good = [len(s) for s in self._sizes] == ranks and all(ok(d) for s in self._sizes for d in s)
        good = good and all(len(p) == 2 and ok(p[0]) and ok(p[1]) for p in self._equal)
        if not good:
            raise DnnlError(f"{self.name}: the manifest's dynamic sizes are damaged")

    def _handle_for(self, sizes: tuple[int, ...]) -> int:
        """The region initialised for these input sizes (created on first use)."""
        handle = self._handles.get(sizes)
        if handle is not None:
            self._handles.move_to_end(sizes)
            return handle
        flat = (ctypes.c_int64 * max(len(sizes), 1))(*sizes)
        handle = self._lib.byoc_region_init(
            self._weights.ctypes.data, self._threads, flat, self._error, _ERROR_SIZE
        )
        if not handle:
            at = f" at input sizes {list(sizes)}" if self.dynamic else ""
            raise DnnlError(
                f"{self.name}: oneDNN refused the region{at}: {self._error.value.decode()}"
            )
        self._handles[sizes] = handle
        while len(self._handles) > SHAPES:
            _, old = self._handles.popitem(last=False)
            self._lib.byoc_region_free(old)
        return handle

    def prepare(self, sizes: Sequence[int]) -> None:
        """Creates the primitives for one set of input sizes (all inputs' dims, flat)."""
        self._handle_for(tuple(int(n) for n in sizes))

    def close(self) -> None:
        """Frees the oneDNN primitives and buffers (the region cannot be called again)."""
        handles = getattr(self, "_handles", {})
        while handles:
            _, handle = handles.popitem()
            self._lib.byoc_region_free(handle)
        self._open = False

    def __del__(self) -> None:
        if getattr(self, "_handles", None):
            self.close()

    def __call__(self, *arrays: np.ndarray) -> Sequence[np.ndarray]:
        if not self._open:
            raise DnnlError(f"{self.name} was closed")
        if len(arrays) != len(self.inputs):
            raise DnnlError(f"{self.name} takes {len(self.inputs)} inputs, got {len(arrays)}")
        keep = []
        sizes: list[int] = []
        for i, (a, (shape, dtype)) in enumerate(zip(arrays, self.inputs, strict=True)):
            # f32 and quantized 8-bit inputs are read (others, e.g. an unused i64 index
            # init, are not); an 8-bit input's bytes are read as u8 or s8 by the region.
            arr = np.ascontiguousarray(a, dtype=numpy_dtype(dtype))
            fits = len(arr.shape) == len(shape) and all(
                d is None or d == n for d, n in zip(shape, arr.shape, strict=True)
            )
            if not fits:
                expected = tuple("?" if d is None else d for d in shape)
                raise DnnlError(
                    f"{self.name}: input {i} has shape {arr.shape}, expected {expected}"
                )
            keep.append(arr)
            sizes.extend(arr.shape)
            self._in_ptrs[i] = arr.ctypes.data
        if self.dynamic:
            for a, b in self._equal:
                if _size(a, sizes) != _size(b, sizes):
                    raise DnnlError(
                        f"{self.name}: input sizes {sizes} disagree on a dimension the "
                        f"region's ops share"
                    )
            handle = self._handle_for(tuple(sizes))
            shapes = [tuple(_size(d, sizes) for d in s) for s in self._sizes]
        else:
            handle = self._handle_for(())
            shapes = [shape for shape, _ in self.outputs]
        outs = [
            np.empty(s, numpy_dtype(dt)) for s, (_, dt) in zip(shapes, self.outputs, strict=True)
        ]
        for o, arr in enumerate(outs):
            self._out_ptrs[o] = arr.ctypes.data
        start = time.perf_counter()
        rc = self._lib.byoc_region_run(
            handle, self._in_ptrs, self._out_ptrs, self._error, _ERROR_SIZE
        )
        elapsed = time.perf_counter() - start
        if rc != 0:
            raise DnnlError(f"{self.name}: oneDNN failed: {self._error.value.decode()}")
        with _LOCK:
            entry = _PROFILE.setdefault(self.name, [0, 0.0])
            entry[0] += 1
            entry[1] += elapsed
        return outs


def load(payload: bytes) -> Region:
    """The backend's ``runtime`` factory: a payload -> a callable region."""
    return Region(payload)
