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

from functools import cache

import numpy as np

_PLAIN: dict[str, np.dtype] = {
    "f16": np.dtype(np.float16),
    "f32": np.dtype(np.float32),
    "f64": np.dtype(np.float64),
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
_ML_DTYPES = {
    "bf16": "bfloat16",
    "f8E4M3FN": "float8_e4m3fn",
    "f8E4M3FNUZ": "float8_e4m3fnuz",
    "f8E5M2": "float8_e5m2",
    "f8E5M2FNUZ": "float8_e5m2fnuz",
}
"""Types numpy has only through ``ml_dtypes``, imported when first needed: its import
takes about a second, which every ``byoc-opt`` run would otherwise pay."""

NAMES = frozenset(_PLAIN) | frozenset(_ML_DTYPES)
"""Every element type a bundle's signature can carry."""


@cache
def _ml_dtype(name: str) -> np.dtype:
    import ml_dtypes

    return np.dtype(getattr(ml_dtypes, _ML_DTYPES[name]))


def _dtype(name: str) -> np.dtype:
    """The numpy dtype of a name in `NAMES` (KeyError otherwise)."""
    found = _PLAIN.get(name)
    return found if found is not None else _ml_dtype(name)


FLOATS = frozenset({"f16", "f32", "f64", "bf16", "f8E4M3FN", "f8E4M3FNUZ", "f8E5M2", "f8E5M2FNUZ"})

_TORCH = {"si8": "i8", "si16": "i16", "si32": "i32", "si64": "i64"}
"""torch's signed integer spellings (``!torch.vtensor<[4],si64>``) → MLIR's."""


def numpy_dtype(name: str) -> np.dtype:
    """The numpy dtype of element type ``name``.

    Raises:
        ValueError: a type with no numpy equivalent (e.g. ``i4``, ``complex<f32>``).
    """
    try:
        return _dtype(name)
    except KeyError:
        raise ValueError(
            f"element type {name} has no numpy equivalent (valid: {', '.join(sorted(NAMES))})"
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
    return array.view(_dtype(stored)) if stored != name else array


def from_iree(array: np.ndarray, name: str) -> np.ndarray:
    """An IREE result read back as declared type ``name`` (a view; ``i8`` → ``uint8``)."""
    want = _dtype(name)
    return array.view(want) if array.dtype != want and array.itemsize == want.itemsize else array
