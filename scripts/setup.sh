# Sourced by example.sh and test/run.sh: a virtualenv (the active one, else .venv/ here),
# the package installed into it with pip, and a C compiler (generated code is C).
#   source scripts/setup.sh [EXTRA]    # EXTRA: pip extra to install too, e.g. "test"
# Needs only python3 (>= 3.11) and a C compiler; no root, no system package.

byoc_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
byoc_extra="${1:-}"

byoc_cc="${CC:-}"
if [ -z "$byoc_cc" ]; then
  for c in cc gcc clang; do
    if command -v "$c" >/dev/null 2>&1; then byoc_cc="$c"; break; fi
  done
fi
if [ -z "$byoc_cc" ] || ! command -v "${byoc_cc%% *}" >/dev/null 2>&1; then
  echo "error: no C compiler found (tried \$CC, cc, gcc, clang): byoc_mlir builds the code its backends generate with one; install gcc or clang (e.g. 'apt-get install gcc', 'xcode-select --install') or set CC." >&2
  exit 1
fi

if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "error: byoc_mlir needs Python 3.11 or newer; python3 is $(python3 --version 2>&1)." >&2
  exit 1
fi

if [ -z "${VIRTUAL_ENV:-}" ]; then
  if [ ! -x "$byoc_root/.venv/bin/python" ]; then
    echo "setting up a virtualenv in $byoc_root/.venv"
    python3 -m venv "$byoc_root/.venv"
  fi
  # shellcheck disable=SC1091
  source "$byoc_root/.venv/bin/activate"
fi

# Install (again) only when what is asked changed: the dependency lists, Python, the
# checkout, or an extra not installed yet (an install with [test] also serves example.sh).
byoc_stamp="$VIRTUAL_ENV/.byoc_mlir-installed"
byoc_want="$( { cat "$byoc_root/pyproject.toml" "$byoc_root/examples/mynpu/pyproject.toml"; \
  echo "$byoc_root"; python --version; } 2>&1 \
  | python -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')"
byoc_have="$(cat "$byoc_stamp" 2>/dev/null || true)"
if [ "$byoc_have" != "$byoc_want $byoc_extra" ] && { [ -n "$byoc_extra" ] || [ "${byoc_have%% *}" != "$byoc_want" ]; }; then
  echo "installing byoc_mlir${byoc_extra:+ with [$byoc_extra]} into $VIRTUAL_ENV (pip; a few minutes the first time)"
  python -m pip install -q --upgrade pip
  if [ -n "$byoc_extra" ]; then
    python -m pip install -q -e "$byoc_root[$byoc_extra]"
  else
    python -m pip install -q -e "$byoc_root"
  fi
  # The out-of-tree example backend (README: "Adding a backend"), installed as a plugin.
  python -m pip install -q --no-deps -e "$byoc_root/examples/mynpu"
  echo "$byoc_want $byoc_extra" > "$byoc_stamp"
fi
