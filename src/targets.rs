//! `etch targets`: the built-in platforms, their resources and the default accelerator of each.

use etch_hw::{fit, Accelerator};
use etch_targets::Kind;

use crate::load::CliError;

/// Lists the targets (a table, or one JSON document).
pub fn run(json: bool) -> Result<(), CliError> {
    let mut docs = Vec::new();
    let mut out = String::new();
    for name in etch_targets::names() {
        let (t, acc) = Accelerator::for_target(name).map_err(|e| format!("error: {e}"))?;
        let usage = fit::check(&acc, &t)
            .map_err(|e| format!("error: {e}"))?
            .usage;
        let resources = match &t.kind {
            Kind::Fpga(f) => {
                let mems: Vec<String> = f
                    .memories
                    .iter()
                    .map(|m| format!("{} {} x {} KiB", m.count, m.name, m.kib))
                    .collect();
                format!(
                    "{}: {} LUTs, {} FFs, {} {}, {}",
                    f.part,
                    num(f.luts as f64),
                    num(f.ffs as f64),
                    f.dsp.count,
                    f.dsp.name,
                    mems.join(" + ")
                )
            }
            Kind::Asic(a) => format!("{} nm, {} mm² budget", a.node_nm, a.area_mm2),
        };
        out.push_str(&format!(
            "{name}\n  {}\n  {resources}\n  clock up to {} MHz; off-chip {} ({:.2} GB/s)\n  default: {} ({}x{} {:?}, {} MHz)\n  uses: {}\n\n",
            t.description,
            t.clock.max_mhz,
            t.dram.kind,
            t.dram.bytes_per_s / 1e9,
            acc.name,
            acc.rows(),
            acc.cols(),
            acc.dataflow(),
            acc.clock_mhz,
            usage.iter().map(|u| format!("{}/{} {}", num(u.used), num(u.available), u.resource.split(" (").next().unwrap_or(""))).collect::<Vec<_>>().join(", ")
        ));
        docs.push(serde_json::json!({"name": name, "target": t, "default_accelerator": acc, "usage": usage}));
    }
    if json {
        crate::sim::emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&docs).map_err(|e| e.to_string())?
        ))?;
    } else {
        crate::sim::emit(&out)?;
    }
    Ok(())
}

/// A figure for the listing: whole numbers with thousands separators, others to two decimals.
pub fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        crate::inspect::thousands(v as u64)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}
