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

#[test]
fn deeply_nested_spec_lists_are_an_error() {
    let n = 30_000;
    let spec = format!("quant(keep={}first{})", "[".repeat(n), "]".repeat(n));
    let e = etch_ir::passes::spec::parse_spec(&spec).unwrap_err();
    assert!(e.message.contains("nest more than 64 levels"), "{e}");
    assert_eq!(e.at, 11 + 64);
    etch_ir::passes::spec::parse_spec("binarize(keep=[[first],[last]])").unwrap();
}

/// A long chain prints and reads back without recursing on its length.
#[test]
fn a_long_chain_prints() {
    let n = 200_000;
    let mut text = String::from(
        "<ir_version: 8, opset_import: [\"\" : 17]> g (float[4] x0) => (float[4] y) {\n",
    );
    for k in 0..n {
        text.push_str(&format!("x{} = Relu(x{k})\n", k + 1));
    }
    text.push_str(&format!("y = Relu(x{n})\n}}\n"));
    let model = parse_model_str(&text).unwrap();
    etch_ir::verify::verify(&model).unwrap();
    let printed = etch_ir::print::print_model(&model);
    assert!(printed.contains(&format!("x{n} = Relu")));
}
