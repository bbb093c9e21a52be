"""The runtime route: an outlined function served at run time by the vendor's runtime.

The outlined function ``@jsonrt.main_0`` becomes a bodiless declaration; IREE compiles
it into a VM import of module ``jsonrt``, function ``main_0``. At load time
`byoc_mlir.runtime` builds that VM module from the backend's ``runtime`` factory and the
payloads stored in the bundle (handed over once), and serves each call on zero-copy
numpy views of the device buffers.
"""

from __future__ import annotations

from iree.compiler import ir

from byoc_mlir import _compat
from byoc_mlir.codegen.hook import RegionView
from byoc_mlir.codegen.linked import _splice


def declare(module_op: ir.Operation, func: ir.Operation, view: RegionView) -> None:
    """Replaces ``func`` by a bodiless declaration with the same signature."""
    flavor = _compat.FLAVORS[func.name]
    inputs = ", ".join(s.mlir for s in view.inputs)
    outputs = ", ".join(s.mlir for s in view.outputs)
    text = f'module {{\n  {flavor.func} private @"{view.name}"({inputs}) -> ({outputs})\n}}'
    _splice(module_op, func, text)


def import_name(view_name: str) -> tuple[str, str]:
    """(VM module, function) that IREE imports for ``<backend>.<function>``."""
    module, _, function = view_name.partition(".")
    return module, function
