#!/usr/bin/env bash
# The test command (README): lint, type-check, lit suite, then pytest (its summary last).
set -euo pipefail
cd "$(dirname "$0")/.."
ruff check byoc_mlir test bench
mypy
lit -sv test/lit
python -m pytest -q test/python
