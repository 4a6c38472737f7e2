#!/usr/bin/env bash
# Batch-1 latency of etch's CPU executor beside onnxruntime's, float32 and int8, on one and two
# threads, in one run (scripts/bench_cpu.py says what is timed and how).
#
# Usage: scripts/bench_cpu.sh [--runs N] [--rounds R] [MODEL ...]
#
# MODELs are ONNX text or binary files; a text with shape-only weights is filled with
# `etch convert --seed 1` first. Without MODELs: examples/models/resnet18.onnx.txt and
# mobilenet_v2.onnx.txt. Full-size PyTorch exports (ShuffleNet, MNASNet, MobileNet-v3, ViT, ...)
# come from `scripts/torchvision_stats.sh ETCH --keep DIR --models a,b`.
#
# Python packages (onnx, onnxruntime with its quantization tools, numpy) come from the lock
# scripts/locks/test.txt, installed into .venv/ on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
py="$(scripts/venv_from_lock.sh .venv scripts/locks/test.txt)"
cargo build --release --locked --quiet --bin etch --example bench_cpu
exec "$py" scripts/bench_cpu.py target/release/etch target/release/examples/bench_cpu "$@"
