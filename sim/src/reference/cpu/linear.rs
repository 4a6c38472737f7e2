//! Matrix products through the `gemm` crate: Gemm, MatMul, and the inner product of convolutions.

use super::super::value::Array;
use super::Res;
use etch_ir::op::Op;

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
        MatRef { data, rows, cols, rs: cols, cs: 1 }
    }

    /// The same matrix transposed (no copy).
    pub fn t(self) -> MatRef<'a> {
        MatRef { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }

    fn fits(&self) -> bool {
        self.rows == 0 || self.cols == 0 || (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < self.data.len()
    }
}

/// `out[m×n] (row-major) = keep·out + a[m×k] · b[k×n]`, with `keep` 0 or 1.
pub fn matmul_into(out: &mut [f32], a: MatRef, b: MatRef, accumulate: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(b.rows == k && out.len() >= m * n && a.fits() && b.fits(), "matrix product shapes were checked by the caller");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            out[..m * n].fill(0.0);
        }
        return;
    }
    let parallelism = if m * n * k >= PARALLEL_MACS { gemm::Parallelism::Rayon(0) } else { gemm::Parallelism::None };
    // SAFETY: the assert above checks that every element the strides reach lies inside its slice,
    // and `out` is a distinct mutable slice of at least m·n elements written row-major.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
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

/// ONNX Gemm: `alpha·A'·B' + beta·C` with C broadcast to the output.
pub fn gemm_op(op: &Op, a: &Array<f32>, b: &Array<f32>, c: Option<&Array<f32>>) -> Res<Array<f32>> {
    let Op::Gemm { alpha, beta, trans_a, trans_b } = *op else { unreachable!("dispatched on Gemm") };
    if a.shape.len() != 2 || b.shape.len() != 2 {
        return Err(format!("Gemm takes 2-D inputs, got {:?} and {:?}", a.shape, b.shape));
    }
    let mut am = MatRef::row_major(&a.data, a.shape[0], a.shape[1]);
    let mut bm = MatRef::row_major(&b.data, b.shape[0], b.shape[1]);
    if trans_a {
        am = am.t();
    }
    if trans_b {
        bm = bm.t();
    }
    if am.cols != bm.rows {
        return Err(format!("inner dimensions differ: {:?} and {:?}", a.shape, b.shape));
    }
    let (m, n) = (am.rows, bm.cols);
    let mut out = vec![0.0f32; m * n];
    matmul_into(&mut out, am, bm, false);
    if alpha != 1.0 {
        out.iter_mut().for_each(|v| *v *= alpha);
    }
    if let Some(c) = c {
        let (cr, cc) = match c.shape.len() {
            0 => (1, 1),
            1 => (1, c.shape[0]),
            2 => (c.shape[0], c.shape[1]),
            _ => return Err(format!("C has rank {}, expected at most 2", c.shape.len())),
        };
        if !(cr == 1 || cr == m) || !(cc == 1 || cc == n) {
            return Err(format!("C of shape {:?} does not broadcast to [{m}, {n}]", c.shape));
        }
        for r in 0..m {
            for col in 0..n {
                let cv = c.data[(if cr == 1 { 0 } else { r }) * cc + if cc == 1 { 0 } else { col }];
                out[r * n + col] += beta * cv;
            }
        }
    }
    Ok(Array::new(vec![m, n], out))
}

/// ONNX MatMul (numpy semantics: 1-D promotion and broadcast batch dims).
pub fn matmul_op(a: &Array<f32>, b: &Array<f32>) -> Res<Array<f32>> {
    let (mut sa, mut sb) = (a.shape.clone(), b.shape.clone());
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
        return Err(format!("inner dimensions differ: {:?} × {:?}", a.shape, b.shape));
    }
    let ba = &sa[..sa.len() - 2];
    let bb = &sb[..sb.len() - 2];
    let batch = super::elementwise::broadcast_shape(ba, bb)?;
    let count: usize = batch.iter().product();
    let mut out = vec![0.0f32; count * m * n];
    let idx_a = super::elementwise::broadcast_index(ba, &batch);
    let idx_b = super::elementwise::broadcast_index(bb, &batch);
    for t in 0..count {
        let (ia, ib) = (idx_a(t), idx_b(t));
        let am = MatRef::row_major(&a.data[ia * m * k..(ia + 1) * m * k], m, k);
        let bm = MatRef::row_major(&b.data[ib * k * n..(ib + 1) * k * n], k, n);
        matmul_into(&mut out[t * m * n..(t + 1) * m * n], am, bm, false);
    }
    let mut shape = batch;
    if !va {
        shape.push(m);
    }
    if !vb {
        shape.push(n);
    }
    Ok(Array::new(shape, out))
}
