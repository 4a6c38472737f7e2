//! `remove-identity`: drops Identity nodes and inference-time Dropout, which only rename values.

use super::{Args, Pass, PassContext, PassDef};
use crate::graph::Model;
use crate::op::Op;

/// Registry entry.
pub const DEF: PassDef = PassDef {
    name: "remove-identity",
    description: "Remove Identity and Dropout nodes (Dropout is the identity at inference), reconnecting their readers.",
    params: &[],
    build: |_: &Args| Ok(Box::new(RemoveIdentity)),
};

struct RemoveIdentity;

impl Pass for RemoveIdentity {
    fn precondition(&self, _: &Model) -> Result<(), String> {
        Ok(())
    }

    fn run(&self, model: &mut Model, _: &PassContext) -> Result<Vec<String>, String> {
        let g = &mut model.graph;
        let mut removed = 0;
        let mut kept = Vec::new();
        for idx in g.node_order() {
            let n = &g.nodes[idx];
            if !matches!(n.op, Op::Identity | Op::Dropout) {
                continue;
            }
            let (Some(x), Some(y)) = (n.inputs.first().cloned(), n.outputs.first().cloned()) else {
                continue;
            };
            if n.outputs
                .iter()
                .skip(1)
                .any(|o| !o.is_empty() && !g.consumers(o).is_empty())
            {
                kept.push(format!(
                    "kept `{}`: its Dropout mask is read",
                    n.display_name()
                ));
                continue;
            }
            if !g.is_output(&y) {
                g.remove_node(idx);
                g.replace_uses(&y, &x);
            } else if let Some(p) = g.producer(&x).filter(|_| !g.is_output(&x)) {
                // y must keep its name: the producer of x writes y directly
                g.remove_node(idx);
                g.replace_uses(&x, &y);
                for o in g.nodes[p].outputs.iter_mut().filter(|o| **o == x) {
                    *o = y.clone();
                }
                g.rebuild_edges();
            } else {
                kept.push(format!(
                    "kept `{}`: it passes a graph input or weight straight to a graph output",
                    n.display_name()
                ));
                continue;
            }
            g.prune_value_info();
            removed += 1;
        }
        let mut out = vec![format!("removed {removed} Identity/Dropout nodes")];
        out.extend(kept);
        Ok(out)
    }
}
