//! Per-layer size and work: parameters and multiply-accumulates, by the definitions in DESIGN.md,
//! for `etch inspect` and every report that compares a model before and after a pass.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::graph::Model;
use crate::infer::GraphInfo;
use crate::op::Op;
use crate::tensor::Dim;
use crate::weights::ShapeOnly;

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
}

/// The whole model's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelStats {
    pub params: u64,
    pub macs: u64,
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
/// ones), at the first node that reads it.
pub fn model_stats(model: &Model, info: &GraphInfo, shape_only: &[ShapeOnly]) -> ModelStats {
    let g = &model.graph;
    let mut weights: HashMap<&str, u64> = g.initializers.iter().map(|i| (i.name.as_str(), i.tensor.numel())).collect();
    for w in shape_only {
        weights.insert(w.name.as_str(), w.numel());
    }
    let mut counted: HashSet<&str> = HashSet::new();
    let mut layers = Vec::new();
    for idx in g.node_order() {
        let n = &g.nodes[idx];
        let params = n
            .inputs
            .iter()
            .filter_map(|i| {
                let p = *weights.get(i.as_str())?;
                counted.insert(i.as_str()).then_some(p)
            })
            .sum();
        let out_type = n.outputs.first().and_then(|o| info.ty(o)).and_then(|t| t.shape.clone());
        let out_shape = out_type.clone().unwrap_or_default();
        let numel = |s: &[Dim]| s.iter().map(extent).product::<u64>();
        let shape = |k: usize| n.inputs.get(k).and_then(|i| info.ty(i)).and_then(|t| t.shape.clone()).unwrap_or_default();
        let macs = match &n.op {
            // N·Cout·Hout·Wout·(Cin/group)·Kh·Kw = output elements × (weight elements / Cout)
            Op::Conv { .. } => {
                let w = shape(1);
                let per_out = w.get(1..).map_or(0, numel);
                numel(&out_shape) * per_out
            }
            Op::Gemm { trans_a, .. } => {
                let a = shape(0);
                let k = if *trans_a { a.first() } else { a.get(1) }.map_or(0, extent);
                numel(&out_shape) * k
            }
            Op::MatMul => {
                let a = shape(0);
                numel(&out_shape) * a.last().map_or(0, extent)
            }
            _ => 0,
        };
        layers.push(LayerStats {
            name: n.display_name(),
            op: n.op_type.clone(),
            output_shape: out_type.map(|s| s.iter().map(dim_json).collect()),
            params,
            macs,
        });
    }
    ModelStats { params: layers.iter().map(|l| l.params).sum(), macs: layers.iter().map(|l| l.macs).sum(), layers }
}
