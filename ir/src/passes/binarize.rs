//! `binarize`: ±1 weights with a per-channel scale (XNOR-Net), after the information-preserving
//! balance and standardization of DIR-Net / IR-Net: each output channel's weights are centred
//! (`w − mean`) and scaled to unit deviation, their signs are the codes, and the channel's scale is
//! the least-squares `α = mean(w · code)` (= mean|w| for balanced weights). With `acts=true` the
//! layer's input becomes `Where(GreaterOrEqual(x, τ), 1, −1)`, standard ONNX that onnxruntime runs,
//! so the products are XNOR/popcount. τ is 0, or with `calib` each channel's median on the data
//! (balanced ±1 activations carry the most information; after a ReLU a threshold at 0 would make
//! every activation +1). The first and last layers are usually kept (`keep=[first,last]`) for a
//! later `quant` to make int8.

use std::collections::HashMap;

use super::prune::{weight_views_of, WeightView};
use super::qdq::{add_init, add_node, f32_tensor, set_weight_dq};
use super::{Args, Param, ParamKind, Pass, PassContext, PassDef};
use crate::graph::{Graph, Model};
use crate::op::Op;
use crate::tensor::Data;

/// Registry entry.
pub const DEF: PassDef = PassDef {
    name: "binarize",
    description: "±1 weights with a per-channel scale after balancing and standardizing them (DIR-Net/IR-Net); with acts=true also ±1 activations (XNOR/popcount).",
    params: &[
        Param { name: "acts", kind: ParamKind::Bool, default: Some("true"), doc: "binarize the inputs of the binarized layers too" },
        Param { name: "keep", kind: ParamKind::WordList(&["first", "last"]), default: Some("[first,last]"), doc: "layers left for a later quant (the first and/or last weight layer)" },
        Param { name: "calib", kind: ParamKind::Path, default: None, doc: "CSV (label, flattened input per row) to set each activation channel's threshold at its median; without it the threshold is 0" },
        Param { name: "calib_samples", kind: ParamKind::Int { min: 1, max: 1_000_000 }, default: Some("512"), doc: "how many rows of the calibration CSV to run" },
    ],
    build: |a: &Args| {
        let keep = a.words("keep");
        Ok(Box::new(Binarize {
            acts: a.bool("acts"),
            keep_first: keep.iter().any(|w| w == "first"),
            keep_last: keep.iter().any(|w| w == "last"),
            calib: a.path("calib").map(str::to_string),
            samples: a.int("calib_samples") as usize,
        }))
    },
};

struct Binarize {
    acts: bool,
    keep_first: bool,
    keep_last: bool,
    calib: Option<String>,
    samples: usize,
}

impl Binarize {
    /// The layers to binarize: every Conv/Gemm/MatMul with a float weight, less the kept ones.
    fn layers(&self, g: &Graph) -> (Vec<(petgraph::stable_graph::NodeIndex, WeightView)>, usize) {
        let all: Vec<_> = g
            .node_order()
            .into_iter()
            .filter_map(|idx| weight_views_of(g, &g.nodes[idx]).map(|v| (idx, v)))
            .collect();
        let n = all.len();
        let picked = all
            .into_iter()
            .enumerate()
            .filter(|(k, _)| !(self.keep_first && *k == 0 || self.keep_last && *k + 1 == n))
            .map(|(_, x)| x)
            .collect();
        (picked, n)
    }
}

/// The median of each channel (axis 1) of values observed as whole samples of `dims` (batch first).
fn channel_medians(values: &[f32], dims: &[i64]) -> Vec<f32> {
    let c = dims.get(1).copied().unwrap_or(1).max(1) as usize;
    let per_sample: usize = dims
        .iter()
        .skip(1)
        .map(|&d| d.max(1) as usize)
        .product::<usize>()
        .max(1);
    let inner = per_sample / c;
    let mut by: Vec<Vec<f32>> = vec![Vec::new(); c];
    for (k, &v) in values.iter().enumerate() {
        by[(k % per_sample) / inner.max(1)].push(v);
    }
    by.into_iter()
        .map(|mut v| {
            if v.is_empty() {
                return 0.0;
            }
            let mid = v.len() / 2;
            *v.select_nth_unstable_by(mid, f32::total_cmp).1
        })
        .collect()
}

impl Pass for Binarize {
    fn precondition(&self, model: &Model) -> Result<(), String> {
        super::require_weight_values(model)?;
        let (picked, n) = self.layers(&model.graph);
        if picked.is_empty() {
            return Err(if n == 0 {
                "no Conv, Gemm or MatMul has a float weight initializer".to_string()
            } else {
                format!("the model has {n} weight layers and keep=[{}] keeps all of them: nothing is left to binarize", [self.keep_first.then_some("first"), self.keep_last.then_some("last")].into_iter().flatten().collect::<Vec<_>>().join(","))
            });
        }
        Ok(())
    }

    fn run(&self, model: &mut Model, cx: &PassContext) -> Result<Vec<String>, String> {
        let (picked, _) = self.layers(&model.graph);
        let info = crate::verify::verify(model).map_err(|e| e.to_string())?;
        let mut lines = Vec::new();
        // activation thresholds, before the graph changes
        let inputs: Vec<String> = picked
            .iter()
            .map(|(idx, _)| model.graph.nodes[*idx].inputs[0].clone())
            .collect();
        let mut medians: HashMap<String, Vec<f32>> = HashMap::new();
        if self.acts {
            if let Some(calib) = &self.calib {
                let calibrator = cx.calibrator.ok_or("binarize needs a calibrator to run the model on data, and this caller gave none")?;
                let observed = calibrator.observe(model, &inputs, calib, self.samples)?;
                for x in &inputs {
                    let dims = info
                        .ty(x)
                        .and_then(|t| t.known_dims())
                        .ok_or_else(|| format!("the shape of `{x}` is not known"))?;
                    let values = observed
                        .get(x)
                        .ok_or_else(|| format!("calibration did not observe `{x}`"))?;
                    medians.insert(x.clone(), channel_medians(values, &dims));
                }
            } else {
                let nonneg: Vec<&String> = inputs
                    .iter()
                    .filter(|x| {
                        model.graph.producer(x).is_some_and(|p| {
                            matches!(
                                model.graph.nodes[p].op,
                                Op::Relu | Op::MaxPool { .. } | Op::Clip { .. }
                            )
                        })
                    })
                    .collect();
                if !nonneg.is_empty() {
                    lines.push(format!("warning: {} binarized inputs follow a ReLU, pooling or Clip; with the threshold at 0 they may all be +1 (pass calib=\"FILE.csv\" to threshold each channel at its median)", nonneg.len()));
                }
            }
        }
        let g = &mut model.graph;
        let (mut one, mut minus_one) = (None, None);
        let mut err = (0.0f64, 0.0f64);
        let mut names = Vec::new();
        for ((idx, view), x) in picked.iter().zip(&inputs) {
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
                let at: Vec<usize> = (0..view.reduction).map(|r| view.at(o, r)).collect();
                let n = at.len().max(1) as f32;
                // balance, then standardize; the signs are the codes
                let mean = at.iter().map(|&i| w[i]).sum::<f32>() / n;
                let std = (at.iter().map(|&i| (w[i] - mean).powi(2)).sum::<f32>() / n)
                    .sqrt()
                    .max(f32::MIN_POSITIVE);
                for &i in &at {
                    codes[i] = if (w[i] - mean) / std >= 0.0 { 1 } else { -1 };
                }
                // least-squares scale of the original weights onto the codes
                let alpha = (at.iter().map(|&i| w[i] * codes[i] as f32).sum::<f32>() / n)
                    .max(f32::MIN_POSITIVE);
                for &i in &at {
                    err.0 += ((w[i] - alpha * codes[i] as f32) as f64).powi(2);
                    err.1 += (w[i] as f64).powi(2);
                }
                scales.push(alpha);
            }
            let axis = if view.transposed { 1 } else { 0 };
            set_weight_dq(g, *idx, 1, codes, dims, &scales, axis)?;
            names.push(g.nodes[*idx].display_name());
            if self.acts {
                let one = one
                    .get_or_insert_with(|| add_init(g, "binary_one", f32_tensor(vec![], vec![1.0])))
                    .clone();
                let minus = minus_one
                    .get_or_insert_with(|| {
                        add_init(g, "binary_minus_one", f32_tensor(vec![], vec![-1.0]))
                    })
                    .clone();
                let rank = info
                    .ty(x)
                    .and_then(|t| t.shape.as_ref())
                    .map_or(0, Vec::len);
                let tau = match medians.get(x) {
                    Some(m) if m.len() > 1 && rank >= 2 => {
                        let mut d = vec![1i64; rank];
                        d[1] = m.len() as i64;
                        f32_tensor(d, m.clone())
                    }
                    Some(m) => f32_tensor(vec![], vec![m.first().copied().unwrap_or(0.0)]),
                    None => f32_tensor(vec![], vec![0.0]),
                };
                let tau = add_init(g, &format!("{x}_threshold"), tau);
                let ge = g.fresh_name(&format!("{x}_ge"));
                let b = g.fresh_name(&format!("{x}_binary"));
                g.nodes[*idx].inputs[0] = b.clone();
                add_node(
                    g,
                    "GreaterOrEqual",
                    vec![],
                    vec![x.clone(), tau],
                    vec![ge.clone()],
                )?;
                add_node(g, "Where", vec![], vec![ge, one, minus], vec![b])?;
            }
        }
        super::dead_values::drop_unused_initializers(g);
        let acts = match (self.acts, self.calib.is_some()) {
            (false, _) => "activations unchanged".to_string(),
            (true, true) => "activations ±1 at each channel's median".to_string(),
            (true, false) => "activations ±1 at threshold 0".to_string(),
        };
        lines.insert(0, format!("binarized {} layers ({}): weights ±1 with a per-channel scale (relative squared error {:.1}%), {acts}", names.len(), names.join(", "), 100.0 * err.0 / err.1.max(f64::MIN_POSITIVE)));
        Ok(lines)
    }
}
