//! The datapath of the program's accelerator as RTL: DRAM and the global buffer, the input,
//! weight and output buffers (one region per slot), the DMA engines that move a transfer's bytes
//! while the core's channel holds it, the R×C array computing a GEMM tile fold by fold in the
//! description's dataflow, and the vector unit (requantization, pooling, depthwise, Add, tables). It does what
//! `crate::datapath::execute` does, instruction by instruction, on the same DRAM image, and
//! within each instruction's cycles: the core starts every engine when the instruction starts,
//! and the testbench fails when the core ends an instruction its engine has not finished.
//!
//! The layers' geometry (kernel, stride, dilation, padding, planes, the codes' forms) is data:
//! the host writes one 256-bit word per program layer into the layer table (`layers.hex`,
//! fields in [`TABLE`]) before it starts the core, as it writes the instruction streams.
//!
//! Step 1 of the RTL datapath: it is behavioural (the array's R×C multiply-accumulates of a
//! cycle, each lane's im2col address with 32-bit integer arithmetic), checked for values and
//! cycles under Verilator and Icarus, not yet for synthesis. The vector unit runs
//! requantization, max pooling, depthwise tiles, residual Adds and activation tables (the host
//! writes the tables and the binary layers' per-channel thresholds into the constants memory,
//! `constants.hex`); [`plan`] refuses anything else, naming the layer.

use etch_program::encode::{self, Field, Word};
use etch_program::isa::{Buffer, Kind, Space, VectorOp};
use etch_program::machine::{Channel, Dim};
use etch_program::tiling::{SlotBytes, PARAM_BYTES};
use etch_program::Program;

use super::ast::*;
use crate::datapath::{DatapathError, Image, WeightForm};
use crate::program::InputCode;

/// The host-written memory files of the datapath.
pub const DRAM_IMAGE: &str = "dram.hex";
pub const LAYER_TABLE: &str = "layers.hex";
pub const INPUT_IMAGE: &str = "input.hex";
/// The layers' constants: binary layers' per-channel thresholds and activation tables.
pub const CONSTANTS: &str = "constants.hex";
/// The output codes the testbench reads back, and those the CPU executor computed.
pub const VALUES: &str = "values.txt";
pub const EXPECTED_VALUES: &str = "values_expected.txt";

const fn fld(name: &'static str, lsb: u32, width: u32) -> Field {
    Field { name, lsb, width }
}

// The layer table's fields.
const T_CHAIN: Field = fld("in_chain", 0, 1);
const T_CONSTS: Field = fld("has_consts", 1, 1);
const T_IN_SIGNED: Field = fld("input_signed", 2, 1);
const T_OUT_SIGNED: Field = fld("output_signed", 3, 1);
const T_BINARY: Field = fld("binary_input", 4, 1);
/// Binary inputs with one threshold per input channel, from `T_BASE` in the constants memory.
const T_PER_CHANNEL: Field = fld("per_channel_thresholds", 6, 1);
const T_FORM: Field = fld("weight_form", 8, 2);
const T_BITS: Field = fld("weight_bits", 12, 4);
const T_KH: Field = fld("kernel_h", 16, 8);
const T_KW: Field = fld("kernel_w", 24, 8);
const T_SH: Field = fld("stride_h", 32, 8);
const T_SW: Field = fld("stride_w", 40, 8);
const T_DH: Field = fld("dilation_h", 48, 8);
const T_DW: Field = fld("dilation_w", 56, 8);
const T_PH: Field = fld("pad_h", 64, 8);
const T_PW: Field = fld("pad_w", 72, 8);
const T_IN_H: Field = fld("in_h", 80, 16);
const T_IN_W: Field = fld("in_w", 96, 16);
const T_OUT_H: Field = fld("out_h", 112, 16);
const T_OUT_W: Field = fld("out_w", 128, 16);
const T_CIN: Field = fld("cin", 144, 16);
const T_ZP: Field = fld("input_zero_point", 160, 16);
const T_COUT: Field = fld("cout", 176, 16);
/// A depthwise layer's output channels per tile (the tiling's).
const T_TILE_CO: Field = fld("tile_out_channels", 192, 16);
/// Where the layer's constants start in the constants memory: a binary layer's per-channel
/// thresholds, an activation's 256-entry table (indexed by the input code's byte).
const T_BASE: Field = fld("constants_base", 208, 16);
/// A residual Add (`datapath::AddConsts`): the second operand's signedness, the output clamp
/// (codes in the output's signedness) and `zp_y − zp_a − zp_b` as a signed 16-bit number.
const T_SECOND_SIGNED: Field = fld("second_signed", 7, 1);
const T_QMIN: Field = fld("add_qmin", 224, 8);
const T_QMAX: Field = fld("add_qmax", 232, 8);
const T_OFFSET: Field = fld("add_offset", 240, 16);

/// The layer table's fields, for the documentation.
pub const TABLE: [Field; 29] = [
    T_CHAIN,
    T_CONSTS,
    T_IN_SIGNED,
    T_OUT_SIGNED,
    T_BINARY,
    T_PER_CHANNEL,
    T_FORM,
    T_BITS,
    T_KH,
    T_KW,
    T_SH,
    T_SW,
    T_DH,
    T_DW,
    T_PH,
    T_PW,
    T_IN_H,
    T_IN_W,
    T_OUT_H,
    T_OUT_W,
    T_CIN,
    T_ZP,
    T_COUT,
    T_TILE_CO,
    T_BASE,
    T_SECOND_SIGNED,
    T_QMIN,
    T_QMAX,
    T_OFFSET,
];

/// The most bytes a datapath memory may have (its addresses are 32-bit integers).
const MAX_MEMORY: u64 = 1 << 30;

/// What the RTL datapath of one program is built and loaded with.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Bytes of DRAM, of the global buffer (0: none), of an input and a weight slot.
    pub dram: u64,
    pub global: u64,
    pub input_slot: u64,
    pub weight_slot: u64,
    /// Accumulators (and codes) of an output slot.
    pub output_slot: u64,
    /// The most output channels a tile computes: each output slot latches this many channels'
    /// requantization parameters.
    pub slot_channels: u64,
    /// Bytes a DMA engine moves a cycle to or from the global buffer: at least its rate.
    pub dma_bytes: u64,
    /// The DRAM channel: its beat is the AXI4 master's data width, its bandwidth the memory
    /// model's rate, and its latency what the memory model answers in (`MASTER_CYCLES` sooner).
    pub bus: Channel,
    /// The largest window of any layer (rows, columns): the pooling loops' constant bounds.
    pub max_kernel: [u64; 2],
    /// One word per program layer.
    pub table: Vec<Word>,
    /// The layers' constants, each layer's from its table word's base: binary layers'
    /// per-channel input thresholds, activations' tables (256 output codes each).
    pub constants: Vec<i32>,
    pub input: crate::datapath::image::Region,
    pub output: crate::datapath::image::Region,
    pub output_signed: bool,
}

fn not_yet(program: &Program, layer: usize, what: &str) -> DatapathError {
    DatapathError::NotInRtl {
        layer: program.layers[layer].name.clone(),
        what: what.into(),
    }
}

/// The datapath of `program` on its `image`, for buffers of `slots` bytes and accumulators of
/// `acc_bits`; refuses what the RTL does not run yet, naming the layer.
pub fn plan(
    program: &Program,
    image: &Image,
    slots: &SlotBytes,
    acc_bits: u32,
) -> Result<Plan, DatapathError> {
    let mut table = vec![Word::default(); program.layers.len()];
    let mut constants: Vec<i32> = Vec::new();
    let chain = image.first..=image.last;
    for (li, w) in table.iter_mut().enumerate() {
        if !chain.contains(&li) {
            continue;
        }
        w.set(T_CHAIN, 1);
        let Some(c) = &image.layers[li] else {
            continue;
        };
        let pl = &program.layers[li];
        let (binary, zp) = match &c.input {
            InputCode::Int { zero_point } => (0, *zero_point),
            InputCode::Binary { thresholds: t } if t.len() == 1 => (1, t[0]),
            InputCode::Binary { thresholds: t } => {
                w.set(T_PER_CHANNEL, 1);
                if constants.len() >> T_BASE.width != 0 {
                    return Err(not_yet(
                        program,
                        li,
                        &format!(
                            "more than {} constants before this layer's",
                            1u64 << T_BASE.width
                        ),
                    ));
                }
                w.set(T_BASE, constants.len() as u64);
                constants.extend_from_slice(t);
                (1, 0)
            }
        };
        let win = &c.window;
        let cin = pl.shape.map_or(0, |s| s.cin);
        let cout = pl.shape.map_or(0, |s| s.cout);
        let tile_co = pl.tiling.map_or(0, |t| t.out_channels);
        let fields: [(Field, u64); 21] = [
            (T_CONSTS, 1),
            (T_IN_SIGNED, c.input_signed as u64),
            (T_OUT_SIGNED, c.output_signed as u64),
            (T_BINARY, binary),
            (
                T_FORM,
                match c.weights {
                    WeightForm::Int => 0,
                    WeightForm::Shift => 1,
                    WeightForm::Binary => 2,
                },
            ),
            (T_BITS, pl.arith.weight_bits as u64),
            (T_KH, win.kernel[0] as u64),
            (T_KW, win.kernel[1] as u64),
            (T_SH, win.stride[0] as u64),
            (T_SW, win.stride[1] as u64),
            (T_DH, win.dilation[0] as u64),
            (T_DW, win.dilation[1] as u64),
            (T_PH, win.pad[0] as u64),
            (T_PW, win.pad[1] as u64),
            (T_IN_H, c.input_hw[0] as u64),
            (T_IN_W, c.input_hw[1] as u64),
            (T_OUT_H, win.out[0] as u64),
            (T_OUT_W, win.out[1] as u64),
            (T_CIN, cin),
            (T_COUT, cout),
            (T_TILE_CO, tile_co),
        ];
        for (f, v) in fields {
            if v >> f.width != 0 {
                return Err(not_yet(
                    program,
                    li,
                    &format!(
                        "a {} of {v}, wider than the layer table's {} bits",
                        f.name, f.width
                    ),
                ));
            }
            w.set(f, v);
        }
        if !(-(1 << 15)..1 << 15).contains(&zp) {
            return Err(not_yet(
                program,
                li,
                &format!("an input zero point of {zp}"),
            ));
        }
        w.set(T_ZP, zp as u16 as u64);
        if let Some(t) = &c.table {
            if constants.len() >> T_BASE.width != 0 {
                return Err(not_yet(
                    program,
                    li,
                    &format!(
                        "more than {} constants before this layer's",
                        1u64 << T_BASE.width
                    ),
                ));
            }
            w.set(T_BASE, constants.len() as u64);
            constants.extend(t.iter().map(|&b| b as i32));
        }
        if let Some(a) = &c.add {
            if !(-(1 << 15)..1 << 15).contains(&a.offset) {
                return Err(not_yet(
                    program,
                    li,
                    &format!("an Add whose zero points differ by {}", a.offset),
                ));
            }
            w.set(T_SECOND_SIGNED, a.second_signed as u64);
            w.set(T_QMIN, a.qmin as u8 as u64);
            w.set(T_QMAX, a.qmax as u8 as u64);
            w.set(T_OFFSET, a.offset as u16 as u64);
        }
    }
    // an output slot holds accumulators (`acc_bits` each) or a vector instruction's 8-bit codes
    let output_slot = (slots.output * 8 / acc_bits.max(1) as u64).max(slots.output);
    let mut slot_channels = 1;
    for insn in &program.insns {
        let li = insn.layer as usize;
        if !chain.contains(&li) {
            continue;
        }
        let (need, cap, what) = match &insn.kind {
            Kind::Load(d) => match d.buffer {
                Buffer::Weight => (d.bytes(), slots.weight, "weight slot"),
                _ => (d.bytes(), slots.input, "input slot"),
            },
            Kind::Store(d) => (d.bytes(), output_slot, "output slot"),
            Kind::Gemm(g) => {
                slot_channels = slot_channels.max(g.n);
                (g.m * g.n, output_slot, "output slot")
            }
            Kind::Vector(v) => {
                if !matches!(
                    v.op,
                    VectorOp::Requantize
                        | VectorOp::Pool
                        | VectorOp::Depthwise
                        | VectorOp::Elementwise
                        | VectorOp::Table
                ) {
                    return Err(not_yet(
                        program,
                        li,
                        &format!("a vector {} instruction", v.op.name()),
                    ));
                }
                if v.op == VectorOp::Depthwise {
                    // a depthwise tile's channels (`dstart`)
                    let tile = program.layers[li].tiling.map_or(1, |t| t.out_channels);
                    slot_channels = slot_channels.max(tile.max(1));
                }
                let ops = match v.op {
                    VectorOp::Depthwise => {
                        let ka = image.layers[li]
                            .as_ref()
                            .map_or(1, |c| (c.window.kernel[0] * c.window.kernel[1]) as u64);
                        v.elements * ka
                    }
                    _ => v.elements,
                };
                if v.ops < ops {
                    return Err(not_yet(
                        program,
                        li,
                        "a vector instruction of fewer operations than its elements' work",
                    ));
                }
                (v.elements, output_slot, "output slot")
            }
        };
        if need > cap {
            return Err(not_yet(
                program,
                li,
                &format!("an instruction needing {need} of its {what}'s {cap}"),
            ));
        }
    }
    let m = &program.machine;
    if m.dram.beat_bytes > super::axi::MAX_BEAT_BYTES {
        return Err(DatapathError::BusTooWide {
            bytes_per_cycle: m.dram.milli_bytes_per_cycle as f64 / 1000.0,
            beat_bytes: m.dram.beat_bytes,
            limit: super::axi::MAX_BEAT_BYTES,
        });
    }
    if m.dram.latency > super::axi::MAX_LATENCY {
        return Err(DatapathError::LatencyTooLong {
            latency: m.dram.latency,
            limit: super::axi::MAX_LATENCY,
        });
    }
    if m.dram.latency <= super::axi::MASTER_CYCLES {
        return Err(DatapathError::LatencyTooShort {
            latency: m.dram.latency,
            master: super::axi::MASTER_CYCLES,
        });
    }
    let plan = Plan {
        dram: image.dram.len() as u64,
        global: m.global_bytes,
        input_slot: slots.input.max(1),
        weight_slot: slots.weight.max(1),
        output_slot: output_slot.max(1),
        slot_channels,
        dma_bytes: m.global.milli_bytes_per_cycle.div_ceil(1000).max(1),
        bus: m.dram,
        max_kernel: image.layers.iter().flatten().fold([1, 1], |k, c| {
            [
                k[0].max(c.window.kernel[0] as u64),
                k[1].max(c.window.kernel[1] as u64),
            ]
        }),
        table,
        constants,
        input: image.input,
        output: image.output,
        output_signed: image.output_signed,
    };
    for (what, bytes) in [
        ("DRAM", plan.dram),
        ("the global buffer", plan.global),
        ("the input buffer", plan.input_slot * m.slots as u64),
        ("the weight buffer", plan.weight_slot * m.slots as u64),
        ("the output buffer", plan.output_slot * m.slots as u64 * 4),
    ] {
        if bytes > MAX_MEMORY {
            return Err(DatapathError::RtlMemory {
                what,
                bytes,
                limit: MAX_MEMORY,
            });
        }
    }
    Ok(plan)
}

impl Plan {
    /// The constants memory as `$readmemh` lines (one unused word when no layer has any).
    pub fn constants_hex(&self) -> String {
        let mut s = String::new();
        for t in self.constants.iter().chain(std::iter::once(&0)) {
            s.push_str(&format!("{:08x}\n", *t as u32));
        }
        s
    }

    /// The layer table as `$readmemh` lines.
    pub fn table_hex(&self) -> String {
        let mut s = String::new();
        for w in &self.table {
            s.push_str(&w.hex());
            s.push('\n');
        }
        // one word past the end: a word's layer field never indexes outside the memory
        s.push_str(&Word::default().hex());
        s.push('\n');
        s
    }
}

/// Bytes as `$readmemh` lines, one byte each.
pub fn bytes_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for b in bytes {
        s.push_str(&format!("{b:02x}\n"));
    }
    s
}

/// A field of a word, zero-extended to a 32-bit integer.
fn f32(word: &str, f: Field) -> Expr {
    let e = id(word).part(n(f.lsb as i128), f.width);
    if f.width >= 32 {
        e
    } else {
        concat(vec![lit(32 - f.width, 0), e])
    }
}

/// A byte of memory `mem` at `at` as a 32-bit code, sign-extended when `signed` (a 1-bit value).
fn code(mem: &str, at: Expr, signed: Expr) -> Expr {
    let b = id(mem).at(at);
    cond(
        signed,
        concat(vec![repl(24, b.clone().at(n(7))), b.clone()]),
        concat(vec![lit(24, 0), b]),
    )
}

/// An 8-bit code held in a field of the current layer's table word, as a 32-bit integer.
fn field_code(f: Field, signed: Expr) -> Expr {
    let row = || id("c_row");
    cond(
        signed,
        concat(vec![
            repl(24, row().at(n((f.lsb + 7) as i128))),
            row().part(n(f.lsb as i128), 8),
        ]),
        concat(vec![lit(24, 0), row().part(n(f.lsb as i128), 8)]),
    )
}

/// The input row (`axis` 'h') or column ('w') that output position `out` reads at kernel offset
/// `k`: `out · stride + k · dilation − pad`, from the layer's registers.
fn window_at(out: Expr, k: &str, axis: char) -> Expr {
    out.mul(id(format!("g_s{axis}")))
        .add(id(k).mul(id(format!("g_d{axis}"))))
        .sub(id(format!("g_p{axis}")))
}

/// Whether `(iy, ix)` lies inside the input plane (else it is padding).
fn inside_input() -> Expr {
    id("iy")
        .ge(n(0))
        .land(id("iy").lt(id("g_ih")))
        .land(id("ix").ge(n(0)))
        .land(id("ix").lt(id("g_iw")))
}

/// `for (var = 0; var < limit; var = var + 1) body`
fn for_(var: &str, limit: Expr, body: Vec<Stmt>) -> Stmt {
    Stmt::For(var.into(), n(0), limit, body)
}

/// The DMA engine of a unit (`l`: loads into the input and weight slots, `s`: stores from the
/// output slots): it starts when the core's channel grants the transfer; to or from DRAM it is
/// an AXI4 master (`axi`), to or from the global buffer it moves `dma_bytes` bytes a cycle, row
/// by row as the word's rows, row bytes and stride say.
fn dma_engine(m: &mut Module, x: &str, plan: &Plan, global: bool) {
    let v = |s: &str| format!("{x}_{s}");
    for r in ["busy", "space"] {
        m.reg(&v(r), 1);
    }
    m.reg(&v("buffer"), 2);
    for i in [
        "addr", "stride", "rows", "rb", "row", "col", "base", "src", "dst", "b",
    ] {
        m.item(Item::Integer(v(i)));
    }
    let word = v("word");
    let go = id(v("go"));
    let in_chain = id("ltab")
        .at(f32(&word, encode::LAYER))
        .at(n(T_CHAIN.lsb as i128));
    super::axi::declare(m, x, plan);
    let to_global = id(&word).at(n(encode::DMA_SPACE.lsb as i128));
    let total = |w: &str| f32(w, encode::DMA_ROWS).mul(f32(w, encode::DMA_ROW_BYTES));
    // bytes still to move before this cycle's (`left`: after the last edge, registered so the
    // testbench reads this cycle's value whatever the order of the edge's blocks)
    m.item(Item::Integer(v("left")));
    m.wire(&v("pending"), 32);
    m.assign(
        v("pending").as_str(),
        cond(
            go.clone().land(in_chain.clone()).land(to_global.clone()),
            total(&word),
            id(v("left")),
        ),
    );
    m.assign(
        id("ready").at(n(if x == "l" { 0 } else { 2 })),
        id(v("pending")).le(n(plan.dma_bytes as i128)),
    );
    let src_addr = id(v("addr"))
        .add(id(v("row")).mul(id(v("stride"))))
        .add(id(v("col")));
    let slot_off = id(v("row")).mul(id(v("rb"))).add(id(v("col")));
    let mv = if x == "l" {
        vec![
            bl(&v("src"), src_addr),
            bl(&v("dst"), id(v("base")).add(slot_off)),
            if_else(
                id(v("buffer")).eq(lit(2, Buffer::Weight as i128)),
                vec![bl(id("wbuf").at(id(v("dst"))), id("gbuf").at(id(v("src"))))],
                vec![bl(id("ibuf").at(id(v("dst"))), id("gbuf").at(id(v("src"))))],
            ),
        ]
    } else {
        vec![
            bl(&v("src"), id(v("base")).add(slot_off)),
            bl(&v("dst"), src_addr),
            bl(id("gbuf").at(id(v("dst"))), id("obuf").at(id(v("src")))),
        ]
    };
    let mut step = mv;
    step.push(bl(&v("col"), id(v("col")).add(n(1))));
    step.push(if_(
        id(v("col")).eq(id(v("rb"))),
        vec![bl(&v("col"), n(0)), bl(&v("row"), id(v("row")).add(n(1)))],
    ));
    let slot = f32(&word, encode::DMA_SLOT);
    let mut start = vec![
        bl(
            id(v("space")),
            id(&word).at(n(encode::DMA_SPACE.lsb as i128)),
        ),
        bl(
            id(v("buffer")),
            id(&word).part(n(encode::DMA_BUFFER.lsb as i128), 2),
        ),
        bl(&v("addr"), f32(&word, encode::DMA_ADDR)),
        bl(&v("stride"), f32(&word, encode::DMA_STRIDE)),
        bl(&v("rows"), f32(&word, encode::DMA_ROWS)),
        bl(&v("rb"), f32(&word, encode::DMA_ROW_BYTES)),
        bl(&v("row"), n(0)),
        bl(&v("col"), n(0)),
        bl(id(v("busy")), id(v("pending")).ne(n(0))),
    ];
    if x == "l" {
        start.push(if_else(
            id(&word)
                .part(n(encode::DMA_BUFFER.lsb as i128), 2)
                .eq(lit(2, Buffer::Weight as i128)),
            vec![
                bl(&v("base"), slot.clone().mul(n(plan.weight_slot as i128))),
                bl(id("wmeta_c0").at(slot.clone()), f32(&word, encode::TILE_C0)),
            ],
            vec![
                bl(&v("base"), slot.clone().mul(n(plan.input_slot as i128))),
                bl(id("imeta_c0").at(slot.clone()), f32(&word, encode::TILE_C0)),
                bl(
                    id("imeta_rows").at(slot.clone()),
                    f32(&word, encode::DMA_ROWS),
                ),
                bl(
                    id("imeta_rb").at(slot.clone()),
                    f32(&word, encode::DMA_ROW_BYTES),
                ),
            ],
        ));
    } else {
        start.push(bl(&v("base"), slot.mul(n(plan.output_slot as i128))));
    }
    start.push(if_(not(id(v("space"))), super::axi::start(x)));
    let mut reset = vec![bl(id(v("busy")), lit(1, 0)), nb(id(v("left")), n(0))];
    reset.extend(super::axi::reset(x));
    // the byte engine moves only what the global buffer holds
    let moves = if global {
        vec![if_(
            id(v("busy")),
            vec![
                for_(
                    &v("b"),
                    n(plan.dma_bytes as i128),
                    vec![if_(id(v("row")).lt(id(v("rows"))), step)],
                ),
                if_(
                    id(v("row")).ge(id(v("rows"))),
                    vec![bl(id(v("busy")), lit(1, 0))],
                ),
            ],
        )]
    } else {
        vec![]
    };
    let mut run = super::axi::count_skipped(
        x,
        go.clone()
            .land(not(in_chain.clone()))
            .land(not(to_global.clone())),
    );
    run.push(if_(go.land(in_chain), start));
    run.extend(moves);
    run.extend(super::axi::step(x, plan));
    run.push(nb(
        id(v("left")),
        cond(
            id(v("busy")),
            id(v("rows"))
                .sub(id(v("row")))
                .mul(id(v("rb")))
                .sub(id(v("col"))),
            n(0),
        ),
    ));
    m.always_ff("clk", vec![if_else(id("rst"), reset, run)]);
}

/// The compute engine: a GEMM tile on the R×C array, one fold after another (rows of the fold
/// over the folding's row dimension, columns over its column dimension, one step of the streamed
/// dimension a cycle), or a vector instruction's `lanes` elements a cycle (requantization, max
/// pooling). Each lane of a GEMM step is one multiply-accumulate of the im2col product: its input
/// code read through the layer's window from the input slot, its weight decoded from the weight
/// slot, its accumulator started at the bias by the tile's first reduction step.
fn compute_engine(m: &mut Module, prog: &Program, plan: &Plan) {
    let mach = &prog.machine;
    let (rows, cols, lanes) = (mach.rows, mach.cols, mach.lanes);
    let f = mach.folding();
    m.reg("c_busy", 1)
        .reg("c_perch", 1)
        .reg("c_gemm", 1)
        .reg("c_pool", 1)
        .reg("c_add", 1)
        .reg("c_tab", 1)
        .reg("c_isg2", 1)
        .reg("c_dw", 1);
    m.reg("c_acc", 1)
        .reg("c_isg", 1)
        .reg("c_osg", 1)
        .reg("c_bin", 1);
    m.reg("c_form", 2);
    let ints = [
        // GEMM geometry
        "g_m", "g_k", "g_n", "g_sr", "g_sc", "g_t", "g_fr", "g_fc", "g_ts", "g_is", "g_ws", "g_os",
        "g_ka", "g_kh", "g_kw", "g_sh", "g_sw", "g_dh", "g_dw", "g_ph", "g_pw", "g_ih", "g_iw",
        "g_ow", "g_oh", "g_px", "g_imgs", "g_rows", "g_row0", "g_c0", "g_ic0", "g_ich", "g_irb",
        "g_ir0", "g_wc0", "g_pb", "g_bits", "g_zp", "g_need", "g_co0", "g_thr", "g_grp", "g_cin",
        "ch", // a lane's work
        "i", "j", "ky", "kx", "mi", "ki", "ni", "img", "pix", "y", "x", "ci", "kk", "iy", "ix",
        "oi", "ia", "q", "xd", "wi", "wa", "wv", "wf", "cur", "pb", "po",
        // vector work
        "v_pos", "v_n", "v_is", "v_os", "v_plane", "v_ch", "v_px", "v_first", "el", "best", "a_off",
        "a_min", "a_max", "v_tab",
        // walks instead of dividers: the pixel (`next_pixel`), the reduction element
        // (`take_tap`), a depthwise lane's pixel index and channel, requantization's pixel and
        // channel
        "s_img", "s_pix", "s_y", "s_x", "k_ci", "k_ky", "k_kx", "d_mi", "d_ni", "v_wp", "v_wc",
    ];
    for i in ints {
        m.item(Item::Integer(i.into()));
    }
    // the weight-stationary array's PE registers and its rows' latches (`ws_step`)
    let stationary_weights = (f.rows, f.cols, f.stream) == (Dim::K, Dim::N, Dim::M);
    if stationary_weights {
        for i in ["g_pre", "g_rf", "b_ci", "b_ky", "b_kx"] {
            m.item(Item::Integer(i.into()));
        }
        m.memory("ws_w", 8, (rows * cols) as u32);
        for r in ["ws_ci", "ws_ky", "ws_kx", "ws_x"] {
            m.memory(r, 32, rows as u32);
        }
    }
    // the output-stationary array's PE sums, its rows' pixels and a cycle's operands (`os_step`)
    let stationary_outputs = (f.rows, f.cols, f.stream) == (Dim::M, Dim::N, Dim::K);
    if stationary_outputs {
        for i in [
            "g_rf", "b_img", "b_pix", "b_y", "b_x", "n_img", "n_pix", "n_y", "n_x",
        ] {
            m.item(Item::Integer(i.into()));
        }
        m.memory("os_acc", 32, (rows * cols) as u32);
        m.memory("os_wv", 32, cols as u32);
        for r in ["os_img", "os_pix", "os_y", "os_x", "os_xv"] {
            m.memory(r, 32, rows as u32);
        }
    }
    m.reg_signed("prod", 64)
        .reg("tie", 1)
        .reg_signed("mag", 64)
        .reg_signed("val", 64);
    m.reg("pair", 16);
    let w = "c_word";
    let row = id("ltab").at(f32(w, encode::LAYER));
    m.wire("c_row", 256);
    m.assign("c_row", row);
    let lt = |fl: Field| f32("c_row", fl);
    // the layer's window, first of what a GEMM or vector instruction loads (later fields use it)
    let window_registers = || {
        [
            ("g_kh", T_KH),
            ("g_kw", T_KW),
            ("g_sh", T_SH),
            ("g_sw", T_SW),
            ("g_dh", T_DH),
            ("g_dw", T_DW),
            ("g_ph", T_PH),
            ("g_pw", T_PW),
            ("g_ih", T_IN_H),
            ("g_iw", T_IN_W),
            ("g_oh", T_OUT_H),
            ("g_ow", T_OUT_W),
        ]
        .map(|(reg, field)| bl(reg, lt(field)))
        .to_vec()
    };
    let go = id("c_go").land(id("c_row").at(n(T_CONSTS.lsb as i128)));
    let is_gemm = f32(w, encode::OPCODE).eq(n(encode::OP_GEMM as i128));
    let gdim = |d: Dim| match d {
        Dim::M => f32(w, encode::GEMM_M),
        Dim::K => f32(w, encode::GEMM_K),
        Dim::N => f32(w, encode::GEMM_N),
    };
    // ready: nothing left after this cycle
    m.wire("c_go_ready", 1).reg("c_now_ready", 1);
    m.assign(
        "c_go_ready",
        cond(
            is_gemm.clone(),
            if stationary_weights {
                // the first cycle preloads
                n(0)
            } else {
                gdim(f.stream)
                    .le(n(1))
                    .land(gdim(f.rows).le(n(rows as i128)))
                    .land(gdim(f.cols).le(n(cols as i128)))
            },
            cond(
                f32(w, encode::VEC_OP).eq(n(VectorOp::Depthwise as i128)),
                f32(w, encode::VEC_ELEMENTS)
                    .mul(lt(T_KH))
                    .mul(lt(T_KW))
                    .le(n(lanes as i128)),
                f32(w, encode::VEC_ELEMENTS).le(n(lanes as i128)),
            ),
        ),
    );
    m.assign(
        id("ready").at(n(1)),
        cond(go.clone(), id("c_go_ready"), id("c_now_ready")),
    );
    // the GEMM's start: its geometry from the word, the layer table and the slots' metadata
    let mut gstart = vec![
        bl("g_m", f32(w, encode::GEMM_M)),
        bl("g_k", f32(w, encode::GEMM_K)),
        bl("g_n", f32(w, encode::GEMM_N)),
        bl("g_sr", gdim(f.rows)),
        bl("g_sc", gdim(f.cols)),
        bl("g_t", gdim(f.stream)),
        bl("g_fr", n(0)),
        bl("g_fc", n(0)),
        bl("g_ts", n(0)),
        bl("g_is", f32(w, encode::GEMM_INPUT_SLOT)),
        bl("g_ws", f32(w, encode::GEMM_WEIGHT_SLOT)),
        bl("g_os", f32(w, encode::GEMM_OUTPUT_SLOT)),
        bl(
            id("c_acc"),
            id(w).at(n(encode::GEMM_ACCUMULATE.lsb as i128)),
        ),
        bl(id("c_gemm"), lit(1, 1)),
        bl(id("c_pool"), lit(1, 0)),
        bl(id("c_dw"), lit(1, 0)),
    ];
    // a depthwise tile on the vector unit: `co` channels of `elements / co` pixels each, one
    // kernel window a channel (`execute::depthwise`)
    let mut dstart = vec![
        bl("g_co0", f32(w, encode::TILE_CO0)),
        bl("g_n", lt(T_TILE_CO)),
        if_(id("g_n").lt(n(1)), vec![bl("g_n", n(1))]),
        if_(
            id("g_n").gt(lt(T_COUT).sub(id("g_co0"))),
            vec![bl("g_n", lt(T_COUT).sub(id("g_co0")))],
        ),
        bl("g_m", f32(w, encode::VEC_ELEMENTS).div(id("g_n"))),
        bl("g_k", lt(T_KH).mul(lt(T_KW))),
        bl("g_is", f32(w, encode::VEC_INPUT_SLOT)),
        bl("g_ws", f32(w, encode::VEC_WEIGHT_SLOT)),
        bl("g_os", f32(w, encode::VEC_OUTPUT_SLOT)),
        bl(id("c_acc"), lit(1, 0)),
        bl(id("c_gemm"), lit(1, 0)),
        bl(id("c_pool"), lit(1, 0)),
        bl(id("c_dw"), lit(1, 1)),
        bl("v_pos", n(0)),
        bl("v_n", id("g_m").mul(id("g_n")).mul(id("g_k"))),
    ];
    let mut common = window_registers();
    common.extend([
        bl(id("c_isg"), id("c_row").at(n(T_IN_SIGNED.lsb as i128))),
        bl(id("c_bin"), id("c_row").at(n(T_BINARY.lsb as i128))),
        bl(id("c_perch"), id("c_row").at(n(T_PER_CHANNEL.lsb as i128))),
        bl("g_thr", lt(T_BASE)),
        bl("g_grp", f32(w, encode::TILE_GROUP)),
        bl("g_cin", lt(T_CIN)),
        bl(id("c_form"), id("c_row").part(n(T_FORM.lsb as i128), 2)),
        bl("g_ka", lt(T_KH).mul(lt(T_KW))),
        bl("g_bits", lt(T_BITS)),
        bl(
            "g_zp",
            concat(vec![
                repl(16, id("c_row").at(n((T_ZP.lsb + 15) as i128))),
                id("c_row").part(n(T_ZP.lsb as i128), 16),
            ]),
        ),
        bl("g_row0", f32(w, encode::TILE_ROW0)),
        bl("g_c0", f32(w, encode::TILE_C0)),
        // whole output rows: several images when the tile starts at row 0 and spans more rows
        bl("g_rows", id("g_m").div(id("g_ow"))),
        bl("g_imgs", n(1)),
        if_(
            id("g_row0").eq(n(0)).land(id("g_rows").gt(id("g_oh"))),
            vec![
                bl("g_imgs", id("g_rows").div(id("g_oh"))),
                bl("g_rows", id("g_oh")),
            ],
        ),
        bl("g_px", id("g_rows").mul(id("g_ow"))),
        bl("g_ic0", id("imeta_c0").at(id("g_is"))),
        bl("g_ich", id("imeta_rows").at(id("g_is")).div(id("g_imgs"))),
        bl("g_irb", id("imeta_rb").at(id("g_is"))),
        // the first input row the slot holds (`ConvShape::in_row0`)
        bl(
            "g_need",
            id("g_rows")
                .sub(n(1))
                .mul(id("g_sh"))
                .add(id("g_kh").sub(n(1)).mul(id("g_dh")))
                .add(n(1)),
        ),
        if_(id("g_need").gt(id("g_ih")), vec![bl("g_need", id("g_ih"))]),
        bl("g_ir0", id("g_row0").mul(id("g_sh")).sub(id("g_ph"))),
        if_(id("g_ir0").lt(n(0)), vec![bl("g_ir0", n(0))]),
        if_(
            id("g_ir0").gt(id("g_ih").sub(id("g_need"))),
            vec![bl("g_ir0", id("g_ih").sub(id("g_need")))],
        ),
        bl("g_wc0", id("wmeta_c0").at(id("g_ws"))),
        bl(
            "g_pb",
            cond(
                id("g_wc0").eq(n(0)),
                id("g_n").mul(n(PARAM_BYTES as i128)),
                n(0),
            ),
        ),
        bl(id("ometa_ch").at(id("g_os")), id("g_n")),
        bl(id("ometa_px").at(id("g_os")), id("g_px")),
    ]);
    if stationary_weights {
        gstart.extend([
            bl("g_pre", n(0)),
            bl("b_ci", f32(w, encode::TILE_C0)),
            bl("b_ky", n(0)),
            bl("b_kx", n(0)),
        ]);
    }
    if stationary_outputs {
        gstart.extend(["b_img", "b_pix", "b_y", "b_x"].map(|v| bl(v, n(0))));
    }
    gstart.extend(common.clone());
    dstart.extend(common);
    // a depthwise tile's walks start at its first channel's first pixel and kernel position
    dstart.extend([
        bl("k_ci", id("g_c0")),
        bl("k_ky", n(0)),
        bl("k_kx", n(0)),
        bl("d_mi", n(0)),
        bl("d_ni", n(0)),
    ]);
    dstart.extend(["s_img", "s_pix", "s_y", "s_x"].map(|v| bl(v, n(0))));
    let (ws, is_, os) = (
        plan.weight_slot as i128,
        plan.input_slot as i128,
        plan.output_slot as i128,
    );
    let pc = plan.slot_channels as i128;
    let byte4 = |mem: &str, at: Expr| {
        concat(
            (0..4)
                .rev()
                .map(|k| id(mem).at(at.clone().add(n(k))))
                .collect(),
        )
    };
    let lane_dim = |d: Dim| {
        if d == f.rows {
            id("g_fr").add(id("i"))
        } else if d == f.cols {
            id("g_fc").add(id("j"))
        } else {
            id("g_ts")
        }
    };
    // a lane's output pixel (image, pixel of the tile, row, column) from its `mi`
    let pixel_of_m = vec![
        bl("img", id("mi").div(id("g_px"))),
        bl("pix", id("mi").rem(id("g_px"))),
        bl("y", id("pix").div(id("g_ow"))),
        bl("x", id("pix").rem(id("g_ow"))),
    ];
    // a lane's reduction channel and kernel position from its `ki`
    let tap_of_k = vec![
        bl("ci", id("g_c0").add(id("ki").div(id("g_ka")))),
        bl("kk", id("ki").rem(id("g_ka"))),
        bl("ky", id("kk").div(id("g_kw"))),
        bl("kx", id("kk").rem(id("g_kw"))),
    ];
    let window = vec![
        bl("iy", window_at(id("g_row0").add(id("y")), "ky", 'h')),
        bl("ix", window_at(id("x"), "kx", 'w')),
    ];
    let out_index = bl(
        "oi",
        id("g_os").mul(n(os)).add(
            id("img")
                .mul(id("g_n"))
                .add(id("ni"))
                .mul(id("g_px"))
                .add(id("pix")),
        ),
    );
    // the accumulator a tile's first reduction step starts at the bias (latching the channel's
    // requantization on its first pixel), the others read back
    let start_or_read = |first: Expr| {
        if_else(
            first.land(not(id("c_acc"))),
            vec![
                bl(
                    "pb",
                    id("g_ws")
                        .mul(n(ws))
                        .add(id("ni").mul(n(PARAM_BYTES as i128))),
                ),
                bl("cur", byte4("wbuf", id("pb"))),
                if_(
                    id("mi").eq(n(0)),
                    vec![
                        bl("po", id("g_os").mul(n(pc)).add(id("ni"))),
                        bl(id("pmul").at(id("po")), byte4("wbuf", id("pb").add(n(4)))),
                        bl(id("pshift").at(id("po")), id("wbuf").at(id("pb").add(n(8)))),
                        bl(id("pzp").at(id("po")), id("wbuf").at(id("pb").add(n(9)))),
                        bl(id("pmin").at(id("po")), id("wbuf").at(id("pb").add(n(10)))),
                        bl(id("pmax").at(id("po")), id("wbuf").at(id("pb").add(n(11)))),
                    ],
                ),
            ],
            vec![bl("cur", id("accs").at(id("oi")))],
        )
    };
    // the input code `xd` of a lane inside the input plane: `x − zp`, or ±1 through a binary
    // layer's threshold
    let input_code = vec![
        bl(
            "ia",
            id("g_is").mul(n(is_)).add(
                id("img")
                    .mul(id("g_ich"))
                    .add(id("ch"))
                    .sub(id("g_ic0"))
                    .mul(id("g_irb"))
                    .add(id("iy").sub(id("g_ir0")).mul(id("g_iw")))
                    .add(id("ix")),
            ),
        ),
        bl("q", code("ibuf", id("ia"), id("c_isg"))),
        bl(
            "xd",
            cond(
                id("c_bin"),
                cond(
                    id("q").ge(cond(
                        id("c_perch"),
                        // the layer's input channel: the group's first, then this one
                        signed(
                            id("thr")
                                .at(id("g_thr").add(id("g_grp").mul(id("g_cin"))).add(id("ch"))),
                        ),
                        id("g_zp"),
                    )),
                    n(1),
                    neg(n(1)),
                ),
                id("q").sub(id("g_zp")),
            ),
        ),
    ];
    // the weight field `wf` of reduction element (`ci`, `kk`) and output channel `ni`: the
    // slot's codes are `[reduction channel][kernel][output channel]`, `g_bits` each
    let weight_field = vec![
        bl(
            "wi",
            id("ci")
                .sub(id("g_wc0"))
                .mul(id("g_ka"))
                .add(id("kk"))
                .mul(id("g_n"))
                .add(id("ni"))
                .mul(id("g_bits")),
        ),
        bl(
            "wa",
            id("g_ws")
                .mul(n(ws))
                .add(id("g_pb"))
                .add(id("wi").div(n(8))),
        ),
        bl(
            id("pair"),
            concat(vec![
                id("wbuf").at(id("wa").add(n(1))),
                id("wbuf").at(id("wa")),
            ])
            .shr(id("wi").rem(n(8))),
        ),
        bl(
            "wf",
            concat(vec![lit(16, 0), id("pair")]).and(n(1).shl(id("g_bits")).sub(n(1))),
        ),
    ];
    // the weight `wv` of field `wf` in the layer's form
    let decode = Stmt::Case(
        id("c_form"),
        vec![
            (
                vec![lit(2, 1)],
                vec![
                    // sign bit over an exponent field (0: the weight 0)
                    bl(
                        "wv",
                        cond(
                            id("wf")
                                .and(n(1).shl(id("g_bits").sub(n(1))).sub(n(1)))
                                .eq(n(0)),
                            n(0),
                            n(1).shl(
                                id("wf")
                                    .and(n(1).shl(id("g_bits").sub(n(1))).sub(n(1)))
                                    .sub(n(1)),
                            ),
                        ),
                    ),
                    if_(
                        id("wf").shr(id("g_bits").sub(n(1))).ne(n(0)),
                        vec![bl("wv", neg(id("wv")))],
                    ),
                ],
            ),
            (
                vec![lit(2, 2)],
                vec![bl("wv", cond(id("wf").ne(n(0)), n(1), neg(n(1))))],
            ),
        ],
        // two's complement of `bits` bits
        vec![bl(
            "wv",
            id("wf")
                .xor(n(1).shl(id("g_bits").sub(n(1))))
                .sub(n(1).shl(id("g_bits").sub(n(1)))),
        )],
    );
    // one lane's multiply-accumulate from its (`mi`, `ki`, `ni`), everything computed in place
    // (the output-stationary array and the vector unit's depthwise lanes)
    // the rest of a lane's multiply-accumulate, from its pixel, reduction element and `ni`
    let mut mac_body = vec![];
    // the input channel: the reduction's, or a depthwise tile's own output channel
    mac_body.push(bl(
        "ch",
        cond(id("c_dw"), id("g_co0").add(id("ni")), id("ci")),
    ));
    mac_body.extend(window.clone());
    mac_body.push(out_index.clone());
    mac_body.push(start_or_read(id("ki").eq(n(0))));
    let mut product = input_code.clone();
    product.extend(weight_field.clone());
    product.push(decode.clone());
    product.push(bl("cur", id("cur").add(id("xd").mul(id("wv")))));
    mac_body.push(if_(inside_input(), product));
    mac_body.push(bl(id("accs").at(id("oi")), id("cur")));
    // an input-stationary lane: its pixel and reduction element divided out of `mi` and `ki`
    let mut mac = pixel_of_m;
    mac.extend(tap_of_k);
    mac.extend(mac_body.clone());
    // a depthwise lane: the kernel position fastest, then the pixel, then the channel, walked
    // lane after lane (the tap's channel stays the tile's first: a step past the kernel's last
    // position is the next pixel, and past the tile's last pixel the next channel)
    let mut dw_lane = vec![
        bl("mi", id("d_mi")),
        bl("ni", id("d_ni")),
        bl("img", id("s_img")),
        bl("pix", id("s_pix")),
        bl("y", id("s_y")),
        bl("x", id("s_x")),
    ];
    dw_lane.extend(take_tap());
    dw_lane.push(bl("ki", id("kk")));
    dw_lane.extend(mac_body);
    let mut next_dw_pixel = vec![bl("k_ci", id("g_c0"))];
    next_dw_pixel.extend(next_pixel());
    next_dw_pixel.extend([
        bl("d_mi", id("d_mi").add(n(1))),
        if_(
            id("d_mi").eq(id("g_m")),
            // (the tile is whole images of whole rows: the pixel walk has just wrapped)
            vec![
                bl("d_mi", n(0)),
                bl("s_img", n(0)),
                bl("d_ni", id("d_ni").add(n(1))),
            ],
        ),
    ]);
    dw_lane.push(if_(id("k_ci").ne(id("g_c0")), next_dw_pixel));
    // the next fold: columns first, then rows; the last one ends the instruction
    let next_fold = vec![
        bl("g_ts", n(0)),
        bl("g_fc", id("g_fc").add(n(cols as i128))),
        if_(
            id("g_fc").ge(id("g_sc")),
            vec![
                bl("g_fc", n(0)),
                bl("g_fr", id("g_fr").add(n(rows as i128))),
                if_(id("g_fr").ge(id("g_sr")), vec![bl(id("c_busy"), lit(1, 0))]),
            ],
        ),
    ];
    let gstep = if stationary_weights {
        ws_step(
            (rows, cols),
            ArrayParts {
                window,
                out_index,
                start: start_or_read(id("g_fr").eq(n(0))),
                input_code,
                weight_field,
                decode,
                next_fold,
            },
        )
    } else if stationary_outputs {
        os_step(
            (rows, cols),
            ArrayParts {
                window,
                out_index,
                // the fold streams the whole reduction: its first cycle is the first element
                start: start_or_read(n(1)),
                input_code,
                weight_field,
                decode,
                next_fold,
            },
        )
    } else {
        let lane = vec![
            bl("mi", lane_dim(Dim::M)),
            bl("ki", lane_dim(Dim::K)),
            bl("ni", lane_dim(Dim::N)),
            if_(
                id("mi")
                    .lt(id("g_m"))
                    .land(id("ki").lt(id("g_k")))
                    .land(id("ni").lt(id("g_n"))),
                mac,
            ),
        ];
        let mut step = vec![
            for_("i", n(rows as i128), vec![for_("j", n(cols as i128), lane)]),
            bl("g_ts", id("g_ts").add(n(1))),
        ];
        step.push(if_(id("g_ts").ge(id("g_t")), next_fold));
        step
    };
    // vector instructions
    let mut vstart = window_registers();
    vstart.extend([
        bl(id("c_gemm"), lit(1, 0)),
        bl(id("c_dw"), lit(1, 0)),
        bl(
            id("c_pool"),
            f32(w, encode::VEC_OP).eq(n(VectorOp::Pool as i128)),
        ),
        bl(
            id("c_add"),
            f32(w, encode::VEC_OP).eq(n(VectorOp::Elementwise as i128)),
        ),
        bl(
            id("c_tab"),
            f32(w, encode::VEC_OP).eq(n(VectorOp::Table as i128)),
        ),
        bl("v_tab", lt(T_BASE)),
        bl(id("c_isg"), id("c_row").at(n(T_IN_SIGNED.lsb as i128))),
        bl(id("c_isg2"), id("c_row").at(n(T_SECOND_SIGNED.lsb as i128))),
        bl(id("c_osg"), id("c_row").at(n(T_OUT_SIGNED.lsb as i128))),
        bl(
            "a_off",
            concat(vec![
                repl(16, id("c_row").at(n((T_OFFSET.lsb + 15) as i128))),
                id("c_row").part(n(T_OFFSET.lsb as i128), 16),
            ]),
        ),
        bl("a_min", field_code(T_QMIN, id("c_osg"))),
        bl("a_max", field_code(T_QMAX, id("c_osg"))),
        bl("v_pos", n(0)),
        bl("v_n", f32(w, encode::VEC_ELEMENTS)),
        bl("v_is", f32(w, encode::VEC_INPUT_SLOT)),
        bl("v_os", f32(w, encode::VEC_OUTPUT_SLOT)),
        bl("v_plane", id("g_oh").mul(id("g_ow"))),
        // the first input element a pooling tile's slot holds (`execute::pool`)
        bl(
            "g_ir0",
            f32(w, encode::TILE_ROW0).mul(id("g_sh")).sub(id("g_ph")),
        ),
        if_(id("g_ir0").lt(n(0)), vec![bl("g_ir0", n(0))]),
        if_(id("g_ir0").gt(id("g_ih")), vec![bl("g_ir0", id("g_ih"))]),
        bl(
            "v_first",
            f32(w, encode::TILE_C0)
                .mul(id("g_ih"))
                .mul(id("g_iw"))
                .add(id("g_ir0").mul(id("g_iw"))),
        ),
        bl("v_ch", id("ometa_ch").at(f32(w, encode::VEC_OUTPUT_SLOT))),
        bl("v_px", id("ometa_px").at(f32(w, encode::VEC_OUTPUT_SLOT))),
        bl("v_wp", n(0)),
        bl("v_wc", n(0)),
        // pooling walks the output planes' pixels from the tile's first (plane `c0`, row
        // `row0`): a plane's pixels are the walk's `g_px`
        bl("g_px", id("v_plane")),
        bl("s_img", f32(w, encode::TILE_C0)),
        bl("s_y", f32(w, encode::TILE_ROW0)),
        bl("s_x", n(0)),
        bl("s_pix", f32(w, encode::TILE_ROW0).mul(id("g_ow"))),
    ]);
    // requantization (`Requant::scale`, then the zero point and the clamp)
    let sext8 = |e: Expr, signed: Expr| {
        cond(
            signed,
            concat(vec![repl(56, e.clone().at(n(7))), e.clone()]),
            concat(vec![lit(56, 0), e]),
        )
    };
    let requant = vec![
        // the element's channel, walked: pixel, then channel (the slot's elements are
        // `[image][channel][pixel]`)
        bl("po", id("v_os").mul(n(pc)).add(id("v_wc"))),
        bl(
            id("prod"),
            signed(id("accs").at(id("v_os").mul(n(os)).add(id("el"))))
                .mul(signed(id("pmul").at(id("po")))),
        ),
        bl(
            id("mag"),
            cond(id("prod").at(n(63)), neg(id("prod")), id("prod")),
        ),
        // a tie: the dropped bits are exactly half, and the result goes to the even neighbour
        bl(
            id("tie"),
            id("mag")
                .and(
                    signed(lit(64, 1))
                        .shl(id("pshift").at(id("po")))
                        .sub(signed(lit(64, 1))),
                )
                .eq(signed(lit(64, 1)).shl(id("pshift").at(id("po")).sub(lit(8, 1)))),
        ),
        bl(
            id("mag"),
            id("mag")
                .add(signed(lit(64, 1)).shl(id("pshift").at(id("po")).sub(lit(8, 1))))
                .ashr(id("pshift").at(id("po"))),
        ),
        if_(
            id("tie"),
            vec![bl(id("mag"), id("mag").and(inv(signed(lit(64, 1)))))],
        ),
        bl(
            id("val"),
            cond(id("prod").at(n(63)), neg(id("mag")), id("mag")),
        ),
        if_(
            id("val").gt(signed(lit(64, i32::MAX as i128))),
            vec![bl(id("val"), signed(lit(64, i32::MAX as i128)))],
        ),
        if_(
            id("val").lt(neg(signed(lit(64, 1i128 << 31)))),
            vec![bl(id("val"), neg(signed(lit(64, 1i128 << 31))))],
        ),
        bl(
            id("val"),
            id("val").add(signed(sext8(id("pzp").at(id("po")), id("c_osg")))),
        ),
        if_(
            id("val").lt(signed(sext8(id("pmin").at(id("po")), id("c_osg")))),
            vec![bl(
                id("val"),
                signed(sext8(id("pmin").at(id("po")), id("c_osg"))),
            )],
        ),
        if_(
            id("val").gt(signed(sext8(id("pmax").at(id("po")), id("c_osg")))),
            vec![bl(
                id("val"),
                signed(sext8(id("pmax").at(id("po")), id("c_osg"))),
            )],
        ),
        bl(
            id("obuf").at(id("v_os").mul(n(os)).add(id("el"))),
            id("val").slice(7, 0),
        ),
        bl("v_wp", id("v_wp").add(n(1))),
        if_(
            id("v_wp").eq(id("v_px")),
            vec![
                bl("v_wp", n(0)),
                bl("v_wc", id("v_wc").add(n(1))),
                if_(id("v_wc").eq(id("v_ch")), vec![bl("v_wc", n(0))]),
            ],
        ),
    ];
    // max pooling of whole output rows or planes (`execute::pool`): the slot holds the input
    // from element `v_first`; padding takes no part
    let mut pool = vec![
        // the output element's plane, row and column, walked from the tile's first
        bl("img", id("s_img")),
        bl("y", id("s_y")),
        bl("x", id("s_x")),
        bl("best", neg(n(1 << 30))),
        // constant bounds (the largest window), so the loops unroll
        for_(
            "ky",
            n(plan.max_kernel[0] as i128),
            vec![for_(
                "kx",
                n(plan.max_kernel[1] as i128),
                vec![if_(
                    id("ky").lt(id("g_kh")).land(id("kx").lt(id("g_kw"))),
                    vec![
                        bl("iy", window_at(id("y"), "ky", 'h')),
                        bl("ix", window_at(id("x"), "kx", 'w')),
                        if_(
                            inside_input(),
                            vec![
                                bl(
                                    "ia",
                                    id("img")
                                        .mul(id("g_ih"))
                                        .mul(id("g_iw"))
                                        .add(id("iy").mul(id("g_iw")))
                                        .add(id("ix"))
                                        .sub(id("v_first")),
                                ),
                                bl(
                                    "q",
                                    code("ibuf", id("v_is").mul(n(is_)).add(id("ia")), id("c_isg")),
                                ),
                                if_(id("q").gt(id("best")), vec![bl("best", id("q"))]),
                            ],
                        ),
                    ],
                )],
            )],
        ),
        bl(
            id("obuf").at(id("v_os").mul(n(os)).add(id("el"))),
            id("best").slice(7, 0),
        ),
    ];
    pool.extend(next_pixel());
    // a residual Add (`execute::add`): the slot's two rows of `v_n` codes are the operands
    let add = vec![
        bl(
            "q",
            code("ibuf", id("v_is").mul(n(is_)).add(id("el")), id("c_isg")),
        ),
        bl(
            "xd",
            code(
                "ibuf",
                id("v_is").mul(n(is_)).add(id("v_n")).add(id("el")),
                id("c_isg2"),
            ),
        ),
        bl("cur", id("q").add(id("xd")).add(id("a_off"))),
        if_(id("cur").lt(id("a_min")), vec![bl("cur", id("a_min"))]),
        if_(id("cur").gt(id("a_max")), vec![bl("cur", id("a_max"))]),
        bl(
            id("obuf").at(id("v_os").mul(n(os)).add(id("el"))),
            id("cur").slice(7, 0),
        ),
    ];
    // an activation (`execute::table`): the code's byte indexes the layer's 256 entries
    let table = vec![bl(
        id("obuf").at(id("v_os").mul(n(os)).add(id("el"))),
        id("thr")
            .at(id("v_tab").add(id("ibuf").at(id("v_is").mul(n(is_)).add(id("el")))))
            .slice(7, 0),
    )];
    let vstep = vec![
        for_(
            "i",
            n(lanes as i128),
            vec![
                bl("el", id("v_pos").add(id("i"))),
                if_(
                    id("el").lt(id("v_n")),
                    vec![if_else(
                        id("c_dw"),
                        dw_lane,
                        vec![if_else(
                            id("c_pool"),
                            pool,
                            vec![if_else(
                                id("c_add"),
                                add,
                                vec![if_else(id("c_tab"), table, requant)],
                            )],
                        )],
                    )],
                ),
            ],
        ),
        bl("v_pos", id("v_pos").add(n(lanes as i128))),
        if_(id("v_pos").ge(id("v_n")), vec![bl(id("c_busy"), lit(1, 0))]),
    ];
    m.always_ff(
        "clk",
        vec![if_else(
            id("rst"),
            vec![
                bl(id("c_busy"), lit(1, 0)),
                nb(id("c_now_ready"), lit(1, 1)),
            ],
            vec![
                if_(
                    go,
                    vec![
                        if_else(
                            is_gemm,
                            gstart,
                            vec![if_else(
                                f32(w, encode::VEC_OP).eq(n(VectorOp::Depthwise as i128)),
                                dstart,
                                vstart,
                            )],
                        ),
                        bl(id("c_busy"), lit(1, 1)),
                    ],
                ),
                if_(id("c_busy"), vec![if_else(id("c_gemm"), gstep, vstep)]),
                // whether the next cycle's step is the instruction's last (registered, so the
                // testbench reads this cycle's value whatever the order of the edge's blocks)
                nb(
                    id("c_now_ready"),
                    not(id("c_busy")).lor(cond(
                        id("c_gemm"),
                        id("g_ts")
                            .add(n(1))
                            .ge(id("g_t"))
                            .land(id("g_fc").add(n(cols as i128)).ge(id("g_sc")))
                            .land(id("g_fr").add(n(rows as i128)).ge(id("g_sr")))
                            .land(if stationary_weights {
                                // streaming, not preloading
                                id("g_pre").ge(id("g_rf"))
                            } else {
                                n(1)
                            }),
                        id("v_pos").add(n(lanes as i128)).ge(id("v_n")),
                    )),
                ),
            ],
        )],
    );
}

/// `to_v = from_v` for each name `v` of `names` (`to` and `from` the prefixes).
fn copy_regs(to: &str, from: &str, names: &[&str]) -> Vec<Stmt> {
    names
        .iter()
        .map(|v| bl(id(format!("{to}{v}")), id(format!("{from}{v}"))))
        .collect()
}

/// Steps the pixel walk (`s_x`, `s_y`, `s_pix`, `s_img`) to the next output pixel: column, row,
/// image.
fn next_pixel() -> Vec<Stmt> {
    vec![
        bl("s_x", id("s_x").add(n(1))),
        bl("s_pix", id("s_pix").add(n(1))),
        if_(
            id("s_x").eq(id("g_ow")),
            vec![bl("s_x", n(0)), bl("s_y", id("s_y").add(n(1)))],
        ),
        if_(
            id("s_pix").eq(id("g_px")),
            vec![
                bl("s_pix", n(0)),
                bl("s_y", n(0)),
                bl("s_img", id("s_img").add(n(1))),
            ],
        ),
    ]
}

/// The reduction element of the walk (`k_ci`, `k_ky`, `k_kx`) as `ci`, `ky`, `kx` and `kk`,
/// then the walk stepped to the next one: kernel column, kernel row, channel.
fn take_tap() -> Vec<Stmt> {
    vec![
        bl("ci", id("k_ci")),
        bl("ky", id("k_ky")),
        bl("kx", id("k_kx")),
        bl("kk", id("ky").mul(id("g_kw")).add(id("kx"))),
        bl("k_kx", id("k_kx").add(n(1))),
        if_(
            id("k_kx").eq(id("g_kw")),
            vec![bl("k_kx", n(0)), bl("k_ky", id("k_ky").add(n(1)))],
        ),
        if_(
            id("k_ky").eq(id("g_kh")),
            vec![bl("k_ky", n(0)), bl("k_ci", id("k_ci").add(n(1)))],
        ),
    ]
}

/// Array row `i`'s input code into `to[i]`: the row's latched registers (`latched`), its window
/// position, and `xd` (0 on padding).
fn row_code(latched: Vec<Stmt>, window: Vec<Stmt>, input_code: Vec<Stmt>, to: &str) -> Vec<Stmt> {
    let mut read = latched;
    read.push(bl("ch", id("ci")));
    read.extend(window);
    read.push(bl("xd", n(0)));
    read.push(if_(inside_input(), input_code));
    read.push(bl(id(to).at(id("i")), id("xd")));
    read
}

/// `g_rf`: the array rows (of `rows`) the current fold uses.
fn rows_of_fold(rows: u64) -> Stmt {
    let r = n(rows as i128);
    bl(
        "g_rf",
        cond(
            id("g_sr").sub(id("g_fr")).lt(r.clone()),
            id("g_sr").sub(id("g_fr")),
            r,
        ),
    )
}

/// The parts of a lane's multiply-accumulate that the arrays arrange ([`ws_step`],
/// [`os_step`]); `compute_engine` builds them.
struct ArrayParts {
    /// `iy`, `ix` from the pixel and the kernel position.
    window: Vec<Stmt>,
    /// `oi`: the accumulator of (`img`, `ni`, `pix`).
    out_index: Stmt,
    /// `cur`: the bias on the tile's first reduction fold, else the accumulator.
    start: Stmt,
    /// `xd` of an input inside the plane.
    input_code: Vec<Stmt>,
    /// `wf` of (`ci`, `kk`, `ni`) from the weight slot.
    weight_field: Vec<Stmt>,
    /// `wv` from `wf`.
    decode: Stmt,
    /// Advances to the next fold, or ends the instruction.
    next_fold: Vec<Stmt>,
}

/// One cycle of a GEMM on the weight-stationary array. A fold first preloads its weights into
/// the PEs' registers (`ws_w`), one array row a cycle: the row's fields lie side by side in the
/// weight slot (`[reduction][output channel]`), and the row latches its reduction channel and
/// kernel position (`ws_ci`, `ws_ky`, `ws_kx`). Then each cycle of the streamed pixels reads one
/// input code per array row (`ws_x`) and adds each column's products to that column's
/// accumulator. The rows' reduction elements and the pixels are counted, not divided out: only
/// the instruction's start divides (its geometry, once). A fold takes `rf + t` cycles, within
/// the core's `2·rf − 1 + t + cf − 1`.
fn ws_step((rows, cols): (u64, u64), p: ArrayParts) -> Vec<Stmt> {
    let (r, c) = (n(rows as i128), n(cols as i128));
    // preload array row `g_pre`: its reduction element is the walk's (`k_ci`, `k_ky`, `k_kx`),
    // which starts each fold at its first row's (`b_…`) and steps kernel column, kernel row,
    // channel
    const TAP: [&str; 3] = ["ci", "ky", "kx"];
    let mut preload = vec![if_(id("g_pre").eq(n(0)), copy_regs("k_", "b_", &TAP))];
    preload.extend(take_tap());
    preload.extend(TAP.map(|v| bl(id(format!("ws_{v}")).at(id("g_pre")), id(v))));
    let mut load = vec![bl("ni", id("g_fc").add(id("j")))];
    load.extend(p.weight_field);
    load.push(bl(
        id("ws_w").at(id("g_pre").mul(c.clone()).add(id("j"))),
        id("wf").slice(7, 0),
    ));
    let column_used = id("g_fc").add(id("j")).lt(id("g_n"));
    preload.push(for_("j", c.clone(), vec![if_(column_used.clone(), load)]));
    preload.push(bl("g_pre", id("g_pre").add(n(1))));
    // stream: one input code per array row, then each column's sum
    let read = row_code(
        TAP.map(|v| bl(v, id(format!("ws_{v}")).at(id("i"))))
            .to_vec(),
        p.window,
        p.input_code,
        "ws_x",
    );
    let product = vec![
        bl(
            "wf",
            concat(vec![
                lit(24, 0),
                id("ws_w").at(id("i").mul(c.clone()).add(id("j"))),
            ]),
        ),
        p.decode,
        bl(
            "cur",
            id("cur").add(signed(id("ws_x").at(id("i"))).mul(id("wv"))),
        ),
    ];
    let column = vec![
        bl("ni", id("g_fc").add(id("j"))),
        p.out_index,
        p.start,
        for_("i", r.clone(), vec![if_(id("i").lt(id("g_rf")), product)]),
        bl(id("accs").at(id("oi")), id("cur")),
    ];
    // the last column fold of these rows: the next row fold starts where this preload ended
    let mut end_fold = vec![
        bl("g_pre", n(0)),
        if_(
            id("g_fc").add(c.clone()).ge(id("g_sc")),
            copy_regs("b_", "k_", &TAP),
        ),
    ];
    end_fold.extend(p.next_fold);
    let mut stream = vec![
        bl("mi", id("g_ts")),
        bl("img", id("s_img")),
        bl("pix", id("s_pix")),
        bl("y", id("s_y")),
        bl("x", id("s_x")),
        for_("i", r.clone(), vec![if_(id("i").lt(id("g_rf")), read)]),
        for_("j", c, vec![if_(column_used, column)]),
    ];
    stream.extend(next_pixel());
    stream.push(bl("g_ts", id("g_ts").add(n(1))));
    stream.push(if_(id("g_ts").ge(id("g_t")), end_fold));
    vec![
        rows_of_fold(rows),
        if_(
            id("g_pre").eq(n(0)),
            ["s_img", "s_pix", "s_y", "s_x"]
                .map(|v| bl(v, n(0)))
                .to_vec(),
        ),
        if_else(id("g_pre").lt(id("g_rf")), preload, stream),
    ]
}

/// One cycle of a GEMM on the output-stationary array: each PE holds its output's partial sum
/// (`os_acc`) for a fold. The fold's first cycle latches each array row's pixel (`os_img`,
/// `os_pix`, `os_y`, `os_x`, walked on from the fold's first row) and starts each PE at the
/// bias or at the accumulator the tile's earlier reduction tiles left; each cycle then steps
/// the reduction element (walked: kernel column, kernel row, channel), reads one run of weights
/// (one field per column, `os_wv`) and one input code per array row (`os_xv`), and each PE adds
/// its product; the fold's last cycle writes the PEs' sums to the accumulators. Nothing is
/// divided per cycle. A fold takes `t` cycles, within the core's `rf + t + cf − 2`.
fn os_step((rows, cols): (u64, u64), p: ArrayParts) -> Vec<Stmt> {
    let (r, c) = (n(rows as i128), n(cols as i128));
    let row_used = id("i").lt(id("g_rf"));
    let column_used = id("g_fc").add(id("j")).lt(id("g_n"));
    let pe = id("os_acc").at(id("i").mul(c.clone()).add(id("j")));
    let each_pe = |body: Vec<Stmt>| {
        for_(
            "i",
            r.clone(),
            vec![if_(
                row_used.clone(),
                vec![for_("j", c.clone(), vec![if_(column_used.clone(), body)])],
            )],
        )
    };
    // the PE's output: its row's pixel, its column's channel
    let at_pe = vec![
        bl("mi", id("g_fr").add(id("i"))),
        bl("img", id("os_img").at(id("i"))),
        bl("pix", id("os_pix").at(id("i"))),
        bl("ni", id("g_fc").add(id("j"))),
        p.out_index,
    ];
    // the fold's first cycle: the rows' pixels, the PEs' starting sums, the first tap
    const PIXEL: [&str; 4] = ["img", "pix", "y", "x"];
    let mut latch_row: Vec<Stmt> = PIXEL
        .map(|v| bl(id(format!("os_{v}")).at(id("i")), id(format!("s_{v}"))))
        .to_vec();
    latch_row.extend(next_pixel());
    let mut latch = copy_regs("s_", "b_", &PIXEL);
    latch.push(for_("i", r.clone(), latch_row));
    latch.extend(copy_regs("n_", "s_", &PIXEL));
    latch.extend([bl("k_ci", id("g_c0")), bl("k_ky", n(0)), bl("k_kx", n(0))]);
    let mut start = at_pe.clone();
    start.push(p.start);
    start.push(bl(pe.clone(), id("cur")));
    latch.push(each_pe(start));
    // this cycle's reduction element: one run of weights, one input code per row
    let mut weight = vec![bl("ni", id("g_fc").add(id("j")))];
    weight.extend(p.weight_field);
    weight.push(p.decode);
    weight.push(bl(id("os_wv").at(id("j")), id("wv")));
    let read = row_code(
        ["img", "y", "x"]
            .map(|v| bl(v, id(format!("os_{v}")).at(id("i"))))
            .to_vec(),
        p.window,
        p.input_code,
        "os_xv",
    );
    let mac = bl(
        pe.clone(),
        signed(pe.clone())
            .add(signed(id("os_xv").at(id("i"))).mul(signed(id("os_wv").at(id("j"))))),
    );
    let mut write = at_pe;
    write.push(bl(id("accs").at(id("oi")), pe));
    let mut end_fold = vec![
        each_pe(write),
        // the last column fold of these rows: the next row fold starts at the pixel after them
        if_(
            id("g_fc").add(c.clone()).ge(id("g_sc")),
            copy_regs("b_", "n_", &PIXEL),
        ),
    ];
    end_fold.extend(p.next_fold);
    let mut step = vec![rows_of_fold(rows), if_(id("g_ts").eq(n(0)), latch)];
    step.extend(take_tap());
    step.extend([
        for_("j", c.clone(), vec![if_(column_used.clone(), weight)]),
        for_("i", r.clone(), vec![if_(row_used.clone(), read)]),
        each_pe(vec![mac]),
        bl("g_ts", id("g_ts").add(n(1))),
        if_(id("g_ts").ge(id("g_t")), end_fold),
    ]);
    step
}

/// The module `etch_datapath` of `prog` as `plan` builds it.
pub fn module(prog: &Program, plan: &Plan) -> Module {
    let slots = prog.machine.slots.max(1) as u64;
    let global = plan.global > 0;
    let mut m = Module::new("etch_datapath");
    m.doc("The datapath: memories, buffers, DMA engines, the array and the vector unit.");
    m.input("clk", 1).input("rst", 1);
    for x in ["l", "c", "s"] {
        m.input(&format!("{x}_go"), 1)
            .input(&format!("{x}_word"), encode::WORD_BITS);
    }
    m.output("ready", 3);
    super::axi::declare_ports(&mut m, plan);
    m.waive(
        "BLKSEQ",
        "the engines' per-cycle work is written as loops over lanes with blocking temporaries",
    );
    m.waive(
        "WIDTH",
        "address and index arithmetic is 32-bit integer arithmetic over narrower fields",
    );
    m.waive(
        "UNUSEDSIGNAL",
        "each engine reads only its instruction kind's fields of a word",
    );
    m.wire("unused_words", 1);
    m.assign(
        "unused_words",
        Expr::Un(
            "&",
            Box::new(concat(
                [lit(1, 0), id("l_word"), id("c_word"), id("s_word")]
                    .into_iter()
                    .chain(super::axi::unread_inputs())
                    .collect(),
            )),
        ),
    );
    if global {
        m.memory("gbuf", 8, plan.global as u32);
    }
    m.memory("ibuf", 8, (slots * plan.input_slot) as u32);
    // one byte past the end: a weight decodes from a byte pair
    m.memory("wbuf", 8, (slots * plan.weight_slot + 1) as u32);
    let outs = (slots * plan.output_slot) as u32;
    m.memory("accs", 32, outs).memory("obuf", 8, outs);
    // each output slot's channels' requantization parameters
    let params = (slots * plan.slot_channels) as u32;
    m.memory("pmul", 32, params);
    for p in ["pshift", "pzp", "pmin", "pmax"] {
        m.memory(p, 8, params);
    }
    m.memory("ltab", 256, (plan.table.len() + 1) as u32);
    m.memory("thr", 32, (plan.constants.len() + 1) as u32);
    for meta in [
        "imeta_c0",
        "imeta_rows",
        "imeta_rb",
        "wmeta_c0",
        "ometa_ch",
        "ometa_px",
    ] {
        m.memory(meta, 32, slots as u32);
    }
    let init = vec![
        Stmt::Task("$readmemh", vec![s(LAYER_TABLE), id("ltab")]),
        Stmt::Task("$readmemh", vec![s(CONSTANTS), id("thr")]),
    ];
    m.item(Item::Initial(init));
    dma_engine(&mut m, "l", plan, global);
    dma_engine(&mut m, "s", plan, global);
    compute_engine(&mut m, prog, plan);
    m
}

/// The memory that holds a region's codes: the global buffer in the design under the
/// testbench, or the testbench's AXI4 memory model.
fn region_memory(space: Space) -> &'static str {
    if space == Space::Global {
        "dut.dp.gbuf"
    } else {
        "dram_model.dram"
    }
}

/// The testbench statements that write sample `sample`'s input codes (from the testbench's
/// memory `inputs`, the samples one after another) where the program reads them, as the host
/// does before it starts the core.
pub fn write_input(plan: &Plan, inputs: &str, sample: &str, at: &str) -> Vec<Stmt> {
    let r = plan.input;
    if r.bytes == 0 {
        return vec![];
    }
    vec![for_(
        at,
        n(r.bytes as i128),
        vec![bl(
            id(region_memory(r.space)).at(id(at).add(n(r.addr as i128))),
            id(inputs).at(id(sample).mul(n(r.bytes as i128)).add(id(at))),
        )],
    )]
}

/// The testbench statements that write the output region's codes to the open file `fd` (the
/// run's codes after the previous runs', one a line).
pub fn dump_values(plan: &Plan, fd: &str, at: &str) -> Vec<Stmt> {
    let r = plan.output;
    let byte = id(region_memory(r.space)).at(id(at).add(n(r.addr as i128)));
    let value = if plan.output_signed {
        Expr::Call("$signed", vec![byte])
    } else {
        byte
    };
    vec![for_(
        at,
        n(r.bytes as i128),
        vec![Stmt::Task("$fdisplay", vec![id(fd), s("%0d"), value])],
    )]
}
