//! A compiled design folder: what `etch compile` wrote there, recorded in `etch-design.json` so
//! that `etch verify` and `etch synth` know what to build without being told again.
//!
//! ```text
//! DIR/etch-design.json   this manifest
//! DIR/accelerator.ron    the accelerator description the design was compiled for
//! DIR/hls/               --emit hls: the HLS C++ and its C-simulation testbench (`hls` module)
//! DIR/verilog/           --emit verilog: the RTL, its memory images and testbench
//! DIR/core/              --emit core: the program's control core, its instruction images,
//!                        testbench and the simulator's timing of every instruction
//! ```
//!
//! The manifest records the SHA-256 of every file `etch compile` wrote; `etch verify` and `etch
//! synth` refuse a folder whose files changed since (`Manifest::check_files`), and every path the
//! manifest names must stay inside the folder (`Manifest::inside`).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::CodegenError;

/// The manifest's file name.
pub const MANIFEST: &str = "etch-design.json";
/// The accelerator description, copied verbatim.
pub const ACCELERATOR: &str = "accelerator.ron";
/// Sub-folders of the two emitters.
pub const HLS_DIR: &str = "hls";
pub const VERILOG_DIR: &str = "verilog";
pub const CORE_DIR: &str = "core";

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

/// The control core of the accelerator program (`verilog::core`): what a simulator runs, and
/// what the simulator predicted for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorePart {
    /// Sources, top module and testbench, relative to `DIR/core/`.
    #[serde(flatten)]
    pub rtl: VerilogPart,
    /// Instructions in the program.
    pub instructions: usize,
    /// Plain `etch sim`'s `total_cycles` for the same model, passes and description.
    pub sim_cycles: u64,
    /// Output codes the core's RTL datapath computes for one input (`verilog::datapath`), held
    /// against the CPU executor's; 0 when the core was emitted without its datapath.
    #[serde(default)]
    pub values: usize,
    /// The samples those codes are of (each run by the testbench in turn).
    #[serde(default)]
    pub value_samples: usize,
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
    /// The program's control core, when emitted.
    #[serde(default)]
    pub core: Option<CorePart>,
    /// `etch sim --rtl`'s cycles per inference for the same model, passes and description: what
    /// `etch verify` checks the RTL's count against (Verilog designs).
    #[serde(default)]
    pub sim_cycles: Option<u64>,
    /// The output codes' shape and whether they are int8 (else uint8), to name a mismatch.
    #[serde(default)]
    pub output_shape: Vec<usize>,
    #[serde(default)]
    pub output_signed: bool,
    /// SHA-256 (hex) of every file `etch compile` wrote, by its path relative to DIR.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

/// The SHA-256 of a file, in hex.
pub fn sha256_file(path: &Path) -> Result<String, CodegenError> {
    let bytes = etch_ir::limits::read_file(path, etch_ir::limits::FileKind::Data)?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

impl Manifest {
    /// Reads `DIR/etch-design.json`.
    pub fn read(dir: &Path) -> Result<Manifest, CodegenError> {
        let path = dir.join(MANIFEST);
        if !path.exists() {
            return Err(CodegenError::Io {
                path: path.display().to_string(),
                message: "missing (is this a folder `etch compile -o` wrote?)".into(),
            });
        }
        let text = etch_ir::limits::read_text(&path, etch_ir::limits::FileKind::Data)?;
        serde_json::from_str(&text).map_err(|e| CodegenError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// `DIR/rel` for a path the manifest names: relative, without `..`, and (once it exists)
    /// not leaving DIR through a symbolic link.
    pub fn inside(dir: &Path, rel: &str) -> Result<PathBuf, CodegenError> {
        let refuse = |why: &str| CodegenError::UnsafePath {
            path: etch_ir::safe_text::terminal_name(rel),
            why: why.into(),
        };
        let p = Path::new(rel);
        if rel.is_empty() || p.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(refuse(
                "a design folder's manifest may name only relative paths inside the folder, without `..`",
            ));
        }
        let joined = dir.join(p);
        if let (Ok(root), Ok(real)) = (std::fs::canonicalize(dir), std::fs::canonicalize(&joined)) {
            if !real.starts_with(&root) {
                return Err(refuse(
                    "it leaves the design folder through a symbolic link",
                ));
            }
        }
        Ok(joined)
    }

    /// Records the SHA-256 of each file (paths relative to DIR) that `etch compile` wrote.
    pub fn record_files<'a>(
        &mut self,
        dir: &Path,
        files: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), CodegenError> {
        for f in files {
            let hash = sha256_file(&dir.join(f))?;
            self.files.insert(f.to_string(), hash);
        }
        Ok(())
    }

    /// Checks every recorded file against its SHA-256, and that every Verilog source is recorded:
    /// the files missing, changed or unrecorded since
    /// `etch compile` wrote them, as an error naming them (`CodegenError::Modified`).
    pub fn check_files(&self, dir: &Path) -> Result<(), CodegenError> {
        if self.files.is_empty() {
            return Err(CodegenError::Modified {
                dir: dir.display().to_string(),
                files: vec![
                    "(the manifest records no file hashes: compile the design again)".into(),
                ],
            });
        }
        let mut changed = Vec::new();
        // a source the manifest builds from must be one whose hash it records
        let parts = [
            self.verilog.as_ref().map(|v| (VERILOG_DIR, v)),
            self.core.as_ref().map(|c| (CORE_DIR, &c.rtl)),
        ];
        for (sub, v) in parts.into_iter().flatten() {
            for src in v.sources.iter().chain(&v.testbench) {
                let rel = format!("{sub}/{src}");
                if !self.files.contains_key(&rel) {
                    changed.push(format!(
                        "{} (not recorded)",
                        etch_ir::safe_text::terminal_name(&rel)
                    ));
                }
            }
        }
        for (rel, want) in &self.files {
            let path = Manifest::inside(dir, rel)?;
            let ok = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file())
                && sha256_file(&path).is_ok_and(|h| &h == want);
            if !ok {
                changed.push(etch_ir::safe_text::terminal_name(rel));
            }
        }
        if changed.is_empty() {
            Ok(())
        } else {
            Err(CodegenError::Modified {
                dir: dir.display().to_string(),
                files: changed,
            })
        }
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
