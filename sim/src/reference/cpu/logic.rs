//! Comparisons, logic and the shape-building ops exporters write around a network's layers
//! (`Equal`, `Less`, `Greater`, `Not`, `And`, `Mod`, `Pow`, `ConstantOfShape`, `Expand`, `Range`,
//! `Tile`): bool tensors are 0/1 integers. Each op's scalar rule is `etch_ir::op`'s, which shape
//! inference folds constants with too.

use super::elementwise::{binary, broadcast_index, broadcast_shape};
use super::Res;
use crate::reference::value::{Array, Value};
use etch_ir::op::{Comparison, Logic};

fn same_type<'a>(a: &'a Value, b: &'a Value) -> Res<()> {
    if std::mem::discriminant(a) != std::mem::discriminant(b) {
        return Err(format!(
            "inputs are {} and {}; they must have one element type",
            a.elem_name(),
            b.elem_name()
        ));
    }
    Ok(())
}

/// `a ⋈ b` with broadcasting, as 0/1.
pub fn compare(cmp: Comparison, a: &Value, b: &Value) -> Res<Array<i64>> {
    same_type(a, b)?;
    match (a, b) {
        (Value::F32(a), Value::F32(b)) => binary(a, b, |x, y| cmp.holds(x, y) as i64),
        (Value::I64(a), Value::I64(b)) => binary(a, b, |x, y| cmp.holds(x, y) as i64),
        _ => unreachable!("same_type"),
    }
}

/// `Not`, or `a ∘ b` of `And`/`Or`/`Xor`, on 0/1 tensors.
pub fn logic(op: Option<Logic>, a: &Array<i64>, b: Option<&Array<i64>>) -> Res<Array<i64>> {
    match (op, b) {
        (None, _) => Ok(Array::new(
            a.shape.clone(),
            a.data.iter().map(|&v| (v == 0) as i64).collect(),
        )),
        (Some(l), Some(b)) => binary(a, b, |x, y| l.apply(x != 0, y != 0) as i64),
        (Some(_), None) => Err("the second operand is missing".into()),
    }
}

/// An integer op with broadcasting that has no result for some operands (`None`): `undefined`
/// names that case.
fn checked(
    a: &Array<i64>,
    b: &Array<i64>,
    f: impl Fn(i64, i64) -> Option<i64> + Sync,
    undefined: &str,
) -> Res<Array<i64>> {
    let r = binary(a, b, f)?;
    let data = r
        .data
        .into_iter()
        .collect::<Option<Vec<i64>>>()
        .ok_or(undefined)?;
    Ok(Array::new(r.shape, data))
}

/// `Mod`: integers by `etch_ir::op::modulo`, floats as C's `fmod`.
pub fn modulo(a: &Value, b: &Value, fmod: bool) -> Res<Value> {
    same_type(a, b)?;
    Ok(match (a, b) {
        (Value::F32(a), Value::F32(b)) => {
            if !fmod {
                return Err("Mod of floats needs fmod = 1".into());
            }
            Value::F32(binary(a, b, |x, y| x % y)?)
        }
        (Value::I64(a), Value::I64(b)) => Value::I64(checked(
            a,
            b,
            |x, y| etch_ir::op::modulo(x, y, fmod),
            "Mod by zero",
        )?),
        _ => unreachable!("same_type"),
    })
}

/// `a ^ b`: floats by `powf`, integers to non-negative integer powers.
pub fn pow(a: &Value, b: &Value) -> Res<Value> {
    same_type(a, b)?;
    Ok(match (a, b) {
        (Value::F32(a), Value::F32(b)) => Value::F32(binary(a, b, f32::powf)?),
        (Value::I64(a), Value::I64(b)) => Value::I64(checked(
            a,
            b,
            |x, y| u32::try_from(y).ok().map(|e| x.wrapping_pow(e)),
            "Pow of integers to a negative power",
        )?),
        _ => unreachable!("same_type"),
    })
}

/// Validated extents of a shape operand (`ConstantOfShape`, `Expand`, `Tile`).
fn extents(v: &Array<i64>, what: &str) -> Res<Vec<usize>> {
    v.data
        .iter()
        .map(|&d| {
            usize::try_from(d).map_err(|_| format!("the {what} {:?} has a negative value", v.data))
        })
        .collect()
}

/// Checks that an output of `shape` may be allocated (8 bytes an element, the widest).
fn checked_len(shape: &[usize]) -> Res<usize> {
    super::output_len(shape, 8)
}

/// A tensor of `shape` filled with `value`'s one element.
pub fn constant_of_shape(shape: &Array<i64>, value: &Value) -> Res<Value> {
    let dims = extents(shape, "shape")?;
    let n = checked_len(&dims)?;
    Ok(match value {
        Value::F32(v) => Value::F32(Array::new(dims, vec![v.data[0]; n])),
        Value::I64(v) => Value::I64(Array::new(dims, vec![v.data[0]; n])),
    })
}

/// `x` broadcast with `shape` (both ways, as numpy).
pub fn expand(x: &Value, shape: &Array<i64>) -> Res<Value> {
    let want = extents(shape, "shape")?;
    fn go<T: Copy>(x: &Array<T>, want: &[usize]) -> Res<Array<T>> {
        let out = broadcast_shape(&x.shape, want)?;
        let n = checked_len(&out)?;
        let ix = broadcast_index(&x.shape, &out);
        Ok(Array::new(out, (0..n).map(|k| x.data[ix(k)]).collect()))
    }
    Ok(match x {
        Value::F32(x) => Value::F32(go(x, &want)?),
        Value::I64(x) => Value::I64(go(x, &want)?),
    })
}

/// `x` repeated `repeats[k]` times along each axis.
pub fn tile(x: &Value, repeats: &Array<i64>) -> Res<Value> {
    let reps = extents(repeats, "repeats")?;
    fn go<T: Copy>(x: &Array<T>, reps: &[usize]) -> Res<Array<T>> {
        if reps.len() != x.shape.len() {
            return Err(format!(
                "repeats has {} values for a rank-{} input",
                reps.len(),
                x.shape.len()
            ));
        }
        let out: Vec<usize> = x.shape.iter().zip(reps).map(|(d, r)| d * r).collect();
        let n = checked_len(&out)?;
        let (os, is) = (
            etch_ir::tensor::strides(&out),
            etch_ir::tensor::strides(&x.shape),
        );
        let data = (0..n)
            .map(|mut flat| {
                let mut idx = 0;
                for k in 0..out.len() {
                    let q = flat / os[k];
                    flat %= os[k];
                    idx += (q % x.shape[k]) * is[k];
                }
                x.data[idx]
            })
            .collect();
        Ok(Array::new(out, data))
    }
    Ok(match x {
        Value::F32(x) => Value::F32(go(x, &reps)?),
        Value::I64(x) => Value::I64(go(x, &reps)?),
    })
}

/// `start, start + delta, …` below `limit`; floats accumulate `delta` as onnxruntime does.
pub fn range(start: &Value, limit: &Value, delta: &Value) -> Res<Value> {
    let one = |v: &Value| -> Res<()> {
        if v.shape().iter().product::<usize>() != 1 {
            return Err("start, limit and delta must be scalars".into());
        }
        Ok(())
    };
    one(start)?;
    one(limit)?;
    one(delta)?;
    Ok(match (start, limit, delta) {
        (Value::I64(s), Value::I64(l), Value::I64(d)) => {
            let (s, d) = (s.data[0], d.data[0]);
            let n = etch_ir::op::range_len_i64(s, l.data[0], d)? as usize;
            checked_len(&[n])?;
            Value::I64(Array::new(
                vec![n],
                (0..n as i64).map(|k| s + k * d).collect(),
            ))
        }
        (Value::F32(s), Value::F32(l), Value::F32(d)) => {
            let n = etch_ir::op::range_len_f32(s.data[0], l.data[0], d.data[0])? as usize;
            checked_len(&[n])?;
            let mut v = Vec::with_capacity(n);
            let mut x = s.data[0];
            for _ in 0..n {
                v.push(x);
                x += d.data[0];
            }
            Value::F32(Array::new(vec![n], v))
        }
        _ => return Err("start, limit and delta must have one element type".into()),
    })
}

/// The outer, axis and inner extents of `shape` around `axis`.
fn around(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (
        shape[..axis].iter().product(),
        shape[axis],
        shape[axis + 1..].iter().product(),
    )
}

/// `ArgMax` / `ArgMin` along `axis`: the index of the first extreme (the last with `last`); NaN
/// counts as the extreme, as onnxruntime's comparisons leave it in place once found.
pub fn arg(x: &Value, max: bool, axis: usize, keepdims: bool, last: bool) -> Res<Array<i64>> {
    fn go<T: Copy + PartialOrd>(
        x: &Array<T>,
        max: bool,
        axis: usize,
        keepdims: bool,
        last: bool,
    ) -> Res<Array<i64>> {
        if axis >= x.shape.len() || x.shape[axis] == 0 {
            return Err("ArgMax/ArgMin over an empty axis".into());
        }
        let (outer, n, inner) = around(&x.shape, axis);
        let mut out = Vec::with_capacity(outer * inner);
        for o in 0..outer {
            for i in 0..inner {
                let at = |k: usize| x.data[(o * n + k) * inner + i];
                let mut best = 0;
                for k in 1..n {
                    let (v, b) = (at(k), at(best));
                    let better = if max { v > b } else { v < b };
                    if better || (last && v == b) {
                        best = k;
                    }
                }
                out.push(best as i64);
            }
        }
        let mut shape = x.shape.clone();
        if keepdims {
            shape[axis] = 1;
        } else {
            shape.remove(axis);
        }
        Ok(Array::new(shape, out))
    }
    match x {
        Value::F32(x) => go(x, max, axis, keepdims, last),
        Value::I64(x) => go(x, max, axis, keepdims, last),
    }
}

/// Running sums along `axis` (float32 in order, or wrapping integers).
pub fn cumsum(x: &Value, axis: usize, exclusive: bool, reverse: bool) -> Res<Value> {
    fn go<T: Copy + Default>(
        x: &Array<T>,
        axis: usize,
        exclusive: bool,
        reverse: bool,
        add: impl Fn(T, T) -> T,
    ) -> Res<Array<T>> {
        if axis >= x.shape.len() {
            return Err(format!("axis {axis} is out of range"));
        }
        let (outer, n, inner) = around(&x.shape, axis);
        let mut out = vec![T::default(); x.data.len()];
        for o in 0..outer {
            for i in 0..inner {
                let mut acc = T::default();
                for step in 0..n {
                    let k = if reverse { n - 1 - step } else { step };
                    let at = (o * n + k) * inner + i;
                    if exclusive {
                        out[at] = acc;
                        acc = add(acc, x.data[at]);
                    } else {
                        acc = add(acc, x.data[at]);
                        out[at] = acc;
                    }
                }
            }
        }
        Ok(Array::new(x.shape.clone(), out))
    }
    Ok(match x {
        Value::F32(x) => Value::F32(go(x, axis, exclusive, reverse, |a, b| a + b)?),
        Value::I64(x) => Value::I64(go(x, axis, exclusive, reverse, i64::wrapping_add)?),
    })
}
