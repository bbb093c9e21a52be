"""Dialect modules the MLIR bindings load instead of ``iree.compiler.dialects.<name>``
when byoc_mlir is imported (see `byoc_mlir.linalg_ops`): the generated op classes only."""
