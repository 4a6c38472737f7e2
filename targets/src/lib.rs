//! etch's built-in platforms: FPGA parts on their boards and ASIC technology nodes, each a RON file
//! compiled into the binary, every figure in it with its source (datasheet, manual) in a comment.
//! A target also carries the RON text of a default accelerator description sized to it; `etch-hw`
//! reads that text (this crate knows nothing of accelerators, so dependencies point one way).

use serde::{Deserialize, Serialize};

/// A platform an accelerator is built for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The name `--target` takes.
    pub name: String,
    /// One line for `etch targets`.
    pub description: String,
    pub kind: Kind,
    pub clock: Clock,
    /// The off-chip memory the accelerator streams from.
    pub dram: OffChip,
}

/// What the platform is made of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Kind {
    Fpga(Fpga),
    Asic(Asic),
}

/// An FPGA part's programmable resources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fpga {
    /// Part number, e.g. "XC7Z020-1CLG400C".
    pub part: String,
    pub luts: u64,
    pub ffs: u64,
    pub dsp: Dsp,
    /// Block memories, smallest first (the fit check fills buffers from these).
    pub memories: Vec<Memory>,
}

/// The hard multiplier blocks of an FPGA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dsp {
    /// Primitive name, e.g. "DSP48E1".
    pub name: String,
    pub count: u64,
    /// Widths of the multiplier's two signed inputs.
    pub a_bits: u32,
    pub b_bits: u32,
    /// How many 8-bit MACs that share one operand one block computes per cycle (2 on DSP48E2 with
    /// the packing of Xilinx WP486, 1 elsewhere).
    pub int8_macs: u32,
}

/// One kind of block memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    /// Primitive name, e.g. "BRAM36", "URAM288", "EBR", "SPRAM".
    pub name: String,
    pub count: u64,
    /// Capacity of one block in KiB (data bits only).
    pub kib: f64,
    /// Widest data port of one block, bits.
    pub width_bits: u32,
}

/// An ASIC technology node with an area budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Asic {
    /// Feature size in nm; the energy model scales its tables to it.
    pub node_nm: f64,
    /// The die area the accelerator may take, mm².
    pub area_mm2: f64,
}

/// Clock limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clock {
    /// The fastest clock a design on this platform can be asked for.
    pub max_mhz: f64,
    /// The clock of the default accelerator.
    pub default_mhz: f64,
}

/// The off-chip memory: peak bandwidth and latency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffChip {
    /// What it is, e.g. "DDR3-1050, 16-bit".
    pub kind: String,
    /// Peak bandwidth in bytes per second.
    pub bytes_per_s: f64,
    /// Access latency in ns.
    pub latency_ns: f64,
}

/// A built-in target: its RON and the RON of its default accelerator description.
pub struct BuiltIn {
    pub name: &'static str,
    pub target_ron: &'static str,
    pub accelerator_ron: &'static str,
}

/// Every built-in target, in the order `etch targets` lists them.
pub const BUILT_IN: &[BuiltIn] = &[
    BuiltIn {
        name: "pynq-z2",
        target_ron: include_str!("../data/pynq-z2.ron"),
        accelerator_ron: include_str!("../data/pynq-z2.hw.ron"),
    },
    BuiltIn {
        name: "ultra96-v2",
        target_ron: include_str!("../data/ultra96-v2.ron"),
        accelerator_ron: include_str!("../data/ultra96-v2.hw.ron"),
    },
    BuiltIn {
        name: "zcu104",
        target_ron: include_str!("../data/zcu104.ron"),
        accelerator_ron: include_str!("../data/zcu104.hw.ron"),
    },
    BuiltIn {
        name: "ice40-up5k",
        target_ron: include_str!("../data/ice40-up5k.ron"),
        accelerator_ron: include_str!("../data/ice40-up5k.hw.ron"),
    },
    BuiltIn {
        name: "asic-45nm",
        target_ron: include_str!("../data/asic-45nm.ron"),
        accelerator_ron: include_str!("../data/asic-45nm.hw.ron"),
    },
    BuiltIn {
        name: "asic-65nm",
        target_ron: include_str!("../data/asic-65nm.ron"),
        accelerator_ron: include_str!("../data/asic-65nm.hw.ron"),
    },
];

/// A target that cannot be found or read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TargetError {
    #[error("unknown target `{name}`; the targets are: {known}")]
    Unknown { name: String, known: String },
    #[error("target `{name}`: {line}:{col}: {message}")]
    Ron {
        name: String,
        line: usize,
        col: usize,
        message: String,
    },
}

/// The names of the built-in targets.
pub fn names() -> Vec<&'static str> {
    BUILT_IN.iter().map(|b| b.name).collect()
}

/// The built-in entry of a target by name.
pub fn built_in(name: &str) -> Result<&'static BuiltIn, TargetError> {
    BUILT_IN
        .iter()
        .find(|b| b.name == name)
        .ok_or_else(|| TargetError::Unknown {
            name: name.to_string(),
            known: names().join(", "),
        })
}

/// Reads a target from RON text.
pub fn parse(name: &str, ron_text: &str) -> Result<Target, TargetError> {
    ron::from_str(ron_text).map_err(|e| TargetError::Ron {
        name: name.to_string(),
        line: e.span.start.line,
        col: e.span.start.col,
        message: e.code.to_string(),
    })
}

/// A built-in target by name.
pub fn get(name: &str) -> Result<Target, TargetError> {
    let b = built_in(name)?;
    parse(b.name, b.target_ron)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_target_parses_and_is_named_as_listed() {
        for b in BUILT_IN {
            let t = get(b.name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(t.name, b.name);
            assert!(t.clock.default_mhz <= t.clock.max_mhz, "{}", b.name);
            assert!(t.dram.bytes_per_s > 0.0);
        }
        assert_eq!(
            names(),
            [
                "pynq-z2",
                "ultra96-v2",
                "zcu104",
                "ice40-up5k",
                "asic-45nm",
                "asic-65nm"
            ]
        );
    }

    #[test]
    fn unknown_target_lists_the_known_ones() {
        let e = get("zynq").unwrap_err().to_string();
        assert!(
            e.contains("unknown target `zynq`") && e.contains("pynq-z2, ultra96-v2"),
            "{e}"
        );
    }
}
