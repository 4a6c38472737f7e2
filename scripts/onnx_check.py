#!/usr/bin/env python3
"""Checks etch's ONNX text against onnx's own parser, checker and printer, and onnxruntime.

Usage: onnx_check.py ETCH_BINARY [MODEL ...]   (default: every examples/models/*.onnx.txt)

For every model, `etch convert MODEL --seed 7` is run (shape-only weights get filled), and:
  parse        onnx.parser.parse_model accepts etch's text;
  same-model   the parsed model equals onnx's parse of the original (full-weight models), or, for
               shape-only models (metadata `weights_stripped_to_inputs`), has the same structure with
               the stripped weight inputs turned into initializers of the same type and shape;
  idempotent   `etch convert` of etch's own text gives text that parses to the identical proto;
  checker      onnx.checker.check_model(full_check=True) passes;
  onnxruntime  an InferenceSession runs it on a random input: outputs finite, of the declared shape;
  printer      onnx.printer.to_text of the parsed model is byte-identical to etch's text (etch's
               printer aims to write exactly what onnx writes).
For full-weight models the last check is also made against the original text itself:
  to_text(parse_model(original)) == etch's printing of the unchanged model.

Prints one line per check (`ok` or `FAIL`, with what failed on stderr) and finally
`N passed, M failed`; exits 1 if any check failed.
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnx.checker
import onnx.helper
import onnx.numpy_helper
import onnx.parser
import onnx.printer

REPO = Path(__file__).resolve().parent.parent
STRIPPED_KEY = "weights_stripped_to_inputs"
SEED = 7


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def report(self, model, check, problems, seconds):
        """Records one check; `problems` is a list of strings (empty = passed) or an exception."""
        if isinstance(problems, BaseException):
            problems = [f"{type(problems).__name__}: {str(problems).strip()}"]
        if problems:
            self.failed += 1
            shown = problems[:8] + ([f"... and {len(problems) - 8} more"] if len(problems) > 8 else [])
            print(f"FAIL {model}: {check} ({seconds:.1f}s)")
            sys.stdout.flush()
            # the details go to stderr, so stdout keeps one line per check
            for p in shown:
                print(f"       {first_lines(p)}", file=sys.stderr)
            sys.stderr.flush()
        else:
            self.passed += 1
            print(f"ok   {model}: {check} ({seconds:.1f}s)")
        sys.stdout.flush()

    def run(self, model, check, fn):
        """Runs fn() -> list of problems; an exception is a failure. Returns fn's problems or None."""
        t0 = time.perf_counter()
        try:
            problems = fn()
        except Exception as e:  # noqa: BLE001 - any error is a failed check, reported
            self.report(model, check, e, time.perf_counter() - t0)
            return None
        self.report(model, check, problems, time.perf_counter() - t0)
        return problems


def first_lines(s, n=6, width=300):
    lines = str(s).splitlines() or [""]
    out = [line[:width] + ("..." if len(line) > width else "") for line in lines[:n]]
    if len(lines) > n:
        out.append("...")
    return "\n       ".join(out)


# ---------------------------------------------------------------- running etch and onnx


def etch_convert(etch, src, dst):
    r = subprocess.run([etch, "convert", str(src), "-o", str(dst), "--seed", str(SEED)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"`etch convert {src}` exited {r.returncode}:\n{r.stderr.strip()}")


def read_text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def parse(text):
    return onnx.parser.parse_model(text)


# ---------------------------------------------------------------- comparing protos


def metadata(m):
    return [(p.key, p.value) for p in m.metadata_props]


def attr_value(a):
    """An attribute's value in a comparable form (tensors as dtype, dims and exact bytes)."""
    t = a.type
    A = onnx.AttributeProto
    if t == A.FLOAT:
        return ("f", np.float32(a.f).tobytes())
    if t == A.INT:
        return ("i", a.i)
    if t == A.STRING:
        return ("s", a.s)
    if t == A.TENSOR:
        return ("t", tensor_key(a.t))
    if t == A.GRAPH:
        return ("g", a.g.SerializeToString(deterministic=True))
    if t == A.FLOATS:
        return ("fs", np.asarray(a.floats, dtype=np.float32).tobytes())
    if t == A.INTS:
        return ("is", list(a.ints))
    if t == A.STRINGS:
        return ("ss", list(a.strings))
    return ("other", a.SerializeToString(deterministic=True))


def tensor_key(t):
    arr = onnx.numpy_helper.to_array(t)
    return (t.name, t.data_type, list(t.dims), arr.dtype.str, arr.tobytes())


def node_key(n):
    attrs = {a.name: (a.ref_attr_name, attr_value(a)) for a in n.attribute}
    # the parser always sets domain "" on nodes; an unset domain means the same
    return (n.name, n.op_type, n.domain or "", n.overload, list(n.input), list(n.output), attrs)


def vi_key(v):
    return (v.name, v.type.SerializeToString(deterministic=True))


def compare_lists(what, a, b, key, name=lambda x: getattr(x, "name", "?")):
    problems = []
    if len(a) != len(b):
        problems.append(f"{what}: {len(a)} in the original, {len(b)} in etch's")
    for k, (x, y) in enumerate(zip(a, b)):
        kx, ky = key(x), key(y)
        if kx != ky:
            problems.append(f"{what}[{k}] ({name(x)!r} vs {name(y)!r}) differs in {where(kx, ky)}:\n  original: {brief(x)}\n  etch:     {brief(y)}")
    return problems


def where(kx, ky):
    """Which parts of two comparison keys differ: tuple positions, and attribute names for dicts."""
    parts = []
    for n, (u, v) in enumerate(zip(kx, ky)):
        if u == v:
            continue
        if isinstance(u, dict) and isinstance(v, dict):
            parts.append("attributes " + ", ".join(sorted(k for k in u.keys() | v.keys() if u.get(k) != v.get(k))))
        else:
            parts.append(f"field {n}")
    return "; ".join(parts) or "length"


def brief(x):
    s = str(x).replace("\n", " ")
    return s[:400] + ("..." if len(s) > 400 else "")


def compare_header(orig, etch, drop_meta_key=None):
    problems = []
    if orig.ir_version != etch.ir_version:
        problems.append(f"ir_version {orig.ir_version} vs {etch.ir_version}")
    oi = [(o.domain, o.version) for o in orig.opset_import]
    ei = [(o.domain, o.version) for o in etch.opset_import]
    if oi != ei:
        problems.append(f"opset_import {oi} vs {ei}")
    for f in ("producer_name", "producer_version", "domain", "model_version", "doc_string"):
        if getattr(orig, f) != getattr(etch, f):
            problems.append(f"{f} {getattr(orig, f)!r} vs {getattr(etch, f)!r}")
    om = [kv for kv in metadata(orig) if kv[0] != drop_meta_key]
    if om != metadata(etch):
        problems.append(f"metadata_props {om} vs {metadata(etch)}")
    if len(orig.functions) != len(etch.functions) or any(
        f.SerializeToString(deterministic=True) != g.SerializeToString(deterministic=True)
        for f, g in zip(orig.functions, etch.functions)
    ):
        problems.append("functions differ")
    if orig.graph.name != etch.graph.name:
        problems.append(f"graph name {orig.graph.name!r} vs {etch.graph.name!r}")
    return problems


def compare_structure(orig, etch):
    """Nodes, outputs and value_info: what both a full and a shape-only comparison need."""
    g, h = orig.graph, etch.graph
    return (
        compare_lists("node", g.node, h.node, node_key, name=lambda n: n.name or n.output[0] if n.output else n.op_type)
        + compare_lists("output", g.output, h.output, vi_key)
        + compare_lists("value_info", g.value_info, h.value_info, vi_key)
    )


def compare_full(orig, etch):
    """Equal models, field by field (SerializeToString alone would be too strict only in the order of
    map-like fields; it is tried first since it is the common case)."""
    if orig.SerializeToString(deterministic=True) == etch.SerializeToString(deterministic=True):
        return []
    g, h = orig.graph, etch.graph
    problems = compare_header(orig, etch) + compare_structure(orig, etch)
    problems += compare_lists("input", g.input, h.input, vi_key)
    oi = {t.name: t for t in g.initializer}
    ei = {t.name: t for t in h.initializer}
    if [t.name for t in g.initializer] != [t.name for t in h.initializer]:
        problems.append(f"initializer names/order differ: {sorted(set(oi) ^ set(ei))[:10]} only on one side")
    for name in oi.keys() & ei.keys():
        if tensor_key(oi[name]) != tensor_key(ei[name]):
            problems.append(f"initializer {name!r} differs (dtype/dims/bits)")
    if len(g.sparse_initializer) != len(h.sparse_initializer):
        problems.append("sparse_initializer count differs")
    if not problems:
        problems.append("serialized protos differ, but no field-level difference was found")
    return problems


def compare_filled(orig, etch):
    """A shape-only original against etch's filled conversion."""
    g, h = orig.graph, etch.graph
    count = int(dict(metadata(orig))[STRIPPED_KEY])
    stripped = list(g.input[len(g.input) - count :])
    kept = list(g.input[: len(g.input) - count])
    problems = compare_header(orig, etch, drop_meta_key=STRIPPED_KEY) + compare_structure(orig, etch)
    problems += compare_lists("input (non-weight)", kept, h.input, vi_key)
    ei = {t.name: t for t in h.initializer}
    for t in g.initializer:  # initializers the original had keep their values
        if t.name not in ei:
            problems.append(f"initializer {t.name!r} lost")
        elif t.HasField("raw_data") or t.float_data or t.int64_data or t.int32_data:
            if tensor_key(t) != tensor_key(ei[t.name]):
                problems.append(f"initializer {t.name!r} changed")
    for vi in stripped:
        t = ei.get(vi.name)
        if t is None:
            problems.append(f"stripped weight {vi.name!r} was not filled")
            continue
        tt = vi.type.tensor_type
        want = [d.dim_value for d in tt.shape.dim]
        arr = onnx.numpy_helper.to_array(t)
        if t.data_type != tt.elem_type or list(t.dims) != want or list(arr.shape) != want:
            problems.append(f"filled {vi.name!r}: type {t.data_type} dims {list(t.dims)} (values {list(arr.shape)}), want type {tt.elem_type} dims {want}")
        elif not np.all(np.isfinite(arr)):
            problems.append(f"filled {vi.name!r} has non-finite values")
    extra = set(ei) - {vi.name for vi in stripped} - {t.name for t in g.initializer}
    if extra:
        problems.append(f"unexpected initializers: {sorted(extra)[:10]}")
    return problems


def same_proto(a, b):
    if a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True):
        return []
    return compare_full(a, b)


# ---------------------------------------------------------------- onnxruntime


def np_dtype(elem):
    return onnx.helper.tensor_dtype_to_np_dtype(elem)


def run_onnxruntime(model):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    init_names = {t.name for t in model.graph.initializer}
    rng = np.random.default_rng(SEED)
    feeds = {}
    for vi in model.graph.input:
        if vi.name in init_names:
            continue
        tt = vi.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else 1 for d in tt.shape.dim]
        dtype = np_dtype(tt.elem_type)
        if np.issubdtype(dtype, np.floating):
            feeds[vi.name] = rng.standard_normal(shape).astype(np.float32).astype(dtype)
        else:
            feeds[vi.name] = rng.integers(0, 2, size=shape).astype(dtype)
    outs = sess.run(None, feeds)
    problems = []
    for vi, out in zip(model.graph.output, outs):
        dims = vi.type.tensor_type.shape.dim
        want = [d.dim_value if d.HasField("dim_value") else None for d in dims]
        if len(want) != out.ndim or any(w is not None and w != s for w, s in zip(want, out.shape)):
            problems.append(f"output {vi.name!r} has shape {list(out.shape)}, declared {want}")
        if np.issubdtype(out.dtype, np.floating) and not np.all(np.isfinite(out)):
            problems.append(f"output {vi.name!r} has non-finite values")
    return problems


# ---------------------------------------------------------------- the checks


def printer_matches(proto, text):
    """onnx.printer.to_text(proto) == text, with the first difference on failure."""
    want = onnx.printer.to_text(proto)
    if want == text:
        return []
    k = next((i for i, (a, b) in enumerate(zip(want, text)) if a != b), min(len(want), len(text)))
    line = want.count("\n", 0, k) + 1
    return [
        f"first difference at char {k} (line {line}); onnx has {len(want)} chars, etch {len(text)}:\n"
        f"  onnx: {want[max(0, k - 60) : k + 60]!r}\n  etch: {text[max(0, k - 60) : k + 60]!r}"
    ]


def check_model_file(checks, etch, path, tmp):
    name = path.name.removesuffix(".onnx.txt")
    orig_text = read_text(path)
    orig = parse(orig_text)
    shape_only = STRIPPED_KEY in dict(metadata(orig))

    out1 = tmp / f"{name}.etch.txt"
    out2 = tmp / f"{name}.etch2.txt"
    state = {}

    def convert_and_parse():
        etch_convert(etch, path, out1)
        state["text"] = read_text(out1)
        state["model"] = parse(state["text"])
        return []

    if checks.run(name, "parse: onnx.parser accepts etch's text", convert_and_parse) is None:
        return
    model, text = state["model"], state["text"]

    if shape_only:
        checks.run(name, "same-model: structure equals the original, stripped weights filled with their shapes", lambda: compare_filled(orig, model))
    else:
        checks.run(name, "same-model: equals onnx's parse of the original", lambda: compare_full(orig, model))

    def idempotent():
        etch_convert(etch, out1, out2)
        text2 = read_text(out2)
        if text2 == text:
            # the same text parses to the same proto (parsing is deterministic): no second
            # parse, which takes onnx half a minute on AlexNet's filled weights
            return []
        problems = same_proto(model, parse(text2))
        if not problems and text2 != text:
            problems.append("the texts differ although they parse to the same proto")
        return problems

    checks.run(name, "idempotent: etch convert of etch's text gives the identical proto", idempotent)
    checks.run(name, "checker: onnx.checker.check_model(full_check=True)", lambda: onnx.checker.check_model(model, full_check=True) or [])
    checks.run(name, "onnxruntime: runs, outputs finite and of the declared shape", lambda: run_onnxruntime(model))
    checks.run(name, "printer: onnx.printer.to_text(parse(etch text)) == etch text", lambda: printer_matches(model, text))
    if not shape_only:
        # etch convert of a model with every weight given changes nothing, so its output is etch's
        # printing of the original model
        checks.run(name, "printer: onnx.printer.to_text(parse(original)) == etch's printing", lambda: printer_matches(orig, text))
    for p in (out1, out2):
        p.unlink(missing_ok=True)


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    etch = os.path.abspath(argv[1])
    models = [Path(m) for m in argv[2:]] or sorted((REPO / "examples" / "models").glob("*.onnx.txt"))
    if not models:
        print("no models found", file=sys.stderr)
        return 2
    print(f"onnx {onnx.__version__}, etch {etch}, {len(models)} models")
    checks = Checks()
    with tempfile.TemporaryDirectory(prefix="etch-onnx-check-") as d:
        for path in models:
            try:
                check_model_file(checks, etch, path, Path(d))
            except Exception as e:  # noqa: BLE001 - e.g. onnx cannot parse the original
                checks.report(path.name, "setup: read and parse the original", e, 0.0)
    print(f"{checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
