"""Small in-test backends and the model they offload, shared by the driver, report and
per-region tests: an add -> tanh -> add model whose two adds any toy backend takes, and a
`Toy` backend whose hook behaviour (a route, or a way to fail) each test chooses."""

from __future__ import annotations

import time

import numpy as np

from byoc_mlir import Backend, CompileOptions
from byoc_mlir.codegen.checks import tensor_types
from byoc_mlir.codegen.hook import (
    Kernel,
    LinkedArtifact,
    RegionView,
    RuntimeArtifact,
    ValueRef,
)
from byoc_mlir.codegen.recognisers import ADD

ID = "affine_map<(d0, d1) -> (d0, d1)>"


def _generic(out: str, ins: list[str], body: str, t: str = "tensor<4x8xf32>") -> str:
    maps = ", ".join([ID] * (len(ins) + 1))
    args = ", ".join(f"%x{i}: f32" for i in range(len(ins)))
    return (
        f"  {out} = linalg.generic {{indexing_maps = [{maps}], iterator_types = "
        f'["parallel", "parallel"]}} ins({", ".join(ins)} : {", ".join([t] * len(ins))}) '
        f"outs(%e : {t}) {{\n  ^bb0({args}, %o: f32):\n    %r = {body}\n"
        f"    linalg.yield %r : f32\n  }} -> {t}\n"
    )


def model(name: str = "main") -> str:
    """add -> tanh -> add: two offloadable adds separated by a host tanh."""
    return (
        f'func.func @"{name}"(%a: tensor<4x8xf32>, %b: tensor<4x8xf32>) -> tensor<4x8xf32> {{\n'
        "  %e = tensor.empty() : tensor<4x8xf32>\n"
        + _generic("%s", ["%a", "%b"], "arith.addf %x0, %x1 : f32")
        + _generic("%t", ["%s"], "math.tanh %x0 : f32")
        + _generic("%u", ["%t", "%b"], "arith.addf %x0, %x1 : f32")
        + "  return %u : tensor<4x8xf32>\n}\n"
    )


def expected(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.tanh(a + b) + b


ADD_C = """#include <stddef.h>
void {sym}(const float* a, size_t ao, const float* b, size_t bo, float* y, size_t yo,
           size_t wg, size_t nwg) {{
  a += ao; b += bo; y += yo;
  size_t n = {n}, chunk = (n + nwg - 1) / nwg, lo = wg * chunk;
  size_t hi = lo + chunk < n ? lo + chunk : n;
  for (size_t i = lo; i < hi; ++i) y[i] = a[i] + b[i];
}}
"""


def add_kernel(
    view: RegionView, source: str | None = None, symbol: str | None = None
) -> LinkedArtifact:
    sym = f"{view.symbol}_k0"
    text = source if source is not None else ADD_C.format(sym=symbol or sym, n=view.outputs[0].size)
    return LinkedArtifact(
        [Kernel(sym, [ValueRef.arg(0), ValueRef.arg(1)], [view.outputs[0]], workgroups=3)],
        [ValueRef.kernel(0)],
        c_source=text,
    )


class Toy:
    """A backend whose hook behaviour each test chooses; counts hook calls."""

    def __init__(self, name: str, behaviour: str):
        self.calls = 0
        self.behaviour = behaviour
        self.fast = False  # "slow": regions loaded while this is set answer at once
        self.backend = Backend(name, f"toy ({behaviour})", codegen=self.hook, runtime=self.runtime)
        self.backend.supports(ADD, check=tensor_types(("f32",), static=True))

    def hook(self, view: RegionView, options: object) -> object:
        self.calls += 1
        b = self.behaviour
        if b == "linked":
            return add_kernel(view)
        if b in ("runtime", "slow"):
            return RuntimeArtifact(b"add")
        if b == "raise":
            raise RuntimeError("vendor compiler exploded")
        if b == "garbage":
            return "not an artifact"
        if b == "bad_c":
            return add_kernel(view, source="void oops( {")
        if b == "libc":
            return add_kernel(view, source="#include <string.h>\nvoid f(char* p){memcpy(p,p+1,3);}")
        if b == "wrong_symbol":
            return add_kernel(view, symbol="some_other_name")
        if b == "bad_payload":  # the second region's payload is one its runtime refuses
            return RuntimeArtifact(b"add" if self.calls == 1 else b"corrupt")
        if b == "dup_symbol":  # links alone; two such objects clash in one executable
            return add_kernel(
                view,
                source=ADD_C.format(sym=f"{view.symbol}_k0", n=view.outputs[0].size)
                + "int byoc_toy_state = 1;\n",
            )
        if b == "first_fails" and self.calls == 1:
            raise RuntimeError("only the first region fails")
        if b == "first_fails":
            return add_kernel(view)
        raise AssertionError(b)

    def runtime(self, payload: bytes) -> object:
        if payload != b"add":
            raise ValueError(f"not a toy payload: {payload!r}")
        if self.behaviour == "slow" and not self.fast:
            return lambda a, b: (time.sleep(0.005), [a + b])[1]
        return lambda a, b: [a + b]


def no_cache() -> CompileOptions:
    return CompileOptions(cache_dir=None)


def inputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    return (
        rng.standard_normal((4, 8)).astype(np.float32),
        rng.standard_normal((4, 8)).astype(np.float32),
    )
