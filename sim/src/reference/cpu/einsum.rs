//! `Einsum` on the CPU: each output element is the sum, over the labels the output drops, of
//! the product of the operands' elements at its labels ([`etch_ir::einsum`] numbers them).

use super::Res;
use crate::reference::value::{Array, Value};
use etch_ir::einsum::Equation;

/// Moves an odometer over `labels` (extents `ext`) one step, keeping every operand's offset
/// (`strides[k][label]` per step) in `offsets`; false once it has wrapped round to the start.
fn step(
    at: &mut [usize],
    labels: &[usize],
    ext: &[usize],
    strides: &[Vec<usize>],
    offsets: &mut [usize],
) -> bool {
    for d in (0..labels.len()).rev() {
        let l = labels[d];
        at[d] += 1;
        for (o, s) in offsets.iter_mut().zip(strides) {
            *o += s[l];
        }
        if at[d] < ext[l] {
            return true;
        }
        for (o, s) in offsets.iter_mut().zip(strides) {
            *o -= s[l] * ext[l];
        }
        at[d] = 0;
    }
    false
}

fn go<T: Copy>(
    xs: &[&Array<T>],
    equation: &Equation,
    zero: T,
    add: fn(T, T) -> T,
    mul: fn(T, T) -> T,
) -> Res<Array<T>> {
    let shapes: Vec<Vec<i64>> = xs
        .iter()
        .map(|x| x.shape.iter().map(|&d| d as i64).collect())
        .collect();
    let (labels, ext) = equation.label_known(&shapes)?;
    let ext: Vec<usize> = ext.iter().map(|&d| d as usize).collect();
    // an axis of extent 1 under a longer label is broadcast: it does not move
    let strides: Vec<Vec<usize>> = xs
        .iter()
        .zip(&labels.inputs)
        .map(|(x, ls)| {
            let st = etch_ir::tensor::strides(&x.shape);
            let mut s = vec![0; labels.count];
            for (a, &l) in ls.iter().enumerate() {
                if x.shape[a] > 1 {
                    s[l] += st[a];
                }
            }
            s
        })
        .collect();
    let shape: Vec<usize> = labels.output.iter().map(|&l| ext[l]).collect();
    let total = super::output_len(&shape, 8)?;
    let summed = labels.summed();
    let sums = summed.iter().all(|&l| ext[l] > 0);
    let mut out = Vec::with_capacity(total);
    let (mut oi, mut si) = (vec![0; shape.len()], vec![0; summed.len()]);
    let mut base = vec![0; xs.len()];
    let mut off = vec![0; xs.len()];
    for _ in 0..total {
        let mut acc = zero;
        if sums {
            off.copy_from_slice(&base);
            loop {
                let mut p = xs[0].data[off[0]];
                for (x, &o) in xs[1..].iter().zip(&off[1..]) {
                    p = mul(p, x.data[o]);
                }
                acc = add(acc, p);
                if !step(&mut si, &summed, &ext, &strides, &mut off) {
                    break;
                }
            }
        }
        out.push(acc);
        step(&mut oi, &labels.output, &ext, &strides, &mut base);
    }
    Ok(Array::new(shape, out))
}

/// `Einsum` of `xs` (all float or all int64) by `equation`.
pub fn einsum(equation: &Equation, xs: &[&Value]) -> Res<Value> {
    if let Some(f) = xs
        .iter()
        .map(|x| match x {
            Value::F32(a) => Some(a),
            Value::I64(_) => None,
        })
        .collect::<Option<Vec<_>>>()
    {
        return Ok(Value::F32(go(
            &f,
            equation,
            0.0,
            |a, b| a + b,
            |a, b| a * b,
        )?));
    }
    let i = xs
        .iter()
        .map(|x| match x {
            Value::I64(a) => Some(a),
            Value::F32(_) => None,
        })
        .collect::<Option<Vec<_>>>()
        .ok_or("Einsum's operands must have one element type")?;
    Ok(Value::I64(go(
        &i,
        equation,
        0,
        i64::wrapping_add,
        i64::wrapping_mul,
    )?))
}
