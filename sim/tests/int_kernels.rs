//! The integer kernels against a straightforward reference written separately here: random small
//! convolutions and GEMMs in every quantized form (int, power-of-two, binary weights; int and
//! binary activations), bit for bit.

use etch_ir::op::{Op, Window};
use etch_ir::quant::WeightForm;
use etch_sim::reference::cpu::int::dot::WeightCodes;
use etch_sim::reference::cpu::int::requant::Requant;
use etch_sim::reference::cpu::int::{InputCode, IntLayer};
use etch_sim::reference::{Array, Value};
use proptest::prelude::*;

/// The requantization in 128-bit arithmetic: `zp + round_half_even(acc · mult / 2^shift)`, clamped.
fn reference_requant(acc: i64, r: &Requant, zp: i32, qmin: i32, qmax: i32) -> i64 {
    let num = acc as i128 * r.multiplier as i128;
    let den = 1i128 << r.shift;
    // the quotient of |num| and its remainder: up past half, and at half to the even quotient
    let (quot, rem) = (num.abs() / den, num.abs() % den);
    let q = quot + i128::from(rem * 2 > den || (rem * 2 == den && quot % 2 == 1));
    let q = if num < 0 { -q } else { q };
    (zp as i128 + q).clamp(qmin as i128, qmax as i128) as i64
}

/// What one input code means to the reference.
fn decode(q: i64, ch: usize, input: &Input) -> i64 {
    match input {
        Input::Int { zp } => q - *zp as i64,
        Input::Binary { thresholds } => {
            if q >= thresholds[ch % thresholds.len()] as i64 {
                1
            } else {
                -1
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Input {
    Int { zp: i32 },
    Binary { thresholds: Vec<i32> },
}

/// A random quantized layer's parameters (the weights are drawn per case).
#[derive(Debug, Clone)]
struct Case {
    form: u8,
    binary_input: bool,
    seed: u64,
    m_real: f64,
    zp_out: i32,
    relu: bool,
}

/// A small deterministic generator for the codes.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
}

fn weight_codes(g: &mut Gen, n: usize, form: u8) -> (Vec<i8>, WeightForm) {
    match form {
        // int codes, symmetric
        0 => (
            (0..n).map(|_| g.range(-127, 127) as i8).collect(),
            WeightForm::Int,
        ),
        // power-of-two codes (at least one ±64 so the form is unambiguous)
        1 => {
            let mut c: Vec<i8> = (0..n)
                .map(|_| {
                    let e = g.range(-1, 6);
                    if e < 0 {
                        0
                    } else {
                        (1i8 << e) * if g.next().is_multiple_of(2) { 1 } else { -1 }
                    }
                })
                .collect();
            c[0] = 64;
            (c, WeightForm::Pow2 { max_exp: 6 })
        }
        // binary codes
        _ => (
            (0..n)
                .map(|_| if g.next().is_multiple_of(2) { 1 } else { -1 })
                .collect(),
            WeightForm::Binary,
        ),
    }
}

fn input_for(g: &mut Gen, binary: bool, channels: usize) -> Input {
    if binary {
        Input::Binary {
            thresholds: (0..channels).map(|_| g.range(-100, 100) as i32).collect(),
        }
    } else {
        Input::Int {
            zp: g.range(-128, 127) as i32,
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn layer(
    op: Op,
    case: &Case,
    codes: &[i8],
    form: WeightForm,
    outs: usize,
    reduction: usize,
    weight_dims: Vec<usize>,
    bias: Vec<i32>,
    input: &Input,
) -> IntLayer {
    let binary_input = matches!(input, Input::Binary { .. });
    let requant: Vec<Requant> = (0..outs)
        .map(|o| Requant::new(case.m_real * (1.0 + o as f64 / 7.0)).unwrap())
        .collect();
    IntLayer {
        op,
        outs,
        reduction,
        weight_dims,
        weights: WeightCodes::new(codes, outs, reduction, form, binary_input).unwrap(),
        bias,
        input: match input {
            Input::Int { zp } => InputCode::Int { zero_point: *zp },
            Input::Binary { thresholds } => InputCode::Binary {
                thresholds: thresholds.clone(),
            },
        },
        requant,
        float32: None,
        zero_point: case.zp_out,
        qmin: if case.relu { case.zp_out } else { -128 },
        qmax: 127,
    }
}

fn case() -> impl Strategy<Value = Case> {
    (
        0u8..3,
        any::<bool>(),
        any::<u64>(),
        1e-4f64..0.2,
        -128i32..127,
        any::<bool>(),
    )
        .prop_map(|(form, binary_input, seed, m_real, zp_out, relu)| Case {
            form,
            binary_input,
            seed: seed | 1,
            m_real,
            zp_out,
            relu,
        })
}

#[derive(Debug, Clone)]
struct ConvShape {
    n: usize,
    cg: usize,
    group: usize,
    mg: usize,
    h: usize,
    w: usize,
    k: (usize, usize),
    stride: (usize, usize),
    pad: (usize, usize, usize, usize),
    dil: (usize, usize),
}

fn conv_shape() -> impl Strategy<Value = ConvShape> {
    (
        1usize..3,
        1usize..5,
        1usize..3,
        1usize..4,
        1usize..8,
        1usize..8,
        (1usize..4, 1usize..4),
        (1usize..3, 1usize..3),
        (0usize..3, 0usize..3, 0usize..3, 0usize..3),
        (1usize..3, 1usize..3),
    )
        .prop_map(|(n, cg, group, mg, h, w, k, stride, pad, dil)| ConvShape {
            n,
            cg,
            group,
            mg,
            h,
            w,
            k,
            stride,
            pad,
            dil,
        })
        .prop_filter("the window must fit the padded input", |s| {
            s.h + s.pad.0 + s.pad.2 > s.dil.0 * (s.k.0 - 1)
                && s.w + s.pad.1 + s.pad.3 > s.dil.1 * (s.k.1 - 1)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn requant_matches_128_bit_reference(acc in -(1i64 << 31)..(1i64 << 31), m in 1e-12f64..1e4, zp in -128i32..127) {
        let r = Requant::new(m).unwrap();
        let got = etch_sim::reference::cpu::int::requant::requantize(acc as i32, &r, zp, -128, 127) as i64;
        prop_assert_eq!(got, reference_requant(acc, &r, zp, -128, 127));
        // and the fixed-point multiplier is the real one to 31 bits
        prop_assert!((r.value() - m).abs() <= m * 2f64.powi(-30) || r.multiplier == 0);
    }

    #[test]
    fn conv_matches_reference(s in conv_shape(), c in case()) {
        let mut g = Gen(c.seed);
        let (cin, m) = (s.cg * s.group, s.mg * s.group);
        let (kh, kw) = s.k;
        let reduction = s.cg * kh * kw;
        let (codes, form) = weight_codes(&mut g, m * reduction, c.form);
        let input = input_for(&mut g, c.binary_input, cin);
        let bias: Vec<i32> = (0..m).map(|_| g.range(-3000, 3000) as i32).collect();
        let x: Vec<i64> = (0..s.n * cin * s.h * s.w).map(|_| g.range(-128, 127)).collect();
        let window = Window {
            kernel_shape: Some(vec![kh as i64, kw as i64]),
            strides: Some(vec![s.stride.0 as i64, s.stride.1 as i64]),
            pads: Some(vec![s.pad.0 as i64, s.pad.1 as i64, s.pad.2 as i64, s.pad.3 as i64]),
            dilations: Some(vec![s.dil.0 as i64, s.dil.1 as i64]),
            auto_pad: "NOTSET".into(),
            ceil_mode: false,
        };
        let op = Op::Conv { window, group: s.group as i64 };
        let l = layer(op, &c, &codes, form, m, reduction, vec![m, s.cg, kh, kw], bias.clone(), &input);
        let Value::I64(y) = l.run(&Value::I64(Array::new(vec![s.n, cin, s.h, s.w], x.clone()))).unwrap() else { panic!("codes out") };
        // the reference: the formula, loop by loop
        let ho = (s.h + s.pad.0 + s.pad.2 - s.dil.0 * (kh - 1) - 1) / s.stride.0 + 1;
        let wo = (s.w + s.pad.1 + s.pad.3 - s.dil.1 * (kw - 1) - 1) / s.stride.1 + 1;
        prop_assert_eq!(&y.shape, &vec![s.n, m, ho, wo]);
        for n in 0..s.n {
            for o in 0..m {
                let grp = o / s.mg;
                for oi in 0..ho {
                    for oj in 0..wo {
                        let mut acc = bias[o] as i64;
                        for ci in 0..s.cg {
                            let ch = grp * s.cg + ci;
                            for ki in 0..kh {
                                for kj in 0..kw {
                                    let ii = (oi * s.stride.0 + ki * s.dil.0) as i64 - s.pad.0 as i64;
                                    let jj = (oj * s.stride.1 + kj * s.dil.1) as i64 - s.pad.1 as i64;
                                    if ii < 0 || jj < 0 || ii >= s.h as i64 || jj >= s.w as i64 {
                                        continue;
                                    }
                                    let q = x[((n * cin + ch) * s.h + ii as usize) * s.w + jj as usize];
                                    let wv = codes[((o * s.cg + ci) * kh + ki) * kw + kj] as i64;
                                    acc += decode(q, ch, &input) * wv;
                                }
                            }
                        }
                        let want = reference_requant(acc, &l.requant[o], l.zero_point, l.qmin, l.qmax);
                        prop_assert_eq!(y.data[((n * m + o) * ho + oi) * wo + oj], want, "n {} o {} at ({}, {})", n, o, oi, oj);
                    }
                }
            }
        }
    }

    #[test]
    fn gemm_matches_reference(n in 1usize..4, k in 1usize..150, m in 1usize..12, c in case()) {
        let mut g = Gen(c.seed);
        let (codes, form) = weight_codes(&mut g, m * k, c.form);
        let input = input_for(&mut g, c.binary_input, k);
        let bias: Vec<i32> = (0..m).map(|_| g.range(-3000, 3000) as i32).collect();
        let x: Vec<i64> = (0..n * k).map(|_| g.range(-128, 127)).collect();
        let op = Op::Gemm { alpha: 1.0, beta: 1.0, trans_a: false, trans_b: true };
        let l = layer(op, &c, &codes, form, m, k, vec![m, k], bias.clone(), &input);
        let Value::I64(y) = l.run(&Value::I64(Array::new(vec![n, k], x.clone()))).unwrap() else { panic!("codes out") };
        prop_assert_eq!(&y.shape, &vec![n, m]);
        for r in 0..n {
            for o in 0..m {
                let acc: i64 = bias[o] as i64 + (0..k).map(|j| decode(x[r * k + j], j, &input) * codes[o * k + j] as i64).sum::<i64>();
                prop_assert_eq!(y.data[r * m + o], reference_requant(acc, &l.requant[o], l.zero_point, l.qmin, l.qmax), "row {} out {}", r, o);
            }
        }
    }
}
