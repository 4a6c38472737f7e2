//! The emitted accelerator (see `etch_sim::cycle::rtl` for its timeline):
//!
//! - `etch_ram`: a 1-read 1-write synchronous RAM (block RAM on FPGAs); `etch_rom`: the same,
//!   initialized from a `$readmemh` image (weights, requantization parameters, thresholds, the
//!   schedule);
//! - `etch_actbuf`: an activation buffer of `NB` byte banks, one code a cycle for the datapath and
//!   one `NB`-byte row a cycle for the DMA;
//! - `etch_pe`: one processing element with the kinds the model needs (int MAC, power-of-two
//!   shift-add, XNOR), weight register in a vertical shift chain, activation passed right and
//!   partial sum passed down;
//! - `etch_array`: the R×C weight-stationary systolic array with input skew and output deskew;
//! - `etch_accel`: the controller stepping through the schedule ROM, the im2col gather into the
//!   row stage buffers, the accumulators, the requantization pipeline, the MaxPool unit and the
//!   DMA to the DRAM port.

use super::ast::*;
use super::layout::{addr_bits, field, Layout};

/// Width of a stored code (int8 and uint8 codes both fit a signed 9-bit value).
const CODE: u32 = 9;
/// Width of a decoded activation entering the array (`code − zero point`, or ±1/0).
const XW: u32 = 10;

fn ram_module(rom: bool) -> Module {
    let mut m = Module::new(if rom { "etch_rom" } else { "etch_ram" });
    m.doc(if rom {
        "Synchronous-read ROM initialized from a $readmemh image (block RAM init on FPGAs)."
    } else {
        "1-read 1-write synchronous RAM (inferable block RAM)."
    });
    m.param("W", n(8)).param("DEPTH", n(16)).param("AW", n(4));
    if rom {
        m.param("FILE", s("rom.hex"));
    }
    m.input("clk", 1);
    if !rom {
        m.input("we", 1).input("wa", "AW").input("wd", "W");
    }
    m.input("ra", "AW").output_reg("rd", "W");
    m.memory("mem", "W", "DEPTH");
    let mut body = Vec::new();
    if !rom {
        body.push(if_(id("we"), vec![nb(id("mem").at(id("wa")), id("wd"))]));
    }
    body.push(nb("rd", id("mem").at(id("ra"))));
    m.always_ff("clk", body);
    if rom {
        m.item(Item::Initial(vec![Stmt::Task(
            "$readmemh",
            vec![id("FILE"), id("mem")],
        )]));
    }
    m
}

fn pe_module(l: &Layout) -> Module {
    let mut m = Module::new("etch_pe");
    m.doc("One PE: weight register (shifted down during preload), activation passed right, partial sum passed down.");
    m.doc("Products: MAC x*w; SHIFT +-(x << e) for w = {neg, nonzero, 3'b0, e[2:0]}; XNOR +1/-1 by the sign bits of x and w, 0 where x is 0 (padding).");
    m.input("clk", 1)
        .input("mode", 2)
        .input("wsh", 1)
        .input("w_in", 8)
        .output_reg("w_out", 8)
        .input_signed("x_in", XW)
        .output_reg_signed("x_out", XW)
        .input_signed("p_in", 32)
        .output_reg_signed("p_out", 32);
    m.wire_signed("prod", 32);
    m.wire_signed("x32", 32);
    m.assign(
        "x32",
        concat(vec![
            repl(32 - XW, id("x_in").at(n(XW as i128 - 1))),
            id("x_in"),
        ]),
    );
    // each kind the model does not need is left out of the hardware
    let mac = if l.has_mac {
        signed(concat(vec![repl(24, id("w_out").at(n(7))), id("w_out")])).mul(id("x32"))
    } else {
        lit(32, 0)
    };
    let shift = if l.has_shift {
        cond(
            id("w_out").at(n(6)),
            cond(
                id("w_out").at(n(7)),
                neg(id("x32").shl(id("w_out").slice(2, 0))),
                id("x32").shl(id("w_out").slice(2, 0)),
            ),
            lit(32, 0),
        )
    } else {
        lit(32, 0)
    };
    let xnor = if l.has_xnor {
        cond(
            id("x_in").eq(lit(XW, 0)),
            lit(32, 0),
            cond(
                inv(id("x_in").at(n(XW as i128 - 1))).xnor(id("w_out").at(n(0))),
                lit(32, 1),
                neg(lit(32, 1)),
            ),
        )
    } else {
        lit(32, 0)
    };
    m.assign(
        "prod",
        cond(
            id("mode").eq(lit(2, 0)),
            mac,
            cond(id("mode").eq(lit(2, 1)), shift, xnor),
        ),
    );
    m.always_ff(
        "clk",
        vec![
            if_(id("wsh"), vec![nb("w_out", "w_in")]),
            nb("x_out", "x_in"),
            nb("p_out", id("p_in").add(id("prod"))),
        ],
    );
    m
}

fn array_module(l: &Layout) -> Module {
    let (r, c) = (l.rows, l.cols);
    let mut m = Module::new("etch_array");
    m.doc(&format!(
        "{r}x{c} weight-stationary systolic array: row i's activations enter i cycles late (skew), column j's sums leave {} - j cycles late (deskew), so y holds one pixel's {c} sums.",
        c - 1
    ));
    m.input("clk", 1)
        .input("mode", 2)
        .input("wsh", 1)
        .input("w_in", (c * 8) as u32)
        .input("x", (r * XW as usize) as u32)
        .output("y", (c * 32) as u32);
    m.waive(
        "UNUSEDSIGNAL",
        "the activations leaving the last column and the weights leaving the bottom row are the systolic array's edges: nothing reads them",
    );
    for i in 0..r {
        // skew: row i delayed by i registers
        let xin = format!("xs_{i}_0");
        m.wire_signed(&xin, XW);
        if i == 0 {
            m.assign(id(&xin), id("x").part(n(0), XW));
        } else {
            for d in 0..i {
                m.reg_signed(&format!("sk_{i}_{d}"), XW);
            }
            let mut body = vec![nb(
                format!("sk_{i}_0").as_str(),
                id("x").part(n((i * XW as usize) as i128), XW),
            )];
            for d in 1..i {
                body.push(nb(
                    format!("sk_{i}_{d}").as_str(),
                    id(format!("sk_{i}_{}", d - 1)),
                ));
            }
            m.always_ff("clk", body);
            m.assign(id(&xin), id(format!("sk_{i}_{}", i - 1)));
        }
    }
    for i in 0..r {
        for j in 0..c {
            m.wire(&format!("w_{i}_{j}"), 8);
            m.wire_signed(&format!("xs_{i}_{}", j + 1), XW);
            m.wire_signed(&format!("ps_{i}_{j}"), 32);
        }
    }
    for i in 0..r {
        for j in 0..c {
            let w_in = if i == 0 {
                id("w_in").part(n((j * 8) as i128), 8)
            } else {
                id(format!("w_{}_{j}", i - 1))
            };
            let p_in = if i == 0 {
                lit(32, 0)
            } else {
                id(format!("ps_{}_{j}", i - 1))
            };
            m.instance(
                "etch_pe",
                &format!("pe_{i}_{j}"),
                vec![],
                vec![
                    ("clk", id("clk")),
                    ("mode", id("mode")),
                    ("wsh", id("wsh")),
                    ("w_in", w_in),
                    ("w_out", id(format!("w_{i}_{j}"))),
                    ("x_in", id(format!("xs_{i}_{j}"))),
                    ("x_out", id(format!("xs_{i}_{}", j + 1))),
                    ("p_in", p_in),
                    ("p_out", id(format!("ps_{i}_{j}"))),
                ],
            );
        }
    }
    // deskew: column j delayed by c-1-j registers
    for j in 0..c {
        let bottom = id(format!("ps_{}_{j}", r - 1));
        let delay = c - 1 - j;
        if delay == 0 {
            m.assign(id("y").part(n((j * 32) as i128), 32), bottom);
        } else {
            for d in 0..delay {
                m.reg_signed(&format!("ds_{j}_{d}"), 32);
            }
            let mut body = vec![nb(format!("ds_{j}_0").as_str(), bottom)];
            for d in 1..delay {
                body.push(nb(
                    format!("ds_{j}_{d}").as_str(),
                    id(format!("ds_{j}_{}", d - 1)),
                ));
            }
            m.always_ff("clk", body);
            m.assign(
                id("y").part(n((j * 32) as i128), 32),
                id(format!("ds_{j}_{}", delay - 1)),
            );
        }
    }
    m
}

fn actbuf_module(l: &Layout) -> Module {
    let nbk = l.nb;
    let rows = l.act_depth / nbk;
    let (aw, rw) = (addr_bits(l.act_depth), addr_bits(rows));
    let mut m = Module::new("etch_actbuf");
    m.doc(&format!(
        "Activation buffer: {} codes in {nbk} byte-wide banks of {rows}; the datapath reads and writes one code a cycle, the DMA one {nbk}-byte row.",
        l.act_depth
    ));
    m.input("clk", 1)
        .input("rd_addr", aw)
        .output("rd_data", CODE)
        .input("wr_en", 1)
        .input("wr_addr", aw)
        .input("wr_data", CODE)
        .input("dma_wr", 1)
        .input("dma_rd", 1)
        .input("dma_row", rw)
        .input("dma_wdata", (nbk * 8) as u32)
        .output("dma_rdata", (nbk * 8) as u32);
    let row_of = |a: &str| -> Expr {
        if l.lnb == 0 {
            id(a)
        } else {
            id(a).slice(aw - 1, l.lnb)
        }
    };
    // a one-bank buffer (nb = 1) has one row per code: the address is the row
    if l.lnb > 0 && aw <= l.lnb {
        unreachable!("the buffer holds at least one row");
    }
    let in_signed = l.in_signed;
    // the bank of the code read last cycle picks the read data (one bank: nothing to pick)
    if l.lnb > 0 {
        m.reg("sel_q", l.lnb);
        m.always_ff("clk", vec![nb("sel_q", id("rd_addr").slice(l.lnb - 1, 0))]);
    }
    let mut rd_mux = id("b0_rd");
    for b in 0..nbk {
        let bank_hit = if l.lnb == 0 {
            lit(1, 1)
        } else {
            id("wr_addr").slice(l.lnb - 1, 0).eq(lit(l.lnb, b as i128))
        };
        let byte = id("dma_wdata").part(n((b * 8) as i128), 8);
        let ext = if in_signed {
            concat(vec![id("dma_wdata").at(n((b * 8 + 7) as i128)), byte])
        } else {
            concat(vec![lit(1, 0), byte])
        };
        m.wire(&format!("b{b}_rd"), CODE);
        m.instance(
            "etch_ram",
            &format!("bank{b}"),
            vec![
                ("W", n(CODE as i128)),
                ("DEPTH", n(rows as i128)),
                ("AW", n(rw as i128)),
            ],
            vec![
                ("clk", id("clk")),
                ("we", id("dma_wr").lor(id("wr_en").land(bank_hit))),
                ("wa", cond(id("dma_wr"), id("dma_row"), row_of("wr_addr"))),
                ("wd", cond(id("dma_wr"), ext, id("wr_data"))),
                ("ra", cond(id("dma_rd"), id("dma_row"), row_of("rd_addr"))),
                ("rd", id(format!("b{b}_rd"))),
            ],
        );
        m.assign(
            id("dma_rdata").part(n((b * 8) as i128), 8),
            id(format!("b{b}_rd")).slice(7, 0),
        );
        if b > 0 {
            rd_mux = cond(
                id("sel_q").eq(lit(l.lnb.max(1), b as i128)),
                id(format!("b{b}_rd")),
                rd_mux,
            );
        }
    }
    m.assign("rd_data", rd_mux);
    m
}

// FSM states
const S_IDLE: i128 = 0;
const S_LOAD: i128 = 1;
const S_FETCH: i128 = 2;
const S_DISPATCH: i128 = 3;
const S_GATHER: i128 = 4;
const S_PRELOAD: i128 = 5;
const S_STREAM: i128 = 6;
const S_REQUANT: i128 = 7;
const S_POOL: i128 = 8;
const S_NEXT: i128 = 9;
const S_STORE: i128 = 10;
const S_DONE: i128 = 11;

fn st(v: i128) -> Expr {
    lit(4, v)
}

fn f(name: &str) -> Expr {
    id(format!("f_{name}"))
}

/// A 16-bit unsigned field or counter as a 32-bit signed value.
fn u32s(e: Expr) -> Expr {
    signed(concat(vec![lit(16, 0), e]))
}

/// A 16-bit signed field as a 32-bit signed value.
fn s32(name: &str) -> Expr {
    signed(concat(vec![repl(16, f(name).at(n(15))), f(name)]))
}

fn top_module(l: &Layout, nsteps: usize, wdepth: usize, pdepth: usize, tdepth: usize) -> Module {
    let (r, c) = (l.rows as i128, l.cols as i128);
    let aw = addr_bits(l.act_depth);
    let rw = addr_bits(l.act_depth / l.nb);
    let taw = addr_bits(l.tmax);
    let (waw, paw, thaw, saw) = (
        addr_bits(wdepth),
        addr_bits(pdepth),
        addr_bits(tdepth),
        addr_bits(nsteps),
    );
    let nbits = (l.nb * 8) as u32;
    let mut m = Module::new("etch_accel");
    m.doc("The accelerator: a controller steps through the schedule ROM; each step is an array layer (gather, preload, stream per fold; requantize per column fold) or a MaxPool; the DMA loads the input codes and stores the output codes.");
    m.input("clk", 1)
        .input("rst", 1)
        .input("start", 1)
        .output_reg("done", 1)
        .output_reg("dram_req", 1)
        .output_reg("dram_we", 1)
        .output_reg("dram_len", 32)
        .input("dram_rvalid", 1)
        .input("dram_rbeat", 32)
        .input("dram_rdata", nbits)
        .input("dram_wready", 1)
        .output_reg("dram_wvalid", 1)
        .output("dram_wdata", nbits);
    m.waive(
        "UNUSEDSIGNAL",
        "schedule fields are 16 bits wide and a narrow one (a mode, a buffer select) uses its low bits only; addresses are computed in 32 bits and truncated to each memory's address width; the buffer the output is not stored from never uses its DMA read port",
    );
    for (name, v) in [
        ("IN_BEATS", l.in_bytes.div_ceil(l.nb) as i128),
        ("OUT_BEATS", l.out_bytes.div_ceil(l.nb) as i128),
    ] {
        m.localparam(name, n(v));
    }
    m.reg("state", 4)
        .reg("step", saw)
        .reg("cur", 512)
        .reg("cnt", 32);
    m.wire("sched_rd", 512);
    m.instance(
        "etch_rom",
        "sched",
        vec![
            ("W", n(512)),
            ("DEPTH", n(nsteps as i128)),
            ("AW", n(saw as i128)),
            ("FILE", s("sched.hex")),
        ],
        vec![
            ("clk", id("clk")),
            ("ra", id("step")),
            ("rd", id("sched_rd")),
        ],
    );
    for (k, name) in super::layout::FIELDS.iter().enumerate() {
        m.wire(&format!("f_{name}"), 16);
        m.assign(f(name), id("cur").part(n((16 * k) as i128), 16));
    }
    let _ = field("kind");
    // fold and phase counters
    for name in [
        "fc", "fr", "kb", "gr", "gt", "ac", "aki", "akj", "aoh", "aow", "rt", "rc", "beat",
    ] {
        m.reg(name, 16);
    }
    m.reg("wptr", waw);
    // ---- shared address unit (gather and pool) ----
    m.comment("address unit: input row/column of tap (ki, kj) of output pixel (oh, ow), and whether it is inside");
    m.wire_signed("a_ii", 32)
        .wire_signed("a_jj", 32)
        .wire_signed("a_lin", 32);
    m.wire("a_in", 1);
    m.assign(
        "a_ii",
        u32s(id("aoh"))
            .mul(u32s(f("sh")))
            .sub(s32("ph"))
            .add(u32s(id("aki")).mul(u32s(f("dh")))),
    );
    m.assign(
        "a_jj",
        u32s(id("aow"))
            .mul(u32s(f("sw")))
            .sub(s32("pw"))
            .add(u32s(id("akj")).mul(u32s(f("dw")))),
    );
    m.assign(
        "a_in",
        id("a_ii")
            .ge(n(0))
            .land(id("a_ii").lt(u32s(f("h"))))
            .land(id("a_jj").ge(n(0)))
            .land(id("a_jj").lt(u32s(f("w")))),
    );
    m.assign(
        "a_lin",
        u32s(id("ac"))
            .mul(u32s(f("hw")))
            .add(id("a_ii").mul(u32s(f("w"))))
            .add(id("a_jj")),
    );
    // gather: row gr of the fold is reduction index kb + gr
    m.wire("g_k", 17).wire("g_valid", 1);
    m.assign(
        "g_k",
        concat(vec![lit(1, 0), id("kb")]).add(concat(vec![lit(1, 0), id("gr")])),
    );
    m.assign(
        "g_valid",
        id("a_in").land(id("g_k").lt(concat(vec![lit(1, 0), f("k")]))),
    );
    // ---- activation buffers ----
    m.wire("act_raddr", aw)
        .wire("act_waddr", aw)
        .wire("act_wdata", CODE)
        .wire("act_we", 1)
        .wire("rd0", CODE)
        .wire("rd1", CODE)
        .wire("act_rdata", CODE)
        .wire("dma_rd0", nbits)
        .wire("dma_rd1", nbits);
    m.assign("act_raddr", id("a_lin").slice(aw - 1, 0));
    for b in 0..2 {
        let is_src = f("src").at(n(0)).eq(lit(1, b));
        let is_dst = f("dst").at(n(0)).eq(lit(1, b));
        let dma_wr = if b == 0 {
            id("state").eq(st(S_LOAD)).land(id("dram_rvalid"))
        } else {
            lit(1, 0)
        };
        let dma_rd = if b as usize == l.final_buf {
            id("state").eq(st(S_STORE))
        } else {
            lit(1, 0)
        };
        m.instance(
            "etch_actbuf",
            &format!("act{b}"),
            vec![],
            vec![
                ("clk", id("clk")),
                ("rd_addr", id("act_raddr")),
                ("rd_data", id(format!("rd{b}"))),
                ("wr_en", id("act_we").land(is_dst)),
                ("wr_addr", id("act_waddr")),
                ("wr_data", id("act_wdata")),
                ("dma_wr", dma_wr),
                ("dma_rd", dma_rd),
                (
                    "dma_row",
                    cond(
                        id("state").eq(st(S_LOAD)),
                        id("dram_rbeat").slice(rw - 1, 0),
                        id("beat").slice(rw - 1, 0),
                    ),
                ),
                ("dma_wdata", id("dram_rdata")),
                ("dma_rdata", id(format!("dma_rd{b}"))),
            ],
        );
        let _ = is_src;
    }
    m.assign("act_rdata", cond(f("src").at(n(0)), id("rd1"), id("rd0")));
    m.assign(
        "dram_wdata",
        id(if l.final_buf == 0 {
            "dma_rd0"
        } else {
            "dma_rd1"
        }),
    );
    // ---- thresholds, weights, params ----
    m.wire("thr_addr", 16);
    m.assign("thr_addr", f("tbase").add(id("ac")));
    m.wire("thr_rd", 10)
        .wire("w_rd", (l.cols * 8) as u32)
        .wire("p_rd", 72);
    m.instance(
        "etch_rom",
        "thr",
        vec![
            ("W", n(10)),
            ("DEPTH", n(tdepth as i128)),
            ("AW", n(thaw as i128)),
            ("FILE", s("thresholds.hex")),
        ],
        vec![
            ("clk", id("clk")),
            ("ra", id("thr_addr").slice(thaw - 1, 0)),
            ("rd", id("thr_rd")),
        ],
    );
    m.instance(
        "etch_rom",
        "wrom",
        vec![
            ("W", n((l.cols * 8) as i128)),
            ("DEPTH", n(wdepth as i128)),
            ("AW", n(waw as i128)),
            ("FILE", s("weights.hex")),
        ],
        vec![("clk", id("clk")), ("ra", id("wptr")), ("rd", id("w_rd"))],
    );
    m.wire("p_addr", 32);
    m.assign(
        "p_addr",
        concat(vec![lit(16, 0), f("pbase")])
            .add(concat(vec![lit(16, 0), id("fc")]).mul(n(c)))
            .add(concat(vec![lit(16, 0), id("rc")])),
    );
    m.instance(
        "etch_rom",
        "prom",
        vec![
            ("W", n(72)),
            ("DEPTH", n(pdepth as i128)),
            ("AW", n(paw as i128)),
            ("FILE", s("params.hex")),
        ],
        vec![
            ("clk", id("clk")),
            ("ra", id("p_addr").slice(paw - 1, 0)),
            ("rd", id("p_rd")),
        ],
    );
    // ---- gather pipeline: decode the code read last cycle into the row's stage buffer ----
    m.reg("g_v", 1)
        .reg("g_in", 1)
        .reg("g_row", 16)
        .reg("g_t", 16);
    m.wire_signed("g_x", XW);
    m.wire_signed("g_code", XW);
    m.assign(
        "g_code",
        concat(vec![
            id("act_rdata").at(n(CODE as i128 - 1)),
            id("act_rdata"),
        ]),
    );
    m.assign(
        "g_x",
        cond(
            not(id("g_in")),
            lit(XW, 0),
            cond(
                f("bin_in").at(n(0)),
                cond(
                    signed(id("g_code")).ge(signed(id("thr_rd"))),
                    lit(XW, 1),
                    neg(lit(XW, 1)),
                ),
                id("g_code").sub(f("zp_in").slice(XW - 1, 0)),
            ),
        ),
    );
    let mut xcat = Vec::new();
    for i in 0..l.rows {
        let name = format!("stage_rd_{i}");
        m.wire(&name, XW);
        m.instance(
            "etch_ram",
            &format!("stage{i}"),
            vec![
                ("W", n(XW as i128)),
                ("DEPTH", n(l.tmax as i128)),
                ("AW", n(taw as i128)),
            ],
            vec![
                ("clk", id("clk")),
                ("we", id("g_v").land(id("g_row").eq(lit(16, i as i128)))),
                ("wa", id("g_t").slice(taw - 1, 0)),
                ("wd", id("g_x")),
                ("ra", id("cnt").slice(taw - 1, 0)),
                ("rd", id(&name)),
            ],
        );
        xcat.push(id(&name));
    }
    xcat.reverse();
    // ---- array and accumulators ----
    m.wire("arr_y", (l.cols * 32) as u32)
        .wire("acc_rd", (l.cols * 32) as u32)
        .wire("acc_wd", (l.cols * 32) as u32);
    m.wire("acc_we", 1).wire("acc_ra", 32).wire("acc_wa", 32);
    m.instance(
        "etch_array",
        "array",
        vec![],
        vec![
            ("clk", id("clk")),
            ("mode", f("mode").slice(1, 0)),
            (
                "wsh",
                id("state").eq(st(S_PRELOAD)).land(id("cnt").ne(n(0))),
            ),
            ("w_in", id("w_rd")),
            ("x", concat(xcat)),
            ("y", id("arr_y")),
        ],
    );
    m.assign(
        "acc_ra",
        cond(
            id("state").eq(st(S_STREAM)),
            id("cnt").sub(n(r + c - 1)),
            concat(vec![lit(16, 0), id("rt")]),
        ),
    );
    m.assign("acc_wa", id("cnt").sub(n(r + c)));
    m.assign(
        "acc_we",
        id("state")
            .eq(st(S_STREAM))
            .land(id("cnt").ge(n(r + c)))
            .land(id("acc_wa").lt(concat(vec![lit(16, 0), f("p")]))),
    );
    for j in 0..l.cols {
        let lane = |e: &str| id(e).part(n((j * 32) as i128), 32);
        m.assign(
            lane("acc_wd"),
            cond(id("fr").eq(lit(16, 0)), lit(32, 0), lane("acc_rd")).add(lane("arr_y")),
        );
    }
    m.instance(
        "etch_ram",
        "acc",
        vec![
            ("W", n((l.cols * 32) as i128)),
            ("DEPTH", n(l.tmax as i128)),
            ("AW", n(taw as i128)),
        ],
        vec![
            ("clk", id("clk")),
            ("we", id("acc_we")),
            ("wa", id("acc_wa").slice(taw - 1, 0)),
            ("wd", id("acc_wd")),
            ("ra", id("acc_ra").slice(taw - 1, 0)),
            ("rd", id("acc_rd")),
        ],
    );
    // ---- requantization pipeline ----
    m.comment("requantization: acc + bias; x multiplier (64-bit); round half to even and shift; + zero point; clamp");
    m.reg("q0_v", 1).reg("q0_c", 16).reg("q0_a", 32);
    m.reg("q1_v", 1)
        .reg_signed("q1_s", 32)
        .reg_signed("q1_m", 32)
        .reg("q1_sh", 6)
        .reg("q1_a", 32);
    m.reg("q2_v", 1)
        .reg_signed("q2_p", 64)
        .reg("q2_sh", 6)
        .reg("q2_a", 32);
    m.reg("q3_v", 1)
        .reg("q3_neg", 1)
        .reg("q3_mag", 64)
        .reg("q3_a", 32);
    m.wire_signed("q_lane", 32)
        .wire("q_abs", 64)
        .wire_signed("q_r", 64)
        .wire_signed("q_v", 64)
        .wire("q_code", CODE);
    let lane_base = if l.cols == 1 {
        lit(5, 0)
    } else {
        concat(vec![id("q0_c").slice(addr_bits(l.cols) - 1, 0), lit(5, 0)])
    };
    m.assign("q_lane", id("acc_rd").part(lane_base, 32));
    m.assign(
        "q_abs",
        cond(
            id("q2_p").lt(n(0)),
            unsigned(neg(id("q2_p"))),
            unsigned(id("q2_p")),
        ),
    );
    // half an LSB added, shifted; a tie (the dropped bits exactly half) goes to the even neighbour
    m.wire("q_round", 64).wire("q_tie", 1);
    m.assign(
        "q_round",
        id("q_abs")
            .add(lit(64, 1).shl(id("q2_sh").sub(lit(6, 1))))
            .shr(id("q2_sh")),
    );
    m.assign(
        "q_tie",
        id("q_abs")
            .and(lit(64, 1).shl(id("q2_sh")).sub(lit(64, 1)))
            .eq(lit(64, 1).shl(id("q2_sh").sub(lit(6, 1)))),
    );
    m.assign(
        "q_r",
        cond(
            id("q3_neg"),
            neg(signed(id("q3_mag"))),
            signed(id("q3_mag")),
        ),
    );
    m.assign(
        "q_v",
        id("q_r").add(signed(concat(vec![
            repl(48, f("zp_out").at(n(15))),
            f("zp_out"),
        ]))),
    );
    m.wire_signed("q_min", 64).wire_signed("q_max", 64);
    m.assign(
        "q_min",
        signed(concat(vec![repl(48, f("qmin").at(n(15))), f("qmin")])),
    );
    m.assign(
        "q_max",
        signed(concat(vec![repl(48, f("qmax").at(n(15))), f("qmax")])),
    );
    m.assign(
        "q_code",
        cond(
            id("q_v").lt(id("q_min")),
            id("q_min").slice(CODE - 1, 0),
            cond(
                id("q_v").gt(id("q_max")),
                id("q_max").slice(CODE - 1, 0),
                id("q_v").slice(CODE - 1, 0),
            ),
        ),
    );
    // ---- pool pipeline ----
    m.reg("m_v", 1)
        .reg("m_in", 1)
        .reg("m_first", 1)
        .reg("m_last", 1)
        .reg("m_a", 32);
    m.reg_signed("m_best", CODE);
    m.wire_signed("m_new", CODE);
    m.assign(
        "m_new",
        cond(
            id("m_first"),
            cond(id("m_in"), id("act_rdata"), lit(CODE, 256)),
            cond(
                id("m_in").land(signed(id("act_rdata")).gt(id("m_best"))),
                id("act_rdata"),
                id("m_best"),
            ),
        ),
    );
    // datapath writes into the destination buffer: requantized codes, or pooled maxima
    m.assign(
        "act_we",
        id("state").eq(st(S_REQUANT)).land(id("q3_v")).lor(
            id("state")
                .eq(st(S_POOL))
                .land(id("m_v"))
                .land(id("m_last")),
        ),
    );
    m.wire("act_wlin", 32);
    m.assign(
        "act_wlin",
        cond(id("state").eq(st(S_POOL)), id("m_a"), id("q3_a")),
    );
    m.assign("act_waddr", id("act_wlin").slice(aw - 1, 0));
    m.assign(
        "act_wdata",
        cond(id("state").eq(st(S_POOL)), id("m_new"), id("q_code")),
    );
    // ---- counters' limits ----
    m.wire("cols_now", 16)
        .wire("rq_n", 32)
        .wire("g_n", 32)
        .wire("pool_n", 32);
    m.assign(
        "cols_now",
        cond(
            id("fc").add(lit(16, 1)).eq(f("fc")),
            f("lastcols"),
            lit(16, c),
        ),
    );
    m.assign(
        "rq_n",
        concat(vec![lit(16, 0), id("cols_now")]).mul(concat(vec![lit(16, 0), f("p")])),
    );
    m.assign("g_n", n(r).mul(concat(vec![lit(16, 0), f("p")])));
    m.assign(
        "pool_n",
        concat(vec![lit(16, 0), f("cin")])
            .mul(concat(vec![lit(16, 0), f("p")]))
            .mul(concat(vec![lit(16, 0), f("kh")]))
            .mul(concat(vec![lit(16, 0), f("kw")])),
    );
    let zero16 = lit(16, 0);
    let inc = |name: &str| nb(name, id(name).add(lit(16, 1)));
    // (ac, aki, akj) advance to the next reduction index of a convolution
    let next_k = vec![if_else(
        id("akj").add(lit(16, 1)).eq(f("kw")),
        vec![
            nb("akj", zero16.clone()),
            if_else(
                id("aki").add(lit(16, 1)).eq(f("kh")),
                vec![nb("aki", zero16.clone()), inc("ac")],
                vec![inc("aki")],
            ),
        ],
        vec![inc("akj")],
    )];
    let reset_k = vec![
        nb("ac", zero16.clone()),
        nb("aki", zero16.clone()),
        nb("akj", zero16.clone()),
        nb("kb", zero16.clone()),
    ];
    let reset_px = vec![nb("aoh", zero16.clone()), nb("aow", zero16.clone())];
    let next_px = vec![if_else(
        id("aow").add(lit(16, 1)).eq(f("ow")),
        vec![nb("aow", zero16.clone()), inc("aoh")],
        vec![inc("aow")],
    )];
    // ---- the controller ----
    let mut idle = vec![if_(
        id("start"),
        vec![
            nb("state", st(S_LOAD)),
            nb("dram_req", lit(1, 1)),
            nb("dram_we", lit(1, 0)),
            nb("dram_len", n(l.in_bytes as i128)),
        ],
    )];
    idle.insert(0, nb("done", lit(1, 0)));
    let load = vec![if_(
        id("dram_rvalid").land(id("dram_rbeat").eq(id("IN_BEATS").sub(n(1)))),
        vec![nb("state", st(S_FETCH)), nb("step", lit(saw, 0))],
    )];
    let fetch = vec![nb("state", st(S_DISPATCH))];
    m.wire("rd_kind", 16).wire("rd_wbase", 16);
    m.assign(
        "rd_kind",
        id("sched_rd").part(n((16 * field("kind")) as i128), 16),
    );
    m.assign(
        "rd_wbase",
        id("sched_rd").part(n((16 * field("wbase")) as i128), 16),
    );
    let kind_of_rd = id("rd_kind");
    let wbase_of_rd = id("rd_wbase");
    let mut dispatch = vec![nb("cur", "sched_rd"), nb("cnt", lit(32, 0))];
    dispatch.extend(reset_k.clone());
    dispatch.extend(reset_px.clone());
    dispatch.extend([
        nb("fc", zero16.clone()),
        nb("fr", zero16.clone()),
        nb("gr", zero16.clone()),
        nb("gt", zero16.clone()),
        nb("rt", zero16.clone()),
        nb("rc", zero16.clone()),
        nb("wptr", wbase_of_rd.slice(waw - 1, 0)),
        if_else(
            kind_of_rd.eq(lit(16, 1)),
            vec![nb("state", st(S_POOL))],
            vec![nb("state", st(S_GATHER))],
        ),
    ]);
    // gather: issue (gr, gt) while cnt < R*P; the write lands a cycle later
    let gather = vec![
        nb("g_v", id("cnt").lt(id("g_n"))),
        nb("g_in", id("g_valid")),
        nb("g_row", "gr"),
        nb("g_t", "gt"),
        if_(
            id("cnt").lt(id("g_n")),
            vec![if_else(
                id("gt").add(lit(16, 1)).eq(f("p")),
                {
                    let mut v = vec![nb("gt", zero16.clone()), inc("gr")];
                    v.extend(reset_px.clone());
                    v.extend(next_k.clone());
                    v
                },
                {
                    let mut v = vec![inc("gt")];
                    v.extend(next_px.clone());
                    v
                },
            )],
        ),
        if_else(
            id("cnt").eq(id("g_n")),
            vec![nb("cnt", lit(32, 0)), nb("state", st(S_PRELOAD))],
            vec![nb("cnt", id("cnt").add(n(1)))],
        ),
    ];
    let preload = vec![
        if_(
            id("cnt").lt(n(r)),
            vec![nb("wptr", id("wptr").add(lit(waw, 1)))],
        ),
        if_else(
            id("cnt").eq(n(r)),
            vec![nb("cnt", lit(32, 0)), nb("state", st(S_STREAM))],
            vec![nb("cnt", id("cnt").add(n(1)))],
        ),
    ];
    let stream_end = concat(vec![lit(16, 0), f("p")]).add(n(r + c - 1));
    let stream = vec![if_else(
        id("cnt").eq(stream_end),
        vec![
            nb("cnt", lit(32, 0)),
            nb("gr", zero16.clone()),
            nb("gt", zero16.clone()),
            if_else(
                id("fr").add(lit(16, 1)).eq(f("fr")),
                vec![
                    nb("state", st(S_REQUANT)),
                    nb("rt", zero16.clone()),
                    nb("rc", zero16.clone()),
                ],
                vec![
                    inc("fr"),
                    nb("kb", id("kb").add(lit(16, r))),
                    nb("state", st(S_GATHER)),
                ],
            ),
        ],
        vec![nb("cnt", id("cnt").add(n(1)))],
    )];
    let requant = vec![
        nb("q0_v", id("cnt").lt(id("rq_n"))),
        nb("q0_c", "rc"),
        nb(
            "q0_a",
            concat(vec![lit(16, 0), id("fc")])
                .mul(n(c))
                .add(concat(vec![lit(16, 0), id("rc")]))
                .mul(concat(vec![lit(16, 0), f("p")]))
                .add(concat(vec![lit(16, 0), id("rt")])),
        ),
        if_(
            id("cnt").lt(id("rq_n")),
            vec![if_else(
                id("rc").add(lit(16, 1)).eq(id("cols_now")),
                vec![nb("rc", zero16.clone()), inc("rt")],
                vec![inc("rc")],
            )],
        ),
        if_else(
            id("cnt").eq(id("rq_n").add(n(3))),
            vec![
                nb("cnt", lit(32, 0)),
                if_else(
                    id("fc").add(lit(16, 1)).eq(f("fc")),
                    vec![nb("state", st(S_NEXT))],
                    {
                        let mut v = vec![
                            inc("fc"),
                            nb("fr", zero16.clone()),
                            nb("state", st(S_GATHER)),
                        ];
                        v.extend(reset_k.clone());
                        v.extend(reset_px.clone());
                        v
                    },
                ),
            ],
            vec![nb("cnt", id("cnt").add(n(1)))],
        ),
    ];
    // pool: taps (c, oh, ow, ki, kj), kj innermost; the max of a window is written with its last tap
    let pool = vec![
        nb("m_v", id("cnt").lt(id("pool_n"))),
        nb("m_in", "a_in"),
        nb(
            "m_first",
            id("aki").eq(lit(16, 0)).land(id("akj").eq(lit(16, 0))),
        ),
        nb(
            "m_last",
            id("aki")
                .add(lit(16, 1))
                .eq(f("kh"))
                .land(id("akj").add(lit(16, 1)).eq(f("kw"))),
        ),
        nb(
            "m_a",
            u32s(id("ac"))
                .mul(u32s(f("p")))
                .add(u32s(id("aoh")).mul(u32s(f("ow"))))
                .add(u32s(id("aow"))),
        ),
        if_(
            id("cnt").lt(id("pool_n")),
            vec![if_else(
                id("akj").add(lit(16, 1)).eq(f("kw")),
                vec![
                    nb("akj", zero16.clone()),
                    if_else(
                        id("aki").add(lit(16, 1)).eq(f("kh")),
                        vec![
                            nb("aki", zero16.clone()),
                            if_else(
                                id("aow").add(lit(16, 1)).eq(f("ow")),
                                vec![
                                    nb("aow", zero16.clone()),
                                    if_else(
                                        id("aoh").add(lit(16, 1)).eq(f("oh")),
                                        vec![nb("aoh", zero16.clone()), inc("ac")],
                                        vec![inc("aoh")],
                                    ),
                                ],
                                vec![inc("aow")],
                            ),
                        ],
                        vec![inc("aki")],
                    ),
                ],
                vec![inc("akj")],
            )],
        ),
        if_else(
            id("cnt").eq(id("pool_n")),
            vec![nb("cnt", lit(32, 0)), nb("state", st(S_NEXT))],
            vec![nb("cnt", id("cnt").add(n(1)))],
        ),
    ];
    let next = vec![if_else(
        id("step").eq(lit(saw, nsteps as i128 - 1)),
        vec![
            nb("state", st(S_STORE)),
            nb("dram_req", lit(1, 1)),
            nb("dram_we", lit(1, 1)),
            nb("dram_len", n(l.out_bytes as i128)),
            nb("beat", zero16.clone()),
        ],
        vec![
            nb("step", id("step").add(lit(saw, 1))),
            nb("state", st(S_FETCH)),
        ],
    )];
    // store: a granted beat reads its row now and is sent the next cycle
    let store = vec![
        nb("dram_wvalid", "dram_wready"),
        if_(id("dram_wready"), vec![inc("beat")]),
        if_(
            id("dram_wvalid").land(id("beat").eq(id("OUT_BEATS"))),
            vec![nb("state", st(S_DONE))],
        ),
    ];
    let done = vec![nb("done", lit(1, 1)), nb("state", st(S_IDLE))];
    let fsm = Stmt::Case(
        id("state"),
        vec![
            (vec![st(S_IDLE)], idle),
            (vec![st(S_LOAD)], load),
            (vec![st(S_FETCH)], fetch),
            (vec![st(S_DISPATCH)], dispatch),
            (vec![st(S_GATHER)], gather),
            (vec![st(S_PRELOAD)], preload),
            (vec![st(S_STREAM)], stream),
            (vec![st(S_REQUANT)], requant),
            (vec![st(S_POOL)], pool),
            (vec![st(S_NEXT)], next),
            (vec![st(S_STORE)], store),
            (vec![st(S_DONE)], done),
        ],
        vec![nb("state", st(S_IDLE))],
    );
    let pipes = vec![
        // requantization stages 1..3 run every cycle
        nb("q1_v", "q0_v"),
        nb("q1_s", id("q_lane").add(signed(id("p_rd").slice(31, 0)))),
        nb("q1_m", signed(id("p_rd").slice(63, 32))),
        nb("q1_sh", id("p_rd").slice(69, 64)),
        nb("q1_a", "q0_a"),
        nb("q2_v", "q1_v"),
        nb(
            "q2_p",
            signed(concat(vec![repl(32, id("q1_s").at(n(31))), id("q1_s")])).mul(signed(concat(
                vec![repl(32, id("q1_m").at(n(31))), id("q1_m")],
            ))),
        ),
        nb("q2_sh", "q1_sh"),
        nb("q2_a", "q1_a"),
        nb("q3_v", "q2_v"),
        nb("q3_neg", id("q2_p").lt(n(0))),
        nb(
            "q3_mag",
            cond(
                id("q_tie"),
                id("q_round").and(inv(lit(64, 1))),
                id("q_round"),
            ),
        ),
        nb("q3_a", "q2_a"),
        if_(
            id("state").eq(st(S_POOL)).land(id("m_v")),
            vec![nb("m_best", "m_new")],
        ),
    ];
    let mut body = vec![nb("dram_req", lit(1, 0)), nb("dram_wvalid", lit(1, 0))];
    body.push(fsm);
    body.extend(pipes);
    m.always_ff(
        "clk",
        vec![if_else(
            id("rst"),
            vec![
                nb("state", st(S_IDLE)),
                nb("done", lit(1, 0)),
                nb("dram_req", lit(1, 0)),
                nb("dram_wvalid", lit(1, 0)),
                nb("step", lit(saw, 0)),
                nb("g_v", lit(1, 0)),
                nb("q0_v", lit(1, 0)),
                nb("q1_v", lit(1, 0)),
                nb("q2_v", lit(1, 0)),
                nb("q3_v", lit(1, 0)),
                nb("m_v", lit(1, 0)),
            ],
            body,
        )],
    );
    m
}

/// The design's modules, in dependency order.
pub fn modules(l: &Layout) -> Vec<Module> {
    let nsteps = l.sched.len();
    vec![
        ram_module(false),
        ram_module(true),
        actbuf_module(l),
        pe_module(l),
        array_module(l),
        top_module(
            l,
            nsteps,
            l.weights.len().max(1),
            l.params.len().max(1),
            l.thresholds.len(),
        ),
    ]
}
