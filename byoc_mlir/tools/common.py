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
