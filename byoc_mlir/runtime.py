"""Running a bundle: IREE's runtime plus the vendor VM modules of the runtime route.

`Compiled` is what `byoc_mlir.compile` returns and what `byoc-run` loads: call it with
numpy arrays, get numpy arrays back. For runtime-route regions it rebuilds each vendor
VM module from the payloads stored in the bundle and the backend found through its
entry point; the payload is handed over once, at load.
"""

from __future__ import annotations

import atexit
import gc
import json
import shutil
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from byoc_mlir import dtypes
from byoc_mlir.codegen import registry
from byoc_mlir.codegen.hook import TensorSpec
from byoc_mlir.errors import ByocError

MANIFEST = "bundle.json"
PARAMETERS = "params.irpa"
"""The bundle's parameter file, when the model's weights are read at run time."""
BUNDLE_VERSION = 1

_HAL_ELEMENT_TYPES = {
    "f32": "FLOAT_32",
    "f64": "FLOAT_64",
    "f16": "FLOAT_16",
    "i8": "SINT_8",
    "i16": "SINT_16",
    "i32": "SINT_32",
    "i64": "SINT_64",
    "i1": "BOOL_8",
}


def spec_json(spec: TensorSpec) -> dict[str, Any]:
    """``{"shape": [null, 8], "dtype": "f32", "dims": ["batch", null]}`` (``null``: a
    dynamic dimension; ``dims`` only when there is one)."""
    data: dict[str, Any] = {"shape": list(spec.shape), "dtype": spec.dtype}
    if spec.dims:
        data["dims"] = list(spec.dims)
    return data


def spec_from_json(data: dict[str, Any]) -> TensorSpec:
    return TensorSpec(tuple(data["shape"]), data["dtype"], tuple(data.get("dims", ())))


@dataclass(frozen=True)
class ServedRegion:
    """One runtime-route region: VM function name, payload file, signature."""

    backend: str
    function: str
    payload: str  # path relative to the bundle
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


def _vendor_module(
    rt: Any, backend_name: str, regions: Sequence[ServedRegion], root: Path, device: Any
) -> Any:
    backend = registry.get(backend_name)
    if backend.runtime is None:
        raise ByocError(f"backend '{backend_name}' has runtime-route regions but no runtime")
    loaded = []
    for region in regions:
        try:
            payload = (root / region.payload).read_bytes()
        except OSError as err:
            raise ByocError(f"bundle {root}: payload {region.payload} unreadable: {err}") from None
        try:
            loaded.append((region, backend.runtime(payload)))
        except Exception as err:  # noqa: BLE001 - a vendor loader's failure, named
            raise ByocError(
                f"bundle {root}: payload {region.payload} of {backend_name} cannot be loaded: {err}"
            ) from None
    return serving_module(rt, backend_name, loaded, device)


def serving_module(
    rt: Any, module_name: str, regions: Sequence[tuple[ServedRegion, Any]], device: Any
) -> Any:
    """The VM module ``module_name`` exporting each region's callable (numpy in, out)."""

    class Served:  # the VM module's state object; one per context
        def __init__(self, iface: Any) -> None:
            self.iface = iface

    iface = rt.PyModuleInterface(module_name, Served)
    for region, fn in regions:
        iface.export(
            region.function,
            calling_convention(len(region.inputs), len(region.outputs)),
            _serve(rt, fn, region, device),
        )
    return iface.create()


def calling_convention(n_inputs: int, n_outputs: int) -> str:
    """The VM signature of an import taking/returning buffer views (``v``: none)."""
    return "0" + ("r" * n_inputs or "v") + "_" + ("r" * n_outputs or "v")


def _serve(rt: Any, fn: Any, region: ServedRegion, device: Any) -> Any:
    in_types = [(s.shape, s.numpy_dtype) for s in region.inputs]
    out_specs = region.outputs
    element_types = [getattr(rt.HalElementType, _HAL_ELEMENT_TYPES[s.dtype]) for s in out_specs]

    def call(_self: Any, *refs: Any) -> Any:
        # Zero-copy views of IREE's buffers; the runtime must not keep them. A dynamic
        # dimension takes the buffer view's size.
        buffers = [r.deref(rt.HalBufferView) for r in refs]
        arrays = [
            b.map().asarray(shape if None not in shape else tuple(b.shape), dtype)
            for b, (shape, dtype) in zip(buffers, in_types, strict=True)
        ]
        results = fn(*arrays)
        views = []
        for res, spec, et in zip(results, out_specs, element_types, strict=True):
            arr = _c_array(res, spec.numpy_dtype)
            if spec.is_static:
                arr = arr.reshape(spec.static_shape)
            elif not spec.fits(arr.shape):
                raise ByocError(f"{region.function}: output of shape {arr.shape}, not {spec.mlir}")
            views.append(
                device.allocator.allocate_buffer_copy(
                    memory_type=rt.MemoryType.DEVICE_LOCAL,
                    allowed_usage=rt.BufferUsage.DEFAULT,
                    device=device,
                    buffer=arr,
                    element_type=et,
                )
            )
        if not views:
            return None
        return views[0].ref if len(views) == 1 else tuple(v.ref for v in views)

    return call


def _c_array(value: Any, dtype: np.dtype) -> np.ndarray:
    """``value`` as a C-contiguous array of ``dtype``, rank kept (0-d stays 0-d, which
    ``np.ascontiguousarray`` would make 1-d)."""
    arr = np.asarray(value, dtype=dtype)
    return arr if arr.flags.c_contiguous else arr.copy(order="C")


_LIVE: weakref.WeakSet[Compiled] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    # Vendor VM modules hold Python objects in reference cycles; unless they are freed
    # before the runtime's extension unloads, nanobind prints "leaked instance" noise.
    for compiled in list(_LIVE):
        compiled.close()
    gc.collect()


class Compiled:
    """A compiled model: call it with numpy arrays.

    Attributes:
        bundle: the bundle directory (vmfb, artifacts, payloads, report.json).
        report: the decision log (``report.json`` contents).
        inputs / outputs: the entry function's signature.
    """

    def __init__(self, bundle: str | Path, driver: str = "local-task", *, owned: bool = False):
        """Loads ``bundle``; with ``owned`` the directory is deleted by `close` (or when
        this object is collected, or at exit): `compile` without an output directory."""
        import iree.runtime as rt

        self.bundle = Path(bundle)
        if owned:
            self._remove = weakref.finalize(self, shutil.rmtree, str(self.bundle), True)
        manifest_path = self.bundle / MANIFEST
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError) as err:
            raise ByocError(
                f"{self.bundle} is not a byoc_mlir bundle ({MANIFEST}: {err})"
            ) from None
        if manifest.get("version") != BUNDLE_VERSION:
            raise ByocError(
                f"{manifest_path}: bundle version {manifest.get('version')} is not supported "
                f"(expected {BUNDLE_VERSION}); recompile with byoc-compile"
            )
        self.manifest = manifest
        self.entry: str = manifest["entry"]
        self.inputs = [spec_from_json(s) for s in manifest["inputs"]]
        self.outputs = [spec_from_json(s) for s in manifest["outputs"]]
        self.dims: dict[str, tuple[int, int] | None] = {
            name: None if r is None else (int(r[0]), int(r[1]))
            for name, r in manifest.get("dims", {}).items()
        }
        """Dynamic dimensions of the signature by name: the range given at compile time
        (``--dim batch=1..32``), or None (any size)."""
        report_path = self.bundle / "report.json"
        self.report = json.loads(report_path.read_text()) if report_path.exists() else {}
        self._rt = rt
        self._config = rt.Config(driver)
        served: dict[str, list[ServedRegion]] = {}
        for r in manifest.get("served", []):
            region = ServedRegion(
                r["backend"],
                r["function"],
                r["payload"],
                tuple(spec_from_json(s) for s in r["inputs"]),
                tuple(spec_from_json(s) for s in r["outputs"]),
            )
            served.setdefault(region.backend, []).append(region)
        instance = self._config.vm_instance
        vendor = [
            _vendor_module(rt, name, regions, self.bundle, self._config.device)
            for name, regions in sorted(served.items())
        ]
        vmfb = (self.bundle / manifest["module"]).read_bytes()
        main = rt.VmModule.copy_buffer(instance, vmfb)
        if "parameters" in manifest:  # weights read from the bundle's .irpa at run time
            vendor.insert(0, self._parameters_module(rt, instance, manifest["parameters"]))
        try:
            self._context = rt.SystemContext(vm_modules=[*vendor, main], config=self._config)
        except RuntimeError as err:
            raise ByocError(f"cannot load {self.bundle}: {err}") from None
        self._fn = self._context.modules.module[self.entry]
        _LIVE.add(self)

    def _parameters_module(self, rt: Any, instance: Any, entry: dict[str, Any]) -> Any:
        path = self.bundle / entry["file"]
        index = rt.ParameterIndex()
        try:
            index.load(str(path))
        except (OSError, RuntimeError, ValueError) as err:
            raise ByocError(f"bundle {self.bundle}: parameter file {path.name}: {err}") from None
        provider = index.create_provider(scope=entry["scope"])
        return rt.create_io_parameters_module(instance, provider)

    def close(self) -> None:
        """Releases the runtime context (the object cannot be called afterwards) and
        deletes the bundle if this object owns it."""
        for name in ("_fn", "_context", "_config"):
            if hasattr(self, name):
                delattr(self, name)
        if hasattr(self, "_remove"):
            self._remove()

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        """Runs the entry function; returns one array per output (copies, safe to keep)."""
        if len(arrays) != len(self.inputs):
            raise ByocError(f"{self.entry} takes {len(self.inputs)} inputs, got {len(arrays)}")
        args = []
        bound: dict[str, int] = {}
        for i, (a, spec) in enumerate(zip(arrays, self.inputs, strict=True)):
            arr = _c_array(a, spec.numpy_dtype)
            self._check_shape(i, arr.shape, spec, bound)
            args.append(dtypes.to_iree(arr, spec.dtype))
        result = self._fn(*args)
        results = result if isinstance(result, tuple | list) else [result]
        # np.asarray on an IREE result is a view that does not keep the device buffer
        # alive: copy, so outputs stay valid after later calls.
        return [
            dtypes.from_iree(np.asarray(r).copy(), spec.dtype)
            for r, spec in zip(results, self.outputs, strict=True)
        ]

    def _check_shape(
        self, i: int, shape: tuple[int, ...], spec: TensorSpec, bound: dict[str, int]
    ) -> None:
        """Input ``i``'s shape against its spec: static dims equal, each named dynamic
        dimension one value across the inputs and inside its compile-time range."""
        wrong = f"input {i} of {self.entry} has shape {shape}, expected {spec.mlir}"
        if not spec.fits(shape):
            raise ByocError(wrong)
        for got, name in zip(shape, spec.dims, strict=False):  # names: dynamic dims only
            if name is None:
                continue
            if bound.setdefault(name, got) != got:
                raise ByocError(f"{wrong}: dimension {name} is {bound[name]} in an earlier input")
            span = self.dims.get(name)
            if span is not None and not span[0] <= got <= span[1]:
                raise ByocError(
                    f"{wrong}: dimension {name} = {got} is outside its compiled range "
                    f"{span[0]}..{span[1]}"
                )

    def random_inputs(
        self, seed: int = 0, dims: Mapping[str, int] | None = None
    ) -> list[np.ndarray]:
        """Seeded random inputs matching the signature (normal floats, small ints);
        dynamic dimensions take ``dims[name]``, else the low end of their range, else 1."""
        return seeded_inputs(self.inputs, seed, {**default_sizes(self.dims), **(dims or {})})


def default_sizes(ranges: Mapping[str, Sequence[int] | None]) -> dict[str, int]:
    """The size each dynamic dimension takes when none is given: the low end of its
    range (``Compiled.dims``, a manifest's ``dims``), else 1."""
    return {name: span[0] if span else 1 for name, span in ranges.items()}


def seeded_inputs(
    specs: Sequence[TensorSpec], seed: int = 0, dims: Mapping[str, int] | None = None
) -> list[np.ndarray]:
    """Seeded random arrays for a signature (normal floats, small ints); a dynamic
    dimension takes its value from ``dims`` (by name), else 1."""
    rng = np.random.default_rng(seed)
    out = []
    for spec in specs:
        shape = spec.bind({name: (dims or {}).get(name, 1) for name in spec.dims if name})
        if spec.dtype in dtypes.FLOATS:
            out.append(rng.standard_normal(shape).astype(spec.numpy_dtype))
        else:
            out.append(rng.integers(0, 8, size=shape).astype(spec.numpy_dtype))
    return out
