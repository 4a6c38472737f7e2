//! Convolution: im2col + GEMM per group (1×1 stride-1 convolutions multiply the input directly),
//! and a direct kernel for depthwise layers, where a GEMM would be one row tall.

use std::cell::Cell;

use rayon::prelude::*;

use super::super::value::Array;
use super::linear::{matmul_into, MatRef};
use super::Res;
use etch_ir::op::{Window, WindowAxis};

/// A 2-D view of a window op: 1-D ops get a unit leading axis.
pub(super) fn lift_2d(axes: Vec<WindowAxis>) -> Res<[WindowAxis; 2]> {
    let unit = WindowAxis {
        kernel: 1,
        stride: 1,
        dilation: 1,
        pad_begin: 0,
        pad_end: 0,
        out: 1,
    };
    match axes.as_slice() {
        [w] => Ok([unit, *w]),
        [h, w] => Ok([*h, *w]),
        _ => Err(format!(
            "{} spatial dims are not supported (1 or 2 are)",
            axes.len()
        )),
    }
}

/// A convolution's extents, checked against each other: what any executor needs to slide it.
pub(crate) struct ConvGeom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    /// Output channels, and per group: input channels, output channels.
    pub m: usize,
    pub group: usize,
    pub cg: usize,
    pub mg: usize,
    pub axes: [WindowAxis; 2],
    pub out_shape: Vec<usize>,
}

impl ConvGeom {
    /// Checks input `x`, weight `w` and bias length against each other and resolves the window.
    pub fn new(
        x: &[usize],
        w: &[usize],
        bias: Option<usize>,
        window: &Window,
        group: usize,
    ) -> Res<ConvGeom> {
        let rank = x.len();
        if rank < 3 || w.len() != rank {
            return Err(format!(
                "Conv needs input and weight of the same rank ≥ 3, got {x:?} and {w:?}"
            ));
        }
        let (n, c) = (x[0], x[1]);
        let (m, cg) = (w[0], w[1]);
        if group == 0 || c != cg * group || m % group != 0 {
            return Err(format!(
                "input channels {c}, weight {w:?} and group {group} do not fit"
            ));
        }
        let spatial: Vec<i64> = x[2..].iter().map(|&d| d as i64).collect();
        let kernel: Vec<i64> = w[2..].iter().map(|&d| d as i64).collect();
        let [ah, aw] = lift_2d(window.resolve(&spatial, &kernel)?)?;
        if let Some(b) = bias {
            if b != m {
                return Err(format!(
                    "the bias has {b} values but the conv has {m} output channels"
                ));
            }
        }
        let (h, wd) = if rank == 4 { (x[2], x[3]) } else { (1, x[2]) };
        let mut out_shape = vec![n, m];
        if rank == 4 {
            out_shape.push(ah.out as usize);
        }
        out_shape.push(aw.out as usize);
        Ok(ConvGeom {
            n,
            c,
            h,
            w: wd,
            m,
            group,
            cg,
            mg: m / group,
            axes: [ah, aw],
            out_shape,
        })
    }

    /// Rows of the unrolled receptive field: `cg·kh·kw`.
    pub fn k(&self) -> usize {
        self.cg * (self.axes[0].kernel * self.axes[1].kernel) as usize
    }

    /// Output pixels per channel: `ho·wo`.
    pub fn pixels(&self) -> usize {
        (self.axes[0].out * self.axes[1].out) as usize
    }
}

/// ONNX Conv on an `[N, C, (H,) W]` input; `filters`, the constant weights in Winograd's form
/// (`winograd::filters`), lets a 3×3 stride-1 layer run by Winograd's algorithm.
pub fn conv(
    x: &Array<f32>,
    w: &Array<f32>,
    b: Option<&Array<f32>>,
    window: &Window,
    group: usize,
    filters: Option<&[f32]>,
) -> Res<Array<f32>> {
    let geom = ConvGeom::new(&x.shape, &w.shape, b.map(|b| b.data.len()), window, group)?;
    let ConvGeom {
        n,
        c,
        h,
        w: wd,
        m,
        cg,
        mg,
        axes: [ah, aw],
        ..
    } = geom;
    let (k, p) = (geom.k(), geom.pixels());
    // the output starts as the bias and every path below accumulates onto it
    let mut out = match b {
        Some(b) => {
            let mut out = Vec::with_capacity(n * m * p);
            for plane in 0..n * m {
                out.extend(std::iter::repeat_n(b.data[plane % m], p));
            }
            out
        }
        None => vec![0.0f32; n * m * p],
    };
    let pointwise = ah.kernel == 1
        && aw.kernel == 1
        && ah.stride == 1
        && aw.stride == 1
        && [ah.pad_begin, ah.pad_end, aw.pad_begin, aw.pad_end] == [0; 4];
    if cg == 1 && mg == 1 && !pointwise {
        depthwise(x, w, &mut out, (h, wd), [ah, aw]);
    } else if let Some(u) = filters.filter(|_| super::winograd::suits(&geom)) {
        for img in 0..n {
            super::winograd::conv3x3(
                &x.data[img * c * h * wd..(img + 1) * c * h * wd],
                u,
                &mut out[img * m * p..(img + 1) * m * p],
                &geom,
            );
        }
    } else {
        let mut col = if pointwise {
            Vec::new()
        } else {
            take_scratch(k * p)
        };
        for img in 0..n {
            for g in 0..group {
                let xin = &x.data[(img * c + g * cg) * h * wd..(img * c + (g + 1) * cg) * h * wd];
                let rhs = if pointwise {
                    MatRef::row_major(xin, k, p)
                } else {
                    im2col(xin, (h, wd), [ah, aw], &mut col[..k * p]);
                    MatRef::row_major(&col[..k * p], k, p)
                };
                let lhs = MatRef::row_major(&w.data[g * mg * k..(g + 1) * mg * k], mg, k);
                let dst = &mut out[(img * m + g * mg) * p..(img * m + (g + 1) * mg) * p];
                matmul_into(dst, lhs, rhs, true);
            }
        }
        put_scratch(col);
    }
    Ok(Array::new(geom.out_shape, out))
}

thread_local! {
    /// The im2col matrix of the last convolution on this thread, kept so that repeated runs reuse
    /// it instead of allocating (and page-faulting in) several MB per convolution.
    static SCRATCH: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// This thread's scratch buffer, at least `len` long (its contents are stale). Taken out rather
/// than borrowed, so a nested call (rayon may run another job on this thread while it waits) gets
/// a fresh one instead of a conflict.
fn take_scratch(len: usize) -> Vec<f32> {
    let mut v = SCRATCH.take();
    if v.len() < len {
        v = vec![0.0; len];
    }
    v
}

/// Returns a scratch buffer for the next convolution on this thread (the larger one is kept).
fn put_scratch(v: Vec<f32>) {
    let old = SCRATCH.take();
    SCRATCH.set(if v.len() >= old.len() { v } else { old });
}

/// The output columns `first..end` whose kernel column `kj` lands inside an input row of `w`
/// columns, and the input column `j0` the first of them reads (the next ones read every
/// `stride`-th column from there; 0 for an empty run).
pub(crate) fn column_run(aw: WindowAxis, kj: usize, w: usize) -> (usize, usize, usize) {
    let wo = aw.out as usize;
    let shift = kj as i64 * aw.dilation - aw.pad_begin;
    let first = if shift >= 0 {
        0
    } else {
        ((-shift + aw.stride - 1) / aw.stride) as usize
    }
    .min(wo);
    let end = ((w as i64 - shift + aw.stride - 1).max(0) / aw.stride).clamp(first as i64, wo as i64)
        as usize;
    // an empty run (the tap lands on padding in every column) reads nothing, from column 0
    let j0 = if first < end {
        (first as i64 * aw.stride + shift) as usize
    } else {
        0
    };
    (first, end, j0)
}

/// Unrolls the receptive fields of one group into a `[cg·kh·kw, ho·wo]` matrix (zeros for padding).
pub(crate) fn im2col(
    x: &[f32],
    (h, w): (usize, usize),
    [ah, aw]: [WindowAxis; 2],
    col: &mut [f32],
) {
    let (kh, kw, ho, wo) = (
        ah.kernel as usize,
        aw.kernel as usize,
        ah.out as usize,
        aw.out as usize,
    );
    let stride = aw.stride as usize;
    col.par_chunks_mut(ho * wo)
        .enumerate()
        .for_each(|(row, dst)| {
            let (ch, ki, kj) = (row / (kh * kw), (row / kw) % kh, row % kw);
            let plane = &x[ch * h * w..(ch + 1) * h * w];
            let (first, end, j0) = column_run(aw, kj, w);
            for (oi, line) in dst.chunks_exact_mut(wo).enumerate() {
                let ii = (oi as i64) * ah.stride - ah.pad_begin + (ki as i64) * ah.dilation;
                if ii < 0 || ii >= h as i64 || first == end {
                    line.fill(0.0);
                    continue;
                }
                let src = &plane[ii as usize * w..(ii as usize + 1) * w];
                let (head, rest) = line.split_at_mut(first);
                let (body, tail) = rest.split_at_mut(end - first);
                head.fill(0.0);
                tail.fill(0.0);
                if stride == 1 {
                    body.copy_from_slice(&src[j0..j0 + body.len()]);
                } else {
                    body.iter_mut()
                        .zip(src[j0..].iter().step_by(stride))
                        .for_each(|(v, &s)| *v = s);
                }
            }
        });
}

/// One filter per channel: a direct sliding window, parallel over channels, added onto `out`.
/// Each output row sums its taps in kernel order into a zeroed row (so every output is the same
/// float sum as a per-element loop gives), one tap at a time across the row's valid columns: a
/// multiply-add over a contiguous (stride 1) or strided run that the compiler vectorizes.
fn depthwise(
    x: &Array<f32>,
    w: &Array<f32>,
    out: &mut [f32],
    (h, wd): (usize, usize),
    [ah, aw]: [WindowAxis; 2],
) {
    let (kh, kw, ho, wo) = (
        ah.kernel as usize,
        aw.kernel as usize,
        ah.out as usize,
        aw.out as usize,
    );
    let m = w.shape[0];
    let c = x.shape[1];
    let stride = aw.stride as usize;
    // per kernel column: the output columns whose input column lies inside the row, and the
    // input column of the first of them
    let cols: Vec<(usize, usize, usize)> = (0..kw).map(|kj| column_run(aw, kj, wd)).collect();
    // a strided row is read as `stride` de-interleaved phases: output column j of tap kj reads
    // phase j0 % stride at j0 / stride + j, a contiguous run
    let phase_len = wd.div_ceil(stride);
    let shape = DepthwisePlane {
        h,
        wd,
        kh,
        kw,
        wo,
        stride,
        phase_len,
        axes: [ah, aw],
        cols: &cols,
    };
    out.par_chunks_mut(ho * wo).enumerate().for_each_init(
        || (vec![0.0f32; wo], vec![0.0f32; h * phase_len * stride]),
        |(acc, phases), (plane, dst)| {
            let (img, oc) = (plane / m, plane % m);
            // group = channels: output channel oc reads input channel oc·c/m
            let ic = oc * c / m;
            let src = &x.data[(img * c + ic) * h * wd..(img * c + ic + 1) * h * wd];
            let filt = &w.data[oc * kh * kw..(oc + 1) * kh * kw];
            shape.run(src, filt, dst, acc, phases);
        },
    );
}

/// One depthwise plane's geometry, shared by every channel.
struct DepthwisePlane<'a> {
    h: usize,
    wd: usize,
    kh: usize,
    kw: usize,
    wo: usize,
    stride: usize,
    phase_len: usize,
    axes: [WindowAxis; 2],
    cols: &'a [(usize, usize, usize)],
}

impl DepthwisePlane<'_> {
    /// Adds the plane `src` convolved with `filt` onto `dst`, with 256-bit vectors where the CPU
    /// has them (multiply then add, never fused: every CPU gives the same sums).
    fn run(&self, src: &[f32], filt: &[f32], dst: &mut [f32], acc: &mut [f32], phases: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, the only feature the function enables
            unsafe { self.run_avx2(src, filt, dst, acc, phases) };
            return;
        }
        self.run_plain(src, filt, dst, acc, phases);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn run_avx2(
        &self,
        src: &[f32],
        filt: &[f32],
        dst: &mut [f32],
        acc: &mut [f32],
        phases: &mut [f32],
    ) {
        self.run_plain(src, filt, dst, acc, phases);
    }

    #[inline(always)]
    fn run_plain(
        &self,
        src: &[f32],
        filt: &[f32],
        dst: &mut [f32],
        acc: &mut [f32],
        phases: &mut [f32],
    ) {
        let (h, wd, stride, phase_len) = (self.h, self.wd, self.stride, self.phase_len);
        let [ah, _] = self.axes;
        if stride > 1 {
            for (row, out) in src
                .chunks_exact(wd)
                .zip(phases.chunks_exact_mut(phase_len * stride))
            {
                for (j, group) in row.chunks(stride).enumerate() {
                    for (p, &v) in group.iter().enumerate() {
                        out[p * phase_len + j] = v;
                    }
                }
            }
        }
        for (oi, line) in dst.chunks_exact_mut(self.wo).enumerate() {
            acc.fill(0.0);
            for ki in 0..self.kh {
                let ii = (oi as i64) * ah.stride - ah.pad_begin + (ki as i64) * ah.dilation;
                if ii < 0 || ii >= h as i64 {
                    continue;
                }
                let ii = ii as usize;
                let row: &[f32] = if stride == 1 {
                    &src[ii * wd..(ii + 1) * wd]
                } else {
                    &phases[ii * phase_len * stride..(ii + 1) * phase_len * stride]
                };
                for (kj, &(first, end, j0)) in self.cols.iter().enumerate() {
                    let at = (j0 % stride) * phase_len + j0 / stride;
                    let run = &mut acc[first..end];
                    let wv = filt[ki * self.kw + kj];
                    for (a, &v) in run.iter_mut().zip(&row[at..]) {
                        *a += v * wv;
                    }
                }
            }
            for (o, &a) in line.iter_mut().zip(acc.iter()) {
                *o += a;
            }
        }
    }
}

/// A transposed convolution's shapes: `[n, c, …]` input, `[c, m/group, …]` weight, and the
/// output axes `Window::transposed` gives (shared by the CPU and GPU kernels).
pub(crate) struct TransposedGeom {
    pub n: usize,
    pub c: usize,
    /// Input channels per group.
    pub cg: usize,
    pub m: usize,
    /// Output channels per group.
    pub mg: usize,
    pub axes: Vec<WindowAxis>,
    pub out_shape: Vec<usize>,
}

impl TransposedGeom {
    pub fn new(
        x: &[usize],
        w: &[usize],
        bias: Option<usize>,
        window: &Window,
        group: usize,
        output_padding: Option<&[i64]>,
    ) -> Res<TransposedGeom> {
        let rank = x.len();
        if rank < 3 || w.len() != rank {
            return Err(format!(
                "ConvTranspose takes an input of rank ≥ 3 and a weight of the same rank, not {x:?} and {w:?}"
            ));
        }
        let (n, c, mg) = (x[0], x[1], w[1]);
        if group == 0 || c % group != 0 || w[0] != c {
            return Err(format!(
                "the input has {c} channels but the weight {w:?} with group {group} does not match"
            ));
        }
        let (cg, m) = (c / group, mg * group);
        if bias.is_some_and(|b| b != m) {
            return Err(format!("the bias must have {m} values"));
        }
        let spatial: Vec<i64> = x[2..].iter().map(|&d| d as i64).collect();
        let kernel: Vec<i64> = w[2..].iter().map(|&d| d as i64).collect();
        let axes = window.transposed(&spatial, &kernel, output_padding)?;
        let mut out_shape = vec![n, m];
        out_shape.extend(axes.iter().map(|a| a.out as usize));
        super::output_len(&out_shape, 4)?;
        Ok(TransposedGeom {
            n,
            c,
            cg,
            m,
            mg,
            axes,
            out_shape,
        })
    }
}

/// A transposed convolution (`ConvTranspose`), any number of spatial axes: every input pixel adds
/// its value times the kernel into the output, `stride` apart (`Window::transposed` gives the
/// geometry); the output starts as the bias. Weights are `[C, M/group, k…]`.
pub fn conv_transpose(
    x: &Array<f32>,
    w: &Array<f32>,
    b: Option<&Array<f32>>,
    window: &Window,
    group: usize,
    output_padding: Option<&[i64]>,
) -> Res<Array<f32>> {
    let TransposedGeom {
        n,
        c,
        cg,
        m,
        mg,
        axes,
        out_shape,
    } = TransposedGeom::new(
        &x.shape,
        &w.shape,
        b.map(|b| b.data.len()),
        window,
        group,
        output_padding,
    )?;
    let out_sp = out_shape[2..].to_vec();
    let (in_px, out_px, k_px): (usize, usize, usize) = (
        x.shape[2..].iter().product(),
        out_sp.iter().product(),
        w.shape[2..].iter().product(),
    );
    let mut y = vec![0.0f32; n * m * out_px];
    if let Some(b) = b {
        for (plane, chunk) in y.chunks_mut(out_px.max(1)).enumerate() {
            chunk.fill(b.data[plane % m]);
        }
    }
    let (in_strides, k_strides, out_strides) = (
        etch_ir::tensor::strides(&x.shape[2..]),
        etch_ir::tensor::strides(&w.shape[2..]),
        etch_ir::tensor::strides(&out_sp),
    );
    // the output offset of input pixel p and kernel tap t, if it lands inside the output
    let target = |p: usize, t: usize| -> Option<usize> {
        let mut off = 0;
        for (k, a) in axes.iter().enumerate() {
            let i = (p / in_strides[k]) % x.shape[2 + k];
            let j = (t / k_strides[k]) % w.shape[2 + k];
            let o = i as i64 * a.stride + j as i64 * a.dilation - a.pad_begin;
            if o < 0 || o >= a.out {
                return None;
            }
            off += o as usize * out_strides[k];
        }
        Some(off)
    };
    let taps: Vec<Vec<Option<usize>>> = (0..in_px)
        .map(|p| (0..k_px).map(|t| target(p, t)).collect())
        .collect();
    for img in 0..n {
        for g in 0..group {
            for ci in 0..cg {
                let ch = g * cg + ci;
                let xin = &x.data[(img * c + ch) * in_px..][..in_px];
                for co in 0..mg {
                    let wk = &w.data[(ch * mg + co) * k_px..][..k_px];
                    let yout = &mut y[(img * m + g * mg + co) * out_px..][..out_px];
                    for (p, &v) in xin.iter().enumerate() {
                        for (t, &wv) in wk.iter().enumerate() {
                            if let Some(o) = taps[p][t] {
                                yout[o] += v * wv;
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(Array::new(out_shape, y))
}
