"""The partition picture as a self-contained SVG file (``--graph FILE.svg``).

Draws a `Scene` where `byoc_mlir.explain.layout` placed it: the heading (title and
summary) and a legend on top, then each cluster as a rounded box with its label (a
region filled with a tint of its backend's colour, dashed when it fell back; a function
dashed and unfilled), the edges as smooth curves through their bends with an arrowhead,
and the nodes as rounded boxes, striped (a gradient with hard stops) when their ops are
of several colours. Every element the HTML page (`byoc_mlir.explain.page`) scripts has
Graphviz's structure: ``<g class="node" id="u12">`` and ``<g class="cluster"
id="cluster_<region>">``, each with a ``<title>`` (its hover text) and ``path`` shapes.
Cluster labels are drawn over the edges, on a patch of their box's colour. No fonts,
images or scripts are referenced; the output is valid XML with a viewBox, in points, and
the same scene always gives the same bytes. Node and label sizes come from an estimate
of Helvetica's glyph widths (`text_width`: no font files are read), which `graph_of`
hands to the layout.
"""

from __future__ import annotations

import html
import re

from byoc_mlir.explain.drawing import Box, Graph, Layout, Node, Scene
from byoc_mlir.explain.layout import place

NODE_FONT, CLUSTER_FONT, LINE = 9.0, 10.0, 1.2
MARGIN = 8.0
TITLE_FONT, SUMMARY_FONT = 14.0, 11.0
EDGE, ARROW = "#777777", 6.0
FONT = "Helvetica,Arial,sans-serif"
_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_NARROW, _WIDE = set("ijlft.,:;'|!()[] I"), set("mwMW@%")


def text_width(line: str, size: float) -> float:
    """Estimated width of a line of Helvetica (the viewer's sans-serif may differ a bit)."""
    em = sum(
        0.28 if ch in _NARROW else 0.86 if ch in _WIDE else 0.68 if ch.isupper() or ch in "→…×"
        else 0.56
        for ch in line
    )  # fmt: skip
    return em * size


def text_size(text: str, size: float) -> tuple[float, float]:
    """Width and height of (possibly multi-line) text."""
    lines = text.split("\n")
    return max(text_width(x, size) for x in lines), len(lines) * size * LINE


def graph_of(scene: Scene) -> Graph:
    """What the layout places: nodes fit their label, clusters get room for theirs."""
    sizes = {}
    for n in scene.nodes:
        w, h = text_size(n.label, NODE_FONT)
        sizes[n.id] = (max(w + 16, 36.0), h + 10)
    labels = {}
    for c in scene.clusters:
        w, h = text_size(c.label, CLUSTER_FONT if c.kind == "region" else NODE_FONT + 1)
        labels[c.id] = (w, h + 4)
    owner = {n.id: n.cluster for n in scene.nodes}
    return Graph(sizes, owner, {c.id: c.parent for c in scene.clusters}, labels, scene.edges)


def _x(text: str) -> str:
    """Text for XML content or a double-quoted attribute."""
    return html.escape(_INVALID.sub("?", text), quote=True)


def _n(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def render(scene: Scene, layout: Layout | None = None) -> str:
    """The SVG document (laid out with `byoc_mlir.explain.layout.place` unless given)."""
    layout = layout or place(graph_of(scene))
    sizes = [
        TITLE_FONT if k == 0 and len(scene.heading) > 1 else SUMMARY_FONT
        for k in range(len(scene.heading))
    ]
    legend, legend_width = _legend(scene, MARGIN + sum(sizes) * LINE + 6)
    top = MARGIN + sum(sizes) * LINE + 30  # heading, legend row, a gap
    widths = [text_size(line, size)[0] for line, size in zip(scene.heading, sizes, strict=True)]
    width = max([layout.width, legend_width, *widths]) + 2 * MARGIN
    height = top + layout.height + MARGIN
    dx = (width - layout.width) / 2
    out = [
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(width)}pt" height="{_n(height)}pt" '
        f'viewBox="0 0 {_n(width)} {_n(height)}" font-family="{FONT}">',
        f'<g id="graph0" class="graph"><title>{_x(chr(10).join(scene.heading))}</title>',
        f'<rect x="0" y="0" width="{_n(width)}" height="{_n(height)}" fill="white"/>',
    ]
    y = MARGIN
    for line, size in zip(scene.heading, sizes, strict=True):
        y += size * LINE
        bold = ' font-weight="bold"' if size == TITLE_FONT else ""
        out.append(
            f'<text class="heading" x="{_n(width / 2)}" y="{_n(y - size * 0.25)}" '
            f'text-anchor="middle" font-size="{_n(size)}"{bold}>{_x(line)}</text>'
        )
    out.append(legend)
    defs: dict[tuple[tuple[str, int], ...], str] = {}
    body: list[str] = []
    labels: list[str] = []  # over the edges, on a patch of the box's colour
    for c in scene.clusters:
        box = _moved(layout.clusters[c.id], dx, top)
        dash = ' stroke-dasharray="5,2"' if c.dashed else ""
        size, pen = (CLUSTER_FONT, 1.5) if c.kind == "region" else (NODE_FONT + 1, 1)
        body.append(
            f'<g class="cluster" id="{_x(c.id)}"><title>{_x(c.tooltip)}</title>'
            f'<path fill="{c.fill or "none"}" stroke="{c.border}" stroke-width="{pen}"{dash} '
            f'd="{_rounded(box, 6)}"/></g>'
        )
        w, h = text_size(c.label, size)
        labels.append(
            f'<rect x="{_n(box.cx - w / 2 - 2)}" y="{_n(box.y0 + 4)}" width="{_n(w + 4)}" '
            f'height="{_n(h)}" rx="3" fill="{c.fill or "white"}" fill-opacity="0.85"/>'
            + _lines(c.label, box.cx, box.y0 + 4, size)
        )
    for k, (u, v, points) in enumerate(layout.edges):
        path = _edge([(x + dx, y + top) for x, y in points])
        body.append(f'<g class="edge" id="e{k}"><title>{_x(u)}&#45;&gt;{_x(v)}</title>{path}</g>')
    body.append('<g class="labels">' + "".join(labels) + "</g>")
    for node in scene.nodes:
        box = _moved(layout.nodes[node.id], dx, top)
        dash = ' stroke-dasharray="4,2"' if node.dashed else ""
        text_top = box.cy - len(node.label.split("\n")) * NODE_FONT * LINE / 2
        body.append(
            f'<g class="node" id="{_x(node.id)}"><title>{_x(node.tooltip)}</title>'
            f'<path fill="{_fill(node, defs)}" stroke="#555555"{dash} d="{_rounded(box, 4)}"/>'
            f"{_lines(node.label, box.cx, text_top, NODE_FONT)}</g>"
        )
    if defs:
        out.append("<defs>" + "".join(_gradient(f, gid) for f, gid in defs.items()) + "</defs>")
    return "\n".join([*out, *body, "</g>", "</svg>"]) + "\n"


def _moved(box: Box, dx: float, dy: float) -> Box:
    return Box(box.x0 + dx, box.y0 + dy, box.x1 + dx, box.y1 + dy)


def _rounded(b: Box, r: float) -> str:
    r = min(r, (b.x1 - b.x0) / 2, (b.y1 - b.y0) / 2)
    x0, y0, x1, y1 = _n(b.x0), _n(b.y0), _n(b.x1), _n(b.y1)
    return (
        f"M{_n(b.x0 + r)},{y0}H{_n(b.x1 - r)}Q{x1},{y0} {x1},{_n(b.y0 + r)}V{_n(b.y1 - r)}"
        f"Q{x1},{y1} {_n(b.x1 - r)},{y1}H{_n(b.x0 + r)}Q{x0},{y1} {x0},{_n(b.y1 - r)}"
        f"V{_n(b.y0 + r)}Q{x0},{y0} {_n(b.x0 + r)},{y0}Z"
    )


def _lines(text: str, cx: float, top: float, size: float) -> str:
    """Centred lines of text whose first line's top is at ``top``."""
    return "".join(
        f'<text text-anchor="middle" x="{_n(cx)}" y="{_n(top + (k + 0.8) * size * LINE)}" '
        f'font-size="{_n(size)}">{_x(line)}</text>'
        for k, line in enumerate(text.split("\n"))
    )


def _fill(node: Node, defs: dict[tuple[tuple[str, int], ...], str]) -> str:
    if len(node.fills) == 1:
        return node.fills[0][0]
    key = tuple(node.fills)
    if key not in defs:
        defs[key] = f"stripes_{len(defs)}"
    return f"url(#{defs[key]})"


def _gradient(fills: tuple[tuple[str, int], ...], gid: str) -> str:
    """Vertical stripes in proportion to each colour's ops (hard stops)."""
    total, done, stops = sum(n for _, n in fills), 0, []
    for colour, n in fills:
        start, done = done, done + n
        stops.append(f'<stop offset="{_n(start / total)}" stop-color="{colour}"/>')
        stops.append(f'<stop offset="{_n(done / total)}" stop-color="{colour}"/>')
    return (
        f'<linearGradient id="{gid}" x1="0" y1="0" x2="1" y2="0">{"".join(stops)}</linearGradient>'
    )


def _edge(points: list[tuple[float, float]]) -> str:
    """A curve through the points, vertical at each of them, ending in an arrowhead."""
    dy = 1.0 if points[-1][1] >= points[-2][1] else -1.0
    ex, ey = points[-1]
    pts = [*points[:-1], (ex, ey - dy * ARROW)]
    path = [f"M{_n(pts[0][0])},{_n(pts[0][1])}"]
    for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
        if abs(x0 - x1) < 0.01:
            path.append(f"V{_n(y1)}")
        else:
            mid = _n((y0 + y1) / 2)
            path.append(f"C{_n(x0)},{mid} {_n(x1)},{mid} {_n(x1)},{_n(y1)}")
    back = _n(ey - dy * ARROW)
    tip = f"{_n(ex)},{_n(ey)} {_n(ex - 2.4)},{back} {_n(ex + 2.4)},{back}"
    return (
        f'<path fill="none" stroke="{EDGE}" d="{"".join(path)}"/>'
        f'<polygon fill="{EDGE}" stroke="{EDGE}" points="{tip}"/>'
    )


def _legend(scene: Scene, y: float) -> tuple[str, float]:
    """One row: "backend:" then a swatch and a name per entry; its width."""
    x = MARGIN
    parts = [f'<text x="{_n(x)}" y="{_n(y + 10)}" font-size="9" font-weight="bold">backend:</text>']
    x += text_size("backend:", 9)[0] + 8
    for colour, name in scene.legend:
        parts.append(
            f'<rect x="{_n(x)}" y="{_n(y + 2)}" width="12" height="10" fill="{colour}" '
            f'stroke="#555555"/><text x="{_n(x + 16)}" y="{_n(y + 10)}" font-size="9">'
            f"{_x(name)}</text>"
        )
        x += 16 + text_size(name, 9)[0] + 12
    return '<g id="graph_legend" class="legend">' + "".join(parts) + "</g>", x - MARGIN
