"""The offload summary: what the decision log says, per backend and per host op kind.

`summarize` turns a decision log (``report.json``, as a dict) into numbers: per backend
its regions, the compute ops and estimated FLOPs it took; and a table of the op kinds
left on the host, grouped by why. `summary` prints that as a text table (100 columns)
for ``byoc-compile --report`` and ``byoc-opt --report``. Both read only the JSON data,
so a saved ``report.json`` can be summarised later, by a tool or a script. The schema
is documented in ``docs/report.md``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

WIDTH = 100
"""Text summary width (columns)."""

CATEGORIES = ("rejected", "dropped: cycle", "dropped: region too small", "fallback")
"""Host reason categories, in the order the host table lists them."""

REGION_STATES = ("offloaded", "fallback", "iree", "partitioned")
"""Region status categories: offloaded by the vendor's codegen; put back on the host
(``fallback: ...``); compiled by IREE (a partition-only backend, ``compiled by IREE:
...``); partitioned but not compiled (``byoc-opt``)."""

_MAX_REASONS = 3
"""Distinct reasons shown per host table row in the text (the data keeps all)."""


def reason_category(reason: str | None) -> tuple[str, str]:
    """Splits a host reason into (category, detail).

    ``rejected: a: x; rejected: b: y`` -> (``rejected``, ``a: x; b: y``);
    ``dropped: cycle (why)`` -> (``dropped: cycle``, ``why``);
    ``fallback: codegen failed: e`` -> (``fallback``, ``codegen failed: e``).
    Unknown forms keep their text before the first colon as the category.
    """
    if not reason:
        return "unknown", "no reason recorded"
    if reason.startswith("rejected: "):
        parts = [p.strip() for p in reason.split(";")]
        return "rejected", "; ".join(p.removeprefix("rejected: ") for p in parts)
    for category in ("dropped: cycle", "dropped: region too small"):
        if reason.startswith(category):
            detail = reason[len(category) :].strip()
            if detail.startswith("(") and detail.endswith(")"):
                detail = detail[1:-1]
            return category, detail
    head, sep, rest = reason.partition(":")
    return (head.strip(), rest.strip()) if sep else (reason, "")


def region_state(status: str) -> str:
    """A region's status as one of `REGION_STATES` (unknown statuses pass through)."""
    if status.startswith("fallback"):
        return "fallback"
    if status.startswith("compiled by IREE"):
        return "iree"
    return status


def _share(part: int | None, total: int | None) -> float | None:
    if part is None or not total:
        return None
    return part / total


def summarize(report: Mapping[str, Any]) -> dict[str, Any]:
    """The ``summary`` section of ``report.json`` (see ``docs/report.md``).

    Args:
        report: a decision log as JSON data (``DecisionLog.to_json()`` or a loaded
            ``report.json``). With its ``ops`` list, op counts are exact and FLOPs are
            known; without it (``byoc-opt`` running single passes), counts come from the
            regions' op lists and ``host_ops``, and FLOPs are ``None``.

    Returns:
        ``{"ops", "flops", "backends": [...], "host": {...}, "host_table": [...]}``.
    """
    regions: Sequence[Mapping[str, Any]] = report.get("regions", [])
    records: Sequence[Mapping[str, Any]] | None = report.get("ops") or None
    order: list[str] = []
    states: dict[str, dict[str, int]] = {}
    for r in regions:
        b = r["backend"]
        if b not in states:
            order.append(b)
            states[b] = {"total": 0, **dict.fromkeys(REGION_STATES, 0)}
        state = region_state(r.get("status", "partitioned"))
        states[b]["total"] += 1
        states[b][state] = states[b].get(state, 0) + 1

    ops_of: dict[str, int] = dict.fromkeys(order, 0)
    flops_of: dict[str, int | None] = dict.fromkeys(order, None if records is None else 0)
    host: list[tuple[str, str, str, int | None]] = []  # kind, location, reason, flops
    if records is not None:
        for rec in records:
            b = rec.get("backend")
            if b is None:
                host.append((rec["kind"], rec["location"], rec.get("reason") or "", rec["flops"]))
                continue
            if b not in ops_of:
                order.append(b)
                states[b] = {"total": 0, **dict.fromkeys(REGION_STATES, 0)}
                ops_of[b], flops_of[b] = 0, 0
            ops_of[b] += 1
            flops_of[b] = (flops_of[b] or 0) + int(rec["flops"])
        total_flops: int | None = sum(int(rec["flops"]) for rec in records)
    else:
        for r in regions:
            if region_state(r.get("status", "partitioned")) != "fallback":
                ops_of[r["backend"]] += len(r.get("ops", []))
        for h in report.get("host_ops", []):
            host.append((h["op"], h.get("location", ""), h.get("reason", ""), None))
        total_flops = None
    total_ops = sum(ops_of.values()) + len(host)
    host_flops = None if total_flops is None else sum(f or 0 for *_, f in host)

    backends = [
        {
            "backend": b,
            "regions": states[b],
            "ops_offloaded": ops_of[b],
            "flops_offloaded": flops_of[b],
            "flops_share": _share(flops_of[b], total_flops),
        }
        for b in order
    ]
    return {
        "ops": total_ops,
        "flops": total_flops,
        "backends": backends,
        "host": {
            "ops": len(host),
            "flops": host_flops,
            "flops_share": _share(host_flops, total_flops),
        },
        "host_table": _host_table(host),
    }


def _host_table(host: Sequence[tuple[str, str, str, int | None]]) -> list[dict[str, Any]]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for kind, location, reason, op_flops in host:
        category, detail = reason_category(reason)
        row = rows.get((kind, category))
        if row is None:
            row = rows[(kind, category)] = {
                "kind": kind,
                "category": category,
                "count": 0,
                "flops": None if op_flops is None else 0,
                "reasons": [],
                "location": location,
            }
        row["count"] += 1
        if op_flops is not None:
            row["flops"] += op_flops
        if detail not in row["reasons"]:
            row["reasons"].append(detail)

    def key(row: dict[str, Any]) -> tuple[int, int, str, str]:
        cat = row["category"]
        rank = CATEGORIES.index(cat) if cat in CATEGORIES else len(CATEGORIES)
        return rank, -row["count"], row["kind"], cat

    return sorted(rows.values(), key=key)


# --- text ------------------------------------------------------------------------------


def format_flops(n: int | None) -> str:
    """``2730000`` -> ``2.73 MFLOP``; None -> ``n/a``."""
    if n is None:
        return "n/a"
    value = float(n)
    for unit in ("", "k", "M", "G", "T"):
        if abs(value) < 1000 or unit == "T":
            return f"{n} FLOP" if unit == "" else f"{value:.3g} {unit}FLOP"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def _pct(x: float | None) -> str:
    return "" if x is None else f"({100 * x:.1f}%)"


def _fit(text: str, width: int) -> str:
    """Cuts ``text`` to ``width``, keeping its end (the ``file:line:col`` part)."""
    return text if len(text) <= width else "..." + text[len(text) - width + 3 :]


def _location(text: str) -> str:
    return "(no location)" if text in ("", "unknown", "loc(unknown)") else text


def _regions_text(states: Mapping[str, int]) -> str:
    words = {
        "offloaded": "offloaded",
        "fallback": "fell back",
        "iree": "by IREE",
        "partitioned": "partitioned",
    }
    parts = [f"{states[s]} {w}" for s, w in words.items() if states.get(s)]
    parts += [f"{n} {s}" for s, n in states.items() if s not in words and s != "total" and n]
    return ", ".join(parts) or "0"


def _table(rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> list[str]:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = [
            cell.rjust(widths[c]) if c in right else cell.ljust(widths[c])
            for c, cell in enumerate(r)
        ]
        lines.append(("  " + "  ".join(cells)).rstrip())
    return lines


def summary(report: Mapping[str, Any]) -> str:
    """The offload summary as text (at most 100 columns, deterministic).

    Args:
        report: a decision log as JSON data (a loaded ``report.json``); the summary is
            recomputed from its regions, host ops and op records.
    """
    s = summarize(report)
    total, total_flops = s["ops"], s["flops"]
    if total == 0:
        return "Offload summary: no partitioned compute ops (host-only build, or no pass ran)\n"
    flops_note = (
        f"{format_flops(total_flops)} estimated"
        if total_flops is not None
        else "FLOPs unknown (no op records)"
    )
    lines = [f"Offload summary: {total} compute op(s), {flops_note}", ""]
    dims = report.get("dims") or {}
    if dims:
        spans = [f"{n} in {r[0]}..{r[1]}" if r else f"{n} (any size)" for n, r in dims.items()]
        lines[-1:] = [f"Dynamic dimensions: {', '.join(spans)}", ""]
    rows = [["backend", "regions", "ops offloaded", "FLOPs offloaded"]]
    host = s["host"]
    entries = [
        (
            b["backend"],
            _regions_text(b["regions"]),
            b["ops_offloaded"],
            b["flops_offloaded"],
            b["flops_share"],
        )
        for b in s["backends"]
    ]
    entries.append(("(host)", "-", host["ops"], host["flops"], host["flops_share"]))
    for name, regions, n, flops, share in entries:
        ops_text = f"{n} / {total} {_pct(n / total)}"
        rows.append([name, regions, ops_text, f"{format_flops(flops)} {_pct(share)}"])
    lines += _table(rows)
    table = s["host_table"]
    if table:
        kinds = len({r["kind"] for r in table})
        lines += ["", f"Left on the host: {host['ops']} op(s) of {kinds} kind(s)"]
        head = ["kind", "count", "category"]
        cells = [[_fit(r["kind"], 40), str(r["count"]), r["category"]] for r in table]
        fixed = _table([head, *cells], right=(1,))
        room = max(20, WIDTH - max(len(line) for line in fixed) - 2)
        locations = [_fit(_location(r["location"]), room) for r in table]
        width = max(len(line) for line in fixed)
        lines.append(f"{fixed[0].ljust(width)}  first location".rstrip())
        for row, line, loc in zip(table, fixed[1:], locations, strict=True):
            lines.append(f"{line.ljust(width)}  {loc}")
            for reason in row["reasons"][:_MAX_REASONS]:
                # One line per refusing backend: "a: why; b: why" reads badly wrapped.
                parts = reason.split("; ") if row["category"] == "rejected" else [reason]
                for part in parts:
                    lines += textwrap.wrap(
                        part or "(no detail)",
                        WIDTH,
                        initial_indent=" " * 6,
                        subsequent_indent=" " * 8,
                        break_on_hyphens=False,
                    )
            more = len(row["reasons"]) - _MAX_REASONS
            if more > 0:
                lines.append(f"      (+{more} more distinct reason(s) in report.json)")
    return "\n".join(lines) + "\n"
