//! 3×3 stride-1 convolutions by Winograd's minimal filtering F(2×2, 3×3) (Lavin and Gray, "Fast
//! Algorithms for Convolutional Neural Networks", CVPR 2016): each 2×2 output tile is
//! `Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A` of its 4×4 input tile `d`, so the products become 16 matrix
//! products `U[ξ] (M×C) · V[ξ] (C×tiles)`, 16 multiply-adds per tile and channel pair where the
//! direct convolution spends 36. The transforms only add and halve, so the result stays within
//! a few float32 roundings of the direct sum (the executor's tests hold it to onnxruntime's).

use rayon::prelude::*;

use super::conv::ConvGeom;
use super::linear::{matmul_into, MatRef};
use crate::reference::value::Array;

/// Whether the layer is one this kernel takes, and where it pays: a 3×3 stride-1 undilated
/// convolution of one group, wide enough that 16 matrix products beat one.
pub(crate) fn suits(g: &ConvGeom) -> bool {
    let [ah, aw] = g.axes;
    [ah, aw]
        .iter()
        .all(|a| a.kernel == 3 && a.stride == 1 && a.dilation == 1)
        && g.group == 1
        && g.c >= 16
        && g.m >= 16
        && ah.out >= 4
        && aw.out >= 4
}

/// `G g Gᵀ` of every filter of a `[M, C, 3, 3]` weight, as `[16][M][C]`; `None` for another
/// shape (the plan makes them once, for the layers [`suits`] takes).
pub(crate) fn filters(weight: &Array<f32>) -> Option<Vec<f32>> {
    let [m, c, 3, 3] = weight.shape[..] else {
        return None;
    };
    if m < 16 || c < 16 {
        return None;
    }
    let w = &weight.data;
    let mut u = vec![0.0f32; 16 * m * c];
    for (f, g) in w.chunks_exact(9).enumerate() {
        // G g: 4×3
        let mut t = [[0.0f32; 3]; 4];
        for j in 0..3 {
            let (a, b, d) = (g[j], g[3 + j], g[6 + j]);
            t[0][j] = a;
            t[1][j] = 0.5 * (a + b + d);
            t[2][j] = 0.5 * (a - b + d);
            t[3][j] = d;
        }
        // (G g) Gᵀ: 4×4
        for (i, row) in t.iter().enumerate() {
            let (a, b, d) = (row[0], row[1], row[2]);
            let v = [a, 0.5 * (a + b + d), 0.5 * (a - b + d), d];
            for (j, &x) in v.iter().enumerate() {
                u[(i * 4 + j) * m * c + f] = x;
            }
        }
    }
    Some(u)
}

/// Adds the convolution of one image `x` (`[C, h, w]`) with the transformed filters `u`
/// ([`filters`]) onto `out` (`[M, ho, wo]`, holding the bias).
pub(crate) fn conv3x3(x: &[f32], u: &[f32], out: &mut [f32], g: &ConvGeom) {
    let [ah, aw] = g.axes;
    let (c, m, h, wd) = (g.c, g.m, g.h, g.w);
    let (ho, wo) = (ah.out as usize, aw.out as usize);
    let (th, tw) = (ho.div_ceil(2), wo.div_ceil(2));
    let tiles = th * tw;
    // V = Bᵀ d B: [C][16][tiles] (each channel's 16 transforms in its own chunk), one channel
    // and one row of tiles at a time, every operation running along the row (tile j reads
    // padded columns 2j..2j + 4)
    let width = 2 * tw + 2;
    let mut v = vec![0.0f32; 16 * c * tiles];
    v.par_chunks_exact_mut(16 * tiles)
        .zip(x.par_chunks_exact(h * wd))
        .for_each(|(vc, xc)| {
            let mut rows = vec![0.0f32; 4 * width];
            let mut t = vec![0.0f32; 4 * width];
            for ti in 0..th {
                // the tile row's 4 input rows, zero-padded
                for (i, row) in rows.chunks_exact_mut(width).enumerate() {
                    row.fill(0.0);
                    let r = (2 * ti + i) as i64 - ah.pad_begin;
                    if r < 0 || r >= h as i64 {
                        continue;
                    }
                    let line = &xc[r as usize * wd..(r as usize + 1) * wd];
                    for (j, slot) in row.iter_mut().enumerate() {
                        let col = j as i64 - aw.pad_begin;
                        if col >= 0 && col < wd as i64 {
                            *slot = line[col as usize];
                        }
                    }
                }
                // Bᵀ d: rows combined element by element
                let (r0, rest) = rows.split_at(width);
                let (r1, rest) = rest.split_at(width);
                let (r2, r3) = rest.split_at(width);
                for j in 0..width {
                    t[j] = r0[j] - r2[j];
                    t[width + j] = r1[j] + r2[j];
                    t[2 * width + j] = r2[j] - r1[j];
                    t[3 * width + j] = r1[j] - r3[j];
                }
                // (Bᵀ d) B: per row of the transform, four columns of every tile
                for i in 0..4 {
                    let ti_row = &t[i * width..(i + 1) * width];
                    let at = |j: usize| (i * 4 + j) * tiles + ti * tw;
                    for tj in 0..tw {
                        let e = &ti_row[2 * tj..2 * tj + 4];
                        vc[at(0) + tj] = e[0] - e[2];
                        vc[at(1) + tj] = e[1] + e[2];
                        vc[at(2) + tj] = e[2] - e[1];
                        vc[at(3) + tj] = e[1] - e[3];
                    }
                }
            }
        });
    // M[ξ] = U[ξ] · V[ξ]: [16][M][tiles]
    let mut prod = vec![0.0f32; 16 * m * tiles];
    prod.par_chunks_exact_mut(m * tiles)
        .enumerate()
        .for_each(|(xi, dst)| {
            matmul_into(
                dst,
                MatRef::row_major(&u[xi * m * c..(xi + 1) * m * c], m, c),
                // V[ξ] is C×tiles with rows 16·tiles apart
                MatRef {
                    data: &v[xi * tiles..],
                    rows: c,
                    cols: tiles,
                    rs: 16 * tiles,
                    cs: 1,
                },
                false,
            );
        });
    // Y = Aᵀ M A per channel and tile, added onto the bias, a row of tiles at a time
    out.par_chunks_exact_mut(ho * wo)
        .enumerate()
        .for_each(|(oc, y)| {
            let mut r = vec![0.0f32; 8 * tw];
            for ti in 0..th {
                let e = |xi: usize| {
                    let at = (xi * m + oc) * tiles + ti * tw;
                    &prod[at..at + tw]
                };
                // Aᵀ M: two rows of four, each along the row of tiles
                for j in 0..4 {
                    let (a, b, c2, d) = (e(j), e(4 + j), e(8 + j), e(12 + j));
                    for tj in 0..tw {
                        r[j * tw + tj] = a[tj] + b[tj] + c2[tj];
                        r[(4 + j) * tw + tj] = b[tj] - c2[tj] - d[tj];
                    }
                }
                // (Aᵀ M) A
                for half in 0..2 {
                    let oi = 2 * ti + half;
                    if oi >= ho {
                        continue;
                    }
                    let row = &mut y[oi * wo..(oi + 1) * wo];
                    let q = |j: usize| &r[(half * 4 + j) * tw..(half * 4 + j + 1) * tw];
                    let (q0, q1, q2, q3) = (q(0), q(1), q(2), q(3));
                    for tj in 0..tw {
                        row[2 * tj] += q0[tj] + q1[tj] + q2[tj];
                        if 2 * tj + 1 < wo {
                            row[2 * tj + 1] += q1[tj] - q2[tj] - q3[tj];
                        }
                    }
                }
            }
        });
}
