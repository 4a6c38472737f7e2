#!/usr/bin/env python3
"""Compares etch's parameter and MAC counts with torchvision's for full-size classification models.

Usage: torchvision_stats.py ETCH [--keep DIR] [--models NAME,NAME,...] [--extra]
       (scripts/torchvision_stats.sh runs it with the pinned virtualenv .venv-qat/ and one thread)

Not run in CI: it needs torch and takes several minutes of one core (the dynamo exports of the
transformers take the longest). For each torchvision model (random weights: weights=None; nothing is
downloaded) at its default input, batch 1 by 3 by S by S with S the crop size of the model's DEFAULT
weights' transforms (224, 299 for inception_v3, 384 for efficientnet_v2_s, ...), it exports the model
with both of PyTorch's ONNX exporters into a temporary directory (DIR with --keep, which keeps them):

  NAME_classic.onnx   torch.onnx.export(..., dynamo=False, opset_version=17, do_constant_folding=True)
  NAME_dynamo.onnx    torch.onnx.export(..., dynamo=True, opset_version=20), weights embedded,
                      node metadata stripped

(as scripts/export_zoo.py does), runs `ETCH inspect FILE --json` on each file, and prints one row per
model and exporter:

  model, exporter   the torchvision model name, and which exporter wrote the file
  etch params       etch's "params": the elements of the float initializers the graph's nodes read
                    (not int64/bool ones, not a Clip/Resize/Pad setting input), each counted once
  tv params         torchvision's weights meta "num_params" (learnable parameters, not buffers such
                    as BatchNorm's running mean and variance)
  p ratio           etch params / tv params
  etch MACs         etch's "macs" (Conv, ConvTranspose, Gemm, MatMul and Einsum only)
  tv MACs           torchvision's meta "_ops" (its "GFLOPS" column) times 1e9: torchvision counts
                    multiply-accumulates of convolutions and matrix products (mm, addmm, bmm),
                    rounded to 3 decimals of a GMAC
  m ratio           etch MACs / tv MACs

and under each row the explanation of the differences, worked out from the file and the model:

  check       etch's params and MACs recounted here from the ONNX file by etch's own rules
              (onnx python): "exact" when etch agrees with what the file holds
  torch       the model's own count: sum of p.numel() over its parameters (= num_params unless
              said), and its MACs measured with torch.utils.flop_counter.FlopCounterMode (FLOPs / 2)
              over one forward pass, split into conv, mm (mm/addmm: linear layers), bmm
              (batched matmuls, einsum) and sdpa (attention's two matmuls), before rounding; "= _ops"
              when rounding them to 3 decimals of a GMAC gives torchvision's _ops
  params Δ    etch params - sum p.numel(), split by where it comes from: the file's initializers are
              matched to the model's parameters and buffers (by name, else by their values, which
              are random and distinct: constant-initialized parameters are randomized first):
              "+buffers" are buffers (BatchNorm running stats) stored as weights, "-absent" are
              parameters the file does not hold as such (folded away, e.g. BatchNorm's gain and
              shift folded into the conv before it), "+new" are initializers the exporter computed
              (folded conv weights and biases, transposed or scaled weights, scalar constants),
              each grouped by module or consumer op
  MACs Δ      etch MACs - torch MACs, split by op (etch's per-op sums against torch's per-kind sums)

Failures (an export that raises, an `etch inspect` that exits non-zero, with its stderr) are
printed and the run goes on; the exit status is 1 if anything failed.
"""

import argparse
import collections
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import torch
import torch.nn as nn
import torchvision
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_zoo import export_classic, export_dynamo  # noqa: E402  (the same two exports)

CLASSIC_OPSET = 17
DYNAMO_OPSET = 20
SEED = 2026

# the models asked for, then further models of the other classification families (all export in
# well under a minute and need well under 2 GB); vgg16/19, vit_l/h, regnet_y_32gf+, efficientnet_b5+
# and the other large ones are left out (file over 500 MB or export of several minutes)
MODELS = [
    "resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "mnasnet0_5", "shufflenet_v2_x0_5",
    "squeezenet1_1", "efficientnet_b0", "regnet_y_400mf", "densenet121", "convnext_tiny", "vit_b_16",
    "swin_t", "maxvit_t",
]
EXTRA = [
    "alexnet", "vgg11", "googlenet", "inception_v3", "resnext50_32x4d", "wide_resnet50_2",
    "mobilenet_v3_large", "efficientnet_v2_s", "regnet_x_400mf", "swin_v2_t", "mnasnet1_0",
    "shufflenet_v2_x1_0", "squeezenet1_0", "efficientnet_b1",
]

# ONNX ops whose inputs after the first are settings, not weights (etch's Op::setting_input)
# etch_ir::op::Op::setting_input and Op::elementwise: inputs etch does not count as parameters
SETTING_OPS = {"Clip", "Resize", "Pad", "ScatterND"}
ELEMENTWISE_OPS = {"Add", "Sub", "Mul", "Div", "Pow", "Where", "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"}
FLOAT_TYPES = {
    onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16,
}


# ---------------------------------------------------------------- models


def build(name):
    """The model as its DEFAULT weights configure it (random weights), and its input size."""
    weights = torchvision.models.get_model_weights(name).DEFAULT
    kwargs = {}
    if name in ("googlenet", "inception_v3"):
        # as the pretrained ones: input transform on, auxiliary classifiers dropped
        kwargs = dict(aux_logits=False, transform_input=True, init_weights=False)
    torch.manual_seed(SEED)
    model = torchvision.models.get_model(name, weights=None, **kwargs)
    randomize(model, torch.Generator().manual_seed(SEED + 1))
    model.eval()
    size = weights.transforms().crop_size[0]
    x = torch.randn((1, 3, size, size), generator=torch.Generator().manual_seed(SEED + 2))
    return model, x, weights.meta


def randomize(model, gen):
    """Replaces constant-initialized parameters and BatchNorm statistics by random values, so that
    every tensor is distinct and the file's initializers can be matched to them by value."""
    with torch.no_grad():
        for p in model.parameters():
            flat = p.reshape(-1)
            if flat.numel() > 0 and bool((flat == flat[0]).all()):
                base = 1.0 if abs(float(flat[0]) - 1.0) < 1e-3 else 0.0
                p.copy_(base + 0.1 * torch.randn(p.shape, generator=gen))
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))


def sdpa_cpu(q, k, v, *args, out_val=None, **kwargs):
    """FLOPs of the CPU attention kernel, which FlopCounterMode has no formula for: Q·Kᵀ and the
    weights times V, 2 FLOPs per multiply-accumulate."""
    *batch, length, e = q.shape
    n = 1
    for d in batch:
        n *= d
    return 2 * n * length * k.shape[-2] * (e + v.shape[-1])


sdpa_cpu._get_raw = True


def torch_macs(model, x):
    """MACs by kind, from FlopCounterMode (which counts 2 FLOPs per multiply-accumulate). Run with
    autograd on: in no_grad mode nn.MultiheadAttention takes its fused fast path, which the counter
    does not see into."""
    kinds = collections.Counter()
    sdpa = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: sdpa_cpu}
    with FlopCounterMode(display=False, custom_mapping=sdpa) as fc:
        model(x)
    for op, n in fc.get_flop_counts()["Global"].items():
        name = str(op).split(".")[1] if "." in str(op) else str(op)
        if "convolution" in name:
            k = "conv"
        elif name in ("mm", "addmm", "matmul"):
            k = "mm"
        elif name in ("bmm", "baddbmm"):
            k = "bmm"
        elif "attention" in name:
            k = "sdpa"
        else:
            k = name
        kinds[k] += n // 2
    return kinds


# ---------------------------------------------------------------- export


# ---------------------------------------------------------------- the file by etch's rules


def weight_inputs(graph):
    """Float initializers read by a node outside a setting slot, each once: {name: (array, op, slot)}
    (the first reader in node order, as etch counts them)."""
    inits = {t.name: t for t in graph.initializer}
    out = {}
    for n in graph.node:
        for k, i in enumerate(n.input):
            if i in inits and i not in out and inits[i].data_type in FLOAT_TYPES:
                if (k >= 1 and n.op_type in SETTING_OPS) or (k >= 3 and n.op_type == "BatchNormalization"):
                    continue
                if n.op_type in ELEMENTWISE_OPS and onnx.numpy_helper.to_array(inits[i]).size == 1:
                    continue
                out[i] = (onnx.numpy_helper.to_array(inits[i]), n.op_type, k)
    return out


def etch_rule_params(graph):
    return sum(a.size for a, _, _ in weight_inputs(graph).values())


def value_key(a):
    a = np.asarray(a, dtype=np.float32).reshape(-1)
    return (a.size, np.sort(a).tobytes())


def param_breakdown(model, graph):
    """etch params - sum(p.numel()) split into buffers counted, parameters absent and new tensors."""
    owner = {}
    for mname, mod in model.named_modules():
        for pname, _ in mod.named_parameters(prefix=mname, recurse=False):
            owner[pname] = type(mod).__name__ + "." + pname.rsplit(".", 1)[-1]
        for bname, _ in mod.named_buffers(prefix=mname, recurse=False):
            owner[bname] = type(mod).__name__ + "." + bname.rsplit(".", 1)[-1]
    params = {k: v.detach().numpy() for k, v in model.named_parameters()}
    buffers = {k: v.detach().numpy() for k, v in model.named_buffers() if v.is_floating_point()}
    by_value = collections.defaultdict(list)
    for k, v in list(params.items()) + list(buffers.items()):
        by_value[value_key(v)].append(k)
    found = set()
    new = collections.Counter()
    new_n = collections.Counter()
    for name, (a, op, slot) in weight_inputs(graph).items():
        key = name if name in params or name in buffers else None
        if key is not None and value_key({**params, **buffers}[key]) != value_key(a):
            key = None  # the parameter's name on a tensor the exporter changed (a folded conv weight)
        if key is None or key in found:
            # dynamo names initializers after the state dict (sometimes with a prefix); classic
            # after the parameter, unless it computed the tensor: match those by value
            cands = [c for c in by_value.get(value_key(a), []) if c not in found]
            if not cands:
                stripped = name.split("::")[-1]
                cands = [c for c in (stripped,) if (c in params or c in buffers) and c not in found]
            key = cands[0] if cands else None
        if key is None:
            what = f"{op}[{slot}]" + (" scalar" if a.size == 1 else "")
            new[what] += a.size
            new_n[what] += 1
        else:
            found.add(key)
    absent = collections.Counter()
    absent_n = collections.Counter()
    for k, v in params.items():
        if k not in found:
            absent[owner[k]] += v.size
            absent_n[owner[k]] += 1
    counted_buffers = collections.Counter()
    for k, v in buffers.items():
        if k in found:
            counted_buffers[owner[k]] += v.size
    return counted_buffers, absent, absent_n, new, new_n


def etch_rule_macs_check(layers):
    """etch's MACs by op type."""
    by = collections.Counter()
    for l in layers:
        if l["macs"]:
            by[l["op"]] += l["macs"]
    return by


# ---------------------------------------------------------------- main


def fmt(c, n=None):
    return ", ".join(f"{k} {v:,}" + (f" ({n[k]}x)" if n else "") for k, v in sorted(c.items())) or "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("etch", help="path of the etch binary")
    ap.add_argument("--keep", type=Path, help="write the ONNX files here and keep them")
    ap.add_argument("--models", help="comma-separated model names (default: the list in this script)")
    ap.add_argument("--extra", action="store_true", help="also the further models (EXTRA)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    etch = str(Path(args.etch).resolve())
    names = args.models.split(",") if args.models else MODELS + (EXTRA if args.extra else [])
    tmp = None
    if args.keep:
        out = args.keep
        out.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="torchvision_stats.")
        out = Path(tmp.name)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, onnx {onnx.__version__}")
    hdr = f"{'model':<20} {'exporter':<8} {'etch params':>13} {'tv params':>13} {'p ratio':>8} " \
          f"{'etch MACs':>16} {'tv MACs':>16} {'m ratio':>8}"
    print(hdr)
    failed = 0
    for name in names:
        model, x, meta = build(name)
        tv_params, tv_macs = meta["num_params"], round(meta["_ops"] * 1e9)
        own = sum(p.numel() for p in model.parameters())
        kinds = torch_macs(model, x)
        own_macs = sum(kinds.values())
        macs_by_file = {}
        for exporter, fn in (("classic", export_classic), ("dynamo", export_dynamo)):
            path = out / f"{name}_{exporter}.onnx"
            t0 = time.time()
            try:
                fn(model, x, path)
            except Exception as e:
                failed += 1
                msg = str(e).strip().splitlines()
                print(f"{name:<20} {exporter:<8} export FAILED: {type(e).__name__}: {msg[0] if msg else ''}")
                continue
            t_export = time.time() - t0
            r = subprocess.run([etch, "inspect", str(path), "--json"], capture_output=True, text=True)
            if r.returncode != 0:
                failed += 1
                print(f"{name:<20} {exporter:<8} etch inspect FAILED (exit {r.returncode}): {r.stderr.strip()}")
                continue
            d = json.loads(r.stdout)
            ep, em = d["params"], d["macs"]
            macs_by_file[exporter] = em
            print(f"{name:<20} {exporter:<8} {ep:>13,} {tv_params:>13,} {ep / tv_params:>8.4f} "
                  f"{em:>16,} {tv_macs:>16,} {em / tv_macs:>8.4f}"
                  + ("  (partial)" if d.get("partial") else ""))
            proto = onnx.load(str(path))
            mine = etch_rule_params(proto.graph)
            print(f"    file: {path.stat().st_size:,} bytes, export {t_export:.0f} s, "
                  f"{len(proto.graph.node)} nodes; check: params by etch's rule {mine:,} "
                  + ("(exact)" if mine == ep else f"(etch differs by {ep - mine:+,})"))
            print(f"    torch: sum p.numel() {own:,}" + ("" if own == tv_params else f" (num_params {tv_params:,})")
                  + f", MACs {own_macs:,} = {fmt(kinds)}; rounded to GMACs "
                  + ("= _ops" if round(own_macs / 1e9, 3) == meta["_ops"] else f"{own_macs / 1e9:.3f} != _ops {meta['_ops']}"))
            bufs, absent, absent_n, new, new_n = param_breakdown(model, proto.graph)
            print(f"    params Δ {ep - own:+,}: +buffers [{fmt(bufs)}]; -absent [{fmt(absent, absent_n)}]; "
                  f"+new [{fmt(new, new_n)}]; "
                  f"sum {sum(bufs.values()) - sum(absent.values()) + sum(new.values()):+,}")
            by_op = etch_rule_macs_check(d["layers"])
            print(f"    MACs Δ {em - own_macs:+,}: etch by op [{fmt(by_op)}]")
            sys.stdout.flush()
        if len(macs_by_file) == 2:
            same = macs_by_file["classic"] == macs_by_file["dynamo"]
            print(f"    classic and dynamo MACs " + ("equal" if same else
                  f"differ: {macs_by_file['dynamo'] - macs_by_file['classic']:+,} (dynamo - classic)"))
        if not args.keep:
            for p in out.glob(f"{name}_*.onnx"):
                p.unlink()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
