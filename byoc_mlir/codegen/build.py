"""Building vendor C into objects IREE can link (the linked route's toolchain).

IREE's llvm-cpu executables are freestanding embedded ELF: the object may not call libc
(not even the ``memset`` gcc emits for zeroing loops), use TLS or make syscalls. The
flags below are the set verified with IREE 3.13; `check_object` rejects an object with
undefined symbols before IREE would fail at link time with a less helpful message.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

from byoc_mlir.codegen.hook import ArtifactError

FREESTANDING_FLAGS = (
    "-O3",
    "-march=native",
    "-ffreestanding",
    "-fPIC",
    "-fvisibility=hidden",
    "-fno-plt",
    "-fno-stack-protector",
    "-fno-builtin",
    "-fno-tree-loop-distribute-patterns",
    "-fno-asynchronous-unwind-tables",
    "-fno-math-errno",
)


def c_compiler() -> str:
    """The system C compiler (``$CC``, else cc/gcc/clang on PATH)."""
    for candidate in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if candidate and shutil.which(candidate):
            return candidate
    raise ArtifactError("no C compiler found (set CC or install gcc)")


@functools.cache
def toolchain_id() -> str:
    """Identifies the compiler for the artifact cache key (first line of --version)."""
    try:
        cc = c_compiler()
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, check=False)
        return f"{cc}: {out.stdout.splitlines()[0] if out.stdout else 'unknown'}"
    except ArtifactError:
        return "no-cc"


def compile_c(source: str, out_dir: Path, stem: str) -> Path:
    """Compiles C source to ``out_dir/stem.o`` and checks it is linkable.

    Raises:
        ArtifactError: the compiler failed (its first error lines are in the message), or
            the object needs symbols an IREE executable cannot provide.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    c_path = out_dir / f"{stem}.c"
    o_path = out_dir / f"{stem}.o"
    c_path.write_text(source)
    cmd = [c_compiler(), *FREESTANDING_FLAGS, "-c", str(c_path), "-o", str(o_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        errors = [line for line in proc.stderr.splitlines() if "error" in line][:3]
        raise ArtifactError(
            f"C compiler failed on {c_path.name}: " + ("; ".join(errors) or proc.stderr[:300])
        )
    check_object(o_path)
    return o_path


def check_object(path: Path) -> None:
    """Raises ArtifactError when the object references symbols nothing will define."""
    nm = shutil.which("nm")
    if nm is None:
        return  # binutils missing: IREE's linker will report it instead
    proc = subprocess.run([nm, "-u", str(path)], capture_output=True, text=True, check=False)
    undefined = [line.split()[-1] for line in proc.stdout.splitlines() if line.strip()]
    if undefined:
        raise ArtifactError(
            f"{path.name} needs symbols a freestanding IREE executable cannot provide: "
            + ", ".join(sorted(undefined)[:8])
        )
