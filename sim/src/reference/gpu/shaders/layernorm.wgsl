// LayerNormalization over runs of `len` contiguous values. p: [rows, len, scale count, bias count
// (0: no bias), epsilon]. One invocation per run: the mean, the variance about it (two passes),
// then the normalized, scaled and shifted values; a scale or bias of one value applies to all.
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> scale: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

fn item(r: u32) {
    let len = p[1];
    let base = r * len;
    var sum = 0.0;
    for (var k = 0u; k < len; k++) {
        sum += x[base + k];
    }
    let mean = sum / f32(len);
    var sq = 0.0;
    for (var k = 0u; k < len; k++) {
        let d = x[base + k] - mean;
        sq += d * d;
    }
    let inv = 1.0 / sqrt(sq / f32(len) + pf(4u));
    for (var k = 0u; k < len; k++) {
        var b = 0.0;
        if p[3] > 0u {
            b = bias[k % p[3]];
        }
        y[base + k] = (x[base + k] - mean) * inv * scale[k % p[2]] + b;
    }
}
