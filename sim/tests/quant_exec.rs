//! Quantized digits models end to end: the passes give verifiable QDQ graphs, the plan runs their
//! layers in integers, the integer outputs stay within one quantization step of the float QDQ
//! semantics, the statistics report the MAC kinds, and int8 keeps the float accuracy.

use etch_ir::passes::{run_spec, PassContext, RunOptions};
use etch_ir::stats::model_stats;
use etch_ir::Model;
use etch_sim::reference::calibrate::{read_samples, CsvCalibrator};
use etch_sim::reference::cpu::Plan;
use etch_sim::reference::{Array, Value};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn model(name: &str) -> Model {
    let text = std::fs::read_to_string(format!("{ROOT}/examples/models/{name}.onnx.txt")).unwrap();
    etch_ir::parse_model_str(&text).unwrap()
}

fn calib() -> String {
    format!("{ROOT}/examples/data/digits_train.csv")
}

fn apply(m: &Model, spec: &str) -> Model {
    let mut out = m.clone();
    let cal = CsvCalibrator;
    let opts = RunOptions {
        verify_each: true,
        cx: PassContext {
            calibrator: Some(&cal),
        },
    };
    run_spec(&mut out, spec, &opts).unwrap_or_else(|e| panic!("{spec}: {e}"));
    out
}

fn test_rows(n: usize) -> Vec<(usize, Vec<f32>)> {
    read_samples(&format!("{ROOT}/examples/data/digits_test.csv"), 64, n).unwrap()
}

/// The model's single output on every row, flattened.
fn outputs(plan: &Plan, rows: &[(usize, Vec<f32>)]) -> Vec<Vec<f32>> {
    let input = plan.inputs().next().unwrap();
    let shape: Vec<usize> = input
        .dims
        .iter()
        .map(|d| d.known().unwrap_or(1) as usize)
        .collect();
    rows.iter()
        .map(|(_, x)| {
            match &plan
                .run(vec![(
                    input.name.clone(),
                    Value::F32(Array::new(shape.clone(), x.clone())),
                )])
                .unwrap()[0]
                .1
            {
                Value::F32(a) => a.data.clone(),
                v => panic!("unexpected output {v:?}"),
            }
        })
        .collect()
}

fn top1(outs: &[Vec<f32>], rows: &[(usize, Vec<f32>)]) -> f64 {
    let correct = outs
        .iter()
        .zip(rows)
        .filter(|(y, (label, _))| {
            y.iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
                .map(|(i, _)| i)
                == Some(*label)
        })
        .count();
    correct as f64 / rows.len() as f64
}

/// The scale of the DequantizeLinear that writes the graph output.
fn output_scale(m: &Model) -> f32 {
    let g = &m.graph;
    let dq = &g.nodes[g.producer(&g.outputs[0].name).unwrap()];
    assert_eq!(dq.op_type, "DequantizeLinear");
    g.initializer(&dq.inputs[1])
        .unwrap()
        .tensor
        .floats()
        .unwrap()[0]
}

fn check(name: &str, spec: &str, kinds: &[&str], integer_layers: usize) -> (f64, f64) {
    let float = model(name);
    let q = apply(&float, spec);
    let info = etch_ir::verify::verify(&q).unwrap();
    // the printed model parses back to the same graph
    let back = etch_ir::parse_model_str(&etch_ir::print::print_model(&q)).unwrap();
    assert_eq!(
        back, q,
        "{name} {spec}: the printed model reads back differently"
    );
    let stats = model_stats(&q, &info, &[]);
    let got: Vec<&str> = stats.macs_by_kind.keys().map(String::as_str).collect();
    assert_eq!(got, kinds, "{name} {spec}: MAC kinds");
    assert_eq!(
        stats.params,
        model_stats(&float, &etch_ir::verify::verify(&float).unwrap(), &[]).params,
        "{name} {spec}: parameters are counted once"
    );
    assert!(stats.compression > 1.0);
    let fused = Plan::new(&q, &info).unwrap();
    let unfused = Plan::new_unfused(&q, &info).unwrap();
    let layers = etch_ir::quant::quantized_layers(&q, &info)
        .iter()
        .filter(|l| l.is_integer())
        .count();
    assert_eq!(
        layers,
        integer_layers,
        "{name} {spec}: layers in integers ({:?})",
        fused.integer_steps()
    );
    let rows = test_rows(usize::MAX);
    let (a, b) = (outputs(&fused, &rows), outputs(&unfused, &rows));
    let step = output_scale(&q);
    let mut off = 0;
    for (ya, yb) in a.iter().zip(&b) {
        for (x, y) in ya.iter().zip(yb) {
            let steps = ((x - y) / step).abs();
            assert!(
                steps <= 1.0 + 1e-3,
                "{name} {spec}: integer {x} vs float QDQ {y} differ by {steps} steps"
            );
            off += (steps > 0.5) as usize;
        }
    }
    eprintln!("{name} {spec}: {off} of {} outputs one step apart; integer top-1 {:.4}, float QDQ top-1 {:.4}", a.len() * a[0].len(), top1(&a, &rows), top1(&b, &rows));
    let float_top1 = top1(
        &outputs(
            &Plan::new(&float, &etch_ir::verify::verify(&float).unwrap()).unwrap(),
            &rows,
        ),
        &rows,
    );
    (float_top1, top1(&a, &rows))
}

#[test]
fn int8_cnn_runs_in_integers_and_keeps_accuracy() {
    let spec = format!("quant(bits=8,per=channel,calib=\"{}\")", calib());
    let (f, q) = check("digits_cnn", &spec, &["int8"], 3);
    assert!(q >= f - 0.01, "int8 top-1 {q} vs float {f}");
}

#[test]
fn int8_mlp_runs_in_integers_and_keeps_accuracy() {
    let spec = format!("quant(bits=8,per=channel,calib=\"{}\")", calib());
    let (f, q) = check("digits_mlp", &spec, &["int8"], 2);
    assert!(q >= f - 0.01, "int8 top-1 {q} vs float {f}");
}

#[test]
fn int4_pow2_and_per_tensor() {
    check(
        "digits_cnn",
        &format!("quant(bits=4,act_bits=4,calib=\"{}\")", calib()),
        &["int4"],
        3,
    );
    check(
        "digits_mlp",
        &format!("quant(bits=4,act_bits=5,calib=\"{}\")", calib()),
        &["int4"],
        2,
    );
    check(
        "digits_cnn",
        &format!("quant(bits=4,calib=\"{}\")", calib()),
        &["int4"],
        3,
    );
    check(
        "digits_mlp",
        &format!(
            "quant(bits=8,per=tensor,calib_method=percentile,calib=\"{}\")",
            calib()
        ),
        &["int8"],
        2,
    );
    check(
        "digits_cnn",
        &format!("pow2(bits=4),quant(bits=8,calib=\"{}\")", calib()),
        &["shift"],
        3,
    );
}

#[test]
fn narrow_activations_keep_their_codes_in_range() {
    // act_bits=4: every calibrated QuantizeLinear has a Clip in front; the output codes are 4-bit
    let q = apply(
        &model("digits_cnn"),
        &format!("quant(bits=8,act_bits=4,calib=\"{}\")", calib()),
    );
    let info = etch_ir::verify::verify(&q).unwrap();
    let g = &q.graph;
    let dq = &g.nodes[g.producer(&g.outputs[0].name).unwrap()];
    let zp = g.initializer(&dq.inputs[2]).unwrap().tensor.ints().unwrap()[0] as f32;
    let step = output_scale(&q);
    let plan = Plan::new(&q, &info).unwrap();
    assert_eq!(
        plan.integer_steps().len(),
        3 + 3,
        "{:?}",
        plan.integer_steps()
    );
    for y in outputs(&plan, &test_rows(usize::MAX)) {
        for v in y {
            let code = (v / step).round() + zp;
            assert!((-8.0..=7.0).contains(&code), "code {code}");
        }
    }
}

#[test]
fn binarized_cnn_uses_xnor() {
    let c = calib();
    check(
        "digits_cnn",
        &format!("binarize(acts=true,keep=[first,last],calib=\"{c}\"),quant(bits=8,calib=\"{c}\")"),
        &["int8", "xnor"],
        3,
    );
    check(
        "digits_cnn",
        &format!("binarize(acts=false,keep=[first],calib=\"{c}\"),quant(bits=8,calib=\"{c}\")"),
        // ±1 weights on int8 activations multiply as 2-bit integers: XNOR needs binary inputs
        &["int2", "int8"],
        3,
    );
}

#[test]
fn quant_without_calibration_data_says_what_to_pass() {
    let mut m = model("digits_cnn");
    let err = run_spec(&mut m, "quant(bits=8)", &RunOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("calib=\""), "{err}");
    let err = run_spec(&mut model("digits_mlp"), "binarize", &RunOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("nothing is left to binarize"), "{err}");
}

#[test]
fn weight_only_forms_run_in_float() {
    // pow2 and binarize alone: weights in DequantizeLinear form, activations float; stats see the codes
    let m = model("digits_cnn");
    for (spec, kinds) in [
        ("pow2(bits=3)", vec!["shift"]),
        ("binarize(keep=[first,last])", vec!["float", "xnor"]),
    ] {
        let q = apply(&m, spec);
        let info = etch_ir::verify::verify(&q).unwrap();
        let stats = model_stats(&q, &info, &[]);
        assert_eq!(
            stats
                .macs_by_kind
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            kinds,
            "{spec}"
        );
        let plan = Plan::new(&q, &info).unwrap();
        assert!(plan.integer_steps().is_empty());
        let rows = test_rows(20);
        assert_eq!(outputs(&plan, &rows).len(), 20);
    }
}

/// `DequantizeLinear(a_q), DequantizeLinear(b_q) → Add → [Relu] → QuantizeLinear` with one scale
/// everywhere (`etch_ir::quant::QAdd`): the plan runs it on the codes, and on every pair of
/// int8 codes the integer result equals the float QDQ semantics bit for bit. With another output
/// scale it stays in float.
#[test]
fn a_residual_add_of_one_scale_runs_on_codes_exactly() {
    let n = 256 * 256;
    let (s, za, zb, zy) = (0.0123f32, -5i32, 3i32, -20i32);
    for (relu, out_scale) in [(true, s), (false, s), (true, 2.0 * s)] {
        let text = format!(
            "<\n   ir_version: 8,\n   opset_import: [\"\" : 17]\n>\ng (float[1,{n}] x1, float[1,{n}] x2) => (float[1,{n}] y)\n   <float s = {{{s}}}, float so = {{{out_scale}}}, int8 za = {{{za}}}, int8 zb = {{{zb}}}, int8 zy = {{{zy}}}>\n{{\n   q1 = QuantizeLinear (x1, s, za)\n   d1 = DequantizeLinear (q1, s, za)\n   q2 = QuantizeLinear (x2, s, zb)\n   d2 = DequantizeLinear (q2, s, zb)\n   a = Add (d1, d2)\n{}   qy = QuantizeLinear ({}, so, zy)\n   y = DequantizeLinear (qy, so, zy)\n}}\n",
            if relu {
                "   r = Relu (a)\n"
            } else {
                ""
            },
            if relu { "r" } else { "a" }
        );
        let m = etch_ir::parse_model_str(&text).unwrap();
        let info = etch_ir::verify::verify(&m).unwrap();
        let fused = Plan::new(&m, &info).unwrap();
        let on_codes = fused.integer_steps().len() == 1;
        assert_eq!(
            on_codes,
            out_scale == s,
            "relu {relu}, output scale {out_scale}: integer steps {:?}",
            fused.integer_steps()
        );
        // every pair of int8 codes, as the floats that quantize to them
        let value = |c: i32, z: i32| (c - z) as f32 * s;
        let x1: Vec<f32> = (0..n).map(|i| value(i as i32 / 256 - 128, za)).collect();
        let x2: Vec<f32> = (0..n).map(|i| value(i as i32 % 256 - 128, zb)).collect();
        let given = vec![
            ("x1".to_string(), Value::F32(Array::new(vec![1, n], x1))),
            ("x2".to_string(), Value::F32(Array::new(vec![1, n], x2))),
        ];
        let unfused = Plan::new_unfused(&m, &info).unwrap();
        let (a, b) = (
            fused.run(given.clone()).unwrap(),
            unfused.run(given).unwrap(),
        );
        assert_eq!(a, b, "relu {relu}, output scale {out_scale}");
    }
}

/// `DequantizeLinear → activation → QuantizeLinear` runs as a table on the codes
/// (`etch_ir::quant::QTable`), filled by the float semantics: on every int8 code the table equals
/// the unfused plan bit for bit, for each activation a table stands for.
#[test]
fn a_quantized_activation_runs_as_a_table_exactly() {
    let n = 256;
    for act in [
        "Sigmoid (d)",
        "HardSwish (d)",
        "HardSigmoid <alpha: float = 0.3, beta: float = 0.45> (d)",
        "Relu (d)",
        "Clip (d, lo, hi)",
        "Tanh (d)",
        "Gelu (d)",
        "Gelu <approximate: string = \"tanh\"> (d)",
        "LeakyRelu <alpha: float = 0.1> (d)",
        "Erf (d)",
        "Mish (d)",
    ] {
        let text = format!(
            "<\n   ir_version: 9,\n   opset_import: [\"\" : 20]\n>\ng (float[1,{n}] x) => (float[1,{n}] y)\n   <float s = {{0.043}}, int8 z = {{-7}}, float so = {{0.0061}}, int8 zo = {{-100}}, float lo = {{-0.5}}, float hi = {{1.5}}>\n{{\n   q = QuantizeLinear (x, s, z)\n   d = DequantizeLinear (q, s, z)\n   a = {act}\n   qy = QuantizeLinear (a, so, zo)\n   y = DequantizeLinear (qy, so, zo)\n}}\n"
        );
        let m = etch_ir::parse_model_str(&text).unwrap();
        let info = etch_ir::verify::verify(&m).unwrap();
        let fused = Plan::new(&m, &info).unwrap();
        assert_eq!(
            fused.integer_steps().len(),
            1,
            "{act}: the activation runs on codes ({:?})",
            fused.integer_steps()
        );
        let x: Vec<f32> = (0..n)
            .map(|i| (i as i32 - 128 + 7) as f32 * 0.043)
            .collect();
        let given = vec![("x".to_string(), Value::F32(Array::new(vec![1, n], x)))];
        let unfused = Plan::new_unfused(&m, &info).unwrap();
        assert_eq!(
            fused.run(given.clone()).unwrap(),
            unfused.run(given).unwrap(),
            "{act}"
        );
    }
}
