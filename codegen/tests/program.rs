//! The integer program of the digits models and its golden codes.

mod common;

use etch_codegen::program::{golden, lower, IntOp, ProgramError};
use etch_ir::passes::PassError;
use etch_sim::pipeline::{Pipeline, PipelineError, Source};

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
                    IntOp::Add { .. } => "add".into(),
                    IntOp::Concat => "concat".into(),
                    IntOp::Table { .. } => "table".into(),
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

/// The residual digits net: its Add reads the block's input and the second convolution's
/// output, both written by earlier steps; the layer-chain hardware refuses it, naming the Add.
#[test]
fn a_residual_add_is_a_step_on_two_earlier_outputs() {
    let calib = format!("{}/examples/data/digits_train.csv", common::root());
    let spec = format!("fold-bn,quant(bits=8,per=channel,calib=\"{calib}\")");
    let (model, info) = common::model("digits_res", &spec);
    let p = lower(&model, &info).unwrap();
    let (k, add) = p
        .steps
        .iter()
        .enumerate()
        .find(|(_, s)| matches!(s.op, IntOp::Add { .. }))
        .expect("an Add step");
    let second = add.more.first().expect("its second operand");
    let writer = |v: &str| p.steps[..k].iter().position(|s| s.output == v);
    assert_eq!(
        writer(&add.input),
        Some(k - 1),
        "the first operand is the previous step's"
    );
    assert!(
        writer(second).is_some_and(|w| w < k - 1),
        "the second is an earlier step's"
    );
    let g = golden(&model, &info, &p, &common::test_csv(), 2).unwrap();
    assert_eq!(g[0].output.len(), 10);
    let e = p.check_layer_chain().unwrap_err();
    assert!(e.to_string().contains("residual Add"), "{e}");
}

#[test]
fn a_float_model_is_refused() {
    let path = format!("{}/examples/models/digits_mlp.onnx.txt", common::root());
    let p = Pipeline::default().load(&path).unwrap();
    assert_eq!(lower(&p.model, &p.info), Err(ProgramError::NotQuantized));
}

#[test]
fn binarizing_both_layers_of_the_mlp_is_refused_by_the_pass() {
    let calib = format!("{}/examples/data/digits_train.csv", common::root());
    let path = format!("{}/examples/models/digits_mlp.onnx.txt", common::root());
    let spec = format!("binarize(acts=true,keep=[first,last],calib=\"{calib}\")");
    let e = Pipeline {
        passes: Some(&spec),
        ..Default::default()
    }
    .load(&path)
    .unwrap_err();
    assert!(
        matches!(
            &e,
            PipelineError::Passes {
                error: PassError::Precondition { .. } | PassError::Failed { .. },
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("nothing is left to binarize"), "{e}");
}

#[test]
fn a_float_op_between_integer_layers_is_named() {
    // Conv → Softmax → Flatten → Gemm: quant makes both layers integer, the Softmax stays float
    let text = r#"<
   ir_version: 8,
   opset_import: ["" : 17]
>
g (float[1,1,4,4] x) => (float[1,3] y)
   <float[2,1,3,3] w1 = {0.1,-0.2,0.3,0.4,-0.5,0.6,0.7,-0.8,0.9,-0.1,0.2,-0.3,0.4,0.5,-0.6,0.7,0.8,-0.9}, float[2] b1 = {0.1,-0.1}, float[3,8] w2 = {0.1,0.2,-0.3,0.4,0.5,-0.6,0.7,0.8,-0.1,0.2,0.3,-0.4,0.5,0.6,-0.7,0.8,0.1,-0.2,0.3,0.4,-0.5,0.6,0.7,-0.8}, float[3] b2 = {0.0,0.1,-0.1}>
{
   c1 = Conv <kernel_shape: ints = [3, 3], pads: ints = [0, 0, 0, 0], strides: ints = [1, 1]> (x, w1, b1)
   s1 = Softmax <axis: int = 1> (c1)
   f1 = Flatten <axis: int = 1> (s1)
   y = Gemm <alpha: float = 1, beta: float = 1, transB: int = 1> (f1, w2, b2)
}
"#;
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let csv = dir.join("float-middle.csv");
    let rows: String = (0..8)
        .map(|r| {
            let v: Vec<String> = (0..16)
                .map(|k| format!("{:.3}", ((r * 7 + k * 3) % 11) as f32 / 10.0))
                .collect();
            format!("0,{}\n", v.join(","))
        })
        .collect();
    std::fs::write(&csv, rows).unwrap();
    let spec = format!("quant(bits=8,per=channel,calib=\"{}\")", csv.display());
    let p = Pipeline {
        passes: Some(&spec),
        ..Default::default()
    }
    .run(&Source::new("float-middle.onnx.txt", text), &mut Vec::new())
    .unwrap();
    let e = lower(&p.model, &p.info).unwrap_err();
    assert!(
        matches!(&e, ProgramError::FloatInMiddle { node, op, .. } if op == "Softmax" && node == "s1"),
        "{e}"
    );
    eprintln!("{e}");
}
