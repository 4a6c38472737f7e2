//! Energy of a program from its real accesses: every MAC the array performs (zero weights
//! gated), the PE register and PE-to-PE traffic of the dataflow, every read and write of each
//! buffer (by its bank size; the global buffer's too), and every DRAM byte moved. Counted per instruction, so the search,
//! the report and a trace all see the same figures; static power is charged per cycle of the run.

use etch_hw::{Accelerator, Dataflow, EnergyBreakdown, EnergyTable};

use crate::isa::{Buffer, Insn, Kind, VectorOp};
use crate::machine::Machine;
use crate::tiling::Arith;

/// Per-access energies of one description.
#[derive(Debug, Clone, PartialEq)]
pub struct Costs {
    table: EnergyTable,
    /// pJ per byte of each buffer's access (input, weight, output).
    sram_byte: [f64; 3],
    dram_byte: f64,
    /// pJ per byte of the global buffer's access (0 when there is none).
    global_byte: f64,
    /// Static energy of one cycle of the whole design (`Accelerator::static_pj_per_cycle`).
    pub static_per_cycle: f64,
}

impl Costs {
    pub fn of(acc: &Accelerator, table: &EnergyTable) -> Costs {
        let bank = |kib: u32| kib as f64 / acc.buffers.banks.max(1) as f64;
        let b = &acc.buffers;
        let per_byte = |kib: u32| table.sram_access(bank(kib), 64) / 8.0;
        Costs {
            table: table.clone(),
            sram_byte: [
                per_byte(b.ifmap_kib),
                per_byte(b.filter_kib),
                per_byte(b.ofmap_kib),
            ],
            dram_byte: table.dram_per_byte(),
            global_byte: b.global.map_or(0.0, |g| per_byte(g.kib)),
            static_per_cycle: acc.static_pj_per_cycle(),
        }
    }

    fn sram(&self, buf: Buffer, bytes: f64) -> f64 {
        let i = match buf {
            Buffer::Input => 0,
            Buffer::Weight => 1,
            Buffer::Output => 2,
        };
        self.sram_byte[i] * bytes
    }

    /// The per-operation energies of a layer with arithmetic `a` on `m`, worked out once for all
    /// its instructions (the tiling search costs many candidates' instructions).
    pub fn layer<'c>(&'c self, a: &Arith, m: &Machine) -> LayerCosts<'c> {
        let t = &self.table;
        let (stationary_bits, moving_bits) = match m.dataflow {
            Dataflow::WeightStationary => (a.weight_bits, a.act_bits),
            Dataflow::OutputStationary => (a.acc_bits, a.act_bits + a.weight_bits),
            Dataflow::InputStationary => (a.act_bits, a.weight_bits),
        };
        LayerCosts {
            costs: self,
            a: *a,
            m: *m,
            mac: t.mac(a.kind, a.weight_bits, a.act_bits, a.acc_bits.min(64)),
            rf: t.rf_access(stationary_bits),
            hops: t.hop(moving_bits) + t.hop(a.acc_bits),
            lane_op: t.int_add(a.acc_bits),
            requant_mult: t.int_mult(32, 32),
            depthwise_mac: t.mac(a.kind, a.weight_bits, a.act_bits, 32),
        }
    }
}

/// The energies of one layer's operations (`Costs::layer`).
#[derive(Debug, Clone, Copy)]
pub struct LayerCosts<'c> {
    costs: &'c Costs,
    a: Arith,
    m: Machine,
    /// pJ of an array MAC, a register-file access of the stationary operand, the PE-to-PE hops
    /// of the moving operand and the partial sum, a vector lane operation, a requantization's
    /// multiply and a depthwise MAC.
    mac: f64,
    rf: f64,
    hops: f64,
    lane_op: f64,
    requant_mult: f64,
    depthwise_mac: f64,
}

impl LayerCosts<'_> {
    /// The energy of one instruction of the layer.
    pub fn insn(&self, insn: &Insn) -> EnergyBreakdown {
        let mut e = EnergyBreakdown::default();
        let (a, m, c) = (&self.a, &self.m, self.costs);
        let (wb, ab, accb) = (a.weight_bits as f64, a.act_bits as f64, a.acc_bits as f64);
        match &insn.kind {
            Kind::Load(d) | Kind::Store(d) => {
                e.dram = d.dram_bytes() as f64 * c.dram_byte;
                e.sram = c.sram(d.buffer, d.bytes() as f64)
                    + (d.bytes() - d.dram_bytes()) as f64 * c.global_byte;
            }
            Kind::Gemm(g) => {
                let macs = (g.m * g.k * g.n) as f64;
                e.mac = macs * a.density * self.mac;
                let (r, cols) = (m.rows, m.cols);
                let (fr_k, fc_n) = (g.k.div_ceil(r) as f64, g.n.div_ceil(cols) as f64);
                let (fr_m, fc_m) = (g.m.div_ceil(r) as f64, g.m.div_ceil(cols) as f64);
                let (mm, k, n) = (g.m as f64, g.k as f64, g.n as f64);
                // (activation reads, weight reads, psum writes) of the buffers, in elements
                let (act_reads, w_reads, psum_writes) = match m.dataflow {
                    Dataflow::WeightStationary => (mm * k * fc_n, k * n, mm * n * fr_k),
                    Dataflow::OutputStationary => (mm * k * fc_n, k * n * fr_m, mm * n),
                    Dataflow::InputStationary => (k * mm, k * n * fc_m, mm * n * fr_k),
                };
                let psum_reads = psum_writes - if g.accumulate { 0.0 } else { mm * n };
                e.register_file = macs * self.rf;
                e.pe_to_pe = macs * self.hops;
                e.sram = c.sram(Buffer::Input, act_reads * ab / 8.0)
                    + c.sram(Buffer::Weight, w_reads * wb / 8.0)
                    + c.sram(
                        Buffer::Output,
                        (psum_writes + psum_reads.max(0.0)) * accb / 8.0,
                    );
            }
            Kind::Vector(v) => {
                e.vector = v.ops as f64 * self.lane_op;
                let el = v.elements as f64;
                match v.op {
                    VectorOp::Requantize => {
                        e.vector += el * self.requant_mult;
                        e.sram = c.sram(Buffer::Output, el * (accb + ab) / 8.0);
                    }
                    VectorOp::Depthwise => {
                        e.vector = v.ops as f64 * self.depthwise_mac;
                        e.sram = c.sram(Buffer::Input, v.ops as f64 * ab / 8.0)
                            + c.sram(Buffer::Weight, v.ops as f64 * wb / 8.0)
                            + c.sram(Buffer::Output, el * accb / 8.0);
                    }
                    _ => {
                        e.sram = c.sram(Buffer::Input, v.ops as f64 * ab / 8.0)
                            + c.sram(Buffer::Output, el * ab / 8.0);
                    }
                }
            }
        }
        e
    }
}
