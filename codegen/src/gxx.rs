//! The HLS C simulation: compiles the emitted C++ and its testbench with g++ under the warning
//! flags a Vitis flow would demand of clean code, runs it, and reads its verdict.

use std::path::Path;

use serde::Serialize;

use crate::hls::{TESTBENCH, TOP_SOURCE};
use crate::tool::{run, tail};
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

/// The first output code the design got wrong.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mismatch {
    pub sample: usize,
    /// The element of the output (flat, C order); None when the design wrote the wrong number of codes.
    pub index: Option<usize>,
    pub got: i64,
    pub expected: i64,
    /// The testbench's line naming the output element, e.g.
    /// `MISMATCH: sample 0, output logits_quantized[0, 7] (element 7 of 10): got 12, expected 13`.
    pub message: String,
}

/// The verdict of one C simulation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Csim {
    pub bit_exact: bool,
    pub samples: usize,
    /// Output codes compared (all samples).
    pub outputs: usize,
    pub first_mismatch: Option<Mismatch>,
    /// The g++ command line.
    pub command: String,
}

fn field<T: std::str::FromStr>(line: &str, key: &str) -> Option<T> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}

/// Reads the testbench's verdict from what it printed (the `etch-csim:` line; the `MISMATCH:`
/// line before it names the element).
pub fn parse_verdict(stdout: &str) -> Option<(bool, usize, usize, Option<Mismatch>)> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("etch-csim: "))?;
    if line.starts_with("etch-csim: pass") {
        let samples: usize = field(line, "samples")?;
        let outputs: usize = field(line, "outputs")?;
        return Some((true, samples, outputs, None));
    }
    if line.starts_with("etch-csim: mismatch") {
        let index: i64 = field(line, "index")?;
        let m = Mismatch {
            sample: field(line, "sample")?,
            index: (index >= 0).then_some(index as usize),
            got: field(line, "got")?,
            expected: field(line, "expected")?,
            message: stdout
                .lines()
                .rev()
                .find(|l| l.starts_with("MISMATCH: "))
                .unwrap_or(line)
                .to_string(),
        };
        return Some((false, m.sample, 0, Some(m)));
    }
    None
}

/// Compiles and runs the C simulation of the HLS design in `dir`.
pub fn csim(dir: &Path) -> Result<Csim, CodegenError> {
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
    let ran = run(&exe, &[], dir, "the C simulation binary was not written")?;
    match (ran.code, parse_verdict(&ran.stdout)) {
        (Some(0), Some((true, samples, outputs, None))) => Ok(Csim {
            bit_exact: true,
            samples,
            outputs,
            first_mismatch: None,
            command,
        }),
        (Some(1), Some((false, samples, _, Some(m)))) => Ok(Csim {
            bit_exact: false,
            samples,
            outputs: 0,
            first_mismatch: Some(m),
            command,
        }),
        (code, _) => Err(CodegenError::ToolFailed {
            tool: "the C simulation".into(),
            stage: format!(
                "{}/{BINARY} exited with {}",
                dir.display(),
                code.map_or("a signal".to_string(), |c| format!("code {c}"))
            ),
            output: tail(&ran.output(), 40),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_verdicts() {
        assert_eq!(
            parse_verdict("PASS: ...\netch-csim: pass samples=3 outputs=30\n"),
            Some((true, 3, 30, None))
        );
        let (ok, s, _, m) = parse_verdict(
            "MISMATCH: sample 2, output y[0, 7] (element 7 of 10): got 1, expected -3\netch-csim: mismatch sample=2 index=7 got=1 expected=-3\n",
        )
        .unwrap();
        assert!(!ok);
        assert_eq!(s, 2);
        let m = m.unwrap();
        assert_eq!((m.index, m.got, m.expected), (Some(7), 1, -3));
        assert!(m.message.contains("y[0, 7]"));
        assert_eq!(parse_verdict("nothing"), None);
    }
}
