#!/usr/bin/env bash
# Yosys-reported against area-model-estimated FPGA resources of one small design on iCE40 UP5K and
# XC7Z020 (PYNQ-Z2): digits_mlp quantized to int8 on the 4 x 2 int8 weight-stationary array of
# examples/hw/ws-4x2-int8.ron, compiled to Verilog and synthesized with `etch synth`.
#
# Usage: scripts/synth_table.sh            (needs yosys; builds etch in release)
set -euo pipefail
cd "$(dirname "$0")/.."

command -v yosys >/dev/null || { echo "error: yosys is not installed (apt-get install yosys)" >&2; exit 1; }
cargo build --release --quiet --bin etch
etch=target/release/etch

tmp="$(mktemp -d -t etch-synth-table.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
passes='quant(bits=8,per=channel,calib="examples/data/digits_train.csv")'
for target in ice40-up5k pynq-z2; do
    "$etch" compile examples/models/digits_mlp.onnx.txt --hw examples/hw/ws-4x2-int8.ron \
        --target "$target" --passes "$passes" --emit verilog \
        --data examples/data/digits_test.csv --samples 1 -o "$tmp/$target" >/dev/null
    "$etch" synth "$tmp/$target" --target "$target"
    echo
done
