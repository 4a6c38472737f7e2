// Gather along an axis: y[o, i, r] = x[o, idx[i], r]. p: [count, inner, axis extent, indices]
// (indices made non-negative and checked on the host).
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

fn item(e: u32) {
    let inner = p[1];
    let t = e / inner;
    let o = t / p[3];
    y[e] = x[(o * p[2] + idx[t % p[3]]) * inner + e % inner];
}
