"""A picture of the partition: the model's dataflow, regions coloured by backend.

``byoc-compile --graph FILE`` and ``byoc-opt --partition --graph FILE`` draw it from the
decision log's per-op records (`OpRecord`s, or the ``ops`` list of ``report.json``):
one cluster per region, labelled with its outlined function's name and composites and
filled with its backend's colour (a legend lists them); host ops grey, their reason in
the tooltip; edges from each op's producers. Large models are collapsed first
(`byoc_mlir.explain.collapse`) so they lay out in seconds and stay readable.

Output by file extension: ``.dot`` is the DOT text (`byoc_mlir.explain.dot`); ``.svg``
is laid out in pure Python (`byoc_mlir.explain.layout`, no Graphviz needed) and drawn by
`byoc_mlir.explain.svg`; ``.html`` is a self-contained page with that SVG, the legend, a
per-backend summary and a searchable table of host ops (`byoc_mlir.explain.page`). What
the picture shows is described once, format-neutrally, by `byoc_mlir.explain.drawing`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from byoc_mlir.errors import ByocError
from byoc_mlir.explain import dot, page, svg
from byoc_mlir.explain.collapse import MAX_NODES, Model, collapse
from byoc_mlir.explain.drawing import (
    FALLBACK,
    HOST,
    PALETTE,
    STEPS,
    Drawing,
    backend_colours,
    build_scene,
    shade,
    tint,
)
from byoc_mlir.fileio import write_atomic

__all__ = [
    "FALLBACK",
    "FORMATS",
    "HOST",
    "PALETTE",
    "STEPS",
    "Drawing",
    "backend_colours",
    "check_output",
    "draw",
    "graph_of_report",
    "shade",
    "svg_of",
    "tint",
    "to_dot",
    "write_graph",
]

FORMATS = (".svg", ".html", ".dot")


def draw(
    ops: Iterable[Any],
    regions: Iterable[Any] = (),
    *,
    title: str = "",
    max_nodes: int = MAX_NODES,
) -> Drawing:
    """Collapses the ops and describes the picture (its scene, and its DOT text).

    Args:
        ops: `OpRecord`s or ``report.json`` ``ops`` entries (dicts).
        regions: optional `RegionEntry`s or ``report.json`` ``regions`` entries: regions
            whose status is a fallback are drawn grey and dashed; composites label clusters.
        title: the picture's heading (e.g. the model file).
        max_nodes: the node budget that triggers stronger collapsing.
    """
    model = Model.of(ops, regions)
    collapsed = collapse(model, max_nodes)
    backends = {o.backend for o in model.ops if o.backend}
    drawing = Drawing(model, collapsed, backend_colours(backends), title)
    drawing.dot = dot.emit(build_scene(drawing))
    return drawing


def to_dot(ops: Iterable[Any], regions: Iterable[Any] = (), **kwargs: Any) -> str:
    """The DOT text of the picture (see `draw` for the arguments)."""
    return draw(ops, regions, **kwargs).dot


def svg_of(drawing: Drawing) -> str:
    """The drawing as an SVG document, laid out without Graphviz."""
    return svg.render(drawing.scene or build_scene(drawing))


def check_output(path: str | Path) -> str:
    """Validates an output path before any work: its extension.

    Returns:
        The extension (``.svg``, ``.html`` or ``.dot``).
    """
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ByocError(
            f"cannot draw the graph as '{suffix or Path(path).name}': valid extensions are "
            + ", ".join(FORMATS)
        )
    return suffix


def write_graph(
    path: str | Path,
    ops: Iterable[Any],
    regions: Iterable[Any] = (),
    *,
    title: str = "",
    max_nodes: int = MAX_NODES,
) -> Path:
    """Draws the ops into ``path`` (``.svg``, ``.html`` or ``.dot``), written atomically.

    Args:
        path: the output file; its extension picks the format.
        ops, regions, title, max_nodes: as for `draw`.

    Returns:
        The path written.
    """
    path = Path(path)
    suffix = check_output(path)
    drawing = draw(ops, regions, title=title or path.stem, max_nodes=max_nodes)
    if suffix == ".dot":
        text = drawing.dot
    else:
        image = svg_of(drawing)
        text = image if suffix == ".svg" else page.page(drawing, image)
    write_atomic(path, text)
    return path


def graph_of_report(path: str | Path, report: Mapping[str, Any], title: str = "") -> Path:
    """Draws a decision log (``report.json`` as a dict) into ``path``."""
    return write_graph(path, report.get("ops") or [], report.get("regions") or [], title=title)
