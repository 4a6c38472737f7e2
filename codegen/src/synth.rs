//! Yosys synthesis of the emitted Verilog for an FPGA family, and the resources its `stat`
//! reports: LUTs, flip-flops, DSP blocks and block RAMs, named as the target's RON names them so
//! they sit beside `etch_hw::area`'s estimate.
//!
//! | part | flow |
//! |---|---|
//! | Lattice iCE40 (`iCE40…`) | `synth_ice40 -dsp` (multipliers into SB_MAC16) |
//! | Xilinx 7-series, Zynq-7000 (`XC7…`) | `synth_xilinx -family xc7 -flatten -noiopad` |
//! | Xilinx UltraScale+, Zynq MPSoC (`XCZU…`, `XCVU…P`, …) | `synth_xilinx -family xcup -flatten -noiopad` |
//!
//! `-noiopad`: the accelerator is a core inside a larger design (behind the Zynq PS), so no I/O
//! buffers are counted; the same out-of-context view the area model takes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::tool::{run, tail};
use crate::CodegenError;

/// A Yosys synthesis flow for one FPGA family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Flow {
    Ice40,
    /// `synth_xilinx -family <family>`: `xc7` or `xcup`.
    Xilinx {
        family: &'static str,
    },
}

impl Flow {
    /// The flow for a part number (`etch_targets::Fpga::part`).
    pub fn for_part(part: &str) -> Result<Flow, CodegenError> {
        let p = part.to_ascii_uppercase();
        if p.starts_with("ICE40") {
            Ok(Flow::Ice40)
        } else if p.starts_with("XC7") {
            Ok(Flow::Xilinx { family: "xc7" })
        } else if p.starts_with("XCZU") || p.starts_with("XCKU") || p.starts_with("XCVU") {
            // Zynq UltraScale+ MPSoC and the Kintex/Virtex UltraScale(+) parts: yosys 0.23's
            // `xcup` maps to the UltraScale+ primitives (DSP48E2, RAMB36E2, URAM288)
            Ok(Flow::Xilinx { family: "xcup" })
        } else {
            Err(CodegenError::Unsupported(format!(
                "etch synth knows the Yosys flows for iCE40 and Xilinx 7-series/UltraScale+ parts, not `{part}`"
            )))
        }
    }

    /// The synthesis command, e.g. `synth_ice40 -dsp`.
    pub fn command(&self, top: Option<&str>) -> String {
        // without a top, `hierarchy -auto-top` has picked it before this runs
        let top = top.map_or_else(String::new, |t| format!(" -top {t}"));
        match self {
            Flow::Ice40 => format!("synth_ice40 -dsp{top}"),
            Flow::Xilinx { family } => {
                format!("synth_xilinx -family {family} -flatten -noiopad{top}")
            }
        }
    }

    fn stat(&self) -> &'static str {
        match self {
            Flow::Ice40 => "stat",
            Flow::Xilinx { .. } => "stat -tech xilinx",
        }
    }
}

/// Resources Yosys reports for a synthesized design.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SynthReport {
    /// The synthesis command that ran.
    pub flow: String,
    /// Logic LUTs (SB_LUT4; LUT1…LUT6).
    pub luts: u64,
    /// LUTs used as distributed RAM or shift registers (Xilinx RAM32M/RAM64M/…, SRL16E/SRLC32E).
    pub lut_ram: u64,
    /// Flip-flops (SB_DFF*; FD*).
    pub ffs: u64,
    /// Hard multiplier blocks (SB_MAC16; DSP48E1/E2).
    pub dsps: u64,
    /// Block memories in the target's units (`EBR`, `SPRAM`, `BRAM36` — a RAMB18 counts as half
    /// — and `URAM288`), in the order first seen.
    pub memories: Vec<(String, f64)>,
    /// Every cell type and its count, as `stat` printed them.
    pub cells: BTreeMap<String, u64>,
}

/// What a cell type counts as.
enum Class {
    Lut,
    LutRam,
    Ff,
    Dsp,
    /// A block memory of the target's kind, and how many of that kind one cell is.
    Memory(&'static str, f64),
    Other,
}

fn classify(cell: &str) -> Class {
    match cell {
        "SB_LUT4" | "LUT1" | "LUT2" | "LUT3" | "LUT4" | "LUT5" | "LUT6" | "LUT6_2" => Class::Lut,
        "SB_MAC16" | "DSP48E1" | "DSP48E2" => Class::Dsp,
        "SB_RAM40_4K" => Class::Memory("EBR", 1.0),
        "SB_SPRAM256KA" => Class::Memory("SPRAM", 1.0),
        "RAMB36E1" | "RAMB36E2" => Class::Memory("BRAM36", 1.0),
        "RAMB18E1" | "RAMB18E2" => Class::Memory("BRAM36", 0.5),
        "URAM288" => Class::Memory("URAM288", 1.0),
        c if c.starts_with("SB_DFF") => Class::Ff,
        c if c.starts_with("FD") && c.len() <= 6 => Class::Ff,
        c if c.starts_with("SRL") || (c.starts_with("RAM") && c.ends_with(['M', 'D', 'S'])) => {
            Class::LutRam
        }
        _ => Class::Other,
    }
}

/// Reads `stat`'s cell counts: the `design hierarchy` totals when the design kept its hierarchy,
/// else the one module's.
pub fn parse_stat(text: &str, flow: &str) -> Result<SynthReport, CodegenError> {
    // the section to read: from its `=== … ===` header to the next
    let sections: Vec<(&str, &str)> = text
        .split("=== ")
        .skip(1)
        .filter_map(|s| s.split_once(" ===").map(|(name, body)| (name.trim(), body)))
        .collect();
    let body = sections
        .iter()
        .find(|(n, _)| *n == "design hierarchy")
        .or(sections.last())
        .map(|(_, b)| *b)
        .ok_or_else(|| CodegenError::ToolFailed {
            tool: "yosys".into(),
            stage: "reading `stat`".into(),
            output: format!("no `=== module ===` section in:\n{}", tail(text, 20)),
        })?;
    let mut cells = BTreeMap::new();
    let mut in_cells = false;
    for line in body.lines() {
        let t = line.trim();
        if t.starts_with("Number of cells") {
            in_cells = true;
            continue;
        }
        if !in_cells {
            continue;
        }
        let mut words = t.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some(cell), Some(n), None) => match n.parse::<u64>() {
                Ok(n) => {
                    *cells.entry(cell.to_string()).or_insert(0) += n;
                }
                Err(_) => break,
            },
            _ if t.is_empty() => {
                if !cells.is_empty() {
                    break;
                }
            }
            _ => break,
        }
    }
    if !in_cells {
        return Err(CodegenError::ToolFailed {
            tool: "yosys".into(),
            stage: "reading `stat`".into(),
            output: format!("no `Number of cells` in:\n{}", tail(text, 20)),
        });
    }
    let mut r = SynthReport {
        flow: flow.into(),
        luts: 0,
        lut_ram: 0,
        ffs: 0,
        dsps: 0,
        memories: Vec::new(),
        cells: BTreeMap::new(),
    };
    for (cell, &n) in &cells {
        match classify(cell) {
            Class::Lut => r.luts += n,
            Class::LutRam => r.lut_ram += n,
            Class::Ff => r.ffs += n,
            Class::Dsp => r.dsps += n,
            Class::Memory(kind, per) => match r.memories.iter_mut().find(|(k, _)| k == kind) {
                Some((_, v)) => *v += n as f64 * per,
                None => r.memories.push((kind.to_string(), n as f64 * per)),
            },
            Class::Other => {}
        }
    }
    r.cells = cells;
    Ok(r)
}

/// Whether `name` is a plain Verilog identifier, the only kind of top-module name etch puts into a
/// Yosys script.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        && name.len() <= 256
}

/// A path as a word of a Yosys script (double-quoted when `quoted`; `tee -o` takes no quotes, so
/// there a space is refused too): refused when it holds a character the script syntax could read
/// as anything but part of the name (quotes, `;`, a backslash, control characters), so no path
/// can add a command.
fn script_path(p: &Path, quoted: bool) -> Result<String, CodegenError> {
    let text = p.display().to_string();
    let plain =
        |c: char| c.is_ascii_alphanumeric() || "/._-+@,=~".contains(c) || (quoted && c == ' ');
    if text.chars().all(plain) {
        Ok(if quoted { format!("\"{text}\"") } else { text })
    } else {
        Err(CodegenError::UnsafePath {
            path: etch_ir::safe_text::terminal_name(&text),
            why: "etch passes paths to Yosys only when they hold letters, digits, spaces and `/._-+@,=~`; rename or move the folder".into(),
        })
    }
}

/// Synthesizes `files` with `flow` (top module `top`, or the one Yosys finds); `workdir` keeps
/// `yosys.log` and `stat.txt`. Yosys runs in the first file's folder, so memory images a design
/// loads with `$readmemh("name.hex")` are found there, as the simulators find them.
pub fn synth(
    files: &[PathBuf],
    top: Option<&str>,
    flow: Flow,
    workdir: &Path,
) -> Result<SynthReport, CodegenError> {
    let io = |p: &Path, e: std::io::Error| CodegenError::Io {
        path: p.display().to_string(),
        message: e.to_string(),
    };
    if let Some(t) = top.filter(|t| !is_identifier(t)) {
        return Err(CodegenError::UnsafePath {
            path: etch_ir::safe_text::terminal_name(t),
            why: "the top module must be a plain Verilog identifier (letters, digits, `_`, `$`)"
                .into(),
        });
    }
    std::fs::create_dir_all(workdir).map_err(|e| io(workdir, e))?;
    let workdir = std::fs::canonicalize(workdir).map_err(|e| io(workdir, e))?;
    let mut script = String::new();
    let mut cwd = None;
    for f in files {
        let abs = std::fs::canonicalize(f).map_err(|e| io(f, e))?;
        cwd.get_or_insert_with(|| abs.parent().map(Path::to_path_buf).unwrap_or_default());
        // -defer: modules are elaborated with their parameters by `hierarchy`, so a memory's
        // `$readmemh(FILE)` opens the file the instance names, not the parameter's default
        script.push_str(&format!(
            "read_verilog -defer {}; ",
            script_path(&abs, true)?
        ));
    }
    let Some(cwd) = cwd else {
        return Err(CodegenError::Unsupported(
            "no Verilog files to synthesize".into(),
        ));
    };
    let command = flow.command(top);
    if top.is_none() {
        script.push_str("hierarchy -auto-top; ");
    }
    let (log, stat_path) = (workdir.join("yosys.log"), workdir.join("stat.txt"));
    script.push_str(&format!(
        "{command}; tee -q -o {} {}",
        script_path(&stat_path, false)?,
        flow.stat()
    ));
    let args = vec![
        "-q".to_string(),
        "-l".to_string(),
        log.display().to_string(),
        "-p".to_string(),
        script,
    ];
    let ran = run(
        "yosys",
        &args,
        &cwd,
        "install it with `apt-get install yosys` (etch is tested with Yosys 0.23)",
    )?;
    if ran.code != Some(0) {
        return Err(CodegenError::ToolFailed {
            tool: "yosys".into(),
            stage: format!("{command} (log: {})", log.display()),
            output: tail(&ran.output(), 30),
        });
    }
    let stat = std::fs::read_to_string(&stat_path).map_err(|e| io(&stat_path, e))?;
    parse_stat(&stat, &command)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ICE40: &str = "\n3. Printing statistics.\n\n=== mac_top ===\n\n   Number of wires:                 30\n   Number of cells:                 51\n     SB_DFF                         34\n     SB_DFFE                         2\n     SB_LUT4                        15\n     SB_MAC16                        1\n     SB_RAM40_4K                     1\n\n";
    const XC7: &str = "=== sub ===\n\n   Number of cells:  3\n     LUT2  3\n\n=== top ===\n\n   Number of cells:  9\n     sub  1\n\n=== design hierarchy ===\n\n   top                               1\n     sub                             1\n\n   Number of wires:                 26\n   Number of cells:                 78\n     DSP48E1                         1\n     FDRE                           40\n     LUT2                            3\n     LUT6                           10\n     RAM64M                          2\n     RAMB18E1                        3\n     RAMB36E1                        1\n\n   Estimated number of LCs:          13\n";

    #[test]
    fn parses_ice40_stat() {
        let r = parse_stat(ICE40, "synth_ice40 -dsp").unwrap();
        assert_eq!((r.luts, r.ffs, r.dsps), (15, 36, 1));
        assert_eq!(r.memories, vec![("EBR".to_string(), 1.0)]);
    }

    #[test]
    fn parses_the_hierarchy_totals_of_xc7() {
        let r = parse_stat(XC7, "synth_xilinx").unwrap();
        assert_eq!((r.luts, r.lut_ram, r.ffs, r.dsps), (13, 2, 40, 1));
        assert_eq!(r.memories, vec![("BRAM36".to_string(), 2.5)]);
    }

    #[test]
    fn nothing_but_names_reaches_the_script() {
        assert!(is_identifier("etch_accel"));
        for bad in ["etch_accel; exec -- touch x;", "", "1top", "a b", "a\"b"] {
            assert!(!is_identifier(bad), "{bad}");
        }
        assert!(script_path(Path::new("/tmp/my design/etch_accel.v"), true).is_ok());
        assert!(script_path(Path::new("/tmp/my design/stat.txt"), false).is_err());
        for bad in [
            "/tmp/a\"; exec -- touch x; \"",
            "/tmp/a;b",
            "/tmp/a\nb",
            "/tmp/a\\b",
        ] {
            assert!(script_path(Path::new(bad), true).is_err(), "{bad}");
        }
        let err = synth(
            &[PathBuf::from("x.v")],
            Some("etch_accel; exec -- touch pwned;"),
            Flow::Ice40,
            Path::new("target/never"),
        )
        .unwrap_err();
        assert!(matches!(err, CodegenError::UnsafePath { .. }), "{err}");
    }

    #[test]
    fn flows_by_part() {
        assert_eq!(Flow::for_part("iCE40UP5K-SG48").unwrap(), Flow::Ice40);
        assert_eq!(
            Flow::for_part("XC7Z020-1CLG400C").unwrap(),
            Flow::Xilinx { family: "xc7" }
        );
        assert_eq!(
            Flow::for_part("XCZU3EG-1SBVA484").unwrap(),
            Flow::Xilinx { family: "xcup" }
        );
        assert!(Flow::for_part("LFE5U-85F").is_err());
    }
}
