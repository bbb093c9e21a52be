"""`TensorSpec`: a tensor type as the hook contract and the bundle's manifest see it
(re-exported by `byoc_mlir.codegen.hook`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from iree.compiler import ir

from byoc_mlir import dtypes

_C_TYPES = {
    "f32": "float",
    "f64": "double",
    "i8": "int8_t",
    "i16": "int16_t",
    "i32": "int32_t",
    "i64": "int64_t",
}


@dataclass(frozen=True)
class TensorSpec:
    """A tensor type: shape and MLIR element type name (``f32``).

    A dynamic dimension (``?`` in MLIR) is ``None`` in ``shape``; ``dims`` then names
    every dimension (``None`` for the static ones): ``batch`` from an ONNX
    ``dim_param``, else ``d0``, ``d1``, ... in signature order. Dimensions with one name
    take one value per call. Static specs have ``dims == ()``.
    """

    shape: tuple[int | None, ...]
    dtype: str
    dims: tuple[str | None, ...] = ()

    @staticmethod
    def of(t: ir.Type) -> TensorSpec:
        if not isinstance(t, ir.RankedTensorType):
            raise ValueError(f"expected a ranked tensor, got {t}")
        shaped = ir.ShapedType(t)
        shape = tuple(None if shaped.is_dynamic_dim(i) else d for i, d in enumerate(t.shape))
        return TensorSpec(shape, str(t.element_type))

    @property
    def is_static(self) -> bool:
        return None not in self.shape

    @property
    def static_shape(self) -> tuple[int, ...]:
        """The shape, when static (codegen hooks only ever see static specs unless their
        backend accepts dynamic dimensions)."""
        if not self.is_static:
            raise ValueError(f"{self.mlir} has dynamic dimensions")
        return tuple(d for d in self.shape if d is not None)

    def fits(self, shape: tuple[int, ...]) -> bool:
        """Whether a concrete shape is one this spec describes (a dynamic dimension: any)."""
        return len(shape) == len(self.shape) and all(
            d is None or d == n for n, d in zip(shape, self.shape, strict=True)
        )

    def bind(self, values: dict[str, int]) -> tuple[int, ...]:
        """The shape with each named dynamic dimension replaced by its value."""
        out = []
        for k, d in enumerate(self.shape):
            if d is None:
                name = self.dims[k] if k < len(self.dims) else None
                if name is None or name not in values:
                    raise ValueError(f"dimension {k} of {self.mlir} has no value")
                d = values[name]
            out.append(d)
        return tuple(out)

    @property
    def numpy_dtype(self) -> np.dtype:
        return dtypes.numpy_dtype(self.dtype)

    @property
    def c_type(self) -> str:
        if self.dtype not in _C_TYPES:
            raise ValueError(f"element type {self.dtype} has no C equivalent")
        return _C_TYPES[self.dtype]

    @property
    def size(self) -> int:
        return int(np.prod(self.static_shape, dtype=np.int64))

    @property
    def mlir(self) -> str:
        dims = "x".join("?" if d is None else str(d) for d in self.shape)
        return f"tensor<{dims}x{self.dtype}>" if self.shape else f"tensor<{self.dtype}>"
