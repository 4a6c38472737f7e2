//! `quant`: post-training quantization to the QDQ form of DESIGN.md's "Integer semantics".
//! Conv, Gemm and MatMul weights become symmetric `int{bits}` codes with a per-channel (or
//! per-tensor) scale; every activation a layer reads or writes gets an int8
//! QuantizeLinear/DequantizeLinear pair with a scale and zero point calibrated on data; biases
//! become int32 in the accumulator's scale `s_x·s_w[c]`. A ReLU/Clip right after a layer is
//! quantized at its output (it folds into the integer clamp), and MaxPool/Flatten/Reshape between
//! two quantized tensors inherit their input's parameters (so they run on the codes). A residual
//! Add of two activations, and a Concat, get their operands and result quantized with one shared
//! scale and zero point, calibrated on the union of their ranges, so the Add runs exactly on the
//! codes (`etch_ir::quant::QAdd`) and the Concat moves codes. A unary activation no layer
//! absorbs (Sigmoid, HardSigmoid, HardSwish, Tanh, GELU, LeakyReLU, … , a lone ReLU/Clip) is quantized on both sides, so it
//! runs as a table of codes (`etch_ir::quant::QTable`). A GlobalAveragePool is first rewritten as the depthwise convolution
//! it is (`gap_as_conv`) and quantized as a layer. Weights already in DequantizeLinear form
//! (`pow2`, `binarize`) are kept.

use std::collections::{HashMap, HashSet};

use petgraph::stable_graph::NodeIndex;

use super::prune::weight_views_of;
use super::qdq::{
    act_params, act_range, add_init, f32_tensor, i8_tensor, insert_qdq, int_codes, int_scale,
    observed_range, set_bias_dq, set_weight_dq,
};
use super::{Args, Param, ParamKind, Pass, PassContext, PassDef};
use crate::graph::{Graph, Model};
use crate::infer::GraphInfo;
use crate::op::Op;
use crate::tensor::Data;

/// Registry entry.
pub const DEF: PassDef = PassDef {
    name: "quant",
    description: "Quantize Conv/Gemm/MatMul to integers in QDQ form: symmetric int{bits} weights, int{act_bits} activations (in int8 tensors) calibrated on data (ReLU folded into the clamp), int32 biases; a residual Add's or a Concat's operands and result share one scale, and a GlobalAveragePool becomes a depthwise convolution, so both run on codes; weights already quantized by pow2/binarize are kept.",
    params: &[
        Param { name: "bits", kind: ParamKind::Int { min: 2, max: 8 }, default: Some("8"), doc: "weight bits (codes are stored in int8 tensors; below 8 bits the clipping with the least squared error is chosen)" },
        Param { name: "per", kind: ParamKind::Choice(&["channel", "tensor"]), default: Some("channel"), doc: "one weight scale per output channel, or one per layer" },
        Param { name: "act_bits", kind: ParamKind::Int { min: 2, max: 8 }, default: Some("8"), doc: "activation bits: codes in [−2^(b−1), 2^(b−1)−1], stored in int8 (below 8, a Clip in front of each calibrated QuantizeLinear keeps them there)" },
        Param { name: "calib", kind: ParamKind::Path, default: None, doc: "needed: the CSV of calibration samples, a label and then the flattened input per row (like examples/data/digits_train.csv)" },
        Param { name: "calib_samples", kind: ParamKind::Int { min: 1, max: 1_000_000 }, default: Some("512"), doc: "how many rows of the calibration CSV to run" },
        Param { name: "calib_method", kind: ParamKind::Choice(&["minmax", "percentile"]), default: Some("minmax"), doc: "activation range: observed min/max, or percentiles" },
        Param { name: "percentile", kind: ParamKind::Float { min: 50.0, max: 100.0 }, default: Some("99.99"), doc: "for calib_method=percentile: the range is the (100−p)-th to p-th percentile" },
    ],
    build: |a: &Args| {
        Ok(Box::new(Quant {
            bits: a.int("bits") as u32,
            per_channel: a.word("per") == "channel",
            act_bits: a.int("act_bits") as u32,
            calib: a.path("calib").map(str::to_string),
            samples: a.int("calib_samples") as usize,
            percentile: (a.word("calib_method") == "percentile").then(|| a.float("percentile")),
        }))
    },
};

struct Quant {
    bits: u32,
    per_channel: bool,
    act_bits: u32,
    calib: Option<String>,
    samples: usize,
    percentile: Option<f64>,
}

/// Ops that move values without arithmetic: between two quantized tensors they keep the codes.
fn transparent(op: &Op) -> bool {
    matches!(
        op,
        Op::MaxPool { .. } | Op::Flatten { .. } | Op::Reshape { .. } | Op::Identity
    )
}

/// A layer to quantize.
struct Target {
    node: NodeIndex,
    /// Whether its weight is a float initializer (else it is already in DequantizeLinear form).
    float_weight: bool,
    /// The activation quantized for its input (the binarizer's input when it reads ±1 values).
    input_point: String,
    binary_input: bool,
}

/// The layers `quant` rewrites, and one line for each it leaves.
fn targets(model: &Model, info: &GraphInfo) -> (Vec<Target>, Vec<String>) {
    let g = &model.graph;
    let analysis = crate::quant::analyze(model, info);
    let quantized: HashMap<NodeIndex, &crate::quant::QuantLayer> =
        analysis.layers.iter().map(|l| (l.node, l)).collect();
    let (mut out, mut left) = (Vec::new(), Vec::new());
    for idx in g.node_order() {
        let n = &g.nodes[idx];
        if !matches!(n.op, Op::Conv { .. } | Op::Gemm { .. } | Op::MatMul) {
            continue;
        }
        let name = n.display_name();
        if let Op::Gemm {
            alpha,
            beta,
            trans_a,
            ..
        } = n.op
        {
            if alpha != 1.0 || beta != 1.0 || trans_a {
                left.push(format!(
                    "left `{name}` in float: Gemm with alpha, beta or transA other than 1, 1, 0"
                ));
                continue;
            }
        }
        if info
            .ty(&n.inputs[0])
            .and_then(|t| t.shape.as_ref())
            .is_some_and(|s| matches!(n.op, Op::MatMul) && s.len() != 2)
        {
            left.push(format!(
                "left `{name}` in float: MatMul on a rank ≠ 2 input"
            ));
            continue;
        }
        let float_weight = weight_views_of(g, n).is_some();
        match quantized.get(&idx) {
            _ if float_weight => {}
            Some(l) if l.input.is_some() => {
                left.push(format!("left `{name}`: it is already quantized"));
                continue;
            }
            Some(_) => {}
            None => {
                left.push(format!("left `{name}` in float: its weight is neither a float initializer nor in DequantizeLinear form"));
                continue;
            }
        }
        let (input_point, binary_input) = match crate::quant::binarizer_of(g, info, &n.inputs[0]) {
            Some((u, ..)) => (u, true),
            None => (n.inputs[0].clone(), false),
        };
        out.push(Target {
            node: idx,
            float_weight,
            input_point,
            binary_input,
        });
    }
    (out, left)
}

/// The value a layer's quantized output is taken at: after a ReLU/Clip that alone reads it.
fn output_point(g: &Graph, y: &str) -> String {
    let c = g.consumers(y);
    if c.len() == 1
        && !g.is_output(y)
        && matches!(g.nodes[c[0]].op, Op::Relu | Op::Clip { .. })
        && g.nodes[c[0]].inputs[0] == y
    {
        return g.nodes[c[0]].outputs[0].clone();
    }
    y.to_string()
}

/// The ops whose operands and result must share one scale: residual Adds of two computed
/// activations of one shape, and Concats of computed activations. Each as its operands and the
/// point its result is quantized at.
fn shared_scale_sets(g: &Graph, info: &GraphInfo) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for idx in g.node_order() {
        let n = &g.nodes[idx];
        let dims = |v: &str| info.ty(v).and_then(|t| t.known_dims());
        let computed = !n.inputs.is_empty()
            && n.inputs
                .iter()
                .all(|v| !v.is_empty() && !info.consts.contains_key(v));
        let wanted = match n.op {
            Op::Add => {
                n.inputs.len() == 2
                    && dims(&n.inputs[0]).is_some()
                    && dims(&n.inputs[0]) == dims(&n.inputs[1])
                    && dims(&n.inputs[0]) == dims(&n.outputs[0])
            }
            Op::Concat { .. } => true,
            _ => false,
        };
        if computed && wanted {
            let mut set = n.inputs.clone();
            set.push(output_point(g, &n.outputs[0]));
            out.push(set);
        }
    }
    out
}

/// The activations that run as tables (`etch_ir::quant::QTable`): a Sigmoid, HardSigmoid,
/// HardSwish or total `Unary` function, or a ReLU/Clip that no layer's or Add's output clamp absorbs, gets its input and
/// its output quantized.
fn table_points(g: &Graph) -> Vec<String> {
    let mut out = Vec::new();
    for idx in g.node_order() {
        let n = &g.nodes[idx];
        let Some(x) = n.inputs.first() else { continue };
        if !crate::quant::is_table_op(&n.op) || n.outputs.len() != 1 {
            continue;
        }
        let absorbed = g.producer(x).is_some_and(|p| {
            matches!(
                g.nodes[p].op,
                Op::Conv { .. } | Op::Gemm { .. } | Op::MatMul | Op::Add
            ) && output_point(g, x) == n.outputs[0]
        });
        if !absorbed {
            out.push(x.clone());
            out.push(n.outputs[0].clone());
        }
    }
    out
}

/// Merges overlapping sets into the groups that must share one scale.
fn shared_groups(sets: impl Iterator<Item = Vec<String>>) -> Vec<Vec<String>> {
    let mut groups: Vec<Vec<String>> = Vec::new();
    for set in sets {
        let mut merged: Vec<String> = set;
        groups.retain(|g| {
            if g.iter().any(|m| merged.contains(m)) {
                merged.extend(g.iter().cloned());
                false
            } else {
                true
            }
        });
        merged.sort();
        merged.dedup();
        groups.push(merged);
    }
    groups
}

/// The calibrated point a value inherits its parameters from through transparent ops, if any.
fn inherited(
    g: &Graph,
    v: &str,
    points: &HashSet<String>,
    chain: &mut Vec<String>,
) -> Option<String> {
    let p = g.producer(v)?;
    let n = &g.nodes[p];
    if !transparent(&n.op) || n.outputs.iter().skip(1).any(|o| !o.is_empty()) {
        return None;
    }
    let u = n.inputs.first()?.clone();
    let mut sub = Vec::new();
    if let Some(r) = inherited(g, &u, points, &mut sub) {
        chain.extend(sub);
        chain.push(u);
        return Some(r);
    }
    points.contains(&u).then_some(u)
}

impl Pass for Quant {
    fn precondition(&self, model: &Model) -> Result<(), String> {
        super::require_weight_values(model)?;
        if self.act_bits < 8 && model.default_opset().unwrap_or(17) < 11 {
            return Err("act_bits below 8 puts a Clip with min/max inputs in front of each QuantizeLinear, which needs opset 11 or later; this model imports an older opset".into());
        }
        if self.calib.is_none() {
            return Err("quant calibrates the activations on data: pass calib=\"FILE.csv\", a CSV with a label and then the flattened input on each row, e.g. quant(bits=8,calib=\"examples/data/digits_train.csv\")".into());
        }
        let info = crate::verify::verify(model).map_err(|e| e.to_string())?;
        let (found, left) = targets(model, &info);
        if found.is_empty() {
            return Err(if left.is_empty() {
                "the model has no Conv, Gemm or MatMul to quantize".to_string()
            } else {
                format!("no layer can be quantized: {}", left.join("; "))
            });
        }
        Ok(())
    }

    fn run(&self, model: &mut Model, cx: &PassContext) -> Result<Vec<String>, String> {
        let calib = self
            .calib
            .as_deref()
            .ok_or("quant needs calib=\"FILE.csv\"")?;
        let calibrator = cx.calibrator.ok_or(
            "quant needs a calibrator to run the model on data, and this caller gave none",
        )?;
        // a global average pooling becomes the depthwise convolution it is, to quantize like one
        let info = crate::verify::verify(model).map_err(|e| e.to_string())?;
        let pools = super::gap_as_conv::rewrite(model, &info)?;
        let info = crate::verify::verify(model).map_err(|e| e.to_string())?;
        let (targets, mut lines) = targets(model, &info);
        if pools > 0 {
            lines.push(format!("rewrote {pools} GlobalAveragePool as depthwise convolutions with weights 1/(H·W), quantized with the other layers"));
        }
        let g = &model.graph;
        // the activations to quantize, in graph order
        let mut points: Vec<String> = Vec::new();
        for t in &targets {
            let y = output_point(g, &g.nodes[t.node].outputs[0]);
            for v in [t.input_point.clone(), y] {
                if !points.contains(&v) {
                    points.push(v);
                }
            }
        }
        // residual Adds and Concats: the operands and the result quantized, with one scale
        // (`QAdd`; a Concat then moves codes)
        let shared = shared_scale_sets(g, &info);
        for v in shared.iter().flatten().chain(&table_points(g)) {
            if !points.contains(v) {
                points.push(v.clone());
            }
        }
        let point_set: HashSet<String> = points.iter().cloned().collect();
        // values that inherit their parameters through MaxPool/Flatten/Reshape, and the roots
        let mut inherit: HashMap<String, String> = HashMap::new();
        for v in &points {
            let mut chain = Vec::new();
            if let Some(r) = inherited(g, v, &point_set, &mut chain) {
                for c in chain.into_iter().chain([v.clone()]) {
                    inherit.insert(c, r.clone());
                }
            }
        }
        let roots: Vec<String> = points
            .iter()
            .filter(|v| !inherit.contains_key(*v))
            .cloned()
            .collect();
        let mut observed = calibrator.observe(model, &roots, calib, self.samples)?;
        let mut ranges: HashMap<String, (f32, f32)> = HashMap::new();
        for r in &roots {
            let values = observed
                .get_mut(r)
                .ok_or_else(|| format!("calibration did not observe `{r}`"))?;
            ranges.insert(r.clone(), observed_range(values, self.percentile));
        }
        // an Add's operands and result share the range that covers all three
        let root_of = |v: &String| inherit.get(v).unwrap_or(v).clone();
        let groups = shared_groups(
            shared
                .iter()
                .map(|set| set.iter().map(root_of).collect::<Vec<_>>()),
        );
        for members in &groups {
            let lo = members
                .iter()
                .map(|m| ranges[m].0)
                .fold(f32::INFINITY, f32::min);
            let hi = members
                .iter()
                .map(|m| ranges[m].1)
                .fold(f32::NEG_INFINITY, f32::max);
            for m in members {
                ranges.insert(m.clone(), (lo, hi));
            }
        }
        let params: HashMap<String, (f32, i8)> = ranges
            .iter()
            .map(|(r, &(lo, hi))| (r.clone(), act_params(lo, hi, self.act_bits)))
            .collect();
        let g = &mut model.graph;
        // one scale and zero point per root, shared by the values that inherit it
        // (and, below 8 activation bits, the bounds of the Clip that keeps a calibrated value's
        // codes in range; values inheriting through MaxPool/Flatten/Reshape are in range already)
        let mut inits: HashMap<String, (String, String)> = HashMap::new();
        let mut clips: HashMap<String, (String, String)> = HashMap::new();
        let (qlo, qhi) = act_range(self.act_bits);
        for r in &roots {
            let (s, zp) = params[r];
            let sn = add_init(g, &format!("{r}_scale"), f32_tensor(vec![], vec![s]));
            let zn = add_init(g, &format!("{r}_zero_point"), i8_tensor(vec![], vec![zp]));
            inits.insert(r.clone(), (sn, zn));
            if self.act_bits < 8 {
                let lo = add_init(
                    g,
                    &format!("{r}_min"),
                    f32_tensor(vec![], vec![s * (qlo - zp as i32) as f32]),
                );
                let hi = add_init(
                    g,
                    &format!("{r}_max"),
                    f32_tensor(vec![], vec![s * (qhi - zp as i32) as f32]),
                );
                clips.insert(r.clone(), (lo, hi));
            }
        }
        let mut all: Vec<String> = points.clone();
        all.extend(inherit.keys().filter(|k| !point_set.contains(*k)).cloned());
        for v in &all {
            let root = inherit.get(v).unwrap_or(v);
            let (sn, zn) = inits[root].clone();
            let clip = clips.get(v).map(|(lo, hi)| (lo.as_str(), hi.as_str()));
            insert_qdq(g, v, &sn, &zn, clip)?;
        }
        // weights and biases
        let qmax = (1i32 << (self.bits - 1)) - 1;
        let (mut n_float, mut n_kept, mut n_bias) = (0, 0, 0);
        for t in &targets {
            let n = g.nodes[t.node].clone();
            let wscales: Vec<f32> = if t.float_weight {
                let view = weight_views_of(g, &n).ok_or("internal: the weight view vanished")?;
                let init = g
                    .initializer(&view.name)
                    .ok_or("internal: the weight vanished")?;
                let (dims, Some(Data::F32(w))) =
                    (init.tensor.dims.clone(), init.tensor.data.clone())
                else {
                    return Err("internal: weight is not float".into());
                };
                let groups: Vec<Vec<usize>> = if self.per_channel {
                    (0..view.outs)
                        .map(|o| (0..view.reduction).map(|r| view.at(o, r)).collect())
                        .collect()
                } else {
                    vec![(0..w.len()).collect()]
                };
                let mut codes = vec![0i8; w.len()];
                let mut scales = Vec::with_capacity(groups.len());
                for idx in &groups {
                    let vals: Vec<f32> = idx.iter().map(|&i| w[i]).collect();
                    let s = int_scale(&vals, qmax);
                    for (&i, c) in idx.iter().zip(int_codes(&vals, s, qmax)) {
                        codes[i] = c;
                    }
                    scales.push(s);
                }
                let axis = if view.transposed { 1 } else { 0 };
                set_weight_dq(g, t.node, 1, codes, dims, &scales, axis)?;
                n_float += 1;
                scales
            } else {
                n_kept += 1;
                let dq = g
                    .producer(&n.inputs[1])
                    .ok_or("internal: the weight's DequantizeLinear vanished")?;
                g.initializer(&g.nodes[dq].inputs[1])
                    .and_then(|i| i.tensor.floats())
                    .ok_or("internal: weight scale is not a float initializer")?
            };
            // bias: int32 in the accumulator's scale s_x·s_w[c]
            let Some(b) = n
                .inputs
                .get(2)
                .filter(|b| !b.is_empty() && !matches!(n.op, Op::MatMul))
            else {
                continue;
            };
            let Some(init) = g.initializer_through_identity(b) else {
                lines.push(format!("`{}`: its bias is computed, not an initializer; it stays float, so the layer runs in float", n.display_name()));
                continue;
            };
            let Some(bv) = init.tensor.floats() else {
                continue;
            };
            let dims = init.tensor.dims.clone();
            let sx = if t.binary_input {
                1.0
            } else {
                params[inherit.get(&t.input_point).unwrap_or(&t.input_point)].0
            };
            let outs = bv.len();
            if wscales.len() != 1 && wscales.len() != outs {
                lines.push(format!(
                    "`{}`: its bias has {outs} values for {} weight scales; it stays float",
                    n.display_name(),
                    wscales.len()
                ));
                continue;
            }
            let bscales: Vec<f32> = (0..outs)
                .map(|o| sx * wscales[if wscales.len() == 1 { 0 } else { o }])
                .collect();
            let values: Vec<i32> = bv
                .iter()
                .zip(&bscales)
                .map(|(&b, &s)| {
                    (b as f64 / s as f64)
                        .round()
                        .clamp(i32::MIN as f64, i32::MAX as f64) as i32
                })
                .collect();
            let axis = dims.len().saturating_sub(1) as i64;
            set_bias_dq(g, t.node, 2, values, dims, &bscales, axis)?;
            n_bias += 1;
        }
        super::dead_values::drop_unused_initializers(g);
        let kind = if self.per_channel {
            "per output channel"
        } else {
            "per tensor"
        };
        let method = match self.percentile {
            None => "min/max".to_string(),
            Some(p) => format!("{p} percentile"),
        };
        let mut head = vec![format!("quantized {n_float} layers' weights to int{} ({kind}); kept {n_kept} layers' weights already in integer form", self.bits)];
        head.push(format!("int{} activations: {} QuantizeLinear/DequantizeLinear pairs ({} calibrated by {method} on up to {} rows of {calib}, {} inheriting through MaxPool/Flatten/Reshape); {n_bias} int32 biases", self.act_bits, all.len(), roots.len(), self.samples, all.len() - roots.len()));
        head.extend(lines);
        Ok(head)
    }
}
