//! `etch run`: one inference on a `.npy` input, with timings.

use std::time::Instant;

use serde::Serialize;

use crate::execute::{plan, read_npy, write_npy, Backend};
use crate::load::CliError;
use etch_sim::reference::Value;

#[derive(Serialize)]
struct OutputInfo {
    name: String,
    shape: Vec<usize>,
}

#[derive(Serialize)]
struct RunReport {
    outputs: Vec<OutputInfo>,
    load_ms: f64,
    infer_ms: f64,
}

/// Options of `etch run`.
pub struct RunArgs<'a> {
    pub model: &'a str,
    pub input: &'a str,
    pub output: Option<&'a str>,
    pub repeat: usize,
    pub seed: u64,
    pub backend: Backend,
    pub json: bool,
    /// Passes to run first, and whether to verify after each.
    pub passes: Option<&'a str>,
    pub verify_each: bool,
}

/// Runs the model `repeat` times after a warm-up and reports the median time.
pub fn run(a: RunArgs) -> Result<(), CliError> {
    let t0 = Instant::now();
    let plan = plan(a.model, a.seed, a.backend, a.passes, a.verify_each)?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let x = read_npy(a.input)?;
    if let Value::F32(arr) = &x {
        let bad = arr.data.iter().filter(|v| !v.is_finite()).count();
        if bad > 0 {
            eprintln!(
                "warning: {}: {bad} of {} input values are NaN or infinite; the outputs will likely be NaN too",
                a.input,
                arr.data.len()
            );
        }
    }
    let first = plan
        .inputs()
        .next()
        .ok_or_else(|| format!("error: {}: the model takes no runtime input", a.model))?;
    let name = first.name.clone();
    if plan.inputs().count() > 1 {
        return Err(format!(
            "error: {}: the model takes {} inputs; `etch run` feeds one",
            a.model,
            plan.inputs().count()
        ));
    }
    let go = || {
        plan.run(vec![(name.clone(), x.clone())])
            .map_err(|e| format!("error: {}: {e}", a.model))
    };
    let mut outputs = go()?;
    let mut times = Vec::with_capacity(a.repeat);
    for _ in 0..a.repeat.max(1) {
        let t = Instant::now();
        outputs = go()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let infer_ms = times[times.len() / 2];
    if let Some(path) = a.output {
        write_npy(path, &outputs[0].1)?;
    }
    let report = RunReport {
        outputs: outputs
            .iter()
            .map(|(n, v)| OutputInfo {
                name: n.clone(),
                shape: v.shape().to_vec(),
            })
            .collect(),
        load_ms,
        infer_ms,
    };
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    for (n, v) in &outputs {
        println!(
            "output `{}`: shape {:?}",
            etch_ir::safe_text::terminal_name(n),
            v.shape()
        );
        if let etch_sim::reference::Value::F32(arr) = v {
            let classes = arr.shape.last().copied().unwrap_or(0);
            if arr.data.len() == classes && classes > 1 {
                let mut idx: Vec<usize> = (0..classes).collect();
                idx.sort_by(|&i, &j| arr.data[j].total_cmp(&arr.data[i]));
                let top: Vec<String> = idx
                    .iter()
                    .take(5)
                    .map(|&i| format!("{i} ({:.4})", arr.data[i]))
                    .collect();
                println!("  top-5: {}", top.join(", "));
            }
        }
    }
    println!(
        "load {load_ms:.1} ms, inference {infer_ms:.2} ms (median of {} after a warm-up)",
        times.len()
    );
    Ok(())
}
