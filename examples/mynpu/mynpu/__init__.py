"""An example out-of-tree byoc_mlir backend (see ``mynpu.backend``)."""
