//! Graph-to-graph passes, run in the order a spec string gives. Every pass is one file with one
//! struct: typed parameters, a description, a precondition that says clearly what it cannot do, and
//! a `run` that leaves a graph the verifier accepts. `PASSES` is the one explicit registry; the
//! CLI's `etch passes --list` and the spec checks are generated from it.

mod binarize;
pub(crate) mod dead_values;
mod fold_bn;
mod fold_constants;
mod gap_as_conv;
pub mod import_quant;
pub(crate) mod nm;
mod pow2;
pub mod prune;
pub(crate) mod qdq;
mod quant;
mod remove_identity;
pub mod spec;

use std::collections::HashMap;

use crate::graph::Model;
use crate::stats::ModelStats;
use spec::{SpecError, SpecPass, SpecValue};

/// Why a pass cannot run, or failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PassError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("pass `{pass}` cannot run on this model: {message}")]
    Precondition { pass: String, message: String },
    #[error("pass `{pass}` failed: {message}")]
    Failed { pass: String, message: String },
    #[error("after pass `{pass}` the graph does not verify: {message}")]
    Unverifiable { pass: String, message: String },
}

/// The kind of a parameter, which decides how its value is checked.
#[derive(Debug, Clone, Copy)]
pub enum ParamKind {
    /// A number within an inclusive range.
    Float { min: f64, max: f64 },
    /// An integer within an inclusive range.
    Int { min: i64, max: i64 },
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
    /// A list of integers.
    IntList,
    /// A list of words from a fixed set.
    WordList(&'static [&'static str]),
    /// A double-quoted file path.
    Path,
    /// `true` or `false`.
    Bool,
}

/// One parameter of a pass.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub kind: ParamKind,
    /// The default as it would be written in a spec; `None` for a required parameter.
    pub default: Option<&'static str>,
    pub doc: &'static str,
}

/// A checked argument value.
#[derive(Debug, Clone, PartialEq)]
pub enum ArgValue {
    Float(f64),
    Int(i64),
    Word(String),
    Ints(Vec<i64>),
    Words(Vec<String>),
    Path(String),
    Bool(bool),
}

/// A pass's arguments after checking against its parameters, defaults filled in.
#[derive(Debug, Clone, Default)]
pub struct Args(HashMap<&'static str, ArgValue>);

impl Args {
    /// A float parameter (ints are accepted where floats are).
    pub fn float(&self, name: &str) -> f64 {
        match self.0.get(name) {
            Some(ArgValue::Float(v)) => *v,
            Some(ArgValue::Int(v)) => *v as f64,
            _ => unreachable!("parameter `{name}` is declared as a number"),
        }
    }

    /// An integer parameter.
    pub fn int(&self, name: &str) -> i64 {
        match self.0.get(name) {
            Some(ArgValue::Int(v)) => *v,
            _ => unreachable!("parameter `{name}` is declared as an integer"),
        }
    }

    /// A word parameter.
    pub fn word(&self, name: &str) -> &str {
        match self.0.get(name) {
            Some(ArgValue::Word(v)) => v,
            _ => unreachable!("parameter `{name}` is declared as a choice"),
        }
    }

    /// An integer-list parameter.
    pub fn ints(&self, name: &str) -> &[i64] {
        match self.0.get(name) {
            Some(ArgValue::Ints(v)) => v,
            _ => unreachable!("parameter `{name}` is declared as a list of integers"),
        }
    }

    /// A word-list parameter.
    pub fn words(&self, name: &str) -> &[String] {
        match self.0.get(name) {
            Some(ArgValue::Words(v)) => v,
            _ => unreachable!("parameter `{name}` is declared as a list of words"),
        }
    }

    /// A path parameter, if given (paths have no default).
    pub fn path(&self, name: &str) -> Option<&str> {
        match self.0.get(name) {
            Some(ArgValue::Path(v)) => Some(v),
            _ => None,
        }
    }

    /// A boolean parameter.
    pub fn bool(&self, name: &str) -> bool {
        matches!(self.0.get(name), Some(ArgValue::Bool(true)))
    }
}

/// Runs a model on sample inputs and reports, per requested value, what it held: how `quant`
/// calibrates. It lives with the executors (which depend on this crate), so the caller supplies it.
pub trait Calibrator {
    /// Runs the model on up to `samples` rows of the data file `data` (a CSV: label, then the
    /// flattened input) and returns every value each named tensor held, sample after sample.
    fn observe(
        &self,
        model: &Model,
        names: &[String],
        data: &str,
        samples: usize,
    ) -> Result<HashMap<String, Vec<f32>>, String>;
}

/// What passes may need from outside the IR.
#[derive(Default)]
pub struct PassContext<'a> {
    /// Runs the model on calibration data (for `quant`).
    pub calibrator: Option<&'a dyn Calibrator>,
}

/// One pass, configured.
pub trait Pass {
    /// Says, before anything changes, whether the pass can run on this model and why not.
    fn precondition(&self, model: &Model) -> Result<(), String>;
    /// Rewrites the model and returns one line per thing it changed.
    fn run(&self, model: &mut Model, cx: &PassContext) -> Result<Vec<String>, String>;
}

/// A registered pass: its name, what it does, its parameters, and how to build it from arguments.
pub struct PassDef {
    pub name: &'static str,
    pub description: &'static str,
    pub params: &'static [Param],
    pub build: fn(&Args) -> Result<Box<dyn Pass>, String>,
}

/// Every pass etch has, in the order `etch passes --list` shows them.
pub const PASSES: &[PassDef] = &[
    import_quant::DEF,
    remove_identity::DEF,
    dead_values::DEF,
    fold_constants::DEF,
    fold_bn::DEF,
    prune::DEF,
    nm::DEF,
    quant::DEF,
    pow2::DEF,
    binarize::DEF,
];

/// The precondition of every pass that reads weight values: a shape-only model text has none yet.
pub(crate) fn require_weight_values(model: &Model) -> Result<(), String> {
    if crate::weights::shape_only_weights(model).is_ok_and(|w| !w.is_empty()) {
        return Err(
            "the model has shape-only weights; fill them first (`etch convert --seed N`)".into(),
        );
    }
    Ok(())
}

/// Looks a pass up by name.
pub fn find(name: &str) -> Option<&'static PassDef> {
    PASSES.iter().find(|p| p.name == name)
}

fn check_value(def: &PassDef, p: &Param, v: &SpecValue, at: usize) -> Result<ArgValue, SpecError> {
    let err = |what: String| SpecError {
        at,
        message: format!(
            "`{}` of `{}` {what}, not {}",
            p.name,
            def.name,
            v.describe()
        ),
    };
    Ok(match (p.kind, v) {
        (ParamKind::Float { min, max }, SpecValue::Number(x, _)) if *x >= min && *x <= max => {
            ArgValue::Float(*x)
        }
        (ParamKind::Float { min, max }, _) => {
            return Err(err(format!("must be a number from {min} to {max}")))
        }
        (ParamKind::Int { min, max }, SpecValue::Number(x, _))
            if x.fract() == 0.0 && *x >= min as f64 && *x <= max as f64 =>
        {
            ArgValue::Int(*x as i64)
        }
        (ParamKind::Int { min, max }, _) => {
            return Err(err(format!("must be an integer from {min} to {max}")))
        }
        (ParamKind::Choice(words), SpecValue::Word(w)) if words.contains(&w.as_str()) => {
            ArgValue::Word(w.clone())
        }
        (ParamKind::Choice(words), _) => {
            return Err(err(format!("must be one of {}", words.join(", "))))
        }
        (ParamKind::Bool, SpecValue::Word(w)) if w == "true" || w == "false" => {
            ArgValue::Bool(w == "true")
        }
        (ParamKind::Bool, _) => return Err(err("must be true or false".into())),
        (ParamKind::Path, SpecValue::Str(s)) => ArgValue::Path(s.clone()),
        (ParamKind::Path, _) => return Err(err("must be a double-quoted path".into())),
        (ParamKind::IntList, SpecValue::List(items))
            if items
                .iter()
                .all(|x| matches!(x, SpecValue::Number(n, _) if n.fract() == 0.0)) =>
        {
            ArgValue::Ints(
                items
                    .iter()
                    .map(|x| {
                        if let SpecValue::Number(n, _) = x {
                            *n as i64
                        } else {
                            0
                        }
                    })
                    .collect(),
            )
        }
        (ParamKind::IntList, _) => return Err(err("must be a list of integers like [4,4]".into())),
        (ParamKind::WordList(words), SpecValue::List(items))
            if items
                .iter()
                .all(|x| matches!(x, SpecValue::Word(w) if words.contains(&w.as_str()))) =>
        {
            ArgValue::Words(
                items
                    .iter()
                    .map(|x| {
                        if let SpecValue::Word(w) = x {
                            w.clone()
                        } else {
                            String::new()
                        }
                    })
                    .collect(),
            )
        }
        (ParamKind::WordList(words), _) => {
            return Err(err(format!(
                "must be a list of words from {}",
                words.join(", ")
            )))
        }
    })
}

/// Checks a parsed pass against its definition and fills in defaults.
pub fn check_args(sp: &SpecPass) -> Result<(&'static PassDef, Args), SpecError> {
    let def = find(&sp.name).ok_or_else(|| SpecError {
        at: sp.at,
        message: format!(
            "there is no pass `{}`; the passes are {}",
            sp.name,
            PASSES.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
        ),
    })?;
    let mut args = Args::default();
    for a in &sp.args {
        let p = def
            .params
            .iter()
            .find(|p| p.name == a.key)
            .ok_or_else(|| SpecError {
                at: a.key_at,
                message: format!(
                    "`{}` has no parameter `{}`; its parameters are {}",
                    def.name,
                    a.key,
                    def.params
                        .iter()
                        .map(|p| p.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        if args.0.contains_key(p.name) {
            return Err(SpecError {
                at: a.key_at,
                message: format!("`{}` is given twice", a.key),
            });
        }
        args.0
            .insert(p.name, check_value(def, p, &a.value, a.value_at)?);
    }
    for p in def.params {
        if args.0.contains_key(p.name) {
            continue;
        }
        match p.default {
            Some(d) => {
                let v = spec::parse_spec(&format!("x(v={d})"))
                    .ok()
                    .and_then(|mut s| s.pop())
                    .and_then(|mut s| s.args.pop())
                    .map(|a| a.value);
                let v = v.ok_or_else(|| SpecError {
                    at: sp.at,
                    message: format!("internal: bad default for {}", p.name),
                })?;
                args.0.insert(p.name, check_value(def, p, &v, sp.at)?);
            }
            None if matches!(p.kind, ParamKind::Path) => {}
            None => {
                return Err(SpecError {
                    at: sp.at,
                    message: format!("`{}` needs `{}` ({})", def.name, p.name, p.doc),
                })
            }
        }
    }
    Ok((def, args))
}

/// What one pass did: its spec, the lines it reported, and the model's figures after it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PassReport {
    pub pass: String,
    pub changes: Vec<String>,
    pub after: ModelStats,
}

/// Options of a pipeline run.
#[derive(Default)]
pub struct RunOptions<'a> {
    /// Run the verifier after every pass (always on in tests).
    pub verify_each: bool,
    pub cx: PassContext<'a>,
}

/// Parses `spec`, checks every pass's arguments, then runs the passes in order.
pub fn run_spec(
    model: &mut Model,
    spec: &str,
    opts: &RunOptions,
) -> Result<Vec<PassReport>, PassError> {
    let parsed = spec::parse_spec(spec)?;
    let mut built = Vec::new();
    for sp in &parsed {
        let (def, args) = check_args(sp)?;
        let pass = (def.build)(&args)
            .map_err(|message| PassError::Spec(SpecError { at: sp.at, message }))?;
        built.push((spec_text(spec, sp), pass));
    }
    let mut reports = Vec::new();
    let n_passes = built.len();
    for (name, pass) in built {
        pass.precondition(model)
            .map_err(|message| PassError::Precondition {
                pass: name.clone(),
                message,
            })?;
        let changes = pass
            .run(model, &opts.cx)
            .map_err(|message| PassError::Failed {
                pass: name.clone(),
                message,
            })?;
        // with --verify-each every pass is checked in full; otherwise shapes are inferred for the
        // report and the full check runs once, after the last pass
        let last = reports.len() + 1 == n_passes;
        let info = if opts.verify_each || last {
            crate::verify::verify(model).map_err(|e| PassError::Unverifiable {
                pass: name.clone(),
                message: e.to_string(),
            })?
        } else {
            crate::infer::infer(model).map_err(|(idx, e)| PassError::Unverifiable {
                pass: name.clone(),
                message: format!("node `{}`: {e}", model.graph.nodes[idx].display_name()),
            })?
        };
        let shape_only = crate::weights::shape_only_weights(model).unwrap_or_default();
        reports.push(PassReport {
            pass: name,
            changes,
            after: crate::stats::model_stats(model, &info, &shape_only),
        });
    }
    Ok(reports)
}

/// The text of one pass in the spec (`prune(sparsity=0.5)`), for reports.
fn spec_text(spec: &str, sp: &SpecPass) -> String {
    let rest = &spec[sp.at..];
    let mut depth = 0;
    let end = rest
        .char_indices()
        .find(|&(_, c)| {
            match c {
                '(' | '[' => depth += 1,
                ')' | ']' => depth -= 1,
                _ => {}
            }
            c == ',' && depth == 0
        })
        .map_or(rest.len(), |(k, _)| k);
    rest[..end].trim().to_string()
}

/// Help text for every pass, generated from the registry.
pub fn list() -> String {
    let mut out = String::new();
    for def in PASSES {
        out.push_str(&format!("{}\n    {}\n", def.name, def.description));
        for p in def.params {
            let kind = match p.kind {
                ParamKind::Float { min, max } => format!("number {min}..{max}"),
                ParamKind::Int { min, max } => format!("integer {min}..{max}"),
                ParamKind::Choice(w) => w.join("|"),
                ParamKind::IntList => "[integers]".into(),
                ParamKind::WordList(w) => format!("[{}]", w.join("|")),
                ParamKind::Path => "\"path\"".into(),
                ParamKind::Bool => "true|false".into(),
            };
            let default = match (p.default, p.kind) {
                (Some(d), _) => format!("default {d}"),
                // a path has no default; the pass says when it needs one
                (None, ParamKind::Path) => "no default".to_string(),
                (None, _) => "required".to_string(),
            };
            out.push_str(&format!("    {}={kind} ({default}): {}\n", p.name, p.doc));
        }
        out.push('\n');
    }
    out
}
