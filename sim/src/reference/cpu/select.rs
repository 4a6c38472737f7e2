//! Ops that pick or place elements by index: `TopK` (the k extremes along an axis) and
//! `ScatterND` (slices replaced or combined at index tuples), as detection heads and exporters'
//! in-place assignments write them.

use super::Res;
use crate::reference::value::{Array, Value};
use etch_ir::op::Scatter;

/// The `k` largest (or smallest) elements along `axis` and their indices, in order; equal
/// elements keep index order, as onnxruntime's comparison does.
pub fn top_k(x: &Value, k: i64, axis: usize, largest: bool) -> Res<(Value, Array<i64>)> {
    fn go<T: Copy>(
        x: &Array<T>,
        k: usize,
        axis: usize,
        largest: bool,
        order: impl Fn(&T, &T) -> std::cmp::Ordering,
    ) -> (Array<T>, Array<i64>) {
        let (outer, n, inner) = (
            x.shape[..axis].iter().product::<usize>(),
            x.shape[axis],
            x.shape[axis + 1..].iter().product::<usize>(),
        );
        let mut shape = x.shape.clone();
        shape[axis] = k;
        let len = outer * k * inner;
        let Some(&fill) = x.data.first().filter(|_| len > 0) else {
            return (Array::new(shape.clone(), vec![]), Array::new(shape, vec![]));
        };
        let mut values = vec![fill; len];
        let mut indices = vec![0i64; len];
        let mut idx: Vec<usize> = Vec::with_capacity(n);
        for o in 0..outer {
            for i in 0..inner {
                let at = |j: usize| &x.data[(o * n + j) * inner + i];
                idx.clear();
                idx.extend(0..n);
                // a stable sort keeps equal elements in index order
                idx.sort_by(|&a, &b| {
                    let c = order(at(a), at(b));
                    if largest {
                        c.reverse()
                    } else {
                        c
                    }
                });
                for (r, &j) in idx[..k].iter().enumerate() {
                    let to = (o * k + r) * inner + i;
                    values[to] = *at(j);
                    indices[to] = j as i64;
                }
            }
        }
        (
            Array::new(shape.clone(), values),
            Array::new(shape, indices),
        )
    }
    let n = x
        .shape()
        .get(axis)
        .copied()
        .ok_or("the axis is out of range")?;
    let k = usize::try_from(k)
        .ok()
        .filter(|&k| k <= n)
        .ok_or_else(|| format!("k = {k} is not within the axis's {n} elements"))?;
    let mut shape = x.shape().to_vec();
    shape[axis] = k;
    super::output_len(&shape, 8)?;
    Ok(match x {
        Value::F32(a) => {
            // −0 equals +0 (index order decides), NaN is above everything
            let order = |a: &f32, b: &f32| {
                a.partial_cmp(b)
                    .unwrap_or_else(|| a.is_nan().cmp(&b.is_nan()))
            };
            let (v, i) = go(a, k, axis, largest, order);
            (Value::F32(v), i)
        }
        Value::I64(a) => {
            let (v, i) = go(a, k, axis, largest, i64::cmp);
            (Value::I64(v), i)
        }
    })
}

/// `data` with the slice at each index tuple of `indices` (its last axis) replaced by, or
/// combined with, the matching slice of `updates`, tuples taken in order.
pub fn scatter_nd(data: &Value, indices: &Array<i64>, updates: &Value, how: Scatter) -> Res<Value> {
    fn go<T: Copy + PartialOrd>(
        data: &Array<T>,
        indices: &Array<i64>,
        updates: &Array<T>,
        how: Scatter,
        add: fn(T, T) -> T,
        mul: fn(T, T) -> T,
    ) -> Res<Array<T>> {
        let q = *indices
            .shape
            .last()
            .ok_or("the indices must have rank 1 or more")?;
        if q == 0 || q > data.shape.len() {
            return Err(format!(
                "index tuples of {q} values do not fit a rank-{} input",
                data.shape.len()
            ));
        }
        let tuples = indices.data.len() / q;
        let want: Vec<usize> = indices.shape[..indices.shape.len() - 1]
            .iter()
            .chain(&data.shape[q..])
            .copied()
            .collect();
        if updates.shape != want {
            return Err(format!(
                "the updates are {:?} where the indices and input need {want:?}",
                updates.shape
            ));
        }
        let strides = etch_ir::tensor::strides(&data.shape);
        let slice: usize = data.shape[q..].iter().product();
        let mut out = data.data.clone();
        for t in 0..tuples {
            let mut base = 0;
            for (a, &i) in indices.data[t * q..(t + 1) * q].iter().enumerate() {
                let d = data.shape[a] as i64;
                let j = if i < 0 { i + d } else { i };
                if !(0..d).contains(&j) {
                    return Err(format!(
                        "index {i} of tuple {t} is outside axis {a}'s {d} elements"
                    ));
                }
                base += j as usize * strides[a];
            }
            for e in 0..slice {
                let o = &mut out[base + e];
                *o = how.apply(*o, updates.data[t * slice + e], add, mul);
            }
        }
        Ok(Array::new(data.shape.clone(), out))
    }
    Ok(match (data, updates) {
        (Value::F32(d), Value::F32(u)) => {
            Value::F32(go(d, indices, u, how, |a, b| a + b, |a, b| a * b)?)
        }
        (Value::I64(d), Value::I64(u)) => Value::I64(go(
            d,
            indices,
            u,
            how,
            i64::wrapping_add,
            i64::wrapping_mul,
        )?),
        _ => return Err("the data and updates must have one element type".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_outside_its_axis_is_an_error_naming_it() {
        let data = Value::F32(Array::new(vec![4, 3], vec![0.0; 12]));
        let updates = Value::F32(Array::new(vec![2, 3], vec![1.0; 6]));
        let indices = Array::new(vec![2, 1], vec![1, 4]);
        let e = scatter_nd(&data, &indices, &updates, Scatter::Replace).unwrap_err();
        assert_eq!(e, "index 4 of tuple 1 is outside axis 0's 4 elements");
        let indices = Array::new(vec![2, 1], vec![1, -4]);
        assert!(scatter_nd(&data, &indices, &updates, Scatter::Replace).is_ok());
    }

    #[test]
    fn top_k_orders_ties_by_index_and_nan_highest() {
        let x = Value::F32(Array::new(vec![5], vec![1.0, f32::NAN, 1.0, -0.0, 0.0]));
        let (v, i) = top_k(&x, 4, 0, true).unwrap();
        assert_eq!(i.data, vec![1, 0, 2, 3]);
        let Value::F32(v) = v else { panic!("float") };
        assert!(v.data[0].is_nan());
        let (_, i) = top_k(&x, 3, 0, false).unwrap();
        assert_eq!(i.data, vec![3, 4, 0]);
        assert!(top_k(&x, 6, 0, true).is_err());
    }
}
