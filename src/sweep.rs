//! `etch sweep`: runs a sweep spec into SQLite with a progress bar, joins shards, and prints the
//! Pareto front (the work is `etch_sweep`'s; this is the terminal side).

use etch_sweep::{pareto, Shard, Spec};

use crate::load::CliError;
use crate::sim::emit;

/// `etch sweep SPEC -o OUT [--jobs N] [--shard I/N]`.
pub fn run(
    spec: Option<&str>,
    output: Option<&str>,
    jobs: usize,
    shard: Option<&str>,
) -> Result<(), CliError> {
    let (Some(path), Some(out)) = (spec, output) else {
        return Err("error: give a sweep spec and the results file: etch sweep SPEC.toml -o RESULTS.sqlite (or etch sweep merge / etch sweep pareto)".into());
    };
    let text = crate::load::read_text(path)?;
    let spec = Spec::parse(path, &text).map_err(|e| format!("error: {e}"))?;
    let shard = match shard {
        Some(s) => Shard::parse(s).map_err(|e| format!("error: {e}"))?,
        None => Shard::ALL,
    };
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} points, {per_sec}, eta {eta}",
        )
        .expect("a valid template"),
    );
    let s = etch_sweep::run(&spec, out, shard, jobs, &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .map_err(|e| format!("error: {e}"))?;
    bar.finish_and_clear();
    emit(&format!(
        "{} points in shard {}/{}: {} already in {out}, {} run now ({} failed)\n",
        s.points, shard.index, shard.count, s.skipped, s.ran, s.failed
    ))
}

/// `etch sweep merge OUT IN...`.
pub fn merge(out: &str, inputs: &[String]) -> Result<(), CliError> {
    let added = etch_sweep::store::merge(out, inputs).map_err(|e| format!("error: {e}"))?;
    emit(&format!("{added} points added to {out}\n"))
}

/// `etch sweep pareto RESULTS [--objectives ...] [--json] [--plot FILE.svg]`.
pub fn pareto(
    results: &str,
    objectives: &str,
    json: bool,
    plot: Option<&str>,
) -> Result<(), CliError> {
    let objectives: Vec<String> = objectives
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if plot.is_some() && objectives.len() != 2 {
        return Err(format!(
            "error: --plot draws two objectives, but {} are named; give --objectives A,B",
            objectives.len()
        ));
    }
    let f = pareto::front(results, &objectives).map_err(|e| format!("error: {e}"))?;
    if let Some(path) = plot {
        let pair = |v: &Vec<f64>| (v[0], v[1]);
        let all: Vec<(f64, f64)> = f.values.iter().map(pair).collect();
        let front: Vec<(f64, f64)> = f.on_front.iter().map(|&i| pair(&f.values[i])).collect();
        let label = |o: &str| {
            pareto::OBJECTIVES
                .iter()
                .find(|x| x.0 == o)
                .map_or(o.to_string(), |x| format!("{o} ({})", x.1))
        };
        etch_sim::report::plot::pareto_svg(
            std::path::Path::new(path),
            &label(&objectives[0]),
            &label(&objectives[1]),
            &all,
            &front,
        )
        .map_err(|e| format!("error: {e}"))?;
    }
    if json {
        let doc = serde_json::json!({"objectives": f.objectives, "points": f.points});
        return emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?
        ));
    }
    // the table: the point's model, passes, varied fields, then the objectives' columns
    let shown: Vec<&String> = f
        .columns
        .iter()
        .filter(|c| {
            !matches!(
                c.as_str(),
                "key" | "idx" | "status" | "error" | "accelerator"
            )
        })
        .collect();
    let mut text = format!(
        "{} of {} points are on the front over {}\n",
        f.points.len(),
        f.candidates,
        objectives.join(", ")
    );
    let header: Vec<&str> = shown.iter().map(|c| c.as_str()).collect();
    text.push_str(&etch_ir::safe_text::terminal_text(&header.join("\t")));
    text.push('\n');
    for p in &f.points {
        let cells: Vec<String> = shown
            .iter()
            .map(|c| match &p[c.as_str()] {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => "-".into(),
                v => v.to_string(),
            })
            .collect();
        // names from specs and models: no escape sequence reaches the terminal
        text.push_str(&etch_ir::safe_text::terminal_text(&cells.join("\t")));
        text.push('\n');
    }
    emit(&text)
}

/// `etch sweep slurm SPEC -o DIR [--tasks N] [--partition P] [--time T] [--submit]`.
pub fn slurm(
    spec: &str,
    dir: &str,
    tasks: u64,
    partition: Option<String>,
    time: Option<String>,
    submit: bool,
) -> Result<(), CliError> {
    // the spec must parse here, not fail in every task
    Spec::parse(spec, &crate::load::read_text(spec)?).map_err(|e| format!("error: {e}"))?;
    let abs = |p: &str| -> Result<std::path::PathBuf, CliError> {
        std::path::absolute(p).map_err(|e| format!("error: {p}: {e}"))
    };
    let job = etch_sweep::slurm::Job {
        etch: std::env::current_exe().map_err(|e| format!("error: the etch binary: {e}"))?,
        spec: abs(spec)?,
        dir: abs(dir)?,
        workdir: std::env::current_dir().map_err(|e| format!("error: the working folder: {e}"))?,
        tasks,
        partition,
        time,
    };
    let (array, merge) = job.write().map_err(|e| format!("error: {e}"))?;
    let mut text = format!(
        "wrote {} ({tasks} tasks) and {}\n",
        array.display(),
        merge.display()
    );
    if submit {
        let (a, m) = job
            .submit(&array, &merge)
            .map_err(|e| format!("error: {e}"))?;
        text.push_str(&format!(
            "submitted job array {a} and merge job {m} (after it); the result will be {}\n",
            job.merged_file().display()
        ));
    } else {
        text.push_str(&format!(
            "submit: jobid=$(sbatch --parsable {}) && sbatch --dependency=afterok:$jobid {}\n",
            etch_sweep::slurm::quote(&array.display().to_string()),
            etch_sweep::slurm::quote(&merge.display().to_string())
        ));
    }
    emit(&etch_ir::safe_text::terminal_text(&text))
}
