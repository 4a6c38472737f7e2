//! `etch eval --backend gpu` reproduces the reference accuracies of the digits models (REFERENCE.tsv,
//! onnxruntime; qonnx for the trained low-bit ones), and a machine without a GPU adapter gets a clear error, not a panic. These tests
//! need an adapter (Mesa's lavapipe where there is no GPU) and fail without one.

use std::process::{Command, Output};

fn etch(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_etch"));
    cmd.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn eval_on_the_gpu_matches_the_reference_accuracy() {
    // the trained low-bit models (imported into integer layers) at qonnx's and onnxruntime's
    // top-1 (scripts/qonnx_check.py)
    for (model, correct) in [
        ("digits_cnn.onnx.txt", 344),
        ("digits_mlp.onnx.txt", 330),
        ("qat_w1a1_mlp.onnx", 343),
        ("qat_w4a4_resdw.onnx", 347),
        ("qat_int4_qcdq_cnn.onnx", 343),
    ] {
        let path = format!("examples/models/{model}");
        let out = etch(
            &[
                "eval",
                &path,
                "--data",
                "examples/data/digits_test.csv",
                "--backend",
                "gpu",
                "--json",
            ],
            &[],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{model}: {stderr}");
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{model}: {e}"));
        assert_eq!(report["samples"], 360, "{model}");
        let right = report["top1"].as_f64().map(|t| (t * 360.0).round() as u32);
        assert_eq!(right, Some(correct), "{model}: expected {correct}/360");
    }
}

#[test]
fn no_adapter_is_a_clear_error() {
    // WGPU_BACKEND=noop asks wgpu for a backend it does not enable: no adapter on any machine
    let out = etch(
        &[
            "eval",
            "examples/models/digits_mlp.onnx.txt",
            "--data",
            "examples/data/digits_test.csv",
            "--backend",
            "gpu",
        ],
        &[("WGPU_BACKEND", "noop")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("no GPU adapter was found"), "{stderr}");
    assert!(
        stderr.contains("apt-get install mesa-vulkan-drivers"),
        "{stderr}"
    );
    assert!(
        stderr.contains("WGPU_BACKEND is set to \"noop\""),
        "{stderr}"
    );
}
