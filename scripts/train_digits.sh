#!/usr/bin/env bash
# Trains the depthwise-separable and residual BatchNormalization CNNs on the 8x8 digits with numpy
# alone and writes examples/models/digits_ds.onnx.txt and examples/models/digits_res.onnx.txt,
# printing numpy's and onnxruntime's test accuracy for each (scripts/train_digits.py says how).
# Deterministic: the same files on every run and every x86-64 CPU. About two minutes of one core.
#
# Usage: scripts/train_digits.sh [--out-dir DIR] [--epochs N]
#
# Python packages come from the virtualenv of scripts/onnx_check.sh (.venv/, made on first use).
set -euo pipefail

# one thread everywhere: nothing here may depend on how work is split between threads
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 VECLIB_MAXIMUM_THREADS=1 NUMEXPR_NUM_THREADS=1

cd "$(dirname "$0")/.."
py="$(scripts/onnx_check.sh --setup)"
exec "$py" scripts/train_digits.py "$@"
