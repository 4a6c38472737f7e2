#!/usr/bin/env bash
# resnet18 batch-1 latency: etch's CPU executor against onnxruntime, on one and on two threads.
#
# Usage: scripts/bench_resnet18.sh [RUNS [ROUNDS]]      (default 20 runs in 4 rounds)
#
# Builds etch and examples/bench_resnet18.rs in release, writes the full-weight resnet18 text to a
# temp dir with `etch convert --seed 1`, makes one random float32 input (numpy, seed 0), and times
# RUNS batch-1 inferences of each configuration:
#   etch   examples/bench_resnet18.rs (plan built once per process), RAYON_NUM_THREADS=1 and =2;
#   ORT    an onnxruntime InferenceSession on onnx.parser.parse_model of the same text, CPU
#          provider, intra_op_num_threads=1 and =2 (inter-op 1, sequential), with graph
#          optimizations enabled (ORT_ENABLE_ALL, its normal mode) and disabled (ORT_DISABLE_ALL).
# The runs are split over ROUNDS rounds that visit every configuration in turn, each after a
# warm-up run, so a change in the machine's load hits all of them alike. Prints the wall-clock
# median and min per configuration and the process CPU time per run (which other processes on a
# busy machine disturb far less), the ratios etch/ORT, and how far etch's output is from ORT's.
set -euo pipefail

runs="${1:-20}"
rounds="${2:-4}"
for v in "$runs" "$rounds"; do
    case "$v" in
    '' | *[!0-9]* | 0)
        echo "usage: $0 [RUNS [ROUNDS]]" >&2
        exit 2
        ;;
    esac
done

cd "$(dirname "$0")/.."

py="$(scripts/onnx_check.sh --setup)"
cargo build --release --quiet --bin etch --example bench_resnet18

tmp="$(mktemp -d -t etch-bench-resnet18.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
text="$tmp/resnet18_full.onnx.txt"
target/release/etch convert examples/models/resnet18.onnx.txt -o "$text" --seed 1 2>/dev/null

"$py" - "$text" "$runs" "$rounds" "$tmp" target/release/examples/bench_resnet18 <<'EOF'
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import onnx.parser
import onnxruntime as ort

text_path, runs, rounds, tmp, bench = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
with open(text_path, encoding="utf-8") as f:
    model = onnx.parser.parse_model(f.read()).SerializeToString()
x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
np.save(os.path.join(tmp, "x.npy"), x)
per_round = [runs // rounds + (1 if r < runs % rounds else 0) for r in range(rounds)]

THREADS = (1, 2)
LEVELS = {"optimized": ort.GraphOptimizationLevel.ORT_ENABLE_ALL, "unoptimized": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}
sessions = {}
for t in THREADS:
    for name, level in LEVELS.items():
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = t
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = level
        sessions[(t, name)] = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
del model
feed = {sessions[(1, "optimized")].get_inputs()[0].name: x}

wall = {}  # (who, threads) -> wall-clock ms of every run
cpu = {}  # (who, threads) -> (CPU ms, runs)
ort_out = {}


def record(config, times, cpu_ms):
    wall.setdefault(config, []).extend(times)
    c, n = cpu.get(config, (0.0, 0))
    cpu[config] = (c + cpu_ms, n + len(times))


def run_etch(t, n, first):
    cmd = [bench, text_path, "--runs", str(n), "--input", os.path.join(tmp, "x.npy")]
    if first:
        cmd += ["--output", os.path.join(tmp, f"y{t}.npy")]
    env = dict(os.environ, RAYON_NUM_THREADS=str(t))
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("bench_resnet18 "))
    fields = dict(kv.split("=", 1) for kv in line.split()[1:])
    record(("etch", t), [float(v) for v in fields["times_ms"].split(",")], float(fields["cpu_ms_per_run"]) * n)


def run_ort(t, name, n):
    sess = sessions[(t, name)]
    ort_out[(t, name)] = sess.run(None, feed)[0]  # warm-up
    times = []
    c0 = time.process_time()
    for _ in range(n):
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - t0) * 1e3)
    record((name, t), times, (time.process_time() - c0) * 1e3)


for r, n in enumerate(per_round):
    if n == 0:
        continue
    print(f"round {r + 1}/{rounds}: {n} runs of each configuration", flush=True)
    for t in THREADS:
        run_etch(t, n, r == 0)
        for name in LEVELS:
            run_ort(t, name, n)

print()
for t in THREADS:
    y = ort_out[(t, "unoptimized")]
    err = np.abs(np.load(os.path.join(tmp, f"y{t}.npy")).astype(np.float64) - y)
    ok = bool(np.all(err <= 1e-5 + 1e-4 * np.abs(y)))
    print(f"output, {t} thread(s): etch vs unoptimized ORT max abs error {err.max():.2e} at output max |{np.abs(y).max():.2e}|"
          f" ({'within' if ok else 'OUTSIDE'} 1e-5 + 1e-4|ort|)")


def stats(config):
    w = wall[config]
    c, n = cpu[config]
    return statistics.median(w), min(w), c / n


print()
print(f"== resnet18 batch 1: {runs} runs per configuration in {rounds} interleaved rounds, {os.cpu_count()} CPUs, "
      f"onnxruntime {ort.__version__}")
print("median ms (min ms) and CPU ms per run (process CPU time, all threads); ratio = etch / ORT of each")
cell = lambda s: f"{s[0]:7.2f} ({s[1]:6.2f}) {s[2]:6.1f}"
head = f"{'threads':>7} | {'etch':^23} | " + " | ".join(f"{'ORT ' + n:^23} | {'ratio med min CPU':^17}" for n in LEVELS)
print(head)
print("-" * len(head))
for t in THREADS:
    e = stats(("etch", t))
    cols = [f"{t:>7}", cell(e)]
    for name in LEVELS:
        o = stats((name, t))
        cols += [cell(o), f"{e[0] / o[0]:5.2f} {e[1] / o[1]:5.2f} {e[2] / o[2]:5.2f}"]
    print(" | ".join(cols))
EOF
