//! The integer layer program the hardware runs, and its golden values.
//!
//! [`lower`] reads a quantized model's chain of integer steps off the CPU executor's plan
//! (`etch_sim::program`): convolutions and GEMMs with their `IntLayer` (weight codes in MAC,
//! power-of-two or XNOR form, int32 bias, per-channel fixed-point multiplier and shift, input zero
//! point or binary thresholds, output zero point and clamp), MaxPool and reshapes on codes, with
//! shapes and resolved windows. [`golden`] runs the CPU executor on test inputs and records the
//! codes entering the first step, leaving every step, and leaving the last: the values the RTL and
//! the HLS C simulation must reproduce bit for bit. The arithmetic is the executor's own
//! (`etch_sim::reference::cpu::int`); nothing here re-implements it.

use etch_ir::infer::GraphInfo;
use etch_ir::Model;
use etch_sim::reference::calibrate::{read_samples, single_input};
use etch_sim::reference::cpu::Plan;
use etch_sim::reference::{Array, Value};

pub use etch_sim::program::{IntOp, IntProgram, IntStep, ProgramError, Window2};
pub use etch_sim::reference::cpu::int::dot::{ShiftCode, WeightCodes};
pub use etch_sim::reference::cpu::int::requant::Requant;
pub use etch_sim::reference::cpu::int::{InputCode, IntLayer};

/// Why golden values could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GoldenError {
    #[error("{0}")]
    Data(String),
    #[error("the CPU executor failed: {0}")]
    Exec(String),
    #[error("the executor never produced `{0}`")]
    Missing(String),
}

/// Lowers a verified model to its integer program.
pub fn lower(model: &Model, info: &GraphInfo) -> Result<IntProgram, ProgramError> {
    etch_sim::program::lower(model, info)
}

/// The golden codes of one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleGolden {
    /// The label of the CSV row.
    pub label: usize,
    /// Codes entering the first step (row-major, the input's shape).
    pub input: Vec<i64>,
    /// Codes leaving each step, in program order.
    pub steps: Vec<Vec<i64>>,
    /// Codes leaving the last step (= `steps.last()`).
    pub output: Vec<i64>,
}

/// Runs the CPU executor on the first `rows` rows of a CSV (label, then the flattened float input)
/// and records the program's codes.
pub fn golden(
    model: &Model,
    info: &GraphInfo,
    program: &IntProgram,
    csv: &str,
    rows: usize,
) -> Result<Vec<SampleGolden>, GoldenError> {
    let plan = Plan::new(model, info).map_err(|e| GoldenError::Exec(e.to_string()))?;
    let (_, shape) = single_input(&plan).map_err(GoldenError::Data)?;
    let per: usize = shape.iter().product();
    let samples = read_samples(csv, per, rows).map_err(GoldenError::Data)?;
    golden_of(model, info, program, samples)
}

/// The values per sample a model's single input takes (the product of its shape).
pub fn input_len(model: &Model, info: &GraphInfo) -> Result<usize, GoldenError> {
    let plan = Plan::new(model, info).map_err(|e| GoldenError::Exec(e.to_string()))?;
    let (_, shape) = single_input(&plan).map_err(GoldenError::Data)?;
    Ok(shape.iter().product())
}

/// Golden codes for given float inputs `(label, values)`.
pub fn golden_of(
    model: &Model,
    info: &GraphInfo,
    program: &IntProgram,
    samples: Vec<(usize, Vec<f32>)>,
) -> Result<Vec<SampleGolden>, GoldenError> {
    let plan = Plan::new(model, info).map_err(|e| GoldenError::Exec(e.to_string()))?;
    let (input, shape) = single_input(&plan).map_err(GoldenError::Data)?;
    let mut watch = vec![program.input.clone()];
    watch.extend(program.steps.iter().map(|s| s.output.clone()));
    let mut out = Vec::with_capacity(samples.len());
    for (label, x) in samples {
        let given = vec![(input.clone(), Value::F32(Array::new(shape.clone(), x)))];
        let mut seen: std::collections::HashMap<String, Vec<i64>> = Default::default();
        plan.run_observed(given, &watch, &mut |name, v| {
            if let Value::I64(a) = v {
                seen.insert(name.to_string(), a.data.clone());
            }
        })
        .map_err(|e| GoldenError::Exec(e.to_string()))?;
        let get = |n: &str| {
            seen.get(n)
                .cloned()
                .ok_or_else(|| GoldenError::Missing(n.to_string()))
        };
        let steps = program
            .steps
            .iter()
            .map(|s| get(&s.output))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(SampleGolden {
            label,
            input: get(&program.input)?,
            output: get(&program.output)?,
            steps,
        });
    }
    Ok(out)
}
