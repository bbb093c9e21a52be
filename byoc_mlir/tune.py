"""Measured placement (``byoc-compile --tune``): each region where it runs faster.

A backend that accepts a region is not always the faster place for it: a few small ops
offloaded cost a boundary crossing and a vendor call that IREE's fused dispatch does not
(BERT-tiny's embedding tail, a lone elementwise region). With ``CompileOptions(tune=True)``
every offloaded runtime-route region is timed, on this machine, both ways after codegen:

- **backend**: the payload loaded by the backend's own runtime and called with seeded
  inputs of the region's signature, plus the measured cost of one runtime-route crossing
  (the host waits for its work, calls into a Python-served import and starts again:
  `crossing_ms`) when the model keeps compute ops on the host;
- **host**: the region's original function compiled by IREE, with the host module's
  flags, in one module holding every timed region, and called with the same inputs.

Each is the median of at least `MIN_RUNS` calls after a warm-up (more while under
`BUDGET_S`). A region whose host time is lower goes back to the host with the reason
``fallback: tuned: host 0.041 ms < dnnl 0.093 ms``.

Regions that each win alone can still lose together, so once the bundle is built the
whole model is timed as built and host-only (one more IREE compile of the whole model:
`whole_model_check`); when host-only is faster, every region goes back (``fallback:
tuned: the whole model runs faster host-only (...)``) and the bundle is host-only. So a
tuned build is never slower than IREE alone, up to the timing noise of this machine.

Every timed region's times are in its report entry (``timing``: ``backend_ms``,
``host_ms``, ``kept``, and ``whole_model_ms`` / ``host_only_ms``) and in the saved
placement plan (``tuned``), so a plan so tuned replays without timing anything. Regions
on the linked route are compiled into the host module by IREE and are not timed alone
(the whole-model check still covers them).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from iree.compiler import ir

from byoc_mlir import _compat, dtypes
from byoc_mlir.codegen import registry
from byoc_mlir.codegen.hook import TensorSpec
from byoc_mlir.errors import ByocError
from byoc_mlir.explain.decisions import DecisionLog
from byoc_mlir.host_compile import iree, one_line, put_back
from byoc_mlir.runtime import spec_from_json

MIN_RUNS = 5
MAX_RUNS = 200
BUDGET_S = 0.25
"""Per measurement: at least MIN_RUNS timed calls, more until BUDGET_S has passed."""


@dataclass
class Timing:
    """One region measured both ways (milliseconds per call; None: could not run there)."""

    backend: str
    backend_ms: float | None
    host_ms: float | None
    kept: str = ""  # "host", or the backend's name
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "backend": self.backend,
            "backend_ms": _round(self.backend_ms),
            "host_ms": _round(self.host_ms),
            "kept": self.kept,
        }
        if self.note:
            data["note"] = self.note
        return data


def _round(ms: float | None) -> float | None:
    return None if ms is None else round(ms, 4)


def median_ms(call: Callable[[], Any]) -> float:
    """Median milliseconds of ``call`` after one warm-up call (see `MIN_RUNS`)."""
    call()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < MAX_RUNS and (
        len(times) < MIN_RUNS or time.perf_counter() - start < BUDGET_S
    ):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def inputs_for(specs: Sequence[TensorSpec], seed: int = 0) -> list[np.ndarray]:
    """Seeded inputs for a signature: normal floats, zeros for integers (indices stay
    in range whatever they index)."""
    rng = np.random.default_rng(seed)
    out = []
    for spec in specs:
        if spec.dtype in dtypes.FLOATS:
            out.append(rng.standard_normal(spec.static_shape).astype(spec.numpy_dtype))
        else:
            out.append(np.zeros(spec.static_shape, spec.numpy_dtype))
    return out


def _timing_module(context: ir.Context, originals: Sequence[ir.Operation]) -> str:
    """One module with region ``k``'s original function as public ``@r<k>``.

    Built in the host module's ``context``: the functions' ``dense_resource`` weights
    name blobs held there, and the module prints them.
    """
    with context, ir.Location.unknown():
        timing = ir.Module.create()
        body = _compat.module_body(timing.operation)
        for k, original in enumerate(originals):
            func = original.clone(ir.InsertionPoint(body))
            func.attributes["sym_name"] = ir.StringAttr.get(f"r{k}")
            if "sym_visibility" in func.attributes:
                del func.attributes["sym_visibility"]
        return timing.operation.get_asm(assume_verified=True)


class _HostRunner:
    """The timed regions compiled by IREE, callable by index."""

    def __init__(
        self, context: ir.Context, originals: Sequence[ir.Operation], flags: Sequence[str]
    ):
        import iree.runtime as rt

        vmfb = iree(
            _timing_module(context, originals), ["--compile-from=input", *flags], "time regions"
        )
        self._config = rt.Config("local-task")
        main = rt.VmModule.copy_buffer(self._config.vm_instance, vmfb)
        self._context = rt.SystemContext(vm_modules=[main], config=self._config)
        self._module = self._context.modules.module

    def __call__(self, k: int, arrays: Sequence[np.ndarray]) -> Callable[[], Any]:
        fn = self._module[f"r{k}"]
        return lambda: fn(*arrays)


_CROSSING_MS: float | None = None


def crossing_ms() -> float:
    """What one runtime-route region costs the host beyond its own time, on this
    machine, measured once: host work, a call into a Python-served import that returns
    at once, more host work; less the same host work without the call (which IREE then
    fuses into one dispatch, as it would have without the region)."""
    global _CROSSING_MS
    if _CROSSING_MS is None:  # the first measurement still pays for warming up
        _CROSSING_MS = min(_measure_crossing(), _measure_crossing())
    return _CROSSING_MS


_CROSSING_MLIR = """
module {
  func.func private @vendor.region(tensor<4096xf32>) -> tensor<4096xf32>
  func.func @served(%x: tensor<4096xf32>) -> tensor<4096xf32> {
    %a = math.tanh %x : tensor<4096xf32>
    %b = call @vendor.region(%a) : (tensor<4096xf32>) -> tensor<4096xf32>
    %c = math.tanh %b : tensor<4096xf32>
    return %c : tensor<4096xf32>
  }
  func.func @direct(%x: tensor<4096xf32>) -> tensor<4096xf32> {
    %a = math.tanh %x : tensor<4096xf32>
    %c = math.tanh %a : tensor<4096xf32>
    return %c : tensor<4096xf32>
  }
}
"""


def _measure_crossing() -> float:
    import iree.runtime as rt

    from byoc_mlir import runtime

    flags = [
        "--iree-hal-target-device=local",
        "--iree-hal-local-target-device-backends=llvm-cpu",
        "--iree-llvmcpu-target-cpu=host",
    ]
    vmfb = iree(_CROSSING_MLIR, flags, "time a crossing")
    config = rt.Config("local-task")
    spec = TensorSpec((4096,), "f32")
    served = runtime.ServedRegion("vendor", "region", "", (spec,), (spec,))
    vendor = runtime.serving_module(rt, "vendor", [(served, lambda x: [x])], config.device)
    main = rt.VmModule.copy_buffer(config.vm_instance, vmfb)
    context = rt.SystemContext(vm_modules=[vendor, main], config=config)
    x = np.ones(4096, np.float32)
    module = context.modules.module
    return max(0.0, median_ms(partial(module.served, x)) - median_ms(partial(module.direct, x)))


def tune_regions(
    module_op: ir.Operation,
    log: DecisionLog,
    served: list[dict[str, Any]],
    originals: dict[str, ir.Operation],
    payloads: dict[str, bytes],
    flags: Sequence[str],
) -> dict[str, Timing]:
    """Times every served region both ways; the slower-on-backend go back to the host.

    ``payloads`` maps each served region to its payload bytes. Returns the timings by
    region name (also written to each region's report entry).
    """
    names = [f"{s['backend']}.{s['function']}" for s in served]
    names = [n for n in names if n in originals]
    timings: dict[str, Timing] = {}
    if not names:
        return timings
    host = _host_runners(module_op.context, names, originals, flags)
    # A crossing costs where the host has work around the region to stop and restart;
    # when the backend takes every compute op, its call replaces the host's dispatches.
    crossing = crossing_ms() if any(o.backend is None for o in log.ops) else 0.0
    for serve in served:
        name = f"{serve['backend']}.{serve['function']}"
        if name not in names:
            continue
        specs = [spec_from_json(s) for s in serve["inputs"]]
        arrays = inputs_for(specs)
        backend_name = log.region(name).backend
        timing = Timing(backend_name, None, None)
        try:
            region = registry.get(backend_name).runtime(payloads[name])  # type: ignore[misc]
            timing.backend_ms = round(median_ms(partial(region, *arrays)) + crossing, 4)
        except Exception as err:  # noqa: BLE001 - a runtime failure is the region's
            timing.note = f"{backend_name} failed when timed: {one_line(err)}"
        runner = host[name]
        if isinstance(runner, str):
            timing.note = timing.note or runner
        else:
            try:
                timing.host_ms = round(median_ms(runner[0](runner[1], arrays)), 4)
            except Exception as err:  # noqa: BLE001
                timing.note = timing.note or f"the host failed when timed: {one_line(err)}"
        host_wins = timing.host_ms is not None and (
            timing.backend_ms is None or timing.host_ms < timing.backend_ms
        )
        timing.kept = "host" if host_wins else backend_name
        if host_wins:
            shown = "failed" if timing.backend_ms is None else f"{timing.backend_ms:.3f} ms"
            reason = f"fallback: tuned: host {timing.host_ms:.3f} ms < {backend_name} {shown}"
            put_back(module_op, name, originals.pop(name), reason)
            log.fall_back(name, reason)
        log.region(name).timing = timing.to_json()
        timings[name] = timing
    return timings


_Host = tuple["_HostRunner", int] | str
"""A region's host version: (its timing module, its index there), or why there is none."""


def _host_runners(
    context: ir.Context,
    names: Sequence[str],
    originals: dict[str, ir.Operation],
    flags: Sequence[str],
) -> dict[str, _Host]:
    """Per region, its host version (IREE compiles all regions as one module; when IREE
    refuses that, one module each, and a region it refuses alone has none)."""
    try:
        runner = _HostRunner(context, [originals[n] for n in names], flags)
    except ByocError:
        pass
    else:
        return {n: (runner, k) for k, n in enumerate(names)}
    out: dict[str, _Host] = {}
    for n in names:
        try:
            out[n] = (_HostRunner(context, [originals[n]], flags), 0)
        except ByocError as err:
            out[n] = f"the host cannot compile it: {one_line(err)}"
    return out


def whole_model_check(
    bundle: Path,
    module_op: ir.Operation,
    log: DecisionLog,
    originals: dict[str, ir.Operation],
    flags: Sequence[str],
) -> tuple[bytes, list[str]] | None:
    """The whole tuned bundle against the same model host-only, timed here.

    Regions that each win alone can still lose together (each crossing also stops IREE
    from fusing across it). When host-only is faster, every region still offloaded goes
    back to the host (``module_op``, ``log``) and this returns the host-only module and
    the regions moved; otherwise None. A host-only module IREE refuses keeps the bundle.
    """
    from byoc_mlir.runtime import MANIFEST, Compiled

    with module_op.context, ir.Location.unknown():
        copy = ir.Module.parse(module_op.get_asm(assume_verified=True))
        for name, original in originals.items():
            put_back(copy.operation, name, original.clone(None), "probe")
        text = copy.operation.get_asm(assume_verified=True)
    try:
        host_vmfb = iree(text, ["--compile-from=input", *flags], "compile the host-only model")
    except ByocError:
        return None
    with tempfile.TemporaryDirectory(prefix="byoc_tune_") as tmp:
        other = Path(tmp)
        for f in bundle.iterdir():  # the same bundle, host-only (parameters shared)
            if f.is_file() and f.name not in (MANIFEST, "module.vmfb"):
                (other / f.name).symlink_to(f.resolve())
        manifest = json.loads((bundle / MANIFEST).read_text())
        (other / MANIFEST).write_text(json.dumps({**manifest, "served": []}))
        (other / "module.vmfb").write_bytes(host_vmfb)
        tuned, host = Compiled(bundle), Compiled(other)
        try:
            arrays = tuned.random_inputs()
            tuned_ms = median_ms(partial(tuned, *arrays))
            host_ms = median_ms(partial(host, *arrays))
        finally:
            tuned.close()
            host.close()
    moved = list(originals)
    for name in moved:
        timing = log.region(name).timing or {}
        timing.update({"whole_model_ms": round(tuned_ms, 4), "host_only_ms": round(host_ms, 4)})
        log.region(name).timing = timing
    if host_ms >= tuned_ms:
        log.notes.append(
            f"tuned: the whole model takes {tuned_ms:.3f} ms with {len(moved)} region(s) "
            f"offloaded, {host_ms:.3f} ms host-only"
        )
        return None
    reason = (
        f"fallback: tuned: the whole model runs faster host-only ({host_ms:.3f} ms < "
        f"{tuned_ms:.3f} ms with {len(moved)} region(s) offloaded)"
    )
    for name in moved:
        put_back(module_op, name, originals.pop(name), reason)
        log.fall_back(name, reason)
        timing = log.region(name).timing or {}
        timing["kept"] = "host"
        log.region(name).timing = timing
    return host_vmfb, moved
