//! The grammar examples of ONNX-TEXT.md: onnx's printed forms come back byte for byte, and the
//! hand-written form parses to the same model as its onnx-normalised print.

use etch_ir::print::print_model;
use etch_ir::{parse_model_str, AttrValue, Model};

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/syntax/{name}.onnx.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn parse(name: &str) -> Model {
    parse_model_str(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn onnx_printed_examples_print_back_byte_for_byte() {
    for name in [
        "ex1_mlp_printed",
        "ex2_convblock_printed",
        "ex3_controlflow_printed",
        "ex5_handwritten_printed",
    ] {
        let text = fixture(name);
        let printed = print_model(&parse(name));
        assert_eq!(printed, text, "{name}");
    }
}

#[test]
fn function_example_round_trips() {
    let m = parse("ex4_function_printed");
    assert_eq!(m.functions.len(), 1);
    let f = &m.functions[0];
    assert_eq!(
        (f.name.as_str(), f.domain.as_deref()),
        ("ScaledRelu", Some("local"))
    );
    assert_eq!(f.nodes.len(), 3);
    assert!(matches!(&f.nodes[0].attrs[0].value, AttrValue::Ref(_, r) if r == "alpha"));
    let node = &m.graph.nodes[m.graph.node_order()[0]];
    assert_eq!(
        (node.domain.as_str(), node.op_type.as_str()),
        ("local", "ScaledRelu")
    );
    let again = parse_model_str(&print_model(&m)).unwrap();
    assert_eq!(m, again);
}

#[test]
fn handwritten_form_equals_its_normalised_print() {
    let hand = parse("ex5_handwritten");
    let printed = parse("ex5_handwritten_printed");
    assert_eq!(hand, printed);
    assert_eq!(print_model(&hand), fixture("ex5_handwritten_printed"));
}

#[test]
fn subgraphs_are_parsed_and_kept() {
    let m = parse("ex3_controlflow_printed");
    let if_node = m
        .graph
        .nodes
        .node_weights()
        .find(|n| n.op_type == "If")
        .unwrap();
    let AttrValue::Graph(g) = &if_node.attr("then_branch").unwrap().value else {
        panic!("then_branch is not a graph")
    };
    assert_eq!(g.nodes.node_count(), 2);
    assert_eq!(g.outputs[0].name, "t");
}
