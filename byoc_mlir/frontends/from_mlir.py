"""``.mlir`` / ``.mlirbc`` files: linalg, tosa or torch dialect, text or bytecode, as is.

IREE's input phase parses (and so checks) them; this loader only makes sure the file is
readable and is MLIR text or bytecode at all, so a binary file of the wrong kind gets a
clear error instead of a parser message about its first byte.
"""

from __future__ import annotations

from pathlib import Path

from byoc_mlir.errors import ByocError
from byoc_mlir.frontends import Source

BYTECODE_MAGIC = b"ML\xefR"


def load_mlir(path: Path) -> Source:
    """Reads an MLIR file (text or bytecode)."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ByocError(f"cannot read {path}: {err.strerror}") from None
    if data.startswith(BYTECODE_MAGIC):
        return Source(data, str(path))
    try:
        return Source(data.decode(), str(path))
    except UnicodeDecodeError:
        raise ByocError(
            f"{path} is neither MLIR text nor MLIR bytecode (expected a module of "
            f"linalg, tosa or torch dialect ops)"
        ) from None
