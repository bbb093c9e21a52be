"""Quantized models: onnxruntime int8 against IREE alone and byoc_mlir with ``dnnl``.

    python bench/int8.py              # resnet50 squeezenet inception_v1 mobilenet_v2 bert_mini
    python bench/int8.py --models resnet50 --runs 20

Per zoo model (`byoc_mlir.zoo`, seeded random weights; batch 1, 2 threads; the torch
ones exported to ONNX by torch's TorchScript exporter first), the float model is
prepared with onnxruntime's ``quant_pre_process`` (BatchNorm folded into the
convolutions) and quantized with its ``quantize_static`` (QDQ format, per-channel int8
weights, uint8 activations, calibrated on 8 seeded inputs), then milliseconds per
inference (median of ``--runs`` after one warm-up call, one variant at a time) for

- **ort fp32** / **ort int8**: onnxruntime's CPU provider on the float / quantized model;
- **IREE int8**: ``byoc_mlir.compile(quantized, [])``, IREE alone at its best flags;
- **dnnl on int8**: ``byoc_mlir.compile(quantized, ["dnnl"])``: int8 convolutions
  (VNNI/AMX as oneDNN picks), requantized in the primitive, residual adds as int8 sum
  post-ops, the other quantize/dequantize steps as oneDNN reorders;
- **dnnl fp32**: ``byoc_mlir.compile(float model, ["dnnl"])``, for scale;

with each quantized variant's max abs difference from onnxruntime int8 on the first
output and its top-1 against onnxruntime int8 (rows whose largest entry matches).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dnnl as fp32_bench  # noqa: E402  (bench/dnnl.py: variants, timing, cells)

from byoc_mlir import CompileOptions, compile, zoo  # noqa: E402

MODELS = ("resnet50", "squeezenet", "inception_v1", "mobilenet_v2", "bert_mini")
COLUMNS = (
    "model", "ort fp32 ms", "ort int8 ms", "IREE int8 ms", "dnnl on int8 ms", "dnnl fp32 ms",
    "IREE int8 / ort int8", "dnnl int8 / ort int8", "diff IREE int8", "diff dnnl int8",
    "top-1 IREE int8", "top-1 dnnl int8",
)  # fmt: skip


def quantize(fp32: Path, out: Path, inputs: list[np.ndarray]) -> Path:
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    # onnxruntime's recommended first step: BatchNorm folded into the convolutions
    prepared = out.with_suffix(".pre.onnx")
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    model = onnx.load(str(prepared))
    names = [
        i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}
    ]
    rng = np.random.default_rng(1)
    batches = [
        {
            n: rng.standard_normal(x.shape).astype(x.dtype)
            if x.dtype.kind == "f"
            else rng.integers(0, int(x.max()) + 1, x.shape).astype(x.dtype)  # token ids
            for n, x in zip(names, inputs, strict=True)
        }
        for _ in range(8)
    ]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.data = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.data, None)

    quantize_static(
        str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
    )  # fmt: skip
    return out


def export(inst: zoo.Instance, stem: Path) -> Path:
    """A torch zoo model as ONNX (torch's TorchScript exporter, opset 17; BatchNorm is
    folded into the convolutions in eval mode)."""
    import torch

    out = stem.with_suffix(".fp32.onnx")
    stem.parent.mkdir(parents=True, exist_ok=True)
    names = [f"input{i}" for i in range(len(inst.inputs))]
    model = inst.model
    assert isinstance(model, torch.nn.Module) and inst.example_inputs is not None
    torch.onnx.export(
        model, tuple(inst.example_inputs), str(out), dynamo=False, opset_version=17,
        input_names=names,
    )  # fmt: skip
    return out


def ort(path: Path, inputs: list[np.ndarray], threads: int) -> Callable[[fp32_bench.Variant], None]:
    def make(v: fp32_bench.Variant) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        feeds = {i.name: x for i, x in zip(session.get_inputs(), inputs, strict=True)}
        v.outputs = session.run(None, feeds)  # type: ignore[attr-defined]
        v.run = lambda: session.run(None, feeds)

    return make


def byoc(
    path: Path, inputs: list[np.ndarray], backends: list[str], options: CompileOptions, out: Path
) -> Callable[[fp32_bench.Variant], None]:
    def make(v: fp32_bench.Variant) -> None:
        compiled = compile(path, backends, out_dir=out, options=options)
        v.close = compiled.close
        v.outputs = compiled(*inputs)  # type: ignore[attr-defined]
        v.run = lambda: compiled(*inputs)

    return make


def compare(v: fp32_bench.Variant, ref: fp32_bench.Variant) -> tuple[str, str]:
    got, want = getattr(v, "outputs", None), getattr(ref, "outputs", None)
    if v.result.failure or got is None or want is None:
        return "-", "-"
    a, b = np.asarray(got[0], np.float64), np.asarray(want[0], np.float64)
    return f"{np.abs(a - b).max():.1e}", fp32_bench.top1(a, b)


def bench_model(name: str, work: Path, runs: int, threads: int) -> list[str]:
    entry = zoo.get(name)
    inst = entry.build(work)
    fp32 = Path(str(inst.model)) if inst.example_inputs is None else export(inst, work / name)
    try:
        q = quantize(fp32, work / f"{name}_int8.onnx", inst.inputs)
    except Exception as err:  # onnxruntime's quantizer refuses some models
        reason = f"onnxruntime cannot quantize it: {type(err).__name__}: {err}"
        return [name, *(["-"] * (len(COLUMNS) - 2)), reason[:120]]
    best = CompileOptions(cache_dir=None, threads=threads)
    prep = fp32_bench.prepare
    variants = [
        prep("ort fp32", ort(fp32, inst.inputs, threads)),
        prep("ort int8", ort(q, inst.inputs, threads)),
        prep("IREE int8", byoc(q, inst.inputs, [], best, work / "h")),
        prep("dnnl on int8", byoc(q, inst.inputs, ["dnnl"], best, work / "d")),
        prep("dnnl fp32", byoc(fp32, inst.inputs, ["dnnl"], best, work / "f")),
    ]
    fp32_bench.time_each(variants, runs)
    of, oi, hi, di, df = variants
    diff_h, top_h = compare(hi, oi)
    diff_d, top_d = compare(di, oi)
    ms, cell, ratio = fp32_bench.ms, fp32_bench.cell, fp32_bench.ratio
    row = [
        name, *(cell(v.result, ms, True) for v in variants),
        cell(hi.result, lambda m: ratio(m, oi.result)),
        cell(di.result, lambda m: ratio(m, oi.result)),
        diff_h, diff_d, top_h, top_d,
    ]  # fmt: skip
    for v in variants:
        v.close()
    return row


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    models_help = "comma-separated zoo entries (torch ones exported to ONNX first)"
    p.add_argument("--models", default=",".join(MODELS), help=models_help)
    p.add_argument("--runs", type=int, default=20, help="timed calls per variant (median)")
    p.add_argument("--threads", type=int, default=2, help="IREE workers, onnxruntime threads")
    args = p.parse_args(argv)
    import iree.runtime as rt

    rt.flags.parse_flags(f"--task_topology_max_group_count={args.threads}")
    load_before = os.getloadavg()[0]
    print(fp32_bench.markdown_row(COLUMNS))
    print(fp32_bench.markdown_row(["---"] * len(COLUMNS)), flush=True)
    with tempfile.TemporaryDirectory(prefix="byoc_bench_int8_") as tmp:
        for name in [n for n in args.models.split(",") if n]:
            row = bench_model(name, Path(tmp) / name, args.runs, args.threads)
            print(fp32_bench.markdown_row(row), flush=True)
    print(
        f"\nbatch 1, {args.threads} threads, median of {args.runs} runs; 1-min load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    )


if __name__ == "__main__":
    main()
