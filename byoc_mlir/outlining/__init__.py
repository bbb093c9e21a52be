"""Outlining tagged regions into functions, and its inverse (inlining one back)."""

from byoc_mlir.outlining.inline import inline_region
from byoc_mlir.outlining.outline import OutlineOptions, outline_module

__all__ = ["OutlineOptions", "inline_region", "outline_module"]
