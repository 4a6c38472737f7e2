//! The control core of the program's accelerator: the load, compute and store units running
//! their instruction streams, the seven counting semaphores between them, the channel timers and
//! the arbitration of the two DMA units, as RTL. It is built from the same data the simulator
//! times: the instruction words of `etch_program::encode` (the decoder reads its field table),
//! the fold plan of `etch_program::machine::Folding` (the GEMM sequencer walks its folds) and the
//! channel rule of `docs/accelerator.md` (one `etch_channel_*` module per channel: DRAM's is the
//! rate the DMA keeps to on its AXI4 bus). The testbench logs when every instruction starts, ends
//! and is done; `compare` holds that log against `etch_program::machine::run`, instruction by
//! instruction. With values, the core carries its datapath (`datapath`), whose DMA is an AXI4
//! master; its testbench holds DRAM in an AXI4 memory model (`axi`).

use std::path::Path;

use etch_program::encode::{self, Field, Word};
use etch_program::isa::{Insn, Unit};
use etch_program::machine::{check_counting, Channel, CountingError, Dim, Machine, Timing};

use super::ast::*;

/// The core's design file, its testbench and the trace the testbench writes.
pub const CORE: &str = "etch_core.v";
pub const CORE_TB: &str = "etch_core_tb.v";
pub const TRACE: &str = "core_trace.txt";
/// The simulator's timing of every instruction, which the trace is held against.
pub const SIM_TIMING: &str = "sim_timing.json";

/// The instruction image of each unit.
pub fn image(u: Unit) -> &'static str {
    match u {
        Unit::Load => "load.hex",
        Unit::Compute => "compute.hex",
        Unit::Store => "store.hex",
    }
}

/// Why a program's core could not be emitted.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    Encode(#[from] encode::EncodeError),
    #[error(transparent)]
    Counting(#[from] CountingError),
    #[error("cannot write `{path}`: {err}")]
    Io { path: String, err: std::io::Error },
    #[error("the DRAM bus's beats of {beat_bytes} bytes are wider than the core's 2^{LOW_BITS}; give the description a DRAM bandwidth of at most 65,536 bytes a cycle")]
    Bus { beat_bytes: u64 },
}

/// Bits of a cycle counter and of the byte counts the units hand the channels.
const CYCLE_BITS: u32 = 48;
const BYTES_BITS: u32 = 64;
/// Thousandths of a byte: bytes × 1000 fits in 74 bits.
const MILLI_BITS: u32 = 80;
/// Cycles of one GEMM fold or elements of a vector instruction.
const REM_BITS: u32 = 50;
/// Bits of a transfer's address and stride within a bus beat (beats of at most 2^16 bytes).
const LOW_BITS: u32 = 16;
/// A transfer's shape as the channel reads it: {contiguous, address and stride within a beat,
/// row bytes, rows}.
const SHAPE_BITS: u32 = 1 + 2 * LOW_BITS + 32 + 24;

fn bits_for(v: u64) -> u32 {
    (64 - v.leading_zeros()).max(1)
}

/// The sizes the emitted core is built for.
struct Sizes {
    /// Instructions of each unit.
    count: [usize; 3],
    /// Bits of each unit's program counter (it counts to the unit's instruction count), and
    /// the widest of them (the tags and the trace carry that many).
    unit_pc: [u32; 3],
    pc: u32,
    /// Bits of a semaphore's count.
    sem: u32,
}

impl Sizes {
    /// Bits of a channel tag: the store bit, the tokens to push, the unit's program counter.
    fn tag(&self) -> u32 {
        1 + 7 + self.pc
    }
}

fn sizes(m: &Machine, insns: &[Insn]) -> Sizes {
    let mut count = [0usize; 3];
    for i in insns {
        count[i.kind.unit() as usize] += 1;
    }
    let unit_pc = count.map(|c| bits_for(c as u64));
    Sizes {
        count,
        unit_pc,
        pc: *unit_pc.iter().max().unwrap_or(&1),
        // a semaphore never holds more than its initial tokens plus every push
        sem: bits_for(insns.len() as u64 + m.slots as u64),
    }
}

fn field(word: &str, f: Field) -> Expr {
    id(word).part(n(f.lsb as i128), f.width)
}

/// `e`, `from` bits wide, zero-extended to `to` bits.
fn widen(e: Expr, from: u32, to: u32) -> Expr {
    if from >= to {
        e
    } else {
        concat(vec![lit(to - from, 0), e])
    }
}

fn tok(e: Expr, t: usize) -> Expr {
    e.at(n(t as i128))
}

/// `min(e, limit)` for a constant limit.
fn min_c(e: Expr, limit: u64) -> Expr {
    let l = n(limit as i128);
    cond(e.clone().lt(l.clone()), e, l)
}

/// The module `etch_channel_<name>`: one memory channel's rule. A request is granted when the
/// channel is free; it holds the channel `ceil(1000·bytes / bpc)` cycles (`last` marks the final
/// one) and is done `latency` cycles later, when `done_valid` shows its tag. On a bus (beats of
/// more than a byte), `bytes` are the beats the rows touch (`Channel::bus_bytes`): the channel
/// adds one row's beats a cycle from the request's shape, ahead of what it spends (a beat is at
/// least a cycle's bytes).
fn channel(name: &str, ch: Channel, tag_bits: u32) -> Module {
    let bpc = ch.milli_bytes_per_cycle as i128;
    let lat = ch.latency as u32;
    let w = ch.beat_bytes;
    let mut m = Module::new(&format!("etch_channel_{name}"));
    m.doc(&format!(
        "The {name} channel: {} thousandths of a byte a cycle, {} cycles of latency, beats of {} bytes.",
        bpc, lat, w
    ));
    m.input("clk", 1)
        .input("rst", 1)
        .input("req_valid", 1)
        .input("req_bytes", BYTES_BITS);
    m.input("req_shape", SHAPE_BITS);
    m.input("req_tag", tag_bits)
        .output("grant", 1)
        .output("last", 1)
        .output("last_tag", tag_bits)
        .output("done_valid", 1)
        .output("done_tag", tag_bits);
    m.reg("busy", 1)
        .reg("rem", MILLI_BITS)
        .reg("tag_r", tag_bits)
        .wire("need", MILLI_BITS)
        .wire("cur", MILLI_BITS);
    m.assign("grant", id("req_valid").land(not(id("busy"))));
    let milli = |e: Expr, bits: u32| widen(e, bits, MILLI_BITS).mul(lit(MILLI_BITS, 1000));
    // rows still to add after this cycle (a bus: one row's beats join the channel a cycle)
    let more = if w <= 1 {
        m.waive(
            "UNUSEDSIGNAL",
            "a channel of single bytes needs only the transfer's bytes, not its shape",
        );
        m.wire("shape_unused", 1);
        m.assign("shape_unused", red_xor(id("req_shape")));
        m.unwaive("UNUSEDSIGNAL");
        m.assign("need", milli(id("req_bytes"), BYTES_BITS));
        m.assign("cur", cond(id("grant"), id("need"), id("rem")));
        lit(1, 0)
    } else {
        let lw = w.trailing_zeros();
        let field = |lsb: u32, width: u32| id("req_shape").slice(lsb + width - 1, lsb);
        // the shape's fields: rows, row bytes, stride and address within a beat, contiguous
        let (rows, rb, stride, addr) = (
            field(0, 24),
            field(24, 32),
            field(56, LOW_BITS),
            field(56 + LOW_BITS, LOW_BITS),
        );
        let contig = id("req_shape").at(n((SHAPE_BITS - 1) as i128));
        m.reg("rows_left", 24)
            .reg("row_bytes", 32)
            .reg("stride_low", LOW_BITS)
            .reg("low", LOW_BITS)
            .wire("first", BYTES_BITS + 1)
            .wire("add", BYTES_BITS + 1)
            .wire("rows_after", 24);
        let mask = lit(LOW_BITS, (w - 1) as i128);
        // the beats (in bytes) of `bytes` starting `low` bytes into a beat
        let beats = |low: Expr, bytes: Expr, bits: u32| {
            widen(low, LOW_BITS, BYTES_BITS + 1)
                .add(widen(bytes, bits, BYTES_BITS + 1))
                .add(lit(BYTES_BITS + 1, (w - 1) as i128))
                .shr(n(lw as i128))
                .shl(n(lw as i128))
        };
        m.assign(
            "first",
            cond(
                contig.clone(),
                beats(addr.clone().and(mask.clone()), id("req_bytes"), BYTES_BITS),
                beats(addr.clone().and(mask.clone()), rb.clone(), 32),
            ),
        );
        m.assign(
            "add",
            cond(
                id("rows_left").ne(lit(24, 0)),
                beats(id("low"), id("row_bytes"), 32),
                lit(BYTES_BITS + 1, 0),
            ),
        );
        m.assign("need", milli(id("first"), BYTES_BITS + 1));
        m.assign(
            "cur",
            cond(
                id("grant"),
                id("need"),
                id("rem").add(milli(id("add"), BYTES_BITS + 1)),
            ),
        );
        m.assign(
            "rows_after",
            cond(
                id("grant"),
                cond(contig, lit(24, 0), rows.sub(lit(24, 1))),
                cond(
                    id("rows_left").ne(lit(24, 0)),
                    id("rows_left").sub(lit(24, 1)),
                    lit(24, 0),
                ),
            ),
        );
        m.always_ff(
            "clk",
            vec![if_else(
                id("rst"),
                vec![nb("rows_left", lit(24, 0))],
                vec![
                    if_(
                        id("grant"),
                        vec![
                            nb("row_bytes", rb),
                            nb("stride_low", stride.clone().and(mask.clone())),
                            nb("low", addr.add(stride).and(mask.clone())),
                        ],
                    ),
                    if_(
                        id("busy").land(id("rows_left").ne(lit(24, 0))),
                        vec![nb("low", id("low").add(id("stride_low")).and(mask))],
                    ),
                    if_(
                        id("grant").lor(id("busy")),
                        vec![nb("rows_left", id("rows_after"))],
                    ),
                ],
            )],
        );
        id("rows_after").ne(lit(24, 0))
    };
    m.assign(
        "last",
        id("grant")
            .lor(id("busy"))
            .land(id("cur").le(lit(MILLI_BITS, bpc)))
            .land(not(more)),
    );
    m.assign("last_tag", cond(id("grant"), id("req_tag"), id("tag_r")));
    m.always_ff(
        "clk",
        vec![if_else(
            id("rst"),
            vec![nb("busy", lit(1, 0)), nb("rem", lit(MILLI_BITS, 0))],
            vec![
                if_(
                    id("grant").lor(id("busy")),
                    vec![
                        nb("busy", not(id("last"))),
                        nb("rem", id("cur").sub(lit(MILLI_BITS, bpc))),
                    ],
                ),
                if_(id("grant"), vec![nb("tag_r", id("req_tag"))]),
            ],
        )],
    );
    let w = tag_bits + 1;
    if lat == 0 {
        m.assign("done_valid", id("last"));
        m.assign("done_tag", id("last_tag"));
    } else {
        // the latency as a shift register of (last, tag) pairs
        let total = w * lat;
        m.reg("pipe", total);
        let shifted = if lat == 1 {
            concat(vec![id("last"), id("last_tag")])
        } else {
            concat(vec![
                id("pipe").slice(total - w - 1, 0),
                id("last"),
                id("last_tag"),
            ])
        };
        m.always_ff(
            "clk",
            vec![if_else(
                id("rst"),
                vec![nb("pipe", lit(total, 0))],
                vec![nb("pipe", shifted)],
            )],
        );
        m.assign("done_valid", id("pipe").at(n((total - 1) as i128)));
        m.assign("done_tag", id("pipe").slice(total - 2, total - w));
    }
    m
}

/// Names of a unit's signals: `l`, `c`, `s`.
fn p(u: Unit) -> &'static str {
    match u {
        Unit::Load => "l",
        Unit::Compute => "c",
        Unit::Store => "s",
    }
}

/// A unit's instruction memory and its head word (the instruction at its program counter, read
/// one cycle ahead so a unit starts its next instruction the cycle after the last one ends).
fn fetch(m: &mut Module, u: Unit, count: usize, pcw: u32) {
    let x = p(u);
    let (pc, head, mem, issue) = (
        format!("pc_{x}"),
        format!("head_{x}"),
        format!("imem_{x}"),
        format!("issue_{x}"),
    );
    m.comment(&format!(
        "{} unit: {count} instructions from {}",
        u.name(),
        image(u)
    ));
    m.reg(&pc, pcw);
    m.waive(
        "UNUSEDSIGNAL",
        "the control core decodes only the fields that time an instruction; the datapath reads the rest",
    );
    m.reg(&head, encode::WORD_BITS);
    m.unwaive("UNUSEDSIGNAL");
    m.memory(&mem, encode::WORD_BITS, (count + 1) as u32)
        .wire(&format!("valid_{x}"), 1)
        .wire(&format!("pops_ok_{x}"), 1)
        .wire(&issue, 1)
        .wire(&format!("pc_next_{x}"), pcw);
    m.item(Item::Initial(vec![Stmt::Task(
        "$readmemh",
        vec![s(image(u)), id(&mem)],
    )]));
    m.assign(
        format!("valid_{x}").as_str(),
        id(&pc).lt(lit(pcw, count as i128)),
    );
    m.assign(
        format!("pops_ok_{x}").as_str(),
        field(&head, encode::POP)
            .and(inv(id("avail")))
            .eq(lit(7, 0)),
    );
    m.assign(
        format!("pc_next_{x}").as_str(),
        cond(
            id("rst"),
            lit(pcw, 0),
            cond(id(&issue), id(&pc).add(lit(pcw, 1)), id(&pc)),
        ),
    );
    m.always_ff(
        "clk",
        vec![
            nb(id(&pc), id(format!("pc_next_{x}"))),
            nb(id(&head), id(&mem).at(id(format!("pc_next_{x}")))),
        ],
    );
}

/// A DMA unit (load or store): it takes its tokens, asks for the channel of its space, holds it
/// while the transfer runs, and hands the tokens to push to the channel with the transfer.
fn dma_unit(m: &mut Module, u: Unit, sz: &Sizes) {
    let x = p(u);
    let v = |s: &str| format!("{s}_{x}");
    fetch(m, u, sz.count[u as usize], sz.unit_pc[u as usize]);
    let pcw = sz.unit_pc[u as usize];
    let head = v("head");
    for (r, w) in [
        ("wait", 1),
        ("hold", 1),
        ("space_r", 1),
        ("bytes_r", BYTES_BITS),
        ("shape_r", SHAPE_BITS),
        ("at_r", CYCLE_BITS),
        ("push_r", 7),
        ("xpc", pcw),
    ] {
        m.reg(&v(r), w);
    }
    for (w, bits) in [
        ("req", 1),
        ("space", 1),
        ("bytes", BYTES_BITS),
        ("shape", SHAPE_BITS),
        ("at", CYCLE_BITS),
        ("push", 7),
        ("cpc", pcw),
        ("grant", 1),
        ("last", 1),
    ] {
        m.wire(&v(w), bits);
    }
    let issue = id(v("issue"));
    m.assign(
        v("issue").as_str(),
        id(v("valid"))
            .land(not(id(v("wait"))))
            .land(not(id(v("hold"))))
            .land(id(v("pops_ok"))),
    );
    m.assign(v("req").as_str(), issue.clone().lor(id(v("wait"))));
    m.assign(
        v("space").as_str(),
        cond(
            issue.clone(),
            field(&head, encode::DMA_SPACE),
            id(v("space_r")),
        ),
    );
    m.assign(
        v("bytes").as_str(),
        cond(
            issue.clone(),
            concat(vec![
                lit(64 - encode::DMA_ROWS.width, 0),
                field(&head, encode::DMA_ROWS),
            ])
            .mul(concat(vec![
                lit(64 - encode::DMA_ROW_BYTES.width, 0),
                field(&head, encode::DMA_ROW_BYTES),
            ])),
            id(v("bytes_r")),
        ),
    );
    // the shape a bus channel counts beats from: contiguous rows, the address and stride within
    // a beat, the row bytes, the rows
    let low = |f: Field| id(&head).part(n(f.lsb as i128), LOW_BITS);
    let contiguous = field(&head, encode::DMA_ROWS)
        .eq(lit(encode::DMA_ROWS.width, 1))
        .lor(
            widen(
                field(&head, encode::DMA_ROW_BYTES),
                encode::DMA_ROW_BYTES.width,
                encode::DMA_STRIDE.width,
            )
            .eq(field(&head, encode::DMA_STRIDE)),
        );
    m.assign(
        v("shape").as_str(),
        cond(
            issue.clone(),
            concat(vec![
                contiguous,
                low(encode::DMA_ADDR),
                low(encode::DMA_STRIDE),
                field(&head, encode::DMA_ROW_BYTES),
                field(&head, encode::DMA_ROWS),
            ]),
            id(v("shape_r")),
        ),
    );
    m.assign(
        v("at").as_str(),
        cond(issue.clone(), id("now"), id(v("at_r"))),
    );
    m.assign(
        v("push").as_str(),
        cond(issue.clone(), field(&head, encode::PUSH), id(v("push_r"))),
    );
    m.assign(
        v("cpc").as_str(),
        cond(issue.clone(), id(v("pc")), id(v("xpc"))),
    );
    m.always_ff(
        "clk",
        vec![if_else(
            id("rst"),
            vec![nb(id(v("wait")), lit(1, 0)), nb(id(v("hold")), lit(1, 0))],
            vec![
                if_(
                    issue.clone(),
                    vec![
                        nb(id(v("space_r")), id(v("space"))),
                        nb(id(v("bytes_r")), id(v("bytes"))),
                        nb(id(v("shape_r")), id(v("shape"))),
                        nb(id(v("at_r")), id("now")),
                        nb(id(v("push_r")), id(v("push"))),
                        nb(id(v("xpc")), id(v("pc"))),
                    ],
                ),
                nb(id(v("wait")), id(v("req")).land(not(id(v("grant"))))),
                nb(
                    id(v("hold")),
                    id(v("grant")).lor(id(v("hold"))).land(not(id(v("last")))),
                ),
            ],
        )],
    );
}

/// The extents of a GEMM word along the array's rows, its columns and in time.
fn gemm_dims(m: &Machine, head: &str) -> [Expr; 3] {
    let f = m.folding();
    let dim = |d: Dim| {
        let fld = match d {
            Dim::M => encode::GEMM_M,
            Dim::K => encode::GEMM_K,
            Dim::N => encode::GEMM_N,
        };
        concat(vec![lit(REM_BITS - fld.width, 0), field(head, fld)])
    };
    [dim(f.rows), dim(f.cols), dim(f.stream)]
}

/// Cycles of one fold on `rf` rows and `cf` columns streaming `t` (`Folding::fold_cycles`).
fn fold_len(m: &Machine, rf: Expr, cf: Expr, t: Expr) -> Expr {
    let f = m.folding();
    rf.mul(lit(REM_BITS, f.per_row() as i128))
        .add(cf)
        .add(t)
        .sub(lit(REM_BITS, 2))
}

/// The compute unit: a GEMM walks its folds (row folds outer, column folds inner), each fold
/// `Folding::fold_cycles` long; a vector instruction takes `lanes` operations a cycle. It pushes
/// its tokens in its last cycle.
fn compute_unit(m: &mut Module, mach: &Machine, sz: &Sizes) {
    let u = Unit::Compute;
    let pcw = sz.unit_pc[u as usize];
    fetch(m, u, sz.count[u as usize], pcw);
    let (r, c, lanes) = (mach.rows, mach.cols, mach.lanes);
    for (reg, w) in [
        ("busy_c", 1),
        ("vec_r", 1),
        ("rows_r", REM_BITS),
        ("cols_r", REM_BITS),
        ("sc_r", REM_BITS),
        ("t_r", REM_BITS),
        ("rem_r", REM_BITS),
        ("push_r_c", 7),
        ("xpc_c", pcw),
    ] {
        m.reg(reg, w);
    }
    for (w, bits) in [
        ("active_c", 1),
        ("hvec_c", 1),
        ("hsr_c", REM_BITS),
        ("hsc_c", REM_BITS),
        ("ht_c", REM_BITS),
        ("vec_c", 1),
        ("rl_c", REM_BITS),
        ("cl_c", REM_BITS),
        ("scv_c", REM_BITS),
        ("tt_c", REM_BITS),
        ("rem_c", REM_BITS),
        ("more_cols_c", 1),
        ("more_rows_c", 1),
        ("last_c", 1),
        ("push_c", 7),
        ("cpc_c", pcw),
    ] {
        m.wire(w, bits);
    }
    let issue = id("issue_c");
    m.assign(
        "issue_c",
        id("valid_c").land(not(id("busy_c"))).land(id("pops_ok_c")),
    );
    m.assign("active_c", issue.clone().lor(id("busy_c")));
    m.assign(
        "hvec_c",
        field("head_c", encode::OPCODE).eq(lit(2, encode::OP_VECTOR as i128)),
    );
    let [hsr, hsc, ht] = gemm_dims(mach, "head_c");
    m.assign("hsr_c", hsr);
    m.assign("hsc_c", hsc);
    m.assign("ht_c", ht);
    let pick = |h: &str, reg: &str| cond(issue.clone(), id(h), id(reg));
    m.assign("vec_c", pick("hvec_c", "vec_r"));
    m.assign("rl_c", pick("hsr_c", "rows_r"));
    m.assign("cl_c", pick("hsc_c", "cols_r"));
    m.assign("scv_c", pick("hsc_c", "sc_r"));
    m.assign("tt_c", pick("ht_c", "t_r"));
    let first_fold = fold_len(
        mach,
        min_c(id("hsr_c"), r),
        min_c(id("hsc_c"), c),
        id("ht_c"),
    );
    m.assign(
        "rem_c",
        cond(
            issue.clone(),
            cond(
                id("hvec_c"),
                concat(vec![
                    lit(REM_BITS - encode::VEC_OPS.width, 0),
                    field("head_c", encode::VEC_OPS),
                ]),
                first_fold,
            ),
            id("rem_r"),
        ),
    );
    m.assign("more_cols_c", id("cl_c").gt(lit(REM_BITS, c as i128)));
    m.assign("more_rows_c", id("rl_c").gt(lit(REM_BITS, r as i128)));
    m.assign(
        "last_c",
        id("active_c").land(cond(
            id("vec_c"),
            id("rem_c").le(lit(REM_BITS, lanes as i128)),
            id("rem_c")
                .eq(lit(REM_BITS, 1))
                .land(not(id("more_cols_c")))
                .land(not(id("more_rows_c"))),
        )),
    );
    m.assign(
        "push_c",
        cond(issue.clone(), field("head_c", encode::PUSH), id("push_r_c")),
    );
    m.assign("cpc_c", cond(issue.clone(), id("pc_c"), id("xpc_c")));
    let c_l = lit(REM_BITS, c as i128);
    let r_l = lit(REM_BITS, r as i128);
    let next_col = fold_len(
        mach,
        min_c(id("rl_c"), r),
        min_c(id("cl_c").sub(c_l.clone()), c),
        id("tt_c"),
    );
    let next_row = fold_len(
        mach,
        min_c(id("rl_c").sub(r_l.clone()), r),
        min_c(id("scv_c"), c),
        id("tt_c"),
    );
    m.always_ff(
        "clk",
        vec![if_else(
            id("rst"),
            vec![nb("busy_c", lit(1, 0))],
            vec![
                if_(
                    issue,
                    vec![
                        nb("vec_r", id("hvec_c")),
                        nb("sc_r", id("hsc_c")),
                        nb("t_r", id("ht_c")),
                        nb("push_r_c", id("push_c")),
                        nb("xpc_c", id("pc_c")),
                    ],
                ),
                nb("busy_c", id("active_c").land(not(id("last_c")))),
                if_(
                    id("active_c"),
                    vec![if_else(
                        id("vec_c"),
                        vec![nb("rem_r", id("rem_c").sub(lit(REM_BITS, lanes as i128)))],
                        vec![if_else(
                            id("rem_c").ne(lit(REM_BITS, 1)),
                            vec![
                                nb("rem_r", id("rem_c").sub(lit(REM_BITS, 1))),
                                nb("rows_r", id("rl_c")),
                                nb("cols_r", id("cl_c")),
                            ],
                            vec![if_else(
                                id("more_cols_c"),
                                vec![
                                    nb("rows_r", id("rl_c")),
                                    nb("cols_r", id("cl_c").sub(c_l)),
                                    nb("rem_r", next_col),
                                ],
                                vec![
                                    nb("rows_r", id("rl_c").sub(r_l)),
                                    nb("cols_r", id("scv_c")),
                                    nb("rem_r", next_row),
                                ],
                            )],
                        )],
                    )],
                ),
            ],
        )],
    );
}

/// The arbiter of one channel between the load and the store unit: the request that has waited
/// longer goes first, the load's on a tie (`docs/accelerator.md`, rule 2). `space` is the
/// channel's space code; `chan` prefixes its request wires.
fn arbiter(m: &mut Module, space: u64, chan: &str, sz: &Sizes) {
    let want =
        |u: &str| id(format!("req_{u}")).land(id(format!("space_{u}")).eq(lit(1, space as i128)));
    m.wire(&format!("{chan}_l"), 1)
        .wire(&format!("{chan}_s"), 1)
        .wire(&format!("{chan}_pick_s"), 1);
    m.assign(format!("{chan}_l").as_str(), want("l"));
    m.assign(format!("{chan}_s").as_str(), want("s"));
    m.assign(
        format!("{chan}_pick_s").as_str(),
        id(format!("{chan}_s")).land(not(id(format!("{chan}_l"))).lor(id("at_s").lt(id("at_l")))),
    );
    let ps = id(format!("{chan}_pick_s"));
    m.assign(
        format!("{chan}_req_valid").as_str(),
        id(format!("{chan}_l")).lor(id(format!("{chan}_s"))),
    );
    m.assign(
        format!("{chan}_req_bytes").as_str(),
        cond(ps.clone(), id("bytes_s"), id("bytes_l")),
    );
    m.assign(
        format!("{chan}_req_shape").as_str(),
        cond(ps.clone(), id("shape_s"), id("shape_l")),
    );
    let tag = |unit: Unit| {
        let x = p(unit);
        concat(vec![
            lit(1, (unit == Unit::Store) as i128),
            id(format!("push_{x}")),
            widen(id(format!("cpc_{x}")), sz.unit_pc[unit as usize], sz.pc),
        ])
    };
    m.assign(
        format!("{chan}_req_tag").as_str(),
        cond(ps, tag(Unit::Store), tag(Unit::Load)),
    );
}

/// A channel of the core: its arbiter over the load and store units' requests for `space`, and
/// the instance of `etch_channel_<module>` (signals `<chan>_…`).
fn channel_instance(m: &mut Module, chan: &str, module: &str, space: u64, sz: &Sizes) {
    let (tw, pcw) = (sz.tag(), sz.pc);
    let sig = |port: &str| format!("{chan}_{port}");
    m.wire(&sig("req_valid"), 1)
        .wire(&sig("req_bytes"), BYTES_BITS)
        .wire(&sig("req_shape"), SHAPE_BITS)
        .wire(&sig("req_tag"), tw)
        .wire(&sig("grant"), 1)
        .wire(&sig("last"), 1);
    m.waive(
        "UNUSEDSIGNAL",
        "a finished transfer's tag: the core reads which unit held the channel, the rest is the trace's",
    );
    m.wire(&sig("last_tag"), tw);
    m.unwaive("UNUSEDSIGNAL");
    m.wire(&sig("done_valid"), 1).wire(&sig("done_tag"), tw);
    m.wire(&sig("last_store"), 1).wire(&sig("done_push"), 7);
    arbiter(m, space, chan, sz);
    m.instance(
        &format!("etch_channel_{module}"),
        &format!("{module}_channel"),
        vec![],
        ["clk", "rst"]
            .into_iter()
            .chain(CHANNEL_PORTS)
            .map(|port| {
                let s = if port == "clk" || port == "rst" {
                    port.to_string()
                } else {
                    sig(port)
                };
                (port, id(s))
            })
            .collect(),
    );
    m.assign(
        sig("last_store").as_str(),
        id(sig("last_tag")).at(n((tw - 1) as i128)),
    );
    m.assign(
        sig("done_push").as_str(),
        id(sig("done_tag")).slice(pcw + 6, pcw),
    );
}

/// The core module `etch_core`.
fn core(mach: &Machine, sz: &Sizes, dp: bool) -> Module {
    let tw = sz.tag();
    let pcw = sz.pc;
    let global = mach.global_bytes > 0;
    let mut m = Module::new("etch_core");
    m.doc("The program's accelerator core: load, compute and store units, their semaphores and channels.");
    m.input("clk", 1)
        .input("rst_in", 1)
        .output("trace_start", 3)
        .output("trace_last", 3)
        .output("trace_pc_l", pcw)
        .output("trace_pc_c", pcw)
        .output("trace_pc_s", pcw)
        .output("trace_ddone_valid", 1)
        .output("trace_ddone_tag", tw)
        .output("trace_gdone_valid", 1)
        .output("trace_gdone_tag", tw)
        .output("trace_ready", 3);
    if dp {
        // the datapath's DRAM side, an AXI4 master
        for (name, bits, out) in super::axi::ports(mach.dram.beat_bytes) {
            let p = super::axi::port(name);
            if out {
                m.output(&p, bits);
            } else {
                m.input(&p, bits);
            }
        }
    }
    // the units' reset: the port's, or the control port's between runs
    m.wire("rst", 1);
    m.reg("now", CYCLE_BITS);
    m.always_ff(
        "clk",
        vec![nb(
            "now",
            cond(
                id("rst"),
                lit(CYCLE_BITS, 0),
                id("now").add(lit(CYCLE_BITS, 1)),
            ),
        )],
    );
    // semaphores
    m.wire("avail", 7);
    for u in Unit::ALL {
        match u {
            Unit::Compute => compute_unit(&mut m, mach, sz),
            _ => dma_unit(&mut m, u, sz),
        }
    }
    // the channels and who holds them: DRAM's (the rate the DMA keeps to on the AXI4 bus) and
    // the global buffer's
    channel_instance(&mut m, "dram", "dram", 0, sz);
    m.assign("trace_ddone_valid", id("dram_done_valid"));
    m.assign("trace_ddone_tag", id("dram_done_tag"));
    if global {
        channel_instance(&mut m, "g", "global", 1, sz);
        m.assign("trace_gdone_valid", id("g_done_valid"));
        m.assign("trace_gdone_tag", id("g_done_tag"));
    } else {
        m.assign("trace_gdone_valid", lit(1, 0));
        m.assign("trace_gdone_tag", lit(tw, 0));
    }
    for (x, unit_bit) in [("l", 0), ("s", 1)] {
        let granted = |chan: &str| {
            let pick = id(format!("{chan}_pick_s"));
            id(format!("{chan}_grant")).land(if unit_bit == 1 { pick } else { not(pick) })
        };
        let ends = |chan: &str| {
            id(format!("{chan}_last")).land(id(format!("{chan}_last_store")).eq(lit(1, unit_bit)))
        };
        let (mut g, mut l) = (granted("dram"), ends("dram"));
        if global {
            g = g.lor(granted("g"));
            l = l.lor(ends("g"));
        }
        m.assign(format!("grant_{x}").as_str(), g);
        m.assign(format!("last_{x}").as_str(), l);
    }
    // the semaphores: pushed by the compute unit's last cycle and by finished transfers, popped
    // when their consumer starts an instruction
    let sem_bits = sz.sem;
    for t in etch_program::isa::Token::ALL {
        let k = t.index();
        let name = format!("sem_{k}");
        let (_, consumer) = t.route();
        let cx = p(consumer);
        m.reg(&name, sem_bits);
        m.assign(id("avail").at(n(k as i128)), id(&name).ne(lit(sem_bits, 0)));
        let one = |e: Expr| widen(e, 1, sem_bits);
        let mut inc = one(id("last_c").land(tok(id("push_c"), k)));
        for chan in if global {
            &["dram", "g"][..]
        } else {
            &["dram"][..]
        } {
            inc = inc.add(one(
                id(format!("{chan}_done_valid")).land(tok(id(format!("{chan}_done_push")), k))
            ));
        }
        let dec = one(id(format!("issue_{cx}"))
            .land(tok(id(format!("head_{cx}")), encode::POP.lsb as usize + k)));
        m.always_ff(
            "clk",
            vec![if_else(
                id("rst"),
                vec![nb(id(&name), lit(sem_bits, t.initial(mach.slots) as i128))],
                vec![nb(id(&name), id(&name).add(inc).sub(dec))],
            )],
        );
    }
    if dp {
        datapath_instance(&mut m, mach.dram.beat_bytes);
    } else {
        m.assign("trace_ready", lit(3, 7));
    }
    // the host's control port: instructions finish when the compute unit ends one or a channel
    // completes a transfer
    let one = |e: &str| widen(id(e), 1, 32);
    let mut finished = one("last_c").add(one("dram_done_valid"));
    if global {
        finished = finished.add(one("g_done_valid"));
    }
    super::axi::control(
        &mut m,
        sz.count.iter().sum::<usize>() as u64,
        finished,
        CYCLE_BITS,
    );
    // what the testbench logs
    let start_l = id("grant_l");
    let start_s = id("grant_s");
    m.assign("trace_start", concat(vec![start_s, id("issue_c"), start_l]));
    m.assign(
        "trace_last",
        concat(vec![id("last_s"), id("last_c"), id("last_l")]),
    );
    for u in Unit::ALL {
        let x = p(u);
        m.assign(
            format!("trace_pc_{x}").as_str(),
            widen(id(format!("cpc_{x}")), sz.unit_pc[u as usize], pcw),
        );
    }
    m
}

/// The datapath under the core: each engine starts with its unit's instruction (a transfer when
/// the channel grants it), and tells the testbench whether it finishes by the end of this cycle.
fn datapath_instance(m: &mut Module, beat_bytes: u64) {
    let mut conns: Vec<(String, Expr)> = vec![("clk".into(), id("clk")), ("rst".into(), id("rst"))];
    for x in ["l", "s"] {
        let word = format!("word_{x}");
        let issue = id(format!("issue_{x}"));
        m.reg(&word, encode::WORD_BITS);
        m.always_ff(
            "clk",
            vec![if_(
                issue.clone(),
                vec![nb(id(&word), id(format!("head_{x}")))],
            )],
        );
        conns.push((format!("{x}_go"), id(format!("grant_{x}"))));
        conns.push((
            format!("{x}_word"),
            cond(issue, id(format!("head_{x}")), id(&word)),
        ));
    }
    conns.push(("c_go".into(), id("issue_c")));
    conns.push(("c_word".into(), id("head_c")));
    conns.push(("ready".into(), id("trace_ready")));
    for (name, _, _) in super::axi::ports(beat_bytes) {
        let p = super::axi::port(name);
        conns.push((p.clone(), id(p)));
    }
    m.item(Item::Instance {
        module: "etch_datapath".into(),
        name: "dp".into(),
        params: vec![],
        conns,
    });
}

/// The ports of a channel module, and of the core's DRAM side, in order.
const CHANNEL_PORTS: [&str; 9] = [
    "req_valid",
    "req_bytes",
    "req_shape",
    "req_tag",
    "grant",
    "last",
    "last_tag",
    "done_valid",
    "done_tag",
];

/// The testbench `etch_core_tb`: the core, the AXI4 memory model when it has a datapath, and a log of
/// every instruction's start, end and done cycle (cycle 0 is the first after reset). It stops
/// when every instruction is done, printing `ETCH CYCLES cycles=…`, and fails loudly on a
/// missing image or a run longer than `max_cycles`.
fn testbench(
    sz: &Sizes,
    n_insns: usize,
    max_cycles: u64,
    plan: Option<(&super::datapath::Plan, usize)>,
) -> Module {
    // the datapath's plan and how many samples the testbench runs (one without a datapath)
    let samples = plan.map_or(1, |p| p.1.max(1));
    let plan = plan.map(|p| p.0);
    let tw = sz.tag();
    let pcw = sz.pc;
    let mut m = Module::new("etch_core_tb");
    m.doc("Testbench of the core: the DRAM channel, the instruction log, the end of the run.");
    m.reg("clk", 1)
        .reg("rst", 1)
        .reg("cyc", CYCLE_BITS)
        .reg("finished", 32)
        .reg("last_done", CYCLE_BITS);
    m.item(Item::Integer("fd".into()));
    let mut core_conns: Vec<(String, Expr)> =
        vec![("clk".into(), id("clk")), ("rst_in".into(), id("rst"))];
    // the host's side of the control port
    let ctl = super::axi::control_port;
    for (name, bits, from_host) in super::axi::CONTROL_PORTS {
        if from_host {
            m.reg(&ctl(name), bits);
        } else {
            m.wire(&ctl(name), bits);
        }
        core_conns.push((ctl(name), id(ctl(name))));
    }
    m.reg("ctl_value", 32);
    for (w, bits) in [
        ("trace_start", 3),
        ("trace_last", 3),
        ("trace_pc_l", pcw),
        ("trace_pc_c", pcw),
        ("trace_pc_s", pcw),
        ("trace_ddone_valid", 1),
        ("trace_ddone_tag", tw),
        ("trace_gdone_valid", 1),
        ("trace_gdone_tag", tw),
        ("trace_ready", 3),
    ] {
        m.wire(w, bits);
        core_conns.push((w.into(), id(w)));
    }
    if let Some(plan) = plan {
        let mut mem_conns: Vec<(String, Expr)> =
            vec![("clk".into(), id("clk")), ("rst".into(), id("rst"))];
        for (name, bits, _) in super::axi::ports(plan.bus.beat_bytes) {
            let p = super::axi::port(name);
            m.wire(&p, bits);
            core_conns.push((p.clone(), id(&p)));
            mem_conns.push((p.clone(), id(p)));
        }
        m.item(Item::Instance {
            module: "etch_axi_memory".into(),
            name: "dram_model".into(),
            params: vec![],
            conns: mem_conns,
        });
    }
    m.item(Item::Instance {
        module: "etch_core".into(),
        name: "dut".into(),
        params: vec![],
        conns: core_conns,
    });
    m.item(Item::Always(
        Sens::Free,
        vec![Stmt::Delay(5), bl("clk", inv(id("clk")))],
    ));
    let mut init = vec![];
    let mut files: Vec<&str> = Unit::ALL.iter().map(|&u| image(u)).collect();
    if let Some(plan) = plan {
        files.extend([
            super::datapath::DRAM_IMAGE,
            super::datapath::LAYER_TABLE,
            super::datapath::CONSTANTS,
        ]);
        if plan.input.bytes > 0 {
            files.push(super::datapath::INPUT_IMAGE);
        }
        m.item(Item::Integer("k".into()));
    }
    for f in files {
        init.push(bl("fd", Expr::Call("$fopen", vec![s(f), s("r")])));
        init.push(if_(
            id("fd").eq(n(0)),
            vec![
                Stmt::Task(
                    "$display",
                    vec![s(format!("ETCH ERROR missing memory image {f}"))],
                ),
                Stmt::Task("$fatal", vec![n(1), s("missing memory image")]),
            ],
        ));
        init.push(Stmt::Task("$fclose", vec![id("fd")]));
    }
    // one run of the program per sample (one without a datapath): reset, the sample's input
    // codes written where the program reads them, run until every instruction is done, its
    // output codes read back
    m.item(Item::Integer("sample".into()))
        .reg("run_done", 1)
        .reg("first_cycles", CYCLE_BITS);

    init.extend([
        bl("fd", Expr::Call("$fopen", vec![s(TRACE), s("w")])),
        bl("clk", lit(1, 0)),
    ]);
    for (name, bits, from_host) in super::axi::CONTROL_PORTS {
        if from_host {
            let on = matches!(name, "bready" | "rready");
            init.push(bl(id(ctl(name)), lit(bits, on as i128)));
        }
    }
    let mut run = vec![
        bl("rst", lit(1, 1)),
        bl("run_done", lit(1, 0)),
        bl("cyc", lit(CYCLE_BITS, 0)),
        bl("finished", lit(32, 0)),
        bl("last_done", lit(CYCLE_BITS, 0)),
    ];
    if let Some(plan) = plan {
        m.memory(
            "inputs",
            8,
            (plan.input.bytes.max(1) * samples as u64) as u32,
        );
        m.item(Item::Integer("fv".into()));
        init.push(Stmt::Task(
            "$readmemh",
            vec![s(super::datapath::INPUT_IMAGE), id("inputs")],
        ));
        init.push(bl(
            "fv",
            Expr::Call("$fopen", vec![s(super::datapath::VALUES), s("w")]),
        ));
        run.extend(super::datapath::write_input(plan, "inputs", "sample", "k"));
    }
    run.extend([
        Stmt::WaitPosedge("clk".into()),
        Stmt::WaitPosedge("clk".into()),
        Stmt::WaitPosedge("clk".into()),
        nb("rst", lit(1, 0)),
    ]);
    // the host starts the run through the control port, and reads back that it is done and its
    // cycles
    let after_edge = || vec![Stmt::WaitPosedge("clk".into()), Stmt::Delay(1)];
    run.extend(after_edge());
    run.extend([
        bl(id(ctl("awaddr")), lit(8, super::axi::CONTROL_ADDR as i128)),
        bl(id(ctl("wdata")), lit(32, 1)),
        bl(id(ctl("wstrb")), lit(4, 15)),
        bl(id(ctl("awvalid")), lit(1, 1)),
        bl(id(ctl("wvalid")), lit(1, 1)),
    ]);
    run.extend(after_edge());
    run.extend([
        bl(id(ctl("awvalid")), lit(1, 0)),
        bl(id(ctl("wvalid")), lit(1, 0)),
        Stmt::Wait(id("run_done")),
    ]);
    let fail = |what: &str, args: Vec<Expr>| {
        let mut a = vec![s(format!("ETCH ERROR the control port {what}"))];
        a.extend(args);
        vec![
            Stmt::Task("$display", a),
            Stmt::Task("$fatal", vec![n(1), s("control port")]),
        ]
    };
    for (addr, check) in [
        (
            super::axi::CONTROL_ADDR,
            if_(
                id("ctl_value").at(n(1)).eq(lit(1, 0)),
                fail("does not say the run is done", vec![]),
            ),
        ),
        (
            super::axi::CYCLES_LOW_ADDR,
            if_(
                id("ctl_value").ne(id("last_done").slice(31, 0)),
                fail(
                    "counted %0d cycles (low word), the run took %0d",
                    vec![id("ctl_value"), id("last_done")],
                ),
            ),
        ),
        (
            super::axi::CYCLES_HIGH_ADDR,
            if_(
                id("ctl_value").ne(concat(vec![
                    lit(64 - CYCLE_BITS, 0),
                    id("last_done").slice(CYCLE_BITS - 1, 32),
                ])),
                fail("counted other cycles (high word)", vec![]),
            ),
        ),
    ] {
        run.extend(after_edge());
        run.extend([
            bl(id(ctl("araddr")), lit(8, addr as i128)),
            bl(id(ctl("arvalid")), lit(1, 1)),
        ]);
        run.extend(after_edge());
        run.extend([bl(id(ctl("arvalid")), lit(1, 0))]);
        run.push(if_(
            not(id(ctl("rvalid"))),
            fail("did not answer a read", vec![]),
        ));
        run.push(bl("ctl_value", id(ctl("rdata"))));
        run.push(check);
    }
    if let Some(plan) = plan {
        // after the edge that moved the last bytes
        run.push(Stmt::Delay(1));
        run.extend(super::datapath::dump_values(plan, "fv", "k"));
    }
    // after every memory's `$readmemh` at time 0, before the first sample's input goes in
    init.push(Stmt::Delay(1));
    init.push(Stmt::For("sample".into(), n(0), n(samples as i128), run));
    init.push(Stmt::Task("$fclose", vec![id("fd")]));
    if plan.is_some() {
        init.push(Stmt::Task("$fclose", vec![id("fv")]));
    }
    init.push(Stmt::Task("$finish", vec![]));
    m.item(Item::Initial(init));
    let next = id("cyc").add(lit(CYCLE_BITS, 1));
    // the trace is the first run's (every run takes the same cycles)
    let log = |kind: &str, unit: Expr, pc: Expr, at: Expr| {
        if_(
            id("sample").eq(n(0)),
            vec![Stmt::Task(
                "$fdisplay",
                vec![id("fd"), s(format!("{kind} %0d %0d %0d")), unit, pc, at],
            )],
        )
    };
    let done = |at: Expr| {
        vec![
            bl("finished", id("finished").add(lit(32, 1))),
            bl("last_done", at),
        ]
    };
    let mut body = vec![];
    for (k, x) in ["l", "c", "s"].iter().enumerate() {
        let pc = id(format!("trace_pc_{x}"));
        let u = lit(2, k as i128);
        body.push(if_(
            id("trace_start").at(n(k as i128)),
            vec![log("S", u.clone(), pc.clone(), id("cyc"))],
        ));
        let mut on_last = vec![log("E", u.clone(), pc.clone(), next.clone())];
        if *x == "c" {
            on_last.extend(done(next.clone()));
        }
        body.push(if_(id("trace_last").at(n(k as i128)), on_last));
        body.push(if_(
            id("trace_last")
                .at(n(k as i128))
                .land(not(id("trace_ready").at(n(k as i128)))),
            vec![
                Stmt::Task(
                    "$display",
                    vec![
                        s(format!(
                            "ETCH ERROR the datapath had not finished instruction %0d of the {} unit when the core ended it at cycle %0d",
                            Unit::ALL[k].name()
                        )),
                        pc.clone(),
                        next.clone(),
                    ],
                ),
                Stmt::Task("$fatal", vec![n(1), s("datapath late")]),
            ],
        ));
    }
    for (valid, tag) in [
        ("trace_ddone_valid", "trace_ddone_tag"),
        ("trace_gdone_valid", "trace_gdone_tag"),
    ] {
        // the tag's top bit is the store unit's
        let unit = cond(id(tag).at(n((tw - 1) as i128)), lit(2, 2), lit(2, 0));
        let mut v = vec![log("D", unit, id(tag).slice(pcw - 1, 0), next.clone())];
        v.extend(done(next.clone()));
        body.push(if_(id(valid), v));
    }
    let finish = vec![
        if_else(
            id("sample").eq(n(0)),
            vec![
                Stmt::Task(
                    "$display",
                    vec![s("ETCH CYCLES cycles=%0d"), id("last_done")],
                ),
                bl("first_cycles", id("last_done")),
            ],
            vec![if_(
                id("last_done").ne(id("first_cycles")),
                vec![
                    Stmt::Task(
                        "$display",
                        vec![
                            s("ETCH ERROR sample %0d took %0d cycles, sample 0 %0d"),
                            id("sample"),
                            id("last_done"),
                            id("first_cycles"),
                        ],
                    ),
                    Stmt::Task("$fatal", vec![n(1), s("cycles differ")]),
                ],
            )],
        ),
        bl("run_done", lit(1, 1)),
    ];
    body.push(if_(
        id("finished")
            .eq(lit(32, n_insns as i128))
            .land(not(id("run_done"))),
        finish,
    ));
    body.push(if_(
        id("cyc").ge(lit(CYCLE_BITS, max_cycles as i128)),
        vec![
            Stmt::Task(
                "$display",
                vec![s(format!(
                    "ETCH ERROR timeout: the core ran {max_cycles} cycles without finishing"
                ))],
            ),
            Stmt::Task("$fclose", vec![id("fd")]),
            Stmt::Task("$fatal", vec![n(1), s("timeout")]),
        ],
    ));
    body.push(nb("cyc", next));
    let mut on_reset = vec![];
    if plan.is_some() {
        // every DRAM transfer's bytes are in place (its last read beat written, its last write
        // answered) by the cycle the core gives its tokens
        m.reg("expect_l", 32).reg("expect_s", 32);
        on_reset.extend([bl("expect_l", lit(32, 0)), bl("expect_s", lit(32, 0))]);
        for x in ["l", "s"] {
            let expect = format!("expect_{x}");
            let unit = if x == "l" { "load" } else { "store" };
            body.insert(
                0,
                if_(
                    id(format!("dut.dp.{x}_overrun")),
                    vec![
                        Stmt::Task(
                            "$display",
                            vec![s(format!("ETCH ERROR the {unit} DMA was given a transfer before it had issued the last one's bursts"))],
                        ),
                        Stmt::Task("$fatal", vec![n(1), s("DMA overrun")]),
                    ],
                ),
            );
            body.insert(
                0,
                if_(
                    id(format!("dut.dp.{x}_complete")).lt(id(&expect)),
                    vec![
                        Stmt::Task(
                            "$display",
                            vec![
                                s(format!("ETCH ERROR the AXI4 DMA had not completed DRAM {unit} %0d when the core gave its tokens at cycle %0d")),
                                id(&expect),
                                id("cyc"),
                            ],
                        ),
                        Stmt::Task("$fatal", vec![n(1), s("DMA late")]),
                    ],
                ),
            );
            let store_bit = id("trace_ddone_tag").at(n((tw - 1) as i128));
            body.push(if_(
                id("trace_ddone_valid").land(if x == "s" { store_bit } else { not(store_bit) }),
                vec![bl(id(&expect), id(&expect).add(lit(32, 1)))],
            ));
        }
    }
    // the run's cycles count from the first after the units leave reset
    m.always_ff("clk", vec![if_else(not(id("dut.rst")), body, on_reset)]);
    m
}

fn write(dir: &Path, name: &str, text: &str) -> Result<(), CoreError> {
    let p = dir.join(name);
    std::fs::write(&p, text).map_err(|err| CoreError::Io {
        path: p.display().to_string(),
        err,
    })
}

/// Writes the core of `insns` on machine `m` (its design, its testbench and the three
/// instruction images) into `dir`; returns the file names. `timing` is the simulator's run of
/// the same program: the core is only emitted when counting semaphores reproduce it
/// (`check_counting`), and the testbench gives up at twice its length.
pub fn emit(
    dir: &Path,
    model: &str,
    mach: &Machine,
    insns: &[Insn],
    timing: &Timing,
    values: Option<&Values>,
) -> Result<Vec<String>, CoreError> {
    check_counting(mach, insns, timing)?;
    for ch in [mach.dram, mach.global] {
        if ch.beat_bytes > 1 << LOW_BITS {
            return Err(CoreError::Bus {
                beat_bytes: ch.beat_bytes,
            });
        }
    }
    let sz = sizes(mach, insns);
    let mut images: [String; 3] = Default::default();
    for (i, insn) in insns.iter().enumerate() {
        let w = encode::encode(i, insn)?;
        images[insn.kind.unit() as usize].push_str(&w.hex());
        images[insn.kind.unit() as usize].push('\n');
    }
    let mut design = vec![channel("dram", mach.dram, sz.tag())];
    if mach.global_bytes > 0 {
        design.push(channel("global", mach.global, sz.tag()));
    }
    design.push(core(mach, &sz, values.is_some()));
    if let Some(v) = values {
        design.push(super::datapath::module(v.program, &v.plan));
    }
    let file = File {
        header: vec![
            format!(
                "etch accelerator core for {model}: {}x{} {:?} array, {} vector lanes, {} slots a buffer",
                mach.rows, mach.cols, mach.dataflow, mach.lanes, mach.slots
            ),
            "Generated by etch. Verilog-2005. The control core: instruction streams, semaphores, channels.".into(),
        ],
        waivers: vec![(
            "DECLFILENAME",
            "one file holds every module of the core, so not every module name can match the file name".into(),
        )],
        modules: design,
    };
    write(dir, CORE, &file.print())?;
    let tb = File {
        header: vec![
            "etch core testbench: the AXI4 memory model and the instruction log. Verilog-2005 with delays."
                .into(),
        ],
        waivers: vec![],
        modules: values
            .map(|v| super::axi::memory_model(&v.plan, super::datapath::DRAM_IMAGE))
            .into_iter()
            .chain([testbench(
                &sz,
                insns.len(),
                timing.total.saturating_mul(2).saturating_add(1000),
                values.map(|v| (&v.plan, v.samples)),
            )])
            .collect(),
    };
    write(dir, CORE_TB, &tb.print())?;
    let timing_json =
        serde_json::to_string(&expected(insns, timing)).expect("plain data serializes");
    write(dir, SIM_TIMING, &timing_json)?;
    let mut names = vec![
        CORE.to_string(),
        CORE_TB.to_string(),
        SIM_TIMING.to_string(),
    ];
    if let Some(v) = values {
        use super::datapath::{
            bytes_hex, CONSTANTS, DRAM_IMAGE, EXPECTED_VALUES, INPUT_IMAGE, LAYER_TABLE,
        };
        let expected: String = v.expected.iter().map(|c| format!("{c}\n")).collect();
        for (name, text) in [
            (DRAM_IMAGE, bytes_hex(&v.dram)),
            (LAYER_TABLE, v.plan.table_hex()),
            (CONSTANTS, v.plan.constants_hex()),
            (INPUT_IMAGE, bytes_hex(&v.input)),
            (EXPECTED_VALUES, expected),
        ] {
            write(dir, name, &text)?;
            names.push(name.to_string());
        }
    }
    for u in Unit::ALL {
        let mut text = std::mem::take(&mut images[u as usize]);
        // one word past the end, so the head register never reads outside the memory
        text.push_str(&Word::default().hex());
        text.push('\n');
        write(dir, image(u), &text)?;
        names.push(image(u).to_string());
    }
    Ok(names)
}

/// What the core's datapath runs: the program, its datapath plan, its DRAM image, the samples'
/// input codes one after another and the output codes the CPU executor computes for them, in the
/// same order.
pub struct Values<'a> {
    pub program: &'a etch_program::Program,
    pub plan: super::datapath::Plan,
    pub dram: Vec<u8>,
    pub input: Vec<u8>,
    pub expected: Vec<i64>,
    pub samples: usize,
}

impl<'a> Values<'a> {
    /// The values of `program` on its DRAM `image` for `samples` (the CPU executor's golden
    /// codes), on buffers of `slots` and accumulators of `acc_bits`; refuses, naming the layer,
    /// what the RTL datapath does not run yet.
    pub fn new(
        program: &'a etch_program::Program,
        image: crate::datapath::Image,
        samples: &[crate::program::SampleGolden],
        slots: &etch_program::tiling::SlotBytes,
        acc_bits: u32,
    ) -> Result<Values<'a>, crate::datapath::DatapathError> {
        let plan = super::datapath::plan(program, &image, slots, acc_bits)?;
        Ok(Values {
            program,
            plan,
            dram: image.dram,
            input: samples
                .iter()
                .flat_map(|s| s.input.iter().map(|&c| c as u8))
                .collect(),
            expected: samples.iter().flat_map(|s| s.output.clone()).collect(),
            samples: samples.len(),
        })
    }
}

/// When the simulator runs one instruction: its unit, and the cycles it starts, ends and is
/// done (`machine::Timing`), in program order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Expected {
    pub unit: u8,
    pub start: u64,
    pub end: u64,
    pub done: u64,
}

/// The simulator's timing of a program, instruction by instruction.
pub fn expected(insns: &[Insn], timing: &Timing) -> Vec<Expected> {
    insns
        .iter()
        .enumerate()
        .map(|(i, insn)| Expected {
            unit: insn.kind.unit() as u8,
            start: timing.start[i],
            end: timing.end[i],
            done: timing.done[i],
        })
        .collect()
}

/// One line of the core's log: instruction `pc` of `unit` started, ended or was done at `cycle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub what: u8,
    pub unit: Unit,
    pub pc: usize,
    pub cycle: u64,
}

/// Reads the log the testbench wrote.
pub fn read_trace(text: &str) -> Vec<Event> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let what = w.next()?.bytes().next()?;
            let unit = match w.next()? {
                "0" => Unit::Load,
                "1" => Unit::Compute,
                "2" => Unit::Store,
                _ => return None,
            };
            let pc = w.next()?.parse().ok()?;
            let cycle = w.next()?.parse().ok()?;
            Some(Event {
                what,
                unit,
                pc,
                cycle,
            })
        })
        .collect()
}

/// Holds the core's log against the simulator's timing: every instruction must start, end and
/// be done in exactly the cycles `machine::run` gives. Returns the first difference.
pub fn compare(expected: &[Expected], events: &[Event]) -> Result<(), String> {
    let mut index: [Vec<usize>; 3] = Default::default();
    for (i, e) in expected.iter().enumerate() {
        if let Some(v) = index.get_mut(e.unit as usize) {
            v.push(i);
        }
    }
    let n = expected.len();
    let mut got: [Vec<Option<u64>>; 3] = [vec![None; n], vec![None; n], vec![None; n]];
    for e in events {
        let Some(&i) = index[e.unit as usize].get(e.pc) else {
            return Err(format!(
                "the core logged instruction {} of the {} unit, which has only {}",
                e.pc,
                e.unit.name(),
                index[e.unit as usize].len()
            ));
        };
        let slot = match e.what {
            b'S' => 0,
            b'E' => 1,
            _ => 2,
        };
        if let Some(first) = got[slot][i] {
            return Err(format!(
                "instruction {i} ({} unit) was logged twice ({} at cycles {first} and {})",
                e.unit.name(),
                e.what as char,
                e.cycle
            ));
        }
        got[slot][i] = Some(e.cycle);
    }
    for (i, x) in expected.iter().enumerate() {
        let unit = Unit::ALL
            .get(x.unit as usize)
            .copied()
            .unwrap_or(Unit::Compute);
        let done = match unit {
            Unit::Compute => got[1][i],
            _ => got[2][i],
        };
        for (what, rtl, sim) in [
            ("starts", got[0][i], x.start),
            ("ends", got[1][i], x.end),
            ("is done", done, x.done),
        ] {
            if rtl != Some(sim) {
                return Err(format!(
                    "instruction {i} ({} unit) {what} at cycle {sim} in the simulator but {} in the RTL",
                    unit.name(),
                    rtl.map_or("never".to_string(), |c| c.to_string())
                ));
            }
        }
    }
    Ok(())
}
