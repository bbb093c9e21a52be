#!/usr/bin/env bash
# The test command (README): lint, type-check, lit suites, then pytest (its summary last).
set -euo pipefail
cd "$(dirname "$0")/.."
# The out-of-tree example backend (README: "Adding a backend"), installed as a plugin.
python -m pip install -q --no-deps -e examples/mynpu
ruff check byoc_mlir test bench examples
mypy
lit -sv test/lit examples/mynpu/test
python -m pytest -q test/python
