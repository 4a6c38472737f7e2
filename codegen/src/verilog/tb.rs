//! The self-checking testbench: a DRAM model with the description's bandwidth and latency (the
//! rule of `etch_sim::cycle::rtl::dram_cycles`), the input codes of every golden sample loaded in
//! turn, the cycle count of each inference, and every output code compared with the golden one.
//! Every output code it reads back from DRAM is written to [`OUTPUTS`] (two hex digits a line,
//! `xx` for X) before it is compared: `etch verify` takes its verdict from comparing that file
//! with `golden.hex` itself, not from what the testbench prints. It fails loudly (`$fatal`, a
//! non-zero exit in Icarus and Verilator) on a missing memory image, an X, a wrong bit,
//! inferences of different lengths, or a hang; the lines it prints start with `ETCH` (the cycle
//! counts `etch verify` reads, and messages for the log).

use super::ast::*;
use super::layout::Layout;

/// Memory images the design and the testbench read (relative to the simulator's working folder).
pub const IMAGES: [&str; 6] = [
    "sched.hex",
    "weights.hex",
    "params.hex",
    "thresholds.hex",
    "inputs.hex",
    "golden.hex",
];

/// The output codes the testbench read back, one per line, in sample order.
pub const OUTPUTS: &str = "rtl_outputs.hex";

/// The testbench module `etch_tb` for `samples` golden samples; an inference longer than
/// `max_cycles` is a hang.
pub fn testbench(l: &Layout, samples: usize, max_cycles: u64) -> Module {
    let nbk = l.nb as i128;
    let nbits = (l.nb * 8) as u32;
    let (inb, outb) = (l.in_bytes as i128, l.out_bytes as i128);
    let mut m = Module::new("etch_tb");
    m.doc("Testbench: DRAM model, inputs in, outputs compared with golden.hex.");
    for (k, v) in [
        ("NS", samples as i128),
        ("IN", inb),
        ("OUT", outb),
        ("NB", nbk),
        ("LAT", l.latency as i128),
        ("MILLI", l.milli_bpc as i128),
        ("MAXC", max_cycles as i128),
    ] {
        m.localparam(k, n(v));
    }
    m.reg("clk", 1).reg("rst", 1).reg("start", 1);
    m.wire("done", 1)
        .wire("dram_req", 1)
        .wire("dram_we", 1)
        .wire("dram_len", 32);
    m.reg("dram_rvalid", 1)
        .reg("dram_rbeat", 32)
        .reg("dram_rdata", nbits)
        .reg("dram_wready", 1);
    m.wire("dram_wvalid", 1).wire("dram_wdata", nbits);
    m.instance(
        "etch_accel",
        "dut",
        vec![],
        [
            "clk",
            "rst",
            "start",
            "done",
            "dram_req",
            "dram_we",
            "dram_len",
            "dram_rvalid",
            "dram_rbeat",
            "dram_rdata",
            "dram_wready",
            "dram_wvalid",
            "dram_wdata",
        ]
        .iter()
        .map(|p| (*p, id(*p)))
        .collect(),
    );
    m.memory(
        "inputs",
        8u32,
        Width::Bits((samples as u32 * inb as u32).max(1)),
    );
    m.memory(
        "golden",
        8u32,
        Width::Bits((samples as u32 * outb as u32).max(1)),
    );
    let pad = |b: i128| ((b + nbk - 1) / nbk * nbk) as u32;
    m.memory("dram_in", 8u32, Width::Bits(pad(inb)));
    m.memory("dram_out", 8u32, Width::Bits(pad(outb)));
    for r in ["busy", "we_q"] {
        m.reg(r, 1);
    }
    for r in [
        "len_q",
        "wait_q",
        "credit",
        "beat_q",
        "pend_beat",
        "need",
        "cycles",
        "first",
        "fd",
        "ofd",
        "smp",
        "i",
        "b",
    ] {
        m.item(Item::Integer(r.into()));
    }
    m.comment("clock: period 10 time units");
    m.item(Item::Initial(vec![bl("clk", lit(1, 0))]));
    m.item(Item::Always(
        Sens::Free,
        vec![Stmt::Delay(5), bl("clk", not(id("clk")))],
    ));
    // the DRAM model
    let byte_of_beat = |e: &str| -> Vec<Stmt> {
        (0..l.nb)
            .map(|k| {
                nb(
                    id("dram_rdata").part(n((k * 8) as i128), 8),
                    id("dram_in").at(id(e).mul(n(nbk)).add(n(k as i128))),
                )
            })
            .collect()
    };
    // the accelerator sends the granted beats in order, one cycle after each grant
    let mut write_beat = vec![nb("pend_beat", id("pend_beat").add(n(1)))];
    for k in 0..l.nb {
        write_beat.push(if_(
            id("pend_beat")
                .mul(n(nbk))
                .add(n(k as i128))
                .lt(id("len_q")),
            vec![nb(
                id("dram_out").at(id("pend_beat").mul(n(nbk)).add(n(k as i128))),
                id("dram_wdata").part(n((k * 8) as i128), 8),
            )],
        ));
    }
    let mut grant_read = vec![nb("dram_rvalid", lit(1, 1)), nb("dram_rbeat", "beat_q")];
    grant_read.extend(byte_of_beat("beat_q"));
    m.always_ff(
        "clk",
        vec![
            nb("dram_rvalid", lit(1, 0)),
            nb("dram_wready", lit(1, 0)),
            if_(id("dram_wvalid"), write_beat),
            if_else(
                id("dram_req"),
                vec![
                    nb("busy", lit(1, 1)),
                    nb("we_q", "dram_we"),
                    nb("len_q", "dram_len"),
                    nb("wait_q", "LAT"),
                    nb("credit", n(0)),
                    nb("beat_q", n(0)),
                    nb("pend_beat", n(0)),
                ],
                vec![if_(
                    id("busy"),
                    vec![if_else(
                        id("wait_q").ne(n(0)),
                        vec![nb("wait_q", id("wait_q").sub(n(1)))],
                        vec![
                            nb("credit", id("credit").add(id("MILLI"))),
                            bl(
                                "need",
                                cond(
                                    id("beat_q").add(n(1)).mul(n(nbk)).lt(id("len_q")),
                                    id("beat_q").add(n(1)).mul(n(nbk)),
                                    id("len_q"),
                                ),
                            ),
                            if_(
                                id("credit")
                                    .add(id("MILLI"))
                                    .mul(n(1))
                                    .ge(id("need").mul(n(1000))),
                                vec![
                                    if_else(
                                        id("we_q"),
                                        vec![nb("dram_wready", lit(1, 1))],
                                        grant_read,
                                    ),
                                    nb("beat_q", id("beat_q").add(n(1))),
                                    if_(
                                        id("beat_q").add(n(1)).mul(n(nbk)).ge(id("len_q")),
                                        vec![nb("busy", lit(1, 0))],
                                    ),
                                ],
                            ),
                        ],
                    )],
                )],
            ),
        ],
    );
    // the run
    let mut body = Vec::new();
    for f in super::tb::IMAGES {
        body.push(bl("fd", Expr::Call("$fopen", vec![s(f), s("r")])));
        body.push(if_(
            id("fd").eq(n(0)),
            vec![
                Stmt::Task(
                    "$display",
                    vec![s(format!("ETCH ERROR missing memory image {f}"))],
                ),
                Stmt::Task("$fflush", vec![]),
                Stmt::Task("$fatal", vec![n(1), s(format!("missing memory image {f}"))]),
            ],
        ));
        body.push(Stmt::Task("$fclose", vec![id("fd")]));
    }
    body.push(bl("ofd", Expr::Call("$fopen", vec![s(OUTPUTS), s("w")])));
    body.push(Stmt::Task("$readmemh", vec![s("inputs.hex"), id("inputs")]));
    body.push(Stmt::Task("$readmemh", vec![s("golden.hex"), id("golden")]));
    body.extend([
        bl("rst", lit(1, 1)),
        bl("start", lit(1, 0)),
        bl("busy", lit(1, 0)),
        bl("first", n(-1)),
    ]);
    for _ in 0..3 {
        body.push(Stmt::WaitPosedge("clk".into()));
    }
    body.push(Stmt::Delay(1));
    body.push(bl("rst", lit(1, 0)));
    let mut per = Vec::new();
    per.push(Stmt::For(
        "i".into(),
        n(0),
        id("IN"),
        vec![bl(
            id("dram_in").at(id("i")),
            id("inputs").at(id("smp").mul(id("IN")).add(id("i"))),
        )],
    ));
    per.extend([
        Stmt::WaitPosedge("clk".into()),
        Stmt::Delay(1),
        bl("start", lit(1, 1)),
        Stmt::WaitPosedge("clk".into()),
        Stmt::Delay(1),
        bl("start", lit(1, 0)),
        bl("cycles", n(1)),
        Stmt::Comment(
            "count the cycles from the edge that took start to the edge that raised done".into(),
        ),
    ]);
    // while loop as a bounded for with an early exit: for (i = 0; i < MAXC; i = i + 1) if (!done) ...
    per.push(Stmt::For(
        "i".into(),
        n(0),
        id("MAXC"),
        vec![if_(
            id("done").case_ne(lit(1, 1)),
            vec![
                Stmt::WaitPosedge("clk".into()),
                Stmt::Delay(1),
                bl("cycles", id("cycles").add(n(1))),
            ],
        )],
    ));
    per.push(if_(
        id("done").case_ne(lit(1, 1)),
        vec![
            Stmt::Task(
                "$display",
                vec![s("ETCH ERROR no done after %0d cycles"), id("MAXC")],
            ),
            Stmt::Task("$fflush", vec![]),
            Stmt::Task("$fatal", vec![n(1), s("timeout")]),
        ],
    ));
    per.push(Stmt::Task(
        "$display",
        vec![
            s("ETCH CYCLES sample=%0d cycles=%0d"),
            id("smp"),
            id("cycles"),
        ],
    ));
    per.push(if_(
        id("first").ge(n(0)).land(id("first").ne(id("cycles"))),
        vec![
            Stmt::Task(
                "$display",
                vec![
                    s("ETCH ERROR sample %0d took %0d cycles, sample 0 took %0d"),
                    id("smp"),
                    id("cycles"),
                    id("first"),
                ],
            ),
            Stmt::Task("$fflush", vec![]),
            Stmt::Task("$fatal", vec![n(1), s("cycle counts differ")]),
        ],
    ));
    per.push(bl("first", "cycles"));
    per.push(Stmt::For(
        "i".into(),
        n(0),
        id("OUT"),
        vec![Stmt::Task(
            "$fdisplay",
            vec![id("ofd"), s("%h"), id("dram_out").at(id("i"))],
        )],
    ));
    per.push(Stmt::Task("$fflush", vec![id("ofd")]));
    let golden_at = id("golden").at(id("smp").mul(id("OUT")).add(id("i")));
    per.push(Stmt::For(
        "i".into(),
        n(0),
        id("OUT"),
        vec![
            if_(
                red_xor(id("dram_out").at(id("i"))).case_eq(id("1'bx")),
                vec![
                    Stmt::Task(
                        "$display",
                        vec![
                            s("ETCH MISMATCH sample=%0d index=%0d got=x expected=%0d"),
                            id("smp"),
                            id("i"),
                            golden_at.clone(),
                        ],
                    ),
                    Stmt::Task("$fflush", vec![]),
                    Stmt::Task("$fatal", vec![n(1), s("output is X")]),
                ],
            ),
            if_(
                id("dram_out").at(id("i")).ne(golden_at.clone()),
                vec![
                    Stmt::Task(
                        "$display",
                        vec![
                            s("ETCH MISMATCH sample=%0d index=%0d got=%0d expected=%0d"),
                            id("smp"),
                            id("i"),
                            id("dram_out").at(id("i")),
                            golden_at.clone(),
                        ],
                    ),
                    Stmt::Task("$fflush", vec![]),
                    Stmt::Task("$fatal", vec![n(1), s("output differs from golden")]),
                ],
            ),
        ],
    ));
    body.push(Stmt::For("smp".into(), n(0), id("NS"), per));
    body.push(Stmt::Task(
        "$display",
        vec![s("ETCH PASS samples=%0d cycles=%0d"), id("NS"), id("first")],
    ));
    body.push(Stmt::Task("$fclose", vec![id("ofd")]));
    body.push(Stmt::Task("$fflush", vec![]));
    body.push(Stmt::Task("$finish", vec![]));
    m.items.push(Item::Initial(body));
    m
}
