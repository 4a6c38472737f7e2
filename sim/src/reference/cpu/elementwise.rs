//! Element-wise ops: broadcasting arithmetic, activations, BatchNormalization, Softmax, ReduceMean.

use super::super::value::Array;
use super::Res;
use etch_ir::op::Reduction;
use etch_ir::tensor::Dim;

/// The numpy broadcast of two shapes.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Res<Vec<usize>> {
    let da: Vec<Dim> = a.iter().map(|&d| Dim::Known(d as i64)).collect();
    let db: Vec<Dim> = b.iter().map(|&d| Dim::Known(d as i64)).collect();
    let out = etch_ir::infer::broadcast(&da, &db)?;
    Ok(out
        .iter()
        .map(|d| d.known().unwrap_or(0) as usize)
        .collect())
}

pub use etch_ir::tensor::{broadcast_index, broadcast_strides};
use rayon::prelude::*;

/// Applies `f` element-wise with numpy broadcasting.
pub fn binary<T: Copy + Send + Sync, R: Send>(
    a: &Array<T>,
    b: &Array<T>,
    f: impl Fn(T, T) -> R + Sync,
) -> Res<Array<R>> {
    if a.shape == b.shape {
        let pair = |i: usize| b.data[i * CHUNK..].iter().copied();
        return Ok(Array::new(
            a.shape.clone(),
            chunks_map(&a.data, CHUNK, pair, f),
        ));
    }
    let shape = broadcast_shape(&a.shape, &b.shape)?;
    let n: usize = shape.iter().product();
    let swapped = |full: T, small: T| f(small, full);
    if b.data.len() == 1 {
        let y = std::iter::repeat(b.data[0]);
        return Ok(Array::new(
            shape,
            chunks_map(&a.data, CHUNK, |_| y.clone(), &f),
        ));
    }
    if a.data.len() == 1 {
        let x = std::iter::repeat(a.data[0]);
        return Ok(Array::new(
            shape,
            chunks_map(&b.data, CHUNK, |_| x.clone(), swapped),
        ));
    }
    // one operand repeated along the leading dims of the other (a bias row): row by row
    if a.shape == shape && repeats_along_leading_dims(&b.shape, &shape) {
        return Ok(Array::new(
            shape,
            chunks_map(&a.data, b.data.len(), |_| b.data.iter().copied(), &f),
        ));
    }
    if b.shape == shape && repeats_along_leading_dims(&a.shape, &shape) {
        return Ok(Array::new(
            shape,
            chunks_map(&b.data, a.data.len(), |_| a.data.iter().copied(), swapped),
        ));
    }
    // one operand constant along the other's trailing dims (a per-channel scale [1, C, 1, 1]):
    // each of its elements meets a contiguous run of the other
    if a.shape == shape {
        if let Some(inner) = constant_along_trailing_dims(&b.shape, &shape) {
            return Ok(Array::new(
                shape,
                chunks_map(
                    &a.data,
                    inner,
                    |run| std::iter::repeat(b.data[run % b.data.len()]),
                    &f,
                ),
            ));
        }
    }
    if b.shape == shape {
        if let Some(inner) = constant_along_trailing_dims(&a.shape, &shape) {
            return Ok(Array::new(
                shape,
                chunks_map(
                    &b.data,
                    inner,
                    |run| std::iter::repeat(a.data[run % a.data.len()]),
                    swapped,
                ),
            ));
        }
    }
    let (sa, sb) = (
        super::layout::signed(&broadcast_strides(&a.shape, &shape)),
        super::layout::signed(&broadcast_strides(&b.shape, &shape)),
    );
    let mut data = Vec::with_capacity(n);
    super::layout::for_each_offset(&shape, [0, 0], [&sa, &sb], |[i, j]| {
        data.push(f(a.data[i], b.data[j]))
    });
    Ok(Array::new(shape, data))
}

/// Whether `small` (not empty) is `shape`'s trailing dims, perhaps after leading 1s: its elements
/// repeat, in order, over `shape`'s leading dims.
fn repeats_along_leading_dims(small: &[usize], shape: &[usize]) -> bool {
    let dims: &[usize] = match small.iter().position(|&d| d != 1) {
        Some(first) => &small[first..],
        None => &[],
    };
    let len: usize = dims.iter().product();
    len > 0 && dims.len() <= shape.len() && shape.ends_with(dims)
}

/// Where `small` (not empty) broadcasts to `shape` as a per-channel value does: 1s (or nothing)
/// over `shape`'s leading dims, then some of `shape`'s own dims, then 1s over its trailing dims.
/// Each of `small`'s elements then meets a contiguous run of the elements those trailing dims
/// span: their count.
fn constant_along_trailing_dims(small: &[usize], shape: &[usize]) -> Option<usize> {
    let lead = shape.len().checked_sub(small.len())?;
    let dims = |i: usize| (if i < lead { 1 } else { small[i - lead] }, shape[i]);
    let first = (0..shape.len()).find(|&i| dims(i).0 != 1)?;
    let end = (first..shape.len())
        .find(|&i| dims(i).0 != dims(i).1)
        .unwrap_or(shape.len());
    (end..shape.len())
        .all(|i| dims(i).0 == 1)
        .then(|| shape[end..].iter().product())
}

/// `f(x, y)` for every element `x` of `xs`, on rayon's threads in chunks of `len` elements
/// (together at least [`CHUNK`] per job): chunk `i` pairs its elements, in order, with what
/// `partners(i)` yields (the other operand's chunk, a repeated row, one repeated value). Each
/// output element is written once.
fn chunks_map<T, U, I, R>(
    xs: &[T],
    len: usize,
    partners: impl Fn(usize) -> I + Sync,
    f: impl Fn(T, U) -> R + Sync,
) -> Vec<R>
where
    T: Copy + Sync,
    R: Send,
    I: Iterator<Item = U>,
{
    let len = len.max(1);
    let mut out = Vec::with_capacity(xs.len());
    out.spare_capacity_mut()[..xs.len()]
        .par_chunks_mut(len)
        .zip(xs.par_chunks(len))
        .enumerate()
        .with_min_len((CHUNK / len).max(1))
        .for_each(|(i, (out, xs))| {
            let written = (out.iter_mut().zip(xs.iter().zip(partners(i))))
                .map(|(o, (&x, y))| o.write(f(x, y)))
                .count();
            assert_eq!(written, out.len(), "a partner for every element");
        });
    // SAFETY: every chunk of `out` was written whole (asserted)
    unsafe { out.set_len(xs.len()) };
    out
}

/// QONNX's `Quant`, `BipolarQuant` and `Trunc` over a tensor, through [`etch_ir::qonnx`]'s
/// per-element semantics (qonnx's executor's results, bit for bit). `params` are the op's inputs
/// after `x`; each broadcasts to `x`'s shape, and the bit widths are single numbers.
pub fn qonnx_quantizer(
    op: &etch_ir::Op,
    x: &Array<f32>,
    params: &[&Array<f32>],
) -> Res<Array<f32>> {
    use etch_ir::qonnx::{bipolar, check_bits, int_range};
    use etch_ir::Op;
    let n = x.data.len();
    let expanded: Vec<Vec<f32>> = params
        .iter()
        .enumerate()
        .map(|(j, p)| {
            if p.shape.len() > x.shape.len() || broadcast_shape(&x.shape, &p.shape)? != x.shape {
                return Err(format!(
                    "input {} has shape {:?}, which does not broadcast to the input's {:?}",
                    j + 2,
                    p.shape,
                    x.shape
                ));
            }
            Ok(if p.data.len() == 1 {
                vec![p.data[0]; n]
            } else {
                let at = broadcast_index(&p.shape, &x.shape);
                (0..n).map(|k| p.data[at(k)]).collect()
            })
        })
        .collect::<Res<_>>()?;
    let bits = |j: usize| -> Res<f32> {
        match params[j].data.as_slice() {
            [b] => check_bits(*b, &format!("the bit width (input {})", j + 2)),
            v => Err(format!(
                "the bit width (input {}) holds {} values; it must be one number",
                j + 2,
                v.len()
            )),
        }
    };
    let p = |j: usize, k: usize| expanded[j][k];
    let data: Vec<f32> = match (op, params.len()) {
        (Op::Quant(q), 3) => {
            let b = bits(2)?;
            let range = int_range(q.signed, q.narrow, b);
            (0..n)
                .map(|k| q.apply(x.data[k], p(0, k), p(1, k), b, range))
                .collect()
        }
        (Op::BipolarQuant, 1) => (0..n).map(|k| bipolar(x.data[k], p(0, k))).collect(),
        (Op::Trunc(t), 4) => {
            let (bin, bout) = (bits(2)?, bits(3)?);
            (0..n)
                .map(|k| t.apply_v1(x.data[k], p(0, k), p(1, k), bin, bout))
                .collect()
        }
        (Op::Trunc(t), 5) => {
            bits(2)?;
            let range = int_range(t.signed, t.narrow, bits(4)?);
            (0..n)
                .map(|k| t.apply_v2(x.data[k], p(0, k), p(1, k), p(3, k), range))
                .collect()
        }
        _ => {
            return Err(format!(
                "{} inputs do not fit this QONNX op",
                params.len() + 1
            ))
        }
    };
    Ok(Array::new(x.shape.clone(), data))
}

/// Applies `f` to every element.
pub fn unary(x: &Array<f32>, f: impl Fn(f32) -> f32 + Sync) -> Array<f32> {
    let none = |_| std::iter::repeat(());
    Array::new(
        x.shape.clone(),
        chunks_map(&x.data, CHUNK, none, |v, ()| f(v)),
    )
}

/// Elements an elementwise op hands each of rayon's jobs: enough that a job's work outweighs
/// handing it out, few enough that a large tensor is split among the threads.
const CHUNK: usize = 1 << 15;

/// ReLU or Clip: the activation a convolution can apply to its outputs as it writes them (the
/// plan fuses it there), with the same arithmetic as the op run alone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Activation {
    Relu,
    /// Max first, then min: with `lo > hi` every value becomes `hi` (the spec, onnxruntime);
    /// NaN passes through.
    Clip {
        lo: f32,
        hi: f32,
    },
}

impl Activation {
    /// The activation of one value.
    #[inline(always)]
    pub fn apply(self, v: f32) -> f32 {
        match self {
            // NaN becomes 0 (`NaN > 0` is false), as the ReLU step has always computed it
            Activation::Relu => {
                if v > 0.0 {
                    v
                } else {
                    0.0
                }
            }
            Activation::Clip { lo, hi } => {
                let v = if v < lo { lo } else { v };
                if v > hi {
                    hi
                } else {
                    v
                }
            }
        }
    }

    /// The activation of every value of `xs`, in place.
    pub fn run(self, xs: &mut [f32]) {
        each_path!(activate(self, xs, None))
    }

    /// The activation of every value of `xs` plus `bias`, in place (a convolution's epilogue).
    pub fn run_after_bias(self, xs: &mut [f32], bias: f32) {
        each_path!(activate(self, xs, Some(bias)))
    }
}

/// [`Activation::run`]'s loop (after adding `bias`, where given), one per activation so that
/// each vectorizes. Each block of values is computed into a buffer and copied back whole:
/// written in place, the compiler stores only the values that change, with masked stores that
/// are many times slower on some CPUs.
#[inline(always)]
fn activate(act: Activation, xs: &mut [f32], bias: Option<f32>) {
    #[inline(always)]
    fn each(xs: &mut [f32], f: impl Fn(f32) -> f32) {
        let mut buf = [0.0f32; 64];
        for block in xs.chunks_mut(buf.len()) {
            for (b, &x) in buf.iter_mut().zip(block.iter()) {
                *b = f(x);
            }
            block.copy_from_slice(&buf[..block.len()]);
        }
    }
    match (act, bias) {
        (Activation::Relu, None) => each(xs, |v| Activation::Relu.apply(v)),
        (Activation::Relu, Some(b)) => each(xs, |v| Activation::Relu.apply(v + b)),
        (Activation::Clip { lo, hi }, None) => each(xs, |v| Activation::Clip { lo, hi }.apply(v)),
        (Activation::Clip { lo, hi }, Some(b)) => {
            each(xs, |v| Activation::Clip { lo, hi }.apply(v + b))
        }
    }
}

/// Inference-mode BatchNormalization over channel axis 1.
pub fn batch_norm(x: &Array<f32>, p: [&Array<f32>; 4], eps: f32) -> Res<Array<f32>> {
    let [scale, bias, mean, var] = p;
    let (c, per) = batch_norm_dims(&x.shape, p.map(|a| a.data.len()))?;
    let mut out = x.data.clone();
    for (k, plane) in out.chunks_mut(per.max(1)).enumerate() {
        let ch = k % c;
        let s = scale.data[ch] / (var.data[ch] + eps).sqrt();
        let t = bias.data[ch] - mean.data[ch] * s;
        plane.iter_mut().for_each(|v| *v = *v * s + t);
    }
    Ok(Array::new(x.shape.clone(), out))
}

/// LayerNormalization: each run of the dims from `axis` on normalized to mean 0 and variance 1
/// (both in f64, two passes), then scaled and shifted by `scale` and `bias`, which broadcast to
/// those dims.
pub fn layer_norm(
    x: &Array<f32>,
    scale: &Array<f32>,
    bias: Option<&Array<f32>>,
    axis: i64,
    eps: f32,
) -> Res<Array<f32>> {
    let (rows, len) = layer_norm_dims(&x.shape, axis)?;
    let ns = layer_norm_params(scale.data.len(), len, "scale")?;
    let nb = match bias {
        Some(b) => layer_norm_params(b.data.len(), len, "bias")?,
        None => 0,
    };
    let mut out = x.data.clone();
    let rows_per_job = (CHUNK / len.max(1)).max(1);
    out.par_chunks_mut(len.max(1))
        .take(rows)
        .with_min_len(rows_per_job)
        .for_each(|row| {
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / len as f64;
            let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / len as f64;
            let inv = 1.0 / (var + eps as f64).sqrt();
            for (k, v) in row.iter_mut().enumerate() {
                let b = bias.map_or(0.0, |b| b.data[k % nb]);
                *v = (((*v as f64 - mean) * inv) as f32) * scale.data[k % ns] + b;
            }
        });
    Ok(Array::new(x.shape.clone(), out))
}

/// LayerNormalization's `(rows, len)`: how many runs are normalized, and their length.
pub(crate) fn layer_norm_dims(shape: &[usize], axis: i64) -> Res<(usize, usize)> {
    let a = super::layout::axis(axis, shape.len())?;
    Ok((shape[..a].iter().product(), shape[a..].iter().product()))
}

/// How many values a LayerNormalization scale or bias of `n` values applies (1, or one per
/// normalized element `len`), checked.
pub(crate) fn layer_norm_params(n: usize, len: usize, what: &str) -> Res<usize> {
    if n == 1 || n == len {
        Ok(n)
    } else {
        Err(format!(
            "the {what} has {n} values; it must have 1 or the {len} of the normalized dims"
        ))
    }
}

/// Channels and elements per channel plane of a BatchNormalization input, checked against the
/// lengths of its four parameters.
pub(crate) fn batch_norm_dims(x: &[usize], params: [usize; 4]) -> Res<(usize, usize)> {
    if x.len() < 2 {
        return Err(format!("BatchNormalization needs rank ≥ 2, got {x:?}"));
    }
    let c = x[1];
    if params.iter().any(|&len| len != c) {
        return Err(format!("the parameters must have {c} values each"));
    }
    Ok((c, x[2..].iter().product()))
}

/// Softmax along `axis` (opset ≥ 13), or over all axes from `axis` on (opset < 13).
pub fn softmax(x: &Array<f32>, axis: i64, opset: i64) -> Res<Array<f32>> {
    let (outer, len, inner) = softmax_dims(&x.shape, axis, opset)?;
    let mut out = x.data.clone();
    let block = (len * inner).max(1);
    // each outer index's block on one of rayon's threads
    out.par_chunks_mut(block)
        .take(outer)
        .with_min_len((CHUNK / block).max(1))
        .for_each(|out| softmax_block(out, len, inner));
    Ok(Array::new(x.shape.clone(), out))
}

/// Softmax along the middle axis of one `[len, inner]` block, in place.
fn softmax_block(out: &mut [f32], len: usize, inner: usize) {
    if inner == 1 {
        return each_path!(softmax_row(out));
    }
    for i in 0..inner {
        let at = |k: usize| k * inner + i;
        let max = (0..len)
            .map(|k| out[at(k)])
            .fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f32;
        for k in 0..len {
            let e = exp(out[at(k)] - max);
            out[at(k)] = e;
            sum += e;
        }
        for k in 0..len {
            out[at(k)] /= sum;
        }
    }
}

/// Softmax of one contiguous row, in place: the exponentials and their sum (eight running sums
/// added in a fixed order, so any vector width gives the same bits) in vector lanes.
#[inline(always)]
fn softmax_row(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for v in row.iter_mut() {
        *v = exp(*v - max);
    }
    let mut lanes = [0.0f32; 8];
    let mut chunks = row.chunks_exact(8);
    for chunk in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += v;
        }
    }
    let sum = chunks
        .remainder()
        .iter()
        .fold(lanes.iter().sum::<f32>(), |s, &v| s + v);
    for v in row.iter_mut() {
        *v /= sum;
    }
}

/// `e^x` within 2 units in the last place (0 below −87.33, where it would be denormal): Cody and
/// Waite's reduction `x = n·ln 2 + r` and Cephes' `expf` polynomial for `e^r`, then `2^n` put
/// into the exponent. Branch-free multiplies and adds (never fused), so a loop of it vectorizes
/// and every CPU gives the same bits.
#[inline(always)]
fn exp(x: f32) -> f32 {
    let xc = x.clamp(-87.5, 88.5);
    let n = (xc * std::f32::consts::LOG2_E + 0.5).floor();
    let r = xc - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let y = p * (r * r) + r + 1.0;
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    let e = y * scale;
    // (NaN stays NaN through the arithmetic above)
    if x < -87.33 {
        0.0
    } else {
        e
    }
}

/// Softmax's `(outer, len, inner)`: how many groups, their length, and the stride between their elements.
pub(crate) fn softmax_dims(shape: &[usize], axis: i64, opset: i64) -> Res<(usize, usize, usize)> {
    let r = shape.len() as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r.max(1) {
        return Err(format!("axis {axis} is out of range for rank {r}"));
    }
    let a = a as usize;
    Ok(if opset >= 13 {
        (
            shape[..a].iter().product::<usize>(),
            shape.get(a).copied().unwrap_or(1),
            shape[a + 1..].iter().product::<usize>(),
        )
    } else {
        (
            shape[..a].iter().product::<usize>(),
            shape[a..].iter().product::<usize>(),
            1,
        )
    })
}

/// The shape of a reduction over `axes`: kept as 1s, or dropped.
pub(crate) fn reduced_shape(shape: &[usize], axes: &[usize], keepdims: bool) -> Vec<usize> {
    let kept = shape.iter().enumerate().map(|(k, &d)| {
        if axes.contains(&k) {
            (true, 1)
        } else {
            (false, d)
        }
    });
    kept.filter(|&(reduced, _)| keepdims || !reduced)
        .map(|(_, d)| d)
        .collect()
}

/// Mean over `axes` (all when empty and not a no-op), keeping or dropping them.
pub fn reduce(x: &Array<f32>, kind: Reduction, axes: &[usize], keepdims: bool) -> Array<f32> {
    let kept = reduced_shape(&x.shape, axes, true);
    let n_out: usize = kept.iter().product();
    let count: usize = axes.iter().map(|&k| x.shape[k]).product();
    let shape = reduced_shape(&x.shape, axes, keepdims);
    // the trailing axes (a global pooling, a LayerNorm's mean): each output folds a contiguous
    // run, in order, eight runs side by side (independent sums the CPU overlaps)
    let rank = x.shape.len();
    if count > 0 && (0..axes.len()).all(|i| axes.contains(&(rank - 1 - i))) {
        let fold = |runs: &[f32], out: &mut [f32]| {
            let mut acc = [kind.start(); 8];
            for i in 0..count {
                for (a, run) in acc.iter_mut().zip(runs.chunks_exact(count)) {
                    *a = kind.step(*a, run[i]);
                }
            }
            for (o, a) in out.iter_mut().zip(acc) {
                *o = kind.finish(a, count);
            }
        };
        let mut out = vec![0.0f32; n_out];
        out.par_chunks_mut(8)
            .zip(x.data.par_chunks(8 * count))
            .with_min_len((CHUNK / (8 * count)).max(1))
            .for_each(|(out, runs)| fold(runs, out));
        return Array::new(shape, out);
    }
    Array::new(shape, reduce_each(x, kind, axes))
}

/// Any reduction the slow way: each element stepped into its output's accumulator, in order.
fn reduce_each(x: &Array<f32>, kind: Reduction, axes: &[usize]) -> Vec<f32> {
    let kept = reduced_shape(&x.shape, axes, true);
    let n_out: usize = kept.iter().product();
    let count: usize = axes.iter().map(|&k| x.shape[k]).product();
    let mut acc = vec![kind.start(); n_out];
    let idx = broadcast_index(&kept, &x.shape);
    for (k, &v) in x.data.iter().enumerate() {
        let a = &mut acc[idx(k)];
        *a = kind.step(*a, v);
    }
    acc.into_iter().map(|a| kind.finish(a, count)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(100))]
        /// A reduction over trailing axes (eight runs side by side, on several threads) gives the
        /// bits of each element stepped into its output in order, for every kind.
        #[test]
        fn trailing_reductions_are_each_elements_steps(
            shape in proptest::collection::vec(1usize..7, 1..5),
            reduced in 1usize..4,
            kind in 0usize..5,
            seed in any::<u64>(),
        ) {
            let kind = [Reduction::Mean, Reduction::Max, Reduction::Min, Reduction::Sum, Reduction::L2][kind];
            let rank = shape.len();
            let axes: Vec<usize> = (rank - reduced.min(rank)..rank).collect();
            let n = shape.iter().product();
            let x = Array::new(shape, super::super::test_values(seed)(n));
            let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
            let fast = pool.install(|| reduce(&x, kind, &axes, true));
            prop_assert_eq!(
                fast.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                reduce_each(&x, kind, &axes).iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(50))]
        /// Softmax along the middle axis of `[outer, len, inner]` on three threads: each element
        /// `e^(x − max) / Σ` of its own column, within a few roundings of the f64 value.
        #[test]
        fn softmax_is_the_definition(
            (outer, len, inner) in (1usize..40, 1usize..40, 1usize..4),
            seed in any::<u64>(),
        ) {
            let x = Array::new(vec![outer, len, inner], super::super::test_values(seed)(outer * len * inner));
            let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
            let y = pool.install(|| softmax(&x, 1, 13)).unwrap();
            for o in 0..outer {
                for i in 0..inner {
                    let at = |k: usize| (o * len + k) * inner + i;
                    let max = (0..len).map(|k| x.data[at(k)] as f64).fold(f64::MIN, f64::max);
                    let sum: f64 = (0..len).map(|k| (x.data[at(k)] as f64 - max).exp()).sum();
                    for k in 0..len {
                        let want = (x.data[at(k)] as f64 - max).exp() / sum;
                        let got = y.data[at(k)] as f64;
                        prop_assert!((got - want).abs() <= 1e-6 * want.max(1e-30), "({o}, {k}, {i}): {got} against {want}");
                    }
                }
            }
        }
    }

    /// The vector exponential within 2 units in the last place of e^x (in f64) from −87.3 to 88,
    /// 0 below, NaN for NaN.
    #[test]
    fn exp_is_within_two_ulp() {
        let mut x = -87.3f32;
        while x < 88.0 {
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            let w = want as f32;
            let ulp = (f32::from_bits(w.to_bits() + 1) - w) as f64;
            assert!(
                (got - want).abs() <= 2.0 * ulp,
                "e^{x}: {got} against {want}"
            );
            x += 0.000_731;
        }
        assert_eq!(exp(-90.0), 0.0);
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(f32::NAN).is_nan());
    }

    /// Elementwise ops over several chunks on three threads: each element is its own operands'
    /// result (same shapes, a scalar either side, a unary op), none lost or moved.
    #[test]
    fn chunks_on_several_threads_keep_every_element_in_place() {
        let n = 3 * CHUNK + 5;
        let a = Array::new(vec![n], (0..n).map(|i| i as f32).collect());
        let b = Array::new(vec![n], (0..n).map(|i| (2 * i) as f32).collect());
        let s = Array::new(vec![1], vec![0.5f32]);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        pool.install(|| {
            let sum = binary(&a, &b, |x, y| x - y).unwrap();
            let left = binary(&s, &a, |x, y| x - y).unwrap();
            let right = binary(&a, &s, |x, y| x - y).unwrap();
            let neg = unary(&a, |x| -x);
            for i in 0..n {
                let v = i as f32;
                assert_eq!(
                    [sum.data[i], left.data[i], right.data[i], neg.data[i]],
                    [v - 2.0 * v, 0.5 - v, v - 0.5, -v],
                    "element {i}"
                );
            }
        });
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Broadcasting subtraction (not commutative, so a swapped operand shows) over random
        /// shapes, the bias-row case among them: each element the difference of the elements its
        /// broadcast index picks.
        #[test]
        fn binary_is_the_broadcast_definition(
            a_shape in proptest::collection::vec(1usize..4, 0..4),
            b_shape in proptest::collection::vec(1usize..4, 0..4),
            suffix in any::<bool>(),
        ) {
            // half the cases: `b` the trailing dims of `a` (a bias row), perhaps after 1s
            let b_shape = if suffix {
                let keep = b_shape.len().min(a_shape.len());
                let mut s = vec![1; b_shape.len() - keep];
                s.extend_from_slice(&a_shape[a_shape.len() - keep..]);
                s
            } else {
                b_shape
            };
            let Ok(shape) = broadcast_shape(&a_shape, &b_shape) else {
                return Ok(());
            };
            let fill = |s: &[usize], base: f32| {
                let len: usize = s.iter().product();
                Array::new(s.to_vec(), (0..len).map(|v| base + v as f32).collect())
            };
            let (a, b) = (fill(&a_shape, 0.5), fill(&b_shape, 1000.0));
            for (x, y, swapped) in [(&a, &b, false), (&b, &a, true)] {
                let got = binary(x, y, |p, q| p - q).unwrap();
                prop_assert_eq!(&got.shape, &shape);
                let (ix, iy) = (broadcast_index(&x.shape, &shape), broadcast_index(&y.shape, &shape));
                for (t, &v) in got.data.iter().enumerate() {
                    prop_assert_eq!(v, x.data[ix(t)] - y.data[iy(t)], "element {}, swapped {}", t, swapped);
                }
            }
        }
    }
}
