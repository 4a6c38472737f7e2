//! The integer program of a quantized model: the chain of steps that runs on integer codes from
//! the codes entering the first quantized layer to the codes leaving the last one (convolutions and
//! GEMMs with their `IntLayer`, MaxPool and reshapes on codes). It is read off the CPU executor's
//! plan, so it is exactly what the golden model computes; the code generators emit it as hardware
//! and the cycle simulator times the emitted hardware from it (`cycle::rtl`).
//!
//! Float steps before the chain (the input's scaling and QuantizeLinear) are the host's input
//! preparation, float steps after it (the output's DequantizeLinear) the host's output reading;
//! a float step in the middle of the chain, a branch, or an op the integer datapath lacks is an
//! error naming the node.

use std::collections::HashMap;
use std::sync::Arc;

use etch_ir::infer::GraphInfo;
use etch_ir::op::Op;
use etch_ir::quant::QAdd;
use etch_ir::Model;

use crate::reference::cpu::conv::ConvGeom;
use crate::reference::cpu::int::qdq::IntTable;
use crate::reference::cpu::int::IntLayer;
use crate::reference::cpu::pool::{PoolGeom, PoolKind};
use crate::reference::cpu::Plan;

/// Why a model cannot become an integer program.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProgramError {
    #[error("the model has no layer that runs in integers; quantize it first (e.g. --passes 'quant(bits=8,per=channel,calib=\"DATA.csv\")')")]
    NotQuantized,
    #[error("node `{node}` ({op}) runs in float between integer layers; the integer datapath cannot take it ({why})")]
    FloatInMiddle {
        node: String,
        op: String,
        why: String,
    },
    #[error("node `{node}` ({op}): {message}")]
    Unsupported {
        node: String,
        op: String,
        message: String,
    },
    #[error("the model cannot be planned: {0}")]
    Plan(String),
}

/// A resolved 2-D window: kernel, stride, dilation, padding at the start, output extent; per axis
/// (height, width).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window2 {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    pub pad: [usize; 2],
    pub out: [usize; 2],
}

/// What one integer step computes.
#[derive(Debug, Clone, PartialEq)]
pub enum IntOp {
    /// A convolution on `[1, C, H, W]` codes (a 1-D one lifted to 2-D), in `group` groups
    /// (depthwise when every group has one input channel).
    Conv {
        layer: Arc<IntLayer>,
        window: Window2,
        group: usize,
    },
    /// A GEMM of a `[1, K]` row of codes with the layer's `[N, K]` weights.
    Gemm { layer: Arc<IntLayer> },
    /// MaxPool on codes.
    MaxPool { window: Window2 },
    /// A residual Add of the step's input and its second (`more[0]`), element by element.
    Add { add: Arc<QAdd> },
    /// A concatenation of the step's input and `more`, moving codes (one scale for all).
    Concat,
    /// A quantized unary activation: each code looked up in the table.
    Table { table: Arc<IntTable> },
    /// Flatten / Reshape / Identity: the codes stay where they are (row-major).
    Reshape,
}

impl IntOp {
    pub fn layer(&self) -> Option<&IntLayer> {
        match self {
            IntOp::Conv { layer, .. } | IntOp::Gemm { layer } => Some(layer),
            _ => None,
        }
    }
}

/// One step of the program. Shapes are as the graph has them; `chw` is the same as
/// `[channels, height, width]` (a `[1, K]` row is `[K, 1, 1]`).
#[derive(Debug, Clone, PartialEq)]
pub struct IntStep {
    /// The graph node (a layer's Conv/Gemm node name).
    pub name: String,
    pub op: IntOp,
    pub input: String,
    /// The other inputs: an Add's second operand (same shape as `input`), a Concat's inputs
    /// after the first.
    pub more: Vec<String>,
    pub output: String,
    pub input_shape: Vec<usize>,
    pub output_shape: Vec<usize>,
    pub input_chw: [usize; 3],
    pub output_chw: [usize; 3],
}

/// The chain of integer steps.
#[derive(Debug, Clone, PartialEq)]
pub struct IntProgram {
    /// The graph input the host feeds (float), and the codes it becomes.
    pub graph_input: String,
    pub input: String,
    pub input_shape: Vec<usize>,
    /// The codes the last step writes, and the graph output the host reads them as.
    pub output: String,
    pub output_shape: Vec<usize>,
    pub graph_output: String,
    pub steps: Vec<IntStep>,
}

impl IntProgram {
    /// Refuses what the layer-chain accelerator (`etch compile --emit verilog`, `--emit hls`,
    /// `etch sim --rtl`) does not have: grouped convolutions and residual Adds.
    pub fn check_layer_chain(&self) -> Result<(), ProgramError> {
        for s in &self.steps {
            let message = match &s.op {
                IntOp::Conv { group, .. } if *group != 1 => format!("grouped convolution (group {group}) is not supported by the layer-chain hardware; `--emit core` runs it"),
                IntOp::Table { .. } => "the layer-chain hardware has no activation tables; `--emit core` runs them".to_string(),
                IntOp::Add { .. } | IntOp::Concat => format!("the layer-chain hardware runs one chain of layers, not a {}; `--emit core` runs it", if matches!(s.op, IntOp::Add { .. }) { "residual Add" } else { "concatenation" }),
                _ => continue,
            };
            return Err(ProgramError::Unsupported {
                node: s.name.clone(),
                op: match s.op {
                    IntOp::Add { .. } => "Add",
                    IntOp::Concat => "Concat",
                    IntOp::Table { .. } => "activation",
                    _ => "Conv",
                }
                .into(),
                message,
            });
        }
        Ok(())
    }

    /// The program's array layers (Conv, Gemm).
    pub fn layers(&self) -> impl Iterator<Item = (&IntStep, &IntLayer)> {
        self.steps
            .iter()
            .filter_map(|s| s.op.layer().map(|l| (s, l)))
    }
}

fn chw(shape: &[usize]) -> [usize; 3] {
    match shape.len() {
        0 => [1, 1, 1],
        1 => [shape[0], 1, 1],
        2 => [shape[1], 1, 1],
        3 => [shape[1], 1, shape[2]],
        _ => [shape[1], shape[2], shape[3..].iter().product()],
    }
}

fn window2(axes: &[etch_ir::op::WindowAxis; 2]) -> Window2 {
    let u = |v: i64| v.max(0) as usize;
    Window2 {
        kernel: [u(axes[0].kernel), u(axes[1].kernel)],
        stride: [u(axes[0].stride), u(axes[1].stride)],
        dilation: [u(axes[0].dilation), u(axes[1].dilation)],
        pad: [u(axes[0].pad_begin), u(axes[1].pad_begin)],
        out: [u(axes[0].out), u(axes[1].out)],
    }
}

/// Reads the integer program off a verified model's CPU plan.
pub fn lower(model: &Model, info: &GraphInfo) -> Result<IntProgram, ProgramError> {
    let plan = Plan::new(model, info).map_err(|e| ProgramError::Plan(e.to_string()))?;
    lower_plan(&plan, model, info)
}

/// Reads the integer program off a plan of `model`.
pub fn lower_plan(
    plan: &Plan,
    model: &Model,
    info: &GraphInfo,
) -> Result<IntProgram, ProgramError> {
    let name_of: HashMap<usize, &str> =
        plan.slot_of.iter().map(|(n, &s)| (s, n.as_str())).collect();
    let slot_name = |s: Option<usize>| s.and_then(|s| name_of.get(&s).copied()).unwrap_or("");
    let shape = |name: &str, node: &str, op: &str| -> Result<Vec<usize>, ProgramError> {
        info.ty(name)
            .and_then(|t| t.known_dims())
            .map(|d| d.iter().map(|&x| x.max(0) as usize).collect())
            .ok_or_else(|| ProgramError::Unsupported {
                node: node.into(),
                op: op.into(),
                message: format!("the shape of `{name}` is not known"),
            })
    };
    let code_steps: Vec<usize> = (0..plan.steps.len())
        .filter(|&k| plan.steps[k].on_codes)
        .collect();
    let (Some(&first), Some(&last)) = (code_steps.first(), code_steps.last()) else {
        return Err(ProgramError::NotQuantized);
    };
    let mut steps = Vec::new();
    let mut prev_out: Option<String> = None;
    for k in first..=last {
        let st = &plan.steps[k];
        let op_name = if let Some(l) = &st.int {
            layer_op_name(&l.op).to_string()
        } else {
            st.op_type.clone()
        };
        if !st.on_codes {
            // name the op that forced float (not the Dequantize/Quantize around it)
            let culprit = plan.steps[k..=last]
                .iter()
                .take_while(|s| !s.on_codes)
                .find(|s| {
                    !matches!(
                        s.op,
                        Op::QuantizeLinear { .. } | Op::DequantizeLinear { .. }
                    )
                })
                .unwrap_or(st);
            return Err(ProgramError::FloatInMiddle {
                node: culprit.name.clone(),
                op: culprit.op_type.clone(),
                why: "only quantized Conv/Gemm/MatMul layers, MaxPool/Flatten/Reshape/Concat between equal quantizers, Adds whose operands and result share one scale, and unary activations between quantizers (as tables) run on codes".into(),
            });
        }
        let input = slot_name(st.inputs.first().copied().flatten()).to_string();
        let reads_all = st.add.is_some() || matches!(st.op, Op::Concat { .. });
        let more: Vec<String> = if reads_all {
            st.inputs[1..]
                .iter()
                .map(|s| slot_name(*s).to_string())
                .collect()
        } else {
            Vec::new()
        };
        let output = slot_name(st.outputs.first().copied().flatten()).to_string();
        // every step reads the program's input or what an earlier step wrote
        for v in std::iter::once(&input).chain(&more) {
            let known = steps.is_empty() && prev_out.is_none()
                || steps.first().is_some_and(|s: &IntStep| s.input == *v)
                || steps.iter().any(|s: &IntStep| s.output == *v);
            if !known {
                return Err(ProgramError::Unsupported {
                    node: st.name.clone(),
                    op: op_name,
                    message: format!("it reads `{v}`, which no earlier integer step writes: the hardware runs one input through its layers"),
                });
            }
        }
        let input_shape = shape(&input, &st.name, &op_name)?;
        let output_shape = shape(&output, &st.name, &op_name)?;
        let unsupported = |message: String| ProgramError::Unsupported {
            node: st.name.clone(),
            op: op_name.clone(),
            message,
        };
        if input_shape.first().copied().unwrap_or(1) != 1 {
            return Err(unsupported(format!(
                "the hardware runs one sample at a time; the input has shape {input_shape:?}"
            )));
        }
        let op = if let Some(l) = &st.int {
            match &l.op {
                Op::Conv { window, group } => {
                    let group = (*group).max(1) as usize;
                    let geom = ConvGeom::new(&input_shape, &l.weight_dims, None, window, group)
                        .map_err(unsupported)?;
                    IntOp::Conv {
                        layer: l.clone(),
                        window: window2(&geom.axes),
                        group,
                    }
                }
                Op::Gemm { .. } | Op::MatMul => {
                    if input_shape.len() != 2 {
                        return Err(unsupported(format!(
                            "the GEMM input must be [1, K], got {input_shape:?}"
                        )));
                    }
                    IntOp::Gemm { layer: l.clone() }
                }
                other => {
                    return Err(unsupported(format!(
                        "{} is not an integer layer the hardware has",
                        layer_op_name(other)
                    )))
                }
            }
        } else if let Some(add) = &st.add {
            IntOp::Add { add: add.clone() }
        } else if let Some(table) = &st.table {
            IntOp::Table {
                table: table.clone(),
            }
        } else {
            match &st.op {
                Op::MaxPool { window } => {
                    let g =
                        PoolGeom::new(&input_shape, window, PoolKind::Max).map_err(unsupported)?;
                    IntOp::MaxPool {
                        window: window2(&g.axes),
                    }
                }
                Op::Flatten { .. } | Op::Reshape { .. } | Op::Identity => IntOp::Reshape,
                Op::Concat { .. } => IntOp::Concat,
                _ => {
                    return Err(unsupported(
                        "the hardware has no unit for this op on codes".into(),
                    ))
                }
            }
        };
        steps.push(IntStep {
            name: st.name.clone(),
            op,
            input_chw: chw(&input_shape),
            output_chw: chw(&output_shape),
            input,
            more,
            output: output.clone(),
            input_shape,
            output_shape,
        });
        prev_out = Some(output);
    }
    // the chain's output must be what the graph returns (through the host's DequantizeLinear)
    let out_code = prev_out.unwrap_or_default();
    let graph_outputs: Vec<&str> = plan.outputs.iter().map(|(n, _)| n.as_str()).collect();
    if graph_outputs.len() != 1 {
        return Err(ProgramError::Unsupported {
            node: model.graph.name.clone(),
            op: "graph".into(),
            message: format!(
                "the model has {} outputs; the hardware writes one",
                graph_outputs.len()
            ),
        });
    }
    // after the chain, the host dequantizes its output codes (and may reshape them): nothing else
    let mut reading = out_code.clone();
    for (k, st) in plan.steps[last + 1..].iter().enumerate() {
        let reads = slot_name(st.inputs.first().copied().flatten()) == reading;
        let ok = reads
            && match st.op {
                Op::DequantizeLinear { .. } => k == 0,
                Op::Flatten { .. }
                | Op::Reshape { .. }
                | Op::Identity
                | Op::Squeeze { .. }
                | Op::Unsqueeze { .. } => k > 0,
                _ => false,
            };
        if !ok {
            return Err(ProgramError::FloatInMiddle {
                node: st.name.clone(),
                op: st.op_type.clone(),
                why: "after the last integer layer the host only dequantizes the output codes (and may reshape them)".into(),
            });
        }
        reading = slot_name(st.outputs.first().copied().flatten()).to_string();
    }
    let first_step = &steps[0];
    let graph_input = plan
        .inputs()
        .next()
        .map(|i| i.name.clone())
        .unwrap_or_default();
    Ok(IntProgram {
        graph_input,
        input: first_step.input.clone(),
        input_shape: first_step.input_shape.clone(),
        output: out_code,
        output_shape: steps
            .last()
            .map(|s| s.output_shape.clone())
            .unwrap_or_default(),
        graph_output: graph_outputs[0].to_string(),
        steps,
    })
}

fn layer_op_name(op: &Op) -> &'static str {
    match op {
        Op::Conv { .. } => "Conv",
        Op::Gemm { .. } => "Gemm",
        Op::MatMul => "MatMul",
        _ => "op",
    }
}
