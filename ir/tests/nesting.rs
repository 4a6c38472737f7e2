//! Hostile nesting is an error, not a stack overflow.

use etch_ir::parse_model_str;

#[test]
fn deeply_nested_types_are_an_error() {
    let n = 100_000;
    let text = format!(
        "<ir_version: 8, opset_import: [\"\" : 17]> g ({}float{} x) => (float y) {{ y = Relu(x) }}",
        "seq(".repeat(n),
        ")".repeat(n)
    );
    let e = parse_model_str(&text).unwrap_err();
    assert!(e.message.contains("nest more than 64 levels"), "{e}");
}

#[test]
fn deeply_nested_subgraphs_are_an_error() {
    let n = 5_000;
    let text = format!(
        "<ir_version: 8, opset_import: [\"\" : 17]> g (bool c) => (float y) {{{}{}}}",
        " y = If (c) <then_branch: graph = g () => (float y) {".repeat(n),
        "}>".repeat(n)
    );
    let e = parse_model_str(&text).unwrap_err();
    assert!(e.message.contains("nest more than 64 levels"), "{e}");
}

#[test]
fn moderate_nesting_is_fine() {
    let text = format!("<ir_version: 8, opset_import: [\"\" : 17]> g ({}float[2]{} x) => (float y) {{ y = Relu(x) }}", "seq(".repeat(30), ")".repeat(30));
    parse_model_str(&text).unwrap();
}
