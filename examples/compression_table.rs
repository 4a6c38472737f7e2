//! The compression table of the README: digits_cnn and digits_mlp under every compression etch
//! has, post-training (no fine-tuning), with top-1 accuracy on `examples/data/digits_test.csv` from
//! the CPU executor (integer kernels for the quantized layers), and size, sparsity and op mix from
//! `etch_ir::stats`; then the trained low-bit models (`scripts/train_qat.sh`) as exported.
//!
//! `cargo run --release --example compression_table` prints the markdown table.

use etch_ir::passes::PassError;
use etch_ir::stats::model_stats;
use etch_ir::stats::thousands;
use etch_sim::pipeline::{Pipeline, PipelineError, Source};
use etch_sim::reference::calibrate::{read_samples, single_input};
use etch_sim::reference::cpu::Plan;
use etch_sim::reference::{Array, Value};

const CALIB: &str = "examples/data/digits_train.csv";
const TEST: &str = "examples/data/digits_test.csv";

/// The rows: a label and the pass spec.
fn configs() -> Vec<(&'static str, String)> {
    let q8 = format!("quant(bits=8,per=channel,calib=\"{CALIB}\")");
    vec![
        ("float", String::new()),
        ("int8 per-channel", q8.clone()),
        (
            "int4 weights, int8 activations",
            format!("quant(bits=4,per=channel,calib=\"{CALIB}\")"),
        ),
        (
            "int4 weights and activations",
            format!("quant(bits=4,act_bits=4,per=channel,calib=\"{CALIB}\")"),
        ),
        (
            "pow2 4-bit weights, int8 activations",
            format!("pow2(bits=4),{q8}"),
        ),
        ("50% magnitude pruning", "prune(sparsity=0.5)".into()),
        ("80% magnitude pruning", "prune(sparsity=0.8)".into()),
        ("2:4 sparsity", "nm(n=2,m=4)".into()),
        (
            "25% channel pruning",
            "prune(sparsity=0.25,granularity=channel)".into(),
        ),
        (
            "binarized, first and last layers int8",
            format!("binarize(acts=true,keep=[first,last],calib=\"{CALIB}\"),{q8}"),
        ),
    ]
}

/// The trained models (quantization-aware, Brevitas; `scripts/train_qat.sh`) and their rows' labels.
const TRAINED: [(&str, &str); 5] = [
    ("qat_w1a1_mlp", "trained binary W1A1 MLP (Brevitas, QONNX)"),
    ("qat_w2a2_cnn", "trained 2-bit CNN (Brevitas, QONNX)"),
    (
        "qat_w4a4_resdw",
        "trained 4-bit residual + depthwise CNN (Brevitas, QONNX)",
    ),
    ("qat_int8_qcdq_cnn", "trained int8 CNN (Brevitas, QCDQ)"),
    ("qat_int4_qcdq_cnn", "trained int4 CNN (Brevitas, QCDQ)"),
];

/// The MACs by kind, as the table's cell: `84,224 int8, 10,496 xnor`.
fn mac_kinds(stats: &etch_ir::stats::ModelStats) -> String {
    let kinds: Vec<String> = stats
        .macs_by_kind
        .iter()
        .map(|(k, v)| format!("{} {k}", thousands(*v)))
        .collect();
    kinds.join(", ")
}

/// Top-1 accuracy of a verified model on the test CSV.
fn accuracy(model: &etch_ir::Model, info: &etch_ir::infer::GraphInfo) -> Result<f64, String> {
    let plan = Plan::new(model, info).map_err(|e| e.to_string())?;
    let (input, shape) = single_input(&plan)?;
    let rows = read_samples(TEST, shape.iter().product(), usize::MAX)?;
    let mut correct = 0;
    for (label, x) in &rows {
        let out = plan
            .run(vec![(
                input.clone(),
                Value::F32(Array::new(shape.clone(), x.clone())),
            )])
            .map_err(|e| e.to_string())?;
        let Value::F32(y) = &out[0].1 else {
            return Err("the output is not float scores".into());
        };
        // the first of equal scores wins, as numpy's argmax
        let best = y
            .data
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
            .map(|(i, _)| i);
        correct += (best == Some(*label)) as usize;
    }
    Ok(correct as f64 / rows.len() as f64)
}

fn main() -> Result<(), String> {
    println!("| model | compression | top-1 | Δ top-1 | weights stored | smaller than float | sparsity | MACs by kind | passes |");
    println!("|---|---|---:|---:|---:|---:|---:|---|---|");
    for name in ["digits_cnn", "digits_mlp"] {
        let path = format!("examples/models/{name}.onnx.txt");
        let src = Source::read(&path).map_err(|e| e.to_string())?;
        let mut float_top1 = None;
        let mut float_bits = None;
        for (label, spec) in configs() {
            let spec_cell = if spec.is_empty() {
                "—".to_string()
            } else {
                format!("`{}`", spec.replace(&format!("\"{CALIB}\""), "…"))
            };
            let pipeline = Pipeline {
                passes: (!spec.is_empty()).then_some(spec.as_str()),
                verify_each: true,
                ..Default::default()
            };
            let p = match pipeline.run(&src, &mut Vec::new()) {
                Ok(p) => p,
                // a compression that does not apply to this model is reported, not hidden
                Err(PipelineError::Passes { error, .. }) => {
                    let why = match error {
                        PassError::Precondition { message, .. } => message,
                        e => e.to_string(),
                    };
                    println!(
                        "| {name} | {label} | n/a | | | | | | {spec_cell}: {} |",
                        why.replace('|', "/")
                    );
                    continue;
                }
                Err(e) => return Err(format!("{path}: {e}")),
            };
            let stats = model_stats(&p.model, &p.info, &[]);
            let top1 = accuracy(&p.model, &p.info)?;
            let base_top1 = *float_top1.get_or_insert(top1);
            let base_bits = *float_bits.get_or_insert(stats.stored_bits);
            println!(
                "| {name} | {label} | {:.2}% | {:+.2} | {:.2} KiB | {:.1}× | {:.1}% | {} | {spec_cell} |",
                100.0 * top1,
                100.0 * (top1 - base_top1),
                stats.stored_bits as f64 / 8192.0,
                base_bits as f64 / stats.stored_bits as f64,
                100.0 * stats.sparsity,
                mac_kinds(&stats),
            );
        }
    }
    // the trained low-bit models (scripts/train_qat.sh), as exported
    for (name, label) in TRAINED {
        let path = format!("examples/models/{name}.onnx");
        let src = Source::read(&path).map_err(|e| e.to_string())?;
        let p = Pipeline::default()
            .run(&src, &mut Vec::new())
            .map_err(|e| format!("{path}: {e}"))?;
        let stats = model_stats(&p.model, &p.info, &[]);
        let top1 = accuracy(&p.model, &p.info)?;
        println!(
            "| {name} | {label} | {:.2}% | | {:.2} KiB | {:.1}× | {:.1}% | {} | — (as exported) |",
            100.0 * top1,
            stats.stored_bits as f64 / 8192.0,
            stats.compression,
            100.0 * stats.sparsity,
            mac_kinds(&stats),
        );
    }
    println!();
    println!(
        "Top-1 on the {} test samples of `{TEST}` (CPU executor; quantized layers in integers); calibration on the first 512 rows of `{CALIB}`. \
         Post-training, no fine-tuning, except the trained rows (quantization-aware training with Brevitas, `scripts/train_qat.sh`): their factor is against float32 weights of the same network, and Δ top-1 is blank (their float counterparts are not shipped). Weights stored: codes at their bits (N:M patterns with their indices), biases and scales at 32 bits; \
         element-pruned weights are counted dense (etch has no sparse storage format besides N:M).",
        read_samples(TEST, 64, usize::MAX)?.len()
    );
    Ok(())
}
