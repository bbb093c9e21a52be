"""Vendor hooks out of process: a crash, a hang or a runaway allocation costs one region.

A vendor's codegen hook (and the compiler or library it calls in process, through ctypes
or an extension module) can segfault, abort, loop or allocate without bound; in the
caller's process that takes ``byoc-compile`` down. `run_hooks` runs each region's hook in
a child process forked from a clean fork server (no threads, no MLIR context: a fork of
the compiling process would inherit its thread pools' locks), at most ``jobs`` at a time:

- the child parses the region's function (MLIR text, weights included), builds the
  `RegionView`, calls the hook, validates the artifact, and for the runtime route loads
  the payload with the backend's runtime and calls it once on seeded inputs (a runtime
  that crashes or hangs when called fails the region now, not the user's process later);
- its memory is capped (``RLIMIT_DATA``, ``memory_mb``): an allocation past it fails in
  the child (``MemoryError`` from Python, NULL from malloc), or kills it;
- the parent waits at most ``timeout`` seconds per region, then kills it.

A child killed by a signal, timed out, or failing any other way yields the reason the
region goes back to the host with (``vendor hook killed by SIGSEGV after 0.4 s``,
``vendor hook timed out after 60 s``). Results come back in region order whatever the
order they finished in, so a parallel build is byte-identical to a serial one.

Backends registered in Python (`registry.register`) rather than installed through the
entry-point group cannot be found by a child and run in process.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

import numpy as np

from byoc_mlir.codegen.hook import Artifact, CodegenOptions, RuntimeArtifact

DEFAULT_TIMEOUT = 600.0
"""Seconds one region's hook may take out of process (``--hook-timeout``)."""

DEFAULT_MEMORY_MB = 8192
"""Heap one region's hook may allocate out of process (``--hook-memory``), in MiB."""


@dataclass(frozen=True)
class HookJob:
    """One region's hook call, as a child process can redo it."""

    backend: str
    function: str  # the region's symbol
    module: str  # MLIR text of a module holding the function (and its weights' blobs)
    options: CodegenOptions


@dataclass
class HookResult:
    """An artifact, or why there is none; and the seconds the child took."""

    artifact: Artifact | None
    failure: str | None
    seconds: float


def run_hooks(
    jobs: Sequence[HookJob],
    parallel: int,
    timeout: float = DEFAULT_TIMEOUT,
    memory_mb: int | None = DEFAULT_MEMORY_MB,
) -> list[HookResult]:
    """Runs every job in a child of its own, at most ``parallel`` at once; in job order."""
    ctx = _context()
    results: list[HookResult | None] = [None] * len(jobs)
    pending = list(range(len(jobs)))
    running: dict[Connection, tuple[int, Any, float]] = {}
    path = list(sys.path)
    while pending or running:
        while pending and len(running) < max(1, parallel):
            k = pending.pop(0)
            receiver, sender = ctx.Pipe(duplex=False)
            child = ctx.Process(target=_child, args=(sender, jobs[k], path, memory_mb), daemon=True)
            child.start()
            sender.close()
            running[receiver] = (k, child, time.monotonic())
        now = time.monotonic()
        deadline = min(start + timeout for _, _, start in running.values())
        ready = wait(list(running), max(0.0, deadline - now))
        for receiver in list(running):
            k, child, start = running[receiver]
            elapsed = time.monotonic() - start
            if receiver in ready:
                results[k] = _collect(receiver, child, elapsed)
            elif elapsed >= timeout:
                child.kill()
                child.join()
                results[k] = HookResult(None, f"vendor hook timed out after {timeout:g} s", elapsed)
            else:
                continue
            receiver.close()
            del running[receiver]
    return [r for r in results if r is not None]


def _collect(receiver: Connection, child: Any, elapsed: float) -> HookResult:
    message: tuple[str, Any] | None = None
    try:
        message = receiver.recv()
    except (EOFError, OSError):
        message = None
    child.join(5)
    if child.is_alive():
        child.kill()
        child.join()
    if message is None:
        code = child.exitcode or 0
        if code < 0:
            how = f"killed by {_signal_name(-code)}"
        else:
            how = f"ended with exit status {code} and no result"
        return HookResult(None, f"vendor hook {how} after {elapsed:.1f} s", elapsed)
    kind, value = message
    if kind == "ok":
        return HookResult(value, None, elapsed)
    return HookResult(None, str(value), elapsed)


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


_CONTEXT: Any = None


def _context() -> Any:
    global _CONTEXT
    if _CONTEXT is None:
        # No preload: with one, the fork server imports the caller's __main__ script,
        # which re-runs a script without an `if __name__ == "__main__"` guard.
        _CONTEXT = multiprocessing.get_context("forkserver")
    return _CONTEXT


def _child(sender: Connection, job: HookJob, path: list[str], memory_mb: int | None) -> None:
    """In the child: the hook, the artifact's validation and a trial of its runtime."""
    if memory_mb:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    sys.path[:] = path
    try:
        message: tuple[str, Any] = ("ok", _hook(job))
    except MemoryError:
        message = ("failed", f"vendor hook ran out of memory (limit {memory_mb} MiB)")
    except Exception as err:  # noqa: BLE001 - a vendor failure, reported as such
        message = ("failed", _one_line(err))
    sender.send(message)
    sender.close()
    os._exit(0)  # no atexit handlers: a vendor library's teardown may crash too


def _hook(job: HookJob) -> Artifact:
    from byoc_mlir import _compat
    from byoc_mlir.codegen import registry
    from byoc_mlir.codegen.hook import RegionView, validate
    from byoc_mlir.tune import inputs_for

    registry.rediscover()  # this child's sys.path: entry points installed since
    backend = registry.get(job.backend)
    assert backend.codegen is not None
    context = _compat.new_context(multithreaded=False)
    with context:
        module = _compat.parse_module(job.module, context, job.function)
        func = next(
            op.operation
            for op in _compat.module_body(module.operation).operations
            if "sym_name" in op.operation.attributes
            and _compat.symbol_name(op.operation) == job.function
        )
        view = RegionView.of(func)
        artifact = validate(backend.codegen(view, job.options), view)
        if isinstance(artifact, RuntimeArtifact):
            if backend.runtime is None:
                raise ValueError(f"{backend.name} returned a runtime artifact but has no runtime")
            try:
                served = backend.runtime(bytes(artifact.payload))
                outputs = list(served(*inputs_for(view.inputs)))
            except Exception as err:  # noqa: BLE001
                raise ValueError(f"its runtime failed on a trial call: {_one_line(err)}") from None
            shapes = [tuple(np.shape(o)) for o in outputs]
            expected = [s.shape for s in view.outputs]
            if shapes != expected:
                raise ValueError(
                    f"its runtime returned outputs of shapes {shapes} on a trial call, "
                    f"the region's signature says {expected}"
                )
    return artifact


def _one_line(err: BaseException) -> str:
    """An error's first line (as `byoc_mlir.host_compile.one_line` words it in process)."""
    text = str(err).strip().splitlines()
    line = text[0] if text else type(err).__name__
    return line if len(line) < 300 else line[:297] + "..."


def call_in_child(fn: Any, args: tuple[Any, ...], what: str, timeout: float) -> tuple[str, Any]:
    """``fn(*args)`` in a child forked from the clean fork server: ("ok", its result), or
    ("crash" / "hang", a message). A fork of the caller would inherit locks its threads
    hold (IREE's workers, onnxruntime's pool, an MLIR context's pool) and can deadlock;
    the fork server has no threads. ``fn`` must be importable (a module-level function)."""
    ctx = _context()
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_send, args=(sender, fn, args), daemon=True)
    child.start()
    sender.close()
    result: tuple[str, Any] | None = None
    start = time.monotonic()
    if receiver.poll(timeout):
        try:
            result = ("ok", receiver.recv())
        except EOFError:
            result = None
    child.join(None if result is not None else 5)
    if child.is_alive():
        child.kill()
        child.join()
        return "hang", f"{what} did not finish within {timeout:g} s"
    receiver.close()
    if result is not None:
        return result
    code = child.exitcode or 0
    reason = f"killed by {_signal_name(-code)}" if code < 0 else f"exit status {code}"
    return "crash", f"{what} died ({reason}) after {time.monotonic() - start:.1f} s"


def _send(sender: Connection, fn: Any, args: tuple[Any, ...]) -> None:
    sender.send(fn(*args))
    sender.close()
