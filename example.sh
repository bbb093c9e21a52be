#!/usr/bin/env bash
# The main job on the bundled example (README): a virtualenv (the active one, else
# .venv/), the package, then examples/cnn.mlir compiled with the dnnl backend (oneDNN),
# run, and checked against IREE alone; prints where the report and the picture are.
set -euo pipefail
cd "$(dirname "$0")"
out="${1:-out/example}"
# shellcheck disable=SC1091
source scripts/setup.sh ""  # no extra (an explicit argument: not this script's own)
byoc-compile examples/cnn.mlir --backend dnnl -o "$out" --report --graph "$out/partition.html"
byoc-run "$out" --check
echo
echo "bundle:  $out/ (module.vmfb, payloads/, bundle.json)"
echo "report:  $out/report.json (every op: where it runs, or why not)"
echo "picture: $out/partition.html (open it in a browser)"
