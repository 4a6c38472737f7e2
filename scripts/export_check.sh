#!/usr/bin/env bash
# Checks etch's CPU executor against onnxruntime on the PyTorch-exported models of
# examples/models/exported/ (written by scripts/export_zoo.sh; scripts/export_check.py says what is
# checked): `etch inspect` and `etch run` on a seeded random input, every element compared.
#
# Usage: scripts/export_check.sh ETCH_BINARY [--only SUBSTRING]
#
# Python packages (onnx, onnxruntime, numpy; no torch) come from the lock scripts/locks/test.txt,
# installed into .venv/ on first use (the virtualenv of scripts/onnx_check.sh and ort_check.sh).
set -euo pipefail

if [ $# -lt 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 ETCH_BINARY [--only SUBSTRING]" >&2
    exit 2
fi
etch="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
shift

cd "$(dirname "$0")/.."
py="$(scripts/venv_from_lock.sh .venv scripts/locks/test.txt)"
exec "$py" scripts/export_check.py "$etch" "$@"
