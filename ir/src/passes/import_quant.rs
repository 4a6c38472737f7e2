//! `import-quant`: brings a trained low-bit model (QONNX from Brevitas or FINN, or ONNX's QCDQ) into
//! the QDQ form of etch's quantized layers ([`crate::quant`]), where the rewrite computes exactly
//! what the model does; what it cannot rewrite exactly stays as written, in float, and the report
//! says why. The pipeline runs it on every model that has something to import.
//!
//! - A QONNX `Quant` or `BipolarQuant` of a weight becomes int8 codes (qonnx's own rounding, worked
//!   out once) behind a `DequantizeLinear`: `code · scale` is the float qonnx computes.
//! - A QONNX `Quant` of an activation (2 to 8 bits, zero point 0, one positive scale, `ROUND`)
//!   becomes `QuantizeLinear → DequantizeLinear` (int8 or uint8 codes), with a Clip in front where
//!   the range is narrower than the codes' type: `round(clamp(x / s))` equals
//!   `clamp(round(x / s))` for whole bounds, and a Clip to `lo·s` and `hi·s` before the
//!   QuantizeLinear is that clamp.
//! - QCDQ's Clip on codes (`QuantizeLinear → Clip → DequantizeLinear`) moves in front of the
//!   QuantizeLinear as the same float Clip.
//! - A Transpose of dequantized weight codes (how QCDQ exports feed MatMul) is folded into the
//!   codes: the same values, in the layout the layer reads.
//! - A MaxPool, Flatten or Reshape of dequantized codes that no QuantizeLinear reads (Brevitas
//!   quantizes before a pool, not after) gets `QuantizeLinear → DequantizeLinear` with the same
//!   scale and zero point: the pooled values are on the codes' grid, so this changes no value,
//!   and the op runs on the codes.
//! - A QOperator layer (`QLinearConv`, `QLinearMatMul`, `QGemm`: [`crate::qoperator`]) whose
//!   requantization multipliers are all exact powers of two, with int8 weight codes in
//!   [−127, 127] and accumulators that stay below 2^24, becomes `DequantizeLinear → layer →
//!   QuantizeLinear`: onnxruntime's float32 requantization is then exact, and equals etch's. The
//!   others stay as written and run on the CPU executor as onnxruntime computes them.
//! - A `QLinearAdd` (`com.microsoft`) whose three scales are equal, or all powers of two, becomes
//!   `DequantizeLinear → Add → QuantizeLinear`, which computes it exactly.

use super::qdq::{add_init, add_node, f32_tensor, i8_tensor};
use super::{Args, Pass, PassContext, PassDef};
use crate::graph::{AttrValue, Attribute, Graph, Model, Node};
use crate::infer::GraphInfo;
use crate::op::Op;
use crate::qonnx::{int_range, Rounding};
use crate::tensor::{Data, ElemType, Tensor};
use petgraph::stable_graph::NodeIndex;

/// Registry entry.
pub const DEF: PassDef = PassDef {
    name: "import-quant",
    description: "Rewrite QONNX quantizers (Quant, BipolarQuant) and QCDQ's Clips on codes into etch's QDQ quantized-layer form wherever that computes exactly the same values; the rest stays in float. The pipeline runs it on every model that has one.",
    params: &[],
    build: |_: &Args| Ok(Box::new(ImportQuant)),
};

struct ImportQuant;

/// The most candidate-nodes × graph-size work the pass takes on: a network with a thousand
/// quantizers in a graph of four thousand nodes and weights, far past a trained model's.
const MAX_WORK: usize = 4_000_000;

/// Whether a model has anything for `import-quant` to rewrite: a QONNX quantizer, or a Clip on the
/// codes of a QuantizeLinear.
pub fn has_imports(model: &Model) -> bool {
    let g = &model.graph;
    // every model goes through this: look-ups through one index, linear in the graph's size
    let uses = g.uses();
    let from = |n: &Node, what: fn(&Op) -> bool| {
        n.inputs
            .first()
            .and_then(|x| uses.producer(x))
            .is_some_and(|p| what(&g.nodes[p].op))
    };
    let dequantized = |op: &Op| matches!(op, Op::DequantizeLinear { .. });
    g.nodes.node_weights().any(|n| match n.op {
        Op::Quant(_) | Op::BipolarQuant => true,
        _ if n.op.qoperator().is_some() || is_qlinear_add(n) => true,
        Op::Clip { .. } => from(n, |op| matches!(op, Op::QuantizeLinear { .. })),
        // weight codes only
        Op::Transpose { .. } => n
            .inputs
            .first()
            .and_then(|x| uses.producer(x))
            .is_some_and(|p| {
                dequantized(&g.nodes[p].op) && g.initializer(&g.nodes[p].inputs[0]).is_some()
            }),
        Op::MaxPool { .. } | Op::Flatten { .. } | Op::Reshape { .. } => {
            from(n, dequantized)
                && n.outputs.first().is_some_and(|o| {
                    uses.consumers(o)
                        .iter()
                        .any(|&r| !matches!(g.nodes[r].op, Op::QuantizeLinear { .. }))
                })
        }
        _ => false,
    })
}

impl Pass for ImportQuant {
    fn precondition(&self, _: &Model) -> Result<(), String> {
        Ok(())
    }

    fn run(&self, model: &mut Model, _: &PassContext) -> Result<Vec<String>, String> {
        // each rewrite edits the graph in time linear in its size: past a bound on their product
        // the model stays as written (it computes the same), rather than take quadratic time
        let g = &model.graph;
        let rewrites = g
            .nodes
            .node_weights()
            .filter(|n| {
                matches!(
                    n.op,
                    Op::Quant(_)
                        | Op::BipolarQuant
                        | Op::Clip { .. }
                        | Op::Transpose { .. }
                        | Op::MaxPool { .. }
                        | Op::Flatten { .. }
                        | Op::Reshape { .. }
                ) || n.op.qoperator().is_some()
                    || is_qlinear_add(n)
            })
            .count();
        let size = g.nodes.node_count() + g.initializers.len();
        if rewrites.saturating_mul(size) > MAX_WORK {
            return Ok(vec![format!(
                "nothing rewritten: {rewrites} candidate nodes in a graph of {size} nodes and weights is past the import's bound ({MAX_WORK} node visits); the model runs as written, in float"
            )]);
        }
        let info = crate::verify::verify(model).map_err(|e| e.to_string())?;
        let g = &mut model.graph;
        let (mut weights, mut acts, mut clips, mut qoperators) = (0, 0, 0, 0);
        let mut kept = Vec::new();
        for idx in g.node_order() {
            let n = &g.nodes[idx];
            let (name, op) = (n.display_name(), n.op_type.clone());
            let done = if n.op.qoperator().is_some() {
                qoperator_layer(g, &info, idx)
            } else if is_qlinear_add(n) {
                qlinear_add(g, &info, idx)
            } else {
                continue;
            };
            let runs = if op == "QLinearAdd" {
                "which no executor of etch's runs"
            } else {
                "which the CPU executor runs as onnxruntime computes it"
            };
            match done {
                Ok(()) => qoperators += 1,
                Err(why) => kept.push(format!("kept {op} `{name}`, {runs}: {why}")),
            }
        }
        for idx in g.node_order() {
            let n = &g.nodes[idx];
            if !matches!(n.op, Op::Quant(_) | Op::BipolarQuant) {
                continue;
            }
            let name = n.display_name();
            let on_weight = g
                .initializer(&n.inputs[0])
                .is_some_and(|i| i.tensor.floats().is_some());
            let done = if on_weight {
                weight(g, &info, idx).map(|()| weights += 1)
            } else if matches!(n.op, Op::BipolarQuant) {
                // after the layers' inputs and weights are codes (below)
                continue;
            } else {
                activation(g, &info, idx).map(|()| acts += 1)
            };
            if let Err(why) = done {
                kept.push(format!("kept `{name}` in float: {why}"));
            }
        }
        // the rewritten quantizers' scales are constants the later steps read
        let info = crate::verify::verify(model).map_err(|e| e.to_string())?;
        let g = &mut model.graph;
        let transposed = transposed_weights(g, &info)?;
        let mut signs = 0;
        for idx in g.node_order() {
            let Some(n) = g.nodes.node_weight(idx) else {
                continue;
            };
            if matches!(n.op, Op::BipolarQuant) {
                let name = n.display_name();
                match bipolar_activation(g, &info, idx) {
                    Ok(()) => signs += 1,
                    Err(why) => kept.push(format!("kept `{name}` in float: {why}")),
                }
            }
        }
        for idx in g.node_order() {
            if code_clip(g, &info, idx)? {
                clips += 1;
            }
        }
        let pooled = pools_on_codes(g, &info)? + ops_on_codes(g, &info)?;
        // the float weights the codes replaced
        super::dead_values::remove_dead(g);
        let counts = [
            (
                qoperators,
                "QOperator layers to QDQ (power-of-two requantization)",
            ),
            (weights, "weight quantizers to int8 codes"),
            (
                acts,
                "activation quantizers to QuantizeLinear/DequantizeLinear",
            ),
            (
                signs,
                "bipolar activations to thresholds on their layer's codes",
            ),
            (clips, "Clips on codes moved before their QuantizeLinear"),
            (
                transposed,
                "Transposes of weight codes folded into the codes",
            ),
            (
                pooled,
                "pools/reshapes of codes requantized (no value changes)",
            ),
        ];
        let done: Vec<String> = counts
            .iter()
            .filter(|(k, _)| *k > 0)
            .map(|(k, what)| format!("{k} {what}"))
            .collect();
        let mut out = vec![if done.is_empty() {
            "nothing to rewrite".to_string()
        } else {
            done.join(", ")
        }];
        out.extend(kept);
        Ok(out)
    }
}

/// onnxruntime's `QLinearAdd` (`com.microsoft`): a, its scale and zero point, b, its scale and
/// zero point, the output's scale and zero point.
fn is_qlinear_add(n: &Node) -> bool {
    n.domain == crate::qoperator::MS_DOMAIN && n.op_type == "QLinearAdd"
}

/// The one float value of a constant input.
fn scalar(info: &GraphInfo, n: &Node, k: usize, what: &str) -> Result<f32, String> {
    match floats(info, n, k).as_deref() {
        Some([v]) if v.is_finite() && *v > 0.0 => Ok(*v),
        _ => Err(format!("its {what} is not one positive constant")),
    }
}

/// The integer values of a constant input (zeros when it is omitted).
fn ints_or_zero(info: &GraphInfo, n: &Node, k: usize, what: &str) -> Result<Vec<i64>, String> {
    match n.inputs.get(k).filter(|i| !i.is_empty()) {
        None => Ok(vec![0]),
        Some(v) => info
            .consts
            .get(v)
            .and_then(Tensor::ints)
            .ok_or_else(|| format!("its {what} is not constant")),
    }
}

/// A QOperator layer whose requantization is exact → `DequantizeLinear(x) → Conv/MatMul/Gemm(·,
/// DequantizeLinear(w), DequantizeLinear(bias)) → QuantizeLinear(y)`, the layer etch's analysis
/// reads (`crate::quant`).
fn qoperator_layer(g: &mut Graph, info: &GraphInfo, idx: NodeIndex) -> Result<(), String> {
    let n = &g.nodes[idx];
    let (float, s) = n.op.qoperator().ok_or("not a QOperator layer")?;
    if let Op::Gemm { alpha, trans_a, .. } = float {
        if alpha != 1.0 || trans_a {
            return Err("only alpha = 1 and transA = 0 map onto etch's layers".into());
        }
    }
    let x_scale = scalar(info, n, s.x_scale, "input scale")?;
    let y_scale = scalar(info, n, s.y_scale, "output scale")?;
    let w_scale = floats(info, n, s.w_scale).ok_or("its weight scale is not constant")?;
    let w_init = g
        .initializer(&n.inputs[s.w])
        .ok_or("its weight is not stored")?;
    if w_init.tensor.elem != ElemType::I8 {
        return Err(format!(
            "its weight codes are {}, not int8",
            w_init.tensor.elem
        ));
    }
    let w = w_init.tensor.ints().ok_or("its weight has no values")?;
    let wdims = w_init.tensor.dims.clone();
    if w.contains(&-128) {
        return Err(
            "a weight code is −128 (etch's int8 weights are symmetric, −127 to 127)".into(),
        );
    }
    if ints_or_zero(info, n, s.w_zero_point, "weight zero point")?
        .iter()
        .any(|&z| z != 0)
    {
        return Err("its weight zero point is not 0".into());
    }
    // the output channels lie along axis 0 of a convolution's weight and of a transposed Gemm's,
    // along the last axis of a MatMul's and of a Gemm's without transB
    let axis = match float {
        Op::Conv { .. } | Op::Gemm { trans_b: true, .. } => 0,
        _ => wdims.len().saturating_sub(1),
    };
    let outs = *wdims.get(axis).ok_or("its weight is a scalar")? as usize;
    if outs == 0 || (w_scale.len() != 1 && w_scale.len() != outs) {
        return Err("its weight scale is neither one value nor one per output channel".into());
    }
    let ws = |o: usize| w_scale[if w_scale.len() == 1 { 0 } else { o }];
    if let Some(o) =
        (0..outs).find(|&o| !crate::qoperator::exact_power_of_two(x_scale, ws(o), y_scale))
    {
        return Err(format!(
            "the requantization multiplier of output channel {o} (x_scale · w_scale / y_scale = {}) is not an exact power of two, so onnxruntime's float32 rounding can differ from etch's fixed point",
            crate::qoperator::multiplier(x_scale, ws(o), y_scale)
        ));
    }
    // |acc| < 2^24, where float32 holds every accumulator exactly
    let x_zp = ints_or_zero(info, n, s.x_zero_point, "input zero point")?;
    let [x_zp] = x_zp[..] else {
        return Err("its input zero point is not one value".into());
    };
    let x_elem = info.ty(&n.inputs[s.x]).map(|t| t.elem);
    let x_reach = match x_elem {
        Some(ElemType::I8) => (x_zp + 128).max(127 - x_zp),
        _ => x_zp.max(255 - x_zp),
    };
    let bias = match s
        .bias
        .and_then(|b| n.inputs.get(b))
        .filter(|b| !b.is_empty())
    {
        Some(b) => Some((
            b.clone(),
            info.consts
                .get(b)
                .and_then(Tensor::ints)
                .ok_or("its bias is not constant")?,
        )),
        None => None,
    };
    let strides = row_major_strides(&wdims);
    let mut sum_abs = vec![0i64; outs];
    for (i, &c) in w.iter().enumerate() {
        sum_abs[(i / strides[axis]) % outs] += c.abs();
    }
    let most = (0..outs)
        .map(|o| {
            sum_abs[o] * x_reach
                + bias
                    .as_ref()
                    .map_or(0, |(_, b)| b.get(o).map_or(0, |v| v.abs()))
        })
        .max()
        .unwrap_or(0);
    if most >= 1 << 24 {
        return Err(format!(
            "an accumulator can reach {most}, past 2^24, where float32 rounds it"
        ));
    }
    // the rewrite
    let n = g.nodes[idx].clone();
    let op_type = match float {
        Op::Conv { .. } => "Conv",
        Op::Gemm { .. } => "Gemm",
        _ => "MatMul",
    };
    let axis_attr = |a: usize| {
        vec![Attribute {
            name: "axis".into(),
            value: AttrValue::Int(a as i64),
        }]
    };
    let input = |k: usize| n.inputs.get(k).cloned().unwrap_or_default();
    g.remove_node(idx);
    let xd = g.fresh_name(&format!("{}_dequantized", n.inputs[s.x]));
    add_node(
        g,
        "DequantizeLinear",
        vec![],
        vec![input(s.x), input(s.x_scale), input(s.x_zero_point)],
        vec![xd.clone()],
    )?;
    let wd = g.fresh_name(&format!("{}_dequantized", n.inputs[s.w]));
    let w_axis = if w_scale.len() == 1 {
        vec![]
    } else {
        axis_attr(axis)
    };
    add_node(
        g,
        "DequantizeLinear",
        w_axis,
        vec![input(s.w), input(s.w_scale)],
        vec![wd.clone()],
    )?;
    let mut layer_inputs = vec![xd, wd];
    if let Some((b, _)) = &bias {
        let scales: Vec<f32> = (0..w_scale.len()).map(|o| x_scale * ws(o)).collect();
        let dims = if scales.len() == 1 {
            vec![]
        } else {
            vec![scales.len() as i64]
        };
        let sc = add_init(g, &format!("{b}_scale"), f32_tensor(dims, scales));
        let bd = g.fresh_name(&format!("{b}_dequantized"));
        let b_axis = if w_scale.len() == 1 {
            vec![]
        } else {
            axis_attr(0)
        };
        add_node(
            g,
            "DequantizeLinear",
            b_axis,
            vec![b.clone(), sc],
            vec![bd.clone()],
        )?;
        layer_inputs.push(bd);
    }
    let y = g.fresh_name(&format!("{}_float", n.outputs[0]));
    add_node(g, op_type, n.attrs.clone(), layer_inputs, vec![y.clone()])?;
    quantize_into(g, &n, y, s.y_scale, s.y_zero_point)
}

/// `QuantizeLinear(float, scale, zero point)` with the scale and the (optional) zero point inputs
/// `scale` and `zero_point` of the QOperator node `n`, writing `n`'s output, which `n` no longer
/// does.
fn quantize_into(
    g: &mut Graph,
    n: &Node,
    float: String,
    scale: usize,
    zero_point: usize,
) -> Result<(), String> {
    let mut inputs = vec![float, n.inputs[scale].clone()];
    inputs.extend(n.inputs.get(zero_point).filter(|z| !z.is_empty()).cloned());
    add_node(
        g,
        "QuantizeLinear",
        vec![],
        inputs,
        vec![n.outputs[0].clone()],
    )?;
    g.rebuild_edges();
    Ok(())
}

/// A `QLinearAdd` that etch computes exactly → `Add(DequantizeLinear(a), DequantizeLinear(b)) →
/// QuantizeLinear`: with three equal scales it is etch's integer Add of codes, and with scales
/// that are all powers of two every float step is exact. Otherwise onnxruntime's result depends on
/// its vector kernels (fused multiply-adds on some CPUs), and the node stays.
fn qlinear_add(g: &mut Graph, info: &GraphInfo, idx: NodeIndex) -> Result<(), String> {
    let n = &g.nodes[idx];
    if n.inputs.len() != 8
        || n.inputs
            .iter()
            .enumerate()
            .any(|(k, i)| i.is_empty() && k != 2 && k != 5 && k != 7)
    {
        return Err("it does not have onnxruntime's 8 inputs (a, scale, zero point, b, scale, zero point, output scale, zero point)".into());
    }
    let scales = [
        scalar(info, n, 1, "scale of a")?,
        scalar(info, n, 4, "scale of b")?,
        scalar(info, n, 6, "output scale")?,
    ];
    let po2 = crate::qoperator::power_of_two;
    if !(scales.iter().all(|&v| v == scales[0]) || scales.iter().all(|&v| po2(v))) {
        return Err(format!(
            "its scales {}, {} and {} are neither equal nor powers of two",
            scales[0], scales[1], scales[2]
        ));
    }
    let n = n.clone();
    let input = |k: usize| n.inputs[k].clone();
    g.remove_node(idx);
    let mut sum_inputs = Vec::new();
    for k in [0, 3] {
        let d = g.fresh_name(&format!("{}_dequantized", n.inputs[k]));
        let mut ins = vec![input(k), input(k + 1)];
        ins.extend((!n.inputs[k + 2].is_empty()).then(|| input(k + 2)));
        add_node(g, "DequantizeLinear", vec![], ins, vec![d.clone()])?;
        sum_inputs.push(d);
    }
    let y = g.fresh_name(&format!("{}_float", n.outputs[0]));
    add_node(g, "Add", vec![], sum_inputs, vec![y.clone()])?;
    quantize_into(g, &n, y, 6, 7)
}

/// A MaxPool, Flatten or Reshape of the codes a per-tensor QuantizeLinear writes (a QOperator
/// model pools its uint8 codes directly) → `DequantizeLinear → op → QuantizeLinear` with the same
/// scale and zero point: the same codes, in the form etch's analysis reads (an op between equal
/// quantizers).
fn ops_on_codes(g: &mut Graph, info: &GraphInfo) -> Result<usize, String> {
    let mut count = 0;
    for idx in g.node_order() {
        let Some((n, q)) = value_mover(g, idx) else {
            continue;
        };
        let qn = &g.nodes[q];
        if !matches!(qn.op, Op::QuantizeLinear { .. })
            || crate::quant::tensor_quant(info, qn).is_none()
        {
            continue;
        }
        let quantizer: Vec<String> = qn.inputs[1..]
            .iter()
            .filter(|i| !i.is_empty())
            .cloned()
            .collect();
        let (x, out) = (n.inputs[0].clone(), n.outputs[0].clone());
        let d = g.fresh_name(&format!("{x}_dequantized"));
        let f = g.fresh_name(&format!("{out}_float"));
        let n = &mut g.nodes[idx];
        n.inputs[0] = d.clone();
        n.outputs[0] = f.clone();
        add_node(
            g,
            "DequantizeLinear",
            vec![],
            [vec![x], quantizer.clone()].concat(),
            vec![d],
        )?;
        add_node(
            g,
            "QuantizeLinear",
            vec![],
            [vec![f], quantizer].concat(),
            vec![out],
        )?;
        g.rebuild_edges();
        count += 1;
    }
    Ok(count)
}

/// The float values of a constant input.
fn floats(info: &GraphInfo, n: &Node, k: usize) -> Option<Vec<f32>> {
    info.consts.get(n.inputs.get(k)?)?.floats()
}

/// A QONNX quantizer's one bit width (BipolarQuant: 1).
fn bits_of(info: &GraphInfo, n: &Node) -> Result<f32, String> {
    if matches!(n.op, Op::BipolarQuant) {
        return Ok(1.0);
    }
    match floats(info, n, 3).as_deref() {
        Some([b]) => Ok(*b),
        _ => Err("its bit width is not one constant".into()),
    }
}

/// The positive, finite scales of input 1 and their dims.
fn scales_of(info: &GraphInfo, n: &Node) -> Result<(Vec<f32>, Vec<i64>), String> {
    let t = n
        .inputs
        .get(1)
        .and_then(|s| info.consts.get(s))
        .ok_or("its scale is not constant")?;
    let v = t.floats().ok_or("its scale is not float")?;
    if v.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        return Err("a scale is not a positive, finite number".into());
    }
    Ok((v, t.dims.clone()))
}

/// A Quant's zero point must be constant zeros.
fn zero_point_is_zero(info: &GraphInfo, n: &Node) -> Result<(), String> {
    if matches!(n.op, Op::BipolarQuant) {
        return Ok(());
    }
    match floats(info, n, 2) {
        Some(z) if z.iter().all(|&v| v == 0.0) => Ok(()),
        Some(_) => Err(
            "its zero point is not 0 (etch's weights and the rewrite's codes are symmetric)".into(),
        ),
        None => Err("its zero point is not constant".into()),
    }
}

/// Removes node `idx` and has a new `DequantizeLinear(codes, scale, zp)` write its output.
fn replace_with_dq(
    g: &mut Graph,
    idx: NodeIndex,
    codes: String,
    scale: String,
    zero_point: Option<String>,
    axis: Option<i64>,
) -> Result<(), String> {
    let out = g.nodes[idx].outputs[0].clone();
    g.remove_node(idx);
    let attrs = axis
        .map(|a| {
            vec![Attribute {
                name: "axis".into(),
                value: AttrValue::Int(a),
            }]
        })
        .unwrap_or_default();
    let mut inputs = vec![codes, scale];
    inputs.extend(zero_point);
    add_node(g, "DequantizeLinear", attrs, inputs, vec![out])?;
    g.rebuild_edges();
    Ok(())
}

/// A weight quantizer → int8 codes behind a DequantizeLinear (per tensor, or per axis along the
/// one axis its scale varies on).
fn weight(g: &mut Graph, info: &GraphInfo, idx: NodeIndex) -> Result<(), String> {
    let n = &g.nodes[idx];
    let bits = bits_of(info, n)?;
    if !(1.0..=8.0).contains(&bits) {
        return Err(format!("its {bits}-bit codes do not fit int8"));
    }
    zero_point_is_zero(info, n)?;
    let (scales, sdims) = scales_of(info, n)?;
    let init = g
        .initializer(&n.inputs[0])
        .ok_or("its weight is not stored")?;
    let w = init.tensor.floats().ok_or("its weight is not float")?;
    let wdims = init.tensor.dims.clone();
    // the scale's axes aligned to the weight's from the right (numpy broadcasting)
    if sdims.len() > wdims.len() {
        return Err("its scale has more axes than the weight".into());
    }
    let off = wdims.len() - sdims.len();
    let varying: Vec<usize> = (0..sdims.len()).filter(|&k| sdims[k] != 1).collect();
    let axis = match varying.as_slice() {
        [] => None,
        [k] if sdims[*k] == wdims[off + k] => Some(off + k),
        _ => return Err("its scale varies along more than one axis".into()),
    };
    let inner: usize = axis.map_or(1, |a| wdims[a + 1..].iter().product::<i64>() as usize);
    let scale_at = |i: usize| match axis {
        None => scales[0],
        Some(a) => scales[(i / inner) % wdims[a] as usize],
    };
    if w.iter().any(|v| !v.is_finite()) {
        return Err("a weight is not a finite number".into());
    }
    let codes: Vec<i8> = match n.op {
        Op::Quant(q) => {
            let range = int_range(q.signed, q.narrow, bits);
            if range.0 < -128.0 || range.1 > 127.0 {
                return Err(format!(
                    "its codes [{}, {}] do not fit int8",
                    range.0, range.1
                ));
            }
            w.iter()
                .enumerate()
                .map(|(i, &v)| q.code(v, scale_at(i), 0.0, bits, range) as i8)
                .collect()
        }
        _ => w.iter().map(|&v| if v >= 0.0 { 1 } else { -1 }).collect(),
    };
    let base = n.inputs[0].clone();
    let c = add_init(g, &format!("{base}_codes"), i8_tensor(wdims.clone(), codes));
    let sdims_out = if axis.is_some() {
        vec![scales.len() as i64]
    } else {
        vec![]
    };
    let s = add_init(g, &format!("{base}_scale"), f32_tensor(sdims_out, scales));
    replace_with_dq(g, idx, c, s, None, axis.map(|a| a as i64))
}

/// An activation `Quant` → `[Clip →] QuantizeLinear → DequantizeLinear`.
fn activation(g: &mut Graph, info: &GraphInfo, idx: NodeIndex) -> Result<(), String> {
    let n = &g.nodes[idx];
    let Op::Quant(q) = n.op else {
        return Err("a BipolarQuant of an activation has no QDQ form (etch's binary activations are thresholds on a layer's input)".into());
    };
    let bits = bits_of(info, n)?;
    if q.rounding != Rounding::HalfEven {
        return Err(format!(
            "it rounds {}; QuantizeLinear rounds half to even",
            q.rounding.name()
        ));
    }
    // 2 to 8 bits, or 1 unsigned bit (a signed one is bipolar)
    let fits = (2.0..=8.0).contains(&bits) || (bits == 1.0 && !q.signed);
    if !fits {
        return Err(format!("its {bits}-bit codes do not fit int8 or uint8"));
    }
    zero_point_is_zero(info, n)?;
    let (scales, _) = scales_of(info, n)?;
    let [s] = scales[..] else {
        return Err("its scale is per channel; etch's activations have one scale".into());
    };
    let (lo, hi) = int_range(q.signed, q.narrow, bits);
    let (elem, full) = if q.signed {
        (ElemType::I8, (-128.0, 127.0))
    } else {
        (ElemType::U8, (0.0, 255.0))
    };
    let (x, out) = (n.inputs[0].clone(), n.outputs[0].clone());
    let clip = ((lo, hi) != full).then_some((lo * s, hi * s));
    let (codes, scale, zp) = quantize(g, &x, &out, clip, s, elem)?;
    replace_with_dq(g, idx, codes, scale, Some(zp), None)
}

/// A zero zero point of int8 or uint8 codes.
fn zero_point(elem: ElemType) -> Tensor {
    Tensor {
        elem,
        dims: vec![],
        data: Some(match elem {
            ElemType::I8 => Data::I8(vec![0]),
            _ => Data::U8(vec![0]),
        }),
        external: None,
    }
}

/// `[Clip(x, min, max) →] QuantizeLinear(x, scale, 0)` into new values named after `out`: returns
/// the codes and the names of the scale and zero point, for the DequantizeLinear that reads them.
fn quantize(
    g: &mut Graph,
    x: &str,
    out: &str,
    clip: Option<(f32, f32)>,
    scale: f32,
    elem: ElemType,
) -> Result<(String, String, String), String> {
    let s = add_init(g, &format!("{out}_scale"), f32_tensor(vec![], vec![scale]));
    let zp = add_init(g, &format!("{out}_zero_point"), zero_point(elem));
    let float_in = match clip {
        Some((lo, hi)) => {
            let min = add_init(g, &format!("{out}_min"), f32_tensor(vec![], vec![lo]));
            let max = add_init(g, &format!("{out}_max"), f32_tensor(vec![], vec![hi]));
            let c = g.fresh_name(&format!("{out}_clipped"));
            add_node(
                g,
                "Clip",
                vec![],
                vec![x.to_string(), min, max],
                vec![c.clone()],
            )?;
            c
        }
        None => x.to_string(),
    };
    let codes = g.fresh_name(&format!("{out}_codes"));
    add_node(
        g,
        "QuantizeLinear",
        vec![],
        vec![float_in, s.clone(), zp.clone()],
        vec![codes.clone()],
    )?;
    Ok((codes, s, zp))
}

/// A `BipolarQuant` (scale 1) of a layer's output → the layer writes codes in {−1, 0} (its
/// output on the accumulator's grid `g = s_x·s_w`, clipped to `[−g, 0]` and quantized at `g`), and
/// `Where(codes' value ≥ 0, 1, −1)` is the sign: etch's binary activation, a threshold the next
/// layer applies to the codes as it reads them. The layer's input and weights must be codes with
/// one scale each, and its bias (a Gemm's) a whole number of grid steps, which becomes an int32
/// bias: then every output is on the grid, and `y ≥ 0` exactly when its code is 0.
fn bipolar_activation(g: &mut Graph, info: &GraphInfo, idx: NodeIndex) -> Result<(), String> {
    let n = &g.nodes[idx];
    if floats(info, n, 1).as_deref() != Some(&[1.0]) {
        return Err("its scale is not 1".into());
    }
    let (x, out) = (n.inputs[0].clone(), n.outputs[0].clone());
    let not_layer = "it does not follow a Conv, Gemm or MatMul on integer codes alone";
    let li = g.producer(&x).ok_or(not_layer)?;
    let layer = &g.nodes[li];
    match layer.op {
        Op::Conv { .. } | Op::MatMul => {}
        Op::Gemm {
            alpha,
            beta,
            trans_a: false,
            ..
        } if alpha == 1.0 && beta == 1.0 => {}
        _ => return Err(not_layer.into()),
    }
    if g.consumers(&x).len() != 1 || g.is_output(&x) {
        return Err("its input is read elsewhere too".into());
    }
    // one scale each for the layer's input and weight codes; a binary input (±1, written by the
    // rewrite of an earlier BipolarQuant) counts as scale 1
    let scale_of = |v: &str| -> Option<f32> {
        let p = &g.nodes[g.producer(v)?];
        let stored = |k: usize| g.initializer(p.inputs.get(k)?)?.tensor.floats();
        if matches!(p.op, Op::Where)
            && stored(1).as_deref() == Some(&[1.0])
            && stored(2).as_deref() == Some(&[-1.0])
        {
            return Some(1.0);
        }
        let q = crate::quant::tensor_quant(info, p)?;
        matches!(p.op, Op::DequantizeLinear { .. }).then_some(q.scale)
    };
    let (Some(sx), Some(sw)) = (scale_of(&layer.inputs[0]), scale_of(&layer.inputs[1])) else {
        return Err("its layer's input or weights are not codes with one scale".into());
    };
    let grid = sx * sw;
    // a float bias on the grid → int32 codes at the grid
    let bias = match layer.inputs.get(2).filter(|b| !b.is_empty()) {
        None => None,
        Some(b) => {
            let v = g
                .initializer(b)
                .and_then(|i| i.tensor.floats())
                .ok_or("its layer's bias is not a stored float")?;
            let steps: Vec<f64> = v.iter().map(|&b| f64::from(b) / f64::from(grid)).collect();
            if steps
                .iter()
                .any(|s| s.fract() != 0.0 || s.abs() >= f64::from(1u32 << 30))
            {
                return Err(
                    "its layer's bias is not a whole number of the accumulator's steps".into(),
                );
            }
            Some((
                b.clone(),
                steps.iter().map(|&s| s as i32).collect::<Vec<i32>>(),
            ))
        }
    };
    if let Some((b, steps)) = bias {
        let dims = vec![steps.len() as i64];
        let codes = add_init(
            g,
            &format!("{b}_codes"),
            super::qdq::i32_tensor(dims, steps),
        );
        let s = add_init(g, &format!("{b}_scale"), f32_tensor(vec![], vec![grid]));
        let dq = g.fresh_name(&format!("{b}_dequantized"));
        add_node(
            g,
            "DequantizeLinear",
            vec![],
            vec![codes, s],
            vec![dq.clone()],
        )?;
        g.nodes[li].inputs[2] = dq;
    }
    g.remove_node(idx);
    let (q, scale, zp) = quantize(g, &x, &out, Some((-grid, 0.0)), grid, ElemType::I8)?;
    let constant = |g: &mut Graph, what: &str, v: f32| {
        add_init(g, &format!("{out}_{what}"), f32_tensor(vec![], vec![v]))
    };
    let (zero, plus, minus) = (
        constant(g, "threshold", 0.0),
        constant(g, "plus", 1.0),
        constant(g, "minus", -1.0),
    );
    let d = g.fresh_name(&format!("{out}_dequantized"));
    let ge = g.fresh_name(&format!("{out}_nonnegative"));
    add_node(
        g,
        "DequantizeLinear",
        vec![],
        vec![q, scale, zp],
        vec![d.clone()],
    )?;
    add_node(g, "GreaterOrEqual", vec![], vec![d, zero], vec![ge.clone()])?;
    add_node(g, "Where", vec![], vec![ge, plus, minus], vec![out])?;
    g.rebuild_edges();
    Ok(())
}

/// QCDQ: `QuantizeLinear(x) → Clip(lo, hi) → …` becomes `Clip(x, (lo−zp)·s, (hi−zp)·s) →
/// QuantizeLinear → …` when the QuantizeLinear is per tensor and only the Clip reads its codes.
fn code_clip(g: &mut Graph, info: &GraphInfo, idx: NodeIndex) -> Result<bool, String> {
    let Some(n) = g.nodes.node_weight(idx) else {
        return Ok(false);
    };
    if !matches!(n.op, Op::Clip { .. }) {
        return Ok(false);
    }
    let Some(qi) = n.inputs.first().and_then(|x| g.producer(x)) else {
        return Ok(false);
    };
    let qn = &g.nodes[qi];
    let Some(tq) = crate::quant::tensor_quant(info, qn) else {
        return Ok(false);
    };
    if !matches!(qn.op, Op::QuantizeLinear { .. })
        || g.consumers(&qn.outputs[0]).len() != 1
        || g.is_output(&qn.outputs[0])
    {
        return Ok(false);
    }
    let bound = |k: usize, default: i32| -> Option<i32> {
        match n.inputs.get(k).filter(|s| !s.is_empty()) {
            None => Some(default),
            Some(b) => match info.consts.get(b)?.ints()?.as_slice() {
                [v] => Some(*v as i32),
                _ => None,
            },
        }
    };
    let (Some(lo), Some(hi)) = (bound(1, tq.qmin), bound(2, tq.qmax)) else {
        return Ok(false);
    };
    if lo > hi {
        return Ok(false);
    }
    let (lo, hi) = (lo.max(tq.qmin), hi.min(tq.qmax));
    let (x, codes, clipped) = (
        qn.inputs[0].clone(),
        qn.outputs[0].clone(),
        n.outputs[0].clone(),
    );
    let at = |c: i32| (c - tq.zero_point) as f32 * tq.scale;
    let min = add_init(g, &format!("{x}_min"), f32_tensor(vec![], vec![at(lo)]));
    let max = add_init(g, &format!("{x}_max"), f32_tensor(vec![], vec![at(hi)]));
    let c = g.fresh_name(&format!("{x}_clipped"));
    g.remove_node(idx);
    g.nodes[qi].inputs[0] = c.clone();
    add_node(g, "Clip", vec![], vec![x, min, max], vec![c])?;
    if g.is_output(&clipped) {
        // the codes keep the graph output's name
        g.nodes[qi].outputs[0] = clipped;
    } else {
        g.replace_uses(&clipped, &codes);
    }
    g.rebuild_edges();
    Ok(true)
}

/// Node `idx` if it is a MaxPool, Flatten or Reshape with one output (an op that moves values
/// without arithmetic), and the producer of its input.
fn value_mover(g: &Graph, idx: NodeIndex) -> Option<(&Node, NodeIndex)> {
    let n = g.nodes.node_weight(idx)?;
    let moves = matches!(
        n.op,
        Op::MaxPool { .. } | Op::Flatten { .. } | Op::Reshape { .. }
    );
    if !moves || n.outputs.len() != 1 {
        return None;
    }
    Some((n, g.producer(n.inputs.first()?)?))
}

/// MaxPool, Flatten and Reshape of a per-tensor DequantizeLinear's output that no QuantizeLinear
/// reads get `QuantizeLinear → DequantizeLinear` with the same scale and zero point. Returns how
/// many.
fn pools_on_codes(g: &mut Graph, info: &GraphInfo) -> Result<usize, String> {
    let mut count = 0;
    for idx in g.node_order() {
        let Some((n, dq)) = value_mover(g, idx) else {
            continue;
        };
        let dqn = &g.nodes[dq];
        let Some(tq) = crate::quant::tensor_quant(info, dqn) else {
            continue;
        };
        let out = n.outputs[0].clone();
        let readers = g.consumers(&out);
        if !matches!(dqn.op, Op::DequantizeLinear { .. })
            || readers.is_empty()
            || readers
                .iter()
                .all(|&r| matches!(g.nodes[r].op, Op::QuantizeLinear { .. }))
        {
            continue;
        }
        let scale = dqn.inputs[1].clone();
        let zp = match dqn.inputs.get(2).filter(|z| !z.is_empty()) {
            Some(z) => z.clone(),
            None => add_init(g, &format!("{out}_zero_point"), zero_point(tq.elem)),
        };
        super::qdq::insert_qdq(g, &out, &scale, &zp, None)?;
        count += 1;
    }
    Ok(count)
}

/// `Transpose(DequantizeLinear(int8 codes))` → `DequantizeLinear(transposed codes)`, the per-axis
/// axis moved with its dim. Returns how many.
fn transposed_weights(g: &mut Graph, info: &GraphInfo) -> Result<usize, String> {
    let mut count = 0;
    for idx in g.node_order() {
        let n = &g.nodes[idx];
        let Op::Transpose { perm } = &n.op else {
            continue;
        };
        let Some(dq) = n.inputs.first().and_then(|x| g.producer(x)) else {
            continue;
        };
        let dqn = &g.nodes[dq];
        let Op::DequantizeLinear { axis } = dqn.op else {
            continue;
        };
        let Some(init) = g.initializer(&dqn.inputs[0]) else {
            continue;
        };
        let (Some(Data::I8(codes)), dims) = (&init.tensor.data, init.tensor.dims.clone()) else {
            continue;
        };
        let rank = dims.len();
        let perm: Vec<usize> = match perm {
            Some(p) => p.iter().map(|&a| a as usize).collect(),
            None => (0..rank).rev().collect(),
        };
        let mut sorted = perm.clone();
        sorted.sort_unstable();
        if sorted != (0..rank).collect::<Vec<_>>() || floats(info, dqn, 1).is_none() {
            continue;
        }
        let new_dims: Vec<i64> = perm.iter().map(|&a| dims[a]).collect();
        let strides = row_major_strides(&dims);
        let total = codes.len();
        let out_strides = row_major_strides(&new_dims);
        let moved: Vec<i8> = (0..total)
            .map(|flat| {
                // the output index, axis by axis, read from the input's permuted axes
                let src: usize = (0..rank)
                    .map(|k| (flat / out_strides[k]) % new_dims[k] as usize * strides[perm[k]])
                    .sum();
                codes[src]
            })
            .collect();
        let old_axis = if axis < 0 { axis + rank as i64 } else { axis } as usize;
        let new_axis = perm.iter().position(|&a| a == old_axis).unwrap_or(0) as i64;
        let (base, scale) = (dqn.inputs[0].clone(), dqn.inputs[1].clone());
        let zp = dqn.inputs.get(2).filter(|z| !z.is_empty()).cloned();
        let c = add_init(g, &format!("{base}_transposed"), i8_tensor(new_dims, moved));
        replace_with_dq(g, idx, c, scale, zp, Some(new_axis))?;
        count += 1;
    }
    Ok(count)
}

/// Row-major strides of `dims`, in elements.
fn row_major_strides(dims: &[i64]) -> Vec<usize> {
    let mut strides = vec![1usize; dims.len()];
    for k in (0..dims.len().saturating_sub(1)).rev() {
        strides[k] = strides[k + 1] * dims[k + 1].max(0) as usize;
    }
    strides
}

#[cfg(test)]
mod tests {
    use crate::passes::{run_spec, RunOptions};

    /// Weight quantizers whose codes would not be exact as int8 stay as they are, and say why.
    #[test]
    fn weights_that_do_not_fit_stay_with_a_reason() {
        let text = r#"<
   ir_version: 8,
   opset_import: ["" : 13, "qonnx.custom_op.general" : 1]
>
g (float[1,2] x) => (float[1,2] y, float[1,2] u)
   <float[2,2] w = {0.5, 1, 2, 3}, float[2,2] v = {0.5, NaN, 2, 3}, float s = {0.25}, float z = {0}, float b8 = {8}, float b4 = {4}>
{
   wq = qonnx.custom_op.general.Quant <signed: int = 0, narrow: int = 0> (w, s, z, b8)
   vq = qonnx.custom_op.general.Quant <signed: int = 1, narrow: int = 0> (v, s, z, b4)
   y = MatMul (x, wq)
   u = MatMul (x, vq)
}
"#;
        let mut m = crate::parse_model_str(text).unwrap();
        let reports = run_spec(&mut m, "import-quant", &RunOptions::default()).unwrap();
        let said = reports[0].changes.join("\n");
        assert!(
            said.contains("kept `wq` in float: its codes [0, 255] do not fit int8"),
            "{said}"
        );
        assert!(
            said.contains("kept `vq` in float: a weight is not a finite number"),
            "{said}"
        );
        assert!(said.starts_with("nothing to rewrite"), "{said}");
    }
}
