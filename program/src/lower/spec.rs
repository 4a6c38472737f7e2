//! What a layer's arithmetic is: the inputs of the mapping and the cost model that compression
//! changes. One `LayerSpec` per layer, from the graph where it says (the passes' integer weight
//! types, zeros, N:M patterns and MAC kinds) and from the hardware's PE otherwise.

use std::collections::HashMap;

use etch_hw::{Accelerator, MacKind};
use etch_ir::infer::GraphInfo;
use etch_ir::stats::model_stats;
use etch_ir::{Model, Op};
use serde::Serialize;

/// The arithmetic of one layer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerSpec {
    pub kind: MacKind,
    pub weight_bits: u32,
    pub act_bits: u32,
    /// Fraction of weights that are nonzero (unstructured pruning). Zero weights still take
    /// their slot in a dense array, but the PE gates their multiply and register reads.
    pub density: f64,
    /// N:M structured sparsity of the weights, when every group of m holds at most n nonzeros.
    pub nm: Option<(u32, u32)>,
    /// Fraction of output channels that are not pruned away (all-zero channels are skipped).
    pub channel_density: f64,
    /// Where the spec came from, for the report.
    pub source: &'static str,
}

impl LayerSpec {
    /// The hardware's own arithmetic: dense, at the PE's widths.
    pub fn from_hw(acc: &Accelerator) -> LayerSpec {
        LayerSpec {
            kind: acc.pe.kind(),
            weight_bits: acc.pe.weight_bits(),
            act_bits: acc.pe.act_bits(),
            density: 1.0,
            nm: None,
            channel_density: 1.0,
            source: "hw",
        }
    }

    /// Checks the layer against the PE: a layer the PE cannot compute is an impossible mapping.
    pub fn check(&self, acc: &Accelerator) -> Result<(), String> {
        let pe = acc.pe.kind();
        let ok = match (pe, self.kind) {
            (a, b) if a == b => true,
            // an integer multiplier computes shift (power-of-two) and binary (±1) products too
            (MacKind::Int, MacKind::Shift | MacKind::Xnor) => true,
            (MacKind::Float, _) => true,
            (MacKind::Shift, MacKind::Xnor) => true,
            _ => false,
        };
        if !ok {
            return Err(format!(
                "its {} arithmetic does not run on a {} PE",
                self.kind.name(),
                pe.name()
            ));
        }
        if pe == MacKind::Int || pe == MacKind::Shift {
            if self.weight_bits > acc.pe.weight_bits() {
                return Err(format!(
                    "its weights are {} bits but the PE takes {}",
                    self.weight_bits,
                    acc.pe.weight_bits()
                ));
            }
            if self.act_bits > acc.pe.act_bits() {
                return Err(format!(
                    "its activations are {} bits but the PE takes {}",
                    self.act_bits,
                    acc.pe.act_bits()
                ));
            }
        }
        Ok(())
    }
}

/// A layer's weights as the passes left them (`etch_ir::stats`' `mac_kind`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum WeightKind {
    Shift,
    Xnor,
    Int(u32),
    /// Float weights: the hardware's own arithmetic.
    Hw,
}

/// What the graph says of one weight layer, whatever the hardware.
#[derive(Debug, Clone, PartialEq)]
struct LayerFacts {
    name: String,
    kind: WeightKind,
    weight_bits: u32,
    /// Nonzero weights over weights, when some are zero.
    density: Option<f64>,
    nm: Option<(u32, u32)>,
    /// Output channels with a nonzero weight over output channels, when some have none.
    channel_density: Option<f64>,
}

/// What the graph says of its weight layers beyond the hardware default, read once per model:
/// integer, power-of-two or binary weights (`etch_ir::stats`' `mac_kind` and `weight_bits`),
/// zeros (`nonzero_params`), N:M patterns, and all-zero output channels (read from the weight
/// values). Reading it walks every weight, so a sweep keeps it while the model is the same.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GraphFacts {
    layers: Vec<LayerFacts>,
}

impl GraphFacts {
    pub fn of(model: &Model, info: &GraphInfo) -> GraphFacts {
        let stats = model_stats(model, info, &[]);
        let g = &model.graph;
        let order = g.node_order();
        let mut layers = Vec::new();
        for (idx, ls) in order.iter().zip(&stats.layers) {
            if ls.macs == 0 {
                continue;
            }
            layers.push(LayerFacts {
                name: ls.name.clone(),
                kind: match ls.mac_kind.as_str() {
                    "shift" => WeightKind::Shift,
                    "xnor" => WeightKind::Xnor,
                    k => k
                        .strip_prefix("int")
                        .and_then(|b| b.parse().ok())
                        .map_or(WeightKind::Hw, WeightKind::Int),
                },
                weight_bits: ls.weight_bits,
                density: (ls.params > 0 && ls.nonzero_params < ls.params)
                    .then(|| ls.nonzero_params as f64 / ls.params as f64),
                nm: ls
                    .nm
                    .as_deref()
                    .and_then(|s| s.split_once(':'))
                    .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?))),
                channel_density: channel_density(model, info, &g.nodes[*idx])
                    .filter(|&cd| cd < 1.0),
            });
        }
        GraphFacts { layers }
    }

    /// The specs of the layers whose graph says more than `acc`'s default.
    pub fn specs(&self, acc: &Accelerator) -> HashMap<String, LayerSpec> {
        let mut out = HashMap::new();
        for f in &self.layers {
            let mut spec = LayerSpec::from_hw(acc);
            let mut changed = false;
            match f.kind {
                WeightKind::Shift => {
                    spec.kind = MacKind::Shift;
                    spec.weight_bits = f.weight_bits.min(acc.pe.weight_bits()).max(2);
                    changed = true;
                }
                WeightKind::Xnor => {
                    spec.kind = MacKind::Xnor;
                    spec.weight_bits = 1;
                    changed = true;
                }
                WeightKind::Int(bits) => {
                    spec.kind = if acc.pe.kind() == MacKind::Float {
                        MacKind::Float
                    } else {
                        MacKind::Int
                    };
                    spec.weight_bits = bits;
                    changed = true;
                }
                WeightKind::Hw => {}
            }
            if let Some(d) = f.density {
                spec.density = d;
                changed = true;
            }
            if let Some(nm) = f.nm {
                spec.nm = Some(nm);
                changed = true;
            }
            if let Some(cd) = f.channel_density {
                spec.channel_density = cd;
                changed = true;
            }
            if changed {
                spec.source = "graph";
                out.insert(f.name.clone(), spec);
            }
        }
        out
    }
}

/// Specs of the layers whose graph says more than the hardware default (`GraphFacts`).
pub fn specs_from_graph(
    model: &Model,
    info: &GraphInfo,
    acc: &Accelerator,
) -> HashMap<String, LayerSpec> {
    GraphFacts::of(model, info).specs(acc)
}

/// Fraction of a layer's output channels that have a nonzero weight.
fn channel_density(model: &Model, info: &GraphInfo, n: &etch_ir::Node) -> Option<f64> {
    let _ = info;
    let w = model.graph.initializer(n.inputs.get(1)?)?;
    let vals = w.tensor.floats()?;
    let dims = &w.tensor.dims;
    if dims.len() < 2 {
        return None;
    }
    // (channels, elements per channel, channel stride, element stride)
    let (outs, per, channel_stride, element_stride) = match &n.op {
        Op::Conv { .. } => {
            let per = vals.len() / dims[0].max(1) as usize;
            (dims[0] as usize, per, per, 1)
        }
        Op::Gemm { trans_b: true, .. } => {
            let k = dims[1] as usize;
            (dims[0] as usize, k, k, 1)
        }
        Op::Gemm { .. } | Op::MatMul if dims.len() == 2 => {
            let nn = dims[1] as usize;
            (nn, dims[0] as usize, 1, nn)
        }
        _ => return None,
    };
    if outs == 0 || outs * per != vals.len() {
        return None;
    }
    let live = (0..outs)
        .filter(|&o| (0..per).any(|e| vals[o * channel_stride + e * element_stride] != 0.0))
        .count();
    Some(live as f64 / outs as f64)
}

/// What compression does to a layer on this hardware, in words for the report: N:M skipped or
/// gated, pruned channels skipped, zero weights gated, and the arithmetic the PE runs. `k` and
/// `n` are the layer's reduction and output channels, `k_run` and `n_run` what the array runs.
pub fn compression_notes(
    spec: &LayerSpec,
    acc: &Accelerator,
    (k, k_run): (u64, u64),
    (n, n_run): (u64, u64),
) -> Vec<String> {
    let mut notes = Vec::new();
    match spec.nm {
        Some((nn, m)) if k_run < k => notes.push(format!(
            "N:M {nn}:{m} on N:M hardware: reduction {k} -> {k_run} per output"
        )),
        Some(_) => notes
            .push("N:M weights on hardware without N:M support: zeros gated, not skipped".into()),
        None => {}
    }
    if n_run < n {
        notes.push(format!(
            "pruned channels skipped: {n_run} of {n} output channels computed"
        ));
    }
    if spec.density < 1.0 {
        notes.push(format!(
            "{:.0}% of weights are zero: their multiplies are gated",
            (1.0 - spec.density) * 100.0
        ));
    }
    if spec.kind != acc.pe.kind() {
        notes.push(format!(
            "{} layer ({}-bit weights) on the {} PE: costed as that PE's arithmetic at these widths",
            spec.kind.name(),
            spec.weight_bits,
            acc.pe.kind().name()
        ));
    } else if spec.source == "graph" {
        notes.push(format!(
            "{} with {}-bit weights and {}-bit activations, as the compressed graph has them",
            spec.kind.name(),
            spec.weight_bits,
            spec.act_bits
        ));
    }
    notes
}
