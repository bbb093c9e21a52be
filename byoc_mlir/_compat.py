"""The one place that touches fast-moving IREE/MLIR Python binding details.

IREE 3.13 bundles the MLIR Python bindings as ``iree.compiler.ir``. What changes between
releases — how a Python pass is added to a pass manager, how parse errors surface, how
function-like ops (``func.func`` and IREE's ``util.func``) are built — lives here, so the
rest of the package is written against this module's small, stable surface.
"""

from __future__ import annotations

import ctypes
import re
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from iree.compiler import ir, passmanager

from byoc_mlir.errors import ByocError


@dataclass(frozen=True)
class FuncFlavor:
    """The op names of one function-like dialect (func or util)."""

    func: str
    call: str
    ret: str


FUNC = FuncFlavor("func.func", "func.call", "func.return")
UTIL = FuncFlavor("util.func", "util.call", "util.return")
FLAVORS = {FUNC.func: FUNC, UTIL.func: UTIL}
CALL_OPS = frozenset({FUNC.call, UTIL.call})


def new_context(multithreaded: bool = True) -> ir.Context:
    """Returns a context with every dialect IREE's bindings register (linalg, tosa, util...).

    ``multithreaded=False`` for a context in a forked child (`byoc_mlir.isolate`): the
    thread pool it would share was started in the parent, and its threads do not exist
    after ``fork`` (a pass waiting on them waits forever).
    """
    context = ir.Context()
    if not multithreaded:
        context.enable_multithreading(False)
    return context


def parse_module(text: str | bytes, context: ir.Context, filename: str = "-") -> ir.Module:
    """Parses MLIR text or bytecode.

    Raises:
        ByocError: with the first diagnostic's location (file name substituted) when the
            input does not parse or verify.
    """
    with context:
        try:
            module = ir.Module.parse(text)
            if isinstance(text, str):
                _note_resources(text, context)
            return module
        except ir.MLIRError as err:
            diags = list(err.error_diagnostics)
            if not diags:
                raise ByocError(f"{filename}: {err.message}") from None
            first = diags[0]
            where = str(first.location).replace('"-"', f'"{filename}"', 1)
            notes = "; ".join(d.message for d in diags[1:])
            raise ByocError(first.message, where, notes) from None


def parse_file(path: str | Path, context: ir.Context) -> ir.Module:
    """Parses an ``.mlir`` (text or bytecode) file; the file name appears in locations."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ByocError(f"cannot read {path}: {err.strerror}") from None
    if data.startswith(b"ML\xefR"):  # MLIR bytecode magic
        return parse_module(data, context, str(path))
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise ByocError(f"{path} is neither MLIR text nor MLIR bytecode") from None
    # Parsed from the file, so locations (and decisions) point at the user's file; on a
    # parse error, parse_module words it.
    with context:
        try:
            module = ir.Module.parseFile(str(path))
        except ir.MLIRError:
            return parse_module(text, context, str(path))
        _note_resources(text, context)
    return module


# --- dense_resource blobs -------------------------------------------------------------
# The bindings can create a ``dense_resource`` attribute but not read one back. Weights
# arrive as such blobs (frontends emit them), and a backend that wants its weights at
# compile time (or a pass folding them) must see the values: the blobs are read from the
# text the module was parsed from, lazily, once per context.


class _Blobs:
    def __init__(self, section: str):
        self.section: str | None = section
        self.blobs: dict[str, bytes] = {}

    def get(self, name: str) -> bytes | None:
        if self.section is not None:
            for m in _BLOB.finditer(self.section):
                self.blobs[m.group(1).strip('"')] = bytes.fromhex(m.group(2))
            self.section = None
        return self.blobs.get(name)


_BLOB = re.compile(r'^\s*("[^"\n]*"|[^\s:"]+)\s*:\s*"0x([0-9A-Fa-f]*)"', re.M)
_RESOURCE_NAME = re.compile(r'^dense_resource<("[^"]*"|[^>]*)>')
_BLOBS: weakref.WeakKeyDictionary[ir.Context, list[_Blobs]] = weakref.WeakKeyDictionary()


def _note_resources(text: str, context: ir.Context) -> None:
    start = text.rfind("{-#")
    if start >= 0 and "dialect_resources" in text[start : start + 200]:
        _BLOBS.setdefault(context, []).append(_Blobs(text[start:]))


_RESOURCE_DTYPES = {
    "f32": "<f4",
    "f64": "<f8",
    "f16": "<f2",
    "i8": "i1",
    "i16": "<i2",
    "i32": "<i4",
    "i64": "<i8",
    "i1": "?",
}


def resource_array(attr: ir.Attribute) -> np.ndarray | None:
    """The value of a ``dense_resource`` attribute as numpy, or None when it is not one or
    its blob is unknown (elided, or the module was not parsed from text here)."""
    m = _RESOURCE_NAME.match(str(attr))
    if m is None:
        return None
    shaped = ir.ShapedType(attr.type)
    dtype = _RESOURCE_DTYPES.get(str(shaped.element_type))
    if dtype is None or not shaped.has_static_shape:
        return None
    name = m.group(1).strip('"')
    for table in _BLOBS.get(attr.context, []):
        blob = table.get(name)
        if blob is not None:
            data = np.frombuffer(blob, dtype=dtype, offset=4)  # 4 bytes of alignment first
            if data.size != int(np.prod(shaped.shape)):
                return None
            return data.reshape(shaped.shape)
    return None


PassFn = Callable[[ir.Operation], None]


def add_python_pass(pm: passmanager.PassManager, fn: PassFn, name: str) -> None:
    """Adds a Python pass over the ``builtin.module`` operation to ``pm``.

    The bindings call the callable as ``(op, pass_)``. ``op_name=`` must not be used in
    IREE 3.13 (dangling string in the C API); the pass always runs on the module and
    walks functions itself.
    """

    def run(op: ir.Operation, _pass: object) -> None:
        fn(op.operation)

    pm.add(run, name=name)


_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype = ctypes.c_void_p
_capsule_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
_capsule_name = ctypes.pythonapi.PyCapsule_GetName
_capsule_name.restype = ctypes.c_char_p
_capsule_name.argtypes = [ctypes.py_object]


def op_key(op: ir.Operation | ir.OpView) -> int:
    """A stable identity for an operation, usable as a dict key.

    ``hash(op)`` in these bindings changes when the op's attributes change, and two
    Python handles of one op are distinct objects, so neither ``hash`` nor ``id`` can key
    a map that outlives a mutation. The C++ pointer can.
    """
    capsule = op._CAPIPtr
    return _capsule_pointer(capsule, _capsule_name(capsule))  # type: ignore[no-any-return]


def module_body(module_op: ir.Operation) -> ir.Block:
    return module_op.regions[0].blocks[0]


def run_pipeline(module: ir.Module, pipeline: str) -> None:
    """Runs a textual MLIR pass pipeline (e.g. ``canonicalize,cse``) on the module."""
    with module.context:
        try:
            pm = passmanager.PassManager.parse(f"builtin.module({pipeline})")
        except (ValueError, ir.MLIRError) as err:
            raise ByocError(f"invalid MLIR pass pipeline '{pipeline}': {err}") from None
        pm.run(module.operation)


def function_type(func_op: ir.Operation) -> ir.FunctionType:
    return ir.FunctionType(ir.TypeAttr(func_op.attributes["function_type"]).value)


def symbol_name(op: ir.Operation) -> str:
    return ir.StringAttr(op.attributes["sym_name"]).value


def create_function(
    flavor: FuncFlavor,
    name: str,
    arg_types: Sequence[ir.Type],
    result_types: Sequence[ir.Type],
    ip: ir.InsertionPoint,
    loc: ir.Location,
    attributes: dict[str, ir.Attribute] | None = None,
) -> tuple[ir.Operation, ir.Block]:
    """Creates a private function with an empty entry block; returns (op, block).
    ``attributes`` are added to its own (tags, set at creation in one go)."""
    ftype = ir.FunctionType.get(list(arg_types), list(result_types))
    op = ir.Operation.create(
        flavor.func,
        attributes={
            "sym_name": ir.StringAttr.get(name),
            "function_type": ir.TypeAttr.get(ftype),
            "sym_visibility": ir.StringAttr.get("private"),
            **(attributes or {}),
        },
        regions=1,
        loc=loc,
        ip=ip,
    )
    block = op.regions[0].blocks.append(*arg_types, arg_locs=[loc] * len(arg_types))
    return op, block


def create_call(
    flavor: FuncFlavor,
    callee: str,
    operands: Sequence[ir.Value],
    result_types: Sequence[ir.Type],
    ip: ir.InsertionPoint,
    loc: ir.Location,
) -> ir.Operation:
    return ir.Operation.create(
        flavor.call,
        results=list(result_types),
        operands=list(operands),
        attributes={"callee": ir.FlatSymbolRefAttr.get(callee)},
        loc=loc,
        ip=ip,
    )


def create_return(
    flavor: FuncFlavor, values: Sequence[ir.Value], ip: ir.InsertionPoint, loc: ir.Location
) -> ir.Operation:
    return ir.Operation.create(flavor.ret, operands=list(values), loc=loc, ip=ip)


def is_public(op: ir.Operation) -> bool:
    attrs = op.attributes
    return "sym_visibility" not in attrs or ir.StringAttr(attrs["sym_visibility"]).value == "public"


def callee_name(call_op: ir.Operation) -> str:
    return ir.FlatSymbolRefAttr(call_op.attributes["callee"]).value


def print_module(module: ir.Module) -> str:
    return module.operation.get_asm(assume_verified=True)


def print_module_bytes(module: ir.Module) -> bytes:
    """`print_module` as UTF-8 bytes, for a file or stdout (no decoding to ``str``)."""
    return module.operation.get_asm(assume_verified=True, binary=True)  # type: ignore[no-any-return]
