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
    core::emit(&dir, model, &p.machine, &p.insns, &timing).unwrap();
    let r = simulate_core(&dir, sim).unwrap();
    assert_eq!(r.error, None, "{name}: {}", r.log);
    if let Err(e) = core::compare(&p.insns, &timing, &r.events) {
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
    core::emit(&dir, "digits_cnn", &p.machine, &p.insns, &timing).unwrap();
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
            let c = check(
                &format!("{model}_{name}"),
                model,
                &hw(name),
                Simulator::Verilator,
            );
            eprintln!("{model} on {name}: {c} cycles");
        }
    }
}
