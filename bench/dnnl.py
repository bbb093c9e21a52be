"""IREE alone, byoc_mlir with the ``dnnl`` backend, and onnxruntime on the same models.

    python bench/dnnl.py     # resnet50 resnet18 mobilenet_v2 inception_v1 squeezenet
                             # bert_mini transformer bert_tiny
    python bench/dnnl.py --models resnet50,resnet18 --runs 20

Per zoo model (`byoc_mlir.zoo`; batch 1, 2 threads everywhere), milliseconds per
inference (median of ``--runs`` calls after one warm-up call) for

- **IREE best**: the host-only build with the driver's `BEST_CPU_FLAGS`
  (``target-cpu=host``, im2col for convs, ``-O3``, data tiling) — the baseline;
- **dnnl**: ``byoc_mlir.compile(model, ["dnnl"])`` (IREE best flags for the rest), with
  compute ops offloaded / total from the report's summary and, below the table, the
  time per inference spent in each dnnl region (``byoc_mlir.backends.dnnl.runtime``'s
  profile over the timed calls);
- **dnnl tuned**: the same with ``tune=True`` (``byoc-compile --tune``: each region
  timed on the host and on oneDNN here, the faster kept, then the whole model against
  host-only);
- **dnnl bf16**: the same as dnnl with the backend option ``precision=bf16``
  (convolutions and matmuls on bf16 data, f32 accumulation; opt-in), with "top-1 bf16":
  the rows of the first output whose largest entry (last axis) is where the framework's
  reference has it (``same``: all; for a classifier, the predicted class);
- **onnxruntime**: CPU execution provider, ``intra_op_num_threads=2``; ONNX models as
  they are, torch models exported with ``torch.onnx.export(dynamo=False)`` (the
  TorchScript exporter: works offline and needs no onnxscript);

and the max abs error of each against the framework's reference (torch, or onnxruntime
for ONNX models; so onnxruntime's error on those is 0 by construction). IREE runs on its
``local-task`` driver with its worker topology capped at ``--threads`` groups. A variant
that fails shows its error in its cell; the others still run. The builds go through
`byoc_mlir.compile` (so both host-only variants get the driver's input normalisation,
e.g. assert stripping and BatchNorm folding), artifact cache off.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from byoc_mlir import CompileOptions, compile, frontends, zoo
from byoc_mlir.explain import report
from byoc_mlir.frontends import Source
from byoc_mlir.options import BEST_CPU_FLAGS

MODELS = (
    "resnet50",
    "resnet18",
    "mobilenet_v2",
    "inception_v1",
    "squeezenet",
    "bert_mini",
    "transformer",
    "bert_tiny",
)
"""The models issues 6 and 14 measure (zoo entries)."""

COLUMNS = (
    "model",
    "IREE best ms",
    "dnnl ms",
    "dnnl offloaded",
    "dnnl tuned ms",
    "dnnl bf16 ms",
    "onnxruntime ms",
    "dnnl / ort",
    "tuned / best",
    "bf16 / ort",
    "err dnnl",
    "err bf16",
    "err ort",
    "top-1 bf16",
)

CELL = 70
"""Longest cell text (errors are cut; the full text is printed below the table)."""


@dataclass
class Measured:
    """One variant on one model: its times and error, or why it has neither."""

    times: list[float] = field(default_factory=list)
    error: float | None = None
    failure: str | None = None
    offloaded: str = ""
    regions: dict[str, tuple[int, float]] = field(default_factory=dict)
    top1: str = "-"  # rows whose largest entry (last axis) is where the reference's is

    @property
    def ms(self) -> float | None:
        return statistics.median(self.times) * 1e3 if self.times else None


@dataclass
class Variant:
    """A prepared variant: one inference (``run``) and how to release it."""

    name: str
    result: Measured
    run: Callable[[], Any] | None = None
    close: Callable[[], None] = lambda: None
    profiler: ModuleType | None = None  # the dnnl runtime: profiled over the timed calls

    def fail(self, err: BaseException) -> None:
        self.result.failure = one_line(err)
        self.run = None


def one_line(err: BaseException) -> str:
    text = str(err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    return f"{type(err).__name__}: {line}"


def prepare(name: str, make: Callable[[Variant], None]) -> Variant:
    """Builds one variant; an exception becomes the variant's failure, not the script's."""
    variant = Variant(name, Measured())
    try:
        make(variant)
    except Exception as err:  # noqa: BLE001 - any failure belongs in its cell
        variant.fail(err)
        variant.close()
    return variant


def time_each(variants: Sequence[Variant], runs: int) -> None:
    """Per variant in turn: one warm-up call, then ``runs`` timed calls.

    One variant at a time, not round-robin: oneDNN's OpenMP threads and onnxruntime's
    pool spin for a while after a call and would slow whichever variant ran next. A
    variant with a profiler has its profile reset after the warm-up and read at the end
    (a runtime without ``reset_profile``/``profile`` is still timed).
    """
    for v in variants:
        for k in range(runs + 1):
            if v.run is None:
                break
            start = time.perf_counter()
            try:
                v.run()
            except Exception as err:  # noqa: BLE001
                v.fail(err)
                break
            if k == 0:
                getattr(v.profiler, "reset_profile", lambda: None)()
            else:
                v.result.times.append(time.perf_counter() - start)
        profile = getattr(v.profiler, "profile", None)
        if profile is not None and v.result.failure is None:
            v.result.regions = dict(profile())


def dnnl_runtime() -> tuple[ModuleType | None, str | None]:
    """The dnnl backend's runtime module, or why the backend is unavailable."""
    try:
        from byoc_mlir.codegen import registry

        registry.get("dnnl")
        return importlib.import_module("byoc_mlir.backends.dnnl.runtime"), None
    except Exception as err:  # noqa: BLE001 - a missing or broken backend is reported
        return None, one_line(err)


def iree_variant(
    source: Source,
    inst: zoo.Instance,
    entry: zoo.ZooEntry,
    backends: list[str],
    options: CompileOptions,
    out_dir: Path,
) -> Callable[[Variant], None]:
    def make(v: Variant) -> None:
        compiled = compile(source.data, backends, out_dir=out_dir, options=options)
        v.close = compiled.close
        outputs = compiled(*inst.inputs)
        v.result.error = entry.max_error(outputs, inst.expected)
        v.result.top1 = top1(outputs[0], inst.expected[0])
        if backends != ["none"]:
            summary = compiled.report.get("summary") or report.summarize(compiled.report)
            row = next((b for b in summary["backends"] if b["backend"] == backends[0]), None)
            n = row["ops_offloaded"] if row else 0
            share = row["flops_share"] if row else None
            flops = "" if share is None else f", {100 * share:.0f}% FLOPs"
            v.result.offloaded = f"{n}/{summary['ops']}{flops}"
        v.run = lambda: compiled(*inst.inputs)

    return make


def top1(got: Any, want: Any) -> str:
    """How many rows (last axis) have their largest entry where the reference has it."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return "-"
    while got.ndim > 1 and got.shape[-1] == 1:  # (1, 1000, 1, 1): the classes are axis 1
        got, want = got[..., 0], want[..., 0]
    if got.ndim == 0 or got.shape[-1] < 2:
        return "-"
    same = np.argmax(got, axis=-1) == np.argmax(want, axis=-1)
    return "same" if same.all() else f"{int(same.sum())}/{same.size}"


def onnx_file(inst: zoo.Instance, work: Path, name: str) -> Path:
    """The model as an ``.onnx`` file: ONNX entries as they are, torch ones exported."""
    if inst.example_inputs is None:
        return Path(str(inst.model))
    import torch

    model: Any = inst.model  # a torch.nn.Module: the entry has example inputs
    path = work / f"{name}.onnx"
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice
        warnings.simplefilter("ignore")
        torch.onnx.export(model, inst.example_inputs, str(path), dynamo=False, opset_version=17)
    return path


def ort_variant(
    inst: zoo.Instance, entry: zoo.ZooEntry, work: Path, name: str, threads: int
) -> Callable[[Variant], None]:
    def make(v: Variant) -> None:
        import onnxruntime

        path = onnx_file(inst, work, name)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        names = [i.name for i in session.get_inputs()]
        if len(names) != len(inst.inputs):
            raise RuntimeError(f"the ONNX model takes {len(names)} inputs, not {len(inst.inputs)}")
        feeds = dict(zip(names, inst.inputs, strict=True))
        outputs = [np.asarray(o) for o in session.run(None, feeds)]
        v.result.error = entry.max_error(outputs, inst.expected)
        v.run = lambda: session.run(None, feeds)

    return make


def cell(m: Measured, text: Callable[[Measured], str], first: bool = False) -> str:
    """``text(m)``; for a failed variant its failure (in its ``first`` cell) or ``-``."""
    if m.failure is None:
        return text(m)
    if not first:
        return "-"
    shown = m.failure if len(m.failure) <= CELL else m.failure[: CELL - 3] + "..."
    return shown.replace("|", "\\|")


def ms(m: Measured) -> str:
    return "-" if m.ms is None else f"{m.ms:.2f}"


def err(m: Measured) -> str:
    return "-" if m.error is None else f"{m.error:.1e}"


def ratio(m: Measured, base: Measured) -> str:
    if m.ms is None or base.ms is None:
        return "-"
    return f"{m.ms / base.ms:.2f}"


def bench_model(
    name: str, work: Path, runs: int, threads: int
) -> tuple[list[str], list[str], Measured]:
    """Measures every variant on one model; returns its row, notes, the dnnl result."""
    entry = zoo.get(name)
    work.mkdir(parents=True, exist_ok=True)
    try:
        inst = entry.build(work)
        source = frontends.load(inst.model, inst.example_inputs)
    except Exception as error:  # noqa: BLE001
        failed = Measured(failure=f"build failed: {one_line(error)}")
        row = [name, cell(failed, ms, True), *["-"] * (len(COLUMNS) - 2)]
        return row, [f"{name}: {failed.failure}"], failed
    best = CompileOptions(cache_dir=None, threads=threads)
    tuned = replace(best, tune=True)
    bf16 = replace(best, backend_options={"dnnl": {"precision": "bf16"}})
    variants = [prepare("IREE best", iree_variant(source, inst, entry, ["none"], best, work / "b"))]
    profiler, unavailable = dnnl_runtime()
    dnnl_variants = (("dnnl", best, "c"), ("dnnl tuned", tuned, "d"), ("dnnl bf16", bf16, "e"))
    for label, options, folder in dnnl_variants:
        if unavailable is not None:
            variants.append(Variant(label, Measured(failure=f"dnnl: unavailable ({unavailable})")))
            continue
        variants.append(
            prepare(label, iree_variant(source, inst, entry, ["dnnl"], options, work / folder))
        )
        if label == "dnnl":
            variants[-1].profiler = profiler
    variants.append(prepare("onnxruntime", ort_variant(inst, entry, work, name, threads)))
    time_each(variants, runs)
    b, c, t, h, d = (v.result for v in variants)
    for v in variants:
        v.close()
    row = [
        name,
        cell(b, ms, True),
        cell(c, ms, True),
        cell(c, lambda m: m.offloaded or "-"),
        cell(t, ms, True),
        cell(h, ms, True),
        cell(d, ms, True),
        cell(c, lambda m: ratio(m, d)),
        cell(t, lambda m: ratio(m, b)),
        cell(h, lambda m: ratio(m, d)),
        cell(c, err),
        cell(h, err),
        cell(d, err),
        cell(h, lambda m: m.top1),
    ]
    notes = [f"{name} {v.name}: {v.result.failure}" for v in variants if v.result.failure]
    if t.failure is None and t.offloaded:
        notes.append(f"{name} dnnl tuned: {t.offloaded} offloaded")
    return row, notes, c


def breakdown(name: str, dnnl: Measured, top: int = 12) -> list[str]:
    """Per dnnl region: calls and milliseconds per inference, the slowest first.

    The profile covers the timed calls (reset after the warm-up), so its shares are of
    the mean time per inference, not the median the table shows.
    """
    if not dnnl.regions or not dnnl.times:
        return []
    runs = len(dnnl.times)
    mean = statistics.fmean(dnnl.times) * 1e3
    rows = sorted(dnnl.regions.items(), key=lambda kv: -kv[1][1])
    total = sum(seconds for _, (_, seconds) in rows) * 1e3 / runs
    lines = [
        f"{name}: {len(rows)} dnnl region(s): {total:.2f} ms of the mean {mean:.2f} ms per "
        f"inference in dnnl ({100 * total / mean:.0f}%)",
        f"  {'region':<40} {'calls':>7} {'ms/inference':>12}",
    ]
    for region, (calls, seconds) in rows[:top]:
        lines.append(f"  {region:<40} {calls / runs:>7.0f} {seconds * 1e3 / runs:>12.3f}")
    if len(rows) > top:
        rest = sum(seconds for _, (_, seconds) in rows[top:]) * 1e3 / runs
        lines.append(f"  {f'... {len(rows) - top} more':<40} {'':>7} {rest:>12.3f}")
    return lines


def markdown_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated zoo entries")
    p.add_argument("--runs", type=int, default=20, help="timed calls per variant (median)")
    p.add_argument("--threads", type=int, default=2, help="IREE workers, onnxruntime threads")
    args = p.parse_args(argv)
    names = [n for n in args.models.split(",") if n]
    for n in names:
        zoo.get(n)  # an unknown name fails now, listing the known ones
    import iree.runtime as rt

    # Before the first device is created: local-task's worker groups.
    rt.flags.parse_flags(f"--task_topology_max_group_count={args.threads}")
    out = sys.stdout
    load_before = os.getloadavg()[0]
    print(markdown_row(COLUMNS), file=out)
    print(markdown_row(["---"] * len(COLUMNS)), file=out, flush=True)
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="byoc_bench_dnnl_") as tmp:
        for name in names:
            row, failures, dnnl = bench_model(name, Path(tmp) / name, args.runs, args.threads)
            print(markdown_row(row), file=out, flush=True)
            notes += failures + breakdown(name, dnnl)
    print(
        f"\nbatch 1, {args.threads} threads, median of {args.runs} runs; IREE best flags: "
        f"{' '.join(BEST_CPU_FLAGS[2:])}; 1-min load average {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after (other work on the machine skews the times)",
        file=out,
    )
    if notes:
        print("", *notes, sep="\n", file=out)


if __name__ == "__main__":
    main()
