//! Integer convolution: for every output pixel, the receptive field is read once (decoded: zero
//! point off, or thresholded to ±1 bits; padding excluded), then every output channel of the group
//! takes its dot product with it and requantizes:
//!
//! ```text
//! acc[n,m,oh,ow] = bias[m] + Σ_{c,ki,kj inside the input} xd[n, g·Cg + c, oh·sh − ph + ki·dh, ow·sw − pw + kj·dw] · w[m,c,ki,kj]
//! y[n,m,oh,ow]   = clamp(zp_y + round_half_even(acc · M[m]), qmin, qmax)
//! ```

use rayon::prelude::*;

use super::super::conv::{ConvGeom, DepthwisePlane};
use super::super::Res;
use super::dot::{mac_block, pack_bits, Field, WeightCodes};
use super::{InputCode, IntLayer};
use crate::reference::value::Array;
use etch_ir::op::Window;

/// The receptive field of output pixel (oi, oj) of group `g` in one image: `cg·kh·kw` taps in
/// weight order (channel, kernel row, kernel column).
fn field(
    x: &[i64],
    geom: &ConvGeom,
    g: usize,
    (oi, oj): (usize, usize),
    input: &InputCode,
    binary: bool,
) -> Field {
    let [ah, aw] = geom.axes;
    let (kh, kw) = (ah.kernel as usize, aw.kernel as usize);
    let k = geom.cg * kh * kw;
    let mut values = Vec::with_capacity(if binary { 0 } else { k });
    let (mut bits, mut valid) = (
        Vec::with_capacity(if binary { k } else { 0 }),
        Vec::with_capacity(if binary { k } else { 0 }),
    );
    for c in 0..geom.cg {
        let ch = g * geom.cg + c;
        let plane = &x[ch * geom.h * geom.w..(ch + 1) * geom.h * geom.w];
        for ki in 0..kh {
            let ii = oi as i64 * ah.stride - ah.pad_begin + ki as i64 * ah.dilation;
            for kj in 0..kw {
                let jj = oj as i64 * aw.stride - aw.pad_begin + kj as i64 * aw.dilation;
                let inside = ii >= 0 && ii < geom.h as i64 && jj >= 0 && jj < geom.w as i64;
                let q = if inside {
                    plane[ii as usize * geom.w + jj as usize]
                } else {
                    0
                };
                if binary {
                    bits.push(inside && input.bit(q, ch));
                    valid.push(inside);
                } else {
                    values.push(if inside { input.value(q, ch) } else { 0 });
                }
            }
        }
    }
    if binary {
        let words = k.div_ceil(64).max(1);
        Field::Bits {
            x: pack_bits(bits, words),
            valid: pack_bits(valid, words),
        }
    } else {
        Field::Values(values)
    }
}

/// The receptive fields of every output pixel of group `g`, decoded (zero point off, 0 at
/// padding) into the `[cg·kh·kw × pixels]` matrix the float im2col lays out, as integers held in
/// f32, for [`mac_block`]; `None` if a value is too wide for f32 to hold exactly.
fn decoded_columns(x: &[i64], geom: &ConvGeom, g: usize, input: &InputCode) -> Option<Vec<f32>> {
    let plane = geom.h * geom.w;
    let mut wide = false;
    let decoded: Vec<f32> = (0..geom.cg * plane)
        .map(|i| {
            let ch = g * geom.cg + i / plane;
            let v = input.value(x[ch * plane + i % plane], ch);
            wide |= v.unsigned_abs() >= 1 << 24;
            v as f32
        })
        .collect();
    if wide {
        return None;
    }
    let mut col = vec![0.0f32; geom.k() * geom.pixels()];
    let rows = 0..geom.axes[0].out as usize;
    super::super::conv::im2col(&decoded, (geom.h, geom.w), geom.axes, rows, &mut col, false);
    Some(col)
}

/// The accumulators of one depthwise channel `g` (input plane `x`, weights `w`). Where every
/// partial sum is an integer below 2^24 (taps · max|x| · max|w| < 2^24), the float depthwise
/// kernel `fast` (where the plane has one; `padded` is its scratch) computes them exactly;
/// otherwise each output row sums its taps over contiguous runs of decoded values, in wrapping
/// 32-bit arithmetic (so the order of the sum does not change it).
fn depthwise_plane(
    x: &[i64],
    geom: &ConvGeom,
    (g, w): (usize, &[i32]),
    input: &InputCode,
    fast: Option<&DepthwisePlane>,
    padded: &mut [f32],
) -> Vec<i32> {
    let [ah, aw] = geom.axes;
    let (kh, kw) = (ah.kernel as usize, aw.kernel as usize);
    let (ho, wo) = (ah.out as usize, aw.out as usize);
    let stride = aw.stride as usize;
    let xd: Vec<i32> = x.iter().map(|&q| input.value(q, g)).collect();
    let peak = |v: &[i32]| v.iter().map(|v| v.unsigned_abs() as u64).max().unwrap_or(0);
    let exact = (w.len() as u64).saturating_mul(peak(&xd).saturating_mul(peak(w))) < 1 << 24;
    if let Some(fast) = fast.filter(|_| exact) {
        let xf: Vec<f32> = xd.iter().map(|&v| v as f32).collect();
        let wf: Vec<f32> = w.iter().map(|&v| v as f32).collect();
        let mut acc = vec![0.0f32; ho * wo];
        fast.run(&xf, &wf, &mut acc, padded);
        return acc.iter().map(|&v| v as i32).collect();
    }
    let cols: Vec<(usize, usize, usize)> = (0..kw)
        .map(|kj| super::super::conv::column_run(aw, kj, geom.w))
        .collect();
    let mut acc = vec![0i32; ho * wo];
    for (oi, line) in acc.chunks_exact_mut(wo).enumerate() {
        for ki in 0..kh {
            let ii = oi as i64 * ah.stride - ah.pad_begin + ki as i64 * ah.dilation;
            if ii < 0 || ii >= geom.h as i64 {
                continue;
            }
            let row = &xd[ii as usize * geom.w..(ii as usize + 1) * geom.w];
            for (kj, &(first, end, j0)) in cols.iter().enumerate() {
                let wv = w[ki * kw + kj];
                for (a, &v) in line[first..end]
                    .iter_mut()
                    .zip(row[j0..].iter().step_by(stride))
                {
                    *a = a.wrapping_add(v.wrapping_mul(wv));
                }
            }
        }
    }
    acc
}

/// Integer Conv on int8 codes `[N, C, (H,) W]` (held as i64); returns the output codes.
pub fn conv(layer: &IntLayer, window: &Window, group: usize, x: &Array<i64>) -> Res<Array<i64>> {
    let w_shape = &layer.weight_dims;
    let geom = ConvGeom::new(&x.shape, w_shape, None, window, group)?;
    let (n, c, m, mg) = (geom.n, geom.c, geom.m, geom.mg);
    let (ho, wo) = (geom.axes[0].out as usize, geom.axes[1].out as usize);
    let p = ho * wo;
    let k = geom.k();
    let binary = layer.binary_dot();
    let mut out = vec![0i64; n * m * p];
    for img in 0..n {
        let xs = &x.data[img * c * geom.h * geom.w..(img + 1) * c * geom.h * geom.w];
        // depthwise with integer weights (one channel in and out per group): each channel
        // slides its window directly, channels in parallel
        if let (WeightCodes::Mac(w), 1, 1) = (&layer.weights, geom.cg, mg) {
            let fast = DepthwisePlane::new((geom.h, geom.w), geom.axes);
            out[img * m * p..(img + 1) * m * p]
                .par_chunks_mut(p)
                .enumerate()
                .for_each_init(
                    || vec![0.0f32; fast.as_ref().map_or(0, DepthwisePlane::scratch_len)],
                    |padded, (g, plane)| {
                        let xg = &xs[g * geom.h * geom.w..(g + 1) * geom.h * geom.w];
                        let wg = (g, &w[g * k..(g + 1) * k]);
                        let acc =
                            depthwise_plane(xg, &geom, wg, &layer.input, fast.as_ref(), padded);
                        layer.output_plane(g, &acc, plane);
                    },
                );
            continue;
        }
        for g in 0..group {
            let planes = &mut out[(img * m + g * mg) * p..(img * m + (g + 1) * mg) * p];
            // integer weights: every accumulator of the group in one exact matrix product
            if let WeightCodes::Mac(w) = &layer.weights {
                let acc = decoded_columns(xs, &geom, g, &layer.input)
                    .and_then(|fields| mac_block(&w[g * mg * k..], mg, k, &fields, p));
                if let Some(acc) = acc {
                    planes
                        .par_chunks_mut(p)
                        .zip(acc.par_chunks(p))
                        .enumerate()
                        .for_each(|(j, (plane, acc))| layer.output_plane(g * mg + j, acc, plane));
                    continue;
                }
            }
            let fields: Vec<Field> = (0..p)
                .into_par_iter()
                .map(|pix| field(xs, &geom, g, (pix / wo, pix % wo), &layer.input, binary))
                .collect();
            planes.par_chunks_mut(p).enumerate().for_each(|(j, plane)| {
                let (o, output) = (g * mg + j, layer.requantizer(g * mg + j));
                for (y, f) in plane.iter_mut().zip(&fields) {
                    *y = output(layer.weights.dot(o, k, f)) as i64;
                }
            });
        }
    }
    Ok(Array::new(geom.out_shape, out))
}
