//! `fold-bn`: folds an inference-mode BatchNormalization into the Conv or Gemm before it:
//! `W'[c] = W[c]·s[c]`, `b'[c] = (b[c] − mean[c])·s[c] + beta[c]` with `s = gamma / √(var + ε)`.

use super::{Args, Pass, PassContext, PassDef};
use crate::graph::{Initializer, Model};
use crate::op::Op;
use crate::tensor::{Data, ElemType, Tensor};

/// Registry entry.
pub const DEF: PassDef = PassDef {
    name: "fold-bn",
    description: "Fold BatchNormalization into the Conv or Gemm that feeds it (when nothing else reads that layer's output).",
    params: &[],
    build: |_: &Args| Ok(Box::new(FoldBn)),
};

struct FoldBn;

fn floats(model: &Model, name: &str) -> Option<Vec<f32>> {
    model.graph.initializer(name)?.tensor.floats()
}

impl Pass for FoldBn {
    fn precondition(&self, model: &Model) -> Result<(), String> {
        if model
            .graph
            .initializers
            .iter()
            .any(|i| i.tensor.data.is_none() && i.tensor.external.is_none())
            || crate::weights::shape_only_weights(model)
                .map(|w| !w.is_empty())
                .unwrap_or(false)
        {
            return Err("the model has shape-only weights; fill them first (`etch convert --seed N`, or run/eval which fill them)".into());
        }
        Ok(())
    }

    fn run(&self, model: &mut Model, _: &PassContext) -> Result<Vec<String>, String> {
        let mut folded = 0;
        let mut left = Vec::new();
        for bn_idx in model.graph.node_order() {
            let bn = &model.graph.nodes[bn_idx];
            let Op::BatchNormalization { epsilon } = bn.op else {
                continue;
            };
            let bn_name = bn.display_name();
            let (x, y) = (bn.inputs[0].clone(), bn.outputs[0].clone());
            let params: Option<Vec<Vec<f32>>> =
                bn.inputs[1..5].iter().map(|n| floats(model, n)).collect();
            let Some(p) = params else {
                left.push(format!(
                    "left `{bn_name}`: its parameters are not float initializers"
                ));
                continue;
            };
            let g = &model.graph;
            let Some(prod_idx) = g.producer(&x) else {
                left.push(format!(
                    "left `{bn_name}`: its input is not computed by a node"
                ));
                continue;
            };
            if g.consumers(&x).len() != 1
                || g.is_output(&x)
                || bn.outputs.iter().skip(1).any(|o| !o.is_empty())
            {
                left.push(format!("left `{bn_name}`: something else reads its input, or its training outputs are used"));
                continue;
            }
            let prod = &g.nodes[prod_idx];
            // output channels run along dim 0 of a Conv weight and of a Gemm weight with transB=1
            let axis0 = match prod.op {
                Op::Conv { .. } => true,
                Op::Gemm { trans_b, .. } => trans_b,
                _ => {
                    left.push(format!(
                        "left `{bn_name}`: it follows {} `{}`, not a Conv or Gemm",
                        prod.op_type,
                        prod.display_name()
                    ));
                    continue;
                }
            };
            let Some(w) = prod
                .inputs
                .get(1)
                .and_then(|n| g.initializer(n))
                .map(|i| i.tensor.clone())
            else {
                left.push(format!(
                    "left `{bn_name}`: the weight of `{}` is not an initializer",
                    prod.display_name()
                ));
                continue;
            };
            let Some(wv) = w.floats() else { continue };
            let c = p[0].len();
            let per = wv.len() / c.max(1);
            if w.dims.is_empty()
                || wv.len() != c * per
                || (axis0 && w.dims[0] as usize != c)
                || (!axis0 && *w.dims.last().unwrap_or(&0) as usize != c)
            {
                left.push(format!(
                    "left `{bn_name}`: its {c} channels do not match the weight of `{}`",
                    prod.display_name()
                ));
                continue;
            }
            let scale: Vec<f32> = (0..c)
                .map(|k| p[0][k] / (p[3][k] + epsilon).sqrt())
                .collect();
            let new_w: Vec<f32> = wv
                .iter()
                .enumerate()
                .map(|(i, &v)| v * scale[if axis0 { i / per } else { i % c }])
                .collect();
            let old_b = prod
                .inputs
                .get(2)
                .filter(|n| !n.is_empty())
                .and_then(|n| floats(model, n))
                .unwrap_or_else(|| vec![0.0; c]);
            if old_b.len() != c {
                left.push(format!(
                    "left `{bn_name}`: the bias of `{}` has {} values, not {c}",
                    prod.display_name(),
                    old_b.len()
                ));
                continue;
            }
            let new_b: Vec<f32> = (0..c)
                .map(|k| (old_b[k] - p[2][k]) * scale[k] + p[1][k])
                .collect();
            let prod_name = prod.display_name();
            let g = &mut model.graph;
            let w_name = g.fresh_name(&format!("{prod_name}.weight_bn"));
            let b_name = g.fresh_name(&format!("{prod_name}.bias_bn"));
            let span = g.nodes[prod_idx].span;
            g.initializers.push(Initializer {
                name: w_name.clone(),
                tensor: Tensor {
                    data: Some(Data::F32(new_w)),
                    elem: ElemType::F32,
                    ..w
                },
                span,
            });
            g.initializers.push(Initializer {
                name: b_name.clone(),
                tensor: Tensor {
                    elem: ElemType::F32,
                    dims: vec![c as i64],
                    data: Some(Data::F32(new_b)),
                    external: None,
                },
                span,
            });
            let prod = &mut g.nodes[prod_idx];
            prod.inputs[1] = w_name;
            if prod.inputs.len() > 2 {
                prod.inputs[2] = b_name;
            } else {
                prod.inputs.push(b_name);
            }
            // the layer now writes what BatchNormalization wrote
            prod.outputs[0] = y.clone();
            g.remove_node(bn_idx);
            folded += 1;
        }
        model.graph.prune_value_info();
        let dropped = super::dead_values::drop_unused_initializers(&mut model.graph);
        let mut out = vec![format!(
            "folded {folded} BatchNormalization nodes ({dropped} old weights dropped)"
        )];
        out.extend(left);
        Ok(out)
    }
}
