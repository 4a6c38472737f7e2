// Direct convolution on [n, c, h, w], one invocation per output value: for depthwise layers and
// narrow groups, where a matrix product would be a few rows tall.
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
    let ho = p[7];
    let wo = p[8];
    let oj = i32(e % wo);
    let oi = i32((e / wo) % ho);
    let oc = (e / (wo * ho)) % p[4];
    let img = e / (wo * ho * p[4]);
    let g = oc / p[6];
    let kh = pi(10u);
    let kw = pi(14u);
    let hs = oi * pi(11u) - pi(13u);
    let ws = oj * pi(15u) - pi(17u);
    var acc = 0.0;
    for (var ch = 0u; ch < cg; ch++) {
        let xb = (img * p[1] + g * cg + ch) * u32(h * w);
        let wb = (oc * cg + ch) * u32(kh * kw);
        for (var ki = 0; ki < kh; ki++) {
            let ii = hs + ki * pi(12u);
            if (ii < 0 || ii >= h) {
                continue;
            }
            for (var kj = 0; kj < kw; kj++) {
                let jj = ws + kj * pi(16u);
                if (jj >= 0 && jj < w) {
                    acc += x[xb + u32(ii * w + jj)] * wt[wb + u32(ki * kw + kj)];
                }
            }
        }
    }
    if (p[9] != 0u) {
        acc += bias[oc];
    }
    y[e] = acc;
}
