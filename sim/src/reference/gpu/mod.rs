//! The GPU executor: the CPU executor's plan run through WGSL compute kernels with wgpu (Vulkan,
//! Metal, DX12, or GL; Mesa's lavapipe on a machine without a GPU).
//!
//! `GpuPlan::new` opens the device, compiles every kernel and uploads the weights once. A run
//! records, per set of input shapes, the dispatches of the whole graph with every intermediate
//! buffer allocated (and reused once its last reader has run); later runs with the same shapes
//! replay that recording: the graph inputs go up, the dispatches run in one submission with every
//! activation staying on the device, and only the graph outputs come down.
//!
//! Float tensors live on the device. Integer (int64) values, which exporters use for shape
//! arithmetic that shape inference did not fold, are computed on the host with the CPU
//! executor's own code while recording; they can depend on shapes and constants, not on values
//! computed on the device.

mod device;
mod int;
mod lower;
mod record;

use std::sync::Mutex;

use etch_ir::infer::GraphInfo;
use etch_ir::Model;

use super::cpu::{Plan, PlanInput};
use super::{ExecError, Value};
use device::Gpu;
use record::Recording;

/// A model compiled for repeated execution on a GPU.
pub struct GpuPlan {
    plan: Plan,
    gpu: Gpu,
    /// Float constants on the device, by slot.
    consts: Vec<Option<record::DevTensor>>,
    /// The recording of the last run's input shapes.
    last: Mutex<Option<Recording>>,
}

impl GpuPlan {
    /// Compiles a verified model for the GPU: fails when the executor lacks an op (as the CPU
    /// plan does) or when no GPU adapter can be found.
    pub fn new(model: &Model, info: &GraphInfo) -> Result<GpuPlan, ExecError> {
        let plan = Plan::new(model, info)?;
        let gpu = Gpu::new()?;
        let mut consts = Vec::with_capacity(plan.consts.len());
        for (slot, c) in plan.consts.iter().enumerate() {
            consts.push(match c {
                Some(Value::F32(a)) => Some(record::DevTensor {
                    id: slot,
                    buf: gpu.upload(&a.data)?,
                    shape: a.shape.clone(),
                    codes: false,
                }),
                _ => None,
            });
        }
        gpu.check("uploading the weights")?;
        Ok(GpuPlan {
            plan,
            gpu,
            consts,
            last: Mutex::new(None),
        })
    }

    /// The inputs a run needs, in graph order.
    pub fn inputs(&self) -> impl Iterator<Item = &PlanInput> {
        self.plan.inputs()
    }

    /// The adapter the plan runs on: name, backend, device type and driver.
    pub fn adapter(&self) -> String {
        self.gpu.describe()
    }

    /// Runs the model on named inputs and returns the graph outputs in order.
    pub fn run(&self, given: Vec<(String, Value)>) -> Result<Vec<(String, Value)>, ExecError> {
        let inputs = self.plan.take_inputs(given)?;
        let key = record::Key::of(&inputs);
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.as_ref().is_none_or(|r| r.key != key) {
            // drop the old recording's buffers before making new ones
            *last = None;
            *last = Some(Recording::new(
                &self.plan,
                &self.gpu,
                &self.consts,
                &inputs,
                key,
            )?);
        }
        let rec = last.as_ref().expect("recorded above");
        rec.replay(&self.gpu, &inputs)
    }
}
