"""What the console scripts share: error handling (no tracebacks for user errors)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from byoc_mlir.errors import ByocError


def run_tool(run: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None) -> None:
    """Runs a tool's ``run``; a `ByocError` becomes a diagnostic on stderr and exit 1."""
    try:
        code = run(argv)
    except ByocError as err:
        print(err.format(), file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)


def parse_dims(items: Sequence[str], ranges: bool) -> dict[str, tuple[int, int]]:
    """``--dim`` values: ``NAME=LO..HI`` (or ``NAME=N``, a range of one) by name.

    With ``ranges`` False (a run, not a build) each must be one size: ``NAME=N``.
    """
    valid = "NAME=LO..HI or NAME=N" if ranges else "NAME=N"
    out: dict[str, tuple[int, int]] = {}
    for item in items:
        name, eq, value = item.partition("=")
        low, dots, high = value.partition("..")
        try:
            span = (int(low), int(high) if dots else int(low))
        except ValueError:
            span = (-1, -1)
        if not name or not eq or (dots and not ranges) or not 0 <= span[0] <= span[1]:
            raise ByocError(f"--dim '{item}' (valid: {valid}, sizes >= 0)")
        if name in out:
            raise ByocError(f"--dim {name} is given twice")
        out[name] = span
    return out
