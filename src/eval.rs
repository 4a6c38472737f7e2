//! `etch eval`: top-1 accuracy on a labelled CSV (label, then the flattened input).

use std::time::Duration;

use etch_sim::reference::calibrate::{read_samples, sample_shape};
use etch_sim::reference::{Array, Value};
use serde::Serialize;

use crate::execute::{plan, Backend};
use crate::load::CliError;

#[derive(Serialize)]
struct EvalReport {
    samples: usize,
    top1: f64,
}

/// Evaluates top-1 accuracy, one sample per row.
pub fn run(
    model: &str,
    data: &str,
    seed: u64,
    backend: Backend,
    json: bool,
    passes: Option<&str>,
    verify_each: bool,
) -> Result<(), CliError> {
    let plan = plan(model, seed, backend, passes, verify_each)?;
    let input = plan
        .inputs()
        .next()
        .ok_or_else(|| format!("error: {model}: the model takes no runtime input"))?
        .clone();
    let shape = sample_shape(&input).map_err(|e| format!("error: {model}: {e}"))?;
    let samples = read_samples(data, shape.iter().product(), usize::MAX)
        .map_err(|e| format!("error: {e}"))?;
    let bar = indicatif::ProgressBar::new(samples.len() as u64);
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut correct = 0;
    for (k, (label, x)) in samples.iter().enumerate() {
        let out = plan
            .run(vec![(
                input.name.clone(),
                Value::F32(Array::new(shape.clone(), x.clone())),
            )])
            .map_err(|e| format!("error: {model}: {e}"))?;
        let Value::F32(y) = &out[0].1 else {
            return Err(format!("error: {model}: the output is not float scores"));
        };
        if *label >= y.data.len() {
            return Err(format!(
                "error: {data}: sample {} has label {label}, but the model scores {} classes (0 to {}); check the data belongs to this model",
                k + 1,
                y.data.len(),
                y.data.len().saturating_sub(1)
            ));
        }
        // the first of equal scores wins, as numpy's argmax (quantized scores can tie)
        let best = y
            .data
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
            .map(|(i, _)| i);
        if best == Some(*label) {
            correct += 1;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let top1 = correct as f64 / samples.len() as f64;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&EvalReport {
                samples: samples.len(),
                top1
            })
            .map_err(|e| e.to_string())?
        );
    } else {
        println!("top-1: {correct}/{} = {:.2}%", samples.len(), top1 * 100.0);
    }
    Ok(())
}
