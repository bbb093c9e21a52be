"""`ModulePass`: Python-defined passes as frozen dataclasses whose fields are options.

Options parse from the field type hints (``int``, ``bool``, ``str``, ``tuple[str, ...]``),
mlir-opt style: ``--byoc-merge-regions="min-size=2 max-size=8"``; list values are
comma-separated; dashes in option names stand for underscores.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, ClassVar

from iree.compiler import ir, passmanager

from byoc_mlir import _compat
from byoc_mlir.dataflow import FunctionGraph, function_graphs
from byoc_mlir.errors import ByocError


@dataclass(frozen=True)
class ModulePass:
    """A pass over a ``builtin.module``. Subclasses set `NAME` and implement `apply`."""

    NAME: ClassVar[str] = ""

    def apply(self, module_op: ir.Operation) -> None:
        """Runs the pass on every partitionable function of the module."""
        self.run(module_op, list(function_graphs(module_op)))

    def run(self, module_op: ir.Operation, graphs: list[FunctionGraph]) -> None:
        """Runs on prebuilt graphs; a pipeline shares them between passes that only tag."""
        raise NotImplementedError  # pragma: no cover - abstract

    def add_to(self, pm: passmanager.PassManager) -> None:
        """Adds this pass to an MLIR pass manager (so it mixes with MLIR's passes)."""
        _compat.add_python_pass(pm, self.apply, self.NAME)

    @classmethod
    def options(cls) -> dict[str, Any]:
        """Option name (dashed) -> type; fields with ``metadata={"option": False}`` are not
        options (a Python-only hand-over, such as where to put results)."""
        hints = typing.get_type_hints(cls)
        return {
            f.name.replace("_", "-"): hints[f.name]
            for f in dataclasses.fields(cls)
            if f.metadata.get("option", True)
        }

    @classmethod
    def from_options(cls, text: str, **defaults: Any) -> ModulePass:
        """Builds the pass from ``"key=value key2=v1,v2"``; ``defaults`` fill the rest."""
        known = cls.options()
        values: dict[str, Any] = {}
        for item in text.split():
            key, eq, raw = item.partition("=")
            if key not in known:
                valid = ", ".join(known) or "(none)"
                raise ByocError(f"pass {cls.NAME} has no option '{key}'; options: {valid}")
            typ = known[key]
            if not eq and typ is not bool:
                raise ByocError(f"pass {cls.NAME}: option '{key}' needs a value ({key}=...)")
            values[key.replace("-", "_")] = _parse_value(cls.NAME, key, typ, raw if eq else "true")
        fields = {f.name for f in dataclasses.fields(cls) if f.metadata.get("option", True)}
        for name, value in defaults.items():
            if name in fields and name not in values:
                values[name] = value
        return cls(**values)


def _parse_value(pass_name: str, key: str, typ: Any, raw: str) -> Any:
    try:
        if typ is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if typ is int:
            return int(raw)
        if typ is float:
            return float(raw)
        if typ is str:
            return raw
        if typing.get_origin(typ) is tuple:
            return tuple(x for x in raw.split(",") if x)
    except ValueError:
        pass
    raise ByocError(f"pass {pass_name}: option '{key}' expects {_type_name(typ)}, got '{raw}'")


def _type_name(typ: Any) -> str:
    if typing.get_origin(typ) is tuple:
        return "a comma-separated list"
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(
        typ, str(typ)
    )
