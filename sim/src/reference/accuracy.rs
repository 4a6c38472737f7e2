//! Top-1 accuracy of a classifier on labelled samples: `etch eval` and `etch sweep` count it the
//! same way (the first of equal scores wins, as numpy's argmax: quantized scores can tie).

use super::{Array, ExecError, Value};

/// Why a model cannot be scored on the samples.
#[derive(Debug, thiserror::Error)]
pub enum AccuracyError {
    #[error("{0}")]
    Exec(#[from] ExecError),
    #[error("the output is not float scores")]
    NotScores,
    #[error("sample {sample} has label {label}, but the model scores {classes} classes (0 to {}); check the data belongs to this model", .classes.saturating_sub(1))]
    Label {
        sample: usize,
        label: usize,
        classes: usize,
    },
}

/// How many of `samples` (label, flattened input of `shape`) the model classifies right; `infer`
/// runs the model on one input and gives its first output, `step` is told after each sample.
pub fn top1(
    shape: &[usize],
    samples: &[(usize, Vec<f32>)],
    mut infer: impl FnMut(Value) -> Result<Value, ExecError>,
    step: impl Fn(),
) -> Result<usize, AccuracyError> {
    let mut correct = 0;
    for (k, (label, x)) in samples.iter().enumerate() {
        let Value::F32(y) = infer(Value::F32(Array::new(shape.to_vec(), x.clone())))? else {
            return Err(AccuracyError::NotScores);
        };
        if *label >= y.data.len() {
            return Err(AccuracyError::Label {
                sample: k + 1,
                label: *label,
                classes: y.data.len(),
            });
        }
        let best = y
            .data
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
            .map(|(i, _)| i);
        if best == Some(*label) {
            correct += 1;
        }
        step();
    }
    Ok(correct)
}
