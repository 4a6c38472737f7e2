// MaxPool and AveragePool on [planes, h, w], one invocation per output value, with the CPU
// executor's conventions: a max ignores padding and propagates NaN; an average's window is clipped
// to the padded input, then to the input, and divides by either count (count_include_pad).
// p: [count, h, w, ho, wo, kind (0 max, 1 average), count_include_pad, 0,
//     rows at 8: kernel, stride, dilation, pad begin, pad end; columns at 13: the same]
fn item(e: u32) {
    let h = pi(1u);
    let w = pi(2u);
    let ho = p[3];
    let wo = p[4];
    let plane = e / (ho * wo);
    let oi = i32((e / wo) % ho);
    let oj = i32(e % wo);
    let kh = pi(8u);
    let kw = pi(13u);
    let hs = oi * pi(9u) - pi(11u);
    let ws = oj * pi(14u) - pi(16u);
    let base = plane * u32(h * w);
    if (p[5] == 0u) {
        var best = bitcast<f32>(0xff800000u);
        for (var ki = 0; ki < kh; ki++) {
            let ii = hs + ki * pi(10u);
            if (ii < 0 || ii >= h) {
                continue;
            }
            for (var kj = 0; kj < kw; kj++) {
                let jj = ws + kj * pi(15u);
                if (jj >= 0 && jj < w) {
                    let v = x[base + u32(ii * w + jj)];
                    if (v > best || v != v) {
                        best = v;
                    }
                }
            }
        }
        y[e] = best;
    } else {
        let he = min(hs + kh, h + pi(12u));
        let we = min(ws + kw, w + pi(17u));
        let padded = (he - hs) * (we - ws);
        let h0 = max(hs, 0);
        let h1 = min(he, h);
        let w0 = max(ws, 0);
        let w1 = min(we, w);
        var sum = 0.0;
        for (var ii = h0; ii < h1; ii++) {
            for (var jj = w0; jj < w1; jj++) {
                sum += x[base + u32(ii * w + jj)];
            }
        }
        let count = select((h1 - h0) * (w1 - w0), padded, p[6] != 0u);
        y[e] = select(0.0, sum / f32(count), count > 0);
    }
}
