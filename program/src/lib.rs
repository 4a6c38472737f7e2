//! etch's accelerator program: the one model of the hardware. A model becomes typed instructions
//! for a decoupled load / compute / store machine (`isa`); the compiler lowers the graph to
//! layers (`lower`), tiles each under the description's buffers (`tiling`) and emits the
//! instruction stream with its dependency tokens (`schedule`); `machine` times it exactly and
//! `energy` counts its accesses. `etch sim` reports this program, and the emitted RTL runs it.
//! `docs/accelerator.md` is the instruction set and its timing rules, written down.

pub mod encode;
pub mod energy;
pub mod isa;
pub mod lower;
pub mod machine;
pub mod place;
pub mod schedule;
pub mod tiling;

use std::collections::{HashMap, HashSet};

use etch_hw::{Accelerator, EnergyBreakdown, HwError};
use etch_ir::infer::GraphInfo;
use etch_ir::Model;
use serde::Serialize;

use crate::isa::{Insn, Kind, Unit, VectorOp};
use crate::lower::{Layer, Work};
use crate::machine::{Machine, Stall, Timing};
use crate::schedule::{Addrs, Emitter, VectorWork};
use crate::tiling::{Arith, ConvShape, Objective, SlotBytes, Spaces, Tiling};

/// Why a model cannot become a program for a description.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProgramError {
    #[error("{0}")]
    Limit(String),
    #[error("{0}")]
    Lower(#[from] lower::MapError),
    #[error("{0}")]
    Hw(#[from] HwError),
    #[error("layer `{layer}` ({op}): {message}")]
    Layer {
        layer: String,
        op: String,
        message: String,
    },
    #[error("layer `{layer}` cannot be mapped onto `{hw}`: {message}")]
    Impossible {
        layer: String,
        hw: String,
        message: String,
    },
    #[error("{0}")]
    Deadlock(#[from] machine::Deadlock),
}

/// What the program does for one graph node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProgramLayer {
    pub name: String,
    pub op: String,
    /// "array", "vector", "fused" (into the previous layer's requantization) or "free" (layout
    /// only: addressing).
    pub unit: &'static str,
    pub arith: Arith,
    /// The layer's MACs as the model states them, and those the array performs.
    pub macs: u64,
    pub macs_performed: u64,
    pub tiling: Option<Tiling>,
    /// The array layer's geometry as the tiler walks it.
    pub shape: Option<ConvShape>,
    /// Where its activations and weights are (array and vector layers).
    pub addrs: Option<Addrs>,
    /// Folds the array runs (array layers).
    pub folds: u64,
    /// A Concat whose inputs the placement made in their runs of its output (`place::Placement::gathered`).
    pub gathered: bool,
    pub notes: Vec<String>,
}

/// A compiled model: the layers and the instruction stream (program order; each unit runs its
/// own instructions in this order).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Program {
    pub machine: Machine,
    pub objective: Objective,
    pub layers: Vec<ProgramLayer>,
    pub insns: Vec<Insn>,
}

/// A layer's arithmetic on a description: the spec's widths and kinds, with what the hardware
/// makes of N:M sparsity and pruned channels.
pub fn arith_of(layer: &Layer, acc: &Accelerator) -> Arith {
    let spec = &layer.spec;
    let k_ratio = match (spec.nm, acc.sparse) {
        (Some((n, m)), Some(hw)) if m == hw.m && n <= hw.n => n as f64 / m as f64,
        _ => 1.0,
    };
    let idx_bits = |m: u32| 32 - (m.max(2) - 1).leading_zeros();
    let store = match (spec.nm, acc.sparse) {
        (Some((n, m)), Some(hw)) if m == hw.m && n <= hw.n => {
            n as f64 / m as f64 * (spec.weight_bits + idx_bits(m)) as f64 / spec.weight_bits as f64
        }
        // unstructured zeros: values with 8-bit relative indices when that is smaller
        _ if spec.density < 0.5 => {
            (spec.density * (spec.weight_bits + 8) as f64 / spec.weight_bits as f64).min(1.0)
        }
        _ => 1.0,
    };
    Arith {
        kind: spec.kind,
        weight_bits: spec.weight_bits,
        act_bits: spec.act_bits,
        acc_bits: acc.pe.acc_bits(),
        k_ratio,
        n_ratio: spec.channel_density.clamp(0.0, 1.0),
        weight_store_ratio: store,
        density: spec.density,
    }
}

/// The tiler's view of an array layer (`None` for any other).
pub fn conv_shape(layer: &Layer) -> Option<ConvShape> {
    let Work::Array(g) = &layer.work else {
        return None;
    };
    let groups = g.groups.max(1);
    Some(match &g.conv {
        Some(c) => {
            let nd = c.out.len().max(1);
            let prod = |v: &[i64]| v.iter().map(|&x| x.max(1) as u64).product::<u64>();
            let (out_h, out_w) = (prod(&c.out[..nd - 1]), c.out[nd - 1].max(1) as u64);
            let (in_h, in_w) = (
                prod(&c.input[..nd.min(c.input.len()).saturating_sub(1)]),
                c.input.last().copied().unwrap_or(1).max(1) as u64,
            );
            let images = g.m / (out_h * out_w).max(1);
            ConvShape {
                groups: if c.depthwise { 1 } else { groups },
                images: images.max(1),
                out_h,
                out_w,
                in_h,
                in_w,
                kernel_h: prod(&c.kernel[..nd - 1]),
                kernel_area: prod(&c.kernel),
                stride_h: c.stride.first().copied().unwrap_or(1).max(1) as u64,
                dilation_h: c.dilation.first().copied().unwrap_or(1).max(1) as u64,
                pad_h: c.pads.first().map_or(0, |p| p.0.max(0) as u64),
                // depthwise: each output channel reads its own input channel
                cin: if c.depthwise {
                    1
                } else {
                    c.in_channels / groups
                },
                cout: if c.depthwise { groups } else { g.n },
                depthwise: c.depthwise,
                weights_are_activations: false,
            }
        }
        None => ConvShape {
            groups,
            images: g.m.max(1),
            out_h: 1,
            out_w: 1,
            in_h: 1,
            in_w: 1,
            kernel_h: 1,
            kernel_area: 1,
            stride_h: 1,
            dilation_h: 1,
            pad_h: 0,
            cin: g.k.max(1),
            cout: g.n.max(1),
            depthwise: false,
            weights_are_activations: g.weights_are_activations,
        },
    })
}

/// The most candidates the search times exactly for one layer: a guard on compile time for
/// layers where many tilings are equally good (the bound then rarely prunes), never reached on
/// the shipped models.
const MAX_EXACT: usize = 512;

/// The most tiles a vector layer's candidate sizes are cut into (besides the largest size that
/// fits): each candidate is timed exactly.
const MAX_VECTOR_TILES: u64 = 1024;

/// The most cycles for which `wins` holds, given that it holds up to some count and not after;
/// `None` when it holds for none.
fn last_winning(wins: impl Fn(u64) -> bool) -> Option<u64> {
    if !wins(0) {
        return None;
    }
    if wins(u64::MAX) {
        return Some(u64::MAX);
    }
    let (mut lo, mut hi) = (0u64, u64::MAX);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if wins(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(lo)
}

/// The compile context of one model on one description.
struct Compiler {
    /// Tilings already chosen, by the layer's shape, arithmetic and spaces: a network repeats
    /// its layers (ResNet's blocks), and the search's answer depends on nothing else.
    chosen: std::cell::RefCell<HashMap<(ConvShape, tiling::ArithKey, Spaces), Tiling>>,
    /// Vector tile sizes already chosen, likewise (ResNet's residual Adds repeat).
    chosen_vector: std::cell::RefCell<HashMap<(VectorWork, tiling::ArithKey, Spaces), u64>>,
    /// The instructions of the candidate being timed (one buffer for all of them).
    scratch: std::cell::RefCell<Vec<Insn>>,
    machine: Machine,
    slot: SlotBytes,
    table: etch_hw::EnergyTable,
    costs: energy::Costs,
    objective: Objective,
}

/// A tiling timed exactly: the objective's score, then DRAM bytes and cycles break ties, then
/// the tiling itself (so the choice never depends on the order candidates were made in).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Timed {
    score: f64,
    bytes: u64,
    cycles: u64,
    tiling: Tiling,
}

impl Timed {
    fn better_than(&self, o: &Timed) -> bool {
        self.score
            .total_cmp(&o.score)
            .then(self.bytes.cmp(&o.bytes))
            .then(self.cycles.cmp(&o.cycles))
            .then(self.tiling.cmp(&o.tiling))
            .is_lt()
    }
}

impl Compiler {
    /// The static energy of `cycles` cycles.
    fn static_energy(&self, cycles: u64) -> f64 {
        self.costs.static_per_cycle * cycles as f64
    }

    /// Times one layer's instructions as `emit` writes them (into the scratch buffer), as the
    /// program will hold them, knowing they take at least `min_cycles`. Gives their cycles,
    /// energy (0 when the objective does not read it) and DRAM bytes, or `None` when they
    /// cannot win: `wins`, told the cycles, the energy (static energy included) and the DRAM
    /// bytes, says no from some cycle count on, and the run passes that count. `wins` must
    /// stay false once it turns false, and never turn true with more energy or bytes (every
    /// objective is monotone in all three).
    fn time_layer(
        &self,
        a: &Arith,
        min_cycles: u64,
        emit: impl FnOnce(&mut Emitter),
        wins: impl Fn(u64, f64, u64) -> bool,
    ) -> Result<Option<(u64, f64, u64)>, machine::Deadlock> {
        // no run shorter than `min_cycles` (with no energy but static, no DRAM bytes) wins:
        // then none does, and there is nothing to emit
        if !wins(min_cycles, self.static_energy(min_cycles), 0) {
            return Ok(None);
        }
        let mut em = Emitter::with_buffer(&self.machine, self.scratch.take());
        em.begin_layer(0);
        emit(&mut em);
        em.end_layer();
        let insns = em.insns;
        // the energy only where the objective reads it (else 0)
        let (mut energy, mut bytes) = (0.0, 0);
        let costs = self
            .objective
            .needs_energy()
            .then(|| self.costs.layer(a, &self.machine));
        for i in &insns {
            if let Some(c) = &costs {
                energy += c.insn(i).total();
            }
            if let Kind::Load(d) | Kind::Store(d) = &i.kind {
                bytes += d.dram_bytes();
            }
        }
        let wins_at = |cycles: u64| wins(cycles, energy + self.static_energy(cycles), bytes);
        let timed = match last_winning(wins_at) {
            None => Ok(None),
            Some(cutoff) => machine::total_within(&self.machine, &insns, cutoff)
                .map(|r| r.map(|c| (c, energy + self.static_energy(c), bytes))),
        };
        *self.scratch.borrow_mut() = insns;
        timed
    }

    /// A tiling's exact cycles (the layer alone: layers do not overlap), energy and DRAM bytes,
    /// unless it cannot beat `best`.
    fn time(
        &self,
        s: &ConvShape,
        a: &Arith,
        t: &Tiling,
        spaces: Spaces,
        best: Option<&Timed>,
    ) -> Result<Option<Timed>, machine::Deadlock> {
        let timed = |(cycles, energy, bytes): (u64, f64, u64)| Timed {
            score: self.objective.score(cycles, energy, bytes),
            bytes,
            cycles,
            tiling: *t,
        };
        let at = Addrs {
            spaces,
            ..Addrs::default()
        };
        let r = self.time_layer(
            a,
            0,
            |em| em.conv(s, a, t, at),
            |c, e, b| best.is_none_or(|best| timed((c, e, b)).better_than(best)),
        )?;
        Ok(r.map(timed))
    }

    /// The best tile size of vector work by the objective, timed exactly: every size that fits
    /// the slots among even splits (up to 32 tiles), powers of two (up to `MAX_VECTOR_TILES`
    /// tiles) and the largest that fits, the same sizes on any
    /// description, more with larger buffers. `Err(None)`: not even one element fits.
    fn vector_tile(
        &self,
        w: &VectorWork,
        a: &Arith,
        spaces: Spaces,
    ) -> Result<u64, Option<machine::Deadlock>> {
        let key = (*w, a.key(), spaces);
        if let Some(t) = self.chosen_vector.borrow().get(&key) {
            return Ok(*t);
        }
        let t = self.vector_search(w, a, spaces)?;
        self.chosen_vector.borrow_mut().insert(key, t);
        Ok(t)
    }

    /// The search behind `vector_tile`.
    fn vector_search(
        &self,
        w: &VectorWork,
        a: &Arith,
        spaces: Spaces,
    ) -> Result<u64, Option<machine::Deadlock>> {
        let e = w.elements;
        let fits = |t: u64| {
            let input = match w.rows {
                Some(r) => r.input_bound(t),
                None => (t * w.input.0).div_ceil(w.input.1.max(1)),
            };
            a.act_bytes(input) <= self.slot.input && a.act_bytes(t) <= self.slot.output
        };
        // the largest size that fits (the slot sizes are monotone in it)
        let (mut lo, mut hi) = (0u64, e);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        let largest = lo;
        let mut sizes: Vec<u64> = (1..=32).map(|j| e.div_ceil(j)).collect();
        let mut p = 1;
        while p < e {
            if p.saturating_mul(MAX_VECTOR_TILES) >= e {
                sizes.push(p);
            }
            p *= 2;
        }
        sizes.push(largest);
        // a pooling takes whole output planes when one fits (windows that do not tile the
        // input), else whole output rows when one fits
        let align = match w.rows {
            Some(r) if !r.exact && largest >= r.out_plane() => r.out_plane(),
            Some(r) if r.out_w > 0 && largest >= r.out_w => r.out_w,
            _ => 1,
        };
        let largest = largest / align * align;
        for t in sizes.iter_mut() {
            *t = *t / align * align;
        }
        sizes.retain(|&t| t > 0 && t <= largest);
        sizes.sort_unstable();
        sizes.dedup();
        let mut best: Option<(f64, u64, u64)> = None;
        // the largest first: the smallest, with the most tiles to emit, then rarely need emitting
        for t in sizes.into_iter().rev() {
            let at = Addrs {
                spaces,
                ..Addrs::default()
            };
            let key = |(cycles, energy, bytes): (u64, f64, u64)| {
                (self.objective.score(cycles, energy, bytes), cycles, t)
            };
            let better = |k: (f64, u64, u64), b: (f64, u64, u64)| {
                k.0.total_cmp(&b.0)
                    .then((k.1, k.2).cmp(&(b.1, b.2)))
                    .is_lt()
            };
            // at least one input load a tile, and a slot is loaded again only after the tile
            // before it there has come in (a cycle at least, then the latency) and been read
            let loads = e.div_ceil(t);
            let latency = self.machine.latency(spaces.input);
            let min_cycles = ((loads - 1) / self.machine.slots.max(1) as u64 + 1) * (1 + latency);
            let r = self
                .time_layer(
                    a,
                    min_cycles,
                    |em| em.vector(w, t, a, at),
                    |c, e, b| best.is_none_or(|best| better(key((c, e, b)), best)),
                )
                .map_err(Some)?;
            if let Some(r) = r {
                best = Some(key(r));
            }
        }
        best.map(|b| b.2).ok_or(None)
    }

    /// The best tiling of an array layer by the objective: candidates in the order of their
    /// bound, timed exactly until the bound passes the best exact score.
    fn tile(
        &self,
        layer: &Layer,
        s: &ConvShape,
        a: &Arith,
        spaces: Spaces,
    ) -> Result<Tiling, ProgramError> {
        let key = (*s, a.key(), spaces);
        if let Some(t) = self.chosen.borrow().get(&key) {
            return Ok(*t);
        }
        let t = self.search(layer, s, a, spaces)?;
        self.chosen.borrow_mut().insert(key, t);
        Ok(t)
    }

    /// The search behind `tile`.
    fn search(
        &self,
        layer: &Layer,
        s: &ConvShape,
        a: &Arith,
        spaces: Spaces,
    ) -> Result<Tiling, ProgramError> {
        let cands = tiling::candidates(s, a, &self.slot);
        if cands.is_empty() {
            let t = Tiling {
                images: 1,
                rows: 1,
                in_channels: 1,
                out_channels: 1,
                order: tiling::LoopOrder::WeightsOuter,
                whole_weights: false,
                whole_inputs: false,
            };
            let b = t.bytes(s, a);
            return Err(ProgramError::Layer {
                layer: layer.name.clone(),
                op: layer.op.clone(),
                message: format!(
                    "even its smallest tile (one output row, one channel) needs {} bytes of input, {} of weights and {} of output buffer, but a slot holds {}, {} and {}; give the description larger buffers",
                    b.input, b.weight, b.output, self.slot.input, self.slot.weight, self.slot.output
                ),
            });
        }
        let bound = tiling::EnergyBound::of(&self.table, s, a);
        // each candidate's lower bound on what `Timed` compares (its score, its DRAM bytes and
        // its cycles), first coarse: only its size's compute cycles (no DRAM), worked out once
        // per size (the candidates come size by size, each size's variants together); a
        // candidate popped with its coarse bound gets its tally's and goes back in the heap
        let mut works: Vec<tiling::TileWork> = Vec::new();
        let mut last: Option<Tiling> = None;
        let same_size = |u: &Tiling, t: &Tiling| {
            (u.images, u.rows, u.in_channels, u.out_channels)
                == (t.images, t.rows, t.in_channels, t.out_channels)
        };
        let mut ranked: std::collections::BinaryHeap<Ranked> = cands
            .into_iter()
            .map(|t| {
                if !last.is_some_and(|u| same_size(&u, &t)) {
                    works.push(tiling::tile_work(&t, s, a, &self.machine));
                    last = Some(t);
                }
                let cycles = works[works.len() - 1].compute_cycles(s);
                let score =
                    self.objective
                        .score(cycles, bound.macs_pj + self.static_energy(cycles), 0);
                Ranked {
                    bound: (score, 0, cycles),
                    tiling: t,
                    coarse: Some(works.len() - 1),
                }
            })
            .collect();
        // lowest bound first, until the bound passes the best timed: a heap, since the search
        // stops after a few
        let mut best: Option<Timed> = None;
        let mut k = 0;
        while let Some(Ranked {
            bound: b,
            tiling: t,
            coarse,
        }) = ranked.pop()
        {
            // `Timed::better_than` of the bound (the tiling breaks ties): popped in this order,
            // every candidate left is beaten too
            let beaten = |best: &Timed| {
                b.0.total_cmp(&best.score)
                    .then((b.1, b.2, t).cmp(&(best.bytes, best.cycles, best.tiling)))
                    .is_gt()
            };
            if k >= MAX_EXACT || best.as_ref().is_some_and(beaten) {
                break;
            }
            if let Some(w) = coarse {
                let x = tiling::tally_with(&works[w], &t, s, a, &self.machine, spaces);
                let cycles = x.cycles_bound();
                let score = self.objective.score(
                    cycles,
                    bound.energy(&x) + self.static_energy(cycles),
                    x.dram_bytes(),
                );
                ranked.push(Ranked {
                    bound: (score, x.dram_bytes(), cycles),
                    tiling: t,
                    coarse: None,
                });
                continue;
            }
            k += 1;
            if let Some(timed) = self.time(s, a, &t, spaces, best.as_ref())? {
                best = Some(timed);
            }
        }
        Ok(best.expect("at least one candidate").tiling)
    }
}

/// Compiles a verified model for a description: lowers every node, tiles every array layer by
/// the objective, and emits the instruction stream.
pub fn compile(
    model: &Model,
    info: &GraphInfo,
    acc: &Accelerator,
    batch: u64,
    objective: Objective,
) -> Result<Program, ProgramError> {
    compile_with(
        model,
        info,
        &lower::GraphFacts::of(model, info),
        acc,
        batch,
        objective,
    )
}

/// `compile` with the graph's facts read beforehand (`GraphFacts::of` the same model): a sweep
/// reads them once for many descriptions.
pub fn compile_with(
    model: &Model,
    info: &GraphInfo,
    facts: &lower::GraphFacts,
    acc: &Accelerator,
    batch: u64,
    objective: Objective,
) -> Result<Program, ProgramError> {
    etch_ir::limits::check_values(model, info).map_err(|e| ProgramError::Limit(e.to_string()))?;
    let specs = facts.specs(acc);
    let layers = lower::extract(model, info, batch, acc, &specs)?;
    let table = acc.energy_table()?;
    let c = Compiler {
        chosen: Default::default(),
        chosen_vector: Default::default(),
        scratch: Default::default(),
        machine: Machine::of(acc),
        slot: SlotBytes::of(acc),
        costs: energy::Costs::of(acc, &table),
        table,
        objective,
    };
    let mut em = Emitter::new(&c.machine);
    let mut out = Vec::with_capacity(layers.len());
    // activations in the global buffer or DRAM; weights in DRAM after them, each its own region
    let ariths: Vec<Arith> = layers.iter().map(|l| arith_of(l, acc)).collect();
    let graph_outputs: HashSet<&str> = model
        .graph
        .outputs
        .iter()
        .map(|o| o.name.as_str())
        .collect();
    let placement = place::place(
        &layers,
        |i| ariths[i].act_bytes(layers[i].output_elems),
        |i| {
            let elems = match &layers[i].work {
                Work::Array(g) => g.input_elems,
                Work::Vector(v) => v.input_elems,
                _ => layers[i].output_elems,
            };
            ariths[i].act_bytes(elems)
        },
        &graph_outputs,
        c.machine.global_bytes,
    );
    let mut next_weight = placement.dram_end;
    let mut alloc_weights = |bytes: u64| {
        let a = next_weight;
        next_weight += place::aligned(bytes);
        a
    };
    let place_of = |name: &str| placement.of(name).expect("every activation is placed");
    for (li, layer) in layers.iter().enumerate() {
        let a = ariths[li];
        let err = |message: String| ProgramError::Layer {
            layer: layer.name.clone(),
            op: layer.op.clone(),
            message,
        };
        let (input, output) = (
            layer
                .inputs
                .first()
                .map(|i| place_of(i))
                .unwrap_or(place::Place {
                    space: isa::Space::Dram,
                    addr: 0,
                }),
            place_of(&layer.output),
        );
        let spaces = Spaces {
            input: input.space,
            output: output.space,
        };
        let mut pl = ProgramLayer {
            name: layer.name.clone(),
            op: layer.op.clone(),
            unit: "free",
            arith: a,
            macs: 0,
            macs_performed: 0,
            tiling: None,
            shape: None,
            addrs: None,
            folds: 0,
            gathered: placement.gathered.contains(&layer.output),
            notes: Vec::new(),
        };
        let first = em.insns.len();
        em.begin_layer(li as u32);
        match &layer.work {
            Work::Array(_) => {
                layer
                    .spec
                    .check(acc)
                    .map_err(|message| ProgramError::Impossible {
                        layer: layer.name.clone(),
                        hw: acc.name.clone(),
                        message,
                    })?;
                let s = conv_shape(layer).expect("an array layer");
                let t = c.tile(layer, &s, &a, spaces)?;
                let at = Addrs {
                    input: input.addr,
                    second: 0,
                    weight: alloc_weights(s.weight_region_bytes(&a, &t)),
                    output: output.addr,
                    spaces,
                };
                em.conv(&s, &a, &t, at);
                pl.unit = if s.depthwise { "vector" } else { "array" };
                pl.macs = s.macs();
                pl.tiling = Some(t);
                pl.shape = Some(s);
                pl.addrs = Some(at);
            }
            Work::Vector(v) => {
                let op = match layer.op.as_str() {
                    "MaxPool" | "AveragePool" | "GlobalAveragePool" | "GlobalMaxPool"
                    | "ReduceMean" | "ReduceMax" | "ReduceMin" | "ReduceSum" | "ReduceL2" => {
                        VectorOp::Pool
                    }
                    "Add" | "Sub" | "Mul" | "Div" | "BatchNormalization" => VectorOp::Elementwise,
                    _ => VectorOp::Table,
                };
                let out_elems = v.output_elems.max(1);
                // two operands of the output's size in one space: each tile loads both runs
                let second = match layer.inputs.as_slice() {
                    [_, b] if op == VectorOp::Elementwise && v.input_elems == 2 * out_elems => {
                        placement.of(b).filter(|p| p.space == input.space)
                    }
                    _ => None,
                };
                let work = VectorWork {
                    op,
                    elements: out_elems,
                    input: (v.input_elems.max(1), out_elems),
                    ops: (v.ops.max(1), out_elems),
                    rows: v.rows.filter(|_| op == VectorOp::Pool),
                    binary: second.is_some(),
                };
                let tile = c.vector_tile(&work, &a, spaces).map_err(|e| match e {
                    Some(d) => ProgramError::Deadlock(d),
                    None => err(format!(
                        "one output element needs {} bytes of input, more than an input slot's {}",
                        a.act_bytes(v.input_elems.max(1).div_ceil(out_elems)),
                        c.slot.input
                    )),
                })?;
                let at = Addrs {
                    input: input.addr,
                    second: second.map_or(0, |p| p.addr),
                    weight: 0,
                    output: output.addr,
                    spaces,
                };
                em.vector(&work, tile, &a, at);
                pl.unit = "vector";
                pl.addrs = Some(at);
            }
            Work::Fused => pl.unit = "fused",
            Work::Free => {}
        }
        em.end_layer();
        for i in &em.insns[first..] {
            if let Kind::Gemm(g) = &i.kind {
                pl.macs_performed += g.m * g.k * g.n;
                pl.folds += g.k.div_ceil(c.machine.rows) * g.n.div_ceil(c.machine.cols);
            }
            if let Kind::Vector(v) = &i.kind {
                if v.op == VectorOp::Depthwise {
                    pl.macs_performed += v.ops;
                }
            }
        }
        if let Some(s) = conv_shape(layer).filter(|s| !s.depthwise) {
            let k = s.cin * s.kernel_area;
            pl.notes = lower::spec::compression_notes(
                &layer.spec,
                acc,
                (k, a.k_run(k)),
                (s.cout, a.n_run(s.cout)),
            );
        }
        out.push(pl);
    }
    Ok(Program {
        machine: c.machine,
        objective,
        layers: out,
        insns: em.insns,
    })
}

/// One layer's share of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LayerTiming {
    /// First instruction's start and last instruction's end (0, 0 for a layer with none).
    pub start: u64,
    pub end: u64,
    /// Cycles the compute unit was busy with the layer.
    pub compute_cycles: u64,
    /// Cycles the compute unit waited inside the layer, by cause.
    pub stalls: HashMap<&'static str, u64>,
    pub dram_read_bytes: u64,
    pub dram_write_bytes: u64,
    /// Bytes the layer's activations moved to and from the global buffer instead of DRAM.
    pub global_bytes: u64,
    pub energy: EnergyBreakdown,
}

/// The exact run of a program: the timing of every instruction and each layer's share.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    pub timing: Timing,
    pub layers: Vec<LayerTiming>,
}

/// Times the program and counts its energy.
pub fn simulate(p: &Program, acc: &Accelerator) -> Result<Run, ProgramError> {
    let timing = machine::run(&p.machine, &p.insns)?;
    let costs = energy::Costs::of(acc, &acc.energy_table()?);
    let layer_costs: Vec<_> = p
        .layers
        .iter()
        .map(|l| costs.layer(&l.arith, &p.machine))
        .collect();
    let mut layers = vec![LayerTiming::default(); p.layers.len()];
    let mut seen = vec![false; p.layers.len()];
    for (i, insn) in p.insns.iter().enumerate() {
        let l = &mut layers[insn.layer as usize];
        let (s, e) = (timing.start[i], timing.done[i]);
        if !seen[insn.layer as usize] {
            seen[insn.layer as usize] = true;
            l.start = s;
        }
        l.start = l.start.min(s);
        l.end = l.end.max(e);
        let en = layer_costs[insn.layer as usize].insn(insn);
        l.energy.add(&en);
        match &insn.kind {
            Kind::Load(d) => {
                l.dram_read_bytes += d.dram_bytes();
                l.global_bytes += d.bytes() - d.dram_bytes();
            }
            Kind::Store(d) => {
                l.dram_write_bytes += d.dram_bytes();
                l.global_bytes += d.bytes() - d.dram_bytes();
            }
            _ => {
                l.compute_cycles += timing.end[i] - timing.start[i];
                if timing.wait[i] > 0 {
                    let cause = timing.cause[i].unwrap_or(Stall::Dependency);
                    *l.stalls.entry(cause.name()).or_default() += timing.wait[i];
                }
            }
        }
        debug_assert!(insn.kind.unit() != Unit::Compute || timing.end[i] >= timing.start[i]);
    }
    // static power: each cycle of the run belongs to the first layer still running at its end
    // (a layer's early weight loads overlap the layer before), so the layers' shares add up to
    // the whole run
    let mut covered = 0;
    for l in layers.iter_mut() {
        let end = l.end.max(covered);
        l.energy.static_power = costs.static_per_cycle * (end - covered) as f64;
        covered = end;
    }
    Ok(Run { timing, layers })
}

/// A tiling candidate and its lower bound on `Timed`'s `(score, bytes, cycles)`, ordered so that
/// a max-heap pops the lowest bound first (ties by the tiling). `coarse`: the bound is only its
/// size's compute (whose `TileWork` is at this index), not yet its tally's.
struct Ranked {
    bound: (f64, u64, u64),
    tiling: Tiling,
    coarse: Option<usize>,
}

impl PartialEq for Ranked {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == std::cmp::Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ranked {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        let (a, b) = (&self.bound, &o.bound);
        b.0.total_cmp(&a.0)
            .then((b.1, b.2, o.tiling).cmp(&(a.1, a.2, self.tiling)))
    }
}
