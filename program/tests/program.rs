//! The accelerator program on real models: every shipped CNN lowers, tiles and runs on every
//! shipped description without deadlock; more hardware never costs cycles or DRAM traffic; and
//! on an Eyeriss-sized description AlexNet's convolutions move about as much DRAM data, and take
//! about as long, as the Eyeriss chip measured.

use etch_hw::Accelerator;
use etch_program::isa::{Kind, Space};
use etch_program::tiling::Objective;
use etch_program::{simulate, Program, Run};
use etch_sim::pipeline::{Pipeline, Prepared};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// A shipped model, read and verified through the pipeline every front end uses.
fn model(name: &str) -> Prepared {
    let path = format!("{ROOT}/examples/models/{name}.onnx.txt");
    Pipeline::default()
        .load(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn hw(name: &str) -> Accelerator {
    Accelerator::from_file(&format!("{ROOT}/examples/hw/{name}.ron")).unwrap()
}

fn run(m: &Prepared, acc: &Accelerator, batch: u64) -> (Program, Run) {
    let p = m.lower(acc, batch, Objective::Latency).unwrap();
    let r = simulate(&p, acc).unwrap();
    (p, r)
}

fn dram_bytes(p: &Program) -> u64 {
    p.insns
        .iter()
        .map(|i| match &i.kind {
            Kind::Load(d) | Kind::Store(d) => d.dram_bytes(),
            _ => 0,
        })
        .sum()
}

/// Per token: pushes and pops over the whole program.
fn token_counts(p: &Program) -> [(u64, u64); 7] {
    let mut c = [(0u64, 0u64); 7];
    for i in &p.insns {
        for t in i.push.iter() {
            c[t.index()].0 += 1;
        }
        for t in i.pop.iter() {
            c[t.index()].1 += 1;
        }
    }
    c
}

/// The timing rules that hold for any program: a unit does one thing at a time, each channel
/// (DRAM, global buffer) moves one transfer at a time, every transfer to the global buffer lies
/// inside it, every slot taken is given back, and a layer's MACs are all run.
fn check_invariants(what: &str, p: &Program, r: &Run) {
    use etch_program::isa::{Token, Unit};
    let t = &r.timing;
    for unit in Unit::ALL {
        let mut last_end = 0;
        for (i, insn) in p.insns.iter().enumerate() {
            if insn.kind.unit() == unit {
                assert!(t.start[i] >= last_end, "{what}: {unit:?} overlaps at {i}");
                assert!(t.end[i] >= t.start[i] && t.done[i] >= t.end[i]);
                last_end = t.end[i];
            }
        }
    }
    for space in [Space::Dram, Space::Global] {
        let mut transfers: Vec<(u64, u64)> = p
            .insns
            .iter()
            .enumerate()
            .filter_map(|(k, i)| match &i.kind {
                Kind::Load(d) | Kind::Store(d) if d.space == space => Some((t.start[k], t.end[k])),
                _ => None,
            })
            .collect();
        transfers.sort_unstable();
        for w in transfers.windows(2) {
            assert!(
                w[1].0 >= w[0].1,
                "{what}: {space:?} transfers overlap: {w:?}"
            );
        }
    }
    for i in &p.insns {
        if let Kind::Load(d) | Kind::Store(d) = &i.kind {
            if d.space == Space::Global {
                let end = d.addr + (d.rows.max(1) - 1) * d.stride + d.row_bytes;
                assert!(
                    end <= p.machine.global_bytes,
                    "{what}: {d:?} ends past the global buffer"
                );
            }
        }
    }
    for tok in Token::ALL {
        let (push, pop) = token_counts(p)[tok.index()];
        let initial = tok.initial(p.machine.slots) as u64;
        assert!(
            pop <= push + initial,
            "{what}: {tok:?} popped {pop} > pushed {push} + {initial}"
        );
        if matches!(
            tok,
            Token::InputFree | Token::WeightFree | Token::OutputFree
        ) {
            assert_eq!(push, pop, "{what}: {tok:?}: every slot taken is given back");
        }
    }
    for (l, lt) in p.layers.iter().zip(&r.layers) {
        if l.unit == "array" && l.arith.k_ratio == 1.0 && l.arith.n_ratio == 1.0 {
            assert_eq!(l.macs_performed, l.macs, "{what}: {}", l.name);
        }
        assert!(lt.end <= t.total, "{what}: {}", l.name);
    }
    assert!(t.total > 0, "{what}");
    // the search's cutoff stops exactly the runs that end after it: its bound on the total is a
    // lower bound at every step
    let within = |cutoff| etch_program::machine::total_within(&p.machine, &p.insns, cutoff);
    assert_eq!(within(t.total), Ok(Some(t.total)), "{what}");
    assert_eq!(within(t.total - 1), Ok(None), "{what}");
}

#[test]
fn every_shipped_model_runs_on_every_description() {
    let mut models: Vec<String> = std::fs::read_dir(format!("{ROOT}/examples/models"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|f| f.strip_suffix(".onnx.txt").map(String::from))
        .collect();
    models.sort();
    let mut hws: Vec<String> = std::fs::read_dir(format!("{ROOT}/examples/hw"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|f| f.strip_suffix(".ron").map(String::from))
        .collect();
    hws.sort();
    assert!(models.len() >= 8 && hws.len() >= 8, "{models:?} {hws:?}");
    for name in &models {
        let m = model(name);
        for h in &hws {
            let acc = hw(h);
            let (p, r) = run(&m, &acc, 1);
            check_invariants(&format!("{name} on {h}"), &p, &r);
        }
    }
}

#[test]
fn a_program_that_waits_for_a_token_nobody_gives_is_a_deadlock() {
    use etch_program::isa::{Buffer, Dma, Insn, Token, Tokens};
    use etch_program::machine::{run, Machine};
    let m = Machine::of(&hw("ws-16x16-int8"));
    let load = Insn {
        kind: Kind::Load(Dma {
            buffer: Buffer::Input,
            slot: 0,
            space: Space::Dram,
            addr: 0,
            rows: 1,
            row_bytes: 64,
            stride: 64,
            tile: Default::default(),
        }),
        pop: Tokens::NONE.with(Token::Stored),
        push: Tokens::NONE,
        layer: 0,
    };
    let e = run(&m, &[load]).unwrap_err();
    assert_eq!(e.token, Token::Stored);
    assert!(e.to_string().contains("deadlocks"), "{e}");
}

#[test]
fn the_dram_channel_follows_its_rule() {
    use etch_program::isa::{Buffer, Dma, Insn, Token, Tokens};
    use etch_program::machine::{run, Machine};
    let mut acc = hw("ws-16x16-int8");
    acc.dram.bytes_per_cycle = 2.4;
    acc.dram.latency_cycles = 30;
    let m = Machine::of(&acc);
    let dma = |buffer| Dma {
        buffer,
        slot: 0,
        space: Space::Dram,
        addr: 0,
        rows: 2,
        row_bytes: 60,
        stride: 100,
        tile: Default::default(),
    };
    // two loads back to back, then a store that waits for nothing
    let insns = [
        Insn {
            kind: Kind::Load(dma(Buffer::Input)),
            pop: Tokens::NONE,
            push: Tokens::NONE.with(Token::InputFull),
            layer: 0,
        },
        Insn {
            kind: Kind::Load(dma(Buffer::Weight)),
            pop: Tokens::NONE,
            push: Tokens::NONE,
            layer: 0,
        },
        Insn {
            kind: Kind::Store(dma(Buffer::Output)),
            pop: Tokens::NONE,
            push: Tokens::NONE,
            layer: 0,
        },
    ];
    let t = run(&m, &insns).unwrap();
    // 120 bytes at 2.4 bytes a cycle: 50 cycles on the channel, done 30 later
    assert_eq!((t.start[0], t.end[0], t.done[0]), (0, 50, 80));
    // the store was ready at 0 as well, but loads win ties; then the second load, ready at 50
    assert_eq!((t.start[2], t.end[2]), (50, 100));
    assert_eq!((t.start[1], t.end[1], t.done[1]), (100, 150, 180));
    assert_eq!(t.total, 180);
}

/// The search prunes by the closed-form tally, so the tally must be what the instructions do:
/// for every candidate tiling of the array layers of a plain, a grouped, a depthwise and a
/// low-bit network, the compute cycles, DRAM bytes and transfers agree, and the channel cycles
/// agree on a byte channel and are a lower bound on a bus (whose beats depend on addresses).
#[test]
fn the_tally_is_what_the_instructions_do() {
    use etch_program::machine::{busy_cycles, Machine};
    use etch_program::schedule::{Addrs, Emitter};
    use etch_program::tiling::{candidates, tally, SlotBytes, Spaces};
    for (name, h) in [
        ("digits_cnn", "ws-4x2-int8"),
        ("alexnet_eyeriss_convs", "eyeriss-12x14-int16"),
        ("mobilenet_v2", "os-8x8-fp16"),
        ("squeezenet1_1", "ws-32x32-pow2"),
        ("resnet18", "is-32x32-int8-sparse"),
    ] {
        let m = model(name);
        let mut acc = hw(h);
        // a global buffer with its own channel: candidates are tallied with their activations
        // in each space in turn
        acc.buffers.global = Some(etch_hw::GlobalBuffer {
            kib: 256,
            bytes_per_cycle: 24.5,
            latency_cycles: 3,
        });
        let mach = Machine::of(&acc);
        let combos = [
            (Space::Dram, Space::Dram),
            (Space::Global, Space::Global),
            (Space::Global, Space::Dram),
            (Space::Dram, Space::Global),
        ];
        let specs = etch_program::lower::specs_from_graph(&m.model, &m.info, &acc);
        let layers = etch_program::lower::extract(&m.model, &m.info, 1, &acc, &specs).unwrap();
        let mut checked = 0;
        for layer in &layers {
            let Some(s) = etch_program::conv_shape(layer) else {
                continue;
            };
            let a = etch_program::arith_of(layer, &acc);
            let cands = candidates(&s, &a, &SlotBytes::of(&acc));
            // every candidate of small layers; a spread of them on large ones
            let step = (cands.len() / 40).max(1);
            for (n, t) in cands.iter().step_by(step).enumerate() {
                let (input, output) = combos[n % combos.len()];
                let spaces = Spaces { input, output };
                let x = tally(t, &s, &a, &mach, spaces);
                let mut em = Emitter::new(&mach);
                em.begin_layer(0);
                em.conv(
                    &s,
                    &a,
                    t,
                    Addrs {
                        spaces,
                        ..Addrs::default()
                    },
                );
                em.end_layer();
                let (mut compute, mut load, mut store, mut dram, mut transfers) = (0, 0, 0, 0, 0);
                let mut channel = [0u64; 2];
                for i in &em.insns {
                    match &i.kind {
                        Kind::Load(d) | Kind::Store(d) => {
                            if matches!(i.kind, Kind::Load(_)) {
                                load += d.bytes();
                            } else {
                                store += d.bytes();
                            }
                            dram += d.dram_bytes();
                            transfers += 1;
                            channel[d.space as usize] += busy_cycles(&mach, i);
                        }
                        _ => compute += busy_cycles(&mach, i),
                    }
                }
                let what = format!("{name} {} {t:?} {spaces:?}", layer.name);
                assert_eq!(x.compute_cycles, compute, "{what}");
                assert_eq!(
                    (x.load_bytes, x.store_bytes, x.dram_bytes),
                    (load, store, dram),
                    "{what}"
                );
                assert_eq!(x.transfers, transfers, "{what}");
                for space in [Space::Dram, Space::Global] {
                    let (bound, actual) =
                        (x.channel_cycles[space as usize], channel[space as usize]);
                    if mach.channel(space).beat_bytes == 1 {
                        assert_eq!(bound, actual, "{what}: {space:?} channel");
                    } else {
                        assert!(
                            bound <= actual,
                            "{what}: {space:?} channel {bound} > {actual}"
                        );
                    }
                }
                let exact = etch_program::machine::run(&mach, &em.insns).unwrap().total;
                assert!(x.cycles_bound() <= exact, "{what}: bound above {exact}");
                checked += 1;
            }
        }
        assert!(checked > 0, "{name}");
    }
}

/// AlexNet's convolutions as Eyeriss ran them (batch 4, 227², grouped CONV2/4/5) on the
/// Eyeriss-sized description, compiled for energy as Eyeriss's mapper was: DRAM accesses per MAC
/// within 2× of the chip's measured 0.0029 (16-bit words; 15.4 MB for 2.66 G MACs), and each
/// layer's compute latency within 25% of the chip's processing latency (which assumes DRAM
/// traffic overlapped). Chen et al., "Eyeriss", IEEE JSSC 52(1), 2017, Table V.
#[test]
fn alexnet_on_eyeriss_moves_and_takes_about_what_the_chip_did() {
    const CHIP_MS: [(&str, f64); 5] = [
        ("CONV1", 16.5),
        ("CONV2", 39.2),
        ("CONV3", 21.8),
        ("CONV4", 16.0),
        ("CONV5", 10.0),
    ];
    const CHIP_ACCESSES_PER_MAC: f64 = 0.0029;
    let m = model("alexnet_eyeriss_convs");
    let acc = hw("eyeriss-12x14-int16");
    let p = m.lower(&acc, 1, Objective::Energy).unwrap();
    let r = simulate(&p, &acc).unwrap();
    check_invariants("alexnet on eyeriss", &p, &r);
    let (mut macs, mut bytes) = (0, 0);
    for (name, chip_ms) in CHIP_MS {
        let k = p.layers.iter().position(|l| l.name == name).unwrap();
        let (l, t) = (&p.layers[k], &r.layers[k]);
        let ms = t.compute_cycles as f64 / (acc.clock_mhz * 1e3);
        let ratio = ms / chip_ms;
        println!(
            "{name}: compute {ms:.2} ms vs the chip's {chip_ms} ms ({ratio:.2}x); {} DRAM bytes; {:?}",
            t.dram_read_bytes + t.dram_write_bytes,
            l.tiling
        );
        assert!((0.75..=1.25).contains(&ratio), "{name}: {ratio:.3}");
        macs += l.macs;
        bytes += t.dram_read_bytes + t.dram_write_bytes;
    }
    let per_mac = bytes as f64 / 2.0 / macs as f64;
    let ratio = per_mac / CHIP_ACCESSES_PER_MAC;
    println!(
        "DRAM accesses per MAC {per_mac:.5} vs the chip's {CHIP_ACCESSES_PER_MAC} ({ratio:.2}x)"
    );
    assert!((0.5..=2.0).contains(&ratio), "{ratio:.3}");
}

/// ResNet-18's cycles and DRAM bytes on a weight-stationary int8 description with the array and
/// buffers given.
fn resnet18_on(side: u32, kib: (u32, u32, u32), objective: Objective) -> (u64, u64) {
    let m = model("resnet18");
    let mut acc = hw("ws-16x16-int8");
    acc.array = etch_hw::Array::Systolic {
        rows: side,
        cols: side,
        dataflow: etch_hw::Dataflow::WeightStationary,
    };
    acc.vector.lanes = side;
    (
        acc.buffers.ifmap_kib,
        acc.buffers.filter_kib,
        acc.buffers.ofmap_kib,
    ) = kib;
    let p = m.lower(&acc, 1, objective).unwrap();
    let r = simulate(&p, &acc).unwrap();
    (r.timing.total, dram_bytes(&p))
}

/// More hardware is never worse: the search picks the best of every candidate tiling by the
/// objective, the candidates are the same on any array and only grow with the buffers, and a
/// tiling never takes longer on a larger array. DRAM traffic depends on the tiling alone, so over
/// the array sweep neither cycles nor DRAM bytes grow. Over a buffer sweep the latency objective
/// may trade a few bytes for cycles, so there cycles are checked under `latency` and DRAM bytes
/// under `dram`.
#[test]
fn more_hardware_never_costs_cycles_or_dram() {
    let mut prev: Option<(u32, (u64, u64))> = None;
    for side in [8, 16, 32, 64, 128] {
        let now = resnet18_on(side, (64, 64, 64), Objective::Latency);
        println!(
            "array {side}x{side}: {} cycles, {} DRAM bytes",
            now.0, now.1
        );
        if let Some((s, before)) = prev {
            assert!(
                now.0 <= before.0 && now.1 <= before.1,
                "{side}x{side} takes {now:?} (cycles, DRAM bytes), {s}x{s} {before:?}"
            );
        }
        prev = Some((side, now));
    }
    for (which, name) in ["ifmap", "filter", "ofmap"].iter().enumerate() {
        let mut prev: Option<(u32, (u64, u64))> = None;
        for kib in [16, 32, 64, 128, 256, 512] {
            let mut b = (64, 64, 64);
            match which {
                0 => b.0 = kib,
                1 => b.1 = kib,
                _ => b.2 = kib,
            }
            let now = resnet18_on(16, b, Objective::Latency);
            let bytes = resnet18_on(16, b, Objective::Dram).1;
            println!(
                "{name} {kib} KiB: {} cycles (latency objective), {bytes} DRAM bytes (dram objective)",
                now.0
            );
            if let Some((k, before)) = prev {
                assert!(
                    now.0 <= before.0 && bytes <= before.1,
                    "{name} buffer at {kib} KiB takes {} cycles and {bytes} bytes, at {k} KiB {} and {}",
                    now.0,
                    before.0,
                    before.1
                );
            }
            prev = Some((kib, (now.0, bytes)));
        }
    }
}

/// Static power is charged for every cycle of the run, once: the layers' shares add up to
/// `static_mw` × the run's time, and the dynamic energy does not change.
#[test]
fn static_power_is_charged_for_the_whole_run() {
    let m = model("resnet18");
    let mut acc = hw("ws-16x16-int8");
    let (_, before) = run(&m, &acc, 1);
    acc.static_mw = 250.0;
    let (_, after) = run(&m, &acc, 1);
    assert_eq!(before.timing.total, after.timing.total);
    let share: f64 = after.layers.iter().map(|l| l.energy.static_power).sum();
    let want = 250e-3 * after.timing.total as f64 / (acc.clock_mhz * 1e6) * 1e12;
    assert!(
        (share - want).abs() <= want * 1e-9,
        "{share} pJ vs {want} pJ"
    );
    let dynamic = |r: &Run| -> f64 {
        r.layers
            .iter()
            .map(|l| l.energy.total() - l.energy.static_power)
            .sum()
    };
    assert!((dynamic(&before) - dynamic(&after)).abs() <= dynamic(&before) * 1e-12);
    assert!(before.layers.iter().all(|l| l.energy.static_power == 0.0));
}

/// With a global buffer, activations that fit stay on chip between layers: compiled for DRAM
/// traffic, less of it than on the same description without one (the same tilings are
/// candidates, and the activations' bytes leave DRAM), and every transfer to the global buffer
/// lies inside it. A chain with a buffer large enough keeps every intermediate activation on chip.
#[test]
fn activations_stay_in_the_global_buffer_when_they_fit() {
    let with = hw("ws-32x32-int8-global");
    let global = with.buffers.global.unwrap().kib as u64 * 1024;
    let mut without = with.clone();
    without.buffers.global = None;
    for name in ["digits_cnn", "squeezenet1_1"] {
        let m = model(name);
        let p0 = m.lower(&without, 1, Objective::Dram).unwrap();
        let p1 = m.lower(&with, 1, Objective::Dram).unwrap();
        let (c0, c1) = (
            simulate(&p0, &without).unwrap().timing.total,
            simulate(&p1, &with).unwrap().timing.total,
        );
        let (d0, d1) = (dram_bytes(&p0), dram_bytes(&p1));
        let mut on_chip = 0;
        for i in &p1.insns {
            if let Kind::Load(d) | Kind::Store(d) = &i.kind {
                if d.space == Space::Global {
                    on_chip += d.bytes();
                    let end = d.addr + (d.rows.max(1) - 1) * d.stride + d.row_bytes;
                    assert!(end <= global, "{name}: {d:?} ends at {end}, past {global}");
                }
            }
        }
        println!(
            "{name}: {d0} DRAM bytes and {c0} cycles without a global buffer, {d1} and {c1} with ({on_chip} bytes on chip)"
        );
        assert!(on_chip > 0 && d1 < d0, "{name}: {d1} vs {d0}");
    }
    // digits_cnn is a chain that fits: only weights, the input and the output touch DRAM
    let m = model("digits_cnn");
    let (p, _) = run(&m, &with, 1);
    let activations_in_dram = p
        .insns
        .iter()
        .filter_map(|i| match &i.kind {
            Kind::Load(d) if d.buffer == etch_program::isa::Buffer::Input => Some(d.dram_bytes()),
            Kind::Store(d) => Some(d.dram_bytes()),
            _ => None,
        })
        .sum::<u64>();
    let first = &p.layers[0];
    println!("digits_cnn: {activations_in_dram} activation bytes through DRAM");
    assert!(
        activations_in_dram > 0 && activations_in_dram < 64 * 10 + 64,
        "{first:?}"
    );
}
