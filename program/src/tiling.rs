//! The compiler's tiling search: for each array layer, the tile sizes and loop order that the
//! cost model likes best under the description's buffer sizes. A tile is `images × rows` output
//! rows (all columns), `in_channels` of the reduction and `out_channels` of the outputs; the
//! reduction loop is always innermost, so a tile's partial sums stay in the output slot until
//! they are requantized and stored once.
//!
//! The search is exact: every tiling that fits is a candidate (the same candidates on any array,
//! and more of them with larger buffers); each has a closed-form tally of its compute cycles and
//! DRAM bytes (equal to what its instructions do, `tests/program.rs` checks), which bounds its
//! cycles and energy from below; candidates are emitted and timed exactly (`crate::machine`) in
//! the order of that bound until the bound passes the best exact score. So the chosen tiling is
//! the best of all candidates by the objective, and more hardware is never worse by it.

use etch_hw::{Accelerator, EnergyTable, MacKind};
use serde::Serialize;

use crate::isa::Space;
use crate::machine::Machine;

/// What the search minimizes (`etch sim --objective`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum Objective {
    #[default]
    Latency,
    Energy,
    /// Energy × delay.
    Edp,
    /// DRAM traffic (bytes loaded and stored; Timeloop's last-level accesses), then cycles.
    Dram,
}

impl Objective {
    pub fn parse(s: &str) -> Option<Objective> {
        match s {
            "latency" => Some(Objective::Latency),
            "energy" => Some(Objective::Energy),
            "edp" => Some(Objective::Edp),
            "dram" => Some(Objective::Dram),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Objective::Latency => "latency",
            Objective::Energy => "energy",
            Objective::Edp => "edp",
            Objective::Dram => "dram",
        }
    }
    /// Whether the score reads the energy (the search skips counting it otherwise).
    pub fn needs_energy(self) -> bool {
        matches!(self, Objective::Energy | Objective::Edp)
    }
    /// The score of a run's cycles, energy and DRAM bytes; lower is better.
    pub fn score(self, cycles: u64, energy_pj: f64, dram_bytes: u64) -> f64 {
        match self {
            Objective::Latency => cycles as f64,
            Objective::Energy => energy_pj,
            Objective::Edp => cycles as f64 * energy_pj,
            Objective::Dram => dram_bytes as f64,
        }
    }
}

/// A layer's arithmetic as the machine runs it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Arith {
    pub kind: MacKind,
    pub weight_bits: u32,
    pub act_bits: u32,
    pub acc_bits: u32,
    /// Reduction the array runs per stated reduction element (N:M compression), ≤ 1.
    pub k_ratio: f64,
    /// Output channels the array runs per stated channel (pruned channels dropped), ≤ 1.
    pub n_ratio: f64,
    /// Stored weight bytes per dense weight byte (N:M indices, sparse encodings), any.
    pub weight_store_ratio: f64,
    /// Fraction of nonzero weights (zero products are gated).
    pub density: f64,
}

/// An `Arith` as a hash key (its ratios by their bits): equal keys, equal arithmetic.
pub type ArithKey = (MacKind, u32, u32, u32, [u64; 4]);

impl Arith {
    /// The arithmetic as a hash key.
    pub fn key(&self) -> ArithKey {
        (
            self.kind,
            self.weight_bits,
            self.act_bits,
            self.acc_bits,
            [
                self.k_ratio.to_bits(),
                self.n_ratio.to_bits(),
                self.weight_store_ratio.to_bits(),
                self.density.to_bits(),
            ],
        )
    }
    pub fn act_bytes(&self, elems: u64) -> u64 {
        (elems * self.act_bits as u64).div_ceil(8)
    }
    pub fn acc_bytes(&self, elems: u64) -> u64 {
        (elems * self.acc_bits as u64).div_ceil(8)
    }
    pub fn weight_bytes(&self, elems: u64) -> u64 {
        let bits = elems * self.weight_bits as u64;
        // the float form is exact for a ratio of 1 (below 2^53 bits): skip it in the search
        if self.weight_store_ratio == 1.0 && bits < 1 << 53 {
            return bits.div_ceil(8);
        }
        (bits as f64 / 8.0 * self.weight_store_ratio).ceil() as u64
    }
    /// The reduction and output channels the array runs for `k` and `n` stated ones.
    pub fn k_run(&self, k: u64) -> u64 {
        Self::run_of(k, self.k_ratio)
    }
    pub fn n_run(&self, n: u64) -> u64 {
        Self::run_of(n, self.n_ratio)
    }
    fn run_of(x: u64, ratio: f64) -> u64 {
        let run = if ratio == 1.0 && x < 1 << 53 {
            x
        } else {
            (x as f64 * ratio).ceil() as u64
        };
        run.clamp(1, x.max(1))
    }
}

/// Bytes of bias and requantization parameters per output channel (int32 bias, int32
/// multiplier, shift and zero point packed in 32 bits).
pub const PARAM_BYTES: u64 = 12;

/// The array work of one layer as the tiler walks it: `groups` independent convolutions of
/// `images` inputs (a Gemm is a 1×1 convolution of `images` = rows). A depthwise convolution
/// runs on the vector unit with `cin` = 1 (each output channel reads its own input channel) and
/// `cout` its channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct ConvShape {
    pub groups: u64,
    pub images: u64,
    pub out_h: u64,
    pub out_w: u64,
    pub in_h: u64,
    pub in_w: u64,
    pub kernel_h: u64,
    /// Kernel elements per input channel (kh·kw).
    pub kernel_area: u64,
    pub stride_h: u64,
    pub dilation_h: u64,
    /// Padding rows above the input (the first output row reads from `-pad_h`).
    pub pad_h: u64,
    /// Per group: the reduction's input channels and the output channels.
    pub cin: u64,
    pub cout: u64,
    pub depthwise: bool,
    /// The second operand is an activation (MatMul of two activations), loaded after the
    /// previous layer's output is in DRAM.
    pub weights_are_activations: bool,
}

impl ConvShape {
    /// Input rows (of one image) that `rows` output rows read.
    pub fn in_rows(&self, rows: u64) -> u64 {
        let need = (rows.max(1) - 1) * self.stride_h + (self.kernel_h - 1) * self.dilation_h + 1;
        need.min(self.in_h)
    }
    /// The first input row a load brings for `rows` output rows from `row0`: the first row they
    /// read (after the top padding), moved up where the `in_rows(rows)` rows would pass the
    /// bottom, so the window always holds every row the tile reads.
    pub fn in_row0(&self, row0: u64, rows: u64) -> u64 {
        (row0 * self.stride_h)
            .saturating_sub(self.pad_h)
            .min(self.in_h - self.in_rows(rows))
    }
    /// The stated MACs of an `m`-pixel tile of `c` reduction and `co` output channels.
    pub fn tile_macs(&self, m: u64, c: u64, co: u64) -> u64 {
        m * c * self.kernel_area * co
    }
    pub fn macs(&self) -> u64 {
        self.groups * self.tile_macs(self.images * self.out_h * self.out_w, self.cin, self.cout)
    }
    /// Weight bytes of a `co × c` tile (with the channels' parameters when `params`).
    pub fn weight_bytes(&self, a: &Arith, co: u64, c: u64, params: bool) -> u64 {
        let elems = co * c * self.kernel_area;
        if self.weights_are_activations {
            a.act_bytes(elems)
        } else {
            a.weight_bytes(elems) + if params { co * PARAM_BYTES } else { 0 }
        }
    }
    /// Where weight tile (`group`, `co0`, `c0`) starts in the layer's weight region, which holds
    /// the tiles of `t` packed in the order group, output-channel tile, reduction tile, each as
    /// its load moves it (the channels' parameters, then the codes): a weight load is one
    /// contiguous run. `c0` is 0 when the slot holds the whole reduction.
    pub fn weight_tile_offset(&self, a: &Arith, t: &Tiling, group: u64, co0: u64, c0: u64) -> u64 {
        let (tco, tc) = (t.out_channels.max(1), t.in_channels.max(1));
        // the bytes of every reduction tile of `co` output channels
        let column = |co: u64| {
            if t.whole_weights {
                self.weight_bytes(a, co, self.cin, true)
            } else {
                self.reduction_offset(a, co, tc, self.cin.div_ceil(tc))
            }
        };
        let full = self.cout / tco;
        let rest = self.cout - full * tco;
        let group_bytes = full * column(tco) + if rest > 0 { column(rest) } else { 0 };
        let co = tco.min(self.cout - co0);
        let within = if t.whole_weights {
            0
        } else {
            self.reduction_offset(a, co, tc, c0 / tc)
        };
        group * group_bytes + (co0 / tco) * column(tco) + within
    }
    /// The bytes of the first `j` reduction tiles of `co` output channels: tiles of `tc`
    /// channels, the last one shorter, the first carrying the channels' parameters.
    fn reduction_offset(&self, a: &Arith, co: u64, tc: u64, j: u64) -> u64 {
        if j == 0 {
            return 0;
        }
        let tiles = self.cin.div_ceil(tc);
        let short_last = j == tiles && tiles >= 2;
        let full = j - 1 - short_last as u64;
        self.weight_bytes(a, co, tc.min(self.cin), true)
            + full * self.weight_bytes(a, co, tc, false)
            + if short_last {
                self.weight_bytes(a, co, self.cin - (tiles - 1) * tc, false)
            } else {
                0
            }
    }
    /// The bytes of a layer's weight region for tiling `t`.
    pub fn weight_region_bytes(&self, a: &Arith, t: &Tiling) -> u64 {
        self.weight_tile_offset(a, t, self.groups, 0, 0)
    }
    /// Input bytes of `images × rows` output rows over `channels` input channels, as the load
    /// moves them (one run of rows per channel and image).
    pub fn input_bytes(&self, a: &Arith, images: u64, rows: u64, channels: u64) -> u64 {
        images * channels * a.act_bytes(self.in_rows(rows) * self.in_w)
    }
    /// Output code bytes of `images × rows` output rows over `channels`, as the store moves them.
    pub fn output_bytes(&self, a: &Arith, images: u64, rows: u64, channels: u64) -> u64 {
        images * channels * a.act_bytes(rows * self.out_w)
    }
}

/// The order of the tile loops, outermost first (the reduction is always innermost).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum LoopOrder {
    /// Output channels, then output rows: a weight tile stays while the rows stream past it.
    WeightsOuter,
    /// Output rows, then output channels: an input tile stays while the channels pass over it.
    InputsOuter,
}

/// One layer's tiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Tiling {
    /// Whole images per tile (more than one only when `rows` is the whole output height).
    pub images: u64,
    pub rows: u64,
    pub in_channels: u64,
    pub out_channels: u64,
    pub order: LoopOrder,
    /// The weight slot holds the output channels' whole reduction (every input-channel tile), so
    /// the weights stay while the reduction tiles pass; likewise the input slot for its rows.
    pub whole_weights: bool,
    pub whole_inputs: bool,
}

/// The bytes one tile needs in each slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileBytes {
    pub input: u64,
    pub weight: u64,
    pub output: u64,
}

/// The bytes of one slot of each buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SlotBytes {
    pub input: u64,
    pub weight: u64,
    pub output: u64,
}

impl SlotBytes {
    pub fn of(acc: &Accelerator) -> SlotBytes {
        let b = &acc.buffers;
        SlotBytes {
            input: b.working_bytes(b.ifmap_kib),
            weight: b.working_bytes(b.filter_kib),
            output: b.working_bytes(b.ofmap_kib),
        }
    }
}

/// At most `N` classes of tiles (along a loop: the full ones, then the remainder), kept inline:
/// the search tallies thousands of tilings per layer, and these are its inner loops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classes<T, const N: usize = 2> {
    items: [T; N],
    len: usize,
}

impl<T: Copy + Default, const N: usize> Classes<T, N> {
    fn new() -> Self {
        Classes {
            items: [T::default(); N],
            len: 0,
        }
    }
    fn push(&mut self, x: T) {
        self.items[self.len] = x;
        self.len += 1;
    }
}

impl<'a, T, const N: usize> IntoIterator for &'a Classes<T, N> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items[..self.len].iter()
    }
}

impl<T, const N: usize> std::ops::Deref for Classes<T, N> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.items[..self.len]
    }
}

/// Tiles of `tile` along a loop of `total`: `(size, count)` for the full ones, then the
/// remainder.
pub fn split(total: u64, tile: u64) -> Classes<(u64, u64)> {
    let tile = tile.clamp(1, total.max(1));
    let (full, rem) = (total / tile, total % tile);
    let mut v = Classes::new();
    if full > 0 {
        v.push((tile, full));
    }
    if rem > 0 {
        v.push((rem, 1));
    }
    v
}

impl Tiling {
    /// The reduction channels a weight slot and an input slot hold for a reduction tile of `c`.
    pub fn reduction_held(&self, s: &ConvShape, c: u64) -> (u64, u64) {
        (
            if self.whole_weights { s.cin } else { c },
            if self.whole_inputs { s.cin } else { c },
        )
    }

    /// The largest tile's needs.
    pub fn bytes(&self, s: &ConvShape, a: &Arith) -> TileBytes {
        let (c, co) = (self.in_channels.min(s.cin), self.out_channels.min(s.cout));
        let (wc, ic) = self.reduction_held(s, c);
        let rows = self.rows.min(s.out_h);
        let m = self.images * rows * s.out_w;
        TileBytes {
            input: s.input_bytes(a, self.images, rows, if s.depthwise { co } else { ic }),
            weight: s.weight_bytes(a, co, wc, true),
            output: a.acc_bytes(m * co),
        }
    }

    pub fn fits(&self, s: &ConvShape, a: &Arith, slot: &SlotBytes) -> bool {
        let b = self.bytes(s, a);
        b.input <= slot.input && b.weight <= slot.weight && b.output <= slot.output
    }

    /// The output-row tiles: `(images, rows, count)`.
    pub fn m_tiles(&self, s: &ConvShape) -> Classes<(u64, u64, u64)> {
        let mut v = Classes::new();
        if self.rows >= s.out_h {
            for &(b, n) in split(s.images, self.images).iter() {
                v.push((b, s.out_h, n));
            }
        } else {
            for &(r, n) in split(s.out_h, self.rows).iter() {
                v.push((1, r, n * s.images));
            }
        }
        v
    }
    pub fn c_tiles(&self, s: &ConvShape) -> Classes<(u64, u64)> {
        split(s.cin, self.in_channels)
    }
    pub fn co_tiles(&self, s: &ConvShape) -> Classes<(u64, u64)> {
        split(s.cout, self.out_channels)
    }
}

/// Tile extents worth trying along a loop of `total`: powers of two and even splits
/// (`ceil(total / j)`); the same on every array, so a larger array has the same candidates.
fn extents(total: u64) -> Vec<u64> {
    let total = total.max(1);
    let mut v = Vec::new();
    let mut x = 1;
    while x < total {
        v.push(x);
        x *= 2;
    }
    for j in 1..=12 {
        v.push(total.div_ceil(j));
    }
    v.sort_unstable();
    v.dedup();
    v
}

/// Every tiling of the layer that fits the slots.
pub fn candidates(s: &ConvShape, a: &Arith, slot: &SlotBytes) -> Vec<Tiling> {
    let mut m_opts: Vec<(u64, u64)> = extents(s.out_h).into_iter().map(|r| (1, r)).collect();
    m_opts.extend(
        extents(s.images)
            .into_iter()
            .filter(|&b| b > 1)
            .map(|b| (b, s.out_h)),
    );
    let c_opts = extents(s.cin);
    let co_opts = extents(s.cout);
    let mut out = Vec::new();
    for &(images, rows) in &m_opts {
        for &c in &c_opts {
            let whole: &[bool] = if c < s.cin && !s.depthwise {
                &[false, true]
            } else {
                &[false]
            };
            for &co in &co_opts {
                // with one output-row tile the two orders emit the same instructions (and
                // inputs-outer allows no more whole-reduction slots), so the search would take
                // weights-outer by its tie-break
                let one_m = images >= s.images && rows >= s.out_h;
                let orders: &[LoopOrder] = if one_m {
                    &[LoopOrder::WeightsOuter]
                } else {
                    &[LoopOrder::WeightsOuter, LoopOrder::InputsOuter]
                };
                for &order in orders {
                    for &whole_weights in whole {
                        for &whole_inputs in whole {
                            // a slot holding the whole reduction only saves loads when its
                            // tile stays over the middle loop; elsewhere it only takes room
                            let keeps_weights = order == LoopOrder::WeightsOuter || co >= s.cout;
                            let keeps_inputs = order == LoopOrder::InputsOuter
                                || (images >= s.images && rows >= s.out_h);
                            if (whole_weights && !keeps_weights) || (whole_inputs && !keeps_inputs)
                            {
                                continue;
                            }
                            let t = Tiling {
                                images,
                                rows,
                                in_channels: c,
                                out_channels: co,
                                order,
                                whole_weights,
                                whole_inputs,
                            };
                            if t.fits(s, a, slot) {
                                out.push(t);
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

/// How many sweeps over its tiles the input and the weights are loaded in (per group), by the
/// rule the emitter follows: a tile is loaded unless it is the one already in its buffer.
pub fn load_repeats(t: &Tiling, s: &ConvShape) -> (u64, u64) {
    let n_m: u64 = t.m_tiles(s).iter().map(|x| x.2).sum();
    let n_c: u64 = t.c_tiles(s).iter().map(|x| x.1).sum();
    let n_co: u64 = t.co_tiles(s).iter().map(|x| x.1).sum();
    // a slot that holds every reduction tile is loaded once per tile of its other loops
    let in_c = if t.whole_inputs { 1 } else { n_c };
    let w_c = if t.whole_weights { 1 } else { n_c };
    let weight = match t.order {
        LoopOrder::WeightsOuter if w_c == 1 => 1,
        LoopOrder::InputsOuter if n_co == 1 && w_c == 1 => 1,
        _ => n_m,
    };
    let input = match t.order {
        // a depthwise input tile belongs to one channel tile: each is loaded once
        _ if s.depthwise => 1,
        LoopOrder::WeightsOuter if n_m == 1 && in_c == 1 => 1,
        LoopOrder::InputsOuter if in_c == 1 => 1,
        _ => n_co,
    };
    (input, weight)
}

/// Where a layer's input activations come from and its output goes (weights are always in
/// DRAM): DRAM, or the global buffer when the compiler keeps the tensor on chip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Spaces {
    pub input: Space,
    pub output: Space,
}

/// A tiling's exact compute cycles and memory traffic, in closed form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Cycles of the compute unit (GEMM or depthwise tiles and requantizations).
    pub compute_cycles: u64,
    pub load_bytes: u64,
    pub store_bytes: u64,
    /// The bytes that go to or from DRAM (the rest is the global buffer's).
    pub dram_bytes: u64,
    /// Transfers, and the cycles they hold each channel (DRAM, global buffer; each transfer
    /// rounded up on its own).
    pub transfers: u64,
    pub channel_cycles: [u64; 2],
    /// The latency of each channel.
    pub latency: [u64; 2],
    /// Cycles before the first tile can compute (its weights and input on their channels, then
    /// the latency) and after the last one (its store and the latency).
    pub head_cycles: u64,
    pub tail_cycles: u64,
    /// With one slot per buffer: cycles the compute unit must sit idle between tiles (every later
    /// load, or every later store, waits for the slot, then its transfer and the latency).
    pub gap_cycles: u64,
    /// Cycles no run can beat because a buffer's slot is loaded again only after the last tile
    /// read from it is computed: each `slots`-th load of a buffer waits for the one before it,
    /// that load's latency and at least the shortest compute tile (`tiling::tally_with`).
    pub chain_cycles: u64,
}

impl Tally {
    pub fn dram_bytes(&self) -> u64 {
        self.dram_bytes
    }
    /// The bytes that go to or from the global buffer.
    pub fn global_bytes(&self) -> u64 {
        self.load_bytes + self.store_bytes - self.dram_bytes
    }
    /// No run of the tiles can be shorter: the compute unit does all its work one thing at a
    /// time between the first loads and the last store, and so does each channel.
    pub fn cycles_bound(&self) -> u64 {
        (self.head_cycles + self.compute_cycles + self.tail_cycles + self.gap_cycles)
            .max(self.channel_cycles[0] + self.latency[0])
            .max(self.channel_cycles[1] + self.latency[1])
            .max(self.chain_cycles)
    }
}

/// The tally of a tiling (what its emitted instructions add up to), with the layer's
/// activations in `spaces`.
pub fn tally(t: &Tiling, s: &ConvShape, a: &Arith, m: &Machine, spaces: Spaces) -> Tally {
    tally_with(&tile_work(t, s, a, m), t, s, a, m, spaces)
}

/// What a tiling's tile sizes alone decide, whatever its loop order and whole-reduction slots:
/// the compute unit's cycles and the stores (and a depthwise layer's input loads). The search
/// works it out once for all the variants of one size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileWork {
    /// Cycles of the GEMM or depthwise tiles, and of the requantizations, per group; the
    /// shortest such tile (`None`: no tiles).
    compute: u64,
    requant: u64,
    shortest_tile: Option<u64>,
    /// (bytes, count) of every class of store, and of a depthwise layer's input loads, per group.
    stores: Classes<(u64, u64), 4>,
    depthwise_loads: Classes<(u64, u64), 4>,
}

impl TileWork {
    /// The compute unit's cycles over every group: a lower bound on the layer's cycles.
    pub fn compute_cycles(&self, s: &ConvShape) -> u64 {
        s.groups * (self.compute + self.requant)
    }
}

/// The `TileWork` of a tiling's sizes.
pub fn tile_work(t: &Tiling, s: &ConvShape, a: &Arith, m: &Machine) -> TileWork {
    let (mt, ct, cot) = (t.m_tiles(s), t.c_tiles(s), t.co_tiles(s));
    let mut w = TileWork {
        compute: 0,
        requant: 0,
        shortest_tile: None,
        stores: Classes::new(),
        depthwise_loads: Classes::new(),
    };
    for &(b, r, nm) in &mt {
        let pixels = b * r * s.out_w;
        for &(co, nco) in &cot {
            for &(c, nc) in &ct {
                let cyc = if s.depthwise {
                    m.vector_cycles(s.tile_macs(pixels, c, co))
                } else {
                    m.gemm_cycles(pixels, a.k_run(c * s.kernel_area), a.n_run(co))
                };
                w.compute += nm * nco * nc * cyc;
                if nm * nco * nc > 0 {
                    w.shortest_tile = Some(w.shortest_tile.map_or(cyc, |x| x.min(cyc)));
                }
            }
            // the requantization of the output tile, and its store
            w.requant += nm * nco * m.vector_cycles(pixels * co);
            w.stores.push((s.output_bytes(a, b, r, co), nm * nco));
            if s.depthwise {
                w.depthwise_loads
                    .push((s.input_bytes(a, b, r, co), nm * nco));
            }
        }
    }
    w
}

/// `tally` with the tiling's `TileWork` worked out beforehand.
pub fn tally_with(
    w: &TileWork,
    t: &Tiling,
    s: &ConvShape,
    a: &Arith,
    m: &Machine,
    spaces: Spaces,
) -> Tally {
    let (in_rep, w_rep) = load_repeats(t, s);
    let (mt, ct, cot) = (t.m_tiles(s), t.c_tiles(s), t.co_tiles(s));
    let n_c: u64 = ct.iter().map(|x| x.1).sum();
    let (compute, requant, stores) = (w.compute, w.requant, w.stores);
    // (bytes, count) of every class of load, per group (at most 2×2 input loads and 2×2×2
    // weight loads)
    let mut loads: Classes<(u64, u64), 12> = Classes::new();
    for &l in &w.depthwise_loads {
        loads.push(l);
    }
    if !s.depthwise {
        for &(b, r, nm) in &mt {
            if t.whole_inputs || n_c == 1 {
                loads.push((s.input_bytes(a, b, r, s.cin), nm * in_rep));
            } else {
                for &(c, nc) in &ct {
                    loads.push((s.input_bytes(a, b, r, c), nm * nc * in_rep));
                }
            }
        }
    }
    let input_classes = loads.len();
    for &(co, nco) in &cot {
        if t.whole_weights || n_c == 1 {
            loads.push((s.weight_bytes(a, co, s.cin, true), nco * w_rep));
        } else {
            // the parameters travel with the first reduction tile
            for (k, &(c, nc)) in ct.iter().enumerate() {
                let first = if k == 0 { 1 } else { 0 };
                loads.push((s.weight_bytes(a, co, c, true), nco * w_rep * first));
                loads.push((s.weight_bytes(a, co, c, false), nco * w_rep * (nc - first)));
            }
        }
    }
    // the first step's weight and input loads, and the last step's store
    let (c0, co0, co_last) = (ct[0].0, cot[0].0, cot[cot.len() - 1].0);
    let ((b0, r0, _), (bl, rl, _)) = (mt[0], mt[mt.len() - 1]);
    let w0 = s.weight_bytes(a, co0, if t.whole_weights { s.cin } else { c0 }, true);
    let in0 = s.input_bytes(
        a,
        b0,
        r0,
        if s.depthwise {
            co0
        } else if t.whole_inputs {
            s.cin
        } else {
            c0
        },
    );
    let (ins, ws) = loads.split_at(input_classes);
    let (sin, sout, sw) = (spaces.input, spaces.output, Space::Dram);
    let tc = |space, bytes| m.least_transfer_cycles(space, bytes);
    // the weights load first, then the input; the first tile computes when both are done
    let head = (tc(sw, w0) + m.latency(sw)).max(tc(sw, w0) + tc(sin, in0) + m.latency(sin));
    let tail = tc(sout, s.output_bytes(a, bl, rl, co_last)) + m.latency(sout);
    let g = s.groups;
    let bytes = |v: &[(u64, u64)]| g * v.iter().map(|&(b, n)| b * n).sum::<u64>();
    let count = |v: &[(u64, u64)]| g * v.iter().map(|x| x.1).sum::<u64>();
    let channel = |v: &[(u64, u64)], space| {
        g * v
            .iter()
            .map(|&(b, n)| n * m.least_transfer_cycles(space, b))
            .sum::<u64>()
    };
    let gap_cycles = if m.slots == 1 {
        let gaps = (count(ins).saturating_sub(1) * m.latency(sin) + channel(ins, sin)
            - tc(sin, in0))
        .max(count(ws).saturating_sub(1) * m.latency(sw) + channel(ws, sw) - tc(sw, w0));
        // a requantization may run while a later tile loads, never while an output is stored
        let store_gaps = count(&stores).saturating_sub(1) * m.latency(sout)
            + channel(&stores, sout)
            - tc(sout, s.output_bytes(a, bl, rl, co_last));
        gaps.saturating_sub(g * requant).max(store_gaps)
    } else {
        0
    };
    // load j + slots of a buffer pops the slot that the last reader of tile j frees: it starts
    // no earlier than load j ends, plus its latency and the reader's compute
    let chain = |v: &[(u64, u64)], space: Space| {
        let shortest_load = v
            .iter()
            .filter(|x| x.1 > 0)
            .map(|&(b, _)| m.least_transfer_cycles(space, b))
            .min();
        match (shortest_load, w.shortest_tile) {
            (Some(t), Some(c)) => {
                let links = count(v).saturating_sub(1) / m.slots.max(1) as u64;
                (links + 1) * (t + m.latency(space) + c)
            }
            _ => 0,
        }
    };
    let chain_cycles = chain(ins, sin).max(chain(ws, sw));
    let mut channel_cycles = [0u64; 2];
    channel_cycles[sin as usize] += channel(ins, sin);
    channel_cycles[sw as usize] += channel(ws, sw);
    channel_cycles[sout as usize] += channel(&stores, sout);
    let on = |space: Space, b: u64| if space == Space::Dram { b } else { 0 };
    let all = || loads.iter().chain(&stores).filter(|x| x.1 > 0);
    Tally {
        compute_cycles: g * (compute + requant),
        load_bytes: bytes(&loads),
        store_bytes: bytes(&stores),
        dram_bytes: on(sin, bytes(ins)) + bytes(ws) + on(sout, bytes(&stores)),
        transfers: g * all().map(|x| x.1).sum::<u64>(),
        channel_cycles,
        latency: [m.dram.latency, m.global.latency],
        head_cycles: head,
        tail_cycles: tail,
        gap_cycles,
        chain_cycles,
    }
}

/// What no tiling of a layer can spend less energy than, given its DRAM bytes: the bound the
/// search prunes by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnergyBound {
    pub dram_per_byte: f64,
    /// The array MACs' own energy, the same for every tiling of the layer (0 for a depthwise
    /// layer, whose MACs are the vector unit's).
    pub macs_pj: f64,
}

impl EnergyBound {
    pub fn of(t: &EnergyTable, s: &ConvShape, a: &Arith) -> EnergyBound {
        let macs = if s.depthwise {
            0.0
        } else {
            s.macs() as f64 * a.k_ratio * a.n_ratio * a.density
        };
        EnergyBound {
            dram_per_byte: t.dram_per_byte(),
            macs_pj: macs * t.mac(a.kind, a.weight_bits, a.act_bits, a.acc_bits.min(64)),
        }
    }
    pub fn energy(&self, x: &Tally) -> f64 {
        self.macs_pj + x.dram_bytes() as f64 * self.dram_per_byte
    }
}
