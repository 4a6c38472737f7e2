//! A GlobalAveragePool as the depthwise convolution it is: one `H×W` kernel per channel whose
//! weights are all `1/(H·W)`, no padding, no bias. `quant` rewrites a GlobalAveragePool this way
//! before it quantizes, so the pooling becomes a quantized layer like any other (weight codes all
//! equal, the `1/(H·W)` in the weight scale): its integer form sums the codes and requantizes the
//! sum with `s_x·s_w/s_y`, which is TFLite's integer mean, and the accelerator runs it as a
//! depthwise layer. The rewritten model is standard ONNX and computes the same floats (up to the
//! order of the additions).

use super::qdq::{add_init, f32_tensor};
use crate::graph::{AttrValue, Attribute, Model, Node};
use crate::infer::GraphInfo;
use crate::op::Op;

/// Rewrites every GlobalAveragePool over a `[N, C, H, W]` input of known extents; returns how
/// many it rewrote.
pub(crate) fn rewrite(model: &mut Model, info: &GraphInfo) -> Result<usize, String> {
    let g = &mut model.graph;
    let mut done = 0;
    for idx in g.node_order() {
        let n = &g.nodes[idx];
        if !matches!(n.op, Op::GlobalAveragePool) || n.inputs.len() != 1 {
            continue;
        }
        let Some(dims) = info.ty(&n.inputs[0]).and_then(|t| t.known_dims()) else {
            continue;
        };
        let [_, c, h, w] = dims[..] else { continue };
        if c <= 0 || h <= 0 || w <= 0 || c.checked_mul(h * w).is_none_or(|e| e > 1 << 26) {
            continue;
        }
        let (x, name) = (n.inputs[0].clone(), n.name.clone());
        let outputs = n.outputs.clone();
        let weight = add_init(
            g,
            &format!("{}_mean_weight", n.display_name()),
            f32_tensor(
                vec![c, 1, h, w],
                vec![1.0 / (h * w) as f32; (c * h * w) as usize],
            ),
        );
        let ints = |name: &str, v: Vec<i64>| Attribute {
            name: name.into(),
            value: AttrValue::Ints(v),
        };
        let attrs = vec![
            Attribute {
                name: "group".into(),
                value: AttrValue::Int(c),
            },
            ints("kernel_shape", vec![h, w]),
            ints("pads", vec![0; 4]),
            ints("strides", vec![1, 1]),
        ];
        let mut conv =
            Node::new("", "Conv", attrs, vec![x, weight], outputs).map_err(|e| e.to_string())?;
        conv.name = name;
        g.nodes[idx] = conv;
        done += 1;
    }
    if done > 0 {
        g.rebuild_edges();
    }
    Ok(done)
}
