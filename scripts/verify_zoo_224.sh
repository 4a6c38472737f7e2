#!/usr/bin/env bash
# ResNet-18 and MobileNet-v2 at 224x224 on zcu104's default accelerator, in RTL: each model's
# shape-only weights filled from a seed, quantized to int8 per channel on random calibration
# rows, compiled with `--emit core --data`, and checked by `etch verify` under Verilator: the
# output codes of SAMPLES inputs bit for bit against the CPU executor's, and the RTL's cycles
# against plain `etch sim`'s. Not part of CI (minutes of simulation); prints each model's
# `etch verify` lines and the wall-clock time of its simulation.
#
# Usage: scripts/verify_zoo_224.sh [SAMPLES [OUT_DIR]]      (default 1 sample, a temp dir)
set -euo pipefail

samples="${1:-1}"
case "$samples" in
'' | *[!0-9]* | 0)
    echo "usage: $0 [SAMPLES [OUT_DIR]]" >&2
    exit 2
    ;;
esac
out="${2:-$(mktemp -d)}"
mkdir -p "$out"

cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
etch="$PWD/target/release/etch"

# random rows in [-1, 1): a label, then 3x224x224 values (seeded; python3's own generator)
csv="$out/rows.csv"
python3 - "$csv" "$((samples + 3))" <<'EOF'
import random, sys
path, rows = sys.argv[1], int(sys.argv[2])
rng = random.Random(224)
with open(path, "w") as f:
    for _ in range(rows):
        f.write("0," + ",".join("%.3f" % rng.uniform(-1, 1) for _ in range(3 * 224 * 224)) + "\n")
EOF

for model in resnet18 mobilenet_v2; do
    dir="$out/$model"
    "$etch" compile "examples/models/$model.onnx.txt" --target zcu104 --seed 1 \
        --passes "quant(bits=8,per=channel,calib=\"$csv\")" \
        --emit core --data "$csv" --samples "$samples" -o "$dir"
    start=$(date +%s)
    "$etch" verify "$dir"
    echo "$model: etch verify took $(($(date +%s) - start)) s"
done
