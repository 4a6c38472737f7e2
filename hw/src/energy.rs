//! The energy model: per MAC by kind and width, per SRAM access by bank size, per DRAM byte, per
//! register access and PE-to-PE hop, and the scaling between technology nodes. The shipped tables
//! (`energy/*.ron`) give every figure with its source.

use serde::{Deserialize, Serialize};

use crate::{HwError, MacKind};

/// Energy figures at one technology node, pJ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnergyTable {
    pub name: String,
    pub node_nm: f64,
    pub int_mult_8b_pj: f64,
    pub int_mult_32b_pj: f64,
    pub int_add_8b_pj: f64,
    pub int_add_32b_pj: f64,
    pub fp16_add_pj: f64,
    pub fp16_mult_pj: f64,
    pub fp32_add_pj: f64,
    pub fp32_mult_pj: f64,
    /// SRAM energy per 64-bit access at a few bank sizes (KiB), ascending.
    pub sram: Vec<SramPoint>,
    pub dram_pj_per_64b: f64,
    pub rf_pj_per_16b: f64,
    pub hop_pj_per_16b: f64,
}

/// One SRAM size and its energy per 64-bit access.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SramPoint {
    pub kib: f64,
    pub pj_per_64b: f64,
}

/// The built-in tables by name.
pub const PRESETS: &[(&str, &str)] = &[
    ("horowitz-45nm", include_str!("../energy/horowitz-45nm.ron")),
    ("eyeriss-65nm", include_str!("../energy/eyeriss-65nm.ron")),
];

/// A built-in table.
pub fn preset(name: &str) -> Result<EnergyTable, HwError> {
    let (_, text) =
        PRESETS
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| HwError::UnknownEnergy {
                name: name.to_string(),
                known: PRESETS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
    let t: EnergyTable =
        ron::from_str(text).map_err(|e| crate::ron_error(&format!("<energy table {name}>"), &e))?;
    t.check()?;
    Ok(t)
}

impl EnergyTable {
    /// Every figure positive and finite, SRAM points ascending.
    pub fn check(&self) -> Result<(), HwError> {
        let bad = |problem: String| {
            Err(HwError::BadEnergy {
                name: self.name.clone(),
                problem,
            })
        };
        let figures = [
            ("node_nm", self.node_nm),
            ("int_mult_8b_pj", self.int_mult_8b_pj),
            ("int_mult_32b_pj", self.int_mult_32b_pj),
            ("int_add_8b_pj", self.int_add_8b_pj),
            ("int_add_32b_pj", self.int_add_32b_pj),
            ("fp16_add_pj", self.fp16_add_pj),
            ("fp16_mult_pj", self.fp16_mult_pj),
            ("fp32_add_pj", self.fp32_add_pj),
            ("fp32_mult_pj", self.fp32_mult_pj),
            ("dram_pj_per_64b", self.dram_pj_per_64b),
            ("rf_pj_per_16b", self.rf_pj_per_16b),
            ("hop_pj_per_16b", self.hop_pj_per_16b),
        ];
        for (what, v) in figures {
            if !(v.is_finite() && v > 0.0) {
                return bad(format!(
                    "{what} is {v}; every figure must be a positive number"
                ));
            }
        }
        if self.sram.is_empty() {
            return bad("sram needs at least one (kib, pj_per_64b) point".into());
        }
        for p in &self.sram {
            if !(p.kib > 0.0 && p.pj_per_64b > 0.0 && p.kib.is_finite() && p.pj_per_64b.is_finite())
            {
                return bad(format!(
                    "sram point ({}, {}) must be positive",
                    p.kib, p.pj_per_64b
                ));
            }
        }
        if self.sram.windows(2).any(|w| w[0].kib >= w[1].kib) {
            return bad("sram points must be in ascending size".into());
        }
        Ok(())
    }

    /// The table moved to another node. First-order scaling: switching energy follows capacitance,
    /// which shrinks linearly with the feature size at a roughly constant supply (a Dennard-style
    /// estimate; real nodes differ by a factor of up to about 2). DRAM energy is off-chip and
    /// does not scale with the accelerator's node.
    pub fn scaled_to(&self, node_nm: f64) -> EnergyTable {
        let f = node_nm / self.node_nm;
        EnergyTable {
            name: format!("{} scaled to {node_nm} nm", self.name),
            node_nm,
            int_mult_8b_pj: self.int_mult_8b_pj * f,
            int_mult_32b_pj: self.int_mult_32b_pj * f,
            int_add_8b_pj: self.int_add_8b_pj * f,
            int_add_32b_pj: self.int_add_32b_pj * f,
            fp16_add_pj: self.fp16_add_pj * f,
            fp16_mult_pj: self.fp16_mult_pj * f,
            fp32_add_pj: self.fp32_add_pj * f,
            fp32_mult_pj: self.fp32_mult_pj * f,
            sram: self
                .sram
                .iter()
                .map(|p| SramPoint {
                    kib: p.kib,
                    pj_per_64b: p.pj_per_64b * f,
                })
                .collect(),
            dram_pj_per_64b: self.dram_pj_per_64b,
            rf_pj_per_16b: self.rf_pj_per_16b * f,
            hop_pj_per_16b: self.hop_pj_per_16b * f,
        }
    }

    /// An integer multiply of `a` x `b` bits: a power law in `a·b` through the 8x8 and 32x32 points.
    pub fn int_mult(&self, a: u32, b: u32) -> f64 {
        let alpha = (self.int_mult_32b_pj / self.int_mult_8b_pj).ln() / 16f64.ln();
        self.int_mult_8b_pj * ((a as f64 * b as f64) / 64.0).powf(alpha)
    }

    /// An integer add of `bits`: linear through the 8- and 32-bit points (at least a tenth of the
    /// 8-bit add, for very narrow adders).
    pub fn int_add(&self, bits: u32) -> f64 {
        let slope = (self.int_add_32b_pj - self.int_add_8b_pj) / 24.0;
        (self.int_add_8b_pj + slope * (bits as f64 - 8.0)).max(self.int_add_8b_pj / 10.0)
    }

    /// One MAC of the given kind and widths.
    /// - Int: multiply + accumulate add.
    /// - Float: multiply + add at 16 or 32 bits.
    /// - Shift (power-of-two weights): a barrel shift of the activation (a log-depth mux tree,
    ///   costed as an add of the activation's width: etch's estimate) + the accumulate add.
    /// - Xnor: one XNOR + popcount step per weight bit; costed as a 1/8 of an 8-bit add per bit
    ///   pair (etch's estimate: a full adder cell per bit), times the activation's bit-planes.
    pub fn mac(&self, kind: MacKind, weight_bits: u32, act_bits: u32, acc_bits: u32) -> f64 {
        match kind {
            MacKind::Int => self.int_mult(weight_bits, act_bits) + self.int_add(acc_bits),
            MacKind::Float => {
                if weight_bits.max(act_bits) <= 16 {
                    self.fp16_mult_pj + self.fp16_add_pj
                } else {
                    self.fp32_mult_pj + self.fp32_add_pj
                }
            }
            MacKind::Shift => self.int_add(act_bits) + self.int_add(acc_bits),
            MacKind::Xnor => self.int_add_8b_pj / 8.0 * act_bits.max(1) as f64,
        }
    }

    /// An SRAM access of `bits` in a bank of `bank_kib`: log-log interpolation between the table's
    /// points, the square-root law (energy ~ sqrt(size), the wire length of a square array) beyond
    /// them, and proportional to the access width.
    pub fn sram_access(&self, bank_kib: f64, bits: u32) -> f64 {
        let pts = &self.sram;
        let per64 = if pts.len() == 1 {
            pts[0].pj_per_64b
        } else if bank_kib <= pts[0].kib {
            pts[0].pj_per_64b * (bank_kib.max(1e-3) / pts[0].kib).sqrt()
        } else if bank_kib >= pts[pts.len() - 1].kib {
            let last = pts[pts.len() - 1];
            last.pj_per_64b * (bank_kib / last.kib).sqrt()
        } else {
            let k = pts
                .windows(2)
                .position(|w| bank_kib <= w[1].kib)
                .unwrap_or(0);
            let (a, b) = (pts[k], pts[k + 1]);
            let t = (bank_kib / a.kib).ln() / (b.kib / a.kib).ln();
            (a.pj_per_64b.ln() + t * (b.pj_per_64b / a.pj_per_64b).ln()).exp()
        };
        per64 * bits as f64 / 64.0
    }

    /// DRAM energy per byte.
    pub fn dram_per_byte(&self) -> f64 {
        self.dram_pj_per_64b / 8.0
    }

    /// A register-file access of `bits`.
    pub fn rf_access(&self, bits: u32) -> f64 {
        self.rf_pj_per_16b * bits as f64 / 16.0
    }

    /// One PE-to-PE hop of `bits`.
    pub fn hop(&self, bits: u32) -> f64 {
        self.hop_pj_per_16b * bits as f64 / 16.0
    }
}

/// Energy by component, pJ: what the simulators report per layer and in total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct EnergyBreakdown {
    pub mac: f64,
    pub register_file: f64,
    pub pe_to_pe: f64,
    pub sram: f64,
    pub dram: f64,
    pub vector: f64,
    /// Static power × time.
    pub static_power: f64,
}

impl EnergyBreakdown {
    pub fn total(&self) -> f64 {
        self.mac
            + self.register_file
            + self.pe_to_pe
            + self.sram
            + self.dram
            + self.vector
            + self.static_power
    }
    pub fn add(&mut self, o: &EnergyBreakdown) {
        self.mac += o.mac;
        self.register_file += o.register_file;
        self.pe_to_pe += o.pe_to_pe;
        self.sram += o.sram;
        self.dram += o.dram;
        self.vector += o.vector;
        self.static_power += o.static_power;
    }
    /// (name, pJ) pairs, in report order.
    pub fn parts(&self) -> [(&'static str, f64); 7] {
        [
            ("mac", self.mac),
            ("register_file", self.register_file),
            ("pe_to_pe", self.pe_to_pe),
            ("sram", self.sram),
            ("dram", self.dram),
            ("vector", self.vector),
            ("static", self.static_power),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_reproduce_their_sources() {
        let h = preset("horowitz-45nm").unwrap();
        assert!((h.int_mult(8, 8) - 0.2).abs() < 1e-12);
        assert!((h.int_mult(32, 32) - 3.1).abs() < 1e-9);
        assert!((h.int_add(8) - 0.03).abs() < 1e-12 && (h.int_add(32) - 0.1).abs() < 1e-12);
        assert!((h.sram_access(8.0, 64) - 10.0).abs() < 1e-9);
        assert!((h.sram_access(32.0, 64) - 20.0).abs() < 1e-9);
        assert!((h.sram_access(1024.0, 64) - 100.0).abs() < 1e-9);
        assert!(h.sram_access(16.0, 64) > 10.0 && h.sram_access(16.0, 64) < 20.0);
        // the 16-bit MAC the RF figure is normalised to
        let mac16 = h.int_mult(16, 16) + h.int_add(16);
        assert!((mac16 - h.rf_pj_per_16b).abs() < 0.01, "{mac16}");
        let e = preset("eyeriss-65nm").unwrap();
        let mac16 = e.int_mult(16, 16) + e.int_add(16);
        // Eyeriss's ratios: RF 1x, hop 2x, buffer 6x, DRAM 200x of a 16-bit MAC
        assert!((e.rf_access(16) / mac16 - 1.0).abs() < 0.01);
        assert!((e.hop(16) / mac16 - 2.0).abs() < 0.02);
        assert!((e.sram_access(108.0, 16) / mac16 - 6.0).abs() < 0.05);
        assert!((e.dram_per_byte() * 2.0 / mac16 - 200.0).abs() < 1.0);
    }

    #[test]
    fn mac_kinds_order_by_cost() {
        let h = preset("horowitz-45nm").unwrap();
        let int8 = h.mac(MacKind::Int, 8, 8, 32);
        let fp32 = h.mac(MacKind::Float, 32, 32, 32);
        let shift = h.mac(MacKind::Shift, 4, 8, 32);
        let xnor = h.mac(MacKind::Xnor, 1, 1, 16);
        assert!(
            fp32 > int8 && int8 > shift && shift > xnor,
            "{fp32} {int8} {shift} {xnor}"
        );
        assert!(h.mac(MacKind::Int, 4, 4, 32) < int8);
    }

    #[test]
    fn scaling_is_linear_in_the_node_and_leaves_dram() {
        let h = preset("horowitz-45nm").unwrap();
        let s = h.scaled_to(90.0);
        assert!((s.int_mult_8b_pj - 0.4).abs() < 1e-12);
        assert_eq!(s.dram_pj_per_64b, h.dram_pj_per_64b);
    }

    #[test]
    fn unknown_preset_names_the_known_ones() {
        let e = preset("tsmc-7nm").unwrap_err().to_string();
        assert!(e.contains("horowitz-45nm, eyeriss-65nm"), "{e}");
    }
}
