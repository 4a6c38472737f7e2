//! Passes that must not change what a model computes, checked by running it before and after.

use etch_ir::passes::{run_spec, RunOptions};
use etch_ir::{parse_model_str, Model};
use etch_sim::reference::cpu::Plan;
use etch_sim::reference::{Array, Value};

fn run(m: &Model, x: &Array<f32>) -> Vec<f32> {
    let info = etch_ir::verify::verify(m).unwrap();
    let plan = Plan::new(m, &info).unwrap();
    let name = plan.inputs().next().unwrap().name.clone();
    match &plan.run(vec![(name, Value::F32(x.clone()))]).unwrap()[0].1 {
        Value::F32(a) => a.data.clone(),
        v => panic!("unexpected output {v:?}"),
    }
}

fn input(shape: &[usize], seed: u32) -> Array<f32> {
    let n: usize = shape.iter().product();
    // a small deterministic generator is enough for test inputs
    let mut s = seed.wrapping_mul(2654435761).max(1);
    let data = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect();
    Array::new(shape.to_vec(), data)
}

fn close(a: &[f32], b: &[f32], rel: f32) {
    assert_eq!(a.len(), b.len());
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-5 + rel * y.abs(),
            "element {k}: {x} vs {y}"
        );
    }
}

fn apply(m: &Model, spec: &str) -> Model {
    let mut out = m.clone();
    run_spec(
        &mut out,
        spec,
        &RunOptions {
            verify_each: true,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{spec}: {e}"));
    out
}

#[test]
fn fold_bn_keeps_outputs() {
    // deterministic, varied values for every weight
    let vals = |n: usize, k: usize| {
        (0..n)
            .map(|i| format!("{}", ((i * 7 + k * 13) % 17) as f32 / 20.0 - 0.4))
            .collect::<Vec<_>>()
            .join(",")
    };
    let pos = |n: usize, k: usize| {
        (0..n)
            .map(|i| format!("{}", 0.5 + ((i * 5 + k) % 7) as f32 / 4.0))
            .collect::<Vec<_>>()
            .join(",")
    };
    let text = format!(
        r#"<ir_version: 8, opset_import: ["" : 17]>
g (float[2,3,6,6] x) => (float[2,4] y)
   <float[4,3,3,3] w = {{{}}}, float[4] b = {{{}}}, float[4] s = {{{}}}, float[4] t = {{{}}}, float[4] mu = {{{}}}, float[4] var = {{{}}}, float[8,4] gw = {{{}}}, float[8] fs = {{{}}}, float[8] ft = {{{}}}, float[8] fm = {{{}}}, float[8] fv = {{{}}}, float[4,8] fw = {{{}}}>
{{
   c = Conv <pads: ints = [1,1,1,1], strides: ints = [2,2]> (x, w, b)
   n = BatchNormalization <epsilon: float = 1e-5> (c, s, t, mu, var)
   r = Relu (n)
   p = GlobalAveragePool (r)
   f = Flatten (p)
   h = Gemm <transB: int = 1> (f, gw)
   m = BatchNormalization <epsilon: float = 1e-3> (h, fs, ft, fm, fv)
   y = Gemm <transB: int = 1> (m, fw)
}}"#,
        vals(108, 1),
        vals(4, 2),
        pos(4, 3),
        vals(4, 4),
        vals(4, 5),
        pos(4, 6),
        vals(32, 7),
        pos(8, 8),
        vals(8, 9),
        vals(8, 10),
        pos(8, 11),
        vals(32, 12)
    );
    let m = parse_model_str(&text).unwrap();
    let folded = apply(&m, "fold-bn");
    assert!(folded
        .graph
        .nodes
        .node_weights()
        .all(|n| n.op_type != "BatchNormalization"));
    let x = input(&[2, 3, 6, 6], 1);
    close(&run(&folded, &x), &run(&m, &x), 1e-5);
}

#[test]
fn cleanup_passes_keep_outputs() {
    for name in ["mobilenet_v2", "resnet18", "squeezenet1_1"] {
        let path = format!(
            "{}/../examples/models/{name}.onnx.txt",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut m = parse_model_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        etch_ir::weights::fill_shape_only(&mut m, 2).unwrap();
        let cleaned = apply(&m, "remove-identity,fold-constants,dead-values");
        let x = input(&[1, 3, 224, 224], 7);
        assert_eq!(run(&cleaned, &x), run(&m, &x), "{name}");
    }
}
