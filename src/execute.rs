//! What `run` and `eval` share: a model loaded, its shape-only weights filled, compiled to a plan;
//! and `.npy` files in and out.

use etch_sim::reference::cpu::{Plan, PlanInput};
use etch_sim::reference::gpu::GpuPlan;
use etch_sim::reference::{Array, ExecError, Value};

use crate::load::{self, CliError};

/// Which executor runs a model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// The CPU reference executor (the golden model).
    #[default]
    Cpu,
    /// WGSL kernels through wgpu: Vulkan, Metal, DX12, or Mesa's lavapipe without a GPU.
    Gpu,
}

/// A model compiled for one of the executors.
pub enum Executor {
    Cpu(Plan),
    Gpu(Box<GpuPlan>),
}

impl Executor {
    /// The inputs a run needs, in graph order.
    pub fn inputs(&self) -> Box<dyn Iterator<Item = &PlanInput> + '_> {
        match self {
            Executor::Cpu(p) => Box::new(p.inputs()),
            Executor::Gpu(p) => Box::new(p.inputs()),
        }
    }

    /// Runs the model on named inputs and returns the graph outputs in order.
    pub fn run(&self, given: Vec<(String, Value)>) -> Result<Vec<(String, Value)>, ExecError> {
        match self {
            Executor::Cpu(p) => p.run(given),
            Executor::Gpu(p) => p.run(given),
        }
    }
}

/// Loads, fills, verifies, runs the passes and compiles a model for the chosen executor.
pub fn plan(
    path: &str,
    seed: u64,
    backend: Backend,
    passes: Option<&str>,
    verify_each: bool,
) -> Result<Executor, CliError> {
    let loaded = load::prepare(
        path,
        etch_sim::pipeline::Pipeline {
            fill: true,
            seed,
            passes,
            verify_each,
            ..Default::default()
        },
    )?;
    let fail = |e: ExecError| format!("error: {path}: {e}");
    Ok(match backend {
        Backend::Cpu => Executor::Cpu(Plan::new(&loaded.model, &loaded.info).map_err(fail)?),
        Backend::Gpu => {
            let p = GpuPlan::new(&loaded.model, &loaded.info).map_err(fail)?;
            eprintln!("note: running on the GPU adapter {}", p.adapter());
            Executor::Gpu(Box::new(p))
        }
    })
}

/// Reads a `.npy` file of float32 or int64 values in C order.
pub fn read_npy(path: &str) -> Result<Value, CliError> {
    let bytes = etch_ir::limits::read_file(path, etch_ir::limits::FileKind::Data)
        .map_err(|e| format!("error: {e}"))?;
    let npy = npyz::NpyFile::new(&bytes[..])
        .map_err(|e| format!("error: `{path}` is not a .npy file: {e}"))?;
    if npy.order() == npyz::Order::Fortran {
        return Err(format!(
            "error: `{path}` is in Fortran order; save it in C order (numpy.ascontiguousarray)"
        ));
    }
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let dtype = npy.dtype().descr();
    let bad = |e: std::io::Error| format!("error: cannot read the values of `{path}`: {e}");
    match dtype.as_str() {
        "'<f4'" => Ok(Value::F32(Array::new(shape, npy.into_vec::<f32>().map_err(bad)?))),
        "'<i8'" => Ok(Value::I64(Array::new(shape, npy.into_vec::<i64>().map_err(bad)?))),
        other => Err(format!("error: `{path}` holds {other} values; etch reads float32 ('<f4') and int64 ('<i8') arrays: convert with `x.astype(numpy.float32)`")),
    }
}

/// Writes a value as a `.npy` file.
pub fn write_npy(path: &str, v: &Value) -> Result<(), CliError> {
    use npyz::WriterBuilder;
    let shape: Vec<u64> = v.shape().iter().map(|&d| d as u64).collect();
    let fail = |e: std::io::Error| format!("error: cannot write `{path}`: {e}");
    let file = std::io::BufWriter::new(std::fs::File::create(path).map_err(fail)?);
    match v {
        Value::F32(a) => {
            let mut w = npyz::WriteOptions::new()
                .default_dtype()
                .shape(&shape)
                .writer(file)
                .begin_nd()
                .map_err(fail)?;
            w.extend(a.data.iter().copied()).map_err(fail)?;
            w.finish().map_err(fail)
        }
        Value::I64(a) => {
            let mut w = npyz::WriteOptions::new()
                .default_dtype()
                .shape(&shape)
                .writer(file)
                .begin_nd()
                .map_err(fail)?;
            w.extend(a.data.iter().copied()).map_err(fail)?;
            w.finish().map_err(fail)
        }
    }
}
