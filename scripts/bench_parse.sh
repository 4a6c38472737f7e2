#!/usr/bin/env bash
# Parse speed of etch's ONNX text front end against onnx's own C++ parser, on the same text: resnet18
# with its shape-only weights filled (about 146 MB of ONNX text, nearly all of it float values).
#
# Usage: scripts/bench_parse.sh [REPEATS]      (default 5)
#
# Builds etch and examples/parse_bench.rs in release, writes the full-weight resnet18 text to a temp
# dir with `etch convert --seed 1`, times etch_ir::parse_model (examples/parse_bench.rs) and then
# onnx.parser.parse_model in the virtualenv of scripts/onnx_check.sh, and prints both side by side.
# MB = 10^6 bytes of input text; best and median of REPEATS runs each.
set -euo pipefail

repeats="${1:-5}"
case "$repeats" in
'' | *[!0-9]* | 0)
    echo "usage: $0 [REPEATS]" >&2
    exit 2
    ;;
esac

cd "$(dirname "$0")/.."

py="$(scripts/onnx_check.sh --setup)"
cargo build --release --quiet --bin etch --example parse_bench

tmp="$(mktemp -d -t etch-bench-parse.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
text="$tmp/resnet18_full.onnx.txt"
target/release/etch convert examples/models/resnet18.onnx.txt -o "$text" --seed 1

echo "== etch (examples/parse_bench.rs)"
etch_out="$(target/release/examples/parse_bench "$text" "$repeats")"
echo "$etch_out"

echo "== onnx $("$py" -c 'import onnx; print(onnx.__version__)') (onnx.parser.parse_model)"
"$py" - "$text" "$repeats" "$etch_out" <<'EOF'
import os
import statistics
import sys
import time

import onnx
import onnx.parser
from onnx.onnx_cpp2py_export import parser as cparser

path, repeats, etch_out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path, encoding="utf-8") as f:
    text = f.read()
mb = os.path.getsize(path) / 1e6


def timed(fn):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = fn()
        times.append(time.perf_counter() - t0)
        del r
    return min(times), statistics.median(times)


# what a Python user calls: the C++ parser, then the proto handed to Python
full = timed(lambda: onnx.parser.parse_model(text))
# the C++ parser alone (it returns the serialized ModelProto)
cpp = timed(lambda: cparser.parse_model(text))
for label, (b, m) in (("onnx.parser.parse_model", full), ("  C++ parse + serialize only", cpp)):
    print(f"{label:<28}: best {b:8.3f} s ({mb / b:7.1f} MB/s), median {m:8.3f} s ({mb / m:7.1f} MB/s)")

fields = dict(kv.split("=") for line in etch_out.splitlines() if line.startswith("parse_bench ") for kv in line.split()[1:])
eb, em = float(fields["etch_parse_best_s"]), float(fields["etch_parse_median_s"])
print()
print(f"== {mb:.1f} MB of ONNX text, {repeats} repeats, {os.cpu_count()} CPUs")
print(f"{'':<26}{'best MB/s':>12}{'median MB/s':>14}")
print(f"{'etch parse_model':<26}{mb / eb:>12.1f}{mb / em:>14.1f}")
print(f"{'onnx.parser.parse_model':<26}{mb / full[0]:>12.1f}{mb / full[1]:>14.1f}")
print(f"{'onnx C++ parser alone':<26}{mb / cpp[0]:>12.1f}{mb / cpp[1]:>14.1f}")
print(f"etch / onnx.parser.parse_model: {full[0] / eb:.2f}x (best), {full[1] / em:.2f}x (median)")
print(f"etch / onnx C++ parser alone:   {cpp[0] / eb:.2f}x (best), {cpp[1] / em:.2f}x (median)")
EOF
