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
    let mut m = etch_ir::parse_model_str(&text).unwrap();
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

fn matches_cpu(name: &str, spec: &str) {
    let spec = spec.replace(
        "CALIB",
        &format!("\"{ROOT}/examples/data/digits_train.csv\""),
    );
    let model = compressed(name, &spec);
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
