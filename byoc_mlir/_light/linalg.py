"""linalg's generated op classes, registered without its OpDSL (see `byoc_mlir.linalg_ops`)."""

from iree.compiler.dialects._linalg_ops_gen import _Dialect

__all__ = ["_Dialect"]
