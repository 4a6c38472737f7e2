//! Runs an emitted design's testbench under Icarus Verilog or Verilator and reads its verdict.

use std::path::Path;
use std::process::Command;

/// A simulator etch can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Simulator {
    Verilator,
    Icarus,
}

impl Simulator {
    pub fn name(self) -> &'static str {
        match self {
            Simulator::Verilator => "verilator",
            Simulator::Icarus => "iverilog",
        }
    }
    pub fn parse(s: &str) -> Option<Simulator> {
        match s {
            "verilator" => Some(Simulator::Verilator),
            "iverilog" | "icarus" => Some(Simulator::Icarus),
            _ => None,
        }
    }
}

/// The first output that differs from the golden codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub sample: usize,
    pub index: usize,
    /// The RTL's byte (None for X) and the golden byte.
    pub got: Option<u8>,
    pub expected: u8,
}

/// What the testbench said.
#[derive(Debug, Clone, PartialEq)]
pub struct SimRun {
    pub passed: bool,
    /// Cycles of one inference (equal for every sample, or the testbench fails).
    pub cycles: Option<u64>,
    pub mismatch: Option<Mismatch>,
    /// A testbench error (missing image, timeout, unequal cycle counts) or a tool failure.
    pub error: Option<String>,
    pub log: String,
}

/// Why a simulator could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot run `{tool}`: {err} (install it: apt-get install {pkg})")]
    Missing {
        tool: String,
        pkg: &'static str,
        err: std::io::Error,
    },
    #[error("`{tool}` failed to build the design (exit {code:?}):\n{log}")]
    Build {
        tool: String,
        code: Option<i32>,
        log: String,
    },
}

fn tool(
    cmd: &mut Command,
    name: &str,
    pkg: &'static str,
) -> Result<std::process::Output, RunError> {
    cmd.output().map_err(|err| RunError::Missing {
        tool: name.into(),
        pkg,
        err,
    })
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Builds and runs the testbench in `dir` (the simulator's working folder, where the memory
/// images are).
pub fn simulate(dir: &Path, sim: Simulator) -> Result<SimRun, RunError> {
    // the built simulation is run by its absolute path (a relative one would be resolved against
    // either working folder, depending on the platform)
    let abs = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let dir = abs.as_path();
    let files = [super::verilog::DESIGN, super::verilog::TESTBENCH];
    let out = match sim {
        Simulator::Icarus => {
            let b = tool(
                Command::new("iverilog")
                    .current_dir(dir)
                    .args(["-g2005", "-Wall", "-o", "etch_tb.vvp", "-s", "etch_tb"])
                    .args(files),
                "iverilog",
                "iverilog",
            )?;
            if !b.status.success() {
                return Err(RunError::Build {
                    tool: "iverilog".into(),
                    code: b.status.code(),
                    log: text(&b),
                });
            }
            tool(
                Command::new("vvp")
                    .current_dir(dir)
                    .args(["-n", "etch_tb.vvp"]),
                "vvp",
                "iverilog",
            )?
        }
        Simulator::Verilator => {
            // the testbench is behavioural (delays, blocking assignments in initial blocks); the
            // design itself is linted with -Wall separately (`lint`)
            let b = tool(
                Command::new("verilator")
                    .current_dir(dir)
                    .args([
                        "--binary",
                        "-j",
                        "2",
                        "-Wno-fatal",
                        "-Wno-lint",
                        "-Wno-style",
                        "--x-assign",
                        "unique",
                        "--x-initial",
                        "unique",
                        "-MAKEFLAGS",
                        "OPT_FAST=-O1",
                        "--Mdir",
                        "obj_dir",
                        "--top-module",
                        "etch_tb",
                    ])
                    .args(files),
                "verilator",
                "verilator",
            )?;
            if !b.status.success() {
                return Err(RunError::Build {
                    tool: "verilator".into(),
                    code: b.status.code(),
                    log: text(&b),
                });
            }
            tool(
                Command::new(dir.join("obj_dir").join("Vetch_tb")).current_dir(dir),
                "Vetch_tb",
                "verilator",
            )?
        }
    };
    let log = text(&out);
    let mut run = SimRun {
        passed: false,
        cycles: None,
        mismatch: None,
        error: None,
        log: log.clone(),
    };
    let kv = |line: &str, key: &str| -> Option<String> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{key}=")).map(str::to_string))
    };
    for line in log.lines() {
        if line.starts_with("ETCH CYCLES") {
            run.cycles = kv(line, "cycles").and_then(|v| v.parse().ok());
        } else if line.starts_with("ETCH MISMATCH") && run.mismatch.is_none() {
            run.mismatch = Some(Mismatch {
                sample: kv(line, "sample").and_then(|v| v.parse().ok()).unwrap_or(0),
                index: kv(line, "index").and_then(|v| v.parse().ok()).unwrap_or(0),
                got: kv(line, "got").and_then(|v| v.parse().ok()),
                expected: kv(line, "expected")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            });
        } else if line.starts_with("ETCH ERROR") && run.error.is_none() {
            run.error = Some(line.trim_start_matches("ETCH ERROR ").to_string());
        } else if line.starts_with("ETCH PASS") {
            run.passed = true;
        }
    }
    if !out.status.success() {
        run.passed = false;
        if run.error.is_none() && run.mismatch.is_none() {
            run.error = Some(format!(
                "the simulation exited with {:?} without a verdict",
                out.status.code()
            ));
        }
    } else if !run.passed && run.error.is_none() && run.mismatch.is_none() {
        run.error = Some("the testbench ended without a verdict".into());
    }
    Ok(run)
}

/// `verilator --lint-only -Wall` on the design file; returns the warnings (empty when clean).
pub fn lint(dir: &Path) -> Result<String, RunError> {
    let o = tool(
        Command::new("verilator").current_dir(dir).args([
            "--lint-only",
            "-Wall",
            "--top-module",
            "etch_accel",
            super::verilog::DESIGN,
        ]),
        "verilator",
        "verilator",
    )?;
    Ok(if o.status.success() {
        String::new()
    } else {
        text(&o)
    })
}
