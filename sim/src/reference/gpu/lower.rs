//! Each op as GPU dispatches. Shapes and parameters come from the CPU executor's own resolution
//! (`cpu::resolve` and the kernels' geometry types), so both executors read an op the same way.

use std::borrow::Cow;

/// Why a QOperator layer that `import-quant` kept (its requantization is onnxruntime's float32,
/// not etch's fixed point) does not run on the GPU.
const QOPERATOR: &str = "a QOperator layer that import-quant kept (its requantization is not an exact power of two) computes as onnxruntime does, which only the CPU executor reproduces; run the model with --backend cpu";

use etch_ir::op::{Op, Reduction, Unary, WindowAxis};

use super::super::cpu::conv::{ConvGeom, TransposedGeom};
use super::super::cpu::elementwise::{
    batch_norm_dims, broadcast_shape, broadcast_strides, layer_norm_dims, layer_norm_params,
    reduced_shape, softmax_dims,
};
use super::super::cpu::layout::{
    self, concat_shape, gather_indices, gather_shape, padded_shape, PadMode,
};
use super::super::cpu::linear::{GemmGeom, MatMulGeom};
use super::super::cpu::pool::{global_shape, PoolGeom, PoolKind};
use super::super::cpu::resize;
use super::super::cpu::{exec, resolve, Step};
use super::super::value::strides;
use super::super::Value;
use super::device::Kernel;
use super::record::{DevTensor, Failure, Recorder, Val};

/// The most axes the strided kernels (copy, broadcast, reduce) take.
const MAX_RANK: usize = 8;

/// A Conv with fewer output channels per group than this (depthwise layers) runs as a direct
/// convolution, one output per invocation.
const DIRECT_CONV_BELOW: usize = 4;

/// A matrix product with fewer rows than this (a fully connected layer at small batch, a narrow
/// convolution group) runs on the skinny kernel: the tiled one would waste most of its 64-row tiles.
const SKINNY_BELOW: usize = 16;

type Out<'p> = Result<Vec<Val<'p>>, Failure>;

fn u(v: usize) -> u32 {
    v as u32
}

fn i(v: i64) -> u32 {
    v as i32 as u32
}

fn f(v: f32) -> u32 {
    v.to_bits()
}

fn check_rank(rank: usize) -> Result<(), String> {
    if rank > MAX_RANK {
        return Err(format!(
            "rank {rank} is above the {MAX_RANK} axes the GPU kernels take"
        ));
    }
    Ok(())
}

/// A window axis as the conv and pool kernels read it: kernel, stride, dilation, pad begin.
fn window_words(a: &WindowAxis) -> [u32; 4] {
    [i(a.kernel), i(a.stride), i(a.dilation), i(a.pad_begin)]
}

/// A matrix product: `out[z] = alpha·A[z]·B[z] + beta·C[z]` (see gemm.wgsl).
#[derive(Clone)]
struct MatMul {
    m: usize,
    n: usize,
    k: usize,
    a: (usize, usize),
    b: (usize, usize),
    o: (usize, usize),
    c: Option<(usize, usize)>,
    alpha: f32,
    beta: f32,
    /// For a convolution read through its receptive fields: gemm.wgsl's words 16–22, and per
    /// receptive-field row its offsets into the input.
    conv: Option<([u32; 7], Vec<[u32; 3]>)>,
    /// Per batch: offsets of A, B, out and C.
    table: Vec<[usize; 4]>,
}

/// One axis of a strided copy (see copy.wgsl).
struct CopyAxis {
    extent: usize,
    dst_stride: usize,
    src_stride: usize,
    start: i64,
    step: i64,
    src_extent: usize,
}

impl CopyAxis {
    /// Axis `k` of a copy into a fresh tensor of `out` from `src`, reading from `start` by `step`.
    fn plain(out: &[usize], src: &[usize], k: usize, start: i64, step: i64) -> CopyAxis {
        CopyAxis {
            extent: out[k],
            dst_stride: strides(out)[k],
            src_stride: strides(src)[k],
            start,
            step,
            src_extent: src[k],
        }
    }
}

impl<'g> Recorder<'g> {
    /// Records one step; returns its outputs.
    pub fn step<'p>(&mut self, st: &Step, ins: &[Option<&Val<'p>>], opset: i64) -> Out<'p> {
        let host: Vec<Option<&Value>> = ins
            .iter()
            .map(|v| v.and_then(|v| v.host.as_deref()))
            .collect();
        if let Op::Shape { start, end } = st.op {
            let x = ins.first().copied().flatten().ok_or("input 1 is missing")?;
            return Ok(vec![Val {
                host: Some(Cow::Owned(resolve::shape_value(x.shape(), start, end))),
                dev: None,
            }]);
        }
        // integer shape arithmetic and anything else computed from constants alone runs on the
        // host, with the CPU executor's code, once per recording
        if ins.iter().flatten().all(|v| v.host.is_some()) {
            let outs = exec(st, &host, opset)?;
            return Ok(outs
                .into_iter()
                .map(|v| Val {
                    host: Some(Cow::Owned(v)),
                    dev: None,
                })
                .collect());
        }
        // inputs read on the host (shapes, axes, bounds) must not come from the device
        let host_from = match st.op {
            Op::Clip { .. }
            | Op::Reduce { .. }
            | Op::Reshape { .. }
            | Op::Squeeze { .. }
            | Op::Unsqueeze { .. }
            | Op::Split { .. }
            | Op::Slice { .. }
            | Op::Pad { .. }
            | Op::Resize(_)
            | Op::Expand
            | Op::Gather { .. } => 1,
            _ => ins.len(),
        };
        if let Some(k) = (host_from..ins.len()).find(|&k| ins[k].is_some_and(|v| v.host.is_none()))
        {
            return Err(format!("input {} is computed on the GPU, but the GPU executor needs it on the host before the run (a constant, or computed from shapes)", k + 1).into());
        }
        let one = |t: DevTensor| Ok(vec![Val::on_device(t)]);
        if let Some(layer) = &st.int {
            if layer.float32.is_some() {
                return Err(QOPERATOR.into());
            }
            return one(self.int_layer(layer, ins)?);
        }
        if let Some(add) = &st.add {
            return one(self.int_add(add, ins)?);
        }
        if let Some(table) = &st.table {
            return one(self.int_table(table, ins)?);
        }
        // integer codes go only to the ops that run on them (pooling and reshaping between
        // quantized layers, as the CPU plan marks them) and to DequantizeLinear
        let codes_in = ins
            .iter()
            .flatten()
            .any(|v| v.dev.as_ref().is_some_and(|t| t.codes));
        if codes_in && !st.on_codes && !matches!(st.op, Op::DequantizeLinear { .. }) {
            return Err("integer codes computed on the GPU reach an op the GPU executor runs only on floats".into());
        }
        match &st.op {
            Op::Conv { window, group } => {
                let (x, w, b) = (self.input(ins, 0)?, self.input(ins, 1)?, self.optional(ins, 2)?);
                let g = ConvGeom::new(&x.shape, &w.shape, b.as_ref().map(|b| b.numel()), window, *group as usize)?;
                let y = self.alloc(g.out_shape.clone())?;
                self.conv(&g, &x, &w, b.as_ref(), &y)?;
                one(y)
            }
            Op::Gemm { alpha, beta, .. } => {
                let (a, b, c) = (self.input(ins, 0)?, self.input(ins, 1)?, self.optional(ins, 2)?);
                let g = GemmGeom::new(&st.op, &a.shape, &b.shape, c.as_ref().map(|c| &c.shape[..]))?;
                let y = self.alloc(vec![g.m, g.n])?;
                let mm = MatMul { m: g.m, n: g.n, k: g.k, a: g.a, b: g.b, o: (g.n, 1), c: g.c, alpha: *alpha, beta: *beta, conv: None, table: vec![[0; 4]] };
                self.matmul(&mm, &a, &b, c.as_ref(), &y)?;
                one(y)
            }
            Op::MatMul => {
                let (a, b) = (self.input(ins, 0)?, self.input(ins, 1)?);
                let g = MatMulGeom::new(&a.shape, &b.shape)?;
                let y = self.alloc(g.out_shape.clone())?;
                let (m, k, n) = (g.m, g.k, g.n);
                let table = g.pairs.iter().enumerate().map(|(t, &(ia, ib))| [ia * m * k, ib * k * n, t * m * n, 0]).collect();
                let mm = MatMul { m, n, k, a: (k, 1), b: (n, 1), o: (n, 1), c: None, alpha: 1.0, beta: 0.0, conv: None, table };
                self.matmul(&mm, &a, &b, None, &y)?;
                one(y)
            }
            Op::MaxPool { window } => {
                if st.outputs.get(1).copied().flatten().is_some() {
                    return Err("MaxPool's indices output is not supported".into());
                }
                let x = self.input(ins, 0)?;
                one(self.pool(&x, window, PoolKind::Max)?)
            }
            Op::AveragePool { window, count_include_pad } => {
                let x = self.input(ins, 0)?;
                one(self.pool(&x, window, PoolKind::Average { count_include_pad: *count_include_pad })?)
            }
            Op::GlobalAveragePool | Op::GlobalMaxPool => {
                let x = self.input(ins, 0)?;
                let shape = global_shape(&x.shape)?;
                let axes: Vec<usize> = (2..x.shape.len()).collect();
                let kind = if matches!(st.op, Op::GlobalMaxPool) { Reduction::Max } else { Reduction::Mean };
                one(self.reduce(&x, &axes, shape, kind)?)
            }
            Op::Reduce { kind, axes, keepdims, noop_with_empty_axes } => {
                let x = self.input(ins, 0)?;
                match resolve::reduce_axes(axes, *noop_with_empty_axes, x.shape.len(), &host)? {
                    Some(axes) => {
                        let shape = reduced_shape(&x.shape, &axes, *keepdims);
                        one(self.reduce(&x, &axes, shape, *kind)?)
                    }
                    None => one(x),
                }
            }
            Op::Relu | Op::Clip { .. } | Op::Sigmoid | Op::HardSigmoid { .. } | Op::HardSwish | Op::Unary(_) => {
                let (op, a, b) = match st.op {
                    Op::Unary(f) => unary_code(f),
                    Op::Relu => (0, 0.0, 0.0),
                    Op::Clip { min, max } => {
                        let (lo, hi) = resolve::clip_bounds(min, max, &host)?;
                        (1, lo, hi)
                    }
                    Op::Sigmoid => (2, 0.0, 0.0),
                    Op::HardSigmoid { alpha, beta } => (3, alpha, beta),
                    _ => (4, 0.0, 0.0),
                };
                let x = self.input(ins, 0)?;
                let y = self.alloc(x.shape.clone())?;
                self.dispatch_1d(Kernel::Unary, &[u(y.numel()), op, f(a), f(b)], &[&x.buf, &y.buf])?;
                one(y)
            }
            Op::Add | Op::Sub | Op::Mul | Op::Div => {
                let (a, b) = (self.input(ins, 0)?, self.input(ins, 1)?);
                let op = match st.op {
                    Op::Add => 0,
                    Op::Sub => 1,
                    Op::Mul => 2,
                    _ => 3,
                };
                one(self.binary(op, &a, &b)?)
            }
            Op::BatchNormalization { epsilon } => {
                let x = self.input(ins, 0)?;
                let params = [self.input(ins, 1)?, self.input(ins, 2)?, self.input(ins, 3)?, self.input(ins, 4)?];
                let (c, per) = batch_norm_dims(&x.shape, [0, 1, 2, 3].map(|k| params[k].numel()))?;
                let y = self.alloc(x.shape.clone())?;
                let n = y.numel();
                let p = [u(n), u(c), u(per), f(*epsilon)];
                self.dispatch_1d(Kernel::BatchNorm, &p, &[&x.buf, &params[0].buf, &params[1].buf, &params[2].buf, &params[3].buf, &y.buf])?;
                one(y)
            }
            Op::LayerNormalization { axis, epsilon } => {
                if st.outputs.iter().skip(1).any(|o| o.is_some()) {
                    return Err("LayerNormalization's Mean and InvStdDev outputs are not supported".into());
                }
                let x = self.input(ins, 0)?;
                let scale = self.input(ins, 1)?;
                let bias = match ins.get(2).copied().flatten() {
                    Some(_) => Some(self.input(ins, 2)?),
                    None => None,
                };
                let (rows, len) = layer_norm_dims(&x.shape, *axis)?;
                let ns = layer_norm_params(scale.numel(), len, "scale")?;
                let nb = match &bias {
                    Some(b) => layer_norm_params(b.numel(), len, "bias")?,
                    None => 0,
                };
                let y = self.alloc(x.shape.clone())?;
                let p = [u(rows), u(len), u(ns), u(nb), f(*epsilon)];
                let b = bias.as_ref().unwrap_or(&scale);
                self.dispatch_1d(Kernel::LayerNorm, &p, &[&x.buf, &scale.buf, &b.buf, &y.buf])?;
                one(y)
            }
            Op::Softmax { axis } => {
                let x = self.input(ins, 0)?;
                let (outer, len, inner) = softmax_dims(&x.shape, *axis, opset)?;
                let y = self.alloc(x.shape.clone())?;
                self.dispatch_1d(Kernel::Softmax, &[u(outer * inner), u(len), u(inner)], &[&x.buf, &y.buf])?;
                one(y)
            }
            Op::Identity | Op::Dropout | Op::Flatten { .. } | Op::Reshape { .. } | Op::Squeeze { .. } | Op::Unsqueeze { .. } => {
                if matches!(st.op, Op::Dropout) && st.outputs.get(1).copied().flatten().is_some() {
                    return Err("Dropout's mask output is not supported".into());
                }
                // metadata only: the output shares the input's buffer
                let x = self.input(ins, 0)?;
                let shape = resolve::reshaped_shape(&st.op, &x.shape, &host)?;
                one(DevTensor { shape, ..x })
            }
            Op::Cast { to } if to.is_float() => one(self.input(ins, 0)?),
            Op::Concat { axis } => {
                let xs: Vec<DevTensor> = (0..ins.len()).filter(|&k| ins[k].is_some()).map(|k| self.input(ins, k)).collect::<Result<_, _>>()?;
                let first = xs.first().ok_or("Concat needs inputs")?;
                let ax = layout::axis(*axis, first.shape.len())?;
                let shape = concat_shape(&xs.iter().map(|x| &x.shape[..]).collect::<Vec<_>>(), ax)?;
                let y = self.alloc(shape)?;
                let mut at = 0;
                for x in &xs {
                    let axes: Vec<CopyAxis> = (0..x.shape.len()).map(|k| CopyAxis { dst_stride: strides(&y.shape)[k], ..CopyAxis::plain(&x.shape, &x.shape, k, 0, 1) }).collect();
                    self.copy(x, &y, &axes, at * strides(&y.shape)[ax], PadMode::Constant, 0.0)?;
                    at += x.shape[ax];
                }
                one(y)
            }
            Op::Split { .. } => {
                let x = self.input(ins, 0)?;
                let (ax, sizes) = resolve::split_sizes(&st.op, &x.shape, st.outputs.len(), &host)?;
                let mut outs = Vec::with_capacity(sizes.len());
                let mut at = 0;
                for &size in &sizes {
                    let mut shape = x.shape.clone();
                    shape[ax] = size;
                    let y = self.alloc(shape)?;
                    let axes: Vec<CopyAxis> = (0..x.shape.len()).map(|k| CopyAxis::plain(&y.shape, &x.shape, k, if k == ax { at as i64 } else { 0 }, 1)).collect();
                    self.copy(&x, &y, &axes, 0, PadMode::Constant, 0.0)?;
                    at += size;
                    outs.push(Val::on_device(y));
                }
                Ok(outs)
            }
            Op::Slice { .. } => {
                let x = self.input(ins, 0)?;
                let plan = resolve::slice_axes(&st.op, &x.shape, &host, opset)?;
                let mut shape = x.shape.clone();
                let (mut start, mut step) = (vec![0; shape.len()], vec![1; shape.len()]);
                for a in &plan {
                    (shape[a.axis], start[a.axis], step[a.axis]) = (a.len, a.start, a.step);
                }
                let y = self.alloc(shape)?;
                let axes: Vec<CopyAxis> = (0..x.shape.len()).map(|k| CopyAxis::plain(&y.shape, &x.shape, k, start[k], step[k])).collect();
                self.copy(&x, &y, &axes, 0, PadMode::Constant, 0.0)?;
                one(y)
            }
            Op::Transpose { perm } => {
                let x = self.input(ins, 0)?;
                let perm = resolve::transpose_perm(perm, x.shape.len())?;
                let y = self.alloc(perm.iter().map(|&k| x.shape[k]).collect())?;
                let (xs, ys) = (strides(&x.shape), strides(&y.shape));
                let axes: Vec<CopyAxis> = perm.iter().enumerate().map(|(k, &src)| CopyAxis { extent: y.shape[k], dst_stride: ys[k], src_stride: xs[src], start: 0, step: 1, src_extent: x.shape[src] }).collect();
                self.copy(&x, &y, &axes, 0, PadMode::Constant, 0.0)?;
                one(y)
            }
            Op::Pad { .. } => {
                let x = self.input(ins, 0)?;
                let (pads, mode, fill) = resolve::pad_params(&st.op, x.shape.len(), &host)?;
                let y = self.alloc(padded_shape(&x.shape, &pads, mode)?)?;
                let axes: Vec<CopyAxis> = (0..x.shape.len()).map(|k| CopyAxis::plain(&y.shape, &x.shape, k, -pads[k].0, 1)).collect();
                self.copy(&x, &y, &axes, 0, mode, fill)?;
                one(y)
            }
            Op::Gather { axis } => {
                let x = self.input(ins, 0)?;
                let Some(Value::I64(idx)) = host.get(1).copied().flatten() else { return Err("Gather's indices must be integers".into()) };
                let ax = layout::axis(*axis, x.shape.len())?;
                let words: Vec<u32> = gather_indices(x.shape[ax], &idx.data)?.into_iter().map(u).collect();
                let y = self.alloc(gather_shape(&x.shape, ax, &idx.shape))?;
                let inner: usize = x.shape[ax + 1..].iter().product();
                let idx_buf = self.gpu.upload(&words)?;
                let p = [u(y.numel()), u(inner), u(x.shape[ax]), u(words.len())];
                self.dispatch_1d(Kernel::Gather, &p, &[&x.buf, &idx_buf, &y.buf])?;
                one(y)
            }
            // a copy whose broadcast axes do not move through the input (stride 0)
            Op::Expand => {
                let x = self.input(ins, 0)?;
                let y = self.alloc(resolve::expanded_shape(&x.shape, &host)?)?;
                check_rank(y.shape.len())?;
                let (src, dst) = (broadcast_strides(&x.shape, &y.shape), strides(&y.shape));
                let axes: Vec<CopyAxis> = (0..y.shape.len()).map(|k| CopyAxis { extent: y.shape[k], dst_stride: dst[k], src_stride: src[k], start: 0, step: 1, src_extent: y.shape[k] }).collect();
                self.copy(&x, &y, &axes, 0, PadMode::Constant, 0.0)?;
                one(y)
            }
            Op::ConvTranspose { window, group, output_padding } => {
                let (x, w, b) = (self.input(ins, 0)?, self.input(ins, 1)?, self.optional(ins, 2)?);
                let group = usize::try_from(*group).map_err(|_| "group must be positive")?;
                let g = TransposedGeom::new(&x.shape, &w.shape, b.as_ref().map(|b| b.numel()), window, group, output_padding.as_deref())?;
                // one spatial axis runs as a single row
                let row = WindowAxis { kernel: 1, stride: 1, dilation: 1, pad_begin: 0, pad_end: 0, out: 1 };
                let (ah, aw, h, wd) = match (g.axes.as_slice(), &x.shape[2..]) {
                    ([a], [w]) => (row, *a, 1, *w),
                    ([a, b], [h, w]) => (*a, *b, *h, *w),
                    _ => return Err("a ConvTranspose with more than two spatial axes is not supported by the GPU executor; run the model with --backend cpu".into()),
                };
                let y = self.alloc(g.out_shape.clone())?;
                let mut words = vec![u(y.numel()), u(g.c), u(h), u(wd), u(g.m), u(g.cg), u(g.mg), i(ah.out), i(aw.out), u(b.is_some() as usize)];
                words.extend(window_words(&ah));
                words.extend(window_words(&aw));
                let bias = b.as_ref().map_or(&x.buf, |b| &b.buf);
                self.dispatch_1d(Kernel::ConvTranspose, &words, &[&x.buf, &w.buf, bias, &y.buf])?;
                one(y)
            }
            Op::Resize(r) => {
                let x = self.input(ins, 0)?;
                check_rank(x.shape.len())?;
                let taps = resize::taps(&x.shape, *r, &host)?;
                let y = self.alloc(taps.out.clone())?;
                let xs = strides(&x.shape);
                let mut p = vec![u(y.numel()), u(x.shape.len()), u(taps.count), 0, 0, 0, 0, 0, 0, 0];
                let mut table: Vec<u32> = Vec::new();
                for (k, axis) in taps.per_axis.iter().enumerate() {
                    p.extend([u(taps.out[k]), u(xs[k]), u(table.len())]);
                    table.extend(axis.iter().flat_map(|t| [u(t[0].0), t[0].1.to_bits(), u(t[1].0), t[1].1.to_bits()]));
                }
                // a buffer is never empty
                table.push(0);
                let table = self.gpu.upload(&table)?;
                self.dispatch_1d(Kernel::Resize, &p, &[&x.buf, &table, &y.buf])?;
                one(y)
            }
            Op::Cast { .. } => Err("casting a float tensor computed on the GPU to integers is not supported by the GPU executor".into()),
            Op::Shape { .. } | Op::Constant { .. } => unreachable!("computed on the host above"),
            Op::QuantizeLinear { .. } | Op::DequantizeLinear { .. } => one(self.qdq(&st.op, st.out_elems.first().copied().flatten(), ins)?),
            Op::Where | Op::Compare(_) => Err("a comparison or selection of values computed on the GPU is not supported by the GPU executor (one of constants runs on the host); run the model with --backend cpu".into()),
            // shape logic runs on the host when its inputs are known there (above)
            Op::Not
            | Op::Logic(_)
            | Op::Mod { .. }
            | Op::Pow
            | Op::ConstantOfShape { .. }
            | Op::Range
            | Op::Tile
            | Op::Arg { .. }
            | Op::CumSum { .. }
            | Op::Einsum(_)
            | Op::TopK { .. }
            | Op::ScatterND(_)
 => Err(format!("{} of values computed on the GPU is not supported by the GPU executor; run the model with --backend cpu", st.op_type).into()),
            // weights' quantizers run on the host above; on activations the shader's division
            // (not correctly rounded on every GPU) could move a value across a rounding boundary
            Op::Quant(_) | Op::BipolarQuant | Op::Trunc(_) => Err("QONNX's quantizers on values computed on the GPU are not supported by the GPU executor (a GPU's float division may not be correctly rounded, so codes could differ from qonnx's); run the model with --backend cpu".into()),
            Op::QLinearConv { .. } | Op::QLinearMatMul | Op::QGemm { .. } | Op::QLinearAdd => {
                Err(QOPERATOR.into())
            }
            Op::Other => Err("not supported".into()),
        }
    }

    /// Input `k` on the device (host floats are uploaded).
    pub(super) fn input(&mut self, ins: &[Option<&Val>], k: usize) -> Result<DevTensor, Failure> {
        match ins.get(k).copied().flatten() {
            None => Err(format!("input {} is missing", k + 1).into()),
            Some(Val { dev: Some(t), .. }) => Ok(t.clone()),
            Some(Val { host: Some(h), .. }) => match h.as_ref() {
                Value::F32(a) => Ok(self.upload(a)?),
                v => Err(format!("input {} must be float, not {}", k + 1, v.elem_name()).into()),
            },
            Some(Val {
                host: None,
                dev: None,
            }) => unreachable!("a value lives somewhere"),
        }
    }

    /// `a op b` with broadcasting (`op`: 0 add, 1 sub, 2 mul, 3 div).
    pub(super) fn binary(
        &mut self,
        op: u32,
        a: &DevTensor,
        b: &DevTensor,
    ) -> Result<DevTensor, Failure> {
        let u = |v: usize| v as u32;
        let shape = broadcast_shape(&a.shape, &b.shape)?;
        check_rank(shape.len())?;
        let mut p = vec![0, op, u(shape.len()), 0];
        for (k, (sa, sb)) in broadcast_strides(&a.shape, &shape)
            .into_iter()
            .zip(broadcast_strides(&b.shape, &shape))
            .enumerate()
        {
            p.extend([u(shape[k]), u(sa), u(sb)]);
        }
        let y = self.alloc(shape)?;
        p[0] = u(y.numel());
        self.dispatch_1d(Kernel::Binary, &p, &[&a.buf, &b.buf, &y.buf])?;
        Ok(y)
    }

    fn optional(&mut self, ins: &[Option<&Val>], k: usize) -> Result<Option<DevTensor>, Failure> {
        match ins.get(k).copied().flatten() {
            Some(_) => Ok(Some(self.input(ins, k)?)),
            None => Ok(None),
        }
    }

    fn conv(
        &mut self,
        g: &ConvGeom,
        x: &DevTensor,
        w: &DevTensor,
        b: Option<&DevTensor>,
        y: &DevTensor,
    ) -> Result<(), Failure> {
        let [ah, aw] = g.axes;
        let (k, p) = (g.k(), g.pixels());
        if g.mg < DIRECT_CONV_BELOW {
            let mut words = vec![
                u(y.numel()),
                u(g.c),
                u(g.h),
                u(g.w),
                u(g.m),
                u(g.cg),
                u(g.mg),
                i(ah.out),
                i(aw.out),
                u(b.is_some() as usize),
            ];
            words.extend(window_words(&ah));
            words.extend(window_words(&aw));
            let bias = b.map_or(&x.buf, |b| &b.buf);
            self.dispatch_1d(Kernel::Conv, &words, &[&x.buf, &w.buf, bias, &y.buf])?;
            return Ok(());
        }
        let pointwise = [ah, aw]
            .iter()
            .all(|a| a.kernel == 1 && a.stride == 1 && a.pad_begin == 0 && a.pad_end == 0);
        let conv = (!pointwise).then(|| {
            let (kh, kw) = (ah.kernel as usize, aw.kernel as usize);
            // per receptive-field row (channel, kernel row, kernel column): where it reads
            let rows = (0..k)
                .map(|r| {
                    let (ch, ki, kj) = (r / (kh * kw), (r / kw) % kh, r % kw);
                    let (di, dj) = (ki as i64 * ah.dilation, kj as i64 * aw.dilation);
                    [u(ch * g.h * g.w) + i(di * g.w as i64 + dj), i(di), i(dj)]
                })
                .collect();
            let words = [
                u(g.h),
                u(g.w),
                i(aw.out),
                i(ah.stride),
                i(aw.stride),
                i(ah.pad_begin),
                i(aw.pad_begin),
            ];
            (words, rows)
        });
        // one batch per (image, group): weights of the group, its input channels, its outputs
        let table = (0..g.n * g.group)
            .map(|z| (z / g.group, z % g.group))
            .map(|(img, grp)| {
                [
                    grp * g.mg * k,
                    (img * g.c + grp * g.cg) * g.h * g.w,
                    (img * g.m + grp * g.mg) * p,
                    grp * g.mg,
                ]
            })
            .collect();
        let mm = MatMul {
            m: g.mg,
            n: p,
            k,
            a: (k, 1),
            b: (p, 1),
            o: (p, 1),
            c: b.map(|_| (1, 0)),
            alpha: 1.0,
            beta: 1.0,
            conv,
            table,
        };
        self.matmul(&mm, w, x, b, y)
    }

    /// Records a matrix product. A B too large for one binding (a big fully connected layer's
    /// weights) is read in parts that each fit: along N when columns are B's outer stride (a
    /// transposed weight), else along K, accumulating into the output.
    fn matmul(
        &mut self,
        mm: &MatMul,
        a: &DevTensor,
        b: &DevTensor,
        c: Option<&DevTensor>,
        y: &DevTensor,
    ) -> Result<(), Failure> {
        if mm.m == 0 || mm.n == 0 {
            return Ok(());
        }
        let limit = (self.gpu.device.limits().max_storage_buffer_binding_size / 4) as usize;
        let align = (self.gpu.device.limits().min_storage_buffer_offset_alignment / 4) as usize;
        if b.numel() <= limit || mm.conv.is_some() || mm.table.len() != 1 {
            return self.matmul_part(mm, a, (&b.buf, 0, b.numel()), c, y, false);
        }
        let [a_off, b_off, o_off, c_off] = mm.table[0];
        let ccs = mm.c.map_or(0, |c| c.1);
        // the elements of B a part reads, from an aligned start
        let span = |k: usize, n: usize| (k - 1) * mm.b.0 + (n - 1) * mm.b.1 + 1 + align;
        let split_n = mm.b.1 >= mm.b.0;
        let (outer, step) = if split_n {
            (mm.n, mm.b.1)
        } else {
            (mm.k, mm.b.0)
        };
        let chunk = (limit - align) / step.max(1);
        if chunk == 0 || (split_n && span(mm.k, 1) > limit) || (!split_n && span(1, mm.n) > limit) {
            return Err(format!("B ({} values) is larger than one GPU buffer binding ({limit} values) and cannot be split", b.numel()).into());
        }
        for start in (0..outer).step_by(chunk) {
            let len = chunk.min(outer - start);
            let first = b_off + start * step;
            let base = first - first % align;
            let mut part = MatMul {
                table: vec![[a_off, first - base, o_off, c_off]],
                ..mm.clone()
            };
            if split_n {
                part.n = len;
                part.table[0][2] += start * mm.o.1;
                part.table[0][3] += start * ccs;
            } else {
                part.k = len;
                part.table[0][0] += start * mm.a.1;
            }
            let words = if split_n {
                span(mm.k, len)
            } else {
                span(len, mm.n)
            };
            let words = words.min(b.numel() - base);
            let bias = if split_n || start == 0 { c } else { None };
            self.matmul_part(
                &part,
                a,
                (&b.buf, base, words),
                bias,
                y,
                !split_n && start > 0,
            )?;
        }
        Ok(())
    }

    /// One dispatch of gemm.wgsl; B is bound from element `b.1`, `b.2` elements long.
    fn matmul_part(
        &mut self,
        mm: &MatMul,
        a: &DevTensor,
        b: (&wgpu::Buffer, usize, usize),
        c: Option<&DevTensor>,
        y: &DevTensor,
        accumulate: bool,
    ) -> Result<(), Failure> {
        let (crs, ccs) = mm.c.unwrap_or((0, 0));
        let mut p = vec![
            u(mm.m),
            u(mm.n),
            u(mm.k),
            u(mm.a.0),
            u(mm.a.1),
            u(mm.b.0),
            u(mm.b.1),
            u(mm.o.0),
            u(mm.o.1),
            u(crs),
            u(ccs),
        ];
        p.extend([
            u(c.is_some() as usize),
            f(mm.alpha),
            f(mm.beta),
            u(mm.conv.is_some() as usize),
            u(accumulate as usize),
        ]);
        if let Some((words, _)) = &mm.conv {
            p.extend(words);
        }
        p.resize(24, 0);
        p.push(u(32 + 4 * mm.table.len()));
        p.resize(32, 0);
        p.extend(mm.table.iter().flatten().map(|&v| u(v)));
        if let Some((_, rows)) = &mm.conv {
            p.extend(rows.iter().flatten());
        }
        fn whole(buffer: &wgpu::Buffer) -> wgpu::BufferBinding<'_> {
            wgpu::BufferBinding {
                buffer,
                offset: 0,
                size: None,
            }
        }
        let b_part = wgpu::BufferBinding {
            buffer: b.0,
            offset: 4 * b.1 as u64,
            size: std::num::NonZeroU64::new(4 * b.2 as u64),
        };
        let bufs = [
            whole(&a.buf),
            b_part,
            whole(c.map_or(&a.buf, |c| &c.buf)),
            whole(&y.buf),
        ];
        let z = u(mm.table.len());
        if mm.m < SKINNY_BELOW {
            self.dispatch_bindings(
                Kernel::Gemv,
                &p,
                &bufs,
                [u(mm.n.div_ceil(64)), u(mm.m.div_ceil(16)), z],
            )?;
        } else {
            self.dispatch_bindings(
                Kernel::Gemm,
                &p,
                &bufs,
                [u(mm.n.div_ceil(64)), u(mm.m.div_ceil(64)), z],
            )?;
        }
        Ok(())
    }

    fn pool(
        &mut self,
        x: &DevTensor,
        window: &etch_ir::op::Window,
        kind: PoolKind,
    ) -> Result<DevTensor, Failure> {
        let g = PoolGeom::new(&x.shape, window, kind)?;
        let [ah, aw] = g.axes;
        let y = self.alloc(g.out_shape.clone())?;
        let (avg, include_pad) = match kind {
            PoolKind::Max => (0, 0),
            PoolKind::Average { count_include_pad } => (1, count_include_pad as usize),
        };
        let mut p = vec![
            u(y.numel()),
            i(g.h),
            i(g.w),
            i(ah.out),
            i(aw.out),
            u(avg),
            u(include_pad),
            0,
        ];
        p.extend(window_words(&ah));
        p.push(i(ah.pad_end));
        p.extend(window_words(&aw));
        p.push(i(aw.pad_end));
        self.dispatch_1d(Kernel::Pool, &p, &[&x.buf, &y.buf])?;
        Ok(y)
    }

    /// `kind` of `x` over `axes`, into a tensor of `shape` (the reduced shape, with or without
    /// the reduced axes).
    fn reduce(
        &mut self,
        x: &DevTensor,
        axes: &[usize],
        shape: Vec<usize>,
        kind: Reduction,
    ) -> Result<DevTensor, Failure> {
        // reduce.wgsl's mode numbers
        let mode = match kind {
            Reduction::Mean => 0,
            Reduction::Max => 1,
            Reduction::Min => 2,
            Reduction::Sum => 3,
            Reduction::L2 => 4,
        };
        check_rank(x.shape.len())?;
        let kept = reduced_shape(&x.shape, axes, true);
        let xs = strides(&x.shape);
        let count: usize = axes.iter().map(|&k| x.shape[k]).product();
        let y = self.alloc(shape)?;
        let mut p = vec![
            u(y.numel()),
            mode,
            u(x.shape.len()),
            u(axes.len()),
            u(count),
            0,
            0,
            0,
        ];
        p.extend((0..MAX_RANK).flat_map(|k| {
            if k < kept.len() {
                [u(kept[k]), u(xs[k])]
            } else {
                [0, 0]
            }
        }));
        p.extend(axes.iter().flat_map(|&k| [u(x.shape[k]), u(xs[k])]));
        self.dispatch_1d(Kernel::Reduce, &p, &[&x.buf, &y.buf])?;
        Ok(y)
    }

    /// Copies `x` into `y` along `axes` (see copy.wgsl).
    fn copy(
        &mut self,
        x: &DevTensor,
        y: &DevTensor,
        axes: &[CopyAxis],
        dst_off: usize,
        mode: PadMode,
        fill: f32,
    ) -> Result<(), Failure> {
        check_rank(axes.len())?;
        let count: usize = axes.iter().map(|a| a.extent).product();
        let mode = match mode {
            PadMode::Constant => 0,
            PadMode::Edge => 1,
            PadMode::Reflect => 2,
        };
        let mut p = vec![u(count), u(axes.len()), mode, f(fill), 0, u(dst_off), 0, 0];
        for a in axes {
            p.extend([
                u(a.extent),
                u(a.dst_stride),
                u(a.src_stride),
                i(a.start),
                i(a.step),
                u(a.src_extent),
            ]);
        }
        self.dispatch_1d(Kernel::Copy, &p, &[&x.buf, &y.buf])?;
        Ok(())
    }
}

/// The unary kernel's op code (`shaders/unary.wgsl`) of a [`Unary`] function and its parameter.
fn unary_code(f: Unary) -> (u32, f32, f32) {
    match f {
        Unary::Abs => (5, 0.0, 0.0),
        Unary::Neg => (6, 0.0, 0.0),
        Unary::Exp => (7, 0.0, 0.0),
        Unary::Log => (8, 0.0, 0.0),
        Unary::Sqrt => (9, 0.0, 0.0),
        Unary::Reciprocal => (10, 0.0, 0.0),
        Unary::Floor => (11, 0.0, 0.0),
        Unary::Ceil => (12, 0.0, 0.0),
        Unary::Sin => (13, 0.0, 0.0),
        Unary::Cos => (14, 0.0, 0.0),
        Unary::Tanh => (15, 0.0, 0.0),
        Unary::Erf => (16, 0.0, 0.0),
        Unary::Softplus => (17, 0.0, 0.0),
        Unary::Softsign => (18, 0.0, 0.0),
        Unary::Mish => (19, 0.0, 0.0),
        Unary::LeakyRelu { alpha } => (20, alpha, 0.0),
        Unary::Elu { alpha } => (21, alpha, 0.0),
        Unary::Gelu { tanh } => (22, if tanh { 1.0 } else { 0.0 }, 0.0),
    }
}
