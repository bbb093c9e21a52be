"""``byoc-annotate``: record, per op, which backends accept it alone and why others refuse.

Every node of every partitionable function gets ``byoc.accept`` (backends in priority
order, possibly empty) and, when some backend refused, ``byoc.reject`` with one reason
per refusing backend. Nothing is moved; later passes read these tags.
"""

from __future__ import annotations

from dataclasses import dataclass

from iree.compiler import ir

from byoc_mlir.codegen import registry
from byoc_mlir.codegen.backend import classify
from byoc_mlir.dialects import byoc
from byoc_mlir.errors import ByocError
from byoc_mlir.graph import function_graphs
from byoc_mlir.passes.base import ModulePass


@dataclass(frozen=True)
class AnnotatePass(ModulePass):
    """Options:
    backends: backend names in priority order (``--backend`` fills this).
    """

    NAME = "byoc-annotate"
    backends: tuple[str, ...] = ()

    def apply(self, module_op: ir.Operation) -> None:
        if not self.backends:
            raise ByocError(f"{self.NAME} needs at least one backend (--backend NAME)")
        backends = registry.resolve(self.backends)
        for graph in function_graphs(module_op):
            for op in graph.ops:
                kind = classify(op)
                accept: list[str] = []
                reject: dict[str, str] = {}
                for backend in backends:
                    verdict = backend.check_op(op, kind)
                    if verdict is None:
                        accept.append(backend.name)
                    else:
                        reject[backend.name] = verdict.reason
                byoc.set_accept(op, tuple(accept))
                if reject:
                    byoc.set_reject(op, reject)
                else:
                    byoc.clear(op, (byoc.REJECT,))
