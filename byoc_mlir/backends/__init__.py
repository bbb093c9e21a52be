"""The in-tree backends, each its own package and each discovered like an out-of-tree
plugin (the ``byoc_mlir.backends`` entry points in ``pyproject.toml``): they are the
examples a vendor copies.

- `testing`: tags what a simple accelerator would take; no codegen of its own (tests).
- `ccompiler`: reference C codegen, linked into IREE's dispatches (the linked route).
- `jsonrt`: a JSON graph served by a numpy runtime (the runtime route).
- `dnnl`: oneDNN 3 from PyPI, C against its API, served at run time (the paper's case).

Each package's ``backend.py`` holds its `Backend` value; nothing here imports them, so
discovery loads only the backend asked for.
"""
