#!/usr/bin/env python3
"""Checks etch's integer executor on quantized digits models against onnxruntime on the QDQ export.

Usage: quant_check.py ETCH_BINARY

For the digits models (cnn, mlp, residual, depthwise-separable) and each quantization below, `etch convert --passes SPEC` writes the
QDQ model (QuantizeLinear/DequantizeLinear around int8 weights and activations, ONNX text); it must
pass onnx's parser and full checker. Then on every row of examples/data/digits_test.csv:

  etch   `etch run` (the CPU executor: the quantized layers in int32 with fixed-point requantization,
         MaxPool/Flatten and residual Adds
         on the int8 codes), and `etch eval --json` for top-1;
  qdq    onnxruntime with graph optimizations disabled: every QuantizeLinear/DequantizeLinear and
         layer computed in float as written, the reference semantics;
  ort    onnxruntime with its default graph optimizations, for information only: it fuses the QDQ
         patterns into integer kernels whose results depend on the onnxruntime version and on the
         CPU's instruction set (without VNNI they saturate 16-bit intermediates), so it is no
         criterion.

The outputs are int8 codes dequantized by the graph's last DequantizeLinear, so a difference is a
whole number of output steps (its scale). Required, per model and quantization, against qdq: no
output more than one step away and at most MAX_OFF_FRACTION of them one step away (the reference
computes in float, so an exact rounding tie may fall either way with the CPU's FMA use), and top-1
accuracy (argmax, first of equal scores) equal between `etch eval` and `etch run` and within one
sample of qdq's. One line per case; the last line is `N passed, M failed`; exit status 1 if any
failed.
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import onnx.parser
import onnxruntime as ort

REPO = Path(__file__).resolve().parent.parent
CALIB = "examples/data/digits_train.csv"
TEST = REPO / "examples/data/digits_test.csv"
Q8 = f'quant(bits=8,per=channel,calib="{CALIB}")'
CASES = [
    ("digits_cnn", "int8 per-channel", Q8),
    ("digits_mlp", "int8 per-channel", Q8),
    ("digits_cnn", "int8 per-tensor, percentile", f'quant(bits=8,per=tensor,calib_method=percentile,calib="{CALIB}")'),
    ("digits_cnn", "int4 weights", f'quant(bits=4,calib="{CALIB}")'),
    ("digits_mlp", "int4 weights", f'quant(bits=4,calib="{CALIB}")'),
    ("digits_cnn", "int4 weights and activations", f'quant(bits=4,act_bits=4,calib="{CALIB}")'),
    ("digits_cnn", "pow2 4-bit weights", f"pow2(bits=4),{Q8}"),
    ("digits_mlp", "pow2 4-bit weights", f"pow2(bits=4),{Q8}"),
    ("digits_cnn", "binarized (xnor), first/last int8", f'binarize(keep=[first,last],calib="{CALIB}"),{Q8}'),
    ("digits_res", "int8 per-channel, residual Add on codes", f"fold-bn,{Q8}"),
    ("digits_res", "int4 weights and activations, residual Add on codes", f'fold-bn,quant(bits=4,act_bits=4,calib="{CALIB}")'),
    ("digits_ds", "int8 per-channel, depthwise", f"fold-bn,{Q8}"),
]


MAX_OFF_FRACTION = 0.01


def session(model, optimize):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def output_step(model):
    """The scale of the DequantizeLinear that writes the graph output."""
    out = model.graph.output[0].name
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    for n in model.graph.node:
        if out in n.output:
            if n.op_type != "DequantizeLinear":
                raise SystemExit(f"the graph output `{out}` is written by {n.op_type}, not DequantizeLinear")
            return float(inits[n.input[1]])
    raise SystemExit(f"nothing writes `{out}`")


def argmax_first(y):
    return int(np.argmax(y))  # numpy returns the first of equal maxima


def check(etch, tmp, name, label, spec):
    src = REPO / f"examples/models/{name}.onnx.txt"
    qpath = tmp / f"{name}.q.onnx.txt"
    subprocess.run([etch, "convert", str(src), "--passes", spec, "-o", str(qpath)], check=True, cwd=REPO, capture_output=True)
    model = onnx.parser.parse_model(qpath.read_text())
    onnx.checker.check_model(model, full_check=True)
    step = output_step(model)
    fused, plain = session(model, True), session(model, False)
    in_name = fused.get_inputs()[0].name
    in_shape = [d if isinstance(d, int) else 1 for d in fused.get_inputs()[0].shape]
    rows = np.loadtxt(TEST, delimiter=",", dtype=np.float32)
    labels, xs = rows[:, 0].astype(int), rows[:, 1:]
    worst = {"ort": 0.0, "qdq": 0.0}
    off = {"ort": 0, "qdq": 0}
    right = {"etch": 0, "ort": 0, "qdq": 0}
    for k, (lab, x) in enumerate(zip(labels, xs)):
        x = x.reshape(in_shape)
        xin, yout = tmp / "x.npy", tmp / "y.npy"
        np.save(xin, x)
        subprocess.run([etch, "run", str(qpath), "--input", str(xin), "--output", str(yout)], check=True, capture_output=True)
        y = {"etch": np.load(yout), "ort": fused.run(None, {in_name: x})[0], "qdq": plain.run(None, {in_name: x})[0]}
        for ref in ("ort", "qdq"):
            steps = np.abs(y["etch"].astype(np.float64) - y[ref]) / step
            worst[ref] = max(worst[ref], float(steps.max()))
            off[ref] += int((steps > 0.5).sum())
        for who in right:
            right[who] += argmax_first(y[who]) == lab
    ev = subprocess.run([etch, "eval", str(qpath), "--data", str(TEST), "--json"], check=True, capture_output=True, text=True, cwd=REPO)
    eval_right = round(json.loads(ev.stdout)["top1"] * len(labels))
    n_out = len(labels) * int(np.prod(y["etch"].shape))
    ok = (
        worst["qdq"] <= 1.0 + 1e-3
        and off["qdq"] <= MAX_OFF_FRACTION * n_out
        and eval_right == right["etch"]
        and abs(right["etch"] - right["qdq"]) <= 1
    )
    print(
        f"{'ok  ' if ok else 'FAIL'} {name:10} {label:34} vs qdq: {off['qdq']}/{n_out} outputs off (max {worst['qdq']:.2f} steps of {step:.4g}); "
        f"top-1 etch eval {eval_right}, etch run {right['etch']}, qdq {right['qdq']} of {len(labels)}; "
        f"info, ort fused kernels: {off['ort']}/{n_out} off (max {worst['ort']:.2f} steps), top-1 {right['ort']}"
    )
    return ok


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    etch = sys.argv[1]
    passed = failed = 0
    with tempfile.TemporaryDirectory() as t:
        for name, label, spec in CASES:
            try:
                ok = check(etch, Path(t), name, label, spec)
            except (subprocess.CalledProcessError, onnx.checker.ValidationError, SystemExit) as e:
                detail = getattr(e, "stderr", None) or str(e)
                print(f"FAIL {name:10} {label:34} {detail if isinstance(detail, str) else detail.decode()}".rstrip())
                ok = False
            passed += ok
            failed += not ok
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
