//! A small syntax tree for the C++ the HLS emitter writes, and its printer. Kernels are built as
//! values (`Item`s holding `Stmt`s); only expressions are strings. The printer owns layout:
//! indentation, braces, labels on their loop, pragmas at the top of the block they govern, and
//! constant arrays wrapped to a fixed width.

use etch_ir::safe_text::comment;
use std::fmt::Write;

/// A statement inside a function body.
#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    /// One statement; the printer adds the `;`.
    Expr(String),
    /// `#pragma HLS <text>`.
    Pragma(String),
    /// `// text`.
    Comment(String),
    /// `head { body }`, e.g. `if (c)`; `label` prints as `label:` before it (Vitis loop labels).
    Block {
        label: Option<String>,
        head: String,
        body: Vec<Stmt>,
    },
}

impl Stmt {
    pub fn expr(s: impl Into<String>) -> Stmt {
        Stmt::Expr(s.into())
    }

    pub fn pragma(s: impl Into<String>) -> Stmt {
        Stmt::Pragma(s.into())
    }

    pub fn comment(s: impl Into<String>) -> Stmt {
        Stmt::Comment(s.into())
    }

    /// `label: for (int var = 0; var < n; ++var) { body }`.
    pub fn for_range(label: &str, var: &str, n: usize, body: Vec<Stmt>) -> Stmt {
        Stmt::Block {
            label: Some(label.into()),
            head: format!("for (int {var} = 0; {var} < {n}; ++{var})"),
            body,
        }
    }

    /// `if (cond) { body }`.
    pub fn if_(cond: impl Into<String>, body: Vec<Stmt>) -> Stmt {
        Stmt::Block {
            label: None,
            head: format!("if ({})", cond.into()),
            body,
        }
    }
}

/// A function parameter: `ty name`.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub ty: String,
    pub name: String,
}

impl Param {
    pub fn new(ty: impl Into<String>, name: impl Into<String>) -> Param {
        Param {
            ty: ty.into(),
            name: name.into(),
        }
    }
}

/// A function definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    pub doc: Vec<String>,
    /// `static` (file-local) or external linkage.
    pub is_static: bool,
    pub ret: String,
    pub name: String,
    pub params: Vec<Param>,
    pub body: Vec<Stmt>,
}

/// `static const ty name[d0][d1]… = { … };`, values in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct ConstArray {
    pub doc: Vec<String>,
    pub ty: &'static str,
    pub name: String,
    pub dims: Vec<usize>,
    pub values: Vec<ArrayValue>,
}

/// One element of a constant array, printed in the array type's own literal form.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ArrayValue {
    Int(i64),
    /// A 64-bit word, printed as hex.
    Word(u64),
}

/// A top-level item of a file.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// `#include <x>` (system) or `#include "x"`.
    Include {
        path: String,
        system: bool,
    },
    /// `// text` lines.
    Comment(Vec<String>),
    /// `static const int NAME = value;`
    Constant {
        name: String,
        value: i64,
    },
    /// `typedef ty name;`
    Alias {
        name: String,
        ty: String,
    },
    /// A prototype: `ret name(params);`
    Declaration(Function),
    Function(Function),
    Array(ConstArray),
}

/// One C++ file.
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    pub name: String,
    /// Header files get an include guard.
    pub header: bool,
    pub items: Vec<Item>,
}

impl Item {
    /// `#include <path>` (system) or `#include "path"`.
    pub fn include(path: &str, system: bool) -> Item {
        Item::Include {
            path: path.into(),
            system,
        }
    }
}

const INDENT: &str = "    ";
/// Constant-array rows wrap at this many characters.
const WIDTH: usize = 100;

impl File {
    /// Prints the file.
    pub fn print(&self) -> String {
        let mut out = String::new();
        let guard = self.header.then(|| {
            let g: String = self
                .name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            format!("ETCH_{g}")
        });
        if let Some(g) = &guard {
            let _ = writeln!(out, "#ifndef {g}\n#define {g}\n");
        }
        let mut prev_include = false;
        for (i, item) in self.items.iter().enumerate() {
            let is_include = matches!(item, Item::Include { .. });
            if i > 0 && !(is_include && prev_include) {
                out.push('\n');
            }
            prev_include = is_include;
            print_item(&mut out, item);
        }
        if let Some(g) = &guard {
            let _ = writeln!(out, "\n#endif // {g}");
        }
        out
    }
}

fn print_doc(out: &mut String, doc: &[String]) {
    for line in doc {
        let _ = writeln!(out, "// {}", comment(line));
    }
}

fn signature(f: &Function) -> String {
    let params: Vec<String> = f
        .params
        .iter()
        .map(|p| {
            if p.ty.ends_with(['&', '*']) {
                format!("{}{}", p.ty, p.name)
            } else {
                format!("{} {}", p.ty, p.name)
            }
        })
        .collect();
    format!(
        "{}{} {}({})",
        if f.is_static { "static " } else { "" },
        f.ret,
        f.name,
        params.join(", ")
    )
}

fn print_item(out: &mut String, item: &Item) {
    match item {
        Item::Include { path, system } => {
            let _ = if *system {
                writeln!(out, "#include <{path}>")
            } else {
                writeln!(out, "#include \"{path}\"")
            };
        }
        Item::Comment(lines) => print_doc(out, lines),
        Item::Constant { name, value } => {
            let _ = writeln!(out, "static const int {name} = {value};");
        }
        Item::Alias { name, ty } => {
            let _ = writeln!(out, "typedef {ty} {name};");
        }
        Item::Declaration(f) => {
            print_doc(out, &f.doc);
            let _ = writeln!(out, "{};", signature(f));
        }
        Item::Function(f) => {
            print_doc(out, &f.doc);
            let _ = writeln!(out, "{} {{", signature(f));
            for s in &f.body {
                print_stmt(out, s, 1);
            }
            out.push_str("}\n");
        }
        Item::Array(a) => print_array(out, a),
    }
}

fn print_stmt(out: &mut String, s: &Stmt, depth: usize) {
    let pad = INDENT.repeat(depth);
    match s {
        Stmt::Expr(e) => {
            let _ = writeln!(out, "{pad}{e};");
        }
        // pragmas start in column 0 of their line after the indentation, as Vitis examples do
        Stmt::Pragma(p) => {
            let _ = writeln!(out, "{pad}#pragma HLS {p}");
        }
        Stmt::Comment(c) => {
            let _ = writeln!(out, "{pad}// {}", comment(c));
        }
        Stmt::Block { label, head, body } => {
            let label = label
                .as_ref()
                .map_or_else(String::new, |l| format!("{l}: "));
            let _ = writeln!(out, "{pad}{label}{head} {{");
            for s in body {
                print_stmt(out, s, depth + 1);
            }
            let _ = writeln!(out, "{pad}}}");
        }
    }
}

fn print_array(out: &mut String, a: &ConstArray) {
    print_doc(out, &a.doc);
    let dims: String = a.dims.iter().map(|d| format!("[{d}]")).collect();
    let _ = writeln!(out, "static const {} {}{dims} = {{", a.ty, a.name);
    let mut line = String::from(INDENT);
    for (i, v) in a.values.iter().enumerate() {
        let text = match v {
            ArrayValue::Int(x) if *x == i32::MIN as i64 => format!("({} - 1)", x + 1),
            ArrayValue::Int(x) => x.to_string(),
            ArrayValue::Word(w) => format!("0x{w:016x}ull"),
        };
        let sep = if i + 1 < a.values.len() { "," } else { "" };
        if line.len() + text.len() + sep.len() + 1 > WIDTH && !line.trim().is_empty() {
            out.push_str(line.trim_end());
            out.push('\n');
            line = String::from(INDENT);
        }
        line.push_str(&text);
        line.push_str(sep);
        line.push(' ');
    }
    if !line.trim().is_empty() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push_str("};\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_a_function_with_a_labelled_loop_and_an_array() {
        let f = File {
            name: "k.h".into(),
            header: true,
            items: vec![
                Item::Include {
                    path: "cstdint".into(),
                    system: true,
                },
                Item::Array(ConstArray {
                    doc: vec!["weights".into()],
                    ty: "int8_t",
                    name: "w".into(),
                    dims: vec![2, 2],
                    values: [1, -2, 3, -4].map(ArrayValue::Int).to_vec(),
                }),
                Item::Function(Function {
                    doc: vec![],
                    is_static: true,
                    ret: "int32_t".into(),
                    name: "sum".into(),
                    params: vec![Param::new("int", "n")],
                    body: vec![
                        Stmt::expr("int32_t s = 0"),
                        Stmt::for_range(
                            "acc",
                            "i",
                            4,
                            vec![
                                Stmt::pragma("pipeline II=1"),
                                Stmt::expr("s += w[i / 2][i % 2]"),
                            ],
                        ),
                        Stmt::expr("return s + n"),
                    ],
                }),
            ],
        };
        let text = f.print();
        assert_eq!(
            text,
            "#ifndef ETCH_K_H\n#define ETCH_K_H\n\n#include <cstdint>\n\n// weights\n\
             static const int8_t w[2][2] = {\n    1, -2, 3, -4\n};\n\n\
             static int32_t sum(int n) {\n    int32_t s = 0;\n    acc: for (int i = 0; i < 4; ++i) {\n\
             \x20       #pragma HLS pipeline II=1\n        s += w[i / 2][i % 2];\n    }\n    return s + n;\n}\n\n\
             #endif // ETCH_K_H\n"
        );
    }
}
