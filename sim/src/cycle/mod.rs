//! The cycle-level simulator: an event-driven timeline at tile granularity. Each layer becomes a
//! sequence of steps (a fold, or a chunk of a fold whose stream does not fit the buffer); every
//! step has a DRAM load, compute phases (weight preload, skew fill, streaming, drain) and a
//! write-back, each with start and end cycles on its resource:
//! - one DRAM channel, one transfer at a time, each paying the latency plus bytes / bandwidth;
//! - the array (or the vector unit), one step at a time;
//! - the buffers: with double buffering the load of step i+1 goes into the free half while step i
//!   computes; without it, the load waits until step i is done with the buffer.
//!
//! The array waits for its data: those waits are the stall cycles, the first load of a layer (the
//! initial fill) included. A layer starts when the previous one has finished and its writes have
//! drained. An activation that fits the ifmap buffer stays on chip for the layers that read it (no
//! write and read back through DRAM); when it has to make room it is written out then.
//!
//! With `SimOptions::rtl` (`etch sim --rtl`), a quantized model whose layers all run in integers
//! (`crate::program` lowers it), batch 1, on a weight-stationary description, is timed instead as
//! the accelerator `etch compile --emit verilog` emits for it (`rtl`): a sequential controller, DMA load of the input codes, per layer the
//! gather / preload / stream folds and the requantization pass, MaxPool one tap a cycle, DMA store
//! of the output codes. `etch verify` checks that the RTL takes exactly these cycles. Energy per
//! layer stays the analytical model's. SCALE-Sim mode (`crate::scalesim`) is untouched by this.

pub mod energy;
pub mod program;
pub mod rtl;

use std::collections::HashMap;

use etch_hw::{Accelerator, Dataflow, EnergyTable, HwError};
use serde::Serialize;

use crate::map::{map_gemm, GemmWork, Layer, Mapping, VectorWork, Work};
pub use energy::EnergyBreakdown;

/// What a timeline event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Phase {
    Load,
    Store,
    /// Activations to and from the global buffer (on chip) instead of DRAM.
    GlobalLoad,
    GlobalStore,
    Preload,
    Fill,
    Stream,
    Drain,
    Vector,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Load => "dram load",
            Phase::Store => "dram store",
            Phase::GlobalLoad => "global load",
            Phase::GlobalStore => "global store",
            Phase::Preload => "preload",
            Phase::Fill => "fill (skew)",
            Phase::Stream => "stream",
            Phase::Drain => "drain",
            Phase::Vector => "vector",
        }
    }
    /// The unit of the load / compute / store machine that runs the event.
    pub fn unit(self) -> &'static str {
        match self {
            Phase::Load | Phase::GlobalLoad => "load unit",
            Phase::Store | Phase::GlobalStore => "store unit",
            _ => "compute unit",
        }
    }
    /// The resource the event occupies.
    pub fn resource(self) -> &'static str {
        match self {
            Phase::Load | Phase::Store => "dram",
            Phase::GlobalLoad | Phase::GlobalStore => "global buffer",
            Phase::Vector => "vector unit",
            _ => "array",
        }
    }
}

/// One interval on the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub layer: usize,
    pub phase: Phase,
    pub start: u64,
    pub end: u64,
    /// Bytes moved (loads and stores).
    pub bytes: u64,
    /// The fold (or vector step) the event belongs to.
    pub step: u64,
}

/// One layer's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerResult {
    pub name: String,
    pub op: String,
    /// "array", "vector", "fused" or "free".
    pub unit: &'static str,
    pub start: u64,
    pub end: u64,
    pub cycles: u64,
    pub compute_cycles: u64,
    pub stall_cycles: u64,
    /// MACs the array performs over cycles x PEs (array layers).
    pub utilization: f64,
    /// The layer's MACs (dense, as the model states them).
    pub macs: u64,
    /// The MACs the array performs: fewer when N:M hardware skips zeros or pruned output channels
    /// are dropped.
    pub macs_performed: u64,
    pub dram_read_bytes: u64,
    pub dram_write_bytes: u64,
    pub folds: u64,
    pub energy: EnergyBreakdown,
    pub mapping: Option<Mapping>,
    /// The accelerator program's tiling of the layer (array and depthwise layers).
    pub tiling: Option<etch_program::tiling::Tiling>,
    /// Cycles the compute unit waited inside the layer, by cause (`dram`, `buffer`,
    /// `dependency`); empty for the analytical and RTL timelines.
    pub stalls: std::collections::BTreeMap<&'static str, u64>,
    /// Why the numbers are what they are (compression effects, spills), for the report.
    pub notes: Vec<String>,
}

impl LayerResult {
    pub fn dram_bytes(&self) -> u64 {
        self.dram_read_bytes + self.dram_write_bytes
    }
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimResult {
    pub accelerator: String,
    pub clock_mhz: f64,
    pub pes: u64,
    pub total_cycles: u64,
    pub layers: Vec<LayerResult>,
    /// The timeline (only when asked for: `SimOptions::trace`).
    pub events: Vec<Event>,
}

impl SimResult {
    pub fn latency_s(&self) -> f64 {
        self.total_cycles as f64 / (self.clock_mhz * 1e6)
    }
    pub fn energy(&self) -> EnergyBreakdown {
        let mut e = EnergyBreakdown::default();
        for l in &self.layers {
            e.add(&l.energy);
        }
        e
    }
    pub fn macs(&self) -> u64 {
        self.layers.iter().map(|l| l.macs).sum()
    }
    /// MACs the array performs (after N:M skipping and dropped channels).
    pub fn macs_performed(&self) -> u64 {
        self.layers.iter().map(|l| l.macs_performed).sum()
    }
    /// Performed MACs over total cycles x PEs.
    pub fn utilization(&self) -> f64 {
        if self.total_cycles > 0 {
            self.macs_performed() as f64 / (self.total_cycles as f64 * self.pes as f64)
        } else {
            0.0
        }
    }
}

/// Options of a run.
#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    /// Keep every event (for `--trace`).
    pub trace: bool,
    /// Time the model as the accelerator `etch compile --emit verilog` emits for it (`rtl`),
    /// cycle for cycle, instead of the accelerator program (`etch sim --rtl`).
    pub rtl: bool,
    /// What the program's tiling search minimizes (`etch sim --objective`).
    pub objective: etch_program::tiling::Objective,
}

/// A run that cannot be done.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Hw(#[from] HwError),
    #[error("layer `{layer}` cannot be mapped onto `{hw}`: {message}")]
    Impossible {
        layer: String,
        hw: String,
        message: String,
    },
}

/// One step of a layer.
#[derive(Debug, Clone, Default)]
struct Step {
    load: u64,
    preload: u64,
    fill: u64,
    stream: u64,
    drain: u64,
    vector: u64,
    store: u64,
    fold: u64,
}

impl Step {
    fn compute(&self) -> u64 {
        self.preload + self.fill + self.stream + self.drain + self.vector
    }
}

/// The shared timeline state.
struct Timeline {
    dram_free: u64,
    unit_free: u64,
    bytes_per_cycle: f64,
    latency: u64,
    double: bool,
    trace: bool,
    events: Vec<Event>,
}

impl Timeline {
    fn transfer(&self, bytes: u64) -> u64 {
        if bytes == 0 {
            0
        } else {
            self.latency + (bytes as f64 / self.bytes_per_cycle).ceil() as u64
        }
    }

    fn push(&mut self, layer: usize, phase: Phase, start: u64, end: u64, bytes: u64, step: u64) {
        if self.trace && end > start {
            self.events.push(Event {
                layer,
                phase,
                start,
                end,
                bytes,
                step,
            });
        }
    }

    /// Runs a layer's steps; returns (start, end, compute cycles).
    fn run(&mut self, layer: usize, steps: &[Step]) -> (u64, u64, u64) {
        let start = self.dram_free.max(self.unit_free);
        self.unit_free = start;
        self.dram_free = start;
        let mut compute = 0;
        let mut load_end = vec![start; steps.len()];
        let issue_load = |tl: &mut Timeline, i: usize, buf_free: u64, load_end: &mut [u64]| {
            let bytes = steps[i].load;
            if bytes == 0 {
                load_end[i] = 0;
                return;
            }
            let s = tl.dram_free.max(buf_free);
            let e = s + tl.transfer(bytes);
            tl.dram_free = e;
            load_end[i] = e;
            tl.push(layer, Phase::Load, s, e, bytes, steps[i].fold);
        };
        if !steps.is_empty() {
            issue_load(self, 0, start, &mut load_end);
        }
        for i in 0..steps.len() {
            let st = &steps[i];
            let cs = self.unit_free.max(load_end[i]);
            let mut t = cs;
            for (phase, d) in [
                (Phase::Preload, st.preload),
                (Phase::Fill, st.fill),
                (Phase::Stream, st.stream),
                (Phase::Drain, st.drain),
                (Phase::Vector, st.vector),
            ] {
                self.push(layer, phase, t, t + d, 0, st.fold);
                t += d;
            }
            let ce = t;
            compute += st.compute();
            self.unit_free = ce;
            if i + 1 < steps.len() {
                let buf_free = if self.double { cs } else { ce };
                issue_load(self, i + 1, buf_free, &mut load_end);
            }
            if st.store > 0 {
                let s = self.dram_free.max(ce);
                let e = s + self.transfer(st.store);
                self.dram_free = e;
                self.push(layer, Phase::Store, s, e, st.store, st.fold);
                if !self.double {
                    // the single output buffer is busy until written out
                    self.unit_free = self.unit_free.max(e);
                }
            }
        }
        let end = self.unit_free.max(self.dram_free);
        self.unit_free = end;
        self.dram_free = end;
        (start, end, compute)
    }
}

/// Ceil of `total · num / den` in exact integers.
fn share(total: u64, num: u64, den: u64) -> u64 {
    if den == 0 {
        return 0;
    }
    ((total as u128 * num as u128).div_ceil(den as u128)) as u64
}

fn bytes(elems: u64, bits: u32) -> u64 {
    (elems as u128 * bits as u128).div_ceil(8) as u64
}

/// On-chip activations, oldest first: each is a block of bytes and the names it goes by (a
/// layout-only or fused layer gives the same bytes another name).
struct Resident {
    capacity: u64,
    values: Vec<(Vec<String>, u64)>,
}

impl Resident {
    fn has(&self, v: &str) -> bool {
        self.values.iter().any(|(n, _)| n.iter().any(|n| n == v))
    }
    /// Makes room for and keeps `v`: values no layer reads any more are dropped (free), then live
    /// ones are evicted oldest first; returns the bytes evicted (written back to DRAM).
    fn keep(&mut self, v: &str, b: u64, live: impl Fn(&str) -> bool) -> u64 {
        self.values
            .retain(|(names, _)| names.iter().any(|n| live(n)));
        let mut evicted = 0;
        while self.values.iter().map(|(_, x)| x).sum::<u64>() + b > self.capacity {
            if self.values.is_empty() {
                break;
            }
            evicted += self.values.remove(0).1;
        }
        self.values.push((vec![v.to_string()], b));
        evicted
    }
    fn alias(&mut self, from: &str, to: &str) {
        if let Some((names, _)) = self
            .values
            .iter_mut()
            .find(|(n, _)| n.iter().any(|n| n == from))
        {
            names.push(to.to_string());
        }
    }
}

/// Simulates the layers of a model on an accelerator.
pub fn simulate(
    layers: &[Layer],
    acc: &Accelerator,
    graph_outputs: &[String],
    opts: &SimOptions,
) -> Result<SimResult, SimError> {
    let table = acc.energy_table()?;
    let mut tl = Timeline {
        dram_free: 0,
        unit_free: 0,
        bytes_per_cycle: acc.dram.bytes_per_cycle,
        latency: acc.dram.latency_cycles as u64,
        double: acc.buffers.double_buffered,
        trace: opts.trace,
        events: Vec::new(),
    };
    let b = &acc.buffers;
    let mut resident = Resident {
        capacity: b
            .working_bytes(b.ifmap_kib)
            .min(b.working_bytes(b.ofmap_kib)),
        values: Vec::new(),
    };
    // how many layers still read each value
    let mut readers: HashMap<&str, usize> = HashMap::new();
    for l in layers {
        for i in &l.inputs {
            *readers.entry(i.as_str()).or_default() += 1;
        }
    }
    // values that leave the accelerator: the graph's outputs, and what a fused or layout-only
    // layer passes on to one (a Gemm's result under a final DequantizeLinear, ReLU or Reshape)
    let mut leaving: std::collections::HashSet<&str> =
        graph_outputs.iter().map(|o| o.as_str()).collect();
    for l in layers.iter().rev() {
        if matches!(l.work, Work::Fused | Work::Free) && leaving.contains(l.output.as_str()) {
            if let Some(i) = l.inputs.first() {
                leaving.insert(i.as_str());
            }
        }
    }
    let mut results = Vec::with_capacity(layers.len());
    for (li, layer) in layers.iter().enumerate() {
        let act_bits = layer.spec.act_bits;
        let out_bytes = bytes(layer.output_elems, act_bits);
        let is_output = leaving.contains(layer.output.as_str());
        let inputs_resident =
            !layer.inputs.is_empty() && layer.inputs.iter().all(|i| resident.has(i));
        // the output stays on chip when it fits and someone reads it
        let keep_output = !is_output
            && out_bytes <= resident.capacity
            && readers.get(layer.output.as_str()).copied().unwrap_or(0) > 0;
        let mut notes = Vec::new();
        let (unit, steps, macs, folds, mapping, mut energy) = match &layer.work {
            Work::Array(g) => {
                layer
                    .spec
                    .check(acc)
                    .map_err(|message| SimError::Impossible {
                        layer: layer.name.clone(),
                        hw: acc.name.clone(),
                        message,
                    })?;
                let m = map_gemm(g, &layer.spec, acc);
                let (steps, e) = array_steps(
                    g,
                    &m,
                    layer,
                    acc,
                    &table,
                    inputs_resident,
                    keep_output,
                    &mut notes,
                );
                ("array", steps, g.macs(), m.folds(), Some(m), e)
            }
            Work::Vector(v) => {
                let (steps, e) = vector_steps(v, layer, acc, &table, inputs_resident, keep_output);
                ("vector", steps, 0, 0, None, e)
            }
            Work::Fused => ("fused", Vec::new(), 0, 0, None, EnergyBreakdown::default()),
            Work::Free => {
                if let Some(i) = layer.inputs.first() {
                    resident.alias(i, &layer.output);
                }
                ("free", Vec::new(), 0, 0, None, EnergyBreakdown::default())
            }
        };
        let mut steps = steps;
        // this layer reads its inputs: one it is the last to read need not be kept
        for i in &layer.inputs {
            if let Some(n) = readers.get_mut(i.as_str()) {
                *n = n.saturating_sub(1);
            }
        }
        // make room on chip for this output: evicted activations are written back now
        if keep_output && !matches!(layer.work, Work::Free | Work::Fused) {
            let evicted = resident.keep(&layer.output, out_bytes, |v| {
                readers.get(v).copied().unwrap_or(0) > 0
            });
            if evicted > 0 {
                if let Some(last) = steps.last_mut() {
                    last.store += evicted;
                }
                energy.dram += evicted as f64 * table.dram_per_byte();
            }
        } else if matches!(layer.work, Work::Fused) {
            // the activation is applied on the way out: the value is the producer's
            if let Some(i) = layer.inputs.first() {
                resident.alias(i, &layer.output);
            }
        }
        let (start, end, compute) = tl.run(li, &steps);
        let read: u64 = steps.iter().map(|s| s.load).sum();
        let write: u64 = steps.iter().map(|s| s.store).sum();
        let cycles = end - start;
        let macs_performed = match (&layer.work, &mapping) {
            (Work::Array(g), Some(m)) => g.m * m.k_eff * m.n_eff * g.groups,
            _ => macs,
        };
        let utilization = if cycles > 0 && macs_performed > 0 {
            macs_performed as f64 / (cycles as f64 * acc.pes() as f64)
        } else {
            0.0
        };
        if inputs_resident && unit != "free" && unit != "fused" {
            notes.push("input read from on-chip buffer (kept from the previous layer)".into());
        }
        if keep_output && unit != "free" && unit != "fused" {
            notes.push("output kept on chip for the next layer".into());
        }
        results.push(LayerResult {
            name: layer.name.clone(),
            op: layer.op.clone(),
            unit,
            start,
            end,
            cycles,
            compute_cycles: compute,
            stall_cycles: cycles - compute,
            utilization,
            macs,
            macs_performed,
            dram_read_bytes: read,
            dram_write_bytes: write,
            folds,
            energy,
            mapping,
            tiling: None,
            stalls: Default::default(),
            notes,
        });
    }
    let total_cycles = results.last().map_or(0, |l| l.end);
    Ok(SimResult {
        accelerator: acc.name.clone(),
        clock_mhz: acc.clock_mhz,
        pes: acc.pes(),
        total_cycles,
        layers: results,
        events: tl.events,
    })
}

/// The steps and energy of a GEMM on the array.
#[allow(clippy::too_many_arguments)]
fn array_steps(
    g: &GemmWork,
    m: &Mapping,
    layer: &Layer,
    acc: &Accelerator,
    table: &EnergyTable,
    input_on_chip: bool,
    keep_output: bool,
    notes: &mut Vec<String>,
) -> (Vec<Step>, EnergyBreakdown) {
    let spec = &layer.spec;
    let (wbits, abits, accbits) = (spec.weight_bits, spec.act_bits, acc.pe.acc_bits());
    let bf = &acc.buffers;
    let (if_work, fl_work, of_work) = (
        bf.working_bytes(bf.ifmap_kib),
        bf.working_bytes(bf.filter_kib),
        bf.working_bytes(bf.ofmap_kib),
    );
    // stored weights: dense, N:M-compressed (values + log2(m)-bit indices), or sparse with 8-bit
    // relative indices (Han et al., Deep Compression, ICLR 2016) when that is smaller
    let dense_w = bytes(g.weight_elems, wbits);
    let (mut w_total, nm_used) = match (spec.nm, acc.sparse) {
        (Some((n, mm)), Some(hw)) if mm == hw.m && n <= hw.n => {
            let idx = 32 - (mm - 1).leading_zeros();
            (
                bytes(share(g.weight_elems, n as u64, mm as u64), wbits + idx),
                true,
            )
        }
        _ => (dense_w, false),
    };
    if !nm_used && spec.density < 0.5 {
        let nz = (g.weight_elems as f64 * spec.density).ceil() as u64;
        w_total = w_total.min(bytes(nz, wbits + 8));
    }
    if (spec.channel_density) < 1.0 {
        w_total = share(w_total, m.n_eff, g.n.max(1));
    }
    if g.weights_are_activations {
        w_total = bytes(g.weight_elems, abits);
    }
    let i_total = if input_on_chip {
        0
    } else {
        bytes(g.input_elems, abits)
    };
    let o_total = bytes(share(g.output_elems, m.n_eff, g.n.max(1)), abits);
    let passes = m.passes;
    let (w_pass, i_pass, o_pass) = (
        w_total.div_ceil(passes),
        i_total.div_ceil(passes),
        o_total.div_ceil(passes),
    );
    let i_pass_full = bytes(g.input_elems, abits).div_ceil(passes);
    let (r, c) = (m.rows, m.cols);
    let mut steps = Vec::new();
    let mut e = energy::Counter::new(acc, table, spec);
    let psum_elem_bytes = (accbits as u64).div_ceil(8);
    let mut spilled = false;
    let mut fold_id = 0u64;
    for _pass in 0..passes {
        for fc in 0..m.col_folds {
            let cols_used = (m.sc - fc * c).min(c);
            for fr in 0..m.row_folds {
                let rows_used = (m.sr - fr * r).min(r);
                let last_fr = fr + 1 == m.row_folds;
                let mut load = 0u64;
                let mut store = 0u64;
                // the streamed operand's bytes for this fold, which decide the chunks
                let (stream_bytes, stream_cap) = match m.dataflow {
                    Dataflow::WeightStationary => {
                        load += share(w_pass, rows_used * cols_used, m.sr * m.sc);
                        let inp = share(i_pass, rows_used, m.sr);
                        if fc == 0 || i_pass_full > if_work {
                            load += inp;
                        }
                        (share(i_pass_full, rows_used, m.sr), if_work)
                    }
                    Dataflow::OutputStationary => {
                        let inp = share(i_pass, rows_used, m.sr);
                        if fc == 0 || i_pass_full > if_work {
                            load += inp;
                        }
                        let wcol = share(w_pass, cols_used, m.sc);
                        if fr == 0 || wcol > fl_work {
                            load += wcol;
                        }
                        (
                            share(i_pass_full, rows_used, m.sr) + wcol,
                            if_work.min(fl_work),
                        )
                    }
                    Dataflow::InputStationary => {
                        load += share(i_pass, rows_used * cols_used, m.sr * m.sc);
                        let wrow = share(w_pass, rows_used, m.sr);
                        if fc == 0 || w_pass > fl_work {
                            load += wrow;
                        }
                        (wrow, fl_work)
                    }
                };
                // outputs: partial sums accumulate over row folds (WS, IS) in the ofmap buffer
                match m.dataflow {
                    Dataflow::OutputStationary => {
                        if !keep_output {
                            store += share(o_pass, rows_used * cols_used, m.sr * m.sc);
                        }
                    }
                    _ => {
                        let psum_elems = match m.dataflow {
                            Dataflow::WeightStationary => m.t * cols_used,
                            _ => cols_used * m.t,
                        };
                        let psum_bytes = psum_elems * psum_elem_bytes;
                        if psum_bytes > of_work && m.row_folds > 1 {
                            spilled = true;
                            if fr > 0 {
                                load += psum_bytes;
                            }
                            if !last_fr {
                                store += psum_bytes;
                            }
                        }
                        if last_fr && !keep_output {
                            store += share(o_pass, cols_used, m.sc);
                        }
                    }
                }
                let chunks = stream_bytes
                    .div_ceil(stream_cap.max(1))
                    .clamp(1, m.t.max(1));
                e.fold(m, rows_used, cols_used, fr);
                for ch in 0..chunks {
                    let t = share(m.t, ch + 1, chunks) - share(m.t, ch, chunks);
                    steps.push(Step {
                        load: if ch == 0 { share(load, 1, 1) } else { 0 },
                        preload: if ch == 0 { m.preload } else { 0 },
                        fill: if ch == 0 { m.fill } else { 0 },
                        stream: t,
                        drain: if ch + 1 == chunks { m.drain } else { 0 },
                        vector: 0,
                        store: if ch + 1 == chunks { store } else { 0 },
                        fold: fold_id,
                    });
                }
                // a fold streamed in chunks loads each chunk as it goes
                if chunks > 1 {
                    let n = steps.len();
                    let first = n - chunks as usize;
                    let total = steps[first].load;
                    for (k, s) in steps[first..].iter_mut().enumerate() {
                        s.load =
                            share(total, k as u64 + 1, chunks) - share(total, k as u64, chunks);
                    }
                }
                fold_id += 1;
            }
        }
    }
    let dram: u64 = steps.iter().map(|s| s.load + s.store).sum();
    e.dram_bytes(dram);
    e.macs(g, m);
    notes.extend(crate::map::spec::compression_notes(
        spec,
        acc,
        (g.k, if nm_used { m.k_eff } else { g.k }),
        (g.n, m.n_eff),
    ));
    if m.groups_per_pass > 1 {
        notes.push(format!("{} groups packed per pass", m.groups_per_pass));
    }
    if spilled {
        notes.push("partial sums spill to DRAM (ofmap buffer too small)".into());
    }
    (steps, e.finish())
}

/// The steps and energy of a vector-unit layer: chunks that fit the buffers.
fn vector_steps(
    v: &VectorWork,
    layer: &Layer,
    acc: &Accelerator,
    table: &EnergyTable,
    input_on_chip: bool,
    keep_output: bool,
) -> (Vec<Step>, EnergyBreakdown) {
    let abits = layer.spec.act_bits;
    let bf = &acc.buffers;
    let in_b = if input_on_chip {
        0
    } else {
        bytes(v.input_elems, abits)
    };
    let out_b = if keep_output {
        0
    } else {
        bytes(v.output_elems, abits)
    };
    let cap = bf
        .working_bytes(bf.ifmap_kib)
        .min(bf.working_bytes(bf.ofmap_kib))
        .max(1);
    let chunks = bytes(v.input_elems.max(v.output_elems), abits)
        .div_ceil(cap)
        .max(1);
    let cycles = v.ops.div_ceil(acc.vector.lanes as u64);
    let steps = (0..chunks)
        .map(|k| Step {
            load: share(in_b, k + 1, chunks) - share(in_b, k, chunks),
            vector: share(cycles, k + 1, chunks) - share(cycles, k, chunks),
            store: share(out_b, k + 1, chunks) - share(out_b, k, chunks),
            fold: k,
            ..Default::default()
        })
        .collect();
    let mut e = EnergyBreakdown {
        vector: v.ops as f64 * table.int_add(acc.pe.acc_bits()),
        dram: (in_b + out_b) as f64 * table.dram_per_byte(),
        ..Default::default()
    };
    let bank = |kib: u32| kib as f64 / bf.banks as f64 / if bf.double_buffered { 2.0 } else { 1.0 };
    e.sram = v.input_elems as f64 * table.sram_access(bank(bf.ifmap_kib), abits)
        + v.output_elems as f64 * table.sram_access(bank(bf.ofmap_kib), abits);
    (steps, e)
}

/// A verified model on an accelerator: the accelerator program compiled for it and run exactly
/// (`program`), or with `SimOptions::rtl` the emitted design's timeline.
pub fn simulate_model(
    model: &etch_ir::Model,
    info: &etch_ir::infer::GraphInfo,
    acc: &Accelerator,
    batch: u64,
    opts: &SimOptions,
) -> Result<SimResult, String> {
    if !opts.rtl {
        return program::simulate(model, info, acc, batch, opts.objective, opts.trace)
            .map(|r| r.2)
            .map_err(|e| e.to_string());
    }
    let analytical = simulate_analytical(model, info, acc, batch, opts)?;
    if batch > 1 {
        return Err(
            "the emitted accelerator runs one sample at a time; --rtl takes batch 1".into(),
        );
    }
    if let Some(why) = rtl::unsupported(acc) {
        return Err(why);
    }
    let p = crate::program::lower(model, info).map_err(|e| e.to_string())?;
    p.check_layer_chain().map_err(|e| e.to_string())?;
    Ok(emitted_timeline(&p, acc, &analytical, opts))
}

/// The analytical model (one fixed loop order per dataflow, activations kept on chip when they
/// fit): what `etch sim` reported before the accelerator program, kept as the energy of
/// `--rtl`'s layers until the emitted design runs the program (and retired with it).
pub fn simulate_analytical(
    model: &etch_ir::Model,
    info: &etch_ir::infer::GraphInfo,
    acc: &Accelerator,
    batch: u64,
    opts: &SimOptions,
) -> Result<SimResult, String> {
    // the simulator's state grows with the tensors: refuse absurd ones before building it
    etch_ir::limits::check_values(model, info).map_err(|e| e.to_string())?;
    let specs = crate::map::specs_from_graph(model, info, acc);
    let layers = crate::map::extract(model, info, batch, acc, &specs).map_err(|e| e.to_string())?;
    let outputs: Vec<String> = model.graph.outputs.iter().map(|o| o.name.clone()).collect();
    simulate(&layers, acc, &outputs, opts).map_err(|e| e.to_string())
}

/// The timeline of the accelerator `etch compile --emit verilog` writes for an integer program
/// (`rtl`): one entry for the input's DMA load, one per program step, one for the output's store.
/// Cycles are the RTL's exactly; energy per layer is the analytical model's for the same layer.
fn emitted_timeline(
    p: &crate::program::IntProgram,
    acc: &Accelerator,
    analytical: &SimResult,
    opts: &SimOptions,
) -> SimResult {
    use crate::program::IntOp;
    let (rows, cols) = (acc.rows() as u64, acc.cols() as u64);
    let (load, step_cycles, store, total) = rtl::timeline(p, acc);
    let (inb, outb) = rtl::io_bytes(p);
    let mut layers = Vec::new();
    let mut events = Vec::new();
    let mut t = 0u64;
    let mut push = |name: String,
                    op: String,
                    unit: &'static str,
                    cycles: u64,
                    (macs, performed): (u64, u64),
                    folds: u64,
                    (read, write): (u64, u64),
                    layers: &mut Vec<LayerResult>| {
        let energy = analytical
            .layers
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.energy)
            .unwrap_or_default();
        let dma = unit == "dma";
        let phase = match unit {
            "dma" if write > 0 => Phase::Store,
            "dma" => Phase::Load,
            "vector" => Phase::Vector,
            _ => Phase::Stream,
        };
        if opts.trace && cycles > 0 {
            events.push(Event {
                layer: layers.len(),
                phase,
                start: t,
                end: t + cycles,
                bytes: read + write,
                step: 0,
            });
        }
        layers.push(LayerResult {
            name,
            op,
            unit,
            start: t,
            end: t + cycles,
            cycles,
            compute_cycles: if dma { 0 } else { cycles },
            stall_cycles: if dma { cycles } else { 0 },
            utilization: if cycles > 0 && macs > 0 {
                macs as f64 / (cycles as f64 * acc.pes() as f64)
            } else {
                0.0
            },
            macs,
            macs_performed: performed,
            dram_read_bytes: read,
            dram_write_bytes: write,
            folds,
            energy,
            mapping: None,
            tiling: None,
            stalls: Default::default(),
            notes: vec!["timeline of the emitted RTL (etch compile --emit verilog)".into()],
        });
        t += cycles;
    };
    push(
        format!("{} (dma load)", p.input),
        "Load".into(),
        "dma",
        load,
        (0, 0),
        0,
        (inb, 0),
        &mut layers,
    );
    for (s, &c) in p.steps.iter().zip(&step_cycles) {
        let g = rtl::step_geom(s, rows, cols);
        let (unit, op, macs, folds) = match (&s.op, g) {
            (
                IntOp::Conv { .. } | IntOp::Gemm { .. },
                rtl::StepGeom::Array {
                    p: px,
                    k,
                    n,
                    row_folds,
                    col_folds,
                    ..
                },
            ) => (
                "array",
                if matches!(s.op, IntOp::Conv { .. }) {
                    "Conv"
                } else {
                    "Gemm"
                },
                (px * k * n, row_folds * col_folds * rows * cols * px),
                row_folds * col_folds,
            ),
            (IntOp::MaxPool { .. }, _) => ("vector", "MaxPool", (0, 0), 0),
            _ => ("free", "Reshape", (0, 0), 0),
        };
        push(
            s.name.clone(),
            op.into(),
            unit,
            c,
            macs,
            folds,
            (0, 0),
            &mut layers,
        );
    }
    push(
        format!("{} (dma store)", p.output),
        "Store".into(),
        "dma",
        store,
        (0, 0),
        0,
        (0, outb),
        &mut layers,
    );
    debug_assert_eq!(t, total);
    SimResult {
        accelerator: acc.name.clone(),
        clock_mhz: acc.clock_mhz,
        pes: acc.pes(),
        total_cycles: total,
        layers,
        events,
    }
}
