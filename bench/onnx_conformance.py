"""ONNX backend-test conformance of byoc_mlir, next to onnxruntime.

    python bench/onnx_conformance.py                          # ort + host, dnnl, ccompiler
    python bench/onnx_conformance.py --targets ort,host --json /tmp/conf.json --by-op
    python bench/onnx_conformance.py --ops Relu,Conv --limit 20 --compare-to-ort

What: every case of ONNX's own backend test material runs through several targets and
each (case, target) gets one outcome; the result is a coverage table like the ones
onnx-mlir and onnxruntime publish for the same material. Why: the zoo models exercise a
few dozen ops in a few shapes; the backend tests exercise each op's attributes, dtypes,
broadcasting, scalars and edge values one at a time, so they find frontend and codegen
bugs (and uncaught errors) the zoo cannot.

Cases (stable ids, rebuilt by each worker from the id alone):

- ``node/<name>``: the node tests generated in memory by
  ``onnx.backend.test.case.node.collect_testcases()``. Selected deterministically: every
  case whose op (a ``*_expanded`` case has its base case's op) is in `COMMON_OPS` (CNN
  and transformer ops), plus every ``--sample-every``-th (default 4th) other case sorted
  by name. ``*_expanded`` cases count: they are separate (multi-node) models. With onnx
  1.23 that is 1214 node cases (1017 of them for `COMMON_OPS`, 186 of those Attention).
- ``pytorch-converted/…``, ``pytorch-operator/…``, ``simple/…``: the on-disk suites
  (``model.onnx`` with ``test_data_set_*/{input,output}_*.pb``).
- ``light/test_<model>``: the light CNNs of ``data/light`` (as listed by
  ``data/real/*/data.json``, like onnx's loader). They ship expected outputs but no
  inputs; the inputs are made as onnx's runner makes them
  (``Runner.generate_dummy_data(..., seed=0, random=False)``: ``arange(n) / n`` in the
  input's shape, unknown dims as 1), and missing expected outputs would come from
  ``onnx.reference.ReferenceEvaluator``, as in the runner.

Models with a non-tensor value (string, sequence, optional, map) in their inputs,
outputs or inferred intermediate values are listed in the JSON as ``skipped (not a
tensor model)`` and not counted.

Targets: ``ort`` (onnxruntime's CPU provider, the reference), ``host`` (byoc_mlir,
host-only), ``dnnl`` and ``ccompiler`` (byoc_mlir with that backend); the byoc targets
build with the artifact cache off into a temporary directory deleted afterwards.

Outcome of a (case, target), over every data set of the case:

- PASS: each output has the expected dtype (exactly), shape (a scalar is ``()``), and
  values with ``|y - ref| <= atol + rtol * |ref|`` (NaN matches NaN, inf matches the
  same inf); ``rtol = 1e-3``, ``atol = 1e-5`` unless the case declares looser (as
  onnx's runner does, bfloat16 outputs get ``rtol >= 2**-6``, and float16 outputs
  ``rtol >= 2**-9``: two ULPs of each, for every target).
- WRONG: it ran, but a count, dtype, shape or value differs (the reason says which, and
  the max error).
- REFUSED: a clean refusal: `byoc_mlir.ByocError` for byoc targets, any onnxruntime
  exception for ``ort``.
- ERROR: a byoc target raised something else (an uncaught bug); type and first line.
- CRASH: the worker died (a signal such as SIGSEGV or SIGABRT) or took longer than
  ``--timeout`` seconds.

Each (case, target) runs in a long-lived worker subprocess (``--worker``: case ids in
on stdin, one JSON line per result out), ``--jobs`` of them at a time; the targets of
one case run in the same worker one after the other. A worker that dies or times out
costs one CRASH row: a fresh worker takes over. Memory a unit corrupts can kill a later
unit of the same worker (seen with two ``dnnl`` models in one process); ``--isolate``
gives every unit its own process, so a CRASH is always the unit's own. Native code in
workers writes to the worker's fd 1 and 2; fd 1 is pointed at stderr (a log file) and
results go to a copy of the original stdout, so the protocol stays clean.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import pickle
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

TARGETS = ("ort", "host", "dnnl", "ccompiler")
BYOC_BACKENDS: dict[str, list[str]] = {"host": [], "dnnl": ["dnnl"], "ccompiler": ["ccompiler"]}
OUTCOMES = ("PASS", "WRONG", "REFUSED", "ERROR", "CRASH")
SUITES = ("pytorch-converted", "pytorch-operator", "simple")
RTOL, ATOL = 1e-3, 1e-5
LOW_PRECISION_RTOL = {"bfloat16": 2**-6, "float16": 2**-9}
"""Two ULPs, for every target alike: onnx's runner allows bfloat16 outputs that much; a
float16 output one rounding away from the reference (0.468994 for 0.469482) is not wrong."""
SKIPPED = "skipped (not a tensor model, or random)"

COMMON_OPS = frozenset(
    """
    Conv ConvTranspose MatMul Gemm Relu LeakyRelu PRelu Elu Selu Sigmoid HardSigmoid
    HardSwish Tanh Erf Gelu Softmax LogSoftmax LayerNormalization RMSNormalization
    BatchNormalization InstanceNormalization MaxPool AveragePool GlobalAveragePool
    GlobalMaxPool LpPool Add Sub Mul Div Pow Sqrt Exp Log Neg Abs Reciprocal Clip Min Max
    Sum Mean Reshape Transpose Concat Split Slice Gather Squeeze Unsqueeze Flatten Pad
    Expand Tile Where Equal Less Greater Not And Cast ReduceMean ReduceSum ReduceMax
    ReduceMin ReduceProd ReduceL2 Attention GRU LSTM Identity Dropout Shape Size Range
    ConstantOfShape Einsum CumSum TopK ArgMax Trilu DepthToSpace SpaceToDepth Resize
    QuantizeLinear DequantizeLinear
    """.split()
)
"""CNN and transformer ops: all their node cases are selected."""


# --------------------------------------------------------------------------- cases


@dataclass
class Case:
    """One runnable case: a model and its data sets (inputs, expected outputs)."""

    id: str
    group: str  # the --by-op row: the op type (node cases) or the suite
    model: Any  # onnx.ModelProto
    data_sets: list[tuple[list[np.ndarray], list[np.ndarray]]]
    rtol: float = RTOL
    atol: float = ATOL
    input_names: list[str] = field(default_factory=list)  # what each input feeds (ort)


@dataclass(frozen=True)
class CaseRef:
    """A selected case, by id (the main process never needs more)."""

    id: str
    group: str


def onnx_dir() -> Path:
    import onnx

    return Path(onnx.__file__).parent / "backend" / "test" / "data"


@cache
def node_testcases() -> dict[str, Any]:
    """ONNX's node test cases by name (generated; takes ~10 s)."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {c.name: c for c in collect_testcases()}


def node_op(name: str) -> str:
    """The op a node case tests (a ``*_expanded`` case: its base case's op)."""
    base = node_testcases()[re.sub(r"_expanded.*$", "", name)]
    return base.model.graph.node[0].op_type


def as_array(value: Any) -> Any:
    """A data item as onnx's runner normalises it (TensorProto → ndarray), scalars too."""
    import onnx
    from onnx import numpy_helper

    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, np.generic):  # some node cases hold numpy scalars: shape ()
        return np.asarray(value)
    return value


RANDOM_OPS = frozenset(
    {"Bernoulli", "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
     "Multinomial"}
)  # fmt: skip
"""Ops whose outputs are random draws: their test data are one draw (ort fails them too)."""


def non_tensor(model: Any, data_sets: Iterable[tuple[Sequence[Any], Sequence[Any]]]) -> str:
    """Why a model is not a pure tensor model ('' when it is)."""
    import onnx

    try:
        graph = onnx.shape_inference.infer_shapes(model).graph
    except Exception:  # noqa: BLE001 - inference is only a better look; fall back
        graph = model.graph
    for value in [*graph.input, *graph.output, *graph.value_info]:
        kind = value.type.WhichOneof("value")
        if kind != "tensor_type":
            return f"{value.name!r} is {(kind or 'untyped').removesuffix('_type')}"
        if value.type.tensor_type.elem_type == onnx.TensorProto.STRING:
            return f"{value.name!r} is a string tensor"
    random = sorted({n.op_type for n in graph.node if n.op_type in RANDOM_OPS})
    if random:
        return f"its output is random ({', '.join(random)}): no expected value to compare"
    for inputs, outputs in data_sets:
        for array in [*inputs, *outputs]:
            array = as_array(array)
            if not isinstance(array, np.ndarray) or array.dtype == object:
                return f"data holds a {type(array).__name__}"
    return ""


def light_tests() -> dict[str, dict[str, Any]]:
    """``test_<model>`` → ``data/real/<test>/data.json`` (url, rtol, atol) for light files."""
    out = {}
    for path in sorted((onnx_dir() / "real").glob("*/data.json")):
        info = json.loads(path.read_text())
        if info.get("url", "").startswith("onnx/backend/test/data/light/"):
            out[path.parent.name] = info
    return out


NODE_CASES_FILE = "node_cases.pkl"
NODE_CASES: dict[str, Case] = {}
"""A worker's node cases, unpickled from the file the main process writes (generating
them again takes ~10 s, which every worker restart would pay)."""


def load_case(case_id: str) -> Case:
    """Rebuilds a case from its id."""
    import onnx

    kind, _, name = case_id.partition("/")
    if kind == "node" and case_id in NODE_CASES:
        return NODE_CASES[case_id]
    if kind == "node":
        tc = node_testcases()[name]
        data = [
            ([as_array(x) for x in inputs], [as_array(y) for y in outputs])
            for inputs, outputs in tc.data_sets
        ]
        # onnx's runner: the i-th input feeds the model's i-th graph input
        names = [i.name for i in tc.model.graph.input]
        return Case(
            case_id,
            node_op(name),
            tc.model,
            data,
            max(RTOL, tc.rtol),
            max(ATOL, tc.atol),
            names,
        )
    if kind == "light":
        info = light_tests()[name]
        path = onnx_dir() / "light" / Path(info["url"]).name
        model = onnx.load(str(path))
        inputs, outputs = light_data(model, path)
        inits = {i.name for i in model.graph.initializer}
        return Case(
            case_id,
            "light",
            model,
            [(inputs, outputs)],
            max(RTOL, info.get("rtol", 0)),
            max(ATOL, info.get("atol", 0)),
            [x.name for x in model.graph.input if x.name not in inits],
        )
    if kind in SUITES:
        case_dir = onnx_dir() / kind / name
        model = onnx.load(str(case_dir / "model.onnx"))
        rtol, atol = RTOL, ATOL
        if (case_dir / "data.json").exists():
            info = json.loads((case_dir / "data.json").read_text())
            rtol, atol = max(rtol, info.get("rtol", 0)), max(atol, info.get("atol", 0))
        data = []
        for set_dir in sorted(case_dir.glob("test_data_set_*")):
            inputs = [
                read_pb(set_dir / f"input_{i}.pb", model.graph.input[i].type)
                for i in range(len(list(set_dir.glob("input_*.pb"))))
            ]
            outputs = [
                read_pb(set_dir / f"output_{i}.pb", model.graph.output[i].type)
                for i in range(len(list(set_dir.glob("output_*.pb"))))
            ]
            data.append((inputs, outputs))
        names = [i.name for i in model.graph.input]  # input_i feeds graph input i (onnx)
        return Case(case_id, kind, model, data, rtol, atol, names)
    raise KeyError(f"unknown case id {case_id!r}")


def read_pb(path: Path, type_proto: Any) -> Any:
    """A data file as onnx's runner reads it (a tensor; other kinds are returned as is)."""
    import onnx
    from onnx import numpy_helper

    raw = path.read_bytes()
    if type_proto.HasField("tensor_type"):
        tensor = onnx.TensorProto()
        tensor.ParseFromString(raw)
        return numpy_helper.to_array(tensor)
    if type_proto.HasField("sequence_type"):
        seq = onnx.SequenceProto()
        seq.ParseFromString(raw)
        return numpy_helper.to_list(seq)
    return raw  # optional / map: never a tensor model, skipped


def light_data(model: Any, path: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Inputs and expected outputs of a light model, the way onnx's runner makes them."""
    import onnx
    from onnx import numpy_helper
    from onnx.backend.test.runner import Runner

    inits = {i.name for i in model.graph.initializer}
    feeds = {
        x.name: Runner.generate_dummy_data(x, seed=0, name=path.stem, random=False)
        for x in model.graph.input
        if x.name not in inits
    }
    prefix = path.with_suffix("")
    files = [Path(f"{prefix}_output_{i}.pb") for i in range(len(model.graph.output))]
    if all(f.exists() for f in files):
        outputs = []
        for f in files:
            tensor = onnx.TensorProto()
            tensor.ParseFromString(f.read_bytes())
            outputs.append(numpy_helper.to_array(tensor))
    else:
        from onnx.reference import ReferenceEvaluator

        outputs = list(ReferenceEvaluator(model).run(None, feeds))
    return list(feeds.values()), outputs


def select_cases(sample_every: int) -> tuple[list[CaseRef], list[dict[str, str]]]:
    """The selection, in a fixed order, and the skipped non-tensor models."""
    import onnx

    selected: list[CaseRef] = []
    skipped: list[dict[str, str]] = []

    def add(ref: CaseRef, why: str) -> None:
        if why:
            skipped.append({"id": ref.id, "group": ref.group, "outcome": SKIPPED, "reason": why})
        else:
            selected.append(ref)

    cases = node_testcases()
    names = sorted(cases)
    common = [n for n in names if node_op(n) in COMMON_OPS]
    others = [n for n in names if node_op(n) not in COMMON_OPS][::sample_every]
    for name in sorted([*common, *others]):
        tc = cases[name]
        add(CaseRef(f"node/{name}", node_op(name)), non_tensor(tc.model, tc.data_sets))
    for suite in SUITES:
        for case_dir in sorted((onnx_dir() / suite).iterdir()):
            if not (case_dir / "model.onnx").exists():
                continue
            model = onnx.load(str(case_dir / "model.onnx"), load_external_data=False)
            why = non_tensor(model, [])
            if not why:
                with contextlib.suppress(Exception):
                    why = non_tensor(model, load_case(f"{suite}/{case_dir.name}").data_sets)
            add(CaseRef(f"{suite}/{case_dir.name}", suite), why)
    for name in light_tests():
        add(CaseRef(f"light/{name}", "light"), "")
    return selected, skipped


# --------------------------------------------------------------------------- checking


def compare(
    got: Sequence[Any], ref: Sequence[np.ndarray], rtol: float, atol: float
) -> tuple[str, float | None] | None:
    """None if ``got`` matches ``ref``; else (what differs, max abs error or None)."""
    if len(got) != len(ref):
        return f"{len(got)} outputs, expected {len(ref)}", None
    for i, (y, r) in enumerate(zip(got, ref, strict=True)):
        if not isinstance(y, np.ndarray):
            return f"output {i} is a {type(y).__name__}, expected an array", None
        if y.dtype != r.dtype:
            return f"output {i} dtype {y.dtype}, expected {r.dtype}", None
        if y.shape != r.shape:
            return f"output {i} shape {y.shape}, expected {r.shape}", None
        tol = max(rtol, LOW_PRECISION_RTOL.get(r.dtype.name, rtol))
        with np.errstate(all="ignore"):
            yf, rf = y.astype(np.float64), r.astype(np.float64)
            diff = np.abs(yf - rf)
            ok = (yf == rf) | (np.isnan(yf) & np.isnan(rf)) | (diff <= atol + tol * np.abs(rf))
        if not ok.all():
            bad = np.argwhere(~ok)
            where = tuple(int(k) for k in bad[0])
            finite = diff[~ok][np.isfinite(diff[~ok])]
            err = float(finite.max()) if finite.size else float("nan")
            return (
                f"output {i} values: {len(bad)}/{r.size} differ, max abs err {err:.3g}; "
                f"at {where}: got {yf[where]:.6g}, expected {rf[where]:.6g}",
                err,
            )
    return None


def first_line(err: BaseException, with_type: bool = True) -> str:
    """The exception's first non-empty line (after its type name), at most 400 chars."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    text = lines[0] if lines else ""
    return (f"{type(err).__name__}: {text}" if with_type else text)[:400]


# --------------------------------------------------------------------------- worker


def run_ort(case: Case) -> dict[str, Any]:
    import onnxruntime as ort

    try:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 3
        sess = ort.InferenceSession(
            case.model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
        )
    except Exception as err:  # noqa: BLE001 - any onnxruntime failure is a refusal
        return {"outcome": "REFUSED", "reason": f"session: {first_line(err)}"}
    for inputs, expected in case.data_sets:
        try:
            got = sess.run(None, dict(zip(case.input_names, inputs, strict=False)))
        except Exception as err:  # noqa: BLE001
            return {"outcome": "REFUSED", "reason": f"run: {first_line(err)}"}
        diff = compare(got, expected, case.rtol, case.atol)
        if diff:
            return {"outcome": "WRONG", "reason": diff[0], "max_err": diff[1]}
    return {"outcome": "PASS", "reason": ""}


SHAPE_OPERANDS = {
    "Reshape", "Slice", "Split", "Pad", "Tile", "Expand", "Resize", "Upsample", "CumSum", "CumProd",
    "TopK", "Unsqueeze", "Squeeze", "OneHot", "ReduceMean", "ReduceSum", "ReduceMax",
    "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp",
    "ReduceSumSquare",
}  # fmt: skip
"""Ops whose operands after the first fix the output's shape (axes, shape, starts...)."""

FLOAT_SHAPE_OPERANDS = {"Resize": slice(1, 3), "Upsample": slice(1, 2), "Range": slice(0, 3)}
"""Float operands (by position) that fix a shape or a crop, bound as integer ones are."""


def shape_inputs(case: Case) -> dict[str, np.ndarray]:
    """Graph inputs that fix a shape (integer shape operands; Resize's roi and scales).

    byoc_mlir compiles static shapes, so such an input must be known at compile time;
    as onnx-mlir's backend-test runner does, the runner binds it to the data set's value
    (``CompileOptions.bind_inputs``) when a build without it is refused. Inputs whose
    value differs between data sets are not bound.
    """
    integer = {7, 6}  # INT64, INT32
    names = {
        name
        for node in case.model.graph.node
        if node.op_type in SHAPE_OPERANDS
        for name in node.input[1:]
    } | {name for node in case.model.graph.node if node.op_type == "Range" for name in node.input}
    # float operands that fix a shape: Resize's roi and scales (as Slice's starts do),
    # Range's start, limit and delta
    floats = {
        name
        for node in case.model.graph.node
        for name in node.input[FLOAT_SHAPE_OPERANDS.get(node.op_type, slice(0))]
    }
    if case.group == "Range":  # also the *_expanded cases: its operands are the inputs
        floats |= {i.name for i in case.model.graph.input}
        names |= floats
    types = {i.name: i.type.tensor_type.elem_type for i in case.model.graph.input}
    bound = {}
    for k, name in enumerate(case.input_names):
        if name not in names:
            continue
        if types.get(name) not in integer and name not in floats:
            continue
        values = [np.asarray(inputs[k]) for inputs, _ in case.data_sets]
        if all(np.array_equal(values[0], v) for v in values[1:]):
            bound[name] = values[0]
    return bound


def run_byoc(case: Case, backends: list[str], tmp: Path) -> dict[str, Any]:
    import byoc_mlir
    from byoc_mlir import ByocError

    options = byoc_mlir.CompileOptions(cache_dir=None)
    bound: dict[str, np.ndarray] = {}
    try:
        try:
            compiled = byoc_mlir.compile(
                case.model, backends, out_dir=tmp / "bundle", options=options
            )
        except ByocError:
            bound = shape_inputs(case)
            if not bound:
                raise
            options = byoc_mlir.CompileOptions(cache_dir=None, bind_inputs=bound)
            compiled = byoc_mlir.compile(
                case.model, backends, out_dir=tmp / "bound", options=options
            )
    except ByocError as err:
        return {"outcome": "REFUSED", "reason": f"compile: {first_line(err, False)}"}
    except Exception as err:  # noqa: BLE001 - an uncaught error is the finding
        return {
            "outcome": "ERROR",
            "reason": f"compile: {first_line(err)}",
            "traceback": traceback.format_exc(limit=-4),
        }
    try:
        for inputs, expected in case.data_sets:
            # input k feeds case.input_names[k] (old models list weights as inputs too)
            kept = [a for k, a in enumerate(inputs) if case.input_names[k] not in bound]
            try:
                got = compiled(*kept)
            except ByocError as err:
                return {"outcome": "REFUSED", "reason": f"run: {first_line(err, False)}"}
            except Exception as err:  # noqa: BLE001
                return {
                    "outcome": "ERROR",
                    "reason": f"run: {first_line(err)}",
                    "traceback": traceback.format_exc(limit=-4),
                }
            diff = compare(got, expected, case.rtol, case.atol)
            if diff:
                return {"outcome": "WRONG", "reason": diff[0], "max_err": diff[1]}
        if bound:
            return {"outcome": "PASS", "reason": "", "bound": sorted(bound)}
        return {"outcome": "PASS", "reason": ""}
    finally:
        compiled.close()


def worker_main(tmp_root: str) -> None:
    """Serves ``{"case", "target"}`` lines on stdin with one JSON result line each."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # native code printing to fd 1 lands in the log, not in the protocol
    sys.stdout = sys.stderr
    warnings.simplefilter("ignore")
    import onnxruntime  # noqa: F401

    import byoc_mlir  # noqa: F401 - pay the imports before the first timed case

    cases_file = Path(tmp_root) / NODE_CASES_FILE
    if cases_file.exists():
        NODE_CASES.update(pickle.loads(cases_file.read_bytes()))
    out.write(json.dumps({"ready": True}) + "\n")
    current: Case | None = None
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        print(f"== {req['case']} [{req['target']}]", file=sys.stderr, flush=True)
        start = time.perf_counter()
        tmp = Path(tempfile.mkdtemp(prefix="unit-", dir=tmp_root))
        try:
            if current is None or current.id != req["case"]:
                current = load_case(req["case"])
            if req["target"] == "ort":
                result = run_ort(current)
            else:
                result = run_byoc(current, BYOC_BACKENDS[req["target"]], tmp)
        except Exception as err:  # noqa: BLE001 - the harness itself: still one row
            result = {
                "outcome": "ERROR",
                "reason": f"harness: {first_line(err)}",
                "traceback": traceback.format_exc(limit=-4),
            }
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        result.update(
            case=req["case"], target=req["target"], seconds=round(time.perf_counter() - start, 3)
        )
        out.write(json.dumps(result, default=str) + "\n")


# --------------------------------------------------------------------------- pool


class Worker:
    """One worker subprocess; restarted by its slot when it dies."""

    def __init__(self, slot: int, tmp_root: Path):
        self.slot = slot
        self.tmp_root = tmp_root
        self.proc: subprocess.Popen[bytes] | None = None
        self.buffer = b""
        self.starts = 0
        self.log_path = tmp_root / f"worker-{slot}.log"

    def start(self) -> None:
        self.starts += 1
        self.buffer = b""
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child holds it
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", "--tmp", str(self.tmp_root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,  # its own group: a timeout kills its compilers too
        )
        log.close()
        ready = self.readline(600)
        if not isinstance(ready, dict) or not ready.get("ready"):
            raise RuntimeError(
                f"worker {self.slot} did not start: {ready}; see log tail:\n" + self.log_tail()
            )

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def close(self) -> None:
        if self.proc is not None and self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.stop()
            self.proc = None

    def log_tail(self) -> str:
        """The current unit's last stderr output (what the worker said before dying)."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        if any(ln.startswith("== ") for ln in lines):  # only the current unit's output
            last = max(i for i, ln in enumerate(lines) if ln.startswith("== "))
            lines = lines[last + 1 :]
        return " | ".join(ln.strip()[:200] for ln in lines if ln.strip())[-600:] or "(empty)"

    def readline(self, timeout: float) -> dict[str, Any] | str:
        """The next JSON line; "timeout" or "died" when there is none."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout"
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return "died"
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)

    def run(self, case_id: str, target: str, timeout: float) -> dict[str, Any]:
        if self.proc is None:
            try:
                self.start()
            except (OSError, RuntimeError) as err:
                self.stop()
                return {
                    "case": case_id,
                    "target": target,
                    "outcome": "CRASH",
                    "reason": f"worker did not start: {err}",
                    "seconds": 0.0,
                }
        assert self.proc is not None and self.proc.stdin is not None
        start = time.perf_counter()
        try:
            self.proc.stdin.write((json.dumps({"case": case_id, "target": target}) + "\n").encode())
            self.proc.stdin.flush()
            answer = self.readline(timeout)
        except BrokenPipeError:
            answer = "died"
        seconds = round(time.perf_counter() - start, 3)
        if isinstance(answer, dict):
            return answer
        if answer == "timeout":
            self.stop()
            reason = f"timeout after {timeout:g} s"
        else:
            code = self.proc.wait()
            self.proc = None
            try:
                how = signal.Signals(-code).name if code < 0 else f"exit status {code}"
            except ValueError:
                how = f"signal {-code}"
            reason = f"{how}; log: {self.log_tail()}"
        self.proc = None
        return {
            "case": case_id,
            "target": target,
            "outcome": "CRASH",
            "reason": reason,
            "seconds": seconds,
        }


@dataclass
class Run:
    """Shared state of a conformance run."""

    cases: list[CaseRef]
    targets: list[str]
    timeout: float
    isolate: bool = False
    worker_starts: int = 0
    results: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def progress(self) -> None:
        counts = {
            t: collections.Counter(r[t]["outcome"] for r in self.results.values() if t in r)
            for t in self.targets
        }
        text = "  ".join(f"{t}: {counts[t]['PASS']} pass" for t in self.targets)
        elapsed = time.monotonic() - self.started
        print(
            f"[{self.done}/{len(self.cases)}] {elapsed / 60:.1f} min  {text}",
            file=sys.stderr,
            flush=True,
        )


def run_pool(run: Run, jobs: int, tmp_root: Path) -> None:
    todo = collections.deque(run.cases)
    node = {c.id: load_case(c.id) for c in run.cases if c.id.startswith("node/")}
    (tmp_root / NODE_CASES_FILE).write_bytes(pickle.dumps(node))

    def slot_main(slot: int) -> None:
        worker = Worker(slot, tmp_root)
        try:
            while True:
                with run.lock:
                    if not todo:
                        return
                    ref = todo.popleft()
                row = {}
                for t in run.targets:
                    if run.isolate:  # a fresh process per unit: no state carried over
                        worker.close()
                    row[t] = worker.run(ref.id, t, run.timeout)
                with run.lock:
                    run.results[ref.id] = row
                    run.done += 1
                    if run.done % 25 == 0 or run.done == len(run.cases):
                        run.progress()
        finally:
            worker.close()
            worker.stop()
            with run.lock:
                run.worker_starts += worker.starts

    threads = [
        threading.Thread(target=slot_main, args=(i,), daemon=True) for i in range(max(1, jobs))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


# --------------------------------------------------------------------------- report


def reason_key(reason: str) -> str:
    """A reason with case-specific details (numbers, values, SSA names) blurred."""
    text = reason
    match = re.search(r'name = "(onnx\.\w+)"', text)
    if match:  # an ONNX op the importer cannot lower: the op is the reason
        text = text[: text.find("failed to legalize")] + f"cannot legalize {match.group(1)}"
    match = re.search(r"failed to legalize operation '[^']+'", text)
    if match:  # the op is the reason; the rest is its IR
        text = text[: match.end()]
    text = re.sub(r'loc\("[^"]*"\)|loc\(unknown\)', "loc", text)
    for long, short in (
        ("<onnx.ModelProto>: ", ""),
        ("lowering the imported ONNX model to linalg failed: loc: ", "onnx->linalg: "),
        ("IREE failed to compile the host module: <stdin>:", "IREE: "),
    ):
        text = text.replace(long, short)
    text = re.sub(r"^(\w+: IREE: )\d+:\d+: error: ", r"\1", text)
    text = re.sub(r"%[\w.#]+", "%v", text)
    text = re.sub(r"\b\d+(\.\d+)?(e[-+]?\d+)?\b", "N", text)
    text = re.sub(r"\(N(, N)*,?\)", "(shape)", text)
    text = re.sub(r";? (at \(|got ).*$", "", text)
    return re.sub(r"\s+", " ", text).strip()[:140]


def markdown(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def summarize(run: Run, skipped: list[dict[str, str]], args: argparse.Namespace) -> dict:
    import onnx
    import onnxruntime

    groups: dict[str, str] = {c.id: c.group for c in run.cases}
    counts = {
        t: collections.Counter(run.results[c.id][t]["outcome"] for c in run.cases)
        for t in run.targets
    }
    by_suite = collections.Counter(c.id.split("/")[0] for c in run.cases)
    elapsed = time.monotonic() - run.started
    print(
        f"onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}; "
        f"{len(run.cases)} cases ("
        + ", ".join(f"{k} {v}" for k, v in sorted(by_suite.items()))
        + f"); {len(skipped)} skipped (not a tensor model, or random); {elapsed / 60:.1f} min, "
        f"--jobs {args.jobs}\n"
    )
    bound = {t: sum(1 for c in run.cases if run.results[c.id][t].get("bound")) for t in run.targets}
    print(
        markdown(
            ["target", "PASS", "(shape inputs bound)", "WRONG", "refused", "error", "crash"],
            [
                [t, counts[t]["PASS"], bound[t], *(counts[t][o] for o in OUTCOMES[1:])]
                for t in run.targets
            ],
        )
    )

    if args.by_op:
        per_group: dict[str, dict[str, int]] = collections.defaultdict(collections.Counter)
        totals: collections.Counter[str] = collections.Counter()
        for c in run.cases:
            totals[c.group] += 1
            for t in run.targets:
                per_group[c.group][t] += run.results[c.id][t]["outcome"] == "PASS"
        print("\nPASS per op (node cases) or suite, of the cases run:\n")
        print(
            markdown(
                ["op / suite", "cases", *run.targets],
                [
                    [g, totals[g], *(per_group[g][t] for t in run.targets)]
                    for g in sorted(totals, key=str.lower)
                ],
            )
        )

    non_pass: dict[str, list[dict[str, Any]]] = {}
    for t in run.targets:
        rows = []
        for c in run.cases:
            r = run.results[c.id][t]
            if r["outcome"] != "PASS":
                rows.append(
                    {
                        "case": c.id,
                        "group": c.group,
                        "outcome": r["outcome"],
                        "reason": r.get("reason", ""),
                    }
                )
        non_pass[t] = rows
    print("\nMost common reasons (non-PASS), per target:")
    for t in run.targets:
        keyed = collections.Counter()
        example: dict[tuple[str, str], str] = {}
        for row in non_pass[t]:
            key = (row["outcome"], reason_key(row["reason"]))
            keyed[key] += 1
            example.setdefault(key, row["case"])
        if not keyed:
            continue
        print(f"\n{t}:")
        for (outcome, key), n in keyed.most_common(args.top):
            print(f"  {n:4d} {outcome:7s} {key}  (e.g. {example[(outcome, key)]})")

    vs_ort: dict[str, list[str]] = {}
    if "ort" in run.targets:
        ort_pass = {c.id for c in run.cases if run.results[c.id]["ort"]["outcome"] == "PASS"}
        lines = []
        for t in run.targets:
            if t == "ort":
                continue
            t_pass = {c.id for c in run.cases if run.results[c.id][t]["outcome"] == "PASS"}
            vs_ort[t] = sorted(ort_pass - t_pass)
            lines.append(
                f"{t}: {len(ort_pass - t_pass)} PASS in ort but not in {t}, "
                f"{len(t_pass - ort_pass)} PASS in {t} but not in ort"
            )
        if args.compare_to_ort:
            print("\ncompare to ort: " + "; ".join(lines))
            for t, ids in vs_ort.items():
                if not ids:
                    continue
                outs = collections.Counter(run.results[i][t]["outcome"] for i in ids)
                print(
                    f"  {t} ({', '.join(f'{o} {n}' for o, n in outs.most_common())}): "
                    + " ".join(ids)
                )

    return {
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "targets": run.targets,
        "args": {k: v for k, v in vars(args).items() if k != "worker"},
        "seconds": round(elapsed, 1),
        "worker_starts": run.worker_starts,
        "tolerance": {"rtol": RTOL, "atol": ATOL, "low_precision_rtol": LOW_PRECISION_RTOL},
        "summary": {t: {o: counts[t][o] for o in OUTCOMES} for t in run.targets},
        "cases": [
            {"id": c.id, "group": groups[c.id], "results": run.results[c.id]} for c in run.cases
        ],
        "skipped": skipped,
        "non_pass": non_pass,
        "pass_in_ort_not_in": vs_ort,
    }


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--targets",
        default=",".join(TARGETS),
        help=f"comma-separated, of {', '.join(TARGETS)} (default: all)",
    )
    p.add_argument(
        "--ops",
        help="only these op types / suites (the --by-op row names), "
        "e.g. Conv,Clip or light,pytorch-converted",
    )
    p.add_argument("--cases", help="only case ids matching this regex (re.search)")
    p.add_argument("--limit", type=int, help="only the first N selected cases")
    p.add_argument(
        "--sample-every",
        type=int,
        default=4,
        help="take every Nth node case of the ops outside COMMON_OPS (default 4)",
    )
    p.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    p.add_argument(
        "--timeout",
        type=float,
        default=120,
        help="seconds per (case, target) before it is a CRASH (default 120)",
    )
    p.add_argument(
        "--isolate",
        action="store_true",
        help="a fresh worker for every (case, target): slower, but a crash is always "
        "charged to the unit that caused it, never to a later one in the same process",
    )
    p.add_argument("--json", type=Path, help="write every result here")
    p.add_argument("--by-op", action="store_true", help="also a PASS table per op / suite")
    p.add_argument(
        "--compare-to-ort",
        action="store_true",
        help="list the cases ort passes and a byoc target does not",
    )
    p.add_argument("--top", type=int, default=15, help="reasons to show per target")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--tmp", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker_main(args.tmp or tempfile.gettempdir())
        return 0
    targets = [t for t in args.targets.split(",") if t]
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown:
        sys.exit(f"error: unknown target(s) {', '.join(unknown)}; choose from {', '.join(TARGETS)}")
    print("selecting cases (generating onnx's node tests) ...", file=sys.stderr, flush=True)
    cases, skipped = select_cases(args.sample_every)
    if args.ops:
        ops = {o.strip().lower() for o in args.ops.split(",")}
        cases = [c for c in cases if c.group.lower() in ops]
        skipped = [s for s in skipped if s["group"].lower() in ops]
    if args.cases:
        pattern = re.compile(args.cases)
        cases = [c for c in cases if pattern.search(c.id)]
        skipped = [s for s in skipped if pattern.search(s["id"])]
    if args.limit is not None:
        cases = cases[: args.limit]
    if not cases:
        sys.exit("error: no case selected")
    print(
        f"{len(cases)} cases x {len(targets)} targets, {args.jobs} workers",
        file=sys.stderr,
        flush=True,
    )
    run = Run(cases, targets, args.timeout, args.isolate)
    # A lowering that hangs inside byoc_mlir's isolated import is stopped by byoc_mlir
    # itself (a clean refusal) well before the runner's own --timeout would charge a CRASH.
    os.environ.setdefault("BYOC_ISOLATE_TIMEOUT", str(max(5.0, args.timeout / 2)))
    tmp_root = Path(tempfile.mkdtemp(prefix="onnx-conformance-"))
    try:
        run_pool(run, args.jobs, tmp_root)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    data = summarize(run, skipped, args)
    if args.json:
        args.json.write_text(json.dumps(data, indent=1, default=str) + "\n")
        print(f"\nwrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
