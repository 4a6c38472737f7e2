//! Area and FPGA resource estimates for a description. These are first-order models meant to
//! rank designs and to catch one that cannot fit; the emitted RTL's Yosys report is the check
//! on them (DESIGN.md, verification chain step 5).

use etch_targets::Fpga;
use serde::Serialize;

use crate::{Accelerator, Pe};

/// A buffer split into its banks, with what each bank must store and deliver per cycle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bank {
    pub buffer: &'static str,
    /// Capacity of one bank (of one half, when double-buffered), KiB.
    pub kib: f64,
    /// Port width of one bank, bits.
    pub width_bits: u32,
    /// How many such banks (banks x halves).
    pub count: u32,
}

/// The banks of the three buffers (and the global buffer's). Port widths: the ifmap buffer feeds
/// one activation per array row per cycle, the filter buffer one weight per column, the ofmap
/// buffer takes one partial sum per column; the global buffer is as wide as its channel.
pub fn banks(acc: &Accelerator) -> Vec<Bank> {
    let b = &acc.buffers;
    let halves = if b.double_buffered { 2 } else { 1 };
    let (r, c) = (acc.rows(), acc.cols());
    let port = [
        ("ifmap", b.ifmap_kib, r * acc.pe.act_bits()),
        ("filter", b.filter_kib, c * acc.pe.weight_bits()),
        ("ofmap", b.ofmap_kib, c * acc.pe.acc_bits()),
    ];
    let mut banks: Vec<Bank> = port
        .iter()
        .filter(|(_, kib, _)| *kib > 0)
        .map(|&(buffer, kib, width)| Bank {
            buffer,
            kib: kib as f64 / halves as f64 / b.banks as f64,
            width_bits: width.div_ceil(b.banks).max(1),
            count: b.banks * halves,
        })
        .collect();
    if let Some(g) = b.global.filter(|g| g.kib > 0) {
        let width = (g.bytes_per_cycle.ceil() as u32).saturating_mul(8);
        banks.push(Bank {
            buffer: "global",
            kib: g.kib as f64 / b.banks as f64,
            width_bits: width.div_ceil(b.banks).max(1),
            count: b.banks,
        });
    }
    banks
}

/// FPGA resources a description takes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FpgaResources {
    pub dsps: u64,
    pub luts: u64,
    pub ffs: u64,
    /// Blocks of each memory kind, in the target's order.
    pub memories: Vec<(String, u64)>,
    /// Block memory the buffers need when a bank does not fit what is left, KiB-equivalents
    /// (capacity, or the blocks their port widths force), against what the part has.
    pub memory_shortfall: Option<(f64, f64)>,
}

/// DSP blocks, LUTs and flip-flops of one PE (etch's estimates, see each arm).
fn pe_fpga(pe: &Pe, fpga: &Fpga) -> (f64, u64, u64) {
    let d = &fpga.dsp;
    match *pe {
        // A MAC in one DSP block when the operands fit its multiplier, two per block with
        // WP486-style int8 packing; wider operands tile the multiplier. Around it: the weight,
        // activation and partial-sum registers (FFs) and a few LUTs of muxing.
        Pe::IntMac {
            weight_bits: w,
            act_bits: a,
            acc_bits,
        } => {
            let dsps = if w <= 8 && a <= 8 && d.int8_macs > 1 {
                1.0 / d.int8_macs as f64
            } else if (w <= d.b_bits && a <= d.a_bits) || (w <= d.a_bits && a <= d.b_bits) {
                1.0
            } else {
                (w.div_ceil(d.b_bits) * a.div_ceil(d.a_bits)) as f64
            };
            (dsps, 8, (w + a + acc_bits) as u64)
        }
        // Float MACs: the mantissa product in DSPs (1 for half, 2 for single), alignment,
        // normalisation and rounding in LUTs (about 150 / 400; cf. Xilinx PG060's resource tables).
        Pe::FloatMac { bits } => {
            if bits <= 16 {
                (1.0, 150, 3 * 16)
            } else {
                (2.0, 400, 3 * 32)
            }
        }
        // A barrel shifter (log2 stages of 2:1 muxes, two per LUT6) and an adder (one LUT per bit
        // on the carry chain); no DSP.
        Pe::ShiftAdd {
            weight_bits,
            act_bits,
            acc_bits,
        } => {
            let stages = weight_bits - 1;
            let shifter = (acc_bits * stages).div_ceil(2) as u64;
            (
                0.0,
                shifter + acc_bits as u64,
                (weight_bits + act_bits + acc_bits) as u64,
            )
        }
        // XNOR of the bits and a popcount accumulator.
        Pe::XnorPopcount { act_bits, acc_bits } => (
            0.0,
            (act_bits + acc_bits) as u64,
            (1 + act_bits + acc_bits) as u64,
        ),
    }
}

/// FPGA resources for a description on a part.
pub fn fpga_resources(acc: &Accelerator, fpga: &Fpga) -> FpgaResources {
    let pes = acc.pes();
    let (dsp_per_pe, lut_per_pe, ff_per_pe) = pe_fpga(&acc.pe, fpga);
    let dsps = (pes as f64 * dsp_per_pe).ceil() as u64;
    // Fixed: the sequencer, DMA engine and AXI glue, about 2,000 LUTs and 2,500 FFs (etch's
    // estimate); the vector unit: one adder/comparator of the accumulator's width per lane.
    let lanes = acc.vector.lanes as u64;
    let acc_bits = acc.pe.acc_bits() as u64;
    let luts = pes * lut_per_pe + 2000 + lanes * acc_bits * 2;
    let ffs = pes * ff_per_pe + 2500 + lanes * acc_bits;
    // Block memory, greedily, smallest blocks first.
    let mut left: Vec<u64> = fpga.memories.iter().map(|m| m.count).collect();
    let mut used = vec![0u64; fpga.memories.len()];
    let mut short = false;
    let mut need_kib = 0.0;
    for bank in banks(acc) {
        for _ in 0..bank.count {
            let need = |k: usize| -> u64 {
                let m = &fpga.memories[k];
                ((bank.kib / m.kib).ceil() as u64)
                    .max(bank.width_bits.div_ceil(m.width_bits) as u64)
                    .max(1)
            };
            match (0..fpga.memories.len()).find(|&k| need(k) <= left[k]) {
                Some(k) => {
                    let n = need(k);
                    left[k] -= n;
                    used[k] += n;
                    need_kib += n as f64 * fpga.memories[k].kib;
                }
                None => {
                    short = true;
                    need_kib += fpga
                        .memories
                        .first()
                        .map_or(bank.kib, |m| need(0) as f64 * m.kib);
                }
            }
        }
    }
    let have_kib: f64 = fpga.memories.iter().map(|m| m.count as f64 * m.kib).sum();
    FpgaResources {
        dsps,
        luts,
        ffs,
        memories: fpga
            .memories
            .iter()
            .zip(used)
            .map(|(m, n)| (m.name.clone(), n))
            .collect(),
        memory_shortfall: short.then_some((need_kib, have_kib)),
    }
}

/// ASIC area, mm², split by part.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AsicArea {
    pub pe_mm2: f64,
    pub sram_mm2: f64,
    pub other_mm2: f64,
    pub total_mm2: f64,
}

// Areas at 45 nm, µm² (Horowitz, ISSCC 2014, Fig. 1.1.9): add 8b 36, 32b 137; mult 8b 282,
// 32b 3495; fp16 add 1360, mult 1640; fp32 add 4184, mult 7700.
const ADD8: f64 = 36.0;
const ADD32: f64 = 137.0;
const MUL8: f64 = 282.0;
const MUL32: f64 = 3495.0;
// A flip-flop: NanGate FreePDK45 Open Cell Library DFF_X1, 4.522 µm²; a 2:1 mux (MUX2_X1)
// 1.862 µm²; an XNOR2_X1 1.596 µm².
const FF: f64 = 4.522;
const MUX2: f64 = 1.862;
const XNOR2: f64 = 1.596;
// SRAM: Intel's 45 nm 6T cell, 0.346 µm² (Mistry et al., IEDM 2007), at 50% array efficiency
// (periphery, sense amplifiers, decoders; etch's estimate).
const SRAM_BIT: f64 = 0.346 / 0.5;

fn add_area(bits: u32) -> f64 {
    ADD8 + (ADD32 - ADD8) / 24.0 * (bits as f64 - 8.0)
}

fn mult_area(a: u32, b: u32) -> f64 {
    let alpha = (MUL32 / MUL8).ln() / 16f64.ln();
    MUL8 * ((a as f64 * b as f64) / 64.0).powf(alpha)
}

/// ASIC area at `node_nm` (area scales with the square of the feature size).
pub fn asic_area(acc: &Accelerator, node_nm: f64) -> AsicArea {
    let pe_um2 = match acc.pe {
        Pe::IntMac {
            weight_bits,
            act_bits,
            acc_bits,
        } => {
            mult_area(weight_bits, act_bits)
                + add_area(acc_bits)
                + FF * (weight_bits + act_bits + acc_bits) as f64
        }
        Pe::FloatMac { bits } => {
            if bits <= 16 {
                1360.0 + 1640.0 + FF * 48.0
            } else {
                4184.0 + 7700.0 + FF * 96.0
            }
        }
        Pe::ShiftAdd {
            weight_bits,
            act_bits,
            acc_bits,
        } => {
            MUX2 * (acc_bits * (weight_bits - 1)) as f64
                + add_area(acc_bits)
                + FF * (weight_bits + act_bits + acc_bits) as f64
        }
        Pe::XnorPopcount { act_bits, acc_bits } => {
            XNOR2 * act_bits as f64
                + add_area(acc_bits.min(16))
                + FF * (1 + act_bits + acc_bits) as f64
        }
    };
    let b = &acc.buffers;
    let global_kib = b.global.map_or(0, |g| g.kib);
    let bits = (b.ifmap_kib + b.filter_kib + b.ofmap_kib + global_kib) as f64 * 8192.0;
    let s = (node_nm / 45.0).powi(2);
    let pe_mm2 = pe_um2 * acc.pes() as f64 * 1e-6 * s;
    let sram_mm2 = bits * SRAM_BIT * 1e-6 * s;
    // vector unit, control and wiring: 10% of the rest (etch's estimate)
    let other_mm2 = 0.1 * (pe_mm2 + sram_mm2)
        + acc.vector.lanes as f64 * (add_area(acc.pe.acc_bits()) + MUL8) * 1e-6 * s;
    AsicArea {
        pe_mm2,
        sram_mm2,
        other_mm2,
        total_mm2: pe_mm2 + sram_mm2 + other_mm2,
    }
}
