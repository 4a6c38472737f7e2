//! `etch sim`'s default: the accelerator program (`etch_program`) compiled for the description
//! and run exactly, reported in the simulator's terms (per-layer cycles, stalls, utilization,
//! DRAM bytes, energy, and the timeline of the DRAM channel, the array and the vector unit).

use etch_hw::Accelerator;
use etch_program::isa::{Kind, Space, VectorOp};
use etch_program::{Program, ProgramError, Run};

use super::{Event, LayerResult, Phase, SimResult};

/// Compiles and runs the model; `trace` keeps every instruction as a timeline event.
pub fn simulate(
    model: &etch_ir::Model,
    info: &etch_ir::infer::GraphInfo,
    acc: &Accelerator,
    batch: u64,
    objective: etch_program::tiling::Objective,
    trace: bool,
) -> Result<(Program, Run, SimResult), ProgramError> {
    let facts = etch_program::lower::GraphFacts::of(model, info);
    simulate_with(model, info, &facts, acc, batch, objective, trace)
}

/// `simulate` with the graph's facts read beforehand (`GraphFacts::of` the same model), as a
/// sweep does for the many descriptions of one model.
pub fn simulate_with(
    model: &etch_ir::Model,
    info: &etch_ir::infer::GraphInfo,
    facts: &etch_program::lower::GraphFacts,
    acc: &Accelerator,
    batch: u64,
    objective: etch_program::tiling::Objective,
    trace: bool,
) -> Result<(Program, Run, SimResult), ProgramError> {
    let p = etch_program::compile_with(model, info, facts, acc, batch, objective)?;
    let run = etch_program::simulate(&p, acc)?;
    let r = result(&p, &run, acc, trace);
    Ok((p, run, r))
}

/// The report of a program's run.
pub fn result(p: &Program, run: &Run, acc: &Accelerator, trace: bool) -> SimResult {
    let pes = acc.pes();
    let mut layers = Vec::with_capacity(p.layers.len());
    for (l, t) in p.layers.iter().zip(&run.layers) {
        let cycles = t.end.saturating_sub(t.start);
        let mut notes = l.notes.clone();
        if let Some(tl) = &l.tiling {
            notes.push(format!(
                "tiles of {} image(s) x {} row(s), {} in / {} out channels, {}{}{}",
                tl.images,
                tl.rows,
                tl.in_channels,
                tl.out_channels,
                match tl.order {
                    etch_program::tiling::LoopOrder::WeightsOuter => "weights outer",
                    etch_program::tiling::LoopOrder::InputsOuter => "inputs outer",
                },
                if tl.whole_weights {
                    ", weights hold the whole reduction"
                } else {
                    ""
                },
                if tl.whole_inputs {
                    ", inputs hold the whole reduction"
                } else {
                    ""
                },
            ));
        }
        layers.push(LayerResult {
            name: l.name.clone(),
            op: l.op.clone(),
            unit: l.unit,
            start: t.start,
            end: t.end,
            cycles,
            compute_cycles: t.compute_cycles,
            stall_cycles: cycles.saturating_sub(t.compute_cycles),
            utilization: if cycles > 0 && l.unit == "array" {
                l.macs_performed as f64 / (cycles as f64 * pes as f64)
            } else {
                0.0
            },
            macs: l.macs,
            macs_performed: l.macs_performed,
            dram_read_bytes: t.dram_read_bytes,
            dram_write_bytes: t.dram_write_bytes,
            folds: l.folds,
            energy: t.energy,
            mapping: None,
            tiling: l.tiling,
            stalls: t.stalls.iter().map(|(k, v)| (*k, *v)).collect(),
            notes,
        });
    }
    let mut events = Vec::new();
    if trace {
        for (i, insn) in p.insns.iter().enumerate() {
            let (phase, bytes) = match &insn.kind {
                Kind::Load(d) if d.space == Space::Global => (Phase::GlobalLoad, d.bytes()),
                Kind::Store(d) if d.space == Space::Global => (Phase::GlobalStore, d.bytes()),
                Kind::Load(d) => (Phase::Load, d.bytes()),
                Kind::Store(d) => (Phase::Store, d.bytes()),
                Kind::Gemm(_) => (Phase::Stream, 0),
                Kind::Vector(v) if v.op == VectorOp::Requantize => (Phase::Vector, 0),
                Kind::Vector(_) => (Phase::Vector, 0),
            };
            events.push(Event {
                layer: insn.layer as usize,
                phase,
                start: run.timing.start[i],
                end: run.timing.end[i],
                bytes,
                step: i as u64,
            });
        }
    }
    SimResult {
        accelerator: acc.name.clone(),
        clock_mhz: acc.clock_mhz,
        pes,
        total_cycles: run.timing.total,
        layers,
        events,
    }
}
