// Softmax over groups of `len` values `inner` apart. p: [outer, len, inner]
// One invocation per group: max, exponentials and their sum, then the quotients.
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let t = flat_id(wg, nwg, li);
    let len = p[1];
    let inner = p[2];
    if (t >= p[0] * inner) {
        return;
    }
    let base = (t / inner) * len * inner + t % inner;
    var m = bitcast<f32>(0xff800000u);
    for (var k = 0u; k < len; k++) {
        m = max(m, x[base + k * inner]);
    }
    var sum = 0.0;
    for (var k = 0u; k < len; k++) {
        let v = exp(x[base + k * inner] - m);
        y[base + k * inner] = v;
        sum += v;
    }
    for (var k = 0u; k < len; k++) {
        y[base + k * inner] = y[base + k * inner] / sum;
    }
}
