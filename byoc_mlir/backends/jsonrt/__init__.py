"""The ``jsonrt`` reference backend: the runtime route, like TVM's JSON runtime example."""
