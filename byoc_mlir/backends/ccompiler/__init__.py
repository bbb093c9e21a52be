"""The ``ccompiler`` reference backend: readable C for the linked route."""
