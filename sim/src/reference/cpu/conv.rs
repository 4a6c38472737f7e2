//! Convolution: im2col + GEMM per group (1×1 stride-1 convolutions multiply the input directly),
//! and a direct kernel for depthwise layers, where a GEMM would be one row tall.

use rayon::prelude::*;

use super::super::value::Array;
use super::linear::{matmul_into, MatRef};
use super::Res;
use etch_ir::op::{Window, WindowAxis};

/// A 2-D view of a window op: 1-D ops get a unit leading axis.
pub(super) fn lift_2d(axes: Vec<WindowAxis>) -> Res<[WindowAxis; 2]> {
    let unit = WindowAxis { kernel: 1, stride: 1, dilation: 1, pad_begin: 0, pad_end: 0, out: 1 };
    match axes.as_slice() {
        [w] => Ok([unit, *w]),
        [h, w] => Ok([*h, *w]),
        _ => Err(format!("{} spatial dims are not supported (1 or 2 are)", axes.len())),
    }
}

/// ONNX Conv on an `[N, C, (H,) W]` input.
pub fn conv(x: &Array<f32>, w: &Array<f32>, b: Option<&Array<f32>>, window: &Window, group: usize) -> Res<Array<f32>> {
    let rank = x.shape.len();
    if rank < 3 || w.shape.len() != rank {
        return Err(format!("Conv needs input and weight of the same rank ≥ 3, got {:?} and {:?}", x.shape, w.shape));
    }
    let (n, c) = (x.shape[0], x.shape[1]);
    let (m, cg) = (w.shape[0], w.shape[1]);
    if group == 0 || c != cg * group || m % group != 0 {
        return Err(format!("input channels {c}, weight {:?} and group {group} do not fit", w.shape));
    }
    let spatial: Vec<i64> = x.shape[2..].iter().map(|&d| d as i64).collect();
    let kernel: Vec<i64> = w.shape[2..].iter().map(|&d| d as i64).collect();
    let [ah, aw] = lift_2d(window.resolve(&spatial, &kernel)?)?;
    let (h, wd) = if rank == 4 { (x.shape[2], x.shape[3]) } else { (1, x.shape[2]) };
    let (ho, wo) = (ah.out as usize, aw.out as usize);
    let mg = m / group;
    let k = cg * (ah.kernel * aw.kernel) as usize;
    let p = ho * wo;
    if let Some(b) = b {
        if b.data.len() != m {
            return Err(format!("the bias has {} values but the conv has {m} output channels", b.data.len()));
        }
    }
    let mut out = vec![0.0f32; n * m * p];
    let pointwise = ah.kernel == 1 && aw.kernel == 1 && ah.stride == 1 && aw.stride == 1 && [ah.pad_begin, ah.pad_end, aw.pad_begin, aw.pad_end] == [0; 4];
    if cg == 1 && mg == 1 && !pointwise {
        depthwise(x, w, &mut out, (h, wd), [ah, aw]);
    } else {
        let mut col = if pointwise { Vec::new() } else { vec![0.0f32; k * p] };
        for img in 0..n {
            for g in 0..group {
                let xin = &x.data[(img * c + g * cg) * h * wd..(img * c + (g + 1) * cg) * h * wd];
                let rhs = if pointwise {
                    MatRef::row_major(xin, k, p)
                } else {
                    im2col(xin, (h, wd), [ah, aw], &mut col);
                    MatRef::row_major(&col, k, p)
                };
                let lhs = MatRef::row_major(&w.data[g * mg * k..(g + 1) * mg * k], mg, k);
                let dst = &mut out[(img * m + g * mg) * p..(img * m + (g + 1) * mg) * p];
                matmul_into(dst, lhs, rhs, false);
            }
        }
    }
    if let Some(b) = b {
        out.par_chunks_mut(p).enumerate().for_each(|(plane, o)| {
            let bias = b.data[plane % m];
            o.iter_mut().for_each(|v| *v += bias);
        });
    }
    let mut shape = vec![n, m];
    if rank == 4 {
        shape.push(ho);
    }
    shape.push(wo);
    Ok(Array::new(shape, out))
}

/// Unrolls the receptive fields of one group into a `[cg·kh·kw, ho·wo]` matrix (zeros for padding).
fn im2col(x: &[f32], (h, w): (usize, usize), [ah, aw]: [WindowAxis; 2], col: &mut [f32]) {
    let (kh, kw, ho, wo) = (ah.kernel as usize, aw.kernel as usize, ah.out as usize, aw.out as usize);
    col.par_chunks_mut(ho * wo).enumerate().for_each(|(row, dst)| {
        let (ch, ki, kj) = (row / (kh * kw), (row / kw) % kh, row % kw);
        let plane = &x[ch * h * w..(ch + 1) * h * w];
        for oi in 0..ho {
            let ii = (oi as i64) * ah.stride - ah.pad_begin + (ki as i64) * ah.dilation;
            let line = &mut dst[oi * wo..(oi + 1) * wo];
            if ii < 0 || ii >= h as i64 {
                line.fill(0.0);
                continue;
            }
            let src = &plane[ii as usize * w..(ii as usize + 1) * w];
            for (oj, v) in line.iter_mut().enumerate() {
                let jj = (oj as i64) * aw.stride - aw.pad_begin + (kj as i64) * aw.dilation;
                *v = if jj < 0 || jj >= w as i64 { 0.0 } else { src[jj as usize] };
            }
        }
    });
}

/// One filter per channel: a direct sliding window, parallel over channels.
fn depthwise(x: &Array<f32>, w: &Array<f32>, out: &mut [f32], (h, wd): (usize, usize), [ah, aw]: [WindowAxis; 2]) {
    let (kh, kw, ho, wo) = (ah.kernel as usize, aw.kernel as usize, ah.out as usize, aw.out as usize);
    let m = w.shape[0];
    let c = x.shape[1];
    out.par_chunks_mut(ho * wo).enumerate().for_each(|(plane, dst)| {
        let (img, oc) = (plane / m, plane % m);
        // group = channels: output channel oc reads input channel oc·c/m
        let ic = oc * c / m;
        let src = &x.data[(img * c + ic) * h * wd..(img * c + ic + 1) * h * wd];
        let filt = &w.data[oc * kh * kw..(oc + 1) * kh * kw];
        for oi in 0..ho {
            for oj in 0..wo {
                let mut acc = 0.0f32;
                for ki in 0..kh {
                    let ii = (oi as i64) * ah.stride - ah.pad_begin + (ki as i64) * ah.dilation;
                    if ii < 0 || ii >= h as i64 {
                        continue;
                    }
                    for kj in 0..kw {
                        let jj = (oj as i64) * aw.stride - aw.pad_begin + (kj as i64) * aw.dilation;
                        if jj >= 0 && jj < wd as i64 {
                            acc += src[ii as usize * wd + jj as usize] * filt[ki * kw + kj];
                        }
                    }
                }
                dst[oi * wo + oj] = acc;
            }
        }
    });
}
