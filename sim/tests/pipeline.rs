//! The pipeline as a library call: its notes are data, its errors are typed and keep what locates
//! them, and its lower step gives the program `etch sim` times.

use etch_hw::Accelerator;
use etch_ir::passes::PassError;
use etch_program::tiling::Objective;
use etch_sim::pipeline::{Note, Pipeline, PipelineError, Source};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const HEAD: &str = "<ir_version: 8, opset_import: [\"\" : 17]>\n";

fn text(body: &str) -> Source {
    Source::new("m.onnx.txt", format!("{HEAD}{body}"))
}

#[test]
fn shape_only_weights_are_filled_with_a_note() {
    let src = Source::read(&format!("{ROOT}/examples/models/resnet18.onnx.txt")).unwrap();
    let mut notes = Vec::new();
    let p = Pipeline {
        fill: true,
        seed: 3,
        ..Default::default()
    }
    .run(&src, &mut notes)
    .unwrap();
    assert!(p.reports.is_empty());
    match notes.as_slice() {
        [n @ Note::Filled { seed: 3, .. }] => {
            assert!(n.to_string().starts_with("note: filled "), "{n}")
        }
        other => panic!("{other:?}"),
    }
    // without `fill` nothing is filled and nothing is said
    let mut notes = Vec::new();
    Pipeline::default().run(&src, &mut notes).unwrap();
    assert!(notes.is_empty(), "{notes:?}");
}

#[test]
fn unknown_shapes_are_refused_unless_allowed() {
    let src = text(
        "g (float[1,8] x, float[8,8] w) => (float[1,8] y) {\n f = FrobnicateV9(x)\n y = MatMul(f, w) }",
    );
    let e = Pipeline::default().run(&src, &mut Vec::new()).unwrap_err();
    match &e {
        PipelineError::Incomplete { node, span, .. } => {
            assert_eq!(node, "f");
            assert!(span.line > 0);
        }
        other => panic!("{other:?}"),
    }
    let mut notes = Vec::new();
    Pipeline {
        allow_partial: true,
        ..Default::default()
    }
    .run(&src, &mut notes)
    .unwrap();
    assert!(
        matches!(notes.as_slice(), [Note::Partial { op, .. }] if op == "FrobnicateV9"),
        "{notes:?}"
    );
}

#[test]
fn errors_keep_their_locations() {
    let e = Pipeline::default()
        .run(
            &text("g (float[1,8] x) => (float[1,8] y) {\n y = Relu(x, }"),
            &mut Vec::new(),
        )
        .unwrap_err();
    assert!(
        matches!(e, PipelineError::Parse(ref p) if p.line == 3),
        "{e:?}"
    );
    let e = Pipeline {
        passes: Some("fold-bn,prune(sparsity=)"),
        ..Default::default()
    }
    .run(
        &text("g (float[1,8] x) => (float[1,8] y) {\n y = Relu(x) }"),
        &mut Vec::new(),
    )
    .unwrap_err();
    match e {
        PipelineError::Passes {
            error: PassError::Spec(s),
            spec,
        } => assert!(s.render(&spec).contains('^')),
        other => panic!("{other:?}"),
    }
    let e = Pipeline::default()
        .load("/nonexistent/m.onnx.txt")
        .unwrap_err();
    assert!(matches!(e, PipelineError::Read(_)), "{e:?}");
}

#[test]
fn lowers_to_the_program_sim_times() {
    let p = Pipeline::default()
        .load(&format!("{ROOT}/examples/models/digits_cnn.onnx.txt"))
        .unwrap();
    let acc = Accelerator::from_file(&format!("{ROOT}/examples/hw/ws-16x16-int8.ron")).unwrap();
    let prog = p.lower(&acc, 1, Objective::Latency).unwrap();
    let direct = etch_program::compile(&p.model, &p.info, &acc, 1, Objective::Latency).unwrap();
    assert_eq!(prog.insns.len(), direct.insns.len());
    assert!(!prog.layers.is_empty());
}
