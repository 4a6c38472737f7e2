// Gather along an axis: y[o, i, r] = x[o, idx[i], r]. p: [count, inner, axis extent, indices]
// (indices made non-negative and checked on the host).
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let e = flat_id(wg, nwg, li);
    if (e >= p[0]) {
        return;
    }
    let inner = p[1];
    let t = e / inner;
    let o = t / p[3];
    y[e] = x[(o * p[2] + idx[t % p[3]]) * inner + e % inner];
}
