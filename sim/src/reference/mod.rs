//! The reference executors: run a verified graph on real inputs, on the CPU (`cpu`, the golden
//! model) or on a GPU through wgpu (`gpu`).

pub mod accuracy;
pub mod calibrate;
pub mod cpu;
pub mod gpu;
mod value;

pub use value::{Array, Value};

/// Why a model cannot be run, or why a run failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExecError {
    #[error("node `{node}` ({op}): the executor does not implement {op}{detail}")]
    Unsupported {
        node: String,
        op: String,
        detail: String,
    },
    #[error("node `{node}` ({op}): {message}")]
    Node {
        node: String,
        op: String,
        message: String,
    },
    #[error("input `{name}`: {message}")]
    Input { name: String, message: String },
    #[error("the model does not compute `{0}`")]
    Missing(String),
    #[error("no GPU adapter was found ({0}) Install a Vulkan driver: on Debian or Ubuntu `apt-get install mesa-vulkan-drivers libvulkan1` gives Mesa's lavapipe, which runs on the CPU; with a GPU, install its Vulkan, Metal or DX12 driver")]
    NoAdapter(String),
    #[error("GPU: {0}")]
    Device(String),
    /// A value would take more memory than the limits allow (checked before allocating).
    #[error(transparent)]
    Limit(#[from] etch_ir::limits::LimitError),
}
