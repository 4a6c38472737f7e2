//! Integer Gemm / MatMul: every row of the input is one receptive field; every output channel
//! takes its dot product with it and requantizes:
//!
//! ```text
//! acc[n,m] = bias[m] + Σ_k xd[n,k] · w[m,k]
//! y[n,m]   = clamp(zp_y + round_half_even(acc · M[m]), qmin, qmax)
//! ```

use rayon::prelude::*;

use super::super::Res;
use super::dot::{mac_block, pack_bits, Field, WeightCodes};
use super::IntLayer;
use crate::reference::value::Array;

/// Integer product of `[N, K]` int8 codes (held as i64) with the layer's `[M, K]` weights.
pub fn gemm(layer: &IntLayer, x: &Array<i64>) -> Res<Array<i64>> {
    let (m, k) = (layer.outs, layer.reduction);
    if x.shape.len() != 2 || x.shape[1] != k {
        return Err(format!(
            "the integer GEMM takes [N, {k}] inputs, got {:?}",
            x.shape
        ));
    }
    let n = x.shape[0];
    let binary = layer.binary_dot();
    let mut out = vec![0i64; n * m];
    // integer weights: every accumulator in one exact block product of the decoded rows, laid
    // out `[K, N]` (each row a field)
    if let WeightCodes::Mac(w) = &layer.weights {
        let mut cols = vec![0.0f32; k * n];
        let mut wide = false;
        for (row, xs) in x.data.chunks_exact(k.max(1)).enumerate() {
            for (j, &q) in xs.iter().enumerate() {
                let v = layer.input.value(q, j);
                wide |= v.unsigned_abs() >= 1 << 24;
                cols[j * n + row] = v as f32;
            }
        }
        if let Some(acc) = (!wide).then(|| mac_block(w, m, k, &cols, n)).flatten() {
            // each output channel's accumulators requantized at once, then laid out row by row
            let mut planes = vec![0i64; m * n];
            planes
                .par_chunks_mut(n.max(1))
                .zip(acc.par_chunks(n.max(1)))
                .enumerate()
                .for_each(|(o, (plane, acc))| layer.output_plane(o, acc, plane));
            out.par_chunks_mut(m.max(1))
                .enumerate()
                .for_each(|(row, y)| {
                    for (o, v) in y.iter_mut().enumerate() {
                        *v = planes[o * n + row];
                    }
                });
            return Ok(Array::new(vec![n, m], out));
        }
    }
    out.par_chunks_mut(m.max(1))
        .enumerate()
        .for_each(|(row, y)| {
            let xs = &x.data[row * k..(row + 1) * k];
            // a GEMM row's "channel" for a per-channel threshold is its feature index
            let f = if binary {
                let words = k.div_ceil(64).max(1);
                Field::Bits {
                    x: pack_bits(
                        xs.iter().enumerate().map(|(j, &q)| layer.input.bit(q, j)),
                        words,
                    ),
                    valid: pack_bits((0..k).map(|_| true), words),
                }
            } else {
                Field::Values(
                    xs.iter()
                        .enumerate()
                        .map(|(j, &q)| layer.input.value(q, j))
                        .collect(),
                )
            };
            for (o, v) in y.iter_mut().enumerate() {
                *v = layer.output(o, layer.weights.dot(o, k, &f)) as i64;
            }
        });
    Ok(Array::new(vec![n, m], out))
}
