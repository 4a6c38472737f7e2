//! The pass-spec language and the structural effects of each pass.

use etch_ir::passes::spec::parse_spec;
use etch_ir::passes::{run_spec, RunOptions};
use etch_ir::{parse_model_str, Model};

fn model(name: &str) -> Model {
    let path = format!(
        "{}/../examples/models/{name}.onnx.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut m = parse_model_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    etch_ir::weights::fill_shape_only(&mut m, 3).unwrap();
    m
}

fn run(m: &mut Model, spec: &str) -> Vec<etch_ir::passes::PassReport> {
    run_spec(
        m,
        spec,
        &RunOptions {
            verify_each: true,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{spec}: {e}"))
}

fn spec_error(spec: &str) -> (usize, String) {
    let mut m = model("digits_mlp");
    match run_spec(&mut m, spec, &RunOptions::default()) {
        Err(etch_ir::passes::PassError::Spec(e)) => (e.at, e.message),
        other => panic!("{spec}: expected a spec error, got {other:?}"),
    }
}

#[test]
fn specs_parse_with_every_value_kind() {
    let p = parse_spec(r#"fold-bn, prune(sparsity=0.5,granularity=channel), nm(n=2, m=4), quant(bits=8, calib="data/x y.csv", keep=[first,last], block=[4, 4])"#).unwrap();
    assert_eq!(
        p.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["fold-bn", "prune", "nm", "quant"]
    );
    assert_eq!(
        p[3].args[1].value,
        etch_ir::passes::spec::SpecValue::Str("data/x y.csv".into())
    );
    assert_eq!(p[1].args[1].value_at, 40);
}

#[test]
fn spec_errors_point_at_the_column() {
    assert_eq!(spec_error("fold-bn,prnue(sparsity=0.5)").0, 8);
    let (at, msg) = spec_error("prune(sparsity=0.5,granularty=channel)");
    assert_eq!(at, 19);
    assert!(
        msg.contains("has no parameter `granularty`") && msg.contains("granularity"),
        "{msg}"
    );
    let (at, msg) = spec_error("prune(sparsity=1.5)");
    assert_eq!(at, 15);
    assert!(msg.contains("from 0 to 0.99"), "{msg}");
    let (_, msg) = spec_error("prune(granularity=channel)");
    assert!(msg.contains("needs `sparsity`"), "{msg}");
    let (at, msg) = spec_error("prune(sparsity=0.5");
    assert_eq!(at, 18);
    assert!(msg.contains("expected `,` or `)`"), "{msg}");
    let (_, msg) = spec_error("prune(sparsity=0.5,granularity=row)");
    assert!(msg.contains("one of element, channel, block"), "{msg}");
    let (_, msg) = spec_error("nm(n=4,m=4)");
    assert!(msg.contains("n must be smaller than m"), "{msg}");
    let (at, _) = spec_error("prune(sparsity=0.5) fold-bn");
    assert_eq!(at, 20);
}

#[test]
fn element_pruning_zeros_the_requested_fraction_of_each_layer() {
    let mut m = model("digits_cnn");
    let reports = run(&mut m, "prune(sparsity=0.5)");
    for name in ["conv1.weight", "conv2.weight", "fc.weight"] {
        let v = m.graph.initializer(name).unwrap().tensor.floats().unwrap();
        let zeros = v.iter().filter(|x| **x == 0.0).count();
        assert_eq!(zeros, (v.len() as f64 * 0.5).round() as usize, "{name}");
    }
    assert!(reports[0].after.sparsity > 0.45);
}

#[test]
fn global_pruning_ranks_across_layers() {
    let mut m = model("digits_cnn");
    run(&mut m, "prune(sparsity=0.8,scope=global)");
    let total: usize = ["conv1.weight", "conv2.weight", "fc.weight"]
        .iter()
        .map(|n| m.graph.initializer(n).unwrap().tensor.numel() as usize)
        .sum();
    let zeros: usize = ["conv1.weight", "conv2.weight", "fc.weight"]
        .iter()
        .map(|n| {
            m.graph
                .initializer(n)
                .unwrap()
                .tensor
                .floats()
                .unwrap()
                .iter()
                .filter(|x| **x == 0.0)
                .count()
        })
        .sum();
    assert_eq!(zeros, (total as f64 * 0.8).round() as usize);
}

#[test]
fn block_pruning_removes_whole_blocks() {
    let mut m = model("digits_mlp");
    run(&mut m, "prune(sparsity=0.5,granularity=block,block=[4,4])");
    let init = m
        .graph
        .initializers
        .iter()
        .find(|i| i.tensor.dims == [64, 64])
        .unwrap();
    let v = init.tensor.floats().unwrap();
    // in a [K, N] MatMul/Gemm weight, blocks run over (output, reduction); every 4×4 block is all-zero or has no zero
    let view = |o: usize, r: usize| v[r * 64 + o];
    let t = if m
        .graph
        .nodes
        .node_weights()
        .any(|n| n.op_type == "Gemm" && n.attr("transB").is_some())
    {
        |o: usize, r: usize| (r, o)
    } else {
        |o: usize, r: usize| (o, r)
    };
    let _ = t;
    let mut mixed = 0;
    for o0 in (0..64).step_by(4) {
        for r0 in (0..64).step_by(4) {
            let z = (o0..o0 + 4)
                .flat_map(|o| (r0..r0 + 4).map(move |r| (o, r)))
                .filter(|&(o, r)| view(o, r) == 0.0 || v[o * 64 + r] == 0.0)
                .count();
            if z != 0 && z != 16 {
                mixed += 1;
            }
        }
    }
    let zeros = v.iter().filter(|x| **x == 0.0).count();
    assert_eq!(zeros, 64 * 64 / 2);
    assert!(mixed < 256, "blocks are not pruned as blocks");
}

#[test]
fn nm_leaves_n_of_every_m_and_stats_see_the_pattern() {
    let mut m = model("digits_mlp");
    let reports = run(&mut m, "nm(n=2,m=4)");
    let layers: Vec<_> = reports[0]
        .after
        .layers
        .iter()
        .filter(|l| l.macs > 0)
        .collect();
    assert!(!layers.is_empty());
    for l in layers {
        assert_eq!(l.nm.as_deref(), Some("2:4"), "{}", l.name);
        // stored: half the weights at 32 bits plus 2 index bits each
        assert_eq!(l.stored_bits, l.nonzero_params * 34, "{}", l.name);
    }
}

#[test]
fn channel_pruning_shrinks_tensors_and_macs_on_every_model() {
    for name in [
        "digits_cnn",
        "resnet18",
        "mobilenet_v2",
        "squeezenet1_1",
        "alexnet",
    ] {
        let mut m = model(name);
        let before = run(&mut m, "remove-identity")[0].after.clone();
        let after = run(&mut m, "prune(sparsity=0.25,granularity=channel)")[0]
            .after
            .clone();
        assert!(after.macs < before.macs, "{name}: MACs did not drop");
        assert!(after.params < before.params, "{name}: params did not drop");
        // the graph still verifies (run() used verify_each) and prints back the same
        let again = parse_model_str(&etch_ir::print::print_model(&m)).unwrap();
        assert_eq!(again, m, "{name}");
    }
}

#[test]
fn cleanup_passes_remove_what_they_say() {
    let mut m = model("mobilenet_v2");
    let reports = run(&mut m, "remove-identity,fold-constants,dead-values");
    assert!(m
        .graph
        .nodes
        .node_weights()
        .all(|n| n.op_type != "Identity" && n.op_type != "Constant"));
    assert!(
        reports[0].changes[0].starts_with("removed 39 Identity"),
        "{:?}",
        reports[0].changes
    );
    assert!(
        reports[1].changes[0].starts_with("folded 70 nodes"),
        "{:?}",
        reports[1].changes
    );
    // folded Constants become initializers, which count as params; dead-values keeps every used one
    assert_eq!(reports[2].after.params, reports[1].after.params);
}

#[test]
fn passes_refuse_shape_only_weights() {
    let path = format!(
        "{}/../examples/models/resnet18.onnx.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut m = parse_model_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let e = run_spec(&mut m, "prune(sparsity=0.5)", &RunOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("shape-only weights") && e.contains("etch convert --seed"),
        "{e}"
    );
}
