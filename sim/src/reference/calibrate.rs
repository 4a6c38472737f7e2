//! Calibration: runs the float model on rows of a CSV (label, then the flattened input, like
//! `examples/data/digits_train.csv`) with the CPU executor and records the values of the tensors a
//! pass asks for. `quant` turns them into activation ranges; `binarize` into thresholds.

use std::collections::HashMap;

use etch_ir::passes::Calibrator;
use etch_ir::Model;

use super::cpu::{Plan, PlanInput};
use super::value::{Array, Value};

/// The largest input value a data row may hold: beyond it a value is a corrupt row, not data.
pub const MAX_MAGNITUDE: f32 = 1e6;

/// Reads up to `limit` labelled samples of `per_sample` values each from a CSV: a label, then
/// the values, on every row. A value that is NaN, infinite or beyond `MAX_MAGNITUDE` is an error
/// naming its row and column.
pub fn read_samples(
    path: &str,
    per_sample: usize,
    limit: usize,
) -> Result<Vec<(usize, Vec<f32>)>, String> {
    let text = etch_ir::limits::read_text(path, etch_ir::limits::FileKind::Data)
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (line_no, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        if out.len() >= limit {
            break;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != per_sample + 1 {
            return Err(format!("{path}:{}: the row has {} columns, but the model's input needs 1 label + {per_sample} values", line_no + 1, fields.len()));
        }
        let label = fields[0].parse::<usize>().map_err(|_| {
            format!(
                "{path}:{}: the label `{}` is not a class index",
                line_no + 1,
                fields[0]
            )
        })?;
        let x = fields[1..]
            .iter()
            .enumerate()
            .map(|(c, f)| {
                let bad = |what: &str| {
                    format!(
                        "{path}:{}: column {} (`{f}`) {what}",
                        line_no + 1,
                        c + 2
                    )
                };
                let v = f.parse::<f32>().map_err(|_| bad("is not a number"))?;
                if !v.is_finite() {
                    return Err(bad("is not a finite number; fix or drop the row"));
                }
                if v.abs() > MAX_MAGNITUDE {
                    return Err(bad(&format!("is implausibly large (beyond ±{MAX_MAGNITUDE:e}); a stray value would skew every range calibrated from it: fix or drop the row")));
                }
                Ok(v)
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.push((label, x));
    }
    if out.is_empty() {
        return Err(format!("{path}: no samples"));
    }
    Ok(out)
}

/// The shape of one sample of an input: its declared dims, a symbolic batch dim taken as 1.
pub fn sample_shape(input: &PlanInput) -> Result<Vec<usize>, String> {
    input
        .dims
        .iter()
        .enumerate()
        .map(|(k, d)| match d.known() {
            Some(v) => Ok(v as usize),
            None if k == 0 => Ok(1),
            None => Err(format!(
                "input `{}` has an unknown dim {k}; a sample needs a fixed shape",
                input.name
            )),
        })
        .collect()
}

/// The name of a plan's only input and the shape of one sample.
pub fn single_input(plan: &Plan) -> Result<(String, Vec<usize>), String> {
    let mut inputs = plan.inputs();
    let input = inputs.next().ok_or("the model takes no runtime input")?;
    if inputs.next().is_some() {
        return Err("the model takes more than one input; a CSV row feeds one".into());
    }
    Ok((input.name.clone(), sample_shape(input)?))
}

/// A calibrator that reads the CSV a pass names and runs the CPU executor.
#[derive(Debug, Clone, Copy, Default)]
pub struct CsvCalibrator;

impl Calibrator for CsvCalibrator {
    fn observe(
        &self,
        model: &Model,
        names: &[String],
        data: &str,
        samples: usize,
    ) -> Result<HashMap<String, Vec<f32>>, String> {
        let info = etch_ir::verify::verify(model).map_err(|e| e.to_string())?;
        let plan = Plan::new(model, &info).map_err(|e| e.to_string())?;
        let (input, shape) = single_input(&plan)?;
        let per_sample: usize = shape.iter().product();
        let rows = read_samples(data, per_sample, samples)?;
        let mut seen: HashMap<String, Vec<f32>> =
            names.iter().map(|n| (n.clone(), Vec::new())).collect();
        for (_, x) in rows {
            let given = vec![(input.clone(), Value::F32(Array::new(shape.clone(), x)))];
            plan.run_observed(given, names, &mut |name, v| {
                let out = seen.get_mut(name).expect("only watched names are observed");
                match v {
                    Value::F32(a) => out.extend_from_slice(&a.data),
                    Value::I64(a) => out.extend(a.data.iter().map(|&x| x as f32)),
                }
            })
            .map_err(|e| e.to_string())?;
        }
        if let Some((name, _)) = seen.iter().find(|(_, v)| v.is_empty()) {
            return Err(format!("calibration never saw a value of `{name}`"));
        }
        Ok(seen)
    }
}
