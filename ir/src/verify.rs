//! The verifier: every value defined once, every input defined, no cycles, and types and shapes
//! that agree. It returns the inferred `GraphInfo`, the proof later stages ask for.

use std::collections::{HashMap, HashSet};

use crate::graph::{AttrValue, Graph, Model, Node, Span};
use crate::infer::{infer, GraphInfo};

/// A structural or type error, with the node it concerns and where that node is in the source.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{message}", context(node, span))]
pub struct VerifyError {
    /// Display name and op type of the node, when the error concerns one.
    pub node: Option<(String, String)>,
    pub span: Span,
    pub message: String,
    /// The value in the node's text that the error is about, so a report can point at it.
    pub focus: Option<Box<Focus>>,
}

/// A value named in a node's text: one of its inputs or one of its outputs.
#[derive(Debug, Clone, PartialEq)]
pub enum Focus {
    Input(String),
    Output(String),
}

fn context(node: &Option<(String, String)>, span: &Span) -> String {
    let line = if span.line > 0 {
        format!(", line {}", span.line)
    } else {
        String::new()
    };
    match node {
        Some((name, op)) => format!("node `{name}` ({op}{line}): "),
        None if span.line > 0 => format!("line {}: ", span.line),
        None => String::new(),
    }
}

fn node_err(n: &Node, message: String) -> VerifyError {
    VerifyError {
        node: Some((n.display_name(), n.op_type.clone())),
        span: n.span,
        message,
        focus: None,
    }
}

fn node_err_at(n: &Node, focus: Focus, message: String) -> VerifyError {
    VerifyError {
        focus: Some(Box::new(focus)),
        ..node_err(n, message)
    }
}

/// Checks a model and infers every value's type.
pub fn verify(model: &Model) -> Result<GraphInfo, VerifyError> {
    check_graph(&model.graph, &HashSet::new())?;
    for f in &model.functions {
        let mut defined: HashSet<&str> = f.inputs.iter().map(|(_, n)| n.as_str()).collect();
        for n in &f.nodes {
            for o in n.outputs.iter().filter(|o| !o.is_empty()) {
                if !defined.insert(o) {
                    return Err(node_err_at(
                        n,
                        Focus::Output(o.clone()),
                        format!("value `{o}` is defined twice in function `{}`", f.name),
                    ));
                }
            }
        }
        for n in &f.nodes {
            if let Some(i) = n
                .inputs
                .iter()
                .find(|i| !i.is_empty() && !defined.contains(i.as_str()))
            {
                return Err(node_err_at(
                    n,
                    Focus::Input(i.clone()),
                    format!("input `{i}` is not defined in function `{}`", f.name),
                ));
            }
        }
    }
    let info = infer(model).map_err(|(idx, message)| node_err(&model.graph.nodes[idx], message))?;
    check_values(&model.graph, &info)?;
    Ok(info)
}

/// Attributes and constant operands no executor can give a meaningful result for: a negative
/// or NaN BatchNormalization epsilon, a zero, negative or non-finite quantization scale, a QONNX bit
/// width that is not a whole number from 1 to 32.
fn check_values(g: &Graph, info: &GraphInfo) -> Result<(), VerifyError> {
    use crate::op::Op;
    for idx in g.node_order() {
        let n = &g.nodes[idx];
        match &n.op {
            Op::BatchNormalization { epsilon } if !(*epsilon >= 0.0 && epsilon.is_finite()) => {
                return Err(node_err(
                    n,
                    format!("epsilon is {epsilon}; it must be a non-negative number (it is added to the variance under a square root)"),
                ));
            }
            Op::QuantizeLinear { .. } | Op::DequantizeLinear { .. } => {
                let Some(scale) = n.inputs.get(1).filter(|s| !s.is_empty()) else {
                    continue;
                };
                let Some(values) = info.consts.get(scale).and_then(|t| t.floats()) else {
                    continue;
                };
                if let Some(bad) = values.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
                    return Err(node_err_at(
                        n,
                        Focus::Input(scale.clone()),
                        format!("the scale `{scale}` holds {bad}; every scale must be a positive, finite number"),
                    ));
                }
            }
            Op::Quant(_) | Op::Trunc(_) => {
                // the bit widths: Quant's fourth input; Trunc's input and output widths
                let slots: &[usize] = match (&n.op, n.inputs.len()) {
                    (Op::Quant(_), _) => &[3],
                    (_, 5) => &[3, 4],
                    _ => &[3, 5],
                };
                for &k in slots {
                    let Some(name) = n.inputs.get(k).filter(|s| !s.is_empty()) else {
                        continue;
                    };
                    let Some(t) = info.consts.get(name) else {
                        continue;
                    };
                    let what = format!("the bit width `{name}`");
                    let problem = match t.floats() {
                        Some(v) if v.len() == 1 => crate::qonnx::check_bits(v[0], &what).err(),
                        Some(v) => Some(format!(
                            "{what} holds {} values; it must be one number",
                            v.len()
                        )),
                        None => None,
                    };
                    if let Some(problem) = problem {
                        return Err(node_err_at(n, Focus::Input(name.clone()), problem));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Definitions, uses and acyclicity of one graph; `outer` holds the names visible from enclosing graphs.
fn check_graph(g: &Graph, outer: &HashSet<&str>) -> Result<(), VerifyError> {
    // what defines each value, for the message about a value defined twice
    let mut defined: HashMap<&str, String> = HashMap::new();
    for vi in &g.inputs {
        if defined
            .insert(vi.name.as_str(), "a graph input".into())
            .is_some()
        {
            return Err(VerifyError {
                node: None,
                span: vi.span,
                message: format!("graph input `{}` is declared twice", vi.name),
                focus: None,
            });
        }
    }
    let mut inits = HashSet::new();
    for init in &g.initializers {
        if !inits.insert(init.name.as_str()) {
            return Err(VerifyError {
                node: None,
                span: init.span,
                message: format!("initializer `{}` is declared twice", init.name),
                focus: None,
            });
        }
        // an initializer may share its name with a graph input (its default value)
        defined
            .entry(init.name.as_str())
            .or_insert_with(|| "an initializer".into());
    }
    let order = g.node_order();
    for &idx in &order {
        let n = &g.nodes[idx];
        for o in n.outputs.iter().filter(|o| !o.is_empty()) {
            let by = format!(
                "the output of node `{}` ({}, line {})",
                n.display_name(),
                n.op_type,
                n.span.line
            );
            if let Some(prev) = defined.insert(o.as_str(), by) {
                let message = format!("value `{o}` is already defined as {prev}; every value must be defined once: rename one of them");
                return Err(node_err_at(n, Focus::Output(o.clone()), message));
            }
        }
    }
    let visible = |name: &str| defined.contains_key(name) || outer.contains(name);
    for &idx in &order {
        let n = &g.nodes[idx];
        for i in n.inputs.iter().filter(|i| !i.is_empty()) {
            if !visible(i) {
                return Err(node_err_at(n, Focus::Input(i.clone()), format!("input `{i}` is not defined: no graph input, initializer or node output has that name")));
            }
        }
        for a in &n.attrs {
            if let AttrValue::Graph(sub) = &a.value {
                let mut scope: HashSet<&str> = outer.clone();
                scope.extend(defined.keys().copied());
                check_graph(sub, &scope).map_err(|mut e| {
                    e.message = format!(
                        "in subgraph `{}` of node `{}`: {}",
                        a.name,
                        n.display_name(),
                        e.message
                    );
                    e
                })?;
            }
        }
    }
    for vi in &g.outputs {
        if !visible(&vi.name) {
            return Err(VerifyError {
                node: None,
                span: vi.span,
                message: format!("graph output `{}` is never computed: no node, graph input or initializer produces it", vi.name),
                focus: None,
            });
        }
    }
    if let Err(cycle) = petgraph::algo::toposort(&g.nodes, None) {
        let n: &Node = &g.nodes[cycle.node_id()];
        return Err(node_err(
            n,
            "this node is part of a cycle: its inputs depend on its own outputs".into(),
        ));
    }
    Ok(())
}
