//! Pooling: MaxPool and AveragePool (pads, strides, dilations, ceil_mode, count_include_pad) with
//! onnxruntime's conventions, and the global pools.

use std::ops::Range;

use rayon::prelude::*;

use super::super::value::Array;
use super::conv::lift_2d;
use super::Res;
use etch_ir::op::{Window, WindowAxis};

/// What a window reduces to.
#[derive(Clone, Copy, PartialEq)]
pub enum PoolKind {
    Max,
    Average { count_include_pad: bool },
}

/// A pooling window resolved over an input: what any executor needs to slide it.
pub(crate) struct PoolGeom {
    /// Batch × channels.
    pub planes: usize,
    pub h: i64,
    pub w: i64,
    pub axes: [WindowAxis; 2],
    pub out_shape: Vec<usize>,
}

impl PoolGeom {
    /// Checks the input's rank and resolves the window (with `ceil_mode`) over it.
    pub fn new(x: &[usize], window: &Window, kind: PoolKind) -> Res<PoolGeom> {
        let rank = x.len();
        if rank < 3 {
            return Err(format!("pooling needs an input of rank ≥ 3, got {x:?}"));
        }
        let kernel = window
            .kernel_shape
            .clone()
            .ok_or("kernel_shape is required")?;
        let spatial: Vec<i64> = x[2..].iter().map(|&d| d as i64).collect();
        let [ah, aw] = lift_2d(window.resolve(&spatial, &kernel)?)?;
        if matches!(kind, PoolKind::Average { .. }) && (ah.dilation != 1 || aw.dilation != 1) {
            return Err("AveragePool with dilations is not supported".into());
        }
        let (h, w) = if rank == 4 {
            (x[2] as i64, x[3] as i64)
        } else {
            (1, x[2] as i64)
        };
        let mut out_shape = x[..2].to_vec();
        if rank == 4 {
            out_shape.push(ah.out as usize);
        }
        out_shape.push(aw.out as usize);
        Ok(PoolGeom {
            planes: x[0] * x[1],
            h,
            w,
            axes: [ah, aw],
            out_shape,
        })
    }
}

/// MaxPool / AveragePool over an `[N, C, (H,) W]` input.
pub fn pool(x: &Array<f32>, window: &Window, kind: PoolKind) -> Res<Array<f32>> {
    let geom = PoolGeom::new(&x.shape, window, kind)?;
    let PoolGeom {
        planes,
        h,
        w,
        axes: [ah, aw],
        ..
    } = geom;
    let (ho, wo) = (ah.out as usize, aw.out as usize);
    let mut out = vec![0.0f32; planes * ho * wo];
    if out.is_empty() {
        return Ok(Array::new(geom.out_shape, out));
    }
    // per output column, the kernel columns inside the input: the same for every row and plane
    let col_taps: Vec<Range<i64>> = (0..wo)
        .map(|oj| {
            taps(
                oj as i64 * aw.stride - aw.pad_begin,
                aw.kernel,
                aw.dilation,
                w,
            )
        })
        .collect();
    out.par_chunks_mut(ho * wo)
        .enumerate()
        .for_each(|(plane, dst)| {
            let src = &x.data[plane * (h * w) as usize..(plane + 1) * (h * w) as usize];
            for (oi, line) in dst.chunks_exact_mut(wo).enumerate() {
                let hs = oi as i64 * ah.stride - ah.pad_begin;
                match kind {
                    PoolKind::Max => {
                        // a window row at a time for the whole output row: independent maxima in flight
                        line.fill(f32::NEG_INFINITY);
                        for ki in taps(hs, ah.kernel, ah.dilation, h) {
                            let row = &src[((hs + ki * ah.dilation) * w) as usize..][..w as usize];
                            for (oj, (best, kjs)) in line.iter_mut().zip(&col_taps).enumerate() {
                                let ws = oj as i64 * aw.stride - aw.pad_begin;
                                for kj in kjs.clone() {
                                    let v = row[(ws + kj * aw.dilation) as usize];
                                    // NaN wins, as in onnxruntime
                                    *best = if v > *best || v.is_nan() { v } else { *best };
                                }
                            }
                        }
                    }
                    PoolKind::Average { count_include_pad } => {
                        for (oj, o) in line.iter_mut().enumerate() {
                            let ws = oj as i64 * aw.stride - aw.pad_begin;
                            // the window is clipped to the padded input, then to the input (onnxruntime)
                            let he = (hs + ah.kernel).min(h + ah.pad_end);
                            let we = (ws + aw.kernel).min(w + aw.pad_end);
                            let padded = (he - hs) * (we - ws);
                            let (h0, h1, w0, w1) = (hs.max(0), he.min(h), ws.max(0), we.min(w));
                            let mut sum = 0.0f32;
                            for ii in h0..h1 {
                                for jj in w0..w1 {
                                    sum += src[(ii * w + jj) as usize];
                                }
                            }
                            let count = if count_include_pad {
                                padded
                            } else {
                                (h1 - h0) * (w1 - w0)
                            };
                            *o = if count > 0 { sum / count as f32 } else { 0.0 };
                        }
                    }
                }
            }
        });
    Ok(Array::new(geom.out_shape, out))
}

/// The kernel taps `k` of a window starting at `start` whose input index `start + k·dilation`
/// lies inside `[0, len)`: one range, so the loops over them need no bounds tests.
fn taps(start: i64, kernel: i64, dilation: i64, len: i64) -> Range<i64> {
    let first = if start >= 0 {
        0
    } else {
        (-start + dilation - 1) / dilation
    };
    let end = if len > start {
        (len - start + dilation - 1) / dilation
    } else {
        0
    };
    first.min(kernel)..end.min(kernel)
}

/// GlobalAveragePool / GlobalMaxPool: one value per channel.
pub fn global_pool(x: &Array<f32>, max: bool) -> Res<Array<f32>> {
    let shape = global_shape(&x.shape)?;
    let per: usize = x.shape[2..].iter().product();
    let out: Vec<f32> = x
        .data
        .chunks(per.max(1))
        .map(|plane| {
            if max {
                plane.iter().copied().fold(f32::NEG_INFINITY, f32::max)
            } else {
                plane.iter().sum::<f32>() / per as f32
            }
        })
        .collect();
    Ok(Array::new(shape, out))
}

/// The output shape of a global pool: `[N, C, 1, …]`.
pub(crate) fn global_shape(x: &[usize]) -> Res<Vec<usize>> {
    if x.len() < 3 {
        return Err(format!(
            "global pooling needs an input of rank ≥ 3, got {x:?}"
        ));
    }
    let mut shape = x[..2].to_vec();
    shape.extend(std::iter::repeat_n(1, x.len() - 2));
    Ok(shape)
}
