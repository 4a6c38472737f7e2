//! Requantization, exactly as an RTL datapath does it (gemmlowp's fixed-point multiplier, rounding
//! half to even):
//!
//! ```text
//! M = s_x · s_w[c] / s_y  ≈  multiplier · 2^−shift,   multiplier ∈ [2^30, 2^31) (a Q0.31 mantissa)
//! q = clamp(zp_y + round_half_even(acc · multiplier / 2^shift), qmin, qmax)
//! ```
//!
//! `multiplier` and `shift` are worked out once, at plan time (`Requant::new`). Per output value the
//! hardware does one 32×31-bit multiply into a 64-bit product, adds half an LSB of the result
//! (`2^(shift−1)`, on the magnitude), shifts right by `shift`, clears the lowest bit where the
//! dropped bits were exactly half (rounding half to even, as ONNX's QuantizeLinear and qonnx's
//! `Quant` round), adds the zero point and saturates.

/// A real multiplier `M` as a 31-bit fixed-point mantissa and a right shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requant {
    /// `round(m · 2^31)` for `M = m · 2^e`, `m ∈ [0.5, 1)`; 0 when `M` is too small to matter.
    pub multiplier: i32,
    /// `31 − e`: the product is shifted right by this many bits (1..=62).
    pub shift: u32,
}

impl Requant {
    /// Splits `m` (> 0) into `multiplier · 2^−shift`. Multipliers of 2^30 or more are refused (no
    /// quantized layer has one: it would mean an output step a billion times finer than the input's).
    pub fn new(m: f64) -> Result<Requant, String> {
        if m.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) || !m.is_finite() {
            return Err(format!(
                "the requantization multiplier {m} is not a positive number"
            ));
        }
        // m = frac · 2^exp with frac in [0.5, 1)
        let mut exp = m.log2().floor() as i32 + 1;
        let mut frac = m / 2f64.powi(exp);
        // log2 may land one off at powers of two
        if frac >= 1.0 {
            frac /= 2.0;
            exp += 1;
        } else if frac < 0.5 {
            frac *= 2.0;
            exp -= 1;
        }
        let mut mult = (frac * 2f64.powi(31)).round() as i64;
        if mult == 1 << 31 {
            mult /= 2;
            exp += 1;
        }
        let shift = 31 - exp;
        if shift < 1 {
            return Err(format!("the requantization multiplier {m} is 2^30 or more; etch's integer datapath does not support it"));
        }
        if shift > 62 {
            // |acc · M| < 2^31 · 2^−32 = 0.5: every result rounds to 0
            return Ok(Requant {
                multiplier: 0,
                shift: 1,
            });
        }
        Ok(Requant {
            multiplier: mult as i32,
            shift: shift as u32,
        })
    }

    /// The multiplier as a real number, `multiplier · 2^−shift`.
    pub fn value(&self) -> f64 {
        self.multiplier as f64 / 2f64.powi(self.shift as i32)
    }

    /// `round_half_even(acc · multiplier / 2^shift)`: the 64-bit product's magnitude plus half an
    /// LSB, shifted right, less one where the dropped bits were exactly half and the result is odd.
    #[inline]
    pub fn scale(&self, acc: i32) -> i32 {
        // |acc · multiplier| < 2^31 · 2^31 = 2^62: the product and the rounding fit in 64 bits
        let prod = acc as i64 * self.multiplier as i64;
        let half = 1i64 << (self.shift - 1);
        let abs = prod.abs();
        let mut magnitude = (abs + half) >> self.shift;
        // a tie goes to the even neighbour (ties are symmetric, so the magnitude's rule holds
        // for negative products too)
        if abs & ((half << 1) - 1) == half {
            magnitude &= !1;
        }
        let r = if prod < 0 { -magnitude } else { magnitude };
        r.clamp(i32::MIN as i64, i32::MAX as i64) as i32
    }
}

/// `clamp(zp + round_half_even(acc · M), qmin, qmax)`: one output code.
#[inline]
pub fn requantize(acc: i32, rq: &Requant, zero_point: i32, qmin: i32, qmax: i32) -> i32 {
    (zero_point as i64 + rq.scale(acc) as i64).clamp(qmin as i64, qmax as i64) as i32
}

/// [`requantize`] of `dot + bias` for each of `dots`, into `out`; `range` is (zero point, qmin,
/// qmax). Where every biased accumulator is below 2^21 in magnitude and its scaled value below
/// 2^30, the rule runs in f64, which the CPU does several lanes at a time: the product with the
/// 31-bit multiplier stays below 2^52, so it and its scaling by `2^−shift` are exact, and adding
/// 1.5·2^52 rounds that exact value half to even into the low bits of the sum.
#[inline(always)]
pub fn requantize_run(
    dots: &[i32],
    bias: i32,
    rq: &Requant,
    (zero_point, qmin, qmax): (i32, i32, i32),
    out: &mut [i64],
) {
    let peak = dots
        .iter()
        .fold(0, |p: u32, d| p.max(d.wrapping_add(bias).unsigned_abs()));
    if peak < 1 << 21 && peak as f64 * rq.value() < (1 << 30) as f64 {
        let (m, step) = (rq.multiplier as f64, 2f64.powi(-(rq.shift as i32)));
        let (zp, lo, hi) = (zero_point as i64, qmin as i64, qmax as i64);
        const ROUND: f64 = 1.5 * (1u64 << 52) as f64;
        for (y, &d) in out.iter_mut().zip(dots) {
            // the rounded value, below 2^30 in magnitude, is the sum's low 32 bits
            let r = (d.wrapping_add(bias) as f64 * m * step + ROUND).to_bits() as i32;
            *y = (r as i64 + zp).clamp(lo, hi);
        }
    } else {
        for (y, &d) in out.iter_mut().zip(dots) {
            *y = requantize(d.wrapping_add(bias), rq, zero_point, qmin, qmax) as i64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipliers_are_normalized() {
        for m in [1e-9, 0.000123, 0.0031, 0.25, 0.5, 0.7, 1.0, 3.5, 1000.0] {
            let r = Requant::new(m).unwrap();
            assert!(
                (1 << 30..1i64 << 31).contains(&(r.multiplier as i64)),
                "{m}: {r:?}"
            );
            assert!((r.value() - m).abs() <= m * 1e-9, "{m}: {}", r.value());
        }
        assert_eq!(Requant::new(1e-12).unwrap().scale(i32::MAX), 0);
        assert!(Requant::new(2f64.powi(31)).is_err());
    }

    #[test]
    fn rounding_is_half_to_even() {
        let half = Requant::new(0.5).unwrap();
        assert_eq!(
            [
                half.scale(1),
                half.scale(-1),
                half.scale(3),
                half.scale(-3),
                half.scale(5),
                half.scale(-5),
                half.scale(2)
            ],
            [0, 0, 2, -2, 2, -2, 1]
        );
        // not a tie: 7 · 3/8 = 2.625 → 3, −2.625 → −3; 5 · 3/8 = 1.875 → 2
        let m = Requant::new(0.375).unwrap();
        assert_eq!([m.scale(7), m.scale(-7), m.scale(5)], [3, -3, 2]);
        // against f64's round_ties_even on every accumulator of a range, for a few multipliers
        for mult in [0.5, 0.25, 0.125, 0.375, 0.0625, 1.5] {
            let r = Requant::new(mult).unwrap();
            for acc in -300..300 {
                let want = (acc as f64 * mult).round_ties_even() as i32;
                assert_eq!(r.scale(acc), want, "{acc} · {mult}");
            }
        }
        assert_eq!(requantize(1000, &half, -128, -128, 127), 127);
        assert_eq!(requantize(-1000, &half, 10, -128, 127), -128);
    }

    proptest::proptest! {
        /// A run requantizes every accumulator as `requantize` does, on either side of the
        /// bounds of its f64 path, ties included.
        #[test]
        fn a_run_is_each_accumulator_requantized(
            log_m in -30.0f64..29.0,
            dots in proptest::collection::vec(-(1i32 << 22)..(1 << 22), 1..64),
            scale in 0u32..23,
            bias in -(1i32 << 20)..(1 << 20),
            zp in -200i32..200,
            power_of_two in proptest::bool::ANY,
        ) {
            // a power-of-two multiplier makes half of all odd products exact ties
            let log_m = if power_of_two { log_m.round() } else { log_m };
            let rq = Requant::new(2f64.powf(log_m)).unwrap();
            // accumulators from a few units up to 2^22, and the two that scale to about one half
            let mut dots: Vec<i32> = dots.iter().map(|d| d >> scale).collect();
            if rq.shift < 31 {
                let tie = (1i64 << (rq.shift - 1)) / (rq.multiplier as i64).max(1);
                dots.push(tie as i32);
                dots.push(-(tie as i32));
            }
            for (lo, hi) in [(-128, 127), (0, 255), (i32::MIN, i32::MAX)] {
                let mut out = vec![0i64; dots.len()];
                requantize_run(&dots, bias, &rq, (zp, lo, hi), &mut out);
                for (d, y) in dots.iter().zip(&out) {
                    let want = requantize(d.wrapping_add(bias), &rq, zp, lo, hi) as i64;
                    proptest::prop_assert_eq!(*y, want, "accumulator {} + {}", d, bias);
                }
            }
        }
    }
}
