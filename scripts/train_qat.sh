#!/usr/bin/env bash
# Trains the low-bit digits networks with Brevitas (quantization-aware training) and exports them as
# QONNX and QCDQ ONNX: examples/models/qat_w1a1_mlp.onnx, qat_w2a2_cnn.onnx, qat_w4a4_resdw.onnx,
# qat_int8_qcdq_cnn.onnx and qat_int4_qcdq_cnn.onnx, printing torch's, qonnx's and onnxruntime's test
# accuracy, the op types and every quantizer's bit width and scale (scripts/train_qat.py says how).
# Deterministic: the same files on every run on a given machine. About five minutes of one core.
#
# Usage: scripts/train_qat.sh [--out-dir DIR] [--epochs-scale F]
#
# Python packages come from the lock scripts/locks/qat.txt, installed into .venv-qat/ on first use
# (torch from PyPI with its CUDA runtime wheels: about 5 GB on disk, a few minutes to install).
set -euo pipefail

# one thread everywhere: nothing here may depend on how work is split between threads
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 VECLIB_MAXIMUM_THREADS=1 NUMEXPR_NUM_THREADS=1

cd "$(dirname "$0")/.."
py="$(scripts/venv_from_lock.sh .venv-qat scripts/locks/qat.txt)"
exec "$py" scripts/train_qat.py "$@"
