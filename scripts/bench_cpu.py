#!/usr/bin/env python3
"""Batch-1 latency of etch's CPU executor beside onnxruntime's, float32 and int8, in one run.

Usage: bench_cpu.py ETCH BENCH [--runs N] [--rounds R] [MODEL ...]
       (scripts/bench_cpu.sh builds ETCH and BENCH, examples/bench_cpu.rs, in release and runs this
       with the test virtualenv .venv/)

For every MODEL (default: examples/models/resnet18.onnx.txt and mobilenet_v2.onnx.txt; a text with
shape-only weights is filled by `ETCH convert --seed 1`), on one random float32 input (numpy, seed
0) of the model's input shape:

  float  etch (BENCH: plan built once per process, RAYON_NUM_THREADS=T, `--max-bytes` 8 GiB) and an onnxruntime
         InferenceSession (CPU provider, intra_op_num_threads=T, inter-op 1, sequential) with graph
         optimizations enabled (ORT_ENABLE_ALL, its normal mode);
  int8   the same model after onnxruntime's quant_pre_process, quantized by its quantize_static
         (QDQ format, int8 activations and per-channel int8 weights, calibrated on 4 random inputs): etch runs those QDQ layers
         on its integer kernels, onnxruntime on its own (optimized, so it fuses QDQ into its int8
         kernels). Where etch cannot run the QDQ model, the table says why.

for T = 1 and 2. RUNS (default 10) timed runs of each configuration, after a warm-up, split over
ROUNDS (default 2) rounds that visit every configuration in turn, so a change in the machine's load
hits all of them alike. Prints per model and configuration the median wall-clock ms of etch and
ORT and their ratio (etch / ORT; below 1 etch is faster), and how far etch's float output is from
ORT's unoptimized one (ORT_DISABLE_ALL: every node computed as written).
"""

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnx.parser
import onnxruntime as ort

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODELS = ["examples/models/resnet18.onnx.txt", "examples/models/mobilenet_v2.onnx.txt"]
THREADS = (1, 2)
# etch's memory limits for the benchmark's models (a QDQ ViT-B's values take 3.7 GiB together)
MAX_BYTES = 8 << 30


def session(model_bytes, threads, level=ort.GraphOptimizationLevel.ORT_ENABLE_ALL):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = level
    opts.log_severity_level = 3
    return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])


def load(etch, path, tmp):
    """The model as an onnx proto with every weight (texts filled by `etch convert`)."""
    if path.suffix == ".onnx":
        return onnx.load(str(path))
    full = tmp / (path.name.replace(".onnx.txt", "") + "_full.onnx.txt")
    subprocess.run([etch, "convert", str(path), "-o", str(full), "--seed", "1"], check=True, capture_output=True)
    return onnx.parser.parse_model(full.read_text())


def input_of(model):
    inits = {t.name for t in model.graph.initializer}
    inp = next(i for i in model.graph.input if i.name not in inits)
    shape = [d.dim_value if d.dim_value > 0 else 1 for d in inp.type.tensor_type.shape.dim]
    return inp.name, shape


def quantize(model, name, shape, tmp):
    """onnxruntime's quantize_static of `model` (QDQ, int8, per channel), or the reason it failed."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from onnxruntime.quantization.shape_inference import quant_pre_process

    src, pre, dst = tmp / "float.onnx", tmp / "float_pre.onnx", tmp / "int8.onnx"
    onnx.save(model, str(src))
    # onnxruntime's recommended preprocessing: folds constants (the zoo texts' Identity-fed
    # biases), so that every bias is an initializer quantize_static can quantize
    quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    src = pre
    rng = np.random.default_rng(1)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{name: rng.standard_normal(shape).astype(np.float32)} for _ in range(4)])

        def get_next(self):
            return next(self.it, None)

    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    return dst


def etch_times(bench, path, x_path, threads, runs, out=None):
    cmd = [bench, str(path), "--runs", str(runs), "--input", str(x_path), "--max-bytes", str(MAX_BYTES)]
    if out:
        cmd += ["--output", str(out)]
    r = subprocess.run(cmd, env=dict(os.environ, RAYON_NUM_THREADS=str(threads)), capture_output=True, text=True)
    if r.returncode != 0:
        lines = [l for l in r.stderr.strip().splitlines() if l and not l.startswith("usage:")]
        raise RuntimeError(lines[0] if lines else f"exit {r.returncode}")
    line = next(l for l in r.stdout.splitlines() if l.startswith("bench_cpu "))
    fields = dict(kv.split("=", 1) for kv in line.split()[1:])
    return [float(v) for v in fields["times_ms"].split(",")]


def ort_times(sess, feed, runs):
    sess.run(None, feed)  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def bench_model(etch, bench, path, runs, rounds, tmp):
    model = load(etch, path, tmp)
    name, shape = input_of(model)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    x_path = tmp / "x.npy"
    np.save(x_path, x)
    float_path = tmp / "model.onnx"
    onnx.save(model, str(float_path))
    variants = {"float": float_path}
    notes = []
    try:
        variants["int8"] = quantize(model, name, shape, tmp)
    except Exception as e:  # reported, the float figures still come
        notes.append(f"int8: quantize_static failed: {str(e).strip().splitlines()[0][:200]}")
    feed = {name: x}
    sessions = {(v, t): session(p.read_bytes(), t) for v, p in variants.items() for t in THREADS}
    wall = {}
    failed = {}
    per_round = [runs // rounds + (1 if r < runs % rounds else 0) for r in range(rounds)]
    for r, n in enumerate(per_round):
        for v, p in variants.items():
            for t in THREADS:
                if (v, t) not in failed:
                    try:
                        out = tmp / f"y_{v}_{t}.npy" if r == 0 else None
                        wall.setdefault(("etch", v, t), []).extend(etch_times(bench, p, x_path, t, n, out))
                    except RuntimeError as e:
                        failed[(v, t)] = str(e)
                wall.setdefault(("ort", v, t), []).extend(ort_times(sessions[(v, t)], feed, n))
    ref = session(float_path.read_bytes(), 1, ort.GraphOptimizationLevel.ORT_DISABLE_ALL).run(None, feed)[0]
    if (tmp / "y_float_1.npy").exists():
        err = float(np.abs(np.load(tmp / "y_float_1.npy").astype(np.float64) - ref).max())
        notes.append(f"float output: etch vs unoptimized ORT max abs error {err:.2e} (|ORT| max {np.abs(ref).max():.2e})")
    rows = []
    for v in variants:
        for t in THREADS:
            o = statistics.median(wall[("ort", v, t)])
            if (v, t) in failed:
                rows.append((v, t, None, o, failed[(v, t)]))
            else:
                e = statistics.median(wall[("etch", v, t)])
                rows.append((v, t, e, o, None))
    return rows, notes


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("etch")
    ap.add_argument("bench")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("models", nargs="*", default=DEFAULT_MODELS)
    args = ap.parse_intermixed_args()
    logging.getLogger().setLevel(logging.ERROR)  # quantize_static's advice on every layer
    if args.runs < 1 or not 1 <= args.rounds <= args.runs:
        ap.error("--runs must be positive and --rounds between 1 and --runs")
    print(f"batch 1, median of {args.runs} runs per configuration in {args.rounds} interleaved rounds; "
          f"{os.cpu_count()} CPUs; onnxruntime {ort.__version__} (ORT_ENABLE_ALL)")
    head = f"{'model':<28} {'type':<6} {'threads':>7} {'etch ms':>9} {'ORT ms':>9} {'etch/ORT':>9}"
    print(head)
    print("-" * len(head))
    for m in args.models:
        path = (REPO / m) if not Path(m).is_absolute() else Path(m)
        with tempfile.TemporaryDirectory(prefix="etch-bench-cpu.") as t:
            rows, notes = bench_model(args.etch, args.bench, path, args.runs, args.rounds, Path(t))
        label = path.name.replace(".onnx.txt", "").replace(".onnx", "")
        for v, th, e, o, why in rows:
            if e is None:
                print(f"{label:<28} {v:<6} {th:>7} {'-':>9} {o:9.2f} {'-':>9}  etch: {why[:150]}")
            else:
                print(f"{label:<28} {v:<6} {th:>7} {e:9.2f} {o:9.2f} {e / o:9.2f}")
        for n in notes:
            print(f"{'':<28} {n}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
