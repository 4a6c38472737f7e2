//! Data movement: reshapes, Concat, Split, Slice, Transpose, Pad, Gather. Generic over the element
//! type, since exporters run the same ops on int64 shapes.

use super::super::value::{strides, Array};
use super::Res;

/// Normalizes an axis against a rank.
pub fn axis(a: i64, rank: usize) -> Res<usize> {
    let v = if a < 0 { a + rank as i64 } else { a };
    if v < 0 || v >= rank as i64 {
        return Err(format!("axis {a} is out of range for rank {rank}"));
    }
    Ok(v as usize)
}

/// Visits every element of `shape` in row-major order with each operand's flat offset: operand
/// `i` starts at `base[i]` and moves `strides[i][k]` per step along axis `k` (0 broadcasts, a
/// negative stride runs backwards). The innermost axis is a tight loop the visitor inlines into,
/// so a transpose, slice or broadcast costs a load per element, not a division per axis.
pub(crate) fn for_each_offset<const N: usize>(
    shape: &[usize],
    base: [isize; N],
    strides: [&[isize]; N],
    mut f: impl FnMut([usize; N]),
) {
    if shape.contains(&0) {
        return;
    }
    let Some((&inner, outer)) = shape.split_last() else {
        f(base.map(|b| b as usize));
        return;
    };
    let last = shape.len() - 1;
    let step: [isize; N] = std::array::from_fn(|i| strides[i][last]);
    let mut at = vec![0usize; outer.len()];
    let mut off = base;
    loop {
        let mut o = off;
        for _ in 0..inner {
            f(o.map(|v| v as usize));
            for i in 0..N {
                o[i] += step[i];
            }
        }
        // the next row: the outer axes as an odometer
        let mut k = outer.len();
        loop {
            if k == 0 {
                return;
            }
            k -= 1;
            at[k] += 1;
            for i in 0..N {
                off[i] += strides[i][k];
            }
            if at[k] < outer[k] {
                break;
            }
            for i in 0..N {
                off[i] -= strides[i][k] * outer[k] as isize;
            }
            at[k] = 0;
        }
    }
}

/// Signed strides for [`for_each_offset`].
pub(crate) fn signed(strides: &[usize]) -> Vec<isize> {
    strides.iter().map(|&s| s as isize).collect()
}

/// Joins arrays along an axis.
pub fn concat<T: Copy>(xs: &[&Array<T>], ax: usize) -> Res<Array<T>> {
    let shape = concat_shape(&xs.iter().map(|x| &x.shape[..]).collect::<Vec<_>>(), ax)?;
    let outer: usize = shape[..ax].iter().product();
    let mut data = Vec::with_capacity(shape.iter().product());
    for o in 0..outer {
        for x in xs {
            let chunk = x.shape[ax..].iter().product::<usize>();
            data.extend_from_slice(&x.data[o * chunk..(o + 1) * chunk]);
        }
    }
    Ok(Array::new(shape, data))
}

/// The shape of inputs joined along an axis, checked.
pub(crate) fn concat_shape(shapes: &[&[usize]], ax: usize) -> Res<Vec<usize>> {
    let first = shapes.first().ok_or("Concat needs at least one input")?;
    let mut shape = first.to_vec();
    shape[ax] = 0;
    for s in shapes {
        if s.len() != first.len() || s.iter().enumerate().any(|(k, &d)| k != ax && d != first[k]) {
            return Err(format!(
                "inputs {first:?} and {s:?} differ outside axis {ax}"
            ));
        }
        shape[ax] += s[ax];
    }
    Ok(shape)
}

/// Cuts an array along an axis into pieces of the given sizes.
pub fn split<T: Copy>(x: &Array<T>, ax: usize, sizes: &[usize]) -> Res<Vec<Array<T>>> {
    check_split(&x.shape, ax, sizes)?;
    let outer: usize = x.shape[..ax].iter().product();
    let inner: usize = x.shape[ax + 1..].iter().product();
    let mut start = 0;
    let mut out = Vec::new();
    for &s in sizes {
        let mut data = Vec::with_capacity(outer * s * inner);
        for o in 0..outer {
            let base = o * x.shape[ax] * inner;
            data.extend_from_slice(&x.data[base + start * inner..base + (start + s) * inner]);
        }
        let mut shape = x.shape.clone();
        shape[ax] = s;
        out.push(Array::new(shape, data));
        start += s;
    }
    Ok(out)
}

/// Checks that split sizes cover the axis.
pub(crate) fn check_split(shape: &[usize], ax: usize, sizes: &[usize]) -> Res<()> {
    if sizes.iter().sum::<usize>() != shape[ax] {
        return Err(format!(
            "split sizes {sizes:?} do not add up to {}",
            shape[ax]
        ));
    }
    Ok(())
}

/// One axis of a slice: first index, step and count.
pub struct SliceAxis {
    pub axis: usize,
    pub start: i64,
    pub step: i64,
    pub len: usize,
}

/// Selects a strided sub-array.
pub fn slice<T: Copy>(x: &Array<T>, axes: &[SliceAxis]) -> Array<T> {
    let xs = x.strides();
    let mut step: Vec<isize> = signed(&xs);
    let mut shape = x.shape.clone();
    let mut base = 0isize;
    for a in axes {
        base += a.start as isize * xs[a.axis] as isize;
        step[a.axis] = a.step as isize * xs[a.axis] as isize;
        shape[a.axis] = a.len;
    }
    let data = strided(&x.data, &shape, base, &step);
    Array::new(shape, data)
}

/// The elements of `x` at `base + Σ index·step` for every index of `shape`, in order. The
/// trailing axes whose elements lie next to each other in `x` (each axis's step the length of
/// the run inside it: a Transpose's untouched trailing axes, a channel split's planes) move as
/// contiguous runs.
fn strided<T: Copy>(x: &[T], shape: &[usize], base: isize, step: &[isize]) -> Vec<T> {
    let mut data = Vec::with_capacity(shape.iter().product());
    let (mut kept, mut run) = (shape.len(), 1usize);
    while kept > 0 && step[kept - 1] == run as isize {
        kept -= 1;
        run *= shape[kept];
    }
    if kept < shape.len() && run > 1 {
        for_each_offset(&shape[..kept], [base], [&step[..kept]], |[o]| {
            data.extend_from_slice(&x[o..o + run])
        });
    } else {
        for_each_offset(shape, [base], [step], |[o]| data.push(x[o]));
    }
    data
}

/// Permutes axes.
pub fn transpose<T: Copy>(x: &Array<T>, perm: &[usize]) -> Array<T> {
    let shape: Vec<usize> = perm.iter().map(|&p| x.shape[p]).collect();
    let xs = x.strides();
    let step: Vec<isize> = perm.iter().map(|&p| xs[p] as isize).collect();
    let data = strided(&x.data, &shape, 0, &step);
    Array::new(shape, data)
}

/// How Pad fills the border.
#[derive(Clone, Copy, PartialEq)]
pub enum PadMode {
    Constant,
    Reflect,
    Edge,
}

/// Pads every axis by `(begin, end)` (negative values crop).
pub fn pad<T: Copy>(x: &Array<T>, pads: &[(i64, i64)], mode: PadMode, value: T) -> Res<Array<T>> {
    let shape = padded_shape(&x.shape, pads, mode)?;
    // pads may come at run time: check the size before allocating it
    let count = etch_ir::limits::product_u64(shape.iter().map(|&d| d as u64));
    let bytes = etch_ir::limits::Limits::current()
        .tensor("the padded output", count, std::mem::size_of::<T>() as u64)
        .map_err(|e| e.to_string())?;
    let n = (bytes / std::mem::size_of::<T>().max(1) as u64) as usize;
    let xs = x.strides();
    let os = strides(&shape);
    let data = (0..n)
        .map(|flat| {
            let mut src = 0;
            let mut rem = flat;
            for k in 0..shape.len() {
                let i = (rem / os[k]) as i64 - pads[k].0;
                rem %= os[k];
                let d = x.shape[k] as i64;
                let j = if (0..d).contains(&i) {
                    i
                } else {
                    match mode {
                        PadMode::Constant => return value,
                        PadMode::Edge => i.clamp(0, d - 1),
                        PadMode::Reflect => {
                            if i < 0 {
                                -i
                            } else {
                                2 * (d - 1) - i
                            }
                        }
                    }
                };
                src += j as usize * xs[k];
            }
            x.data[src]
        })
        .collect();
    Ok(Array::new(shape, data))
}

/// The shape of a padded array, checked against what the mode can do.
pub(crate) fn padded_shape(x: &[usize], pads: &[(i64, i64)], mode: PadMode) -> Res<Vec<usize>> {
    let shape: Vec<usize> = x
        .iter()
        .zip(pads)
        .map(
            |(&d, &(b, e))| match (d as i64).checked_add(b).and_then(|v| v.checked_add(e)) {
                Some(v) if v >= 0 => Ok(v as usize),
                Some(_) => Err(format!("padding {b},{e} makes an axis of {d} negative")),
                None => Err(format!("padding {b},{e} overflows an axis of {d}")),
            },
        )
        .collect::<Res<_>>()?;
    if mode != PadMode::Constant
        && x.iter()
            .zip(pads)
            .any(|(&d, &(b, e))| d == 0 && (b > 0 || e > 0))
    {
        return Err("reflect and edge padding need a non-empty axis".into());
    }
    if mode == PadMode::Reflect
        && x.iter()
            .zip(pads)
            .any(|(&d, &(b, e))| b >= d as i64 || e >= d as i64)
    {
        return Err("reflect padding must be smaller than the axis".into());
    }
    Ok(shape)
}

/// Gather's indices made non-negative and checked against an axis of `d`.
pub(crate) fn gather_indices(d: usize, indices: &[i64]) -> Res<Vec<usize>> {
    let d = d as i64;
    indices
        .iter()
        .map(|&i| {
            let j = if i < 0 { i + d } else { i };
            if j < 0 || j >= d {
                Err(format!("index {i} is out of range for an axis of {d}"))
            } else {
                Ok(j as usize)
            }
        })
        .collect()
}

/// Gather's output shape: `x`'s axis `ax` replaced by the indices' shape.
pub(crate) fn gather_shape(x: &[usize], ax: usize, indices: &[usize]) -> Vec<usize> {
    let mut shape = x[..ax].to_vec();
    shape.extend(indices);
    shape.extend(&x[ax + 1..]);
    shape
}

/// ONNX Gather along an axis with (possibly negative) indices.
pub fn gather<T: Copy>(x: &Array<T>, ax: usize, indices: &Array<i64>) -> Res<Array<T>> {
    let idx = gather_indices(x.shape[ax], &indices.data)?;
    let outer: usize = x.shape[..ax].iter().product();
    let inner: usize = x.shape[ax + 1..].iter().product();
    let mut data = Vec::with_capacity(outer * idx.len() * inner);
    for o in 0..outer {
        for &j in &idx {
            let base = (o * x.shape[ax] + j) * inner;
            data.extend_from_slice(&x.data[base..base + inner]);
        }
    }
    Ok(Array::new(gather_shape(&x.shape, ax, &indices.shape), data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Transpose over random shapes and permutations (identity tails among them): element
        /// `i` of the output is the input element at the permuted index.
        #[test]
        fn transpose_is_the_definition(
            shape in proptest::collection::vec(1usize..4, 1..6),
            seed in any::<u64>(),
            keep_tail in 0usize..4,
        ) {
            // a random permutation of the leading axes, the last `keep_tail` left in place
            let rank = shape.len();
            let tail = keep_tail.min(rank);
            let mut perm: Vec<usize> = (0..rank - tail).collect();
            let mut bits = super::super::test_bits(seed);
            for i in (1..perm.len()).rev() {
                perm.swap(i, (bits() % (i as u64 + 1)) as usize);
            }
            perm.extend(rank - tail..rank);
            let len: usize = shape.iter().product();
            let x = Array::new(shape.clone(), (0..len as i64).collect::<Vec<_>>());
            let y = transpose(&x, &perm);
            let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
            prop_assert_eq!(&y.shape, &out_shape);
            let (xs, ys) = (strides(&shape), strides(&out_shape));
            for (i, &v) in y.data.iter().enumerate() {
                let src: usize = (0..rank).map(|k| (i / ys[k]) % out_shape[k] * xs[perm[k]]).sum();
                prop_assert_eq!(v, x.data[src], "element {} of {:?} by {:?}", i, shape, perm);
            }
        }

        /// Slice over random shapes, with a random start, length and step (1, 2 or −1) on each
        /// axis or none (whole trailing axes among them, which move as runs): element `i` of the
        /// output is the input element at `start + index·step` on every axis.
        #[test]
        fn slice_is_the_definition(
            cuts in proptest::collection::vec((1usize..5, any::<bool>(), 0usize..5, 0usize..5, 0usize..3), 1..5),
        ) {
            let shape: Vec<usize> = cuts.iter().map(|c| c.0).collect();
            let mut axes = Vec::new();
            for (axis, &(dim, sliced, a, b, step)) in cuts.iter().enumerate() {
                if !sliced {
                    continue;
                }
                let step = [1i64, 2, -1][step];
                let start = (a % dim) as i64;
                // how many steps stay inside the axis from `start`
                let room = if step > 0 { (dim as i64 - start + step - 1) / step } else { start + 1 };
                let len = (b as i64 % room + 1) as usize;
                axes.push(SliceAxis { axis, start, step, len });
            }
            let n: usize = shape.iter().product();
            let x = Array::new(shape.clone(), (0..n as i64).collect::<Vec<_>>());
            let y = slice(&x, &axes);
            let xs = strides(&shape);
            let ys = strides(&y.shape);
            for (i, &v) in y.data.iter().enumerate() {
                let src: i64 = (0..shape.len())
                    .map(|k| {
                        let at = ((i / ys[k]) % y.shape[k]) as i64;
                        let (start, step) = axes.iter().find(|a| a.axis == k).map_or((0, 1), |a| (a.start, a.step));
                        (start + at * step) * xs[k] as i64
                    })
                    .sum();
                prop_assert_eq!(v, x.data[src as usize], "element {} of {:?}", i, shape);
            }
        }
    }
}
