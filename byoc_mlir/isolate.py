"""Running a step that may crash in a forked child, so a fault costs an error, not the process.

Third-party lowerings run in process through the MLIR bindings (IREE's ONNX importer
and its torch-to-linalg pipeline); some inputs make them divide by zero or dereference
a null pointer (ONNX's own backend tests: a ``Reshape`` of an empty tensor raises
SIGFPE, an expanded ``RotaryEmbedding`` SIGSEGV). A signal cannot be caught in Python,
so `run` forks: the child runs the step and sends its result back pickled through a
pipe; the parent waits. A child killed by a signal becomes a `ByocError` naming the
step, the input and the signal; a `ByocError` raised in the child is raised again in
the parent; any other exception comes back as its type and first line.

Forking is cheap (copy-on-write) and the child needs no imports. Only the forking
thread lives on in the child: a step must not wait on threads the parent started (an
MLIR context shares a thread pool; create the step's context with
``_compat.new_context(multithreaded=False)``). Where ``os.fork`` is
missing, the step runs in process.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import select
import signal
import sys
import time
from collections.abc import Callable
from typing import TypeVar

from byoc_mlir.errors import ByocError

T = TypeVar("T")

ISOLATE = os.environ.get("BYOC_ISOLATE", "1") != "0"
"""``BYOC_ISOLATE=0`` runs every step in process (for debugging a step under gdb)."""

TIMEOUT = float(os.environ.get("BYOC_ISOLATE_TIMEOUT", "600"))
"""Seconds a step may take (``BYOC_ISOLATE_TIMEOUT``): ResNet-50's import takes ~5."""


def run(step: Callable[[], T], what: str, timeout: float = TIMEOUT) -> T:
    """Runs ``step`` in a forked child and returns its (picklable) result.

    Args:
        step: no arguments; returns a picklable value or raises.
        what: the step and its input for messages (``IREE's ONNX importer on model.onnx``).
        timeout: seconds before the child is killed and the step refused.

    Raises:
        ByocError: the child raised one, raised something else, or died.
    """
    if not ISOLATE or not hasattr(os, "fork"):
        return step()
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_fd)
        _child(step, write_fd)
    os.close(write_fd)
    try:
        data = _read_all(read_fd, timeout)
    except TimeoutError:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise ByocError(f"{what} did not finish within {timeout:g} s; stopped") from None
    finally:
        os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        raise ByocError(
            f"{what} crashed ({_signal_name(sig)}); the input is refused (a fault in that "
            f"step, isolated in a child process)"
        )
    try:
        kind, *payload = pickle.loads(data)
    except Exception:  # noqa: BLE001 - a truncated result is a crash by another name
        raise ByocError(
            f"{what} ended without a result (exit status {os.waitstatus_to_exitcode(status)})"
        ) from None
    if kind == "ok":
        return payload[0]  # type: ignore[no-any-return]
    if kind == "byoc":
        message, location, hint = payload
        raise ByocError(message, location, hint)
    raise ByocError(f"{what} failed: {payload[0]}: {payload[1]}")


def _read_all(fd: int, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _child(step: Callable[[], object], write_fd: int) -> None:
    code = 0
    _die_with_parent()
    try:
        try:
            result: tuple[object, ...] = ("ok", step())
        except ByocError as err:
            result = ("byoc", err.message, err.location, err.hint)
        except BaseException as err:  # noqa: BLE001 - reported to the parent, typed
            text = str(err).strip().splitlines()
            result = ("error", type(err).__name__, text[0] if text else "")
        data = pickle.dumps(result)
        with os.fdopen(write_fd, "wb") as pipe:
            pipe.write(data)
    except BaseException:  # noqa: BLE001 - nothing may escape a forked child
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # no atexit handlers, no parent state torn down twice


def _die_with_parent() -> None:
    """Linux: the child is killed when the parent dies (a killed ``byoc-compile`` must
    not leave a lowering spinning on its own)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: the timeout still bounds the child


_PR_SET_PDEATHSIG = 1


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"
