// QuantizeLinear and DequantizeLinear by the ONNX semantics (the CPU's cpu/int/qdq.rs), with a
// scale and zero point per tensor or per index along one axis. Codes travel in f32 (exact).
// p: [count, 0 quantize | 1 dequantize, params along the axis (1 per tensor), elements per axis
//     index, qmin, qmax]
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> scale: array<f32>;
@group(0) @binding(3) var<storage, read> zero_point: array<u32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

fn item(e: u32) {
    let k = (e / p[3]) % p[2];
    let zp = bitcast<i32>(zero_point[k]);
    if (p[1] == 0u) {
        // clamp(round_half_even(x / scale) + zp, qmin, qmax); NaN gives the zero point
        let v = round(x[e] / scale[k]);
        var q = f32(zp);
        if (v == v) {
            q = clamp(v, f32(pi(4u) - zp), f32(pi(5u) - zp)) + f32(zp);
        }
        y[e] = q;
    } else {
        y[e] = f32(i32(x[e]) - zp) * scale[k];
    }
}
