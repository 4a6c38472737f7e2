//! `etch verify DIR`: builds and runs the testbenches of a design `etch compile` wrote and says
//! whether it computes the CPU executor's codes bit for bit. The HLS part compiles the C
//! simulation with g++ (`-Wall -Wextra -Werror`) and runs it.

use std::path::Path;

use etch_codegen::design::{Manifest, HLS_DIR};
use etch_codegen::gxx;
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

/// Runs `etch verify`.
pub fn run(dir: &str, json: bool) -> Result<(), CliError> {
    let path = Path::new(dir);
    let manifest = Manifest::read(path).map_err(|e| format!("error: {e}"))?;
    if !manifest.hls {
        return Err(format!("error: {dir} holds no HLS design, and this build of etch verifies HLS designs only; compile with --emit hls"));
    }
    let r = gxx::csim(&path.join(HLS_DIR)).map_err(|e| format!("error: {e}"))?;
    let report = VerifyReport {
        bit_exact: r.bit_exact,
        rtl_cycles: None,
        sim_cycles: None,
        simulator: CSIM.into(),
        first_mismatch: r.first_mismatch.as_ref().map(|m| m.message.clone()),
        samples: r.samples,
        outputs: r.outputs,
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("the report serializes")
        );
    } else if r.bit_exact {
        println!(
            "{CSIM}: bit-exact, {} samples, {} output codes equal to the CPU executor's",
            r.samples, r.outputs
        );
        println!("  built with: {}", r.command);
    }
    match r.first_mismatch {
        None => Ok(()),
        Some(m) => Err(format!(
            "error: {dir}: the HLS C simulation differs from the CPU executor: {}",
            m.message
        )),
    }
}
