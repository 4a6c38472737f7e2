//! The graph IR: a model, its graph of nodes (petgraph), attributes and model-local functions.
//!
//! Values are named as in ONNX; the petgraph edges run from the node that produces a value to each
//! node that consumes it, so order, cycles and reachability come from petgraph.

use std::collections::HashMap;

use petgraph::stable_graph::{NodeIndex, StableGraph};
use petgraph::Direction;

use crate::op::Op;
use crate::tensor::{Tensor, Type};

/// Where a piece of the IR came from in the source text, so later errors can point at it.
/// Spans are provenance, not meaning: any two spans compare equal, so IR equality ignores them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Span {
    /// Byte offset of the first byte.
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
    /// 1-based line number (0 when the item was made by a pass and has no source).
    pub line: usize,
    /// 1-based column in bytes.
    pub column: usize,
}

/// The model: header fields, the main graph, and model-local functions.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Model {
    pub ir_version: i64,
    /// `(domain, version)` pairs; `""` is the default ONNX domain.
    pub opset_import: Vec<(String, i64)>,
    pub producer_name: Option<String>,
    pub producer_version: Option<String>,
    pub domain: Option<String>,
    pub model_version: Option<i64>,
    pub doc_string: Option<String>,
    pub metadata_props: Vec<(String, String)>,
    pub graph: Graph,
    pub functions: Vec<Function>,
}

impl PartialEq for Span {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Model {
    /// The opset version of the default ONNX domain, which decides some ops' signatures.
    pub fn default_opset(&self) -> Option<i64> {
        self.opset_import
            .iter()
            .find(|(d, _)| d.is_empty() || d == "ai.onnx")
            .map(|(_, v)| *v)
    }

    /// A metadata value by key.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata_props
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A typed or untyped value declaration: graph inputs, outputs and value_info.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueInfo {
    pub name: String,
    pub ty: Option<Type>,
    pub span: Span,
}

/// One computation graph (the main graph or an If/Loop body).
#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub name: String,
    pub inputs: Vec<ValueInfo>,
    pub outputs: Vec<ValueInfo>,
    /// Named tensors, in declaration order; a tensor without values is a shape-only weight.
    pub initializers: Vec<Initializer>,
    pub value_info: Vec<ValueInfo>,
    /// Nodes; edge weights are the name of the value flowing from producer to consumer.
    pub nodes: StableGraph<Node, String>,
}

/// A named tensor held by the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Initializer {
    pub name: String,
    pub tensor: Tensor,
    pub span: Span,
}

impl PartialEq for Graph {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.inputs == other.inputs
            && self.outputs == other.outputs
            && self.initializers == other.initializers
            && self.value_info == other.value_info
            && self
                .node_order()
                .iter()
                .map(|&i| &self.nodes[i])
                .eq(other.node_order().iter().map(|&i| &other.nodes[i]))
    }
}

impl Graph {
    /// Adds a node and connects it to the producers of its inputs that are already in the graph.
    pub fn add_node(&mut self, node: Node) -> NodeIndex {
        let idx = self.nodes.add_node(node);
        self.rebuild_edges();
        idx
    }

    /// Recomputes every producer→consumer edge from the nodes' input and output names; call it after
    /// rewriting names. A value produced twice links from its first producer (the verifier reports it).
    pub fn rebuild_edges(&mut self) {
        self.nodes.clear_edges();
        let mut producer: HashMap<&str, NodeIndex> = HashMap::new();
        for idx in self.nodes.node_indices() {
            for out in &self.nodes[idx].outputs {
                if !out.is_empty() {
                    producer.entry(out.as_str()).or_insert(idx);
                }
            }
        }
        let mut edges = Vec::new();
        for idx in self.nodes.node_indices() {
            for input in &self.nodes[idx].inputs {
                if let Some(&p) = producer.get(input.as_str()) {
                    edges.push((p, idx, input.clone()));
                }
            }
        }
        for (a, b, name) in edges {
            self.nodes.add_edge(a, b, name);
        }
    }

    /// Nodes in a topological order that keeps the source order wherever the source is already
    /// topological; nodes caught in a cycle come last, in index order, so a printer still shows them.
    pub fn node_order(&self) -> Vec<NodeIndex> {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let mut indeg: HashMap<NodeIndex, usize> = HashMap::new();
        let mut heap = BinaryHeap::new();
        for idx in self.nodes.node_indices() {
            let d = self
                .nodes
                .neighbors_directed(idx, Direction::Incoming)
                .count();
            // count edges, not distinct neighbours
            let d = d.max(self.nodes.edges_directed(idx, Direction::Incoming).count());
            indeg.insert(idx, d);
            if d == 0 {
                heap.push(Reverse(idx));
            }
        }
        let mut order = Vec::with_capacity(self.nodes.node_count());
        while let Some(Reverse(idx)) = heap.pop() {
            order.push(idx);
            for e in self.nodes.edges_directed(idx, Direction::Outgoing) {
                use petgraph::visit::EdgeRef;
                let t = e.target();
                let d = indeg.get_mut(&t).expect("every node has an in-degree");
                *d -= 1;
                if *d == 0 {
                    heap.push(Reverse(t));
                }
            }
        }
        if order.len() < self.nodes.node_count() {
            let placed: std::collections::HashSet<_> = order.iter().copied().collect();
            order.extend(self.nodes.node_indices().filter(|i| !placed.contains(i)));
        }
        order
    }

    /// The initializer with this name.
    pub fn initializer(&self, name: &str) -> Option<&Initializer> {
        self.initializers.iter().find(|i| i.name == name)
    }

    /// The initializer a value is, directly or read through a chain of `Identity` nodes (the
    /// classic PyTorch exporter shares one zero bias among layers that way).
    pub fn initializer_through_identity(&self, name: &str) -> Option<&Initializer> {
        let mut name = name;
        // each step moves to an earlier node, so at most one step per node
        for _ in 0..=self.nodes.node_count() {
            if let Some(init) = self.initializer(name) {
                return Some(init);
            }
            let p = self.producer(name)?;
            let n = &self.nodes[p];
            if !matches!(n.op, crate::op::Op::Identity) {
                return None;
            }
            name = n.inputs.first()?;
        }
        None
    }

    /// The initializer with this name, for a pass to rewrite.
    pub fn initializer_mut(&mut self, name: &str) -> Option<&mut Initializer> {
        self.initializers.iter_mut().find(|i| i.name == name)
    }

    /// The node that computes `value`, if a node does.
    pub fn producer(&self, value: &str) -> Option<NodeIndex> {
        self.nodes
            .node_indices()
            .find(|&i| self.nodes[i].outputs.iter().any(|o| o == value))
    }

    /// The nodes that read `value`, in node order.
    pub fn consumers(&self, value: &str) -> Vec<NodeIndex> {
        self.node_order()
            .into_iter()
            .filter(|&i| self.nodes[i].inputs.iter().any(|x| x == value))
            .collect()
    }

    /// Who produces and who reads each value, computed once: the index an analysis that asks
    /// [`Graph::producer`] or [`Graph::consumers`] for every node uses instead, so it stays linear
    /// in the graph's size (a million-node chain is a test input).
    pub fn uses(&self) -> Uses<'_> {
        let mut uses = Uses::default();
        for idx in self.node_order() {
            let n = &self.nodes[idx];
            for out in n.outputs.iter().filter(|o| !o.is_empty()) {
                uses.producer.entry(out.as_str()).or_insert(idx);
            }
            for input in n.inputs.iter().filter(|i| !i.is_empty()) {
                let readers = uses.consumers.entry(input.as_str()).or_default();
                if readers.last() != Some(&idx) {
                    readers.push(idx);
                }
            }
        }
        uses
    }

    /// Whether `value` is a graph output (passes must keep its name).
    pub fn is_output(&self, value: &str) -> bool {
        self.outputs.iter().any(|o| o.name == value)
    }

    /// Makes every reader of `old` read `new` instead (graph outputs included, renamed).
    pub fn replace_uses(&mut self, old: &str, new: &str) {
        for idx in self.nodes.node_indices().collect::<Vec<_>>() {
            for i in self.nodes[idx].inputs.iter_mut().filter(|i| *i == old) {
                *i = new.to_string();
            }
        }
        for o in self.outputs.iter_mut().filter(|o| o.name == old) {
            o.name = new.to_string();
        }
        self.rebuild_edges();
    }

    /// Removes a node and the edges that touched it.
    pub fn remove_node(&mut self, idx: NodeIndex) -> Option<Node> {
        let n = self.nodes.remove_node(idx);
        self.rebuild_edges();
        n
    }

    /// Drops value_info entries for values that no longer exist (after a pass removed nodes).
    pub fn prune_value_info(&mut self) {
        let defined: std::collections::HashSet<&str> = self
            .nodes
            .node_weights()
            .flat_map(|n| n.outputs.iter().map(String::as_str))
            .chain(self.inputs.iter().map(|v| v.name.as_str()))
            .chain(self.initializers.iter().map(|v| v.name.as_str()))
            .collect();
        let keep: Vec<bool> = self
            .value_info
            .iter()
            .map(|v| defined.contains(v.name.as_str()))
            .collect();
        let mut k = keep.iter();
        self.value_info.retain(|_| *k.next().unwrap_or(&true));
    }

    /// A value name not used anywhere in the graph, built from `base`.
    pub fn fresh_name(&self, base: &str) -> String {
        let taken = |n: &str| {
            self.inputs.iter().any(|v| v.name == n)
                || self.initializers.iter().any(|v| v.name == n)
                || self
                    .nodes
                    .node_weights()
                    .any(|x| x.outputs.iter().any(|o| o == n) || x.inputs.iter().any(|i| i == n))
        };
        if !taken(base) {
            return base.to_string();
        }
        (1..)
            .map(|k| format!("{base}_{k}"))
            .find(|n| !taken(n))
            .unwrap_or_default()
    }
}

/// One operator application.
#[derive(Debug, Clone)]
pub struct Node {
    /// The node label (`[name]`), if any.
    pub name: Option<String>,
    /// `""` for the default ONNX domain.
    pub domain: String,
    pub op_type: String,
    pub overload: Option<String>,
    /// Input value names; `""` marks an omitted optional input.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    /// The attributes exactly as written, in order: the one place attributes are stored.
    pub attrs: Vec<Attribute>,
    /// The typed view of `op_type` + `attrs` for the ops etch understands, kept in step by `Node::new`
    /// and `set_attr`.
    pub op: Op,
    pub span: Span,
}

impl PartialEq for Node {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.domain == other.domain
            && self.op_type == other.op_type
            && self.overload == other.overload
            && self.inputs == other.inputs
            && self.outputs == other.outputs
            && self.attrs == other.attrs
    }
}

impl Node {
    /// Builds a node and its typed view; fails when a known op's attribute has the wrong kind.
    pub fn new(
        domain: &str,
        op_type: &str,
        attrs: Vec<Attribute>,
        inputs: Vec<String>,
        outputs: Vec<String>,
    ) -> Result<Node, crate::op::AttrError> {
        let op = Op::from_parts(domain, op_type, &attrs)?;
        Ok(Node {
            name: None,
            domain: domain.to_string(),
            op_type: op_type.to_string(),
            overload: None,
            inputs,
            outputs,
            attrs,
            op,
            span: Span::default(),
        })
    }

    /// An attribute by name.
    pub fn attr(&self, name: &str) -> Option<&Attribute> {
        self.attrs.iter().find(|a| a.name == name)
    }

    /// Replaces or adds an attribute and refreshes the typed view.
    pub fn set_attr(&mut self, attr: Attribute) -> Result<(), crate::op::AttrError> {
        match self.attrs.iter_mut().find(|a| a.name == attr.name) {
            Some(a) => *a = attr,
            None => self.attrs.push(attr),
        }
        self.op = Op::from_parts(&self.domain, &self.op_type, &self.attrs)?;
        Ok(())
    }

    /// A name for messages: the label, else the first output, else the op type.
    pub fn display_name(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        match self.outputs.iter().find(|o| !o.is_empty()) {
            Some(o) => o.clone(),
            None => self.op_type.clone(),
        }
    }
}

/// The declared kind of an attribute, as written after `:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    Int,
    Float,
    String,
    Tensor,
    Graph,
    SparseTensor,
    TypeProto,
    Ints,
    Floats,
    Strings,
    Tensors,
    Graphs,
    SparseTensors,
    TypeProtos,
}

const ATTR_TYPE_NAMES: [(AttrType, &str); 14] = [
    (AttrType::Int, "int"),
    (AttrType::Float, "float"),
    (AttrType::String, "string"),
    (AttrType::Tensor, "tensor"),
    (AttrType::Graph, "graph"),
    (AttrType::SparseTensor, "sparse_tensor"),
    (AttrType::TypeProto, "type_proto"),
    (AttrType::Ints, "ints"),
    (AttrType::Floats, "floats"),
    (AttrType::Strings, "strings"),
    (AttrType::Tensors, "tensors"),
    (AttrType::Graphs, "graphs"),
    (AttrType::SparseTensors, "sparse_tensors"),
    (AttrType::TypeProtos, "type_protos"),
];

impl AttrType {
    /// Looks up an attribute type keyword.
    pub fn from_keyword(word: &str) -> Option<AttrType> {
        ATTR_TYPE_NAMES
            .iter()
            .find(|(_, n)| *n == word)
            .map(|(t, _)| *t)
    }

    /// The keyword for this attribute type.
    pub fn keyword(self) -> &'static str {
        ATTR_TYPE_NAMES
            .iter()
            .find(|(t, _)| *t == self)
            .map(|(_, n)| *n)
            .unwrap_or("int")
    }
}

/// A node or function attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    pub name: String,
    pub value: AttrValue,
}

/// An attribute's value. The list forms of tensors, graphs and types are kept only as their
/// declared kind, since onnx's own parser drops their elements.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Int(i64),
    Float(f32),
    String(String),
    Tensor(Tensor, Option<String>),
    Graph(Box<Graph>),
    TypeProto(Type),
    Ints(Vec<i64>),
    Floats(Vec<f32>),
    Strings(Vec<String>),
    /// An empty list of a kind with no stored elements (tensors, graphs, sparse tensors, type protos).
    EmptyList(AttrType),
    /// `@name`: the value of the enclosing function's attribute `name`.
    Ref(AttrType, String),
}

impl AttrValue {
    /// The attribute type this value has.
    pub fn attr_type(&self) -> AttrType {
        match self {
            AttrValue::Int(_) => AttrType::Int,
            AttrValue::Float(_) => AttrType::Float,
            AttrValue::String(_) => AttrType::String,
            AttrValue::Tensor(..) => AttrType::Tensor,
            AttrValue::Graph(_) => AttrType::Graph,
            AttrValue::TypeProto(_) => AttrType::TypeProto,
            AttrValue::Ints(_) => AttrType::Ints,
            AttrValue::Floats(_) => AttrType::Floats,
            AttrValue::Strings(_) => AttrType::Strings,
            AttrValue::EmptyList(t) | AttrValue::Ref(t, _) => *t,
        }
    }
}

/// A model-local function: a named, reusable node list.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    pub domain: Option<String>,
    pub name: String,
    pub overload: Option<String>,
    pub opset_import: Vec<(String, i64)>,
    pub doc_string: Option<String>,
    /// Attribute names, each with an optional default value.
    pub attrs: Vec<(String, Option<Attribute>)>,
    pub inputs: Vec<(Option<Type>, String)>,
    pub outputs: Vec<(Option<Type>, String)>,
    pub value_info: Vec<ValueInfo>,
    pub nodes: Vec<Node>,
    pub span: Span,
}

/// A graph's value uses at one moment (see [`Graph::uses`]); stale once the graph changes.
#[derive(Debug, Default)]
pub struct Uses<'g> {
    producer: HashMap<&'g str, NodeIndex>,
    consumers: HashMap<&'g str, Vec<NodeIndex>>,
}

impl Uses<'_> {
    /// The node that computes `value`, as [`Graph::producer`].
    pub fn producer(&self, value: &str) -> Option<NodeIndex> {
        self.producer.get(value).copied()
    }

    /// The nodes that read `value`, in node order, as [`Graph::consumers`].
    pub fn consumers(&self, value: &str) -> &[NodeIndex] {
        self.consumers.get(value).map_or(&[], Vec::as_slice)
    }
}
