//! Reports of a run: the per-layer table with totals, the JSON document of DESIGN.md's `sim
//! --json` contract, CSV, the Chrome trace-event timeline, and plots.

pub mod plot;
pub mod trace;

use serde_json::{json, Value};

use crate::cycle::SimResult;
use etch_ir::stats::thousands;

/// A quantity of energy in readable units.
pub fn energy_text(pj: f64) -> String {
    if pj >= 1e9 {
        format!("{:.3} mJ", pj / 1e9)
    } else if pj >= 1e6 {
        format!("{:.3} uJ", pj / 1e6)
    } else if pj >= 1e3 {
        format!("{:.3} nJ", pj / 1e3)
    } else {
        format!("{pj:.1} pJ")
    }
}

fn bytes_text(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.2} MiB", b as f64 / (1u64 << 20) as f64)
    } else if b >= 1 << 10 {
        format!("{:.1} KiB", b as f64 / 1024.0)
    } else {
        format!("{b} B")
    }
}

/// The JSON document: `total_cycles`, `latency_s`, `energy_pj`, `energy_breakdown`, `layers`
/// (`name`, `cycles`, `compute_cycles`, `stall_cycles`, `utilization`, `dram_bytes`,
/// `energy_pj`), plus context fields.
pub fn json(r: &SimResult) -> Value {
    let e = r.energy();
    let mut breakdown = serde_json::Map::new();
    for (k, v) in e.parts() {
        breakdown.insert(k.to_string(), json!(v));
    }
    json!({
        "accelerator": r.accelerator,
        "clock_mhz": r.clock_mhz,
        "total_cycles": r.total_cycles,
        "latency_s": r.latency_s(),
        "fps": if r.total_cycles > 0 { 1.0 / r.latency_s() } else { 0.0 },
        "energy_pj": e.total(),
        "energy_breakdown": breakdown,
        "macs": r.macs(),
        "macs_performed": r.macs_performed(),
        "utilization": r.utilization(),
        "dram_bytes": r.layers.iter().map(|l| l.dram_bytes()).sum::<u64>(),
        "layers": r.layers.iter().map(|l| json!({
            "name": l.name,
            "op": l.op,
            "unit": l.unit,
            "cycles": l.cycles,
            "compute_cycles": l.compute_cycles,
            "stall_cycles": l.stall_cycles,
            "utilization": l.utilization,
            "dram_bytes": l.dram_bytes(),
            "energy_pj": l.energy.total(),
            "macs": l.macs,
            "macs_performed": l.macs_performed,
            "folds": l.folds,
            "stalls": l.stalls,
            "tiling": l.tiling,
            "energy_breakdown": l.energy.parts().iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "notes": l.notes,
        })).collect::<Vec<_>>(),
    })
}

/// CSV, one row per layer, then a total row.
pub fn csv(r: &SimResult) -> String {
    let mut out = String::from("layer,op,unit,cycles,compute_cycles,stall_cycles,utilization,macs,dram_bytes,energy_pj,mac_pj,register_file_pj,pe_to_pe_pj,sram_pj,dram_pj,vector_pj,stall_dram,stall_buffer,stall_dependency\n");
    let quote = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let stall =
        |l: &crate::cycle::LayerResult, cause: &str| l.stalls.get(cause).copied().unwrap_or(0);
    for l in &r.layers {
        let e = &l.energy;
        out.push_str(&format!(
            "{},{},{},{},{},{},{:.6},{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{},{},{}\n",
            quote(&l.name),
            quote(&l.op),
            l.unit,
            l.cycles,
            l.compute_cycles,
            l.stall_cycles,
            l.utilization,
            l.macs,
            l.dram_bytes(),
            e.total(),
            e.mac,
            e.register_file,
            e.pe_to_pe,
            e.sram,
            e.dram,
            e.vector,
            stall(l, "dram"),
            stall(l, "buffer"),
            stall(l, "dependency"),
        ));
    }
    let e = r.energy();
    let compute: u64 = r.layers.iter().map(|l| l.compute_cycles).sum();
    let util = r.utilization();
    let total_stall = |cause: &str| r.layers.iter().map(|l| stall(l, cause)).sum::<u64>();
    out.push_str(&format!(
        "total,,,{},{},{},{:.6},{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{},{},{}\n",
        r.total_cycles,
        compute,
        r.total_cycles - compute.min(r.total_cycles),
        util,
        r.macs(),
        r.layers.iter().map(|l| l.dram_bytes()).sum::<u64>(),
        e.total(),
        e.mac,
        e.register_file,
        e.pe_to_pe,
        e.sram,
        e.dram,
        e.vector,
        total_stall("dram"),
        total_stall("buffer"),
        total_stall("dependency"),
    ));
    out
}

/// The table people read: one row per layer that costs something, totals, latency, frames per
/// second, energy per inference and its breakdown.
pub fn table(r: &SimResult) -> String {
    let head = [
        "layer", "op", "unit", "cycles", "stall", "util", "DRAM", "energy",
    ]
    .map(String::from);
    let rows: Vec<[String; 8]> = r
        .layers
        .iter()
        .filter(|l| l.unit != "free" && l.unit != "fused")
        .map(|l| {
            [
                // names come from the model: no control character reaches the terminal
                etch_ir::safe_text::terminal_name(&l.name),
                etch_ir::safe_text::terminal_name(&l.op),
                l.unit.to_string(),
                thousands(l.cycles),
                thousands(l.stall_cycles),
                if l.macs > 0 {
                    format!("{:.1}%", l.utilization * 100.0)
                } else {
                    String::new()
                },
                bytes_text(l.dram_bytes()),
                energy_text(l.energy.total()),
            ]
        })
        .collect();
    let e = r.energy();
    let compute: u64 = r.layers.iter().map(|l| l.compute_cycles).sum();
    let util = r.utilization();
    let total = [
        "total".to_string(),
        String::new(),
        String::new(),
        thousands(r.total_cycles),
        thousands(r.total_cycles - compute.min(r.total_cycles)),
        format!("{:.1}%", util * 100.0),
        bytes_text(r.layers.iter().map(|l| l.dram_bytes()).sum()),
        energy_text(e.total()),
    ];
    let mut width = [0usize; 8];
    for row in rows.iter().chain([&head, &total]) {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: &[String; 8]| {
        let mut s = String::new();
        for (k, (c, w)) in row.iter().zip(width).enumerate() {
            let pad = w - c.chars().count();
            if k < 3 {
                s.push_str(c);
                s.push_str(&" ".repeat(pad));
            } else {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            }
            s.push_str("  ");
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let rule = format!("{}\n", "-".repeat(width.iter().sum::<usize>() + 14));
    let mut out = line(&head);
    out.push_str(&rule);
    for row in &rows {
        out.push_str(&line(row));
    }
    out.push_str(&rule);
    out.push_str(&line(&total));
    let hidden = r
        .layers
        .iter()
        .filter(|l| l.unit == "free" || l.unit == "fused")
        .count();
    if hidden > 0 {
        out.push_str(&format!(
            "({hidden} layers with no step of their own, layout ops and fused activations or (de)quantization, are in --json and --csv)\n"
        ));
    }
    let lat = r.latency_s();
    out.push_str(&format!(
        "\n{} on {} at {} MHz: {} cycles = {:.3} ms per inference, {:.1} inferences/s; {} MACs\n",
        "latency",
        etch_ir::safe_text::terminal_name(&r.accelerator),
        r.clock_mhz,
        thousands(r.total_cycles),
        lat * 1e3,
        if lat > 0.0 { 1.0 / lat } else { 0.0 },
        thousands(r.macs())
    ));
    let tot = e.total().max(1e-12);
    let parts: Vec<String> = e
        .parts()
        .iter()
        .map(|(k, v)| {
            format!(
                "{} {} ({:.1}%)",
                k.replace('_', " "),
                energy_text(*v),
                v / tot * 100.0
            )
        })
        .collect();
    out.push_str(&format!(
        "energy per inference: {} = {}\n",
        energy_text(e.total()),
        parts.join(", ")
    ));
    out
}
