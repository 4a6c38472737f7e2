//! The HLS C simulation: compiles the emitted C++ and its testbench with g++ under the warning
//! flags a Vitis flow would demand of clean code, runs it, and reads its verdict.

use std::path::Path;

use serde::Serialize;

use crate::hls::{GOLDEN_FILE, OUTPUT_FILE, TESTBENCH, TOP_SOURCE};
use crate::tool::{run, tail};
use crate::verdict::{compare, read_vector_samples, Verdict};
use crate::CodegenError;

/// The compiler and its flags: C++17, every warning an error, except the two a Vitis HLS source
/// always triggers under g++ (`#pragma HLS` is unknown to it; loop labels are never jumped to).
pub const GXX: &str = "g++";
pub const FLAGS: &[&str] = &[
    "-std=c++17",
    "-O2",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-unknown-pragmas",
    "-Wno-unused-label",
];
/// The simulation binary, written beside the sources.
pub const BINARY: &str = "etch_csim";

/// The verdict of one C simulation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Csim {
    /// etch's comparison of the codes the testbench wrote with the golden codes.
    pub verdict: Verdict,
    /// The g++ command line.
    pub command: String,
}

/// Compiles and runs the C simulation of the HLS design in `dir`, then compares the output codes
/// it wrote with the golden ones (`output` and `shape` name a differing element).
pub fn csim(dir: &Path, output: &str, shape: &[usize]) -> Result<Csim, CodegenError> {
    for f in [TOP_SOURCE, TESTBENCH] {
        if !dir.join(f).is_file() {
            return Err(CodegenError::Io {
                path: dir.join(f).display().to_string(),
                message: "missing (write the design with `etch compile --emit hls`)".into(),
            });
        }
    }
    let mut args: Vec<String> = FLAGS.iter().map(|s| s.to_string()).collect();
    args.extend(
        ["-I.", "-o", BINARY, TOP_SOURCE, TESTBENCH]
            .iter()
            .map(|s| s.to_string()),
    );
    let command = format!("{GXX} {}", args.join(" "));
    let built = run(GXX, &args, dir, "install it with `apt-get install g++`")?;
    if built.code != Some(0) {
        return Err(CodegenError::ToolFailed {
            tool: GXX.into(),
            stage: format!("compiling the C simulation in {}: {command}", dir.display()),
            output: tail(&built.output(), 40),
        });
    }
    let exe = format!("./{BINARY}");
    // a stale output file must not stand in for this run's
    let _ = std::fs::remove_file(dir.join(OUTPUT_FILE));
    let ran = run(&exe, &[], dir, "the C simulation binary was not written")?;
    let failed = |why: String| CodegenError::ToolFailed {
        tool: "the C simulation".into(),
        stage: format!("{}/{BINARY} {why}", dir.display()),
        output: tail(&ran.output(), 40),
    };
    if !matches!(ran.code, Some(0) | Some(1)) {
        return Err(failed(format!(
            "exited with {}",
            ran.code
                .map_or("a signal".to_string(), |c| format!("code {c}"))
        )));
    }
    let golden = read_vector_samples(&dir.join(GOLDEN_FILE), true)?;
    // no output file: the testbench wrote nothing, which the comparison reports
    let got: Vec<Vec<Option<i64>>> = if dir.join(OUTPUT_FILE).exists() {
        read_vector_samples(&dir.join(OUTPUT_FILE), false)?
            .into_iter()
            .map(|s| s.into_iter().map(Some).collect())
            .collect()
    } else {
        Vec::new()
    };
    let verdict = compare(&golden, &got, output, shape);
    if verdict.bit_exact && ran.code != Some(0) {
        return Err(failed(
            "reported a failure although the codes it wrote equal the golden ones".into(),
        ));
    }
    Ok(Csim { verdict, command })
}
