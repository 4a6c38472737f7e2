#!/usr/bin/env python3
"""Trains small low-bit networks on the 8x8 digits with Brevitas (quantization-aware training) and
exports them as QONNX and as QCDQ ONNX for etch's importer.

Usage: train_qat.py [--out-dir DIR] [--epochs-scale F]
       (scripts/train_qat.sh runs it with the pinned virtualenv .venv-qat/ and one thread)

Writes, into examples/models/ unless --out-dir says otherwise:

  qat_w1a1_mlp.onnx       FINN TFC-style binary MLP, QONNX: Mul 1/16 -> Quant (uint8, scale 2^-7) ->
                          2 x [MatMul with bipolar (+-1, scale 1) weights -> Add (threshold) ->
                          BipolarQuant (+-1, scale 1)] -> MatMul with 8-bit weights (->10) -> Quant
                          (int8 logits)
  qat_w2a2_cnn.onnx       2-bit CNN, QONNX: Mul 1/16 -> Quant (uint8) -> Conv 3x3 (1->16, 8-bit
                          weights) -> Relu -> Quant (uint2) -> Conv 3x3 (16->32, 2-bit weights) ->
                          Relu -> Quant (uint2) -> MaxPool -> Conv 3x3 (32->32, 2-bit) -> Relu ->
                          Quant (uint2) -> MaxPool -> Flatten -> Gemm (->10, 2-bit weights) -> Quant
                          (int8 logits)
  qat_w4a4_resdw.onnx     4-bit CNN, QONNX: Conv 3x3 (1->16, 8-bit weights) -> Relu -> Quant (uint4);
                          a residual block (depthwise Conv 3x3, groups 16 -> Relu -> Quant (uint4) ->
                          Conv 1x1 -> Relu -> Quant (uint4) with the same quantizer, so the same scale,
                          as the block input) -> Add -> Relu -> Quant (uint4, that quantizer again, so
                          the Add runs on codes) -> MaxPool -> Conv 3x3 (16->32) -> Relu -> Quant
                          (uint4) -> MaxPool -> Flatten -> Gemm (->10) -> Quant (int8 logits); all but
                          the first layer's weights 4-bit
  qat_int8_qcdq_cnn.onnx  8-bit CNN, QCDQ (QuantizeLinear -> Clip -> DequantizeLinear): Conv 3x3
                          (1->16) -> Relu -> MaxPool -> Conv 3x3 (16->32) -> Relu -> MaxPool ->
                          Flatten -> Gemm (->10) -> int8 logits
  qat_int4_qcdq_cnn.onnx  the same network with 4-bit weights and activations (8-bit input)

Every model takes the raw 0..16 pixels of examples/data/*.csv (label, then 64 pixels; training data
digits_train.csv, test data digits_test.csv): `float[1,1,8,8] input` (`float[1,64] input` for the
MLP), divided by 16 in the graph (a Mul by 0.0625, exact), and gives `float[1,10] logits`.

Exactness: every quantizer has a power-of-two scale and zero point 0 (Brevitas' fixed-point
quantizers; the input quantizer's scale is the constant 2^-7), no layer has a bias and no exported
graph has a BatchNormalization, so every product and sum in float32 is exact and any executor
(qonnx's, onnxruntime, etch) gives the same bits. The binary MLP trains with BatchNorm1d before its
sign activations; for export each BatchNorm + sign is folded into an exact threshold: a hidden unit's
weight row is negated where the BatchNorm's slope is negative, and BN(x) >= 0 becomes x + b >= 0 with
b = -ceil(t / s) * s, t the BatchNorm's zero crossing and s the grid the pre-activation x lies on
(the input's scale times the weights' scale), so b is on that grid and x + b is exact: the exported
net decides exactly as the trained one, save where the trained BatchNorm's float rounding lands
exactly on zero. Its float counterpart is the same MLP with float weights, BatchNorm1d and Relu.

Training: Adam (learning rate 0.003; 0.01 for the MLPs), cosine learning-rate decay, batches of 64,
each training image shifted at random by up to one pixel in each direction; activation scales are
initialised from 20 batches of statistics, then learned (as powers of two); the bipolar layers' latent
weights are clipped to [-1, 1] after each step. The MLPs (binary and float alike) train longer: 1200
epochs of batches of 256, their hidden weight matrices at 0.3 times the learning rate. With the CNNs'
recipe (60 epochs, batches of 64, one rate) the binary MLP ended 3.6 points below its float
counterpart (92.78% against 96.39%), and neither wider layers (up to 1024), a third hidden layer,
dropout nor distillation closed the gap; with this one it reaches 95.28%, within two points of the
float MLP under either recipe (this one gives the float net 94.17%). Export: brevitas.export.export_qonnx / export_onnx_qcdq with the
TorchScript exporter, then qonnx's cleanup_model (shape inference, constant folding that keeps the
Quant / BipolarQuant / QuantizeLinear / DequantizeLinear nodes, unique and readable names), the graph
input and output renamed back to `input` and `logits`, checked with onnx.checker (full check).

Verification, printed at the end as a table: test accuracy of the Brevitas model in torch, of the
exported model run by qonnx's executor (qonnx.core.onnx_exec.execute_onnx, one image at a time) and,
for the QCDQ models, by onnxruntime with graph optimizations disabled; the number of test images whose
logits are bit-identical between the executors and torch; the float MLP's accuracy; then each model's
nodes (op_type and domain) and every Quant node's bit width and scale.

Deterministic: fixed seeds, torch.use_deterministic_algorithms(True), one thread: the same files on
every run on a given machine (float training may round differently on another CPU family, whose
oneDNN / MKL kernels differ). NNPACK is turned off: torch uses it for batched convolutions when
oneDNN is off, and its Winograd transforms are not exact, which made the batched torch accuracy differ
from the exported model's. About five minutes of one core.
"""

import argparse
import importlib.metadata
import math
import os
import sys
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F

warnings.filterwarnings("ignore")  # Brevitas and torch.onnx are chatty about deprecations

from brevitas.export import export_onnx_qcdq, export_qonnx
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant import (
    Int8ActPerTensorFixedPoint,
    Int8WeightPerTensorFixedPoint,
    SignedBinaryActPerTensorConst,
    SignedBinaryWeightPerTensorConst,
    Uint8ActPerTensorFixedPoint,
)
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.util.cleanup import cleanup_model

torch.set_num_threads(1)
torch.set_num_interop_threads(1)
torch.use_deterministic_algorithms(True)
torch.backends.nnpack.set_flags(False)  # NNPACK's Winograd convolutions are not exact

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATS_STEPS = 20  # batches of statistics that initialise each activation scale

# ---------------------------------------------------------------------------------------------
# Data


def load(path):
    with open(path) as f:
        first = f.readline().split(",")[0].strip()
    skip = 0 if first.lstrip("-").isdigit() else 1  # a header line, if any
    a = np.loadtxt(path, delimiter=",", skiprows=skip, dtype=np.float32)
    assert a.shape[1] == 65, a.shape
    return torch.from_numpy(a[:, 1:].reshape(-1, 1, 8, 8).copy()), torch.from_numpy(a[:, 0].astype(np.int64))


def shift(x, gen):
    """Each image moved by -1, 0 or 1 pixel along each axis (zeros come in)."""
    n = x.shape[0]
    d = torch.randint(0, 3, (n, 2), generator=gen)
    p = F.pad(x, (1, 1, 1, 1))
    out = torch.empty_like(x)
    for dy in range(3):
        for dx in range(3):
            m = (d[:, 0] == dy) & (d[:, 1] == dx)
            out[m] = p[m, :, dy : dy + 8, dx : dx + 8]
    return out


# ---------------------------------------------------------------------------------------------
# Quantizers: power-of-two scales, zero point 0


def input_quant():
    # uint8 with the constant scale 2^-7: k/16 for k in 0..16 is exact (k*8 in 0..128)
    return QuantIdentity(act_quant=Uint8ActPerTensorFixedPoint, scaling_impl_type="const", scaling_init=2.0)


def relu_q(bits):
    return QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, bit_width=bits, collect_stats_steps=STATS_STEPS)


def output_quant():
    # int8 logits with a learned power-of-two scale: the last layer then writes codes, as the
    # accelerator's integer datapath does (the host only dequantizes them)
    return QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, collect_stats_steps=STATS_STEPS)


def conv_q(cin, cout, k, bits, groups=1):
    return QuantConv2d(cin, cout, k, padding=k // 2, groups=groups, bias=False,
                       weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=bits)


def linear_q(cin, cout, bits):
    return QuantLinear(cin, cout, bias=False, weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=bits)


class Scale16(nn.Module):
    """Raw pixels to 0..1: a Mul by 1/16 (a power of two, so exact) in the exported graph."""

    def forward(self, x):
        return x * 0.0625


# ---------------------------------------------------------------------------------------------
# Models


class BinaryMLP(nn.Module):
    """TFC style: 8-bit input, bipolar weights and activations in the hidden layers, BatchNorm1d
    before each sign, 8-bit weights in the last layer. With quant=False: the float counterpart
    (float weights, BatchNorm1d, Relu)."""

    def __init__(self, hidden, quant=True):
        super().__init__()
        self.quant = quant
        self.scale = Scale16()
        self.inq = input_quant() if quant else nn.Identity()
        layers = []
        n = 64
        for h in hidden:
            if quant:
                fc = QuantLinear(n, h, bias=False, weight_quant=SignedBinaryWeightPerTensorConst,
                                 weight_scaling_const=1.0)
                act = QuantIdentity(act_quant=SignedBinaryActPerTensorConst, scaling_const=1.0)
            else:
                fc, act = nn.Linear(n, h, bias=False), nn.ReLU()
            layers += [fc, nn.BatchNorm1d(h), act]
            n = h
        self.hidden = nn.Sequential(*layers)
        self.out = linear_q(n, 10, 8) if quant else nn.Linear(n, 10, bias=False)
        self.outq = output_quant() if quant else nn.Identity()
        # latent weights of the bipolar layers, kept in [-1, 1] as BinaryNet does
        self.clip = [m.weight for m in layers[0::3]] if quant else []

    def hidden_weights(self):
        return [m.weight for m in list(self.hidden)[0::3]]

    def forward(self, x):
        x = self.inq(self.scale(torch.flatten(x, 1) if x.dim() > 2 else x))  # no Reshape in the export
        return self.outq(self.out(self.hidden(x)))


class DeployMLP(nn.Module):
    """BinaryMLP with each BatchNorm1d + sign folded into bipolar weights and an exact threshold (a
    float bias on the pre-activation's grid): what is exported."""

    def __init__(self, trained):
        super().__init__()
        self.scale = Scale16()
        self.inq = input_quant()
        self.inq.load_state_dict(trained.inq.state_dict())
        mods = list(trained.hidden)
        layers = []
        grid = 2.0**-7  # the input quantizer's scale; the bipolar weights' scale is 1
        for fc, bn, act in zip(mods[0::3], mods[1::3], mods[2::3]):
            w = fc.quant_weight().value.detach().double()  # +-1
            a = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)
            c = bn.bias.detach().double() - a * bn.running_mean.double()
            # BN(x) = a x + c >= 0  <=>  x >= -c/a (a > 0)  <=>  -x >= c/a (a < 0)
            sign = torch.where(a < 0, -1.0, 1.0).double()
            t = torch.where(a != 0, -c / torch.where(a == 0, 1.0, a) * sign,
                            torch.where(c >= 0, -1e4, 1e4).double())
            bias = -torch.ceil(t / grid) * grid  # x' + bias >= 0  <=>  x' >= t, x' on the grid
            bias = bias.clamp(-4096.0, 4096.0)
            new = QuantLinear(fc.in_features, fc.out_features, bias=True,
                              weight_quant=SignedBinaryWeightPerTensorConst, weight_scaling_const=1.0)
            with torch.no_grad():
                new.weight.copy_((w * sign[:, None]).float())
                new.bias.copy_(bias.float())
            assert torch.equal(new.bias.double(), bias), "threshold not exact in float32"
            layers += [new, QuantIdentity(act_quant=SignedBinaryActPerTensorConst, scaling_const=1.0)]
            grid = 1.0
        self.hidden = nn.Sequential(*layers)
        self.out = linear_q(trained.out.in_features, 10, 8)
        self.out.load_state_dict(trained.out.state_dict())
        self.outq = output_quant()
        self.outq.load_state_dict(trained.outq.state_dict())

    def forward(self, x):
        x = self.inq(self.scale(torch.flatten(x, 1) if x.dim() > 2 else x))
        return self.outq(self.out(self.hidden(x)))


class PlainCNN(nn.Module):
    """conv(1->c1) -> relu/q -> [conv(c1->c1) -> relu/q] -> pool -> conv(->c2) -> relu/q -> pool -> fc"""

    def __init__(self, wbits, abits, c1, c2, extra_conv, first_wbits=8):
        super().__init__()
        self.scale = Scale16()
        self.inq = input_quant()
        layers = [conv_q(1, c1, 3, first_wbits), relu_q(abits)]
        if extra_conv:
            layers += [conv_q(c1, c2, 3, wbits), relu_q(abits)]
            c1 = c2
        layers += [nn.MaxPool2d(2), conv_q(c1, c2, 3, wbits), relu_q(abits), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*layers)
        self.fc = linear_q(c2 * 4, 10, wbits)
        self.outq = output_quant()

    def forward(self, x):
        x = self.features(self.inq(self.scale(x)))
        return self.outq(self.fc(torch.flatten(x, 1)))


class ResDwCNN(nn.Module):
    """4-bit CNN with a residual block around a depthwise and a pointwise convolution."""

    def __init__(self, bits=4, c1=16, c2=32):
        super().__init__()
        self.scale = Scale16()
        self.inq = input_quant()
        self.conv1 = conv_q(1, c1, 3, 8)
        self.q1 = relu_q(bits)  # also quantizes the block's output branch: one scale for the Add
        self.dw = conv_q(c1, c1, 3, bits, groups=c1)
        self.q2 = relu_q(bits)
        self.pw = conv_q(c1, c1, 1, bits)
        self.conv2 = conv_q(c1, c2, 3, bits)
        self.q4 = relu_q(bits)
        self.fc = linear_q(c2 * 4, 10, bits)
        self.outq = output_quant()

    def forward(self, x):
        y = self.q1(self.conv1(self.inq(self.scale(x))))
        z = self.q1(self.pw(self.q2(self.dw(y))))
        # the sum requantized by the operands' own quantizer: one scale in, one out, so the Add
        # runs on the codes
        x = F.max_pool2d(self.q1(y + z), 2)
        x = F.max_pool2d(self.q4(self.conv2(x)), 2)
        return self.outq(self.fc(torch.flatten(x, 1)))


# ---------------------------------------------------------------------------------------------
# Training and evaluation


def train(model, data, epochs, lr, seed, batch=64, slow=(), slow_lr=None):
    """Adam with cosine decay; the parameters in slow (the MLP's hidden weight matrices) learn at
    slow_lr instead of lr."""
    xtr, ytr = data
    gen = torch.Generator().manual_seed(seed)
    ids = {id(p) for p in slow}
    groups = [{"params": [p for p in model.parameters() if id(p) not in ids]}]
    if ids:
        groups.append({"params": list(slow), "lr": slow_lr})
    opt = torch.optim.Adam(groups, lr=lr)
    steps = epochs * math.ceil(len(xtr) / batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xtr), generator=gen)
        for i in range(0, len(xtr), batch):
            idx = perm[i : i + batch]
            loss = F.cross_entropy(model(shift(xtr[idx], gen)), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            with torch.no_grad():
                for w in getattr(model, "clip", []):
                    w.clamp_(-1.0, 1.0)
    model.eval()
    return model


@torch.no_grad()
def torch_logits(model, x):
    model.eval()
    return model(x).float()


def accuracy(logits, y):
    return 100.0 * float((np.asarray(logits).argmax(1) == np.asarray(y)).mean())


# ---------------------------------------------------------------------------------------------
# Export


def rename_io(model):
    """cleanup_model names the graph's input and output global_in / global_out: back to the
    names etch's examples use."""
    g = model.graph
    for old, new in ((g.input[0].name, "input"), (g.output[0].name, "logits")):
        for n in g.node:
            for i, s in enumerate(n.input):
                if s == old:
                    n.input[i] = new
            for i, s in enumerate(n.output):
                if s == old:
                    n.output[i] = new
        for vi in list(g.input) + list(g.output) + list(g.value_info):
            if vi.name == old:
                vi.name = new


def export(model, path, example, qcdq):
    tmp = path + ".raw"
    kw = dict(input_names=["input"], output_names=["logits"], dynamo=False)
    if qcdq:
        export_onnx_qcdq(model, args=example, export_path=tmp, **kw)
    else:
        export_qonnx(model, args=example, export_path=tmp, **kw)
    m = cleanup_model(ModelWrapper(tmp))
    os.remove(tmp)
    rename_io(m.model)
    m.model.producer_name = "etch scripts/train_qat.py (Brevitas)"
    doms = {o.domain for o in m.model.opset_import}
    if any(n.domain == "qonnx.custom_op.general" for n in m.graph.node) and "qonnx.custom_op.general" not in doms:
        m.model.opset_import.append(onnx.helper.make_opsetid("qonnx.custom_op.general", 1))
    onnx.checker.check_model(m.model, full_check=True)
    onnx.save(m.model, path)
    return ModelWrapper(path)


def qonnx_logits(mw, x):
    iname, oname = mw.graph.input[0].name, mw.graph.output[0].name
    shape = [d.dim_value for d in mw.graph.input[0].type.tensor_type.shape.dim]
    return np.concatenate([execute_onnx(mw, {iname: x[i : i + 1].numpy().reshape(shape)})[oname] for i in range(len(x))])


def ort_logits(path, x):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    shape = [d.dim_value for d in onnx.load(path).graph.input[0].type.tensor_type.shape.dim]
    return np.concatenate([s.run(None, {"input": x[i : i + 1].numpy().reshape(shape)})[0] for i in range(len(x))])


def describe(mw):
    """op_type(domain) list and each quantizer's bit width and scale."""
    g = mw.graph
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in g.initializer}

    def const(name):
        return inits.get(name)

    ops = [n.op_type + (f"({n.domain})" if n.domain else "") for n in g.node]
    quants = []
    for n in g.node:
        if n.op_type == "Quant":
            s, z, b = const(n.input[1]), const(n.input[2]), const(n.input[3])
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
            what = "weight" if n.input[0] in inits else "act"
            quants.append((n.name, what, f"{float(b):g}-bit {'s' if attrs.get('signed') else 'u'}int",
                           s, z, attrs.get("narrow"), attrs.get("rounding_mode", b"ROUND")))
        elif n.op_type == "BipolarQuant":
            what = "weight" if n.input[0] in inits else "act"
            quants.append((n.name, what, "1-bit bipolar", const(n.input[1]), None, None, None))
        elif n.op_type == "DequantizeLinear" and n.input[0] in inits:  # a QCDQ weight: int8 initializer
            q, s = inits[n.input[0]], const(n.input[1])
            z = const(n.input[2]) if len(n.input) > 2 else None
            lo, hi = int(q.min()), int(q.max())
            bits = 1 + math.ceil(math.log2(max(-lo, hi) + 1))
            quants.append((n.name, "weight", f"{q.dtype} [{lo},{hi}] ({bits} bits)", s, z, None, None))
        elif n.op_type == "QuantizeLinear":
            s, z = const(n.input[1]), const(n.input[2]) if len(n.input) > 2 else None
            nxt = [m for m in g.node if n.output[0] in m.input]
            lo, hi = (-128, 127) if z is None or z.dtype == np.int8 else (0, 255)
            if nxt and nxt[0].op_type == "Clip":
                lo, hi = int(const(nxt[0].input[1])), int(const(nxt[0].input[2]))
            bits = math.ceil(math.log2(hi - lo + 1))
            what = "weight" if n.input[0] in inits else "act"
            quants.append((n.name, what, f"{bits}-bit [{lo},{hi}]", s, z, None, None))
    return ops, quants


def po2(a):
    a = np.asarray(a, dtype=np.float64).ravel()
    return bool(np.all((a > 0) & (np.frexp(a)[0] == 0.5)))


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", default=os.path.join(REPO, "examples", "models"))
    ap.add_argument("--epochs-scale", type=float, default=1.0, help="scale every model's epochs (quick tries)")
    args = ap.parse_args()
    t_start = time.time()
    print(f"torch {torch.__version__}, brevitas {__import__('brevitas').__version__}, "
          f"qonnx {importlib.metadata.version('qonnx')}, "
          f"onnx {onnx.__version__}, onnxruntime {ort.__version__}, numpy {np.__version__}, "
          f"threads {torch.get_num_threads()}")

    data_dir = os.path.join(REPO, "examples", "data")
    xtr, ytr = load(os.path.join(data_dir, "digits_train.csv"))
    xte, yte = load(os.path.join(data_dir, "digits_test.csv"))
    print(f"train {len(xtr)}, test {len(xte)} images")
    ep = lambda n: max(1, round(n * args.epochs_scale))  # noqa: E731
    os.makedirs(args.out_dir, exist_ok=True)

    # (file, builder, epochs, lr, qcdq, input shape)
    hidden = [256, 256]
    specs = [
        ("qat_w1a1_mlp.onnx", lambda: BinaryMLP(hidden), 1200, 1e-2, False, (1, 64)),
        ("qat_w2a2_cnn.onnx", lambda: PlainCNN(2, 2, 16, 32, extra_conv=True), 40, 3e-3, False, (1, 1, 8, 8)),
        ("qat_w4a4_resdw.onnx", lambda: ResDwCNN(4), 40, 3e-3, False, (1, 1, 8, 8)),
        ("qat_int8_qcdq_cnn.onnx", lambda: PlainCNN(8, 8, 16, 32, extra_conv=False), 30, 3e-3, True, (1, 1, 8, 8)),
        ("qat_int4_qcdq_cnn.onnx", lambda: PlainCNN(4, 4, 16, 32, extra_conv=False), 30, 3e-3, True, (1, 1, 8, 8)),
    ]
    rows, details = [], []
    for i, (name, build, epochs, lr, qcdq, shape) in enumerate(specs):
        seed = 1000 + i
        torch.manual_seed(seed)
        t0 = time.time()
        model = build()
        # the MLP: batches of 256, its hidden weight matrices (latent weights of the bipolar
        # layers) at 0.3 x the learning rate; the float counterpart trains the same way
        kw = dict(batch=256, slow=model.hidden_weights(), slow_lr=0.3 * lr) if name == "qat_w1a1_mlp.onnx" else {}
        model = train(model, (xtr, ytr), ep(epochs), lr, seed, **kw)
        extra = {}
        if name == "qat_w1a1_mlp.onnx":
            extra["trained (BatchNorm) torch"] = accuracy(torch_logits(model, xte), yte)
            torch.manual_seed(seed)
            fl = BinaryMLP(hidden, quant=False)
            fl = train(fl, (xtr, ytr), ep(epochs), lr, seed, batch=256, slow=fl.hidden_weights(), slow_lr=0.3 * lr)
            extra["float counterpart torch"] = accuracy(torch_logits(fl, xte), yte)
            model = DeployMLP(model).eval()
        t_train = time.time() - t0
        path = os.path.join(args.out_dir, name)
        mw = export(model, path, torch.zeros(shape), qcdq)
        tl = torch_logits(model, xte).numpy()
        ql = qonnx_logits(mw, xte)
        row = {"model": name, "epochs": ep(epochs), "train_s": t_train, "torch": accuracy(tl, yte),
               "qonnx": accuracy(ql, yte), "ort": None, "qonnx==torch": int((ql == tl).all(1).sum()),
               "ort==qonnx": None, "kB": os.path.getsize(path) / 1024, **extra}
        if qcdq:
            ol = ort_logits(path, xte)
            row["ort"] = accuracy(ol, yte)
            row["ort==qonnx"] = int((ol == ql).all(1).sum())
        rows.append(row)
        details.append((name, describe(mw), mw.model.ir_version, [(o.domain or "ai.onnx", o.version) for o in mw.model.opset_import]))
        print(f"{name}: trained {t_train:.0f} s, torch {row['torch']:.2f}%, qonnx {row['qonnx']:.2f}%"
              + (f", onnxruntime {row['ort']:.2f}%" if qcdq else "")
              + "".join(f", {k} {v:.2f}%" for k, v in extra.items()), flush=True)

    print()
    print(f"Test accuracy (%) on {len(xte)} images; 'bit-equal' counts images whose 10 logits are identical")
    hdr = f"{'model':<24}{'epochs':>7}{'train s':>8}{'torch':>8}{'qonnx':>8}{'ort':>8}{'qonnx==torch':>13}{'ort==qonnx':>11}{'KiB':>7}"
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        f = lambda v: f"{v:8.2f}" if v is not None else f"{'-':>8}"  # noqa: E731
        g = lambda v: f"{v}/{len(xte)}" if v is not None else "-"  # noqa: E731
        print(f"{r['model']:<24}{r['epochs']:>7}{r['train_s']:>8.0f}{f(r['torch'])}{f(r['qonnx'])}{f(r['ort'])}"
              f"{g(r['qonnx==torch']):>13}{g(r['ort==qonnx']):>11}{r['kB']:>7.1f}")
    mlp = rows[0]
    print(f"binary MLP {hidden}: float counterpart {mlp['float counterpart torch']:.2f}%, trained binary net "
          f"(BatchNorm) {mlp['trained (BatchNorm) torch']:.2f}%, exported (thresholds) {mlp['qonnx']:.2f}%: "
          f"{mlp['float counterpart torch'] - mlp['qonnx']:+.2f} points")

    all_po2 = True
    for name, (ops, quants), irv, opsets in details:
        print()
        print(f"{name}: ir_version {irv}, opsets {opsets}")
        print("  nodes: " + " ".join(ops))
        for qn, what, bits, s, z, narrow, rnd in quants:
            ok = po2(s) and (z is None or not np.any(np.asarray(z)))
            all_po2 &= ok
            sv = np.unique(np.asarray(s))
            sd = ", ".join(f"2^{int(np.log2(v))}" if po2(v) else f"{v:g}" for v in sv)
            print(f"  {qn:<22}{what:<7}{bits:<24}scale {sd}" + ("" if z is None else f", zero point {np.unique(np.asarray(z)).tolist()}")
                  + ("" if narrow is None else f", narrow {narrow}") + ("" if rnd is None else f", {rnd.decode() if isinstance(rnd, bytes) else rnd}"))
    print()
    print(f"all scales powers of two, all zero points 0: {all_po2}")
    print(f"wall time {time.time() - t_start:.0f} s")
    if not all_po2:
        sys.exit(1)


if __name__ == "__main__":
    main()
