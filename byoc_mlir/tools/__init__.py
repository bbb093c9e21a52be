"""Console scripts: ``byoc-opt`` (and, later, ``byoc-compile``, ``byoc-run``)."""
