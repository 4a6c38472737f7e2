#!/usr/bin/env python3
"""Checks etch against onnxruntime on the PyTorch-exported models of examples/models/exported/.

Usage: export_check.py ETCH_BINARY [--only SUBSTRING]
       (scripts/export_check.sh runs it with the test virtualenv .venv/: onnx, onnxruntime, numpy)

For every examples/models/exported/*.onnx (binary ONNX written by scripts/export_zoo.sh, classic and
dynamo exports of the same tiny models), whose name contains SUBSTRING if given:

  inspect  `etch inspect MODEL --json` must exit 0 (it infers every node's output shape);
  sim      `etch sim MODEL --target zcu104 --json` must exit 0 (every op has a cost), and the MACs
           it maps of a NAME_dynamo export must equal those of NAME_classic (the same network);
  run      a seeded random input of the graph input's static shape (standard normal float32, or
           0..9 for an int64 input; the seed is the same for every model) is saved as .npy and run
           by `etch run MODEL --input x.npy --output y.npy` and by an onnxruntime InferenceSession
           (CPU provider, one thread, graph optimizations disabled, so ORT computes each node as
           written); etch writes the model's first output, which must have ORT's shape and satisfy
               max |etch - ort| <= 1e-4 * max(1, max |ort|)
           (a relative tolerance of 1e-4 of the output's scale; NaN fails). Every model exported
           here has one output; a model with more would be reported as checking only its first.

One line per model, `ok` or `FAIL`, with the run's largest absolute error `max_abs`, that error as a
fraction of the output's scale `rel` (= max_abs / max(1, max|ort|), at most 1e-4 to pass), the
largest element-wise relative error `max_rel` (over elements where ORT's value is not 0; for
information only) and `|ort|max`; or the first line of etch's error message (all of it on stderr).
Then `N passed, M failed` alone on the last line; the exit status is 1 if any model failed (a model
fails if `etch inspect` or `etch run` exits non-zero or the outputs differ), 2 on bad usage.
"""

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / "examples/models/exported"
SEED = 5
RTOL = 1e-4
SIM_TARGET = "zcu104"

NP_TYPES = {onnx.TensorProto.FLOAT: np.float32, onnx.TensorProto.INT64: np.int64}


class EtchError(Exception):
    pass


def etch(binary, *args):
    r = subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        raise EtchError(f"`etch {args[0]}` exited {r.returncode}: {r.stderr.strip() or r.stdout.strip()}")
    return r.stdout


def graph_input(model):
    """The one graph input that is not an initializer: its name, static shape and numpy dtype."""
    inits = {t.name for t in model.graph.initializer}
    inputs = [vi for vi in model.graph.input if vi.name not in inits]
    if len(inputs) != 1:
        raise RuntimeError(f"{len(inputs)} graph inputs; this check feeds exactly one")
    tt = inputs[0].type.tensor_type
    shape = []
    for d in tt.shape.dim:
        if not d.HasField("dim_value"):
            raise RuntimeError(f"input {inputs[0].name} has a symbolic dim {d.dim_param!r}; exports here are static")
        shape.append(d.dim_value)
    if tt.elem_type not in NP_TYPES:
        raise RuntimeError(f"input element type {onnx.TensorProto.DataType.Name(tt.elem_type)} is not float32 or int64")
    return inputs[0].name, shape, NP_TYPES[tt.elem_type]


def make_input(shape, dtype):
    rng = np.random.default_rng(SEED)
    if dtype == np.int64:
        return rng.integers(0, 10, shape, dtype=np.int64)
    return rng.standard_normal(shape).astype(np.float32)


def ort_outputs(path, name, x):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {name: x})


def compare(got, want):
    """Returns (passed, summary)."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return False, f"shape {list(got.shape)} from etch, {list(want.shape)} from onnxruntime"
    g, w = got.astype(np.float64), want.astype(np.float64)
    err = np.abs(g - w)
    scale = float(np.abs(w).max()) if w.size else 0.0
    max_abs = float(err.max()) if err.size else 0.0  # NaN propagates
    rel = max_abs / max(1.0, scale)
    nz = w != 0
    max_rel = float((err[nz] / np.abs(w[nz])).max()) if nz.any() else 0.0
    summary = f"max_abs={max_abs:.2e} rel={rel:.2e} max_rel={max_rel:.2e} |ort|max={scale:.2e}"
    ok = bool(np.isfinite(err).all()) and rel <= RTOL
    if not ok:
        k = np.unravel_index(np.argmax(np.nan_to_num(err, nan=np.inf)), err.shape)
        summary += f"; worst at {list(map(int, k))}: etch {got[k]!r}, onnxruntime {want[k]!r}"
    return ok, summary


def check(binary, path, work, sim_macs):
    """Returns (passed, one-line result, details for stderr)."""
    details = []
    inspect_ok = True
    try:
        macs = json.loads(etch(binary, "inspect", path, "--json"))["macs"]
        sim = json.loads(etch(binary, "sim", path, "--target", SIM_TARGET, "--json"))
        inspect = f"inspect {macs:,} MACs; sim {sim['total_cycles']:,} cycles, {sim['macs']:,} MACs"
        sim_macs[path.stem] = sim["macs"]
        twin = sim_macs.get(path.stem.replace("_dynamo", "_classic"))
        if path.stem.endswith("_dynamo") and twin is not None and twin != sim["macs"]:
            inspect_ok = False
            details.append(f"sim maps {sim['macs']:,} MACs of the dynamo export but {twin:,} of the classic one")
    except EtchError as e:
        inspect_ok = False
        inspect = "inspect/sim FAILED"
        details.append(str(e))

    model = onnx.load(str(path))
    name, shape, dtype = graph_input(model)
    x = make_input(shape, dtype)
    want = ort_outputs(path, name, x)
    xp, yp = work / "x.npy", work / "y.npy"
    np.save(xp, x)
    if yp.exists():
        yp.unlink()
    try:
        etch(binary, "run", path, "--input", xp, "--output", yp)
    except EtchError as e:
        details.append(str(e))
        first = str(e).splitlines()[0]
        return False, f"{inspect}; run: {first}", details
    ok, summary = compare(np.load(yp), want[0])
    if len(want) > 1:
        summary += f" (output 0 of {len(want)})"
    return ok and inspect_ok, f"{inspect}; run: {summary}", details


def main():
    args = sys.argv[1:]
    only = None
    if len(args) == 3 and args[1] == "--only":
        only = args[2]
        args = args[:1]
    if len(args) != 1:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    paths = sorted(p for p in MODELS.glob("*.onnx") if not only or only in p.name)
    if not paths:
        print(f"no models in {MODELS.relative_to(REPO)}" + (f" matching {only!r}" if only else "")
              + " (scripts/export_zoo.sh writes them)", file=sys.stderr)
        return 1
    passed = failed = 0
    sim_macs = {}  # the simulator's MACs per model, to compare each dynamo export with its classic twin
    with tempfile.TemporaryDirectory(prefix="etch-export-check.") as tmp:
        work = Path(tmp)
        # a private copy, so a concurrent `cargo build` cannot swap the binary mid-run
        binary = work / "etch"
        shutil.copy2(args[0], binary)
        for path in paths:
            t0 = time.perf_counter()
            try:
                ok, line, details = check(binary, path, work, sim_macs)
            except Exception as e:  # e.g. onnxruntime refusing the file: reported, the others still run
                ok, line, details = False, f"{type(e).__name__}: {str(e).strip().splitlines()[0]}", [str(e)]
            passed += ok
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {path.stem:<22} {line} ({time.perf_counter() - t0:.1f}s)")
            sys.stdout.flush()
            if not ok:
                for d in details:
                    for l in d.strip().splitlines()[:12]:
                        print(f"       {l[:400]}", file=sys.stderr)
                sys.stderr.flush()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
