"""`byoc_mlir.isolate`: a step that crashes costs an error, not the caller's process."""

from __future__ import annotations

import ctypes
import os

import pytest

from byoc_mlir import isolate
from byoc_mlir.errors import ByocError


def test_a_result_comes_back() -> None:
    assert (
        isolate.run(lambda: {"pid": os.getpid(), "data": b"x" * 100_000}, "step")["data"]
        == b"x" * 100_000
    )
    assert isolate.run(lambda: os.getpid(), "step") != os.getpid()  # it ran in a child


def test_a_segfault_is_a_located_error() -> None:
    def crash() -> None:
        ctypes.string_at(0)  # reads address 0: SIGSEGV

    with pytest.raises(ByocError, match=r"model.onnx: the importer crashed \(SIGSEGV\)"):
        isolate.run(crash, "model.onnx: the importer")


def test_an_abort_is_a_located_error() -> None:
    with pytest.raises(ByocError, match=r"crashed \(SIGABRT\)"):
        isolate.run(os.abort, "step")


def test_byoc_errors_keep_their_message_location_and_hint() -> None:
    def refuse() -> None:
        raise ByocError("bad input", 'loc("m.mlir":3:4)', "try this")

    with pytest.raises(ByocError) as info:
        isolate.run(refuse, "step")
    assert (info.value.message, info.value.location, info.value.hint) == (
        "bad input",
        'loc("m.mlir":3:4)',
        "try this",
    )


def test_other_exceptions_come_back_typed() -> None:
    def fail() -> None:
        raise ValueError("first line\nsecond line")

    with pytest.raises(ByocError, match="step failed: ValueError: first line$"):
        isolate.run(fail, "step")


def test_a_hang_is_stopped_after_the_timeout() -> None:
    import time

    with pytest.raises(ByocError, match="did not finish within 0.5 s"):
        isolate.run(lambda: time.sleep(60), "step", timeout=0.5)
