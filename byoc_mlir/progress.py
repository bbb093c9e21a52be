"""Progress of the compile's long steps (import, partition, codegen per region, IREE
compile) as one tqdm bar on a terminal.

Off unless asked for (`CompileOptions.progress`, which ``byoc-compile`` sets unless
``--quiet``), and off whenever stderr is not a terminal, so logs, pipes and tests never
see bar redraws. The bar clears itself when the compile ends.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from typing import IO, TypeVar

from tqdm import tqdm

T = TypeVar("T")


class Progress:
    """One bar over the compile's steps, started one after another with `begin`.

    `add` grows the bar once the region count is known; `close` clears it (call it also
    when the compile fails, before printing the error).

    Args:
        enabled: show the bar (still only when ``stream`` is a terminal).
        steps: how many steps are known up front.
        stream: where the bar goes (default: stderr).
    """

    def __init__(self, enabled: bool, steps: int, stream: IO[str] | None = None) -> None:
        stream = stream if stream is not None else sys.stderr
        self._bar: tqdm | None = None  # type: ignore[type-arg]
        self._running = False
        if enabled and stream.isatty():
            self._bar = tqdm(
                total=steps,
                desc="byoc-compile",
                unit="step",
                leave=False,
                file=stream,
                # tqdm puts ", " before the postfix: "... [00:01], codegen npu.main_0"
                bar_format="{l_bar}{bar:20}| {n_fmt}/{total_fmt} [{elapsed}]{postfix}",
            )

    @property
    def enabled(self) -> bool:
        return self._bar is not None

    def add(self, steps: int) -> None:
        """Adds ``steps`` more steps to the bar (the regions, after partitioning)."""
        if self._bar is not None and steps:
            self._bar.total += steps
            self._bar.refresh()

    def begin(self, name: str) -> None:
        """Starts step ``name``: the step before it counts as done."""
        if self._bar is None:
            return
        if self._running:
            self._bar.update(1)
        self._running = True
        self._bar.set_postfix_str(name)

    def each(self, items: Sequence[T], name: Callable[[T], str]) -> Iterator[T]:
        """Iterates ``items`` as steps (added to the bar), showing ``name(item)`` for each."""
        self.add(len(items))
        for item in items:
            self.begin(name(item))
            yield item

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
