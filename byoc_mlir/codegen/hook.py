"""The codegen hook contract: what a vendor's hook receives and what it returns.

A backend's ``codegen`` hook is called once per outlined function::

    def codegen(region: RegionView, options: CodegenOptions) -> LinkedArtifact | RuntimeArtifact

`RegionView` is a simple typed view of the outlined function (inputs, outputs, ops in
program order with their kinds and composites, constants as numpy arrays); the MLIR op
is there too for hooks that want it. The hook returns an artifact for one of two routes:

- **linked** (`LinkedArtifact`): C source, an object file or LLVM bitcode defining one
  function per `Kernel`. The toolkit builds it, and replaces the outlined function's
  body by one ``flow.dispatch`` per kernel into a ``stream.executable`` that links the
  code, so it runs inside IREE's scheduler. Kernel calling convention (C)::

      void symbol(const T* arg0, size_t arg0_offset, ...,   // one pair per Kernel.args
                  T* res0, size_t res0_offset, ...,         // one pair per Kernel.results
                  size_t workgroup_id, size_t workgroup_count);

  Offsets are in elements. Buffers are dense row-major; a result buffer never aliases
  an argument buffer (C ``restrict`` is safe). The kernel is called
  ``workgroups`` times, possibly in parallel, with ids ``0..workgroup_count-1``; each
  call must write a disjoint part of the results. Code must be freestanding (no libc,
  no malloc, no threads): it is linked into IREE's embedded ELF executables.
- **runtime** (`RuntimeArtifact`): payload bytes; at run time the backend's ``runtime``
  factory turns the payload into a callable over numpy arrays, served to the compiled
  module as a VM import. The outlined function becomes a bodiless declaration.

A hook that raises, or returns anything else, puts that one region back on the host
(per-region fallback); the reason is recorded in the report.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from iree.compiler import ir

from byoc_mlir import _compat
from byoc_mlir.codegen.backend import KindKey, classify, kind_name
from byoc_mlir.codegen.tensor_spec import TensorSpec
from byoc_mlir.dataflow import is_free
from byoc_mlir.dialects import byoc


@dataclass(frozen=True)
class ValueRef:
    """Where a kernel operand comes from: region argument ``index``, or result
    ``result`` of kernel ``index`` (an earlier kernel of the same artifact)."""

    source: Literal["arg", "kernel"]
    index: int
    result: int = 0

    @staticmethod
    def arg(i: int) -> ValueRef:
        return ValueRef("arg", i)

    @staticmethod
    def kernel(k: int, r: int = 0) -> ValueRef:
        return ValueRef("kernel", k, r)


@dataclass(frozen=True)
class RegionOp:
    """One op of the region, in program order."""

    op: ir.Operation
    kind: KindKey
    kind_name: str
    composite: byoc.CompositeTag | None


@dataclass
class RegionView:
    """A typed view of one outlined function, for codegen hooks.

    Attributes:
        name: the function's symbol, ``<backend>.<name>``.
        symbol: ``name`` made a safe C identifier / file name (``backend_name``).
        backend: the backend name.
        func: the outlined function op (``func.func`` or ``util.func``).
        inputs / outputs: the function's signature.
        args: the entry block arguments (``inputs`` order).
        results: the returned values (``outputs`` order).
        ops: the compute ops in program order (constants and ``tensor.empty`` excluded).
        composites: names of the composites inside, in order.
        constants: every constant value defined in the function, as a numpy array.
    """

    name: str
    symbol: str
    backend: str
    func: ir.Operation
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    args: list[ir.Value]
    results: list[ir.Value]
    ops: list[RegionOp]
    composites: list[str]
    constants: dict[ir.Value, np.ndarray] = field(default_factory=dict)

    @staticmethod
    def of(func: ir.Operation) -> RegionView:
        name = _compat.symbol_name(func)
        ftype = _compat.function_type(func)
        block = func.regions[0].blocks[0]
        body = [o.operation for o in block.operations]
        ops: list[RegionOp] = []
        constants: dict[ir.Value, np.ndarray] = {}
        for op in body[:-1]:
            if is_free(op):
                array = constant_array(op)
                if array is not None:
                    constants[op.results[0]] = array
                continue
            kind = classify(op)
            ops.append(RegionOp(op, kind, kind_name(kind), byoc.get_composite(op)))
        return RegionView(
            name=name,
            symbol=c_identifier(name),
            backend=backend_of(func),
            func=func,
            inputs=[TensorSpec.of(t) for t in ftype.inputs],
            outputs=[TensorSpec.of(t) for t in ftype.results],
            args=list(block.arguments),
            results=list(body[-1].operands),
            ops=ops,
            composites=byoc.get_composites(func),
            constants=constants,
        )

    def units(self) -> list[list[RegionOp]]:
        """Ops grouped into units (each composite's members together, others alone), in
        a valid execution order: by each unit's last member, since only a unit's last
        result is used outside it (composite members may interleave with other ops)."""
        units: list[tuple[int, list[RegionOp]]] = []
        by_id: dict[int, list[RegionOp]] = {}
        last: dict[int, int] = {}
        for pos, rop in enumerate(self.ops):
            if rop.composite is None:
                units.append((pos, [rop]))
                continue
            group = by_id.get(rop.composite.id)
            if group is None:
                group = by_id[rop.composite.id] = []
            group.append(rop)
            last[rop.composite.id] = pos
        units += [(last[cid], group) for cid, group in by_id.items()]
        return [group for _, group in sorted(units, key=lambda u: u[0])]


def backend_of(func: ir.Operation) -> str:
    """The backend an outlined function is for: its tag, else its name's prefix."""
    return byoc.get_target(func) or _compat.symbol_name(func).partition(".")[0]


def constant_array(op: ir.Operation) -> np.ndarray | None:
    """The value of an ``arith.constant`` / ``tosa.const`` as numpy (read-only for
    ``dense_resource`` blobs), None otherwise."""
    attrs = op.attributes
    key = "value" if "value" in attrs else "values" if "values" in attrs else None
    if key is None:
        return None
    attr = attrs[key]
    resource = _compat.resource_array(attr)
    if resource is not None:
        return resource
    if isinstance(attr, ir.DenseElementsAttr):
        return np.array(attr)
    if isinstance(attr, ir.FloatAttr):
        return np.array(attr.value, dtype=np.float32 if str(attr.type) == "f32" else np.float64)
    if isinstance(attr, ir.IntegerAttr):
        return np.array(attr.value)
    return None


def c_identifier(name: str) -> str:
    """A symbol name made safe as a C identifier and a file name (no path, no quotes)."""
    clean = "".join(c if c.isalnum() or c == "_" else "_" for c in name.replace(".", "_"))
    clean = clean.strip("_") or "region"
    if not clean.isascii():
        clean = "".join(c if c.isascii() else "_" for c in clean)
    return clean if not clean[0].isdigit() else f"r_{clean}"


@dataclass(frozen=True)
class CodegenOptions:
    """What the toolkit tells a hook.

    Attributes:
        threads: how many threads run IREE's workers (a good workgroup count).
        backend_options: free-form ``key=value`` options the user gave this backend.
    """

    threads: int = 2
    backend_options: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Kernel:
    """One vendor function of a linked artifact; becomes one ``flow.dispatch``.

    Attributes:
        symbol: the C symbol (a C identifier).
        args: the operands in signature order.
        results: the tensors the kernel writes, in signature order.
        workgroups: how many chunks IREE may run in parallel (>= 1).
        sizes: the dynamic sizes the kernel takes, as ``size_t`` parameters after the
            result's (before the workgroup id), in this order: each the size of
            dimension ``axis`` of region input ``input``, as ``(input, axis)``. Every
            dynamic dimension of the kernel's operands and results must be among them.
        result_sizes: per result, per dimension: the ``(input, axis)`` whose size a
            dynamic dimension has (None for a static one); required when a result has
            dynamic dimensions.
    """

    symbol: str
    args: list[ValueRef]
    results: list[TensorSpec]
    workgroups: int = 1
    sizes: list[tuple[int, int]] = field(default_factory=list)
    result_sizes: list[list[tuple[int, int] | None]] | None = None


@dataclass
class LinkedArtifact:
    """Vendor code linked into IREE dispatches. Give exactly one of ``c_source``,
    ``object_path`` or ``bitcode_path``.

    Attributes:
        kernels: the kernels, in execution order (a kernel may read earlier kernels').
        outputs: where each region output comes from.
        c_source: C source; built with the system C compiler (freestanding flags).
        object_path: a prebuilt ELF object (x86_64, freestanding, PIC).
        bitcode_path: LLVM bitcode for the embedded ELF target.
    """

    kernels: list[Kernel]
    outputs: list[ValueRef]
    c_source: str | None = None
    object_path: Path | None = None
    bitcode_path: Path | None = None
    route: Literal["linked"] = "linked"
    notes: list[str] = field(default_factory=list)
    """What the backend wants the report to say about its code (one line each: how an op
    was run, and why); shown under the region's ``codegen`` in report.json."""

    def to_json(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "kernels": [
                {
                    "symbol": k.symbol,
                    "args": [asdict(a) for a in k.args],
                    "results": [{"shape": list(r.shape), "dtype": r.dtype} for r in k.results],
                    "workgroups": k.workgroups,
                    "sizes": [list(s) for s in k.sizes],
                    "result_sizes": None
                    if k.result_sizes is None
                    else [[None if d is None else list(d) for d in r] for r in k.result_sizes],
                }
                for k in self.kernels
            ],
            "outputs": [asdict(o) for o in self.outputs],
            "notes": list(self.notes),
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> LinkedArtifact:
        return LinkedArtifact(
            kernels=[
                Kernel(
                    k["symbol"],
                    [ValueRef(**a) for a in k["args"]],
                    [TensorSpec(tuple(r["shape"]), r["dtype"]) for r in k["results"]],
                    k["workgroups"],
                    [(int(i), int(a)) for i, a in k.get("sizes", [])],
                    None
                    if k.get("result_sizes") is None
                    else [
                        [None if d is None else (int(d[0]), int(d[1])) for d in r]
                        for r in k["result_sizes"]
                    ],
                )
                for k in data["kernels"]
            ],
            outputs=[ValueRef(**o) for o in data["outputs"]],
            notes=list(data.get("notes", [])),
        )


@dataclass
class RuntimeArtifact:
    """A payload served at run time by the backend's ``runtime`` factory."""

    payload: bytes
    route: Literal["runtime"] = "runtime"
    notes: list[str] = field(default_factory=list)
    """As `LinkedArtifact.notes`."""


Artifact = LinkedArtifact | RuntimeArtifact

RuntimeFn = Callable[..., Sequence[np.ndarray]]
"""What a backend's ``runtime(payload)`` returns: numpy arrays in, numpy arrays out
(one per region output, matching `RegionView.outputs`)."""


class ArtifactError(Exception):
    """An artifact is malformed or does not build; its region falls back to the host."""


def validate(artifact: object, view: RegionView) -> Artifact:
    """Checks an artifact against its region. Raises ArtifactError with the reason."""
    notes = getattr(artifact, "notes", [])
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise ArtifactError("notes must be a list of strings")
    if isinstance(artifact, RuntimeArtifact):
        if not isinstance(artifact.payload, bytes | bytearray):
            raise ArtifactError("RuntimeArtifact.payload must be bytes")
        return artifact
    if not isinstance(artifact, LinkedArtifact):
        raise ArtifactError(
            f"the hook returned {type(artifact).__name__}, expected LinkedArtifact or "
            f"RuntimeArtifact"
        )
    sources = [artifact.c_source, artifact.object_path, artifact.bitcode_path]
    if sum(s is not None for s in sources) != 1:
        raise ArtifactError("give exactly one of c_source, object_path, bitcode_path")
    if not artifact.kernels:
        raise ArtifactError("a linked artifact needs at least one kernel")
    for k, kernel in enumerate(artifact.kernels):
        if c_identifier(kernel.symbol) != kernel.symbol:
            raise ArtifactError(f"kernel symbol {kernel.symbol!r} is not a C identifier")
        if kernel.workgroups < 1:
            raise ArtifactError(f"kernel {kernel.symbol}: workgroups must be >= 1")
        if not kernel.results:
            raise ArtifactError(f"kernel {kernel.symbol} writes no result")
        for ref in kernel.args:
            _check_ref(ref, k, artifact, view)
        _check_sizes(kernel, k, artifact, view)
    if len(artifact.outputs) != len(view.outputs):
        raise ArtifactError(
            f"{len(artifact.outputs)} outputs given, the region has {len(view.outputs)}"
        )
    for ref, spec in zip(artifact.outputs, view.outputs, strict=True):
        _check_ref(ref, len(artifact.kernels), artifact, view)
        got = _ref_spec(ref, artifact, view)
        if got != spec:
            raise ArtifactError(f"output {ref} is {got.mlir}, the region returns {spec.mlir}")
    return artifact


def _check_sizes(kernel: Kernel, k: int, artifact: LinkedArtifact, view: RegionView) -> None:
    """Every dynamic dimension a kernel reads or writes is a size it takes."""
    for i, axis in kernel.sizes:
        if not (0 <= i < len(view.inputs) and 0 <= axis < len(view.inputs[i].shape)):
            raise ArtifactError(f"kernel {kernel.symbol}: size {(i, axis)} names no input dim")
    taken = set(kernel.sizes)
    dynamic = [r for r in kernel.results if not r.is_static]
    if dynamic and (kernel.result_sizes is None or len(kernel.result_sizes) != len(kernel.results)):
        raise ArtifactError(f"kernel {kernel.symbol}: dynamic results need result_sizes")
    for r, spec in enumerate(kernel.results):
        dims = kernel.result_sizes[r] if kernel.result_sizes is not None else []
        for axis, d in enumerate(spec.shape):
            if d is None and (len(dims) != len(spec.shape) or dims[axis] not in taken):
                raise ArtifactError(
                    f"kernel {kernel.symbol}: dynamic dim {axis} of result {r} is not one of "
                    f"its sizes"
                )
    for ref in kernel.args:
        for axis, d in enumerate(_ref_spec(ref, artifact, view).shape):
            if d is None and _ref_size(ref, axis, artifact) not in taken:
                raise ArtifactError(
                    f"kernel {kernel.symbol}: dynamic dim {axis} of {ref} is not one of its sizes"
                )


def _ref_size(ref: ValueRef, axis: int, artifact: LinkedArtifact) -> tuple[int, int] | None:
    """The (input, axis) a dynamic dimension of ``ref`` has."""
    if ref.source == "arg":
        return (ref.index, axis)
    sizes = artifact.kernels[ref.index].result_sizes
    return sizes[ref.result][axis] if sizes is not None else None


def _check_ref(ref: ValueRef, before: int, artifact: LinkedArtifact, view: RegionView) -> None:
    if ref.source == "arg":
        if not 0 <= ref.index < len(view.inputs):
            raise ArtifactError(f"{ref} names a region argument that does not exist")
    elif ref.source == "kernel":
        if not 0 <= ref.index < before:
            raise ArtifactError(f"{ref} names a kernel that has not run yet")
        if not 0 <= ref.result < len(artifact.kernels[ref.index].results):
            raise ArtifactError(f"{ref} names a kernel result that does not exist")
    else:
        raise ArtifactError(f"{ref}: source must be 'arg' or 'kernel'")


def _ref_spec(ref: ValueRef, artifact: LinkedArtifact, view: RegionView) -> TensorSpec:
    if ref.source == "arg":
        return view.inputs[ref.index]
    return artifact.kernels[ref.index].results[ref.result]


def dumps(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, indent=1, sort_keys=True)
