"""The ``--graph FILE.html`` page: the partition picture with the tables to read it by.

One self-contained file (no network, no CDN: it opens offline and can be attached to a
bug report): the SVG (`byoc_mlir.explain.svg`) inline, the legend, a per-backend summary
(regions, ops, estimated FLOPs and their share) and a table of the host ops with their
reasons and locations that a search box and a reason filter narrow down. Clicking a row
marks the node drawing that op; hovering a node shows its ops and reasons. The script is
a few lines of plain JavaScript.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter

from byoc_mlir.explain.drawing import Drawing

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; margin: 0 0 .2em; } h2 { font-size: 1.1em; margin: 1.2em 0 .4em; }
table { border-collapse: collapse; } td, th { padding: 2px 8px; text-align: left; }
th { border-bottom: 1px solid #999; } tr:nth-child(even) td { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.swatch { display: inline-block; width: 1em; height: 1em; border: 1px solid #555;
          vertical-align: middle; margin: 0 .3em 0 1em; }
#canvas { border: 1px solid #ccc; overflow: auto; max-height: 80vh; }
#host-ops tbody tr { cursor: pointer; } #host-ops tbody tr:hover td { background: #e8f0ff; }
g.marked path, g.marked polygon { stroke: #d00; stroke-width: 4px; }
g.node:hover path { stroke-width: 2px; }
.tools { margin: .3em 0; } .muted { color: #666; }
"""

SCRIPT = """
(() => {
  const tips = JSON.parse(document.getElementById('tips').textContent);
  const svg = document.querySelector('#canvas svg');
  // A node's or region's <title> is its hover text; the tips may be newer (same ids).
  for (const g of svg.querySelectorAll('g.node, g.cluster')) {
    const t = g.querySelector('title');
    if (t && tips[g.id]) t.textContent = tips[g.id];
  }
  const search = document.getElementById('search');
  const category = document.getElementById('category');
  const shown = document.getElementById('shown');
  const rows = [...document.querySelectorAll('#host-ops tbody tr')];
  const filter = () => {
    const q = search.value.toLowerCase(), c = category.value;
    let n = 0;
    for (const r of rows) {
      const ok = (!c || r.dataset.category === c) && r.textContent.toLowerCase().includes(q);
      r.hidden = !ok;
      n += ok ? 1 : 0;
    }
    shown.textContent = n + ' of ' + rows.length + ' shown';
  };
  search.addEventListener('input', filter);
  category.addEventListener('change', filter);
  filter();
  let marked = null;
  for (const r of rows) {
    r.addEventListener('click', () => {
      const g = document.getElementById(r.dataset.node);
      if (marked) marked.classList.remove('marked');
      if (g) {
        g.classList.add('marked');
        marked = g;
        g.scrollIntoView({block: 'center', inline: 'center', behavior: 'smooth'});
      }
    });
  }
  const width = parseFloat(svg.getAttribute('width'));
  const height = parseFloat(svg.getAttribute('height'));
  let scale = 1;
  const zoom = (factor) => {
    const canvas = document.getElementById('canvas');
    scale = factor ? scale * factor : Math.min(1, canvas.clientWidth / (width * 4 / 3));
    svg.setAttribute('width', (width * scale) + 'pt');
    svg.setAttribute('height', (height * scale) + 'pt');
  };
  for (const b of document.querySelectorAll('button[data-zoom]')) {
    b.addEventListener('click', () => zoom(parseFloat(b.dataset.zoom)));
  }
})();
"""


def inline_svg(svg: str) -> str:
    """An SVG file as an element for an HTML page: no XML prolog, doctype, comments
    or namespace declarations (HTML's parser supplies the namespaces)."""
    svg = re.sub(r"<\?xml.*?\?>|<!DOCTYPE.*?>|<!--.*?-->", "", svg, flags=re.S)
    return re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg).strip()


def page(drawing: Drawing, svg: str) -> str:
    """The HTML page for a drawing and its SVG."""
    model = drawing.model
    title = drawing.title or "byoc partition"
    node_of = drawing.node_of()
    legend = "".join(
        f'<span class="swatch" style="background:{c}"></span>{html.escape(name)}'
        for c, name in drawing.legend()
    )
    host_rows = []
    categories: Counter[str] = Counter()
    for k, op in enumerate(model.ops):
        if not model.on_host(op):
            continue
        reason = model.host_reason(op)
        category = reason.split(":")[0].strip() or "other"
        categories[category] += 1
        cells = "".join(f"<td>{html.escape(x)}</td>" for x in (op.id, op.kind, op.location, reason))
        host_rows.append(
            f'<tr data-node="{node_of.get(k, "")}" data-category="{html.escape(category)}">'
            f"{cells}</tr>"
        )
    options = "".join(
        f'<option value="{html.escape(c)}">{html.escape(c)} ({n})</option>'
        for c, n in sorted(categories.items())
    )
    data = json.dumps(drawing.tips).replace("</", "<\\/")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="muted">{html.escape(drawing.summary())}</p>
<p id="legend">{legend}</p>
<h2>Per backend</h2>
{_backend_table(drawing)}
<h2>Graph</h2>
<div class="tools"><button data-zoom="1.25">zoom in</button>
<button data-zoom="0.8">zoom out</button><button data-zoom="0">fit width</button>
<span class="muted">hover a node for its ops and reasons</span></div>
<div id="canvas">{inline_svg(svg)}</div>
<h2>Host ops ({len(host_rows)})</h2>
<p><input id="search" type="search" size="40" placeholder="search op, kind, location, reason">
<select id="category"><option value="">every reason</option>{options}</select>
<span id="shown" class="muted"></span></p>
<table id="host-ops"><thead><tr><th>op</th><th>kind</th><th>location</th><th>reason</th>
</tr></thead><tbody>
{chr(10).join(host_rows)}
</tbody></table>
<script type="application/json" id="tips">{data}</script>
<script>{SCRIPT}</script>
</body></html>
"""


def _backend_table(drawing: Drawing) -> str:
    model = drawing.model
    total = sum(o.flops for o in model.ops) or 1
    rows: dict[str, list[int]] = {}  # backend -> [ops, flops]
    regions: dict[str, set[str]] = {}
    for op in model.ops:
        key = "host (IREE)" if model.on_host(op) else str(op.backend)
        entry = rows.setdefault(key, [0, 0])
        entry[0] += 1
        entry[1] += op.flops
        if op.region and key != "host (IREE)":
            regions.setdefault(key, set()).add(op.region)
    body = "".join(
        f"<tr><td>{html.escape(name)}</td><td class='num'>{len(regions.get(name, ()))}</td>"
        f"<td class='num'>{n}</td><td class='num'>{flops:,}</td>"
        f"<td class='num'>{100 * flops / total:.1f}%</td></tr>"
        for name, (n, flops) in sorted(rows.items(), key=lambda kv: kv[0] == "host (IREE)")
    )
    return (
        "<table id='backends'><thead><tr><th>backend</th><th>regions</th><th>ops</th>"
        f"<th>FLOPs (est.)</th><th>share</th></tr></thead><tbody>{body}</tbody></table>"
    )
