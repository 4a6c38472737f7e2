//! Property test of the Verilog back end: random small Conv → ReLU → [MaxPool] → Flatten → Gemm
//! models (the HLS random test's generator: random channels, extents, kernel, stride, padding,
//! dilation, weights), quantized as int8, power-of-two or binarized, on random array shapes,
//! dataflows and DRAM bandwidths and latencies. Weight-stationary descriptions are emitted, run
//! under Icarus, and must be bit-exact with the CPU executor and take exactly `etch sim --rtl`'s
//! cycles; output- and input-stationary ones must be refused with the reason (the emitted
//! accelerator implements weight-stationary only). Few cases: each one runs a simulator.

use std::fmt::Write;
use std::path::PathBuf;

use etch_codegen::program::{golden, lower};
use etch_codegen::run::{lint, simulate, Simulator};
use etch_codegen::verilog::emit;
use proptest::prelude::*;

/// xorshift64*: deterministic cases without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
    fn float(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn floats(&mut self, n: usize, scale: f32) -> String {
        let v: Vec<String> = (0..n)
            .map(|_| format!("{:.5}", (self.float() * 2.0 - 1.0) * scale))
            .collect();
        v.join(",")
    }
}

struct Case {
    text: String,
    what: String,
    inputs: usize,
}

fn case(rng: &mut Rng) -> Case {
    let (c, h, w) = (rng.range(1, 4), rng.range(3, 9), rng.range(3, 9));
    let m = rng.range(1, 6);
    let (kh, kw) = (rng.range(1, 3), rng.range(1, 3));
    let (sh, sw) = (rng.range(1, 2), rng.range(1, 2));
    let (dh, dw) = (rng.range(1, 2), rng.range(1, 2));
    let extent = |n: usize, k: usize, d: usize| d * (k - 1) < n;
    let (dh, dw) = (
        if extent(h, kh, dh) { dh } else { 1 },
        if extent(w, kw, dw) { dw } else { 1 },
    );
    let (ph, pw) = (rng.range(0, kh - 1), rng.range(0, kw - 1));
    let out =
        |n: usize, k: usize, s: usize, p: usize, d: usize| (n + 2 * p - d * (k - 1) - 1) / s + 1;
    let (ho, wo) = (out(h, kh, sh, ph, dh), out(w, kw, sw, pw, dw));
    let pool = ho >= 2 && wo >= 2 && rng.range(0, 1) == 1;
    let (fh, fw) = if pool { (ho / 2, wo / 2) } else { (ho, wo) };
    let k = m * fh * fw;
    let n = rng.range(2, 8);
    let mut t = String::new();
    let _ = writeln!(t, "<\n   ir_version: 8,\n   opset_import: [\"\" : 17]\n>");
    let _ = writeln!(t, "g (float[1,{c},{h},{w}] x) => (float[1,{n}] y)");
    let _ = writeln!(
        t,
        "   <float[{m},{c},{kh},{kw}] w1 = {{{}}}, float[{m}] b1 = {{{}}}, float[{n},{k}] w2 = {{{}}}, float[{n}] b2 = {{{}}}>",
        rng.floats(m * c * kh * kw, 0.8),
        rng.floats(m, 0.2),
        rng.floats(n * k, 0.5),
        rng.floats(n, 0.2)
    );
    let _ = writeln!(t, "{{");
    let _ = writeln!(t, "   c1 = Conv <dilations: ints = [{dh}, {dw}], group: int = 1, kernel_shape: ints = [{kh}, {kw}], pads: ints = [{ph}, {pw}, {ph}, {pw}], strides: ints = [{sh}, {sw}]> (x, w1, b1)");
    let _ = writeln!(t, "   r1 = Relu (c1)");
    let flat_in = if pool {
        let _ = writeln!(
            t,
            "   p1 = MaxPool <kernel_shape: ints = [2, 2], strides: ints = [2, 2]> (r1)"
        );
        "p1"
    } else {
        "r1"
    };
    let _ = writeln!(t, "   f1 = Flatten <axis: int = 1> ({flat_in})");
    let _ = writeln!(
        t,
        "   y = Gemm <alpha: float = 1, beta: float = 1, transB: int = 1> (f1, w2, b2)"
    );
    let _ = writeln!(t, "}}");
    Case {
        text: t,
        what: format!(
            "conv {c}x{h}x{w} -> {m}, kernel {kh}x{kw}, stride {sh}x{sw}, pad {ph}x{pw}, dilation {dh}x{dw}{}, gemm {k} -> {n}",
            if pool { ", maxpool 2x2" } else { "" }
        ),
        inputs: c * h * w,
    }
}

fn run_case(seed: u64, rows: u32, cols: u32, dataflow: &str, bpc: f64, latency: u32, form: u8) {
    let mut rng = Rng(seed | 1);
    let cs = case(&mut rng);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("verilog-random-{seed:x}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("data.csv");
    let mut rows_csv = String::new();
    for _ in 0..16 {
        let v: Vec<String> = (0..cs.inputs)
            .map(|_| format!("{:.4}", rng.float()))
            .collect();
        let _ = writeln!(rows_csv, "0,{}", v.join(","));
    }
    std::fs::write(&csv, rows_csv).unwrap();
    let calib = csv.display().to_string();
    let quant = format!("quant(bits=8,per=channel,calib=\"{calib}\")");
    let spec = match form {
        0 => quant,
        1 => format!("pow2(bits=4),{quant}"),
        2 => format!("binarize(acts=true,keep=[first],calib=\"{calib}\"),{quant}"),
        _ => format!("binarize(acts=true,keep=[last],calib=\"{calib}\"),{quant}"),
    };
    let what = format!(
        "{} on {rows}x{cols} {dataflow}, {bpc} B/cycle, latency {latency}, form {form}",
        cs.what
    );
    let mut model = etch_ir::parse_model(cs.text.as_bytes()).unwrap();
    let calibrator = etch_sim::reference::calibrate::CsvCalibrator;
    let run = etch_ir::passes::RunOptions {
        verify_each: false,
        cx: etch_ir::passes::PassContext {
            calibrator: Some(&calibrator),
        },
    };
    etch_ir::verify::verify(&model).unwrap();
    etch_ir::passes::run_spec(&mut model, &spec, &run).unwrap_or_else(|e| panic!("{what}: {e}"));
    let info = etch_ir::verify::verify(&model).unwrap();
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
    let r = simulate(&dir, Simulator::Icarus).unwrap();
    assert!(
        r.passed,
        "{what}: {:?} {:?}\n{}",
        r.mismatch, r.error, r.log
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
