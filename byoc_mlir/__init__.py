"""byoc_mlir: Bring Your Own Codegen on MLIR's Python bindings and IREE.

A vendor declares a `Backend` (which ops and op patterns it runs); the passes tag the
regions it can run, merge them into maximal cycle-free regions, and outline each into a
function ``@<backend>.<name>``. See README.md.
"""

import importlib
from typing import TYPE_CHECKING, Any

from byoc_mlir.codegen.backend import ANY, Backend, CheckContext, Reject, op
from byoc_mlir.errors import ByocError
from byoc_mlir.explain.decisions import DecisionLog
from byoc_mlir.options import CompileOptions
from byoc_mlir.pipeline import PartitionOptions, partition

if TYPE_CHECKING:
    from byoc_mlir.driver import compile
    from byoc_mlir.runtime import Compiled

__all__ = [
    "ANY",
    "Backend",
    "ByocError",
    "CheckContext",
    "CompileOptions",
    "Compiled",
    "DecisionLog",
    "PartitionOptions",
    "Reject",
    "compile",
    "op",
    "partition",
]

_LAZY = {"compile": "byoc_mlir.driver", "Compiled": "byoc_mlir.runtime"}


def __getattr__(name: str) -> Any:
    """``compile`` and ``Compiled`` load the codegen and runtime stacks on first use, so
    tools that only partition (``byoc-opt``) start without them."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'byoc_mlir' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
