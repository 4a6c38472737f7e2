//! Shared by the codegen tests: the digits models with their pass specs, and (`random`) the
//! random small models of the property tests.
#![allow(dead_code)]

pub mod random;

use etch_ir::infer::GraphInfo;
use etch_ir::Model;

pub fn root() -> String {
    format!("{}/..", env!("CARGO_MANIFEST_DIR"))
}

/// The three compressions of the done-when list, for a model. digits_mlp has two weight layers,
/// so `binarize(keep=[first,last])` is refused by the pass (nothing is left to binarize; its
/// "binarized" form is its int8 form): its binary case keeps only the first layer in int8 and
/// binarizes the last (XNOR weights and activations).
pub fn specs(name: &str) -> Vec<(&'static str, String)> {
    let keep = if name == "digits_mlp" {
        "[first]"
    } else {
        "[first,last]"
    };
    let calib = format!("{}/examples/data/digits_train.csv", root());
    let quant = format!("quant(bits=8,per=channel,calib=\"{calib}\")");
    vec![
        ("int8", quant.clone()),
        ("pow2", format!("pow2(bits=4),{quant}")),
        (
            "binary",
            format!("binarize(acts=true,keep={keep},calib=\"{calib}\"),{quant}"),
        ),
    ]
}

/// Reads `examples/models/NAME.onnx.txt` and runs `spec` through the pipeline the CLI uses
/// (calibrating on the CSVs it names).
pub fn model(name: &str, spec: &str) -> (Model, GraphInfo) {
    let p = prepared(name, spec);
    (p.model, p.info)
}

/// The same, as the pipeline's prepared model (which lowers to the accelerator program).
pub fn prepared(name: &str, spec: &str) -> etch_sim::pipeline::Prepared {
    let path = format!("{}/examples/models/{name}.onnx.txt", root());
    etch_sim::pipeline::Pipeline {
        passes: Some(spec),
        ..Default::default()
    }
    .load(&path)
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Parses ONNX text, verifies it, runs `spec` (calibrating on the CSVs it names) and verifies
/// the result.
pub fn passes(src: &[u8], spec: &str) -> Result<(Model, GraphInfo), String> {
    let mut model = etch_ir::parse_model(src).map_err(|e| format!("{e:?}"))?;
    let csv = etch_sim::reference::calibrate::CsvCalibrator;
    let run = etch_ir::passes::RunOptions {
        verify_each: false,
        cx: etch_ir::passes::PassContext {
            calibrator: Some(&csv),
        },
    };
    etch_ir::verify::verify(&model).map_err(|e| e.to_string())?;
    etch_ir::passes::run_spec(&mut model, spec, &run).map_err(|e| e.to_string())?;
    let info = etch_ir::verify::verify(&model).map_err(|e| e.to_string())?;
    Ok((model, info))
}

pub fn test_csv() -> String {
    format!("{}/examples/data/digits_test.csv", root())
}
