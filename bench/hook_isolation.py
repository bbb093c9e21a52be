"""What running vendor hooks out of process costs: in-process against isolated codegen.

    python bench/hook_isolation.py          # cnn, squeezenet, resnet18, inception_v1 with dnnl
    python bench/hook_isolation.py --models cnn --backend ccompiler --jobs 1,2

Per zoo model, the same build (artifact cache off) with ``hook_isolation="inline"`` (the
hook in the compiling process) and ``"process"`` (each region's hook in a worker forked
from a clean fork server, with its trial call; `byoc_mlir.codegen.workers`), at each
``--jobs`` count. Columns: regions whose hook ran; the whole ``byoc_mlir.compile`` in
seconds (median of ``--repeat``); and what isolation adds per region against the
in-process build of the same run (each worker's start, the region's MLIR text
round trip, the payload's trial call; less what parallel workers overlap).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from byoc_mlir import CompileOptions, compile, frontends, zoo

COLUMNS = ("model", "backend", "mode", "jobs", "regions", "compile s", "added / region s")


def build(source: str | bytes, backend: str, mode: str, jobs: int, out: Path) -> tuple[int, float]:
    options = CompileOptions(cache_dir=None, hook_isolation=mode, jobs=jobs)
    start = time.perf_counter()
    compiled = compile(source, [backend], out_dir=out, options=options)
    elapsed = time.perf_counter() - start
    regions = [r for r in compiled.report["regions"] if "codegen" in r]
    compiled.close()
    return len(regions), elapsed


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="cnn,squeezenet,resnet18,inception_v1")
    p.add_argument("--backend", default="dnnl")
    p.add_argument("--jobs", default="1,2", help="worker counts to try out of process")
    p.add_argument("--repeat", type=int, default=3, help="builds per variant (median)")
    args = p.parse_args(argv)
    jobs = [int(j) for j in args.jobs.split(",")]
    print("| " + " | ".join(COLUMNS) + " |")
    print("| " + " | ".join("---" for _ in COLUMNS) + " |", flush=True)
    with tempfile.TemporaryDirectory(prefix="byoc_bench_iso_") as tmp:
        for name in args.models.split(","):
            work = Path(tmp) / name
            work.mkdir()
            inst = zoo.get(name).build(work)
            source = frontends.load(inst.model, inst.example_inputs).data
            variants = [("inline", 1)] + [("process", j) for j in jobs]
            base: float | None = None
            for mode, j in variants:
                runs = [
                    build(source, args.backend, mode, j, work / f"{mode}{j}_{k}")
                    for k in range(args.repeat)
                ]
                regions = runs[0][0]
                total = statistics.median(r[1] for r in runs)
                if base is None:
                    base = total
                added = (
                    "-" if mode == "inline" or not regions else f"{(total - base) / regions:.2f}"
                )
                cells = [name, args.backend, mode, str(j), str(regions), f"{total:.2f}", added]
                print("| " + " | ".join(cells) + " |", flush=True)
    print(f"\nmedian of {args.repeat} builds each; artifact cache off", file=sys.stdout)


if __name__ == "__main__":
    main()
