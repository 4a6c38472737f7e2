//! `prune`: magnitude pruning of Conv, Gemm and MatMul weights: single elements, r×c blocks, or
//! whole output channels (which shrink the tensors for real; see `channels`).

mod channels;

pub use channels::planned_removals;

use super::{Args, Param, ParamKind, Pass, PassContext, PassDef};
use crate::graph::{Graph, Model};
use crate::op::Op;
use crate::tensor::Data;

/// Registry entry.
pub const DEF: PassDef = PassDef {
    name: "prune",
    description: "Zero the smallest-magnitude weights (element or block granularity), or remove whole output channels (channel granularity; every consumer is rewritten).",
    params: &[
        Param { name: "sparsity", kind: ParamKind::Float { min: 0.0, max: 0.99 }, default: None, doc: "fraction of weights (or channels) to remove" },
        Param { name: "scope", kind: ParamKind::Choice(&["layer", "global"]), default: Some("layer"), doc: "rank weights within each layer, or across the whole model" },
        Param { name: "granularity", kind: ParamKind::Choice(&["element", "channel", "block"]), default: Some("element"), doc: "what is removed: single weights, output channels, or r×c blocks" },
        Param { name: "block", kind: ParamKind::IntList, default: Some("[4,4]"), doc: "block size [rows, cols] over the (output, reduction) view, for granularity=block" },
    ],
    build: |a: &Args| {
        let block = a.ints("block");
        if block.len() != 2 || block.iter().any(|&b| b < 1) {
            return Err(format!("`block` must be two positive sizes like [4,4], not {block:?}"));
        }
        Ok(Box::new(Prune {
            sparsity: a.float("sparsity"),
            global: a.word("scope") == "global",
            granularity: a.word("granularity").to_string(),
            block: (block[0] as usize, block[1] as usize),
        }))
    },
};

struct Prune {
    sparsity: f64,
    global: bool,
    granularity: String,
    block: (usize, usize),
}

/// A weight seen as a matrix of output channels × reduction, however it is stored.
#[derive(Debug, Clone)]
pub(crate) struct WeightView {
    /// Initializer name.
    pub name: String,
    pub outs: usize,
    pub reduction: usize,
    /// Whether element (o, r) sits at `r * outs + o` (Gemm without transB, MatMul) rather than `o * reduction + r`.
    pub transposed: bool,
}

impl WeightView {
    /// Flat index of element (o, r).
    pub fn at(&self, o: usize, r: usize) -> usize {
        if self.transposed {
            r * self.outs + o
        } else {
            o * self.reduction + r
        }
    }
}

/// The weight of one Conv/Gemm/MatMul node as a matrix, if it is a float initializer.
pub(crate) fn weight_views_of(g: &Graph, n: &crate::graph::Node) -> Option<WeightView> {
    let wname = n.inputs.get(1)?;
    let init = g.initializer(wname)?;
    if !matches!(init.tensor.data, Some(Data::F32(_))) {
        return None;
    }
    let d: Vec<usize> = init.tensor.dims.iter().map(|&x| x as usize).collect();
    Some(match (&n.op, d.len()) {
        (Op::Conv { .. }, r) if r >= 3 => WeightView {
            name: wname.clone(),
            outs: d[0],
            reduction: d[1..].iter().product(),
            transposed: false,
        },
        (Op::Gemm { trans_b: true, .. }, 2) => WeightView {
            name: wname.clone(),
            outs: d[0],
            reduction: d[1],
            transposed: false,
        },
        (Op::Gemm { trans_b: false, .. }, 2) | (Op::MatMul, 2) => WeightView {
            name: wname.clone(),
            outs: d[1],
            reduction: d[0],
            transposed: true,
        },
        _ => return None,
    })
}

/// The weights of every Conv/Gemm/MatMul whose weight is a float initializer, each once.
pub(crate) fn weight_views(g: &Graph) -> Vec<WeightView> {
    let mut seen = std::collections::HashSet::new();
    g.node_order()
        .into_iter()
        .filter_map(|idx| weight_views_of(g, &g.nodes[idx]))
        .filter(|v| seen.insert(v.name.clone()))
        .collect()
}

fn values_mut<'a>(g: &'a mut Graph, name: &str) -> &'a mut Vec<f32> {
    match g.initializer_mut(name).and_then(|i| i.tensor.data.as_mut()) {
        Some(Data::F32(v)) => v,
        _ => unreachable!("weight views only hold float initializers"),
    }
}

/// Zeros the `k` lowest-scored groups; `groups` lists each group's flat indices.
fn zero_lowest(values: &mut [f32], groups: &[Vec<usize>], k: usize) {
    let mut scored: Vec<(f32, usize)> = groups
        .iter()
        .enumerate()
        .map(|(gi, idx)| {
            (
                idx.iter().map(|&i| values[i].abs()).sum::<f32>() / idx.len().max(1) as f32,
                gi,
            )
        })
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    for &(_, gi) in scored.iter().take(k) {
        for &i in &groups[gi] {
            values[i] = 0.0;
        }
    }
}

/// The groups of flat indices a granularity prunes together.
fn groups(v: &WeightView, granularity: &str, (br, bc): (usize, usize)) -> Vec<Vec<usize>> {
    match granularity {
        "block" => {
            let mut out = Vec::new();
            for o0 in (0..v.outs).step_by(br) {
                for r0 in (0..v.reduction).step_by(bc) {
                    out.push(
                        (o0..(o0 + br).min(v.outs))
                            .flat_map(|o| (r0..(r0 + bc).min(v.reduction)).map(move |r| (o, r)))
                            .map(|(o, r)| v.at(o, r))
                            .collect(),
                    );
                }
            }
            out
        }
        _ => (0..v.outs * v.reduction).map(|i| vec![i]).collect(),
    }
}

impl Pass for Prune {
    fn precondition(&self, model: &Model) -> Result<(), String> {
        if crate::weights::shape_only_weights(model)
            .map(|w| !w.is_empty())
            .unwrap_or(false)
        {
            return Err("the model has shape-only weights, so there are no magnitudes to rank; fill them first (`etch convert --seed N`)".into());
        }
        if weight_views(&model.graph).is_empty() {
            return Err("no Conv, Gemm or MatMul has a float weight initializer to prune".into());
        }
        Ok(())
    }

    fn run(&self, model: &mut Model, _: &PassContext) -> Result<Vec<String>, String> {
        if self.granularity == "channel" {
            return channels::prune_channels(model, self.sparsity, self.global);
        }
        let views = weight_views(&model.graph);
        let g = &mut model.graph;
        if self.global {
            // one ranking over every weight of every layer: scores gathered with their owners
            let mut all: Vec<(f32, usize, Vec<usize>)> = Vec::new();
            for (li, v) in views.iter().enumerate() {
                let vals = values_mut(g, &v.name).clone();
                for idx in groups(v, &self.granularity, self.block) {
                    let score =
                        idx.iter().map(|&i| vals[i].abs()).sum::<f32>() / idx.len().max(1) as f32;
                    all.push((score, li, idx));
                }
            }
            let total: usize = all.iter().map(|(_, _, i)| i.len()).sum();
            all.sort_by(|a, b| a.0.total_cmp(&b.0));
            let target = (self.sparsity * total as f64).round() as usize;
            let mut removed = 0;
            for (_, li, idx) in all {
                if removed >= target {
                    break;
                }
                let vals = values_mut(g, &views[li].name);
                for &i in &idx {
                    vals[i] = 0.0;
                }
                removed += idx.len();
            }
        } else {
            for v in &views {
                let gs = groups(v, &self.granularity, self.block);
                let k = (self.sparsity * gs.len() as f64).round() as usize;
                zero_lowest(values_mut(g, &v.name), &gs, k);
            }
        }
        let (zeros, total) = views.iter().fold((0, 0), |(z, t), v| {
            let vals = values_mut(g, &v.name);
            (
                z + vals.iter().filter(|x| **x == 0.0).count(),
                t + vals.len(),
            )
        });
        Ok(vec![format!(
            "pruned {} layers by {} magnitude ({} ranking): {zeros} of {total} weights are now zero ({:.1}%)",
            views.len(),
            self.granularity,
            if self.global { "global" } else { "per-layer" },
            100.0 * zeros as f64 / total.max(1) as f64
        )])
    }
}
