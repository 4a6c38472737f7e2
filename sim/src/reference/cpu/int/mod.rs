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
use requant::{requantize, Requant};

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
    /// Per output channel.
    pub requant: Vec<Requant>,
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
            zero_point: output.zero_point,
            qmin: output.qmin,
            qmax: output.qmax,
        })
    }

    /// Whether the dot products are XNOR/popcount (binary weights and activations).
    pub fn binary_dot(&self) -> bool {
        matches!(self.weights, WeightCodes::Xnor { .. })
    }

    /// The output code of channel `o` for a dot product: bias, requantize, clamp.
    pub fn output(&self, o: usize, dot: i32) -> i32 {
        requantize(
            dot.wrapping_add(self.bias[o]),
            &self.requant[o],
            self.zero_point,
            self.qmin,
            self.qmax,
        )
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
