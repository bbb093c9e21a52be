"""Placement plans: which op goes where, saved, edited by hand, replayed exactly.

``byoc-compile --save-plan plan.json`` (or ``byoc-opt --partition --save-plan``) writes
the placement the partitioner chose. A user edits it — forces an op to the host, moves a
region to another backend, splits or joins regions — and ``--plan plan.json`` replays
it with the ``byoc-apply-plan`` pass in place of annotate, composites and merge-regions.
A plan made for another model (a stale plan) is refused, naming the first op that
differs.

Format (JSON, version 1; one op per line so a plan diffs and greps well)::

    {
      "version": 1,
      "about": "byoc_mlir placement plan: ...",          (ignored)
      "fingerprint": "sha256:3f1c...",
      "backends": ["ccompiler", "jsonrt"],
      "ops": [
        {"id": "main#0", "backend": "ccompiler", "region": "ccompiler.main_0",
         "composite": null, "op": "linalg.fill", "kind": "linalg.fill",
         "types": "tensor<4x16xf32>", "location": "model.mlir:5:8"},
        ...
      ]
    }

``fingerprint``
    sha256 over every compute op's ``id``, ``op``, ``kind`` and ``types``, function by
    function in program order: the model the plan was made for.
``backends``
    Priority order (ties between composites, the order of host reasons). Every backend
    an op names must be listed here.

Per op (every compute op of every partitionable function; all fields required except
``location``):

``id``
    ``<function>#<n>``: ``n`` is the op's position among the function's compute ops
    (constants and ``tensor.empty`` are not compute ops), program order.
``backend``
    The backend that runs the op, or ``null`` for the host. Replay checks that the
    backend accepts the op (alone, or inside a composite of that backend).
``region``
    A label: ops of one function with the same label form one region (they must name
    the same backend). An op with a backend and no label is a region on its own; host
    ops' labels are ignored. A label whose ops would feed themselves through an op
    outside it (say, one forced to the host in the middle of a chain) is split into its
    connected parts. Regions that depend on each other in a cycle are an error (the
    region rule). Replay numbers regions per function in program order.
``composite``
    The composite the op belongs to, or ``null``. Replay forms a composite where the
    backend's pattern of that name matches ops that all carry the name and all run in
    one region on that backend; elsewhere the ops run as single ops.
``op``, ``kind``, ``types``
    What the op is (name, recognised kind, result types); checked against the model.
``location``
    Where the op is in the source, for humans.

Optional, written by a tuned build (``--tune``, see `byoc_mlir.tune`):

``tuned``
    Per region label: ``{"backend", "backend_ms", "host_ms", "kept"}``, the times
    measured when the plan was made. The ops of a region kept on the host already say
    ``"backend": null``, so replay places them there without timing; the times are for
    reading (and are carried into the replayed build's report notes).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from iree.compiler import ir

from byoc_mlir.errors import ByocError
from byoc_mlir.explain.decisions import OpRecord
from byoc_mlir.fileio import write_atomic

VERSION = 1
ABOUT = (
    "byoc_mlir placement plan: edit 'backend' (null = host), 'region' (same label = one "
    "region) or 'composite' per op, then replay with --plan"
)


@dataclass
class PlanOp:
    """One compute op's placement (field order = the order in the file)."""

    id: str
    backend: str | None
    region: str | None
    composite: str | None
    op: str
    kind: str
    types: str
    location: str = ""


_OP_FIELDS = tuple(f.name for f in fields(PlanOp))
_OPTIONAL = {"location"}
_NULLABLE = {"backend", "region", "composite"}


@dataclass
class Plan:
    """A placement plan (see the module docstring for the format)."""

    fingerprint: str
    backends: list[str]
    ops: list[PlanOp] = field(default_factory=list)
    source: str = "<plan>"
    """Where the plan was read from (for messages and host reasons)."""
    tuned: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Measured placement, by region label (see ``tuned`` above)."""

    @staticmethod
    def from_records(records: Sequence[OpRecord], backends: Sequence[str]) -> Plan:
        """The plan of a partition, from its captured op records."""
        ops = [
            PlanOp(r.id, r.backend, r.region, r.composite, r.op, r.kind, r.types, r.location)
            for r in records
        ]
        return Plan(
            fingerprint(signature(o.id, o.op, o.kind, o.types) for o in ops), [*backends], ops
        )

    def apply_tuning(self, timings: dict[str, dict[str, Any]]) -> None:
        """Records measured placement: regions kept on the host lose their backend."""
        for label, timing in timings.items():
            self.tuned.setdefault(label, {}).update(timing)
            if timing.get("kept") == "host":
                for o in self.ops:
                    if o.region == label:
                        o.backend = o.region = o.composite = None

    def dumps(self) -> str:
        head: dict[str, Any] = {
            "version": VERSION,
            "about": ABOUT,
            "fingerprint": self.fingerprint,
            "backends": self.backends,
        }
        if self.tuned:
            head["tuned"] = self.tuned
        lines = [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
        ops = ",\n".join("    " + json.dumps(asdict(o)) for o in self.ops)
        return "{\n" + "\n".join(lines) + '\n  "ops": [\n' + ops + "\n  ]\n}\n"


def result_types(op: ir.Operation) -> str:
    """An op's result types as a plan records them: ``tensor<4x8xf32>, tensor<4xf32>``."""
    return ", ".join(str(r.type) for r in op.results)


def signature(op_id: str, op: str, kind: str, types: str) -> str:
    """One op's line in the fingerprint."""
    return f"{op_id}\t{op}\t{kind}\t{types}"


def fingerprint(signatures: Iterable[str]) -> str:
    """``sha256:<hex>`` over op signatures (`signature`), in order."""
    h = hashlib.sha256()
    for line in signatures:
        h.update(line.encode())
        h.update(b"\n")
    return "sha256:" + h.hexdigest()


def save_plan(records: Sequence[OpRecord], backends: Sequence[str], path: str | Path) -> Plan:
    """Writes the plan of a partition to ``path`` (atomically) and returns it.

    Args:
        records: every compute op's placement, as `byoc_mlir.pipeline.partition` captures
            them (``records=``).
        backends: backend names in priority order.
        path: the JSON file to write; an existing file is replaced only on success.
    """
    plan = Plan.from_records(records, backends)
    write_atomic(Path(path), plan.dumps())
    plan.source = str(path)
    return plan


def load_plan(path: str | Path) -> Plan:
    """Reads and validates a plan file (not yet against a model: see ``byoc-apply-plan``).

    Raises:
        ByocError: unreadable file, malformed JSON, wrong version, missing or mistyped
            fields; located at the file, saying what is valid.
    """
    where = str(path)
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) else "not UTF-8 text"
        raise ByocError(f"cannot read placement plan: {reason}", where) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ByocError(
            f"placement plan is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})",
            where,
        ) from None
    if not isinstance(data, dict) or "version" not in data:
        raise ByocError(
            'not a byoc_mlir placement plan (a JSON object with "version", "fingerprint", '
            '"backends" and "ops"; write one with --save-plan)',
            where,
        )
    if data["version"] != VERSION:
        raise ByocError(
            f"placement plan version {json.dumps(data['version'])} is not supported "
            f"(valid: {VERSION}); save the plan again with this byoc_mlir",
            where,
        )
    known = {"version", "about", "fingerprint", "backends", "ops", "tuned"}
    _no_unknown(data, known, "the plan", where)
    fp = _field(data, "fingerprint", str, "a string", "the plan", where)
    backends = _field(data, "backends", list, "a list of backend names", "the plan", where)
    if not all(isinstance(b, str) for b in backends) or len(set(backends)) != len(backends):
        raise ByocError('"backends" must be a list of distinct backend names', where)
    raw_ops = _field(data, "ops", list, "a list of op objects", "the plan", where)
    ops: list[PlanOp] = []
    seen: set[str] = set()
    for k, raw in enumerate(raw_ops):
        what = f"ops[{k}]"
        if not isinstance(raw, dict):
            raise ByocError(f"{what} must be an object with fields {', '.join(_OP_FIELDS)}", where)
        _no_unknown(raw, set(_OP_FIELDS), what, where)
        values: dict[str, Any] = {}
        for name in _OP_FIELDS:
            if name in _OPTIONAL and name not in raw:
                continue
            if name in _NULLABLE:
                value = _field(raw, name, (str, type(None)), "a string or null", what, where)
            else:
                value = _field(raw, name, str, "a string", what, where)
            values[name] = value
        op = PlanOp(**values)
        if op.id in seen:
            raise ByocError(f"{what}: op id '{op.id}' appears twice", where)
        seen.add(op.id)
        if op.backend is not None and op.backend not in backends:
            raise ByocError(
                f"{what} ({op.id}) is placed on '{op.backend}', which is not in the plan's "
                f'"backends" ({", ".join(backends) or "none"}); add it there (priority = order)',
                where,
            )
        ops.append(op)
    tuned = data.get("tuned", {})
    if not isinstance(tuned, dict) or not all(isinstance(t, dict) for t in tuned.values()):
        raise ByocError('"tuned" must be an object of region label -> timing object', where)
    return Plan(fp, list(backends), ops, where, tuned)


def _no_unknown(obj: dict[str, Any], known: set[str], what: str, where: str) -> None:
    for key in obj:
        if key not in known:
            raise ByocError(
                f"{what} has an unknown field '{key}' (fields: {', '.join(sorted(known))})", where
            )


def _field(obj: dict[str, Any], name: str, typ: Any, valid: str, what: str, where: str) -> Any:
    if name not in obj:
        raise ByocError(f'{what} has no "{name}" field ({valid})', where)
    value = obj[name]
    if not isinstance(value, typ) or isinstance(value, bool):
        raise ByocError(f'{what}: "{name}" must be {valid}, not {json.dumps(value)}', where)
    return value
