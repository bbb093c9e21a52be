"""``byoc-annotate``: record, per op, which backends accept it alone and why others refuse.

Every node of every partitionable function gets ``byoc.accept`` (backends in priority
order, possibly empty) and, when some backend refused, ``byoc.reject`` with one reason
per refusing backend. Nothing is moved; later passes read these tags.
"""

from __future__ import annotations

from dataclasses import dataclass

from iree.compiler import ir

from byoc_mlir.codegen import registry
from byoc_mlir.dataflow import FunctionGraph
from byoc_mlir.dialects import byoc
from byoc_mlir.errors import ByocError
from byoc_mlir.passes.base import ModulePass


@dataclass(frozen=True)
class AnnotatePass(ModulePass):
    """Options:
    backends: backend names in priority order (``--backend`` fills this).
    """

    NAME = "byoc-annotate"
    backends: tuple[str, ...] = ()

    def run(self, module_op: ir.Operation, graphs: list[FunctionGraph]) -> None:
        if not self.backends:
            raise ByocError(f"{self.NAME} needs at least one backend (--backend NAME)")
        backends = registry.resolve(self.backends)
        for graph in graphs:
            accepts: list[tuple[str, ...]] = []
            rejects: list[dict[str, str]] = []
            for op, kind, operands in zip(graph.ops, graph.kinds(), graph.operands, strict=True):
                accept: list[str] = []
                reject: dict[str, str] = {}
                for backend in backends:
                    verdict = backend.check_op(op, kind, operands=operands)
                    if verdict is None:
                        accept.append(backend.name)
                    else:
                        reject[backend.name] = verdict.reason
                accepts.append(tuple(accept))
                rejects.append(reject)
                if not graph.write_tags:
                    continue
                byoc.set_accept(op, accepts[-1])
                if reject:
                    byoc.set_reject(op, reject)
                elif byoc.REJECT in op.attributes:
                    byoc.clear(op, (byoc.REJECT,))
            graph.tags.accept = accepts
            graph.tags.reject = rejects
