#!/usr/bin/env python3
"""Checks etch's CPU executor on low-bit models: QONNX (Quant, BipolarQuant, Trunc) against qonnx's own executor, QCDQ against onnxruntime.

Usage: qonnx_check.py ETCH_BINARY

The models are built here with onnx.helper from fixed seeds, so they are held out from etch's own
tests; each is saved as binary ONNX and run by

  etch   `etch run` (the CPU executor);
  qonnx  `qonnx.core.onnx_exec.execute_onnx` after qonnx's InferShapes: its numpy implementation of
         the QONNX ops, and onnxruntime for the standard ones between them.

Required: the outputs are equal: the same float32 bit patterns, except that 0 and −0 count as
equal (qonnx's float path writes −0 where etch's integer layers give a code of 0) and NaN equals NaN.

The cases:
  quant-MODE          one model per rounding mode: a Quant of every (bit width 1, 2, 3, 4, 5, 8,
                      16) × signed × narrow, on inputs that sit on rounding ties, inside and outside
                      the range, and at ±0, concatenated into one output;
  quant-scales        per-channel and per-tensor scales that are not powers of two, zero points
                      that are whole and not whole, broadcast along different axes;
  bipolar             BipolarQuant with a per-tensor and a per-channel scale, on ties at zero;
  trunc-v1, trunc-v2  Trunc of both versions (domain opset 1 and 2) after an average pool's sum,
                      every rounding mode, signed and unsigned, narrow;
  cnn-*               small networks on the 8x8 digits (64 rows of examples/data/digits_test.csv as
                      one batch): Quant weights (per-channel, 2 to 8 bits) and activations (2 to 8
                      bits, unsigned after ReLU), a depthwise convolution, a residual Add, a max
                      pool, a global average pool with a Trunc, a Gemm head;
  mlp-bipolar         a binary MLP in FINN's TFC style: BipolarQuant weights and activations, a
                      BatchNormalization before each sign;
  qat_*               the trained models shipped in examples/models/ (scripts/train_qat.sh), all
                      360 test images in one batch, and `etch eval`'s top-1 on the file as shipped
                      equal to the reference's;
  qcdq-*              ONNX's QCDQ form of low-bit networks (QuantizeLinear → Clip → DequantizeLinear,
                      the Clip narrowing int8/uint8 codes to 2 to 8 bits), against onnxruntime with
                      graph optimizations disabled (the reference semantics of QDQ).
  qop-*-pt, qop-*-pc  the QOperator form (QLinearConv, QGemm) that onnxruntime's quantize_static
                      writes for the float digits models (cnn, depthwise-separable, mlp), per tensor
                      and per channel, uint8 activations and int8 weights with reduce_range (7-bit
                      weights: onnxruntime's u8×s8 kernels saturate 16-bit sums without VNNI
                      otherwise, so its results would depend on the CPU), calibrated on 100
                      training rows: etch keeps these layers (their multipliers are not powers of
                      two) and runs them as onnxruntime does, float32 requantization included;
  qop-rounding        a QGemm with accumulators past 2^24, some one past a rounding tie: float32
                      rounds them onto the tie, so onnxruntime's requantization is one step from an
                      exact (fixed-point) one there, and etch's must be onnxruntime's;
  qop-po2             a QOperator network with power-of-two scales (QLinearConv, a max pool on codes,
                      a depthwise QLinearConv, QLinearAdd with equal scales, QLinearMatMul, QGemm):
                      etch rewrites every layer into its own integer layers, which must then give
                      onnxruntime's results too.

One line per case; the last line is `N passed, M failed`; exit status 1 if any failed.
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnx.parser
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.infer_shapes import InferShapes

REPO = Path(__file__).resolve().parent.parent
TEST = REPO / "examples/data/digits_test.csv"
Q = "qonnx.custom_op.general"
MODES = ["ROUND", "HALF_EVEN", "CEIL", "FLOOR", "UP", "DOWN", "HALF_UP", "HALF_DOWN"]


class Builder:
    """Collects nodes and initializers for one graph with input `x` and output `y`."""

    def __init__(self, name):
        self.name, self.nodes, self.inits, self.k = name, [], [], 0

    def const(self, value, dtype=np.float32):
        self.k += 1
        name = f"c{self.k}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def node(self, op, inputs, domain="", **attrs):
        self.k += 1
        out = f"t{self.k}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"n{self.k}", domain=domain, **attrs))
        return out

    def quant(self, x, scale, zero, bits, signed, narrow, mode="ROUND"):
        ins = [x, self.const(scale), self.const(zero), self.const(bits)]
        return self.node("Quant", ins, Q, signed=int(signed), narrow=int(narrow), rounding_mode=mode)

    def qcdq(self, x, scale, bits, signed, narrow=False, axis=1):
        """ONNX QCDQ: QuantizeLinear to int8/uint8 codes, a Clip to `bits` bits, DequantizeLinear."""
        dtype = np.int8 if signed else np.uint8
        lo = -(2 ** (bits - 1)) + int(narrow) if signed else 0
        hi = 2 ** (bits - 1) - 1 if signed else 2**bits - 1 - int(narrow)
        s, z = self.const(scale), self.const(np.zeros(np.shape(scale), dtype), dtype)
        q = self.node("QuantizeLinear", [x, s, z], axis=axis)
        if bits < 8 or narrow:
            q = self.node("Clip", [q, self.const(lo, dtype), self.const(hi, dtype)])
        return self.node("DequantizeLinear", [q, s, z], axis=axis)

    def bipolar(self, x, scale):
        return self.node("BipolarQuant", [x, self.const(scale)], Q)

    def model(self, x_shape, y, qonnx_opset=1):
        self.nodes.append(helper.make_node("Identity", [y], ["y"], name="out"))
        graph = helper.make_graph(
            self.nodes,
            self.name,
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
            self.inits,
        )
        return helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", 13)]
            + [helper.make_opsetid(Q, qonnx_opset) for _ in range(any(n.domain == Q for n in self.nodes))],
            ir_version=8,
        )


def tie_inputs(rng, shape, step):
    """Values on rounding ties (k/2 steps), between them, far outside any range, and ±0."""
    n = int(np.prod(shape))
    halves = rng.integers(-80000, 80000, n).astype(np.float32) / 2 * step
    noise = rng.normal(0, 20 * step, n).astype(np.float32)
    x = np.where(rng.random(n) < 0.5, halves, noise).astype(np.float32)
    x[:4] = [0.0, -0.0, 1e9, -1e9]
    return x.reshape(shape)


def quant_mode_case(mode, rng):
    b = Builder(f"quant_{mode}")
    outs = []
    for bits in (1, 2, 3, 4, 5, 8, 16):
        for signed in (0, 1):
            for narrow in (0, 1):
                outs.append(b.quant("x", 0.25, 0.0, bits, signed, narrow, mode))
    y = b.node("Concat", outs, axis=0)
    return b.model([1, 257], y), tie_inputs(rng, (1, 257), 0.25)


def quant_scales_case(rng):
    b = Builder("quant_scales")
    outs = [
        # per channel (axis 1), not powers of two, whole zero points per channel
        b.quant("x", rng.uniform(0.01, 0.3, (1, 4, 1, 1)), rng.integers(-3, 4, (1, 4, 1, 1)), 4, 1, 0),
        # per row of the last axis, unsigned, a zero point that is not whole
        b.quant("x", rng.uniform(0.05, 0.2, (1, 1, 1, 5)), 2.5, 6, 0, 0, "HALF_UP"),
        # per tensor, not a power of two, a negative whole zero point, narrow
        b.quant("x", 0.0371, -7.0, 8, 1, 1, "FLOOR"),
        # per channel along axis 2
        b.quant("x", rng.uniform(0.1, 1.0, (6, 1)), 0.0, 3, 0, 1, "CEIL"),
    ]
    y = b.node("Concat", outs, axis=0)
    return b.model([1, 4, 6, 5], y), tie_inputs(rng, (1, 4, 6, 5), 0.05)


def bipolar_case(rng):
    b = Builder("bipolar")
    outs = [b.bipolar("x", 1.0), b.bipolar("x", 0.75), b.bipolar("x", rng.uniform(0.1, 2, (1, 4, 1, 1)))]
    y = b.node("Concat", outs, axis=0)
    x = tie_inputs(rng, (1, 4, 3, 3), 1.0)
    x[0, 0, 0, :2] = [1e-30, -1e-30]
    return b.model([1, 4, 3, 3], y), x


def trunc_case(version, rng):
    b = Builder(f"trunc_v{version}")
    # an average pool's sum of 8-bit codes (scale 1/8): a 3x3 window, then the codes' scale again
    s = b.node("AveragePool", ["x"], kernel_shape=[3, 3])
    s = b.node("Mul", [s, b.const(9.0)])
    outs = []
    for mode in MODES:
        for signed, narrow in ((1, 0), (0, 0), (1, 1)):
            scale, zero = b.const(0.125), b.const(0.0)
            if version == 1:
                ins = [s, scale, zero, b.const(12.0), b.const(8.0)]
                outs.append(b.node("Trunc", ins, Q, rounding_mode=mode))
            else:
                ins = [s, scale, zero, b.const(12.0), b.const(2.0), b.const(4.0)]
                outs.append(b.node("Trunc", ins, Q, rounding_mode=mode, signed=signed, narrow=narrow))
            if version == 1:
                break
    y = b.node("Concat", outs, axis=0)
    codes = rng.integers(-128, 128, (1, 2, 9, 9)).astype(np.float32)
    return b.model([1, 2, 9, 9], y, qonnx_opset=version), codes / 8


def digits(n):
    """The first `n` test images (all with None), raw 0..16 pixels."""
    rows = np.loadtxt(TEST, delimiter=",", dtype=np.float32)[:n]
    return rows[:, 1:]


def labels():
    return np.loadtxt(TEST, delimiter=",", dtype=np.float32)[:, 0].astype(int)


def qweight(b, rng, shape, bits, per_channel=True, signed=True, narrow=True):
    """A float weight behind a Quant with power-of-two scales (per output channel or per tensor)."""
    w = rng.normal(0, 0.5, shape).astype(np.float32)
    if per_channel:
        scale = 2.0 ** rng.integers(-4, -1, (shape[0],) + (1,) * (len(shape) - 1))
    else:
        scale = 2.0 ** -3
    return b.quant(b.const(w), scale, 0.0, bits, signed, narrow)


def cnn_case(name, wbits, abits, rng):
    """Quant input (8-bit, 1/16), conv 3x3 → ReLU → Quant, depthwise 3x3 → ReLU → Quant, residual
    Add → Quant, max pool, conv 1x1 → ReLU → Quant, global average pool → Trunc, Gemm."""
    b = Builder(name)
    x = b.quant("x", 1.0, 0.0, 8, 0, 0)  # raw 0..16 pixels, whole
    x = b.node("Mul", [x, b.const(1 / 16)])
    c = 8
    h = b.node("Conv", [x, qweight(b, rng, (c, 1, 3, 3), 8), b.const(rng.integers(-8, 8, c) * 2.0 ** -7)], pads=[1, 1, 1, 1])
    h = b.node("Relu", [h])
    a = b.quant(h, 2.0 ** -3, 0.0, abits, 0, 0)
    d = b.node("Conv", [a, qweight(b, rng, (c, 1, 3, 3), wbits)], pads=[1, 1, 1, 1], group=c)
    d = b.node("Relu", [d])
    d = b.quant(d, 2.0 ** -3, 0.0, abits, 0, 0)
    r = b.node("Add", [a, d])
    r = b.quant(r, 2.0 ** -2, 0.0, abits + 1, 0, 0)
    p = b.node("MaxPool", [r], kernel_shape=[2, 2], strides=[2, 2])
    e = b.node("Conv", [p, qweight(b, rng, (16, c, 1, 1), wbits)])
    e = b.node("Relu", [e])
    e = b.quant(e, 2.0 ** -3, 0.0, abits, 0, 0)
    g = b.node("GlobalAveragePool", [e])
    g = b.node("Mul", [g, b.const(16.0)])  # the pool's sum, as Brevitas' TruncAvgPool2d writes it
    g = b.node("Trunc", [g, b.const(2.0 ** -3), b.const(0.0), b.const(abits + 4.0), b.const(abits)], Q, rounding_mode="FLOOR")
    f = b.node("Flatten", [g])
    y = b.node("Gemm", [f, qweight(b, rng, (10, 16), 8, per_channel=False)], transB=1)
    x_in = digits(64).reshape(64, 1, 8, 8)
    return b.model([64, 1, 8, 8], y), x_in


def qcdq_cnn_case(name, wbits, abits, rng):
    """The QCDQ form (onnxruntime's reference): conv 3x3 → ReLU → 4 or 8 bits, depthwise, max pool,
    Gemm head; per-channel power-of-two weight scales along axis 0."""
    b = Builder(name)

    def w(shape, bits):
        scale = 2.0 ** rng.integers(-4, -1, shape[0])
        return b.qcdq(b.const(rng.normal(0, 0.5, shape)), scale, bits, True, narrow=True, axis=0)

    x = b.node("Mul", ["x", b.const(1 / 16)])
    x = b.qcdq(x, 2.0 ** -4, 8, False)
    h = b.node("Relu", [b.node("Conv", [x, w((8, 1, 3, 3), 8)], pads=[1, 1, 1, 1])])
    h = b.qcdq(h, 2.0 ** -3, abits, False)
    d = b.node("Relu", [b.node("Conv", [h, w((8, 1, 3, 3), wbits)], pads=[1, 1, 1, 1], group=8)])
    d = b.qcdq(d, 2.0 ** -3, abits, False)
    p = b.node("Flatten", [b.node("MaxPool", [d], kernel_shape=[2, 2], strides=[2, 2])])
    y = b.node("Gemm", [p, w((10, 128), wbits)], transB=1)
    return b.model([64, 1, 8, 8], y), digits(64).reshape(64, 1, 8, 8)


def mlp_bipolar_case(rng):
    b = Builder("mlp_bipolar")
    x = b.node("Mul", ["x", b.const(1 / 16)])
    x = b.quant(x, 2.0 ** -7, 0.0, 8, 1, 0)
    for n_in, n_out in ((64, 128), (128, 64)):
        w = b.bipolar(b.const(rng.normal(0, 1, (n_in, n_out))), 1.0)
        x = b.node("MatMul", [x, w])
        bn = [b.const(rng.uniform(0.5, 2, n_out)), b.const(rng.normal(0, 1, n_out)), b.const(rng.normal(0, 4, n_out)), b.const(rng.uniform(10, 60, n_out))]
        x = b.node("Unsqueeze", [x, b.const([2, 3], np.int64)])
        x = b.node("BatchNormalization", [x] + bn)
        x = b.node("Flatten", [x])
        x = b.bipolar(x, 1.0)
    w = b.quant(b.const(rng.normal(0, 0.3, (64, 10))), 2.0 ** -5, 0.0, 8, 1, 1)
    y = b.node("MatMul", [x, w])
    return b.model([64, 64], y), digits(64)


SHIPPED = ["qat_w1a1_mlp", "qat_w2a2_cnn", "qat_w4a4_resdw", "qat_int8_qcdq_cnn", "qat_int4_qcdq_cnn"]


MS = "com.microsoft"


def qoperator_case(stem, per_channel):
    """onnxruntime's quantize_static in QOperator format on a float digits model."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    model = onnx.parser.parse_model((REPO / f"examples/models/{stem}.onnx.txt").read_text())
    inp = model.graph.input[0]
    shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    rows = np.loadtxt(REPO / "examples/data/digits_train.csv", delimiter=",", dtype=np.float32)[:100, 1:]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{inp.name: r.reshape(shape)} for r in rows])

        def get_next(self):
            return next(self.it, None)

    with tempfile.TemporaryDirectory() as t:
        src, dst = Path(t) / "float.onnx", Path(t) / "qop.onnx"
        onnx.save(model, src)
        quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QOperator, per_channel=per_channel,
                        reduce_range=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        q = onnx.load(dst)
    ops = {n.op_type for n in q.graph.node}
    assert {"QLinearConv", "QGemm"} & ops, ops
    return renamed_io(q, shape)


def qoperator_po2_case(rng):
    """QuantizeLinear → QLinearConv 3x3 → MaxPool → depthwise QLinearConv → QLinearAdd (equal scales)
    → Flatten → QLinearMatMul → QGemm → DequantizeLinear, every scale a power of two."""
    b = Builder("qop_po2")
    c = 8

    # 7-bit weights (what quantize_static's reduce_range gives): onnxruntime's AVX2 u8s8 kernels on
    # CPUs without VNNI sum pairs of uint8 x int8 products in int16 with saturation, so 8-bit
    # weights would make its results depend on the CPU; halving keeps the generator's draws
    def weight(shape, axis_len):
        w = b.const(rng.integers(-127, 128, shape) // 2, np.int8)
        s = b.const(2.0 ** rng.integers(-7, -4, axis_len))
        return w, s, b.const(np.zeros(axis_len, np.int8), np.int8)

    u8 = lambda: b.const(0, np.uint8)  # noqa: E731
    xs, hs, ms, ys = b.const(2.0**-3), b.const(2.0**-2), b.const(2.0**-1), b.const(2.0**-1)
    xq = b.node("QuantizeLinear", ["x", xs, u8()])
    w, s, z = weight((c, 1, 3, 3), c)
    h = b.node("QLinearConv", [xq, xs, u8(), w, s, z, hs, u8(), b.const(rng.integers(-64, 64, c), np.int32)], pads=[1, 1, 1, 1])
    p = b.node("MaxPool", [h], kernel_shape=[2, 2], strides=[2, 2])
    w, s, z = weight((c, 1, 3, 3), c)
    d = b.node("QLinearConv", [p, hs, u8(), w, s, z, hs, u8()], pads=[1, 1, 1, 1], group=c)
    r = b.node("QLinearAdd", [p, hs, u8(), d, hs, u8(), hs, u8()], domain=MS)
    f = b.node("Flatten", [r])
    w, s, z = weight((c * 16, 16), 16)
    m = b.node("QLinearMatMul", [f, hs, u8(), w, s, z, ms, u8()])
    w = b.const(rng.integers(-127, 128, (10, 16)) // 2, np.int8)
    g = b.node("QGemm", [m, ms, u8(), w, b.const(2.0**-6), b.const(0, np.int8), b.const(rng.integers(-99, 99, 10), np.int32), ys, b.const(64, np.uint8)], domain=MS, transB=1)
    y = b.node("DequantizeLinear", [g, ys, b.const(64, np.uint8)])
    model = b.model([64, 1, 8, 8], y)
    model.opset_import.append(helper.make_opsetid(MS, 1))
    # shape inference does not know onnxruntime's ops
    model.graph.output[0].CopyFrom(helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 10]))
    return model, digits(64).reshape(64, 1, 8, 8)


def qoperator_rounding_case(rng):
    """A QGemm whose accumulators lie in [2^24, 2^25), where float32 holds only even integers: the
    int32 bias puts some exactly one past a rounding tie of acc · 2^-17 (four rows of zero pixels,
    where the accumulator is the bias), so onnxruntime's float32 requantization rounds them to the
    tie and then to even, one step from exact rounding; 64 digits rows besides."""
    b = Builder("qop_rounding")
    n = 16
    ties = (128 + 7 * np.arange(n)) * 2**17 + 2**16
    bias = ties + np.array([1, -1, 0, 1] * (n // 4))
    xq = b.node("QuantizeLinear", ["x", b.const(1.0), b.const(0, np.uint8)])
    w = b.const(rng.integers(-127, 128, (n, 64)), np.int8)
    ys, yz = b.const(2.0**11), b.const(0, np.uint8)
    g = b.node("QGemm", [xq, b.const(1.0), b.const(0, np.uint8), w, b.const(2.0**-6), b.const(0, np.int8), b.const(bias, np.int32), ys, yz], domain=MS, transB=1)
    y = b.node("DequantizeLinear", [g, ys, yz])
    model = b.model([68, 64], y)
    model.opset_import.append(helper.make_opsetid(MS, 1))
    model.graph.output[0].CopyFrom(helper.make_tensor_value_info("y", TensorProto.FLOAT, [68, n]))
    return model, np.concatenate([np.zeros((4, 64), np.float32), digits(64)])


def renamed_io(model, shape):
    """The model on the whole test set, its input renamed `x` and its output `y`."""
    x = digits(None)
    x = x.reshape([len(x)] + shape[1:])
    inp, out = model.graph.input[0].name, model.graph.output[0].name
    model = rebatched(model, len(x))
    for n in model.graph.node:
        n.input[:] = ["x" if i == inp else i for i in n.input]
        n.output[:] = ["y" if o == out else o for o in n.output]
    model.graph.input[0].name, model.graph.output[0].name = "x", "y"
    return model, x


def rebatched(model, n):
    """The model with its input's and output's batch dimension set to `n` and the inferred shapes
    dropped (the shipped models take one image; both executors then run the whole test set once)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for v in list(m.graph.input) + list(m.graph.output):
        v.type.tensor_type.shape.dim[0].dim_value = n
    del m.graph.value_info[:]
    return m


def shipped_case(name):
    """A trained model of examples/models/ (scripts/train_qat.sh) on the whole test set."""
    model = onnx.load(REPO / f"examples/models/{name}.onnx")
    return renamed_io(model, [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim])


def cases():
    rng = np.random.default_rng(20261206)
    for mode in MODES:
        yield f"quant-{mode.lower()}", *quant_mode_case(mode, rng)
    yield "quant-scales", *quant_scales_case(rng)
    yield "bipolar", *bipolar_case(rng)
    yield "trunc-v1", *trunc_case(1, rng)
    yield "trunc-v2", *trunc_case(2, rng)
    for wbits, abits in ((2, 2), (4, 4), (3, 5), (8, 8)):
        yield f"cnn-w{wbits}a{abits}", *cnn_case(f"cnn_w{wbits}a{abits}", wbits, abits, rng)
    yield "mlp-bipolar", *mlp_bipolar_case(rng)
    for wbits, abits in ((4, 4), (8, 8), (2, 3)):
        yield f"qcdq-w{wbits}a{abits}", *qcdq_cnn_case(f"qcdq_w{wbits}a{abits}", wbits, abits, rng)
    for name in SHIPPED:
        yield name, *shipped_case(name)
    for stem in ("cnn", "ds", "mlp"):
        for per_channel in (False, True):
            yield f"qop-{stem}-{'pc' if per_channel else 'pt'}", *qoperator_case(f"digits_{stem}", per_channel)
    yield "qop-po2", *qoperator_po2_case(rng)
    yield "qop-rounding", *qoperator_rounding_case(rng)


def reference_run(model, x):
    """The reference's result (qonnx's executor where the model uses a QONNX domain, onnxruntime
    with graph optimizations disabled otherwise), and the model with its output's shape as qonnx's
    InferShapes gives it."""
    wrapped = ModelWrapper(model).transform(InferShapes())
    if any(o.domain == Q for o in model.opset_import):
        return execute_onnx(wrapped, {"x": x})["y"], wrapped.model, "qonnx"
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(wrapped.model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0], wrapped.model, "ort"


def check(etch, tmp, name, model, x):
    want, model, ref = reference_run(model, x)
    want = np.asarray(want, dtype=np.float32)
    onnx.checker.check_model(model)
    path, xin, yout = tmp / f"{name}.onnx", tmp / "x.npy", tmp / "y.npy"
    onnx.save(model, path)
    np.save(xin, x.astype(np.float32))
    run = subprocess.run([etch, "run", str(path), "--input", str(xin), "--output", str(yout)], capture_output=True, text=True)
    if run.returncode != 0:
        print(f"FAIL {name:14} etch run failed: {run.stderr.strip()}")
        return False
    got = np.load(yout)
    if got.shape != want.shape:
        print(f"FAIL {name:14} shapes differ: etch {got.shape}, qonnx {want.shape}")
        return False
    same = (got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(got) & np.isnan(want)) | (got == want)
    bits_same = got.view(np.uint32) == want.view(np.uint32)
    if not same.all():
        k = int(np.flatnonzero(~same.reshape(-1))[0])
        print(f"FAIL {name:14} {int((~same).sum())} of {got.size} outputs differ; first at flat index {k}: etch {got.reshape(-1)[k]!r}, {ref} {want.reshape(-1)[k]!r}")
        return False
    accuracy = ""
    if name in SHIPPED:
        # `etch eval` on the shipped file, as a user runs it, against the reference's argmax
        ev = subprocess.run([etch, "eval", str(REPO / f"examples/models/{name}.onnx"), "--data", str(TEST), "--json"], capture_output=True, text=True)
        if ev.returncode != 0:
            print(f"FAIL {name:14} etch eval failed: {ev.stderr.strip()}")
            return False
        right_etch = round(json.loads(ev.stdout)["top1"] * len(x))
        right_ref = int((np.argmax(want, axis=1) == labels()).sum())
        if right_etch != right_ref:
            print(f"FAIL {name:14} etch eval gets {right_etch} of {len(x)} right, {ref} {right_ref}")
            return False
        accuracy = f"; top-1 {right_etch}/{len(x)} in etch eval and {ref}"
    # the power-of-two QOperator network must have become etch's own integer layers
    if name == "qop-po2" and "5 QOperator layers to QDQ" not in run.stderr:
        print(f"FAIL {name:14} etch did not rewrite its 5 layers: {run.stderr.strip()}")
        return False
    distinct = len(np.unique(want))
    print(f"ok   {name:14} {got.size} outputs equal to {ref}'s ({int((~bits_same).sum())} differ only in the sign of zero; {distinct} distinct values){accuracy}")
    return True


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    etch = str(Path(sys.argv[1]).resolve())
    passed = failed = 0
    with tempfile.TemporaryDirectory() as t:
        for name, model, x in cases():
            if check(etch, Path(t), name, model, x):
                passed += 1
            else:
                failed += 1
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
