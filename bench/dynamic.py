"""Dynamic shapes: one BERT-mini bundle for every sequence length, against a static
build per shape and onnxruntime.

    python bench/dynamic.py                   # sequences 8, 64, 128 at batch 1
    python bench/dynamic.py --seqs 16,128 --runs 30

BERT-mini (`byoc_mlir.zoo`, 4 layers, hidden 256, seeded weights) is exported to ONNX by
torch's TorchScript exporter twice: with a dynamic batch and sequence (``dim_param``
``batch`` and ``seq``), and once per sequence length with static shapes. Per shape,
milliseconds per inference (median of ``--runs`` after one warm-up call, one variant at a
time, 2 threads) of

- **ort**: onnxruntime's CPU provider on the dynamic model;
- **static**: ``byoc_mlir.compile(static model, ["testing"])``, one bundle per shape
  (IREE at its best flags, O3 with data tiling);
- **dynamic**: ``byoc_mlir.compile(dynamic model, ["testing"], dims={"batch": (1, 4),
  "seq": (1, 128)})``, the same bundle at every shape (IREE at O1 without data tiling:
  IREE 3.13 fails dynamically shaped BERT at O2/O3 and with data tiling);

with the dynamic bundle's max abs difference from onnxruntime, and the build seconds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dnnl as fp32_bench  # noqa: E402  (bench/dnnl.py: variants, timing, cells)

from byoc_mlir import CompileOptions, compile, zoo  # noqa: E402


def export(model: Any, example: tuple[Any, ...], path: Path, dynamic: bool) -> Path:
    import torch

    axes = {"ids": {0: "batch", 1: "seq"}, "mask": {0: "batch", 1: "seq"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter
        torch.onnx.export(
            model, example, str(path), dynamo=False, opset_version=17,
            input_names=["ids", "mask"], dynamic_axes=axes if dynamic else None,
        )  # fmt: skip
    return path


def feed(seq: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = np.ones((1, seq), np.int64)
    mask[:, seq * 3 // 4 :] = 0
    return {"ids": rng.integers(0, 1000, size=(1, seq)).astype(np.int64), "mask": mask}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seqs", default="8,64,128", help="sequence lengths (at most 128)")
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args(argv)
    seqs = [int(s) for s in args.seqs.split(",")]
    import onnxruntime as ort
    import torch

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory(prefix="bench_dynamic_") as tmp:
        work = Path(tmp)
        inst = zoo.get("bert_mini").build(work)
        options = CompileOptions(cache_dir=None)
        dyn_onnx = export(inst.model, tuple(inst.example_inputs), work / "dyn.onnx", True)
        start = time.perf_counter()
        dyn_options = CompileOptions(cache_dir=None, dims={"batch": (1, 4), "seq": (1, 128)})
        dynamic = compile(dyn_onnx, ["testing"], options=dyn_options)
        build_dynamic = time.perf_counter() - start
        so = ort.SessionOptions()
        so.intra_op_num_threads = 2
        session = ort.InferenceSession(str(dyn_onnx), so, providers=["CPUExecutionProvider"])
        rows, builds = [], []
        for seq in seqs:
            f = feed(seq)
            example = tuple(torch.from_numpy(a) for a in f.values())
            static_onnx = export(inst.model, example, work / f"static{seq}.onnx", False)
            start = time.perf_counter()
            static = compile(static_onnx, ["testing"], options=options)
            builds.append(time.perf_counter() - start)
            arrays = list(f.values())
            calls = {
                "ort": lambda f=f: session.run(None, f),
                "static": lambda s=static, a=arrays: s(*a),
                "dynamic": lambda a=arrays: dynamic(*a),
            }
            variants = [fp32_bench.Variant(n, fp32_bench.Measured(), r) for n, r in calls.items()]
            fp32_bench.time_each(variants, args.runs)
            want = session.run(None, f)[0]
            diff = float(np.abs(dynamic(*arrays)[0] - want).max())
            ms = [v.result.ms for v in variants]
            rows.append((seq, *ms, diff))
            static.close()
        dynamic.close()
    print("| seq | ort ms | static ms | dynamic ms | dynamic / static | dynamic / ort | "
          "max diff vs ort |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for seq, o, s, d, diff in rows:
        print(f"| {seq} | {o:.2f} | {s:.2f} | {d:.2f} | {d / s:.2f} | {d / o:.2f} | {diff:.1e} |")
    print(
        f"\nbuilds: one dynamic bundle {build_dynamic:.1f} s; static, one per shape: "
        + ", ".join(f"{b:.1f} s" for b in builds)
        + f" ({sum(builds):.1f} s for {len(builds)} shapes)"
    )


if __name__ == "__main__":
    main()
