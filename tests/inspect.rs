//! `etch inspect --json` gives exactly the params and MACs of REFERENCE.tsv for every shipped model.

use std::process::Command;

fn etch(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_etch"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

#[test]
fn params_and_macs_match_reference() {
    let reference = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/data/REFERENCE.tsv"
    ))
    .unwrap();
    let mut lines = reference.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let mut checked = 0;
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        let model = format!("examples/models/{}.onnx.txt", f[col("name")]);
        let out = etch(&["inspect", "--json", &model]);
        assert!(
            out.status.success(),
            "{model}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
        assert_eq!(
            json["params"].as_u64().unwrap().to_string(),
            f[col("params")],
            "{model} params"
        );
        assert_eq!(
            json["macs"].as_u64().unwrap().to_string(),
            f[col("macs")],
            "{model} macs"
        );
        let layers = json["layers"].as_array().unwrap();
        assert_eq!(
            layers.len().to_string(),
            f[col("nodes")],
            "{model} layer count"
        );
        for l in layers {
            for key in ["name", "op", "output_shape", "params", "macs"] {
                assert!(l.get(key).is_some(), "{model}: layer lacks `{key}`");
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 7);
}

#[test]
fn table_has_totals_and_says_when_weights_are_shape_only() {
    let out = etch(&["inspect", "examples/models/resnet18.onnx.txt"]);
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    let total = table.lines().last().unwrap();
    assert!(
        total.starts_with("total")
            && total.contains("11,680,872")
            && total.contains("1,814,073,344"),
        "{total}"
    );
    assert!(table.contains("/conv1/Conv") && table.contains("[1,64,112,112]"));
    let note = String::from_utf8(out.stderr).unwrap();
    assert!(
        note.contains("26 weights") && note.contains("shape-only"),
        "{note}"
    );
}

#[test]
fn convert_fills_shape_only_weights_reproducibly() {
    let dir = std::env::temp_dir().join(format!("etch-convert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |n: &str| dir.join(n).to_string_lossy().into_owned();
    let run = |seed: &str, out: &str| {
        let o = etch(&[
            "convert",
            "examples/models/squeezenet1_1.onnx.txt",
            "-o",
            &path(out),
            "--seed",
            seed,
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("filled 34 shape-only weights"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        std::fs::read_to_string(path(out)).unwrap()
    };
    let (a, b, c) = (run("3", "a.txt"), run("3", "b.txt"), run("4", "c.txt"));
    assert_eq!(a, b, "the same seed gives the same weights");
    assert_ne!(a, c, "another seed gives other weights");
    let m = etch_ir::parse_model_str(&a).unwrap();
    assert!(etch_ir::weights::shape_only_weights(&m).unwrap().is_empty());
    assert_eq!(
        m.graph.inputs.len(),
        1,
        "weights moved from inputs to initializers"
    );
    // a converted model converts to itself
    let o = etch(&["convert", &path("a.txt"), "-o", &path("d.txt")]);
    assert!(o.status.success());
    assert_eq!(std::fs::read_to_string(path("d.txt")).unwrap(), a);
    // and inspect sees the same figures
    let j: serde_json::Value =
        serde_json::from_slice(&etch(&["inspect", "--json", &path("a.txt")]).stdout).unwrap();
    assert_eq!(j["params"], 1233288);
    std::fs::remove_dir_all(&dir).ok();
}

/// QONNX weights count at the layer that reads them, at their bits (scales at 32), whether the
/// pipeline's `import-quant` turns them into integer layers (4-bit weights; binary weights on a
/// bipolar activation are XNOR MACs) or keeps them as quantizers (12 bits do not fit its int8
/// codes: the weight is found through the Transpose that feeds the MatMul); the quantizers'
/// scales, zero points and bit widths are not parameters.
#[test]
fn qonnx_weights_count_at_their_bits() {
    let model = |bits: u32| {
        format!(
            r#"<
   ir_version: 8,
   opset_import: ["" : 13, "qonnx.custom_op.general" : 1]
>
g (float[1,4] x) => (float[1,2] y)
   <float[3,4] w = {{0.3,-0.7,1.2,0.2, -0.4,0.9,0.3,-1.3, 0.6,0.6,-0.2,0.8}}, float[3,1] s = {{0.25,0.5,0.125}}, float z = {{0}}, float bw = {{{bits}}}, float sa = {{0.125}}, float b3 = {{3}}, float[3,2] v = {{1,-1,2,0.5,-3,1}}, float one = {{1}}>
{{
   wq = qonnx.custom_op.general.Quant <signed: int = 1, narrow: int = 1> (w, s, z, bw)
   xq = qonnx.custom_op.general.Quant <signed: int = 1, narrow: int = 0> (x, sa, z, b3)
   wt = Transpose <perm: ints = [1, 0]> (wq)
   m = MatMul (xq, wt)
   a = qonnx.custom_op.general.BipolarQuant (m, one)
   vq = qonnx.custom_op.general.BipolarQuant (v, one)
   y = MatMul (a, vq)
}}
"#
        )
    };
    let dir = std::env::temp_dir().join(format!("etch-qonnx-inspect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // (weight bits, stored bits, MACs by kind): 12 codes at their bits and 3 scales, then 6
    // binary codes and 1 scale
    for (bits, stored, kinds) in [
        (
            4,
            12 * 4 + 3 * 32 + 6 + 32,
            serde_json::json!({"int4": 12, "xnor": 6}),
        ),
        (
            12,
            12 * 12 + 3 * 32 + 6 + 32,
            serde_json::json!({"int12": 12, "xnor": 6}),
        ),
    ] {
        let path = dir.join(format!("q{bits}.onnx.txt"));
        std::fs::write(&path, model(bits)).unwrap();
        let out = etch(&["inspect", "--json", path.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["params"], 18, "{bits} bits");
        assert_eq!(json["stored_bits"], stored, "{bits} bits");
        assert_eq!(json["macs_by_kind"], kinds, "{bits} bits");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
