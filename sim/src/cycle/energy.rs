//! Energy of a layer from its counts: every MAC (by kind and width, zero weights gated), every
//! register-file access in the PEs, every PE-to-PE hop (operands and partial sums forwarded,
//! stationary operands shifted in), every buffer read and write (by bank size and width), and
//! every DRAM byte.

use etch_hw::{Accelerator, Dataflow, EnergyTable};

use crate::map::{GemmWork, LayerSpec, Mapping};

pub use etch_hw::energy::EnergyBreakdown;

/// Counts a layer's energy as its folds go by.
pub(crate) struct Counter<'a> {
    acc: &'a Accelerator,
    t: &'a EnergyTable,
    spec: &'a LayerSpec,
    e: EnergyBreakdown,
    bank_if: f64,
    bank_fl: f64,
    bank_of: f64,
}

impl<'a> Counter<'a> {
    pub(crate) fn new(
        acc: &'a Accelerator,
        t: &'a EnergyTable,
        spec: &'a LayerSpec,
    ) -> Counter<'a> {
        let b = &acc.buffers;
        let bank =
            |kib: u32| kib as f64 / b.banks as f64 / if b.double_buffered { 2.0 } else { 1.0 };
        Counter {
            acc,
            t,
            spec,
            e: EnergyBreakdown::default(),
            bank_if: bank(b.ifmap_kib),
            bank_fl: bank(b.filter_kib),
            bank_of: bank(b.ofmap_kib),
        }
    }

    /// Buffer traffic and operand shifting of one fold.
    pub(crate) fn fold(&mut self, m: &Mapping, rows: u64, cols: u64, fr: u64) {
        let (w, a, acc) = (
            self.spec.weight_bits,
            self.spec.act_bits,
            self.acc.pe.acc_bits(),
        );
        let t = m.t as f64;
        let (rows, cols) = (rows as f64, cols as f64);
        let s = self.t;
        let (sram, hops) = match m.dataflow {
            Dataflow::WeightStationary => {
                let psum_rw = if fr > 0 { 2.0 } else { 1.0 };
                (
                    rows * cols * s.sram_access(self.bank_fl, w)
                        + t * rows * s.sram_access(self.bank_if, a)
                        + psum_rw * t * cols * s.sram_access(self.bank_of, acc),
                    rows * cols * (rows + 1.0) / 2.0 * s.hop(w),
                )
            }
            Dataflow::InputStationary => {
                let psum_rw = if fr > 0 { 2.0 } else { 1.0 };
                (
                    rows * cols * s.sram_access(self.bank_if, a)
                        + t * rows * s.sram_access(self.bank_fl, w)
                        + psum_rw * t * cols * s.sram_access(self.bank_of, acc),
                    rows * cols * (rows + 1.0) / 2.0 * s.hop(a),
                )
            }
            Dataflow::OutputStationary => (
                t * rows * s.sram_access(self.bank_if, a)
                    + t * cols * s.sram_access(self.bank_fl, w)
                    + rows * cols * s.sram_access(self.bank_of, a),
                rows * cols * (rows + 1.0) / 2.0 * s.hop(a),
            ),
        };
        self.e.sram += sram;
        self.e.pe_to_pe += hops;
    }

    /// DRAM traffic, and the buffer writes and reads that go with it.
    pub(crate) fn dram_bytes(&mut self, b: u64) {
        self.e.dram += b as f64 * self.t.dram_per_byte();
        self.e.sram += b as f64 * self.t.sram_access(self.bank_if.max(self.bank_of), 8);
    }

    /// The MACs: kind and width, zero weights gated; register reads and writes; forwarding.
    pub(crate) fn macs(&mut self, g: &GemmWork, m: &Mapping) {
        let (w, a, acc) = (
            self.spec.weight_bits,
            self.spec.act_bits,
            self.acc.pe.acc_bits(),
        );
        let performed = (g.m * m.k_eff * m.n_eff * g.groups) as f64;
        // of the MACs performed, the fraction with a nonzero weight
        let nz = (self.spec.density
            * (g.k as f64 / m.k_eff.max(1) as f64)
            * (g.n as f64 / m.n_eff.max(1) as f64))
            .min(1.0);
        let s = self.t;
        // The PE's own arithmetic does the work, at the layer's widths: power-of-two or ±1 weights
        // on an integer MAC PE still go through its multiplier (narrower operands gate its upper
        // bits); the shift-add and XNOR-popcount costs need a PE of that kind.
        self.e.mac += performed * nz * s.mac(self.acc.pe.kind(), w, a, acc);
        self.e.register_file +=
            performed * (nz * (s.rf_access(w) + s.rf_access(a)) + 2.0 * s.rf_access(acc));
        let fwd = match m.dataflow {
            Dataflow::OutputStationary => s.hop(a) + s.hop(w),
            _ => s.hop(a) + s.hop(acc),
        };
        self.e.pe_to_pe += performed * fwd;
    }

    pub(crate) fn finish(self) -> EnergyBreakdown {
        self.e
    }
}
