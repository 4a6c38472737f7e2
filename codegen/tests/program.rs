//! The integer program of the digits models and its golden codes.

mod common;

use etch_codegen::program::{golden, lower, IntOp, ProgramError};

#[test]
fn digits_models_lower_to_integer_programs() {
    for name in ["digits_cnn", "digits_mlp"] {
        for (what, spec) in common::specs(name) {
            let (model, info) = common::model(name, &spec);
            let p = lower(&model, &info).unwrap_or_else(|e| panic!("{name} {what}: {e}"));
            let kinds: Vec<String> = p
                .steps
                .iter()
                .map(|s| match &s.op {
                    IntOp::Conv { layer, .. } | IntOp::Gemm { layer } => format!(
                        "{}:{}",
                        s.name,
                        match layer.weights {
                            etch_codegen::program::WeightCodes::Mac(_) => "mac",
                            etch_codegen::program::WeightCodes::Shift(_) => "shift",
                            etch_codegen::program::WeightCodes::Xnor { .. } => "xnor",
                        }
                    ),
                    IntOp::MaxPool { .. } => "maxpool".into(),
                    IntOp::Reshape => "reshape".into(),
                })
                .collect();
            eprintln!("{name} {what}: {kinds:?}");
            let g = golden(&model, &info, &p, &common::test_csv(), 3).unwrap();
            assert_eq!(g.len(), 3);
            for s in &g {
                assert_eq!(s.input.len(), p.input_shape.iter().product::<usize>());
                assert_eq!(s.output.len(), 10);
                assert_eq!(s.steps.len(), p.steps.len());
                assert_eq!(s.steps.last(), Some(&s.output));
            }
        }
    }
}

#[test]
fn a_float_model_is_refused() {
    let path = format!("{}/examples/models/digits_mlp.onnx.txt", common::root());
    let model = etch_ir::parse_model(&std::fs::read(path).unwrap()).unwrap();
    let info = etch_ir::verify::verify(&model).unwrap();
    assert_eq!(lower(&model, &info), Err(ProgramError::NotQuantized));
}

#[test]
fn binarizing_both_layers_of_the_mlp_is_refused_by_the_pass() {
    let calib = format!("{}/examples/data/digits_train.csv", common::root());
    let path = format!("{}/examples/models/digits_mlp.onnx.txt", common::root());
    let mut model = etch_ir::parse_model(&std::fs::read(path).unwrap()).unwrap();
    let csv = etch_sim::reference::calibrate::CsvCalibrator;
    let run = etch_ir::passes::RunOptions {
        verify_each: false,
        cx: etch_ir::passes::PassContext {
            calibrator: Some(&csv),
        },
    };
    let e = etch_ir::passes::run_spec(
        &mut model,
        &format!("binarize(acts=true,keep=[first,last],calib=\"{calib}\")"),
        &run,
    )
    .unwrap_err();
    assert!(e.to_string().contains("nothing is left to binarize"), "{e}");
}
