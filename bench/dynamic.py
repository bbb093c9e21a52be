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
- **static dnnl** and **dynamic dnnl**: the same two builds with ``["dnnl"]``: oneDNN
  regions on the runtime route (a dynamic region creates its primitives per input
  shape, on its first call at that shape: the warm-up call);

with each dynamic bundle's max abs difference from onnxruntime, and the build seconds.
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


BACKENDS = ("testing", "dnnl")
"""``testing``: the whole model compiled by IREE (the host); ``dnnl``: oneDNN regions."""


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
        dyn_options = CompileOptions(cache_dir=None, dims={"batch": (1, 4), "seq": (1, 128)})
        dynamic, build_dynamic = {}, {}
        for backends in BACKENDS:
            start = time.perf_counter()
            dynamic[backends] = compile(dyn_onnx, [backends], options=dyn_options)
            build_dynamic[backends] = time.perf_counter() - start
        so = ort.SessionOptions()
        so.intra_op_num_threads = 2
        session = ort.InferenceSession(str(dyn_onnx), so, providers=["CPUExecutionProvider"])
        rows: list[tuple[int, dict[str, float], dict[str, float]]] = []
        builds: dict[str, list[float]] = {b: [] for b in BACKENDS}
        for seq in seqs:
            f = feed(seq)
            example = tuple(torch.from_numpy(a) for a in f.values())
            static_onnx = export(inst.model, example, work / f"static{seq}.onnx", False)
            arrays = list(f.values())
            calls: dict[str, Any] = {"ort": lambda f=f: session.run(None, f)}
            statics = []
            for backends in BACKENDS:
                start = time.perf_counter()
                static = compile(static_onnx, [backends], options=options)
                builds[backends].append(time.perf_counter() - start)
                statics.append(static)
                calls[f"static {backends}"] = lambda s=static, a=arrays: s(*a)
                calls[f"dynamic {backends}"] = lambda d=dynamic[backends], a=arrays: d(*a)
            variants = [fp32_bench.Variant(n, fp32_bench.Measured(), r) for n, r in calls.items()]
            fp32_bench.time_each(variants, args.runs)
            want = session.run(None, f)[0]
            diffs = {b: float(np.abs(dynamic[b](*arrays)[0] - want).max()) for b in BACKENDS}
            rows.append((seq, {v.name: v.result.ms for v in variants}, diffs))
            for static in statics:
                static.close()
        for d in dynamic.values():
            d.close()
    print(
        "| seq | ort ms | static host ms | dynamic host ms | static dnnl ms | dynamic dnnl ms "
        "| dynamic / static (host) | dynamic / static (dnnl) | dynamic dnnl / ort "
        "| max diff vs ort (host, dnnl) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for seq, ms, diff in rows:
        o, sh, dh = ms["ort"], ms["static testing"], ms["dynamic testing"]
        sd, dd = ms["static dnnl"], ms["dynamic dnnl"]
        print(
            f"| {seq} | {o:.2f} | {sh:.2f} | {dh:.2f} | {sd:.2f} | {dd:.2f} | {dh / sh:.2f} "
            f"| {dd / sd:.2f} | {dd / o:.2f} | {diff['testing']:.1e}, {diff['dnnl']:.1e} |"
        )
    print()
    for b in BACKENDS:
        each = ", ".join(f"{t:.1f} s" for t in builds[b])
        print(
            f"builds ({b}): one dynamic bundle {build_dynamic[b]:.1f} s; static, one per "
            f"shape: {each} ({sum(builds[b]):.1f} s for {len(builds[b])} shapes)"
        )


if __name__ == "__main__":
    main()
