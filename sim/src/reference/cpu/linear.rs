//! Matrix products through the `gemm` crate: Gemm, MatMul, and the inner product of convolutions.

use super::super::value::Array;
use super::blocks::SharedOut;
use super::Res;
use etch_ir::op::Op;
use rayon::prelude::*;

/// Below this many multiply-adds a product runs on one thread: splitting costs more than it saves.
const PARALLEL_MACS: usize = 1 << 18;

/// A strided read-only matrix view: element (r, c) is at `data[r * rs + c * cs]`.
#[derive(Clone, Copy)]
pub struct MatRef<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major matrix.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> MatRef<'a> {
        MatRef {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    fn fits(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < self.data.len()
    }
}

/// `out[m×n] (row-major) = keep·out + a[m×k] · b[k×n]`, with `keep` 0 or 1; with `parallel`, a
/// product large enough is split among the threads by columns (each thread reads its share of
/// `b`: a classifier's weights, say).
pub fn matmul_into(out: &mut [f32], a: MatRef, b: MatRef, accumulate: bool, parallel: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(
        m.checked_mul(n).is_some_and(|need| out.len() >= need) && b.rows == k && b.fits(),
        "matrix product shapes were checked by the caller"
    );
    let threads = rayon::current_num_threads();
    let width = n.div_ceil(threads).next_multiple_of(16);
    if !parallel || threads == 1 || m * n * k < PARALLEL_MACS || width >= n {
        // SAFETY: `out` is a distinct mutable slice holding the m rows of n elements
        return unsafe { matmul_ptr(out.as_mut_ptr(), n, a, b, accumulate, parallel) };
    }
    let shared = SharedOut::over(out);
    (0..n.div_ceil(width)).into_par_iter().for_each(|i| {
        let c0 = i * width;
        let cols = width.min(n - c0);
        let b = MatRef {
            data: &b.data[c0 * b.cs..],
            cols,
            ..b
        };
        let dst = shared.rows(c0, m, cols, n);
        // SAFETY: columns c0..c0 + cols of every row are this job's alone
        unsafe { matmul_ptr(dst, n, a, b, accumulate, false) };
    });
}

/// [`matmul_into`] through a pointer, with the rows of `out` `out_rs` elements apart
/// (`out_rs ≥ n`), for a block of an output that other threads write
/// elsewhere at the same time (`SharedOut`); `parallel: false` keeps the product on this thread
/// (the caller already runs one block per thread).
///
/// # Safety
/// `out` must point at m rows of n elements, `out_rs` apart, that nothing else reads or writes
/// during the call; unless `accumulate`, they are only written (they may be uninitialized).
pub(crate) unsafe fn matmul_ptr(
    out: *mut f32,
    out_rs: usize,
    a: MatRef,
    b: MatRef,
    accumulate: bool,
    parallel: bool,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(
        b.rows == k && out_rs >= n && a.fits() && b.fits(),
        "matrix product shapes were checked by the caller"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                // SAFETY: row r of the m rows the caller gives (all-zero bytes are 0.0)
                unsafe { out.add(r * out_rs).write_bytes(0, n) };
            }
        }
        return;
    }
    let parallelism = if parallel && m * n * k >= PARALLEL_MACS {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the assert above checks that every element the operands' strides reach lies inside
    // their slices, and the caller gives m rows of n elements at `out`, `out_rs` apart.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out,
            1,
            out_rs as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// A matrix product's extents and strides, checked: element (r, c) of an operand is at
/// `r·rs + c·cs` (transposes swap the strides; a broadcast axis has stride 0).
pub(crate) struct GemmGeom {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: (usize, usize),
    pub b: (usize, usize),
    /// Gemm's C broadcast to `[m, n]`.
    pub c: Option<(usize, usize)>,
}

impl GemmGeom {
    /// ONNX Gemm's operands `A` (`[M,K]` or transposed), `B` (`[K,N]` or transposed), optional `C`.
    pub fn new(op: &Op, a: &[usize], b: &[usize], c: Option<&[usize]>) -> Res<GemmGeom> {
        let Op::Gemm {
            trans_a, trans_b, ..
        } = *op
        else {
            unreachable!("dispatched on Gemm")
        };
        if a.len() != 2 || b.len() != 2 {
            return Err(format!("Gemm takes 2-D inputs, got {a:?} and {b:?}"));
        }
        let view = |s: &[usize], t: bool| {
            if t {
                (s[1], s[0], 1, s[1])
            } else {
                (s[0], s[1], s[1], 1)
            }
        };
        let (m, k, ars, acs) = view(a, trans_a);
        let (kb, n, brs, bcs) = view(b, trans_b);
        if k != kb {
            return Err(format!("inner dimensions differ: {a:?} and {b:?}"));
        }
        let c = match c {
            None => None,
            Some(c) => {
                let (cr, cc) = match c.len() {
                    0 => (1, 1),
                    1 => (1, c[0]),
                    2 => (c[0], c[1]),
                    _ => return Err(format!("C has rank {}, expected at most 2", c.len())),
                };
                if !(cr == 1 || cr == m) || !(cc == 1 || cc == n) {
                    return Err(format!("C of shape {c:?} does not broadcast to [{m}, {n}]"));
                }
                Some((if cr == 1 { 0 } else { cc }, if cc == 1 { 0 } else { 1 }))
            }
        };
        Ok(GemmGeom {
            m,
            n,
            k,
            a: (ars, acs),
            b: (brs, bcs),
            c,
        })
    }
}

/// ONNX Gemm: `alpha·A'·B' + beta·C` with C broadcast to the output.
pub fn gemm_op(op: &Op, a: &Array<f32>, b: &Array<f32>, c: Option<&Array<f32>>) -> Res<Array<f32>> {
    let Op::Gemm { alpha, beta, .. } = *op else {
        unreachable!("dispatched on Gemm")
    };
    let g = GemmGeom::new(op, &a.shape, &b.shape, c.map(|c| &c.shape[..]))?;
    let (m, n) = (g.m, g.n);
    let am = MatRef {
        data: &a.data,
        rows: m,
        cols: g.k,
        rs: g.a.0,
        cs: g.a.1,
    };
    let bm = MatRef {
        data: &b.data,
        rows: g.k,
        cols: n,
        rs: g.b.0,
        cs: g.b.1,
    };
    let mut out = vec![0.0f32; m * n];
    matmul_into(&mut out, am, bm, false, true);
    if alpha != 1.0 {
        out.iter_mut().for_each(|v| *v *= alpha);
    }
    if let (Some(c), Some((crs, ccs))) = (c, g.c) {
        for r in 0..m {
            for col in 0..n {
                out[r * n + col] += beta * c.data[r * crs + col * ccs];
            }
        }
    }
    Ok(Array::new(vec![m, n], out))
}

/// A MatMul's extents (numpy semantics: 1-D promotion and broadcast batch dims), checked.
pub(crate) struct MatMulGeom {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    /// Per output matrix, in order: which matrix of `a` and of `b` it multiplies.
    pub pairs: Vec<(usize, usize)>,
    pub out_shape: Vec<usize>,
}

impl MatMulGeom {
    pub fn new(a: &[usize], b: &[usize]) -> Res<MatMulGeom> {
        let (mut sa, mut sb) = (a.to_vec(), b.to_vec());
        if sa.is_empty() || sb.is_empty() {
            return Err("MatMul does not take scalars".into());
        }
        let (va, vb) = (sa.len() == 1, sb.len() == 1);
        if va {
            sa.insert(0, 1);
        }
        if vb {
            sb.push(1);
        }
        let (m, k, n) = (sa[sa.len() - 2], sa[sa.len() - 1], sb[sb.len() - 1]);
        if sb[sb.len() - 2] != k {
            return Err(format!("inner dimensions differ: {a:?} × {b:?}"));
        }
        let ba = &sa[..sa.len() - 2];
        let bb = &sb[..sb.len() - 2];
        let batch = super::elementwise::broadcast_shape(ba, bb)?;
        let count: usize = batch.iter().product();
        let idx_a = super::elementwise::broadcast_index(ba, &batch);
        let idx_b = super::elementwise::broadcast_index(bb, &batch);
        let pairs = (0..count).map(|t| (idx_a(t), idx_b(t))).collect();
        let mut out_shape = batch;
        if !va {
            out_shape.push(m);
        }
        if !vb {
            out_shape.push(n);
        }
        Ok(MatMulGeom {
            m,
            k,
            n,
            pairs,
            out_shape,
        })
    }
}

/// ONNX MatMul (numpy semantics: 1-D promotion and broadcast batch dims).
pub fn matmul_op(a: &Array<f32>, b: &Array<f32>) -> Res<Array<f32>> {
    let MatMulGeom {
        m,
        k,
        n,
        pairs,
        out_shape,
    } = MatMulGeom::new(&a.shape, &b.shape)?;
    let mut out = vec![0.0f32; pairs.len() * m * n];
    // every matrix of `a` times the one of `b` (a linear layer on a batch of rows): one product
    // of all their rows, instead of one thin product per matrix that rereads `b` each time
    if pairs
        .iter()
        .enumerate()
        .all(|(t, &(ia, ib))| ia == t && ib == 0)
    {
        let rows = pairs.len() * m;
        let am = MatRef::row_major(&a.data[..rows * k], rows, k);
        let bm = MatRef::row_major(&b.data[..k * n], k, n);
        matmul_into(&mut out, am, bm, false, true);
        return Ok(Array::new(out_shape, out));
    }
    for (t, &(ia, ib)) in pairs.iter().enumerate() {
        let am = MatRef::row_major(&a.data[ia * m * k..(ia + 1) * m * k], m, k);
        let bm = MatRef::row_major(&b.data[ib * k * n..(ib + 1) * k * n], k, n);
        matmul_into(&mut out[t * m * n..(t + 1) * m * n], am, bm, false, true);
    }
    Ok(Array::new(out_shape, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        /// A product large enough to be split among three threads by columns (the right operand
        /// row-major, or transposed as a Gemm's weights): each output element the f64 sum of its
        /// row times its column, within the roundings of a `k`-term float32 sum.
        #[test]
        fn a_product_split_among_threads_is_the_definition(
            (m, k, n) in (1usize..4, 600usize..900, 450usize..700),
            transposed in any::<bool>(),
            seed in any::<u64>(),
        ) {
            let mut draw = super::super::test_values(seed);
            let (a, b) = (draw(m * k), draw(k * n));
            let am = MatRef::row_major(&a, m, k);
            let bm = MatRef { data: &b, rows: k, cols: n, rs: if transposed { 1 } else { n }, cs: if transposed { k } else { 1 } };
            let mut y = vec![0.0f32; m * n];
            let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
            pool.install(|| matmul_into(&mut y, am, bm, false, true));
            for i in 0..m {
                for j in 0..n {
                    let (mut sum, mut size) = (0.0f64, 0.0f64);
                    for q in 0..k {
                        let term = a[i * k + q] as f64 * b[q * bm.rs + j * bm.cs] as f64;
                        sum += term;
                        size += term.abs();
                    }
                    let got = y[i * n + j] as f64;
                    let bound = (k + 2) as f64 * 2f64.powi(-24) * size;
                    prop_assert!((got - sum).abs() <= bound, "({i}, {j}): {got} against {sum}");
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// MatMul over random batch shapes (broadcast either way, or a 2-D right operand that
        /// every matrix of the left one shares): each output element the f64 sum of its row times
        /// its column, within the roundings of a `k`-term float32 sum.
        #[test]
        fn matmul_is_the_definition(
            batch_a in proptest::collection::vec(1usize..4, 0..3),
            batch_b in proptest::collection::vec(1usize..4, 0..3),
            (m, k, n) in (1usize..6, 1usize..9, 1usize..6),
            seed in any::<u64>(),
        ) {
            let sa: Vec<usize> = batch_a.iter().copied().chain([m, k]).collect();
            let sb: Vec<usize> = batch_b.iter().copied().chain([k, n]).collect();
            let Ok(geom) = MatMulGeom::new(&sa, &sb) else {
                // batch dims that do not broadcast
                return Ok(());
            };
            let mut draw = super::super::test_values(seed);
            let a = Array::new(sa.clone(), draw(sa.iter().product()));
            let b = Array::new(sb.clone(), draw(sb.iter().product()));
            let y = matmul_op(&a, &b).unwrap();
            prop_assert_eq!(&y.shape, &geom.out_shape);
            for (t, &(ia, ib)) in geom.pairs.iter().enumerate() {
                for i in 0..m {
                    for j in 0..n {
                        let (mut sum, mut size) = (0.0f64, 0.0f64);
                        for q in 0..k {
                            let term = a.data[(ia * m + i) * k + q] as f64
                                * b.data[(ib * k + q) * n + j] as f64;
                            sum += term;
                            size += term.abs();
                        }
                        let got = y.data[(t * m + i) * n + j] as f64;
                        let bound = (k + 2) as f64 * 2f64.powi(-24) * size;
                        prop_assert!((got - sum).abs() <= bound, "({t}, {i}, {j}): {got} against {sum}");
                    }
                }
            }
        }
    }
}
