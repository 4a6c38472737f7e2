#!/usr/bin/env bash
# Checks etch's integer executor against onnxruntime on the QDQ export of quantized digits models
# (scripts/quant_check.py says what is checked): outputs within one quantization step, the same
# top-1 accuracy.
#
# Usage: scripts/quant_check.sh ETCH_BINARY
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
exec "$py" scripts/quant_check.py "$etch"
