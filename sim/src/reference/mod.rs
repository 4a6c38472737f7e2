//! The reference executors: run a verified graph on real inputs.

pub mod cpu;
mod value;

pub use value::{Array, Value};

/// Why a model cannot be run, or why a run failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExecError {
    #[error("node `{node}` ({op}): the executor does not implement {op}{detail}")]
    Unsupported { node: String, op: String, detail: String },
    #[error("node `{node}` ({op}): {message}")]
    Node { node: String, op: String, message: String },
    #[error("input `{name}`: {message}")]
    Input { name: String, message: String },
    #[error("the model does not compute `{0}`")]
    Missing(String),
}
