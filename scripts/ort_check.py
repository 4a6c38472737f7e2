#!/usr/bin/env python3
"""Checks etch's CPU executor against onnxruntime, element by element.

Usage: ort_check.py ETCH_BINARY [--only SUBSTRING]

Three groups of checks, one line each (`ok` or `FAIL`, details on stderr), then `N passed, M failed`
alone on the last line; the exit status is 1 if any check failed.

  models     every examples/models/*.onnx.txt, weights filled by `etch convert --seed 5`, on a seeded
             random input of the graph input's shape (digits models: also real rows of
             examples/data/digits_test.csv); digits_cnn and digits_mlp are also rewritten with a
             symbolic batch dim N (and digits_cnn with Flatten replaced by Reshape [0, -1]) and run
             on batches of 2 and of all 360 test rows;
  eval       `etch eval` on digits_cnn / digits_mlp prints 344/360 / 330/360, and onnxruntime
             classifies the same rows with the same number right;
  ops        small opset-17 graphs built here with onnx.helper, one per op variant that needs care.

Every comparison runs `etch run MODEL --input x.npy --output y.npy` and an onnxruntime
InferenceSession (CPU provider, graph optimizations disabled, so ORT computes each node as written)
on `onnx.parser.parse_model(text)` of the same text, and requires
    |etch - ort| <= 1e-5 + 1e-4 * |ort|
for every element, with the same shape. Per check it prints the largest absolute error, the largest
relative error (over elements where ORT's value is not 0) and `tol`, the worst error as a fraction of
the allowed one (≤ 1 passes), and `|ort|max`, the output's scale.

Ops that needed care in the executor (all covered by the `ops` cases):
  - AveragePool with ceil_mode: the last window may run past the padded input; ORT clips it to the
    padded extent before counting (count_include_pad=1) and to the input (count_include_pad=0);
  - MaxPool/AveragePool/Conv pads: asymmetric pads and auto_pad SAME_UPPER/SAME_LOWER (the odd
    padding goes at the end for UPPER, the beginning for LOWER); ceil_mode drops a last window
    that would start inside the end padding;
  - grouped and depthwise Conv, including a channel multiplier (group = C, M = 2·C);
  - Gemm's C broadcast ([N], [M,1], scalar) and alpha/beta; Clip with omitted min or max, and
    with min > max, where every value becomes max (a bug these cases found: etch gave min);
  - Slice with negative steps and out-of-range starts/ends (clamped per direction).
onnx's own shape inference (1.23) keeps the ceil_mode window that starts in the end padding, so
the expected output shapes here come from onnxruntime, not from onnx.shape_inference.
"""

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnx.helper as oh
import onnx.numpy_helper
import onnx.parser
import onnx.printer
import onnxruntime as ort
from onnx import TensorProto

REPO = Path(__file__).resolve().parent.parent
SEED = 5  # `etch convert --seed` for the shape-only weights
RTOL, ATOL = 1e-4, 1e-5
OPSET = 17
DIGITS = {"digits_cnn": 344, "digits_mlp": 330}  # expected right answers out of 360 (REFERENCE.tsv)


class Checks:
    def __init__(self, only):
        self.only = only
        self.passed = 0
        self.failed = 0

    def run(self, group, name, fn):
        """Runs one check; `fn` returns a detail string on success and raises on failure."""
        label = f"{group}/{name}"
        if self.only and self.only not in label:
            return
        t0 = time.perf_counter()
        try:
            detail = fn()
            self.passed += 1
            print(f"ok   {label:<40} {detail} ({time.perf_counter() - t0:.1f}s)")
        except Exception as e:  # every failure is reported, and the remaining checks still run
            self.failed += 1
            print(f"FAIL {label:<40} ({time.perf_counter() - t0:.1f}s)")
            sys.stdout.flush()
            msg = str(e).strip() or type(e).__name__
            for line in msg.splitlines()[:12]:
                print(f"       {line[:400]}", file=sys.stderr)
            sys.stderr.flush()
        sys.stdout.flush()


# ---------------------------------------------------------------- running etch and onnxruntime


def etch(binary, *args):
    r = subprocess.run([binary, *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"`etch {' '.join(map(str, args))}` exited {r.returncode}:\n{r.stderr.strip()}")
    return r.stdout


def etch_run(binary, model_path, x, work):
    xp, yp = work / "x.npy", work / "y.npy"
    np.save(xp, x)
    if yp.exists():
        yp.unlink()
    etch(binary, "run", model_path, "--input", xp, "--output", yp)
    return np.load(yp)


def ort_session(text):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    model = onnx.parser.parse_model(text)
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def ort_run(sess, x):
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def compare(got, want):
    """Raises unless every element is within tolerance; returns the error summary."""
    got = np.asarray(got)
    want = np.asarray(want)
    if got.shape != want.shape:
        raise AssertionError(f"shape {list(got.shape)} from etch, {list(want.shape)} from onnxruntime")
    g = got.astype(np.float64)
    w = want.astype(np.float64)
    err = np.abs(g - w)
    allowed = ATOL + RTOL * np.abs(w)
    bad = ~(err <= allowed)  # NaN counts as bad
    nz = w != 0
    max_abs = float(err.max()) if err.size else 0.0
    max_rel = float((err[nz] / np.abs(w[nz])).max()) if nz.any() else 0.0
    tol = float((err / allowed).max()) if err.size else 0.0
    scale = float(np.abs(w).max()) if w.size else 0.0
    summary = f"max_abs={max_abs:.2e} max_rel={max_rel:.2e} tol={tol:.2f} |ort|max={scale:.2e}"
    if bad.any():
        k = np.unravel_index(np.argmax(np.where(bad, np.nan_to_num(err / allowed, nan=np.inf), -1)), err.shape)
        raise AssertionError(
            f"{int(bad.sum())} of {err.size} elements out of tolerance; {summary}\n"
            f"worst at {list(map(int, k))}: etch {got[k]!r}, onnxruntime {want[k]!r}"
        )
    return summary


def check_text(binary, text, inputs, work, name="model"):
    """Runs `text` on each input in etch and ORT; returns the worst summary line."""
    path = work / f"{name}.onnx.txt"
    path.write_text(text)
    sess = ort_session(text)
    summaries = []
    for x in inputs:
        summaries.append(compare(etch_run(binary, path, x, work), ort_run(sess, x)))
    return summaries[0] if len(summaries) == 1 else " | ".join(summaries)


# ---------------------------------------------------------------- the shipped models


def input_shape(model, batch=None):
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else batch for d in dims]


def digits_rows():
    data = np.loadtxt(REPO / "examples/data/digits_test.csv", delimiter=",", dtype=np.float32)
    return data[:, 0].astype(np.int64), data[:, 1:]


def symbolic_batch(model, reshape=False):
    """The model with its input's and output's first dim made symbolic (`N`); with `reshape`, its
    Flatten nodes replaced by Reshape to [0, -1] (same result for axis 1)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for vi in list(m.graph.input[:1]) + list(m.graph.output):
        d = vi.type.tensor_type.shape.dim[0]
        d.Clear()
        d.dim_param = "N"
    if reshape:
        nodes = []
        for n in m.graph.node:
            if n.op_type == "Flatten":
                shape_name = n.output[0] + "_shape"
                m.graph.initializer.append(onnx.numpy_helper.from_array(np.array([0, -1], np.int64), shape_name))
                n = oh.make_node("Reshape", [n.input[0], shape_name], list(n.output), name=n.name)
            nodes.append(n)
        del m.graph.node[:]
        m.graph.node.extend(nodes)
    return m


def check_models(checks, binary, work):
    labels, pixels = digits_rows()
    for path in sorted((REPO / "examples/models").glob("*.onnx.txt")):
        name = path.name.removesuffix(".onnx.txt")
        full = work / f"{name}.full.onnx.txt"
        state = {}

        def converted(full=full, path=path, state=state):
            if "text" not in state:
                etch(binary, "convert", path, "-o", full, "--seed", SEED)
                state["text"] = full.read_text()
                state["model"] = onnx.parser.parse_model(state["text"])
            return state["text"], state["model"]

        def random_input(name=name, converted=converted):
            text, model = converted()
            rng = np.random.default_rng(SEED)
            shape = input_shape(model, 1)
            x = rng.uniform(0, 16, shape) if name.startswith("digits") else rng.standard_normal(shape)
            return check_text(binary, text, [x.astype(np.float32)], work, name)

        checks.run("models", name, random_input)
        if name.startswith("digits"):

            def real_rows(name=name, converted=converted):
                text, model = converted()
                shape = input_shape(model, 1)
                rows = [pixels[k].reshape(shape) for k in (0, 1, 100, 359)]
                return check_text(binary, text, rows, work, name)

            checks.run("models", f"{name} (test rows 0,1,100,359)", real_rows)
            variants = [("batchN", False)] + ([("batchN-reshape", True)] if name == "digits_cnn" else [])
            for tag, reshape in variants:

                def batched(name=name, converted=converted, reshape=reshape, tag=tag):
                    _, model = converted()
                    text = onnx.printer.to_text(symbolic_batch(model, reshape))
                    shape2 = input_shape(onnx.parser.parse_model(text), 2)
                    rng = np.random.default_rng(SEED + 1)
                    x2 = rng.uniform(0, 16, shape2).astype(np.float32)
                    xall = pixels.reshape(input_shape(onnx.parser.parse_model(text), len(pixels)))
                    return check_text(binary, text, [x2, xall], work, f"{name}-{tag}")

                checks.run("models", f"{name} {tag} (batch 2, batch 360)", batched)
        state.clear()
        if full.exists():
            full.unlink()


def check_eval(checks, binary, work):
    labels, pixels = digits_rows()
    csv = REPO / "examples/data/digits_test.csv"
    for name, expected in DIGITS.items():

        def one(name=name, expected=expected):
            path = REPO / "examples/models" / f"{name}.onnx.txt"
            out = etch(binary, "eval", path, "--data", csv)
            want = f"{expected}/{len(labels)}"
            if want not in out:
                raise AssertionError(f"`etch eval` printed {out.strip()!r}, expected {want}")
            sess = ort_session(path.read_text())
            shape = input_shape(onnx.parser.parse_model(path.read_text()), 1)
            pred = np.array([ort_run(sess, p.reshape(shape)).argmax() for p in pixels])
            right = int((pred == labels).sum())
            if right != expected:
                raise AssertionError(f"onnxruntime gets {right}/{len(labels)}, etch {want}")
            return f"etch {want}, onnxruntime {right}/{len(labels)}"

        checks.run("eval", name, one)


# ---------------------------------------------------------------- synthetic op cases


def f32(*shape, seed=0, lo=-1.0, hi=1.0):
    return np.random.default_rng(1000 + seed).uniform(lo, hi, shape).astype(np.float32)


def i64(*values):
    return np.array(values, dtype=np.int64)


def op_model(name, nodes, x, inits, opset=OPSET):
    """A one-input (`x`, float) one-output (`y`) opset-17 model; `inits` maps names to arrays. The
    output's declared shape is the one onnxruntime computes on `x` (onnx's own shape inference
    disagrees with onnxruntime on ceil_mode pooling whose last window starts in the end padding:
    onnxruntime drops that window, as PyTorch does, and etch follows onnxruntime)."""

    def build(y_shape):
        graph = oh.make_graph(
            nodes,
            name,
            [oh.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
            [oh.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
            initializer=[onnx.numpy_helper.from_array(v, k) for k, v in inits.items()],
        )
        return oh.make_model(graph, opset_imports=[oh.make_opsetid("", opset)], ir_version=8 if opset < 19 else 9)

    sess = ort_session(onnx.printer.to_text(build(None)))
    model = build(list(ort_run(sess, x).shape))
    onnx.checker.check_model(model)  # not full_check: that includes onnx's shape inference
    return model


def node(op, inputs, outputs=("y",), **attrs):
    return oh.make_node(op, list(inputs), list(outputs), **attrs)


def op_cases():
    """(name, nodes, x_shape, initializers) for every op variant checked."""
    cases = []

    def add(name, nodes, x_shape, opset=OPSET, x_range=(-1.0, 1.0), **inits):
        cases.append((name, nodes if isinstance(nodes, list) else [nodes], x_shape, inits, opset, x_range))

    # Conv: the im2col path, the pointwise path, the depthwise kernel, and their window variants
    b4 = f32(4, seed=2)
    add("conv-basic", node("Conv", ["x", "w", "b"], pads=[1, 1, 1, 1]), [1, 3, 7, 7], w=f32(4, 3, 3, 3), b=b4)
    add("conv-no-bias-batch2", node("Conv", ["x", "w"]), [2, 3, 6, 5], w=f32(4, 3, 3, 2))
    add("conv-grouped", node("Conv", ["x", "w", "b"], group=2, pads=[1, 0, 1, 0]), [1, 4, 6, 6], w=f32(6, 2, 3, 3), b=f32(6))
    add("conv-grouped-4-strided", node("Conv", ["x", "w"], group=4, strides=[2, 2]), [2, 8, 7, 7], w=f32(8, 2, 3, 3))
    add("conv-depthwise", node("Conv", ["x", "w", "b"], group=4, pads=[1, 1, 1, 1]), [1, 4, 6, 6], w=f32(4, 1, 3, 3), b=b4)
    add("conv-depthwise-strided", node("Conv", ["x", "w"], group=4, strides=[2, 2], pads=[1, 1, 1, 1]), [2, 4, 7, 8], w=f32(4, 1, 3, 3))
    add("conv-depthwise-dilated", node("Conv", ["x", "w"], group=4, dilations=[2, 2], pads=[2, 1, 2, 1]), [1, 4, 7, 7], w=f32(4, 1, 3, 3))
    add("conv-depthwise-tap-on-padding-only", node("Conv", ["x", "w"], group=2, pads=[0, 0, 0, 2]), [1, 2, 1, 1], w=f32(2, 1, 1, 3))
    add("conv-depthwise-multiplier", node("Conv", ["x", "w", "b"], group=3, pads=[1, 1, 1, 1]), [1, 3, 5, 5], w=f32(6, 1, 3, 3), b=f32(6))
    add("conv-dilated", node("Conv", ["x", "w"], dilations=[2, 3], pads=[2, 3, 2, 3]), [1, 3, 9, 9], w=f32(4, 3, 3, 3))
    add("conv-strided", node("Conv", ["x", "w", "b"], strides=[2, 3], pads=[1, 1, 1, 1]), [1, 3, 9, 10], w=f32(4, 3, 3, 3), b=b4)
    add("conv-asymmetric-pads", node("Conv", ["x", "w", "b"], pads=[0, 1, 2, 3]), [1, 3, 6, 6], w=f32(4, 3, 3, 3), b=b4)
    add("conv-same-upper", node("Conv", ["x", "w"], auto_pad="SAME_UPPER", strides=[2, 2]), [1, 3, 7, 8], w=f32(4, 3, 4, 4))
    add("conv-same-lower", node("Conv", ["x", "w"], auto_pad="SAME_LOWER", strides=[2, 2]), [1, 3, 7, 8], w=f32(4, 3, 4, 4))
    add("conv-same-upper-stride1", node("Conv", ["x", "w"], auto_pad="SAME_UPPER"), [1, 2, 5, 5], w=f32(3, 2, 2, 2))
    add("conv-same-lower-stride1", node("Conv", ["x", "w"], auto_pad="SAME_LOWER"), [1, 2, 5, 5], w=f32(3, 2, 2, 2))
    add("conv-valid", node("Conv", ["x", "w"], auto_pad="VALID", strides=[2, 2]), [1, 2, 8, 7], w=f32(3, 2, 3, 3))
    add("conv-depthwise-same-upper", node("Conv", ["x", "w"], group=3, auto_pad="SAME_UPPER", strides=[2, 2]), [1, 3, 6, 6], w=f32(3, 1, 4, 4))
    add("conv-1x1", node("Conv", ["x", "w", "b"]), [2, 3, 4, 5], w=f32(4, 3, 1, 1), b=b4)
    add("conv-1x1-strided", node("Conv", ["x", "w"], strides=[2, 2]), [1, 3, 5, 5], w=f32(4, 3, 1, 1))
    add("conv-1x1-padded", node("Conv", ["x", "w"], pads=[1, 0, 0, 1]), [1, 3, 3, 3], w=f32(4, 3, 1, 1))
    add("conv-rect-kernel", node("Conv", ["x", "w"], kernel_shape=[3, 1], pads=[1, 0, 1, 0]), [1, 2, 5, 4], w=f32(3, 2, 3, 1))
    add("conv-grouped-dilated-asym", node("Conv", ["x", "w", "b"], group=2, dilations=[2, 1], strides=[1, 2], pads=[2, 0, 1, 1]), [2, 4, 7, 6], w=f32(4, 2, 3, 3), b=b4)
    add("conv-kernel-larger-than-input", node("Conv", ["x", "w"], pads=[1, 1, 1, 1]), [1, 2, 2, 2], w=f32(3, 2, 3, 3))
    # 3×3 stride-1 layers of 16+ channels run by Winograd's F(2×2, 3×3): odd extents (partial tiles), no padding, uneven padding
    add("conv-winograd-odd-batch2", node("Conv", ["x", "w", "b"], pads=[1, 1, 1, 1]), [2, 16, 9, 7], w=f32(24, 16, 3, 3), b=f32(24, seed=3))
    add("conv-winograd-valid", node("Conv", ["x", "w"]), [1, 17, 6, 11], w=f32(16, 17, 3, 3))
    add("conv-winograd-asym-pads", node("Conv", ["x", "w"], pads=[2, 0, 1, 2]), [1, 16, 8, 8], w=f32(16, 16, 3, 3))
    add("conv1d", node("Conv", ["x", "w", "b"], strides=[2], pads=[1, 2]), [2, 3, 10], w=f32(4, 3, 3), b=b4)
    add("conv1d-depthwise-dilated", node("Conv", ["x", "w"], group=3, dilations=[2], pads=[2, 2]), [1, 3, 9], w=f32(3, 1, 3))
    add("conv1d-same-lower", node("Conv", ["x", "w"], auto_pad="SAME_LOWER", strides=[3]), [1, 2, 10], w=f32(2, 2, 4))

    # ConvTranspose (explicit pads and output_padding, as PyTorch exports it)
    add("convtranspose-basic", node("ConvTranspose", ["x", "w", "b"]), [1, 3, 4, 4], w=f32(3, 2, 3, 3), b=f32(2))
    add("convtranspose-stride2-pads", node("ConvTranspose", ["x", "w"], strides=[2, 2], pads=[1, 1, 1, 1]), [2, 3, 4, 5], w=f32(3, 4, 3, 3))
    add("convtranspose-output-padding", node("ConvTranspose", ["x", "w", "b"], strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]), [1, 2, 3, 3], w=f32(2, 3, 3, 3), b=f32(3))
    add("convtranspose-unet-2x2", node("ConvTranspose", ["x", "w", "b"], strides=[2, 2]), [1, 4, 3, 3], w=f32(4, 2, 2, 2), b=f32(2))
    add("convtranspose-grouped-dilated", node("ConvTranspose", ["x", "w"], group=2, dilations=[2, 1], strides=[1, 2], pads=[0, 1, 1, 0]), [1, 4, 4, 4], w=f32(4, 3, 3, 2))
    add("convtranspose-1d", node("ConvTranspose", ["x", "w"], strides=[3], pads=[1, 2]), [2, 2, 5], w=f32(2, 3, 4))

    # Resize: nearest and linear, every coordinate mode, scales and sizes (opset 13; roi empty)
    empty = np.zeros(0, np.float32)
    for coords in ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"):
        add(f"resize-linear-{coords}", node("Resize", ["x", "", "s"], mode="linear", coordinate_transformation_mode=coords), [1, 2, 3, 4], s=np.array([1, 1, 2, 1.5], np.float32))
        add(f"resize-linear-down-{coords}", node("Resize", ["x", "", "", "z"], mode="linear", coordinate_transformation_mode=coords), [1, 2, 7, 5], z=i64(1, 2, 3, 4))
    for nearest in ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil"):
        add(f"resize-nearest-{nearest}", node("Resize", ["x", "r", "", "z"], mode="nearest", nearest_mode=nearest), [1, 2, 3, 5], r=empty, z=i64(1, 2, 7, 8))
    add("resize-nearest-2x-asymmetric-floor", node("Resize", ["x", "", "s"], mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"), [2, 3, 4, 4], s=np.array([1, 1, 2, 2], np.float32))
    add("resize-nearest-default", node("Resize", ["x", "", "s"]), [1, 1, 4, 6], s=np.array([1, 1, 0.5, 0.75], np.float32))
    add("resize-linear-3d", node("Resize", ["x", "", "s"], mode="linear"), [2, 3, 5], s=np.array([1, 1, 2.5], np.float32))

    # pooling
    add("maxpool-basic", node("MaxPool", ["x"], kernel_shape=[2, 2], strides=[2, 2]), [1, 2, 6, 6])
    add("maxpool-ceil", node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1), [1, 2, 8, 8])
    add("maxpool-ceil-pads", node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1), [1, 2, 8, 7])
    add("maxpool-ceil-drop-last", node("MaxPool", ["x"], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1), [1, 1, 4, 5])
    add("maxpool-pads-asym", node("MaxPool", ["x"], kernel_shape=[3, 2], strides=[1, 2], pads=[0, 1, 2, 1]), [1, 2, 5, 6])
    add("maxpool-dilated", node("MaxPool", ["x"], kernel_shape=[2, 2], dilations=[2, 2], strides=[1, 1]), [1, 2, 6, 6])
    add("maxpool-dilated-ceil-pads", node("MaxPool", ["x"], kernel_shape=[3, 3], dilations=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1), [1, 2, 9, 9])
    add("maxpool-same-upper", node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"), [1, 2, 6, 7])
    add("maxpool-same-lower", node("MaxPool", ["x"], kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_LOWER"), [1, 2, 5, 5])
    add("maxpool-1d", node("MaxPool", ["x"], kernel_shape=[3], strides=[2], pads=[1, 1], ceil_mode=1), [2, 3, 10])
    for cip in (0, 1):
        add(f"avgpool-cip{cip}", node("AveragePool", ["x"], kernel_shape=[3, 3], strides=[2, 2], count_include_pad=cip), [1, 2, 7, 7])
        add(f"avgpool-pads-cip{cip}", node("AveragePool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=cip), [1, 2, 7, 7])
        add(f"avgpool-ceil-cip{cip}", node("AveragePool", ["x"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1, count_include_pad=cip), [1, 2, 8, 8])
        add(f"avgpool-ceil-pads-cip{cip}", node("AveragePool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=cip), [1, 2, 8, 7])
        add(f"avgpool-ceil-asym-pads-cip{cip}", node("AveragePool", ["x"], kernel_shape=[2, 3], strides=[3, 2], pads=[0, 1, 1, 0], ceil_mode=1, count_include_pad=cip), [1, 2, 8, 9])
        add(f"avgpool-same-upper-cip{cip}", node("AveragePool", ["x"], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER", count_include_pad=cip), [1, 2, 6, 6])
        add(f"avgpool-same-lower-cip{cip}", node("AveragePool", ["x"], kernel_shape=[2, 2], strides=[1, 1], auto_pad="SAME_LOWER", count_include_pad=cip), [1, 2, 5, 5])
        add(f"avgpool-ceil-drop-last-cip{cip}", node("AveragePool", ["x"], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=cip), [1, 1, 4, 5])
        add(f"avgpool-1d-ceil-s3-cip{cip}", node("AveragePool", ["x"], kernel_shape=[3], strides=[3], pads=[1, 1], ceil_mode=1, count_include_pad=cip), [1, 2, 6])
        add(f"avgpool-1d-ceil-cip{cip}", node("AveragePool", ["x"], kernel_shape=[3], strides=[2], pads=[1, 1], ceil_mode=1, count_include_pad=cip), [1, 2, 8])
    add("globalavgpool", node("GlobalAveragePool", ["x"]), [2, 3, 5, 4])
    add("globalavgpool-1d", node("GlobalAveragePool", ["x"]), [2, 3, 7])
    add("globalmaxpool", node("GlobalMaxPool", ["x"]), [2, 3, 5, 4])

    # Gemm and MatMul
    add("gemm-plain", node("Gemm", ["x", "w"]), [3, 4], w=f32(4, 5))
    add("gemm-transB-bias", node("Gemm", ["x", "w", "c"], transB=1), [3, 4], w=f32(5, 4), c=f32(5))
    add("gemm-transA-alpha-beta", node("Gemm", ["x", "w", "c"], transA=1, alpha=0.5, beta=2.0), [4, 3], w=f32(4, 5), c=f32(3, 5))
    add("gemm-both-trans-col-bias", node("Gemm", ["x", "w", "c"], transA=1, transB=1, alpha=-1.5, beta=0.25), [4, 3], w=f32(5, 4), c=f32(3, 1))
    add("gemm-scalar-bias", node("Gemm", ["x", "w", "c"], beta=3.0), [2, 4], w=f32(4, 6), c=f32(seed=3))
    add("gemm-row-bias-2d", node("Gemm", ["x", "w", "c"], alpha=2.0), [2, 4], w=f32(4, 6), c=f32(1, 6))
    add("matmul-2d", node("MatMul", ["x", "w"]), [3, 4], w=f32(4, 5))
    add("matmul-batched-broadcast", node("MatMul", ["x", "w"]), [2, 1, 3, 4], w=f32(3, 4, 5))
    add("matmul-broadcast-lhs", node("MatMul", ["w", "x"]), [4, 5], w=f32(2, 3, 4))
    add("matmul-vector-rhs", node("MatMul", ["x", "w"]), [2, 3, 4], w=f32(4))
    add("matmul-batched-2d-rhs", node("MatMul", ["x", "w"]), [2, 3, 4], w=f32(4, 5))
    add("matmul-vector-lhs", node("MatMul", ["x", "w"]), [4], w=f32(2, 4, 5))

    # broadcasting arithmetic
    for op in ("Add", "Sub", "Mul", "Div"):
        lo = 0.5 if op == "Div" else -1.0
        add(f"{op.lower()}-broadcast", node(op, ["x", "b"]), [2, 3, 4, 5], b=f32(3, 1, 5, lo=lo))
        add(f"{op.lower()}-scalar", node(op, ["x", "b"]), [2, 3], b=f32(seed=4, lo=lo))
        add(f"{op.lower()}-outer", node(op, ["b", "x"]), [3, 1], b=f32(1, 4, lo=lo))
    add("add-same-shape", node("Add", ["x", "b"]), [2, 3], b=f32(2, 3))
    add("mul-leading-broadcast", node("Mul", ["x", "b"]), [4, 1, 3], b=f32(2, 1, 5, 1))

    # activations and normalizations
    add("relu", node("Relu", ["x"]), [2, 7])
    add("clip-none", node("Clip", ["x"]), [2, 7])
    add("clip-min-max", node("Clip", ["x", "lo", "hi"]), [2, 7], lo=np.float32(-0.3), hi=np.float32(0.4))
    add("clip-min-only", node("Clip", ["x", "lo"]), [2, 7], lo=np.float32(-0.3))
    add("clip-max-only", node("Clip", ["x", "", "hi"]), [2, 7], hi=np.float32(0.2))
    add("clip-min-above-max", node("Clip", ["x", "lo", "hi"]), [2, 7], lo=np.float32(0.3), hi=np.float32(-0.2))
    add("hardsigmoid-default", node("HardSigmoid", ["x"]), [3, 8])
    add("hardsigmoid-custom", node("HardSigmoid", ["x"], alpha=0.5, beta=0.3), [3, 8])
    add("hardswish", node("HardSwish", ["x"]), [3, 8])
    add("sigmoid", node("Sigmoid", ["x"]), [3, 8])
    # the element-wise functions of etch_ir::op::Unary, over ranges that reach their tails
    for op in ("Abs", "Neg", "Floor", "Ceil", "Sin", "Cos", "Tanh", "Erf", "Softplus", "Softsign", "Exp"):
        add(op.lower(), node(op, ["x"]), [4, 16], x_range=(-6.0, 6.0))
    add("mish", node("Mish", ["x"]), [4, 16], opset=18, x_range=(-6.0, 6.0))
    add("erf-small", node("Erf", ["x"]), [4, 16], x_range=(-0.01, 0.01))
    add("log", node("Log", ["x"]), [4, 16], x_range=(0.01, 50.0))
    add("sqrt", node("Sqrt", ["x"]), [4, 16], x_range=(0.0, 50.0))
    add("reciprocal", node("Reciprocal", ["x"]), [4, 16], x_range=(0.1, 10.0))
    add("leakyrelu-default", node("LeakyRelu", ["x"]), [3, 8])
    add("leakyrelu-alpha", node("LeakyRelu", ["x"], alpha=0.2), [3, 8])
    add("elu", node("Elu", ["x"], alpha=0.7), [3, 8], x_range=(-4.0, 4.0))
    add("gelu-exact", node("Gelu", ["x"]), [4, 16], opset=20, x_range=(-6.0, 6.0))
    add("gelu-tanh", node("Gelu", ["x"], approximate="tanh"), [4, 16], opset=20, x_range=(-6.0, 6.0))
    add("softmax-axis1", node("Softmax", ["x"], axis=1), [2, 3, 4])
    add("softmax-axis-1", node("Softmax", ["x"], axis=-1), [2, 3, 4])
    add("softmax-large", [node("Mul", ["x", "k"], ["xk"]), node("Softmax", ["xk"], axis=-1)], [2, 5], k=np.float32(1000.0))
    add("softmax-default", node("Softmax", ["x"]), [2, 5])
    add("batchnorm", node("BatchNormalization", ["x", "s", "t", "m", "v"], epsilon=1e-3), [2, 3, 4, 4], s=f32(3), t=f32(3, seed=5), m=f32(3, seed=6), v=f32(3, seed=7, lo=0.5, hi=2))
    add("batchnorm-1d", node("BatchNormalization", ["x", "s", "t", "m", "v"]), [2, 3, 5], s=f32(3), t=f32(3, seed=5), m=f32(3, seed=6), v=f32(3, seed=7, lo=0.5, hi=2))
    add("batchnorm-2d", node("BatchNormalization", ["x", "s", "t", "m", "v"]), [4, 3], s=f32(3), t=f32(3, seed=5), m=f32(3, seed=6), v=f32(3, seed=7, lo=0.5, hi=2))
    add("layernorm-last-axis", node("LayerNormalization", ["x", "s", "b"]), [2, 3, 8], s=f32(8, seed=5), b=f32(8, seed=6))
    add("layernorm-axis1-no-bias", node("LayerNormalization", ["x", "s"], axis=1, epsilon=1e-3), [2, 3, 4, 5], s=f32(3, 4, 5, seed=5))
    add("layernorm-offset-rows", [node("Add", ["x", "k"], ["xk"]), node("LayerNormalization", ["xk", "s", "b"], axis=-2)], [2, 6, 5], k=np.float32(50.0), s=f32(1, seed=5), b=f32(6, 5, seed=6))
    add("reducemean-keepdims1", node("ReduceMean", ["x"], axes=[2, 3], keepdims=1), [2, 3, 4, 5])
    add("reducemean-keepdims0", node("ReduceMean", ["x"], axes=[-1, 1], keepdims=0), [2, 3, 4, 5])
    add("reducemean-all", node("ReduceMean", ["x"], keepdims=0), [2, 3, 4])
    add("reducemax-axes", node("ReduceMax", ["x"], axes=[1, -1], keepdims=1), [2, 3, 4, 5])
    add("reducemin-all", node("ReduceMin", ["x"], keepdims=0), [2, 3, 4])
    add("reducel2", node("ReduceL2", ["x"], axes=[2]), [2, 3, 4])
    add("reducesum-axes-input", node("ReduceSum", ["x", "a"], keepdims=0), [2, 3, 4, 5], a=i64(0, 2))
    add("reducesum-noop", node("ReduceSum", ["x", "a"], noop_with_empty_axes=1), [2, 3], a=np.zeros(0, np.int64))
    add("reducesum-all-default", node("ReduceSum", ["x"]), [2, 3, 4])
    for op in ("ArgMax", "ArgMin"):
        for last in (0, 1):
            add(
                f"{op.lower()}-ties-last{last}",
                [node("Floor", ["x"], ["f"]), node(op, ["f"], ["i"], axis=-1, select_last_index=last), node("Cast", ["i"], to=TensorProto.FLOAT)],
                [3, 4, 6],
                x_range=(-2.0, 2.0),
            )
    add("argmax-axis0-keepdims0", [node("ArgMax", ["x"], ["i"], axis=0, keepdims=0), node("Cast", ["i"], to=TensorProto.FLOAT)], [4, 3, 2])
    for ex, rev in ((0, 0), (1, 0), (0, 1), (1, 1)):
        add(f"cumsum-ex{ex}-rev{rev}", node("CumSum", ["x", "a"], exclusive=ex, reverse=rev), [2, 5, 3], a=np.array(1, np.int64))
    add("cumsum-neg-axis", node("CumSum", ["x", "a"]), [3, 4], a=np.array(-1, np.int64))
    # Einsum as exporters write attention and projections, implicit outputs, ellipsis, diagonals
    add("einsum-attention-scores", node("Einsum", ["x", "w"], equation="bhqd,bhkd->bhqk"), [1, 2, 5, 4], w=f32(1, 2, 7, 4))
    add("einsum-attention-values", node("Einsum", ["x", "w"], equation="bhqk,bhkd->bhqd"), [2, 2, 3, 6], w=f32(2, 2, 6, 4))
    add("einsum-projection-ellipsis", node("Einsum", ["x", "w"], equation="...i,oi->...o"), [2, 3, 5], w=f32(4, 5))
    add("einsum-implicit-output", node("Einsum", ["x", "w"], equation="ij,jk"), [3, 4], w=f32(4, 5))
    add("einsum-broadcast-batch", node("Einsum", ["x", "w"], equation="...ij,...jk->...ik"), [2, 1, 3, 4], w=f32(1, 5, 4, 2))
    add("einsum-transpose-sum", node("Einsum", ["x"], equation="abc->ca"), [2, 3, 4])
    add("einsum-diagonal-trace", node("Einsum", ["x"], equation="ii->"), [4, 4])
    add("einsum-three-operands", node("Einsum", ["x", "w", "v"], equation="ij,jk,k->i"), [3, 4], w=f32(4, 5), v=f32(5, seed=3))
    add("einsum-outer-uppercase", node("Einsum", ["x", "w"], equation="iB,Ja->aBiJ"), [2, 3], w=f32(4, 5))
    # TopK: values (ties in index order) and indices
    for largest in (1, 0):
        add(f"topk-largest{largest}-ties", [node("Floor", ["x"], ["f"]), node("TopK", ["f", "k"], ["y", "i"], axis=1, largest=largest)], [2, 9, 3], x_range=(-3.0, 3.0), k=i64(4))
        add(f"topk-largest{largest}-indices", [node("Floor", ["x"], ["f"]), node("TopK", ["f", "k"], ["v", "i"], largest=largest), node("Cast", ["i"], ["y"], to=TensorProto.FLOAT)], [3, 8], x_range=(-3.0, 3.0), k=i64(5))
    add("topk-k0", node("TopK", ["x", "k"], ["y", "i"]), [2, 5], k=i64(0))
    # ScatterND: whole rows, single elements, negative indices, and the reductions (opset 18)
    add("scatternd-rows", node("ScatterND", ["x", "i", "u"]), [4, 3, 2], i=np.array([[2], [0]], np.int64), u=f32(2, 3, 2, seed=3))
    add("scatternd-elements-negative", node("ScatterND", ["x", "i", "u"]), [3, 4], i=np.array([[0, -1], [2, 1], [-3, 0]], np.int64), u=f32(3, seed=3))
    add("scatternd-swin-mask", node("ScatterND", ["x", "i", "u"]), [1, 4, 4, 1], i=np.array([[[0, 1], [0, 3]]], np.int64), u=f32(1, 2, 4, 1, seed=3))
    for how in ("add", "mul", "max", "min"):
        add(f"scatternd-{how}-duplicates", node("ScatterND", ["x", "i", "u"], reduction=how), [5, 2], opset=18, i=np.array([[1], [3], [1]], np.int64), u=f32(3, 2, seed=3))

    # data movement
    for axis in (0, 1, 2, -1):
        add(f"flatten-axis{axis}", node("Flatten", ["x"], axis=axis), [2, 3, 4])
    add("flatten-4d-axis3", node("Flatten", ["x"], axis=3), [2, 3, 4, 5])
    add("reshape-0-neg1", node("Reshape", ["x", "s"]), [2, 3, 4], s=i64(0, -1))
    add("reshape-neg1-first", node("Reshape", ["x", "s"]), [2, 3, 4], s=i64(-1, 6))
    add("reshape-0-0-neg1-1", node("Reshape", ["x", "s"]), [2, 3, 4], s=i64(0, 0, -1, 1))
    add("concat-axis1", node("Concat", ["x", "c"], axis=1), [2, 3, 4], c=f32(2, 2, 4))
    add("concat-axis-1-three", node("Concat", ["c", "x", "c"], axis=-1), [2, 3], c=f32(2, 1))
    add("split-uneven", [node("Split", ["x", "s"], ["a", "b"], axis=1), node("Concat", ["b", "a"], axis=1)], [2, 4, 3], s=i64(1, 3))
    add(
        "split-equal-3",
        [node("Split", ["x"], ["a", "b", "c"], axis=-1), node("Mul", ["a", "b"], ["ab"]), node("Sub", ["ab", "c"])],
        [2, 3, 6],
    )
    add("slice-basic", node("Slice", ["x", "b", "e", "a"]), [4, 6], b=i64(1, 1), e=i64(3, 5), a=i64(0, 1))
    add("slice-negative-step", node("Slice", ["x", "b", "e", "a", "st"]), [4, 6], b=i64(-1), e=i64(-1000), a=i64(1), st=i64(-1))
    add("slice-negative-step-2", node("Slice", ["x", "b", "e", "a", "st"]), [5, 7], b=i64(4, 100), e=i64(0, 1), a=i64(0, 1), st=i64(-2, -3))
    add("slice-mixed-steps", node("Slice", ["x", "b", "e", "a", "st"]), [2, 5, 6], b=i64(-2, 1), e=i64(-9, 1000), a=i64(2, 1), st=i64(-1, 2))
    add("slice-clamped", node("Slice", ["x", "b", "e"]), [4, 6], b=i64(-100, 2), e=i64(100, -1))
    add("transpose-perm", node("Transpose", ["x"], perm=[0, 2, 3, 1]), [2, 3, 4, 5])
    add("transpose-default", node("Transpose", ["x"]), [2, 3, 4])
    add("pad-constant", node("Pad", ["x", "p", "v"]), [1, 2, 3, 4], p=i64(0, 0, 1, 2, 0, 0, 2, 1), v=np.float32(0.5))
    add("pad-constant-default", node("Pad", ["x", "p"]), [2, 3], p=i64(1, 0, 0, 2))
    add("pad-negative", node("Pad", ["x", "p"]), [3, 5], p=i64(-1, 1, 0, -2))
    add("pad-reflect", node("Pad", ["x", "p"], mode="reflect"), [1, 2, 4, 5], p=i64(0, 0, 2, 1, 0, 0, 3, 4))
    add("pad-edge", node("Pad", ["x", "p"], mode="edge"), [1, 2, 4, 5], p=i64(0, 0, 2, 3, 0, 0, 1, 2))
    add("squeeze-axes", node("Squeeze", ["x", "a"]), [1, 3, 1, 4], a=i64(0, -2))
    add("squeeze-all", node("Squeeze", ["x"]), [1, 3, 1, 4])
    add("unsqueeze", node("Unsqueeze", ["x", "a"]), [3, 4], a=i64(0, -1, 2))
    add("gather-axis0", node("Gather", ["x", "i"], axis=0), [5, 3], i=i64(2, 0, -1))
    add("gather-axis1-2d-indices", node("Gather", ["x", "i"], axis=1), [2, 5, 3], i=np.array([[4, 0], [-2, 1]], np.int64))
    add("gather-scalar-index", node("Gather", ["x", "i"], axis=-1), [2, 5], i=np.array(3, np.int64))
    add(
        "shape-gather-concat-reshape",
        [
            node("Shape", ["x"], ["s"]),
            node("Gather", ["s", "zero"], ["n"], axis=0),
            node("Unsqueeze", ["n", "zero1"], ["n1"]),
            node("Concat", ["n1", "minus1"], ["target"], axis=0),
            node("Reshape", ["x", "target"]),
        ],
        [2, 3, 4, 5],
        zero=np.array(0, np.int64),
        zero1=i64(0),
        minus1=i64(-1),
    )
    add(
        "shape-start-end-reshape",
        [node("Shape", ["x"], ["s"], start=1, end=-1), node("Concat", ["s", "last"], ["target"], axis=0), node("Reshape", ["x", "target"])],
        [2, 3, 4],
        last=i64(-1),
    )

    # comparisons, logic and the shape-building ops exporters write (bool results cast to float)
    def to_float(name):
        return node("Cast", [name], to=TensorProto.FLOAT)

    grid = np.floor(f32(3, 4, seed=8, lo=-3, hi=3))
    for op in ("Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"):
        add(f"{op.lower()}-floats", [node("Floor", ["x"], ["f"]), node(op, ["f", "g"], ["c"]), to_float("c")], [2, 3, 4], x_range=(-3.0, 3.0), g=grid)
    add("equal-ints", [node("Cast", ["x"], ["i"], to=TensorProto.INT64), node("Equal", ["i", "k"], ["c"]), to_float("c")], [3, 4], x_range=(-3.0, 3.0), k=i64(0, 1, -1, 2))
    for op in ("And", "Or", "Xor"):
        add(f"{op.lower()}", [node("Greater", ["x", "z"], ["p"]), node("Less", ["x", "h"], ["q"]), node(op, ["p", "q"], ["c"]), to_float("c")], [3, 5], z=np.float32(0), h=f32(5, seed=9))
    add("not", [node("Greater", ["x", "z"], ["p"]), node("Not", ["p"], ["c"]), to_float("c")], [3, 5], z=np.float32(0.25))
    add("where-equal-expand", [node("Greater", ["x", "z"], ["p"]), node("Where", ["p", "x", "w"])], [2, 3], z=np.float32(0), w=f32(3, seed=10))
    add("mod-fmod-floats", node("Mod", ["x", "b"], fmod=1), [3, 4], x_range=(-5.0, 5.0), b=f32(4, seed=11, lo=0.5, hi=2.0))
    for fmod in (0, 1):
        add(
            f"mod-ints-fmod{fmod}",
            [node("Cast", ["x"], ["i"], to=TensorProto.INT64), node("Mod", ["i", "k"], ["m"], fmod=fmod), to_float("m")],
            [3, 4],
            x_range=(-20.0, 20.0),
            k=i64(3, -3, 7, -2),
        )
    add("pow-floats", [node("Abs", ["x"], ["a"]), node("Pow", ["a", "e"])], [3, 4], x_range=(-3.0, 3.0), e=f32(4, seed=12, lo=-2.0, hi=3.0))
    add("pow-square", node("Pow", ["x", "e"]), [3, 4], e=np.float32(2.0))
    add("constantofshape-default", [node("Shape", ["x"], ["s"]), node("ConstantOfShape", ["s"], ["c"]), node("Add", ["x", "c"])], [2, 3])
    add(
        "constantofshape-value",
        [node("Shape", ["x"], ["s"]), node("ConstantOfShape", ["s"], ["c"], value=onnx.helper.make_tensor("v", TensorProto.FLOAT, [1], [2.5])), node("Mul", ["x", "c"])],
        [2, 3],
    )
    add("expand-both-ways", node("Expand", ["x", "s"]), [3, 1], s=i64(2, 1, 4))
    add("expand-same-rank", node("Expand", ["x", "s"]), [1, 3, 1], s=i64(2, 3, 5))
    add(
        "expand-class-token",  # a ViT's class token: Expand to the batch read from the input's shape
        [
            node("Shape", ["x"], ["s"]),
            node("Gather", ["s", "zero"], ["n"], axis=0),
            node("Unsqueeze", ["n", "zero1"], ["n1"]),
            node("Concat", ["n1", "one", "minus1"], ["target"], axis=0),
            node("Equal", ["target", "minus1b"], ["isneg"]),
            node("Where", ["isneg", "ones", "target"], ["fixed"]),
            node("Expand", ["tok", "fixed"], ["toks"]),
            node("Concat", ["toks", "x"], axis=1),
        ],
        [2, 3, 4],
        zero=np.array(0, np.int64),
        zero1=i64(0),
        one=i64(1),
        minus1=i64(-1),
        minus1b=i64(-1),
        ones=i64(1, 1, 1),
        tok=f32(1, 1, 4, seed=13),
    )
    add(
        "range-ints-from-shape",
        [
            node("Shape", ["x"], ["s"]),
            node("Gather", ["s", "one"], ["n"], axis=0),
            node("Range", ["zero", "n", "step"], ["r"]),
            node("Cast", ["r"], ["rf"], to=TensorProto.FLOAT),
            node("Add", ["x", "rf"]),
        ],
        [2, 7],
        one=np.array(1, np.int64),
        zero=np.array(0, np.int64),
        step=np.array(1, np.int64),
    )
    add("range-floats", [node("Range", ["a", "b", "d"], ["r"]), node("Add", ["x", "r"])], [2, 7], a=np.float32(0.1), b=np.float32(2.0), d=np.float32(0.3))
    add("range-floats-down", [node("Range", ["a", "b", "d"], ["r"]), node("Mul", ["x", "r"])], [2, 5], a=np.float32(3.0), b=np.float32(-1.1), d=np.float32(-0.9))
    add("tile", node("Tile", ["x", "r"]), [2, 3], r=i64(2, 3))
    add("tile-3d", node("Tile", ["x", "r"]), [1, 2, 3], r=i64(3, 1, 2))
    return cases


def check_ops(checks, binary, work):
    for name, nodes, x_shape, inits, opset, (lo, hi) in op_cases():

        def one(name=name, nodes=nodes, x_shape=x_shape, inits=inits, opset=opset, lo=lo, hi=hi):
            x = f32(*x_shape, seed=len(name), lo=lo, hi=hi)
            text = onnx.printer.to_text(op_model(name, nodes, x, inits, opset))
            return check_text(binary, text, [x], work, "op")

        checks.run("ops", name, one)


def main():
    args = sys.argv[1:]
    only = None
    if len(args) == 3 and args[1] == "--only":
        only = args[2]
        args = args[:1]
    if len(args) != 1:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    checks = Checks(only)
    with tempfile.TemporaryDirectory(prefix="etch-ort-check.") as tmp:
        work = Path(tmp)
        # a private copy, so a concurrent `cargo build` cannot swap the binary mid-run
        binary = work / "etch"
        shutil.copy2(args[0], binary)
        check_ops(checks, binary, work)
        check_eval(checks, binary, work)
        check_models(checks, binary, work)
    print(f"{checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
