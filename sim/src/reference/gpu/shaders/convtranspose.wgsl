// Transposed convolution on [n, c, h, w] with weights [c, m/group, kh, kw], one invocation per
// output value: the sum over the input pixels whose kernel taps land on it (input row i and tap
// ki reach output row i·stride − pad + ki·dilation), starting from the bias.
// p: [count, c, h, w, m, channels per group, outputs per group, ho, wo, has bias,
//     rows at 10: kernel, stride, dilation, pad begin; columns at 14: the same]
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

fn item(e: u32) {
    let h = pi(2u);
    let w = pi(3u);
    let cg = p[5];
    let mg = p[6];
    let ho = p[7];
    let wo = p[8];
    let oj = i32(e % wo);
    let oi = i32((e / wo) % ho);
    let oc = (e / (wo * ho)) % p[4];
    let img = e / (wo * ho * p[4]);
    let g = oc / mg;
    let kh = pi(10u);
    let kw = pi(14u);
    var acc = 0.0;
    if (p[9] != 0u) {
        acc = bias[oc];
    }
    for (var ch = 0u; ch < cg; ch++) {
        let c = g * cg + ch;
        let xb = (img * p[1] + c) * u32(h * w);
        let wb = (c * mg + oc % mg) * u32(kh * kw);
        for (var ki = 0; ki < kh; ki++) {
            let ti = oi + pi(13u) - ki * pi(12u);
            if (ti < 0 || ti % pi(11u) != 0 || ti / pi(11u) >= h) {
                continue;
            }
            let ii = ti / pi(11u);
            for (var kj = 0; kj < kw; kj++) {
                let tj = oj + pi(17u) - kj * pi(16u);
                if (tj >= 0 && tj % pi(15u) == 0 && tj / pi(15u) < w) {
                    acc += x[xb + u32(ii * w + tj / pi(15u))] * wt[wb + u32(ki * kw + kj)];
                }
            }
        }
    }
    y[e] = acc;
}
