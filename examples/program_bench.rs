//! How fast the accelerator program is made and run: ResNet-50 at 224×224 compiled (lowering,
//! tiling search, emission) and simulated (the exact event-level run and its energy) on a 128×128
//! weight-stationary array, beside SCALE-Sim 3.0.0's own time on the same network and array (its
//! recorded run, `sim/tests/fixtures/scalesim/resnet50_conv__a128x128_ws.expected.csv`).
//!
//! Usage: `cargo run --release --example program_bench [REPEATS]` (default 5; medians printed).

use std::time::Instant;

use etch_hw::Accelerator;
use etch_program::tiling::Objective;
use etch_sim::pipeline::Pipeline;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let model = Pipeline::default()
        .load(&format!("{ROOT}/examples/models/resnet50.onnx.txt"))
        .unwrap_or_else(|e| panic!("resnet50: {e}"));
    for hw in [
        "tpu-like-128x128-ws-int8",
        "ws-16x16-int8",
        "eyeriss-12x14-int16",
    ] {
        let acc = Accelerator::from_file(&format!("{ROOT}/examples/hw/{hw}.ron")).expect("hw");
        let mut compile_ms = Vec::new();
        let mut sim_ms = Vec::new();
        let mut last = None;
        for _ in 0..reps.max(1) {
            let t = Instant::now();
            let p = model.lower(&acc, 1, Objective::Latency).expect("compiles");
            compile_ms.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            let r = etch_program::simulate(&p, &acc).expect("runs");
            sim_ms.push(t.elapsed().as_secs_f64() * 1e3);
            last = Some((p.insns.len(), r.timing.total));
        }
        compile_ms.sort_by(f64::total_cmp);
        sim_ms.sort_by(f64::total_cmp);
        let (insns, cycles) = last.expect("ran");
        println!(
            "resnet50 on {hw}: compile {:.1} ms, simulate {:.1} ms (median of {reps}); {insns} instructions, {cycles} cycles",
            compile_ms[compile_ms.len() / 2],
            sim_ms[sim_ms.len() / 2]
        );
    }
    let recorded =
        format!("{ROOT}/sim/tests/fixtures/scalesim/resnet50_conv__a128x128_ws.expected.csv");
    if let Ok(text) = std::fs::read_to_string(&recorded) {
        if let Some(line) = text.lines().find(|l| l.contains("CPU-s")) {
            println!("SCALE-Sim 3.0.0 recorded run: {line}");
        }
    }
}
