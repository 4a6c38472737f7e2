//! `fold-constants`: replaces nodes whose results are known before run time (Constant nodes,
//! Shape → Gather → Concat chains on static shapes) by initializers.

use super::{Args, Pass, PassContext, PassDef};
use crate::graph::{Initializer, Model};

/// Registry entry.
pub const DEF: PassDef = PassDef {
    name: "fold-constants",
    description: "Replace nodes whose outputs are known before run time (Constants, static shape arithmetic) by initializers.",
    params: &[],
    build: |_: &Args| Ok(Box::new(FoldConstants)),
};

struct FoldConstants;

impl Pass for FoldConstants {
    fn precondition(&self, _: &Model) -> Result<(), String> {
        Ok(())
    }

    fn run(&self, model: &mut Model, _: &PassContext) -> Result<Vec<String>, String> {
        let info = crate::verify::verify(model).map_err(|e| e.to_string())?;
        let g = &mut model.graph;
        let mut folded = 0;
        for idx in g.node_order() {
            let n = &g.nodes[idx];
            let outs: Vec<String> = n
                .outputs
                .iter()
                .filter(|o| !o.is_empty())
                .cloned()
                .collect();
            if outs.is_empty() || !outs.iter().all(|o| info.consts.contains_key(o)) {
                continue;
            }
            let span = n.span;
            g.nodes.remove_node(idx);
            for o in outs {
                let tensor = info.consts[&o].clone();
                g.value_info.retain(|v| v.name != o);
                g.initializers.push(Initializer {
                    name: o,
                    tensor,
                    span,
                });
            }
            folded += 1;
        }
        g.rebuild_edges();
        Ok(vec![format!("folded {folded} nodes into initializers")])
    }
}
