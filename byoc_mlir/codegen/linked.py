"""The linked route: vendor kernels run inside IREE dispatches.

An outlined function ``@npu.main_0`` keeps its signature; its body becomes one
``flow.dispatch`` per `Kernel` into a ``stream.executable`` whose object (the built vendor
code) is linked through ``hal.import.static`` + ``llvm.bareptr`` functions. Each binding
reaches the kernel as (base pointer, element offset); the kernel also receives its
workgroup id and count (see `byoc_mlir.codegen.hook`). IREE inlines the wrapper when
compilation resumes at the input phase, so vendor code runs in IREE's scheduler with no
Python at run time. The object must be keyed by a config-less executable target (a key
with a config dictionary is silently ignored by IREE 3.13).

Dynamic dimensions: the function reads each size its kernels take (`Kernel.sizes`) with
``tensor.dim`` of its inputs and passes them to the dispatches as ``index`` operands;
IREE turns those into push constants, the entry functions receive them, size the
bindings' memrefs with them and pass them on to the kernel as ``size_t`` arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from iree.compiler import ir

from byoc_mlir import _compat
from byoc_mlir.codegen.hook import Kernel, LinkedArtifact, RegionView, TensorSpec, ValueRef
from byoc_mlir.dialects import byoc

TARGET = '#hal.executable.target<"llvm-cpu", "embedded-elf-x86_64">'


def _memref(spec: TensorSpec) -> str:
    dims = "x".join("?" if d is None else str(d) for d in spec.shape)
    return f"memref<{dims}x{spec.dtype}>" if spec.shape else f"memref<{spec.dtype}>"


def _dynamic(spec: TensorSpec, sizes: Sequence[str]) -> str:
    """``{%a, %b}``: the SSA sizes of ``spec``'s dynamic dims (``sizes`` per dim), or ''."""
    names = [s for d, s in zip(spec.shape, sizes, strict=True) if d is None]
    return "{" + ", ".join(names) + "}" if names else ""


def _binding(i: int, spec: TensorSpec, sizes: Sequence[str]) -> tuple[list[str], str, str]:
    """Lines that turn binding ``i`` into (base, offset) values; returns their names."""
    rank = len(spec.shape)
    mem = _memref(spec) + _dynamic(spec, sizes)
    results = f"%base{i}, %off{i}"
    types = f"memref<{spec.dtype}>, index"
    if rank:
        results += f", %sizes{i}:{rank}, %strides{i}:{rank}"
        types += ", index" * (2 * rank)
    plain = _memref(spec)
    lines = [
        f"      %view{i} = stream.binding.subspan %b{i}[%c0] : !stream.binding -> {mem}",
        f"      {results} = iree_codegen.extract_strided_metadata %view{i} : {plain} -> {types}",
    ]
    return lines, f"%base{i}", f"%off{i}"


def _kernel_entry(
    kernel: Kernel, arg_specs: list[TensorSpec], dims: list[list[tuple[int, int] | None]]
) -> tuple[str, str]:
    """(export op, (declaration + entry function)) text for one kernel; ``dims``: the
    (input, axis) of each operand's then each result's dims (None for static ones)."""
    specs = arg_specs + kernel.results
    own = {size: f"%s{j}" for j, size in enumerate(kernel.sizes)}
    spec_sizes = [[own.get(d, "") if d else "" for d in row] for row in dims]
    export = (
        f"  stream.executable.export public @{kernel.symbol}_entry workgroups() -> "
        f"(index, index, index) {{\n"
        f"    %wg = arith.constant {kernel.workgroups} : index\n"
        f"    %one = arith.constant 1 : index\n"
        f"    stream.return %wg, %one, %one : index, index, index\n"
        f"  }}\n"
    )
    decl_types = [t for s in specs for t in (f"memref<{s.dtype}>", "index")]
    decl_types += ["index"] * (len(kernel.sizes) + 2)
    params = [f"%b{i}: !stream.binding" for i in range(len(specs))]
    params += [f"%s{j}: index" for j in range(len(kernel.sizes))]
    lines = [
        f"    func.func private @{kernel.symbol}({', '.join(decl_types)}) "
        f"attributes {{hal.import.static, llvm.bareptr = true}}",
        f"    func.func @{kernel.symbol}_entry({', '.join(params)}) {{",
        "      %c0 = arith.constant 0 : index",
    ]
    call_args: list[str] = []
    for i, (spec, sizes) in enumerate(zip(specs, spec_sizes, strict=True)):
        body, base, off = _binding(i, spec, sizes)
        lines += body
        call_args += [base, off]
    call_args += [f"%s{j}" for j in range(len(kernel.sizes))]
    lines += [
        "      %wgid = stream.dispatch.workgroup.id[0] : index",
        "      %wgcount = stream.dispatch.workgroup.count[0] : index",
        f"      call @{kernel.symbol}({', '.join(call_args + ['%wgid', '%wgcount'])}) : "
        f"({', '.join(decl_types)}) -> ()",
        "      return",
        "    }",
    ]
    return export, "\n".join(lines)


def rewrite(
    module_op: ir.Operation, func: ir.Operation, view: RegionView, art: LinkedArtifact, obj: Path
) -> None:
    """Replaces ``func``'s body by dispatches into an executable linking ``obj``."""
    flavor = _compat.FLAVORS[func.name]
    exe = f"{view.symbol}_exe"
    refs: dict[ValueRef, tuple[str, TensorSpec]] = {
        ValueRef.arg(i): (f"%arg{i}", spec) for i, spec in enumerate(view.inputs)
    }
    dims: dict[ValueRef, list[tuple[int, int] | None]] = {
        ValueRef.arg(i): [(i, a) if d is None else None for a, d in enumerate(spec.shape)]
        for i, spec in enumerate(view.inputs)
    }
    exports: list[str] = []
    entries: list[str] = []
    body: list[str] = []
    read: dict[tuple[int, int], str] = {}  # the sizes read so far: (input, axis) -> SSA

    def size(d: tuple[int, int]) -> str:
        if d not in read:
            read[d] = f"%d{d[0]}_{d[1]}"
            body.append(f"    %a{d[0]}_{d[1]} = arith.constant {d[1]} : index")
            body.append(
                f"    {read[d]} = tensor.dim %arg{d[0]}, %a{d[0]}_{d[1]} : {view.inputs[d[0]].mlir}"
            )
        return read[d]

    def typed(spec: TensorSpec, where: list[tuple[int, int] | None]) -> str:
        return spec.mlir + _dynamic(spec, [size(d) if d else "" for d in where])

    for k, kernel in enumerate(art.kernels):
        args = [refs[a] for a in kernel.args]
        result_sizes = kernel.result_sizes or [[None] * len(r.shape) for r in kernel.results]
        arg_dims = [dims[a] for a in kernel.args]
        export, entry = _kernel_entry(kernel, [s for _, s in args], arg_dims + result_sizes)
        exports.append(export)
        entries.append(entry)
        names = f"%k{k}" if len(kernel.results) == 1 else f"%k{k}:{len(kernel.results)}"
        operands = [n for n, _ in args] + [size(d) for d in kernel.sizes]
        types = [typed(s, dims[a]) for a, (_, s) in zip(kernel.args, args, strict=True)]
        types += ["index"] * len(kernel.sizes)
        result_types = ", ".join(
            typed(r, w) for r, w in zip(kernel.results, result_sizes, strict=True)
        )
        if len(kernel.results) > 1:
            result_types = f"({result_types})"
        body.append(
            f"    {names} = flow.dispatch @{exe}::@{kernel.symbol}_entry("
            f"{', '.join(operands)}) : ({', '.join(types)}) -> {result_types}"
        )
        for r, spec in enumerate(kernel.results):
            name = f"%k{k}" if len(kernel.results) == 1 else f"%k{k}#{r}"
            refs[ValueRef.kernel(k, r)] = (name, spec)
            dims[ValueRef.kernel(k, r)] = list(result_sizes[r])
    outs = [refs[o] for o in art.outputs]
    body.append(
        f"    {flavor.ret} {', '.join(n for n, _ in outs)} : {', '.join(s.mlir for _, s in outs)}"
        if outs
        else f"    {flavor.ret}"
    )
    signature = ", ".join(f"%arg{i}: {s.mlir}" for i, s in enumerate(view.inputs))
    results = ", ".join(s.mlir for s in view.outputs)
    text = "\n".join(
        [
            "module {",
            f"  stream.executable private @{exe} attributes {{hal.executable.objects = "
            f"#hal.executable.objects<{{{TARGET} = [#hal.executable.object<{{path = "
            f'"{_escape(str(obj))}"}}>]}}>}} {{',
            *exports,
            "  builtin.module {",
            *entries,
            "  }",
            "  }",
            f'  {flavor.func} private @"{view.name}"({signature}) -> ({results}) {{',
            *body,
            "  }",
            "}",
        ]
    )
    _splice(module_op, func, text)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _splice(module_op: ir.Operation, func: ir.Operation, text: str) -> None:
    """Parses ``text`` (executables + one function replacing ``func``) into the module."""
    new = ir.Module.parse(text, context=module_op.context)
    new_ops = [o.operation for o in new.body.operations]
    replacement = new_ops[-1]
    for name in (byoc.TARGET, byoc.REGION, byoc.COMPOSITES):
        if name in func.attributes:
            replacement.attributes[name] = func.attributes[name]
    for op in new_ops:
        op.move_before(func)
    func.erase()
