"""Element types at the model's edge: MLIR names, numpy dtypes, and what IREE stores.

A model declares its signature in its own vocabulary (ONNX ``UINT8``, torch ``ui8``);
after import to linalg an unsigned integer is a signless ``i8`` and the element type
alone no longer says how to read it. The bundle keeps the declared name (``ui8``) in its
signature and converts at the boundary: a ``ui8`` array travels to IREE as the same
bytes viewed as ``int8``, and comes back viewed as ``uint8``. bf16 and the float8
types are numpy dtypes through ``ml_dtypes`` (which IREE's runtime depends on).

Names are MLIR's element type spellings (``f32``, ``bf16``, ``f8E4M3FN``, ``i1``), plus
``ui8``/``ui16``/``ui32``/``ui64`` for declared unsigned integers.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

NUMPY: dict[str, np.dtype] = {
    "f16": np.dtype(np.float16),
    "f32": np.dtype(np.float32),
    "f64": np.dtype(np.float64),
    "bf16": np.dtype(ml_dtypes.bfloat16),
    "f8E4M3FN": np.dtype(ml_dtypes.float8_e4m3fn),
    "f8E4M3FNUZ": np.dtype(ml_dtypes.float8_e4m3fnuz),
    "f8E5M2": np.dtype(ml_dtypes.float8_e5m2),
    "f8E5M2FNUZ": np.dtype(ml_dtypes.float8_e5m2fnuz),
    "i1": np.dtype(np.bool_),
    "i8": np.dtype(np.int8),
    "i16": np.dtype(np.int16),
    "i32": np.dtype(np.int32),
    "i64": np.dtype(np.int64),
    "ui8": np.dtype(np.uint8),
    "ui16": np.dtype(np.uint16),
    "ui32": np.dtype(np.uint32),
    "ui64": np.dtype(np.uint64),
}
"""Every element type a bundle's signature can carry."""

FLOATS = frozenset({"f16", "f32", "f64", "bf16", "f8E4M3FN", "f8E4M3FNUZ", "f8E5M2", "f8E5M2FNUZ"})

_TORCH = {"si8": "i8", "si16": "i16", "si32": "i32", "si64": "i64"}
"""torch's signed integer spellings (``!torch.vtensor<[4],si64>``) → MLIR's."""


def numpy_dtype(name: str) -> np.dtype:
    """The numpy dtype of element type ``name``.

    Raises:
        ValueError: a type with no numpy equivalent (e.g. ``i4``, ``complex<f32>``).
    """
    try:
        return NUMPY[name]
    except KeyError:
        raise ValueError(
            f"element type {name} has no numpy equivalent (valid: {', '.join(sorted(NUMPY))})"
        ) from None


def storage(name: str) -> str:
    """The element type IREE's signature has for declared type ``name`` (``ui8`` → ``i8``)."""
    return name[1:] if name.startswith("ui") else name


def from_torch(name: str) -> str:
    """A torch-dialect element type (``si64``, ``ui8``, ``f32``) as an MLIR/bundle name."""
    return _TORCH.get(name, name)


def to_iree(array: np.ndarray, name: str) -> np.ndarray:
    """``array`` as the bytes IREE's ``storage(name)`` argument expects (a view)."""
    stored = storage(name)
    return array.view(NUMPY[stored]) if stored != name else array


def from_iree(array: np.ndarray, name: str) -> np.ndarray:
    """An IREE result read back as declared type ``name`` (a view; ``i8`` → ``uint8``)."""
    want = NUMPY[name]
    return array.view(want) if array.dtype != want and array.itemsize == want.itemsize else array
