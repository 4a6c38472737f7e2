//! `etch synth DIR --target NAME`: runs Yosys on a compiled design's Verilog for the target's FPGA
//! family and prints the resources it reports beside the area model's estimate for the design's
//! accelerator description (`etch_hw::area`) and what the part has.

use std::path::{Path, PathBuf};
use std::time::Instant;

use etch_codegen::design::{Manifest, ACCELERATOR, VERILOG_DIR};
use etch_codegen::synth::{self, Flow};
use etch_hw::Accelerator;
use etch_targets::Kind;
use serde::Serialize;

use crate::inspect::thousands;
use crate::load::CliError;

/// One resource: Yosys's count, the area model's, the part's.
#[derive(Serialize)]
struct Row {
    resource: String,
    yosys: f64,
    estimate: Option<f64>,
    available: Option<f64>,
}

#[derive(Serialize)]
struct SynthJson<'a> {
    target: &'a str,
    part: &'a str,
    accelerator: &'a str,
    flow: &'a str,
    top: &'a str,
    seconds: f64,
    resources: Vec<Row>,
    /// LUTs used as distributed RAM / shift registers (Xilinx), not in `LUTs`.
    lut_ram: u64,
    cells: &'a std::collections::BTreeMap<String, u64>,
}

fn fmt(v: f64) -> String {
    if v.fract() == 0.0 {
        thousands(v as u64)
    } else {
        format!("{v:.1}")
    }
}

/// Runs `etch synth`.
/// A design folder's files are checked against the hashes `etch compile` recorded unless
/// `allow_modified` (`Manifest::check_files` also requires every source to be one of them).
pub fn run(dir: &str, target: &str, json: bool, allow_modified: bool) -> Result<(), CliError> {
    let path = Path::new(dir);
    let manifest = Manifest::read(path).map_err(|e| format!("error: {e}"))?;
    if !allow_modified {
        manifest
            .check_files(path)
            .map_err(|e| format!("error: {e}"))?;
    }
    let Some(v) = &manifest.verilog else {
        return Err(format!(
            "error: {dir} holds no Verilog to synthesize; compile it with --emit verilog"
        ));
    };
    let t = etch_targets::get(target).map_err(|e| format!("error: {e}"))?;
    let Kind::Fpga(fpga) = &t.kind else {
        return Err(format!("error: `{target}` is an ASIC node; etch synth runs Yosys for FPGA targets (ice40-up5k, pynq-z2, ultra96-v2, zcu104)"));
    };
    let flow = Flow::for_part(&fpga.part).map_err(|e| format!("error: {e}"))?;
    let acc_path = path.join(ACCELERATOR);
    let acc_text = crate::load::read_text(&acc_path.display().to_string())?;
    let acc = Accelerator::from_ron(&acc_path.display().to_string(), &acc_text)
        .map_err(|e| format!("error: {e}"))?;
    let est = etch_hw::area::fpga_resources(&acc, fpga);

    let vdir = path.join(VERILOG_DIR);
    let mut files: Vec<PathBuf> = Vec::new();
    for source in &v.sources {
        files.push(Manifest::inside(&vdir, source).map_err(|e| format!("error: {e}"))?);
    }
    let work = path.join(format!("synth-{target}"));
    let start = Instant::now();
    let r = synth::synth(&files, Some(&v.top), flow, &work).map_err(|e| format!("error: {e}"))?;
    let seconds = start.elapsed().as_secs_f64();

    let mut rows = vec![
        Row {
            resource: "LUTs".into(),
            yosys: r.luts as f64,
            estimate: Some(est.luts as f64),
            available: Some(fpga.luts as f64),
        },
        Row {
            resource: "FFs".into(),
            yosys: r.ffs as f64,
            estimate: Some(est.ffs as f64),
            available: Some(fpga.ffs as f64),
        },
        Row {
            resource: format!("DSPs ({})", fpga.dsp.name),
            yosys: r.dsps as f64,
            estimate: Some(est.dsps as f64),
            available: Some(fpga.dsp.count as f64),
        },
    ];
    for m in &fpga.memories {
        rows.push(Row {
            resource: format!("{} blocks", m.name),
            yosys: r
                .memories
                .iter()
                .find(|(k, _)| *k == m.name)
                .map_or(0.0, |(_, n)| *n),
            estimate: est
                .memories
                .iter()
                .find(|(k, _)| *k == m.name)
                .map(|(_, n)| *n as f64),
            available: Some(m.count as f64),
        });
    }
    // a block kind Yosys used that the target's RON does not list
    for (k, n) in &r.memories {
        if !fpga.memories.iter().any(|m| &m.name == k) {
            rows.push(Row {
                resource: format!("{k} blocks"),
                yosys: *n,
                estimate: None,
                available: None,
            });
        }
    }
    if json {
        let doc = SynthJson {
            target,
            part: &fpga.part,
            accelerator: &acc.name,
            flow: &r.flow,
            top: &v.top,
            seconds,
            resources: rows,
            lut_ram: r.lut_ram,
            cells: &r.cells,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("the report serializes")
        );
        return Ok(());
    }
    println!(
        "{dir} ({}) on {target} ({}): yosys `{}` in {seconds:.1} s",
        acc.name, fpga.part, r.flow
    );
    println!(
        "{:<22} {:>10} {:>12} {:>10} {:>8}",
        "resource", "yosys", "area model", "part has", "used"
    );
    for row in &rows {
        let used = row
            .available
            .filter(|&a| a > 0.0)
            .map_or("-".to_string(), |a| {
                format!("{:.1}%", 100.0 * row.yosys / a)
            });
        println!(
            "{:<22} {:>10} {:>12} {:>10} {:>8}",
            row.resource,
            fmt(row.yosys),
            row.estimate.map_or("-".into(), fmt),
            row.available.map_or("-".into(), fmt),
            used
        );
    }
    if r.lut_ram > 0 {
        println!(
            "(and {} LUTs as distributed RAM or shift registers)",
            r.lut_ram
        );
    }
    println!("yosys log and stat: {}", work.display());
    Ok(())
}
