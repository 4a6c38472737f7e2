//! The printer reproduces onnx's own printed text byte for byte, and parse∘print is the identity.

use etch_ir::print::print_model;
use etch_ir::{parse_model, parse_model_str};

fn models() -> Vec<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/models");
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".onnx.txt"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(out.len() >= 7, "the example models are missing");
    out
}

#[test]
fn printer_matches_onnx_printer_byte_for_byte() {
    for (name, text) in models() {
        let m = parse_model_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let printed = print_model(&m);
        // onnx prints no final newline; the files were saved with one
        let text = text.strip_suffix('\n').unwrap_or(&text);
        if printed != text {
            let at = printed
                .bytes()
                .zip(text.bytes())
                .position(|(a, b)| a != b)
                .unwrap_or(printed.len().min(text.len()));
            panic!(
                "{name}: differs at byte {at}: ours {:?} vs onnx {:?}",
                &printed[at.saturating_sub(40)..(at + 40).min(printed.len())],
                &text[at.saturating_sub(40)..(at + 40).min(text.len())]
            );
        }
    }
}

#[test]
fn parse_print_parse_is_identity() {
    for (name, text) in models() {
        let m = parse_model_str(&text).unwrap();
        let again =
            parse_model(print_model(&m).as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(m, again, "{name}");
    }
}
