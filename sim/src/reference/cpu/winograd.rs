//! 3×3 stride-1 convolutions by Winograd's minimal filtering F(2×2, 3×3) (Lavin and Gray, "Fast
//! Algorithms for Convolutional Neural Networks", CVPR 2016): each 2×2 output tile is
//! `Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A` of its 4×4 input tile `d`, so the products become 16 matrix
//! products `U[ξ] (M×C) · V[ξ] (C×tiles)`, 16 multiply-adds per tile and channel pair where the
//! direct convolution spends 36. The transforms only add and halve, so the result stays within
//! a few float32 roundings of the direct sum (the executor's tests hold it to onnxruntime's).

use std::ops::Range;

use rayon::prelude::*;

use super::blocks::{whole_blocks, SharedOut};
use super::conv::{bias, put_scratch, take_scratch, ConvGeom};
use super::elementwise::Activation;
use super::linear::{matmul_into, MatRef};
use crate::reference::value::Array;

/// Tiles a block of the image's tile rows aims at: 16 transforms of this many tiles for every
/// input channel and output channel (some 0.5 MB for 64 channels) stay in the core's cache.
const BLOCK_TILES: usize = 64;

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

/// Writes the convolution of one image `x` (`[C, h, w]`) with the transformed filters `u`
/// ([`filters`]) plus `biases` into `out` (`[M, ho, wo]` from the given element), then applies
/// `post` to each output row as it is finished.
pub(crate) fn conv3x3(
    x: &[f32],
    u: &[f32],
    (out, base): (&SharedOut, usize),
    biases: Option<&[f32]>,
    g: &ConvGeom,
    post: Option<Activation>,
) {
    let [ah, aw] = g.axes;
    let (c, m, h, wd) = (g.c, g.m, g.h, g.w);
    let (ho, wo) = (ah.out as usize, aw.out as usize);
    let (th, tw) = (ho.div_ceil(2), wo.div_ceil(2));
    // a block of whole tile rows at a time, about BLOCK_TILES tiles, so that its transformed
    // input and products stay in cache between the three steps
    let block_rows = (BLOCK_TILES / tw).clamp(1, th);
    let starts: Vec<usize> = (0..th).step_by(block_rows).collect();
    // with enough blocks, each thread runs whole blocks; else each step is split among them
    let whole = whole_blocks(starts.len());
    let min_len = if whole { usize::MAX } else { 1 };
    let run = |&ti0: &usize| {
        let block = Block {
            rows: ti0..(ti0 + block_rows).min(th),
            tw,
        };
        let tiles = block.tiles();
        let mut scratch = take_scratch(16 * (c + m) * tiles);
        let (v, prod) = scratch[..16 * (c + m) * tiles].split_at_mut(16 * c * tiles);
        // V = Bᵀ d B: [C][16][tiles], each channel's 16 transforms in its own chunk
        v.par_chunks_exact_mut(16 * tiles)
            .zip(x.par_chunks_exact(h * wd))
            .with_min_len(min_len)
            .for_each(|(vc, xc)| each_path!(input_tiles(xc, vc, &block, g)));
        // M[ξ] = U[ξ] · V[ξ]: [16][M][tiles]
        prod.par_chunks_exact_mut(m * tiles)
            .enumerate()
            .with_min_len(min_len)
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
                    false,
                );
            });
        // Y = Aᵀ M A per channel and tile, added onto the bias: the block's output rows of
        // each plane
        let prod = &*prod;
        let out_rows = 2 * block.rows.start * wo..(2 * block.rows.end).min(ho) * wo;
        (0..m).into_par_iter().with_min_len(min_len).for_each(|oc| {
            let plane = base + oc * ho * wo;
            let rows = plane + out_rows.start..plane + out_rows.end;
            // SAFETY: this block alone writes these rows of the plane
            let y = unsafe { out.fill(rows, bias(biases, oc, m)) };
            each_path!(output_tiles(prod, oc, m, y, &block, g, post))
        });
        put_scratch(scratch);
    };
    if whole {
        starts.par_iter().for_each(run);
    } else {
        starts.iter().for_each(run);
    }
}

/// Whole rows of tiles of one image: a block the three steps run on in turn.
struct Block {
    rows: Range<usize>,
    /// Tiles per row.
    tw: usize,
}

impl Block {
    fn tiles(&self) -> usize {
        self.rows.len() * self.tw
    }
}

/// One input channel's `Bᵀ d B` for every tile of `block`, as `[16][tiles]`. Tile `j` reads
/// padded columns `2j..2j + 4`, so each padded input row is split into its even and odd columns:
/// then every operation runs along a contiguous row (and vectorizes), tile `j` reading the even
/// and odd columns `j` and `j + 1`.
#[inline(always)]
fn input_tiles(xc: &[f32], vc: &mut [f32], block: &Block, g: &ConvGeom) {
    let [ah, aw] = g.axes;
    let (h, wd, tw, tiles) = (g.h, g.w, block.tw, block.tiles());
    let half = tw + 1;
    // the tile row's 4 input rows, zero-padded, as [row][even | odd][half]
    let mut rows = vec![0.0f32; 8 * half];
    let mut t = vec![0.0f32; 8 * half];
    for ti in block.rows.clone() {
        for (i, row) in rows.chunks_exact_mut(2 * half).enumerate() {
            let r = (2 * ti + i) as i64 - ah.pad_begin;
            row.fill(0.0);
            if r < 0 || r >= h as i64 {
                continue;
            }
            let line = &xc[r as usize * wd..(r as usize + 1) * wd];
            // input column c is padded column c + pad (pads are never negative): the line's
            // pairs of columns go to one phase and the other, side by side
            let (even, odd) = row.split_at_mut(half);
            let pad = aw.pad_begin as usize;
            let (first, second) = if pad.is_multiple_of(2) {
                (even.get_mut(pad / 2..), odd.get_mut(pad / 2..))
            } else {
                (odd.get_mut(pad / 2..), even.get_mut(pad / 2 + 1..))
            };
            let (first, second) = (first.unwrap_or_default(), second.unwrap_or_default());
            let pairs = line.chunks_exact(2);
            let last = pairs.remainder().first();
            let n = pairs.len();
            for ((a, b), pair) in first.iter_mut().zip(second.iter_mut()).zip(pairs) {
                *a = pair[0];
                *b = pair[1];
            }
            if let (Some(&x), Some(slot)) = (last, first.get_mut(n)) {
                *slot = x;
            }
        }
        // Bᵀ d: rows combined element by element
        let (r0, rest) = rows.split_at(2 * half);
        let (r1, rest) = rest.split_at(2 * half);
        let (r2, r3) = rest.split_at(2 * half);
        let (t0, rest) = t.split_at_mut(2 * half);
        let (t1, rest) = rest.split_at_mut(2 * half);
        let (t2, t3) = rest.split_at_mut(2 * half);
        for j in 0..2 * half {
            t0[j] = r0[j] - r2[j];
            t1[j] = r1[j] + r2[j];
            t2[j] = r2[j] - r1[j];
            t3[j] = r1[j] - r3[j];
        }
        // (Bᵀ d) B: per row of the transform, four columns of every tile
        for (i, ti_row) in t.chunks_exact(2 * half).enumerate() {
            let (even, odd) = ti_row.split_at(half);
            let at = |j: usize| (i * 4 + j) * tiles + (ti - block.rows.start) * tw;
            let (e0, e2) = (&even[..tw], &even[1..]);
            let (o1, o3) = (&odd[..tw], &odd[1..]);
            let mut put = |j: usize, f: fn(f32, f32) -> f32, a: &[f32], b: &[f32]| {
                let dst = vc[at(j)..at(j) + tw].iter_mut();
                for (d, (&a, &b)) in dst.zip(a[..tw].iter().zip(&b[..tw])) {
                    *d = f(a, b);
                }
            };
            put(0, |a, b| a - b, e0, e2);
            put(1, |a, b| a + b, o1, e2);
            put(2, |a, b| b - a, o1, e2);
            put(3, |a, b| a - b, o1, o3);
        }
    }
}

/// Output channel `oc`'s `Aᵀ M A` for every tile of `block` from the products `prod`
/// (`[16][m][tiles]`), added onto `y`, the block's output rows of its plane (which hold the
/// bias), then `post` of each finished row.
#[inline(always)]
fn output_tiles(
    prod: &[f32],
    oc: usize,
    m: usize,
    y: &mut [f32],
    block: &Block,
    g: &ConvGeom,
    post: Option<Activation>,
) {
    let [ah, aw] = g.axes;
    let (ho, wo, tw, tiles) = (ah.out as usize, aw.out as usize, block.tw, block.tiles());
    let mut r = vec![0.0f32; 8 * tw];
    let mut cols = vec![0.0f32; 2 * tw];
    for ti in block.rows.clone() {
        let e = |xi: usize| {
            let at = (xi * m + oc) * tiles + (ti - block.rows.start) * tw;
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
        // (Aᵀ M) A: each output row's even and odd columns along the row of tiles, then added
        // onto the row in place
        for half in 0..2 {
            let oi = 2 * ti + half;
            if oi >= ho {
                continue;
            }
            let q = |j: usize| &r[(half * 4 + j) * tw..(half * 4 + j + 1) * tw];
            let (q0, q1, q2, q3) = (q(0), q(1), q(2), q(3));
            let (even, odd) = cols.split_at_mut(tw);
            for tj in 0..tw {
                even[tj] = q0[tj] + q1[tj] + q2[tj];
                odd[tj] = q1[tj] - q2[tj] - q3[tj];
            }
            let at = oi - 2 * block.rows.start;
            let row = &mut y[at * wo..(at + 1) * wo];
            let mut pairs = row.chunks_exact_mut(2);
            for (pair, (&e, &o)) in (&mut pairs).zip(even.iter().zip(odd.iter())) {
                pair[0] += e;
                pair[1] += o;
            }
            if let Some(x) = pairs.into_remainder().first_mut() {
                *x += even[tw - 1];
            }
            if let Some(post) = post {
                post.run(row);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::cpu::conv::conv;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Winograd's 3×3 convolution on random planes (odd and even sizes), channels and pads,
        /// through `conv` as the plan runs it: each output within a few roundings (per channel
        /// and transform step) of the definition's sum in f64.
        #[test]
        fn winograd_is_the_definition(
            (c, m) in (16usize..21, 16usize..20),
            (h, wd) in (2usize..13, 2usize..13),
            pads in [0i64..3, 0i64..3, 0i64..3, 0i64..3],
            seed in any::<u64>(),
        ) {
            let window = super::super::test_window(None, None, pads.to_vec(), None);
            let (x_shape, w_shape) = (vec![1, c, h, wd], vec![m, c, 3, 3]);
            let geom = ConvGeom::new(&x_shape, &w_shape, None, &window, 1);
            prop_assume!(geom.as_ref().is_ok_and(suits));
            let [ah, aw] = geom.unwrap().axes;
            let mut draw = super::super::test_values(seed);
            let x = Array::new(x_shape, draw(c * h * wd));
            let w = Array::new(w_shape, draw(m * c * 9));
            let u = filters(&w).expect("a 3×3 filter bank of 16 or more");
            let y = conv(&x, &w, None, &window, 1, Some(&u), None).unwrap();
            let (ho, wo) = (ah.out as usize, aw.out as usize);
            prop_assert_eq!(&y.shape, &vec![1, m, ho, wo]);
            for (o, (oi, oj)) in (0..m).flat_map(|o| (0..ho).flat_map(move |i| (0..wo).map(move |j| (o, (i, j))))) {
                let (mut sum, mut size) = (0.0f64, 0.0f64);
                for ch in 0..c {
                    for ki in 0..3i64 {
                        for kj in 0..3i64 {
                            let ii = oi as i64 + ki - ah.pad_begin;
                            let ij = oj as i64 + kj - aw.pad_begin;
                            if (0..h as i64).contains(&ii) && (0..wd as i64).contains(&ij) {
                                let t = x.data[(ch * h + ii as usize) * wd + ij as usize] as f64
                                    * w.data[((o * c + ch) * 3 + ki as usize) * 3 + kj as usize] as f64;
                                sum += t;
                                size += t.abs();
                            }
                        }
                    }
                }
                // the transforms scale a tile's values by at most 4 and add a few at a time; the
                // product sums over the channels: a few dozen roundings of 2^-24 per channel
                let got = y.data[(o * ho + oi) * wo + oj] as f64;
                let bound = 32.0 * (c + 4) as f64 * 2f64.powi(-24) * (size + 1.0);
                prop_assert!(
                    (got - sum).abs() <= bound,
                    "output ({o}, {oi}, {oj}): {got} against {sum}"
                );
            }
        }
    }
}
