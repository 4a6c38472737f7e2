//! The integer datapath of quantized layers (DESIGN.md, "Integer semantics"): the golden model the
//! GPU, RTL and HLS paths must reproduce bit for bit. `etch_ir::quant` recognizes each
//! `DequantizeLinear → Conv/Gemm/MatMul → [Relu|Clip] → QuantizeLinear` pattern; the plan runs it
//! here on the int8 codes, with int32 accumulation and fixed-point requantization, and runs
//! MaxPool/Flatten/Reshape between equal quantizers on the codes too. Every other op of a quantized
//! model runs in float through the standard QuantizeLinear/DequantizeLinear semantics (`qdq`).

pub mod conv;
pub mod dot;
pub mod gemm;
pub mod qdq;
pub mod requant;

use etch_ir::op::Op;
use etch_ir::quant::{QInput, QuantLayer};

use super::Res;
use crate::reference::value::{Array, Value};
use dot::WeightCodes;
use requant::{requantize, requantize_run, Requant};

/// How the layer reads its input codes.
#[derive(Debug, Clone, PartialEq)]
pub enum InputCode {
    /// `xd = x_q − zero_point`.
    Int { zero_point: i32 },
    /// `xd = +1 if x_q ≥ threshold[c] else −1` (one threshold, or one per channel).
    Binary { thresholds: Vec<i32> },
}

impl InputCode {
    /// The decoded value of code `q` in channel `c`.
    pub fn value(&self, q: i64, c: usize) -> i32 {
        match self {
            InputCode::Int { zero_point } => (q - *zero_point as i64) as i32,
            InputCode::Binary { .. } => {
                if self.bit(q, c) {
                    1
                } else {
                    -1
                }
            }
        }
    }

    /// Whether code `q` in channel `c` is a +1 (binary inputs; `q ≥ zp` otherwise).
    pub fn bit(&self, q: i64, c: usize) -> bool {
        match self {
            InputCode::Int { zero_point } => q >= *zero_point as i64,
            InputCode::Binary { thresholds } => {
                q >= thresholds[if thresholds.len() == 1 { 0 } else { c }] as i64
            }
        }
    }
}

/// One quantized layer, ready for the integer kernels.
#[derive(Debug, Clone, PartialEq)]
pub struct IntLayer {
    pub op: Op,
    pub outs: usize,
    pub reduction: usize,
    /// The weight's dims in output-major form (`[M, Cg, kh, kw]` for a convolution, `[M, K]` else).
    pub weight_dims: Vec<usize>,
    pub weights: WeightCodes,
    /// int32, in the accumulator's scale; zeros when the layer has no bias.
    pub bias: Vec<i32>,
    pub input: InputCode,
    /// Per output channel; empty for a QOperator layer (`float32`).
    pub requant: Vec<Requant>,
    /// A QOperator layer's float32 multipliers (one per output channel), in place of `requant`:
    /// onnxruntime's requantization (`etch_ir::qoperator::requantize`), run only on the CPU.
    pub float32: Option<Vec<f32>>,
    pub zero_point: i32,
    pub qmin: i32,
    pub qmax: i32,
}

impl IntLayer {
    /// Builds the integer layer of a recognized pattern (`l.is_integer()`).
    pub fn new(l: &QuantLayer) -> Result<IntLayer, String> {
        let (Some(input), Some(output)) = (&l.input, &l.output) else {
            return Err("the layer's input or output is not quantized".into());
        };
        let w = &l.weight;
        let binary_input = matches!(input, QInput::Binary { .. });
        let input_code = match input {
            QInput::Int { zero_point, .. } => InputCode::Int {
                zero_point: *zero_point,
            },
            QInput::Binary { thresholds, .. } => InputCode::Binary {
                thresholds: thresholds.clone(),
            },
        };
        let weights = WeightCodes::new(&w.codes, w.outs, w.reduction, w.form, binary_input)?;
        let sx = input.scale() as f64;
        let requant = (0..w.outs)
            .map(|o| Requant::new(sx * w.scale(o) as f64 / output.scale as f64))
            .collect::<Result<Vec<_>, _>>()?;
        let weight_dims: Vec<usize> = match l.op {
            Op::Conv { .. } => w.dims.iter().map(|&d| d as usize).collect(),
            _ => vec![w.outs, w.reduction],
        };
        let bias = l
            .bias
            .as_ref()
            .map_or_else(|| vec![0; w.outs], |b| b.values.clone());
        Ok(IntLayer {
            op: l.op.clone(),
            outs: w.outs,
            reduction: w.reduction,
            weight_dims,
            weights,
            bias,
            input: input_code,
            requant,
            float32: None,
            zero_point: output.zero_point,
            qmin: output.qmin,
            qmax: output.qmax,
        })
    }

    /// Builds a QOperator layer (`QLinearConv`, `QLinearMatMul`, `QGemm`: `etch_ir::qoperator`)
    /// from its operands, `operand(k)` being input `k` where it is known before run time, and its
    /// output type (uint8 or int8): int8 weights with zero point 0 (per tensor or per output
    /// channel), onnxruntime's float32 requantization.
    pub fn qoperator<'v>(
        op: &Op,
        operand: impl Fn(usize) -> Option<&'v Value>,
        out_elem: etch_ir::tensor::ElemType,
    ) -> Result<IntLayer, String> {
        use etch_ir::tensor::ElemType;
        let Some((float, s)) = op.qoperator() else {
            return Err("not a QOperator layer".into());
        };
        let floats = |k: usize, what: &str| -> Result<Vec<f32>, String> {
            match operand(k) {
                Some(Value::F32(a)) if !a.data.is_empty() => Ok(a.data.clone()),
                _ => Err(format!("the {what} must be a float constant")),
            }
        };
        let ints = |k: usize, what: &str| -> Result<Option<&'v Array<i64>>, String> {
            match operand(k) {
                None => Ok(None),
                Some(Value::I64(a)) => Ok(Some(a)),
                Some(_) => Err(format!("the {what} must be integer")),
            }
        };
        let scalar = |k: usize, what: &str| -> Result<i32, String> {
            match ints(k, what)? {
                None => Ok(0),
                Some(a) if a.data.len() == 1 => Ok(a.data[0] as i32),
                Some(_) => Err(format!("the {what} must be one value (per tensor)")),
            }
        };
        let x_scale = floats(s.x_scale, "input scale")?;
        let y_scale = floats(s.y_scale, "output scale")?;
        if x_scale.len() != 1 || y_scale.len() != 1 {
            return Err("the input and output scales must be one value each (per tensor)".into());
        }
        let x_zp = scalar(s.x_zero_point, "input zero point")?;
        let y_zp = scalar(s.y_zero_point, "output zero point")?;
        let (qmin, qmax) = match out_elem {
            ElemType::U8 => (0, 255),
            ElemType::I8 => (-128, 127),
            e => return Err(format!("the output must be uint8 or int8 codes, not {e}")),
        };
        let w = ints(s.w, "weight")?.ok_or("the weight must be a constant (int8 codes)")?;
        if w.data.iter().any(|&c| !(-128..=127).contains(&c)) {
            return Err("the weight codes must be int8 (uint8 weights are not supported: quantize the weights as int8, onnxruntime's default)".into());
        }
        if ints(s.w_zero_point, "weight zero point")?
            .is_some_and(|z| z.data.iter().any(|&v| v != 0))
        {
            return Err(
                "the weight zero point must be 0 (symmetric int8 weights, onnxruntime's default)"
                    .into(),
            );
        }
        // the weight in output-major order: `[M, Cg, kh, kw]`, or `[N, K]` for a product
        let transposed = match &float {
            Op::Gemm {
                alpha,
                trans_a,
                trans_b,
                ..
            } => {
                if *alpha != 1.0 || *trans_a {
                    return Err("only alpha = 1 and transA = 0 are supported".into());
                }
                !*trans_b
            }
            Op::MatMul => true,
            _ => false,
        };
        let (outs, reduction, weight_dims) = match (&float, w.shape.as_slice()) {
            (Op::Conv { .. }, [m, rest @ ..]) if !rest.is_empty() => {
                (*m, rest.iter().product(), w.shape.clone())
            }
            (_, [k, n]) if transposed => (*n, *k, vec![*n, *k]),
            (_, [n, k]) if !transposed => (*n, *k, vec![*n, *k]),
            _ => return Err(format!("the weight's shape {:?} is not supported", w.shape)),
        };
        let codes: Vec<i8> = (0..outs * reduction)
            .map(|i| {
                let (o, r) = (i / reduction.max(1), i % reduction.max(1));
                w.data[if transposed { r * outs + o } else { i }] as i8
            })
            .collect();
        let w_scale = floats(s.w_scale, "weight scale")?;
        if w_scale.len() != 1 && w_scale.len() != outs {
            return Err(format!(
                "the weight scale has {} values; it must have one or one per output channel ({outs})",
                w_scale.len()
            ));
        }
        let ws = |o: usize| w_scale[if w_scale.len() == 1 { 0 } else { o }];
        let multipliers: Vec<f32> = (0..outs)
            .map(|o| etch_ir::qoperator::multiplier(x_scale[0], ws(o), y_scale[0]))
            .collect();
        if let Some(m) = multipliers.iter().find(|m| !(m.is_finite() && **m > 0.0)) {
            return Err(format!(
                "the requantization multiplier {m} is not a positive number"
            ));
        }
        let bias = match s.bias.map(|b| ints(b, "bias")).transpose()?.flatten() {
            None => vec![0; outs],
            Some(b) if b.data.len() == outs => b.data.iter().map(|&v| v as i32).collect(),
            Some(b) => {
                return Err(format!(
                    "the bias has {} values; it must have one per output channel ({outs})",
                    b.data.len()
                ))
            }
        };
        Ok(IntLayer {
            op: float,
            outs,
            reduction,
            weight_dims,
            weights: WeightCodes::new(
                &codes,
                outs,
                reduction,
                etch_ir::quant::WeightForm::Int,
                false,
            )?,
            bias,
            input: InputCode::Int { zero_point: x_zp },
            requant: Vec::new(),
            float32: Some(multipliers),
            zero_point: y_zp,
            qmin,
            qmax,
        })
    }

    /// Whether the dot products are XNOR/popcount (binary weights and activations).
    pub fn binary_dot(&self) -> bool {
        matches!(self.weights, WeightCodes::Xnor { .. })
    }

    /// The output code of channel `o` for a dot product: bias, requantize, clamp.
    pub fn output(&self, o: usize, dot: i32) -> i32 {
        self.requantizer(o)(dot)
    }

    /// [`IntLayer::output`] of channel `o` with the channel's constants looked up once: what a
    /// kernel applies to a whole plane of dot products.
    #[inline]
    pub fn requantizer(&self, o: usize) -> impl Fn(i32) -> i32 + '_ {
        let (bias, zp, qmin, qmax) = (self.bias[o], self.zero_point, self.qmin, self.qmax);
        // onnxruntime's float32 multiplier (QOperator layers), or etch's fixed-point one
        enum Rule<'a> {
            Float32(f32),
            Fixed(&'a Requant),
        }
        let rule = match &self.float32 {
            Some(m) => Rule::Float32(m[o]),
            None => Rule::Fixed(&self.requant[o]),
        };
        move |dot: i32| {
            let acc = dot.wrapping_add(bias);
            match rule {
                Rule::Float32(m) => etch_ir::qoperator::requantize(acc as i64, m, zp, qmin, qmax),
                Rule::Fixed(rq) => requantize(acc, rq, zp, qmin, qmax),
            }
        }
    }

    /// [`IntLayer::output`] of channel `o` for each of `dots`, into `out` (the fixed-point rule
    /// by [`requantize_run`], in 256-bit vectors where the CPU has them).
    pub fn output_plane(&self, o: usize, dots: &[i32], out: &mut [i64]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, the only feature the function enables
            unsafe { self.output_plane_avx2(o, dots, out) };
            return;
        }
        self.output_plane_plain(o, dots, out);
    }

    /// [`IntLayer::output_plane`] compiled for 256-bit vectors: the same exact arithmetic.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn output_plane_avx2(&self, o: usize, dots: &[i32], out: &mut [i64]) {
        self.output_plane_plain(o, dots, out);
    }

    #[inline(always)]
    fn output_plane_plain(&self, o: usize, dots: &[i32], out: &mut [i64]) {
        match &self.float32 {
            None => {
                let range = (self.zero_point, self.qmin, self.qmax);
                requantize_run(dots, self.bias[o], &self.requant[o], range, out)
            }
            Some(_) => {
                let output = self.requantizer(o);
                for (y, &d) in out.iter_mut().zip(dots) {
                    *y = output(d) as i64;
                }
            }
        }
    }

    /// Runs the layer on int8 codes.
    pub fn run(&self, x: &Value) -> Res<Value> {
        let Value::I64(x) = x else {
            return Err(format!(
                "the integer kernel takes int8 codes, not {}",
                x.elem_name()
            ));
        };
        let y: Array<i64> = match &self.op {
            Op::Conv { window, group } => conv::conv(self, window, *group as usize, x)?,
            _ => gemm::gemm(self, x)?,
        };
        Ok(Value::I64(y))
    }
}
