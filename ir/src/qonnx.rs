//! QONNX's quantizers: `Quant` (also written `IntQuant`), `BipolarQuant` and `Trunc`, in the
//! `qonnx.custom_op.general` domain. They are what Brevitas exports and FINN reads: a float tensor
//! goes in, and the same float tensor comes out, snapped to a scaled integer grid.
//!
//! Each function here is qonnx's reference (`qonnx.custom_op.general`: `int_quant`, `binary_quant`,
//! `trunc_v1`, `trunc_v2`) step for step, one float32 operation per numpy operation in the same
//! order, so that every executor that calls them gives qonnx's executor's results bit for bit.

/// The domains that name these ops: QONNX's own, the one older Brevitas releases wrote, and FINN's
/// (qonnx reads all three the same way).
pub const DOMAINS: [&str; 3] = [
    "qonnx.custom_op.general",
    "onnx.brevitas",
    "finn.custom_op.general",
];

/// How a quantizer rounds a scaled value to an integer: qonnx's `rounding_mode` strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    /// `ROUND` or `HALF_EVEN`: to the nearest, ties to even (numpy's `round`).
    HalfEven,
    /// `CEIL`: towards +∞.
    Ceil,
    /// `FLOOR`: towards −∞.
    Floor,
    /// `UP`: away from zero.
    Up,
    /// `DOWN`: towards zero.
    Down,
    /// `HALF_UP`: to the nearest, ties away from zero.
    HalfUp,
    /// `HALF_DOWN`: to the nearest, ties towards zero.
    HalfDown,
}

impl Rounding {
    /// The mode a `rounding_mode` string names (any case, as qonnx reads it), if any.
    pub fn parse(mode: &str) -> Option<Rounding> {
        Some(match mode.to_ascii_uppercase().as_str() {
            "ROUND" | "HALF_EVEN" => Rounding::HalfEven,
            "CEIL" => Rounding::Ceil,
            "FLOOR" => Rounding::Floor,
            "UP" => Rounding::Up,
            "DOWN" => Rounding::Down,
            "HALF_UP" => Rounding::HalfUp,
            "HALF_DOWN" => Rounding::HalfDown,
            _ => return None,
        })
    }

    /// The string qonnx writes for this mode.
    pub fn name(self) -> &'static str {
        match self {
            Rounding::HalfEven => "ROUND",
            Rounding::Ceil => "CEIL",
            Rounding::Floor => "FLOOR",
            Rounding::Up => "UP",
            Rounding::Down => "DOWN",
            Rounding::HalfUp => "HALF_UP",
            Rounding::HalfDown => "HALF_DOWN",
        }
    }

    /// Rounds one value as qonnx does, including its float32 steps (`HALF_UP` adds 0.5 to |v| in
    /// float32 before the floor, exactly as numpy does).
    pub fn apply(self, v: f32) -> f32 {
        match self {
            Rounding::HalfEven => v.round_ties_even(),
            Rounding::Ceil => v.ceil(),
            Rounding::Floor => v.floor(),
            Rounding::Up => sign(v) * v.abs().ceil(),
            Rounding::Down => v.trunc(),
            Rounding::HalfUp => sign(v) * (v.abs() + 0.5).floor(),
            Rounding::HalfDown => sign(v) * (v.abs() - 0.5).ceil(),
        }
    }
}

/// numpy's `sign`: −1, 0 or 1, and NaN for NaN.
fn sign(v: f32) -> f32 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        v
    }
}

/// The smallest and largest integer code of `bits` bits, as qonnx's `min_int` and `max_int`
/// compute them in float32 (`narrow` drops the most negative signed code, or the largest
/// unsigned one).
pub fn int_range(signed: bool, narrow: bool, bits: f32) -> (f32, f32) {
    let half = 2f32.powf(bits - 1.0);
    let full = 2f32.powf(bits);
    let lo = match (signed, narrow) {
        (true, true) => -half + 1.0,
        (true, false) => -half,
        (false, _) => 0.0,
    };
    let hi = match (signed, narrow) {
        (false, false) => full - 1.0,
        (false, true) => full - 2.0,
        (true, _) => half - 1.0,
    };
    (lo, hi)
}

/// The bit widths a quantizer may have: qonnx takes any, etch whole numbers up to the 32 bits an
/// accumulator holds.
pub const MAX_BITS: f32 = 32.0;

/// Checks a bit width read from a model: a whole number from 1 to [`MAX_BITS`].
pub fn check_bits(bits: f32, what: &str) -> Result<f32, String> {
    if bits.fract() == 0.0 && (1.0..=MAX_BITS).contains(&bits) {
        Ok(bits)
    } else {
        Err(format!(
            "{what} is {bits}; it must be a whole number from 1 to {MAX_BITS}"
        ))
    }
}

/// QONNX's `Quant`: `(clamp(round(x / scale + zero_point)) − zero_point) · scale`, with the clamp to
/// the `bits`-bit range before the rounding, as qonnx orders them. A signed 1-bit `Quant` is
/// bipolar (±1 by the sign of `x / scale + zero_point`), as qonnx executes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntQuant {
    pub signed: bool,
    pub narrow: bool,
    pub rounding: Rounding,
}

impl IntQuant {
    /// One element: `x` with its (broadcast) scale and zero point; `range` from [`int_range`].
    pub fn apply(&self, x: f32, scale: f32, zero_point: f32, bits: f32, range: (f32, f32)) -> f32 {
        (self.code(x, scale, zero_point, bits, range) - zero_point) * scale
    }

    /// The integer code of one element (before the zero point comes off and the scale back on):
    /// what a deployment stores for a quantized weight.
    pub fn code(&self, x: f32, scale: f32, zero_point: f32, bits: f32, range: (f32, f32)) -> f32 {
        let mut y = x / scale;
        y += zero_point;
        if bits == 1.0 && self.signed {
            if y >= 0.0 {
                1.0
            } else {
                -1.0
            }
        } else {
            y = clamp(y, range);
            self.rounding.apply(y)
        }
    }
}

/// qonnx's clamp: `where(y > hi, hi, y)`, then `where(y < lo, lo, y)` (NaN passes through).
fn clamp(y: f32, (lo, hi): (f32, f32)) -> f32 {
    let y = if y > hi { hi } else { y };
    if y < lo {
        lo
    } else {
        y
    }
}

/// QONNX's `BipolarQuant`: `scale` where `x ≥ 0`, `−scale` elsewhere (NaN included).
pub fn bipolar(x: f32, scale: f32) -> f32 {
    let y: f32 = if x >= 0.0 { 1.0 } else { -1.0 };
    y * scale
}

/// QONNX's `Trunc`: drops low bits of an already quantized value (after an average pool's sum,
/// say). Version 1 (5 inputs: x, scale, zero point, input bits, output bits) shifts right by
/// `input bits − output bits` and keeps the input's scale; version 2 (6 inputs: x, scale, zero
/// point, input bits, output scale, output bits) shifts by the power of two nearest
/// `output scale / scale`, clamps to the output range and takes the output scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trunc {
    /// The rounding of the shifted value (qonnx requires the attribute; FLOOR is its usual value).
    pub rounding: Rounding,
    /// Version 2's output range (version 1 does not clamp).
    pub signed: bool,
    pub narrow: bool,
}

impl Trunc {
    /// Version 1 on one element.
    pub fn apply_v1(
        &self,
        x: f32,
        scale: f32,
        zero_point: f32,
        in_bits: f32,
        out_bits: f32,
    ) -> f32 {
        let mut y = x / scale;
        y += zero_point;
        y = y.round_ties_even();
        let shift = 2f32.powf(in_bits - out_bits);
        y /= shift;
        y = self.rounding.apply(y);
        y -= zero_point;
        y * scale
    }

    /// Version 2 on one element; `range` is [`int_range`] of the output bits with this op's
    /// `signed` and `narrow`.
    pub fn apply_v2(
        &self,
        x: f32,
        scale: f32,
        zero_point: f32,
        out_scale: f32,
        range: (f32, f32),
    ) -> f32 {
        let mut y = x / scale;
        y += zero_point;
        y = y.round_ties_even();
        let shift = trunc_shift(out_scale, scale);
        y /= shift;
        y = clamp(y, range);
        y = self.rounding.apply(y);
        let out_zero_point = zero_point / shift;
        y -= out_zero_point;
        y * out_scale
    }
}

/// `2^round(log2(out_scale / scale))`, version 2's shift. The ratio is a power of two in every
/// model Brevitas writes, where the logarithm is exact; elsewhere etch takes log2 in f64, which
/// can differ from numpy's float32 log2 only for a ratio within a float32 step of 2^(k+½).
fn trunc_shift(out_scale: f32, scale: f32) -> f32 {
    let ratio = out_scale / scale;
    let k = f64::from(ratio).log2().round_ties_even();
    2f32.powf(k as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_modes_follow_qonnx() {
        let cases: [(Rounding, [f32; 6]); 7] = [
            (Rounding::HalfEven, [2.0, -2.0, 2.0, 4.0, 1.0, -1.0]),
            (Rounding::Ceil, [3.0, -2.0, 3.0, 4.0, 1.0, -0.0]),
            (Rounding::Floor, [2.0, -3.0, 2.0, 3.0, 0.0, -1.0]),
            (Rounding::Up, [3.0, -3.0, 3.0, 4.0, 1.0, -1.0]),
            (Rounding::Down, [2.0, -2.0, 2.0, 3.0, 0.0, -0.0]),
            (Rounding::HalfUp, [3.0, -3.0, 2.0, 4.0, 1.0, -1.0]),
            (Rounding::HalfDown, [2.0, -2.0, 2.0, 3.0, 1.0, -1.0]),
        ];
        let xs = [2.5f32, -2.5, 2.25, 3.5, 0.75, -0.75];
        for (mode, want) in cases {
            let got: Vec<f32> = xs.iter().map(|&x| mode.apply(x)).collect();
            assert_eq!(got, want, "{mode:?}");
            assert_eq!(Rounding::parse(&mode.name().to_lowercase()), Some(mode));
        }
        assert_eq!(Rounding::parse("HALF_EVEN"), Some(Rounding::HalfEven));
        assert_eq!(Rounding::parse("nearest"), None);
    }

    #[test]
    fn ranges_follow_qonnx_min_int_and_max_int() {
        assert_eq!(int_range(true, false, 8.0), (-128.0, 127.0));
        assert_eq!(int_range(true, true, 8.0), (-127.0, 127.0));
        assert_eq!(int_range(false, false, 8.0), (0.0, 255.0));
        assert_eq!(int_range(false, true, 8.0), (0.0, 254.0));
        assert_eq!(int_range(true, false, 2.0), (-2.0, 1.0));
        assert_eq!(int_range(false, false, 1.0), (0.0, 1.0));
    }

    #[test]
    fn quant_clamps_before_it_rounds_and_keeps_the_zero_point() {
        let q = IntQuant {
            signed: false,
            narrow: false,
            rounding: Rounding::HalfEven,
        };
        let r = int_range(false, false, 4.0);
        // 0.3 / 0.25 = 1.2, + 2 = 3.2 → 3, (3 − 2) · 0.25
        assert_eq!(q.apply(0.3, 0.25, 2.0, 4.0, r), 0.25);
        // above the range: 15 − 2
        assert_eq!(q.apply(100.0, 0.25, 2.0, 4.0, r), 3.25);
        // below: 0 − 2
        assert_eq!(q.apply(-100.0, 0.25, 2.0, 4.0, r), -0.5);
        let bipolar_quant = IntQuant { signed: true, ..q };
        assert_eq!(bipolar_quant.apply(-0.1, 0.5, 0.0, 1.0, r), -0.5);
        assert_eq!(bipolar_quant.apply(0.0, 0.5, 0.0, 1.0, r), 0.5);
        assert_eq!(bipolar(-0.0, 2.0), 2.0);
        assert_eq!(bipolar(-1e-9, 2.0), -2.0);
    }

    #[test]
    fn trunc_shifts_right_by_the_dropped_bits() {
        let t = Trunc {
            rounding: Rounding::Floor,
            signed: true,
            narrow: false,
        };
        // 8-bit code 77 (scale 1/8) to 4 bits: floor(77 / 16) = 4, in the input's scale
        assert_eq!(t.apply_v1(77.0 / 8.0, 0.125, 0.0, 8.0, 4.0), 0.5);
        // version 2 with the output scale 16× the input's: the same code, in the output's scale
        let r = int_range(true, false, 4.0);
        assert_eq!(t.apply_v2(77.0 / 8.0, 0.125, 0.0, 2.0, r), 8.0);
        // clamped to the 4-bit range: 127 / 16 → 7.94 → 7 (signed 4-bit max)
        assert_eq!(t.apply_v2(127.0 / 8.0, 0.125, 0.0, 2.0, r), 14.0);
    }

    #[test]
    fn bit_widths_are_whole_and_bounded() {
        assert_eq!(check_bits(4.0, "the bit width"), Ok(4.0));
        for bad in [0.0, 2.5, 33.0, f32::NAN, -1.0] {
            assert!(check_bits(bad, "the bit width").is_err(), "{bad}");
        }
    }
}
