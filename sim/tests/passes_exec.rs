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

/// A QONNX model (Quant weights per channel and per tensor, Quant activations narrower than their
/// codes, a max pool and a flatten between layers, an int8 output): `import-quant` turns it into
/// integer layers that compute exactly its outputs; an activation with another rounding mode
/// stays in float and is reported.
#[test]
fn import_quant_keeps_qonnx_outputs_exactly() {
    let w: Vec<String> = (0..18)
        .map(|k| format!("{}", ((k * 7 % 11) as f32 - 5.0) * 0.11))
        .collect();
    let v: Vec<String> = (0..72)
        .map(|k| format!("{}", ((k * 5 % 13) as f32 - 6.0) * 0.07))
        .collect();
    let model = |act_mode: &str| {
        format!(
            r#"<
   ir_version: 8,
   opset_import: ["" : 13, "qonnx.custom_op.general" : 1]
>
g (float[1,1,6,6] x) => (float[1,4] y)
   <float[2,1,3,3] w = {{{w}}}, float[2,1,1,1] ws = {{0.125, 0.0625}}, float[18,4] v = {{{v}}}, float vs = {{0.25}}, float z = {{0}}, float b8 = {{8}}, float b4 = {{4}}, float b3 = {{3}}, float sx = {{0.0625}}, float sa = {{0.125}}, float sy = {{0.25}}, int64[2] shape = {{1, 18}}>
{{
   xq = qonnx.custom_op.general.Quant <signed: int = 1, narrow: int = 0> (x, sx, z, b8)
   wq = qonnx.custom_op.general.Quant <signed: int = 1, narrow: int = 1> (w, ws, z, b4)
   c = Conv <pads: ints = [1, 1, 1, 1]> (xq, wq)
   r = Relu (c)
   a = qonnx.custom_op.general.Quant <signed: int = 0, narrow: int = 0, rounding_mode: string = "{act_mode}"> (r, sa, z, b4)
   p = MaxPool <kernel_shape: ints = [2, 2], strides: ints = [2, 2]> (a)
   f = Reshape (p, shape)
   vq = qonnx.custom_op.general.Quant <signed: int = 1, narrow: int = 0> (v, vs, z, b3)
   m = MatMul (f, vq)
   y = qonnx.custom_op.general.Quant <signed: int = 1, narrow: int = 0> (m, sy, z, b8)
}}
"#,
            w = w.join(","),
            v = v.join(",")
        )
    };
    let qonnx = parse_model_str(&model("ROUND")).unwrap();
    let imported = apply(&qonnx, "import-quant");
    let info = etch_ir::verify::verify(&imported).unwrap();
    assert!(imported
        .graph
        .nodes
        .node_weights()
        .all(|n| !matches!(n.op, etch_ir::Op::Quant(_))));
    assert_eq!(etch_ir::quant::analyze(&imported, &info).layers.len(), 2);
    for seed in 1..20 {
        // pixels over twice the input quantizer's range, on and between its steps
        let mut x = input(&[1, 1, 6, 6], seed);
        x.data.iter_mut().for_each(|v| *v *= 16.0);
        // equal values (qonnx's float path writes −0 where the codes give 0)
        let (want, got) = (run(&qonnx, &x), run(&imported, &x));
        assert_eq!(want, got, "seed {seed}");
    }
    // HALF_UP has no QuantizeLinear form: that quantizer stays, the others are rewritten
    let mut kept = parse_model_str(&model("HALF_UP")).unwrap();
    let reports = run_spec(&mut kept, "import-quant", &RunOptions::default()).unwrap();
    let said = reports[0].changes.join("\n");
    assert!(
        said.contains("kept `a` in float: it rounds HALF_UP"),
        "{said}"
    );
    let quants = kept
        .graph
        .nodes
        .node_weights()
        .filter(|n| matches!(n.op, etch_ir::Op::Quant(_)))
        .count();
    assert_eq!(quants, 1);
}
