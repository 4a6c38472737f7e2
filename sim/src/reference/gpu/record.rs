//! Recording a plan for one set of input shapes: walk the steps once, allocate every device
//! buffer (reusing a buffer once the last value in it is dead), and keep the dispatches with their
//! bind groups so each run only uploads the inputs, replays the dispatches and reads the outputs.

use std::borrow::Cow;
use std::collections::HashMap;

use super::super::cpu::Plan;
use super::super::{ExecError, Value};
use super::device::{Gpu, Kernel, WG};

/// A tensor in a device buffer (always from the buffer's start): floats, or the integer codes of
/// a quantized model held exactly as floats.
#[derive(Clone)]
pub(crate) struct DevTensor {
    /// Which buffer: reshapes share one, and it goes back to the pool when no live value uses it.
    pub id: usize,
    pub buf: wgpu::Buffer,
    pub shape: Vec<usize>,
    /// Whether it holds integer codes (read back as integers; only integer kernels take it).
    pub codes: bool,
}

impl DevTensor {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A value while recording: on the host (integers, constants, values computed from them), on the
/// device (activations), or both (float constants).
pub(crate) struct Val<'p> {
    pub host: Option<Cow<'p, Value>>,
    pub dev: Option<DevTensor>,
}

impl Val<'_> {
    pub fn shape(&self) -> &[usize] {
        match (&self.dev, &self.host) {
            (Some(d), _) => &d.shape,
            (None, Some(h)) => h.shape(),
            (None, None) => unreachable!("a value lives somewhere"),
        }
    }

    pub fn on_device(t: DevTensor) -> Val<'static> {
        Val {
            host: None,
            dev: Some(t),
        }
    }
}

/// What a recording depends on: the shape of each float input, the values of each integer input.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Key(Vec<(Vec<usize>, Option<Vec<i64>>)>);

impl Key {
    pub fn of(inputs: &[(usize, Value)]) -> Key {
        Key(inputs
            .iter()
            .map(|(_, v)| match v {
                Value::F32(a) => (a.shape.clone(), None),
                Value::I64(a) => (a.shape.clone(), Some(a.data.clone())),
            })
            .collect())
    }
}

struct Dispatch {
    kernel: Kernel,
    bind: wgpu::BindGroup,
    groups: [u32; 3],
}

/// The graph's dispatches for one key, with the buffers they use.
pub(crate) struct Recording {
    pub key: Key,
    /// Per plan input, the buffer a float input is written to.
    inputs: Vec<Option<wgpu::Buffer>>,
    dispatches: Vec<Dispatch>,
    /// Per graph output: known on the host, or read back from the device.
    outputs: Vec<(String, Result<Value, DevTensor>)>,
}

/// Why a step could not be recorded: a problem with the node (reported with its name) or with the
/// device.
pub(crate) enum Failure {
    Node(String),
    Exec(ExecError),
}

impl From<String> for Failure {
    fn from(e: String) -> Failure {
        Failure::Node(e)
    }
}

impl From<&str> for Failure {
    fn from(e: &str) -> Failure {
        Failure::Node(e.to_string())
    }
}

impl From<ExecError> for Failure {
    fn from(e: ExecError) -> Failure {
        Failure::Exec(e)
    }
}

/// The state of a recording in progress.
pub(crate) struct Recorder<'g> {
    pub gpu: &'g Gpu,
    dispatches: Vec<Dispatch>,
    /// Live values per pooled buffer id.
    refs: HashMap<usize, usize>,
    /// Dead buffers by length in floats.
    pool: HashMap<usize, Vec<wgpu::Buffer>>,
    next_id: usize,
}

impl<'g> Recorder<'g> {
    /// A buffer for a new tensor: a dead one of the same length, or a new one.
    pub fn alloc(&mut self, shape: Vec<usize>) -> Result<DevTensor, ExecError> {
        let len: usize = shape.iter().product();
        let buf = match self.pool.get_mut(&len).and_then(|v| v.pop()) {
            Some(b) => b,
            None => self.gpu.buffer(len)?,
        };
        let id = self.fresh_id();
        self.refs.insert(id, 0);
        Ok(DevTensor {
            id,
            buf,
            shape,
            codes: false,
        })
    }

    /// Uploads host floats for one use (not pooled: the recording keeps them).
    pub fn upload(&mut self, a: &super::super::Array<f32>) -> Result<DevTensor, ExecError> {
        Ok(DevTensor {
            id: self.fresh_id(),
            buf: self.gpu.upload(&a.data)?,
            shape: a.shape.clone(),
            codes: false,
        })
    }

    fn fresh_id(&mut self) -> usize {
        self.next_id += 1;
        self.next_id
    }

    fn hold(&mut self, t: &DevTensor) {
        if let Some(n) = self.refs.get_mut(&t.id) {
            *n += 1;
        }
    }

    fn release(&mut self, t: &DevTensor) {
        if let Some(n) = self.refs.get_mut(&t.id) {
            *n -= 1;
            if *n == 0 {
                self.refs.remove(&t.id);
                self.pool.entry(t.numel()).or_default().push(t.buf.clone());
            }
        }
    }

    /// Records one dispatch of `kernel`: binding 0 holds `params`, bindings 1… the buffers.
    pub fn dispatch(
        &mut self,
        kernel: Kernel,
        params: &[u32],
        bufs: &[&wgpu::Buffer],
        groups: [u32; 3],
    ) -> Result<(), ExecError> {
        let whole: Vec<wgpu::BufferBinding> = bufs
            .iter()
            .map(|&buffer| wgpu::BufferBinding {
                buffer,
                offset: 0,
                size: None,
            })
            .collect();
        self.dispatch_bindings(kernel, params, &whole, groups)
    }

    /// Like `dispatch`, with buffer ranges.
    pub fn dispatch_bindings(
        &mut self,
        kernel: Kernel,
        params: &[u32],
        bufs: &[wgpu::BufferBinding],
        groups: [u32; 3],
    ) -> Result<(), ExecError> {
        if groups.contains(&0) {
            return Ok(());
        }
        let limits = self.gpu.device.limits();
        if let Some(&g) = groups
            .iter()
            .find(|&&g| g > limits.max_compute_workgroups_per_dimension)
        {
            return Err(ExecError::Device(format!("a {kernel:?} dispatch needs {g} workgroups in one dimension, more than the {} the device allows", limits.max_compute_workgroups_per_dimension)));
        }
        for b in bufs {
            let size = b.size.map_or(b.buffer.size() - b.offset, |s| s.get());
            if size > limits.max_storage_buffer_binding_size {
                return Err(ExecError::Device(format!(
                    "a {kernel:?} dispatch reads a tensor of {size} bytes, more than the {} bytes one buffer binding can hold on `{}`",
                    limits.max_storage_buffer_binding_size, self.gpu.info.name
                )));
            }
        }
        let params = self.gpu.upload(params)?;
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: params.as_entire_binding(),
        }];
        entries.extend(bufs.iter().enumerate().map(|(k, b)| wgpu::BindGroupEntry {
            binding: k as u32 + 1,
            resource: wgpu::BindingResource::Buffer(b.clone()),
        }));
        let bind = self
            .gpu
            .device
            .create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: self.gpu.layout(kernel),
                entries: &entries,
            });
        self.dispatches.push(Dispatch {
            kernel,
            bind,
            groups,
        });
        Ok(())
    }

    /// Records a one-dimensional kernel: one invocation per index below `params[0]`.
    pub fn dispatch_1d(
        &mut self,
        kernel: Kernel,
        params: &[u32],
        bufs: &[&wgpu::Buffer],
    ) -> Result<(), ExecError> {
        let groups = (params[0] as usize).div_ceil(WG);
        let x = groups.min(65535);
        let y = groups.div_ceil(x.max(1));
        self.dispatch(kernel, params, bufs, [x as u32, y as u32, 1])
    }
}

impl Recording {
    /// Records the plan for these inputs (already checked against the plan).
    pub fn new(
        plan: &Plan,
        gpu: &Gpu,
        consts: &[Option<DevTensor>],
        inputs: &[(usize, Value)],
        key: Key,
    ) -> Result<Recording, ExecError> {
        let mut r = Recorder {
            gpu,
            dispatches: Vec::new(),
            refs: HashMap::new(),
            pool: HashMap::new(),
            next_id: consts.len(),
        };
        let mut slots: Vec<Option<Val>> = plan
            .consts
            .iter()
            .zip(consts)
            .map(|(c, d)| {
                c.as_ref().map(|c| Val {
                    host: Some(Cow::Borrowed(c)),
                    dev: d.clone(),
                })
            })
            .collect();
        let mut input_bufs = Vec::with_capacity(inputs.len());
        for (s, v) in inputs {
            slots[*s] = Some(match v {
                Value::F32(a) => {
                    let t = r.alloc(a.shape.clone())?;
                    r.hold(&t);
                    input_bufs.push(Some(t.buf.clone()));
                    Val::on_device(t)
                }
                // integer inputs are part of the key: the recording may compute with their values
                Value::I64(_) => {
                    input_bufs.push(None);
                    Val {
                        host: Some(Cow::Owned(v.clone())),
                        dev: None,
                    }
                }
            });
        }
        for st in &plan.steps {
            let outs = {
                let ins: Vec<Option<&Val>> = st
                    .inputs
                    .iter()
                    .map(|s| s.and_then(|s| slots[s].as_ref()))
                    .collect();
                r.step(st, &ins, plan.opset).map_err(|f| match f {
                    Failure::Node(message) => ExecError::Node {
                        node: st.name.clone(),
                        op: st.op_type.clone(),
                        message,
                    },
                    Failure::Exec(e) => e,
                })?
            };
            // pooling and reshaping between quantized layers keep their input's codes
            let mut outs = outs;
            if st.on_codes {
                for t in outs.iter_mut().filter_map(|v| v.dev.as_mut()) {
                    t.codes = true;
                }
            }
            for (s, v) in st.outputs.iter().zip(outs) {
                if let Some(s) = s {
                    if let Some(t) = &v.dev {
                        r.hold(t);
                    }
                    slots[*s] = Some(v);
                }
            }
            for &s in &st.frees {
                if let Some(t) = slots[s].take().and_then(|v| v.dev) {
                    r.release(&t);
                }
            }
        }
        let mut outputs = Vec::with_capacity(plan.outputs.len());
        for (name, s) in &plan.outputs {
            let v = slots[*s]
                .as_ref()
                .ok_or_else(|| ExecError::Missing(name.clone()))?;
            outputs.push((
                name.clone(),
                match (&v.host, &v.dev) {
                    (Some(h), _) => Ok(h.clone().into_owned()),
                    (None, Some(t)) => Err(t.clone()),
                    (None, None) => unreachable!("a value lives somewhere"),
                },
            ));
        }
        gpu.check("recording the model")?;
        Ok(Recording {
            key,
            inputs: input_bufs,
            dispatches: r.dispatches,
            outputs,
        })
    }

    /// Uploads the inputs, runs every dispatch in one submission and reads the outputs back.
    pub fn replay(
        &self,
        gpu: &Gpu,
        inputs: &[(usize, Value)],
    ) -> Result<Vec<(String, Value)>, ExecError> {
        for (buf, (_, v)) in self.inputs.iter().zip(inputs) {
            if let (Some(buf), Value::F32(a)) = (buf, v) {
                if !a.data.is_empty() {
                    gpu.queue
                        .write_buffer(buf, 0, bytemuck::cast_slice(&a.data));
                }
            }
        }
        let mut encoder = gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("etch run"),
            });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: None,
                timestamp_writes: None,
            });
            for d in &self.dispatches {
                pass.set_pipeline(gpu.pipeline(d.kernel));
                pass.set_bind_group(0, &d.bind, &[]);
                pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
            }
        }
        let reads: Vec<(&wgpu::Buffer, usize)> = self
            .outputs
            .iter()
            .filter_map(|(_, o)| o.as_ref().err())
            .map(|t| (&t.buf, t.numel()))
            .collect();
        let mut data = gpu.submit_and_read(encoder, &reads)?.into_iter();
        Ok(self
            .outputs
            .iter()
            .map(|(name, o)| {
                let v = match o {
                    Ok(v) => v.clone(),
                    Err(t) => {
                        let read = data.next().expect("one read per device output");
                        if t.codes {
                            Value::I64(super::super::Array::new(
                                t.shape.clone(),
                                read.into_iter().map(|q| q as i64).collect(),
                            ))
                        } else {
                            Value::F32(super::super::Array::new(t.shape.clone(), read))
                        }
                    }
                };
                (name.clone(), v)
            })
            .collect())
    }
}
