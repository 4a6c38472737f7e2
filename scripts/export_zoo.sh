#!/usr/bin/env bash
# Exports tiny random-weight PyTorch models (torchvision's ConvNeXt, ViT, Swin v1 and v2, an
# nn.TransformerEncoder, a U-Net-like and a YOLO-like CNN) with both of PyTorch's ONNX exporters,
# classic (TorchScript, opset 17) and dynamo (torch.export, opset 20), as binary ONNX:
# examples/models/exported/NAME_classic.onnx and NAME_dynamo.onnx, printing per file the exporter,
# opset, size, onnxruntime's difference from PyTorch and the op types (scripts/export_zoo.py says how).
# Deterministic: the same files on every run on a given machine. About a minute of one core.
# scripts/export_check.sh runs the files in etch and onnxruntime.
#
# Usage: scripts/export_zoo.sh [--out-dir DIR] [--only SUBSTRING]
#
# Python packages come from the lock scripts/locks/qat.txt (torch, torchvision, onnxscript, onnx,
# onnxruntime), installed into .venv-qat/ on first use (about 5 GB, a few minutes; see train_qat.sh).
set -euo pipefail

# one thread everywhere: nothing here may depend on how work is split between threads
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 VECLIB_MAXIMUM_THREADS=1 NUMEXPR_NUM_THREADS=1

# --out-dir relative to the caller's directory, before moving to the repository root
args=()
while [ $# -gt 0 ]; do
    if [ "$1" = "--out-dir" ] && [ $# -ge 2 ]; then
        mkdir -p "$2"
        args+=("$1" "$(cd "$2" && pwd)")
        shift 2
    else
        args+=("$1")
        shift
    fi
done

cd "$(dirname "$0")/.."
py="$(scripts/venv_from_lock.sh .venv-qat scripts/locks/qat.txt)"
exec "$py" scripts/export_zoo.py "${args[@]}"
