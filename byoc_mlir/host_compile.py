"""Compiling the host remainder, and putting back on the host the regions it cannot take.

A partition can leave a host module that IREE refuses: an artifact IREE cannot link, or
a boundary that trips an IREE bug (a runtime-route region's result written in place by a
host op, say). Neither may cost the build while host-only compiles the model, so
`compile_host` recovers in two steps:

1. each linked region is compiled alone (its function and executable); one that does not
   link goes back to the host (``IREE could not link the artifact of ...``);
2. if the module still fails, the regions that make it fail are found by bisection over
   every offloaded region (any route): the longest prefix of the regions, in order, that
   still compiles with the ones kept so far is found by binary search; the region after
   it goes back; repeat on the rest. k culprits among n regions cost about
   k·log2(n) + 1 host compiles; the regions that compile stay offloaded.

Each region put back is inlined from its original function (`put_back`) with the reason
in the report. A host module that fails with every region on the host is repaired and
tried again: strided windows that leave input rows unread get a slice of what they
read (`byoc-trim-conv-inputs`), then the flags in `RETRY_WITHOUT` are left out, one at
a time, then together (IREE passes that break on some inputs). Each repair that works
is noted in the report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from iree.compiler import CompilerToolError, compile_str, ir

from byoc_mlir import _compat
from byoc_mlir.codegen.hook import c_identifier
from byoc_mlir.dialects import byoc
from byoc_mlir.errors import ByocError
from byoc_mlir.explain.decisions import DecisionLog
from byoc_mlir.outlining import inline_region
from byoc_mlir.passes.guard_data_tiling import data_tiling_on, guard_data_tiling
from byoc_mlir.passes.trim_conv_inputs import trim_conv_inputs


def iree(source: str | bytes, args: Sequence[str], what: str) -> bytes:
    """Runs the IREE compiler; its errors become one `ByocError` naming ``what``."""
    try:
        return compile_str(source, extra_args=list(args))  # type: ignore[no-any-return]
    except CompilerToolError as err:
        lines = [ln for ln in str(err).splitlines() if "error:" in ln][:3]
        raise ByocError(f"IREE failed to {what}: " + ("; ".join(lines) or str(err)[:500])) from None


def one_line(err: BaseException) -> str:
    """An error's first line, at most 300 characters (for report reasons)."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text if len(text) < 300 else text[:297] + "..."


def put_back(module_op: ir.Operation, name: str, original: ir.Operation, reason: str) -> None:
    """Restores a region's original function (if rewritten) and inlines it back.

    ``original`` is a detached copy of the function as outlined (`keep_original`), in
    the module's context: cloned back, its ``dense_resource`` weights still name the
    context's blobs (text parsed again would declare new, empty ones).
    """
    body = _compat.module_body(module_op)
    current = None
    exe_name = f"{c_identifier(name)}_exe"
    for op in list(body.operations):
        op = op.operation
        if "sym_name" not in op.attributes:
            continue
        sym = _compat.symbol_name(op)
        if sym == name:
            current = op
        elif sym == exe_name and op.name == "stream.executable":
            op.erase()
    if current is not None and current.get_asm() != original.get_asm():
        restored = original.clone(ir.InsertionPoint(current))
        for attr in (byoc.TARGET, byoc.REGION, byoc.COMPOSITES):
            if attr in current.attributes:
                restored.attributes[attr] = current.attributes[attr]
        current.erase()
    inline_region(module_op, name, reason)


def keep_original(func: ir.Operation) -> ir.Operation:
    """A detached copy of an outlined function, for `put_back`."""
    return func.clone(None)


RETRY_WITHOUT = (
    "--iree-global-opt-use-im2col-for-convs",
    "--iree-opt-data-tiling",
    "--iree-opt-level=O3",
)
"""Flags IREE 3.13 fails with where it compiles without them; a host module that does not
compile is tried without each in turn, then without all (the report notes what worked).
Found by the fuzzer: im2col breaks on a convolution with f16 operands and an f32
accumulator (every ONNX f16 ``Conv``: "'arith.addf' op requires the same type for all
operands and results"); -O3 on some i32 graphs with rank-0 reductions
("'iree_tensor_ext.compute_barrier.end' op value and result types must match"); data
tiling on a quantized model's convolutions whose result is requantized to int8 in the
same dispatch (ResNet-50 from onnxruntime's QOperator quantizer: "One or more operations
with large vector sizes (32768 bytes) were found")."""


def compile_host(
    module_op: ir.Operation,
    log: DecisionLog,
    flags: Sequence[str],
    originals: dict[str, ir.Operation],
    fallback: bool,
) -> bytes:
    """Compiles the host module; regions it cannot take go back to the host (see above).

    ``originals`` maps each offloaded region to its original function text; the regions
    put back leave it (only when ``fallback`` is on). Raises the first error when no
    region, repair or flag left out makes the module compile.
    """
    if data_tiling_on(flags):
        guarded = guard_data_tiling(module_op)
        if guarded:
            log.notes.append(
                f"{guarded} batched matmul operand(s) materialised before IREE's data "
                f"tiling, which miscompiles them (byoc-guard-data-tiling)"
            )
    try:
        return _compile_sending_back(module_op, log, flags, originals, fallback)
    except ByocError as err:
        first_error = err
    # Repairs for IREE bugs, tried only once the module has failed (each is a rewrite
    # that computes the same values, or a flag left out), in this order.
    trimmed = trim_conv_inputs(module_op)
    if trimmed:
        try:
            result = _compile_sending_back(module_op, log, flags, originals, fallback)
        except ByocError:
            pass
        else:
            log.notes.append(
                f"{trimmed} strided window op(s) given a slice of the input they read "
                f"(byoc-trim-conv-inputs): {one_line(first_error)}"
            )
            return result
    present = [f for f in RETRY_WITHOUT if f in flags]
    attempts = [[f] for f in present] + ([present] if len(present) > 1 else [])
    for dropped in attempts:
        try:
            result = _compile_sending_back(
                module_op, log, [f for f in flags if f not in dropped], originals, fallback
            )
        except ByocError:
            continue
        log.notes.append(
            f"host module compiled without {', '.join(dropped)}: {one_line(first_error)}"
        )
        return result
    raise first_error


def _compile_sending_back(
    module_op: ir.Operation,
    log: DecisionLog,
    flags: Sequence[str],
    originals: dict[str, ir.Operation],
    fallback: bool,
) -> bytes:
    flags = ["--compile-from=input", *flags]
    what = "compile the host module"
    try:
        return iree(module_op.get_asm(assume_verified=True), flags, what)
    except ByocError as err:
        if not originals or not fallback:
            raise
        first_error = err
    for region in [r for r in log.regions if r.route == "linked" and r.name in originals]:
        if not _links(module_op, region.name, flags):
            reason = f"fallback: codegen failed: IREE could not link the artifact of {region.name}"
            _back(module_op, log, originals, region.name, reason)
    text = module_op.get_asm(assume_verified=True)
    built: dict[frozenset[str], bytes | None] = {}

    def compiles(kept: frozenset[str]) -> bool:
        if kept not in built:
            built[kept] = _compile_keeping(text, kept, originals, flags, module_op.context)
        return built[kept] is not None

    names = list(originals)
    if compiles(frozenset(names)):
        return built[frozenset(names)]  # type: ignore[return-value]
    back = culprits(names, compiles)
    if back is None:
        raise first_error
    reason = (
        f"fallback: the host module does not compile with it offloaded: {one_line(first_error)}"
    )
    for name in back:
        _back(module_op, log, originals, name, reason)
    result = built.get(frozenset(originals))
    if result is None:  # not probed as such (cannot happen with `culprits`' search order)
        result = iree(module_op.get_asm(assume_verified=True), flags, what)
    return result


def culprits(names: Sequence[str], compiles: Callable[[frozenset[str]], bool]) -> list[str] | None:
    """The regions to put back so that the rest compiles, found by bisection.

    ``compiles(kept)`` says whether the host module compiles with exactly the regions in
    ``kept`` offloaded (the others on the host). Returns None when even no region
    offloaded fails (the host module itself is the problem). Assumes a failure is caused
    by regions, each of which fails with every superset of what was kept before it.
    """
    if not compiles(frozenset()):
        return None
    kept: list[str] = []
    back: list[str] = []
    rest = list(names)
    while rest and not compiles(frozenset(kept + rest)):
        lo, hi = 0, len(rest)  # kept + rest[:lo] compiles, kept + rest[:hi] does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if compiles(frozenset(kept + rest[:mid])):
                lo = mid
            else:
                hi = mid
        back.append(rest[hi - 1])
        kept += rest[: hi - 1]
        rest = rest[hi:]
    return back


def _back(
    module_op: ir.Operation,
    log: DecisionLog,
    originals: dict[str, ir.Operation],
    name: str,
    reason: str,
) -> None:
    put_back(module_op, name, originals.pop(name), reason)
    log.fall_back(name, reason)


def _compile_keeping(
    text: str,
    kept: frozenset[str],
    originals: dict[str, ir.Operation],
    flags: list[str],
    context: ir.Context,
) -> bytes | None:
    """The host module compiled with only ``kept`` offloaded (a copy; None if it fails)."""
    with context, ir.Location.unknown():
        module = ir.Module.parse(text)
        for name, original in originals.items():
            if name not in kept:
                put_back(module.operation, name, original, "probe")
        probe = module.operation.get_asm(assume_verified=True)
    try:
        return iree(probe, flags, "probe")
    except ByocError:
        return None


def _links(module_op: ir.Operation, name: str, flags: list[str]) -> bool:
    """Whether one rewritten region compiles on its own (its executable + function)."""
    exe = f"{c_identifier(name)}_exe"
    parts = []
    for op in _compat.module_body(module_op).operations:
        op = op.operation
        if "sym_name" in op.attributes and _compat.symbol_name(op) == name:
            # Only the region function goes public: the kernel declarations inside the
            # executable must stay private (a public declaration does not verify).
            parts.append(op.get_asm().replace(" private @", " public @", 1))
        elif "sym_name" in op.attributes and _compat.symbol_name(op) == exe:
            parts.append(op.get_asm())
    probe = "module {\n" + "\n".join(parts) + "\n}"
    try:
        iree(probe, flags, "probe")
    except ByocError:
        return False
    return True
