"""A fuzz `Graph` written as linalg-on-tensors, TOSA, or an ONNX model.

Every family computes what `graphs.evaluate` computes: the same element type, the same
broadcasting (numpy's: trailing dimensions aligned), convolution NHWC with HWCF weights
(ONNX: transposed to NCHW around a ``Conv``), reductions without kept dimensions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from byoc_mlir.fuzz.graphs import Graph, Val

FAMILIES = ("linalg", "tosa", "onnx")


def emit(g: Graph, family: str) -> Any:
    """MLIR text (``linalg``, ``tosa``) or an ``onnx.ModelProto`` (``onnx``)."""
    if family == "linalg":
        return _Linalg(g).text()
    if family == "tosa":
        return _Tosa(g).text()
    if family == "onnx":
        return onnx_model(g)
    raise ValueError(f"unknown family {family!r}; valid: {', '.join(FAMILIES)}")


def tensor(shape: tuple[int, ...], et: str) -> str:
    return f"tensor<{''.join(f'{d}x' for d in shape)}{et}>"


def _dense(g: Graph, v: Val) -> str:
    if g.dtype == "i32":
        items = [str(int(x)) for x in v.data]
    else:
        items = [repr(float(x)) for x in v.data]
    if not v.shape:
        return f"dense<{items[0]}>"
    return f"dense<{np.array(items, dtype=object).reshape(v.shape).tolist()}>".replace("'", "")


def _amap(n: int, dims: list[int | None]) -> str:
    ds = ", ".join(f"d{i}" for i in range(n))
    return f"affine_map<({ds}) -> ({', '.join('0' if d is None else f'd{d}' for d in dims)})>"


class _Text:
    def __init__(self, g: Graph):
        self.g = g
        self.et = g.dtype
        self.lines: list[str] = []
        self.names: dict[int, str] = {}
        self.count = 0

    def fresh(self) -> str:
        self.count += 1
        return f"%t{self.count}"

    def t(self, i: int) -> str:
        return tensor(self.g.values[i].shape, self.et)

    def op(self, name: str, i: int, v: Val) -> list[str]:
        """The lines defining value ``i`` (``v``) as ``name``."""
        raise NotImplementedError  # pragma: no cover - abstract

    def text(self) -> str:
        """The graph as one ``func.func @main``."""
        args = []
        for n, i in enumerate(self.g.args):
            self.names[i] = f"%arg{n}"
            args.append(f"%arg{n}: {self.t(i)}")
        for i, v in enumerate(self.g.values):
            if v.kind != "arg":
                self.names[i] = self.fresh()
                self.lines.extend(self.op(self.names[i], i, v))
        results = ", ".join(self.t(i) for i in self.g.outputs)
        outs = ", ".join(self.names[i] for i in self.g.outputs)
        body = "\n".join(f"  {ln}" for ln in self.lines)
        return (
            f"func.func @main({', '.join(args)}) -> ({results}) {{\n{body}\n"
            f"  return {outs} : {results}\n}}\n"
        )


def _scalar_body(kind: str, et: str, a: str, b: str | None) -> list[str]:
    """Lines computing ``%r`` from ``a`` (and ``b``) inside a generic body."""
    f = et.startswith("f")
    zero = "0.0" if f else "0"
    ops = {
        "add": "arith.addf" if f else "arith.addi",
        "sub": "arith.subf" if f else "arith.subi",
        "mul": "arith.mulf" if f else "arith.muli",
        "max": "arith.maximumf" if f else "arith.maxsi",
    }
    if kind in ops:
        return [f"%r = {ops[kind]} {a}, {b} : {et}"]
    if kind == "relu":
        return [f"%z = arith.constant {zero} : {et}", f"%r = {ops['max']} {a}, %z : {et}"]
    if kind in ("tanh", "exp"):
        return [f"%r = math.{kind} {a} : {et}"]
    if kind == "abs":
        return [f"%r = math.{'absf' if f else 'absi'} {a} : {et}"]
    if kind == "neg":
        if f:
            return [f"%r = arith.negf {a} : {et}"]
        return [f"%z = arith.constant 0 : {et}", f"%r = arith.subi %z, {a} : {et}"]
    raise AssertionError(kind)


class _Linalg(_Text):
    def fill(self, shape: tuple[int, ...]) -> tuple[str, list[str]]:
        e, z, f = self.fresh(), self.fresh(), self.fresh()
        zero = "0.0" if self.et.startswith("f") else "0"
        t = tensor(shape, self.et)
        return f, [
            f"{e} = tensor.empty() : {t}",
            f"{z} = arith.constant {zero} : {self.et}",
            f"{f} = linalg.fill ins({z} : {self.et}) outs({e} : {t}) -> {t}",
        ]

    def op(self, name: str, i: int, v: Val) -> list[str]:
        g, t = self.g, self.t(i)
        if v.kind == "const":
            return [f"{name} = arith.constant {_dense(g, v)} : {t}"]
        xs = [self.names[k] for k in v.inputs]
        if v.kind in ("matmul", "bmm"):
            f, lines = self.fill(v.shape)
            named = "linalg.matmul" if v.kind == "matmul" else "linalg.batch_matmul"
            ts = ", ".join(self.t(k) for k in v.inputs)
            return [*lines, f"{name} = {named} ins({xs[0]}, {xs[1]} : {ts}) outs({f} : {t}) -> {t}"]
        if v.kind == "conv":
            return self.conv(name, v, xs)
        if v.kind == "transpose":
            e = self.fresh()
            perm = ", ".join(map(str, v.attrs))
            return [
                f"{e} = tensor.empty() : {t}",
                f"{name} = linalg.transpose ins({xs[0]} : {self.t(v.inputs[0])}) "
                f"outs({e} : {t}) permutation = [{perm}]",
            ]
        if v.kind == "sum":
            return self.reduce(name, v, xs[0])
        return self.elementwise(name, v, xs)

    def elementwise(self, name: str, v: Val, xs: list[str]) -> list[str]:
        n = len(v.shape)
        maps = []
        for k in v.inputs:
            s = self.g.values[k].shape
            lead = n - len(s)
            maps.append(_amap(n, [None if s[j] == 1 and v.shape[lead + j] != 1 else lead + j
                                  for j in range(len(s))]))  # fmt: skip
        maps.append(_amap(n, list(range(n))))
        e = self.fresh()
        t = tensor(v.shape, self.et)
        ts = ", ".join(self.t(k) for k in v.inputs)
        params = ", ".join(f"%x{j}: {self.et}" for j in range(len(xs)))
        body = _scalar_body(v.kind, self.et, "%x0", "%x1" if len(xs) > 1 else None)
        iters = ", ".join(['"parallel"'] * n)
        return [
            f"{e} = tensor.empty() : {t}",
            f"{name} = linalg.generic {{indexing_maps = [{', '.join(maps)}], "
            f"iterator_types = [{iters}]}} ins({', '.join(xs)} : {ts}) outs({e} : {t}) {{",
            f"^bb0({params}, %o: {self.et}):",
            *[f"  {ln}" for ln in body],
            f"  linalg.yield %r : {self.et}",
            f"}} -> {t}",
        ]

    def reduce(self, name: str, v: Val, x: str) -> list[str]:
        src = self.g.values[v.inputs[0]].shape
        n, axis = len(src), v.attrs[0]
        f, lines = self.fill(v.shape)
        iters = ", ".join('"reduction"' if d == axis else '"parallel"' for d in range(n))
        out_map = _amap(n, [d for d in range(n) if d != axis])
        add = "arith.addf" if self.et.startswith("f") else "arith.addi"
        t = tensor(v.shape, self.et)
        return [
            *lines,
            f"{name} = linalg.generic {{indexing_maps = [{_amap(n, list(range(n)))}, {out_map}], "
            f"iterator_types = [{iters}]}} ins({x} : {tensor(src, self.et)}) outs({f} : {t}) {{",
            f"^bb0(%x0: {self.et}, %o: {self.et}):",
            f"  %r = {add} %x0, %o : {self.et}",
            f"  linalg.yield %r : {self.et}",
            f"}} -> {t}",
        ]

    def conv(self, name: str, v: Val, xs: list[str]) -> list[str]:
        stride, pad, dil = v.attrs
        x, w = xs
        xt = self.g.values[v.inputs[0]].shape
        lines = []
        if pad:
            padded = (xt[0], xt[1] + 2 * pad, xt[2] + 2 * pad, xt[3])
            p = self.fresh()
            zero = "0.0" if self.et.startswith("f") else "0"
            lines += [
                f"{p} = tensor.pad {x} low[0, {pad}, {pad}, 0] high[0, {pad}, {pad}, 0] {{",
                "^bb0(%i0: index, %i1: index, %i2: index, %i3: index):",
                f"  %pz = arith.constant {zero} : {self.et}",
                f"  tensor.yield %pz : {self.et}",
                f"}} : {tensor(xt, self.et)} to {tensor(padded, self.et)}",
            ]
            x, xt = p, padded
        f, fill = self.fill(v.shape)
        t = tensor(v.shape, self.et)
        return [
            *lines,
            *fill,
            f"{name} = linalg.conv_2d_nhwc_hwcf {{dilations = dense<{dil}> : tensor<2xi64>, "
            f"strides = dense<{stride}> : tensor<2xi64>}} ins({x}, {w} : "
            f"{tensor(xt, self.et)}, {self.t(v.inputs[1])}) outs({f} : {t}) -> {t}",
        ]


class _Tosa(_Text):
    """TOSA: binary operands reshaped to the result's rank; matmul as rank-3."""

    def const(self, values: str, t: str, name: str | None = None) -> tuple[str, str]:
        c = name or self.fresh()
        return c, f'{c} = "tosa.const"() <{{values = {values} : {t}}}> : () -> {t}'

    def reshape(
        self, x: str, src: tuple[int, ...], dst: tuple[int, ...], name: str | None = None
    ) -> tuple[str, list[str]]:
        """``x`` reshaped to ``dst`` (named ``name`` if given; no op when ``src == dst``)."""
        if src == dst and name is None:
            return x, []
        s, r = self.fresh(), name or self.fresh()
        dims = ", ".join(map(str, dst))
        return r, [
            f'{s} = "tosa.const_shape"() <{{values = dense<[{dims}]> : '
            f"tensor<{len(dst)}xindex>}}> : () -> !tosa.shape<{len(dst)}>",
            f"{r} = tosa.reshape {x}, {s} : ({tensor(src, self.et)}, !tosa.shape<{len(dst)}>) "
            f"-> {tensor(dst, self.et)}",
        ]

    def zp(self) -> tuple[str, str]:
        zero = "0.0" if self.et.startswith("f") else "0"
        return self.const(f"dense<{zero}>", tensor((1,), self.et))

    def op(self, name: str, i: int, v: Val) -> list[str]:
        g, t, et = self.g, self.t(i), self.et
        if v.kind == "const":
            return [self.const(_dense(g, v), t, name)[1]]
        xs = [self.names[k] for k in v.inputs]
        shapes = [g.values[k].shape for k in v.inputs]
        if v.kind in ("add", "sub", "max", "mul"):
            lines: list[str] = []
            ops = []
            for x, s in zip(xs, shapes, strict=True):
                full = (1,) * (len(v.shape) - len(s)) + s
                r, ls = self.reshape(x, s, full)
                lines += ls
                ops.append((r, tensor(full, et)))
            tosa_op = {"add": "add", "sub": "sub", "max": "maximum", "mul": "mul"}[v.kind]
            operands = f"{ops[0][0]}, {ops[1][0]}"
            types = f"{ops[0][1]}, {ops[1][1]}"
            if v.kind == "mul":
                sh, line = self.const("dense<0>", "tensor<1xi8>")
                lines.append(line)
                operands += f", {sh}"
                types += ", tensor<1xi8>"
            return [*lines, f"{name} = tosa.{tosa_op} {operands} : ({types}) -> {t}"]
        x, xt = xs[0], self.t(v.inputs[0])
        if v.kind in ("tanh", "exp", "abs"):
            return [f"{name} = tosa.{v.kind} {x} : ({xt}) -> {t}"]
        if v.kind == "neg":
            a, la = self.zp()
            b, lb = self.zp()
            z1 = tensor((1,), et)
            return [la, lb, f"{name} = tosa.negate {x}, {a}, {b} : ({xt}, {z1}, {z1}) -> {t}"]
        if v.kind == "relu" and et == "i32":  # TOSA's clamp takes no i32: max with 0
            ones = tensor((1,) * len(v.shape), et)
            z, line = self.const("dense<0>", ones)
            return [line, f"{name} = tosa.maximum {x}, {z} : ({xt}, {ones}) -> {t}"]
        if v.kind == "relu":
            return [f"{name} = tosa.clamp {x} min_val(0.0 : {et}) max_val(3.4e38 : {et}) "
                    f": ({xt}) -> {t}"]  # fmt: skip
        if v.kind == "transpose":
            perm = ", ".join(map(str, v.attrs))
            return [
                f'{name} = "tosa.transpose"({x}) <{{perms = array<i32: {perm}>}}> : ({xt}) -> {t}'
            ]
        if v.kind == "sum":
            axis = v.attrs[0]
            kept = shapes[0][:axis] + (1,) + shapes[0][axis + 1 :]
            red = self.fresh()
            line = (
                f'{red} = "tosa.reduce_sum"({x}) <{{axis = {axis} : i32}}> : ({xt}) -> '
                f"{tensor(kept, et)}"
            )
            return [line, *self.reshape(red, kept, v.shape, name)[1]]
        if v.kind in ("matmul", "bmm"):
            return self.matmul(name, v, xs, shapes)
        if v.kind == "conv":
            return self.conv(name, v, xs, shapes)
        raise AssertionError(v.kind)

    def matmul(self, name: str, v: Val, xs: list[str], shapes: list[tuple[int, ...]]) -> list[str]:
        lines: list[str] = []
        ops = []
        for x, s in zip(xs, shapes, strict=True):
            r, ls = self.reshape(x, s, s if len(s) == 3 else (1, *s))
            lines += ls
            ops.append((r, tensor(s if len(s) == 3 else (1, *s), self.et)))
        a, la = self.zp()
        b, lb = self.zp()
        out3 = v.shape if len(v.shape) == 3 else (1, *v.shape)
        m = name if out3 == v.shape else self.fresh()
        z1 = tensor((1,), self.et)
        lines += [
            la,
            lb,
            f"{m} = tosa.matmul {ops[0][0]}, {ops[1][0]}, {a}, {b} : "
            f"({ops[0][1]}, {ops[1][1]}, {z1}, {z1}) -> {tensor(out3, self.et)}",
        ]
        if m == name:
            return lines
        return [*lines, *self.reshape(m, out3, v.shape, name)[1]]

    def conv(self, name: str, v: Val, xs: list[str], shapes: list[tuple[int, ...]]) -> list[str]:
        stride, pad, dil = v.attrs
        x, w = xs
        kh, kw, c, f = shapes[1]
        ohwi = (f, kh, kw, c)
        p = self.fresh()
        perm_line = (
            f'{p} = "tosa.transpose"({w}) <{{perms = array<i32: 3, 0, 1, 2>}}> : '
            f"({tensor(shapes[1], self.et)}) -> {tensor(ohwi, self.et)}"
        )
        bias, lbias = self.const(
            "dense<0.0>" if self.et.startswith("f") else "dense<0>", tensor((f,), self.et)
        )
        a, la = self.zp()
        b, lb = self.zp()
        z1 = tensor((1,), self.et)
        return [
            perm_line,
            lbias,
            la,
            lb,
            f"{name} = tosa.conv2d {x}, {p}, {bias}, {a}, {b} pad([{pad}, {pad}, {pad}, {pad}]) "
            f"stride([{stride}, {stride}]) dilation([{dil}, {dil}]) acc_type({self.et}) : "
            f"({tensor(shapes[0], self.et)}, {tensor(ohwi, self.et)}, {tensor((f,), self.et)}, "
            f"{z1}, {z1}) -> {tensor(v.shape, self.et)}",
        ]


def onnx_model(g: Graph) -> Any:
    """The graph as an ONNX model (opset 18)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    et = {"f32": TensorProto.FLOAT, "f16": TensorProto.FLOAT16, "i32": TensorProto.INT32}[g.dtype]
    names = {i: f"v{i}" for i in range(len(g.values))}
    inputs, inits, nodes = [], [], []
    for i, v in enumerate(g.values):
        n = names[i]
        if v.kind == "arg":
            inputs.append(helper.make_tensor_value_info(n, et, list(v.shape)))
        elif v.kind == "const":
            inits.append(numpy_helper.from_array(g.const(i), n))
        elif v.kind in ("add", "sub", "mul", "max", "relu", "tanh", "exp", "neg", "abs"):
            op = {"max": "Max"}.get(v.kind, v.kind.capitalize())
            nodes.append(helper.make_node(op, [names[k] for k in v.inputs], [n]))
        elif v.kind in ("matmul", "bmm"):
            nodes.append(helper.make_node("MatMul", [names[k] for k in v.inputs], [n]))
        elif v.kind == "transpose":
            nodes.append(helper.make_node("Transpose", [names[v.inputs[0]]], [n], perm=v.attrs))
        elif v.kind == "sum":
            axes = f"{n}_axes"
            inits.append(numpy_helper.from_array(np.array([v.attrs[0]], np.int64), axes))
            nodes.append(helper.make_node("ReduceSum", [names[v.inputs[0]], axes], [n], keepdims=0))
        elif v.kind == "conv":
            stride, pad, dil = v.attrs
            x, w = (names[k] for k in v.inputs)
            nodes += [
                helper.make_node("Transpose", [x], [f"{n}_x"], perm=[0, 3, 1, 2]),
                helper.make_node("Transpose", [w], [f"{n}_w"], perm=[3, 2, 0, 1]),
                helper.make_node(
                    "Conv",
                    [f"{n}_x", f"{n}_w"],
                    [f"{n}_y"],
                    strides=[stride, stride],
                    pads=[pad] * 4,
                    dilations=[dil, dil],
                ),
                helper.make_node("Transpose", [f"{n}_y"], [n], perm=[0, 2, 3, 1]),
            ]
        else:
            raise AssertionError(v.kind)
    outputs = [
        helper.make_tensor_value_info(names[i], et, list(g.values[i].shape)) for i in g.outputs
    ]
    graph = helper.make_graph(nodes, "fuzz", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
