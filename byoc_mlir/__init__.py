"""byoc_mlir: Bring Your Own Codegen on MLIR's Python bindings and IREE.

A vendor declares a `Backend` (which ops and op patterns it runs); the passes tag the
regions it can run, merge them into maximal cycle-free regions, and outline each into a
function ``@<backend>.<name>``. See README.md.
"""

from byoc_mlir.codegen.backend import ANY, Backend, CheckContext, Reject, op
from byoc_mlir.driver import compile
from byoc_mlir.errors import ByocError
from byoc_mlir.explain.decisions import DecisionLog
from byoc_mlir.options import CompileOptions
from byoc_mlir.pipeline import PartitionOptions, partition
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
