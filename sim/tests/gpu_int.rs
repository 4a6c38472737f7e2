//! Quantized models on the GPU against the CPU executor's integer datapath: the digits models
//! after int8, int4, power-of-two and binarizing passes, every test row, outputs equal bit for bit
//! (the integer codes are equal, and the dequantizing multiply is the same IEEE operation).
//!
//! Like `gpu.rs`, these need a GPU adapter (Mesa's lavapipe without a GPU) and fail without one.

use etch_ir::passes::{run_spec, PassContext, RunOptions};
use etch_ir::Model;
use etch_sim::reference::calibrate::{read_samples, CsvCalibrator};
use etch_sim::reference::cpu::Plan;
use etch_sim::reference::gpu::GpuPlan;
use etch_sim::reference::{Array, Value};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn compressed(name: &str, spec: &str) -> Model {
    let text = std::fs::read_to_string(format!("{ROOT}/examples/models/{name}.onnx.txt")).unwrap();
    compressed_text(name, &text, spec)
}

fn compressed_text(name: &str, text: &str, spec: &str) -> Model {
    let mut m = etch_ir::parse_model_str(text).unwrap();
    let cal = CsvCalibrator;
    let opts = RunOptions {
        verify_each: true,
        cx: PassContext {
            calibrator: Some(&cal),
        },
    };
    run_spec(&mut m, spec, &opts).unwrap_or_else(|e| panic!("{name} {spec}: {e}"));
    m
}

fn bits(v: &Value) -> Vec<u64> {
    match v {
        Value::F32(a) => a.data.iter().map(|x| x.to_bits() as u64).collect(),
        Value::I64(a) => a.data.iter().map(|&q| q as u64).collect(),
    }
}

fn with_calib(spec: &str) -> String {
    spec.replace(
        "CALIB",
        &format!("\"{ROOT}/examples/data/digits_train.csv\""),
    )
}

fn matches_cpu(name: &str, spec: &str) {
    let spec = with_calib(spec);
    matches_cpu_model(name, &spec, compressed(name, &spec));
}

fn matches_cpu_model(name: &str, spec: &str, model: Model) {
    let info = etch_ir::verify::verify(&model).unwrap();
    let cpu = Plan::new(&model, &info).unwrap();
    assert!(
        !cpu.integer_steps().is_empty(),
        "{name} {spec}: no layer runs in integers"
    );
    let gpu = GpuPlan::new(&model, &info).unwrap_or_else(|e| panic!("{e}"));
    let input = cpu.inputs().next().unwrap();
    let shape: Vec<usize> = input
        .dims
        .iter()
        .map(|d| d.known().unwrap_or(1) as usize)
        .collect();
    let rows = read_samples(&format!("{ROOT}/examples/data/digits_test.csv"), 64, 360).unwrap();
    for (row, (_, x)) in rows.iter().enumerate() {
        let given = vec![(
            input.name.clone(),
            Value::F32(Array::new(shape.clone(), x.clone())),
        )];
        let (c, g) = (
            cpu.run(given.clone()).unwrap(),
            gpu.run(given)
                .unwrap_or_else(|e| panic!("{name} {spec}: GPU: {e}")),
        );
        for ((out, c), (_, g)) in c.iter().zip(&g) {
            assert_eq!(
                bits(c),
                bits(g),
                "{name} {spec}: output `{out}` of test row {row}: CPU {c:?}, GPU {g:?}"
            );
        }
    }
}

#[test]
fn int8_per_channel() {
    for m in ["digits_cnn", "digits_mlp"] {
        matches_cpu(m, "quant(bits=8,per=channel,calib=CALIB)");
    }
}

#[test]
fn int4_weights_and_activations_per_tensor() {
    for m in ["digits_cnn", "digits_mlp"] {
        matches_cpu(m, "quant(bits=4,act_bits=4,per=tensor,calib=CALIB)");
    }
}

#[test]
fn power_of_two_weights() {
    for m in ["digits_cnn", "digits_mlp"] {
        matches_cpu(m, "pow2(bits=4),quant(bits=8,per=channel,calib=CALIB)");
    }
}

#[test]
fn binarized_xnor_layers() {
    matches_cpu(
        "digits_cnn",
        "binarize(acts=true,keep=[first,last],calib=CALIB),quant(bits=8,per=channel,calib=CALIB)",
    );
}

/// A hand-written QDQ Gemm whose output scale sets the requantization multiplier: from above 0.5
/// (a shift below 32, the low word of the 64-bit product) to far below (saturating codes).
#[test]
fn requantization_across_multipliers() {
    for sy in ["0.7", "0.3", "3.0", "20.0", "7000.0"] {
        let text = format!(
            "<ir_version: 9, opset_import: [\"\" : 21]>
g (float[4,16] x) => (float[4,8] y)
<int8[8,16] w = {{-127, -90, -53, -16, 21, 58, 95, -123, -86, -49, -12, 25, 62, 99, -119, -82, -45, -8, 29, 66, 103, -115, -78, -41, -4, 33, 70, 107, -111, -74, -37, 0, 37, 74, 111, -107, -70, -33, 4, 41, 78, 115, -103, -66, -29, 8, 45, 82, 119, -99, -62, -25, 12, 49, 86, 123, -95, -58, -21, 16, 53, 90, 127, -91, -54, -17, 20, 57, 94, -124, -87, -50, -13, 24, 61, 98, -120, -83, -46, -9, 28, 65, 102, -116, -79, -42, -5, 32, 69, 106, -112, -75, -38, -1, 36, 73, 110, -108, -71, -34, 3, 40, 77, 114, -104, -67, -30, 7, 44, 81, 118, -100, -63, -26, 11, 48, 85, 122, -96, -59, -22, 15, 52, 89, 126, -92, -55, -18}}, float sw = {{0.5}}, float sx = {{1.0}}, float sy = {{{sy}}}, int8 zx = {{0}}, int8 zy = {{3}}, int32[8] b = {{-300, 200, -100, 0, 100, 200, 300, 40000}}>
{{
   xq = QuantizeLinear (x, sx, zx)
   xd = DequantizeLinear (xq, sx, zx)
   wd = DequantizeLinear (w, sw)
   bd = DequantizeLinear (b, sw)
   a = Gemm <transB: int = 1> (xd, wd, bd)
   aq = QuantizeLinear (a, sy, zy)
   y = DequantizeLinear (aq, sy, zy)
}}"
        );
        let model = etch_ir::parse_model_str(&text).unwrap();
        let info = etch_ir::verify::verify(&model).unwrap();
        let cpu = Plan::new(&model, &info).unwrap();
        assert_eq!(
            cpu.integer_steps().len(),
            1,
            "sy {sy}: the Gemm runs in integers"
        );
        let gpu = GpuPlan::new(&model, &info).unwrap_or_else(|e| panic!("{e}"));
        let mut s = 0x2545_f491_4f6c_dd1du64;
        for range in [1.2f32, 6.0, 250.0] {
            let x: Vec<f32> = (0..64)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * range
                })
                .collect();
            let given = vec![("x".to_string(), Value::F32(Array::new(vec![4, 16], x)))];
            let (c, g) = (cpu.run(given.clone()).unwrap(), gpu.run(given).unwrap());
            assert_eq!(
                bits(&c[0].1),
                bits(&g[0].1),
                "sy {sy}, inputs within ±{range}"
            );
        }
    }
}

#[test]
fn residual_add_on_codes() {
    matches_cpu(
        "digits_res",
        "fold-bn,quant(bits=8,per=channel,calib=CALIB)",
    );
}

/// Two branches concatenated on codes (one scale for the inputs and the result), then a layer.
#[test]
fn concat_on_codes() {
    let text = r#"<
   ir_version: 8,
   opset_import: ["" : 17]
>
g (float[1,1,8,8] x) => (float[1,10] y)
   <float[2,1,3,3] wa = {0.3,-0.2,0.1,0.4,0.5,-0.3,0.2,0.1,-0.4,-0.1,0.2,0.3,-0.5,0.4,0.1,0.2,-0.2,0.3}, float[2] ba = {0.1,-0.1}, float[3,1,1,1] wb = {0.7,-0.5,0.4}, float[3] bb = {0.0,0.1,-0.2}, float[10,320] wf = {FC}, float[10] bf = {0,0,0,0,0,0,0,0,0,0}>
{
   a = Conv <kernel_shape: ints = [3, 3], pads: ints = [1, 1, 1, 1]> (x, wa, ba)
   ar = Relu (a)
   b = Conv <kernel_shape: ints = [1, 1]> (x, wb, bb)
   br = Relu (b)
   c = Concat <axis: int = 1> (ar, br)
   f = Flatten <axis: int = 1> (c)
   y = Gemm <transB: int = 1> (f, wf, bf)
}
"#;
    let fc: Vec<String> = (0..3200)
        .map(|k| format!("{:.3}", ((k * 37 % 101) as f32 - 50.0) / 400.0))
        .collect();
    let text = text.replace("FC", &fc.join(","));
    let spec = with_calib("quant(bits=8,per=channel,calib=CALIB)");
    let model = compressed_text("concat", &text, &spec);
    let info = etch_ir::verify::verify(&model).unwrap();
    let steps = Plan::new(&model, &info).unwrap().integer_steps();
    assert!(
        steps.iter().any(|s| s == "c"),
        "the Concat runs on codes: {steps:?}"
    );
    matches_cpu_model("concat", &spec, model);
}

/// Activations that run as tables of codes (Sigmoid, HardSwish) between quantized layers.
#[test]
fn activation_tables_on_codes() {
    let text = r#"<
   ir_version: 8,
   opset_import: ["" : 17]
>
g (float[1,1,8,8] x) => (float[1,10] y)
   <float[3,1,3,3] wa = {0.3,-0.2,0.1,0.4,0.5,-0.3,0.2,0.1,-0.4,-0.1,0.2,0.3,-0.5,0.4,0.1,0.2,-0.2,0.3,0.1,0.1,-0.3,0.2,0.4,-0.1,0.3,-0.2,0.2}, float[3] ba = {0.1,-0.1,0.2}, float[10,192] wf = {FC}, float[10] bf = {0,0,0,0,0,0,0,0,0,0}>
{
   a = Conv <kernel_shape: ints = [3, 3], pads: ints = [1, 1, 1, 1]> (x, wa, ba)
   s = Sigmoid (a)
   h = HardSwish (s)
   f = Flatten <axis: int = 1> (h)
   y = Gemm <transB: int = 1> (f, wf, bf)
}
"#;
    let fc: Vec<String> = (0..1920)
        .map(|k| format!("{:.3}", ((k * 37 % 101) as f32 - 50.0) / 300.0))
        .collect();
    let text = text.replace("FC", &fc.join(","));
    let spec = with_calib("quant(bits=8,per=channel,calib=CALIB)");
    let model = compressed_text("tables", &text, &spec);
    let info = etch_ir::verify::verify(&model).unwrap();
    let steps = Plan::new(&model, &info).unwrap().integer_steps();
    for t in ["s", "h"] {
        assert!(
            steps.iter().any(|s| s == t),
            "`{t}` runs on codes: {steps:?}"
        );
    }
    matches_cpu_model("tables", &spec, model);
}
