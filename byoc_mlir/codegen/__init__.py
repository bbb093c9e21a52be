"""Backends: the `Backend` value, checks, recognisers, discovery, reference backends."""

from byoc_mlir.codegen.backend import (
    ANY,
    Backend,
    CheckContext,
    CompositeRule,
    Pattern,
    Reject,
    classify,
    op,
)

__all__ = ["ANY", "Backend", "CheckContext", "CompositeRule", "Pattern", "Reject", "classify", "op"]
