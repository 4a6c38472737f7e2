#!/usr/bin/env bash
# Checks etch's ONNX text against onnx's own parser, checker and printer, and onnxruntime
# (scripts/onnx_check.py says what is checked), for every model in examples/models/.
#
# Usage: scripts/onnx_check.sh ETCH_BINARY [MODEL ...]
#        scripts/onnx_check.sh --setup     only create or update the virtualenv, print its python
#
# The Python packages live in a virtualenv at .venv/ in the repository root (gitignored), made on
# first use and reused afterwards; onnx is pinned to the version whose syntax etch follows.
set -euo pipefail

ONNX_VERSION=1.23.2

usage() {
    echo "usage: $0 ETCH_BINARY [MODEL ...]  |  $0 --setup" >&2
    exit 2
}
[ $# -ge 1 ] || usage

# Resolve paths given relative to the caller's directory before moving to the repository root.
etch=""
models=()
if [ "$1" != "--setup" ]; then
    [ -x "$1" ] || { echo "error: etch binary \`$1\` is not an executable file" >&2; exit 2; }
    etch="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
    shift
    for m in "$@"; do
        models+=("$(cd "$(dirname "$m")" && pwd)/$(basename "$m")")
    done
fi

cd "$(dirname "$0")/.."
venv=.venv
py="$venv/bin/python"

if [ ! -x "$py" ]; then
    python3 -m venv "$venv"
fi
if ! "$py" - "$ONNX_VERSION" >/dev/null 2>&1 <<'EOF'
import sys
import numpy, onnx, onnxruntime
sys.exit(onnx.__version__ != sys.argv[1])
EOF
then
    echo "onnx_check: installing onnx==$ONNX_VERSION, onnxruntime and numpy into $venv" >&2
    "$py" -m pip install --quiet --disable-pip-version-check "onnx==$ONNX_VERSION" onnxruntime numpy
fi

if [ -z "$etch" ]; then
    echo "$(pwd)/$py"
    exit 0
fi
exec "$py" scripts/onnx_check.py "$etch" "${models[@]}"
