//! The exact timing of a program: an event-level simulation of the three in-order units, the
//! counting semaphores between them, and the DRAM channel they share (and the global buffer's,
//! when the description has one: the same rule, its own bandwidth and latency). Every rule here
//! is written down in `docs/accelerator.md`; the RTL implements the same rules.
//!
//! - A unit runs its instructions in program order, one at a time. An instruction starts when
//!   its unit is free and every token it pops is available (a semaphore's tokens are taken in
//!   the order they were given).
//! - A channel moves `bytes_per_cycle` (in thousandths of a byte, exactly) and serves requests
//!   in the order they are ready (load before store on a tie). DRAM's moves whole beats of its
//!   bus (`Channel::beat_bytes`, the smallest power of two at least its bytes per cycle): a row
//!   of a transfer occupies every beat it touches, a transfer whose rows are contiguous is one
//!   row (`Channel::bus_bytes`). A transfer of B bus bytes holds its channel for
//!   `ceil(1000·B / milli_bytes_per_cycle)` cycles; the issuing unit is busy for that long and the
//!   transfer completes the channel's `latency` cycles later (requests are pipelined under the
//!   latency), which is when its tokens are given.
//! - A GEMM tile on an R×C array runs fold by fold (`gemm_cycles`); a vector instruction takes
//!   `ceil(ops / lanes)` cycles; both give their tokens when they end.

use std::collections::VecDeque;

use etch_hw::{Accelerator, Dataflow};
use serde::Serialize;

use crate::isa::{Dma, Insn, Kind, Space, Token, Unit};

/// A memory channel: its bandwidth in thousandths of a byte per cycle, its latency, and the
/// bytes of one beat of its bus (1: it moves single bytes, as an on-chip buffer's port does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Channel {
    pub milli_bytes_per_cycle: u64,
    pub latency: u64,
    pub beat_bytes: u64,
}

impl Channel {
    /// A channel of single bytes (an on-chip buffer's).
    fn of(bytes_per_cycle: f64, latency_cycles: u32) -> Channel {
        Channel {
            milli_bytes_per_cycle: ((bytes_per_cycle * 1000.0).round() as u64).max(1),
            latency: latency_cycles as u64,
            beat_bytes: 1,
        }
    }

    /// An off-chip channel: a bus moving whole beats of the smallest power of two of bytes that
    /// carries a cycle's bandwidth (an AXI4 data bus; at most one beat a cycle).
    fn bus(bytes_per_cycle: f64, latency_cycles: u32) -> Channel {
        let c = Channel::of(bytes_per_cycle, latency_cycles);
        Channel {
            beat_bytes: c.milli_bytes_per_cycle.div_ceil(1000).next_power_of_two(),
            ..c
        }
    }

    /// The bytes of bus beats a transfer of `rows` rows of `row_bytes` bytes, `stride` apart from
    /// `addr`, occupies: every beat a row touches (a beat is `beat_bytes` long and aligned to its
    /// length); rows that follow each other without a gap are one row.
    pub fn bus_bytes(&self, addr: u64, rows: u64, row_bytes: u64, stride: u64) -> u64 {
        let w = self.beat_bytes;
        if w <= 1 || rows == 0 || row_bytes == 0 {
            return rows.saturating_mul(row_bytes);
        }
        let beats = |at: u64, bytes: u64| (at % w).saturating_add(bytes).div_ceil(w);
        if rows == 1 || stride == row_bytes {
            return beats(addr, rows.saturating_mul(row_bytes)).saturating_mul(w);
        }
        // a row's offset within its beat repeats every `period` rows (w is a power of two); a row
        // at offset o takes q + c(o) beats, q = row_bytes / w and c(o) 0, 1 or 2 as o + t (t the
        // rest) is 0, at most w, or more
        let (mask, q, t) = (w - 1, row_bytes / w, row_bytes % w);
        let (a0, step) = (addr & mask, stride & mask);
        let c = |o: u64| match o + t {
            0 => 0,
            x if x <= w => 1,
            _ => 2,
        };
        let period = if step == 0 {
            1
        } else {
            w >> step.trailing_zeros()
        };
        // over a whole period the offsets are r, r + g, ..., r + (period − 1)·g
        let g = w / period;
        let r = a0 & (g - 1);
        let zero = (t == 0 && r == 0) as u64;
        let over = if t == 0 {
            0
        } else {
            let limit = w - t;
            let within = if r > limit {
                0
            } else {
                ((limit - r) / g + 1).min(period)
            };
            period - within
        };
        let per_period = period * q + period - zero + over;
        let rest: u64 = (0..rows % period)
            .map(|i| q + c((a0 + i * step) & mask))
            .sum();
        (rows / period)
            .saturating_mul(per_period)
            .saturating_add(rest)
            .saturating_mul(w)
    }
}

/// The parameters of a description that the timing reads.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Machine {
    pub rows: u64,
    pub cols: u64,
    pub dataflow: Dataflow,
    pub lanes: u64,
    /// The DRAM channel and the global buffer's (DRAM's again when there is none: unused).
    pub dram: Channel,
    pub global: Channel,
    /// The global buffer's bytes (0: none).
    pub global_bytes: u64,
    /// Slots per buffer: 2 when double-buffered, else 1.
    pub slots: u32,
}

impl Machine {
    pub fn of(acc: &Accelerator) -> Machine {
        let dram = Channel::bus(acc.dram.bytes_per_cycle, acc.dram.latency_cycles);
        let g = acc.buffers.global;
        Machine {
            rows: acc.rows() as u64,
            cols: acc.cols() as u64,
            dataflow: acc.dataflow(),
            lanes: acc.vector.lanes.max(1) as u64,
            dram,
            global: g.map_or(dram, |g| Channel::of(g.bytes_per_cycle, g.latency_cycles)),
            global_bytes: g.map_or(0, |g| g.kib as u64 * 1024),
            slots: if acc.buffers.double_buffered { 2 } else { 1 },
        }
    }

    /// The channel of a memory space.
    pub fn channel(&self, space: Space) -> Channel {
        match space {
            Space::Dram => self.dram,
            Space::Global => self.global,
        }
    }

    /// Cycles its channel is held by `bytes` of its bus (`Channel::bus_bytes`) to or from
    /// `space`; for a transfer's payload bytes, the fewest cycles any layout of them can take.
    pub fn transfer_cycles(&self, space: Space, bytes: u64) -> u64 {
        bytes
            .saturating_mul(1000)
            .div_ceil(self.channel(space).milli_bytes_per_cycle)
    }

    /// The fewest cycles a transfer of `bytes` payload bytes can hold `space`'s channel, however
    /// its rows lie: the whole beats its bytes fill at the least.
    pub fn least_transfer_cycles(&self, space: Space, bytes: u64) -> u64 {
        let w = self.channel(space).beat_bytes.max(1);
        self.transfer_cycles(space, bytes.div_ceil(w).saturating_mul(w))
    }

    /// Cycles a transfer holds its channel: its bus bytes at the channel's rate.
    pub fn dma_cycles(&self, d: &Dma) -> u64 {
        let bus = self
            .channel(d.space)
            .bus_bytes(d.addr, d.rows, d.row_bytes, d.stride);
        self.transfer_cycles(d.space, bus)
    }

    /// The latency of `space`'s channel.
    pub fn latency(&self, space: Space) -> u64 {
        self.channel(space).latency
    }

    /// How this machine's dataflow folds a GEMM tile onto the array.
    pub fn folding(&self) -> Folding {
        Folding::of(self.dataflow)
    }

    /// Cycles of an `m × k` by `k × n` tile on the array: the sum of `Folding::fold_cycles` over
    /// its folds, in closed form.
    pub fn gemm_cycles(&self, m: u64, k: u64, n: u64) -> u64 {
        let f = self.folding();
        let [sr, sc, t] = [f.rows, f.cols, f.stream].map(|d| d.of(m, k, n));
        if sr == 0 || sc == 0 || t == 0 {
            return 0;
        }
        let (fr, fc) = (sr.div_ceil(self.rows), sc.div_ceil(self.cols));
        // Σ over folds of (rows used) = sr·fc, of (columns used) = sc·fr
        let rows_sum = sr * fc;
        let cols_sum = sc * fr;
        let folds = fr * fc;
        f.per_row() * rows_sum + cols_sum + folds * t - 2 * folds
    }

    /// Cycles of a vector instruction.
    pub fn vector_cycles(&self, ops: u64) -> u64 {
        ops.div_ceil(self.lanes)
    }
}

/// A dimension of a GEMM tile (`m × k` by `k × n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Dim {
    M,
    K,
    N,
}

impl Dim {
    /// Its extent in an `m × k` by `k × n` tile.
    pub fn of(self, m: u64, k: u64, n: u64) -> u64 {
        match self {
            Dim::M => m,
            Dim::K => k,
            Dim::N => n,
        }
    }
}

/// How a dataflow runs a GEMM tile on an R×C array, as data: the dimension laid along the rows,
/// the one along the columns, the one streamed, and whether each fold first preloads its row
/// extent. The tile runs fold by fold (`ceil(rows dim / R) × ceil(cols dim / C)` folds), each
/// fold using `rf ≤ R` rows and `cf ≤ C` columns for `fold_cycles(rf, cf, t)` cycles. The
/// simulator sums it in closed form (`Machine::gemm_cycles`); the RTL's fold sequencer is built
/// from the same values, fold by fold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Folding {
    pub rows: Dim,
    pub cols: Dim,
    pub stream: Dim,
    pub preload: bool,
}

impl Folding {
    /// Weight-stationary: `k` on the rows, `n` on the columns, `m` streamed, weights preloaded.
    /// Output-stationary: `m` on the rows, `n` on the columns, `k` streamed.
    /// Input-stationary: `k` on the rows, `m` on the columns, `n` streamed, inputs preloaded.
    pub fn of(d: Dataflow) -> Folding {
        let (rows, cols, stream, preload) = match d {
            Dataflow::WeightStationary => (Dim::K, Dim::N, Dim::M, true),
            Dataflow::OutputStationary => (Dim::M, Dim::N, Dim::K, false),
            Dataflow::InputStationary => (Dim::K, Dim::M, Dim::N, true),
        };
        Folding {
            rows,
            cols,
            stream,
            preload,
        }
    }
    /// Cycles per row of a fold: preload (when there is one) and skew.
    pub fn per_row(&self) -> u64 {
        if self.preload {
            2
        } else {
            1
        }
    }
    /// Cycles of one fold on `rf` rows and `cf` columns streaming `t`: preload `rf` (when the
    /// dataflow preloads), skew `rf − 1`, stream `t`, drain `cf − 1`.
    pub fn fold_cycles(&self, rf: u64, cf: u64, t: u64) -> u64 {
        self.per_row() * rf + cf + t - 2
    }
}

/// Why the compute unit waited before an instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Stall {
    /// Its input or weights were still coming from DRAM.
    Dram,
    /// Its output slot was still being stored (or, for a load, its slot still in use).
    Buffer,
    /// The previous layer's output was not yet in DRAM.
    Dependency,
}

impl Stall {
    pub fn name(self) -> &'static str {
        match self {
            Stall::Dram => "dram",
            Stall::Buffer => "buffer",
            Stall::Dependency => "dependency",
        }
    }
}

/// When each instruction ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timing {
    /// Per instruction (program order): start and end on its unit, and when its tokens were
    /// given (a transfer's completion).
    pub start: Vec<u64>,
    pub end: Vec<u64>,
    pub done: Vec<u64>,
    /// Per instruction: cycles its unit sat idle waiting for its tokens, and why.
    pub wait: Vec<u64>,
    pub cause: Vec<Option<Stall>>,
    /// The cycle the last instruction is done.
    pub total: u64,
}

/// A program that cannot run: a unit waits for a token nobody will give.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the program deadlocks: the {unit} unit waits at instruction {insn} for a {token:?} token that no instruction gives")]
pub struct Deadlock {
    pub unit: &'static str,
    pub insn: usize,
    pub token: Token,
}

/// The cycles one instruction holds its unit (and, for transfers, the channel).
pub fn busy_cycles(m: &Machine, insn: &Insn) -> u64 {
    match &insn.kind {
        Kind::Load(d) | Kind::Store(d) => m.dma_cycles(d),
        Kind::Gemm(g) => m.gemm_cycles(g.m, g.k, g.n),
        Kind::Vector(v) => m.vector_cycles(v.ops),
    }
}

/// When one instruction ran: its start and end on its unit, when its tokens were given, and how
/// long (and why) its unit waited for it.
#[derive(Debug, Clone, Copy)]
struct Event {
    start: u64,
    end: u64,
    done: u64,
    wait: u64,
    cause: Option<Stall>,
}

/// What a run keeps of each instruction: everything (`Timing`), or only the total (the tiling
/// search, which times many candidates and keeps their totals).
trait Record {
    fn record(&mut self, i: usize, e: Event);
}

impl Record for Timing {
    fn record(&mut self, i: usize, e: Event) {
        self.start[i] = e.start;
        self.end[i] = e.end;
        self.done[i] = e.done;
        self.wait[i] = e.wait;
        self.cause[i] = e.cause;
    }
}

/// Keeps nothing but the total.
struct TotalOnly;

impl Record for TotalOnly {
    fn record(&mut self, _: usize, _: Event) {}
}

/// Runs the program on the machine.
pub fn run(m: &Machine, insns: &[Insn]) -> Result<Timing, Deadlock> {
    let n = insns.len();
    let mut t = Timing {
        start: vec![0; n],
        end: vec![0; n],
        done: vec![0; n],
        wait: vec![0; n],
        cause: vec![None; n],
        total: 0,
    };
    t.total = simulate(m, insns, &mut t, u64::MAX)?.expect("no cutoff");
    Ok(t)
}

/// The program's total cycles, or `None` as soon as the run cannot end by cycle `cutoff`: each
/// unit and each channel still has its remaining instructions' busy cycles to do after it is
/// next free, so the run ends no earlier than the latest of those. The tiling search times
/// candidates this way against the best so far, and stops a loser once it is behind.
pub fn total_within(m: &Machine, insns: &[Insn], cutoff: u64) -> Result<Option<u64>, Deadlock> {
    simulate(m, insns, &mut TotalOnly, cutoff)
}

/// The event simulation behind `run` and `total_within`.
fn simulate(
    m: &Machine,
    insns: &[Insn],
    rec: &mut impl Record,
    cutoff: u64,
) -> Result<Option<u64>, Deadlock> {
    let n = insns.len();
    // each instruction's busy cycles, and the next instruction of its unit (`n`: none)
    let busy: Vec<u64> = insns.iter().map(|i| busy_cycles(m, i)).collect();
    let mut next = vec![n; n];
    let mut heads = [n; 3];
    for (i, insn) in insns.iter().enumerate().rev() {
        let u = insn.kind.unit() as usize;
        next[i] = heads[u];
        heads[u] = i;
    }
    // the busy cycles each unit and each channel has left (for the cutoff)
    let mut unit_left = [0u64; 3];
    let mut channel_left = [0u64; 2];
    if cutoff < u64::MAX {
        for (insn, &b) in insns.iter().zip(&busy) {
            unit_left[insn.kind.unit() as usize] += b;
            if let Kind::Load(d) | Kind::Store(d) = &insn.kind {
                channel_left[d.space as usize] += b;
            }
        }
    }
    let mut unit_free = [0u64; 3];
    // every semaphore: the times its tokens became available, and where the token came from
    let mut sems: [VecDeque<(u64, Option<Stall>)>; 7] = Default::default();
    for (q, tok) in sems.iter_mut().zip(Token::ALL) {
        q.extend((0..tok.initial(m.slots)).map(|_| (0, None)));
    }
    // when each channel (DRAM, global buffer) is next free
    let mut channel_free = [0u64; 2];
    let mut total = 0u64;
    loop {
        // the unit whose next instruction is ready first
        let mut best: Option<(u64, usize)> = None;
        let mut blocked = None;
        for u in 0..3 {
            let i = heads[u];
            if i == n {
                continue;
            }
            let mut ready = unit_free[u];
            let mut ok = true;
            for tok in insns[i].pop.iter() {
                match sems[tok.index()].front() {
                    Some(&(at, _)) => ready = ready.max(at),
                    None => {
                        ok = false;
                        blocked.get_or_insert((u, i, tok));
                    }
                }
            }
            if ok && best.is_none_or(|(r, _)| ready < r) {
                best = Some((ready, u));
            }
        }
        let Some((ready, u)) = best else {
            return match blocked {
                None => Ok(Some(total)),
                Some((u, i, token)) => Err(Deadlock {
                    unit: Unit::ALL[u].name(),
                    insn: i,
                    token,
                }),
            };
        };
        let i = heads[u];
        heads[u] = next[i];
        let insn = &insns[i];
        // the binding token says why the unit waited
        let mut cause = None;
        let mut latest = unit_free[u];
        for tok in insn.pop.iter() {
            let (at, origin) = sems[tok.index()].pop_front().expect("checked above");
            if at > latest {
                latest = at;
                cause = Some(origin.unwrap_or(match tok {
                    Token::InputFull | Token::WeightFull => Stall::Dram,
                    Token::Stored => Stall::Dependency,
                    _ => Stall::Buffer,
                }));
            }
        }
        let busy = busy[i];
        let (start, end, done) = match insn.kind {
            Kind::Load(d) | Kind::Store(d) => {
                let c = d.space as usize;
                let start = ready.max(channel_free[c]);
                channel_free[c] = start + busy;
                (start, start + busy, start + busy + m.latency(d.space))
            }
            _ => (ready, ready + busy, ready + busy),
        };
        rec.record(
            i,
            Event {
                start,
                end,
                done,
                wait: ready - unit_free[u],
                cause,
            },
        );
        unit_free[u] = end;
        total = total.max(done);
        if cutoff < u64::MAX {
            unit_left[u] -= busy;
            let mut bound = total.max(unit_free[u] + unit_left[u]);
            if let Kind::Load(d) | Kind::Store(d) = insn.kind {
                let c = d.space as usize;
                channel_left[c] -= busy;
                if channel_left[c] > 0 {
                    bound = bound.max(channel_free[c] + channel_left[c] + m.latency(d.space));
                }
            }
            if bound > cutoff {
                return Ok(None);
            }
        }
        // a load that waited on the previous layer passes that on to what it feeds
        let origin = match (insn.kind, cause) {
            (Kind::Load(_), Some(Stall::Dependency)) => Some(Stall::Dependency),
            _ => None,
        };
        for tok in insn.push.iter() {
            sems[tok.index()].push_back((done, origin));
        }
    }
}

/// Why hardware counting semaphores would not reproduce a program's timing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CountingError {
    #[error("instruction {insn} takes no cycles; the RTL spends at least one cycle on every instruction")]
    Empty { insn: usize },
    #[error("instruction {insn} gives its {token:?} token at cycle {at}, before instruction {earlier} gave the {token:?} token it pushed first (cycle {earlier_at}); counting semaphores would hand them out of order")]
    OutOfOrder {
        insn: usize,
        token: Token,
        at: u64,
        earlier: usize,
        earlier_at: u64,
    },
}

/// Checks that the RTL's counting semaphores give exactly this timing. The rules above take a
/// semaphore's tokens in the order they were pushed; hardware counts them, so the two agree when
/// every semaphore's tokens become available in push order (transfers through the two channels
/// could otherwise finish out of order), and when no instruction takes zero cycles (the RTL
/// starts at most one instruction a cycle on each unit).
pub fn check_counting(m: &Machine, insns: &[Insn], t: &Timing) -> Result<(), CountingError> {
    let mut last: [Option<(usize, u64)>; 7] = [None; 7];
    for (i, insn) in insns.iter().enumerate() {
        if busy_cycles(m, insn) == 0 {
            return Err(CountingError::Empty { insn: i });
        }
        for tok in insn.push.iter() {
            if let Some((earlier, earlier_at)) = last[tok.index()] {
                if t.done[i] < earlier_at {
                    return Err(CountingError::OutOfOrder {
                        insn: i,
                        token: tok,
                        at: t.done[i],
                        earlier,
                        earlier_at,
                    });
                }
            }
            last[tok.index()] = Some((i, t.done[i]));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::{Buffer, Dma, Gemm, Tokens, Vector, VectorOp};

    fn machine() -> Machine {
        Machine {
            rows: 4,
            cols: 3,
            dataflow: Dataflow::WeightStationary,
            lanes: 2,
            dram: Channel {
                milli_bytes_per_cycle: 1000,
                latency: 100,
                beat_bytes: 1,
            },
            global: Channel {
                milli_bytes_per_cycle: 8000,
                latency: 1,
                beat_bytes: 1,
            },
            global_bytes: 1 << 20,
            slots: 2,
        }
    }

    fn load(space: Space, push: Token) -> Insn {
        Insn {
            kind: Kind::Load(Dma {
                buffer: Buffer::Input,
                slot: 0,
                space,
                addr: 0,
                rows: 1,
                row_bytes: 16,
                stride: 16,
                tile: Default::default(),
            }),
            pop: Tokens::NONE,
            push: Tokens::NONE.with(push),
            layer: 0,
        }
    }

    fn pool(pop: Token) -> Insn {
        Insn {
            kind: Kind::Vector(Vector {
                op: VectorOp::Pool,
                input_slot: 0,
                weight_slot: 0,
                output_slot: 0,
                elements: 4,
                ops: 4,
                tile: Default::default(),
            }),
            pop: Tokens::NONE.with(pop),
            push: Tokens::NONE,
            layer: 0,
        }
    }

    #[test]
    fn gemm_cycles_are_the_sum_of_the_folds() {
        for d in [
            Dataflow::WeightStationary,
            Dataflow::OutputStationary,
            Dataflow::InputStationary,
        ] {
            let m = Machine {
                dataflow: d,
                ..machine()
            };
            let f = m.folding();
            for (a, b, c) in [(1, 1, 1), (5, 9, 7), (4, 3, 12), (13, 1, 2)] {
                let [sr, sc, t] = [f.rows, f.cols, f.stream].map(|x| x.of(a, b, c));
                let mut sum = 0;
                for i in (0..sr).step_by(m.rows as usize) {
                    for j in (0..sc).step_by(m.cols as usize) {
                        sum += f.fold_cycles((sr - i).min(m.rows), (sc - j).min(m.cols), t);
                    }
                }
                assert_eq!(m.gemm_cycles(a, b, c), sum, "{d:?} {a} {b} {c}");
            }
        }
    }

    #[test]
    fn tokens_that_would_arrive_out_of_order_are_refused_for_the_rtl() {
        let m = machine();
        // a slow DRAM load, then a fast global-buffer load into the same semaphore
        let insns = [
            load(Space::Dram, Token::InputFull),
            load(Space::Global, Token::InputFull),
            pool(Token::InputFull),
            pool(Token::InputFull),
        ];
        let t = run(&m, &insns).unwrap();
        assert!(t.done[1] < t.done[0]);
        let e = check_counting(&m, &insns, &t).unwrap_err();
        assert!(
            matches!(
                e,
                CountingError::OutOfOrder {
                    insn: 1,
                    earlier: 0,
                    ..
                }
            ),
            "{e}"
        );
        // in order, they are fine
        let insns = [
            load(Space::Global, Token::InputFull),
            load(Space::Dram, Token::InputFull),
            pool(Token::InputFull),
            pool(Token::InputFull),
        ];
        let t = run(&m, &insns).unwrap();
        check_counting(&m, &insns, &t).unwrap();
    }

    #[test]
    fn the_cutoff_is_exact_on_a_busy_channel_and_a_busy_unit() {
        let m = machine();
        let gemm = Insn {
            kind: Kind::Gemm(Gemm {
                input_slot: 0,
                weight_slot: 0,
                output_slot: 0,
                m: 5,
                k: 3,
                n: 3,
                accumulate: false,
                macs: 45,
                tile: Default::default(),
            }),
            pop: Tokens::NONE,
            push: Tokens::NONE,
            layer: 0,
        };
        // back-to-back transfers (their bound is tight from the first), then back-to-back
        // GEMM tiles (likewise)
        for insns in [vec![load(Space::Dram, Token::InputFull); 5], vec![gemm; 4]] {
            let total = run(&m, &insns).unwrap().total;
            assert_eq!(total_within(&m, &insns, total), Ok(Some(total)));
            assert_eq!(total_within(&m, &insns, total - 1), Ok(None));
        }
    }

    #[test]
    fn an_instruction_of_no_cycles_is_refused_for_the_rtl() {
        let m = machine();
        let insns = [Insn {
            kind: Kind::Gemm(Gemm {
                input_slot: 0,
                weight_slot: 0,
                output_slot: 0,
                m: 0,
                k: 3,
                n: 3,
                accumulate: false,
                macs: 0,
                tile: Default::default(),
            }),
            pop: Tokens::NONE,
            push: Tokens::NONE,
            layer: 0,
        }];
        let t = run(&m, &insns).unwrap();
        assert_eq!(
            check_counting(&m, &insns, &t),
            Err(CountingError::Empty { insn: 0 })
        );
    }

    /// The bus bytes of a transfer equal every beat its rows touch, counted one by one.
    #[test]
    fn bus_bytes_count_every_beat_a_row_touches() {
        for w in [1u64, 2, 4, 16, 64] {
            let c = Channel {
                milli_bytes_per_cycle: 1000,
                latency: 0,
                beat_bytes: w,
            };
            for addr in [0u64, 1, 3, 17, 1000] {
                for rows in [1u64, 2, 7, 130] {
                    for row_bytes in [1u64, 3, 16, 40] {
                        for stride in [row_bytes, row_bytes + 1, 48, 100, 129] {
                            let mut beats = std::collections::BTreeSet::new();
                            for r in 0..rows {
                                for b in 0..row_bytes {
                                    beats.insert((addr + r * stride + b) / w);
                                }
                            }
                            // contiguous rows share their boundary beats; others are bursts each
                            let want = if w == 1 || stride == row_bytes {
                                beats.len() as u64 * w
                            } else {
                                (0..rows)
                                    .map(|r| {
                                        let a = addr + r * stride;
                                        ((a + row_bytes - 1) / w - a / w + 1) * w
                                    })
                                    .sum()
                            };
                            assert_eq!(
                                c.bus_bytes(addr, rows, row_bytes, stride),
                                want,
                                "w {w} addr {addr} rows {rows} row {row_bytes} stride {stride}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// A description's DRAM bus carries a cycle's bytes in one beat; its global buffer's port
    /// moves single bytes.
    #[test]
    fn the_dram_bus_is_the_smallest_power_of_two_of_a_cycles_bytes() {
        for (rate, w) in [(0.5, 1), (2.4, 4), (16.0, 16), (43.0, 64), (200.0, 256)] {
            assert_eq!(Channel::bus(rate, 10).beat_bytes, w, "{rate}");
        }
        assert_eq!(Channel::of(64.0, 2).beat_bytes, 1);
    }
}
