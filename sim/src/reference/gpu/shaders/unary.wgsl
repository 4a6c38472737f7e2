// Element-wise activations. p: [count, op, a, b]
// op 0 Relu, 1 Clip (a = min, b = max), 2 Sigmoid, 3 HardSigmoid (a = alpha, b = beta), 4 HardSwish.
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
        default: {
            r = v * clamp(v / 6.0 + 0.5, 0.0, 1.0);
        }
    }
    y[e] = r;
}
