//! Per-layer size and work: parameters and multiply-accumulates, by the definitions in DESIGN.md,
//! for `etch inspect` and every report that compares a model before and after a pass.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::graph::Model;
use crate::infer::GraphInfo;
use crate::op::Op;
use crate::quant::QuantLayer;
use crate::tensor::{Dim, ElemType};
use crate::weights::ShapeOnly;
use petgraph::stable_graph::NodeIndex;

/// One node's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerStats {
    pub name: String,
    pub op: String,
    /// Dims of the first output: numbers, or names for symbolic dims; `None` (JSON null) when unknown.
    pub output_shape: Option<Vec<serde_json::Value>>,
    /// Elements of the weights this node is the first to read.
    pub params: u64,
    pub macs: u64,
    /// Of `params`, how many are not zero (pruning zeros weights without removing them).
    pub nonzero_params: u64,
    /// Bits per stored weight code (32 for float32 weights; 1 for binary).
    pub weight_bits: u32,
    /// Bits to store this layer's weights: dense, or compressed with index metadata when the
    /// weights have an N:M pattern (`nonzeros · (bits + log2 m)`).
    pub stored_bits: u64,
    /// `n:m` when every group of m weights along the reduction axis holds at most n non-zeros.
    pub nm: Option<String>,
    /// What one MAC of this layer is in hardware: `float`, `int{b}` (int8, int4, …), `shift`
    /// (power-of-two weights), `xnor` (binary weights); empty for no MACs.
    pub mac_kind: String,
}

/// The whole model's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelStats {
    pub params: u64,
    pub macs: u64,
    pub nonzero_params: u64,
    /// Fraction of weights that are zero.
    pub sparsity: f64,
    pub stored_bits: u64,
    /// `params · 32 / stored_bits`: how much smaller than float32 weights the model is.
    pub compression: f64,
    /// MACs by kind (`float`, `int8`, `shift`, `xnor`, …).
    pub macs_by_kind: std::collections::BTreeMap<String, u64>,
    /// True when some node's output shape is unknown (`infer::first_unknown`): then the totals
    /// leave out work etch could not size, and are a lower bound.
    pub partial: bool,
    pub layers: Vec<LayerStats>,
}

fn dim_json(d: &Dim) -> serde_json::Value {
    match d {
        Dim::Known(v) => (*v).into(),
        Dim::Param(p) => p.clone().into(),
        Dim::Unknown => "?".into(),
    }
}

/// Known extent of a dim, with symbolic ones counted as 1 (figures are per sample of a symbolic batch).
fn extent(d: &Dim) -> u64 {
    d.known().unwrap_or(1).max(0) as u64
}

/// Params and MACs of every node. Params count each weight once (initializers, including shape-only
/// ones, but not int64 or bool ones, settings and statistics (`Op::setting_input`), or one-element
/// constants of an element-wise formula), at the first node that reads it. In a quantized (QDQ) graph the codes and biases behind a
/// layer's DequantizeLinear count at the layer, and the scales and zero points of QuantizeLinear and
/// DequantizeLinear are not parameters (a layer's weight scales count in its stored bits).
pub fn model_stats(model: &Model, info: &GraphInfo, shape_only: &[ShapeOnly]) -> ModelStats {
    let g = &model.graph;
    // int64 and bool initializers are shapes, axes, indices and masks, not learned weights
    let learned = |e: ElemType| !matches!(e, ElemType::I64 | ElemType::Bool);
    let mut weights: HashMap<&str, u64> = g
        .initializers
        .iter()
        .filter(|i| learned(i.tensor.elem))
        .map(|i| (i.name.as_str(), i.tensor.numel()))
        .collect();
    for w in shape_only.iter().filter(|w| learned(w.elem)) {
        weights.insert(w.name.as_str(), w.numel());
    }
    let quant = crate::quant::analyze(model, info);
    let by_node: HashMap<NodeIndex, &QuantLayer> =
        quant.layers.iter().map(|l| (l.node, l)).collect();
    // quantization parameters are not counted; codes and biases count at their layer
    let mut counted: HashSet<&str> = HashSet::new();
    for n in g.nodes.node_weights().filter(|n| {
        matches!(
            n.op,
            Op::QuantizeLinear { .. } | Op::DequantizeLinear { .. }
        )
    }) {
        counted.extend(n.inputs.iter().skip(1).map(String::as_str));
        // nor are the bounds of a Clip that narrows an activation's codes before it is quantized
        if let Some(c) = g.producer(&n.inputs[0]).map(|p| &g.nodes[p]).filter(|p| {
            matches!(p.op, Op::Clip { .. }) && matches!(n.op, Op::QuantizeLinear { .. })
        }) {
            counted.extend(c.inputs.iter().skip(1).map(String::as_str));
        }
    }
    let mut owned: HashMap<NodeIndex, Vec<&str>> = HashMap::new();
    // weights behind QONNX quantizers: their scales, zero points and bit widths are not
    // parameters, and the weight counts at the layer that reads the quantizer, at its bits
    let qonnx = qonnx_weights(g, info);
    for n in g.nodes.node_weights() {
        if matches!(n.op, Op::Quant(_) | Op::BipolarQuant | Op::Trunc(_)) {
            counted.extend(n.inputs.iter().skip(1).map(String::as_str));
        }
    }
    let mut qonnx_layers: HashMap<NodeIndex, &QonnxWeight> = HashMap::new();
    // producers through one index: linear in the graph (no walk at all without quantizers)
    let uses = g.uses();
    for idx in g.node_order() {
        let n = &g.nodes[idx];
        if qonnx.is_empty() || !matches!(n.op, Op::Conv { .. } | Op::Gemm { .. } | Op::MatMul) {
            continue;
        }
        // the quantizer's output, or a Transpose/Reshape of it (how exporters feed MatMul)
        let behind = |i: &str| {
            let mut v = i.to_string();
            for _ in 0..4 {
                if qonnx.contains_key(v.as_str()) {
                    break;
                }
                match uses.producer(&v).map(|p| &g.nodes[p]) {
                    Some(p)
                        if matches!(
                            p.op,
                            Op::Transpose { .. } | Op::Reshape { .. } | Op::Identity
                        ) =>
                    {
                        v = p.inputs[0].clone()
                    }
                    _ => break,
                }
            }
            qonnx.get(v.as_str())
        };
        if let Some(w) = n.inputs.iter().find_map(|i| behind(i.as_str())) {
            if counted.insert(w.init) {
                owned.insert(idx, vec![w.init]);
                qonnx_layers.insert(idx, w);
            }
        }
    }
    for l in &quant.layers {
        // a binary activation's threshold and ±1 constants are not parameters either
        if let Some((_, _, w, ge)) = crate::quant::binarizer_of(g, info, &g.nodes[l.node].inputs[0])
        {
            counted.extend(g.nodes[w].inputs.iter().skip(1).map(String::as_str));
            counted.extend(g.nodes[ge].inputs.iter().skip(1).map(String::as_str));
        }
        let mut names = vec![l.weight.init.as_str()];
        if let Some(b) = &l.bias {
            names.push(b.init.as_str());
        } else if let Some(bdq) = l
            .float_bias
            .then(|| g.nodes[l.node].inputs.get(2))
            .flatten()
            .and_then(|b| g.producer(b))
        {
            names.extend(g.nodes[bdq].inputs.first().map(String::as_str));
        }
        for &nm in &names {
            counted.insert(nm);
        }
        owned.insert(l.node, names);
    }
    let mut layers = Vec::new();
    for idx in g.node_order() {
        let n = &g.nodes[idx];
        // a QOperator layer's scales and zero points are not parameters: its weight and bias are
        let slots = n.op.qoperator().map(|(_, s)| s);
        let mut params: u64 = n
            .inputs
            .iter()
            .enumerate()
            .filter(|(k, _)| slots.is_none_or(|s| *k == s.w || Some(*k) == s.bias))
            .filter(|(k, _)| !n.op.setting_input(*k))
            .map(|(_, i)| i)
            .filter_map(|i| {
                let p = *weights.get(i.as_str())?;
                if p == 1 && n.op.elementwise() {
                    return None;
                }
                counted.insert(i.as_str()).then_some(p)
            })
            .fold(0u64, u64::saturating_add);
        params = owned
            .get(&idx)
            .into_iter()
            .flatten()
            .filter_map(|i| weights.get(i))
            .fold(params, |a, &p| a.saturating_add(p));
        let out_type = n
            .outputs
            .first()
            .and_then(|o| info.ty(o))
            .and_then(|t| t.shape.clone());
        let out_shape = out_type.clone().unwrap_or_default();
        // saturating: absurd declared shapes must not wrap round to small figures
        let numel = |s: &[Dim]| s.iter().map(extent).fold(1u64, u64::saturating_mul);
        let shape = |k: usize| {
            n.inputs
                .get(k)
                .and_then(|i| info.ty(i))
                .and_then(|t| t.shape.clone())
                .unwrap_or_default()
        };
        // a QOperator layer (`crate::qoperator`) does its float op's work on its codes
        let (op, x_at, w_at) = match n.op.qoperator() {
            Some((float, s)) => (float, s.x, s.w),
            None => (n.op.clone(), 0, 1),
        };
        let macs = match &op {
            // N·Cout·Hout·Wout·(Cin/group)·Kh·Kw = output elements × (weight elements / Cout)
            Op::Conv { .. } => {
                let w = shape(w_at);
                let per_out = w.get(1..).map_or(0, numel);
                numel(&out_shape).saturating_mul(per_out)
            }
            // every input element meets (weight elements / C) weights: N·C·H·W·(M/group)·Kh·Kw
            Op::ConvTranspose { .. } => {
                let w = shape(w_at);
                let per_in = w.get(1..).map_or(0, numel);
                numel(&shape(x_at)).saturating_mul(per_in)
            }
            Op::Gemm { trans_a, .. } => {
                let a = shape(x_at);
                let k = if *trans_a { a.first() } else { a.get(1) }.map_or(0, extent);
                numel(&out_shape).saturating_mul(k)
            }
            Op::MatMul => {
                let a = shape(x_at);
                numel(&out_shape).saturating_mul(a.last().map_or(0, extent))
            }
            // every combination of labels multiplies its operands once per operand after the
            // first (a two-operand product: batch·M·K·N)
            Op::Einsum(eq) if n.inputs.len() >= 2 => {
                let shapes: Vec<Vec<Dim>> = (0..n.inputs.len()).map(shape).collect();
                eq.label(&shapes).map_or(0, |(_, ext)| {
                    numel(&ext).saturating_mul(n.inputs.len() as u64 - 1)
                })
            }
            _ => 0,
        };
        let (facts, weight_bits, stored_bits, mac_kind) = match by_node.get(&idx) {
            Some(l) => {
                let facts = quant_facts(l, params);
                let bias = params.saturating_sub(l.weight.codes.len() as u64);
                // codes at their bits (with N:M index metadata), biases at 32, scales at 32
                let stored = facts
                    .code_bits(l.weight.bits, l.weight.codes.len() as u64)
                    .saturating_add(bias.saturating_mul(32))
                    .saturating_add(l.weight.scales.len() as u64 * 32);
                (facts, l.weight.bits, stored, l.mac_kind())
            }
            None if qonnx_layers.contains_key(&idx) => {
                let w = qonnx_layers[&idx];
                let codes = weights.get(w.init).copied().unwrap_or(0);
                // codes at their bits, scales and a float bias at 32
                let stored = codes
                    .saturating_mul(w.bits as u64)
                    .saturating_add(w.scales.saturating_mul(32))
                    .saturating_add(params.saturating_sub(codes).saturating_mul(32));
                let binary_input = n
                    .inputs
                    .first()
                    .and_then(|x| g.producer(x))
                    .is_some_and(|p| is_bipolar(&g.nodes[p], info));
                // ±1 weights: XNOR-popcount on a bipolar input, 2-bit integers on any other (as
                // `QuantLayer::mac_kind` names them)
                let kind = match (w.bits, binary_input) {
                    (1, true) => "xnor".to_string(),
                    (1, false) => "int2".to_string(),
                    (b, _) => format!("int{b}"),
                };
                let facts = WeightFacts {
                    params,
                    nonzero: params,
                    nm: None,
                };
                (facts, w.bits, stored, kind)
            }
            None => {
                let facts = weight_facts(g, n, params);
                let stored = facts.stored_bits(32);
                (
                    facts,
                    32,
                    stored,
                    if macs > 0 {
                        "float".to_string()
                    } else {
                        String::new()
                    },
                )
            }
        };
        layers.push(LayerStats {
            name: n.display_name(),
            op: n.op_type.clone(),
            output_shape: out_type.map(|s| s.iter().map(dim_json).collect()),
            params,
            macs,
            nonzero_params: facts.nonzero,
            weight_bits,
            stored_bits,
            nm: facts.nm.map(|(n, m)| format!("{n}:{m}")),
            mac_kind: if macs > 0 { mac_kind } else { String::new() },
        });
    }
    let sum = |f: fn(&LayerStats) -> u64| layers.iter().map(f).fold(0u64, u64::saturating_add);
    let params = sum(|l| l.params);
    let nonzero_params = sum(|l| l.nonzero_params);
    let stored_bits = sum(|l| l.stored_bits);
    let macs = sum(|l| l.macs);
    let mut macs_by_kind = std::collections::BTreeMap::new();
    for l in layers.iter().filter(|l| l.macs > 0) {
        let k: &mut u64 = macs_by_kind.entry(l.mac_kind.clone()).or_insert(0);
        *k = k.saturating_add(l.macs);
    }
    ModelStats {
        params,
        macs,
        nonzero_params,
        sparsity: if params > 0 {
            1.0 - nonzero_params as f64 / params as f64
        } else {
            0.0
        },
        stored_bits,
        compression: if stored_bits > 0 {
            params as f64 * 32.0 / stored_bits as f64
        } else {
            1.0
        },
        macs_by_kind,
        partial: crate::infer::first_unknown(model, info).is_some(),
        layers,
    }
}

impl ModelStats {
    /// What does not fit 64 bits (figures saturate at `u64::MAX` rather than wrap): the first
    /// such layer (name, op, output shape), or the totals. A report must say so rather than print
    /// the saturated figure.
    pub fn overflowed(&self) -> Option<String> {
        let full = |v: u64| v == u64::MAX;
        if let Some(l) = self.layers.iter().find(|l| full(l.macs) || full(l.params)) {
            let shape = l.output_shape.as_ref().map_or("?".to_string(), |d| {
                serde_json::Value::Array(d.clone()).to_string()
            });
            return Some(format!(
                "node `{}` ({}, output shape {shape})",
                l.name, l.op
            ));
        }
        [self.macs, self.params, self.stored_bits]
            .into_iter()
            .any(full)
            .then(|| "the model's totals".to_string())
    }
}

/// A weight initializer behind a QONNX quantizer (`Quant` with a constant bit width, or
/// `BipolarQuant`): the codes are what a deployment stores.
struct QonnxWeight<'a> {
    init: &'a str,
    bits: u32,
    /// Elements of the scale (one per tensor, or per channel).
    scales: u64,
}

/// The QONNX weight quantizers of a graph, by the value they write.
fn qonnx_weights<'a>(
    g: &'a crate::graph::Graph,
    info: &GraphInfo,
) -> HashMap<&'a str, QonnxWeight<'a>> {
    let mut out = HashMap::new();
    let quantizers = g
        .nodes
        .node_weights()
        .filter(|n| matches!(n.op, Op::Quant(_) | Op::BipolarQuant));
    for n in quantizers {
        let Some(init) = n.inputs.first().filter(|i| g.initializer(i).is_some()) else {
            continue;
        };
        let bits = match n.op {
            Op::BipolarQuant => Some(1),
            Op::Quant(_) => n
                .inputs
                .get(3)
                .and_then(|b| info.consts.get(b))
                .and_then(|t| t.floats())
                .filter(|v| v.len() == 1 && crate::qonnx::check_bits(v[0], "").is_ok())
                .map(|v| v[0] as u32),
            _ => None,
        };
        let scales = n
            .inputs
            .get(1)
            .and_then(|s| info.consts.get(s))
            .map_or(1, |t| t.numel());
        if let (Some(bits), Some(out_name)) = (bits, n.outputs.first()) {
            out.insert(out_name.as_str(), QonnxWeight { init, bits, scales });
        }
    }
    out
}

/// Whether a node writes ±scale: `BipolarQuant`, or a signed 1-bit `Quant` (qonnx executes it as
/// bipolar).
fn is_bipolar(n: &crate::graph::Node, info: &GraphInfo) -> bool {
    match n.op {
        Op::BipolarQuant => true,
        Op::Quant(q) => {
            q.signed
                && n.inputs
                    .get(3)
                    .and_then(|b| info.consts.get(b))
                    .and_then(|t| t.floats())
                    .is_some_and(|v| v == [1.0])
        }
        _ => false,
    }
}

/// Zeros and N:M structure of a quantized layer's codes (biases count as non-zero).
fn quant_facts(l: &QuantLayer, params: u64) -> WeightFacts {
    let w = &l.weight;
    let zeros = w.codes.iter().filter(|&&c| c == 0).count() as u64;
    let nm = if zeros > 0 {
        NM_PATTERNS
            .iter()
            .rev()
            .find(|&&(pn, pm)| {
                crate::passes::nm::satisfies_codes(&w.codes, w.outs, w.reduction, pn, pm)
            })
            .copied()
    } else {
        None
    };
    WeightFacts {
        params,
        nonzero: params - zeros.min(params),
        nm,
    }
}

/// Zeros and structure of the weights a node reads first.
struct WeightFacts {
    params: u64,
    nonzero: u64,
    nm: Option<(usize, usize)>,
}

impl WeightFacts {
    /// Bits of `codes` weights at `bits` each: dense, or the non-zeros with their N:M indices.
    fn code_bits(&self, bits: u32, codes: u64) -> u64 {
        let zeros = self.params - self.nonzero;
        match self.nm {
            Some((_, m)) => (codes - zeros.min(codes))
                .saturating_mul(bits as u64 + (m as f64).log2().ceil() as u64),
            None => codes.saturating_mul(bits as u64),
        }
    }

    fn stored_bits(&self, bits: u32) -> u64 {
        match self.nm {
            Some((_, m)) => self
                .nonzero
                .saturating_mul(bits as u64 + (m as f64).log2().ceil() as u64),
            None => self.params.saturating_mul(bits as u64),
        }
    }
}

/// N:M patterns a layer is checked for, densest first.
const NM_PATTERNS: [(usize, usize); 4] = [(4, 8), (2, 4), (1, 4), (1, 8)];

fn weight_facts(g: &crate::graph::Graph, n: &crate::graph::Node, params: u64) -> WeightFacts {
    let mut nm = None;
    let (mut counted, mut zeros) = (0u64, 0u64);
    for i in &n.inputs {
        if let Some(v) = g.initializer(i).and_then(|init| init.tensor.floats()) {
            counted += v.len() as u64;
            zeros += v.iter().filter(|x| **x == 0.0).count() as u64;
        }
    }
    // zeros are attributed only where the node is the first reader of all its weights
    let nonzero = if counted == params {
        params - zeros
    } else {
        params
    };
    if nonzero < params {
        let view = crate::passes::prune::weight_views_of(g, n);
        if let (Some(v), Some(vals)) = (
            view,
            n.inputs
                .get(1)
                .and_then(|w| g.initializer(w))
                .and_then(|i| i.tensor.floats()),
        ) {
            nm = NM_PATTERNS
                .iter()
                .rev()
                .find(|&&(pn, pm)| {
                    crate::passes::nm::satisfies(
                        &vals,
                        v.outs,
                        v.reduction,
                        |o, r| v.at(o, r),
                        pn,
                        pm,
                    )
                })
                .copied();
        }
    }
    WeightFacts {
        params,
        nonzero,
        nm,
    }
}

/// `84224` as `84,224`: counts in the tables people read (inspect, passes, sim, synth).
pub fn thousands(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (k, c) in s.chars().enumerate() {
        if k > 0 && (s.len() - k).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
