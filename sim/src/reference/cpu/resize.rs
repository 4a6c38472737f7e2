//! `Resize` by nearest or linear interpolation (`etch_ir::resize` gives the geometry): per output
//! axis a table of the input pixels and weights each output coordinate reads, then every output
//! element sums its taps across the axes. The GPU's kernel reads the same tables.

use super::Res;
use crate::reference::value::{Array, Value};
use etch_ir::resize::{Interpolation, Resize};

/// What a `Resize` reads: its output shape, and per output axis and coordinate the input indices
/// and weights it interpolates (the first `count` of the pair: 1 for nearest, 2 for linear).
pub(crate) struct Taps {
    pub out: Vec<usize>,
    pub per_axis: Vec<Vec<[(usize, f32); 2]>>,
    pub count: usize,
}

/// The taps of a `Resize` of an input of `shape`, whose scales (input 3) or sizes (input 4) are
/// among `ins`.
pub(crate) fn taps(shape: &[usize], op: Resize, ins: &[Option<&Value>]) -> Res<Taps> {
    let scales = super::opt_f32_in(ins, 2)?.map(|s| s.data.as_slice());
    let sizes = super::ints_in(ins, 3)?;
    let (out, scale) = etch_ir::resize::geometry(shape, scales, sizes.as_deref())?;
    super::output_len(&out, 4)?;
    let per_axis = (0..out.len())
        .map(|k| {
            (0..out[k])
                .map(|o| {
                    let c = op.original(o, scale[k], shape[k], out[k]);
                    match op.mode {
                        Interpolation::Nearest => {
                            let i = op.nearest_index(c, shape[k]);
                            [(i, 1.0), (i, 0.0)]
                        }
                        Interpolation::Linear => op.linear_taps(c, shape[k]),
                    }
                })
                .collect()
        })
        .collect();
    let count = match op.mode {
        Interpolation::Nearest => 1,
        Interpolation::Linear => 2,
    };
    Ok(Taps {
        out,
        per_axis,
        count,
    })
}

/// Resizes `x` by its taps.
pub fn resize(x: &Array<f32>, taps: &Taps) -> Array<f32> {
    let out = &taps.out;
    let n: usize = out.iter().product();
    if x.data.is_empty() {
        return Array::new(out.clone(), vec![0.0; n]);
    }
    let (os, is) = (
        etch_ir::tensor::strides(out),
        etch_ir::tensor::strides(&x.shape),
    );
    let mut y = Vec::with_capacity(n);
    // the cartesian product of the axes' taps (axis 0's outermost), as (input offset, weight)
    // pairs, built in two buffers reused for every output element
    let mut acc: Vec<(usize, f32)> = Vec::new();
    let mut next: Vec<(usize, f32)> = Vec::new();
    for flat in 0..n {
        acc.clear();
        acc.push((0, 1.0));
        for k in 0..out.len() {
            let o = (flat / os[k]) % out[k];
            next.clear();
            for &(off, w) in &acc {
                next.extend(
                    taps.per_axis[k][o][..taps.count]
                        .iter()
                        .map(|&(i, tw)| (off + i * is[k], w * tw)),
                );
            }
            std::mem::swap(&mut acc, &mut next);
        }
        y.push(acc.iter().fold(0.0f32, |s, &(off, w)| s + w * x.data[off]));
    }
    Array::new(out.clone(), y)
}
