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
    let name = input.name.clone();
    let correct = etch_sim::reference::accuracy::top1(
        &shape,
        &samples,
        |x| {
            let out = plan.run(vec![(name.clone(), x)])?;
            Ok(out
                .into_iter()
                .next()
                .map(|o| o.1)
                .unwrap_or(Value::F32(Array::new(vec![0], vec![]))))
        },
        || bar.inc(1),
    )
    .map_err(|e| match e {
        e @ etch_sim::reference::accuracy::AccuracyError::Label { .. } => {
            format!("error: {data}: {e}")
        }
        e => format!("error: {model}: {e}"),
    })?;
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
