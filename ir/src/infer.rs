//! Shape inference with constant folding. Exporters compute reshape targets at run time with
//! Shape → Gather → Slice → Concat chains; folding those integer chains gives every such graph
//! static shapes, which the simulator and code generators need.

use std::collections::HashMap;

use crate::graph::{Graph, Model, Node};
use crate::op::{Op, Window};
use crate::tensor::{Data, Dim, ElemType, Tensor, TensorType, Type};

/// Inferred types and folded constants of every value of the main graph, by name.
#[derive(Debug, Clone, Default)]
pub struct GraphInfo {
    pub types: HashMap<String, TensorType>,
    /// Values known before run time: initializers with data, Constants, and folded integer chains.
    pub consts: HashMap<String, Tensor>,
}

impl GraphInfo {
    /// The inferred type of a value.
    pub fn ty(&self, name: &str) -> Option<&TensorType> {
        self.types.get(name)
    }
}

/// Why a node's output type could not be worked out; the verifier adds which node and where.
pub type InferError = String;

type Res<T> = Result<T, InferError>;

fn dims_str(d: &[Dim]) -> String {
    format!(
        "[{}]",
        d.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// Normalizes a possibly negative axis against a rank.
fn axis(a: i64, rank: usize, what: &str) -> Res<usize> {
    let r = rank as i64;
    let v = if a < 0 { a + r } else { a };
    if v < 0 || v >= r {
        return Err(format!(
            "{what} {a} is out of range for a rank-{rank} input"
        ));
    }
    Ok(v as usize)
}

/// The most elements a folded constant of shape logic may have.
const FOLD_LIMIT: usize = 1 << 16;

/// Multidirectional (numpy) broadcasting of two shapes.
pub fn broadcast(a: &[Dim], b: &[Dim]) -> Res<Vec<Dim>> {
    let n = a.len().max(b.len());
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        let da = if k + a.len() >= n {
            &a[k + a.len() - n]
        } else {
            &Dim::Known(1)
        };
        let db = if k + b.len() >= n {
            &b[k + b.len() - n]
        } else {
            &Dim::Known(1)
        };
        out.push(da.broadcast(db).ok_or_else(|| {
            format!(
                "shapes {} and {} cannot be broadcast together (dimension {da} vs {db})",
                dims_str(a),
                dims_str(b)
            )
        })?);
    }
    Ok(out)
}

/// Applies a window op (Conv, pooling) to the spatial dims of `x`.
fn window_dims(x: &[Dim], kernel: &[i64], w: &Window) -> Res<Vec<Dim>> {
    let sp = x.len() - 2;
    // unknown spatial extents get a placeholder and come out unknown
    let spatial: Vec<i64> = x[2..]
        .iter()
        .map(|d| d.known().unwrap_or(i64::MAX / 4))
        .collect();
    let axes = w.resolve(&spatial, kernel)?;
    let mut out = Vec::with_capacity(x.len());
    out.push(x[0].clone());
    out.push(x[1].clone());
    for k in 0..sp {
        out.push(if x[2 + k].known().is_some() {
            Dim::Known(axes[k].out)
        } else {
            Dim::Unknown
        });
    }
    Ok(out)
}

/// A convolution's kernel extents: `kernel_shape`, which must agree with the weight's spatial dims
/// where both are known, or those dims.
fn kernel_of(window: &Window, ws: &[Dim]) -> Res<Vec<i64>> {
    let wk: Option<Vec<i64>> = ws[2..].iter().map(Dim::known).collect();
    match (&window.kernel_shape, wk) {
        (Some(k), Some(wk)) if *k != wk => Err(format!(
            "kernel_shape {k:?} disagrees with the weight's spatial dims {wk:?}"
        )),
        (Some(k), _) => Ok(k.clone()),
        (None, Some(wk)) => Ok(wk),
        (None, None) => {
            Err("the weight's spatial dims are unknown and there is no kernel_shape".into())
        }
    }
}

/// Inference state for one graph.
struct Infer<'g> {
    graph: &'g Graph,
    opset: i64,
    info: GraphInfo,
}

/// Infers the type of every value in the main graph. Ops etch does not know leave their outputs
/// untyped unless the model declares them.
pub fn infer(model: &Model) -> Result<GraphInfo, (petgraph::stable_graph::NodeIndex, InferError)> {
    let g = &model.graph;
    let mut cx = Infer {
        graph: g,
        opset: model.default_opset().unwrap_or(17),
        info: GraphInfo::default(),
    };
    for vi in &g.inputs {
        if let Some(Type::Tensor(t)) = &vi.ty {
            cx.info.types.insert(vi.name.clone(), t.clone());
        }
    }
    for init in &g.initializers {
        let t = &init.tensor;
        cx.info
            .types
            .insert(init.name.clone(), TensorType::known(t.elem, &t.dims));
        if t.data.is_some() {
            cx.info.consts.insert(init.name.clone(), t.clone());
        }
    }
    let declared: HashMap<&str, &TensorType> = g
        .value_info
        .iter()
        .chain(&g.outputs)
        .filter_map(|vi| Some((vi.name.as_str(), vi.ty.as_ref()?.as_tensor()?)))
        .collect();
    for idx in g.node_order() {
        let node = &g.nodes[idx];
        // an input computed by an op etch does not know has no type: leave this node's outputs to
        // what the model declares rather than report an inconsistency that is not there
        let inputs_typed = node
            .inputs
            .iter()
            .all(|i| i.is_empty() || cx.info.types.contains_key(i));
        let outs = if inputs_typed {
            cx.node(node).map_err(|e| (idx, e))?
        } else {
            Vec::new()
        };
        for (k, name) in node.outputs.iter().enumerate() {
            if name.is_empty() {
                continue;
            }
            let inferred = outs.get(k).cloned().flatten();
            let ty = match (inferred, declared.get(name.as_str())) {
                (Some(t), Some(d)) => {
                    check_declared(&t, d).map_err(|e| (idx, format!("output `{name}` {e}")))?;
                    t
                }
                (Some(t), None) => t,
                (None, Some(d)) => (*d).clone(),
                (None, None) => continue,
            };
            cx.info.types.insert(name.clone(), ty);
        }
    }
    let _ = cx.graph;
    Ok(cx.info)
}

/// The first node, in graph order, with an output whose shape is not fully known, and why: an op
/// etch does not know (and no declared type), an input of unknown type, or a dim inference could
/// not work out. Figures computed past it (MACs, cycles, sizes) would be silently short.
pub fn first_unknown(
    model: &Model,
    info: &GraphInfo,
) -> Option<(petgraph::stable_graph::NodeIndex, String)> {
    let g = &model.graph;
    for idx in g.node_order() {
        let node = &g.nodes[idx];
        for out in node.outputs.iter().filter(|o| !o.is_empty()) {
            let why = match info.ty(out).map(|t| t.shape.as_deref()) {
                // a known rank is enough: a dim left unknown is how a symbolic batch (`N`)
                // propagates through Flatten and Reshape, which the executors size at run time
                Some(Some(_)) => continue,
                _ if matches!(node.op, Op::Other) => format!(
                    "etch does not know the op `{}`, and the model declares no shape for its output `{out}` (value_info)",
                    node.op_type
                ),
                _ => match node.inputs.iter().find(|i| !i.is_empty() && info.ty(i).is_none()) {
                    Some(i) => format!("the type of its input `{i}` is unknown, so its output `{out}` is too"),
                    None => format!("the shape of output `{out}` could not be inferred"),
                },
            };
            return Some((idx, why));
        }
    }
    None
}

/// A computed type must agree with what the model declares wherever both are known.
fn check_declared(got: &TensorType, declared: &TensorType) -> Res<()> {
    let mismatch = || format!("is computed as {got} but the model declares it {declared}");
    if got.elem != declared.elem {
        return Err(mismatch());
    }
    if let (Some(a), Some(b)) = (&got.shape, &declared.shape) {
        if a.len() != b.len() {
            return Err(mismatch());
        }
        for (x, y) in a.iter().zip(b) {
            if let (Dim::Known(x), Dim::Known(y)) = (x, y) {
                if x != y {
                    return Err(mismatch());
                }
            }
        }
    }
    Ok(())
}

impl Infer<'_> {
    /// The type of input `k`, which must be present and typed.
    fn input(&self, node: &Node, k: usize) -> Res<TensorType> {
        let name = node
            .inputs
            .get(k)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| format!("{} needs input {} but it is missing", node.op_type, k + 1))?;
        self.info
            .types
            .get(name)
            .cloned()
            .ok_or_else(|| format!("the type of input `{name}` is unknown"))
    }

    fn opt_input<'n>(&self, node: &'n Node, k: usize) -> Option<&'n str> {
        node.inputs
            .get(k)
            .map(String::as_str)
            .filter(|n| !n.is_empty())
    }

    fn shape_of(&self, node: &Node, k: usize) -> Res<Vec<Dim>> {
        let t = self.input(node, k)?;
        t.shape
            .ok_or_else(|| format!("input `{}` has an unknown rank", node.inputs[k]))
    }

    /// The integer values of input `k`, which must be known before run time.
    fn const_ints(&self, node: &Node, k: usize, what: &str) -> Res<Option<Vec<i64>>> {
        let Some(name) = self.opt_input(node, k) else {
            return Ok(None);
        };
        match self.info.consts.get(name).and_then(Tensor::ints) {
            Some(v) => Ok(Some(v)),
            None => Err(format!("the {what} (`{name}`) is computed at run time and could not be folded to a constant")),
        }
    }

    fn same_elem(&self, node: &Node, a: &TensorType, b: &TensorType) -> Res<()> {
        // a QOperator layer (seen through its float op, `qoperator`) multiplies uint8 by int8 codes
        let codes = |e: ElemType| matches!(e, ElemType::U8 | ElemType::I8);
        let qoperator = matches!(
            node.op_type.as_str(),
            "QLinearConv" | "QLinearMatMul" | "QGemm"
        );
        if a.elem != b.elem && !(qoperator && codes(a.elem) && codes(b.elem)) {
            return Err(format!(
                "{} takes inputs of one element type, but they are {} and {}",
                node.op_type, a.elem, b.elem
            ));
        }
        Ok(())
    }

    /// A QOperator layer (`crate::qoperator`): 8-bit integer operands and zero points of their
    /// type, float scales, an int32 bias; the shape is its float op's on the codes, the type the
    /// output zero point's (uint8 when it is omitted).
    fn qoperator(&mut self, node: &Node) -> Res<Vec<Option<TensorType>>> {
        let Some((float, s)) = node.op.qoperator() else {
            return Ok(vec![None; node.outputs.len()]);
        };
        let most = s.y_zero_point.max(s.bias.unwrap_or(0)) + 1;
        let present = |k: usize| node.inputs.get(k).is_some_and(|i| !i.is_empty());
        if node.inputs.len() > most {
            return Err(format!(
                "it has {} inputs; {} takes at most {most}",
                node.inputs.len(),
                node.op_type
            ));
        }
        let required = [
            s.x,
            s.x_scale,
            s.x_zero_point,
            s.w,
            s.w_scale,
            s.w_zero_point,
            s.y_scale,
        ];
        if let Some(k) = required.into_iter().find(|&k| !present(k)) {
            let what = if k == s.y_scale && node.op_type == "QGemm" {
                " (a QGemm without y_scale gives float, which etch does not support)"
            } else {
                ""
            };
            return Err(format!(
                "{} needs input {} but it is missing{what}",
                node.op_type,
                k + 1
            ));
        }
        for (data, scale, zp, what) in [
            (Some(s.x), s.x_scale, s.x_zero_point, "x"),
            (Some(s.w), s.w_scale, s.w_zero_point, "the weight"),
            (None, s.y_scale, s.y_zero_point, "y"),
        ] {
            let sc = self.input(node, scale)?;
            if sc.elem != ElemType::F32 {
                return Err(format!(
                    "the scale of {what} must be float, not {}",
                    sc.elem
                ));
            }
            let zt = if present(zp) {
                Some(self.input(node, zp)?.elem)
            } else {
                None
            };
            let elem = match data {
                Some(d) => Some(self.input(node, d)?.elem),
                None => zt,
            };
            if let Some(e) = elem.filter(|e| !matches!(e, ElemType::U8 | ElemType::I8)) {
                return Err(format!("{what} must be uint8 or int8 codes, not {e}"));
            }
            if let (Some(e), Some(z)) = (elem, zt) {
                if e != z {
                    return Err(format!("the zero point of {what} is {z} but {what} is {e}"));
                }
            }
        }
        if let Some(b) = s.bias.filter(|&b| present(b)) {
            let bt = self.input(node, b)?;
            if bt.elem != ElemType::I32 {
                return Err(format!("the bias must be int32, not {}", bt.elem));
            }
        }
        let mut view = node.clone();
        view.op = float;
        view.inputs = [Some(s.x), Some(s.w), s.bias]
            .into_iter()
            .flatten()
            .map(|k| node.inputs.get(k).cloned().unwrap_or_default())
            .collect();
        let shape = self
            .node(&view)?
            .into_iter()
            .next()
            .flatten()
            .and_then(|t| t.shape);
        let elem = if present(s.y_zero_point) {
            self.input(node, s.y_zero_point)?.elem
        } else {
            ElemType::U8
        };
        Ok(vec![Some(TensorType { elem, shape })])
    }

    /// A convolution's (or transposed convolution's) input type and shape and weight shape: one
    /// element type, rank ≥ 3 and the same for both, a positive group.
    fn conv_operands(&self, node: &Node, group: i64) -> Res<(TensorType, Vec<Dim>, Vec<Dim>)> {
        let x = self.input(node, 0)?;
        let w = self.input(node, 1)?;
        self.same_elem(node, &x, &w)?;
        let xs = self.shape_of(node, 0)?;
        let ws = self.shape_of(node, 1)?;
        if xs.len() < 3 || ws.len() != xs.len() {
            return Err(format!(
                "{} needs an input of rank ≥ 3 and a weight of the same rank; got {} and {}",
                node.op_type,
                dims_str(&xs),
                dims_str(&ws)
            ));
        }
        if group <= 0 {
            return Err(format!("group must be positive, not {group}"));
        }
        Ok((x, xs, ws))
    }

    /// Output types of one node (None where unknown), folding constants on the way.
    fn node(&mut self, node: &Node) -> Res<Vec<Option<TensorType>>> {
        let t = |elem: ElemType, shape: Vec<Dim>| {
            Some(TensorType {
                elem,
                shape: Some(shape),
            })
        };
        Ok(match &node.op {
            Op::Conv { window, group } => {
                let (x, xs, ws) = self.conv_operands(node, *group)?;
                if let (Dim::Known(c), Dim::Known(wc)) = (&xs[1], &ws[1]) {
                    if c != &(wc * group) {
                        return Err(format!("the input has {c} channels but the weight {} with group {group} expects {}", dims_str(&ws), wc * group));
                    }
                }
                if let Dim::Known(m) = ws[0] {
                    if m % group != 0 {
                        return Err(format!(
                            "{m} output channels cannot be split into {group} groups"
                        ));
                    }
                }
                let kernel = kernel_of(window, &ws)?;
                if let Some(b) = self.opt_input(node, 2) {
                    let bt = self.info.types.get(b).and_then(|t| t.shape.clone());
                    if let Some(bs) = bt {
                        if bs.len() != 1
                            || (bs[0].known().is_some()
                                && ws[0].known().is_some()
                                && bs[0] != ws[0])
                        {
                            return Err(format!(
                                "the bias has shape {} but the conv has {} output channels",
                                dims_str(&bs),
                                ws[0]
                            ));
                        }
                    }
                }
                let mut out = window_dims(&xs, &kernel, window)?;
                out[1] = ws[0].clone();
                vec![t(x.elem, out)]
            }
            Op::ConvTranspose {
                window,
                group,
                output_padding,
            } => {
                let (x, xs, ws) = self.conv_operands(node, *group)?;
                if let (Dim::Known(c), Dim::Known(wc)) = (&xs[1], &ws[0]) {
                    if c != wc || c % group != 0 {
                        return Err(format!("the input has {c} channels but the weight {} expects {wc} (in {group} groups)", dims_str(&ws)));
                    }
                }
                let kernel = kernel_of(window, &ws)?;
                let spatial: Vec<i64> = xs[2..].iter().map(|d| d.known().unwrap_or(1)).collect();
                let axes = window.transposed(&spatial, &kernel, output_padding.as_deref())?;
                let mut out = vec![
                    xs[0].clone(),
                    ws[1]
                        .known()
                        .map_or(Dim::Unknown, |m| Dim::Known(m * group)),
                ];
                for (k, a) in axes.iter().enumerate() {
                    out.push(if xs[2 + k].known().is_some() {
                        Dim::Known(a.out)
                    } else {
                        Dim::Unknown
                    });
                }
                vec![t(x.elem, out)]
            }
            Op::MaxPool { window } | Op::AveragePool { window, .. } => {
                let x = self.input(node, 0)?;
                let xs = self.shape_of(node, 0)?;
                if xs.len() < 3 {
                    return Err(format!(
                        "{} needs an input of rank ≥ 3, got {}",
                        node.op_type,
                        dims_str(&xs)
                    ));
                }
                let kernel = window.kernel_shape.clone().ok_or_else(|| {
                    format!("{} needs a `kernel_shape` attribute, such as `kernel_shape: ints = [2, 2]`", node.op_type)
                })?;
                let out = window_dims(&xs, &kernel, window)?;
                let idx = t(ElemType::I64, out.clone());
                vec![t(x.elem, out), idx]
            }
            Op::GlobalAveragePool | Op::GlobalMaxPool => {
                let x = self.input(node, 0)?;
                let mut xs = self.shape_of(node, 0)?;
                if xs.len() < 3 {
                    return Err(format!(
                        "{} needs an input of rank ≥ 3, got {}",
                        node.op_type,
                        dims_str(&xs)
                    ));
                }
                for d in &mut xs[2..] {
                    *d = Dim::Known(1);
                }
                vec![t(x.elem, xs)]
            }
            Op::Gemm {
                trans_a, trans_b, ..
            } => {
                let a = self.input(node, 0)?;
                let b = self.input(node, 1)?;
                self.same_elem(node, &a, &b)?;
                let (sa, sb) = (self.shape_of(node, 0)?, self.shape_of(node, 1)?);
                if sa.len() != 2 || sb.len() != 2 {
                    return Err(format!(
                        "Gemm takes 2-D inputs, got {} and {}",
                        dims_str(&sa),
                        dims_str(&sb)
                    ));
                }
                let (m, ka) = if *trans_a {
                    (&sa[1], &sa[0])
                } else {
                    (&sa[0], &sa[1])
                };
                let (kb, n) = if *trans_b {
                    (&sb[1], &sb[0])
                } else {
                    (&sb[0], &sb[1])
                };
                if let (Dim::Known(x), Dim::Known(y)) = (ka, kb) {
                    if x != y {
                        return Err(format!(
                            "inner dimensions differ: A is {} and B is {} (transA={}, transB={})",
                            dims_str(&sa),
                            dims_str(&sb),
                            *trans_a as u8,
                            *trans_b as u8
                        ));
                    }
                }
                let out = vec![m.clone(), n.clone()];
                if self.opt_input(node, 2).is_some() {
                    let c = self.shape_of(node, 2)?;
                    let bc = broadcast(&out, &c)?;
                    if bc.len() != 2
                        || bc != out
                            && bc
                                .iter()
                                .zip(&out)
                                .any(|(x, y)| x.known().is_some() && y.known().is_some() && x != y)
                    {
                        return Err(format!(
                            "C of shape {} does not broadcast to the output {}",
                            dims_str(&c),
                            dims_str(&out)
                        ));
                    }
                }
                vec![t(a.elem, out)]
            }
            Op::MatMul => {
                let a = self.input(node, 0)?;
                let b = self.input(node, 1)?;
                self.same_elem(node, &a, &b)?;
                let (mut sa, mut sb) = (self.shape_of(node, 0)?, self.shape_of(node, 1)?);
                if sa.is_empty() || sb.is_empty() {
                    return Err("MatMul does not take scalars".into());
                }
                let (va, vb) = (sa.len() == 1, sb.len() == 1);
                if va {
                    sa.insert(0, Dim::Known(1));
                }
                if vb {
                    sb.push(Dim::Known(1));
                }
                let (ka, kb) = (&sa[sa.len() - 1], &sb[sb.len() - 2]);
                if let (Dim::Known(x), Dim::Known(y)) = (ka, kb) {
                    if x != y {
                        return Err(format!(
                            "inner dimensions differ: {} × {}",
                            dims_str(&sa),
                            dims_str(&sb)
                        ));
                    }
                }
                let mut out = broadcast(&sa[..sa.len() - 2], &sb[..sb.len() - 2])?;
                if !va {
                    out.push(sa[sa.len() - 2].clone());
                }
                if !vb {
                    out.push(sb[sb.len() - 1].clone());
                }
                vec![t(a.elem, out)]
            }
            Op::Add | Op::Sub | Op::Mul | Op::Div => {
                let a = self.input(node, 0)?;
                let b = self.input(node, 1)?;
                self.same_elem(node, &a, &b)?;
                let out = broadcast(&self.shape_of(node, 0)?, &self.shape_of(node, 1)?)?;
                self.fold_arith(node, &out);
                vec![t(a.elem, out)]
            }
            Op::Relu
            | Op::Sigmoid
            | Op::HardSigmoid { .. }
            | Op::HardSwish
            | Op::Unary(_)
            | Op::Clip { .. }
            | Op::Softmax { .. } => {
                let x = self.input(node, 0)?;
                if let Op::Softmax { axis: a } = node.op {
                    if let Some(s) = &x.shape {
                        axis(a, s.len(), "axis")?;
                    }
                }
                vec![Some(x)]
            }
            Op::Identity => {
                let x = self.input(node, 0)?;
                self.fold(node, |c| c.first().cloned().flatten());
                vec![Some(x)]
            }
            Op::Dropout => {
                let x = self.input(node, 0)?;
                let mask = x.shape.clone().map(|s| TensorType {
                    elem: ElemType::Bool,
                    shape: Some(s),
                });
                vec![Some(x), mask]
            }
            Op::LayerNormalization { axis: a, .. } => {
                let x = self.input(node, 0)?;
                let xs = self.shape_of(node, 0)?;
                let first = axis(*a, xs.len(), "axis")?;
                // scale and bias broadcast to the normalized dims
                for k in 1..node.inputs.len().min(3) {
                    if node.inputs[k].is_empty() {
                        continue;
                    }
                    let p = self.shape_of(node, k)?;
                    let norm = &xs[first..];
                    let fits = p.len() <= norm.len()
                        && p.iter().rev().zip(norm.iter().rev()).all(|(d, n)| {
                            d.known() == Some(1)
                                || d.known().is_none()
                                || n.known().is_none()
                                || d == n
                        });
                    if !fits {
                        return Err(format!(
                            "input {} has shape {} but the normalized dims are {}",
                            k + 1,
                            dims_str(&p),
                            dims_str(norm)
                        ));
                    }
                }
                // Mean and InvStdDev: the input's shape with the normalized dims 1
                let mut stats = xs.clone();
                for d in &mut stats[first..] {
                    *d = Dim::Known(1);
                }
                let s = t(ElemType::F32, stats);
                vec![Some(x), s.clone(), s]
            }
            Op::BatchNormalization { .. } => {
                let x = self.input(node, 0)?;
                let xs = self.shape_of(node, 0)?;
                if xs.len() < 2 {
                    return Err(format!(
                        "BatchNormalization needs an input of rank ≥ 2, got {}",
                        dims_str(&xs)
                    ));
                }
                for k in 1..5 {
                    let p = self.shape_of(node, k)?;
                    if p.len() != 1
                        || (p[0].known().is_some() && xs[1].known().is_some() && p[0] != xs[1])
                    {
                        return Err(format!(
                            "parameter {} has shape {} but the input has {} channels",
                            k + 1,
                            dims_str(&p),
                            xs[1]
                        ));
                    }
                }
                let c = t(x.elem, vec![xs[1].clone()]);
                vec![Some(x), c.clone(), c]
            }
            Op::Constant { value } => {
                let out = node.outputs.first().cloned().unwrap_or_default();
                self.info.consts.insert(out, value.clone());
                vec![Some(TensorType::known(value.elem, &value.dims))]
            }
            Op::Flatten { axis: a } => {
                let x = self.input(node, 0)?;
                let xs = self.shape_of(node, 0)?;
                let r = xs.len() as i64;
                let a = if *a < 0 { a + r } else { *a };
                if a < 0 || a > r {
                    return Err(format!("axis {a} is out of range for a rank-{r} input"));
                }
                let prod =
                    |d: &[Dim]| -> Res<Dim> { Ok(numel(d)?.map_or(Dim::Unknown, Dim::Known)) };
                vec![t(
                    x.elem,
                    vec![prod(&xs[..a as usize])?, prod(&xs[a as usize..])?],
                )]
            }
            Op::Reshape { allowzero } => {
                let x = self.input(node, 0)?;
                let xs = self.shape_of(node, 0)?;
                let target = self
                    .const_ints(node, 1, "target shape")?
                    .ok_or("Reshape needs a target shape")?;
                let out = reshape(&xs, &target, *allowzero)?;
                self.fold(node, |c| {
                    let mut v = c.first()?.clone()?;
                    v.dims = out.iter().map(Dim::known).collect::<Option<_>>()?;
                    Some(v)
                });
                vec![t(x.elem, out)]
            }
            Op::Concat { axis: a } => {
                let first = self.input(node, 0)?;
                let mut out = self.shape_of(node, 0)?;
                let ax = axis(*a, out.len(), "axis")?;
                for k in 1..node.inputs.len() {
                    let other = self.input(node, k)?;
                    self.same_elem(node, &first, &other)?;
                    let s = self.shape_of(node, k)?;
                    if s.len() != out.len() {
                        return Err(format!(
                            "input {} has rank {} but the first has rank {}",
                            k + 1,
                            s.len(),
                            out.len()
                        ));
                    }
                    for (d, (x, y)) in out.iter_mut().zip(&s).enumerate() {
                        if d == ax {
                            *x = match (x.known(), y.known()) {
                                (Some(p), Some(q)) => Dim::Known(
                                    p.checked_add(q)
                                        .ok_or("the concatenated axis is longer than 2^63")?,
                                ),
                                _ => Dim::Unknown,
                            };
                        } else if let (Some(p), Some(q)) = (x.known(), y.known()) {
                            if p != q {
                                return Err(format!("inputs differ in dimension {d} ({p} vs {q}), which is not the concat axis {ax}"));
                            }
                        }
                    }
                }
                self.fold(node, |c| {
                    if out.len() != 1 {
                        return None;
                    }
                    let mut v = Vec::new();
                    for t in c {
                        v.extend(t.as_ref()?.ints()?);
                    }
                    Some(Tensor::from_i64(vec![v.len() as i64], v))
                });
                vec![t(first.elem, out)]
            }
            Op::Split {
                axis: a,
                split,
                num_outputs,
            } => {
                let x = self.input(node, 0)?;
                let xs = self.shape_of(node, 0)?;
                let ax = axis(*a, xs.len(), "axis")?;
                let n = node.outputs.len();
                let sizes = match (self.const_ints(node, 1, "split sizes")?, split) {
                    (Some(s), _) => s,
                    (None, Some(s)) => s.clone(),
                    (None, None) => {
                        let parts = num_outputs.unwrap_or(n as i64);
                        if parts != n as i64 {
                            return Err(format!("Split makes {parts} pieces (num_outputs) but the node has {n} outputs"));
                        }
                        match xs[ax].known() {
                            Some(d) if parts > 0 => {
                                let chunk = (d + parts - 1) / parts;
                                (0..parts)
                                    .map(|k| chunk.min(d - k * chunk).max(0))
                                    .collect()
                            }
                            _ => {
                                return Ok(vec![
                                    t(x.elem, {
                                        let mut s = xs.clone();
                                        s[ax] = Dim::Unknown;
                                        s
                                    });
                                    n
                                ])
                            }
                        }
                    }
                };
                if sizes.len() != n {
                    return Err(format!(
                        "Split makes {} pieces but the node has {n} outputs",
                        sizes.len()
                    ));
                }
                if let Some(d) = xs[ax].known() {
                    if sizes.iter().try_fold(0i64, |a, &s| a.checked_add(s)) != Some(d) {
                        return Err(format!(
                            "split sizes {sizes:?} do not add up to the axis length {d}"
                        ));
                    }
                }
                sizes
                    .iter()
                    .map(|&s| {
                        let mut o = xs.clone();
                        o[ax] = Dim::Known(s);
                        t(x.elem, o)
                    })
                    .collect()
            }
            Op::Slice { starts, ends, axes } => {
                let x = self.input(node, 0)?;
                let xs = self.shape_of(node, 0)?;
                let (starts, ends, axes, steps) = if self.opset >= 10 || starts.is_none() {
                    (
                        self.const_ints(node, 1, "slice starts")?
                            .ok_or("Slice needs starts")?,
                        self.const_ints(node, 2, "slice ends")?
                            .ok_or("Slice needs ends")?,
                        self.const_ints(node, 3, "slice axes")?,
                        self.const_ints(node, 4, "slice steps")?,
                    )
                } else {
                    (
                        starts.clone().unwrap_or_default(),
                        ends.clone().ok_or("Slice needs ends")?,
                        axes.clone(),
                        None,
                    )
                };
                if starts.len() != ends.len() {
                    return Err(format!(
                        "Slice has {} starts but {} ends",
                        starts.len(),
                        ends.len()
                    ));
                }
                let axes: Vec<i64> = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
                let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
                if axes.len() != starts.len() || steps.len() != starts.len() {
                    return Err(
                        "Slice's starts, ends, axes and steps must have the same length".into(),
                    );
                }
                let mut out = xs.clone();
                let mut ranges = Vec::new();
                for k in 0..starts.len() {
                    let ax = axis(axes[k], xs.len(), "slice axis")?;
                    let step = steps[k];
                    if step == 0 {
                        return Err("a slice step must not be 0".into());
                    }
                    match xs[ax].known() {
                        Some(d) => {
                            let (s, e) = slice_bounds(starts[k], ends[k], step, d);
                            // in i128: a step near ±2^63 must not overflow
                            let (s128, e128, st) = (i128::from(s), i128::from(e), i128::from(step));
                            let len = if step > 0 {
                                ((e128 - s128).max(0) + st - 1) / st
                            } else {
                                ((s128 - e128).max(0) - st - 1) / -st
                            };
                            let len = len as i64; // at most the axis length
                            out[ax] = Dim::Known(len);
                            ranges.push((ax, s, step, len));
                        }
                        None => out[ax] = Dim::Unknown,
                    }
                }
                // element k of each axis reads start + k·step of the input's
                let mut start = vec![0i64; xs.len()];
                let mut stride = vec![1i64; xs.len()];
                for &(ax, s, step, _) in &ranges {
                    start[ax] = s;
                    stride[ax] = step;
                }
                self.fold_moved(node, &out, |at, is| {
                    (0..at.len())
                        .map(|a| (start[a] + at[a] as i64 * stride[a]) as usize * is[a])
                        .sum()
                });
                vec![t(x.elem, out)]
            }
            Op::Transpose { perm } => {
                let x = self.input(node, 0)?;
                let xs = self.shape_of(node, 0)?;
                let perm = perm
                    .clone()
                    .unwrap_or_else(|| (0..xs.len() as i64).rev().collect());
                let mut seen = vec![false; xs.len()];
                if perm.len() != xs.len()
                    || perm.iter().any(|&p| {
                        p < 0
                            || p as usize >= xs.len()
                            || std::mem::replace(&mut seen[p as usize], true)
                    })
                {
                    return Err(format!(
                        "perm {perm:?} is not a permutation of the input's {} axes",
                        xs.len()
                    ));
                }
                let out: Vec<Dim> = perm.iter().map(|&p| xs[p as usize].clone()).collect();
                self.fold_moved(node, &out, |at, is| {
                    at.iter()
                        .zip(&perm)
                        .map(|(&k, &p)| k * is[p as usize])
                        .sum()
                });
                vec![t(x.elem, out)]
            }
            Op::Squeeze { axes } => {
                let x = self.input(node, 0)?;
                let xs = self.shape_of(node, 0)?;
                let axes = match axes {
                    Some(a) => Some(a.clone()),
                    None => self.const_ints(node, 1, "squeeze axes")?,
                };
                let out: Vec<Dim> = match axes {
                    Some(a) => {
                        let a: Vec<usize> = a
                            .iter()
                            .map(|&v| axis(v, xs.len(), "squeeze axis"))
                            .collect::<Res<_>>()?;
                        for &k in &a {
                            if let Some(d) = xs[k].known().filter(|&d| d != 1) {
                                return Err(format!("cannot squeeze axis {k}, whose size is {d}"));
                            }
                        }
                        xs.iter()
                            .enumerate()
                            .filter(|(k, _)| !a.contains(k))
                            .map(|(_, d)| d.clone())
                            .collect()
                    }
                    None => xs
                        .iter()
                        .filter(|d| d.known() != Some(1))
                        .cloned()
                        .collect(),
                };
                self.fold(node, |c| {
                    let mut v = c.first()?.clone()?;
                    v.dims = out.iter().map(Dim::known).collect::<Option<_>>()?;
                    Some(v)
                });
                vec![t(x.elem, out)]
            }
            Op::Unsqueeze { axes } => {
                let x = self.input(node, 0)?;
                let xs = self.shape_of(node, 0)?;
                let axes = match axes {
                    Some(a) => a.clone(),
                    None => self
                        .const_ints(node, 1, "unsqueeze axes")?
                        .ok_or("Unsqueeze needs axes")?,
                };
                let r = xs.len() + axes.len();
                let mut a: Vec<usize> = axes
                    .iter()
                    .map(|&v| axis(v, r, "unsqueeze axis"))
                    .collect::<Res<_>>()?;
                a.sort();
                let mut out = xs.clone();
                for &k in &a {
                    out.insert(k, Dim::Known(1));
                }
                self.fold(node, |c| {
                    let mut v = c.first()?.clone()?;
                    v.dims = out.iter().map(Dim::known).collect::<Option<_>>()?;
                    Some(v)
                });
                vec![t(x.elem, out)]
            }
            Op::Pad { pads, .. } => {
                let x = self.input(node, 0)?;
                let xs = self.shape_of(node, 0)?;
                let pads = match pads {
                    Some(p) => p.clone(),
                    None => self.const_ints(node, 1, "pads")?.ok_or("Pad needs pads")?,
                };
                let r = xs.len();
                let axes = match self.const_ints(node, 3, "pad axes")? {
                    Some(a) => a
                        .iter()
                        .map(|&v| axis(v, r, "pad axis"))
                        .collect::<Res<Vec<_>>>()?,
                    None => (0..r).collect(),
                };
                if pads.len() != 2 * axes.len() {
                    return Err(format!(
                        "pads has {} values but {} are needed",
                        pads.len(),
                        2 * axes.len()
                    ));
                }
                let mut out = xs.clone();
                for (k, &ax) in axes.iter().enumerate() {
                    if let Some(d) = xs[ax].known() {
                        let v = d
                            .checked_add(pads[k])
                            .and_then(|v| v.checked_add(pads[axes.len() + k]))
                            .ok_or_else(|| format!("padding makes axis {ax} longer than 2^63"))?;
                        if v < 0 {
                            return Err(format!("padding makes axis {ax} negative"));
                        }
                        out[ax] = Dim::Known(v);
                    }
                }
                vec![t(x.elem, out)]
            }
            Op::Reduce {
                axes,
                keepdims,
                noop_with_empty_axes,
                ..
            } => {
                let x = self.input(node, 0)?;
                let xs = self.shape_of(node, 0)?;
                let axes = match axes {
                    Some(a) => Some(a.clone()),
                    None => self.const_ints(node, 1, "reduce axes")?,
                };
                let axes: Vec<usize> = match axes {
                    Some(a) if !a.is_empty() => a
                        .iter()
                        .map(|&v| axis(v, xs.len(), "reduce axis"))
                        .collect::<Res<_>>()?,
                    _ if *noop_with_empty_axes => vec![],
                    _ => (0..xs.len()).collect(),
                };
                let out = xs
                    .iter()
                    .enumerate()
                    .filter_map(|(k, d)| match (axes.contains(&k), keepdims) {
                        (true, true) => Some(Dim::Known(1)),
                        (true, false) => None,
                        _ => Some(d.clone()),
                    })
                    .collect();
                vec![t(x.elem, out)]
            }
            Op::Shape { start, end } => {
                let xs = self.shape_of(node, 0)?;
                let r = xs.len() as i64;
                let clampi = |v: i64| if v < 0 { (v + r).max(0) } else { v.min(r) };
                let (s, e) = (clampi(*start), clampi(end.unwrap_or(r)));
                let part = &xs[s as usize..e.max(s) as usize];
                if let Some(v) = part.iter().map(Dim::known).collect::<Option<Vec<i64>>>() {
                    if let Some(out) = node.outputs.first() {
                        self.info
                            .consts
                            .insert(out.clone(), Tensor::from_i64(vec![v.len() as i64], v));
                    }
                }
                vec![t(ElemType::I64, vec![Dim::Known(part.len() as i64)])]
            }
            Op::Gather { axis: a } => {
                let x = self.input(node, 0)?;
                let xs = self.shape_of(node, 0)?;
                let is = self.shape_of(node, 1)?;
                let it = self.input(node, 1)?;
                if !matches!(it.elem, ElemType::I64 | ElemType::I32) {
                    return Err(format!(
                        "Gather's indices must be int64 or int32, not {}",
                        it.elem
                    ));
                }
                let ax = axis(*a, xs.len(), "axis")?;
                let mut out = xs[..ax].to_vec();
                out.extend(is.iter().cloned());
                out.extend(xs[ax + 1..].iter().cloned());
                let n = xs[ax].known();
                let mut bad = None;
                self.fold(node, |c| {
                    let data = c.first()?.as_ref()?;
                    let idx = c.get(1)?.as_ref()?.ints()?;
                    let v = data.ints()?;
                    if data.dims.len() != 1 {
                        return None;
                    }
                    let n = v.len() as i64;
                    let mut r = Vec::with_capacity(idx.len());
                    for &i in &idx {
                        let j = if i < 0 { i + n } else { i };
                        if j < 0 || j >= n {
                            bad = Some(i);
                            return None;
                        }
                        r.push(v[j as usize]);
                    }
                    Some(Tensor::from_i64(
                        out.iter().map(Dim::known).collect::<Option<_>>()?,
                        r,
                    ))
                });
                if let Some(i) = bad {
                    return Err(format!(
                        "index {i} is out of range for an axis of size {}",
                        n.unwrap_or(0)
                    ));
                }
                vec![t(x.elem, out)]
            }
            Op::Cast { to } => {
                let x = self.input(node, 0)?;
                let to = *to;
                if matches!(to, ElemType::I64 | ElemType::I32) {
                    self.fold(node, |c| {
                        let v = c.first()?.as_ref()?;
                        Some(Tensor::from_i64(v.dims.clone(), v.ints()?))
                    });
                }
                vec![Some(TensorType {
                    elem: to,
                    shape: x.shape,
                })]
            }
            Op::QuantizeLinear { axis: a } | Op::DequantizeLinear { axis: a } => {
                let quantize = matches!(node.op, Op::QuantizeLinear { .. });
                let x = self.input(node, 0)?;
                let xs = self.shape_of(node, 0)?;
                let scale = self.input(node, 1)?;
                if !scale.elem.is_float() {
                    return Err(format!(
                        "the scale must be a float tensor, not {}",
                        scale.elem
                    ));
                }
                if quantize != x.elem.is_float() {
                    let want = if quantize { "a float" } else { "an integer" };
                    return Err(format!(
                        "{} takes {want} input, not {}",
                        node.op_type, x.elem
                    ));
                }
                let zp = match self.opt_input(node, 2) {
                    Some(_) => Some(self.input(node, 2)?),
                    None => None,
                };
                if let Some(z) = &zp {
                    if z.elem.is_float() || z.elem == ElemType::Str {
                        return Err(format!(
                            "the zero point must be an integer tensor, not {}",
                            z.elem
                        ));
                    }
                    if !quantize && z.elem != x.elem {
                        return Err(format!(
                            "the zero point is {} but the input is {}",
                            z.elem, x.elem
                        ));
                    }
                }
                // per tensor (a scalar or one value) or per axis (1-D along `axis`)
                let ss = scale.shape.clone().unwrap_or_default();
                let per_axis = ss.len() == 1 && ss[0].known() != Some(1);
                if ss.len() > 1 {
                    return Err(format!(
                        "the scale must be a scalar or 1-D, not {}",
                        dims_str(&ss)
                    ));
                }
                if per_axis {
                    let ax = axis(*a, xs.len(), "axis")?;
                    if let (Some(n), Some(d)) = (ss[0].known(), xs[ax].known()) {
                        if n != d {
                            return Err(format!(
                                "the scale has {n} values but axis {ax} of the input has {d}"
                            ));
                        }
                    }
                }
                if let Some(zs) = zp.as_ref().and_then(|z| z.shape.clone()) {
                    if let (Some(nz), Some(ns)) = (numel(&zs)?, numel(&ss)?) {
                        if zs.len() > 1 || nz != ns {
                            return Err(format!(
                                "the zero point has shape {} but the scale has shape {}",
                                dims_str(&zs),
                                dims_str(&ss)
                            ));
                        }
                    }
                }
                let elem = if quantize {
                    zp.map_or(ElemType::U8, |z| z.elem)
                } else {
                    scale.elem
                };
                vec![t(elem, xs)]
            }
            Op::Compare(cmp) => {
                let a = self.input(node, 0)?;
                let b = self.input(node, 1)?;
                self.same_elem(node, &a, &b)?;
                let out = broadcast(&self.shape_of(node, 0)?, &self.shape_of(node, 1)?)?;
                let cmp = *cmp;
                self.fold_ints(node, &out, ElemType::Bool, |v| {
                    Some(cmp.holds(v[0], v[1]) as i64)
                });
                vec![t(ElemType::Bool, out)]
            }
            Op::Not | Op::Logic(_) => {
                let mut shapes = Vec::new();
                for k in 0..node.inputs.len().min(2) {
                    let x = self.input(node, k)?;
                    if x.elem != ElemType::Bool {
                        return Err(format!(
                            "{} takes bool tensors, not {}",
                            node.op_type, x.elem
                        ));
                    }
                    shapes.push(self.shape_of(node, k)?);
                }
                let out = match &shapes[..] {
                    [a] if matches!(node.op, Op::Not) => a.clone(),
                    [a, b] if !matches!(node.op, Op::Not) => broadcast(a, b)?,
                    _ => return Err(format!("{} has the wrong number of inputs", node.op_type)),
                };
                let op = node.op.clone();
                self.fold_ints(node, &out, ElemType::Bool, |v| match op {
                    Op::Logic(l) => Some(l.apply(v[0] != 0, v[1] != 0) as i64),
                    _ => Some((v[0] == 0) as i64),
                });
                vec![t(ElemType::Bool, out)]
            }
            Op::Mod { fmod } => {
                let a = self.input(node, 0)?;
                let b = self.input(node, 1)?;
                self.same_elem(node, &a, &b)?;
                if a.elem.is_float() && !fmod {
                    return Err("Mod of floats needs fmod = 1 (ONNX defines no other)".into());
                }
                let out = broadcast(&self.shape_of(node, 0)?, &self.shape_of(node, 1)?)?;
                let fmod = *fmod;
                self.fold_ints(node, &out, a.elem, |v| crate::op::modulo(v[0], v[1], fmod));
                vec![t(a.elem, out)]
            }
            Op::Pow => {
                let a = self.input(node, 0)?;
                let b = self.input(node, 1)?;
                if !a.elem.is_float() && a.elem != ElemType::I64 && a.elem != ElemType::I32 {
                    return Err(format!("Pow of {} is not supported", a.elem));
                }
                if b.elem.is_float() != a.elem.is_float() {
                    return Err(format!(
                        "Pow of {} to a {} exponent is not supported",
                        a.elem, b.elem
                    ));
                }
                let out = broadcast(&self.shape_of(node, 0)?, &self.shape_of(node, 1)?)?;
                self.fold_ints(node, &out, a.elem, |v| {
                    v[0].checked_pow(u32::try_from(v[1]).ok()?)
                });
                vec![t(a.elem, out)]
            }
            Op::ConstantOfShape { value } => {
                let s = self.input(node, 0)?;
                if s.elem != ElemType::I64 {
                    return Err(format!("the shape must be int64, not {}", s.elem));
                }
                let shape = match self.const_ints(node, 0, "shape")? {
                    Some(v) if v.iter().any(|&d| d < 0) => {
                        return Err(format!("the shape {v:?} has a negative extent"))
                    }
                    Some(v) => Some(v.into_iter().map(Dim::Known).collect::<Vec<_>>()),
                    None => None,
                };
                if let Some(dims) = shape
                    .as_ref()
                    .and_then(|d| d.iter().map(Dim::known).collect::<Option<Vec<_>>>())
                {
                    if let Some(v) = value.ints().filter(|_| value.elem == ElemType::I64) {
                        let n = dims
                            .iter()
                            .try_fold(1usize, |a, &d| a.checked_mul(d as usize));
                        if let Some(n) = n.filter(|&n| n <= FOLD_LIMIT) {
                            if let Some(out) = node.outputs.first() {
                                self.info.consts.insert(
                                    out.clone(),
                                    Tensor::from_i64(dims.clone(), vec![v[0]; n]),
                                );
                            }
                        }
                    }
                }
                vec![Some(TensorType {
                    elem: value.elem,
                    shape,
                })]
            }
            Op::Expand => {
                let x = self.input(node, 0)?;
                let xs = self.shape_of(node, 0)?;
                let out = match self.const_ints(node, 1, "shape")? {
                    Some(v) => {
                        let want: Vec<Dim> = v.iter().map(|&d| Dim::Known(d)).collect();
                        broadcast(&xs, &want)?
                    }
                    None => {
                        return Ok(vec![Some(TensorType {
                            elem: x.elem,
                            shape: None,
                        })])
                    }
                };
                self.fold_ints(node, &out, x.elem, |v| Some(v[0]));
                vec![t(x.elem, out)]
            }
            Op::Range => {
                let start = self.input(node, 0)?;
                for k in 1..3 {
                    if self.input(node, k)?.elem != start.elem {
                        return Err("start, limit and delta must have one element type".into());
                    }
                }
                let consts: Vec<Option<Tensor>> = (0..3)
                    .map(|k| self.info.consts.get(&node.inputs[k]).cloned())
                    .collect();
                let ints: Option<Vec<i64>> = consts
                    .iter()
                    .map(|c| {
                        c.as_ref()
                            .and_then(Tensor::ints)
                            .and_then(|v| v.first().copied())
                    })
                    .collect();
                let floats: Option<Vec<f32>> = consts
                    .iter()
                    .map(|c| {
                        c.as_ref()
                            .and_then(Tensor::floats)
                            .and_then(|v| v.first().copied())
                    })
                    .collect();
                let n = match (&ints, &floats) {
                    (Some(v), _) if !start.elem.is_float() => {
                        Some(crate::op::range_len_i64(v[0], v[1], v[2])?)
                    }
                    (_, Some(v)) => Some(crate::op::range_len_f32(v[0], v[1], v[2])?),
                    _ => None,
                };
                if let (Some(v), Some(n), Some(out)) = (&ints, n, node.outputs.first()) {
                    if !start.elem.is_float() && n <= FOLD_LIMIT as u64 {
                        let values = (0..n as i64).map(|k| v[0] + k * v[2]).collect();
                        self.info
                            .consts
                            .insert(out.clone(), Tensor::from_i64(vec![n as i64], values));
                    }
                }
                let dim = n.map_or(Dim::Unknown, |n| Dim::Known(n as i64));
                vec![t(start.elem, vec![dim])]
            }
            Op::Arg {
                axis: a, keepdims, ..
            } => {
                let x = self.input(node, 0)?;
                let mut xs = self.shape_of(node, 0)?;
                let ax = axis(*a, xs.len(), "axis")?;
                if *keepdims {
                    xs[ax] = Dim::Known(1);
                } else {
                    xs.remove(ax);
                }
                if x.elem == ElemType::Bool || x.elem == ElemType::Str {
                    return Err(format!("{} of {} is not supported", node.op_type, x.elem));
                }
                vec![t(ElemType::I64, xs)]
            }
            Op::CumSum { .. } => {
                let x = self.input(node, 0)?;
                let xs = self.shape_of(node, 0)?;
                match self.const_ints(node, 1, "axis")?.as_deref() {
                    Some([a]) => {
                        axis(*a, xs.len(), "axis")?;
                    }
                    Some(v) => return Err(format!("the axis must be one value, not {v:?}")),
                    None => return Err("CumSum needs its axis (input 2)".into()),
                }
                vec![t(x.elem, xs)]
            }
            Op::Einsum(eq) => {
                let first = self.input(node, 0)?;
                let mut shapes = Vec::with_capacity(node.inputs.len());
                for k in 0..node.inputs.len() {
                    self.same_elem(node, &first, &self.input(node, k)?)?;
                    shapes.push(self.shape_of(node, k)?);
                }
                let (labels, ext) = eq.label(&shapes)?;
                vec![t(
                    first.elem,
                    labels.output.iter().map(|&l| ext[l].clone()).collect(),
                )]
            }
            Op::TopK { axis: a, .. } => {
                let x = self.input(node, 0)?;
                let mut xs = self.shape_of(node, 0)?;
                let ax = axis(*a, xs.len(), "axis")?;
                // a k computed at run time leaves the axis unknown
                let k = match self.const_ints(node, 1, "k") {
                    Ok(Some(v)) => match v.as_slice() {
                        [k] => Some(*k),
                        _ => return Err(format!("k must be one value, not {v:?}")),
                    },
                    Ok(None) => return Err("TopK needs k (input 2)".into()),
                    Err(_) => None,
                };
                if let Some(k) = k {
                    if k < 0 || xs[ax].known().is_some_and(|d| k > d) {
                        return Err(format!(
                            "k = {k} is not within the axis's {} elements",
                            xs[ax]
                        ));
                    }
                }
                xs[ax] = k.map_or(Dim::Unknown, Dim::Known);
                vec![t(x.elem, xs.clone()), t(ElemType::I64, xs)]
            }
            Op::ScatterND(_) => {
                let x = self.input(node, 0)?;
                let xs = self.shape_of(node, 0)?;
                let is = self.shape_of(node, 1)?;
                let us = self.shape_of(node, 2)?;
                self.same_elem(node, &x, &self.input(node, 2)?)?;
                if self.input(node, 1)?.elem != ElemType::I64 {
                    return Err("ScatterND's indices must be int64".into());
                }
                let q = is
                    .last()
                    .ok_or("ScatterND's indices must have rank 1 or more")?;
                if let Some(q) = q.known() {
                    if q < 1 || q as usize > xs.len() {
                        return Err(format!(
                            "index tuples of {q} values do not fit a rank-{} input",
                            xs.len()
                        ));
                    }
                    let want: Vec<Dim> = is[..is.len() - 1]
                        .iter()
                        .chain(&xs[q as usize..])
                        .cloned()
                        .collect();
                    let differs = want.len() != us.len()
                        || want.iter().zip(&us).any(
                            |(w, u)| matches!((w.known(), u.known()), (Some(a), Some(b)) if a != b),
                        );
                    if differs {
                        return Err(format!(
                            "the updates are {} where the indices and input need {}",
                            dims_str(&us),
                            dims_str(&want)
                        ));
                    }
                }
                vec![t(x.elem, xs)]
            }
            Op::Resize(_) => {
                if self.opset < 11 {
                    return Err(format!("Resize of opset {} (inputs x and scales) is not supported; export at opset 11 or later", self.opset));
                }
                let x = self.input(node, 0)?;
                let xs = self.shape_of(node, 0)?;
                let scales = match self.opt_input(node, 2) {
                    Some(n) => match self.info.consts.get(n).and_then(Tensor::floats) {
                        Some(v) => Some(v),
                        None => return Err(format!("the scales (`{n}`) are computed at run time and could not be folded to a constant")),
                    },
                    None => None,
                };
                let sizes = self.const_ints(node, 3, "sizes")?;
                // unknown extents (a symbolic batch) stand in as 1: they come out as they went in
                // where the scale is 1, unknown where it is not, and as the sizes say
                let extents: Vec<usize> = xs
                    .iter()
                    .map(|d| d.known().map_or(1, |v| v.max(0) as usize))
                    .collect();
                let (out, _) =
                    crate::resize::geometry(&extents, scales.as_deref(), sizes.as_deref())?;
                let dims = out
                    .into_iter()
                    .enumerate()
                    .map(|(k, d)| match (&xs[k], &scales) {
                        (Dim::Known(_), _) => Dim::Known(d as i64),
                        (_, Some(s)) if s.get(k) == Some(&1.0) => xs[k].clone(),
                        (_, Some(_)) => Dim::Unknown,
                        (_, None) => Dim::Known(d as i64),
                    })
                    .collect();
                vec![t(x.elem, dims)]
            }
            Op::Tile => {
                let x = self.input(node, 0)?;
                let xs = self.shape_of(node, 0)?;
                let Some(reps) = self.const_ints(node, 1, "repeats")? else {
                    return Ok(vec![Some(TensorType {
                        elem: x.elem,
                        shape: Some(vec![Dim::Unknown; xs.len()]),
                    })]);
                };
                if reps.len() != xs.len() || reps.iter().any(|&r| r < 0) {
                    return Err(format!(
                        "repeats {reps:?} must have one non-negative value per axis of the input {}",
                        dims_str(&xs)
                    ));
                }
                let out: Vec<Dim> = xs
                    .iter()
                    .zip(&reps)
                    .map(|(d, &r)| match d {
                        Dim::Known(v) => v
                            .checked_mul(r)
                            .map(Dim::Known)
                            .ok_or("the tiled extent overflows"),
                        _ if r == 1 => Ok(d.clone()),
                        _ => Ok(Dim::Unknown),
                    })
                    .collect::<Result<_, _>>()?;
                vec![t(x.elem, out)]
            }
            Op::Where => {
                let c = self.input(node, 0)?;
                let x = self.input(node, 1)?;
                let y = self.input(node, 2)?;
                if c.elem != ElemType::Bool {
                    return Err(format!("the condition must be bool, not {}", c.elem));
                }
                self.same_elem(node, &x, &y)?;
                let xy = broadcast(&self.shape_of(node, 1)?, &self.shape_of(node, 2)?)?;
                let out = broadcast(&self.shape_of(node, 0)?, &xy)?;
                self.fold_ints(node, &out, x.elem, |v| {
                    Some(if v[0] != 0 { v[1] } else { v[2] })
                });
                vec![t(x.elem, out)]
            }
            Op::QLinearConv { .. } | Op::QLinearMatMul | Op::QGemm { .. } => {
                self.qoperator(node)?
            }
            Op::QLinearAdd => {
                let a = self.input(node, 0)?;
                let b = self.input(node, 3)?;
                if !matches!(a.elem, ElemType::U8 | ElemType::I8) || a.elem != b.elem {
                    return Err(format!(
                        "QLinearAdd takes uint8 or int8 codes of one type, not {} and {}",
                        a.elem, b.elem
                    ));
                }
                for k in [1, 4, 6] {
                    if self.input(node, k)?.elem != ElemType::F32 {
                        return Err(format!("input {} (a scale) must be float", k + 1));
                    }
                }
                let out = broadcast(&self.shape_of(node, 0)?, &self.shape_of(node, 3)?)?;
                let elem = match self.opt_input(node, 7) {
                    Some(_) => self.input(node, 7)?.elem,
                    None => ElemType::U8,
                };
                vec![t(elem, out)]
            }
            Op::Quant(_) | Op::BipolarQuant | Op::Trunc(_) => {
                let want: &[usize] = match node.op {
                    Op::Quant(_) => &[4],
                    Op::BipolarQuant => &[2],
                    _ => &[5, 6],
                };
                let given = node.inputs.len();
                if !want.contains(&given) || node.inputs.iter().any(|i| i.is_empty()) {
                    let names = match node.op {
                        Op::Quant(_) => "x, scale, zero point and bit width (4)",
                        Op::BipolarQuant => "x and scale (2)",
                        _ => "x, scale, zero point, input bit width and output bit width (5, version 1), or x, scale, zero point, input bit width, output scale and output bit width (6, version 2)",
                    };
                    return Err(format!(
                        "it has {given} inputs; QONNX's {} takes {names}, none omitted",
                        node.op_type
                    ));
                }
                let x = self.input(node, 0)?;
                if x.elem != ElemType::F32 {
                    return Err(format!("the input must be float, not {}", x.elem));
                }
                let xs = self.shape_of(node, 0)?;
                for k in 1..given {
                    let p = self.input(node, k)?;
                    if p.elem != ElemType::F32 {
                        return Err(format!(
                            "input {k} (`{}`) must be float, as qonnx computes in float32, not {}",
                            node.inputs[k], p.elem
                        ));
                    }
                    // a parameter is per tensor or broadcast along the input's axes: it may not
                    // grow the input
                    let ps = self.shape_of(node, k)?;
                    if ps.len() > xs.len() || broadcast(&xs, &ps)? != xs {
                        return Err(format!(
                            "input {k} (`{}`) has shape {}, which does not broadcast to the input's {}",
                            node.inputs[k],
                            dims_str(&ps),
                            dims_str(&xs)
                        ));
                    }
                }
                vec![t(ElemType::F32, xs)]
            }
            Op::Other => vec![],
        })
    }

    /// Stores `f(input constants)` as the constant value of the node's first output.
    fn fold(&mut self, node: &Node, f: impl FnOnce(&[Option<Tensor>]) -> Option<Tensor>) {
        let inputs: Vec<Option<Tensor>> = node
            .inputs
            .iter()
            .map(|n| self.info.consts.get(n).cloned())
            .collect();
        if inputs.is_empty() || inputs.iter().all(Option::is_none) {
            return;
        }
        if let (Some(v), Some(out)) = (f(&inputs), node.outputs.first()) {
            self.info.consts.insert(out.clone(), v);
        }
    }

    /// Folds an element-wise op of integer constants with broadcasting (shape logic: Equal, Not,
    /// Mod, Expand, …) when the output is small: `f` maps the inputs' values at one output
    /// position to the output's.
    /// Folds an op that only moves a constant's integers (Slice, Transpose): the output element
    /// at multi-index `at` is the input's element `from(at, input strides)`.
    fn fold_moved(&mut self, node: &Node, out: &[Dim], from: impl Fn(&[usize], &[usize]) -> usize) {
        let Some(x) = node.inputs.first().and_then(|i| self.info.consts.get(i)) else {
            return;
        };
        let (Some(v), false) = (x.ints(), x.elem.is_float()) else {
            return;
        };
        let Some(dims) = out.iter().map(Dim::known).collect::<Option<Vec<i64>>>() else {
            return;
        };
        let shape: Vec<usize> = dims.iter().map(|&d| d.max(0) as usize).collect();
        let Some(n) = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|&n| n <= FOLD_LIMIT)
        else {
            return;
        };
        let input: Vec<usize> = x.dims.iter().map(|&d| d.max(0) as usize).collect();
        let (os, is) = (
            crate::tensor::strides(&shape),
            crate::tensor::strides(&input),
        );
        let mut at = vec![0usize; shape.len()];
        let mut r = Vec::with_capacity(n);
        for k in 0..n {
            for (j, a) in at.iter_mut().enumerate() {
                *a = k / os[j] % shape[j];
            }
            let Some(&e) = v.get(from(&at, &is)) else {
                return;
            };
            r.push(e);
        }
        let elem = x.elem;
        self.store_ints(node, dims, r, elem);
    }

    /// Records folded integers as the node's output constant: bool where `elem` is, else int64
    /// (as every folded integer chain is held).
    fn store_ints(&mut self, node: &Node, dims: Vec<i64>, values: Vec<i64>, elem: ElemType) {
        if let Some(o) = node.outputs.first() {
            let mut t = Tensor::from_i64(dims, values);
            if elem == ElemType::Bool {
                t.elem = ElemType::Bool;
            }
            self.info.consts.insert(o.clone(), t);
        }
    }

    fn fold_ints(
        &mut self,
        node: &Node,
        out: &[Dim],
        elem: ElemType,
        f: impl Fn(&[i64]) -> Option<i64>,
    ) {
        let Some(dims) = out.iter().map(Dim::known).collect::<Option<Vec<i64>>>() else {
            return;
        };
        // Expand's second input is its shape, not an operand
        let operands = if matches!(node.op, Op::Expand) {
            1
        } else {
            node.inputs.len()
        };
        let Some(vals): Option<Vec<Tensor>> = node.inputs[..operands]
            .iter()
            .map(|i| self.info.consts.get(i).cloned())
            .collect()
        else {
            return;
        };
        if elem.is_float() || vals.iter().any(|v| v.elem.is_float()) {
            return;
        }
        let Some(n) = dims
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(usize::try_from(d).ok()?))
            .filter(|&n| n <= FOLD_LIMIT)
        else {
            return;
        };
        let Some(ints): Option<Vec<Vec<i64>>> = vals.iter().map(Tensor::ints).collect() else {
            return;
        };
        let out_shape: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
        let index: Vec<_> = vals
            .iter()
            .map(|v| {
                let shape: Vec<usize> = v.dims.iter().map(|&d| d.max(0) as usize).collect();
                crate::tensor::broadcast_index(&shape, &out_shape)
            })
            .collect();
        let mut r = Vec::with_capacity(n);
        for k in 0..n {
            let at: Vec<i64> = (0..ints.len()).map(|i| ints[i][index[i](k)]).collect();
            let Some(v) = f(&at) else { return };
            r.push(v);
        }
        // only results of integer type: a comparison's bool, or int64 arithmetic
        if matches!(elem, ElemType::Bool | ElemType::I64) {
            self.store_ints(node, dims, r, elem);
        }
    }

    /// Folds integer Add/Sub/Mul/Div over constants (shape arithmetic).
    fn fold_arith(&mut self, node: &Node, out: &[Dim]) {
        let op = node.op.clone();
        self.fold(node, |c| {
            let a = c.first()?.as_ref()?;
            let b = c.get(1)?.as_ref()?;
            let (va, vb) = (a.ints()?, b.ints()?);
            if a.elem != ElemType::I64 {
                return None;
            }
            let dims: Vec<i64> = out.iter().map(Dim::known).collect::<Option<_>>()?;
            let n = dims.iter().try_fold(1i64, |a, &d| a.checked_mul(d))? as usize;
            let pick = |v: &[i64], k: usize| {
                if v.len() == 1 {
                    Some(v[0])
                } else {
                    v.get(k).copied()
                }
            };
            if !(va.len() == n || va.len() == 1) || !(vb.len() == n || vb.len() == 1) {
                return None;
            }
            let mut r = Vec::with_capacity(n);
            for k in 0..n {
                let (x, y) = (pick(&va, k)?, pick(&vb, k)?);
                r.push(match op {
                    Op::Add => x.checked_add(y)?,
                    Op::Sub => x.checked_sub(y)?,
                    Op::Mul => x.checked_mul(y)?,
                    // C's division, as onnxruntime's integer Div (and the executor) truncates
                    Op::Div => x.checked_div(y)?,
                    _ => return None,
                });
            }
            Some(Tensor {
                elem: ElemType::I64,
                dims,
                data: Some(Data::I64(r)),
                external: None,
            })
        });
    }
}

/// Clamps slice bounds as ONNX does: `(start, end)` for one axis of extent `dim`.
pub fn slice_bounds(start: i64, end: i64, step: i64, dim: i64) -> (i64, i64) {
    let norm = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
    let (s, e) = (norm(start), norm(end));
    if step > 0 {
        (s.clamp(0, dim), e.clamp(0, dim))
    } else {
        (s.clamp(-1, dim - 1), e.clamp(-1, dim - 1))
    }
}

/// The element count of a shape: `None` if a dimension is not known, an error past 2^63.
fn numel(d: &[Dim]) -> Res<Option<i64>> {
    let mut n = 1i64;
    for x in d {
        let Some(v) = x.known() else { return Ok(None) };
        n = n
            .checked_mul(v)
            .ok_or_else(|| format!("shape {} has more than 2^63 elements", dims_str(d)))?;
    }
    Ok(Some(n))
}

/// Applies a Reshape target (with `0` = copy and `-1` = infer) to a shape; shared with the executors.
pub fn reshape(xs: &[Dim], target: &[i64], allowzero: bool) -> Res<Vec<Dim>> {
    let mut out: Vec<Dim> = Vec::with_capacity(target.len());
    let mut infer_at = None;
    for (k, &v) in target.iter().enumerate() {
        out.push(match v {
            -1 => {
                if infer_at.replace(k).is_some() {
                    return Err("the target shape has more than one -1".into());
                }
                Dim::Unknown
            }
            0 if !allowzero => xs.get(k).cloned().ok_or_else(|| {
                format!(
                    "target dim {k} is 0 (copy) but the input has rank {}",
                    xs.len()
                )
            })?,
            v if v < 0 => return Err(format!("target dim {v} is invalid")),
            v => Dim::Known(v),
        });
    }
    let total = numel(xs)?;
    let kept: Vec<Dim> = out
        .iter()
        .enumerate()
        .filter(|(k, _)| Some(*k) != infer_at)
        .map(|(_, d)| d.clone())
        .collect();
    let known = numel(&kept)?;
    match (infer_at, total, known) {
        (Some(k), Some(t), Some(p)) => {
            if p == 0 || t % p != 0 {
                return Err(format!("cannot reshape {} elements into {target:?}", t));
            }
            out[k] = Dim::Known(t / p);
        }
        (None, Some(t), Some(p)) if t != p => {
            return Err(format!(
                "cannot reshape {} ({t} elements) into {target:?} ({p} elements)",
                dims_str(xs)
            ));
        }
        _ => {}
    }
    Ok(out)
}
