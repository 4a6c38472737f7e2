//! The datapath's DRAM side as an AXI4 master, and the testbench's AXI4 memory model.
//!
//! A transfer's rows become INCR bursts of the whole beats they touch (`Channel::bus_bytes`),
//! at most 256 beats and never across a 4 KiB boundary. The master issues a burst a cycle while
//! its unit holds the channel, keeps each burst's destination (a slot's bytes) in a queue, and
//! writes the useful bytes of each read beat as it arrives; a store sends its write beats back
//! to back, with strobes for the bytes of its rows. A transfer is complete when its last read
//! beat is written or its last write response arrives; the core gives its tokens when the
//! channel's rule says it is done, and the testbench fails when a transfer is not complete by
//! then.
//!
//! The memory model serves beats at the description's bandwidth (thousandths of a byte of credit
//! a cycle while a beat waits, one beat per `1000·W` of credit, none saved while idle) and
//! answers each `latency − MASTER_CYCLES` cycles after serving it: the master's request and
//! response registers take the other cycles of the channel's latency.

use etch_program::isa::Buffer;

use super::ast::*;
use super::datapath::Plan;

/// Cycles of the channel's latency spent in the master's registers (the request a cycle after
/// the grant, the response a cycle after it arrives); the memory model answers in the rest.
pub const MASTER_CYCLES: u64 = 2;
/// The widest AXI4 data bus, in bytes.
pub const MAX_BEAT_BYTES: u64 = 128;
/// The longest DRAM latency the master's burst queue and the memory model's response ring are
/// built for (each holds a latency's worth of entries).
pub const MAX_LATENCY: u64 = 1 << 16;
/// Bits of an AXI address.
const ADDR_BITS: u32 = 32;

/// The AXI4 signals of the master, as (name, bits, driven by the master).
pub fn ports(beat: u64) -> Vec<(&'static str, u32, bool)> {
    let w = beat as u32;
    vec![
        ("araddr", ADDR_BITS, true),
        ("arlen", 8, true),
        ("arsize", 3, true),
        ("arburst", 2, true),
        ("arvalid", 1, true),
        ("arready", 1, false),
        ("rdata", 8 * w, false),
        ("rresp", 2, false),
        ("rlast", 1, false),
        ("rvalid", 1, false),
        ("rready", 1, true),
        ("awaddr", ADDR_BITS, true),
        ("awlen", 8, true),
        ("awsize", 3, true),
        ("awburst", 2, true),
        ("awvalid", 1, true),
        ("awready", 1, false),
        ("wdata", 8 * w, true),
        ("wstrb", w, true),
        ("wlast", 1, true),
        ("wvalid", 1, true),
        ("wready", 1, false),
        ("bresp", 2, false),
        ("bvalid", 1, false),
        ("bready", 1, true),
    ]
}

/// The name of an AXI signal on a module's port list.
pub fn port(name: &str) -> String {
    format!("m_axi_{name}")
}

/// Bursts a master may have issued and not yet finished: enough to cover the latency.
fn queue_depth(plan: &Plan) -> u64 {
    (plan.bus.latency + 8).next_power_of_two().max(16)
}

/// Declares the master's ports on the datapath module.
pub fn declare_ports(m: &mut Module, plan: &Plan) {
    for (name, bits, out) in ports(plan.bus.beat_bytes) {
        let p = port(name);
        match (out, name) {
            (true, "arsize" | "awsize" | "arburst" | "awburst" | "rready" | "bready") => {
                m.output(&p, bits);
            }
            (true, _) => {
                m.output_reg(&p, bits);
            }
            (false, _) => {
                m.input(&p, bits);
            }
        }
    }
    let size = plan.bus.beat_bytes.trailing_zeros() as i128;
    m.assign(port("arsize").as_str(), lit(3, size));
    m.assign(port("awsize").as_str(), lit(3, size));
    m.assign(port("arburst").as_str(), lit(2, 1));
    m.assign(port("awburst").as_str(), lit(2, 1));
    m.assign(port("rready").as_str(), lit(1, 1));
    m.assign(port("bready").as_str(), lit(1, 1));
}

/// The signals of the master's inputs it does not read (responses are always OKAY from the
/// memory model; the queue knows where each burst ends), for the datapath's unused-signal sink.
pub fn unread_inputs() -> Vec<Expr> {
    ["rresp", "rlast", "bresp"]
        .iter()
        .map(|s| id(port(s)))
        .collect()
}

/// The registers of engine `x`'s AXI side: its burst generator (`{x}_g*`), its burst queue
/// (`{x}_q*`), the count of its complete transfers (`{x}_complete`) and whether it was given a
/// transfer before it had issued the last one's bursts (`{x}_overrun`), which the testbench reads.
pub fn declare(m: &mut Module, x: &str, plan: &Plan) {
    let v = |s: &str| format!("{x}_{s}");
    for i in [
        "ga", "ge", "grow", "grows", "gstride", "grb", "gaddr", "gslot", "gbase", "gb0", "glen",
        "gn", "gk", "gb", "qhead", "qtail", "qcount", "qhead2", "qinc", "cinc",
    ] {
        m.item(Item::Integer(v(i)));
    }
    m.reg(&v("gactive"), 1)
        .reg(&v("gwt"), 1)
        .reg(&v("overrun"), 1);
    m.reg(&v("complete"), 32);
    let q = queue_depth(plan) as u32;
    for (name, bits) in [
        ("q_slot", 32),
        ("q_lo", 32),
        ("q_n", 32),
        ("q_len", 32),
        ("q_wt", 1),
        ("q_end", 1),
    ] {
        m.memory(&v(name), bits, q);
    }
    if x == "s" {
        m.reg(&v("wtmp"), 8 * plan.bus.beat_bytes as u32)
            // a bit more than the strobes: a one-bit register could not be indexed
            .reg(&v("stmp"), plan.bus.beat_bytes as u32 + 1);
        m.item(Item::Integer(v("wbeat")));
    }
}

/// The statements that start engine `x`'s burst generator on a transfer, from the engine's
/// `{x}_addr`, `{x}_stride`, `{x}_rows`, `{x}_rb`, `{x}_base` and `{x}_buffer` (set before).
pub fn start(x: &str) -> Vec<Stmt> {
    let v = |s: &str| format!("{x}_{s}");
    let contiguous = id(v("rows")).eq(n(1)).lor(id(v("stride")).eq(id(v("rb"))));
    vec![
        // a flag the testbench fails on (no system task in the design)
        if_(id(v("gactive")), vec![nb(id(v("overrun")), lit(1, 1))]),
        if_else(
            contiguous,
            vec![
                bl(&v("grows"), n(1)),
                bl(&v("grb"), id(v("rows")).mul(id(v("rb")))),
            ],
            vec![bl(&v("grows"), id(v("rows"))), bl(&v("grb"), id(v("rb")))],
        ),
        bl(&v("gaddr"), id(v("addr"))),
        bl(&v("gstride"), id(v("stride"))),
        bl(&v("grow"), n(0)),
        bl(&v("ga"), id(v("addr"))),
        bl(&v("ge"), id(v("addr")).add(id(v("grb")))),
        bl(&v("gbase"), id(v("base"))),
        bl(&v("gslot"), id(v("base"))),
        bl(
            id(v("gwt")),
            id(v("buffer")).eq(lit(2, Buffer::Weight as i128)),
        ),
        // a transfer of no bytes is complete at once
        bl(id(v("gactive")), id(v("grb")).gt(n(0))),
        if_(
            id(v("grb")).eq(n(0)),
            vec![bl(&v("cinc"), id(v("cinc")).add(n(1)))],
        ),
    ]
}

/// The statements that count a transfer engine `x` is given but does not move (its layer is not
/// one the datapath runs: it only keeps the program's timing) as complete. The first of a
/// cycle's statements: it starts the cycle's count.
pub fn count_skipped(x: &str, skipped: Expr) -> Vec<Stmt> {
    let v = |s: &str| format!("{x}_{s}");
    vec![
        bl(&v("cinc"), n(0)),
        if_(skipped, vec![bl(&v("cinc"), n(1))]),
    ]
}

/// The statements engine `x` runs every cycle on its AXI side: the next burst's request (AR for
/// loads, AW for stores) when the last one was taken, and the read beat or the write beat and
/// response of the cycle.
pub fn step(x: &str, plan: &Plan) -> Vec<Stmt> {
    let v = |s: &str| format!("{x}_{s}");
    let w = plan.bus.beat_bytes as i128;
    let lw = plan.bus.beat_bytes.trailing_zeros() as i128;
    let q = queue_depth(plan) as i128;
    let (valid, ready, addr, len) = if x == "l" {
        ("arvalid", "arready", "araddr", "arlen")
    } else {
        ("awvalid", "awready", "awaddr", "awlen")
    };
    let at = |mem: &str, p: &str| id(v(mem)).at(id(v(p)));
    let mut body = vec![bl(&v("qinc"), n(0))];
    // the request side
    let issue = vec![
        bl(&v("gb0"), id(v("ga")).sub(id(v("ga")).and(n(w - 1)))),
        // beats to the row's end, capped at 256 and at the 4 KiB boundary
        bl(
            &v("glen"),
            id(v("ge")).sub(n(1)).sub(id(v("gb0"))).shr(n(lw)).add(n(1)),
        ),
        if_(id(v("glen")).gt(n(256)), vec![bl(&v("glen"), n(256))]),
        bl(&v("gk"), n(4096).sub(id(v("gb0")).and(n(4095))).shr(n(lw))),
        if_(
            id(v("glen")).gt(id(v("gk"))),
            vec![bl(&v("glen"), id(v("gk")))],
        ),
        bl(&v("gn"), id(v("gb0")).add(id(v("glen")).mul(n(w)))),
        if_(id(v("gn")).gt(id(v("ge"))), vec![bl(&v("gn"), id(v("ge")))]),
        bl(&v("gn"), id(v("gn")).sub(id(v("ga")))),
        nb(id(port(addr)), id(v("gb0"))),
        nb(id(port(len)), id(v("glen")).sub(n(1))),
        nb(id(port(valid)), lit(1, 1)),
        bl(at("q_slot", "qtail"), id(v("gslot"))),
        bl(at("q_lo", "qtail"), id(v("ga")).sub(id(v("gb0")))),
        bl(at("q_n", "qtail"), id(v("gn"))),
        bl(at("q_len", "qtail"), id(v("glen"))),
        bl(at("q_wt", "qtail"), id(v("gwt"))),
        bl(
            at("q_end", "qtail"),
            id(v("ga"))
                .add(id(v("gn")))
                .eq(id(v("ge")))
                .land(id(v("grow")).eq(id(v("grows")).sub(n(1)))),
        ),
        bl(&v("qtail"), id(v("qtail")).add(n(1)).rem(n(q))),
        bl(&v("qinc"), n(1)),
        bl(&v("ga"), id(v("ga")).add(id(v("gn")))),
        bl(&v("gslot"), id(v("gslot")).add(id(v("gn")))),
        if_(
            id(v("ga")).eq(id(v("ge"))),
            vec![
                bl(&v("grow"), id(v("grow")).add(n(1))),
                if_else(
                    id(v("grow")).eq(id(v("grows"))),
                    vec![bl(id(v("gactive")), lit(1, 0))],
                    vec![
                        bl(
                            &v("ga"),
                            id(v("gaddr")).add(id(v("grow")).mul(id(v("gstride")))),
                        ),
                        bl(&v("ge"), id(v("ga")).add(id(v("grb")))),
                        bl(
                            &v("gslot"),
                            id(v("gbase")).add(id(v("grow")).mul(id(v("grb")))),
                        ),
                    ],
                ),
            ],
        ),
    ];
    body.push(if_else(
        not(id(port(valid)))
            .lor(id(port(ready)))
            .land(id(v("gactive")))
            // one entry stays free: a full queue would look empty to the write side
            .land(id(v("qcount")).lt(n(q - 1))),
        issue,
        vec![if_(id(port(ready)), vec![nb(id(port(valid)), lit(1, 0))])],
    ));
    // the response side: bytes of the beat at the head burst, `gk` of them so far
    let head = |mem: &str| id(v(mem)).at(id(v("qhead")));
    if x == "l" {
        let byte = id(port("rdata")).part(id(v("gb")).mul(n(8)), 8);
        let put = |buf: &str| bl(id(buf).at(head("q_slot").add(id(v("gk")))), byte.clone());
        body.push(if_(
            id(port("rvalid")),
            vec![
                bl(&v("gk"), n(0)),
                Stmt::For(
                    v("gb"),
                    n(0),
                    n(w),
                    vec![if_(
                        id(v("gb"))
                            .ge(head("q_lo"))
                            .land(id(v("gk")).lt(head("q_n"))),
                        vec![
                            if_else(head("q_wt"), vec![put("wbuf")], vec![put("ibuf")]),
                            bl(&v("gk"), id(v("gk")).add(n(1))),
                        ],
                    )],
                ),
                bl(head("q_slot"), head("q_slot").add(id(v("gk")))),
                bl(head("q_n"), head("q_n").sub(id(v("gk")))),
                bl(head("q_lo"), n(0)),
                if_(
                    head("q_n").eq(n(0)),
                    vec![
                        if_(head("q_end"), vec![bl(&v("cinc"), id(v("cinc")).add(n(1)))]),
                        bl(&v("qhead"), id(v("qhead")).add(n(1)).rem(n(q))),
                        bl(&v("qinc"), id(v("qinc")).sub(n(1))),
                    ],
                ),
            ],
        ));
    } else {
        // the write beat: the next one of the burst at `qhead2` (bursts whose request was
        // issued), sent back to back
        let h2 = |mem: &str| id(v(mem)).at(id(v("qhead2")));
        let byte = id("obuf").at(h2("q_slot").add(id(v("gk"))));
        body.push(if_else(
            not(id(port("wvalid")))
                .lor(id(port("wready")))
                .land(id(v("qhead2")).ne(id(v("qtail")))),
            vec![
                bl(&v("gk"), n(0)),
                bl(id(v("wtmp")), lit(8 * w as u32, 0)),
                bl(id(v("stmp")), lit(w as u32 + 1, 0)),
                Stmt::For(
                    v("gb"),
                    n(0),
                    n(w),
                    vec![if_(
                        id(v("gb")).ge(h2("q_lo")).land(id(v("gk")).lt(h2("q_n"))),
                        vec![
                            bl(id(v("wtmp")).part(id(v("gb")).mul(n(8)), 8), byte),
                            bl(id(v("stmp")).at(id(v("gb"))), lit(1, 1)),
                            bl(&v("gk"), id(v("gk")).add(n(1))),
                        ],
                    )],
                ),
                nb(id(port("wdata")), id(v("wtmp"))),
                nb(id(port("wstrb")), id(v("stmp")).slice(w as u32 - 1, 0)),
                nb(id(port("wvalid")), lit(1, 1)),
                bl(h2("q_slot"), h2("q_slot").add(id(v("gk")))),
                bl(h2("q_n"), h2("q_n").sub(id(v("gk")))),
                bl(h2("q_lo"), n(0)),
                bl(&v("wbeat"), id(v("wbeat")).add(n(1))),
                if_else(
                    id(v("wbeat")).eq(h2("q_len")),
                    vec![
                        nb(id(port("wlast")), lit(1, 1)),
                        bl(&v("wbeat"), n(0)),
                        bl(&v("qhead2"), id(v("qhead2")).add(n(1)).rem(n(q))),
                    ],
                    vec![nb(id(port("wlast")), lit(1, 0))],
                ),
            ],
            vec![if_(
                id(port("wready")),
                vec![nb(id(port("wvalid")), lit(1, 0))],
            )],
        ));
        body.push(if_(
            id(port("bvalid")),
            vec![
                if_(head("q_end"), vec![bl(&v("cinc"), id(v("cinc")).add(n(1)))]),
                bl(&v("qhead"), id(v("qhead")).add(n(1)).rem(n(q))),
                bl(&v("qinc"), id(v("qinc")).sub(n(1))),
            ],
        ));
    }
    body.push(bl(&v("qcount"), id(v("qcount")).add(id(v("qinc")))));
    body.push(nb(id(v("complete")), id(v("complete")).add(id(v("cinc")))));
    body
}

/// The statements that reset engine `x`'s AXI side.
pub fn reset(x: &str) -> Vec<Stmt> {
    let v = |s: &str| format!("{x}_{s}");
    let mut r = vec![
        bl(id(v("gactive")), lit(1, 0)),
        nb(id(v("overrun")), lit(1, 0)),
        nb(id(v("complete")), lit(32, 0)),
        bl(&v("qhead"), n(0)),
        bl(&v("qhead2"), n(0)),
        bl(&v("qtail"), n(0)),
        bl(&v("qcount"), n(0)),
    ];
    if x == "l" {
        r.push(nb(id(port("arvalid")), lit(1, 0)));
    } else {
        r.extend([
            nb(id(port("awvalid")), lit(1, 0)),
            nb(id(port("wvalid")), lit(1, 0)),
            bl(&v("wbeat"), n(0)),
        ]);
    }
    r
}

/// The module `etch_axi_memory`: DRAM behind an AXI4 slave port, loaded from the DRAM image,
/// serving beats at the description's bandwidth and answering `latency − MASTER_CYCLES` cycles
/// after serving; it fails the run on an access outside DRAM, a malformed burst, or a response
/// the master does not take.
pub fn memory_model(plan: &Plan, image: &str) -> Module {
    let w = plan.bus.beat_bytes as i128;
    let bpc = plan.bus.milli_bytes_per_cycle as i128;
    let lm = (plan.bus.latency - MASTER_CYCLES) as i128;
    let ring = (lm as u64 + 2).next_power_of_two() as i128;
    let qa = 2 * queue_depth(plan) as i128;
    let mut m = Module::new("etch_axi_memory");
    m.doc(&format!(
        "DRAM behind an AXI4 slave: {} bytes, beats of {w} bytes, {bpc} thousandths of a byte a cycle, answers {lm} cycles after serving.",
        plan.dram.max(1).next_multiple_of(plan.bus.beat_bytes)
    ));
    m.input("clk", 1).input("rst", 1);
    for (name, bits, from_master) in ports(plan.bus.beat_bytes) {
        let p = port(name);
        if from_master {
            m.input(&p, bits);
        } else if matches!(name, "rresp" | "bresp") {
            m.output(&p, bits);
        } else {
            // registered: the master reads this cycle's values at the edge
            m.output_reg(&p, bits);
        }
    }
    // whole beats: a row's last beat may reach past the image's last byte
    let size = plan.dram.max(1).next_multiple_of(plan.bus.beat_bytes);
    m.memory("dram", 8, size as u32);
    m.item(Item::Initial(vec![Stmt::Task(
        "$readmemh",
        vec![s(image), id("dram")],
    )]));
    for (mem, bits) in [
        ("arq_addr", 32),
        ("arq_len", 32),
        ("awq_addr", 32),
        ("awq_len", 32),
    ] {
        m.memory(mem, bits, qa as u32);
    }
    m.memory("ring_rv", 1, ring as u32)
        .memory("ring_rl", 1, ring as u32)
        .memory("ring_rd", 8 * w as u32, ring as u32)
        .memory("ring_b", 1, ring as u32);
    for i in [
        "ar_head", "ar_tail", "ar_count", "aw_head", "aw_tail", "aw_count", "r_beat", "w_beat",
        "ptr", "slot", "b", "a",
    ] {
        m.item(Item::Integer(i.into()));
    }
    m.reg("credit_r", 64)
        .reg("credit_w", 64)
        .reg("rtmp", 8 * w as u32);
    let one_beat = lit(64, 1000 * w);
    // the next cycle's outputs, from the state after the edge
    let outputs = vec![
        nb(id(port("arready")), id("ar_count").lt(n(qa))),
        nb(id(port("awready")), id("aw_count").lt(n(qa))),
        nb(
            id(port("wready")),
            id("aw_count")
                .gt(n(0))
                .land(id("credit_w").add(lit(64, bpc)).ge(one_beat.clone())),
        ),
        nb(id(port("rvalid")), id("ring_rv").at(id("ptr"))),
        nb(id(port("rlast")), id("ring_rl").at(id("ptr"))),
        nb(id(port("rdata")), id("ring_rd").at(id("ptr"))),
        nb(id(port("bvalid")), id("ring_b").at(id("ptr"))),
    ];
    m.assign(port("rresp").as_str(), lit(2, 0));
    m.assign(port("bresp").as_str(), lit(2, 0));
    let fail = |what: &str| {
        vec![
            Stmt::Task(
                "$display",
                vec![s(format!("ETCH ERROR AXI memory: {what}"))],
            ),
            Stmt::Task("$fatal", vec![n(1), s("AXI memory")]),
        ]
    };
    let bytes = n(size as i128);
    let mut reset = vec![
        bl("ar_head", n(0)),
        bl("ar_tail", n(0)),
        bl("ar_count", n(0)),
        bl("aw_head", n(0)),
        bl("aw_tail", n(0)),
        bl("aw_count", n(0)),
        bl("r_beat", n(0)),
        bl("w_beat", n(0)),
        bl("ptr", n(0)),
        bl(id("credit_r"), lit(64, 0)),
        bl(id("credit_w"), lit(64, 0)),
    ];
    reset.push(Stmt::For(
        "slot".into(),
        n(0),
        n(ring),
        vec![
            bl(id("ring_rv").at(id("slot")), lit(1, 0)),
            bl(id("ring_b").at(id("slot")), lit(1, 0)),
        ],
    ));
    // the address of beat `beat` of the burst at the head of queue `q` (its head index `head`)
    let head_addr = |q: &str, head: &str, beat: &str| {
        id(format!("{q}_addr"))
            .at(id(head))
            .add(id(beat).mul(n(w)))
            .add(id("b"))
    };
    let serve_read = vec![
        bl(id("credit_r"), id("credit_r").add(lit(64, bpc))),
        if_(
            id("credit_r").ge(one_beat.clone()),
            vec![
                bl(id("credit_r"), id("credit_r").sub(one_beat.clone())),
                bl("slot", id("ptr").add(n(lm)).rem(n(ring))),
                Stmt::For(
                    "b".into(),
                    n(0),
                    n(w),
                    vec![
                        bl("a", head_addr("arq", "ar_head", "r_beat")),
                        if_else(
                            id("a").lt(bytes.clone()),
                            vec![bl(
                                id("rtmp").part(id("b").mul(n(8)), 8),
                                id("dram").at(id("a")),
                            )],
                            fail("a read past the end of DRAM"),
                        ),
                    ],
                ),
                bl(id("ring_rd").at(id("slot")), id("rtmp")),
                bl(id("ring_rv").at(id("slot")), lit(1, 1)),
                bl(
                    id("ring_rl").at(id("slot")),
                    id("r_beat").eq(id("arq_len").at(id("ar_head"))),
                ),
                bl("r_beat", id("r_beat").add(n(1))),
                if_(
                    id("r_beat").gt(id("arq_len").at(id("ar_head"))),
                    vec![
                        bl("r_beat", n(0)),
                        bl("ar_head", id("ar_head").add(n(1)).rem(n(qa))),
                        bl("ar_count", id("ar_count").sub(n(1))),
                    ],
                ),
            ],
        ),
    ];
    let take_write = vec![if_else(
        id(port("wready")),
        vec![
            Stmt::For(
                "b".into(),
                n(0),
                n(w),
                vec![if_(
                    id(port("wstrb")).shr(id("b")).and(n(1)).ne(n(0)),
                    vec![
                        bl("a", head_addr("awq", "aw_head", "w_beat")),
                        if_else(
                            id("a").lt(bytes),
                            vec![bl(
                                id("dram").at(id("a")),
                                id(port("wdata")).part(id("b").mul(n(8)), 8),
                            )],
                            fail("a write past the end of DRAM"),
                        ),
                    ],
                )],
            ),
            bl(
                id("credit_w"),
                id("credit_w").add(lit(64, bpc)).sub(one_beat),
            ),
            if_(
                id(port("wlast")).ne(id("w_beat").eq(id("awq_len").at(id("aw_head")))),
                fail("WLAST on the wrong beat of a burst"),
            ),
            if_else(
                id(port("wlast")),
                vec![
                    bl(
                        id("ring_b").at(id("ptr").add(n(lm)).rem(n(ring))),
                        lit(1, 1),
                    ),
                    bl("w_beat", n(0)),
                    bl("aw_head", id("aw_head").add(n(1)).rem(n(qa))),
                    bl("aw_count", id("aw_count").sub(n(1))),
                ],
                vec![bl("w_beat", id("w_beat").add(n(1)))],
            ),
        ],
        vec![bl(id("credit_w"), id("credit_w").add(lit(64, bpc)))],
    )];
    let push = |q: &str, valid: &str| {
        let (addr, len) = if q == "ar" {
            ("araddr", "arlen")
        } else {
            ("awaddr", "awlen")
        };
        if_(
            id(port(valid)).land(id(port(&format!("{q}ready")))),
            vec![
                // AXI4's rules for an INCR burst: aligned to the bus here, within one 4 KiB page
                if_(
                    id(port(addr)).and(n(w - 1)).ne(n(0)),
                    fail(&format!("a burst address not aligned to the {w}-byte bus")),
                ),
                if_(
                    id(port(addr))
                        .and(n(4095))
                        .add(id(port(len)).add(n(1)).mul(n(w)))
                        .gt(n(4096)),
                    fail("a burst across a 4 KiB boundary"),
                ),
                bl(
                    id(format!("{q}q_addr")).at(id(format!("{q}_tail"))),
                    id(port(addr)),
                ),
                bl(
                    id(format!("{q}q_len")).at(id(format!("{q}_tail"))),
                    id(port(len)),
                ),
                bl(
                    &format!("{q}_tail"),
                    id(format!("{q}_tail")).add(n(1)).rem(n(qa)),
                ),
                bl(&format!("{q}_count"), id(format!("{q}_count")).add(n(1))),
            ],
        )
    };
    let mut run = vec![
        if_(
            id("ring_rv").at(id("ptr")).land(not(id(port("rready")))),
            fail("the master did not take a read beat"),
        ),
        if_(
            id("ring_b").at(id("ptr")).land(not(id(port("bready")))),
            fail("the master did not take a write response"),
        ),
        bl(id("ring_rv").at(id("ptr")), lit(1, 0)),
        bl(id("ring_b").at(id("ptr")), lit(1, 0)),
        if_else(
            id("ar_count").gt(n(0)),
            serve_read,
            vec![bl(id("credit_r"), lit(64, 0))],
        ),
        if_else(
            id(port("wvalid")),
            take_write,
            vec![bl(id("credit_w"), lit(64, 0))],
        ),
    ];
    run.push(push("ar", "arvalid"));
    run.push(push("aw", "awvalid"));
    run.push(bl("ptr", id("ptr").add(n(1)).rem(n(ring))));
    run.extend(outputs.clone());
    reset.extend(outputs);
    m.waive(
        "BLKSEQ",
        "the memory model is a testbench model: its queues and rings are written with blocking assignments",
    );
    m.always_ff("clk", vec![if_else(id("rst"), reset, run)]);
    m.unwaive("BLKSEQ");
    m
}

/// The AXI4-Lite control port of the core (`s_axil_…`), as (name, bits, driven by the host).
/// Registers: `0x00` control and status (write bit 0: start a run, which first resets the
/// units; read bit 0 running, bit 1 done), `0x08` and `0x0C` the run's cycles (low and high
/// words; set when it is done).
pub const CONTROL_PORTS: [(&str, u32, bool); 17] = [
    ("awaddr", 8, true),
    ("awvalid", 1, true),
    ("awready", 1, false),
    ("wdata", 32, true),
    ("wstrb", 4, true),
    ("wvalid", 1, true),
    ("wready", 1, false),
    ("bresp", 2, false),
    ("bvalid", 1, false),
    ("bready", 1, true),
    ("araddr", 8, true),
    ("arvalid", 1, true),
    ("arready", 1, false),
    ("rdata", 32, false),
    ("rresp", 2, false),
    ("rvalid", 1, false),
    ("rready", 1, true),
];

/// The name of a control signal on a module's port list.
pub fn control_port(name: &str) -> String {
    format!("s_axil_{name}")
}

/// The control register: a host writes 1 to start a run and reads running and done.
pub const CONTROL_ADDR: u64 = 0x00;
/// The low word of the run's cycle count.
pub const CYCLES_LOW_ADDR: u64 = 0x08;
/// The high word of the run's cycle count.
pub const CYCLES_HIGH_ADDR: u64 = 0x0C;

/// The core's AXI4-Lite control slave: it holds the units in reset (`rst`, a wire the module
/// declares before its units, from the port `rst_in`) until the host starts a run, resets them for one cycle at each start,
/// and counts the run's finished instructions (`finished`, this cycle's count) to `instructions`,
/// when it is done and its cycle count (`now + 1`, of `cycle_bits`) is latched.
pub fn control(m: &mut Module, instructions: u64, finished: Expr, cycle_bits: u32) {
    let p = control_port;
    for (name, bits, from_host) in CONTROL_PORTS {
        if from_host {
            m.input(&p(name), bits);
        } else if matches!(name, "bvalid" | "rvalid" | "rdata") {
            m.output_reg(&p(name), bits);
        } else {
            m.output(&p(name), bits);
        }
    }
    m.reg("ctl_run", 1)
        .reg("ctl_kick", 1)
        .reg("ctl_done", 1)
        .reg("ctl_finished", 32)
        .reg("ctl_cycles", cycle_bits)
        .wire("ctl_write", 1)
        .wire("ctl_read", 1);
    m.assign(
        "rst",
        id("rst_in").lor(not(id("ctl_run"))).lor(id("ctl_kick")),
    );
    m.assign(
        "ctl_write",
        id(p("awvalid"))
            .land(id(p("wvalid")))
            .land(not(id(p("bvalid")))),
    );
    m.assign("ctl_read", id(p("arvalid")).land(not(id(p("rvalid")))));
    m.assign(p("awready").as_str(), id("ctl_write"));
    m.assign(p("wready").as_str(), id("ctl_write"));
    m.assign(p("arready").as_str(), id("ctl_read"));
    m.assign(p("bresp").as_str(), lit(2, 0));
    m.assign(p("rresp").as_str(), lit(2, 0));
    m.waive(
        "UNUSEDSIGNAL",
        "the control registers are word-aligned and start reads only bit 0 of its byte",
    );
    m.wire("ctl_unused", 1);
    m.assign(
        "ctl_unused",
        Expr::Un(
            "&",
            Box::new(concat(vec![
                lit(1, 0),
                id(p("awaddr")).slice(1, 0),
                id(p("araddr")).slice(1, 0),
                id(p("wdata")).slice(31, 1),
                id(p("wstrb")).slice(3, 1),
            ])),
        ),
    );
    m.unwaive("UNUSEDSIGNAL");
    let word = |addr: &str| id(p(addr)).slice(7, 2);
    let at = |a: u64| lit(6, (a >> 2) as i128);
    let start = word("awaddr")
        .eq(at(CONTROL_ADDR))
        .land(id(p("wstrb")).at(n(0)))
        .land(id(p("wdata")).at(n(0)));
    let high = cycle_bits - 32;
    let value = cond(
        word("araddr").eq(at(CONTROL_ADDR)),
        concat(vec![lit(30, 0), id("ctl_done"), id("ctl_run")]),
        cond(
            word("araddr").eq(at(CYCLES_LOW_ADDR)),
            id("ctl_cycles").slice(31, 0),
            cond(
                word("araddr").eq(at(CYCLES_HIGH_ADDR)),
                concat(vec![
                    lit(32 - high, 0),
                    id("ctl_cycles").slice(cycle_bits - 1, 32),
                ]),
                lit(32, 0),
            ),
        ),
    );
    m.always_ff(
        "clk",
        vec![if_else(
            id("rst_in"),
            vec![
                nb("ctl_run", lit(1, 0)),
                nb("ctl_kick", lit(1, 0)),
                nb(p("bvalid").as_str(), lit(1, 0)),
                nb(p("rvalid").as_str(), lit(1, 0)),
            ],
            vec![
                nb("ctl_kick", lit(1, 0)),
                if_else(
                    id("ctl_write"),
                    vec![
                        nb(p("bvalid").as_str(), lit(1, 1)),
                        if_(
                            start,
                            vec![nb("ctl_kick", lit(1, 1)), nb("ctl_run", lit(1, 1))],
                        ),
                    ],
                    vec![if_(
                        id(p("bready")),
                        vec![nb(p("bvalid").as_str(), lit(1, 0))],
                    )],
                ),
                if_else(
                    id("ctl_read"),
                    vec![
                        nb(p("rvalid").as_str(), lit(1, 1)),
                        nb(p("rdata").as_str(), value),
                    ],
                    vec![if_(
                        id(p("rready")),
                        vec![nb(p("rvalid").as_str(), lit(1, 0))],
                    )],
                ),
            ],
        )],
    );
    let total = id("ctl_finished").add(finished);
    m.always_ff(
        "clk",
        vec![if_else(
            id("rst"),
            vec![
                nb("ctl_finished", lit(32, 0)),
                nb("ctl_done", lit(1, 0)),
                nb("ctl_cycles", lit(cycle_bits, 0)),
            ],
            vec![
                nb("ctl_finished", total.clone()),
                if_(
                    not(id("ctl_done")).land(total.eq(lit(32, instructions as i128))),
                    vec![
                        nb("ctl_done", lit(1, 1)),
                        nb("ctl_cycles", id("now").add(lit(cycle_bits, 1))),
                    ],
                ),
            ],
        )],
    );
}
