//! Property test of the Verilog back end: random small Conv → ReLU → [MaxPool] → Flatten → Gemm
//! models (`common::random`, shared with the HLS random test: random channels, extents, kernel,
//! stride, padding, dilation, weights), quantized as int8, power-of-two or binarized, on random array shapes,
//! dataflows and DRAM bandwidths and latencies. Weight-stationary descriptions are emitted, run
//! under Icarus, and must be bit-exact with the CPU executor and take exactly `etch sim --rtl`'s
//! cycles; output- and input-stationary ones must be refused with the reason (the emitted
//! accelerator implements weight-stationary only). Few cases: each one runs a simulator.

mod common;

use std::path::PathBuf;

use common::random::{quantized, Rng};
use etch_codegen::program::{golden, lower};
use etch_codegen::run::{lint, simulate, OutputSpec, Simulator};
use etch_codegen::verilog::emit;
use proptest::prelude::*;

fn run_case(seed: u64, rows: u32, cols: u32, dataflow: &str, bpc: f64, latency: u32, form: u8) {
    let mut rng = Rng(seed | 1);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("verilog-random-{seed:x}"));
    let _ = std::fs::remove_dir_all(&dir);
    let q = quantized(&mut rng, &dir, 16, form as usize);
    let (model, info, calib) = (q.model, q.info, q.csv);
    let what = format!(
        "{} on {rows}x{cols} {dataflow}, {bpc} B/cycle, latency {latency}, form {form}",
        q.what
    );
    let p = lower(&model, &info).unwrap_or_else(|e| panic!("{what}: {e}"));
    let g = golden(&model, &info, &p, &calib, 3).unwrap();
    let ron = format!(
        "Accelerator(name: \"random\", clock_mhz: 100.0, array: Systolic(rows: {rows}, cols: {cols}, dataflow: {dataflow}), pe: IntMac(weight_bits: 8, act_bits: 8, acc_bits: 32), buffers: (ifmap_kib: 64, filter_kib: 64, ofmap_kib: 64, banks: 1, double_buffered: false), dram: (bytes_per_cycle: {bpc:?}, latency_cycles: {latency}), vector: (lanes: 4), energy: \"horowitz-45nm\")"
    );
    let acc = etch_hw::Accelerator::from_ron("random.ron", &ron)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let opts = etch_sim::cycle::SimOptions {
        trace: false,
        rtl: true,
        ..Default::default()
    };
    let sim = etch_sim::cycle::simulate_model(&model, &info, &acc, 1, &opts);
    let signed = info.ty(&p.input).unwrap().elem == etch_ir::tensor::ElemType::I8;
    let emitted = emit(&dir, "random", &p, &g, &acc, signed, 1_000_000);
    if dataflow != "WeightStationary" {
        let e = emitted.expect_err(&what).to_string();
        assert!(e.contains("weight-stationary dataflow only"), "{what}: {e}");
        assert!(sim.is_err(), "{what}");
        return;
    }
    emitted.unwrap_or_else(|e| panic!("{what}: {e}"));
    let predicted = sim.unwrap_or_else(|e| panic!("{what}: {e}")).total_cycles;
    assert_eq!(lint(&dir).unwrap(), "", "{what}");
    let r = simulate(&dir, Simulator::Icarus, &OutputSpec::of(&p, &info)).unwrap();
    assert!(
        r.verdict.bit_exact && r.error.is_none(),
        "{what}: {:?} {:?}\n{}",
        r.verdict.first_mismatch,
        r.error,
        r.log
    );
    assert_eq!(r.cycles, Some(predicted), "{what}");
    eprintln!("{what}: bit-exact, {predicted} cycles");
    let _ = std::fs::remove_dir_all(&dir);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 10,
        // the same cases every run (40 random-seeded runs passed when this was written)
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed_0e7c_4001),
        failure_persistence: None,
        max_shrink_iters: 4,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_layers_on_random_arrays_are_bit_and_cycle_exact(
        seed in any::<u64>(),
        rows in 1u32..7,
        cols in 1u32..7,
        dataflow in prop::sample::select(vec!["WeightStationary", "WeightStationary", "WeightStationary", "OutputStationary", "InputStationary"]),
        bpc in prop::sample::select(vec![0.5f64, 1.0, 3.5, 8.0, 21.0]),
        latency in 0u32..40,
        form in 0u8..4,
    ) {
        run_case(seed, rows, cols, dataflow, bpc, latency, form);
    }
}
