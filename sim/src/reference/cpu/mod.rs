//! The CPU executor: float32 inference of a verified graph, batch ≥ 1. A `Plan` resolves names to
//! slots and converts constants once, so repeated runs (benchmarks, evaluation) pay only for compute.

/// Runs `f(args)` compiled for 256-bit vectors where the CPU has AVX2, and for the baseline
/// otherwise: for loops the compiler vectorizes whose arithmetic gives the same bits at any
/// vector width (no fused multiply-add is ever formed, so any elementwise arithmetic does).
macro_rules! each_path {
    ($f:ident($($arg:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        let result = if std::arch::is_x86_feature_detected!("avx2") {
            #[target_feature(enable = "avx2")]
            unsafe fn wide<R>(f: impl FnOnce() -> R) -> R {
                f()
            }
            // SAFETY: the CPU has AVX2, the only feature `wide` enables
            unsafe { wide(#[inline(always)] || $f($($arg),*)) }
        } else {
            $f($($arg),*)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let result = $f($($arg),*);
        result
    }};
}

mod blocks;
pub(crate) mod conv;
mod depthwise;
pub(crate) mod einsum;
pub(crate) mod elementwise;
mod fuse;
pub mod int;
pub(crate) mod layout;
pub(crate) mod linear;
pub(crate) mod logic;
pub(crate) mod pool;
pub(crate) mod resize;
pub(crate) mod resolve;
pub(crate) mod select;
mod winograd;

use std::collections::HashMap;

use etch_ir::infer::GraphInfo;
use etch_ir::op::Op;
use etch_ir::tensor::{Data, Dim, ElemType, Tensor, Type};
use etch_ir::Model;

use super::value::{Array, Value};
use super::ExecError;
use elementwise::Activation;
use pool::PoolKind;

/// Kernel results; the plan adds which node failed.
pub(crate) type Res<T> = Result<T, String>;

/// The element count of an output of `shape` whose size is only known at run time, checked
/// against the process's tensor limit (`--max-bytes`) before it is allocated.
pub(crate) fn output_len(shape: &[usize], item_bytes: u64) -> Res<usize> {
    let count = etch_ir::limits::product_u64(shape.iter().map(|&d| d as u64));
    etch_ir::limits::Limits::current()
        .tensor("the output", count, item_bytes)
        .map_err(|e| e.to_string())?;
    Ok(count.unwrap_or(0) as usize)
}

/// A graph input the caller must supply.
#[derive(Debug, Clone)]
pub struct PlanInput {
    pub name: String,
    pub elem: ElemType,
    /// Declared dims (symbolic ones accept any extent).
    pub dims: Vec<Dim>,
}

/// One node to execute, its values resolved to slots.
#[derive(Clone)]
pub(crate) struct Step {
    pub name: String,
    pub op_type: String,
    pub op: Op,
    pub inputs: Vec<Option<usize>>,
    pub outputs: Vec<Option<usize>>,
    /// Slots whose last reader is this step, freed after it.
    pub frees: Vec<usize>,
    /// The index of the graph node it computes (the layer, for a fused integer kernel).
    pub node: usize,
    /// Element types of the outputs, as inferred (QuantizeLinear's range comes from it).
    pub out_elems: Vec<Option<ElemType>>,
    /// A quantized layer run in integers from its input codes to its output codes.
    pub int: Option<std::sync::Arc<int::IntLayer>>,
    /// A residual Add run on the codes of its two operands (`etch_ir::quant::QAdd`).
    pub add: Option<std::sync::Arc<etch_ir::quant::QAdd>>,
    /// A quantized unary activation run as a table on its input codes.
    pub table: Option<std::sync::Arc<int::qdq::IntTable>>,
    /// Whether it reads and writes integer codes (a fused layer, or pooling/reshaping between them).
    pub on_codes: bool,
    /// A 3×3 convolution's constant filters in Winograd's transformed form, made once.
    pub filters: Option<std::sync::Arc<Vec<f32>>>,
    /// The activation a float convolution applies to its outputs (the ReLU or Clip after it,
    /// fused into it by [`fuse::activations`]).
    pub post: Option<Activation>,
}

/// A model compiled for repeated execution.
pub struct Plan {
    pub(crate) opset: i64,
    /// Every step, each value kept in its slot: what an observed run (and the GPU) executes.
    pub(crate) steps: Vec<Step>,
    /// The steps with float activations fused into the convolutions before them
    /// ([`fuse::activations`]): what a run that observes nothing executes.
    pub(crate) fused: Vec<Step>,
    pub(crate) consts: Vec<Option<Value>>,
    pub(crate) inputs: Vec<(PlanInput, usize)>,
    pub(crate) outputs: Vec<(String, usize)>,
    /// Every value's slot, by name (for observing values during a run).
    pub(crate) slot_of: HashMap<String, usize>,
}

/// Converts a tensor with values to a run-time value.
pub fn tensor_value(t: &Tensor) -> Option<Value> {
    let shape: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    match (t.elem, t.data.as_ref()?) {
        (ElemType::F32, Data::F32(v)) => Some(Value::F32(Array::new(shape, v.clone()))),
        (ElemType::F64, Data::F64(v)) => Some(Value::F32(Array::new(
            shape,
            v.iter().map(|&x| x as f32).collect(),
        ))),
        (e, d) if !e.is_float() && e != ElemType::Str => {
            Some(Value::I64(Array::new(shape, d.to_i64()?)))
        }
        _ => None,
    }
}

impl Plan {
    /// Compiles a verified model. Fails on ops the executor lacks, naming the node.
    pub fn new(model: &Model, info: &GraphInfo) -> Result<Plan, ExecError> {
        Plan::build(model, info, true)
    }

    /// Compiles a model with every QuantizeLinear/DequantizeLinear run in float by the ONNX
    /// semantics, no layer fused into the integer kernels: the reference the integer path is
    /// checked against (within one quantization step).
    pub fn new_unfused(model: &Model, info: &GraphInfo) -> Result<Plan, ExecError> {
        Plan::build(model, info, false)
    }

    /// The names of the steps that run in integers (quantized layers and the pooling and
    /// reshaping between them).
    pub fn integer_steps(&self) -> Vec<String> {
        self.steps
            .iter()
            .filter(|s| s.on_codes)
            .map(|s| s.name.clone())
            .collect()
    }

    fn build(model: &Model, info: &GraphInfo, fuse_integer: bool) -> Result<Plan, ExecError> {
        etch_ir::limits::check_values(model, info)?;
        let g = &model.graph;
        let order = g.node_order();
        // one slot per value name, in the order values appear
        let mut slot_of: HashMap<String, usize> = HashMap::new();
        let node_names = order
            .iter()
            .flat_map(|&idx| g.nodes[idx].inputs.iter().chain(&g.nodes[idx].outputs));
        let all_names = g
            .inputs
            .iter()
            .map(|v| &v.name)
            .chain(g.initializers.iter().map(|i| &i.name))
            .chain(node_names)
            .chain(g.outputs.iter().map(|v| &v.name));
        for name in all_names.filter(|n| !n.is_empty()) {
            let next = slot_of.len();
            slot_of.entry(name.clone()).or_insert(next);
        }
        let n_slots = slot_of.len();
        let mut consts: Vec<Option<Value>> = vec![None; n_slots];
        for (name, t) in &info.consts {
            if let (Some(&s), Some(v)) = (slot_of.get(name), tensor_value(t)) {
                consts[s] = Some(v);
            }
        }
        let mut inputs = Vec::new();
        for vi in &g.inputs {
            let s = slot_of[&vi.name];
            if consts[s].is_some() {
                continue;
            }
            if let Some(init) = g.initializer(&vi.name) {
                return Err(ExecError::Input { name: init.name.clone(), message: "this weight has no values; fill it with `etch convert --seed N` or give its values".into() });
            }
            let Some(Type::Tensor(tt)) = &vi.ty else {
                return Err(ExecError::Input {
                    name: vi.name.clone(),
                    message: "a graph input must be a tensor with a declared type".into(),
                });
            };
            let dims = tt.shape.clone().ok_or_else(|| ExecError::Input {
                name: vi.name.clone(),
                message: "the input's rank is unknown".into(),
            })?;
            inputs.push((
                PlanInput {
                    name: vi.name.clone(),
                    elem: tt.elem,
                    dims,
                },
                s,
            ));
        }
        for init in &g.initializers {
            let s = slot_of[&init.name];
            if consts[s].is_none() && !inputs.iter().any(|(_, i)| *i == s) {
                let why = if init.tensor.external.is_some() {
                    "its values are in an external file, which etch does not read"
                } else {
                    "it has no values; fill it with `etch convert --seed N`"
                };
                return Err(ExecError::Input {
                    name: init.name.clone(),
                    message: format!("weight cannot be used: {why}"),
                });
            }
        }
        let mut steps = Vec::new();
        for &idx in &order {
            let n = &g.nodes[idx];
            let outs: Vec<Option<usize>> = n
                .outputs
                .iter()
                .map(|o| (!o.is_empty()).then(|| slot_of[o]))
                .collect();
            // folded at plan time
            if outs.iter().flatten().all(|&s| consts[s].is_some()) {
                continue;
            }
            if matches!(n.op, Op::Other) {
                let detail = if n
                    .attrs
                    .iter()
                    .any(|a| matches!(a.value, etch_ir::AttrValue::Graph(_)))
                {
                    " (control flow with subgraphs is not supported)".to_string()
                } else if !n.domain.is_empty() {
                    format!(" from domain `{}`", n.domain)
                } else {
                    String::new()
                };
                return Err(ExecError::Unsupported {
                    node: n.display_name(),
                    op: n.op_type.clone(),
                    detail,
                });
            }
            let weight = n
                .inputs
                .get(1)
                .and_then(|i| slot_of.get(i))
                .and_then(|&s| consts[s].as_ref());
            let filters = match (&n.op, weight) {
                (Op::Conv { group: 1, .. }, Some(Value::F32(w))) => {
                    winograd::filters(w).map(std::sync::Arc::new)
                }
                _ => None,
            };
            steps.push(Step {
                name: n.display_name(),
                op_type: n.op_type.clone(),
                op: n.op.clone(),
                inputs: n
                    .inputs
                    .iter()
                    .map(|i| (!i.is_empty()).then(|| slot_of[i]))
                    .collect(),
                outputs: outs,
                frees: Vec::new(),
                node: idx.index(),
                out_elems: n
                    .outputs
                    .iter()
                    .map(|o| info.ty(o).map(|t| t.elem))
                    .collect(),
                int: None,
                add: None,
                table: None,
                on_codes: false,
                filters,
                post: None,
            });
        }
        let outputs: Vec<(String, usize)> = g
            .outputs
            .iter()
            .map(|o| (o.name.clone(), slot_of[&o.name]))
            .collect();
        let opset = model.default_opset().unwrap_or(17);
        let out_slots: Vec<usize> = outputs.iter().map(|(_, s)| *s).collect();
        fuse::rewrite(
            model,
            info,
            &mut steps,
            &slot_of,
            &mut consts,
            &out_slots,
            opset,
            fuse_integer,
        )?;
        let mut fused = fuse::activations(&steps, &consts, &out_slots);
        for list in [&mut steps, &mut fused] {
            free_after_last_reader(list, &consts, &out_slots);
        }
        Ok(Plan {
            opset,
            steps,
            fused,
            consts,
            inputs,
            outputs,
            slot_of,
        })
    }

    /// The inputs a run needs, in graph order.
    pub fn inputs(&self) -> impl Iterator<Item = &PlanInput> {
        self.inputs.iter().map(|(i, _)| i)
    }

    /// Matches named inputs to the plan's inputs (in its order, with their slots) and checks them.
    pub(crate) fn take_inputs(
        &self,
        given: Vec<(String, Value)>,
    ) -> Result<Vec<(usize, Value)>, ExecError> {
        let mut given: HashMap<String, Value> = given.into_iter().collect();
        let mut out = Vec::with_capacity(self.inputs.len());
        for (pi, s) in &self.inputs {
            let v = given.remove(&pi.name).ok_or_else(|| ExecError::Input {
                name: pi.name.clone(),
                message: "is required but was not given".into(),
            })?;
            check_input(pi, &v)?;
            out.push((*s, v));
        }
        if let Some(extra) = given.keys().next() {
            return Err(ExecError::Input {
                name: extra.clone(),
                message: "the model has no such input".into(),
            });
        }
        Ok(out)
    }

    /// Runs the model on named inputs and returns the graph outputs in order.
    pub fn run(&self, given: Vec<(String, Value)>) -> Result<Vec<(String, Value)>, ExecError> {
        self.run_observed(given, &[], &mut |_, _| {})
    }

    /// Runs the model and shows `observe` each value named in `watch` as soon as it is known
    /// (graph inputs and constants first, then node results in order); calibration records
    /// activations this way. A name the plan does not compute is not shown.
    pub fn run_observed(
        &self,
        given: Vec<(String, Value)>,
        watch: &[String],
        observe: &mut (dyn FnMut(&str, &Value) + Send),
    ) -> Result<Vec<(String, Value)>, ExecError> {
        let mut watched: HashMap<usize, Vec<&str>> = HashMap::new();
        for name in watch {
            if let Some(&s) = self.slot_of.get(name) {
                watched.entry(s).or_default().push(name);
            }
        }
        let mut slots: Vec<Option<Value>> = vec![None; self.consts.len()];
        for (s, v) in self.take_inputs(given)? {
            slots[s] = Some(v);
        }
        for (s, names) in &watched {
            if let Some(v) = self.consts[*s].as_ref().or(slots[*s].as_ref()) {
                names.iter().for_each(|n| observe(n, v));
            }
        }
        // The steps run on one of rayon's threads, so the kernels' parallel loops start inside the
        // pool instead of being handed to it from outside at every call (with one thread they run
        // inline, and no idle worker spins beside the caller).
        let steps = if watched.is_empty() {
            &self.fused
        } else {
            &self.steps
        };
        rayon::scope(|_| {
            for st in steps {
                let ins: Vec<Option<&Value>> = st
                    .inputs
                    .iter()
                    .map(|s| s.and_then(|s| self.consts[s].as_ref().or(slots[s].as_ref())))
                    .collect();
                let outs = exec(st, &ins, self.opset).map_err(|message| ExecError::Node {
                    node: st.name.clone(),
                    op: st.op_type.clone(),
                    message,
                })?;
                for (s, v) in st.outputs.iter().zip(outs) {
                    if let Some(s) = s {
                        if let Some(names) = watched.get(s) {
                            names.iter().for_each(|n| observe(n, &v));
                        }
                        slots[*s] = Some(v);
                    }
                }
                for &s in &st.frees {
                    slots[s] = None;
                }
            }
            Ok::<(), ExecError>(())
        })?;
        self.outputs
            .iter()
            .map(|(name, s)| {
                let v = self.consts[*s]
                    .clone()
                    .or_else(|| slots[*s].take())
                    .ok_or_else(|| ExecError::Missing(name.clone()))?;
                Ok((name.clone(), v))
            })
            .collect()
    }
}

/// Marks each slot free after its last reader in `steps`, unless it is a graph output or a
/// constant.
fn free_after_last_reader(steps: &mut [Step], consts: &[Option<Value>], outputs: &[usize]) {
    let mut last: HashMap<usize, usize> = HashMap::new();
    for (k, st) in steps.iter().enumerate() {
        for &s in st.inputs.iter().flatten() {
            last.insert(s, k);
        }
    }
    for (s, k) in last {
        if !outputs.contains(&s) && consts[s].is_none() {
            steps[k].frees.push(s);
        }
    }
}

/// A test's source of random bits, the same for the same seed on every machine (xorshift).
#[cfg(test)]
pub(crate) fn test_bits(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed | 1;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

/// A test's source of values: `draw(n)` gives `n` values in [-1, 1] in steps of 0.001.
#[cfg(test)]
pub(crate) fn test_values(seed: u64) -> impl FnMut(usize) -> Vec<f32> {
    let mut bits = test_bits(seed);
    move |n| {
        (0..n)
            .map(|_| (bits() % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    }
}

/// A test's sliding window over an `h×wd` plane, resolved: its two axes, or `None` where it has
/// no output.
#[cfg(test)]
pub(crate) fn test_axes(
    (h, wd): (usize, usize),
    kernel: [i64; 2],
    strides: [i64; 2],
    dilations: [i64; 2],
    pads: [i64; 4],
) -> Option<[etch_ir::op::WindowAxis; 2]> {
    let window = test_window(
        None,
        Some(strides.to_vec()),
        pads.to_vec(),
        Some(dilations.to_vec()),
    );
    let axes = window.resolve(&[h as i64, wd as i64], &kernel).ok()?;
    if axes.iter().any(|a| a.out < 1) {
        return None;
    }
    conv::lift_2d(axes).ok()
}

/// A test's 2-D window with explicit strides, pads and dilations (`None`: the defaults).
#[cfg(test)]
pub(crate) fn test_window(
    kernel_shape: Option<Vec<i64>>,
    strides: Option<Vec<i64>>,
    pads: Vec<i64>,
    dilations: Option<Vec<i64>>,
) -> etch_ir::op::Window {
    etch_ir::op::Window {
        kernel_shape,
        strides,
        pads: Some(pads),
        dilations,
        auto_pad: "NOTSET".into(),
        ceil_mode: false,
    }
}

fn check_input(pi: &PlanInput, v: &Value) -> Result<(), ExecError> {
    let err = |message: String| ExecError::Input {
        name: pi.name.clone(),
        message,
    };
    let want_float = pi.elem.is_float();
    if want_float != matches!(v, Value::F32(_)) {
        return Err(err(format!(
            "expected {} values, got {}",
            pi.elem,
            v.elem_name()
        )));
    }
    let shape = v.shape();
    let declared = pi
        .dims
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(",");
    if shape.len() != pi.dims.len()
        || pi
            .dims
            .iter()
            .zip(shape)
            .any(|(d, &s)| d.known().is_some_and(|k| k as usize != s))
    {
        return Err(err(format!("expected shape [{declared}], got {shape:?}")));
    }
    Ok(())
}

fn f32_in<'a>(ins: &[Option<&'a Value>], k: usize) -> Res<&'a Array<f32>> {
    match ins.get(k).copied().flatten() {
        Some(Value::F32(a)) => Ok(a),
        Some(v) => Err(format!(
            "input {} must be float, not {}",
            k + 1,
            v.elem_name()
        )),
        None => Err(format!("input {} is missing", k + 1)),
    }
}

/// An optional float input (a bias): `None` when the node leaves it out.
fn opt_f32_in<'a>(ins: &[Option<&'a Value>], k: usize) -> Res<Option<&'a Array<f32>>> {
    match ins.get(k).copied().flatten() {
        Some(_) => f32_in(ins, k).map(Some),
        None => Ok(None),
    }
}

fn i64_in<'a>(ins: &[Option<&'a Value>], k: usize) -> Res<&'a Array<i64>> {
    match value_in(ins, k)? {
        Value::I64(a) => Ok(a),
        v => Err(format!(
            "input {} must be integer codes, not {}",
            k + 1,
            v.elem_name()
        )),
    }
}

fn ints_in(ins: &[Option<&Value>], k: usize) -> Res<Option<Vec<i64>>> {
    match ins.get(k).copied().flatten() {
        Some(Value::I64(a)) => Ok(Some(a.data.clone())),
        Some(v) => Err(format!(
            "input {} must be integers, not {}",
            k + 1,
            v.elem_name()
        )),
        None => Ok(None),
    }
}

fn value_in<'a>(ins: &[Option<&'a Value>], k: usize) -> Res<&'a Value> {
    ins.get(k)
        .copied()
        .flatten()
        .ok_or_else(|| format!("input {} is missing", k + 1))
}

/// Applies the same generic function to either element type.
macro_rules! per_type {
    ($v:expr, $a:ident => $e:expr) => {
        match $v {
            Value::F32($a) => Value::F32($e),
            Value::I64($a) => Value::I64($e),
        }
    };
}

fn scalar_of(ins: &[Option<&Value>], k: usize) -> Res<Option<f32>> {
    match ins.get(k).copied().flatten() {
        None => Ok(None),
        Some(Value::F32(a)) if a.data.len() == 1 => Ok(Some(a.data[0])),
        Some(v) => Err(format!(
            "input {} must be a float scalar, got {} {:?}",
            k + 1,
            v.elem_name(),
            v.shape()
        )),
    }
}

/// Executes one step.
pub(crate) fn exec(st: &Step, ins: &[Option<&Value>], opset: i64) -> Res<Vec<Value>> {
    let one = |v: Value| Ok(vec![v]);
    if let Some(layer) = &st.int {
        return one(layer.run(value_in(ins, 0)?)?);
    }
    if let Some(add) = &st.add {
        return one(Value::I64(int::qdq::add(
            add,
            i64_in(ins, 0)?,
            i64_in(ins, 1)?,
        )?));
    }
    if let Some(table) = &st.table {
        return one(Value::I64(table.apply(i64_in(ins, 0)?)?));
    }
    match &st.op {
        Op::Conv { window, group } => one(Value::F32(conv::conv(
            f32_in(ins, 0)?,
            f32_in(ins, 1)?,
            opt_f32_in(ins, 2)?,
            window,
            *group as usize,
            st.filters.as_deref().map(Vec::as_slice),
            st.post,
        )?)),
        Op::ConvTranspose {
            window,
            group,
            output_padding,
        } => one(Value::F32(conv::conv_transpose(
            f32_in(ins, 0)?,
            f32_in(ins, 1)?,
            opt_f32_in(ins, 2)?,
            window,
            usize::try_from(*group).map_err(|_| "group must be positive")?,
            output_padding.as_deref(),
        )?)),
        Op::Gemm { .. } => {
            let c = opt_f32_in(ins, 2)?;
            one(Value::F32(linear::gemm_op(
                &st.op,
                f32_in(ins, 0)?,
                f32_in(ins, 1)?,
                c,
            )?))
        }
        Op::MatMul => one(Value::F32(linear::matmul_op(
            f32_in(ins, 0)?,
            f32_in(ins, 1)?,
        )?)),
        Op::MaxPool { window } if matches!(ins.first(), Some(Some(Value::I64(_)))) => {
            let Some(Some(Value::I64(x))) = ins.first() else {
                unreachable!("matched above")
            };
            one(Value::I64(int::qdq::max_pool(x, window)?))
        }
        Op::MaxPool { window } => {
            let x = f32_in(ins, 0)?;
            if st.outputs.get(1).copied().flatten().is_some() {
                return Err("MaxPool's indices output is not supported".into());
            }
            one(Value::F32(pool::pool(x, window, PoolKind::Max)?))
        }
        Op::AveragePool {
            window,
            count_include_pad,
        } => one(Value::F32(pool::pool(
            f32_in(ins, 0)?,
            window,
            PoolKind::Average {
                count_include_pad: *count_include_pad,
            },
        )?)),
        Op::GlobalAveragePool => one(Value::F32(pool::global_pool(f32_in(ins, 0)?, false)?)),
        Op::GlobalMaxPool => one(Value::F32(pool::global_pool(f32_in(ins, 0)?, true)?)),
        Op::Relu => one(Value::F32(elementwise::unary(f32_in(ins, 0)?, |v| {
            Activation::Relu.apply(v)
        }))),
        Op::Sigmoid => one(Value::F32(elementwise::unary(f32_in(ins, 0)?, |v| {
            1.0 / (1.0 + (-v).exp())
        }))),
        Op::HardSigmoid { alpha, beta } => {
            let (a, b) = (*alpha, *beta);
            one(Value::F32(elementwise::unary(f32_in(ins, 0)?, move |v| {
                (a * v + b).clamp(0.0, 1.0)
            })))
        }
        Op::Unary(u) => {
            let u = *u;
            one(Value::F32(elementwise::unary(f32_in(ins, 0)?, move |v| {
                u.eval(v)
            })))
        }
        Op::HardSwish => one(Value::F32(elementwise::unary(f32_in(ins, 0)?, |v| {
            v * (v / 6.0 + 0.5).clamp(0.0, 1.0)
        }))),
        // integer codes (QCDQ's `QuantizeLinear → Clip → DequantizeLinear` below 8 bits): integer
        // bounds, max first as for floats
        Op::Clip { .. } if matches!(ins.first().copied().flatten(), Some(Value::I64(_))) => {
            let bound = |k: usize| -> Res<Option<i64>> {
                match ints_in(ins, k)? {
                    None => Ok(None),
                    Some(v) if v.len() == 1 => Ok(Some(v[0])),
                    Some(v) => Err(format!(
                        "input {} must be one integer, not {} values",
                        k + 1,
                        v.len()
                    )),
                }
            };
            let (lo, hi) = (bound(1)?.unwrap_or(i64::MIN), bound(2)?.unwrap_or(i64::MAX));
            let x = i64_in(ins, 0)?;
            one(Value::I64(Array::new(
                x.shape.clone(),
                x.data.iter().map(|&v| v.max(lo).min(hi)).collect(),
            )))
        }
        Op::Clip { min, max } => {
            let (lo, hi) = resolve::clip_bounds(*min, *max, ins)?;
            let clip = Activation::Clip { lo, hi };
            one(Value::F32(elementwise::unary(f32_in(ins, 0)?, move |v| {
                clip.apply(v)
            })))
        }
        Op::Add | Op::Sub | Op::Mul | Op::Div => {
            let (a, b) = (value_in(ins, 0)?, value_in(ins, 1)?);
            let r = match (a, b) {
                (Value::F32(a), Value::F32(b)) => Value::F32(match st.op {
                    Op::Add => elementwise::binary(a, b, |x, y| x + y)?,
                    Op::Sub => elementwise::binary(a, b, |x, y| x - y)?,
                    Op::Mul => elementwise::binary(a, b, |x, y| x * y)?,
                    _ => elementwise::binary(a, b, |x, y| x / y)?,
                }),
                (Value::I64(a), Value::I64(b)) => {
                    if matches!(st.op, Op::Div) && b.data.contains(&0) {
                        return Err("integer division by zero".into());
                    }
                    Value::I64(match st.op {
                        Op::Add => elementwise::binary(a, b, i64::wrapping_add)?,
                        Op::Sub => elementwise::binary(a, b, i64::wrapping_sub)?,
                        Op::Mul => elementwise::binary(a, b, i64::wrapping_mul)?,
                        _ => elementwise::binary(a, b, |x, y| x.wrapping_div(y))?,
                    })
                }
                _ => {
                    return Err(format!(
                        "inputs are {} and {}; they must have one element type",
                        a.elem_name(),
                        b.elem_name()
                    ))
                }
            };
            one(r)
        }
        Op::LayerNormalization { axis, epsilon } => {
            if st.outputs.iter().skip(1).any(|o| o.is_some()) {
                return Err(
                    "LayerNormalization's Mean and InvStdDev outputs are not supported".into(),
                );
            }
            one(Value::F32(elementwise::layer_norm(
                f32_in(ins, 0)?,
                f32_in(ins, 1)?,
                opt_f32_in(ins, 2)?,
                *axis,
                *epsilon,
            )?))
        }
        Op::BatchNormalization { epsilon } => {
            let p = [
                f32_in(ins, 1)?,
                f32_in(ins, 2)?,
                f32_in(ins, 3)?,
                f32_in(ins, 4)?,
            ];
            one(Value::F32(elementwise::batch_norm(
                f32_in(ins, 0)?,
                p,
                *epsilon,
            )?))
        }
        Op::Softmax { axis } => one(Value::F32(elementwise::softmax(
            f32_in(ins, 0)?,
            *axis,
            opset,
        )?)),
        Op::Reduce {
            kind,
            axes,
            keepdims,
            noop_with_empty_axes,
        } => {
            let x = f32_in(ins, 0)?;
            match resolve::reduce_axes(axes, *noop_with_empty_axes, x.shape.len(), ins)? {
                Some(axes) => one(Value::F32(elementwise::reduce(x, *kind, &axes, *keepdims))),
                None => one(Value::F32(x.clone())),
            }
        }
        Op::Identity
        | Op::Dropout
        | Op::Flatten { .. }
        | Op::Reshape { .. }
        | Op::Squeeze { .. }
        | Op::Unsqueeze { .. } => {
            if matches!(st.op, Op::Dropout) && st.outputs.get(1).copied().flatten().is_some() {
                return Err("Dropout's mask output is not supported".into());
            }
            let x = value_in(ins, 0)?;
            one(x.reshaped(resolve::reshaped_shape(&st.op, x.shape(), ins)?))
        }
        Op::Concat { axis } => {
            let vals: Vec<&Value> = ins.iter().flatten().copied().collect();
            let first = vals.first().ok_or("Concat needs inputs")?;
            let ax = layout::axis(*axis, first.shape().len())?;
            let r = match first {
                Value::F32(_) => Value::F32(layout::concat(
                    &vals
                        .iter()
                        .map(|v| {
                            if let Value::F32(a) = v {
                                Ok(a)
                            } else {
                                Err("Concat inputs must have one element type".to_string())
                            }
                        })
                        .collect::<Res<Vec<_>>>()?,
                    ax,
                )?),
                Value::I64(_) => Value::I64(layout::concat(
                    &vals
                        .iter()
                        .map(|v| {
                            if let Value::I64(a) = v {
                                Ok(a)
                            } else {
                                Err("Concat inputs must have one element type".to_string())
                            }
                        })
                        .collect::<Res<Vec<_>>>()?,
                    ax,
                )?),
            };
            one(r)
        }
        Op::Split { .. } => {
            let x = value_in(ins, 0)?;
            let (ax, sizes) = resolve::split_sizes(&st.op, x.shape(), st.outputs.len(), ins)?;
            Ok(match x {
                Value::F32(a) => layout::split(a, ax, &sizes)?
                    .into_iter()
                    .map(Value::F32)
                    .collect(),
                Value::I64(a) => layout::split(a, ax, &sizes)?
                    .into_iter()
                    .map(Value::I64)
                    .collect(),
            })
        }
        Op::Slice { .. } => {
            let x = value_in(ins, 0)?;
            let plan = resolve::slice_axes(&st.op, x.shape(), ins, opset)?;
            one(per_type!(x, a => layout::slice(a, &plan)))
        }
        Op::Transpose { perm } => {
            let x = value_in(ins, 0)?;
            let perm = resolve::transpose_perm(perm, x.shape().len())?;
            one(per_type!(x, a => layout::transpose(a, &perm)))
        }
        Op::Pad { .. } => {
            let x = value_in(ins, 0)?;
            let (per, mode, fill) = resolve::pad_params(&st.op, x.shape().len(), ins)?;
            Ok(vec![match x {
                Value::F32(a) => Value::F32(layout::pad(a, &per, mode, fill)?),
                Value::I64(a) => Value::I64(layout::pad(a, &per, mode, fill as i64)?),
            }])
        }
        Op::Gather { axis } => {
            let x = value_in(ins, 0)?;
            let idx = match value_in(ins, 1)? {
                Value::I64(a) => a,
                _ => return Err("Gather's indices must be integers".into()),
            };
            let ax = layout::axis(*axis, x.shape().len())?;
            Ok(vec![match x {
                Value::F32(a) => Value::F32(layout::gather(a, ax, idx)?),
                Value::I64(a) => Value::I64(layout::gather(a, ax, idx)?),
            }])
        }
        Op::Shape { start, end } => one(resolve::shape_value(
            value_in(ins, 0)?.shape(),
            *start,
            *end,
        )),
        Op::Cast { to } => {
            let x = value_in(ins, 0)?;
            one(match (x, to.is_float()) {
                (Value::F32(a), true) => Value::F32(a.clone()),
                (Value::I64(a), true) => Value::F32(Array::new(
                    a.shape.clone(),
                    a.data.iter().map(|&v| v as f32).collect(),
                )),
                (Value::F32(a), false) => Value::I64(Array::new(
                    a.shape.clone(),
                    a.data.iter().map(|&v| v as i64).collect(),
                )),
                (Value::I64(a), false) => Value::I64(a.clone()),
            })
        }
        Op::Constant { value } => {
            one(tensor_value(value).ok_or("this constant's element type is not supported")?)
        }
        Op::QuantizeLinear { axis } => {
            let elem = st
                .out_elems
                .first()
                .copied()
                .flatten()
                .unwrap_or(ElemType::U8);
            let (lo, hi) = elem.int_range();
            let zp = ints_in(ins, 2)?.unwrap_or_default();
            one(Value::I64(int::qdq::quantize_linear(
                f32_in(ins, 0)?,
                &f32_in(ins, 1)?.data,
                &zp,
                *axis,
                (lo as i64, hi as i64),
            )?))
        }
        Op::DequantizeLinear { axis } => {
            let Value::I64(x) = value_in(ins, 0)? else {
                return Err("DequantizeLinear takes integer codes".into());
            };
            let zp = ints_in(ins, 2)?.unwrap_or_default();
            one(Value::F32(int::qdq::dequantize_linear(
                x,
                &f32_in(ins, 1)?.data,
                &zp,
                *axis,
            )?))
        }
        Op::Compare(cmp) => one(Value::I64(logic::compare(
            *cmp,
            value_in(ins, 0)?,
            value_in(ins, 1)?,
        )?)),
        Op::Not => one(Value::I64(logic::logic(None, i64_in(ins, 0)?, None)?)),
        Op::Logic(l) => one(Value::I64(logic::logic(
            Some(*l),
            i64_in(ins, 0)?,
            Some(i64_in(ins, 1)?),
        )?)),
        Op::Mod { fmod } => one(logic::modulo(value_in(ins, 0)?, value_in(ins, 1)?, *fmod)?),
        Op::Pow => one(logic::pow(value_in(ins, 0)?, value_in(ins, 1)?)?),
        Op::ConstantOfShape { value } => {
            let v = tensor_value(value).ok_or("the value's element type is not supported")?;
            one(logic::constant_of_shape(i64_in(ins, 0)?, &v)?)
        }
        Op::Expand => one(logic::expand(value_in(ins, 0)?, i64_in(ins, 1)?)?),
        Op::Tile => one(logic::tile(value_in(ins, 0)?, i64_in(ins, 1)?)?),
        Op::Resize(r) => {
            let x = f32_in(ins, 0)?;
            let taps = resize::taps(&x.shape, *r, ins)?;
            one(Value::F32(resize::resize(x, &taps)))
        }
        Op::Arg {
            max,
            axis,
            keepdims,
            last,
        } => {
            let x = value_in(ins, 0)?;
            let axis = layout::axis(*axis, x.shape().len())?;
            one(Value::I64(logic::arg(x, *max, axis, *keepdims, *last)?))
        }
        Op::Einsum(eq) => {
            let xs = (0..ins.len())
                .map(|k| value_in(ins, k))
                .collect::<Res<Vec<_>>>()?;
            one(einsum::einsum(eq, &xs)?)
        }
        Op::TopK { axis, largest } => {
            let x = value_in(ins, 0)?;
            let axis = layout::axis(*axis, x.shape().len())?;
            let k = match ints_in(ins, 1)?.as_deref() {
                Some([k]) => *k,
                _ => return Err("TopK's k must be one integer".into()),
            };
            let (values, indices) = select::top_k(x, k, axis, *largest)?;
            Ok(vec![values, Value::I64(indices)])
        }
        Op::ScatterND(how) => one(select::scatter_nd(
            value_in(ins, 0)?,
            i64_in(ins, 1)?,
            value_in(ins, 2)?,
            *how,
        )?),
        Op::CumSum { exclusive, reverse } => {
            let x = value_in(ins, 0)?;
            let axis = match ints_in(ins, 1)?.as_deref() {
                Some([a]) => layout::axis(*a, x.shape().len())?,
                _ => return Err("CumSum's axis must be one integer".into()),
            };
            one(logic::cumsum(x, axis, *exclusive, *reverse)?)
        }
        Op::Range => one(logic::range(
            value_in(ins, 0)?,
            value_in(ins, 1)?,
            value_in(ins, 2)?,
        )?),
        Op::Where => {
            let Value::I64(c) = value_in(ins, 0)? else {
                return Err("Where's condition must be bool".into());
            };
            one(int::qdq::where_op(c, value_in(ins, 1)?, value_in(ins, 2)?)?)
        }
        Op::Quant(_) | Op::BipolarQuant | Op::Trunc(_) => {
            let params = (1..ins.len())
                .map(|k| f32_in(ins, k))
                .collect::<Res<Vec<_>>>()?;
            one(Value::F32(elementwise::qonnx_quantizer(
                &st.op,
                f32_in(ins, 0)?,
                &params,
            )?))
        }
        // built into an integer kernel at plan time (`fuse`)
        Op::QLinearConv { .. } | Op::QLinearMatMul | Op::QGemm { .. } => {
            Err("the QOperator layer's operands are not constants".into())
        }
        // `import-quant` rewrote the ones etch computes exactly
        Op::QLinearAdd => Err("its scales are neither equal nor powers of two: onnxruntime's QLinearAdd then rounds in its vector kernels (with fused multiply-adds on some CPUs), which etch does not reproduce; quantize the float model with etch (`--passes quant(...)`) instead".into()),
        Op::Other => Err("not supported".into()),
    }
}
