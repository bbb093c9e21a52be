"""Every zoo model compiles host-only, with each reference backend and with ``dnnl``
(oneDNN), runs, and matches its framework's reference output within the entry's stated
tolerance.

The heavy entries (ResNet-50, BERT, ResNet-18, MobileNetV2) are marked slow and left out
of the default run: ``python -m pytest -m slow test/python`` runs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from byoc_mlir import CompileOptions, compile, frontends, zoo

BACKENDS = ["none", "ccompiler", "jsonrt", "dnnl"]
OPTIONS = CompileOptions(cache_dir=None)


@dataclass
class Built:
    instance: zoo.Instance
    source: frontends.Source


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    return {}


def build(name: str, cache: dict[str, Built], tmp: pytest.TempPathFactory) -> Built:
    """Builds an entry and runs its frontend once per test module (every backend uses it)."""
    if name not in cache:
        inst = zoo.get(name).build(tmp.mktemp(name))
        cache[name] = Built(inst, frontends.load(inst.model, inst.example_inputs))
    return cache[name]


CASES = [
    pytest.param(name, backend, marks=[pytest.mark.slow] if entry.slow else [])
    for name, entry in zoo.ENTRIES.items()
    for backend in BACKENDS
]


@pytest.mark.parametrize(("name", "backend"), CASES)
def test_zoo_model_matches_its_reference(
    name: str,
    backend: str,
    built: dict[str, Built],
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:
    entry = zoo.get(name)
    b = build(name, built, tmp_path_factory)
    c = compile(b.source.data, [backend], out_dir=tmp_path / "bundle", options=OPTIONS)
    regions = c.report.get("regions", [])
    if backend != "none":
        offloaded = [r for r in regions if r["status"] == "offloaded"]
        assert offloaded, f"{name}: nothing offloaded to {backend}: {regions}"
        assert all(r["backend"] == backend for r in offloaded)
    entry.check(c(*b.instance.inputs), b.instance.expected)
    c.close()


def test_unknown_zoo_entry_lists_the_known_ones() -> None:
    with pytest.raises(Exception, match="no zoo model 'alexnet'; known: mlp, cnn"):
        zoo.get("alexnet")
