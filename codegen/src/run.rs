//! Runs an emitted design's testbench under Icarus Verilog or Verilator and judges what it wrote.

use std::path::Path;
use std::process::Command;

use etch_ir::infer::GraphInfo;
use etch_ir::tensor::ElemType;

use crate::program::IntProgram;
use crate::verdict::{compare, read_hex_samples, Verdict};
use crate::verilog::core;
use crate::verilog::tb::OUTPUTS;
use crate::CodegenError;

/// The golden output codes `etch compile` wrote beside the testbench.
const GOLDEN: &str = "golden.hex";

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

/// What a testbench run showed.
#[derive(Debug, Clone, PartialEq)]
pub struct SimRun {
    /// etch's comparison of the codes the testbench wrote (`rtl_outputs.hex`) with `golden.hex`.
    pub verdict: Verdict,
    /// Cycles of one inference: equal for every sample, or `error` says they differ.
    pub cycles: Option<u64>,
    /// A testbench error (missing image, timeout, unequal cycle counts) or a run that exited
    /// with a failure etch's comparison does not explain.
    pub error: Option<String>,
    pub log: String,
}

/// What `simulate` needs to know of the design's output to judge it.
#[derive(Debug, Clone)]
pub struct OutputSpec<'a> {
    /// The output tensor's name and shape on one sample (to name a differing element).
    pub name: &'a str,
    pub shape: &'a [usize],
    /// Whether its codes are int8 (else uint8).
    pub signed: bool,
}

impl<'a> OutputSpec<'a> {
    /// The output of an integer program.
    pub fn of(p: &'a IntProgram, info: &GraphInfo) -> OutputSpec<'a> {
        OutputSpec {
            name: &p.output,
            shape: &p.output_shape,
            signed: info.ty(&p.output).map(|t| t.elem) == Some(ElemType::I8),
        }
    }
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
    #[error("cannot read the testbench's results: {0}")]
    Result(CodegenError),
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
/// images are), then compares the output codes it wrote with `golden.hex`.
pub fn simulate(dir: &Path, sim: Simulator, out: &OutputSpec) -> Result<SimRun, RunError> {
    // the built simulation is run by its absolute path (a relative one would be resolved against
    // either working folder, depending on the platform)
    let abs = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let dir = abs.as_path();
    // a stale output file must not stand in for this run's
    let _ = std::fs::remove_file(dir.join(OUTPUTS));
    let ran = run_testbench(
        dir,
        sim,
        &[super::verilog::DESIGN, super::verilog::TESTBENCH],
        "etch_tb",
    )?;
    let log = text(&ran);
    let mut error = None;
    let mut cycles: Vec<u64> = Vec::new();
    let kv = |line: &str, key: &str| -> Option<u64> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
    };
    for line in log.lines() {
        if line.starts_with("ETCH CYCLES") {
            cycles.extend(kv(line, "cycles"));
        } else if line.starts_with("ETCH ERROR") && error.is_none() {
            error = Some(line.trim_start_matches("ETCH ERROR ").to_string());
        }
    }
    let per: usize = out.shape.iter().product();
    let golden: Vec<Vec<i64>> = read_hex_samples(&dir.join(GOLDEN), per, out.signed)
        .map_err(RunError::Result)?
        .into_iter()
        .map(|s| s.into_iter().map(|c| c.unwrap_or(0)).collect())
        .collect();
    let got = if dir.join(OUTPUTS).exists() {
        read_hex_samples(&dir.join(OUTPUTS), per, out.signed).map_err(RunError::Result)?
    } else {
        Vec::new()
    };
    let verdict = compare(&golden, &got, out.name, out.shape);
    if cycles.iter().any(|&c| c != cycles[0]) && error.is_none() {
        error = Some(format!(
            "the inferences took different cycle counts: {cycles:?}"
        ));
    }
    if !ran.status.success() && verdict.bit_exact && error.is_none() {
        error = Some(format!(
            "the simulation exited with {:?} although the codes it wrote equal the golden ones",
            ran.status.code()
        ));
    }
    Ok(SimRun {
        verdict,
        cycles: cycles.first().copied(),
        error,
        log,
    })
}

/// Builds the testbench `top` from `files` in `dir` under `sim` and runs it there.
pub fn run_testbench(
    dir: &Path,
    sim: Simulator,
    files: &[&str],
    top: &str,
) -> Result<std::process::Output, RunError> {
    let abs = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let dir = abs.as_path();
    Ok(match sim {
        Simulator::Icarus => {
            let b = tool(
                Command::new("iverilog")
                    .current_dir(dir)
                    .args(["-g2005", "-Wall", "-o", "etch_tb.vvp", "-s", top])
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
                    ])
                    .args(ccache_flags())
                    .args(["--Mdir", "obj_dir", "--top-module", top])
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
                Command::new(dir.join("obj_dir").join(format!("V{top}"))).current_dir(dir),
                &format!("V{top}"),
                "verilator",
            )?
        }
    })
}

/// Verilator's make flags putting `ccache` in front of the C++ compiler (`OBJCACHE`) when it is
/// installed: Verilator's own runtime, compiled again into every build, is about three quarters of
/// a small design's build, and ccache compiles it once per machine. Nothing when ccache is absent.
fn ccache_flags() -> Vec<&'static str> {
    let installed = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join("ccache").is_file()));
    if installed {
        vec!["-MAKEFLAGS", "OBJCACHE=ccache"]
    } else {
        Vec::new()
    }
}

/// `verilator --lint-only -Wall` on the design file; returns the warnings (empty when clean).
pub fn lint(dir: &Path) -> Result<String, RunError> {
    lint_file(dir, super::verilog::DESIGN, "etch_accel")
}

/// `verilator --lint-only -Wall` on one design file with its top module; returns the warnings
/// (empty when clean).
pub fn lint_file(dir: &Path, file: &str, top: &str) -> Result<String, RunError> {
    let o = tool(
        Command::new("verilator").current_dir(dir).args([
            "--lint-only",
            "-Wall",
            "--top-module",
            top,
            file,
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

/// What a run of the core's testbench showed.
#[derive(Debug, Clone, PartialEq)]
pub struct CoreRun {
    /// The cycle the last instruction was done, as the testbench printed it.
    pub cycles: Option<u64>,
    /// A testbench error (missing image, timeout) or a failed exit.
    pub error: Option<String>,
    /// Every instruction's start, end and done, from the trace.
    pub events: Vec<core::Event>,
    pub log: String,
}

/// Builds and runs the core's testbench in `dir` (where `core::emit` wrote it).
pub fn simulate_core(dir: &Path, sim: Simulator) -> Result<CoreRun, RunError> {
    let _ = std::fs::remove_file(dir.join(core::TRACE));
    let ran = run_testbench(dir, sim, &[core::CORE, core::CORE_TB], "etch_core_tb")?;
    let log = text(&ran);
    let mut cycles = None;
    let mut error = None;
    for line in log.lines() {
        if let Some(rest) = line.strip_prefix("ETCH CYCLES cycles=") {
            cycles = rest.trim().parse().ok();
        } else if let Some(rest) = line.strip_prefix("ETCH ERROR ") {
            error.get_or_insert_with(|| rest.to_string());
        }
    }
    if !ran.status.success() && error.is_none() {
        error = Some(format!(
            "the simulation exited with {:?}",
            ran.status.code()
        ));
    }
    let trace = std::fs::read_to_string(dir.join(core::TRACE)).unwrap_or_default();
    Ok(CoreRun {
        cycles,
        error,
        events: core::read_trace(&trace),
        log,
    })
}
