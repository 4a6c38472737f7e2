#!/usr/bin/env bash
# Records the SCALE-Sim 3.0.0 fixtures etch's tests compare against (sim/tests/fixtures/scalesim/):
# AlexNet's and ResNet-18's convolutions (padding folded into the ifmap sizes, as SCALE-Sim has
# none) on 32x32, 16x64 and 8x16 arrays, all three dataflows, plus a 1 KiB ofmap SRAM that makes
# SCALE-Sim's write buffer stall. Takes about an hour on one core. Usage: scripts/scalesim_record.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY="$(scripts/scalesim_setup.sh)"
F=sim/tests/fixtures/scalesim
pairs=()
for shape in a32x32 a16x64 a32x32_tinyofmap a8x16; do
    for df in ws os is; do
        case "$shape" in
            a32x32|a16x64) topos="alexnet_conv resnet18_conv" ;;
            *) topos="alexnet_conv" ;;
        esac
        for t in $topos; do pairs+=("$F/$t.csv:$F/${shape}_$df.cfg"); done
    done
done
# ResNet-50's convolutions (written from examples/models/resnet50.onnx.txt by
# scripts/scalesim_topology.py) on a 128x128 weight-stationary array: the input of the speed
# comparison in examples/sim_bench.rs (about 210 CPU-s and 9 GB of memory in SCALE-Sim)
pairs+=("$F/resnet50_conv.csv:$F/a128x128_ws.cfg")
# small layers of every shape etch reads (1x1, 1x7 on a non-square ifmap, stride 2 with a remainder,
# SCALE-Sim's per-channel depthwise "DP" layers, a filter as large as the ifmap)
for c in a32x32_tinyofmap_ws a32x32_tinyofmap_os a32x32_tinyofmap_is a8x16_os a8x16_is; do
    pairs+=("$F/mixed_small.csv:$F/$c.cfg")
done
"$PY" scripts/scalesim_record.py "$F" "${pairs[@]}" 2>&1 | grep -v 'custom_layout'
