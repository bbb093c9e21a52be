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

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from iree.compiler import ir

from byoc_mlir import _compat, frontends, signature
from byoc_mlir.codegen import registry
from byoc_mlir.codegen.backend import Backend
from byoc_mlir.errors import ByocError
from byoc_mlir.explain.decisions import DecisionLog, OpRecord
from byoc_mlir.explain.plan import Plan, load_plan
from byoc_mlir.fileio import write_atomic
from byoc_mlir.frontends.from_onnx import PARAMS_SCOPE
from byoc_mlir.host_compile import compile_host, iree
from byoc_mlir.normalise import normalise
from byoc_mlir.offload import codegen_all
from byoc_mlir.options import HOST_ONLY, CompileOptions
from byoc_mlir.pipeline import partition
from byoc_mlir.progress import Progress
from byoc_mlir.runtime import BUNDLE_VERSION, MANIFEST, PARAMETERS, Compiled, spec_json
from byoc_mlir.tune import tune_regions, whole_model_check


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
            dynamic_axes=options.dynamic_axes,
            dims=options.dims,
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
            loaded.dims,
            loaded.ranges,
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
    dim_names: Sequence[Sequence[str | None]] | None = None,
    dim_ranges: Sequence[Sequence[tuple[int, int] | None]] | None = None,
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
    entry, inputs, outputs = signature.entry_signature(module_op)
    if declared is not None:
        inputs = signature.as_declared(inputs, declared[0], notes)
        outputs = signature.as_declared(outputs, declared[1], notes)
    inputs, dims = signature.named_dims(entry, inputs, dim_names, options.dims, dim_ranges)
    if dims:
        flags = signature.dynamic_safe(flags, notes)
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
            served = codegen_all(module_op, log, options, bundle, originals, progress)
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
            log.dims = dims
            (bundle / "module.vmfb").write_bytes(vmfb)
            (bundle / "report.json").write_text(log.dumps())
            manifest = {
                "version": BUNDLE_VERSION,
                "entry": entry,
                "module": "module.vmfb",
                "inputs": [spec_json(s) for s in inputs],
                "outputs": [spec_json(s) for s in outputs],
                "dims": dims,
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
