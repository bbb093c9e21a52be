"""linalg's op classes without its OpDSL: ``from byoc_mlir.linalg_ops import linalg``.

``iree.compiler.dialects.linalg`` builds its named-op DSL (YAML included) on import:
~70 ms, a fifth of ``byoc-opt``'s start-up, for functions the partitioner never calls.
Op classes (``linalg.MatmulOp``, their ``OPERATION_NAME``) come from the generated
module, the same class objects the full module exports; anything else (the OpDSL
builders ``linalg.fill(...)``, ``linalg.generic``, ``ElementwiseOp``, which the full
module replaces) loads the full module on first use.

The bindings import a dialect's Python module the first time they wrap one of its ops
(``block.operations``), so this module also puts `byoc_mlir._light` first on their
search path: for linalg they find the generated classes there and stop. An explicit
``from iree.compiler.dialects import linalg`` still imports the full module.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from iree.compiler.dialects import _linalg_ops_gen

_mlir = importlib.import_module("iree.compiler._mlir_libs._mlir")

_LIGHT = "byoc_mlir._light"
_search = _mlir.globals.dialect_search_modules
if _LIGHT not in _search:
    _mlir.globals.dialect_search_modules = [_LIGHT, *_search]

_REPLACED = frozenset({"ElementwiseOp"})  # re-registered by the full module


class _Linalg(ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.endswith("Op") and name[:1].isupper() and name not in _REPLACED:
            value = getattr(_linalg_ops_gen, name, None)
            if value is not None:
                setattr(self, name, value)
                return value
        value = getattr(importlib.import_module("iree.compiler.dialects.linalg"), name)
        setattr(self, name, value)
        return value


linalg: Any = _Linalg("linalg")
