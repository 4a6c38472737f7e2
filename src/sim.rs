//! `etch sim`: a model on an accelerator (a description file or a target's default), through the
//! cycle-level simulator: the per-layer table or JSON, and on request CSV, plots and a Chrome
//! trace. With `--topology` and `--scalesim-config` it reads SCALE-Sim 3.0.0's own inputs and
//! reproduces its per-layer Total Cycles instead.

use std::path::Path;

use etch_hw::{fit, Accelerator};
use etch_sim::cycle::{simulate_model, SimOptions};
use etch_sim::report;

use etch_sim::pipeline::Pipeline;

use crate::load::{self, CliError};

/// Everything `etch sim` takes.
pub struct SimArgs<'a> {
    pub model: Option<&'a str>,
    pub hw: Option<&'a str>,
    pub target: Option<&'a str>,
    pub batch: u64,
    pub json: bool,
    pub csv: Option<&'a str>,
    pub plot: Option<&'a str>,
    pub trace: Option<&'a str>,
    pub topology: Option<&'a str>,
    pub scalesim_config: Option<&'a str>,
    pub passes: Option<&'a str>,
    pub verify_each: bool,
    pub seed: u64,
    /// Time the emitted Verilog accelerator exactly (`SimOptions::rtl`).
    pub rtl: bool,
    /// What the program's tiling search minimizes.
    pub objective: etch_program::tiling::Objective,
}

fn write(path: &str, text: &str) -> Result<(), CliError> {
    std::fs::write(path, text).map_err(|e| format!("error: cannot write `{path}`: {e}"))
}

/// Writes to stdout; a reader that has gone away (`| head`) ends the output quietly.
pub fn emit(text: &str) -> Result<(), CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("error: cannot write to stdout: {e}"))
        }
        _ => Ok(()),
    }
}

/// The accelerator: a description file, a target's default, or a file checked against a target.
pub fn accelerator(hw: Option<&str>, target: Option<&str>) -> Result<Accelerator, CliError> {
    match (hw, target) {
        (None, None) => Err("error: give the accelerator: --hw FILE.ron (examples in examples/hw/) or --target NAME (`etch targets` lists them)".into()),
        (Some(path), t) => {
            let acc = Accelerator::from_file(path).map_err(|e| format!("error: {e}"))?;
            if let Some(t) = t {
                let target = etch_targets::get(t).map_err(|e| format!("error: {e}"))?;
                fit::check(&acc, &target).map_err(|e| format!("error: {e}"))?;
            }
            Ok(acc)
        }
        (None, Some(t)) => {
            let (target, acc) = Accelerator::for_target(t).map_err(|e| format!("error: {e}"))?;
            fit::check(&acc, &target).map_err(|e| format!("error: {e}"))?;
            Ok(acc)
        }
    }
}

/// Runs `etch sim`.
pub fn run(a: SimArgs) -> Result<(), CliError> {
    if a.topology.is_some() || a.scalesim_config.is_some() {
        return scalesim(&a);
    }
    let Some(path) = a.model else {
        return Err("error: give a MODEL (ONNX text), or --topology FILE.csv with --scalesim-config FILE.cfg".into());
    };
    let acc = accelerator(a.hw, a.target)?;
    // what the accelerator takes of the target (the check above has passed)
    let usage = match a.target {
        Some(t) => {
            let target = etch_targets::get(t).map_err(|e| format!("error: {e}"))?;
            Some((
                t,
                fit::check(&acc, &target)
                    .map_err(|e| format!("error: {e}"))?
                    .usage,
            ))
        }
        None => None,
    };
    let loaded = load::prepare(
        path,
        Pipeline {
            seed: a.seed,
            passes: a.passes,
            verify_each: a.verify_each,
            ..Default::default()
        },
    )?;
    let opts = SimOptions {
        trace: a.trace.is_some(),
        rtl: a.rtl,
        objective: a.objective,
    };
    let r = simulate_model(&loaded.model, &loaded.info, &acc, a.batch, &opts)
        .map_err(|e| format!("error: {path}: {e}"))?;
    if a.json {
        let mut doc = report::json(&r);
        if let (Some((t, usage)), Some(obj)) = (&usage, doc.as_object_mut()) {
            obj.insert(
                "target".into(),
                serde_json::json!({"name": t, "usage": usage}),
            );
        }
        emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?
        ))?;
    } else {
        let mut text = report::table(&r);
        if let Some((t, usage)) = &usage {
            let parts: Vec<String> = usage
                .iter()
                .map(|u| {
                    format!(
                        "{}/{} {}",
                        crate::targets::num(u.used),
                        crate::targets::num(u.available),
                        u.resource.split(" (").next().unwrap_or("")
                    )
                })
                .collect();
            text.push_str(&format!("fits {t}: {}\n", parts.join(", ")));
        }
        if a.batch > 1 {
            text.push_str(&format!(
                "batch {}: figures are per batch of {} inputs\n",
                a.batch, a.batch
            ));
        }
        emit(&text)?;
    }
    if let Some(csv) = a.csv {
        write(csv, &report::csv(&r))?;
    }
    if let Some(trace) = a.trace {
        write(
            trace,
            &serde_json::to_string(&report::trace::chrome_trace(&r)).map_err(|e| e.to_string())?,
        )?;
    }
    if let Some(dir) = a.plot {
        let roof = report::plot::Roof {
            peak_gops: 2.0 * acc.pes() as f64 * acc.clock_mhz / 1e3,
            bandwidth_gbs: acc.dram.bytes_per_cycle * acc.clock_mhz / 1e3,
        };
        let files = report::plot::write_all(&r, &roof, Path::new(dir))
            .map_err(|e| format!("error: {e}"))?;
        if !a.json {
            emit(&format!("plots: {}\n", files.join(", ")))?;
        }
    }
    Ok(())
}

/// SCALE-Sim mode.
fn scalesim(a: &SimArgs) -> Result<(), CliError> {
    let other = [
        ("a MODEL", a.model.is_some()),
        ("--hw", a.hw.is_some()),
        ("--target", a.target.is_some()),
        ("--passes", a.passes.is_some()),
        ("--plot", a.plot.is_some()),
        ("--trace", a.trace.is_some()),
        ("--batch", a.batch != 1),
        (
            "--objective",
            a.objective != etch_program::tiling::Objective::Latency,
        ),
        ("--rtl", a.rtl),
    ];
    if let Some((flag, _)) = other.iter().find(|o| o.1) {
        return Err(format!("error: SCALE-Sim mode (--topology, --scalesim-config) takes its array from the config file and has no use for {flag}; it takes --json and --csv"));
    }
    let (Some(topo), Some(cfg)) = (a.topology, a.scalesim_config) else {
        return Err(
            "error: SCALE-Sim mode needs both --topology FILE.csv and --scalesim-config FILE.cfg"
                .into(),
        );
    };
    let read = crate::load::read_text;
    let layers = etch_sim::scalesim::parse_topology(topo, &read(topo)?)
        .map_err(|e| format!("error: {e}"))?;
    let config =
        etch_sim::scalesim::parse_config(cfg, &read(cfg)?).map_err(|e| format!("error: {e}"))?;
    etch_sim::scalesim::check_work(&layers, &config).map_err(|e| format!("error: {topo}: {e}"))?;
    let res = etch_sim::scalesim::simulate(&layers, &config);
    let total: u64 = res.iter().map(|l| l.total_cycles).sum();
    if a.json {
        let doc = serde_json::json!({
            "mode": "scalesim-3.0.0",
            "array": [config.rows, config.cols],
            "dataflow": config.dataflow.short(),
            "total_cycles": total,
            "layers": res.iter().map(|l| serde_json::json!({
                "name": l.name, "cycles": l.total_cycles, "compute_cycles": l.compute_cycles,
                "stall_cycles": l.stall_cycles, "utilization": l.utilization / 100.0, "folds": l.folds, "macs": l.macs,
            })).collect::<Vec<_>>(),
        });
        emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?
        ))?;
    } else {
        let mut text = format!("SCALE-Sim 3.0.0 conventions: {}x{} array, {} dataflow, no padding, batch 1, CALC bandwidth mode\n", config.rows, config.cols, config.dataflow.short());
        let w = res.iter().map(|l| l.name.len()).max().unwrap_or(5).max(5);
        text.push_str(&format!(
            "{:<w$}  {:>14}  {:>12}  {:>8}  {:>7}\n",
            "layer", "total cycles", "stall cycles", "folds", "util %"
        ));
        for l in &res {
            text.push_str(&format!(
                "{:<w$}  {:>14}  {:>12}  {:>8}  {:>7.2}\n",
                l.name, l.total_cycles, l.stall_cycles, l.folds, l.utilization
            ));
        }
        text.push_str(&format!("{:<w$}  {:>14}\n", "total", total));
        emit(&text)?;
    }
    if let Some(csv) = a.csv {
        let mut out = String::from(
            "layer,total_cycles,stall_cycles,compute_cycles,folds,macs,utilization_pct\n",
        );
        for l in &res {
            out.push_str(&format!(
                "{},{},{},{},{},{},{:.4}\n",
                l.name,
                l.total_cycles,
                l.stall_cycles,
                l.compute_cycles,
                l.folds,
                l.macs,
                l.utilization
            ));
        }
        write(csv, &out)?;
    }
    Ok(())
}
