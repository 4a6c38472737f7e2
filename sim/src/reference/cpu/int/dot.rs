//! The three integer dot products a quantized layer's PE computes, one output value at a time:
//!
//! - `int{b}` weights:   `acc = Σ_k xd[k] · w[k]`                           (multiply-accumulate)
//! - power-of-two:       `acc = Σ_k sign[k] · (xd[k] << e[k])`, zero codes skipped  (shift-add)
//! - binary × binary:    `acc = 2 · popcount(¬(x ⊕ w) ∧ valid) − popcount(valid)`   (XNOR-popcount)
//!
//! `xd` is the input with its zero point taken off (`x_q − zp_x`, 9 bits for int8), or ±1 for
//! binary activations; padding contributes nothing (0 in `xd`, a cleared `valid` bit for XNOR).
//! Sums are int32 and wrap like a 32-bit accumulator register.

/// One power-of-two weight code `sign · 2^exp` (`exp` = None for the code 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShiftCode {
    pub negative: bool,
    pub exp: Option<u8>,
}

impl ShiftCode {
    /// Decodes an int8 code in `{0, ±2^e}`.
    pub fn from_code(c: i8) -> Result<ShiftCode, String> {
        let mag = (c as i32).unsigned_abs();
        match mag {
            0 => Ok(ShiftCode {
                negative: false,
                exp: None,
            }),
            m if m.is_power_of_two() => Ok(ShiftCode {
                negative: c < 0,
                exp: Some(m.trailing_zeros() as u8),
            }),
            _ => Err(format!("weight code {c} is not zero or a power of two")),
        }
    }
}

/// A layer's weights as its PEs hold them: per output channel, `reduction` codes in a row.
#[derive(Debug, Clone, PartialEq)]
pub enum WeightCodes {
    /// Integer codes, one `i32` each.
    Mac(Vec<i32>),
    /// Sign and exponent per code.
    Shift(Vec<ShiftCode>),
    /// Binary codes packed 64 to a word (bit 1 = +1), `words` words per output channel.
    Xnor { bits: Vec<u64>, words: usize },
}

/// `Σ_k xd[k] · w[k]` in a 32-bit accumulator (wrapping, so the order of the sum does not
/// change it), with 256-bit vectors where the CPU has them.
pub fn dot_mac(xd: &[i32], w: &[i32]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, the only feature the function enables
        return unsafe { dot_mac_avx2(xd, w) };
    }
    dot_mac_plain(xd, w)
}

#[inline(always)]
fn dot_mac_plain(xd: &[i32], w: &[i32]) -> i32 {
    xd.iter()
        .zip(w)
        .fold(0i32, |acc, (&x, &w)| acc.wrapping_add(x.wrapping_mul(w)))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_mac_avx2(xd: &[i32], w: &[i32]) -> i32 {
    dot_mac_plain(xd, w)
}

/// Every integer dot product of a layer block at once: `acc[o·p + j] = Σ_kk w[o·k + kk] ·
/// x[kk·p + j]` for `outs` weight rows against the `k × p` matrix of `p` fields' decoded values
/// (integers held as f32, which holds them exactly below 2^24), at a matrix product's speed and exactly
/// [`dot_mac`]'s results: the reduction is cut into chunks short enough that every product and
/// partial sum of a chunk is an integer below 2^24 in magnitude (below 2^53 with f64 where
/// that would make the chunks too short), so the `gemm` crate's blocked kernels compute each
/// chunk without rounding, in any order, with or without fused multiply-adds. The chunks add up
/// in 64 bits and the exact sum wraps to 32 bits as the accumulator register does. `None` when
/// even f64 could not hold a product exactly.
pub fn mac_block(w: &[i32], outs: usize, k: usize, x: &[f32], p: usize) -> Option<Vec<i32>> {
    let w_peak = w[..outs * k]
        .iter()
        .map(|v| v.unsigned_abs())
        .max()
        .unwrap_or(0) as f64;
    let x_peak = x[..p * k].iter().fold(0.0f32, |a, v| a.max(v.abs())) as f64;
    let peak = (w_peak * x_peak).max(1.0);
    if outs == 0 || p == 0 || peak * k as f64 >= (1u64 << 53) as f64 {
        return None;
    }
    let mut acc = vec![0i64; outs * p];
    let chunk = ((1u64 << 24) as f64 / peak) as usize;
    if chunk >= 64 || k <= chunk {
        let w: Vec<f32> = w[..outs * k].iter().map(|&v| v as f32).collect();
        chunked_products(&w, outs, k, x, p, chunk.max(1), &mut acc);
    } else {
        let w: Vec<f64> = w[..outs * k].iter().map(|&v| v as f64).collect();
        let x: Vec<f64> = x[..p * k].iter().map(|&v| v as f64).collect();
        chunked_products(&w, outs, k, &x, p, k, &mut acc);
    }
    Some(acc.iter().map(|&v| v as i32).collect())
}

/// `acc += w · xᵀ` over the reduction in chunks of `chunk`, each an exact float matrix product.
fn chunked_products<T: Copy + Default + Into<f64> + From<u8> + 'static>(
    w: &[T],
    outs: usize,
    k: usize,
    x: &[T],
    p: usize,
    chunk: usize,
    acc: &mut [i64],
) {
    let mut part = vec![T::default(); outs * p];
    let mut start = 0;
    while start < k {
        let len = chunk.min(k - start);
        // SAFETY: w is outs×k row-major (columns start..start + len), x is k×p row-major (rows
        // start..start + len), part is outs×p row-major: every stride stays inside its buffer
        unsafe {
            gemm::gemm(
                outs,
                p,
                len,
                part.as_mut_ptr(),
                1,
                p as isize,
                false,
                w.as_ptr().add(start),
                1,
                k as isize,
                x.as_ptr().add(start * p),
                1,
                p as isize,
                T::from(0),
                T::from(1),
                false,
                false,
                false,
                gemm::Parallelism::Rayon(0),
            );
        }
        for (a, &v) in acc.iter_mut().zip(&part) {
            *a += v.into() as i64;
        }
        start += len;
    }
}

/// `Σ_k ±(xd[k] << e[k])` in a 32-bit accumulator: each product is a shift and an add or subtract.
pub fn dot_shift(xd: &[i32], w: &[ShiftCode]) -> i32 {
    xd.iter().zip(w).fold(0i32, |acc, (&x, c)| match c.exp {
        None => acc,
        Some(e) => {
            let p = x.wrapping_shl(e as u32);
            if c.negative {
                acc.wrapping_sub(p)
            } else {
                acc.wrapping_add(p)
            }
        }
    })
}

/// `2 · popcount(¬(x ⊕ w) ∧ valid) − popcount(valid)`: the ±1 dot product of the valid positions.
pub fn dot_xnor(x: &[u64], valid: &[u64], w: &[u64]) -> i32 {
    let (mut matches, mut n) = (0u32, 0u32);
    for ((&x, &v), &w) in x.iter().zip(valid).zip(w) {
        matches += (!(x ^ w) & v).count_ones();
        n += v.count_ones();
    }
    2 * matches as i32 - n as i32
}

/// Packs booleans 64 to a word, bit `k % 64` of word `k / 64`.
pub fn pack_bits(bits: impl IntoIterator<Item = bool>, words: usize) -> Vec<u64> {
    let mut out = vec![0u64; words];
    for (k, b) in bits.into_iter().enumerate() {
        if b {
            out[k / 64] |= 1 << (k % 64);
        }
    }
    out
}

impl WeightCodes {
    /// Lays out output-major int8 codes (`outs × reduction`) for the kernel that fits them.
    pub fn new(
        codes: &[i8],
        outs: usize,
        reduction: usize,
        form: etch_ir::quant::WeightForm,
        binary_input: bool,
    ) -> Result<WeightCodes, String> {
        use etch_ir::quant::WeightForm;
        Ok(match form {
            WeightForm::Binary if binary_input => {
                let words = reduction.div_ceil(64).max(1);
                let mut bits = Vec::with_capacity(outs * words);
                for o in 0..outs {
                    bits.extend(pack_bits(
                        codes[o * reduction..(o + 1) * reduction]
                            .iter()
                            .map(|&c| c > 0),
                        words,
                    ));
                }
                WeightCodes::Xnor { bits, words }
            }
            WeightForm::Pow2 { .. } => WeightCodes::Shift(
                codes
                    .iter()
                    .map(|&c| ShiftCode::from_code(c))
                    .collect::<Result<_, _>>()?,
            ),
            _ => WeightCodes::Mac(codes.iter().map(|&c| c as i32).collect()),
        })
    }

    /// The accumulator of output channel `o` over one receptive field: `xd` for the MAC and shift
    /// forms, or its bits and valid mask for XNOR.
    pub fn dot(&self, o: usize, reduction: usize, field: &Field) -> i32 {
        match (self, field) {
            (WeightCodes::Mac(w), Field::Values(xd)) => {
                dot_mac(xd, &w[o * reduction..(o + 1) * reduction])
            }
            (WeightCodes::Shift(w), Field::Values(xd)) => {
                dot_shift(xd, &w[o * reduction..(o + 1) * reduction])
            }
            (WeightCodes::Xnor { bits, words }, Field::Bits { x, valid }) => {
                dot_xnor(x, valid, &bits[o * words..(o + 1) * words])
            }
            _ => unreachable!("the input form is chosen with the weight form"),
        }
    }
}

/// One receptive field (a patch of a convolution, a row of a GEMM) as the PEs read it.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    /// `x_q − zp_x` (or ±1), 0 at padding.
    Values(Vec<i32>),
    /// Binary activations: bit 1 = +1, and which positions are inside the input.
    Bits { x: Vec<u64>, valid: Vec<u64> },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seeded values in `-range..=range`.
    fn values(n: usize, range: i64, seed: u64) -> Vec<i32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 11) as i64 % (2 * range + 1) - range) as i32
            })
            .collect()
    }

    /// `mac_block` against one `dot_mac` per output, `x` given field by field.
    fn check(outs: usize, k: usize, p: usize, w_range: i64, x_range: i64) {
        let w = values(outs * k, w_range, 1);
        let fields = values(p * k, x_range, 2);
        let cols: Vec<f32> = (0..k * p)
            .map(|i| fields[(i % p) * k + i / p] as f32)
            .collect();
        let got = mac_block(&w, outs, k, &cols, p).expect("within f64's exact range");
        for o in 0..outs {
            for j in 0..p {
                let want = dot_mac(&fields[j * k..(j + 1) * k], &w[o * k..(o + 1) * k]);
                assert_eq!(got[o * p + j], want, "output {o}, field {j}");
            }
        }
    }

    #[test]
    fn block_products_equal_the_accumulator_register() {
        // int8 weights on 9-bit inputs: f32 chunks of 512
        check(7, 4608, 5, 127, 255);
        // 16-bit codes: chunks would be too short, so f64; sums past 2^31 wrap
        check(3, 300, 4, 32767, 32767);
        check(2, 1, 3, 127, 255);
    }

    #[test]
    fn products_past_f64_exactness_are_left_to_the_dot_product() {
        let w = vec![i32::MAX; 4];
        let x = vec![(1 << 23) as f32; 4];
        assert!(mac_block(&w, 1, 4, &x, 1).is_none());
    }
}
