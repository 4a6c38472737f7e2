# SCALE-Sim topology of a model's convolutions, from ONNX text: padding folded into the ifmap sizes
# (SCALE-Sim has none), one stride for both axes, ungrouped convolutions only.
# Usage (Python with onnx): python scripts/scalesim_topology.py MODEL.onnx.txt > TOPOLOGY.csv
import sys, onnx, onnx.parser, onnx.shape_inference
src = open(sys.argv[1]).read()
m = onnx.parser.parse_model(src)
m = onnx.shape_inference.infer_shapes(m)
shapes = {}
for v in list(m.graph.input) + list(m.graph.value_info) + list(m.graph.output):
    shapes[v.name] = [d.dim_value for d in v.type.tensor_type.shape.dim]
def short(name):
    parts = name.strip('/').split('/')[:-1]
    keep = [p for i, p in enumerate(parts) if not (i + 1 < len(parts) and parts[i + 1].startswith(p))]
    return '.'.join(keep)
print("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,")
for n in m.graph.node:
    if n.op_type != "Conv": continue
    a = {x.name: onnx.helper.get_attribute_value(x) for x in n.attribute}
    x = shapes[n.input[0]]; w = shapes[n.input[1]]
    pads = a.get("pads", [0,0,0,0]); s = a.get("strides", [1,1]); g = a.get("group", 1)
    assert g == 1 and s[0] == s[1] and a.get("dilations", [1,1]) == [1,1]
    print("%s, %d, %d, %d, %d, %d, %d, %d," % (short(n.name), x[2]+pads[0]+pads[2], x[3]+pads[1]+pads[3], w[2], w[3], w[1], w[0], s[0]))
