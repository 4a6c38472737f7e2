//! Quantized layers in a QDQ graph: the one place that reads which Conv/Gemm/MatMul computes in
//! integers, with what weight form, bits, scales and zero points. A quantized model is standard
//! ONNX (DESIGN.md, "Integer semantics"):
//!
//! ```text
//! x_q ─DequantizeLinear(s_x, zp_x)─┐
//! w_q ─DequantizeLinear(s_w[c], axis)─ Conv/Gemm/MatMul ─[Relu|Clip]─ QuantizeLinear(s_y, zp_y) ─▶ y_q
//! b_q ─DequantizeLinear(s_x·s_w[c])─┘
//! ```
//!
//! Weight codes are int8 tensors: `int{b}` (symmetric, |code| ≤ 2^(b−1)−1), power-of-two
//! (`{0, ±2^e}`, e in 0..=max_exp) or binary (`±1`), told apart by their values. Binary
//! activations are `Where(GreaterOrEqual(x, τ), 1, −1)` in front of the layer. Statistics, the
//! executors, the simulator and the code generators all read layers through [`analyze`].

use petgraph::stable_graph::NodeIndex;

use crate::graph::{Graph, Model, Node, Uses};
use crate::infer::GraphInfo;
use crate::op::Op;
use crate::tensor::{ElemType, Tensor};

/// How a layer's weight codes encode a weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightForm {
    /// Symmetric integers, `|code| ≤ 2^(bits−1) − 1`.
    Int,
    /// `code ∈ {0, ±2^e}` with `0 ≤ e ≤ max_exp`: a product is a shift of the activation.
    Pow2 { max_exp: u32 },
    /// `code = ±1`.
    Binary,
}

/// A weight stored as int8 codes behind a per-channel or per-tensor DequantizeLinear.
#[derive(Debug, Clone, PartialEq)]
pub struct QWeight {
    /// The initializer holding the codes, and the DequantizeLinear node reading it.
    pub init: String,
    pub dq: NodeIndex,
    /// The codes in output-channel-major order: `codes[o · reduction + r]`, whatever the stored layout.
    pub codes: Vec<i8>,
    /// Dims as stored.
    pub dims: Vec<i64>,
    pub outs: usize,
    pub reduction: usize,
    /// Whether element (o, r) is stored at `r · outs + o` (Gemm without transB, MatMul).
    pub transposed: bool,
    /// One scale per output channel, or one for the tensor.
    pub scales: Vec<f32>,
    pub form: WeightForm,
    /// Bits a code needs: 1 for binary, `⌈log2(2·(max_exp+1)+1)⌉` for power-of-two, else sign + magnitude.
    pub bits: u32,
}

impl QWeight {
    /// The scale of output channel `o`.
    pub fn scale(&self, o: usize) -> f32 {
        if self.scales.len() == 1 {
            self.scales[0]
        } else {
            self.scales[o]
        }
    }

    /// The MAC kind this weight form makes: `int{b}`, `shift` or `xnor`.
    pub fn mac_kind(&self) -> String {
        match self.form {
            WeightForm::Int => format!("int{}", self.bits),
            WeightForm::Pow2 { .. } => "shift".into(),
            WeightForm::Binary => "xnor".into(),
        }
    }
}

/// An int32 bias in the accumulator's scale, behind a DequantizeLinear.
#[derive(Debug, Clone, PartialEq)]
pub struct QBias {
    pub init: String,
    pub dq: NodeIndex,
    /// One value per output channel.
    pub values: Vec<i32>,
    /// The DequantizeLinear's scales (one per output channel, or one).
    pub scales: Vec<f32>,
}

/// What a quantized layer reads.
#[derive(Debug, Clone, PartialEq)]
pub enum QInput {
    /// `x = (x_q − zero_point) · scale`, per tensor; `x_q` lies in `[qmin, qmax]`.
    Int {
        value: String,
        scale: f32,
        zero_point: i32,
        qmin: i32,
        qmax: i32,
    },
    /// `x = +1 if x_q ≥ threshold[c] else −1`, the integer form of `Where(GreaterOrEqual(DQ(x_q), τ), 1, −1)`;
    /// one threshold per channel (axis 1 of `x_q`), or one for the tensor. Its scale is 1.
    Binary { value: String, thresholds: Vec<i32> },
}

impl QInput {
    /// The value the integer kernel reads.
    pub fn value(&self) -> &str {
        match self {
            QInput::Int { value, .. } | QInput::Binary { value, .. } => value,
        }
    }

    /// The scale of one input step (1 for ±1 activations).
    pub fn scale(&self) -> f32 {
        match self {
            QInput::Int { scale, .. } => *scale,
            QInput::Binary { .. } => 1.0,
        }
    }
}

/// The activation a layer's output clamp stands for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FusedAct {
    None,
    Relu,
    /// Clip to `[min, max]` (ReLU6 is `[0, 6]`).
    Clip {
        min: f32,
        max: f32,
    },
}

/// Where a quantized layer's result goes: `y_q = clamp(zp + round(acc · M), qmin, qmax)`.
#[derive(Debug, Clone, PartialEq)]
pub struct QOutput {
    /// The QuantizeLinear's output, which the integer kernel writes.
    pub value: String,
    pub scale: f32,
    pub zero_point: i32,
    /// The clamp, with the fused ReLU/Clip folded in.
    pub qmin: i32,
    pub qmax: i32,
    /// The first fused activation (a ReLU may be followed by the Clip of a narrower activation).
    pub act: FusedAct,
    /// The QuantizeLinear node.
    pub q: NodeIndex,
}

/// One Conv, Gemm or MatMul whose weight is in DequantizeLinear form.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantLayer {
    pub node: NodeIndex,
    pub name: String,
    pub op: Op,
    pub weight: QWeight,
    /// An int32 bias whose scale is `s_x · s_w[c]`, when the layer has one in that form.
    pub bias: Option<QBias>,
    /// The layer has a bias in another form (float): it cannot run in integers.
    pub float_bias: bool,
    pub input: Option<QInput>,
    pub output: Option<QOutput>,
    /// Nodes an integer kernel for the whole layer stands for (besides `node`): the fused
    /// activation and the output QuantizeLinear.
    pub absorbed: Vec<NodeIndex>,
}

impl QuantLayer {
    /// Whether the layer runs in integers from `input` to `output`: quantized (or binary) input,
    /// quantized output, no float bias.
    pub fn is_integer(&self) -> bool {
        self.input.is_some() && self.output.is_some() && !self.float_bias && self.integer_op()
    }

    fn integer_op(&self) -> bool {
        match self.op {
            Op::Gemm {
                alpha,
                beta,
                trans_a,
                ..
            } => alpha == 1.0 && beta == 1.0 && !trans_a,
            _ => true,
        }
    }

    /// The MAC kind: `int{b}`, `shift`, `xnor`. Binary weights on a multi-bit input multiply as
    /// 2-bit integers (±1): XNOR-popcount needs a binary input too.
    pub fn mac_kind(&self) -> String {
        match (self.weight.form, &self.input) {
            (WeightForm::Binary, Some(QInput::Binary { .. })) | (WeightForm::Binary, None) => {
                self.weight.mac_kind()
            }
            (WeightForm::Binary, Some(_)) => "int2".into(),
            _ => self.weight.mac_kind(),
        }
    }
}

/// An op that moves int8 values without arithmetic (MaxPool, Flatten, Reshape, Identity, Concat)
/// between DequantizeLinears and a QuantizeLinear with the same scale and zero point: it runs on
/// the codes.
#[derive(Debug, Clone, PartialEq)]
pub struct QPassThrough {
    pub node: NodeIndex,
    /// The codes it reads (its first inputs' `DequantizeLinear`s' inputs: one, or a Concat's
    /// all) and writes (`QuantizeLinear`'s output).
    pub inputs: Vec<String>,
    pub output: String,
    /// The QuantizeLinear node.
    pub q: NodeIndex,
}

/// A residual Add of two quantized tensors of one shape whose DequantizeLinears and output
/// QuantizeLinear share one scale `s` (a ReLU/Clip between the Add and the QuantizeLinear folds
/// into the clamp): `y_q = clamp(zp_y + (a_q − zp_a) + (b_q − zp_b), qmin, qmax)`. The float
/// semantics give exactly this: each product `(x_q − zp)·s` and the sum are within
/// `3·2^−24` relative of the exact `(a + b)·s`, so dividing by `s` lands within 2^−13 of the
/// integer `a + b` (|a|, |b| ≤ 255), which rounding returns. With different scales the float
/// result has no integer form, and the Add stays in float.
#[derive(Debug, Clone, PartialEq)]
pub struct QAdd {
    pub node: NodeIndex,
    /// The codes of the two operands and their zero points.
    pub inputs: [(String, i32); 2],
    pub output: QOutput,
}

impl QAdd {
    /// The integer Add of two codes.
    pub fn apply(&self, a: i64, b: i64) -> i64 {
        let (za, zb) = (self.inputs[0].1 as i64, self.inputs[1].1 as i64);
        (self.output.zero_point as i64 + (a - za) + (b - zb))
            .clamp(self.output.qmin as i64, self.output.qmax as i64)
    }
}

/// Everything quantized in a graph.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuantInfo {
    pub layers: Vec<QuantLayer>,
    pub passthrough: Vec<QPassThrough>,
    pub adds: Vec<QAdd>,
    pub tables: Vec<QTable>,
}

/// A unary activation (Sigmoid, HardSigmoid, HardSwish, Relu, Clip, or a [`crate::op::Unary`]
/// function finite everywhere: Tanh, Erf, Gelu, LeakyRelu, …) between a DequantizeLinear
/// and a QuantizeLinear of 8-bit codes: a function of at most 256 input codes, so it runs as a
/// table the executor fills by running the op's float semantics on every code (exactly what the
/// QDQ graph computes, element by element).
#[derive(Debug, Clone, PartialEq)]
pub struct QTable {
    pub node: NodeIndex,
    /// The codes it reads and how they dequantize.
    pub input: String,
    pub input_quant: TensorQuant,
    /// The codes it writes, and the QuantizeLinear node.
    pub output: String,
    pub output_quant: TensorQuant,
    pub q: NodeIndex,
}

/// Whether `op` is a unary element-wise activation a table can stand for.
pub fn is_table_op(op: &Op) -> bool {
    matches!(
        op,
        Op::Sigmoid | Op::HardSigmoid { .. } | Op::HardSwish | Op::Relu | Op::Clip { .. }
    ) || matches!(op, Op::Unary(f) if f.total())
}

/// The table form of node `idx`, when it has one (see [`QTable`]).
fn table_of(g: &View, info: &GraphInfo, idx: NodeIndex) -> Option<QTable> {
    let n = &g.nodes[idx];
    // the activation reads one tensor; a Clip's bounds are constants
    let (x, bounds) = n.inputs.split_first()?;
    if !is_table_op(&n.op)
        || n.outputs.len() != 1
        || bounds
            .iter()
            .any(|b| !b.is_empty() && !info.consts.contains_key(b))
    {
        return None;
    }
    let (_, dq) = producer(g, x)?;
    if !matches!(dq.op, Op::DequantizeLinear { .. }) || info.consts.contains_key(&dq.inputs[0]) {
        return None;
    }
    let input_quant = tensor_quant(info, dq)?;
    let (q, qn) = only_consumer(g, &n.outputs[0])?;
    if !matches!(qn.op, Op::QuantizeLinear { .. }) || qn.inputs[0] != n.outputs[0] {
        return None;
    }
    let output_quant = tensor_quant(info, qn)?;
    let byte = |t: &TensorQuant| t.qmax - t.qmin <= 255;
    if !byte(&input_quant) || !byte(&output_quant) {
        return None;
    }
    Some(QTable {
        node: idx,
        input: dq.inputs[0].clone(),
        input_quant,
        output: qn.outputs[0].clone(),
        output_quant,
        q,
    })
}

/// The quantized layers of a verified model, in node order.
pub fn quantized_layers(model: &Model, info: &GraphInfo) -> Vec<QuantLayer> {
    analyze(model, info).layers
}

/// Per-tensor quantization parameters of a QuantizeLinear or DequantizeLinear node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TensorQuant {
    pub scale: f32,
    pub zero_point: i32,
    /// The integer type of the codes, and its range.
    pub elem: ElemType,
    pub qmin: i32,
    pub qmax: i32,
}

/// The consts of a node's input `k`.
fn const_of<'a>(info: &'a GraphInfo, n: &Node, k: usize) -> Option<&'a Tensor> {
    let name = n.inputs.get(k).filter(|s| !s.is_empty())?;
    info.consts.get(name)
}

/// Scale and zero point of a per-tensor Q/DQ node; `None` if they are per axis or not constant.
pub fn tensor_quant(info: &GraphInfo, n: &Node) -> Option<TensorQuant> {
    if !matches!(
        n.op,
        Op::QuantizeLinear { .. } | Op::DequantizeLinear { .. }
    ) {
        return None;
    }
    let scale = const_of(info, n, 1)?.floats()?;
    if scale.len() != 1
        || scale[0].partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
        || !scale[0].is_finite()
    {
        return None;
    }
    let (zero_point, elem) = match n.inputs.get(2).filter(|s| !s.is_empty()) {
        Some(_) => {
            let z = const_of(info, n, 2)?;
            let v = z.ints()?;
            if v.len() != 1 {
                return None;
            }
            (v[0] as i32, z.elem)
        }
        None => (
            0,
            if matches!(n.op, Op::DequantizeLinear { .. }) {
                info.ty(&n.inputs[0])?.elem
            } else {
                ElemType::U8
            },
        ),
    };
    if !matches!(elem, ElemType::I8 | ElemType::U8) {
        return None;
    }
    let (qmin, qmax) = elem.int_range();
    Some(TensorQuant {
        scale: scale[0],
        zero_point,
        elem,
        qmin: qmin as i32,
        qmax: qmax as i32,
    })
}

/// Python's/ONNX's float → integer quantization of one value: round half to even, then saturate.
pub fn quantize_value(x: f32, q: &TensorQuant) -> i32 {
    let v = (x / q.scale).round_ties_even() + q.zero_point as f32;
    v.clamp(q.qmin as f32, q.qmax as f32) as i32
}

/// A graph with its value uses indexed once, so each layer's look-ups stay constant-time.
struct View<'g> {
    graph: &'g Graph,
    uses: Uses<'g>,
}

impl<'g> View<'g> {
    fn new(graph: &'g Graph) -> Self {
        View {
            graph,
            uses: graph.uses(),
        }
    }
}

impl std::ops::Deref for View<'_> {
    type Target = Graph;
    fn deref(&self) -> &Graph {
        self.graph
    }
}

/// The node producing `value`, if it is a node.
fn producer<'g>(g: &View<'g>, value: &str) -> Option<(NodeIndex, &'g Node)> {
    let idx = g.uses.producer(value)?;
    Some((idx, &g.graph.nodes[idx]))
}

/// How the weight of a layer is laid out: (outs, reduction, transposed, the output-channel axis).
fn weight_layout(op: &Op, dims: &[i64]) -> Option<(usize, usize, bool, usize)> {
    let d: Vec<usize> = dims.iter().map(|&x| x.max(0) as usize).collect();
    Some(match (op, d.len()) {
        (Op::Conv { .. }, r) if r >= 3 => (d[0], d[1..].iter().product(), false, 0),
        (Op::Gemm { trans_b: true, .. }, 2) => (d[0], d[1], false, 0),
        (Op::Gemm { trans_b: false, .. }, 2) | (Op::MatMul, 2) => (d[1], d[0], true, 1),
        _ => return None,
    })
}

/// Classifies weight codes: the form and the bits a code needs.
pub fn classify_codes(codes: &[i8]) -> (WeightForm, u32) {
    let max = codes.iter().map(|&c| (c as i32).abs()).max().unwrap_or(0) as u32;
    if !codes.is_empty() && codes.iter().all(|&c| c == 1 || c == -1) {
        return (WeightForm::Binary, 1);
    }
    let pow2 = codes
        .iter()
        .all(|&c| c == 0 || (c as i32).unsigned_abs().is_power_of_two());
    if pow2 && max >= 4 {
        let max_exp = max.trailing_zeros();
        // codes: zero and ±2^e for e in 0..=max_exp
        let count = 2 * (max_exp + 1) + 1;
        return (
            WeightForm::Pow2 { max_exp },
            32 - (count - 1).leading_zeros(),
        );
    }
    // sign + magnitude bits, at least 2 (ternary codes are int2)
    let mag = 32 - max.leading_zeros();
    (WeightForm::Int, (mag + 1).max(2))
}

/// The weight of a layer, if it is `DequantizeLinear(int8 initializer, scale, axis)` with zero
/// zero points and the scale per output channel or per tensor.
fn weight_of(g: &View, info: &GraphInfo, n: &Node) -> Option<QWeight> {
    let (dq_idx, dq) = producer(g, n.inputs.get(1)?)?;
    let Op::DequantizeLinear { axis } = dq.op else {
        return None;
    };
    let init = g.initializer(&dq.inputs[0])?;
    if init.tensor.elem != ElemType::I8 {
        return None;
    }
    let stored: Vec<i8> = init.tensor.ints()?.into_iter().map(|v| v as i8).collect();
    let (outs, reduction, transposed, out_axis) = weight_layout(&n.op, &init.tensor.dims)?;
    let scales = const_of(info, dq, 1)?.floats()?;
    if scales
        .iter()
        .any(|s| s.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) || !s.is_finite())
    {
        return None;
    }
    let rank = init.tensor.dims.len() as i64;
    let ax = if axis < 0 { axis + rank } else { axis };
    if !(scales.len() == 1 || (scales.len() == outs && ax == out_axis as i64)) {
        return None;
    }
    if let Some(z) = const_of(info, dq, 2) {
        if z.ints()?.iter().any(|&v| v != 0) {
            return None;
        }
    } else if dq.inputs.get(2).is_some_and(|s| !s.is_empty()) {
        return None;
    }
    if stored.len() != outs * reduction {
        return None;
    }
    let codes = if transposed {
        (0..outs * reduction)
            .map(|i| stored[(i % reduction) * outs + i / reduction])
            .collect()
    } else {
        stored
    };
    let (form, bits) = classify_codes(&codes);
    Some(QWeight {
        init: init.name.clone(),
        dq: dq_idx,
        codes,
        dims: init.tensor.dims.clone(),
        outs,
        reduction,
        transposed,
        scales,
        form,
        bits,
    })
}

/// The bias of a layer, if it is `DequantizeLinear(int32 initializer, s_x·s_w[c])`; `Err(())` when
/// the layer has a bias in another form.
fn bias_of(
    g: &View,
    info: &GraphInfo,
    n: &Node,
    w: &QWeight,
    input: Option<&QInput>,
) -> Result<Option<QBias>, ()> {
    let Some(b) = n.inputs.get(2).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if matches!(n.op, Op::MatMul) {
        return Ok(None);
    }
    let (dq_idx, dq) = producer(g, b).ok_or(())?;
    if !matches!(dq.op, Op::DequantizeLinear { .. }) {
        return Err(());
    }
    let init = g.initializer(&dq.inputs[0]).ok_or(())?;
    if init.tensor.elem != ElemType::I32 {
        return Err(());
    }
    let values: Vec<i32> = init
        .tensor
        .ints()
        .ok_or(())?
        .into_iter()
        .map(|v| v as i32)
        .collect();
    let scales = const_of(info, dq, 1).and_then(Tensor::floats).ok_or(())?;
    if values.len() != w.outs || !(scales.len() == 1 || scales.len() == w.outs) {
        return Err(());
    }
    if let Some(z) = const_of(info, dq, 2) {
        if z.ints().ok_or(())?.iter().any(|&v| v != 0) {
            return Err(());
        }
    }
    // the bias must be in the accumulator's scale, s_x·s_w[c], for the integer path
    if let Some(inp) = input {
        let sx = inp.scale();
        for o in 0..w.outs {
            let want = sx * w.scale(o);
            let got = if scales.len() == 1 {
                scales[0]
            } else {
                scales[o]
            };
            if (got - want).abs() > 1e-5 * want.abs() {
                return Err(());
            }
        }
    }
    Ok(Some(QBias {
        init: init.name.clone(),
        dq: dq_idx,
        values,
        scales,
    }))
}

/// The binarizer `Where(GreaterOrEqual(u, τ), +1, −1)` producing `x`: `(u, τ, the Where node, the GreaterOrEqual node)`.
pub fn binarizer_of(
    g: &Graph,
    info: &GraphInfo,
    x: &str,
) -> Option<(String, Vec<f32>, NodeIndex, NodeIndex)> {
    binarizer_in(&View::new(g), info, x)
}

/// [`binarizer_of`] with the graph's uses already indexed.
fn binarizer_in(
    g: &View,
    info: &GraphInfo,
    x: &str,
) -> Option<(String, Vec<f32>, NodeIndex, NodeIndex)> {
    let (w_idx, wn) = producer(g, x)?;
    if !matches!(wn.op, Op::Where) || wn.inputs.len() != 3 {
        return None;
    }
    let all = |k: usize, v: f32| {
        info.consts
            .get(&wn.inputs[k])
            .and_then(Tensor::floats)
            .is_some_and(|t| !t.is_empty() && t.iter().all(|&x| x == v))
    };
    if !(all(1, 1.0) && all(2, -1.0)) {
        return None;
    }
    let (ge_idx, ge) = producer(g, &wn.inputs[0])?;
    if !matches!(ge.op, Op::Compare(crate::op::Comparison::GreaterOrEqual)) {
        return None;
    }
    let tau = info.consts.get(&ge.inputs[1]).and_then(Tensor::floats)?;
    let u = ge.inputs[0].clone();
    // τ is a scalar or one value per channel (axis 1 of u)
    let us = info.ty(&u)?.known_dims()?;
    let ts = info.ty(&ge.inputs[1])?.known_dims()?;
    if tau.len() != 1 {
        let off = us.len().checked_sub(ts.len())?;
        let ok = us.len() >= 2
            && ts
                .iter()
                .enumerate()
                .all(|(k, &d)| if k + off == 1 { d == us[1] } else { d == 1 });
        if !ok {
            return None;
        }
    }
    Some((u, tau, w_idx, ge_idx))
}

/// The smallest code `q` in `[qmin, qmax + 1]` with `DequantizeLinear(q) ≥ τ` in f32 arithmetic,
/// so that the integer comparison `x_q ≥ q` agrees with the float one bit for bit.
pub fn integer_threshold(tau: f32, q: &TensorQuant) -> i32 {
    (q.qmin..=q.qmax)
        .find(|&c| ((c - q.zero_point) as f32) * q.scale >= tau)
        .unwrap_or(q.qmax + 1)
}

/// What feeds a layer's input, if it is quantized.
fn input_of(g: &View, info: &GraphInfo, x: &str) -> Option<QInput> {
    if let Some((u, tau, _, _)) = binarizer_in(g, info, x) {
        let (_, dq) = producer(g, &u)?;
        let q = tensor_quant(info, dq)?;
        if !matches!(dq.op, Op::DequantizeLinear { .. }) {
            return None;
        }
        let thresholds = tau.iter().map(|&t| integer_threshold(t, &q)).collect();
        return Some(QInput::Binary {
            value: dq.inputs[0].clone(),
            thresholds,
        });
    }
    let (_, dq) = producer(g, x)?;
    if !matches!(dq.op, Op::DequantizeLinear { .. }) {
        return None;
    }
    let q = tensor_quant(info, dq)?;
    Some(QInput::Int {
        value: dq.inputs[0].clone(),
        scale: q.scale,
        zero_point: q.zero_point,
        qmin: q.qmin,
        qmax: q.qmax,
    })
}

/// The bounds of a Clip node, if constant.
fn clip_bounds(info: &GraphInfo, n: &Node) -> Option<(f32, f32)> {
    let Op::Clip { min, max } = n.op else {
        return None;
    };
    let at = |k: usize| -> Option<Option<f32>> {
        match n.inputs.get(k).filter(|s| !s.is_empty()) {
            None => Some(None),
            Some(name) => Some(Some(*info.consts.get(name)?.floats()?.first()?)),
        }
    };
    let lo = at(1)?.or(min).unwrap_or(f32::NEG_INFINITY);
    let hi = at(2)?.or(max).unwrap_or(f32::INFINITY);
    Some((lo, hi))
}

/// The single consumer of `value`, when exactly one node reads it (once) and it is not a graph output.
fn only_consumer<'g>(g: &View<'g>, value: &str) -> Option<(NodeIndex, &'g Node)> {
    if g.is_output(value) {
        return None;
    }
    let c = g.uses.consumers(value);
    if c.len() != 1 {
        return None;
    }
    let n = &g.graph.nodes[c[0]];
    (n.inputs.iter().filter(|i| *i == value).count() == 1).then_some((c[0], n))
}

/// What follows a layer's output: ReLU/Clip activations (a ReLU, a Clip, or a ReLU and the Clip
/// that narrows it to fewer activation bits), then a per-tensor QuantizeLinear.
fn output_of(g: &View, info: &GraphInfo, y: &str) -> Option<(QOutput, Vec<NodeIndex>)> {
    let (mut idx, mut n) = only_consumer(g, y)?;
    let mut absorbed = Vec::new();
    let mut acts = Vec::new();
    while absorbed.len() < 2 {
        let act = match n.op {
            Op::Relu => FusedAct::Relu,
            Op::Clip { .. } => {
                let (min, max) = clip_bounds(info, n)?;
                if min > max {
                    // Clip with min > max gives max everywhere: not a clamp; leave it in float
                    return None;
                }
                FusedAct::Clip { min, max }
            }
            _ => break,
        };
        if n.inputs[0]
            != absorbed
                .last()
                .map_or(y, |&a: &NodeIndex| g.nodes[a].outputs[0].as_str())
        {
            return None;
        }
        acts.push(act);
        absorbed.push(idx);
        (idx, n) = only_consumer(g, &n.outputs[0])?;
    }
    let last = absorbed
        .last()
        .map_or(y, |&a| g.nodes[a].outputs[0].as_str());
    if !matches!(n.op, Op::QuantizeLinear { .. }) || n.inputs[0] != last {
        return None;
    }
    let q = tensor_quant(info, n)?;
    absorbed.push(idx);
    let (mut qmin, mut qmax) = (q.qmin, q.qmax);
    // Q(clip(v, lo, hi)) = clamp(Q(v), Q(lo), Q(hi)): quantization is monotone, so every
    // activation narrows the clamp
    for act in &acts {
        match *act {
            FusedAct::None => {}
            FusedAct::Relu => qmin = qmin.max(quantize_value(0.0, &q)),
            FusedAct::Clip { min, max } => {
                if min > f32::NEG_INFINITY {
                    qmin = qmin.max(quantize_value(min, &q));
                }
                if max < f32::INFINITY {
                    qmax = qmax.min(quantize_value(max, &q));
                }
            }
        }
    }
    if qmin > qmax {
        return None;
    }
    let act = acts.first().copied().unwrap_or(FusedAct::None);
    let out = QOutput {
        value: n.outputs[0].clone(),
        scale: q.scale,
        zero_point: q.zero_point,
        qmin,
        qmax,
        act,
        q: idx,
    };
    Some((out, absorbed))
}

/// The integer form of an Add node, when it has one (see [`QAdd`]).
fn add_of(g: &View, info: &GraphInfo, idx: NodeIndex) -> Option<QAdd> {
    let n = &g.nodes[idx];
    if n.inputs.len() != 2 || n.outputs.len() != 1 {
        return None;
    }
    let shape = |v: &str| info.ty(v).and_then(|t| t.known_dims());
    let dims = shape(&n.inputs[0])?;
    if shape(&n.inputs[1])? != dims || shape(&n.outputs[0])? != dims {
        return None;
    }
    let operand = |v: &str| -> Option<(String, TensorQuant)> {
        let (_, dq) = producer(g, v)?;
        if !matches!(dq.op, Op::DequantizeLinear { .. }) || info.consts.contains_key(&dq.inputs[0])
        {
            return None;
        }
        Some((dq.inputs[0].clone(), tensor_quant(info, dq)?))
    };
    let (a, qa) = operand(&n.inputs[0])?;
    let (b, qb) = operand(&n.inputs[1])?;
    let (output, _) = output_of(g, info, &n.outputs[0])?;
    let same = |x: f32| x.to_bits() == output.scale.to_bits();
    let eight_bit = |q: &TensorQuant| q.qmax - q.qmin <= 255;
    if !same(qa.scale) || !same(qb.scale) || !eight_bit(&qa) || !eight_bit(&qb) {
        return None;
    }
    Some(QAdd {
        node: idx,
        inputs: [(a, qa.zero_point), (b, qb.zero_point)],
        output,
    })
}

/// Reads every quantized layer and integer pass-through op of a verified model.
pub fn analyze(model: &Model, info: &GraphInfo) -> QuantInfo {
    let g = &View::new(&model.graph);
    let mut out = QuantInfo::default();
    for idx in g.node_order() {
        let n = &g.nodes[idx];
        match n.op {
            Op::Conv { .. } | Op::Gemm { .. } | Op::MatMul => {
                let Some(weight) = weight_of(g, info, n) else {
                    continue;
                };
                let input = input_of(g, info, &n.inputs[0]);
                let (bias, float_bias) = match bias_of(g, info, n, &weight, input.as_ref()) {
                    Ok(b) => (b, false),
                    Err(()) => (None, true),
                };
                let (output, absorbed) = match output_of(g, info, &n.outputs[0]) {
                    Some((o, a)) => (Some(o), a),
                    None => (None, Vec::new()),
                };
                out.layers.push(QuantLayer {
                    node: idx,
                    name: n.display_name(),
                    op: n.op.clone(),
                    weight,
                    bias,
                    float_bias,
                    input,
                    output,
                    absorbed,
                });
            }
            Op::Add => {
                if let Some(add) = add_of(g, info, idx) {
                    out.adds.push(add);
                }
            }
            _ if is_table_op(&n.op) => {
                if let Some(t) = table_of(g, info, idx) {
                    out.tables.push(t);
                }
            }
            Op::MaxPool { .. }
            | Op::Flatten { .. }
            | Op::Reshape { .. }
            | Op::Identity
            | Op::Concat { .. } => {
                if n.outputs.iter().skip(1).any(|o| !o.is_empty()) {
                    continue;
                }
                let reads = if matches!(n.op, Op::Concat { .. }) {
                    n.inputs.len()
                } else {
                    1
                };
                // the codes each input dequantizes, and their quantizer
                let codes: Option<Vec<(String, TensorQuant)>> = n.inputs[..reads]
                    .iter()
                    .map(|x| {
                        let (_, dq) = producer(g, x)?;
                        if !matches!(dq.op, Op::DequantizeLinear { .. }) {
                            return None;
                        }
                        Some((dq.inputs[0].clone(), tensor_quant(info, dq)?))
                    })
                    .collect();
                let Some(codes) = codes.filter(|c| !c.is_empty()) else {
                    continue;
                };
                let Some((q_idx, qn)) = only_consumer(g, &n.outputs[0]) else {
                    continue;
                };
                if !matches!(qn.op, Op::QuantizeLinear { .. }) || qn.inputs[0] != n.outputs[0] {
                    continue;
                }
                match tensor_quant(info, qn) {
                    Some(qo) if codes.iter().all(|(_, qi)| *qi == qo) => {}
                    _ => continue,
                }
                out.passthrough.push(QPassThrough {
                    node: idx,
                    inputs: codes.into_iter().map(|(v, _)| v).collect(),
                    output: qn.outputs[0].clone(),
                    q: q_idx,
                });
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified() {
        assert_eq!(classify_codes(&[1, -1, 1]), (WeightForm::Binary, 1));
        assert_eq!(classify_codes(&[0, 1, -1]), (WeightForm::Int, 2));
        assert_eq!(classify_codes(&[0, 7, -3]), (WeightForm::Int, 4));
        assert_eq!(classify_codes(&[0, 127, -3]), (WeightForm::Int, 8));
        assert_eq!(
            classify_codes(&[0, 64, -1, 8]),
            (WeightForm::Pow2 { max_exp: 6 }, 4)
        );
        assert_eq!(
            classify_codes(&[0, 4, -1, 2]),
            (WeightForm::Pow2 { max_exp: 2 }, 3)
        );
    }

    #[test]
    fn thresholds_match_the_float_comparison() {
        let q = TensorQuant {
            scale: 0.1,
            zero_point: -3,
            elem: ElemType::I8,
            qmin: -128,
            qmax: 127,
        };
        for tau in [-20.0f32, -0.35, 0.0, 0.05, 0.1, 1.0, 13.0, 20.0] {
            let t = integer_threshold(tau, &q);
            for c in -128..=127 {
                assert_eq!(c >= t, ((c + 3) as f32) * 0.1 >= tau, "τ {tau}, code {c}");
            }
        }
    }
}
