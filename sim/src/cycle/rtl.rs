//! The timing of the accelerator etch emits as Verilog (`etch compile --emit verilog`), cycle for
//! cycle. The emitted hardware is sequential: one controller steps through the integer program
//! (`crate::program`), one unit busy at a time, so its latency is a sum of phase lengths that the
//! RTL's counters fix by construction:
//!
//! ```text
//! start ─ DMA load of the input codes ─ for each step: fetch the schedule entry (2)
//!   array layer (Conv/Gemm, weight-stationary R×C systolic array):
//!     for each column fold fc:
//!       for each row fold fr:  gather R·P + 1   (im2col: one activation read per cycle into the
//!                                                 R row stage buffers, zero point/threshold applied)
//!                              preload R + 1     (weights shift down the columns)
//!                              stream P + R + C  (P pixels, input skew R, output deskew C, one
//!                                                 cycle of stage-buffer read, accumulate into psums)
//!       requantize cols·P + 4                    (bias, 32×32 multiply, round, shift, zero point,
//!                                                 clamp: one output code a cycle, 4-stage pipeline)
//!   MaxPool (vector unit, one tap a cycle):  C·Ho·Wo·kh·kw + 1
//!   Flatten/Reshape: no step (the codes are already in row-major order)
//!   next step (1)
//! ─ DMA store of the output codes ─ done
//! ```
//!
//! P is the layer's output pixels, R×C the array, `cols` the output channels in the column fold.
//! DRAM transfers run on one channel of `nb`-byte beats (`nb` the power of two ≥ the description's
//! bytes per cycle): after `latency_cycles`, a credit grows by `bytes_per_cycle` every cycle and a
//! beat goes when the credit covers it, at most one beat a cycle ([`dram_cycles`]); the testbench's
//! DRAM model runs the same rule. Buffers sizes, double buffering and the vector lanes of the
//! description do not change this timeline (the emitted vector unit has one lane).

use etch_hw::{Accelerator, Dataflow};

use crate::program::{IntOp, IntProgram, IntStep};

/// Fixed cycles outside the phases, the register stages of the handshakes (counted from the RTL):
/// at the start, the controller registers the DMA request and the DRAM model registers it; at the
/// end, the DRAM model registers the last grant, the controller reads the beat's row and sends it,
/// moves to its DONE state and raises the `done` register the testbench waits for.
pub const START_CYCLES: u64 = 2;
pub const END_CYCLES: u64 = 5;
/// Cycles of a schedule-entry fetch, and of moving to the next step.
pub const FETCH_CYCLES: u64 = 2;
pub const NEXT_CYCLES: u64 = 1;
/// Latency of the requantization pipeline.
pub const REQUANT_LATENCY: u64 = 4;

/// A fold plan of one program step on an R×C array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepGeom {
    Array {
        /// Output pixels (streamed), reduction length, output channels.
        p: u64,
        k: u64,
        n: u64,
        row_folds: u64,
        col_folds: u64,
        /// Output channels in the last column fold.
        last_cols: u64,
    },
    Pool {
        /// Reads: channels × output pixels × kernel taps.
        taps: u64,
    },
    Free,
}

/// How a step folds onto the array.
pub fn step_geom(step: &IntStep, rows: u64, cols: u64) -> StepGeom {
    match &step.op {
        IntOp::Conv { layer, window, .. } => {
            let p = (window.out[0] * window.out[1]) as u64;
            array_geom(p, layer.reduction as u64, layer.outs as u64, rows, cols)
        }
        IntOp::Gemm { layer } => {
            array_geom(1, layer.reduction as u64, layer.outs as u64, rows, cols)
        }
        IntOp::MaxPool { window } => StepGeom::Pool {
            taps: (step.output_chw[0]
                * window.out[0]
                * window.out[1]
                * window.kernel[0]
                * window.kernel[1]) as u64,
        },
        // the layer-chain hardware has no Add or table (`check_layer_chain` refuses them); were
        // it to have them, they would read their operands
        IntOp::Add { .. } => StepGeom::Pool {
            taps: 2 * step.output_shape.iter().product::<usize>() as u64,
        },
        IntOp::Table { .. } => StepGeom::Pool {
            taps: step.output_shape.iter().product::<usize>() as u64,
        },
        IntOp::Reshape | IntOp::Concat => StepGeom::Free,
    }
}

fn array_geom(p: u64, k: u64, n: u64, rows: u64, cols: u64) -> StepGeom {
    let col_folds = n.div_ceil(cols).max(1);
    StepGeom::Array {
        p,
        k,
        n,
        row_folds: k.div_ceil(rows).max(1),
        col_folds,
        last_cols: n - (col_folds - 1) * cols,
    }
}

/// Bytes per DMA beat: the smallest power of two ≥ the description's bytes per cycle.
pub fn beat_bytes(acc: &Accelerator) -> u64 {
    (acc.dram.bytes_per_cycle.ceil().max(1.0) as u64).next_power_of_two()
}

/// The description's bytes per cycle in thousandths (the DMA credit's unit).
pub fn milli_bytes_per_cycle(acc: &Accelerator) -> u64 {
    ((acc.dram.bytes_per_cycle * 1000.0).round() as u64).max(1)
}

/// Cycles of one DRAM transfer of `len` bytes: from the cycle after the request is seen to the
/// cycle of the last beat, both counted. After `latency` cycles, every cycle adds `milli` to a
/// credit (in thousandths of a byte); beat `j` goes in the first cycle whose credit covers
/// `min((j+1)·nb, len)` bytes, one beat a cycle.
pub fn dram_cycles(len: u64, nb: u64, milli: u64, latency: u64) -> u64 {
    if len == 0 {
        return 0;
    }
    let beats = len.div_ceil(nb);
    let mut t = latency;
    let (mut credit, mut beat) = (0u64, 0u64);
    while beat < beats {
        t += 1;
        credit += milli;
        if credit / 1000 >= ((beat + 1) * nb).min(len) {
            beat += 1;
        }
    }
    t
}

/// Why the emitted hardware cannot run a model on a description.
pub fn unsupported(acc: &Accelerator) -> Option<String> {
    match acc.dataflow() {
        Dataflow::WeightStationary => None,
        other => Some(format!(
            "the emitted accelerator implements the weight-stationary dataflow only; `{}` asks for {other:?}",
            acc.name
        )),
    }
}

/// One step's cycles on the emitted hardware (the fetch and next-step cycles included).
pub fn step_cycles(g: &StepGeom, rows: u64, cols: u64) -> u64 {
    let body = match *g {
        StepGeom::Array {
            p,
            row_folds,
            col_folds,
            last_cols,
            ..
        } => {
            let fold = (rows * p + 1) + (rows + 1) + (p + rows + cols);
            (0..col_folds)
                .map(|fc| {
                    let c = if fc + 1 == col_folds { last_cols } else { cols };
                    row_folds * fold + c * p + REQUANT_LATENCY
                })
                .sum()
        }
        StepGeom::Pool { taps } => taps + 1,
        StepGeom::Free => return 0,
    };
    FETCH_CYCLES + body + NEXT_CYCLES
}

/// Bytes of the input and output codes (one byte each).
pub fn io_bytes(p: &IntProgram) -> (u64, u64) {
    (
        p.input_shape.iter().product::<usize>() as u64,
        p.output_shape.iter().product::<usize>() as u64,
    )
}

/// Per-step cycles and the total of one inference: (input load, steps, output store, total).
pub fn timeline(p: &IntProgram, acc: &Accelerator) -> (u64, Vec<u64>, u64, u64) {
    let (rows, cols) = (acc.rows() as u64, acc.cols() as u64);
    let (nb, milli, lat) = (
        beat_bytes(acc),
        milli_bytes_per_cycle(acc),
        acc.dram.latency_cycles as u64,
    );
    let (inb, outb) = io_bytes(p);
    let load = START_CYCLES + dram_cycles(inb, nb, milli, lat);
    let steps: Vec<u64> = p
        .steps
        .iter()
        .map(|s| step_cycles(&step_geom(s, rows, cols), rows, cols))
        .collect();
    let store = dram_cycles(outb, nb, milli, lat) + END_CYCLES;
    let total = load + steps.iter().sum::<u64>() + store;
    (load, steps, store, total)
}
