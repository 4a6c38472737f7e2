//! Shape inference on every op the front end supports, checked against onnx's own shape inference
//! (the expected dims in `infer_cases.txt` came from `onnx.shape_inference`, see its header).

use etch_ir::parse_model_str;
use etch_ir::verify::verify;

const HEADER: &str = "<\n   ir_version: 8,\n   opset_import: [\"\" : 17]\n>\n";

fn dims_text(info: &etch_ir::infer::GraphInfo, name: &str) -> String {
    let t = info
        .ty(name)
        .unwrap_or_else(|| panic!("`{name}` has no inferred type"));
    t.shape
        .as_ref()
        .expect("known rank")
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn inferred_shapes_match_onnx() {
    let cases = include_str!("infer_cases.txt");
    let mut n = 0;
    for line in cases
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let mut parts = line.splitn(3, " | ");
        let (name, want, body) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let model =
            parse_model_str(&format!("{HEADER}{body}")).unwrap_or_else(|e| panic!("{name}: {e}"));
        let info = verify(&model).unwrap_or_else(|e| panic!("{name}: {e}"));
        let outputs: Vec<&str> = model
            .graph
            .outputs
            .iter()
            .map(|o| o.name.as_str())
            .collect();
        let got: Vec<String> = outputs.iter().map(|o| dims_text(&info, o)).collect();
        assert_eq!(got.join("; "), want, "{name}");
        n += 1;
    }
    assert!(n >= 35, "only {n} cases ran");
}

#[test]
fn folded_shape_chains_are_constants() {
    let body = "g (float[1,116,28,28] x) => (int64[] y) { s = Shape (x) i = Constant <value: tensor = int64[1] {1}> () c = Gather <axis: int = 0> (s, i) y = Identity (c) }";
    let model = parse_model_str(&format!("{HEADER}{body}")).unwrap();
    let info = verify(&model).unwrap();
    assert_eq!(info.consts["c"].ints(), Some(vec![116]));
    assert_eq!(info.consts["y"].ints(), Some(vec![116]));
}

#[test]
fn unknown_ops_do_not_break_inference() {
    let body = "g (float[1,3,8,8] x) => (float[] y) { a = com.example.Custom (x) y = Relu (a) }";
    let model = parse_model_str(&format!("{HEADER}{body}")).unwrap();
    let info = verify(&model).unwrap();
    // y keeps only what the model declares: a float of unknown rank
    assert_eq!(info.ty("a"), None);
    assert_eq!(info.ty("y").unwrap().shape, None);
}

#[test]
fn declared_shapes_are_checked() {
    let body = "g (float[1,3,8,8] x) => (float[1,3,8,9] y) { y = Relu (x) }";
    let model = parse_model_str(&format!("{HEADER}{body}")).unwrap();
    let err = verify(&model).unwrap_err().to_string();
    assert!(
        err.contains("is computed as float[1,3,8,8] but the model declares it float[1,3,8,9]"),
        "{err}"
    );
}
