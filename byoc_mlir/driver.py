"""The compile driver: model → input phase → partition → codegen → IREE → bundle.

    frontend ─► iree --compile-to=input ─► strip cf.assert ─► partition ─►
    codegen per region ─► iree --compile-from=input ─►
    bundle (module.vmfb, artifacts/, payloads/, report.json)

Per-region fallback: a hook that raises or returns garbage, an artifact that does not
build, a payload its runtime cannot load, or one IREE cannot link puts that one region
back on the host (inlined), with ``fallback: codegen failed: <error>`` in the report; a
host module IREE refuses sends back the regions that make it fail (found by bisection,
`byoc_mlir.host_compile`). The build succeeds. With ``fallback=False`` the first such
failure is an error instead (for CI).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from iree.compiler import ir

from byoc_mlir import _compat, dtypes, frontends
from byoc_mlir.codegen import build, linked, registry, runtime_route
from byoc_mlir.codegen.backend import Backend
from byoc_mlir.codegen.cache import ArtifactCache, cache_key, default_root
from byoc_mlir.codegen.hook import (
    CodegenOptions,
    LinkedArtifact,
    RegionView,
    RuntimeArtifact,
    TensorSpec,
    validate,
)
from byoc_mlir.codegen.workers import (
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT,
    HookJob,
    HookResult,
    run_hooks,
)
from byoc_mlir.dialects import byoc
from byoc_mlir.errors import ByocError
from byoc_mlir.explain.decisions import DecisionLog, OpRecord
from byoc_mlir.explain.plan import Plan, load_plan
from byoc_mlir.fileio import write_atomic
from byoc_mlir.frontends.from_onnx import PARAMS_SCOPE
from byoc_mlir.host_compile import compile_host, iree, keep_original, one_line, put_back
from byoc_mlir.normalise import normalise
from byoc_mlir.pipeline import PartitionOptions, partition
from byoc_mlir.progress import Progress
from byoc_mlir.runtime import BUNDLE_VERSION, MANIFEST, PARAMETERS, Compiled, spec_json
from byoc_mlir.tune import tune_regions, whole_model_check

BEST_CPU_FLAGS = (
    "--iree-hal-target-device=local",
    "--iree-hal-local-target-device-backends=llvm-cpu",
    "--iree-llvmcpu-target-cpu=host",
    "--iree-opt-level=O3",
    "--iree-global-opt-use-im2col-for-convs",
    "--iree-opt-data-tiling",
)
"""IREE at its best on this CPU: the baseline every speed-up is measured against."""

HOST_ONLY = "none"
ISOLATION_MODES = ("auto", "process", "inline")
DEMOTE_F64 = "--iree-input-demote-f64-to-f32"


@dataclass(frozen=True)
class CompileOptions:
    """Options of `compile`.

    Attributes:
        partition: region size limits, sibling merging, weight handling.
        fallback: put a region whose codegen fails back on the host (else: error).
        cache_dir: artifact cache directory; None disables the cache.
        iree_flags: flags for both IREE phases (default: IREE's best CPU settings).
        threads: worker threads (sizes kernels' workgroup counts).
        backend_options: per backend, free-form ``key=value`` options for its hook.
        progress: show a progress bar on stderr when it is a terminal (the CLI's default).
        plan: a placement plan file (see `byoc_mlir.explain.plan`) to replay instead of choosing
            regions; the backends come from the plan.
        save_plan: write this build's placement plan there (as partitioned, before any
            codegen fallback; atomically, once the bundle is published).
        fold_batchnorm: fold inference BatchNorm into the convolution before it (scaled
            weights and one bias add; see `byoc_mlir.passes.fold_batchnorm`).
        torch_dialect: what a torch module is lowered to before IREE's input phase:
            ``"linalg"`` (IREE's FX importer) or ``"tosa"`` (torch-mlir; needs
            ``pip install torch-mlir``). Other models ignore it.
        externalize_params: for an ONNX model: initializers with at least this many
            elements go to the bundle's parameter file ``params.irpa``, read at run
            time, instead of inside the MLIR and the vmfb (0: keep them in). Backends
            that prepack weights (``dnnl``) cannot take convolutions reading them.
        parameters: a parameter file (``.irpa``, scope ``model``) that an ``.mlir`` model's
            ``#stream.parameter.named`` globals read; copied into the bundle.
        hook_isolation: where vendor hooks run (`byoc_mlir.codegen.workers`):
            ``"auto"`` (out of process unless the backend declares ``in_process_safe``,
            as the in-tree ones do), ``"process"`` (every installed backend's), or
            ``"inline"`` (all in process). A backend registered in Python runs in process.
        hook_timeout: seconds one region's hook may take out of process.
        hook_memory_mb: heap one region's hook may allocate out of process (None: no cap).
        jobs: hooks run out of process at once (0: one per core).
        tune: measured placement: time every offloaded runtime-route region on the host
            and on its backend, here, and keep the faster (see `byoc_mlir.tune`); the
            times go to the report and the saved plan. Ignored when replaying a plan.
    """

    partition: PartitionOptions = field(default_factory=PartitionOptions)
    fallback: bool = True
    cache_dir: Path | None = field(default_factory=default_root)
    iree_flags: tuple[str, ...] = BEST_CPU_FLAGS
    threads: int = os.cpu_count() or 1
    backend_options: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    progress: bool = False
    plan: str | Path | None = None
    save_plan: str | Path | None = None
    fold_batchnorm: bool = True
    torch_dialect: frontends.TorchDialect = "linalg"
    externalize_params: int = 0
    parameters: str | Path | None = None
    demote_f64: bool = False
    bind_inputs: Mapping[str, Any] | None = None
    tune: bool = False
    hook_isolation: str = "auto"
    hook_timeout: float = DEFAULT_TIMEOUT
    hook_memory_mb: int | None = DEFAULT_MEMORY_MB
    jobs: int = 0

    @property
    def phase_flags(self) -> list[str]:
        """`iree_flags` for both IREE phases, with f64 demotion as `demote_f64` says
        (IREE demotes by default) unless the flags already decide it."""
        if any(f.startswith(DEMOTE_F64) for f in self.iree_flags):
            return list(self.iree_flags)
        return [*self.iree_flags, f"{DEMOTE_F64}={str(self.demote_f64).lower()}"]

    def __post_init__(self) -> None:
        frontends.check_torch_dialect(self.torch_dialect)
        if self.hook_isolation not in ISOLATION_MODES:
            raise ByocError(
                f"hook_isolation={self.hook_isolation!r} (valid: {', '.join(ISOLATION_MODES)})"
            )
        if self.hook_timeout <= 0 or (self.hook_memory_mb is not None and self.hook_memory_mb <= 0):
            raise ByocError("hook_timeout and hook_memory_mb must be positive")
        if self.jobs < 0:
            raise ByocError(f"jobs={self.jobs} (valid: 0 for one per core, or a positive count)")
        if self.externalize_params < 0:
            raise ByocError(
                f"externalize_params={self.externalize_params} (valid: 0 to keep weights "
                f"in the model, or a positive element count)"
            )


def compile(  # noqa: A001 - the public name the design fixes
    model: str | Path | bytes | ir.Module | Any,
    backends: Sequence[str | Backend] = (),
    *,
    out_dir: str | Path | None = None,
    options: CompileOptions | None = None,
    example_inputs: Sequence[Any] | None = None,
) -> Compiled:
    """Compiles a model with the given backends (priority = order) into a bundle.

    Args:
        model: a ``.mlir`` / ``.mlirbc`` path (linalg, tosa or torch dialect), an
            ``.onnx`` path, MLIR text or bytes, an ``ir.Module``, an ``onnx.ModelProto``,
            or a ``torch.nn.Module`` (with ``example_inputs``); see `byoc_mlir.frontends`.
        backends: backend names or values; empty or ``["none"]`` compiles host-only.
        out_dir: where the bundle goes (default: a new temporary directory).
        options: see `CompileOptions`.
        example_inputs: a torch module's positional inputs (torch tensors or numpy
            arrays): they fix the compiled signature. Only for torch modules.

    Returns:
        The loaded bundle; call it with numpy arrays. ``.report`` is the decision log.
    """
    options = options or CompileOptions()
    names = [b if isinstance(b, str) else b.name for b in backends]
    if options.plan is not None:
        planned = load_plan(options.plan).backends
        if names and names != planned:
            raise ByocError(
                f"the placement plan {options.plan} is for backends "
                f"{', '.join(planned) or '(none)'} (priority order), not {', '.join(names)}; "
                f"give no backends (the plan's are used) or the same ones"
            )
        names, backends = list(planned), planned
    if HOST_ONLY in names and names != [HOST_ONLY]:
        raise ByocError("'none' (host only) cannot be combined with other backends")
    chosen = [] if names in ([], [HOST_ONLY]) else registry.resolve(backends)
    if options.save_plan is not None and not chosen:
        raise ByocError(
            "saving a placement plan needs a backend (a host-only build places nothing)"
        )
    if options.externalize_params and options.parameters is not None:
        raise ByocError("give externalize_params (ONNX) or parameters (a file), not both")
    if out_dir is not None:
        return _compile_to(Path(out_dir), model, example_inputs, chosen, options, owned=False)
    final = Path(tempfile.mkdtemp(prefix="byoc_"))  # owned by the Compiled: deleted on close
    try:
        return _compile_to(final, model, example_inputs, chosen, options, owned=True)
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        raise


def _compile_to(
    final: Path,
    model: Any,
    example_inputs: Sequence[Any] | None,
    chosen: list[Backend],
    options: CompileOptions,
    owned: bool,
) -> Compiled:
    """Builds the bundle in a staging directory beside ``final`` and publishes it there."""
    staging = _staging_dir(final)
    steps = (4 if options.tune else 3) if chosen else 2
    progress = Progress(options.progress, steps=steps)
    try:
        loaded = frontends.load(
            model,
            example_inputs,
            torch_dialect=options.torch_dialect,
            externalize_params=options.externalize_params,
            params_path=staging / PARAMETERS,
            bind_inputs=options.bind_inputs,
        )
        parameters = loaded.parameters
        if options.parameters is not None:
            parameters = _copy_parameters(Path(options.parameters), staging / PARAMETERS)
        plan = _build_bundle(
            loaded.data,
            loaded.name,
            chosen,
            options,
            staging,
            progress,
            parameters,
            loaded.signature,
            loaded.notes,
        )
        _publish(staging, final)
        host_mlir = final / "host.mlir"  # point inspection paths at the published bundle
        host_mlir.write_text(host_mlir.read_text().replace(str(staging), str(final)))
        if plan is not None and options.save_plan is not None:
            write_atomic(Path(options.save_plan), plan.dumps())
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        progress.close()
    return Compiled(final, owned=owned)


def _copy_parameters(given: Path, dest: Path) -> Path:
    try:
        shutil.copyfile(given, dest)
    except OSError as err:
        raise ByocError(f"cannot read the parameter file {given}: {err.strerror}") from None
    return dest


def _build_bundle(
    source: str | bytes,
    filename: str,
    backends: list[Backend],
    options: CompileOptions,
    bundle: Path,
    progress: Progress | None = None,
    parameters: Path | None = None,
    declared: frontends.Signature | None = None,
    notes_in: Sequence[str] = (),
) -> Plan | None:
    """Builds the bundle in ``bundle``; returns the placement plan when one is to be saved."""
    progress = progress or Progress(False, 0)
    flags = options.phase_flags
    progress.begin("import")
    input_text = iree(source, ["--compile-to=input", *flags], f"import {filename}")
    text = input_text.decode().replace('"<stdin>"', json.dumps(filename))
    (bundle / "source.mlir").write_text(text)
    context = _compat.new_context()
    notes: list[str] = list(notes_in)
    module = normalise(text, context, filename, options.fold_batchnorm, notes)
    module_op = module.operation
    entry, inputs, outputs = _entry_signature(module_op)
    if declared is not None:
        inputs = _as_declared(inputs, declared[0], notes)
        outputs = _as_declared(outputs, declared[1], notes)
    log = DecisionLog(notes=notes)
    served: list[dict[str, Any]] = []
    originals: dict[str, ir.Operation] = {}
    plan: Plan | None = None
    with context, ir.Location.unknown():
        if backends:
            records: list[OpRecord] = []
            progress.begin("partition")
            partition(module_op, backends, options.partition, records=records, plan=options.plan)
            if options.save_plan is not None:
                plan = Plan.from_records(records, [b.name for b in backends])
            log = DecisionLog.from_module(module_op)
            log.ops = records
            log.notes = notes
            # Regions outlined but still host code: what `byoc-run --per-region` compares
            # each offloaded region against.
            (bundle / "partitioned.mlir").write_text(module_op.get_asm(assume_verified=True))
            served = _codegen_all(module_op, log, options, bundle, originals, progress)
            if options.tune and options.plan is None and served:
                progress.begin("tune")
                payloads = {_served_name(s): (bundle / s["payload"]).read_bytes() for s in served}
                timings = tune_regions(module_op, log, served, originals, payloads, flags)
                if plan is not None:
                    plan.apply_tuning({n: t.to_json() for n, t in timings.items()})
            elif options.plan is not None:
                log.notes += _replayed_timings(options.plan)
        progress.begin("IREE compile")
        # A region the host module cannot take goes back (found by bisection), so a
        # backend never fails a model that host-only compiles.
        vmfb = compile_host(module_op, log, flags, originals, options.fallback)
        served = _still_served(served, originals, bundle)

        def write(vmfb: bytes, served: list[dict[str, Any]]) -> None:
            # What IREE compiled (after codegen rewriting): for inspection and lit tests.
            (bundle / "host.mlir").write_text(module_op.get_asm(assume_verified=True))
            log.refresh_host_ops(module_op)
            (bundle / "module.vmfb").write_bytes(vmfb)
            (bundle / "report.json").write_text(log.dumps())
            manifest = {
                "version": BUNDLE_VERSION,
                "entry": entry,
                "module": "module.vmfb",
                "inputs": [spec_json(s) for s in inputs],
                "outputs": [spec_json(s) for s in outputs],
                "served": served,
                "backends": [b.name for b in backends],
                "iree_flags": flags,
                "source": "source.mlir",
            }
            if parameters is not None:
                manifest["parameters"] = {"file": parameters.name, "scope": PARAMS_SCOPE}
            precision = _reduced_precision(options, backends)
            if precision:  # byoc-run --check bounds the error accordingly
                manifest["precision"] = precision
            (bundle / MANIFEST).write_text(json.dumps(manifest, indent=1))

        write(vmfb, served)
        if options.tune and options.plan is None and originals:
            host_only = whole_model_check(bundle, module_op, log, originals, flags)
            if host_only is not None:
                vmfb, moved = host_only
                if plan is not None:
                    plan.apply_tuning({n: log.region(n).timing or {} for n in moved})
                write(vmfb, _still_served(served, originals, bundle))
            else:  # kept as built: the report gains the whole-model times
                (bundle / "report.json").write_text(log.dumps())
    return plan


def _entry_signature(module_op: ir.Operation) -> tuple[str, list[TensorSpec], list[TensorSpec]]:
    public = []
    for op in _compat.module_body(module_op).operations:
        op = op.operation
        if op.name in _compat.FLAVORS and _compat.is_public(op) and len(op.regions[0].blocks):
            public.append(op)
    if not public:
        raise ByocError("the model has no public function to run")
    names = [_compat.symbol_name(f) for f in public]
    func = public[names.index("main")] if "main" in names else public[0]
    ftype = _compat.function_type(func)
    try:
        inputs = [TensorSpec.of(t) for t in ftype.inputs]
        outputs = [TensorSpec.of(t) for t in ftype.results]
    except ValueError as err:
        raise ByocError(
            f"@{_compat.symbol_name(func)}: {err} (only static tensor signatures are supported)",
            str(func.location),
        ) from None
    return _compat.symbol_name(func), inputs, outputs


def _as_declared(
    specs: list[TensorSpec], declared: Sequence[str | None], notes: list[str]
) -> list[TensorSpec]:
    """The signature in the model's own element types (``ui8`` where linalg says ``i8``)."""
    if len(declared) != len(specs):
        return specs  # the input phase reshaped the signature; trust the MLIR
    out = []
    for spec, name in zip(specs, declared, strict=True):
        if name is not None and dtypes.storage(name) == spec.dtype and name in dtypes.NAMES:
            spec = TensorSpec(spec.shape, name)
        elif name == "f64" and spec.dtype == "f32":
            note = "f64 demoted to f32 (demote_f64): the signature takes and returns f32"
            if note not in notes:
                notes.append(note)
        out.append(spec)
    return out


def _outlined(module_op: ir.Operation) -> list[ir.Operation]:
    return [
        op.operation
        for op in _compat.module_body(module_op).operations
        if op.operation.name in _compat.FLAVORS and byoc.get_target(op.operation) is not None
    ]


def _codegen_all(
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
        view = RegionView.of(func)
        entry = log.region(view.name)
        backend = registry.get(view.backend)
        if backend.codegen is None:
            entry.route, entry.status = "iree", f"compiled by IREE: {backend.name} has no codegen"
            continue
        original = keep_original(func)
        produced = isolated.get(view.name)
        try:
            route, artifact_file, serve, how = _codegen_region(
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
        entry.codegen = {"mode": how}
        entry.route, entry.artifact, entry.status = route, artifact_file, "offloaded"
        originals[view.name] = original
        if serve is not None:
            served.append(serve)
    return served


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
        view = RegionView.of(func)
        backend = registry.get(view.backend)
        if backend.codegen is None or not _isolates(backend, options):
            continue
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
) -> tuple[str, str, dict[str, Any] | None, str]:
    """Gets (from the cache, the isolated run, or the hook) and applies one region's
    artifact. Returns its route, file, manifest entry (runtime route) and where the
    artifact came from: ``cache``, ``process`` or ``in-process``."""
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
        art = RuntimeArtifact(hit.file("payload").read_bytes())
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
            cache.put(key, {"payload": bytes(art.payload)}, {"route": "runtime"})
    if isinstance(art, LinkedArtifact):
        linked.rewrite(module_op, func, view, art, obj.resolve())
        return "linked", f"artifacts/{obj.name}", None, how
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
    return "runtime", payload_name, serve, how


def _check_loads(backend: Backend, payload: bytes) -> None:
    """Loads a runtime-route payload once, as the bundle will: a payload its own runtime
    cannot load fails this region's codegen (and only it), not the bundle's loading."""
    if backend.runtime is None:
        raise ByocError(f"backend '{backend.name}' returned a runtime artifact but has no runtime")
    try:
        backend.runtime(bytes(payload))
    except Exception as err:  # noqa: BLE001 - a vendor loader's failure, named
        raise ByocError(f"{backend.name}'s runtime cannot load its payload: {err}") from None


def _reduced_precision(options: CompileOptions, backends: Sequence[Backend]) -> dict[str, str]:
    """Backends asked to compute below f32 (backend option ``precision``), by name."""
    names = {b.name for b in backends}
    return {
        name: str(opts["precision"])
        for name, opts in options.backend_options.items()
        if name in names and str(opts.get("precision", "f32")) != "f32"
    }


def _served_name(serve: dict[str, Any]) -> str:
    """The region name of a served region's manifest entry."""
    return f"{serve['backend']}.{serve['function']}"


def _replayed_timings(plan_path: str | Path) -> list[str]:
    """Notes carrying a tuned plan's measured times into the replayed build's report."""
    tuned = load_plan(plan_path).tuned
    return [
        f"placement of {label} measured when the plan was made: host {t.get('host_ms')} ms, "
        f"{t.get('backend')} {t.get('backend_ms')} ms, kept on {t.get('kept')}"
        for label, t in tuned.items()
    ]


def _still_served(
    served: list[dict[str, Any]], originals: dict[str, ir.Operation], bundle: Path
) -> list[dict[str, Any]]:
    """The served regions that stayed offloaded; the payloads of the others are deleted."""
    kept = []
    for serve in served:
        if _served_name(serve) in originals:
            kept.append(serve)
        else:
            (bundle / serve["payload"]).unlink(missing_ok=True)
    return kept


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


def _staging_dir(final: Path) -> Path:
    if final.exists() and not final.is_dir():
        raise ByocError(f"{final} exists and is not a directory")
    if final.is_dir() and any(final.iterdir()) and not (final / MANIFEST).exists():
        raise ByocError(
            f"{final} is a non-empty directory that is not a byoc_mlir bundle; "
            f"refusing to overwrite it (choose another -o)"
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))


def _publish(staging: Path, final: Path) -> None:
    """Moves the finished bundle into place; an old bundle there is replaced."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old.{os.getpid()}")
        os.rename(final, old)
    os.rename(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
