//! The program's accelerator core in RTL runs every instruction in exactly the cycles the
//! simulator gives it: the same start, end and done for every instruction, on real programs and
//! on descriptions of every dataflow, with and without a global buffer.

use std::path::PathBuf;

use etch_codegen::run::{lint_file, simulate_core, Simulator};
use etch_codegen::verilog::core;
use etch_hw::Accelerator;
use etch_program::machine::run;
use etch_program::tiling::Objective;
use etch_sim::pipeline::Pipeline;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn out_dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("core")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Compiles `model` for `acc`, emits its core, runs it under `sim` and holds its log against
/// the simulator. Returns the program's cycles.
fn check(name: &str, model: &str, acc: &Accelerator, sim: Simulator) -> u64 {
    let path = format!("{ROOT}/examples/models/{model}.onnx.txt");
    let prepared = Pipeline::default().load(&path).unwrap();
    let p = prepared.lower(acc, 1, Objective::Latency).unwrap();
    let timing = run(&p.machine, &p.insns).unwrap();
    let dir = out_dir(name);
    core::emit(&dir, model, &p.machine, &p.insns, &timing, None).unwrap();
    let r = simulate_core(&dir, sim).unwrap();
    assert_eq!(r.error, None, "{name}: {}", r.log);
    if let Err(e) = core::compare(&core::expected(&p.insns, &timing), &r.events) {
        panic!("{name}: {e}");
    }
    assert_eq!(r.cycles, Some(timing.total), "{name}");
    timing.total
}

fn hw(name: &str) -> Accelerator {
    Accelerator::from_file(&format!("{ROOT}/examples/hw/{name}.ron")).unwrap()
}

#[test]
fn digits_cnn_core_runs_in_the_simulators_cycles() {
    let cycles = check(
        "digits_cnn_ws16",
        "digits_cnn",
        &hw("ws-16x16-int8"),
        Simulator::Verilator,
    );
    eprintln!("digits_cnn on ws-16x16-int8: {cycles} cycles in RTL and simulator");
}

#[test]
fn the_core_is_lint_clean() {
    let acc = hw("ws-32x32-int8-global");
    let path = format!("{ROOT}/examples/models/digits_cnn.onnx.txt");
    let p = Pipeline::default()
        .load(&path)
        .unwrap()
        .lower(&acc, 1, Objective::Latency)
        .unwrap();
    let timing = run(&p.machine, &p.insns).unwrap();
    let dir = out_dir("lint");
    core::emit(&dir, "digits_cnn", &p.machine, &p.insns, &timing, None).unwrap();
    let warnings = lint_file(&dir, core::CORE, "etch_core").unwrap();
    assert!(warnings.is_empty(), "{warnings}");
}

#[test]
fn every_shipped_description_runs_digits_in_the_simulators_cycles() {
    for name in [
        "ws-4x2-int8",
        "ws-32x32-int8-global",
        "os-8x8-fp16",
        "is-32x32-int8-sparse",
        "eyeriss-12x14-int16",
        "ws-32x32-pow2",
        "ws-64x64-xnor",
        "tpu-like-128x128-ws-int8",
    ] {
        for model in ["digits_cnn", "digits_mlp"] {
            // Icarus (which compiles at once) on the small programs; Verilator (a build of some
            // seconds each) runs the tests' larger ones, and these on one description
            let sim = if name == "tpu-like-128x128-ws-int8" {
                Simulator::Verilator
            } else {
                Simulator::Icarus
            };
            let c = check(&format!("{model}_{name}"), model, &hw(name), sim);
            eprintln!("{model} on {name} ({sim:?}): {c} cycles");
        }
    }
}

#[test]
fn squeezenet_and_mobilenet_run_in_the_simulators_cycles() {
    for (model, name) in [
        ("squeezenet1_1", "ws-32x32-int8-global"),
        ("mobilenet_v2", "os-8x8-fp16"),
    ] {
        let t = std::time::Instant::now();
        let c = check(
            &format!("{model}_{name}"),
            model,
            &hw(name),
            Simulator::Verilator,
        );
        eprintln!(
            "{model} on {name}: {c} cycles ({:.1} s)",
            t.elapsed().as_secs_f64()
        );
    }
}

/// A description with the given shape, buffers and channels (int8 MACs; the PE kind does not
/// change the timing).
#[allow(clippy::too_many_arguments)]
fn description(
    rows: u32,
    cols: u32,
    dataflow: &str,
    kib: u32,
    double: bool,
    bpc: f64,
    latency: u32,
    lanes: u32,
    global: Option<(u32, f64, u32)>,
) -> Accelerator {
    let global = match global {
        Some((k, b, l)) => format!("Some((kib: {k}, bytes_per_cycle: {b:?}, latency_cycles: {l}))"),
        None => "None".into(),
    };
    let ron = format!(
        "Accelerator(name: \"random\", clock_mhz: 100.0, array: Systolic(rows: {rows}, cols: {cols}, dataflow: {dataflow}), pe: IntMac(weight_bits: 8, act_bits: 8, acc_bits: 32), buffers: (ifmap_kib: {kib}, filter_kib: {kib}, ofmap_kib: {kib}, banks: 1, double_buffered: {double}, global: {global}), dram: (bytes_per_cycle: {bpc:?}, latency_cycles: {latency}), vector: (lanes: {lanes}), energy: \"horowitz-45nm\")"
    );
    Accelerator::from_ron("random.ron", &ron).unwrap_or_else(|e| panic!("{ron}: {e}"))
}

mod random {
    use super::*;
    use proptest::prelude::*;

    const MODELS: [&str; 5] = [
        "digits_cnn",
        "digits_mlp",
        "squeezenet1_1",
        "mobilenet_v2",
        "resnet18",
    ];
    const DATAFLOWS: [&str; 3] = ["WeightStationary", "OutputStationary", "InputStationary"];

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 8,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0xc0de_c0e5),
            failure_persistence: None,
            max_shrink_iters: 0,
            ..ProptestConfig::default()
        })]

        /// Random networks (residual, depthwise, concat, pooling, table activations) on random
        /// array shapes, dataflows, buffer sizes, DRAM and global-buffer rates and latencies.
        #[test]
        fn random_descriptions_run_in_the_simulators_cycles(
            model in 0usize..5,
            rows in 2u32..48,
            cols in 2u32..48,
            dataflow in 0usize..3,
            kib in prop::sample::select(vec![32u32, 64, 128, 256]),
            double in any::<bool>(),
            bpc in prop::sample::select(vec![0.75f64, 2.0, 3.3, 16.0, 128.0]),
            latency in 0u32..150,
            lanes in 1u32..33,
            global in prop::option::of((64u32..2048, prop::sample::select(vec![8.0f64, 32.5, 256.0]), 0u32..8)),
        ) {
            let acc = description(rows, cols, DATAFLOWS[dataflow], kib, double, bpc, latency, lanes, global);
            let model = MODELS[model];
            let path = format!("{ROOT}/examples/models/{model}.onnx.txt");
            let prepared = Pipeline::default().load(&path).unwrap();
            let p = prepared.lower(&acc, 1, Objective::Latency);
            let what = format!("{model} on {rows}x{cols} {} {kib} KiB double {double}, {bpc} B/cycle lat {latency}, {lanes} lanes, global {global:?}", DATAFLOWS[dataflow]);
            let p = match p {
                Ok(p) => p,
                Err(e) => { eprintln!("{what}: not compiled ({e})"); return Ok(()); }
            };
            let timing = run(&p.machine, &p.insns).unwrap();
            prop_assume!(timing.total < 40_000_000);
            let dir = out_dir("random");
            core::emit(&dir, model, &p.machine, &p.insns, &timing, None).unwrap_or_else(|e| panic!("{what}: {e}"));
            let r = simulate_core(&dir, Simulator::Verilator).unwrap();
            prop_assert_eq!(r.error.as_deref(), None, "{}: {}", what, r.log);
            if let Err(e) = core::compare(&core::expected(&p.insns, &timing), &r.events) {
                panic!("{what}: {e}");
            }
            prop_assert_eq!(r.cycles, Some(timing.total));
            eprintln!("{what}: {} cycles, exact", timing.total);
        }
    }
}
