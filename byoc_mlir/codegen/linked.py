"""The linked route: vendor kernels run inside IREE dispatches.

An outlined function ``@npu.main_0`` keeps its signature; its body becomes one
``flow.dispatch`` per `Kernel` into a ``stream.executable`` whose object (the built vendor
code) is linked through ``hal.import.static`` + ``llvm.bareptr`` functions. Each binding
reaches the kernel as (base pointer, element offset); the kernel also receives its
workgroup id and count (see `byoc_mlir.codegen.hook`). IREE inlines the wrapper when
compilation resumes at the input phase, so vendor code runs in IREE's scheduler with no
Python at run time. The object must be keyed by a config-less executable target (a key
with a config dictionary is silently ignored by IREE 3.13).
"""

from __future__ import annotations

from pathlib import Path

from iree.compiler import ir

from byoc_mlir import _compat
from byoc_mlir.codegen.hook import Kernel, LinkedArtifact, RegionView, TensorSpec, ValueRef
from byoc_mlir.dialects import byoc

TARGET = '#hal.executable.target<"llvm-cpu", "embedded-elf-x86_64">'


def _memref(spec: TensorSpec) -> str:
    dims = "x".join(str(d) for d in spec.shape)
    return f"memref<{dims}x{spec.dtype}>" if spec.shape else f"memref<{spec.dtype}>"


def _binding(i: int, spec: TensorSpec) -> tuple[list[str], str, str]:
    """Lines that turn binding ``i`` into (base, offset) values; returns their names."""
    rank = len(spec.shape)
    mem = _memref(spec)
    results = f"%base{i}, %off{i}"
    types = f"memref<{spec.dtype}>, index"
    if rank:
        results += f", %sizes{i}:{rank}, %strides{i}:{rank}"
        types += ", index" * (2 * rank)
    lines = [
        f"      %view{i} = stream.binding.subspan %b{i}[%c0] : !stream.binding -> {mem}",
        f"      {results} = iree_codegen.extract_strided_metadata %view{i} : {mem} -> {types}",
    ]
    return lines, f"%base{i}", f"%off{i}"


def _kernel_entry(kernel: Kernel, arg_specs: list[TensorSpec]) -> tuple[str, str]:
    """(export op, (declaration + entry function)) text for one kernel."""
    specs = arg_specs + kernel.results
    export = (
        f"  stream.executable.export public @{kernel.symbol}_entry workgroups() -> "
        f"(index, index, index) {{\n"
        f"    %wg = arith.constant {kernel.workgroups} : index\n"
        f"    %one = arith.constant 1 : index\n"
        f"    stream.return %wg, %one, %one : index, index, index\n"
        f"  }}\n"
    )
    decl_types = [t for s in specs for t in (f"memref<{s.dtype}>", "index")] + ["index", "index"]
    lines = [
        f"    func.func private @{kernel.symbol}({', '.join(decl_types)}) "
        f"attributes {{hal.import.static, llvm.bareptr = true}}",
        f"    func.func @{kernel.symbol}_entry("
        + ", ".join(f"%b{i}: !stream.binding" for i in range(len(specs)))
        + ") {",
        "      %c0 = arith.constant 0 : index",
    ]
    call_args: list[str] = []
    for i, spec in enumerate(specs):
        body, base, off = _binding(i, spec)
        lines += body
        call_args += [base, off]
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
    exports: list[str] = []
    entries: list[str] = []
    body: list[str] = []
    for k, kernel in enumerate(art.kernels):
        args = [refs[a] for a in kernel.args]
        export, entry = _kernel_entry(kernel, [spec for _, spec in args])
        exports.append(export)
        entries.append(entry)
        names = f"%k{k}" if len(kernel.results) == 1 else f"%k{k}:{len(kernel.results)}"
        result_types = ", ".join(r.mlir for r in kernel.results)
        if len(kernel.results) > 1:
            result_types = f"({result_types})"
        body.append(
            f"    {names} = flow.dispatch @{exe}::@{kernel.symbol}_entry("
            f"{', '.join(n for n, _ in args)}) : ({', '.join(s.mlir for _, s in args)}) -> "
            f"{result_types}"
        )
        for r, spec in enumerate(kernel.results):
            name = f"%k{k}" if len(kernel.results) == 1 else f"%k{k}#{r}"
            refs[ValueRef.kernel(k, r)] = (name, spec)
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
