//! Random small Conv → ReLU → [MaxPool] → Flatten → Gemm models (`common::random`: random
//! channels, extents, kernel, stride, padding, dilation; random weights), quantized as int8,
//! power-of-two or binarized, emitted as HLS C++ and checked bit for bit in C simulation against
//! the CPU executor. Seeded: the same cases every run.

mod common;

use std::path::PathBuf;

use common::random::{quantized, Rng, FORMS};
use etch_codegen::gxx;
use etch_codegen::hls::{self, Options};
use etch_codegen::program::{golden, lower, IntOp, WeightCodes};

#[test]
fn random_conv_gemm_models_are_bit_exact_in_c_simulation() {
    let mut rng = Rng(0x5eed_1234_abcd_0042);
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hls-random");
    let _ = std::fs::remove_dir_all(&root);
    for i in 0..10 {
        let form = i % FORMS.len();
        let dir = root.join(format!("case{i}"));
        let q = quantized(&mut rng, &dir, 24, form);
        let what = format!("case {i}: {}", q.what);
        let program = lower(&q.model, &q.info).unwrap_or_else(|e| panic!("{what}: {e}"));
        let gold = golden(&q.model, &q.info, &program, &q.csv, 24).unwrap();
        let files = hls::emit(
            &program,
            &Options {
                model: format!("random case {i}"),
                input_range: hls::input_range(&q.info, &program),
            },
            &gold,
        )
        .unwrap_or_else(|e| panic!("{what}: {e}"));
        hls::write(&dir, &files).unwrap();
        let r = gxx::csim(&dir, &program.output, &program.output_shape)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            r.verdict.bit_exact,
            "{what}: {}",
            r.verdict
                .first_mismatch
                .map(|m| m.message)
                .unwrap_or_default()
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
                IntOp::Add { .. } => "add",
                IntOp::Concat => "concat",
                IntOp::Table { .. } => "table",
                IntOp::Reshape => "reshape",
            })
            .collect();
        // the case exercises the kernel it is named for
        let want = ["mac", "shift", "xnor", "xnor"][form];
        assert!(kinds.contains(&want), "{what}: steps {kinds:?}");
        eprintln!(
            "{what}: {} output codes bit-exact, steps {kinds:?}",
            r.verdict.outputs
        );
    }
}
