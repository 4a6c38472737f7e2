//! The instruction set of etch's accelerator: a decoupled load / compute / store machine in the
//! family of VTA and Gemmini. Three in-order units each run their own instruction stream; they
//! meet only through the on-chip buffers and counting semaphores ("dependency tokens"), so the
//! next tile loads while this one computes and the last one stores. `docs/accelerator.md` gives
//! the timing rule of every instruction; `crate::machine` implements it.

use serde::Serialize;

/// The three units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Unit {
    Load,
    Compute,
    Store,
}

impl Unit {
    pub const ALL: [Unit; 3] = [Unit::Load, Unit::Compute, Unit::Store];
    pub fn name(self) -> &'static str {
        match self {
            Unit::Load => "load",
            Unit::Compute => "compute",
            Unit::Store => "store",
        }
    }
}

/// The on-chip buffers. Each is split into `slots` equal halves (two when the description is
/// double-buffered, else one); a tile occupies one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Buffer {
    /// Activations the array or the vector unit reads (the description's ifmap buffer).
    Input,
    /// Weights, biases and requantization parameters (the filter buffer).
    Weight,
    /// Accumulators and the output codes made from them (the ofmap buffer).
    Output,
}

impl Buffer {
    pub fn name(self) -> &'static str {
        match self {
            Buffer::Input => "input",
            Buffer::Weight => "weight",
            Buffer::Output => "output",
        }
    }
}

/// The counting semaphores between the units. A token says a slot is full (its producer is done
/// with it) or free (its consumer is done with it); `Stored` says a layer's last store has
/// reached DRAM, so the next layer may read what it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Token {
    /// load → compute: an input slot holds its tile.
    InputFull,
    /// compute → load: an input slot may be overwritten.
    InputFree,
    /// load → compute: a weight slot holds its tile.
    WeightFull,
    /// compute → load: a weight slot may be overwritten.
    WeightFree,
    /// compute → store: an output slot holds finished codes.
    OutputFull,
    /// store → compute: an output slot may be reused.
    OutputFree,
    /// store → load: a layer's output is in DRAM.
    Stored,
}

impl Token {
    pub const ALL: [Token; 7] = [
        Token::InputFull,
        Token::InputFree,
        Token::WeightFull,
        Token::WeightFree,
        Token::OutputFull,
        Token::OutputFree,
        Token::Stored,
    ];
    pub fn index(self) -> usize {
        self as usize
    }
    /// The unit that pushes this token and the one that pops it.
    pub fn route(self) -> (Unit, Unit) {
        match self {
            Token::InputFull | Token::WeightFull => (Unit::Load, Unit::Compute),
            Token::InputFree | Token::WeightFree => (Unit::Compute, Unit::Load),
            Token::OutputFull => (Unit::Compute, Unit::Store),
            Token::OutputFree => (Unit::Store, Unit::Compute),
            Token::Stored => (Unit::Store, Unit::Load),
        }
    }
    /// How many tokens the semaphore holds when the machine starts: every slot free.
    pub fn initial(self, slots: u32) -> u32 {
        match self {
            Token::InputFree | Token::WeightFree | Token::OutputFree => slots,
            _ => 0,
        }
    }
}

/// A small set of tokens (one of each kind at most).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Tokens(pub u8);

impl Tokens {
    pub const NONE: Tokens = Tokens(0);
    pub fn with(self, t: Token) -> Tokens {
        Tokens(self.0 | 1 << t.index())
    }
    pub fn has(self, t: Token) -> bool {
        self.0 & 1 << t.index() != 0
    }
    /// The tokens in the set, in `Token::ALL`'s order.
    pub fn iter(self) -> impl Iterator<Item = Token> {
        let mut bits = self.0;
        std::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            Some(Token::ALL[i])
        })
    }
}

/// Where a tensor lives between layers: DRAM, or the description's global buffer (on chip).
/// Each has its own channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub enum Space {
    #[default]
    Dram,
    Global,
}

impl Space {
    pub fn name(self) -> &'static str {
        match self {
            Space::Dram => "dram",
            Space::Global => "global",
        }
    }
}

/// Where a tile sits in its layer, for the datapath's address generators (timing ignores it):
/// the group, the first image and output row, the first reduction (input) channel and the first
/// output channel, both within the group. A weight load names the weight tile it brings (`c0` is
/// 0 when it holds the whole reduction), an input load the first channel and output row its rows
/// serve, a compute instruction the tile it computes, a store the tile it writes. Vector work
/// that is not a convolution's leaves it zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Tile {
    pub group: u32,
    pub image: u32,
    pub row0: u32,
    pub c0: u32,
    pub co0: u32,
}

/// A DMA transfer between memory (`space`) and a buffer slot: `rows` runs of `row_bytes`
/// contiguous bytes, `stride` bytes apart in memory (a 2-D strided copy: a tile of a tensor, a
/// channel slice of a Concat, a window of rows with its halo).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Dma {
    pub buffer: Buffer,
    pub slot: u32,
    pub space: Space,
    pub addr: u64,
    pub rows: u64,
    pub row_bytes: u64,
    pub stride: u64,
    pub tile: Tile,
}

impl Dma {
    pub fn bytes(&self) -> u64 {
        self.rows * self.row_bytes
    }
    /// The bytes it moves to or from DRAM (0 for the global buffer).
    pub fn dram_bytes(&self) -> u64 {
        match self.space {
            Space::Dram => self.bytes(),
            Space::Global => 0,
        }
    }
}

/// What the array computes for one tile: `m × k` activations (im2col rows, made on the fly from
/// the input slot) times `k × n` weights, accumulated into `m × n` partial sums in the output
/// slot. `accumulate` adds to the partial sums already there (a later reduction tile).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Gemm {
    pub input_slot: u32,
    pub weight_slot: u32,
    pub output_slot: u32,
    pub m: u64,
    /// Reduction length as the array runs it (after N:M compression).
    pub k: u64,
    /// Output channels as the array runs them (after pruned channels are dropped).
    pub n: u64,
    pub accumulate: bool,
    /// MACs of the tile as the model states them (dense), for the report and the energy.
    pub macs: u64,
    pub tile: Tile,
}

/// What the vector unit does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum VectorOp {
    /// Accumulators to output codes: bias, fixed-point multiplier, shift, zero point, clamp (the
    /// fused activation).
    Requantize,
    /// Max, average or global-average pooling over windows of the input slot.
    Pool,
    /// Element-wise Add / Mul of two code tensors (residual Add, SE broadcast Mul), requantized.
    Elementwise,
    /// A unary function of 8-bit codes through a 256-entry table (ReLU6, HardSwish, Sigmoid, …).
    Table,
    /// A depthwise convolution: one multiply-accumulate per lane per cycle.
    Depthwise,
}

impl VectorOp {
    pub fn name(self) -> &'static str {
        match self {
            VectorOp::Requantize => "requantize",
            VectorOp::Pool => "pool",
            VectorOp::Elementwise => "elementwise",
            VectorOp::Table => "table",
            VectorOp::Depthwise => "depthwise",
        }
    }
}

/// One vector instruction: `ops` lane operations over `elements` output elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Vector {
    pub op: VectorOp,
    pub input_slot: u32,
    /// The weight slot a depthwise convolution reads (0 for the other ops).
    pub weight_slot: u32,
    pub output_slot: u32,
    pub elements: u64,
    pub ops: u64,
    pub tile: Tile,
}

/// What an instruction does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Kind {
    /// Memory → buffer (load unit).
    Load(Dma),
    /// Buffer → memory (store unit).
    Store(Dma),
    /// A tile on the array (compute unit).
    Gemm(Gemm),
    /// A vector operation (compute unit).
    Vector(Vector),
}

impl Kind {
    /// The unit that runs it.
    pub fn unit(&self) -> Unit {
        match self {
            Kind::Load(_) => Unit::Load,
            Kind::Store(_) => Unit::Store,
            Kind::Gemm(_) | Kind::Vector(_) => Unit::Compute,
        }
    }
}

/// One instruction: what it does, the tokens it waits for (and takes) before it starts, and the
/// tokens it gives when it is done. `layer` indexes `Program::layers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Insn {
    pub kind: Kind,
    pub pop: Tokens,
    pub push: Tokens,
    pub layer: u32,
}
