//! `etch verify DIR`: builds and runs the testbenches of a design `etch compile` wrote and says
//! whether it computes the CPU executor's codes bit for bit. The Verilog part runs under Verilator
//! or Icarus and must also take exactly the cycles `etch sim --rtl` predicts; the HLS part
//! compiles the C simulation with g++ (`-Wall -Wextra -Werror`) and runs it.

use std::path::Path;

use etch_codegen::design::{Manifest, CORE_DIR, HLS_DIR, VERILOG_DIR};
use etch_codegen::gxx;
use etch_codegen::run::{simulate, simulate_core, OutputSpec, Simulator};
use etch_codegen::verilog::core;
use serde::Serialize;

use crate::load::CliError;

/// `verify --json` (DESIGN.md): the HLS C simulation has no cycle counts.
#[derive(Serialize)]
struct VerifyReport {
    bit_exact: bool,
    rtl_cycles: Option<u64>,
    sim_cycles: Option<u64>,
    simulator: String,
    first_mismatch: Option<String>,
    samples: usize,
    outputs: usize,
}

/// The simulator name of the HLS C simulation.
const CSIM: &str = "g++ (HLS C simulation)";

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// The Verilog part: the testbench under Verilator or Icarus, bit for bit against the golden
/// codes and cycle for cycle against `etch sim --rtl`.
fn verify_rtl(dir: &str, m: &Manifest, sim: Simulator, json: bool) -> Result<(), CliError> {
    let vdir = Path::new(dir).join(VERILOG_DIR);
    let sim_cycles = m.sim_cycles.ok_or_else(|| {
        format!("error: {dir}/etch-design.json has no sim_cycles; compile the design again")
    })?;
    let run = simulate(
        &vdir,
        sim,
        &OutputSpec {
            name: &m.output,
            shape: &m.output_shape,
            signed: m.output_signed,
        },
    )
    .map_err(|e| format!("error: {e}"))?;
    let v = &run.verdict;
    let first_mismatch = v.first_mismatch.as_ref().map(|mm| mm.message.clone());
    let bit_exact = v.bit_exact && run.error.is_none();
    let cycles_equal = run.cycles == Some(sim_cycles);
    let outputs = v.outputs;
    if json {
        let report = VerifyReport {
            bit_exact,
            rtl_cycles: run.cycles,
            sim_cycles: Some(sim_cycles),
            simulator: sim.name().into(),
            first_mismatch: first_mismatch.clone(),
            samples: v.samples,
            outputs,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("the report serializes")
        );
    } else {
        println!(
            "{}: {} on {} samples ({} output codes); RTL {} cycles per inference, etch sim --rtl {}{}",
            sim.name(),
            if bit_exact { "bit-exact" } else { "NOT bit-exact" },
            v.samples,
            outputs,
            run.cycles.map_or("?".to_string(), |c| c.to_string()),
            sim_cycles,
            if cycles_equal { " (equal)" } else { " (DIFFERENT)" }
        );
    }
    if let Some(fm) = &first_mismatch {
        return Err(format!(
            "error: {dir}: the RTL's output differs from the CPU executor's: first mismatch at {fm}"
        ));
    }
    if let Some(e) = &run.error {
        return Err(format!(
            "error: {dir}: the testbench failed: {e}\n{}",
            tail(&run.log)
        ));
    }
    if !cycles_equal {
        return Err(format!(
            "error: {dir}: the RTL took {} cycles per inference but etch sim --rtl predicts {sim_cycles}",
            run.cycles.map_or("?".to_string(), |c| c.to_string())
        ));
    }
    Ok(())
}

/// `verify --json` for the control core: no values, every instruction's cycles.
#[derive(Serialize)]
struct CoreReport {
    part: &'static str,
    cycle_exact: bool,
    rtl_cycles: Option<u64>,
    sim_cycles: u64,
    instructions: usize,
    /// Whether the RTL datapath's output codes equal the CPU executor's, on how many samples and
    /// codes (absent and 0 when the core was emitted without its datapath), and the first that
    /// differs (as `verify --json` of the layer-chain design).
    bit_exact: Option<bool>,
    samples: usize,
    outputs: usize,
    first_mismatch: Option<String>,
    simulator: String,
    /// The first difference of any kind: a cycle, a testbench error or an output code.
    first_difference: Option<String>,
}

/// The first output code where the RTL datapath's (`values.txt`) and the CPU executor's
/// (`values_expected.txt`) differ, or a missing file; `None` when they are equal.
fn compare_values(cdir: &Path, count: usize, samples: usize) -> Option<String> {
    use etch_codegen::verilog::datapath::{EXPECTED_VALUES, VALUES};
    let read = |name: &str| -> Result<Vec<String>, String> {
        let text = etch_ir::limits::read_text(cdir.join(name), etch_ir::limits::FileKind::Data)
            .map_err(|e| e.to_string())?;
        Ok(text.lines().map(|l| l.trim().to_string()).collect())
    };
    let (got, want) = match (read(VALUES), read(EXPECTED_VALUES)) {
        (Ok(g), Ok(w)) => (g, w),
        (Err(e), _) => return Some(format!("the RTL wrote no output codes: {e}")),
        (_, Err(e)) => return Some(format!("{e}; compile the design again")),
    };
    if want.len() != count {
        return Some(format!(
            "{EXPECTED_VALUES} holds {} codes, the manifest says {count}; compile the design again",
            want.len()
        ));
    }
    if let Some(i) = (0..count).find(|&i| got.get(i) != want.get(i)) {
        let per = count / samples.max(1);
        return Some(format!(
            "sample {}, output {}: the RTL computes {} but the CPU executor {}",
            i / per.max(1),
            i % per.max(1),
            got.get(i).map_or("nothing", String::as_str),
            want[i]
        ));
    }
    None
}

/// The control core: its testbench under Verilator or Icarus, every instruction's start, end and
/// done cycle against the simulator's (`sim_timing.json`, written by `etch compile`).
fn verify_core(dir: &str, m: &Manifest, sim: Simulator, json: bool) -> Result<(), CliError> {
    let part = m.core.as_ref().expect("checked by the caller");
    let cdir = Path::new(dir).join(CORE_DIR);
    let timing_path = Manifest::inside(Path::new(dir), &format!("{CORE_DIR}/{}", core::SIM_TIMING))
        .map_err(|e| format!("error: {e}"))?;
    let text = etch_ir::limits::read_text(&timing_path, etch_ir::limits::FileKind::Data)
        .map_err(|e| format!("error: {e}"))?;
    let expected: Vec<core::Expected> = serde_json::from_str(&text).map_err(|e| {
        format!(
            "error: {}: {e}; compile the design again",
            timing_path.display()
        )
    })?;
    let run = simulate_core(&cdir, sim).map_err(|e| format!("error: {e}"))?;
    let difference = match &run.error {
        Some(e) => Some(format!("the testbench failed: {e}")),
        None => core::compare(&expected, &run.events).err(),
    }
    .or_else(|| {
        (run.cycles != Some(part.sim_cycles)).then(|| {
            format!(
                "the core took {} cycles but etch sim predicts {}",
                run.cycles.map_or("?".to_string(), |c| c.to_string()),
                part.sim_cycles
            )
        })
    });
    let value_difference = (part.values > 0 && run.error.is_none())
        .then(|| compare_values(&cdir, part.values, part.value_samples))
        .flatten();
    let bit_exact = (part.values > 0).then_some(run.error.is_none() && value_difference.is_none());
    let difference = difference.or(value_difference.clone());
    if json {
        let report = CoreReport {
            part: "core",
            cycle_exact: difference.is_none(),
            rtl_cycles: run.cycles,
            sim_cycles: part.sim_cycles,
            instructions: part.instructions,
            bit_exact,
            samples: part.value_samples,
            outputs: part.values,
            first_mismatch: value_difference,
            simulator: sim.name().into(),
            first_difference: difference.clone(),
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("the report serializes")
        );
    } else if difference.is_none() {
        println!(
            "{}: control core cycle-exact: each of {} instructions started, ended and was done in the cycle etch sim predicts; {} cycles",
            sim.name(),
            part.instructions,
            part.sim_cycles
        );
        if part.values > 0 {
            println!(
                "{}: RTL datapath bit-exact: its {} output codes of {} samples equal the CPU executor's, each sample in the same cycles",
                sim.name(),
                part.values,
                part.value_samples
            );
        }
    }
    match difference {
        None => Ok(()),
        Some(d) => Err(format!(
            "error: {dir}: the accelerator core differs from etch sim and the CPU executor: {d}\n{}",
            tail(&run.log)
        )),
    }
}

/// Runs `etch verify`: the Verilog under `simulator` (verilator or iverilog; the default when the
/// design has Verilog), or the HLS C simulation (`g++`; the default for an HLS-only design).
/// A design folder's files are checked against the hashes `etch compile` recorded unless
/// `allow_modified`.
pub fn run(
    dir: &str,
    simulator: Option<&str>,
    json: bool,
    allow_modified: bool,
) -> Result<(), CliError> {
    let path = Path::new(dir);
    let manifest = Manifest::read(path).map_err(|e| format!("error: {e}"))?;
    if !allow_modified {
        manifest
            .check_files(path)
            .map_err(|e| format!("error: {e}"))?;
    }
    let which = simulator.unwrap_or(if manifest.verilog.is_some() || manifest.core.is_some() {
        "verilator"
    } else {
        "g++"
    });
    if let Some(sim) = Simulator::parse(which) {
        return match (&manifest.verilog, &manifest.core) {
            (Some(_), None) => verify_rtl(dir, &manifest, sim, json),
            (None, Some(_)) => verify_core(dir, &manifest, sim, json),
            (Some(_), Some(_)) if json => Err(format!(
                "error: {dir} holds both a Verilog design and a control core; --json reports one: compile them into separate folders"
            )),
            (Some(_), Some(_)) => {
                verify_rtl(dir, &manifest, sim, false)?;
                verify_core(dir, &manifest, sim, false)
            }
            (None, None) => Err(format!(
                "error: {dir} holds no Verilog design for {which}; compile with --emit verilog or --emit core"
            )),
        };
    }
    if which != "g++" && which != "gxx" {
        return Err(format!(
            "error: --simulator `{which}`: choose verilator or iverilog (the Verilog), or g++ (the HLS C simulation)"
        ));
    }
    if !manifest.hls {
        return Err(format!(
            "error: {dir} holds no HLS design for g++; compile with --emit hls"
        ));
    }
    let r = gxx::csim(
        &path.join(HLS_DIR),
        &manifest.output,
        &manifest.output_shape,
    )
    .map_err(|e| format!("error: {e}"))?;
    let v = &r.verdict;
    let report = VerifyReport {
        bit_exact: v.bit_exact,
        rtl_cycles: None,
        sim_cycles: None,
        simulator: CSIM.into(),
        first_mismatch: v.first_mismatch.as_ref().map(|m| m.message.clone()),
        samples: v.samples,
        outputs: v.outputs,
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("the report serializes")
        );
    } else if v.bit_exact {
        println!(
            "{CSIM}: bit-exact, {} samples, {} output codes equal to the CPU executor's",
            v.samples, v.outputs
        );
        println!("  built with: {}", r.command);
    }
    match &v.first_mismatch {
        None => Ok(()),
        Some(m) => Err(format!(
            "error: {dir}: the HLS C simulation differs from the CPU executor: {}",
            m.message
        )),
    }
}
