"""``.mlir`` / ``.mlirbc`` files: linalg, tosa or torch dialect, text or bytecode.

linalg and tosa go to IREE's input phase as they are (it parses, so checks, them). A
module whose functions take ``!torch.vtensor`` values (what ``iree-import-onnx`` or a
torch FX import writes) is lowered to linalg here first, with the pipeline its origin
needs: IREE's torch input conversion would otherwise wrap the entry in its buffer-view
ABI (``@name$async`` with fences), which is not a partitionable signature.

Otherwise this loader only makes sure the file is readable and is MLIR text or bytecode
at all, so a binary file of the wrong kind gets a clear error instead of a parser
message about its first byte.
"""

from __future__ import annotations

from pathlib import Path

from iree.compiler import ir, passmanager

from byoc_mlir import _compat, isolate
from byoc_mlir.errors import ByocError
from byoc_mlir.frontends import Source, first_line, torch_signature

BYTECODE_MAGIC = b"ML\xefR"


def load_mlir(path: Path) -> Source:
    """Reads an MLIR file (text or bytecode); torch dialect is lowered to linalg."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ByocError(f"cannot read {path}: {err.strerror}") from None
    if data.startswith(BYTECODE_MAGIC):
        source = Source(data, str(path))
    else:
        try:
            source = Source(data.decode(), str(path))
        except UnicodeDecodeError:
            raise ByocError(
                f"{path} is neither MLIR text nor MLIR bytecode (expected a module of "
                f"linalg, tosa or torch dialect ops)"
            ) from None
    if b"torch" not in data:  # cheap: only a module that mentions torch is parsed here
        return source
    # torch-mlir's lowering runs in process and can crash on odd input: isolate it.
    return isolate.run(lambda: _lower_torch(source, path), f"{path}: lowering torch dialect")


def _lower_torch(source: Source, path: Path) -> Source:
    from byoc_mlir.frontends import from_onnx, from_torch

    context = _compat.new_context(multithreaded=False)  # in a forked child
    module = _compat.parse_file(path, context)  # file locations: reports point here
    funcs = [
        op.operation
        for op in _compat.module_body(module.operation).operations
        if op.operation.name == "func.func"
    ]
    torch_funcs = [f for f in funcs if "!torch." in str(_compat.function_type(f))]
    if not torch_funcs:
        return source
    from_onnx_import = any("torch.onnx_meta.opset_version" in f.attributes for f in torch_funcs)
    pipeline = from_onnx.TO_LINALG if from_onnx_import else from_torch.TO_LINALG
    signature = torch_signature(module.operation)
    try:
        with context:
            passmanager.PassManager.parse(pipeline).run(module.operation)
    except ir.MLIRError as err:
        raise ByocError(
            f"{path}: lowering its torch dialect to linalg failed: {first_line(err)}"
        ) from None
    return Source(module.operation.get_asm(binary=True), str(path), signature=signature)
