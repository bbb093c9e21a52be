"""ONNX-level rewrites before IREE's importer: more of ONNX in, by ONNX's own definitions.

IREE 3.13's ONNX lowering lacks some ops that onnxruntime runs (``Attention``,
``RMSNormalization``, ``LinearAttention``, ``SoftmaxCrossEntropyLoss``, ``Range``...),
and it needs shape-determining operands (``axes``, Reshape's ``shape``, Slice's
``starts``) as constants. Three rewrites, each semantics-preserving by ONNX's spec:

- `expand_op`: every node of one op type is replaced by the op's **function body**
  from its ONNX schema (the same expansion that makes the backend tests' ``*_expanded``
  models), when the schema has one. The importer retries with it after a lowering
  failure names that op (`missing_op`), so ops IREE lowers natively keep its lowering.
- `fold_constants`: nodes whose inputs are all constants (initializers, ``Constant``
  nodes, the ``Shape`` of a static tensor) are evaluated with ONNX's reference
  implementation and become initializers — shape arithmetic inside function bodies
  (``Shape → Gather → Range`` feeding ``ReduceMean``'s axes) turns into the constants
  the lowering needs. Only small results (`FOLD_LIMIT` elements) and deterministic ops.
- `bind_inputs`: graph inputs the caller fixes (``CompileOptions.bind_inputs``) become
  initializers; the compiled signature no longer has them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from byoc_mlir.errors import ByocError
from byoc_mlir.frontends.onnx_guards import attr, value_types

FOLD_LIMIT = 4096
"""The largest result (elements) `fold_constants` computes: shape arithmetic, not weights."""

_NONDETERMINISTIC = frozenset(
    {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Bernoulli",
     "Multinomial", "Dropout"}
)  # fmt: skip

_MISSING = re.compile(r"name = \"onnx\.(\w+)\"")


_TORCH_OP = re.compile(r"failed to legalize operation 'torch\.(?:aten\.(\w+)|constant\.\w+)'")

_LOWERED_FROM = {"nll_loss_forward": ("NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss")}
"""torch ops IREE 3.13 leaves unlowered -> the ONNX ops whose import produced them."""

_FRAGILE = ("SoftmaxCrossEntropyLoss", "NegativeLogLikelihoodLoss")
"""ONNX ops whose IREE lowering can leave bare ``torch.constant.*`` ops behind."""


def missing_op(message: str, model: Any = None) -> str | None:
    """The ONNX op a lowering failure names (``... <{name = "onnx.Attention"}> ...``).

    With ``model``, also the ONNX op behind a torch op that did not lower (an
    ``aten.nll_loss_forward`` comes from NegativeLogLikelihoodLoss or
    SoftmaxCrossEntropyLoss), when the model has one.
    """
    if "failed to legalize operation 'torch.operator'" in message:
        found = _MISSING.search(message)
        return found.group(1) if found else None
    torch_op = _TORCH_OP.search(message)
    if torch_op is None or model is None:
        return None
    aten = torch_op.group(1)
    candidates = _LOWERED_FROM.get(aten, ()) if aten else _FRAGILE
    present = {n.op_type for n in model.graph.node if n.domain in ("", "ai.onnx")}
    return next((op for op in candidates if op in present), None)


def has_function(model: Any, op_type: str) -> bool:
    """Whether ``op_type`` (default domain) has a function body at the model's opset."""
    schema = _schema(model, op_type)
    return schema is not None and bool(
        schema.function_opset_versions or schema.context_dependent_function_opset_versions
    )


def expand_op(model: Any, op_type: str) -> Any:
    """A copy of ``model`` whose ``op_type`` nodes are replaced by their function bodies.

    Raises:
        ByocError: a node of that op has no function body at the model's opset.
    """
    import onnx
    from onnx.backend.test.case.node import function_testcase_helper

    model = _copy(model)
    opset = _opset(model)
    types = value_types(model)
    graph = model.graph
    nodes = list(graph.node)
    graph.ClearField("node")
    extra_opsets: dict[str, int] = {}
    for index, node in enumerate(nodes):
        if node.op_type != op_type or node.domain not in ("", "ai.onnx"):
            graph.node.append(node)
            continue
        input_types = [types.get(name, onnx.TypeProto()) for name in node.input]
        versions, _ = function_testcase_helper(
            node, input_types, f"n{index}", opset_imports=list(model.opset_import)
        )
        usable = [(body, imports) for body, imports in versions if _version(imports) <= opset]
        if not usable:
            raise ByocError(f"ONNX {op_type} has no function body at opset {opset}")
        body, imports = max(usable, key=lambda v: _version(v[1]))
        graph.node.extend(body)
        for entry in imports:
            if entry.domain not in ("", "ai.onnx"):
                extra_opsets[entry.domain] = max(extra_opsets.get(entry.domain, 0), entry.version)
    _toposort(graph)  # some function bodies list a node before what it reads
    known = {o.domain for o in model.opset_import}
    for domain, version in extra_opsets.items():
        if domain not in known:
            model.opset_import.append(onnx.helper.make_opsetid(domain, version))
    return model


def _toposort(graph: Any) -> None:
    """Orders ``graph.node`` so every node follows the producers of its inputs (stable)."""
    produced_by = {out: k for k, n in enumerate(graph.node) for out in n.output if out}
    order: list[int] = []
    state: dict[int, int] = {}  # 1: on the stack, 2: placed
    for root in range(len(graph.node)):
        stack = [(root, False)]
        while stack:
            k, done = stack.pop()
            if done:
                state[k] = 2
                order.append(k)
                continue
            if state.get(k):
                continue
            state[k] = 1
            stack.append((k, True))
            for name in reversed(_reads(graph.node[k])):
                p = produced_by.get(name)
                if p is not None and not state.get(p):
                    stack.append((p, False))
    nodes = [graph.node[k] for k in order]
    graph.ClearField("node")
    graph.node.extend(nodes)


def _reads(node: Any) -> list[str]:
    """A node's inputs, and the outer values its subgraphs (If, Loop, Scan) read."""
    names = list(node.input)
    for attribute in node.attribute:
        graphs = [attribute.g] if attribute.type == attribute.GRAPH else attribute.graphs
        for sub in graphs:
            for inner in sub.node:
                names.extend(_reads(inner))
    return names


def bind_inputs(model: Any, values: Mapping[str, np.ndarray], name: str) -> Any:
    """A copy of ``model`` whose inputs named in ``values`` are initializers with them."""
    from onnx import numpy_helper

    inputs = {i.name: i for i in model.graph.input}
    unknown = sorted(set(values) - set(inputs))
    if unknown:
        raise ByocError(
            f"{name}: bind_inputs names {', '.join(unknown)}, which the model does not "
            f"take (its inputs: {', '.join(inputs) or '(none)'})"
        )
    model = _copy(model)
    kept = [i for i in model.graph.input if i.name not in values]
    model.graph.ClearField("input")
    model.graph.input.extend(kept)
    model.graph.initializer.extend(
        numpy_helper.from_array(np.asarray(v), k) for k, v in values.items()
    )
    return model


def fold_constants(model: Any) -> Any:
    """A copy of ``model`` with small all-constant nodes evaluated into initializers."""
    from onnx import numpy_helper

    known = {t.name: t for t in model.graph.initializer}
    shapes = _static_shapes(model)
    values: dict[str, np.ndarray] = {}
    folded: list[int] = []
    for index, node in enumerate(model.graph.node):
        result = _evaluate(model, node, known, values, shapes)
        if result is None:
            continue
        values.update(result)
        folded.append(index)
    if not folded:
        return model
    model = _copy(model)
    outputs = {o.name for o in model.graph.output}
    nodes = [n for i, n in enumerate(model.graph.node) if i not in set(folded)]
    used = {name for n in nodes for name in _reads(n)} | outputs
    model.graph.ClearField("node")
    model.graph.node.extend(nodes)
    model.graph.initializer.extend(
        numpy_helper.from_array(v, k) for k, v in values.items() if k in used
    )
    return model


def _evaluate(
    model: Any,
    node: Any,
    known: Mapping[str, Any],
    values: Mapping[str, np.ndarray],
    shapes: Mapping[str, tuple[int, ...]],
) -> dict[str, np.ndarray] | None:
    from onnx import numpy_helper

    if node.domain not in ("", "ai.onnx") or node.op_type in _NONDETERMINISTIC:
        return None
    outer: list[str] = []
    if any(a.type in (a.GRAPH, a.GRAPHS) for a in node.attribute):
        # If/Loop/Scan: folded when their bodies read only constants from outside
        # (a Loop computing Range over constant bounds) and a Loop's trip count is small
        outer = sorted(_outer_reads(node))
        if node.op_type == "Loop" and not (node.input and node.input[0]):
            return None  # no trip count: runs until its condition says so
        if any(n not in values and n not in known for n in outer):
            return None
    if node.op_type in ("Shape", "Size") and node.input and node.input[0] in shapes:
        shape = np.array(shapes[node.input[0]], np.int64)
        if node.op_type == "Size":
            return {node.output[0]: np.array(np.prod(shape), np.int64)}
        start = int(attr(node, "start", 0))
        end = int(attr(node, "end", len(shape)))
        return {node.output[0]: shape[start:end]}
    args: list[np.ndarray | None] = []
    for name in node.input:
        if name == "":
            args.append(None)
        elif name in values:
            args.append(values[name])
        elif name in known and known[name].data_location != known[name].EXTERNAL:
            if int(np.prod(known[name].dims)) > FOLD_LIMIT:
                return None
            args.append(numpy_helper.to_array(known[name]))
        else:
            return None
    if node.op_type != "Constant" and not node.input:
        return None  # e.g. a generator with no inputs other than Constant
    if any(a is not None and a.size > FOLD_LIMIT for a in args):
        return None
    if node.op_type == "Loop" and (args[0] is None or int(args[0].reshape(-1)[0]) > FOLD_LIMIT):
        return None
    try:
        if outer:
            closure = {
                n: values[n] if n in values else numpy_helper.to_array(known[n]) for n in outer
            }
            outputs = _run_with_closure(model, node, args, closure)
        else:
            outputs = _run_node(model, node, args)
    except Exception:  # noqa: BLE001 - the reference cannot evaluate it: leave the node
        return None
    if any(not isinstance(o, np.ndarray) or o.size > FOLD_LIMIT for o in outputs):
        return None
    result = {}
    for name, o in zip(node.output, outputs, strict=False):
        want = shapes.get(name)
        if want is not None and o.shape != want:
            # the reference's Loop stacks scalar scan outputs as [n, 1]; shape
            # inference (the spec) says [n]: the same values, the declared shape
            if o.size != int(np.prod(want)):
                return None
            o = o.reshape(want)
        if name:
            result[name] = o
    return result


def _run_node(model: Any, node: Any, args: list[np.ndarray | None]) -> list[Any]:
    import onnx
    from onnx.reference import ReferenceEvaluator

    inputs = [f"i{k}" for k in range(len(args))]
    renamed = onnx.NodeProto()
    renamed.CopyFrom(node)
    renamed.ClearField("input")
    renamed.input.extend("" if a is None else inputs[k] for k, a in enumerate(args))
    feeds = {inputs[k]: a for k, a in enumerate(args) if a is not None}
    evaluator = ReferenceEvaluator(
        renamed, opsets={o.domain: o.version for o in model.opset_import}
    )
    return list(evaluator.run(None, feeds))


def _run_with_closure(
    model: Any, node: Any, args: list[np.ndarray | None], closure: Mapping[str, np.ndarray]
) -> list[Any]:
    """Evaluates a node whose subgraphs read outer values: a one-node model with its
    inputs and those values as initializers."""
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    given = {name: a for name, a in zip(node.input, args, strict=True) if a is not None}
    given.update(closure)
    graph = helper.make_graph(
        [node],
        "fold",
        [],
        [helper.make_empty_tensor_value_info(o) for o in node.output if o],
        [numpy_helper.from_array(np.asarray(a), name) for name, a in given.items()],
    )
    evaluator = ReferenceEvaluator(helper.make_model(graph, opset_imports=list(model.opset_import)))
    return list(evaluator.run(None, {}))


def _outer_reads(node: Any) -> set[str]:
    """Values a node's subgraphs read from outside them (not defined in them)."""
    names: set[str] = set()
    for attribute in node.attribute:
        graphs = [attribute.g] if attribute.type == attribute.GRAPH else attribute.graphs
        for sub in graphs:
            defined = {i.name for i in sub.input} | {i.name for i in sub.initializer}
            defined |= {o for n in sub.node for o in n.output}
            for inner in sub.node:
                names |= {n for n in inner.input if n} - defined
                names |= _outer_reads(inner) - defined
    return names


def _static_shapes(model: Any) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for info in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        t = info.type.tensor_type
        if not info.type.HasField("tensor_type") or not t.HasField("shape"):
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        if all(d is not None for d in dims):
            shapes[info.name] = tuple(int(d) for d in dims)  # type: ignore[arg-type]
    for init in model.graph.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes


def _schema(model: Any, op_type: str) -> Any:
    import onnx

    try:
        return onnx.defs.get_schema(op_type, _opset(model), "")
    except onnx.defs.SchemaError:
        return None


def _opset(model: Any) -> int:
    return _version(model.opset_import) or 1


def _version(imports: Any) -> int:
    for entry in imports:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 0


def prune_initializers(model: Any) -> None:
    """Drops the initializers no node (nor a graph output) reads, in place: a rewrite
    leaves the operands of the nodes it replaced, and IREE's lowering does not always
    manage an unused constant (a rank-0 ``si32`` literal)."""
    used = {name for n in model.graph.node for name in _reads(n)}
    used |= {o.name for o in model.graph.output}
    kept = [i for i in model.graph.initializer if i.name in used]
    if len(kept) != len(model.graph.initializer):
        model.graph.ClearField("initializer")
        model.graph.initializer.extend(kept)


def _copy(model: Any) -> Any:
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy
