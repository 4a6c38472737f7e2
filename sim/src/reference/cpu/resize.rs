//! `Resize` by nearest or linear interpolation (`etch_ir::resize` gives the geometry): per output
//! axis a table of the input pixels and weights each output coordinate reads, then every output
//! element sums its taps across the axes.

use super::Res;
use crate::reference::value::Array;
use etch_ir::resize::{Interpolation, Resize};

/// Resizes `x` to the extents `scales` or `sizes` give.
pub fn resize(
    x: &Array<f32>,
    op: Resize,
    scales: Option<&[f32]>,
    sizes: Option<&[i64]>,
) -> Res<Array<f32>> {
    let (out, scale) = etch_ir::resize::geometry(&x.shape, scales, sizes)?;
    let n = super::output_len(&out, 4)?;
    if x.data.is_empty() {
        return Ok(Array::new(out, vec![0.0; n]));
    }
    // per axis, per output coordinate: (input index, weight) taps
    let taps: Vec<Vec<Vec<(usize, f32)>>> = (0..out.len())
        .map(|k| {
            (0..out[k])
                .map(|o| {
                    let c = op.original(o, scale[k], x.shape[k], out[k]);
                    match op.mode {
                        Interpolation::Nearest => vec![(op.nearest_index(c, x.shape[k]), 1.0)],
                        Interpolation::Linear => op.linear_taps(c, x.shape[k]).to_vec(),
                    }
                })
                .collect()
        })
        .collect();
    let (os, is) = (
        etch_ir::tensor::strides(&out),
        etch_ir::tensor::strides(&x.shape),
    );
    let mut y = Vec::with_capacity(n);
    // the cartesian product of the axes' taps, as (input offset, weight) pairs, built in two
    // buffers reused for every output element
    let mut acc: Vec<(usize, f32)> = Vec::new();
    let mut next: Vec<(usize, f32)> = Vec::new();
    for flat in 0..n {
        acc.clear();
        acc.push((0, 1.0));
        for k in 0..out.len() {
            let o = (flat / os[k]) % out[k];
            next.clear();
            for &(off, w) in &acc {
                next.extend(taps[k][o].iter().map(|&(i, tw)| (off + i * is[k], w * tw)));
            }
            std::mem::swap(&mut acc, &mut next);
        }
        y.push(acc.iter().fold(0.0f32, |s, &(off, w)| s + w * x.data[off]));
    }
    Ok(Array::new(out, y))
}
