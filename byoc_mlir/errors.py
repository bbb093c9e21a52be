"""User-facing errors.

Every error a user can cause (bad IR, unknown pass or backend, a stale tag) is a
`ByocError`: a message that says what went wrong, where (an MLIR location when there
is one), what is valid, and how to reproduce. Tools print it as a diagnostic and exit 1;
they never show a Python traceback for it.
"""

from __future__ import annotations


class ByocError(Exception):
    """An error caused by the user's input, reported without a traceback.

    Args:
        message: what went wrong and what would be valid.
        location: where, as an MLIR location string (``loc("model.mlir":3:5)``) or a
            ``file:line:col`` string; empty when there is no location.
        hint: how to reproduce or fix, e.g. the exact ``byoc-opt`` command.
    """

    def __init__(self, message: str, location: str = "", hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.hint = hint

    def format(self) -> str:
        """Returns the diagnostic as ``<where>: error: <message>`` (plus the hint)."""
        where = pretty_location(self.location)
        text = f"{where}: error: {self.message}" if where else f"error: {self.message}"
        if self.hint:
            text += f"\n  note: {self.hint}"
        return text


def pretty_location(location: str) -> str:
    """Turns ``loc("f.mlir":3:5)`` into ``f.mlir:3:5``; other strings pass through."""
    text = str(location)
    if text.startswith("loc(") and text.endswith(")"):
        text = text[4:-1]
        if text.startswith('"'):
            name, _, rest = text[1:].partition('"')
            text = name + rest
    return text
