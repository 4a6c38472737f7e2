//! The ONNX text printer. Output matches `onnx.printer.to_text` (onnx 1.23) byte for byte where
//! that printer's text can be parsed back, and stays parseable where it cannot (empty string lists,
//! function defaults), so `parse(print(m)) == m` always.

use std::fmt::Write;

pub use crate::float_text::{write_f32, write_f64};
use crate::graph::*;
use crate::tensor::*;

/// Prints a model as ONNX text.
pub fn print_model(m: &Model) -> String {
    let mut p = Printer { out: String::new() };
    p.model(m);
    p.out
}

/// Prints one graph (as it appears after the model header), for messages and tests.
pub fn print_graph(g: &Graph) -> String {
    let mut p = Printer { out: String::new() };
    p.graph(g, 0);
    p.out
}

struct Printer {
    out: String,
}

/// Whether a name can be printed without quotes: `[A-Za-z_][A-Za-z0-9_]*`.
fn is_bare(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// Writes a quoted string; a backslash makes the next byte literal when parsed.
fn write_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

fn write_name(out: &mut String, name: &str) {
    if is_bare(name) {
        out.push_str(name);
    } else {
        write_quoted(out, name);
    }
}

/// Writes a name where the parser first tries a type (an untyped value, a tensor attribute's
/// name): one spelled like a type keyword is quoted, since bare it would be read as that type.
/// (onnx prints it bare, and then cannot read its own text: ONNX-TEXT.md Q7.)
fn write_name_after_optional_type(out: &mut String, name: &str) {
    let reads_as_type = ElemType::from_keyword(name).is_some()
        || matches!(
            name,
            "seq" | "map" | "optional" | "sparse_tensor" | "opaque"
        );
    if reads_as_type {
        write_quoted(out, name);
    } else {
        write_name(out, name);
    }
}

impl Printer {
    fn model(&mut self, m: &Model) {
        self.out.push_str("<\n");
        let _ = write!(
            self.out,
            "   ir_version: {},\n   opset_import: ",
            m.ir_version
        );
        self.opsets(&m.opset_import, ", ");
        for (key, val) in [
            ("producer_name", &m.producer_name),
            ("producer_version", &m.producer_version),
            ("domain", &m.domain),
        ] {
            if let Some(v) = val {
                let _ = write!(self.out, ",\n   {key}: ");
                write_quoted(&mut self.out, v);
            }
        }
        if let Some(v) = m.model_version {
            let _ = write!(self.out, ",\n   model_version: {v}");
        }
        if let Some(v) = &m.doc_string {
            self.out.push_str(",\n   doc_string: ");
            write_quoted(&mut self.out, v);
        }
        if !m.metadata_props.is_empty() {
            self.out.push_str(",\n   metadata_props: [");
            for (i, (k, v)) in m.metadata_props.iter().enumerate() {
                if i > 0 {
                    self.out.push_str(", ");
                }
                write_quoted(&mut self.out, k);
                self.out.push_str(": ");
                write_quoted(&mut self.out, v);
            }
            self.out.push(']');
        }
        self.out.push_str("\n>\n");
        self.graph(&m.graph, 0);
        for f in &m.functions {
            self.out.push('\n');
            self.function(f);
        }
    }

    fn opsets(&mut self, opsets: &[(String, i64)], sep: &str) {
        self.out.push('[');
        for (i, (d, v)) in opsets.iter().enumerate() {
            if i > 0 {
                self.out.push_str(sep);
            }
            write_quoted(&mut self.out, d);
            let _ = write!(self.out, " : {v}");
        }
        self.out.push(']');
    }

    fn ty(&mut self, t: &Type) {
        match t {
            Type::Tensor(tt) => self.tensor_type(tt),
            Type::Seq(t) => {
                self.out.push_str("seq(");
                self.ty(t);
                self.out.push(')');
            }
            Type::Optional(t) => {
                self.out.push_str("optional(");
                self.ty(t);
                self.out.push(')');
            }
            Type::Map(k, v) => {
                let _ = write!(self.out, "map({k}, ");
                self.ty(v);
                self.out.push(')');
            }
            Type::SparseTensor(tt) => {
                self.out.push_str("sparse_tensor(");
                self.tensor_type(tt);
                self.out.push(')');
            }
            Type::Opaque { domain, name } => {
                self.out.push_str("opaque(");
                if !domain.is_empty() {
                    self.out.push_str(domain);
                    self.out.push(',');
                }
                self.out.push_str(name);
                self.out.push(')');
            }
        }
    }

    fn tensor_type(&mut self, tt: &TensorType) {
        self.out.push_str(tt.elem.keyword());
        match &tt.shape {
            None => self.out.push_str("[]"),
            Some(dims) if dims.is_empty() => {}
            Some(dims) => {
                self.out.push('[');
                for (i, d) in dims.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    match d {
                        Dim::Known(v) => {
                            let _ = write!(self.out, "{v}");
                        }
                        Dim::Param(p) => write_name(&mut self.out, p),
                        Dim::Unknown => self.out.push('?'),
                    }
                }
                self.out.push(']');
            }
        }
    }

    fn value_info(&mut self, vi: &ValueInfo) {
        match &vi.ty {
            Some(t) => {
                self.ty(t);
                self.out.push(' ');
                write_name(&mut self.out, &vi.name);
            }
            None => write_name_after_optional_type(&mut self.out, &vi.name),
        }
    }

    fn value_infos(&mut self, vis: &[ValueInfo]) {
        self.out.push('(');
        for (i, vi) in vis.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            self.value_info(vi);
        }
        self.out.push(')');
    }

    fn tensor_type_of(&mut self, t: &Tensor) {
        self.out.push_str(t.elem.keyword());
        if !t.dims.is_empty() {
            self.out.push('[');
            for (i, d) in t.dims.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{d}");
            }
            self.out.push(']');
        }
    }

    /// The value part of a tensor: ` {1,2}` / ` ["location": …]` / nothing.
    fn tensor_values(&mut self, t: &Tensor) {
        if let Some(kv) = &t.external {
            self.out.push_str(" [");
            for (i, (k, v)) in kv.iter().enumerate() {
                if i > 0 {
                    self.out.push_str(", ");
                }
                write_quoted(&mut self.out, k);
                self.out.push_str(": ");
                write_quoted(&mut self.out, v);
            }
            self.out.push(']');
            return;
        }
        let Some(data) = &t.data else { return };
        if let Data::Str(v) = data {
            self.out.push_str(" {");
            for (i, s) in v.iter().enumerate() {
                if i > 0 {
                    self.out.push_str(", ");
                }
                write_quoted(&mut self.out, s);
            }
            self.out.push('}');
            return;
        }
        self.out.push_str(" {");
        self.out.reserve(data.len() * 12);
        macro_rules! ints {
            ($v:expr) => {
                for (i, x) in $v.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    let _ = write!(self.out, "{x}");
                }
            };
        }
        match data {
            Data::F32(v) => {
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    write_f32(&mut self.out, *x);
                }
            }
            Data::F64(v) => {
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    write_f64(&mut self.out, *x);
                }
            }
            Data::I64(v) => ints!(v),
            Data::U64(v) => ints!(v),
            Data::I32(v) => ints!(v),
            Data::I16(v) => ints!(v),
            Data::U16(v) => ints!(v),
            Data::I8(v) => ints!(v),
            Data::U8(v) => ints!(v),
            Data::Str(_) => {}
        }
        self.out.push('}');
    }

    fn initializer(&mut self, init: &Initializer) {
        self.tensor_type_of(&init.tensor);
        self.out.push(' ');
        write_name(&mut self.out, &init.name);
        self.out.push_str(" =");
        // onnx writes two spaces before numeric values and one before strings
        if init.tensor.data.is_some()
            && !matches!(init.tensor.data, Some(Data::Str(_)))
            && init.tensor.external.is_none()
        {
            self.out.push(' ');
        }
        self.tensor_values(&init.tensor);
    }

    fn indent(&mut self, level: usize) {
        for _ in 0..level {
            self.out.push_str("   ");
        }
    }

    fn graph(&mut self, g: &Graph, level: usize) {
        write_name(&mut self.out, &g.name);
        self.out.push(' ');
        self.value_infos(&g.inputs);
        self.out.push_str(" => ");
        self.value_infos(&g.outputs);
        self.out.push(' ');
        if !g.initializers.is_empty() || !g.value_info.is_empty() {
            self.out.push('\n');
            self.indent(level + 1);
            self.out.push('<');
            let mut first = true;
            for init in &g.initializers {
                if !first {
                    self.out.push_str(", ");
                }
                first = false;
                self.initializer(init);
            }
            for vi in &g.value_info {
                if !first {
                    self.out.push_str(", ");
                }
                first = false;
                self.value_info(vi);
            }
            self.out.push_str(">\n");
        }
        self.out.push_str("{\n");
        // A graph with a cycle has no topological order, so it is printed in its stored order,
        // which reads back to the same nodes and edges. (`node_order` would move the cycle last;
        // where a value also has two producers, that changes which producer comes first and so the
        // edges of the graph read back.)
        let order = if petgraph::algo::toposort(&g.nodes, None).is_err() {
            g.nodes.node_indices().collect()
        } else {
            g.node_order()
        };
        for idx in order {
            self.node(&g.nodes[idx], level + 1);
        }
        self.indent(level);
        self.out.push('}');
    }

    fn names(&mut self, names: &[String]) {
        for (i, n) in names.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            if n.is_empty() {
                self.out.push_str("\"\"");
            } else {
                write_name(&mut self.out, n);
            }
        }
    }

    fn node(&mut self, n: &Node, level: usize) {
        self.indent(level);
        if let Some(label) = &n.name {
            self.out.push('[');
            write_name(&mut self.out, label);
            self.out.push_str("] ");
        }
        if n.outputs.is_empty() {
            self.out.push(' ');
        }
        self.names(&n.outputs);
        self.out.push_str(" = ");
        if !n.domain.is_empty() {
            self.out.push_str(&n.domain);
            self.out.push('.');
        }
        self.out.push_str(&n.op_type);
        if let Some(o) = &n.overload {
            self.out.push(':');
            self.out.push_str(o);
        }
        let has_graph = n
            .attrs
            .iter()
            .any(|a| matches!(a.value, AttrValue::Graph(_)));
        if !n.attrs.is_empty() && !has_graph {
            self.out.push(' ');
            self.attrs(&n.attrs, level);
        }
        self.out.push_str(" (");
        self.names(&n.inputs);
        self.out.push(')');
        if has_graph {
            self.out.push(' ');
            self.attrs(&n.attrs, level);
        }
        self.out.push('\n');
    }

    fn attrs(&mut self, attrs: &[Attribute], level: usize) {
        self.out.push('<');
        for (i, a) in attrs.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            self.attr(a, level);
        }
        self.out.push('>');
    }

    /// A node attribute: its name is always a bare identifier.
    fn attr(&mut self, a: &Attribute, level: usize) {
        self.out.push_str(&a.name);
        self.attr_value(a, level);
    }

    /// `: type = value` of an attribute.
    fn attr_value(&mut self, a: &Attribute, level: usize) {
        let _ = write!(self.out, ": {} = ", a.value.attr_type().keyword());
        match &a.value {
            AttrValue::Int(v) => {
                let _ = write!(self.out, "{v}");
            }
            AttrValue::Float(v) => write_f32(&mut self.out, *v),
            AttrValue::String(s) => write_quoted(&mut self.out, s),
            AttrValue::Tensor(t, name) => {
                self.tensor_type_of(t);
                if let Some(n) = name {
                    self.out.push(' ');
                    write_name_after_optional_type(&mut self.out, n);
                }
                // without inline values (shape only, or external data) an `=` keeps it a tensor:
                // a bare type would read back as a type_proto
                if t.data.is_none() {
                    self.out.push_str(" =");
                }
                self.tensor_values(t);
            }
            AttrValue::Graph(g) => self.graph(g, level),
            AttrValue::TypeProto(t) => self.ty(t),
            AttrValue::Ints(v) => {
                self.out.push('[');
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    let _ = write!(self.out, "{x}");
                }
                self.out.push(']');
            }
            AttrValue::Floats(v) => {
                self.out.push('[');
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    write_f32(&mut self.out, *x);
                }
                self.out.push(']');
            }
            AttrValue::Strings(v) => {
                self.out.push('[');
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    write_quoted(&mut self.out, x);
                }
                self.out.push(']');
            }
            AttrValue::EmptyList(_) => self.out.push_str("[]"),
            AttrValue::Ref(_, r) => {
                self.out.push('@');
                write_name(&mut self.out, r);
            }
        }
    }

    fn function(&mut self, f: &Function) {
        // onnx always prints the domain; a function parsed without one is printed without one, so
        // it reads back as `None` and not as `Some("")`
        self.out.push_str("<\n");
        if let Some(d) = &f.domain {
            self.out.push_str("  domain: ");
            write_quoted(&mut self.out, d);
            self.out.push_str(",\n");
        }
        if let Some(o) = &f.overload {
            self.out.push_str("  overload: ");
            write_quoted(&mut self.out, o);
            self.out.push_str(",\n");
        }
        self.out.push_str("  opset_import: ");
        self.opsets(&f.opset_import, ",");
        if let Some(d) = &f.doc_string {
            self.out.push_str(",\n  doc_string: ");
            write_quoted(&mut self.out, d);
        }
        self.out.push_str("\n>\n");
        write_name(&mut self.out, &f.name);
        self.out.push(' ');
        if !f.attrs.is_empty() {
            self.out.push('<');
            for (i, (name, default)) in f.attrs.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                match default {
                    // function attribute names may be quoted, unlike node attribute names
                    Some(a) => {
                        write_name(&mut self.out, name);
                        self.attr_value(a, 0);
                    }
                    None => write_name(&mut self.out, name),
                }
            }
            self.out.push('>');
        }
        let io = |p: &mut Printer, list: &[(Option<Type>, String)]| {
            p.out.push('(');
            for (i, (t, n)) in list.iter().enumerate() {
                if i > 0 {
                    p.out.push_str(", ");
                }
                match t {
                    Some(t) => {
                        p.ty(t);
                        p.out.push(' ');
                        write_name(&mut p.out, n);
                    }
                    None => write_name_after_optional_type(&mut p.out, n),
                }
            }
            p.out.push(')');
        };
        io(self, &f.inputs);
        self.out.push_str(" => ");
        io(self, &f.outputs);
        self.out.push('\n');
        if !f.value_info.is_empty() {
            self.out.push('<');
            for (i, vi) in f.value_info.iter().enumerate() {
                if i > 0 {
                    self.out.push_str(", ");
                }
                self.value_info(vi);
            }
            self.out.push_str(">\n");
        }
        self.out.push_str("{\n");
        for n in &f.nodes {
            self.node(n, 1);
        }
        self.out.push('}');
    }
}
