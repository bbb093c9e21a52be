"""A model zoo for tests and benchmarks: real architectures, built offline from code.

Every entry builds its model (seeded random weights, nothing downloaded), seeded
inputs, and a reference output from the framework itself (torch, or onnxruntime for
ONNX models), and states the tolerance a compiled build must meet against that
reference::

    from byoc_mlir import zoo
    entry = zoo.get("cnn")
    inst = entry.build(work_dir)              # model + inputs + reference outputs
    compiled = inst.compile(["ccompiler"])    # byoc_mlir.compile with the right inputs
    entry.check(compiled(*inst.inputs), inst.expected)   # raises if out of tolerance

| entry | frontend | what |
|---|---|---|
| ``mlp`` | torch | 3 Linear layers with ReLU |
| ``cnn`` | torch | conv-BN-ReLU-pool twice, global average pool, Linear |
| ``transformer`` | torch | ``nn.TransformerEncoderLayer`` (d=64, 4 heads) |
| ``squeezenet`` | onnx | SqueezeNet 1.0 (the onnx package's model-zoo structure) |
| ``resnet50`` | onnx | ResNet-50 (the onnx package's model-zoo structure); slow |
| ``bert_tiny`` | torch | HF ``transformers`` BERT, 2 layers, hidden 128, from a config; slow |
| ``resnet18`` | torch | HF ``transformers`` ResNet-18 from a config; slow |
| ``mobilenet_v2`` | torch | HF ``transformers`` MobileNetV2 (default config); slow |
| ``bert_mini`` | torch | HF ``transformers`` BERT, 4 layers, hidden 256, seq 128; slow |

torch, onnx, onnxruntime and transformers are imported only by the entries that use
them (they are test dependencies, not the package's).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from byoc_mlir.errors import ByocError


@dataclass
class Instance:
    """One built zoo model.

    Attributes:
        model: what `byoc_mlir.compile` takes: a ``torch.nn.Module`` or an ``.onnx`` path.
        inputs: seeded inputs (numpy), in the compiled signature's order.
        expected: the framework's outputs on ``inputs`` (torch or onnxruntime).
        example_inputs: a torch model's export inputs (None for ONNX models).
    """

    model: object
    inputs: list[np.ndarray]
    expected: list[np.ndarray]
    example_inputs: tuple[Any, ...] | None = None

    def compile(self, backends: Sequence[str], **kwargs: Any) -> Any:
        """`byoc_mlir.compile` on this model (``kwargs``: ``out_dir``, ``options``)."""
        from byoc_mlir.driver import compile

        return compile(self.model, backends, example_inputs=self.example_inputs, **kwargs)


@dataclass(frozen=True)
class ZooEntry:
    """A zoo model: how to build it and how close a compiled build must come.

    Attributes:
        name: the entry's name (``zoo.get(name)``).
        frontend: ``"torch"`` or ``"onnx"``.
        description: one line.
        builder: ``work_dir -> Instance`` (ONNX entries write their model file there).
        tolerance: a compiled output ``y`` matches the reference ``r`` when
            ``|y - r| <= tolerance * (1 + |r|)`` elementwise (absolute and relative).
        slow: heavy to compile (excluded from the default test run).
    """

    name: str
    frontend: str
    description: str
    builder: Callable[[Path], Instance] = field(repr=False)
    tolerance: float = 1e-4
    slow: bool = False

    def build(self, work_dir: str | Path) -> Instance:
        """Builds the model, its inputs and the reference outputs (seeded)."""
        work_dir = Path(work_dir)
        work_dir.mkdir(parents=True, exist_ok=True)
        return self.builder(work_dir)

    def max_error(self, outputs: Sequence[np.ndarray], expected: Sequence[np.ndarray]) -> float:
        """The largest absolute difference over all outputs."""
        if len(outputs) != len(expected):
            raise ByocError(f"{self.name}: {len(outputs)} outputs, expected {len(expected)}")
        return max(
            float(np.max(np.abs(np.asarray(o, np.float64) - np.asarray(e, np.float64))))
            for o, e in zip(outputs, expected, strict=True)
        )

    def check(self, outputs: Sequence[np.ndarray], expected: Sequence[np.ndarray]) -> float:
        """Returns the max abs error; raises AssertionError past the tolerance."""
        error = self.max_error(outputs, expected)
        for k, (o, e) in enumerate(zip(outputs, expected, strict=True)):
            np.testing.assert_allclose(
                o, e, rtol=self.tolerance, atol=self.tolerance, err_msg=f"{self.name} output {k}"
            )
        return error


def _entries() -> dict[str, ZooEntry]:
    from byoc_mlir.zoo import hf_models, onnx_models, torch_models

    entries = [
        ZooEntry("mlp", "torch", "3 Linear layers with ReLU", torch_models.mlp, 1e-5),
        ZooEntry("cnn", "torch", "conv-BN-ReLU-pool x2, avg pool, Linear", torch_models.cnn, 1e-5),
        ZooEntry(
            "transformer",
            "torch",
            "nn.TransformerEncoderLayer d=64, 4 heads, ffn 128",
            torch_models.transformer,
            1e-4,
        ),
        ZooEntry("squeezenet", "onnx", "SqueezeNet 1.0 (onnx)", onnx_models.squeezenet, 1e-5),
        ZooEntry("resnet50", "onnx", "ResNet-50 (onnx)", onnx_models.resnet50, 1e-4, slow=True),
        ZooEntry(
            "inception_v1",
            "onnx",
            "Inception v1 / GoogLeNet (onnx)",
            onnx_models.inception_v1,
            1e-4,
            slow=True,
        ),
        ZooEntry(
            "bert_tiny",
            "torch",
            "HF BERT 2 layers, hidden 128, seq 32",
            hf_models.bert_tiny,
            1e-4,
            slow=True,
        ),
        ZooEntry("resnet18", "torch", "HF ResNet-18", hf_models.resnet18, 1e-4, slow=True),
        ZooEntry(
            "mobilenet_v2", "torch", "HF MobileNetV2", hf_models.mobilenet_v2, 1e-4, slow=True
        ),
        ZooEntry(
            "bert_mini",
            "torch",
            "HF BERT 4 layers, hidden 256, seq 128",
            hf_models.bert_mini,
            1e-4,
            slow=True,
        ),
    ]
    return {e.name: e for e in entries}


ENTRIES: dict[str, ZooEntry] = _entries()
"""Every zoo entry by name, in a fixed order (light ones first)."""


def get(name: str) -> ZooEntry:
    """The entry called ``name``; an unknown name raises and lists the known ones."""
    try:
        return ENTRIES[name]
    except KeyError:
        raise ByocError(f"no zoo model '{name}'; known: {', '.join(ENTRIES)}") from None


__all__ = ["ENTRIES", "Instance", "ZooEntry", "get"]
