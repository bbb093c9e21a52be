#!/usr/bin/env bash
# The test command (README; `.ci/run` calls it): a virtualenv (the active one, else
# .venv/), the package with its test extra, then lint, type-check, the lit suites and
# pytest (its summary last).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source scripts/setup.sh test
ruff check byoc_mlir test bench examples
mypy
lit -sv test/lit examples/mynpu/test
python -m pytest -q test/python
