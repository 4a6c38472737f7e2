//! The wgpu device: one adapter, one device and queue, and every compute pipeline, made once per
//! plan. wgpu's validation errors are collected instead of panicking, and turned into `ExecError`s.

use std::sync::{Arc, Mutex};

use wgpu::util::DeviceExt;

use super::super::ExecError;

/// The compute kernels, one WGSL entry point each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// Tiled matrix product (Gemm, MatMul, convolution as an implicit GEMM).
    Gemm,
    /// The same product for few rows (fully connected layers at small batch).
    Gemv,
    /// Direct convolution, one output per invocation (depthwise and narrow groups).
    Conv,
    Pool,
    Reduce,
    Unary,
    Binary,
    BatchNorm,
    LayerNorm,
    Softmax,
    /// Strided copy with padding: Transpose, Slice, Split, Concat, Pad.
    Copy,
    Gather,
    /// A quantized Conv/Gemm in integers (codes in, codes out).
    IntLayer,
    /// QuantizeLinear and DequantizeLinear.
    Qdq,
    /// A table of codes (a quantized unary activation).
    Table,
    /// Nearest or linear `Resize` from per-axis tap tables.
    Resize,
    /// Transposed convolution, one output per invocation.
    ConvTranspose,
}

/// A kernel's WGSL source by name.
macro_rules! wgsl {
    ($name:literal) => {
        include_str!(concat!("shaders/", $name, ".wgsl"))
    };
}

/// Shared by every shader: the parameter words at binding 0.
const COMMON: &str = wgsl!("common");
/// The entry point of the one-dimensional kernels, which define `item`.
const EACH: &str = wgsl!("each");
/// The bindings of the kernels with one input `x` and one output `y`.
const IO: &str = wgsl!("io");

/// How a kernel's WGSL is completed: its own entry point, or `EACH`'s (with `IO`'s bindings).
#[derive(Clone, Copy)]
enum Form {
    Entry(&'static str),
    Each,
    EachIo,
}

const KERNELS: [(Kernel, Form, &str); 17] = [
    (Kernel::Gemm, Form::Entry("tiled"), wgsl!("gemm")),
    (Kernel::Gemv, Form::Entry("skinny"), wgsl!("gemm")),
    (Kernel::Conv, Form::Each, wgsl!("conv")),
    (Kernel::Pool, Form::EachIo, wgsl!("pool")),
    (Kernel::Reduce, Form::EachIo, wgsl!("reduce")),
    (Kernel::Unary, Form::EachIo, wgsl!("unary")),
    (Kernel::Binary, Form::Each, wgsl!("binary")),
    (Kernel::BatchNorm, Form::Each, wgsl!("batchnorm")),
    (Kernel::LayerNorm, Form::Each, wgsl!("layernorm")),
    (Kernel::Softmax, Form::EachIo, wgsl!("softmax")),
    (Kernel::Copy, Form::EachIo, wgsl!("copy")),
    (Kernel::Gather, Form::Each, wgsl!("gather")),
    (Kernel::IntLayer, Form::Each, wgsl!("intlayer")),
    (Kernel::Qdq, Form::Each, wgsl!("qdq")),
    (Kernel::Table, Form::Each, wgsl!("table")),
    (Kernel::Resize, Form::Each, wgsl!("resize")),
    (Kernel::ConvTranspose, Form::Each, wgsl!("convtranspose")),
];

/// Invocations per workgroup of the one-dimensional kernels (`WG` in common.wgsl).
pub(crate) const WG: usize = 256;

/// An open device with its pipelines.
pub(crate) struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pipelines: Vec<(Kernel, wgpu::ComputePipeline, wgpu::BindGroupLayout)>,
    /// Errors wgpu reported outside an error scope (validation, out of memory, device lost).
    errors: Arc<Mutex<Vec<String>>>,
}

fn device_error(message: String) -> ExecError {
    ExecError::Device(message)
}

impl Gpu {
    /// Finds an adapter (wgpu's default choice; `WGPU_BACKEND` may narrow the backends), opens a
    /// device and compiles every kernel.
    pub fn new() -> Result<Gpu, ExecError> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let options = wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        };
        let adapter = pollster::block_on(instance.request_adapter(&options)).map_err(|e| {
            let env = match std::env::var("WGPU_BACKEND") {
                Ok(v) => format!(" WGPU_BACKEND is set to \"{v}\", which limits the backends wgpu tries; unset it to try them all."),
                Err(_) => String::new(),
            };
            ExecError::NoAdapter(format!("{e}.{env}"))
        })?;
        let info = adapter.get_info();
        let have = adapter.limits();
        // wgpu's defaults (8 storage buffers per stage), with buffers as large as the adapter allows
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: have.max_storage_buffer_binding_size,
            max_buffer_size: have.max_buffer_size,
            ..wgpu::Limits::default()
        };
        let descriptor = wgpu::DeviceDescriptor {
            label: Some("etch"),
            required_limits: limits,
            ..Default::default()
        };
        let (device, queue) =
            pollster::block_on(adapter.request_device(&descriptor)).map_err(|e| {
                device_error(format!(
                    "the adapter `{}` ({:?}) cannot open a device with the limits etch needs: {e}",
                    info.name, info.backend
                ))
            })?;
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(e.to_string())
        }));
        let pipelines = KERNELS
            .iter()
            .map(|&(kernel, form, src)| {
                let (entry, source) = match form {
                    Form::Entry(entry) => (entry, format!("{COMMON}\n{src}")),
                    Form::Each => ("main", format!("{COMMON}\n{EACH}\n{src}")),
                    Form::EachIo => ("main", format!("{COMMON}\n{EACH}\n{IO}\n{src}")),
                };
                let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(entry),
                    source: wgpu::ShaderSource::Wgsl(source.into()),
                });
                let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry),
                    layout: None,
                    module: &module,
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    cache: None,
                });
                let layout = pipeline.get_bind_group_layout(0);
                (kernel, pipeline, layout)
            })
            .collect();
        let gpu = Gpu {
            device,
            queue,
            info,
            pipelines,
            errors,
        };
        gpu.check("compiling the kernels")?;
        Ok(gpu)
    }

    /// One line naming the adapter, for reports.
    pub fn describe(&self) -> String {
        let i = &self.info;
        format!(
            "{} ({:?}, {:?}, {} {})",
            i.name, i.backend, i.device_type, i.driver, i.driver_info
        )
    }

    pub fn pipeline(&self, kernel: Kernel) -> &wgpu::ComputePipeline {
        &self
            .pipelines
            .iter()
            .find(|(k, ..)| *k == kernel)
            .expect("every kernel has a pipeline")
            .1
    }

    /// The bind group layout of a kernel (derived from its WGSL).
    pub fn layout(&self, kernel: Kernel) -> &wgpu::BindGroupLayout {
        &self
            .pipelines
            .iter()
            .find(|(k, ..)| *k == kernel)
            .expect("every kernel has a pipeline")
            .2
    }

    /// Fails with the first error wgpu reported since the last check.
    pub fn check(&self, doing: &str) -> Result<(), ExecError> {
        let first = std::mem::take(&mut *self.errors.lock().unwrap_or_else(|p| p.into_inner()))
            .into_iter()
            .next();
        match first {
            Some(e) => Err(device_error(format!(
                "wgpu reported an error while {doing}: {e}"
            ))),
            None => Ok(()),
        }
    }

    /// A storage buffer of `len` floats (at least one word: wgpu cannot bind an empty buffer).
    pub fn buffer(&self, len: usize) -> Result<wgpu::Buffer, ExecError> {
        let size = self.byte_size(len)?;
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        }))
    }

    /// A storage buffer holding `words` (floats or parameter words).
    pub fn upload<T: bytemuck::Pod>(&self, words: &[T]) -> Result<wgpu::Buffer, ExecError> {
        self.byte_size(words.len())?;
        let pad = [0u8; 4];
        let bytes: &[u8] = if words.is_empty() {
            &pad
        } else {
            bytemuck::cast_slice(words)
        };
        Ok(self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: bytes,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_DST
                    | wgpu::BufferUsages::COPY_SRC,
            }))
    }

    /// The byte size of `len` 4-byte words, checked against the largest buffer (the kernels
    /// index with 32 bits; a dispatch checks what one binding can hold).
    fn byte_size(&self, len: usize) -> Result<u64, ExecError> {
        let size = 4 * len.max(1) as u64;
        let limit = self.device.limits().max_buffer_size;
        if size > limit || len >= 1 << 31 {
            return Err(device_error(format!(
                "a tensor of {len} values ({size} bytes) is larger than the largest GPU buffer ({limit} bytes, 2^31 values) on `{}`",
                self.info.name
            )));
        }
        Ok(size)
    }

    /// Reads buffers back: copies each into a mappable buffer after the work in `encoder`,
    /// submits, and waits.
    pub fn submit_and_read(
        &self,
        mut encoder: wgpu::CommandEncoder,
        reads: &[(&wgpu::Buffer, usize)],
    ) -> Result<Vec<Vec<f32>>, ExecError> {
        let staging: Vec<wgpu::Buffer> = reads
            .iter()
            .map(|&(buf, len)| {
                let size = 4 * len.max(1) as u64;
                let s = self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("read back"),
                    size,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                encoder.copy_buffer_to_buffer(buf, 0, &s, 0, size);
                s
            })
            .collect();
        self.queue.submit([encoder.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        for (k, s) in staging.iter().enumerate() {
            let tx = tx.clone();
            s.slice(..).map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send((k, r));
            });
        }
        drop(tx);
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| device_error(format!("waiting for the GPU failed: {e}")))?;
        for (_, r) in rx.iter() {
            r.map_err(|e| device_error(format!("reading results back from the GPU failed: {e}")))?;
        }
        self.check("running the model")?;
        let mut out = Vec::with_capacity(reads.len());
        for (s, &(_, len)) in staging.iter().zip(reads) {
            let view = s.get_mapped_range(..).map_err(|e| {
                device_error(format!("reading results back from the GPU failed: {e}"))
            })?;
            out.push(bytemuck::cast_slice::<u8, f32>(&view)[..len].to_vec());
            drop(view);
            s.unmap();
        }
        Ok(out)
    }
}
