#!/usr/bin/env bash
# Exports full-size torchvision classification models (random weights, nothing downloaded) with both
# of PyTorch's ONNX exporters (classic opset 17, dynamo opset 20) into a temporary directory, runs
# `ETCH inspect FILE --json` on each file and prints per model and exporter etch's params and MACs
# next to torchvision's num_params and _ops (its "GFLOPS", which are multiply-accumulates), their
# ratios, and where every difference comes from (scripts/torchvision_stats.py says how and what each
# column means). Not run in CI: it needs torch; about 10 to 20 minutes of one core for the default list.
#
# Usage: scripts/torchvision_stats.sh ETCH [--keep DIR] [--models NAME,NAME,...] [--extra]
#   e.g. scripts/torchvision_stats.sh target/release/etch --models resnet18,vit_b_16
#
# Python packages come from the lock scripts/locks/qat.txt (torch, torchvision, onnxscript, onnx),
# installed into .venv-qat/ on first use (about 5 GB, a few minutes; see train_qat.sh).
set -euo pipefail

# one thread everywhere: nothing here may depend on how work is split between threads
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 VECLIB_MAXIMUM_THREADS=1 NUMEXPR_NUM_THREADS=1

if [ $# -lt 1 ] || [ "${1#-}" != "$1" ]; then
    echo "usage: $0 ETCH [--keep DIR] [--models NAME,NAME,...] [--extra]" >&2
    exit 2
fi
# paths relative to the caller's directory, before moving to the repository root
etch="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
shift
args=("$etch")
while [ $# -gt 0 ]; do
    if [ "$1" = "--keep" ] && [ $# -ge 2 ]; then
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
exec "$py" scripts/torchvision_stats.py "${args[@]}"
