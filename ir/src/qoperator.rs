//! ONNX's QOperator form of a quantized model: layers that take and give integer codes themselves,
//! with their scales and zero points as inputs. `QLinearConv` and `QLinearMatMul` (ONNX, opset 10)
//! and `QGemm` (onnxruntime's `com.microsoft` domain) are what onnxruntime's `quantize_static`
//! writes in `QuantFormat.QOperator`, and what Gemmini's flow reads.
//!
//! Their semantics are onnxruntime's kernels (`qlinearconv.cc`, `quantize_linear_matmul.cc`,
//! `qgemm.cc`, MLAS's `MlasRequantizeOutput`), which the ONNX text leaves to the implementation:
//!
//! ```text
//! acc[c] = Σ (x − x_zp)·(w[c] − w_zp) + bias[c]            (exact, in integers)
//! M[c]   = f32(f32(x_scale · w_scale[c]) / y_scale)          (float32, in this order)
//! y[c]   = clamp(y_zp + round_half_even(f32(f32(acc[c]) · M[c])), type range)
//! ```
//!
//! The float32 product is rounded to 24 bits before the rounding to an integer, so it equals
//! etch's fixed-point requantization (`round_half_even(acc · M)` exactly) only where it is exact:
//! when every `M[c]` is a power of two and `|acc|` stays below 2^24. `import-quant` rewrites such
//! layers into etch's QDQ layers, which every backend takes; the CPU executor runs the others as
//! onnxruntime does.

use crate::op::Op;

/// The domain of onnxruntime's contributed ops (`QGemm`).
pub const MS_DOMAIN: &str = "com.microsoft";

/// Where a QOperator layer's operands are among its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slots {
    pub x: usize,
    pub x_scale: usize,
    pub x_zero_point: usize,
    pub w: usize,
    pub w_scale: usize,
    pub w_zero_point: usize,
    /// The int32 bias in the accumulator's scale, when the op has one.
    pub bias: Option<usize>,
    pub y_scale: usize,
    pub y_zero_point: usize,
}

impl Op {
    /// For a QOperator layer: the float op it quantizes (with its attributes) and where its operands
    /// are. `None` for every other op.
    pub fn qoperator(&self) -> Option<(Op, Slots)> {
        let plain = Slots {
            x: 0,
            x_scale: 1,
            x_zero_point: 2,
            w: 3,
            w_scale: 4,
            w_zero_point: 5,
            bias: None,
            y_scale: 6,
            y_zero_point: 7,
        };
        match self {
            Op::QLinearConv { window, group } => Some((
                Op::Conv {
                    window: window.clone(),
                    group: *group,
                },
                Slots {
                    bias: Some(8),
                    ..plain
                },
            )),
            Op::QLinearMatMul => Some((Op::MatMul, plain)),
            Op::QGemm {
                alpha,
                trans_a,
                trans_b,
            } => Some((
                Op::Gemm {
                    alpha: *alpha,
                    beta: 1.0,
                    trans_a: *trans_a,
                    trans_b: *trans_b,
                },
                Slots {
                    bias: Some(6),
                    y_scale: 7,
                    y_zero_point: 8,
                    ..plain
                },
            )),
            _ => None,
        }
    }
}

/// onnxruntime's requantization multiplier of one output channel, `f32(f32(x_scale · w_scale) /
/// y_scale)`, in float32 as its kernels compute it.
pub fn multiplier(x_scale: f32, w_scale: f32, y_scale: f32) -> f32 {
    x_scale * w_scale / y_scale
}

/// onnxruntime's requantization of one accumulator: `clamp(zp + round_half_even(f32(acc) · m),
/// qmin, qmax)`, the float32 product rounded once more to an integer (MLAS clamps before it rounds,
/// which gives the same).
#[inline]
pub fn requantize(acc: i64, m: f32, zero_point: i32, qmin: i32, qmax: i32) -> i32 {
    let v = (acc as f32 * m).round_ties_even() as f64 + zero_point as f64;
    v.clamp(qmin as f64, qmax as f64) as i32
}

/// Whether `v` is a positive normal power of two (a float32 with an all-zero mantissa).
pub fn power_of_two(v: f32) -> bool {
    v.is_normal() && v > 0.0 && v.to_bits() & 0x007f_ffff == 0
}

/// Whether float32 `m` is exactly `x_scale · w_scale / y_scale` computed without rounding, and a
/// power of two: then onnxruntime's float32 requantization of any accumulator below 2^24 in
/// magnitude equals etch's fixed-point one.
pub fn exact_power_of_two(x_scale: f32, w_scale: f32, y_scale: f32) -> bool {
    let m = multiplier(x_scale, w_scale, y_scale);
    let exact = x_scale as f64 * w_scale as f64 / y_scale as f64;
    m as f64 == exact && power_of_two(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requantization_is_float32_then_ties_to_even() {
        // 5 · 0.5 = 2.5 → 2; 7 · 0.5 = 3.5 → 4; −5 · 0.5 → −2
        assert_eq!(requantize(5, 0.5, 0, -128, 127), 2);
        assert_eq!(requantize(7, 0.5, 0, -128, 127), 4);
        assert_eq!(requantize(-5, 0.5, 0, -128, 127), -2);
        assert_eq!(requantize(1000, 1.0, 10, 0, 255), 255);
        // an accumulator of 2^24 or more is rounded to float32 first: 2^24 + 1 gives 2^24
        assert_eq!(
            requantize((1 << 24) + 1, 1.0, 0, i32::MIN, i32::MAX),
            1 << 24
        );
        assert!(exact_power_of_two(0.5, 0.25, 0.125));
        assert!(!exact_power_of_two(0.1, 0.2, 0.02));
        assert!(!exact_power_of_two(0.5, 0.75, 1.0));
    }
}
