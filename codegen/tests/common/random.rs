//! The random small models of the HLS and Verilog property tests, and their quantization.

use std::fmt::Write;
use std::path::Path;

use etch_ir::infer::GraphInfo;
use etch_ir::Model;

/// xorshift64*: deterministic cases without a dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
    pub fn float(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    pub fn floats(&mut self, n: usize, scale: f32) -> String {
        let v: Vec<String> = (0..n)
            .map(|_| format!("{:.5}", (self.float() * 2.0 - 1.0) * scale))
            .collect();
        v.join(",")
    }
}

/// A random model: its ONNX text, a description, and its input count.
pub struct Case {
    pub text: String,
    pub what: String,
    pub inputs: usize,
}

/// Conv → ReLU → [MaxPool 2×2] → Flatten → Gemm with random channels (1–4 in, 1–6 out), extents
/// (3–9), kernel (1–3), stride (1–2), padding, dilation (1–2), Gemm outputs (2–8) and weights.
pub fn case(rng: &mut Rng) -> Case {
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

/// The compressions a random case is put through: int8, power-of-two 4-bit, or binarized (the
/// Gemm with `keep=[first]`, the Conv with `keep=[last]`; binary weights and activations), each
/// then int8-quantized.
pub const FORMS: [&str; 4] = ["int8", "pow2", "binary gemm", "binary conv"];

/// A random case quantized in form `form` (an index into [`FORMS`]), calibrated on `rows` random
/// rows in [0, 1) written to `dir/data.csv` (also the test inputs).
pub struct Quantized {
    pub model: Model,
    pub info: GraphInfo,
    pub csv: String,
    pub what: String,
}

pub fn quantized(rng: &mut Rng, dir: &Path, rows: usize, form: usize) -> Quantized {
    let cs = case(rng);
    std::fs::create_dir_all(dir).unwrap();
    let csv = dir.join("data.csv");
    let mut text = String::new();
    for _ in 0..rows {
        let v: Vec<String> = (0..cs.inputs)
            .map(|_| format!("{:.4}", rng.float()))
            .collect();
        let _ = writeln!(text, "0,{}", v.join(","));
    }
    std::fs::write(&csv, text).unwrap();
    let calib = csv.display().to_string();
    let quant = format!("quant(bits=8,per=channel,calib=\"{calib}\")");
    let spec = match form {
        0 => quant,
        1 => format!("pow2(bits=4),{quant}"),
        2 => format!("binarize(acts=true,keep=[first],calib=\"{calib}\"),{quant}"),
        _ => format!("binarize(acts=true,keep=[last],calib=\"{calib}\"),{quant}"),
    };
    let what = format!("{} ({})", cs.what, FORMS[form.min(3)]);
    let (model, info) =
        super::passes(cs.text.as_bytes(), &spec).unwrap_or_else(|e| panic!("{what}: {e}"));
    Quantized {
        model,
        info,
        csv: calib,
        what,
    }
}
