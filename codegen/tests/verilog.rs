//! The emitted Verilog, run: the digits models in their three compressions are bit-exact under
//! Verilator (int8 under Icarus too, which takes half a minute a run of this design) and take
//! exactly the cycles `etch sim --rtl` predicts; a flipped weight bit is
//! caught and named; a missing memory image fails loudly; the design is lint-clean.

mod common;

use std::path::PathBuf;

use etch_codegen::program::{golden, lower};
use etch_codegen::run::{lint, simulate, OutputSpec, Simulator};
use etch_codegen::verilog::{emit, Layout};

/// Compiles `model` with `spec` for pynq-z2 into a fresh folder; returns it, the layout and the
/// simulator's prediction.
fn compile(model: &str, what: &str, spec: &str, samples: usize) -> (PathBuf, Layout, u64) {
    let (m, info) = common::model(model, spec);
    let p = lower(&m, &info).unwrap();
    let _ = OutputSpec::of(&p, &info);
    let g = golden(&m, &info, &p, &common::test_csv(), samples).unwrap();
    let (_, acc) = etch_hw::Accelerator::for_target("pynq-z2").unwrap();
    let opts = etch_sim::cycle::SimOptions {
        trace: false,
        rtl: true,
        ..Default::default()
    };
    let sim = etch_sim::cycle::simulate_model(&m, &info, &acc, 1, &opts).unwrap();
    let dir = std::env::temp_dir().join(format!("etch-rtl-{model}-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let signed = info.ty(&p.input).unwrap().elem == etch_ir::tensor::ElemType::I8;
    let (l, _) = emit(&dir, model, &p, &g, &acc, signed, 1_000_000).unwrap();
    (dir, l, sim.total_cycles)
}

fn check(model: &str) {
    for (what, spec) in common::specs(model) {
        let (dir, _, predicted) = compile(model, what, &spec, 2);
        let (m, info) = common::model(model, &spec);
        let p = lower(&m, &info).unwrap();
        let out = OutputSpec::of(&p, &info);
        assert!(
            lint(&dir).unwrap().is_empty(),
            "{model} {what}: {}",
            lint(&dir).unwrap()
        );
        let sims = if what == "int8" {
            vec![Simulator::Icarus, Simulator::Verilator]
        } else {
            vec![Simulator::Verilator]
        };
        for sim in sims {
            let r = simulate(&dir, sim, &out).unwrap();
            assert!(
                r.verdict.bit_exact && r.error.is_none(),
                "{model} {what} {}: {:?} {:?}\n{}",
                sim.name(),
                r.verdict.first_mismatch,
                r.error,
                r.log
            );
            assert_eq!(r.verdict.samples, 2);
            assert_eq!(r.cycles, Some(predicted), "{model} {what} {}", sim.name());
            eprintln!(
                "{model} {what} {}: bit-exact, {predicted} cycles",
                sim.name()
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn digits_mlp_verifies_in_every_compression() {
    check("digits_mlp");
}

#[test]
fn digits_cnn_verifies_in_every_compression() {
    check("digits_cnn");
}

#[test]
fn a_flipped_weight_bit_is_caught_and_named() {
    let spec = &common::specs("digits_mlp")[0].1;
    let (dir, l, _) = compile("digits_mlp", "fault", spec, 2);
    // the last layer's weight (output 0, reduction index k) for the k whose input is largest in
    // sample 0: flipping its bit 6 moves output 0 of sample 0 by 64·x·M
    let (m, info) = common::model("digits_mlp", spec);
    let p = lower(&m, &info).unwrap();
    let g = golden(&m, &info, &p, &common::test_csv(), 1).unwrap();
    let x = &g[0].steps[0];
    let zp = match &p.steps[1].op.layer().unwrap().input {
        etch_codegen::program::InputCode::Int { zero_point } => *zero_point as i64,
        _ => unreachable!(),
    };
    let k = (0..x.len()).max_by_key(|&i| (x[i] - zp).abs()).unwrap();
    let wbase = l.sched[1][etch_codegen::verilog::layout::field("wbase")] as usize;
    let word = wbase + (k / l.rows) * l.rows + (l.rows - 1 - k % l.rows);
    let path = dir.join("weights.hex");
    let mut lines: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let w = &lines[word];
    let last = w.len() - 2; // lane 0 is the last byte
    let b = u8::from_str_radix(&w[last..], 16).unwrap() ^ 0x40;
    lines[word] = format!("{}{b:02x}", &w[..last]);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let out = OutputSpec::of(&p, &info);
    let r = simulate(&dir, Simulator::Verilator, &out).unwrap();
    assert!(!r.verdict.bit_exact);
    let mm = r.verdict.first_mismatch.expect("a mismatch");
    assert_eq!((mm.sample, mm.index), (0, Some(0)), "{}", r.log);
    // a testbench that prints the pass line but writes wrong codes does not pass: the verdict is
    // etch's comparison of the codes it wrote
    let tb = dir.join(etch_codegen::verilog::TESTBENCH);
    let text = std::fs::read_to_string(&tb).unwrap();
    let liar = text.replace("$fatal(1, \"output differs from golden\");", "");
    assert_ne!(liar, text, "the testbench's mismatch branch changed");
    std::fs::write(&tb, liar).unwrap();
    let r = simulate(&dir, Simulator::Verilator, &out).unwrap();
    assert!(r.log.contains("ETCH PASS"), "{}", r.log);
    assert!(!r.verdict.bit_exact, "{}", r.log);
    // a missing memory image is an error, not a pass (Verilator would read zeros)
    std::fs::remove_file(dir.join("params.hex")).unwrap();
    for sim in [Simulator::Icarus, Simulator::Verilator] {
        let r = simulate(&dir, sim, &out).unwrap();
        assert!(!r.verdict.bit_exact || r.error.is_some(), "{}", r.log);
        assert!(
            r.error
                .as_deref()
                .unwrap_or("")
                .contains("missing memory image params.hex"),
            "{:?}\n{}",
            r.error,
            r.log
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The emitted Verilog of a small design (digits_mlp binarized, int MAC and XNOR PEs, on
/// ice40-up5k's 4x2 array) and its schedule image, compared with `codegen/tests/snapshots/verilog/`
/// (`ETCH_BLESS=1` rewrites them): a change to the emitter shows in review as a diff of the RTL.
#[test]
fn emitted_verilog_matches_the_snapshots() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/verilog");
    let bless = std::env::var_os("ETCH_BLESS").is_some();
    let spec = &common::specs("digits_mlp")[2].1;
    let (m, info) = common::model("digits_mlp", spec);
    let p = lower(&m, &info).unwrap();
    let g = golden(&m, &info, &p, &common::test_csv(), 1).unwrap();
    let (_, acc) = etch_hw::Accelerator::for_target("ice40-up5k").unwrap();
    let dir = std::env::temp_dir().join(format!("etch-rtl-snapshot-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let signed = info.ty(&p.input).unwrap().elem == etch_ir::tensor::ElemType::I8;
    emit(&dir, "digits_mlp", &p, &g, &acc, signed, 1_000_000).unwrap();
    for f in ["etch_accel.v", "etch_tb.v", "sched.hex"] {
        let got = std::fs::read_to_string(dir.join(f)).unwrap();
        let path = root.join(format!("digits_mlp_binary_ice40_{f}"));
        if bless {
            std::fs::create_dir_all(&root).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (ETCH_BLESS=1 writes it)", path.display()));
        assert!(
            got == want,
            "{} differs from the emitted file in {} (ETCH_BLESS=1 rewrites the snapshot)",
            path.display(),
            dir.display()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
