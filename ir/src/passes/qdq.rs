//! Building blocks the quantizing passes (`quant`, `pow2`, `binarize`) share: weights rewritten
//! as `DequantizeLinear(codes, scale)`, QuantizeLinear/DequantizeLinear pairs on activations, and
//! the scale searches.

use petgraph::stable_graph::NodeIndex;

use crate::graph::{AttrValue, Attribute, Graph, Initializer, Node, Span};
use crate::tensor::{Data, ElemType, Tensor};

/// Adds an initializer under a fresh name built from `base`; returns the name.
pub(crate) fn add_init(g: &mut Graph, base: &str, tensor: Tensor) -> String {
    let name = g.fresh_name(base);
    g.initializers.push(Initializer {
        name: name.clone(),
        tensor,
        span: Span::default(),
    });
    name
}

/// Adds a node of the default domain.
pub(crate) fn add_node(
    g: &mut Graph,
    op_type: &str,
    attrs: Vec<Attribute>,
    inputs: Vec<String>,
    outputs: Vec<String>,
) -> Result<NodeIndex, String> {
    let node = Node::new("", op_type, attrs, inputs, outputs).map_err(|e| e.to_string())?;
    Ok(g.add_node(node))
}

pub(crate) fn f32_tensor(dims: Vec<i64>, v: Vec<f32>) -> Tensor {
    Tensor {
        elem: ElemType::F32,
        dims,
        data: Some(Data::F32(v)),
        external: None,
    }
}

pub(crate) fn i8_tensor(dims: Vec<i64>, v: Vec<i8>) -> Tensor {
    Tensor {
        elem: ElemType::I8,
        dims,
        data: Some(Data::I8(v)),
        external: None,
    }
}

pub(crate) fn i32_tensor(dims: Vec<i64>, v: Vec<i32>) -> Tensor {
    Tensor {
        elem: ElemType::I32,
        dims,
        data: Some(Data::I32(v)),
        external: None,
    }
}

fn axis_attr(axis: i64) -> Vec<Attribute> {
    vec![Attribute {
        name: "axis".into(),
        value: AttrValue::Int(axis),
    }]
}

/// Scales as a tensor: a scalar for one, else 1-D.
fn scale_tensor(scales: &[f32]) -> Tensor {
    if scales.len() == 1 {
        f32_tensor(vec![], scales.to_vec())
    } else {
        f32_tensor(vec![scales.len() as i64], scales.to_vec())
    }
}

/// Makes input `k` of `node` read `DequantizeLinear(codes, scales, axis)` instead of its weight:
/// `codes` are in the stored layout of `dims`, `scales` one per output channel (along `axis`) or one.
pub(crate) fn set_weight_dq(
    g: &mut Graph,
    node: NodeIndex,
    k: usize,
    codes: Vec<i8>,
    dims: Vec<i64>,
    scales: &[f32],
    axis: i64,
) -> Result<(), String> {
    set_dq(g, node, k, i8_tensor(dims, codes), scales, axis)
}

/// Makes input `k` of `node` read `DequantizeLinear(values (int32), scales, axis)`.
pub(crate) fn set_bias_dq(
    g: &mut Graph,
    node: NodeIndex,
    k: usize,
    values: Vec<i32>,
    dims: Vec<i64>,
    scales: &[f32],
    axis: i64,
) -> Result<(), String> {
    set_dq(g, node, k, i32_tensor(dims, values), scales, axis)
}

/// Makes input `k` of `node` read `DequantizeLinear(codes, scales, axis)` of a new initializer.
fn set_dq(
    g: &mut Graph,
    node: NodeIndex,
    k: usize,
    codes: Tensor,
    scales: &[f32],
    axis: i64,
) -> Result<(), String> {
    let base = g.nodes[node].inputs[k].clone();
    let q = add_init(g, &format!("{base}_quantized"), codes);
    let s = add_init(g, &format!("{base}_scale"), scale_tensor(scales));
    let out = g.fresh_name(&format!("{base}_dequantized"));
    g.nodes[node].inputs[k] = out.clone();
    add_node(
        g,
        "DequantizeLinear",
        axis_attr(axis),
        vec![q, s],
        vec![out],
    )?;
    Ok(())
}

/// Puts `QuantizeLinear(scale, zp) → DequantizeLinear` on `value`: every reader of `value` reads
/// the dequantized value instead. A graph output keeps its name (the DequantizeLinear writes it).
/// With `clip` (the names of a min and a max), a Clip in front keeps the codes in a narrower range.
pub(crate) fn insert_qdq(
    g: &mut Graph,
    value: &str,
    scale: &str,
    zero_point: &str,
    clip: Option<(&str, &str)>,
) -> Result<(), String> {
    let q = g.fresh_name(&format!("{value}_quantized"));
    let producer = g.producer(value);
    let (float_in, dq) = match producer {
        Some(p) if g.is_output(value) => {
            // the producer's result gets a new name; the DequantizeLinear writes the output's name,
            // so every other reader reads the dequantized value as elsewhere
            let f = g.fresh_name(&format!("{value}_float"));
            for o in g.nodes[p].outputs.iter_mut().filter(|o| *o == value) {
                *o = f.clone();
            }
            g.rebuild_edges();
            (f, value.to_string())
        }
        _ => {
            let dq = g.fresh_name(&format!("{value}_dequantized"));
            for idx in g.nodes.node_indices().collect::<Vec<_>>() {
                for i in g.nodes[idx].inputs.iter_mut().filter(|i| *i == value) {
                    *i = dq.clone();
                }
            }
            (value.to_string(), dq)
        }
    };
    let float_in = match clip {
        Some((lo, hi)) => {
            let c = g.fresh_name(&format!("{value}_clipped"));
            add_node(
                g,
                "Clip",
                vec![],
                vec![float_in, lo.into(), hi.into()],
                vec![c.clone()],
            )?;
            c
        }
        None => float_in,
    };
    add_node(
        g,
        "QuantizeLinear",
        vec![],
        vec![float_in, scale.into(), zero_point.into()],
        vec![q.clone()],
    )?;
    add_node(
        g,
        "DequantizeLinear",
        vec![],
        vec![q, scale.into(), zero_point.into()],
        vec![dq],
    )?;
    Ok(())
}

/// Symmetric quantization of one group of weights at `qmax` levels: the codes for scale `s`.
pub(crate) fn int_codes(w: &[f32], s: f32, qmax: i32) -> impl Iterator<Item = i8> + '_ {
    w.iter()
        .map(move |&v| ((v / s).round_ties_even().clamp(-qmax as f32, qmax as f32)) as i8)
}

/// The symmetric scale of a group of weights at `qmax` levels: `max|w| / qmax` for 8 bits; for
/// fewer bits, the clipping of `max|w|` (among 1, 0.95, … 0.5 of it) with the least squared error.
pub(crate) fn int_scale(w: &[f32], qmax: i32) -> f32 {
    let max = w.iter().fold(0.0f32, |a, &v| a.max(v.abs()));
    if max == 0.0 {
        return 1.0;
    }
    if qmax >= 127 {
        return max / qmax as f32;
    }
    let err = |s: f32| -> f64 {
        w.iter()
            .zip(int_codes(w, s, qmax))
            .map(|(&v, c)| ((v - c as f32 * s) as f64).powi(2))
            .sum()
    };
    (0..=10)
        .map(|k| max * (1.0 - 0.05 * k as f32) / qmax as f32)
        .min_by(|&a, &b| err(a).total_cmp(&err(b)))
        .unwrap_or(max / qmax as f32)
}

/// The nearest power-of-two code of `v / s` among `{0, ±1, ±2, …, ±2^max_exp}`.
pub(crate) fn pow2_code(v: f32, s: f32, max_exp: u32) -> i8 {
    let x = (v / s).abs();
    let mut best = (x, 0i32);
    for e in 0..=max_exp {
        let c = 1i32 << e;
        let d = (x - c as f32).abs();
        if d < best.0 {
            best = (d, c);
        }
    }
    (if v < 0.0 { -best.1 } else { best.1 }) as i8
}

/// The scale of a group of power-of-two weights: `max|w|` mapped onto the top code `2^max_exp`,
/// times the factor in `2^(−k/8)`, k = 0..16, with the least squared error.
pub(crate) fn pow2_scale(w: &[f32], max_exp: u32) -> f32 {
    let max = w.iter().fold(0.0f32, |a, &v| a.max(v.abs()));
    if max == 0.0 {
        return 1.0;
    }
    let top = (1u32 << max_exp) as f32;
    let err = |s: f32| -> f64 {
        w.iter()
            .map(|&v| ((v - pow2_code(v, s, max_exp) as f32 * s) as f64).powi(2))
            .sum()
    };
    (0..=16)
        .map(|k| max / top * (2.0f32).powf(-(k as f32) / 8.0))
        .min_by(|&a, &b| err(a).total_cmp(&err(b)))
        .unwrap_or(max / top)
}

/// An activation's scale and zero point for `bits`-bit codes in `[−2^(bits−1), 2^(bits−1) − 1]`
/// covering `[lo, hi]` (widened to include 0, so that zero — padding, ReLU — is exact):
/// `s = (hi − lo) / (2^bits − 1)`, `zp = round(qmin − lo / s)`.
pub(crate) fn act_params(lo: f32, hi: f32, bits: u32) -> (f32, i8) {
    let (qmin, qmax) = act_range(bits);
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let range = hi - lo;
    let s = if range > 0.0 && range.is_finite() {
        range / (qmax - qmin) as f32
    } else {
        1.0
    };
    let zp = (qmin as f32 - lo / s)
        .round()
        .clamp(qmin as f32, qmax as f32);
    (s, zp as i8)
}

/// The codes of a `bits`-bit activation: `[−2^(bits−1), 2^(bits−1) − 1]`.
pub(crate) fn act_range(bits: u32) -> (i32, i32) {
    (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
}

/// The range of observed values: min/max, or the `p`-th and `(100 − p)`-th percentiles.
pub(crate) fn observed_range(values: &mut [f32], percentile: Option<f64>) -> (f32, f32) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    match percentile {
        None => values
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            }),
        Some(p) => {
            let n = values.len();
            let at = |q: f64| (((n - 1) as f64) * q / 100.0).round() as usize;
            let (i_lo, i_hi) = (at(100.0 - p), at(p));
            let lo = *values.select_nth_unstable_by(i_lo, f32::total_cmp).1;
            let hi = *values.select_nth_unstable_by(i_hi, f32::total_cmp).1;
            (lo, hi)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pow2_codes_are_nearest() {
        assert_eq!(pow2_code(0.4, 1.0, 6), 0);
        assert_eq!(pow2_code(0.6, 1.0, 6), 1);
        assert_eq!(pow2_code(-2.9, 1.0, 6), -2);
        assert_eq!(pow2_code(-3.1, 1.0, 6), -4);
        assert_eq!(pow2_code(1000.0, 1.0, 6), 64);
    }

    #[test]
    fn activation_params_cover_the_range() {
        let (s, zp) = act_params(0.0, 6.0, 8);
        assert_eq!(zp, -128);
        assert!((s - 6.0 / 255.0).abs() < 1e-7);
        let (s, zp) = act_params(-1.0, 1.0, 8);
        assert!((s - 2.0 / 255.0).abs() < 1e-7);
        assert_eq!(zp, -1); // −128 + 127.5 rounds away from zero
        let (s, zp) = act_params(0.0, 1.5, 4);
        assert_eq!(zp, -8);
        assert!((s - 0.1).abs() < 1e-7);
        let mut v = (0..=100).map(|x| x as f32).collect::<Vec<_>>();
        assert_eq!(observed_range(&mut v, Some(99.0)), (1.0, 99.0));
        assert_eq!(observed_range(&mut v, None), (0.0, 100.0));
    }
}
