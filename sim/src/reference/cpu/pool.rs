//! Pooling: MaxPool and AveragePool (pads, strides, dilations, ceil_mode, count_include_pad) with
//! onnxruntime's conventions, and the global pools.

use rayon::prelude::*;

use super::super::value::Array;
use super::conv::lift_2d;
use super::Res;
use etch_ir::op::Window;

/// What a window reduces to.
#[derive(Clone, Copy, PartialEq)]
pub enum PoolKind {
    Max,
    Average { count_include_pad: bool },
}

/// MaxPool / AveragePool over an `[N, C, (H,) W]` input.
pub fn pool(x: &Array<f32>, window: &Window, kind: PoolKind) -> Res<Array<f32>> {
    let rank = x.shape.len();
    if rank < 3 {
        return Err(format!("pooling needs an input of rank ≥ 3, got {:?}", x.shape));
    }
    let kernel = window.kernel_shape.clone().ok_or("kernel_shape is required")?;
    let spatial: Vec<i64> = x.shape[2..].iter().map(|&d| d as i64).collect();
    let [ah, aw] = lift_2d(window.resolve(&spatial, &kernel)?)?;
    if matches!(kind, PoolKind::Average { .. }) && (ah.dilation != 1 || aw.dilation != 1) {
        return Err("AveragePool with dilations is not supported".into());
    }
    let (h, w) = if rank == 4 { (x.shape[2] as i64, x.shape[3] as i64) } else { (1, x.shape[2] as i64) };
    let (ho, wo) = (ah.out as usize, aw.out as usize);
    let planes = x.shape[0] * x.shape[1];
    let mut out = vec![0.0f32; planes * ho * wo];
    out.par_chunks_mut(ho * wo).enumerate().for_each(|(plane, dst)| {
        let src = &x.data[plane * (h * w) as usize..(plane + 1) * (h * w) as usize];
        for oi in 0..ho {
            for oj in 0..wo {
                let hs = oi as i64 * ah.stride - ah.pad_begin;
                let ws = oj as i64 * aw.stride - aw.pad_begin;
                dst[oi * wo + oj] = match kind {
                    PoolKind::Max => {
                        let mut best = f32::NEG_INFINITY;
                        for ki in 0..ah.kernel {
                            let ii = hs + ki * ah.dilation;
                            if ii < 0 || ii >= h {
                                continue;
                            }
                            for kj in 0..aw.kernel {
                                let jj = ws + kj * aw.dilation;
                                if jj >= 0 && jj < w {
                                    let v = src[(ii * w + jj) as usize];
                                    if v > best || v.is_nan() {
                                        best = v;
                                    }
                                }
                            }
                        }
                        best
                    }
                    PoolKind::Average { count_include_pad } => {
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
                        let count = if count_include_pad { padded } else { (h1 - h0) * (w1 - w0) };
                        if count > 0 { sum / count as f32 } else { 0.0 }
                    }
                };
            }
        }
    });
    let mut shape = x.shape[..2].to_vec();
    if rank == 4 {
        shape.push(ho);
    }
    shape.push(wo);
    Ok(Array::new(shape, out))
}

/// GlobalAveragePool / GlobalMaxPool: one value per channel.
pub fn global_pool(x: &Array<f32>, max: bool) -> Res<Array<f32>> {
    if x.shape.len() < 3 {
        return Err(format!("global pooling needs an input of rank ≥ 3, got {:?}", x.shape));
    }
    let per: usize = x.shape[2..].iter().product();
    let out: Vec<f32> = x
        .data
        .chunks(per.max(1))
        .map(|plane| if max { plane.iter().copied().fold(f32::NEG_INFINITY, f32::max) } else { plane.iter().sum::<f32>() / per as f32 })
        .collect();
    let mut shape = x.shape[..2].to_vec();
    shape.extend(std::iter::repeat_n(1, x.shape.len() - 2));
    Ok(Array::new(shape, out))
}
