"""``byoc-opt``: an mlir-opt style driver for the byoc passes.

    byoc-opt model.mlir --backend testing --partition
    byoc-opt model.mlir --backend testing --byoc-annotate --byoc-merge-regions="min-size=2"
    cat model.mlir | byoc-opt --backend testing --partition --canonicalize --cse
    byoc-opt model.mlir --backend testing --partition --save-plan plan.json
    byoc-opt model.mlir --plan plan.json          # replay it (after editing, maybe)

Passes run in the order given; MLIR's own passes (``--canonicalize``, ``--cse``,
``--symbol-dce``, ``--pass-pipeline=...``) mix in. The result goes to stdout (or ``-o``).
Errors are located diagnostics on stderr with exit code 1, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from iree.compiler import ir, passmanager

from byoc_mlir import _compat
from byoc_mlir.codegen import registry
from byoc_mlir.errors import ByocError
from byoc_mlir.explain import picture, report
from byoc_mlir.explain.decisions import DecisionLog, OpRecord
from byoc_mlir.explain.plan import load_plan, save_plan
from byoc_mlir.fileio import write_atomic
from byoc_mlir.passes import PASSES
from byoc_mlir.pipeline import PartitionPass

MLIR_PASSES = ("canonicalize", "cse", "symbol-dce", "inline")


class _Step(argparse.Action):
    """Appends (kind, name, value) to ``namespace.steps`` so order is kept."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        steps = list(getattr(namespace, "steps", None) or [])
        steps.append((self.const[0], self.const[1], values if isinstance(values, str) else ""))
        namespace.steps = steps


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="byoc-opt",
        description="Run byoc partitioning passes (and MLIR passes) on an MLIR file.",
    )
    p.add_argument(
        "input", nargs="?", default="-", help="input .mlir (text or bytecode); - = stdin"
    )
    p.add_argument("-o", "--output", default="-", help="output file (default stdout)")
    p.add_argument(
        "--backend",
        action="append",
        default=[],
        metavar="NAME",
        help="backend to partition for; repeat for several (priority = order)",
    )
    p.add_argument(
        "--partition",
        nargs=0,
        action=_Step,
        const=("partition", "partition"),
        help="run the whole partitioning pipeline (annotate, composites, merge, outline)",
    )
    p.add_argument(
        "--plan",
        action=_Step,
        const=("partition", "plan"),
        metavar="FILE",
        help="replay a placement plan: byoc-apply-plan + byoc-outline over shared graphs",
    )
    p.add_argument(
        "--save-plan",
        metavar="FILE",
        help="with --partition (or --plan): write the placement plan (which op goes where)",
    )
    for name, cls in PASSES.items():
        opts = ", ".join(cls.options()) or "none"
        p.add_argument(
            f"--{name}",
            nargs="?",
            action=_Step,
            const=("byoc", name),
            metavar="OPTIONS",
            help=f"run {name}; options: {opts}",
        )
    for name in MLIR_PASSES:
        p.add_argument(
            f"--{name}", nargs=0, action=_Step, const=("mlir", name), help=f"MLIR {name}"
        )
    p.add_argument(
        "--pass-pipeline",
        action=_Step,
        const=("mlir", "pipeline"),
        metavar="PIPELINE",
        help="a textual MLIR pass pipeline, nested in builtin.module(...)",
    )
    p.add_argument(
        "--split-input-file",
        action="store_true",
        help="process each chunk separated by '// -----' on its own (output joined the same way)",
    )
    p.add_argument(
        "--decision-log", metavar="FILE", help="write the decision log (report.json schema)"
    )
    p.add_argument(
        "--report",
        action="store_true",
        help="print the offload summary (per backend, ops left on the host and why) to stderr",
    )
    p.add_argument(
        "--graph",
        metavar="FILE",
        help="with --partition (or --plan): draw the dataflow, regions coloured by backend "
        "(.svg, .html or .dot)",
    )
    p.add_argument("--list-backends", action="store_true", help="list discoverable backends")
    p.set_defaults(steps=[])
    return p


def _add_steps(
    pm: passmanager.PassManager,
    steps: Sequence[tuple[str, str, str]],
    backends: list[str],
    records: list[OpRecord] | None = None,
) -> None:
    for kind, name, value in steps:
        if kind == "partition" and name == "plan":
            PartitionPass(plan=value, records=records).add_to(pm)
        elif kind == "partition":
            if not backends:
                raise ByocError("--partition needs at least one --backend NAME")
            PartitionPass(tuple(backends), records=records).add_to(pm)
        elif kind == "byoc":
            pass_ = PASSES[name].from_options(value or "", backends=tuple(backends))
            for backend in getattr(pass_, "backends", ()):
                registry.get(backend)  # a typo in backends=... fails like --backend does
            pass_.add_to(pm)
        elif name == "pipeline":
            try:
                pm.add(value)
            except (ValueError, ir.MLIRError) as err:
                raise ByocError(f"invalid --pass-pipeline '{value}': {err}") from None
        else:
            pm.add(name)


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list_backends:
        for name, backend in registry.available().items():
            print(f"{name}\t{backend.description}")
        return 0
    for name in args.backend:
        registry.get(name)  # unknown names fail before any work
    if args.graph:
        _check_graph(args)
    if args.save_plan:
        _check_save_plan(args)
    if args.input == "-":
        source, name = sys.stdin.read(), "<stdin>"
    else:
        path = Path(args.input)
        if not args.split_input_file:
            module = _compat.parse_file(path, _compat.new_context())
            text, log = _process(module, args)
            return _emit(args, text, log)
        try:
            source, name = path.read_text(), str(path)
        except (OSError, UnicodeDecodeError) as err:
            raise ByocError(f"cannot read {path} as MLIR text: {err}") from None
    chunks = _split(source) if args.split_input_file else [(0, source)]
    outputs: list[bytes] = []
    logs: list[str] = []
    failed = False
    for first_line, chunk in chunks:
        try:
            # Leading newlines keep diagnostics on the input file's own line numbers.
            module = _compat.parse_module("\n" * first_line + chunk, _compat.new_context(), name)
            _name_locations(module, name)
            text, log = _process(module, args)
        except ByocError as err:
            print(err.format(), file=sys.stderr)
            failed = True
            continue
        outputs.append(text)
        logs.append(log)
    text = b"\n// -----\n".join(outputs)
    if failed:
        # A failed run writes no file: an existing -o / --decision-log file keeps its
        # content. Stdout still shows the chunks that worked, as mlir-opt prints them.
        if outputs and args.output == "-":
            _write_stdout(text)
        return 1
    return _emit(args, text, logs[0] if len(logs) == 1 else "[" + ",".join(logs) + "]")


def _name_locations(module: ir.Module, name: str) -> None:
    """Puts the input's name into op locations (text parsed from a string says ``"-"``).

    Decisions and errors then point at ``FILE:line:col`` in split mode and for stdin too.
    """
    context = module.context

    def rename(op: ir.Operation) -> ir.WalkResult:
        loc = op.location
        if isinstance(loc, ir.FileLineColLoc) and loc.filename == "-":
            op.location = ir.Location.file(name, loc.start_line, loc.start_col, context=context)
        return ir.WalkResult.ADVANCE

    module.operation.walk(rename)


def _split(source: str) -> list[tuple[int, str]]:
    chunks: list[tuple[int, str]] = []
    start, current = 0, list[str]()
    for n, line in enumerate(source.splitlines(keepends=True)):
        if line.strip() == "// -----":
            chunks.append((start, "".join(current)))
            start, current = n + 1, []
        else:
            current.append(line)
    chunks.append((start, "".join(current)))
    return chunks


def _process(module: ir.Module, args: argparse.Namespace) -> tuple[bytes, str]:
    """Runs the requested steps; returns (printed module, decision log JSON)."""
    context = module.context
    with context, ir.Location.unknown():
        pm = passmanager.PassManager()
        # filled by --partition (single passes leave it empty), when something reads it:
        # capturing every op's placement costs as much as a partitioning stage
        wanted = args.decision_log or args.report or args.graph or args.save_plan
        records: list[OpRecord] = []
        _add_steps(pm, args.steps, args.backend, records if wanted else None)
        try:
            pm.run(module.operation)
        except ir.MLIRError as err:
            diags = [f"{d.location}: {d.message}" for d in err.error_diagnostics]
            raise ByocError(
                "the pass pipeline produced invalid IR (a byoc_mlir bug; please report it): "
                + "; ".join(diags),
                hint="reproduce with: byoc-opt " + " ".join(sys.argv[1:]),
            ) from None
        text = _compat.print_module_bytes(module)
        log = ""
        if args.decision_log or args.report:
            decisions = DecisionLog.from_module(module.operation)
            decisions.ops = records
            data = decisions.to_json()
            log = json.dumps(data, indent=2)
            if args.report:
                print(report.summary(data), end="", file=sys.stderr)
        if args.graph:
            title = "" if args.input == "-" else Path(args.input).name
            picture.write_graph(args.graph, records, title=title)
        if args.save_plan:
            _, name, value = [s for s in args.steps if s[0] == "partition"][-1]
            backends = load_plan(value).backends if name == "plan" else args.backend
            save_plan(records, backends, args.save_plan)
    return text, log


def _check_graph(args: argparse.Namespace) -> None:
    """``--graph`` draws one partitioned module: checked before any work."""
    if not any(kind == "partition" for kind, _, _ in args.steps):
        raise ByocError("--graph draws the partition: it needs --partition (or --plan)")
    if args.split_input_file:
        raise ByocError("--graph draws one module: it cannot be combined with --split-input-file")
    picture.check_output(args.graph)


def _check_save_plan(args: argparse.Namespace) -> None:
    """``--save-plan`` records what one partition decided: checked before any work."""
    if not any(kind == "partition" for kind, _, _ in args.steps):
        raise ByocError("--save-plan saves the partition's placement: it needs --partition")
    if args.split_input_file:
        raise ByocError("--save-plan saves one module's plan: not with --split-input-file")


def _write_stdout(text: bytes) -> None:
    """The printed module on stdout as UTF-8 bytes (decoding 6 MB costs 45 ms)."""
    text = text if text.endswith(b"\n") else text + b"\n"
    out = getattr(sys.stdout, "buffer", None)
    if out is None:  # a text-only stream (a caller's StringIO)
        sys.stdout.write(text.decode())
        return
    sys.stdout.flush()
    out.write(text)
    out.flush()


def _emit(args: argparse.Namespace, text: bytes, log: str) -> int:
    if args.decision_log:
        write_atomic(Path(args.decision_log), log)
    if args.output == "-":
        _write_stdout(text)
    else:
        write_atomic(Path(args.output), text)
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    try:
        code = run(argv)
    except ByocError as err:
        print(err.format(), file=sys.stderr)
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
