"""The model zoo through the whole pipeline: import, partition, compile, run, error.

    python bench/models.py                     # the light zoo entries
    python bench/models.py --all               # + ResNet-50, BERT-tiny, ResNet-18
    python bench/models.py --models cnn,resnet50 --backends ccompiler

Per zoo model (`byoc_mlir.zoo`): import time (the frontend — torch.export + FX import,
or the ONNX importer — down to linalg, plus IREE's input phase), then per build
(host-only ``none`` and each backend): partition time, total compile time (input phase,
partition, codegen, IREE), compute ops offloaded / total and the share of estimated
FLOPs offloaded (from the decision log), median run time (IREE's local-task driver,
after one warm-up call) and its ratio to the host-only build, and the max abs error
against the framework's reference output (torch or onnxruntime).

Step times inside `byoc_mlir.compile` are read from the driver's progress steps
(``import``, ``partition``, ``codegen ...``, ``IREE compile``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from byoc_mlir import CompileOptions, compile, driver, frontends, zoo
from byoc_mlir.explain import report
from byoc_mlir.progress import Progress


class StepTimes(Progress):
    """A silent `Progress` that records how long each compile step took (seconds)."""

    latest: dict[str, float] = {}

    def __init__(self, enabled: bool, steps: int, stream: IO[str] | None = None) -> None:
        super().__init__(False, steps, stream)
        self.times: dict[str, float] = {}
        self._step: str | None = None
        self._start = 0.0
        StepTimes.latest = self.times

    def begin(self, name: str) -> None:
        self._stop()
        self._step = "codegen" if name.startswith("codegen") else name
        self._start = time.perf_counter()

    def close(self) -> None:
        self._stop()
        super().close()

    def _stop(self) -> None:
        if self._step is not None:
            elapsed = time.perf_counter() - self._start
            self.times[self._step] = self.times.get(self._step, 0.0) + elapsed
            self._step = None


def median_run(fn: Callable[[], Any], budget: float = 1.0, max_runs: int = 50) -> float:
    """Median seconds per call: one warm-up, then calls until ``budget`` s or ``max_runs``."""
    fn()
    times: list[float] = []
    deadline = time.perf_counter() + budget
    while len(times) < 3 or (time.perf_counter() < deadline and len(times) < max_runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


HEADER = (
    f"{'model':<12} {'import s':>8} | {'backend':<10} {'partition s':>11} {'compile s':>9} "
    f"{'ops offloaded':>15} {'FLOPs':>6} {'run ms':>9} {'x host':>7} {'max error':>9}"
)


def bench_model(name: str, backends: list[str], work: Path, out: IO[str]) -> None:
    entry = zoo.get(name)
    inst = entry.build(work / name)
    start = time.perf_counter()
    source = frontends.load(inst.model, inst.example_inputs)
    frontend_s = time.perf_counter() - start
    options = CompileOptions(cache_dir=None)
    host_ms = None
    for k, backend in enumerate(["none", *backends]):
        start = time.perf_counter()
        compiled = compile(source.data, [backend], out_dir=work / f"{name}-{backend}",
                           options=options)  # fmt: skip
        compile_s = time.perf_counter() - start
        steps = dict(StepTimes.latest)
        outputs = compiled(*inst.inputs)
        error = entry.max_error(outputs, inst.expected)
        run_ms = median_run(lambda c=compiled: c(*inst.inputs)) * 1e3
        if backend == "none":
            host_ms = run_ms
        summary = report.summarize(compiled.report)
        if backend == "none":
            offloaded, flops = "-", "-"
            partition = "-"
        else:
            row = next((b for b in summary["backends"] if b["backend"] == backend), None)
            n = row["ops_offloaded"] if row else 0
            offloaded = f"{n}/{summary['ops']}"
            share = row["flops_share"] if row else 0.0
            flops = "-" if share is None else f"{100 * share:.0f}%"
            partition = f"{steps.get('partition', float('nan')):.3f}"
        import_s = frontend_s + steps.get("import", 0.0)
        ratio = f"{run_ms / host_ms:.2f}" if host_ms else "-"
        label = f"{name:<12} {import_s:>8.2f}" if k == 0 else " " * 21
        print(
            f"{label} | {backend:<10} {partition:>11} {compile_s:>9.2f} {offloaded:>15} "
            f"{flops:>6} {run_ms:>9.3f} {ratio:>7} {error:>9.1e}",
            file=out,
            flush=True,
        )
        compiled.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", help="comma-separated zoo entries (default: the light ones)")
    p.add_argument("--all", action="store_true", help="every zoo entry, the slow ones too")
    p.add_argument("--backends", default="ccompiler,jsonrt,dnnl", help="comma-separated backends")
    args = p.parse_args(argv)
    if args.models:
        names = args.models.split(",")
    else:
        names = [n for n, e in zoo.ENTRIES.items() if args.all or not e.slow]
    backends = [b for b in args.backends.split(",") if b]
    driver.Progress = StepTimes  # type: ignore[misc]  # record the compile's step times
    print(HEADER)
    print("-" * len(HEADER))
    with tempfile.TemporaryDirectory(prefix="byoc_bench_") as tmp:
        for name in names:
            bench_model(name, backends, Path(tmp), sys.stdout)


if __name__ == "__main__":
    main()
