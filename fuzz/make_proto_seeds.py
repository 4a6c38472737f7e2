"""Writes small binary ONNX seeds for the read_proto fuzz target into fuzz/seeds/read_proto/,
hand-encoding the protobuf (no onnx package needed). Run: python3 fuzz/make_proto_seeds.py"""
import os
import struct


def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field, wire):
    return varint(field << 3 | wire)


def vi(field, n):  # varint field
    return key(field, 0) + varint(n)


def ld(field, payload):  # length-delimited field
    if isinstance(payload, str):
        payload = payload.encode()
    return key(field, 2) + varint(len(payload)) + payload


def f32(field, x):
    return key(field, 5) + struct.pack("<f", x)


def packed_floats(field, xs):
    return ld(field, b"".join(struct.pack("<f", x) for x in xs))


def packed_ints(field, xs):
    return ld(field, b"".join(varint(x) for x in xs))


FLOAT, INT64, INT8 = 1, 7, 3


def tensor_type(elem, dims):
    shape = b"".join(ld(1, vi(1, d) if isinstance(d, int) else ld(2, d)) for d in dims)
    return ld(1, vi(1, elem) + ld(2, shape))  # TypeProto.tensor_type


def value_info(name, elem, dims):
    return ld(1, name) + ld(2, tensor_type(elem, dims))


def node(op, inputs, outputs, name="", attrs=(), domain=""):
    b = b"".join(ld(1, i) for i in inputs) + b"".join(ld(2, o) for o in outputs)
    if name:
        b += ld(3, name)
    b += ld(4, op) + b"".join(ld(5, a) for a in attrs)
    if domain:
        b += ld(7, domain)
    return b


def attr_int(name, i):
    return ld(1, name) + vi(20, 2) + vi(3, i)


def attr_ints(name, xs):
    return ld(1, name) + vi(20, 7) + packed_ints(8, xs)


def attr_float(name, x):
    return ld(1, name) + vi(20, 1) + f32(2, x)


def attr_string(name, s):
    return ld(1, name) + vi(20, 3) + ld(4, s)


def tensor_floats(name, dims, xs, raw=False):
    b = b"".join(vi(1, d) for d in dims) + vi(2, FLOAT)
    if raw:
        b += ld(9, b"".join(struct.pack("<f", x) for x in xs))
    else:
        b += packed_floats(4, xs)
    return b + ld(8, name)


def tensor_int64(name, dims, xs):
    return b"".join(vi(1, d) for d in dims) + vi(2, INT64) + packed_ints(7, xs) + ld(8, name)


def graph(name, nodes, inputs, outputs, inits=(), value_infos=()):
    return (
        b"".join(ld(1, n) for n in nodes)
        + ld(2, name)
        + b"".join(ld(5, t) for t in inits)
        + b"".join(ld(11, v) for v in inputs)
        + b"".join(ld(12, v) for v in outputs)
        + b"".join(ld(13, v) for v in value_infos)
    )


def model(g, opset=17, functions=(), extra=b""):
    return (
        vi(1, 8)
        + ld(2, "etch-fuzz")
        + ld(7, g)
        + ld(8, ld(1, "") + vi(2, opset))
        + extra
        + b"".join(ld(25, f) for f in functions)
    )


seeds = {}
seeds["relu"] = model(
    graph("g", [node("Relu", ["x"], ["y"])], [value_info("x", FLOAT, [1, 4])], [value_info("y", FLOAT, [1, 4])])
)
seeds["gemm_raw"] = model(
    graph(
        "g",
        [node("Gemm", ["x", "w", "b"], ["y"], "fc", [attr_int("transB", 1), attr_float("alpha", 1.0)])],
        [value_info("x", FLOAT, ["N", 3])],
        [value_info("y", FLOAT, ["N", 2])],
        [tensor_floats("w", [2, 3], [0.5, -1, 2, 0, 1, -0.25], raw=True), tensor_floats("b", [2], [0.1, -0.1])],
    )
)
seeds["conv_pool"] = model(
    graph(
        "g",
        [
            node("Conv", ["x", "w"], ["c"], "conv", [attr_ints("kernel_shape", [3, 3]), attr_ints("pads", [1, 1, 1, 1]), attr_ints("strides", [1, 1])]),
            node("MaxPool", ["c"], ["p"], "", [attr_ints("kernel_shape", [2, 2]), attr_ints("strides", [2, 2])]),
            node("Reshape", ["p", "shape"], ["y"]),
        ],
        [value_info("x", FLOAT, [1, 1, 4, 4])],
        [value_info("y", FLOAT, [1, 8])],
        [tensor_floats("w", [2, 1, 3, 3], [0.1 * i for i in range(18)]), tensor_int64("shape", [2], [1, -1])],
        [value_info("c", FLOAT, [1, 2, 4, 4])],
    )
)
seeds["qdq"] = model(
    graph(
        "g",
        [
            node("QuantizeLinear", ["x", "s", "z"], ["q"], "", [attr_int("axis", 1)]),
            node("DequantizeLinear", ["q", "s", "z"], ["y"]),
        ],
        [value_info("x", FLOAT, [1, 2])],
        [value_info("y", FLOAT, [1, 2])],
        [tensor_floats("s", [], [0.5]), b"" + vi(2, INT8) + ld(9, b"\x00") + ld(8, "z")],
    )
)
seeds["function"] = model(
    graph("g", [node("MyRelu", ["x"], ["y"], domain="local")], [value_info("x", FLOAT, [2])], [value_info("y", FLOAT, [2])]),
    functions=[
        ld(1, "MyRelu") + ld(10, "local") + ld(4, "a") + ld(5, "b") + ld(7, node("Relu", ["a"], ["b"])) + ld(9, ld(1, "") + vi(2, 17))
    ],
    extra=ld(8, ld(1, "local") + vi(2, 1)) + ld(14, ld(1, "k") + ld(2, "v")),
)
seeds["if_subgraph"] = model(
    graph(
        "g",
        [
            node(
                "If",
                ["c"],
                ["y"],
                "",
                [
                    ld(1, "then_branch") + vi(20, 5) + ld(6, graph("t", [node("Identity", ["x"], ["y1"])], [], [value_info("y1", FLOAT, [2])])),
                    ld(1, "else_branch") + vi(20, 5) + ld(6, graph("e", [node("Neg", ["x"], ["y2"])], [], [value_info("y2", FLOAT, [2])])),
                ],
            )
        ],
        [value_info("c", 9, []), value_info("x", FLOAT, [2])],
        [value_info("y", FLOAT, [2])],
    )
)
seeds["attr_string"] = model(
    graph(
        "g",
        [node("Pad", ["x", "p"], ["y"], "pad", [attr_string("mode", "reflect")])],
        [value_info("x", FLOAT, [1, 3])],
        [value_info("y", FLOAT, [1, 5])],
        [tensor_int64("p", [4], [0, 1, 0, 1])],
    )
)

out = os.path.join(os.path.dirname(__file__), "seeds", "read_proto")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name + ".onnx"), "wb") as f:
        f.write(data)
