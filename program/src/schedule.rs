//! Turning a tiled layer into instructions: the loads, GEMM or vector tiles, requantizations and
//! stores in loop order, with the dependency tokens that let the units overlap. The rules:
//! - a tile is loaded unless it is already the one in its buffer (the reuse the loop order buys);
//!   a load takes a free slot of its buffer (`…Free`) and says when it is full (`…Full`);
//! - the compute instruction that last reads a tile frees its slot;
//! - the first reduction tile of an output tile takes an output slot (`OutputFree`); the
//!   requantization after the last one fills it (`OutputFull`), and its store frees it again;
//! - a layer's first load waits until the previous layer's last store is in DRAM (`Stored`):
//!   layers do not overlap, so a layer takes exactly the cycles it takes alone, which is what the
//!   tiling search measures.

use crate::isa::{Buffer, Dma, Gemm, Insn, Kind, Space, Tile, Token, Tokens, Vector, VectorOp};
use crate::machine::Machine;
use crate::tiling::{Arith, ConvShape, LoopOrder, Spaces, Tiling};

/// Work for the vector unit: `elements` outputs, each reading `input.0 / input.1` input
/// elements (both operands of an element-wise op) and taking `ops.0 / ops.1` lane operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VectorWork {
    pub op: VectorOp,
    pub elements: u64,
    pub input: (u64, u64),
    pub ops: (u64, u64),
    /// A pooling's rows (`lower::VectorWork::rows`): tiles are whole output rows or planes, read
    /// the input rows their windows cover, and name their first.
    pub rows: Option<crate::lower::PoolRows>,
    /// An element-wise op of two tensors of the output's size (a residual Add): a tile's load
    /// brings both operands' runs as two rows, the lower address first (`Addrs::second`).
    pub binary: bool,
}

/// Where a layer's tensors live: their addresses, and the spaces of its activations (weights
/// are in DRAM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Addrs {
    pub input: u64,
    /// The second operand of a binary element-wise layer (`VectorWork::binary`).
    pub second: u64,
    pub weight: u64,
    pub output: u64,
    pub spaces: Spaces,
}

/// Builds the instruction stream, layer after layer.
#[derive(Debug, Default)]
pub struct Emitter {
    pub insns: Vec<Insn>,
    slots: u32,
    loads: [u64; 2],
    outputs: u64,
    /// The tile in the input and weight buffers, and the last instruction that read it.
    current: [Option<[u64; 4]>; 2],
    last_use: [Option<usize>; 2],
    /// A store has been emitted since the last `Stored` token was taken.
    stored_pending: bool,
    /// The current layer's first load has taken its `Stored` token (or needs none).
    barrier_done: bool,
    layer: u32,
}

fn buf_index(b: Buffer) -> usize {
    match b {
        Buffer::Input => 0,
        _ => 1,
    }
}

impl Emitter {
    pub fn new(m: &Machine) -> Emitter {
        Emitter::with_buffer(m, Vec::new())
    }

    /// An emitter writing into `buf` (cleared first): a search that emits many candidates
    /// reuses one buffer.
    pub fn with_buffer(m: &Machine, mut buf: Vec<Insn>) -> Emitter {
        buf.clear();
        Emitter {
            insns: buf,
            slots: m.slots,
            ..Default::default()
        }
    }

    fn push(&mut self, kind: Kind, pop: Tokens, push: Tokens) -> usize {
        self.insns.push(Insn {
            kind,
            pop,
            push,
            layer: self.layer,
        });
        self.insns.len() - 1
    }

    /// Starts a layer: its first load waits for what earlier layers stored.
    pub fn begin_layer(&mut self, layer: u32) {
        self.layer = layer;
        self.barrier_done = !self.stored_pending;
        self.current = [None, None];
    }

    /// Ends a layer: frees the slots its last tiles held, and marks its last store.
    pub fn end_layer(&mut self) {
        self.release(Buffer::Input);
        self.release(Buffer::Weight);
        if let Some(last) = self
            .insns
            .iter()
            .rposition(|i| matches!(i.kind, Kind::Store(_)) && i.layer == self.layer)
        {
            self.insns[last].push = self.insns[last].push.with(Token::Stored);
            self.stored_pending = true;
        }
    }

    /// The tile in `buf` is done with: the last instruction that read it frees its slot.
    fn release(&mut self, buf: Buffer) {
        let b = buf_index(buf);
        if self.current[b].take().is_some() {
            if let Some(i) = self.last_use[b].take() {
                let free = match buf {
                    Buffer::Input => Token::InputFree,
                    _ => Token::WeightFree,
                };
                self.insns[i].push = self.insns[i].push.with(free);
            }
        }
    }

    /// Loads tile `key` into `buf` unless it is there already (the transfer made by `dma` only
    /// then); true when it loaded.
    fn load(&mut self, buf: Buffer, key: [u64; 4], dma: impl FnOnce() -> Dma) -> bool {
        let b = buf_index(buf);
        if self.current[b] == Some(key) {
            return false;
        }
        self.release(buf);
        let (free, full) = match buf {
            Buffer::Input => (Token::InputFree, Token::InputFull),
            _ => (Token::WeightFree, Token::WeightFull),
        };
        let mut pop = Tokens::NONE.with(free);
        if !self.barrier_done {
            pop = pop.with(Token::Stored);
            self.barrier_done = true;
            self.stored_pending = false;
        }
        let slot = (self.loads[b] % self.slots as u64) as u32;
        self.loads[b] += 1;
        self.push(
            Kind::Load(Dma { slot, ..dma() }),
            pop,
            Tokens::NONE.with(full),
        );
        self.current[b] = Some(key);
        true
    }

    fn output_slot(&self) -> u32 {
        (self.outputs % self.slots as u64) as u32
    }

    /// Requantizes (or finishes) an output tile and stores it.
    fn finish_output(&mut self, compute: usize, store: Dma) {
        let ins = &mut self.insns[compute];
        ins.push = ins.push.with(Token::OutputFull);
        let slot = self.output_slot();
        self.outputs += 1;
        self.push(
            Kind::Store(Dma { slot, ..store }),
            Tokens::NONE.with(Token::OutputFull),
            Tokens::NONE.with(Token::OutputFree),
        );
    }

    /// Emits a convolution (or Gemm, or depthwise convolution) tiled by `t`.
    pub fn conv(&mut self, s: &ConvShape, a: &Arith, t: &Tiling, at: Addrs) {
        let tiles = |total: u64, tile: u64| {
            let mut v = Vec::new();
            let mut x = 0;
            while x < total {
                let n = tile.max(1).min(total - x);
                v.push((x, n));
                x += n;
            }
            v
        };
        // (first image, images, first row, rows)
        let mut m_tiles = Vec::new();
        if t.rows >= s.out_h {
            for (i, b) in tiles(s.images, t.images) {
                m_tiles.push((i, b, 0, s.out_h));
            }
        } else {
            for img in 0..s.images {
                for (r0, r) in tiles(s.out_h, t.rows) {
                    m_tiles.push((img, 1, r0, r));
                }
            }
        }
        let c_tiles = tiles(s.cin, t.in_channels);
        let co_tiles = tiles(s.cout, t.out_channels);
        let mut steps = Vec::with_capacity(m_tiles.len() * co_tiles.len());
        match t.order {
            LoopOrder::WeightsOuter => {
                for co in 0..co_tiles.len() {
                    for mi in 0..m_tiles.len() {
                        steps.push((mi, co));
                    }
                }
            }
            LoopOrder::InputsOuter => {
                for mi in 0..m_tiles.len() {
                    for co in 0..co_tiles.len() {
                        steps.push((mi, co));
                    }
                }
            }
        }
        // channels of the input and output tensors (all groups), and their planes' bytes
        let (in_channels, out_channels) = if s.depthwise {
            (s.cout, s.cout)
        } else {
            (s.cin * s.groups, s.cout * s.groups)
        };
        let in_plane = a.act_bytes(s.in_h * s.in_w);
        let out_plane = a.act_bytes(s.out_h * s.out_w);
        let slot_of = |loads: u64, slots: u32| ((loads + slots as u64 - 1) % slots as u64) as u32;
        let u = |v: u64| v as u32;
        for g in 0..s.groups {
            for &(mi, coi) in &steps {
                let (img, b, r0, r) = m_tiles[mi];
                let (co0, co) = co_tiles[coi];
                let m = b * r * s.out_w;
                let tile = |c0: u64| Tile {
                    group: u(g),
                    image: u(img),
                    row0: u(r0),
                    c0: u(c0),
                    co0: u(co0),
                };
                for (k, &(c0, c)) in c_tiles.iter().enumerate() {
                    // weights first; a slot holding the whole reduction loads with the first tile
                    let (wc, wc0) = if t.whole_weights { (s.cin, 0) } else { (c, c0) };
                    let new_w = self.load(Buffer::Weight, [g, coi as u64, wc0, 0], || {
                        let w_bytes = s.weight_bytes(a, co, wc, k == 0 || t.whole_weights);
                        Dma {
                            buffer: Buffer::Weight,
                            slot: 0,
                            space: Space::Dram,
                            addr: at.weight + s.weight_tile_offset(a, t, g, co0, wc0),
                            rows: 1,
                            row_bytes: w_bytes,
                            stride: w_bytes,
                            tile: Tile {
                                image: 0,
                                row0: 0,
                                ..tile(wc0)
                            },
                        }
                    });
                    // the input channels this tile reads: its own channels (depthwise), the
                    // reduction tile, or the whole reduction
                    let (ich, ich0, key) = if s.depthwise {
                        (co, co0, [g, mi as u64, coi as u64, 0])
                    } else if t.whole_inputs {
                        (s.cin, 0, [g, mi as u64, 0, 1])
                    } else {
                        (c, c0, [g, mi as u64, c0, 1])
                    };
                    let new_in = self.load(Buffer::Input, key, || {
                        let in_rows = s.in_rows(r);
                        let in_row0 = s.in_row0(r0, r);
                        let first_channel = if s.depthwise { ich0 } else { g * s.cin + ich0 };
                        Dma {
                            buffer: Buffer::Input,
                            slot: 0,
                            space: at.spaces.input,
                            addr: at.input
                                + in_plane * (img * in_channels + first_channel)
                                + a.act_bytes(in_row0 * s.in_w),
                            rows: b * ich,
                            row_bytes: a.act_bytes(in_rows * s.in_w),
                            stride: in_plane,
                            tile: Tile {
                                co0: 0,
                                ..tile(ich0)
                            },
                        }
                    });
                    let mut pop = Tokens::NONE;
                    if new_in {
                        pop = pop.with(Token::InputFull);
                    }
                    if new_w {
                        pop = pop.with(Token::WeightFull);
                    }
                    if k == 0 {
                        pop = pop.with(Token::OutputFree);
                    }
                    let (in_slot, w_slot) = (
                        slot_of(self.loads[0], self.slots),
                        slot_of(self.loads[1], self.slots),
                    );
                    let kind = if s.depthwise {
                        Kind::Vector(Vector {
                            op: VectorOp::Depthwise,
                            input_slot: in_slot,
                            weight_slot: w_slot,
                            output_slot: self.output_slot(),
                            elements: m * co,
                            ops: s.tile_macs(m, c, co),
                            tile: tile(c0),
                        })
                    } else {
                        Kind::Gemm(Gemm {
                            input_slot: in_slot,
                            weight_slot: w_slot,
                            output_slot: self.output_slot(),
                            m,
                            k: a.k_run(c * s.kernel_area),
                            n: a.n_run(co),
                            accumulate: k > 0,
                            macs: s.tile_macs(m, c, co),
                            tile: tile(c0),
                        })
                    };
                    let i = self.push(kind, pop, Tokens::NONE);
                    self.last_use = [Some(i), Some(i)];
                }
                let rq = self.push(
                    Kind::Vector(Vector {
                        op: VectorOp::Requantize,
                        input_slot: self.output_slot(),
                        weight_slot: 0,
                        output_slot: self.output_slot(),
                        elements: m * co,
                        ops: m * co,
                        tile: tile(0),
                    }),
                    Tokens::NONE,
                    Tokens::NONE,
                );
                let first_out = if s.depthwise { co0 } else { g * s.cout + co0 };
                self.finish_output(
                    rq,
                    Dma {
                        buffer: Buffer::Output,
                        slot: 0,
                        space: at.spaces.output,
                        addr: at.output
                            + out_plane * (img * out_channels + first_out)
                            + a.act_bytes(r0 * s.out_w),
                        rows: b * co,
                        row_bytes: a.act_bytes(r * s.out_w),
                        stride: out_plane,
                        tile: tile(0),
                    },
                );
            }
        }
    }

    /// Emits vector work in tiles of `tile` outputs: load, operate, store.
    pub fn vector(&mut self, w: &VectorWork, tile: u64, a: &Arith, at: Addrs) {
        let (op, elements, in_per_out, ops_per_out) = (w.op, w.elements, w.input, w.ops);
        let mut e0 = 0;
        let mut n = 0u64;
        while e0 < elements {
            let mut e = tile.max(1).min(elements - e0);
            // the input run the tile reads: a pooling's rows, else its share of the input
            let (first, count) = match w.rows {
                Some(r) => {
                    let plane = r.out_plane().max(1);
                    if !r.exact && e < plane {
                        e = e.min(plane - e0 % plane);
                    }
                    r.input_span(e0, e)
                }
                None => (
                    (e0 * in_per_out.0) / in_per_out.1.max(1),
                    (e * in_per_out.0).div_ceil(in_per_out.1.max(1)),
                ),
            };
            // (address, rows, bytes a row, stride)
            let (addr, rows, row_bytes, stride) = if w.binary {
                // both operands' runs of the tile's elements, the lower address first
                let (lo, hi) = (at.input.min(at.second), at.input.max(at.second));
                (lo + a.act_bytes(e0), 2, a.act_bytes(e), hi - lo)
            } else {
                let in_bytes = a.act_bytes(count);
                (at.input + a.act_bytes(first), 1, in_bytes, in_bytes)
            };
            self.load(Buffer::Input, [u64::MAX, n, 0, 2], || Dma {
                buffer: Buffer::Input,
                slot: 0,
                space: at.spaces.input,
                addr,
                rows,
                row_bytes,
                stride,
                tile: Tile::default(),
            });
            let v = self.push(
                Kind::Vector(Vector {
                    op,
                    weight_slot: 0,
                    input_slot: ((self.loads[0] + self.slots as u64 - 1) % self.slots as u64)
                        as u32,
                    output_slot: self.output_slot(),
                    elements: e,
                    ops: (e * ops_per_out.0).div_ceil(ops_per_out.1.max(1)),
                    tile: w.rows.map_or(Tile::default(), |r| {
                        let plane = r.out_plane().max(1);
                        Tile {
                            c0: (e0 / plane) as u32,
                            row0: (e0 % plane / r.out_w.max(1)) as u32,
                            ..Tile::default()
                        }
                    }),
                }),
                Tokens::NONE.with(Token::InputFull).with(Token::OutputFree),
                Tokens::NONE,
            );
            self.last_use[0] = Some(v);
            let out_bytes = a.act_bytes(e);
            self.finish_output(
                v,
                Dma {
                    buffer: Buffer::Output,
                    slot: 0,
                    space: at.spaces.output,
                    addr: at.output + a.act_bytes(e0),
                    rows: 1,
                    row_bytes: out_bytes,
                    stride: out_bytes,
                    tile: Tile::default(),
                },
            );
            e0 += e;
            n += 1;
        }
    }
}
