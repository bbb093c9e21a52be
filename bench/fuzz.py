"""Differential fuzzing of every backend set against numpy (and onnxruntime).

    python bench/fuzz.py --minutes 30                 # the long profile
    python bench/fuzz.py --models 30 --jobs 2         # a fixed number of models
    python bench/fuzz.py --flags --models 200         # host-only, each IREE flag ablated
    python bench/fuzz.py --replay fuzz-failures/linalg-17-dnnl.json --family linalg

Random graphs (`byoc_mlir.fuzz.graphs`: 3-25 ops; elementwise, matmul, batch matmul,
convolution, reductions, transposes; fan-out, shared weights, residual adds, several
results, rank-0 values, broadcasts; f32, f16, i32) are written as linalg, TOSA and ONNX
in turn (`byoc_mlir.fuzz.emit`), built host-only and with every backend set, each build
in its own forked process with its own temporary directory, and compared with numpy
(`byoc_mlir.fuzz.run` defines the classes). A failing (graph, backend set) is shrunk
(greedily, by cutting outputs and ending the graph earlier) and saved to ``--save`` as
JSON and as the model file. Seeds run from ``--seed`` up; the same seed and family give
the same graph, so a run is reproducible.

Prints, per family and backend set, how many builds fell in each class, and exits 1 if
any build is WRONG, LOST, EXCEPTION, CRASH, HANG or TEMP.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path

from byoc_mlir.fuzz import graphs
from byoc_mlir.fuzz.emit import FAMILIES
from byoc_mlir.fuzz.run import (
    BACKEND_SETS,
    CLASSES,
    CaseResult,
    Target,
    flag_ablation,
    run_case,
    save,
    shrink,
)

BAD = ("WRONG", "LOST", "EXCEPTION", "CRASH", "HANG", "TEMP")


def one(seed: int, family: str, targets: Sequence[Target], save_dir: Path | None) -> CaseResult:
    """One graph through every target; failures shrunk and saved (runs in a worker)."""
    result = run_case(graphs.generate(seed, family), family, targets)
    for target in targets:
        cls = result.classes[target.label]
        if cls in BAD and save_dir is not None:
            small = shrink(result.graph, family, target, cls)
            save(family, target.label, small, save_dir)
    return result


def cases(first_seed: int, families: Sequence[str]) -> Iterator[tuple[int, str]]:
    seed = first_seed
    while True:
        for family in families:
            yield seed, family
        seed += 1


def table(results: list[CaseResult], targets: Sequence[Target], families: Sequence[str]) -> str:
    counts: Counter[tuple[str, str, str]] = Counter()
    for r in results:
        for label, cls in r.classes.items():
            counts[(r.family, label, cls)] += 1
    head = f"{'family':<8}{'backends':<38}" + "".join(f"{c:>10}" for c in CLASSES)
    lines = [head, "-" * len(head)]
    for family in [*families, "all"]:
        for t in targets:
            row = [
                sum(counts[(f, t.label, c)] for f in families) if family == "all"
                else counts[(family, t.label, c)]
                for c in CLASSES
            ]  # fmt: skip
            lines.append(f"{family:<8}{t.label:<38}" + "".join(f"{n:>10}" for n in row))
    ort = Counter(r.ort for r in results if r.family == "onnx")
    lines.append(
        f"onnxruntime on the ONNX graphs: agrees with numpy on {ort['agrees']}, "
        f"disagrees on {ort['disagrees']}, cannot run {ort['n/a']}"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, help="stop starting new models after this long")
    p.add_argument("--models", type=int, help="how many models (default: 30 without --minutes)")
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--families", default=",".join(FAMILIES), help="linalg,tosa,onnx")
    p.add_argument("--jobs", type=int, default=1, help="models built at once")
    p.add_argument("--flags", action="store_true", help="host-only, each IREE flag ablated")
    p.add_argument("--save", type=Path, default=Path("fuzz-failures"), help="failing cases")
    p.add_argument("--replay", type=Path, help="a saved graph (.json) to run again")
    p.add_argument("--family", default="linalg", help="the replayed graph's family")
    args = p.parse_args(argv)
    targets = flag_ablation() if args.flags else BACKEND_SETS
    if args.replay is not None:
        g = graphs.Graph.from_json(args.replay.read_text())
        r = run_case(g, args.family, targets)
        for label, cls in r.classes.items():
            print(f"{label:<18}{cls:<10}{r.details.get(label, '')}")
        return int(any(c in BAD for c in r.classes.values()))
    families = [f for f in args.families.split(",") if f]
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        p.error(f"unknown family {unknown[0]!r}; valid: {', '.join(FAMILIES)}")
    limit = args.models if args.models is not None else (None if args.minutes else 30)
    deadline = time.monotonic() + 60 * args.minutes if args.minutes else None
    start = time.monotonic()
    results: list[CaseResult] = []
    todo = cases(args.seed, families)
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
        running: set[Future[CaseResult]] = set()

        def more() -> bool:
            started = len(results) + len(running)
            if limit is not None and started >= limit:
                return False
            return deadline is None or time.monotonic() < deadline

        while True:
            while len(running) < args.jobs and more():
                seed, family = next(todo)
                running.add(pool.submit(one, seed, family, targets, args.save))
            if not running:
                break
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                r = future.result()
                results.append(r)
                bad = {k: v for k, v in r.classes.items() if v != "PASS"}
                print(
                    f"[{len(results)}] seed {r.graph.seed} {r.family} {r.graph.dtype} "
                    f"{r.graph.n_ops} ops: {bad or 'all PASS'}",
                    file=sys.stderr,
                    flush=True,
                )
    elapsed = time.monotonic() - start
    builds = sum(len(r.classes) for r in results)
    print(table(results, targets, families))
    print(f"{len(results)} models, {builds} builds in {elapsed / 60:.1f} min")
    return int(any(c in BAD for r in results for c in r.classes.values()))


if __name__ == "__main__":
    sys.exit(main())
