//! `pow2`: power-of-two weights (LogQuant, SmartDeal's shift weights): every Conv/Gemm/MatMul
//! weight becomes `DequantizeLinear(code, s[c])` with `code ∈ {0, ±1, ±2, …, ±2^E}`, so a product
//! is the activation shifted left by `e` (and negated). With `bits` b there are `2^b` codes: zero
//! and `2^(b−1) − 1` exponents per sign (b = 4: e in 0..=6, codes up to ±64, which fit the int8
//! tensor that stores them). Each output channel's scale is the one with the least squared error.
//! A later `quant` keeps these weights and quantizes the activations and biases.

use super::prune::weight_views;
use super::qdq::{pow2_code, pow2_scale, set_weight_dq};
use super::{Args, Param, ParamKind, Pass, PassContext, PassDef};
use crate::graph::Model;
use crate::tensor::Data;

/// Registry entry.
pub const DEF: PassDef = PassDef {
    name: "pow2",
    description: "Power-of-two weights: codes 0 and ±2^e with a per-channel scale, so every product is a shift of the activation.",
    params: &[Param { name: "bits", kind: ParamKind::Int { min: 2, max: 4 }, default: Some("4"), doc: "bits per code: zero and 2^(bits−1)−1 exponents per sign (4 bits: ±1 … ±64)" }],
    build: |a: &Args| Ok(Box::new(Pow2 { bits: a.int("bits") as u32 })),
};

struct Pow2 {
    bits: u32,
}

impl Pass for Pow2 {
    fn precondition(&self, model: &Model) -> Result<(), String> {
        super::require_weight_values(model)?;
        if weight_views(&model.graph).is_empty() {
            return Err("no Conv, Gemm or MatMul has a float weight initializer".into());
        }
        Ok(())
    }

    fn run(&self, model: &mut Model, _: &PassContext) -> Result<Vec<String>, String> {
        let max_exp = (1u32 << (self.bits - 1)) - 2;
        let g = &mut model.graph;
        let (mut layers, mut err, mut energy, mut zeros, mut total) =
            (0, 0.0f64, 0.0f64, 0usize, 0usize);
        for idx in g.node_order() {
            let Some(view) = super::prune::weight_views_of(g, &g.nodes[idx]) else {
                continue;
            };
            let init = g
                .initializer(&view.name)
                .ok_or("internal: the weight vanished")?;
            let (dims, Some(Data::F32(w))) = (init.tensor.dims.clone(), init.tensor.data.clone())
            else {
                continue;
            };
            let mut codes = vec![0i8; w.len()];
            let mut scales = Vec::with_capacity(view.outs);
            for o in 0..view.outs {
                let idx_o: Vec<usize> = (0..view.reduction).map(|r| view.at(o, r)).collect();
                let vals: Vec<f32> = idx_o.iter().map(|&i| w[i]).collect();
                let s = pow2_scale(&vals, max_exp);
                for (&i, &v) in idx_o.iter().zip(&vals) {
                    let c = pow2_code(v, s, max_exp);
                    codes[i] = c;
                    err += ((v - c as f32 * s) as f64).powi(2);
                    energy += (v as f64).powi(2);
                }
                scales.push(s);
            }
            zeros += codes.iter().filter(|&&c| c == 0).count();
            total += codes.len();
            let axis = if view.transposed { 1 } else { 0 };
            set_weight_dq(g, idx, 1, codes, dims, &scales, axis)?;
            layers += 1;
        }
        super::dead_values::drop_unused_initializers(g);
        Ok(vec![format!(
            "{layers} layers' weights to {}-bit powers of two (codes 0, ±1 … ±{}, a scale per output channel): relative squared error {:.2}%, {zeros} of {total} codes are zero",
            self.bits,
            1u32 << max_exp,
            100.0 * err / energy.max(f64::MIN_POSITIVE)
        )])
    }
}
