#!/usr/bin/env bash
# Checks etch's ONNX text against onnx's own parser, checker and printer, and onnxruntime
# (scripts/onnx_check.py says what is checked), for every model in examples/models/.
#
# Usage: scripts/onnx_check.sh ETCH_BINARY [MODEL ...]
#        scripts/onnx_check.sh --setup     only create or update the virtualenv, print its python
#
# The Python packages live in a virtualenv at .venv/ in the repository root (gitignored), installed
# from the lock file scripts/locks/test.txt (exact versions and hashes; scripts/lock_python.py writes
# it) and remade whenever the lock changes.
set -euo pipefail

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
py="$(scripts/venv_from_lock.sh .venv scripts/locks/test.txt)"

if [ -z "$etch" ]; then
    echo "$py"
    exit 0
fi
exec "$py" scripts/onnx_check.py "$etch" "${models[@]}"
