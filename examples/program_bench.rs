//! How fast the accelerator program is made and run: ResNet-50 at 224×224 compiled (lowering,
//! tiling search, emission) and simulated (the exact event-level run and its energy) on a 128×128
//! weight-stationary array and two smaller descriptions. With `--peers`, the peers run on the same
//! network and array in the same run, each as far as it is installed: SCALE-Sim 3.0.0
//! (`scripts/scalesim_setup.sh`; its CPU time over ResNet-50's convolutions, traces off) and
//! ZigZag 3.9.1's LOMA mapper (`scripts/zigzag_setup.sh`; `scripts/zigzag_resnet50.py`). Without
//! it, SCALE-Sim's recorded time is quoted
//! (`sim/tests/fixtures/scalesim/resnet50_conv__a128x128_ws.expected.csv`).
//!
//! Usage: `cargo run --release --example program_bench [REPEATS] [--peers]` (default 5; medians).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use etch_hw::Accelerator;
use etch_program::tiling::Objective;
use etch_sim::pipeline::Pipeline;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let peers = args.iter().any(|a| a == "--peers");
    let reps: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(5);
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
    let fixtures = format!("{ROOT}/sim/tests/fixtures/scalesim");
    if !peers {
        let recorded = format!("{fixtures}/resnet50_conv__a128x128_ws.expected.csv");
        if let Ok(text) = std::fs::read_to_string(&recorded) {
            if let Some(line) = text.lines().find(|l| l.contains("CPU-s")) {
                println!("SCALE-Sim 3.0.0 recorded run: {line}");
            }
        }
        return;
    }
    let out = std::env::temp_dir().join(format!("etch-program-bench-{}", std::process::id()));
    std::fs::create_dir_all(&out).expect("a temporary folder");
    peer(
        "SCALE-Sim 3.0.0",
        &format!("{ROOT}/target/scalesim-venv/bin/python"),
        "scripts/scalesim_setup.sh",
        &[
            format!("{ROOT}/scripts/scalesim_record.py"),
            out.display().to_string(),
            format!("{fixtures}/resnet50_conv.csv:{fixtures}/a128x128_ws.cfg"),
        ],
    );
    peer(
        "ZigZag",
        &format!("{ROOT}/.venv-zigzag/bin/python"),
        "scripts/zigzag_setup.sh",
        &[format!("{ROOT}/scripts/zigzag_resnet50.py")],
    );
    let _ = std::fs::remove_dir_all(&out);
}

/// Runs a peer's script with its virtualenv's python (an argument vector, no shell) and prints
/// its last line, or says how to install it.
fn peer(name: &str, python: &str, setup: &str, args: &[String]) {
    if !Path::new(python).exists() {
        println!("{name}: not installed; run {setup} first");
        return;
    }
    match Command::new(python).args(args).current_dir(ROOT).output() {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            println!("{name}: {}", text.lines().last().unwrap_or("(no output)"));
        }
        Ok(o) => println!(
            "{name}: failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ),
        Err(e) => println!("{name}: cannot run {python}: {e}"),
    }
}
