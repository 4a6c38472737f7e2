//! The standard ONNX semantics of the ops a quantized model adds, for everything that is not fused
//! into an integer kernel: QuantizeLinear, DequantizeLinear (per tensor or per axis), the binary
//! activation `Where(GreaterOrEqual(x, τ), 1, −1)`, MaxPool on int8 codes, and
//! the residual Add of two tensors of codes that share a scale (`etch_ir::quant::QAdd`), and the
//! tables of quantized unary activations (`etch_ir::quant::QTable`). Integer tensors are
//! held as i64; booleans as 0/1.

use super::super::elementwise::{broadcast_index, broadcast_shape};
use super::super::pool::{PoolGeom, PoolKind};
use super::super::Res;
use crate::reference::value::{Array, Value};
use etch_ir::op::Window;

/// How `n` quantization parameters spread over a tensor of `shape`: `(len, inner)` such that
/// element `k` takes parameter `(k / inner) % len` (one for the tensor, or one per index along
/// `axis`). The GPU kernels index the same way.
pub(crate) fn axis_layout(n: usize, shape: &[usize], axis: i64, what: &str) -> Res<(usize, usize)> {
    if n == 1 {
        return Ok((1, 1));
    }
    let r = shape.len() as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r || shape[a as usize] != n {
        return Err(format!(
            "the {what} has {n} values but axis {axis} of the input {shape:?} does not"
        ));
    }
    Ok((n, shape[a as usize + 1..].iter().product::<usize>().max(1)))
}

/// How `n` quantization parameters spread over a tensor of `shape` in runs: `(len, run)` such
/// that the `k`-th run of `run` elements takes parameter `k % len` (one run of the whole tensor
/// for a single parameter).
fn param_runs(n: usize, shape: &[usize], axis: i64, what: &str) -> Res<(usize, usize)> {
    let (len, inner) = axis_layout(n, shape, axis, what)?;
    let total: usize = shape.iter().product();
    Ok((len, if len == 1 { total.max(1) } else { inner }))
}

/// The zero points of `scales` scales: as given, or all 0 when the input is absent.
pub(crate) fn zero_points(scales: usize, zero_point: &[i64]) -> Res<Vec<i64>> {
    if zero_point.is_empty() {
        return Ok(vec![0; scales]);
    }
    if zero_point.len() != scales {
        return Err(format!(
            "{scales} scales but {} zero points",
            zero_point.len()
        ));
    }
    Ok(zero_point.to_vec())
}

/// `y = clamp(round_half_even(x / scale) + zero_point, qmin, qmax)`, `[qmin, qmax]` the output type's range.
pub fn quantize_linear(
    x: &Array<f32>,
    scale: &[f32],
    zero_point: &[i64],
    axis: i64,
    range: (i64, i64),
) -> Res<Array<i64>> {
    let zp = zero_points(scale.len(), zero_point)?;
    let (len, run) = param_runs(scale.len(), &x.shape, axis, "scale")?;
    let mut data = vec![0i64; x.data.len()];
    for (k, (out, xs)) in data.chunks_mut(run).zip(x.data.chunks(run)).enumerate() {
        let (s, z) = (scale[k % len], zp[k % len]);
        each_path!(quantize_run(xs, s, z, range, out));
    }
    Ok(Array::new(x.shape.clone(), data))
}

/// [`quantize_linear`] of a run sharing one scale and zero point.
#[inline(always)]
fn quantize_run(xs: &[f32], s: f32, z: i64, (qmin, qmax): (i64, i64), out: &mut [i64]) {
    for (o, &v) in out.iter_mut().zip(xs) {
        *o = (((v / s).round_ties_even() as i64).saturating_add(z)).clamp(qmin, qmax);
    }
}

/// `y = (x − zero_point) · scale`.
pub fn dequantize_linear(
    x: &Array<i64>,
    scale: &[f32],
    zero_point: &[i64],
    axis: i64,
) -> Res<Array<f32>> {
    let zp = zero_points(scale.len(), zero_point)?;
    let (len, run) = param_runs(scale.len(), &x.shape, axis, "scale")?;
    let mut data = vec![0.0f32; x.data.len()];
    for (k, (out, xs)) in data.chunks_mut(run).zip(x.data.chunks(run)).enumerate() {
        let (s, z) = (scale[k % len], zp[k % len]);
        each_path!(dequantize_run(xs, s, z, out));
    }
    Ok(Array::new(x.shape.clone(), data))
}

/// [`dequantize_linear`] of a run sharing one scale and zero point.
#[inline(always)]
fn dequantize_run(xs: &[i64], s: f32, z: i64, out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(xs) {
        *o = (v - z) as i32 as f32 * s;
    }
}

/// `cond ? x : y` with broadcasting over all three.
pub fn where_op(cond: &Array<i64>, x: &Value, y: &Value) -> Res<Value> {
    fn pick<T: Copy>(c: &Array<i64>, x: &Array<T>, y: &Array<T>) -> Res<Array<T>> {
        let shape = broadcast_shape(&c.shape, &broadcast_shape(&x.shape, &y.shape)?)?;
        let (ic, ix, iy) = (
            broadcast_index(&c.shape, &shape),
            broadcast_index(&x.shape, &shape),
            broadcast_index(&y.shape, &shape),
        );
        let n: usize = shape.iter().product();
        Ok(Array::new(
            shape,
            (0..n)
                .map(|k| {
                    if c.data[ic(k)] != 0 {
                        x.data[ix(k)]
                    } else {
                        y.data[iy(k)]
                    }
                })
                .collect(),
        ))
    }
    Ok(match (x, y) {
        (Value::F32(x), Value::F32(y)) => Value::F32(pick(cond, x, y)?),
        (Value::I64(x), Value::I64(y)) => Value::I64(pick(cond, x, y)?),
        _ => {
            return Err(format!(
                "x and y are {} and {}; they must have one element type",
                x.elem_name(),
                y.elem_name()
            ))
        }
    })
}

/// MaxPool on integer codes: the largest code of each window (padding never wins).
pub fn max_pool(x: &Array<i64>, window: &Window) -> Res<Array<i64>> {
    let geom = PoolGeom::new(&x.shape, window, PoolKind::Max)?;
    let [ah, aw] = geom.axes;
    let (h, w) = (geom.h, geom.w);
    let (ho, wo) = (ah.out as usize, aw.out as usize);
    let mut out = Vec::with_capacity(geom.planes * ho * wo);
    for plane in 0..geom.planes {
        let src = &x.data[plane * (h * w) as usize..(plane + 1) * (h * w) as usize];
        for oi in 0..ho as i64 {
            for oj in 0..wo as i64 {
                let mut best = i64::MIN;
                for ki in 0..ah.kernel {
                    let ii = oi * ah.stride - ah.pad_begin + ki * ah.dilation;
                    for kj in 0..aw.kernel {
                        let jj = oj * aw.stride - aw.pad_begin + kj * aw.dilation;
                        if (0..h).contains(&ii) && (0..w).contains(&jj) {
                            best = best.max(src[(ii * w + jj) as usize]);
                        }
                    }
                }
                out.push(best);
            }
        }
    }
    Ok(Array::new(geom.out_shape, out))
}

/// A residual Add on codes: `a` and `b` of one shape, element by element (`QAdd::apply`).
pub fn add(add: &etch_ir::quant::QAdd, a: &Array<i64>, b: &Array<i64>) -> Res<Array<i64>> {
    if a.shape != b.shape {
        return Err(format!(
            "the integer Add needs operands of one shape, got {:?} and {:?}",
            a.shape, b.shape
        ));
    }
    let data = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(&x, &y)| add.apply(x, y))
        .collect();
    Ok(Array::new(a.shape.clone(), data))
}

/// A quantized unary activation as a table (`etch_ir::quant::QTable`): entry `c − qmin` is the
/// output code of input code `c`, filled by the float semantics of the DequantizeLinear, the
/// activation and the QuantizeLinear it stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct IntTable {
    pub qmin: i64,
    pub entries: Vec<i64>,
}

impl IntTable {
    /// The table of `t`, from `activation`: the op's float semantics on a tensor of values.
    pub fn new(
        t: &etch_ir::quant::QTable,
        activation: impl FnOnce(Array<f32>) -> Res<Array<f32>>,
    ) -> Res<IntTable> {
        let (iq, oq) = (&t.input_quant, &t.output_quant);
        let codes = Array::new(
            vec![(iq.qmax - iq.qmin + 1) as usize],
            (iq.qmin as i64..=iq.qmax as i64).collect(),
        );
        let x = dequantize_linear(&codes, &[iq.scale], &[iq.zero_point as i64], 0)?;
        let y = activation(x)?;
        let q = quantize_linear(
            &y,
            &[oq.scale],
            &[oq.zero_point as i64],
            0,
            (oq.qmin as i64, oq.qmax as i64),
        )?;
        Ok(IntTable {
            qmin: iq.qmin as i64,
            entries: q.data,
        })
    }

    /// Looks every code of `x` up.
    pub fn apply(&self, x: &Array<i64>) -> Res<Array<i64>> {
        let data = x
            .data
            .iter()
            .map(|&c| {
                self.entries
                    .get((c - self.qmin) as usize)
                    .copied()
                    .ok_or_else(|| format!("code {c} is outside the table's input codes"))
            })
            .collect::<Res<Vec<i64>>>()?;
        Ok(Array::new(x.shape.clone(), data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// QuantizeLinear and DequantizeLinear, per tensor or per axis (any axis) over random
        /// shapes: each element by the ONNX formula with its own index's scale and zero point
        /// (ties to even, the output type's clamp), NaN and infinities among the inputs.
        #[test]
        fn qdq_is_the_formula_per_element(
            shape in proptest::collection::vec(1usize..5, 1..5),
            axis_pick in any::<usize>(),
            per_axis in any::<bool>(),
            seed in any::<u64>(),
        ) {
            let axis = axis_pick % shape.len();
            let n = if per_axis { shape[axis] } else { 1 };
            let mut draw = super::super::super::test_bits(seed);
            let len: usize = shape.iter().product();
            let mut xs: Vec<f32> = (0..len).map(|_| (draw() % 4001) as f32 / 8.0 - 250.0).collect();
            xs[(draw() % len as u64) as usize] = f32::NAN;
            xs[(draw() % len as u64) as usize] = f32::INFINITY;
            let scale: Vec<f32> = (0..n).map(|_| 0.25 + (draw() % 8) as f32 * 0.5).collect();
            let zp: Vec<i64> = (0..n).map(|_| (draw() % 41) as i64 - 20).collect();
            let x = Array::new(shape.clone(), xs);
            let range = (-128, 127);
            let q = quantize_linear(&x, &scale, &zp, axis as i64, range).unwrap();
            let d = dequantize_linear(&q, &scale, &zp, axis as i64).unwrap();
            let inner: usize = shape[axis + 1..].iter().product();
            for k in 0..len {
                let p = if n == 1 { 0 } else { (k / inner) % n };
                let want = ((x.data[k] / scale[p]).round_ties_even() as i64).saturating_add(zp[p]).clamp(-128, 127);
                prop_assert_eq!(q.data[k], want, "element {}", k);
                prop_assert_eq!(d.data[k].to_bits(), (((want - zp[p]) as f32) * scale[p]).to_bits());
            }
        }
    }
}
