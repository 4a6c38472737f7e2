//! Layers onto the array. A model's nodes become `Layer`s: GEMM-shaped work for the systolic array
//! (convolutions lowered by im2col with padding, stride, dilation, groups and batch; Gemm and
//! MatMul), vector work (pooling, element-wise ops, activations that cannot fuse), or nothing
//! (layout ops). `map_gemm` then places a GEMM on the array for a dataflow: the spatial and
//! temporal dimensions, folds, group packing and the effect of N:M sparsity and pruned channels.
//!
//! What a layer's arithmetic is (bit widths, sparsity, PE kind) is an input, `LayerSpec`, one per
//! layer: read from the graph where the passes have left it (integer weight types, zeros, N:M
//! patterns, MAC kinds) and otherwise defaulting to the hardware description's PE.

pub mod spec;

use std::collections::HashMap;

use etch_hw::{Accelerator, Dataflow};
use etch_ir::infer::GraphInfo;
use etch_ir::{Model, Op};
use serde::Serialize;

pub use spec::{specs_from_graph, GraphFacts, LayerSpec};

/// A model etch cannot map.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MapError {
    #[error("layer `{layer}` ({op}): {message}")]
    Layer {
        layer: String,
        op: String,
        message: String,
    },
}

/// Convolution geometry, per spatial axis, as the mapper resolved it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConvGeom {
    /// The input's spatial extents (unpadded) and channels (all groups together).
    pub input: Vec<i64>,
    pub in_channels: u64,
    pub kernel: Vec<i64>,
    pub stride: Vec<i64>,
    pub dilation: Vec<i64>,
    pub pads: Vec<(i64, i64)>,
    pub out: Vec<i64>,
    pub group: u64,
    pub depthwise: bool,
}

/// GEMM-shaped work: `groups` independent products of an `m x k` input matrix (im2col rows are
/// output pixels) and a `k x n` weight matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GemmWork {
    pub m: u64,
    pub k: u64,
    pub n: u64,
    pub groups: u64,
    /// Elements of the real input tensor (not the im2col expansion): what DRAM must supply.
    pub input_elems: u64,
    pub weight_elems: u64,
    pub output_elems: u64,
    /// The second operand is an activation (MatMul of two activations), not a stored weight.
    pub weights_are_activations: bool,
    pub conv: Option<ConvGeom>,
}

impl GemmWork {
    pub fn macs(&self) -> u64 {
        self.m * self.k * self.n * self.groups
    }
}

/// Work for the vector unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VectorWork {
    /// Lane-operations (one compare, add or multiply of one element).
    pub ops: u64,
    pub input_elems: u64,
    pub output_elems: u64,
    /// A 2-D pooling over `[N, C, H, W]` planes: its rows, so that a tile of whole output rows
    /// (or whole planes) reads one contiguous run of input rows.
    pub rows: Option<PoolRows>,
}

/// The rows of a 2-D pooling: output row `y` of a plane reads input rows `y·stride − pad +
/// k·dilation` for `k < kernel`, those inside the plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct PoolRows {
    pub out_h: u64,
    pub out_w: u64,
    pub in_h: u64,
    pub in_w: u64,
    pub kernel: u64,
    pub stride: u64,
    pub dilation: u64,
    pub pad: u64,
    /// The windows tile the input exactly (kernel = stride, no padding or dilation): any run of
    /// whole output rows, across planes too, reads one contiguous run.
    pub exact: bool,
}

impl PoolRows {
    pub fn out_plane(&self) -> u64 {
        self.out_h * self.out_w
    }
    pub fn in_plane(&self) -> u64 {
        self.in_h * self.in_w
    }
    /// The input rows `[lo, hi)` of a plane that output rows `[y0, y0 + rows)` read.
    pub fn input_rows(&self, y0: u64, rows: u64) -> (u64, u64) {
        let lo = (y0 * self.stride).saturating_sub(self.pad).min(self.in_h);
        let last = (y0 + rows.max(1) - 1) * self.stride + (self.kernel.max(1) - 1) * self.dilation;
        let hi = (last + 1).saturating_sub(self.pad).min(self.in_h);
        (lo, hi.max(lo))
    }
    /// The input elements a tile of `e` output elements from `e0` reads, `(first, count)`: whole
    /// planes, or (tiles within a plane) the rows its output rows read; an exact pooling's run
    /// of rows may cross planes.
    pub fn input_span(&self, e0: u64, e: u64) -> (u64, u64) {
        let (op, w) = (self.out_plane().max(1), self.out_w.max(1));
        if self.exact {
            let r = self.in_plane() / op;
            return (e0 * r, e * r);
        }
        let (p, y0) = (e0 / op, e0 % op / w);
        if y0 == 0 && e0.is_multiple_of(op) && e.is_multiple_of(op) {
            return (p * self.in_plane(), e / op * self.in_plane());
        }
        let (lo, hi) = self.input_rows(y0, (e0 % w + e).div_ceil(w));
        (p * self.in_plane() + lo * self.in_w, (hi - lo) * self.in_w)
    }

    /// The most input elements a tile of `t` output elements reads (`input_span` of its worst
    /// placement).
    pub fn input_bound(&self, t: u64) -> u64 {
        let (op, w) = (self.out_plane().max(1), self.out_w.max(1));
        if self.exact {
            return t * (self.in_plane() / op);
        }
        if t >= op {
            return t.div_ceil(op) * self.in_plane();
        }
        // a run that starts mid-row touches one row more
        let rows = t.div_ceil(w) + 1;
        let span = (rows - 1) * self.stride + (self.kernel.max(1) - 1) * self.dilation + 1;
        span.min(self.in_h) * self.in_w
    }
}

/// The rows of a 2-D pooling over `[N, C, H, W]` (explicit padding or none).
fn pool_rows(w: &etch_ir::op::Window, input: &[i64], output: &[i64]) -> Option<PoolRows> {
    let k = w.kernel_shape.as_ref()?;
    let two = |v: &Option<Vec<i64>>, d: i64| v.clone().unwrap_or_else(|| vec![d; 2]);
    let (s, dil) = (two(&w.strides, 1), two(&w.dilations, 1));
    let pads = w.pads.clone().unwrap_or_else(|| vec![0; 4]);
    let ok = input.len() == 4
        && output.len() == 4
        && k.len() == 2
        && s.len() == 2
        && dil.len() == 2
        && pads.len() == 4
        && pads.iter().all(|&p| p >= 0)
        && (w.auto_pad.is_empty() || w.auto_pad == "NOTSET" || w.auto_pad == "VALID")
        && k.iter().chain(&s).chain(&dil).all(|&v| v > 0)
        && input[2..].iter().chain(&output[2..]).all(|&v| v > 0);
    if !ok {
        return None;
    }
    let exact = *k == s
        && dil.iter().all(|&d| d == 1)
        && pads.iter().all(|&p| p == 0)
        && (0..2).all(|a| input[2 + a] == output[2 + a] * k[a]);
    Some(PoolRows {
        out_h: output[2] as u64,
        out_w: output[3] as u64,
        in_h: input[2] as u64,
        in_w: input[3] as u64,
        kernel: k[0] as u64,
        stride: s[0] as u64,
        dilation: dil[0] as u64,
        pad: pads[0] as u64,
        exact,
    })
}

/// Where a layer runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
// one per graph node, built once: the size difference costs nothing worth a Box
#[allow(clippy::large_enum_variant)]
pub enum Work {
    Array(GemmWork),
    Vector(VectorWork),
    /// Fused into the previous layer's output path (ReLU/Clip after a Conv, Gemm or Add).
    Fused,
    /// Layout only (reshape, flatten, identity, …): no cycles, the output aliases the input.
    Free,
}

/// One node of the model as the simulator sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Layer {
    pub name: String,
    pub op: String,
    pub work: Work,
    pub spec: LayerSpec,
    /// Activation inputs (graph values that are not weights).
    pub inputs: Vec<String>,
    pub output: String,
    pub output_elems: u64,
    /// A Concat whose inputs are contiguous runs of its output (every extent before its axis is
    /// 1): the placement can lay each input out where its run of the output is, so the
    /// concatenation moves nothing.
    pub gathers: bool,
}

fn numel(dims: &[i64]) -> u64 {
    dims.iter().map(|&d| d.max(0) as u64).product()
}

/// Known dims of a value, symbolic dims taken as 1 (figures are per sample).
fn dims_of(info: &GraphInfo, name: &str) -> Option<Vec<i64>> {
    let t = info.ty(name)?;
    Some(
        t.shape
            .as_ref()?
            .iter()
            .map(|d| d.known().unwrap_or(1).max(1))
            .collect(),
    )
}

/// The layers of a verified model, with `batch` samples per inference, and each layer's spec
/// (from `specs`, by node name; missing ones default to the hardware's PE).
pub fn extract(
    model: &Model,
    info: &GraphInfo,
    batch: u64,
    acc: &Accelerator,
    specs: &HashMap<String, LayerSpec>,
) -> Result<Vec<Layer>, MapError> {
    let g = &model.graph;
    // weights: initializers, constants, and the graph inputs a shape-only model-zoo text names as
    // weights (`weights_stripped_to_inputs`), which carry a shape but no values
    // (and, as the nodes go by, the values computed from weights alone)
    let mut weights: std::collections::HashSet<String> =
        etch_ir::weights::shape_only_weights(model)
            .map(|w| w.into_iter().map(|w| w.name).collect())
            .unwrap_or_default();
    let batch = batch.max(1);
    let order = g.node_order();
    let uses = g.uses();
    let mut layers = Vec::with_capacity(order.len());
    // outputs of array layers (and Adds) that feed nothing but one ReLU/Clip: that activation
    // fuses, and a second right after it (a ReLU and the Clip that narrows it to fewer activation
    // bits, as the integer layers absorb them); the value is how many are fused so far
    let mut fusable: HashMap<&str, usize> = HashMap::new();
    for &idx in &order {
        let n = &g.nodes[idx];
        let name = n.display_name();
        let is_weight = |name: &str| {
            g.initializer(name).is_some()
                || info.consts.contains_key(name)
                || weights.contains(name)
        };
        // a node that reads weights only computes a weight (the DequantizeLinear of stored codes,
        // a scale applied to binary weights): folded before the accelerator runs
        let weight_only = n.inputs.iter().any(|i| !i.is_empty())
            && n.inputs
                .iter()
                .filter(|i| !i.is_empty())
                .all(|i| is_weight(i));
        let err = |message: String| MapError::Layer {
            layer: name.clone(),
            op: n.op_type.clone(),
            message,
        };
        // input k's dims, which the mapping cannot do without
        let known_dims = |k: usize, what: &str| {
            n.inputs
                .get(k)
                .and_then(|i| dims_of(info, i))
                .ok_or_else(|| err(format!("{what}'s shape is unknown")))
        };
        let out_name = n.outputs.first().cloned().unwrap_or_default();
        let out_dims = dims_of(info, &out_name).unwrap_or_default();
        let out_elems = numel(&out_dims) * batch;
        let inputs: Vec<String> = n
            .inputs
            .iter()
            .filter(|i| !i.is_empty() && !is_weight(i))
            .cloned()
            .collect();
        let in_elems = |k: usize| {
            n.inputs
                .get(k)
                .and_then(|i| dims_of(info, i))
                .map_or(0, |d| numel(&d))
                * batch
        };
        // vector work of `ops` lane operations reading the node's activation inputs
        let vector = |ops: u64| {
            Work::Vector(VectorWork {
                ops,
                input_elems: (0..n.inputs.len())
                    .filter(|&k| !is_weight(&n.inputs[k]))
                    .map(in_elems)
                    .sum(),
                output_elems: out_elems,
                rows: None,
            })
        };
        let work = match &n.op {
            _ if weight_only => Work::Free,
            // QDQ is how the graph writes the integer datapath: activations move as codes and the
            // requantization is the producing layer's output path, so these take no step of their
            // own; QONNX's quantizers (`Quant`, `BipolarQuant`, `Trunc`) write the same datapath
            // in one node each
            Op::QuantizeLinear { .. }
            | Op::DequantizeLinear { .. }
            | Op::Quant(_)
            | Op::BipolarQuant
            | Op::Trunc(_) => Work::Fused,
            // a binary activation (`binarize(acts=true)`: `Where(x ≥ τ, 1, −1)` with constant
            // thresholds and branches) is the threshold the consuming layer's input gather applies
            // to the codes as it reads them: no step of its own
            Op::Compare(etch_ir::op::Comparison::GreaterOrEqual) if n.inputs.get(1).is_some_and(|t| is_weight(t)) => Work::Fused,
            Op::Where if n.inputs.len() == 3 && n.inputs[1..].iter().all(|b| is_weight(b)) => {
                Work::Fused
            }
            Op::Conv { window, group } => {
                let x = known_dims(0, "the input")?;
                let w = known_dims(1, "the weight")?;
                if x.len() < 3 || w.len() != x.len() {
                    return Err(err(format!(
                        "input rank {} and weight rank {} do not make a convolution",
                        x.len(),
                        w.len()
                    )));
                }
                let group = (*group).max(1) as u64;
                let (cout, cin_g) = (w[0] as u64, w[1] as u64);
                if cout % group != 0 {
                    return Err(err(format!(
                        "{cout} output channels do not split into {group} groups"
                    )));
                }
                let axes = window.resolve(&x[2..], &w[2..]).map_err(err)?;
                let out_px: u64 = axes.iter().map(|a| a.out.max(0) as u64).product();
                let kernel: u64 = w[2..].iter().map(|&k| k as u64).product();
                let geom = ConvGeom {
                    input: x[2..].to_vec(),
                    in_channels: x[1] as u64,
                    kernel: axes.iter().map(|a| a.kernel).collect(),
                    stride: axes.iter().map(|a| a.stride).collect(),
                    dilation: axes.iter().map(|a| a.dilation).collect(),
                    pads: axes.iter().map(|a| (a.pad_begin, a.pad_end)).collect(),
                    out: axes.iter().map(|a| a.out).collect(),
                    group,
                    depthwise: group > 1 && cin_g == 1 && cout == group,
                };
                Work::Array(GemmWork {
                    m: x[0] as u64 * batch * out_px,
                    k: cin_g * kernel,
                    n: cout / group,
                    groups: group,
                    input_elems: in_elems(0),
                    weight_elems: numel(&w),
                    output_elems: out_elems,
                    weights_are_activations: false,
                    conv: Some(geom),
                })
            }
            Op::Gemm {
                trans_a, trans_b, ..
            } => {
                let a = known_dims(0, "input A")?;
                let b = known_dims(1, "input B")?;
                if a.len() != 2 || b.len() != 2 {
                    return Err(err("Gemm takes 2-D inputs".into()));
                }
                let (m, k) = if *trans_a { (a[1], a[0]) } else { (a[0], a[1]) };
                let nn = if *trans_b { b[0] } else { b[1] };
                let b_weight = is_weight(&n.inputs[1]);
                Work::Array(GemmWork {
                    m: m as u64 * batch,
                    k: k as u64,
                    n: nn as u64,
                    groups: 1,
                    input_elems: in_elems(0),
                    weight_elems: numel(&b) * if b_weight { 1 } else { batch },
                    output_elems: out_elems,
                    weights_are_activations: !b_weight,
                    conv: None,
                })
            }
            Op::MatMul => {
                let a = known_dims(0, "input A")?;
                let b = known_dims(1, "input B")?;
                if a.is_empty() || b.is_empty() {
                    return Err(err("MatMul of scalars".into()));
                }
                let k = *a.last().unwrap_or(&1) as u64;
                let m_rows = if a.len() >= 2 {
                    a[a.len() - 2] as u64
                } else {
                    1
                };
                let nn = if b.len() >= 2 {
                    *b.last().unwrap_or(&1) as u64
                } else {
                    1
                };
                let b_weight = is_weight(&n.inputs[1]);
                // batch dims of the output: independent products (or more rows against one weight)
                let lead: u64 = out_dims
                    .len()
                    .checked_sub(2)
                    .map_or(1, |l| numel(&out_dims[..l]));
                let (m, groups) = if b_weight || b.len() <= 2 {
                    (m_rows * lead * batch, 1)
                } else {
                    (m_rows, lead * batch)
                };
                Work::Array(GemmWork {
                    m,
                    k,
                    n: nn,
                    groups,
                    input_elems: in_elems(0),
                    weight_elems: numel(&b) * if b_weight { 1 } else { batch },
                    output_elems: out_elems,
                    weights_are_activations: !b_weight,
                    conv: None,
                })
            }
            Op::Relu | Op::Clip { .. }
                if n.inputs
                    .first()
                    .is_some_and(|i| fusable.contains_key(i.as_str())) =>
            {
                Work::Fused
            }
            Op::Relu
            | Op::Clip { .. }
            | Op::Sigmoid
            | Op::HardSigmoid { .. }
            | Op::HardSwish
            | Op::Unary(_)
            | Op::Add
            | Op::Sub
            | Op::Mul
            | Op::Div
            | Op::BatchNormalization { .. }
            | Op::LayerNormalization { .. }
            | Op::Softmax { .. } => {
                let per = match &n.op {
                    Op::Unary(f) => f.lane_ops(),
                    Op::Relu | Op::Add | Op::Sub | Op::Mul | Op::Div => 1,
                    Op::Clip { .. } | Op::HardSigmoid { .. } | Op::BatchNormalization { .. } => 2,
                    Op::HardSwish => 3,
                    // two reductions (sum, squared deviations), a subtract, a multiply by the
                    // inverse deviation (its root once a row), a scale and a shift
                    Op::LayerNormalization { .. } => 6,
                    // a table lookup and interpolation; softmax: max, subtract, exp, sum, divide
                    Op::Sigmoid => 4,
                    _ => 5,
                };
                vector(out_elems * per)
            }
            Op::MaxPool { window } | Op::AveragePool { window, .. } => {
                let k: u64 = window
                    .kernel_shape
                    .as_ref()
                    .map_or(1, |k| k.iter().map(|&v| v.max(1) as u64).product());
                let in_dims = n.inputs.first().and_then(|i| dims_of(info, i));
                Work::Vector(VectorWork {
                    ops: out_elems * k,
                    input_elems: in_elems(0),
                    output_elems: out_elems,
                    rows: in_dims.and_then(|d| pool_rows(window, &d, &out_dims)),
                })
            }
            Op::GlobalAveragePool | Op::GlobalMaxPool | Op::Reduce { .. } => {
                Work::Vector(VectorWork {
                    ops: in_elems(0),
                    input_elems: in_elems(0),
                    output_elems: out_elems,
                    rows: None,
                })
            }
            Op::Flatten { .. }
            | Op::Reshape { .. }
            | Op::Identity
            | Op::Dropout
            | Op::Shape { .. }
            | Op::Gather { .. }
            | Op::Constant { .. }
            | Op::Squeeze { .. }
            | Op::Unsqueeze { .. }
            | Op::Cast { .. }
            | Op::Concat { .. }
            | Op::Split { .. }
            | Op::Slice { .. }
            | Op::Pad { .. } => Work::Free,
            // a permutation that keeps the order of the axes longer than 1 only renames them;
            // any other moves every element once through the vector unit (the attention heads'
            // split and merge)
            Op::Transpose { perm } => {
                let x = known_dims(0, "the input")?;
                let rank = x.len();
                let perm: Vec<usize> = match perm {
                    Some(p) => p.iter().map(|&a| a.rem_euclid(rank.max(1) as i64) as usize).collect(),
                    None => (0..rank).rev().collect(),
                };
                let long: Vec<usize> = perm.into_iter().filter(|&a| x.get(a).is_some_and(|&d| d > 1)).collect();
                if long.windows(2).all(|w| w[0] < w[1]) {
                    Work::Free
                } else {
                    vector(out_elems)
                }
            }
            // a GEMM of every input pixel's channels against the kernel's columns
            // (`[N·H·W, C/g] × [C/g, M/g·Kh·Kw]` per group), whose products the accumulators add
            // into the output pixels they land on (col2im; where windows overlap, stride < kernel,
            // that adds partial sums as a convolution's folds do)
            Op::ConvTranspose { group, .. } => {
                let x = known_dims(0, "the input")?;
                let w = known_dims(1, "the weight")?;
                if x.len() < 3 || w.len() != x.len() {
                    return Err(err(format!(
                        "input rank {} and weight rank {} do not make a transposed convolution",
                        x.len(),
                        w.len()
                    )));
                }
                let group = (*group).max(1) as u64;
                let cin = w[0] as u64;
                if !cin.is_multiple_of(group) {
                    return Err(err(format!("{cin} input channels do not split into {group} groups")));
                }
                Work::Array(GemmWork {
                    m: x[0] as u64 * batch * numel(&x[2..]),
                    k: cin / group,
                    n: numel(&w[1..]),
                    groups: group,
                    input_elems: in_elems(0),
                    weight_elems: numel(&w),
                    output_elems: out_elems,
                    weights_are_activations: false,
                    conv: None,
                })
            }
            // `import-quant` rewrote every QOperator layer the accelerator computes exactly
            Op::QLinearConv { .. } | Op::QLinearMatMul | Op::QGemm { .. } | Op::QLinearAdd => {
                return Err(err("this QOperator layer requantizes as onnxruntime does, in float32 with a multiplier that is not an exact power of two; the accelerator's fixed-point requantization could differ by one step, so it does not take it. Run the model on the CPU (`etch run`, `etch eval`), or quantize the float model with etch (`--passes quant(...)`)".into()))
            }
            Op::Other => {
                return Err(err(format!(
                    "etch has no cost model for `{}`, so it cannot time this model; replace the op, or remove it before simulating",
                    n.op_type
                )))
            }
            // one lane operation per output element: a comparison, a select, a logical op, an
            // integer remainder, or the copy that writes out a fill, a broadcast or a repeat
            Op::Where
            | Op::Compare(_)
            | Op::Not
            | Op::Logic(_)
            | Op::Mod { .. }
            | Op::ConstantOfShape { .. }
            | Op::Range
            | Op::Expand
            | Op::Tile => vector(out_elems),
            // `xʸ = exp(y · ln x)`: a logarithm, a multiply and an exponential
            Op::Pow => vector(out_elems * 3),
            // nearest: one copy per output element; linear: a multiply-add per tap, 2 taps along
            // each resized axis
            Op::Resize(r) => {
                let x = known_dims(0, "the input")?;
                let resized = x.iter().zip(&out_dims).filter(|(a, b)| a != b).count() as u32;
                match r.mode {
                    etch_ir::resize::Interpolation::Nearest => vector(out_elems),
                    etch_ir::resize::Interpolation::Linear => vector(out_elems * 2 * (1u64 << resized)),
                }
            }
            // one comparison (ArgMax/ArgMin) or addition (CumSum) per input element
            Op::Arg { .. } | Op::CumSum { .. } => vector(in_elems(0)),
            // a sort of each slice along the axis: n·⌈log₂ n⌉ comparisons
            Op::TopK { axis, .. } => {
                let x = known_dims(0, "the input")?;
                let along = x.len().checked_sub(1).and_then(|r| {
                    let a = if *axis < 0 { *axis + x.len() as i64 } else { *axis };
                    usize::try_from(a).ok().filter(|&a| a <= r).map(|a| x[a].max(1) as u64)
                }).ok_or_else(|| err("the axis is outside the input".into()))?;
                vector(in_elems(0) * (u64::BITS - (along - 1).leading_zeros()).max(1) as u64)
            }
            // a copy of the data with every update written over (or combined with) its element
            Op::ScatterND(_) => vector(out_elems + in_elems(2)),
            Op::Einsum(eq) => {
                let shapes: Vec<Vec<i64>> = (0..n.inputs.len())
                    .map(|k| known_dims(k, "an operand"))
                    .collect::<Result<_, _>>()?;
                let (labels, ext) = eq.label_known(&shapes).map_err(err)?;
                let prod = |ls: &[usize]| ls.iter().map(|&l| ext[l]).product::<u64>();
                match labels.as_matmul() {
                    // a batched matrix product on the array, as MatMul maps one
                    Some([b, m, nn, k]) => {
                        let b_weight = is_weight(&n.inputs[1]);
                        let (m, groups) = if b_weight { (prod(&m) * prod(&b) * batch, 1) } else { (prod(&m), prod(&b) * batch) };
                        Work::Array(GemmWork {
                            m,
                            k: prod(&k),
                            n: prod(&nn),
                            groups,
                            input_elems: in_elems(0),
                            weight_elems: numel(&shapes[1]) * if b_weight { 1 } else { batch },
                            output_elems: out_elems,
                            weights_are_activations: !b_weight,
                            conv: None,
                        })
                    }
                    // one multiply-add per operand after the first for every label combination
                    // (a lone operand's transpose or sum: one add per element)
                    None => vector(prod(&(0..labels.count).collect::<Vec<_>>()) * batch * (n.inputs.len() as u64 - 1).max(1)),
                }
            }
        };
        // a ReLU/Clip alone after an array layer or an Add is that layer's output clamp
        let fused_before = match (&n.op, &work) {
            (_, Work::Array(_)) | (Op::Add, Work::Vector(_)) => Some(0),
            (Op::Relu | Op::Clip { .. }, Work::Fused) => n
                .inputs
                .first()
                .and_then(|i| fusable.get(i.as_str()).copied()),
            _ => None,
        };
        if let Some(k) = fused_before.filter(|&k| k < 2) {
            if uses.consumers(&out_name).len() == 1 && !g.is_output(&out_name) {
                if let Some(c) = uses.consumers(&out_name).first() {
                    if matches!(g.nodes[*c].op, Op::Relu | Op::Clip { .. }) {
                        fusable.insert(n.outputs[0].as_str(), k + 1);
                    }
                }
            }
        }
        let spec = specs
            .get(&name)
            .cloned()
            .unwrap_or_else(|| LayerSpec::from_hw(acc));
        let gathers = match &n.op {
            Op::Concat { axis } => {
                let rank = out_dims.len() as i64;
                let a = if *axis < 0 { axis + rank } else { *axis };
                batch == 1
                    && (0..rank).contains(&a)
                    && out_dims[..a as usize].iter().all(|&d| d == 1)
            }
            _ => false,
        };
        layers.push(Layer {
            name,
            op: n.op_type.clone(),
            work,
            spec,
            inputs,
            output: out_name,
            output_elems: out_elems,
            gathers,
        });
        if weight_only {
            weights.extend(n.outputs.iter().cloned());
        }
    }
    Ok(layers)
}

/// A GEMM placed on the array for one dataflow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mapping {
    pub dataflow: Dataflow,
    pub rows: u64,
    pub cols: u64,
    /// The spatial dimension on the rows, on the columns, and the temporal one (SCALE-Sim's
    /// `Sr`, `Sc`, `T`), for one pass of packed groups.
    pub sr: u64,
    pub sc: u64,
    pub t: u64,
    pub row_folds: u64,
    pub col_folds: u64,
    /// Groups placed side by side (block-diagonally) in one pass, and the passes.
    pub groups_per_pass: u64,
    pub passes: u64,
    /// Reduction length after N:M compression (`k` when the PE cannot skip zeros).
    pub k_eff: u64,
    /// Output channels after dropping pruned (all-zero) ones.
    pub n_eff: u64,
    /// Cycles of one fold with `t` streaming steps: preload, fill (skew), streaming, drain.
    pub preload: u64,
    pub fill: u64,
    pub drain: u64,
}

impl Mapping {
    pub fn folds(&self) -> u64 {
        self.row_folds * self.col_folds * self.passes
    }
    /// Cycles of one fold streaming `t` steps.
    pub fn fold_cycles(&self, t: u64) -> u64 {
        self.preload + self.fill + t + self.drain
    }
    /// All compute cycles (folds back to back, no stalls).
    pub fn compute_cycles(&self) -> u64 {
        self.folds() * self.fold_cycles(self.t)
    }
}

/// Places a GEMM on the array.
///
/// GEMM view per dataflow (as SCALE-Sim): WS rows hold the reduction `k`, columns the output
/// channels `n`, and output pixels `m` stream; OS rows hold pixels, columns channels, `k` streams;
/// IS rows hold `k`, columns pixels, channels stream. Folds: `ceil(Sr/R)·ceil(Sc/C)`. Fold cycles
/// (SCALE-Sim's demand-matrix lines): WS and IS `R` (stationary preload) + `R − 1` (input skew) +
/// `T` + `C − 1` (output drain); OS `R − 1` + `T` + `C − 1`.
///
/// Groups (grouped and depthwise convolutions): when one group's `k` fits the rows and its `n`
/// the columns (WS) or its `k` the rows (IS), `p` groups share a pass block-diagonally; OS runs
/// them one after another.
///
/// N:M sparsity with PE support (`spec.nm` no denser than the hardware's n:m) compresses `k` to
/// `ceil(k·n/m)` (the index select picks the matching activations); all-zero output channels are
/// dropped from `n`.
pub fn map_gemm(g: &GemmWork, spec: &LayerSpec, acc: &Accelerator) -> Mapping {
    let (r, c) = (acc.rows() as u64, acc.cols() as u64);
    let df = acc.dataflow();
    let k_eff = match (spec.nm, acc.sparse) {
        (Some((n, m)), Some(hw)) if m == hw.m && n <= hw.n => (g.k * n as u64).div_ceil(m as u64),
        _ => g.k,
    };
    let n_eff = ((g.n as f64 * spec.channel_density).ceil() as u64).clamp(1, g.n.max(1));
    let groups = g.groups.max(1);
    let p = match df {
        Dataflow::WeightStationary if groups > 1 && k_eff <= r && n_eff <= c => {
            groups.min(r / k_eff).min(c / n_eff).max(1)
        }
        Dataflow::InputStationary if groups > 1 && k_eff <= r => groups.min(r / k_eff).max(1),
        _ => 1,
    };
    let (sr, sc, t) = match df {
        Dataflow::WeightStationary => (p * k_eff, p * n_eff, g.m),
        Dataflow::OutputStationary => (g.m, n_eff, k_eff),
        Dataflow::InputStationary => (p * k_eff, g.m, p * n_eff),
    };
    let (preload, fill) = match df {
        Dataflow::OutputStationary => (0, r - 1),
        _ => (r, r - 1),
    };
    Mapping {
        dataflow: df,
        rows: r,
        cols: c,
        sr,
        sc,
        t,
        row_folds: sr.div_ceil(r).max(1),
        col_folds: sc.div_ceil(c).max(1),
        groups_per_pass: p,
        passes: groups.div_ceil(p),
        k_eff,
        n_eff,
        preload,
        fill,
        drain: c - 1,
    }
}
