//! A small Verilog-2005 syntax tree and its printer (Calyx builds its Verilog through `vast`; this
//! is the subset etch emits): modules with parameters and ports, wires, regs and memories,
//! continuous assignments, `always` and `initial` blocks, module instances, and expressions.
//! Everything emitted goes through these types; the printer owns layout and precedence
//! (every binary expression is parenthesized).

use etch_ir::safe_text::comment;
use std::fmt::{self, Write};

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Id(String),
    /// A sized literal `W'dV` (negative values print as `-W'dV`), or an unsized decimal if `width` is 0.
    Num {
        width: u32,
        value: i128,
    },
    Str(String),
    Bin(&'static str, Box<Expr>, Box<Expr>),
    Un(&'static str, Box<Expr>),
    Index(Box<Expr>, Box<Expr>),
    /// `e[hi:lo]`
    Slice(Box<Expr>, u32, u32),
    /// `e[base +: width]`
    PartSel(Box<Expr>, Box<Expr>, u32),
    Concat(Vec<Expr>),
    Repl(u32, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `$signed(e)` / `$unsigned(e)` and other system functions.
    Call(&'static str, Vec<Expr>),
}

pub fn id(s: impl Into<String>) -> Expr {
    Expr::Id(s.into())
}
/// An unsized decimal (a parameter value, an index).
pub fn n(v: i128) -> Expr {
    Expr::Num { width: 0, value: v }
}
/// A sized literal.
pub fn lit(width: u32, v: i128) -> Expr {
    Expr::Num { width, value: v }
}
/// The contents of a Verilog string literal: printable ASCII but `"` and `\\` as themselves, every
/// other byte as a three-digit octal escape, so no text can end the literal or the line.
fn verilog_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b' '..=b'~' => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
    out
}

/// A string literal.
pub fn s(text: impl Into<String>) -> Expr {
    Expr::Str(text.into())
}
pub fn concat(v: Vec<Expr>) -> Expr {
    Expr::Concat(v)
}
pub fn repl(k: u32, e: Expr) -> Expr {
    Expr::Repl(k, Box::new(e))
}
pub fn cond(c: Expr, a: Expr, b: Expr) -> Expr {
    Expr::Cond(Box::new(c), Box::new(a), Box::new(b))
}
pub fn signed(e: Expr) -> Expr {
    Expr::Call("$signed", vec![e])
}
pub fn unsigned(e: Expr) -> Expr {
    Expr::Call("$unsigned", vec![e])
}
pub fn not(e: Expr) -> Expr {
    Expr::Un("!", Box::new(e))
}
pub fn neg(e: Expr) -> Expr {
    Expr::Un("-", Box::new(e))
}
pub fn inv(e: Expr) -> Expr {
    Expr::Un("~", Box::new(e))
}
pub fn red_xor(e: Expr) -> Expr {
    Expr::Un("^", Box::new(e))
}

// builder methods named after the Verilog operators they build (not the arithmetic traits)
#[allow(clippy::should_implement_trait)]
mod ops {
    use super::Expr;
    macro_rules! binops {
    ($($name:ident => $op:literal),* $(,)?) => {
        impl Expr {
            $(pub fn $name(self, o: impl Into<Expr>) -> Expr {
                Expr::Bin($op, Box::new(self), Box::new(o.into()))
            })*
        }
    };
}
    binops! {
        add => "+", sub => "-", mul => "*", and => "&", or => "|", xor => "^", xnor => "~^",
        land => "&&", lor => "||", eq => "==", ne => "!=", lt => "<", le => "<=", gt => ">", ge => ">=",
        shl => "<<", shr => ">>", ashr => ">>>", case_eq => "===", case_ne => "!==",
        div => "/", rem => "%",
    }
}

impl Expr {
    pub fn at(self, i: impl Into<Expr>) -> Expr {
        Expr::Index(Box::new(self), Box::new(i.into()))
    }
    pub fn slice(self, hi: u32, lo: u32) -> Expr {
        Expr::Slice(Box::new(self), hi, lo)
    }
    pub fn part(self, base: impl Into<Expr>, width: u32) -> Expr {
        Expr::PartSel(Box::new(self), Box::new(base.into()), width)
    }
}

impl From<&str> for Expr {
    fn from(s: &str) -> Expr {
        id(s)
    }
}

impl From<&String> for Expr {
    fn from(s: &String) -> Expr {
        id(s.as_str())
    }
}
impl From<i128> for Expr {
    fn from(v: i128) -> Expr {
        n(v)
    }
}

/// A statement inside `always` / `initial`.
#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    /// `lhs <= rhs;`
    NonBlocking(Expr, Expr),
    /// `lhs = rhs;`
    Blocking(Expr, Expr),
    If(Expr, Vec<Stmt>, Vec<Stmt>),
    Case(Expr, Vec<(Vec<Expr>, Vec<Stmt>)>, Vec<Stmt>),
    /// `for (v = a; v < b; v = v + 1) body`
    For(String, Expr, Expr, Vec<Stmt>),
    /// A system task call: `$display(...)`, `$fatal(...)`, `$readmemh(...)`, `$finish`.
    Task(&'static str, Vec<Expr>),
    /// `@(posedge clk);` inside a testbench's initial block.
    WaitPosedge(String),
    /// `wait (e);`
    Wait(Expr),
    /// `#delay;`
    Delay(u32),
    Comment(String),
}

pub fn nb(l: impl Into<Expr>, r: impl Into<Expr>) -> Stmt {
    Stmt::NonBlocking(l.into(), r.into())
}
pub fn bl(l: impl Into<Expr>, r: impl Into<Expr>) -> Stmt {
    Stmt::Blocking(l.into(), r.into())
}
pub fn if_(c: Expr, t: Vec<Stmt>) -> Stmt {
    Stmt::If(c, t, Vec::new())
}
pub fn if_else(c: Expr, t: Vec<Stmt>, e: Vec<Stmt>) -> Stmt {
    Stmt::If(c, t, e)
}

/// What an `always` block is sensitive to.
#[derive(Debug, Clone, PartialEq)]
pub enum Sens {
    Posedge(String),
    Star,
    /// No event control: `always begin … end` (a testbench clock with a delay inside).
    Free,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Input,
    Output,
}

/// A port: `input wire signed [w-1:0] name` or `output reg …`.
#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    pub dir: Dir,
    pub name: String,
    pub width: Width,
    pub reg: bool,
    pub signed: bool,
}

/// A width: a number of bits, or a parameter expression (`[W-1:0]`).
#[derive(Debug, Clone, PartialEq)]
pub enum Width {
    Bits(u32),
    Param(String),
}

impl From<u32> for Width {
    fn from(b: u32) -> Width {
        Width::Bits(b)
    }
}
impl From<&str> for Width {
    fn from(p: &str) -> Width {
        Width::Param(p.into())
    }
}

/// A module item.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Wire {
        name: String,
        width: Width,
        signed: bool,
    },
    Reg {
        name: String,
        width: Width,
        signed: bool,
    },
    /// `reg [w-1:0] name [0:depth-1];`
    Memory {
        name: String,
        width: Width,
        depth: Width,
    },
    Integer(String),
    Localparam(String, Expr),
    Assign(Expr, Expr),
    Always(Sens, Vec<Stmt>),
    Initial(Vec<Stmt>),
    Instance {
        module: String,
        name: String,
        params: Vec<(String, Expr)>,
        conns: Vec<(String, Expr)>,
    },
    Comment(String),
    /// A lint waiver for Verilator (`lint_off RULE` / `lint_on RULE`), with the reason printed
    /// above it.
    Lint {
        off: bool,
        rule: &'static str,
        why: String,
    },
    Blank,
}

/// A module.
#[derive(Debug, Clone, PartialEq)]
pub struct Module {
    pub name: String,
    pub comment: Vec<String>,
    /// `parameter NAME = default` (integers or strings).
    pub params: Vec<(String, Expr)>,
    pub ports: Vec<Port>,
    pub items: Vec<Item>,
}

impl Module {
    pub fn new(name: &str) -> Module {
        Module {
            name: name.into(),
            comment: Vec::new(),
            params: Vec::new(),
            ports: Vec::new(),
            items: Vec::new(),
        }
    }
    pub fn doc(&mut self, line: &str) -> &mut Self {
        self.comment.push(line.into());
        self
    }
    pub fn param(&mut self, name: &str, v: Expr) -> &mut Self {
        self.params.push((name.into(), v));
        self
    }
    fn port(&mut self, dir: Dir, name: &str, width: Width, reg: bool, signed: bool) -> &mut Self {
        self.ports.push(Port {
            dir,
            name: name.into(),
            width,
            reg,
            signed,
        });
        self
    }
    pub fn input(&mut self, name: &str, width: impl Into<Width>) -> &mut Self {
        self.port(Dir::Input, name, width.into(), false, false)
    }
    pub fn input_signed(&mut self, name: &str, width: impl Into<Width>) -> &mut Self {
        self.port(Dir::Input, name, width.into(), false, true)
    }
    pub fn output(&mut self, name: &str, width: impl Into<Width>) -> &mut Self {
        self.port(Dir::Output, name, width.into(), false, false)
    }
    pub fn output_reg(&mut self, name: &str, width: impl Into<Width>) -> &mut Self {
        self.port(Dir::Output, name, width.into(), true, false)
    }
    pub fn output_reg_signed(&mut self, name: &str, width: impl Into<Width>) -> &mut Self {
        self.port(Dir::Output, name, width.into(), true, true)
    }
    pub fn wire(&mut self, name: &str, width: impl Into<Width>) -> &mut Self {
        self.items.push(Item::Wire {
            name: name.into(),
            width: width.into(),
            signed: false,
        });
        self
    }
    pub fn wire_signed(&mut self, name: &str, width: impl Into<Width>) -> &mut Self {
        self.items.push(Item::Wire {
            name: name.into(),
            width: width.into(),
            signed: true,
        });
        self
    }
    pub fn reg(&mut self, name: &str, width: impl Into<Width>) -> &mut Self {
        self.items.push(Item::Reg {
            name: name.into(),
            width: width.into(),
            signed: false,
        });
        self
    }
    pub fn reg_signed(&mut self, name: &str, width: impl Into<Width>) -> &mut Self {
        self.items.push(Item::Reg {
            name: name.into(),
            width: width.into(),
            signed: true,
        });
        self
    }
    pub fn memory(
        &mut self,
        name: &str,
        width: impl Into<Width>,
        depth: impl Into<Width>,
    ) -> &mut Self {
        self.items.push(Item::Memory {
            name: name.into(),
            width: width.into(),
            depth: depth.into(),
        });
        self
    }
    pub fn localparam(&mut self, name: &str, v: Expr) -> &mut Self {
        self.items.push(Item::Localparam(name.into(), v));
        self
    }
    pub fn assign(&mut self, l: impl Into<Expr>, r: impl Into<Expr>) -> &mut Self {
        self.items.push(Item::Assign(l.into(), r.into()));
        self
    }
    pub fn always_ff(&mut self, clk: &str, body: Vec<Stmt>) -> &mut Self {
        self.items
            .push(Item::Always(Sens::Posedge(clk.into()), body));
        self
    }
    pub fn always_comb(&mut self, body: Vec<Stmt>) -> &mut Self {
        self.items.push(Item::Always(Sens::Star, body));
        self
    }
    pub fn waive(&mut self, rule: &'static str, why: &str) -> &mut Self {
        self.items.push(Item::Lint {
            off: true,
            rule,
            why: why.into(),
        });
        self
    }
    pub fn unwaive(&mut self, rule: &'static str) -> &mut Self {
        self.items.push(Item::Lint {
            off: false,
            rule,
            why: String::new(),
        });
        self
    }
    pub fn comment(&mut self, text: &str) -> &mut Self {
        self.items.push(Item::Comment(text.into()));
        self
    }
    pub fn item(&mut self, it: Item) -> &mut Self {
        self.items.push(it);
        self
    }
    pub fn instance(
        &mut self,
        module: &str,
        name: &str,
        params: Vec<(&str, Expr)>,
        conns: Vec<(&str, Expr)>,
    ) -> &mut Self {
        self.items.push(Item::Instance {
            module: module.into(),
            name: name.into(),
            params: params.into_iter().map(|(a, b)| (a.into(), b)).collect(),
            conns: conns.into_iter().map(|(a, b)| (a.into(), b)).collect(),
        });
        self
    }
}

/// A source file: modules in order, with a `timescale` (every file has one: Verilator warns
/// TIMESCALEMOD when some files have it and some do not).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct File {
    pub header: Vec<String>,
    /// File-wide lint waivers, each with its reason.
    pub waivers: Vec<(&'static str, String)>,
    pub modules: Vec<Module>,
}

fn width_decl(w: &Width) -> String {
    match w {
        Width::Bits(1) => String::new(),
        Width::Bits(b) => format!("[{}:0] ", b - 1),
        Width::Param(p) => format!("[{p}-1:0] "),
    }
}

fn depth_decl(w: &Width) -> String {
    match w {
        Width::Bits(b) => format!("[0:{}]", b.max(&1) - 1),
        Width::Param(p) => format!("[0:{p}-1]"),
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Id(s) => write!(f, "{s}"),
            Expr::Num { width: 0, value } => write!(f, "{value}"),
            Expr::Num { width, value } if *value < 0 => write!(f, "-{width}'d{}", -value),
            Expr::Num { width, value } => write!(f, "{width}'d{value}"),
            Expr::Str(s) => write!(f, "\"{}\"", verilog_string(s)),
            Expr::Bin(op, a, b) => write!(f, "({a} {op} {b})"),
            Expr::Un(op, a) => write!(f, "{op}({a})"),
            Expr::Index(a, i) => write!(f, "{a}[{i}]"),
            Expr::Slice(a, hi, lo) => write!(f, "{a}[{hi}:{lo}]"),
            Expr::PartSel(a, b, w) => write!(f, "{a}[{b} +: {w}]"),
            Expr::Concat(v) => {
                write!(f, "{{")?;
                for (k, e) in v.iter().enumerate() {
                    if k > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{e}")?;
                }
                write!(f, "}}")
            }
            Expr::Repl(k, e) => write!(f, "{{{k}{{{e}}}}}"),
            Expr::Cond(c, a, b) => write!(f, "({c} ? {a} : {b})"),
            Expr::Call(name, args) => {
                write!(f, "{name}(")?;
                for (k, e) in args.iter().enumerate() {
                    if k > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{e}")?;
                }
                write!(f, ")")
            }
        }
    }
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn print_stmts(out: &mut String, body: &[Stmt], depth: usize) {
    for st in body {
        print_stmt(out, st, depth);
    }
}

fn print_block(out: &mut String, body: &[Stmt], depth: usize) {
    out.push_str("begin\n");
    print_stmts(out, body, depth + 1);
    indent(out, depth);
    out.push_str("end");
}

fn print_stmt(out: &mut String, st: &Stmt, depth: usize) {
    indent(out, depth);
    match st {
        Stmt::NonBlocking(l, r) => {
            let _ = writeln!(out, "{l} <= {r};");
        }
        Stmt::Blocking(l, r) => {
            let _ = writeln!(out, "{l} = {r};");
        }
        Stmt::If(c, t, e) => {
            let _ = write!(out, "if ({c}) ");
            print_block(out, t, depth);
            if !e.is_empty() {
                out.push_str(" else ");
                print_block(out, e, depth);
            }
            out.push('\n');
        }
        Stmt::Case(e, arms, default) => {
            let _ = writeln!(out, "case ({e})");
            for (labels, body) in arms {
                indent(out, depth + 1);
                let l: Vec<String> = labels.iter().map(|x| x.to_string()).collect();
                let _ = write!(out, "{}: ", l.join(", "));
                print_block(out, body, depth + 1);
                out.push('\n');
            }
            indent(out, depth + 1);
            out.push_str("default: ");
            print_block(out, default, depth + 1);
            out.push('\n');
            indent(out, depth);
            out.push_str("endcase\n");
        }
        Stmt::For(v, a, b, body) => {
            let _ = write!(out, "for ({v} = {a}; {v} < {b}; {v} = {v} + 1) ");
            print_block(out, body, depth);
            out.push('\n');
        }
        Stmt::Task(name, args) => {
            if args.is_empty() {
                let _ = writeln!(out, "{name};");
            } else {
                let a: Vec<String> = args.iter().map(|x| x.to_string()).collect();
                let _ = writeln!(out, "{name}({});", a.join(", "));
            }
        }
        Stmt::WaitPosedge(clk) => {
            let _ = writeln!(out, "@(posedge {clk});");
        }
        Stmt::Wait(e) => {
            let _ = writeln!(out, "wait ({e});");
        }
        Stmt::Delay(d) => {
            let _ = writeln!(out, "#{d};");
        }
        Stmt::Comment(c) => {
            let _ = writeln!(out, "// {}", comment(c));
        }
    }
}

impl Module {
    /// Prints the module.
    pub fn print(&self, out: &mut String) {
        for c in &self.comment {
            let _ = writeln!(out, "// {}", comment(c));
        }
        let _ = write!(out, "module {}", self.name);
        if !self.params.is_empty() {
            out.push_str(" #(\n");
            for (k, (name, v)) in self.params.iter().enumerate() {
                let sep = if k + 1 < self.params.len() { "," } else { "" };
                let _ = writeln!(out, "  parameter {name} = {v}{sep}");
            }
            out.push(')');
        }
        out.push_str(" (\n");
        for (k, p) in self.ports.iter().enumerate() {
            let dir = match p.dir {
                Dir::Input => "input",
                Dir::Output => "output",
            };
            let kind = if p.reg { "reg" } else { "wire" };
            let sg = if p.signed { "signed " } else { "" };
            let sep = if k + 1 < self.ports.len() { "," } else { "" };
            let _ = writeln!(
                out,
                "  {dir} {kind} {sg}{}{}{sep}",
                width_decl(&p.width),
                p.name
            );
        }
        out.push_str(");\n");
        for it in &self.items {
            match it {
                Item::Wire {
                    name,
                    width,
                    signed,
                } => {
                    let sg = if *signed { "signed " } else { "" };
                    let _ = writeln!(out, "  wire {sg}{}{name};", width_decl(width));
                }
                Item::Reg {
                    name,
                    width,
                    signed,
                } => {
                    let sg = if *signed { "signed " } else { "" };
                    let _ = writeln!(out, "  reg {sg}{}{name};", width_decl(width));
                }
                Item::Memory { name, width, depth } => {
                    let _ = writeln!(
                        out,
                        "  reg {}{name} {};",
                        width_decl(width),
                        depth_decl(depth)
                    );
                }
                Item::Integer(name) => {
                    let _ = writeln!(out, "  integer {name};");
                }
                Item::Localparam(name, v) => {
                    let _ = writeln!(out, "  localparam {name} = {v};");
                }
                Item::Assign(l, r) => {
                    let _ = writeln!(out, "  assign {l} = {r};");
                }
                Item::Always(sens, body) => {
                    let s = match sens {
                        Sens::Posedge(c) => format!("@(posedge {c}) "),
                        Sens::Star => "@* ".into(),
                        Sens::Free => String::new(),
                    };
                    let _ = write!(out, "  always {s}");
                    print_block(out, body, 1);
                    out.push('\n');
                }
                Item::Initial(body) => {
                    out.push_str("  initial ");
                    print_block(out, body, 1);
                    out.push('\n');
                }
                Item::Instance {
                    module,
                    name,
                    params,
                    conns,
                } => {
                    let _ = write!(out, "  {module}");
                    if !params.is_empty() {
                        let p: Vec<String> =
                            params.iter().map(|(k, v)| format!(".{k}({v})")).collect();
                        let _ = write!(out, " #({})", p.join(", "));
                    }
                    let _ = writeln!(out, " {name} (");
                    for (k, (port, e)) in conns.iter().enumerate() {
                        let sep = if k + 1 < conns.len() { "," } else { "" };
                        let _ = writeln!(out, "    .{port}({e}){sep}");
                    }
                    out.push_str("  );\n");
                }
                Item::Comment(c) => {
                    let _ = writeln!(out, "  // {}", comment(c));
                }
                Item::Lint { off, rule, why } => {
                    if !why.is_empty() {
                        let _ = writeln!(out, "  // waiver: {}", comment(why));
                    }
                    let _ = writeln!(
                        out,
                        "  /* verilator lint_{} {rule} */",
                        if *off { "off" } else { "on" }
                    );
                }
                Item::Blank => out.push('\n'),
            }
        }
        out.push_str("endmodule\n\n");
    }
}

impl File {
    pub fn print(&self) -> String {
        let mut out = String::new();
        for h in &self.header {
            let _ = writeln!(out, "// {}", comment(h));
        }
        for (rule, why) in &self.waivers {
            let _ = writeln!(out, "// waiver: {}", comment(why));
            let _ = writeln!(out, "/* verilator lint_off {rule} */");
        }
        out.push_str("`timescale 1ns/1ps\n\n");
        for m in &self.modules {
            m.print(&mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_a_counter() {
        let mut m = Module::new("counter");
        m.param("W", n(8))
            .input("clk", 1)
            .input("rst", 1)
            .output_reg("q", "W");
        m.always_ff(
            "clk",
            vec![if_else(
                id("rst"),
                vec![nb("q", lit(8, 0))],
                vec![nb("q", id("q").add(lit(8, 1)))],
            )],
        );
        let f = File {
            header: vec![],
            waivers: vec![],
            modules: vec![m],
        };
        let text = f.print();
        assert!(
            text.contains("module counter #(\n  parameter W = 8\n) ("),
            "{text}"
        );
        assert!(text.contains("output reg [W-1:0] q"), "{text}");
        assert!(text.contains("q <= (q + 8'd1);"), "{text}");
    }
}
