//! What an op's attributes and host-side inputs (shapes, axes, pads, bounds) resolve to for an
//! input of a given shape. The CPU `exec` and the GPU executor both read ops through these, so the
//! two cannot disagree about an op's meaning.

use etch_ir::op::Op;
use etch_ir::tensor::Dim;

use super::layout::{self, PadMode, SliceAxis};
use super::{ints_in, scalar_of, Res};
use crate::reference::value::{Array, Value};

/// Clip's bounds: the optional inputs 2 and 3 (opset ≥ 11), else the attributes, else unbounded.
pub(crate) fn clip_bounds(
    min: Option<f32>,
    max: Option<f32>,
    ins: &[Option<&Value>],
) -> Res<(f32, f32)> {
    let lo = scalar_of(ins, 1)?.or(min).unwrap_or(f32::NEG_INFINITY);
    let hi = scalar_of(ins, 2)?.or(max).unwrap_or(f32::INFINITY);
    Ok((lo, hi))
}

/// ReduceMean's axes (attribute, or input 2 from opset 18), normalized; `None` when the op is a
/// no-op (empty axes with `noop_with_empty_axes`).
pub(crate) fn reduce_axes(
    axes: &Option<Vec<i64>>,
    noop_with_empty_axes: bool,
    rank: usize,
    ins: &[Option<&Value>],
) -> Res<Option<Vec<usize>>> {
    let axes = match axes.clone() {
        Some(a) => Some(a),
        None => ints_in(ins, 1)?,
    };
    Ok(match axes {
        Some(a) if !a.is_empty() => Some(
            a.iter()
                .map(|&v| layout::axis(v, rank))
                .collect::<Res<_>>()?,
        ),
        _ if noop_with_empty_axes => None,
        _ => Some((0..rank).collect()),
    })
}

/// `Expand`'s output shape: the input's broadcast with the shape input 2 holds.
pub(crate) fn expanded_shape(x: &[usize], ins: &[Option<&Value>]) -> Res<Vec<usize>> {
    let want: Vec<usize> = ints_in(ins, 1)?
        .ok_or("Expand needs its shape (input 2)")?
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("the shape has a negative extent {d}")))
        .collect::<Res<_>>()?;
    super::elementwise::broadcast_shape(x, &want)
}

/// The output shape of an op that only reinterprets its input's shape: Identity, Dropout, Flatten,
/// Reshape, Squeeze, Unsqueeze.
pub(crate) fn reshaped_shape(op: &Op, s: &[usize], ins: &[Option<&Value>]) -> Res<Vec<usize>> {
    match op {
        Op::Identity | Op::Dropout => Ok(s.to_vec()),
        Op::Flatten { axis } => {
            let a = if *axis < 0 {
                axis + s.len() as i64
            } else {
                *axis
            };
            if a < 0 || a as usize > s.len() {
                return Err(format!("axis {axis} is out of range for rank {}", s.len()));
            }
            let (l, r) = s.split_at(a as usize);
            Ok(vec![l.iter().product(), r.iter().product()])
        }
        Op::Reshape { allowzero } => {
            let target = ints_in(ins, 1)?.ok_or("Reshape needs a target shape")?;
            let dims: Vec<Dim> = s.iter().map(|&d| Dim::Known(d as i64)).collect();
            let out = etch_ir::infer::reshape(&dims, &target, *allowzero)?;
            let shape: Vec<usize> = out
                .iter()
                .map(|d| d.known().unwrap_or(0) as usize)
                .collect();
            if shape.iter().product::<usize>() != s.iter().product::<usize>() {
                return Err(format!("cannot reshape {s:?} into {target:?}"));
            }
            Ok(shape)
        }
        Op::Squeeze { axes } => {
            let axes = match axes.clone() {
                Some(a) => Some(a),
                None => ints_in(ins, 1)?,
            };
            Ok(match axes {
                Some(a) => {
                    let a: Vec<usize> = a
                        .iter()
                        .map(|&v| layout::axis(v, s.len()))
                        .collect::<Res<_>>()?;
                    if let Some(&k) = a.iter().find(|&&k| s[k] != 1) {
                        return Err(format!("cannot squeeze axis {k} of size {}", s[k]));
                    }
                    s.iter()
                        .enumerate()
                        .filter(|(k, _)| !a.contains(k))
                        .map(|(_, &d)| d)
                        .collect()
                }
                None => s.iter().copied().filter(|&d| d != 1).collect(),
            })
        }
        Op::Unsqueeze { axes } => {
            let axes = match axes.clone() {
                Some(a) => a,
                None => ints_in(ins, 1)?.ok_or("Unsqueeze needs axes")?,
            };
            let r = s.len() + axes.len();
            let mut a: Vec<usize> = axes
                .iter()
                .map(|&v| layout::axis(v, r))
                .collect::<Res<_>>()?;
            a.sort();
            let mut shape = s.to_vec();
            for k in a {
                shape.insert(k, 1);
            }
            Ok(shape)
        }
        _ => unreachable!("dispatched on a reshape-family op"),
    }
}

/// Split's axis and piece sizes (input 2, the attribute, or `num_outputs` near-equal pieces).
pub(crate) fn split_sizes(
    op: &Op,
    s: &[usize],
    n_outputs: usize,
    ins: &[Option<&Value>],
) -> Res<(usize, Vec<usize>)> {
    let Op::Split {
        axis,
        split,
        num_outputs,
    } = op
    else {
        unreachable!("dispatched on Split")
    };
    let ax = layout::axis(*axis, s.len())?;
    let d = s[ax];
    let sizes: Vec<usize> = match (ints_in(ins, 1)?, split) {
        (Some(s), _) => s.iter().map(|&v| v as usize).collect(),
        (None, Some(s)) => s.iter().map(|&v| v as usize).collect(),
        (None, None) => {
            let parts = num_outputs.map_or(n_outputs, |v| v as usize).max(1);
            let chunk = d.div_ceil(parts);
            (0..parts)
                .map(|k| chunk.min(d.saturating_sub(k * chunk)))
                .collect()
        }
    };
    layout::check_split(s, ax, &sizes)?;
    Ok((ax, sizes))
}

/// Slice's per-axis start, step and count (inputs from opset 10, attributes before).
pub(crate) fn slice_axes(
    op: &Op,
    s: &[usize],
    ins: &[Option<&Value>],
    opset: i64,
) -> Res<Vec<SliceAxis>> {
    let Op::Slice { starts, ends, axes } = op else {
        unreachable!("dispatched on Slice")
    };
    let (starts, ends, axes, steps) = if opset >= 10 || starts.is_none() {
        (
            ints_in(ins, 1)?.ok_or("Slice needs starts")?,
            ints_in(ins, 2)?.ok_or("Slice needs ends")?,
            ints_in(ins, 3)?,
            ints_in(ins, 4)?,
        )
    } else {
        (
            starts.clone().unwrap_or_default(),
            ends.clone().unwrap_or_default(),
            axes.clone(),
            None,
        )
    };
    let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
    if axes.len() != starts.len() || ends.len() != starts.len() || steps.len() != starts.len() {
        return Err("starts, ends, axes and steps must have one length".into());
    }
    let mut plan = Vec::new();
    for k in 0..starts.len() {
        let ax = layout::axis(axes[k], s.len())?;
        let step = steps[k];
        if step == 0 {
            return Err("a slice step must not be 0".into());
        }
        let d = s[ax] as i64;
        let (b, e) = etch_ir::infer::slice_bounds(starts[k], ends[k], step, d);
        let len = if step > 0 {
            ((e - b).max(0) + step - 1) / step
        } else {
            ((b - e).max(0) - step - 1) / -step
        };
        plan.push(SliceAxis {
            axis: ax,
            start: b,
            step,
            len: len as usize,
        });
    }
    Ok(plan)
}

/// Transpose's permutation (reversed axes by default), checked.
pub(crate) fn transpose_perm(perm: &Option<Vec<i64>>, r: usize) -> Res<Vec<usize>> {
    let perm: Vec<usize> = perm
        .clone()
        .map(|p| p.iter().map(|&v| v as usize).collect())
        .unwrap_or_else(|| (0..r).rev().collect());
    if perm.len() != r || (0..r).any(|k| !perm.contains(&k)) {
        return Err(format!("perm {perm:?} is not a permutation of {r} axes"));
    }
    Ok(perm)
}

/// What `pad_params` resolves.
pub(crate) type PadParams = (Vec<(i64, i64)>, PadMode, f32);

/// Pad's `(begin, end)` per axis, mode and fill value (attributes, or inputs 2–4 from opset 11).
pub(crate) fn pad_params(op: &Op, r: usize, ins: &[Option<&Value>]) -> Res<PadParams> {
    let Op::Pad { mode, pads, value } = op else {
        unreachable!("dispatched on Pad")
    };
    let pads = match pads.clone() {
        Some(p) => p,
        None => ints_in(ins, 1)?.ok_or("Pad needs pads")?,
    };
    let axes: Vec<usize> = match ints_in(ins, 3)? {
        Some(a) => a.iter().map(|&v| layout::axis(v, r)).collect::<Res<_>>()?,
        None => (0..r).collect(),
    };
    if pads.len() != 2 * axes.len() {
        return Err(format!(
            "pads has {} values, {} are needed",
            pads.len(),
            2 * axes.len()
        ));
    }
    let mut per = vec![(0i64, 0i64); r];
    for (k, &ax) in axes.iter().enumerate() {
        per[ax] = (pads[k], pads[axes.len() + k]);
    }
    let mode = match mode.as_str() {
        "constant" => PadMode::Constant,
        "reflect" => PadMode::Reflect,
        "edge" => PadMode::Edge,
        m => {
            return Err(format!(
                "pad mode `{m}` is not supported (constant, reflect, edge are)"
            ))
        }
    };
    let fill = scalar_of(ins, 2).ok().flatten().unwrap_or(*value);
    Ok((per, mode, fill))
}

/// Shape's output: the dims `start..end` of a shape (negative bounds count from the end).
pub(crate) fn shape_value(s: &[usize], start: i64, end: Option<i64>) -> Value {
    let r = s.len() as i64;
    let clampi = |v: i64| if v < 0 { (v + r).max(0) } else { v.min(r) };
    let (b, e) = (clampi(start), clampi(end.unwrap_or(r)));
    let v: Vec<i64> = s[b as usize..e.max(b) as usize]
        .iter()
        .map(|&d| d as i64)
        .collect();
    Value::I64(Array::new(vec![v.len()], v))
}
