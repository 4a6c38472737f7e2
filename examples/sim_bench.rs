//! How fast the simulator is: ResNet-50 at 224x224 on a 128x128 weight-stationary array, beside
//! SCALE-Sim 3.0.0 on the same input.
//!
//! - etch's cycle-level simulator (mapping, timeline, energy) on `examples/models/resnet50.onnx.txt`
//!   and `examples/hw/tpu-like-128x128-ws-int8.ron`;
//! - etch's SCALE-Sim mode on ResNet-50's convolutions as a SCALE-Sim topology
//!   (`sim/tests/fixtures/scalesim/resnet50_conv.csv`, written from the ONNX text by
//!   `scripts/scalesim_topology.py`) with a 128x128 WS config;
//! - SCALE-Sim's own CPU time on that topology and config, as its recorded run states it
//!   (`resnet50_conv__a128x128_ws.expected.csv`, from `scripts/scalesim_record.py`), and whether
//!   etch's per-layer Total Cycles equal the recorded ones.
//!
//! Usage: `cargo run --release --example sim_bench [REPEATS]` (default 20; medians are printed).

use std::time::Instant;

use etch_hw::Accelerator;
use etch_sim::cycle::{simulate_model, SimOptions};
use etch_sim::pipeline::{Pipeline, Source};
use etch_sim::scalesim;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn median_ms(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn time<T>(reps: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut out = f(); // warm-up
    let mut ms = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        out = f();
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    (median_ms(ms), out)
}

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("REPEATS is a number"))
        .unwrap_or(20)
        .max(1);

    // the cycle-level simulator on the ONNX model
    let path = format!("{ROOT}/examples/models/resnet50.onnx.txt");
    let src = Source::read(&path).unwrap();
    let t = Instant::now();
    let model = Pipeline::default()
        .run(&src, &mut Vec::new())
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let acc = Accelerator::from_file(&format!("{ROOT}/examples/hw/tpu-like-128x128-ws-int8.ron"))
        .unwrap();
    let (sim_ms, r) = time(reps, || {
        simulate_model(&model.model, &model.info, &acc, 1, &SimOptions::default()).unwrap()
    });
    let layers = r.layers.iter().filter(|l| l.unit != "free").count();
    println!(
        "etch sim, resnet50 on {} ({}x{} {:?}): {:.2} ms (median of {reps}; parsing and verifying the model {:.0} ms more); {} layers, {} cycles, {:.3} mJ",
        acc.name,
        acc.rows(),
        acc.cols(),
        acc.dataflow(),
        sim_ms,
        load_ms,
        layers,
        r.total_cycles,
        r.energy().total() / 1e9
    );

    // SCALE-Sim mode on the same convolutions
    let dir = format!("{ROOT}/sim/tests/fixtures/scalesim");
    let topo_path = format!("{dir}/resnet50_conv.csv");
    let cfg_path = format!("{dir}/a128x128_ws.cfg");
    let topo = scalesim::parse_topology(&topo_path, &std::fs::read_to_string(&topo_path).unwrap())
        .unwrap();
    let cfg =
        scalesim::parse_config(&cfg_path, &std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    let (ss_ms, got) = time(reps, || scalesim::simulate(&topo, &cfg));
    let total: u64 = got.iter().map(|l| l.total_cycles).sum();
    println!(
        "etch sim --topology (SCALE-Sim mode), {} convolutions on {}x{} {}: {:.2} ms (median of {reps}); {} cycles",
        topo.len(),
        cfg.rows,
        cfg.cols,
        cfg.dataflow.short(),
        ss_ms,
        total
    );

    // SCALE-Sim's own run on that input
    let rec =
        std::fs::read_to_string(format!("{dir}/resnet50_conv__a128x128_ws.expected.csv")).unwrap();
    let cpu_s: f64 = rec
        .lines()
        .next()
        .and_then(|l| l.rsplit("; ").next())
        .and_then(|s| s.trim_end_matches(" CPU-s").parse().ok())
        .expect("the recorded run states its CPU time");
    let want: Vec<u64> = rec
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("layer,"))
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    let equal = want.len() == got.len() && want.iter().zip(&got).all(|(w, g)| *w == g.total_cycles);
    println!(
        "SCALE-Sim 3.0.0 (Python API, recorded run): {cpu_s:.1} CPU-s; etch's per-layer Total Cycles equal to it: {}",
        if equal { "yes" } else { "NO" }
    );
    println!(
        "speed-up over SCALE-Sim: {:.0}x (SCALE-Sim mode), {:.0}x (cycle-level simulator)",
        cpu_s * 1e3 / ss_ms,
        cpu_s * 1e3 / sim_ms
    );
}
