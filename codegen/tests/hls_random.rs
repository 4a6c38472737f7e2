//! Random small Conv → ReLU → [MaxPool] → Flatten → Gemm models (random channels, extents, kernel,
//! stride, padding, dilation; random weights), quantized as int8, power-of-two or binarized, emitted
//! as HLS C++ and checked bit for bit in C simulation against the CPU executor. Seeded: the same
//! cases every run.

use std::fmt::Write;
use std::path::PathBuf;

use etch_codegen::gxx;
use etch_codegen::hls::{self, Options};
use etch_codegen::program::{golden, lower, IntOp, WeightCodes};

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

#[test]
fn random_conv_gemm_models_are_bit_exact_in_c_simulation() {
    let mut rng = Rng(0x5eed_1234_abcd_0042);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hls-random");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..9 {
        let cs = case(&mut rng);
        // calibration and test rows: label, then inputs in [0, 1)
        let csv = dir.join(format!("case{i}.csv"));
        let mut rows = String::new();
        for _ in 0..24 {
            let v: Vec<String> = (0..cs.inputs)
                .map(|_| format!("{:.4}", rng.float()))
                .collect();
            let _ = writeln!(rows, "0,{}", v.join(","));
        }
        std::fs::write(&csv, rows).unwrap();
        let calib = csv.display().to_string();
        let quant = format!("quant(bits=8,per=channel,calib=\"{calib}\")");
        let (form, spec) = match i % 3 {
            0 => ("int8", quant.clone()),
            1 => ("pow2", format!("pow2(bits=4),{quant}")),
            // binarize the Gemm (binary weights and activations: XNOR-popcount), or the Conv
            _ if rng.range(0, 1) == 0 => (
                "binary gemm",
                format!("binarize(acts=true,keep=[first],calib=\"{calib}\"),{quant}"),
            ),
            _ => (
                "binary conv",
                format!("binarize(acts=true,keep=[last],calib=\"{calib}\"),{quant}"),
            ),
        };
        let what = format!("case {i} ({form}): {}", cs.what);
        let mut model =
            etch_ir::parse_model(cs.text.as_bytes()).unwrap_or_else(|e| panic!("{what}: {e:?}"));
        etch_ir::verify::verify(&model).unwrap_or_else(|e| panic!("{what}: {e}"));
        let calibrator = etch_sim::reference::calibrate::CsvCalibrator;
        let run = etch_ir::passes::RunOptions {
            verify_each: false,
            cx: etch_ir::passes::PassContext {
                calibrator: Some(&calibrator),
            },
        };
        etch_ir::passes::run_spec(&mut model, &spec, &run)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let info = etch_ir::verify::verify(&model).unwrap();
        let program = lower(&model, &info).unwrap_or_else(|e| panic!("{what}: {e}"));
        let gold = golden(&model, &info, &program, &calib, 24).unwrap();
        let files = hls::emit(
            &program,
            &Options {
                model: format!("random case {i}"),
                input_range: hls::input_range(&info, &program),
            },
            &gold,
        )
        .unwrap_or_else(|e| panic!("{what}: {e}"));
        let case_dir = dir.join(format!("case{i}"));
        hls::write(&case_dir, &files).unwrap();
        let r = gxx::csim(&case_dir).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            r.bit_exact,
            "{what}: {}",
            r.first_mismatch.map(|m| m.message).unwrap_or_default()
        );
        let kinds: Vec<&str> = program
            .steps
            .iter()
            .map(|s| match &s.op {
                IntOp::Conv { layer, .. } | IntOp::Gemm { layer } => match layer.weights {
                    WeightCodes::Mac(_) => "mac",
                    WeightCodes::Shift(_) => "shift",
                    WeightCodes::Xnor { .. } => "xnor",
                },
                IntOp::MaxPool { .. } => "maxpool",
                IntOp::Reshape => "reshape",
            })
            .collect();
        // the case exercises the kernel it is named for
        let want = match form {
            "int8" => "mac",
            "pow2" => "shift",
            _ => "xnor",
        };
        assert!(kinds.contains(&want), "{what}: steps {kinds:?}");
        eprintln!(
            "{what}: {} output codes bit-exact, steps {kinds:?}",
            r.outputs
        );
    }
}
