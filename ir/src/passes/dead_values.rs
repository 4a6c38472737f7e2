//! `dead-values`: removes nodes whose results nobody reads and weights no node uses.

use std::collections::HashSet;

use super::{Args, Pass, PassContext, PassDef};
use crate::graph::Model;

/// Registry entry.
pub const DEF: PassDef = PassDef {
    name: "dead-values",
    description: "Remove nodes whose outputs are never read and initializers no node uses.",
    params: &[],
    build: |_: &Args| Ok(Box::new(DeadValues)),
};

struct DeadValues;

impl Pass for DeadValues {
    fn precondition(&self, _: &Model) -> Result<(), String> {
        Ok(())
    }

    fn run(&self, model: &mut Model, _: &PassContext) -> Result<Vec<String>, String> {
        let (nodes, inits) = remove_dead(&mut model.graph);
        Ok(vec![format!(
            "removed {nodes} dead nodes and {inits} unused initializers"
        )])
    }
}

/// Removes nodes whose outputs nobody reads (repeatedly, so chains go) and the initializers left
/// unused; returns how many of each.
pub fn remove_dead(g: &mut crate::graph::Graph) -> (usize, usize) {
    let mut nodes = 0;
    loop {
        let read: HashSet<String> = g
            .nodes
            .node_weights()
            .flat_map(|n| n.inputs.iter().cloned())
            .chain(g.outputs.iter().map(|o| o.name.clone()))
            .collect();
        let dead: Vec<_> = g
            .nodes
            .node_indices()
            .filter(|&i| {
                g.nodes[i]
                    .outputs
                    .iter()
                    .all(|o| o.is_empty() || !read.contains(o))
            })
            .collect();
        if dead.is_empty() {
            break;
        }
        for idx in dead {
            g.nodes.remove_node(idx);
            nodes += 1;
        }
        g.rebuild_edges();
    }
    let inits = drop_unused_initializers(g);
    g.prune_value_info();
    (nodes, inits)
}

/// Removes initializers that no node reads and that are not graph inputs or outputs; returns how many.
pub fn drop_unused_initializers(g: &mut crate::graph::Graph) -> usize {
    let read: HashSet<String> = g
        .nodes
        .node_weights()
        .flat_map(|n| n.inputs.iter().cloned())
        .chain(g.outputs.iter().map(|o| o.name.clone()))
        .chain(g.inputs.iter().map(|v| v.name.clone()))
        .collect();
    let before = g.initializers.len();
    g.initializers.retain(|i| read.contains(&i.name));
    before - g.initializers.len()
}
