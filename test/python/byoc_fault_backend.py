"""An out-of-tree backend that fails on purpose, for the fault-injection suite.

Installed for a test through the ``byoc_mlir.backends`` entry-point group (a
``.dist-info`` written at test time, see ``test_faults.py``), like a vendor's plugin: its
hook therefore runs out of process. It takes the adds of `toys.model`; the backend option
``fault=<how>`` makes the hook for the *first* region (``*_0``) fail that way, while the
other region is served correctly, so a test can see that one region, not the build, pays.
"""

from __future__ import annotations

import ctypes
import os
import time
from typing import Any

from toys import ADD_C, add_kernel

from byoc_mlir import Backend
from byoc_mlir.codegen.checks import tensor_types
from byoc_mlir.codegen.hook import CodegenOptions, RegionView, RuntimeArtifact
from byoc_mlir.codegen.recognisers import ADD

FAULTS = (
    "raise",
    "garbage",
    "bad_c",
    "unresolved_symbol",
    "wrong_signature",
    "segfault",
    "abort",
    "hang",
    "allocate",
    "wrong_numbers",
    "runtime_crash",
)


def _segfault() -> None:
    ctypes.string_at(0)


def codegen(view: RegionView, options: CodegenOptions) -> Any:
    fault = options.backend_options.get("fault", "")
    if not view.name.endswith("_0") or fault == "":
        return RuntimeArtifact(b"add")
    if fault == "raise":
        raise RuntimeError("vendor compiler exploded")
    if fault == "garbage":
        return {"not": "an artifact"}
    if fault == "bad_c":
        return add_kernel(view, source="void oops( {")
    if fault == "unresolved_symbol":
        source = "void vendor_missing(void);\n" + ADD_C.format(sym=f"{view.symbol}_k0", n=32)
        return add_kernel(view, source=source.replace("a += ao;", "vendor_missing(); a += ao;"))
    if fault == "wrong_signature":
        return RuntimeArtifact(b"shape")
    if fault == "segfault":
        _segfault()
    if fault == "abort":
        os.abort()
    if fault == "hang":
        time.sleep(3600)
    if fault == "allocate":
        hoard = []
        while True:
            hoard.append(bytearray(64 << 20))
    if fault == "wrong_numbers":
        return RuntimeArtifact(b"wrong")
    if fault == "runtime_crash":
        return RuntimeArtifact(b"crash")
    raise ValueError(f"unknown fault {fault!r}")


def runtime(payload: bytes) -> Any:
    if payload == b"add":
        return lambda a, b: [a + b]
    if payload == b"wrong":
        return lambda a, b: [a + b + 1]
    if payload == b"shape":
        return lambda a, b: [(a + b)[:1]]
    if payload == b"crash":
        return lambda a, b: [_segfault()]
    raise ValueError(f"not a fault payload: {payload!r}")


BACKEND = Backend("fault", "fails on purpose (tests)", codegen=codegen, runtime=runtime)
BACKEND.supports(ADD, check=tensor_types(("f32",), static=True))
