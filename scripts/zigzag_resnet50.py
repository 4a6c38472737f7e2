#!/usr/bin/env python3
"""Times the ZigZag design-space explorer (zigzag-dse, KULeuven-MICAS/zigzag) on ResNet-50 (224x224,
batch 1) on a 128x128 int8 weight-stationary systolic accelerator, for etch's benchmark to quote.

Usage: "$(scripts/zigzag_setup.sh)" scripts/zigzag_resnet50.py [--lpf-limit N]

Workload: examples/models/resnet50.onnx.txt (ONNX text, weights stripped to graph inputs), parsed
with onnx.parser; each weight input becomes an all-zero initializer of its declared shape (ZigZag
reads weight shapes from initializers, as in its own example models) and shapes are inferred.

Accelerator and mapping: ZigZag's own example `tpu_like` (inputs/hardware/tpu_like.yaml, a TPU-v1
style weight-stationary systolic array, 32x32, and inputs/mapping/tpu_like.yaml), read from the
installed package and scaled to 128x128: array sizes 32 -> 128, spatial unrolling K and C 32 -> 128
(G 32 -> 128 for Add/Pooling), and the shared SRAM's maximum bandwidth x4 (2048 -> 8192 bit/cycle)
to feed the 4x wider array edges; all else (2 MB SRAM, 64 bit/cycle DRAM, per-PE registers, unit
energies) unchanged. Precision is ZigZag's ONNX default: 8-bit weights and activations, 16-bit
partial sums. Mapping search: LOMA (ZigZag's default engine) with the lpf limit given (default 6,
the API's default), optimizing latency.

Only the get_hardware_performance_zigzag call is timed (time.perf_counter, time.process_time).
"""

import argparse
import copy
import logging
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import onnx
import yaml
import zigzag
from onnx import numpy_helper
from zigzag.api import get_hardware_performance_zigzag

REPO = Path(__file__).resolve().parent.parent
MODEL = REPO / "examples" / "models" / "resnet50.onnx.txt"
ARRAY = 128
BASE_ARRAY = 32


def load_workload() -> onnx.ModelProto:
    model = onnx.parser.parse_model(MODEL.read_text())
    graph = model.graph
    activations = [i for i in graph.input if i.name == "input"]
    weights = [i for i in graph.input if i.name != "input"]
    for w in weights:
        shape = [d.dim_value for d in w.type.tensor_type.shape.dim]
        graph.initializer.append(numpy_helper.from_array(np.zeros(shape, dtype=np.float32), w.name))
    del graph.input[:]
    graph.input.extend(activations)
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model)
    return model


def write_inputs(folder: Path) -> tuple[str, str]:
    pkg = Path(zigzag.__file__).parent / "inputs"
    scale = ARRAY // BASE_ARRAY

    hw = yaml.safe_load((pkg / "hardware" / "tpu_like.yaml").read_text())
    assert hw["operational_array"]["sizes"] == [BASE_ARRAY, BASE_ARRAY]
    hw["name"] = f"tpu_like_{ARRAY}x{ARRAY}"
    hw["operational_array"]["sizes"] = [ARRAY, ARRAY]
    for port in hw["memories"]["sram_2MB"]["ports"]:
        port["bandwidth_max"] *= scale

    mapping = []
    for entry in yaml.safe_load((pkg / "mapping" / "tpu_like.yaml").read_text()):
        if entry["name"] not in ("default", "Add", "Pooling"):
            continue  # the example's hand-written mapping for one named layer
        entry = copy.deepcopy(entry)
        for dim, unrolls in entry["spatial_mapping"].items():
            entry["spatial_mapping"][dim] = [
                f"{u.split(',')[0].strip()}, {ARRAY}" if u.split(",")[1].strip() == str(BASE_ARRAY) else u
                for u in unrolls
            ]
        mapping.append(entry)

    hw_path, map_path = folder / "accelerator.yaml", folder / "mapping.yaml"
    hw_path.write_text(yaml.safe_dump(hw, sort_keys=False))
    map_path.write_text(yaml.safe_dump(mapping, sort_keys=False))
    return str(hw_path), str(map_path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lpf-limit", type=int, default=6, help="LOMA loop-prime-factor limit (API default 6)")
    ap.add_argument("--keep", metavar="DIR", help="write ZigZag's inputs and outputs here instead of a temp dir")
    args = ap.parse_args()

    # ZigZag's API calls logging.basicConfig(INFO); configuring first keeps its per-layer log quiet
    logging.basicConfig(level=logging.WARNING)

    workload = load_workload()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        accelerator, mapping = write_inputs(folder)

        wall0, cpu0 = time.perf_counter(), time.process_time()
        energy, latency, _cmes = get_hardware_performance_zigzag(
            workload,
            accelerator,
            mapping,
            opt="latency",
            dump_folder=str(folder / "outputs"),
            lpf_limit=args.lpf_limit,
            loma_show_progress_bar=False,
        )
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0

    print(
        f"zigzag {version('zigzag-dse')}: resnet50 on {ARRAY}x{ARRAY} WS: {latency:.0f} cycles, "
        f"{energy:.4g} pJ, {wall:.1f} s wall, {cpu:.1f} CPU-s"
    )


if __name__ == "__main__":
    main()
