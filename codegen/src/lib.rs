//! etch's code generators: they turn a compressed model and an accelerator description into a
//! design a user can build (Verilog, HLS C++), with testbenches that check it bit for bit against
//! the CPU executor's golden outputs and, for the RTL, cycle for cycle against `etch_sim::cycle`.
//! The runners drive the external tools: g++ for the HLS C simulation, Yosys for synthesis.

pub mod datapath;
pub mod design;
pub mod gxx;
pub mod hls;
pub mod program;
pub mod run;
pub mod synth;
mod tool;
pub mod verdict;
pub mod verilog;

/// What can go wrong while emitting a design or running a tool on it.
#[derive(Debug, thiserror::Error)]
pub enum CodegenError {
    #[error("{0}")]
    Unsupported(String),
    #[error("cannot write or read `{path}`: {message}")]
    Io { path: String, message: String },
    #[error("`{tool}` is not installed or not on PATH ({hint})")]
    ToolMissing { tool: String, hint: String },
    #[error(transparent)]
    File(#[from] etch_ir::limits::FileError),
    #[error("`{path}`: {why}")]
    UnsafePath { path: String, why: String },
    #[error("{dir}: these files changed since `etch compile` wrote them: {}; compile the design again, or pass --allow-modified to use them as they are", files.join(", "))]
    Modified { dir: String, files: Vec<String> },
    #[error("{tool} failed ({stage}):\n{output}")]
    ToolFailed {
        tool: String,
        stage: String,
        output: String,
    },
}
