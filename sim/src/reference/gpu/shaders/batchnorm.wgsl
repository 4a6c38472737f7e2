// Inference-mode BatchNormalization over channel axis 1. p: [count, channels, per channel, epsilon]
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> scale: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> mean: array<f32>;
@group(0) @binding(5) var<storage, read> variance: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;

fn item(e: u32) {
    let ch = (e / p[2]) % p[1];
    let s = scale[ch] / sqrt(variance[ch] + pf(3u));
    let t = bias[ch] - mean[ch] * s;
    y[e] = x[e] * s + t;
}
