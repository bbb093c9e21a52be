"""Differential runs: one fuzz graph, built with each backend set, each in its own process.

Every build runs in a child process (forked from a clean fork server, `in_child`) with
its own empty temporary directory, so a crash or hang costs one build and a leftover
file is seen. Each
(graph, backend set) gets one class:

- ``PASS``: the outputs agree with numpy (`graphs.evaluate`) and with host-only;
- ``WRONG``: a build's outputs disagree with numpy (for ``none``: IREE or a frontend
  computes it wrongly; for a backend set: the backend does);
- ``LOST``: the build fails (a clear `ByocError`) though host-only builds and runs it:
  a backend turned a passing model into a failure;
- ``REFUSED``: host-only refuses the model too (a clear error; not a backend's fault);
- ``EXCEPTION``: an uncaught non-`ByocError` exception (a bug wherever it comes from);
- ``CRASH`` / ``HANG``: the build's process died of a signal / did not finish;
- ``TEMP``: the build passed but left files in its temporary directory.

ONNX graphs are also run by onnxruntime; where it runs them, its outputs must agree
with numpy (a disagreement is reported as ``ORT-DISAGREES``, i.e. a bug of the
generator or of numpy's reading of the graph, not of byoc).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from byoc_mlir.codegen.workers import call_in_child
from byoc_mlir.errors import ByocError
from byoc_mlir.fuzz.emit import emit
from byoc_mlir.fuzz.graphs import Graph, evaluate, prune


@dataclass(frozen=True)
class Target:
    """One way to build: backends (priority order), IREE flags (None: the defaults), and
    whether byoc-guard-data-tiling runs (off only to measure what it prevents)."""

    label: str
    backends: tuple[str, ...]
    flags: tuple[str, ...] | None = None
    guard: bool = True


HOST = Target("none", ("none",))
BACKEND_SETS: tuple[Target, ...] = (
    HOST,
    Target("testing", ("testing",)),
    Target("ccompiler", ("ccompiler",)),
    Target("jsonrt", ("jsonrt",)),
    Target("dnnl", ("dnnl",)),
    Target("ccompiler+jsonrt", ("ccompiler", "jsonrt")),
    Target("dnnl+ccompiler", ("dnnl", "ccompiler")),
)


def flag_ablation() -> tuple[Target, ...]:
    """Host-only builds: the default flags, each default flag left out in turn, and data
    tiling without its guard (to decide the defaults with the fuzzer)."""
    from byoc_mlir.options import BEST_CPU_FLAGS

    out = [HOST, Target("none:unguarded", ("none",), guard=False)]
    for flag in BEST_CPU_FLAGS:
        if "target-device" in flag:
            continue  # not optional
        short = flag.removeprefix("--iree-").split("=")[0]
        rest = tuple(f for f in BEST_CPU_FLAGS if f != flag)
        out.append(Target(f"none-{short}", ("none",), rest))
    return tuple(out)


CLASSES = ("PASS", "WRONG", "LOST", "REFUSED", "EXCEPTION", "CRASH", "HANG", "TEMP")
TIMEOUT = 120.0


@dataclass
class Build:
    """What one build in its child reported."""

    status: str  # ok | byoc | exception | crash | hang
    message: str = ""
    outputs: list[np.ndarray] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)


def tolerance(dtype: str) -> float:
    return {"f32": 1e-3, "f16": 3e-2, "i32": 0.0}[dtype]


def agree(got: Sequence[np.ndarray], want: Sequence[np.ndarray], dtype: str) -> str | None:
    """None when ``got`` matches ``want``; else what differs (first output that does)."""
    if len(got) != len(want):
        return f"{len(got)} outputs, expected {len(want)}"
    tol = tolerance(dtype)
    for k, (a, b) in enumerate(zip(got, want, strict=True)):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.dtype != b.dtype:
            return f"output {k}: {a.dtype}{list(a.shape)}, expected {b.dtype}{list(b.shape)}"
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        finite = np.isfinite(b64)
        if not np.array_equal(np.isfinite(a64), finite) or not np.array_equal(
            a64[~finite], b64[~finite], equal_nan=True
        ):
            return f"output {k}: inf/nan where the reference has none (or the reverse)"
        scale = max(1.0, float(np.abs(b64[finite]).max(initial=0.0)))
        err = np.abs(a64[finite] - b64[finite])
        if err.size and float(err.max()) > tol * scale:
            return f"output {k}: max abs error {float(err.max()):.3g} (scale {scale:.3g})"
    return None


def build_and_run(g: Graph, family: str, target: Target, timeout: float = TIMEOUT) -> Build:
    """Compiles ``g`` (as ``family``) for ``target`` and runs it, in a child process."""
    what = f"fuzz seed {g.seed} ({family}) with {target.label}"
    status, value = in_child(_child, (g, family, target), what, timeout)
    return value if status == "ok" else Build(status, value)  # type: ignore[no-any-return]


def in_child(fn: Any, args: tuple[Any, ...], what: str, timeout: float) -> tuple[str, Any]:
    """``fn(*args)`` in a child of the clean fork server (`workers.call_in_child`), with
    the fuzzer's modules preloaded there."""
    _fork_server()
    return call_in_child(fn, args, what, timeout)


_CONTEXT: Any = None


def _fork_server() -> Any:
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = multiprocessing.get_context("forkserver")
        _CONTEXT.set_forkserver_preload(["numpy", "byoc_mlir.fuzz.run", "byoc_mlir.driver"])
    return _CONTEXT


def _child(g: Graph, family: str, target: Target) -> Build:
    from byoc_mlir import host_compile
    from byoc_mlir.driver import compile
    from byoc_mlir.options import BEST_CPU_FLAGS, CompileOptions

    private = Path(tempfile.mkdtemp(prefix="byoc_fuzz_"))
    tempfile.tempdir = str(private)
    os.environ["TMPDIR"] = str(private)
    if not target.guard:  # this child only: measure what the guard prevents
        host_compile.guard_data_tiling = lambda module_op: 0  # type: ignore[assignment]
    try:
        model = emit(g, family)
        flags = target.flags if target.flags is not None else BEST_CPU_FLAGS
        options = CompileOptions(cache_dir=None, iree_flags=flags)
        try:
            compiled = compile(model, list(target.backends), options=options)
            outputs = compiled(*g.inputs())
            compiled.close()
            result = Build("ok", outputs=[np.asarray(o) for o in outputs])
        except ByocError as err:
            result = Build("byoc", str(err).splitlines()[0][:400])
        except Exception as err:  # noqa: BLE001 - the class this fuzzer looks for
            result = Build("exception", f"{type(err).__name__}: {str(err)[:400]}")
        result.leftovers = sorted(p.name for p in private.iterdir())
        return result
    finally:
        shutil.rmtree(private, ignore_errors=True)


def onnxruntime_outputs(g: Graph) -> list[np.ndarray] | None:
    """onnxruntime's answer (None where it cannot run the graph), in a child."""
    status, value = in_child(_onnxruntime, (g,), f"onnxruntime on fuzz seed {g.seed}", TIMEOUT)
    return value if status == "ok" else None  # type: ignore[no-any-return]


def _onnxruntime(g: Graph) -> list[np.ndarray] | None:
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(
            emit(g, "onnx").SerializeToString(), providers=["CPUExecutionProvider"]
        )
        feeds = {i.name: a for i, a in zip(session.get_inputs(), g.inputs(), strict=True)}
        return [np.asarray(o) for o in session.run(None, feeds)]
    except Exception:  # noqa: BLE001 - ort lacks a kernel (e.g. f16 Tanh): no opinion
        return None


def classify(g: Graph, build: Build, host: Build | None, reference: list[np.ndarray]) -> str:
    """The class of one build (see the module docstring); ``host`` is host-only's build."""
    if build.status in ("crash", "hang", "exception"):
        return build.status.upper()
    if build.status == "byoc":
        host_ran = host is not None and host.status == "ok"
        return "LOST" if host_ran else "REFUSED"
    if agree(build.outputs, reference, g.dtype) is not None:
        return "WRONG"
    return "TEMP" if build.leftovers else "PASS"


@dataclass
class CaseResult:
    graph: Graph
    family: str
    classes: dict[str, str]  # target label ("dnnl+ccompiler") -> class
    details: dict[str, str]
    ort: str  # "agrees", "disagrees", "n/a"


def run_case(
    g: Graph, family: str, targets: Sequence[Target] = BACKEND_SETS, timeout: float = TIMEOUT
) -> CaseResult:
    """Every target on one graph; host-only first (the others are judged against it)."""
    reference = evaluate(g, g.inputs())
    classes: dict[str, str] = {}
    details: dict[str, str] = {}
    host: Build | None = None
    for target in sorted(targets, key=lambda t: t != HOST):
        name = target.label
        build = build_and_run(g, family, target, timeout)
        if target == HOST:
            host = build
        classes[name] = classify(g, build, host, reference)
        if classes[name] != "PASS":
            diff = agree(build.outputs, reference, g.dtype) if build.status == "ok" else None
            details[name] = diff or build.message or ", ".join(build.leftovers)
    ort = "n/a"
    if family == "onnx":
        got = onnxruntime_outputs(g)
        if got is not None:
            ort = "agrees" if agree(got, reference, g.dtype) is None else "disagrees"
    return CaseResult(g, family, classes, details, ort)


def shrink(g: Graph, family: str, target: Target, cls: str, budget: int = 30) -> Graph:
    """A smaller graph on which ``target`` still gets ``cls`` (greedy; ``budget`` builds)."""

    def still_fails(candidate: Graph) -> bool:
        reference = evaluate(candidate, candidate.inputs())
        host = build_and_run(candidate, family, HOST) if cls == "LOST" else None
        build = build_and_run(candidate, family, target)
        return classify(candidate, build, host, reference) == cls

    tries = 0
    improved = True
    while improved and tries < budget:
        improved = False
        for candidate in _smaller(g):
            tries += 1
            if still_fails(candidate):
                g, improved = candidate, True
                break
            if tries >= budget:
                break
    return g


def _smaller(g: Graph) -> list[Graph]:
    """Candidate reductions, biggest first: one output, an earlier value as the only
    output, then one op bypassed (its readers read its same-shaped input instead)."""
    ops = [i for i, v in enumerate(g.values) if v.kind not in ("arg", "const")]
    out: list[Graph] = []
    if len(g.outputs) > 1:
        out += [prune(replace(g, outputs=(o,))) for o in g.outputs]
    out += [prune(replace(g, outputs=(i,))) for i in ops if i not in g.outputs]
    for i in reversed(ops):
        same = [k for k in g.values[i].inputs if g.values[k].shape == g.values[i].shape]
        if not same:
            continue
        swap = {i: same[0]}
        values = tuple(replace(v, inputs=tuple(swap.get(k, k) for k in v.inputs)) for v in g.values)
        outputs = tuple(dict.fromkeys(swap.get(k, k) for k in g.outputs))
        out.append(prune(replace(g, values=values, outputs=outputs)))
    return [c for c in out if c.n_ops < g.n_ops or len(c.outputs) < len(g.outputs)]


def save(family: str, label: str, graph: Graph, directory: Path) -> Path:
    """Writes a (shrunk) failing graph as JSON and as the model file it was built from."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"{family}-{graph.seed}-" + "".join(c if c.isalnum() else "_" for c in label)
    (directory / f"{stem}.json").write_text(graph.to_json())
    model = emit(graph, family)
    if family == "onnx":
        (directory / f"{stem}.onnx").write_bytes(model.SerializeToString())
    else:
        (directory / f"{stem}.mlir").write_text(model)
    return directory / f"{stem}.json"
