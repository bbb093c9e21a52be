"""The codegen step of a compile: every outlined region through its backend's hook.

Per region: the artifact cache is asked first; else the hook runs in process or in a worker
(`byoc_mlir.codegen.workers`, when the backend is not declared safe or isolation is asked
for), its result is validated, built (linked route) or loaded once (runtime route), and the
region's function is wired into the module. A failure sends that region back to the host
with its reason; regions are applied in order, so a parallel build is the serial one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from iree.compiler import ir

from byoc_mlir import _compat
from byoc_mlir.codegen import build, linked, registry, runtime_route
from byoc_mlir.codegen.backend import Backend
from byoc_mlir.codegen.cache import ArtifactCache, cache_key
from byoc_mlir.codegen.hook import (
    CodegenOptions,
    LinkedArtifact,
    RegionView,
    RuntimeArtifact,
    backend_of,
    validate,
)
from byoc_mlir.codegen.workers import (
    HookJob,
    HookResult,
    run_hooks,
)
from byoc_mlir.dialects import byoc
from byoc_mlir.errors import ByocError
from byoc_mlir.explain.decisions import DecisionLog
from byoc_mlir.host_compile import keep_original, one_line, put_back
from byoc_mlir.options import CompileOptions
from byoc_mlir.progress import Progress
from byoc_mlir.runtime import spec_json


def _outlined(module_op: ir.Operation) -> list[ir.Operation]:
    return [
        op.operation
        for op in _compat.module_body(module_op).operations
        if op.operation.name in _compat.FLAVORS and byoc.get_target(op.operation) is not None
    ]


def codegen_all(
    module_op: ir.Operation,
    log: DecisionLog,
    options: CompileOptions,
    bundle: Path,
    originals: dict[str, ir.Operation],
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Runs every region's hook; applies its route or falls back. Returns served regions.

    ``originals`` receives a copy of each offloaded region's original function, so a failure
    found later (IREE cannot link the artifact) can still put it back on the host.
    """
    cache = ArtifactCache(options.cache_dir)
    served: list[dict[str, Any]] = []
    (bundle / "artifacts").mkdir(exist_ok=True)
    progress = progress or Progress(False, 0)
    funcs = _outlined(module_op)
    isolated = _run_isolated(funcs, options, cache, progress)
    for func in progress.each(funcs, lambda f: f"codegen {_compat.symbol_name(f)}"):
        backend = _backend_of(func)
        if backend.codegen is None:  # no view: its signature may carry index values
            entry = log.region(_compat.symbol_name(func))
            entry.route, entry.status = "iree", f"compiled by IREE: {backend.name} has no codegen"
            continue
        try:
            view = RegionView.of(func)
        except ValueError as err:  # index values (dynamic sizes) in its signature
            name = _compat.symbol_name(func)
            reason = f"fallback: codegen failed: {err} (a hook takes regions of tensors)"
            put_back(module_op, name, keep_original(func), reason)
            log.fall_back(name, reason)
            continue
        entry = log.region(view.name)
        original = keep_original(func)
        produced = isolated.get(view.name)
        try:
            route, artifact_file, serve, how, notes = _codegen_region(
                module_op, func, view, backend, options, cache, bundle, produced
            )
        except Exception as err:  # noqa: BLE001 - any vendor failure degrades one region
            if not options.fallback:
                raise ByocError(
                    f"codegen failed for @{view.name} ({backend.name}): {err}"
                ) from None
            reason = f"fallback: codegen failed: {one_line(err)}"
            put_back(module_op, view.name, original, reason)
            log.fall_back(view.name, reason)
            entry.codegen = _codegen_record(produced)
            continue
        entry.codegen = {"mode": how, **({"notes": notes} if notes else {})}
        entry.route, entry.artifact, entry.status = route, artifact_file, "offloaded"
        originals[view.name] = original
        if serve is not None:
            served.append(serve)
    return served


def _backend_of(func: ir.Operation) -> Backend:
    """The backend an outlined function is for (`RegionView.backend`, without the view)."""
    return registry.get(backend_of(func))


def _hook_options(backend: Backend, options: CompileOptions) -> CodegenOptions:
    return CodegenOptions(
        threads=options.threads, backend_options=dict(options.backend_options.get(backend.name, {}))
    )


def _cache_key(func: ir.Operation, view: RegionView, backend: Backend, hook: CodegenOptions) -> str:
    return cache_key(
        func.get_asm(print_generic_op_form=True),
        backend.name,
        backend.version,
        {
            "threads": hook.threads,
            "options": dict(hook.backend_options),
            # dense_resource weights print as a handle name, not their values
            "constants": _constants_digest(view),
        },
    )


def _isolates(backend: Backend, options: CompileOptions) -> bool:
    """Whether ``backend``'s hook runs out of process in this build."""
    if options.hook_isolation == "inline" or not registry.installed(backend.name):
        return False
    return options.hook_isolation == "process" or not backend.in_process_safe


def _run_isolated(
    funcs: Sequence[ir.Operation], options: CompileOptions, cache: ArtifactCache, progress: Progress
) -> dict[str, HookResult]:
    """Runs the hooks that go out of process (and miss the cache), in parallel."""
    names, jobs = [], []
    for func in funcs:
        backend = _backend_of(func)
        if backend.codegen is None or not _isolates(backend, options):
            continue
        try:
            view = RegionView.of(func)
        except ValueError:
            continue  # not a region of tensors: falls back in `codegen_all`
        hook = _hook_options(backend, options)
        if cache.get(_cache_key(func, view, backend, hook)) is not None:
            continue
        names.append(view.name)
        jobs.append(HookJob(backend.name, view.name, _region_text(func), hook))
    if not jobs:
        return {}
    progress.begin(f"codegen ({len(jobs)} out of process)")
    parallel = options.jobs or os.cpu_count() or 1
    results = run_hooks(jobs, parallel, options.hook_timeout, options.hook_memory_mb)
    return dict(zip(names, results, strict=True))


def _region_text(func: ir.Operation) -> str:
    """MLIR text of a module holding a copy of ``func``, its weights' blobs included
    (text, not bytecode: `byoc_mlir._compat` reads ``dense_resource`` values from it)."""
    with func.context, ir.Location.unknown():
        module = ir.Module.create()
        func.clone(ir.InsertionPoint(module.body))
        return module.operation.get_asm(assume_verified=True)


def _codegen_record(produced: HookResult | None) -> dict[str, Any]:
    """How a failed region's hook ran, for its report entry (no wall time: reports of two
    builds of one model are identical, whatever the machine's load)."""
    return {"mode": "in-process" if produced is None else "process"}


def _codegen_region(
    module_op: ir.Operation,
    func: ir.Operation,
    view: RegionView,
    backend: Backend,
    options: CompileOptions,
    cache: ArtifactCache,
    bundle: Path,
    produced: HookResult | None = None,
) -> tuple[str, str, dict[str, Any] | None, str, list[str]]:
    """Gets (from the cache, the isolated run, or the hook) and applies one region's
    artifact. Returns its route, file, manifest entry (runtime route), where the artifact
    came from (``cache``, ``process`` or ``in-process``) and the backend's notes."""
    hook_options = _hook_options(backend, options)
    key = _cache_key(func, view, backend, hook_options)
    hit = cache.get(key)
    stem = view.symbol
    how = "cache" if hit is not None else _codegen_record(produced)["mode"]
    if hit is not None and hit.meta.get("route") == "linked":
        art: LinkedArtifact | RuntimeArtifact = LinkedArtifact.from_json(hit.meta["artifact"])
        obj = bundle / "artifacts" / f"{stem}{hit.meta['object_suffix']}"
        shutil.copyfile(hit.file("object"), obj)
        if "source" in hit.meta["files"]:
            shutil.copyfile(hit.file("source"), bundle / "artifacts" / f"{stem}.c")
    elif hit is not None and hit.meta.get("route") == "runtime":
        art = RuntimeArtifact(hit.file("payload").read_bytes(), notes=hit.meta.get("notes", []))
    else:
        if produced is not None:  # out of process: validated and its runtime tried there
            if produced.artifact is None:
                raise ByocError(produced.failure or "vendor hook failed")
            art = produced.artifact
        else:
            art = validate(backend.codegen(view, hook_options), view)  # type: ignore[misc]
        if isinstance(art, LinkedArtifact):
            obj = _build_object(art, bundle / "artifacts", stem)
            files = {"object": obj.read_bytes()}
            if art.c_source is not None:
                files["source"] = art.c_source.encode()
            meta = {"route": "linked", "artifact": art.to_json(), "object_suffix": obj.suffix}
            cache.put(key, files, meta)
        else:
            cache.put(
                key, {"payload": bytes(art.payload)}, {"route": "runtime", "notes": art.notes}
            )
    if isinstance(art, LinkedArtifact):
        linked.rewrite(module_op, func, view, art, obj.resolve())
        return "linked", f"artifacts/{obj.name}", None, how, art.notes
    if produced is None:
        _check_loads(backend, art.payload)
    payload_name = f"payloads/{stem}.bin"
    (bundle / "payloads").mkdir(exist_ok=True)
    (bundle / payload_name).write_bytes(art.payload)
    runtime_route.declare(module_op, func, view)
    module_name, function = runtime_route.import_name(view.name)
    serve = {
        "backend": module_name,
        "function": function,
        "payload": payload_name,
        "inputs": [spec_json(s) for s in view.inputs],
        "outputs": [spec_json(s) for s in view.outputs],
    }
    return "runtime", payload_name, serve, how, art.notes


def _check_loads(backend: Backend, payload: bytes) -> None:
    """Loads a runtime-route payload once, as the bundle will: a payload its own runtime
    cannot load fails this region's codegen (and only it), not the bundle's loading."""
    if backend.runtime is None:
        raise ByocError(f"backend '{backend.name}' returned a runtime artifact but has no runtime")
    try:
        backend.runtime(bytes(payload))
    except Exception as err:  # noqa: BLE001 - a vendor loader's failure, named
        raise ByocError(f"{backend.name}'s runtime cannot load its payload: {err}") from None


def _constants_digest(view: RegionView) -> str:
    digest = hashlib.sha256()
    for array in view.constants.values():
        digest.update(str((array.dtype, array.shape)).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _build_object(art: LinkedArtifact, out_dir: Path, stem: str) -> Path:
    if art.c_source is not None:
        return build.compile_c(art.c_source, out_dir, stem)
    given = Path(art.object_path or art.bitcode_path)  # type: ignore[arg-type]
    suffix = ".o" if art.object_path is not None else ".bc"
    target = out_dir / f"{stem}{suffix}"
    try:
        shutil.copyfile(given, target)
    except OSError as err:
        raise ByocError(f"artifact file {given} unreadable: {err.strerror}") from None
    if suffix == ".o":
        build.check_object(target)
    return target
