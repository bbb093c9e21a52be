"""Zoo models from the ONNX model-zoo structures the ``onnx`` package ships.

``onnx/backend/test/data/light/`` holds ResNet-50, SqueezeNet, ... at opset 9 with every
weight a constant 0.02 (produced by ``ConstantOfShape`` nodes or stored as initialisers).
For meaningful numerics each weight becomes a seeded random initialiser chosen by its
role (He-scaled conv and Gemm weights, small biases, BatchNorm scale/shift/statistics
around identity), the weights leave the graph inputs, and the model is upgraded to
opset 17. The file is written to the caller's work directory; onnxruntime's output on
the seeded input is the reference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from byoc_mlir.zoo import Instance

SEED = 0
OPSET = 17


def light_model_path(name: str) -> Path:
    """The path of ``light_<name>.onnx`` inside the installed onnx package."""
    import onnx

    return Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / f"light_{name}.onnx"


def _random_weight(role: tuple[str, int], dims: list[int], rng: np.random.Generator) -> Any:
    op, slot = role
    if op == "Conv" and slot == 1 or op == "Gemm" and slot == 1:
        fan_in = int(np.prod(dims[1:]))
        scale = np.sqrt(2.0 / fan_in) if op == "Conv" else np.sqrt(1.0 / fan_in)
        return rng.standard_normal(dims) * scale
    if op == "BatchNormalization" and slot == 1:  # scale
        return rng.uniform(0.5, 1.0, dims)
    if op == "BatchNormalization" and slot == 4:  # running variance
        return rng.uniform(0.5, 1.5, dims)
    return rng.standard_normal(dims) * 0.05  # biases, shifts, running means


ROLES = {("Conv", 1), ("Conv", 2), ("Gemm", 1), ("Gemm", 2)} | {
    ("BatchNormalization", k) for k in range(1, 5)
}
"""(op type, input slot) pairs that hold float weights to randomise."""


def randomised(model: Any, seed: int = SEED, opset: int = OPSET) -> Any:
    """A copy of a light model with seeded random weights as initialisers, at ``opset``."""
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    made_by = {n.output[0]: n for n in graph.node if n.op_type == "ConstantOfShape"}
    roles: dict[str, tuple[str, int]] = {}
    for node in graph.node:
        for slot, name in enumerate(node.input):
            if (node.op_type, slot) in ROLES and (name in inits or name in made_by):
                roles.setdefault(name, (node.op_type, slot))
    rng = np.random.default_rng(seed)
    weights = []
    for name, role in roles.items():  # node order: deterministic
        if name in made_by:
            dims = [int(d) for d in numpy_helper.to_array(inits[made_by[name].input[0]])]
        else:
            dims = list(inits[name].dims)
        array = _random_weight(role, dims, rng).astype(np.float32)
        weights.append(numpy_helper.from_array(array, name))
    nodes = [n for n in graph.node if not (n.op_type == "ConstantOfShape" and n.output[0] in roles)]
    used = {x for n in nodes for x in n.input}
    kept = [t for t in graph.initializer if t.name in used and t.name not in roles]
    initialisers = [*kept, *weights]
    # IR version 3 (these models) lists initialisers among the graph inputs, and the
    # version converter insists on it; they leave the inputs after the upgrade.
    names = {t.name for t in initialisers}
    listed = [i for i in graph.input if i.name not in inits]
    listed += [helper.make_tensor_value_info(t.name, t.data_type, t.dims) for t in initialisers]
    new_graph = helper.make_graph(nodes, graph.name, listed, list(graph.output), initialisers)
    new = helper.make_model(new_graph, opset_imports=list(model.opset_import))
    new.ir_version = model.ir_version
    new = onnx.version_converter.convert_version(new, opset)
    data_inputs = [i for i in new.graph.input if i.name not in names]
    del new.graph.input[:]
    new.graph.input.extend(data_inputs)
    new.ir_version = 8  # the IR version of opset 17
    onnx.checker.check_model(new)
    return new


def light_instance(name: str, work_dir: Path, seed: int = SEED) -> Instance:
    """Writes ``<name>.onnx`` (randomised, opset 17) to ``work_dir``; onnxruntime reference."""
    import onnx
    import onnxruntime

    model = randomised(onnx.load(str(light_model_path(name))), seed)
    path = work_dir / f"{name}.onnx"
    onnx.save(model, str(path))
    rng = np.random.default_rng(seed)
    feeds = {}
    for value in model.graph.input:
        dims = [d.dim_value for d in value.type.tensor_type.shape.dim]
        feeds[value.name] = rng.standard_normal(dims).astype(np.float32)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 2
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    expected = [np.asarray(o) for o in session.run(None, feeds)]
    return Instance(path, list(feeds.values()), expected)


def squeezenet(work_dir: Path) -> Instance:
    return light_instance("squeezenet", work_dir)


def resnet50(work_dir: Path) -> Instance:
    return light_instance("resnet50", work_dir)


def inception_v1(work_dir: Path) -> Instance:
    return light_instance("inception_v1", work_dir)
