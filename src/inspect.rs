//! `etch inspect`: what a model is and what it costs, layer by layer.

use etch_ir::safe_text::terminal_name;
use etch_ir::stats::{model_stats, ModelStats};
use etch_ir::weights::shape_only_weights;

use etch_sim::pipeline::{Pipeline, PipelineError};

use crate::load::{self, CliError};
pub use etch_ir::stats::thousands;

/// Prints the per-layer table (or JSON) of a model, after the passes if any are given.
pub fn run(
    path: &str,
    json: bool,
    passes: Option<&str>,
    seed: u64,
    verify_each: bool,
) -> Result<(), CliError> {
    if passes.is_some() {
        let loaded = load::prepare(
            path,
            Pipeline {
                seed,
                passes,
                verify_each,
                ..Default::default()
            },
        )?;
        let stats = model_stats(&loaded.model, &loaded.info, &[]);
        check_overflow(path, &stats)?;
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(&stats).map_err(|e| e.to_string())?
            );
        } else {
            print!("{}", table(&stats));
            println!("{}", summary(&stats));
        }
        return Ok(());
    }
    let src = load::source(path)?;
    let loaded = load::run(&src, Pipeline::default())?;
    let shape_only = shape_only_weights(&loaded.model)
        .map_err(|e| load::error(path, &src.bytes, &PipelineError::weights(&loaded.model, e)))?;
    let stats = model_stats(&loaded.model, &loaded.info, &shape_only);
    check_overflow(path, &stats)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&stats).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", table(&stats));
    }
    if !shape_only.is_empty() {
        let values: u64 = shape_only.iter().map(|w| w.numel()).sum();
        eprintln!(
            "note: {} weights ({} values) are shape-only in this model; they are counted in params. `etch convert --seed N` fills them with seeded random values.",
            shape_only.len(),
            thousands(values)
        );
    }
    Ok(())
}

/// Figures that do not fit 64 bits are an error, never a wrapped or saturated number.
fn check_overflow(path: &str, stats: &ModelStats) -> Result<(), CliError> {
    match stats.overflowed() {
        Some(what) => Err(format!(
            "error: {path}: the MACs or parameters of {what} exceed 2^64; check the shapes"
        )),
        None => Ok(()),
    }
}

/// One line on size and work: sparsity, stored size, compression and MACs by kind.
pub fn summary(stats: &ModelStats) -> String {
    let kinds: Vec<String> = stats
        .macs_by_kind
        .iter()
        .map(|(k, v)| format!("{} {k}", thousands(*v)))
        .collect();
    format!(
        "sparsity {:.1}% ({} of {} weights non-zero), stored {:.1} KiB, {:.2}x smaller than float32; MACs: {}",
        stats.sparsity * 100.0,
        thousands(stats.nonzero_params),
        thousands(stats.params),
        stats.stored_bits as f64 / 8192.0,
        stats.compression,
        if kinds.is_empty() { "none".to_string() } else { kinds.join(", ") }
    )
}

fn shape_text(shape: &Option<Vec<serde_json::Value>>) -> String {
    match shape {
        None => "?".to_string(),
        Some(dims) => {
            let dims: Vec<String> = dims
                .iter()
                .map(|d| d.as_str().map_or_else(|| d.to_string(), str::to_string))
                .collect();
            format!("[{}]", dims.join(","))
        }
    }
}

fn table(stats: &ModelStats) -> String {
    let rows: Vec<[String; 5]> = stats
        .layers
        .iter()
        .map(|l| {
            [
                // names come from the model: no control character reaches the terminal
                terminal_name(&l.name),
                terminal_name(&l.op),
                shape_text(&l.output_shape),
                thousands(l.params),
                thousands(l.macs),
            ]
        })
        .collect();
    let total = [
        if stats.partial {
            "total (partial)".to_string()
        } else {
            "total".to_string()
        },
        String::new(),
        String::new(),
        thousands(stats.params),
        thousands(stats.macs),
    ];
    let head = ["layer", "op", "output shape", "params", "MACs"].map(String::from);
    let mut width = [0usize; 5];
    for r in rows.iter().chain([&head, &total]) {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |r: &[String; 5]| {
        format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {:>w4$}\n",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = width[0],
            w1 = width[1],
            w2 = width[2],
            w3 = width[3],
            w4 = width[4]
        )
    };
    let rule = format!("{}\n", "-".repeat(width.iter().sum::<usize>() + 8));
    let mut out = line(&head);
    out.push_str(&rule);
    for r in &rows {
        out.push_str(&line(r));
    }
    out.push_str(&rule);
    out.push_str(&line(&total));
    out
}
