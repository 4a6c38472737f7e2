//! The sweep spec (TOML): models × pass specs × every combination of the description fields it
//! varies, and the points it expands to, in a fixed order so that shards and resumed runs agree.
//!
//! ```toml
//! models = ["examples/models/resnet18.onnx.txt"]
//! passes = ["", "nm(n=2,m=4)"]
//! data = "examples/data/digits_test.csv"    # optional: top-1 per point
//! [hw]
//! base = "examples/hw/ws-16x16-int8.ron"      # or: target = "zcu104"
//! [hw.vary]
//! "array.rows" = [8, 16, 32]
//! "dram.bytes_per_cycle" = [4.0, 16.0]
//! ```

use std::collections::BTreeMap;

use etch_hw::Accelerator;
use serde::Deserialize;
use serde_json::Value;

use crate::SweepError;

/// The most points one spec may expand to (a guard against a typo multiplying lists).
pub const MAX_POINTS: u64 = 10_000_000;

/// A sweep spec as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Model files (ONNX text or binary), relative to the working directory.
    pub models: Vec<String>,
    /// Pass specs, `""` for none; default: none.
    #[serde(default = "no_passes")]
    pub passes: Vec<String>,
    /// A labelled CSV (`etch eval`'s format): top-1 accuracy per model and passes, where the
    /// model takes its rows.
    #[serde(default)]
    pub data: Option<String>,
    pub hw: HwSpec,
}

fn no_passes() -> Vec<String> {
    vec![String::new()]
}

/// The descriptions: a base (a file or a target's default) and the fields varied over it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HwSpec {
    pub base: Option<String>,
    pub target: Option<String>,
    /// Dotted paths into the description (`array.rows`, `buffers.ifmap_kib`) and their values.
    #[serde(default)]
    pub vary: BTreeMap<String, Vec<toml::Value>>,
}

/// One point of a sweep: which model, which passes, and the varied fields' values.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Its place in the spec's order (0-based).
    pub index: u64,
    pub model: String,
    pub passes: String,
    /// `(dotted path, value)`, in the spec's (sorted) order of paths.
    pub values: Vec<(String, Value)>,
}

impl Point {
    /// What identifies the point across runs, shards and merges.
    pub fn key(&self) -> String {
        let values: serde_json::Map<String, Value> = self.values.iter().cloned().collect();
        serde_json::json!({"model": self.model, "passes": self.passes, "hw": values}).to_string()
    }
}

impl Spec {
    /// Parses a spec's text (`path` names it in errors).
    pub fn parse(path: &str, text: &str) -> Result<Spec, SweepError> {
        let spec: Spec = toml::from_str(text).map_err(|e| SweepError::Spec {
            path: path.to_string(),
            message: e.to_string(),
        })?;
        let bad = |message: String| SweepError::Spec {
            path: path.to_string(),
            message,
        };
        if spec.models.is_empty() {
            return Err(bad("`models` is empty; name at least one model file".into()));
        }
        if spec.passes.is_empty() {
            return Err(bad(
                "`passes` is empty; use [\"\"] for the model as it is".into()
            ));
        }
        if spec.hw.base.is_none() && spec.hw.target.is_none() {
            return Err(bad(
                "[hw] needs `base` (a description file) or `target` (a built-in target)".into(),
            ));
        }
        for (field, values) in &spec.hw.vary {
            if values.is_empty() {
                return Err(bad(format!("[hw.vary] `{field}` has no values")));
            }
        }
        let count = spec.count();
        if count > MAX_POINTS {
            return Err(bad(format!(
                "the spec expands to {count} points; at most {MAX_POINTS} are allowed"
            )));
        }
        Ok(spec)
    }

    /// How many points the spec expands to (saturating).
    pub fn count(&self) -> u64 {
        self.hw
            .vary
            .values()
            .fold((self.models.len() * self.passes.len()) as u64, |n, v| {
                n.saturating_mul(v.len() as u64)
            })
    }

    /// Every point, in order: models, then passes, then the varied fields (the last fastest).
    pub fn points(&self) -> Vec<Point> {
        let fields: Vec<(&String, Vec<Value>)> = self
            .hw
            .vary
            .iter()
            .map(|(k, v)| (k, v.iter().map(toml_to_json).collect()))
            .collect();
        let combos: u64 = fields.iter().map(|f| f.1.len() as u64).product();
        let mut out = Vec::new();
        for model in &self.models {
            for passes in &self.passes {
                for c in 0..combos {
                    // mixed radix, the last field fastest
                    let mut rest = c;
                    let mut values = vec![(String::new(), Value::Null); fields.len()];
                    for (i, (k, v)) in fields.iter().enumerate().rev() {
                        let n = v.len() as u64;
                        values[i] = ((*k).clone(), v[(rest % n) as usize].clone());
                        rest /= n;
                    }
                    out.push(Point {
                        index: out.len() as u64,
                        model: model.clone(),
                        passes: passes.clone(),
                        values,
                    });
                }
            }
        }
        out
    }
}

fn toml_to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Array(a) => Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
    }
}

/// The description with the point's values set (each a dotted path into its fields; an enum's
/// variant is stepped through, so `array.rows` reaches `array: Systolic(rows: …)`), validated.
pub fn apply(base: &Accelerator, values: &[(String, Value)]) -> Result<Accelerator, String> {
    let mut doc = serde_json::to_value(base).map_err(|e| e.to_string())?;
    for (path, value) in values {
        let mut node = &mut doc;
        for part in path.split('.') {
            // step into an enum variant (`{"Systolic": {...}}`) when the field is inside it
            if let Some(obj) = node.as_object() {
                if !obj.contains_key(part) && obj.len() == 1 {
                    let variant = obj.keys().next().cloned().unwrap_or_default();
                    if variant.starts_with(|c: char| c.is_ascii_uppercase()) {
                        node = &mut node[variant.as_str()];
                    }
                }
            }
            node = match node.as_object_mut().and_then(|o| o.get_mut(part)) {
                Some(n) => n,
                None => return Err(format!("the description has no field `{path}`")),
            };
        }
        *node = value.clone();
    }
    let acc: Accelerator =
        serde_json::from_value(doc).map_err(|e| format!("the varied description: {e}"))?;
    acc.validate().map_err(|e| e.to_string())?;
    Ok(acc)
}
