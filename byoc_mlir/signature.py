"""The compiled entry's signature: its tensor specs as the model declared them, and
its dynamic dimensions (names, ranges, and the IREE flags a dynamic model needs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from iree.compiler import ir

from byoc_mlir import _compat, dtypes
from byoc_mlir.codegen.hook import TensorSpec
from byoc_mlir.errors import ByocError


def entry_signature(module_op: ir.Operation) -> tuple[str, list[TensorSpec], list[TensorSpec]]:
    public = []
    for op in _compat.module_body(module_op).operations:
        op = op.operation
        if op.name in _compat.FLAVORS and _compat.is_public(op) and len(op.regions[0].blocks):
            public.append(op)
    if not public:
        raise ByocError("the model has no public function to run")
    names = [_compat.symbol_name(f) for f in public]
    func = public[names.index("main")] if "main" in names else public[0]
    ftype = _compat.function_type(func)
    try:
        inputs = [TensorSpec.of(t) for t in ftype.inputs]
        outputs = [TensorSpec.of(t) for t in ftype.results]
    except ValueError as err:
        raise ByocError(
            f"@{_compat.symbol_name(func)}: {err} (valid: ranked tensors, dimensions static "
            f"or dynamic)",
            str(func.location),
        ) from None
    return _compat.symbol_name(func), inputs, outputs


DYNAMIC_UNSAFE = ("--iree-opt-level=O2", "--iree-opt-level=O3", "--iree-opt-data-tiling")
"""IREE 3.13 flags that fail dynamically shaped models (BERT with a dynamic batch and
sequence: "'tensor.dim' op unexpected during shape cleanup" at O3, "exceeded stack
allocation limit" at O2 or with data tiling); O1 compiles them."""


def dynamic_safe(flags: list[str], notes: list[str]) -> list[str]:
    """``flags`` without `DYNAMIC_UNSAFE` (O1 instead), with a note when one was dropped."""
    kept = [f for f in flags if f not in DYNAMIC_UNSAFE]
    if len(kept) == len(flags):
        return flags
    dropped = ", ".join(f for f in flags if f in DYNAMIC_UNSAFE)
    notes.append(
        f"dynamic dimensions: compiled with --iree-opt-level=O1 instead of {dropped} "
        f"(IREE 3.13 fails dynamically shaped models with them)"
    )
    return [*kept, "--iree-opt-level=O1"]


def stated_range(
    stated: Sequence[Sequence[tuple[int, int] | None]] | None, n: int, i: int, k: int
) -> tuple[int, int] | None:
    """The range the model states for dimension ``k`` of input ``i`` (of ``n``), if any."""
    if stated is None or len(stated) != n or k >= len(stated[i]):
        return None
    return stated[i][k]


def named_dims(
    entry: str,
    inputs: list[TensorSpec],
    names: Sequence[Sequence[str | None]] | None,
    ranges: Mapping[str, tuple[int, int]],
    stated: Sequence[Sequence[tuple[int, int] | None]] | None = None,
) -> tuple[list[TensorSpec], dict[str, list[int] | None]]:
    """Names the inputs' dynamic dimensions (the frontend's names, e.g. ONNX
    ``dim_param``, else ``d0``, ``d1``, ... in signature order) and attaches the ranges
    given at compile time, else those the model states (``stated``, per input and
    dimension: ``torch.export``'s). Returns the named specs and ``{name: [low, high] |
    None}``.

    Raises:
        ByocError: a range names no dynamic dimension of the signature.
    """
    out: list[TensorSpec] = []
    dims: dict[str, list[int] | None] = {}
    unnamed = 0
    for i, spec in enumerate(inputs):
        if spec.is_static:
            out.append(spec)
            continue
        given = list(names[i]) if names is not None and len(names) == len(inputs) else []
        if len(given) != len(spec.shape):  # the import changed the signature: no names
            given = []
        named: list[str | None] = []
        for k, d in enumerate(spec.shape):
            name = given[k] if k < len(given) else None
            if d is None and not name:
                name, unnamed = f"d{unnamed}", unnamed + 1
            named.append(name if d is None else None)
            if d is None and name is not None:
                span = ranges.get(name) or stated_range(stated, len(inputs), i, k)
                dims[name] = [int(span[0]), int(span[1])] if span else dims.get(name)
        out.append(TensorSpec(spec.shape, spec.dtype, tuple(named)))
    unknown = sorted(set(ranges) - set(dims))
    if unknown:
        valid = ", ".join(dims) or "none: the signature is static"
        raise ByocError(
            f"@{entry}: no dynamic dimension named {', '.join(unknown)} (valid: {valid})"
        )
    return out, dims


def as_declared(
    specs: list[TensorSpec], declared: Sequence[str | None], notes: list[str]
) -> list[TensorSpec]:
    """The signature in the model's own element types (``ui8`` where linalg says ``i8``)."""
    if len(declared) != len(specs):
        return specs  # the input phase reshaped the signature; trust the MLIR
    out = []
    for spec, name in zip(specs, declared, strict=True):
        if name is not None and dtypes.storage(name) == spec.dtype and name in dtypes.NAMES:
            spec = TensorSpec(spec.shape, name)
        elif name == "f64" and spec.dtype == "f32":
            note = "f64 demoted to f32 (demote_f64): the signature takes and returns f32"
            if note not in notes:
                notes.append(note)
        out.append(spec)
    return out
