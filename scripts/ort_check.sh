#!/usr/bin/env bash
# Checks etch's CPU executor against onnxruntime element by element (scripts/ort_check.py says
# what is checked): every model in examples/models/, `etch eval` on the digits models, and small
# synthetic graphs for the ops whose corner cases matter.
#
# Usage: scripts/ort_check.sh ETCH_BINARY [--only SUBSTRING]
#
# Python packages come from the virtualenv of scripts/onnx_check.sh (.venv/, made on first use).
set -euo pipefail

if [ $# -lt 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 ETCH_BINARY [--only SUBSTRING]" >&2
    exit 2
fi
etch="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
shift

cd "$(dirname "$0")/.."
py="$(scripts/onnx_check.sh --setup)"
exec "$py" scripts/ort_check.py "$etch" "$@"
