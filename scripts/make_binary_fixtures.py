"""Writes the binary .onnx fixtures of ir/tests/binary/ from the example texts, the way exporters
store weights (raw_data), with onnx 1.23. Run: .venv/bin/python scripts/make_binary_fixtures.py"""
import onnx
import onnx.parser
from onnx import numpy_helper

for name in ["digits_cnn", "squeezenet1_1"]:
    m = onnx.parser.parse_model(open(f"examples/models/{name}.onnx.txt").read())
    for t in m.graph.initializer:
        t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t), t.name))
    onnx.save(m, f"ir/tests/binary/{name}.onnx")
