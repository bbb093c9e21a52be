"""Backend discovery through the ``byoc_mlir.backends`` entry-point group.

Each entry point names one `Backend` instance (``module:ATTRIBUTE``). The reference
backends shipped in this package are always available, even when the package is used
from a source tree without being installed. Discovery loads only the modules the entry
points name; a backend module must not import its vendor SDK at import time.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from functools import lru_cache
from importlib.metadata import entry_points

from byoc_mlir.codegen.backend import Backend
from byoc_mlir.errors import ByocError

GROUP = "byoc_mlir.backends"
_BUILTIN = {
    "testing": "byoc_mlir.backends.testing.backend:BACKEND",
    "testing_matmul": "byoc_mlir.backends.testing.backend:MATMUL_ONLY",
    "jsonrt": "byoc_mlir.backends.jsonrt.backend:BACKEND",
    "ccompiler": "byoc_mlir.backends.ccompiler.backend:BACKEND",
    "dnnl": "byoc_mlir.backends.dnnl.backend:BACKEND",
}


def _load(name: str, target: str) -> Backend:
    module_name, _, attr = target.partition(":")
    obj = getattr(importlib.import_module(module_name), attr)
    if not isinstance(obj, Backend):
        raise ByocError(f"entry point {name} = {target} is not a byoc_mlir Backend ({obj!r})")
    if obj.name != name:
        raise ByocError(f"entry point {name} = {target} names a backend called {obj.name!r}")
    return obj


@lru_cache(maxsize=1)
def _targets() -> dict[str, str]:
    """Backend name -> ``module:ATTRIBUTE``, shipped and installed (nothing imported).

    Raises:
        ByocError: two different entry points claim one name.
    """
    targets: dict[str, str] = dict(_BUILTIN)
    for ep in entry_points(group=GROUP):
        previous = targets.get(ep.name)
        if previous is not None and previous != ep.value:
            raise ByocError(f"backend {ep.name!r} is declared twice: {previous} and {ep.value}")
        targets[ep.name] = ep.value
    return targets


_LOADED: dict[str, Backend] = {}
_REMOVED: set[str] = set()  # `unregister`-ed for this process


def find(name: str) -> Backend | None:
    """The backend called ``name`` or None, its module imported on first use (a
    partition on ``testing`` does not import dnnl's or a vendor's module)."""
    backend = _LOADED.get(name)
    if backend is None and name not in _REMOVED:
        target = _targets().get(name)
        if target is not None:
            backend = _LOADED[name] = _load(name, target)
    return backend


def rediscover() -> None:
    """Forgets every backend found or registered, so the next look-up scans the entry
    points again (a child process whose ``sys.path`` changed, a test that installs one)."""
    _targets.cache_clear()
    _LOADED.clear()
    _REMOVED.clear()


def available() -> dict[str, Backend]:
    """All discoverable backends by name (every backend module is imported).

    Raises:
        ByocError: two different entry points claim one name, or one is malformed.
    """
    names = sorted(set(_targets()) | set(_LOADED))
    found = {name: find(name) for name in names}
    return {name: b for name, b in found.items() if b is not None}


def installed(name: str) -> bool:
    """Whether ``name`` is found by discovery (shipped here or an installed entry point),
    so that another process can find it too; False for one only `register`-ed here."""
    if name in _BUILTIN:
        return True
    return any(ep.name == name for ep in entry_points(group=GROUP))


def get(name: str) -> Backend:
    """The backend called ``name``.

    Raises:
        ByocError: unknown name; the message lists the known ones.
    """
    backend = find(name)
    if backend is None:
        known = ", ".join(available()) or "(none)"
        raise ByocError(f"unknown backend '{name}'; known backends: {known}")
    return backend


def resolve(backends: Iterable[str | Backend]) -> list[Backend]:
    """Names or `Backend` values to backends, priority order kept, duplicates refused."""
    out: list[Backend] = []
    for b in backends:
        backend = b if isinstance(b, Backend) else get(b)
        if any(o.name == backend.name for o in out):
            raise ByocError(f"backend '{backend.name}' is given twice")
        out.append(backend)
    return out


def register(backend: Backend, replace: bool = False) -> None:
    """Makes a backend defined in Python (not installed) discoverable by name, for this
    process: notebooks, tests, and bundles whose runtime-route backend is not packaged.

    Raises:
        ByocError: the name is taken by a different backend and ``replace`` is False.
    """
    current = find(backend.name)
    if current is not None and current is not backend and not replace:
        raise ByocError(f"backend '{backend.name}' is already registered ({current!r})")
    _REMOVED.discard(backend.name)
    _LOADED[backend.name] = backend


def unregister(name: str) -> None:
    _LOADED.pop(name, None)
    _REMOVED.add(name)
