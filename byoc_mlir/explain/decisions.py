"""The decision log: every region and every op left on the host, with its reason.

It is read back from the partitioned IR (the passes only tag), so it is the same whether
the passes ran in one pipeline or one at a time through ``byoc-opt``. It is the data
behind ``report.json``; `DecisionLog.to_json` gives that schema (version 1, documented
in ``docs/report.md``), with a ``summary`` section from `byoc_mlir.explain.report`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from iree.compiler import ir

from byoc_mlir import _compat
from byoc_mlir.dataflow import function_graphs, is_free
from byoc_mlir.dialects import byoc
from byoc_mlir.errors import pretty_location
from byoc_mlir.explain import report

VERSION = 1


@dataclass
class RegionEntry:
    name: str
    backend: str
    function: str
    region: int
    composites: list[str]
    ops: list[str]
    inputs: list[str]
    outputs: list[str]
    route: str | None = None
    artifact: str | None = None
    status: str = "partitioned"
    timing: dict[str, Any] | None = None  # measured placement (--tune): see byoc_mlir.tune
    codegen: dict[str, Any] | None = None  # how the hook ran: {"mode": "process" | ...}


def _region_json(entry: RegionEntry) -> dict[str, Any]:
    """A region's report entry; ``timing`` only where measured (a tuned build),
    ``codegen`` only once a hook ran."""
    data = asdict(entry)
    for optional in ("timing", "codegen"):
        if data[optional] is None:
            del data[optional]
    return data


@dataclass
class HostOpEntry:
    op: str
    function: str
    location: str
    reason: str


@dataclass
class OpRecord:
    """Where one compute op went, captured after merge-regions (before outlining).

    ``id`` is ``<function>#<n>`` with ``n`` the op's position among the function's compute
    ops (program order); it is what placement plans refer to.
    """

    id: str
    function: str
    op: str
    kind: str
    location: str
    backend: str | None
    region: str | None
    composite: str | None
    reason: str | None
    flops: int
    inputs: list[str]
    types: str = ""
    """Result types, comma-separated (placement plans check them against the model)."""

    @staticmethod
    def of(record: OpRecord | Mapping[str, Any]) -> OpRecord:
        """The record itself, or one read from a report.json ``ops`` entry; missing keys
        default, so reports written before a field existed still load."""
        if isinstance(record, OpRecord):
            return record
        get = record.get
        return OpRecord(
            id=str(get("id")),
            function=str(get("function") or ""),
            op=str(get("op") or ""),
            kind=str(get("kind") or get("op") or "?"),
            location=str(get("location") or ""),
            backend=get("backend"),
            region=get("region"),
            composite=get("composite"),
            reason=get("reason"),
            flops=int(get("flops") or 0),
            inputs=list(get("inputs") or ()),
            types=str(get("types") or ""),
        )


@dataclass
class DecisionLog:
    regions: list[RegionEntry] = field(default_factory=list)
    host_ops: list[HostOpEntry] = field(default_factory=list)
    ops: list[OpRecord] = field(default_factory=list)
    """Every compute op (when captured by the pipeline): the graph behind reports,
    pictures and placement plans."""
    notes: list[str] = field(default_factory=list)
    """What the build changed that the user asked for (``f64 demoted to f32``)."""
    dims: dict[str, list[int] | None] = field(default_factory=dict)
    """The signature's dynamic dimensions by name: their range, or None (any size)."""

    @staticmethod
    def from_module(module_op: ir.Operation) -> DecisionLog:
        log = DecisionLog()
        callers: dict[str, str] = {}
        for graph in function_graphs(module_op):
            fname = _compat.symbol_name(graph.func)
            for op in graph.ops:
                if op.name in _compat.CALL_OPS:
                    callers[_compat.callee_name(op)] = fname
                reason = byoc.get_reason(op)
                if reason is not None:
                    log.host_ops.append(
                        HostOpEntry(op.name, fname, pretty_location(str(op.location)), reason)
                    )
        for op in _compat.module_body(module_op).operations:
            op = op.operation
            if op.name not in _compat.FLAVORS:
                continue
            tag = byoc.get_region(op)
            if tag is None:
                continue
            name = _compat.symbol_name(op)
            ftype = _compat.function_type(op)
            blocks = op.regions[0].blocks
            body = [o.operation for o in blocks[0].operations] if len(blocks) else [op]
            log.regions.append(
                RegionEntry(
                    name=name,
                    backend=tag[0],
                    function=callers.get(name, ""),
                    region=tag[1],
                    composites=byoc.get_composites(op),
                    ops=[o.name for o in body[:-1] if not is_free(o)],
                    inputs=[str(t) for t in ftype.inputs],
                    outputs=[str(t) for t in ftype.results],
                )
            )
        return log

    def refresh_host_ops(self, module_op: ir.Operation) -> None:
        """Re-reads the host ops (after codegen fallbacks put regions back on the host)."""
        self.host_ops = DecisionLog.from_module(module_op).host_ops

    def fall_back(self, name: str, reason: str) -> None:
        """Records that region ``name`` went back to the host: its entry and its ops."""
        entry = self.region(name)
        entry.route, entry.artifact, entry.status = None, None, reason
        for o in self.ops:
            if o.region == name:
                o.backend, o.region, o.composite, o.reason = None, None, None, reason

    def region(self, name: str) -> RegionEntry:
        for r in self.regions:
            if r.name == name:
                return r
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version": VERSION,
            "regions": [_region_json(r) for r in self.regions],
            "host_ops": [asdict(h) for h in self.host_ops],
        }
        if self.ops:
            data["ops"] = [asdict(o) for o in self.ops]
        if self.notes:
            data["notes"] = list(self.notes)
        if self.dims:
            data["dims"] = dict(self.dims)
        data["summary"] = report.summarize(data)
        return data

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2)
