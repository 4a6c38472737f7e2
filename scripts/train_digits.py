#!/usr/bin/env python3
"""Trains two small BatchNormalization CNNs on the 8x8 digits with numpy alone and exports them as
ONNX text.

Usage: train_digits.py [--out-dir DIR] [--epochs N]
       (scripts/train_digits.sh runs it with the project's pinned virtualenv and one thread)

Writes, into examples/models/ unless --out-dir says otherwise:

  digits_ds.onnx.txt   depthwise-separable CNN: Conv 3x3 (1->16) -> BN -> Relu -> depthwise 3x3 -> BN
                       -> Relu -> pointwise 1x1 (16->32) -> BN -> Relu -> MaxPool 2x2 -> depthwise
                       3x3 -> BN -> Relu -> pointwise 1x1 (32->32) -> BN -> Relu -> MaxPool 2x2 ->
                       Flatten -> Gemm (->10)
  digits_res.onnx.txt  residual CNN: Conv 3x3 (1->16) -> BN -> Relu, one basic block (Conv 3x3 -> BN
                       -> Relu -> Conv 3x3 -> BN, Add with the block's input, Relu), MaxPool 2x2 ->
                       Flatten -> Gemm (->10)

Both take `float[1,1,8,8] input` (the raw 0..16 pixels of examples/data/*.csv, divided by 16 by a
Constant+Div at the input, as digits_cnn does) and give `float[1,10] logits`. Training data:
examples/data/digits_train.csv; test data: examples/data/digits_test.csv (label, then 64 pixels).

Training: hand-written forward and backward passes, mini-batch SGD with momentum and weight decay,
BatchNormalization in training mode (batch statistics, running mean/var with momentum 0.1 and the
unbiased variance, as PyTorch keeps them; epsilon 1e-5), a fixed number of epochs, each training
image shifted at random by up to one pixel in each direction.

Deterministic: the same files on every run and every x86-64 CPU. The seeds are fixed (numpy's PCG64,
uniform draws only), and no BLAS is used: every matrix product is computed with numpy's elementwise
multiply and add (each correctly rounded, the same on every instruction set) and sums whose order
depends only on the arrays' shapes; exp is a polynomial written here, not libm's or numpy's SIMD
one. Everything is float64 and single-threaded; the weights are exported as float32.

After training, each model is built with onnx.helper, printed with onnx.printer.to_text, written,
then parsed back from the file (the exact numbers etch reads), checked with onnx.checker (full
check) and run on the test set by onnxruntime and by a numpy interpreter of the exported graph;
the accuracies are printed together with the training code's own float64 accuracy.
"""

import argparse
import os
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

EPS = 1e-5
BN_MOMENTUM = 0.1

# ---------------------------------------------------------------------------------------------
# Deterministic numerics


def mm(a, b):
    """a @ b without BLAS: the same bits on every CPU (elementwise products, ordered sums)."""
    a = np.ascontiguousarray(a, dtype=np.float64)
    b = np.ascontiguousarray(b, dtype=np.float64)
    m, k = a.shape
    k2, n = b.shape
    assert k == k2, (a.shape, b.shape)
    if n <= k:
        # one output column at a time: a row-wise sum of products along the contiguous axis
        out = np.empty((m, n))
        bt = np.ascontiguousarray(b.T)
        for j in range(n):
            out[:, j] = (a * bt[j]).sum(axis=1)
        return out
    # one rank-1 update per reduction index, in increasing order
    out = a[:, 0:1] * b[0:1, :]
    for i in range(1, k):
        out += a[:, i : i + 1] * b[i : i + 1, :]
    return out


_LN2_HI = 6.93147180369123816490e-01  # fdlibm's split of ln 2: n * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
_EXP_COEF = [1.0 / float(np.prod(np.arange(1, k + 1, dtype=np.float64))) for k in range(14)]


def det_exp(x):
    """exp(x) for x <= 0 from + and * alone (range reduction and a Taylor polynomial)."""
    x = np.maximum(x, -700.0)
    n = np.floor(x * _INV_LN2 + 0.5)
    r = (x - n * _LN2_HI) - n * _LN2_LO
    p = np.full_like(r, _EXP_COEF[-1])
    for c in reversed(_EXP_COEF[:-1]):
        p = p * r + c
    return np.ldexp(p, n.astype(np.int32))


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = det_exp(z)
    return e / e.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------
# Layers (activations are NHWC inside the training code; the export converts to ONNX's NCHW)


def taps(xp, h, w):
    """The 9 shifted 3x3 windows of a padded NHWC tensor, in row-major tap order."""
    return [xp[:, i : i + h, j : j + w, :] for i in range(3) for j in range(3)]


def pad1(x):
    return np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))


class Param:
    def __init__(self, name, value, decay):
        self.name = name
        self.value = value
        self.grad = np.zeros_like(value)
        self.vel = np.zeros_like(value)
        self.decay = decay


class Conv3x3:
    """Full 3x3 convolution, pad 1, stride 1, no bias (a BatchNormalization follows)."""

    def __init__(self, name, cin, cout, rng):
        bound = np.sqrt(6.0 / (9 * cin))
        # rows: tap-major then input channel; columns: output channel
        self.w = Param(name + ".weight", (rng.random((9 * cin, cout)) * 2 - 1) * bound, True)
        self.params = [self.w]
        self.name, self.cin, self.cout = name, cin, cout

    def forward(self, x, train):
        b, h, w, c = x.shape
        cols = np.stack(taps(pad1(x), h, w), axis=3).reshape(b * h * w, 9 * c)
        self.cache = (cols, x.shape)
        return mm(cols, self.w.value).reshape(b, h, w, self.cout)

    def backward(self, dy):
        cols, (b, h, w, c) = self.cache
        dy = dy.reshape(b * h * w, self.cout)
        self.w.grad += mm(cols.T, dy)
        dcols = mm(dy, self.w.value.T).reshape(b, h, w, 9, c)
        dxp = np.zeros((b, h + 2, w + 2, c))
        t = 0
        for i in range(3):
            for j in range(3):
                dxp[:, i : i + h, j : j + w, :] += dcols[:, :, :, t, :]
                t += 1
        return dxp[:, 1:-1, 1:-1, :]

    def onnx_weight(self):
        return self.w.value.reshape(3, 3, self.cin, self.cout).transpose(3, 2, 0, 1)

    def onnx_node(self, x):
        return "Conv", dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1],
                            dilations=[1, 1], group=1)


class DepthwiseConv3x3:
    """Depthwise 3x3 convolution (group = channels), pad 1, stride 1, no bias."""

    def __init__(self, name, c, rng):
        bound = np.sqrt(6.0 / 9)
        self.w = Param(name + ".weight", (rng.random((9, c)) * 2 - 1) * bound, True)
        self.params = [self.w]
        self.name, self.c = name, c

    def forward(self, x, train):
        b, h, w, c = x.shape
        ts = taps(pad1(x), h, w)
        self.cache = (ts, x.shape)
        out = ts[0] * self.w.value[0]
        for t in range(1, 9):
            out = out + ts[t] * self.w.value[t]
        return out

    def backward(self, dy):
        ts, (b, h, w, c) = self.cache
        dxp = np.zeros((b, h + 2, w + 2, c))
        t = 0
        for i in range(3):
            for j in range(3):
                self.w.grad[t] += (dy * ts[t]).reshape(-1, c).sum(axis=0)
                dxp[:, i : i + h, j : j + w, :] += dy * self.w.value[t]
                t += 1
        return dxp[:, 1:-1, 1:-1, :]

    def onnx_weight(self):
        return self.w.value.reshape(3, 3, self.c).transpose(2, 0, 1)[:, None, :, :]

    def onnx_node(self, x):
        return "Conv", dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1],
                            dilations=[1, 1], group=self.c)


class PointwiseConv:
    """1x1 convolution, no bias."""

    def __init__(self, name, cin, cout, rng):
        bound = np.sqrt(6.0 / cin)
        self.w = Param(name + ".weight", (rng.random((cin, cout)) * 2 - 1) * bound, True)
        self.params = [self.w]
        self.name, self.cin, self.cout = name, cin, cout

    def forward(self, x, train):
        b, h, w, c = x.shape
        x2 = x.reshape(b * h * w, c)
        self.cache = (x2, x.shape)
        return mm(x2, self.w.value).reshape(b, h, w, self.cout)

    def backward(self, dy):
        x2, (b, h, w, c) = self.cache
        dy = dy.reshape(b * h * w, self.cout)
        self.w.grad += mm(x2.T, dy)
        return mm(dy, self.w.value.T).reshape(b, h, w, c)

    def onnx_weight(self):
        return self.w.value.T[:, :, None, None]

    def onnx_node(self, x):
        return "Conv", dict(kernel_shape=[1, 1], pads=[0, 0, 0, 0], strides=[1, 1],
                            dilations=[1, 1], group=1)


class BatchNorm:
    def __init__(self, name, c):
        self.gamma = Param(name + ".weight", np.ones(c), False)
        self.beta = Param(name + ".bias", np.zeros(c), False)
        self.params = [self.gamma, self.beta]
        self.running_mean = np.zeros(c)
        self.running_var = np.ones(c)
        self.name, self.c = name, c

    def forward(self, x, train):
        shape = x.shape
        x = x.reshape(-1, self.c)
        if train:
            n = x.shape[0]
            mean = x.sum(axis=0) / n
            xc = x - mean
            var = (xc * xc).sum(axis=0) / n
            inv = 1.0 / np.sqrt(var + EPS)
            xhat = xc * inv
            self.cache = (xhat, inv, n)
            self.running_mean = (1 - BN_MOMENTUM) * self.running_mean + BN_MOMENTUM * mean
            self.running_var = (1 - BN_MOMENTUM) * self.running_var + BN_MOMENTUM * var * (n / (n - 1))
        else:
            xhat = (x - self.running_mean) / np.sqrt(self.running_var + EPS)
        return (xhat * self.gamma.value + self.beta.value).reshape(shape)

    def backward(self, dy):
        shape = dy.shape
        dy = dy.reshape(-1, self.c)
        xhat, inv, n = self.cache
        self.gamma.grad += (dy * xhat).sum(axis=0)
        self.beta.grad += dy.sum(axis=0)
        dxhat = dy * self.gamma.value
        dx = (inv / n) * (n * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0))
        return dx.reshape(shape)


class Relu:
    def forward(self, x, train):
        self.mask = x > 0
        return np.where(self.mask, x, 0.0)

    def backward(self, dy):
        return np.where(self.mask, dy, 0.0)


class MaxPool2:
    """2x2 max pooling, stride 2; the gradient goes to the first maximum of each window."""

    def forward(self, x, train):
        b, h, w, c = x.shape
        win = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 5, 2, 4).reshape(b, h // 2, w // 2, c, 4)
        self.cache = (np.argmax(win, axis=4), x.shape)
        return win.max(axis=4)

    def backward(self, dy):
        arg, (b, h, w, c) = self.cache
        dwin = np.zeros(arg.shape + (4,))
        np.put_along_axis(dwin, arg[..., None], dy[..., None], axis=4)
        return dwin.reshape(b, h // 2, w // 2, c, 2, 2).transpose(0, 1, 4, 2, 5, 3).reshape(b, h, w, c)


class Dense:
    """Flatten then Gemm; the weight rows follow the NHWC flattening, the export reorders them."""

    def __init__(self, name, hw, c, nout, rng):
        fin = hw[0] * hw[1] * c
        bound = np.sqrt(1.0 / fin)
        self.w = Param(name + ".weight", (rng.random((fin, nout)) * 2 - 1) * bound, True)
        self.b = Param(name + ".bias", np.zeros(nout), False)
        self.params = [self.w, self.b]
        self.name, self.hw, self.c, self.nout = name, hw, c, nout

    def forward(self, x, train):
        f = x.reshape(x.shape[0], -1)
        self.cache = (f, x.shape)
        return mm(f, self.w.value) + self.b.value

    def backward(self, dy):
        f, shape = self.cache
        self.w.grad += mm(f.T, dy)
        self.b.grad += dy.sum(axis=0)
        return mm(dy, self.w.value.T).reshape(shape)

    def onnx_weight(self):
        h, w = self.hw
        # ONNX flattens NCHW: column index c*h*w + y*w + x
        return self.w.value.reshape(h, w, self.c, self.nout).transpose(3, 2, 0, 1).reshape(self.nout, -1)


class Residual:
    """relu(block(x) + x)."""

    def __init__(self, block):
        self.block = block
        self.relu = Relu()
        self.params = [p for layer in block for p in getattr(layer, "params", [])]

    def forward(self, x, train):
        y = x
        for layer in self.block:
            y = layer.forward(y, train)
        return self.relu.forward(y + x, train)

    def backward(self, dy):
        d = self.relu.backward(dy)
        g = d
        for layer in reversed(self.block):
            g = layer.backward(g)
        return g + d


class Net:
    def __init__(self, layers):
        self.layers = layers
        self.params = [p for layer in layers for p in getattr(layer, "params", [])]

    def forward(self, x, train):
        for layer in self.layers:
            x = layer.forward(x, train)
        return x

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)


def make_ds(rng):
    return Net([
        Conv3x3("conv1", 1, 16, rng), BatchNorm("bn1", 16), Relu(),
        DepthwiseConv3x3("dw1", 16, rng), BatchNorm("bn_dw1", 16), Relu(),
        PointwiseConv("pw1", 16, 32, rng), BatchNorm("bn_pw1", 32), Relu(),
        MaxPool2(),
        DepthwiseConv3x3("dw2", 32, rng), BatchNorm("bn_dw2", 32), Relu(),
        PointwiseConv("pw2", 32, 32, rng), BatchNorm("bn_pw2", 32), Relu(),
        MaxPool2(),
        Dense("fc", (2, 2), 32, 10, rng),
    ])


def make_res(rng):
    return Net([
        Conv3x3("conv1", 1, 16, rng), BatchNorm("bn1", 16), Relu(),
        Residual([Conv3x3("block.conv1", 16, 16, rng), BatchNorm("block.bn1", 16), Relu(),
                  Conv3x3("block.conv2", 16, 16, rng), BatchNorm("block.bn2", 16)]),
        MaxPool2(),
        Dense("fc", (4, 4), 16, 10, rng),
    ])


# ---------------------------------------------------------------------------------------------
# Training


def load(path):
    d = np.loadtxt(path, delimiter=",", dtype=np.float64)
    return d[:, 1:].reshape(-1, 8, 8, 1), d[:, 0].astype(np.int64)


def evaluate(net, x, y, batch=360):
    correct = 0
    for s in range(0, len(x), batch):
        logits = net.forward(x[s : s + batch] / 16.0, False)
        correct += int((np.argmax(logits, axis=1) == y[s : s + batch]).sum())
    return correct


def shift(xb, rng):
    """Moves each image by -1, 0 or +1 pixel in each direction (zeros come in at the edge)."""
    b = len(xb)
    s = rng.integers(0, 3, size=(b, 2))
    xp = np.pad(xb, ((0, 0), (1, 1), (1, 1), (0, 0)))
    rows = s[:, 0, None] + np.arange(8)
    cols = s[:, 1, None] + np.arange(8)
    return xp[np.arange(b)[:, None, None], rows[:, :, None], cols[:, None, :]]


def train(net, x, y, xt, yt, epochs, seed, lr0=0.05, momentum=0.9, decay=5e-4, batch=32):
    rng = np.random.default_rng(seed)
    n = len(x)
    steps_per_epoch = n // batch  # the last partial batch is dropped (BN wants a real batch)
    total = epochs * steps_per_epoch
    step = 0
    for epoch in range(epochs):
        perm = rng.permutation(n)
        loss_sum, correct = 0.0, 0
        for s in range(steps_per_epoch):
            idx = perm[s * batch : (s + 1) * batch]
            xb, yb = shift(x[idx], rng) / 16.0, y[idx]
            for p in net.params:
                p.grad[...] = 0.0
            logits = net.forward(xb, True)
            prob = softmax(logits)
            loss_sum += float(-np.log(prob[np.arange(batch), yb]).sum())  # display only
            correct += int((np.argmax(logits, axis=1) == yb).sum())
            d = prob.copy()
            d[np.arange(batch), yb] -= 1.0
            net.backward(d / batch)
            # linear warm-up over the first epoch, then linear decay to zero
            lr = lr0 * min((step + 1) / steps_per_epoch, (total - step) / (total - steps_per_epoch))
            for p in net.params:
                g = p.grad + decay * p.value if p.decay else p.grad
                p.vel = momentum * p.vel + g
                p.value -= lr * p.vel
            step += 1
        seen = steps_per_epoch * batch
        print(f"  epoch {epoch + 1:2d}  loss {loss_sum / seen:.4f}  train {100.0 * correct / seen:6.2f}%"
              f"  test {evaluate(net, xt, yt)}/{len(yt)}", flush=True)


# ---------------------------------------------------------------------------------------------
# Export


def f32(a):
    return np.ascontiguousarray(a, dtype=np.float32)


def export(net, name):
    inits, nodes = [], []

    def init(iname, arr):
        inits.append(numpy_helper.from_array(f32(arr), iname))
        return iname

    nodes.append(helper.make_node("Constant", [], ["/Constant_output_0"], name="/Constant",
                                  value=helper.make_tensor("", TensorProto.FLOAT, [], [16.0])))
    nodes.append(helper.make_node("Div", ["input", "/Constant_output_0"], ["/Div_output_0"], name="/Div"))
    cur = "/Div_output_0"
    counts = {}

    def fresh(kind):
        k = counts.get(kind, 0)
        counts[kind] = k + 1
        return kind if k == 0 else f"{kind}_{k}"

    def emit(layer, x):
        if isinstance(layer, (Conv3x3, DepthwiseConv3x3, PointwiseConv)):
            op, attrs = layer.onnx_node(x)
            scope = "/" + layer.name.replace(".", "/")
            out = f"{scope}/Conv_output_0"
            w = init(layer.w.name, layer.onnx_weight())
            nodes.append(helper.make_node(op, [x, w], [out], name=f"{scope}/Conv", **attrs))
            return out
        if isinstance(layer, BatchNorm):
            scope = "/" + layer.name.replace(".", "/")
            out = f"{scope}/BatchNormalization_output_0"
            ins = [x, init(layer.gamma.name, layer.gamma.value), init(layer.beta.name, layer.beta.value),
                   init(layer.name + ".running_mean", layer.running_mean),
                   init(layer.name + ".running_var", layer.running_var)]
            nodes.append(helper.make_node("BatchNormalization", ins, [out],
                                          name=f"{scope}/BatchNormalization", epsilon=EPS))
            return out
        if isinstance(layer, Relu):
            n = fresh("Relu")
            nodes.append(helper.make_node("Relu", [x], [f"/{n}_output_0"], name=f"/{n}"))
            return f"/{n}_output_0"
        if isinstance(layer, MaxPool2):
            n = fresh("MaxPool")
            nodes.append(helper.make_node("MaxPool", [x], [f"/{n}_output_0"], name=f"/{n}", ceil_mode=0,
                                          dilations=[1, 1], kernel_shape=[2, 2], pads=[0, 0, 0, 0],
                                          strides=[2, 2]))
            return f"/{n}_output_0"
        if isinstance(layer, Residual):
            y = x
            for inner in layer.block:
                y = emit(inner, y)
            n = fresh("Add")
            nodes.append(helper.make_node("Add", [y, x], [f"/{n}_output_0"], name=f"/{n}"))
            return emit(layer.relu, f"/{n}_output_0")
        if isinstance(layer, Dense):
            nodes.append(helper.make_node("Flatten", [x], ["/Flatten_output_0"], name="/Flatten", axis=1))
            w = init(layer.w.name, layer.onnx_weight())
            b = init(layer.b.name, layer.b.value)
            nodes.append(helper.make_node("Gemm", ["/Flatten_output_0", w, b], ["logits"],
                                          name=f"/{layer.name}/Gemm", alpha=1.0, beta=1.0, transB=1))
            return "logits"
        raise TypeError(layer)

    for layer in net.layers:
        cur = emit(layer, cur)
    assert cur == "logits"
    graph = helper.make_graph(
        nodes, "main_graph",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8,
                              producer_name="scripts/train_digits.py", producer_version="1")
    return model


# ---------------------------------------------------------------------------------------------
# A numpy interpreter of the exported graph (float64), independent of the training layers


def run_graph(model, x):
    g = model.graph
    env = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in g.initializer}
    env[g.input[0].name] = x.astype(np.float64)
    for node in g.node:
        a = {at.name: helper.get_attribute_value(at) for at in node.attribute}
        ins = [env[i] for i in node.input if i]
        if node.op_type == "Constant":
            out = numpy_helper.to_array(a["value"]).astype(np.float64)
        elif node.op_type == "Div":
            out = ins[0] / ins[1]
        elif node.op_type == "Conv":
            out = conv_nchw(ins[0], ins[1], ins[2] if len(ins) > 2 else None, list(a["pads"]), a.get("group", 1))
        elif node.op_type == "BatchNormalization":
            x0, s, b, m, v = ins
            r = lambda t: t[None, :, None, None]
            out = (x0 - r(m)) / np.sqrt(r(v) + a.get("epsilon", 1e-5)) * r(s) + r(b)
        elif node.op_type == "Relu":
            out = np.maximum(ins[0], 0.0)
        elif node.op_type == "Add":
            out = ins[0] + ins[1]
        elif node.op_type == "MaxPool":
            n, c, h, w = ins[0].shape
            out = ins[0].reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))
        elif node.op_type == "Flatten":
            out = ins[0].reshape(ins[0].shape[0], -1)
        elif node.op_type == "Gemm":
            out = mm(ins[0], ins[1].T) + ins[2]
        else:
            raise NotImplementedError(node.op_type)
        env[node.output[0]] = out
    return env[g.output[0].name]


def conv_nchw(x, w, b, pads, group):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    oh, ow = xp.shape[2] - kh + 1, xp.shape[3] - kw + 1
    og = o // group
    outs = []
    for gi in range(group):
        xs = xp[:, gi * cg : (gi + 1) * cg]
        cols = np.stack([xs[:, :, i : i + oh, j : j + ow] for i in range(kh) for j in range(kw)], axis=2)
        cols = cols.transpose(0, 3, 4, 1, 2).reshape(n * oh * ow, cg * kh * kw)  # (c, i, j) order
        wg = w[gi * og : (gi + 1) * og].reshape(og, cg * kh * kw)
        outs.append(mm(cols, wg.T).reshape(n, oh, ow, og))
    out = np.concatenate(outs, axis=3).transpose(0, 3, 1, 2)
    if b is not None:
        out = out + b[None, :, None, None]
    return out


def check_and_run(path, net, xt, yt):
    with open(path) as f:
        model = onnx.parser.parse_model(f.read())
    onnx.checker.check_model(model, full_check=True)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    raw = xt.transpose(0, 3, 1, 2).astype(np.float32)  # NCHW raw pixels, shape (n, 1, 8, 8)
    ort_logits = np.concatenate([sess.run(["logits"], {"input": raw[i : i + 1]})[0] for i in range(len(raw))])
    np_logits = run_graph(model, raw)
    ort_pred, np_pred = ort_logits.argmax(axis=1), np_logits.argmax(axis=1)
    n = len(yt)
    train_code = evaluate(net, xt, yt)
    ort_ok, np_ok = int((ort_pred == yt).sum()), int((np_pred == yt).sum())
    print(f"  numpy, training code (float64 weights):  top-1 {train_code}/{n} = {100.0 * train_code / n:.2f}%")
    print(f"  numpy, exported graph (float64 compute): top-1 {np_ok}/{n} = {100.0 * np_ok / n:.2f}%")
    print(f"  onnxruntime {ort.__version__} (float32):        top-1 {ort_ok}/{n} = {100.0 * ort_ok / n:.2f}%")
    print(f"  numpy vs onnxruntime: {int((ort_pred != np_pred).sum())} predictions differ, "
          f"max |logit difference| {float(np.abs(ort_logits - np_logits).max()):.2e}")
    return ort_ok, np_ok


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", default=os.path.join(root, "examples", "models"))
    ap.add_argument("--epochs", type=int, default=30)
    args = ap.parse_args()

    x, y = load(os.path.join(root, "examples", "data", "digits_train.csv"))
    xt, yt = load(os.path.join(root, "examples", "data", "digits_test.csv"))
    print(f"data: {len(x)} training, {len(xt)} test samples; numpy {np.__version__}, onnx {onnx.__version__}")

    failed = False
    for name, make, seed in [("digits_ds", make_ds, 1), ("digits_res", make_res, 2)]:
        print(f"{name}: training {args.epochs} epochs (seed {seed})", flush=True)
        t0 = time.perf_counter()
        net = make(np.random.default_rng(seed))
        train(net, x, y, xt, yt, args.epochs, seed + 100)
        t1 = time.perf_counter()
        print(f"  trained in {t1 - t0:.1f} s")
        path = os.path.join(args.out_dir, f"{name}.onnx.txt")
        text = onnx.printer.to_text(export(net, name))
        with open(path, "w") as f:
            f.write(text if text.endswith("\n") else text + "\n")
        print(f"  wrote {os.path.relpath(path, root)} ({os.path.getsize(path)} bytes)")
        ort_ok, np_ok = check_and_run(path, net, xt, yt)
        if ort_ok != np_ok or ort_ok < 0.95 * len(yt):
            failed = True
    if failed:
        print("error: an accuracy is below 95% or numpy and onnxruntime disagree", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
