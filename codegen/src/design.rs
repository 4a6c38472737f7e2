//! A compiled design folder: what `etch compile` wrote there, recorded in `etch-design.json` so
//! that `etch verify` and `etch synth` know what to build without being told again.
//!
//! ```text
//! DIR/etch-design.json   this manifest
//! DIR/accelerator.ron    the accelerator description the design was compiled for
//! DIR/hls/               --emit hls: the HLS C++ and its C-simulation testbench (`hls` module)
//! DIR/verilog/           --emit verilog: the RTL, its memory images and testbench
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::CodegenError;

/// The manifest's file name.
pub const MANIFEST: &str = "etch-design.json";
/// The accelerator description, copied verbatim.
pub const ACCELERATOR: &str = "accelerator.ron";
/// Sub-folders of the two emitters.
pub const HLS_DIR: &str = "hls";
pub const VERILOG_DIR: &str = "verilog";

/// The Verilog part of a design: what Yosys reads and what a simulator runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerilogPart {
    /// Synthesizable sources, relative to `DIR/verilog/`.
    pub sources: Vec<String>,
    /// The top module of the accelerator (not the testbench).
    pub top: String,
    /// Testbench sources, relative to `DIR/verilog/` (not synthesized).
    #[serde(default)]
    pub testbench: Vec<String>,
}

/// `etch-design.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The model file and the passes it was compiled with.
    pub model: String,
    pub passes: Option<String>,
    /// `--target` and/or `--hw` as given.
    pub target: Option<String>,
    pub hw: Option<String>,
    /// The accelerator description's name.
    pub accelerator: String,
    /// The integer program's input and output code tensors.
    pub input: String,
    pub output: String,
    /// Test samples in the testbenches.
    pub samples: usize,
    /// Whether `hls/` holds an HLS design.
    pub hls: bool,
    /// The Verilog part, when emitted.
    pub verilog: Option<VerilogPart>,
    /// `etch sim --rtl`'s cycles per inference for the same model, passes and description: what
    /// `etch verify` checks the RTL's count against (Verilog designs).
    #[serde(default)]
    pub sim_cycles: Option<u64>,
    /// The output codes' shape and whether they are int8 (else uint8), to name a mismatch.
    #[serde(default)]
    pub output_shape: Vec<usize>,
    #[serde(default)]
    pub output_signed: bool,
}

impl Manifest {
    /// Reads `DIR/etch-design.json`.
    pub fn read(dir: &Path) -> Result<Manifest, CodegenError> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| CodegenError::Io {
            path: path.display().to_string(),
            message: format!("{e} (is this a folder `etch compile -o` wrote?)"),
        })?;
        serde_json::from_str(&text).map_err(|e| CodegenError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// Writes `DIR/etch-design.json`.
    pub fn write(&self, dir: &Path) -> Result<(), CodegenError> {
        let path = dir.join(MANIFEST);
        let text = serde_json::to_string_pretty(self).expect("a manifest serializes");
        std::fs::write(&path, text + "\n").map_err(|e| CodegenError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }
}
