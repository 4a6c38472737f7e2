//! Channel pruning: removes the weakest output channels of convolutions (and outputs of Gemms) for real. Values that must
//! lose the same channels (joined by Add/Mul across residual branches, or passed through
//! channel-wise ops and depthwise convolutions) form one group; a group is pruned only if every
//! reader of its values can be rewritten: the next Conv's input channels, BatchNorm parameters,
//! per-channel constants, Concat (channels shift by an offset), Flatten into a Gemm or MatMul.

use std::collections::{BTreeSet, HashMap};

use crate::graph::{Graph, Initializer, Model, Node};
use crate::infer::GraphInfo;
use crate::op::Op;
use crate::tensor::{Data, Tensor};

/// A union-find over value names.
struct Groups {
    parent: HashMap<String, String>,
}

impl Groups {
    fn find(&mut self, v: &str) -> String {
        let p = self.parent.get(v).cloned().unwrap_or_else(|| v.to_string());
        if p == v {
            return p;
        }
        let root = self.find(&p);
        self.parent.insert(v.to_string(), root.clone());
        root
    }

    fn union(&mut self, a: &str, b: &str) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.parent.insert(ra, rb);
        }
    }
}

/// Ops whose output has the input's channels, one for one.
fn channelwise(op: &Op) -> bool {
    matches!(
        op,
        Op::Relu
            | Op::Clip { .. }
            | Op::Sigmoid
            | Op::HardSigmoid { .. }
            | Op::HardSwish
            | Op::Unary(_)
            | Op::MaxPool { .. }
            | Op::AveragePool { .. }
            | Op::GlobalAveragePool
            | Op::GlobalMaxPool
            | Op::Identity
            | Op::Dropout
            | Op::BatchNormalization { .. }
    )
}

/// A layer whose output channels can be chosen and removed: a convolution with one group, or a
/// Gemm with transB=1 (a row of its weight per output) and no bias or a 1-D one, with float weights.
fn is_source(g: &Graph, n: &Node) -> bool {
    let float_init = |k: usize| {
        n.inputs
            .get(k)
            .and_then(|w| g.initializer(w))
            .is_some_and(|i| matches!(i.tensor.data, Some(Data::F32(_))))
    };
    match n.op {
        Op::Conv { group: 1, .. } => float_init(1),
        Op::Gemm {
            trans_a: false,
            trans_b: true,
            ..
        } => {
            let bias_ok = match n.inputs.get(2).filter(|b| !b.is_empty()) {
                None => true,
                Some(b) => {
                    float_init(2) && g.initializer(b).is_some_and(|i| i.tensor.dims.len() == 1)
                }
            };
            float_init(1) && bias_ok
        }
        _ => false,
    }
}

fn is_depthwise(n: &Node, info: &GraphInfo) -> bool {
    let Op::Conv { group, .. } = n.op else {
        return false;
    };
    let c = channels_of(info, &n.inputs[0]);
    group > 1 && c == Some(group as usize) && channels_of(info, &n.outputs[0]) == c
}

fn channels_of(info: &GraphInfo, v: &str) -> Option<usize> {
    let s = info.ty(v)?.shape.as_ref()?;
    (s.len() >= 2)
        .then(|| s[1].known())
        .flatten()
        .map(|d| d as usize)
}

fn is_weight(g: &Graph, info: &GraphInfo, v: &str) -> bool {
    g.initializer(v).is_some() || info.consts.contains_key(v)
}

/// A per-channel constant of an element-wise op: how it lines up with the channel axis.
fn per_channel_const(info: &GraphInfo, v: &str, rank: usize, c: usize) -> Option<bool> {
    let s = info.ty(v)?.known_dims()?;
    let numel: i64 = s.iter().product();
    if numel == 1 {
        return Some(false);
    }
    // broadcast against [N, C, …]: the constant's channel axis is at rank − 1 − (its rank − 1 − k)
    let off = rank.checked_sub(s.len())?;
    let ch_axis = 1usize.checked_sub(off)?;
    let only_channel = s.iter().enumerate().all(|(k, &d)| {
        if k == ch_axis {
            d as usize == c
        } else {
            d == 1
        }
    });
    only_channel.then_some(true)
}

/// Prunes output channels; returns the report lines.
pub fn prune_channels(
    model: &mut Model,
    sparsity: f64,
    global: bool,
) -> Result<Vec<String>, String> {
    prune_or_plan(model, sparsity, global, true).map(|(lines, _)| lines)
}

/// The channels channel pruning would remove, by value name (every value that loses channels,
/// with its channel indices before pruning), without changing the model.
pub fn planned_removals(
    model: &Model,
    sparsity: f64,
    global: bool,
) -> Result<HashMap<String, BTreeSet<usize>>, String> {
    let mut m = model.clone();
    prune_or_plan(&mut m, sparsity, global, false).map(|(_, plan)| plan.removed)
}

fn prune_or_plan(
    model: &mut Model,
    sparsity: f64,
    global: bool,
    rewrite: bool,
) -> Result<(Vec<String>, Plan), String> {
    let info = crate::verify::verify(model).map_err(|e| e.to_string())?;
    let g = &model.graph;
    let order = g.node_order();
    let mut groups = Groups {
        parent: HashMap::new(),
    };
    for &idx in &order {
        let n = &g.nodes[idx];
        let (Some(x), Some(y)) = (n.inputs.first(), n.outputs.first()) else {
            continue;
        };
        if channelwise(&n.op) || is_depthwise(n, &info) {
            groups.union(x, y);
        }
        if matches!(n.op, Op::Add | Op::Sub | Op::Mul | Op::Div) && n.inputs.len() == 2 {
            let acts: Vec<&String> = n
                .inputs
                .iter()
                .filter(|i| !is_weight(g, &info, i))
                .collect();
            for a in acts {
                groups.union(a, y);
            }
        }
    }
    // sources: plain convolutions and Gemms (neurons) with float weight initializers
    let mut sources: HashMap<String, Vec<String>> = HashMap::new();
    for &idx in &order {
        let n = &g.nodes[idx];
        if is_source(g, n) {
            let root = groups.find(&n.outputs[0]);
            sources.entry(root).or_default().push(n.outputs[0].clone());
        }
    }
    if sources.is_empty() {
        return Err("no convolution (group 1) or Gemm (transB=1, 1-D or no bias) has a float weight initializer whose output channels could be removed".into());
    }
    let mut blocked: HashMap<String, String> = HashMap::new();
    // a group whose values also come from somewhere other than its sources cannot lose channels
    for &idx in &order {
        let n = &g.nodes[idx];
        for o in n.outputs.iter().filter(|o| !o.is_empty()) {
            let root = groups.find(o);
            let from_source = is_source(g, n) && sources.get(&root).is_some_and(|s| s.contains(o));
            let joined = channelwise(&n.op)
                || is_depthwise(n, &info)
                || matches!(n.op, Op::Add | Op::Sub | Op::Mul | Op::Div);
            if sources.contains_key(&root) && !from_source && !joined {
                blocked.entry(root).or_insert_with(|| {
                    format!(
                        "`{o}` joins it but comes from {} `{}`",
                        n.op_type,
                        n.display_name()
                    )
                });
            }
        }
    }
    for vi in &g.inputs {
        let root = groups.find(&vi.name);
        if sources.contains_key(&root) {
            blocked
                .entry(root)
                .or_insert_with(|| format!("it is added to the graph input `{}`", vi.name));
        }
    }
    let mut lines = Vec::new();
    // choose, propagate, and retry without the groups some reader cannot follow
    loop {
        let removal = choose(g, &info, &mut groups, &sources, &blocked, sparsity, global);
        match propagate(g, &info, &mut groups, &removal) {
            Ok(plan) => {
                if plan.removed.values().all(|r| r.is_empty()) {
                    lines.extend(
                        blocked
                            .values()
                            .map(|why| format!("left a channel group intact: {why}")),
                    );
                    return Err(format!(
                        "no channel group could be pruned: {}",
                        blocked.into_values().collect::<Vec<_>>().join("; ")
                    ));
                }
                let pruned_groups = removal.values().filter(|r| !r.is_empty()).count();
                let channels: usize = removal.values().map(BTreeSet::len).sum();
                if rewrite {
                    apply(&mut model.graph, &info, &plan)?;
                }
                lines.insert(
                    0,
                    format!(
                        "removed {channels} output channels from {pruned_groups} channel groups"
                    ),
                );
                lines.extend(
                    blocked
                        .values()
                        .map(|why| format!("left a channel group intact: {why}")),
                );
                return Ok((lines, plan));
            }
            Err((root, why)) => {
                blocked.insert(root, why);
            }
        }
    }
}

/// Which channels each prunable group loses: the lowest mean |w| filters of its sources.
fn choose(
    g: &Graph,
    info: &GraphInfo,
    groups: &mut Groups,
    sources: &HashMap<String, Vec<String>>,
    blocked: &HashMap<String, String>,
    sparsity: f64,
    global: bool,
) -> HashMap<String, BTreeSet<usize>> {
    let mut scores: Vec<(String, Vec<f32>)> = Vec::new();
    for (root, outs) in sources {
        if blocked.contains_key(root) {
            continue;
        }
        let Some(c) = channels_of(info, &outs[0]) else {
            continue;
        };
        let mut score = vec![0.0f32; c];
        for o in outs {
            let Some(p) = g.producer(o) else { continue };
            let Some(w) = g
                .initializer(&g.nodes[p].inputs[1])
                .and_then(|i| i.tensor.floats())
            else {
                continue;
            };
            let per = w.len() / c.max(1);
            for (k, s) in score.iter_mut().enumerate() {
                *s += w[k * per..(k + 1) * per]
                    .iter()
                    .map(|v| v.abs())
                    .sum::<f32>()
                    / per.max(1) as f32;
            }
        }
        scores.push((root.clone(), score));
    }
    scores.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: HashMap<String, BTreeSet<usize>> = HashMap::new();
    if global {
        let mut all: Vec<(f32, usize, usize)> = scores
            .iter()
            .enumerate()
            .flat_map(|(gi, (_, s))| s.iter().enumerate().map(move |(c, &v)| (v, gi, c)))
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0).then((a.1, a.2).cmp(&(b.1, b.2))));
        let k = (sparsity * all.len() as f64).round() as usize;
        for &(_, gi, c) in all.iter().take(k) {
            let (root, s) = &scores[gi];
            let set = out.entry(root.clone()).or_default();
            // keep at least one channel in every group
            if set.len() + 1 < s.len() {
                set.insert(c);
            }
        }
    } else {
        for (root, s) in &scores {
            let k = ((sparsity * s.len() as f64).round() as usize).min(s.len().saturating_sub(1));
            let mut idx: Vec<usize> = (0..s.len()).collect();
            idx.sort_by(|&a, &b| s[a].total_cmp(&s[b]).then(a.cmp(&b)));
            out.insert(root.clone(), idx.into_iter().take(k).collect());
        }
    }
    let _ = groups;
    out
}

/// The channels each value loses, after following them through every reader.
struct Plan {
    removed: HashMap<String, BTreeSet<usize>>,
}

fn propagate(
    g: &Graph,
    info: &GraphInfo,
    groups: &mut Groups,
    removal: &HashMap<String, BTreeSet<usize>>,
) -> Result<Plan, (String, String)> {
    let mut removed: HashMap<String, BTreeSet<usize>> = HashMap::new();
    // which group roots each value's removals came from, to know whom to block on failure
    let mut origin: HashMap<String, Vec<String>> = HashMap::new();
    let order = g.node_order();
    let set_of = |removed: &HashMap<String, BTreeSet<usize>>, v: &str| {
        removed.get(v).cloned().unwrap_or_default()
    };
    for &idx in &order {
        let n = &g.nodes[idx];
        let Some(y) = n.outputs.first().filter(|y| !y.is_empty()).cloned() else {
            continue;
        };
        let affected: Vec<String> = n
            .inputs
            .iter()
            .filter(|x| removed.get(*x).is_some_and(|r| !r.is_empty()))
            .cloned()
            .collect();
        // a pruned source: its own choice
        if is_source(g, n) {
            let root = groups.find(&y);
            if let Some(r) = removal.get(&root).filter(|r| !r.is_empty()) {
                removed.insert(y.clone(), r.clone());
                origin.insert(y.clone(), vec![root]);
            }
        }
        for x in &affected {
            let blame = origin[x][0].clone();
            let r_x = set_of(&removed, x);
            let ok = match &n.op {
                op if channelwise(op) || is_depthwise(n, info) => {
                    removed.insert(y.clone(), r_x);
                    origin.insert(y.clone(), origin[x].clone());
                    true
                }
                Op::Add | Op::Sub | Op::Mul | Op::Div => {
                    let rank = info
                        .ty(x)
                        .and_then(|t| t.shape.as_ref())
                        .map_or(0, Vec::len);
                    let c = channels_of(info, x).unwrap_or(0);
                    let consts_ok = n
                        .inputs
                        .iter()
                        .filter(|i| is_weight(g, info, i))
                        .all(|w| per_channel_const(info, w, rank, c).is_some());
                    // every activation input must lose the same channels
                    let same = n
                        .inputs
                        .iter()
                        .filter(|i| !is_weight(g, info, i))
                        .all(|i| set_of(&removed, i) == r_x);
                    removed.insert(y.clone(), r_x);
                    origin.insert(y.clone(), origin[x].clone());
                    consts_ok && same
                }
                Op::Conv { group: 1, .. } => {
                    n.inputs[0] == *x && g.initializer(&n.inputs[1]).is_some()
                }
                Op::Concat { axis } => {
                    let rank = info
                        .ty(x)
                        .and_then(|t| t.shape.as_ref())
                        .map_or(0, Vec::len);
                    let ok = *axis == 1 || *axis == 1 - rank as i64;
                    if ok {
                        let mut offset = 0;
                        let mut set = BTreeSet::new();
                        for i in &n.inputs {
                            for &c in removed.get(i).into_iter().flatten() {
                                set.insert(offset + c);
                            }
                            offset += channels_of(info, i).unwrap_or(0);
                        }
                        let from: Vec<String> = n
                            .inputs
                            .iter()
                            .filter_map(|i| origin.get(i))
                            .flatten()
                            .cloned()
                            .collect();
                        removed.insert(y.clone(), set);
                        origin.insert(y.clone(), from);
                    }
                    ok
                }
                Op::Flatten { .. } | Op::Reshape { .. } if reshape_is_flatten(info, n) => {
                    let per: Option<i64> = info
                        .ty(x)
                        .and_then(|t| t.known_dims())
                        .map(|d| d[2..].iter().product());
                    match per {
                        Some(per) => {
                            let set: BTreeSet<usize> = r_x
                                .iter()
                                .flat_map(|&c| (0..per as usize).map(move |j| c * per as usize + j))
                                .collect();
                            removed.insert(y.clone(), set);
                            origin.insert(y.clone(), origin[x].clone());
                            true
                        }
                        None => false,
                    }
                }
                Op::Gemm { trans_a: false, .. } | Op::MatMul => {
                    n.inputs[0] == *x
                        && g.initializer(&n.inputs[1]).is_some()
                        && info
                            .ty(x)
                            .and_then(|t| t.shape.as_ref())
                            .is_some_and(|s| s.len() == 2)
                }
                _ => false,
            };
            if !ok {
                return Err((
                    blame,
                    format!(
                        "its channels reach {} `{}`, which channel pruning cannot rewrite",
                        n.op_type,
                        n.display_name()
                    ),
                ));
            }
        }
    }
    for o in &g.outputs {
        if removed.get(&o.name).is_some_and(|r| !r.is_empty()) {
            return Err((
                origin[&o.name][0].clone(),
                format!("its channels reach the graph output `{}`", o.name),
            ));
        }
    }
    Ok(Plan { removed })
}

/// A Reshape that flattens `[N, C, …]` to `[N, C·…]`.
fn reshape_is_flatten(info: &GraphInfo, n: &Node) -> bool {
    if matches!(n.op, Op::Flatten { axis: 1 }) {
        return true;
    }
    let (Some(a), Some(b)) = (
        info.ty(&n.inputs[0]).and_then(|t| t.known_dims()),
        info.ty(&n.outputs[0]).and_then(|t| t.known_dims()),
    ) else {
        return false;
    };
    b.len() == 2 && a.len() >= 2 && b[0] == a[0] && b[1] == a[1..].iter().product::<i64>()
}

/// Keeps the entries of `data` (row-major `dims`) whose index along `axis` is not in `drop`.
fn drop_along(t: &Tensor, axis: usize, drop: &BTreeSet<usize>) -> Tensor {
    let Some(Data::F32(v)) = &t.data else {
        return t.clone();
    };
    let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    let inner: usize = dims[axis + 1..].iter().product();
    let outer: usize = dims[..axis].iter().product();
    let mut out = Vec::with_capacity(v.len());
    for o in 0..outer {
        for c in (0..dims[axis]).filter(|c| !drop.contains(c)) {
            let base = (o * dims[axis] + c) * inner;
            out.extend_from_slice(&v[base..base + inner]);
        }
    }
    let mut nd = t.dims.clone();
    nd[axis] -= drop.len() as i64;
    Tensor {
        data: Some(Data::F32(out)),
        dims: nd,
        ..t.clone()
    }
}

/// Rewrites one input initializer of a node (a copy under a fresh name, so shared weights stay
/// intact). An input that an Identity passes on from an initializer (exporters share weights that
/// way) is read through it, and the node then reads the rewritten copy directly.
fn rewrite_input(
    g: &mut Graph,
    node: petgraph::stable_graph::NodeIndex,
    k: usize,
    f: impl FnOnce(&Tensor) -> Tensor,
) -> Result<(), String> {
    let mut name = g.nodes[node].inputs[k].clone();
    while g.initializer(&name).is_none() {
        match g.producer(&name).map(|p| &g.nodes[p]) {
            Some(p) if matches!(p.op, Op::Identity) => name = p.inputs[0].clone(),
            _ => return Err(format!("input {} of `{}` (`{name}`) loses channels but is not an initializer; run fold-constants first", k + 1, g.nodes[node].display_name())),
        }
    }
    let init = g.initializer(&name).expect("found above");
    let t = f(&init.tensor);
    let span = init.span;
    let new = g.fresh_name(&format!("{name}_pruned"));
    g.initializers.push(Initializer {
        name: new.clone(),
        tensor: t,
        span,
    });
    g.nodes[node].inputs[k] = new;
    g.rebuild_edges();
    Ok(())
}

fn apply(g: &mut Graph, info: &GraphInfo, plan: &Plan) -> Result<(), String> {
    let empty = BTreeSet::new();
    let r = |v: &str| plan.removed.get(v).unwrap_or(&empty);
    for idx in g.node_order() {
        let n = g.nodes[idx].clone();
        let out_r = r(&n.outputs[0]).clone();
        let in_r = n.inputs.first().map(|x| r(x).clone()).unwrap_or_default();
        match &n.op {
            Op::Conv { group: 1, .. } => {
                if !in_r.is_empty() {
                    rewrite_input(g, idx, 1, |t| drop_along(t, 1, &in_r))?;
                }
                if !out_r.is_empty() {
                    rewrite_input(g, idx, 1, |t| drop_along(t, 0, &out_r))?;
                    if n.inputs.get(2).is_some_and(|b| !b.is_empty()) {
                        rewrite_input(g, idx, 2, |t| drop_along(t, 0, &out_r))?;
                    }
                }
            }
            Op::Conv { group, .. } if !out_r.is_empty() => {
                // depthwise: one filter per channel, and the group count shrinks with them
                rewrite_input(g, idx, 1, |t| drop_along(t, 0, &out_r))?;
                if n.inputs.get(2).is_some_and(|b| !b.is_empty()) {
                    rewrite_input(g, idx, 2, |t| drop_along(t, 0, &out_r))?;
                }
                let kept = group - out_r.len() as i64;
                g.nodes[idx]
                    .set_attr(crate::graph::Attribute {
                        name: "group".into(),
                        value: crate::graph::AttrValue::Int(kept),
                    })
                    .map_err(|e| e.to_string())?;
            }
            Op::BatchNormalization { .. } if !out_r.is_empty() => {
                for k in 1..5 {
                    rewrite_input(g, idx, k, |t| drop_along(t, 0, &out_r))?;
                }
            }
            Op::Add | Op::Sub | Op::Mul | Op::Div if !out_r.is_empty() => {
                let rank = info
                    .ty(&n.outputs[0])
                    .and_then(|t| t.shape.as_ref())
                    .map_or(0, Vec::len);
                let c = channels_of(info, &n.outputs[0]).unwrap_or(0);
                for k in 0..n.inputs.len() {
                    if is_weight(g, info, &n.inputs[k])
                        && per_channel_const(info, &n.inputs[k], rank, c) == Some(true)
                    {
                        let s = info
                            .ty(&n.inputs[k])
                            .and_then(|t| t.known_dims())
                            .unwrap_or_default();
                        let axis = 1 - (rank - s.len());
                        if g.initializer(&n.inputs[k]).is_none() {
                            return Err(format!("the per-channel constant of `{}` is computed by a node; run fold-constants first", n.display_name()));
                        }
                        rewrite_input(g, idx, k, |t| drop_along(t, axis, &out_r))?;
                    }
                }
            }
            Op::Gemm { trans_b, .. } if !in_r.is_empty() || !out_r.is_empty() => {
                if !in_r.is_empty() {
                    let axis = if *trans_b { 1 } else { 0 };
                    rewrite_input(g, idx, 1, |t| drop_along(t, axis, &in_r))?;
                }
                // a pruned Gemm source (transB=1): its weight rows and bias entries go
                if !out_r.is_empty() {
                    rewrite_input(g, idx, 1, |t| drop_along(t, 0, &out_r))?;
                    if n.inputs.get(2).is_some_and(|b| !b.is_empty()) {
                        rewrite_input(g, idx, 2, |t| drop_along(t, 0, &out_r))?;
                    }
                }
            }
            Op::MatMul if !in_r.is_empty() => {
                rewrite_input(g, idx, 1, |t| drop_along(t, 0, &in_r))?
            }
            _ => {}
        }
    }
    // declared shapes of the values that lost channels no longer hold
    g.value_info
        .retain(|v| plan.removed.get(&v.name).is_none_or(BTreeSet::is_empty));
    super::super::dead_values::drop_unused_initializers(g);
    Ok(())
}
