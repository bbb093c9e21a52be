"""The partition picture as DOT text (``--graph FILE.dot``).

Emits a `Scene` for Graphviz or any other DOT reader: one ``subgraph cluster_<region>``
per region (filled with a tint of its backend's colour, dashed when it fell back), an
outer dashed ``cluster_fn_<k>`` per function when the model has several, nodes with ids
``u<k>`` (the same ids the SVG and the page use), a legend node and the heading as the
graph label. Nothing here runs Graphviz: the SVG is laid out by
`byoc_mlir.explain.layout`; DOT is for users who want to lay it out or edit it elsewhere.
"""

from __future__ import annotations

import html

from byoc_mlir.explain.drawing import FALLBACK, HOST, Cluster, Node, Scene


def _q(text: str) -> str:
    """A DOT double-quoted string; newlines become centred line breaks."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _attrs(**attrs: str) -> str:
    return "[" + ", ".join(f"{k}={_q(v)}" for k, v in attrs.items()) + "]"


def emit(scene: Scene) -> str:
    """The scene as a DOT ``digraph``."""
    heading = "\n".join(scene.heading)
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
        _legend(scene),
    ]
    clusters = {c.id: c for c in scene.clusters}
    by_place: dict[tuple[str | None, str | None], list[Node]] = {}
    for node in scene.nodes:
        inner = clusters[node.cluster] if node.cluster else None
        if inner is None:
            by_place.setdefault((None, None), []).append(node)
        elif inner.kind == "function":
            by_place.setdefault((inner.id, None), []).append(node)
        else:
            by_place.setdefault((inner.parent, inner.id), []).append(node)
    functions = [c for c in scene.clusters if c.kind == "function"]
    for function in [None, *functions]:
        key = function.id if function else None
        places = [(r, ns) for (f, r), ns in by_place.items() if f == key]
        if not places:
            continue
        indent = "  "
        if function is not None:
            lines.append(f"  subgraph {_q(function.id)} {{")
            lines.append("    graph " + _attrs(label=function.label, style="dashed") + ";")
            indent = "    "
        for region, ns in places:
            if region is not None:
                lines += _region(clusters[region], ns, indent)
            else:
                lines += [indent + _node(n) for n in ns]
        if function is not None:
            lines.append("  }")
    lines += [f"  {u} -> {v};" for u, v in scene.edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _legend(scene: Scene) -> str:
    cells = "".join(
        f'<tr><td bgcolor="{c}" width="14"> </td><td align="left">{html.escape(name)}</td></tr>'
        for c, name in scene.legend
    )
    table = (
        '<table border="0" cellborder="1" cellspacing="0" cellpadding="3">'
        f'<tr><td colspan="2"><b>backend</b></td></tr>{cells}</table>'
    )
    return f'  legend [id="legend", shape=plaintext, style="", tooltip="legend", label=<{table}>];'


def _region(cluster: Cluster, nodes: list[Node], indent: str) -> list[str]:
    attrs = {
        "id": cluster.id,
        "label": cluster.label,
        "tooltip": cluster.tooltip,
        "style": "filled,rounded" + (",dashed" if cluster.dashed else ""),
        "fillcolor": cluster.fill or "none",
        "color": cluster.border,
        "penwidth": "1.5",
        "fontsize": "10",
    }
    out = [f"{indent}subgraph {_q(cluster.id)} {{", f"{indent}  graph {_attrs(**attrs)};"]
    out += [f"{indent}  {_node(n)}" for n in nodes]
    return [*out, f"{indent}}}"]


def _node(node: Node) -> str:
    attrs = {"id": node.id, "label": node.label, "tooltip": node.tooltip, **_fill(node)}
    return f"{node.id} {_attrs(**attrs)};"


def _fill(node: Node) -> dict[str, str]:
    """Fill attributes: one colour, or stripes in proportion to the ops of each colour."""
    counts = node.fills
    if len(counts) == 1:
        dashed = ",dashed" if counts[0][0] == FALLBACK else ""
        return {"fillcolor": counts[0][0], "style": "rounded,filled" + dashed}
    total = sum(n for _, n in counts)
    shares = [f"{c};{max(n / total, 0.01):.3f}" for c, n in counts[:-1]]
    return {"fillcolor": ":".join([*shares, counts[-1][0]]), "style": "striped"}
