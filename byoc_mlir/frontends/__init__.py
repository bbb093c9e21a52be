"""Frontends: every model format the driver takes, turned into MLIR for IREE's input phase.

    .mlir / .mlirbc        linalg, tosa or torch dialect, text or bytecode (as is)
    .onnx / onnx.ModelProto   IREE's ONNX importer (opset upgraded to 17 first)
    torch.nn.Module + example inputs   torch.export → IREE's FX importer → linalg

Each loader returns a `Source`: MLIR text or bytecode plus a name for messages and
locations. Modules built in another MLIR context travel as bytecode (a module from a
foreign context must never reach the compiler API). The driver then runs
``iree-compile --compile-to=input`` on it, which normalises every dialect to
linalg-on-tensors.

torch and onnx are imported only when a model needs them: ``import byoc_mlir`` never
imports either. A torch module is recognised without importing torch (if the caller
holds one, torch is already loaded).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iree.compiler import ir

from byoc_mlir.errors import ByocError

SUFFIXES = (".mlir", ".mlirbc", ".onnx")
"""Model file suffixes `load` understands."""


@dataclass(frozen=True)
class Source:
    """A model as IREE's input phase takes it.

    Attributes:
        data: MLIR text or bytecode (linalg, tosa or torch dialect).
        name: the file name (or ``<torch Net>``, ``<string>``...), for locations and errors.
    """

    data: str | bytes
    name: str


def load(model: object, example_inputs: Sequence[Any] | None = None) -> Source:
    """Turns any supported model into MLIR for the driver.

    Args:
        model: a path (``.mlir``, ``.mlirbc``, ``.onnx``), MLIR text, MLIR bytes, an
            ``ir.Module``, an ``onnx.ModelProto``, or a ``torch.nn.Module``.
        example_inputs: for a torch module (required there): its positional inputs as
            torch tensors or numpy arrays. Not allowed for other models.

    Returns:
        The model as MLIR text or bytecode.

    Raises:
        ByocError: unsupported or unreadable input, or an import that fails; the message
            names the file and what was expected.
    """
    if _is_torch_module(model):
        from byoc_mlir.frontends.from_torch import load_torch

        return load_torch(model, example_inputs)
    if example_inputs is not None:
        raise ByocError(
            f"example_inputs are only for torch.nn.Module models, not {_describe(model)}"
        )
    if _is_onnx_proto(model):
        from byoc_mlir.frontends.from_onnx import load_onnx_proto

        return load_onnx_proto(model, "<onnx.ModelProto>")
    if isinstance(model, ir.Module):
        return Source(model.operation.get_asm(binary=True), "<module>")
    if isinstance(model, bytes):
        return Source(model, "<bytes>")
    if isinstance(model, Path) or (isinstance(model, str) and _looks_like_path(model)):
        return load_file(Path(model))
    if isinstance(model, str):
        return Source(model, "<string>")
    raise ByocError(
        f"cannot compile {_describe(model)}: expected a model file (.mlir, .mlirbc, .onnx), "
        f"MLIR text or bytes, an ir.Module, an onnx.ModelProto or a torch.nn.Module"
    )


def load_file(path: Path) -> Source:
    """Loads a model file by its suffix (``.mlir``, ``.mlirbc``, ``.onnx``)."""
    if path.suffix == ".onnx":
        from byoc_mlir.frontends.from_onnx import load_onnx

        return load_onnx(path)
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
    return torch is not None and isinstance(model, torch.nn.Module)


def _is_onnx_proto(model: object) -> bool:
    onnx = sys.modules.get("onnx")
    return onnx is not None and isinstance(model, onnx.ModelProto)


def first_line(err: BaseException) -> str:
    """One line about an exception (frontend errors can be pages long).

    For a failed MLIR pass pipeline that is the first error diagnostic with its location
    (the exception's own first line only says "Failure while executing pass pipeline").
    """
    diagnostics = getattr(err, "error_diagnostics", None)
    if isinstance(err, ir.MLIRError) and diagnostics:
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


__all__ = ["SUFFIXES", "Source", "load", "load_file"]
