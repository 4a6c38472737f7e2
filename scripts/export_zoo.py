#!/usr/bin/env python3
"""Exports tiny PyTorch models with both of PyTorch's ONNX exporters, for etch's importer and executor.

Usage: export_zoo.py [--out-dir DIR] [--only SUBSTRING]
       (scripts/export_zoo.sh runs it with the pinned virtualenv .venv-qat/ and one thread)

Writes, into examples/models/exported/ unless --out-dir says otherwise, each model twice as binary
ONNX:

  NAME_classic.onnx   torch.onnx.export(..., dynamo=False, opset_version=17): the TorchScript exporter
  NAME_dynamo.onnx    torch.onnx.export(..., dynamo=True, opset_version=20): the torch.export (FX) one,
                      with its weights embedded in the file (external_data=False)

for these NAMEs (torchvision's own classes where they exist, with tiny arguments):

  convnext      torchvision ConvNeXt: block_setting [CNBlockConfig(8, 16, 1), CNBlockConfig(16, None, 1)],
                10 classes; input 1x3x32x32
  vit           torchvision VisionTransformer: image 32, patch 8, 1 layer, 2 heads, hidden 16, MLP 32,
                10 classes; input 1x3x32x32
  swin          torchvision SwinTransformer (v1): patch 4, embed 8, depths [1, 2], heads [1, 2], window
                2, 10 classes; input 1x3x32x32. The second stage's second block shifts its windows,
                so the graph builds the shifted-window attention mask (the classic export of that
                one block is about 1,000 nodes: the file is near 300 KB)
  swin_v2       SwinTransformer with SwinTransformerBlockV2 and PatchMergingV2 (log-spaced continuous
                position bias MLP, cosine attention with a clamped, exponentiated logit scale),
                depths [1, 1] (no shifted block), otherwise as swin
  transformer   nn.TransformerEncoder of 2 nn.TransformerEncoderLayer (d_model 16, 2 heads, feed-forward
                32, GELU, batch_first) and a Linear head to 4; input 1x8x16
  unet          a U-Net-like encoder-decoder: Conv+BN+ReLU blocks, 3 MaxPool downs, one up with
                nn.Upsample(nearest), one with nn.Upsample(bilinear, align_corners=False), one with
                ConvTranspose2d(k=2, s=2), torch.cat skips, a 1x1 head to 2 classes; input 1x3x32x32
  yolo          a YOLO-like detector: Conv+BN+SiLU blocks (stride-2 downs, a C2f-style split/concat
                block), an SPPF (three chained MaxPool2d(5, 1, 2), concat), an upsample(nearest)+concat
                neck and a 1x1 head conv (3 anchors x (5 + 4 classes)); input 1x3x32x32

All weights are random but fixed (torch.manual_seed per model), the models are in eval mode (BatchNorm
uses its running statistics, which are randomized too so it is no identity), batch 1, static shapes,
float32. Parameters that torchvision initializes to a constant (LayerNorm's ones and zeros, ViT's zero
head and class token, ConvNeXt's 1e-6 layer scale) are replaced by random values, so no part of a
model is an identity or a constant zero. Each file is checked with onnx.checker and run in
onnxruntime against PyTorch's own output. Deterministic: the same files on every run on a given
machine (with the locked package versions).

Per file it prints the exporter, the opset, the file size, onnxruntime's largest difference from
PyTorch, and the op types used (sorted, with counts).
"""

import argparse
import collections
import io
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
import torchvision
from torchvision.models.convnext import CNBlockConfig
from torchvision.models.swin_transformer import PatchMergingV2, SwinTransformerBlockV2

REPO = Path(__file__).resolve().parent.parent
SEED = 2026
CLASSIC_OPSET = 17
DYNAMO_OPSET = 20

# ---------------------------------------------------------------- the models


def conv_bn(cin, cout, k=3, s=1, act=nn.ReLU):
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), act())


class UNet(nn.Module):
    """Three levels down (MaxPool), three up: nearest Upsample, bilinear Upsample, ConvTranspose2d."""

    def __init__(self, c=4, classes=2):
        super().__init__()
        self.enc1 = nn.Sequential(conv_bn(3, c), conv_bn(c, c))  # 32x32
        self.enc2 = conv_bn(c, 2 * c)  # 16x16
        self.enc3 = conv_bn(2 * c, 2 * c)  # 8x8
        self.mid = conv_bn(2 * c, 4 * c)  # 4x4
        self.pool = nn.MaxPool2d(2)
        self.up3 = nn.Upsample(scale_factor=2, mode="nearest")
        self.dec3 = conv_bn(4 * c + 2 * c, 2 * c)
        self.up2 = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.dec2 = conv_bn(2 * c + 2 * c, 2 * c)
        self.up1 = nn.ConvTranspose2d(2 * c, c, kernel_size=2, stride=2)
        self.dec1 = conv_bn(c + c, c)
        self.head = nn.Conv2d(c, classes, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        e3 = self.enc3(self.pool(e2))
        m = self.mid(self.pool(e3))
        d3 = self.dec3(torch.cat([self.up3(m), e3], dim=1))
        d2 = self.dec2(torch.cat([self.up2(d3), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        return self.head(d1)


class C2f(nn.Module):
    """YOLOv8's C2f, tiny: 1x1 conv, split in two, one bottleneck (with residual), concat, 1x1 conv."""

    def __init__(self, cin, cout):
        super().__init__()
        self.h = cout // 2
        self.cv1 = conv_bn(cin, 2 * self.h, 1, act=nn.SiLU)
        self.m = nn.Sequential(conv_bn(self.h, self.h, act=nn.SiLU), conv_bn(self.h, self.h, act=nn.SiLU))
        self.cv2 = conv_bn(3 * self.h, cout, 1, act=nn.SiLU)

    def forward(self, x):
        a, b = self.cv1(x).split(self.h, dim=1)
        c = b + self.m(b)
        return self.cv2(torch.cat([a, b, c], dim=1))


class SPPF(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        h = cin // 2
        self.cv1 = conv_bn(cin, h, 1, act=nn.SiLU)
        self.pool = nn.MaxPool2d(5, 1, 2)
        self.cv2 = conv_bn(4 * h, cout, 1, act=nn.SiLU)

    def forward(self, x):
        x = self.cv1(x)
        y1 = self.pool(x)
        y2 = self.pool(y1)
        y3 = self.pool(y2)
        return self.cv2(torch.cat([x, y1, y2, y3], dim=1))


class Yolo(nn.Module):
    """Backbone to stride 8 (4x4 at 32x32), SPPF, an upsample+concat neck back to stride 4, 1x1 head."""

    def __init__(self, anchors=3, classes=4):
        super().__init__()
        self.stem = conv_bn(3, 8, 3, 2, act=nn.SiLU)  # 16x16
        self.down1 = conv_bn(8, 16, 3, 2, act=nn.SiLU)  # 8x8
        self.c2f1 = C2f(16, 16)
        self.down2 = conv_bn(16, 16, 3, 2, act=nn.SiLU)  # 4x4
        self.sppf = SPPF(16, 16)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.neck = C2f(32, 16)
        self.head = nn.Conv2d(16, anchors * (5 + classes), 1)

    def forward(self, x):
        p3 = self.c2f1(self.down1(self.stem(x)))
        p4 = self.sppf(self.down2(p3))
        return self.head(self.neck(torch.cat([self.up(p4), p3], dim=1)))


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            d_model=16, nhead=2, dim_feedforward=32, dropout=0.0, activation="gelu", batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        return self.head(self.encoder(x))


def swin(v2):
    # torchvision shifts the windows of every second block of a stage, so v1's second stage has two
    # blocks: its second one (on 4x4 patches, window 2, shift 1) builds the shifted-window attention
    # mask (slice assignments, ScatterND/Where in the graph). v2 keeps one block per stage (no shift):
    # the classic export of each shifted block adds about 1,000 mostly shape-computing nodes, 190 KB.
    extra = dict(block=SwinTransformerBlockV2, downsample_layer=PatchMergingV2) if v2 else {}
    return torchvision.models.SwinTransformer(
        patch_size=[4, 4], embed_dim=8, depths=[1, 1] if v2 else [1, 2], num_heads=[1, 2], window_size=[2, 2],
        stochastic_depth_prob=0.0, num_classes=10, **extra,
    )


MODELS = {
    "convnext": (
        lambda: torchvision.models.ConvNeXt(
            block_setting=[CNBlockConfig(8, 16, 1), CNBlockConfig(16, None, 1)], stochastic_depth_prob=0.0,
            num_classes=10,
        ),
        [1, 3, 32, 32],
    ),
    "vit": (
        lambda: torchvision.models.VisionTransformer(
            image_size=32, patch_size=8, num_layers=1, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=10
        ),
        [1, 3, 32, 32],
    ),
    "swin": (lambda: swin(False), [1, 3, 32, 32]),
    "swin_v2": (lambda: swin(True), [1, 3, 32, 32]),
    "transformer": (Encoder, [1, 8, 16]),
    "unet": (UNet, [1, 3, 32, 32]),
    "yolo": (Yolo, [1, 3, 32, 32]),
}


def randomize(model, gen):
    """Replaces constant-initialized parameters and BatchNorm statistics by random values."""
    with torch.no_grad():
        for p in model.parameters():
            flat = p.reshape(-1)
            if flat.numel() > 0 and bool((flat == flat[0]).all()):
                base = 1.0 if abs(float(flat[0]) - 1.0) < 1e-3 else 0.0  # LayerNorm/BN gains stay near 1
                p.copy_(base + 0.3 * torch.randn(p.shape, generator=gen))
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))


def build(name):
    make, shape = MODELS[name]
    torch.manual_seed(SEED)
    model = make()
    randomize(model, torch.Generator().manual_seed(SEED + 1))
    model.eval()
    x = torch.randn(shape, generator=torch.Generator().manual_seed(SEED + 2))
    return model, x


# ---------------------------------------------------------------- export


def export_classic(model, x, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (x,), str(path), dynamo=False, opset_version=CLASSIC_OPSET,
            input_names=["input"], output_names=["output"], do_constant_folding=True,
        )


def export_dynamo(model, x, path):
    # quiet: the dynamo exporter prints its progress on stdout
    with warnings.catch_warnings(), open(os.devnull, "w") as null:
        warnings.simplefilter("ignore")
        saved = sys.stdout
        sys.stdout = null
        try:
            program = torch.onnx.export(
                model, (x,), dynamo=True, opset_version=DYNAMO_OPSET,
                input_names=["input"], output_names=["output"], external_data=False, verbose=False,
            )
        finally:
            sys.stdout = saved
    proto = program.model_proto
    for n in proto.graph.node:  # PyTorch's stack traces (absolute paths of this machine) and FX names
        del n.metadata_props[:]
    buf = io.BytesIO()
    onnx.save_model(proto, buf)  # the whole model in one file, weights included
    path.write_bytes(buf.getvalue())


def ort_output(path, x):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]


def describe(path):
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        raise RuntimeError(f"{path} refers to external data")
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    ops = collections.Counter(
        (n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}") for n in model.graph.node
    )
    if model.functions:
        ops.update(f"function:{f.name}" for f in model.functions)
    return model, opset, ops


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", type=Path, default=REPO / "examples/models/exported")
    ap.add_argument("--only", help="export only the models whose name contains this")
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, onnx {onnx.__version__}, "
          f"onnxruntime {ort.__version__}")
    failed = 0
    for name in MODELS:
        if args.only and args.only not in name:
            continue
        for exporter, fn in (("classic", export_classic), ("dynamo", export_dynamo)):
            model, x = build(name)
            with torch.no_grad():
                want = model(x).numpy()
            path = args.out_dir / f"{name}_{exporter}.onnx"
            try:
                fn(model, x, path)
                _, opset, ops = describe(path)
                got = ort_output(path, x)
                err = float(np.abs(got - want).max())
            except Exception as e:  # report and go on with the other models
                failed += 1
                msg = str(e).strip().splitlines()
                print(f"{path.name}: FAILED: {type(e).__name__}: {msg[0] if msg else ''}")
                continue
            size = path.stat().st_size
            print(f"{path.name}: exporter {exporter}, opset {opset}, {size:,} bytes, input {list(x.shape)}, "
                  f"output {list(want.shape)}, |ort - torch| max {err:.1e}")
            print("    " + ", ".join(f"{op} x{k}" for op, k in sorted(ops.items())))
            sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
