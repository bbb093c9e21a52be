"""Content-addressed artifact cache: recompiling an unchanged model rebuilds no vendor code.

The key hashes everything an artifact depends on: the region's IR (generic form, no
locations), the backend name and version, the codegen options, the C toolchain and
CPU, IREE's version and this package's version. An entry is a directory written under
a temporary name and renamed into place (atomic on one file system), so processes
sharing the cache never see half an entry; every file's hash is stored and checked on
read, and an entry that does not verify is ignored and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from byoc_mlir.codegen.build import toolchain_id

_FORMAT = 1


def default_root() -> Path:
    env = os.environ.get("BYOC_MLIR_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "byoc_mlir" / "artifacts"


def _iree_version() -> str:
    try:
        from importlib.metadata import version

        return version("iree-base-compiler")
    except Exception:  # pragma: no cover - metadata missing in odd installs
        return "unknown"


def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("byoc_mlir")
    except Exception:  # pragma: no cover
        return "dev"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return hashlib.sha256(line.encode()).hexdigest()[:16]
    except OSError:
        pass
    return os.uname().machine


def cache_key(region_ir: str, backend: str, backend_version: str, options: Any) -> str:
    parts = {
        "format": _FORMAT,
        "ir": region_ir,
        "backend": backend,
        "backend_version": backend_version,
        "options": options,
        "toolchain": toolchain_id(),
        "cpu": _cpu(),
        "iree": _iree_version(),
        "byoc_mlir": _package_version(),
    }
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


@dataclass(frozen=True)
class Entry:
    """A verified cache entry: its directory and metadata."""

    path: Path
    meta: dict[str, Any]

    def file(self, name: str) -> Path:
        return self.path / name


class ArtifactCache:
    """A directory of entries keyed by `cache_key`. ``root=None`` disables caching."""

    def __init__(self, root: str | Path | None):
        self.root = Path(root) if root is not None else None
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Entry | None:
        if self.root is None:
            return None
        path = self.root / key
        try:
            meta = json.loads((path / "meta.json").read_text())
            for name, digest in meta["files"].items():
                if hashlib.sha256((path / name).read_bytes()).hexdigest() != digest:
                    raise ValueError(f"{name} changed")
        except (OSError, ValueError, KeyError):
            self.misses += 1
            return None
        self.hits += 1
        return Entry(path, meta)

    def put(self, key: str, files: dict[str, bytes], meta: dict[str, Any]) -> Entry | None:
        """Stores an entry; returns it (None when caching is off or the disk refuses)."""
        if self.root is None:
            return None
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{key[:16]}.", dir=self.root))
        except OSError:
            return None
        try:
            digests = {}
            for name, data in files.items():
                (tmp / name).write_bytes(data)
                digests[name] = hashlib.sha256(data).hexdigest()
            (tmp / "meta.json").write_text(json.dumps({**meta, "files": digests}, indent=1))
            try:
                os.rename(tmp, self.root / key)
            except OSError:
                # Another process stored the same key first; its entry is equivalent.
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            return None
        return self.get(key)
