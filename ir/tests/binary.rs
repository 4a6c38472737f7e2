//! Binary `.onnx` files read into the same IR as their ONNX text (fixtures written by onnx 1.23
//! with raw_data weights, as exporters store them: scripts/make_binary_fixtures.py).

use etch_ir::front::onnx_proto::{read_model, ProtoError};
use etch_ir::parse_model_str;

fn check(name: &str) {
    let dir = env!("CARGO_MANIFEST_DIR");
    let bytes = std::fs::read(format!("{dir}/tests/binary/{name}.onnx")).unwrap();
    let text =
        std::fs::read_to_string(format!("{dir}/../examples/models/{name}.onnx.txt")).unwrap();
    let from_binary = read_model(&bytes).unwrap();
    let from_text = parse_model_str(&text).unwrap();
    assert_eq!(from_binary, from_text, "{name}");
    etch_ir::verify::verify(&from_binary).unwrap();
}

#[test]
fn binary_and_text_give_the_same_model() {
    check("digits_cnn");
    check("squeezenet1_1");
}

#[test]
fn garbage_is_a_clear_error() {
    let e = read_model(b"\x0b\xff\xff\xff garbage").unwrap_err();
    assert!(matches!(e, ProtoError::Decode(_)), "{e}");
    assert!(e.to_string().contains("not an ONNX protobuf file"));
    let truncated = &std::fs::read(format!(
        "{}/tests/binary/digits_cnn.onnx",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()[..5000];
    assert!(read_model(truncated).is_err());
}
