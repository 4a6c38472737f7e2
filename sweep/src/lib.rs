//! `etch sweep`: a design-space exploration. A spec (`spec`) names models, pass specs and the
//! description fields to vary; every point runs through the same pipeline and simulator as
//! `etch sim` (so its figures are the ones `etch sim --json` prints), in parallel, into a SQLite
//! file (`store`) that a second run resumes and that shards merge into; `pareto` picks the
//! non-dominated points.

pub mod pareto;
pub mod slurm;
pub mod spec;
pub mod store;

use std::collections::HashMap;

use etch_hw::{area, fit, Accelerator};
use etch_program::lower::GraphFacts;
use etch_sim::cycle::SimOptions;
use etch_sim::pipeline::{Pipeline, Prepared};
use rayon::prelude::*;
use serde_json::Value;

pub use spec::{Point, Spec};
pub use store::Store;

/// Why a sweep cannot run (a point that fails is a row with its error, not this).
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("{path}: {message}")]
    Spec { path: String, message: String },
    #[error("the sweep's base description: {0}")]
    Base(String),
    #[error("results file {path}: {message}")]
    Db { path: String, message: String },
    #[error("--shard {0}: give I/N with 1 <= I <= N")]
    Shard(String),
    #[error("the thread pool: {0}")]
    Threads(String),
    #[error("slurm: {0}")]
    Slurm(String),
}

/// Which points this run takes: every `count`-th from the `index`-th (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// The whole sweep.
    pub const ALL: Shard = Shard { index: 1, count: 1 };

    /// Parses `I/N`.
    pub fn parse(s: &str) -> Result<Shard, SweepError> {
        let bad = || SweepError::Shard(s.to_string());
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// Whether the point belongs to this shard.
    pub fn takes(&self, p: &Point) -> bool {
        p.index % self.count == self.index - 1
    }
}

/// How a run went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// Points of this shard, those already in the file, and those run now (and of those, failed).
    pub points: u64,
    pub skipped: u64,
    pub ran: u64,
    pub failed: u64,
}

/// A model after its passes, its top-1 accuracy on the spec's data and its graph's facts (or why
/// the model could not be had), shared by the points that use it.
type SharedModel = Result<(Prepared, Option<f64>, GraphFacts), String>;

/// Top-1 accuracy of a model on a labelled CSV with the CPU executor; `None` where the model does
/// not take the data's rows (no runtime input, another sample size, values it cannot run).
fn accuracy(m: &Prepared, data: &str) -> Option<f64> {
    use etch_sim::reference::calibrate::{read_samples, sample_shape};
    let plan = etch_sim::reference::cpu::Plan::new(&m.model, &m.info).ok()?;
    let input = plan.inputs().next()?.clone();
    let shape = sample_shape(&input).ok()?;
    let samples = read_samples(data, shape.iter().product(), usize::MAX).ok()?;
    let correct = etch_sim::reference::accuracy::top1(
        &shape,
        &samples,
        |x| {
            let out = plan.run(vec![(input.name.clone(), x)])?;
            Ok(out
                .into_iter()
                .next()
                .map(|o| o.1)
                .unwrap_or(etch_sim::reference::Value::F32(
                    etch_sim::reference::Array::new(vec![0], vec![]),
                )))
        },
        || {},
    )
    .ok()?;
    Some(correct as f64 / samples.len().max(1) as f64)
}

/// The base description, and the target it must fit (when the spec names one).
fn base(spec: &Spec) -> Result<(Accelerator, Option<etch_targets::Target>), SweepError> {
    let b = |e: String| SweepError::Base(e);
    match (&spec.hw.base, &spec.hw.target) {
        (Some(path), t) => {
            let acc = Accelerator::from_file(path).map_err(|e| b(e.to_string()))?;
            let target = match t {
                Some(t) => Some(etch_targets::get(t).map_err(|e| b(e.to_string()))?),
                None => None,
            };
            Ok((acc, target))
        }
        (None, Some(t)) => {
            let (target, acc) = Accelerator::for_target(t).map_err(b)?;
            Ok((acc, Some(target)))
        }
        (None, None) => Err(b("[hw] names neither `base` nor `target`".into())),
    }
}

/// The figures of one point on its description, as `etch sim --json` has them.
fn evaluate(
    model: &SharedModel,
    acc: &Result<Accelerator, String>,
    target: Option<&etch_targets::Target>,
) -> Result<Vec<rusqlite::types::Value>, (String, String)> {
    use rusqlite::types::Value as S;
    let name = acc.as_ref().map(|a| a.name.clone()).unwrap_or_default();
    let fail = |e: String| (name.clone(), e);
    let acc = acc.as_ref().map_err(|e| fail(e.clone()))?;
    let (mut luts, mut dsps, mut memories) = (S::Null, S::Null, S::Null);
    let node = match target.map(|t| &t.kind) {
        Some(etch_targets::Kind::Asic(a)) => a.node_nm,
        _ => acc.node_nm.unwrap_or(45.0),
    };
    if let Some(t) = target {
        fit::check(acc, t).map_err(|e| fail(e.to_string()))?;
        if let etch_targets::Kind::Fpga(f) = &t.kind {
            let r = area::fpga_resources(acc, f);
            luts = S::Integer(r.luts as i64);
            dsps = S::Integer(r.dsps as i64);
            memories = S::Integer(r.memories.iter().map(|m| m.1 as i64).sum());
        }
    }
    let (m, top1, facts) = model.as_ref().map_err(|e| fail(e.clone()))?;
    // as `etch sim` simulates it (`simulate_model` without `--rtl`), the graph's facts read once
    let opts = SimOptions::default();
    let (_, _, r) = etch_sim::cycle::program::simulate_with(
        &m.model,
        &m.info,
        facts,
        acc,
        1,
        opts.objective,
        opts.trace,
    )
    .map_err(|e| fail(e.to_string()))?;
    let doc = etch_sim::report::json(&r);
    let num = |k: &str| store::sql_value(&doc[k]);
    Ok(vec![
        S::Text(name.clone()),
        num("total_cycles"),
        num("latency_s"),
        num("energy_pj"),
        num("dram_bytes"),
        num("utilization"),
        S::Real(area::asic_area(acc, node).total_mm2),
        luts,
        dsps,
        memories,
        top1.map_or(S::Null, S::Real),
        S::Text("ok".into()),
        S::Null,
    ])
}

/// Runs the points of `shard` that `out` lacks, `jobs` at a time (0: one per core), committing
/// as they finish (an interrupted run loses at most the points in flight); `progress` is told
/// how many points are done, of how many.
pub fn run(
    spec: &Spec,
    out: &str,
    shard: Shard,
    jobs: usize,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Summary, SweepError> {
    let (base_acc, target) = base(spec)?;
    let fields: Vec<String> = spec.hw.vary.keys().cloned().collect();
    let mut db = Store::open(out, &fields)?;
    let dberr = |e: rusqlite::Error| SweepError::Db {
        path: out.to_string(),
        message: e.to_string(),
    };
    let mine: Vec<Point> = spec
        .points()
        .into_iter()
        .filter(|p| shard.takes(p))
        .collect();
    let mut todo = Vec::new();
    for p in mine.iter() {
        if !db.has(&p.key()).map_err(dberr)? {
            todo.push(p.clone());
        }
    }
    let mut summary = Summary {
        points: mine.len() as u64,
        skipped: (mine.len() - todo.len()) as u64,
        ..Summary::default()
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| SweepError::Threads(e.to_string()))?;
    // each (model, passes) the points to run use is read and compressed once, all in parallel
    // before the points
    let mut keys: Vec<(String, String)> = todo
        .iter()
        .map(|p| (p.model.clone(), p.passes.clone()))
        .collect();
    keys.sort();
    keys.dedup();
    let prepared: HashMap<(String, String), SharedModel> = pool.install(|| {
        keys.into_par_iter()
            .map(|(model, passes)| {
                let pipeline = Pipeline {
                    seed: etch_ir::weights::DEFAULT_SEED,
                    passes: (!passes.is_empty()).then_some(passes.as_str()),
                    ..Default::default()
                };
                let m = pipeline.load(&model).map_err(|e| e.to_string()).map(|m| {
                    let top1 = spec.data.as_deref().and_then(|d| accuracy(&m, d));
                    let facts = GraphFacts::of(&m.model, &m.info);
                    (m, top1, facts)
                });
                ((model, passes), m)
            })
            .collect()
    });
    let prepare = |p: &Point| &prepared[&(p.model.clone(), p.passes.clone())];
    let done = std::sync::atomic::AtomicU64::new(summary.skipped);
    progress(summary.skipped, summary.points);
    // chunks big enough to keep every core busy, small enough that an interrupt loses little
    let chunk = (pool.current_num_threads() * 8).max(8);
    for part in todo.chunks(chunk) {
        let rows: Vec<(Vec<rusqlite::types::Value>, bool)> = pool.install(|| {
            part.par_iter()
                .map(|p| {
                    let acc = spec::apply(&base_acc, &p.values);
                    let model = prepare(p);
                    let (figures, ok) = match evaluate(model, &acc, target.as_ref()) {
                        Ok(f) => (f, true),
                        Err((name, e)) => {
                            let mut f = vec![rusqlite::types::Value::Null; store::FIGURES.len()];
                            f[0] = rusqlite::types::Value::Text(name);
                            f[store::FIGURES.len() - 2] =
                                rusqlite::types::Value::Text("error".into());
                            f[store::FIGURES.len() - 1] = rusqlite::types::Value::Text(e);
                            (f, false)
                        }
                    };
                    let mut row = vec![
                        rusqlite::types::Value::Text(p.key()),
                        rusqlite::types::Value::Integer(p.index as i64),
                        rusqlite::types::Value::Text(p.model.clone()),
                        rusqlite::types::Value::Text(p.passes.clone()),
                    ];
                    row.extend(p.values.iter().map(|(_, v)| store::sql_value(v)));
                    row.extend(figures);
                    let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    progress(n, summary.points);
                    (row, ok)
                })
                .collect()
        });
        summary.ran += rows.len() as u64;
        summary.failed += rows.iter().filter(|r| !r.1).count() as u64;
        let rows: Vec<_> = rows.into_iter().map(|r| r.0).collect();
        db.insert(&rows).map_err(dberr)?;
    }
    Ok(summary)
}

/// A point's row as JSON (every column).
pub fn row_json(cols: &[String], row: &[rusqlite::types::Value]) -> Value {
    use rusqlite::types::Value as S;
    let obj = cols
        .iter()
        .zip(row)
        .map(|(c, v)| {
            let v = match v {
                S::Null => Value::Null,
                S::Integer(i) => Value::from(*i),
                S::Real(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
                S::Text(t) => Value::String(t.clone()),
                S::Blob(_) => Value::Null,
            };
            (c.clone(), v)
        })
        .collect();
    Value::Object(obj)
}
