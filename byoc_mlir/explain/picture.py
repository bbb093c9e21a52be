"""A picture of the partition: the model's dataflow, regions coloured by backend.

``byoc-compile --graph FILE`` and ``byoc-opt --partition --graph FILE`` draw it from the
decision log's per-op records (`OpRecord`s, or the ``ops`` list of ``report.json``):
one cluster per region, labelled with its outlined function's name and composites and
filled with its backend's colour (a legend lists them); host ops grey, their reason in
the tooltip; edges from each op's producers. Large models are collapsed first
(`byoc_mlir.explain.collapse`) so they lay out in seconds and stay readable.

Output by file extension: ``.dot`` is the DOT text; ``.svg`` is laid out by Graphviz's
``dot`` (the Debian package ``graphviz``); ``.html`` is a self-contained page with that
SVG, the legend, a per-backend summary and a searchable table of host ops
(`byoc_mlir.explain.page`).
"""

from __future__ import annotations

import html
import shutil
import subprocess
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from byoc_mlir.errors import ByocError
from byoc_mlir.explain.collapse import (
    MAX_NODES,
    Collapsed,
    Model,
    Unit,
    collapse,
    label,
    plural,
    tooltip,
)
from byoc_mlir.explain.decisions import OpRecord
from byoc_mlir.fileio import write_atomic

FORMATS = (".svg", ".html", ".dot")
PALETTE = (
    "#66c2a5", "#fc8d62", "#8da0cb", "#e78ac3", "#a6d854", "#ffd92f",
    "#e5c494", "#80b1d3", "#fdb462", "#bc80bd", "#7fc97f", "#fb8072",
)  # fmt: skip
"""ColorBrewer Set2, Set3 and Accent: light enough under black text, none of them grey."""
HOST = "#d9d9d9"
"""Host ops."""
FALLBACK = "#bdbdbd"
"""Ops of a region whose codegen failed (drawn dashed)."""
DOT_TIMEOUT = 300
INSTALL_HINT = (
    "install Graphviz: `apt-get install graphviz` (Debian/Ubuntu), `dnf install graphviz`, "
    "`brew install graphviz`; or write FILE.dot and lay it out elsewhere"
)
STEPS = {
    1: "chains of ops collapsed",
    2: "regions shown whole, like siblings merged",
    3: "regions shown whole, chains of regions and host ops collapsed",
    4: "slices of the graph collapsed",
}


def backend_colours(backends: Iterable[str]) -> dict[str, str]:
    """A colour per backend, stable across models: a hash of the name picks the palette
    slot; a taken slot moves on to the next free one (names sorted: deterministic)."""
    taken: set[int] = set()
    out: dict[str, str] = {}
    for name in sorted(set(backends)):
        slot = zlib.crc32(name.encode()) % len(PALETTE)
        free = [s for s in range(len(PALETTE)) if (slot + s) % len(PALETTE) not in taken]
        slot = (slot + free[0]) % len(PALETTE) if free else slot  # past 12: colours repeat
        taken.add(slot)
        out[name] = PALETTE[slot]
    return out


@dataclass
class Drawing:
    """What one picture shows: the model, its collapsed graph, colours and DOT text."""

    model: Model
    collapsed: Collapsed
    colours: dict[str, str]
    title: str
    dot: str = ""
    tips: dict[str, str] = field(default_factory=dict)
    """SVG element id -> hover text (nodes and region clusters)."""

    def node_of(self) -> dict[int, str]:
        """OpRecord index -> the DOT node id drawing it."""
        return {m: f"u{k}" for k, u in enumerate(self.collapsed.units) for m in u.members}

    def colour(self, op: OpRecord) -> str:
        if op.region is not None and op.region in self.model.fallbacks:
            return FALLBACK
        if op.backend is None or self.model.on_host(op):
            return HOST
        return self.colours[op.backend]

    def summary(self) -> str:
        ops = self.model.ops
        host = sum(1 for o in ops if self.model.on_host(o))
        regions = {o.region for o in ops if o.region and not self.model.on_host(o)}
        text = f"{len(ops)} ops: {len(ops) - host} in {len(regions)} regions, {host} on the host"
        return text + f" ({STEPS[self.collapsed.step]})" if self.collapsed.step > 1 else text


def draw(
    ops: Iterable[Any],
    regions: Iterable[Any] = (),
    *,
    title: str = "",
    max_nodes: int = MAX_NODES,
) -> Drawing:
    """Collapses and draws the ops as DOT.

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
    drawing.dot = _dot(drawing)
    return drawing


def to_dot(ops: Iterable[Any], regions: Iterable[Any] = (), **kwargs: Any) -> str:
    """The DOT text of the picture (see `draw` for the arguments)."""
    return draw(ops, regions, **kwargs).dot


def _q(text: str) -> str:
    """A DOT double-quoted string; newlines become centred line breaks."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _attrs(**attrs: str) -> str:
    return "[" + ", ".join(f"{k}={_q(v)}" for k, v in attrs.items()) + "]"


def tint(colour: str, amount: float = 0.72) -> str:
    """The colour mixed with white: a region's background under its nodes."""
    return _mix(colour, 255, amount)


def shade(colour: str, amount: float = 0.35) -> str:
    """The colour mixed with black: a region's border."""
    return _mix(colour, 0, amount)


def _mix(colour: str, towards: int, amount: float) -> str:
    rgb = [int(colour[k : k + 2], 16) for k in (1, 3, 5)]
    return "#" + "".join(f"{round(c + (towards - c) * amount):02x}" for c in rgb)


def _fill(drawing: Drawing, unit: Unit) -> dict[str, str]:
    """Fill attributes: one colour, or stripes in proportion to the ops of each colour."""
    ops = [drawing.model.ops[m] for m in unit.members]
    counts = Counter(drawing.colour(o) for o in ops).most_common()
    dashed = ",dashed" if counts[0][0] == FALLBACK else ""
    if len(counts) == 1:
        return {"fillcolor": counts[0][0], "style": "rounded,filled" + dashed}
    shares = [f"{c};{max(n / len(ops), 0.01):.3f}" for c, n in counts[:-1]]
    return {"fillcolor": ":".join([*shares, counts[-1][0]]), "style": "striped"}


def _legend(drawing: Drawing) -> str:
    rows = [(c, html.escape(b)) for b, c in sorted(drawing.colours.items())]
    rows.append((HOST, "host (IREE)"))
    if drawing.model.fallbacks:
        rows.append((FALLBACK, "fell back to the host"))
    cells = "".join(
        f'<tr><td bgcolor="{c}" width="14"> </td><td align="left">{name}</td></tr>'
        for c, name in rows
    )
    table = (
        '<table border="0" cellborder="1" cellspacing="0" cellpadding="3">'
        f'<tr><td colspan="2"><b>backend</b></td></tr>{cells}</table>'
    )
    return f'  legend [id="legend", shape=plaintext, style="", tooltip="legend", label=<{table}>];'


def _dot(drawing: Drawing) -> str:
    model, collapsed = drawing.model, drawing.collapsed
    heading = "\n".join(x for x in (drawing.title, drawing.summary()) if x)
    lines = [
        "digraph byoc {",
        "  graph "
        + _attrs(
            label=heading,
            labelloc="t",
            fontname="Helvetica",
            fontsize="12",
            rankdir="TB",
            newrank="true",
            nodesep="0.25",
            ranksep="0.35",
            tooltip=heading,
        )
        + ";",  # fmt: skip
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=9, '
        f'color="#555555", fillcolor="{HOST}"];',
        '  edge [color="#777777", arrowsize=0.6];',
        _legend(drawing),
    ]
    functions = list(dict.fromkeys(o.function for o in model.ops))
    by_place: dict[tuple[str | None, str | None], list[int]] = {}
    for k, unit in enumerate(collapsed.units):
        names = {model.ops[m].function for m in unit.members}
        function = names.pop() if len(names) == 1 and len(functions) > 1 else None
        region = unit.group if collapsed.step == 1 else None
        by_place.setdefault((function, region), []).append(k)
    for function in [None, *functions]:
        places = [(r, ks) for (f, r), ks in by_place.items() if f == function]
        if not places:
            continue
        indent = "  "
        if function is not None:
            lines.append(f'  subgraph "cluster_fn_{functions.index(function)}" {{')
            lines.append("    graph " + _attrs(label=f"@{function}", style="dashed") + ";")
            indent = "    "
        for region, ks in places:
            if region is not None:
                lines += _region_cluster(drawing, region, ks, indent)
            else:
                lines += [indent + _node(drawing, k) for k in ks]
        if function is not None:
            lines.append("  }")
    lines += [f"  u{u} -> u{v};" for u, v in sorted(collapsed.edges)]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _region_cluster(drawing: Drawing, region: str, ks: list[int], indent: str) -> list[str]:
    model = drawing.model
    ops = [model.ops[m] for k in ks for m in drawing.collapsed.units[k].members]
    composites = model.composites.get(region) or list(
        dict.fromkeys(o.composite for o in ops if o.composite)
    )
    colour = drawing.colour(ops[0])
    status = model.fallbacks.get(region)
    text = "\n".join([region, *([", ".join(composites)] if composites else [])])
    tip = f"{region}: {ops[0].backend}, {plural(len(ops), 'op')}, {sum(o.flops for o in ops)} FLOPs"
    drawing.tips[f"cluster_{region}"] = tip + (f"\n{status}" if status else "")
    attrs = {
        "id": f"cluster_{region}",
        "label": text + (" (fell back)" if status else ""),
        "tooltip": drawing.tips[f"cluster_{region}"],
        "style": "filled,rounded" + (",dashed" if status else ""),
        "fillcolor": tint(colour),
        "color": shade(colour),
        "penwidth": "1.5",
        "fontsize": "10",
    }
    out = [f"{indent}subgraph {_q('cluster_' + region)} {{", f"{indent}  graph {_attrs(**attrs)};"]
    out += [f"{indent}  {_node(drawing, k)}" for k in ks]
    return [*out, f"{indent}}}"]


def _node(drawing: Drawing, k: int) -> str:
    unit = drawing.collapsed.units[k]
    drawing.tips[f"u{k}"] = tooltip(drawing.model, unit)
    attrs = {
        "id": f"u{k}",
        "label": label(drawing.model, unit),
        "tooltip": drawing.tips[f"u{k}"],
        **_fill(drawing, unit),
    }
    return f"u{k} {_attrs(**attrs)};"


# --- output ------------------------------------------------------------------------------


def check_output(path: str | Path) -> str:
    """Validates an output path before any work: its extension, and ``dot`` if needed.

    Returns:
        The extension (``.svg``, ``.html`` or ``.dot``).
    """
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ByocError(
            f"cannot draw the graph as '{suffix or Path(path).name}': valid extensions are "
            + ", ".join(FORMATS)
        )
    if suffix != ".dot" and shutil.which("dot") is None:
        raise ByocError(
            f"drawing {Path(path).name} needs Graphviz's `dot` program, which is not on PATH",
            hint=INSTALL_HINT,
        )
    return suffix


def render_svg(dot_text: str) -> str:
    """Lays out DOT text with Graphviz's ``dot``; returns the SVG."""
    exe = shutil.which("dot")
    if exe is None:
        raise ByocError("Graphviz's `dot` program is not on PATH", hint=INSTALL_HINT)
    try:
        done = subprocess.run(
            [exe, "-Tsvg"],
            input=dot_text,
            capture_output=True,
            encoding="utf-8",
            timeout=DOT_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ByocError(
            f"Graphviz's dot did not finish within {DOT_TIMEOUT} s",
            hint="write FILE.dot instead, or draw with fewer nodes (max_nodes)",
        ) from None
    if done.returncode != 0 or "<svg" not in done.stdout:
        lines = [ln for ln in done.stderr.splitlines() if ln.strip()][:3]
        raise ByocError(
            f"Graphviz's dot failed (exit {done.returncode}): " + "; ".join(lines),
            hint="write FILE.dot to inspect the input it was given",
        )
    return done.stdout


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
    from byoc_mlir.explain import page  # the page is only needed for .html

    path = Path(path)
    suffix = check_output(path)
    drawing = draw(ops, regions, title=title or path.stem, max_nodes=max_nodes)
    if suffix == ".dot":
        text = drawing.dot
    else:
        svg = render_svg(drawing.dot)
        text = svg if suffix == ".svg" else page.page(drawing, svg)
    write_atomic(path, text)
    return path


def graph_of_report(path: str | Path, report: Mapping[str, Any], title: str = "") -> Path:
    """Draws a decision log (``report.json`` as a dict) into ``path``."""
    return write_graph(path, report.get("ops") or [], report.get("regions") or [], title=title)
