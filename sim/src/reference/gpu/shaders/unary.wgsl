// Element-wise activations. p: [count, op, a, b]
// op 0 Relu, 1 Clip (a = min, b = max), 2 Sigmoid, 3 HardSigmoid (a = alpha, b = beta), 4 HardSwish;
// the `etch_ir::op::Unary` functions (lower.rs `unary_code`): 5 Abs, 6 Neg, 7 Exp, 8 Log, 9 Sqrt,
// 10 Reciprocal, 11 Floor, 12 Ceil, 13 Sin, 14 Cos, 15 Tanh, 16 Erf, 17 Softplus, 18 Softsign,
// 19 Mish, 20 LeakyRelu (a = alpha), 21 Elu (a = alpha), 22 Gelu (a = 1: the tanh approximation).

// erf to f32 precision (relative error below 2e-7): its Maclaurin series near 0, 1 − erfc beyond
// (Numerical Recipes' Chebyshev fit of erfc, fractional error below 1.2e-7).
fn erf_f32(x: f32) -> f32 {
    let a = abs(x);
    if a < 0.5 {
        let x2 = x * x;
        return 1.1283791671 * x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (0.1 + x2 * (-1.0 / 42.0 + x2 * (1.0 / 216.0 - x2 / 1320.0)))));
    }
    let t = 1.0 / (1.0 + 0.5 * a);
    let poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
        + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    let r = t * exp(-a * a + poly);
    return sign(x) * (1.0 - r);
}

// ln(1 + e^x) without overflow (onnxruntime's form)
fn softplus_f32(v: f32) -> f32 {
    if v > 0.0 {
        return v + log(1.0 + exp(-v));
    }
    return log(1.0 + exp(v));
}

// tanh without the overflow of exp for large |x|
fn tanh_f32(v: f32) -> f32 {
    if abs(v) > 15.0 {
        return sign(v);
    }
    return tanh(v);
}

fn item(e: u32) {
    let v = x[e];
    let a = pf(2u);
    let b = pf(3u);
    var r: f32;
    switch p[1] {
        case 0u: {
            r = select(0.0, v, v > 0.0);
        }
        case 1u: {
            // max first, then min (with min > max every value becomes max); NaN passes through
            let t = select(v, a, v < a);
            r = select(t, b, t > b);
        }
        case 2u: {
            r = 1.0 / (1.0 + exp(-v));
        }
        case 3u: {
            r = clamp(a * v + b, 0.0, 1.0);
        }
        case 4u: {
            r = v * clamp(v / 6.0 + 0.5, 0.0, 1.0);
        }
        case 5u: {
            r = abs(v);
        }
        case 6u: {
            r = -v;
        }
        case 7u: {
            r = exp(v);
        }
        case 8u: {
            r = log(v);
        }
        case 9u: {
            r = sqrt(v);
        }
        case 10u: {
            r = 1.0 / v;
        }
        case 11u: {
            r = floor(v);
        }
        case 12u: {
            r = ceil(v);
        }
        case 13u: {
            r = sin(v);
        }
        case 14u: {
            r = cos(v);
        }
        case 15u: {
            r = tanh_f32(v);
        }
        case 16u: {
            r = erf_f32(v);
        }
        case 17u: {
            r = softplus_f32(v);
        }
        case 18u: {
            r = v / (1.0 + abs(v));
        }
        case 19u: {
            r = v * tanh_f32(softplus_f32(v));
        }
        case 20u: {
            r = select(a * v, v, v >= 0.0);
        }
        case 21u: {
            r = select(a * (exp(v) - 1.0), v, v >= 0.0);
        }
        default: {
            if a == 1.0 {
                let k = sqrt(2.0 / 3.14159265358979);
                r = 0.5 * v * (1.0 + tanh_f32(k * (v + 0.044715 * v * v * v)));
            } else {
                r = 0.5 * v * (1.0 + erf_f32(v * 0.70710678118654752));
            }
        }
    }
    y[e] = r;
}
