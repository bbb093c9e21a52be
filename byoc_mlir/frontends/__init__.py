"""Frontends: every model format the driver takes, turned into MLIR for IREE's input phase.

    .mlir / .mlirbc        linalg, tosa or torch dialect, text or bytecode (as is)
    .onnx / onnx.ModelProto   IREE's ONNX importer (opset upgraded to 17 first)
    torch.nn.Module + example inputs   torch.export → IREE's FX importer → linalg
                                       or (torch_dialect="tosa") → torch-mlir → TOSA

Each loader returns a `Source`: MLIR text or bytecode plus a name for messages and
locations. A module built in another context is printed there and handed over as that
text (``get_asm(binary=True)`` is text as bytes, not bytecode); a module must never reach
the compiler API itself. torch-mlir's TOSA comes from another MLIR build: it crosses as
real bytecode (``write_bytecode``) and is reprinted in IREE's. The driver then runs
``iree-compile --compile-to=input`` on it, which normalises every dialect to
linalg-on-tensors.

`to_mlir` gives any of them as MLIR text, e.g. a torch module's TOSA for ``byoc-opt``.

torch, torch-mlir and onnx are imported only when a model needs them: ``import
byoc_mlir`` imports none of them. A torch module is recognised without importing torch
(if the caller holds one, torch is already loaded).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from iree.compiler import ir

from byoc_mlir import _compat
from byoc_mlir.errors import ByocError

SUFFIXES = (".mlir", ".mlirbc", ".onnx")
"""Model file suffixes `load` understands."""

TorchDialect = Literal["linalg", "tosa"]
"""What a torch module is lowered to: linalg (IREE's FX importer) or tosa (torch-mlir)."""

TORCH_DIALECTS: tuple[str, ...] = get_args(TorchDialect)


@dataclass(frozen=True)
class Source:
    """A model as IREE's input phase takes it.

    Attributes:
        data: MLIR text or bytecode (linalg, tosa or torch dialect).
        name: the file name (or ``<torch Net>``, ``<string>``...), for locations and errors.
    """

    data: str | bytes
    name: str
    parameters: Path | None = None
    """A parameter file (``.irpa``) the module's ``util.global`` weights are read from at
    run time (ONNX models imported with ``externalize_params``)."""
    notes: tuple[str, ...] = ()
    """What the frontend rewrote to get the model in (for the report's notes)."""
    signature: Signature | None = None
    """The entry's element types as the model declared them (``ui8``, ``bf16``), before
    lowering to linalg made unsigned integers signless; None where the MLIR says it all."""
    dims: tuple[tuple[str | None, ...], ...] | None = None
    """Per entry input, the model's names of its dimensions (an ONNX ``dim_param``; None
    for a dimension without one); None where the model names none."""
    ranges: tuple[tuple[tuple[int, int] | None, ...], ...] | None = None
    """Per entry input, the range of each dynamic dimension the model states (a
    ``torch.export.Dim(min=, max=)``), None where it states none: the bundle's default."""


Signature = tuple[tuple[str | None, ...], tuple[str | None, ...]]
"""Declared element types of the entry's (inputs, results); None for a non-tensor."""

_VTENSOR = re.compile(r"^!torch\.vtensor<\[[^\]]*\],(\w+)>$")


def torch_signature(module_op: ir.Operation) -> Signature | None:
    """The element types the public entry of a torch-dialect module declares.

    Read before lowering: ``!torch.vtensor<[4],ui8>`` says unsigned, the linalg it
    becomes (``tensor<4xi8>``) does not.
    """
    from byoc_mlir import dtypes

    for op in _compat.module_body(module_op).operations:
        op = op.operation
        if op.name != "func.func" or not _compat.is_public(op) or not len(op.regions[0].blocks):
            continue
        ftype = _compat.function_type(op)

        def declared(types: Sequence[ir.Type]) -> tuple[str | None, ...]:
            found = [_VTENSOR.match(str(t)) for t in types]
            return tuple(dtypes.from_torch(m.group(1)) if m else None for m in found)

        return declared(ftype.inputs), declared(ftype.results)
    return None


def load(
    model: object,
    example_inputs: Sequence[Any] | None = None,
    *,
    torch_dialect: TorchDialect = "linalg",
    externalize_params: int = 0,
    params_path: Path | None = None,
    bind_inputs: Mapping[str, Any] | None = None,
    dynamic_axes: Mapping[int | str, Mapping[int, str]] | None = None,
    dims: Mapping[str, tuple[int, int]] | None = None,
) -> Source:
    """Turns any supported model into MLIR for the driver.

    Args:
        model: a path (``.mlir``, ``.mlirbc``, ``.onnx``), MLIR text, MLIR bytes, an
            ``ir.Module``, an ``onnx.ModelProto``, a ``torch.nn.Module`` (pt2e-quantized
            ones included), or a ``torch.export.ExportedProgram``.
        example_inputs: for a torch module (required there; an ExportedProgram has its
            own): its positional inputs as torch tensors or numpy arrays. Not allowed for
            other models.
        torch_dialect: for a torch module: ``"linalg"`` (IREE's FX importer) or
            ``"tosa"`` (torch-mlir, which must be installed); both give the same
            signature. Other models ignore it.
        externalize_params: for an ONNX model: initializers with at least this many
            elements are written to the parameter file ``params_path`` (required then)
            and read at run time instead of travelling inside the MLIR; 0 keeps them in.
        bind_inputs: for an ONNX model: graph inputs fixed to these values (they become
            initializers and leave the signature), e.g. the ``axes`` or ``shape``
            operands the lowering needs constant.
        dynamic_axes: for a torch module: dimensions exported dynamic, named
            (``{"x": {0: "batch"}}``, as for ``torch.onnx.export``), with ranges from
            ``dims``.

    Returns:
        The model as MLIR text or bytecode.

    Raises:
        ByocError: unsupported or unreadable input, or an import that fails; the message
            names the file and what was expected.
    """
    check_torch_dialect(torch_dialect)
    if dynamic_axes and not _is_torch_module(model):
        raise ByocError(
            f"dynamic_axes are for torch modules, not {_describe(model)} (ONNX models name "
            f"theirs with dim_param; an .mlir signature has '?')"
        )
    if _is_torch_module(model):
        if torch_dialect == "tosa":
            if dynamic_axes:
                raise ByocError("dynamic_axes need torch_dialect='linalg' (the default)")
            from byoc_mlir.frontends.from_torch_tosa import load_torch_tosa

            return load_torch_tosa(model, example_inputs)
        from byoc_mlir.frontends.from_torch import load_torch

        return load_torch(model, example_inputs, dynamic_axes, dims)
    if example_inputs is not None:
        raise ByocError(
            f"example_inputs are only for torch.nn.Module models, not {_describe(model)}"
        )
    params = _params(externalize_params, params_path)
    if _is_onnx_proto(model):
        from byoc_mlir.frontends.from_onnx import load_onnx_proto

        return load_onnx_proto(model, "<onnx.ModelProto>", params=params, bind=bind_inputs)
    if bind_inputs and not (isinstance(model, str | Path) and str(model).endswith(".onnx")):
        raise ByocError(f"bind_inputs is only for ONNX models, not {_describe(model)}")
    if isinstance(model, ir.Module):
        return Source(model.operation.get_asm(binary=True), "<module>")
    if isinstance(model, bytes):
        return Source(model, "<bytes>")
    if isinstance(model, Path) or (isinstance(model, str) and _looks_like_path(model)):
        return load_file(Path(model), params, bind_inputs)
    if isinstance(model, str):
        return Source(model, "<string>")
    raise ByocError(
        f"cannot compile {_describe(model)}: expected a model file (.mlir, .mlirbc, .onnx), "
        f"MLIR text or bytes, an ir.Module, an onnx.ModelProto or a torch.nn.Module"
    )


def to_mlir(
    model: object,
    example_inputs: Sequence[Any] | None = None,
    *,
    torch_dialect: TorchDialect = "linalg",
) -> str:
    """A model as MLIR text (IREE's dialects, weights included), for lit and ``byoc-opt``.

    For example a torch module's TOSA, to partition it on the command line::

        Path("net.mlir").write_text(to_mlir(net, (x,), torch_dialect="tosa"))
        # byoc-opt net.mlir --backend testing --partition

    Args:
        model, example_inputs, torch_dialect: as for `load`.

    Returns:
        The module in MLIR's pretty form. A torch module or an ONNX model comes out as
        the frontend hands it to the driver (before IREE's input phase).
    """
    source = load(model, example_inputs, torch_dialect=torch_dialect)
    module = _compat.parse_module(source.data, _compat.new_context(), source.name)
    return module.operation.get_asm()


def check_torch_dialect(value: object) -> None:
    """Raises a `ByocError` unless ``value`` is one of `TORCH_DIALECTS`."""
    if value not in TORCH_DIALECTS:
        raise ByocError(
            f"torch_dialect {value!r} is not supported (valid: "
            f"{', '.join(repr(d) for d in TORCH_DIALECTS)}: 'linalg' through IREE's FX "
            f"importer, 'tosa' through torch-mlir)"
        )


def _params(threshold: int, path: Path | None) -> tuple[int, Path] | None:
    if not threshold:
        return None
    if threshold < 0 or path is None:
        raise ByocError(
            f"externalize_params={threshold}: give a positive element count and a parameter "
            f"file path"
        )
    return threshold, path


def load_file(
    path: Path,
    params: tuple[int, Path] | None = None,
    bind_inputs: Mapping[str, Any] | None = None,
) -> Source:
    """Loads a model file by its suffix (``.mlir``, ``.mlirbc``, ``.onnx``); ``params``
    (element threshold, parameter file) externalises an ONNX model's big weights."""
    if path.suffix == ".onnx":
        from byoc_mlir.frontends.from_onnx import load_onnx

        return load_onnx(path, params=params, bind=bind_inputs)
    if path.suffix in (".mlir", ".mlirbc"):
        from byoc_mlir.frontends.from_mlir import load_mlir

        return load_mlir(path)
    raise ByocError(
        f"{path}: unsupported model file type '{path.suffix or '(none)'}' "
        f"(valid: {', '.join(SUFFIXES)}; a torch.nn.Module goes through the Python API)"
    )


def _looks_like_path(text: str) -> bool:
    # MLIR text has braces and usually newlines; a path has neither.
    return len(text) < 4096 and "\n" not in text and "{" not in text


def _is_torch_module(model: object) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module | torch.export.ExportedProgram)


def _is_onnx_proto(model: object) -> bool:
    onnx = sys.modules.get("onnx")
    return onnx is not None and isinstance(model, onnx.ModelProto)


def first_line(err: BaseException) -> str:
    """One line about an exception (frontend errors can be pages long).

    For a failed MLIR pass pipeline that is the first error diagnostic with its location
    (the exception's own first line only says "Failure while executing pass pipeline").
    """
    # Duck-typed: torch-mlir's bindings raise their own MLIRError class.
    diagnostics = getattr(err, "error_diagnostics", None)
    if diagnostics:
        first = diagnostics[0]
        text = f"{first.location}: {first.message}"
    else:
        text = str(err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    return line if len(line) <= 400 else line[:397] + "..."


def _describe(model: object) -> str:
    if isinstance(model, str | Path) and _looks_like_path(str(model)):
        return f"'{model}'"
    return f"a {type(model).__module__}.{type(model).__qualname__}"


__all__ = [
    "SUFFIXES",
    "TORCH_DIALECTS",
    "Source",
    "TorchDialect",
    "check_torch_dialect",
    "load",
    "load_file",
    "to_mlir",
]
