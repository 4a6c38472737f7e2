#!/usr/bin/env bash
# Checks etch on low-bit models: QONNX against qonnx's executor, QCDQ against onnxruntime
# (scripts/qonnx_check.py says what is checked): outputs bit-identical, the same top-1 accuracy.
#
# Usage: scripts/qonnx_check.sh ETCH_BINARY
#
# Python packages come from the virtualenv of scripts/onnx_check.sh (.venv/, made on first use).
set -euo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 ETCH_BINARY" >&2
    exit 2
fi
etch="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"

cd "$(dirname "$0")/.."
py="$(scripts/onnx_check.sh --setup)"
exec "$py" scripts/qonnx_check.py "$etch"
