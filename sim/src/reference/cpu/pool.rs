//! Pooling: MaxPool and AveragePool (pads, strides, dilations, ceil_mode, count_include_pad) with
//! onnxruntime's conventions, and the global pools.

use std::ops::Range;

use rayon::prelude::*;

use super::super::value::Array;
use super::conv::{column_run, lift_2d};
use super::Res;
use etch_ir::op::{Reduction, Window, WindowAxis};

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
    // per kernel column, the output columns it reaches inside the input and the input column the
    // first of them reads: the same for every row and plane
    let col_runs: Vec<(usize, usize, usize)> = (0..aw.kernel.max(0) as usize)
        .map(|kj| column_run(aw, kj, w as usize))
        .collect();
    // a strided row is read split into its column phases (phase `p` holds columns `p, p + s, …`
    // from `phase_at[p]`), so every tap reads a contiguous run and the maxima vectorize
    // (only where a stride is at most the row: a larger one reads each row at most once anyway)
    let s = aw.stride as usize;
    let phased = s > 1 && s <= w as usize;
    let phase_at: Vec<usize> = (0..if phased { s } else { 1 })
        .scan(0, |at, p| {
            let here = *at;
            *at += (w as usize).saturating_sub(p).div_ceil(s);
            Some(here)
        })
        .collect();
    out.par_chunks_mut(ho * wo).enumerate().for_each_init(
        || vec![0.0f32; if phased { w as usize } else { 0 }],
        |phases, (plane, dst)| {
            let src = &x.data[plane * (h * w) as usize..(plane + 1) * (h * w) as usize];
            for (oi, line) in dst.chunks_exact_mut(wo).enumerate() {
                let hs = oi as i64 * ah.stride - ah.pad_begin;
                match kind {
                    PoolKind::Max => {
                        // a window tap at a time for the whole output row: independent maxima in
                        // flight, every column a tap reaches read by one strided run
                        line.fill(f32::NEG_INFINITY);
                        for ki in taps(hs, ah.kernel, ah.dilation, h) {
                            let row = &src[((hs + ki * ah.dilation) * w) as usize..][..w as usize];
                            if phased {
                                for (p, &at) in phase_at.iter().enumerate() {
                                    let col = row[p..].iter().step_by(s);
                                    phases[at..].iter_mut().zip(col).for_each(|(d, &v)| *d = v);
                                }
                            }
                            for &(first, end, j0) in &col_runs {
                                let line = &mut line[first..end];
                                if phased {
                                    max_into(line, &phases[phase_at[j0 % s] + j0 / s..]);
                                } else if s == 1 {
                                    max_into(line, &row[j0..]);
                                } else {
                                    max_into(line, row[j0..].iter().step_by(s));
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
        },
    );
    Ok(Array::new(geom.out_shape, out))
}

/// Each `best` becomes the larger of it and its run's value (NaN wins, as in onnxruntime).
fn max_into<'a>(best: &mut [f32], run: impl IntoIterator<Item = &'a f32>) {
    for (b, &v) in best.iter_mut().zip(run) {
        *b = if v > *b || v.is_nan() { v } else { *b };
    }
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

/// GlobalAveragePool / GlobalMaxPool: one value per channel, the reduction over the spatial axes.
pub fn global_pool(x: &Array<f32>, max: bool) -> Res<Array<f32>> {
    let shape = global_shape(&x.shape)?;
    let kind = if max { Reduction::Max } else { Reduction::Mean };
    let axes: Vec<usize> = (2..x.shape.len()).collect();
    let y = super::elementwise::reduce(x, kind, &axes, true);
    debug_assert_eq!(y.shape, shape);
    Ok(y)
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// MaxPool on random planes, windows, strides (past the row too), dilations and pads:
        /// each output the largest input its window covers inside the input (NaN when one is
        /// NaN), `-inf` for a window all on padding.
        #[test]
        fn max_pool_is_the_definition(
            (h, wd) in (1usize..9, 1usize..19),
            (kh, kw) in (1i64..5, 1i64..5),
            strides in [1i64..4, 1i64..25],
            dilations in [1i64..3, 1i64..3],
            pads in [0i64..3, 0i64..3, 0i64..3, 0i64..3],
            nan in proptest::option::of(0usize..200),
            seed in any::<u64>(),
        ) {
            let window = super::super::test_window(
                Some(vec![kh, kw]),
                Some(strides.to_vec()),
                pads.to_vec(),
                Some(dilations.to_vec()),
            );
            let mut data = super::super::test_values(seed)(2 * h * wd);
            if let Some(k) = nan {
                let at = k % data.len();
                data[at] = f32::NAN;
            }
            let x = Array::new(vec![1, 2, h, wd], data);
            let Ok(y) = pool(&x, &window, PoolKind::Max) else {
                // a window that does not fit the padded input: the geometry's error
                return Ok(());
            };
            let (ho, wo) = (y.shape[2], y.shape[3]);
            for (k, &got) in y.data.iter().enumerate() {
                let (plane, oi, oj) = (k / (ho * wo), k / wo % ho, k % wo);
                let mut want = f32::NEG_INFINITY;
                for ki in 0..kh {
                    for kj in 0..kw {
                        let ii = oi as i64 * strides[0] + ki * dilations[0] - pads[0];
                        let ij = oj as i64 * strides[1] + kj * dilations[1] - pads[1];
                        if (0..h as i64).contains(&ii) && (0..wd as i64).contains(&ij) {
                            let v = x.data[(plane * h + ii as usize) * wd + ij as usize];
                            if v.is_nan() || want.is_nan() {
                                want = f32::NAN;
                            } else {
                                want = want.max(v);
                            }
                        }
                    }
                }
                prop_assert!(
                    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                    "output ({plane}, {oi}, {oj}): {got} against {want}"
                );
            }
        }
    }
}
