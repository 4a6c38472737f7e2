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
    let n = out
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| (n as u64) * 4 <= etch_ir::limits::DEFAULT_TENSOR_BYTES)
        .ok_or("the resized tensor would be too large")?;
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
    for flat in 0..n {
        // the cartesian product of the axes' taps, as (input offset, weight) pairs
        let mut acc: Vec<(usize, f32)> = vec![(0, 1.0)];
        for k in 0..out.len() {
            let o = (flat / os[k]) % out[k];
            let (t, stride) = (&taps[k][o], is[k]);
            acc = acc
                .iter()
                .flat_map(|&(off, w)| t.iter().map(move |&(i, tw)| (off + i * stride, w * tw)))
                .collect();
        }
        y.push(acc.iter().fold(0.0f32, |s, &(off, w)| s + w * x.data[off]));
    }
    Ok(Array::new(out, y))
}
