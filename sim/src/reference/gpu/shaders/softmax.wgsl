// Softmax over groups of `len` values `inner` apart. p: [groups, len, inner]
// One invocation per group: max, exponentials and their sum, then the quotients.
fn item(t: u32) {
    let len = p[1];
    let inner = p[2];
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
