#!/usr/bin/env bash
# Fuzzes etch's ONNX text parser with cargo-fuzz: every input that parses must print to text that
# parses back to an equal model (fuzz/fuzz_targets/parse_model.rs).
#
# Usage: scripts/fuzz.sh [SECONDS] [extra libFuzzer flags...]
#   SECONDS  how long to fuzz (default 60)
# New corpus entries go to fuzz/corpus/parse_model, crashes to fuzz/artifacts/parse_model (both
# gitignored); fuzz/seeds and the dictionary fuzz/onnx_text.dict are read only.
#
# cargo fuzz needs nightly features; RUSTC_BOOTSTRAP=1 lets the stable toolchain provide them.
set -euo pipefail

secs="${1:-60}"
shift $(($# > 0 ? 1 : 0))
case "$secs" in
'' | *[!0-9]*)
    echo "usage: $0 [SECONDS] [libFuzzer flags...]" >&2
    exit 2
    ;;
esac

cd "$(dirname "$0")/.."

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

corpus=fuzz/corpus/parse_model
mkdir -p "$corpus"

export RUSTC_BOOTSTRAP=1
exec cargo fuzz run parse_model "$corpus" fuzz/seeds -- \
    -dict=fuzz/onnx_text.dict \
    -max_total_time="$secs" \
    -max_len=4096 \
    -timeout=5 \
    -rss_limit_mb=2048 \
    -print_final_stats=1 \
    "$@"
